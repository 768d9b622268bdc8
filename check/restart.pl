#!/usr/bin/perl
# Graceful and full restarts under load (make check-load runs it after
# check/load.pl): HTTP/1.1 clients on new and kept-alive connections and
# h2load over HTTP/2 keep sending accepted, coalesced and misdirected
# requests while httpd is restarted gracefully four times and fully twice.
#
# Passes when
#   - no child crashes (error_log) and the server answers afterwards;
#   - every response has the expected status;
#   - no HTTP/1.1 request fails except those a restart itself closes: on a
#     full restart, requests in flight; on any restart, a kept-alive
#     connection the server closes before reading the next request (the
#     client retries it on a new connection, RFC 9112 9.3.1, and that
#     retry must succeed); h2load's failed streams are at most the streams
#     in flight at the full restarts;
#   - no shared-memory leak: the parent (which survives every restart)
#     maps no more shared segments after the last restart than after the
#     first, and after the stop no SysV segment that httpd created and no
#     /dev/shm file that it mapped is left.
#
#   perl check/restart.pl    LOAD_MPM=event|worker|prefork
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../t/lib", $FindBin::Bin;
use MisdirectTest;
use LoadKit qw(h2load_start h2load_result fork_worker wait_workers
    read_results https_once children shm_snapshot shared_maps crash_lines);
use List::Util qw(max min sum0);
use Time::HiRes qw(sleep time);

my $MPM = $ENV{LOAD_MPM} // 'event';
my $MODDIR = MisdirectTest::module_dir();
my @PLAN = qw(graceful graceful restart graceful restart graceful);
my $GAP = 3;            # seconds of load between restarts
my $CLIENTS = 6;        # HTTP/1.1 client processes
my $t0 = time;
$| = 1;

my $shm_before = shm_snapshot();
my $s = MisdirectTest->new(name => "restart-$MPM", mpm => $MPM,
    loglevel => 'warn',
    # Thousands of 421 lines by design, and what restarts under load make
    # the MPM say: this script reads error_log itself (for crashed
    # children, below), so the harness does not sweep it.
    log_sweep => 0,
    global => "LoadModule status_module $MODDIR/mod_status.so\n"
        . "KeepAliveTimeout 30\n",
    vhost => { 'plain:beta.test' => "<Location /misdirect-status>\n"
        . "SetHandler misdirect-status\n</Location>" });
my ($tls, $ppid) = ($s->tls_port, $s->pid);
my $dir = $s->root . '/restart';
mkdir $dir;
my $stop = "$dir/stop";

my %pids = ($ppid => 1);
my %mapped;             # /dev/shm and SysV mappings seen in httpd
sub look () {
    $pids{$_} = 1 for children($ppid);
    for my $pid (keys %pids) {
        for my $m (shared_maps($pid)) {
            my ($inode, $path) = split / /, $m, 2;
            $mapped{$path} = 1 if $path =~ m{^/dev/shm/|^/SYSV};
        }
    }
    return scalar shared_maps($ppid);
}

# ----------------------------------------------------------------- load

