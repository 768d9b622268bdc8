# What fuzzing found, kept as tests that make test runs: every fuzz
# target replays its committed corpus (fuzz/corpus/<target>/, seeds and
# regressions) through fuzz/replay.c with the ordinary compiler, so a
# property that a seed once broke stays checked without clang; and the
# behaviour behind each regression, through the server.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use Test::More;
use MisdirectTest;

my $REPO = "$FindBin::Bin/..";
my $CC   = $ENV{CC} // 'cc';
my $OUT  = "$FindBin::Bin/tmp/fuzz-replay-$$";
make_path($OUT);

opendir my $dh, "$REPO/fuzz/corpus" or die "$REPO/fuzz/corpus: $!\n";
my @targets = sort grep { -d "$REPO/fuzz/corpus/$_" && !/^\./ } readdir $dh;
ok @targets >= 8, 'a corpus for every fuzz target' or diag "@targets";

for my $t (@targets) {
    subtest "fuzz target $t replays its corpus" => sub {
        my $bin = "$OUT/replay_$t";
        my $cmd = "$CC -Wall -Wextra -Werror -O1 -g -I$REPO/src -I$REPO/fuzz"
            . " -o $bin $REPO/fuzz/fuzz_$t.c $REPO/fuzz/replay.c"
            . " $REPO/src/misdirect_logic.c 2>&1";
        my $cc_out = qx($cmd);
        is $?, 0, 'builds with cc' or return diag $cc_out;
        my $out = qx($bin $REPO/fuzz/corpus/$t 2>&1);
        is $?, 0, 'every input keeps every property'
            # The input that failed and the property it broke.
            or diag join "\n", grep { /PROPERTY|ERROR|error|replay: / }
                (split /\n/, $out)[-3 .. -1];
    };
}

# fuzz/corpus/host_normalize/double-trailing-dot: "example.com.." came
# out of misdirect_host_normalize as "example.com.", keeping a trailing
# dot, which r->hostname never has: a MisdirectAllow entry written so was
# accepted and silently matched nothing.  Either the directive refuses it
# (core refuses such a Host with 400) or it allows the host.
subtest 'MisdirectAllow with two trailing dots refuses or matches' => sub {
    my %opt = (name => 'fuzz-allow-dots', ssl => 0, h2 => 0,
        global => "MisdirectPolicy unknown-host reject\n"
            . "MisdirectAllow nosuch.test..");
    my ($rc, $out) = MisdirectTest::configtest(%opt);
    if ($rc) {
        like $out, qr/MisdirectAllow.*nosuch\.test\.\./,
            'refused at configuration, naming the directive and value';
        return;
    }
    my $s = MisdirectTest->new(%opt);
    my $res = $s->http(requests => [{ host => 'nosuch.test' }]);
    is $res->{status}, 200, 'accepted, so it allows nosuch.test'
        or diag $s->error_log_since =~ s/.*\n(?=.*\n.*\n\z)//sr;
};

done_testing;
