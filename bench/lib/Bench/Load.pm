package Bench::Load;
# What the module costs a running server: startup time, CPU and memory
# at the largest vhost count, and requests per second under h2load, with
# and without the module alternated and loaded side by side.

use v5.36;
use Exporter qw(import);
use List::Util qw(max min);

use Bench::Env;
use Bench::Proc;
use Bench::Report qw(median);
use Bench::Server;

our @EXPORT = qw(part_startup part_throughput);

sub part_startup ($keep_up) {
    my $scale = $SCALES[-1];
    say "== startup at $scale vhosts (native, alternated)";
    my %m;
    my %up;
    for my $round (1 .. $opt{'startup-rounds'}) {
        my @order = $round % 2 ? (0, 1) : (1, 0);
        for my $with (@order) {
            my $srv = make_root(sprintf('tp-%d-%s', $scale,
                $with ? 'with' : 'without'), $scale, $with);
            my $secs = start_server($srv, 300);
            my $ps = proc_stat($srv->{pid});
            push @{ $m{$with}{secs} }, $secs;
            push @{ $m{$with}{cpu} }, $ps->{cpu};
            push @{ $m{$with}{rss} }, $ps->{rss_kb} / 1024;
            printf "  %-7s round %d: ready in %.2fs, parent CPU %.2fs, parent"
                . " RSS %.1f MB\n", $with ? 'with' : 'without', $round, $secs,
                $ps->{cpu}, $ps->{rss_kb} / 1024;
            my $warn = () = slurp("$srv->{root}/logs/error_log")
                =~ /MISDIRECT01\d/g;
            $m{lint_lines} = $warn if $with;
            if ($round == $opt{'startup-rounds'} && $keep_up) {
                $up{$with} = $srv;
            }
            else {
                stop($srv->{pid});
            }
        }
    }
    return (\%m, \%up);
}

# ------------------------------------------------------------ throughput

# One mix: two h2load processes side by side, each half the connections
# and half the requests; throughput = all requests / the longer run.
sub tp_run ($srv, $proto, $mix, $total) {
    my (undef, undef, $ca, $cb) = @$mix;
    my $half = int($total / 2);
    my $c = max(1, int($opt{clients} / 2));
    my @cmds = map { h2load_cmd($srv, $proto, $_, $half, $c, $opt{streams}) }
        $ca, $cb;
    my $cpu0 = server_cpu($srv);
    my ($out, $rc, $wall) = run_all(600, @cmds);
    my $cpu = server_cpu($srv) - $cpu0;
    my @t = map { h2load_check($out->[$_], $rc->[$_], ($ca, $cb)[$_], $half,
        "$srv->{name} $proto $mix->[0]") } 0, 1;
    return (2 * $half / max(@t), $cpu / (2 * $half));
}

# Both servers at once, pinned to the same CPU, each with its own pair of
# h2load processes: whatever else the machine does slows both alike.
# Only requests that ended while both servers were under load count.
sub tp_pair ($srv, $proto, $mix, $total, $with_first) {
    my (undef, undef, $ca, $cb) = @$mix;
    my $half = int($total / 2);
    my $c = max(1, int($opt{clients} / 2));
    my (@cmds, @runs);
    for my $with ($with_first ? (1, 0) : (0, 1)) {
        for my $class ($ca, $cb) {
            my $log = "$TMP/pair-" . scalar(@runs) . '.log';
            unlink $log;
            my $cmd = h2load_cmd($srv->{$with}, $proto, $class, $half, $c,
                $opt{streams});
            splice @$cmd, -1, 0, "--log-file=$log";
            push @cmds, $cmd;
            push @runs, [$with, $log, $class];
        }
    }
    my ($out, $rc) = run_all(600, @cmds);
    my (%first, %last, %ends);
    for my $i (0 .. $#runs) {
        my ($with, $log, $class) = @{ $runs[$i] };
        h2load_check($out->[$i], $rc->[$i], $class, $half,
            "simultaneous $proto $mix->[0]");
        open my $fh, '<', $log or die "bench: $log: $!\n";
        while (<$fh>) {
            my ($start, $status, $dur) = split /\t/;
            next unless defined $dur;
            my $end = $start + $dur;
            $first{$with} = $start if !defined $first{$with}
                || $start < $first{$with};
            $last{$with} = $end if !defined $last{$with} || $end > $last{$with};
            push @{ $ends{$with} }, $end;
        }
        close $fh;
        unlink $log;
    }
    my $from = max($first{0}, $first{1});
    my $to = min($last{0}, $last{1});
    $from += 0.1 * ($to - $from);    # past connection setup
    my %n = map { my $w = $_; $w => scalar grep { $_ >= $from && $_ <= $to }
        @{ $ends{$w} } } 0, 1;
    return undef if $n{0} < 50 || $n{1} < 50;
    return $n{1} / $n{0};
}

