package MisdirectTest;

# Test harness for mod_misdirect: runs a real httpd with name-based TLS virtual
# hosts sharing one loopback address, and talks to it with clients that set
# TLS SNI and the HTTP host independently. See the POD at the end.

use v5.36;
use Carp qw(croak);
use Cwd qw(abs_path);
use Errno ();
use Fcntl qw(:flock);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use JSON::PP ();
use POSIX ();
use Scalar::Util qw(refaddr weaken);
use Socket qw(SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO);
use Time::HiRes qw(sleep time);

my $REPO     = abs_path(dirname(__FILE__) . '/../..');
my $TMP      = _tmp_root();
my $APACHE   = httpd_binary();
my $MODDIR   = module_dir();
my $PYTHON   = '/usr/bin/python3';    # Debian's, which has python3-h2
my $H2STREAMS = "$REPO/t/bin/h2streams.py";
my $CURL     = '/usr/bin/curl';
my $OPENSSL  = '/usr/bin/openssl';

my $IO_TIMEOUT    = 10;    # seconds; the server's Timeout
my $START_TIMEOUT = 15;
my $STOP_TIMEOUT  = 10;
my $CLOSE_WAIT    = 3;     # how long a response that did not promise
                           # keep-alive gets to show that it closed
my $KEEP_GRACE    = 0.05;  # the same after the last response that did:
                           # httpd can close after promising (mod_ssl's 421)
my $POLL          = 0.05;
my $START_TRIES   = 5;     # a picked port can be taken before httpd binds

# TLS virtual hosts in configuration order: the first is the address's
# default, the one mod_ssl uses without SNI.
my @TLS_VHOSTS = (
    { name => 'default.test', cert => 'default' },
    { name => 'alpha.test',   cert => 'alpha', alias => 'www.alpha.test' },
    { name => 'beta.test',    cert => 'beta' },
    { name => 'shared1.test', cert => 'shared' },
    { name => 'shared2.test', cert => 'shared' },
    { name => 'shared3.test', cert => 'shared', verify_client => 1 },
    { name => 'a.wild.test',  cert => 'wild' },
    { name => 'b.wild.test',  cert => 'wild', alias => '*.b.wild.test' },
);
my @PLAIN_VHOSTS = (
    { name => 'default.test' },
    { name => 'alpha.test', alias => 'www.alpha.test' },
    { name => 'beta.test' },
);

# Server certificates and their subjectAltNames.
my %SERVER_CERTS = (
    default => ['DNS:default.test'],
    alpha   => ['DNS:alpha.test', 'IP:127.0.0.1'],
    beta    => ['DNS:beta.test'],
    shared  => ['DNS:shared1.test', 'DNS:shared2.test', 'DNS:shared3.test'],
    wild    => ['DNS:*.wild.test'],
);
my $PKI_DAYS  = 30;
my $PKI_RENEW = 20 * 86400;    # seconds; regenerate well before expiry

my $ACCESS_FORMAT = '%v %>s %{MISDIRECT_REASON}e %{MISDIRECT_ACTION}e'
    . ' %{MISDIRECT_CHECKS}e %{MISDIRECT_SNI}e %{MISDIRECT_HANDSHAKE_VHOST}e'
    . ' %{MISDIRECT_REQUEST_VHOST}e \"%r\"';

my %NEW_OPTS = map { $_ => 1 }
    qw(name mpm misdirect ssl h2 global vhost extra_vhosts loglevel modules
       tls_vhosts expect_log log_sweep);

# A line at warn or above: [module:level] right after the timestamp.
my $WARN_PLUS = qr/^\[[^\]]*\] \[[\w.-]*:(?:warn|error|crit|alert|emerg)\] /;

# What MisdirectTest->expect_log declared for every server of the file.
my @FILE_EXPECTED;

# Lines at warn or above that the harness itself causes, on each server
# that has what an entry's 'when' names: no test declares them. Each
# pattern names the vhost or the module that the harness set up, so that
# the same message about anything a test added stays unexpected. In the
# text, {at} stands for a vhost's "file:line" and {n} for a number.
my @HARNESS_EXPECTED = (
    # The standard alpha certificate leaves out the alias www.alpha.test
    # on purpose: the cert-mismatch case that most tests send.
    { when => 'standard_tls', re => _text_re('MISDIRECT010: Lint: virtual '
        . 'host alpha.test ({at}): its ServerAlias www.alpha.test is not '
        . 'covered by its own certificate {at}/alpha.crt: ') },
    # *.b.wild.test is one label deeper than the certificate's
    # *.wild.test: a wildcard alias that a wildcard certificate misses.
    { when => 'standard_tls', re => _text_re('MISDIRECT010: Lint: virtual '
        . 'host b.wild.test ({at}): its ServerAlias *.b.wild.test is not '
        . 'covered by its own certificate {at}/wild.crt: ') },
    # Each standard vhost but the shared ones has a certificate of its
    # own, and shared3.test requires a client certificate: under the
    # default SSLVHostSNIPolicy secure mod_ssl refuses every sibling of
    # default.test to a client without SNI (the tests' mod_ssl 421s).
    { when => 'standard_tls', re => _text_re('MISDIRECT011: Lint: on '
        . '127.0.0.1:{n} the default virtual host default.test ({at}) has '
        . 'TLS settings (SSLCertificateFile, SSLCertificateKeyFile, '
        . 'SSLVerifyClient, SSLCACertificateFile) that SSLVHostSNIPolicy '
        . 'secure does not accept for {n} of its {n} siblings (alpha.test, '
        . 'beta.test, shared1.test, ') },
    # shared3.test shares its certificate with shared1.test but not its
    # settings (it requires a client certificate): the case of vhosts on
    # one certificate that mod_ssl keeps apart.
    { when => 'standard_tls', re => _text_re('MISDIRECT015: Lint: on '
        . '127.0.0.1:{n} the virtual hosts shared1.test ({at}) and '
        . 'shared3.test ({at}) share their certificate files but not their '
        . 'TLS settings (SSLVerifyClient, SSLCACertificateFile): ') },
    # mod_http2 is loaded unless h2 => 0; under prefork it says that it
    # turns itself off (see h2_mpm).
    { when => 'h2_prefork', re => _text_re('AH10034: The mpm module '
        . '(prefork.c) is not supported by mod_http2.') },
);

my %LIVE;    # refaddr => weakened server, stopped by END
my %ROOTS;   # server roots handed out by this process

# An interrupted test must still run END and stop its servers.
my %SIGNUM = (HUP => 1, INT => 2, PIPE => 13, TERM => 15);
for my $sig (keys %SIGNUM) {
    $SIG{$sig} = sub { exit 128 + $SIGNUM{$sig} }
        if ($SIG{$sig} // 'DEFAULT') eq 'DEFAULT';
}

END {
    local ($?, $!, $@);
    $_->stop for grep { defined } values %LIVE;
}

# ---------------------------------------------------------------- httpd

# Where httpd and its modules are, as the build's apxs says (APXS, or
# apxs on the PATH); MISDIRECT_HTTPD and MISDIRECT_MODDIR override.
my %APXS;

sub _apxs ($var) {
    return $APXS{$var} //= do {
        my $apxs = $ENV{APXS} // 'apxs';
        my $v = `$apxs -q $var 2>/dev/null` // '';
        chomp $v;
        length $v or die "'$apxs -q $var' said nothing: install apxs "
            . "(Debian: apache2-dev), or set MISDIRECT_HTTPD and "
            . "MISDIRECT_MODDIR\n";
        $v;
    };
}

