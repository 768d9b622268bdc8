# Each of the six checks fires on the request that should fire it, alone,
# and does not fire on a clean request; each action (reject, report,
# allow), the defaults of SPEC.md, and Misdirect Off / ReportOnly.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# Requests that fire exactly one check each, against the standard layout.
my @CASES = (
    [ 'scheme-mismatch' => via => 'plain', host => 'alpha.test',
      target => 'https://alpha.test/', vhost => 'alpha.test' ],
    [ 'scheme-mismatch' => sni => 'alpha.test', host => 'alpha.test',
      target => 'http://alpha.test/', vhost => 'alpha.test' ],
    [ 'sni-missing' => sni => undef, host => 'default.test',
      vhost => 'default.test' ],
    [ 'cert-mismatch' => sni => 'alpha.test', host => 'beta.test',
      vhost => 'beta.test' ],
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
);
my @CHECKS = qw(scheme-mismatch sni-missing cert-mismatch sni-host-mismatch
    unknown-host port-mismatch);
my %DEFAULT = ('scheme-mismatch' => 'reject', 'cert-mismatch' => 'reject');
my %LOGNO = (reject => '001', report => '002', allow => undef);

sub run_cases ($s, $label, $action_of) {
    for my $c (@CASES) {
        my ($check, %o) = @$c;
        my $vhost = delete $o{vhost};
        my $action = $action_of->($check);
        my $r = probe($s, %o);
        my $desc = join ' ', $check, map {
            "$_=" . ($o{$_} // 'none') } grep { $_ ne 'via' } sort keys %o;
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

{
    my $s = MisdirectTest->new(name => 'checks-default');
    clean_requests($s, 'defaults');
    run_cases($s, 'defaults', sub ($c) { $DEFAULT{$c} // 'allow' });

    my $r = probe($s, sni => 'alpha.test', host => 'beta.test');
    is $r->{access}{sni}, 'alpha.test', 'MISDIRECT_SNI is the SNI sent';
    is $r->{access}{hvhost}, 'alpha.test', 'MISDIRECT_HANDSHAKE_VHOST';
    is $r->{access}{rvhost}, 'beta.test', 'MISDIRECT_REQUEST_VHOST';
    $r = probe($s, sni => undef, host => 'default.test');
    is $r->{access}{sni}, undef, 'no SNI: MISDIRECT_SNI unset';
    is $r->{access}{hvhost}, 'default.test',
        'no SNI: the handshake vhost is the default one';
}

# mod_ssl would refuse some of these requests itself after an allow or a
# report; "insecure" leaves the decision to mod_misdirect alone.
for my $action (qw(reject report allow)) {
    my $s = MisdirectTest->new(name => "checks-$action",
        global => join "\n", 'SSLVHostSNIPolicy insecure',
            map { "MisdirectPolicy $_ $action" } @CHECKS);
    clean_requests($s, "all $action");
    run_cases($s, "all $action", sub ($c) { $action });
}

{
    my $s = MisdirectTest->new(name => 'checks-off',
        global => join "\n", 'SSLVHostSNIPolicy insecure', 'Misdirect Off',
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
        global => join "\n", 'SSLVHostSNIPolicy insecure',
            'Misdirect ReportOnly', map { "MisdirectPolicy $_ reject" } @CHECKS);
    run_cases($s, 'ReportOnly', sub ($c) { 'report' });
}

done_testing;
