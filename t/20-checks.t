# Each of the seven checks fires on the request that should fire it, alone,
# and does not fire on a clean request; each action (reject, report,
# allow), the documented defaults (also where SSLVHostSNIPolicy is relaxed),
# Misdirect Off / ReportOnly; and a request that mod_ssl refuses itself
# keeps stock httpd's answer and is explained, not judged: its variables
# say what the module's checks see, its line that mod_ssl answered.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# Requests that fire exactly one check each, against the standard layout.
# Each is one that mod_ssl serves under its default SSLVHostSNIPolicy
# secure (R = H, or two vhosts with the same certificate files and TLS
# settings), so that the module's own check decides it.
my @CASES = (
    [ 'scheme-mismatch' => via => 'plain', host => 'alpha.test',
      target => 'https://alpha.test/', vhost => 'alpha.test' ],
    [ 'scheme-mismatch' => sni => 'alpha.test', host => 'alpha.test',
      target => 'http://alpha.test/', vhost => 'alpha.test' ],
    [ 'sni-missing' => sni => undef, host => 'default.test',
      vhost => 'default.test' ],
    # R = b.wild.test (ServerAlias *.b.wild.test) has a.wild.test's
    # certificate files: *.wild.test covers one label, not x.b.wild.test.
    [ 'cert-mismatch' => sni => 'a.wild.test', host => 'x.b.wild.test',
      vhost => 'b.wild.test' ],
    [ 'sni-host-mismatch' => sni => 'shared1.test', host => 'shared2.test',
      vhost => 'shared2.test' ],
    [ 'unknown-host' => via => 'plain', host => 'nosuch.test',
      vhost => 'default.test' ],
    [ 'unknown-host' => sni => 'default.test', host => 'nosuch.test',
      vhost => 'default.test' ],
    [ 'port-mismatch' => via => 'plain', host => 'alpha.test:1',
      vhost => 'alpha.test' ],
    [ 'port-mismatch' => sni => 'alpha.test', host => 'alpha.test:443',
      vhost => 'alpha.test' ],
    # A gateway rewrote Host to default.test (beta.test) but forwarded the
    # client's alpha.test, another vhost of the address.
    [ 'forwarded-host' => sni => 'default.test', host => 'default.test',
      headers => ['X-Forwarded-Host' => 'alpha.test:8443'],
      vhost => 'default.test' ],
    [ 'forwarded-host' => via => 'plain', host => 'beta.test',
      headers => ['Forwarded' => 'for=192.0.2.1;host="www.alpha.test"'],
      vhost => 'beta.test' ],
);
my @CHECKS = qw(scheme-mismatch sni-missing cert-mismatch sni-host-mismatch
    unknown-host port-mismatch forwarded-host);
my %DEFAULT = ('scheme-mismatch' => 'reject', 'cert-mismatch' => 'reject',
    'forwarded-host' => 'report');
# Where the administrator relaxed mod_ssl's SSLVHostSNIPolicy on purpose.
my %RELAXED = (%DEFAULT, 'cert-mismatch' => 'report');
my %LOGNO = (reject => '001', report => '002', allow => undef,
    'would-reject' => '008');

