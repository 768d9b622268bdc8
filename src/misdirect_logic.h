/*
 * mod_misdirect: the decisions, as functions of plain values.
 *
 * Nothing here sees a request_rec, so the unit tests and the fuzz targets
 * link this file alone.  The module gathers the facts of a request, these
 * functions say which checks fire and what to do about them.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_LOGIC_H
#define MISDIRECT_LOGIC_H

#include <stddef.h>
#include <stdint.h>

/* Shared between the module's files, but never exported from the .so. */
#define MISDIRECT_INTERNAL __attribute__((visibility("hidden")))

/* The checks, in the order of the table in docs/checks.md: that order
 * picks the reason when several fire.  Every list of the checks (the
 * enum, their names, their default actions, the help and the errors of
 * MisdirectPolicy) is made from this one table:
 * X(enum suffix, name, default action). */
#define MISDIRECT_CHECK_TABLE(X)                                  \
    X(SCHEME,       "scheme-mismatch",   MISDIRECT_REJECT)        \
    X(SNI_MISSING,  "sni-missing",       MISDIRECT_ALLOW)         \
    X(CERT,         "cert-mismatch",     MISDIRECT_REJECT)        \
    X(SNI_HOST,     "sni-host-mismatch", MISDIRECT_ALLOW)         \
    X(UNKNOWN_HOST, "unknown-host",      MISDIRECT_ALLOW)         \
    X(PORT,         "port-mismatch",     MISDIRECT_ALLOW)         \
    X(FORWARDED,    "forwarded-host",    MISDIRECT_REPORT)

#define MISDIRECT_CHECK_ENUM(id, name, dflt) MISDIRECT_CHECK_##id,
typedef enum {
    MISDIRECT_CHECK_TABLE(MISDIRECT_CHECK_ENUM)
    MISDIRECT_CHECK_COUNT
} misdirect_check_e;
#undef MISDIRECT_CHECK_ENUM

/* "scheme-mismatch, sni-missing, ..., port-mismatch, ": the names as one
 * string constant, for help text. */
#define MISDIRECT_CHECK_HELP(id, name, dflt) name ", "
#define MISDIRECT_CHECK_NAMES MISDIRECT_CHECK_TABLE(MISDIRECT_CHECK_HELP)

#define MISDIRECT_BIT(check) (1u << (check))
#define MISDIRECT_ALL_CHECKS (MISDIRECT_BIT(MISDIRECT_CHECK_COUNT) - 1)

/* Checks that say something about the TLS handshake, which a trusted
 * gateway is allowed to get wrong. */
#define MISDIRECT_TLS_CHECKS (MISDIRECT_BIT(MISDIRECT_CHECK_SNI_MISSING) \
                              | MISDIRECT_BIT(MISDIRECT_CHECK_CERT)      \
                              | MISDIRECT_BIT(MISDIRECT_CHECK_SNI_HOST))

/* Ordered by severity, so the action of a request is the largest.
 * Misdirect ReportOnly turns reject into would-reject: served and
 * logged like report, but said and counted apart, so that a rollout
 * shows exactly what On would refuse.  No directive names it. */
typedef enum {
    MISDIRECT_ALLOW = 0,
    MISDIRECT_REPORT = 1,
    MISDIRECT_REJECT = 2,
    MISDIRECT_WOULD_REJECT = 3
} misdirect_action_e;

typedef enum {
    MISDIRECT_MODE_OFF = 0,
    MISDIRECT_MODE_ON = 1,
    MISDIRECT_MODE_REPORT_ONLY = 2
} misdirect_mode_e;

/* What the module found out about one request. */
typedef struct {
    unsigned int tls : 1;             /* the connection is TLS */
    unsigned int handshake_known : 1; /* H could be determined */
    unsigned int sni_sent : 1;        /* the client sent SNI */
    unsigned int name_based : 1;      /* the address has name-based vhosts */
    unsigned int same_vhost : 1;      /* R == H */
    unsigned int cert_covers : 1;     /* the certificate covers N */
    unsigned int host_sent : 1;       /* the request named a host */
    unsigned int host_known : 1;      /* N is one of R's names */
    unsigned int forwarded_other : 1; /* a gateway's forwarded host names
                                       * another vhost of this address */
    const char *scheme;               /* absolute-form scheme, or NULL */
    unsigned int host_port;           /* explicit port in the host, or 0 */
    unsigned int local_port;          /* the connection's local port */
} misdirect_facts;

/* The outcome for one request. */
typedef struct {
    unsigned int fired;                        /* MISDIRECT_BIT()s */
    misdirect_action_e action;                 /* what happens */
    misdirect_check_e reason;                  /* valid when fired != 0 */
    misdirect_action_e check_action[MISDIRECT_CHECK_COUNT];
} misdirect_decision;