# CPU seconds used so far by httpd's processes, all threads, from the
# scheduler's own accounting (nanoseconds; utime/stime are sampled per
# tick, far too coarse for a few seconds).  Per request, it tells the
# module's cost apart from the machine's other load much better than
# requests per second do.
sub server_cpu ($srv) {
    my $ns = 0;
    opendir my $dh, '/proc' or die "bench: /proc: $!\n";
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = slurp("/proc/$pid/stat");
        next unless $stat;
        my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
        next unless $pid == $srv->{pid} || $f[1] == $srv->{pid};
        for my $task (glob "/proc/$pid/task/*/schedstat") {
            my ($run) = split ' ', slurp($task);
            $ns += $run // 0;
        }
    }
    closedir $dh;
    return $ns / 1e9;
}

sub part_throughput ($up) {
    say "== throughput (h2load, $opt{rounds} rounds, alternated)";
    my %tp;
    for my $scale (@SCALES) {
        my %srv = %{ $up->{$scale} // {} };
        for my $with (0, 1) {
            next if $srv{$with};
            my $srv = make_root(sprintf('tp-%d-%s', $scale,
                $with ? 'with' : 'without'), $scale, $with);
            start_server($srv, 300);
            $srv{$with} = $srv;
        }
        for my $proto (@PROTOS) {
            for my $mix (@MIXES) {
                # Size the runs to about --seconds on this machine.
                my $probe = max(400, 50 * $opt{clients});
                tp_run($srv{$_}, $proto, $mix, $probe) for 0, 1;    # warm
                my ($rate) = tp_run($srv{0}, $proto, $mix, $probe);
                my $total = max($opt{clients} * 4,
                    int($rate * $opt{seconds} / 2) * 2);
                my (@ratio, @cpu_ratio, @pair, %rate, %cpu, @lost);
                for my $round (1 .. $opt{rounds}) {
                    # A machine this busy can make h2load fail a run; the
                    # round is then lost, not the whole benchmark.
                    my $ok = eval {
                        my (%r, %c);
                        for my $with ($round % 2 ? (0, 1) : (1, 0)) {
                            ($r{$with}, $c{$with}) = tp_run($srv{$with},
                                $proto, $mix, $total);
                        }
                        for my $with (0, 1) {
                            push @{ $rate{$with} }, $r{$with};
                            push @{ $cpu{$with} }, $c{$with};
                        }
                        push @ratio, $r{1} / $r{0};
                        push @cpu_ratio, $c{1} ? $c{0} / $c{1} : 0;
                        1;
                    };
                    push @lost, "alternated round $round: $@" unless $ok;
                    # Sharing one CPU, each server needs twice as long.
                    my $p = eval { tp_pair(\%srv, $proto, $mix,
                        max($opt{clients} * 4, int($total / 4) * 2),
                        $round % 2) };
                    push @lost, "simultaneous round $round: $@" if $@;
                    push @pair, $p if defined $p;
                }
                warn "bench: $scale vhosts $proto $mix->[0]: lost $_"
                    for @lost;
                $tp{$scale}{$proto}{ $mix->[0] } = { ratio => \@ratio,
                    cpu_ratio => \@cpu_ratio, pair => \@pair,
                    rate => \%rate, cpu => \%cpu, n => $total,
                    lost => scalar @lost };
                printf "  %5d vhosts %-8s %-42s without %6.0f/s with %6.0f/s"
                    . " ratio %.3f [%s] by CPU %.3f [%s] simultaneous %.3f"
                    . " [%s]\n", $scale,
                    $PROTO_NAME{$proto}, $mix->[1], median($rate{0}) // 0,
                    median($rate{1}) // 0, median(\@ratio) // 0,
                    join(' ', map { sprintf '%.2f', $_ } @ratio),
                    median(\@cpu_ratio) // 0,
                    join(' ', map { sprintf '%.2f', $_ } @cpu_ratio),
                    median(\@pair) // 0,
                    join(' ', map { sprintf '%.2f', $_ } @pair);
            }
        }
        stop($_->{pid}) for values %srv;
    }
    return \%tp;
}

1;
