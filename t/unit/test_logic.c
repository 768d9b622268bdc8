/*
 * Unit tests of the pure decisions in src/misdirect_logic.c, printed as
 * TAP for prove (t/10-unit.t runs this binary).
 */

#include "misdirect_logic.h"

#include <stdio.h>
#include <string.h>

static int test_no;
static int test_failed;

static void ok(int cond, const char *what)
{
    test_no++;
    if (!cond) {
        test_failed++;
    }
    printf("%sok %d - %s\n", cond ? "" : "not ", test_no, what);
}

static void is_str(const char *got, const char *want, const char *what)
{
    int same = got && want && !strcmp(got, want);

    ok(same, what);
    if (!same) {
        printf("#   got: '%s'\n#   expected: '%s'\n", got ? got : "(null)",
               want ? want : "(null)");
    }
}

static void is_int(long got, long want, const char *what)
{
    ok(got == want, what);
    if (got != want) {
        printf("#   got: %ld\n#   expected: %ld\n", got, want);
    }
}

#define B(c) MISDIRECT_BIT(MISDIRECT_CHECK_##c)

/* Facts of a TLS request whose SNI and host agree: nothing fires. */
static misdirect_facts clean_tls(void)
{
    misdirect_facts f;

    memset(&f, 0, sizeof(f));
    f.tls = 1;
    f.handshake_known = 1;
    f.sni_sent = 1;
    f.name_based = 1;
    f.same_vhost = 1;
    f.host_sent = 1;
    f.host_known = 1;
    f.local_port = 443;
    return f;
}

static void test_names(void)
{
    int i;

    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        ok(misdirect_check_parse(misdirect_check_name(i)) == i,
           "check name round-trips");
    }
    ok(misdirect_check_parse("SNI-Missing") == MISDIRECT_CHECK_SNI_MISSING,
       "check names are case-insensitive");
    ok(misdirect_check_parse("sni") == -1, "unknown check is refused");
    ok(misdirect_action_parse("Reject") == MISDIRECT_REJECT,
       "action parse");
    ok(misdirect_action_parse("deny") == -1, "unknown action is refused");
    ok(misdirect_default_action(MISDIRECT_CHECK_SCHEME) == MISDIRECT_REJECT
       && misdirect_default_action(MISDIRECT_CHECK_CERT) == MISDIRECT_REJECT
       && misdirect_default_action(MISDIRECT_CHECK_SNI_MISSING)
          == MISDIRECT_ALLOW
       && misdirect_default_action(MISDIRECT_CHECK_SNI_HOST)
          == MISDIRECT_ALLOW
       && misdirect_default_action(MISDIRECT_CHECK_UNKNOWN_HOST)
          == MISDIRECT_ALLOW
       && misdirect_default_action(MISDIRECT_CHECK_PORT) == MISDIRECT_ALLOW,
       "defaults follow docs/checks.md");
}

static void test_evaluate(void)
{
    misdirect_facts f = clean_tls();

    ok(misdirect_evaluate(&f) == 0, "matching SNI and host: nothing fires");

    f = clean_tls();
    f.scheme = "http";
    ok(misdirect_evaluate(&f) == B(SCHEME), "http:// target on TLS");
    f.scheme = "HTTPS";
    ok(misdirect_evaluate(&f) == 0, "https:// target on TLS is fine");
    f.tls = 0;
    ok(misdirect_evaluate(&f) & B(SCHEME), "https:// target on plain");
    f.scheme = "ftp";
    ok(!(misdirect_evaluate(&f) & B(SCHEME)), "other schemes are not ours");

    f = clean_tls();
    f.sni_sent = 0;
    ok(misdirect_evaluate(&f) == B(SNI_MISSING), "no SNI, name-based");
    f.name_based = 0;
    ok(misdirect_evaluate(&f) == 0, "no SNI on an IP-based address");

    f = clean_tls();
    f.same_vhost = 0;
    ok(misdirect_evaluate(&f) == B(CERT), "R != H, not covered");
    f.cert_covers = 1;
    ok(misdirect_evaluate(&f) == B(SNI_HOST), "R != H, covered");
    f.handshake_known = 0;
    ok(misdirect_evaluate(&f) == 0, "unknown H: no comparison");

    f = clean_tls();
    f.host_known = 0;
    ok(misdirect_evaluate(&f) == B(UNKNOWN_HOST), "unknown host");
    f.host_sent = 0;
    ok(misdirect_evaluate(&f) == B(UNKNOWN_HOST), "no host at all");

    f = clean_tls();
    f.host_port = 8443;
    ok(misdirect_evaluate(&f) == B(PORT), "explicit other port");
    f.host_port = 443;
    ok(misdirect_evaluate(&f) == 0, "explicit same port");

    f = clean_tls();
    f.tls = 0;
    f.handshake_known = 0;
    f.sni_sent = 0;
    ok(misdirect_evaluate(&f) == 0, "plain connection: no TLS checks");
}

