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

# What random configurations log at warn or above by design, whatever the
# seed (check/predict.pl declares the same): the module's lines and its
# lint; mod_ssl's 421s, its certificates that do not name their vhost,
# its 403s after a post-handshake authentication or a renegotiation that
# the client cannot answer, and a client certificate refused where SNI
# chose an SSLEngine off vhost, whose verify depth mod_ssl leaves unset.
MisdirectTest->expect_log(qw(MISDIRECT001 MISDIRECT002 MISDIRECT006
        MISDIRECT010 MISDIRECT011 MISDIRECT012 MISDIRECT015
        AH02032 AH01909 AH10158 AH02261),
    qr/^AH02040: Certificate Verification: Certificate Chain too long /,
    qr/^SSL Library Error: error:0A000117:/,
    qr/^SSL Library Error: error:0A0000C7:/);

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
