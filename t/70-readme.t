# The README's recipes, run as the README writes them: the blocks are read
# out of README.md (and docs/proxy.md, which repeats one), so a change
# there changes what runs here.
#
#   - the careful start with its log of findings (GlobalLog), on a server
#     whose every vhost has a CustomLog of its own, as every Debian site
#     has: a misdirected request gets its line in misdirect.log, a clean
#     one does not, and a server-level CustomLog would have logged neither;
#   - the setup for a reverse proxy that sends no SNI
#     (SSLVHostSNIPolicy authonly, MisdirectTrustedProxy, MisdirectPolicy
#     cert-mismatch reject): the proxy (127.0.0.1) is served, another
#     client (127.0.0.2) gets 421 and one explaining line.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase qw(fields);

sub slurp ($path) {
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# The indented code blocks of a Markdown file, without their four spaces
# of indentation; blank lines inside a block belong to it.
sub code_blocks ($file) {
    my (@blocks, $cur, $prev_blank);
    $prev_blank = 1;
    for my $line (split /\n/, slurp($file)) {
        if ($line =~ /^    (.*)$/ && ($cur || $prev_blank)) {
            $cur //= [];
            push @$cur, $1;
        }
        elsif ($line =~ /^\s*$/) {
            push @$cur, '' if $cur;
        }
        else {
            push @blocks, $cur if $cur;
            undef $cur;
        }
        $prev_blank = $line =~ /^\s*$/;
    }
    push @blocks, $cur if $cur;
    return map { join("\n", @$_) =~ s/\n+\z//r . "\n" } @blocks;
}

# The one block of $file that matches $re.
sub block ($file, $re) {
    my @found = grep { $_ =~ $re } code_blocks($file);
    is scalar(@found), 1, "$file has one code block matching $re"
        or return '';
    return $found[0];
}

# Every line at warn or worse in $log but those matching @expected.
sub unexpected ($log, @expected) {
    return grep {
        my $l = $_;
        /:(?:warn|error|crit|alert|emerg)\]/ && !/AH10034: /
            && !grep { $l =~ $_ } @expected
    } split /\n/, $log;
}

my $seq = 0;
sub tag ($what) { sprintf '%s-%d-%d', $what, $$, ++$seq }

# ------------------------------------------------------ the log of findings

subtest 'the careful start and its misdirect log, on Debian-style vhosts' => sub {
    my $recipe = block('README.md', qr/^GlobalLog .*misdirect\.log/m)
        or return;
    like $recipe, qr/^    Misdirect ReportOnly$/m,
        'the block is the careful start';
    # Each vhost logs to a file of its own, as a Debian site does.
    my %own = map {
        my ($kind, $name) = @$_;
        ("$kind:$name" => qq{CustomLog logs/$kind-$name.log "%v %>s %U%q"})
    } (map { [tls => $_] } qw(default.test alpha.test beta.test
        shared1.test shared2.test shared3.test a.wild.test b.wild.test)),
      (map { [plain => $_] } qw(default.test alpha.test beta.test));
    my $s = MisdirectTest->new(name => 'readme-log', vhost => \%own,
        expect_log => ['MISDIRECT008'],
        # Debian's envvars defines it; the recipe is written with it.
        global => "Define APACHE_LOG_DIR logs\n$recipe");
    my $mark = $s->mark;

    # Clean: the request's host selects the handshake's vhost.
    my $clean = tag('clean');
    my ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'alpha.test', path => "/?$clean" }]);
    is $r->{status}, 200, 'a clean request is served';
    ok $s->wait_log('tls-alpha.test.log', qr/\Q$clean\E/),
        '... and logged by its vhost\'s own CustomLog';

    # Misdirected: x.b.wild.test selects b.wild.test (ServerAlias
    # *.b.wild.test), and the handshake's certificate, for *.wild.test,
    # does not cover it: cert-mismatch.  The recipe's ReportOnly serves it.
    my $tls = tag('tls');
    ($r) = $s->https(sni => 'a.wild.test',
        requests => [{ host => 'x.b.wild.test', path => "/?$tls" }]);
    is $r->{status}, 200, 'a misdirected request is served (ReportOnly)';
    my $line = $s->wait_log('misdirect.log', qr/\Q$tls\E/);
    like $line // '', qr{^127\.0\.0\.1 b\.wild\.test 200 "GET /\?\Q$tls\E HTTP/1\.1" cert-mismatch (?:report|would-reject)$},
        'misdirect.log has its line: client, vhost, status, request, '
        . 'reason and action';
    ok $s->wait_log('tls-b.wild.test.log', qr/\Q$tls\E/),
        '... and its vhost\'s own CustomLog has it too';

    # Plain HTTP: an absolute https:// target (scheme-mismatch).
    my $plain = tag('plain');
    ($r) = $s->http(requests => [{ host => 'beta.test',
        target => "https://beta.test/?$plain" }]);
    is $r->{status}, 200, 'a scheme mismatch on plain HTTP is served '
        . '(ReportOnly)';
    like $s->wait_log('misdirect.log', qr/\Q$plain\E/) // '',
        qr{^127\.0\.0\.1 beta\.test 200 "GET https://beta\.test/\?\Q$plain\E HTTP/1\.1" scheme-mismatch (?:report|would-reject)$},
        'misdirect.log has the plain-HTTP finding too';
    ok $s->wait_log('plain-beta.test.log', qr/\Q$plain\E/),
        '... as does its vhost\'s own log';

    my $log = slurp($s->root . '/logs/misdirect.log');
    unlike $log, qr/\Q$clean\E/, 'the clean request is not in misdirect.log';
    is scalar(() = $log =~ /^/mg), 2, 'one line for each finding, no more'
        or diag $log;
    is $s->access_log_since($mark), '',
        'a CustomLog of the server config logs none of these vhosts '
        . '(which is why the recipe uses GlobalLog)';
    my @bad = unexpected($s->error_log_since,
        qr/MISDIRECT0\d\d: .*reason="(?:cert|scheme)-mismatch"/,
        qr/MISDIRECT01[015]: /);
    is scalar(@bad), 0, 'error_log: nothing unexpected at warn or worse'
        or diag join "\n", @bad;
};

