/*
 * mod_misdirect: predict before deploy.
 *
 * `apachectl -t -D DUMP_MISDIRECT_JSON` prints, for every TLS address,
 * what each (SNI, host) pair of its configured names will be answered:
 * 200, or 421 and by whom (mod_ssl or this module) and why.
 * `-D DUMP_MISDIRECT` prints the same as text meant for diff(1).  Both
 * ask the functions the request path asks: misdirect_ssl_refuses() for
 * mod_ssl's verdict, misdirect_evaluate/forgive/decide for the module's,
 * so a prediction cannot drift from what a request gets.
 *
 * configtest stops before mod_ssl loads its contexts, so the
 * certificates are read from the files the TLS model found
 * (SSLCertificateFile), as the lint reads them.  Coverage is indexed by
 * name: each certificate's subjectAltNames select the few configured
 * names that could match, and only those are put to OpenSSL, so 5,000
 * vhosts cost some 5,000 X509_check_host() calls, not 25 million.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_log.h"
#include "http_main.h"
#include "http_core.h"
#include "apr_strings.h"

#include <stdio.h>

#include <openssl/x509v3.h>

APLOG_USE_MODULE(misdirect);

/* Above this many names an address is listed in part: the no-SNI row
 * and the pairs that are not 421. */
#define MISDIRECT_DUMP_FULL 100
/* Vhosts named per group in the text dump. */
#define MISDIRECT_DUMP_SHOWN 3

typedef struct {
    server_rec *s;
    misdirect_srv_conf *conf;
    server_addr_rec *sar;          /* its entry for this address */
    int mode;
    misdirect_action_e policy[MISDIRECT_CHECK_COUNT];
    apr_hash_t *covers;            /* lower-case names its certs cover */
    int ncerts;
} misdirect_dump_vhost;

typedef struct {
    const char *name;              /* as configured */
    const char *lower;
    misdirect_dump_vhost *h;       /* the vhost an SNI of it selects */
    misdirect_dump_vhost *r;       /* the vhost a host of it selects */
} misdirect_dump_name;

typedef struct {
    const char *key;               /* "ip:port" */
    unsigned int port;
    apr_array_header_t *vhosts;    /* misdirect_dump_vhost *, file order */
    apr_array_header_t *names;     /* misdirect_dump_name, sorted */
} misdirect_dump_addr;

typedef struct {
    int status;
    const char *by;                /* "mod_ssl", "mod_misdirect", NULL */
    const char *check;             /* the deciding check, or NULL */
} misdirect_dump_outcome;

/* Every configured name of all TLS addresses, for the coverage index. */
typedef struct {
    apr_hash_t *exact;             /* lower name -> itself */
    apr_hash_t *parent;            /* "example.com" -> array of lower
                                    * names one label below it */
    apr_array_header_t *ips;       /* lower names that are IP literals */
    apr_hash_t *by_cert;           /* X509 * -> apr_hash_t * covered */
} misdirect_dump_index;

static const char *misdirect_dump_lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s);

    ap_str_tolower(l);
    return l;
}

/* Which vhost core's name matching gives a name, in the address's
 * order: ServerName and ServerAlias, wildcard aliases, and (for the
 * host, not the SNI) the name the <VirtualHost> line used.  The first
 * match wins; none, the default. */
static misdirect_dump_vhost *misdirect_dump_match(const misdirect_dump_addr *a,
                                                  const char *name,
                                                  int virthost)
{
    int i;

    for (i = 0; i < a->vhosts->nelts; i++) {
        misdirect_dump_vhost *v = APR_ARRAY_IDX(a->vhosts, i,
                                                misdirect_dump_vhost *);
        server_rec *s = v->s;

        if (virthost && v->sar->virthost
            && !strcasecmp(name, v->sar->virthost)) {
            return v;
        }
        if (misdirect_host_matches(name, s->server_hostname,
                s->names ? (const char *const *)s->names->elts : NULL,
                s->names ? s->names->nelts : 0,
                s->wild_names ? (const char *const *)s->wild_names->elts
                              : NULL,
                s->wild_names ? s->wild_names->nelts : 0)) {
            return v;
        }
    }
    return APR_ARRAY_IDX(a->vhosts, 0, misdirect_dump_vhost *);
}

