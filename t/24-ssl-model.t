# The module's model of mod_ssl's verdict, proved against mod_ssl itself.
#
# mod_ssl answers 421 (AH02032) when a request selects a vhost R other
# than the handshake's H and SSLVHostSNIPolicy finds their TLS settings
# incompatible.  mod_misdirect predicts that verdict and writes it into
# its diagnosis line as ssl_verdict="refuse"|"serve".  Here random vhosts
# with random TLS settings, each written in one of several equivalent
# spellings (quoted paths, `..` and `.` segments, paths relative to
# ServerRoot, certificate pairs in either order, protocol lists spelled
# two ways, keywords in any case, a flag written twice, a default written
# out or left out, settings inherited from the global config or repeated)
# run under each policy, and every cross request (R != H) must find the
# model and mod_ssl agreeing.  The settings: certificates, SSLProtocol,
# both SSLCipherSuite, SSLVerifyClient, SSLVerifyDepth, the CA, DN-request
# and CRL files and directories, SSLCARevocationCheck, SSLOCSPEnable,
# SSLOCSPDefaultResponder, SSLOCSPOverrideResponder and SSLOpenSSLConfCmd
# (global, per vhost or both).  No client sends a certificate, so no CRL
# or OCSP responder is ever consulted.
#
# MISDIRECT_MODEL_SEED   seed of the first round (default: a fixed one, so
#                        that `make test` always tries the same rounds;
#                        `make check-model` takes one from the time);
#                        round n+1's seed is derived from round n's, and a
#                        failure names the seed that replays its round
#                        alone (with MISDIRECT_MODEL_ROUNDS=1)
# MISDIRECT_MODEL_ROUNDS rounds: new vhosts, then a server per policy
#                        (default 2; `make check-model` runs many more)
# MISDIRECT_MODEL_VHOSTS vhosts per round (default 5, at least 2)
use v5.36;
use Test::More;
use File::Basename qw(basename dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use IPC::Open3 qw(open3);
use Time::HiRes qw(time);
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my $SEED = $ENV{MISDIRECT_MODEL_SEED} // 20261202;
my $ROUNDS = $ENV{MISDIRECT_MODEL_ROUNDS} // 2;
my $NVHOSTS = $ENV{MISDIRECT_MODEL_VHOSTS} // 5;
$SEED =~ /^\d+$/ && $SEED < 2**32 or BAIL_OUT('MISDIRECT_MODEL_SEED: '
    . "expected a number below 2**32, not '$SEED'");
$ROUNDS =~ /^\d+$/ && $ROUNDS >= 1
    or BAIL_OUT("MISDIRECT_MODEL_ROUNDS: expected a count, not '$ROUNDS'");
$NVHOSTS =~ /^\d+$/ && $NVHOSTS >= 2
    or BAIL_OUT("MISDIRECT_MODEL_VHOSTS: expected 2 or more, not '$NVHOSTS'");
diag "MISDIRECT_MODEL_SEED=$SEED MISDIRECT_MODEL_ROUNDS=$ROUNDS "
    . "MISDIRECT_MODEL_VHOSTS=$NVHOSTS";

my @POLICIES = qw(strict secure authonly insecure);

# ---------------------------------------------------------------- random

# xorshift32 (MisdirectRandom): replayable from the seed.
use MisdirectRandom;

# ---------------------------------------------------------------- PKI

# Made for this run next to the server roots (so that a path relative to
# ServerRoot can reach it) and removed at the end.
my $TMP = MisdirectTest::tmp_root();
my $PKI = "$TMP/ssl-model-pki-$$";
my $PKI_BASE = basename($PKI);
END { remove_tree($PKI) if $PKI && -d $PKI }

sub openssl (@args) {
    my $pid = open3(undef, my $out, undef, '/usr/bin/openssl', @args);
    my $text = do { local $/; <$out> } // '';
    waitpid $pid, 0;
    die "openssl @args failed:\n$text" if $?;
}

# The directories of the *Path directives and the file each holds.
my %DIRS = (
    cadir1 => 'ca1.crt', cadir2 => 'ca2.crt',
    crldir1 => 'ca1.crl', crldir2 => 'ca2.crl',
);

sub make_pki () {
    remove_tree($PKI);
    make_path($PKI);
    chmod 0755, $PKI;
    my $san = join ',', 'DNS:*.model.test', map { "DNS:v$_.model.test" }
        1 .. $NVHOSTS;
    for my $ca (qw(ca1 ca2)) {
        openssl(qw(req -x509 -new -nodes -newkey ec
            -pkeyopt ec_paramgen_curve:P-256 -days 2),
            -keyout => "$PKI/$ca.key", -out => "$PKI/$ca.crt",
            -subj => "/CN=ssl model $ca",
            -addext => 'basicConstraints=critical,CA:TRUE',
            -addext => 'keyUsage=critical,keyCertSign,cRLSign');
    }
    open my $fh, '>', "$PKI/server.ext" or die "$PKI/server.ext: $!";
    print $fh "basicConstraints=CA:FALSE\nsubjectAltName=$san\n"
        . "extendedKeyUsage=serverAuth\n";
    close $fh;
    my %newkey = (ecA => [qw(ec -pkeyopt ec_paramgen_curve:P-256)],
                  ecB => [qw(ec -pkeyopt ec_paramgen_curve:P-384)],
                  rsaA => ['rsa:2048']);
    for my $id (sort keys %newkey) {
        openssl(qw(req -new -nodes -newkey), $newkey{$id}->@*,
            -keyout => "$PKI/$id.key", -out => "$PKI/$id.csr",
            -subj => '/CN=v1.model.test');
        openssl(qw(x509 -req -days 2 -CAcreateserial), -in => "$PKI/$id.csr",
            -CA => "$PKI/ca1.crt", -CAkey => "$PKI/ca1.key",
            -extfile => "$PKI/server.ext", -out => "$PKI/$id.crt");
    }
    # The same certificate with its key in the file, no key file.
    open my $out, '>', "$PKI/ecA-full.pem" or die "$PKI/ecA-full.pem: $!";
    for my $f ("$PKI/ecA.crt", "$PKI/ecA.key") {
        open my $in, '<', $f or die "$f: $!";
        print {$out} <$in>;
    }
    close $out;
    # An empty CRL of each CA.
    open $fh, '>', "$PKI/crl.cnf" or die "$PKI/crl.cnf: $!";
    print $fh "[ca]\ndefault_ca = crl\n[crl]\ndatabase = $PKI/index.txt\n"
        . "crlnumber = $PKI/crlnumber\ndefault_md = sha256\n"
        . "default_crl_days = 2\n";
    close $fh;
    for my $f (["$PKI/index.txt", ''], ["$PKI/crlnumber", "01\n"]) {
        open $fh, '>', $f->[0] or die "$f->[0]: $!";
        print $fh $f->[1];
        close $fh;
    }
    for my $ca (qw(ca1 ca2)) {
        openssl(qw(ca -gencrl -batch), -config => "$PKI/crl.cnf",
            -keyfile => "$PKI/$ca.key", -cert => "$PKI/$ca.crt",
            -out => "$PKI/$ca.crl");
    }
    # The directories of the *Path directives, with the hash links by
    # which OpenSSL looks a CA or CRL up.
    for my $dir (sort keys %DIRS) {
        make_path("$PKI/$dir");
        copy("$PKI/$DIRS{$dir}", "$PKI/$dir/$DIRS{$dir}")
            or die "$PKI/$dir/$DIRS{$dir}: $!";
        openssl('rehash', "$PKI/$dir");
    }
    chmod 0644, grep { -f } glob "$PKI/* $PKI/*/*";
    chmod 0755, grep { -d } glob "$PKI/*";
}

# ---------------------------------------------------------------- settings

# A path in one of its equivalent spellings: mod_ssl resolves each against
# ServerRoot (ap_server_root_relative) before it compares them.
sub spell_path ($file) {
    my $p = pick(
        "$PKI/$file",
        "$PKI/../$PKI_BASE/$file",
        "$PKI/./$file",
        "$PKI//$file",
        "../$PKI_BASE/$file",              # ServerRoot is $TMP/NAME
        "./../$PKI_BASE/./$file",
    );
    return chance(0.3) ? qq{"$p"} : $p;
}

sub recase ($word) {
    return pick($word, lc $word, uc $word,
        join '', map { chance(0.5) ? uc : lc } split //, $word);
}

# A directory: its trailing slash is part of the path httpd resolves (so
# "dir/" is another value than "dir"), and "dir/." is "dir/".
sub spell_dir ($dir) {
    return spell_path($dir =~ m{/$} && chance(0.4) ? "$dir." : $dir);
}

# A keyword and its flags (SSLCARevocationCheck, SSLOCSPEnable): any case,
# any quoting and spacing, a flag given twice is given once.
sub spell_words ($v) {
    my ($mode, @flags) = split ' ', $v;
    return join pick(' ', '  ', "\t"), map {
        my $w = recase($_);
        chance(0.2) ? qq{"$w"} : $w
    } $mode, map { chance(0.3) ? ($_, $_) : $_ } @flags;
}

# Each compared setting: its values (undef: not configured, the default),
# how one value is written, as configuration lines, and the value, if any,
# that is the same written out as left out.
my %PROTOCOLS = (
    'TLSv1.2+1.3' => [ 'all -TLSv1 -TLSv1.1', '-all +TLSv1.2 +TLSv1.3',
                       '+TLSv1.2 +TLSv1.3', 'ALL -tlsv1 -TLSV1.1',
                       '-All +tlsv1.2 +TLSv1.3', 'TLSv1.2 +TLSv1.3' ],
    'TLSv1.3'     => [ '-all +TLSv1.3', 'TLSv1.3', '+tlsv1.3',
                       'all -TLSv1 -TLSv1.1 -TLSv1.2' ],
    'all'         => [ 'all', 'ALL', '+TLSv1 +TLSv1.1 +TLSv1.2 +TLSv1.3',
                       '-all +all' ],
);
my %CIPHERS = (
    high  => 'HIGH:!aNULL:!MD5',
    ecdhe => 'ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL',
);
my %TLS13 = (
    aes    => 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
    chacha => 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:'
              . 'TLS_AES_128_GCM_SHA256',
);
# SSLOpenSSLConfCmd lines: a command name (mod_ssl compares it with its
# case, though OpenSSL takes it in any) and its argument; VerifyCAFile's is
# a path, which mod_ssl resolves against ServerRoot as it does its own.
my %CMDS = (
    ticket   => ['Options', '-SessionTicket'],
    curves   => ['Curves', 'X25519:P-256'],
    lcurves  => ['curves', 'X25519:P-256'],
    groups   => ['Groups', 'X25519:P-256'],
    verifyca => ['VerifyCAFile', undef],
);
my %CERTS = (
    ecA => [['ecA.crt', 'ecA.key']],
    ecB => [['ecB.crt', 'ecB.key']],
    rsa => [['rsaA.crt', 'rsaA.key']],
    'rsa+ecA' => [['rsaA.crt', 'rsaA.key'], ['ecA.crt', 'ecA.key']],
    'ecA-keyless' => [['ecA-full.pem', undef]],
);

my @SETTINGS = (
    { name => 'cert', values => [sort keys %CERTS], required => 1,
      lines => sub ($v) {
          my @pairs = $CERTS{$v}->@*;
          @pairs = reverse @pairs if chance(0.5);    # RSA+ECDSA either way
          my @crt = map { 'SSLCertificateFile ' . spell_path($_->[0]) }
              @pairs;
          my @key = map { 'SSLCertificateKeyFile ' . spell_path($_->[1]) }
              grep { defined $_->[1] } @pairs;
          # Paired by position, whether interleaved or not.
          return chance(0.5) || @key != @crt ? (@crt, @key)
              : map { ($crt[$_], $key[$_]) } 0 .. $#crt;
      } },
    { name => 'protocol', values => [undef, sort keys %PROTOCOLS],
      default => 'all',
      lines => sub ($v) { 'SSLProtocol ' . pick($PROTOCOLS{$v}->@*) } },
    { name => 'cipher', values => [undef, sort keys %CIPHERS],
      lines => sub ($v) {
          my $c = $CIPHERS{$v};
          'SSLCipherSuite ' . pick($c, qq{"$c"}, "SSL $c", qq{SSL "$c"});
      } },
    { name => 'tls13', values => [undef, sort keys %TLS13],
      lines => sub ($v) {
          my $c = $TLS13{$v};
          'SSLCipherSuite TLSv1.3 ' . pick($c, qq{"$c"});
      } },
    { name => 'verify', values => [undef, 'none', 'optional'],
      default => 'none',
      lines => sub ($v) { 'SSLVerifyClient ' . recase($v) } },
    { name => 'depth', values => [undef, 1, 2, 5], default => 1,
      lines => sub ($v) { 'SSLVerifyDepth ' . pick($v, "0$v") } },
    { name => 'ca', values => [undef, 'ca1', 'ca2'],
      lines => sub ($v) { 'SSLCACertificateFile ' . spell_path("$v.crt") } },
    { name => 'cadn', values => [undef, 'ca1', 'ca2'],
      lines => sub ($v) { 'SSLCADNRequestFile ' . spell_path("$v.crt") } },
    { name => 'capath', values => [undef, 'cadir1', 'cadir1/', 'cadir2'],
      lines => sub ($v) { 'SSLCACertificatePath ' . spell_dir($v) } },
    { name => 'cadnpath', values => [undef, 'cadir1', 'cadir1/', 'cadir2'],
      lines => sub ($v) { 'SSLCADNRequestPath ' . spell_dir($v) } },
    { name => 'crl', values => [undef, 'ca1', 'ca2'],
      lines => sub ($v) { 'SSLCARevocationFile ' . spell_path("$v.crl") } },
    { name => 'crlpath', values => [undef, 'crldir1', 'crldir1/', 'crldir2'],
      lines => sub ($v) { 'SSLCARevocationPath ' . spell_dir($v) } },
    # chain and leaf want a CRL (below).
    { name => 'crlcheck', default => 'none',
      values => [undef, 'none', 'chain', 'leaf', 'chain no_crl_for_cert_ok'],
      lines => sub ($v) { 'SSLCARevocationCheck ' . spell_words($v) } },
    { name => 'ocsp', default => 'off',
      values => [undef, 'off', 'on', 'leaf', 'on no_ocsp_for_cert_ok'],
      lines => sub ($v) { 'SSLOCSPEnable ' . spell_words($v) } },
    { name => 'responder', values => [undef, 'http://ocsp.model.test/',
          'http://ocsp.model.test', 'http://OCSP.model.test/'],
      lines => sub ($v) { 'SSLOCSPDefaultResponder ' . pick($v, qq{"$v"}) } },
    # No default: an explicit off differs from unset, to mod_ssl too.
    { name => 'override', values => [undef, 'off', 'on'],
      lines => sub ($v) { 'SSLOCSPOverrideResponder ' . recase($v) } },
    # A list: a vhost's commands come after the global ones, so repeating
    # the global's is not inheriting them.
    { name => 'cmds', list => 1, values => [undef, sort(keys %CMDS),
          'ticket+curves', 'curves+ticket', 'ticket+verifyca'],
      lines => sub ($v) { map { spell_cmd($_) } split /\+/, $v } },
);

my %SETTING = map { $_->{name} => $_ } @SETTINGS;
# SSLVHostSNIPolicy's server group; the rest are the client-verification
# (authonly) group.
my %SERVER_GROUP = map { $_ => 1 } qw(cert protocol cipher tls13);

sub spell_cmd ($k) {
    my ($name, $arg) = $CMDS{$k}->@*;
    $arg = defined $arg ? pick($arg, qq{"$arg"}) : spell_path('ca1.crt');
    return 'SSLOpenSSLConfCmd ' . pick($name, qq{"$name"}) . " $arg";
}

# What a profile must add for mod_ssl to start: optional wants a CA, CRL
# checking a CRL.
sub complete ($eff) {
    my @add;
    push @add, ['ca', 'ca1'] if ($eff->{verify} // '') eq 'optional'
        && !defined $eff->{ca} && !defined $eff->{capath};
    push @add, ['crl', 'ca1'] if ($eff->{crlcheck} // '') =~ /^(?:chain|leaf)/
        && !defined $eff->{crl} && !defined $eff->{crlpath};
    return map { $eff->{ $_->[0] } = $_->[1];
        $SETTING{ $_->[0] }{lines}->($_->[1]) } @add;
}

sub same ($x, $y) { (defined $x ? "=$x" : '') eq (defined $y ? "=$y" : '') }

sub random_profile ($global) {
    my %p;
    for my $s (@SETTINGS) {
        my $g = $global->{ $s->{name} };
        $p{ $s->{name} } = defined $g && chance(0.5) ? $g
            : pick(grep { !$s->{required} || defined } $s->{values}->@*);
    }
    return \%p;
}

# One round's configuration: global TLS lines and the vhosts, each with its
# lines and what its settings mean once inherited.
sub generate ($seed) {
    reseed($seed);
    my (%global, @glines);
    for my $s (@SETTINGS) {
        next unless chance($s->{name} eq 'cert' ? 0.2 : 0.3);
        # No keyless certificate next to a global one: a vhost's
        # certificate file could be paired with an inherited key file.
        $global{ $s->{name} } = pick(grep { defined && !/keyless/ }
            $s->{values}->@*);
        push @glines, $s->{lines}->($global{ $s->{name} });
    }
    # The global config has a CA if it verifies, a CRL if it checks them.
    push @glines, complete(\%global);
    my @bases = map { random_profile(\%global) } 1 .. pick(1, 1, 2);
    my @vhosts;
    for my $i (1 .. $NVHOSTS) {
        # Often the same settings as another vhost, spelled otherwise, or
        # one or two settings apart: the pairs that tell most.
        my %want = pick(@bases)->%*;
        for (1 .. pick(0, 0, 0, 0, 1, 1, 2)) {
            # Either group as often, though most settings are of the
            # client-verification one: authonly still sees equal pairs.
            my $server = chance(0.5);
            my $s = pick(grep { !$SERVER_GROUP{ $_->{name} } == !$server }
                @SETTINGS);
            my @other = grep { !same($_, $want{ $s->{name} }) }
                grep { !$s->{required} || defined } $s->{values}->@*;
            $want{ $s->{name} } = pick(@other);
        }
        my (%eff, @lines);
        for my $s (@SETTINGS) {
            my $n = $s->{name};
            my ($w, $g) = ($want{$n}, $global{$n});
            if ($n eq 'cert' && defined $g) {
                # Inherited, or the vhost's own (never keyless, above).
                $w =~ s/-keyless$//;
                if (chance(0.5)) {
                    $eff{$n} = $g;
                }
                else {
                    $eff{$n} = $w;
                    push @lines, $s->{lines}->($w);
                }
                next;
            }
            # A list given again is not inherited but doubled: rarer, or
            # few vhosts of one base would be equal.
            if (!defined $w || (defined $g && same($w, $g)
                    && chance($s->{list} ? 0.8 : 0.5))) {
                $eff{$n} = $g;    # inherited (or the default)
                # Nothing to inherit: the default, said or not.
                push @lines, $s->{lines}->($s->{default})
                    if !defined $g && defined $s->{default} && chance(0.2);
                next;
            }
            $eff{$n} = $s->{list} && defined $g ? "$g+$w" : $w;
            push @lines, $s->{lines}->($w);
        }
        push @lines, complete(\%eff);
        push @vhosts, { name => "v$i.model.test",
            conf => join("\n", @lines), eff => \%eff };
    }
    return { seed => $seed, global => join("\n", @glines),
        vhosts => \@vhosts,
        policy_word => { map { $_ => recase($_) } @POLICIES },
        secure_implicit => chance(0.5) };
}

sub describe ($v) {
    my $eff = join ' ', map { "$_->{name}=" . ($v->{eff}{ $_->{name} }
        // '(default)') } @SETTINGS;
    return "$v->{name}: $eff\n" . ($v->{conf} =~ s/^/        /mgr);
}

# ---------------------------------------------------------------- running

my $seq = 0;

# One cross request and what went wrong with it: the model's verdict
# against mod_ssl's answer, and the plumbing around them.
sub cross ($s, $policy, $sni, $host) {
    my $id = sprintf 'model=%d-%d', $$, ++$seq;
    my $mark = $s->mark;
    my ($r) = $s->https(sni => $sni, requests => [{ host => $host,
        path => "/?$id", headers => [Connection => 'close'] }]);
    my $st = $r->{status};
    # 006 explains mod_ssl's 421; 003 is the allowed finding of the rest.
    my $want = $st == 421 ? '006' : '003';
    $s->wait_access_log(qr/\Q$id\E/, $mark);
    $s->wait_error_log(qr/MISDIRECT$want: /, $mark, 5);
    my @log = split /\n/, $s->error_log_since($mark);
    my @diag = grep { /\[misdirect:\w+\].* MISDIRECT\d{3}: / } @log;
    my $ah02032 = grep { /\[ssl:error\].*AH02032/ } @log;
    # The request's vhost verifies clients, the handshake's did not ask
    # for a certificate and the client offers no post-handshake
    # authentication: mod_ssl served the vhost, and answers 403.
    my $pha403 = $st == 403 && grep { /\[ssl:error\].*AH10158/ } @log;
    # That 403 has a line of its own, by mod_ssl; the rest is as for a
    # request served.
    my @forbidden = grep { /MISDIRECT006: mod_ssl answered 403: .*SSLVerifyClient.* by="mod_ssl"/ }
        @diag;
    @diag = grep { !/MISDIRECT006: mod_ssl answered 403: / } @diag;
    my ($line) = (grep({ /MISDIRECT$want: / } @diag), @diag);
    my $verdict = fields($line // '')->{ssl_verdict} // '(none)';

    my @why;
    push @why, "model: $verdict, mod_ssl: $st"
        if ($st == 421) != ($verdict eq 'refuse')
            || $verdict !~ /^(?:refuse|serve)$/;
    push @why, "status $st" . ($r->{error} ? " ($r->{error})" : '')
        . ', not 200 or 421' if $st != 200 && $st != 421 && !$pha403;
    push @why, 'AH02032 ' . ($ah02032 ? 'with' : 'without') . " a $st"
        if !!$ah02032 != ($st == 421);
    # mod_ssl names the policy it applied: the directive took, whatever
    # its case, and secure is the default.
    push @why, "mod_ssl applied policy '$_'" for grep { $_ ne $policy }
        map { /AH02032: .* for policy '(\w+)'/ ? $1 : () } @log;
    push @why, 'strict served a cross request'
        if $policy eq 'strict' && $st != 421;
    push @why, 'insecure refused' if $policy eq 'insecure' && $st == 421;
    push @why, scalar(@diag) . ' diagnosis lines, not one' if @diag != 1;
    push @why, 'no MISDIRECT006 explaining mod_ssl\'s 403'
        if $pha403 && @forbidden != 1;
    push @why, 'MISDIRECT006 for a 403 that mod_ssl did not answer'
        if !$pha403 && @forbidden;
    push @why, "no MISDIRECT$want line" unless grep { /MISDIRECT$want: / }
        @diag;
    for my $d (@diag) {
        my $f = fields($d);
        my ($no) = $d =~ / (MISDIRECT\d{3}): /;
        push @why, "$no: ssl_policy=\"" . ($f->{ssl_policy} // '') . '"'
            if ($f->{ssl_policy} // '') ne $policy;
        push @why, "$no: ssl_verdict=\"" . ($f->{ssl_verdict} // '')
            . '" against ' . $verdict
            if ($f->{ssl_verdict} // '') ne $verdict;
        push @why, "$no is about host " . ($f->{host} // '?') . ', sni '
            . ($f->{sni} // '?') if ($f->{host} // '') ne $host
                || ($f->{sni} // '') ne ($sni // '(none)');
        # What differs must agree with the verdict: nothing that counts
        # when served, something (or strict) when refused; and every
        # setting named is one of the table's, not stray bytes.
        my $differs = $f->{tls_differs} // '';
        # Under insecure, which compares nothing, the line says so.
        my $nothing = $policy eq 'insecure'
            ? '(not compared under SSLVHostSNIPolicy insecure)' : 'none';
        push @why, "$no: tls_differs=\"$differs\" with a serve verdict"
            if $verdict eq 'serve' && $differs ne $nothing;
        push @why, "$no: tls_differs=\"none\" with a refuse verdict"
            if $verdict eq 'refuse' && $policy ne 'strict'
                && $differs eq 'none';
        push @why, "$no: tls_differs holds bytes no setting has: $differs"
            if $differs =~ /%(?:[01][0-9a-f]|7f|[89a-f][0-9a-f])/i;
    }
    return { status => $st, verdict => $verdict, why => \@why,
        log => [ grep { /MISDIRECT\d{3}: |AH02032|AH10158/ } @log ] };
}

my (%total, %agree);    # policy => { 'refused/serve' => n }, n

# What a round may log at warn or above: mod_ssl's 421s and the module's
# explanation of each; the startup lint on the settings that keep vhosts
# apart; mod_ssl's warning about a CRL location without
# SSLCARevocationCheck, which the random settings allow.
my @MODEL_LOG = qw(AH02032 MISDIRECT006 MISDIRECT011 MISDIRECT015 AH01902);
# Under insecure mod_ssl serves a vhost that verifies clients on a TLS 1.3
# connection made for another one, asks for the certificate after the
# handshake, and answers 403 when the client did not offer that.
my @INSECURE_LOG = ('AH10158',
    qr/^SSL Library Error: error:0A000117:/);

sub run_policy ($round, $cfg, $policy) {
    my $directive = $policy eq 'secure' && $cfg->{secure_implicit}
        ? '# SSLVHostSNIPolicy not set: secure'
        : "SSLVHostSNIPolicy $cfg->{policy_word}{$policy}";
    my $replay = "replay: MISDIRECT_MODEL_SEED=$cfg->{seed} "
        . "MISDIRECT_MODEL_ROUNDS=1 MISDIRECT_MODEL_VHOSTS=$NVHOSTS";
    my $s = eval { MisdirectTest->new(name => "ssl-model-$policy", h2 => 0,
        loglevel => 'warn misdirect:debug',
        global => join("\n", $directive, 'MisdirectLogLimit 0',
            'MisdirectPolicy cert-mismatch allow',
            'MisdirectPolicy sni-host-mismatch allow', $cfg->{global}),
        tls_vhosts => [ map { { name => $_->{name}, conf => $_->{conf} } }
            $cfg->{vhosts}->@* ],
        expect_log => [@MODEL_LOG, $policy eq 'insecure' ? @INSECURE_LOG
            : ()]) };
    unless ($s) {
        fail "round $round, $policy: httpd starts";
        diag "$replay\n$@";
        return;
    }
    dirname($s->root) eq $TMP
        or BAIL_OUT('server root ' . $s->root . " is not in $TMP: paths "
            . 'relative to ServerRoot would miss the PKI');
    my @names = map { $_->{name} } $cfg->{vhosts}->@*;
    my %vh = map { $_->{name} => $_ } $cfg->{vhosts}->@*;
    my (@bad, %count, $n);
    for my $sni (@names, undef) {
        my $h = $sni // $names[0];    # no SNI: the address's first vhost
        for my $host (grep { $_ ne $h } @names) {
            my $c = cross($s, $policy, $sni, $host);
            $n++;
            $count{ ($c->{status} == 421 ? 'refused' : 'served')
                . "/$c->{verdict}" }++;
            next unless $c->{why}->@*;
            my $what = "$policy, SNI " . ($sni // '(none)') . " (H $h), "
                . "Host $host: " . join '; ', $c->{why}->@*;
            push @bad, @bad >= 3 ? "$what\n" : join '', $what,
                "\n    $replay\n    global:\n"
                . ($cfg->{global} =~ s/^/        /mgr) . "\n    H "
                . describe($vh{$h}) . "\n    R " . describe($vh{$host}) . "\n",
                map { "    log: $_\n" } $c->{log}->@*;
        }
    }
    $s->stop;
    $total{$policy}{$_} += $count{$_} for keys %count;
    $agree{$policy} += $n - @bad;
    my $max = 30;
    ok !@bad, "round $round, $policy: model and mod_ssl agree on $n cross "
        . 'requests (' . join(', ', map { "$_ $count{$_}" } sort keys %count)
        . ')' or diag "round $round (seed $cfg->{seed}): " . @bad
            . " of $n requests wrong:\n", @bad[0 .. min($#bad, $max - 1)],
            @bad > $max ? '... and ' . (@bad - $max) . " more\n" : '';
}

sub min ($x, $y) { $x < $y ? $x : $y }

make_pki();
my $started = time;
my $seed = $SEED;
for my $round (1 .. $ROUNDS) {
    my $cfg = generate($seed);
    note "round $round: seed $seed\n    global:\n"
        . ($cfg->{global} =~ s/^/        /mgr) . "\n"
        . join '', map { '    ' . describe($_) . "\n" } $cfg->{vhosts}->@*;
    run_policy($round, $cfg, $_) for @POLICIES;
    reseed($seed);
    rnd(1);
    $seed = rng_state();    # the next round's seed
}
note sprintf "%d rounds in %.1f s (mod_ssl's answer/the model's verdict):\n%s",
    $ROUNDS, time - $started, join '', map { my $p = $_;
        "    $p: " . join(', ', map { "$_ $total{$p}{$_}" }
            sort keys $total{$p}->%*) . "; agreed on $agree{$p}\n" } @POLICIES;

done_testing;