static void test_forgive(void)
{
    unsigned int all = (1u << MISDIRECT_CHECK_COUNT) - 1;

    ok(misdirect_forgive(all, 1, 0) == B(SCHEME),
       "MisdirectAllow leaves only scheme-mismatch");
    ok(misdirect_forgive(all, 0, 1)
       == (B(SCHEME) | B(UNKNOWN_HOST) | B(PORT) | B(FORWARDED)),
       "a trusted proxy is forgiven the TLS checks only");
    ok(misdirect_forgive(all, 0, 0) == all, "nothing to forgive");
}

static void test_decide(void)
{
    misdirect_action_e a[MISDIRECT_CHECK_COUNT];
    misdirect_decision d;
    char buf[256];
    int i;

    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        a[i] = misdirect_default_action(i);
    }

    misdirect_decide(B(CERT) | B(UNKNOWN_HOST), a, MISDIRECT_MODE_ON, 0, &d);
    ok(d.action == MISDIRECT_REJECT && d.reason == MISDIRECT_CHECK_CERT,
       "cert-mismatch rejects by default");
    is_str(misdirect_format_checks(&d, buf, sizeof(buf)),
           "cert-mismatch:reject,unknown-host:allow",
           "checks list every fired check with its action");

    misdirect_decide(B(SNI_MISSING) | B(CERT), a, MISDIRECT_MODE_ON, 0, &d);
    ok(d.reason == MISDIRECT_CHECK_CERT,
       "the reason is the first rejecting check, not the first fired");

    misdirect_decide(B(SNI_MISSING) | B(PORT), a, MISDIRECT_MODE_ON, 0, &d);
    ok(d.action == MISDIRECT_ALLOW && d.reason == MISDIRECT_CHECK_SNI_MISSING,
       "without a reject or a report the reason is the first that fired");

    a[MISDIRECT_CHECK_UNKNOWN_HOST] = MISDIRECT_REPORT;
    misdirect_decide(B(SNI_MISSING) | B(UNKNOWN_HOST), a, MISDIRECT_MODE_ON,
                     0, &d);
    ok(d.action == MISDIRECT_REPORT
       && d.reason == MISDIRECT_CHECK_UNKNOWN_HOST,
       "without a reject the reason is the first reported check");
    a[MISDIRECT_CHECK_UNKNOWN_HOST] = misdirect_default_action(
                                          MISDIRECT_CHECK_UNKNOWN_HOST);

    misdirect_decide(B(CERT), a, MISDIRECT_MODE_REPORT_ONLY, 0, &d);
    ok(d.action == MISDIRECT_WOULD_REJECT
       && d.check_action[MISDIRECT_CHECK_CERT] == MISDIRECT_WOULD_REJECT
       && d.reason == MISDIRECT_CHECK_CERT,
       "ReportOnly turns reject into would-reject");
    is_str(misdirect_action_name(d.action), "would-reject",
           "would-reject is named so");
    is_int(misdirect_action_parse("would-reject"), -1,
           "but no directive takes it");
    misdirect_decide(B(CERT) | B(UNKNOWN_HOST), a, MISDIRECT_MODE_REPORT_ONLY,
                     0, &d);
    a[MISDIRECT_CHECK_UNKNOWN_HOST] = MISDIRECT_REPORT;
    misdirect_decide(B(CERT) | B(UNKNOWN_HOST), a, MISDIRECT_MODE_REPORT_ONLY,
                     0, &d);
    ok(d.reason == MISDIRECT_CHECK_CERT,
       "under ReportOnly the would-reject check is the reason, not a report");
    a[MISDIRECT_CHECK_UNKNOWN_HOST] = misdirect_default_action(
                                          MISDIRECT_CHECK_UNKNOWN_HOST);

    misdirect_decide(B(CERT) | B(SCHEME), a, MISDIRECT_MODE_ON, 1, &d);
    ok(d.action == MISDIRECT_ALLOW && d.fired == (B(CERT) | B(SCHEME)),
       "an exempt path is never rejected but still recorded");

    a[MISDIRECT_CHECK_UNKNOWN_HOST] = MISDIRECT_REPORT;
    misdirect_decide(B(UNKNOWN_HOST), a, MISDIRECT_MODE_ON, 0, &d);
    ok(d.action == MISDIRECT_REPORT, "policy report");
    a[MISDIRECT_CHECK_CERT] = MISDIRECT_ALLOW;
    misdirect_decide(B(CERT), a, MISDIRECT_MODE_ON, 0, &d);
    ok(d.action == MISDIRECT_ALLOW, "policy allow overrides a reject default");

    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        a[i] = MISDIRECT_REJECT;
    }
    misdirect_decide((1u << MISDIRECT_CHECK_COUNT) - 1, a, MISDIRECT_MODE_ON,
                     0, &d);
    is_str(misdirect_format_checks(&d, buf, sizeof(buf)),
           "scheme-mismatch:reject,sni-missing:reject,cert-mismatch:reject,"
           "sni-host-mismatch:reject,unknown-host:reject,"
           "port-mismatch:reject,forwarded-host:reject",
           "all seven fit the buffer");
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        a[i] = MISDIRECT_REJECT;
    }
    misdirect_decide((1u << MISDIRECT_CHECK_COUNT) - 1, a,
                     MISDIRECT_MODE_REPORT_ONLY, 0, &d);
    ok(strlen(misdirect_format_checks(&d, buf, sizeof(buf))) > 180,
       "all seven as would-reject fit too");
    ok(d.reason == MISDIRECT_CHECK_SCHEME, "table order picks the reason");
}

