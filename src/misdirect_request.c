/*
 * mod_misdirect: the request check.
 *
 * Every request read from a client, after mod_ssl's own check: the facts
 * (which vhost the handshake chose, which one the host chose, what the
 * certificate covers), the checks that fire, what MisdirectAllow and
 * MisdirectTrustedProxy forgive, the action of the rest, the MISDIRECT_*
 * variables, and the 421.  The hook that closes an HTTP/1.x connection
 * after a 421 of httpd's error path, and the marks that let
 * misdirect_attrib.c tell who answered a request the check did not, are
 * here too.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "apr_network_io.h"
#include "apr_strings.h"

int misdirect_request_host_allowed(const misdirect_srv_conf *conf,
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

/* Does a gateway's X-Forwarded-Host or Forwarded host= name another
 * vhost of this address than the one the request reached?  Then the
 * gateway rewrote Host, and the page served is another site's.  Two
 * table lookups on a request without those headers. */
static int misdirect_forwarded_other(request_rec *r, conn_rec *c)
{
    const char *xfh = apr_table_get(r->headers_in, "X-Forwarded-Host");
    const char *fwd = xfh ? NULL : apr_table_get(r->headers_in, "Forwarded");
    char host[256];

    if ((!xfh && !fwd)
        || misdirect_forwarded_host(xfh, fwd, host, sizeof(host)) != 0
        || (r->hostname && !strcasecmp(host, r->hostname))
        || misdirect_vhosts_has_name(r->server, host, c->local_addr->port)) {
        return 0;
    }
    return misdirect_names_vhost(c, host, r->server) != NULL;
}

/* Did a gateway handle the request on its way: Via, Forwarded or an
 * X-Forwarded-* or X-Real-IP header?  Read on the refused path only. */
static int misdirect_gateway_seen(request_rec *r)
{
    static const char *const headers[] = {
        "Via", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
        "X-Forwarded-Proto", "X-Real-IP"
    };
    size_t i;

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (apr_table_get(r->headers_in, headers[i])) {
            return 1;
        }
    }
    return 0;
}

/* The likely cause of what q found, from its facts and a few more: the
 * SNI's shape, which request of its connection this is, the protocol,
 * and whether a gateway handled it. */
void misdirect_request_find_cause(request_rec *r, conn_rec *c,
                                  misdirect_req *q)
{
    misdirect_cause_facts *cf = &q->cause_facts;
    const char *sni = misdirect_req_sni(q);
    server_rec *hs = misdirect_req_hs(q);
    const char *stream = misdirect_diag_h2_stream(r);

    memset(cf, 0, sizeof(*cf));
    cf->reason = q->decision.fired ? (int)q->decision.reason : -1;
    cf->sni_port = misdirect_sni_has_port(sni);
    cf->sni_named = sni && hs
                    && (hs != c->base_server
                        || misdirect_vhosts_has_name(hs, sni,
                                                     c->local_addr->port));
    cf->h2 = r->connection->master != NULL;
    cf->gateway = misdirect_gateway_seen(r);
    /* Client streams are odd: 1, 3, 5 are requests 1, 2, 3. */
    cf->request_no = stream ? (unsigned int)(atoi(stream) + 1) / 2
                            : (unsigned int)q->request_no;
    q->cause = misdirect_cause(&q->facts, cf);
    q->cause_known = 1;
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
    *hk = misdirect_tls_handshake_get(c, scratch);
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
    name = r->hostname ? misdirect_vhosts_has_name(r->server, r->hostname,
                                                   c->local_addr->port)
                       : 0;
    f->host_known = name != 0;
    if (f->handshake_known && !f->same_vhost) {
        f->cert_covers = misdirect_tls_cert_covers(*hk, r->server, name,
                                                   r->hostname);
    }
    if (r->parsed_uri.scheme && r->parsed_uri.hostname) {
        f->scheme = r->parsed_uri.scheme;
    }
    f->host_port = r->parsed_uri.port_str ? r->parsed_uri.port : 0;
    f->local_port = c->local_addr->port;
    f->forwarded_other = misdirect_forwarded_other(r, c);
    return name;
}

/* The record of a request the module found something in, kept until the
 * request ends (its log line, its variables, the explanation of a 421
 * that comes later).  hk is the connection's record, or scratch, a
 * stream's own reading of the handshake on the caller's stack; late:
 * judged after the response (a refusal the check did not see). */
