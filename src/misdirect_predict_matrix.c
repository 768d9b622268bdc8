/*
 * mod_misdirect: what every (SNI, host) pair of each TLS address gets,
 * for the prediction (misdirect_predict_dump.c prints it).
 *
 * A pair is judged by the functions the request path asks:
 * misdirect_model_refuses() for mod_ssl's verdict, misdirect_evaluate,
 * forgive and decide for the module's, so a prediction cannot drift
 * from what a request gets.  Then mod_ssl's access check: a request
 * that crosses to a vhost verifying client certificates more strictly
 * than the handshake did needs a new handshake (TLS 1.2 renegotiation)
 * or post-handshake authentication (TLS 1.3), which clients do not
 * offer, so mod_ssl answers 403.
 *
 * Handshake vhosts that answer every request for another vhost alike
 * (a class: same mod_ssl settings, certificates and client
 * verification) are judged once, so counting the pairs of 5,000 vhosts
 * behind one wildcard certificate takes some 20,000 judgements, not 100
 * million.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_predict.h"

#include "apr_strings.h"

/* Do two handshake vhosts answer every request for a third vhost
 * alike, as far as mod_ssl's policy goes?  strict refuses and insecure
 * serves whatever the settings; the others compare settings, and
 * misdirect_model_refuses() is then equality of what they compare. */
static int misdirect_predict_ssl_alike(const misdirect_predict_vhost *x,
                                       const misdirect_predict_vhost *y)
{
    switch (misdirect_model_policy()) {
    case MISDIRECT_SSL_POLICY_STRICT:
    case MISDIRECT_SSL_POLICY_INSECURE:
        return 1;
    default:
        return !misdirect_model_refuses(x->s, y->s);
    }
}

static void misdirect_predict_classes(apr_pool_t *p, misdirect_predict_addr *a)
{
    apr_hash_t *buckets = apr_hash_make(p);
    int i, j;

    a->classes = apr_array_make(p, 4, sizeof(misdirect_predict_class));
    for (i = 0; i < a->vhosts->nelts; i++) {
        misdirect_predict_vhost *v = APR_ARRAY_IDX(a->vhosts, i,
                                                   misdirect_predict_vhost *);
        const char *key = apr_psprintf(p, "%pp %d %d %d %d", v->covers,
                                       v->hs_verify, v->tls13, v->strict_sni,
                                       v->no_handshake);
        apr_array_header_t *bucket = apr_hash_get(buckets, key,
                                                  APR_HASH_KEY_STRING);
        misdirect_predict_class *k = NULL;

        if (!bucket) {
            bucket = apr_array_make(p, 1, sizeof(int));
            apr_hash_set(buckets, key, APR_HASH_KEY_STRING, bucket);
        }
        for (j = 0; j < bucket->nelts; j++) {
            int at = APR_ARRAY_IDX(bucket, j, int);

            k = &APR_ARRAY_IDX(a->classes, at, misdirect_predict_class);
            if (misdirect_predict_ssl_alike(k->rep, v)) {
                v->hclass = at;
                break;
            }
            k = NULL;
        }
        if (!k) {
            v->hclass = a->classes->nelts;
            APR_ARRAY_PUSH(bucket, int) = v->hclass;
            k = apr_array_push(a->classes);
            memset(k, 0, sizeof(*k));
            k->rep = v;
            k->members = apr_array_make(p, 1, sizeof(void *));
        }
        else if (!k->alt) {
            k->alt = v;
        }
        APR_ARRAY_PUSH(k->members, misdirect_predict_vhost *) = v;
        if (v->sni_names) {
            k->sni_members++;
        }
    }
}

apr_array_header_t *misdirect_predict_build(apr_pool_t *p, server_rec *main_s)
{
    apr_array_header_t *tls = misdirect_predict_layout(p, main_s);
    int i;

    for (i = 0; i < tls->nelts; i++) {
        misdirect_predict_addr *a =
            APR_ARRAY_IDX(tls, i, misdirect_predict_addr *);

        misdirect_predict_classes(p, a);
        a->scratch = apr_pcalloc(p, (a->names->nelts + 1) * sizeof(int));
    }
    return tls;
}