static void misdirect_dump_index_name(apr_pool_t *p, misdirect_dump_index *ix,
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

static void misdirect_dump_confirm(X509 *cert, apr_hash_t *covered,
                                   const char *lower)
{
    /* OpenSSL has the last word, as on the request path. */
    if (misdirect_cert_covers_name(cert, lower)) {
        apr_hash_set(covered, lower, APR_HASH_KEY_STRING, lower);
    }
}

/* The configured names one DNS identifier of a certificate may cover. */
static void misdirect_dump_candidates(apr_pool_t *p,
                                      const misdirect_dump_index *ix,
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
            misdirect_dump_confirm(cert, covered,
                                   APR_ARRAY_IDX(under, i, const char *));
        }
    }
    else if ((hit = apr_hash_get(ix->exact, l, APR_HASH_KEY_STRING))) {
        misdirect_dump_confirm(cert, covered, hit);
    }
}

/* The configured names one certificate covers, computed once. */
static apr_hash_t *misdirect_dump_cert_covers(apr_pool_t *p,
                                              misdirect_dump_index *ix,
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
            misdirect_dump_candidates(p, ix, cert, covered,
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
                misdirect_dump_candidates(p, ix, cert, covered, utf8, len);
            }
            OPENSSL_free(utf8);
        }
    }
    for (i = 0; i < ix->ips->nelts; i++) {
        const char *ip = APR_ARRAY_IDX(ix->ips, i, const char *);

        if (misdirect_cert_covers_name(cert, ip)) {
            apr_hash_set(covered, ip, APR_HASH_KEY_STRING, ip);
        }
    }
    apr_hash_set(ix->by_cert, apr_pmemdup(p, &cert, sizeof(cert)),
                 sizeof(cert), covered);
    return covered;
}

static const char *misdirect_dump_addr_key(apr_pool_t *p,
                                           server_addr_rec *sar)
{
    char *ip = NULL;

    apr_sockaddr_ip_get(&ip, sar->host_addr);
    return apr_psprintf(p, strchr(ip ? ip : "", ':') ? "[%s]:%u" : "%s:%u",
                        ip ? ip : "?", (unsigned int)sar->host_port);
}

static int misdirect_dump_name_cmp(const void *a, const void *b)
{
    const misdirect_dump_name *x = a, *y = b;

    return strcmp(x->lower, y->lower);
}

