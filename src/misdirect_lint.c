/*
 * mod_misdirect: the TLS settings of each vhost, as the configuration
 * file states them, and the startup lint built on them.
 *
 * mod_ssl refuses a request whose vhost has other TLS settings than the
 * vhost of the handshake.  To tell an administrator *which* settings,
 * with the file and line of each, the module reads them from the parsed
 * configuration tree once per configuration pass; requests only compare
 * two small precomputed tables.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "mod_misdirect.h"

#include "http_log.h"
#include "http_main.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

APLOG_USE_MODULE(misdirect);

/* The settings mod_ssl compares (ssl_server_compatible and its policy),
 * with the value each has when not configured. */
static const struct {
    const char *name;
    const char *dflt;
} misdirect_tls_settings[] = {
    { "SSLCertificateFile", NULL },
    { "SSLCertificateKeyFile", NULL },
    { "SSLProtocol", NULL },
    { "SSLCipherSuite", NULL },
    { "SSLVerifyClient", "none" },
    { "SSLVerifyDepth", "1" },
    { "SSLCACertificateFile", NULL },
    { "SSLCACertificatePath", NULL },
    { "SSLCADNRequestFile", NULL },
    { "SSLCADNRequestPath", NULL },
    { "SSLOpenSSLConfCmd", NULL },
};
#define MISDIRECT_TLS_NSETTINGS \
    (sizeof(misdirect_tls_settings) / sizeof(misdirect_tls_settings[0]))

struct misdirect_tls_profile {
    int enabled;                              /* SSLEngine on|optional */
    const char *value[MISDIRECT_TLS_NSETTINGS]; /* NULL: not configured */
    const char *where[MISDIRECT_TLS_NSETTINGS]; /* "file:line" */
    /* Whether value[i] came from this <VirtualHost> (a repeated directive
     * such as SSLCertificateFile replaces the inherited list once). */
    unsigned char own[MISDIRECT_TLS_NSETTINGS];
};

static int misdirect_tls_setting(const char *directive)
{
    size_t i;

    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        if (!strcasecmp(directive, misdirect_tls_settings[i].name)) {
            return (int)i;
        }
    }
    return -1;
}

/* Takes one directive of the tree into a profile. */
static void misdirect_profile_take(apr_pool_t *p, misdirect_tls_profile *tp,
                                   const ap_directive_t *d, int in_vhost)
{
    int i;
    const char *where;

    if (!strcasecmp(d->directive, "SSLEngine")) {
        tp->enabled = !strcasecmp(d->args, "on")
                      || !strcasecmp(d->args, "optional");
        return;
    }
    if ((i = misdirect_tls_setting(d->directive)) < 0) {
        return;
    }
    where = apr_psprintf(p, "%s:%d", d->filename, d->line_num);
    if (tp->value[i] && (tp->own[i] || !in_vhost)) {
        /* Repeated in the same scope: a list (certificates, conf
         * commands, cipher suites per protocol). */
        tp->value[i] = apr_pstrcat(p, tp->value[i], "; ", d->args, NULL);
        tp->where[i] = apr_pstrcat(p, tp->where[i], ",", where, NULL);
    }
    else {
        tp->value[i] = d->args;
        tp->where[i] = where;
    }
    tp->own[i] = (unsigned char)in_vhost;
}

static server_rec *misdirect_server_of(server_rec *main_s,
                                       const ap_directive_t *vh)
{
    server_rec *s;

    for (s = main_s->next; s; s = s->next) {
        if (s->defn_line_number == (unsigned)vh->line_num && s->defn_name
            && !strcmp(s->defn_name, vh->filename)) {
            return s;
        }
    }
    return NULL;
}

