/*
 * mod_misdirect: misdirected requests as a per-VirtualHost policy, and
 * every 421 explained in error_log.
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * For every request read from a client, the module compares the virtual
 * host that the TLS handshake chose (mod_ssl, from SNI: "H") with the one
 * httpd core chose from the request's host (Host, :authority, or an
 * absolute-form target: "R"), runs six checks, and lets the configuration
 * of R decide what each finding means:
 *
 *   scheme-mismatch    https:// target on plain HTTP, or http:// on TLS
 *   sni-missing        TLS without SNI on an address with name-based vhosts
 *   cert-mismatch      R != H and the certificate does not cover the host
 *   sni-host-mismatch  R != H but the certificate covers the host
 *                      (HTTP/2 connection reuse)
 *   unknown-host       the host is none of R's names (R is the fallback)
 *   port-mismatch      the host names a port the connection did not use
 *
 * Directives (server config and <VirtualHost>, a vhost value overriding the
 * global one; the lists add up):
 *
 *   Misdirect On|Off|ReportOnly
 *   MisdirectPolicy CHECK reject|report|allow
 *       Misdirect ReportOnly
 *       MisdirectPolicy sni-host-mismatch report
 *   MisdirectAllow HOST...
 *       MisdirectAllow *.cdn.example 192.0.2.7
 *   MisdirectExempt URL-PATH...
 *       MisdirectExempt /.well-known/acme-challenge/
 *   MisdirectTrustedProxy CIDR...
 *       MisdirectTrustedProxy 10.0.0.0/8
 *
 * Server config only:
 *
 *   MisdirectLint On|Off
 *   MisdirectLogLimit N             diagnosis lines per second and child
 *
 * reject answers 421 Misdirected Request, report logs and serves, allow
 * only records.  Every finding is exposed as MISDIRECT_* variables in
 * r->subprocess_env for CustomLog, SetEnvIf and ErrorDocument pages.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "http_vhost.h"
#include "mod_ssl.h"
#include "mod_http2.h"
#include "mod_proxy.h"

#include "apr_atomic.h"
#include "apr_network_io.h"
#include "apr_optional_hooks.h"
#include "apr_strings.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "src/mod_misdirect.h"

/* The value of every directive a configuration leaves unset (the checks'
 * actions come from the check table, misdirect_logic.h), read through
 * MISDIRECT_GET where the value is used. */
static const misdirect_srv_conf misdirect_defaults = {
    .mode = MISDIRECT_MODE_ON,
    .lint = 1,                  /* misdirect_lint.c lints unless it is 0 */
    .log_limit = 10,
};

#define MISDIRECT_GET(conf, field) \
    ((conf)->field == MISDIRECT_UNSET ? misdirect_defaults.field \
                                      : (conf)->field)

/*
 * mod_ssl's optional hooks (modules/ssl/mod_ssl_openssl.h, which
 * Debian's apache2-dev does not install).  init_server tells which
 * SSL_CTX belongs to which vhost; pre_handshake hands out each client
 * connection's SSL before its handshake.  After the handshake,
 * SSL_get_SSL_CTX() is the context of the vhost mod_ssl chose from SNI,
 * which is how H is known exactly rather than guessed.
 */
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, init_server,
                          (server_rec *s, apr_pool_t *p, int is_proxy,
                           SSL_CTX *ctx))
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, pre_handshake,
                          (conn_rec *c, SSL *ssl, int is_proxy))

/* The SSL_CTX ex_data index under which init_server leaves each
 * context's vhost: the context itself says which vhost it serves, so
 * nothing outlives a configuration pass.  Indices belong to the whole
 * process and httpd reloads the module on every restart, so the index is
 * kept in the process pool and taken once, not once per restart. */
#define MISDIRECT_CTX_INDEX_KEY "mod_misdirect:ctx-index"
static int misdirect_ctx_index = -1;

static APR_OPTIONAL_FN_TYPE(http2_var_lookup) *misdirect_h2_var;

/* What OpenSSL said about a certificate and a configured name, kept for
 * the configuration's lifetime (see misdirect_logic.h).  4,096 slots of
 * 8 bytes: each pair of vhosts that clients reuse connections between
 * costs one X509_check_host per child, then none. */
#define MISDIRECT_MEMO_SLOTS 4096
static misdirect_cover_memo misdirect_memo;

/* Log limiter state of this child: the second being counted, the lines
 * logged in it and the lines suppressed since the last summary. */
static apr_uint32_t misdirect_log_second;
static apr_uint32_t misdirect_log_count;
static apr_uint32_t misdirect_log_dropped;

misdirect_srv_conf *misdirect_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &misdirect_module);
}

int misdirect_mode(const misdirect_srv_conf *conf)
{
    return MISDIRECT_GET(conf, mode);
}

static int misdirect_log_limit(void)
{
    return MISDIRECT_GET(misdirect_conf(ap_server_conf), log_limit);
}

/* ------------------------------------------------------------------ */
/* Facts                                                              */

/* The states of a connection's handshake record. */
#define MISDIRECT_HS_UNKNOWN   0
#define MISDIRECT_HS_WRITING   1
#define MISDIRECT_HS_PUBLISHED 2

/* Reads what the finished handshake of c's ssl says into hk. */
static void misdirect_handshake_read(conn_rec *c, SSL *ssl,
                                     misdirect_handshake *hk)
{
    const misdirect_srv_conf *hconf;
    const char *sni;
    SSL_CTX *ctx;
    int slot;

    memset(hk, 0, sizeof(*hk));
    hk->cert_slot = MISDIRECT_CERT_OTHER;
    /* mod_ssl frees the SSL of a connection whose client spoke plain
     * HTTP to the TLS port, and then answers 400 to what it read: a TLS
     * connection with no handshake to tell of. */
    if (!ap_ssl_conn_is_ssl(c)) {
        return;
    }
    hk->ssl = ssl;
    sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    ctx = SSL_get_SSL_CTX(ssl);
    hk->hs = ctx && misdirect_ctx_index >= 0
             ? SSL_CTX_get_ex_data(ctx, misdirect_ctx_index) : NULL;
    hk->sni_sent = sni != NULL;
    apr_cpystrn(hk->sni, sni ? sni : "", sizeof(hk->sni));
    if (!hk->hs) {
        return;
    }
    /* A resumed session shows no certificate, and OpenSSL then names the
     * context's current one, not the one the session began with.  With
     * several (RSA and ECDSA, say), the client may hold any of them. */
    hconf = misdirect_conf(hk->hs);
    if (hconf->certs[1] && SSL_session_reused(ssl)) {
        hk->cert_slot = MISDIRECT_CERT_ANY;
        return;
    }
    hk->cert = SSL_get_certificate(ssl);
    for (slot = 0; hk->cert && slot < MISDIRECT_CERT_SLOTS; slot++) {
        if (hconf->certs[slot] == hk->cert) {
            hk->cert_slot = slot;
            break;
        }
    }
}

static const misdirect_handshake *
misdirect_handshake_get(conn_rec *c, misdirect_handshake *scratch)
{
    misdirect_conn_ctx *cc = misdirect_conn_get(c);

    if (!cc || !cc->ssl) {
        return NULL;
    }
    if (apr_atomic_read32(&cc->state) == MISDIRECT_HS_PUBLISHED) {
        return &cc->handshake;
    }
    /* The first request of the connection writes the record; HTTP/2
     * streams that run meanwhile read the handshake for themselves. */
    if (apr_atomic_cas32(&cc->state, MISDIRECT_HS_WRITING,
                         MISDIRECT_HS_UNKNOWN) == MISDIRECT_HS_UNKNOWN) {
        misdirect_handshake_read(c, cc->ssl, &cc->handshake);
        apr_atomic_set32(&cc->state, MISDIRECT_HS_PUBLISHED);
        return &cc->handshake;
    }
    misdirect_handshake_read(c, cc->ssl, scratch);
    return scratch;
}

/* Is host one of s's names, as core's vhost matching sees them?  0 for
 * no, else which name (see misdirect_host_matches). */
