# SNI absent, naming no vhost, in upper case, with a trailing dot, an IP
# literal; Host with a trailing dot, an IPv6 literal; requests without a
# host; absolute-form targets whose host differs from Host; OPTIONS *.
#
# Two servers: $s keeps mod_ssl's default SSLVHostSNIPolicy secure, which
# itself refuses every request for a vhost whose certificate differs from
# the handshake's: there stock httpd's answer stands and the module
# explains it (MISDIRECT006).  On $j, SSLVHostSNIPolicy insecure makes
# mod_ssl serve those, so that the module judges the same requests itself;
# insecure makes cert-mismatch default to report, so $j rejects it
# explicitly.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $s = MisdirectTest->new(name => 'edge',
    expect_log => [qw(AH02031 AH02032 MISDIRECT006)]);
my $j = MisdirectTest->new(name => 'edge-judged',
    expect_log => [qw(AH02031 MISDIRECT001 MISDIRECT006)],
    global => "SSLVHostSNIPolicy insecure\n"
        . 'MisdirectPolicy cert-mismatch reject');
my $mark;

sub req ($host, %h) {
    my $hdr = defined $host ? "Host: $host\r\n" : '';
    my $line = $h{line} // 'GET / HTTP/1.1';
    return "$line\r\n${hdr}Connection: close\r\n\r\n";
}

sub last_line ($srv, $re) {
    return $srv->wait_error_log($re, $mark) // '';
}

# The explanation of a refusal of mod_ssl's (written at log_transaction),
# with mod_ssl's own line next to it and no judgement of the module's.
sub ssl_line ($srv, $status, $ah) {
    my $line = last_line($srv, qr/MISDIRECT006:/);
    my $log = $srv->error_log_since($mark);
    like $log, qr/\[ssl:error\] .*\Q$ah\E: /, "  mod_ssl's own $ah line";
    unlike $log, qr/MISDIRECT00[123]:/, '  the module judged nothing';
    like $line, qr/MISDIRECT006: mod_ssl answered $status: .* by="mod_ssl"/,
        "  explained: mod_ssl answered $status";
    return $line;
}

# probe() for a request mod_ssl refuses; the explanation follows the
# access_log entry that probe() waits for.
sub probe_ssl ($srv, %o) {
    my $r = probe($srv, %o);
    last_line($srv, qr/MISDIRECT006:/);
    return $r;
}

# mod_ssl's refusal, explained: its variables are those of the
# explanation, with the action reject.
sub not_judged ($r, $what) {
    ok defined $r->{access_line}, "$what: access_log has the request";
    is $r->{access}{action}, 'reject', "$what: MISDIRECT_ACTION reject";
    ok defined $r->{access}{hvhost}, "$what: MISDIRECT_HANDSHAKE_VHOST";
}

# SNI naming no vhost: mod_ssl keeps the default vhost's context.
$mark = $j->mark;
my $r = probe($j, sni => 'nosuch.test', host => 'alpha.test');
expect_case('SNI naming no vhost', $r, status => 421,
    reason => 'cert-mismatch', logno => '001');
is $r->{access}{hvhost}, 'default.test',
    'the handshake vhost is the default one, as mod_ssl chose';
like last_line($j, qr/MISDIRECT001/), qr/hint="the first request of a connection made with SNI nosuch\.test, which names no virtual host here, asks for alpha\.test.*add it as ServerName or ServerAlias"/,
    'hint: the SNI names no virtual host, the client chose SNI and Host';
$mark = $s->mark;
$r = probe_ssl($s, sni => 'nosuch.test', host => 'alpha.test');
is $r->{status}, 421, 'secure: SNI naming no vhost: mod_ssl\'s 421';
not_judged($r, 'secure');
like ssl_line($s, 421, 'AH02032'), qr/ sni="nosuch\.test" [^\n]*handshake_vhost="default\.test /,
    'secure: the explanation names the default vhost as the handshake\'s';

