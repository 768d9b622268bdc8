# Every line says who answered and why: a 421 from the handler or a
# proxied backend is never blamed on mod_ssl; a relaxed SSLVHostSNIPolicy
# relaxes cert-mismatch's default with it; MisdirectTrustedProxy judges the
# TCP peer, not the address mod_remoteip takes from a PROXY preamble; the
# variables reach an ErrorDocument 421 page; an h2c upgrade is checked
# once; the reason and the hint describe the check that decided.
use v5.36;
use Test::More;
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $STATUS = "<Location /misdirect-status>\n"
    . "    SetHandler misdirect-status\n</Location>";

sub totals ($s) {
    my ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test', path => '/misdirect-status' }]);
    return JSON::PP->new->decode($r->{body})->{totals};
}

subtest 'a 421 from the handler or a backend is the handler\'s' => sub {
    my $s = MisdirectTest->new(name => 'attr-handler',
        expect_log => [qw(MISDIRECT002 MISDIRECT007)],
        modules => [qw(rewrite proxy proxy_http)],
        global => $STATUS,
        vhost => {
            'tls:alpha.test' => "RewriteEngine On\n"
                . "RewriteRule ^/gone - [R=421]\n"
                . "ProxyPass /backend http://127.0.0.1:\@PLAIN_PORT\@/gone",
            'plain:default.test' => "RewriteEngine On\n"
                . "RewriteRule ^/gone - [R=421]",
        });
    my $before = totals($s);
    my $mark = $s->mark;
    my ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'alpha.test', path => '/gone' }]);
    is $r->{status}, 421, 'RewriteRule [R=421] answers 421';
    is $r->{headers}{connection}, 'close',
        'a 421 from httpd\'s error path closes the HTTP/1.1 connection';
    my $line = $s->wait_error_log(qr/MISDIRECT007/, $mark) // '';
    like $line, qr/MISDIRECT007: the request's handler answered 421, not mod_ssl or mod_misdirect/,
        'explained as the handler\'s';
    is fields($line)->{by}, 'handler', 'by="handler"';
    like fields($line)->{hint}, qr/a RewriteRule \[R=421\]/,
        'the hint points at the configuration';
    unlike $s->error_log_since($mark), qr/MISDIRECT006|mod_ssl answered/,
        'never as mod_ssl\'s';

    $mark = $s->mark;
    ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'alpha.test', path => '/backend' }]);
    is $r->{status}, 421, 'a proxied backend\'s 421 is passed on';
    $line = $s->wait_error_log(qr/MISDIRECT007: a proxied backend/, $mark)
        // '';
    my $f = fields($line);
    is $f->{request}, 1, 'the first request of its connection, though '
        . 'the connection goes on';
    is $f->{backend}, 'http://127.0.0.1:' . $s->plain_port . '/gone',
        'names the backend URL';
    is $f->{preserve_host}, 'off', 'and ProxyPreserveHost';
    is $f->{handler}, 'proxy-server', 'and the handler';
    like $f->{hint}, qr/the backend decided this 421 itself.*ProxyPreserveHost/,
        'the hint points at the backend';
    my $after = totals($s);
    # Three 421s: RewriteRule on alpha, the backend's own (a plain vhost
    # on this server), and the front's.
    is $after->{other_421} - $before->{other_421}, 3,
        'each counted as other_421';
    is $after->{mod_ssl_421} - $before->{mod_ssl_421}, 0,
        'none as mod_ssl_421';
};

subtest 'SSLVHostSNIPolicy insecure: cert-mismatch is reported' => sub {
    my $s = MisdirectTest->new(name => 'attr-insecure',
        expect_log => ['MISDIRECT002'],
        global => 'SSLVHostSNIPolicy insecure');
    my @notice = grep { /MISDIRECT014/ } split /\n/, $s->error_log_since(0);
    is scalar(@notice), 1, 'one startup notice';
    like $notice[0] // '', qr/MISDIRECT014: SSLVHostSNIPolicy insecure: .*cert-mismatch defaults to report .* in 8 virtual host\(s\)/,
        'says which default changed, why, and for the 8 TLS vhosts';
    my $r = probe($s, sni => undef, host => 'beta.test');
    expect_case('no SNI, Host beta.test: served and reported', $r,
        status => 200, reason => 'cert-mismatch', action => 'report',
        vhost => 'beta.test', logno => '002');

    my $t = MisdirectTest->new(name => 'attr-insecure-reject',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . 'MisdirectPolicy cert-mismatch reject');
    unlike $t->error_log_since(0), qr/MISDIRECT014/,
        'no notice when every vhost sets the action';
    $r = probe($t, sni => undef, host => 'beta.test');
    expect_case('an explicit MisdirectPolicy still wins', $r,
        status => 421, reason => 'cert-mismatch', action => 'reject',
        logno => '001');

    my $u = MisdirectTest->new(name => 'attr-secure');
    unlike $u->error_log_since(0), qr/MISDIRECT014/,
        'no notice under the default policy';
};