MISDIRECT_INTERNAL const char *misdirect_check_name(misdirect_check_e check);
MISDIRECT_INTERNAL int misdirect_check_parse(const char *name);
MISDIRECT_INTERNAL const char *misdirect_action_name(misdirect_action_e a);
MISDIRECT_INTERNAL int misdirect_action_parse(const char *name);
MISDIRECT_INTERNAL misdirect_action_e
misdirect_default_action(misdirect_check_e check);

/* Which checks fire, from the facts alone. */
MISDIRECT_INTERNAL unsigned int misdirect_evaluate(const misdirect_facts *f);

/* Removes what MisdirectAllow (host_allowed) and MisdirectTrustedProxy
 * (peer_trusted) forgive. */
MISDIRECT_INTERNAL unsigned int misdirect_forgive(unsigned int fired,
                                                  int host_allowed,
                                                  int peer_trusted);

/* Applies the actions (one per check, already defaulted), the mode and an
 * exempt path to the fired checks. */
MISDIRECT_INTERNAL void misdirect_decide(unsigned int fired,
                                         const misdirect_action_e *actions,
                                         misdirect_mode_e mode, int exempt,
                                         misdirect_decision *out);

/* The most likely cause of a finding or a refusal, judged from facts
 * the module has: a label for lines, variables and counters.  Each cause
 * is described in docs/diagnosis.md.  X(enum suffix, name). */
#define MISDIRECT_CAUSE_TABLE(X)                                  \
    X(NO_SNI,          "no-sni")                                  \
    X(POOL_REUSE,      "pool-reuse")                              \
    X(BROWSER_REUSE,   "browser-reuse")                           \
    X(SNI_WITH_PORT,   "sni-with-port")                           \
    X(CLIENT_OVERRIDE, "client-override")                         \
    X(HOST_REWRITTEN,  "host-rewritten")                          \
    X(UNKNOWN_HOST,    "unknown-host")                            \
    X(OTHER,           "other")

#define MISDIRECT_CAUSE_ENUM(id, name) MISDIRECT_CAUSE_##id,
typedef enum {
    MISDIRECT_CAUSE_TABLE(MISDIRECT_CAUSE_ENUM)
    MISDIRECT_CAUSE_COUNT
} misdirect_cause_e;
#undef MISDIRECT_CAUSE_ENUM

/* What a cause is judged from, besides the facts of the checks. */
typedef struct {
    int reason;                /* the deciding check, or -1 (a refusal
                                * of mod_ssl's, or nothing fired) */
    unsigned int sni_port : 1; /* the SNI ends in ":port" */
    unsigned int sni_named : 1;/* the SNI names a vhost (H by name, not
                                * the address's fallback) */
    unsigned int h2 : 1;       /* an HTTP/2 stream */
    unsigned int gateway : 1;  /* Via, Forwarded or X-Forwarded-* came */
    unsigned int request_no;   /* the request's number on its connection,
                                * from 1 */
} misdirect_cause_facts;

MISDIRECT_INTERNAL misdirect_cause_e
misdirect_cause(const misdirect_facts *f, const misdirect_cause_facts *cf);
MISDIRECT_INTERNAL const char *misdirect_cause_name(misdirect_cause_e c);
/* Does an SNI end in ":digits" (an IPv6 literal, with more colons, does
 * not)? */
MISDIRECT_INTERNAL int misdirect_sni_has_port(const char *sni);

/* Does mod_ssl's access check answer 403 to a request for a vhost that
 * verifies clients at request_verify, on a handshake made for one at
 * handshake_verify (SSLVerifyClient: 0 none, 1 optional or
 * optional_no_ca, 2 require), in TLS 1.3 or not? */
MISDIRECT_INTERNAL int misdirect_ssl_forbids(int handshake_verify,
                                             int request_verify, int tls13);

/* Writes "check:action,check:action" for the fired checks into buf;
 * returns buf. */
MISDIRECT_INTERNAL char *misdirect_format_checks(const misdirect_decision *d,
                                                 char *buf, size_t len);

/* Case-insensitive shell-style match, '*' any run and '?' one character,
 * as httpd core matches a wildcard ServerAlias. */
MISDIRECT_INTERNAL int misdirect_wildcard_match(const char *pattern,
                                                const char *host);

/* Does host match a name list the way core matches ServerName,
 * ServerAlias and wildcard ServerAlias?  Either list may be empty.
 * Returns 0 for no, else which name matched: MISDIRECT_NAME_SERVER for
 * server_name, MISDIRECT_NAME_ALIAS(i) for names[i], and
 * MISDIRECT_NAME_PATTERN when only a wildcard did, which names no one
 * host (the module also uses it for the <VirtualHost> address name,
 * which has no number either). */
#define MISDIRECT_NAME_SERVER 1
#define MISDIRECT_NAME_ALIAS(i) (2 + (i))
#define MISDIRECT_NAME_PATTERN (-1)
MISDIRECT_INTERNAL int misdirect_host_matches(const char *host,
                                              const char *server_name,
                                              const char *const *names,
                                              int nnames,
                                              const char *const *wild,
                                              int nwild);

