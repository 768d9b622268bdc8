/*
 * mod_misdirect: the model of mod_ssl's verdict.  Each vhost's TLS
 * settings merged over the global ones as mod_ssl merges them, interned
 * into group ids, the verdict under SSLVHostSNIPolicy, and the settings
 * that differ between two vhosts, with the file and line of each.
 *
 * mod_ssl refuses (421) a request whose vhost has TLS settings that its
 * SSLVHostSNIPolicy finds incompatible with the handshake vhost's.  To
 * predict that, and to tell an administrator *which* settings, with the
 * file and line of each, the module reads them from the parsed
 * configuration tree once per configuration pass, as mod_ssl reads
 * (misdirect_settings.c) and merges them; a request only compares two
 * interned group ids.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_model.h"

#include "apr_hash.h"
#include "apr_strings.h"

struct misdirect_tls_profile {
    int enabled;                                  /* SSLEngine on */
    /* No SSLCertificateFile anywhere: another module (mod_md) gives
     * mod_ssl the certificates, so the files it compares are not in the
     * configuration.  Their certificates stand in for them, as
     * init_server noted them (misdirect_tls_ctx_names). */
    int certs_elsewhere;
    /* What the prediction and the explanation of mod_ssl's 403 ask of
     * every vhost: SSLVerifyClient as a level (0 none, 1 optional, 2
     * require), and whether clients may negotiate TLS 1.3. */
    int verify;
    int tls13;
    /* SSLProtocol set here or globally: only then does mod_ssl give a
     * handshake that the SNI moved to this vhost its versions; else the
     * handshake keeps those of the address's default vhost. */
    int protocol_set;
    int strict_sni;                               /* SSLStrictSNIVHostCheck */
    /* Equal ids: equal settings in that group.  Interned per pass, so
     * that a request compares two integers. */
    unsigned int id[MISDIRECT_TLS_GROUPS];
    const misdirect_tls_value *value[MISDIRECT_TLS_NSETTINGS];
};

/* The policy mod_ssl judges by, and where it comes from.  mod_ssl keeps
 * SSLVHostSNIPolicy in its process-wide configuration, which outlives
 * restarts, and only the directive writes it: a configuration that no
 * longer sets it keeps the value an earlier one set, through graceful
 * and full restarts alike, until httpd is stopped and started.  The
 * model judges by that value; httpd's retained data keeps the last one
 * set for the next pass.  A value set while the module was not loaded
 * is not known to it. */
#define MISDIRECT_POLICY_KEY "mod_misdirect:ssl-policy"
typedef struct {
    int set;                                /* some pass set it */
    misdirect_ssl_policy_e policy;          /* the last value set */
} misdirect_policy_kept;

static misdirect_ssl_policy_e misdirect_policy = MISDIRECT_SSL_POLICY_SECURE;
static misdirect_ssl_policy_origin_e misdirect_policy_from =
    MISDIRECT_SSL_POLICY_DEFAULT;

misdirect_ssl_policy_e misdirect_model_policy(void)
{
    return misdirect_policy;
}

misdirect_ssl_policy_origin_e misdirect_model_policy_origin(void)
{
    return misdirect_policy_from;
}

/* This pass's policy from what its configuration says (policy, and set
 * when a line says it) and what mod_ssl kept from earlier passes. */
static void misdirect_policy_take(misdirect_ssl_policy_e policy, int set)
{
    misdirect_policy_kept *kept = ap_retained_data_get(MISDIRECT_POLICY_KEY);

    if (!kept) {
        kept = ap_retained_data_create(MISDIRECT_POLICY_KEY, sizeof(*kept));
        kept->set = 0;
        kept->policy = MISDIRECT_SSL_POLICY_SECURE;
    }
    if (set) {
        kept->set = 1;
        kept->policy = policy;
        misdirect_policy = policy;
        misdirect_policy_from = MISDIRECT_SSL_POLICY_SET;
    }
    else if (kept->set && kept->policy != policy) {
        misdirect_policy = kept->policy;
        misdirect_policy_from = MISDIRECT_SSL_POLICY_KEPT;
    }
    else {
        misdirect_policy = policy;
        misdirect_policy_from = MISDIRECT_SSL_POLICY_DEFAULT;
    }
}

static int misdirect_canon_cmp(const void *a, const void *b)
{
    const misdirect_tls_value *const *x = a, *const *y = b;

    return strcmp((*x)->canon, (*y)->canon);
}

