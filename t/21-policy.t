# The configuration of the request vhost (R) decides, merged over the
# global one: a vhost's MisdirectPolicy and Misdirect override the global
# value in both directions.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# default.test, alpha.test and beta.test with one certificate, for
# *.wild.test, that covers none of them: mod_ssl's default
# SSLVHostSNIPolicy secure serves every cross request among them (same
# certificate files and settings), and each is the module's own
# cert-mismatch, under its default action.
my $pki = MisdirectTest::pki();
my @ONE_CERT = map { { name => $_, conf => "SSLCertificateFile $pki/wild.crt\n"
    . "SSLCertificateKeyFile $pki/wild.key" } } qw(default.test alpha.test
    beta.test);
# What that certificate makes httpd and the module say at startup: mod_ssl
# warns that it does not name the vhost, the lint that it does not cover it.
my @ONE_CERT_LOG = qw(AH01909 MISDIRECT010);

{
    # Global: cert-mismatch allowed; beta.test tightens it back to reject.
    # SSLVHostSNIPolicy insecure: mod_ssl serves these vhosts with other
    # certificates, so that the module's policy decides.
    my $s = MisdirectTest->new(name => 'policy-tighten',
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch allow",
        vhost => { 'tls:beta.test' => 'MisdirectPolicy cert-mismatch reject' },
        expect_log => ['MISDIRECT001']);
    expect_case('global allow, R=beta rejects', probe($s, sni => 'alpha.test',
        host => 'beta.test'), status => 421, reason => 'cert-mismatch',
        action => 'reject', logno => '001');
    expect_case('global allow, R=alpha allows (H=beta\'s policy is not '
        . 'what counts)', probe($s, sni => 'beta.test', host => 'alpha.test'),
        status => 200, reason => 'cert-mismatch', action => 'allow',
        vhost => 'alpha.test', logno => undef);
}

{
    # Global default (reject); alpha.test relaxes it, and beta.test
    # relaxes only to report.
    my $s = MisdirectTest->new(name => 'policy-relax', tls_vhosts => \@ONE_CERT,
        vhost => { 'tls:alpha.test' => 'MisdirectPolicy cert-mismatch allow',
                   'tls:beta.test' => 'MisdirectPolicy cert-mismatch report',
        }, expect_log => [@ONE_CERT_LOG, qw(MISDIRECT001 MISDIRECT002)]);
    expect_case('global reject, R=alpha allows', probe($s, sni => 'beta.test',
        host => 'alpha.test'), status => 200, reason => 'cert-mismatch',
        action => 'allow', vhost => 'alpha.test', logno => undef);
    expect_case('global reject, R=beta reports', probe($s, sni => 'alpha.test',
        host => 'beta.test'), status => 200, reason => 'cert-mismatch',
        action => 'report', vhost => 'beta.test', logno => '002');
    expect_case('global reject, R=default.test keeps rejecting',
        probe($s, sni => 'alpha.test', host => 'default.test'),
        status => 421, reason => 'cert-mismatch', action => 'reject',
        logno => '001');
}

{
    # A vhost switches the module off, another to ReportOnly, and one turns
    # it back on under a global ReportOnly.
    my $s = MisdirectTest->new(name => 'policy-mode', tls_vhosts => \@ONE_CERT,
        global => 'Misdirect ReportOnly',
        vhost => { 'tls:alpha.test' => 'Misdirect Off',
                   'tls:beta.test' => 'Misdirect On',
        }, expect_log => [@ONE_CERT_LOG, qw(MISDIRECT001 MISDIRECT008)]);
    expect_case('global ReportOnly, R=alpha Off: nothing recorded',
        probe($s, sni => 'beta.test', host => 'alpha.test'), status => 200,
        reason => undef, action => undef, vhost => 'alpha.test',
        logno => undef);
    expect_case('global ReportOnly, R=beta On: rejected',
        probe($s, sni => 'alpha.test', host => 'beta.test'), status => 421,
        reason => 'cert-mismatch', action => 'reject', logno => '001');
    expect_case('global ReportOnly, R=default.test: served, would reject',
        probe($s, sni => 'alpha.test', host => 'default.test'),
        status => 200, reason => 'cert-mismatch', action => 'would-reject',
        vhost => 'default.test', logno => '008');
}

{
    # Several checks fire: the reason is the first rejecting one in the
    # table's order, and every fired check is listed.
    my $s = MisdirectTest->new(name => 'policy-order', tls_vhosts => \@ONE_CERT,
        global => "MisdirectPolicy port-mismatch reject\n"
            . "MisdirectPolicy sni-missing report",
        vhost => {
            'tls:default.test' => 'MisdirectPolicy cert-mismatch allow' },
        expect_log => [@ONE_CERT_LOG, qw(MISDIRECT001 MISDIRECT002)]);
    my $r = probe($s, sni => undef, host => 'alpha.test:8');
    expect_case('no SNI, R=alpha, port: cert-mismatch rejects first', $r,
        status => 421, reason => 'cert-mismatch', action => 'reject',
        checks => 'sni-missing,cert-mismatch,port-mismatch', logno => '001');
    like $r->{error_log}, qr/ checks="sni-missing:report,cert-mismatch:reject,port-mismatch:reject"/,
        'the line lists each fired check with its action';
    $r = probe($s, sni => undef, host => 'default.test:8');
    expect_case('no SNI, R=default: port-mismatch is the rejecting one', $r,
        status => 421, reason => 'port-mismatch', action => 'reject',
        checks => 'sni-missing,port-mismatch', logno => '001');
    $r = probe($s, sni => undef, host => 'default.test');
    expect_case('only a reported check: report', $r, status => 200,
        reason => 'sni-missing', action => 'report', logno => '002',
        vhost => 'default.test');
}

{
    # Nothing rejects: the reason is the first reported check in the
    # table's order, though an allowed one fired before it; only when
    # nothing is reported is it the first that fired.
    my $s = MisdirectTest->new(name => 'policy-reason',
        global => 'MisdirectPolicy port-mismatch report',
        expect_log => ['MISDIRECT002']);
    my $r = probe($s, sni => undef, host => 'default.test:8');
    expect_case('no SNI (allow), port (report): the reported one', $r,
        status => 200, reason => 'port-mismatch', action => 'report',
        checks => 'sni-missing,port-mismatch', vhost => 'default.test',
        logno => '002');
    like $r->{error_log}, qr/MISDIRECT002: Misdirected request reported and served: [^.]*\. host names port 8 but [^\n]* checks="sni-missing:allow,port-mismatch:report"/,
        'the sentence describes the reported check; both are listed';
    expect_case('plain: unknown host (allow), port (report): the reported '
        . 'one', probe($s, via => 'plain', host => 'nosuch.test:8'),
        status => 200, reason => 'port-mismatch', action => 'report',
        checks => 'unknown-host,port-mismatch', vhost => 'default.test',
        logno => '002');
    expect_case('no SNI, unknown host, both allowed: the first that fired',
        probe($s, sni => undef, host => 'nosuch.test'), status => 200,
        reason => 'sni-missing', action => 'allow',
        checks => 'sni-missing,unknown-host', vhost => 'default.test',
        logno => undef);
}

done_testing;
