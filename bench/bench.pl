#!/usr/bin/perl
# mod_misdirect benchmark: what the module costs per request, measured
# against the same httpd binary without it, in the same run.  `make bench`
# runs it; `perl bench/bench.pl --help` lists the knobs.
#
# It generates everything it needs under a temporary directory (a CA and
# two certificates made with openssl, httpd configurations with 1 and
# 5,000 name-based TLS vhosts on loopback ports) and measures:
#
#   instructions  valgrind callgrind on a single-process httpd
#                 (apache2 -X): counters zeroed after warm-up, N requests
#                 on one keep-alive connection, dumped, and read for the
#                 whole process and for the module's own functions
#                 (misdirect_*, inclusive), plus heap allocations made
#                 under them;
#   throughput    h2load, HTTP/2 and HTTP/1.1 keep-alive, every round both
#                 alternated (without, with, back to back) and
#                 simultaneous (both servers under load at once on one
#                 CPU, which cancels the machine's other load); medians;
#   startup       time to the first served request, parent CPU time and
#                 parent RSS at 5,000 vhosts, with and without, alternated;
#                 medians and the fastest start of each.
#
# Traffic classes (SNI is always the target vhost's ServerName):
#   accepted  Host = SNI
#   reuse     Host = another vhost with the same certificate and TLS
#             settings (sni-host-mismatch, allowed; mod_ssl serves it)
#   reject    Host = a vhost whose certificate differs (cert-mismatch:
#             the module answers 421; without it mod_ssl does)
# The mixes are "all accepted", "half reuse" and "half rejected".
#
# Every server it starts is stopped on exit, also on error or signal.
# It asserts nothing about time: it measures and reports.

use v5.36;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use IO::Socket::INET;
use JSON::PP ();
use List::Util qw(max min);
use POSIX qw(WNOHANG setpgid _exit);
use Time::HiRes qw(time sleep);

my $REPO    = abs_path(dirname(abs_path($0)) . '/..');
use lib abs_path(dirname(abs_path($0)) . '/../t/lib');
use MisdirectTest ();    # where httpd and its modules are (apxs -q)
my $APACHE  = MisdirectTest::httpd_binary();
my $MODDIR  = MisdirectTest::module_dir();
my %TOOL = map { $_ => "/usr/bin/$_" } qw(h2load valgrind callgrind_control
    vgdb openssl curl setpriv taskset);
my $RUN_USER = 'www-data';    # httpd's User; valgrind runs as it too

my @ARGV_GIVEN = @ARGV;
my %opt = (
    scales           => '1,5000',
    rounds           => 5,
    'cg-requests'    => 1000,
    'cg-reject-h1'   => 100,
    seconds          => 1.5,
    clients          => 16,
    streams          => 10,
    'startup-rounds' => 5,
    'lint-scales'    => '2500,5000',
    parts            => 'callgrind,lint,startup,throughput',
    module           => "$REPO/.libs/mod_misdirect.so",
    out              => "$REPO/bench/results.md",
    keep             => 0,
);
GetOptions(\%opt, 'scales=s', 'rounds=i', 'cg-requests=i', 'cg-reject-h1=i',
    'seconds=f', 'clients=i', 'streams=i', 'startup-rounds=i',
    'lint-scales=s', 'parts=s', 'module=s', 'out=s', 'keep!', 'quick', 'aa',
    'report-from=s', 'help') or usage(2);
usage(0) if $opt{help};
if ($opt{quick}) {    # a smoke run of every part, a few minutes
    %opt = (%opt, scales => '1,500', rounds => 2, 'cg-requests' => 200,
        'cg-reject-h1' => 20, seconds => 1, 'startup-rounds' => 1,
        'lint-scales' => '250,500');
}

sub usage ($rc) {
    print <<~'EOF';
        usage: perl bench/bench.pl [options]
          --scales=1,5000        vhost counts (the largest also gets startup)
          --rounds=5             throughput rounds (alternated + simultaneous)
          --seconds=1.5          target length of one throughput run
          --clients=16           h2load connections (split in two for mixes)
          --streams=10           HTTP/2 streams per connection (h2load -m)
          --cg-requests=1000     requests per callgrind window
          --cg-reject-h1=100     rejected HTTP/1.1 requests (one connection
                                 each) per callgrind window
          --startup-rounds=5     startups of each variant at the largest scale
          --lint-scales=2500,5000  configtest under callgrind: is the
                                 module's startup work linear in vhosts?
          --parts=callgrind,lint,startup,throughput
          --module=PATH          mod_misdirect.so (default .libs/)
          --out=bench/results.md
          --keep                 keep the temporary directory
          --quick                small smoke run of every part
          --aa                   A/A check: the "with" server loads no
                                 module either (shows the noise floor)
          --report-from=FILE     write the report again from the raw
                                 figures a run saved (bench/results.json)
        EOF
    exit $rc;
}

my @SCALES = sort { $a <=> $b } split /,/, $opt{scales};
my @LINT_SCALES = sort { $a <=> $b } grep { $_ } split /,/, $opt{'lint-scales'};
my %PART = map { $_ => 1 } split /,/, $opt{parts};
my @PROTOS = qw(h1 h2);
my %PROTO_NAME = (h1 => 'HTTP/1.1', h2 => 'HTTP/2');
my @CLASSES = qw(accepted reuse reject);
my @MIXES = (
    [all    => 'all accepted',                     'accepted', 'accepted'],
    [reuse  => 'half reuse (sni-host-mismatch, allowed)', 'accepted', 'reuse'],
    [reject => 'half rejected (cert-mismatch, 421)', 'accepted', 'reject'],
);
# Allocation entry points whose callers callgrind records (see
# --separate-callers): any of these reached from a misdirect_* function
# is heap (or pool) allocation done by the module.
my @ALLOC_FNS = qw(malloc calloc realloc apr_palloc apr_bucket_alloc
    apr_pool_create_ex);