/* One list value out of its items (at least two): compared as given
 * (commands) or sorted (files, a multiset), each item's canon after its
 * length, which keeps "a b" + "c" apart from "a" + "b c". */
static const misdirect_tls_value *misdirect_tls_list(apr_pool_t *p,
                                        apr_pool_t *ptemp,
                                        apr_array_header_t *items,
                                        int sorted)
{
    misdirect_tls_value *out = apr_pcalloc(p, sizeof(*out));
    apr_array_header_t *order = apr_array_copy(ptemp, items);
    apr_size_t len = 0, at = 0;
    char *canon;
    int i;

    if (sorted) {
        qsort(order->elts, order->nelts, sizeof(misdirect_tls_value *),
              misdirect_canon_cmp);
    }
    for (i = 0; i < order->nelts; i++) {
        len += strlen(APR_ARRAY_IDX(order, i, misdirect_tls_value *)->canon)
               + 24;
    }
    canon = apr_palloc(p, len + 1);
    canon[0] = '\0';
    for (i = 0; i < order->nelts; i++) {
        const char *c = APR_ARRAY_IDX(order, i, misdirect_tls_value *)->canon;

        at += apr_snprintf(canon + at, len + 1 - at, "%" APR_SIZE_T_FMT ":%s",
                           strlen(c), c);
    }
    out->canon = canon;
    out->count = items->nelts;
    out->items = apr_pmemdup(p, items->elts,
                             items->nelts * sizeof(misdirect_tls_value *));
    return out;
}

/* A vhost's values as mod_ssl merges its server config over the global
 * one; g is the global scope's merged profile (NULL when merging the
 * global scope itself). */
static void misdirect_tls_merge(apr_pool_t *p, apr_pool_t *ptemp,
                                misdirect_tls_profile *tp,
                                const misdirect_tls_scope *gs_scope,
                                const misdirect_tls_profile *g,
                                const misdirect_tls_scope *v)
{
    size_t i;

    tp->enabled = v->engine != MISDIRECT_UNSET ? v->engine
                  : gs_scope->engine != MISDIRECT_UNSET ? gs_scope->engine
                  : 0;
    tp->strict_sni = v->strict_sni != MISDIRECT_UNSET ? v->strict_sni
                     : gs_scope->strict_sni != MISDIRECT_UNSET
                     ? gs_scope->strict_sni : 0;
    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        apr_array_header_t *gs = g ? gs_scope->seen[i] : NULL;
        apr_array_header_t *vs = v->seen[i], *items;
        int k, ng = gs ? gs->nelts : 0, nv = vs ? vs->nelts : 0;
        int files = misdirect_settings_table[i].kind == MISDIRECT_TLS_FILES;
        int commands = misdirect_settings_table[i].kind
                       == MISDIRECT_TLS_COMMANDS;

        if (!nv) {
            /* Nothing of its own: the global value, shared. */
            tp->value[i] = g ? g->value[i] : misdirect_settings_default(i);
            continue;
        }
        if (!(files || commands) || (nv == 1 && (commands ? !ng : ng <= 1))) {
            /* The last line wins, the vhost's over the global; a list
             * of one is its one item. */
            tp->value[i] = APR_ARRAY_IDX(vs, nv - 1, misdirect_tls_value *);
            continue;
        }
        items = apr_array_make(ptemp, nv + ng, sizeof(misdirect_tls_value *));
        if (files) {
            /* The vhost's n-th file replaces the global n-th; global
             * files past the vhost's count stay. */
            for (k = 0; k < nv || k < ng; k++) {
                APR_ARRAY_PUSH(items, misdirect_tls_value *) =
                    APR_ARRAY_IDX(k < nv ? vs : gs, k, misdirect_tls_value *);
            }
        }
        else {
            /* Commands: the global ones, then the vhost's. */
            apr_array_cat(items, gs ? gs : vs);
            if (gs) {
                apr_array_cat(items, vs);
            }
        }
        tp->value[i] = items->nelts == 1
                       ? APR_ARRAY_IDX(items, 0, misdirect_tls_value *)
                       : misdirect_tls_list(p, ptemp, items, files);
    }
}

/* A text that grows, for keys built over and over in one pool. */
typedef struct {
    char *text;
    apr_size_t len, size;
} misdirect_buf;

