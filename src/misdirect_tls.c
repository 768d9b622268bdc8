/*
 * mod_misdirect: what mod_ssl shows the module.
 *
 * mod_ssl's optional hooks tell which SSL_CTX serves which vhost
 * (init_server) and hand out each client connection's SSL before its
 * handshake (pre_handshake).  After the handshake, SSL_get_SSL_CTX() is
 * the context of the vhost mod_ssl chose from SNI, which is how the
 * handshake vhost H is known exactly rather than guessed.  Each vhost's
 * certificates are noted too, so that whether the certificate a client
 * was shown covers another vhost's name is asked of OpenSSL once per
 * process and configuration, not once per request.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "ap_mpm.h"
#include "http_vhost.h"
#include "http_log.h"
#include "http_ssl.h"
/* mod_ssl's OpenSSL hooks (init_server, pre_handshake): Debian's
 * apache2-ssl-dev. */
#include "mod_ssl_openssl.h"
#include "apr_atomic.h"
#include "apr_optional_hooks.h"
#include "apr_strings.h"

/* The SSL_CTX ex_data index under which init_server leaves each
 * context's vhost: the context itself says which vhost it serves, so
 * nothing outlives a configuration pass.  Indices belong to the whole
 * process and httpd reloads the module on every restart, so the index is
 * kept in httpd's retained data and taken once, not once per restart. */
#define MISDIRECT_CTX_INDEX_KEY "mod_misdirect:ctx-index"
static int misdirect_ctx_index = -1;

/* What OpenSSL said about a certificate and a configured name, kept for
 * the configuration's lifetime (see misdirect_logic.h).  4,096 slots of
 * 8 bytes: each pair of vhosts that clients reuse connections between
 * costs one X509_check_host per child, then none. */
#define MISDIRECT_MEMO_SLOTS 4096
static misdirect_cover_memo misdirect_memo;

/* The states of a connection's handshake record. */
#define MISDIRECT_HS_UNKNOWN   0
#define MISDIRECT_HS_WRITING   1
#define MISDIRECT_HS_PUBLISHED 2

/* "subject sha256:digest, ..." for a set of certificates, in a stable
 * order: what the model compares for a vhost whose certificates another
 * module (mod_md) gave mod_ssl, and which the configuration files do not
 * name. */
static const char *misdirect_tls_certs_name(apr_pool_t *p, X509 *const *certs,
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
    qsort(one, n, sizeof(one[0]), misdirect_text_strcmp);
    for (i = 0; i < n; i++) {
        out = out ? apr_pstrcat(p, out, ", ", one[i], NULL) : one[i];
    }
    return out;
}

/* What this file keeps of a vhost's TLS context, from mod_ssl's
 * init_server on: its certificates (one per key type), so that a
 * connection's certificate can be told by its place among them, and
 * their names, which the model compares where the configuration's files
 * do not name them. */
struct misdirect_tls_ctx {
    X509 *certs[MISDIRECT_CERT_SLOTS];
    const char *names;
};

/* conf's certificate in slot, or NULL. */
static X509 *misdirect_tls_cert(const misdirect_srv_conf *conf, int slot)
{
    return conf->ctx && slot >= 0 && slot < MISDIRECT_CERT_SLOTS
           ? conf->ctx->certs[slot] : NULL;
}

const char *misdirect_tls_ctx_names(server_rec *s)
{
    const misdirect_srv_conf *conf = misdirect_config_srv(s);

    return conf->ctx ? conf->ctx->names : NULL;
}

/* Notes the certificates of a vhost's context. */
static void misdirect_note_certs(apr_pool_t *p, misdirect_srv_conf *conf,
                                 SSL_CTX *ctx)
{
    X509 *current = SSL_CTX_get0_certificate(ctx);
    int n = 0, more;

    conf->ctx = apr_pcalloc(p, sizeof(*conf->ctx));
    for (more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
         more && n < MISDIRECT_CERT_SLOTS;
         more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        conf->ctx->certs[n++] = SSL_CTX_get0_certificate(ctx);
    }
    /* Leave the context as mod_ssl left it. */
    if (current) {
        SSL_CTX_select_current_cert(ctx, current);
    }
}

void misdirect_tls_name_ctx_certs(apr_pool_t *p, server_rec *s)
{
    misdirect_srv_conf *conf = misdirect_config_srv(s);
    int n = 0;

    if (!conf->ctx || conf->ctx->names
        || misdirect_model_certs_elsewhere(s) != 1) {
        return;
    }
    while (misdirect_tls_cert(conf, n)) {
        n++;
    }
    if (n) {
        conf->ctx->names = misdirect_tls_certs_name(p, conf->ctx->certs, n);
    }
}

