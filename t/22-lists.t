# MisdirectAllow (names, wildcards, IP literals), MisdirectExempt and
# MisdirectTrustedProxy; global and vhost lists add up.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# SSLVHostSNIPolicy insecure: mod_ssl serves requests across vhosts with
# other certificates, so that they reach the module's lists.  It also makes
# cert-mismatch default to report; these servers reject it explicitly, as
# the lists are what is tested here.
{
    my $s = MisdirectTest->new(name => 'lists-allow',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch reject\n"
            . "MisdirectPolicy unknown-host reject\n"
            . "MisdirectAllow beta.test [0:0::1]",
        # beta.test's own list adds to the global one.
        vhost => { 'beta.test' => 'MisdirectAllow 127.0.0.1 *.b.wild.test' });

    expect_case('allowed name: no check fires', probe($s, sni => 'alpha.test',
        host => 'beta.test'), status => 200, reason => undef,
        vhost => 'beta.test', logno => undef);
    expect_case('a name not in the list still rejects', probe($s,
        sni => 'alpha.test', host => 'default.test'), status => 421,
        reason => 'cert-mismatch', logno => '001');
    expect_case('allowed name: scheme-mismatch still fires', probe($s,
        via => 'plain', host => 'beta.test', target => 'https://beta.test/'),
        status => 421, reason => 'scheme-mismatch', logno => '001');
    expect_case('allowed name: scheme-mismatch fires beside another check',
        probe($s, via => 'plain', host => 'beta.test:1',
            target => 'https://beta.test:1/'),
        status => 421, reason => 'scheme-mismatch',
        checks => 'scheme-mismatch', logno => '001');
    expect_case('IPv6 literal, allowed in another spelling', probe($s,
        via => 'plain', host => '[::1]'), status => 200, reason => undef,
        logno => undef);
    expect_case('IPv6 literal sent in a non-canonical spelling', probe($s,
        via => 'plain', host => '[0:0:0::1]'), status => 200,
        reason => undef, logno => undef);
    expect_case('IPv6 literal not allowed', probe($s, via => 'plain',
        host => '[::2]'), status => 421, reason => 'unknown-host',
        logno => '001');

    # R is the vhost whose list counts: 127.0.0.1 selects default.test (the
    # <VirtualHost 127.0.0.1:port> address), whose list lacks it.
    expect_case('IP literal allowed only in beta.test\'s list', probe($s,
        sni => 'beta.test', host => '127.0.0.1'), status => 421,
        reason => 'cert-mismatch', logno => '001');
    expect_case('wildcard in beta.test\'s list, R=b.wild.test: not its list',
        probe($s, sni => 'alpha.test', host => 'x.b.wild.test'),
        status => 421, reason => 'cert-mismatch', logno => '001');
}

{
    my $s = MisdirectTest->new(name => 'lists-allow-wild',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch reject\n"
            . "MisdirectAllow *.wild.test 127.0.0.1");
    expect_case('wildcard allows a name under it', probe($s,
        sni => 'alpha.test', host => 'x.b.wild.test'), status => 200,
        reason => undef, vhost => 'b.wild.test', logno => undef);
    expect_case('IPv4 literal allowed', probe($s, sni => 'beta.test',
        host => '127.0.0.1'), status => 200, reason => undef,
        vhost => 'default.test', logno => undef);
    expect_case('wildcard does not allow the bare domain', probe($s,
        sni => 'alpha.test', host => 'beta.test'), status => 421,
        reason => 'cert-mismatch', logno => '001');
}

{
    my $s = MisdirectTest->new(name => 'lists-exempt',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy cert-mismatch reject\n"
            . "MisdirectExempt /.well-known/acme-challenge/",
        vhost => { 'tls:beta.test' => 'MisdirectExempt /status' });
    my $dir = $s->docroot('beta.test') . '/.well-known/acme-challenge';
    system('mkdir', '-p', $dir) == 0 or die;
    open my $fh, '>', "$dir/token" or die;
    print $fh "token\n";
    close $fh;

    my $r = probe($s, sni => 'alpha.test', host => 'beta.test',
        path => '/.well-known/acme-challenge/token');
    expect_case('exempt path: served, recorded as allow', $r, status => 200,
        reason => 'cert-mismatch', action => 'allow', logno => undef);
    is $r->{body}, "token\n", 'the exempt file itself';
    expect_case('vhost exempt prefix adds to the global one', probe($s,
        sni => 'alpha.test', host => 'beta.test', path => '/status/x'),
        status => 404, reason => 'cert-mismatch', action => 'allow',
        logno => undef);
    expect_case('prefix on a segment boundary only', probe($s,
        sni => 'alpha.test', host => 'beta.test', path => '/statusx'),
        status => 421, reason => 'cert-mismatch', logno => '001');
    expect_case('dot-segments out of the exempt prefix are not exempt',
        probe($s, sni => 'alpha.test', host => 'beta.test',
            path => '/.well-known/acme-challenge/../../index.html'),
        status => 421, reason => 'cert-mismatch', logno => '001');
    expect_case('encoded dot-segments too', probe($s, sni => 'alpha.test',
        host => 'beta.test',
        path => '/.well-known/acme-challenge/%2e%2e/%2E%2E/index.html'),
        status => 421, reason => 'cert-mismatch', logno => '001');
    expect_case('other paths are rejected', probe($s, sni => 'alpha.test',
        host => 'beta.test', path => '/index.html'), status => 421,
        reason => 'cert-mismatch', logno => '001');
}