sub run_cases ($s, $label, $action_of) {
    for my $c (@CASES) {
        my ($check, %o) = @$c;
        my $vhost = delete $o{vhost};
        my $action = $action_of->($check);
        my $r = probe($s, %o);
        my $desc = join ' ', $check, map {
            "$_=" . ($o{$_} // 'none') } grep { !/^(?:via|headers)$/ }
            sort keys %o;
        expect_case("$label: $desc", $r,
            status => $action eq 'reject' ? 421 : 200,
            reason => $check, action => $action, checks => $check,
            logno  => $LOGNO{$action},
            ($action eq 'reject' ? () : (vhost => $vhost)));
    }
}

sub clean_requests ($s, $label) {
    expect_case("$label: SNI and Host agree", probe($s, sni => 'alpha.test',
        host => 'alpha.test'), status => 200, reason => undef,
        action => undef, checks => undef, vhost => 'alpha.test',
        logno => undef);
    expect_case("$label: plain request for a known host", probe($s,
        via => 'plain', host => 'www.alpha.test'), status => 200,
        reason => undef, vhost => 'alpha.test', logno => undef);
    expect_case("$label: explicit port equal to the connection's",
        probe($s, via => 'plain', host => 'beta.test:' . $s->plain_port),
        status => 200, reason => undef, vhost => 'beta.test',
        logno => undef);
}

# probe() for a request that mod_ssl refuses: the module explains it at
# log_transaction, just after the access_log entry that probe() waits for.
sub probe_ssl ($s, %o) {
    my $mark = $s->mark;
    my $r = probe($s, %o);
    $s->wait_error_log(qr/MISDIRECT006:/, $mark);
    $r->{error_log} = $s->error_log_since($mark);
    return $r;
}

# Stock httpd's answer where mod_ssl refuses a request: its status and
# AH02032 line stand, the module judged nothing (no variable, no
# MISDIRECT001/002/003) and wrote one explanation, MISDIRECT006.
sub expect_mod_ssl_421 ($name, $r, %e) {
    subtest $name => sub {
        is $r->{status}, 421, 'status 421' or diag $r->{raw} // $r->{error};
        like $r->{body}, qr/<title>421 Misdirected Request<\/title>/,
            'stock httpd\'s 421 page';
        is $r->{headers}{connection}, 'close',
            'HTTP/1.x 421 says Connection: close';
        ok $r->{closed_after}, 'and the connection is closed';
        ok defined $r->{access_line}, 'access_log has the request' or return;
        # The variables of the refusal: the action is mod_ssl's, reason
        # and checks what the module's checks see.
        is $r->{access}{reason}, $e{reason}, "MISDIRECT_REASON $e{reason}";
        is $r->{access}{action}, 'reject', 'MISDIRECT_ACTION reject';
        is $r->{access}{checks}, join(',', map { (split /:/)[0] }
            split /,/, $e{checks}), 'MISDIRECT_CHECKS';
        ok defined $r->{access}{rvhost}, 'MISDIRECT_REQUEST_VHOST set';
        like $r->{error_log}, qr/\[ssl:error\] .*AH02032: /,
            'mod_ssl\'s own AH02032 line';
        unlike $r->{error_log}, qr/MISDIRECT00[123]:/,
            'no MISDIRECT001, 002 or 003 line';
        my @lines = grep { /\[misdirect:(?:error|warn)\]/ }
            split /\n/, $r->{error_log};
        is scalar(@lines), 1, 'one explanation line';
        my $line = $lines[0] // '';
        like $line, qr/\[misdirect:error\] .*MISDIRECT006: mod_ssl answered 421: /,
            'MISDIRECT006 at error';
        like $line, qr/ by="mod_ssl"/, 'by="mod_ssl"';
        like $line, qr/ reason="\Q$e{reason}\E" cause="[a-z-]+" checks="\Q$e{checks}\E" /,
            "what its checks see: $e{checks}";
        my $differs = $e{differs} // 'SSLCertificateFile';
        like $line, qr/ ssl_policy="secure" ssl_verdict="refuse" tls_differs="[^"]*\Q$differs\E/,
            "mod_ssl's policy, verdict and what differs ($differs)";
    };
}

{
    my $s = MisdirectTest->new(name => 'checks-default',
        expect_log => [qw(MISDIRECT001 MISDIRECT002 MISDIRECT006 AH02032)]);
    clean_requests($s, 'defaults');
    run_cases($s, 'defaults', sub ($c) { $DEFAULT{$c} // 'allow' });

    my $r = probe($s, sni => 'a.wild.test', host => 'x.b.wild.test');
    is $r->{access}{sni}, 'a.wild.test', 'MISDIRECT_SNI is the SNI sent';
    is $r->{access}{hvhost}, 'a.wild.test', 'MISDIRECT_HANDSHAKE_VHOST';
    is $r->{access}{rvhost}, 'b.wild.test', 'MISDIRECT_REQUEST_VHOST';
    $r = probe($s, sni => undef, host => 'default.test');
    is $r->{access}{sni}, undef, 'no SNI: MISDIRECT_SNI unset';
    is $r->{access}{hvhost}, 'default.test',
        'no SNI: the handshake vhost is the default one';

    # Vhosts with other certificate files: mod_ssl's SSLVHostSNIPolicy
    # secure refuses before the module's check runs, with or without SNI.
    expect_mod_ssl_421('cert-mismatch between other certificates: '
        . 'mod_ssl\'s 421', probe_ssl($s, sni => 'alpha.test',
        host => 'beta.test'), reason => 'cert-mismatch',
        checks => 'cert-mismatch:reject');
    expect_mod_ssl_421('no SNI, R=alpha.test: mod_ssl\'s 421',
        probe_ssl($s, sni => undef, host => 'alpha.test'),
        reason => 'cert-mismatch',
        checks => 'sni-missing:allow,cert-mismatch:reject');
    expect_mod_ssl_421('sni-host-mismatch, other TLS settings (shared3 '
        . 'requires client certificates): mod_ssl\'s 421',
        probe_ssl($s, sni => 'shared1.test', host => 'shared3.test'),
        reason => 'sni-host-mismatch', checks => 'sni-host-mismatch:allow',
        differs => 'SSLVerifyClient');
}

# SSLVHostSNIPolicy insecure or authonly: mod_ssl serves vhosts with other
# certificates on purpose, and cert-mismatch follows with report; the other
# defaults stay, an explicit policy still wins, and a notice says so.
for my $policy (qw(insecure authonly)) {
    my $s = MisdirectTest->new(name => "checks-relaxed-$policy",
        global => "SSLVHostSNIPolicy $policy",
        # authonly still keeps shared3.test (client certificates) from
        # the default vhost's clients: the startup lint says so.
        expect_log => [qw(MISDIRECT001 MISDIRECT002),
            $policy eq 'authonly' ? 'MISDIRECT011' : ()],
        vhost => { 'tls:default.test' =>
            'MisdirectPolicy cert-mismatch reject' });
    my @notice = grep { /MISDIRECT014/ } split /\n/, $s->error_log_since;
    is scalar(@notice), 1, "$policy: one startup notice";
    like $notice[0] // '', qr/\[misdirect:notice\] .*MISDIRECT014: SSLVHostSNIPolicy $policy: .*cert-mismatch defaults to report .*MisdirectPolicy cert-mismatch reject/,
        "$policy: it names the policy, the new default and the way back";
    clean_requests($s, "relaxed $policy");
    run_cases($s, "relaxed $policy", sub ($c) { $RELAXED{$c} // 'allow' });
    expect_case("relaxed $policy: other certificates, reported and served",
        probe($s, sni => 'alpha.test', host => 'beta.test'), status => 200,
        reason => 'cert-mismatch', action => 'report',
        checks => 'cert-mismatch', vhost => 'beta.test', logno => '002');
    expect_case("relaxed $policy: an explicit reject in R still wins",
        probe($s, sni => 'alpha.test', host => 'default.test'),
        status => 421, reason => 'cert-mismatch', action => 'reject',
        checks => 'cert-mismatch', logno => '001');
}

# Every case is one mod_ssl serves, so the default SSLVHostSNIPolicy
# secure leaves each decision to the module.
for my $action (qw(reject report allow)) {
    my $s = MisdirectTest->new(name => "checks-$action",
        global => join("\n", map { "MisdirectPolicy $_ $action" } @CHECKS),
        expect_log => { reject => ['MISDIRECT001'],
            report => ['MISDIRECT002'], allow => [] }->{$action});
    clean_requests($s, "all $action");
    run_cases($s, "all $action", sub ($c) { $action });
}

{
    my $s = MisdirectTest->new(name => 'checks-off',
        global => join "\n", 'Misdirect Off',
            map { "MisdirectPolicy $_ reject" } @CHECKS);
    for my $c (@CASES) {
        my ($check, %o) = @$c;
        my $vhost = delete $o{vhost};
        expect_case("Misdirect Off: $check is not even recorded",
            probe($s, %o), status => 200, reason => undef, action => undef,
            vhost => $vhost, logno => undef);
    }
}

{
    my $s = MisdirectTest->new(name => 'checks-reportonly',
        global => join("\n", 'Misdirect ReportOnly',
            map { "MisdirectPolicy $_ reject" } @CHECKS),
        expect_log => ['MISDIRECT008']);
    # What On would refuse is served, and said and counted as such.
    run_cases($s, 'ReportOnly', sub ($c) { 'would-reject' });
}

done_testing;