static int misdirect_server_has_name(server_rec *s, const char *host,
                                     apr_port_t port)
{
    server_addr_rec *sar;
    int name;

    name = misdirect_host_matches(host, s->server_hostname,
               s->names ? (const char *const *)s->names->elts : NULL,
               s->names ? s->names->nelts : 0,
               s->wild_names ? (const char *const *)s->wild_names->elts
                             : NULL,
               s->wild_names ? s->wild_names->nelts : 0);
    if (name) {
        return name;
    }
    /* Core also accepts the name the <VirtualHost> line itself used. */
    for (sar = s->addrs; sar; sar = sar->next) {
        if ((sar->host_port == 0 || sar->host_port == port)
            && sar->virthost && !strcasecmp(host, sar->virthost)) {
            return MISDIRECT_NAME_PATTERN;
        }
    }
    return 0;
}

int misdirect_cert_covers_name(X509 *cert, const char *name)
{
    if (misdirect_ip_literal(name)) {
        return X509_check_ip_asc(cert, name, 0) == 1;
    }
    /* RFC 6125: a wildcard stands for exactly one whole left-most
     * label. */
    return X509_check_host(cert, name, 0,
                           X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

/* Does one of H's certificates (at place slot in its context, or -1)
 * cover host, which is rs's name number name?  OpenSSL answers; the memo
 * remembers its answer for names of the configuration, which differ from
 * host at most in case, and OpenSSL compares names regardless of case. */
static int misdirect_one_cert_covers(X509 *cert, int slot,
                                     const misdirect_srv_conf *hconf,
                                     const misdirect_srv_conf *rconf,
                                     int name, const char *host)
{
    uint64_t key = 0;
    int covers;

    if (slot >= 0) {
        key = misdirect_cover_key(hconf->file_order, slot,
                                  rconf->file_order, name);
    }
    covers = misdirect_cover_get(&misdirect_memo, key);
    if (covers < 0) {
        covers = misdirect_cert_covers_name(cert, host);
        misdirect_cover_put(&misdirect_memo, key, covers);
    }
    return covers;
}

/* Does the certificate of the handshake hk cover host, which is rs's
 * name number name? */
static int misdirect_cert_covers(const misdirect_handshake *hk, server_rec *rs,
                          int name, const char *host)
{
    const misdirect_srv_conf *hconf = misdirect_conf(hk->hs);
    const misdirect_srv_conf *rconf = misdirect_conf(rs);
    int slot;

    if (!host) {
        return 0;
    }
    /* The host is not covered only if none of those the client may hold
     * covers it. */
    if (hk->cert_slot == MISDIRECT_CERT_ANY) {
        for (slot = 0; slot < MISDIRECT_CERT_SLOTS && hconf->certs[slot];
             slot++) {
            if (misdirect_one_cert_covers(hconf->certs[slot], slot, hconf,
                                          rconf, name, host)) {
                return 1;
            }
        }
        return 0;
    }
    return hk->cert && misdirect_one_cert_covers(hk->cert, hk->cert_slot,
                                                 hconf, rconf, name, host);
}

int misdirect_host_allowed(const misdirect_srv_conf *conf,
                           const char *host)
{
    char canon[64];
    int i;

    if (!conf->allow || !host) {
        return 0;
    }
    /* IPv6 literals compare in canonical form: "0:0::1" is "::1". */
    if (strchr(host, ':')
        && misdirect_host_normalize(host, canon, sizeof(canon)) == 0) {
        host = canon;
    }
    for (i = 0; i < conf->allow->nelts; i++) {
        const char *pattern = APR_ARRAY_IDX(conf->allow, i, const char *);

        if (strpbrk(pattern, "*?") ? misdirect_wildcard_match(pattern, host)
                                   : !strcasecmp(pattern, host)) {
            return 1;
        }
    }
    return 0;
}

static int misdirect_peer_trusted(const misdirect_srv_conf *conf,
                                  conn_rec *c)
{
    int i;

    if (!conf->trusted) {
        return 0;
    }
    /* c->client_addr is the TCP peer, the next hop: mod_remoteip puts the
     * address a header or a PROXY preamble claims in r->useragent_addr,
     * which is what a gateway says, not who it is. */
    for (i = 0; i < conf->trusted->nelts; i++) {
        if (apr_ipsubnet_test(APR_ARRAY_IDX(conf->trusted, i,
                                            apr_ipsubnet_t *),
                              c->client_addr)) {
            return 1;
        }
    }
    return 0;
}

static int misdirect_path_exempt(const misdirect_srv_conf *conf,
                                 request_rec *r)
{
    char *path;
    int i;

    if (!conf->exempt || !r->uri || r->uri[0] != '/') {
        return 0;
    }
    /* Core normalises the path only after this hook: judge the path the
     * request will really reach, so "/exempt/../private" is not exempt. */
    path = apr_pstrdup(r->pool, r->uri);
    if (!ap_normalize_path(path, AP_NORMALIZE_NOT_ABOVE_ROOT
                                 | AP_NORMALIZE_DECODE_UNRESERVED
                                 | AP_NORMALIZE_MERGE_SLASHES)) {
        return 0;
    }
    for (i = 0; i < conf->exempt->nelts; i++) {
        if (misdirect_path_under(path, APR_ARRAY_IDX(conf->exempt, i,
                                                     const char *))) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Diagnosis                                                          */

/* Not ap_escape_logitem: httpd escapes every error_log message again,
 * turning its \" into \\" and so ending the quoted field early.
 * Percent-encoding survives that second pass unchanged. */
const char *misdirect_escape(apr_pool_t *p, const char *s)
{
    return misdirect_escape_into(s, apr_palloc(p, 3 * strlen(s) + 1));
}

/* "check,check" for a set of checks. */
static const char *misdirect_check_list(apr_pool_t *p, unsigned int mask)
{
    const char *out = NULL;
    int i;

    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        if (mask & MISDIRECT_BIT(i)) {
            out = out ? apr_pstrcat(p, out, ",", misdirect_check_name(i),
                                    NULL)
                      : misdirect_check_name(i);
        }
    }
    return out ? out : "none";
}

const char *misdirect_vhost_where(apr_pool_t *p, server_rec *s)
{
    if (!s->defn_name) {
        return "main server";
    }
    return apr_psprintf(p, "%s:%u", s->defn_name, s->defn_line_number);
}

const char *misdirect_vhost_desc(apr_pool_t *p, server_rec *s)
{
    if (!s) {
        return "(unknown)";
    }
    return apr_psprintf(p, "%s (%s)", s->server_hostname,
                        misdirect_vhost_where(p, s));
}

apr_array_header_t *misdirect_vhosts_in_file_order(apr_pool_t *p,
                                                   server_rec *main_s)
{
    apr_array_header_t *list = apr_array_make(p, 64, sizeof(server_rec *));
    server_rec *s;
    int i, n;

    for (s = main_s->next; s; s = s->next) {
        APR_ARRAY_PUSH(list, server_rec *) = s;
    }
    for (i = 0, n = list->nelts; i < n / 2; i++) {
        s = APR_ARRAY_IDX(list, i, server_rec *);
        APR_ARRAY_IDX(list, i, server_rec *) =
            APR_ARRAY_IDX(list, n - 1 - i, server_rec *);
        APR_ARRAY_IDX(list, n - 1 - i, server_rec *) = s;
    }
    return list;
}

static int misdirect_sni_is_trailing_dot(const char *sni)
{
    size_t n = sni ? strlen(sni) : 0;

    return n > 1 && sni[n - 1] == '.';
}

/* The hint for an SNI that named none of H's names, so that mod_ssl fell
 * back to the address's default vhost; NULL when the SNI selected H (an
 * alias of H, IP literals included, does). */
static const char *misdirect_fallback_hint(const misdirect_req *q,
                                           conn_rec *c)
{
    if (!q->sni || !q->hs
        || misdirect_server_has_name(q->hs, q->sni, c->local_addr->port)) {
        return NULL;
    }
    if (misdirect_sni_is_trailing_dot(q->sni)) {
        return "the SNI ends in a dot, which mod_ssl does not strip, so the "
               "handshake used the default virtual host: make the client "
               "send the name without the trailing dot";
    }
    if (misdirect_ip_literal(q->sni)) {
        return "the client sent an IP address as SNI, which names no "
               "virtual host, so the handshake used the default one: "
               "connect by host name";
    }
    return "the SNI names no virtual host on this address, so the "
           "handshake used the default virtual host: add the name as "
           "ServerName or ServerAlias of the vhost it belongs to";
}

/* One sentence: the likely cause and the fix. */
static const char *misdirect_hint(const misdirect_req *q, request_rec *r,
                                  conn_rec *c, const char *diff)
{
    const misdirect_facts *f = &q->facts;
    misdirect_check_e reason = q->decision.reason;
    int tls_reason = (MISDIRECT_BIT(reason) & MISDIRECT_TLS_CHECKS) != 0;
    const char *fallback;

    if (reason == MISDIRECT_CHECK_SCHEME) {
        return "the client asked for a URL whose scheme does not match "
               "this connection (https:// over plain HTTP or http:// over "
               "TLS): point it at the right port, or fix the proxy that "
               "forwards absolute URLs";
    }
    if (tls_reason && !f->sni_sent) {
        return "the client sent no SNI, as many reverse proxies and load "
               "balancers do, so the handshake used the default virtual "
               "host: make it send the request's host as SNI (nginx: "
               "proxy_ssl_server_name on; proxy_ssl_name $host; HAProxy: "
               "sni req.hdr(host); httpd: ProxyPreserveHost On), or list "
               "its address in MisdirectTrustedProxy";
    }
    if (tls_reason && (fallback = misdirect_fallback_hint(q, c))) {
        return fallback;
    }
    switch (reason) {
    case MISDIRECT_CHECK_SNI_HOST:
        if (diff) {
            return apr_psprintf(r->pool, "a client (typically a browser "
                                "on HTTP/2) reused a connection for "
                                "another name its certificate covers; "
                                "their TLS settings differ (tls_differs), "
                                "which SSLVHostSNIPolicy %s lets through: "
                                "give both the same settings, or separate "
                                "certificates",
                                misdirect_ssl_policy_name(
                                    misdirect_ssl_policy()));
        }
        return q->decision.action == MISDIRECT_REJECT
               ? "a client (typically a browser on HTTP/2) reused a "
                 "connection for another name its certificate covers, and "
                 "mod_ssl accepts the two virtual hosts' TLS settings "
                 "together: this reuse is legitimate; 'MisdirectPolicy "
                 "sni-host-mismatch allow' serves it"
               : "a client (typically a browser on HTTP/2) reused a "
                 "connection for another name its certificate covers, and "
                 "mod_ssl accepts the two virtual hosts' TLS settings "
                 "together: this reuse is legitimate; 'MisdirectPolicy "
                 "sni-host-mismatch allow' stops these lines";
    case MISDIRECT_CHECK_CERT:
        return "the certificate of this connection does not cover the "
               "requested host, so no correct client sends it here: check "
               "the SNI your client or proxy sends and the DNS of the "
               "name";
    case MISDIRECT_CHECK_SNI_MISSING:
        return "the client sent no SNI on an address with name-based "
               "virtual hosts: make it send SNI, or list its address in "
               "MisdirectTrustedProxy";
    case MISDIRECT_CHECK_UNKNOWN_HOST:
        if (!f->host_sent) {
            return "the request named no host (HTTP/1.0 without Host), so "
                   "the default virtual host answered: make the client "
                   "send Host";
        }
        return "no virtual host on this address is named for the "
               "request's host: DNS may point here by mistake or a proxy "
               "rewrites Host; add the name as ServerAlias if it is yours";
    case MISDIRECT_CHECK_PORT:
        return "the host names another port than the one the connection "
               "reached, typical of a port-forwarding proxy or NAT: make it "
               "keep the port, or 'MisdirectPolicy port-mismatch allow'";
    default:
        return "";
    }
}

/* The opening sentence of a line, naming what happened in the admin's
 * terms. */
static const char *misdirect_sentence(const misdirect_req *q, request_rec *r,
                                      conn_rec *c, const char *host)
{
    apr_pool_t *p = r->pool;
    const char *hname = q->hs ? q->hs->server_hostname : "?";

    if (!q->decision.fired) {
        /* Nothing left to judge: say which vhosts the request met, and
         * whether the lists forgave what the checks found. */
        return apr_psprintf(p, "host %s selects virtual host %s%s%s%s",
                            host, r->server->server_hostname,
                            q->hs ? " on a connection set up for " : "",
                            q->hs ? hname : "",
                            q->found ? "; MisdirectAllow or "
                                       "MisdirectTrustedProxy forgave what "
                                       "mod_misdirect found" : "");
    }
    switch (q->decision.reason) {
    case MISDIRECT_CHECK_SCHEME:
        return apr_psprintf(p, "the request-target's scheme %s does not "
                            "match this %s connection",
                            misdirect_escape(p, q->facts.scheme),
                            q->facts.tls ? "TLS" : "plain");
    case MISDIRECT_CHECK_SNI_MISSING:
        return "the client sent no SNI to an address with name-based "
               "virtual hosts";
    case MISDIRECT_CHECK_CERT:
        return apr_psprintf(p, "host %s selects virtual host %s, but the "
                            "TLS handshake was for %s, whose certificate "
                            "does not cover it", host,
                            r->server->server_hostname, hname);
    case MISDIRECT_CHECK_SNI_HOST:
        return apr_psprintf(p, "host %s selects virtual host %s on a "
                            "connection set up for %s, whose certificate "
                            "covers it", host, r->server->server_hostname,
                            hname);
    case MISDIRECT_CHECK_UNKNOWN_HOST:
        return q->facts.host_sent
            ? apr_psprintf(p, "no virtual host is named %s, so the default "
                           "%s answers", host, r->server->server_hostname)
            : apr_psprintf(p, "the request named no host, so the default "
                           "%s answers", r->server->server_hostname);
    case MISDIRECT_CHECK_PORT:
        return apr_psprintf(p, "host names port %u but the connection "
                            "reached port %u", q->facts.host_port,
                            (unsigned int)c->local_addr->port);
    default:
        return "";
    }
}

/* Admits one diagnosis line under MisdirectLogLimit, and says how many
 * were suppressed once a second has passed. */
static int misdirect_log_permit(request_rec *r)
{
    int limit = misdirect_log_limit();
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t was = apr_atomic_read32(&misdirect_log_second);

    if (was != now
        && apr_atomic_cas32(&misdirect_log_second, now, was) == was) {
        apr_uint32_t dropped = apr_atomic_xchg32(&misdirect_log_dropped, 0);

        apr_atomic_set32(&misdirect_log_count, 0);
        if (dropped) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          MISDIRECT_LOGNO(005)
                          "%u diagnosis lines suppressed by "
                          "MisdirectLogLimit %d in this process "
                          "(requests were still decided)",
                          dropped, limit);
        }
    }
    if (limit == 0
        || apr_atomic_inc32(&misdirect_log_count) < (apr_uint32_t)limit) {
        return 1;
    }
    apr_atomic_inc32(&misdirect_log_dropped);
    return 0;
}

/* " name=\"value\"" for an optional request header, escaped. */
static const char *misdirect_header_field(request_rec *r, const char *field,
                                          const char *header)
{
    const char *v = apr_table_get(r->headers_in, header);

    if (!v) {
        return "";
    }
    return apr_pstrcat(r->pool, " ", field, "=\"",
                       misdirect_escape(r->pool, v), "\"", NULL);
}

/* The one line that explains a finding: a sentence first, then
 * key="value" fields for machines.  extra holds further fields (with a
 * leading space) and hint, when given, replaces the usual one. */
static void misdirect_log(const misdirect_req *q, request_rec *r,
                          conn_rec *c, int level, const char *logno,
                          const char *what, const char *extra,
                          const char *hint)
{
    apr_pool_t *p = r->pool;
    const char *host_hdr = apr_table_get(r->headers_in, "Host");
    const char *host = r->hostname ? misdirect_escape(p, r->hostname)
                                   : "(none)";
    const char *proto = r->protocol ? r->protocol : "-";
    const char *stream = NULL, *tls = "", *forgiven = "", *ua = "";
    const char *diff = NULL;
    int request_no = q->request_no;
    char checks[160];

    if (r->connection->master && misdirect_h2_var) {
        stream = misdirect_h2_var(p, r->server, r->connection, r,
                                  (char *)"H2_STREAM_ID");
    }
    if (stream) {
        /* Client streams are odd: 1, 3, 5 are requests 1, 2, 3. */
        request_no = (atoi(stream) + 1) / 2;
        proto = apr_pstrcat(p, "h2\" stream=\"", stream, NULL);
    }
    if (q->ssl) {
        const unsigned char *alpn = NULL;
        unsigned int alpn_len = 0;

        SSL_get0_alpn_selected(q->ssl, &alpn, &alpn_len);
        tls = apr_psprintf(p, " sni=\"%s\" tls_resumed=\"%s\" alpn=\"%s\"",
                           q->sni ? q->sni : "(none)",
                           SSL_session_reused(q->ssl) ? "yes" : "no",
                           alpn_len
                           ? misdirect_escape(p, apr_pstrmemdup(p,
                                                   (const char *)alpn,
                                                   alpn_len))
                           : "(none)");
    }

    if (q->facts.tls && q->hs && q->hs != r->server
        && r->status != HTTP_BAD_REQUEST && r->status != HTTP_FORBIDDEN) {
        /* Built once: the hint asks whether anything differs. */
        diff = misdirect_tls_differences(p, q->hs, r->server);
        /* What the module's model says mod_ssl decides for this pair. */
        tls = apr_psprintf(p, "%s ssl_policy=\"%s\" ssl_verdict=\"%s\" "
                           "tls_differs=\"%s\"", tls,
                           misdirect_ssl_policy_name(misdirect_ssl_policy()),
                           misdirect_ssl_refuses(q->hs, r->server)
                           ? "refuse" : "serve", diff ? diff : "none");
    }
    if (r->useragent_addr && r->useragent_addr != c->client_addr) {
        /* mod_remoteip's client, as a header or PROXY preamble says. */
        ua = apr_psprintf(p, " useragent=\"%s:%u\"", r->useragent_ip,
                          (unsigned int)r->useragent_addr->port);
    }

    if (q->found & ~q->decision.fired) {
        forgiven = apr_pstrcat(p, " forgiven=\"",
                               misdirect_check_list(p, q->found
                                                      & ~q->decision.fired),
                               "\"", NULL);
    }

    ap_log_rerror(APLOG_MARK, level, 0, r,
                  "%s%s: %s. reason=\"%s\" checks=\"%s\"%s client=\"%s:%u\"%s "
                  "local=\"%s:%u\" proto=\"%s\" request=\"%d\"%s "
                  "handshake_vhost=\"%s\" request_vhost=\"%s\" host=\"%s\" "
                  "host_header=\"%s\"%s%s%s hint=\"%s\"",
                  logno, what, misdirect_sentence(q, r, c, host),
                  q->decision.fired
                      ? misdirect_check_name(q->decision.reason) : "none",
                  q->decision.fired
                      ? misdirect_format_checks(&q->decision, checks,
                                                sizeof(checks))
                      : "none",
                  forgiven, c->client_ip, (unsigned int)c->client_addr->port,
                  ua, c->local_ip, (unsigned int)c->local_addr->port,
                  proto, request_no, tls,
                  q->facts.tls ? misdirect_vhost_desc(p, q->hs)
                               : "(none: not TLS)",
                  misdirect_vhost_desc(p, r->server), host,
                  host_hdr ? misdirect_escape(p, host_hdr) : "(none)",
                  misdirect_header_field(r, "x_forwarded_host",
                                         "X-Forwarded-Host"),
                  misdirect_header_field(r, "forwarded", "Forwarded"),
                  extra ? extra : "",
                  hint ? hint : misdirect_hint(q, r, c, diff));
}

/* Publishes a finding to CustomLog, SetEnvIf and ErrorDocument pages.
 * Client text is stored escaped, so no consumer can be fooled by it. */
static void misdirect_set_vars(const misdirect_req *q, request_rec *r)
{
    apr_table_t *e = r->subprocess_env;

    /* Added, not set: this hook runs first and once per request, so none
     * of them is there yet. */
    apr_table_addn(e, "MISDIRECT_REASON",
                   misdirect_check_name(q->decision.reason));
    apr_table_addn(e, "MISDIRECT_ACTION",
                   misdirect_action_name(q->decision.action));
    apr_table_addn(e, "MISDIRECT_CHECKS",
                   misdirect_check_list(r->pool, q->decision.fired));
    if (q->sni) {
        apr_table_addn(e, "MISDIRECT_SNI", q->sni);
    }
    if (q->hs) {
        apr_table_addn(e, "MISDIRECT_HANDSHAKE_VHOST",
                       q->hs->server_hostname);
    }
    apr_table_addn(e, "MISDIRECT_REQUEST_VHOST", r->server->server_hostname);
}

/* ------------------------------------------------------------------ */
/* Hooks                                                              */

static int misdirect_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    (void)pconf;
    misdirect_memo.slot = NULL;
    return OK;
}