{
    # The test client's peer address is 127.0.0.1.
    my $s = MisdirectTest->new(name => 'lists-trusted-insecure',
        expect_log => ['MISDIRECT001'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy sni-missing reject\n"
            . "MisdirectPolicy unknown-host reject\n"
            . "MisdirectTrustedProxy 10.0.0.0/8",
        vhost => { 'tls:alpha.test' => 'MisdirectTrustedProxy 127.0.0.0/8' });
    expect_case('trusted peer (vhost list), no SNI: served', probe($s,
        sni => undef, host => 'alpha.test'), status => 200, reason => undef,
        vhost => 'alpha.test', logno => undef);
    expect_case('trusted peer, other SNI: served', probe($s,
        sni => 'beta.test', host => 'alpha.test'), status => 200,
        reason => undef, vhost => 'alpha.test', logno => undef);
    expect_case('trusted peer: unknown-host still fires', probe($s,
        sni => undef, host => 'nosuch.alpha.test'), status => 421,
        reason => 'sni-missing', logno => '001');
    expect_case('peer outside the global range (R=beta): rejected',
        probe($s, sni => undef, host => 'beta.test'), status => 421,
        reason => 'sni-missing', logno => '001');
}

{
    # Under mod_ssl's default policy a trusted proxy's request still meets
    # mod_ssl, which refuses the other certificate: mod_misdirect explains.
    my $s = MisdirectTest->new(name => 'lists-trusted-secure',
        expect_log => [qw(MISDIRECT006 AH02032)],
        global => 'MisdirectTrustedProxy 127.0.0.1');
    my $mark = $s->mark;
    my $r = probe($s, sni => undef, host => 'alpha.test');
    is $r->{status}, 421, 'mod_ssl answers 421 for the trusted proxy';
    is $r->{access}{reason}, 'none', 'mod_misdirect itself objects to nothing';
    my $line = $s->wait_error_log(qr/MISDIRECT006/, $mark);
    like $line // '', qr/mod_ssl answered 421: .*MisdirectTrustedProxy forgave what mod_misdirect found\. reason="none" cause="[a-z-]+" checks="none" forgiven="sni-missing,cert-mismatch" /,
        'and still explains mod_ssl\'s 421, naming what was forgiven';
    like $line // '', qr/hint="mod_misdirect trusts this request[^"]*SSLVHostSNIPolicy insecure/,
        'hint: mod_ssl\'s policy still applies to a trusted proxy';
    expect_case('default SNI policy, trusted peer, same certificate: served',
        probe($s, sni => 'shared1.test', host => 'shared2.test'),
        status => 200, reason => undef, vhost => 'shared2.test',
        logno => undef);
}

{
    # MisdirectTrustedProxy judges the TCP peer (127.0.0.1), never the
    # client address that mod_remoteip takes from X-Forwarded-For.
    my $s = MisdirectTest->new(name => 'lists-trusted-remoteip',
        expect_log => ['MISDIRECT001'],
        modules => ['remoteip'],
        global => "SSLVHostSNIPolicy insecure\n"
            . "MisdirectPolicy sni-missing reject\n"
            . "RemoteIPHeader X-Forwarded-For\n"
            . "RemoteIPInternalProxy 127.0.0.1",
        vhost => { 'tls:alpha.test' => 'MisdirectTrustedProxy 127.0.0.1',
                   'tls:beta.test' => 'MisdirectTrustedProxy 192.0.2.0/24' });
    my @xff = (headers => ['X-Forwarded-For' => '192.0.2.1']);
    expect_case('TCP peer trusted, X-Forwarded-For not: served', probe($s,
        sni => undef, host => 'alpha.test', @xff), status => 200,
        reason => undef, vhost => 'alpha.test', logno => undef);
    my $r = probe($s, sni => undef, host => 'beta.test', @xff);
    expect_case('X-Forwarded-For trusted, TCP peer not: rejected', $r,
        status => 421, reason => 'sni-missing', action => 'reject',
        checks => 'sni-missing,cert-mismatch', logno => '001');
    like $r->{error_log}, qr/\[client 192\.0\.2\.1:\d+\] MISDIRECT001: /,
        'mod_remoteip did change the client address';
    like $r->{error_log}, qr/MISDIRECT001: [^\n]*="127\.0\.0\.1:\d+"/,
        'the line also names the TCP peer';
}

done_testing;
