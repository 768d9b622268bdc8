# A bad directive argument fails `apache2 -t` with a message that names the
# directive, the value and what is accepted; good ones pass.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;

my @BAD = (
    [ 'Misdirect Maybe', qr/Misdirect: Maybe: expected On, Off or ReportOnly/ ],
    [ 'MisdirectPolicy sni-mismatch reject',
      qr/MisdirectPolicy: sni-mismatch: unknown check, expected scheme-mismatch, sni-missing, cert-mismatch, sni-host-mismatch, unknown-host, port-mismatch or forwarded-host/ ],
    [ 'MisdirectPolicy cert-mismatch deny',
      qr/MisdirectPolicy: deny: unknown action for cert-mismatch, expected reject, report or allow/ ],
    [ 'MisdirectPolicy cert-mismatch', qr/MisdirectPolicy takes two arguments/ ],
    [ 'MisdirectAllow https://example.com/',
      qr{MisdirectAllow: https://example.com/: not a host name} ],
    [ 'MisdirectAllow example.com:443',
      qr/MisdirectAllow: example.com:443: not a host name/ ],
    [ 'MisdirectAllow [::1', qr/MisdirectAllow: \[::1: not a host name/ ],
    [ 'MisdirectExempt .well-known/',
      qr{MisdirectExempt: \.well-known/: expected a URL-path starting with /} ],
    [ 'MisdirectTrustedProxy 10.0.0.0/33',
      qr{MisdirectTrustedProxy: 10\.0\.0\.0/33: the mask must be a prefix length \(1-32 for IPv4, 1-128 for IPv6\)} ],
    [ 'MisdirectTrustedProxy 2001:db8::/129',
      qr{MisdirectTrustedProxy: 2001:db8::/129: the mask must be a prefix length} ],
    [ 'MisdirectTrustedProxy 10.0.0.0/255.0.255.0',
      qr{MisdirectTrustedProxy: 10\.0\.0\.0/255\.0\.255\.0: the mask must be a prefix length .*contiguous IPv4 netmask} ],
    [ 'MisdirectTrustedProxy proxy.example.com',
      qr/MisdirectTrustedProxy: proxy\.example\.com: not a whole IPv4 or IPv6 address/ ],
    # APR would read these as a partial address ("10" is 10.0.0.0/8) or
    # drop the host bits: refused, so that no range is wider than written.
    [ 'MisdirectTrustedProxy 10',
      qr{MisdirectTrustedProxy: 10: not a whole IPv4 or IPv6 address \(write a range as 10\.0\.0\.0/8\)} ],
    [ 'MisdirectTrustedProxy 192.168',
      qr{MisdirectTrustedProxy: 192\.168: not a whole IPv4 or IPv6 address} ],
    [ 'MisdirectTrustedProxy 10.0.0.1/8',
      qr{MisdirectTrustedProxy: 10\.0\.0\.1/8: the address has bits set past the mask} ],
    [ 'MisdirectTrustedProxy 2001:db8::1/32',
      qr{MisdirectTrustedProxy: 2001:db8::1/32: the address has bits set past the mask} ],
    [ 'MisdirectLint Sometimes', qr/MisdirectLint: Sometimes: expected On or Off/ ],
    [ 'MisdirectLogLimit -1',
      qr/MisdirectLogLimit: -1: expected a number of lines per second from 0 \(no limit\) to 1000000/ ],
    [ 'MisdirectLogLimit ten', qr/MisdirectLogLimit: ten: expected a number/ ],
);

for my $case (@BAD) {
    my ($line, $want) = @$case;
    my ($rc, $out) = MisdirectTest::configtest(name => 'configtest',
        global => $line);
    isnt $rc, 0, "'$line' fails configtest";
    like $out, $want, "... and says why";
}

# Server-config-only directives refuse a <VirtualHost>.
for my $line ('MisdirectLogLimit 5', 'MisdirectLint Off') {
    my ($rc, $out) = MisdirectTest::configtest(name => 'configtest',
        vhost => { 'tls:alpha.test' => $line });
    my ($name) = split ' ', $line;
    isnt $rc, 0, "'$line' in a <VirtualHost> fails configtest";
    like $out, qr/\Q$name\E cannot occur within <VirtualHost> section/,
        '... naming the directive';
}

# Every directive with good values, in both contexts.
my $good = <<'EOF_CONF';
Misdirect ReportOnly
MisdirectPolicy scheme-mismatch report
MisdirectPolicy SNI-Missing Allow
MisdirectAllow example.com *.example.net 192.0.2.1 [2001:db8::1] 2001:db8::2
MisdirectExempt /.well-known/acme-challenge/ /healthz
MisdirectTrustedProxy 10.0.0.0/8 192.0.2.7 2001:db8::/32 172.16.0.0/255.240.0.0 ::1
MisdirectLint Off
MisdirectLogLimit 0
EOF_CONF
my ($rc, $out) = MisdirectTest::configtest(name => 'configtest',
    global => $good, vhost => { 'tls:alpha.test' => join "\n",
        'Misdirect On', 'MisdirectPolicy cert-mismatch allow',
        'MisdirectAllow alpha.example', 'MisdirectExempt /x',
        'MisdirectTrustedProxy 127.0.0.1' });
is $rc, 0, 'every directive with good values passes configtest'
    or diag $out;
like $out, qr/Syntax OK/, 'Syntax OK';

done_testing;