# Upper-case SNI: mod_ssl matches names without regard to case.
$mark = $j->mark;
$r = probe($j, sni => 'ALPHA.TEST', host => 'beta.test');
is $r->{access}{hvhost}, 'alpha.test', 'SNI in upper case selects alpha.test';
is $r->{access}{sni}, 'ALPHA.TEST', 'MISDIRECT_SNI keeps the SNI as sent';
like last_line($j, qr/MISDIRECT001/), qr/hint="the first request of a connection made with SNI ALPHA\.TEST asks for beta\.test, and no gateway/,
    'the SNI named the handshake vhost: no hint about the default vhost';
expect_case('SNI in upper case, same host', probe($s, sni => 'ALPHA.TEST',
    host => 'alpha.test'), status => 200, reason => undef, logno => undef);
$mark = $s->mark;
$r = probe_ssl($s, sni => 'ALPHA.TEST', host => 'beta.test');
is $r->{status}, 421, 'secure: SNI in upper case, Host beta.test: mod_ssl\'s 421';
like ssl_line($s, 421, 'AH02032'), qr/ sni="ALPHA\.TEST" [^\n]*handshake_vhost="alpha\.test /,
    'secure: explained with alpha.test as the handshake vhost';

# An alias of the handshake vhost, or its ServerName when that is the
# default vhost, named it: no hint about a fallback to the default.
for my $c (['www.alpha.test', 'beta.test', 'alpha.test'],
           ['default.test', 'alpha.test', 'default.test']) {
    my ($sni, $host, $h) = @$c;
    $mark = $j->mark;
    my ($st) = raw_tls($j, sni => $sni, request => req($host));
    is $st, 421, "SNI $sni + Host $host: 421";
    my $line = last_line($j, qr/MISDIRECT001/);
    like $line, qr/handshake_vhost="\Q$h\E [^\n]*hint="the first request of a connection made with SNI \Q$sni\E asks for \Q$host\E, and no gateway/,
        "SNI $sni named $h: the hint of a client that set SNI and Host apart";
    unlike $line, qr/hint="[^"]*default virtual host/,
        '... not one about the default virtual host';
}

# Trailing dot in SNI: mod_ssl does not strip it, core strips it from Host.
$mark = $j->mark;
my ($st) = raw_tls($j, sni => 'alpha.test.', request => req('alpha.test'));
is $st, 421, 'SNI "alpha.test." + Host alpha.test: 421';
my $line = last_line($j, qr/MISDIRECT001/);
like $line, qr/sni="alpha\.test\." [^\n]*handshake_vhost="default\.test /,
    'the handshake fell back to the default vhost';
like $line, qr/hint="the SNI ends in a dot/, 'hint: trailing dot';
$mark = $s->mark;
($st) = raw_tls($s, sni => 'alpha.test.', request => req('alpha.test'));
is $st, 421, 'secure: SNI "alpha.test." + Host alpha.test: mod_ssl\'s 421';
like ssl_line($s, 421, 'AH02032'), qr/sni="alpha\.test\." [^\n]*handshake_vhost="default\.test /,
    'secure: explained, the handshake on the default vhost';

# An IP literal as SNI that names no vhost.
$mark = $j->mark;
($st) = raw_tls($j, sni => '127.0.0.2', request => req('alpha.test'));
is $st, 421, 'SNI 127.0.0.2 + Host alpha.test: 421';
like last_line($j, qr/MISDIRECT001/), qr/sni="127\.0\.0\.2".*handshake_vhost="default\.test .*hint="the client sent an IP address as SNI/,
    'hint: IP address as SNI';
# 127.0.0.1 is the address every <VirtualHost> here names: mod_ssl
# selects the first, default.test, by that name, not as a fallback.
$mark = $j->mark;
($st) = raw_tls($j, sni => '127.0.0.1', request => req('alpha.test'));
is $st, 421, 'SNI 127.0.0.1 + Host alpha.test: 421';
$line = last_line($j, qr/MISDIRECT001/);
like $line, qr/cause="client-override".*sni="127\.0\.0\.1".*handshake_vhost="default\.test .*hint="the first request of a connection made with SNI 127\.0\.0\.1 asks for alpha\.test/,
    'SNI 127.0.0.1 names default.test by its address: the client chose '
    . 'SNI and Host apart';
unlike $line, qr/hint="the client sent an IP address/,
    '... not the IP-literal one';
