# HTTP/2: several streams with different :authority on one connection,
# some served and some answered 421, the connection kept; h2c as well.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use Time::HiRes qw(time);

sub streams_by_authority ($res) {
    return { map { $_->{authority} => $_ } $res->{streams}->@* };
}

{
    my $s = MisdirectTest->new(name => 'h2',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)],
        mpm => MisdirectTest::h2_mpm());
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
        'another certificate\'s name: mod_ssl answers 421 (SSLVHostSNIPolicy '
        . 'secure)';
    is $st{'a.wild.test'}{status}, 421,
        'another certificate\'s name, covered by neither: mod_ssl\'s 421';
    is $st{'shared3.test'}{status}, 421,
        'covered name with other TLS settings: mod_ssl answers 421';
    is $st{'shared2.test:1'}{status}, 200,
        'port-mismatch is allowed by default';
    ok $res->{connection_alive_after},
        'the connection stays usable after the 421 streams';
    is $res->{goaway}, undef, 'no GOAWAY';

    # Which stream got which line: the stream ids come from the client.
    # mod_ssl's refusals are explained at log_transaction, one line each.
    my $log = '';
    my $deadline = time + 5;
    until (3 <= (() = ($log = $s->error_log_since($mark)) =~ /MISDIRECT006/g)
        || time > $deadline) {
        select undef, undef, undef, 0.05;
    }
    for my $name (qw(beta.test a.wild.test)) {
        my $id = $st{$name}{id};
        like $log, qr/MISDIRECT006: mod_ssl answered 421: [^\n]* reason="cert-mismatch" [^\n]*proto="h2" stream="$id" request="@{[ ($id + 1) \/ 2 ]}"[^\n]* sni="shared1.test"[^\n]* alpn="h2"[^\n]* ssl_verdict="refuse" tls_differs="[^"]*SSLCertificateFile[^\n]* host="\Q$name\E"[^\n]* by="mod_ssl"/,
            "mod_ssl's 421 for $name is explained with its h2 stream";
        like $log, qr/\[ssl:error\] [^\n]*AH02032: Hostname shared1\.test provided via SNI and hostname \Q$name\E provided via HTTP/,
            "mod_ssl's own AH02032 line for $name stands";
    }
    my $s3_id = $st{'shared3.test'}{id};
    like $log, qr/MISDIRECT006: mod_ssl answered 421[^\n]*stream="$s3_id"[^\n]*tls_differs="[^"]*SSLVerifyClient/,
        'mod_ssl\'s 421 on the stream is explained with the setting that differs';
    unlike $log, qr/MISDIRECT00[123]: [^\n]*host="(?:beta|a\.wild|shared3)\.test"/,
        'the module judges none of the streams mod_ssl refused';
    unlike $log, qr/MISDIRECT00[12][^\n]*host="shared2.test"/,
        'the allowed reuse is not logged at warn or error';

    my $acc = $s->access_log_since($mark);
    like $acc, qr/^shared2.test 200 sni-host-mismatch allow sni-host-mismatch shared1.test shared1.test shared2.test "GET \/ HTTP\/2.0"$/m,
        'the allowed reuse is recorded in the variables';
    like $acc, qr/^beta.test 421 cert-mismatch reject cert-mismatch shared1.test shared1.test beta.test "GET \/ HTTP\/2.0"$/m,
        'mod_ssl\'s 421 on a stream sets the variables of its explanation';

    # The module's own 421 on a stream: a name that a.wild.test's
    # certificate does not cover, in a vhost with the same certificate
    # files, which mod_ssl serves.
    $mark = $s->mark;
    $res = $s->h2(sni => 'a.wild.test', streams => [
        map { { authority => $_ } } qw(a.wild.test x.b.wild.test
            b.wild.test beta.test a.wild.test)
    ]);
    is_deeply [map { $_->{status} } $res->{streams}->@*],
        [200, 421, 200, 421, 200],
        'served, module\'s 421, served (reuse), mod_ssl\'s 421, served';
    ok $res->{connection_alive_after}, 'the connection stays usable';
    my $xb_id = $res->{streams}[1]{id};
    ok $s->wait_error_log(qr/MISDIRECT001: [^\n]* reason="cert-mismatch" [^\n]*proto="h2" stream="$xb_id" [^\n]* sni="a.wild.test"[^\n]* ssl_verdict="serve"[^\n]* host="x.b.wild.test"/, $mark),
        'the module\'s 421 for x.b.wild.test is explained with its h2 stream';
    my $beta_id = $res->{streams}[3]{id};
    ok $s->wait_error_log(qr/MISDIRECT006: [^\n]*stream="$beta_id" [^\n]* host="beta.test"/, $mark),
        'and mod_ssl\'s 421 for beta.test with its own';
}

{
    # Reject reuse too, and judge h2c streams on the plain port.
    my $s = MisdirectTest->new(name => 'h2-strict',
        expect_log => ['MISDIRECT001'],
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