static void test_ssl_forbids(void)
{
    /* Levels: 0 none, 1 optional, 2 require. */
    is_int(misdirect_ssl_forbids(0, 0, 1), 0,
           "no client verification: no 403");
    is_int(misdirect_ssl_forbids(1, 1, 1), 0,
           "the handshake's own level is no stricter: no 403");
    is_int(misdirect_ssl_forbids(2, 2, 0), 0, "require after require: no 403");
    is_int(misdirect_ssl_forbids(2, 1, 1), 0, "a laxer vhost: no 403");
    is_int(misdirect_ssl_forbids(0, 1, 1), 1,
           "TLS 1.3: optional after none is 403 (no post-handshake auth)");
    is_int(misdirect_ssl_forbids(0, 1, 0), 0,
           "TLS 1.2: optional after none renegotiates and passes");
    is_int(misdirect_ssl_forbids(1, 2, 0), 1,
           "TLS 1.2: require after optional is 403 without a certificate");
    is_int(misdirect_ssl_forbids(0, 2, 1), 1, "TLS 1.3: require after none");
    is_int(misdirect_ssl_forbids(1, 2, 1), 1,
           "TLS 1.3: require after optional");
}

static void test_cidr(void)
{
    ok(misdirect_cidr_check("10.0.0.0", "8") == 0, "a network range");
    ok(misdirect_cidr_check("192.0.2.7", NULL) == 0, "a single address");
    ok(misdirect_cidr_check("2001:db8::", "32") == 0, "an IPv6 range");
    ok(misdirect_cidr_check("172.16.0.0", "255.240.0.0") == 0,
       "a dotted netmask");
    ok(misdirect_cidr_check("10", "8") == MISDIRECT_CIDR_NOT_ADDRESS
       && misdirect_cidr_check("10", NULL) == MISDIRECT_CIDR_NOT_ADDRESS,
       "a partial address is refused");
    ok(misdirect_cidr_check("10.0.0.1", "8") == MISDIRECT_CIDR_HOST_BITS,
       "host bits past the mask are refused");
    ok(misdirect_cidr_check("2001:db8::1", "64") == MISDIRECT_CIDR_HOST_BITS,
       "likewise for IPv6");
    ok(misdirect_cidr_check("10.0.0.0", "33") == MISDIRECT_CIDR_BAD_MASK
       && misdirect_cidr_check("::", "129") == MISDIRECT_CIDR_BAD_MASK,
       "a prefix longer than the address");
    ok(misdirect_cidr_check("192.168.1.0", "255.0.255.0")
       == MISDIRECT_CIDR_BAD_MASK, "a netmask with a hole");
    ok(misdirect_cidr_check("10.0.0.0", "") == MISDIRECT_CIDR_BAD_MASK,
       "an empty mask");
    ok(misdirect_cidr_check("0.0.0.0", "0") == MISDIRECT_CIDR_BAD_MASK
       && misdirect_cidr_check("::", "0") == MISDIRECT_CIDR_BAD_MASK,
       "no mask that trusts every peer");
    ok(misdirect_cidr_check("10.0.0.1", "32") == 0
       && misdirect_cidr_check("::1", "128") == 0, "full-length masks");
}

