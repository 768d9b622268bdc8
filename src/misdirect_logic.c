/*
 * mod_misdirect: the decisions, as functions of plain values.
 * See misdirect_logic.h.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_logic.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MISDIRECT_CHECK_NAME(id, name, dflt) name,
static const char *const misdirect_check_names[MISDIRECT_CHECK_COUNT] = {
    MISDIRECT_CHECK_TABLE(MISDIRECT_CHECK_NAME)
};

#define MISDIRECT_CHECK_DEFAULT(id, name, dflt) dflt,
static const misdirect_action_e
misdirect_check_defaults[MISDIRECT_CHECK_COUNT] = {
    MISDIRECT_CHECK_TABLE(MISDIRECT_CHECK_DEFAULT)
};

static const char *const misdirect_action_names[] = {
    "allow", "report", "reject", "would-reject"
};

#define MISDIRECT_CAUSE_NAME(id, name) name,
static const char *const misdirect_cause_names[] = {
    MISDIRECT_CAUSE_TABLE(MISDIRECT_CAUSE_NAME)
};
#undef MISDIRECT_CAUSE_NAME

const char *misdirect_cause_name(misdirect_cause_e c)
{
    if ((unsigned int)c >= MISDIRECT_CAUSE_COUNT) {
        return "?";
    }
    return misdirect_cause_names[c];
}

int misdirect_sni_has_port(const char *sni)
{
    const char *colon = sni ? strrchr(sni, ':') : NULL;

    if (!colon || colon == sni || !colon[1] || memchr(sni, ':', colon - sni)) {
        return 0;
    }
    for (colon++; *colon; colon++) {
        if (*colon < '0' || *colon > '9') {
            return 0;
        }
    }
    return 1;
}

misdirect_cause_e misdirect_cause(const misdirect_facts *f,
                                  const misdirect_cause_facts *cf)
{
    if (cf->reason == MISDIRECT_CHECK_FORWARDED) {
        return MISDIRECT_CAUSE_HOST_REWRITTEN;
    }
    /* A scheme or port of the wrong kind says nothing about SNI or
     * connections, whatever else is true of the request. */
    if (cf->reason == MISDIRECT_CHECK_SCHEME
        || cf->reason == MISDIRECT_CHECK_PORT) {
        return MISDIRECT_CAUSE_OTHER;
    }
    if (f->tls && !f->sni_sent) {
        return MISDIRECT_CAUSE_NO_SNI;
    }
    if (f->tls && cf->sni_port) {
        return MISDIRECT_CAUSE_SNI_WITH_PORT;
    }
    if (!f->host_sent || !f->host_known) {
        return MISDIRECT_CAUSE_UNKNOWN_HOST;
    }
    if (!f->tls || !f->handshake_known || f->same_vhost) {
        return MISDIRECT_CAUSE_OTHER;
    }
    /* Another host than the SNI's vhost.  On a connection's first
     * request, the client chose both: a gateway that sends one fixed SNI
     * is not told from others here; a client without one overrode its
     * SNI or Host (curl --resolve with -H Host, s_client, which sends
     * the name it connects to). */
    if (cf->request_no <= 1) {
        return cf->gateway ? MISDIRECT_CAUSE_OTHER
                           : MISDIRECT_CAUSE_CLIENT_OVERRIDE;
    }
    if (!cf->sni_named) {
        return MISDIRECT_CAUSE_OTHER;       /* an SNI that names nothing */
    }
    /* A later request: the connection was reused for another name.
     * Browsers do that on HTTP/2 for names the certificate covers, and
     * never through a gateway; anything else is a connection pool. */
    if (cf->h2 && f->cert_covers && !cf->gateway) {
        return MISDIRECT_CAUSE_BROWSER_REUSE;
    }
    return MISDIRECT_CAUSE_POOL_REUSE;
}

const char *misdirect_check_name(misdirect_check_e check)
{
    if ((unsigned int)check >= MISDIRECT_CHECK_COUNT) {
        return "?";
    }
    return misdirect_check_names[check];
}

int misdirect_check_parse(const char *name)
{
    int i;

    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        if (!strcasecmp(name, misdirect_check_names[i])) {
            return i;
        }
    }
    return -1;
}

