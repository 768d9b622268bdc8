# HTTP/2: several streams with different :authority on one connection,
# some served and some answered 421, the connection kept; h2c as well.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;

sub streams_by_authority ($res) {
    return { map { $_->{authority} => $_ } $res->{streams}->@* };
}

{
    my $s = MisdirectTest->new(name => 'h2', mpm => MisdirectTest::h2_mpm());
    my $mark = $s->mark;
    my $res = $s->h2(sni => 'shared1.test', streams => [
        map { { authority => $_, path => '/' } }
            qw(shared1.test shared2.test beta.test shared3.test a.wild.test
               shared2.test:1)
    ]);
    is $res->{alpn}, 'h2', 'ALPN h2';
    my %st = streams_by_authority($res)->%*;
    is $st{'shared1.test'}{status}, 200, 'stream for the SNI name: 200';
    is $st{'shared1.test'}{body}, "shared1.test\n", '... from shared1.test';
    is $st{'shared2.test'}{status}, 200,
        'covered name, same TLS settings (sni-host-mismatch allowed): 200';
    is $st{'shared2.test'}{body}, "shared2.test\n", '... from shared2.test';
    is $st{'beta.test'}{status}, 421,
        'name the certificate does not cover: 421 (cert-mismatch)';
    is $st{'a.wild.test'}{status}, 421, 'another certificate\'s name: 421';
    is $st{'shared3.test'}{status}, 421,
        'covered name with other TLS settings: mod_ssl answers 421';
    is $st{'shared2.test:1'}{status}, 200,
        'port-mismatch is allowed by default';
    ok $res->{connection_alive_after},
        'the connection stays usable after the 421 streams';
    is $res->{goaway}, undef, 'no GOAWAY';

    # Which stream got which line: the stream ids come from the client.
    my $log = '';
    $s->wait_error_log(qr/MISDIRECT006/, $mark);
    $log = $s->error_log_since($mark);
    my $beta_id = $st{'beta.test'}{id};
    like $log, qr/MISDIRECT001: .* reason="cert-mismatch" [^\n]*proto="h2" stream="$beta_id" request="@{[ ($beta_id + 1) \/ 2 ]}"[^\n]* sni="shared1.test"[^\n]* alpn="h2"[^\n]* host="beta.test"/,
        'the 421 for beta.test is explained with its h2 stream';
    my $s3_id = $st{'shared3.test'}{id};
    like $log, qr/MISDIRECT006: mod_ssl answered 421[^\n]*stream="$s3_id"[^\n]*tls_differs="[^"]*SSLVerifyClient: none \(default\) vs require \(/,
        'mod_ssl\'s 421 on the stream is explained with the setting that differs';
    unlike $log, qr/MISDIRECT00[12][^\n]*host="shared2.test"/,
        'the allowed reuse is not logged at warn or error';

    my $acc = $s->access_log_since($mark);
    like $acc, qr/^shared2.test 200 sni-host-mismatch allow sni-host-mismatch shared1.test shared1.test shared2.test "GET \/ HTTP\/2.0"$/m,
        'the allowed reuse is recorded in the variables';
}

{
    # Reject reuse too, and judge h2c streams on the plain port.
    my $s = MisdirectTest->new(name => 'h2-strict',
        mpm => MisdirectTest::h2_mpm(),
        global => "MisdirectPolicy sni-host-mismatch reject\n"
            . "MisdirectPolicy unknown-host reject");
    my $res = $s->h2(sni => 'a.wild.test', streams => [
        map { { authority => $_ } } qw(a.wild.test b.wild.test
            x.b.wild.test a.wild.test)
    ]);
    my @status = map { $_->{status} } $res->{streams}->@*;
    is_deeply \@status, [200, 421, 421, 200],
        'served, rejected, rejected, served again on one connection';
    ok $res->{connection_alive_after}, 'connection kept';

    my $mark = $s->mark;
    $res = $s->h2(plain => 1, streams => [
        map { { authority => $_, scheme => 'http' } }
            qw(alpha.test nosuch.test beta.test)
    ]);
    is_deeply [map { $_->{status} } $res->{streams}->@*], [200, 421, 200],
        'h2c: unknown host rejected between two served streams';
    is $res->{streams}[2]{body}, "beta.test\n", 'h2c stream for beta.test';
    ok $s->wait_error_log(qr/MISDIRECT001: .*reason="unknown-host".*proto="h2" stream="3"/, $mark),
        'h2c 421 explained with its stream';
}

done_testing;
