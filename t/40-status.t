# Counters and status (docs/counters.md): a known mix of requests over many
# connections, served by many child processes and threads, must show up as
# exact counts in the misdirect-status JSON, in mod_status's ?auto lines and
# in the ?text table; counters survive a graceful restart (also one that
# adds vhosts beyond the segment's room) and reset on a full restart; no
# shared memory is left behind.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Basename qw(basename);
use JSON::PP ();
use POSIX ();
use Test::More;
use MisdirectTest;

my $MODDIR = MisdirectTest::module_dir();
-f "$MODDIR/mod_status.so"
    or die "$MODDIR/mod_status.so not found: apt-get install apache2\n";

my @CHECKS = qw(scheme-mismatch sni-missing cert-mismatch sni-host-mismatch
    unknown-host port-mismatch forwarded-host);
my @STATS = qw(checked fired rejected reported allowed would_reject
    mod_ssl_421 mod_ssl_400 mod_ssl_403 other_421);
my @OUTCOMES = qw(fired rejected reported allowed would_reject);
my @CAUSES = qw(no-sni pool-reuse browser-reuse sni-with-port
    client-override host-rewritten unknown-host other);
my %OUTCOME = (reject => 'rejected', report => 'reported',
    allow => 'allowed');
my %SEVERITY = (allow => 0, report => 1, reject => 2);
my %AUTO = (checked => 'Checked', fired => 'Fired', rejected => 'Rejected',
    reported => 'Reported', allowed => 'Allowed', mod_ssl_421 => 'ModSSL421',
    mod_ssl_400 => 'ModSSL400', mod_ssl_403 => 'ModSSL403',
    other_421 => 'Other421', would_reject => 'WouldReject');

# What each kind of request is, and what it must add to the counters of
# its request vhost ("tls:NAME" or "plain:NAME").  mod_ssl => STATUS: mod_ssl
# refuses the request before the module's check (SSLVHostSNIPolicy secure,
# between vhosts with other certificate files or client verification), so
# it is not checked, only counted as mod_ssl's.  other => 1: the check
# finds nothing, then a handler answers 421 (Redirect 421, below).
my %KIND = (
    accepted => { sni => 'alpha.test', host => 'alpha.test', status => 200,
        vhost => 'tls:alpha.test', fired => {} },
    port     => { sni => 'alpha.test', host => 'alpha.test:1', status => 200,
        vhost => 'tls:alpha.test', fired => { 'port-mismatch' => 'allow' },
        same => 1 },
    other421 => { sni => 'alpha.test', host => 'alpha.test',
        path => '/gone421', status => 421, vhost => 'tls:alpha.test',
        fired => {}, other => 1, same => 1 },
    ssl_cert => { sni => 'alpha.test', host => 'beta.test', status => 421,
        vhost => 'tls:beta.test', fired => {}, mod_ssl => 421 },
    nosni_ssl => { sni => undef, host => 'alpha.test', status => 421,
        vhost => 'tls:alpha.test', fired => {}, mod_ssl => 421 },
    shared   => { sni => 'shared1.test', host => 'shared1.test',
        status => 200, vhost => 'tls:shared1.test', fired => {} },
    reuse    => { sni => 'shared1.test', host => 'shared2.test',
        status => 200, vhost => 'tls:shared2.test',
        fired => { 'sni-host-mismatch' => 'allow' }, covers => 1 },
    cert1    => { sni => 'shared1.test', host => 'beta.test', status => 421,
        vhost => 'tls:beta.test', fired => {}, mod_ssl => 421 },
    # shared3 requires a client certificate: mod_ssl refuses the request
    # with 421, and the module explains it.
    ssl421   => { sni => 'shared1.test', host => 'shared3.test',
        status => 421, vhost => 'tls:shared3.test', fired => {},
        mod_ssl => 421, covers => 1 },
    wild     => { sni => 'a.wild.test', host => 'a.wild.test', status => 200,
        vhost => 'tls:a.wild.test', fired => {} },
    reported => { sni => 'a.wild.test', host => 'b.wild.test', status => 200,
        vhost => 'tls:b.wild.test',
        fired => { 'sni-host-mismatch' => 'report' }, covers => 1 },
    # b.wild.test reports sni-host-mismatch, but rejects (the default) a
    # host that the connection's certificate does not cover; mod_ssl serves
    # it (same certificate files), so the 421 is the module's.
    cert     => { sni => 'a.wild.test', host => 'x.b.wild.test',
        status => 421, vhost => 'tls:b.wild.test',
        fired => { 'cert-mismatch' => 'reject' } },
    # Other certificate files: mod_ssl's 421 on an h2 stream.
    wild_h2  => { sni => 'shared1.test', host => 'b.wild.test',
        status => 421, vhost => 'tls:b.wild.test', fired => {},
        mod_ssl => 421 },
    nosni    => { sni => undef, host => 'default.test', status => 200,
        vhost => 'tls:default.test', fired => { 'sni-missing' => 'allow' } },
    unknown  => { plain => 1, host => 'nosuch.test', status => 200,
        vhost => 'plain:default.test',
        fired => { 'unknown-host' => 'allow' }, unknown => 1 },
    scheme   => { plain => 1, host => 'alpha.test',
        target => 'https://alpha.test/', status => 421,
        vhost => 'plain:alpha.test',
        fired => { 'scheme-mismatch' => 'reject' } },
    other421_plain => { plain => 1, host => 'alpha.test', path => '/gone421',
        status => 421, vhost => 'plain:alpha.test', fired => {}, other => 1,
        same => 1 },
);
# The same 421 of a handler, on an h2 stream of the a.wild.test connection.
$KIND{other421_h2} = { %{ $KIND{other421} }, sni => 'a.wild.test',
    host => 'a.wild.test', vhost => 'tls:a.wild.test' };