for my $t (sort keys %TOOL) {
    -x $TOOL{$t} or die "bench: $TOOL{$t} missing (make bench installs it)\n";
}
-x $APACHE or die "bench: $APACHE missing: apt-get install apache2\n";
-f $opt{module} or die "bench: $opt{module} missing: run make first\n";
$> == 0 or die "bench: run as root (httpd binds, then becomes $RUN_USER)\n";
my (undef, undef, $RUN_UID, $RUN_GID) = getpwnam($RUN_USER)
    or die "bench: no user $RUN_USER\n";
my @AS_RUN_USER = ($TOOL{setpriv}, "--reuid=$RUN_UID", "--regid=$RUN_GID",
    '--clear-groups');
my $NCPU = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
# On two or more CPUs, httpd gets CPU 0 and h2load CPU 1, so that the
# server is what limits throughput.
my @PIN_SERVER = $NCPU >= 2 ? ($TOOL{taskset}, '-c', '0') : ();
my @PIN_CLIENT = $NCPU >= 2 ? ($TOOL{taskset}, '-c', '1') : ();

# ------------------------------------------------------------ processes

my %CHILDREN;          # pid => description, every process we started
my $TMP;

sub cleanup {
    for my $pid (keys %CHILDREN) {
        kill 'TERM', -$pid, $pid;
    }
    my $deadline = time + 15;
    while (%CHILDREN && time < $deadline) {
        for my $pid (keys %CHILDREN) {
            delete $CHILDREN{$pid} if waitpid($pid, WNOHANG) != 0;
        }
        sleep 0.1 if %CHILDREN;
    }
    for my $pid (keys %CHILDREN) {
        kill 'KILL', -$pid, $pid;
        waitpid $pid, 0;
        delete $CHILDREN{$pid};
    }
}
END { local ($?, $!, $@); cleanup() }
for my $sig (qw(INT TERM HUP PIPE)) {
    $SIG{$sig} = sub { warn "bench: caught SIG$sig, stopping servers\n"; exit 130 };
}

# Starts a process in its own process group, output to $log.
sub spawn ($desc, $log, @cmd) {
    my $pid = fork // die "bench: fork: $!\n";
    if (!$pid) {
        setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or _exit(126);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or _exit(127);
    }
    $CHILDREN{$pid} = $desc;
    return $pid;
}

sub reap ($pid, $timeout) {
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid $pid, WNOHANG;
        if ($r == $pid || $r < 0) {
            delete $CHILDREN{$pid};
            return $?;
        }
        sleep 0.02;
    }
    return undef;
}

sub stop ($pid, $timeout = 30) {
    return unless $CHILDREN{$pid};
    kill 'TERM', $pid;
    return if defined reap($pid, $timeout);
    kill 'KILL', -$pid, $pid;
    reap($pid, 10);
}

# Runs commands side by side, each bounded by $timeout seconds; returns
# their outputs and exit codes, and the wall time until the last ended.
sub run_all ($timeout, @cmds) {
    my (@pids, @logs);
    my $t0 = time;
    for my $i (0 .. $#cmds) {
        my $log = "$TMP/run-$$-$i.out";
        unlink $log;
        push @logs, $log;
        push @pids, spawn("command @{ $cmds[$i] }[0..1]", $log, @{ $cmds[$i] });
    }
    my @rc;
    for my $i (0 .. $#pids) {
        my $left = max(1, $timeout - (time - $t0));
        my $rc = reap($pids[$i], $left);
        if (!defined $rc) {
            kill 'KILL', -$pids[$i], $pids[$i];
            reap($pids[$i], 10);
            die "bench: timed out after ${timeout}s: @{ $cmds[$i] }\n";
        }
        push @rc, $rc;
    }
    my $wall = time - $t0;
    my @out = map { slurp($_) } @logs;
    unlink @logs;
    return (\@out, \@rc, $wall);
}

sub run1 ($timeout, @cmd) {
    my ($out, $rc) = run_all($timeout, \@cmd);
    return ($rc->[0], $out->[0]);
}

sub must ($timeout, @cmd) {
    my ($rc, $out) = run1($timeout, @cmd);
    die "bench: failed (exit $rc): @cmd\n$out" if $rc;
    return $out;
}

sub slurp ($file) {
    open my $fh, '<', $file or return '';
    local $/;
    return scalar(<$fh>) // '';
}

