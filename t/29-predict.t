# Predict before deploy: `apache2 -t -D DUMP_MISDIRECT_JSON` says what
# every (SNI, host) pair of each TLS address will get, and the real server,
# asked every pair, answers exactly that, with the log line of whoever
# answered (MISDIRECT001 and its reason, mod_ssl's AH02032 for its 421, its
# client-verification lines for its 403); under each SSLVHostSNIPolicy.
# `-D DUMP_MISDIRECT` is the same as text, the same on every run, and its
# counts add up to the JSON's.  Above 100 names the JSON lists a bounded
# part, and says what it left out.
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $pki = MisdirectTest::pki();
my $dir = "$pki/predict-$$";
mkdir $dir or die "mkdir $dir: $!";
END { system 'rm', '-rf', $dir if $dir }

sub openssl (@args) {
    my ($rc, $out, $err) = MisdirectTest::_run('/usr/bin/openssl', @args);
    die "openssl @args failed:\n$out$err" if $rc;
}

# dual.test has an RSA and an ECDSA certificate of the test CA, for the
# same names; clients see one or the other.
for my $kind (qw(rsa ec)) {
    my @key = $kind eq 'rsa' ? qw(-newkey rsa:2048)
        : qw(-newkey ec -pkeyopt ec_paramgen_curve:P-256);
    openssl(qw(req -new -nodes), @key, -keyout => "$dir/dual-$kind.key",
        -out => "$dir/dual-$kind.csr", -subj => '/CN=dual.test');
    open my $fh, '>', "$dir/dual.ext" or die "$dir/dual.ext: $!";
    print $fh "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        . "subjectAltName=DNS:dual.test,DNS:*.wild.test\n";
    close $fh;
    openssl(qw(x509 -req -CAcreateserial -days 2), -in => "$dir/dual-$kind.csr",
        -CA => "$pki/ca.crt", -CAkey => "$pki/ca.key",
        -extfile => "$dir/dual.ext", -out => "$dir/dual-$kind.crt");
}

sub certs ($name, $at = $pki) {
    return "SSLCertificateFile $at/$name.crt\n"
        . "SSLCertificateKeyFile $at/$name.key";
}
my $ca = "SSLCACertificateFile $pki/ca.crt";

# Per-vhost policy, MisdirectAllow and Misdirect Off, over one shared, one
# wildcard and one dual certificate; www.alpha.test is outside alpha's
# certificate.  shared3.test asks for client certificates (optional),
# c.wild.test requires one: on a handshake that asked for none, mod_ssl
# then answers 403 where its policy lets the request through.
# old.wild.test speaks TLS 1.2 only, where mod_ssl renegotiates instead.
my @VHOSTS = (
    { name => 'default.test', conf => certs('default') },
    { name => 'alpha.test', alias => 'www.alpha.test',
      conf => certs('alpha') . "\nMisdirectPolicy sni-missing reject" },
    { name => 'beta.test',
      conf => certs('beta') . "\nMisdirectPolicy cert-mismatch reject" },
    { name => 'shared1.test',
      conf => certs('shared') . "\nMisdirectPolicy sni-host-mismatch reject" },
    { name => 'shared2.test',
      conf => certs('shared') . "\nMisdirectPolicy sni-host-mismatch reject"
          . "\nMisdirectAllow shared2.test" },
    { name => 'shared3.test',
      conf => certs('shared') . "\nMisdirect Off"
          . "\nMisdirectPolicy sni-host-mismatch reject"
          . "\nSSLVerifyClient optional\n$ca" },
    { name => 'a.wild.test', conf => certs('wild') },
    { name => 'b.wild.test', conf => certs('wild')
          . "\nMisdirectPolicy sni-host-mismatch reject" },
    { name => 'c.wild.test', conf => certs('wild')
          . "\nSSLVerifyClient require\n$ca" },
    { name => 'old.wild.test', conf => certs('wild')
          . "\nSSLProtocol TLSv1.2" },
    { name => 'dual.test',
      conf => certs('dual-rsa', $dir) . "\n" . certs('dual-ec', $dir) },
);
my %REQUIRES_CERT = ('c.wild.test' => 1);
my %MISDIRECT_OFF = ('shared3.test' => 1);