subtest 'MisdirectTrustedProxy judges the TCP peer, not PROXY\'s' => sub {
    my $proxied = sub ($s, $host) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $s->tls_port, Proto => 'tcp', Timeout => 10)
            or die "connect: $!";
        print $sock "PROXY TCP4 203.0.113.9 127.0.0.1 5555 "
            . $s->tls_port . "\r\n";
        IO::Socket::SSL->start_SSL($sock, SSL_hostname => '',
            SSL_verify_mode => SSL_VERIFY_NONE,
            SSL_alpn_protocols => ['http/1.1'])
            or die "TLS after PROXY: $IO::Socket::SSL::SSL_ERROR";
        print $sock "GET / HTTP/1.1\r\nHost: $host\r\n"
            . "Connection: close\r\n\r\n";
        local $/;
        my $raw = <$sock> // '';
        my ($status) = $raw =~ m{^HTTP/1\.1 (\d{3})};
        return $status // 0;
    };
    my $common = "SSLVHostSNIPolicy insecure\n"
        . "MisdirectPolicy cert-mismatch reject\nRemoteIPProxyProtocol On";

    my $s = MisdirectTest->new(name => 'attr-peer',
        modules => ['remoteip'],
        global => "$common\nMisdirectTrustedProxy 127.0.0.1");
    my $mark = $s->mark;
    is $proxied->($s, 'beta.test'), 200,
        'the TCP peer 127.0.0.1 is trusted: no SNI, Host beta.test served';
    $s->wait_access_log(qr/beta\.test/, $mark);
    unlike $s->error_log_since($mark), qr/MISDIRECT001/, 'nothing rejected';

    my $t = MisdirectTest->new(name => 'attr-claimed',
        expect_log => ['MISDIRECT001'],
        modules => ['remoteip'],
        global => "$common\nMisdirectTrustedProxy 203.0.113.0/24");
    $mark = $t->mark;
    is $proxied->($t, 'beta.test'), 421,
        'the address the PROXY preamble claims is not trusted';
    my $line = $t->wait_error_log(qr/MISDIRECT001/, $mark) // '';
    my $f = fields($line);
    like $f->{client}, qr/^127\.0\.0\.1:\d+$/,
        'client is the TCP peer, who connected';
    is $f->{useragent}, '203.0.113.9:5555',
        'useragent is the address the preamble claims';
};

subtest 'TrustedProxy refuses ranges that mean something else' => sub {
    for my $bad ('10', '10.0.0.1/8', '192.168.1.0/255.0.255.0') {
        my ($rc, $out) = MisdirectTest::configtest(name => 'attr-cidr',
            global => "MisdirectTrustedProxy $bad");
        isnt $rc, 0, "'MisdirectTrustedProxy $bad' fails configtest";
        like $out, qr/MisdirectTrustedProxy: \Q$bad\E: /,
            '... naming the directive and the value';
    }
    my ($rc, $out) = MisdirectTest::configtest(name => 'attr-cidr-ok',
        global => 'MisdirectTrustedProxy 10.0.0.0/8 192.0.2.7 '
            . '2001:db8::/32 172.16.0.0/255.240.0.0');
    is $rc, 0, 'whole addresses and network ranges pass' or diag $out;
};

