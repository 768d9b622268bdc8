/*
 * mod_misdirect: the diagnosis line.
 *
 * One line per finding and per 421, whoever answered it: this module,
 * mod_ssl (its 421, 400 and 403, which misdirect_attrib.c attributes), or
 * a handler or proxied backend.  What happened and what to change first,
 * a sentence in the administrator's terms, then key="value" fields for
 * machines, then a hint at the likely cause and fix in the terms of the
 * client.  Client text is escaped, and MisdirectLogLimit keeps floods out
 * of error_log.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_http2.h"
#include "apr_optional_hooks.h"
#include "apr_strings.h"

static APR_OPTIONAL_FN_TYPE(http2_var_lookup) *misdirect_h2_var;

void misdirect_diag_optional_fns(void)
{
    misdirect_h2_var = APR_RETRIEVE_OPTIONAL_FN(http2_var_lookup);
}

const char *misdirect_diag_h2_stream(request_rec *r)
{
    if (r->connection->master && misdirect_h2_var) {
        return misdirect_h2_var(r->pool, r->server, r->connection, r,
                                (char *)"H2_STREAM_ID");
    }
    return NULL;
}

static int misdirect_sni_is_trailing_dot(const char *sni)
{
    size_t n = sni ? strlen(sni) : 0;

    return n > 1 && sni[n - 1] == '.';
}

/* The longest client value a line shows whole.  httpd cuts an error_log
 * line at 8 KB; a Host that long (core accepts one) would cut the line
 * inside its own field, losing the fields and the hint after it. */
#define MISDIRECT_FIELD_MAX 256

/* Client text for a log field: escaped, and past MISDIRECT_FIELD_MAX
 * bytes shortened, saying how long it was. */
static const char *misdirect_field_value(apr_pool_t *p, const char *v)
{
    apr_size_t len = strlen(v);

    if (len <= MISDIRECT_FIELD_MAX) {
        return misdirect_text_escape(p, v);
    }
    return apr_psprintf(p, "%s...(%" APR_SIZE_T_FMT " bytes)",
                        misdirect_text_escape(p, apr_pstrmemdup(p, v,
                                             MISDIRECT_FIELD_MAX)), len);
}

/* An SNI that names no vhost for a reason of its own form: a trailing
 * dot, or an IP address. */
static int misdirect_sni_odd(const char *sni)
{
    return sni && (misdirect_sni_is_trailing_dot(sni)
                   || misdirect_ip_literal(sni));
}

/* Advice with a brief and a hint. */
static misdirect_advice misdirect_advise(const char *brief, const char *hint)
{
    misdirect_advice a;

    a.brief = brief;
    a.hint = hint;
    return a;
}

/* The advice for an SNI that named none of H's names, so that mod_ssl
 * fell back to the address's default vhost; hint NULL when the SNI
 * selected H (an alias of H, IP literals included, does). */
static misdirect_advice misdirect_fallback_hint(const misdirect_req *q,
                                                conn_rec *c)
{
    server_rec *hs = misdirect_req_hs(q);
    const char *sni = misdirect_req_sni(q);

    if (!sni || !hs
        || misdirect_vhosts_has_name(hs, sni, c->local_addr->port)) {
        return misdirect_advise(NULL, NULL);
    }
    if (misdirect_sni_is_trailing_dot(sni)) {
        return misdirect_advise(
            "the SNI ends in a dot, so the handshake used the default "
            "vhost; send the name without the dot",
            "the SNI ends in a dot, which mod_ssl does not strip, so the "
            "handshake used the default virtual host: make the client "
            "send the name without the trailing dot");
    }
    if (misdirect_ip_literal(sni)) {
        return misdirect_advise(
            "the SNI is an IP address, so the handshake used the default "
            "vhost; connect by host name",
            "the client sent an IP address as SNI, which names no "
            "virtual host, so the handshake used the default one: "
            "connect by host name");
    }
    return misdirect_advise(
        "the SNI names no vhost here, so the handshake used the default "
        "one; add the name as ServerName or ServerAlias",
        "the SNI names no virtual host on this address, so the "
        "handshake used the default virtual host: add the name as "
        "ServerName or ServerAlias of the vhost it belongs to");
}

/* Did the SNI name a vhost without TLS of its own?  mod_ssl then takes
 * that vhost for the handshake's, but keeps the default vhost's TLS
 * context, certificate and all. */
