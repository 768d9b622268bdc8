package Bench::Env;
# What every part of the benchmark shares: the httpd and tools it runs,
# this run's options (bench.pl parses them into %opt, then calls
# settle()), and the traffic classes and mixes it sends.

use v5.36;
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);

our $REPO;
BEGIN { $REPO = abs_path(dirname(abs_path(__FILE__)) . '/../../..') }
use lib "$REPO/t/lib";
use MisdirectTest ();    # where httpd and its modules are (apxs -q)
use Bench::Proc qw(slurp);

our @EXPORT = qw($REPO $APACHE $MODDIR %TOOL $RUN_USER $RUN_UID $RUN_GID
    @AS_RUN_USER $NCPU @PIN_SERVER @PIN_CLIENT @ARGV_GIVEN %opt @SCALES
    @LINT_SCALES %PART @PROTOS %PROTO_NAME @CLASSES @MIXES @ALLOC_FNS
    %CLASS_HOST %CLASS_STATUS target settle);

our $APACHE  = MisdirectTest::httpd_binary();
our $MODDIR  = MisdirectTest::module_dir();
our %TOOL = map { $_ => "/usr/bin/$_" } qw(h2load valgrind callgrind_control
    vgdb openssl curl setpriv taskset);
our $RUN_USER = 'www-data';    # httpd's User; valgrind runs as it too
our ($RUN_UID, $RUN_GID, @AS_RUN_USER);

our @ARGV_GIVEN;
our %opt = (
    scales           => '1,5000',
    rounds           => 5,
    'cg-requests'    => 1000,
    'cg-reject-h1'   => 100,
    'cg-instances'   => 3,
    seconds          => 1.5,
    clients          => 16,
    streams          => 10,
    'startup-rounds' => 5,
    'lint-scales'    => '2500,5000',
    parts            => 'callgrind,lint,startup,throughput',
    module           => "$REPO/.libs/mod_misdirect.so",
    out              => "$REPO/bench/results.md",
    keep             => 0,
);

our (@SCALES, @LINT_SCALES, %PART);
our @PROTOS = qw(h1 h2);
our %PROTO_NAME = (h1 => 'HTTP/1.1', h2 => 'HTTP/2');
our @CLASSES = qw(accepted reuse reject);
our @MIXES = (
    [all    => 'all accepted',                     'accepted', 'accepted'],
    [reuse  => 'half reuse (sni-host-mismatch, allowed)', 'accepted', 'reuse'],
    [reject => 'half rejected (cert-mismatch, 421)', 'accepted', 'reject'],
);
# Allocation entry points whose callers callgrind records (see
# --separate-callers): any of these reached from a misdirect_* function
# is heap (or pool) allocation done by the module.
our @ALLOC_FNS = qw(malloc calloc realloc apr_palloc apr_bucket_alloc
    apr_pool_create_ex);

our $NCPU = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;
# On two or more CPUs, httpd gets CPU 0 and h2load CPU 1, so that the
# server is what limits throughput.
our @PIN_SERVER = $NCPU >= 2 ? ($TOOL{taskset}, '-c', '0') : ();
our @PIN_CLIENT = $NCPU >= 2 ? ($TOOL{taskset}, '-c', '1') : ();

# The vhost every request's handshake is for: the last generated one, so
# that core's name lookup walks the whole list.
sub target ($scale) { "v$scale.bench.test" }

our %CLASS_HOST = (
    accepted => sub ($scale) { target($scale) },
    reuse    => sub ($scale) { 'peer.bench.test' },
    reject   => sub ($scale) { 'other.test' },
);
our %CLASS_STATUS = (accepted => '2xx', reuse => '2xx', reject => '4xx');

# Once the options are read: what they select, and whether this machine
# can run it.
sub settle {
    @SCALES = sort { $a <=> $b } split /,/, $opt{scales};
    @LINT_SCALES = sort { $a <=> $b } grep { $_ } split /,/,
        $opt{'lint-scales'};
    %PART = map { $_ => 1 } split /,/, $opt{parts};
    for my $t (sort keys %TOOL) {
        -x $TOOL{$t}
            or die "bench: $TOOL{$t} missing (make bench installs it)\n";
    }
    -x $APACHE or die "bench: $APACHE missing: apt-get install apache2\n";
    -f $opt{module} or die "bench: $opt{module} missing: run make first\n";
    $> == 0 or die "bench: run as root (httpd binds, then becomes $RUN_USER)\n";
    (undef, undef, $RUN_UID, $RUN_GID) = getpwnam($RUN_USER)
        or die "bench: no user $RUN_USER\n";
    @AS_RUN_USER = ($TOOL{setpriv}, "--reuid=$RUN_UID", "--regid=$RUN_GID",
        '--clear-groups');
}

1;