# ------------------------------------------------ behind a proxy without SNI

subtest 'the proxy recipe: the proxy is served, anyone else gets 421' => sub {
    my $recipe = block('README.md', qr/^SSLVHostSNIPolicy authonly$/m)
        or return;
    is block('docs/proxy.md', qr/^SSLVHostSNIPolicy authonly$/m), $recipe,
        'docs/proxy.md gives the same block';
    like $recipe, qr/^    MisdirectTrustedProxy 127\.0\.0\.1\b/m,
        'the recipe trusts a proxy on this machine (127.0.0.1)';

    # Two vhosts that differ in their certificates only, as two sites do;
    # default.test is the address's first, the handshake's without SNI.
    my $pki = MisdirectTest::pki();
    my $s = MisdirectTest->new(name => 'readme-proxy', global => $recipe,
        expect_log => ['MISDIRECT001'],
        tls_vhosts => [ map { { name => "$_.test",
            conf => "SSLCertificateFile $pki/$_.crt\n"
                . "SSLCertificateKeyFile $pki/$_.key" } }
            qw(default alpha) ]);

    my $mark = $s->mark;
    my ($r) = $s->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 200, 'the proxy (127.0.0.1), no SNI, Host alpha.test: '
        . 'served';
    is $r->{body}, "alpha.test\n", '... by alpha.test';
    my $log = $s->error_log_since($mark);
    unlike $log, qr/\[misdirect:(?:error|warn)\]/,
        '... with no misdirect line at warn or error';
    unlike $log, qr/AH02032/, '... and mod_ssl did not refuse it';

    $mark = $s->mark;
    ($r) = $s->https(sni => undef, from => '127.0.0.2',
        requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 421, 'another client (127.0.0.2), the same request: 421';
    my @lines = grep { /\[misdirect:(?:error|warn)\]/ }
        split /\n/, $s->error_log_since($mark);
    is scalar(@lines), 1, '... and one line about it' or diag join "\n", @lines;
    my $line = $lines[0] // '';
    like $line, qr/\[misdirect:error\] .*MISDIRECT001: /,
        'the module\'s rejection, at error';
    my $f = fields($line);
    is $f->{reason}, 'cert-mismatch', 'reason="cert-mismatch"';
    like $f->{client} // '', qr/^127\.0\.0\.2:\d+$/, 'it names the client';
    is $f->{sni}, '(none)', 'it says no SNI was sent';
    like $f->{handshake_vhost} // '', qr/^default\.test \(.*:\d+\)$/,
        'it names the handshake\'s vhost and where it is defined';
    like $f->{request_vhost} // '', qr/^alpha\.test \(.*:\d+\)$/,
        'and the request\'s vhost';
    like $f->{hint} // '', qr/\S/, 'and gives a hint';

    ($r) = $s->https(sni => 'alpha.test', from => '127.0.0.2',
        requests => [{ host => 'alpha.test' }]);
    is $r->{status}, 200, 'that client with SNI alpha.test: served';

    my @bad = unexpected($s->error_log_since,
        qr/MISDIRECT001: .*client="127\.0\.0\.2:/);
    is scalar(@bad), 0, 'error_log: nothing else at warn or worse (no '
        . 'MISDIRECT014: the recipe sets cert-mismatch itself)'
        or diag join "\n", @bad;
};

done_testing();
