# What an operator reaches for first.
#
# - Misdirect ReportOnly shows exactly what Misdirect On refuses: every
#   request it marks would-reject (line, variable, counters, prediction)
#   is the one On answers 421, and no other.
# - The variables are set on every refusal the module explains, mod_ssl's
#   and handlers' too, in time for GlobalLog and for an ErrorDocument 421
#   page (REDIRECT_MISDIRECT_*), with MISDIRECT_BY and MISDIRECT_CAUSE.
# - Plain HTTP sent to the TLS port (scanners, all day) is explained at
#   info, mod_ssl's own level for it, never at error.
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $STATUS = "<Location /misdirect-status>\n    SetHandler misdirect-status\n"
    . '</Location>';
my $LOG = 'LogFormat "%{MISDIRECT_ACTION}e %{MISDIRECT_REASON}e %U%q" act'
    . "\nCustomLog logs/act_log act";

# Requests that fire each check under its default action or a rejecting
# MisdirectPolicy; each a new connection.
my @REQ = (
    [sni => 'a.wild.test', host => 'x.b.wild.test'],       # cert-mismatch
    [sni => 'shared1.test', host => 'shared2.test'],       # sni-host
    [sni => undef, host => 'default.test'],                # sni-missing
    [sni => 'alpha.test', host => 'alpha.test:8443'],      # port
    [sni => 'default.test', host => 'nosuch.test'],        # unknown-host
    [sni => 'alpha.test', host => 'alpha.test'],           # clean
    [sni => 'default.test', host => 'default.test',        # forwarded-host
     headers => ['X-Forwarded-Host' => 'alpha.test']],
);
my $POLICY = join "\n", 'MisdirectPolicy unknown-host reject',
    'MisdirectPolicy sni-missing reject';

sub run_all ($s) {
    my %got;
    for my $i (0 .. $#REQ) {
        my %o = $REQ[$i]->@*;
        my ($r) = $s->https(sni => $o{sni}, requests => [{ host => $o{host},
            path => "/?req=$i", ($o{headers} ? (headers => $o{headers}) : ()) }]);
        my $line = $s->wait_log('act_log', qr/req=$i\b/) // '';
        my ($action) = split / /, $line;
        $got{$i} = { status => $r->{status}, action => $action };
    }
    return \%got;
}

sub totals ($s) {
    my ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test', path => '/misdirect-status' }]);
    return JSON::PP->new->decode($r->{body})->{totals};
}