const char *misdirect_action_name(misdirect_action_e a)
{
    if ((unsigned int)a > MISDIRECT_WOULD_REJECT) {
        return "?";
    }
    return misdirect_action_names[a];
}

int misdirect_action_parse(const char *name)
{
    int i;

    for (i = MISDIRECT_ALLOW; i <= MISDIRECT_REJECT; i++) {
        if (!strcasecmp(name, misdirect_action_names[i])) {
            return i;
        }
    }
    return -1;
}

misdirect_action_e misdirect_default_action(misdirect_check_e check)
{
    return misdirect_check_defaults[check];
}

unsigned int misdirect_evaluate(const misdirect_facts *f)
{
    unsigned int fired = 0;

    if (f->scheme
        && ((f->tls && !strcasecmp(f->scheme, "http"))
            || (!f->tls && !strcasecmp(f->scheme, "https")))) {
        fired |= MISDIRECT_BIT(MISDIRECT_CHECK_SCHEME);
    }
    if (f->tls && !f->sni_sent && f->name_based) {
        fired |= MISDIRECT_BIT(MISDIRECT_CHECK_SNI_MISSING);
    }
    /* Without a known handshake vhost there is nothing to compare. */
    if (f->tls && f->handshake_known && !f->same_vhost) {
        fired |= MISDIRECT_BIT(f->cert_covers ? MISDIRECT_CHECK_SNI_HOST
                                              : MISDIRECT_CHECK_CERT);
    }
    if (!f->host_sent || !f->host_known) {
        fired |= MISDIRECT_BIT(MISDIRECT_CHECK_UNKNOWN_HOST);
    }
    if (f->host_port && f->host_port != f->local_port) {
        fired |= MISDIRECT_BIT(MISDIRECT_CHECK_PORT);
    }
    if (f->forwarded_other) {
        fired |= MISDIRECT_BIT(MISDIRECT_CHECK_FORWARDED);
    }
    return fired;
}

unsigned int misdirect_forgive(unsigned int fired, int host_allowed,
                               int peer_trusted)
{
    if (host_allowed) {
        fired &= MISDIRECT_BIT(MISDIRECT_CHECK_SCHEME);
    }
    if (peer_trusted) {
        fired &= ~MISDIRECT_TLS_CHECKS;
    }
    return fired;
}

void misdirect_decide(unsigned int fired, const misdirect_action_e *actions,
                      misdirect_mode_e mode, int exempt,
                      misdirect_decision *out)
{
    unsigned int rest = fired & MISDIRECT_ALL_CHECKS;
    int i, first_reject = -1, first_report = -1;

    out->fired = fired;
    out->action = MISDIRECT_ALLOW;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        out->check_action[i] = MISDIRECT_ALLOW;
    }
    /* Only the checks that fired, lowest first: a request that trips a
     * check usually trips one. */
    for (; rest; rest &= rest - 1) {
        misdirect_action_e a;

        i = __builtin_ctz(rest);
        a = exempt ? MISDIRECT_ALLOW : actions[i];
        if (a == MISDIRECT_REJECT && mode == MISDIRECT_MODE_REPORT_ONLY) {
            a = MISDIRECT_WOULD_REJECT;
        }
        if (a >= MISDIRECT_REJECT && first_reject < 0) {
            first_reject = i;
        }
        if (a == MISDIRECT_REPORT && first_report < 0) {
            first_report = i;
        }
        if (a > out->action) {
            out->action = a;
        }
        out->check_action[i] = a;
    }
    /* The reason is the check that decided the action: the first
     * rejecting one, else the first reported, else the first found. */
    rest = fired & MISDIRECT_ALL_CHECKS;
    out->reason = (misdirect_check_e)(first_reject >= 0 ? first_reject
                                      : first_report >= 0 ? first_report
                                      : rest ? __builtin_ctz(rest) : 0);
}

int misdirect_ssl_forbids(int handshake_verify, int request_verify,
                          int tls13)
{
    /* A stricter SSLVerifyClient than the handshake's needs the client's
     * certificate now.  TLS 1.3 asks for it by post-handshake
     * authentication, which browsers and curl do not offer; TLS 1.2
     * renegotiates, and a client without a certificate then passes
     * "optional" only. */
    return request_verify > handshake_verify
           && (tls13 || request_verify == 2);
}

