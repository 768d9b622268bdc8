# The prediction against the real server on one small random
# configuration with a fixed seed: the round that `make check-predict`
# runs on many (check/predict.pl, t/lib/MisdirectPredict.pm).  Every pair
# of the dump, over HTTP/1.1 and HTTP/2, and the resumptions, must get
# the predicted answer from the predicted party, with the handshake vhost
# and SNI on the module's lines and the counters as the answers say.
#
# MISDIRECT_PREDICT_SEED  another seed (default a fixed one)
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectPredict;
use MisdirectTest;

# Each server's error_log is swept at its stop: what random
# configurations log at warn or above by design (MisdirectPredict.pm).
MisdirectPredict::expect_random_logs();

my $SEED = $ENV{MISDIRECT_PREDICT_SEED} // 20261207;
diag "MISDIRECT_PREDICT_SEED=$SEED";
my ($stats, $wrong) = MisdirectPredict::run_rounds(seed => $SEED,
    rounds => 1, vhosts => 4, say => sub ($m) { note $m });
is $stats->{configurations}, 1, 'the configuration started';
ok $stats->{pairs} > 0 && $stats->{streams} > 0 && $stats->{resumptions} > 0,
    'pairs, streams and resumptions were sent';
note MisdirectPredict::summary($stats);
is scalar @$wrong, 0, 'every answer as predicted'
    or diag MisdirectPredict::report(@$wrong);
done_testing;
