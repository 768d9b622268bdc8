# What docs/proxy.md says each SSLVHostSNIPolicy lets through, and gives
# up, behind a reverse proxy that sends no SNI; every claim there is one
# subtest here, against the real mod_ssl:
#
#   - the policy is server-wide: in a <VirtualHost> it fails configtest;
#   - under the default secure, mod_ssl refuses the proxy's request for a
#     vhost with another certificate, MisdirectTrustedProxy or not;
#   - authonly serves it, and without MisdirectPolicy cert-mismatch
#     reject every other client is served too (reported only);
#   - authonly still refuses vhosts whose client-certificate settings
#     differ, for the proxy too;
#   - authonly no longer compares protocols: a TLS 1.2 handshake reaches a
#     TLS 1.3-only vhost that shares its certificate, unless
#     sni-host-mismatch rejects;
#   - insecure lets a client certificate that one vhost accepts into a
#     vhost that trusts another CA (the bypass CVE-2025-23048 is about);
#     the insecure recipe of docs/proxy.md, run as written there, refuses
#     every client but the proxy.
use v5.36;
use Test::More;
use File::Temp ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase qw(fields raw_tls);

my $pki = MisdirectTest::pki();

sub slurp ($path) {
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# The one indented code block of docs/proxy.md that matches $re, without
# its indentation.
sub proxy_block ($re) {
    my @blocks = grep { $_ =~ $re } map { s/^    //mgr }
        slurp('docs/proxy.md') =~ /((?:^    .*\n|^\n(?=    ))+)/mg;
    is scalar(@blocks), 1, "docs/proxy.md has one block matching $re"
        or return '';
    return $blocks[0];
}

sub certs ($name) {
    return "SSLCertificateFile $pki/$name.crt\n"
        . "SSLCertificateKeyFile $pki/$name.key";
}

# default.test first (the handshake's vhost without SNI) and alpha.test,
# each with its own certificate; $alpha_more is added to alpha.test.
sub two_sites ($alpha_more = '') {
    return [ { name => 'default.test', conf => certs('default') },
             { name => 'alpha.test',
               conf => certs('alpha') . ($alpha_more ? "\n$alpha_more" : '') } ];
}

# The misdirect lines at warn or error since $mark.
sub lines_since ($s, $mark) {
    return grep { /\[misdirect:(?:error|warn)\]/ }
        split /\n/, $s->error_log_since($mark);
}

# Every line at warn or worse in the server's error_log must match one of
# @expected.
sub quiet_log ($s, @expected) {
    my @bad = grep {
        my $l = $_;
        /:(?:warn|error|crit|alert|emerg)\]/ && !/AH10034: /
            && !grep { $l =~ $_ } @expected
    } split /\n/, $s->error_log_since;
    is scalar(@bad), 0, 'error_log: nothing unexpected at warn or worse'
        or diag join "\n", @bad;
}

# One request without SNI for alpha.test, from $from (127.0.0.1 is the
# proxy where one is trusted); returns the response and the log since.
sub no_sni ($s, $from = undef) {
    my $mark = $s->mark;
    my ($r) = $s->https(sni => undef, (defined $from ? (from => $from) : ()),
        requests => [{ host => 'alpha.test' }]);
    return ($r, $s->error_log_since($mark), [lines_since($s, $mark)]);
}

subtest 'SSLVHostSNIPolicy is server config only' => sub {
    my ($rc, $out) = MisdirectTest::configtest(name => 'proxy-context',
        vhost => { 'tls:alpha.test' => 'SSLVHostSNIPolicy authonly' });
    isnt $rc, 0, 'in a <VirtualHost> it fails configtest';
    like $out, qr/SSLVHostSNIPolicy cannot occur within <VirtualHost>/,
        '... with mod_ssl\'s message';
};

subtest 'secure (the default): MisdirectTrustedProxy alone is not enough' => sub {
    my $s = MisdirectTest->new(name => 'proxy-secure',
        tls_vhosts => two_sites(), global => 'MisdirectTrustedProxy 127.0.0.1',
        expect_log => [qw(AH02032 MISDIRECT006 MISDIRECT011)]);
    my ($r, $log) = no_sni($s);
    is $r->{status}, 421, 'the trusted proxy, no SNI, another certificate: 421';
    like $log, qr/\[ssl:error\] .*AH02032: Hostname default\.test \(default host as no SNI was provided\) and hostname alpha\.test/,
        '... from mod_ssl (AH02032)';
    like $log, qr/MISDIRECT006: .*by="mod_ssl"/, '... which the module explains';
    quiet_log($s, qr/AH02032: /, qr/MISDIRECT006: /, qr/MISDIRECT01[15]: /);
};

subtest 'authonly: the proxy is served; without cert-mismatch reject, '
    . 'everyone is' => sub {
    my $s = MisdirectTest->new(name => 'proxy-authonly',
        tls_vhosts => two_sites(), global => "SSLVHostSNIPolicy authonly\n"
            . 'MisdirectTrustedProxy 127.0.0.1',
        expect_log => ['MISDIRECT002']);
    like $s->error_log_since, qr/\[misdirect:notice\] .*MISDIRECT014: SSLVHostSNIPolicy authonly: /,
        'startup: MISDIRECT014 says cert-mismatch now defaults to report';
    my ($r, $log, $lines) = no_sni($s);
    is $r->{status}, 200, 'the trusted proxy, no SNI: served';
    is $r->{body}, "alpha.test\n", '... by alpha.test';
    is scalar(@$lines), 0, '... with no line at warn or error';
    unlike $log, qr/AH02032/, '... and no refusal from mod_ssl';

    ($r, $log, $lines) = no_sni($s, '127.0.0.2');
    is $r->{status}, 200, 'another client, the same request: served too';
    is scalar(@$lines), 1, '... and reported in one line';
    like $lines->[0] // '', qr/\[misdirect:warn\] .*reason="cert-mismatch"/,
        '... at warn, as cert-mismatch';
    quiet_log($s, qr/MISDIRECT002: .*reason="cert-mismatch"/);
};

subtest 'authonly: client-certificate settings are still compared' => sub {
    my $s = MisdirectTest->new(name => 'proxy-authonly-verify',
        tls_vhosts => two_sites("SSLVerifyClient require\n"
            . "SSLCACertificateFile $pki/ca.crt"),
        global => "SSLVHostSNIPolicy authonly\nMisdirectTrustedProxy 127.0.0.1\n"
            . 'MisdirectPolicy cert-mismatch reject',
        expect_log => [qw(AH02032 MISDIRECT006 MISDIRECT011)]);
    my ($r, $log) = no_sni($s);
    is $r->{status}, 421, 'the trusted proxy, no SNI, a vhost that asks '
        . 'for client certificates: 421';
    like $log, qr/AH02032: .* for policy 'authonly'/, '... from mod_ssl';
    quiet_log($s, qr/AH02032: /, qr/MISDIRECT006: /, qr/MISDIRECT01[15]: /);
};

subtest 'authonly: protocols are not compared' => sub {
    # One certificate for both; shared2.test speaks TLS 1.3 only.
    my $cert = certs('shared');
    my @vhosts = ({ name => 'shared1.test', conf => $cert },
        { name => 'shared2.test', conf => "$cert\nSSLProtocol -all +TLSv1.3" });
    my $req = "GET / HTTP/1.1\r\nHost: shared2.test\r\nConnection: close\r\n\r\n";
    for my $case (
        ['secure', '', 421,
         [qw(AH02032 MISDIRECT006 MISDIRECT011 MISDIRECT015)]],
        ['authonly', '', 200, []],
        ['authonly', 'MisdirectPolicy sni-host-mismatch reject', 421,
         ['MISDIRECT001']]) {
        my ($policy, $more, $want, $expect) = @$case;
        my $s = MisdirectTest->new(name => "proxy-protocol-$policy",
            tls_vhosts => \@vhosts,
            global => "SSLVHostSNIPolicy $policy\n$more",
            expect_log => $expect);
        my ($direct) = raw_tls($s, sni => 'shared2.test', request => $req,
            extra => ['-tls1_2']);
        is $direct, 0, "$policy: shared2.test refuses a TLS 1.2 handshake";
        my $mark = $s->mark;
        my ($status, $raw) = raw_tls($s, sni => 'shared1.test',
            request => $req, extra => ['-tls1_2']);
        is $status, $want, "$policy" . ($more ? " + $more" : '')
            . ": over TLS 1.2 for shared1.test, Host shared2.test: $want";
        like $raw, qr/^shared2\.test$/m, '... with shared2.test\'s page'
            if $want == 200;
        like join("\n", lines_since($s, $mark)),
            qr/MISDIRECT001: .*reason="sni-host-mismatch"/,
            '... from the module, as sni-host-mismatch' if $more;
        quiet_log($s, qr/AH02032: /, qr/MISDIRECT00[16]: /,
            qr/MISDIRECT01[15]: /);
    }
};

subtest 'insecure: a client certificate crosses to a vhost of another CA' => sub {
    # A second CA, which no client certificate comes from.
    my $dir = File::Temp->newdir(DIR => MisdirectTest::tmp_root());
    my @cmd = ('/usr/bin/openssl', qw(req -x509 -new -nodes -newkey ec
        -pkeyopt ec_paramgen_curve:P-256 -days 2 -subj /CN=other-ca),
        -addext => 'basicConstraints=critical,CA:TRUE',
        -keyout => "$dir/other-ca.key", -out => "$dir/other-ca.crt");
    system('sh', '-c', 'exec "$@" 2>/dev/null', 'sh', @cmd) == 0
        or die "openssl req failed ($?)\n";
    my $cert = certs('shared');
    my @vhosts = (
        { name => 'shared1.test', conf => "$cert\nSSLVerifyClient require\n"
            . "SSLCACertificateFile $pki/ca.crt" },
        { name => 'shared2.test', conf => "$cert\nSSLVerifyClient require\n"
            . "SSLCACertificateFile $dir/other-ca.crt" },
    );
    my %cross = (sni => 'shared1.test', cert => 'client',
        requests => [{ host => 'shared2.test' }]);

    my $s = MisdirectTest->new(name => 'proxy-insecure-cve',
        tls_vhosts => \@vhosts, global => 'SSLVHostSNIPolicy insecure');
    my ($r) = $s->https(%cross);
    is $r->{status}, 200, 'insecure: a certificate of the first CA, '
        . 'handshake for shared1.test, Host shared2.test: served';
    is $r->{body}, "shared2.test\n",
        '... shared2.test\'s page, which trusts only the other CA';
    quiet_log($s);
    $s->stop;

    $s = MisdirectTest->new(name => 'proxy-authonly-cve',
        tls_vhosts => \@vhosts, global => 'SSLVHostSNIPolicy authonly',
        expect_log => [qw(AH02032 MISDIRECT006 MISDIRECT011 MISDIRECT015)]);
    ($r) = $s->https(%cross);
    is $r->{status}, 421, 'authonly: the same request gets 421 from mod_ssl';
    quiet_log($s, qr/AH02032: /, qr/MISDIRECT006: /, qr/MISDIRECT01[15]: /);
    $s->stop;

    my $recipe = proxy_block(qr/^SSLVHostSNIPolicy insecure$/m) or return;
    $s = MisdirectTest->new(name => 'proxy-insecure-recipe',
        tls_vhosts => \@vhosts, global => $recipe,
        expect_log => ['MISDIRECT001']);
    my $mark = $s->mark;
    ($r) = $s->https(%cross, from => '127.0.0.2');
    is $r->{status}, 421, 'the insecure recipe of docs/proxy.md: another '
        . 'client gets 421';
    my @lines = lines_since($s, $mark);
    is scalar(@lines), 1, '... and one line';
    my $f = fields($lines[0] // '');
    like $lines[0] // '', qr/MISDIRECT001: /, '... the module\'s rejection';
    is $f->{reason}, 'sni-host-mismatch', '... as sni-host-mismatch';
    like $f->{client} // '', qr/^127\.0\.0\.2:/, '... naming the client';
    ($r) = $s->https(%cross);
    is $r->{status}, 200, 'the trusted proxy (127.0.0.1) is served';
    quiet_log($s, qr/MISDIRECT001: .*client="127\.0\.0\.2:/);
    # Before the other CA's file goes: stopping rereads the configuration.
    $s->stop;
};

done_testing();
