# The glue between the pure decisions and httpd, each case the outcome a
# one-line bug there would change (check/mutants.txt names them): which
# names make a host known, what a partial wildcard certificate covers, how
# a vhost's trusted ranges merge with the global ones, what
# MISDIRECT_CHECKS lists when something was forgiven, where sni-missing
# applies at all, and who is blamed for a handler's 421 on a request with
# an allowed finding.
use v5.36;
use Test::More;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $OPENSSL = '/usr/bin/openssl';
my $pki = MisdirectTest::pki();

# The fields of a probe's MISDIRECT<no> line ({} when there is none).
sub line_fields ($r, $no) {
    my ($line) = grep { /MISDIRECT$no/ } split /\n/, $r->{error_log};
    return fields($line // '');
}

subtest 'a host matched by a pattern or the address is known' => sub {
    # core selects R for these hosts by a wildcard ServerAlias or by the
    # name in <VirtualHost>; neither is unknown-host, which rejects here.
    my $s = MisdirectTest->new(name => 'glue-names',
        expect_log => ['MISDIRECT001'],
        global => 'MisdirectPolicy unknown-host reject');
    expect_case('wildcard ServerAlias *.b.wild.test', probe($s,
        sni => 'x.b.wild.test', host => 'x.b.wild.test'), status => 200,
        reason => undef, checks => undef, vhost => 'b.wild.test',
        logno => undef);
    expect_case('the <VirtualHost> address as host', probe($s,
        via => 'plain', host => '127.0.0.1'), status => 200,
        reason => undef, checks => undef, vhost => 'default.test',
        logno => undef);
    expect_case('the address with the connection\'s port', probe($s,
        via => 'plain', host => '127.0.0.1:' . $s->plain_port),
        status => 200, reason => undef, vhost => 'default.test',
        logno => undef);
    expect_case('a name of none: unknown-host rejects', probe($s,
        via => 'plain', host => 'nosuch.test'), status => 421,
        reason => 'unknown-host', checks => 'unknown-host', logno => '001');
};

subtest 'a partial wildcard covers no name (RFC 6125)' => sub {
    # One certificate, for p*.part.test only, shared by two vhosts, so
    # that mod_ssl serves the cross request and the module judges it.
    my $dir = "$pki/glue-$$";
    mkdir $dir or die "mkdir $dir: $!";
    open my $ext, '>', "$dir/part.ext" or die "$dir/part.ext: $!";
    print $ext "basicConstraints=CA:FALSE\nsubjectAltName=DNS:p*.part.test\n"
        . "extendedKeyUsage=serverAuth\n";
    close $ext;
    my @out = map { qx{$OPENSSL $_ 2>&1} . ($? ? "\nFAILED: $_" : '') } (
        "req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256"
            . " -keyout $dir/part.key -out $dir/part.csr -subj /CN=part",
        "x509 -req -in $dir/part.csr -CA $pki/ca.crt -CAkey $pki/ca.key"
            . " -CAcreateserial -days 2 -extfile $dir/part.ext"
            . " -out $dir/part.crt");
    ok !grep({ /FAILED/ } @out), 'certificate for DNS:p*.part.test made'
        or diag @out;
    chmod 0644, glob "$dir/*";
    my $part = "SSLCertificateFile $dir/part.crt\n"
        . "SSLCertificateKeyFile $dir/part.key";
    my $s = MisdirectTest->new(name => 'glue-partial', tls_vhosts => [
        { name => 'default.test', conf => "SSLCertificateFile $pki/default.crt\n"
            . "SSLCertificateKeyFile $pki/default.key" },
        { name => 'one.part.test', conf => $part },
        { name => 'px.part.test', conf => $part },
    ],
        # p* covers neither name (mod_ssl warns, the lint too), and the
        # default vhost's certificate is another.
        expect_log => ['MISDIRECT001', 'MISDIRECT011',
            qr/^MISDIRECT010: Lint: virtual host (?:one|px)\.part\.test /,
            qr/^AH01909: (?:one|px)\.part\.test:/]);
    my $r = probe($s, sni => 'one.part.test', host => 'px.part.test');
    expect_case('SNI one.part.test, host px.part.test: only p* would cover '
        . 'it', $r, status => 421, reason => 'cert-mismatch',
        checks => 'cert-mismatch', logno => '001');
    is line_fields($r, '001')->{ssl_verdict}, 'serve',
        'mod_ssl serves it (same certificate files): the module decided';
    like $s->error_log_since, qr/MISDIRECT010: Lint: virtual host px\.part\.test .*its ServerName px\.part\.test is not covered/,
        'the lint agrees: p* does not cover px.part.test';
    system 'rm', '-rf', $dir;
};

subtest 'a vhost\'s MisdirectTrustedProxy adds to the global list' => sub {
    my $s = MisdirectTest->new(name => 'glue-trusted',
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy sni-missing reject\n"
            . "MisdirectPolicy cert-mismatch reject\n"
            . 'MisdirectTrustedProxy 127.0.0.1',
        vhost => { 'tls:alpha.test' => 'MisdirectTrustedProxy 192.0.2.0/24' });
    expect_case('R=alpha, peer in the global list only: trusted', probe($s,
        sni => undef, host => 'alpha.test'), status => 200, reason => undef,
        vhost => 'alpha.test', logno => undef);
    expect_case('R=beta, no list of its own: trusted too', probe($s,
        sni => undef, host => 'beta.test'), status => 200, reason => undef,
        vhost => 'beta.test', logno => undef);
};

subtest 'MISDIRECT_CHECKS lists what fired, not what was forgiven' => sub {
    my $s = MisdirectTest->new(name => 'glue-forgiven',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy unknown-host reject\n"
            . 'MisdirectTrustedProxy 127.0.0.1');
    # No SNI (sni-missing, forgiven: trusted peer) and an unknown host.
    my $r = probe($s, sni => undef, host => 'nosuch.test');
    expect_case('trusted peer, no SNI, unknown host', $r, status => 421,
        reason => 'unknown-host', action => 'reject',
        checks => 'unknown-host', logno => '001');
    my $f = line_fields($r, '001');
    is $f->{checks}, 'unknown-host:reject', 'the line\'s checks agree';
    is $f->{forgiven}, 'sni-missing', 'and name what was forgiven';
};

subtest 'sni-missing needs name-based vhosts on the address' => sub {
    # 127.0.0.2 has one TLS vhost of its own: a client without SNI reaches
    # the only vhost there is, so nothing is missing.
    my $root = MisdirectTest::tmp_root() . "/glue-ipdocs-$$";
    mkdir $root;
    chmod 0755, $root;
    open my $fh, '>', "$root/index.html" or die "$root/index.html: $!";
    print $fh "ip.test\n";
    close $fh;
    chmod 0644, "$root/index.html";
    my $s = MisdirectTest->new(name => 'glue-ip',
        # default.crt does not name ip.test.
        expect_log => ['MISDIRECT001',
            qr/^MISDIRECT010: Lint: virtual host ip\.test /,
            qr/^AH01909: ip\.test:/],
        global => "MisdirectPolicy sni-missing reject\n"
            . "Listen 127.0.0.2:\@TLS_PORT\@",
        extra_vhosts => <<~"EOF");
            <VirtualHost 127.0.0.2:\@TLS_PORT\@>
                ServerName ip.test
                DocumentRoot "$root"
                <Directory "$root">
                    Require all granted
                </Directory>
                SSLEngine on
                SSLCertificateFile $pki/default.crt
                SSLCertificateKeyFile $pki/default.key
            </VirtualHost>
            EOF
    my $mark = $s->mark;
    my $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.2',
        PeerPort => $s->tls_port, SSL_hostname => '',
        SSL_verify_mode => SSL_VERIFY_NONE, SSL_alpn_protocols => ['http/1.1'],
        Timeout => 10) or die "TLS to 127.0.0.2: $IO::Socket::SSL::SSL_ERROR";
    print $sock "GET /?glue-ip HTTP/1.1\r\nHost: ip.test\r\n"
        . "Connection: close\r\n\r\n";
    my $raw = do { local $/; <$sock> } // '';
    close $sock;
    like $raw, qr{^HTTP/1\.1 200 }, 'IP-based address, no SNI: 200';
    like $raw, qr/\r\n\r\nip\.test\n\z/, 'from its only vhost';
    my $acc = $s->wait_access_log(qr/glue-ip/, $mark) // '';
    like $acc, qr/^ip\.test 200 - - - /, 'no check fired';
    expect_case('name-based address, no SNI: sni-missing rejects',
        probe($s, sni => undef, host => 'default.test'), status => 421,
        reason => 'sni-missing', checks => 'sni-missing', logno => '001');
    system 'rm', '-rf', $root;
};