char *misdirect_format_checks(const misdirect_decision *d, char *buf,
                              size_t len)
{
    size_t used = 0;
    int i;

    if (len == 0) {
        return buf;
    }
    buf[0] = '\0';
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        int n;

        if (!(d->fired & MISDIRECT_BIT(i))) {
            continue;
        }
        n = snprintf(buf + used, len - used, "%s%s:%s", used ? "," : "",
                     misdirect_check_names[i],
                     misdirect_action_name(d->check_action[i]));
        if (n < 0 || (size_t)n >= len - used) {
            break;      /* the buffer is sized for all seven; never here */
        }
        used += (size_t)n;
    }
    return buf;
}

int misdirect_wildcard_match(const char *pattern, const char *host)
{
    /* Iterative glob with one backtrack point: linear in practice and
     * never recursive, whatever the client sends. */
    const char *star = NULL, *resume = NULL;

    while (*host) {
        if (*pattern == '*') {
            star = pattern++;
            resume = host;
        }
        else if (*pattern == '?'
                 || (*pattern
                     && tolower((unsigned char)*pattern)
                        == tolower((unsigned char)*host))) {
            pattern++;
            host++;
        }
        else if (star) {
            pattern = star + 1;
            host = ++resume;
        }
        else {
            return 0;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == '\0';
}

int misdirect_host_matches(const char *host, const char *server_name,
                           const char *const *names, int nnames,
                           const char *const *wild, int nwild)
{
    int i;

    /* Core leaves r->hostname in lower case, as ServerName usually is:
     * the exact comparison first is the cheap way to the usual answer. */
    if (server_name && (!strcmp(host, server_name)
                        || !strcasecmp(host, server_name))) {
        return MISDIRECT_NAME_SERVER;
    }
    for (i = 0; i < nnames; i++) {
        if (names[i] && !strcasecmp(host, names[i])) {
            return MISDIRECT_NAME_ALIAS(i);
        }
    }
    for (i = 0; i < nwild; i++) {
        if (wild[i] && misdirect_wildcard_match(wild[i], host)) {
            return MISDIRECT_NAME_PATTERN;
        }
    }
    return 0;
}

/* Key layout, from bit 0: request vhost 22 bits, name 15, certificate
 * slot 3, handshake vhost 22; bit 62 holds the answer in a stored entry,
 * bit 63 is set in every key so that an empty slot (0) matches none. */
#define MISDIRECT_COVER_VHOSTS (1u << 22)
#define MISDIRECT_COVER_NAMES (1 << 15)
#define MISDIRECT_COVER_CERTS (1u << 3)
#define MISDIRECT_COVER_YES ((uint64_t)1 << 62)
#define MISDIRECT_COVER_KEYED ((uint64_t)1 << 63)

uint64_t misdirect_cover_key(unsigned int hs_index, unsigned int cert_slot,
                             unsigned int rs_index, int name)
{
    if (hs_index >= MISDIRECT_COVER_VHOSTS
        || rs_index >= MISDIRECT_COVER_VHOSTS
        || cert_slot >= MISDIRECT_COVER_CERTS
        || name <= 0 || name >= MISDIRECT_COVER_NAMES) {
        return 0;
    }
    return MISDIRECT_COVER_KEYED | (uint64_t)hs_index << 40
           | (uint64_t)cert_slot << 37 | (uint64_t)name << 22 | rs_index;
}

static uint64_t *misdirect_cover_slot(const misdirect_cover_memo *m,
                                      uint64_t key)
{
    /* Fibonacci hashing: the high bits of the product mix every field. */
    return &m->slot[(key * UINT64_C(0x9e3779b97f4a7c15)) >> 32 & m->mask];
}

int misdirect_cover_get(const misdirect_cover_memo *m, uint64_t key)
{
    uint64_t entry;

    if (!m || !m->slot || !key) {
        return -1;
    }
    entry = __atomic_load_n(misdirect_cover_slot(m, key), __ATOMIC_RELAXED);
    if ((entry & ~MISDIRECT_COVER_YES) != key) {
        return -1;
    }
    return (entry & MISDIRECT_COVER_YES) ? 1 : 0;
}

void misdirect_cover_put(misdirect_cover_memo *m, uint64_t key, int covers)
{
    if (!m || !m->slot || !key) {
        return;
    }
    __atomic_store_n(misdirect_cover_slot(m, key),
                     key | (covers ? MISDIRECT_COVER_YES : 0),
                     __ATOMIC_RELAXED);
}

int misdirect_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, host, buf) == 1) {
        return 4;
    }
    if (strchr(host, ':') && inet_pton(AF_INET6, host, buf) == 1) {
        return 6;
    }
    return 0;
}

