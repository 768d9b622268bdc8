#!/usr/bin/perl
# SIGTERM shutdowns under load, with the module and with httpd alone
# (make check-shutdown).  Each round starts a server, puts it under load
# (h2load over HTTP/2 and HTTP/1.1, IO::Socket::SSL clients on kept-alive
# connections; accepted, coalesced and misdirected requests, with 421s
# from mod_ssl and, where it is loaded, from the module), stops it with
# SIGTERM (apache2 -k stop) while the load runs, and looks for a child
# that crashed: "exit signal" in error_log (AH00051, AH00052) and core files
# (CoreDumpDirectory, core size unlimited).  The two kinds of server take
# turns, so that whatever else the machine does falls on both alike.
#
# Passes when the module does not raise the rate of crashed shutdowns
# (one-sided Fisher exact test, p < 0.05 fails) and no core shows a frame
# of mod_misdirect.so.  A crash of httpd alone is reported, not failed:
# the point is whether the module adds any.
#
#   perl check/shutdown.pl
#   SHUTDOWN_ROUNDS=N      rounds of each kind (300)
#   SHUTDOWN_ARMS=both|module|stock
#   SHUTDOWN_MPM=event|worker   (prefork has no HTTP/2)
#   SHUTDOWN_THREADS=N     ThreadsPerChild (the harness's 10 by default),
#                          with 2N MaxRequestWorkers
#   SHUTDOWN_CLIENTS=N     HTTP/1.1 client processes beside h2load (3)
#   SHUTDOWN_DIR=DIR       where results go (check/build/shutdown)
#
# Each round's result is a line of check/build/shutdown/results.txt; a
# round that crashed keeps its error_log, configuration, cores and their
# backtraces (gdb) in check/build/shutdown/round-N-ARM/.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../t/lib", $FindBin::Bin;
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use List::Util qw(min sum0);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

# Core files need an unlimited core size, inherited from here.
BEGIN {
    return if $^C;
    my $limit = `sh -c 'ulimit -c' 2>/dev/null` // '';
    chomp $limit;
    if ($limit ne 'unlimited' && !$ENV{SHUTDOWN_ULIMIT_TRIED}) {
        $ENV{SHUTDOWN_ULIMIT_TRIED} = 1;
        exec 'sh', '-c', 'ulimit -c unlimited 2>/dev/null; exec "$@"',
            'sh', $^X, $0, @ARGV;
    }
}

use MisdirectTest;
use LoadKit qw(h2load_start fork_worker https_once crash_lines);

my $ROUNDS = $ENV{SHUTDOWN_ROUNDS} // 300;
my $ARMS   = $ENV{SHUTDOWN_ARMS} // 'both';
my $MPM    = $ENV{SHUTDOWN_MPM} // 'event';
my $THREADS = $ENV{SHUTDOWN_THREADS};
my $CLIENTS = $ENV{SHUTDOWN_CLIENTS} // 3;
my $LOAD_MIN = 0.8;     # seconds of load before SIGTERM: 0.8 to 1.6
my $LOAD_SPAN = 0.8;
my $OUT = $ENV{SHUTDOWN_DIR} // "$FindBin::Bin/build/shutdown";
my $GDB = '/usr/bin/gdb';
$| = 1;

$ARMS =~ /^(?:both|module|stock)$/ or die "SHUTDOWN_ARMS: both, module "
    . "or stock\n";
$MPM =~ /^(?:event|worker)$/ or die "SHUTDOWN_MPM: event or worker\n";
$CLIENTS =~ /^\d+$/ or die "SHUTDOWN_CLIENTS: a number\n";
!defined $THREADS || ($THREADS =~ /^\d+$/ && $THREADS > 0)
    or die "SHUTDOWN_THREADS: a number\n";
my @arms = $ARMS eq 'both' ? (1, 0) : $ARMS eq 'module' ? (1) : (0);
# The module's file is copied once: a rebuild during the run must not
# change what is measured.
make_path($OUT);
my $so = $ENV{MISDIRECT_SO} // "$FindBin::Bin/../.libs/mod_misdirect.so";
if (grep { $_ } @arms) {
    -f $so or die "$so not found: run make first\n";
    copy($so, "$OUT/mod_misdirect.so") or die "copy $so: $!\n";
    chmod 0755, "$OUT/mod_misdirect.so";
    $ENV{MISDIRECT_SO} = "$OUT/mod_misdirect.so";
}
my $results = "$OUT/results.txt";
open my $res_fh, '>', $results or die "$results: $!\n";
$res_fh->autoflush(1);
my $limit = `sh -c 'ulimit -c'`;
chomp $limit;
say "shutdown: $ROUNDS rounds each of ", join(' and ',
    map { $_ ? 'the module' : 'httpd alone' } @arms), ", $MPM MPM, core "
    . "size limit $limit, "
    . ($THREADS ? "ThreadsPerChild $THREADS, " : '') . "results in $results";

