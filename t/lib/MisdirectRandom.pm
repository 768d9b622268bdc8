package MisdirectRandom;

# A replayable random sequence for the tests that draw configurations:
# xorshift32, the same on every perl, and nothing else (File::Temp draws
# from rand) moves it.  reseed(N) starts it; rnd(N) is 0 .. N-1;
# rng_state() is where it is.

use v5.36;
use Exporter 'import';

our @EXPORT = qw(reseed rnd pick chance rng_state);

my $rng = 1;

sub reseed ($seed) { $rng = ($seed % 2**32) || 0x9e3779b9 }

sub rnd ($n) {
    $rng ^= ($rng << 13) & 0xffffffff;
    $rng ^= $rng >> 17;
    $rng ^= ($rng << 5) & 0xffffffff;
    return $rng % $n;
}

sub pick (@list) { $list[ rnd(scalar @list) ] }

sub chance ($p) { rnd(1000) < $p * 1000 }

# Where the sequence is: the seed of a next round that replays alone.
sub rng_state () { $rng }

1;