sub httpd_binary () {
    return $ENV{MISDIRECT_HTTPD}
        // _apxs('SBINDIR') . '/' . _apxs('TARGET');
}

sub module_dir () { $ENV{MISDIRECT_MODDIR} // _apxs('LIBEXECDIR') }

# ---------------------------------------------------------------- PKI

my $pki_dir;

sub pki () {
    return $pki_dir if $pki_dir;
    my $dir = "$TMP/pki";
    _mkdirs($TMP);
    # Parallel prove jobs: one makes the PKI, the others wait for it.
    open my $lock, '>>', "$TMP/pki.lock" or die "open $TMP/pki.lock: $!\n";
    flock $lock, LOCK_EX or die "flock $TMP/pki.lock: $!\n";
    my $stamp = "$dir/complete";
    unless (-e $stamp && time - (stat $stamp)[9] < $PKI_RENEW) {
        my $new = "$TMP/pki.new.$$";
        remove_tree($new);
        _mkdirs($new);
        _make_pki($new);
        remove_tree($dir);
        rename $new, $dir or die "rename $new to $dir: $!\n";
    }
    close $lock;
    return $pki_dir = $dir;
}

sub _make_pki ($d) {
    -x $OPENSSL or die "$OPENSSL not found: apt-get install openssl\n";
    _openssl(qw(req -x509 -new -nodes -newkey ec
        -pkeyopt ec_paramgen_curve:P-256),
        -keyout => "$d/ca.key", -out => "$d/ca.crt", -days => $PKI_DAYS,
        -subj   => '/CN=mod_misdirect test CA',
        -addext => 'basicConstraints=critical,CA:TRUE',
        -addext => 'keyUsage=critical,keyCertSign,cRLSign');
    for my $name (sort keys %SERVER_CERTS) {
        my @san = $SERVER_CERTS{$name}->@*;
        (my $cn = $san[0]) =~ s/^DNS://;
        _make_cert($d, $name, $cn, 'subjectAltName=' . join(',', @san)
            . "\nextendedKeyUsage=serverAuth\n");
    }
    _make_cert($d, 'client', 'mod_misdirect test client',
        "extendedKeyUsage=clientAuth\n");
    _write("$d/complete", '');
}

sub _make_cert ($d, $name, $cn, $ext) {
    _openssl(qw(req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256),
        -keyout => "$d/$name.key", -out => "$d/$name.csr", -subj => "/CN=$cn");
    _write("$d/$name.ext",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n$ext");
    _openssl(qw(x509 -req -CAcreateserial), -in => "$d/$name.csr",
        -CA => "$d/ca.crt", -CAkey => "$d/ca.key", -days => $PKI_DAYS,
        -extfile => "$d/$name.ext", -out => "$d/$name.crt");
}

sub _openssl (@args) {
    my ($rc, $out, $err) = _run($OPENSSL, @args);
    die "openssl @args failed (exit $rc):\n$out$err" if $rc;
}

# ---------------------------------------------------------------- server

sub new ($class, %opt) {
    my $self = $class->_prepare(%opt);
    $self->start;
    return $self;
}

sub configtest (%opt) {
    my $self = __PACKAGE__->_prepare(%opt);
    @$self{qw(plain_port tls_port)} = _free_ports($self->{ssl} ? 2 : 1);
    $self->_write_config;
    my ($rc, $out, $err) = _run($APACHE, '-t', '-d', $self->{root},
        '-f', $self->conf_file);
    return ($rc, $out . $err);
}

sub _prepare ($class, %opt) {
    my @unknown = grep { !$NEW_OPTS{$_} } sort keys %opt;
    croak "MisdirectTest: unknown option(s): @unknown" if @unknown;
    my $self = bless {
        name      => $opt{name} // basename($0, '.t'),
        mpm       => $opt{mpm} // $ENV{MISDIRECT_MPM} // 'event',
        misdirect => $opt{misdirect} // 1,
        ssl       => $opt{ssl} // 1,
        h2        => $opt{h2} // 1,
        global    => $opt{global} // '',
        vhost     => $opt{vhost} // {},
        extra_vhosts => $opt{extra_vhosts} // '',
        modules   => $opt{modules} // [],
        tls_vhosts => $opt{tls_vhosts},
        expect    => [],
        log_sweep => $opt{log_sweep} // 1,
        owner     => $$,
    }, $class;
    $self->{h2_prefork} = $self->{h2} && $self->{mpm} eq 'prefork';
    croak 'MisdirectTest: expect_log => [MESSAGE_NUMBER | qr/.../, ...]'
        if defined $opt{expect_log} && ref $opt{expect_log} ne 'ARRAY';
    $self->{expect} = [ _expected_at(0, ($opt{expect_log} // [])->@*) ];
    croak "MisdirectTest: bad name '$self->{name}'"
        unless $self->{name} =~ /^[\w.-]+$/;
    croak "MisdirectTest: mpm must be event, worker or prefork"
        unless $self->{mpm} =~ /^(?:event|worker|prefork)$/;
    croak 'MisdirectTest: modules => [NAME, ...] names modules (rewrite, '
        . 'proxy_http: the part between mod_ and .so)'
        if ref $self->{modules} ne 'ARRAY'
        || grep { !defined || !/^\w+$/ } $self->{modules}->@*;
    $self->_check_tls_vhosts if defined $self->{tls_vhosts};
    $self->{loglevel} = $opt{loglevel} // join ' ', 'warn',
        ($self->{misdirect} ? 'misdirect:trace1' : ()),
        ($self->{ssl} ? 'ssl:info' : ());
    $self->_check_vhost_keys;

    -x $APACHE or die "$APACHE not found: apt-get install apache2\n";
    for my $mod ($self->_modules) {
        -f "$MODDIR/mod_$mod.so" or die "$MODDIR/mod_$mod.so not found\n";
    }
    if ($self->{misdirect}) {
        $self->{so} = $ENV{MISDIRECT_SO} // "$REPO/.libs/mod_misdirect.so";
        -f $self->{so} or die "mod_misdirect not found at $self->{so}: "
            . "build it first (make), or set MISDIRECT_SO\n";
    }
    $self->{pki} = pki() if $self->{ssl};

    my $root = "$TMP/$self->{name}-$$";
    for (my $n = 2; $ROOTS{$root}; $n++) { $root = "$TMP/$self->{name}-$$-$n" }
    $ROOTS{$root} = 1;
    remove_tree($root);    # left by an earlier process with the same pid
    _mkdirs(map { "$root/$_" } qw(conf logs run));
    for my $name ($self->_vhost_names) {
        _mkdirs("$root/htdocs/$name");
        _write("$root/htdocs/$name/index.html", "$name\n");
    }
    $self->{root} = $root;
    return $self;
}

sub _check_vhost_keys ($self) {
    my %have;
    $have{"tls:$_->{name}"} = 1 for $self->_tls_vhosts;
    $have{"plain:$_->{name}"} = 1 for @PLAIN_VHOSTS;
    for my $key (sort keys $self->{vhost}->%*) {
        next if $have{$key} || $have{"tls:$key"} || $have{"plain:$key"};
        croak "MisdirectTest: vhost key '$key' names no standard vhost";
    }
}

# tls_vhosts => [{ name, alias, conf }, ...] replaces the standard TLS
# vhosts; conf, the TLS lines after SSLEngine on, replaces their
# certificate lines.
sub _check_tls_vhosts ($self) {
    my $list = $self->{tls_vhosts};
    croak 'MisdirectTest: tls_vhosts wants ssl => 1' unless $self->{ssl};
    croak 'MisdirectTest: tls_vhosts => [{ name, alias, conf }, ...]'
        unless ref $list eq 'ARRAY' && @$list;
    my %seen;
    for my $v (@$list) {
        croak 'MisdirectTest: each of tls_vhosts is { name, alias, conf }'
            unless ref $v eq 'HASH' && defined $v->{name}
                && defined $v->{conf};
        _check_opts($v, { name => 1, alias => 1, conf => 1 });
        croak "MisdirectTest: bad or repeated tls_vhosts name '$v->{name}'"
            if $v->{name} !~ /^[\w.-]+$/ || $seen{ lc $v->{name} }++;
    }
}

sub _tls_vhosts ($self) {
    return () unless $self->{ssl};
    return $self->{tls_vhosts} ? $self->{tls_vhosts}->@* : @TLS_VHOSTS;
}

sub _vhost_names ($self) {
    my %seen;
    return grep { !$seen{$_}++ }
        map { $_->{name} } $self->_tls_vhosts, @PLAIN_VHOSTS;
}

sub _modules ($self) {
    my %seen;
    return grep { !$seen{$_}++ } "mpm_$self->{mpm}",
        qw(authz_core mime dir setenvif headers env alias),
        ($self->{ssl} ? qw(socache_shmcb ssl) : ()),
        ($self->{h2} ? 'http2' : ()), $self->{modules}->@*;
}

sub _write_config ($self) {
    my $root = $self->{root};
    my @c = ("# Generated by t/lib/MisdirectTest.pm", "ServerRoot \"$root\"");
    push @c, "LoadModule ${_}_module $MODDIR/mod_$_.so" for $self->_modules;
    push @c, "LoadModule misdirect_module $self->{so}" if $self->{misdirect};
    push @c, <<~"EOF";
        ServerName localhost
        Listen 127.0.0.1:$self->{plain_port}
        User www-data
        Group www-data
        PidFile run/httpd.pid
        DefaultRuntimeDir run
        ErrorLog logs/error_log
        LogLevel $self->{loglevel}
        LogFormat "$ACCESS_FORMAT" misdirect
        CustomLog logs/access_log misdirect
        TypesConfig /etc/mime.types
        DirectoryIndex index.html
        KeepAlive On
        MaxKeepAliveRequests 100
        Timeout $IO_TIMEOUT
        StartServers 2
        EOF
    push @c, $self->{mpm} eq 'prefork'
        ? "MinSpareServers 1\nMaxSpareServers 4\nMaxRequestWorkers 10"
        : "ThreadsPerChild 10\nMinSpareThreads 10\nMaxSpareThreads 20\n"
          . "MaxRequestWorkers 20";
    push @c, <<~"EOF";
        <Directory />
            AllowOverride None
            Require all denied
        </Directory>
        <Directory "$root/htdocs">
            Require all granted
        </Directory>
        EOF
    push @c, "Listen 127.0.0.1:$self->{tls_port}\n"
        . "SSLSessionCache shmcb:$root/run/ssl_scache(512000)" if $self->{ssl};
    push @c, 'Protocols h2 h2c http/1.1' if $self->{h2};
    # Tests look for the line of each request: no folding of repeats,
    # unless a test asks for MisdirectLogLimit itself.
    push @c, 'MisdirectLogLimit 0'
        if $self->{misdirect} && $self->{global} !~ /MisdirectLogLimit/;
    push @c, $self->{global};
    my $pki = $self->{pki};
    $self->{standard_tls} = $self->{ssl} && !$self->{tls_vhosts};
    for my $v ($self->_tls_vhosts) {
        push @c, $self->_vhost('tls', $self->{tls_port}, $v, 'SSLEngine on',
            defined $v->{conf} ? $v->{conf} : (
            "SSLCertificateFile $pki/$v->{cert}.crt",
            "SSLCertificateKeyFile $pki/$v->{cert}.key",
            $v->{verify_client} ? ('SSLVerifyClient require',
                "SSLCACertificateFile $pki/ca.crt") : ()));
    }
    push @c, $self->_vhost('plain', $self->{plain_port}, $_)
        for @PLAIN_VHOSTS;
    push @c, $self->{extra_vhosts};
    # Ports are picked at start: tests name them as @TLS_PORT@/@PLAIN_PORT@.
    my $text = join("\n", @c) . "\n";
    $text =~ s/\@TLS_PORT\@/$self->{tls_port} \/\/ ''/ge;
    $text =~ s/\@PLAIN_PORT\@/$self->{plain_port}/g;
    _write($self->conf_file, $text);
}

sub _vhost ($self, $kind, $port, $v, @tls) {
    my @body = ("ServerName $v->{name}",
        ($v->{alias} ? "ServerAlias $v->{alias}" : ()),
        qq{DocumentRoot "$self->{root}/htdocs/$v->{name}"}, @tls,
        grep { defined } @{ $self->{vhost} }{ $v->{name}, "$kind:$v->{name}" });
    return join "\n", "<VirtualHost 127.0.0.1:$port>",
        (map { s/^/    /mgr } @body), "</VirtualHost>\n";
}

sub start ($self) {
    croak 'MisdirectTest: server already running' if $self->{pid};
    for my $try (1 .. $START_TRIES) {
        @$self{qw(plain_port tls_port)} = _free_ports($self->{ssl} ? 2 : 1);
        $self->_write_config;
        unlink $self->_pid_file;
        my $mark = $self->mark;
        my ($rc, $out, $err) = $self->_apachectl('start');
        if ($rc) {
            next if "$out$err" =~ /could not bind|Address already in use/
                && $try < $START_TRIES;
            die "httpd failed to start (exit $rc):\n$out$err"
                . $self->_error_log_dump;
        }
        $self->_wait_started($mark);
        $LIVE{ refaddr $self } = $self;
        weaken $LIVE{ refaddr $self };
        return $self;
    }
}

sub _wait_started ($self, $mark) {
    my $deadline = time + $START_TIMEOUT;
    while (time < $deadline) {
        if (my $pid = $self->_read_pid) {
            die "httpd (pid $pid) exited during startup\n"
                . $self->_error_log_dump unless _alive($pid);
            if ($self->_up_since($mark)) {
                $self->{pid} = $pid;
                return;
            }
        }
        # The daemon rereads the config after detaching and writes no pid
        # file if that fails.
        elsif ($self->error_log_since($mark) =~ /:emerg\]/) {
            die "httpd failed to start\n" . $self->_error_log_dump;
        }
        sleep $POLL;
    }
    # Leave nothing behind that a later start would trip over.
    if (my $pid = $self->_read_pid) { kill 'KILL', -$pid, $pid }
    die "httpd did not start within ${START_TIMEOUT}s\n"
        . $self->_error_log_dump;
}

# Up: a generation started after $mark has logged its last startup line
# (AH00094, after AH00489 and the children's start) and both ports listen.
# No probe connection: its log lines would land after a test's mark.
sub _up_since ($self, $mark) {
    return 0 unless $self->error_log_since($mark) =~ /AH00094: Command line/;
    my %listen;
    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!\n";
    while (my $line = <$fh>) {
        # local address 127.0.0.1:port in state 0A (LISTEN)
        $listen{ hex $1 } = 1
            if $line =~ /^\s*\d+: 0100007F:([0-9A-F]{4}) \S+ 0A /;
    }
    return !grep { !$listen{$_} } grep { defined }
        @$self{qw(plain_port tls_port)};
}

sub stop ($self) {
    return unless $self->{pid} && $$ == $self->{owner};
    my $pid = delete $self->{pid};
    delete $LIVE{ refaddr $self };
    # -k stop rereads the config: if a test broke it, signal directly.
    my ($rc) = $self->_apachectl('stop');
    kill 'TERM', $pid if $rc;
    if (!_wait_gone($pid, $STOP_TIMEOUT)) {
        kill 'KILL', -$pid, $pid;    # httpd leads its own process group
        _wait_gone($pid, $STOP_TIMEOUT)
            or warn "MisdirectTest: httpd pid $pid survived SIGKILL\n";
    }
    $self->_check_log;
}

# The opening of a line that explains a request, from its message
# number to the full stop after what happened and what to change, is at
# most this long (docs/diagnosis.md).
our $OPENING_MAX = 180;

# Every error_log is read when its server stops, as httpd's own test
# framework does after each test (check_error_log): a child that died of
# a signal fails the test that ran the server (whatever the test
# asserted, the server did not hold up), and so does any line at warn or
# above that neither the harness (@HARNESS_EXPECTED) nor the test
# (expect_log) expected, and a diagnosis line whose opening does not say,
# in its first $OPENING_MAX characters, what happened and what to change.
# log_sweep => 0 leaves out the first two, for check/ scripts that load a
# server into such lines by design and count them themselves.
sub _check_log ($self) {
    return unless Test::More->can('ok');
    my $log = _read_from("$self->{root}/logs/error_log", 0);
    my (@crash, @long, @unexpected);
    my $at = 0;    # offset of each line, for expect_log after a mark
    for my $line (split /\n/, $log) {
        my $offset = $at;
        $at += length($line) + 1;
        if ($line =~ /exit signal|\bAH00052\b|child pid \d+ exit/) {
            push @crash, $line if $self->{log_sweep};
            next;
        }
        my ($msg) = $line =~ /\] (MISDIRECT00[1235678]: .*)/;
        my $end = defined $msg ? index($msg, '. ') : 0;
        push @long, $line if defined $msg && ($end < 0 || $end > $OPENING_MAX
            || substr($msg, 0, $end) !~ /^MISDIRECT\d+: .*?: .*; /);
        push @unexpected, $line if $self->{log_sweep}
            && $line =~ $WARN_PLUS && !$self->_expected($line, $offset);
    }
    if (@crash) {
        Test::More::ok(0, "httpd $self->{name}: no child crashed");
        Test::More::diag($_) for @crash;
    }
    if (@long) {
        Test::More::ok(0, "httpd $self->{name}: every diagnosis line says "
            . "what happened and what to change in its first $OPENING_MAX "
            . 'characters');
        Test::More::diag(substr($_, 0, 400)) for _first(5, @long);
    }
    if (@unexpected) {
        Test::More::ok(0, "httpd $self->{name}: no unexpected warn+ line in "
            . 'error_log');
        Test::More::diag(scalar(@unexpected) . " unexpected line(s) in "
            . "$self->{root}/logs/error_log (declare the expected ones with "
            . 'expect_log), the first:');
        Test::More::diag(substr($_, 0, 400)) for _first(5, @unexpected);
    }
}

# The message of an error_log line: what follows the timestamp, the
# module:level, the pid and the client (or remote) fields.
sub _message ($line) {
    return $line =~ s/^\[[^\]]*\] \[[^\]]*\] (?:\[pid [^\]]*\] )?//r
        =~ s/^\[(?:client|remote) [^\]]*\] //r;
}

