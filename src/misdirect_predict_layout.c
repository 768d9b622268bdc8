/*
 * mod_misdirect: how the configuration lays out its vhosts.  For every
 * file: how a line names a vhost and an address, the vhosts in file
 * order, the addresses with their vhosts.  For the prediction: each TLS
 * address's names, which vhost an SNI or a host of each name selects,
 * and which names each vhost's certificates cover; misdirect_predict_matrix.c
 * judges the pairs.
 *
 * Both lookups are indexed, so that 5,000 vhosts cost thousands of
 * steps, not millions.  Names go through a hash of exact names and
 * buckets of wildcard patterns by their literal prefix or suffix; the
 * candidates found are confirmed by misdirect_host_matches(), as core
 * matches a request.  configtest stops before mod_ssl loads its
 * contexts, so certificates are read from the files the TLS model found
 * (SSLCertificateFile), as the lint reads them; each certificate's
 * subjectAltNames select the few configured names that could match, and
 * only those are put to OpenSSL.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_predict.h"

#include "http_core.h"
#include "apr_strings.h"

#include <limits.h>
#include <openssl/x509v3.h>

/* Every configured name of all TLS addresses, for the coverage index. */
typedef struct {
    apr_hash_t *exact;             /* lower name -> itself */
    apr_hash_t *parent;            /* "example.com" -> array of lower
                                    * names one label below it */
    apr_array_header_t *ips;       /* lower names that are IP literals */
    apr_hash_t *by_cert;           /* X509 * -> apr_hash_t * covered */
} misdirect_predict_index;

/* An address's names indexed for matching: exact names by themselves,
 * wildcard patterns by their literal prefix (up to the first '*' or
 * '?'), or where that is empty by their literal suffix.  Each bucket
 * holds vhost positions in file order. */
typedef struct {
    apr_hash_t *exact;             /* lower name -> apr_array_header_t */
    apr_hash_t *prefix;
    apr_hash_t *suffix;
    apr_hash_t *rest;              /* patterns with neither ("*"), at "" */
} misdirect_predict_lookup;

static void misdirect_predict_bucket(apr_pool_t *p, apr_hash_t *h,
                                     const char *key, apr_size_t len, int at)
{
    apr_array_header_t *b = apr_hash_get(h, key, len);

    if (!b) {
        b = apr_array_make(p, 1, sizeof(int));
        apr_hash_set(h, key, len, b);
    }
    if (!b->nelts || APR_ARRAY_IDX(b, b->nelts - 1, int) != at) {
        APR_ARRAY_PUSH(b, int) = at;
    }
}

static void misdirect_predict_lookup_add(apr_pool_t *p,
                                         misdirect_predict_lookup *l,
                                         const char *name, int at)
{
    char *lower;
    apr_size_t len, pre, post;

    if (!name || !*name) {
        return;
    }
    lower = apr_pstrdup(p, name);
    ap_str_tolower(lower);
    len = strlen(lower);
    pre = strcspn(lower, "*?");
    if (pre == len) {
        misdirect_predict_bucket(p, l->exact, lower, len, at);
        return;
    }
    for (post = 0; post < len && !strchr("*?", lower[len - post - 1]);
         post++) {
    }
    if (pre) {
        misdirect_predict_bucket(p, l->prefix, lower, pre, at);
    }
    else if (post) {
        misdirect_predict_bucket(p, l->suffix, lower + len - post, post, at);
    }
    else {
        misdirect_predict_bucket(p, l->rest, "", 0, at);
    }
}

static void misdirect_predict_lookup_make(apr_pool_t *p,
                                          misdirect_predict_addr *a,
                                          misdirect_predict_lookup *l)
{
    int i, j;

    l->exact = apr_hash_make(p);
    l->prefix = apr_hash_make(p);
    l->suffix = apr_hash_make(p);
    l->rest = apr_hash_make(p);
    for (i = 0; i < a->vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(a->vhosts, i,
                                      misdirect_predict_vhost *)->s;

        misdirect_predict_lookup_add(p, l, s->server_hostname, i);
        for (j = 0; s->names && j < s->names->nelts; j++) {
            misdirect_predict_lookup_add(p, l,
                APR_ARRAY_IDX(s->names, j, const char *), i);
        }
        for (j = 0; s->wild_names && j < s->wild_names->nelts; j++) {
            misdirect_predict_lookup_add(p, l,
                APR_ARRAY_IDX(s->wild_names, j, const char *), i);
        }
    }
}