subtest 'a bare SSLProtocol version replaces the line\'s earlier ones' => sub {
    # mod_ssl reads "all TLSv1.2" as TLSv1.2 alone (and warns, AH02532):
    # the two vhosts have the same protocols, and it serves across them.
    my $shared = "SSLCertificateFile $pki/shared.crt\n"
        . "SSLCertificateKeyFile $pki/shared.key";
    my $s = MisdirectTest->new(name => 'glue-protocol',
        expect_log => [qw(MISDIRECT002 MISDIRECT011)],
        global => 'MisdirectPolicy sni-host-mismatch report',
        tls_vhosts => [
            { name => 'default.test', conf => "SSLCertificateFile "
                . "$pki/default.crt\nSSLCertificateKeyFile $pki/default.key" },
            { name => 'shared1.test', conf => "$shared\nSSLProtocol all TLSv1.2" },
            { name => 'shared2.test', conf => "$shared\nSSLProtocol TLSv1.2" },
        ]);
    my $r = probe($s, sni => 'shared1.test', host => 'shared2.test');
    expect_case('served across the two', $r, status => 200,
        reason => 'sni-host-mismatch', action => 'report',
        vhost => 'shared2.test', logno => '002');
    my $f = line_fields($r, '002');
    is $f->{ssl_verdict}, 'serve', 'the model agrees with mod_ssl';
    is $f->{tls_differs}, 'none', 'and sees no protocol difference';
};