static void test_wildcard(void)
{
    ok(misdirect_wildcard_match("*.example.com", "www.example.com"),
       "* matches a label");
    ok(misdirect_wildcard_match("*.example.com", "a.b.example.com"),
       "* matches across dots, as ServerAlias does");
    ok(!misdirect_wildcard_match("*.example.com", "example.com"),
       "*. needs something before the dot");
    ok(misdirect_wildcard_match("WWW.Example.COM", "www.example.com"),
       "case-insensitive");
    ok(misdirect_wildcard_match("www?.example.com", "www1.example.com"),
       "? is one character");
    ok(!misdirect_wildcard_match("www?.example.com", "www.example.com"),
       "? is exactly one character");
    ok(misdirect_wildcard_match("*", ""), "* matches empty");
    ok(!misdirect_wildcard_match("a*b*c*d*e*f*g",
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
       "pathological pattern ends (and fails)");
    ok(misdirect_wildcard_match("*b*", "aaab"), "backtracking");
}

static void test_host_matches(void)
{
    const char *names[] = { "www.alpha.test", NULL };
    const char *wild[] = { "*.b.wild.test" };

    ok(misdirect_host_matches("alpha.test", "alpha.test", names, 2, NULL, 0),
       "ServerName");
    ok(misdirect_host_matches("WWW.ALPHA.TEST", "alpha.test", names, 2,
                              NULL, 0), "ServerAlias, any case");
    ok(!misdirect_host_matches("beta.test", "alpha.test", names, 2, wild, 1),
       "another name");
    ok(misdirect_host_matches("x.b.wild.test", "b.wild.test", NULL, 0, wild,
                              1), "wildcard ServerAlias");
    ok(!misdirect_host_matches("x.a.wild.test", "b.wild.test", NULL, 0, wild,
                               1), "wildcard does not overreach");
    is_int(misdirect_host_matches("alpha.test", "alpha.test", names, 2, NULL,
                                  0), MISDIRECT_NAME_SERVER,
           "which name: ServerName");
    is_int(misdirect_host_matches("www.alpha.test", "alpha.test", names, 2,
                                  wild, 1), MISDIRECT_NAME_ALIAS(0),
           "which name: the first ServerAlias");
    is_int(misdirect_host_matches("x.b.wild.test", "b.wild.test", NULL, 0,
                                  wild, 1), MISDIRECT_NAME_PATTERN,
           "which name: only a pattern, so no one name");
}

static void test_cover_memo(void)
{
    uint64_t slots[8] = { 0 };
    misdirect_cover_memo m = { slots, 7 };
    uint64_t a = misdirect_cover_key(3, 0, 5, MISDIRECT_NAME_SERVER);
    uint64_t b = misdirect_cover_key(3, 1, 5, MISDIRECT_NAME_SERVER);
    uint64_t c = misdirect_cover_key(5, 0, 3, MISDIRECT_NAME_ALIAS(0));
    int i, lost = 0, wrong = 0;

    ok(a && b && c && a != b && a != c && b != c,
       "keys differ by certificate and by name");
    ok(!misdirect_cover_key(0, 0, 0, 0), "no name: not memoised");
    ok(!misdirect_cover_key(0, 0, 0, MISDIRECT_NAME_PATTERN),
       "a wildcard match: not memoised");
    ok(!misdirect_cover_key(0, 8, 0, 1), "too many certificates");
    ok(!misdirect_cover_key(1u << 22, 0, 0, 1), "too many vhosts");
    ok(!misdirect_cover_key(0, 0, 0, 1 << 15), "too many names");
    is_int(misdirect_cover_get(&m, a), -1, "empty memo knows nothing");
    misdirect_cover_put(&m, a, 1);
    misdirect_cover_put(&m, b, 0);
    is_int(misdirect_cover_get(&m, a) != 0, 1, "covered, or forgotten");
    is_int(misdirect_cover_get(&m, b) != 1, 1, "not covered, or forgotten");
    is_int(misdirect_cover_get(NULL, a), -1, "no memo knows nothing");
    /* Far more keys than slots: every answer is its own key's or none. */
    for (i = 0; i < 2000; i++) {
        misdirect_cover_put(&m, misdirect_cover_key(i % 97, i % 3, i % 89,
                                                    1 + i % 5), i % 2);
    }
    for (i = 0; i < 2000; i++) {
        int got = misdirect_cover_get(&m, misdirect_cover_key(i % 97, i % 3,
                                                              i % 89,
                                                              1 + i % 5));

        lost += got < 0;
        wrong += got >= 0 && got != i % 2;
    }
    is_int(wrong, 0, "a crowded memo never answers for another key");
    ok(lost > 0 && lost < 2000, "and keeps what its slots hold");
}

static void test_normalize(void)
{
    char out[300];

    ok(misdirect_host_normalize("WWW.Example.COM.", out, sizeof(out)) == 0,
       "name normalises");
    is_str(out, "www.example.com", "lower case, trailing dot gone");
    ok(misdirect_host_normalize("[0:0::1]", out, sizeof(out)) == 0,
       "bracketed IPv6");
    is_str(out, "::1", "IPv6 in canonical form");
    ok(misdirect_host_normalize("2001:DB8:0:0::7", out, sizeof(out)) == 0,
       "bare IPv6");
    is_str(out, "2001:db8::7", "bare IPv6 canonical");
    ok(misdirect_host_normalize("*.cdn.test", out, sizeof(out)) == 0
       && !strcmp(out, "*.cdn.test"), "wildcards are kept");
    ok(misdirect_host_normalize("example.com:443", out, sizeof(out)) == -1,
       "a port is refused");
    ok(misdirect_host_normalize("http://x", out, sizeof(out)) == -1,
       "a URL is refused");
    ok(misdirect_host_normalize("", out, sizeof(out)) == -1, "empty refused");
    ok(misdirect_host_normalize(".", out, sizeof(out)) == -1,
       "a lone dot is refused");
    ok(misdirect_host_normalize("example.com..", out, sizeof(out)) == -1,
       "two trailing dots are refused, not kept as one");
    ok(misdirect_host_normalize("a..b", out, sizeof(out)) == -1
       && misdirect_host_normalize(".a", out, sizeof(out)) == -1,
       "empty labels are refused");
    ok(misdirect_host_normalize("a b", out, sizeof(out)) == -1,
       "space refused");
    ok(misdirect_host_normalize("[::1", out, sizeof(out)) == -1,
       "unclosed bracket refused");
    ok(misdirect_host_normalize("abc", out, 3) == -1,
       "too long for the buffer is refused, not cut");
    ok(misdirect_ip_literal("127.0.0.1") == 4
       && misdirect_ip_literal("::1") == 6
       && misdirect_ip_literal("example.com") == 0
       && misdirect_ip_literal("1.2.3") == 0, "IP literal detection");
}

static void test_paths(void)
{
    ok(misdirect_path_under("/.well-known/acme-challenge/x",
                            "/.well-known/acme-challenge/"), "under prefix/");
    ok(misdirect_path_under("/.well-known/acme-challenge",
                            "/.well-known/acme-challenge"), "equal");
    ok(misdirect_path_under("/.well-known/acme-challenge/x",
                            "/.well-known/acme-challenge"),
       "under prefix without slash");
    ok(!misdirect_path_under("/.well-known/acme-challengeX",
                             "/.well-known/acme-challenge"),
       "segment boundary respected");
    ok(!misdirect_path_under("/private", "/.well-known/"), "elsewhere");
    ok(misdirect_path_under("/anything", "/"), "/ covers all");
}

static void test_escape(void)
{
    char out[3 * 40 + 1];

    is_str(misdirect_escape_into("alpha.test", out), "alpha.test",
           "host names pass unchanged");
    is_str(misdirect_escape_into("a\"b\\c%d", out), "a%22b%5cc%25d",
           "quote, backslash and percent are encoded");
    is_str(misdirect_escape_into("\x1b[0m\n\t\x7f", out), "%1b[0m%0a%09%7f",
           "control bytes are encoded");
    is_str(misdirect_escape_into("caf\xc3\xa9", out), "caf%c3%a9",
           "bytes above 0x7e are encoded");
    is_str(misdirect_escape_into("", out), "", "empty stays empty");
    is_str(misdirect_escape_into("\xff\xff\xff", out), "%ff%ff%ff",
           "three bytes out per byte in at most");
    is_int(misdirect_escape_needed("alpha.test"), 0,
           "a host name needs no escaping");
    is_int(misdirect_escape_needed("a%b"), 1, "a percent does");
    is_int(misdirect_escape_needed("caf\xc3\xa9"), 1, "so do high bytes");
    is_int(misdirect_escape_needed("x\x7f"), 1, "and DEL");
    is_int(misdirect_escape_needed(""), 0, "the empty string does not");
}

/* A ClientHello with the given extensions block (without its length),
 * built into buf; returns its length. */
static size_t hello(unsigned char *buf, const unsigned char *ext,
                    size_t ext_len)
{
    size_t n = 4, body;

    buf[n++] = 3;                   /* legacy_version 3.3 */
    buf[n++] = 3;
    memset(buf + n, 0x5a, 32);      /* random */
    n += 32;
    buf[n++] = 0;                   /* no session id */
    buf[n++] = 0;                   /* one cipher suite */
    buf[n++] = 2;
    buf[n++] = 0x13;
    buf[n++] = 0x01;
    buf[n++] = 1;                   /* null compression */
    buf[n++] = 0;
    buf[n++] = (unsigned char)(ext_len >> 8);
    buf[n++] = (unsigned char)ext_len;
    memcpy(buf + n, ext, ext_len);
    n += ext_len;
    body = n - 4;
    buf[0] = 1;
    buf[1] = (unsigned char)(body >> 16);
    buf[2] = (unsigned char)(body >> 8);
    buf[3] = (unsigned char)body;
    return n;
}

static void test_cause(void)
{
    misdirect_facts f = clean_tls();
    misdirect_cause_facts cf;

    memset(&cf, 0, sizeof(cf));
    cf.reason = MISDIRECT_CHECK_CERT;
    cf.sni_named = 1;
    cf.request_no = 1;
    f.same_vhost = 0;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "client-override",
           "cause: first request, another host, no gateway");
    cf.gateway = 1;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "other",
           "cause: first request through a gateway with a fixed SNI");
    cf.request_no = 2;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "pool-reuse",
           "cause: a later request through a gateway");
    cf.gateway = 0;
    cf.h2 = 1;
    f.cert_covers = 1;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "browser-reuse",
           "cause: h2, covered, no gateway");
    f.cert_covers = 0;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "pool-reuse",
           "cause: h2 reuse for a name the certificate does not cover");
    cf.sni_port = 1;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "sni-with-port",
           "cause: an SNI with a port");
    f.sni_sent = 0;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "no-sni",
           "cause: no SNI");
    cf.reason = MISDIRECT_CHECK_FORWARDED;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "host-rewritten",
           "cause: forwarded-host decides first");
    f = clean_tls();
    f.host_known = 0;
    cf.reason = MISDIRECT_CHECK_UNKNOWN_HOST;
    cf.sni_port = 0;
    is_str(misdirect_cause_name(misdirect_cause(&f, &cf)), "unknown-host",
           "cause: a host no vhost names");
    ok(misdirect_sni_has_port("b.test:8443"), "SNI b.test:8443 has a port");
    ok(!misdirect_sni_has_port("::1"), "::1 has none");
    ok(!misdirect_sni_has_port("b.test:"), "b.test: has none");
    ok(!misdirect_sni_has_port(NULL), "no SNI has none");
}