/* The module's answer to a pair mod_ssl lets through, for a client in
 * the request vhost's MisdirectTrustedProxy (trusted) or any other. */
static void misdirect_predict_module(const misdirect_predict_addr *a,
                                     const misdirect_predict_vhost *h,
                                     const misdirect_predict_name *n, int sni,
                                     int trusted, misdirect_predict_outcome *o)
{
    const misdirect_predict_vhost *r = n->r;
    misdirect_facts f;
    misdirect_decision d;
    unsigned int fired, left;

    if (r->mode == MISDIRECT_MODE_OFF) {
        o->kind = MISDIRECT_PREDICT_SERVED_OFF;
        return;
    }
    memset(&f, 0, sizeof(f));
    f.tls = 1;
    f.handshake_known = 1;
    f.sni_sent = sni ? 1 : 0;
    f.name_based = a->vhosts->nelts > 1;
    f.same_vhost = r->s == h->s;
    f.cert_covers = r->s != h->s && MISDIRECT_PREDICT_COVERS(h, n->idx);
    f.host_sent = 1;
    f.host_known = n->host_known;
    f.local_port = a->port;
    if (!(fired = misdirect_evaluate(&f))) {
        return;
    }
    if (!(left = misdirect_forgive(fired, n->allowed, trusted))) {
        o->kind = MISDIRECT_PREDICT_SERVED_LISTED;
        return;
    }
    misdirect_decide(left, r->policy, r->mode, 0, &d);
    o->check = d.reason;
    if (d.action == MISDIRECT_REJECT) {
        o->status = 421;
        o->kind = MISDIRECT_PREDICT_REFUSED;
        return;
    }
    o->kind = d.action == MISDIRECT_WOULD_REJECT
              ? MISDIRECT_PREDICT_SERVED_WOULD
              : d.action == MISDIRECT_REPORT ? MISDIRECT_PREDICT_SERVED_REPORT
              : MISDIRECT_PREDICT_SERVED_ALLOW;
}

static void misdirect_predict_judge_as(const misdirect_predict_addr *a,
                                       const misdirect_predict_vhost *h,
                                       const misdirect_predict_name *n,
                                       int sni, int trusted,
                                       misdirect_predict_outcome *o)
{
    const misdirect_predict_vhost *r = n->r;

    o->status = 200;
    o->kind = MISDIRECT_PREDICT_SERVED;
    o->check = -1;
    if (h->no_handshake) {
        o->status = 0;
        o->kind = MISDIRECT_PREDICT_NO_HANDSHAKE;
        return;
    }
    /* mod_ssl's first question without SNI on a name-based address. */
    if (!sni && a->vhosts->nelts > 1 && (h->strict_sni || r->strict_sni)) {
        o->status = 403;
        o->kind = MISDIRECT_PREDICT_FORBIDDEN_SNI;
        return;
    }
    if (r->s != h->s && misdirect_model_refuses(h->s, r->s)) {
        o->status = 421;
        o->kind = MISDIRECT_PREDICT_REFUSED_SSL;
        return;
    }
    misdirect_predict_module(a, h, n, sni, trusted, o);
    if (o->status == 421) {
        return;
    }
    /* mod_ssl's access check, for clients that offer TLS 1.3 where the
     * handshake allows it.  Over TLS 1.2 it renegotiates, unless the
     * request's vhost has CA certificates of its own; where that vhost
     * requires a certificate that the client does not have, the
     * renegotiation fails: mod_ssl ends the connection, and its 403
     * never reaches the client. */
    if (r->s != h->s
        && misdirect_ssl_forbids(h->hs_verify, r->verify, h->tls13)) {
        int reneg = !h->tls13 && !misdirect_model_own_ca(h->s, r->s);

        o->status = reneg ? 0 : 403;
        o->kind = reneg ? MISDIRECT_PREDICT_NO_RENEGOTIATION
                        : MISDIRECT_PREDICT_FORBIDDEN_SSL;
        o->check = -1;
    }
}

