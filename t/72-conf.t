# conf/misdirect.conf as the package installs it: loaded whole (every
# directive commented out) it passes configtest; and its status example,
# uncommented as written there (on a free port instead of 8421), serves
# the counters on a vhost of its own to the address it names only, keeps
# its scrapes out of the counters, and answers on no other vhost.  For
# comparison, a status page in an ordinary vhost counts every scrape as a
# checked request.
use v5.36;
use Test::More;
use IO::Socket::INET;
use JSON::PP ();
use lib 't/lib';
use MisdirectTest;

sub slurp ($path) {
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

my $conf = slurp('conf/misdirect.conf');

# The example: the commented lines from "#Listen" to "#</VirtualHost>",
# uncommented.
my ($example) = $conf =~ /^( *#Listen .*?^ *#<\/VirtualHost>\n)/ms;
ok defined $example, 'conf/misdirect.conf has the status example'
    or BAIL_OUT('no status example in conf/misdirect.conf');
(my $live = $example) =~ s/^( *)#/$1/mg;
like $live, qr/^ *Misdirect Off$/m, 'its vhost has Misdirect Off';
unlike $live, qr/Require local/, 'it does not rely on Require local';
like $live, qr/^ *Require ip 127\.0\.0\.1$/m, 'it names who may read';

my ($port) = $live =~ /^ *Listen 127\.0\.0\.1:(\d+)$/m;
ok $port, "it listens on a loopback port of its own ($port)";
my $free = do {
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', Listen => 1) or die "bind: $!";
    $sock->sockport;
};
$live =~ s/127\.0\.0\.1:\Q$port\E\b/127.0.0.1:$free/g;
(my $whole = $conf) =~ s/\Q$example\E/$live/;

{
    my ($rc, $out) = MisdirectTest::configtest(name => 'conf-as-shipped',
        global => $conf);
    is $rc, 0, 'the file as shipped passes configtest' or diag $out;
}

sub get ($s, %o) {
    my ($r) = $s->http(port => $o{port},
        (defined $o{from} ? (from => $o{from}) : ()),
        requests => [{ host => $o{host} // 'misdirect-status.localhost',
            path => $o{path} }]);
    return $r;
}

sub checked ($r) {
    my $json = eval { JSON::PP->new->decode($r->{body}) };
    return $json ? $json->{totals}{checked} : undef;
}

subtest 'the status example, uncommented' => sub {
    # authz_host: Require ip (Debian enables it by default).
    my $s = MisdirectTest->new(name => 'conf-status', global => $whole,
        ssl => 0, modules => ['authz_host']);
    my $r = get($s, port => $free, path => '/misdirect-status');
    is $r->{status}, 200, 'GET /misdirect-status on its own port: 200';
    my $before = checked($r);
    ok defined $before, '... JSON with the totals';
    $r = get($s, port => $free, path => '/misdirect-metrics');
    is $r->{status}, 200, 'GET /misdirect-metrics: 200';
    like $r->{body}, qr/^apache_misdirect_checked_requests_total /m,
        '... the Prometheus counters';

    $s->expect_log('AH01630');    # authz_core refuses the next one
    $r = get($s, port => $free, path => '/misdirect-status', from => '127.0.0.2');
    is $r->{status}, 403, 'another address (127.0.0.2): 403';

    get($s, port => $free, path => '/misdirect-status') for 1 .. 3;
    $r = get($s, port => $free, path => '/misdirect-status');
    is checked($r), $before, 'scrapes are not checked requests: the count '
        . 'stays the same';

    $r = get($s, host => 'alpha.test', path => '/');
    is $r->{status}, 200, 'a request to an ordinary vhost';
    $r = get($s, port => $free, path => '/misdirect-status');
    is checked($r), $before + 1, '... is counted';

    $r = get($s, host => 'alpha.test', path => '/misdirect-status');
    is $r->{status}, 404, 'no other vhost answers /misdirect-status';

    # authz_core's AH01630 for the refused address alone.
    my @bad = grep { /:(?:warn|error|crit|alert|emerg)\]/ && !/AH10034: /
            && !/\[client 127\.0\.0\.2:\d+\] AH01630: / }
        split /\n/, $s->error_log_since;
    is scalar(@bad), 0, 'error_log: nothing else at warn or worse'
        or diag join "\n", @bad;
};

subtest 'a status page in an ordinary vhost counts its own scrapes' => sub {
    my $s = MisdirectTest->new(name => 'conf-status-counted', ssl => 0,
        vhost => { 'plain:beta.test' => "<Location /misdirect-status>\n"
            . "    SetHandler misdirect-status\n</Location>" });
    my $first = checked(get($s, host => 'beta.test',
        path => '/misdirect-status'));
    my $second = checked(get($s, host => 'beta.test',
        path => '/misdirect-status'));
    ok defined $first, 'a scrape of beta.test\'s page';
    is $second, $first + 1, 'the next scrape finds one more checked request';
};

done_testing();