static void test_forwarded(void)
{
    char out[300];

    ok(misdirect_forwarded_host("Shop.Test:8443, proxy.test", NULL, out,
                                sizeof(out)) == 0
       && !strcmp(out, "shop.test"),
       "X-Forwarded-Host: the first entry, port dropped, lower case");
    ok(misdirect_forwarded_host(NULL, "for=1.2.3.4;proto=https;"
                                "host=\"[::1]:443\", for=5.6.7.8", out,
                                sizeof(out)) == 0 && !strcmp(out, "::1"),
       "Forwarded: host= of the first element, quoted IPv6 with port");
    ok(misdirect_forwarded_host(NULL, "for=1.2.3.4, host=late.test", out,
                                sizeof(out)) == -1,
       "Forwarded: a host= of a later element is not the client's");
    ok(misdirect_forwarded_host(NULL, "for=1.2.3.4", out, sizeof(out)) == -1,
       "Forwarded without host=");
    ok(misdirect_forwarded_host(NULL, NULL, out, sizeof(out)) == -1,
       "neither header");
}

static void test_hello_sni(void)
{
    /* supported_versions, then server_name "a.test". */
    static const unsigned char sni[] = {
        0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04,
        0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00, 0x00, 0x06,
        'a', '.', 't', 'e', 's', 't' };
    static const unsigned char none[] = { 0x00, 0x2b, 0x00, 0x03, 0x02,
                                          0x03, 0x04 };
    /* Two names in the list: mod_ssl reads none. */
    static const unsigned char two[] = {
        0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c,
        0x00, 0x00, 0x03, 'a', '.', 'b', 0x00, 0x00, 0x03, 'c', '.', 'd' };
    /* A name type other than host_name. */
    static const unsigned char other[] = {
        0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0x01, 0x00, 0x03, 'a', '.',
        'b' };
    unsigned char buf[200];
    char out[64], small[4];
    size_t n;

    n = hello(buf, sni, sizeof(sni));
    is_int(misdirect_hello_sni(buf, n, out, sizeof(out)), 6,
           "hello: the SNI's length");
    is_str(out, "a.test", "hello: the SNI");
    is_int(misdirect_hello_sni(buf, n, small, sizeof(small)), 6,
           "hello: a short buffer still gives the whole length");
    is_str(small, "a.t", "hello: and a truncated, terminated name");
    is_int(misdirect_hello_sni(buf, n - 1, out, sizeof(out)), -1,
           "hello: a message cut short");
    buf[0] = 2;
    is_int(misdirect_hello_sni(buf, n, out, sizeof(out)), -1,
           "hello: not a ClientHello");
    n = hello(buf, none, sizeof(none));
    is_int(misdirect_hello_sni(buf, n, out, sizeof(out)), -1,
           "hello: no server_name extension");
    n = hello(buf, two, sizeof(two));
    is_int(misdirect_hello_sni(buf, n, out, sizeof(out)), -1,
           "hello: a list of two names, as mod_ssl, is none");
    n = hello(buf, other, sizeof(other));
    is_int(misdirect_hello_sni(buf, n, out, sizeof(out)), -1,
           "hello: a name that is no host_name");
    n = hello(buf, sni, 0);
    is_int(misdirect_hello_sni(buf, n - 2, out, sizeof(out)), -1,
           "hello: no extensions at all");
}

int main(void)
{
    test_names();
    test_evaluate();
    test_forgive();
    test_decide();
    test_ssl_forbids();
    test_cidr();
    test_wildcard();
    test_host_matches();
    test_cover_memo();
    test_normalize();
    test_paths();
    test_escape();
    test_hello_sni();
    test_cause();
    test_forwarded();
    printf("1..%d\n", test_no);
    return test_failed ? 1 : 0;
}
