# MisdirectLogLimit: a flood of misdirected requests does not flood
# error_log, and nothing is dropped unaccounted.  Repeats of one line (the
# same message, cause, handshake vhost, request vhost, SNI and host) fold
# into one summary (MISDIRECT009, repeated="K"), written within 5 s even
# when no request follows, and when the child exits; a line the second's
# budget has no room for waits, whole, for a second with room.  Every
# request is still decided, and the lines account for every one of them.
use v5.36;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use MisdirectTest;

# One child process, so one fold table sees every request.
my $ONE_CHILD = ($ENV{MISDIRECT_MPM} // 'event') eq 'prefork'
    ? "ServerLimit 1\nStartServers 1\nMinSpareServers 1\n"
      . "MaxSpareServers 1\nMaxRequestWorkers 1"
    : "ServerLimit 1\nStartServers 1\nMaxRequestWorkers 10\n"
      . "MinSpareThreads 1\nMaxSpareThreads 10";

# The module's own 421: b.wild.test has a.wild.test's certificate files
# (mod_ssl serves it), and *.wild.test does not cover x.b.wild.test or
# any other name under b.wild.test.  alpha.test/beta.test: mod_ssl's 421.
sub flood ($s, $n, $sni = 'a.wild.test', $host = sub { 'x.b.wild.test' }) {
    my @st;
    for my $i (1 .. $n) {
        my ($r) = $s->https(sni => $sni, requests => [{ host => $host->($i) }]);
        push @st, $r->{status};
    }
    return @st;
}

# The lines of message $logno since $mark and the requests they account
# for: a line written at once is one, a line that waited says how many
# it stands for (repeated=), a summary adds its repeated=.
sub account ($s, $mark, $logno) {
    my @lines = grep { /MISDIRECT(?:$logno|009)/ } split /\n/,
        $s->error_log_since($mark);
    my ($detail, $sum, %host, %per_second) = (0, 0);
    for (@lines) {
        my ($rep) = /repeated="(\d+)"/;
        if (/MISDIRECT009: \d+ more like the MISDIRECT$logno: line above/) {
            $sum += $rep;
            next;
        }
        next unless /MISDIRECT$logno:/;
        $detail++;
        $sum += $rep // 1;
        $host{$1}++ if / host="([^"]+)"/;
        $per_second{ (/^\[(\w+ \w+ \d+ [\d:]+)/)[0] }++;
    }
    my $max = (sort { $b <=> $a } values %per_second)[0] // 0;
    return { detail => $detail, sum => $sum, hosts => \%host,
        max_per_second => $max, lines => scalar @lines };
}

# Waits until the lines account for $total requests ($timeout seconds).
sub wait_account ($s, $mark, $logno, $total, $timeout) {
    my $deadline = time + $timeout;
    my $a;
    while (1) {
        $a = account($s, $mark, $logno);
        return $a if $a->{sum} >= $total || time > $deadline;
        sleep 0.2;
    }
}

