package Bench::Callgrind;
# Instructions per request: httpd -X under callgrind, with and without
# the module, counters zeroed after warm-up and dumped after each window
# of requests; and the module's startup work, configtest under callgrind
# at two vhost counts.

use v5.36;
use Exporter qw(import);
use File::Path qw(make_path);
use List::Util qw(max);
use Time::HiRes qw(time);

use Bench::Env;
use Bench::Proc;
use Bench::Server;

our @EXPORT = qw(part_callgrind lint_start lint_finish cg_n);

# Reads one callgrind dump: total instructions, the module's inclusive
# instructions (calls into misdirect_* from outside it), call counts and
# inclusive cost per module function, and allocations made under it.
sub parse_callgrind ($file) {
    open my $fh, '<', $file or die "bench: $file: $!\n";
    my (%name, %self, %edge, $fn, $cfn, $calls, $total, $summary);
    while (my $l = <$fh>) {
        if ($l =~ /^fn=\((\d+)\)(?: (.*))?$/) {
            $name{$1} = $2 if defined $2;
            $fn = $name{$1};
        }
        elsif ($l =~ /^cfn=\((\d+)\)(?: (.*))?$/) {
            $name{$1} = $2 if defined $2;
            $cfn = $name{$1};
        }
        elsif ($l =~ /^calls=(\d+)/) {
            $calls = $1;
        }
        elsif ($l =~ /^[-+*\d]/) {
            my (undef, $ir) = split ' ', $l;
            $ir //= 0;
            if (defined $calls) {
                my $e = $edge{$fn}{$cfn} //= [0, 0];
                $e->[0] += $calls;
                $e->[1] += $ir;
                undef $calls;
            }
            else {
                $self{$fn} += $ir;
            }
        }
        elsif ($l =~ /^totals:\s*(\d+)/) {
            $total = $1;
        }
        elsif ($l =~ /^summary:\s*(\d+)/) {
            $summary = $1;
        }
    }
    close $fh;
    my $base = sub ($f) { (split /'/, $f)[0] };
    my $is_mod = sub ($f) { $base->($f) =~ /^misdirect_/ };
    my %alloc_fn = map { $_ => 1 } @ALLOC_FNS;
    my %r = (total => $total // $summary // 0, module => 0, module_self => 0,
             alloc => 0, alloc_by => {}, calls => {}, incl => {});
    for my $f (keys %self) {
        $r{module_self} += $self{$f} if $is_mod->($f);
    }
    for my $caller (keys %edge) {
        for my $callee (keys %{ $edge{$caller} }) {
            my ($n, $ir) = @{ $edge{$caller}{$callee} };
            my $cb = $base->($callee);
            if ($is_mod->($callee)) {
                $r{calls}{$cb} += $n;
                if (!$is_mod->($caller)) {
                    $r{module} += $ir;
                    $r{entry}{$cb} += $ir;
                }
            }
            if ($is_mod->($caller)) {
                $r{incl}{ $base->($caller) } += $ir;
                $r{ext}{$cb} += $ir unless $is_mod->($callee);
            }
            # "malloc'CRYPTO_malloc'...'misdirect_x'...": a caller chain
            # that passes through the module.
            if ($alloc_fn{$cb} && $callee =~ /'misdirect_/) {
                $r{alloc} += $n;
                $r{alloc_by}{$cb} += $n;
                # Name what the module called that led to it.
                my @chain = split /'/, $callee;
                my ($i) = grep { $chain[$_] =~ /^misdirect_/ } 0 .. $#chain;
                my $via = $i ? "$chain[$i - 1] (from $chain[$i])" : $chain[$i];
                $r{alloc_via}{$via} += $n;
            }
        }
    }
    for my $f (keys %self) {
        $r{incl}{ $base->($f) } += $self{$f} if $is_mod->($f);
    }
    return \%r;
}

sub cg_control ($srv, @args) {
    must(300, @AS_RUN_USER, $TOOL{callgrind_control},
        "--vgdb-prefix=$srv->{root}/cg/vgdb", @args, $srv->{pid});
}

# The module's diagnosis lines in the server's error_log: detailed
# (MISDIRECT001 to 008) and summaries of folded repeats (MISDIRECT009).
sub log_lines ($srv) {
    my $log = -f "$srv->{root}/logs/error_log"
        ? slurp("$srv->{root}/logs/error_log") : '';
    return { detail => scalar(() = $log =~ /\] MISDIRECT00[1-8]: /g),
             summary => scalar(() = $log =~ /MISDIRECT009:/g),
             folded => eval { my $k = 0;
                 $k += $1 while $log =~ /MISDIRECT009: (\d+) more/g; $k } };
}

# Zero the counters, run the requests, dump, read the dump.
sub cg_window ($srv, $proto, $class, $n) {
    # A burst's lines: the summaries of earlier 421s are written within
    # 5 s, and so are this window's after it.
    my $burst = $srv->{with} && $class eq 'reject' && $n > 1;
    sleep 5 if $burst;
    cg_control($srv, '-z');
    my $before = log_lines($srv);
    h2load_run($srv, $proto, $class, $n, 1, 1, 900);
    cg_control($srv, '-d');
    sleep 5 if $burst;
    my $after = log_lines($srv);
    my @dumps = sort { (stat $a)[9] <=> (stat $b)[9] || $a cmp $b }
        grep { !$srv->{seen}{$_}++ } glob "$srv->{root}/cg/callgrind.out.*";
    die "bench: no new callgrind dump for $srv->{name}\n" unless @dumps;
    my $r = parse_callgrind($dumps[-1]);
    unlink @dumps unless $opt{keep};
    $r->{logged} = { map { $_ => $after->{$_} - $before->{$_} }
        keys %$after };
    return $r;
}

# Per request: keep-alive classes are measured twice on one connection,
# with 1 and with n requests, and the difference is divided by n - 1 so
# that the TLS handshake and connection setup are not in the figure.  A
# rejected HTTP/1.1 request ends its connection: its figure includes the
# handshake, in both variants.
sub cg_measure ($srv) {
    my %res;
    for my $proto (@PROTOS) {
        for my $class (@CLASSES) {
            my $fresh = $proto eq 'h1' && $class eq 'reject';
            my $n = $fresh ? cg_n($srv->{scale}, 'cg-reject-h1')
                           : cg_n($srv->{scale}, 'cg-requests');
            my $wn = cg_window($srv, $proto, $class, $n);
            my %per;
            # Diagnosis lines (misdirect_diag_log, inclusive) apart: the
            # report charges them at the rate MisdirectLogLimit admits.
            my $lines = sub ($w) { $w->{calls}{misdirect_diag_log} // 0 };
            my $line_instr = sub ($w) { $w->{incl}{misdirect_diag_log} // 0 };
            my $first = 0;    # the connection's first request
            if ($fresh) {
                %per = (total => $wn->{total} / $n,
                        module => $wn->{module} / $n,
                        lines => $lines->($wn) / $n,
                        line_instr => $line_instr->($wn) / $n);
            }
            else {
                my $w1 = cg_window($srv, $proto, $class, 1);
                $first = $w1->{alloc};
                my $d = sub ($f) { ($f->($wn) - $f->($w1)) / ($n - 1) };
                %per = (total => ($wn->{total} - $w1->{total}) / ($n - 1),
                        module => ($wn->{module} - $w1->{module}) / ($n - 1),
                        lines => max(0, $d->($lines)),
                        line_instr => max(0, $d->($line_instr)));
            }
            $per{line_cost} = $lines->($wn)
                ? $line_instr->($wn) / $lines->($wn) : 0;
            $per{alloc} = $wn->{alloc} / $n;
            $per{alloc_raw} = $wn->{alloc};
            # Allocations of the requests after the connection's first,
            # which also sets up what the module keeps per connection.
            $per{alloc_later} = $fresh ? $wn->{alloc}
                                       : max(0, $wn->{alloc} - $first);
            $per{alloc_by} = $wn->{alloc_by};
            $per{alloc_via} = $wn->{alloc_via} // {};
            $per{n} = $n;
            $per{fresh} = $fresh;
            $per{logged} = $wn->{logged};
            $per{log_calls} = $lines->($wn);
            $per{log_instr} = $line_instr->($wn);
            $per{calls} = { map { $_ => $wn->{calls}{$_} / $n }
                keys %{ $wn->{calls} } };
            $per{incl} = { map { $_ => $wn->{incl}{$_} / $n }
                keys %{ $wn->{incl} } };
            $per{ext} = { map { $_ => $wn->{ext}{$_} / $n }
                keys %{ $wn->{ext} // {} } };
            $per{entry} = { map { $_ => $wn->{entry}{$_} / $n }
                keys %{ $wn->{entry} // {} } };
            $res{$proto}{$class} = \%per;
            printf "  %-6s %-5s %-8s %9.0f instr/request, module %7.0f,"
                . " allocations under misdirect_* %d\n", $srv->{name}, $proto,
                $class, $per{total}, $per{module}, $wn->{alloc};
        }
    }
    return \%res;
}

# At thousands of vhosts every request costs many times more (core's
# name lookup walks them all), so fewer requests give the same precision
# in the same time.
sub cg_n ($scale, $what) {
    my $n = $opt{$what};
    return $scale >= 1000 ? max($what eq 'cg-requests' ? 50 : 10,
                                int($n / ($what eq 'cg-requests' ? 5 : 2)))
                          : $n;
}

sub cg_warm ($srv) {
    for my $proto (@PROTOS) {
        for my $class (@CLASSES) {
            my $n = $proto eq 'h1' && $class eq 'reject' ? 3 : 30;
            h2load_run($srv, $proto, $class, $n, 1, 1, 600);
        }
    }
}

sub part_callgrind {
    say "== instructions per request (callgrind, apache2 -X)";
    my %launched;
    my $launch = sub ($srv) {
        $srv->{port} = free_port();
        write_conf($srv);
        system('chown', '-R', "$RUN_UID:$RUN_GID",
            map { "$srv->{root}/$_" } qw(logs run cg)) == 0
            or die "bench: chown failed\n";
        $srv->{pid} = spawn("valgrind httpd $srv->{name}",
            "$srv->{root}/logs/stdout", @AS_RUN_USER, $TOOL{valgrind},
            '--tool=callgrind', '--instr-atstart=no',
            "--vgdb-prefix=$srv->{root}/cg/vgdb",
            "--callgrind-out-file=$srv->{root}/cg/callgrind.out",
            (map { "--separate-callers30=$_" } @ALLOC_FNS),
            $APACHE, '-X', '-d', $srv->{root}, '-f', $srv->{conf});
        $launched{ $srv->{name} } = time;
    };
    my (%cg, $lint);
    # Nothing else may run while a window counts: how often mod_http2's
    # loops wake up depends on the CPU left to it, and an HTTP/2 request
    # counted while valgrind started 5,000 vhosts beside it cost 5% more.
    # So scale by scale: the servers of a scale (and at the largest the
    # lint's configtests, which count only startup) start together, and
    # the windows begin once all of them are up.
    for my $scale (@SCALES) {
        my @srvs;
        for my $i (1 .. $opt{'cg-instances'}) {
            for my $with (0, 1) {
                my $srv = make_root(sprintf('cg-%d-%s-%d', $scale,
                    $with ? 'with' : 'without', $i), $scale, $with);
                make_path("$srv->{root}/cg");
                push @srvs, $srv;
            }
        }
        $launch->($_) for @srvs;
        my $jobs = $PART{lint} && $scale == $SCALES[-1] ? lint_start()
                                                        : undef;
        for my $srv (@srvs) {
            # On 2 CPUs, six servers of 5,000 vhosts start in about
            # 500 s under valgrind.
            my $up = wait_ready($srv, 300 * @srvs);
            if (!defined $up) {
                die "bench: valgrind httpd $srv->{name} did not start\n"
                    . tail(slurp("$srv->{root}/logs/error_log")
                           . slurp("$srv->{root}/logs/stdout"), 30);
            }
            printf "  %s ready under valgrind (launched %.0fs ago)\n",
                $srv->{name}, $up - $launched{ $srv->{name} };
        }
        if ($jobs) {
            lint_finish($jobs);
            $lint = $jobs;
        }
        for my $srv (@srvs) {
            cg_control($srv, '-i', 'on');
            cg_warm($srv);
            push @{ $cg{$scale}{ $srv->{with} } }, cg_measure($srv);
            stop($srv->{pid}, 120);
        }
    }
    for my $by_with (values %cg) {
        $_ = cg_median($_) for values %$by_with;
    }
    return (\%cg, $lint);
}

# Two servers of one configuration differ by some hundreds of
# instructions per request (where malloc finds memory, what OpenSSL
# does now and then), a per cent at one vhost: of the servers of a
# variant, each class takes the figures of the median one.
sub cg_median ($runs) {
    my %res;
    for my $proto (@PROTOS) {
        for my $class (@CLASSES) {
            my @by = sort { $a->{total} <=> $b->{total} }
                map { $_->{$proto}{$class} } @$runs;
            $res{$proto}{$class} = $by[$#by / 2];
        }
    }
    return \%res;
}

# The module's startup work, deterministic: configtest (which runs the
# module's TLS-profile building and lint) under callgrind at two vhost
# counts.  Linear work doubles when the vhosts double.
sub lint_start {
    my @jobs;
    for my $scale (@LINT_SCALES) {
        my $srv = make_root("lint-$scale", $scale, 1);
        make_path("$srv->{root}/cg");
        $srv->{port} = free_port();
        write_conf($srv);
        my $out = "$srv->{root}/cg/configtest.out";
        $srv->{cgout} = $out;
        $srv->{pid} = spawn("valgrind configtest $scale",
            "$srv->{root}/logs/stdout", $TOOL{valgrind}, '--tool=callgrind',
            "--callgrind-out-file=$out", $APACHE, '-t', '-d', $srv->{root},
            '-f', $srv->{conf});
        push @jobs, $srv;
    }
    return \@jobs;
}

sub lint_finish ($jobs) {
    for my $srv (@$jobs) {
        my $rc = reap($srv->{pid}, 900);
        die "bench: configtest under valgrind timed out\n" unless defined $rc;
        my $log = slurp("$srv->{root}/logs/stdout");
        die "bench: configtest at $srv->{scale} vhosts failed:\n"
            . tail($log, 20)
            if $rc || $log !~ /Syntax OK/;
        my $r = parse_callgrind($srv->{cgout});
        $srv->{result} = $r;
        my @warn = $log =~ /(MISDIRECT0\d\d)/g;
        $srv->{lint_lines} = scalar @warn;
        printf "  configtest at %d vhosts: %.0f instructions in all, %.0f in"
            . " misdirect_* (%d lint lines)\n", $srv->{scale}, $r->{total},
            $r->{module}, $srv->{lint_lines};
    }
}
1;
