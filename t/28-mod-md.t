# Certificates that another module hands mod_ssl (mod_md, here with static
# certificate files, no ACME) are not named in the configuration's
# SSLCertificateFile lines, yet mod_ssl compares them: two vhosts of
# different MDomains are refused, two vhosts of one MDomain are served.
# The module's model must say the same.
use v5.36;
use Test::More;
use File::Path qw(make_path);
use lib 't/lib';
use MisdirectTest;

# The first test of a fresh tree may run before any other made the root.
my $dir = MisdirectTest::tmp_root() . "/mod-md-pki-$$";
make_path($dir);
END { system 'rm', '-rf', $dir if $dir }

# Self-signed certificates are enough: mod_md only hands the files on.
for my $c ([a => 'DNS:a.md.test,DNS:c.md.test'], [b => 'DNS:b.md.test']) {
    my ($name, $san) = @$c;
    system("/usr/bin/openssl req -x509 -newkey ec -pkeyopt "
        . "ec_paramgen_curve:P-256 -nodes -days 5 -keyout $dir/$name.key "
        . "-out $dir/$name.crt -subj /CN=$name.md.test "
        . "-addext subjectAltName=$san 2>/dev/null") == 0
        or die "openssl for $name failed\n";
}

open my $fh, '>', "$dir/index.html" or die "$dir/index.html: $!";
print $fh "md\n";
close $fh;

my $vhosts = join '', map { <<~"EOF" } qw(a b c);
    <VirtualHost 127.0.0.1:\@TLS_PORT\@>
        ServerName $_.md.test
        DocumentRoot "$dir"
        SSLEngine on
    </VirtualHost>
    EOF

my $s = MisdirectTest->new(name => 'mod-md', modules => ['md'],
    loglevel => 'warn misdirect:debug ssl:info',
    # openssl req -x509 marks the self-signed certificates CA:TRUE, which
    # mod_ssl notes at startup; then mod_ssl's 421 and its explanation.
    expect_log => [qw(AH02032 MISDIRECT006),
        qr/^AH01906: [abc]\.md\.test:443:0 server certificate is a CA /],
    global => <<~"EOF", extra_vhosts => $vhosts);
        <Directory "$dir">
            Require all granted
        </Directory>
        MDStoreDir md
        MDRenewMode manual
        MDCertificateAgreement accepted
        <MDomain a.md.test c.md.test>
            MDCertificateFile $dir/a.crt
            MDCertificateKeyFile $dir/a.key
        </MDomain>
        <MDomain b.md.test>
            MDCertificateFile $dir/b.crt
            MDCertificateKeyFile $dir/b.key
        </MDomain>
        EOF

sub line_of ($s, $sni, $host) {
    my $mark = $s->mark;
    my ($r) = $s->https(sni => $sni, requests => [{ host => $host }]);
    my $line = $s->wait_error_log(qr/MISDIRECT00[36].* host="\Q$host\E"/,
        $mark) // '';
    my ($verdict) = $line =~ / ssl_verdict="(\w+)"/;
    my ($differs) = $line =~ / tls_differs="([^"]*)"/;
    return ($r->{status}, $verdict // '', $differs // '',
        $s->error_log_since($mark));
}

my ($st, $verdict, $differs, $log) = line_of($s, 'a.md.test', 'b.md.test');
is $st, 421, 'different MDomains: mod_ssl refuses';
like $log, qr/AH02032/, 'with its own line';
is $verdict, 'refuse', 'and the model foresaw it';
like $differs, qr{certificates from another module \(mod_md\?\): /CN=a\.md\.test sha256:[0-9a-f]{16} vs /CN=b\.md\.test sha256:[0-9a-f]{16}},
    'naming the two certificates';

($st, $verdict, $differs) = line_of($s, 'a.md.test', 'c.md.test');
is $st, 200, 'one MDomain, one certificate: mod_ssl serves';
is $verdict, 'serve', 'and so does the model';
is $differs, 'none', 'nothing differs';

done_testing;
