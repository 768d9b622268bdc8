package MisdirectCase;

# One request and what the server recorded about it: the response, the
# access_log entry (with the MISDIRECT_* variables) and the error_log lines
# the request produced.  Shared by the behaviour tests.

use v5.36;
use Exporter 'import';
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use Test::More;

our @EXPORT = qw(probe expect_case raw_tls fields);

my $seq = 0;

# probe($server, via => 'tls'|'plain', sni => NAME|undef, host => NAME|undef,
#       path => '/x', target => URL, method => 'GET', headers => [...],
#       proto => 'HTTP/1.1')
# Each probe carries a unique query string, so its access_log entry is found
# even when several requests were served.
sub probe ($s, %o) {
    my $via = delete $o{via} // 'tls';
    my $sni = exists $o{sni} ? delete $o{sni} : $o{host};
    my $id = sprintf 'probe=%d-%d', $$, ++$seq;
    my $path = $o{path} // '/';
    $path .= ($path =~ /\?/ ? '&' : '?') . $id;
    my %req = (%o, path => $path);
    if (defined $req{target}) {
        $req{target} .= ($req{target} =~ /\?/ ? '&' : '?') . $id;
    }
    my $mark = $s->mark;
    my ($res) = $via eq 'plain'
        ? $s->http(requests => [\%req])
        : $s->https(sni => $sni, requests => [\%req]);
    my $line = $s->wait_access_log(qr/\Q$id\E/, $mark);
    my %acc;
    if (defined $line) {
        my @f = split / /, $line, 9;
        @acc{qw(vhost status reason action checks sni hvhost rvhost)} =
            map { $_ eq '-' ? undef : $_ } @f[0 .. 7];
    }
    $res->{access} = \%acc;
    $res->{access_line} = $line;
    $res->{error_log} = $s->error_log_since($mark);
    $res->{id} = $id;
    return $res;
}

# The key="value" fields of a diagnosis line, pulled apart the way a log
# parser would: { reason => ..., sni => ... } (values as logged).
sub fields ($line) {
    my %f;
    $f{$1} = $2 while $line =~ / (\w+)="((?:[^"\\]|\\.)*)"/g;
    return \%f;
}

# expect_case($name, $res, status => 421, reason => 'cert-mismatch' | undef,
#             action => 'reject', checks => 'a,b', vhost => 'beta.test',
#             logno => '001' | undef (no diagnosis line at error/warn))
sub expect_case ($name, $r, %e) {
    subtest $name => sub {
        is $r->{status}, $e{status}, "status $e{status}"
            or diag $r->{raw} // $r->{error} // '';
        ok defined $r->{access_line}, 'access_log has the request'
            or return;
        if (exists $e{reason}) {
            is $r->{access}{reason}, $e{reason},
                'MISDIRECT_REASON ' . ($e{reason} // 'unset');
        }
        if (exists $e{action}) {
            is $r->{access}{action}, $e{action},
                'MISDIRECT_ACTION ' . ($e{action} // 'unset');
        }
        if (exists $e{checks}) {
            is $r->{access}{checks}, $e{checks},
                'MISDIRECT_CHECKS ' . ($e{checks} // 'unset');
        }
        if (exists $e{vhost}) {
            is $r->{access}{vhost}, $e{vhost}, "served by $e{vhost}";
            like $r->{body}, qr/^\Q$e{vhost}\E$/, 'body is that vhost\'s page'
                if $e{status} == 200;
        }
        if (exists $e{logno}) {
            my @lines = grep { /\[misdirect:(?:error|warn)\]/ }
                split /\n/, $r->{error_log};
            if (defined $e{logno}) {
                is scalar(@lines), 1, 'one diagnosis line';
                like $lines[0] // '', qr/MISDIRECT$e{logno}: /,
                    "message MISDIRECT$e{logno}";
                like $lines[0] // '', qr/ reason="\Q$e{reason}\E"/,
                    'the line names the reason' if defined $e{reason};
            }
            else {
                is scalar(@lines), 0, 'no diagnosis line at warn or error'
                    or diag join "\n", @lines;
            }
        }
        if ($e{status} == 421 && ($e{logno} // '') eq '001') {
            is $r->{headers}{connection}, 'close',
                'HTTP/1.x 421 says Connection: close';
            ok $r->{closed_after}, 'and the connection is closed';
        }
    };
}

# raw_tls($server, sni => BYTES|undef, request => TEXT): a TLS exchange
# with openssl s_client, which sends any SNI bytes as given (IO::Socket::SSL
# and Python refuse or rewrite some: IP literals, trailing dots, control
# characters).  The request should ask for Connection: close.  Options:
# port (instead of the server's TLS port), extra (more s_client
# arguments), quiet => 0 (keep s_client's session report in the output,
# e.g. "Reused, TLSv1.3"), timeout (seconds, 10).  Returns
# ($status, $output).
sub raw_tls ($s, %o) {
    my $port = $o{port} // $s->tls_port;
    my @cmd = ('/usr/bin/openssl', 's_client', '-connect',
        "127.0.0.1:$port", '-ign_eof', '-alpn', 'http/1.1',
        ($o{quiet} // 1) ? '-quiet' : (),
        defined $o{sni} ? ('-servername', $o{sni}) : '-noservername',
        @{ $o{extra} // [] });
    -x $cmd[0] or die "$cmd[0] not found: apt-get install openssl\n";
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, @cmd);
    print $in $o{request};
    close $in;
    my $raw = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm($o{timeout} // 10);
        local $/;
        $raw = <$out> // '';
        alarm 0;
    };
    kill 'TERM', $pid if $@;
    waitpid $pid, 0;
    my ($status) = $raw =~ m{^HTTP/1\.[01] (\d{3})}m;
    return ($status // 0, $raw);
}

1;
