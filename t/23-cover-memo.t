# Certificate coverage is OpenSSL's answer, remembered per child for the
# configuration's lifetime.  The memory must never answer for another
# certificate or another name: a vhost with an RSA and an ECDSA
# certificate that cover different names gives each client the answer of
# the certificate it was shown, however often and in whatever order the
# names come; a graceful restart with new certificates forgets what the
# old ones covered; and a resumed session, which shows no certificate, is
# judged by all of H's certificates.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $OPENSSL = '/usr/bin/openssl';
my $pki = MisdirectTest::pki();
my $dir = "$pki/memo-$$";
mkdir $dir or die "mkdir $dir: $!";
END { system 'rm', '-rf', $dir if $dir }

sub run_openssl (@args) {
    my $out = qx{$OPENSSL @args 2>&1};
    die "openssl @args failed:\n$out" if $?;
}

# A certificate of the test CA for the given names, with a key of the
# given kind ('rsa' or 'ec').
sub make_cert ($name, $kind, @dns) {
    my $key = $kind eq 'rsa' ? '-newkey rsa:2048'
        : '-newkey ec -pkeyopt ec_paramgen_curve:P-256';
    run_openssl("req -new -nodes $key -keyout $dir/$name.key"
        . " -out $dir/$name.csr -subj /CN=$dns[0]");
    open my $fh, '>', "$dir/$name.ext" or die "$dir/$name.ext: $!";
    print $fh "basicConstraints=CA:FALSE\n",
        'subjectAltName=', join(',', map { "DNS:$_" } @dns), "\n",
        "extendedKeyUsage=serverAuth\n";
    close $fh;
    run_openssl("x509 -req -in $dir/$name.csr -CA $pki/ca.crt"
        . " -CAkey $pki/ca.key -CAcreateserial -days 2"
        . " -extfile $dir/$name.ext -out $dir/$name.crt");
}

# dual.test shows an RSA certificate to RSA clients and an ECDSA one to
# ECDSA clients; each also covers one other name.  The other vhosts have
# the same certificates and TLS settings, so mod_ssl's default
# SSLVHostSNIPolicy secure lets requests cross and only mod_misdirect
# decides (cert-mismatch: reject, its default); nocover.test is a name
# that neither certificate covers.
make_cert('dual-rsa', 'rsa', 'dual.test', 'rsaside.test');
make_cert('dual-ec', 'ec', 'dual.test', 'ecside.test');
my $certs = join "\n",
    "    SSLCertificateFile $dir/dual-rsa.crt",
    "    SSLCertificateKeyFile $dir/dual-rsa.key",
    "    SSLCertificateFile $dir/dual-ec.crt",
    "    SSLCertificateKeyFile $dir/dual-ec.key";
my @names = qw(dual.test rsaside.test ecside.test nocover.test);
my $extra = join '', map { <<~"EOF" } @names;
    <VirtualHost 127.0.0.1:\@TLS_PORT\@>
        ServerName $_
        DocumentRoot htdocs/alpha.test
        SSLEngine on
    $certs
    </VirtualHost>
    EOF
# One child process, so that its memory serves every request below.
my $mpm = $ENV{MISDIRECT_MPM} // 'event';
my $one_child = $mpm eq 'prefork'
    ? "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\n"
      . "MaxRequestWorkers 1"
    : "ServerLimit 1\nStartServers 1\nMaxRequestWorkers 10\n"
      . "MinSpareThreads 1\nMaxSpareThreads 10";
my $s = MisdirectTest->new(name => 'cover-memo',
    global => $one_child,
    extra_vhosts => $extra,
    # Each name but dual.test lacks in one certificate, nocover.test in
    # both: mod_ssl warns at startup, and so does the lint for nocover.test.
    expect_log => ['MISDIRECT001',
        qr/^MISDIRECT010: Lint: virtual host nocover\.test /,
        qr/^AH01909: (?:rsaside|ecside|nocover)\.test:/,
        # Under prefork the one child says when it is busy.
        ($mpm eq 'prefork' ? 'AH00161' : ())]);

my %CLIENT = (
    rsa => ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'],
    ec  => ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
);
my %KEY_BITS = (rsa => 2048, ec => 256);
my $seq = 0;

