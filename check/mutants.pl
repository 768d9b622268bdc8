#!/usr/bin/perl
# Mutation testing (make check-mutants): does the t/ suite notice a
# plausible one-line bug?  Each mutant in check/mutants.txt is applied to
# a clean copy of the working tree, which is built and tested: first the
# test files the entry names as likely killers, then every other t/*.t in
# order, stopping at the first file that fails.  A mutant is killed when
# some file fails, and survives when the whole suite passes.  The run
# fails if a mutant survives, unless its entry says `equivalent` (no test
# can tell it from the original: say why there).
#
#   perl check/mutants.pl [options] [NAME ...]
#     NAME ...          only these mutants (default: all of them)
#     --check           only validate the list: every original text occurs
#                       exactly once in its file; builds and runs nothing
#     --no-baseline     skip the run of the unmutated copy
#     --equivalent      run the mutants marked equivalent too (a kill
#                       then means the reason given is wrong)
#     --keep            keep each copy (its path is printed)
#     --timeout SECONDS for one test file (default 300): a mutant that
#                       hangs the server counts as killed by that file
#     --exclude t/F.t   leave this test file out (repeatable): for a file
#                       still being written, which fails without a mutant
#
# Why a copy of `git ls-files` (tracked and new files, as they are in the
# working tree, build products and t/tmp left out): it tests exactly the
# code and tests being worked on, committed or not, while the checkout
# itself, which others may be reading, is never modified, not even for a
# moment; a `git worktree` would add state to .git, and an archive of
# HEAD would miss the work in progress.  Each copy lives in /tmp; its
# test servers keep their trees in the copy's t/tmp.
#
# Logs: check/build/mutants/NAME.log (the build and every test file's
# output), and report.txt there, the table printed at the end.
use v5.36;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $REPO = abs_path(dirname(__FILE__) . '/..');
my $LIST = "$REPO/check/mutants.txt";
my $LOGS = "$REPO/check/build/mutants";
my $PROVE = $ENV{PROVE} // 'prove';
my $MAKE  = $ENV{MAKE} // 'make';

my %opt = (timeout => 300, exclude => []);
GetOptions(\%opt, 'check', 'no-baseline', 'equivalent', 'keep',
    'timeout=i', 'exclude=s@') or die "usage: $0 [--check] [--no-baseline] "
    . "[--equivalent] [--keep] [--timeout S] [--exclude t/F.t] [NAME ...]\n";

# The tree as it is now: every mutant is made from this one snapshot, so
# that edits made in the checkout during the run change nothing.
my $SNAP = $opt{check} ? $REPO : copy_tree();
END { remove_tree($SNAP) if $SNAP && $SNAP ne $REPO && !$opt{keep} }
my @mutants = parse_list($LIST);
my @tests = map { s{^\Q$SNAP\E/}{}r } sort glob "$SNAP/t/*.t";
my %is_test = map { $_ => 1 } @tests;
my %excluded = map { $_ => 1 } $opt{exclude}->@*;
my @bad_exclude = grep { !$is_test{$_} } keys %excluded;
die "--exclude: no test file @bad_exclude\n" if @bad_exclude;
@tests = grep { !$excluded{$_} } @tests;
my @errors = validate(\@mutants, \%is_test);
die map { "check/mutants.txt: $_\n" } @errors if @errors;
if (@ARGV) {
    my %want = map { $_ => 1 } @ARGV;
    my %known = map { $_->{name} => 1 } @mutants;
    my @unknown = grep { !$known{$_} } @ARGV;
    die "no such mutant: @unknown\n" if @unknown;
    @mutants = grep { $want{ $_->{name} } } @mutants;
}
if ($opt{check}) {
    printf "check/mutants.txt: %d mutants, each original text found "
        . "exactly once\n", scalar @mutants;
    exit 0;
}

make_path($LOGS);
my $t0 = time;
# Test servers must not inherit a module or environment meant for another
# run (check/asan.sh sets these).
delete @ENV{qw(MISDIRECT_SO MISDIRECT_HTTPD_ENV)};
# The command running now leads its own process group, which does not
# hear the terminal: pass an interrupt on.
my $CHILD;
$SIG{INT} = $SIG{TERM} = sub {
    kill 'TERM', -$CHILD if $CHILD;
    die "interrupted\n";
};

