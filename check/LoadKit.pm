package LoadKit;

# Clients and measurements shared by check/load.pl and check/restart.pl:
# h2load jobs whose every response is counted by status, raw TLS clients
# that misbehave on purpose, openssl s_client session resumption, and the
# memory and shared-memory figures of a running httpd.

use v5.36;
use Exporter 'import';
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use MisdirectCase ();
use POSIX qw(WNOHANG _exit);
use Socket qw(SOL_SOCKET SO_LINGER SO_RCVTIMEO SO_SNDTIMEO);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(h2load_start h2load_result fork_worker wait_workers
    read_results https_once abort_client resume_round children rss_kb
    shm_snapshot shared_maps crash_lines);

my $H2LOAD  = '/usr/bin/h2load';
my $OPENSSL = '/usr/bin/openssl';

# ---------------------------------------------------------------- h2load

# Starts h2load in the background; returns a job to pass to h2load_result.
# %o: name, port, sni, authority, n or duration, c, m, h1, dir.
sub h2load_start (%o) {
    -x $H2LOAD or die "$H2LOAD not found: apt-get install nghttp2-client\n";
    my $log = "$o{dir}/h2load-$o{name}.log";
    my $out = "$o{dir}/h2load-$o{name}.out";
    unlink $log, $out;
    my @cmd = ($H2LOAD, '-c', $o{c}, '-m', $o{m},
        ($o{duration} ? ('-D', $o{duration}) : ('-n', $o{n})),
        ($o{h1} ? '--h1' : ()), "--connect-to=127.0.0.1:$o{port}",
        "--log-file=$log", '-T', 30, '-N', 30,
        "https://$o{sni}:$o{port}/?k=$o{name}",
        ($o{authority} ? ('-H', ":authority: $o{authority}") : ()));
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        { exec @cmd }
        _exit(127);
    }
    return { %o, pid => $pid, log => $log, out => $out, cmd => "@cmd" };
}

# Waits for the job; returns { status => {code => count}, done, failed,
# errored, timeout, total, rc, text }.  h2load's log has one line per
# response received: start time, status, duration.
sub h2load_result ($job) {
    waitpid $job->{pid}, 0;
    my $rc = $? >> 8;
    my %r = (rc => $rc, status => {});
    if (open my $fh, '<', $job->{log}) {
        while (my $line = <$fh>) {
            my (undef, $status) = split /\t/, $line;
            $r{status}{$status}++ if defined $status;
        }
    }
    my $text = '';
    if (open my $fh, '<', $job->{out}) { local $/; $text = <$fh> // '' }
    @r{qw(total started done succeeded failed errored timeout)} =
        $text =~ /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/;
    $r{text} = $text;
    ($r{rps}) = $text =~ /finished in .*?, ([\d.]+) req\/s/;
    return \%r;
}

# ---------------------------------------------------------------- workers

# Forks a worker that runs $code->($out_fh) and writes one result per
# line ("tag outcome") to $file.
sub fork_worker ($file, $code) {
    my $pid = fork // die "fork: $!\n";
    return $pid if $pid;
    $SIG{PIPE} = 'IGNORE';
    open my $out, '>', $file or _exit(2);
    $out->autoflush(1);
    eval { $code->($out); 1 } or print $out "worker-died ERR:$@";
    close $out;
    _exit(0);    # no END blocks: they would stop the parent's servers
}

sub wait_workers (@pids) {
    waitpid $_, 0 for @pids;
}

# tag => { outcome => count } from the workers' files.
sub read_results (@files) {
    my %r;
    for my $f (@files) {
        open my $fh, '<', $f or next;
        while (my $line = <$fh>) {
            chomp $line;
            my ($tag, $outcome) = split / /, $line, 2;
            $r{$tag}{$outcome // ''}++;
        }
    }
    return \%r;
}

# ---------------------------------------------------------------- HTTP/1.1

sub _tls ($port, $sni, $timeout = 10) {
    my $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Timeout => $timeout,
        SSL_hostname => $sni // '', SSL_verify_mode => SSL_VERIFY_NONE,
        SSL_alpn_protocols => ['http/1.1']) or return;
    my $tv = pack 'l!l!', $timeout, 0;
    setsockopt $sock, SOL_SOCKET, SO_RCVTIMEO, $tv;
    setsockopt $sock, SOL_SOCKET, SO_SNDTIMEO, $tv;
    return $sock;
}

# Reads one response: (status, connection closed after it?, error).
sub _read_response ($sock) {
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread $sock, $buf, 16384, length $buf;
        return (0, 1, length $buf ? 'truncated' : 'closed') unless $n;
    }
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})} or return (0, 1, 'bad');
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $close = $head =~ /^Connection:.*\bclose\b/mi ? 1 : 0;
    if ($head =~ /^Transfer-Encoding:.*chunked/mi) {
        until ($body =~ /(?:^|\r\n)0\r\n\r\n/) {
            my $n = sysread $sock, $body, 16384, length $body;
            return ($status, 1, 'truncated') unless $n;
        }
    }
    else {
        $len //= 0;
        while (length $body < $len) {
            my $n = sysread $sock, $body, 16384, length $body;
            return ($status, 1, 'truncated') unless $n;
        }
    }
    return ($status, $close, undef);
}