void misdirect_predict_judge(const misdirect_predict_addr *a,
                             const misdirect_predict_vhost *h,
                             const misdirect_predict_name *n, int sni,
                             misdirect_predict_outcome *o)
{
    misdirect_predict_judge_as(a, h, n, sni, 0, o);
    o->trusted = NULL;
    /* What the peers the request's vhost trusts get, where it differs:
     * the checks of the handshake do not fire for them. */
    if (n->r->conf->trusted && n->r->conf->trusted->nelts) {
        misdirect_predict_outcome t;

        misdirect_predict_judge_as(a, h, n, sni, 1, &t);
        o->trusted_status = t.status;
        o->trusted_kind = t.kind;
        o->trusted_check = t.check;
        o->trusted = n->r->conf;
    }
}

static int misdirect_predict_code(const misdirect_predict_outcome *o)
{
    return MISDIRECT_PREDICT_CODE(o->kind, o->check);
}

/* Pairs are counted per class: for a member H, the names of vhosts
 * outside the class (judged once), plus those of the class's other
 * members (judged once on a member that is not theirs), less H's own. */
void misdirect_predict_count(misdirect_predict_addr *a,
                             misdirect_predict_tally *t)
{
    apr_int64_t out[2][MISDIRECT_PREDICT_CODES],
        in[2][MISDIRECT_PREDICT_CODES];
    misdirect_predict_outcome o;
    int i, j, c, x;

    memset(t, 0, sizeof(*t));
    t->total = (apr_int64_t)a->names->nelts * a->names->nelts;
    for (i = 0; i < a->classes->nelts; i++) {
        misdirect_predict_class *k = &APR_ARRAY_IDX(a->classes, i,
                                                    misdirect_predict_class);

        if (!k->sni_members) {
            continue;
        }
        memset(out, 0, sizeof(out));
        memset(in, 0, sizeof(in));
        for (j = 0; j < a->names->nelts; j++) {
            const misdirect_predict_name *n =
                &APR_ARRAY_IDX(a->names, j, misdirect_predict_name);
            int cov = MISDIRECT_PREDICT_COVERS(k->rep, j) ? 1 : 0;

            if (n->r->hclass != i) {
                misdirect_predict_judge(a, k->rep, n, 1, &o);
                out[cov][misdirect_predict_code(&o)]++;
                k->open |= o.status != 421;
            }
            else if (k->alt) {
                misdirect_predict_judge(a, n->r == k->rep ? k->alt : k->rep, n,
                                        1, &o);
                c = misdirect_predict_code(&o);
                in[cov][c]++;
                k->open |= o.status != 421;
                a->scratch[j] = cov * MISDIRECT_PREDICT_CODES + c;
            }
        }
        for (j = 0; j < k->members->nelts; j++) {
            const misdirect_predict_vhost *h =
                APR_ARRAY_IDX(k->members, j, misdirect_predict_vhost *);
            apr_int64_t w = h->sni_names;

            if (!w) {
                continue;
            }
            t->same += w * h->own->nelts;
            for (x = 0; x < 2; x++) {
                for (c = 0; c < MISDIRECT_PREDICT_CODES; c++) {
                    t->cross[x][c] += w * (out[x][c] + in[x][c]);
                }
            }
            for (c = 0; k->alt && c < h->own->nelts; c++) {
                x = a->scratch[APR_ARRAY_IDX(h->own, c, int)];
                t->cross[x / MISDIRECT_PREDICT_CODES]
                        [x % MISDIRECT_PREDICT_CODES] -= w;
            }
        }
    }
}
