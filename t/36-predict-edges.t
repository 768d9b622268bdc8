# The prediction in the configurations where the answer depends on more
# than the two vhosts: the TLS versions the address's default vhost
# leaves a handshake, SSLStrictSNIVHostCheck, the peer
# (MisdirectTrustedProxy), and the certificate a client accepts.  Each
# case reads `apache2 -t -D DUMP_MISDIRECT_JSON` and asks the real
# server.
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $pki = MisdirectTest::pki();

sub pairs ($s) {
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT_JSON', '-d', $s->root,
        '-f', $s->conf_file);
    is $rc, 0, 'the dump succeeds' or diag $err;
    my ($l) = grep { $_->{address} eq '127.0.0.1:' . $s->tls_port }
        JSON::PP->new->decode($out)->{listeners}->@*;
    return { map { (($_->{sni} // '-') . " $_->{host}" => $_) }
        $l->{pairs}->@* };
}

sub text_dump ($s) {
    my ($rc, $out) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT', '-d', $s->root, '-f', $s->conf_file);
    return $out;
}

sub ask ($s, $sni, $host, %o) {
    my ($r) = $s->https(sni => $sni, requests => [{ host => $host }], %o);
    return $r->{status};
}

# beta.test asks for client certificates (optional).  A handshake that
# SNI moves to a vhost without SSLProtocol of its own keeps the default
# vhost's versions: here TLS 1.2, where mod_ssl renegotiates and the
# client, which has no certificate, is served.  With SSLProtocol set
# globally, the handshake is TLS 1.3, which offers no renegotiation:
# mod_ssl answers 403.
for my $case (['the default vhost caps the handshake at TLS 1.2', '', 200],
              ['SSLProtocol set globally: TLS 1.3', 'SSLProtocol all', 403]) {
    my ($label, $global, $want) = @$case;
    subtest $label => sub {
        my $s = MisdirectTest->new(name => 'edges-tls',
            global => "SSLVHostSNIPolicy insecure\n$global",
            vhost => { 'tls:default.test' => 'SSLProtocol TLSv1.2',
                'tls:beta.test' => "SSLVerifyClient optional\n"
                    . "SSLCACertificateFile $pki/ca.crt" },
            # Over TLS 1.3 the 403 follows a failed post-handshake
            # authentication: mod_ssl's and OpenSSL's lines, and the
            # module's explanation.
            expect_log => ['MISDIRECT002', $want == 403 ? ('AH10158',
                qr/^SSL Library Error: error:0A000117:/, 'MISDIRECT006')
                : ()]);
        my $p = pairs($s)->{'alpha.test beta.test'};
        is $p->{status}, $want, "predicted $want for SNI alpha.test, "
            . 'Host beta.test';
        is ask($s, 'alpha.test', 'beta.test'), $want, "and it is $want";
        $s->stop;
    };
}

# The same over TLS 1.2, where beta.test requires a certificate.  With
# the CA certificates set globally, mod_ssl renegotiates, the client has
# no certificate, the handshake fails, and mod_ssl ends the connection:
# its 403 never reaches the client.  The dump says no answer, after the
# request (which the module checked), and the module explains it
# without counting a 403.  With CA certificates of beta.test's own,
# which a renegotiation cannot change, mod_ssl answers 403 at once.
for my $case (['TLS 1.2, SSLVerifyClient require: no answer',
               "SSLCACertificateFile $pki/ca.crt", '', 0],
              ['TLS 1.2, SSLVerifyClient require, own CA: 403', '',
               "SSLCACertificateFile $pki/ca.crt", 403]) {
    my ($label, $global, $own, $want) = @$case;
    subtest $label => sub {
        my $s = MisdirectTest->new(name => 'edges-reneg',
            global => "SSLVHostSNIPolicy insecure\n$global\n"
                . "<Location /misdirect-status>\n"
                . "    SetHandler misdirect-status\n</Location>",
            vhost => { 'tls:default.test' => 'SSLProtocol TLSv1.2',
                'tls:beta.test' => "SSLVerifyClient require\n$own" },
            # The failed renegotiation: mod_ssl's and OpenSSL's lines.
            expect_log => [qw(MISDIRECT002 MISDIRECT006), $want ? ()
                : ('AH02261', qr/^SSL Library Error: error:0A0000C7:/)]);
        my $p = pairs($s)->{'alpha.test beta.test'};
        is $p->{status}, $want, "predicted $want for SNI alpha.test, Host "
            . 'beta.test';
        my $mark = $s->mark;
        is ask($s, 'alpha.test', 'beta.test'), $want, "and it is $want";
        my $line = $s->wait_error_log(qr/MISDIRECT006/, $mark) // '';
        my ($st) = $s->http(requests => [{ host => 'default.test',
            path => '/misdirect-status' }]);
        my $totals = JSON::PP->new->decode($st->{body})->{totals};
        if ($want) {
            like $line, qr/MISDIRECT006: mod_ssl answered 403: /,
                'explained as mod_ssl\'s 403';
            like $s->error_log_since($mark), qr/AH02256/,
                'mod_ssl\'s own line says why';
            is $totals->{mod_ssl_403}, 1, 'counted';
        }
        else {
            is $p->{no_answer}, 'renegotiation',
                '... in the renegotiation, after the request';
            like text_dump($s), qr/no answer: over TLS 1\.2 mod_ssl renegotiates for the request vhost's SSLVerifyClient require/,
                'the text says why';
            like $line, qr/MISDIRECT006: mod_ssl ended the connection without an answer: the vhost requires a client certificate the client does not have; give both vhosts the same SSLVerifyClient\. mod_ssl renegotiated TLS 1\.2 /,
                'explained as no answer, with the fix';
            like $s->error_log_since($mark), qr/AH02261/,
                'mod_ssl\'s own line says why';
            is $totals->{mod_ssl_403}, 0,
                'no 403 counted: none reached the client';
            is $totals->{checked}, 2,
                'the request was checked (and so was this scrape)';
        }
        $s->stop;
    };
}

subtest 'SSLStrictSNIVHostCheck: 403 without SNI' => sub {
    my $s = MisdirectTest->new(name => 'edges-strict',
        vhost => { 'tls:alpha.test' => 'SSLStrictSNIVHostCheck on' },
        expect_log => [qw(AH02032 MISDIRECT006)]);
    my $pairs = pairs($s);
    for my $host (qw(default.test alpha.test shared1.test)) {
        my $p = $pairs->{"- $host"};
        is ask($s, undef, $host), $p->{status},
            "no SNI, Host $host: $p->{status}, as predicted";
    }
    is $pairs->{'- alpha.test'}{status}, 403,
        'the vhost with the check on answers 403 without SNI';
    is $pairs->{'- alpha.test'}{by}, 'mod_ssl', 'by mod_ssl';
    like text_dump($s), qr/^  without SNI: .*\n(?:    .*\n)*    403 by mod_ssl \(SSLStrictSNIVHostCheck on, and no SNI\): 1 vhost: alpha\.test /m,
        'the text says so, on a row of its own for no SNI';
    $s->stop;
};

# The proxy at 127.0.0.2 is trusted: for its requests the checks of the
# handshake do not fire.  127.0.0.1 is any other client.
subtest 'MisdirectTrustedProxy: what the trusted peer gets' => sub {
    my $s = MisdirectTest->new(name => 'edges-trusted',
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectTrustedProxy 127.0.0.2/32\n"
            . 'MisdirectPolicy cert-mismatch reject',
        expect_log => ['MISDIRECT001']);
    my $p = pairs($s)->{'- beta.test'};
    is $p->{status}, 421, 'no SNI, Host beta.test: 421 for other clients';
    is $p->{by}, 'mod_misdirect', 'by the module';
    is_deeply $p->{trusted_peer}, { status => 200, by => undef,
        check => undef }, 'and 200 for the trusted peer';
    is ask($s, undef, 'beta.test'), 421, 'another client gets 421';
    is ask($s, undef, 'beta.test', from => '127.0.0.2'), 200,
        'the trusted peer gets 200';
    like text_dump($s), qr/421 by mod_misdirect \(check cert-mismatch, MisdirectPolicy cert-mismatch reject\); from a MisdirectTrustedProxy peer: served/,
        'the text says both';
    $s->stop;
};

# dual.test has an RSA certificate that also covers rsaside.test and an
# ECDSA one that also covers ecside.test: a client that accepts RSA only
# is served rsaside.test on dual.test's handshake, one that accepts ECDSA
# only meets cert-mismatch.
subtest 'two certificates that cover different names' => sub {
    my $dir = "$pki/edges-$$";
    mkdir $dir or die "mkdir $dir: $!";
    for my $c (['rsa', '-newkey rsa:2048', 'rsaside.test'],
               ['ec', '-newkey ec -pkeyopt ec_paramgen_curve:P-256',
                'ecside.test']) {
        my ($kind, $key, $side) = @$c;
        system("openssl req -new -nodes $key -keyout $dir/$kind.key"
            . " -out $dir/$kind.csr -subj /CN=dual.test 2>/dev/null") == 0
            or die 'openssl req';
        open my $fh, '>', "$dir/$kind.ext" or die $!;
        print $fh "subjectAltName=DNS:dual.test,DNS:$side\n";
        close $fh;
        system("openssl x509 -req -in $dir/$kind.csr -CA $pki/ca.crt"
            . " -CAkey $pki/ca.key -CAcreateserial -days 2"
            . " -extfile $dir/$kind.ext -out $dir/$kind.crt 2>/dev/null") == 0
            or die 'openssl x509';
    }
    my $extra = join '', map { <<~"EOF" } qw(dual.test rsaside.test ecside.test);
        <VirtualHost 127.0.0.1:\@TLS_PORT\@>
            ServerName $_
            DocumentRoot htdocs/alpha.test
            SSLEngine on
            SSLCertificateFile $dir/rsa.crt
            SSLCertificateKeyFile $dir/rsa.key
            SSLCertificateFile $dir/ec.crt
            SSLCertificateKeyFile $dir/ec.key
        </VirtualHost>
        EOF
    # Each of rsaside.test and ecside.test lacks in one certificate.
    my $s = MisdirectTest->new(name => 'edges-dual', extra_vhosts => $extra,
        expect_log => [qr/^AH01909: (?:rsaside|ecside)\.test:/,
            'MISDIRECT001']);
    my $p = pairs($s)->{'dual.test rsaside.test'};
    my %by = map { ($_->{key} => $_) } ($p->{by_certificate} // [])->@*;
    is $by{RSA}{status}, 200, 'RSA clients: 200 predicted';
    is $by{EC}{status}, 421, 'ECDSA clients: 421 predicted';
    is $by{EC}{check}, 'cert-mismatch', '... for cert-mismatch';
    my %cipher = (RSA => 'ECDHE-RSA-AES128-GCM-SHA256',
                  EC => 'ECDHE-ECDSA-AES128-GCM-SHA256');
    for my $key (sort keys %cipher) {
        my ($st) = raw_tls($s, sni => 'dual.test',
            extra => ['-tls1_2', '-cipher', $cipher{$key}],
            request => "GET / HTTP/1.1\r\nHost: rsaside.test\r\n"
                . "Connection: close\r\n\r\n");
        is $st, $by{$key}{status} // -1, "a $key client gets what was "
            . 'predicted for it';
    }
    ok !exists pairs($s)->{'dual.test dual.test'}{by_certificate},
        'pairs both certificates answer alike list no per-certificate answer';
    # A client that accepts either key type gets the ECDSA certificate:
    # the pair's own answer is that one's.
    is $p->{status}, 421, 'the pair\'s own answer is the ECDSA clients\'';
    for my $version ('-tls1_2', '-tls1_3') {
        my ($st, $out) = raw_tls($s, sni => 'dual.test', quiet => 0,
            extra => [$version],
            request => "GET / HTTP/1.1\r\nHost: rsaside.test\r\n"
                . "Connection: close\r\n\r\n");
        like $out, qr/Server public key is 256 bit|Peer signature type: ECDSA|ecdsa/i,
            "a client that accepts both gets the ECDSA certificate ($version)";
        is $st, $p->{status}, '... and what the pair predicts';
    }
    $s->stop;
    system 'rm', '-rf', $dir;
};

done_testing;