static void misdirect_buf_add(apr_pool_t *p, misdirect_buf *b,
                              const char *s, apr_size_t n)
{
    if (b->len + n > b->size) {
        apr_size_t size = 2 * (b->len + n) + 64;
        char *text = apr_palloc(p, size);

        if (b->len) {
            memcpy(text, b->text, b->len);
        }
        b->text = text;
        b->size = size;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
}

/* Same settings in a group, same id: a request then compares integers.
 * The key is built in key, a buffer reused from vhost to vhost, and
 * copied only when it is new. */
static void misdirect_tls_intern(apr_pool_t *ptemp, apr_hash_t *ids,
                                 misdirect_buf *key,
                                 misdirect_tls_profile *tp)
{
    int grp;
    size_t i;

    for (grp = 0; grp < MISDIRECT_TLS_GROUPS; grp++) {
        unsigned int *id;

        key->len = 0;
        misdirect_buf_add(ptemp, key, tp->enabled ? "on" : "off", 3);
        for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
            const misdirect_tls_value *v = tp->value[i];
            char head[48];
            int n;

            if ((int)misdirect_settings_table[i].group != grp) {
                continue;
            }
            n = v->canon ? apr_snprintf(head, sizeof(head),
                                        "|%d:%" APR_SIZE_T_FMT ":", v->count,
                                        strlen(v->canon))
                         : apr_snprintf(head, sizeof(head), "|-");
            misdirect_buf_add(ptemp, key, head, (apr_size_t)n);
            if (v->canon) {
                misdirect_buf_add(ptemp, key, v->canon, strlen(v->canon));
            }
        }
        if (!(id = apr_hash_get(ids, key->text, (apr_ssize_t)key->len))) {
            id = apr_palloc(ptemp, sizeof(*id));
            *id = apr_hash_count(ids) + 1;
            apr_hash_set(ids, apr_pmemdup(ptemp, key->text, key->len),
                         (apr_ssize_t)key->len, id);
        }
        tp->id[grp] = *id;
    }
}

static int misdirect_tls_is_section(const ap_directive_t *d, server_rec *s)
{
    return !strcasecmp(d->directive, "<VirtualHost") && s->defn_name
           && s->defn_line_number == (unsigned int)d->line_num
           && !strcmp(s->defn_name, d->filename);
}

/* The <VirtualHost> section of s, the vhosts taken in file order: the
 * tree is in that order too, so the search from the last one found
 * nearly always ends at once; NULL if the tree has none for s. */
static const ap_directive_t *misdirect_tls_section(
    const ap_directive_t **from, server_rec *s)
{
    const ap_directive_t *d;

    for (d = *from; d; d = d->next) {
        if (misdirect_tls_is_section(d, s)) {
            *from = d->next;
            return d;
        }
    }
    for (d = ap_conftree; d && d != *from; d = d->next) {
        if (misdirect_tls_is_section(d, s)) {
            return d;
        }
    }
    return NULL;
}

/* s's profile, from its own section (NULL: the main server, whose
 * values are the global scope's own) merged over the global scope g. */
static misdirect_tls_profile *misdirect_tls_profile_make(
    misdirect_tls_reader *rd, apr_pool_t *ptemp, apr_hash_t *ids,
    misdirect_buf *key, server_rec *s, const ap_directive_t *section,
    const misdirect_tls_scope *global, const misdirect_tls_profile *g)
{
    misdirect_tls_profile *tp = apr_pcalloc(rd->p, sizeof(*tp));
    misdirect_tls_scope scope;
    const ap_directive_t *d;
    const char *verify, *protocols;

    apr_pool_clear(rd->scratch);
    memset(&scope, 0, sizeof(scope));
    scope.engine = MISDIRECT_UNSET;
    scope.strict_sni = MISDIRECT_UNSET;
    scope.pool = rd->scratch;
    for (d = section ? section->first_child : NULL; d; d = d->next) {
        misdirect_settings_scope_take(rd, &scope, 0, d);
    }
    misdirect_tls_merge(rd->p, rd->scratch, tp, global, g,
                        g ? &scope : global);
    tp->certs_elsewhere = tp->enabled
                          && !tp->value[MISDIRECT_TLS_CERTS]->canon;
    verify = tp->value[MISDIRECT_TLS_VERIFY]->canon;
    tp->verify = !verify || !strncmp(verify, "none", 4) ? 0
                 : !strncmp(verify, "require", 7) ? 2 : 1;
    protocols = tp->value[MISDIRECT_TLS_PROTOCOLS]->canon;
    tp->tls13 = !protocols || (atoi(protocols) & MISDIRECT_PROTO_TLS13);
    tp->protocol_set = tp->value[MISDIRECT_TLS_PROTOCOLS]->line != NULL;
    misdirect_tls_intern(ptemp, ids, key, tp);
    misdirect_config_srv(s)->tls = tp;
    /* mod_ssl made its contexts before (post_config runs after its). */
    misdirect_tls_name_ctx_certs(rd->p, s);
    return tp;
}