static int misdirect_ctx_index_get(void)
{
    int *kept;

    if (misdirect_ctx_index >= 0) {
        return misdirect_ctx_index;
    }
    kept = ap_retained_data_get(MISDIRECT_CTX_INDEX_KEY);
    if (!kept) {
        kept = ap_retained_data_create(MISDIRECT_CTX_INDEX_KEY,
                                       sizeof(*kept));
        *kept = -1;
    }
    if (*kept < 0) {
        *kept = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    misdirect_ctx_index = *kept;
    return misdirect_ctx_index;
}

static int misdirect_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
                                 SSL_CTX *ctx)
{
    if (is_proxy || !ctx) {
        return OK;
    }
    if (misdirect_ctx_index_get() < 0
        || !SSL_CTX_set_ex_data(ctx, misdirect_ctx_index, s)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, MISDIRECT_LOGNO(013)
                     "OpenSSL gave no room to note the virtual host of a "
                     "TLS context: requests whose host differs from their "
                     "SNI will report the handshake vhost as unknown");
        return OK;
    }
    misdirect_note_certs(p, misdirect_config_srv(s), ctx);
    return OK;
}

/* Reads the SNI of the connection's ClientHello, then stops listening:
 * OpenSSL calls this for every message and record header until then.
 * What the client sent is known only here; after the handshake, OpenSSL
 * shows a resumed TLS 1.2 session's name in its place.  A second
 * ClientHello (TLS 1.3's retry) must repeat the first one's SNI. */
static void misdirect_hello_seen(int write_p, int version, int content_type,
                                 const void *buf, size_t len, SSL *ssl,
                                 void *arg)
{
    misdirect_conn_ctx *cc = arg;
    const unsigned char *msg = buf;

    (void)version;
    if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1
        || msg[0] != SSL3_MT_CLIENT_HELLO) {
        return;
    }
    cc->hello_sni_len = misdirect_hello_sni(msg, len, cc->hello_sni,
                                            sizeof(cc->hello_sni));
    SSL_set_msg_callback(ssl, NULL);
}

static int misdirect_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    misdirect_conn_ctx *cc;

    if (!is_proxy) {
        cc = misdirect_conn_make(c);
        cc->ssl = ssl;
        SSL_set_msg_callback(ssl, misdirect_hello_seen);
        SSL_set_msg_callback_arg(ssl, cc);
    }
    return OK;
}

/* What misdirect_sni_names looks for, and what it found. */
typedef struct {
    const char *sni;
    server_rec *found;
} misdirect_sni_look;

/* Does an SNI name s, by mod_ssl's rule: ServerName, ServerAlias, a
 * wildcard ServerAlias, regardless of case; never the name of the
 * <VirtualHost> line, which core's host matching also takes? */
static int misdirect_sni_names(void *baton, conn_rec *c, server_rec *s)
{
    misdirect_sni_look *look = baton;

    (void)c;
    if (!misdirect_host_matches(look->sni, s->server_hostname,
            s->names ? (const char *const *)s->names->elts : NULL,
            s->names ? s->names->nelts : 0,
            s->wild_names ? (const char *const *)s->wild_names->elts
                          : NULL,
            s->wild_names ? s->wild_names->nelts : 0)) {
        return 0;
    }
    look->found = s;
    return 1;
}

/* Does some vhost without SSLEngine on share a port with a TLS vhost, so
 * that an SNI may name it?  Set each configuration pass. */
static int misdirect_sni_may_name_plain;

/* H as mod_ssl chose it: the first vhost of the connection's address
 * that the SNI names, else the address's default.  The handshake's
 * context tells it where the SNI switched context; it cannot tell an SNI
 * that named the default vhost from one that named a vhost without TLS,
 * for which mod_ssl keeps the default's context.  Only then, and only in
 * a configuration that has such a vhost, is the address searched, as
 * mod_ssl searched it during the handshake. */
static server_rec *misdirect_handshake_vhost(conn_rec *c, server_rec *ctx_s,
                                             const char *sni)
{
    misdirect_sni_look look = { sni, NULL };

    if (!sni || ctx_s != c->base_server || !misdirect_sni_may_name_plain) {
        return ctx_s;
    }
    ap_vhost_iterate_given_conn(c, misdirect_sni_names, &look);
    return look.found ? look.found : ctx_s;
}