sub _expected ($self, $line, $offset) {
    my $msg = _message($line);
    for my $e (@HARNESS_EXPECTED) {
        return 1 if $self->{ $e->{when} } && $msg =~ $e->{re};
    }
    for my $e (@FILE_EXPECTED, $self->{expect}->@*) {
        return 1 if $offset >= $e->{from} && $msg =~ $e->{re};
    }
    return 0;
}

# Lines at warn or above that a test expects, each a message number
# ('MISDIRECT001', 'AH02032': a message that opens with it) or a pattern
# matched against the message.
#
# MisdirectTest->new(expect_log => [...]): anywhere in the server's
# error_log. $s->expect_log(...): from the end of the error_log as it is
# now on (after the requests that follow). MisdirectTest->expect_log(...):
# anywhere in the error_log of every server this test file starts,
# including those that a library such as MisdirectPredict starts for it.
sub expect_log ($self, @what) {
    croak 'MisdirectTest: expect_log(MESSAGE_NUMBER | qr/.../, ...)'
        unless @what;
    if (!ref $self) {
        push @FILE_EXPECTED, _expected_at(0, @what);
        return;
    }
    push $self->{expect}->@*, _expected_at($self->mark->{error}, @what);
    return $self;
}

sub _expected_at ($from, @what) {
    return map {
        my $re = ref($_) eq 'Regexp' ? $_
            : defined($_) && /^(?:MISDIRECT|AH)\d+$/ ? qr/^\Q$_\E: /
            : croak "MisdirectTest: expect_log wants a message number "
                . "('MISDIRECT001', 'AH02032') or a qr/.../, not '"
                . ($_ // 'undef') . "'";
        +{ from => $from, re => $re };
    } @what;
}

# The text as a pattern for the start of a message; {at} stands for a
# vhost's "file:line" (or a directory), {n} for a number.
sub _text_re ($text) {
    my %hole = ('{at}' => '[^()]*?', '{n}' => '\d+');
    my $re = join '', map { $hole{$_} // quotemeta }
        split /(\{at\}|\{n\})/, $text;
    return qr/^$re/;
}

sub _first ($n, @list) { @list[0 .. ($#list < $n - 1 ? $#list : $n - 1)] }

sub DESTROY ($self) {
    local ($?, $!, $@);
    $self->stop;
}

sub graceful ($self) { $self->_reload('graceful') }
sub restart ($self)  { $self->_reload('restart') }

sub _reload ($self, $how) {
    croak 'MisdirectTest: server not running' unless $self->{pid};
    my $mark = $self->mark;
    my ($rc, $out, $err) = $self->_apachectl($how);
    die "apache2 -k $how failed (exit $rc):\n$out$err" if $rc;
    my $deadline = time + $START_TIMEOUT;
    until ($self->_up_since($mark)) {
        die "httpd did not come back after $how:\n"
            . $self->error_log_since($mark)
            if time >= $deadline || !_alive($self->{pid});
        sleep $POLL;
    }
}

sub _apachectl ($self, $verb) {
    return _run($APACHE, '-d', $self->{root}, '-f', $self->conf_file,
        '-k', $verb);
}

sub _pid_file ($self) { "$self->{root}/run/httpd.pid" }

sub _read_pid ($self) {
    open my $fh, '<', $self->_pid_file or return;
    my ($pid) = (<$fh> // '') =~ /^(\d+)/;
    return $pid;
}

sub _error_log_dump ($self) {
    return "--- $self->{root}/logs/error_log:\n" . $self->error_log_since;
}

sub root       ($self) { $self->{root} }
sub conf_file  ($self) { "$self->{root}/conf/httpd.conf" }
sub tls_port   ($self) { $self->{tls_port} }
sub plain_port ($self) { $self->{plain_port} }
sub pid        ($self) { $self->{pid} }
sub docroot ($self, $name) { "$self->{root}/htdocs/$name" }

# Line of the <VirtualHost> of 'tls:NAME' or 'plain:NAME' in conf_file, as
# error_log diagnoses cite it.
sub vhost_line ($self, $key) {
    my ($kind, $name) = $key =~ /^(tls|plain):(.+)$/
        or croak "MisdirectTest: vhost_line wants 'tls:NAME' or 'plain:NAME'";
    my $port = $self->{"${kind}_port"} // croak "MisdirectTest: no $kind port";
    open my $fh, '<', $self->conf_file or die "$self->{root}: $!\n";
    my $start;
    while (my $line = <$fh>) {
        $start = $. if $line =~ /^\s*<VirtualHost\s+127\.0\.0\.1:$port>/i;
        return $start
            if $start && $line =~ /^\s*ServerName\s+\Q$name\E\s*$/i;
        undef $start if $line =~ m{^\s*</VirtualHost>}i;
    }
    croak "MisdirectTest: no vhost $key in " . $self->conf_file;
}

# ---------------------------------------------------------------- logs

sub mark ($self) {
    return { error  => (-s "$self->{root}/logs/error_log")  || 0,
             access => (-s "$self->{root}/logs/access_log") || 0 };
}

sub error_log_since ($self, $mark = undef) {
    return _read_from("$self->{root}/logs/error_log", $mark ? $mark->{error} : 0);
}

sub access_log_since ($self, $mark = undef) {
    return _read_from("$self->{root}/logs/access_log",
        $mark ? $mark->{access} : 0);
}

sub wait_error_log ($self, $re, $mark = undef, $timeout = 5) {
    return _wait_line(sub { $self->error_log_since($mark) }, $re, $timeout);
}

sub wait_access_log ($self, $re, $mark = undef, $timeout = 5) {
    return _wait_line(sub { $self->access_log_since($mark) }, $re, $timeout);
}

# The first line matching $re of another log in logs/ (a CustomLog).
sub wait_log ($self, $name, $re, $timeout = 5) {
    my $file = "$self->{root}/logs/$name";
    return _wait_line(sub { _read_from($file, 0) }, $re, $timeout);
}

# The first complete line matching $re, or undef after $timeout seconds.
sub _wait_line ($read, $re, $timeout) {
    my $deadline = time + $timeout;
    while (1) {
        for my $line ($read->() =~ /^(.*\n)/mg) {
            return $line if $line =~ $re;
        }
        return undef if time >= $deadline;
        sleep $POLL;
    }
}

sub _read_from ($file, $offset) {
    open my $fh, '<:raw', $file or return '';
    seek $fh, $offset, 0;
    local $/;
    return scalar(<$fh>) // '';
}

# ---------------------------------------------------------------- clients

my %CLIENT_OPTS  = map { $_ => 1 } qw(sni requests cert port from);
my %REQUEST_OPTS = map { $_ => 1 }
    qw(host path method target proto headers raw_host body);

sub https ($self, %opt) {
    _check_opts(\%opt, \%CLIENT_OPTS);
    my $port = $opt{port} // $self->{tls_port}
        // croak 'MisdirectTest: this server has no TLS port (ssl => 0)';
    my %ssl = (
        PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => $IO_TIMEOUT,
        # Given explicitly, '' means: send no SNI extension at all.
        SSL_hostname       => $opt{sni} // '',
        SSL_verify_mode    => SSL_VERIFY_NONE,
        SSL_alpn_protocols => ['http/1.1'],
        # The client's own address: 127.0.0.2 is a peer other than the
        # 127.0.0.1 every other client connects from.
        (defined $opt{from} ? (LocalAddr => $opt{from}) : ()),
    );
    @ssl{qw(SSL_cert_file SSL_key_file)} = _client_cert($opt{cert})
        if $opt{cert};
    my @wire = _wire($opt{requests});
    my $sock = IO::Socket::SSL->new(%ssl)
        or die sprintf "TLS connection to 127.0.0.1:%d (SNI %s) failed: %s\n",
            $port, $opt{sni} // 'none', $IO::Socket::SSL::SSL_ERROR || $!;
    my @res = _exchange($sock, @wire);
    return wantarray ? @res : $res[0];
}

sub http ($self, %opt) {
    _check_opts(\%opt, { requests => 1, port => 1, from => 1 });
    my $port = $opt{port} // $self->{plain_port};
    my @wire = _wire($opt{requests});
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => $IO_TIMEOUT,
        (defined $opt{from} ? (LocalAddr => $opt{from}) : ()))
        or die "TCP connection to 127.0.0.1:$port failed: $!\n";
    my @res = _exchange($sock, @wire);
    return wantarray ? @res : $res[0];
}

sub h2 ($self, %opt) {
    _check_opts(\%opt, { sni => 1, streams => 1, plain => 1, cert => 1,
        port => 1, upgrade => 1 });
    my $up = $opt{upgrade};
    croak 'MisdirectTest: upgrade => { host => NAME, path, headers, early } '
        . 'speaks h2c on the plain port: no sni, cert or plain => 0'
        if $up && (ref $up ne 'HASH' || !defined $up->{host}
            || (grep { defined $opt{$_} } qw(sni cert))
            || (defined $opt{plain} && !$opt{plain}));
    _check_opts($up, { host => 1, path => 1, headers => 1,
        early => 1 }) if $up;
    # After an upgrade, its request is stream 1: the others may be none.
    croak 'MisdirectTest: streams => [...] is required'
        unless ref $opt{streams} eq 'ARRAY' && ($opt{streams}->@* || $up);
    -x $PYTHON or die "$PYTHON not found: apt-get install python3-h2\n";
    my $plain = $opt{plain} || $up ? 1 : 0;
    my $port = $opt{port} // ($plain ? $self->{plain_port} : $self->{tls_port})
        // croak 'MisdirectTest: this server has no TLS port (ssl => 0)';
    my %spec = (port => $port, plain => $plain ? JSON::PP::true
        : JSON::PP::false, sni => $opt{sni}, timeout => $IO_TIMEOUT,
        streams => $opt{streams}, ($up ? (upgrade => $up) : ()));
    @spec{qw(cert key)} = _client_cert($opt{cert}) if $opt{cert};
    my ($rc, $out, $err) = _run($PYTHON, $H2STREAMS,
        JSON::PP->new->canonical->encode(\%spec));
    die "h2streams.py failed (exit $rc):\n$err" if $rc;
    my $res = eval { JSON::PP->new->decode($out) }
        or die "h2streams.py printed no JSON ($@):\n$out$err";
    return $res;
}

sub curl ($self, @args) {
    -x $CURL or die "$CURL not found: apt-get install curl\n";
    # -q: ignore ~/.curlrc; never use a proxy, and connect to 127.0.0.1
    # whatever host the URL names.
    return _run($CURL, '-q', '-sk', '--noproxy', '*', @args,
        '--connect-to', '::127.0.0.1:');
}

sub _check_opts ($opt, $known) {
    my @unknown = grep { !$known->{$_} } sort keys %$opt;
    croak "MisdirectTest: unknown option(s): @unknown" if @unknown;
}

sub _client_cert ($name) {
    my $dir = pki();
    -f "$dir/$name.crt" or croak "MisdirectTest: no certificate '$name'";
    return ("$dir/$name.crt", "$dir/$name.key");
}

# The requests as [bytes, method] pairs.
sub _wire ($requests) {
    croak 'MisdirectTest: requests => [...] is required'
        unless ref $requests eq 'ARRAY' && @$requests;
    return map { [_build_request($_)] } @$requests;
}

# Sends the requests one after another on $sock and reads each response.
sub _exchange ($sock, @wire) {
    my $tv = pack 'l!l!', $IO_TIMEOUT, 0;
    setsockopt $sock, SOL_SOCKET, SO_RCVTIMEO, $tv or die "SO_RCVTIMEO: $!";
    setsockopt $sock, SOL_SOCKET, SO_SNDTIMEO, $tv or die "SO_SNDTIMEO: $!";
    local $SIG{PIPE} = 'IGNORE';
    my $conn = { sock => $sock, buf => '', eof => 0 };
    my @res;
    for my $i (0 .. $#wire) {
        my ($bytes, $method) = $wire[$i]->@*;
        my $res;
        if ($conn->{eof} && !length $conn->{buf}) {
            $res = { status => 0, error => 'closed', closed_after => 1 };
        }
        else {
            # A failed write is not the end: the server may have answered
            # and closed before reading it all. The read tells.
            _write_all($conn, $bytes) unless $conn->{eof};
            $res = _read_response($conn, $method);
        }
        # A connection that turns out closed was closed after the previous
        # response, whatever that promised; after the last one only waiting
        # can tell.
        $res[-1]{closed_after} = 1
            if @res && ($res->{error} // '') eq 'closed';
        $res->{closed_after} //= _peer_closed($conn, !$conn->{kept}
            ? $CLOSE_WAIT : $i == $#wire ? $KEEP_GRACE : 0);
        push @res, $res;
    }
    close $sock;
    return @res;
}

sub _build_request ($req) {
    _check_opts($req, \%REQUEST_OPTS);
    my $method = $req->{method} // 'GET';
    my $proto  = $req->{proto} // 'HTTP/1.1';
    my $host   = $req->{host};
    croak "MisdirectTest: host '$host' contains control or space characters; "
        . 'pass raw_host => 1 to send them anyway'
        if defined $host && !$req->{raw_host} && $host =~ /[\x00-\x20\x7f]/;
    my @h = $req->{headers} ? $req->{headers}->@* : ();
    my $wire = "$method " . ($req->{target} // $req->{path} // '/')
        . " $proto\r\n";
    $wire .= "Host: $host\r\n" if defined $host;
    # Asking for keep-alive makes httpd answer with a Keep-Alive header when
    # it keeps the connection, so closed_after needs no waiting then.
    $wire .= "Connection: keep-alive\r\n" if $proto eq 'HTTP/1.1'
        && !grep { lc eq 'connection' } @h[ grep { !($_ % 2) } 0 .. $#h ];
    while (my ($name, $value) = splice @h, 0, 2) { $wire .= "$name: $value\r\n" }
    $wire .= 'Content-Length: ' . length($req->{body}) . "\r\n"
        if defined $req->{body};
    $wire .= "\r\n" . ($req->{body} // '');
    croak 'MisdirectTest: request has characters above 0xFF; encode it'
        if $wire =~ /[^\x00-\xff]/;
    return ($wire, $method);
}

sub _write_all ($conn, $bytes) {
    while (length $bytes) {
        my $n = syswrite $conn->{sock}, $bytes or return;
        substr $bytes, 0, $n, '';
    }
}

# Reads one response. Failures become {status => 0, error => ...}: 'closed'
# when the connection ended before any byte of it.
sub _read_response ($conn, $method) {
    $conn->{raw} = '';
    my $res = eval { _parse_response($conn, $method) };
    return $res if $res;
    (my $error = $@) =~ s/\n\z//;
    $error = 'truncated response (connection closed)'
        if $error eq 'closed' && length($conn->{raw} . $conn->{buf});
    $conn->{eof} = 1;
    return { status => 0, error => $error, raw => $conn->{raw} . $conn->{buf},
        closed_after => 1 };
}

sub _parse_response ($conn, $method) {
    my ($proto, $status, %h);
    do {    # 1xx interim responses precede the final one
        %h = ();
        my $status_line = _take_line($conn);
        ($proto, $status) = $status_line =~ m{^(HTTP/\d\.\d) (\d{3})}
            or die "malformed status line: $status_line\n";
        while ((my $line = _take_line($conn)) ne '') {
            my ($name, $value) = $line =~ /^([^:]+):[ \t]*(.*?)[ \t]*$/
                or die "malformed header line: $line\n";
            $name = lc $name;
            $h{$name} = exists $h{$name} ? "$h{$name}, $value" : $value;
        }
    } while ($status >= 100 && $status < 200 && $status != 101);

    my $res = { status => 0 + $status, proto => $proto, headers => \%h,
        body => '' };
    my $until_close = 0;
    if ($method eq 'HEAD' || $status == 101 || $status == 204
        || $status == 304) {
        # no body
    }
    elsif (($h{'transfer-encoding'} // '') =~ /chunked\s*$/i) {
        while ((my $size = _take_line($conn)) !~ /^0+(?:;.*)?$/) {
            $size =~ /^([0-9a-fA-F]+)/ or die "bad chunk size: $size\n";
            $res->{body} .= _take($conn, hex $1);
            _take_line($conn) eq '' or die "chunk not followed by CRLF\n";
        }
        1 while _take_line($conn) ne '';    # trailer fields
    }
    elsif (defined $h{'content-length'}) {
        $res->{body} = _take($conn, $h{'content-length'});
    }
    else {
        $until_close = 1;
        1 while _fill($conn, 1);
        $res->{body} = _take($conn, length $conn->{buf});
    }
    $res->{raw} = $conn->{raw};
    my $connection = lc($h{connection} // '');
    $conn->{kept} = !$until_close && $connection !~ /\bclose\b/
        && ($connection =~ /\bkeep-alive\b/ || exists $h{'keep-alive'});
    return $res;
}

sub _take ($conn, $n) {
    _fill($conn) while length $conn->{buf} < $n;
    my $bytes = substr $conn->{buf}, 0, $n, '';
    $conn->{raw} .= $bytes;
    return $bytes;
}

sub _take_line ($conn) {
    my $at;
    _fill($conn) while ($at = index $conn->{buf}, "\r\n") < 0;
    my $line = _take($conn, $at + 2);
    return substr $line, 0, -2;
}

# Appends what the socket has to the buffer. At end of stream it dies with
# "closed", unless $eof_ok, then it returns 0.
sub _fill ($conn, $eof_ok = 0) {
    my $n = sysread $conn->{sock}, my $chunk, 65536;
    if ($n) {
        $conn->{buf} .= $chunk;
        return $n;
    }
    my $error = _read_error($conn, $n);
    $conn->{eof} = 1;
    return 0 if $error eq 'closed' && $eof_ok;
    die "$error\n";
}

sub _read_error ($conn, $n) {
    return 'closed' if defined $n || $!{ECONNRESET};
    return 'timeout' if $!{EAGAIN} || $!{EWOULDBLOCK};
    return "tls: $IO::Socket::SSL::SSL_ERROR"
        if $conn->{sock}->isa('IO::Socket::SSL');
    return "read: $!";
}

# True when the peer has closed the connection, waiting up to $wait seconds
# for that. Data that arrives instead stays buffered for the next response.
sub _peer_closed ($conn, $wait) {
    return 0 if length $conn->{buf};    # more to read: not closed yet
    return 1 if $conn->{eof};
    my $sock = $conn->{sock};
    my $tls = $sock->isa('IO::Socket::SSL');
    my $deadline = time + $wait;
    while (1) {
        my $left = $deadline - time;
        return 0 unless ($tls && $sock->pending)
            || IO::Select->new($sock)->can_read($left > 0 ? $left : 0);
        # Non-blocking: a TLS record may carry no application data.
        $sock->blocking(0);
        my $n = sysread $sock, my $chunk, 65536;
        my $again = !defined $n && ($!{EAGAIN} || $!{EWOULDBLOCK});
        $sock->blocking(1);
        if ($n) {
            $conn->{buf} .= $chunk;
            return 0;
        }
        next if $again;
        $conn->{eof} = 1;
        return 1;
    }
}

# ---------------------------------------------------------------- helpers

# Runs a command; returns (exit status, stdout, stderr). Output goes to files,
# not pipes, so a daemon that keeps them open cannot make this hang.
sub _run (@cmd) {
    my ($out, $err) = map { File::Temp->new } 1 .. 2;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        delete @ENV{ grep { /^APACHE/ } keys %ENV };    # would steer apache2
        # check/ runs httpd alone with extra environment (ASan runtime).
        my %extra = $cmd[0] eq $APACHE
            ? ($ENV{MISDIRECT_HTTPD_ENV} // '') =~ /(\w+)=(\S*)/g : ();
        @ENV{ keys %extra } = values %extra;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $out;
        open STDERR, '>&', $err;
        { exec { $cmd[0] } @cmd }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);    # no END blocks: they would stop our servers
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($rc, map { _read_from("$_", 0) } $out, $err);
}

sub _free_ports ($n) {
    return _ranged_ports($n, $1, $2)
        if ($ENV{MISDIRECT_PORTS} // '') =~ /^(\d+)-(\d+)$/;
    croak "MisdirectTest: MISDIRECT_PORTS=$ENV{MISDIRECT_PORTS}: want LOW-HIGH"
        if length($ENV{MISDIRECT_PORTS} // '');
    # Hold all sockets open together so the ports differ.
    my @socks = map {
        IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
            Proto => 'tcp', Listen => 1) or die "bind 127.0.0.1:0: $!\n"
    } 1 .. $n;
    return map { $_->sockport } @socks;
}

sub free_ports ($n) { _free_ports($n) }

# Ports of LOW-HIGH that lie outside the kernel's ephemeral range: there a
# proxy's own outgoing connections, which take their local ports from that
# range, cannot claim a port between its pick and its bind. Random, so
# that parallel runs seldom pick the same one.
sub _ranged_ports ($n, $low, $high) {
    my ($elow, $ehigh) = (32768, 60999);
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        ($elow, $ehigh) = split ' ', (<$fh> // "$elow $ehigh");
    }
    my @pool = grep { $_ < $elow || $_ > $ehigh }
        ($low < 1024 ? 1024 : $low) .. ($high > 65535 ? 65535 : $high);
    croak "MisdirectTest: MISDIRECT_PORTS=$low-$high has no port outside "
        . "the ephemeral range $elow-$ehigh" unless @pool >= $n;
    my @socks;
    for my $try (1 .. 1000) {
        my $port = splice @pool, int rand @pool, 1;
        # Not ReuseAddr: a port still in TIME_WAIT is skipped too.
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1);
        push @socks, $sock if $sock;
        return map { $_->sockport } @socks if @socks == $n;
        last unless @pool;
    }
    die "no $n free ports in $low-$high outside $elow-$ehigh\n";
}

# The daemonised httpd is init's child, and init may reap it late: a zombie
# has exited and released its ports.
sub _alive ($pid) {
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return (<$fh> // '') !~ /^\d+ \(.*\) Z /s;
}

sub _wait_gone ($pid, $timeout) {
    my $deadline = time + $timeout;
    while (_alive($pid)) {
        return 0 if time >= $deadline;
        sleep $POLL;
    }
    return 1;
}

# Directories httpd's children (www-data) must be able to enter.
sub _mkdirs (@dirs) {
    make_path(@dirs);
    chmod 0755, @dirs or die "chmod @dirs: $!\n";
}

sub _write ($file, $text) {
    open my $fh, '>:raw', $file or die "write $file: $!\n";
    print $fh $text;
    close $fh or die "close $file: $!\n";
    chmod 0644, $file;
}

# Server trees live in t/tmp, unless the checkout sits where httpd's
# children (User www-data) cannot enter, such as under /root: then in a
# root-owned folder under /tmp that they can.
sub _tmp_root () {
    for (my $dir = $REPO; $dir ne '/'; $dir = dirname($dir)) {
        my $mode = (stat $dir)[2] // 0;
        next if $mode & 0001;
        my $tmp = "/tmp/mod_misdirect-t";
        mkdir $tmp, 0755;
        my @st = lstat $tmp;
        die "$tmp is not a directory of root's: remove it\n"
            unless -d _ && !-l _ && $st[4] == $> && !($st[2] & 0022);
        return $tmp;
    }
    return "$REPO/t/tmp";
}

sub tmp_root () { $TMP }

# A vhost of its own for the counters' page, with Misdirect Off so that
# reading the counters counts nothing: listen is its <VirtualHost>
# address, name its ServerName.
sub status_vhost ($listen, $name) {
    return <<~"EOF";
        <VirtualHost $listen>
            ServerName $name
            Misdirect Off
            <Location /misdirect-status>
                SetHandler misdirect-status
                Require all granted
            </Location>
        </VirtualHost>
        EOF
}

# mod_http2 switches itself off under prefork (AH10034): servers that must
# speak HTTP/2 run the chosen MPM, or event when that is prefork.
sub h2_mpm () {
    my $mpm = $ENV{MISDIRECT_MPM} // 'event';
    return $mpm eq 'prefork' ? 'event' : $mpm;
}

1;

__END__

=head1 NAME

MisdirectTest - run httpd with name-based TLS vhosts and misdirect clients

=head1 SYNOPSIS

    use lib 't/lib';
    use MisdirectTest;
    my $s = MisdirectTest->new(vhost => { 'tls:beta.test' => 'Misdirect On' });
    my ($r) = $s->https(sni => 'alpha.test',
                        requests => [{ host => 'beta.test' }]);
    is $r->{status}, 421;
    my $h2 = $s->h2(sni => 'alpha.test',
                    streams => [{ authority => 'beta.test' }]);
    is $h2->{streams}[0]{status}, 421;

=head1 SERVER

C<new(%opt)> builds C<t/tmp/NAME-PID/> (conf, htdocs, logs, run; under
F</tmp/mod_misdirect-t/> instead when the checkout lies where httpd's
C<www-data> children cannot enter, see C<tmp_root>) and starts
httpd. Options: C<name> (default: the test file's base name), C<mpm>
(event|worker|prefork), C<misdirect> (1: load C<$ENV{MISDIRECT_SO}> or
C<.libs/mod_misdirect.so>), C<ssl>, C<h2>, C<global>, C<vhost>
(C<{ 'NAME' | 'tls:NAME' | 'plain:NAME' =E<gt> text }>), C<extra_vhosts>
(in these three, C<@TLS_PORT@> and C<@PLAIN_PORT@> stand for the ports),
C<loglevel> (default C<warn misdirect:trace1 ssl:info>, leaving out the
modules that are not loaded), C<modules> (C<[qw(rewrite proxy proxy_http)]>:
more modules to load from the Debian module directory, after the
standard ones), C<tls_vhosts> (C<[{ name =E<gt> NAME, alias =E<gt> NAME,
conf =E<gt> text }, ...]>: these TLS vhosts, the first the address's
default, instead of the standard ones; C<conf> follows C<SSLEngine on> in
place of the certificate lines), C<expect_log> and C<log_sweep> (see
L</LOGS>). C<$ENV{MISDIRECT_MPM}> sets the default
C<mpm>; C<$ENV{MISDIRECT_HTTPD_ENV}> (C<NAME=value ...>) is added to
apache2's environment alone (check/ preloads the ASan runtime so). With
C<ssl =E<gt> 0> there is no TLS port and C<tls_port> is undef.

Methods: C<start>, C<stop>, C<graceful>, C<restart>, C<root>, C<conf_file>,
C<tls_port>, C<plain_port>, C<pid>, C<docroot(NAME)>, C<vhost_line('tls:NAME'
| 'plain:NAME')> (line of that C<E<lt>VirtualHostE<gt>> in C<conf_file>).
C<MisdirectTest::configtest(%opt)> returns C<($exit, $output)> of
C<apache2 -t>. C<MisdirectTest::pki()> returns the directory with C<ca>,
C<default>, C<alpha>, C<beta>, C<shared>, C<wild> and C<client> C<.crt> and
C<.key> files.

=head1 CLIENTS

C<https(sni =E<gt> NAME|undef, requests =E<gt> [...], cert =E<gt> 'client',
port =E<gt> N, from =E<gt> '127.0.0.2')> and C<http(requests =E<gt> [...],
port =E<gt> N, from =E<gt> '127.0.0.2')> send every request on one
connection and return one hashref per request (the first in scalar
context): C<status>, C<proto>, C<headers> (lower-case names, repeats joined
with ", "), C<body>, C<raw>, C<closed_after>. C<from> connects from that
loopback address instead of 127.0.0.1 (another peer, for
C<MisdirectTrustedProxy>). A request that got no response has C<status>
0 and C<error> ('closed', 'timeout', 'tls: ...', ...). A request is
C<{host, path, method, target, proto, headers =E<gt> [name =E<gt> value,
...], body, raw_host}>; C<host> undef sends no Host header; a host with
control or space characters croaks unless C<raw_host>. HTTP/1.1 requests
carry C<Connection: keep-alive> unless C<headers> has a Connection field,
so that httpd says when it keeps the connection.

C<closed_after> is observed, not read from headers: 1 when a later request
on the connection found it closed, or the server closed it within 3 s after
a response that did not promise keep-alive, or within 50 ms after the last
response (httpd can close after promising, as with mod_ssl's 421).

C<h2(sni =E<gt> NAME|undef, streams =E<gt> [{authority, path, method, scheme,
headers}], plain =E<gt> 0|1, cert =E<gt> 'client', port =E<gt> N)> returns
the JSON that F<t/bin/h2streams.py> prints. C<upgrade =E<gt> {host, path,
headers, early}> reaches h2c by an HTTP/1.1 C<Upgrade: h2c> request on the
plain port instead (C<plain> implied): C<upgrade> in the result has the
status and headers of its answer, its request is stream 1 of C<streams>,
and the given streams follow as 3, 5, ..., opened once stream 1 has
ended, or with C<early> sent with the connection preface right behind
the HTTP/1.1 request (under the event MPM httpd 2.4.71 ends an upgraded
connection once it has no stream left: later streams reach it only so).

C<curl(@args)> returns C<($exit, $stdout, $stderr)>; curl always connects to
127.0.0.1.

=head1 PORTS

Servers listen on ports the kernel hands out (its ephemeral range), unless
C<$ENV{MISDIRECT_PORTS}> is C<LOW-HIGH>: then on random free ports of that
range that lie outside the ephemeral range
(F</proc/sys/net/ipv4/ip_local_port_range>), where no outgoing connection
can take them. C<MisdirectTest::free_ports($n)> returns C<$n> distinct free
loopback ports by the same rule, for other servers of a test (proxies).

=head1 LOGS

C<mark>, C<error_log_since($mark)>, C<access_log_since($mark)>,
C<wait_error_log(qr/.../, $mark, $timeout)>, C<wait_access_log(...)>,
C<wait_log('findings.log', qr/.../, $timeout)> for another log in logs/.

C<stop> sweeps the whole error_log, as httpd's own tests do after each
test (C<check_error_log>), when Test::More is loaded: it fails the running
test (C<httpd NAME: no unexpected warn+ line in error_log>, with the
first lines as diagnostics) on each line at C<warn> or above that nobody
expected, and (C<no child crashed>) on C<exit signal> or C<child pid N
exit>, which nothing can expect. Lines the harness itself causes are
expected on every server (C<@HARNESS_EXPECTED>: the lint on the standard
layout's deliberate flaws, mod_http2 off under prefork). A test declares
the rest, each as a message number (C<'MISDIRECT001'>, C<'AH02032'>: a
message that opens with it) or a pattern matched against the message (what
follows the timestamp, C<[module:level]>, pid and client fields):
C<new(expect_log =E<gt> [...])> for the whole error_log,
C<$s-E<gt>expect_log(...)> for what is logged from then on (after the
request or restart that follows), C<MisdirectTest-E<gt>expect_log(...)>
for every server the test file starts, also through a library
(MisdirectPredict). C<log_sweep =E<gt> 0> leaves out both (the check of
the diagnosis lines' openings stays), for check/ scripts that load a
server into such lines by design and read the error_log themselves.

=cut