subtest 'a reject closes HTTP/1.x also when ErrorDocument redirects' => sub {
    # An ErrorDocument elsewhere turns the module's 421 into a 302, which
    # the error filter does not see as a 421: the reject itself closes.
    my $s = MisdirectTest->new(name => 'glue-errordoc-remote',
        expect_log => ['MISDIRECT001'],
        global => 'ErrorDocument 421 https://elsewhere.test/misdirected',
        mpm => MisdirectTest::h2_mpm());    # it speaks HTTP/2 too
    my @r = $s->https(sni => 'a.wild.test', requests => [
        { host => 'x.b.wild.test' }, { host => 'a.wild.test' } ]);
    is $r[0]{status}, 302, 'cert-mismatch rejected, sent elsewhere';
    is $r[0]{headers}{location}, 'https://elsewhere.test/misdirected',
        'to the ErrorDocument URL';
    is $r[0]{headers}{connection}, 'close', 'Connection: close';
    ok $r[0]{closed_after}, 'and the connection is closed';
    is $r[1]{status}, 0, 'no second request on it';
    my $h2 = $s->h2(sni => 'a.wild.test', streams => [
        { authority => 'x.b.wild.test' }, { authority => 'a.wild.test' } ]);
    is $h2->{streams}[0]{status}, 302, 'h2: the stream is sent elsewhere';
    is $h2->{streams}[1]{status}, 200, 'and the connection serves the next';
};

subtest 'a handler\'s 421 after an allowed finding is the handler\'s' => sub {
    # shared1 -> shared2 is legitimate reuse (sni-host-mismatch, allowed);
    # the 421 comes from a RewriteRule of shared2.test.
    my $s = MisdirectTest->new(name => 'glue-handler',
        expect_log => ['MISDIRECT007'],
        modules => ['rewrite'],
        vhost => { 'tls:shared2.test' => "RewriteEngine On\n"
            . 'RewriteRule ^/gone - [R=421]' });
    my $mark = $s->mark;
    my $r = probe($s, sni => 'shared1.test', host => 'shared2.test',
        path => '/gone');
    is $r->{status}, 421, 'RewriteRule answers 421';
    is $r->{access}{reason}, 'sni-host-mismatch',
        'the module found sni-host-mismatch';
    is $r->{access}{action}, 'allow', '... and allowed it';
    my $line = $s->wait_error_log(qr/MISDIRECT00[67]/, $mark) // '';
    like $line, qr/MISDIRECT007: the request's handler answered 421/,
        'explained as the handler\'s';
    is fields($line)->{by}, 'handler', 'by="handler"';
    unlike $s->error_log_since($mark), qr/MISDIRECT006|mod_ssl answered/,
        'never as mod_ssl\'s';
};

done_testing;
