# The module in a server without mod_ssl (only the plain-connection checks
# apply) and in one without mod_http2.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

{
    my $s = MisdirectTest->new(name => 'no-ssl',
        expect_log => [qw(MISDIRECT001 MISDIRECT002)],
        ssl => 0, h2 => 0,
        global => 'MisdirectPolicy unknown-host report');
    like $s->error_log_since, qr/resuming normal operations/,
        'httpd without mod_ssl starts with the module';
    unlike $s->error_log_since, qr/\[ssl:|mod_ssl/, 'mod_ssl is not loaded';
    expect_case('https:// target on the plain port', probe($s, via => 'plain',
        host => 'alpha.test', target => 'https://alpha.test/'),
        status => 421, reason => 'scheme-mismatch', logno => '001');
    expect_case('http:// target is fine', probe($s, via => 'plain',
        host => 'alpha.test', target => 'http://alpha.test/'),
        status => 200, reason => undef, vhost => 'alpha.test', logno => undef);
    expect_case('unknown host, reported', probe($s, via => 'plain',
        host => 'nosuch.test'), status => 200, reason => 'unknown-host',
        action => 'report', vhost => 'default.test', logno => '002');
    expect_case('port mismatch, allowed', probe($s, via => 'plain',
        host => 'beta.test:81'), status => 200, reason => 'port-mismatch',
        action => 'allow', vhost => 'beta.test', logno => undef);
    unlike $s->error_log_since, qr/\[core:(?:error|crit|alert|emerg)\]|exit signal/,
        'no errors or crashes in error_log';
}

{
    my $s = MisdirectTest->new(name => 'no-h2',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)],
        h2 => 0);
    unlike $s->error_log_since, qr/\[http2:/, 'mod_http2 is not loaded';
    # b.wild.test has a.wild.test's certificate files (mod_ssl serves it),
    # and *.wild.test does not cover x.b.wild.test.
    expect_case('TLS checks work without mod_http2', probe($s,
        sni => 'a.wild.test', host => 'x.b.wild.test'), status => 421,
        reason => 'cert-mismatch', logno => '001');
    my $mark = $s->mark;
    my $r = probe($s, sni => 'alpha.test', host => 'beta.test');
    is $r->{status}, 421, 'other certificates: mod_ssl\'s 421';
    ok defined $r->{access_line}, '... in access_log';
    is $r->{access}{reason}, 'cert-mismatch',
        '... its variables say what the module\'s checks see';
    like $s->wait_error_log(qr/MISDIRECT006/, $mark) // '',
        qr/MISDIRECT006: mod_ssl answered 421: .* by="mod_ssl"/,
        '... and explained without mod_http2 too';
    expect_case('and accepted requests are served', probe($s,
        sni => 'beta.test', host => 'beta.test'), status => 200,
        reason => undef, vhost => 'beta.test', logno => undef);
}

done_testing;