unless ($opt{'no-baseline'}) {
    print "=== baseline: the unmutated copy must pass every test file\n";
    my $r = run_one({ name => 'baseline', tests => [] }, 1);
    die "check-mutants: the unmutated copy fails: "
        . ($r->{by} // $r->{result}) . " (see $LOGS/baseline.log)\n"
        unless $r->{result} eq 'survived';
    printf "=== baseline passed in %ds\n", $r->{secs};
}

my @rows;
for my $m (@mutants) {
    if ($m->{equivalent} && !$opt{equivalent}) {
        push @rows, { m => $m, result => 'equivalent', secs => 0 };
        printf "=== %s: equivalent, not run (%s)\n", $m->{name},
            $m->{equivalent};
        next;
    }
    print "=== $m->{name}: $m->{desc}\n";
    my $r = run_one($m, 0);
    push @rows, { %$r, m => $m };
    printf "=== %s: %s%s in %ds\n", $m->{name}, $r->{result},
        $r->{by} ? " by $r->{by}" : '', $r->{secs};
}

my $report = report(\@rows, time - $t0);
$report .= "left out: @{ $opt{exclude} }\n" if $opt{exclude}->@*;
print $report;
open my $fh, '>', "$LOGS/report.txt" or die "$LOGS/report.txt: $!\n";
print $fh $report;
close $fh;
exit((grep { bad($_) } @rows) ? 1 : 0);

# ---------------------------------------------------------------- list

# Entries are blocks of "key: value" lines, separated by blank lines;
# "#" starts a comment line.  Keys: name, file, desc, from, to, and
# optionally tests (likely killers, space-separated) and equivalent (why
# no test can tell).
sub parse_list ($file) {
    open my $fh, '<', $file or die "$file: $!\n";
    my (@out, $cur);
    while (my $line = <$fh>) {
        chomp $line;
        next if $line =~ /^\s*#/;
        if ($line =~ /^\s*$/) {
            push @out, $cur if $cur;
            undef $cur;
            next;
        }
        my ($k, $v) = $line =~ /^(\w+):\s*(.*?)\s*$/
            or die "$file:$.: expected 'key: value', not '$line'\n";
        $cur //= { line => $. };
        die "$file:$.: '$k' given twice\n" if exists $cur->{$k};
        $cur->{$k} = $v;
    }
    push @out, $cur if $cur;
    for my $m (@out) {
        $m->{tests} = [ split ' ', $m->{tests} // '' ];
    }
    return @out;
}

# The original text as a pattern: itself, except that any run of white
# space matches any run of white space, so that an entry survives
# re-indentation and may span lines.
sub text_re ($text) {
    my $re = join '\s+', map { quotemeta } split ' ', $text;
    return qr/$re/;
}

sub read_file ($path) {
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    return scalar <$fh>;
}

sub validate ($list, $is_test) {
    my (@err, %seen);
    for my $m (@$list) {
        my $at = "entry at line $m->{line}";
        my @missing = grep { !length($m->{$_} // '') }
            qw(name file desc from to);
        push @err, map { "$at: no '$_'" } @missing;
        next if @missing;
        $at = "$m->{name} (line $m->{line})";
        my %known = map { $_ => 1 } qw(line name file desc from to tests
            equivalent);
        push @err, "$at: unknown key '$_'" for grep { !$known{$_} } keys %$m;
        push @err, "$at: bad name" unless $m->{name} =~ /^[\w.-]+$/;
        push @err, "$at: name used twice" if $seen{ $m->{name} }++;
        push @err, "$at: 'to' equals 'from'" if $m->{to} eq $m->{from};
        push @err, "$at: no test file $_" for grep { !$is_test->{$_} }
            $m->{tests}->@*;
        my $path = "$SNAP/$m->{file}";
        if (!-f $path) {
            push @err, "$at: no file $m->{file}";
            next;
        }
        my $n = () = read_file($path) =~ /${\ text_re($m->{from})}/g;
        push @err, "$at: the original text occurs $n times in $m->{file}, "
            . 'not once' if $n != 1;
    }
    return @err;
}

# ---------------------------------------------------------------- runs

sub new_dir () {
    my $dir = tempdir('mod_misdirect-mutant.XXXXXX', TMPDIR => 1);
    # httpd's children (www-data) must enter the copy's t/tmp.
    chmod 0755, $dir or die "chmod $dir: $!\n";
    return $dir;
}

# The snapshot: the files of `git ls-files`, tracked and new, as they are
# in the working tree.
sub copy_tree () {
    my $dir = new_dir();
    open my $git, '-|', 'git', '-C', $REPO, 'ls-files', '-z', '--cached',
        '--others', '--exclude-standard' or die "git ls-files: $!\n";
    my @files = do { local $/ = "\0"; map { s/\0\z//r } <$git> };
    close $git or die "git ls-files failed\n";
    for my $f (@files) {
        my $src = "$REPO/$f";
        next if !-e $src && !-l $src;    # deleted in the working tree
        make_path(dirname("$dir/$f"));
        if (-l $src) {
            symlink readlink($src), "$dir/$f" or die "symlink $f: $!\n";
            next;
        }
        copy($src, "$dir/$f") or die "copy $f: $!\n";
        chmod((stat $src)[2] & 07777, "$dir/$f");
    }
    return $dir;
}

sub apply ($dir, $m) {
    my $path = "$dir/$m->{file}";
    my $text = read_file($path);
    my $re = text_re($m->{from});
    my $n = () = $text =~ /$re/g;
    die "$m->{name}: original text found $n times in $m->{file}\n"
        if $n != 1;
    $text =~ s/$re/$m->{to}/ or die;
    open my $fh, '>:raw', $path or die "$path: $!\n";
    print $fh $text;
    close $fh or die "$path: $!\n";
}

# Runs a command in $dir with output appended to $log; returns its exit
# status, or 'timeout'.  The command leads its own process group, so a
# timeout stops it and its children (test files stop their servers on
# SIGTERM).
sub run_logged ($dir, $log, $timeout, @cmd) {
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        setpgrp 0, 0;
        chdir $dir or die "chdir $dir: $!\n";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or die "$log: $!\n";
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd;
        die "exec $cmd[0]: $!\n";
    }
    $CHILD = $pid;
    my $done = sub ($rc) { undef $CHILD; return $rc };
    my $deadline = time + $timeout;
    while (1) {
        my $got = waitpid $pid, WNOHANG;
        return $done->($? & 127 ? 128 + ($? & 127) : $? >> 8)
            if $got == $pid;
        last if time > $deadline;
        sleep 0.2;
    }
    kill 'TERM', -$pid;
    for (1 .. 50) {
        return $done->('timeout') if waitpid($pid, WNOHANG) == $pid;
        sleep 0.2;
    }
    kill 'KILL', -$pid;
    waitpid $pid, 0;
    return $done->('timeout');
}

# Stops test servers a killed test file left running in the copy: the
# harness writes each one's pid file under t/tmp/NAME/run.
sub stop_leftovers ($dir) {
    for my $pidfile (glob "$dir/t/tmp/*/run/httpd.pid") {
        open my $fh, '<', $pidfile or next;
        my ($pid) = (<$fh> // '') =~ /^(\d+)/;
        next unless $pid && kill 0, $pid;
        my ($exe) = readlink "/proc/$pid/exe";
        next unless ($exe // '') =~ m{/apache2$};
        kill 'TERM', $pid;
    }
}

sub run_one ($m, $baseline) {
    my $start = time;
    my $log = "$LOGS/$m->{name}.log";
    unlink $log;
    my $dir = new_dir();
    system('cp', '-a', "$SNAP/.", $dir) == 0
        or die "cp -a $SNAP $dir failed\n";
    # As a first test file finds it after a whole run: some test files
    # expect the harness's t/tmp to exist already.
    make_path("$dir/t/tmp");
    chmod 0755, "$dir/t/tmp";
    my %r = (result => 'survived');
    eval {
        apply($dir, $m) unless $baseline;
        # As `make test` builds: a mutant must compile without a warning.
        my $rc = run_logged($dir, $log, 600, $MAKE, '--no-print-directory',
            'WERROR=1', 'all', 'unit');
        if ($rc) {
            %r = (result => 'build failed');
            return;
        }
        local $ENV{MISDIRECT_SO} = "$dir/.libs/mod_misdirect.so";
        my @likely = grep { !$excluded{$_} } $m->{tests}->@*;
        my %first = map { $_ => 1 } @likely;
        my @failed;
        for my $t (@likely, grep { !$first{$_} } @tests) {
            open my $fh, '>>', $log or die "$log: $!\n";
            print $fh "\n=== $t\n";
            close $fh;
            my $t1 = time;
            $rc = run_logged($dir, $log, $opt{timeout}, $PROVE, '-I',
                't/lib', $t);
            printf "    %-28s %s (%ds)\n", $t, $rc eq '0' ? 'passed'
                : $rc eq 'timeout' ? 'timed out' : 'FAILED', time - $t1
                unless $baseline && $rc eq '0';
            next if $rc eq '0';
            push @failed, $t . ($rc eq 'timeout' ? ' (timeout)' : '');
            # A mutant is killed by the first failing file; the baseline
            # goes on, to name every one.
            last unless $baseline;
        }
        %r = (result => 'killed', by => join ', ', @failed) if @failed;
    };
    my $err = $@;
    stop_leftovers($dir);
    if ($opt{keep}) {
        print "    copy kept in $dir\n";
    }
    else {
        remove_tree($dir);
    }
    die $err if $err;
    $r{secs} = time - $start;
    return \%r;
}

# ---------------------------------------------------------------- report

sub bad ($row) {
    return $row->{result} eq 'build failed'
        || ($row->{result} eq 'survived' && !$row->{m}{equivalent})
        || ($row->{result} eq 'killed' && $row->{m}{equivalent});
}

sub report ($rows, $secs) {
    my $w = 6;
    for (@$rows) { $w = length $_->{m}{name} if length $_->{m}{name} > $w }
    my $out = sprintf "\n%-*s  %-22s  %-40s %5s\n", $w, 'mutant', 'file',
        'outcome', 'time';
    my ($killed, $equiv, $scored) = (0, 0, 0);
    for my $row (@$rows) {
        my $m = $row->{m};
        my $what = $row->{result} eq 'killed' ? "killed by $row->{by}"
            : $row->{result} eq 'equivalent' ? 'equivalent (not run)'
            : $row->{result} eq 'survived' && $m->{equivalent}
                ? 'survived (equivalent)'
            : $row->{result} eq 'survived' ? 'SURVIVED'
            : $row->{result} eq 'killed' ? 'KILLED, yet marked equivalent'
            : uc $row->{result};
        $what = 'KILLED, yet marked equivalent'
            if $row->{result} eq 'killed' && $m->{equivalent};
        $out .= sprintf "%-*s  %-22s  %-40s %4ds\n", $w, $m->{name},
            $m->{file}, $what, $row->{secs};
        if ($m->{equivalent}) {
            $equiv++;
            next;
        }
        $scored++;
        $killed++ if $row->{result} eq 'killed';
    }
    $out .= sprintf "\nscore: %d of %d mutants killed%s (%.0f%%); "
        . "%d min %d s\n", $killed, $scored,
        $equiv ? ", $equiv marked equivalent" : '',
        $scored ? 100 * $killed / $scored : 100, int($secs / 60), $secs % 60;
    for my $row (grep { bad($_) } @$rows) {
        $out .= "  $row->{m}{name}: $row->{m}{desc}\n";
    }
    $out .= "check-mutants: "
        . ((grep { bad($_) } @$rows) ? 'FAILED' : 'every mutant killed or '
        . 'marked equivalent') . "\n";
    return $out;
}