# One TLS connection, the requests [host, tag] in turn; returns the list
# of (status-or-ERR, closed_after) per request.  After a response that
# said "Connection: close" the server must end the connection: checked.
sub https_once ($port, $sni, @reqs) {
    my $sock = _tls($port, $sni) or return map { ['ERR:connect', 1] } @reqs;
    my @out;
    for my $r (@reqs) {
        my ($host, $tag) = @$r;
        my $ok = syswrite $sock, "GET /?k=$tag HTTP/1.1\r\nHost: $host\r\n"
            . "Connection: keep-alive\r\n\r\n";
        my ($status, $close, $err) = $ok ? _read_response($sock)
                                         : (0, 1, 'write');
        if ($err) {
            push @out, ["ERR:$err", 1];
            last;
        }
        if ($close) {
            # Promised close: the next read must see the end.
            my $n = sysread $sock, my $junk, 1;
            push @out, [$n ? "$status+notclosed" : $status, 1];
            last;
        }
        push @out, [$status, 0];
    }
    close $sock;
    return @out;
}

# ---------------------------------------------------------------- faults

# One misbehaving connection of the given kind; returns what it did.
sub abort_client ($kind, $tls_port, $plain_port) {
    my $rst = sub ($s) { setsockopt $s, SOL_SOCKET, SO_LINGER, pack 'ii', 1, 0 };
    my $tcp = sub ($port) {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
            Proto => 'tcp', Timeout => 5);
    };
    if ($kind eq 'tcp-close') {            # connect, say nothing, leave
        my $s = $tcp->($tls_port) or return 'ERR:connect';
        close $s;
    }
    elsif ($kind eq 'tcp-rst') {
        my $s = $tcp->($tls_port) or return 'ERR:connect';
        $rst->($s);
        close $s;
    }
    elsif ($kind eq 'hello-half') {        # half a ClientHello, then FIN
        my $s = $tcp->($tls_port) or return 'ERR:connect';
        syswrite $s, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
            . join('', map { chr int rand 256 } 1 .. 20);
        close $s;
    }
    elsif ($kind eq 'hello-rst') {         # whole ClientHello, then RST
        my $s = $tcp->($tls_port) or return 'ERR:connect';
        IO::Socket::SSL->start_SSL($s, SSL_hostname => 'alpha.test',
            SSL_verify_mode => SSL_VERIFY_NONE, SSL_startHandshake => 0);
        $s->blocking(0);
        $s->connect_SSL;                   # sends the ClientHello
        sleep 0.001 * int rand 20;
        $rst->($s);
        close $s;
    }
    elsif ($kind eq 'garbage') {           # no TLS at all
        my $s = $tcp->($tls_port) or return 'ERR:connect';
        syswrite $s, "GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n";
        sysread $s, my $junk, 4096;
        close $s;
    }
    elsif ($kind eq 'request-half') {      # TLS up, half a request line
        my $s = _tls($tls_port, 'alpha.test') or return 'ERR:connect';
        syswrite $s, "GET /?k=abort HTTP/1.1\r\nHost: alp";
        close $s;
    }
    elsif ($kind eq 'request-rst') {       # headers of a misdirected one
        my $s = _tls($tls_port, 'alpha.test') or return 'ERR:connect';
        syswrite $s, "GET /?k=abort HTTP/1.1\r\nHost: beta.test\r\n";
        $rst->($s);
        close $s;
    }
    elsif ($kind eq 'body-half') {         # body promised, half sent
        my $s = _tls($tls_port, 'alpha.test') or return 'ERR:connect';
        syswrite $s, "POST /?k=abort HTTP/1.1\r\nHost: beta.test\r\n"
            . "Content-Length: 1000\r\n\r\n" . ('x' x 100);
        $rst->($s);
        close $s;
    }
    elsif ($kind eq 'h2-half') {           # h2 preface, half a HEADERS
        my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1',
            PeerPort => $tls_port, Timeout => 5,
            SSL_hostname => 'alpha.test', SSL_verify_mode => SSL_VERIFY_NONE,
            SSL_alpn_protocols => ['h2'])
            # No h2 under prefork: the handshake fails, which aborts too.
            or return 'done';
        syswrite $s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            . "\x00\x00\x00\x04\x00\x00\x00\x00\x00"          # SETTINGS
            . "\x00\x00\x64\x01\x05\x00\x00\x00\x01" . "\x82\x87\x84";
        $rst->($s) if rand() < 0.5;
        close $s;
    }
    elsif ($kind eq 'plain-half') {        # plain port, half a request
        my $s = $tcp->($plain_port) or return 'ERR:connect';
        syswrite $s, "GET /?k=abort HTTP/1.1\r\nHost: beta";
        $rst->($s) if rand() < 0.5;
        close $s;
    }
    else {
        die "abort_client: unknown kind $kind\n";
    }
    return 'done';
}