static int misdirect_strcmp_sort(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "subject sha256:digest, ..." for a set of certificates, in a stable
 * order: what the model compares for a vhost whose certificates another
 * module (mod_md) gave mod_ssl, and which the configuration files do not
 * name. */
static const char *misdirect_certs_name(apr_pool_t *p, X509 *const *certs,
                                        int n)
{
    const char *one[MISDIRECT_CERT_SLOTS], *out = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char subject[256];
    int i;

    for (i = 0; i < n; i++) {
        X509_NAME_oneline(X509_get_subject_name(certs[i]), subject,
                          sizeof(subject));
        if (!X509_digest(certs[i], EVP_sha256(), md, &len) || len < 8) {
            memset(md, 0, 8);
        }
        one[i] = apr_psprintf(p, "%s sha256:%02x%02x%02x%02x%02x%02x%02x"
                              "%02x", subject, md[0], md[1], md[2], md[3],
                              md[4], md[5], md[6], md[7]);
    }
    qsort(one, n, sizeof(one[0]), misdirect_strcmp_sort);
    for (i = 0; i < n; i++) {
        out = out ? apr_pstrcat(p, out, ", ", one[i], NULL) : one[i];
    }
    return out;
}

/* Notes the certificates of a vhost's context (one per key type), so a
 * connection's certificate can be told by its place among them. */
static void misdirect_note_certs(apr_pool_t *p, misdirect_srv_conf *conf,
                                 SSL_CTX *ctx)
{
    X509 *current = SSL_CTX_get0_certificate(ctx);
    int n = 0, more;

    for (more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
         more && n < MISDIRECT_CERT_SLOTS;
         more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        conf->certs[n++] = SSL_CTX_get0_certificate(ctx);
    }
    /* Leave the context as mod_ssl left it. */
    if (current) {
        SSL_CTX_select_current_cert(ctx, current);
    }
    conf->ctx_certs = misdirect_certs_name(p, conf->certs, n);
}

static int misdirect_ctx_index_get(apr_pool_t *process)
{
    void *data = NULL;

    if (misdirect_ctx_index >= 0) {
        return misdirect_ctx_index;
    }
    apr_pool_userdata_get(&data, MISDIRECT_CTX_INDEX_KEY, process);
    if (data) {
        misdirect_ctx_index = (int)((apr_uintptr_t)data - 1);
    }
    else {
        misdirect_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
                                                       NULL);
        if (misdirect_ctx_index >= 0) {
            apr_pool_userdata_set((void *)(apr_uintptr_t)
                                  (misdirect_ctx_index + 1),
                                  MISDIRECT_CTX_INDEX_KEY,
                                  apr_pool_cleanup_null, process);
        }
    }
    return misdirect_ctx_index;
}