static int misdirect_sni_named_plain(const misdirect_req *q)
{
    server_rec *hs = misdirect_req_hs(q);

    return hs && q->handshake->ctx_vhost && q->handshake->ctx_vhost != hs;
}

static misdirect_advice misdirect_plain_hint(const misdirect_req *q,
                                             request_rec *r)
{
    const char *name = misdirect_req_hs(q)->server_hostname;

    return misdirect_advise(
        "the SNI names a vhost without SSLEngine on; give it SSLEngine on, "
        "or move it off this TLS port",
        apr_psprintf(r->pool, "the SNI names %s, a virtual host of this "
                     "TLS port without SSLEngine on, so mod_ssl refuses "
                     "every other virtual host on this connection: give "
                     "%s SSLEngine on and a certificate, or move it off "
                     "this port", name, name));
}

/* How the clients that send no SNI are told to send the request's
 * host: both hints of a client without SNI name them. */
#define MISDIRECT_SNI_SETTINGS                                            \
    "nginx: proxy_ssl_server_name on; proxy_ssl_name $host; HAProxy: "     \
    "sni req.hdr(host),host_only; httpd: SSLProxyEngine on with "          \
    "ProxyPreserveHost On; openssl s_client, which sends none to an "      \
    "address or localhost: -servername HOST"

/* The advice for a cause that names a client or a gateway, in the terms
 * of the ones that cause it in practice; hint NULL for the others, whose
 * advice follows the check or mod_ssl's refusal. */
static misdirect_advice misdirect_cause_hint(const misdirect_req *q,
                                             request_rec *r)
{
    const misdirect_cause_facts *cf = &q->cause_facts;
    const char *sni = misdirect_req_sni(q);
    const char *host = r->hostname ? misdirect_field_value(r->pool,
                                                           r->hostname)
                                   : "(none)";

    switch (q->cause) {
    case MISDIRECT_CAUSE_NO_SNI:
        return misdirect_advise(
            "no SNI from the client; make it send the request's host as "
            "SNI, or list your proxy's address in MisdirectTrustedProxy",
            "the client sent no SNI, as many reverse proxies and load "
            "balancers do (AWS load balancers to their targets, nginx "
            "and httpd's mod_proxy unless told), so the handshake used "
            "the default virtual host: make it send the request's host "
            "as SNI (" MISDIRECT_SNI_SETTINGS "), or list its address "
            "in MisdirectTrustedProxy");
    case MISDIRECT_CAUSE_SNI_WITH_PORT:
        return misdirect_advise(
            "the proxy copies Host's port into SNI; make it send the "
            "host name alone",
            apr_psprintf(r->pool, "the SNI %s carries a port, so it "
                         "names no virtual host and the handshake used "
                         "the default one: the proxy copies the Host "
                         "header, port and all, into SNI; strip the "
                         "port (HAProxy: sni req.hdr(host),host_only; "
                         "nginx: proxy_ssl_name $host, not $http_host)",
                         sni));
    case MISDIRECT_CAUSE_POOL_REUSE:
        return misdirect_advise(
            "a connection pool reused a connection opened for another "
            "host; give each host its own pool",
            apr_psprintf(r->pool, "request %u on a connection opened "
                         "with SNI %s asks for %s: a connection pool "
                         "that does not key its connections by SNI "
                         "reused it (a proxy's keepalive or HTTP/2 "
                         "pool, or a client library); give each host "
                         "its own pool (nginx: an upstream block with "
                         "keepalive per host, or no keepalive for this "
                         "upstream; Caddy: one reverse_proxy per site; "
                         "HAProxy 2.6 reuses only connections with the "
                         "same SNI)", cf->request_no, sni, host));
    case MISDIRECT_CAUSE_CLIENT_OVERRIDE:
        return misdirect_advise(
            "the client set SNI and Host apart; make it send the "
            "request's host as SNI",
            apr_psprintf(r->pool, "the first request of a connection "
                         "made with SNI %s%s asks for %s, and no "
                         "gateway was involved: the client set SNI and "
                         "Host apart; send the request's host as SNI "
                         "(curl: --resolve %s:PORT:ADDRESS and "
                         "https://%s/ without -H Host; openssl "
                         "s_client, which sends the name it connects "
                         "to: -servername %s)%s", sni,
                         cf->sni_named ? ""
                         : ", which names no virtual host here,",
                         host, host, host, host,
                         cf->sni_named ? ""
                         : "; if the SNI is a name of this site, add it "
                           "as ServerName or ServerAlias"));
    case MISDIRECT_CAUSE_HOST_REWRITTEN:
        return misdirect_advise(
            "a forwarded host names another site; if your gateway set "
            "it, make the gateway keep the client's Host",
            apr_psprintf(r->pool, "a gateway rewrote Host to %s but "
                         "forwarded another virtual host's name "
                         "(x_forwarded_host or forwarded; any client "
                         "can send these, so check that a gateway of "
                         "yours did), so %s served a page meant for "
                         "that site: make the gateway keep the "
                         "client's Host (httpd: "
                         "ProxyPreserveHost On; Traffic Server: "
                         "proxy.config.url_remap.pristine_host_hdr 1; "
                         "nginx: proxy_set_header Host $host)", host,
                         r->server->server_hostname));
    case MISDIRECT_CAUSE_OTHER:
        if (q->facts.tls && sni && !cf->sni_named && cf->gateway) {
            return misdirect_advise(
                "a gateway sent an SNI that names no vhost here; make it "
                "send the request's host as SNI",
                apr_psprintf(r->pool, "a gateway sent SNI %s, which "
                             "names no virtual host on this address, so "
                             "the handshake used the default one: make "
                             "it send the request's host as SNI (nginx: "
                             "proxy_ssl_name $host; HAProxy: sni "
                             "req.hdr(host),host_only)", sni));
        }
        if (q->facts.tls && !q->facts.same_vhost && cf->sni_named
            && cf->gateway && cf->request_no <= 1) {
            return misdirect_advise(
                "a gateway sends one fixed SNI for every host; make it "
                "send the request's host as SNI",
                apr_psprintf(r->pool, "a gateway opened a connection "
                             "with SNI %s for a request for %s: it "
                             "sends one fixed name as SNI; make it send "
                             "the request's host (nginx: proxy_ssl_name "
                             "$host; HAProxy: sni req.hdr(host),"
                             "host_only; Caddy: tls_server_name "
                             "{http.request.host})", sni, host));
        }
        return misdirect_advise(NULL, NULL);
    default:
        return misdirect_advise(NULL, NULL);
    }
}