# ---------------------------------------------------------------- resumption

# openssl s_client once: (status, resumed?) for one request.
sub _s_client ($port, $sni, $host, $tag, @sess) {
    my ($status, $text) = MisdirectCase::raw_tls(undef, port => $port,
        sni => $sni, quiet => 0, timeout => 15, extra => ['-tls1_3', @sess],
        request => "GET /?k=$tag HTTP/1.1\r\nHost: $host\r\n"
            . "Connection: close\r\n\r\n");
    my $resumed = $text =~ /^Reused, TLSv1\.3/m ? 1 : 0;
    return ($status || 'ERR:none', $resumed);
}

# A TLS 1.3 session made under SNI shared1.test, resumed under
# shared2.test (which shares its certificate and TLS settings) and under
# shared1.test again.  Returns [tag, expected status, got, resumed] each.
sub resume_round ($port, $dir) {
    my $sess = "$dir/sess.$$." . int rand 1e9;
    my @r;
    my ($st) = _s_client($port, 'shared1.test', 'shared1.test', 'res-new',
        '-sess_out', $sess);
    push @r, ['res-new', 200, $st, 0];
    for my $case (
        # [sni, host, tag, expected]
        ['shared2.test', 'shared2.test', 'res-other-sni', 200],
        ['shared2.test', 'shared1.test', 'res-other-sni-coalesced', 200],
        ['shared2.test', 'alpha.test',   'res-other-sni-misdirected', 421],
        ['shared1.test', 'shared2.test', 'res-same-sni-coalesced', 200],
    ) {
        my ($sni, $host, $tag, $want) = @$case;
        my ($got, $resumed) = -s $sess
            ? _s_client($port, $sni, $host, $tag, '-sess_in', $sess)
            : ('ERR:nosession', 0);
        push @r, [$tag, $want, $got, $resumed];
    }
    unlink $sess;
    return @r;
}

# ---------------------------------------------------------------- figures

# The children of httpd's parent process.
sub children ($ppid) {
    my @kids;
    opendir my $dh, '/proc' or return;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // next;
        my ($pp) = $stat =~ /^\d+ \(.*\) \S (\d+)/ or next;
        push @kids, $pid if $pp == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

sub rss_kb ($pid) {
    open my $fh, '<', "/proc/$pid/status" or return;
    while (my $line = <$fh>) { return $1 if $line =~ /^VmRSS:\s+(\d+) kB/ }
    return;
}

# SysV segments (id => creator pid) and /dev/shm entries.
sub shm_snapshot () {
    my (%sysv, %files);
    for my $line (`ipcs -m -p 2>/dev/null`) {
        $sysv{$1} = $2 if $line =~ /^\s*(\d+)\s+\S+\s+(\d+)\s+\d+\s*$/;
    }
    if (opendir my $dh, '/dev/shm') {
        $files{$_} = 1 for grep { !/^\.\.?$/ } readdir $dh;
    }
    return { sysv => \%sysv, files => \%files };
}

# The shared mappings of a process: what a segment leaked by a restart
# would add to, in the parent that survives every restart.
sub shared_maps ($pid) {
    open my $fh, '<', "/proc/$pid/maps" or return;
    my @m;
    while (my $line = <$fh>) {
        my ($perm, $inode, $path) = (split ' ', $line, 6)[1, 4, 5];
        next unless $perm =~ /s/;
        chomp($path //= '');
        push @m, "$inode $path";
    }
    return @m;
}

sub crash_lines ($text) {
    return grep { /exit signal|Segmentation fault|seg fault|AH00052|AH00060/i }
        split /\n/, $text;
}

1;