sub dump_of ($s, $define) {
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', $define, '-d', $s->root, '-f', $s->conf_file);
    is $rc, 0, "-t -D $define succeeds" or diag $err;
    return $out;
}

sub json_of ($s) {
    my $out = dump_of($s, 'DUMP_MISDIRECT_JSON');
    my $doc = eval { JSON::PP->new->decode($out) };
    ok $doc, 'stdout is one JSON document' or diag "$@\n$out";
    my @l = $doc ? $doc->{listeners}->@* : ();
    is scalar @l, 1, 'one TLS listener';
    return $l[0] // { pairs => [] };
}

# Sends a pair to the server; returns what differs from the prediction.
sub check_pair ($s, $p) {
    my $mark = $s->mark;
    my $sni = $p->{sni};
    my $what = sprintf 'SNI %s, Host %s', $sni // 'none', $p->{host};
    my ($r) = eval { $s->https(sni => $sni // '',
        ($sni && $REQUIRES_CERT{$sni} ? (cert => 'client') : ()),
        requests => [{ host => $p->{host} }]) };
    return "$what: no answer: $@" unless $r;
    my @wrong;
    push @wrong, "$what: predicted $p->{status} by " . ($p->{by} // '-')
        . ", got $r->{status}" if $r->{status} != $p->{status};
    my $by = $p->{by} // '';
    if ($p->{status} == 421 && $by eq 'mod_misdirect') {
        my $line = $s->wait_error_log(qr/MISDIRECT001/, $mark) // '';
        my $reason = fields($line)->{reason} // 'none';
        push @wrong, "$what: MISDIRECT001 reason $reason, predicted "
            . $p->{check} if $reason ne $p->{check};
        push @wrong, "$what: AH02032 for the module's 421"
            if $s->error_log_since($mark) =~ /AH02032/;
    }
    elsif ($p->{status} == 421) {
        push @wrong, "$what: no AH02032 for mod_ssl's 421"
            unless $s->wait_error_log(qr/AH02032/, $mark);
    }
    elsif ($p->{status} == 403) {
        push @wrong, "$what: no client-verification line for mod_ssl's 403"
            unless $s->wait_error_log(qr/AH(?:10158|0225\d|0226\d)/, $mark);
        push @wrong, "$what: predicted by $by" if $by ne 'mod_ssl';
        # The module explains it, unless Misdirect Off silences it.
        my $line = $MISDIRECT_OFF{ $p->{host} } ? 'off'
            : $s->wait_error_log(qr/MISDIRECT006/, $mark) // '';
        push @wrong, "$what: MISDIRECT006 under Misdirect Off"
            if $line eq 'off' && $s->error_log_since($mark) =~ /MISDIRECT006/;
        push @wrong, "$what: no MISDIRECT006 explaining mod_ssl's 403"
            unless $line eq 'off' || $line =~ /MISDIRECT006: mod_ssl answered 403: [^\n]*SSLVerifyClient[^\n]* by="mod_ssl"/;
    }
    push @wrong, "$what: MISDIRECT001 for another's answer"
        if $by ne 'mod_misdirect' && $s->error_log_since($mark)
            =~ /MISDIRECT001/;
    return @wrong;
}

# The text's counts of the pairs with SNI, by answer.
sub text_counts ($text) {
    my %n;
    (my $plain = $text) =~ s/(\d),(\d)/$1$2/g;
    ($n{total}) = $plain =~ /^  every pair with SNI: (\d+) /m;
    ($n{own}) = $plain =~ /^    (\d+) select the SNI's own vhost: served$/m;
    while ($plain =~ /^    (\d+) select another vhost: (\S+) (?:by (\S+))?/mg) {
        $n{ $2 eq 'served' || $2 eq 'served,' ? 200 : "$2 $3" } += $1;
    }
    return \%n;
}

# What each policy's server logs at warn or above besides the lint on
# www.alpha.test: mod_ssl's 421s (AH02032) or its 403s after a failed
# post-handshake authentication (AH10158, under insecure), the module's
# lines, and the lint on the default vhost and on shared3.test.
my %POLICY_LOG = (
    secure => [qw(AH02032 MISDIRECT001 MISDIRECT006 MISDIRECT011
        MISDIRECT015)],
    insecure => [qw(AH10158 MISDIRECT001 MISDIRECT002 MISDIRECT006),
        qr/^SSL Library Error: error:0A000117:/],
    strict => [qw(AH02032 MISDIRECT006 MISDIRECT011)],
    authonly => [qw(AH02032 MISDIRECT001 MISDIRECT002 MISDIRECT006
        MISDIRECT011 MISDIRECT015)],
);
my $WWW_ALPHA =
    qr/^MISDIRECT010: Lint: virtual host alpha\.test \S+ its ServerAlias www\./;

for my $policy (qw(secure insecure strict authonly)) {
    subtest "SSLVHostSNIPolicy $policy: every pair as predicted" => sub {
        my $s = MisdirectTest->new(name => "predict-$policy",
            # Every 421 is looked for in error_log: no line may be
            # suppressed by the flood limit.
            global => "SSLVHostSNIPolicy $policy\nMisdirectLogLimit 0",
            loglevel => 'warn ssl:info misdirect:info',
            tls_vhosts => \@VHOSTS,
            expect_log => [$WWW_ALPHA, $POLICY_LOG{$policy}->@*]);
        my $l = json_of($s);
        is $l->{address}, '127.0.0.1:' . $s->tls_port, 'its address';
        ok $l->{complete}, 'complete';
        my @pairs = $l->{pairs}->@*;
        is scalar @pairs, 13 * 12, '(12 names + no SNI) x 12 names';
        my %by = (200 => 0, mod_ssl => 0, mod_misdirect => 0, 403 => 0);
        my @wrong = map { check_pair($s, $_) } @pairs;
        is_deeply \@wrong, [], 'every status, and who answered, as predicted'
            or diag join "\n", @wrong;
        $by{ $_->{status} == 403 ? 403 : $_->{by} // 200 }++ for @pairs;
        note "$policy: $by{200} served, $by{mod_ssl} 421 by mod_ssl, "
            . "$by{403} 403 by mod_ssl, $by{mod_misdirect} by mod_misdirect";
        ok $by{200} > 0, 'some pairs are served';
        ok $by{mod_ssl} > 0, 'mod_ssl refuses some'
            unless $policy eq 'insecure';
        ok $by{mod_misdirect} > 0, 'mod_misdirect refuses some'
            unless $policy eq 'strict';
        # Only insecure lets a request reach a vhost whose client
        # verification differs from the handshake's.
        if ($policy eq 'insecure') {
            my %forbidden = map { ("$_->{sni}|$_->{host}" => 1) }
                grep { $_->{status} == 403 && $_->{sni} } @pairs;
            ok $forbidden{'a.wild.test|c.wild.test'},
                '403 for require after a TLS 1.3 handshake without';
            ok $forbidden{'a.wild.test|shared3.test'},
                '403 for optional after a TLS 1.3 handshake without';
            ok $forbidden{'old.wild.test|c.wild.test'},
                '403 for require after a TLS 1.2 handshake without';
            ok !$forbidden{'old.wild.test|shared3.test'},
                'but TLS 1.2 renegotiates for optional';
        }
        else {
            is $by{403}, 0, 'no 403: mod_ssl refuses those pairs first';
        }

        my $text = dump_of($s, 'DUMP_MISDIRECT');
        is dump_of($s, 'DUMP_MISDIRECT'), $text,
            'the text dump is the same on every run';
        like $text, qr/^  without SNI(?:, or with an SNI that names no vhost or ends in a dot)?: handshake vhost default\.test \(conf\/httpd\.conf:\d+\)$/m,
            'it has the no-SNI row, with file:line';
        like $text, qr/^  connection reuse /m, 'the reuse section';
        like $text, qr/^    \S.*: \d+ vhost pairs?: \S+ -> \S+ /m,
            'with vhost pairs' unless $policy eq 'strict';
        my @sni = grep { defined $_->{sni} } @pairs;
        my %json = (total => scalar @sni,
            own => scalar grep { $_->{handshake_vhost} eq $_->{request_vhost} }
                @sni);
        for my $p (grep { $_->{handshake_vhost} ne $_->{request_vhost} } @sni) {
            $json{ $p->{status} == 200 ? 200
                : "$p->{status} $p->{by}" }++;
        }
        is_deeply text_counts($text), \%json,
            'the text counts the pairs with SNI as the JSON lists them';
        $s->stop;
    };
}

# 60 vhosts of two names each behind one wildcard certificate, and 4 of
# their own: 125 names, so nearly every pair with SNI is served.  The
# JSON lists the no-SNI row and at most 10,000 served pairs with SNI, and
# counts the rest; pairs from each part are asked for real.
subtest 'above 100 names: a bounded listing that says what it left out' => sub {
    my @v = ({ name => 'default.test', conf => certs('default') });
    push @v, map { { name => "n$_.wild.test", alias => "m$_.wild.test",
        conf => certs('wild') } } 1 .. 60;
    push @v, map { { name => "solo$_.test", conf => certs('beta') } } 1 .. 4;
    my $s = MisdirectTest->new(name => 'predict-large',
        global => 'MisdirectLogLimit 0', loglevel => 'warn ssl:info',
        tls_vhosts => \@v,
        # beta.crt names none of solo1-4.test: mod_ssl and the lint say
        # so; the asked-for pair to solo1.test is mod_ssl's 421.
        expect_log => [qr/^AH01909: solo\d\.test:/,
            qr/^MISDIRECT010: Lint: virtual host solo\d\.test /,
            qw(MISDIRECT011 AH02032 MISDIRECT006)]);
    my $l = json_of($s);
    my $names = 1 + 120 + 4;
    ok !$l->{complete}, 'not complete';
    my @pairs = $l->{pairs}->@*;
    my @no_sni = grep { !defined $_->{sni} } @pairs;
    my @sni = grep { defined $_->{sni} } @pairs;
    is scalar @no_sni, $names, 'the whole no-SNI row';
    is scalar @sni, 10_000, 'and 10,000 pairs with SNI';
    is scalar(grep { $_->{status} == 421 } @sni), 0, 'none of them 421';
    is scalar(grep { $_->{handshake_vhost} eq $_->{request_vhost} } @sni), 0,
        'none for the SNI\'s own vhost';
    my $by = $l->{left_out_by} // {};
    is $l->{left_out}, $names * $names - 10_000, 'left_out: the others';
    is $by->{refused_421} + $by->{same_vhost} + $by->{over_limit},
        $l->{left_out}, 'left_out_by adds up';
    # Pairs with SNI that select another vhost: n/m (60 x 2 names) are
    # served among themselves, except with their own vhost; the rest 421.
    is $by->{same_vhost}, 1 + 60 * 4 + 4, 'same_vhost counted';
    is $by->{over_limit}, 120 * 118 - 10_000, 'over_limit counted';
    is $by->{refused_421}, $names * $names - 1 - 240 - 4 - 120 * 118,
        'refused_421 counted';
    my $text = dump_of($s, 'DUMP_MISDIRECT');
    my $n = text_counts($text);
    is $n->{total}, $names * $names, 'the text counts every pair';
    is $n->{200}, 120 * 118, 'and the same served ones';
    my @ask = (@no_sni[0, 1, 62, -1], @sni[0, 1, 4999, -1],
        { sni => 'solo1.test', host => 'n1.wild.test', status => 421,
          by => 'mod_ssl' },
        { sni => 'm9.wild.test', host => 'n9.wild.test', status => 200 });
    my @wrong = map { check_pair($s, $_) } @ask;
    is_deeply \@wrong, [], 'pairs listed and left out, asked for real'
        or diag join "\n", @wrong;
    $s->stop;
};

done_testing;