/* A certificate that does not cover the host: the module's finding and
 * mod_ssl's refusal say the same first. */
#define MISDIRECT_CERT_BRIEF                                              \
    "the certificate does not cover the host; check the SNI the client "  \
    "or proxy sends, and the name's DNS"

/* A client that reused a connection for another name of its
 * certificate: the start of the brief of every such line. */
#define MISDIRECT_REUSE_BRIEF \
    "legitimate reuse of a connection for a name of its certificate"

/* The advice of a finding of the module's own: the likely cause and the
 * fix. */
static misdirect_advice misdirect_hint(const misdirect_req *q,
                                       request_rec *r, conn_rec *c,
                                       const char *diff)
{
    const misdirect_facts *f = &q->facts;
    misdirect_check_e reason = q->decision.reason;
    int tls_reason = (MISDIRECT_BIT(reason) & MISDIRECT_TLS_CHECKS) != 0;
    misdirect_advice fallback = misdirect_advise(NULL, NULL), hint;

    if (reason == MISDIRECT_CHECK_SCHEME) {
        return misdirect_advise(
            "the URL's scheme does not match this connection; point the "
            "client at the right port",
            "the client asked for a URL whose scheme does not match "
            "this connection (https:// over plain HTTP or http:// over "
            "TLS): point it at the right port, or fix the proxy that "
            "forwards absolute URLs");
    }
    if (tls_reason) {
        fallback = misdirect_fallback_hint(q, c);
    }
    if (fallback.hint && misdirect_sni_odd(misdirect_req_sni(q))) {
        return fallback;
    }
    /* A client that reuses a connection for a name of its certificate
     * gets the advice of that check below, whatever else is known. */
    if ((tls_reason && reason != MISDIRECT_CHECK_SNI_HOST)
        || reason == MISDIRECT_CHECK_FORWARDED) {
        hint = misdirect_cause_hint(q, r);
        if (hint.hint) {
            return hint;
        }
    }
    if (fallback.hint) {
        return fallback;
    }
    if (tls_reason && misdirect_sni_named_plain(q)) {
        return misdirect_plain_hint(q, r);
    }
    switch (reason) {
    case MISDIRECT_CHECK_SNI_HOST:
        if (misdirect_model_verify_level(r->server)
            > misdirect_model_verify_level(misdirect_req_hs(q))) {
            return misdirect_advise(
                "a reused connection, but this vhost verifies client "
                "certificates more strictly; give both the same "
                "SSLVerifyClient",
                "a client (typically a browser on HTTP/2) reused a "
                "connection for another name its certificate covers, but "
                "the request's vhost verifies client certificates more "
                "strictly (SSLVerifyClient) than the handshake's, so "
                "mod_ssl asks for a certificate this connection never "
                "offered and may refuse the request: give both vhosts the "
                "same SSLVerifyClient, or the verifying vhost a "
                "certificate of its own");
        }
        if (diff) {
            return misdirect_advise(
                "a connection was reused for a vhost with other TLS "
                "settings; give both vhosts the same settings",
                apr_psprintf(r->pool, "a client (typically a browser "
                             "on HTTP/2) reused a connection for "
                             "another name its certificate covers; "
                             "their TLS settings differ (tls_differs), "
                             "which SSLVHostSNIPolicy %s lets through: "
                             "give both the same settings, or separate "
                             "certificates",
                             misdirect_settings_policy_name(
                                 misdirect_model_policy())));
        }
        /* Under ReportOnly, what Misdirect On will do. */
        return q->decision.action == MISDIRECT_REJECT
               || q->decision.action == MISDIRECT_WOULD_REJECT
               ? misdirect_advise(
                   MISDIRECT_REUSE_BRIEF "; 'MisdirectPolicy "
                   "sni-host-mismatch allow' serves it",
                   "a client (typically a browser on HTTP/2) reused a "
                   "connection for another name its certificate covers, "
                   "and mod_ssl accepts the two virtual hosts' TLS "
                   "settings together: this reuse is legitimate; "
                   "'MisdirectPolicy sni-host-mismatch allow' serves it")
               : q->decision.action == MISDIRECT_REPORT
               ? misdirect_advise(
                   MISDIRECT_REUSE_BRIEF "; 'MisdirectPolicy "
                   "sni-host-mismatch allow' stops these lines",
                   "a client (typically a browser on HTTP/2) reused a "
                   "connection for another name its certificate covers, "
                   "and mod_ssl accepts the two virtual hosts' TLS "
                   "settings together: this reuse is legitimate; "
                   "'MisdirectPolicy sni-host-mismatch allow' stops these "
                   "lines")
               : misdirect_advise(
                   MISDIRECT_REUSE_BRIEF "; nothing to change",
                   "a client (typically a browser on HTTP/2) reused a "
                   "connection for another name its certificate covers, "
                   "and mod_ssl accepts the two virtual hosts' TLS "
                   "settings together: this reuse is legitimate and "
                   "served; nothing to change");
    case MISDIRECT_CHECK_CERT:
        return misdirect_advise(
            MISDIRECT_CERT_BRIEF,
            "the certificate of this connection does not cover the "
            "requested host, so no correct client sends it here: check "
            "the SNI your client or proxy sends and the DNS of the "
            "name");
    case MISDIRECT_CHECK_SNI_MISSING:
        return misdirect_advise(
            "no SNI from the client; make it send SNI, or list your "
            "proxy's address in MisdirectTrustedProxy",
            "the client sent no SNI on an address with name-based "
            "virtual hosts: make it send SNI, or list its address in "
            "MisdirectTrustedProxy");
    case MISDIRECT_CHECK_UNKNOWN_HOST:
        if (!f->host_sent) {
            return misdirect_advise(
                "the request named no host; make the client send Host",
                "the request named no host (HTTP/1.0 without Host), so "
                "the default virtual host answered: make the client "
                "send Host");
        }
        return misdirect_advise(
            "no vhost here is named for the host; add the name as "
            "ServerAlias if it is yours",
            "no virtual host on this address is named for the "
            "request's host: DNS may point here by mistake or a proxy "
            "rewrites Host; add the name as ServerAlias if it is yours");
    case MISDIRECT_CHECK_PORT:
        return misdirect_advise(
            "the host names another port than the connection's; make "
            "the proxy keep the port",
            "the host names another port than the one the connection "
            "reached, typical of a port-forwarding proxy or NAT: make it "
            "keep the port, or 'MisdirectPolicy port-mismatch allow'");
    default:
        return misdirect_advise(NULL, NULL);
    }
}