# Requests that the module rejects itself where it is loaded (a
# coalesced request under sni-host-mismatch reject) and that httpd alone
# serves; mod_ssl refuses alpha.test -> beta.test either way.
my $GLOBAL = <<~'EOF';
    <IfModule misdirect_module>
        MisdirectPolicy sni-host-mismatch reject
    </IfModule>
    EOF
# HTTP/1.1 connections, [sni, [host, tag]...]; a 421 comes last, since
# it ends the connection.
my @CONNS = (
    ['alpha.test',   ['alpha.test', 'ok'], ['alpha.test', 'ok'],
                     ['beta.test', 'ssl421']],
    ['shared1.test', ['shared1.test', 'ok'], ['shared2.test', 'coalesced']],
    ['alpha.test',   ['www.alpha.test', 'ok'], ['alpha.test', 'ok'],
                     ['alpha.test', 'ok']],
    ['alpha.test',   ['beta.test', 'ssl421']],
);

# The current round's clients, ended also when the run is interrupted
# (MisdirectTest's own END then stops the server).
my $MAIN = $$;
my (@RUNNING, @PERL_CLIENTS);
END { end_clients() if $$ == $MAIN }

# h2load ends on SIGTERM; the Perl clients get SIGKILL, since one that
# dies on SIGTERM in the middle of a TLS call can free its connection
# twice and dump core (the core size limit is unlimited here).
sub end_clients () {
    my %perl = map { $_ => 1 } @PERL_CLIENTS;
    kill 'TERM', grep { !$perl{$_} } @RUNNING;
    kill 'KILL', @PERL_CLIENTS;
    waitpid $_, 0 for @RUNNING;
    @RUNNING = @PERL_CLIENTS = ();
}