# One connection each: [client, kinds...].  A 421 ends an HTTP/1.x
# connection, so it comes last.
my @CONNS = (
    [https => qw(accepted port accepted other421)],
    [https => qw(accepted ssl_cert)],
    [https => qw(nosni nosni_ssl)],
    [https => qw(reuse shared reuse ssl421)],
    [https => qw(reported reported cert)],
    [https => qw(nosni nosni)],
    [http  => qw(unknown unknown scheme)],
    [http  => qw(unknown other421_plain)],
    [h2    => qw(shared reuse cert1 ssl421 wild_h2)],
    [h2    => qw(wild reported cert other421_h2 wild)],
);
my $ROUNDS  = 6;
my $CLIENTS = 4;

# ---------------------------------------------------------------- helpers

# mod_http2 offers no h2 under prefork.
sub has_h2 ($mpm) { $mpm ne 'prefork' }

sub zero_counts () {
    return { (map { $_ => 0 } @STATS),
        checks => { map { my $c = $_; $c => { map { $_ => 0 } @OUTCOMES } }
            @CHECKS },
        causes => { map { $_ => 0 } @CAUSES } };
}

sub expect_kind ($exp, $kind) {
    my $k = $KIND{$kind} or die "no kind $kind";
    my $c = $exp->{ $k->{vhost} } //= zero_counts();
    if (my $status = $k->{mod_ssl}) {
        $c->{"mod_ssl_$status"}++;
        return;
    }
    $c->{checked}++;
    $c->{other_421}++ if $k->{other};
    if (my %fired = $k->{fired}->%*) {
        $c->{fired}++;
        my ($worst) = sort { $SEVERITY{$b} <=> $SEVERITY{$a} }
            values %fired;
        $c->{ $OUTCOME{$worst} }++;
        for my $check (keys %fired) {
            $c->{checks}{$check}{fired}++;
            $c->{checks}{$check}{ $OUTCOME{ $fired{$check} } }++;
        }
    }
}