/* The first vhost of bucket b before *best that name really matches. */
static void misdirect_predict_try(const misdirect_predict_addr *a,
                                  const apr_array_header_t *b,
                                  const char *name, int *best)
{
    int i;

    for (i = 0; b && i < b->nelts; i++) {
        int at = APR_ARRAY_IDX(b, i, int);
        server_rec *s;

        if (at >= *best) {
            return;
        }
        s = APR_ARRAY_IDX(a->vhosts, at, misdirect_predict_vhost *)->s;
        if (misdirect_host_matches(name, s->server_hostname,
                s->names ? (const char *const *)s->names->elts : NULL,
                s->names ? s->names->nelts : 0,
                s->wild_names ? (const char *const *)s->wild_names->elts
                              : NULL,
                s->wild_names ? s->wild_names->nelts : 0)) {
            *best = at;
            return;
        }
    }
}

/* Which vhost core's name matching gives a (lower-case) name: the first
 * in the address's order whose ServerName, ServerAlias or wildcard
 * alias matches; for the host, not the SNI, and only where none does,
 * the first whose <VirtualHost> line used the name; else the default. */
static misdirect_predict_vhost *
misdirect_predict_match(const misdirect_predict_addr *a,
                        const misdirect_predict_lookup *l, const char *lower,
                        int virthost, int *named)
{
    apr_size_t len = strlen(lower), k;
    int best = a->vhosts->nelts, i;

    misdirect_predict_try(a, apr_hash_get(l->exact, lower, len), lower, &best);
    for (k = 0; k <= len; k++) {
        misdirect_predict_try(a, apr_hash_get(l->prefix, lower, k), lower,
                              &best);
        misdirect_predict_try(a, apr_hash_get(l->suffix, lower + len - k, k),
                              lower, &best);
    }
    misdirect_predict_try(a, apr_hash_get(l->rest, "", 0), lower, &best);
    for (i = 0; virthost && best == a->vhosts->nelts
                && i < a->vhosts->nelts; i++) {
        server_addr_rec *sar = APR_ARRAY_IDX(a->vhosts, i,
                                             misdirect_predict_vhost *)->sar;

        if (sar->virthost && !strcasecmp(lower, sar->virthost)) {
            best = i;
        }
    }
    if (named) {
        *named = best < a->vhosts->nelts;
    }
    return APR_ARRAY_IDX(a->vhosts, best < a->vhosts->nelts ? best : 0,
                         misdirect_predict_vhost *);
}

