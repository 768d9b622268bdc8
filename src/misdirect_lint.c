/*
 * mod_misdirect: the startup lint.  Once per configuration pass it warns
 * about what the configuration will do to requests: names that a vhost's
 * own certificates do not cover (MISDIRECT010), a default vhost whose TLS
 * settings mod_ssl finds incompatible with its siblings', which clients
 * without SNI then cannot reach (MISDIRECT011), and a name that two
 * vhosts of one address claim (MISDIRECT012).  What mod_ssl would do it
 * asks the model (misdirect_model.c) through misdirect_private.h.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_log.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include <openssl/pem.h>

/* mod_ssl picks the certificate by the client's key types, so a name is
 * served correctly if any of the vhost's certificates covers it. */
static int misdirect_lint_any_covers(const apr_array_header_t *certs,
                                     const char *name)
{
    int i;

    for (i = 0; i < certs->nelts; i++) {
        if (misdirect_certs_cover_alias(APR_ARRAY_IDX(certs, i, X509 *),
                                        name)) {
            return 1;
        }
    }
    return 0;
}

static void misdirect_lint_names(apr_pool_t *ptemp, server_rec *main_s,
                                 server_rec *s,
                                 const apr_array_header_t *certs,
                                 const apr_array_header_t *paths)
{
    apr_array_header_t *lists[2];
    const char *own = certs->nelts > 1 ? "any of its own certificates"
                                       : "its own certificate";
    const char *files = NULL;
    int i, j;

    for (i = 0; i < paths->nelts; i++) {
        const char *f = APR_ARRAY_IDX(paths, i, const char *);

        files = files ? apr_pstrcat(ptemp, files, ", ", f, NULL) : f;
    }

    if (s->server_hostname
        && !misdirect_lint_any_covers(certs, s->server_hostname)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(010) "Lint: virtual host %s: its "
                     "ServerName %s is not covered by %s %s: clients will "
                     "refuse the connection, and requests for it on other "
                     "connections are cert-mismatch",
                     misdirect_vhosts_desc(ptemp, s), s->server_hostname, own,
                     files);
    }
    lists[0] = s->names;
    lists[1] = s->wild_names;
    for (j = 0; j < 2; j++) {
        for (i = 0; lists[j] && i < lists[j]->nelts; i++) {
            const char *n = APR_ARRAY_IDX(lists[j], i, const char *);

            if (n && !misdirect_lint_any_covers(certs, n)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                             MISDIRECT_LOGNO(010) "Lint: virtual host %s: "
                             "its ServerAlias %s is not covered by %s %s: "
                             "clients will refuse the connection, and "
                             "requests for it on other connections are "
                             "cert-mismatch",
                             misdirect_vhosts_desc(ptemp, s), n, own, files);
            }
        }
    }
}

/* The vhost of an address's i-th entry. */
#define MISDIRECT_ADDR_VHOST(a, i) \
    (APR_ARRAY_IDX((a)->vhosts, (i), misdirect_address_vhost).s)

/* Warns about a default vhost whose TLS settings mod_ssl finds
 * incompatible with siblings' under SSLVHostSNIPolicy: clients without
 * SNI (most reverse proxies) get 421 for those. */
static void misdirect_lint_default(apr_pool_t *ptemp, server_rec *main_s,
                                   const misdirect_address *a)
{
    server_rec *dflt = MISDIRECT_ADDR_VHOST(a, 0);
    misdirect_ssl_policy_e policy = misdirect_model_policy();
    const char *examples = NULL, *settings = NULL;
    int i, k, differing = 0, shown = 0;

    if (!misdirect_model_tls_enabled(dflt) || a->vhosts->nelts < 2) {
        return;
    }
    for (i = 1; i < a->vhosts->nelts; i++) {
        server_rec *s = MISDIRECT_ADDR_VHOST(a, i);
        apr_array_header_t *labels;

        /* A plain vhost on a TLS address is the administrator's choice
         * and not this warning's subject. */
        if (!misdirect_model_tls_enabled(s)
            || !misdirect_model_refuses(dflt, s)) {
            continue;
        }
        labels = misdirect_model_differing(ptemp, dflt, s);
        for (k = 0; k < labels->nelts; k++) {
            const char *label = APR_ARRAY_IDX(labels, k, const char *);

            if (!settings
                || !misdirect_text_has_item(settings, label, ',')) {
                settings = apr_pstrcat(ptemp, settings ? settings : "",
                                       settings ? ", " : "", label, NULL);
            }
        }
        if (differing++ < 3) {
            examples = apr_pstrcat(ptemp, examples ? examples : "",
                                   examples ? ", " : "",
                                   s->server_hostname, NULL);
            shown++;
        }
    }
    if (differing && policy == MISDIRECT_SSL_POLICY_STRICT) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(011) "Lint: on %s SSLVHostSNIPolicy "
                     "strict refuses every request for another virtual "
                     "host than the handshake's: clients without SNI, most "
                     "reverse proxies among them, get 421 from mod_ssl for "
                     "all %d siblings (%s%s) of the default virtual host "
                     "%s; make them send SNI, or relax the policy",
                     a->shown, differing, examples,
                     differing > shown ? ", ..." : "",
                     misdirect_vhosts_desc(ptemp, dflt));
    }
    else if (differing) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(011) "Lint: on %s the default virtual "
                     "host %s has TLS settings (%s) that SSLVHostSNIPolicy "
                     "%s does not accept for %d of its %d siblings "
                     "(%s%s): clients without SNI, most reverse proxies "
                     "among them, get 421 from mod_ssl for those; make "
                     "them send SNI, or give those vhosts the default "
                     "vhost's settings",
                     a->shown, misdirect_vhosts_desc(ptemp, dflt),
                     settings ? settings : "SSLEngine",
                     misdirect_settings_policy_name(policy),
                     differing, a->vhosts->nelts - 1, examples,
                     differing > shown ? ", ..." : "");
    }
}