sub sum_counts (@counts) {
    my $t = zero_counts();
    for my $c (@counts) {
        $t->{$_} += $c->{$_} for @STATS;
        for my $check (@CHECKS) {
            $t->{checks}{$check}{$_} += $c->{checks}{$check}{$_}
                for @OUTCOMES;
        }
        $t->{causes}{$_} += $c->{causes}{$_} // 0 for @CAUSES;
    }
    return $t;
}

sub add_counts ($a, $b) { sum_counts($a, $b) }

# Runs one connection; returns the statuses it got.  A child that reached
# MaxConnectionsPerChild closes idle keep-alive connections (event) and
# refuses streams it will not serve; like any client, resend what got no
# answer on a new connection.  Unanswered requests were never counted, so
# a request counted twice would still show.
sub run_conn ($s, $client, @kinds) {
    my @got;
    for my $try (1 .. 10) {
        my @more = run_once($s, $client, @kinds[scalar @got .. $#kinds]);
        while (@more && $more[0]) {
            push @got, shift @more;
        }
        last if @got == @kinds || grep { $_ } @more;
    }
    return @got;
}

sub run_once ($s, $client, @kinds) {
    my $sni = $KIND{ $kinds[0] }{sni};
    if ($client eq 'h2') {
        my $res = $s->h2(sni => $sni,
            streams => [map { { authority => $KIND{$_}{host},
                path => $KIND{$_}{path} // '/' } } @kinds]);
        return map { $_->{status} // 0 } $res->{streams}->@*;
    }
    my @req = map {
        my $k = $KIND{$_};
        { host => $k->{host}, ($k->{target} ? (target => $k->{target}) : ()),
          ($k->{path} ? (path => $k->{path}) : ()) }
    } @kinds;
    my @res = $client eq 'http' ? $s->http(requests => \@req)
        : $s->https(sni => $sni, requests => \@req);
    return map { $_->{status} } @res;
}

# Sends the mix: $rounds times every connection of @CONNS, spread over
# $clients processes that run at the same time.  Returns the expected
# counters per vhost key.
sub send_mix ($s, $mpm, $rounds, $clients) {
    my @conns = grep { $_->[0] ne 'h2' || has_h2($mpm) } @CONNS;
    my @jobs = map { @conns } 1 .. $rounds;
    my (%exp, @kids);
    for my $n (0 .. $clients - 1) {
        pipe my $r, my $w or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $r;
            my @out;
            for (my $i = $n; $i < @jobs; $i += $clients) {
                my ($client, @kinds) = $jobs[$i]->@*;
                my @got = eval { run_conn($s, $client, @kinds) };
                push @out, { conn => $i, got => \@got, error => $@ };
            }
            print $w JSON::PP->new->encode(\@out);
            close $w;
            POSIX::_exit(0);    # no END: the server belongs to the parent
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my @results;
    for my $kid (@kids) {
        my ($pid, $r) = @$kid;
        local $/;
        my $json = <$r>;
        waitpid $pid, 0;
        push @results, @{ JSON::PP->new->decode($json || '[]') };
    }
    is scalar @results, scalar @jobs, 'every connection ran';
    my @bad;
    for my $res (sort { $a->{conn} <=> $b->{conn} } @results) {
        my ($client, @kinds) = $jobs[ $res->{conn} ]->@*;
        my @want = map { $KIND{$_}{status} } @kinds;
        push @bad, "$client @kinds: got [@{ $res->{got} }] want [@want]"
            . ($res->{error} ? " ($res->{error})" : '')
            unless "@{ $res->{got} }" eq "@want";
    }
    ok !@bad, 'every response had the expected status' or diag join "\n", @bad;
    for my $job (@jobs) {
        my ($client, @kinds) = @$job;
        expect_kind(\%exp, $_) for @kinds;
    }
    return \%exp;
}

sub status_get ($s, $path) {
    my $res = $s->http(requests => [{ host => 'beta.test', path => $path }]);
    $res->{status} == 200 or die "GET $path: $res->{status}\n$res->{body}";
    return $res;
}

sub status_json ($s) {
    my $res = status_get($s, '/misdirect-status');
    my $j = eval { JSON::PP->new->utf8->decode($res->{body}) }
        or die "misdirect-status is no JSON: $@\n$res->{body}";
    $j->{_raw} = $res->{body};
    $j->{_type} = $res->{headers}{'content-type'};
    $j->{_cache} = $res->{headers}{'cache-control'};
    return $j;
}

# Vhost key => counters, for the vhosts the harness defines.
sub by_vhost ($s, $j) {
    my %port = ($s->tls_port => 'tls', $s->plain_port => 'plain');
    my %out;
    for my $v ($j->{vhosts}->@*) {
        my ($port) = ($v->{address} // '') =~ /^127\.0\.0\.1:(\d+)$/;
        my $key = $v->{main_server} ? 'main'
            : $port && $port{$port} ? "$port{$port}:$v->{server_name}"
            : "other:$v->{server_name}";
        die "two vhosts as $key" if $out{$key};
        $out{$key} = $v->{counters};
    }
    return \%out;
}

# Each finding and each refusal explained has one cause.  Which one
# depends on the request's place on its connection, which the retries of
# a busy run change, so the causes are held to their sum here (t/37 and
# t/41 hold each cause to its client).
sub causes_out ($counts, $what) {
    my $c = delete $counts->{causes} // {};
    my $sum = 0;
    $sum += $_ for values %$c;
    is $sum, $counts->{fired} + $counts->{mod_ssl_421}
        + $counts->{mod_ssl_400} + $counts->{mod_ssl_403}
        + $counts->{other_421}, "$what: one cause per finding or refusal";
}

sub check_counts ($s, $j, $exp, $what) {
    my $got = by_vhost($s, $j);
    causes_out($got->{$_}, "$what, $_") for sort keys %$got;
    # The totals keep their causes for check_auto; a copy is compared.
    my %totals = %{ $j->{totals} };
    causes_out(\%totals, "$what, totals");
    delete $_->{causes} for values %$exp;
    my %want = map { $_ => $exp->{$_} // zero_counts() } keys %$got;
    delete $_->{causes} for values %want;
    my @unknown = grep { !$got->{$_} } keys %$exp;
    ok !@unknown, "$what: every expected vhost is listed"
        or diag "missing: @unknown";
    is_deeply $got, \%want, "$what: per-vhost counters exact";
    my $sum = sum_counts(values %$exp);
    delete $sum->{causes};
    is_deeply \%totals, $sum, "$what: totals exact";
}

sub auto_lines ($s) {
    my $body = status_get($s, '/server-status?auto')->{body};
    my %auto;
    for my $line (split /\n/, $body) {
        $auto{$1} = $2 if $line =~ /^(Misdirect\S+): (\S+)$/;
    }
    return \%auto;
}

sub check_auto ($s, $totals, $started, $what) {
    my $auto = auto_lines($s);
    my %want = (MisdirectStarted => $started,
        map({ ("Misdirect$AUTO{$_}" => $totals->{$_}) } @STATS),
        (map { my $c = $_; map { ('Misdirect'
            . ($_ eq 'would_reject' ? 'WouldReject' : ucfirst($_)) . "_$c"
            => $totals->{checks}{$c}{$_}) } @OUTCOMES } @CHECKS),
        map { ("MisdirectCause_$_" => $totals->{causes}{$_}) }
            @CAUSES);
    is_deeply $auto, \%want, "$what: ?auto lines exact";
}

# Shared mappings of the parent: the segment is anonymous, so this is
# where a leak would show.
sub shared_maps ($pid) {
    open my $fh, '<', "/proc/$pid/maps" or die "/proc/$pid/maps: $!";
    return scalar grep { (split ' ')[1] =~ /s$/ } <$fh>;
}

sub dev_shm () {
    opendir my $d, '/dev/shm' or die "/dev/shm: $!";
    return join ' ', sort grep { !/^\.\.?$/ } readdir $d;
}

sub ipcs_m () {
    -x '/usr/bin/ipcs' or die "/usr/bin/ipcs not found: apt-get install "
        . "util-linux\n";
    my $out = `/usr/bin/ipcs -m`;
    $? == 0 or die "ipcs -m failed\n";
    return join "\n", sort grep { /^0x/ } split /\n/, $out;
}

sub pids_served ($s) {
    my %pids;
    open my $fh, '<', $s->root . '/logs/pid_log' or die "pid_log: $!";
    for my $line (<$fh>) {
        my ($pid, $path) = split ' ', $line;
        $pids{$pid} = 1 unless $path =~ /status/;
    }
    return scalar keys %pids;
}

my $WEIRD = qq{we"ird\\<b>&\x01\xc3\xa9\xe9.test};
my $weird_conf = $WEIRD =~ s/(["\\])/\\$1/gr;

# With $retire, children exit after a few connections: the mix is served
# by many processes, which all count into the one segment.
sub server ($mpm, $retire = 1) {
    return MisdirectTest->new(
        name => basename($0, '.t') . "-$mpm", mpm => $mpm,
        # The mix: the module's 421s and reports, mod_ssl's 421s and the
        # handler's, each explained.
        expect_log => [qw(MISDIRECT001 MISDIRECT002 AH02032 MISDIRECT006
            MISDIRECT007)],
        global => "LoadModule status_module $MODDIR/mod_status.so\n"
            . "CustomLog logs/pid_log \"%P %U\"\n"
            # A handler's 421, neither the module's nor mod_ssl's.
            . "Redirect 421 /gone421\n"
            . ($retire ? "MaxConnectionsPerChild 5\n" : ''),
        vhost => {
            'plain:beta.test' => <<~'EOF',
                Misdirect Off
                <Location /misdirect-status>
                    SetHandler misdirect-status
                </Location>
                <Location /server-status>
                    SetHandler server-status
                </Location>
                EOF
            'tls:b.wild.test' => 'MisdirectPolicy sni-host-mismatch report',
        },
        # Never addressed (its port is "*"), but listed: escaping.
        extra_vhosts => qq{<VirtualHost 127.0.0.1:*>\n}
            . qq{ServerName "$weird_conf"\n</VirtualHost>\n},
    );
}

# ---------------------------------------------------------------- tests

my $shm_before  = dev_shm();
my $ipcs_before = ipcs_m();

for my $mpm (qw(prefork worker event)) {
    subtest "$mpm: exact counts across processes and restarts" => sub {
        my $s = server($mpm);
        my $j0 = status_json($s);
        check_counts($s, $j0, {}, 'at start');
        is $j0->{_type}, 'application/json', 'Content-Type';
        is $j0->{_cache}, 'no-store', 'Cache-Control';
        like $j0->{started}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
            'started is ISO 8601';
        ok abs($j0->{started_epoch} - time) < 60, 'started_epoch is now';
        like $j0->{note}, qr/graceful/, 'lifetime documented in the output';

        my $exp = send_mix($s, $mpm, $ROUNDS, $CLIENTS);
        ok pids_served($s) >= 3, 'at least three processes served it'
            or diag 'pids: ' . pids_served($s);
        my $j1 = status_json($s);
        check_counts($s, $j1, $exp, 'after the mix');
        # Independent of expect_kind: module 421s for cert and scheme (and
        # cert on h2); mod_ssl 421s for ssl_cert, nosni_ssl, ssl421 (and
        # cert1, ssl421, wild_h2 on h2); handlers' 421s for other421 and
        # other421_plain (and other421_h2).
        is $j1->{totals}{rejected}, $ROUNDS * (has_h2($mpm) ? 3 : 2),
            'totals: rejected';
        is $j1->{totals}{mod_ssl_421}, $ROUNDS * (has_h2($mpm) ? 6 : 3),
            'totals: mod_ssl 421s';
        is $j1->{totals}{other_421}, $ROUNDS * (has_h2($mpm) ? 3 : 2),
            'totals: other 421s';
        check_auto($s, $j1->{totals}, $j1->{started_epoch}, 'after the mix');

        my ($total) = status_get($s, '/misdirect-status?text')->{body}
            =~ /^total\s+(.*)$/m;
        is_deeply [split ' ', $total // ''],
            [map { $j1->{totals}{$_} } @STATS], '?text total row';

        $s->graceful;
        my $j2 = status_json($s);
        check_counts($s, $j2, $exp, 'after graceful');
        is $j2->{started_epoch}, $j1->{started_epoch}, 'graceful: same start';
        ok $j2->{generation} > $j1->{generation}, 'graceful: new generation';

        my $more = send_mix($s, $mpm, 1, 2);
        my %sum = map { $_ => add_counts($exp->{$_} // zero_counts(),
            $more->{$_} // zero_counts()) } keys %$exp, keys %$more;
        $exp = \%sum;
        check_counts($s, status_json($s), $exp,
            'new children add to the kept counters');

        # More vhosts than the segment has room for: a new, larger segment
        # that keeps the counts, and the old one is gone.
        my $maps = shared_maps($s->pid);
        open my $fh, '>>', $s->conf_file or die $!;
        for my $n (1 .. 150) {
            print $fh "<VirtualHost 127.0.0.1:${\ $s->plain_port }>\n"
                . "ServerName grow$n.test\n"
                . 'DocumentRoot "' . $s->docroot('default.test') . "\"\n"
                . "</VirtualHost>\n";
        }
        close $fh;
        $s->graceful;
        my $j3 = status_json($s);
        check_counts($s, $j3, $exp, 'after graceful adding 150 vhosts');
        is $s->http(requests => [{ host => 'grow77.test' }])->{status}, 200,
            'a new vhost serves';
        $exp->{'plain:grow77.test'} = zero_counts();
        $exp->{'plain:grow77.test'}{checked} = 1;
        check_counts($s, status_json($s), $exp, 'a new vhost counts');
        is shared_maps($s->pid), $maps,
            'parent: no more shared mappings than before growing';

        $s->restart;
        my $j4 = status_json($s);
        check_counts($s, $j4, {}, 'after restart: all zero');
        ok $j4->{started_epoch} >= $j1->{started_epoch},
            'restart: started moves on';
        check_auto($s, $j4->{totals}, $j4->{started_epoch},
            'after restart');

        my $maps2 = shared_maps($s->pid);
        $s->graceful for 1 .. 2;
        $s->restart for 1 .. 2;
        $s->graceful;
        is shared_maps($s->pid), $maps2,
            'parent: shared mappings stable over 3 graceful, 2 restarts';
        $s->stop;
    };
}

subtest 'event: exact under concurrent load on one vhost' => sub {
    # No retiring children here: all at once, on long connections.
    my $s = server('event', 0);
    my ($clients, $conns, $per) = (8, 5, 50);
    my @kids;
    for my $n (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $ok = 0;
            for (1 .. $conns) {
                $ok += grep { $_ == 200 } run_conn($s, 'https',
                    ('accepted') x $per);
            }
            POSIX::_exit($ok == $conns * $per ? 0 : 1);
        }
        push @kids, $pid;
    }
    my $failed = grep { waitpid($_, 0); $? } @kids;
    is $failed, 0, 'every client got all its responses';
    my $exp = {};
    expect_kind($exp, 'accepted') for 1 .. $clients * $conns * $per;
    check_counts($s, status_json($s), $exp,
        $clients * $conns * $per . ' requests from ' . $clients
        . ' clients');
    $s->stop;
};

subtest 'escaping, formats, methods' => sub {
    my $s = server('event', 0);
    my $j = status_json($s);
    my ($w) = grep { ($_->{server_name} // '') =~ /^we"ird/ }
        $j->{vhosts}->@*;
    is $w->{server_name}, qq{we"ird\\<b>&\x01\x{e9}\x{e9}.test},
        'JSON: quote, backslash, control, UTF-8 and Latin-1 bytes';
    like $j->{_raw}, qr/"we\\"ird\\\\\\u003cb\\u003e\\u0026\\u0001/,
        'JSON: markup and control characters as \u escapes';
    like $w->{defined_in}, qr{/conf/httpd\.conf:\d+$}, 'defined_in file:line';
    is $w->{address}, '127.0.0.1:*', 'address';
    my ($main) = grep { $_->{main_server} } $j->{vhosts}->@*;
    is $main->{defined_in}, undef, 'main server: defined_in null';
    is $j->{vhosts}[0], $main, 'main server first';
    my @names = map { $_->{server_name} } $j->{vhosts}->@*;
    is_deeply [@names[1 .. 3]], [qw(default.test alpha.test beta.test)],
        'vhosts in configuration order';
    my %mode = map { ("$_->{server_name} $_->{address}" => $_->{mode}) }
        grep { !$_->{main_server} } $j->{vhosts}->@*;
    is $mode{'beta.test 127.0.0.1:' . $s->plain_port}, 'off',
        'mode of a Misdirect Off vhost';

    my $text = status_get($s, '/misdirect-status?text');
    like $text->{headers}{'content-type'}, qr{^text/plain}, '?text type';
    like $text->{body}, qr/^we\\"ird\\\\<b>&\\x01/m,
        '?text: control characters escaped';
    unlike $text->{body}, qr/\x01/, '?text: no raw control character';

    my $html = status_get($s, '/server-status?notable')->{body};
    like $html, qr/we\\&quot;ird\\\\&lt;b&gt;&amp;/, 'HTML escaped';
    unlike $html, qr/ird\\\\<b>/, 'no raw markup from a ServerName';
    like status_get($s, '/server-status')->{body},
        qr{<h2>Misdirected requests \(mod_misdirect\)</h2>}, 'HTML section';

    my $head = $s->http(requests => [{ host => 'beta.test',
        path => '/misdirect-status', method => 'HEAD' }]);
    is $head->{status}, 200, 'HEAD';
    my $post = $s->http(requests => [{ host => 'beta.test',
        path => '/misdirect-status', method => 'POST', body => 'x' }]);
    is $post->{status}, 405, 'POST: 405';
    like $post->{headers}{allow} // '', qr/GET/, 'Allow names GET';
    $s->stop;
};

subtest 'no section when the module is off everywhere' => sub {
    my $s = MisdirectTest->new(name => basename($0, '.t') . '-off',
        global => "LoadModule status_module $MODDIR/mod_status.so\n"
            . "Misdirect Off\n",
        vhost => { 'plain:beta.test' => "<Location /server-status>\n"
            . "SetHandler server-status\n</Location>" });
    my $auto = auto_lines($s);
    is_deeply $auto, {}, 'no Misdirect lines in ?auto';
    unlike status_get($s, '/server-status')->{body}, qr/mod_misdirect/,
        'no HTML section';
    $s->stop;
};

{
    # A <VirtualHost *:port> is one address to the administrator, though
    # httpd keeps it as two (IPv4 and IPv6): the counters name it once.
    my $s = MisdirectTest->new(name => 'status-star',
        vhost => { 'plain:beta.test' => "Misdirect Off\n"
            . "<Location /misdirect-status>\n"
            . "    SetHandler misdirect-status\n</Location>" },
        extra_vhosts => "<VirtualHost *:\@PLAIN_PORT\@>\n"
            . "    ServerName star.test\n</VirtualHost>\n");
    my ($star) = grep { $_->{server_name} eq 'star.test' }
        status_json($s)->{vhosts}->@*;
    is $star->{address}, '*:' . $s->plain_port,
        'a *:port vhost is named once, as written';
    $s->stop;
}

is dev_shm(), $shm_before, '/dev/shm as before';
is ipcs_m(), $ipcs_before, 'ipcs -m as before';

done_testing;
