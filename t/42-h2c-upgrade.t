# h2c by Upgrade (docs/checks.md, "h2c upgrades"): the HTTP/1.1 request
# that asks for h2c is judged and counted once, and mod_http2's replay of
# it as stream 1 is not judged again; every later stream of the upgraded
# connection is judged like any other, for whatever host it names.
#
# The upgrade request names alpha.test:1, a port-mismatch that alpha.test
# reports (MISDIRECT002), so a second judgement of the replay would show
# as a second line and a second count.  Then, on the same connection:
# stream 3 for a host no vhost has (unknown-host, rejected: 421 from
# default.test, the fallback), stream 5 for beta.test (another vhost,
# which on a plain connection no check objects to: served) and stream 7
# for alpha.test without a port (the replay's vhost: judged too, clean).
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use JSON::PP ();
use Time::HiRes qw(sleep time);

my @CHECKS = qw(scheme-mismatch sni-missing cert-mismatch sni-host-mismatch
    unknown-host port-mismatch forwarded-host);
my @STATS = qw(checked fired rejected reported allowed would_reject
    mod_ssl_421 mod_ssl_400 mod_ssl_403 other_421);
my @VHOSTS = map { "plain:$_" } qw(default.test alpha.test beta.test);

sub server ($name, $mpm) {
    my $s = MisdirectTest->new(name => $name, mpm => $mpm,
        global => 'MisdirectPolicy unknown-host reject',
        vhost => {
            'plain:alpha.test' => 'MisdirectPolicy port-mismatch report' },
        # The streams' unknown host, refused, and alpha.test's port,
        # reported.
        expect_log => [qw(MISDIRECT001 MISDIRECT002)],
        # The counters' page, on a vhost that counts nothing itself.
        extra_vhosts => MisdirectTest::status_vhost(
            '127.0.0.1:@PLAIN_PORT@', 'status.test'));
    return $s;
}

