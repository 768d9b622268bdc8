/*
 * mod_misdirect: who refused what the check did not refuse.
 *
 * mod_ssl answers 421, 400 and 403 before the module's check (its SNI
 * rules) or after it (a client certificate the handshake did not ask
 * for); a handler or a proxied backend answers 421 of its own.  Each is
 * a misdirect an administrator asks about.  At log_transaction, and
 * earlier for a local ErrorDocument page, the attribution finds who
 * answered and why, from the status, mod_ssl's notes and the model of
 * mod_ssl, once per request: the diagnosis (misdirect_diag.c) words it,
 * the counters count it, the MISDIRECT_* variables carry it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "mod_proxy.h"
#include "apr_strings.h"

/* Does mod_ssl's request check see a server name?  What OpenSSL shows
 * it, which on a resumed TLS 1.2 session is the session's first name,
 * sent in this handshake or not. */
static int misdirect_attrib_sees_sni(const misdirect_req *q)
{
    return q->handshake ? q->handshake->ssl_sees_sni : q->facts.sni_sent;
}

/* Did mod_ssl's access check refuse q's request (403) because its vhost
 * verifies clients more strictly than the handshake's? */
static int misdirect_attrib_verify_refused(request_rec *r,
                                           const misdirect_req *q)
{
    server_rec *hs = misdirect_req_hs(q);

    /* The marks misdirect_request_reached and
     * misdirect_request_judged_clean carry no handshake. */
    return r->status == HTTP_FORBIDDEN && q->handshake && hs
           && hs != r->server
           && misdirect_ssl_forbids(misdirect_model_verify_level(hs),
                                    misdirect_model_verify_level(r->server),
                                    q->handshake->tls13);
}

/* Which refusal of mod_ssl's, before the module's check, explains r's
 * status, recognised by the facts that cause each; 0 where mod_ssl's
 * rules do not explain it.  *detail says why. */
static misdirect_by_e misdirect_attrib_ssl(request_rec *r,
                                           const misdirect_req *q,
                                           const char **detail)
{
    server_rec *hs = misdirect_req_hs(q);
    const char *notes;

    if (!q->facts.tls) {
        return 0;
    }
    notes = apr_table_get(r->notes, "error-notes");
    switch (r->status) {
    case HTTP_MISDIRECTED_REQUEST:
        /* Only mod_ssl answers 421 on R != H before the check; where the
         * model says it would serve, say so rather than pretend. */
        if (q->facts.same_vhost) {
            return 0;
        }
        *detail = !hs || misdirect_model_refuses(hs, r->server)
                  ? "mod_ssl's SSLVHostSNIPolicy refuses the request's "
                    "virtual host on this handshake"
                  : "the model of mod_ssl's policy expected it to serve "
                    "this pair, so a module that runs before "
                    "mod_misdirect may have answered instead";
        return MISDIRECT_BY_SSL_421;
    case HTTP_BAD_REQUEST:
        if (notes && strstr(notes, "speaking plain HTTP")) {
            *detail = "the client spoke plain HTTP to this TLS port";
            return MISDIRECT_BY_SSL_PLAIN;
        }
        if (misdirect_attrib_sees_sni(q) && !q->facts.host_sent) {
            *detail = "SNI was sent but the request named no host";
            return MISDIRECT_BY_SSL_NO_HOST;
        }
        return 0;
    case HTTP_FORBIDDEN:
        if (!misdirect_attrib_sees_sni(q) && notes
            && strstr(notes, "Server Name Indication")) {
            *detail = "SSLStrictSNIVHostCheck requires SNI on this address";
            return MISDIRECT_BY_SSL_STRICT;
        }
        return 0;
    default:
        return 0;
    }
}

/* mod_ssl's refusal after the check: a client certificate that the
 * handshake did not ask for; 0 for none.  *what and *detail say it. */
