# Hostile and malformed request hosts: each gets the right status from the
# right party (httpd core refuses what it cannot parse, before any check;
# what it accepts is judged), nothing crashes, and another request on the
# server is not affected.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'hostile',
    expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)],
    mpm => MisdirectTest::h2_mpm());

# The status, and the error_log lines it produced ($wait: until a line
# matching it is there, as mod_ssl's refusals are explained after the
# response).
sub exchange ($req, $sni = 'alpha.test', $wait = undef) {
    my $mark = $s->mark;
    my ($st) = raw_tls($s, sni => $sni, request => $req);
    $s->wait_error_log($wait, $mark) if $wait;
    return ($st, $s->error_log_since($mark));
}

sub request ($line, @headers) {
    return join("\r\n", $line, @headers, 'Connection: close', '', '');
}

# What core refuses never reaches the module.
for my $case (
    [ 'port 0',           request('GET / HTTP/1.1', 'Host: alpha.test:0') ],
    [ 'port 65536',       request('GET / HTTP/1.1', 'Host: alpha.test:65536') ],
    [ 'an empty Host',    request('GET / HTTP/1.1', 'Host:') ],
    [ 'two Host headers', request('GET / HTTP/1.1', 'Host: alpha.test',
                                  'Host: beta.test') ],
    [ 'a quote in Host',  request('GET / HTTP/1.1', 'Host: al"pha.test') ],
) {
    my ($what, $req) = @$case;
    my ($st, $log) = exchange($req);
    is $st, 400, "Host with $what: 400 from httpd core";
    unlike $log, qr/MISDIRECT00\d/, "... and no misdirect line for it";
}

my ($st, $log) = exchange(request('GET / HTTP/1.1', 'Host: ALPHA.test.'));
is $st, 200, 'Host in mixed case with a trailing dot is alpha.test: 200';

# b.wild.test has a.wild.test's certificate files, so mod_ssl serves it on
# a.wild.test's handshake; *.wild.test does not cover x.b.wild.test: the
# module's own cert-mismatch.  beta.test has other certificate files:
# mod_ssl's own 421 on alpha.test's handshake, which the module explains.
($st, $log) = exchange(request('CONNECT x.b.wild.test:443 HTTP/1.1',
    'Host: x.b.wild.test:443'), 'a.wild.test');
is $st, 421, 'CONNECT to a host the certificate does not cover (no mod_proxy): 421';
like $log, qr/MISDIRECT001: .*reason="cert-mismatch".*host="x\.b\.wild\.test"/,
    '... judged by the authority it names';
($st, $log) = exchange(request('CONNECT beta.test:443 HTTP/1.1',
    'Host: beta.test:443'), 'alpha.test', qr/MISDIRECT006/);
is $st, 421, 'CONNECT to another certificate\'s host: mod_ssl\'s 421';
like $log, qr/AH02032: .*hostname beta\.test provided via HTTP/,
    '... mod_ssl read the authority it names';
like $log, qr/MISDIRECT006: mod_ssl answered 421: .*host="beta\.test".* by="mod_ssl"/,
    '... and the explanation names it too';

($st, $log) = exchange(request('GET https://x.b.wild.test/ HTTP/1.1',
    'Host: a.wild.test'), 'a.wild.test');
is $st, 421, 'absolute-form URL for x.b.wild.test with Host a.wild.test: 421';
like $log, qr/MISDIRECT001: .*host="x\.b\.wild\.test" host_header="x\.b\.wild\.test"/,
    '... the target wins, as core replaces the Host header';
($st, $log) = exchange(request('GET https://beta.test/ HTTP/1.1',
    'Host: alpha.test'), 'alpha.test', qr/MISDIRECT006/);
is $st, 421, 'absolute-form URL for beta.test with Host alpha.test: '
    . 'mod_ssl\'s 421';
like $log, qr/MISDIRECT006: .*host="beta\.test" host_header="beta\.test"/,
    '... the target wins for mod_ssl too';

# A Host of over 6,000 bytes, which core accepts: the line keeps every field
# after it (by=, hint=), the host shortened with its length.
my $long = join('.', ('a' x 60) x 100) . '.wild.test';
($st, $log) = exchange(request('GET / HTTP/1.1', "Host: $long"),
    'alpha.test', qr/MISDIRECT006/);
is $st, 421, 'a 6,109-byte Host on alpha.test\'s handshake: mod_ssl\'s 421';
my ($line) = grep { /MISDIRECT006/ } split /\n/, $log;
like $line // '', qr/ host="a{60}\.[a.]+\.\.\.\(@{[length $long]} bytes\)" /,
    '... the host shortened, with its length';
like $line // '', qr/ by="mod_ssl" hint="[^"]+"$/,
    '... and the line ends with all its fields';
ok length($line // '') < 4000, '... in less than half the line limit';

# HTTP/2: :authority and a host header that disagree.  mod_http2 takes
# :authority (RFC 9113 8.3.1), and so does the check.
my $res = $s->h2(sni => 'a.wild.test', streams => [
    { authority => 'a.wild.test', headers => [host => 'x.b.wild.test'] },
    { authority => 'x.b.wild.test', headers => [host => 'a.wild.test'] },
]);
is_deeply [map { $_->{status} } $res->{streams}->@*], [200, 421],
    'h2: :authority decides, whatever the host header says';
ok $res->{connection_alive_after}, 'h2: the connection is kept';
$res = $s->h2(sni => 'alpha.test', streams => [
    { authority => 'alpha.test', headers => [host => 'beta.test'] },
    { authority => 'beta.test', headers => [host => 'alpha.test'] },
]);
is_deeply [map { $_->{status} } $res->{streams}->@*], [200, 421],
    'h2: :authority decides for mod_ssl too (its 421 for beta.test)';
ok $res->{connection_alive_after}, 'h2: the connection is kept';

# After all this, the server serves as before, and no child died.
my ($r) = $s->https(sni => 'beta.test', requests => [{ host => 'beta.test' }]);
is $r->{status}, 200, 'a normal request afterwards: 200';
is $r->{body}, "beta.test\n", '... from its vhost';
unlike $s->error_log_since, qr/exit signal|Segmentation|AH00052/,
    'no child crashed';

done_testing;
