# Loaded with no Misdirect directive, the module changes no answer that
# stock httpd gives, except the differences that docs/compatibility.md
# lists.  Each request goes to a stock httpd and to the same httpd
# with the module, and the two answers are compared: status, body,
# mod_ssl's own log line.  The module adds one explanation line and a
# counter to each refusal of mod_ssl's, and Connection: close to a 421 on
# HTTP/1.x.
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# Both speak HTTP/2 too, which mod_http2 refuses under prefork.
# mod_ssl's own lines: its 421s (AH02032) and its 400 for HTTP/1.0
# without Host after SNI (AH02031).
my @MOD_SSL_LOG = qw(AH02032 AH02031);
my $stock = MisdirectTest->new(name => 'stock', misdirect => 0,
    mpm => MisdirectTest::h2_mpm(), expect_log => \@MOD_SSL_LOG);
my $STATUS = "<Location /misdirect-status>\n"
    . "    SetHandler misdirect-status\n</Location>";
my $with = MisdirectTest->new(name => 'stock-with-module', global => $STATUS,
    loglevel => 'warn misdirect:debug ssl:info',
    mpm => MisdirectTest::h2_mpm(),
    expect_log => [@MOD_SSL_LOG, qw(MISDIRECT001 MISDIRECT006)]);

sub ask ($s, %o) {
    my $mark = $s->mark;
    my %req = (host => $o{host}, path => $o{path} // '/',
        proto => $o{proto} // 'HTTP/1.1',
        ($o{target} ? (target => $o{target}) : ()));
    my ($r) = $o{plain_to_tls}
        ? $s->http(port => $s->tls_port, requests => [\%req])
        : $s->https(sni => $o{sni}, requests => [\%req]);
    # Lines of one request arrive by log_transaction: wait for the access
    # log entry, which comes after them.
    $s->wait_access_log(qr/ $r->{status} /, $mark);
    $r->{error_log} = $s->error_log_since($mark);
    return $r;
}

# The module's counters; the status request is itself one checked
# request of default.test.
sub counters ($s) {
    my ($r) = $s->https(sni => 'default.test', requests => [{
        host => 'default.test', path => '/misdirect-status' }]);
    return JSON::PP->new->decode($r->{body});
}

# mod_ssl's line for a request, without what differs from run to run
# (time, pid, ports).
sub ssl_line ($log, $ah) {
    my ($line) = grep { /\Q$ah\E/ } split /\n/, $log;
    return undef unless defined $line;
    $line =~ s/^\[[^\]]*\] //;
    $line =~ s/\[pid [^\]]*\] //;
    $line =~ s/:\d+\]/:PORT]/g;
    return $line;
}

# What httpd's own tests expect around connection reuse (test_100 of its
# http2 suite, test_005 of its ssl suite), and the usual requests.
my @cases = (
    { name => 'SNI and Host name the same vhost', sni => 'alpha.test',
      host => 'alpha.test', same => 1, status => 200 },
    { name => 'Host an alias of the SNI vhost', sni => 'alpha.test',
      host => 'www.alpha.test', same => 1, status => 200 },
    { name => 'Host another vhost on the same certificate and settings',
      sni => 'shared1.test', host => 'shared2.test', same => 1,
      status => 200 },
    { name => 'Host a vhost with other TLS settings', sni => 'alpha.test',
      host => 'beta.test', same => 1, status => 421, ah => 'AH02032',
      by => 'mod_ssl_421' },
    { name => 'no SNI, Host a non-default vhost with other settings',
      sni => undef, host => 'beta.test', same => 1, status => 421,
      ah => 'AH02032', by => 'mod_ssl_421' },
    { name => 'no SNI, Host the default vhost', sni => undef,
      host => 'default.test', same => 1, status => 200 },
    { name => 'HTTP/1.0 without Host after SNI', sni => 'beta.test',
      host => undef, proto => 'HTTP/1.0', same => 1, status => 400,
      ah => 'AH02031', by => 'mod_ssl_400' },
    { name => 'plain HTTP sent to the TLS port', plain_to_tls => 1,
      host => 'alpha.test', same => 1, status => 400, ah => 'AH01996',
      by => 'mod_ssl_400', why => 'the client spoke plain HTTP' },
    # The documented differences.
    { name => 'cert-mismatch where mod_ssl finds the vhosts compatible',
      sni => 'a.wild.test', host => 'x.b.wild.test', same => 0,
      stock => 200, status => 421 },
    { name => 'scheme-mismatch: http:// target on TLS', sni => 'alpha.test',
      host => 'alpha.test', target => 'http://alpha.test/', same => 0,
      stock => 200, status => 421 },
);

