# SNI absent, naming no vhost, in upper case, with a trailing dot, an IP
# literal; Host with a trailing dot, an IPv6 literal; requests without a
# host; absolute-form targets whose host differs from Host; OPTIONS *.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'edge');
my $mark;

sub req ($host, %h) {
    my $hdr = defined $host ? "Host: $host\r\n" : '';
    my $line = $h{line} // 'GET / HTTP/1.1';
    return "$line\r\n${hdr}Connection: close\r\n\r\n";
}

sub last_line ($re) {
    return $s->wait_error_log($re, $mark) // '';
}

# SNI naming no vhost: mod_ssl keeps the default vhost's context.
$mark = $s->mark;
my $r = probe($s, sni => 'nosuch.test', host => 'alpha.test');
expect_case('SNI naming no vhost', $r, status => 421,
    reason => 'cert-mismatch', logno => '001');
is $r->{access}{hvhost}, 'default.test',
    'the handshake vhost is the default one, as mod_ssl chose';
like last_line(qr/MISDIRECT001/), qr/hint="the SNI names no virtual host/,
    'hint: the SNI names no virtual host';

# Upper-case SNI: mod_ssl matches names without regard to case.
$r = probe($s, sni => 'ALPHA.TEST', host => 'beta.test');
is $r->{access}{hvhost}, 'alpha.test', 'SNI in upper case selects alpha.test';
is $r->{access}{sni}, 'ALPHA.TEST', 'MISDIRECT_SNI keeps the SNI as sent';
expect_case('SNI in upper case, same host', probe($s, sni => 'ALPHA.TEST',
    host => 'alpha.test'), status => 200, reason => undef, logno => undef);

# Trailing dot in SNI: mod_ssl does not strip it, core strips it from Host.
$mark = $s->mark;
my ($st, $raw) = raw_tls($s, sni => 'alpha.test.', request => req('alpha.test'));
is $st, 421, 'SNI "alpha.test." + Host alpha.test: 421';
my $line = last_line(qr/MISDIRECT001/);
like $line, qr/sni="alpha\.test\." [^\n]*handshake_vhost="default\.test /,
    'the handshake fell back to the default vhost';
like $line, qr/hint="the SNI ends in a dot/, 'hint: trailing dot';

# An IP literal as SNI names no vhost either.
$mark = $s->mark;
($st) = raw_tls($s, sni => '127.0.0.1', request => req('alpha.test'));
is $st, 421, 'SNI 127.0.0.1 + Host alpha.test: 421';
like last_line(qr/MISDIRECT001/), qr/sni="127\.0\.0\.1".*hint="the client sent an IP address as SNI/,
    'hint: IP address as SNI';

# No SNI at all, like most reverse proxies.
$mark = $s->mark;
($st) = raw_tls($s, sni => undef, request => req('alpha.test'));
is $st, 421, 'no SNI + Host alpha.test: 421';
like last_line(qr/MISDIRECT001/), qr/checks="sni-missing:allow,cert-mismatch:reject".*sni="\(none\)".*hint="the client sent no SNI[^"]*proxy_ssl_server_name on/,
    'no SNI: both checks listed, reverse-proxy hint';

# Trailing dot in Host.
expect_case('Host "alpha.test." is alpha.test', probe($s, sni => 'alpha.test',
    host => 'alpha.test.'), status => 200, reason => undef,
    vhost => 'alpha.test', logno => undef);

# IPv6 literal hosts on the plain port (the server listens on IPv4).
expect_case('Host [::1]: unknown, allowed', probe($s, via => 'plain',
    host => '[::1]'), status => 200, reason => 'unknown-host',
    checks => 'unknown-host', vhost => 'default.test', logno => undef);
expect_case('Host [::1]:8: unknown and another port', probe($s, via => 'plain',
    host => '[::1]:8'), status => 200, reason => 'unknown-host',
    checks => 'unknown-host,port-mismatch', logno => undef);

# No host at all.
expect_case('HTTP/1.0 without Host, no SNI: default vhost, unknown-host',
    probe($s, sni => undef, host => undef, proto => 'HTTP/1.0'),
    status => 200, reason => 'sni-missing',
    checks => 'sni-missing,unknown-host', vhost => 'default.test',
    logno => undef);
$mark = $s->mark;
$r = probe($s, sni => 'alpha.test', host => undef, proto => 'HTTP/1.0');
is $r->{status}, 421, 'HTTP/1.0 without Host, SNI alpha.test: 421';
is $r->{access}{reason}, 'cert-mismatch',
    'the default vhost answers, not the one the handshake chose';

# Absolute-form target whose host differs from Host: the target wins.
$mark = $s->mark;
$r = probe($s, sni => 'alpha.test', host => 'alpha.test',
    target => 'https://beta.test/');
expect_case('absolute-form https://beta.test/ with Host alpha.test', $r,
    status => 421, reason => 'cert-mismatch', logno => '001');
like last_line(qr/MISDIRECT001/), qr/request_vhost="beta\.test [^\n]*host="beta\.test"/,
    'the line names the target\'s host';

# OPTIONS * is a request like any other.
($st) = raw_tls($s, sni => 'alpha.test',
    request => req('alpha.test', line => 'OPTIONS * HTTP/1.1'));
is $st, 200, 'OPTIONS * with matching SNI and Host: 200';
($st) = raw_tls($s, sni => 'alpha.test',
    request => req('beta.test', line => 'OPTIONS * HTTP/1.1'));
is $st, 421, 'OPTIONS * for another certificate\'s host: 421';

done_testing;
