# SNI is client-controlled: control characters, quotes, backslashes,
# non-ASCII bytes and 255-byte names reach error_log and the variables
# escaped, and can never end a field or forge a line.
use v5.36;
use Test::More;
use lib 't/lib';
use MisdirectTest;
use MisdirectCase;

# The module judges these requests where mod_ssl serves them: $j relaxes
# SSLVHostSNIPolicy to insecure (and rejects cert-mismatch explicitly, as
# insecure makes it default to report).  Under the default policy ($s)
# mod_ssl refuses them itself, and the module's explanation carries the
# same SNI.
my $j = MisdirectTest->new(name => 'escape',
    expect_log => ['MISDIRECT001'],
    global => "SSLVHostSNIPolicy insecure\n"
        . 'MisdirectPolicy cert-mismatch reject');
my $s = MisdirectTest->new(name => 'escape-secure',
    expect_log => [qw(AH02032 MISDIRECT006)]);
my $request = "GET / HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n";

# Client bytes that could end a field, start a line or drive a terminal
# are percent-encoded: %XX for control bytes, bytes above 0x7e, '"', '\'
# and '%' (httpd's own error_log escaping leaves that form alone).
my @SNI = (
    [ "\e[31mred\e[0m.test", '%1b[31mred%1b[0m.test', 'terminal escapes' ],
    [ qq{evil" reason="forged.test}, 'evil%22 reason=%22forged.test',
      'quotes' ],
    [ 'back\\slash.test', 'back%5cslash.test', 'a backslash' ],
    [ "line\nbreak.test", 'line%0abreak.test', 'a newline' ],
    [ "caf\xc3\xa9.test", 'caf%c3%a9.test', 'UTF-8 bytes' ],
    [ "tab\there.test", 'tab%09here.test', 'a tab' ],
    [ "100%.test", '100%25.test', 'a percent sign' ],
    [ join('.', ('a' x 63) x 4) =~ s/^a{3}/\x7f\x01\x02/r,
      '%7f%01%02' . join('.', 'a' x 60, ('a' x 63) x 3),
      'a 255-byte name with DEL and control bytes' ],
);

# The error_log lines since $mark, once the line numbered $logno is there.
sub lines_since ($srv, $mark, $logno) {
    $srv->wait_error_log(qr/MISDIRECT$logno/, $mark);
    my $log = $srv->error_log_since($mark);
    return ($log, split /\n/, $log);
}

for my $case (@SNI) {
    my ($sni, $escaped, $what) = @$case;
    my $mark = $j->mark;
    my ($st) = raw_tls($j, sni => $sni, request => $request);
    is $st, 421, "SNI with $what: 421 (it names no vhost)";
    my ($log, @lines) = lines_since($j, $mark, '001');
    my @diag = grep { /MISDIRECT001/ } @lines;
    is scalar(@diag), 1, "$what: one diagnosis line";
    ok !(grep { !/^\[/ } @lines), "$what: every error_log line is a real one";
    ok $log !~ /[\x00-\x08\x0b-\x1f\x7f-\xff]/,
        "$what: no raw control or non-ASCII byte in error_log";
    like $diag[0] // '', qr/ sni="\Q$escaped\E" /,
        "$what: the SNI field holds the escaped bytes";
    my @fields = ($diag[0] // '') =~ / (\w+)="[^"]*"/g;
    is_deeply [grep { $_ eq 'reason' || $_ eq 'sni' } @fields],
        ['reason', 'sni'], "$what: no field was forged";
    my $acc = $j->access_log_since($mark);
    like $acc, qr/ \Q$escaped\E default\.test alpha\.test "GET /,
        "$what: MISDIRECT_SNI reaches access_log escaped the same way";

    # mod_ssl's 421, explained.
    $mark = $s->mark;
    ($st) = raw_tls($s, sni => $sni, request => $request);
    is $st, 421, "secure, SNI with $what: mod_ssl's 421";
    ($log, @lines) = lines_since($s, $mark, '006');
    @diag = grep { /\[misdirect:/ } @lines;
    is scalar(@diag), 1, "secure, $what: one explanation line";
    like $diag[0] // '', qr/MISDIRECT006: mod_ssl answered 421: .* sni="\Q$escaped\E" /,
        "secure, $what: it holds the escaped SNI";
    ok !(grep { !/^\[/ } @lines),
        "secure, $what: every error_log line is a real one";
    ok $log !~ /[\x00-\x08\x0b-\x1f\x7f-\xff]/,
        "secure, $what: no raw control or non-ASCII byte in error_log";
    @fields = ($diag[0] // '') =~ / (\w+)="[^"]*"/g;
    is_deeply [grep { $_ eq 'reason' || $_ eq 'sni' || $_ eq 'by' } @fields],
        ['reason', 'sni', 'by'], "secure, $what: no field was forged";
}

done_testing;
