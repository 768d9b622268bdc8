# The handshake vhost is exactly mod_ssl's choice, and the SNI is the one
# the client sent in this handshake.
#
# - An SNI that names a vhost without SSLEngine on, on the TLS port:
#   mod_ssl takes that vhost for the handshake's, but keeps the default
#   vhost's TLS context.  Each answer must equal stock httpd's, and the
#   line must name the vhost mod_ssl named (AH02032).
# - A resumed TLS 1.2 session: OpenSSL shows the name the session began
#   with, not this ClientHello's.  The checks and the line use what the
#   client sent: no SNI on a resumption is sni-missing, as on a full
#   handshake or a TLS 1.3 resumption.
use v5.36;
use Test::More;
use File::Temp ();
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $OFF = <<'EOF';
<VirtualHost 127.0.0.1:@TLS_PORT@>
    ServerName off.test
    ServerAlias www.off.test
    SSLEngine off
</VirtualHost>
EOF
# off.test has no DocumentRoot: httpd's default, which the harness's
# <Directory /> denies (403, as on stock httpd).
my $OFF_DENIED = qr{^AH01630: client denied by server configuration: /var/};

sub ask ($s, $sni, $host) {
    my $mark = $s->mark;
    my ($r) = $s->https(sni => $sni, requests => [{ host => $host }]);
    $s->wait_access_log(qr/ $r->{status} /, $mark);
    $r->{error_log} = $s->error_log_since($mark);
    return $r;
}