$mark = $s->mark;
($st) = raw_tls($s, sni => '127.0.0.2', request => req('alpha.test'));
is $st, 421, 'secure: SNI 127.0.0.2 + Host alpha.test: mod_ssl\'s 421';
like ssl_line($s, 421, 'AH02032'), qr/sni="127\.0\.0\.2" /,
    'secure: explained with the SNI as sent';

# No SNI at all, like most reverse proxies.
$mark = $j->mark;
($st) = raw_tls($j, sni => undef, request => req('alpha.test'));
is $st, 421, 'no SNI + Host alpha.test: 421';
like last_line($j, qr/MISDIRECT001/), qr/checks="sni-missing:allow,cert-mismatch:reject".*sni="\(none\)".*hint="the client sent no SNI[^"]*proxy_ssl_server_name on/,
    'no SNI: both checks listed, reverse-proxy hint';
$mark = $s->mark;
($st) = raw_tls($s, sni => undef, request => req('alpha.test'));
is $st, 421, 'secure: no SNI + Host alpha.test: mod_ssl\'s 421';
like ssl_line($s, 421, 'AH02032'), qr/checks="sni-missing:allow,cert-mismatch:reject".*sni="\(none\)".*handshake_vhost="default\.test .*hint="the client sent no SNI[^"]*proxy_ssl_server_name on/,
    'secure: explained, both checks listed, reverse-proxy hint';

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
# With SNI but no Host, mod_ssl refuses with 400 (AH02031) before any
# check, whatever its SSLVHostSNIPolicy.
for my $srv ($s, $j) {
    $mark = $srv->mark;
    $r = probe_ssl($srv, sni => 'alpha.test', host => undef,
        proto => 'HTTP/1.0');
    my $name = $srv == $s ? 'secure' : 'insecure';
    is $r->{status}, 400,
        "$name: HTTP/1.0 without Host, SNI alpha.test: mod_ssl's 400";
    not_judged($r, $name);
    like ssl_line($srv, 400, 'AH02031'), qr/ reason="none" cause="unknown-host" checks="none" .*handshake_vhost="alpha\.test .*request_vhost="default\.test .*hint="the client named a host in SNI but none in the request/,
        "$name: explained as no Host, with the vhosts, blaming no check "
        . 'of the module\'s';
}

# Absolute-form target whose host differs from Host: the target wins.
$mark = $j->mark;
$r = probe($j, sni => 'alpha.test', host => 'alpha.test',
    target => 'https://beta.test/');
expect_case('absolute-form https://beta.test/ with Host alpha.test', $r,
    status => 421, reason => 'cert-mismatch', logno => '001');
like last_line($j, qr/MISDIRECT001/), qr/request_vhost="beta\.test [^\n]*host="beta\.test"/,
    'the line names the target\'s host';
$mark = $s->mark;
$r = probe_ssl($s, sni => 'alpha.test', host => 'alpha.test',
    target => 'https://beta.test/');
is $r->{status}, 421, 'secure: absolute-form https://beta.test/: mod_ssl\'s 421';
like ssl_line($s, 421, 'AH02032'), qr/request_vhost="beta\.test [^\n]*host="beta\.test"/,
    'secure: the explanation names the target\'s host';

# OPTIONS * is a request like any other.
($st) = raw_tls($s, sni => 'alpha.test',
    request => req('alpha.test', line => 'OPTIONS * HTTP/1.1'));
is $st, 200, 'OPTIONS * with matching SNI and Host: 200';
$mark = $j->mark;
($st) = raw_tls($j, sni => 'alpha.test',
    request => req('beta.test', line => 'OPTIONS * HTTP/1.1'));
is $st, 421, 'OPTIONS * for another certificate\'s host: 421';
like last_line($j, qr/MISDIRECT001/), qr/reason="cert-mismatch"/,
    '... the module\'s cert-mismatch';
$mark = $s->mark;
($st) = raw_tls($s, sni => 'alpha.test',
    request => req('beta.test', line => 'OPTIONS * HTTP/1.1'));
is $st, 421, 'secure: OPTIONS * for another certificate\'s host: mod_ssl\'s 421';
ssl_line($s, 421, 'AH02032');

done_testing;