# Each standard plain vhost's counters, flattened: {'plain:NAME' =>
# {checked => N, 'unknown-host.rejected' => N, ...}}.
sub counters ($s) {
    my $res = $s->http(requests => [{ host => 'status.test',
        path => '/misdirect-status' }]);
    $res->{status} == 200 or die "misdirect-status: $res->{status}\n";
    my $j = JSON::PP->new->utf8->decode($res->{body});
    my %out;
    for my $v ($j->{vhosts}->@*) {
        next unless ($v->{address} // '') eq '127.0.0.1:' . $s->plain_port;
        my $c = $v->{counters};
        my %flat = map { $_ => $c->{$_} } @STATS;
        for my $check (@CHECKS) {
            $flat{"$check.$_"} = $c->{checks}{$check}{$_}
                for qw(fired rejected reported allowed);
        }
        $out{"plain:$v->{server_name}"} = \%flat;
    }
    $out{totals_checked} = $j->{totals}{checked};
    return \%out;
}

# What each vhost's counters gained: every field, so that a count in the
# wrong place shows too.
sub delta ($before, $after) {
    my %d = (totals_checked =>
        $after->{totals_checked} - $before->{totals_checked});
    for my $vhost (@VHOSTS) {
        my ($was, $now) = ($before->{$vhost}, $after->{$vhost});
        $d{$vhost} = { map { $_ => $now->{$_} - $was->{$_} } keys %$now };
    }
    return \%d;
}

sub counts (%nonzero) {
    my %c = map { $_ => 0 } @STATS;
    for my $check (@CHECKS) {
        $c{"$check.$_"} = 0 for qw(fired rejected reported allowed);
    }
    return { %c, %nonzero };
}

# Waits until the error_log since $mark has $n lines matching $re.
sub wait_lines ($s, $mark, $re, $n) {
    my $deadline = time + 5;
    my @l;
    while (1) {
        @l = grep { $_ =~ $re } split /\n/, $s->error_log_since($mark);
        return @l if @l >= $n || time > $deadline;
        sleep 0.05;
    }
}

sub upgrade_case ($name, $mpm, $early) {
    my $s = server($name, $mpm);
    my $before = counters($s);
    my $mark = $s->mark;
    my $res = $s->h2(
        upgrade => { host => 'alpha.test:1', path => '/index.html',
            early => $early },
        streams => [map { { authority => $_, scheme => 'http' } }
            qw(nosuch.test beta.test alpha.test)]);
    is $res->{error}, undef, 'the client saw no error';
    is $res->{upgrade}{status}, 101, 'the HTTP/1.1 request is answered 101';
    is lc($res->{upgrade}{headers}{upgrade} // ''), 'h2c', '... to h2c';

    my %st = map { $_->{id} => $_ } $res->{streams}->@*;
    is_deeply [sort { $a <=> $b } keys %st], [1, 3, 5, 7],
        'stream 1 (the replay) and streams 3, 5, 7 on one connection';
    is_deeply [map { $st{$_}{status} } 1, 3, 5, 7], [200, 421, 200, 200],
        'statuses: replay served, unknown host 421, beta.test and '
        . 'alpha.test served';
    is $st{1}{body}, "alpha.test\n", 'stream 1 served by alpha.test';
    is $st{5}{body}, "beta.test\n", 'stream 5 served by beta.test';
    is $st{7}{body}, "alpha.test\n", 'stream 7 served by alpha.test';
    like $st{3}{body}, qr/421|Misdirected/i, 'stream 3 carries the 421 page';

    # The module's lines.  Every judgement of a request on which a check
    # fired writes one (MISDIRECT001, 002), every clean one a trace
    # (MISDIRECT004, under misdirect:trace1).
    my @l002 = wait_lines($s, $mark, qr/MISDIRECT002:/, 1);
    my @l001 = wait_lines($s, $mark, qr/MISDIRECT001:/, 1);
    my @l004 = wait_lines($s, $mark, qr/MISDIRECT004:/, 2);
    $s->wait_access_log(qr/ 101 /, $mark);    # last: after the session
    my $log = $s->error_log_since($mark);
    is scalar(@l002), 1, 'one port-mismatch report: the upgrade request, '
        . 'not its replay' or diag join "\n", @l002;
    like $l002[0] // '', qr/reason="port-mismatch"[^\n]* proto="HTTP\/1\.1" [^\n]*request_vhost="alpha\.test [^\n]* host_header="alpha\.test:1"/,
        '... judged as the HTTP/1.1 request';
    unlike $log, qr/MISDIRECT\d+: [^\n]*stream="1"/,
        'no line of the module about stream 1';
    is scalar(@l001), 1, 'one 421 of the module' or diag join "\n", @l001;
    like $l001[0] // '', qr/reason="unknown-host"[^\n]* proto="h2" stream="3" [^\n]*request_vhost="default\.test [^\n]* host="nosuch\.test"/,
        '... for stream 3, unknown-host, from default.test';
    is_deeply [sort map { /request_vhost="([^"]*)"/ } @l004],
        ['alpha.test', 'beta.test'],
        'streams 5 and 7 judged clean, once each' or diag join "\n", @l004;
    my @bad = grep { /:(?:warn|error|crit|alert|emerg)\]/
        && !/MISDIRECT00[12]:/ } split /\n/, $log;
    is scalar(@bad), 0, 'error_log: nothing else at warn or worse'
        or diag join "\n", @bad;

    # The variables belong to the request that was judged: the 101 line
    # has them, the replay's none.
    my $acc = $s->access_log_since($mark);
    like $acc, qr/^alpha\.test 101 port-mismatch report port-mismatch [^\n]*"GET \/index\.html HTTP\/1\.1"$/m,
        'access log: the upgrade request carries the finding';
    like $acc, qr/^alpha\.test 200 - - - [^\n]*"GET \/index\.html HTTP\/2\.0"$/m,
        'access log: the replay carries none';
    like $acc, qr/^default\.test 421 unknown-host reject unknown-host [^\n]*"GET \/ HTTP\/2\.0"$/m,
        'access log: stream 3\'s refusal';

    # The counters: the upgrade request and streams 3, 5 and 7, each once.
    my $d = delta($before, counters($s));
    is $d->{totals_checked}, 4, 'checked +4 in all: the upgrade request '
        . 'and streams 3, 5, 7';
    is_deeply $d->{'plain:alpha.test'}, counts(checked => 2, fired => 1,
        reported => 1, 'port-mismatch.fired' => 1,
        'port-mismatch.reported' => 1),
        'alpha.test: the upgrade request (reported) and stream 7 (clean)';
    is_deeply $d->{'plain:default.test'}, counts(checked => 1, fired => 1,
        rejected => 1, 'unknown-host.fired' => 1,
        'unknown-host.rejected' => 1),
        'default.test: stream 3, rejected as unknown-host';
    is_deeply $d->{'plain:beta.test'}, counts(checked => 1),
        'beta.test: stream 5, clean';
}

# As a client does it: the 101, stream 1 to its end, then the others.
# Only a threaded MPM that is not event keeps the connection that long:
# httpd 2.4.71 under event ends an upgraded connection, with the module
# or without, as soon as mod_http2 hands it back to the MPM.
subtest 'streams opened after the replay has ended (worker)' => sub {
    upgrade_case('h2c-upgrade-after', 'worker', 0);
};

# Under the MPM of the other HTTP/2 tests (event by default), the streams
# go out right behind the upgrade request, with the connection preface,
# and reach httpd while the replay is being served.
subtest 'streams sent with the upgrade (' . MisdirectTest::h2_mpm() . ')'
    => sub { upgrade_case('h2c-upgrade-early', MisdirectTest::h2_mpm(), 1) };

done_testing;