/* The opening sentence of a line, naming what happened in the admin's
 * terms. */
static const char *misdirect_sentence(const misdirect_req *q, request_rec *r,
                                      conn_rec *c, const char *host)
{
    server_rec *hs = misdirect_req_hs(q);
    apr_pool_t *p = r->pool;
    const char *hname = !hs ? "?"
        : misdirect_sni_named_plain(q)
        ? apr_psprintf(p, "%s (no SSLEngine on, so the handshake kept the "
                       "TLS context of %s)", hs->server_hostname,
                       q->handshake->ctx_vhost->server_hostname)
        : hs->server_hostname;

    if (!q->decision.fired) {
        /* Nothing left to judge: say which vhosts the request met, and
         * whether the lists forgave what the checks found. */
        return apr_psprintf(p, "host %s selects virtual host %s%s%s%s",
                            host, r->server->server_hostname,
                            hs ? " on a connection set up for " : "",
                            hs ? hname : "",
                            q->found ? "; MisdirectAllow or "
                                       "MisdirectTrustedProxy forgave what "
                                       "mod_misdirect found" : "");
    }
    switch (q->decision.reason) {
    case MISDIRECT_CHECK_SCHEME:
        return apr_psprintf(p, "the request-target's scheme %s does not "
                            "match this %s connection",
                            misdirect_text_escape(p, q->facts.scheme),
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
    case MISDIRECT_CHECK_FORWARDED: {
        const char *xfh = apr_table_get(r->headers_in, "X-Forwarded-Host");
        char fwd[256];
        server_rec *named = NULL;

        if (misdirect_forwarded_host(xfh, xfh ? NULL
                                     : apr_table_get(r->headers_in,
                                                     "Forwarded"),
                                     fwd, sizeof(fwd)) == 0) {
            named = misdirect_names_vhost(c, fwd, r->server);
        }
        return apr_psprintf(p, "host %s selects virtual host %s, but the "
                            "request says it was forwarded for %s, a name "
                            "of virtual host %s: if a gateway of yours set "
                            "that, the page served is another site's", host,
                            r->server->server_hostname,
                            named ? misdirect_text_escape(p, fwd) : "?",
                            named ? named->server_hostname : "?");
    }
    case MISDIRECT_CHECK_PORT:
        return apr_psprintf(p, "host names port %u but the connection "
                            "reached port %u", q->facts.host_port,
                            (unsigned int)c->local_addr->port);
    default:
        return "";
    }
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
                       misdirect_field_value(r->pool, v), "\"", NULL);
}