static void misdirect_dump_add_name(apr_pool_t *p, misdirect_dump_addr *a,
                                    apr_hash_t *seen, const char *name)
{
    const char *lower;
    misdirect_dump_name *n;

    if (!name || !*name || strpbrk(name, "*?")) {
        return;
    }
    lower = misdirect_dump_lower(p, name);
    if (apr_hash_get(seen, lower, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(seen, lower, APR_HASH_KEY_STRING, lower);
    n = apr_array_push(a->names);
    n->name = name;
    n->lower = lower;
}

/* The TLS addresses in file order, each with its vhosts and names. */
static apr_array_header_t *misdirect_dump_addrs(apr_pool_t *p,
                                                server_rec *main_s)
{
    apr_array_header_t *all = misdirect_vhosts_in_file_order(p, main_s);
    apr_array_header_t *order = apr_array_make(p, 4, sizeof(void *));
    apr_array_header_t *tls = apr_array_make(p, 4, sizeof(void *));
    apr_hash_t *addrs = apr_hash_make(p);
    misdirect_ssl_policy_e ssl = misdirect_ssl_policy();
    server_rec *s;
    int i, k;

    for (i = 0; i < all->nelts; i++) {
        server_addr_rec *sar;

        s = APR_ARRAY_IDX(all, i, server_rec *);
        for (sar = s->addrs; sar; sar = sar->next) {
            const char *key = misdirect_dump_addr_key(p, sar);
            misdirect_dump_addr *a = apr_hash_get(addrs, key,
                                                  APR_HASH_KEY_STRING);
            misdirect_dump_vhost *v;

            if (!a) {
                a = apr_pcalloc(p, sizeof(*a));
                a->key = key;
                a->port = sar->host_port;
                a->vhosts = apr_array_make(p, 4, sizeof(void *));
                a->names = apr_array_make(p, 8, sizeof(misdirect_dump_name));
                apr_hash_set(addrs, key, APR_HASH_KEY_STRING, a);
                APR_ARRAY_PUSH(order, misdirect_dump_addr *) = a;
            }
            v = apr_pcalloc(p, sizeof(*v));
            v->s = s;
            v->sar = sar;
            v->conf = misdirect_conf(s);
            v->mode = misdirect_mode(v->conf);
            /* What post_config will put in policy[]. */
            for (k = 0; k < MISDIRECT_CHECK_COUNT; k++) {
                v->policy[k] = v->conf->action[k] == MISDIRECT_UNSET
                               ? misdirect_default_for(k, ssl)
                               : (misdirect_action_e)v->conf->action[k];
            }
            APR_ARRAY_PUSH(a->vhosts, misdirect_dump_vhost *) = v;
        }
    }
    for (i = 0; i < order->nelts; i++) {
        misdirect_dump_addr *a = APR_ARRAY_IDX(order, i,
                                               misdirect_dump_addr *);
        apr_hash_t *seen = apr_hash_make(p);

        if (!misdirect_tls_enabled(APR_ARRAY_IDX(a->vhosts, 0,
                                   misdirect_dump_vhost *)->s)) {
            continue;
        }
        for (k = 0; k < a->vhosts->nelts; k++) {
            server_rec *vs = APR_ARRAY_IDX(a->vhosts, k,
                                           misdirect_dump_vhost *)->s;
            int j;

            misdirect_dump_add_name(p, a, seen, vs->server_hostname);
            for (j = 0; vs->names && j < vs->names->nelts; j++) {
                misdirect_dump_add_name(p, a, seen,
                    APR_ARRAY_IDX(vs->names, j, const char *));
            }
        }
        qsort(a->names->elts, a->names->nelts, sizeof(misdirect_dump_name),
              misdirect_dump_name_cmp);
        for (k = 0; k < a->names->nelts; k++) {
            misdirect_dump_name *n = &APR_ARRAY_IDX(a->names, k,
                                                    misdirect_dump_name);

            n->h = misdirect_dump_match(a, n->name, 0);
            n->r = misdirect_dump_match(a, n->name, 1);
        }
        APR_ARRAY_PUSH(tls, misdirect_dump_addr *) = a;
    }
    return tls;
}

/* Each TLS vhost's certificates, and the names they cover. */
static void misdirect_dump_covers(apr_pool_t *p, apr_array_header_t *tls)
{
    misdirect_dump_index ix;
    apr_hash_t *files = apr_hash_make(p);
    apr_array_header_t *certs = apr_array_make(p, 4, sizeof(X509 *));
    apr_hash_index_t *hi;
    int i, j, k;

    ix.exact = apr_hash_make(p);
    ix.parent = apr_hash_make(p);
    ix.ips = apr_array_make(p, 4, sizeof(const char *));
    ix.by_cert = apr_hash_make(p);
    for (i = 0; i < tls->nelts; i++) {
        misdirect_dump_addr *a = APR_ARRAY_IDX(tls, i, misdirect_dump_addr *);

        for (j = 0; j < a->names->nelts; j++) {
            misdirect_dump_index_name(p, &ix, APR_ARRAY_IDX(a->names, j,
                                          misdirect_dump_name).lower);
        }
    }
    for (i = 0; i < tls->nelts; i++) {
        misdirect_dump_addr *a = APR_ARRAY_IDX(tls, i, misdirect_dump_addr *);

        for (j = 0; j < a->vhosts->nelts; j++) {
            misdirect_dump_vhost *v = APR_ARRAY_IDX(a->vhosts, j,
                                                    misdirect_dump_vhost *);

            apr_array_clear(certs);
            misdirect_tls_certs_load(p, files, v->s, certs);
            v->ncerts = certs->nelts;
            v->covers = apr_hash_make(p);
            for (k = 0; k < certs->nelts; k++) {
                v->covers = apr_hash_overlay(p, v->covers,
                    misdirect_dump_cert_covers(p, &ix,
                        APR_ARRAY_IDX(certs, k, X509 *)));
            }
        }
    }
    for (hi = apr_hash_first(p, files); hi; hi = apr_hash_next(hi)) {
        void *cert;

        apr_hash_this(hi, NULL, NULL, &cert);
        X509_free(cert);
    }
}

/* What GET / over HTTP/1.1 for host n gets on a connection whose
 * handshake selected h (sni: whether SNI was sent), as the request path
 * decides it. */
static void misdirect_dump_judge(const misdirect_dump_addr *a,
                                 misdirect_dump_vhost *h,
                                 const misdirect_dump_name *n, int sni,
                                 misdirect_dump_outcome *o)
{
    misdirect_dump_vhost *r = n->r;
    misdirect_facts f;
    misdirect_decision d;
    unsigned int fired;

    o->status = 200;
    o->by = NULL;
    o->check = NULL;
    if (r != h && misdirect_ssl_refuses(h->s, r->s)) {
        o->status = 421;
        o->by = "mod_ssl";
        return;
    }
    if (r->mode == MISDIRECT_MODE_OFF) {
        return;
    }
    memset(&f, 0, sizeof(f));
    f.tls = 1;
    f.handshake_known = 1;
    f.sni_sent = sni ? 1 : 0;
    f.name_based = a->vhosts->nelts > 1;
    f.same_vhost = r == h;
    f.cert_covers = r != h && h->covers
                    && apr_hash_get(h->covers, n->lower, APR_HASH_KEY_STRING);
    f.host_sent = 1;
    f.host_known = 1;
    f.local_port = a->port;
    fired = misdirect_evaluate(&f);
    if (!fired) {
        return;
    }
    fired = misdirect_forgive(fired, misdirect_host_allowed(r->conf, n->name),
                              0);
    if (!fired) {
        return;
    }
    misdirect_decide(fired, r->policy, r->mode, 0, &d);
    if (d.action == MISDIRECT_REJECT) {
        o->status = 421;
        o->by = "mod_misdirect";
        o->check = misdirect_check_name(d.reason);
    }
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

static void misdirect_dump_json_str(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    putc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        }
        else if (c < 0x20 || c >= 0x7f) {
            /* Bytes, not code points: names are ASCII in practice. */
            fprintf(out, "\\u%04x", c);
        }
        else {
            putc(c, out);
        }
    }
    putc('"', out);
}

static void misdirect_dump_json_pair(FILE *out, int *first,
                                     const misdirect_dump_name *sni,
                                     const misdirect_dump_vhost *h,
                                     const misdirect_dump_name *host,
                                     const misdirect_dump_outcome *o)
{
    fputs(*first ? "\n    " : ",\n    ", out);
    *first = 0;
    fputs("{\"sni\": ", out);
    misdirect_dump_json_str(out, sni ? sni->name : NULL);
    fputs(", \"host\": ", out);
    misdirect_dump_json_str(out, host->name);
    fprintf(out, ", \"status\": %d, \"by\": ", o->status);
    misdirect_dump_json_str(out, o->by);
    fputs(", \"check\": ", out);
    misdirect_dump_json_str(out, o->check);
    fputs(", \"handshake_vhost\": ", out);
    misdirect_dump_json_str(out, h->s->server_hostname);
    fputs(", \"request_vhost\": ", out);
    misdirect_dump_json_str(out, host->r->s->server_hostname);
    putc('}', out);
}

static void misdirect_dump_json(FILE *out, const apr_array_header_t *tls)
{
    int i, j, k;

    fputs("{\"listeners\": [", out);
    for (i = 0; i < tls->nelts; i++) {
        const misdirect_dump_addr *a = APR_ARRAY_IDX(tls, i,
                                                     misdirect_dump_addr *);
        misdirect_dump_vhost *dflt = APR_ARRAY_IDX(a->vhosts, 0,
                                                   misdirect_dump_vhost *);
        int nn = a->names->nelts, complete = nn <= MISDIRECT_DUMP_FULL;
        long left_out = 0;
        int first = 1;
        misdirect_dump_outcome o;

        fputs(i ? ",\n  {\"address\": " : "\n  {\"address\": ", out);
        misdirect_dump_json_str(out, a->key);
        fprintf(out, ", \"complete\": %s, \"pairs\": [",
                complete ? "true" : "false");
        for (j = -1; j < nn; j++) {
            const misdirect_dump_name *sni = j < 0 ? NULL
                : &APR_ARRAY_IDX(a->names, j, misdirect_dump_name);
            misdirect_dump_vhost *h = sni ? sni->h : dflt;

            for (k = 0; k < nn; k++) {
                const misdirect_dump_name *host =
                    &APR_ARRAY_IDX(a->names, k, misdirect_dump_name);

                misdirect_dump_judge(a, h, host, sni != NULL, &o);
                if (!complete && sni && o.status == 421) {
                    left_out++;
                    continue;
                }
                misdirect_dump_json_pair(out, &first, sni, h, host, &o);
            }
        }
        fputs("]", out);
        if (!complete) {
            fprintf(out, ", \"left_out\": %ld", left_out);
        }
        fputs("}", out);
    }
    fputs("\n]}\n", out);
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

/* "A: x vs y; B: z vs w" -> "A, B": what groups vhosts that mod_ssl
 * refuses for the same settings, whatever their values. */
static const char *misdirect_dump_labels(apr_pool_t *p, const char *diff)
{
    const char *out = NULL, *at = diff;

    while (at && *at) {
        const char *colon = strchr(at, ':'), *next = strstr(at, "; ");

        if (!colon || (next && colon > next)) {
            break;
        }
        out = apr_pstrcat(p, out ? out : "", out ? ", " : "",
                          apr_pstrndup(p, at, colon - at), NULL);
        at = next ? next + 2 : NULL;
    }
    return out ? out : diff;
}

static const char *misdirect_dump_verdict(apr_pool_t *p,
                                          const misdirect_dump_vhost *h,
                                          const misdirect_dump_vhost *r,
                                          const misdirect_dump_outcome *o,
                                          int labels)
{
    if (o->status == 200) {
        return r->mode == MISDIRECT_MODE_OFF ? "served (Misdirect Off)"
                                             : "served";
    }
    if (o->by && !strcmp(o->by, "mod_ssl")) {
        const char *diff = misdirect_tls_differences(p, h->s, r->s);

        if (diff && labels) {
            diff = apr_pstrcat(p, "differing ",
                               misdirect_dump_labels(p, diff), NULL);
        }
        return apr_psprintf(p, "421 by mod_ssl (SSLVHostSNIPolicy %s%s%s)",
                            misdirect_ssl_policy_name(misdirect_ssl_policy()),
                            diff ? "; " : "", diff ? diff : "");
    }
    return apr_psprintf(p, "421 by mod_misdirect (%s, MisdirectPolicy %s "
                        "%s)", o->check, o->check,
                        misdirect_action_name(MISDIRECT_REJECT));
}

/* The first of r's names on this address, for the no-SNI row. */
static const misdirect_dump_name *
misdirect_dump_first_name(const misdirect_dump_addr *a,
                          const misdirect_dump_vhost *r)
{
    int i;

    for (i = 0; i < a->names->nelts; i++) {
        const misdirect_dump_name *n = &APR_ARRAY_IDX(a->names, i,
                                                      misdirect_dump_name);

        if (n->r == r && r->s->server_hostname
            && !strcasecmp(n->name, r->s->server_hostname)) {
            return n;
        }
    }
    for (i = 0; i < a->names->nelts; i++) {
        const misdirect_dump_name *n = &APR_ARRAY_IDX(a->names, i,
                                                      misdirect_dump_name);

        if (n->r == r) {
            return n;
        }
    }
    return NULL;
}

typedef struct {
    const char *verdict;
    int count;
    const char *examples;
} misdirect_dump_group;

static int misdirect_dump_group_cmp(const void *a, const void *b)
{
    const misdirect_dump_group *x = *(misdirect_dump_group *const *)a;
    const misdirect_dump_group *y = *(misdirect_dump_group *const *)b;

    return strcmp(x->verdict, y->verdict);
}

static void misdirect_dump_no_sni(apr_pool_t *p, FILE *out,
                                  const misdirect_dump_addr *a)
{
    misdirect_dump_vhost *dflt = APR_ARRAY_IDX(a->vhosts, 0,
                                               misdirect_dump_vhost *);
    apr_hash_t *groups = apr_hash_make(p);
    apr_array_header_t *list = apr_array_make(p, 4, sizeof(void *));
    misdirect_dump_outcome o;
    int i;

    fprintf(out, "  without SNI (handshake vhost %s, %s):\n",
            dflt->s->server_hostname, misdirect_vhost_where(p, dflt->s));
    for (i = 0; i < a->vhosts->nelts; i++) {
        misdirect_dump_vhost *r = APR_ARRAY_IDX(a->vhosts, i,
                                                misdirect_dump_vhost *);
        const misdirect_dump_name *n = misdirect_dump_first_name(a, r);
        misdirect_dump_group *g;
        const char *verdict;

        if (!n) {
            continue;      /* every name of r reaches an earlier vhost */
        }
        misdirect_dump_judge(a, dflt, n, 0, &o);
        verdict = misdirect_dump_verdict(p, dflt, r, &o, 1);
        g = apr_hash_get(groups, verdict, APR_HASH_KEY_STRING);
        if (!g) {
            g = apr_pcalloc(p, sizeof(*g));
            g->verdict = verdict;
            apr_hash_set(groups, verdict, APR_HASH_KEY_STRING, g);
            APR_ARRAY_PUSH(list, misdirect_dump_group *) = g;
        }
        if (g->count++ < MISDIRECT_DUMP_SHOWN) {
            g->examples = apr_psprintf(p, "%s%s%s (%s)",
                                       g->examples ? g->examples : "",
                                       g->examples ? ", " : "", n->name,
                                       misdirect_vhost_where(p, r->s));
        }
    }
    qsort(list->elts, list->nelts, sizeof(void *), misdirect_dump_group_cmp);
    for (i = 0; i < list->nelts; i++) {
        misdirect_dump_group *g = APR_ARRAY_IDX(list, i,
                                                misdirect_dump_group *);

        fprintf(out, "    %s: %d vhost(s): %s%s\n", g->verdict, g->count,
                g->examples, g->count > MISDIRECT_DUMP_SHOWN ? ", ..." : "");
    }
}

/* Pairs of vhosts where the certificate of one covers a name of the
 * other: a browser may reuse the connection (HTTP/2), so what happens
 * there is what its users see. */
static void misdirect_dump_reuse(apr_pool_t *p, FILE *out,
                                 const misdirect_dump_addr *a)
{
    apr_hash_t *done = apr_hash_make(p);
    misdirect_dump_outcome o;
    int i, j, lines = 0;

    fputs("  connection reuse (the handshake vhost's certificate covers "
          "another vhost's name):\n", out);
    for (i = 0; i < a->vhosts->nelts; i++) {
        misdirect_dump_vhost *h = APR_ARRAY_IDX(a->vhosts, i,
                                                misdirect_dump_vhost *);

        if (!h->covers || !apr_hash_count(h->covers)) {
            continue;
        }
        for (j = 0; j < a->names->nelts; j++) {
            const misdirect_dump_name *n = &APR_ARRAY_IDX(a->names, j,
                                                          misdirect_dump_name);
            const char *key;

            if (n->r == h || !apr_hash_get(h->covers, n->lower,
                                           APR_HASH_KEY_STRING)) {
                continue;
            }
            key = apr_psprintf(p, "%pp %pp", h, n->r);
            if (apr_hash_get(done, key, APR_HASH_KEY_STRING)) {
                continue;
            }
            apr_hash_set(done, key, APR_HASH_KEY_STRING, key);
            misdirect_dump_judge(a, h, n, 1, &o);
            fprintf(out, "    %s (%s) -> %s (%s), e.g. %s: %s\n",
                    h->s->server_hostname, misdirect_vhost_where(p, h->s),
                    n->r->s->server_hostname,
                    misdirect_vhost_where(p, n->r->s), n->name,
                    misdirect_dump_verdict(p, h, n->r, &o, 0));
            lines++;
        }
    }
    if (!lines) {
        fputs("    none\n", out);
    }
}

static void misdirect_dump_rest(FILE *out, const misdirect_dump_addr *a)
{
    long pairs = 0, same = 0, ssl = 0, cert = 0, served = 0, other = 0;
    misdirect_dump_outcome o;
    int i, j;

    for (i = 0; i < a->names->nelts; i++) {
        const misdirect_dump_name *sni = &APR_ARRAY_IDX(a->names, i,
                                                        misdirect_dump_name);

        for (j = 0; j < a->names->nelts; j++) {
            const misdirect_dump_name *n = &APR_ARRAY_IDX(a->names, j,
                                                          misdirect_dump_name);

            pairs++;
            if (n->r == sni->h) {
                same++;
                continue;
            }
            misdirect_dump_judge(a, sni->h, n, 1, &o);
            if (o.status == 200) {
                served++;
            }
            else if (!strcmp(o.by, "mod_ssl")) {
                ssl++;
            }
            else if (!strcmp(o.check, "cert-mismatch")) {
                cert++;
            }
            else {
                other++;
            }
        }
    }
    fprintf(out, "  with SNI: %ld pairs; %ld select the handshake's vhost; "
            "of the %ld that select another: %ld served, %ld refused by "
            "mod_ssl, %ld refused by mod_misdirect because the certificate "
            "does not cover the host (cert-mismatch), %ld refused by "
            "mod_misdirect for another check\n",
            pairs, same, pairs - same, served, ssl, cert, other);
}

static void misdirect_dump_text(apr_pool_t *p, FILE *out,
                                const apr_array_header_t *tls)
{
    int i;

    fprintf(out, "mod_misdirect prediction: SSLVHostSNIPolicy %s\n",
            misdirect_ssl_policy_name(misdirect_ssl_policy()));
    for (i = 0; i < tls->nelts; i++) {
        const misdirect_dump_addr *a = APR_ARRAY_IDX(tls, i,
                                                     misdirect_dump_addr *);

        fprintf(out, "listener %s: %d vhost(s), %d name(s)\n", a->key,
                a->vhosts->nelts, a->names->nelts);
        misdirect_dump_no_sni(p, out, a);
        misdirect_dump_reuse(p, out, a);
        misdirect_dump_rest(out, a);
    }
}

void misdirect_dump(apr_pool_t *ptemp, server_rec *main_s)
{
    int json = ap_exists_config_define("DUMP_MISDIRECT_JSON");
    int text = ap_exists_config_define("DUMP_MISDIRECT");
    apr_pool_t *p;
    apr_array_header_t *tls;

    if (!json && !text) {
        return;
    }
    apr_pool_create(&p, ptemp);
    tls = misdirect_dump_addrs(p, main_s);
    misdirect_dump_covers(p, tls);
    if (json) {
        misdirect_dump_json(stdout, tls);
    }
    else {
        misdirect_dump_text(p, stdout, tls);
    }
    fflush(stdout);
    apr_pool_destroy(p);
}