static misdirect_by_e misdirect_attrib_verify(request_rec *r,
                                              const misdirect_req *q,
                                              const char **what,
                                              const char **detail)
{
    conn_rec *c = r->connection->master ? r->connection->master
                                        : r->connection;

    if (r->status == HTTP_FORBIDDEN && r->connection->master
        && apr_table_get(r->notes, "ssl-renegotiate-forbidden")) {
        /* The client never sees this 403: mod_http2 resets the stream. */
        *what = "mod_ssl refused the stream (HTTP_1_1_REQUIRED)";
        *detail = "the request's virtual host needs a new handshake (its "
                  "SSLVerifyClient or SSLCipherSuite differs from the "
                  "handshake's), which HTTP/2 cannot do, so the client "
                  "must retry over HTTP/1.1";
        return MISDIRECT_BY_SSL_RESET;
    }
    if (!misdirect_attrib_verify_refused(r, q)) {
        return 0;
    }
    if (c->aborted && !q->handshake->tls13
        && !misdirect_model_own_ca(misdirect_req_hs(q), r->server)) {
        /* Over TLS 1.2 mod_ssl renegotiated, the client had no
         * certificate, and the failed handshake ended the connection
         * (a vhost with CA certificates of its own is refused at once,
         * without a renegotiation). */
        *what = "mod_ssl ended the connection without an answer";
        *detail = "mod_ssl renegotiated TLS 1.2 for the request's "
                  "virtual host, which requires a client certificate "
                  "(SSLVerifyClient), and the client sent none, so the "
                  "handshake failed and the client got no answer";
        return MISDIRECT_BY_SSL_ENDED;
    }
    *what = "mod_ssl answered 403";
    *detail = "the request's virtual host verifies client certificates "
              "more strictly (SSLVerifyClient) than the handshake's, and "
              "the client could not present one on this connection";
    return MISDIRECT_BY_SSL_VERIFY;
}

/* Did mod_proxy handle the request (ProxyPass and its kin)? */
static int misdirect_attrib_proxied(request_rec *r)
{
    return r->filename && !strncmp(r->filename, "proxy:", 6);
}

/* ProxyPreserveHost for a proxied request: "on", "off", or "?" where
 * mod_proxy is not loaded. */
static const char *misdirect_attrib_preserve_host(request_rec *r)
{
    const proxy_dir_conf *dc = NULL;
    module *proxy;

    /* Found by name: the module must load without mod_proxy. */
    if ((proxy = ap_find_linked_module("mod_proxy.c"))) {
        dc = ap_get_module_config(r->per_dir_config, proxy);
    }
    return !dc ? "?" : dc->preserve_host ? "on" : "off";
}

/* Who answered a refusal the check did not answer, judged once per
 * request (the ErrorDocument page asks before log_transaction does):
 * what happened, by whom, at which level, and the MISDIRECT_* variables.
 * NULL when the module has nothing to say about r. */
