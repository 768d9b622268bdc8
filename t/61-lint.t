# MisdirectLint: at startup and under configtest, warnings about names a
# vhost's own certificate does not cover, a default vhost whose TLS
# settings differ from its siblings, and a name claimed twice on an address.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;

# A late vhost claiming beta.test again on the TLS address.
my $dup = <<'EOF_CONF';
<VirtualHost 127.0.0.1:@TLS_PORT@>
ServerName beta.test
SSLEngine on
SSLCertificateFile ${PKI}/beta.crt
SSLCertificateKeyFile ${PKI}/beta.key
</VirtualHost>
EOF_CONF
my $pki = MisdirectTest::pki();
$dup =~ s/\$\{PKI\}/$pki/g;

sub lint_lines ($text) { grep { /MISDIRECT01\d: Lint:/ } split /\n/, $text }

sub check_lint ($label, $text, $conf) {
    my @lines = lint_lines($text);
    my @l010 = grep { /MISDIRECT010/ } @lines;
    my @l011 = grep { /MISDIRECT011/ } @lines;
    my @l012 = grep { /MISDIRECT012/ } @lines;
    is scalar(@l010), 2, "$label: two names not covered by their certificate"
        or diag join "\n", @lines;
    like join("\n", @l010), qr/virtual host alpha\.test \(\Q$conf\E:\d+\): its ServerAlias www\.alpha\.test is not covered by its own certificate \S+alpha\.crt/,
        "$label: www.alpha.test (alpha.crt covers alpha.test only)";
    like join("\n", @l010), qr/virtual host b\.wild\.test .*its ServerAlias \*\.b\.wild\.test is not covered by its own certificate \S+wild\.crt/,
        "$label: *.b.wild.test (*.wild.test covers one label only)";
    is scalar(@l011), 1, "$label: one line for the TLS address's default";
    like $l011[0] // '', qr/on 127\.0\.0\.1:\d+ the default virtual host default\.test \(\Q$conf\E:\d+\) has TLS settings \(SSLCertificateFile, SSLCertificateKeyFile, SSLVerifyClient, SSLCACertificateFile\) that differ from 8 of its 8 siblings \(alpha\.test, beta\.test, shared1\.test, \.\.\.\): clients without SNI/,
        "$label: the default vhost differs from its siblings";
    is scalar(@l012), 1, "$label: one duplicate name";
    like $l012[0] // '', qr/the name beta\.test is claimed by beta\.test \(\Q$conf\E:(\d+)\) and again by beta\.test \(\Q$conf\E:(\d+)\): requests for it always reach the first/,
        "$label: beta.test claimed twice";
    my ($first, $second) = ($l012[0] // '') =~ /:(\d+)\) and again by [^(]+\(\S+:(\d+)\)/;
    ok $first && $second && $first < $second, "$label: the first in the file is named first";
}

{
    my $s = MisdirectTest->new(name => 'lint', extra_vhosts => $dup);
    check_lint('startup', $s->error_log_since, $s->conf_file);
    like join("\n", lint_lines($s->error_log_since)), qr/\[misdirect:warn\]/,
        'lint lines are misdirect warnings';
}

{
    my ($rc, $out) = MisdirectTest::configtest(name => 'lint-configtest',
        extra_vhosts => $dup);
    is $rc, 0, 'warnings do not fail configtest';
    my ($conf) = $out =~ m{(/\S+/conf/httpd\.conf)};
    check_lint('configtest', $out, $conf // 'httpd.conf');
}

{
    my $s = MisdirectTest->new(name => 'lint-off', extra_vhosts => $dup,
        global => 'MisdirectLint Off');
    is scalar(lint_lines($s->error_log_since)), 0, 'MisdirectLint Off: silent';
    my ($rc, $out) = MisdirectTest::configtest(name => 'lint-off-configtest',
        extra_vhosts => $dup, global => 'MisdirectLint Off');
    is scalar(lint_lines($out)), 0, 'MisdirectLint Off: silent in configtest';
}

done_testing;