/* A sentence first, then key="value" fields for machines. */
void misdirect_diag_log(const misdirect_req *q, request_rec *r, conn_rec *c,
                        const misdirect_line *ln)
{
    server_rec *hs = misdirect_req_hs(q);
    apr_pool_t *p = r->pool;
    const char *host_hdr = apr_table_get(r->headers_in, "Host");
    const char *host = r->hostname ? misdirect_field_value(p, r->hostname)
                                   : "(none)";
    const char *proto = r->protocol ? r->protocol : "-";
    const char *stream = misdirect_diag_h2_stream(r);
    const char *tls = "", *forgiven = "", *ua = "";
    const char *diff = NULL, *brief;
    misdirect_advice advice;
    int request_no = q->request_no;
    const char *line, *key;
    char checks[256];

    /* What makes two lines the same line, for MisdirectLogLimit: a
     * repeat is counted, and its line never built. */
    key = apr_psprintf(p, " cause=\"%s\" handshake_vhost=\"%s\" "
                       "request_vhost=\"%s\" sni=\"%s\" host=\"%s\"",
                       misdirect_cause_name(q->cause),
                       q->facts.tls ? misdirect_vhosts_desc(p, hs)
                                    : "(none: not TLS)",
                       misdirect_vhosts_desc(p, r->server),
                       misdirect_req_sni(q) ? misdirect_req_sni(q)
                                            : "(none)", host);
    if (misdirect_fold_repeat(r, ln->level, ln->logno, key)) {
        return;
    }
    if (stream) {
        /* Client streams are odd: 1, 3, 5 are requests 1, 2, 3 (the
         * cause read it so already). */
        request_no = q->cause_known ? (int)q->cause_facts.request_no
                                    : (atoi(stream) + 1) / 2;
        proto = apr_pstrcat(p, "h2\" stream=\"", stream, NULL);
    }
    if (q->handshake) {
        const misdirect_handshake *hk = q->handshake;

        tls = apr_psprintf(p, " sni=\"%s\" tls_resumed=\"%s\" alpn=\"%s\"",
                           hk->sni_sent ? hk->sni : "(none)",
                           hk->resumed ? "yes" : "no",
                           hk->alpn[0] ? misdirect_text_escape(p, hk->alpn)
                                       : "(none)");
    }

    if (q->facts.tls && hs && hs != r->server
        && r->status != HTTP_BAD_REQUEST && r->status != HTTP_FORBIDDEN) {
        misdirect_ssl_policy_e pol = misdirect_model_policy();

        /* Built once: the hint asks whether anything differs. */
        diff = misdirect_model_differences(p, hs, r->server);
        /* What the module's model says mod_ssl decides for this pair. */
        tls = apr_psprintf(p, "%s ssl_policy=\"%s\" ssl_verdict=\"%s\" "
                           "tls_differs=\"%s\"", tls,
                           misdirect_settings_policy_name(pol),
                           misdirect_model_refuses(hs, r->server)
                           ? "refuse" : "serve",
                           diff ? diff
                           : pol == MISDIRECT_SSL_POLICY_INSECURE
                           ? "(not compared under SSLVHostSNIPolicy "
                             "insecure)" : "none");
    }
    if (r->useragent_addr && r->useragent_addr != c->client_addr) {
        /* mod_remoteip's client, as a header or PROXY preamble says. */
        ua = apr_psprintf(p, " useragent=\"%s:%u\"", r->useragent_ip,
                          (unsigned int)r->useragent_addr->port);
    }

    if (q->found & ~q->decision.fired) {
        forgiven = apr_pstrcat(p, " forgiven=\"",
                               misdirect_text_check_list(p, q->found
                                                      & ~q->decision.fired),
                               "\"", NULL);
    }

    advice = (ln->advise ? ln->advise : misdirect_hint)(q, r, c, diff);
    /* What happened and what to change come first, in a few words: a
     * reader who stops there knows what to do. */
    brief = advice.brief ? apr_pstrcat(p, advice.brief, ". ", NULL) : "";
    line = apr_psprintf(p,
                  "%s%s: %s%s%s%s. reason=\"%s\" cause=\"%s\" checks=\"%s\"%s "
                  "client=\"%s:%u\"%s "
                  "local=\"%s:%u\" proto=\"%s\" request=\"%d\"%s "
                  "handshake_vhost=\"%s\" request_vhost=\"%s\" host=\"%s\" "
                  "host_header=\"%s\"%s%s%s hint=\"%s\"",
                  ln->logno, ln->what, brief, ln->detail ? ln->detail : "",
                  ln->detail ? ": " : "", misdirect_sentence(q, r, c, host),
                  q->decision.fired
                      ? misdirect_check_name(q->decision.reason) : "none",
                  misdirect_cause_name(q->cause),
                  q->decision.fired
                      ? misdirect_format_checks(&q->decision, checks,
                                                sizeof(checks))
                      : "none",
                  forgiven, c->client_ip, (unsigned int)c->client_addr->port,
                  ua, c->local_ip, (unsigned int)c->local_addr->port,
                  proto, request_no, tls,
                  q->facts.tls ? misdirect_vhosts_desc(p, hs)
                               : "(none: not TLS)",
                  misdirect_vhosts_desc(p, r->server), host,
                  host_hdr ? misdirect_field_value(p, host_hdr) : "(none)",
                  misdirect_header_field(r, "x_forwarded_host",
                                         "X-Forwarded-Host"),
                  misdirect_header_field(r, "forwarded", "Forwarded"),
                  ln->extra ? ln->extra : "",
                  advice.hint ? advice.hint : "");
    /* Written now, or folded, or held for a second with room (lines
     * below warn, asked for or logged at info as mod_ssl logs them, are
     * always written). */
    if (misdirect_fold_line(r, ln->level, ln->logno, key, line)) {
        ap_log_rerror(APLOG_MARK, ln->level, 0, r, "%s", line);
    }
}