{
    my $s = MisdirectTest->new(name => 'log-limit',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006 MISDIRECT009)],
        global => "MisdirectLogLimit 3\n$ONE_CHILD");

    # A burst of one pair, as one browser page load brings.
    my $mark = $s->mark;
    my $t0 = time;
    my @st = flood($s, 19);
    my $took = time - $t0;
    is_deeply \@st, [(421) x 19], 'all 19 requests rejected';
    my $last = time;
    my $a = wait_account($s, $mark, '001', 19, 8);
    is $a->{sum}, 19, 'the lines account for all 19 requests';
    ok time - $last <= 6, 'the summary came within 5 s, no request after';
    ok $a->{detail} <= 1 + int($took / 4),
        "one detailed line per window of 4 s ($a->{detail} in "
        . sprintf('%.1f', $took) . ' s)';
    ok $a->{lines} <= 2 * (1 + int($took / 4)),
        "and a summary per window ($a->{lines} lines)";
    like $s->error_log_since($mark), qr/\[misdirect:error\] .*MISDIRECT009: \d+ more like the MISDIRECT001: line above were folded: cause="client-override" handshake_vhost="a\.wild\.test \([^"]+\)" request_vhost="b\.wild\.test \([^"]+\)" sni="a\.wild\.test" host="x\.b\.wild\.test" repeated="\d+" window="[\d:]+-[\d:]+ UTC"/,
        'the summary names the pair, the count and the window';
    my @acc = grep { / 421 cert-mismatch reject / } split /\n/,
        $s->access_log_since($mark);
    is scalar(@acc), 19, 'every request is still recorded in its variables';

    # Many pairs, more than the budget: each is written in detail once,
    # waiting for a second with room, and never more than 3 a second.
    sleep 1;
    $mark = $s->mark;
    @st = flood($s, 12, 'a.wild.test', sub ($i) { "x$i.b.wild.test" });
    is_deeply \@st, [(421) x 12], '12 hosts, 12 rejections';
    $a = wait_account($s, $mark, '001', 12, 10);
    is $a->{sum}, 12, 'the lines account for all 12';
    is scalar(keys %{ $a->{hosts} }), 12, 'every host is written in detail';
    ok $a->{max_per_second} <= 3,
        "at most 3 detailed lines in any second ($a->{max_per_second})";

    # mod_ssl's refusals are explained within the same rules.
    sleep 1;
    $mark = $s->mark;
    @st = flood($s, 10, 'alpha.test', sub { 'beta.test' });
    is_deeply \@st, [(421) x 10], 'mod_ssl refuses 10 requests';
    $a = wait_account($s, $mark, '006', 10, 8);
    is $a->{sum}, 10, 'the lines account for all 10 of mod_ssl\'s 421s';
    is scalar(() = $s->error_log_since($mark) =~ /AH02032/g), 10,
        'mod_ssl\'s own lines are not limited';

    # A child that exits writes what it owes.
    $mark = $s->mark;
    flood($s, 5);
    $s->stop;
    $a = account($s, $mark, '001');
    is $a->{sum}, 5, 'a stopped child wrote the summary of its last second';
    unlike $s->error_log_since($mark), qr/exit signal|AH00052/,
        'and exited cleanly';
}

{
    # debug lines (allowed findings) are neither limited nor folded, and do
    # not use up the rejections' budget.
    my $s = MisdirectTest->new(name => 'log-limit-debug',
        expect_log => ['MISDIRECT001'],
        global => "MisdirectLogLimit 3\n$ONE_CHILD");
    my $mark = $s->mark;
    for (1 .. 6) {
        $s->https(sni => undef, requests => [{ host => 'default.test' }]);
    }
    my @st = flood($s, 3, 'a.wild.test', sub ($i) { "y$i.b.wild.test" });
    is_deeply \@st, [421, 421, 421], 'three rejections after six findings';
    my $log = $s->error_log_since($mark);
    is scalar(() = $log =~ /MISDIRECT003/g), 6, 'six debug lines, all logged';
    is scalar(() = $log =~ /MISDIRECT001/g), 3,
        'and all three rejections logged at once';
}

{
    # Hundreds of pairs whose windows end at different times: the table
    # frees the ended ones while the rest go on, and still finds each of
    # those, so no pair gets a second detailed line within its window.
    # The first stream of each connection is served, so that every
    # refused one is a later request with one cause.
    my $s = MisdirectTest->new(name => 'log-limit-table',
        expect_log => [qw(MISDIRECT001 MISDIRECT009)],
        mpm => MisdirectTest::h2_mpm(),
        # h2 runs on a threaded MPM whatever MISDIRECT_MPM says.
        global => "MisdirectLogLimit 1000\nServerLimit 1\nStartServers 1\n"
            . "MaxRequestWorkers 10\nMinSpareThreads 1\nMaxSpareThreads 10");
    my $mark = $s->mark;
    my ($sent, $refused, $t0) = (0, 0, time);
    srand 62;
    while (time - $t0 < 12) {
        my @hosts = map { 'x' . int(rand 400) . '.b.wild.test' } 1 .. 60;
        my $res = $s->h2(sni => 'a.wild.test', streams => [
            map { { authority => $_, path => '/' } } 'a.wild.test', @hosts ]);
        $sent += @hosts;
        $refused += grep { $_->{status} == 421 } $res->{streams}->@*;
    }
    is $refused, $sent, "$sent streams for 400 hosts, all refused";
    my $a = wait_account($s, $mark, '001', $sent, 10);
    is $a->{sum}, $sent, 'the lines account for every one';
    my (%at, @early);
    for (split /\n/, $s->error_log_since($mark)) {
        next unless /\] MISDIRECT001: / && / host="([^"]+)"/;
        my $host = $1;
        my ($h, $m, $sec) = /^\[\w+ \w+ \d+ (\d+):(\d+):([\d.]+) /;
        my $t = $h * 3600 + $m * 60 + $sec;
        push @early, sprintf('%s %.2f s after its last', $host,
            $t - $at{$host}) if defined $at{$host} && $t - $at{$host} < 3.9;
        $at{$host} = $t;
    }
    is scalar(@early), 0, 'no host got a second detailed line within its '
        . 'window of 4 s (' . scalar(keys %at) . ' hosts)'
        or diag join "\n", @early[0 .. ($#early < 9 ? $#early : 9)];
}

{
    # prefork has no thread to write what is due: each line does, a
    # repeat too.  A steady repeat of one pair, and nothing else, still
    # closes its window of 4 s with a summary.
    my $s = MisdirectTest->new(name => 'log-limit-prefork',
        # One child on purpose: prefork says so when it is busy (AH00161).
        expect_log => [qw(MISDIRECT001 MISDIRECT009 AH00161)],
        mpm => 'prefork',
        global => "MisdirectLogLimit 3\nServerLimit 1\nStartServers 1\n"
            . "MinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1");
    my $mark = $s->mark;
    my $t0 = time;
    my $n = 0;
    while (time - $t0 < 7) {
        flood($s, 1);
        $n++;
        sleep 0.4;
    }
    my $log = $s->error_log_since($mark);
    like $log, qr/MISDIRECT009: \d+ more like the MISDIRECT001: line above/,
        "prefork: $n repeats over 7 s wrote a summary while they went on";
    my $a = account($s, $mark, '001');
    ok $a->{sum} >= $n - 4 && $a->{sum} <= $n,
        "and the lines account for all but the open window ($a->{sum} of $n)";
}

{
    my $s = MisdirectTest->new(name => 'log-limit-off',
        expect_log => ['MISDIRECT001'],
        global => "MisdirectLogLimit 0\n$ONE_CHILD");
    my $mark = $s->mark;
    flood($s, 15);
    my @lines = grep { /MISDIRECT001/ } split /\n/, $s->error_log_since($mark);
    is scalar(@lines), 15, 'MisdirectLogLimit 0: every line logged';
    unlike $s->error_log_since($mark), qr/MISDIRECT009/, 'none folded';
}

done_testing;
