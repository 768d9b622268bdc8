# The line an administrator reads for every 421: its sentence and fields,
# including 421s that mod_ssl produced (its answer stands, the module
# explains it) and 421s that a handler or a backend produced, and the hints.
use v5.36;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'diagnosis',
    expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)]);
my $conf = $s->conf_file;
my $tls = $s->tls_port;
my $where = sub ($name) {
    "$name ($conf:" . $s->vhost_line("tls:$name") . ')';
};

subtest 'a cert-mismatch rejection on HTTP/1.1, second request' => sub {
    # b.wild.test has a.wild.test's certificate files, so mod_ssl serves
    # it; *.wild.test does not cover x.b.wild.test: the module's own 421.
    my $mark = $s->mark;
    my @r = $s->https(sni => 'a.wild.test', requests => [
        { host => 'a.wild.test' },
        { host => 'x.b.wild.test', headers => [
            'X-Forwarded-Host' => 'www.example.com',
            'Forwarded' => 'for=192.0.2.1;host=beta.example' ] } ]);
    is $r[1]{status}, 421, 'answered 421';
    my $line = $s->wait_error_log(qr/MISDIRECT001/, $mark) // '';
    like $line, qr/\[misdirect:error\]/, 'logged at error by misdirect';
    like $line, qr/MISDIRECT001: Misdirected request rejected with 421: a connection pool reused a connection opened for another host; give each host its own pool\. host x\.b\.wild\.test selects virtual host b\.wild\.test, but the TLS handshake was for a\.wild\.test, whose certificate does not cover it\. /,
        'opens with what happened and the fix, then a sentence';
    my $f = fields($line);
    is $f->{reason}, 'cert-mismatch', 'reason';
    is $f->{checks}, 'cert-mismatch:reject', 'checks with actions';
    like $f->{client}, qr/^127\.0\.0\.1:\d+$/, 'client address:port';
    ok !exists $f->{tcp_peer}, 'no tcp_peer: mod_remoteip changed nothing';
    is $f->{local}, "127.0.0.1:$tls", 'local address:port';
    is $f->{proto}, 'HTTP/1.1', 'protocol';
    is $f->{request}, 2, 'the second request on its connection';
    is $f->{sni}, 'a.wild.test', 'SNI as sent';
    is $f->{tls_resumed}, 'no', 'TLS not resumed';
    is $f->{alpn}, 'http/1.1', 'ALPN';
    is $f->{ssl_policy}, 'secure', 'mod_ssl\'s SSLVHostSNIPolicy';
    is $f->{ssl_verdict}, 'serve', 'which serves this pair';
    is $f->{tls_differs}, 'none', 'as no TLS setting differs';
    is $f->{handshake_vhost}, $where->('a.wild.test'),
        'handshake vhost with the file:line of its <VirtualHost>';
    is $f->{request_vhost}, $where->('b.wild.test'), 'request vhost likewise';
    is $f->{host}, 'x.b.wild.test', 'host';
    is $f->{host_header}, 'x.b.wild.test', 'Host header as sent';
    is $f->{x_forwarded_host}, 'www.example.com', 'X-Forwarded-Host';
    is $f->{forwarded}, 'for=192.0.2.1;host=beta.example', 'Forwarded';
    is $f->{cause}, 'pool-reuse',
        'cause: a gateway reused the connection for another host';
    like $f->{hint}, qr/^request 2 on a connection opened with SNI a\.wild\.test asks for x\.b\.wild\.test: a connection pool/,
        'hint: what happened, then the pools to fix';
};