static void misdirect_predict_index_name(apr_pool_t *p,
                                         misdirect_predict_index *ix,
                                         const char *lower)
{
    const char *dot;
    apr_array_header_t *under;

    if (apr_hash_get(ix->exact, lower, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(ix->exact, lower, APR_HASH_KEY_STRING, lower);
    if (misdirect_ip_literal(lower)) {
        APR_ARRAY_PUSH(ix->ips, const char *) = lower;
        return;
    }
    if ((dot = strchr(lower, '.')) && dot[1]) {
        under = apr_hash_get(ix->parent, dot + 1, APR_HASH_KEY_STRING);
        if (!under) {
            under = apr_array_make(p, 4, sizeof(const char *));
            apr_hash_set(ix->parent, dot + 1, APR_HASH_KEY_STRING, under);
        }
        APR_ARRAY_PUSH(under, const char *) = lower;
    }
}

static void misdirect_predict_confirm(X509 *cert, apr_hash_t *covered,
                                      const char *lower)
{
    /* OpenSSL has the last word, as on the request path. */
    if (misdirect_certs_cover_name(cert, lower)) {
        apr_hash_set(covered, lower, APR_HASH_KEY_STRING, lower);
    }
}

/* The configured names one DNS identifier of a certificate may cover. */
static void misdirect_predict_candidates(apr_pool_t *p,
                                         const misdirect_predict_index *ix,
                                         X509 *cert, apr_hash_t *covered,
                                         const unsigned char *id, int len)
{
    char *l;
    const char *hit;
    apr_array_header_t *under;
    int i;

    if (len <= 0 || memchr(id, 0, len)) {
        return;
    }
    l = apr_pstrndup(p, (const char *)id, len);
    ap_str_tolower(l);
    if (l[0] == '*' && l[1] == '.') {
        under = apr_hash_get(ix->parent, l + 2, APR_HASH_KEY_STRING);
        for (i = 0; under && i < under->nelts; i++) {
            misdirect_predict_confirm(cert, covered,
                                      APR_ARRAY_IDX(under, i, const char *));
        }
    }
    else if ((hit = apr_hash_get(ix->exact, l, APR_HASH_KEY_STRING))) {
        misdirect_predict_confirm(cert, covered, hit);
    }
}

/* The configured names one certificate covers, computed once. */
static apr_hash_t *misdirect_predict_cert_covers(apr_pool_t *p,
                                                 misdirect_predict_index *ix,
                                                 X509 *cert)
{
    apr_hash_t *covered = apr_hash_get(ix->by_cert, &cert, sizeof(cert));
    GENERAL_NAMES *gens;
    int i, dns = 0;

    if (covered) {
        return covered;
    }
    covered = apr_hash_make(p);
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

        if (g->type == GEN_DNS) {
            dns = 1;
            misdirect_predict_candidates(p, ix, cert, covered,
                                         ASN1_STRING_get0_data(g->d.dNSName),
                                         ASN1_STRING_length(g->d.dNSName));
        }
    }
    GENERAL_NAMES_free(gens);
    if (!dns) {
        /* Without DNS names OpenSSL falls back to the subject's CN. */
        X509_NAME *subj = X509_get_subject_name(cert);
        int at = -1;

        while ((at = X509_NAME_get_index_by_NID(subj, NID_commonName,
                                                at)) >= 0) {
            unsigned char *utf8 = NULL;
            int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                              X509_NAME_get_entry(subj, at)));

            if (len > 0) {
                misdirect_predict_candidates(p, ix, cert, covered, utf8, len);
            }
            OPENSSL_free(utf8);
        }
    }
    for (i = 0; i < ix->ips->nelts; i++) {
        const char *ip = APR_ARRAY_IDX(ix->ips, i, const char *);

        if (misdirect_certs_cover_name(cert, ip)) {
            apr_hash_set(covered, ip, APR_HASH_KEY_STRING, ip);
        }
    }
    apr_hash_set(ix->by_cert, apr_pmemdup(p, &cert, sizeof(cert)),
                 sizeof(cert), covered);
    return covered;
}

static int misdirect_predict_name_cmp(const void *a, const void *b)
{
    const misdirect_predict_name *x = a, *y = b;

    return strcmp(x->lower, y->lower);
}