static misdirect_req *misdirect_req_make(request_rec *r, conn_rec *c,
                                         const misdirect_facts *f,
                                         unsigned int found,
                                         const misdirect_handshake *hk,
                                         const misdirect_handshake *scratch,
                                         int late)
{
    misdirect_req *q = apr_pcalloc(r->pool, sizeof(*q));

    q->facts = *f;
    q->found = found;
    if (hk) {
        /* The connection's record lasts as long as the connection. */
        q->handshake = !hk->tls ? NULL
                       : hk == scratch ? apr_pmemdup(r->pool, hk, sizeof(*hk))
                       : hk;
    }
    /* Judged late, after the response: ap_set_keepalive has counted this
     * request already, if the connection goes on. */
    q->request_no = c->keepalives
                    + (late && r->connection->keepalive == AP_CONN_KEEPALIVE
                       ? 0 : 1);
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
                                  misdirect_request_host_allowed(
                                      conf, r->hostname),
                                  (fired & MISDIRECT_TLS_CHECKS)
                                  && misdirect_peer_trusted(conf, c));
    }
    if (fired) {
        misdirect_decide(fired, conf->policy, misdirect_config_mode(conf),
                         misdirect_path_exempt(conf, r), &q->decision);
    }
    return fired;
}

misdirect_req *misdirect_request_judge(request_rec *r, conn_rec *c)
{
    const misdirect_handshake *hk;
    misdirect_handshake scratch;
    misdirect_facts f;
    misdirect_req *q;

    misdirect_gather(r, c, &f, &hk, &scratch);
    q = misdirect_req_make(r, c, &f, misdirect_evaluate(&f), hk, &scratch,
                           1);
    misdirect_judge(r, c, misdirect_config_srv(r->server), q);
    misdirect_request_find_cause(r, c, q);
    return q;
}

/* Marks every request that reached mod_ssl's post_read_request: a
 * refusal of a request so marked, but not judged by the module, came from
 * a hook that ran in between, which is where mod_ssl refuses. */
const misdirect_req misdirect_request_reached;

/* Marks a request the check judged and found clean, so that a 421 it
 * ends with is known to come from a later phase, without allocating. */
const misdirect_req misdirect_request_judged_clean;

static int misdirect_mark_reached(request_rec *r)
{
    ap_set_module_config(r->request_config, &misdirect_module,
                         (void *)&misdirect_request_reached);
    return DECLINED;
}

/* Is this the h2c stream 1 that replays an HTTP/1.1 request the module
 * already checked before the connection was upgraded? */
static int misdirect_h2c_replay(request_rec *r, conn_rec *c)
{
    misdirect_conn_ctx *cc = misdirect_conn_get(c);
    const char *id;

    if (!cc || !cc->h2c_checked) {
        return 0;
    }
    id = misdirect_diag_h2_stream(r);
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
    misdirect_conn_make(c)->h2c_checked = 1;
}

/* Publishes a finding to CustomLog, SetEnvIf and ErrorDocument pages,
 * and a refusal the module explains to CustomLog and ErrorDocument pages
 * (those of mod_ssl and handlers carry MISDIRECT_BY; their action is
 * reject, their reason the module's own, or none).  Client text is
 * stored escaped, so no consumer can be fooled by it. */
void misdirect_request_set_vars(const misdirect_req *q, request_rec *r)
{
    apr_table_t *e = r->subprocess_env;
    server_rec *hs = misdirect_req_hs(q);
    int fired = q->decision.fired != 0;

    /* Set, not added: a request served despite a finding can end in a
     * handler's 421, which publishes it again. */
    apr_table_setn(e, "MISDIRECT_REASON", fired
                   ? misdirect_check_name(q->decision.reason) : "none");
    /* mod_ssl's refusal is a reject, whatever the module's checks would
     * do; a handler's 421 after the module served the request keeps the
     * module's action. */
    apr_table_setn(e, "MISDIRECT_ACTION",
                   misdirect_refusal_is_ssl(q) || !fired
                   ? "reject" : misdirect_action_name(q->decision.action));
    apr_table_setn(e, "MISDIRECT_CHECKS", fired
                   ? misdirect_text_check_list(r->pool, q->decision.fired)
                   : "none");
    apr_table_setn(e, "MISDIRECT_BY", misdirect_refusal_by(q)
                                      ? misdirect_refusal_by(q) : "module");
    if (misdirect_req_sni(q)) {
        apr_table_setn(e, "MISDIRECT_SNI", misdirect_req_sni(q));
    }
    if (hs) {
        apr_table_setn(e, "MISDIRECT_HANDSHAKE_VHOST", hs->server_hostname);
    }
    apr_table_setn(e, "MISDIRECT_REQUEST_VHOST", r->server->server_hostname);
    apr_table_setn(e, "MISDIRECT_CAUSE", misdirect_cause_name(q->cause));
}

