#!/usr/bin/perl
# Load with faults (make check-load): more than 100,000 requests against
# one httpd with mod_misdirect, all at once from
#   - h2load, HTTP/2 with 100 streams per connection and HTTP/1.1:
#     accepted (SNI and host agree), coalesced (SNI shared1.test, host
#     shared2.test: same certificate and TLS settings, sni-host-mismatch
#     allowed), misdirected (SNI alpha.test, host beta.test: cert-mismatch,
#     the module's 421) and refused by mod_ssl (host shared3.test, whose
#     SSLVerifyClient differs: mod_ssl's 421, which the module explains);
#   - HTTP/1.1 clients that get a 421 after a 200 on one connection and
#     must see the connection closed;
#   - clients that abort mid-handshake and mid-request (FIN and RST, TLS
#     and plain, HTTP/1.1 and h2);
#   - TLS 1.3 sessions resumed under another SNI name (openssl s_client
#     -sess_out / -sess_in).
# Every response's status is counted against the expected one (from the
# clients and from access_log), error_log must show no crashed child,
# the children must be the same processes at the end, and their memory
# (VmRSS) must stay flat: after a warm-up of 20% of the requests, the
# second of two equal halves may not add more than LOAD_RSS_SLACK_KB.
#
#   perl check/load.pl    LOAD_MPM=event|worker|prefork  LOAD_SCALE=1
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../t/lib", $FindBin::Bin;
use MisdirectTest;
use LoadKit qw(h2load_start h2load_result fork_worker wait_workers
    read_results https_once abort_client resume_round children rss_kb
    crash_lines);
use List::Util qw(max sum0);
use POSIX qw(ceil);
use Time::HiRes qw(sleep time);

my $MPM   = $ENV{LOAD_MPM} // 'event';
my $SCALE = $ENV{LOAD_SCALE} // 1;
# Memory may grow by this much over the second half (40% of the
# requests, ~40,000), in all children together: a leak of 100 bytes a
# request would add about as much.
my $SLACK_KB = $ENV{LOAD_RSS_SLACK_KB} // 4096;
# Memory that allocators keep for reuse grows with every thread that
# gets some work, which hides a leak: make APR's allocators give back
# what they free beyond a little (MaxMemFree, kB) and glibc use few
# arenas, so that what stays is what is still in use.
my $MAXMEMFREE = $ENV{LOAD_MAXMEMFREE} // 64;
$ENV{MISDIRECT_HTTPD_ENV} = join ' ', grep { length }
    $ENV{MISDIRECT_HTTPD_ENV} // '', 'MALLOC_ARENA_MAX=2';
my $t0 = time;
$| = 1;

# A fixed set of children: none started or stopped during the run, so
# that their memory can be compared and any replacement is a crash.
my %MPM_CONF = (
    event   => "ServerLimit 4\nStartServers 4\nThreadsPerChild 25\n"
             . "MaxRequestWorkers 100\nMinSpareThreads 100\n"
             . "MaxSpareThreads 125\nMaxConnectionsPerChild 0",
    prefork => "ServerLimit 48\nStartServers 48\nMinSpareServers 48\n"
             . "MaxSpareServers 48\nMaxRequestWorkers 48\n"
             . "MaxConnectionsPerChild 0",
);
$MPM_CONF{worker} = $MPM_CONF{event};
die "LOAD_MPM: event, worker or prefork\n" unless $MPM_CONF{$MPM};

# LOAD_WITHOUT_MODULE=1: the same run without mod_misdirect, for the
# memory figures of httpd alone (the statuses are the same: mod_ssl
# refuses the misdirected requests then).
my $s = MisdirectTest->new(name => "load-$MPM", mpm => $MPM,
    misdirect => $ENV{LOAD_WITHOUT_MODULE} ? 0 : 1,
    # Tens of thousands of 421 lines by design, and the MPM's notes on its
    # capacity under the load: this script reads error_log itself (for
    # crashed children, below), so the harness does not sweep it.
    log_sweep => 0,
    loglevel => 'warn', global => "$MPM_CONF{$MPM}\nKeepAliveTimeout 30\n"
        . "MaxMemFree $MAXMEMFREE\n");
my ($tls, $plain) = ($s->tls_port, $s->plain_port);
my $dir = $s->root . '/load';
mkdir $dir;
chmod 0777, $dir;