void misdirect_tls_profiles_build(apr_pool_t *p, apr_pool_t *ptemp,
                                  server_rec *main_s)
{
    misdirect_tls_profile global;
    const ap_directive_t *d, *v;
    apr_hash_t *by_defn = apr_hash_make(ptemp);
    server_rec *s;

    /* Settings outside any <VirtualHost> are every vhost's defaults;
     * conditional sections were already spliced in when read. */
    memset(&global, 0, sizeof(global));
    for (d = ap_conftree; d; d = d->next) {
        if (d->directive[0] != '<') {
            misdirect_profile_take(p, &global, d, 0);
        }
    }
    for (s = main_s; s; s = s->next) {
        misdirect_tls_profile *tp = apr_pmemdup(p, &global, sizeof(global));

        memset(tp->own, 0, sizeof(tp->own));
        misdirect_conf(s)->tls = tp;
        if (s != main_s && s->defn_name) {
            apr_hash_set(by_defn, apr_psprintf(ptemp, "%s:%u", s->defn_name,
                                               s->defn_line_number),
                         APR_HASH_KEY_STRING, s);
        }
    }
    for (d = ap_conftree; d; d = d->next) {
        misdirect_tls_profile *tp;

        if (strcasecmp(d->directive, "<VirtualHost")) {
            continue;
        }
        s = apr_hash_get(by_defn, apr_psprintf(ptemp, "%s:%d", d->filename,
                                               d->line_num),
                         APR_HASH_KEY_STRING);
        if (!s) {
            s = misdirect_server_of(main_s, d);
        }
        if (!s) {
            continue;
        }
        tp = misdirect_conf(s)->tls;
        for (v = d->first_child; v; v = v->next) {
            misdirect_profile_take(p, tp, v, 1);
        }
    }
}

static const char *misdirect_effective(const misdirect_tls_profile *tp,
                                       size_t i)
{
    return tp->value[i] ? tp->value[i] : misdirect_tls_settings[i].dflt;
}

static int misdirect_setting_differs(const misdirect_tls_profile *a,
                                     const misdirect_tls_profile *b,
                                     size_t i)
{
    const char *va = misdirect_effective(a, i);
    const char *vb = misdirect_effective(b, i);

    if (!va || !vb) {
        return va != vb;
    }
    return strcasecmp(va, vb) != 0;
}

static const char *misdirect_setting_desc(apr_pool_t *p,
                                          const misdirect_tls_profile *tp,
                                          size_t i)
{
    if (!tp->value[i]) {
        return misdirect_tls_settings[i].dflt
               ? apr_pstrcat(p, misdirect_tls_settings[i].dflt,
                             " (default)", NULL)
               : "(not set)";
    }
    return apr_psprintf(p, "%s (%s)", tp->value[i], tp->where[i]);
}

const char *misdirect_tls_differences(apr_pool_t *p, server_rec *a,
                                      server_rec *b)
{
    const misdirect_tls_profile *ta = a ? misdirect_conf(a)->tls : NULL;
    const misdirect_tls_profile *tb = b ? misdirect_conf(b)->tls : NULL;
    const char *out = NULL;
    size_t i;

    if (!ta || !tb) {
        return "(unknown: no TLS settings recorded)";
    }
    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        if (!misdirect_setting_differs(ta, tb, i)) {
            continue;
        }
        out = apr_psprintf(p, "%s%s%s: %s vs %s", out ? out : "",
                           out ? "; " : "", misdirect_tls_settings[i].name,
                           misdirect_setting_desc(p, ta, i),
                           misdirect_setting_desc(p, tb, i));
    }
    /* Values come from the configuration, yet may hold quotes. */
    return out ? misdirect_escape(out, apr_palloc(p, 3 * strlen(out) + 1))
               : "none of the compared settings (the difference is in a "
                 "setting mod_misdirect does not read)";
}

/* ------------------------------------------------------------------ */
/* Lint                                                               */

static const char *misdirect_desc(apr_pool_t *p, server_rec *s)
{
    return apr_psprintf(p, "%s (%s:%u)", s->server_hostname,
                        s->defn_name ? s->defn_name : "main server",
                        s->defn_line_number);
}

/* The first certificate of a vhost, read as mod_ssl will read it; the
 * cache spares re-reading one file shared by many vhosts. */
static X509 *misdirect_lint_cert(apr_pool_t *ptemp, apr_hash_t *cache,
                                 const misdirect_tls_profile *tp,
                                 const char **file)
{
    const char *v = tp->value[0];
    char *first, *last;
    X509 *cert;
    FILE *fp;

    if (!v) {
        return NULL;
    }
    first = apr_strtok(apr_pstrdup(ptemp, v), "; \t", &last);
    if (!first) {
        return NULL;
    }
    if (first[0] == '"') {
        first++;
        first[strcspn(first, "\"")] = '\0';
    }
    *file = ap_server_root_relative(ptemp, first);
    if (!*file) {
        return NULL;
    }
    if ((cert = apr_hash_get(cache, *file, APR_HASH_KEY_STRING))) {
        return cert;
    }
    if (!(fp = fopen(*file, "r"))) {
        return NULL;
    }
    cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    if (cert) {
        apr_hash_set(cache, *file, APR_HASH_KEY_STRING, cert);
    }
    return cert;
}