static int misdirect_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                                 SSL_CTX *ctx)
{
    if (is_proxy || !ctx) {
        return OK;
    }
    if (misdirect_ctx_index_get(s->process->pool) < 0
        || !SSL_CTX_set_ex_data(ctx, misdirect_ctx_index, s)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, MISDIRECT_LOGNO(013)
                     "OpenSSL gave no room to note the virtual host of a "
                     "TLS context: requests whose host differs from their "
                     "SNI will report the handshake vhost as unknown");
        return OK;
    }
    misdirect_conf(s)->ssl_ctx = ctx;
    misdirect_note_certs(p, misdirect_conf(s), ctx);
    return OK;
}

static int misdirect_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    misdirect_conn_ctx *cc;

    if (!is_proxy) {
        cc = apr_pcalloc(c->pool, sizeof(*cc));
        cc->ssl = ssl;
        ap_set_module_config(c->conn_config, &misdirect_module, cc);
    }
    return OK;
}


static void misdirect_optional_fn_retrieve(void)
{
    misdirect_h2_var = APR_RETRIEVE_OPTIONAL_FN(http2_var_lookup);
}

/* How each action is logged, indexed by misdirect_action_e. */
typedef struct {
    int level;
    const char *logno;
    const char *what;
} misdirect_outcome;

