package ClientsKit;

# What check/clients.pl needs around the real clients: configuration
# templates, proxies run as its own children on loopback ports, headless
# Chromium and Firefox with a private trust store and resolver, and the
# backend's logs read per run.  Nothing here touches the system's
# configuration: every client gets its own directory, HOME and profile.

use v5.36;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp ();
use IO::Socket::INET;
use JSON::PP ();
use MisdirectCase qw(fields);
use POSIX qw(WNOHANG _exit setpgid);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(fill write_file read_file spawn stop wait_port
    listeners run_cmd http_get chromium_load firefox_load access_rows
    diag_lines accounted);

my $CERTUTIL = '/usr/bin/certutil';
my $START_TIMEOUT = 20;    # seconds; Traffic Server and Firefox are slow
my $STOP_TIMEOUT  = 10;

# ---------------------------------------------------------------- files

# The template $in with each @NAME@ replaced by $vars->{NAME}, written to
# $out.  A field left over is a mistake in the case table, not a value.
sub fill ($in, $out, $vars) {
    my $text = read_file($in);
    $text =~ s/\@([A-Z][A-Z0-9_]*)\@/
        exists $vars->{$1} ? $vars->{$1} : die "$in: no value for \@$1\@\n"/ge;
    write_file($out, $text);
    return $text;
}

sub write_file ($file, $text) {
    make_path(dirname($file));
    open my $fh, '>:raw', $file or die "write $file: $!\n";
    print $fh $text;
    close $fh or die "close $file: $!\n";
}

sub read_file ($file, $offset = 0) {
    open my $fh, '<:raw', $file or return '';
    seek $fh, $offset, 0;
    local $/;
    return scalar(<$fh>) // '';
}

# ---------------------------------------------------------------- processes

my %LIVE;    # pid => name, for END

END {
    local ($?, $!, $@);
    stop($_) for keys %LIVE;
}

# Starts @cmd in the foreground as our child, in a process group of its
# own (browsers fork helpers; the group ends with it), output to $log.
# %env is added to the environment.  Returns the pid.
sub spawn ($name, $log, $env, @cmd) {
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        setpgid(0, 0);
        @ENV{ keys %$env } = values %$env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or _exit(126);
        open STDERR, '>&', \*STDOUT;
        { exec { $cmd[0] } @cmd }
        print STDERR "exec $cmd[0]: $!\n";
        _exit(127);
    }
    $LIVE{$pid} = $name;
    return $pid;
}

# Ends a child started by spawn: TERM to its group, KILL after a while.
sub stop ($pid) {
    return unless delete $LIVE{$pid};
    kill 'TERM', -$pid;
    my $deadline = time + $STOP_TIMEOUT;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) {
            kill 'KILL', -$pid;
            waitpid $pid, 0;
            last;
        }
        sleep 0.05;
    }
    kill 'KILL', -$pid;    # helpers that outlived their leader
}

sub alive ($pid) { waitpid($pid, WNOHANG) == 0 }

# Waits until 127.0.0.1:$port accepts; dies with the log's tail when the
# child exits first or the time is up.
sub wait_port ($port, $pid, $log, $timeout = $START_TIMEOUT) {
    my $deadline = time + $timeout;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp', Timeout => 1)) {
        my $why = !alive($pid) ? 'exited' : time > $deadline
            ? "did not listen on $port in ${timeout}s" : '';
        if ($why) {
            my @lines = split /\n/, read_file($log);
            splice @lines, 0, -15 if @lines > 15;
            die "$LIVE{$pid} $why:\n" . join("\n", @lines) . "\n";
        }
        sleep 0.05;
    }
}