static int misdirect_lint_covers(X509 *cert, const char *name)
{
    if (misdirect_ip_literal(name)) {
        return X509_check_ip_asc(cert, name, 0) == 1;
    }
    if (name[0] == '*' && name[1] == '.') {
        /* A wildcard alias is covered when any one name under it is. */
        char probe[300];

        apr_snprintf(probe, sizeof(probe), "misdirect-probe%s", name + 1);
        name = probe;
        return X509_check_host(cert, name, 0,
                               X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                               NULL) == 1;
    }
    if (strpbrk(name, "*?")) {
        return 1;       /* other patterns: nothing sound to check */
    }
    return X509_check_host(cert, name, 0,
                           X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

static void misdirect_lint_names(apr_pool_t *ptemp, server_rec *main_s,
                                 server_rec *s, X509 *cert,
                                 const char *file)
{
    apr_array_header_t *lists[2];
    int i, j;

    if (s->server_hostname && !misdirect_lint_covers(cert,
                                                     s->server_hostname)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(010) "Lint: virtual host %s: its "
                     "ServerName %s is not covered by its own certificate "
                     "%s: clients will refuse the connection, and requests "
                     "for it on other connections are cert-mismatch",
                     misdirect_desc(ptemp, s), s->server_hostname, file);
    }
    lists[0] = s->names;
    lists[1] = s->wild_names;
    for (j = 0; j < 2; j++) {
        for (i = 0; lists[j] && i < lists[j]->nelts; i++) {
            const char *n = APR_ARRAY_IDX(lists[j], i, const char *);

            if (n && !misdirect_lint_covers(cert, n)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                             MISDIRECT_LOGNO(010) "Lint: virtual host %s: "
                             "its ServerAlias %s is not covered by its own "
                             "certificate %s: clients will refuse the "
                             "connection, and requests for it on other "
                             "connections are cert-mismatch",
                             misdirect_desc(ptemp, s), n, file);
            }
        }
    }
}

typedef struct {
    const char *key;                 /* "ip:port" */
    apr_array_header_t *vhosts;      /* server_rec *, in file order */
} misdirect_lint_addr;

static const char *misdirect_addr_key(apr_pool_t *p, server_addr_rec *sar)
{
    char *ip = NULL;

    apr_sockaddr_ip_get(&ip, sar->host_addr);
    return apr_psprintf(p, "%s:%u", ip ? ip : "?",
                        (unsigned int)sar->host_port);
}

/* Warns about a default vhost whose TLS settings differ from siblings:
 * clients without SNI (most reverse proxies) get 421 for those. */
static void misdirect_lint_default(apr_pool_t *ptemp, server_rec *main_s,
                                   const misdirect_lint_addr *a)
{
    server_rec *dflt = APR_ARRAY_IDX(a->vhosts, 0, server_rec *);
    const misdirect_tls_profile *td = misdirect_conf(dflt)->tls;
    const char *examples = NULL, *settings = NULL;
    int i, differing = 0, shown = 0;
    size_t k;

    if (!td || !td->enabled || a->vhosts->nelts < 2) {
        return;
    }
    for (i = 1; i < a->vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(a->vhosts, i, server_rec *);
        const misdirect_tls_profile *ts = misdirect_conf(s)->tls;
        int differs = 0;

        if (!ts || !ts->enabled) {
            continue;
        }
        for (k = 0; k < MISDIRECT_TLS_NSETTINGS; k++) {
            if (misdirect_setting_differs(td, ts, k)) {
                differs = 1;
                if (!settings || !ap_strstr_c(settings,
                                     misdirect_tls_settings[k].name)) {
                    settings = apr_pstrcat(ptemp, settings ? settings : "",
                                           settings ? ", " : "",
                                           misdirect_tls_settings[k].name,
                                           NULL);
                }
            }
        }
        if (differs && differing++ < 3) {
            examples = apr_pstrcat(ptemp, examples ? examples : "",
                                   examples ? ", " : "",
                                   s->server_hostname, NULL);
            shown++;
        }
    }
    if (differing) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_s,
                     MISDIRECT_LOGNO(011) "Lint: on %s the default virtual "
                     "host %s has TLS settings (%s) that differ from %d of "
                     "its %d siblings (%s%s): clients without SNI, most "
                     "reverse proxies among them, will get 421 for those "
                     "unless they send SNI or are listed in "
                     "MisdirectTrustedProxy",
                     a->key, misdirect_desc(ptemp, dflt), settings,
                     differing, a->vhosts->nelts - 1, examples,
                     differing > shown ? ", ..." : "");
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
                     "name", key, name, misdirect_desc(ptemp, first),
                     misdirect_desc(ptemp, s));
    }
}

