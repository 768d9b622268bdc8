# Every line names the most likely cause, in the terms of the client that
# caused it: the cause= field, the variable MISDIRECT_CAUSE, the counters
# by cause, and a hint that names that client's own setting.  Each cause
# is caused here the way its clients cause it: curl and openssl s_client
# setting SNI and Host apart, a client without SNI, an SNI copied from a
# Host with its port, a pool that reuses a connection for another host,
# a browser reusing an HTTP/2 connection, a gateway that rewrote Host.
# (The proxies and browsers themselves: make check-clients.)
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'causes',
    expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT002 MISDIRECT006)],
    mpm => MisdirectTest::h2_mpm(),
    loglevel => 'warn misdirect:debug ssl:info',
    global => join "\n", 'MisdirectLogLimit 0',
        'CustomLog logs/cause_log "%{MISDIRECT_CAUSE}e %{MISDIRECT_ACTION}e '
        . '%{MISDIRECT_REASON}e %U%q"',
        "<Location /misdirect-status>\n    SetHandler misdirect-status\n"
        . '</Location>');
my $port = $s->tls_port;
my $seq = 0;

sub causes () {
    my ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test', path => '/misdirect-status' }]);
    return JSON::PP->new->decode($r->{body})->{totals}{causes};
}

# The diagnosis lines logged since $mark (waiting for one), as fields.
sub lines_since ($mark) {
    $s->wait_error_log(qr/MISDIRECT00[1-8]/, $mark);
    return map { fields($_) } grep { /MISDIRECT00[1-8]/ }
        split /\n/, $s->error_log_since($mark);
}

# One case: run the client, then expect one diagnosis line with this
# cause and a hint that matches, the variable, and one more count.
sub expect_cause ($label, $cause, $hint_re, $run) {
    subtest $label => sub {
        my $before = causes();
        my $mark = $s->mark;
        my $id = 'id=' . ++$seq;
        my $status = $run->($id);
        my @f = lines_since($mark);
        my ($f) = grep { $_->{cause} ne 'none' } @f;
        ok $f, 'a diagnosis line' or return diag $s->error_log_since($mark);
        is $f->{cause}, $cause, "cause=\"$cause\"";
        like $f->{hint}, $hint_re, 'the hint names the client\'s setting';
        my $var = $s->wait_log('cause_log', qr/\Q$id\E/) // '';
        like $var, qr/^\Q$cause\E /, "MISDIRECT_CAUSE $cause"
            if (($f->{by} // '') ne 'mod_ssl');
        is causes()->{$cause} - $before->{$cause}, 1, "counted as $cause";
        note "status $status";
    };
}

sub curl_status (@args) {
    my ($rc, $out) = $s->curl('-o', '/dev/null', '-w', '%{http_code}',
        @args);
    return $out;
}

expect_cause('curl --resolve with -H Host', 'client-override',
    qr/--resolve beta\.test:PORT:ADDRESS/, sub ($id) {
        curl_status('--resolve', "alpha.test:$port:127.0.0.1",
            '-H', 'Host: beta.test', "https://alpha.test:$port/?$id");
    });

expect_cause('openssl s_client without -servername', 'client-override',
    qr/-servername beta\.test/, sub ($id) {
        my ($st, $out) = raw_tls($s, sni => 'localhost',
            request => "GET /?$id HTTP/1.1\r\nHost: beta.test\r\n"
                . "Connection: close\r\n\r\n");
        $st;
    });

expect_cause('a proxy that sends no SNI', 'no-sni',
    qr/proxy_ssl_name \$host/, sub ($id) {
        my ($r) = $s->https(sni => undef, requests => [{ host => 'alpha.test',
            path => "/?$id", headers => ['X-Forwarded-For' => '192.0.2.7'] }]);
        $r->{status};
    });

expect_cause('SNI copied from a Host with its port', 'sni-with-port',
    qr/host_only/, sub ($id) {
        my ($st) = raw_tls($s, sni => "beta.test:$port",
            request => "GET /?$id HTTP/1.1\r\nHost: beta.test:$port\r\n"
                . "X-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n");
        $st;
    });

expect_cause('a pool that reuses a connection for another host',
    'pool-reuse', qr/keepalive/, sub ($id) {
        my @r = $s->https(sni => 'a.wild.test', requests => [
            { host => 'a.wild.test', path => '/?first',
              headers => ['X-Forwarded-For' => '192.0.2.7'] },
            { host => 'x.b.wild.test', path => "/?$id",
              headers => ['X-Forwarded-For' => '192.0.2.7'] }]);
        $r[1]{status};
    });

expect_cause('a browser reusing an HTTP/2 connection', 'browser-reuse',
    qr/browsers retry on a new connection/, sub ($id) {
        my $res = $s->h2(sni => 'shared1.test', streams => [
            { authority => 'shared1.test', path => '/?first' },
            { authority => 'shared3.test', path => "/?$id" }]);
        $res->{streams}[1]{status};
    });

expect_cause('a gateway that rewrote Host', 'host-rewritten',
    qr/ProxyPreserveHost On/, sub ($id) {
        my ($r) = $s->https(sni => 'default.test', requests => [{
            host => 'default.test', path => "/?$id",
            headers => ['X-Forwarded-Host' => 'alpha.test'] }]);
        $r->{status};
    });

expect_cause('a host no vhost names', 'unknown-host', qr/ServerAlias/,
    sub ($id) {
        my ($r) = $s->https(sni => 'default.test', requests => [{
            host => 'nosuch.test', path => "/?$id" }]);
        $r->{status};
    });

# The silent misdirect: a gateway that rewrote Host is served 200 by the
# wrong vhost, and the line (at warn) says which site the page was for.
subtest 'forwarded-host: served, and said at warn' => sub {
    my $mark = $s->mark;
    my ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test',
        headers => ['X-Forwarded-Host' => 'www.alpha.test'] }]);
    is $r->{status}, 200, 'served, as stock httpd serves it';
    is $r->{body}, "default.test\n", 'by the vhost Host selected';
    my ($line) = grep { /MISDIRECT002/ } split /\n/,
        ($s->wait_error_log(qr/MISDIRECT002/, $mark) // '');
    like $line // '', qr/\[misdirect:warn\].*the request says it was forwarded for www\.alpha\.test, a name of virtual host alpha\.test/,
        'the line names the site the page was meant for';
    $mark = $s->mark;
    ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test',
        headers => ['X-Forwarded-Host' => 'elsewhere.example'] }]);
    is $r->{status}, 200, 'a forwarded name of no vhost here: served';
    sleep 0.3;
    unlike $s->error_log_since($mark), qr/forwarded-host/,
        'and not a finding';
};

unlike $s->error_log_since(0), qr/exit signal|AH00052/, 'no child crashed';
done_testing;