/* Warns about vhosts of one address that share their certificate files
 * but not the TLS settings mod_ssl compares: browsers reuse a
 * connection for every name its certificate covers, and mod_ssl then
 * answers 421 to each request for the other vhost. */
static void misdirect_lint_shared(apr_pool_t *ptemp, server_rec *main_s,
                                  const misdirect_address *a)
{
    misdirect_ssl_policy_e policy = misdirect_model_policy();
    apr_hash_t *first = apr_hash_make(ptemp);
    int i, k;

    if (policy == MISDIRECT_SSL_POLICY_STRICT
        || policy == MISDIRECT_SSL_POLICY_INSECURE) {
        return;             /* refuses all, or none: nothing to single out */
    }
    for (i = 0; i < a->vhosts->nelts; i++) {
        server_rec *s = MISDIRECT_ADDR_VHOST(a, i), *f;
        const char *key = misdirect_model_certs_key(s), *settings = NULL;
        apr_array_header_t *labels;

        if (!key) {
            continue;
        }
        if (!(f = apr_hash_get(first, key, APR_HASH_KEY_STRING))) {
            apr_hash_set(first, key, APR_HASH_KEY_STRING, s);
            continue;
        }
        if (!misdirect_model_refuses(f, s) && !misdirect_model_refuses(s, f)) {
            continue;
        }
        labels = misdirect_model_differing(ptemp, f, s);
        for (k = 0; k < labels->nelts; k++) {
            settings = apr_pstrcat(ptemp, settings ? settings : "",
                                   settings ? ", " : "",
                                   APR_ARRAY_IDX(labels, k, const char *),
                                   NULL);
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(015) "Lint: on %s the virtual hosts %s "
                     "and %s share their certificate files but not their "
                     "TLS settings (%s): browsers reuse a connection for "
                     "every name of its certificate, and SSLVHostSNIPolicy "
                     "%s refuses the other vhost on it, so their users "
                     "meet 421s that browsers retry on a new connection; "
                     "give both the same settings, or each a certificate "
                     "of its own", a->shown, misdirect_vhosts_desc(ptemp, f),
                     misdirect_vhosts_desc(ptemp, s),
                     settings ? settings : "SSLEngine",
                     misdirect_settings_policy_name(policy));
    }
}

static void misdirect_lint_claim(apr_pool_t *ptemp, server_rec *main_s,
                                 apr_hash_t *claims, const char *key,
                                 const char *name, server_rec *s)
{
    const char *lc = apr_pstrdup(ptemp, name);
    server_rec *first;

    ap_str_tolower((char *)lc);
    first = apr_hash_get(claims, lc, APR_HASH_KEY_STRING);
    if (!first) {
        apr_hash_set(claims, lc, APR_HASH_KEY_STRING, s);
    }
    else if (first != s) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(012) "Lint: on %s the name %s is "
                     "claimed by %s and again by %s: requests for it always "
                     "reach the first, the second is unreachable by that "
                     "name", key, name, misdirect_vhosts_desc(ptemp, first),
                     misdirect_vhosts_desc(ptemp, s));
    }
}

static void misdirect_lint_duplicates(apr_pool_t *ptemp, server_rec *main_s,
                                      const misdirect_address *a)
{
    apr_hash_t *claims = apr_hash_make(ptemp);
    int i, j;

    for (i = 0; i < a->vhosts->nelts; i++) {
        server_rec *s = MISDIRECT_ADDR_VHOST(a, i);

        if (s->server_hostname) {
            misdirect_lint_claim(ptemp, main_s, claims, a->shown,
                                 s->server_hostname, s);
        }
        for (j = 0; s->names && j < s->names->nelts; j++) {
            const char *n = APR_ARRAY_IDX(s->names, j, const char *);

            if (n) {
                misdirect_lint_claim(ptemp, main_s, claims, a->shown, n, s);
            }
        }
    }
}

void misdirect_lint(apr_pool_t *ptemp, server_rec *main_s)
{
    apr_hash_t *cache = apr_hash_make(ptemp);
    apr_array_header_t *vhosts, *addrs;
    apr_array_header_t *certs = apr_array_make(ptemp, 4, sizeof(X509 *));
    apr_hash_index_t *hi;
    int i;

    if (!misdirect_config_lint(main_s)) {
        return;
    }
    /* Lint in file order so that "first" means what the administrator
     * reads. */
    vhosts = misdirect_vhosts_in_file_order(ptemp, main_s);
    for (i = 0; i < vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(vhosts, i, server_rec *);
        apr_array_header_t *files = misdirect_model_cert_files(ptemp, s);

        apr_array_clear(certs);
        misdirect_certs_read(cache, files, certs);
        if (certs->nelts) {
            misdirect_lint_names(ptemp, main_s, s, certs, files);
        }
    }
    addrs = misdirect_vhosts_addresses(ptemp, main_s);
    for (i = 0; i < addrs->nelts; i++) {
        const misdirect_address *a = APR_ARRAY_IDX(addrs, i,
                                                   misdirect_address *);

        misdirect_lint_default(ptemp, main_s, a);
        misdirect_lint_shared(ptemp, main_s, a);
        misdirect_lint_duplicates(ptemp, main_s, a);
    }
    for (hi = apr_hash_first(ptemp, cache); hi; hi = apr_hash_next(hi)) {
        void *cert;

        apr_hash_this(hi, NULL, NULL, &cert);
        X509_free(cert);
    }
}
