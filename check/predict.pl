#!/usr/bin/perl
# The prediction against the real server: random configurations built the
# way real sites are (t/lib/MisdirectPredict.pm says which features), each
# started with mod_misdirect loaded, its `apache2 -t -D DUMP_MISDIRECT_JSON`
# read, and every (SNI or none, Host) pair of the dump sent over HTTP/1.1
# (from a trusted and an untrusted loopback address, and with RSA-only and
# ECDSA-only clients where the handshake vhost has both) and over HTTP/2,
# plus a TLS 1.2 and a TLS 1.3 resumption per vhost.  Any difference in
# status, in who answered, in the handshake vhost or the SNI on the
# module's line, or in the counters of misdirect-status fails the run.
#
#   perl check/predict.pl        (make check-predict)
#
# MISDIRECT_PREDICT_SEED    seed of the first configuration (default: from
#                           the time); each configuration prints the seed
#                           that replays it alone
# MISDIRECT_PREDICT_ROUNDS  configurations (default 20)
# MISDIRECT_PREDICT_VHOSTS  vhosts per configuration (default 5 to 8)
use v5.36;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use MisdirectPredict;
use MisdirectTest;
use Time::HiRes qw(time);

# Each server's error_log is swept at its stop: what random
# configurations log at warn or above by design (MisdirectPredict.pm).
MisdirectPredict::expect_random_logs();

my $SEED = $ENV{MISDIRECT_PREDICT_SEED} // (time() ^ $$) % 2**32;
my $ROUNDS = $ENV{MISDIRECT_PREDICT_ROUNDS} // 20;
my $VHOSTS = $ENV{MISDIRECT_PREDICT_VHOSTS};
$SEED =~ /^\d+$/ && $SEED < 2**32
    or die "MISDIRECT_PREDICT_SEED: a number below 2**32, not '$SEED'\n";
$ROUNDS =~ /^\d+$/ && $ROUNDS >= 1
    or die "MISDIRECT_PREDICT_ROUNDS: a count, not '$ROUNDS'\n";
!defined $VHOSTS || $VHOSTS =~ /^\d+$/ && $VHOSTS >= 2
    or die "MISDIRECT_PREDICT_VHOSTS: 2 or more, not '$VHOSTS'\n";
$| = 1;
my $t0 = time;
print "predict: MISDIRECT_PREDICT_SEED=$SEED MISDIRECT_PREDICT_ROUNDS=$ROUNDS\n";
my ($stats, $wrong) = MisdirectPredict::run_rounds(seed => $SEED,
    rounds => $ROUNDS, vhosts => $VHOSTS,
    verbose => $ENV{MISDIRECT_PREDICT_VERBOSE});
if (@$wrong) {
    print "\nwrong answers by kind:\n", MisdirectPredict::report(@$wrong);
}
printf "\npredict: %s", MisdirectPredict::summary($stats);
printf "predict: %.0f s (%s)\n", time - $t0, MisdirectPredict::timing($stats) =~ s/\n//r;
exit(@$wrong || !$stats->{configurations} ? 1 : 0);