for my $c (@cases) {
    subtest $c->{name} => sub {
        my $before = counters($with);
        my $a = ask($stock, %$c);
        my $b = ask($with, %$c);
        is $a->{status}, $c->{stock} // $c->{status}, 'stock httpd\'s status';
        is $b->{status}, $c->{status}, 'status with the module';
        if ($c->{same}) {
            is $b->{body}, $a->{body}, 'the same body as stock httpd';
        }
        if ($c->{ah}) {
            like $a->{error_log}, qr/\Q$c->{ah}\E/, "stock logs $c->{ah}";
            is ssl_line($b->{error_log}, $c->{ah}),
                ssl_line($a->{error_log}, $c->{ah}),
                "mod_ssl's $c->{ah} line is the same with the module";
            my $why = $c->{why} // '';
            like $b->{error_log},
                qr/MISDIRECT006: mod_ssl answered $c->{status}: [^\n]*\Q$why\E/,
                'and the module explains it';
            unlike $b->{error_log}, qr/MISDIRECT00[123]:/,
                'without judging the request itself';
            my $after = counters($with);
            is $after->{totals}{$c->{by}} - $before->{totals}{$c->{by}}, 1,
                "counted as $c->{by}";
            is $after->{totals}{checked} - $before->{totals}{checked}, 1,
                'not checked by the module (1: the status request)';
        }
        elsif ($c->{status} == 200) {
            unlike $b->{error_log}, qr/\[misdirect:(?:error|warn)\]/,
                'nothing at warn or error from the module';
        }
        if ($c->{status} == 421 && $b->{proto} eq 'HTTP/1.1') {
            is $b->{headers}{connection}, 'close',
                'a 421 on HTTP/1.1 says Connection: close';
        }
    };
}

subtest 'HTTP/2: streams on one connection, as stock' => sub {
    my @streams = map { { authority => $_ } }
        qw(shared1.test shared2.test beta.test shared1.test);
    my $a = $stock->h2(sni => 'shared1.test', streams => \@streams);
    my $b = $with->h2(sni => 'shared1.test', streams => \@streams);
    my @want = (200, 200, 421, 200);
    is_deeply [map { $_->{status} } $a->{streams}->@*], \@want,
        'stock: reuse served, other settings refused on its stream';
    is_deeply [map { $_->{status} } $b->{streams}->@*], \@want,
        'the same with the module';
    is_deeply [map { $_->{body} } $b->{streams}->@*],
        [map { $_->{body} } $a->{streams}->@*], 'and the same bodies';
};

{
    # Misdirect ReportOnly: mod_ssl's refusal is not also "reported and
    # served", and is counted once.
    my $s = MisdirectTest->new(name => 'stock-reportonly',
        global => "Misdirect ReportOnly\n$STATUS",
        expect_log => [qw(AH02032 MISDIRECT006)]);
    my $before = counters($s);
    my $r = ask($s, sni => 'alpha.test', host => 'beta.test');
    is $r->{status}, 421, 'ReportOnly: mod_ssl still answers 421';
    like $r->{error_log}, qr/AH02032/, 'with its own line';
    unlike $r->{error_log}, qr/MISDIRECT002/, 'no "reported and served" line';
    my $after = counters($s);
    is $after->{totals}{reported} - $before->{totals}{reported}, 0,
        'not counted as reported';
    is $after->{totals}{mod_ssl_421} - $before->{totals}{mod_ssl_421}, 1,
        'counted once, as mod_ssl\'s 421';
}

{
    # MisdirectExempt cannot lift mod_ssl's own refusal.
    my $s = MisdirectTest->new(name => 'stock-exempt',
        global => 'MisdirectExempt /',
        expect_log => [qw(AH02032 MISDIRECT006)]);
    my $r = ask($s, sni => 'alpha.test', host => 'beta.test');
    is $r->{status}, 421, 'MisdirectExempt / leaves mod_ssl\'s 421 alone';
    like $r->{error_log}, qr/AH02032/, 'mod_ssl\'s line';
}

{
    # SSLStrictSNIVHostCheck: mod_ssl's 403 stands, explained.
    my $s = MisdirectTest->new(name => 'stock-strict',
        global => 'SSLStrictSNIVHostCheck on',
        expect_log => ['MISDIRECT006']);
    my $r = ask($s, sni => undef, host => 'default.test');
    is $r->{status}, 403, 'strict SNI check: 403 as stock';
    like $r->{error_log}, qr/MISDIRECT006: mod_ssl answered 403: [^\n]*SSLStrictSNIVHostCheck requires SNI/,
        'explained as the strict SNI check, not a TLS setting difference';
    unlike $r->{error_log}, qr/tls_differs=/, 'with no settings compared';
}

done_testing;