static const misdirect_outcome misdirect_outcomes[] = {
    { APLOG_DEBUG, MISDIRECT_LOGNO(003), "Misdirect finding allowed" },
    { APLOG_WARNING, MISDIRECT_LOGNO(002),
      "Misdirected request reported and served" },
    { APLOG_ERR, MISDIRECT_LOGNO(001),
      "Misdirected request rejected with 421" }
};

/* A checked request with nothing to object to: count it, and trace it
 * (with what the lists forgave, if anything). */
static int misdirect_checked_clean(request_rec *r, server_rec *hs,
                                   unsigned int forgiven)
{
    misdirect_status_count(r->server, NULL);
    if (APLOGrtrace1(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      MISDIRECT_LOGNO(004) "checked: %s; "
                      "handshake_vhost=\"%s\" request_vhost=\"%s\"",
                      forgiven ? apr_pstrcat(r->pool,
                                     misdirect_check_list(r->pool, forgiven),
                                     " forgiven by MisdirectAllow or "
                                     "MisdirectTrustedProxy", NULL)
                               : "nothing fired",
                      hs ? hs->server_hostname : "-",
                      r->server->server_hostname);
    }
    return DECLINED;
}

/* The facts of a request, as both the request check and the explanation
 * of other layers' refusals see them.  c is the client's connection (the
 * master of an HTTP/2 stream); *hk is its handshake, or NULL.  Returns
 * the name of R the host matched (see misdirect_host_matches). */
static int misdirect_gather(request_rec *r, conn_rec *c, misdirect_facts *f,
                            const misdirect_handshake **hk,
                            misdirect_handshake *scratch)
{
    int name;

    memset(f, 0, sizeof(*f));
    /* A connection whose handshake mod_ssl showed us is TLS: no need to
     * ask the ssl_conn_is_ssl hooks on every request. */
    *hk = misdirect_handshake_get(c, scratch);
    f->tls = *hk || ap_ssl_conn_is_ssl(c) ? 1 : 0;
    if (*hk) {
        f->sni_sent = (*hk)->sni_sent;
        f->handshake_known = (*hk)->hs != NULL;
        f->same_vhost = (*hk)->hs == r->server;
    }
    else {
        /* A TLS stack that did not show us its handshake (no mod_ssl
         * hooks): say nothing about SNI rather than guess. */
        f->sni_sent = 1;
    }
    f->name_based = c->vhost_lookup_data != NULL;
    f->host_sent = r->hostname != NULL;
    name = r->hostname ? misdirect_server_has_name(r->server, r->hostname,
                                                   c->local_addr->port)
                       : 0;
    f->host_known = name != 0;
    if (f->handshake_known && !f->same_vhost) {
        f->cert_covers = misdirect_cert_covers(*hk, r->server, name,
                                               r->hostname);
    }
    if (r->parsed_uri.scheme && r->parsed_uri.hostname) {
        f->scheme = r->parsed_uri.scheme;
    }
    f->host_port = r->parsed_uri.port_str ? r->parsed_uri.port : 0;
    f->local_port = c->local_addr->port;
    return name;
}

/* The record of a request the module found something in, kept until the
 * request ends (its log line, its variables, the explanation of a 421
 * that comes later). */
static misdirect_req *misdirect_req_make(request_rec *r, conn_rec *c,
                                         const misdirect_facts *f,
                                         unsigned int found,
                                         const misdirect_handshake *hk)
{
    misdirect_req *q = apr_pcalloc(r->pool, sizeof(*q));

    q->facts = *f;
    q->found = found;
    if (hk) {
        q->hs = hk->hs;
        q->sni = hk->sni_sent ? misdirect_escape(r->pool, hk->sni) : NULL;
        q->ssl = hk->ssl;
    }
    q->request_no = c->keepalives + 1;
    ap_set_module_config(r->request_config, &misdirect_module, q);
    return q;
}

/* What the lists forgive of the checks q found, and the action the
 * configuration gives the rest (q->decision).  Returns what is left. */
static unsigned int misdirect_judge(request_rec *r, conn_rec *c,
                                    const misdirect_srv_conf *conf,
                                    misdirect_req *q)
{
    unsigned int fired = q->found;

    if (fired & ~MISDIRECT_BIT(MISDIRECT_CHECK_SCHEME)) {
        fired = misdirect_forgive(fired,
                                  misdirect_host_allowed(conf, r->hostname),
                                  (fired & MISDIRECT_TLS_CHECKS)
                                  && misdirect_peer_trusted(conf, c));
    }
    if (fired) {
        misdirect_decide(fired, conf->policy, misdirect_mode(conf),
                         misdirect_path_exempt(conf, r), &q->decision);
    }
    return fired;
}

/* Marks a request the check judged and found clean, so that a 421 it
 * ends with is known to come from a later phase, without allocating. */
static misdirect_req misdirect_judged_clean;

/* Is this the h2c stream 1 that replays an HTTP/1.1 request the module
 * already checked before the connection was upgraded? */
static int misdirect_h2c_replay(request_rec *r, conn_rec *c)
{
    misdirect_conn_ctx *cc = misdirect_conn_get(c);
    const char *id;

    if (!cc || !cc->h2c_checked || !misdirect_h2_var) {
        return 0;
    }
    id = misdirect_h2_var(r->pool, r->server, r->connection, r,
                          (char *)"H2_STREAM_ID");
    return id && !strcmp(id, "1");
}

/* Remembers that a plain HTTP/1.1 request that asks for h2c was
 * checked: if the upgrade happens, its stream 1 is the same request. */
static void misdirect_h2c_note(request_rec *r, conn_rec *c)
{
    misdirect_conn_ctx *cc = misdirect_conn_get(c);
    const char *upgrade;

    /* TLS reaches h2 by ALPN, never by Upgrade. */
    if (r->connection->master || (cc && cc->ssl)
        || !(upgrade = apr_table_get(r->headers_in, "Upgrade"))
        || !ap_find_token(r->pool, upgrade, "h2c")) {
        return;
    }
    if (!cc) {
        cc = apr_pcalloc(c->pool, sizeof(*cc));
        ap_set_module_config(c->conn_config, &misdirect_module, cc);
    }
    cc->h2c_checked = 1;
}

/* The request check.  It runs after mod_ssl's: where mod_ssl refuses a
 * request, its answer stands and log_transaction explains it; the
 * module's own checks judge only the requests httpd would serve. */
