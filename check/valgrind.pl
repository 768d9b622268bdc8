#!/usr/bin/perl
# httpd -X (one process) under valgrind memcheck with mod_misdirect loaded,
# fed a representative set of requests: accepted ones, each check firing
# with each action, HTTP/2 streams, a 421 that mod_ssl answers and the
# module explains, hostile header text, the status handler.  The run
# fails if valgrind reports any error or definite/indirect leak with a
# frame in mod_misdirect.so, or if a request gets an unexpected status.
#
#   perl check/valgrind.pl        (make check-valgrind)
#
# Uses t/lib/MisdirectTest.pm to write the standard configuration, then
# runs that configuration itself: the harness starts httpd as a daemon,
# valgrind wants it in the foreground.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use MisdirectTest;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $APACHE   = MisdirectTest::httpd_binary();
my $VALGRIND = '/usr/bin/valgrind';
my $MODDIR   = MisdirectTest::module_dir();
-x $VALGRIND or die "$VALGRIND not found: apt-get install valgrind\n";
my $t0 = time;

# The standard layout, with every directive of the module in use so that
# each code path runs: a report policy, an exemption, an allow list with a
# wildcard and an IPv6 literal, a trusted proxy that never matches, no
# log limit, the status handler.
my $s = MisdirectTest->new(
    name   => 'valgrind',
    global => <<~"EOF",
        LoadModule status_module $MODDIR/mod_status.so
        MisdirectLogLimit 0
        MisdirectExempt /.well-known/acme-challenge/
        MisdirectAllow *.allowed.test [0:0::1]
        MisdirectTrustedProxy 192.0.2.0/24 2001:db8::/32
        EOF
    vhost => {
        'tls:b.wild.test'  => 'MisdirectPolicy sni-host-mismatch report',
        'tls:beta.test'    => 'MisdirectPolicy port-mismatch report',
        'plain:beta.test'  => "Misdirect ReportOnly\n"
            . "<Location /misdirect-status>\nSetHandler misdirect-status\n"
            . "</Location>\n<Location /server-status>\n"
            . "SetHandler server-status\n</Location>",
    },
);
my ($root, $conf) = ($s->root, $s->conf_file);
$s->stop;    # its configuration and ports are ours now

# --------------------------------------------------------------- server

my $vglog = "$root/logs/valgrind.%p";
my $mark = $s->mark;
my $pid = fork // die "fork: $!\n";
if (!$pid) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$root/logs/valgrind.stdout";
    open STDERR, '>&', \*STDOUT;
    exec $VALGRIND, '--tool=memcheck', '--leak-check=full',
        '--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect',
        '--num-callers=40', '--track-origins=yes', '--vgdb=no',
        "--log-file=$vglog",
        $APACHE, '-X', '-d', $root, '-f', $conf;
    die "exec $VALGRIND: $!\n";
}
# -X logs no "resuming normal operations": up is when a request works.
my $deadline = time + 180;
until (listening($s->tls_port) && listening($s->plain_port)
       && ($s->curl('-m', '30', '-o', '/dev/null', '-w', '%{http_code}',
                     'https://alpha.test:' . $s->tls_port . '/'))[1] eq '200') {
    die "httpd under valgrind exited during startup:\n"
        . $s->error_log_since($mark) if waitpid($pid, WNOHANG) == $pid;
    die "httpd under valgrind did not start in 180s\n" if time > $deadline;
    sleep 0.5;
}
my $t_up = time;
printf "valgrind: httpd -X up after %.0fs\n", $t_up - $t0;

sub listening ($port) {
    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!\n";
    my $hex = sprintf '%04X', $port;
    return scalar grep { /^\s*\d+: 0100007F:$hex \S+ 0A / } <$fh>;
}

# --------------------------------------------------------------- requests

my ($sent, $bad) = (0, 0);
sub expect ($what, $got, @want) {
    $sent++;
    return if grep { $got == $_ } @want;
    $bad++;
    print "  unexpected: $what: status $got, wanted @want\n";
}
sub tls ($sni, $what, @req) {
    my @want = map { delete $_->{want} } @req;
    my @res = eval { $s->https(sni => $sni, requests => \@req) };
    for my $i (0 .. $#req) {
        expect("$what #$i", $res[$i] ? $res[$i]{status} : 0,
            ref $want[$i] ? @{ $want[$i] } : $want[$i]);
    }
}
sub plain ($what, @req) {
    my @want = map { delete $_->{want} } @req;
    my @res = eval { $s->http(requests => \@req) };
    for my $i (0 .. $#req) {
        expect("$what #$i", $res[$i] ? $res[$i]{status} : 0,
            ref $want[$i] ? @{ $want[$i] } : $want[$i]);
    }
}

