#!/usr/bin/perl
# `make demo`: shows what mod_misdirect does, against a real httpd.
#
# Starts Apache httpd on loopback ports through the test harness
# (t/lib/MisdirectTest.pm: name-based TLS virtual hosts with certificates
# made on the spot), then walks through six short scenes.  Each prints what
# the client sent (SNI, Host or :authority, protocol), the status it got and
# the error_log lines mod_misdirect wrote about it.  The servers are stopped
# at the end and nothing is left running.
#
# Exit status: 0 when every scene got the statuses (and explanations) it
# expects, 1 otherwise, with what differed.  Needs: apache2, openssl, curl,
# libio-socket-ssl-perl, libjson-pp-perl (the Makefile's deps-demo).
use v5.36;
use FindBin ();
use lib "$FindBin::Bin/../lib";
use Cwd qw(abs_path);
use POSIX ();
use Time::HiRes qw(sleep time);
use MisdirectTest;
use MisdirectCase qw(raw_tls);

my $REPO     = abs_path("$FindBin::Bin/../..");
my $WIDTH    = 100;     # output columns
my $LABEL    = 14;      # columns of the label in front of details
my $DEADLINE = 60;      # seconds; the whole demo normally takes ~2
my $LOGLEVEL = 'warn misdirect:debug ssl:warn';
my $COLOR    = -t STDOUT && !exists $ENV{NO_COLOR}
    && ($ENV{TERM} // 'dumb') ne 'dumb';
my $IN_LOG   = 10;      # seconds to wait for an expected log line

$| = 1;
my $started = time;
my (@failures, @roots);
my $requests = 0;

# ------------------------------------------------------------- watchdog
# The harness and every client here have timeouts; this is the last
# resort.  TERM makes the harness's END stop the servers.
my $demo_pid = $$;
my $watchdog = fork // die "fork: $!\n";
if (!$watchdog) {
    open STDOUT, '>', '/dev/null';
    $SIG{TERM} = sub { POSIX::_exit(0) };
    sleep $DEADLINE;
    print STDERR "demo: still running after ${DEADLINE}s, stopping it\n";
    kill 'TERM', $demo_pid;
    POSIX::_exit(0);
}
END {
    local $?;    # waitpid must not change the exit status
    if ($watchdog && $$ == $demo_pid) {
        kill 'TERM', $watchdog;
        waitpid $watchdog, 0;
    }
}

# ------------------------------------------------------------- output

sub paint ($code, $text) { $COLOR ? "\e[${code}m$text\e[0m" : $text }

# Client text must not reach the terminal as control characters, even if
# the module under demonstration failed to escape it.
sub visible ($s) {
    my %name = ("\r" => '\r', "\n" => '\n', "\t" => '\t', "\e" => '\e');
    $s =~ s/([\x00-\x1f\x7f-\xff])/$name{$1} \/\/ sprintf '\\x%02x', ord $1/ge;
    return $s;
}

# Prints $text after $label, word-wrapped to $WIDTH; a token matching
# $break starts a new line.
sub show ($label, $text, $break = undef) {
    my $pad = ' ' x $LABEL;
    my $line = sprintf "   %-*s", $LABEL - 3, $label;
    my $fresh = 1;
    for my $word (split / /, $text) {
        if (!$fresh && (_len($line) + 1 + _len($word) > $WIDTH
                        || ($break && $word =~ $break))) {
            say $line =~ s/\s+$//r;
            $line = $pad;
            $fresh = 1;
        }
        $line .= ($fresh ? '' : ' ') . $word;
        $fresh = 0;
    }
    say $line =~ s/\s+$//r;
}

sub _len ($s) { length($s =~ s/\e\[[\d;]*m//gr) }

sub title ($text) { say ''; say paint('1', $text) }

my %REASON = (0 => 'no response', 200 => 'OK', 421 => 'Misdirected Request');

# Shows a status next to the expected one, then $what; returns true when
# they agree.
sub verdict ($label, $got, $want, $what = '') {
    my $ok = $got == $want;
    my $text = "$got " . ($REASON{$got} // '') . ' '
        . ($ok ? paint('32', '[as expected]')
               : paint('1;31', "[UNEXPECTED: wanted $want]"));
    show($label, $text . ($what ? " $what" : ''));
    return $ok;
}

# "(page of NAME)" for a 200: which vhost's page came back.
sub page ($status, $body) {
    return $status == 200 ? '(page of ' . visible($body =~ s/\s+$//r) . ')'
        : '';
}

sub fail ($scene, $what) {
    push @failures, "scene $scene: $what";
    show('', paint('1;31', "DIFFERS: $what"));
}

# ------------------------------------------------------------- logs

# The lines a scene produced that an administrator wants to read: the
# module's, and mod_ssl's own 421 line (AH02032) for comparison.
sub log_lines ($s, $mark) {
    return grep { /\[misdirect:|AH02032:/ && !/AH01882:/ }
        split /\n/, $s->error_log_since($mark);
}

# Waits until every regex matches a line logged since $mark.
sub wait_lines ($s, $mark, @re) {
    my $deadline = time + $IN_LOG;
    while (1) {
        my @lines = log_lines($s, $mark);
        my @missing = grep { my $re = $_; !grep { $_ =~ $re } @lines } @re;
        return @missing if !@missing || time >= $deadline;
        sleep 0.05;
    }
}

# A scene's log, shortened only where it is noise: no timestamp, pid or
# source position, and the demo's own paths relative.
sub show_log ($s, $mark, @expect) {
    my @missing = wait_lines($s, $mark, @expect);
    sleep 0.1 unless @expect;    # let anything unexpected arrive
    my @lines = log_lines($s, $mark);
    my $conf = $s->conf_file;
    for my $line (@lines) {
        $line =~ s/^\[[^\]]*\] //;
        $line =~ s/ \[pid [^\]]*\]//;
        $line =~ s/ [\w.]+\.c\(\d+\)://;
        $line =~ s/\Q$conf\E/httpd.conf/g;
        $line = rel($line);
        show('error_log', visible($line), qr/^(?:reason|hint)="/);
    }
    show('error_log', 'nothing from mod_misdirect') unless @lines;
    return @missing;
}

# ------------------------------------------------------------- servers

sub server (%opt) {
    my $s = eval { MisdirectTest->new(loglevel => $LOGLEVEL, %opt) };
    if (!$s) {
        (my $why = $@) =~ s/^.*AH01882:.*\n//mg;
        die "could not start httpd ($opt{name}):\n$why";
    }
    push @roots, $s->root;
    return $s;
}

# Paths under the checkout, relative to it.
sub rel ($text) { $text =~ s{(?<![\w/.-])\Q$REPO\E/}{}gr }

# ------------------------------------------------------------- scenes

sub scene1 ($s) {
    title('1. A normal request: the TLS name (SNI) and the Host header agree');
    show('request', 'HTTPS, HTTP/1.1, SNI alpha.test, Host: alpha.test');
    my $mark = $s->mark;
    my ($r) = $s->https(sni => 'alpha.test',
        requests => [{ host => 'alpha.test' }]);
    $requests++;
    verdict('response', $r->{status}, 200, page($r->{status}, $r->{body}))
        or fail(1, "status $r->{status}");
    my @lines = do { show_log($s, $mark); log_lines($s, $mark) };
    fail(1, 'mod_misdirect logged something about a normal request')
        if grep { /\[misdirect:/ } @lines;
}

sub scene2 ($s) {
    title('2. A reverse proxy that sends no SNI (nginx without '
        . 'proxy_ssl_server_name on)');
    show('request', 'HTTPS, HTTP/1.1, no SNI, Host: alpha.test  (so the '
        . 'handshake uses the first vhost, default.test, and its certificate)');
    my $mark = $s->mark;
    my ($r) = $s->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    $requests++;
    verdict('response', $r->{status}, 421, 'from mod_ssl (its '
        . 'SSLVHostSNIPolicy secure: default.test has another certificate); '
        . 'mod_misdirect explains it') or fail(2, "status $r->{status}");
    fail(2, "missing: $_") for show_log($s, $mark,
        qr/AH02032: Hostname default\.test \(default host as no SNI was provided\)/,
        qr/MISDIRECT006: mod_ssl answered 421: .* sni="\(none\)".* by="mod_ssl" hint="the client sent no SNI[^"]*proxy_ssl_server_name on/);

    say '';
    say '   The same proxy, declared a trusted gateway (docs/proxy.md: '
        . 'each choice and its risk).';
    say '   A second server, configured with';
    say '       SSLVHostSNIPolicy authonly     (server-wide: mod_ssl serves '
        . 'other certificates,';
    say '                                       still compares client-'
        . 'certificate settings)';
    say '       MisdirectTrustedProxy 127.0.0.1       (the proxy)';
    say '       MisdirectPolicy cert-mismatch reject  (everyone else)';
    my $p = server(name => 'demo-proxy',
        global => "SSLVHostSNIPolicy authonly\n"
            . "MisdirectTrustedProxy 127.0.0.1\n"
            . 'MisdirectPolicy cert-mismatch reject');
    show('request', 'HTTPS, HTTP/1.1, no SNI, Host: alpha.test, from '
        . '127.0.0.1 (the proxy)');
    $mark = $p->mark;
    ($r) = $p->https(sni => undef, requests => [{ host => 'alpha.test' }]);
    $requests++;
    verdict('response', $r->{status}, 200, page($r->{status}, $r->{body}))
        or fail(2, "trusted proxy: status $r->{status}");
    show_log($p, $mark);

    show('request', 'the same from 127.0.0.2 (any other client)');
    $mark = $p->mark;
    ($r) = $p->https(sni => undef, from => '127.0.0.2',
        requests => [{ host => 'alpha.test' }]);
    $requests++;
    verdict('response', $r->{status}, 421, 'from mod_misdirect '
        . '(cert-mismatch: reject)')
        or fail(2, "other client: status $r->{status}");
    fail(2, "missing: $_") for show_log($p, $mark,
        qr/MISDIRECT001: (?=.* reason="cert-mismatch")(?=.* client="127\.0\.0\.2:)/);
    $p->stop;
}

# One HTTP/2 connection (SNI shared1.test), one stream per name, as a
# browser that coalesces connections does.  curl sends a Host header given
# with -H as :authority, and reuses its connection across --next.
sub scene3 ($s) {
    title('3. A browser reuses one HTTP/2 connection for several names '
        . '(RFC 9113, 9.1.1)');
    my $port = $s->tls_port;
    my @streams = (
        [ 'shared1.test', 200, 'the name the connection is for' ],
        [ 'shared2.test', 200, 'same certificate and TLS settings' ],
        [ 'shared3.test', 421, 'same cert, SSLVerifyClient differs' ],
        [ 'beta.test',    421, 'other certificate: mod_ssl refuses' ],
    );
    show('request', 'HTTPS, HTTP/2, one connection with SNI shared1.test '
        . '(certificate for shared1/2/3.test); per stream, :authority:');
    my $url = "https://shared1.test:$port/";
    my @common = ('-sk', '--noproxy', '*', '--http2', '--max-time', '10',
        '--connect-to', '::127.0.0.1:',
        '-w', '\n@@demo %{http_code} %{num_connects} %{http_version}\n');
    my @args = map {
        ($_ ? '--next' : ()), @common, '-H', "Host: $streams[$_][0]", $url
    } 0 .. $#streams;
    my $mark = $s->mark;
    my ($rc, $out, $err) = $s->curl(@args);
    $requests += @streams;
    my @res;
    while ($out =~ /\G(.*?)\n\@\@demo (\d+) (\d+) (\S+)\n/gs) {
        push @res, { body => $1, status => 0 + $2, connects => $3,
            version => $4 };
    }
    my $connects = 0;
    $connects += $_->{connects} for @res;
    for my $i (0 .. $#streams) {
        my ($name, $want, $why) = $streams[$i]->@*;
        my $r = $res[$i] // { status => 0, body => '' };
        my $ok = $r->{status} == $want;
        my $st = "$r->{status} " . ($REASON{$r->{status}} // '') . ' '
            . ($ok ? paint('32', '[as expected]')
                   : paint('1;31', "[UNEXPECTED: wanted $want]"));
        $st .= ' ' x (37 - _len($st)) if _len($st) < 37;
        say sprintf '   %-10s %-13s %s %s', 'stream ' . (2 * $i + 1), $name,
            $st, $why;
        fail(3, "stream for $name: status $r->{status}") unless $ok;
    }
    fail(3, "curl failed (exit $rc): " . visible($err)) if $rc;
    fail(3, "curl used $connects connections, not 1, or not HTTP/2")
        if $connects != 1 || grep { $_->{version} ne '2' } @res;
    fail(3, "missing: $_") for show_log($s, $mark,
        qr/MISDIRECT006: (?=.* tls_differs="[^"]*SSLVerifyClient).* host="shared3\.test"/,
        qr/MISDIRECT006: .* reason="cert-mismatch".* host="beta\.test"/);
}

sub scene4 ($s) {
    title('4. A name nobody configured (its DNS points here by mistake)');
    show('request', 'HTTPS, HTTP/1.1, SNI www.shop-example.test, Host: '
        . 'www.shop-example.test');
    my $mark = $s->mark;
    my ($r) = $s->https(sni => 'www.shop-example.test',
        requests => [{ host => 'www.shop-example.test' }]);
    $requests++;
    verdict('response', $r->{status}, 200, page($r->{status}, $r->{body})
        . ': the default vhost answers; the finding is recorded')
        or fail(4, "status $r->{status}");
    my $acc = $s->wait_access_log(qr/shop-example/, $mark, $IN_LOG);
    if (defined $acc) {
        chomp $acc;
        show('access_log', visible($acc));
        my @f = split / /, $acc;
        my @names = qw(REASON ACTION CHECKS SNI HANDSHAKE_VHOST REQUEST_VHOST);
        show('', join ' ', map { "MISDIRECT_$names[$_]=$f[$_ + 2]" }
            0 .. $#names);
        fail(4, 'MISDIRECT_REASON is not unknown-host')
            unless ($f[2] // '') eq 'unknown-host';
    }
    else {
        fail(4, 'no access_log entry');
    }
    show_log($s, $mark);
}

sub scene5 ($s) {
    title('5. An https:// URL sent to the plain HTTP port');
    show('request', 'HTTP (no TLS), HTTP/1.1, GET https://alpha.test/, '
        . 'Host: alpha.test');
    my $mark = $s->mark;
    my ($r) = $s->http(requests => [{ host => 'alpha.test',
        target => 'https://alpha.test/' }]);
    $requests++;
    verdict('response', $r->{status}, 421) or fail(5, "status $r->{status}");
    fail(5, 'no MISDIRECT001 scheme-mismatch line') for show_log($s, $mark,
        qr/MISDIRECT001: .*reason="scheme-mismatch"/);
}

sub scene6 ($s) {
    title('6. A hostile client: SNI with quotes, a line break and terminal '
        . 'escape codes');
    my $sni = qq{evil.test" hint="all fine\r\nFORGED [misdirect:error] }
        . qq{\e[2J\e[31mred};
    show('request', 'HTTPS, HTTP/1.1, SNI "' . visible($sni)
        . '", Host: beta.test');
    my $mark = $s->mark;
    my ($st) = raw_tls($s, sni => $sni, request => "GET / HTTP/1.1\r\n"
        . "Host: beta.test\r\nConnection: close\r\n\r\n");
    $requests++;
    verdict('response', $st, 421, 'from mod_ssl (the SNI names no vhost, '
        . 'so the handshake used default.test)') or fail(6, "status $st");
    fail(6, 'no MISDIRECT006 line with the SNI escaped') for show_log($s,
        $mark, qr/MISDIRECT006: .* sni="evil\.test%22 hint=%22all fine%0d%0aFORGED /);
    my $log = $s->error_log_since($mark);
    fail(6, 'a forged line reached error_log') if $log =~ /^FORGED/m;
    fail(6, 'a control character reached error_log')
        if $log =~ /[\x00-\x09\x0b-\x1f\x7f]/;
}

# ------------------------------------------------------------- main

sub leftovers (@roots) {
    my @procs;
    if (-x '/usr/bin/pgrep') {
        @procs = split /\n/, `/usr/bin/pgrep -a -f '/demo-' 2>/dev/null`;
    }
    else {    # no procps: read /proc
        for my $dir (glob '/proc/[0-9]*') {
            open my $fh, '<', "$dir/cmdline" or next;
            my $cmd = join ' ', split /\0/, (<$fh> // '');
            push @procs, ($dir =~ s{/proc/}{}r) . " $cmd"
                if $cmd =~ m{/demo-};
        }
    }
    # Only this run's servers: another run may be going on.
    return grep { my $p = $_; $p =~ /apache2/ && grep { index($p, "$_ ") >= 0
        || index($p, "$_/") >= 0 } @roots } @procs;
}

my $s = eval { server(name => 'demo') };
if (!$s) {
    print STDERR "demo: $@";
    exit 1;
}
my ($version) = $s->error_log_since =~ /AH00489: (\S+)/;
say 'mod_misdirect demo: ' . ($version // 'Apache httpd') . ' on 127.0.0.1, '
    . 'TLS port ' . $s->tls_port . ', plain port ' . $s->plain_port;
show('TLS vhosts', 'default.test (first: used without SNI), alpha.test, '
    . 'beta.test, shared1/2/3.test (one certificate; shared3 requires a '
    . 'client certificate), a.wild.test, b.wild.test; plain vhosts '
    . 'default, alpha, beta');
show('logging', "LogLevel $LOGLEVEL.  error_log lines are shown without "
    . 'timestamp and pid; httpd.conf is ' . rel($s->conf_file));
my $lint = () = $s->error_log_since =~ /\[misdirect:warn\][^\n]*Lint:/g;
show('startup', "MisdirectLint warned $lint times about this deliberately "
    . 'imperfect layout (not shown)') if $lint;

my @scenes = (\&scene1, \&scene2, \&scene3, \&scene4, \&scene5, \&scene6);
for my $n (1 .. @scenes) {
    next if eval { $scenes[$n - 1]->($s); 1 };
    (my $why = $@) =~ s/\s+$//;
    fail($n, 'failed: ' . visible($why));
}

$s->stop;
my @left;
my $deadline = time + 5;    # children can outlive the parent briefly
while ((@left = leftovers(@roots)) && time < $deadline) { sleep 0.1 }
push @failures, 'still running: ' . join '; ', @left if @left;

say '';
my $secs = sprintf '%.1f', time - $started;
my $left = @left ? 'httpd processes remain'
    : 'httpd stopped, nothing left running';
if (@failures) {
    say paint('1;31', "demo FAILED: $_") for @failures;
    say "Summary: 6 scenes, $requests requests, ${secs}s: "
        . scalar(@failures) . " difference(s); $left; logs: "
        . rel($s->root) . '/logs/';
    exit 1;
}
say 'Summary: ' . paint('32', 'all 6 scenes as expected')
    . " ($requests requests, ${secs}s); $left; logs: "
    . rel($s->root) . '/logs/';
exit 0;