/* mod_ssl's fallback advice, and that it then compared TLS settings. */
static misdirect_advice misdirect_ssl_fallback(request_rec *r,
                                               misdirect_advice fallback)
{
    return misdirect_advise(fallback.brief,
                            apr_pstrcat(r->pool, fallback.hint,
                                        "; mod_ssl then compared that "
                                        "vhost's TLS settings with the "
                                        "request's (tls_differs)", NULL));
}

/* The advice of a refusal of mod_ssl's, by the kind the attribution
 * found, then by what the record says of its cause. */
misdirect_advice misdirect_diag_ssl_advice(const misdirect_req *q,
                                           request_rec *r, conn_rec *c,
                                           const char *diff)
{
    misdirect_advice fallback = misdirect_fallback_hint(q, c), hint;
    misdirect_by_e by = q->refusal ? q->refusal->by : MISDIRECT_BY_SSL_421;

    (void)diff;
    if (by == MISDIRECT_BY_SSL_PLAIN) {
        return misdirect_advise(
            "a client or proxy sends http:// to a TLS port; point it at "
            "https://, or at the plain HTTP port",
            "a client or proxy sends http:// to a port that expects "
            "https://: point it at https://, or at the plain HTTP port");
    }
    if (by == MISDIRECT_BY_SSL_NO_HOST) {
        return misdirect_advise(
            "the request named no host; make the client send Host",
            "the client named a host in SNI but none in the request "
            "(HTTP/1.0 without Host): make it send Host");
    }
    if (by == MISDIRECT_BY_SSL_ENDED) {
        return misdirect_advise(
            "the vhost requires a client certificate the client does not "
            "have; give both vhosts the same SSLVerifyClient",
            "the client reached a virtual host that requires a client "
            "certificate on a connection whose handshake did not ask for "
            "one (another vhost's, or none: see sni), and it has none to "
            "give when mod_ssl renegotiates: give the vhosts one "
            "connection may reach the same SSLVerifyClient, or make the "
            "client send this vhost's name as SNI and a certificate its "
            "SSLCACertificateFile accepts");
    }
    if (by == MISDIRECT_BY_SSL_VERIFY || by == MISDIRECT_BY_SSL_RESET) {
        return misdirect_advise(
            "the vhost wants a client certificate the handshake did not "
            "ask for; give both vhosts the same SSLVerifyClient",
            "the request's vhost verifies client certificates more "
            "strictly than the handshake's, and a client cannot present "
            "one after the handshake (TLS 1.3 offers only post-handshake "
            "authentication, which browsers and curl do not use; over "
            "TLS 1.2 the renegotiation found none; HTTP/2 allows "
            "neither): give the vhosts that one connection may reach the "
            "same SSLVerifyClient, or the vhost that verifies clients a "
            "certificate of its own");
    }
    if (by == MISDIRECT_BY_SSL_STRICT) {
        return misdirect_advise(
            "the client sent no SNI, which SSLStrictSNIVHostCheck "
            "requires; make it send SNI",
            "SSLStrictSNIVHostCheck On refuses clients without SNI: "
            "make the client or proxy send SNI, or turn the check off "
            "for trusted proxies");
    }
    if (misdirect_sni_named_plain(q)) {
        return misdirect_plain_hint(q, r);
    }
    if (fallback.hint && misdirect_sni_odd(misdirect_req_sni(q))) {
        return misdirect_ssl_fallback(r, fallback);
    }
    if (q->found && !q->decision.fired) {
        return misdirect_advise(
            "mod_misdirect trusts this client but mod_ssl refuses it; "
            "relax SSLVHostSNIPolicy, or make the client send SNI",
            "mod_misdirect trusts this request (MisdirectTrustedProxy "
            "or MisdirectAllow), but mod_ssl's SSLVHostSNIPolicy still "
            "refuses a virtual host whose TLS settings differ from the "
            "handshake's (tls_differs): set SSLVHostSNIPolicy insecure "
            "where you trust the proxy, or make it send SNI");
    }
    if (q->cause == MISDIRECT_CAUSE_NO_SNI) {
        return misdirect_advise(
            "the client sent no SNI; make it send the request's host as "
            "SNI, or give the default vhost the same TLS settings",
            "the client sent no SNI, so mod_ssl used the default "
            "virtual host's TLS settings, which differ from the "
            "request's vhost (tls_differs): make the proxy send SNI "
            "(" MISDIRECT_SNI_SETTINGS "), or give the default vhost "
            "the same TLS settings");
    }
    hint = misdirect_cause_hint(q, r);
    if (hint.hint) {
        return hint;
    }
    if (q->cause == MISDIRECT_CAUSE_BROWSER_REUSE) {
        return misdirect_advise(
            "a browser reused its connection for another name of the "
            "certificate; give both vhosts the same TLS settings",
            "a browser reused an HTTP/2 connection for another name its "
            "certificate covers, as HTTP/2 allows, and mod_ssl refuses "
            "the two virtual hosts' different TLS settings "
            "(tls_differs): browsers retry on a new connection, so "
            "pages still load, a little slower; give both vhosts the "
            "same TLS settings, or each its own certificate so that "
            "browsers do not reuse the connection");
    }
    if (fallback.hint) {
        return misdirect_ssl_fallback(r, fallback);
    }
    if (q->facts.host_sent && !q->facts.host_known) {
        return misdirect_advise(
            "no vhost here is named for the host; add the name to the "
            "vhost it belongs to",
            "the host names no virtual host on this address (the "
            "certificate may name it, but no ServerName or ServerAlias "
            "does), so the default one answered, and mod_ssl refuses "
            "that vhost on this handshake: add the name to the vhost it "
            "belongs to");
    }
    if (misdirect_model_policy() == MISDIRECT_SSL_POLICY_STRICT) {
        return misdirect_advise(
            "SSLVHostSNIPolicy strict refuses any other vhost; make the "
            "client send the request's host as SNI",
            "SSLVHostSNIPolicy strict refuses every request for another "
            "virtual host than the handshake's: make the client send "
            "the request's host as SNI, or relax the policy to secure");
    }
    if (q->facts.sni_sent && q->facts.handshake_known
        && !q->facts.cert_covers) {
        return misdirect_advise(
            MISDIRECT_CERT_BRIEF,
            "the certificate of this connection does not cover the "
            "requested host, so no browser reuses the connection for "
            "it and no correct client sends it here (and mod_ssl's "
            "SSLVHostSNIPolicy refuses its vhost's other TLS "
            "settings): check the SNI your client or proxy sends and "
            "the DNS of the name");
    }
    return misdirect_advise(
        "the two vhosts' TLS settings differ (tls_differs); give both "
        "the same settings",
        "mod_ssl's SSLVHostSNIPolicy refuses to serve a virtual host "
        "whose TLS settings differ from the handshake's (tls_differs): "
        "give both the same settings, or separate certificates so that "
        "clients open a new connection");
}

