# SetHandler misdirect-metrics: the counters in Prometheus' text format
# 0.0.4, or OpenMetrics 1.0 when Accept asks for it.  A known mix of
# requests (the module's 421, a reported and an allowed finding, mod_ssl's
# 421, 400 and 403, a handler's 421) must show as exactly these series:
# the aggregates always, per vhost none for the vhosts that had no
# finding, among 5,000; two identical vhosts told apart by their turn,
# which survives a graceful restart that moves their lines; promtool must
# accept the output; a real Prometheus server, scraping both formats over
# loopback, must return the same counts from its query API.
use v5.36;
use FindBin;
use lib "$FindBin::Bin/lib";
use Encode ();
use File::Temp ();
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use MisdirectTest;

my $PROMTOOL   = '/usr/bin/promtool';
my $PROMETHEUS = '/usr/bin/prometheus';
for ($PROMTOOL, $PROMETHEUS) {
    -x or die "$_ not found: apt-get install prometheus\n";
}

my $PREFIX = 'apache_misdirect_';
my @COUNTERS = map { "$PREFIX$_" } qw(checked_requests
    all_misdirected_requests all_refused_requests all_causes
    vhost_checked_requests misdirected_requests check_firings
    refused_requests causes);
my @ACTIONS = qw(reject report allow would-reject);
my @CAUSES = qw(no-sni pool-reuse browser-reuse sni-with-port
    client-override host-rewritten unknown-host other);
my @REFUSALS = (['421', 'module'], ['421', 'mod_ssl'], ['421', 'handler'],
    ['400', 'mod_ssl'], ['403', 'mod_ssl']);
my $PROM_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
my $OM_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
# What Prometheus 2.42 sends.
my $PROM_ACCEPT = 'application/openmetrics-text;version=1.0.0,'
    . 'application/openmetrics-text;version=0.0.1;q=0.75,'
    . 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
my $BULK = 5000;
my $PROM_DEADLINE = 20;    # seconds for Prometheus to show the counts

# ---------------------------------------------------------------- server