void misdirect_model_build(apr_pool_t *p, apr_pool_t *ptemp,
                           server_rec *main_s)
{
    misdirect_tls_reader rd;
    misdirect_tls_scope global;
    const misdirect_tls_profile *g;
    const ap_directive_t *d, *from = ap_conftree;
    apr_array_header_t *vhosts;
    apr_hash_t *ids = apr_hash_make(ptemp);
    misdirect_buf key = { NULL, 0, 0 };
    int i;

    misdirect_settings_defaults_init();
    rd.policy = MISDIRECT_SSL_POLICY_SECURE;
    rd.policy_set = 0;
    rd.p = p;
    rd.texts = apr_hash_make(ptemp);
    apr_pool_create(&rd.scratch, ptemp);
    /* Settings outside any <VirtualHost> are every vhost's defaults;
     * conditional sections were already spliced in when read, and those
     * in <Directory> or <Location> are per-directory, which mod_ssl's
     * verdict does not look at. */
    memset(&global, 0, sizeof(global));
    global.engine = MISDIRECT_UNSET;
    global.strict_sni = MISDIRECT_UNSET;
    global.pool = ptemp;
    for (d = ap_conftree; d; d = d->next) {
        misdirect_settings_scope_take(&rd, &global, 1, d);
    }
    g = misdirect_tls_profile_make(&rd, ptemp, ids, &key, main_s, NULL,
                                   &global, NULL);
    vhosts = misdirect_vhosts_in_file_order(ptemp, main_s);
    for (i = 0; i < vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(vhosts, i, server_rec *);

        misdirect_tls_profile_make(&rd, ptemp, ids, &key, s,
                                   misdirect_tls_section(&from, s),
                                   &global, g);
    }
    misdirect_policy_take(rd.policy, rd.policy_set);
    apr_pool_destroy(rd.scratch);
}

int misdirect_model_certs_elsewhere(server_rec *s)
{
    const misdirect_tls_profile *tp = misdirect_config_srv(s)->tls;

    return tp ? tp->certs_elsewhere : -1;
}

int misdirect_model_tls_enabled(server_rec *s)
{
    const misdirect_tls_profile *tp = misdirect_config_srv(s)->tls;

    return tp && tp->enabled;
}

/* Do two vhosts whose certificates came from another module hold
 * different ones?  Both sides' files are then missing from the model's
 * server group, which compares equal. */
static int misdirect_certs_differ(server_rec *hs, server_rec *rs,
                                  const misdirect_tls_profile *th,
                                  const misdirect_tls_profile *tr)
{
    const char *a = misdirect_tls_ctx_names(hs);
    const char *b = misdirect_tls_ctx_names(rs);

    if (!th->certs_elsewhere || !tr->certs_elsewhere) {
        return 0;
    }
    return a && b ? strcmp(a, b) != 0 : a != b;
}

int misdirect_model_refuses(server_rec *hs, server_rec *rs)
{
    const misdirect_tls_profile *th, *tr;

    if (hs == rs || !hs || !rs) {
        return 0;
    }
    th = misdirect_config_srv(hs)->tls;
    tr = misdirect_config_srv(rs)->tls;
    switch (misdirect_policy) {
    case MISDIRECT_SSL_POLICY_STRICT:
        return 1;
    case MISDIRECT_SSL_POLICY_INSECURE:
        return 0;
    case MISDIRECT_SSL_POLICY_SECURE:
        if (th && tr && (th->id[MISDIRECT_TLS_SERVER]
                         != tr->id[MISDIRECT_TLS_SERVER]
                         || misdirect_certs_differ(hs, rs, th, tr))) {
            return 1;
        }
        /* fall through */
    default:
        return !th || !tr
               || th->id[MISDIRECT_TLS_AUTH] != tr->id[MISDIRECT_TLS_AUTH];
    }
}

