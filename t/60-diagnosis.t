# The line an administrator reads for every 421: its sentence and fields,
# including 421s that mod_ssl produced, and the hints.
use v5.36;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'diagnosis');
my $conf = $s->conf_file;
my $tls = $s->tls_port;
my $where = sub ($name) {
    "$name ($conf:" . $s->vhost_line("tls:$name") . ')';
};

# Fields of the line, pulled apart the way a log parser would.
sub fields ($line) {
    my %f;
    $f{$1} = $2 while $line =~ / (\w+)="((?:[^"\\]|\\.)*)"/g;
    return \%f;
}

subtest 'a cert-mismatch rejection on HTTP/1.1, second request' => sub {
    my $mark = $s->mark;
    my @r = $s->https(sni => 'alpha.test', requests => [
        { host => 'alpha.test' },
        { host => 'beta.test', headers => [
            'X-Forwarded-Host' => 'www.example.com',
            'Forwarded' => 'for=192.0.2.1;host=beta.example' ] } ]);
    is $r[1]{status}, 421, 'answered 421';
    my $line = $s->wait_error_log(qr/MISDIRECT001/, $mark) // '';
    like $line, qr/\[misdirect:error\]/, 'logged at error by misdirect';
    like $line, qr/MISDIRECT001: Misdirected request rejected with 421: host beta\.test selects virtual host beta\.test, but the TLS handshake was for alpha\.test, whose certificate does not cover it\. /,
        'opens with a sentence';
    my $f = fields($line);
    is $f->{reason}, 'cert-mismatch', 'reason';
    is $f->{checks}, 'cert-mismatch:reject', 'checks with actions';
    like $f->{client}, qr/^127\.0\.0\.1:\d+$/, 'client address:port';
    is $f->{local}, "127.0.0.1:$tls", 'local address:port';
    is $f->{proto}, 'HTTP/1.1', 'protocol';
    is $f->{request}, 2, 'the second request on its connection';
    is $f->{sni}, 'alpha.test', 'SNI as sent';
    is $f->{tls_resumed}, 'no', 'TLS not resumed';
    is $f->{alpn}, 'http/1.1', 'ALPN';
    is $f->{handshake_vhost}, $where->('alpha.test'),
        'handshake vhost with the file:line of its <VirtualHost>';
    is $f->{request_vhost}, $where->('beta.test'), 'request vhost likewise';
    is $f->{host}, 'beta.test', 'host';
    is $f->{host_header}, 'beta.test', 'Host header as sent';
    is $f->{x_forwarded_host}, 'www.example.com', 'X-Forwarded-Host';
    is $f->{forwarded}, 'for=192.0.2.1;host=beta.example', 'Forwarded';
    like $f->{hint}, qr/does not cover the requested host/, 'hint';
};

subtest 'HTTP/1.0 and a resumed TLS session' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my ($st) = raw_tls($s, sni => 'alpha.test',
        request => "GET / HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n",
        extra => ['-sess_out', "$dir/sess"]);
    is $st, 200, 'first connection served';
    ok -s "$dir/sess", 'session saved';
    my $mark = $s->mark;
    ($st) = raw_tls($s, sni => 'alpha.test',
        request => "GET / HTTP/1.0\r\nHost: beta.test\r\n\r\n",
        extra => ['-sess_in', "$dir/sess"]);
    is $st, 421, 'resumed connection, HTTP/1.0 for beta.test: 421';
    my $f = fields($s->wait_error_log(qr/MISDIRECT001/, $mark) // '');
    is $f->{proto}, 'HTTP/1.0', 'protocol HTTP/1.0';
    is $f->{tls_resumed}, 'yes', 'TLS session resumed';
};

