# The harness itself, without mod_misdirect: real name-based TLS vhosts on one
# address, clients that set SNI and Host independently, logs, reloads.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use POSIX ();
use Test::More;
use MisdirectTest;

my @TLS_NAMES = qw(default.test alpha.test beta.test shared1.test
    shared2.test a.wild.test b.wild.test);

# X-SNI shows what SNI the server saw; mod_headers writes an unset variable
# as "(null)".
my $s = MisdirectTest->new(
    mpm => MisdirectTest::h2_mpm(),    # it checks the h2 client too
    misdirect => 0,
    vhost => { 'tls:default.test' => 'Header always set X-SNI "%{SSL_TLS_SNI}s"' },
);

sub served_by ($res, $name, $what) {
    subtest $what => sub {
        is $res->{status}, 200, 'status 200' or diag explain $res;
        is $res->{body}, "$name\n", "served by $name";
    };
}

sub no_sni ($headers) {
    return ($headers->{'x-sni'} // '') =~ /^(?:|\(null\))$/;
}

subtest 'each TLS vhost answers when SNI and Host name it' => sub {
    for my $name (@TLS_NAMES) {
        served_by($s->https(sni => $name, requests => [{ host => $name }]),
            $name, $name);
    }
    served_by($s->https(sni => 'www.alpha.test',
        requests => [{ host => 'www.alpha.test' }]), 'alpha.test', 'alias');
    served_by($s->https(sni => 'x.b.wild.test',
        requests => [{ host => 'x.b.wild.test' }]), 'b.wild.test',
        'wildcard alias');
};

subtest 'shared3.test requires a client certificate' => sub {
    served_by($s->https(sni => 'shared3.test', cert => 'client',
        requests => [{ host => 'shared3.test' }]), 'shared3.test',
        'with certificate');
    # TLS 1.2 fails the handshake; TLS 1.3 the first read after it.
    my $res = eval { $s->https(sni => 'shared3.test',
        requests => [{ host => 'shared3.test' }]) };
    ok !$res || $res->{status} == 0, 'without certificate: no response'
        or diag explain $res;
    note 'failure: ', $@ || $res->{error};
};

subtest 'no SNI' => sub {
    my $res = $s->https(sni => undef, requests => [{ host => 'default.test' }]);
    served_by($res, 'default.test', 'default vhost serves Host default.test');
    ok no_sni($res->{headers}), 'server saw no SNI'
        or diag "X-SNI: $res->{headers}{'x-sni'}";

    my $control = $s->https(sni => 'default.test',
        requests => [{ host => 'default.test' }]);
    is $control->{headers}{'x-sni'}, 'default.test',
        'control: X-SNI shows an SNI that was sent';

    my $h2 = $s->h2(sni => undef, streams => [{ authority => 'default.test' }]);
    is $h2->{streams}[0]{status}, 200, 'h2 without SNI: 200';
    ok no_sni($h2->{streams}[0]{headers}), 'h2 without SNI: server saw none'
        or diag "X-SNI: $h2->{streams}[0]{headers}{'x-sni'}";
};

subtest 'plain port serves by Host' => sub {
    served_by($s->http(requests => [{ host => $_ }]), $_, $_)
        for qw(default.test alpha.test beta.test);
    served_by($s->http(requests => [{ host => 'www.alpha.test' }]),
        'alpha.test', 'alias');
};

subtest 'keep-alive: three requests on one connection' => sub {
    my @res = $s->https(sni => 'alpha.test',
        requests => [({ host => 'alpha.test' }) x 3]);
    is scalar @res, 3, 'three responses';
    served_by($res[$_], 'alpha.test', "TLS request $_") for 0 .. 2;
    is_deeply [map { $_->{closed_after} } @res], [0, 0, 0],
        'connection stayed open';

    my @names = qw(alpha.test beta.test default.test);
    @res = $s->http(requests => [map { { host => $_ } } @names]);
    served_by($res[$_], $names[$_], "plain request $_") for 0 .. 2;

    @res = $s->http(requests => [{ host => 'alpha.test',
        headers => [Connection => 'close'] }, { host => 'alpha.test' }]);
    is $res[0]{closed_after}, 1, 'Connection: close is seen as closed';
    is_deeply [@{ $res[1] }{qw(status error)}], [0, 'closed'],
        'request after the close gets no response';
};

subtest 'HTTP/2: three streams on one connection' => sub {
    my $h2 = $s->h2(sni => 'alpha.test',
        streams => [({ authority => 'alpha.test' }) x 3]);
    is $h2->{alpn}, 'h2', 'ALPN h2';
    is_deeply [map { $_->{id} } $h2->{streams}->@*], [1, 3, 5],
        'streams 1, 3, 5 of one connection';
    for my $st ($h2->{streams}->@*) {
        is $st->{status}, 200, "stream $st->{id}: 200";
        is $st->{body}, "alpha.test\n", "stream $st->{id}: served by alpha.test";
    }
    ok $h2->{connection_alive_after}, 'connection alive after';
    is $h2->{goaway}, undef, 'no GOAWAY';

    my $h2c = $s->h2(plain => 1, streams => [{ authority => 'beta.test' }]);
    is $h2c->{streams}[0]{body}, "beta.test\n", 'h2c on the plain port';
};

subtest 'curl' => sub {
    my ($rc, $out, $err) = $s->curl('https://alpha.test:' . $s->tls_port . '/');
    is $rc, 0, 'curl succeeded' or diag $err;
    is $out, "alpha.test\n", 'served by alpha.test';
};

subtest 'logs' => sub {
    my $mark = $s->mark;
    $s->https(sni => 'beta.test', requests => [{ host => 'beta.test',
        path => '/?logs' }]);
    my $line = $s->wait_access_log(qr{"GET /\?logs }, $mark);
    is $line, qq{beta.test 200 - - - - - - "GET /?logs HTTP/1.1"\n},
        'access log line, misdirect variables unset';
    ok $s->wait_error_log(qr/\[ssl:info\].*AH01964/, $mark),
        'error log since mark';
    is $s->wait_access_log(qr/never logged/, $mark, 0.2), undef,
        'wait gives up';
};

subtest 'response parser' => sub {
    # A canned server: interim response, chunked body with trailer, HEAD,
    # 204, repeated fields, and a body delimited by the close.
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Listen => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $c = $listen->accept;
        print $c "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            "Keep-Alive: timeout=5\r\n\r\n",
            "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n",
            "Keep-Alive: timeout=5\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5\r\n\r\n",
            "HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
            "until close";
        $c->flush;
        shutdown $c, 1;
        1 while sysread $c, my $discard, 65536;
        POSIX::_exit(0);    # not the test's END blocks
    }
    my @res = $s->http(port => $listen->sockport, requests => [
        { host => 'x' }, { host => 'x', method => 'HEAD' },
        ({ host => 'x' }) x 3]);
    waitpid $pid, 0;
    is_deeply [map { $_->{status} } @res], [200, 200, 204, 200, 0], 'statuses';
    is_deeply [map { $_->{body} } @res[0 .. 3]],
        ['hello world', '', '', 'until close'], 'bodies';
    is_deeply [map { $_->{closed_after} } @res], [0, 0, 0, 1, 1],
        'closed_after';
    is $res[3]{headers}{'set-cookie'}, 'a=1, b=2', 'repeated fields joined';
    is $res[4]{error}, 'closed', 'no response after the close';
};

subtest 'graceful and restart' => sub {
    for my $how (qw(graceful restart)) {
        $s->$how;
        served_by($s->https(sni => 'beta.test',
            requests => [{ host => 'beta.test' }]), 'beta.test', "after $how");
    }
};

subtest 'layout' => sub {
    ok $s->vhost_line('tls:default.test') < $s->vhost_line('tls:alpha.test'),
        'default.test is the first TLS vhost';
    open my $fh, '<', $s->conf_file or die $!;
    my @conf = <$fh>;
    like $conf[ $s->vhost_line('plain:beta.test') - 1 ],
        qr/^<VirtualHost 127\.0\.0\.1:${\ $s->plain_port }>/, 'vhost_line';
};

subtest 'configtest' => sub {
    my ($rc, $out) = MisdirectTest::configtest(misdirect => 0);
    is $rc, 0, 'standard config passes' or diag $out;
    like $out, qr/Syntax OK/, 'Syntax OK';
    ($rc, $out) = MisdirectTest::configtest(misdirect => 0,
        global => 'NoSuchDirective on');
    isnt $rc, 0, 'broken config fails';
    like $out, qr/NoSuchDirective/, 'and names the directive';
};

subtest 'a missing module is an error, not a skip' => sub {
    local $ENV{MISDIRECT_SO} = '/nonexistent/mod_misdirect.so';
    ok !eval { MisdirectTest->new; 1 }, 'new dies';
    like $@, qr/mod_misdirect not found at \/nonexistent/, 'saying why';
};

subtest 'stop leaves nothing running' => sub {
    my ($pid, $root) = ($s->pid, $s->root);
    $s->stop;
    # Gone, or a zombie that init has not reaped yet.
    my $stat = '';
    if (open my $fh, '<', "/proc/$pid/stat") { $stat = <$fh> }
    ok $stat eq '' || $stat =~ /^\d+ \(.*\) Z /s, "httpd $pid is gone";
    is qx(pgrep -f \Q$root\E), '', "no process runs from $root";
};

done_testing;
