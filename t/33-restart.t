# The handshake vhost stays exactly mod_ssl's choice across graceful and
# full restarts: SSL_CTX addresses are reused from one configuration pass
# to the next, so a map kept from an earlier pass would name stale vhosts.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

my @SNI = qw(alpha.test beta.test shared1.test shared2.test a.wild.test
    b.wild.test);

sub handshake_vhosts ($s, $label) {
    # Host default.test selects the default vhost, so R != H and the
    # request records H in MISDIRECT_HANDSHAKE_VHOST.
    for my $sni (@SNI) {
        my $r = probe($s, sni => $sni, host => 'default.test');
        is $r->{access}{hvhost}, $sni, "$label: SNI $sni -> handshake vhost $sni";
    }
    my $r = probe($s, sni => undef, host => 'alpha.test');
    is $r->{access}{hvhost}, 'default.test', "$label: no SNI -> default.test";
}

# SSLVHostSNIPolicy insecure: mod_ssl serves these requests across vhosts
# with other certificates, so that they reach the module's check and
# record H; cert-mismatch allowed: they are served.
my $s = MisdirectTest->new(name => 'restart',
    global => "SSLVHostSNIPolicy insecure\nMisdirectPolicy cert-mismatch allow");
handshake_vhosts($s, 'start');
$s->graceful;
handshake_vhosts($s, 'after graceful');
$s->restart;
handshake_vhosts($s, 'after restart');
$s->graceful;
$s->graceful;
handshake_vhosts($s, 'after two more gracefuls');

# Reorder the TLS vhosts (all but the default one) and reload: contexts
# created at the same addresses now belong to other vhosts.
{
    my $file = $s->conf_file;
    open my $in, '<', $file or die "$file: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    my $tls = $s->tls_port;
    my @blocks = $conf =~ m{(<VirtualHost 127\.0\.0\.1:$tls>.*?</VirtualHost>\n)}sg;
    is scalar(@blocks), 8, 'found the eight TLS vhosts';
    my ($first, @rest) = @blocks;
    my @order = ($first, reverse @rest);
    $conf =~ s{<VirtualHost 127\.0\.0\.1:$tls>.*?</VirtualHost>\n}{shift @order}sge;
    open my $out, '>', $file or die "$file: $!";
    print $out $conf;
    close $out;
}
$s->graceful;
handshake_vhosts($s, 'after reordering the vhosts');
unlike $s->error_log_since, qr/exit signal|Segmentation/, 'no child crashed';

done_testing;
