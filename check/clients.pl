#!/usr/bin/perl
# Real clients in front of httpd (make check-clients).  Debian's nginx,
# HAProxy, Caddy, Traffic Server and a second httpd with mod_proxy stand
# in front of a test httpd with name-based TLS virtual hosts, each set up
# as the tutorials write it and then with the documented fix; curl and
# openssl s_client talk to it directly; headless Chromium and Firefox
# load a page whose images come from a second name on the same
# certificate.  Every set-up runs twice: against httpd with mod_misdirect
# and against the same httpd without it.  For each one the check asserts
#   - the statuses (and the vhost that served each page) the client saw
#     are the ones stock httpd gives;
#   - the tutorial's set-up shows the misdirects it is known for, and the
#     fix removes every 421 and every page served by the wrong vhost;
#   - every 421 the backend sent is explained by the module in error_log
#     (one line each, or a summary line that counts it), and nothing else
#     is logged at warn or above;
#   - with CLIENTS_EXPECT_CAUSE=1 (the default): each explanation names
#     the expected cause="..." and a hint with that client's own setting,
#     and the pages served by the wrong vhost are reported (the
#     forwarded-host check, MISDIRECT002);
#   - browsers: the page is complete, and every 421 was retried on a new
#     connection (the backend's log, Chromium's NetLog, Firefox's HTTP log);
#   - every proxy listens on loopback only.
#
#   perl check/clients.pl
#       CLIENTS_ONLY="nginx-no-sni browsers"  run only these cases
#       CLIENTS_EXPECT_CAUSE=0  leave out what a build without causes
#           cannot pass: cause and hint, the forwarded-host report, summary
#           lines (the backend then logs every line in detail:
#           MisdirectLogLimit 0)
#
# The proxies run in the foreground as this script's children, on ports
# the harness picks outside the kernel's ephemeral range
# (MISDIRECT_PORTS), each with a directory of its own under the harness's
# tmp folder; no system service is started and no system file written.
use v5.36;
use FindBin;
BEGIN { $ENV{MISDIRECT_PORTS} //= '20000-32767' }
use lib "$FindBin::Bin/../t/lib", $FindBin::Bin;
use MisdirectTest;
use ClientsKit qw(fill write_file read_file spawn stop wait_port listeners
    run_cmd http_get chromium_load firefox_load access_rows diag_lines
    accounted);
use File::Path qw(make_path remove_tree);
use Test::More;
use Time::HiRes qw(sleep time);

my $EXPECT = $ENV{CLIENTS_EXPECT_CAUSE} // 1;
my %ONLY = map { $_ => 1 } split /[\s,]+/, $ENV{CLIENTS_ONLY} // '';
my $TPL  = "$FindBin::Bin/clients";
my $PKI  = MisdirectTest::pki();
my $CA   = "$PKI/ca.crt";
my $DIR  = MisdirectTest::tmp_root() . "/check-clients-$$";
my $T0   = time;

my %BIN = (nginx => '/usr/sbin/nginx', haproxy => '/usr/sbin/haproxy',
    caddy => '/usr/bin/caddy', trafficserver => '/usr/bin/traffic_server',
    curl => '/usr/bin/curl', openssl => '/usr/bin/openssl',
    chromium => '/usr/bin/chromium', firefox => '/usr/bin/firefox-esr');

# The hosts the proxies are asked for, in turn: the address's default
# vhost and two others, each with a certificate of its own, so that
# mod_ssl refuses any of them on a handshake made for another.
my @SITES = qw(default.test alpha.test beta.test);
my $ROUNDS = 10;

# The browsers' page: a.wild.test, and images from a second name on the
# same certificate (*.wild.test).  b.wild.test hardens its cipher list, so
# mod_ssl refuses it on a connection made for a.wild.test; c.wild.test
# has a.wild.test's settings exactly (the fix).
my $IMAGES  = 24;
my $CIPHERS = 'HIGH:!aNULL:!MD5';

# Chromium's and Firefox's limits for one page load.
my $BROWSER_TIMEOUT = 60;

mkdir $DIR;
chmod 0755, $DIR;
$| = 1;

# ---------------------------------------------------------------- backends

# What each request was, as the backend saw it (ClientsKit's
# @ACCESS_FIELDS, in order).
my $FORMAT = join '\t', qw(%v %>s %{Host}i %{SSL_TLS_SNI}x
    %{SSL_SESSION_RESUMED}x %{remote}p %H %{MISDIRECT_CAUSE}e
    %{MISDIRECT_REASON}e %{X-Forwarded-Host}i %{Forwarded}i %{Via}i %U%q);

my %BACKEND;
for my $kind (qw(module stock)) {
    my $misdirect = $kind eq 'module' ? 1 : 0;
    my $www = "$DIR/www-$kind";
    make_path("$www/c.wild.test");
    chmod 0755, $www, "$www/c.wild.test";
    my $s = MisdirectTest->new(
        name => "clients-$kind",
        misdirect => $misdirect,
        # Swept at the stop, as the runs' own check below sweeps each run:
        # the refusals and their explanations, one line each or folded
        # (MISDIRECT009); and the lint on b.wild.test's SSLCipherSuite,
        # which keeps it apart from the default vhost and its siblings on
        # the wild certificate.
        expect_log => $misdirect ? [qw(AH02032 MISDIRECT001 MISDIRECT002
            MISDIRECT006 MISDIRECT007 MISDIRECT009 MISDIRECT011),
        qr/^MISDIRECT015: .* [ab]\.wild\.test \S+ and [bc]\.wild\.test \S+ /]
            : ['AH02032'],
        # The module's own default log limit, 10, which folds repeats
        # into summary lines (the harness turns folding off for its
        # tests unless told a limit); every line in detail without them.
        global => join("\n", qq{CustomLog logs/clients_log "$FORMAT"},
            ($misdirect ? 'MisdirectLogLimit ' . ($EXPECT ? 10 : 0) : ())),
        vhost => { 'tls:b.wild.test' => "SSLCipherSuite $CIPHERS" },
        extra_vhosts => <<~"EOF");
            <VirtualHost 127.0.0.1:\@TLS_PORT\@>
                ServerName c.wild.test
                DocumentRoot "$www/c.wild.test"
                SSLEngine on
                SSLCertificateFile $PKI/wild.crt
                SSLCertificateKeyFile $PKI/wild.key
                <Directory "$www/c.wild.test">
                    Require all granted
                </Directory>
            </VirtualHost>
            EOF
    # A 1x1 GIF, per image a name of its own.
    my $gif = pack 'H*', '47494638396101000100800000000000ffffff21f904010000'
        . '00002c00000000010001000002024401003b';
    for my $root ($s->docroot('b.wild.test'), "$www/c.wild.test") {
        make_path("$root/img");
        chmod 0755, "$root/img";
        write_file("$root/img/$_.gif", $gif) for 1 .. $IMAGES;
        chmod 0644, glob "$root/img/*";
    }
    write_file("$www/c.wild.test/index.html", "c.wild.test\n");
    chmod 0644, "$www/c.wild.test/index.html";
    $BACKEND{$kind} = $s;
}
printf "clients: backends up (with the module: TLS port %d; without: %d)"
    . " in %.1fs; files under %s\n", $BACKEND{module}->tls_port,
    $BACKEND{stock}->tls_port, time - $T0, $DIR;

# ---------------------------------------------------------------- proxies

# Each start_* runs one proxy for one run, in front of backend port $bp,
# and returns { port, pid or server, dir }.

sub proxy_dir ($run) {
    my $d = "$DIR/$run";
    remove_tree($d);
    make_path($d);
    return $d;
}

sub start_nginx ($run, $bp, $conf) {
    my $d = proxy_dir($run);
    my ($port) = MisdirectTest::free_ports(1);
    fill("$TPL/nginx.conf.in", "$d/nginx.conf",
        { DIR => $d, HTTP => $conf->($port, $bp) });
    make_path("$d/tmp");
    # -e: the error log before the configuration is read, which would be
    # Debian's /var/log/nginx otherwise.
    my $pid = spawn('nginx', "$d/stderr.log", {}, $BIN{nginx}, '-p', $d,
        '-e', "$d/error.log", '-c', "$d/nginx.conf", '-g', 'daemon off;');
    wait_port($port, $pid, "$d/error.log");
    return { port => $port, pid => $pid, dir => $d };
}

sub start_haproxy ($run, $bp, $conf) {
    my $d = proxy_dir($run);
    my ($port) = MisdirectTest::free_ports(1);
    my ($server, $reuse) = $conf->($bp);
    fill("$TPL/haproxy.cfg.in", "$d/haproxy.cfg", { PORT => $port,
        SERVER => $server, HTTP_REUSE => $reuse ? "    $reuse" : '' });
    my $pid = spawn('haproxy', "$d/haproxy.log", {}, $BIN{haproxy}, '-db',
        '-f', "$d/haproxy.cfg");
    wait_port($port, $pid, "$d/haproxy.log");
    return { port => $port, pid => $pid, dir => $d };
}

sub start_caddy ($run, $bp, $conf) {
    my $d = proxy_dir($run);
    my ($port) = MisdirectTest::free_ports(1);
    fill("$TPL/Caddyfile.in", "$d/Caddyfile",
        { DIR => $d, SITES => $conf->($port, $bp) });
    my $pid = spawn('caddy', "$d/caddy.log", { HOME => $d,
            XDG_CONFIG_HOME => "$d/config", XDG_DATA_HOME => "$d/data" },
        $BIN{caddy}, 'run', '--config', "$d/Caddyfile",
        '--adapter', 'caddyfile');
    wait_port($port, $pid, "$d/caddy.log");
    return { port => $port, pid => $pid, dir => $d };
}

sub start_trafficserver ($run, $bp, $conf) {
    my $d = proxy_dir($run);
    my ($port) = MisdirectTest::free_ports(1);
    my ($pristine, $remap) = $conf->($port, $bp);
    my %v = (DIR => $d, PORT => $port, PRISTINE => $pristine, CA => $CA);
    make_path(map { "$d/$_" } qw(etc var run log cache));
    fill("$TPL/trafficserver/$_.in", "$d/" . ($_ eq 'runroot.yaml'
        ? $_ : "etc/$_"), \%v) for qw(runroot.yaml records.config
            storage.config plugin.config);
    write_file("$d/etc/forwarded-host.config",
        read_file("$TPL/trafficserver/forwarded-host.config"));
    write_file("$d/etc/resolv.conf", "nameserver 127.0.0.1\n");
    write_file("$d/etc/remap.config", $remap);
    # The other files it reads, empty: their defaults are right here.
    write_file("$d/etc/$_", '') for qw(ssl_multicert.config
        hosting.config volume.config cache.config parent.config sni.yaml
        strategies.yaml splitdns.config socks.config logging.yaml);
    write_file("$d/etc/ip_allow.yaml", <<~'EOF');
        ip_allow:
          - apply: in
            ip_addrs: 127.0.0.1
            action: allow
          - apply: out
            ip_addrs: 127.0.0.1
            action: allow
        EOF
    my $pid = spawn('traffic_server', "$d/traffic_server.log",
        { TS_RUNROOT => "$d/runroot.yaml" }, $BIN{trafficserver},
        "--run-root=$d/runroot.yaml");
    wait_port($port, $pid, "$d/log/diags.log");
    # It listens before its remap rules are loaded: a request until then
    # would get its 404 for an unmapped host.
    my $deadline = time + 20;
    sleep 0.1 until read_file("$d/log/diags.log") =~ /fully initialized/
        || time > $deadline;
    return { port => $port, pid => $pid, dir => $d, cache => "$d/cache" };
}

# A second httpd, Debian's, with mod_proxy: the harness's plain vhosts
# for the three sites, each with the case's proxy lines.
sub start_httpd ($run, $bp, $conf) {
    my $lines = $conf->($bp);
    my $s = MisdirectTest->new(name => 'clients-front', misdirect => 0,
        ssl => 0, h2 => 0, modules => [qw(socache_shmcb ssl proxy proxy_http)],
        # mod_ssl is there for the proxy's side alone, with no session
        # cache (the harness sets one only with ssl => 1): it says so.
        expect_log => ['AH01873'],
        vhost => { map { ("plain:$_" => $lines) } @SITES });
    return { port => $s->plain_port, server => $s, dir => $s->root,
        pid => $s->pid };
}

sub stop_proxy ($p) {
    if ($p->{server}) {
        $p->{server}->stop;
        remove_tree($p->{server}->root);    # a stock httpd's, nothing to keep
    }
    else { stop($p->{pid}) }
    remove_tree($p->{cache}) if $p->{cache};    # Traffic Server's 64 MB
}

my %START = (nginx => \&start_nginx, haproxy => \&start_haproxy,
    caddy => \&start_caddy, trafficserver => \&start_trafficserver,
    httpd => \&start_httpd);

# ---------------------------------------------------------------- the cases

# Per-site blocks in the style of hosting panels, which write one server
# block per site with these headers.
sub nginx_sites ($port, $body) {
    return join "\n", map {
        my $site = $_;
        join "\n", '    server {', "        listen 127.0.0.1:$port;",
            "        server_name $site;", '        location / {',
            map({ "            $_" } 'proxy_set_header Host $host;',
                'proxy_set_header X-Real-IP $remote_addr;',
                'proxy_set_header X-Forwarded-For '
                    . '$proxy_add_x_forwarded_for;',
                'proxy_set_header X-Forwarded-Proto $scheme;',
                $body->($site)->@*),
            '        }', "    }\n";
    } @SITES;
}

sub pool_name ($site) { 'httpd_' . ($site =~ s/\W.*//r) }

# Requests: the sites in turn, each on a client connection of its own,
# with the port in Host as every client sends it to a port not 80.
sub cycle ($port) {
    return map { "$_:$port" } (@SITES) x $ROUNDS;
}

# Each site twice in a row: the second connection of a pair can resume
# the session of the first; the first of a pair could only resume the
# session of another site's.
sub pairs ($port) {
    return map { ("$_:$port") x 2 } (@SITES) x ($ROUNDS / 2);
}

my $SNI = ['proxy_ssl_server_name on;', 'proxy_ssl_name $host;'];

my @CASES = (
    {
        name => 'nginx-no-sni', client => 'nginx', requests => \&cycle,
        about => 'proxy_pass to https:// sends no SNI unless told to',
        cause => 'no-sni', hint => 'proxy_ssl_name', logno => '006',
        variants => [
            { name => 'tutorial', n421 => 20, conf => sub ($port, $bp) {
                nginx_sites($port, sub ($site) {
                    ["proxy_pass https://127.0.0.1:$bp;"] }) } },
            { name => 'fixed', n421 => 0, conf => sub ($port, $bp) {
                nginx_sites($port, sub ($site) {
                    ["proxy_pass https://127.0.0.1:$bp;", @$SNI] }) } },
        ],
    },
    {
        name => 'nginx-keepalive', client => 'nginx', requests => \&cycle,
        about => 'one keepalive pool for all sites: a connection made with'
            . ' one site\'s SNI is reused for the next site',
        cause => 'pool-reuse', hint => 'keepalive', logno => '006',
        variants => [
            map({ my $reuse = $_;
            { name => "tutorial, proxy_ssl_session_reuse $reuse", n421 => 15,
              conf => sub ($port, $bp) {
                "    upstream httpd {\n        server 127.0.0.1:$bp;\n"
                . "        keepalive 16;\n    }\n"
                . nginx_sites($port, sub ($site) { [
                    'proxy_pass https://httpd;', 'proxy_http_version 1.1;',
                    'proxy_set_header Connection "";', @$SNI,
                    "proxy_ssl_session_reuse $reuse;"] }) } } } qw(on off)),
            { name => 'fixed: a pool per site', n421 => 0,
              conf => sub ($port, $bp) {
                join('', map { '    upstream ' . pool_name($_)
                    . " {\n        server 127.0.0.1:$bp;\n"
                    . "        keepalive 16;\n    }\n" } @SITES)
                . nginx_sites($port, sub ($site) { [
                    'proxy_pass https://' . pool_name($site) . ';',
                    'proxy_http_version 1.1;',
                    'proxy_set_header Connection "";', @$SNI] }) } },
        ],
    },
    {
        name => 'nginx-session-reuse', client => 'nginx', requests => \&pairs,
        about => 'TLS sessions cached per upstream server, offered to the'
            . ' next site\'s handshake',
        cause => undef, hint => undef, logno => undef, sessions => 1,
        variants => [
            map({ my ($reuse, $tls13) = @$_;
            { name => "proxy_ssl_session_reuse $reuse"
                  . ($tls13 ? ', TLS 1.3' : ', TLS 1.2 (the default)'),
              n421 => 0, reuse => $reuse eq 'on',
              conf => sub ($port, $bp) {
                nginx_sites($port, sub ($site) { [
                    "proxy_pass https://127.0.0.1:$bp;", @$SNI,
                    "proxy_ssl_session_reuse $reuse;",
                    $tls13 ? 'proxy_ssl_protocols TLSv1.2 TLSv1.3;' : ()] })
              } } } ['on', 0], ['on', 1], ['off', 1]),
        ],
    },
    {
        name => 'haproxy-sni-port', client => 'haproxy', requests => \&cycle,
        about => 'sni req.hdr(host) copies the Host header, port and all',
        cause => 'sni-with-port', hint => 'host_only', logno => '006',
        variants => [
            { name => 'tutorial', n421 => 20, conf => sub ($bp) {
                "server web1 127.0.0.1:$bp ssl verify none sni req.hdr(host)" } },
            { name => 'fixed', n421 => 0, conf => sub ($bp) {
                "server web1 127.0.0.1:$bp ssl verify none "
                . 'sni req.hdr(host),host_only' } },
            { name => 'fixed, http-reuse always', n421 => 0, reused => 1,
              conf => sub ($bp) {
                ("server web1 127.0.0.1:$bp ssl verify none "
                 . 'sni req.hdr(host),host_only', 'http-reuse always') } },
            { name => 'fixed, one client connection for all sites', n421 => 0,
              reused => 1, one_connection => 1, conf => sub ($bp) {
                "server web1 127.0.0.1:$bp ssl verify none "
                . 'sni req.hdr(host),host_only' } },
        ],
    },
    {
        name => 'haproxy-no-sni', client => 'haproxy', requests => \&cycle,
        about => 'a server line with ssl but no sni sends none',
        cause => 'no-sni', hint => 'req.hdr(host)', logno => '006',
        variants => [
            { name => 'tutorial', n421 => 20, conf => sub ($bp) {
                "server web1 127.0.0.1:$bp ssl verify none" } },
            { name => 'fixed', n421 => 0, conf => sub ($bp) {
                "server web1 127.0.0.1:$bp ssl verify none "
                . 'sni req.hdr(host),host_only' } },
        ],
    },
    {
        name => 'caddy-pool', client => 'caddy', requests => \&cycle,
        about => 'one reverse_proxy for all sites keeps one HTTP/2 connection'
            . ' to the upstream, made with the first site\'s SNI',
        cause => 'pool-reuse', hint => 'reverse_proxy', logno => '006',
        variants => [
            { name => 'tutorial', n421 => 20, conf => sub ($port, $bp) {
                caddy_site($port, $bp, @SITES) } },
            { name => 'fixed: a reverse_proxy per site', n421 => 0,
              conf => sub ($port, $bp) {
                join "\n", map { caddy_site($port, $bp, $_) } @SITES } },
            { name => 'fixed: keepalive off', n421 => 0,
              conf => sub ($port, $bp) {
                caddy_site($port, $bp, @SITES, 'keepalive off') } },
        ],
    },
    {
        name => 'trafficserver-remap', client => 'trafficserver',
        requests => \&cycle,
        about => 'a remap rule rewrites Host to the backend\'s address',
        cause => 'host-rewritten', hint => 'pristine_host_hdr',
        variants => [
            { name => 'tutorial', n421 => 0, wrong => 20,
              conf => sub ($port, $bp) { (0, ats_remap($port, $bp)) } },
            { name => 'fixed', n421 => 0, wrong => 0,
              conf => sub ($port, $bp) { (1, ats_remap($port, $bp)) } },
        ],
    },
    {
        name => 'httpd-proxypass', client => 'httpd', requests => \&cycle,
        about => 'ProxyPass sends the backend\'s own name as Host',
        cause => 'host-rewritten', hint => 'ProxyPreserveHost',
        variants => [
            { name => 'tutorial', n421 => 0, wrong => 20, conf => sub ($bp) {
                join "\n", 'SSLProxyEngine on', 'SSLProxyVerify none',
                    'SSLProxyCheckPeerName off', 'SSLProxyCheckPeerExpire off',
                    "ProxyPass / https://127.0.0.1:$bp/",
                    "ProxyPassReverse / https://127.0.0.1:$bp/" } },
            { name => 'fixed', n421 => 0, wrong => 0, conf => sub ($bp) {
                join "\n", 'SSLProxyEngine on', 'SSLProxyVerify require',
                    "SSLProxyCACertificateFile $CA",
                    'ProxyPreserveHost On',
                    "ProxyPass / https://127.0.0.1:$bp/",
                    "ProxyPassReverse / https://127.0.0.1:$bp/" } },
        ],
    },
    {
        name => 'curl-resolve', client => 'curl',
        about => '--resolve pins one name, -H Host asks for another',
        cause => 'client-override', hint => '--resolve', logno => '006',
        variants => [
            { name => 'tutorial', n421 => 3, cmd => sub ($bp, $name, $other, $url) {
                ('--resolve', "$name:$bp:127.0.0.1", '-H', "Host: $other",
                 "https://$name:$bp$url") } },
            { name => 'fixed', n421 => 0, cmd => sub ($bp, $name, $other, $url) {
                ('--resolve', "$other:$bp:127.0.0.1", "https://$other:$bp$url") } },
        ],
    },
    {
        name => 's_client', client => 'openssl',
        about => 's_client sends the -connect name as SNI (none for an'
            . ' address or a name without a dot), whatever Host is typed',
        cause => 'client-override', hint => '-servername', logno => '006',
        variants => [
            # What -connect default.test:443 sends; no name with a dot
            # resolves here, so the SNI is given as s_client would derive it.
            { name => 'tutorial: -connect a name, Host another', n421 => 3,
              cmd => sub ($bp, $host) { ('-connect', "127.0.0.1:$bp",
                  '-servername', 'default.test') } },
            { name => 'tutorial: -connect an address', n421 => 3,
              cause => 'no-sni',
              cmd => sub ($bp, $host) { ('-connect', "127.0.0.1:$bp") } },
            { name => 'tutorial: -connect localhost', n421 => 3,
              cause => 'no-sni',
              cmd => sub ($bp, $host) { ('-connect', "localhost:$bp") } },
            { name => 'fixed', n421 => 0, cmd => sub ($bp, $host) {
                ('-connect', "127.0.0.1:$bp", '-servername', $host) } },
        ],
    },
    {
        name => 'browsers', client => 'browsers',
        about => 'HTTP/2 connection reuse for a second name on the same'
            . ' certificate (RFC 9113, 9.1.1)',
        cause => 'browser-reuse', hint => undef, logno => '006',
        variants => [
            map({ my $b = $_;
                ({ name => "$b, other SSLCipherSuite", browser => $b,
                   assets => 'b.wild.test', n421 => '>0' },
                 { name => "$b, same TLS settings", browser => $b,
                   assets => 'c.wild.test', n421 => 0 }) }
                qw(chromium firefox)),
        ],
    },
);

# One site block for @names; entries with a space are more lines of the
# transport block.
sub caddy_site ($port, $bp, @names) {
    my @extra = grep { / / } @names;
    @names = grep { !/ / } @names;
    return join "\n", join(', ', map { "http://$_:$port" } @names) . ' {',
        '    bind 127.0.0.1', "    reverse_proxy https://127.0.0.1:$bp {",
        '        transport http {', '            tls_server_name {host}',
        "            tls_trusted_ca_certs $CA",
        (map { "            $_" } @extra), '        }', '    }', "}\n";
}

sub ats_remap ($port, $bp) {
    return join '', map { "map http://$_:$port/ https://127.0.0.1:$bp/\n" }
        @SITES;
}

# ---------------------------------------------------------------- running

my $run_seq = 0;

# One variant against one backend: a run.  Returns its record: what the
# client saw (statuses, served vhosts), what the backend logged.
sub run_variant ($case, $v, $kind) {
    my $s = $BACKEND{$kind};
    my $run = sprintf '%s-%d-%s', $case->{name} =~ s/\W/-/gr, ++$run_seq,
        $kind;
    my $mark = $s->mark;
    $mark->{clients} = -s $s->root . '/logs/clients_log' // 0;
    my $t = time;
    my %r = (run => $run, kind => $kind, seen => []);
    my $client = $case->{client};
    # A client that is not installed fails its case; it is never skipped.
    my @bins = $client eq 'browsers' ? $BIN{ $v->{browser} }
        : $client eq 'httpd' ? MisdirectTest::httpd_binary()
        : $BIN{ $client eq 'openssl' ? 'openssl' : $client };
    -x $_ or die "$_ not found: make deps-clients installs it\n" for @bins;
    if ($client eq 'curl') { run_curl($case, $v, $s, \%r) }
    elsif ($client eq 'openssl') { run_s_client($case, $v, $s, \%r) }
    elsif ($client eq 'browsers') { run_browser($case, $v, $s, \%r) }
    else { run_proxy($case, $v, $s, \%r) }
    settle($s, \%r, $mark);
    $r{time} = time - $t;
    return \%r;
}

# Through a proxy: start it for this run, send the case's requests, stop.
sub run_proxy ($case, $v, $s, $r) {
    my $p = $START{ $case->{client} }->($r->{run}, $s->tls_port, $v->{conf});
    $r->{dir} = $p->{dir};
    $r->{listeners} = [listeners($p->{pid})] if $p->{pid} && !$p->{server};
    my $i = 0;
    my @requests = map { [$_, "/?run=$r->{run}&n=" . ++$i] }
        $case->{requests}->($p->{port});
    # A connection per request, as from many visitors, or all on one.
    my @res = $v->{one_connection} ? http_get($p->{port}, @requests)
        : map { http_get($p->{port}, $_) } @requests;
    push $r->{seen}->@*, seen($requests[$_][0], $res[$_]->@*)
        for 0 .. $#requests;
    stop_proxy($p);
}

# What the client saw of one request: the host it asked for, the status,
# and the vhost whose page came back (each index.html holds its name).
sub seen ($host, $status, $body) {
    my ($served) = ($body // '') =~ /^([\w.-]+)\n\z/;
    return { host => $host =~ s/:\d+$//r, status => $status,
        served => $served // '' };
}

# The (name asked for, Host sent) pairs of the direct clients.
my @OVERRIDES = (['alpha.test', 'beta.test'], ['beta.test', 'default.test'],
    ['default.test', 'alpha.test']);

sub run_curl ($case, $v, $s, $r) {
    my $bp = $s->tls_port;
    my $i = 0;
    for my $pair (@OVERRIDES) {
        my ($name, $other) = @$pair;
        my $url = "/?run=$r->{run}&n=" . ++$i;
        my ($rc, $out) = run_cmd('', {}, $BIN{curl}, qw(-q -s --noproxy *
            --cacert), $CA, '-w', '\n%{http_code}',
            $v->{cmd}->($bp, $name, $other, $url));
        my ($body, $status) = $out =~ /\A(.*)\n(\d{3})\z/s;
        push $r->{seen}->@*, seen($other, $status // 0, $body);
    }
}

sub run_s_client ($case, $v, $s, $r) {
    my $bp = $s->tls_port;
    my $i = 0;
    # Hosts of other vhosts than the default, which is what a handshake
    # without SNI, or with one naming no vhost, gets.
    for my $host (qw(alpha.test beta.test shared1.test)) {
        my $req = "GET /?run=$r->{run}&n=" . ++$i . " HTTP/1.1\r\n"
            . "Host: $host\r\nConnection: close\r\n\r\n";
        my ($rc, $out) = run_cmd($req, {}, $BIN{openssl}, 's_client',
            '-quiet', '-ign_eof', $v->{cmd}->($bp, $host));
        my ($status) = $out =~ m{^HTTP/1\.1 (\d{3})}m;
        my ($body) = $out =~ /\r\n\r\n(.*)\z/s;
        push $r->{seen}->@*, seen($host, $status // 0, $body);
    }
}

sub run_browser ($case, $v, $s, $r) {
    my $port = $s->tls_port;
    my $assets = $v->{assets};
    my $images = join "\n", map {
        qq{<img src="https://$assets:$port/img/$_.gif?run=$r->{run}"}
        . q{ onload="loaded++" onerror="failed++" width="8" height="8">}
    } 1 .. $IMAGES;
    my $page = "page-$r->{run}.html";
    fill("$TPL/page.html.in", $s->docroot('a.wild.test') . "/$page",
        { COUNT => $IMAGES, IMAGES => $images });
    chmod 0644, $s->docroot('a.wild.test') . "/$page";
    my $url = "https://a.wild.test:$port/$page?run=$r->{run}";
    my @names = ('a.wild.test', $assets);
    my $dir = "$DIR/$r->{run}";
    $r->{dir} = $dir;
    my $b = $v->{browser} eq 'chromium'
        ? chromium_load(binary => $BIN{chromium}, dir => $dir, ca => $CA,
            names => \@names, url => $url, timeout => $BROWSER_TIMEOUT)
        : firefox_load(binary => $BIN{firefox}, dir => $dir, ca => $CA,
            prefs => "$TPL/firefox-user.js.in",
            vars => { NAMES => join(',', @names) },
            marionette_port => (MisdirectTest::free_ports(1))[0],
            url => $url, timeout => $BROWSER_TIMEOUT);
    $r->{browser} = $b;
    ($r->{result}) = $b->{dom} =~ /(loaded=\d+ failed=\d+)/;
    $r->{result} //= 'no result in the page';
}

# Waits until the backend has logged the run's requests (a proxy's last
# one can still be in flight when the client has its answer), then takes
# the run's rows and error_log lines.
sub settle ($s, $r, $mark) {
    my ($n, $stable, $deadline) = (-1, 0, time + 5);
    while (time < $deadline && $stable < 3) {
        my $now = () = access_rows($s, $mark->{clients});
        $stable = $now == $n ? $stable + 1 : 0;
        $n = $now;
        sleep 0.1;
    }
    $r->{rows} = [access_rows($s, $mark->{clients})];
    $r->{n421} = grep { $_->{status} == 421 } $r->{rows}->@*;
    $r->{wrong} = grep { $_->{status} == 200 && $_->{served} ne $_->{host} }
        $r->{seen}->@*;
    return unless $r->{kind} eq 'module';
    # Every 421 explained, and every wrong-vhost page reported: detailed
    # lines come at once, summary lines within 5 s of a burst.
    my $want = $r->{n421} + ($EXPECT ? $r->{wrong} : 0);
    $deadline = time + ($EXPECT ? 7 : 2);
    while (1) {
        $r->{error_log} = $s->error_log_since($mark);
        my @lines = diag_lines($r->{error_log});
        last if accounted(grep { $_->{as} =~ /^00[1267]$/ } @lines) >= $want
            || time > $deadline;
        sleep 0.2;
    }
}

# ---------------------------------------------------------------- verdicts

my @TABLE;    # one line per run for the summary

sub statuses ($r) { join ' ', map { $_->{status} } $r->{seen}->@* }
sub served ($r)   { join ' ', map { $_->{served} || '-' } $r->{seen}->@* }

for my $case (@CASES) {
    next if %ONLY && !$ONLY{ $case->{name} } && !$ONLY{ $case->{client} };
    subtest "$case->{name}: $case->{about}" => sub {
        for my $v ($case->{variants}->@*) {
            my %r;
            for my $kind (qw(module stock)) {
                $r{$kind} = eval { run_variant($case, $v, $kind) };
                if (!$r{$kind}) {
                    fail("$v->{name} ($kind): the run failed: $@");
                    push @TABLE, [$case->{name}, $v->{name}, $kind, 'ERROR'];
                }
            }
            next unless $r{module} && $r{stock};
            verdict($case, $v, \%r);
        }
    };
}

sub verdict ($case, $v, $r) {
    my ($m, $st) = @$r{qw(module stock)};
    my $name = $v->{name};
    push @TABLE, map { [$case->{name}, $name, $_->{kind},
        sprintf('%d 421s, %d wrong vhost, %.1fs', $_->{n421}, $_->{wrong},
            $_->{time})] } $m, $st;

    # The same answers as stock httpd.
    if ($case->{client} eq 'browsers') {
        browser_verdict($case, $v, $r);
    }
    else {
        is statuses($m), statuses($st),
            "$name: the client saw stock httpd's statuses";
        is served($m), served($st),
            "$name: each page came from the vhost stock httpd chose";
        ok !grep({ !$_->{status} } $m->{seen}->@*),
            "$name: every request got an answer"
            or diag $m->{dir};
    }

    # The set-up shows its misdirects, the fix none.
    my $n421 = grep { $_->{status} == 421 } $m->{seen}->@*;
    $n421 = $m->{n421} if $case->{client} eq 'browsers';
    if (($v->{n421} // '') eq '>0') {
        cmp_ok $n421, '>', 0, "$name: at least one 421";
    }
    else {
        is $n421, $v->{n421}, "$name: $v->{n421} requests got 421";
    }
    is $m->{wrong}, $v->{wrong} // 0,
        "$name: " . ($v->{wrong} // 0) . ' pages served by the wrong vhost';
    for my $l (grep { $_->{listeners} } $m, $st) {
        my @off = grep { !loopback($_) } $l->{listeners}->@*;
        is "@off", '', "$name: $case->{client} ($l->{kind}) listens on"
            . " loopback only (@{ $l->{listeners} })";
    }
    session_verdict($case, $v, $m) if $case->{sessions};
    pool_verdict($case, $v, $m) if $v->{reused};
    explain_verdict($case, $v, $m);
}

# A socket of listeners(): its addresses on loopback, or the unconnected
# peer of a UDP socket.
sub loopback ($socket) {
    my @addr = $socket =~ /([\d.]+|\[[\da-f:]+\]):\d+/g;
    return !grep { !/^127\./ && $_ ne '[0:0:0:0:0:0:0:1]' } grep {
        !($socket =~ /\Q>$_\E:0$/ && /^(?:0\.0\.0\.0|\[[0:]+\])$/)
    } @addr;
}

# Every 421 explained, each with the expected cause and hint; the pages
# served by the wrong vhost reported; nothing else at warn or above.
sub explain_verdict ($case, $v, $m) {
    my $name = $v->{name};
    my @lines = diag_lines($m->{error_log});
    my @refusals = grep { $_->{level} eq 'error' && $_->{as} =~ /^00[167]$/ }
        @lines;
    my @reports = grep { $_->{level} eq 'warn' && $_->{as} eq '002' } @lines;
    my @suppressed = grep { $_->{logno} eq '005' } @lines;
    is accounted(@refusals), $m->{n421},
        "$name: each of the $m->{n421} 421s is explained in error_log"
        or diag join "\n", 'explained: ' . scalar(@refusals) . ' lines',
            map { $_->{line} } @suppressed;
    my $cause = $v->{cause} // $case->{cause};
    if ($m->{n421} && $case->{logno}) {
        is_deeply [sort { $a cmp $b } keys %{{ map { $_->{as} => 1 } @refusals }}],
            [$case->{logno}], "$name: by MISDIRECT$case->{logno}";
    }
    my @hits = $m->{wrong} ? @reports : @refusals;
    if ($EXPECT && $cause && @hits) {
        my @bad = grep { ($_->{fields}{cause} // '') ne $cause } @hits;
        is scalar(@bad), 0, "$name: every line names cause=\"$cause\""
            or diag join "\n", map { 'cause="' . ($_->{fields}{cause}
                // '(none)') . '": ' . ($_->{fields}{hint} // '') }
                @bad[0 .. ($#bad < 2 ? $#bad : 2)];
        if ($case->{hint}) {
            my @nohint = grep { index($_->{fields}{hint} // '',
                $case->{hint}) < 0 } grep { !exists $_->{fields}{repeated} }
                @hits;
            is scalar(@nohint), 0, "$name: every hint names $case->{hint}"
                or diag 'hint="' . ($nohint[0]{fields}{hint} // '') . '"';
        }
    }
    if ($EXPECT) {
        # A summary line names the cause of the lines it folds, not their
        # reason.
        is accounted(grep { ($_->{fields}{reason} // '') eq 'forwarded-host'
            || (exists $_->{fields}{repeated}
                && ($_->{fields}{cause} // '') eq 'host-rewritten') }
            @reports), $m->{wrong},
            "$name: each of the $m->{wrong} pages served by the wrong vhost"
            . ' is reported (forwarded-host)';
    }
    # Nothing else at warn or above: mod_ssl's own line for its 421s, and
    # the module's lines judged above, are all the run may add.
    my @other = grep {
        /\[\w+:(?:warn|error|crit|alert|emerg)\]/
        && !/\[ssl:error\] .* AH02032: /
        && !/\[misdirect:error\] .* MISDIRECT00[167]: /
        && !/\[misdirect:warn\] .* MISDIRECT00[25]: /
        && !/\[misdirect:(?:error|warn)\] .* more like the MISDIRECT00[1267]: /
    } split /\n/, $m->{error_log};
    is scalar(@other), 0, "$name: nothing else at warn or above"
        or diag join "\n", @other[0 .. ($#other < 4 ? $#other : 4)];
}

# nginx offers each new upstream handshake the session of the one before,
# whichever site that was for.
sub session_verdict ($case, $v, $m) {
    my ($same, $same_resumed, $cross, $cross_resumed) = (0, 0, 0, 0);
    my $prev;
    for my $row ($m->{rows}->@*) {
        my $resumed = $row->{resumed} eq 'Resumed';
        if (defined $prev && $prev eq $row->{sni}) {
            $same++;
            $same_resumed++ if $resumed;
        }
        elsif (defined $prev) {
            $cross++;
            $cross_resumed++ if $resumed;
        }
        $prev = $row->{sni};
    }
    $v->{sessions} = "$same_resumed of $same same-site handshakes resumed, "
        . "$cross_resumed of $cross after another site's";
    is $cross_resumed, 0, "$v->{name}: no session of another site is"
        . " resumed ($cross handshakes were offered one)";
    if ($v->{reuse}) {
        is $same_resumed, $same, "$v->{name}: each handshake after one for"
            . " the same site resumes its session ($same)";
    }
    else {
        is $same_resumed, 0, "$v->{name}: no session is resumed";
    }
    note "$v->{name}: $v->{sessions}";
}

# HAProxy with http-reuse always: server connections are reused, each only
# for the SNI it was made with.
sub pool_verdict ($case, $v, $m) {
    my %conns;
    $conns{ $_->{cport} }{ $_->{sni} } = 1 for $m->{rows}->@*;
    my $n = keys %conns;
    cmp_ok $n, '<', scalar($m->{rows}->@*),
        "$v->{name}: server connections were reused ($n for "
        . scalar($m->{rows}->@*) . ' requests)';
    is scalar(grep { keys %$_ > 1 } values %conns), 0,
        "$v->{name}: each only for its own SNI";
}

sub browser_verdict ($case, $v, $r) {
    my $name = $v->{name};
    for my $kind (qw(module stock)) {
        my $x = $r->{$kind};
        my $b = $x->{browser};
        is $x->{result}, "loaded=$IMAGES failed=0",
            "$name ($kind): the page is complete"
            or diag $b->{log};
        # The backend's view: each image ends with a 200.
        my %final;
        $final{ $_->{url} =~ s/\?.*//r } = $_->{status}
            for grep { $_->{url} =~ m{^/img/} } $x->{rows}->@*;
        is scalar(grep { $_ == 200 } values %final), $IMAGES,
            "$name ($kind): the backend served every image";
        # Each 421 was followed by the same request on another connection
        # (the favicon's, too, whose answer is a 404).
        my @rows = $x->{rows}->@*;
        my $retried = 0;
        for my $i (grep { $rows[$_]{status} == 421 } 0 .. $#rows) {
            $retried++ if grep { $_->{url} eq $rows[$i]{url}
                && $_->{status} != 421 && $_->{cport} ne $rows[$i]{cport} }
                @rows[$i + 1 .. $#rows];
        }
        is $retried, $x->{n421},
            "$name ($kind): each of $x->{n421} 421s was retried on a new"
            . ' connection (backend log)';
        my ($seen, $what) = $v->{browser} eq 'chromium'
            ? ($b->{restarts}, 'NetLog: HTTP_TRANSACTION_RESTART_MISDIRECTED_'
                . 'REQUEST')
            : ($b->{restarted}, 'HTTP log: Misdirected Request, restarting'
                . ' transaction');
        is $seen, $x->{n421}, "$name ($kind): the browser retried each 421"
            . " ($what)";
        note "$name ($kind): Chromium's NetLog shows $b->{ip_pooled}"
            . ' requests sent on the connection of another name'
            if defined $b->{ip_pooled};
        $x->{wrong} = 0;
    }
    # The fix keeps the reuse that browsers do; it is served now.
    if (!$v->{n421}) {
        my $m = $r->{module};
        my $reused = grep { $_->{host} =~ /^\Q$v->{assets}\E/
            && $_->{sni} eq 'a.wild.test' && $_->{status} == 200 }
            $m->{rows}->@*;
        note "$name: $reused images came over a.wild.test's connection";
        $v->{reused_note} = $reused;
    }
}

# ---------------------------------------------------------------- summary

$_->stop for values %BACKEND;
my $elapsed = time - $T0;
print "\nclients: the runs (status counts as the module's backend saw them)\n";
printf "  %-20s %-42s %-6s %s\n", @$_ for @TABLE;
for my $case (@CASES) {
    for my $v ($case->{variants}->@*) {
        print "  $case->{name}, $v->{name}: $v->{sessions}\n" if $v->{sessions};
        print "  $case->{name}, $v->{name}: $v->{reused_note} images"
            . " served over the first name's connection\n"
            if defined $v->{reused_note};
    }
}
my $tb = Test::More->builder;
my @results = $tb->summary;
my $failed = grep { !$_ } @results;
done_testing();
printf "clients: %d passed, %d failed in %.0fs%s\n", @results - $failed,
    $failed, $elapsed, $EXPECT ? '' : ' (CLIENTS_EXPECT_CAUSE=0)';