int misdirect_host_normalize(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in), i;

    if (n && in[0] == '[') {
        unsigned char addr[sizeof(struct in6_addr)];
        char tmp[64];

        if (n < 3 || in[n - 1] != ']' || n - 2 >= sizeof(tmp)) {
            return -1;
        }
        memcpy(tmp, in + 1, n - 2);
        tmp[n - 2] = '\0';
        if (inet_pton(AF_INET6, tmp, addr) != 1
            || !inet_ntop(AF_INET6, addr, out, (socklen_t)outlen)) {
            return -1;
        }
        return 0;
    }
    if (strchr(in, ':')) {
        unsigned char addr[sizeof(struct in6_addr)];

        /* Only an IPv6 literal may hold a colon: a port has no place in
         * a host name list. */
        if (inet_pton(AF_INET6, in, addr) != 1
            || !inet_ntop(AF_INET6, addr, out, (socklen_t)outlen)) {
            return -1;
        }
        return 0;
    }
    if (n && in[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n >= outlen || in[0] == '.') {
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];

        /* Nor empty labels: core answers 400 to a Host with "..", so
         * such an entry could never match. */
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '\\'
            || ch == '"' || ch == ',' || (ch == '.' && in[i + 1] == '.')) {
            return -1;
        }
        out[i] = (char)tolower(ch);
    }
    out[n] = '\0';
    return 0;
}

int misdirect_path_under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);

    if (strncmp(path, prefix, n)) {
        return 0;
    }
    return n == 0 || prefix[n - 1] == '/' || path[n] == '\0'
           || path[n] == '/';
}

static int misdirect_escape_byte(unsigned char ch)
{
    return ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' || ch == '%';
}

int misdirect_escape_needed(const char *in)
{
    for (; *in; in++) {
        if (misdirect_escape_byte((unsigned char)*in)) {
            return 1;
        }
    }
    return 0;
}

char *misdirect_escape_into(const char *in, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *d = out;

    for (; *in; in++) {
        unsigned char ch = (unsigned char)*in;

        if (misdirect_escape_byte(ch)) {
            *d++ = '%';
            *d++ = hex[ch >> 4];
            *d++ = hex[ch & 0x0f];
        }
        else {
            *d++ = (char)ch;
        }
    }
    *d = '\0';
    return out;
}

/* Skips a vector of n length bytes and its contents; 0 when it does not
 * fit. */
static int misdirect_skip_vector(const unsigned char **at,
                                 const unsigned char *end, int n)
{
    size_t len = 0;
    int i;

    if ((size_t)(end - *at) < (size_t)n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        len = (len << 8) | *(*at)++;
    }
    if ((size_t)(end - *at) < len) {
        return 0;
    }
    *at += len;
    return 1;
}

int misdirect_hello_sni(const unsigned char *msg, size_t len, char *out,
                        size_t outsize)
{
    const unsigned char *at, *end, *ext_end;
    size_t body, ext_len, list, name, copy;
    unsigned int type;

    /* Type 1 (client_hello), a 24-bit length, legacy_version and
     * random. */
    if (len < 4 || msg[0] != 1 || outsize == 0) {
        return -1;
    }
    body = ((size_t)msg[1] << 16) | ((size_t)msg[2] << 8) | msg[3];
    if (body > len - 4) {
        return -1;
    }
    at = msg + 4;
    end = at + body;
    if ((size_t)(end - at) < 2 + 32) {
        return -1;
    }
    at += 2 + 32;
    if (!misdirect_skip_vector(&at, end, 1)         /* session id */
        || !misdirect_skip_vector(&at, end, 2)      /* cipher suites */
        || !misdirect_skip_vector(&at, end, 1)      /* compression */
        || end - at < 2) {
        return -1;                                  /* no extensions */
    }
    ext_len = ((size_t)at[0] << 8) | at[1];
    at += 2;
    if ((size_t)(end - at) < ext_len) {
        return -1;
    }
    ext_end = at + ext_len;
    while (ext_end - at >= 4) {
        type = ((unsigned int)at[0] << 8) | at[1];
        ext_len = ((size_t)at[2] << 8) | at[3];
        at += 4;
        if ((size_t)(ext_end - at) < ext_len) {
            return -1;
        }
        if (type != 0) {                            /* server_name */
            at += ext_len;
            continue;
        }
        /* The list's length, then one entry: type host_name (0) and the
         * name's length, which must fill the list exactly. */
        if (ext_len <= 2) {
            return -1;
        }
        list = ((size_t)at[0] << 8) | at[1];
        if (list + 2 != ext_len || list <= 3 || at[2] != 0) {
            return -1;
        }
        name = ((size_t)at[3] << 8) | at[4];
        if (name + 2 != list - 1) {
            return -1;
        }
        copy = name < outsize - 1 ? name : outsize - 1;
        memcpy(out, at + 5, copy);
        out[copy] = '\0';
        return (int)name;
    }
    return -1;
}

