/*
 * mod_misdirect: predict before deploy.
 *
 * `apachectl -t -D DUMP_MISDIRECT_JSON` prints, for every TLS address,
 * what each (SNI, host) pair of its configured names will be answered:
 * 200, or 421 or 403 and by whom (mod_ssl or this module) and why.
 * `-D DUMP_MISDIRECT` prints the same for people: per address, the
 * answers without SNI, the pairs where a certificate covers another
 * vhost's names (where browsers reuse connections), and counts of all
 * pairs; vhosts with the same answer for the same reason are one line,
 * so that 5,000 vhosts make a page, sorted and the same on every run,
 * for diff(1).  misdirect_predict_matrix.c works the answers out.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_predict.h"

#include "http_core.h"
#include "http_main.h"
#include "apr_strings.h"

#include <stdio.h>

/* Above this many names an address is listed in part (JSON). */
#define MISDIRECT_PREDICT_FULL 100
/* And then at most this many pairs with SNI. */
#define MISDIRECT_PREDICT_LISTED 10000
/* Vhosts or pairs named per group in the text. */
#define MISDIRECT_PREDICT_SHOWN 3

/* file:line, the file relative to ServerRoot when it is under it, so
 * that lines stay short (apachectl -S shows the whole path). */
static const char *misdirect_predict_where(apr_pool_t *p, const server_rec *s)
{
    const char *file = s->defn_name ? s->defn_name : "-";
    apr_size_t n = strlen(ap_server_root);

    if (n && !strncmp(file, ap_server_root, n) && file[n] == '/') {
        file += n + 1;
    }
    return apr_psprintf(p, "%s:%u", file, s->defn_line_number);
}