/* Reads what the finished handshake of c says into hk. */
static void misdirect_handshake_read(conn_rec *c,
                                     const misdirect_conn_ctx *cc,
                                     misdirect_handshake *hk)
{
    SSL *ssl = cc->ssl;
    const misdirect_srv_conf *hconf;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    char raw_sni[MISDIRECT_SNI_MAX + 1];
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
    hk->tls = 1;
    hk->resumed = SSL_session_reused(ssl);
    hk->tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len > MISDIRECT_ALPN_MAX) {
        alpn_len = MISDIRECT_ALPN_MAX;
    }
    memcpy(hk->alpn, alpn ? (const char *)alpn : "", alpn ? alpn_len : 0);
    hk->alpn[alpn ? alpn_len : 0] = '\0';
    sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    hk->ssl_sees_sni = sni != NULL;
    if (cc->hello_sni_len != MISDIRECT_HELLO_UNSEEN) {
        sni = cc->hello_sni_len >= 0 ? cc->hello_sni : NULL;
    }
    ctx = SSL_get_SSL_CTX(ssl);
    hk->ctx_vhost = ctx && misdirect_ctx_index >= 0
                    ? SSL_CTX_get_ex_data(ctx, misdirect_ctx_index) : NULL;
    hk->sni_sent = sni != NULL;
    apr_cpystrn(raw_sni, sni ? sni : "", sizeof(raw_sni));
    misdirect_escape_into(raw_sni, hk->sni);
    if (!hk->ctx_vhost) {
        return;
    }
    hk->hs = misdirect_handshake_vhost(c, hk->ctx_vhost, sni ? raw_sni
                                                             : NULL);
    /* A resumed session shows no certificate, and OpenSSL then names the
     * context's current one, not the one the session began with.  With
     * several (RSA and ECDSA, say), the client may hold any of them. */
    hconf = misdirect_config_srv(hk->ctx_vhost);
    if (misdirect_tls_cert(hconf, 1) && hk->resumed) {
        hk->cert_slot = MISDIRECT_CERT_ANY;
        return;
    }
    hk->cert = SSL_get_certificate(ssl);
    for (slot = 0; hk->cert && slot < MISDIRECT_CERT_SLOTS; slot++) {
        if (misdirect_tls_cert(hconf, slot) == hk->cert) {
            hk->cert_slot = slot;
            break;
        }
    }
}

const misdirect_handshake *
misdirect_tls_handshake_get(conn_rec *c, misdirect_handshake *scratch)
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
        misdirect_handshake_read(c, cc, &cc->handshake);
        apr_atomic_set32(&cc->state, MISDIRECT_HS_PUBLISHED);
        return &cc->handshake;
    }
    misdirect_handshake_read(c, cc, scratch);
    return scratch;
}

/* Does H's certificate at place slot in its context (or -1) cover host,
 * which is rs's name number name?  The memo remembers OpenSSL's answer
 * for names of the configuration, which differ from host at most in
 * case, and OpenSSL compares names regardless of case. */
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
        covers = misdirect_certs_cover_name(cert, host);
        misdirect_cover_put(&misdirect_memo, key, covers);
    }
    return covers;
}

int misdirect_tls_cert_covers(const misdirect_handshake *hk, server_rec *rs,
                              int name, const char *host)
{
    const misdirect_srv_conf *hconf = misdirect_config_srv(hk->ctx_vhost);
    const misdirect_srv_conf *rconf = misdirect_config_srv(rs);
    int slot;

    if (!host) {
        return 0;
    }
    /* The host is not covered only if none of those the client may hold
     * covers it. */
    if (hk->cert_slot == MISDIRECT_CERT_ANY) {
        for (slot = 0; misdirect_tls_cert(hconf, slot); slot++) {
            if (misdirect_one_cert_covers(misdirect_tls_cert(hconf, slot),
                                          slot, hconf,
                                          rconf, name, host)) {
                return 1;
            }
        }
        return 0;
    }
    return hk->cert && misdirect_one_cert_covers(hk->cert, hk->cert_slot,
                                                 hconf, rconf, name, host);
}

void misdirect_tls_pre_config(void)
{
    misdirect_memo.slot = NULL;
}

/* Does some vhost without TLS share a port with a TLS vhost (a port of
 * 0 stands for every port)?  Then an SNI may name it. */
static int misdirect_plain_beside_tls(apr_pool_t *p, server_rec *main_s)
{
    apr_array_header_t *tls_ports = apr_array_make(p, 4, sizeof(apr_port_t));
    server_rec *s;
    server_addr_rec *sar;
    int i;

    for (s = main_s->next; s; s = s->next) {
        for (sar = s->addrs; sar && misdirect_model_tls_enabled(s);
             sar = sar->next) {
            APR_ARRAY_PUSH(tls_ports, apr_port_t) = sar->host_port;
        }
    }
    for (s = main_s->next; s; s = s->next) {
        for (sar = s->addrs; sar && !misdirect_model_tls_enabled(s);
             sar = sar->next) {
            for (i = 0; i < tls_ports->nelts; i++) {
                apr_port_t port = APR_ARRAY_IDX(tls_ports, i, apr_port_t);

                if (port == 0 || sar->host_port == 0
                    || port == sar->host_port) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

void misdirect_tls_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                               server_rec *main_s)
{
    misdirect_sni_may_name_plain = misdirect_plain_beside_tls(ptemp, main_s);
    misdirect_memo.slot = apr_pcalloc(pconf, MISDIRECT_MEMO_SLOTS
                                             * sizeof(*misdirect_memo.slot));
    misdirect_memo.mask = MISDIRECT_MEMO_SLOTS - 1;
}

void misdirect_tls_register_hooks(void)
{
    APR_OPTIONAL_HOOK(ssl, init_server, misdirect_init_server, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, pre_handshake, misdirect_pre_handshake, NULL,
                      NULL, APR_HOOK_MIDDLE);
}