subtest 'the reverse proxy without SNI' => sub {
    my $mark = $s->mark;
    my ($r) = $s->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 421, 'answered 421';
    my $line = $s->wait_error_log(qr/MISDIRECT001/, $mark) // '';
    my $f = fields($line);
    is $f->{sni}, '(none)', 'no SNI';
    is $f->{checks}, 'sni-missing:allow,cert-mismatch:reject', 'both checks';
    is $f->{handshake_vhost}, $where->('default.test'),
        'the handshake used the default vhost';
    like $f->{hint}, qr/^the client sent no SNI, as many reverse proxies and load balancers do.*proxy_ssl_server_name on; proxy_ssl_name \$host;.*sni req\.hdr\(host\).*MisdirectTrustedProxy$/,
        'hint: proxy settings and MisdirectTrustedProxy';
};

subtest 'HTTP/2 reuse refused by mod_ssl: which setting differs' => sub {
    my $s = MisdirectTest->new(name => 'diagnosis-h2',
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
    my $l3 = $s->vhost_line('tls:shared3.test');
    like $f->{tls_differs},
        qr/^SSLVerifyClient: none \(default\) vs require \(\Q$conf\E:\d+\); SSLCACertificateFile: \(not set\) vs \S+ca\.crt \(\Q$conf\E:\d+\)$/,
        'tls_differs names SSLVerifyClient and the CA file with both values';
    my ($vline) = $f->{tls_differs} =~ /require \(\Q$conf\E:(\d+)\)/;
    ok $vline > $l3, 'the require comes from inside shared3.test\'s block';
    like $f->{hint}, qr/SSLVHostSNIPolicy/, 'hint names mod_ssl\'s policy';
    like $s->error_log_since($mark), qr/\[ssl:error\].*AH02032/,
        'mod_ssl\'s own terse line is there too';
};

subtest 'mod_ssl\'s 400 and 403 are explained and counted too' => sub {
    my $strict = MisdirectTest->new(name => 'diagnosis-strict',
        global => "SSLStrictSNIVHostCheck On\n"
            . "<Location /misdirect-status>\n"
            . "    SetHandler misdirect-status\n</Location>");
    my $mark = $strict->mark;
    my ($st) = raw_tls($strict, sni => 'default.test',
        request => "GET / HTTP/1.0\r\n\r\n");
    is $st, 400, 'SNI but no Host: mod_ssl answers 400';
    my $f = fields($strict->wait_error_log(qr/MISDIRECT006/, $mark) // '');
    is $f->{reason}, 'unknown-host', 'the request named no host';
    like $f->{hint}, qr/named a host in SNI but none in the request/, 'hint';

    $mark = $strict->mark;
    ($st) = raw_tls($strict, sni => undef,
        request => "GET / HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n");
    is $st, 403, 'no SNI under SSLStrictSNIVHostCheck: mod_ssl answers 403';
    my $line = $strict->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $line, qr/MISDIRECT006: mod_ssl answered 403: SSLStrictSNIVHostCheck requires SNI/,
        'explained';
    like fields($line)->{hint}, qr/make the client or proxy send SNI/, 'hint';

    my ($r) = $strict->http(requests => [{ host => 'default.test',
        path => '/misdirect-status' }]);
    my $json = JSON::PP->new->decode($r->{body});
    is $json->{totals}{mod_ssl_400}, 1, 'counted: one 400 from mod_ssl';
    is $json->{totals}{mod_ssl_403}, 1, 'counted: one 403 from mod_ssl';
    is $json->{totals}{mod_ssl_421}, 0, 'and no 421';
};

subtest 'a report is a warning with its own number' => sub {
    my $r = MisdirectTest->new(name => 'diagnosis-report',
        global => 'MisdirectPolicy unknown-host report');
    my $mark = $r->mark;
    $r->http(requests => [{ host => 'nosuch.test' }]);
    my $line = $r->wait_error_log(qr/MISDIRECT002/, $mark) // '';
    like $line, qr/\[misdirect:warn\].*MISDIRECT002: Misdirected request reported and served: no virtual host is named nosuch\.test, so the default default\.test answers\./,
        'sentence';
    my $f = fields($line);
    ok !exists $f->{sni}, 'plain connection: no TLS fields';
    like $f->{hint}, qr/DNS may point here by mistake or a proxy rewrites Host/,
        'hint for an unknown host';
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

done_testing;