my $WEIRD = qq{we"ird\\<b>&\x01\xc3\xa9\xe9.test};    # bytes, as configured
my $weird_conf = $WEIRD =~ s/(["\\])/\\$1/gr;
# As a label value: UTF-8 (the Latin-1 byte \xe9 read as U+00E9), with
# backslash and double quote escaped.
my $WEIRD_LABEL = qq{we\\"ird\\\\<b>&\x01\xc3\xa9\xc3\xa9.test};
my $WEIRD_CHARS = qq{we"ird\\<b>&\x01\x{e9}\x{e9}.test};

sub vh ($name, $more = '') {
    return "<VirtualHost 127.0.0.1:\@PLAIN_PORT\@>\n    ServerName $name\n"
        . $more . "    DocumentRoot htdocs/default.test\n</VirtualHost>\n";
}

my $s = MisdirectTest->new(
    # No SNI: mod_ssl's 403.  A handler's 421.
    global => "SSLStrictSNIVHostCheck on\nRedirect 421 /gone421\n"
        # Which format each scrape asked for, and got.
        . qq{CustomLog logs/scrape_log "%U|%{User-Agent}i|%{Accept}i|}
        . qq{%{Content-Type}o" "expr=%{REQUEST_URI} =~ m#^/misdirect-m#"\n},
    vhost => {
        # Where Prometheus lands (its Host is an IP address): not checked,
        # so scrapes add nothing.  -004 forces the 0.0.4 format for the
        # second scrape job.
        'plain:default.test' => <<~'EOF',
            Misdirect Off
            <Location /misdirect-metrics>
                SetHandler misdirect-metrics
            </Location>
            <Location /misdirect-metrics-004>
                SetHandler misdirect-metrics
                RequestHeader set Accept "text/plain;version=0.0.4"
            </Location>
            <Location /misdirect-status>
                SetHandler misdirect-status
            </Location>
            EOF
        'tls:b.wild.test' => 'MisdirectPolicy sni-host-mismatch report',
    },
    extra_vhosts => vh(qq{"$weird_conf"}, "    ServerAlias weird.test\n")
        # The same name and address twice: told apart by their turn.
        . vh('dup.test', "    ServerAlias one.dup.test\n")
        . vh('dup.test', "    ServerAlias two.dup.test\n")
        . join('', map { vh("v$_.test") } 1 .. $BULK),
    # Every kind of answer (mod_ssl's 400 is AH02031), and the lint on
    # the dup.test twins.
    expect_log => [qw(MISDIRECT001 MISDIRECT002 MISDIRECT006 MISDIRECT007
        AH02031 AH02032), qr/^MISDIRECT012: Lint: on \S+ the name dup\.test /],
);
my ($TLS, $PLAIN) = ($s->tls_port, $s->plain_port);

sub metrics ($path = '/misdirect-metrics', @headers) {
    my $res = $s->http(requests => [{ host => 'default.test', path => $path,
        headers => \@headers }]);
    $res->{status} == 200 or die "GET $path: $res->{status}\n$res->{body}";
    return $res;
}

# Sample lines as "name{labels}" => value; dies on a line of neither kind.
sub samples ($body) {
    my %out;
    for my $line (split /\n/, $body) {
        next if $line =~ /^# (?:HELP|TYPE) \w+ \S/ || $line eq '# EOF';
        my ($key, $value) = $line =~ /^(\w+(?:\{.*\})?) (\d+)$/
            or die "not a sample line: $line\n";
        die "repeated series: $key\n" if exists $out{$key};
        $out{$key} = $value;
    }
    return \%out;
}

# Family names in order of TYPE lines, and the family each sample line is
# under; dies if a family is interleaved with another.
sub families ($body, $om) {
    my (@names, %type, %help, $current);
    for my $line (split /\n/, $body) {
        if ($line =~ /^# HELP (\w+) /) {
            $help{$1}++;
            next;
        }
        if ($line =~ /^# TYPE (\w+) (\w+)$/) {
            die "family $1 twice\n" if $type{$1};
            ($current, $type{$1}) = ($1, $2);
            push @names, $1;
            next;
        }
        next if $line eq '# EOF';
        my ($name) = $line =~ /^(\w+)/;
        my $family = $om && $type{ $name =~ s/_total$//r }
            ? $name =~ s/_total$//r : $name;
        die "sample $name outside its family ($current)\n"
            unless defined $current && $family eq $current;
    }
    return { names => \@names, type => \%type, help => \%help };
}

sub labels ($kind, $name, @more) {
    my $port = $kind eq 'tls' ? $TLS : $PLAIN;
    return join ',', qq{vhost="$name"}, qq{address="127.0.0.1:$port"}, @more;
}

# The line of the <VirtualHost> of the $nth vhost named $name.
sub vhost_line ($name, $nth) {
    open my $fh, '<', $s->conf_file or die $!;
    my ($at, $seen) = (0, 0);
    while (my $line = <$fh>) {
        $at = $. if $line =~ /^<VirtualHost /;
        return $at if $line =~ /^\s*ServerName \Q$name\E$/ && ++$seen == $nth;
    }
    die "no vhost $name #$nth\n";
}

# The series every scrape has, from the counts of all vhosts.
sub aggregate_series (%c) {
    my %out = ("${PREFIX}checked_requests_total" => $c{checked} // 0);
    for my $action (@ACTIONS) {
        $out{"${PREFIX}all_misdirected_requests_total{action=\"$action\"}"}
            = $c{$action} // 0;
    }
    for my $r (@REFUSALS) {
        $out{"${PREFIX}all_refused_requests_total{status=\"$r->[0]\","
            . "sender=\"$r->[1]\"}"} = $c{"$r->[0] $r->[1]"} // 0;
    }
    for my $cause (@CAUSES) {
        $out{"${PREFIX}all_causes_total{cause=\"$cause\"}"}
            = $c{causes}{$cause} // 0;
    }
    return %out;
}

# The series a vhost with findings has, from its counts.
sub vhost_series ($labels, %c) {
    my %out = ("${PREFIX}vhost_checked_requests_total{$labels}" =>
        $c{checked} // 0);
    for my $action (@ACTIONS) {
        $out{"${PREFIX}misdirected_requests_total{$labels,action=\"$action\"}"}
            = $c{$action} // 0;
    }
    for my $check (keys %{ $c{checks} // {} }) {
        for my $action (@ACTIONS) {
            $out{"${PREFIX}check_firings_total{$labels,check=\"$check\","
                . "action=\"$action\"}"} = $c{checks}{$check}{$action} // 0;
        }
    }
    for my $r (@REFUSALS) {
        $out{"${PREFIX}refused_requests_total{$labels,status=\"$r->[0]\","
            . "sender=\"$r->[1]\"}"} = $c{"$r->[0] $r->[1]"} // 0;
    }
    # Only the causes seen.
    for my $cause (keys %{ $c{causes} // {} }) {
        $out{"${PREFIX}causes_total{$labels,cause=\"$cause\"}"}
            = $c{causes}{$cause};
    }
    return %out;
}

# ---------------------------------------------------------------- the mix

subtest 'before any request: the aggregates only, whatever the number of vhosts'
=> sub {
    my $res = metrics();
    my $got = samples($res->{body});
    ok abs(delete($got->{"${PREFIX}start_time_seconds"}) - time) < 60,
        'start time is now';
    is_deeply $got, { aggregate_series() },
        'only the aggregates, at zero' or diag $res->{body};
    ok length $res->{body} < 4096, "small with $BULK vhosts ("
        . length($res->{body}) . ' bytes)';
};

# [client, sni, requests, statuses]: one connection each.  A 421 ends an
# HTTP/1.1 connection, so it comes last.
my @MIX = (
    # The module's own 421: mod_ssl serves it (same certificate files),
    # but the connection's certificate does not cover the host.
    [https => 'a.wild.test', [{ host => 'x.b.wild.test' }], [421]],
    [https => 'a.wild.test', [{ host => 'x.b.wild.test' }], [421]],
    # Reported (b.wild.test's policy for sni-host-mismatch).
    [https => 'a.wild.test', [({ host => 'b.wild.test' }) x 3],
        [200, 200, 200]],
    # Allowed (port-mismatch's default), two plain, a handler's 421.
    [https => 'alpha.test', [{ host => 'alpha.test:1' },
        { host => 'alpha.test' }, { host => 'alpha.test' },
        { host => 'alpha.test', path => '/gone421' }], [200, 200, 200, 421]],
    # mod_ssl's 421: other certificate files (not checked).
    [https => 'alpha.test', [{ host => 'beta.test' }], [421]],
    [https => 'alpha.test', [{ host => 'beta.test' }], [421]],
    # mod_ssl's 400 (SNI, no Host: the address's default vhost) and 403
    # (no SNI under SSLStrictSNIVHostCheck).
    [https => 'beta.test', [{ host => undef, proto => 'HTTP/1.0' }], [400]],
    [https => undef, [{ host => 'default.test' }], [403]],
    # Checked, nothing found: counted in the aggregate only.
    [https => 'shared1.test', [({ host => 'shared1.test' }) x 2],
        [200, 200]],
    [http => undef, [{ host => 'v17.test' }, { host => "v$BULK.test" }],
        [200, 200]],
    # Plain: alpha.test on a second address, the module's 421.
    [http => undef,
        [{ host => 'alpha.test', target => 'https://alpha.test/' }], [421]],
    # The duplicates with different counts, so that a swap would show.
    [http => undef, [{ host => 'weird.test:1' }, { host => 'one.dup.test:1' },
        ({ host => 'two.dup.test:1' }) x 2], [200, 200, 200, 200]],
);

for my $c (@MIX) {
    my ($client, $sni, $req, $want) = @$c;
    my @res = $client eq 'http' ? $s->http(requests => $req)
        : $s->https(sni => $sni, requests => $req);
    is "@{[ map { $_->{status} } @res ]}", "@$want",
        "$client " . ($sni // 'no SNI') . ': '
        . join(' ', map { $_->{host} // '(no Host)' } @$req);
}

my $DUP2 = 'dup="2"';
# The causes: a new connection for another host than its SNI is
# client-override, the reports' later requests on theirs pool-reuse,
# mod_ssl's 400 (no Host) unknown-host, its 403 (no SNI) no-sni, and the
# rest (port, scheme, a handler's 421 on the SNI's own vhost) other.
my %EXPECT = (
    aggregate_series(checked => 2 + 3 + 4 + 2 + 2 + 1 + 4, reject => 3,
        report => 3, allow => 5, '421 module' => 3, '421 mod_ssl' => 2,
        '421 handler' => 1, '400 mod_ssl' => 1, '403 mod_ssl' => 1,
        causes => { 'client-override' => 5, 'pool-reuse' => 2,
            other => 7, 'unknown-host' => 1, 'no-sni' => 1 }),
    vhost_series(labels(tls => 'default.test'), '400 mod_ssl' => 1,
        '403 mod_ssl' => 1,
        causes => { 'unknown-host' => 1, 'no-sni' => 1 }),
    vhost_series(labels(tls => 'alpha.test'), checked => 4, allow => 1,
        checks => { 'port-mismatch' => { allow => 1 } },
        '421 handler' => 1, causes => { other => 2 }),
    vhost_series(labels(tls => 'beta.test'), '421 mod_ssl' => 2,
        causes => { 'client-override' => 2 }),
    vhost_series(labels(tls => 'b.wild.test'), checked => 5, reject => 2,
        report => 3, checks => { 'cert-mismatch' => { reject => 2 },
            'sni-host-mismatch' => { report => 3 } }, '421 module' => 2,
        causes => { 'client-override' => 3, 'pool-reuse' => 2 }),
    vhost_series(labels(plain => 'alpha.test'), checked => 1, reject => 1,
        checks => { 'scheme-mismatch' => { reject => 1 } },
        '421 module' => 1, causes => { other => 1 }),
    vhost_series(labels(plain => $WEIRD_LABEL), checked => 1, allow => 1,
        checks => { 'port-mismatch' => { allow => 1 } },
        causes => { other => 1 }),
    vhost_series(labels(plain => 'dup.test'), checked => 1, allow => 1,
        checks => { 'port-mismatch' => { allow => 1 } },
        causes => { other => 1 }),
    vhost_series(labels(plain => 'dup.test', $DUP2), checked => 2,
        allow => 2, checks => { 'port-mismatch' => { allow => 2 } },
        causes => { other => 2 }),
);

# ---------------------------------------------------------------- 0.0.4

my $prom = metrics();
my $om = metrics('/misdirect-metrics', Accept => $PROM_ACCEPT);
my $START;

subtest 'text format 0.0.4: exactly the expected series' => sub {
    is $prom->{headers}{'content-type'}, $PROM_TYPE, 'Content-Type';
    is $prom->{headers}{'cache-control'}, 'no-store', 'Cache-Control';
    like $prom->{headers}{vary} // '', qr/\bAccept\b/, 'Vary: Accept';
    my $got = samples($prom->{body});
    $START = delete $got->{"${PREFIX}start_time_seconds"};
    is_deeply $got, \%EXPECT, 'every series and count'
        or diag $prom->{body};
    unlike $prom->{body}, qr/vhost="(?:v\d+|shared\d)\.test"/,
        'no series for vhosts without a finding';

    # The aggregates are the sums of the vhosts' series (no graceful
    # restart has removed a vhost here).
    my %sum;
    for my $key (keys %$got) {
        if ($key =~ /^\Q$PREFIX\Ecauses_total\{.*,(cause="[\w-]+")\}$/) {
            $sum{"${PREFIX}all_causes_total{$1}"} += $got->{$key};
            next;
        }
        my ($family, $more) = $key =~ /^\Q$PREFIX\E(misdirected|refused)
            _requests_total\{.*,(action="[\w-]+"|status="\d+",sender="\w+")\}$/x
            or next;
        $sum{"${PREFIX}all_${family}_requests_total{$more}"} += $got->{$key};
    }
    # A cause never seen is in no vhost's series, but in the aggregate, 0.
    $sum{$_} //= 0 for grep { /_all_causes_/ } keys %$got;
    is_deeply \%sum, { map { $_ => $got->{$_} } grep { /_all_/ } keys %$got },
        'aggregates: the sums of the vhosts\' series';
    ok length $prom->{body} < 20480, 'small: ' . length($prom->{body})
        . " bytes with $BULK vhosts";

    my $f = families($prom->{body}, 0);
    is_deeply $f->{names}, ["${PREFIX}start_time_seconds",
        map { "${_}_total" } @COUNTERS], 'families, once each, in order';
    is_deeply $f->{help}, { map { $_ => 1 } $f->{names}->@* },
        'one HELP per family';
    is $f->{type}{"${_}_total"}, 'counter', "$_ is a counter" for @COUNTERS;

    # Configuration order, and label escaping.
    my @order = map { /^${PREFIX}vhost_checked_requests_total\{(.*)\}/ }
        split /\n/, $prom->{body};
    is_deeply \@order, [labels(tls => 'default.test'),
        labels(tls => 'alpha.test'), labels(tls => 'beta.test'),
        labels(tls => 'b.wild.test'), labels(plain => 'alpha.test'),
        labels(plain => $WEIRD_LABEL), labels(plain => 'dup.test'),
        labels(plain => 'dup.test', $DUP2)], 'vhosts in configuration order';
    like $prom->{body}, qr/\{vhost="\Q$WEIRD_LABEL\E",/,
        'label value: quote and backslash escaped, Latin-1 byte as UTF-8';
    my $copy = $prom->{body};    # decode with a check consumes its input
    ok eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK); 1 },
        'all of it UTF-8';
    is metrics()->{body}, $prom->{body}, 'deterministic';

    # The JSON says the same (read by pattern: with 5,000 vhosts it is
    # too long for JSON::PP to be quick).
    my $json = metrics('/misdirect-status')->{body};
    my ($checked) = $json =~ /"totals": \{\s*"checked": (\d+),/;
    is $checked, $EXPECT{"${PREFIX}checked_requests_total"},
        'JSON totals agree on checked';
    my ($epoch) = $json =~ /"started_epoch": (\d+),/;
    is $epoch, $START, 'JSON agrees on the start time';
};

subtest 'promtool check metrics' => sub {
    my ($rc, $out) = promtool_check($prom->{body});
    is $rc, 0, '0.0.4: exit 0' or diag $out;
    is $out, '', '0.0.4: no complaint';

    # promtool 2.42 reads only the 0.0.4 format: OpenMetrics' family names
    # (no _total) look to it like HELP for other metrics.  Anything else
    # (exit 1 is a parse error) fails.
    ($rc, $out) = promtool_check($om->{body});
    is $rc, 3, 'OpenMetrics: lint findings only, no parse error';
    is_deeply [sort split /\n/, $out],
        [sort map { "${_}_total no help text" } @COUNTERS],
        'OpenMetrics: only the expected HELP-name findings' or diag $out;
};

# ---------------------------------------------------------------- OM

subtest 'OpenMetrics 1.0' => sub {
    is $om->{headers}{'content-type'}, $OM_TYPE, 'Content-Type';
    like $om->{headers}{vary} // '', qr/\bAccept\b/, 'Vary: Accept';
    like $om->{body}, qr/\n# EOF\n\z/, 'ends with # EOF';
    my $f = families($om->{body}, 1);
    is_deeply $f->{names}, ["${PREFIX}start_time_seconds", @COUNTERS],
        'counter families named without _total';
    is_deeply $f->{help}, { map { $_ => 1 } $f->{names}->@* },
        'HELP under the family name';
    is $f->{type}{$_}, 'counter', "$_ is a counter" for @COUNTERS;
    is $f->{type}{"${PREFIX}start_time_seconds"}, 'gauge', 'start: gauge';
    is_deeply samples($om->{body}), samples($prom->{body}),
        'samples (with _total) as in 0.0.4';

    # Prometheus' own OpenMetrics parser: backfilling wants timestamps.
    my $dir = File::Temp->newdir(DIR => MisdirectTest::tmp_root());
    my $file = "$dir/om.txt";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $om->{body} =~ s/^([^#\n].*)$/$1 1700000000/mgr;
    close $fh;
    my $blocks = "$dir/blocks";
    my $cmd = "$PROMTOOL tsdb create-blocks-from openmetrics $file $blocks";
    my $out = `$cmd 2>&1`;
    is $?, 0, 'promtool parses it as OpenMetrics' or diag $out;
    ok glob("$blocks/*/meta.json"), 'a block written where asked';
    my $n = scalar keys %{ samples($om->{body}) };
    like $out, qr/^\S+\s+\d+\s+\d+\s+\S+\s+$n\s+\d+\s+$n\s/m,
        "all $n samples read";

    for my $a ('application/openmetrics-text',
        'Application/OpenMetrics-Text; version=1.0.0',
        'text/plain;q=0.5, application/openmetrics-text;q=0.1') {
        is metrics('/misdirect-metrics', Accept => $a)->{headers}
            {'content-type'}, $OM_TYPE, "Accept: $a";
    }
    for my $a ('application/openmetrics-text;q=0',
        'application/openmetrics-text; q=0.000, text/plain',
        'application/openmetrics-textual', 'text/plain', '*/*') {
        is metrics('/misdirect-metrics', Accept => $a)->{headers}
            {'content-type'}, $PROM_TYPE, "Accept: $a: 0.0.4";
    }
};

subtest 'methods' => sub {
    my $head = $s->http(requests => [{ host => 'default.test',
        path => '/misdirect-metrics', method => 'HEAD' }]);
    is $head->{status}, 200, 'HEAD';
    is $head->{headers}{'content-type'}, $PROM_TYPE, 'HEAD: Content-Type';
    for my $m (qw(POST PUT DELETE OPTIONS)) {
        my $res = $s->http(requests => [{ host => 'default.test',
            path => '/misdirect-metrics', method => $m, body => 'x' }]);
        is $res->{status}, 405, "$m: 405";
        like $res->{headers}{allow} // '', qr/\bGET\b/, "$m: Allow names GET";
        my $json = $s->http(requests => [{ host => 'default.test',
            path => '/misdirect-status', method => $m, body => 'x' }]);
        is "$json->{status} " . ($json->{headers}{allow} // ''),
            "$res->{status} " . ($res->{headers}{allow} // ''),
            "$m: as misdirect-status answers";
    }
};

# ---------------------------------------------------------------- Prometheus

my ($prom_pid, $prom_dir);

# Stops it whatever happened: the subtest's end, a failure, a signal.
sub prom_stop () {
    return unless $prom_pid;
    kill 'TERM', $prom_pid;
    my $deadline = time + 10;
    sleep 0.05 while waitpid($prom_pid, POSIX::WNOHANG()) == 0
        && time < $deadline;
    if (kill 0, $prom_pid) {
        kill 'KILL', $prom_pid;
        waitpid $prom_pid, 0;
    }
    undef $prom_pid;
}

END {
    local ($?, $!);
    prom_stop();
}

sub promtool_check ($body) {
    my $in = File::Temp->new;
    print $in $body;
    close $in;
    my $out = `$PROMTOOL check metrics < $in 2>&1`;
    return ($? >> 8, $out);
}

sub free_port () {
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', Listen => 1)
        or die "bind 127.0.0.1:0: $!\n";
    return $sock->sockport;
}

sub prom_get ($port, $path) {
    # Connection: close, or the client waits to see whether it closes.
    my $res = eval { $s->http(port => $port,
        requests => [{ host => "127.0.0.1:$port", path => $path,
            headers => [Connection => 'close'] }]) };
    return $res && $res->{status} ? $res : undef;
}

sub uri_escape ($text) {
    return Encode::encode('UTF-8', $text)
        =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ger;
}

# Series name{label="value",...} (sorted, unescaped, characters) => value.
sub canonical_exposition ($body) {
    my %out;
    my $got = samples($body);
    for my $key (keys %$got) {
        my ($name, $labels) = $key =~ /^(\w+)(?:\{(.*)\})?$/;
        my %l;
        $labels //= '';
        while ($labels =~ /\G(\w+)="((?:[^"\\]|\\.)*)",?/gc) {
            my ($k, $v) = ($1, $2);
            $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
            $l{$k} = Encode::decode('UTF-8', $v);
        }
        $out{ canonical($name, \%l) } = $got->{$key};
    }
    return \%out;
}

sub canonical ($name, $l) {
    return $name . '{' . join(',', map { "$_=" . JSON::PP->new->canonical
        ->encode([$l->{$_}]) } sort keys %$l) . '}';
}

sub prom_query ($port, $query) {
    my $res = prom_get($port, '/api/v1/query?query=' . uri_escape($query))
        or return undef;
    my $j = eval { JSON::PP->new->utf8->decode($res->{body}) } or return;
    return $j->{status} eq 'success' ? $j->{data}{result} : undef;
}

sub prom_series ($port, $job) {
    my $result = prom_query($port,
        qq({__name__=~"${PREFIX}.+",job="$job"})) or return {};
    my %out;
    for my $r (@$result) {
        my %l = $r->{metric}->%*;
        my $name = delete $l{__name__};
        delete @l{qw(job instance)};
        $out{ canonical($name, \%l) } = $r->{value}[1];
    }
    return \%out;
}

subtest 'a real Prometheus scrapes both formats' => sub {
    $prom_dir = File::Temp->newdir(DIR => MisdirectTest::tmp_root());
    my $config = "$prom_dir/prometheus.yml";
    # Two static loopback targets; no rule files, alerting, remote write or
    # service discovery, so it reaches nothing else.
    open my $fh, '>', $config or die "$config: $!";
    print $fh <<~"EOF";
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: openmetrics
            metrics_path: /misdirect-metrics
            static_configs:
              - targets: ['127.0.0.1:$PLAIN']
          - job_name: text004
            metrics_path: /misdirect-metrics-004
            static_configs:
              - targets: ['127.0.0.1:$PLAIN']
        EOF
    close $fh;
    my ($port, $ready);
    for my $try (1 .. 3) {
        $port = free_port();
        $prom_pid = fork // die "fork: $!";
        if (!$prom_pid) {
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$prom_dir/prometheus.log";
            open STDERR, '>&', \*STDOUT;
            { exec $PROMETHEUS, "--config.file=$config",
                "--storage.tsdb.path=$prom_dir/data",
                "--web.listen-address=127.0.0.1:$port" }
            POSIX::_exit(127);    # no END: the servers are the parent's
        }
        my $deadline = time + $PROM_DEADLINE;
        while (time < $deadline) {
            last if waitpid($prom_pid, POSIX::WNOHANG()) == $prom_pid;
            my $res = prom_get($port, '/-/ready');
            $ready = 1, last if $res && $res->{status} == 200;
            sleep 0.1;
        }
        last if $ready;
        undef $prom_pid;    # exited (the port taken?): try another
    }
    ok $ready, "Prometheus ready on 127.0.0.1:$port" or do {
        diag `cat $prom_dir/prometheus.log`;
        return;
    };

    # What Prometheus stores must be what the test sent: the exposition
    # less the start time, which is a timestamp, checked on its own.
    my $want = canonical_exposition($prom->{body});
    my $start = delete $want->{ canonical("${PREFIX}start_time_seconds",
        {}) };
    my %got;
    my $deadline = time + $PROM_DEADLINE;
    while (time < $deadline) {
        %got = map { $_ => prom_series($port, $_) } qw(openmetrics text004);
        last if !grep { !is_deeply_quiet($got{$_}, { %$want,
            canonical("${PREFIX}start_time_seconds", {}) => $start }) }
            keys %got;
        sleep 0.25;
    }
    for my $job (qw(openmetrics text004)) {
        my $up = prom_query($port, qq(up{job="$job"})) // [];
        is $up->[0]{value}[1], '1', "$job: up";
        my $got = $got{$job};
        is delete $got->{ canonical("${PREFIX}start_time_seconds", {}) },
            $start, "$job: start time";
        is_deeply $got, $want, "$job: every series and count, as sent";
    }
    my $by_sender = prom_query($port, qq{sum by (sender) (${PREFIX}}
        . qq{refused_requests_total{job="openmetrics",status="421"})}) // [];
    is_deeply { map { $_->{metric}{sender} => $_->{value}[1] } @$by_sender },
        { module => 3, mod_ssl => 2, handler => 1 },
        'PromQL: 421s by sender';
    my $all = prom_query($port, qq{sum by (sender) (${PREFIX}}
        . qq{all_refused_requests_total{job="openmetrics",status="421"})})
        // [];
    is_deeply { map { $_->{metric}{sender} => $_->{value}[1] } @$all },
        { module => 3, mod_ssl => 2, handler => 1 },
        'PromQL: the aggregate says the same';
    my $weird = prom_query($port, qq(${PREFIX}vhost_checked_requests_total)
        . qq({job="text004",vhost=~"we.*"})) // [];
    is $weird->[0]{metric}{vhost}, $WEIRD_CHARS,
        'the escaped ServerName arrives intact';
    # Loopback (IPv4, IPv6, IPv4-mapped) or none (a listening socket).
    my @peers = peers($prom_pid);
    ok @peers, 'Prometheus has sockets: ' . scalar @peers;
    my @away = grep { !/^(?:0100007F|0{8}|0{32}|0{24}01000000
        |0{16}FFFF00000100007F):/xi } @peers;
    ok !@away, 'Prometheus talks to loopback only' or diag "@away";
    my $log = `cat $prom_dir/prometheus.log`;
    unlike $log, qr/level=(?:warn|error)/,
        'Prometheus logged no warning (a rejected sample would show)'
        or diag $log;
    prom_stop();

    # Prometheus asked for OpenMetrics and got it; the -004 location made
    # its Accept ask for the 0.0.4 format.  (mod_log_config logs the
    # Content-Type without its parameters.)
    my %seen;
    open my $scrapes, '<', $s->root . '/logs/scrape_log'
        or die "scrape_log: $!";
    while (my $line = <$scrapes>) {
        chomp $line;
        my ($path, $agent, $accept, $type) = split /\|/, $line;
        $seen{"$path $type"}++ if $agent =~ m{^Prometheus/}
            && ($path eq '/misdirect-metrics'
                ? $accept =~ m{^application/openmetrics-text}
                : $accept eq 'text/plain;version=0.0.4');
    }
    ok $seen{'/misdirect-metrics application/openmetrics-text'},
        'Prometheus asked for OpenMetrics and got it';
    ok $seen{'/misdirect-metrics-004 text/plain'},
        'the other job got the 0.0.4 format';
    is scalar keys %seen, 2, 'no scrape got anything else'
        or diag join "\n", keys %seen;
};

# ---------------------------------------------------------------- restart

# The second of two identical vhosts shares name and address with the
# first: its series is named by its turn, as its slot is keyed, so lines
# added above both rename nothing and its counts stay its own.
subtest 'graceful restart with lines moved: the same series' => sub {
    my $line = vhost_line('dup.test', 2);
    my $file = $s->conf_file;
    open my $in, '<', $file or die "$file: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    my $above = "# moved down\n" x 3
        . vh('inserted.test') =~ s/\@PLAIN_PORT\@/$PLAIN/r;
    $conf =~ s/^(?=<VirtualHost [^\n]*>\n\s*ServerName dup\.test\n)/$above/m
        or die "no dup.test vhost in $file\n";
    open my $out, '>', $file or die "$file: $!";
    print $out $conf;
    close $out;
    $s->graceful;
    isnt vhost_line('dup.test', 2), $line, 'the duplicate moved down';
    my $after = metrics();
    is $after->{body}, $prom->{body}, 'every series, label and count kept'
        or diag $after->{body};
};

# The peer address of every TCP and UDP socket a process holds, as
# /proc/net shows it (hex, with the port).
sub peers ($pid) {
    my %inode;
    opendir my $d, "/proc/$pid/fd" or return;
    for my $fd (readdir $d) {
        my $link = readlink "/proc/$pid/fd/$fd" // next;
        $inode{$1} = 1 if $link =~ /^socket:\[(\d+)\]$/;
    }
    my @peers;
    for my $table (qw(tcp tcp6 udp udp6)) {
        open my $fh, '<', "/proc/net/$table" or next;
        <$fh>;
        while (my $line = <$fh>) {
            my @f = split ' ', $line;
            push @peers, $f[2] if $inode{ $f[9] };
        }
    }
    return @peers;
}

sub is_deeply_quiet ($a, $b) {
    return JSON::PP->new->canonical->encode($a)
        eq JSON::PP->new->canonical->encode($b);
}

$s->stop;
done_testing;