# name, n (at scale 1), c, m, h1, sni, authority, expected status
my @H2LOAD = (
    ['h2-accepted',   42000, 4, 100, 0, 'alpha.test',   'alpha.test',   200],
    ['h2-coalesced',  20000, 4, 100, 0, 'shared1.test', 'shared2.test', 200],
    ['h2-misdirected',15000, 4, 100, 0, 'alpha.test',   'beta.test',    421],
    ['h2-mod-ssl-421', 5000, 2, 100, 0, 'shared1.test', 'shared3.test', 421],
    ['h1-accepted',   12000, 4,   1, 1, 'alpha.test',   'alpha.test',   200],
    ['h1-coalesced',   6000, 4,   1, 1, 'shared1.test', 'shared2.test', 200],
);
# mod_http2 refuses to run under prefork (AH10034): there, HTTP/2 jobs
# that expect 200 run as HTTP/1.1 (the accepted ones grown to keep the
# total above 100,000), and the misdirected ones, whose 421 closes an
# HTTP/1.1 connection, come from the HTTP/1.1 clients instead.
my $H1_MIS_CONNS = 1000;     # each: a 200, then a 421 that closes
if ($MPM eq 'prefork') {
    @H2LOAD = map {
        my @j = @$_;
        $j[0] =~ /^h2-/ && $j[7] == 200
            ? do { $j[0] =~ s/^h2-/h1-as-h2-/; @j[3, 4] = (1, 1);
                   $j[1] += 14000 if $j[0] =~ /accepted/; \@j }
            : $j[0] =~ /^h2-/ ? () : \@j;
    } @H2LOAD;
    $H1_MIS_CONNS = 3000;
}
my @ABORTS = qw(tcp-close tcp-rst hello-half hello-rst garbage request-half
    request-rst body-half h2-half plain-half);
my %PERL_WANT = ('h1-keepalive-then-421' => 200,
                 'h1-misdirected-closes' => 421);
my $ABORT_CONNS  = 1000;
my $RESUME_ROUNDS = 50;      # each: 5 s_client connections

my (%want, %got, %h2stats, @problems);
my $requests = 0;