# Connections: [sni, [host, expected status]...]; a misdirected request
# (which closes the connection) only comes last.
my @CONNS = (
    ['alpha.test',   ['alpha.test', 200]],
    ['alpha.test',   ['alpha.test', 200], ['alpha.test', 200],
                     ['alpha.test', 200], ['beta.test', 421]],
    ['shared1.test', ['shared1.test', 200], ['shared2.test', 200],
                     ['shared2.test', 200], ['shared1.test', 200]],
    ['alpha.test',   ['beta.test', 421]],
    ['shared1.test', ['shared2.test', 200]],
    ['alpha.test',   ['www.alpha.test', 200], ['alpha.test', 200]],
);
my @files = map { "$dir/client-$_" } 1 .. $CLIENTS;
my @workers;
for my $w (1 .. $CLIENTS) {
    push @workers, fork_worker($files[$w - 1], sub ($out) {
        my $i = $w;
        until (-e $stop) {
            my ($sni, @reqs) = @{ $CONNS[$i++ % @CONNS] };
            my $retry = 1;
            while ($retry) {
                $retry = 0;
                my $t1 = time;
                my @res = https_once($tls, $sni,
                    map { [$_->[0], "restart-$_->[1]"] } @reqs);
                my $t2 = time;
                for my $n (0 .. $#res) {
                    my ($got) = @{ $res[$n] };
                    my $want = $reqs[$n][1];
                    my $what = $got eq $want ? 'ok'
                        : $got eq 'ERR:closed' && $n > 0 ? 'idle-closed'
                        : "fail:$got";
                    printf $out "%s %s %.3f %.3f %d\n", "want$want", $what,
                        $t1, $t2, $n;
                    if ($what eq 'idle-closed') {
                        # Retry the rest on a new connection.
                        @reqs = @reqs[$n .. $#reqs];
                        $retry = 1;
                    }
                }
            }
        }
    });
}
my $duration = $GAP * (@PLAN + 2);
# Under prefork mod_http2 is off (AH10034): HTTP/1.1 from h2load then,
# and only the accepted kind (a 421 ends an HTTP/1.1 connection, which
# h2load counts as an error).
my $h1 = $MPM eq 'prefork';
my @h2 = h2load_start(name => 'restart-h2-accepted',
    duration => $duration, c => 2, m => $h1 ? 1 : 20, h1 => $h1,
    sni => 'alpha.test', authority => 'alpha.test', port => $tls,
    dir => $dir);
$h2[0]{want} = 200;
unless ($h1) {
    push @h2, h2load_start(name => 'restart-h2-misdirected',
        duration => $duration, c => 2, m => 20, sni => 'alpha.test',
        authority => 'beta.test', port => $tls, dir => $dir);
    $h2[1]{want} = 421;
}

# ----------------------------------------------------------------- restarts

my (@windows, @maps, @problems);
my $start_maps = look();
sleep $GAP;
my $first_maps;
for my $how (@PLAN) {
    my $t1 = time;
    eval { $s->$how; 1 } or push @problems, "$how: $@";
    my $t2 = time;
    push @windows, [$how, $t1, $t2];
    my $n = look();
    $first_maps //= $n;
    push @maps, $n;
    printf "restart: %-8s took %.1fs; parent's shared mappings: %d\n",
        $how, $t2 - $t1, $n;
    sleep $GAP;
}
open my $fh, '>', $stop or die "$stop: $!\n";
close $fh;
wait_workers(@workers);
my %h2r = map { $_->{name} => [$_, h2load_result($_)] } @h2;
look();

# ----------------------------------------------------------------- verdict

# Was [t1, t2] during a restart of one of the kinds given?
sub during ($t1, $t2, @kinds) {
    for my $w (@windows) {
        my ($how, $w1, $w2) = @$w;
        next unless grep { $_ eq $how } @kinds;
        return 1 if $t1 <= $w2 + 1.0 && $t2 >= $w1 - 0.05;
    }
    return 0;
}

my (%count, @late);
for my $f (@files) {
    open my $in, '<', $f or next;
    while (my $line = <$in>) {
        my ($want, $what, $t1, $t2, $n) = split ' ', $line;
        if ($what eq 'ok') {
            $count{ok}++;
        }
        elsif ($what eq 'idle-closed') {
            if (during($t1, $t2, qw(graceful restart))) {
                $count{'idle keep-alive closed by a restart (retried)'}++;
            }
            else {
                push @late, "keep-alive connection closed outside a restart"
                    . " at " . sprintf('%.1f', $t1 - $t0);
            }
        }
        elsif ($what =~ /^fail:ERR:/ && during($t1, $t2, 'restart')) {
            $count{'in flight at a full restart'}++;
        }
        else {
            push @late, sprintf "%s at %.1fs (request %d, %s)", $what,
                $t1 - $t0, $n, $want;
        }
    }
}
my $h1_total = sum0(values %count) + @late;
say "";
say "HTTP/1.1: $h1_total requests";
printf "  %-50s %d\n", $_, $count{$_} for sort keys %count;
printf "  %-50s %d\n", 'failed otherwise', scalar @late;
say "    $_" for @late[0 .. min(9, $#late)];
push @problems, scalar(@late) . " HTTP/1.1 requests failed outside what "
    . "a restart closes" if @late;
push @problems, "no HTTP/1.1 request succeeded" unless $count{ok};

my $fulls = grep { $_->[0] eq 'restart' } @windows;
for my $name (sort keys %h2r) {
    my ($job, $r) = @{ $h2r{$name} };
    my %st = %{ $r->{status} };
    # h2load logs a stream that ended without a response as status -1.
    my $wrong = sum0(map { $st{$_} }
        grep { $_ != $job->{want} && $_ != -1 } keys %st);
    my $lost = ($st{-1} // 0) + ($r->{started} // 0) - ($r->{done} // 0)
             + ($r->{errored} // 0) + ($r->{timeout} // 0);
    my $bound = $job->{c} * $job->{m} * ($fulls + @windows);
    printf "h2load %-24s %d responses (%s), %d not completed (bound %d)\n",
        $name, sum0(values %st),
        join(' ', map { "$_=$st{$_}" } sort keys %st), $lost, $bound;
    push @problems, "$name: $wrong responses with another status than "
        . "$job->{want}" if $wrong;
    push @problems, "$name: no response at all" unless sum0(values %st);
    push @problems, "$name: $lost streams not completed, more than the "
        . "$bound in flight at the restarts" if $lost > $bound;
}

my @health = https_once($tls, 'alpha.test', ['alpha.test', 'health']);
push @problems, "after the restarts: $health[0][0]"
    unless $health[0][0] eq '200';
my @crash = crash_lines($s->error_log_since);
push @problems, "error_log: $_" for @crash;

# Shared memory.
push @problems, "the parent maps more shared segments after each restart:"
    . " @maps" if max(@maps) > $first_maps;
$s->stop;
my $after = shm_snapshot();
my @left_sysv = grep { $pids{ $after->{sysv}{$_} } } keys $after->{sysv}->%*;
my @left_files = grep { $mapped{"/dev/shm/$_"} && !$shm_before->{files}{$_} }
    keys $after->{files}->%*;
my @new_files = grep { !$shm_before->{files}{$_} } keys $after->{files}->%*;
say "shared memory: parent's shared mappings at start $start_maps, after "
    . "each restart: @maps";
say "  httpd mapped: ", join(', ', sort keys %mapped) || 'no named segment';
say "  SysV segments before: ", scalar keys $shm_before->{sysv}->%*,
    ", after stop: ", scalar keys $after->{sysv}->%*,
    ", created by httpd and left: ", scalar @left_sysv;
say "  /dev/shm entries new since start: ", scalar @new_files,
    " (mapped by httpd: ", scalar @left_files, ")";
push @problems, "SysV segments left by httpd: @left_sysv" if @left_sysv;
push @problems, "/dev/shm files left by httpd: @left_files" if @left_files;

printf "\nrestart: %s MPM, %d restarts (%d full) under load in %.0fs\n",
    $MPM, scalar @windows, $fulls, time - $t0;
if (@problems) {
    say "check-restart: FAILED";
    say "  $_" for @problems;
    exit 1;
}
say "check-restart: no crash, no request lost beyond what restarts close, "
    . "no shared memory left";
exit 0;

