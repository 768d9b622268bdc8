#!/usr/bin/perl
# mod_misdirect benchmark: what the module costs per request, measured
# against the same httpd binary without it, in the same run.  `make bench`
# runs it; `perl bench/bench.pl --help` lists the knobs.
#
# It generates everything it needs under a temporary directory (a CA and
# two certificates made with openssl, httpd configurations with 1 and
# 5,000 name-based TLS vhosts on loopback ports) and measures:
#
#   instructions  valgrind callgrind on a single-process httpd
#                 (apache2 -X): counters zeroed after warm-up, N requests
#                 on one keep-alive connection, dumped, and read for the
#                 whole process and for the module's own functions
#                 (misdirect_*, inclusive), plus heap allocations made
#                 under them;
#   throughput    h2load, HTTP/2 and HTTP/1.1 keep-alive, every round both
#                 alternated (without, with, back to back) and
#                 simultaneous (both servers under load at once on one
#                 CPU, which cancels the machine's other load); medians;
#   startup       time to the first served request, parent CPU time and
#                 parent RSS at 5,000 vhosts, with and without, alternated;
#                 medians and the fastest start of each.
#
# Traffic classes (SNI is always the target vhost's ServerName):
#   accepted  Host = SNI
#   reuse     Host = another vhost with the same certificate and TLS
#             settings (sni-host-mismatch, allowed; mod_ssl serves it)
#   reject    Host = a vhost whose certificate differs (cert-mismatch:
#             the module answers 421; without it mod_ssl does)
# The mixes are "all accepted", "half reuse" and "half rejected".
#
# Every server it starts is stopped on exit, also on error or signal.
# It asserts nothing about time: it measures and reports.


use v5.36;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Getopt::Long qw(GetOptions);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time);

use lib abs_path(dirname(abs_path($0)) . '/lib');
use Bench::Env;          # %opt, the tools, the traffic
use Bench::Proc;         # processes, files
use Bench::Server;       # configurations, httpd, h2load
use Bench::Callgrind;    # instructions per request, startup work
use Bench::Load;         # startup, throughput
use Bench::Report;       # bench/results.md

@ARGV_GIVEN = @ARGV;
GetOptions(\%opt, 'scales=s', 'rounds=i', 'cg-requests=i', 'cg-reject-h1=i',
    'cg-instances=i',
    'seconds=f', 'clients=i', 'streams=i', 'startup-rounds=i',
    'lint-scales=s', 'parts=s', 'module=s', 'out=s', 'keep!', 'quick', 'aa',
    'report-from=s', 'help') or usage(2);
usage(0) if $opt{help};
$opt{'cg-instances'} >= 1 && $opt{'cg-instances'} % 2
    or die "bench: --cg-instances wants an odd number: its median is"
        . " one server's figures\n";
if ($opt{quick}) {    # a smoke run of every part, a few minutes
    %opt = (%opt, scales => '1,500', rounds => 2, 'cg-requests' => 200,
        'cg-reject-h1' => 20, 'cg-instances' => 1, seconds => 1,
        'startup-rounds' => 1, 'lint-scales' => '250,500');
}

sub usage ($rc) {
    print <<~'EOF';
        usage: perl bench/bench.pl [options]
          --scales=1,5000        vhost counts (the largest also gets startup)
          --rounds=5             throughput rounds (alternated + simultaneous)
          --seconds=1.5          target length of one throughput run
          --clients=16           h2load connections (split in two for mixes)
          --streams=10           HTTP/2 streams per connection (h2load -m)
          --cg-requests=1000     requests per callgrind window
          --cg-reject-h1=100     rejected HTTP/1.1 requests (one connection
                                 each) per callgrind window
          --cg-instances=3       servers of each variant under callgrind;
                                 each figure is their median
          --startup-rounds=5     startups of each variant at the largest scale
          --lint-scales=2500,5000  configtest under callgrind: is the
                                 module's startup work linear in vhosts?
          --parts=callgrind,lint,startup,throughput
          --module=PATH          mod_misdirect.so (default .libs/)
          --out=bench/results.md
          --keep                 keep the temporary directory
          --quick                small smoke run of every part
          --aa                   A/A check: the "with" server loads no
                                 module either (shows the noise floor)
          --report-from=FILE     write the report again from the raw
                                 figures a run saved (bench/results.json)
        EOF
    exit $rc;
}

settle();

# ------------------------------------------------------------ main

sub main {
    if ($opt{'report-from'}) {
        my $d = JSON::PP->new->decode(slurp($opt{'report-from'}))
            or die "bench: $opt{'report-from'}: no figures\n";
        # Figures saved before --cg-instances came from one server each.
        %opt = (%opt, 'cg-instances' => 1, %{ $d->{opt} }, out => $opt{out});
        @SCALES = @{ $d->{scales} };
        my $md = report(@$d{qw(cg lint st tp mach started elapsed)});
        print $md;
        spew($opt{out}, $md);
        return;
    }
    my $t0 = time;
    my $started = POSIX::strftime('%Y-%m-%d %H:%M UTC', gmtime);
    my $mach = machine();
    print "mod_misdirect benchmark: scales @SCALES, parts $opt{parts}\n";
    setup_tmp();
    my ($cg, $lint, $st, $tp);
    if ($PART{callgrind}) {
        ($cg, $lint) = part_callgrind();
    }
    elsif ($PART{lint}) {
        lint_finish($lint = lint_start());
    }
    my $up = {};
    if ($PART{startup}) {
        my $keep;
        ($st, $keep) = part_startup($PART{throughput});
        $up->{ $SCALES[-1] } = $keep;
    }
    $tp = part_throughput($up) if $PART{throughput};
    # The raw figures, to write the report again without measuring.
    my $json = $opt{out} =~ s/\.md$//r . '.json';
    spew($json, JSON::PP->new->canonical->allow_blessed->convert_blessed
        ->encode({ opt => \%opt, scales => \@SCALES, cg => $cg,
            lint => [map { { scale => $_->{scale}, result => $_->{result},
                lint_lines => $_->{lint_lines} } } @{ $lint // [] }],
            st => $st, tp => $tp, mach => $mach, started => $started,
            elapsed => time - $t0 }));
    my $md = report($cg, $lint, $st, $tp, $mach, $started, time - $t0);
    print "\n$md";
    spew($opt{out}, $md);
    print "written to $opt{out}\n";
}

main();
