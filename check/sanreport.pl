#!/usr/bin/perl
# Reads the ASan/UBSan/LSan report files of a sanitizer run and fails on
# any report that concerns mod_misdirect.
#
#   perl check/sanreport.pl DIR
#
# Every UBSan report counts: only the module is instrumented for UB, so
# each one is in its code.  Every ASan error counts, wherever it is: an
# overflow that the module causes may surface in httpd's frames.  A leak
# counts when a frame of its allocation stack is the module's; the rest
# are httpd's and OpenSSL's allocations that a process never frees before
# it exits (mod_ssl's SSL_CTXs, APR allocators), listed as a total only.
use v5.36;

my $dir = shift // die "usage: $0 DIR\n";
opendir my $dh, $dir or die "$dir: $!\n";
my @files = sort grep { -f "$dir/$_" } readdir $dh;

my (%ub, @asan, @leaks, $other_leaks, $other_bytes);
$other_leaks = $other_bytes = 0;
my $MODULE = qr/mod_misdirect|\bmisdirect_\w+|src\/misdirect_/;

for my $f (@files) {
    open my $fh, '<', "$dir/$f" or die "$dir/$f: $!\n";
    my $text = do { local $/; <$fh> } // '';
    # UBSan: "file:line:col: runtime error: what" and its stack.
    while ($text =~ /^(\S+:\d+:\d+): runtime error: (.*)$/mg) {
        my ($where, $what) = ($1, $2);
        $what =~ s/0x[0-9a-f]+/0x.../g;
        $ub{"$where: $what"}++;
    }
    # ASan errors other than leaks: the whole report.
    while ($text =~ /^(==\d+==ERROR: AddressSanitizer: .*?)(?=^SUMMARY|\z)/msg) {
        push @asan, "$f: $1";
    }
    # LSan: one block per leak.
    while ($text =~ /^((?:Direct|Indirect) leak of (\d+) byte.*?)(?=^(?:Direct|Indirect) leak|^SUMMARY|\z)/msg) {
        my ($block, $bytes) = ($1, $2);
        if ($block =~ $MODULE) {
            push @leaks, "$f: $block";
        }
        else {
            $other_leaks++;
            $other_bytes += $bytes;
        }
    }
}

my $fail = 0;
if (%ub) {
    $fail = 1;
    say "UBSan: ", scalar(keys %ub), " distinct reports:";
    say "  $ub{$_}x $_" for sort keys %ub;
}
if (@asan) {
    $fail = 1;
    say "ASan: ", scalar(@asan), " errors:";
    say $_ for @asan;
}
if (@leaks) {
    $fail = 1;
    say "LSan: ", scalar(@leaks), " leaks with a mod_misdirect frame:";
    say $_ for @leaks;
}
say "report files: ", scalar(@files), "; leaks outside the module at exit ",
    "(httpd, mod_ssl, OpenSSL; not counted): $other_leaks ($other_bytes ",
    "bytes)";
say $fail ? "sanitizers: FAILED" : "sanitizers: no report concerning "
    . "mod_misdirect";
exit $fail;