static void misdirect_predict_add_name(apr_pool_t *p,
                                       misdirect_predict_addr *a,
                                       apr_hash_t *seen, const char *name)
{
    char *lower;
    misdirect_predict_name *n;

    if (!name || !*name || strpbrk(name, "*?")) {
        return;
    }
    lower = apr_pstrdup(p, name);
    ap_str_tolower(lower);
    if (apr_hash_get(seen, lower, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(seen, lower, APR_HASH_KEY_STRING, lower);
    n = apr_array_push(a->names);
    memset(n, 0, sizeof(*n));
    n->name = name;
    n->lower = lower;
}

static misdirect_predict_vhost *
misdirect_predict_vhost_make(apr_pool_t *p, server_rec *s,
                             server_addr_rec *sar, server_rec *dflt)
{
    misdirect_predict_vhost *v = apr_pcalloc(p, sizeof(*v));

    v->s = s;
    v->sar = sar;
    v->conf = misdirect_config_srv(s);
    v->mode = misdirect_config_mode(v->conf);
    memcpy(v->policy, v->conf->policy, sizeof(v->policy));
    v->verify =
        misdirect_model_tls_enabled(s) ? misdirect_model_verify_level(s) : 0;
    v->hs_verify = v->verify;
    /* Clients negotiate TLS 1.3 whenever the handshake allows it. */
    v->tls13 = misdirect_model_offers_tls13(s, dflt);
    v->strict_sni = misdirect_model_strict_sni(s);
    v->own = apr_array_make(p, 2, sizeof(int));
    return v;
}

/* A configured name as a Host of it reaches core's matching: without
 * a trailing dot. */
static const char *misdirect_predict_host_form(apr_pool_t *p,
                                               const char *lower)
{
    apr_size_t n = strlen(lower);

    return n > 1 && lower[n - 1] == '.' ? apr_pstrndup(p, lower, n - 1)
                                         : lower;
}

/* The TLS addresses in file order, each with its vhosts and names. */
static apr_array_header_t *misdirect_predict_addrs(apr_pool_t *p,
                                                   server_rec *main_s)
{
    apr_array_header_t *addrs = misdirect_vhosts_addresses(p, main_s);
    apr_array_header_t *tls = apr_array_make(p, 4, sizeof(void *));
    apr_hash_t *shown = apr_hash_make(p);
    misdirect_predict_lookup look;
    int i, k;

    for (i = 0; i < addrs->nelts; i++) {
        const misdirect_address *ad = APR_ARRAY_IDX(addrs, i,
                                                    misdirect_address *);
        misdirect_predict_addr *a;
        apr_hash_t *seen = apr_hash_make(p);

        if (!misdirect_model_tls_enabled(APR_ARRAY_IDX(ad->vhosts, 0,
                                   misdirect_address_vhost).s)) {
            continue;
        }
        a = apr_pcalloc(p, sizeof(*a));
        a->key = ad->shown;
        a->port = APR_ARRAY_IDX(ad->vhosts, 0,
                                misdirect_address_vhost).sar->host_port;
        a->vhosts = apr_array_make(p, ad->vhosts->nelts, sizeof(void *));
        a->names = apr_array_make(p, 8, sizeof(misdirect_predict_name));
        for (k = 0; k < ad->vhosts->nelts; k++) {
            const misdirect_address_vhost *v =
                &APR_ARRAY_IDX(ad->vhosts, k, misdirect_address_vhost);

            APR_ARRAY_PUSH(a->vhosts, misdirect_predict_vhost *) =
                misdirect_predict_vhost_make(p, v->s, v->sar,
                    APR_ARRAY_IDX(ad->vhosts, 0, misdirect_address_vhost).s);
        }
        if (apr_hash_get(shown, a->key, APR_HASH_KEY_STRING)) {
            /* One family of a "*" whose vhosts differ from the other's. */
            a->key = apr_psprintf(p, "%s (%s)", a->key, ad->key);
        }
        apr_hash_set(shown, a->key, APR_HASH_KEY_STRING, a);
        for (k = 0; k < a->vhosts->nelts; k++) {
            server_rec *vs = APR_ARRAY_IDX(a->vhosts, k,
                                           misdirect_predict_vhost *)->s;
            int j;

            misdirect_predict_add_name(p, a, seen, vs->server_hostname);
            for (j = 0; vs->names && j < vs->names->nelts; j++) {
                misdirect_predict_add_name(p, a, seen,
                    APR_ARRAY_IDX(vs->names, j, const char *));
            }
        }
        qsort(a->names->elts, a->names->nelts, sizeof(misdirect_predict_name),
              misdirect_predict_name_cmp);
        misdirect_predict_lookup_make(p, a, &look);
        for (k = 0; k < a->names->nelts; k++) {
            misdirect_predict_name *n = &APR_ARRAY_IDX(a->names, k,
                                                       misdirect_predict_name);

            n->idx = k;
            n->host = misdirect_predict_host_form(p, n->lower);
            n->h = misdirect_predict_match(a, &look, n->lower, 0, NULL);
            /* Core drops a Host's trailing dot before it matches, so an
             * alias written with one never matches a Host; mod_ssl
             * matches the SNI as sent. */
            n->r = misdirect_predict_match(a, &look, n->host, 1,
                                           &n->host_known);
            n->allowed = misdirect_request_host_allowed(n->r->conf, n->name);
            n->h->sni_names++;
            APR_ARRAY_PUSH(n->r->own, int) = k;
        }
        APR_ARRAY_PUSH(tls, misdirect_predict_addr *) = a;
    }
    return tls;
}

/* The bitmap of an address's names that a set of certificates covers. */
static const unsigned char *
misdirect_predict_bitmap(apr_pool_t *p, misdirect_predict_index *ix,
                         const misdirect_predict_addr *a, apr_hash_t *by_name,
                         apr_array_header_t *certs)
{
    unsigned char *bits = NULL;
    int k;

    for (k = 0; k < certs->nelts; k++) {
        apr_hash_t *covered = misdirect_predict_cert_covers(p, ix,
            APR_ARRAY_IDX(certs, k, X509 *));
        apr_hash_index_t *hi;

        for (hi = apr_hash_first(p, covered); hi; hi = apr_hash_next(hi)) {
            const void *host;
            apr_array_header_t *named;
            int m;

            apr_hash_this(hi, &host, NULL, NULL);
            if (!(named = apr_hash_get(by_name, host, APR_HASH_KEY_STRING))) {
                continue;           /* a name of another address */
            }
            if (!bits) {
                bits = apr_pcalloc(p, a->names->nelts / 8 + 1);
            }
            for (m = 0; m < named->nelts; m++) {
                int idx =
                    APR_ARRAY_IDX(named, m, misdirect_predict_name *)->idx;

                bits[idx >> 3] |= 1u << (idx & 7);
            }
        }
    }
    return bits;
}

static const unsigned char misdirect_predict_nothing[1];

/* A certificate's key type, as clients choose among a vhost's. */
static const char *misdirect_predict_key_type(X509 *cert)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);

    switch (key ? EVP_PKEY_base_id(key) : EVP_PKEY_NONE) {
    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_EC:
        return "EC";
    case EVP_PKEY_ED25519:
        return "Ed25519";
    case EVP_PKEY_ED448:
        return "Ed448";
    default:
        return "other";
    }
}

