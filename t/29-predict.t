# Predict before deploy: `apache2 -t -D DUMP_MISDIRECT_JSON` says what
# every (SNI, host) pair of each TLS address will get, and the real server,
# asked every pair, answers exactly that, with the log line of whoever
# answered (MISDIRECT001 and its reason, or mod_ssl's AH02032); under each
# SSLVHostSNIPolicy.  `-D DUMP_MISDIRECT` is the same as text, the same on
# every run.
use v5.36;
use Test::More;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;

my $pki = MisdirectTest::pki();

sub certs ($name) {
    return "SSLCertificateFile $pki/$name.crt\n"
        . "SSLCertificateKeyFile $pki/$name.key";
}

# Per-vhost policy, MisdirectAllow and Misdirect Off, over one shared and
# one wildcard certificate; www.alpha.test is outside alpha's certificate,
# shared3.test asks for client certificates (authonly compares that).
sub vhosts ($policy) { return (

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
          # Not modelled yet: under insecure, mod_ssl serves the request,
          # then answers 403 because it cannot renegotiate to ask for the
          # client certificate the handshake's vhost did not ask for.
          . ($policy eq 'insecure' ? ''
             : "\nSSLVerifyClient optional\nSSLCACertificateFile $pki/ca.crt")
      },
    { name => 'a.wild.test', conf => certs('wild') },
    { name => 'b.wild.test', conf => certs('wild')
          . "\nMisdirectPolicy sni-host-mismatch reject" },
) }

sub dump_of ($s, $define) {
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', $define, '-d', $s->root, '-f', $s->conf_file);
    is $rc, 0, "-t -D $define succeeds" or diag $err;
    return $out;
}

sub fields ($line) {
    my %f;
    $f{$1} = $2 while $line =~ / (\w+)="((?:[^"\\]|\\.)*)"/g;
    return \%f;
}

for my $policy (qw(secure insecure strict authonly)) {
    subtest "SSLVHostSNIPolicy $policy: every pair as predicted" => sub {
        my $s = MisdirectTest->new(name => "predict-$policy",
            # Every 421 is looked for in error_log: no line may be
            # suppressed by the flood limit.
            global => "SSLVHostSNIPolicy $policy\nMisdirectLogLimit 0",
            loglevel => 'warn ssl:info misdirect:info',
            tls_vhosts => [vhosts($policy)]);
        my $out = dump_of($s, 'DUMP_MISDIRECT_JSON');
        my $doc = eval { JSON::PP->new->decode($out) };
        ok $doc, 'stdout is one JSON document' or diag "$@\n$out";
        my @l = $doc ? $doc->{listeners}->@* : ();
        is scalar @l, 1, 'one TLS listener';
        my $l = $l[0] // { pairs => [] };
        is $l->{address}, '127.0.0.1:' . $s->tls_port, 'its address';
        ok $l->{complete}, 'complete';
        my @pairs = $l->{pairs}->@*;
        is scalar @pairs, 10 * 9, '(9 names + no SNI) x 9 names';
        my %by = (200 => 0, mod_ssl => 0, mod_misdirect => 0);
        my @wrong;
        for my $p (@pairs) {
            my $mark = $s->mark;
            my ($r) = $s->https(sni => $p->{sni} // '',
                requests => [{ host => $p->{host} }]);
            my $what = sprintf 'SNI %s, Host %s', $p->{sni} // 'none',
                $p->{host};
            push @wrong, "$what: predicted $p->{status} by "
                . ($p->{by} // '-') . ", got $r->{status}"
                if $r->{status} != $p->{status};
            $by{ $p->{by} // 200 }++;
            next unless $p->{status} == 421;
            if ($p->{by} eq 'mod_misdirect') {
                my $line = $s->wait_error_log(qr/MISDIRECT001/, $mark) // '';
                push @wrong, "$what: MISDIRECT001 reason "
                    . (fields($line)->{reason} // 'none')
                    . ", predicted $p->{check}"
                    if (fields($line)->{reason} // '') ne $p->{check};
                push @wrong, "$what: AH02032 for the module's 421"
                    if $s->error_log_since($mark) =~ /AH02032/;
            }
            else {
                my $line = $s->wait_error_log(qr/AH02032/, $mark);
                push @wrong, "$what: no AH02032 for mod_ssl's 421"
                    unless $line;
                push @wrong, "$what: MISDIRECT001 for mod_ssl's 421"
                    if $s->error_log_since($mark) =~ /MISDIRECT001/;
            }
        }
        is_deeply \@wrong, [], 'every status, and who answered, as predicted'
            or diag join "\n", @wrong;
        note "$policy: $by{200} served, $by{mod_ssl} by mod_ssl, "
            . "$by{mod_misdirect} by mod_misdirect";
        ok $by{200} > 0, 'some pairs are served';
        ok $by{mod_ssl} > 0, 'mod_ssl refuses some'
            unless $policy eq 'insecure';
        ok $by{mod_misdirect} > 0, 'mod_misdirect refuses some'
            unless $policy eq 'strict';

        my $text = dump_of($s, 'DUMP_MISDIRECT');
        is dump_of($s, 'DUMP_MISDIRECT'), $text,
            'the text dump is the same on every run';
        like $text, qr/^  without SNI \(handshake vhost default\.test, /m,
            'it has the no-SNI row';
        like $text, qr/^  connection reuse /m, 'the reuse section';
        like $text, qr/^  with SNI: 81 pairs;/m, 'and the count of the rest';
        $s->stop;
    };
}

done_testing;
