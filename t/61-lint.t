# MisdirectLint: at startup and under configtest, warnings about names a
# vhost's own certificate does not cover, a default vhost whose TLS
# settings mod_ssl does not accept for its siblings (the same model as
# the request path), a name claimed twice on an address, and vhosts that
# share their certificate but not their TLS settings.
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
    like $l011[0] // '', qr/on 127\.0\.0\.1:\d+ the default virtual host default\.test \(\Q$conf\E:\d+\) has TLS settings \(SSLCertificateFile, SSLCertificateKeyFile, SSLVerifyClient, SSLCACertificateFile\) that SSLVHostSNIPolicy secure does not accept for 8 of its 8 siblings \(alpha\.test, beta\.test, shared1\.test, \.\.\.\): clients without SNI, most reverse proxies among them, get 421 from mod_ssl for those; make them send SNI, or give those vhosts the default vhost's settings/,
        "$label: the default vhost differs from its siblings";
    is scalar(@l012), 1, "$label: one duplicate name";
    like $l012[0] // '', qr/the name beta\.test is claimed by beta\.test \(\Q$conf\E:(\d+)\) and again by beta\.test \(\Q$conf\E:(\d+)\): requests for it always reach the first/,
        "$label: beta.test claimed twice";
    my ($first, $second) = ($l012[0] // '') =~ /:(\d+)\) and again by [^(]+\(\S+:(\d+)\)/;
    ok $first && $second && $first < $second, "$label: the first in the file is named first";
    # shared3.test has shared1.test's certificate but verifies clients.
    my @l015 = grep { /MISDIRECT015/ } @lines;
    is scalar(@l015), 1, "$label: one pair shares a certificate, not settings"
        or diag join "\n", @l015;
    like $l015[0] // '', qr/on 127\.0\.0\.1:\d+ the virtual hosts shared1\.test \(\Q$conf\E:\d+\) and shared3\.test \(\Q$conf\E:\d+\) share their certificate files but not their TLS settings \(SSLVerifyClient, SSLCACertificateFile\): browsers reuse a connection .* 421s that browsers retry/,
        "$label: shared1.test and shared3.test, and what differs";
}

{
    my $s = MisdirectTest->new(name => 'lint',
        # The duplicate beta.test is the point: its lint line.
        expect_log => [qr/^MISDIRECT012: Lint: on \S+ the name beta\.test /],
        extra_vhosts => $dup);
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

# The lint asks the same model as the request path: it predicts no 421
# that mod_ssl does not give.
{
    my ($rc, $out) = MisdirectTest::configtest(name => 'lint-insecure',
        global => 'SSLVHostSNIPolicy insecure');
    is scalar(grep { /MISDIRECT011/ } lint_lines($out)), 0,
        'SSLVHostSNIPolicy insecure: no default-vhost warning';
    ($rc, $out) = MisdirectTest::configtest(name => 'lint-strict',
        global => 'SSLVHostSNIPolicy strict');
    my @l011 = grep { /MISDIRECT011/ } lint_lines($out);
    is scalar(@l011), 1, 'strict: one default-vhost warning';
    like $l011[0] // '', qr/SSLVHostSNIPolicy strict refuses every request for another virtual host than the handshake's: .* all 7 siblings/,
        'naming every sibling, settings alike or not';
}

{
    # Two certificates, each covering one of the vhost's names: neither
    # name is reported.  And an address written *:port is named once, as
    # written, not once for IPv4 and once for IPv6.
    my ($rc, $out) = MisdirectTest::configtest(name => 'lint-dual',
        extra_vhosts => <<"EOF_CONF");
<VirtualHost *:\@TLS_PORT\@>
ServerName alpha.test
ServerAlias beta.test
SSLEngine on
SSLCertificateFile $pki/alpha.crt
SSLCertificateKeyFile $pki/alpha.key
SSLCertificateFile $pki/beta.crt
SSLCertificateKeyFile $pki/beta.key
</VirtualHost>
<VirtualHost *:\@TLS_PORT\@>
ServerName default.test
SSLEngine on
SSLCertificateFile $pki/default.crt
SSLCertificateKeyFile $pki/default.key
</VirtualHost>
EOF_CONF
    my @lines = lint_lines($out);
    unlike join("\n", grep { /MISDIRECT010/ } @lines),
        qr/ServerAlias beta\.test/,
        'a name covered by the second certificate is covered';
    my @star = grep { /MISDIRECT011: Lint: on \*:\d+ / } @lines;
    is scalar(@star), 1, 'the *:port address is named once, as written'
        or diag join "\n", @lines;
    unlike join("\n", @lines), qr/on (?:0\.0\.0\.0|\[?::\]?):\d+ /,
        'never as 0.0.0.0 or ::';
}

done_testing;