int misdirect_forwarded_host(const char *xfh, const char *forwarded,
                             char *out, size_t outsize)
{
    char host[256];
    const char *at, *end = NULL;
    size_t n;

    if (xfh) {
        at = xfh;
        end = at + strcspn(at, ",");
    }
    else if (forwarded) {
        /* The first element's parameters, up to the first ','. */
        const char *elem_end = forwarded + strcspn(forwarded, ",");

        for (at = forwarded; at < elem_end; at++) {
            at += strspn(at, " \t;");
            if (elem_end - at > 5 && !strncasecmp(at, "host=", 5)) {
                at += 5;
                if (*at == '"') {
                    at++;
                    end = at + strcspn(at, "\"");
                }
                else {
                    end = at + strcspn(at, ";, \t");
                }
                break;
            }
            at += strcspn(at, ";,");
            if (*at != ';') {
                break;
            }
        }
        if (!end) {
            return -1;
        }
    }
    else {
        return -1;
    }
    while (at < end && (*at == ' ' || *at == '\t')) {
        at++;
    }
    while (end > at && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    n = (size_t)(end - at);
    if (n == 0 || n >= sizeof(host)) {
        return -1;
    }
    memcpy(host, at, n);
    host[n] = '\0';
    /* Drop a port: after "]" of an IPv6 literal, or after the one colon
     * of a name or IPv4 literal. */
    if (host[0] == '[') {
        char *close = strchr(host, ']');

        if (close && close[1] == ':') {
            close[1] = '\0';
        }
    }
    else if (misdirect_sni_has_port(host)) {
        *strrchr(host, ':') = '\0';
    }
    return misdirect_host_normalize(host, out, outsize);
}

int misdirect_cidr_check(const char *ip, const char *mask)
{
    unsigned char addr[16];
    int len, bits, i;

    if (inet_pton(AF_INET, ip, addr) == 1) {
        len = 4;
    }
    else if (inet_pton(AF_INET6, ip, addr) == 1) {
        len = 16;
    }
    else {
        return MISDIRECT_CIDR_NOT_ADDRESS;
    }
    if (!mask) {
        return 0;
    }
    if (*mask && strspn(mask, "0123456789") == strlen(mask)
        && strlen(mask) <= 3) {
        bits = atoi(mask);
    }
    else {
        unsigned char m[4];

        /* A dotted netmask: its ones must be contiguous. */
        if (len != 4 || inet_pton(AF_INET, mask, m) != 1) {
            return MISDIRECT_CIDR_BAD_MASK;
        }
        for (bits = 0; bits < 32 && (m[bits / 8] & (0x80 >> (bits % 8)));
             bits++) {
        }
        for (i = bits; i < 32; i++) {
            if (m[i / 8] & (0x80 >> (i % 8))) {
                return MISDIRECT_CIDR_BAD_MASK;
            }
        }
    }
    /* /0 would trust every peer: APR refuses it, and so does this. */
    if (bits < 1 || bits > len * 8) {
        return MISDIRECT_CIDR_BAD_MASK;
    }
    for (i = bits; i < len * 8; i++) {
        if (addr[i / 8] & (0x80 >> (i % 8))) {
            return MISDIRECT_CIDR_HOST_BITS;
        }
    }
    return 0;
}