int misdirect_model_strict_sni(server_rec *s)
{
    const misdirect_tls_profile *tp = s ? misdirect_config_srv(s)->tls : NULL;

    return tp && tp->strict_sni;
}

int misdirect_model_verify_level(server_rec *s)
{
    const misdirect_tls_profile *tp = s ? misdirect_config_srv(s)->tls : NULL;

    return tp ? tp->verify : 0;
}

int misdirect_model_own_ca(server_rec *h, server_rec *r)
{
    static const size_t ca[] = { MISDIRECT_TLS_CA_FILE,
                                 MISDIRECT_TLS_CA_PATH };
    const misdirect_tls_profile *hp = h ? misdirect_config_srv(h)->tls : NULL;
    const misdirect_tls_profile *rp = r ? misdirect_config_srv(r)->tls : NULL;
    size_t k;

    for (k = 0; rp && k < sizeof(ca) / sizeof(ca[0]); k++) {
        const char *rv = rp->value[ca[k]] ? rp->value[ca[k]]->canon : NULL;
        const char *hv = hp && hp->value[ca[k]] ? hp->value[ca[k]]->canon
                                                : NULL;

        if (rv && (!hv || strcmp(rv, hv))) {
            return 1;
        }
    }
    return 0;
}

int misdirect_model_offers_tls13(server_rec *s, server_rec *dflt)
{
    const misdirect_tls_profile *tp = s ? misdirect_config_srv(s)->tls : NULL;

    if (tp && !tp->protocol_set && dflt && dflt != s) {
        tp = misdirect_config_srv(dflt)->tls;
    }
    return !tp || tp->tls13;
}

/* Whether setting i counts under the policy. */
static int misdirect_tls_counts(size_t i)
{
    switch (misdirect_policy) {
    case MISDIRECT_SSL_POLICY_INSECURE:
        return 0;
    case MISDIRECT_SSL_POLICY_AUTHONLY:
        return misdirect_settings_table[i].group == MISDIRECT_TLS_AUTH;
    default:
        return 1;
    }
}

static int misdirect_tls_differs(const misdirect_tls_profile *a,
                                 const misdirect_tls_profile *b, size_t i)
{
    const char *ca = a->value[i]->canon, *cb = b->value[i]->canon;

    if (a->value[i] == b->value[i]) {
        return 0;
    }
    return ca && cb ? a->value[i]->count != b->value[i]->count
                      || strcmp(ca, cb) != 0
                    : ca != cb;
}

apr_array_header_t *misdirect_model_differing(apr_pool_t *p, server_rec *a,
                                              server_rec *b)
{
    const misdirect_tls_profile *ta = a ? misdirect_config_srv(a)->tls : NULL;
    const misdirect_tls_profile *tb = b ? misdirect_config_srv(b)->tls : NULL;
    apr_array_header_t *labels = apr_array_make(p, 4, sizeof(const char *));
    size_t i;

    for (i = 0; ta && tb && i < MISDIRECT_TLS_NSETTINGS; i++) {
        if (misdirect_tls_counts(i) && misdirect_tls_differs(ta, tb, i)) {
            APR_ARRAY_PUSH(labels, const char *) =
                misdirect_settings_table[i].label;
        }
    }
    return labels;
}

/* A value's items in configured order: the value itself, or the items
 * of a list. */
static const misdirect_tls_value *const *misdirect_tls_items(
    const misdirect_tls_value *const *one, int *n)
{
    *n = (*one)->count > 1 ? (*one)->count : 1;
    return (*one)->count > 1 ? (*one)->items : one;
}

const char *misdirect_model_certs_key(server_rec *s)
{
    const misdirect_tls_profile *tp = misdirect_config_srv(s)->tls;

    return tp && tp->enabled ? tp->value[MISDIRECT_TLS_CERTS]->canon : NULL;
}

apr_array_header_t *misdirect_model_cert_files(apr_pool_t *p, server_rec *s)
{
    const misdirect_tls_profile *tp = misdirect_config_srv(s)->tls;
    apr_array_header_t *files = apr_array_make(p, 2, sizeof(const char *));
    const misdirect_tls_value *const *items;
    int n, k;

    if (!tp || !tp->enabled || !tp->value[MISDIRECT_TLS_CERTS]->canon) {
        return files;
    }
    items = misdirect_tls_items(&tp->value[MISDIRECT_TLS_CERTS], &n);
    for (k = 0; k < n; k++) {
        /* A file's shown text is the path it resolved to. */
        APR_ARRAY_PUSH(files, const char *) = items[k]->shown;
    }
    return files;
}

