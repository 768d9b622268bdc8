# SSLVHostSNIPolicy across restarts.  mod_ssl keeps the policy in its
# process-wide configuration, which restarts keep, and only the directive
# writes it: a changed value applies at a graceful restart, but a removed
# line leaves the old value in force, through graceful and full restarts,
# until httpd is stopped and started.  The module judges by the value
# mod_ssl really uses, and says at the restart that the removal did not
# apply (MISDIRECT042); the prediction, made by a fresh process, says that
# a running server may keep an old value.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $BEGIN = '# policy begin';
my $END   = '# policy end';

# Replaces the global SSLVHostSNIPolicy line (undef: no line at all).
sub set_policy ($s, $policy) {
    my $file = $s->conf_file;
    open my $in, '<', $file or die "$file: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    my $line = defined $policy ? "SSLVHostSNIPolicy $policy\n" : '';
    $conf =~ s/^\Q$BEGIN\E\n.*?^\Q$END\E$/$BEGIN\n$line$END/ms
        or die "no policy markers in $file";
    open my $out, '>', $file or die "$file: $!";
    print $out $conf;
    close $out;
}

sub global ($policy) {
    return "$BEGIN\nSSLVHostSNIPolicy $policy\n$END\n";
}

# SNI alpha.test, host beta.test: other certificates, so mod_ssl refuses
# the request under secure and serves it under insecure.
sub cross ($s) { probe($s, sni => 'alpha.test', host => 'beta.test') }

sub kept_warnings ($text) {
    return grep { /MISDIRECT042/ } split /\n/, $text;
}

# Warnings and worse since a restart, but the lint's and OpenSSL's
# version notice, which every start logs.
sub other_warnings ($text) {
    return grep { /:(?:warn|error|crit|alert|emerg)\]/ && !/AH10034: /
                  && !/MISDIRECT01[01]|AH01882|MISDIRECT042/ }
        split /\n/, $text;
}

subtest 'httpd alone keeps a removed SSLVHostSNIPolicy until a stop' => sub {
    my $s = MisdirectTest->new(name => 'policy-restart-stock',
        misdirect => 0, global => global('insecure'));
    is cross($s)->{status}, 200, 'insecure: served';
    set_policy($s, undef);
    $s->graceful;
    is cross($s)->{status}, 200, 'line removed, graceful: still served';
    $s->restart;
    is cross($s)->{status}, 200, 'and after a full restart';
    set_policy($s, 'secure');
    $s->graceful;
    $s->expect_log('AH02032');    # mod_ssl's 421 from now on
    is cross($s)->{status}, 421, 'secure set, graceful: refused at once';
    $s->stop;
};

my $s = MisdirectTest->new(name => 'policy-restart',
    global => global('insecure'), expect_log => ['MISDIRECT002']);
is scalar(kept_warnings($s->error_log_since)), 0,
    'no MISDIRECT042 at a start';

expect_case('insecure: reported and served', cross($s),
    status => 200, reason => 'cert-mismatch', action => 'report',
    logno => '002');

# The line goes, the old value stays.
for my $how (qw(graceful restart)) {
    set_policy($s, undef);
    my $mark = $s->mark;
    $s->expect_log('MISDIRECT042');    # at this restart, not at the start
    $s->$how;
    my $log = $s->error_log_since($mark);
    my @kept = kept_warnings($log);
    is scalar(@kept), 1, "$how without the line: one MISDIRECT042";
    like $kept[0] // '', qr/\[misdirect:warn\] .*MISDIRECT042: SSLVHostSNIPolicy is no longer set, but mod_ssl keeps insecure, .* instead of the default secure: .*only stopping and starting httpd applies secure; mod_misdirect judges by insecure/,
        'it names the kept and the new policy and what applies the new one';
    like $log, qr/MISDIRECT014: SSLVHostSNIPolicy insecure: /,
        'cert-mismatch still defaults to report';
    is_deeply [other_warnings($log)], [], 'no other warning';

    my $r = cross($s);
    expect_case("$how without the line: served, as mod_ssl does", $r,
        status => 200, reason => 'cert-mismatch', action => 'report',
        logno => '002');
    my ($line) = grep { /MISDIRECT002/ } split /\n/, $r->{error_log};
    my $f = fields($line // '');
    is $f->{ssl_policy}, 'insecure', "$how: the line says mod_ssl's policy";
    is $f->{ssl_verdict}, 'serve', "$how: and mod_ssl's verdict";
}

# What the prediction says of the same configuration: a fresh process
# judges by secure, and says a running server may keep another value.
{
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT', '-d', $s->root, '-f', $s->conf_file);
    is $rc, 0, '-t -D DUMP_MISDIRECT succeeds' or diag $err;
    like $out, qr/^mod_misdirect prediction: .*; SSLVHostSNIPolicy secure \(not set: a running httpd that had it set keeps that value through restarts until it is stopped and started\)$/m,
        'the dump says a running server may keep an old policy';
    like $out, qr/421 by mod_ssl \(SSLVHostSNIPolicy secure/,
        'and predicts for a fresh start';
}

# Setting the value applies it at once; removing it then keeps secure,
# which is the default, so nothing to warn about.
set_policy($s, 'secure');
my $mark = $s->mark;
$s->graceful;
$s->expect_log(qw(AH02032 MISDIRECT006));    # mod_ssl's 421s from now on
is scalar(kept_warnings($s->error_log_since($mark))), 0,
    'secure set: no MISDIRECT042';
my $r = cross($s);
expect_case('secure set, graceful: mod_ssl refuses', $r, status => 421,
    logno => '006');
like $r->{error_log}, qr/ ssl_policy="secure" ssl_verdict="refuse"/,
    'the line says secure';
{
    my ($rc, $out) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT', '-d', $s->root, '-f', $s->conf_file);
    like $out, qr/^mod_misdirect prediction: .*; SSLVHostSNIPolicy secure$/m,
        'a set policy: no caveat in the dump';
}

set_policy($s, undef);
$mark = $s->mark;
$s->graceful;
is scalar(kept_warnings($s->error_log_since($mark))), 0,
    'removed again after secure: no MISDIRECT042';
expect_case('removed after secure: mod_ssl refuses', cross($s),
    status => 421, logno => '006');

unlike $s->error_log_since, qr/exit signal|Segmentation/, 'no child crashed';

done_testing;