static misdirect_req *misdirect_attrib_refusal(request_rec *r)
{
    misdirect_req *q = ap_get_module_config(r->request_config,
                                            &misdirect_module);
    misdirect_srv_conf *conf = misdirect_config_srv(r->server);
    misdirect_refusal *rf;
    misdirect_req *shown;
    const char *what = NULL, *detail = NULL;
    misdirect_by_e by;
    conn_rec *c;

    if (q && q->refusal) {
        return q;                               /* judged already */
    }
    /* Not reached post_read_request (core refused what it read), a
     * forward-proxy request, or the module's own 421, already
     * explained. */
    if (!q || r->proxyreq == PROXYREQ_PROXY
        || misdirect_config_mode(conf) == MISDIRECT_MODE_OFF
        || (q->decision.fired && q->decision.action == MISDIRECT_REJECT)) {
        return NULL;
    }
    /* Refused between the mark and the check: by mod_ssl, when its rules
     * explain it.  Answered after the check: a 421, or mod_ssl's 403 for
     * a client certificate that the handshake did not ask for. */
    by = misdirect_attrib_verify(r, q, &what, &detail);
    if (!by && q != &misdirect_request_reached
        && r->status != HTTP_MISDIRECTED_REQUEST) {
        return NULL;
    }
    c = r->connection->master ? r->connection->master : r->connection;
    if (q == &misdirect_request_reached
        || q == &misdirect_request_judged_clean) {
        int refused = q == &misdirect_request_reached;

        q = misdirect_request_judge(r, c);
        detail = NULL;
        by = refused ? misdirect_attrib_ssl(r, q, &detail) : 0;
        what = by ? apr_psprintf(r->pool, "mod_ssl answered %d", r->status)
                  : NULL;
    }
    if (!by && r->status == HTTP_MISDIRECTED_REQUEST) {
        by = misdirect_attrib_proxied(r) ? MISDIRECT_BY_BACKEND
                                         : MISDIRECT_BY_HANDLER;
        what = by == MISDIRECT_BY_BACKEND
               ? "a proxied backend answered 421, not mod_ssl or "
                 "mod_misdirect"
               : "the request's handler answered 421, not mod_ssl or "
                 "mod_misdirect";
    }
    if (!by) {
        return NULL;            /* an ordinary 400 or 403 */
    }
    if (!q->cause_known) {
        misdirect_request_find_cause(r, c, q);      /* served, then refused */
    }
    rf = apr_pcalloc(r->pool, sizeof(*rf));
    rf->by = by;
    rf->what = what;
    rf->detail = detail;
    rf->level = APLOG_ERR;
    rf->preserve_host = by == MISDIRECT_BY_BACKEND
                        ? misdirect_attrib_preserve_host(r) : NULL;
    q->refusal = rf;
    shown = q;
    if (by == MISDIRECT_BY_SSL_PLAIN || by == MISDIRECT_BY_SSL_NO_HOST
        || by == MISDIRECT_BY_SSL_STRICT) {
        /* Plain HTTP on a TLS port, no Host, no SNI: mod_ssl's cause is
         * none of the module's checks, and a line that named them would
         * mislead.  The judged record stays as it was. */
        shown = apr_pmemdup(r->pool, q, sizeof(*q));
        shown->found = 0;
        memset(&shown->decision, 0, sizeof(shown->decision));
        if (by == MISDIRECT_BY_SSL_PLAIN) {
            /* No handshake happened: what mod_ssl answers is a request
             * of its own making, on no TLS at all.  Scanners do this all
             * day: no misdirect, so said at mod_ssl's own level. */
            shown->facts.tls = 0;
            shown->handshake = NULL;
            shown->cause = MISDIRECT_CAUSE_OTHER;
            rf->level = APLOG_INFO;
        }
    }
    rf->shown = shown;
    misdirect_request_set_vars(shown, r);
    return q;
}

/* " handler=... backend=... preserve_host=..." for a 421 that the
 * request's handler or a proxied backend answered. */
static const char *
misdirect_attrib_handler_fields(request_rec *r, const misdirect_refusal *rf)
{
    const char *out = apr_pstrcat(r->pool, " by=\"handler\" handler=\"",
                                  r->handler
                                  ? misdirect_text_escape(r->pool,
                                                          r->handler)
                                  : "(none: answered before the handler)",
                                  "\"", NULL);

    if (rf->by == MISDIRECT_BY_BACKEND) {
        out = apr_pstrcat(r->pool, out, " backend=\"",
                          misdirect_text_escape(r->pool, r->filename + 6),
                          "\" preserve_host=\"", rf->preserve_host, "\"",
                          NULL);
    }
    return out;
}

/* A refusal that mod_ssl produced, or a 421 from the handler or a
 * backend, is a misdirect too: explain it with the same line, plus what
 * caused it, and count it. */