subtest 'ReportOnly shows exactly what On refuses' => sub {
    my $ro = MisdirectTest->new(name => 'op-reportonly',
        expect_log => [qw(MISDIRECT002 MISDIRECT008)],
        global => "Misdirect ReportOnly\n$POLICY\n$STATUS\n$LOG");
    my $on = MisdirectTest->new(name => 'op-on',
        expect_log => [qw(MISDIRECT001 MISDIRECT002)],
        global => "$POLICY\n$STATUS\n$LOG");
    my $a = run_all($ro);
    my $b = run_all($on);
    my @would = sort grep { ($a->{$_}{action} // '') eq 'would-reject' }
        keys %$a;
    my @refused = sort grep { $b->{$_}{status} == 421
        && ($b->{$_}{action} // '') eq 'reject' } keys %$b;
    ok @would >= 3, 'some requests would be rejected (' . @would . ')';
    is_deeply \@would, \@refused,
        'the requests ReportOnly marks would-reject are those On refuses';
    is_deeply [grep { $a->{$_}{status} != 200 } sort keys %$a], [],
        'ReportOnly served them all';
    my $t = totals($ro);
    is $t->{would_reject}, scalar @would, 'counted as would_reject';
    is $t->{reported}, 1, 'and only forwarded-host as reported';
    is $t->{rejected}, 0, 'none as rejected';
    my ($rc, $dump) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT', '-d', $ro->root,
        '-f', $ro->conf_file);
    like $dump, qr/served and logged, Misdirect On would answer 421 \(sni-missing: would-reject\)/,
        'the prediction says would-reject too';
    like $ro->error_log_since(0), qr/\[misdirect:warn\] .*MISDIRECT008: .*checks="cert-mismatch:would-reject"/,
        'the line says would-reject, at warn';
};

subtest 'variables on the refusals of mod_ssl and handlers' => sub {
    my $s = MisdirectTest->new(name => 'op-vars',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006 MISDIRECT007)],
        modules => ['alias'],
        global => <<~'EOF',
            LogFormat "%{MISDIRECT_BY}e %{MISDIRECT_CAUSE}e %{MISDIRECT_ACTION}e %{MISDIRECT_REASON}e %<U%<q" misdirect_vars
            GlobalLog logs/misdirect.log misdirect_vars "env=MISDIRECT_REASON"
            ErrorDocument 421 /misdirected.html
            Alias /misdirected.html /etc/hostname
            <Location /misdirected.html>
                Require all granted
                Header always set X-Misdirect-By "%{REDIRECT_MISDIRECT_BY}e"
                Header always set X-Misdirect-Cause "%{REDIRECT_MISDIRECT_CAUSE}e"
            </Location>
            Redirect 421 /gone421
            <Directory /etc>
                Require all granted
            </Directory>
            EOF
        vhost => { 'tls:beta.test' => 'CustomLog logs/beta_log common' });
    # mod_ssl's 421: other certificate files.
    my ($r) = $s->https(sni => 'alpha.test', requests => [{
        host => 'beta.test', path => '/?v=ssl' }]);
    is $r->{status}, 421, 'mod_ssl answers 421';
    is $r->{headers}{'x-misdirect-by'}, 'mod_ssl',
        'the ErrorDocument page sees REDIRECT_MISDIRECT_BY';
    is $r->{headers}{'x-misdirect-cause'}, 'client-override',
        'and REDIRECT_MISDIRECT_CAUSE';
    my $line = $s->wait_log('misdirect.log', qr/v=ssl/) // '';
    like $line, qr/^mod_ssl client-override reject cert-mismatch /,
        'GlobalLog has it, though beta.test has a CustomLog of its own';
    like $s->wait_error_log(qr/MISDIRECT006/) // '',
        qr/MISDIRECT006: mod_ssl answered 421: .*host="beta\.test"/,
        'and the ErrorDocument page does not keep it from being explained';
    # A handler's 421.
    ($r) = $s->https(sni => 'alpha.test', requests => [{
        host => 'alpha.test', path => '/gone421?v=handler' }]);
    is $r->{status}, 421, 'a Redirect 421 answers 421';
    is $r->{headers}{'x-misdirect-by'}, 'handler', 'the page sees it';
    $line = $s->wait_log('misdirect.log', qr/v=handler/) // '';
    like $line, qr/^handler other reject none /, 'GlobalLog has it too';
    # The module's own.
    ($r) = $s->https(sni => 'a.wild.test', requests => [{
        host => 'x.b.wild.test', path => '/?v=module' }]);
    is $r->{status}, 421, 'the module answers 421';
    is $r->{headers}{'x-misdirect-by'}, 'module', 'the page sees it';
    # A served request without findings is not in the log.
    ($r) = $s->https(sni => 'alpha.test', requests => [{
        host => 'alpha.test', path => '/?v=clean' }]);
    ok !$s->wait_log('misdirect.log', qr/v=clean/, 1),
        'a clean request is not logged';
};

subtest 'under SSLVHostSNIPolicy insecure nothing is compared' => sub {
    my $s = MisdirectTest->new(name => 'op-insecure',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\nMisdirectPolicy cert-mismatch "
            . 'reject');
    my $mark = $s->mark;
    my ($r) = $s->https(sni => 'alpha.test', requests => [{
        host => 'beta.test' }]);
    is $r->{status}, 421, 'other certificates: the module\'s 421';
    my $f = fields($s->wait_error_log(qr/MISDIRECT001/, $mark) // '');
    is $f->{tls_differs}, '(not compared under SSLVHostSNIPolicy insecure)',
        'tls_differs does not read as "identical"';
};

subtest 'plain HTTP to the TLS port: at info, not error' => sub {
    my $s = MisdirectTest->new(name => 'op-plain',
        loglevel => 'warn ssl:info');
    my $mark = $s->mark;
    my ($r) = $s->http(port => $s->tls_port,
        requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 400, 'mod_ssl answers 400';
    $s->wait_access_log(qr/ 400 /, $mark);
    sleep 0.3;
    unlike $s->error_log_since($mark), qr/\[misdirect:/,
        'nothing from the module at warn';
    my $t = MisdirectTest->new(name => 'op-plain-info',
        loglevel => 'warn ssl:info misdirect:info');
    $mark = $t->mark;
    ($r) = $t->http(port => $t->tls_port,
        requests => [{ host => 'alpha.test' }]);
    my $line = $t->wait_error_log(qr/MISDIRECT006/, $mark) // '';
    like $line, qr/\[misdirect:info\] .*mod_ssl answered 400: [^\n]*the client spoke plain HTTP/,
        'explained at info';
};

done_testing;