# The listening TCP sockets and the UDP sockets of $pid and its
# descendants, as "tcp address:port" and "udp address:port>peer:port" (the
# peer 0.0.0.0:0 while unconnected): a proxy must listen, and send, on
# loopback only.
sub listeners ($pid) {
    my %pids = ($pid => 1);
    my $grew = 1;
    while ($grew) {    # descendants, by parent pid
        $grew = 0;
        for my $stat (glob '/proc/[0-9]*/stat') {
            open my $fh, '<', $stat or next;
            my ($p, $ppid) = (<$fh> // '') =~ /^(\d+) \(.*\) \S+ (\d+)/s
                or next;
            $grew = $pids{$p} = 1 if $pids{$ppid} && !$pids{$p};
        }
    }
    my %inode;
    for my $p (keys %pids) {
        for my $fd (glob "/proc/$p/fd/*") {
            my $to = readlink $fd // next;
            $inode{$1} = 1 if $to =~ /^socket:\[(\d+)\]$/;
        }
    }
    my @out;
    for my $proto (qw(tcp tcp6 udp udp6)) {
        open my $fh, '<', "/proc/net/$proto" or next;
        <$fh>;
        while (my $line = <$fh>) {
            my @f = split ' ', $line;
            next unless $inode{ $f[9] };
            next if $proto =~ /^tcp/ && $f[3] ne '0A';    # LISTEN only
            push @out, "$proto " . _addr($f[1])
                . ($proto =~ /^udp/ ? '>' . _addr($f[2]) : '');
        }
    }
    return @out;
}

# /proc/net's hex "address:port" as text; 127.x.x.x and ::1 read as such.
sub _addr ($hex) {
    my ($a, $p) = split /:/, $hex;
    my $port = hex $p;
    if (length $a == 8) {
        return join('.', reverse map { hex } $a =~ /(..)/g) . ":$port";
    }
    my $ip = join ':', map { join '', reverse /(..)/g }
        map { join '', reverse /(..)/g } $a =~ /(.{8})/g;
    return "[$ip]:$port";
}

# Runs a short command; returns (exit status, output).  $input goes to
# its standard input.
sub run_cmd ($input, $env, @cmd) {
    my ($in, $out) = map { File::Temp->new } 1 .. 2;
    print {$in} $input // '';
    close $in;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        @ENV{ keys %$env } = values %$env;
        open STDIN, '<', "$in";
        open STDOUT, '>', "$out" or _exit(126);
        open STDERR, '>&', \*STDOUT;
        { exec { $cmd[0] } @cmd }
        _exit(127);
    }
    waitpid $pid, 0;
    return ($? >> 8, read_file("$out"));
}

# ---------------------------------------------------------------- HTTP

# GET requests for [host, path] pairs, all on one keep-alive connection to
# 127.0.0.1:$port, the last one asking to close.  Returns [status, body]
# per request; status 0 when no answer came.  The harness's client waits
# for a close that a proxy's answer without Keep-Alive never promises;
# this one reads by Content-Length or chunks and never waits.
sub http_get ($port, @requests) {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => 10)
        or return map { [0, "connect: $!"] } @requests;
    my @out;
    my $buf = '';
    my $fill = sub {
        my $n = sysread $sock, my $chunk, 65536;
        die "closed\n" unless $n;
        $buf .= $chunk;
    };
    my $line = sub {
        my $at;
        $fill->() while ($at = index $buf, "\r\n") < 0;
        return substr(substr($buf, 0, $at + 2, ''), 0, -2);
    };
    my $take = sub ($n) {
        $fill->() while length $buf < $n;
        return substr $buf, 0, $n, '';
    };
    local $SIG{ALRM} = sub { die "timeout\n" };
    for my $i (0 .. $#requests) {
        my ($host, $path) = $requests[$i]->@*;
        my $close = $i == $#requests ? 'close' : 'keep-alive';
        my $res = eval {
            alarm 15;
            print {$sock} "GET $path HTTP/1.1\r\nHost: $host\r\n"
                . "Connection: $close\r\n\r\n";
            my ($status) = $line->() =~ m{^HTTP/1\.[01] (\d{3})}
                or die "no status line\n";
            my %h;
            while ((my $l = $line->()) ne '') {
                $h{ lc $1 } = $2 if $l =~ /^([^:]+):\s*(.*)$/;
            }
            my $body = '';
            if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
                while ((my $size = hex $line->()) > 0) {
                    $body .= $take->($size);
                    $line->();
                }
                1 while $line->() ne '';
            }
            else {
                $body = $take->($h{'content-length'} // 0);
            }
            alarm 0;
            [$status, $body];
        };
        alarm 0;
        push @out, $res // [0, $@];
        last unless $res;
    }
    push @out, [0, 'not sent: the connection ended'] while @out < @requests;
    return @out;
}

# ---------------------------------------------------------------- browsers