# One share of the whole mix, everything at once.
sub run_mix ($label, $share) {
    my $t = time;
    my (@jobs, @pids, @files);
    for my $j (@H2LOAD) {
        my ($name, $n, $c, $m, $h1, $sni, $auth, $status) = @$j;
        $n = max($c, ceil($n * $SCALE * $share));
        push @jobs, h2load_start(name => "$name-$label", n => $n, c => $c,
            m => $m, h1 => $h1, sni => $sni, authority => $auth,
            port => $tls, dir => $dir);
        $jobs[-1]{kind} = $name;
        $jobs[-1]{want} = $status;
    }
    my $conns = max(4, ceil($H1_MIS_CONNS * $SCALE * $share));
    for my $w (0 .. 3) {
        push @files, "$dir/h1mis-$label-$w";
        push @pids, fork_worker($files[-1], sub ($out) {
            for (1 .. ceil($conns / 4)) {
                my @r = https_once($tls, 'alpha.test',
                    ['alpha.test', 'h1-keepalive-then-421'],
                    ['beta.test', 'h1-misdirected-closes']);
                print $out "h1-keepalive-then-421 $r[0][0]\n";
                print $out "h1-misdirected-closes "
                    . ($r[1] ? "$r[1][0]" . ($r[1][1] ? '' : '+open')
                             : 'ERR:missing') . "\n";
            }
        });
    }
    my $aborts = max(scalar @ABORTS, ceil($ABORT_CONNS * $SCALE * $share));
    for my $w (0 .. 1) {
        push @files, "$dir/abort-$label-$w";
        push @pids, fork_worker($files[-1], sub ($out) {
            for my $i (1 .. ceil($aborts / 2)) {
                my $kind = $ABORTS[($i + $w) % @ABORTS];
                print $out "abort-$kind ", abort_client($kind, $tls, $plain),
                    "\n";
            }
        });
    }
    my $rounds = max(1, ceil($RESUME_ROUNDS * $SCALE * $share));
    push @files, "$dir/resume-$label";
    push @pids, fork_worker($files[-1], sub ($out) {
        for (1 .. $rounds) {
            for my $r (resume_round($tls, $dir)) {
                my ($tag, $want, $gotst, $resumed) = @$r;
                print $out "$tag ", ($gotst eq $want ? 'ok' : "got-$gotst"),
                    ($resumed ? ' resumed' : ' full'), "\n";
            }
        }
    });

    # Collect.
    for my $job (@jobs) {
        my $r = h2load_result($job);
        my $n = $job->{n};
        $want{$job->{kind}}{$job->{want}} += $n;
        $got{$job->{kind}}{$_} += $r->{status}{$_} for keys $r->{status}->%*;
        $requests += $n;
        my $st = $h2stats{$job->{kind}} //= {};
        $st->{$_} += $r->{$_} // 0 for qw(errored timeout);
        push @problems, "$job->{kind} ($label): h2load exit $r->{rc}, "
            . "errored $r->{errored}, timeout $r->{timeout}"
            if $r->{rc} || $r->{errored} || $r->{timeout};
    }
    wait_workers(@pids);
    my $res = read_results(@files);
    for my $tag (sort keys %$res) {
        for my $outcome (keys $res->{$tag}->%*) {
            my $count = $res->{$tag}{$outcome};
            if ($tag =~ /^abort-/) {
                $want{$tag}{done} += $count;
                $got{$tag}{$outcome} += $count;
                next;
            }
            $requests += $count;
            if ($tag =~ /^res-/) {
                my ($verdict, $how) = split / /, $outcome;
                $want{$tag}{ok} += $count;
                $got{$tag}{$verdict} += $count;
                $got{"$tag (resumed)"}{$how} += $count;
            }
            else {
                $want{$tag}{$PERL_WANT{$tag} // 'unknown'} += $count;
                $got{$tag}{$outcome} += $count;
            }
        }
    }
    printf "load: %-8s %6d requests so far, %.0fs\n", $label, $requests,
        time - $t;
}

sub rss_of (@pids) { map { ($_, rss_kb($_) // 0) } @pids }

my $ppid = $s->pid;
# The warm-up fills the allocators' free lists, TLS session caches and
# mod_http2's worker pools; after it, two equal halves: a leak grows
# memory in both alike, caches that have settled do not.
run_mix('warmup', 0.2);
my @kids = children($ppid);
my %w = rss_of(@kids);
run_mix('main1', 0.4);
my %h = rss_of(@kids);
my $before_main2 = $requests;
run_mix('main2', 0.4);
my %e = rss_of(@kids);
my $main2 = $requests - $before_main2;
my @kids_end = children($ppid);

# Still serving?
my @health = https_once($tls, 'alpha.test', ['alpha.test', 'health']);
push @problems, "health check after the load: $health[0][0]"
    unless $health[0][0] eq '200';

# --------------------------------------------------------------- verdict

# access_log: the server's own count, per tag and status.
my %acc;
for my $line (split /\n/, $s->access_log_since) {
    my ($status) = $line =~ /^\S+ (\d{3}) /;
    my ($tag) = $line =~ /[?&]k=([\w.-]+)/ or next;
    $tag =~ s/-(?:warmup|main\d)$//;
    $acc{$tag}{$status}++;
}

say "";
say "kind                           expected             got (clients)        access_log";
for my $kind (sort keys %want) {
    my $w = join ' ', map { "$_=$want{$kind}{$_}" } sort keys $want{$kind}->%*;
    my $g = join ' ', map { "$_=$got{$kind}{$_}" } sort keys(($got{$kind} // {})->%*);
    my $a = join ' ', map { "$_=$acc{$kind}{$_}" } sort keys(($acc{$kind} // {})->%*);
    printf "%-30s %-20s %-20s %s\n", $kind, $w, $g, $a;
    push @problems, "$kind: expected $w, clients got $g" if $w ne $g;
    if ($kind =~ /^h[12]-/) {
        # Every request that h2load counted, the server logged.
        push @problems, "$kind: expected $w, access_log has $a"
            if $w ne $a;
    }
}
for my $tag (sort grep { /\(resumed\)/ } keys %got) {
    printf "%-30s %s\n", $tag, join ' ', map { "$_=$got{$tag}{$_}" }
        sort keys $got{$tag}->%*;
}
printf "%-30s %s\n", 'aborted connections (access_log)',
    join ' ', map { "$_=$acc{abort}{$_}" } sort keys(($acc{abort} // {})->%*);

my @crash = crash_lines($s->error_log_since);
push @problems, "error_log: $_" for @crash;
push @problems, "children changed: [@kids] at warm-up, [@kids_end] at end"
    if "@kids" ne "@kids_end";

say "";
say "children VmRSS (kB): pid warm-up half end";
printf "  %-8d %8d %8d %8d\n", $_, $w{$_}, $h{$_}, $e{$_} for @kids;
my ($sw, $sh, $se) = (sum0(values %w), sum0(values %h), sum0(values %e));
printf "  %-8s %8d %8d %8d\n", 'total', $sw, $sh, $se;
printf "  growth: warm-up to end %+d kB; second half %+d kB over %d requests"
    . " (%.1f bytes a request, were it a leak), allowed %d kB\n",
    $se - $sw, $se - $sh,
    $main2, ($se - $sh) * 1024 / max(1, $main2), $SLACK_KB;
push @problems, sprintf "children's memory grew by %d kB in the second "
    . "half (> %d)", $se - $sh, $SLACK_KB if $se - $sh > $SLACK_KB;

$s->stop;
my $secs = time - $t0;
printf "\nload: %s MPM, %d requests (+%d aborted connections) in %.0fs\n",
    $MPM, $requests, sum0(map { values $got{$_}->%* } grep { /^abort-/ } keys %got),
    $secs;
if (@problems) {
    say "check-load: FAILED";
    say "  $_" for @problems;
    exit 1;
}
say "check-load: every status as expected, no crash, memory flat";
exit 0;