static int misdirect_post_read_request(request_rec *r)
{
    misdirect_srv_conf *conf;
    conn_rec *c;
    misdirect_facts f;
    misdirect_req *q;
    const misdirect_handshake *hk;
    misdirect_handshake scratch;
    const misdirect_outcome *out;
    unsigned int found;

    if (!ap_is_initial_req(r) || r->proxyreq != PROXYREQ_NONE) {
        return DECLINED;
    }
    conf = misdirect_conf(r->server);
    if (misdirect_mode(conf) == MISDIRECT_MODE_OFF) {
        return DECLINED;
    }

    /* An HTTP/2 stream runs on a secondary connection; the TLS session
     * and the address facts belong to the client's connection. */
    c = r->connection->master ? r->connection->master : r->connection;
    if (r->connection->master && misdirect_h2c_replay(r, c)) {
        return DECLINED;
    }
    if (!r->connection->master && r->proto_num == HTTP_VERSION(1, 1)) {
        misdirect_h2c_note(r, c);
    }

    misdirect_gather(r, c, &f, &hk, &scratch);
    found = misdirect_evaluate(&f);
    if (!found) {
        ap_set_module_config(r->request_config, &misdirect_module,
                             &misdirect_judged_clean);
        return misdirect_checked_clean(r, hk ? hk->hs : NULL, 0);
    }

    /* Something was found: from here on, allocation is fine. */
    q = misdirect_req_make(r, c, &f, found, hk);
    if (!misdirect_judge(r, c, conf, q)) {
        return misdirect_checked_clean(r, q->hs, found);
    }
    misdirect_set_vars(q, r);
    misdirect_status_count(r->server, &q->decision);

    out = &misdirect_outcomes[q->decision.action];
    /* MisdirectLogLimit guards error_log against floods of the lines
     * every server writes; debug lines are asked for, and must not use
     * up the budget of the rejections. */
    if (APLOG_R_MODULE_IS_LEVEL(r, APLOG_MODULE_INDEX, out->level)
        && (out->level == APLOG_DEBUG || misdirect_log_permit(r))) {
        misdirect_log(q, r, c, out->level, out->logno, out->what,
                      NULL, NULL);
    }

    if (q->decision.action != MISDIRECT_REJECT) {
        return DECLINED;
    }
    if (!r->connection->master) {
        /* The client must retry on a new connection: say so on HTTP/1.x
         * (ap_set_keepalive turns this into "Connection: close").  On
         * HTTP/2 only the stream is answered. */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return HTTP_MISDIRECTED_REQUEST;
}

/* Every 421 that httpd answers from its own error path (this module's,
 * mod_ssl's, a handler's or a RewriteRule's) means "retry on a new
 * connection": close an HTTP/1.x connection and say so, or clients such
 * as curl keep sending on it.  A 421 that a handler writes as an ordinary
 * response (a CGI's Status, a proxied backend's answer) passes as it was
 * written. */
static void misdirect_insert_error_filter(request_rec *r)
{
    if (r->status == HTTP_MISDIRECTED_REQUEST && !r->connection->master
        && misdirect_mode(misdirect_conf(r->server)) != MISDIRECT_MODE_OFF) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
}

/* The same for a 421 answered with a local ErrorDocument page: httpd
 * serves the page as an internal redirect, on which the error filter
 * hook does not run. */
static int misdirect_error_page(request_rec *r)
{
    if (r->prev && r->prev->status == HTTP_MISDIRECTED_REQUEST
        && !r->connection->master
        && misdirect_mode(misdirect_conf(r->prev->server))
           != MISDIRECT_MODE_OFF) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return DECLINED;
}

/* Marks every request that reached mod_ssl's post_read_request: a
 * refusal of a request so marked, but not judged by the module, came from
 * a hook that ran in between, which is where mod_ssl refuses. */
static misdirect_req misdirect_reached;

static int misdirect_mark_reached(request_rec *r)
{
    ap_set_module_config(r->request_config, &misdirect_module,
                         &misdirect_reached);
    return DECLINED;
}

/* Why mod_ssl refused a request that never reached the module's check,
 * recognised by status and by the facts that cause each refusal; NULL
 * when mod_ssl's rules do not explain it. */
static const char *misdirect_ssl_refusal(request_rec *r,
                                         const misdirect_req *q)
{
    const char *notes;

    if (!q->facts.tls) {
        return NULL;
    }
    notes = apr_table_get(r->notes, "error-notes");
    switch (r->status) {
    case HTTP_MISDIRECTED_REQUEST:
        /* Only mod_ssl answers 421 on R != H before the check; where the
         * model says it would serve, say so rather than pretend. */
        if (q->facts.same_vhost) {
            return NULL;
        }
        return !q->hs || misdirect_ssl_refuses(q->hs, r->server)
               ? "mod_ssl answered 421: its SSLVHostSNIPolicy refuses the "
                 "request's virtual host on this handshake"
               : "mod_ssl (or a module that runs before mod_misdirect) "
                 "answered 421, though the model of mod_ssl's policy "
                 "expected it to serve this pair";
    case HTTP_BAD_REQUEST:
        if (notes && strstr(notes, "speaking plain HTTP")) {
            return "mod_ssl answered 400: the client spoke plain HTTP to "
                   "this TLS port";
        }
        return q->facts.sni_sent && !q->facts.host_sent
               ? "mod_ssl answered 400: SNI was sent but the request named "
                 "no host"
               : NULL;
    case HTTP_FORBIDDEN:
        return !q->facts.sni_sent && notes
               && strstr(notes, "Server Name Indication")
               ? "mod_ssl answered 403: SSLStrictSNIVHostCheck requires "
                 "SNI on this address"
               : NULL;
    default:
        return NULL;
    }
}

static const char *misdirect_ssl_hint(request_rec *r, conn_rec *c,
                                      const misdirect_req *q)
{
    const char *fallback = misdirect_fallback_hint(q, c);

    if (r->status == HTTP_BAD_REQUEST && !q->facts.sni_sent) {
        return "a client or proxy sends http:// to a port that expects "
               "https://: point it at https://, or at the plain HTTP port";
    }
    if (r->status == HTTP_BAD_REQUEST) {
        return "the client named a host in SNI but none in the request "
               "(HTTP/1.0 without Host): make it send Host";
    }
    if (r->status == HTTP_FORBIDDEN) {
        return "SSLStrictSNIVHostCheck On refuses clients without SNI: "
               "make the client or proxy send SNI, or turn the check off "
               "for trusted proxies";
    }
    if (fallback) {
        return apr_pstrcat(r->pool, fallback, "; mod_ssl then compared "
                           "that vhost's TLS settings with the request's "
                           "(tls_differs)", NULL);
    }
    if (q->facts.host_sent && !q->facts.host_known) {
        return "the host names no virtual host on this address (the "
               "certificate may name it, but no ServerName or ServerAlias "
               "does), so the default one answered, and mod_ssl refuses "
               "that vhost on this handshake: add the name to the vhost it "
               "belongs to";
    }
    if (misdirect_ssl_policy() == MISDIRECT_SSL_POLICY_STRICT) {
        return "SSLVHostSNIPolicy strict refuses every request for another "
               "virtual host than the handshake's: make the client send "
               "the request's host as SNI, or relax the policy to secure";
    }
    if (q->found && !q->decision.fired) {
        return "mod_misdirect trusts this request (MisdirectTrustedProxy "
               "or MisdirectAllow), but mod_ssl's SSLVHostSNIPolicy still "
               "refuses a virtual host whose TLS settings differ from the "
               "handshake's (tls_differs): set SSLVHostSNIPolicy insecure "
               "where you trust the proxy, or make it send SNI";
    }
    if (!q->facts.sni_sent) {
        return "the client sent no SNI, so mod_ssl used the default "
               "virtual host's TLS settings, which differ from the "
               "request's vhost (tls_differs): make the proxy send SNI "
               "(nginx: proxy_ssl_server_name on; proxy_ssl_name $host; "
               "HAProxy: sni req.hdr(host)), or give the default vhost the "
               "same TLS settings";
    }
    return "mod_ssl's SSLVHostSNIPolicy refuses to serve a virtual host "
           "whose TLS settings differ from the handshake's (tls_differs): "
           "give both the same settings, or separate certificates so that "
           "clients open a new connection";
}

/* Did mod_proxy handle the request (ProxyPass and its kin)? */
static int misdirect_proxied(request_rec *r)
{
    return r->filename && !strncmp(r->filename, "proxy:", 6);
}

/* " handler=... backend=... preserve_host=..." for a 421 that the
 * request's handler or a proxied backend answered. */
static const char *misdirect_handler_fields(request_rec *r)
{
    const char *out = apr_pstrcat(r->pool, " handler=\"",
                                  r->handler
                                  ? misdirect_escape(r->pool, r->handler)
                                  : "(none: answered before the handler)",
                                  "\"", NULL);
    module *proxy;

    if (misdirect_proxied(r)) {
        const proxy_dir_conf *dc = NULL;

        /* Found by name: the module must load without mod_proxy. */
        if ((proxy = ap_find_linked_module("mod_proxy.c"))) {
            dc = ap_get_module_config(r->per_dir_config, proxy);
        }
        out = apr_pstrcat(r->pool, out, " backend=\"",
                          misdirect_escape(r->pool, r->filename + 6),
                          "\" preserve_host=\"",
                          !dc ? "?" : dc->preserve_host ? "on" : "off",
                          "\"", NULL);
    }
    return out;
}

/* A refusal that mod_ssl produced, or a 421 from the handler or a
 * backend, is a misdirect too: explain it with the same line, plus what
 * caused it, and count it. */
static void misdirect_explain(request_rec *r)
{
    misdirect_req *q = ap_get_module_config(r->request_config,
                                            &misdirect_module);
    misdirect_srv_conf *conf = misdirect_conf(r->server);
    const char *what = NULL, *extra, *hint, *logno;
    const misdirect_handshake *hk;
    misdirect_handshake scratch;
    misdirect_facts f;
    conn_rec *c;

    /* Not reached post_read_request (core refused what it read), a
     * forward-proxy request, or the module's own 421, already
     * explained. */
    if (!q || r->proxyreq == PROXYREQ_PROXY
        || misdirect_mode(conf) == MISDIRECT_MODE_OFF
        || (q->decision.fired && q->decision.action == MISDIRECT_REJECT)) {
        return;
    }
    /* Refused between the mark and the check: by mod_ssl, when its rules
     * explain it.  Answered after the check: only a 421 concerns us. */
    if (q != &misdirect_reached && r->status != HTTP_MISDIRECTED_REQUEST) {
        return;
    }
    c = r->connection->master ? r->connection->master : r->connection;
    if (q == &misdirect_reached || q == &misdirect_judged_clean) {
        int refused = q == &misdirect_reached;

        misdirect_gather(r, c, &f, &hk, &scratch);
        q = misdirect_req_make(r, c, &f, misdirect_evaluate(&f), hk);
        misdirect_judge(r, c, conf, q);
        what = refused ? misdirect_ssl_refusal(r, q) : NULL;
        if (what && r->status != HTTP_MISDIRECTED_REQUEST) {
            /* Plain HTTP on a TLS port, no Host, no SNI: mod_ssl's cause
             * is not one of the module's checks, and a line that named
             * them would mislead. */
            q->found = 0;
            memset(&q->decision, 0, sizeof(q->decision));
        }
        if (what && r->status == HTTP_BAD_REQUEST && !f.sni_sent) {
            /* No handshake happened: what mod_ssl answers is a request
             * of its own making, on no TLS at all. */
            q->facts.tls = 0;
            q->hs = NULL;
            q->ssl = NULL;
        }
        /* ap_set_keepalive has counted this request already, if the
         * connection goes on. */
        if (r->connection->keepalive == AP_CONN_KEEPALIVE) {
            q->request_no--;
        }
    }
    if (what) {
        misdirect_status_count_ssl(r->server, r->status);
        logno = MISDIRECT_LOGNO(006);
        extra = " by=\"mod_ssl\"";
        hint = misdirect_ssl_hint(r, c, q);
    }
    else if (r->status == HTTP_MISDIRECTED_REQUEST) {
        misdirect_status_count_other(r->server);
        logno = MISDIRECT_LOGNO(007);
        what = misdirect_proxied(r)
               ? "a proxied backend answered 421, not mod_ssl or "
                 "mod_misdirect"
               : "the request's handler answered 421, not mod_ssl or "
                 "mod_misdirect";
        extra = apr_pstrcat(r->pool, " by=\"handler\"",
                            misdirect_handler_fields(r), NULL);
        hint = misdirect_proxied(r)
               ? "the backend decided this 421 itself: see its own logs; "
                 "a backend behind ProxyPass often wants the client's "
                 "Host (ProxyPreserveHost On), or SNI that matches it"
               : "the configuration or the application decided this 421 "
                 "itself (a RewriteRule [R=421], a Redirect 421, a "
                 "script's Status: 421): see the rules and the "
                 "application's logs for this URL";
    }
    else {
        return;                 /* an ordinary 400 or 403 */
    }
    if (!APLOG_R_MODULE_IS_LEVEL(r, APLOG_MODULE_INDEX, APLOG_ERR)
        || !misdirect_log_permit(r)) {
        return;
    }
    misdirect_log(q, r, c, APLOG_ERR, logno, what, extra, hint);
}

static int misdirect_log_transaction(request_rec *r)
{
    /* Every request passes here: only refusals go further. */
    if (r->status == HTTP_MISDIRECTED_REQUEST
        || r->status == HTTP_BAD_REQUEST || r->status == HTTP_FORBIDDEN) {
        misdirect_explain(r);
    }
    return DECLINED;
}

/* The action of a check a vhost leaves unset.  Where the administrator
 * relaxed mod_ssl's SSLVHostSNIPolicy on purpose, so that mod_ssl serves
 * a vhost whose certificate differs from the handshake's, the module
 * follows: it reports such requests rather than refusing them. */
misdirect_action_e misdirect_default_for(misdirect_check_e check,
                                         misdirect_ssl_policy_e ssl)
{
    if (check == MISDIRECT_CHECK_CERT
        && (ssl == MISDIRECT_SSL_POLICY_AUTHONLY
            || ssl == MISDIRECT_SSL_POLICY_INSECURE)) {
        return MISDIRECT_REPORT;
    }
    return misdirect_default_action(check);
}

static int misdirect_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    misdirect_ssl_policy_e ssl;
    server_rec *v;
    int file_order = 0, relaxed = 0, i;

    (void)plog;
    misdirect_tls_profiles_build(pconf, ptemp, s);
    ssl = misdirect_ssl_policy();
    for (v = s; v; v = v->next) {
        misdirect_srv_conf *conf = misdirect_conf(v);

        conf->file_order = file_order++;
        for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
            conf->policy[i] = conf->action[i] == MISDIRECT_UNSET
                              ? misdirect_default_for(i, ssl)
                              : (misdirect_action_e)conf->action[i];
        }
        relaxed += misdirect_tls_enabled(v)
                   && conf->action[MISDIRECT_CHECK_CERT] == MISDIRECT_UNSET
                   && conf->policy[MISDIRECT_CHECK_CERT]
                      != misdirect_default_action(MISDIRECT_CHECK_CERT);
    }
    misdirect_memo.slot = apr_pcalloc(pconf, MISDIRECT_MEMO_SLOTS
                                             * sizeof(*misdirect_memo.slot));
    misdirect_memo.mask = MISDIRECT_MEMO_SLOTS - 1;
    /* Startup reads the configuration twice: speak on the real pass. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        if (relaxed) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, MISDIRECT_LOGNO(014)
                         "SSLVHostSNIPolicy %s: mod_ssl serves requests "
                         "for a virtual host whose certificate differs "
                         "from the handshake's, so cert-mismatch defaults "
                         "to report (logged and served) instead of reject "
                         "in %d virtual host(s); 'MisdirectPolicy "
                         "cert-mismatch reject' refuses them again",
                         misdirect_ssl_policy_name(ssl), relaxed);
        }
        misdirect_lint(ptemp, s);
    }
    return misdirect_status_post_config(pconf, ptemp, s);
}

static void misdirect_test_config(apr_pool_t *pconf, server_rec *s)
{
    /* apachectl configtest stops before post_config: lint here too. */
    misdirect_tls_profiles_build(pconf, pconf, s);
    misdirect_lint(pconf, s);
    misdirect_dump(pconf, s);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                      */