/* A memo of certificate coverage, so that OpenSSL's answer to "does
 * this certificate cover this configured name?" is computed once per
 * process and configuration, not once per request.  A key says which
 * certificate (the handshake vhost's index and the certificate's place
 * in its context) and which name (the request vhost's index and the
 * name's number from misdirect_host_matches); 0 means the values do not
 * fit and the answer must not be memoised.  The table has a fixed size
 * and is read and written with relaxed atomic 64-bit loads and stores,
 * so threads share it without a lock: a lost or overwritten entry only
 * costs one more call into OpenSSL, and an entry is used only when its
 * whole key matches. */
typedef struct {
    uint64_t *slot;
    unsigned int mask;                       /* slots - 1, slots = 2^n */
} misdirect_cover_memo;

MISDIRECT_INTERNAL uint64_t misdirect_cover_key(unsigned int hs_index,
                                                unsigned int cert_slot,
                                                unsigned int rs_index,
                                                int name);
/* 1 covered, 0 not covered, -1 not known. */
MISDIRECT_INTERNAL int misdirect_cover_get(const misdirect_cover_memo *m,
                                           uint64_t key);
MISDIRECT_INTERNAL void misdirect_cover_put(misdirect_cover_memo *m,
                                            uint64_t key, int covers);

/* 4 or 6 for an IPv4 or IPv6 literal (without brackets), else 0. */
MISDIRECT_INTERNAL int misdirect_ip_literal(const char *host);

/* The host a gateway says the client asked for: the first entry of
 * X-Forwarded-Host (xfh), else the host= of Forwarded's first element
 * (forwarded, RFC 7239, quoted or not); either may be NULL.  Its port
 * dropped, then normalised as misdirect_host_normalize() does.  Returns
 * 0 with the host in out, or -1 when neither names one. */
MISDIRECT_INTERNAL int misdirect_forwarded_host(const char *xfh,
                                                const char *forwarded,
                                                char *out, size_t outsize);

/* Brings a host name or IP literal to the form httpd core leaves in
 * r->hostname: lower case, no trailing dot, IPv6 without brackets and in
 * its canonical text form.  Returns 0, or -1 when in is no host. */
MISDIRECT_INTERNAL int misdirect_host_normalize(const char *in, char *out,
                                                size_t outlen);

/* Does a (normalised) URL path fall under prefix, on a segment boundary?
 * "/a/b" is under "/a" and "/a/", "/ab" is not under "/a". */
MISDIRECT_INTERNAL int misdirect_path_under(const char *path,
                                            const char *prefix);

/* Client text made safe for a quoted log field, an environment variable
 * or a page: control bytes, bytes above 0x7e, '"', '\\' and '%' become
 * %XX, everything else stays.  No output byte is one that httpd's own
 * error_log escaping rewrites, so what is written is what is read.  out
 * must hold 3 * strlen(in) + 1 bytes; returns out.  misdirect_text_escape()
 * allocates out where the text needs escaping; the handshake record
 * holds the escaped SNI in a buffer of that size. */
MISDIRECT_INTERNAL char *misdirect_escape_into(const char *in, char *out);
/* Does in hold a byte that misdirect_escape_into() escapes? */
MISDIRECT_INTERNAL int misdirect_escape_needed(const char *in);

/* The SNI of a ClientHello as mod_ssl reads it to choose the handshake's
 * vhost: msg is the handshake message (type, 24-bit length, body) as
 * OpenSSL's message callback shows it.  mod_ssl reads the first name of
 * the server_name extension, and only a list of exactly one host_name;
 * anything else it takes for no SNI, and so does this.  Returns the
 * name's length, with the name copied to out (at most outsize - 1 bytes,
 * NUL-terminated; a NUL inside the name ends it early), or -1: no
 * ClientHello, no SNI, or one mod_ssl would not read.  OpenSSL's own
 * SSL_get_servername() cannot stand in: on a resumed TLS 1.2 session it
 * gives the name the session began with. */
MISDIRECT_INTERNAL int misdirect_hello_sni(const unsigned char *msg,
                                           size_t len, char *out,
                                           size_t outsize);

/* Checks an address and optional mask (a prefix length, or a dotted IPv4
 * netmask) for MisdirectTrustedProxy: 0 when ip is a whole IPv4 or IPv6
 * address whose bits past the mask are all zero, else why not.  APR
 * would take "10" for 10.0.0.0/8 and "10.0.0.1/8" for 10.0.0.0/8; an
 * administrator who wrote either most likely meant something else. */
#define MISDIRECT_CIDR_NOT_ADDRESS (-1)
#define MISDIRECT_CIDR_BAD_MASK    (-2)
#define MISDIRECT_CIDR_HOST_BITS   (-3)
MISDIRECT_INTERNAL int misdirect_cidr_check(const char *ip,
                                            const char *mask);

#endif /* MISDIRECT_LOGIC_H */