static void misdirect_attrib_explain(request_rec *r)
{
    misdirect_req *q = misdirect_attrib_refusal(r);
    misdirect_refusal *rf;
    misdirect_line ln;
    conn_rec *c = r->connection->master ? r->connection->master
                                        : r->connection;

    if (!q || q->refusal->explained) {
        return;
    }
    rf = q->refusal;
    rf->explained = 1;
    ln.level = rf->level;
    ln.what = rf->what;
    ln.detail = rf->detail;
    if (misdirect_refusal_is_ssl(q)) {
        /* A reset stream or an ended connection was answered nothing:
         * no 403 to count. */
        if (rf->by != MISDIRECT_BY_SSL_RESET
            && rf->by != MISDIRECT_BY_SSL_ENDED) {
            misdirect_counters_count_ssl(r->server, r->status);
        }
        ln.logno = MISDIRECT_LOGNO(006);
        ln.extra = " by=\"mod_ssl\"";
        ln.advise = misdirect_diag_ssl_advice;
    }
    else {
        misdirect_counters_count_other(r->server);
        ln.logno = MISDIRECT_LOGNO(007);
        ln.extra = misdirect_attrib_handler_fields(r, rf);
        ln.advise = misdirect_diag_handler_advice;
    }
    misdirect_counters_count_cause(r->server, rf->shown->cause);
    if (!APLOG_R_MODULE_IS_LEVEL(r, APLOG_MODULE_INDEX, ln.level)) {
        return;
    }
    misdirect_diag_log(rf->shown, r, c, &ln);
}

/* A 421 answered with a local ErrorDocument page: httpd serves the page
 * as an internal redirect, on which the error filter hook does not run
 * (misdirect_request.c closes HTTP/1.x connections after any other 421
 * there). */
static int misdirect_attrib_error_page(request_rec *r)
{
    const apr_array_header_t *vars;
    int i;

    if (!r->prev || !ap_is_HTTP_ERROR(r->prev->status)
        || misdirect_config_mode(misdirect_config_srv(r->prev->server))
           == MISDIRECT_MODE_OFF) {
        return DECLINED;
    }
    if (r->prev->status == HTTP_MISDIRECTED_REQUEST
        && !r->connection->master) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    /* httpd copied the refused request's variables into this one, as
     * REDIRECT_*, before the module judged a refusal of mod_ssl's or a
     * handler's: give the page those too.  And since CustomLog's env=
     * condition reads this last request of the chain, publish them under
     * their own names as well, so that a log line of every refusal does
     * not depend on an ErrorDocument. */
    misdirect_attrib_refusal(r->prev);
    vars = apr_table_elts(r->prev->subprocess_env);
    for (i = 0; i < vars->nelts; i++) {
        const apr_table_entry_t *v = &APR_ARRAY_IDX(vars, i,
                                                    apr_table_entry_t);

        if (!strncmp(v->key, "MISDIRECT_", 10)) {
            apr_table_setn(r->subprocess_env,
                           apr_pstrcat(r->pool, "REDIRECT_", v->key, NULL),
                           v->val);
            apr_table_setn(r->subprocess_env, v->key, v->val);
        }
    }
    return DECLINED;
}

static int misdirect_attrib_log_transaction(request_rec *r)
{
    /* httpd logs the last request of the chain: after an ErrorDocument
     * page, the refusal is the first. */
    while (r->prev) {
        r = r->prev;
    }
    /* Every request passes here: only refusals go further. */
    if (r->status == HTTP_MISDIRECTED_REQUEST
        || r->status == HTTP_BAD_REQUEST || r->status == HTTP_FORBIDDEN) {
        misdirect_attrib_explain(r);
    }
    return DECLINED;
}

void misdirect_attrib_register_hooks(void)
{
    /* Before mod_log_config, so that CustomLog and GlobalLog see the
     * variables of the refusals explained here. */
    static const char *const log_config[] = { "mod_log_config.c", NULL };

    ap_hook_log_transaction(misdirect_attrib_log_transaction, NULL,
                            log_config, APR_HOOK_MIDDLE);
    ap_hook_fixups(misdirect_attrib_error_page, NULL, NULL, APR_HOOK_MIDDLE);
}
