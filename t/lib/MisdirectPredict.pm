package MisdirectPredict;

# The prediction (`apache2 -t -D DUMP_MISDIRECT_JSON`) against the real
# server, on random configurations built the way real sites are: name-based
# TLS vhosts on `127.0.0.1:port`, `*:port` and `[::1]:port`, `SSLEngine off`
# vhosts among them, IP, trailing-dot and wildcard aliases, names that
# differ only in case, shared, wildcard and dual RSA+ECDSA certificates
# that cover different names, SSLStrictSNIVHostCheck (global or per vhost),
# SSLProtocol on the default vhost and per vhost, SSLVerifyClient optional
# and require, the four SSLVHostSNIPolicy values, MisdirectPolicy
# variations, Misdirect Off, and MisdirectTrustedProxy 127.0.0.1/32 with
# requests also from 127.0.0.2 (not trusted) and ::1.
#
# For each configuration it starts httpd, reads the dump, and sends every
# (SNI or none, Host) pair of every TLS address over HTTP/1.1 (from each
# source address, and with RSA-only and ECDSA-only clients where the
# handshake's certificates are several), over HTTP/2 (one connection per
# SNI, a stream per host; a stream whose vhost verifies clients otherwise
# than the handshake on a connection of its own), and resumes a TLS 1.2
# and a TLS 1.3 session of each TLS vhost without SNI and under another
# name.  Each answer must be the predicted one: status, who gave it
# (mod_ssl's AH02032 421, its AH02033 or client-verification 403, the
# module's MISDIRECT001 and its reason, mod_http2's reset), the handshake
# vhost and the SNI on the module's lines, the vhost that served it, and
# the counters of misdirect-status.  Shared by check/predict.pl (make
# check-predict) and t/38-predict-random.t.
#
# What the dump promises, and so what the oracle compares: what GET / over
# HTTP/1.1 on a connection of its own gets after a successful handshake,
# for a client that offers TLS 1.3 (and TLS 1.2) and presents a client
# certificate only where the handshake requires one (run_config says
# which handshake).  Per pair it may carry "trusted_peer" (what a peer
# that the request vhost's MisdirectTrustedProxy lists gets) and
# "by_certificate" (what a client that accepts only one key type gets);
# where it does not, the pair's own answer is expected.  What other
# clients get follows from it: HTTP/2 and TLS-1.2-only clients in
# for_client(), resumed sessions at the resumptions in run_config().

use v5.36;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::IP;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use IPC::Open3 qw(open3);
use JSON::PP ();
use Net::SSLeay ();
use Symbol qw(gensym);
use Time::HiRes qw(sleep time);
use MisdirectTest;
use MisdirectCase qw(fields);

our @EXPORT_OK = qw(run_rounds);

my $OPENSSL = '/usr/bin/openssl';
my $PYTHON = '/usr/bin/python3';
my $H2MANY = dirname(__FILE__) . '/../bin/h2many.py';
my $IO_TIMEOUT = 10;

# ---------------------------------------------------------------- random

# xorshift32 (MisdirectRandom), as t/24-ssl-model.t draws it.
use MisdirectRandom;

sub next_seed ($seed) {
    reseed($seed);
    rnd(1);
    return rng_state();
}

# ---------------------------------------------------------------- PKI

my ($PKI, $CA);

sub openssl (@args) {
    my ($rc, $out, $err) = MisdirectTest::_run($OPENSSL, @args);
    die "openssl @args failed:\n$out$err" if $rc;
}

# One RSA and one ECDSA key with their requests, for every certificate of
# the run: what mod_ssl compares is the files, and each certificate has a
# file of its own.
sub make_pki () {
    $CA = MisdirectTest::pki();
    $PKI = MisdirectTest::tmp_root() . "/predict-pki-$$";
    remove_tree($PKI);
    make_path($PKI);
    chmod 0755, $PKI;
    my %newkey = (rsa => ['rsa:2048'],
                  ec => [qw(ec -pkeyopt ec_paramgen_curve:P-256)]);
    for my $k (sort keys %newkey) {
        openssl(qw(req -new -nodes -newkey), $newkey{$k}->@*,
            -keyout => "$PKI/$k.key", -out => "$PKI/$k.csr",
            -subj => "/CN=predict $k");
        chmod 0644, "$PKI/$k.key";
    }
    return $PKI;
}

sub cleanup () { remove_tree($PKI) if $PKI && -d $PKI }

my $serial = 1000;

# A certificate of $type (rsa, ec) for @san (DNS names, wildcards, IPs).
sub make_cert ($dir, $file, $type, @san) {
    my $ext = "$dir/$file.ext";
    open my $fh, '>', $ext or die "$ext: $!";
    print $fh "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        . 'subjectAltName=' . join(',', map {
            /^[\d.]+$|:/ ? "IP:$_" : "DNS:$_" } @san) . "\n";
    close $fh;
    openssl(qw(x509 -req -days 2), -set_serial => $serial++,
        -in => "$PKI/$type.csr", -CA => "$CA/ca.crt", -CAkey => "$CA/ca.key",
        -extfile => $ext, -out => "$dir/$file.crt");
    chmod 0644, "$dir/$file.crt";
    return { file => "$dir/$file.crt", key => "$PKI/$type.key",
        type => $type, san => [@san] };
}

# ---------------------------------------------------------------- configs

my @LABELS = qw(www shop api mail blog cdn app docs pay auth);
my @DOMAINS = qw(example.test corp.test);
my @POLICIES = qw(strict secure authonly insecure);
my @CHECKS = qw(sni-missing cert-mismatch sni-host-mismatch);