/* The advice of a 421 that the handler or a proxied backend answered. */
misdirect_advice misdirect_diag_handler_advice(const misdirect_req *q,
                                               request_rec *r, conn_rec *c,
                                               const char *diff)
{
    const misdirect_refusal *rf = q->refusal;

    (void)r;
    (void)c;
    (void)diff;
    if (rf && rf->by == MISDIRECT_BY_BACKEND && rf->preserve_host
        && !strcmp(rf->preserve_host, "off")) {
        return misdirect_advise(
            "the backend decided it; see its logs, and keep the client's "
            "Host with ProxyPreserveHost On",
            "the backend decided this 421 itself: see its own logs; "
            "a backend behind ProxyPass often wants the client's "
            "Host (ProxyPreserveHost On, off here), or SNI that matches "
            "it");
    }
    return rf && rf->by == MISDIRECT_BY_BACKEND
        ? misdirect_advise(
            "the backend decided it; see its logs",
            "the backend decided this 421 itself: see its own logs, and "
            "the SNI the proxy sends it (SSLProxy*), which the backend "
            "may compare with the Host it gets")
        : misdirect_advise(
            "the configuration or the application decided it; see "
            "their rules and logs for this URL",
            "the configuration or the application decided this 421 "
            "itself (a RewriteRule [R=421], a Redirect 421, a "
            "script's Status: 421): see the rules and the "
            "application's logs for this URL");
}