/* 1234567 -> "1,234,567": counts of pairs run into the millions. */
static const char *misdirect_predict_num(apr_pool_t *p, apr_int64_t n)
{
    char digits[32], out[48];
    int len, i, o = 0;

    len = apr_snprintf(digits, sizeof(digits), "%" APR_INT64_T_FMT, n);
    for (i = 0; i < len; i++) {
        if (i && digits[i - 1] != '-' && (len - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return apr_pstrdup(p, out);
}

static const char *misdirect_predict_verify_name(int verify)
{
    return verify == 2 ? "require" : verify == 1 ? "optional" : "none";
}

/* "A: x vs y; B: z vs w" -> "A, B": what groups vhosts that mod_ssl
 * refuses for the same settings, whatever their values. */
static const char *misdirect_predict_labels(apr_pool_t *p, const char *diff)
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

static const char *
misdirect_predict_verdict_of(apr_pool_t *p, const misdirect_predict_outcome *o,
                             const misdirect_predict_vhost *h,
                             const misdirect_predict_vhost *r);

/* An outcome in words; with h and r, also which settings differ, and
 * what a peer in MisdirectTrustedProxy gets where that differs. */
static const char *
misdirect_predict_verdict(apr_pool_t *p, const misdirect_predict_outcome *o,
                          const misdirect_predict_vhost *h,
                          const misdirect_predict_vhost *r)
{
    const char *v = misdirect_predict_verdict_of(p, o, h, r);
    misdirect_predict_outcome t;

    if (!o->trusted || (o->trusted_kind == o->kind
                        && o->trusted_check == o->check)) {
        return v;
    }
    memset(&t, 0, sizeof(t));
    t.status = o->trusted_status;
    t.kind = o->trusted_kind;
    t.check = o->trusted_check;
    return apr_pstrcat(p, v, "; from a MisdirectTrustedProxy peer: ",
                       misdirect_predict_verdict_of(p, &t, h, r), NULL);
}

static const char *
misdirect_predict_verdict_of(apr_pool_t *p, const misdirect_predict_outcome *o,
                             const misdirect_predict_vhost *h,
                             const misdirect_predict_vhost *r)
{
    const char *check = o->check >= 0 ? misdirect_check_name(o->check) : "";
    misdirect_ssl_policy_e ssl = misdirect_model_policy();
    const char *diff = NULL;

    switch (o->kind) {
    case MISDIRECT_PREDICT_SERVED:
        return "served";
    case MISDIRECT_PREDICT_SERVED_OFF:
        return "served (Misdirect Off)";
    case MISDIRECT_PREDICT_SERVED_LISTED:
        return "served (MisdirectAllow or MisdirectTrustedProxy)";
    case MISDIRECT_PREDICT_SERVED_ALLOW:
        return apr_psprintf(p, "served (%s: allow)", check);
    case MISDIRECT_PREDICT_SERVED_REPORT:
        return apr_psprintf(p, "served and logged (%s: report)", check);
    case MISDIRECT_PREDICT_SERVED_WOULD:
        return apr_psprintf(p, "served and logged, Misdirect On would "
                            "answer 421 (%s: would-reject)", check);
    case MISDIRECT_PREDICT_REFUSED_SSL:
        /* strict refuses whatever differs. */
        if (h && r && ssl != MISDIRECT_SSL_POLICY_STRICT
            && (diff = misdirect_model_differences(p, h->s, r->s))) {
            diff = misdirect_predict_labels(p, diff);
        }
        return apr_psprintf(p, "421 by mod_ssl (SSLVHostSNIPolicy %s%s%s)",
                            misdirect_settings_policy_name(ssl),
                            diff ? "; differing " : "", diff ? diff : "");
    case MISDIRECT_PREDICT_REFUSED:
        return apr_psprintf(p, "421 by mod_misdirect (check %s, "
                            "MisdirectPolicy %s reject)", check, check);
    case MISDIRECT_PREDICT_FORBIDDEN_SNI:
        return "403 by mod_ssl (SSLStrictSNIVHostCheck on, and no SNI)";
    case MISDIRECT_PREDICT_NO_HANDSHAKE:
        return "no answer: the handshake fails (the SNI names a vhost "
               "without SSLEngine on, whose unset SSLVerifyDepth mod_ssl "
               "applies to the default vhost's SSLVerifyClient require)";
    case MISDIRECT_PREDICT_NO_RENEGOTIATION:
        return "no answer: over TLS 1.2 mod_ssl renegotiates for the "
               "request vhost's SSLVerifyClient require, the client has no "
               "certificate, and mod_ssl ends the connection";
    default:
        if (!h || !r) {
            return "403 by mod_ssl (client certificate asked for after "
                   "the handshake)";
        }
        return apr_psprintf(p, "403 by mod_ssl (SSLVerifyClient %s, the "
                            "handshake's vhost %s: %s)",
                            misdirect_predict_verify_name(r->verify),
                            misdirect_predict_verify_name(h->hs_verify),
                            h->tls13 ? "TLS 1.3 clients offer no "
                                       "post-handshake authentication"
                                     : "CA certificates of its own, which "
                                       "a TLS 1.2 renegotiation cannot "
                                       "change");
    }
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

/* A JSON string as misdirect-status writes them (valid UTF-8 kept,
 * anything else replaced), or null. */
static void misdirect_predict_json_str(FILE *out, apr_pool_t *p, const char *s)
{
    fputs(misdirect_text_json_str(p, s), out);
}

/* "status": N, "by": who, "check": which (-1: null) of one answer;
 * after an opening brace, or after a field (with its comma). */
static void misdirect_predict_json_answer(FILE *out, apr_pool_t *p, int status,
                                          misdirect_predict_kind_e kind,
                                          int check)
{
    fprintf(out, "\"status\": %d, \"by\": ", status);
    misdirect_predict_json_str(out, p, kind == MISDIRECT_PREDICT_REFUSED
                                 ? "mod_misdirect"
                                 : status != 200 ? "mod_ssl" : NULL);
    fputs(", \"check\": ", out);
    misdirect_predict_json_str(out, p, check >= 0 ? misdirect_check_name(check)
                                               : NULL);
    if (status == 0) {
        /* Before any request, or after it was read (and checked). */
        fprintf(out, ", \"no_answer\": \"%s\"",
                kind == MISDIRECT_PREDICT_NO_RENEGOTIATION ? "renegotiation"
                                                        : "handshake");
    }
}

/* The module's action on a pair, as MISDIRECT_ACTION names it; NULL
 * where no check is left to act on. */
static const char *misdirect_predict_action(misdirect_predict_kind_e kind)
{
    switch (kind) {
    case MISDIRECT_PREDICT_REFUSED:
        return "reject";
    case MISDIRECT_PREDICT_SERVED_WOULD:
        return "would-reject";
    case MISDIRECT_PREDICT_SERVED_REPORT:
        return "report";
    case MISDIRECT_PREDICT_SERVED_ALLOW:
        return "allow";
    default:
        return NULL;
    }
}

/* Where h has several certificates that answer a pair differently:
 * what a client that accepts only one key type gets. */
static void misdirect_predict_json_per_cert(FILE *out, apr_pool_t *p,
                                            const misdirect_predict_addr *a,
                                            const misdirect_predict_name *sni,
                                            const misdirect_predict_vhost *h,
                                            const misdirect_predict_name *host,
                                            const misdirect_predict_outcome *o)
{
    misdirect_predict_outcome *each =
        apr_pcalloc(p, h->ncerts * sizeof(*each));
    misdirect_predict_vhost one = *h;
    int k, differ = 0;

    for (k = 0; k < h->ncerts; k++) {
        one.covers = h->cert_covers[k];
        misdirect_predict_judge(a, &one, host, sni != NULL, &each[k]);
        differ |= each[k].status != o->status || each[k].kind != o->kind
                  || each[k].check != o->check;
    }
    if (!differ) {
        return;
    }
    fputs(", \"by_certificate\": [", out);
    for (k = 0; k < h->ncerts; k++) {
        fputs(k ? ", {\"key\": " : "{\"key\": ", out);
        misdirect_predict_json_str(out, p, h->cert_key[k]);
        fputs(", ", out);
        misdirect_predict_json_answer(out, p, each[k].status, each[k].kind,
                                      each[k].kind == MISDIRECT_PREDICT_REFUSED
                                      ? each[k].check : -1);
        putc('}', out);
    }
    putc(']', out);
}

static void misdirect_predict_json_pair(FILE *out, apr_pool_t *p, int *first,
                                        const misdirect_predict_addr *a,
                                        const misdirect_predict_name *sni,
                                        const misdirect_predict_vhost *h,
                                        const misdirect_predict_name *host)
{
    misdirect_predict_outcome o;

    misdirect_predict_judge(a, h, host, sni != NULL, &o);
    fputs(*first ? "\n    " : ",\n    ", out);
    *first = 0;
    fputs("{\"sni\": ", out);
    misdirect_predict_json_str(out, p, sni ? sni->name : NULL);
    fputs(", \"host\": ", out);
    misdirect_predict_json_str(out, p, host->name);
    fputs(", ", out);
    misdirect_predict_json_answer(out, p, o.status, o.kind,
                                  misdirect_predict_action(o.kind) ? o.check
                                                                   : -1);
    fputs(", \"action\": ", out);
    misdirect_predict_json_str(out, p, misdirect_predict_action(o.kind));
    fputs(", \"handshake_vhost\": ", out);
    misdirect_predict_json_str(out, p, h->s->server_hostname);
    fputs(", \"request_vhost\": ", out);
    misdirect_predict_json_str(out, p, host->r->s->server_hostname);
    if (h->ncerts > 1) {
        misdirect_predict_json_per_cert(out, p, a, sni, h, host, &o);
    }
    if (o.trusted) {
        fputs(", \"trusted_peer\": {", out);
        misdirect_predict_json_answer(
            out, p, o.trusted_status, o.trusted_kind,
            o.trusted_kind == MISDIRECT_PREDICT_REFUSED ? o.trusted_check
                                                        : -1);
        putc('}', out);
    }
    putc('}', out);
    apr_pool_clear(p);              /* the strings of one pair */
}

/* Above MISDIRECT_PREDICT_FULL names: the pairs with SNI that select
 * another vhost and are not refused with 421, at most
 * MISDIRECT_PREDICT_LISTED of them.  Returns how many were listed. */
static apr_int64_t misdirect_predict_json_open(FILE *out, apr_pool_t *p,
                                               int *first,
                                               const misdirect_predict_addr *a)
{
    misdirect_predict_outcome o;
    apr_int64_t listed = 0;
    int i, j;

    for (i = 0; i < a->names->nelts; i++) {
        const misdirect_predict_name *sni =
            &APR_ARRAY_IDX(a->names, i, misdirect_predict_name);

        if (!APR_ARRAY_IDX(a->classes, sni->h->hclass,
                           misdirect_predict_class).open) {
            continue;               /* nothing but 421 on this handshake */
        }
        for (j = 0; j < a->names->nelts; j++) {
            const misdirect_predict_name *host = &APR_ARRAY_IDX(a->names, j,
                                                  misdirect_predict_name);

            if (host->r == sni->h) {
                continue;
            }
            misdirect_predict_judge(a, sni->h, host, 1, &o);
            if (o.status == 421) {
                continue;
            }
            if (listed == MISDIRECT_PREDICT_LISTED) {
                return listed;
            }
            misdirect_predict_json_pair(out, p, first, a, sni, sni->h, host);
            listed++;
        }
    }
    return listed;
}

static void misdirect_predict_json(FILE *out, apr_pool_t *ptemp,
                                   apr_array_header_t *tls)
{
    apr_pool_t *p;                  /* cleared after each pair */
    int i, j, k;

    apr_pool_create(&p, ptemp);
    fputs("{\"listeners\": [", out);
    for (i = 0; i < tls->nelts; i++) {
        misdirect_predict_addr *a =
            APR_ARRAY_IDX(tls, i, misdirect_predict_addr *);
        misdirect_predict_vhost *dflt =
            APR_ARRAY_IDX(a->vhosts, 0, misdirect_predict_vhost *);
        int nn = a->names->nelts, complete = nn <= MISDIRECT_PREDICT_FULL;
        int first = 1;

        fputs(i ? ",\n  {\"address\": " : "\n  {\"address\": ", out);
        misdirect_predict_json_str(out, p, a->key);
        fprintf(out, ", \"complete\": %s, \"pairs\": [",
                complete ? "true" : "false");
        for (k = 0; k < nn; k++) {
            misdirect_predict_json_pair(out, p, &first, a, NULL, dflt,
                &APR_ARRAY_IDX(a->names, k, misdirect_predict_name));
        }
        for (j = 0; complete && j < nn; j++) {
            const misdirect_predict_name *sni = &APR_ARRAY_IDX(a->names, j,
                                                  misdirect_predict_name);

            for (k = 0; k < nn; k++) {
                misdirect_predict_json_pair(out, p, &first, a, sni, sni->h,
                    &APR_ARRAY_IDX(a->names, k, misdirect_predict_name));
            }
        }
        if (complete) {
            fputs("]", out);
        }
        else {
            misdirect_predict_tally t;
            apr_int64_t listed, open = 0, refused = 0;
            int c;

            misdirect_predict_count(a, &t);
            listed = misdirect_predict_json_open(out, p, &first, a);
            for (c = 0; c < MISDIRECT_PREDICT_CODES; c++) {
                apr_int64_t n = t.cross[0][c] + t.cross[1][c];
                int kind = c / 8;

                if (kind == MISDIRECT_PREDICT_REFUSED_SSL
                    || kind == MISDIRECT_PREDICT_REFUSED) {
                    refused += n;
                }
                else {
                    open += n;
                }
            }
            fprintf(out, "], \"left_out\": %" APR_INT64_T_FMT ", "
                    "\"left_out_by\": {\"refused_421\": %" APR_INT64_T_FMT
                    ", \"same_vhost\": %" APR_INT64_T_FMT ", "
                    "\"over_limit\": %" APR_INT64_T_FMT "}",
                    t.total - listed, refused, t.same, open - listed);
        }
        fputs("}", out);
    }
    fputs("\n]}\n", out);
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

typedef struct {
    const char *verdict;
    apr_int64_t count;
    int shown;
    const char *examples;
} misdirect_predict_group;

/* Lines of the text: one per verdict, counting each key once. */
typedef struct {
    apr_pool_t *p;
    apr_hash_t *by_verdict;        /* verdict -> misdirect_predict_group */
    apr_array_header_t *list;      /* misdirect_predict_group * */
    apr_hash_t *seen;              /* keys already counted */
} misdirect_predict_groups;

static void misdirect_predict_groups_init(apr_pool_t *p,
                                          misdirect_predict_groups *g)
{
    g->p = p;
    g->by_verdict = apr_hash_make(p);
    g->list = apr_array_make(p, 4, sizeof(misdirect_predict_group *));
    g->seen = apr_hash_make(p);
}

static void misdirect_predict_group_add(misdirect_predict_groups *g,
                                        const char *verdict, const char *key,
                                        apr_int64_t count, const char *example)
{
    misdirect_predict_group *grp = apr_hash_get(g->by_verdict, verdict,
                                                APR_HASH_KEY_STRING);

    if (apr_hash_get(g->seen, key, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(g->seen, key, APR_HASH_KEY_STRING, key);
    if (!grp) {
        grp = apr_pcalloc(g->p, sizeof(*grp));
        grp->verdict = verdict;
        apr_hash_set(g->by_verdict, verdict, APR_HASH_KEY_STRING, grp);
        APR_ARRAY_PUSH(g->list, misdirect_predict_group *) = grp;
    }
    grp->count += count;
    if (grp->shown++ < MISDIRECT_PREDICT_SHOWN) {
        grp->examples = apr_pstrcat(g->p, grp->examples ? grp->examples : "",
                                    grp->examples ? ", " : "", example,
                                    NULL);
    }
}

static int misdirect_predict_group_cmp(const void *a, const void *b)
{
    const misdirect_predict_group *x = *(misdirect_predict_group *const *)a;
    const misdirect_predict_group *y = *(misdirect_predict_group *const *)b;

    return strcmp(x->verdict, y->verdict);
}

static void misdirect_predict_groups_print(FILE *out,
                                           misdirect_predict_groups *g,
                                           const char *unit)
{
    int i;

    if (!g->list->nelts) {
        fputs("    none\n", out);
    }
    qsort(g->list->elts, g->list->nelts, sizeof(void *),
          misdirect_predict_group_cmp);
    for (i = 0; i < g->list->nelts; i++) {
        misdirect_predict_group *grp =
            APR_ARRAY_IDX(g->list, i, misdirect_predict_group *);

        fprintf(out, "    %s: %s %s%s: %s%s\n", grp->verdict,
                misdirect_predict_num(g->p, grp->count), unit,
                grp->count == 1 ? "" : "s", grp->examples,
                grp->shown > MISDIRECT_PREDICT_SHOWN ? ", ..." : "");
    }
}

/* The names whose host selects v, its ServerName first. */
static apr_array_header_t *
misdirect_predict_own(apr_pool_t *p, const misdirect_predict_addr *a,
                      const misdirect_predict_vhost *v)
{
    apr_array_header_t *own = apr_array_make(p, v->own->nelts,
                                             sizeof(void *));
    int i, pass;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < v->own->nelts; i++) {
            const misdirect_predict_name *n = &APR_ARRAY_IDX(a->names,
                APR_ARRAY_IDX(v->own, i, int), misdirect_predict_name);
            int main_name = v->s->server_hostname
                            && !strcasecmp(n->name, v->s->server_hostname);

            if (main_name == !pass) {
                APR_ARRAY_PUSH(own, const misdirect_predict_name *) = n;
            }
        }
    }
    return own;
}

/* The row of the address's default vhost as the handshake's: without
 * SNI, and with an SNI that names no vhost (or ends in a dot).  One row
 * where both get the same statuses (shown as without SNI); two where
 * they differ (sni-missing reject, SSLStrictSNIVHostCheck). */
static void misdirect_predict_no_sni(apr_pool_t *p, FILE *out,
                                     const misdirect_predict_addr *a)
{
    misdirect_predict_vhost *dflt = APR_ARRAY_IDX(a->vhosts, 0,
                                                  misdirect_predict_vhost *);
    misdirect_predict_groups g[2];
    misdirect_predict_outcome o[2];
    int i, j, sni, differ = 0;

    misdirect_predict_groups_init(p, &g[0]);
    misdirect_predict_groups_init(p, &g[1]);
    for (i = 0; i < a->vhosts->nelts; i++) {
        const misdirect_predict_vhost *r =
            APR_ARRAY_IDX(a->vhosts, i, misdirect_predict_vhost *);
        apr_array_header_t *own = misdirect_predict_own(p, a, r);

        for (j = 0; j < own->nelts; j++) {
            const misdirect_predict_name *n = APR_ARRAY_IDX(own, j,
                                               const misdirect_predict_name *);

            for (sni = 0; sni < 2; sni++) {
                const char *verdict;

                misdirect_predict_judge(a, dflt, n, sni, &o[sni]);
                verdict = misdirect_predict_verdict(p, &o[sni], dflt, r);
                misdirect_predict_group_add(&g[sni], verdict,
                    apr_psprintf(p, "%d %s", i, verdict), 1,
                    apr_psprintf(p, "%s (%s)", n->name,
                                 misdirect_predict_where(p, r->s)));
            }
            /* Findings that are only allowed or logged are the same
             * answer. */
            differ |= o[0].status != o[1].status;
        }
    }
    if (!differ) {
        fprintf(out, "  without SNI, or with an SNI that names no vhost or "
                "ends in a dot: handshake vhost %s (%s)\n",
                dflt->s->server_hostname, misdirect_predict_where(p, dflt->s));
        misdirect_predict_groups_print(out, &g[0], "vhost");
        return;
    }
    fprintf(out, "  without SNI: handshake vhost %s (%s)\n",
            dflt->s->server_hostname, misdirect_predict_where(p, dflt->s));
    misdirect_predict_groups_print(out, &g[0], "vhost");
    fprintf(out, "  with an SNI that names no vhost or ends in a dot: "
            "handshake vhost %s (%s)\n", dflt->s->server_hostname,
            misdirect_predict_where(p, dflt->s));
    misdirect_predict_groups_print(out, &g[1], "vhost");
}

/* The first member of k that some SNI selects, other than not. */
static const misdirect_predict_vhost *
misdirect_predict_sni_member(const misdirect_predict_class *k,
                             const misdirect_predict_vhost *not)
{
    int i;

    for (i = 0; i < k->members->nelts; i++) {
        const misdirect_predict_vhost *v =
            APR_ARRAY_IDX(k->members, i, misdirect_predict_vhost *);

        if (v != not && v->sni_names) {
            return v;
        }
    }
    return NULL;
}

/* Pairs of vhosts where the certificate of the SNI's covers a name of
 * the other: browsers may reuse the connection (HTTP/2), so what
 * happens there is what their users see.  Judged once per class and
 * name, counted as the vhost pairs they stand for. */
static void misdirect_predict_reuse(apr_pool_t *p, FILE *out,
                                    const misdirect_predict_addr *a)
{
    misdirect_predict_groups g;
    misdirect_predict_outcome o;
    int i, j, k;

    misdirect_predict_groups_init(p, &g);
    fputs("  connection reuse (the SNI's vhost has a certificate that "
          "covers the host, which selects another vhost):\n", out);
    for (i = 0; i < a->classes->nelts; i++) {
        const misdirect_predict_class *c =
            &APR_ARRAY_IDX(a->classes, i, misdirect_predict_class);
        const misdirect_predict_vhost *first, *second;

        if (!c->sni_members || !c->rep->covers) {
            continue;
        }
        first = misdirect_predict_sni_member(c, NULL);
        second = misdirect_predict_sni_member(c, first);
        for (j = 0; j < a->vhosts->nelts; j++) {
            const misdirect_predict_vhost *r =
                APR_ARRAY_IDX(a->vhosts, j, misdirect_predict_vhost *);
            const misdirect_predict_vhost *h = r == first ? second : first;
            long pairs = c->sni_members;

            if (r->hclass == i && r->sni_names) {
                pairs--;            /* not with itself */
            }
            for (k = 0; h && pairs && k < r->own->nelts; k++) {
                const misdirect_predict_name *n = &APR_ARRAY_IDX(a->names,
                    APR_ARRAY_IDX(r->own, k, int), misdirect_predict_name);
                const char *verdict, *more;

                if (!MISDIRECT_PREDICT_COVERS(c->rep, n->idx)) {
                    continue;
                }
                misdirect_predict_judge(a, h, n, 1, &o);
                verdict = misdirect_predict_verdict(p, &o, h, r);
                more = pairs == 1 ? ""
                       : apr_psprintf(p, " and %s more",
                                      misdirect_predict_num(p, pairs - 1));
                misdirect_predict_group_add(&g, verdict,
                    apr_psprintf(p, "%d %d %s", i, j, verdict), pairs,
                    apr_psprintf(p, "%s%s -> %s (%s -> %s)",
                                 h->s->server_hostname, more,
                                 r->s->server_hostname,
                                 misdirect_predict_where(p, h->s),
                                 misdirect_predict_where(p, r->s)));
            }
        }
    }
    misdirect_predict_groups_print(out, &g, "vhost pair");
}

static void misdirect_predict_counts(apr_pool_t *p, FILE *out,
                                     misdirect_predict_addr *a)
{
    misdirect_predict_tally t;
    int c;

    misdirect_predict_count(a, &t);
    fprintf(out, "  every pair with SNI: %s (%s names as SNI x %s as "
            "host)\n    %s select the SNI's own vhost: served\n",
            misdirect_predict_num(p, t.total),
            misdirect_predict_num(p, a->names->nelts),
            misdirect_predict_num(p, a->names->nelts),
            misdirect_predict_num(p, t.same));
    for (c = 0; c < MISDIRECT_PREDICT_CODES; c++) {
        misdirect_predict_outcome o;

        if (!t.cross[0][c] && !t.cross[1][c]) {
            continue;
        }
        memset(&o, 0, sizeof(o));       /* counted apart from peers */
        o.kind = c / 8;
        o.check = c % 8 - 1;
        fprintf(out, "    %s select another vhost: %s",
                misdirect_predict_num(p, t.cross[0][c] + t.cross[1][c]),
                misdirect_predict_verdict(p, &o, NULL, NULL));
        if (t.cross[1][c]) {
            fprintf(out, "; %s of them where the certificate covers the "
                    "host", misdirect_predict_num(p, t.cross[1][c]));
        }
        putc('\n', out);
    }
}

static void misdirect_predict_text(apr_pool_t *p, FILE *out,
                                   apr_array_header_t *tls)
{
    int i;

    /* A running httpd keeps the policy it last had set through
     * restarts: the prediction, made by a fresh process, holds for it
     * only after a stop and start. */
    fprintf(out, "mod_misdirect prediction: what GET / over HTTP/1.1 gets "
            "for each TLS SNI and host; SSLVHostSNIPolicy %s%s\n",
            misdirect_settings_policy_name(misdirect_model_policy()),
            misdirect_model_policy_origin() == MISDIRECT_SSL_POLICY_SET ? ""
            : " (not set: a running httpd that had it set keeps that "
              "value through restarts until it is stopped and started)");
    for (i = 0; i < tls->nelts; i++) {
        misdirect_predict_addr *a =
            APR_ARRAY_IDX(tls, i, misdirect_predict_addr *);

        fprintf(out, "listener %s: %s vhosts, %s names\n", a->key,
                misdirect_predict_num(p, a->vhosts->nelts),
                misdirect_predict_num(p, a->names->nelts));
        misdirect_predict_no_sni(p, out, a);
        misdirect_predict_reuse(p, out, a);
        misdirect_predict_counts(p, out, a);
    }
}

void misdirect_predict_dump(apr_pool_t *ptemp, server_rec *main_s)
{
    int json = ap_exists_config_define("DUMP_MISDIRECT_JSON");
    int text = ap_exists_config_define("DUMP_MISDIRECT");
    apr_pool_t *p;
    apr_array_header_t *tls;

    if (!json && !text) {
        return;
    }
    apr_pool_create(&p, ptemp);
    tls = misdirect_predict_build(p, main_s);
    if (json) {
        misdirect_predict_json(stdout, ptemp, tls);
    }
    else {
        misdirect_predict_text(p, stdout, tls);
    }
    fflush(stdout);
    apr_pool_destroy(p);
}