# A fresh NSS database in $dir that trusts $ca for web servers: Chromium
# reads ~/.pki/nssdb, Firefox its profile, so neither needs the system's
# trust store changed.
sub nss_trust ($dir, $ca) {
    -x $CERTUTIL or die "$CERTUTIL not found: apt-get install libnss3-tools\n";
    make_path($dir);
    for my $cmd (['-N', '--empty-password'],
                 ['-A', '-n', 'mod_misdirect test CA', '-t', 'C,,', '-i', $ca]) {
        my ($rc, $out) = run_cmd('', {}, $CERTUTIL, @$cmd, '-d', "sql:$dir");
        die "certutil @$cmd: $out" if $rc;
    }
}

# Loads $o{url} in headless Chromium, names in $o{names} resolving to
# 127.0.0.1 and nothing else resolving at all.  Returns { dom, netlog,
# restarts (421s it retried), ip_pooled (requests it sent on another
# name's connection) }.
sub chromium_load (%o) {
    my $dir = $o{dir};
    remove_tree($dir);
    nss_trust("$dir/home/.pki/nssdb", $o{ca});
    my $rules = join ', ', (map { "MAP $_ 127.0.0.1" } $o{names}->@*),
        'MAP * ~NOTFOUND';
    my $log = "$dir/chromium.log";
    my $pid = spawn('chromium', $log, { HOME => "$dir/home" },
        $o{binary}, qw(--headless --no-sandbox --disable-gpu --disable-quic
            --no-first-run --disable-background-networking
            --disable-component-update --disable-sync),
        "--user-data-dir=$dir/profile", "--host-resolver-rules=$rules",
        "--log-net-log=$dir/netlog.json", '--dump-dom', $o{url});
    my $deadline = time + $o{timeout};
    sleep 0.1 while alive($pid) && time < $deadline;
    my $timed_out = alive($pid);
    stop($pid);
    die "chromium did not finish in $o{timeout}s\n" if $timed_out;
    # --dump-dom prints the document after its load event, which is when
    # the page has written its result.
    my $text = read_file($log);
    my ($dom) = $text =~ /(<html.*<\/html>)/s;
    my $netlog = read_file("$dir/netlog.json");
    remove_tree("$dir/profile", "$dir/home");    # the logs are kept
    return { dom => $dom // '', log => $log,
        restarts => _netlog_count($netlog,
            'HTTP_TRANSACTION_RESTART_MISDIRECTED_REQUEST'),
        ip_pooled => _netlog_count($netlog,
            'HTTP2_SESSION_POOL_FOUND_EXISTING_SESSION_FROM_IP_POOL') };
}

# Events of one type in a NetLog file.  The file is one event a line
# after the constants, so this needs no JSON parser for the events, and
# survives a file that a killed browser left without its closing brackets.
sub _netlog_count ($netlog, $type) {
    my ($n) = $netlog =~ /"\Q$type\E":(\d+)/ or return 0;
    my $count = () = $netlog =~ /"type":$n\}/g;
    return $count;
}