subtest 'ErrorDocument 421 sees REDIRECT_MISDIRECT_*' => sub {
    my $s = MisdirectTest->new(name => 'attr-errordoc',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch reject\n"
            . "ErrorDocument 421 /misdirected.html\n"
            . "<Location /misdirected.html>\n"
            . "    Header always set X-Misdirect-Reason "
            . "\"%{REDIRECT_MISDIRECT_REASON}e\"\n"
            . "    Header always set X-Misdirect-Sni "
            . "\"%{REDIRECT_MISDIRECT_SNI}e\"\n"
            . "</Location>\n"
            # The documented log of findings, whose %< reads the
            # request before the page's internal redirect.
            . "LogFormat \"%h %v %>s \\\"%r\\\" %<{MISDIRECT_REASON}e "
            . "%<{MISDIRECT_ACTION}e\" misdirect_doc\n"
            . "CustomLog logs/findings.log misdirect_doc "
            . "\"env=MISDIRECT_REASON\"",
        mpm => MisdirectTest::h2_mpm());    # it speaks HTTP/2 too
    open my $fh, '>', $s->docroot('beta.test') . '/misdirected.html' or die;
    print $fh "wrong door\n";
    close $fh;
    my ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'beta.test' }]);
    is $r->{status}, 421, 'answered 421';
    is $r->{body}, "wrong door\n", 'the local ErrorDocument page';
    is $r->{headers}{'x-misdirect-reason'}, 'cert-mismatch',
        'REDIRECT_MISDIRECT_REASON';
    is $r->{headers}{'x-misdirect-sni'}, 'alpha.test',
        'REDIRECT_MISDIRECT_SNI';
    like $r->{headers}{connection}, qr/\bclose\b/,
        'the connection still closes after the page';
    my $findings = $s->wait_log('findings.log', qr/ 421 /) // '';
    like $findings, qr/^127\.0\.0\.1 beta\.test 421 "GET \/ HTTP\/1\.1" cert-mismatch reject$/m,
        'the documented CustomLog has the reason and the action';

    my $h2 = $s->h2(sni => 'alpha.test', streams => [
        { authority => 'beta.test' }, { authority => 'alpha.test' } ]);
    is $h2->{streams}[0]{status}, 421, 'h2: the stream gets 421';
    is $h2->{streams}[0]{body}, "wrong door\n", 'with the page';
    is $h2->{streams}[1]{status}, 200,
        'and the connection serves the next stream';
};

subtest 'every 421 from httpd\'s error path closes HTTP/1.1' => sub {
    my $page = "ErrorDocument 421 /misdirected.html\n";
    my $s = MisdirectTest->new(name => 'attr-close',
        expect_log => [qw(AH02032 MISDIRECT006 MISDIRECT007)],
        modules => ['rewrite'], global => $page,
        vhost => { 'tls:alpha.test' => "RewriteEngine On\n"
            . 'RewriteRule ^/gone - [R=421]' });
    for my $v (qw(alpha.test beta.test)) {
        open my $fh, '>', $s->docroot($v) . '/misdirected.html' or die;
        print $fh "wrong door\n";
        close $fh;
    }
    my ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'alpha.test', path => '/gone' }]);
    is $r->{status}, 421, 'RewriteRule [R=421] with an ErrorDocument page';
    is $r->{body}, "wrong door\n", 'the page';
    like $r->{headers}{connection} // '', qr/\bclose\b/, 'Connection: close';
    ok $r->{closed_after}, 'and the connection closes';
    ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'beta.test' }]);
    is $r->{status}, 421, 'mod_ssl\'s 421 with an ErrorDocument page';
    like $r->{headers}{connection} // '', qr/\bclose\b/, 'Connection: close';

    # Misdirect Off leaves every answer as stock httpd gives it.
    my $t = MisdirectTest->new(name => 'attr-off',
        # Misdirect Off: mod_ssl's 421 stands unexplained.
        expect_log => ['AH02032'],
        global => "Misdirect Off\n$page");
    ($r) = $t->https(sni => 'alpha.test',
        requests => [{ host => 'beta.test' }]);
    is $r->{status}, 421, 'Misdirect Off: mod_ssl\'s 421';
    unlike $r->{headers}{connection} // '', qr/\bclose\b/,
        'without a Connection: close of the module\'s';
};

subtest 'an h2c upgrade is checked and counted once' => sub {
    my $s = MisdirectTest->new(name => 'attr-h2c',
        expect_log => ['MISDIRECT002'],
        global => "MisdirectPolicy unknown-host report\n$STATUS",
        mpm => MisdirectTest::h2_mpm());
    my $before = totals($s);
    my $mark = $s->mark;
    my ($rc, $out, $err) = $s->curl('--http2', '-o', '/dev/null',
        '-w', '%{http_code} %{http_version}', '-H', 'Host: nosuch.test',
        'http://127.0.0.1:' . $s->plain_port . '/');
    is $out, '200 2', 'served over h2c after the upgrade' or diag $err;
    $s->wait_access_log(qr/nosuch|default\.test/, $mark);
    my @lines = grep { /MISDIRECT002/ } split /\n/, $s->error_log_since($mark);
    is scalar(@lines), 1, 'one report line' or diag join "\n", @lines;
    my $after = totals($s);
    is $after->{reported} - $before->{reported}, 1, 'counted once';

    # An upgrade on the connection's second request: curl sends the first
    # over HTTP/1.1 only when told to, so ask with a raw socket.
    $before = $after;
    $mark = $s->mark;
    my @r = $s->http(requests => [ { host => 'default.test' },
        { host => 'nosuch.test', headers => [ Connection => 'Upgrade, '
            . 'HTTP2-Settings', Upgrade => 'h2c', 'HTTP2-Settings' =>
            'AAMAAABkAAQAoAAAAAIAAAAA' ] } ]);
    is $r[1]{status}, 101, 'the second request switches to h2c';
    $s->wait_access_log(qr/nosuch/, $mark);
    @lines = grep { /MISDIRECT002/ } split /\n/, $s->error_log_since($mark);
    is scalar(@lines), 1, 'one report line for it' or diag join "\n", @lines;
    is totals($s)->{reported} - $before->{reported}, 1, 'counted once';
};

