# HTTP/1.1 keep-alive: accepted and misdirected requests in sequence on one
# connection; a 421, the module's or mod_ssl's, closes the connection and
# says so.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;

{
    my $s = MisdirectTest->new(name => 'keepalive',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)]);
    # x.b.wild.test: b.wild.test has a.wild.test's certificate files, so
    # mod_ssl serves it, but *.wild.test does not cover it: the module's
    # own 421 (cert-mismatch).
    my $mark = $s->mark;
    my @r = $s->https(sni => 'a.wild.test', requests => [
        { host => 'a.wild.test' }, { host => 'b.wild.test' },
        { host => 'x.b.wild.test' }, { host => 'a.wild.test' } ]);
    is_deeply [map { $_->{status} } @r], [200, 200, 421, 0],
        'served, served, 421, then the connection is gone';
    ok !$r[1]{closed_after}, 'kept alive after the accepted requests';
    is $r[2]{headers}{connection}, 'close', '421 says Connection: close';
    ok $r[2]{closed_after}, 'and closes';
    ok $s->wait_error_log(qr/MISDIRECT001: [^\n]*request="3"[^\n]*host="x\.b\.wild\.test"/, $mark),
        'the 421 is the module\'s own';

    # mod_ssl's own 421 (shared3.test requires client certificates) closes
    # the connection as well; the module makes it say so.
    $mark = $s->mark;
    @r = $s->https(sni => 'shared1.test', requests => [
        { host => 'shared1.test' }, { host => 'shared2.test' },
        { host => 'shared3.test' }, { host => 'shared1.test' } ]);
    is_deeply [map { $_->{status} } @r], [200, 200, 421, 0],
        'mod_ssl\'s 421 after two served requests';
    is $r[2]{headers}{connection}, 'close',
        'mod_ssl\'s 421 says Connection: close too';
    ok $r[2]{closed_after}, 'and closes';
    ok $s->wait_error_log(qr/MISDIRECT006: mod_ssl answered 421: [^\n]*request="3"[^\n]*host="shared3\.test"/, $mark),
        'the 421 is mod_ssl\'s, explained';

    # The same for mod_ssl's 421 between vhosts with other certificates.
    @r = $s->https(sni => 'alpha.test', requests => [
        { host => 'alpha.test' }, { host => 'www.alpha.test' },
        { host => 'beta.test' }, { host => 'alpha.test' } ]);
    is_deeply [map { $_->{status} } @r], [200, 200, 421, 0],
        'served, served, mod_ssl\'s 421 (beta.test), then gone';
    is $r[2]{headers}{connection}, 'close',
        'that 421 says Connection: close';
    ok $r[2]{closed_after}, 'and closes';

    # curl, which otherwise reuses a connection after a 421 it was not told
    # to close, opens a new one.
    my ($rc, $out, $err) = $s->curl('-v', '--http1.1',
        '-o', '/dev/null', '-w', '%{http_code}\n',
        '--resolve', 'shared1.test:' . $s->tls_port . ':127.0.0.1',
        '-H', 'Host: shared3.test',
        "https://shared1.test:@{[ $s->tls_port ]}/", '--next', '-skv',
        '--http1.1', '-o', '/dev/null', '-w', '%{http_code}\n',
        '--resolve', 'shared1.test:' . $s->tls_port . ':127.0.0.1',
        "https://shared1.test:@{[ $s->tls_port ]}/");
    is $out, "421\n200\n", 'curl: 421, then 200';
    like $err, qr/Connection: close/i, 'curl saw Connection: close';
    unlike $err, qr/Re-using existing connection/,
        'curl did not reuse the connection after the 421';
}

{
    # SSLVHostSNIPolicy insecure: mod_ssl serves other certificates' vhosts
    # (cert-mismatch then defaults to report; said here explicitly).
    my $s = MisdirectTest->new(name => 'keepalive-report',
        expect_log => ['MISDIRECT002'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch report");
    my $mark = $s->mark;
    my @r = $s->https(sni => 'alpha.test', requests => [
        { host => 'alpha.test' }, { host => 'beta.test' },
        { host => 'default.test' }, { host => 'alpha.test' } ]);
    is_deeply [map { $_->{status} } @r], [200, 200, 200, 200],
        'reported requests are served on the same connection';
    is_deeply [map { $_->{body} } @r],
        ["alpha.test\n", "beta.test\n", "default.test\n", "alpha.test\n"],
        'each by its own vhost';
    ok !$r[$_]{closed_after}, "kept alive after request @{[ $_ + 1 ]}"
        for 0 .. 2;
    ok $s->wait_error_log(qr/MISDIRECT002: [^\n]*request="3"[^\n]*host="default.test"/, $mark),
        'the line numbers the request on its connection';
}

done_testing;