my (%n, %crashed, %cores, @problems);
my $t0 = time;
for my $round (1 .. $ROUNDS) {
    for my $mod (@arms) {
        my $r = one_round($round, $mod);
        my $arm = $mod ? 'module' : 'stock';
        $n{$arm}++;
        $crashed{$arm}++ if $r->{crashed};
        $cores{$arm} += $r->{cores};
        printf $res_fh "%d %s crashed=%d cores=%d requests=%d "
            . "load=%.2fs stop=%.2fs%s\n", $round, $arm, $r->{crashed},
            $r->{cores}, $r->{requests}, $r->{load}, $r->{stop},
            $r->{note} ? " $r->{note}" : '';
        push @problems, "round $round ($arm): $_" for $r->{problems}->@*;
    }
    printf "shutdown: round %d of %d, %.0fs; crashed: %s\n", $round,
        $ROUNDS, time - $t0, join ', ',
        map { "$_ " . ($crashed{$_} // 0) . "/$n{$_}" } sort keys %n
        if $round % 10 == 0 || $round == $ROUNDS;
}

say "";
for my $arm (sort keys %n) {
    printf "%-7s %d shutdowns, %d with a crashed child, %d core files\n",
        $arm, $n{$arm}, $crashed{$arm} // 0, $cores{$arm} // 0;
}
if ($n{module} && $n{stock}) {
    my ($a, $b) = ($crashed{module} // 0, $crashed{stock} // 0);
    my ($p1, $p2) = fisher($a, $n{module} - $a, $b, $n{stock} - $b);
    printf "Fisher exact test, module against httpd alone: p = %.4g "
        . "(one-sided, the module crashes more), p = %.4g (two-sided)\n",
        $p1, $p2;
    push @problems, sprintf "the module raises the rate of crashed "
        . "shutdowns: %d of %d against %d of %d (p = %.4g)", $a,
        $n{module}, $b, $n{stock}, $p1 if $p1 < 0.05;
}
printf "shutdown: %.0fs\n", time - $t0;
if (@problems) {
    say "check-shutdown: FAILED";
    say "  $_" for @problems;
    exit 1;
}
say "check-shutdown: the module adds no crash at shutdown";
exit 0;

# ---------------------------------------------------------------- a round

sub one_round ($round, $mod) {
    my $arm = $mod ? 'module' : 'stock';
    # CoreDumpDirectory must exist when httpd reads it, and children
    # (www-data) must be able to write there.
    my $cores = MisdirectTest::tmp_root() . "/shutdown-cores-$$";
    remove_tree($cores);
    make_path($cores);
    chmod 0777, $cores;
    my $s = MisdirectTest->new(name => "shutdown-$arm", mpm => $MPM,
        misdirect => $mod, loglevel => 'warn',
        # Crashed children at the stop are what this script counts, among
        # thousands of 421 lines by design: it reads error_log itself, and
        # the harness must not fail the run on a crash (log_sweep).
        log_sweep => 0,
        global => $GLOBAL . "CoreDumpDirectory $cores\n" . ($THREADS
            ? "ThreadsPerChild $THREADS\nMaxSpareThreads " . 2 * $THREADS
              . "\nMaxRequestWorkers " . 2 * $THREADS . "\n" : ''));
    my $root = $s->root;
    my $tls = $s->tls_port;
    my $dir = "$root/load";
    make_path($dir);

    my @h2;
    push @h2, h2load_start(name => 'ok', duration => 60, c => 3, m => 10,
        sni => 'alpha.test', authority => 'alpha.test', port => $tls,
        dir => $dir);
    push @h2, h2load_start(name => 'coalesced', duration => 60, c => 2,
        m => 10, sni => 'shared1.test', authority => 'shared2.test',
        port => $tls, dir => $dir);
    push @h2, h2load_start(name => 'ssl421', duration => 60, c => 1,
        m => 10, sni => 'alpha.test', authority => 'beta.test',
        port => $tls, dir => $dir);
    push @h2, h2load_start(name => 'h1', duration => 60, c => 2, m => 1,
        h1 => 1, sni => 'alpha.test', authority => 'alpha.test',
        port => $tls, dir => $dir);
    my @workers;
    for my $w (0 .. $CLIENTS - 1) {
        push @workers, fork_worker("$dir/client-$w", sub ($out) {
            my $i = $w;
            while (1) {
                my ($sni, @reqs) = @{ $CONNS[$i++ % @CONNS] };
                my @got = https_once($tls, $sni, @reqs);
                print $out "$_->[0]\n" for @got;
            }
        });
    }

    @RUNNING = ((map { $_->{pid} } @h2), @workers);
    @PERL_CLIENTS = @workers;

    my $load = $LOAD_MIN + rand $LOAD_SPAN;
    sleep $load;
    my $mark = $s->mark;
    my $t1 = time;
    $s->stop;                   # apache2 -k stop: SIGTERM to the parent
    my $stop = time - $t1;

    end_clients();              # ours: ended by their ids

    my $log = $s->error_log_since;
    my @crash = crash_lines($log);
    my @cores = glob "$cores/core*";
    my $requests = () = $s->access_log_since =~ /\n/g;
    my %r = (crashed => @crash || @cores ? 1 : 0, cores => scalar @cores,
        requests => $requests, load => $load, stop => $stop,
        problems => []);
    push $r{problems}->@*, "the server served no request before SIGTERM"
        unless $requests;
    # -k stop waits 10 s, then sends SIGKILL.
    $r{note} = 'slow-stop' if $stop > 9;
    if ($r{crashed}) {
        my $keep = "$OUT/round-$round-$arm";
        remove_tree($keep);
        make_path($keep);
        copy("$root/logs/error_log", "$keep/error_log");
        copy("$root/conf/httpd.conf", "$keep/httpd.conf");
        for my $core (@cores) {
            (my $base = $core) =~ s{.*/}{};
            copy($core, "$keep/$base");
            my $bt = backtrace($core);
            open my $fh, '>', "$keep/$base.bt" or die "$keep/$base.bt: $!\n";
            print $fh $bt;
            close $fh;
            # Stack frames only: the list of libraries names the module.
            push $r{problems}->@*, "core $keep/$base has a frame of "
                . "mod_misdirect" if grep { /^#\d+ .*misdirect/ }
                split /\n/, $bt;
        }
        $r{note} = join ' ', grep { defined } $r{note},
            "kept=$keep", map { s/^\[[^]]*\] //r =~ s/\s+/_/gr } @crash;
        printf "shutdown: round %d (%s): crashed child, %d core(s), kept "
            . "in %s\n", $round, $arm, scalar @cores, $keep;
        print "  $_\n" for @crash;
    }
    remove_tree($root, $cores);
    return \%r;
}

sub backtrace ($core) {
    return "gdb not found\n" unless -x $GDB;
    my $apache = MisdirectTest::httpd_binary();
    my @ex = map { ('-ex', "'$_'") } 'set pagination off',
        'info sharedlibrary', 'thread apply all bt full';
    return scalar `$GDB -batch -nx @ex $apache $core 2>&1`;
}

# ---------------------------------------------------------------- Fisher

# P-values of Fisher's exact test on the 2x2 table [[a, b], [c, d]]
# (crashed and clean shutdowns of each kind): one-sided, that the first
# row crashes more (the tables with at least a crashes, the margins
# kept), and two-sided (the tables no more likely than the one seen).
sub fisher ($a, $b, $c, $d) {
    my ($row1, $col1, $n) = ($a + $b, $a + $c, $a + $b + $c + $d);
    my $lo = $col1 - ($c + $d) > 0 ? $col1 - ($c + $d) : 0;
    my $hi = min($row1, $col1);
    my $lf = sub ($k) { my $s = 0; $s += log $_ for 2 .. $k; $s };
    my $p = sub ($x) {
        exp($lf->($row1) + $lf->($n - $row1) + $lf->($col1)
            + $lf->($n - $col1) - $lf->($n) - $lf->($x)
            - $lf->($row1 - $x) - $lf->($col1 - $x)
            - $lf->($n - $row1 - $col1 + $x));
    };
    my @px = map { $p->($_) } $lo .. $hi;
    my $seen = $p->($a);
    my $one = sum0(@px[$a - $lo .. $hi - $lo]);
    my $two = sum0(grep { $_ <= $seen * (1 + 1e-7) } @px);
    return (min(1, $one), min(1, $two));
}
