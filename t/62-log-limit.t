# MisdirectLogLimit: a flood of misdirected requests does not flood
# error_log; every request is still decided, and the suppressed lines are
# counted in one line.
use v5.36;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use MisdirectTest;

# One child process, so one limiter sees every request.
my $ONE_CHILD = ($ENV{MISDIRECT_MPM} // 'event') eq 'prefork'
    ? "ServerLimit 1\nStartServers 1\nMinSpareServers 1\n"
      . "MaxSpareServers 1\nMaxRequestWorkers 1"
    : "ServerLimit 1\nStartServers 1\nMaxRequestWorkers 10\n"
      . "MinSpareThreads 1\nMaxSpareThreads 10";

# The module's own 421: b.wild.test has a.wild.test's certificate files
# (mod_ssl serves it), and *.wild.test does not cover x.b.wild.test.  With
# $sni_host alpha.test/beta.test (other certificates), mod_ssl's 421
# instead, which the module explains.
sub flood ($s, $n, $sni = 'a.wild.test', $host = 'x.b.wild.test') {
    my @st;
    for (1 .. $n) {
        my ($r) = $s->https(sni => $sni, requests => [{ host => $host }]);
        push @st, $r->{status};
    }
    return @st;
}

# Checks that at most $limit lines numbered $logno were written in any
# second and that written and suppressed lines add up to $total.
sub check_limited ($s, $mark, $logno, $limit, $total) {
    ok $s->wait_error_log(qr/MISDIRECT005/, $mark), 'a suppressed-count line';
    # MISDIRECT006 is written at log_transaction, after the response.
    my ($log, @lines, $suppressed);
    for my $try (1 .. 50) {
        $log = $s->error_log_since($mark);
        @lines = grep { /MISDIRECT$logno/ } split /\n/, $log;
        $suppressed = 0;
        $suppressed += $_ for $log =~ /MISDIRECT005: (\d+) diagnosis lines? suppressed by MisdirectLogLimit $limit/g;
        last if @lines + $suppressed >= $total;
        sleep 0.1;
    }
    my %per_second;
    $per_second{ ($_ =~ /^\[(\w+ \w+ \d+ [\d:]+)/)[0] }++ for @lines;
    my $max = (sort { $b <=> $a } values %per_second)[0];
    ok $max <= $limit,
        "at most $limit MISDIRECT$logno lines in any second (saw $max)";
    ok $suppressed > 0, "lines were suppressed ($suppressed)";
    is @lines + $suppressed, $total, 'logged + suppressed = every request';
}

{
    my $s = MisdirectTest->new(name => 'log-limit',
        global => "MisdirectLogLimit 3\n$ONE_CHILD");
    my $mark = $s->mark;
    my @st = flood($s, 20);
    is_deeply \@st, [(421) x 20], 'all 20 requests rejected';
    sleep 1.2;    # the next second: the next line reports the suppressed
    push @st, flood($s, 1);
    is $st[-1], 421, 'and the 21st';
    check_limited($s, $mark, '001', 3, 21);
    my @acc = grep { / 421 cert-mismatch reject / } split /\n/,
        $s->access_log_since($mark);
    is scalar(@acc), 21, 'every request is still recorded in its variables';

    # mod_ssl's refusals are explained within the same limit.
    sleep 1.2;
    $mark = $s->mark;
    @st = flood($s, 20, 'alpha.test', 'beta.test');
    is_deeply \@st, [(421) x 20], 'mod_ssl refuses 20 requests';
    sleep 1.2;
    push @st, flood($s, 1, 'alpha.test', 'beta.test');
    is $st[-1], 421, 'and the 21st';
    check_limited($s, $mark, '006', 3, 21);
    is scalar(() = $s->error_log_since($mark) =~ /AH02032/g), 21,
        'mod_ssl\'s own lines are not limited';
}

{
    # debug lines (allowed findings) do not use up the rejections' budget.
    my $s = MisdirectTest->new(name => 'log-limit-debug',
        global => "MisdirectLogLimit 3\n$ONE_CHILD");
    my $mark = $s->mark;
    for (1 .. 6) {
        $s->https(sni => undef, requests => [{ host => 'default.test' }]);
    }
    my @st = flood($s, 3);
    is_deeply \@st, [421, 421, 421], 'three rejections after six findings';
    my $log = $s->error_log_since($mark);
    is scalar(() = $log =~ /MISDIRECT003/g), 6, 'six debug lines, all logged';
    is scalar(() = $log =~ /MISDIRECT001/g), 3,
        'and all three rejections logged within the limit of 3';
}

{
    my $s = MisdirectTest->new(name => 'log-limit-off',
        global => "MisdirectLogLimit 0\n$ONE_CHILD");
    my $mark = $s->mark;
    flood($s, 15);
    my @lines = grep { /MISDIRECT001/ } split /\n/, $s->error_log_since($mark);
    is scalar(@lines), 15, 'MisdirectLogLimit 0: every line logged';
}

done_testing;