static void misdirect_lint_duplicates(apr_pool_t *ptemp, server_rec *main_s,
                                      const misdirect_lint_addr *a)
{
    apr_hash_t *claims = apr_hash_make(ptemp);
    int i, j;

    for (i = 0; i < a->vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(a->vhosts, i, server_rec *);

        if (s->server_hostname) {
            misdirect_lint_claim(ptemp, main_s, claims, a->key,
                                 s->server_hostname, s);
        }
        for (j = 0; s->names && j < s->names->nelts; j++) {
            const char *n = APR_ARRAY_IDX(s->names, j, const char *);

            if (n) {
                misdirect_lint_claim(ptemp, main_s, claims, a->key, n, s);
            }
        }
    }
}

void misdirect_lint(apr_pool_t *ptemp, server_rec *main_s)
{
    const misdirect_srv_conf *g = misdirect_conf(main_s);
    apr_hash_t *certs = apr_hash_make(ptemp);
    apr_hash_t *addrs = apr_hash_make(ptemp);
    apr_array_header_t *order = apr_array_make(ptemp, 8, sizeof(void *));
    apr_array_header_t *vhosts = apr_array_make(ptemp, 64,
                                                sizeof(server_rec *));
    apr_hash_index_t *hi;
    server_rec *s;
    int i;

    if (g->lint == 0) {
        return;
    }
    /* The vhost list runs opposite to the file; lint in file order so
     * that "first" means what the administrator reads. */
    for (s = main_s->next; s; s = s->next) {
        APR_ARRAY_PUSH(vhosts, server_rec *) = s;
    }
    for (i = vhosts->nelts - 1; i >= 0; i--) {
        const misdirect_tls_profile *tp;
        server_addr_rec *sar;
        const char *file = NULL;
        X509 *cert;

        s = APR_ARRAY_IDX(vhosts, i, server_rec *);
        tp = misdirect_conf(s)->tls;
        if (tp && tp->enabled
            && (cert = misdirect_lint_cert(ptemp, certs, tp, &file))) {
            misdirect_lint_names(ptemp, main_s, s, cert, file);
        }
        for (sar = s->addrs; sar; sar = sar->next) {
            const char *key = misdirect_addr_key(ptemp, sar);
            misdirect_lint_addr *a = apr_hash_get(addrs, key,
                                                  APR_HASH_KEY_STRING);

            if (!a) {
                a = apr_pcalloc(ptemp, sizeof(*a));
                a->key = key;
                a->vhosts = apr_array_make(ptemp, 4, sizeof(server_rec *));
                apr_hash_set(addrs, key, APR_HASH_KEY_STRING, a);
                APR_ARRAY_PUSH(order, misdirect_lint_addr *) = a;
            }
            APR_ARRAY_PUSH(a->vhosts, server_rec *) = s;
        }
    }
    for (i = 0; i < order->nelts; i++) {
        const misdirect_lint_addr *a = APR_ARRAY_IDX(order, i,
                                                     misdirect_lint_addr *);

        misdirect_lint_default(ptemp, main_s, a);
        misdirect_lint_duplicates(ptemp, main_s, a);
    }
    for (hi = apr_hash_first(ptemp, certs); hi; hi = apr_hash_next(hi)) {
        void *cert;

        apr_hash_this(hi, NULL, NULL, &cert);
        X509_free(cert);
    }
}