# Loads $o{url} in headless Firefox, driven over Marionette (its own
# remote protocol, on a loopback port); returns { dom (the text of
# #result), misdirected (421s its HTTP log shows), restarted }.
sub firefox_load (%o) {
    my $dir = $o{dir};
    remove_tree($dir);
    my $profile = "$dir/profile";
    nss_trust($profile, $o{ca});
    fill($o{prefs}, "$profile/user.js", { %{ $o{vars} },
        MARIONETTE_PORT => $o{marionette_port} });
    my $log = "$dir/firefox.log";
    my $pid = spawn('firefox', $log, { HOME => "$dir/home",
            MOZ_LOG => 'timestamp,nsHttp:5', MOZ_LOG_FILE => "$dir/http.log",
            MOZ_CRASHREPORTER_DISABLE => 1 },
        $o{binary}, qw(--headless --marionette --no-remote --profile),
        $profile, 'about:blank');
    my $dom = eval {
        my $m = _marionette($o{marionette_port}, $pid, $o{timeout});
        $m->('WebDriver:NewSession', { capabilities => {} });
        $m->('WebDriver:Navigate', { url => $o{url} });
        my $r = $m->('WebDriver:ExecuteScript', { args => [], script =>
            "return document.getElementById('result').textContent" });
        eval { $m->('Marionette:Quit', { flags => ['eForceQuit'] }) };
        $r->{value};
    };
    my $error = $@;
    my $deadline = time + $STOP_TIMEOUT;
    sleep 0.1 while alive($pid) && time < $deadline;
    stop($pid);
    die "firefox: $error" if $error;
    # The parent process's log is http.log.moz_log; content processes write
    # their own, which see no connections.
    remove_tree($profile, "$dir/home");    # 40 MB; the logs are kept
    my @http = map { split /\n/, read_file($_) } glob "$dir/http.log*";
    my ($misdirected, $restarted) = (0, 0);
    for my $i (0 .. $#http) {
        next unless $http[$i] =~ m{Socket Thread\]: \w/nsHttp Misdirected Request\.$};
        $misdirected++;
        # The socket thread then closes that transaction and restarts it,
        # by its address; other threads write lines in between.
        my ($trans, $j);
        for ($j = $i + 1; $j <= $#http && $j < $i + 200; $j++) {
            ($trans) = $http[$j] =~ /Socket Thread\]: .*nsHttpTransaction::Close \[this=(\w+)/
                and last;
        }
        next unless $trans;
        $restarted++ if grep { /restarting transaction \@\Q$trans\E\b/ }
            @http[$j + 1 .. ($j + 200 > $#http ? $#http : $j + 200)];
    }
    return { dom => $dom // '', log => $log, misdirected => $misdirected,
        restarted => $restarted };
}

# A Marionette client: connects (Firefox opens the port once it is up),
# reads the greeting, and returns a sub that sends one command and
# returns its result or dies with its error.  Each message is its length,
# a colon, and JSON.
sub _marionette ($port, $pid, $timeout) {
    my $deadline = time + $timeout;
    my $sock;
    until ($sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $port, Proto => 'tcp')) {
        die "no Marionette on port $port\n" if !alive($pid) || time > $deadline;
        sleep 0.2;
    }
    my $json = JSON::PP->new->canonical;
    my $read = sub {
        my $len = '';
        while (1) {
            die "Marionette closed\n" unless sysread $sock, my $c, 1;
            last if $c eq ':';
            $len .= $c;
        }
        my $buf = '';
        while (length $buf < $len) {
            die "Marionette closed\n"
                unless sysread $sock, my $chunk, $len - length $buf;
            $buf .= $chunk;
        }
        return $json->decode($buf);
    };
    $read->();    # {"applicationType":"gecko","marionetteProtocol":3}
    my $id = 0;
    return sub ($name, $params) {
        my $msg = $json->encode([0, ++$id, $name, $params]);
        print {$sock} length($msg) . ":$msg";
        my $r = $read->();
        die "$name: " . $json->encode($r->[2]) . "\n" if $r->[2];
        return $r->[3];
    };
}

# ---------------------------------------------------------------- backend logs

# Fields of the backend's clients_log, in the order of its LogFormat.
our @ACCESS_FIELDS = qw(vhost status host sni resumed cport proto cause
    reason xfh forwarded via url);

# The clients_log rows written since byte $offset (runs go one at a
# time, so they are the run's, a browser's favicon request included),
# oldest first, as hashes; a line still being written is left out.
sub access_rows ($server, $offset) {
    my @rows;
    my $text = read_file($server->root . '/logs/clients_log', $offset);
    $text =~ s/[^\n]*\z//;
    for my $line (split /\n/, $text) {
        my %row;
        @row{@ACCESS_FIELDS} = map { $_ eq '-' ? '' : $_ } split /\t/, $line;
        push @rows, \%row;
    }
    return @rows;
}

# The module's error and warn lines in $text: { level, logno, line,
# fields, as } each, where as is the message a line stands for: its own
# number, or for a summary line of repeats the number of the line it
# folds ("K more like the MISDIRECTnnn: line above").
sub diag_lines ($text) {
    my @out;
    for my $line (split /\n/, $text) {
        next unless $line =~ /\[misdirect:(error|warn)\].* MISDIRECT(\d{3}): /;
        my %d = (level => $1, logno => $2, line => $line,
            fields => fields($line));
        ($d{as}) = $line =~ / more like the MISDIRECT(\d{3}): /;
        $d{as} //= $d{logno};
        push @out, \%d;
    }
    return @out;
}

# How many events the lines account for: each detailed line one, each
# summary line (repeated="K") K more.
sub accounted (@lines) {
    my $n = 0;
    $n += exists $_->{fields}{repeated} ? $_->{fields}{repeated} : 1
        for @lines;
    return $n;
}

1;