/* How each action is logged, indexed by misdirect_action_e. */
static const misdirect_line misdirect_outcomes[] = {
    { APLOG_DEBUG, MISDIRECT_LOGNO(003), "Misdirect finding allowed",
      NULL, NULL, NULL },
    { APLOG_WARNING, MISDIRECT_LOGNO(002),
      "Misdirected request reported and served", NULL, NULL, NULL },
    { APLOG_ERR, MISDIRECT_LOGNO(001),
      "Misdirected request rejected with 421", NULL, NULL, NULL },
    { APLOG_WARNING, MISDIRECT_LOGNO(008),
      "Served under ReportOnly; On would refuse it", NULL, NULL, NULL }
};

/* A checked request with nothing to object to: count it, and trace it
 * (with what the lists forgave, if anything). */
static int misdirect_checked_clean(request_rec *r, server_rec *hs,
                                   unsigned int forgiven)
{
    misdirect_counters_count(r->server, NULL);
    if (APLOGrtrace1(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      MISDIRECT_LOGNO(004) "checked: %s; "
                      "handshake_vhost=\"%s\" request_vhost=\"%s\"",
                      forgiven
                      ? apr_pstrcat(r->pool,
                                    misdirect_text_check_list(r->pool,
                                                              forgiven),
                                    " forgiven by MisdirectAllow or "
                                    "MisdirectTrustedProxy", NULL)
                      : "nothing fired",
                      hs ? hs->server_hostname : "-",
                      r->server->server_hostname);
    }
    return DECLINED;
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
    const misdirect_line *out;
    unsigned int found;

    if (!ap_is_initial_req(r) || r->proxyreq != PROXYREQ_NONE) {
        return DECLINED;
    }
    conf = misdirect_config_srv(r->server);
    if (misdirect_config_mode(conf) == MISDIRECT_MODE_OFF) {
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
                             (void *)&misdirect_request_judged_clean);
        return misdirect_checked_clean(r, hk ? hk->hs : NULL, 0);
    }

    /* Something was found: from here on, allocation is fine. */
    q = misdirect_req_make(r, c, &f, found, hk, &scratch, 0);
    if (!misdirect_judge(r, c, conf, q)) {
        return misdirect_checked_clean(r, misdirect_req_hs(q), found);
    }
    /* Something is left to say: only now are the facts of a cause read. */
    misdirect_request_find_cause(r, c, q);
    misdirect_request_set_vars(q, r);
    misdirect_counters_count(r->server, &q->decision);
    misdirect_counters_count_cause(r->server, q->cause);

    out = &misdirect_outcomes[q->decision.action];
    /* MisdirectLogLimit (misdirect_fold.c) guards error_log against
     * floods of the lines every server writes; debug lines are asked
     * for, and never folded. */
    if (APLOG_R_MODULE_IS_LEVEL(r, APLOG_MODULE_INDEX, out->level)) {
        misdirect_diag_log(q, r, c, out);
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
        && misdirect_config_mode(misdirect_config_srv(r->server))
               != MISDIRECT_MODE_OFF) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
}

void misdirect_request_register_hooks(void)
{
    /* After mod_ssl's own SNI check, whose answer stands wherever it
     * refuses (log_transaction explains it), and after mod_proxy, which
     * marks forward-proxy requests that must not be judged. */
    static const char *const pre[] = { "mod_proxy.c", "mod_ssl.c", NULL };
    static const char *const ssl[] = { "mod_ssl.c", NULL };

    /* Just before mod_ssl: what refuses between the mark and the check
     * is mod_ssl, or what httpd sorts beside it. */
    ap_hook_post_read_request(misdirect_mark_reached, NULL, ssl,
                              APR_HOOK_MIDDLE);
    ap_hook_post_read_request(misdirect_post_read_request, pre, NULL,
                              APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(misdirect_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
}