static void *misdirect_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    misdirect_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    (void)s;
    conf->mode = MISDIRECT_UNSET;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        conf->action[i] = MISDIRECT_UNSET;
    }
    conf->allow = NULL;
    conf->exempt = NULL;
    conf->trusted = NULL;
    conf->lint = MISDIRECT_UNSET;
    conf->log_limit = MISDIRECT_UNSET;
    conf->counter_slot = MISDIRECT_UNSET;
    conf->tls = NULL;
    conf->ssl_ctx = NULL;
    conf->ctx_certs = NULL;
    return conf;
}

static apr_array_header_t *misdirect_merge_list(apr_pool_t *p,
                                                apr_array_header_t *base,
                                                apr_array_header_t *add)
{
    if (!base) {
        return add;
    }
    if (!add) {
        return base;
    }
    return apr_array_append(p, base, add);
}

static void *misdirect_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    misdirect_srv_conf *base = basev, *add = addv;
    misdirect_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    conf->mode = add->mode == MISDIRECT_UNSET ? base->mode : add->mode;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        conf->action[i] = add->action[i] == MISDIRECT_UNSET ? base->action[i]
                                                  : add->action[i];
    }
    conf->allow = misdirect_merge_list(p, base->allow, add->allow);
    conf->exempt = misdirect_merge_list(p, base->exempt, add->exempt);
    conf->trusted = misdirect_merge_list(p, base->trusted, add->trusted);
    conf->lint = add->lint == MISDIRECT_UNSET ? base->lint : add->lint;
    conf->log_limit = add->log_limit == MISDIRECT_UNSET ? base->log_limit
                                              : add->log_limit;
    /* Set per vhost at startup, never inherited. */
    conf->counter_slot = MISDIRECT_UNSET;
    conf->tls = NULL;
    conf->ssl_ctx = NULL;
    conf->ctx_certs = NULL;
    return conf;
}