sub recase ($name) {
    my $r;
    do { $r = join '', map { chance(0.4) ? uc : lc } split //, $name }
        while $r eq $name && $name =~ /[a-z]/ && chance(0.9);
    return $r;
}

# One configuration: its vhosts, each with its addresses, names, TLS and
# module lines; the global lines; and what each feature chose, to describe
# a failure.
sub generate ($seed, $nvhosts = undef) {
    reseed($seed);
    $nvhosts //= 5 + rnd(4);
    my $dom = pick(@DOMAINS);
    my $layout = pick(qw(ip ip star star mixed v6));
    my %f = (layout => $layout);
    my @v;
    my %used;
    for my $i (0 .. $nvhosts - 1) {
        my $label;
        do { $label = pick(@LABELS) . ($i + 1) } while $used{$label}++;
        my $name = "$label.$dom";
        # A ServerName written with capitals now and then.
        my $sn = chance(0.15) ? recase($name) : $name;
        push @v, { i => $i, name => $sn, lname => lc $sn, aliases => [],
            tls => 1, conf => [] };
    }
    # Addresses: the first vhost of each address set is its default and
    # speaks TLS.
    for my $v (@v) {
        $v->{addr} = $layout eq 'ip' ? ['127.0.0.1:P']
            : $layout eq 'star' ? ['*:P']
            : $layout eq 'v6' ? [pick('127.0.0.1:P', '[::1]:P',
                '127.0.0.1:P [::1]:P')]
            : [pick('127.0.0.1:P', '*:P', '127.0.0.1:P')];
    }
    $v[0]{addr} = ['127.0.0.1:P'] if $layout ne 'star';
    # Aliases: another name of its own, a trailing dot, an IP, a wildcard
    # that may catch later vhosts' names, a name of another vhost in
    # another case.
    for my $v (@v) {
        push $v->{aliases}->@*, "www.$v->{lname}" if chance(0.3);
        push $v->{aliases}->@*, "$v->{lname}." if chance(0.15);
        push $v->{aliases}->@*, "alt$v->{i}.$dom." if chance(0.1);
        push $v->{aliases}->@*, '127.0.0.1' if chance(0.1);
        push $v->{aliases}->@*, "*.$v->{lname}" if chance(0.1);
        push $v->{aliases}->@*, "*.$dom" if chance(0.05);
    }
    if (@v > 2 && chance(0.35)) {
        my ($a, $b) = (pick(@v[1 .. $#v]), pick(@v));
        push $a->{aliases}->@*, recase($b->{lname}) if $a != $b;
        $f{case_alias} = "$a->{name} has an alias of $b->{name} in another case"
            if $a != $b;
    }
    # SSLEngine off vhosts, never the first of an address.
    my %first;
    for my $v (@v) {
        my @a = map { split ' ' } $v->{addr}->@*;
        $first{$_} //= $v for @a;
        $v->{tls} = 0 if !grep { $first{$_} == $v } @a and chance(0.15);
    }
    # [::1] is listened on where a vhost can answer there.
    $f{ipv6} = grep { m{^\*:|\[::1\]} } map { $_->{addr}->@* } @v;
    # Certificates: a vhost's own, one shared with others, a wildcard, or
    # an RSA and an ECDSA one covering different names.
    my @names = map { ($_->{lname}, grep { !/\.$/ } $_->{aliases}->@*) } @v;
    my @certs;
    my $cdir = "$PKI/c$seed";
    make_path($cdir);
    chmod 0755, $cdir;
    for my $v (grep { $_->{tls} } @v) {
        my $kind = pick(qw(own own own shared wild dual dual));
        if ($kind eq 'shared' && @certs && chance(0.8)) {
            $v->{certs} = pick(@certs);
            $v->{cert_kind} = "shared with $v->{certs}[0]{owner}";
            next;
        }
        my @mine = ($v->{lname}, grep { !/\.$|\*/ } $v->{aliases}->@*);
        # Now and then a name left out, or another vhost's name in.
        @mine = grep { !chance(0.15) } @mine;
        push @mine, pick(@names) if chance(0.3);
        push @mine, "*.$dom" if $kind eq 'wild';
        push @mine, $v->{lname} unless @mine;
        my $type = pick('rsa', 'ec');
        my @set = (make_cert($cdir, "v$v->{i}-$type", $type, uniq(@mine)));
        if ($kind eq 'dual') {
            my $other = $type eq 'rsa' ? 'ec' : 'rsa';
            # The other type for other names: a subset, or other names.
            my @theirs = chance(0.5) ? grep { chance(0.5) } @mine
                : (pick(@names), chance(0.5) ? pick(@names) : ());
            @theirs = ($v->{lname}) unless @theirs;
            push @set, make_cert($cdir, "v$v->{i}-$other", $other,
                uniq(@theirs));
        }
        $_->{owner} = $v->{name} for @set;
        push @certs, \@set;
        $v->{certs} = \@set;
        $v->{cert_kind} = $kind;
    }
    # TLS settings per vhost.
    for my $v (grep { $_->{tls} } @v) {
        if ($v->{i} == 0 && chance(0.3)) {
            $v->{protocol} = 'TLSv1.2';
        }
        elsif (chance(0.15)) {
            $v->{protocol} = pick('TLSv1.2', 'TLSv1.3',
                'all -TLSv1 -TLSv1.1');
        }
        $v->{verify} = pick('optional', 'require') if chance(0.15);
        $v->{strict} = 1 if chance(0.08);
    }
    # The module's settings per vhost.
    for my $v (@v) {
        push $v->{conf}->@*, 'Misdirect Off' if chance(0.05);
        push $v->{conf}->@*, 'MisdirectTrustedProxy 127.0.0.1/32'
            if chance(0.12);
        push $v->{conf}->@*, 'MisdirectPolicy ' . pick(@CHECKS) . ' '
            . pick(qw(reject report allow)) if chance(0.25);
    }
    my @g = ('MisdirectLogLimit 0', "SSLCACertificateFile $CA/ca.crt");
    my $policy = pick(@POLICIES, 'unset');
    push @g, "SSLVHostSNIPolicy $policy" unless $policy eq 'unset';
    $f{policy} = $policy;
    if (chance(0.15)) {
        push @g, 'SSLStrictSNIVHostCheck on';
        $f{strict_global} = 1;
    }
    if (chance(0.2)) {
        push @g, 'MisdirectTrustedProxy 127.0.0.1/32';
        $f{trusted_global} = 1;
    }
    for (1 .. pick(0, 0, 1, 1, 2)) {
        push @g, 'MisdirectPolicy ' . pick(@CHECKS) . ' '
            . pick(qw(reject report allow));
    }
    return { seed => $seed, vhosts => \@v, global => \@g, features => \%f };
}

sub uniq (@l) {
    my %s;
    return grep { !$s{ lc $_ }++ } @l;
}

sub vhost_lines ($cfg, $v, $port, $root) {
    my $addr = join ' ', map { s/P$/$port/r } $v->{addr}->@*;
    my @b = ("ServerName $v->{name}",
        (map { "ServerAlias $_" } $v->{aliases}->@*),
        qq{DocumentRoot "$root/htdocs/d$v->{i}"});
    if ($v->{tls}) {
        push @b, 'SSLEngine on';
        for my $c ($v->{certs}->@*) {
            push @b, "SSLCertificateFile $c->{file}",
                "SSLCertificateKeyFile $c->{key}";
        }
        push @b, "SSLProtocol $v->{protocol}" if $v->{protocol};
        push @b, "SSLVerifyClient $v->{verify}" if $v->{verify};
        push @b, 'SSLStrictSNIVHostCheck on' if $v->{strict};
    }
    elsif (chance(0.5)) {
        push @b, 'SSLEngine off';
    }
    push @b, $v->{conf}->@*;
    return join "\n", "<VirtualHost $addr>", (map { "    $_" } @b),
        "</VirtualHost>\n";
}

sub describe_vhost ($v) {
    my @f = ('addr ' . join(' ', $v->{addr}->@*));
    push @f, 'aliases ' . join(' ', $v->{aliases}->@*) if $v->{aliases}->@*;
    if ($v->{tls}) {
        push @f, 'certs ' . join(' + ', map { uc($_->{type}) . ' ['
            . join(' ', $_->{san}->@*) . ']' } $v->{certs}->@*)
            . " ($v->{cert_kind})";
        push @f, "SSLProtocol $v->{protocol}" if $v->{protocol};
        push @f, "SSLVerifyClient $v->{verify}" if $v->{verify};
        push @f, 'SSLStrictSNIVHostCheck on' if $v->{strict};
    }
    else {
        push @f, 'SSLEngine off';
    }
    push @f, $v->{conf}->@*;
    return "$v->{name}: " . join '; ', @f;
}

sub describe ($cfg) {
    return join '', "    global: " . join('; ', $cfg->{global}->@*) . "\n",
        "    layout: $cfg->{features}{layout}\n",
        map { '    ' . describe_vhost($_) . "\n" } $cfg->{vhosts}->@*;
}

# ---------------------------------------------------------------- server

package MisdirectPredict::Server {
    use v5.36;
    use parent -norequire, 'MisdirectTest';

    sub _write_config ($self) {
        my $root = $self->{root};
        my $cfg = $self->{predict};
        my ($tls, $plain) = @$self{qw(tls_port plain_port)};
        $self->{endpoints} = ["127.0.0.1:$tls",
            ($cfg->{features}{ipv6} ? "[::1]:$tls" : ())];
        my @c = ('# Generated by t/lib/MisdirectPredict.pm',
            qq{ServerRoot "$root"});
        push @c, "LoadModule ${_}_module " . MisdirectTest::module_dir()
            . "/mod_$_.so" for $self->_modules;
        push @c, "LoadModule misdirect_module $self->{so}";
        push @c, <<~"EOF";
            ServerName localhost
            Listen 127.0.0.1:$plain
            User www-data
            Group www-data
            PidFile run/httpd.pid
            DefaultRuntimeDir run
            ErrorLog logs/error_log
            LogLevel $self->{loglevel}
            LogFormat "%v %>s %a \\"%r\\"" predict
            CustomLog logs/access_log predict
            TypesConfig /etc/mime.types
            DirectoryIndex index.html
            KeepAlive On
            Timeout 10
            StartServers 2
            ThreadsPerChild 10
            MinSpareThreads 10
            MaxSpareThreads 20
            MaxRequestWorkers 20
            <Directory />
                AllowOverride None
                Require all denied
            </Directory>
            <Directory "$root/htdocs">
                Require all granted
            </Directory>
            SSLSessionCache shmcb:$root/run/ssl_scache(512000)
            Protocols h2 http/1.1
            EOF
        push @c, map { "Listen $_" } $self->{endpoints}->@*;
        push @c, $cfg->{global}->@*;
        push @c, MisdirectTest::status_vhost("127.0.0.1:$plain",
            'status.localhost');
        # The same draws on every start (a retried port).
        MisdirectPredict::reseed($cfg->{seed} ^ 0x5a5a5a5a);
        push @c, MisdirectPredict::vhost_lines($cfg, $_, $tls, $root)
            for $cfg->{vhosts}->@*;
        for my $v ($cfg->{vhosts}->@*) {
            MisdirectTest::_mkdirs("$root/htdocs/d$v->{i}");
            MisdirectTest::_write("$root/htdocs/d$v->{i}/index.html",
                "$v->{name}\n");
        }
        MisdirectTest::_write($self->conf_file, join("\n", @c) . "\n");
    }

    # Up: the last startup line, and the status and TLS ports listen.
    sub _up_since ($self, $mark) {
        return 0 unless $self->error_log_since($mark)
            =~ /AH00094: Command line/;
        my %listen;
        open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!\n";
        while (my $line = <$fh>) {
            $listen{ hex $1 } = 1
                if $line =~ /^\s*\d+: 0100007F:([0-9A-F]{4}) \S+ 0A /;
        }
        return !grep { !$listen{$_} } @$self{qw(plain_port tls_port)};
    }
}

# ---------------------------------------------------------------- clients

# Sigalgs and TLS 1.2 ciphers of a client that accepts one key type only.
my %KEY_ONLY = (
    RSA => ['rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256:'
            . 'rsa_pkcs1_sha384', 'aRSA'],
    EC  => ['ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384', 'aECDSA'],
);
my $SSL_CTRL_SET_SIGALGS_LIST = 98;
my %CTX;

# A client context made once: a new one each connection would load the
# system's CAs each time, 40 ms.  No client session cache: each
# connection is a full handshake.
sub client_ctx ($key, $cert) {
    return $CTX{ ($key // '') . '|' . ($cert ? 1 : 0) } //= do {
        my %ssl = (SSL_verify_mode => SSL_VERIFY_NONE,
            SSL_alpn_protocols => ['http/1.1']);
        if ($key) {
            my ($sigalgs, $ciphers) = $KEY_ONLY{$key}->@*;
            $ssl{SSL_cipher_list} = $ciphers;
            $ssl{SSL_create_ctx_callback} = sub ($ctx) {
                Net::SSLeay::CTX_ctrl($ctx, $SSL_CTRL_SET_SIGALGS_LIST, 0,
                    $sigalgs);
            };
        }
        @ssl{qw(SSL_cert_file SSL_key_file)} = ("$CA/client.crt",
            "$CA/client.key") if $cert;
        IO::Socket::SSL::SSL_Context->new(%ssl)
            or die "client context: $IO::Socket::SSL::SSL_ERROR\n";
    };
}

# One GET over HTTP/1.1 on a connection of its own, with exactly the SNI
# given (IP literals and trailing dots too), from a chosen source address.
sub h1 (%o) {
    my $sock = IO::Socket::IP->new(PeerHost => $o{addr},
        PeerPort => $o{port}, LocalHost => $o{source}, Timeout => $IO_TIMEOUT)
        or return { status => 0, error => "connect: $!" };
    # SSL_hostname given is sent as it is, an IP literal too; '' sends
    # none.
    IO::Socket::SSL->start_SSL($sock, SSL_reuse_ctx => client_ctx($o{key},
        $o{cert}), SSL_hostname => $o{sni} // '')
        or return { status => 0, error => "handshake: "
            . ($IO::Socket::SSL::SSL_ERROR || $!) };
    my $cert = Net::SSLeay::get_peer_certificate($sock->_get_ssl_object);
    my $ktype = $cert ? Net::SSLeay::EVP_PKEY_id(
        Net::SSLeay::X509_get_pubkey($cert)) : 0;
    my $version = $sock->get_sslversion;
    print {$sock} "GET $o{path} HTTP/1.1\r\nHost: $o{host}\r\n"
        . "Connection: close\r\n\r\n";
    my $raw = '';
    local $@;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $IO_TIMEOUT;
        while (1) {
            my $n = sysread $sock, my $buf, 65536;
            last unless $n;
            $raw .= $buf;
        }
        alarm 0;
    };
    close $sock;
    my ($status) = $raw =~ m{^HTTP/1\.1 (\d{3})};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;
    return { status => $status // 0, body => $body // '',
        error => $status ? undef : 'no response'
            . ($IO::Socket::SSL::SSL_ERROR ? ": $IO::Socket::SSL::SSL_ERROR"
                : ''),
        cert_type => $ktype == 6 ? 'RSA' : $ktype == 408 ? 'EC' : $ktype,
        version => $version };
}

# openssl s_client: a session saved or resumed.  Returns ($status, $body,
# $reused).
sub s_client (%o) {
    my @cmd = ($OPENSSL, 's_client', '-connect', "127.0.0.1:$o{port}",
        '-ign_eof', '-alpn', 'http/1.1', "-$o{version}",
        defined $o{sni} ? ('-servername', $o{sni}) : '-noservername',
        $o{sess_out} ? ('-sess_out', $o{sess_out}) : (),
        $o{sess_in} ? ('-sess_in', $o{sess_in}) : (),
        $o{cert} ? ('-cert', "$CA/client.crt", '-key', "$CA/client.key")
            : ());
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, @cmd);
    print $in "GET $o{path} HTTP/1.1\r\nHost: $o{host}\r\n"
        . "Connection: close\r\n\r\n";
    close $in;
    my $raw = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $IO_TIMEOUT;
        local $/;
        $raw = <$out> // '';
        alarm 0;
    };
    kill 'TERM', $pid if $@;
    waitpid $pid, 0;
    my ($status) = $raw =~ m{^HTTP/1\.1 (\d{3})}m;
    my ($body) = $raw =~ m{^HTTP/1\.1 .*?\r\n\r\n([^\r\n]*)}ms;
    my $reused = $raw =~ /^Reused, /m ? 1 : 0;
    return ($status // 0, $body // '', $reused);
}

# One HTTP/2 connection, as t/bin/h2streams.py makes it, run by one
# t/bin/h2many.py for the whole run: a start of Python with h2 costs 0.3 s,
# and a configuration needs a few hundred connections.
my ($H2PID, $H2IN, $H2OUT);

sub h2_stop () {
    return unless $H2PID;
    close $H2IN;
    close $H2OUT;
    waitpid $H2PID, 0;
    $H2PID = undef;
}

sub h2 (%o) {
    my %spec = (port => $o{port}, plain => JSON::PP::false, sni => $o{sni},
        address => $o{addr}, source => $o{source}, timeout => $IO_TIMEOUT,
        streams => $o{streams},
        ($o{cert} ? (cert => "$CA/client.crt", key => "$CA/client.key")
            : ()));
    $H2PID //= open3($H2IN, $H2OUT, undef, $PYTHON, $H2MANY);
    my $line = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        local $SIG{PIPE} = 'IGNORE';
        alarm 3 * $IO_TIMEOUT;
        print {$H2IN} JSON::PP->new->canonical->encode(\%spec), "\n";
        $H2IN->flush;
        my $l = readline $H2OUT;
        alarm 0;
        $l;
    };
    unless (defined $line) {
        kill 'TERM', $H2PID;
        h2_stop();
        return { error => 'h2many.py: ' . ($@ || 'no answer') };
    }
    return eval { JSON::PP->new->decode($line) }
        // { error => "h2many.py printed no JSON: $line" };
}

sub status_totals ($s) {
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
        PeerPort => $s->plain_port, Timeout => $IO_TIMEOUT) or return;
    # HTTP/1.0: no chunks.
    print {$sock} "GET /misdirect-status HTTP/1.0\r\n"
        . "Host: status.localhost\r\n\r\n";
    local $/;
    my $raw = <$sock> // '';
    # The totals come first, before any vhost: no need to parse all of it
    # (JSON::PP takes milliseconds per page).
    my ($totals) = $raw =~ /"totals": \{(.*?)"checks"/s or return;
    return { $totals =~ /"(\w+)": (\d+)/g };
}

# ---------------------------------------------------------------- oracle

my @COUNTERS = qw(checked rejected mod_ssl_421 mod_ssl_403 mod_ssl_400
    other_421);

my $seq = 0;

# Waits until $re matches a complete line of what $read returns, or
# until that many lines ($n) do.
sub wait_for ($read, $re, $timeout, $n = 1) {
    my $deadline = time + $timeout;
    while (1) {
        my $text = $read->();
        return $text if (() = $text =~ /^(?=.*$re).*\n/mg) >= $n;
        return undef if time >= $deadline;
        sleep 0.005;
    }
}

sub answer_of ($p) {
    return { status => $p->{status}, by => $p->{by}, check => $p->{check},
        ($p->{no_answer} ? (no_answer => $p->{no_answer}) : ()) };
}

sub show_answer ($a) {
    return "RST_STREAM $a->{reset} by $a->{by}" if defined $a->{reset};
    return "$a->{status}" . ($a->{by} ? " by $a->{by}" : '')
        . ($a->{check} ? " ($a->{check})" : '');
}

# A vhost's SSLVerifyClient as mod_ssl orders them: none (unset), optional,
# require.
sub verify_level ($v) {
    return { optional => 1, require => 2 }->{ ($v // {})->{verify} // '' }
        // 0;
}

# The RST_STREAM error code HTTP_1_1_REQUIRED (RFC 9113 7).
my $HTTP_1_1_REQUIRED = 13;

# The dump answers for a client that offers TLS 1.3 and sends GET / over
# HTTP/1.1 (docs/predict.md).  Other clients of the oracle get what that
# answer means for them:
#
# - over HTTP/2 (h2 => 1), mod_ssl cannot ask for a client certificate on
#   a stream (neither post-handshake authentication nor renegotiation):
#   it refuses the request with a note that mod_http2 turns into a reset
#   of the stream with HTTP_1_1_REQUIRED.  So a pair answered with
#   mod_ssl's client-verification 403 gets exactly that reset on h2; so
#   does a pair that the dump serves after a TLS 1.2 renegotiation, or
#   answers with none because that renegotiation fails (its request
#   vhost verifies more strictly than the handshake's context,
#   ctx_level, and mod_ssl's access check was reached); no other pair
#   does.
# - a client that offers only TLS 1.2 (tls12 => 1) is asked for its
#   certificate by renegotiation instead: where the request vhost says
#   `SSLVerifyClient optional` a client without a certificate gets in
#   (served: the module's check came before and did not refuse, or the
#   dump would say so); where it says `require` the renegotiation fails
#   and mod_ssl ends the connection: no answer (the dump's no_answer
#   "renegotiation"; the CA certificates are set globally here, so
#   mod_ssl does renegotiate).
#
# $verify_403 says whether the dump's 403 by mod_ssl is the
# client-verification one (not SSLStrictSNIVHostCheck's); $r is the
# request vhost of the configuration.
sub for_client ($e, $verify_403, $r, %c) {
    my $reset = { status => 0, by => 'mod_http2', check => undef,
        reset => $HTTP_1_1_REQUIRED };
    my $reneg = ($e->{no_answer} // '') eq 'renegotiation';
    return $reset if $c{h2} && ($e->{status} == 200 || $reneg) && $r
        && $r->{tls} && verify_level($r) > $c{ctx_level};
    return $e unless $e->{status} == 403 && ($e->{by} // '') eq 'mod_ssl'
        && $verify_403;
    return $reset if $c{h2};
    return { status => 200, by => undef, check => undef }
        if $c{tls12} && $r && $r->{tls} && ($r->{verify} // '') eq 'optional';
    return { status => 0, by => 'mod_ssl', check => undef,
        no_answer => 'renegotiation' } if $c{tls12};
    return $e;
}

# What a client gets: the trusted peer's row or one key type's, where the
# dump says; the pair's own answer otherwise.
sub expected ($p, $trusted, $key) {
    if ($key) {
        my ($e) = grep { ($_->{key} // '') eq $key }
            ($p->{by_certificate} // [])->@*;
        return answer_of($e) if $e;
    }
    return answer_of($p->{trusted_peer}) if $trusted && $p->{trusted_peer};
    return answer_of($p);
}

# Who answered, from the error_log lines of one request.
sub real_answer ($status, $log, $reset = undef) {
    my %a = (status => $status);
    if (!$status && defined $reset) {
        # A stream that HTTP/2 reset: mod_http2 answered, whatever lines
        # the request left.
        return { status => 0, by => 'mod_http2', reset => $reset };
    }
    # No answer at all: the handshake failed, which only mod_ssl does
    # (the dump's status 0), or a renegotiation for a client certificate
    # after the request was read (mod_ssl's AH02225, AH02261).
    return { status => 0, by => 'mod_ssl', ($log =~ /AH022(?:25|61)/
        ? (no_answer => 'renegotiation') : ()) } if !$status;
    my @m001 = $log =~ /^(.*MISDIRECT001: .*)$/mg;
    if ($status == 421 && $log =~ /AH02032/) {
        $a{by} = 'mod_ssl';
    }
    elsif ($status == 403 && $log =~ /AH02033/) {
        $a{by} = 'mod_ssl';
        $a{sub} = 'strict-sni';
    }
    elsif ($status == 403 && $log =~ /AH(?:10158|0225\d|0226\d)/) {
        $a{by} = 'mod_ssl';
        $a{sub} = 'verify';
    }
    elsif ($status == 421 && @m001) {
        $a{by} = 'mod_misdirect';
        $a{check} = fields($m001[0])->{reason};
    }
    elsif ($status == 421) {
        $a{by} = $log =~ /MISDIRECT007/ ? 'handler (MISDIRECT007)'
            : 'unknown';
    }
    elsif ($status != 200) {
        $a{by} = 'unknown';
    }
    return \%a;
}

sub same_answer ($e, $r) {
    return 0 unless $e->{status} == $r->{status}
        && ($e->{by} // '') eq ($r->{by} // '')
        && ($e->{reset} // -1) == ($r->{reset} // -1);
    return ($e->{by} // '') ne 'mod_misdirect'
        || ($e->{check} // '') eq ($r->{check} // '');
}

# The counters a request moves, by its answer: not counted where the
# request vhost has Misdirect Off; 'checked' only for answers that the
# module's check saw for sure.
sub counter_delta ($e, $off) {
    my %d = map { $_ => 0 } @COUNTERS;
    return \%d if $off;
    my $by = $e->{by} // '';
    # A handshake that fails brings no request to count; a renegotiation
    # that fails comes after the request was read and checked, and no
    # refusal reached the client.
    if ($e->{status} == 0 && !defined $e->{reset}) {
        $d{checked} = 1 if ($e->{no_answer} // '') eq 'renegotiation';
        return \%d;
    }
    if ($e->{status} == 0 && defined $e->{reset}
            && $e->{reset} == $HTTP_1_1_REQUIRED) {
        # mod_ssl's client-verification refusal on an HTTP/2 stream: the
        # module checked the request (the refusal comes after the check),
        # and the client got a reset, not a 403: no refusal of mod_ssl's
        # reached it, so none is counted.
        $d{checked} = 1;
    }
    elsif ($e->{status} == 0) {
        $d{checked} = undef;    # a stream reset after the check, maybe
    }
    elsif ($e->{status} == 200) {
        $d{checked} = 1;
    }
    elsif ($e->{status} == 421 && $by eq 'mod_misdirect') {
        @d{qw(checked rejected)} = (1, 1);
    }
    elsif ($e->{status} == 421 && $by eq 'mod_ssl') {
        $d{mod_ssl_421} = 1;
    }
    elsif ($e->{status} == 403) {
        $d{mod_ssl_403} = 1;
        # The verification 403 comes after the check, the strict one
        # before.
        $d{checked} = ($e->{sub} // '') eq 'strict-sni' ? 0 : 1;
    }
    elsif ($e->{status} == 421 && $by =~ /^handler/) {
        $d{other_421} = 1;
    }
    return \%d;
}

# The kind of a client, for grouping: the source address only where it
# is the trusted one, the other SNI of a resumption unnamed.
sub kind_of ($via) {
    return $via =~ s/ from 127\.0\.0\.2| \[::1\]//r
        =~ s/ from 127\.0\.0\.1/ from the trusted peer/r
        =~ s/with SNI \S+/with another SNI/r;
}

sub sub_totals ($a, $b) {
    return { map { $_ => ($b->{$_} // 0) - ($a->{$_} // 0) } @COUNTERS };
}

# ---------------------------------------------------------------- a round

sub new_stats () {
    return { configurations => 0, pairs => 0, requests => 0, streams => 0,
        resumptions => 0, reused => 0, wrong => 0, skipped => 0 };
}

# Runs one configuration; adds to $stats and returns the wrong answers,
# each { kind, seed, what, detail }.
sub run_config ($cfg, $stats, %opt) {
    my @wrong;
    my $seed = $cfg->{seed};
    my %vh = map { ($_->{name} => $_) } $cfg->{vhosts}->@*;
    my $wrong = sub ($kind, $what, $detail = '') {
        push @wrong, { kind => $kind, seed => $seed, what => $what,
            detail => $detail };
    };
    my $s = eval {
        my $srv = MisdirectPredict::Server->_prepare(name => "predict-$seed",
            mpm => MisdirectTest::h2_mpm(),
            loglevel => 'warn ssl:info misdirect:trace1');
        $srv->{predict} = $cfg;
        $srv->start;
        $srv;
    };
    unless ($s) {
        $wrong->('httpd does not start', "seed $seed", $@);
        return @wrong;
    }
    $stats->{configurations}++;
    my ($doc, $fail) = dump_json($s, $s->conf_file);
    unless ($doc) {
        $wrong->('the dump fails', $fail);
        $s->stop;
        return @wrong;
    }
    # The same configuration without SSLStrictSNIVHostCheck: what a TLS 1.2
    # client that resumes a session made with SNI gets without sending one
    # (see the resumptions below).
    my $nostrict = $doc;
    if ($cfg->{features}{strict_global} || grep { $_->{strict} }
            $cfg->{vhosts}->@*) {
        my $file = $s->root . '/conf/nostrict.conf';
        open my $fh, '<:raw', $s->conf_file or die "$s->conf_file: $!\n";
        my $text = do { local $/; <$fh> };
        close $fh;
        $text =~ s/^\s*SSLStrictSNIVHostCheck on\n//mg;
        MisdirectTest::_write($file, $text);
        ($nostrict, $fail) = dump_json($s, $file);
        unless ($nostrict) {
            $wrong->('the dump fails without SSLStrictSNIVHostCheck', $fail);
            $s->stop;
            return @wrong;
        }
    }
    my $port = $s->tls_port;
    # Which listener each endpoint reaches: its own address, else *:port.
    my %addrs = map { ($_->{address} => $_) } $doc->{listeners}->@*;
    my %reach;
    for my $ep ($s->{endpoints}->@*) {
        my $l = $addrs{$ep} // $addrs{"*:$port"};
        if (!$l) {
            $wrong->('the dump has no listener for an address', $ep,
                'dump addresses: ' . join(', ', sort keys %addrs));
            next;
        }
        push $reach{ $l->{address} }->@*, $ep;
    }
    for my $a (sort keys %addrs) {
        $wrong->('the dump lists an address no endpoint reaches', $a)
            unless $reach{$a};
    }
    my $trusted_any = $cfg->{features}{trusted_global}
        || grep { grep { /TrustedProxy/ } $_->{conf}->@* } $cfg->{vhosts}->@*;
    my $describe = describe($cfg);

    # The address's default vhost: the handshake vhost of its no-SNI row.
    my %default;
    for my $l ($doc->{listeners}->@*) {
        my ($p) = grep { !defined $_->{sni} } $l->{pairs}->@*;
        $default{ $l->{address} } = $vh{ $p->{handshake_vhost} // '' } if $p;
    }
    # The vhost whose TLS context serves a pair's handshake: its handshake
    # vhost, unless that vhost has no TLS (an SNI that names an
    # `SSLEngine off` vhost): mod_ssl then keeps the context of the
    # address's default vhost, and with it that vhost's certificates,
    # client verification and TLS versions.
    my $context = sub ($addr, $p) {
        my $h = $vh{ $p->{handshake_vhost} // '' };
        return $h && $h->{tls} ? $h : $default{$addr};
    };
    # The client certificate.  The dump speaks of requests after a
    # successful handshake, and a handshake whose context says
    # `SSLVerifyClient require` fails for a client without a certificate
    # (TLS 1.3: the certificate_required alert, before any request).  So
    # every client of the oracle presents the harness's client
    # certificate (MisdirectTest's 'client', signed by the CA that every
    # vhost trusts) exactly where the vhost whose context serves the
    # handshake requires one, and nowhere else: a client with a
    # certificate would pass an `optional` handshake, and a stricter
    # request vhost, that the dump answers for a client without one.
    my $wants_cert = sub ($addr, $p) {
        my $c = $context->($addr, $p);
        return $c && ($c->{verify} // '') eq 'require' ? 1 : 0;
    };
    # Is the dump's 403 by mod_ssl for $p the client-verification one?
    # The other, SSLStrictSNIVHostCheck's, needs a request without SNI
    # and the check on globally, in the handshake's vhost or in the
    # request's; it comes first, before the module's check and before
    # verification.
    my $verify_403 = sub ($p) {
        return 1 if defined $p->{sni};
        my ($h, $r) = map { $vh{ $_ // '' } // {} }
            @$p{qw(handshake_vhost request_vhost)};
        return !($cfg->{features}{strict_global} || $h->{strict}
            || $r->{strict});
    };
    # What a client gets for $p (see expected() and for_client()).
    my $expect = sub ($p, $trusted, $key, %c) {
        return for_client(expected($p, $trusted, $key), $verify_403->($p),
            $vh{ $p->{request_vhost} // '' }, %c);
    };

    my $is_off = sub ($name) {
        my $v = $vh{ $name // '' } or return 0;
        return scalar grep { $_ eq 'Misdirect Off' } $v->{conf}->@*;
    };

    # Checks one answer against the pair; returns the wrong ones.
    my $judge = sub ($via, $p, $e, $res, $log, %x) {
        my $sni = $p->{sni};
        my $what = sprintf '%s: SNI %s, Host %s', $via, $sni // '(none)',
            $p->{host};
        my $r = real_answer($res->{status}, $log, $res->{reset});
        my $kv = kind_of($via);
        my @w;
        unless (same_answer($e, $r)) {
            my $answered = $res->{status} || defined $res->{reset};
            my $got = $answered ? show_answer($r)
                : "no answer ($res->{error})";
            push @w, ["$kv: predicted " . show_answer($e) . ", got "
                . ($answered ? show_answer($r) : 'no answer'),
                "$what: predicted "
                . show_answer($e) . ", got $got"
                . ($r->{sub} ? " [$r->{sub}]" : '')
                . ($res->{cert_type} ? " [cert $res->{cert_type}]" : '')
                . ($res->{version} ? " [$res->{version}]" : '')];
        }
        # The module's lines about this request.
        for my $line ($log =~ /^(.*MISDIRECT00[1-7]: .*)$/mg) {
            my ($no) = $line =~ /(MISDIRECT00\d)/;
            my $f = fields($line);
            my $hv = $f->{handshake_vhost};
            ($hv) = $line =~ /handshake_vhost="([^"]*)"/ unless defined $hv;
            if (defined $hv) {
                (my $name = $hv) =~ s/ \(.*\)$//;
                push @w, ["$kv: $no names another handshake vhost than "
                    . 'the dump',
                    "$what: $no handshake_vhost=\"$hv\", predicted "
                    . $p->{handshake_vhost}]
                    if $name ne $p->{handshake_vhost};
            }
            next if $no eq 'MISDIRECT004';
            my $want = $x{sni_sent} // $sni // '(none)';
            push @w, ["$kv: $no sni=\"" . ($f->{sni} // '?') . '" for '
                . (defined $want && $want ne '(none)' ? 'another SNI'
                    : 'no SNI'), "$what: $no sni=\"" . ($f->{sni} // '?')
                . "\", sent $want"]
                if ($f->{sni} // '') ne $want;
        }
        push @w, ["$kv: MISDIRECT007 (handler 421) for a pair",
            "$what: MISDIRECT007"] if $log =~ /MISDIRECT007/;
        # The vhost that served it.
        if ($res->{status} == 200 && $e->{status} == 200) {
            (my $body = $res->{body} // '') =~ s/\s+\z//;
            push @w, ["$kv: served by another vhost than the dump's "
                . 'request_vhost', "$what: served by $body, predicted "
                . $p->{request_vhost}] if $body ne $p->{request_vhost};
        }
        return map { { kind => $_->[0], what => $_->[1] } } @w;
    };
    # The counters must move as the answers seen say.
    my $real_delta = sub ($res, $log, $rvhost) {
        return counter_delta(real_answer($res->{status}, $log,
            $res->{reset}), $is_off->($rvhost));
    };
    my $add = sub ($pair_desc, @w) {
        for my $w (@w) {
            push @wrong, { %$w, seed => $seed, detail => $pair_desc };
        }
    };
    my $pair_desc = sub ($p) {
        my ($h, $r) = map { $vh{ $_ // '' } } @$p{qw(handshake_vhost
            request_vhost)};
        return ($h ? '    handshake vhost ' . describe_vhost($h) . "\n" : '')
            . ($r && $r != ($h // 0) ? '    request vhost '
                . describe_vhost($r) . "\n" : '');
    };

    my $totals = status_totals($s);
    my $check_counters = sub ($via, $what, $delta, $note = '') {
        my $now = status_totals($s);
        my $d = sub_totals($totals, $now);
        my @bad = grep { defined $delta->{$_} && $d->{$_} != $delta->{$_} }
            @COUNTERS;
        if (@bad) {
            # Counted at the end of the request: once more, a little later.
            sleep 0.1;
            $now = status_totals($s);
            $d = sub_totals($totals, $now);
            @bad = grep { defined $delta->{$_} && $d->{$_} != $delta->{$_} }
                @COUNTERS;
        }
        $totals = $now;
        return map { { kind => kind_of($via) . ": counter $_ moved by $d->{$_}, "
            . "expected $delta->{$_}" . ($_ eq 'mod_ssl_403' ? $note : ''),
            what => "$what: counter $_ "
            . "$d->{$_}, expected $delta->{$_}" } } @bad;
    };
    my $log_since = sub ($mark) { $s->error_log_since($mark) };
    # One HTTP/2 connection with SNI $sni (or none) to $ip, a stream per
    # pair, all of them in flight at once.
    my $h2_connection = sub ($addr, $ip, $src, $sni, $cv, @ps) {
        my $cert = $wants_cert->($addr, $ps[0]);
        $stats->{h2_connections}++;
        my $id = sprintf 'predict=%d-%d', $$, ++$seq;
        my $mark = $s->mark;
        my $res = h2(addr => $ip, port => $port, source => $src,
            sni => length $sni ? $sni : undef, cert => $cert,
            streams => [ map { { authority => $ps[$_]{host},
                path => "/?$id-$_" } } 0 .. $#ps ]);
        $stats->{streams} += @ps;
        my $via = 'HTTP/2' . ($ip eq '::1' ? ' [::1]' : " from $src")
            . ($cert ? ' with a client certificate' : '');
        if ($res->{error} && !$res->{streams}) {
            # A handshake that the dump says fails (no_answer
            # "handshake") brings no connection, as predicted.
            return unless grep { $_->{status}
                    || ($_->{no_answer} // '') ne 'handshake' }
                map { $expect->($_, $src eq '127.0.0.1', undef, h2 => 1,
                    ctx_level => $cv) } @ps;
            $wrong->("$via: connection fails",
                'SNI ' . (length $sni ? $sni : '(none)'),
                $res->{error});
            return;
        }
        my $n = grep { $_->{status} } $res->{streams}->@*;
        wait_for(sub { $s->access_log_since($mark) },
            qr/\Q$id\E-\d/, 5, $n) if $n;
        my $expect_lines = grep { $_->{status} != 200
            && !$is_off->($_->{request_vhost}) } @ps;
        wait_for(sub { $log_since->($mark) },
            qr/MISDIRECT00[167]: /, 2,
            $expect_lines) if $expect_lines;
        my $log = $log_since->($mark);
        my %delta = map { $_ => 0 } @COUNTERS;
        my $resets = 0;
        my @lines = split /\n/, $log;
        for my $k (0 .. $#ps) {
            my $p = $ps[$k];
            my $st = $res->{streams}[$k] // {};
            my $sid = $st->{id} // 0;
            # This stream's lines: the module's by stream="N";
            # mod_ssl's AH02032 by the host it names.
            # mod_ssl names the host as httpd normalised it.
            (my $h = $p->{host}) =~ s/\.$//;
            my $mine = join '', map { "$_\n" } grep {
                /MISDIRECT00[1-7]: / ? /stream="\Q$sid\E"/
                : /AH02032/ ? /hostname \Q$h\E provided via HTTP/i
                : /AH02033|AH10158|AH0225\d|AH0226\d/ } @lines;
            my $e = $expect->($p, $src eq '127.0.0.1', undef,
                h2 => 1, ctx_level => $cv);
            my $r = { status => $st->{status} // 0,
                reset => $st->{status} ? undef : $st->{reset},
                body => $st->{body}, error => ($st->{error}
                    // $res->{error} // '') . (defined $st->{reset}
                    ? " RST_STREAM $st->{reset}" : '') };
            $add->($pair_desc->($p), $judge->($via, $p, $e, $r,
                $mine));
            my $d = $real_delta->($r, $mine, $p->{request_vhost});
            $resets++ if !$r->{status} && defined $r->{reset}
                && $r->{reset} == $HTTP_1_1_REQUIRED;
            for (@COUNTERS) {
                $delta{$_} = defined $delta{$_} && defined $d->{$_}
                    ? $delta{$_} + $d->{$_} : undef;
            }
        }
        $add->('', $check_counters->($via, 'SNI '
            . (length $sni ? $sni : '(none)') . ', '
            . @ps . ' streams', \%delta, $resets ? ' (a connection '
            . 'with streams reset HTTP_1_1_REQUIRED: no 403 reached '
            . 'the client)' : ''));
    };

    my $t_phase = time;
    for my $addr (sort keys %reach) {
        my $l = $addrs{$addr};
        my @pairs = $l->{pairs}->@*;
        $wrong->('the dump is not complete', $addr) unless $l->{complete};
        for my $ep ($reach{$addr}->@*) {
            my ($ip) = $ep =~ /^\[?([^\]]+?)\]?:\d+$/;
            my @sources = $ip eq '::1' ? ('::1')
                : ('127.0.0.2', $trusted_any ? '127.0.0.1' : ());
            # ------------------------------------------------ HTTP/1.1
            for my $p (@pairs) {
                $stats->{pairs}++;
                my $hv = $context->($addr, $p);
                my $cert = $wants_cert->($addr, $p);
                my @keys = (undef, $hv && $hv->{certs}
                    && $hv->{certs}->@* > 1 ? ('RSA', 'EC') : ());
                for my $src (@sources) {
                    for my $key (@keys) {
                        next if $key && $src eq '127.0.0.1';
                        # The client certificate is ECDSA: an RSA-only
                        # client cannot sign with it.
                        if ($key && $key eq 'RSA' && $cert) {
                            $stats->{skipped}++;
                            next;
                        }
                        my $trusted = $src eq '127.0.0.1';
                        my $e = $expect->($p, $trusted, $key);
                        my $via = 'HTTP/1.1' . ($ip eq '::1' ? ' [::1]'
                            : " from $src") . ($key ? " $key-only" : '')
                            . ($cert ? ' with a client certificate' : '');
                        my $id = sprintf 'predict=%d-%d', $$, ++$seq;
                        my $mark = $s->mark;
                        my $t = time;
                        my $res = h1(addr => $ip, port => $port,
                            source => $src, sni => $p->{sni},
                            host => $p->{host}, path => "/?$id",
                            key => $key, cert => $cert);
                        $stats->{requests}++;
                        $stats->{t_send} += time - $t;
                        $t = time;
                        if ($res->{status}) {
                            wait_for(sub { $s->access_log_since($mark) },
                                qr/\Q$id\E/, 5);
                            wait_for(sub { $log_since->($mark) },
                                qr/MISDIRECT00[167]: /, 1)
                                if $res->{status} != 200
                                    && !$is_off->($p->{request_vhost});
                        }
                        else {
                            sleep 0.05;
                        }
                        $stats->{t_wait} += time - $t;
                        my $log = $log_since->($mark);
                        $add->($pair_desc->($p),
                            $judge->($via, $p, $e, $res, $log),
                            $check_counters->($via, sprintf('SNI %s, Host %s',
                                $p->{sni} // '(none)', $p->{host}),
                                $real_delta->($res, $log,
                                    $p->{request_vhost})));
                    }
                }
            }
            $stats->{t_h1} += time - $t_phase;
            $t_phase = time;
            # ------------------------------------------------ HTTP/2
            # One connection per SNI, a stream per host, all in flight at
            # once; except the streams whose request vhost verifies clients
            # otherwise than the handshake's context, each on a connection
            # of its own.  mod_ssl's access check sets the TLS connection's
            # verify mode to the request vhost's (SSL_set_verify, kept
            # after the request, and kept even when it refuses it), and the
            # next request compares its vhost's mode with that one, not
            # with the handshake's: on a shared connection a stream to a
            # vhost without SSLVerifyClient lowers the mode, and a later
            # stream to the handshake's own `optional` vhost needs a
            # certificate that HTTP/2 cannot ask for (reset), in whatever
            # order the server happens to run them.  The dump answers a
            # request on a connection of its own; streams whose vhost
            # verifies as the context does (or has no TLS) leave the mode
            # as the handshake set it and can share one.
            my %by_sni;
            push $by_sni{ $_->{sni} // '' }->@*, $_ for @pairs;
            my $src = $ip eq '::1' ? '::1' : '127.0.0.2';
            for my $sni (sort keys %by_sni) {
                my @ps = $by_sni{$sni}->@*;
                if ($sni =~ /^[\d.]+$|:/) {
                    # Python's ssl sends no SNI for an IP literal (RFC
                    # 6066); a trailing dot it sends as written.
                    $stats->{skipped} += @ps;
                    next;
                }
                my $cv = verify_level($context->($addr, $ps[0]));
                my (@shared, @alone);
                for my $p (@ps) {
                    my $r = $vh{ $p->{request_vhost} // '' };
                    if (!$r || !$r->{tls} || verify_level($r) == $cv) {
                        push @shared, $p;
                    }
                    else {
                        push @alone, [$p];
                    }
                }
                for my $conn ((@shared ? \@shared : ()), @alone) {
                    $h2_connection->($addr, $ip, $src, $sni, $cv, @$conn);
                }
            }
        }
    }
    $stats->{t_h2} += time - $t_phase if %reach;
    $t_phase = time;
    # ---------------------------------------------------- resumption
    # A TLS 1.2 and a TLS 1.3 session of each TLS vhost on 127.0.0.1, made
    # with its ServerName as SNI, then resumed without SNI and with
    # another vhost's name, each time for Host that ServerName.  These
    # clients offer that one version only.  What each gets is derived from
    # the dump's pair for (the SNI sent in this handshake, the host):
    #
    # - The handshake vhost is that pair's: mod_ssl picks it from this
    #   ClientHello.  The module's checks and the SNI on its lines are
    #   that pair's too: the module judges what the client sent now
    #   (`sni="(none)"` when it sent none).
    # - mod_ssl's own checks of the request read OpenSSL's
    #   SSL_get_servername, which on a resumed TLS 1.2 session is the
    #   SNI of the handshake that made the session, whatever this one
    #   sent (on TLS 1.3, this handshake's).  So where a TLS 1.2 session
    #   made with SNI is resumed without one, SSLStrictSNIVHostCheck does
    #   not apply and its 403 does not happen: the answer is the dump's
    #   for (no SNI, host) in the same configuration without
    #   SSLStrictSNIVHostCheck.  Nothing else of mod_ssl's depends on
    #   that name: SSLVHostSNIPolicy compares the handshake's vhost and
    #   the request's, with SNI and without.  (A session resumed with
    #   another name of its own vhost changes nothing either; one resumed
    #   under another vhost, whose session ID context differs, is not
    #   resumed: a full handshake.)
    # - A TLS 1.2 client is asked for a client certificate by
    #   renegotiation (for_client): where the request vhost says
    #   `optional`, the dump's client-verification 403 is served.
    # - A TLS 1.3 client gets the dump's answer.
    # The client certificate is sent as for the other clients (where the
    # context of the handshake requires one), in the session and later.
    my $l127 = $addrs{"127.0.0.1:$port"} // $addrs{"*:$port"};
    $l127 = undef unless $l127 && $reach{ $l127->{address} };
    my (%pair, %pair_ns);
    if ($l127) {
        $pair{ ($_->{sni} // '') . "|$_->{host}" } = $_
            for $l127->{pairs}->@*;
        my ($ns) = grep { $_->{address} eq $l127->{address} }
            $nostrict->{listeners}->@*;
        $pair_ns{ ($_->{sni} // '') . "|$_->{host}" } = $_
            for ($ns // { pairs => [] })->{pairs}->@*;
    }
    my @tls_names = !$l127 ? () : map { $_->{name} } grep { $_->{tls}
        && grep { /^127|^\*/ } $_->{addr}->@* } $cfg->{vhosts}->@*;
    for my $name (@tls_names) {
        my @others = grep { $_ ne $name } @tls_names or next;
        my $other = pick(@others);
        my $host = $name;
        for my $version (qw(tls1_2 tls1_3)) {
            my $sess = $s->root . "/run/sess-$version";
            unlink $sess;
            my @steps = ([$name, 'made'], [undef, 'resumed without SNI'],
                [$other, "resumed with SNI $other"]);
            for my $step (@steps) {
                my ($sni, $how) = @$step;
                my $p = $pair{ ($sni // '') . "|$host" };
                unless ($p) {
                    $stats->{skipped}++;
                    next;
                }
                my $cert = $wants_cert->($l127->{address}, $p);
                my $id = sprintf 'predict=%d-%d', $$, ++$seq;
                my $mark = $s->mark;
                my ($status, $body, $reused) = s_client(port => $port,
                    version => $version, sni => $sni, host => $host,
                    path => "/?$id", cert => $cert,
                    $how eq 'made' ? (sess_out => $sess)
                        : (sess_in => $sess));
                if ($how eq 'made') {
                    # A version that the handshake refuses: nothing to
                    # resume.
                    unless ($status && -s $sess) {
                        $check_counters->('', '', {});    # a new baseline
                        last;
                    }
                }
                else {
                    # Not resumed and no answer: a client of this version
                    # alone may be refused under this SNI anyway (its
                    # SSLProtocol); the dump speaks of clients that offer
                    # both.
                    if (!$status && !$reused && !(s_client(port => $port,
                            version => $version, sni => $sni, host => $host,
                            path => "/?$id-fresh", cert => $cert))[0]) {
                        $stats->{skipped}++;
                        $check_counters->('', '', {});
                        next;
                    }
                    $stats->{resumptions}++;
                    $stats->{reused} += $reused;
                }
                # mod_ssl sees the session's SNI ($name) instead of none.
                # (Without SSLStrictSNIVHostCheck, a 403 by mod_ssl is
                # the client-verification one.)
                my $seen = $reused && $version eq 'tls1_2' && !defined $sni;
                my $ps = $seen ? $pair_ns{"|$host"} // $p : $p;
                my $e = for_client(expected($ps, $trusted_any, undef),
                    $seen || $verify_403->($ps),
                    $vh{ $p->{request_vhost} // '' },
                    tls12 => $version eq 'tls1_2');
                if ($status) {
                    wait_for(sub { $s->access_log_since($mark) },
                        qr/\Q$id\E/, 5);
                    wait_for(sub { $log_since->($mark) },
                    qr/MISDIRECT00[167]: /, 1)
                        if $status != 200 && !$is_off->($p->{request_vhost});
                }
                my $log = $log_since->($mark);
                my $via = "$version session $how"
                    . ($how eq 'made' ? '' : $reused ? ' (reused)'
                        : ' (full handshake)')
                    . ($cert ? ' with a client certificate' : '');
                my $res = { status => $status, body => $body,
                    error => 's_client' };
                $add->("    session of $name\n" . $pair_desc->($p),
                    $judge->($via, $p, $e, $res, $log),
                    $check_counters->($via, 'SNI ' . ($sni // '(none)')
                        . ", Host $host", $real_delta->($res, $log,
                            $p->{request_vhost})));
            }
        }
    }
    $stats->{t_resume} += time - $t_phase;
    # ---------------------------------------------------- the server
    my $all = $s->error_log_since;
    $wrong->('a child crashed', 'error_log', $1)
        if $all =~ /^(.*(?:exit signal|AH00052).*)$/m;
    $s->stop;
    $_->{config} = $describe for @wrong;
    return @wrong;
}

# `apache2 -t -D DUMP_MISDIRECT_JSON` of a configuration file: (the
# document) or (undef, why not).
sub dump_json ($s, $file) {
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT_JSON', '-d', $s->root, '-f', $file);
    my $doc = !$rc && eval { JSON::PP->new->decode($out) };
    return $doc ? ($doc) : (undef, "exit $rc\n$err$out");
}

# What random configurations log at warn or above by design, whatever the
# seed, for the sweep of each server's error_log (t/lib/MisdirectTest.pm):
# the module's lines and its lint; mod_ssl's 421s, its certificates that
# do not name their vhost, its 403s after a post-handshake authentication
# or a renegotiation that the client cannot answer, and a client
# certificate refused where SNI chose an SSLEngine off vhost, whose verify
# depth mod_ssl leaves unset.  t/38 and check/predict.pl declare it.
sub expect_random_logs () {
    MisdirectTest->expect_log(qw(MISDIRECT001 MISDIRECT002 MISDIRECT006
            MISDIRECT010 MISDIRECT011 MISDIRECT012 MISDIRECT015
            AH02032 AH01909 AH10158 AH02261),
        qr/^AH02040: Certificate Verification: Certificate Chain too long /,
        qr/^SSL Library Error: error:0A000117:/,
        qr/^SSL Library Error: error:0A0000C7:/);
}

# Rounds from $seed on; prints the seed of each and the summary; returns
# (stats, wrong answers).
sub run_rounds (%opt) {
    my $seed = $opt{seed};
    my $say = $opt{say} // sub ($m) { print $m };
    my $stats = new_stats();
    my @wrong;
    make_pki();
    for my $round (1 .. $opt{rounds}) {
        my $t0 = time;
        my $cfg = generate($seed, $opt{vhosts});
        my @w = eval { run_config($cfg, $stats) };
        push @w, { kind => 'the harness died', seed => $seed, what => $@,
            config => describe($cfg) } if $@;
        $stats->{wrong} += @w;
        push @wrong, @w;
        $say->(sprintf "round %d: MISDIRECT_PREDICT_SEED=%u: %d wrong "
            . "(%.1f s)\n", $round, $seed, scalar @w, time - $t0);
        $say->(describe($cfg)) if $opt{verbose};
        $seed = next_seed($seed);
    }
    h2_stop();
    cleanup();
    return ($stats, \@wrong);
}

# The wrong answers grouped by kind: how many, and the first example of
# each with the seed that replays it.
sub report (@wrong) {
    my (%n, %first, @order);
    for my $w (@wrong) {
        push @order, $w->{kind} unless $n{ $w->{kind} }++;
        $first{ $w->{kind} } //= $w;
    }
    return join '', map {
        my $w = $first{$_};
        "* $_: $n{$_} (first: MISDIRECT_PREDICT_SEED=$w->{seed})\n"
            . "    $w->{what}\n" . ($w->{detail} // '')
            . ($w->{detail} && $w->{detail} !~ /\n\z/ ? "\n" : '')
    } @order;
}

sub summary ($stats) {
    return sprintf "configurations: %d, pairs: %d (HTTP/1.1 requests: %d), "
        . "streams: %d (HTTP/2 connections: %d), resumptions: %d (%d "
        . "resumed), skipped: %d, wrong: %d\n", map { $_ // 0 }
        @$stats{qw(configurations pairs requests streams h2_connections
        resumptions reused skipped wrong)};
}

sub timing ($stats) {
    return sprintf "HTTP/1.1 %.0f s (send %.0f s, wait %.0f s), HTTP/2 %.0f "
        . "s, resumptions %.0f s\n",
        map { $_ // 0 } @$stats{qw(t_h1 t_send t_wait t_h2 t_resume)};
}

1;
