# Unit tests of the pure decision logic: runs the C test binary that
# `make test` builds, whose output is TAP.
use strict;
use warnings;
use FindBin;

my $bin = "$FindBin::Bin/unit/test_logic";
-x $bin or die "$bin is missing: run 'make test' (or 'make unit')\n";
exec $bin or die "cannot run $bin: $!\n";