subtest 'an SNI that names a vhost without SSLEngine on' => sub {
    my $stock = MisdirectTest->new(name => 'hs-off-stock', misdirect => 0,
        extra_vhosts => $OFF, expect_log => [$OFF_DENIED, 'AH02032']);
    my $with = MisdirectTest->new(name => 'hs-off-with',
        extra_vhosts => $OFF, loglevel => 'warn misdirect:debug ssl:info',
        expect_log => [$OFF_DENIED, qw(AH02032 MISDIRECT006)]);
    my @pairs = (
        ['off.test', 'off.test', 'SNI and Host name the vhost'],
        ['www.off.test', 'off.test', 'SNI its alias, Host its name'],
        ['off.test', 'default.test', 'Host the default vhost'],
        ['off.test', 'alpha.test', 'Host another TLS vhost'],
        [undef, 'off.test', 'no SNI, Host the vhost'],
        ['alpha.test', 'off.test', 'SNI another vhost, Host the vhost'],
    );
    for my $p (@pairs) {
        my ($sni, $host, $label) = @$p;
        subtest $label => sub {
            my $a = ask($stock, $sni, $host);
            my $b = ask($with, $sni, $host);
            is $b->{status}, $a->{status},
                "the same status as stock httpd ($a->{status})";
            is $b->{body}, $a->{body}, 'the same body';
            my ($ah) = $a->{error_log} =~ /AH02032: Hostname (\S+)/;
            unlike $b->{error_log}, qr/MISDIRECT00[17]:/,
                'neither a 421 of the module nor one blamed on a handler';
            if ($a->{status} == 421) {
                my ($line) = grep { /MISDIRECT006:/ }
                    split /\n/, $b->{error_log};
                ok $line, 'mod_ssl\'s 421 is explained as mod_ssl\'s';
                my %f = %{ fields($line // '') };
                like $f{handshake_vhost} // '', qr/^\Q$ah\E /,
                    "the handshake vhost is the one mod_ssl named ($ah)";
                is $f{sni}, $sni // '(none)', 'the SNI as sent';
                like $f{tls_differs} // '', qr/^SSLEngine: /,
                    'the settings compared are those of the right pair'
                    if $sni && $sni =~ /off/;
                like $line, qr/without SSLEngine on/,
                    'the hint names the vhost without TLS' if $sni
                    && $sni =~ /off/;
            }
            else {
                unlike $b->{error_log}, qr/\[misdirect:(?:error|warn)\]/,
                    'nothing at warn or error from the module';
            }
        };
    }
};

# s_client with a session file: -sess_out on the first connection,
# -sess_in on the second.  Returns (status, "New"|"Reused", output).
sub tls_once ($s, %o) {
    my ($status, $out) = raw_tls($s, sni => $o{sni}, quiet => 0,
        extra => [$o{version}, $o{in} ? ('-sess_in', $o{in}) : (),
            $o{out} ? ('-sess_out', $o{out}) : ()],
        request => "GET /?$o{id} HTTP/1.1\r\nHost: $o{host}\r\n"
            . "Connection: close\r\n\r\n");
    my ($how) = $out =~ /^(New|Reused), TLSv/m;
    return ($status, $how // '?', $out);
}

subtest 'the SNI of this handshake, on resumption too' => sub {
    my $s = MisdirectTest->new(name => 'hs-resume',
        global => 'MisdirectPolicy sni-missing reject',
        loglevel => 'warn misdirect:debug ssl:info',
        expect_log => [qw(AH02032 MISDIRECT001 MISDIRECT006)]);
    my $dir = File::Temp->newdir;
    my $n = 0;
    for my $v (['-tls1_2', 'TLS 1.2'], ['-tls1_3', 'TLS 1.3']) {
        my ($version, $label) = @$v;
        subtest "$label: made with SNI, resumed without" => sub {
            my $sess = "$dir/" . ++$n;
            my ($st1, $how1) = tls_once($s, sni => 'default.test',
                host => 'default.test', version => $version, out => $sess,
                id => "made-$n");
            is $st1, 200, 'the first connection, with SNI, is served';
            is $how1, 'New', 'with a full handshake';
            my $mark = $s->mark;
            my ($st2, $how2) = tls_once($s, sni => undef,
                host => 'default.test', version => $version, in => $sess,
                id => "resumed-$n");
            is $how2, 'Reused', 'the second resumes the session';
            is $st2, 421, 'and, sending no SNI, meets sni-missing reject';
            my $log = $s->error_log_since($mark);
            my ($line) = grep { /MISDIRECT001:/ } split /\n/, $log;
            my %f = %{ fields($line // '') };
            is $f{reason}, 'sni-missing', 'reason sni-missing';
            is $f{sni}, '(none)', 'the line says no SNI was sent';
            is $f{tls_resumed}, 'yes', 'and that the session was resumed';
        };
    }
    # mod_ssl reads the session's name on a TLS 1.2 resumption: no SNI
    # sent now and no Host is its 400 for SNI without a host, on a real
    # handshake, not plain HTTP on the TLS port.
    subtest 'TLS 1.2: resumed without SNI, HTTP/1.0 without Host' => sub {
        my $sess = "$dir/nohost";
        my ($st1) = tls_once($s, sni => 'default.test',
            host => 'default.test', version => '-tls1_2', out => $sess,
            id => 'nohost-made');
        is $st1, 200, 'made with SNI default.test';
        $s->expect_log('AH02031');    # mod_ssl's 400, asked for next
        my $mark = $s->mark;
        my ($st2, $out) = raw_tls($s, sni => undef, quiet => 0,
            extra => ['-tls1_2', '-sess_in', $sess],
            request => "GET /?nohost-resumed HTTP/1.0\r\n\r\n");
        like $out, qr/^Reused, TLSv/m, 'resumed';
        is $st2, 400, 'mod_ssl answers 400';
        my ($line) = grep { /MISDIRECT006:/ }
            split /\n/, $s->error_log_since($mark);
        like $line // '', qr/\[misdirect:error\].*MISDIRECT006: mod_ssl answered 400: the request named no host; make the client send Host\. SNI was sent but the request named no host: /,
            'explained as mod_ssl\'s 400 for a missing host, at error';
        my %f = %{ fields($line // '') };
        is $f{tls_resumed}, 'yes', 'on the resumed handshake';
        is $f{sni}, '(none)', 'which sent no SNI itself';
    };
    subtest 'TLS 1.2: resumed under an alias of the session\'s name' => sub {
        my $sess = "$dir/alias";
        my ($st1) = tls_once($s, sni => 'alpha.test', host => 'alpha.test',
            version => '-tls1_2', out => $sess, id => 'alias-made');
        is $st1, 200, 'made with SNI alpha.test';
        my $mark = $s->mark;
        my ($st2, $how2) = tls_once($s, sni => 'www.alpha.test',
            host => 'default.test', version => '-tls1_2', in => $sess,
            id => 'alias-resumed');
        is $how2, 'Reused', 'resumed with SNI www.alpha.test';
        is $st2, 421, 'Host default.test: mod_ssl\'s 421';
        my ($line) = grep { /MISDIRECT006:/ }
            split /\n/, $s->error_log_since($mark);
        my %f = %{ fields($line // '') };
        is $f{sni}, 'www.alpha.test', 'the line names the SNI sent now';
    };
};

sub dump_json ($s) {
    my ($rc, $out, $err) = MisdirectTest::_run(MisdirectTest::httpd_binary(),
        '-t', '-D', 'DUMP_MISDIRECT_JSON', '-d', $s->root,
        '-f', $s->conf_file);
    is $rc, 0, '-t -D DUMP_MISDIRECT_JSON succeeds' or diag $err;
    return JSON::PP->new->decode($out);
}

# The prediction of the same configuration, asked for real: the vhost
# without TLS, and the address of the <VirtualHost> line (127.0.0.1),
# which core takes for a host only where no ServerName or ServerAlias
# matches: beta.test lists it as an alias, so it wins over every vhost
# whose line names 127.0.0.1.
subtest 'the prediction agrees' => sub {
    my $s = MisdirectTest->new(name => 'hs-predict', extra_vhosts => $OFF,
        vhost => { 'tls:beta.test' => 'ServerAlias 127.0.0.1' },
        global => 'MisdirectLogLimit 0',
        loglevel => 'warn misdirect:info ssl:info',
        # beta.crt does not name 127.0.0.1 (the lint says so).
        expect_log => [$OFF_DENIED, qw(AH02032 MISDIRECT006),
            qr/^MISDIRECT010: Lint: virtual host beta\.test \S+ its Server/]);
    my ($l) = grep { $_->{address} eq '127.0.0.1:' . $s->tls_port }
        dump_json($s)->{listeners}->@*;
    ok $l, 'the TLS address is listed' or return;
    my %want = map { (($_->{sni} // '-') . " $_->{host}" => $_) }
        $l->{pairs}->@*;
    for my $k ('off.test off.test', 'off.test default.test',
               'off.test alpha.test', 'beta.test 127.0.0.1',
               '- 127.0.0.1', 'alpha.test 127.0.0.1') {
        my ($sni, $host) = split / /, $k;
        my $p = $want{$k};
        ok $p, "the dump has SNI $sni, Host $host" or next;
        my $mark = $s->mark;
        my ($r) = $s->https(sni => $sni eq '-' ? undef : $sni,
            requests => [{ host => $host }]);
        # off.test has no document root of its own: its 403 is core's
        # authorization, which a prediction of misdirects leaves aside.
        if ($p->{status} == 200 && $host eq 'off.test') {
            ok $r->{status} != 421, "SNI $sni, Host $host: served as "
                . "predicted ($r->{status})";
            next;
        }
        is $r->{status}, $p->{status}, "SNI $sni, Host $host: "
            . "$p->{status} as predicted";
        if ($p->{status} == 421) {
            my $who = ($p->{by} // '') eq 'mod_ssl' ? 'AH02032'
                : 'MISDIRECT001';
            ok $s->wait_error_log(qr/$who/, $mark), "answered by $who";
        }
    }
    is $want{'beta.test 127.0.0.1'}{request_vhost}, 'beta.test',
        'a ServerAlias beats the <VirtualHost> address of an earlier vhost';
};

# <VirtualHost addr:*> answers on every port: the lint and the dump say
# ":*", as the status pages do, never ":0".
subtest 'an address of any port is shown as :*' => sub {
    my $pki = MisdirectTest::pki();
    # beta.crt does not name any.test: mod_ssl and the lint say so.
    my $s = MisdirectTest->new(name => 'hs-anyport',
        expect_log => [qr/^AH01909: any\.test:/,
            qr/^MISDIRECT010: Lint: virtual host any\.test /],
        extra_vhosts => <<~"EOF");
        <VirtualHost 127.0.0.2:*>
            ServerName any.test
            SSLEngine on
            SSLCertificateFile $pki/beta.crt
            SSLCertificateKeyFile $pki/beta.key
        </VirtualHost>
        EOF
    my @addr = map { $_->{address} } dump_json($s)->{listeners}->@*;
    ok((grep { $_ eq '127.0.0.2:*' } @addr), 'the dump lists 127.0.0.2:*')
        or diag "@addr";
    ok !(grep { /:0$/ } @addr), 'and no address as :0';
    unlike $s->error_log_since(0), qr/127\.0\.0\.2:0\b/,
        'nor does the lint';
};

done_testing;