sub spew ($file, $text) {
    open my $fh, '>', $file or die "bench: write $file: $!\n";
    print $fh $text;
    close $fh or die "bench: write $file: $!\n";
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or die "bench: no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# ------------------------------------------------------------ setup

sub setup_tmp {
    $TMP = tempdir('misdirect-bench-XXXXXX', TMPDIR => 1,
        CLEANUP => !$opt{keep});
    chmod 0755, $TMP;    # httpd's children and valgrind run as $RUN_USER
    make_path("$TMP/pki", "$TMP/htdocs");
    spew("$TMP/htdocs/index.html", "mod_misdirect benchmark page\n");
    make_pki("$TMP/pki");
    print "temporary directory: $TMP", ($opt{keep} ? ' (kept)' : ''), "\n";
}

sub make_pki ($d) {
    my $ossl = $TOOL{openssl};
    my @ec = qw(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes);
    must(60, $ossl, qw(req -x509 -new), @ec, -keyout => "$d/ca.key",
        -out => "$d/ca.crt", -days => 2, -subj => '/CN=mod_misdirect bench CA',
        -addext => 'basicConstraints=critical,CA:TRUE',
        -addext => 'keyUsage=critical,keyCertSign');
    # One certificate for every generated vhost and the reuse peer; the
    # other covers only the vhost that cert-mismatch requests go to.
    my %san = (shared => 'DNS:*.bench.test,DNS:bench.test',
               other  => 'DNS:other.test');
    for my $name (sort keys %san) {
        must(60, $ossl, qw(req -new), @ec, -keyout => "$d/$name.key",
            -out => "$d/$name.csr", -subj => "/CN=$name");
        spew("$d/$name.ext", "basicConstraints=CA:FALSE\n"
            . "keyUsage=critical,digitalSignature\n"
            . "extendedKeyUsage=serverAuth\nsubjectAltName=$san{$name}\n");
        must(60, $ossl, qw(x509 -req -CAcreateserial), -in => "$d/$name.csr",
            -CA => "$d/ca.crt", -CAkey => "$d/ca.key", -days => 2,
            -extfile => "$d/$name.ext", -out => "$d/$name.crt");
        chown 0, $RUN_GID, "$d/$name.key";
        chmod 0640, "$d/$name.key";
    }
}

# The vhost every request's handshake is for: the last generated one, so
# that core's name lookup walks the whole list.
sub target ($scale) { "v$scale.bench.test" }

my %CLASS_HOST = (
    accepted => sub ($scale) { target($scale) },
    reuse    => sub ($scale) { 'peer.bench.test' },
    reject   => sub ($scale) { 'other.test' },
);
my %CLASS_STATUS = (accepted => '2xx', reuse => '2xx', reject => '4xx');

# A server root with its configuration; the port is chosen at start.
sub make_root ($name, $scale, $with) {
    my $root = "$TMP/$name";
    remove_tree($root);
    make_path(map { "$root/$_" } qw(conf logs run));
    return { name => $name, root => $root, scale => $scale, with => $with,
             conf => "$root/conf/httpd.conf" };
}

sub write_conf ($srv) {
    my ($root, $port, $scale) = @$srv{qw(root port scale)};
    my $pki = "$TMP/pki";
    my @c = ("# Generated by bench/bench.pl", "ServerRoot \"$root\"");
    push @c, "LoadModule ${_}_module $MODDIR/mod_$_.so"
        for qw(mpm_event authz_core socache_shmcb ssl http2);
    # --aa: an A/A run, both variants without the module, to see how
    # much this machine's noise alone moves the ratios.
    push @c, "LoadModule misdirect_module $opt{module}"
        if $srv->{with} && !$opt{aa};
    push @c, <<~"EOF";
        ServerName localhost
        Listen 127.0.0.1:$port https
        User $RUN_USER
        Group $RUN_USER
        PidFile run/httpd.pid
        DefaultRuntimeDir run
        ErrorLog logs/error_log
        LogLevel warn
        KeepAlive On
        MaxKeepAliveRequests 0
        KeepAliveTimeout 60
        Timeout 60
        ServerLimit 1
        StartServers 1
        ThreadLimit 64
        ThreadsPerChild 64
        MaxRequestWorkers 64
        MinSpareThreads 1
        MaxSpareThreads 128
        # Never close a keep-alive connection for lack of idle workers:
        # h2load counts that as failed requests, not as a slower server.
        AsyncRequestWorkerFactor 8
        Protocols h2 http/1.1
        H2MinWorkers 32
        H2MaxWorkers 32
        SSLSessionCache shmcb:$root/run/ssl_scache(512000)
        DocumentRoot "$TMP/htdocs"
        <Directory />
            AllowOverride None
            Require all denied
        </Directory>
        <Directory "$TMP/htdocs">
            Require all granted
        </Directory>
        EOF
    my $vhost = sub ($names, $cert) {
        my ($name, @alias) = @$names;
        return "<VirtualHost 127.0.0.1:$port>\n"
            . "    ServerName $name\n"
            . (@alias ? "    ServerAlias @alias\n" : '')
            . "    SSLEngine on\n"
            . "    SSLCertificateFile $pki/$cert.crt\n"
            . "    SSLCertificateKeyFile $pki/$cert.key\n"
            . "</VirtualHost>\n";
    };
    # v1 is the address's default vhost (the one used without SNI).
    for my $i (1 .. $scale) {
        push @c, $vhost->(["v$i.bench.test", "a$i.bench.test",
            "w$i-*.bench.test"], 'shared');
    }
    push @c, $vhost->(['peer.bench.test'], 'shared');
    push @c, $vhost->(['other.test'], 'other');
    spew($srv->{conf}, join("\n", @c) . "\n");
}

# ------------------------------------------------------------ servers

# Starts httpd and waits until it serves a request.  Returns the seconds
# that took.
sub start_server ($srv, $timeout) {
    for my $try (1 .. 3) {
        $srv->{port} = free_port();
        write_conf($srv);
        unlink "$srv->{root}/run/httpd.pid";
        my @cmd = (@PIN_SERVER, $APACHE, '-d', $srv->{root}, '-f',
            $srv->{conf}, '-DFOREGROUND');
        my $t0 = time;
        $srv->{pid} = spawn("httpd $srv->{name}", "$srv->{root}/logs/stdout",
            @cmd);
        my $up = wait_ready($srv, $timeout);
        return $up - $t0 if defined $up;
        # Lost the port to someone else: try another.
        if (slurp("$srv->{root}/logs/error_log") =~ /could not bind|in use/) {
            stop($srv->{pid});
            next;
        }
        stop($srv->{pid});
        die "bench: httpd $srv->{name} did not start\n"
            . tail(slurp("$srv->{root}/logs/error_log")
                   . slurp("$srv->{root}/logs/stdout"), 30);
    }
    die "bench: httpd $srv->{name}: no free port after 3 tries\n";
}

sub tail ($text, $n) {
    my @l = split /\n/, $text;
    return join("\n", @l[max(0, @l - $n) .. $#l]) . "\n";
}

# The time the first request was served, or undef if httpd died.  The
# listener accepts connections (into its backlog) before the second
# configuration pass: only a served request says httpd is ready.
sub wait_ready ($srv, $timeout) {
    my $deadline = time + $timeout;
    my $sni = target($srv->{scale});
    while (time < $deadline) {
        return undef unless $CHILDREN{ $srv->{pid} }
            && !defined(reap($srv->{pid}, 0));
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $srv->{port}, Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            my $left = int(max(1, $deadline - time));
            my ($rc, $code) = run1($left + 5, $TOOL{curl}, '-q', '-sk',
                '--noproxy', '*', '--max-time', $left, '--connect-to',
                "$sni:$srv->{port}:127.0.0.1:$srv->{port}", '-o', '/dev/null',
                '-w', '%{http_code}', "https://$sni:$srv->{port}/index.html");
            return time if $code eq '200';
        }
        sleep 0.02;
    }
    return undef;
}

sub proc_stat ($pid) {
    my $stat = slurp("/proc/$pid/stat");
    $stat =~ s/^.*\)\s+//s;    # past "pid (comm)"
    my @f = split ' ', $stat;   # f[0] is field 3 (state)
    my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
    my ($rss) = slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+)\s+kB/m;
    return { cpu => ($f[11] + $f[12]) / $tck, rss_kb => $rss // 0 };
}

# ------------------------------------------------------------ h2load

sub h2load_cmd ($srv, $proto, $class, $n, $c, $m) {
    my $port = $srv->{port};
    my $sni = target($srv->{scale});
    my $host = $CLASS_HOST{$class}->($srv->{scale});
    return [@PIN_CLIENT, $TOOL{h2load}, ($proto eq 'h1' ? '--h1' : ()),
        '-n', $n, '-c', $c, '-m', ($proto eq 'h1' ? 1 : $m), '-t', 1,
        "--connect-to=127.0.0.1:$port", '-H', ":authority: $host:$port",
        # A client told 421 must retry on a new connection; mod_ssl's 421
        # closes it without saying so, which h2load takes for an error.
        ($proto eq 'h1' && $class eq 'reject'
            ? ('-H', 'Connection: close') : ()),
        "https://$sni:$port/index.html"];
}

# Checks that h2load got what the class must get; returns its own time.
sub h2load_check ($out, $rc, $class, $n, $what) {
    my ($secs, $unit) = $out =~ /finished in ([\d.]+)(us|ms|s),/;
    my ($done, $errored, $timeouts) =
        $out =~ /requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, \d+ failed, (\d+) errored, (\d+) timeout/;
    my %st;
    if ($out =~ /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/) {
        @st{qw(2xx 3xx 4xx 5xx)} = ($1, $2, $3, $4);
    }
    my $want = $CLASS_STATUS{$class};
    if ($rc || !defined $done || $done != $n || $errored || $timeouts
        || ($st{$want} // -1) != $n) {
        die "bench: $what: expected $n responses $want, h2load said:\n$out";
    }
    return $secs / ($unit eq 'us' ? 1e6 : $unit eq 'ms' ? 1e3 : 1);
}

sub h2load_run ($srv, $proto, $class, $n, $c, $m, $timeout) {
    my ($rc, $out) = run1($timeout, @{ h2load_cmd($srv, $proto, $class, $n,
        $c, $m) });
    return h2load_check($out, $rc, $class, $n,
        "$srv->{name} $proto $class");
}

# ------------------------------------------------------------ callgrind

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

# Zero the counters, run the requests, dump, read the dump.
sub cg_window ($srv, $proto, $class, $n) {
    cg_control($srv, '-z');
    h2load_run($srv, $proto, $class, $n, 1, 1, 900);
    cg_control($srv, '-d');
    my @dumps = sort { (stat $a)[9] <=> (stat $b)[9] || $a cmp $b }
        grep { !$srv->{seen}{$_}++ } glob "$srv->{root}/cg/callgrind.out.*";
    die "bench: no new callgrind dump for $srv->{name}\n" unless @dumps;
    my $r = parse_callgrind($dumps[-1]);
    unlink @dumps unless $opt{keep};
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
            if ($fresh) {
                %per = (total => $wn->{total} / $n,
                        module => $wn->{module} / $n);
            }
            else {
                my $w1 = cg_window($srv, $proto, $class, 1);
                %per = (total => ($wn->{total} - $w1->{total}) / ($n - 1),
                        module => ($wn->{module} - $w1->{module}) / ($n - 1));
            }
            $per{alloc} = $wn->{alloc} / $n;
            $per{alloc_raw} = $wn->{alloc};
            $per{alloc_by} = $wn->{alloc_by};
            $per{alloc_via} = $wn->{alloc_via} // {};
            $per{n} = $n;
            $per{fresh} = $fresh;
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
    my @srvs;
    # Start the largest first: valgrind starts thousands of TLS vhosts
    # slowly, and instruction counts do not care what else runs.
    for my $scale (reverse @SCALES) {
        for my $with (0, 1) {
            my $srv = make_root(sprintf('cg-%d-%s', $scale,
                $with ? 'with' : 'without'), $scale, $with);
            make_path("$srv->{root}/cg");
            push @srvs, $srv;
        }
    }
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
    $launch->($_) for @srvs;
    my $lint = $PART{lint} ? lint_start() : undef;
    my %cg;
    for my $srv (reverse @srvs) {    # smallest first: ready soonest
        my $up = wait_ready($srv, 900);
        if (!defined $up) {
            die "bench: valgrind httpd $srv->{name} did not start\n"
                . tail(slurp("$srv->{root}/logs/error_log")
                       . slurp("$srv->{root}/logs/stdout"), 30);
        }
        printf "  %s ready under valgrind (launched %.0fs ago)\n",
            $srv->{name}, $up - $launched{ $srv->{name} };
        cg_control($srv, '-i', 'on');
        cg_warm($srv);
        $cg{ $srv->{scale} }{ $srv->{with} } = cg_measure($srv);
        stop($srv->{pid}, 120);
    }
    lint_finish($lint) if $lint;
    return (\%cg, $lint);
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
        die "bench: configtest at $srv->{scale} vhosts failed:\n" . tail($log, 20)
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

# ------------------------------------------------------------ startup

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

# ------------------------------------------------------------ report

sub median ($list) {
    my @s = sort { $a <=> $b } @{ $list // [] };
    return undef unless @s;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

sub commify ($n) {
    return '-' unless defined $n;
    my $s = sprintf '%.0f', $n;
    1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;
    return $s;
}

sub machine {
    my ($cpu) = slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m;
    my ($httpd) = `$APACHE -v` =~ /Server version:\s*(\S+)/;
    my $ossl = `$TOOL{openssl} version`;
    chomp $ossl;
    my ($h2load) = `$TOOL{h2load} --version` =~ /(nghttp2\/\S+)/;
    my $vg = `$TOOL{valgrind} --version`;
    chomp $vg;
    my $commit = `git -C $REPO rev-parse --short HEAD 2>/dev/null`;
    chomp $commit;
    my $dirty = `git -C $REPO status --porcelain -- mod_misdirect.c src 2>/dev/null`;
    my ($load) = slurp('/proc/loadavg') =~ /^(\S+ \S+ \S+)/;
    return { cpu => $cpu // 'unknown', ncpu => $NCPU, httpd => $httpd // '?',
             openssl => $ossl, h2load => $h2load // '?', valgrind => $vg,
             commit => ($commit || '?') . ($dirty ? ' (module sources modified)' : ''),
             load => $load // '?' };
}

sub fmt_pct ($x) { sprintf '%.2f%%', 100 * $x }

# Throughput ratio that the instruction counts predict for a mix of a
# CPU-bound server: the request without the module, against the same
# plus the module's own instructions.  (The whole-process counts of two
# server instances also differ by a few per cent at thousands of vhosts,
# whichever is loaded: see the "difference" column.)
sub predicted ($cg, $scale, $proto, $mix) {
    my (undef, undef, $ca, $cb) = @$mix;
    my ($w0, $w1) = map { $cg->{$scale}{$_}{$proto} } 0, 1;
    return undef unless $w0 && $w1;
    my $base = $w0->{$ca}{total} + $w0->{$cb}{total};
    return $base / ($base + $w1->{$ca}{module} + $w1->{$cb}{module});
}

# The same from the whole-process counts, which also see work the module
# causes or spares elsewhere (a 421 the module answers is one mod_ssl no
# longer answers and logs).
sub predicted_whole ($cg, $scale, $proto, $mix) {
    my (undef, undef, $ca, $cb) = @$mix;
    my ($w0, $w1) = map { $cg->{$scale}{$_}{$proto} } 0, 1;
    return undef unless $w0 && $w1;
    return ($w0->{$ca}{total} + $w0->{$cb}{total})
        / ($w1->{$ca}{total} + $w1->{$cb}{total});
}

sub report ($cg, $lint, $st, $tp, $mach, $started, $elapsed) {
    my @md;
    my @targets;    # [target, measured, met]
    push @md, '# mod_misdirect benchmark results', '',
        "Generated by `make bench` (bench/bench.pl) on $started, in "
        . sprintf('%.1f', $elapsed / 60) . ' minutes.', '',
        "Machine: $mach->{ncpu} CPUs ($mach->{cpu}), load average at start"
        . " $mach->{load}; Apache httpd $mach->{httpd}, $mach->{openssl},"
        . " h2load $mach->{h2load}, $mach->{valgrind}; module at commit"
        . " $mach->{commit}.", '',
        'Every vhost is a name-based TLS vhost on one loopback address:'
        . ' `v1..vN.bench.test` (ServerName, a ServerAlias and a wildcard'
        . ' ServerAlias each, one shared `*.bench.test` certificate), plus'
        . ' `peer.bench.test` (same certificate and TLS settings) and'
        . ' `other.test` (its own certificate). Every connection\'s SNI is'
        . ' the last generated vhost `vN.bench.test`; the request host is the'
        . ' same name (accepted), `peer.bench.test` (reuse: sni-host-mismatch,'
        . ' allowed) or `other.test` (cert-mismatch: 421). Both variants run'
        . ' the same httpd binary and the same configuration, but for'
        . ' `LoadModule misdirect_module`; modules loaded: mpm_event,'
        . ' authz_core, socache_shmcb, ssl, http2. LogLevel warn, no access'
        . ' log.', '';

    if ($cg) {
        push @md, '## Instructions per request (callgrind, `apache2 -X`)', '',
            "Counters zeroed after warm-up; keep-alive classes are measured"
            . ' on one connection as (n requests − 1 request) / (n − 1), so'
            . ' that connection setup is excluded, with n = '
            . join(', ', map { sprintf '%d at %s vhosts', cg_n($_, 'cg-requests'),
                commify($_) } @SCALES)
            . '; a rejected HTTP/1.1 request closes its connection, so that'
            . ' class is one request per connection ('
            . join(', ', map { sprintf '%d at %s vhosts',
                cg_n($_, 'cg-reject-h1'), commify($_) } @SCALES)
            . '), TLS handshake included in both variants. Mixes average their'
            . ' two classes. "module" is the inclusive cost of every call'
            . ' into a `misdirect_*` function from outside the module;'
            . ' "allocations" counts calls of ' . join(', ', map { "`$_`" }
                @ALLOC_FNS)
            . ' whose caller chain passes through a `misdirect_*` function.', '',
            '| vhosts | protocol | traffic | without module | with module'
            . ' | difference | module (misdirect_*) | module share'
            . ' | allocations under misdirect_* per request |',
            '|---:|---|---|---:|---:|---:|---:|---:|---:|';
        for my $scale (@SCALES) {
            for my $proto (@PROTOS) {
                for my $mix (@MIXES) {
                    my ($key, $label, $ca, $cb) = @$mix;
                    my $avg = sub ($with, $what) {
                        my $r = $cg->{$scale}{$with}{$proto};
                        return ($r->{$ca}{$what} + $r->{$cb}{$what}) / 2;
                    };
                    my $t0 = $avg->(0, 'total');
                    my $t1 = $avg->(1, 'total');
                    my $mod = $avg->(1, 'module');
                    my $alloc = $avg->(1, 'alloc');
                    push @md, sprintf '| %s | %s | %s | %s | %s | %+s (%+.2f%%)'
                        . ' | %s | %s | %s |', commify($scale),
                        $PROTO_NAME{$proto}, $label, commify($t0), commify($t1),
                        commify($t1 - $t0), 100 * ($t1 - $t0) / $t0,
                        commify($mod), fmt_pct($mod / $t1),
                        $alloc == 0 ? '0' : sprintf('%.2f', $alloc);
                }
            }
        }
        push @md, '';
        # What the module spends its instructions on, per class, where
        # its share is largest.
        my $small = $SCALES[0];
        my $top = sub ($h, $n, $skip = {}) {
            my @k = grep { !$skip->{$_} && $h->{$_} >= 1 }
                sort { $h->{$b} <=> $h->{$a} } keys %$h;
            return join(', ', map { sprintf '%s %s', $_, commify($h->{$_}) }
                @k[0 .. min($n - 1, $#k)]) || '-';
        };
        push @md, 'Where the module\'s instructions go, per request at '
            . commify($small) . ' vhost' . ($small == 1 ? '' : 's')
            . ': the hooks httpd calls (inclusive), the costliest module'
            . ' functions under them, and the costliest calls the module makes'
            . ' into httpd, APR and OpenSSL.', '',
            '| protocol | class | hooks | module functions | calls out |',
            '|---|---|---|---|---|';
        for my $proto (@PROTOS) {
            for my $class (@CLASSES) {
                my $r = $cg->{$small}{1}{$proto}{$class};
                my %skip = map { $_ => 1 } keys %{ $r->{entry} };
                push @md, sprintf '| %s | %s | %s | %s | %s |',
                    $PROTO_NAME{$proto}, $class, $top->($r->{entry}, 4),
                    $top->($r->{incl}, 4, \%skip), $top->($r->{ext}, 4);
            }
        }
        push @md, '';
        my @via;
        for my $scale (@SCALES) {
            for my $proto (@PROTOS) {
                for my $class (@CLASSES) {
                    my $r = $cg->{$scale}{1}{$proto}{$class};
                    next unless $r->{alloc_raw};
                    push @via, sprintf '%s vhosts, %s, %s: %s', commify($scale),
                        $PROTO_NAME{$proto}, $class, join(', ', map {
                            sprintf '%s %.2f', $_, $r->{alloc_via}{$_} / $r->{n}
                        } sort { $r->{alloc_via}{$b} <=> $r->{alloc_via}{$a} }
                        keys %{ $r->{alloc_via} });
                }
            }
        }
        push @md, 'Allocations per request under `misdirect_*`, by the call'
            . ' the module made: ' . (@via ? join('; ', @via) : 'none')
            . '.', '';

        for my $scale (@SCALES) {
            for my $proto (@PROTOS) {
                my $a = $cg->{$scale}{1}{$proto}{accepted};
                my $share = $a->{module} / $a->{total};
                push @targets, ["module ≤ 1% of an accepted request"
                    . " ($PROTO_NAME{$proto}, " . commify($scale) . ' vhosts)',
                    sprintf('%s of %s = %s', commify($a->{module}),
                        commify($a->{total}), fmt_pct($share)),
                    $share <= 0.01];
                push @targets, ['no allocation on accepted requests'
                    . " ($PROTO_NAME{$proto}, " . commify($scale) . ' vhosts)',
                    sprintf('%d calls in %d requests', $a->{alloc_raw}, $a->{n}),
                    $a->{alloc_raw} == 0];
            }
        }
        if (@SCALES > 1) {
            for my $proto (@PROTOS) {
                my $lo = $cg->{ $SCALES[0] }{1}{$proto}{accepted}{module};
                my $hi = $cg->{ $SCALES[-1] }{1}{$proto}{accepted}{module};
                my $d = $lo ? ($hi - $lo) / $lo : 0;
                push @targets, ['module within 10% at ' . commify($SCALES[-1])
                    . ' vhosts of ' . commify($SCALES[0])
                    . " ($PROTO_NAME{$proto}, accepted)",
                    sprintf('%s vs %s (%+.1f%%)', commify($hi), commify($lo),
                        100 * $d), abs($d) <= 0.10];
            }
        }
    }

    if ($tp) {
        my $rng = sub ($l) { @$l ? sprintf('%.3f (%.2f–%.2f)', median($l),
            min(@$l), max(@$l)) . (@$l < $opt{rounds}
                ? sprintf(' %d of %d rounds', scalar @$l, $opt{rounds}) : '')
            : '-' };
        push @md, '## Throughput (h2load)', '',
            "$opt{rounds} rounds per row. Each round measures the two"
            . ' servers in two ways. **Simultaneous**: both servers loaded at'
            . ' the same time, pinned to the same CPU, each by its own h2load'
            . ' processes; the ratio counts the responses each served while'
            . ' both were under load, so whatever else the machine does slows'
            . ' both alike (which server\'s clients start first alternates).'
            . ' **Alternated**: without and with run back to back, the order'
            . ' alternating, the ratio taken within the round; requests per'
            . ' second are the medians of these runs. "CPU" is the alternated'
            . ' runs\' httpd CPU time per request (scheduler accounting of all'
            . ' its threads), the ratio without ÷ with. The two "instructions"'
            . ' columns are what callgrind predicts for a CPU-bound server:'
            . ' instructions per request without ÷ with the module, from the'
            . ' whole process, and from the module\'s own instructions added to'
            . ' the request without it (the first also sees work the module'
            . ' spares, such as mod_ssl\'s own 421 and its log line, but carries'
            . ' the few per cent by which two server instances differ at'
            . ' thousands of vhosts). **The target is judged on the two'
            . ' instruction ratios**: on this shared machine the wall-clock'
            . ' ratios scatter by several per cent even between two identical'
            . ' servers (`bench/bench.pl --aa` runs that check).'
            . ' Every ratio is with ÷ without, so below 1 means slower with'
            . ' the module; medians with their range.', '',
            "$opt{clients} connections (HTTP/2: $opt{streams} streams each);"
            . ' a mix is two h2load processes per server, each with half the'
            . ' connections and half the requests; alternated runs sized to'
            . " about $opt{seconds} s"
            . ($NCPU >= 2 ? '; httpd pinned to CPU 0, h2load to CPU 1' : '')
            . '. Rejected HTTP/1.1 requests send `Connection: close` (each opens'
            . ' a new TLS connection, as a client told 421 must; mod_ssl\'s own'
            . ' 421 closes the connection without saying so).', '',
            '| vhosts | protocol | traffic | req/s without | req/s with'
            . ' | simultaneous | alternated | CPU | instructions (whole)'
            . ' | instructions (module) |',
            '|---:|---|---|---:|---:|---|---|---|---:|---:|';
        for my $scale (@SCALES) {
            for my $proto (@PROTOS) {
                for my $mix (@MIXES) {
                    my $r = $tp->{$scale}{$proto}{ $mix->[0] } or next;
                    my $pred = $cg ? predicted($cg, $scale, $proto, $mix)
                                   : undef;
                    my $whole = $cg ? predicted_whole($cg, $scale, $proto,
                                                      $mix) : undef;
                    my $f3 = sub ($x) { defined $x ? sprintf('%.3f', $x) : '-' };
                    push @md, sprintf '| %s | %s | %s | %s | %s | %s | %s | %s'
                        . ' | %s | %s |',
                        commify($scale), $PROTO_NAME{$proto}, $mix->[1],
                        commify(median($r->{rate}{0})),
                        commify(median($r->{rate}{1})), $rng->($r->{pair}),
                        $rng->($r->{ratio}), $rng->($r->{cpu_ratio}),
                        $f3->($whole), $f3->($pred);
                    my $sim = median($r->{pair}) // 0;
                    my $alt = median($r->{ratio}) // 0;
                    my $met = !defined $pred ? 'not judged (no callgrind part)'
                        : $pred >= 0.98 && $whole >= 0.98 ? 1
                        : $pred < 0.98 && $whole < 0.98 ? 0
                        : 'borderline';
                    push @targets, ["throughput ratio ≥ 0.98 ($PROTO_NAME{$proto},"
                        . " $mix->[1], " . commify($scale) . ' vhosts)',
                        sprintf('instructions %s (whole), %s (module);'
                            . ' measured %.3f simultaneous, %.3f alternated',
                            $f3->($whole), $f3->($pred), $sim, $alt),
                        $met];
                }
            }
        }
        push @md, '';
    }

    if ($st) {
        my $scale = $SCALES[-1];
        my %med = map { my $w = $_; $w => { map { $_ => median($st->{$w}{$_}) }
            qw(secs cpu rss) } } 0, 1;
        my %low = map { my $w = $_; $w => { map { $_ => min(@{ $st->{$w}{$_} }) }
            qw(secs cpu) } } 0, 1;
        my %d = map { my $k = $_; $k => $med{1}{$k} - $med{0}{$k} }
            qw(secs cpu rss);
        my %dlow = map { my $k = $_; $k => $low{1}{$k} - $low{0}{$k} }
            qw(secs cpu);
        push @md, '## Startup at ' . commify($scale) . ' vhosts', '',
            "$opt{'startup-rounds'} starts of each variant, alternated: time"
            . ' from exec to the first served request, CPU time of the parent'
            . ' process (both configuration passes) and its RSS once ready;'
            . ' the median and the fastest start of each. Startup work is'
            . ' deterministic, so the machine\'s other load can only add to it:'
            . ' the fastest start is the least disturbed, and the target is'
            . ' judged on it (the module\'s own share is also counted exactly,'
            . ' below).', '',
            '| | without module | with module | extra |', '|---|---:|---:|---:|',
            sprintf('| time to first response, median | %.2f s | %.2f s |'
                . ' %+.2f s |', $med{0}{secs}, $med{1}{secs}, $d{secs}),
            sprintf('| time to first response, fastest | %.2f s | %.2f s |'
                . ' %+.2f s |', $low{0}{secs}, $low{1}{secs}, $dlow{secs}),
            sprintf('| parent CPU time, median | %.2f s | %.2f s | %+.2f s |',
                $med{0}{cpu}, $med{1}{cpu}, $d{cpu}),
            sprintf('| parent CPU time, least | %.2f s | %.2f s | %+.2f s |',
                $low{0}{cpu}, $low{1}{cpu}, $dlow{cpu}),
            sprintf('| parent RSS, median | %.1f MB | %.1f MB | %+.1f MB |',
                $med{0}{rss}, $med{1}{rss}, $d{rss}), '',
            'Lint lines logged at startup with the module: '
            . ($st->{lint_lines} // 0) . '.', '';
        my $drss = $d{rss};
        push @targets, ['≤ 1 s extra startup at ' . commify($scale) . ' vhosts',
            sprintf('%+.2f s wall, %+.2f s parent CPU (fastest starts;'
                . ' medians %+.2f s, %+.2f s)', $dlow{secs}, $dlow{cpu},
                $d{secs}, $d{cpu}),
            $dlow{secs} <= 1 && $dlow{cpu} <= 1];
        push @targets, ['≤ 10 MB extra at startup at ' . commify($scale)
            . ' vhosts', sprintf('%+.1f MB parent RSS', $drss), $drss <= 10];
    }

    if ($lint && @$lint) {
        push @md, '## Startup work of the module (configtest under callgrind)', '',
            'Instructions of `apache2 -t` with the module, in all and inside'
            . ' `misdirect_*` (TLS profiles and lint, which walk the'
            . ' configuration); linear work doubles with the vhosts.', '',
            '| vhosts | configtest instructions | in misdirect_* | per vhost |',
            '|---:|---:|---:|---:|';
        for my $j (@$lint) {
            push @md, sprintf '| %s | %s | %s | %s |', commify($j->{scale}),
                commify($j->{result}{total}), commify($j->{result}{module}),
                commify($j->{result}{module} / $j->{scale});
        }
        push @md, '';
        if (@$lint > 1) {
            my ($a, $b) = @$lint[0, -1];
            my $growth = $b->{result}{module} / max(1, $a->{result}{module});
            my $lin = $b->{scale} / $a->{scale};
            push @targets, ['module startup work O(n) in vhosts ('
                . commify($a->{scale}) . ' → ' . commify($b->{scale}) . ')',
                sprintf('×%.2f for ×%.2f vhosts', $growth, $lin),
                $growth <= $lin * 1.15];
        }
    }

    if (@targets) {
        push @md, '## Targets', '', '| target | measured | met |',
            '|---|---|---|';
        push @md, map { "| $_->[0] | $_->[1] | " . ($_->[2] =~ /^yes /
            ? $_->[2] : $_->[2] =~ /\D/ ? "**$_->[2]**"
            : $_->[2] ? 'yes' : '**no**') . ' |' } @targets;
        push @md, '';
    }
    push @md, 'Command: `make bench`' . (@ARGV_GIVEN
        ? " with `BENCH_ARGS='@ARGV_GIVEN'`" : '') . '.', '';
    return join("\n", @md);
}

# ------------------------------------------------------------ main

sub main {
    if ($opt{'report-from'}) {
        my $d = JSON::PP->new->decode(slurp($opt{'report-from'}))
            or die "bench: $opt{'report-from'}: no figures\n";
        %opt = (%opt, %{ $d->{opt} }, out => $opt{out});
        @SCALES = @{ $d->{scales} };
        my $md = report(@$d{qw(cg lint st tp mach started elapsed)});
        print $md;
        spew($opt{out}, $md);
        return;
    }
    my $t0 = time;
    my $started = POSIX::strftime('%Y-%m-%d %H:%M UTC', gmtime);
    my $mach = machine();
    print "mod_misdirect benchmark: scales @SCALES, parts $opt{parts}\n";
    setup_tmp();
    my ($cg, $lint, $st, $tp);
    if ($PART{callgrind}) {
        ($cg, $lint) = part_callgrind();
    }
    elsif ($PART{lint}) {
        lint_finish($lint = lint_start());
    }
    my $up = {};
    if ($PART{startup}) {
        my $keep;
        ($st, $keep) = part_startup($PART{throughput});
        $up->{ $SCALES[-1] } = $keep;
    }
    $tp = part_throughput($up) if $PART{throughput};
    # The raw figures, to write the report again without measuring.
    my $json = $opt{out} =~ s/\.md$//r . '.json';
    spew($json, JSON::PP->new->canonical->allow_blessed->convert_blessed
        ->encode({ opt => \%opt, scales => \@SCALES, cg => $cg,
            lint => [map { { scale => $_->{scale}, result => $_->{result},
                lint_lines => $_->{lint_lines} } } @{ $lint // [] }],
            st => $st, tp => $tp, mach => $mach, started => $started,
            elapsed => time - $t0 }));
    my $md = report($cg, $lint, $st, $tp, $mach, $started, time - $t0);
    print "\n$md";
    spew($opt{out}, $md);
    print "written to $opt{out}\n";
}

main();