subtest 'the reason is the check that decided the action' => sub {
    my $s = MisdirectTest->new(name => 'attr-reason',
        expect_log => ['MISDIRECT002'],
        global => 'MisdirectPolicy unknown-host report');
    my $r = probe($s, sni => undef, host => 'typo.test');
    expect_case('no SNI (allowed), unknown host (reported)', $r,
        status => 200, reason => 'unknown-host', action => 'report',
        checks => 'sni-missing,unknown-host', logno => '002');
    my ($line) = grep { /MISDIRECT002/ } split /\n/, $r->{error_log};
    my $f = fields($line // '');
    is $f->{checks}, 'sni-missing:allow,unknown-host:report',
        'every fired check with its action';
    like $f->{hint}, qr/no virtual host on this address is named/,
        'the hint is unknown-host\'s, not the one about proxies';
};

subtest 'hints match the facts' => sub {
    my $s = MisdirectTest->new(name => 'attr-hints',
        expect_log => ['MISDIRECT002'],
        loglevel => 'warn misdirect:debug ssl:info',
        global => 'MisdirectPolicy sni-host-mismatch report',
        vhost => { 'tls:alpha.test' => 'ServerAlias 127.0.0.1' });
    my $r = probe($s, sni => 'shared1.test', host => 'shared2.test');
    is $r->{status}, 200, 'reuse between vhosts of one certificate: served';
    my ($line) = grep { /MISDIRECT002/ } split /\n/, $r->{error_log};
    my $f = fields($line // '');
    is $f->{ssl_verdict}, 'serve', 'the model says mod_ssl serves it';
    unlike $f->{hint}, qr/same TLS settings/,
        'no advice to make equal settings equal';
    like $f->{hint}, qr/legitimate/, 'the hint says the reuse is legitimate';

    # An IP literal SNI that is an alias of alpha.test selects alpha.test;
    # mod_ssl serves the cross request only under a relaxed policy.
    my $t = MisdirectTest->new(name => 'attr-hints-ip',
        expect_log => ['MISDIRECT002'],
        global => 'SSLVHostSNIPolicy insecure',
        vhost => { 'tls:alpha.test' => 'ServerAlias 127.0.0.1' });
    my $mark = $t->mark;
    my ($st) = raw_tls($t, sni => '127.0.0.1', request => "GET / HTTP/1.1\r\n"
        . "Host: beta.test\r\nConnection: close\r\n\r\n");
    is $st, 200, 'IP SNI alias of alpha.test, Host beta.test: reported';
    $line = $t->wait_error_log(qr/MISDIRECT002/, $mark) // '';
    $f = fields($line);
    like $f->{handshake_vhost}, qr/^alpha\.test /,
        'the handshake vhost is the one the IP selects';
    unlike $f->{hint}, qr/default/, 'not described as the default vhost';

    # A name the certificate covers but no vhost has: the default vhost
    # answers, mod_ssl refuses it; the fix is a ServerAlias.
    my $u = MisdirectTest->new(name => 'attr-hints-nohost',
        expect_log => [qw(AH02032 MISDIRECT006)]);
    $mark = $u->mark;
    my ($r2) = $u->https(sni => 'a.wild.test',
        requests => [{ host => 'zz.wild.test' }]);
    is $r2->{status}, 421, 'a covered name that no vhost has: mod_ssl\'s 421';
    $line = $u->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like fields($line)->{hint}, qr/the host names no virtual host on this address .*add the name to the vhost it belongs to/,
        'the hint says to give the name to its vhost';

    # Plain HTTP on the TLS port: no handshake, and the line says so.
    $mark = $u->mark;
    my ($r3) = $u->http(port => $u->tls_port,
        requests => [{ host => 'alpha.test' }]);
    is $r3->{status}, 400, 'plain HTTP on the TLS port: mod_ssl\'s 400';
    $line = $u->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    is fields($line)->{handshake_vhost}, '(none: not TLS)',
        'no handshake vhost is claimed';
};

done_testing;