#define MISDIRECT_PUSH(a, s) (APR_ARRAY_PUSH((a), const char *) = (s))

/* Adds "value (where)" to out, where is each item's "file:line", or
 * "inherited from file:line" for a vhost's value that is the global
 * one.  The pieces are joined once, when the line is made: explaining a
 * refusal is the one place this runs per request. */
static void misdirect_tls_desc(apr_pool_t *p, apr_array_header_t *out,
                               const misdirect_tls_value *const *vp,
                               size_t i, int in_vhost)
{
    const misdirect_tls_value *const *items;
    int n, k;

    if (!(*vp)->canon && !(*vp)->shown) {
        MISDIRECT_PUSH(out, "(not set)");
        return;
    }
    items = misdirect_tls_items(vp, &n);
    for (k = 0; k < n; k++) {
        if (k) {
            MISDIRECT_PUSH(out, ", ");
        }
        MISDIRECT_PUSH(out, items[k]->shown ? items[k]->shown : "");
    }
    if (misdirect_settings_table[i].kind == MISDIRECT_TLS_PROTOCOL) {
        MISDIRECT_PUSH(out, " [");
        MISDIRECT_PUSH(out,
                       misdirect_settings_proto_versions(p, (*vp)->canon));
        MISDIRECT_PUSH(out, "]");
    }
    MISDIRECT_PUSH(out, " (");
    for (k = 0; k < n; k++) {
        const ap_directive_t *line = items[k]->line;

        if (k) {
            MISDIRECT_PUSH(out, ", ");
        }
        if (!line) {
            MISDIRECT_PUSH(out, "default");
            continue;
        }
        if (items[k]->global && in_vhost) {
            MISDIRECT_PUSH(out, "inherited from ");
        }
        MISDIRECT_PUSH(out, line->filename);
        MISDIRECT_PUSH(out, ":");
        MISDIRECT_PUSH(out, apr_itoa(p, line->line_num));
    }
    MISDIRECT_PUSH(out, ")");
}

const char *misdirect_model_differences(apr_pool_t *p, server_rec *hs,
                                        server_rec *rs)
{
    const misdirect_tls_profile *th =
        hs ? misdirect_config_srv(hs)->tls : NULL;
    const misdirect_tls_profile *tr =
        rs ? misdirect_config_srv(rs)->tls : NULL;
    apr_array_header_t *out;
    const char *text;
    size_t i;

    if (!th || !tr) {
        return NULL;
    }
    out = apr_array_make(p, 32, sizeof(const char *));
    if (th->enabled != tr->enabled
        && misdirect_policy != MISDIRECT_SSL_POLICY_INSECURE) {
        MISDIRECT_PUSH(out, th->enabled ? "SSLEngine: on vs off"
                                        : "SSLEngine: off vs on");
    }
    if (misdirect_tls_counts(MISDIRECT_TLS_CERTS)
        && misdirect_certs_differ(hs, rs, th, tr)) {
        const char *a = misdirect_tls_ctx_names(hs);
        const char *b = misdirect_tls_ctx_names(rs);

        MISDIRECT_PUSH(out, out->nelts ? "; " : "");
        MISDIRECT_PUSH(out, "certificates from another module (mod_md?): ");
        MISDIRECT_PUSH(out, a ? a : "(none)");
        MISDIRECT_PUSH(out, " vs ");
        MISDIRECT_PUSH(out, b ? b : "(none)");
    }
    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        if (!misdirect_tls_counts(i) || !misdirect_tls_differs(th, tr, i)) {
            continue;
        }
        if (out->nelts) {
            MISDIRECT_PUSH(out, "; ");
        }
        MISDIRECT_PUSH(out, misdirect_settings_table[i].label);
        MISDIRECT_PUSH(out, ": ");
        misdirect_tls_desc(p, out, &th->value[i], i, hs->defn_name != NULL);
        MISDIRECT_PUSH(out, " vs ");
        misdirect_tls_desc(p, out, &tr->value[i], i, rs->defn_name != NULL);
    }
    if (!out->nelts) {
        return NULL;
    }
    /* Values come from the configuration, yet may hold quotes. */
    text = apr_array_pstrcat(p, out, 0);
    return misdirect_text_escape(p, text);
}