subtest 'mod_ssl refuses other certificates: its 421, explained' => sub {
    my $mark = $s->mark;
    my @r = $s->https(sni => 'alpha.test', requests => [
        { host => 'alpha.test' },
        { host => 'beta.test', headers => [
            'X-Forwarded-Host' => 'www.example.com' ] } ]);
    is $r[1]{status}, 421, 'answered 421';
    like $r[1]{body}, qr/<title>421 Misdirected Request<\/title>/,
        'with stock httpd\'s page';
    my $line = $s->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    my $log = $s->error_log_since($mark);
    like $log, qr/\[ssl:error\] .*AH02032: Hostname alpha\.test provided via SNI and hostname beta\.test provided via HTTP/,
        'mod_ssl\'s own AH02032 line stands';
    unlike $log, qr/MISDIRECT00[123]:/, 'the module judged nothing';
    is scalar(() = $log =~ /\[misdirect:(?:error|warn)\]/g), 1,
        'one line from the module';
    like $line, qr/\[misdirect:error\].*MISDIRECT006: mod_ssl answered 421: a connection pool reused a connection opened for another host; give each host its own pool\. mod_ssl's SSLVHostSNIPolicy refuses the request's virtual host on this handshake: host beta\.test selects virtual host beta\.test, but the TLS handshake was for alpha\.test, whose certificate does not cover it\. /,
        'opens with mod_ssl, what happened and the fix, then a sentence';
    my $f = fields($line);
    is $f->{by}, 'mod_ssl', 'by mod_ssl';
    is $f->{reason}, 'cert-mismatch', 'reason: what its checks would see';
    is $f->{checks}, 'cert-mismatch:reject', 'checks likewise';
    is $f->{request}, 2, 'the second request on its connection';
    is $f->{sni}, 'alpha.test', 'SNI as sent';
    is $f->{ssl_policy}, 'secure', 'mod_ssl\'s policy';
    is $f->{ssl_verdict}, 'refuse', 'its verdict';
    like $f->{tls_differs}, qr/SSLCertificateFile.*SSLCertificateKeyFile/,
        'tls_differs names the certificate and key files';
    is $f->{handshake_vhost}, $where->('alpha.test'), 'handshake vhost';
    is $f->{request_vhost}, $where->('beta.test'), 'request vhost';
    is $f->{host}, 'beta.test', 'host';
    is $f->{x_forwarded_host}, 'www.example.com', 'X-Forwarded-Host';
    is $f->{cause}, 'pool-reuse', 'cause: a gateway\'s pool';
    like $f->{hint}, qr/nginx: an upstream block with keepalive per host/,
        'hint names the pool settings';
};

subtest 'HTTP/1.0 and a resumed TLS session' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my ($st) = raw_tls($s, sni => 'a.wild.test',
        request => "GET / HTTP/1.1\r\nHost: a.wild.test\r\nConnection: close\r\n\r\n",
        extra => ['-sess_out', "$dir/sess"]);
    is $st, 200, 'first connection served';
    ok -s "$dir/sess", 'session saved';
    my $mark = $s->mark;
    ($st) = raw_tls($s, sni => 'a.wild.test',
        request => "GET / HTTP/1.0\r\nHost: x.b.wild.test\r\n\r\n",
        extra => ['-sess_in', "$dir/sess"]);
    is $st, 421, 'resumed connection, HTTP/1.0 for x.b.wild.test: 421';
    my $f = fields($s->wait_error_log(qr/MISDIRECT001/, $mark) // '');
    is $f->{proto}, 'HTTP/1.0', 'protocol HTTP/1.0';
    is $f->{tls_resumed}, 'yes', 'TLS session resumed';
};