/* Which of a vhost's certificates OpenSSL gives a client that accepts
 * any key type, lowest first: it takes the first signature algorithm of
 * the client's list that a certificate serves (TLS 1.2: the first cipher
 * suite), and browsers, curl and OpenSSL list ECDSA first, then EdDSA,
 * then RSA. */
static int misdirect_predict_key_rank(X509 *cert)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);

    switch (key ? EVP_PKEY_base_id(key) : EVP_PKEY_NONE) {
    case EVP_PKEY_EC:
        return 0;
    case EVP_PKEY_ED25519:
        return 1;
    case EVP_PKEY_ED448:
        return 2;
    case EVP_PKEY_RSA:
        return 3;
    default:
        return 4;
    }
}

/* Each of a vhost's several certificates on its own: a client that
 * accepts one key type sees that one only; the vhost's own coverage is
 * that of the certificate a client that accepts any gets. */
static void misdirect_predict_per_cert(apr_pool_t *p,
                                       misdirect_predict_index *ix,
                                       const misdirect_predict_addr *a,
                                       apr_hash_t *by_name,
                                       apr_array_header_t *certs,
                                       misdirect_predict_vhost *v)
{
    apr_array_header_t *one = apr_array_make(p, 1, sizeof(X509 *));
    int k, best = INT_MAX;

    v->ncerts = certs->nelts;
    v->cert_covers = apr_pcalloc(p, certs->nelts * sizeof(*v->cert_covers));
    v->cert_key = apr_pcalloc(p, certs->nelts * sizeof(*v->cert_key));
    for (k = 0; k < certs->nelts; k++) {
        X509 *cert = APR_ARRAY_IDX(certs, k, X509 *);
        int rank = misdirect_predict_key_rank(cert);

        apr_array_clear(one);
        APR_ARRAY_PUSH(one, X509 *) = cert;
        v->cert_covers[k] = misdirect_predict_bitmap(p, ix, a, by_name, one);
        v->cert_key[k] = misdirect_predict_key_type(cert);
        if (rank < best) {
            /* What a client that accepts any key type gets. */
            best = rank;
            v->covers = v->cert_covers[k];
        }
    }
}

/* A vhost without TLS that an SNI names is the handshake's vhost for
 * mod_ssl, but the handshake keeps the default vhost's TLS context: its
 * certificates, its client verification, its protocol versions. */