static const char *misdirect_set_mode(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);

    (void)dummy;
    if (!strcasecmp(arg, "On")) {
        conf->mode = MISDIRECT_MODE_ON;
    }
    else if (!strcasecmp(arg, "Off")) {
        conf->mode = MISDIRECT_MODE_OFF;
    }
    else if (!strcasecmp(arg, "ReportOnly")) {
        conf->mode = MISDIRECT_MODE_REPORT_ONLY;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: %s: expected On, Off or "
                            "ReportOnly", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *misdirect_set_policy(cmd_parms *cmd, void *dummy,
                                        const char *check,
                                        const char *action)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    int c = misdirect_check_parse(check);
    int a = misdirect_action_parse(action);
    int i;

    (void)dummy;
    if (c < 0) {
        const char *known = misdirect_check_name(0);

        for (i = 1; i < MISDIRECT_CHECK_COUNT; i++) {
            known = apr_pstrcat(cmd->pool, known,
                                i + 1 < MISDIRECT_CHECK_COUNT ? ", " : " or ",
                                misdirect_check_name(i), NULL);
        }
        return apr_psprintf(cmd->pool, "%s: %s: unknown check, expected %s",
                            cmd->cmd->name, check, known);
    }
    if (a < 0) {
        return apr_psprintf(cmd->pool, "%s: %s: unknown action for %s, "
                            "expected reject, report or allow",
                            cmd->cmd->name, action, check);
    }
    conf->action[c] = a;
    return NULL;
}

static const char *misdirect_add_allow(cmd_parms *cmd, void *dummy,
                                       const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    char *norm = apr_palloc(cmd->pool, strlen(arg) + 64);

    (void)dummy;
    if (misdirect_host_normalize(arg, norm, strlen(arg) + 64) != 0) {
        return apr_psprintf(cmd->pool, "%s: %s: not a host name, "
                            "*.wildcard name or IP address (no scheme, "
                            "port or path)", cmd->cmd->name, arg);
    }
    if (!conf->allow) {
        conf->allow = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(conf->allow, const char *) = norm;
    return NULL;
}

static const char *misdirect_add_exempt(cmd_parms *cmd, void *dummy,
                                        const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);

    (void)dummy;
    if (arg[0] != '/') {
        return apr_psprintf(cmd->pool, "%s: %s: expected a URL-path "
                            "starting with /", cmd->cmd->name, arg);
    }
    if (!conf->exempt) {
        conf->exempt = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(conf->exempt, const char *) = arg;
    return NULL;
}

static const char *misdirect_add_trusted(cmd_parms *cmd, void *dummy,
                                         const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    char *ip = apr_pstrdup(cmd->temp_pool, arg);
    char *mask = strchr(ip, '/');
    apr_ipsubnet_t *sub;
    apr_status_t rv;

    (void)dummy;
    if (mask) {
        *mask++ = '\0';
    }
    switch (misdirect_cidr_check(ip, mask)) {
    case MISDIRECT_CIDR_NOT_ADDRESS:
        return apr_psprintf(cmd->pool, "%s: %s: not a whole IPv4 or IPv6 "
                            "address (write a range as 10.0.0.0/8)",
                            cmd->cmd->name, arg);
    case MISDIRECT_CIDR_BAD_MASK:
        return apr_psprintf(cmd->pool, "%s: %s: the mask must be a prefix "
                            "length (1-32 for IPv4, 1-128 for IPv6) or a "
                            "contiguous IPv4 netmask", cmd->cmd->name, arg);
    case MISDIRECT_CIDR_HOST_BITS:
        return apr_psprintf(cmd->pool, "%s: %s: the address has bits set "
                            "past the mask; write the network address of "
                            "the range, or the single address without a "
                            "mask", cmd->cmd->name, arg);
    default:
        break;
    }
    rv = apr_ipsubnet_create(&sub, ip, mask, cmd->pool);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s: not an IP address or CIDR "
                            "range (%pm)", cmd->cmd->name, arg, &rv);
    }
    if (!conf->trusted) {
        conf->trusted = apr_array_make(cmd->pool, 4,
                                       sizeof(apr_ipsubnet_t *));
    }
    APR_ARRAY_PUSH(conf->trusted, apr_ipsubnet_t *) = sub;
    return NULL;
}

static const char *misdirect_set_lint(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "On") && strcasecmp(arg, "Off")) {
        return apr_psprintf(cmd->pool, "%s: %s: expected On or Off",
                            cmd->cmd->name, arg);
    }
    misdirect_conf(cmd->server)->lint = !strcasecmp(arg, "On");
    return NULL;
}

static const char *misdirect_set_log_limit(cmd_parms *cmd, void *dummy,
                                           const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < 0 || n > 1000000) {
        return apr_psprintf(cmd->pool, "%s: %s: expected a number of lines "
                            "per second from 0 (no limit) to 1000000",
                            cmd->cmd->name, arg);
    }
    misdirect_conf(cmd->server)->log_limit = (int)n;
    return NULL;
}

static void misdirect_register_hooks(apr_pool_t *p)
{
    /* After mod_ssl's own SNI check, whose answer stands wherever it
     * refuses (log_transaction explains it), and after mod_proxy, which
     * marks forward-proxy requests that must not be judged. */
    static const char *const pre[] = { "mod_proxy.c", "mod_ssl.c", NULL };
    static const char *const ssl[] = { "mod_ssl.c", NULL };

    ap_hook_pre_config(misdirect_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(misdirect_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_post_config(misdirect_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(misdirect_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* Just before mod_ssl: what refuses between the mark and the check
     * is mod_ssl, or what httpd sorts beside it. */
    ap_hook_post_read_request(misdirect_mark_reached, NULL, ssl,
                              APR_HOOK_MIDDLE);
    ap_hook_post_read_request(misdirect_post_read_request, pre, NULL,
                              APR_HOOK_MIDDLE);
    ap_hook_log_transaction(misdirect_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(misdirect_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    ap_hook_fixups(misdirect_error_page, NULL, NULL, APR_HOOK_MIDDLE);
    misdirect_status_register_hooks(p);
    APR_OPTIONAL_HOOK(ssl, init_server, misdirect_init_server, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, pre_handshake, misdirect_pre_handshake, NULL,
                      NULL, APR_HOOK_MIDDLE);
}

static const command_rec misdirect_cmds[] = {
    AP_INIT_TAKE1("Misdirect", misdirect_set_mode, NULL, RSRC_CONF,
                  "On, Off or ReportOnly (every reject becomes report)"),
    AP_INIT_TAKE2("MisdirectPolicy", misdirect_set_policy, NULL, RSRC_CONF,
                  "a check, one of " MISDIRECT_CHECK_NAMES "and an action: "
                  "reject, report or allow"),
    AP_INIT_ITERATE("MisdirectAllow", misdirect_add_allow, NULL, RSRC_CONF,
                    "host names, *.wildcard names or IP addresses for "
                    "which no check but scheme-mismatch fires"),
    AP_INIT_ITERATE("MisdirectExempt", misdirect_add_exempt, NULL,
                    RSRC_CONF, "URL-path prefixes that are never rejected"),
    AP_INIT_ITERATE("MisdirectTrustedProxy", misdirect_add_trusted, NULL,
                    RSRC_CONF, "IP addresses or CIDR ranges of gateways "
                    "whose TLS handshakes are not judged"),
    AP_INIT_TAKE1("MisdirectLint", misdirect_set_lint, NULL, RSRC_CONF,
                  "On or Off: warn at startup about configurations that "
                  "will misdirect"),
    AP_INIT_TAKE1("MisdirectLogLimit", misdirect_set_log_limit, NULL,
                  RSRC_CONF, "diagnosis lines per second per process, "
                  "0 for no limit"),
    { NULL }
};

AP_DECLARE_MODULE(misdirect) = {
    STANDARD20_MODULE_STUFF,
    NULL,                       /* create per-directory config */
    NULL,                       /* merge per-directory config */
    misdirect_create_srv_conf,  /* create per-server config */
    misdirect_merge_srv_conf,   /* merge per-server config */
    misdirect_cmds,             /* directives */
    misdirect_register_hooks,   /* register hooks */
    AP_MODULE_FLAG_ALWAYS_MERGE /* every vhost its own config: it holds
                                   the vhost's counters and TLS profile */
};