my $tls_port = $s->tls_port;
for my $round (1 .. 2) {    # twice: the second runs on warm caches
    tls('alpha.test', 'accepted, keep-alive',
        { host => 'alpha.test', want => 200 },
        { host => 'www.alpha.test', want => 200 },
        { host => "alpha.test:$tls_port", want => 200 });
    tls('alpha.test', 'cert-mismatch', { host => 'beta.test', want => 421 });
    # Exempt from the module's reject; mod_ssl still refuses the vhost.
    tls('alpha.test', 'cert-mismatch, exempt path',
        { host => 'beta.test', path => '/.well-known/acme-challenge/t',
          want => 421 });
    tls('alpha.test', 'exempt prefix escaped by ..',
        { host => 'beta.test',
          path => '/.well-known/acme-challenge/../../x', want => [400, 421] });
    tls('shared1.test', 'sni-host-mismatch allowed',
        { host => 'shared2.test', want => 200 });
    tls('a.wild.test', 'sni-host-mismatch reported',
        { host => 'b.wild.test', want => 200 });
    tls('shared1.test', "mod_ssl's 421 explained",
        { host => 'shared3.test', want => 421 });
    tls(undef, 'sni-missing, default vhost',
        { host => 'default.test', want => 200 });
    tls(undef, 'no SNI, other vhost', { host => 'alpha.test', want => 421 });
    tls('default.test', 'unknown-host', { host => 'nosuch.test', want => 200 });
    tls('default.test', 'allowed by wildcard',
        { host => 'x.allowed.test', want => 200 });
    tls('default.test', 'allowed IPv6', { host => '[::1]', want => 200 });
    tls('default.test', 'allowed IPv6, other form',
        { host => '[0::1]', want => 200 });
    # The default vhost answers; alpha's certificate has the IP: mod_ssl
    # refuses the cross-vhost request.
    tls('alpha.test', 'IPv4 host', { host => '127.0.0.1', want => 421 });
    tls('beta.test', 'port-mismatch reported',
        { host => 'beta.test:1', want => 200 });
    tls('alpha.test', 'scheme-mismatch on TLS',
        { host => 'alpha.test', target => 'http://alpha.test/', want => 421 });
    tls('alpha.test', 'absolute URL for another host',
        { host => 'alpha.test', target => 'https://beta.test/', want => 421 });
    tls('alpha.test.', 'SNI with a trailing dot',
        { host => 'alpha.test', want => [200, 421] });
    tls('ALPHA.TEST', 'SNI in upper case', { host => 'alpha.test', want => 200 });
    tls('127.0.0.1', 'SNI an IP address', { host => 'alpha.test', want => [200, 421] });
    tls('x' x 250 . '.test', 'SNI of 255 bytes',
        { host => 'alpha.test', want => [200, 421] });
    tls('alpha.test', 'hostile header text',
        { host => 'beta.test', want => 421, headers => [
            'X-Forwarded-Host' => qq{evil"\\ x="1%41\xff\xc3\xa9},
            Forwarded => qq{for="[::1]";host="a\\"b"} ] });
    tls('alpha.test', 'control byte in a header (core refuses)',
        { host => 'beta.test', want => 400, headers => [
            'X-Forwarded-Host' => "a\x1b[31mb" ] });
    # SNI but no host: mod_ssl answers 400 (AH02031), and the module
    # explains it at log_transaction.
    tls('alpha.test', 'HTTP/1.0 without Host',
        { host => undef, proto => 'HTTP/1.0', want => 400 });
    plain('plain: accepted, unknown, port, scheme, no Host',
        { host => 'alpha.test', want => 200 },
        { host => 'nosuch.test', want => 200 },
        { host => 'alpha.test:1', want => 200 },
        { host => 'alpha.test', target => 'https://alpha.test/', want => 421 });
    plain('plain: scheme-mismatch on an exempt path',
        { host => 'alpha.test',
          target => 'https://alpha.test/.well-known/acme-challenge/x',
          want => 404 });
    plain('plain: HTTP/1.0 without Host',
        { host => undef, proto => 'HTTP/1.0', want => 200 });
    plain('plain: OPTIONS *',
        { host => 'alpha.test', method => 'OPTIONS', target => '*',
          want => 200 });
    plain('plain: CONNECT',
        { host => 'alpha.test', method => 'CONNECT',
          target => 'alpha.test:443', want => [400, 405] });
    plain('plain: empty Host', { host => '', want => [200, 400] });
    plain('plain: status handler, report-only vhost',
        { host => 'beta.test', path => '/misdirect-status', want => 200 },
        { host => 'beta.test', path => '/misdirect-status?text', want => 200 },
        { host => 'beta.test', path => '/server-status?auto', want => 200 });

    my $h2 = eval { $s->h2(sni => 'alpha.test', streams => [
        { authority => 'alpha.test' }, { authority => 'beta.test' },
        { authority => 'www.alpha.test' }, { authority => 'nosuch.test' },
        { authority => 'alpha.test', path => '/.well-known/acme-challenge/x' },
    ]) };
    my @want = (200, 421, 200, 421, 404);
    for my $i (0 .. $#want) {
        expect("h2 stream $i", $h2 ? $h2->{streams}[$i]{status} // 0 : 0,
            $want[$i]);
    }
    $h2 = eval { $s->h2(sni => 'shared1.test', streams => [
        { authority => 'shared2.test' }, { authority => 'shared3.test' },
        { authority => 'shared1.test' } ]) };
    @want = (200, 421, 200);
    for my $i (0 .. $#want) {
        expect("h2 coalesced stream $i",
            $h2 ? $h2->{streams}[$i]{status} // 0 : 0, $want[$i]);
    }
    $h2 = eval { $s->h2(plain => 1, streams => [
        { authority => 'beta.test' }, { authority => 'nosuch.test' } ]) };
    expect("h2c stream $_", $h2 ? $h2->{streams}[$_]{status} // 0 : 0, 200)
        for 0, 1;
}
my $t_req = time;
printf "valgrind: %d requests in %.0fs, %d with an unexpected status\n",
    $sent, $t_req - $t_up, $bad;

# --------------------------------------------------------------- stop

kill 'TERM', $pid;
$deadline = time + 120;
while (waitpid($pid, WNOHANG) != $pid) {
    if (time > $deadline) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        die "httpd under valgrind did not stop in 120s\n";
    }
    sleep 0.2;
}

# --------------------------------------------------------------- verdict

my (@ours, %kinds, $errors_total, $summary);
$summary = '';
for my $file (glob "$root/logs/valgrind.*") {
    next if $file =~ /\.stdout$/;
    open my $fh, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$fh> };
    $summary .= "  $1\n" while $text =~ /^==\d+== (ERROR SUMMARY: .*|   definitely lost: .*)$/mg;
    # Records are separated by lines holding only "==pid==".
    for my $rec (split /^==\d+==\s*\n/m, $text) {
        next unless $rec =~ /^==\d+== (?:Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|\d[\d,]* bytes in [\d,]+ blocks are (?:definitely|indirectly) lost)/m;
        my ($kind) = $rec =~ /^==\d+== (.*)$/m;
        $kind =~ s/[\d,]+ bytes in [\d,]+ blocks/N bytes/;
        $kind =~ s/ in loss record .*//;
        $errors_total++;
        next unless $rec =~ /mod_misdirect\.so|\bmisdirect_\w+ \(/;
        $kinds{$kind}++;
        push @ours, $rec;
    }
}
printf "valgrind: %d error records in all, %d with a mod_misdirect frame; "
    . "total %.0fs (logs: %s/logs/valgrind.*)\n", $errors_total // 0,
    scalar @ours, time - $t0, $root;
print $summary;
print "  $kinds{$_}x $_\n" for sort keys %kinds;
print "$_\n" for @ours[0 .. ($#ours < 4 ? $#ours : 4)];
my $crash = $s->error_log_since($mark) =~ /exit signal|Segmentation fault/;
print "valgrind: error_log reports a crash\n" if $crash;
if (@ours || $bad || $crash) {
    print "check-valgrind: FAILED\n";
    exit 1;
}
print "check-valgrind: no error in mod_misdirect's frames\n";
exit 0;