subtest 'the reverse proxy without SNI' => sub {
    # Under the default policy mod_ssl refuses it (the default vhost has
    # other certificate files): explained with the proxy settings.
    my $mark = $s->mark;
    my ($r) = $s->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 421, 'answered 421';
    my $line = $s->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $s->error_log_since($mark), qr/AH02032: /, 'by mod_ssl';
    my $f = fields($line);
    is $f->{by}, 'mod_ssl', 'explained as mod_ssl\'s';
    is $f->{sni}, '(none)', 'no SNI';
    is $f->{checks}, 'sni-missing:allow,cert-mismatch:reject', 'both checks';
    is $f->{handshake_vhost}, $where->('default.test'),
        'the handshake used the default vhost';
    like $f->{tls_differs}, qr/SSLCertificateFile/, 'what differs';
    like $f->{hint}, qr/^the client sent no SNI, so mod_ssl used the default virtual host's TLS settings.*proxy_ssl_server_name on; proxy_ssl_name \$host;.*sni req\.hdr\(host\)/,
        'hint: proxy settings';

    # Where mod_ssl is relaxed on purpose, the module judges it itself
    # (cert-mismatch then defaults to report: rejected explicitly here).
    my $j = MisdirectTest->new(name => 'diagnosis-judged',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . 'MisdirectPolicy cert-mismatch reject');
    $mark = $j->mark;
    ($r) = $j->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 421, 'insecure: the module answers 421';
    $f = fields($j->wait_error_log(qr/MISDIRECT001/, $mark) // '');
    is $f->{sni}, '(none)', 'no SNI';
    is $f->{checks}, 'sni-missing:allow,cert-mismatch:reject', 'both checks';
    is $f->{ssl_policy}, 'insecure', 'mod_ssl\'s policy';
    is $f->{ssl_verdict}, 'serve', 'which serves the pair';
    like $f->{hint}, qr/^the client sent no SNI, as many reverse proxies and load balancers do.*proxy_ssl_server_name on; proxy_ssl_name \$host;.*sni req\.hdr\(host\).*MisdirectTrustedProxy$/,
        'hint: proxy settings and MisdirectTrustedProxy';

    $j->stop;

    # Served past the policy, then refused by mod_ssl's access check: the
    # vhost wants a client certificate.  Without SNI that is not
    # SSLStrictSNIVHostCheck's 403, which is not set here.
    my $i = MisdirectTest->new(name => 'diagnosis-insecure',
        # The 403: mod_ssl asked for a client certificate after the TLS 1.3
        # handshake, which the client had not offered.
        expect_log => ['AH10158', 'MISDIRECT002', 'MISDIRECT006',
            qr/^SSL Library Error: error:0A000117:/],
        global => 'SSLVHostSNIPolicy insecure');
    $mark = $i->mark;
    ($r) = $i->https(sni => undef, requests => [{ host => 'shared3.test' }]);
    is $r->{status}, 403, 'no SNI, a vhost that requires client certificates: 403';
    $line = $i->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $line, qr/MISDIRECT006: mod_ssl answered 403: the vhost wants a client certificate the handshake did not ask for; give both vhosts the same SSLVerifyClient\. /,
        'opens with the client certificate, not SNI';
    unlike $line, qr/SSLStrictSNIVHostCheck/, 'and never blames SSLStrictSNIVHostCheck';
    $i->stop;

    # Under ReportOnly, a legitimate reuse that MisdirectPolicy refuses:
    # the longest opening there is, within its 180 characters (the
    # harness checks every line when the server stops).
    my $ro = MisdirectTest->new(name => 'diagnosis-reportonly-reuse',
        expect_log => ['MISDIRECT008'],
        global => "Misdirect ReportOnly\nMisdirectPolicy sni-host-mismatch reject");
    $mark = $ro->mark;
    ($r) = $ro->https(sni => 'shared1.test', requests => [{ host => 'shared2.test' }]);
    is $r->{status}, 200, 'ReportOnly serves the reuse';
    $line = $ro->wait_error_log(qr/MISDIRECT008/, $mark) // '';
    like $line, qr/MISDIRECT008: Served under ReportOnly; On would refuse it: legitimate reuse of a connection for a name of its certificate; 'MisdirectPolicy sni-host-mismatch allow' serves it\. /,
        'says what On would do, and how to keep serving it';
    $ro->stop;
};

subtest 'HTTP/2 reuse refused by mod_ssl: which setting differs' => sub {
    my $s = MisdirectTest->new(name => 'diagnosis-h2',
        expect_log => [qw(AH02032 MISDIRECT006)],
        mpm => MisdirectTest::h2_mpm());
    my $conf = $s->conf_file;
    my $mark = $s->mark;
    my $res = $s->h2(sni => 'shared1.test', streams => [
        { authority => 'shared2.test' }, { authority => 'shared3.test' } ]);
    is_deeply [map { $_->{status} } $res->{streams}->@*], [200, 421],
        'shared2.test served, shared3.test 421 from mod_ssl';
    my $line = $s->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $line, qr/\[misdirect:error\].*MISDIRECT006: mod_ssl answered 421: /,
        'explained at error level with its own message number';
    my $f = fields($line);
    is $f->{reason}, 'sni-host-mismatch', 'what mod_misdirect found';
    is $f->{proto}, 'h2', 'protocol h2';
    is $f->{stream}, 3, 'stream id';
    is $f->{by}, 'mod_ssl', 'by mod_ssl';
    is $f->{ssl_policy}, 'secure', 'mod_ssl\'s policy';
    is $f->{ssl_verdict}, 'refuse', 'its verdict';
    like $f->{tls_differs}, qr/SSLVerifyClient.*SSLCACertificateFile/,
        'tls_differs names SSLVerifyClient and the CA file';
    unlike $f->{tls_differs}, qr/SSLCertificateFile/,
        'not the certificate, which is the same';
    is $f->{cause}, 'browser-reuse', 'cause: HTTP/2 reuse, as browsers do';
    like $f->{hint}, qr/mod_ssl refuses the two virtual hosts' different TLS settings \(tls_differs\): browsers retry on a new connection/,
        'hint: mod_ssl refuses the settings, browsers retry';
    like $s->error_log_since($mark), qr/\[ssl:error\].*AH02032/,
        'mod_ssl\'s own terse line is there too';
};

subtest 'mod_ssl\'s 400 and 403 are explained and counted too' => sub {
    my $strict = MisdirectTest->new(name => 'diagnosis-strict',
        expect_log => [qw(AH02031 MISDIRECT006)],
        global => "SSLStrictSNIVHostCheck On\n"
            . "<Location /misdirect-status>\n"
            . "    SetHandler misdirect-status\n</Location>");
    my $mark = $strict->mark;
    my ($st) = raw_tls($strict, sni => 'default.test',
        request => "GET / HTTP/1.0\r\n\r\n");
    is $st, 400, 'SNI but no Host: mod_ssl answers 400';
    my $f = fields($strict->wait_error_log(qr/MISDIRECT006/, $mark) // '');
    is $f->{reason}, 'none', 'no check of the module\'s is blamed';
    like $f->{hint}, qr/named a host in SNI but none in the request/, 'hint';

    $mark = $strict->mark;
    ($st) = raw_tls($strict, sni => undef,
        request => "GET / HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n");
    is $st, 403, 'no SNI under SSLStrictSNIVHostCheck: mod_ssl answers 403';
    my $line = $strict->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $line, qr/MISDIRECT006: mod_ssl answered 403: the client sent no SNI, which SSLStrictSNIVHostCheck requires; make it send SNI\. SSLStrictSNIVHostCheck requires SNI/,
        'explained';
    like fields($line)->{hint}, qr/make the client or proxy send SNI/, 'hint';

    my ($r) = $strict->http(requests => [{ host => 'default.test',
        path => '/misdirect-status' }]);
    my $json = JSON::PP->new->decode($r->{body});
    is $json->{totals}{mod_ssl_400}, 1, 'counted: one 400 from mod_ssl';
    is $json->{totals}{mod_ssl_403}, 1, 'counted: one 403 from mod_ssl';
    is $json->{totals}{mod_ssl_421}, 0, 'and no 421';
    is $json->{totals}{other_421}, 0, 'nor any other 421';
    my ($tls_default) = grep { $_->{server_name} eq 'default.test'
        && $_->{address} eq '127.0.0.1:' . $strict->tls_port }
        $json->{vhosts}->@*;
    is $tls_default->{counters}{checked}, 0,
        'the module judged neither (R default.test on TLS: none checked)';
    is $tls_default->{counters}{mod_ssl_400}, 1, '... and counted them there';
};

subtest 'a 421 of a handler or a backend is explained, never blamed on '
    . 'mod_ssl' => sub {
    my $h = MisdirectTest->new(name => 'diagnosis-handler',
        expect_log => [qw(MISDIRECT002 MISDIRECT007)],
        modules => [qw(rewrite proxy proxy_http)],
        global => "Redirect 421 /gone421\n"
            . "<Location /misdirect-status>\n"
            . "    SetHandler misdirect-status\n</Location>",
        vhost => { 'tls:alpha.test' => "RewriteEngine On\n"
            . "RewriteRule ^/rewrite421\$ - [R=421]\n"
            . 'ProxyPass /backend/ http://127.0.0.1:@PLAIN_PORT@/' });
    # httpd's error path closes the connection after its own 421; a
    # backend's answer passes as it was written.
    my @cases = (
        [ 'Redirect 421', '/gone421', qr/the request's handler answered 421, not mod_ssl or mod_misdirect/, 1 ],
        [ 'RewriteRule [R=421]', '/rewrite421', qr/the request's handler answered 421, not mod_ssl or mod_misdirect/, 1 ],
        [ 'a proxied backend', '/backend/gone421', qr/a proxied backend answered 421, not mod_ssl or mod_misdirect/, 0 ],
    );
    my $alpha_desc = 'alpha.test (' . $h->conf_file . ':'
        . $h->vhost_line('tls:alpha.test') . ')';
    for my $c (@cases) {
        my ($what, $path, $sentence, $closes) = @$c;
        my $mark = $h->mark;
        my ($r) = $h->https(sni => 'alpha.test',
            requests => [{ host => 'alpha.test', path => $path }]);
        is $r->{status}, 421, "$what: 421";
        is $r->{headers}{connection}, 'close',
            "$what: HTTP/1.x 421 says Connection: close" if $closes;
        my $line = $h->wait_error_log(qr/MISDIRECT007: [^\n]*sni="alpha\.test"/,
            $mark) // '';
        like $line, qr/\[misdirect:error\].*MISDIRECT007: /,
            "$what: explained at error as MISDIRECT007";
        like $line, $sentence, "$what: the sentence names who answered";
        my $f = fields($line);
        is $f->{by}, 'handler', "$what: by=\"handler\"";
        is $f->{request_vhost}, $alpha_desc, "$what: request vhost";
        like $f->{backend}, qr{^http://127\.0\.0\.1:\d+/gone421$},
            "$what: the backend's URL" unless $closes;
        like $f->{hint}, qr/decided this 421 itself/,
            "$what: hint";
        my $log = $h->error_log_since($mark);
        unlike $log, qr/MISDIRECT00[16]: [^\n]*sni="alpha\.test"|AH02032/,
            "$what: neither the module's 421 nor mod_ssl's";
    }
    my ($r) = $h->http(requests => [{ host => 'default.test',
        path => '/misdirect-status' }]);
    my $json = JSON::PP->new->decode($r->{body});
    my ($alpha) = grep { ($_->{server_name} // '') eq 'alpha.test'
        && $_->{address} eq "127.0.0.1:${\ $h->tls_port }" } $json->{vhosts}->@*;
    is $alpha->{counters}{other_421}, 3, 'counted: three other 421s for alpha.test';
    is $alpha->{counters}{mod_ssl_421}, 0, 'none as mod_ssl\'s';
    is $alpha->{counters}{rejected}, 0, 'none as the module\'s';
    $h->stop;
};

subtest 'a report is a warning with its own number' => sub {
    my $r = MisdirectTest->new(name => 'diagnosis-report',
        expect_log => ['MISDIRECT002'],
        global => 'MisdirectPolicy unknown-host report');
    my $mark = $r->mark;
    $r->http(requests => [{ host => 'nosuch.test' }]);
    my $line = $r->wait_error_log(qr/MISDIRECT002/, $mark) // '';
    like $line, qr/\[misdirect:warn\].*MISDIRECT002: Misdirected request reported and served: no vhost here is named for the host; add the name as ServerAlias if it is yours\. no virtual host is named nosuch\.test, so the default default\.test answers\./,
        'sentence';
    my $f = fields($line);
    ok !exists $f->{sni}, 'plain connection: no TLS fields';
    like $f->{hint}, qr/DNS may point here by mistake or a proxy rewrites Host/,
        'hint for an unknown host';
};

subtest 'the hint for connection reuse' => sub {
    my $t = MisdirectTest->new(name => 'diagnosis-reuse',
        expect_log => ['MISDIRECT002'],
        global => "MisdirectPolicy sni-host-mismatch report");
    my $mark = $t->mark;
    $t->https(sni => 'shared1.test', requests => [{ host => 'shared2.test' }]);
    my $f = fields($t->wait_error_log(qr/MISDIRECT002/, $mark) // '');
    is $f->{reason}, 'sni-host-mismatch', 'reported reuse';
    is $f->{tls_differs}, 'none', 'same TLS settings';
    like $f->{hint}, qr/mod_ssl accepts the two virtual hosts' TLS settings together: this reuse is legitimate/,
        'mod_ssl serves both: the reuse is legitimate';
    unlike $f->{hint}, qr/give both the same/,
        '... and no advice to give both the same settings';
    $t->stop;

    # b.wild.test has other protocols than a.wild.test (same certificate);
    # SSLVHostSNIPolicy insecure accepts the two together on purpose.
    $t = MisdirectTest->new(name => 'diagnosis-reuse-insecure',
        expect_log => ['MISDIRECT002'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy sni-host-mismatch report",
        vhost => { 'tls:b.wild.test' => 'SSLProtocol -all +TLSv1.2 +TLSv1.3' });
    $mark = $t->mark;
    my ($r) = $t->https(sni => 'a.wild.test',
        requests => [{ host => 'b.wild.test' }]);
    is $r->{status}, 200, 'insecure: other protocols served';
    $f = fields($t->wait_error_log(qr/MISDIRECT002/, $mark) // '');
    is $f->{reason}, 'sni-host-mismatch', 'reported reuse';
    is $f->{ssl_policy}, 'insecure', 'mod_ssl\'s policy';
    is $f->{ssl_verdict}, 'serve', 'which serves the pair';
    unlike $f->{hint}, qr/give both the same/,
        'mod_ssl accepts them together: no advice to give both the same '
        . 'settings';
    like $f->{hint}, qr/reused a connection for another name its certificate covers/,
        'the hint is about connection reuse';
    $t->stop;
};

subtest 'the decision trace at trace1' => sub {
    my $mark = $s->mark;
    $s->https(sni => 'beta.test', requests => [{ host => 'beta.test' }]);
    like $s->wait_error_log(qr/MISDIRECT004/, $mark) // '',
        qr/\[misdirect:trace1\].*MISDIRECT004: checked: nothing fired; handshake_vhost="beta\.test" request_vhost="beta\.test"/,
        'a clean request is traced';
    my $t = MisdirectTest->new(name => 'diagnosis-trace',
        global => "SSLVHostSNIPolicy insecure\nMisdirectAllow alpha.test");
    $mark = $t->mark;
    $t->https(sni => 'beta.test', requests => [{ host => 'alpha.test' }]);
    like $t->wait_error_log(qr/MISDIRECT004/, $mark) // '',
        qr/MISDIRECT004: checked: cert-mismatch forgiven by MisdirectAllow or MisdirectTrustedProxy; handshake_vhost="beta\.test" request_vhost="alpha\.test"/,
        'a request the lists forgave is traced with what was forgiven';
};

subtest 'port and scheme hints' => sub {
    my $mark = $s->mark;
    $s->http(requests => [{ host => 'alpha.test', target => 'https://alpha.test/' }]);
    my $f = fields($s->wait_error_log(qr/MISDIRECT001/, $mark) // '');
    is $f->{reason}, 'scheme-mismatch', 'scheme-mismatch';
    like $f->{hint}, qr/scheme does not match this connection/, 'its hint';
};

subtest 'tls_differs: each value with the line that set it' => sub {
    # A setting a vhost does not make is the global one, "inherited"; one
    # it makes is its own line; the protocol is shown as versions too.
    my $d = MisdirectTest->new(name => 'diagnosis-where',
        # The settings this server changes keep default.test and shared2.test
        # apart from their siblings: the lint says so.
        expect_log => ['AH02032', 'MISDIRECT006', 'MISDIRECT011',
            qr/^MISDIRECT015: Lint: .* shared1\.test \S+ and shared2\.test /],
        global => "SSLVerifyDepth 3\nSSLProtocol all -TLSv1 -TLSv1.1",
        vhost => { 'tls:shared2.test' =>
            "SSLVerifyDepth 5\nSSLProtocol TLSv1.2" });
    my $file = $d->conf_file;
    my @lines = split /\n/, slurp_file($file);
    my %at;
    for my $i (0 .. $#lines) {
        $at{$1} = $i + 1 if $lines[$i] =~ /^\s*(SSL(?:VerifyDepth|Protocol) .*?)\s*$/;
    }
    my $mark = $d->mark;
    my @r = $d->https(sni => 'shared1.test', requests => [
        { host => 'shared2.test' } ]);
    is $r[0]{status}, 421, 'mod_ssl refuses: the settings differ';
    my $f = fields($d->wait_error_log(qr/MISDIRECT006/, $mark) // '');
    is $f->{tls_differs},
        "SSLProtocol: all -TLSv1 -TLSv1.1 [TLSv1.2 TLSv1.3] (inherited from "
        . "$file:$at{'SSLProtocol all -TLSv1 -TLSv1.1'}) vs TLSv1.2 [TLSv1.2] "
        . "($file:$at{'SSLProtocol TLSv1.2'}); SSLVerifyDepth: 3 (inherited "
        . "from $file:$at{'SSLVerifyDepth 3'}) vs 5 ($file:$at{'SSLVerifyDepth 5'})",
        'both values, in configured words, each with its line';
};

subtest 'mod_ssl refuses a host the certificate does not cover: that hint' => sub {
    my $mark = $s->mark;
    my @r = $s->https(sni => 'alpha.test', requests => [
        { host => 'beta.test' } ]);
    is $r[0]{status}, 421, 'mod_ssl answers 421';
    my $f = fields($s->wait_error_log(qr/MISDIRECT006/, $mark) // '');
    is $f->{reason}, 'cert-mismatch', 'what the module found';
    is $f->{cause}, 'client-override',
        'cause: a new connection whose client set SNI and Host apart';
    like $f->{hint}, qr/curl: --resolve beta\.test:PORT:ADDRESS.*-servername beta\.test/,
        'the hint names the clients\' own settings';
    unlike $f->{hint}, qr/separate certificates/,
        'not to separate certificates that are separate already';
};

sub slurp_file ($path) {
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

done_testing;