# One request with SNI dual.test and the given Host, the s_client
# arguments given; what the client saw and what the access log says.
sub exchange ($host, @extra) {
    my $id = "memo=$$-" . ++$seq;
    my $mark = $s->mark;
    my ($status, $out) = raw_tls($s, sni => 'dual.test', quiet => 0,
        extra => \@extra,
        request => "GET /?$id HTTP/1.1\r\nHost: $host\r\n"
            . "Connection: close\r\n\r\n");
    my ($bits) = $out =~ /Server public key is (\d+) bit/;
    my ($how) = $out =~ /^(New|Reused), TLSv/m;
    my $line = $s->wait_access_log(qr/\Q$id\E/, $mark) // '';
    my @f = split / /, $line;
    return { status => $status, bits => $bits // 0, how => $how // '?',
        reason => $f[2] // '', action => $f[3] // '' };
}

# The same from a client that accepts only the given kind of certificate.
sub ask ($kind, $host, $label) {
    return { %{ exchange($host, @{ $CLIENT{$kind} }) }, label => $label };
}

sub expect ($r, $kind, $status, $reason, $action) {
    subtest $r->{label} => sub {
        is $r->{bits}, $KEY_BITS{$kind}, "the client was shown the $kind "
            . 'certificate';
        is $r->{status}, $status, "status $status";
        is $r->{reason}, $reason, "MISDIRECT_REASON $reason";
        is $r->{action}, $action, "MISDIRECT_ACTION $action";
    };
}

# Every combination, four rounds, the order turned each round: a memory
# that confused the two certificates or the two names answers wrongly
# in some round, whichever combination it saw first.
sub rounds ($covers, $label) {
    my @combos = map { my $k = $_; map { [$k, $_] } qw(rsaside.test
        ecside.test) } qw(rsa ec);
    for my $round (1 .. 4) {
        my @order = $round % 2 ? @combos : reverse @combos;
        push @order, shift @order if $round > 2;
        for my $c (@order) {
            my ($kind, $host) = @$c;
            my $r = ask($kind, $host, "$label, round $round: $kind "
                . "certificate, Host $host");
            if ($covers->{$kind}{$host}) {
                expect($r, $kind, 200, 'sni-host-mismatch', 'allow');
            }
            else {
                expect($r, $kind, 421, 'cert-mismatch', 'reject');
            }
        }
    }
}

rounds({ rsa => { 'rsaside.test' => 1 }, ec => { 'ecside.test' => 1 } },
    'first certificates');

# New certificates under the same file names, each now covering the other
# name: after a graceful restart the old answers must be gone.
make_cert('dual-rsa', 'rsa', 'dual.test', 'ecside.test');
make_cert('dual-ec', 'ec', 'dual.test', 'rsaside.test');
$s->graceful;
rounds({ rsa => { 'ecside.test' => 1 }, ec => { 'rsaside.test' => 1 } },
    'after graceful with swapped names');

# A resumed session shows no certificate, and OpenSSL then names the
# context's current one, whichever the client was shown when the session
# began: the host counts as covered when any of H's certificates covers
# it, and as not covered only when none does.
my $sess = "$dir/session.pem";
for my $kind (qw(rsa ec)) {
    for my $tls ('1.2', '1.3') {
        my @cli = $tls eq '1.2' ? @{ $CLIENT{$kind} }
            : ('-tls1_3', '-sigalgs', $kind eq 'rsa' ? 'rsa_pss_rsae_sha256'
                : 'ecdsa_secp256r1_sha256');
        # After the graceful restart above, RSA covers ecside.test and
        # ECDSA rsaside.test.
        my $own = $kind eq 'rsa' ? 'ecside.test' : 'rsaside.test';
        unlink $sess;
        my @r = map { exchange($_->[0], @cli, @$_[1, 2]) }
            [$own, '-sess_out', $sess], [$own, '-sess_in', $sess],
            ['nocover.test', '-sess_in', $sess];
        subtest "TLS $tls, $kind certificate, then resumed" => sub {
            is $r[0]{how}, 'New', 'first connection: a new session';
            is $r[0]{status}, 200, "$own on it: 200";
            is $r[0]{reason}, 'sni-host-mismatch', 'as sni-host-mismatch';
            is $r[1]{how}, 'Reused', 'second connection resumes it';
            is $r[1]{status}, 200, "$own on the resumed session: still 200";
            is $r[1]{reason}, 'sni-host-mismatch', 'as sni-host-mismatch';
            is $r[2]{how}, 'Reused', 'third connection resumes it too';
            is $r[2]{status}, 421,
                'nocover.test, which no certificate of dual.test covers: 421';
            is $r[2]{reason}, 'cert-mismatch', 'as cert-mismatch';
        };
    }
}

unlike $s->error_log_since, qr/exit signal|Segmentation/, 'no child crashed';
done_testing;