static void misdirect_predict_plain_handshakes(misdirect_predict_addr *a)
{
    const misdirect_predict_vhost *d =
        APR_ARRAY_IDX(a->vhosts, 0, misdirect_predict_vhost *);
    int k;

    for (k = 1; k < a->vhosts->nelts; k++) {
        misdirect_predict_vhost *v = APR_ARRAY_IDX(a->vhosts, k,
                                                   misdirect_predict_vhost *);

        if (misdirect_model_tls_enabled(v->s)) {
            continue;
        }
        v->covers = d->covers;
        v->ncerts = d->ncerts;
        v->cert_covers = d->cert_covers;
        v->cert_key = d->cert_key;
        v->hs_verify = d->hs_verify;
        v->tls13 = d->tls13;
        /* mod_ssl then applies the SSLVerifyDepth of a vhost that has
         * none: a handshake that asks for a certificate fails. */
        v->no_handshake = d->hs_verify == 2;
    }
}

/* Each vhost's certificates, as the bitmap of the names they cover;
 * vhosts with the same certificate files share one. */
static void misdirect_predict_covers(apr_pool_t *p, apr_array_header_t *tls)
{
    misdirect_predict_index ix;
    apr_hash_t *files = apr_hash_make(p);
    apr_array_header_t *certs = apr_array_make(p, 4, sizeof(X509 *));
    apr_hash_index_t *hi;
    int i, j, k;

    ix.exact = apr_hash_make(p);
    ix.parent = apr_hash_make(p);
    ix.ips = apr_array_make(p, 4, sizeof(const char *));
    ix.by_cert = apr_hash_make(p);
    for (i = 0; i < tls->nelts; i++) {
        misdirect_predict_addr *a =
            APR_ARRAY_IDX(tls, i, misdirect_predict_addr *);

        for (j = 0; j < a->names->nelts; j++) {
            misdirect_predict_index_name(p, &ix, APR_ARRAY_IDX(a->names, j,
                                          misdirect_predict_name).host);
        }
    }
    for (i = 0; i < tls->nelts; i++) {
        misdirect_predict_addr *a =
            APR_ARRAY_IDX(tls, i, misdirect_predict_addr *);
        apr_hash_t *by_name = apr_hash_make(p), *by_set = apr_hash_make(p);

        for (j = 0; j < a->names->nelts; j++) {
            misdirect_predict_name *n = &APR_ARRAY_IDX(a->names, j,
                                                       misdirect_predict_name);
            apr_array_header_t *named = apr_hash_get(by_name, n->host,
                                                     APR_HASH_KEY_STRING);

            /* Coverage is the Host's, which core leaves without the
             * trailing dot a name may have been written with. */
            if (!named) {
                named = apr_array_make(p, 1, sizeof(misdirect_predict_name *));
                apr_hash_set(by_name, n->host, APR_HASH_KEY_STRING, named);
            }
            APR_ARRAY_PUSH(named, misdirect_predict_name *) = n;
        }
        for (j = 0; j < a->vhosts->nelts; j++) {
            misdirect_predict_vhost *v =
                APR_ARRAY_IDX(a->vhosts, j, misdirect_predict_vhost *);
            const char *set = "certificates";
            const unsigned char *bits;

            apr_array_clear(certs);
            misdirect_certs_load(p, files, v->s, certs);
            for (k = 0; k < certs->nelts; k++) {
                set = apr_psprintf(p, "%s %pp", set,
                                   APR_ARRAY_IDX(certs, k, void *));
            }
            bits = apr_hash_get(by_set, set, APR_HASH_KEY_STRING);
            if (!bits) {
                bits = misdirect_predict_bitmap(p, &ix, a, by_name, certs);
                /* A set that covers nothing is computed once too. */
                apr_hash_set(by_set, set, APR_HASH_KEY_STRING,
                             bits ? bits : misdirect_predict_nothing);
            }
            v->covers = bits == misdirect_predict_nothing ? NULL : bits;
            if (certs->nelts > 1) {
                misdirect_predict_per_cert(p, &ix, a, by_name, certs, v);
            }
        }
        misdirect_predict_plain_handshakes(a);
    }
    for (hi = apr_hash_first(p, files); hi; hi = apr_hash_next(hi)) {
        void *cert;

        apr_hash_this(hi, NULL, NULL, &cert);
        X509_free(cert);
    }
}

apr_array_header_t *misdirect_predict_layout(apr_pool_t *p, server_rec *main_s)
{
    apr_array_header_t *tls = misdirect_predict_addrs(p, main_s);

    misdirect_predict_covers(p, tls);
    return tls;
}
