/*
 * mod_misdirect: what the prediction's three files share.  Private to
 * them: misdirect_predict_layout.c finds each TLS address's names and the
 * vhosts they select, misdirect_predict_matrix.c works out what each (SNI,
 * host) pair gets, misdirect_predict_dump.c prints it for people or for
 * scripts.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_PREDICT_H
#define MISDIRECT_PREDICT_H

#include "misdirect_private.h"

/* What a pair gets.  Ordered by the answer, so that sorted output puts
 * the served pairs first. */
typedef enum {
    MISDIRECT_PREDICT_SERVED = 0,    /* nothing fired */
    MISDIRECT_PREDICT_SERVED_OFF,    /* Misdirect Off in the request's vhost */
    MISDIRECT_PREDICT_SERVED_LISTED, /* MisdirectAllow forgave the host */
    MISDIRECT_PREDICT_SERVED_ALLOW,  /* a check fired, its action allow */
    MISDIRECT_PREDICT_SERVED_REPORT, /* a check fired, its action report */
    MISDIRECT_PREDICT_SERVED_WOULD,  /* Misdirect ReportOnly served what On
                                      * would refuse */
    MISDIRECT_PREDICT_REFUSED_SSL,   /* 421 by mod_ssl */
    MISDIRECT_PREDICT_REFUSED,       /* 421 by mod_misdirect */
    MISDIRECT_PREDICT_FORBIDDEN_SSL, /* 403 by mod_ssl: client verification */
    MISDIRECT_PREDICT_FORBIDDEN_SNI, /* 403 by mod_ssl:
                                      * SSLStrictSNIVHostCheck */
    MISDIRECT_PREDICT_NO_HANDSHAKE,  /* the handshake fails: no answer */
    MISDIRECT_PREDICT_NO_RENEGOTIATION, /* TLS 1.2 renegotiation for a client
                                         * certificate fails: no answer */
    MISDIRECT_PREDICT_KINDS
} misdirect_predict_kind_e;

/* A kind and its check (or none) as one small number, for tallies. */
#define MISDIRECT_PREDICT_CODE(kind, check) ((kind) * 8 + (check) + 1)
_Static_assert(MISDIRECT_CHECK_COUNT < 8, "a check and none fit in 8 codes");
#define MISDIRECT_PREDICT_CODES (MISDIRECT_PREDICT_KINDS * 8)

typedef struct {
    int status;                    /* 200, 421, 403, or 0: no answer */
    misdirect_predict_kind_e kind;
    int check;                     /* misdirect_check_e, or -1 */
    /* Where the request's vhost has MisdirectTrustedProxy: its
     * configuration, and what a peer in that list gets instead; NULL
     * where it has none. */
    const misdirect_srv_conf *trusted;
    int trusted_status;
    misdirect_predict_kind_e trusted_kind;
    int trusted_check;
} misdirect_predict_outcome;

/* One vhost on one address. */
typedef struct {
    server_rec *s;
    misdirect_srv_conf *conf;
    server_addr_rec *sar;          /* its entry for this address */
    int mode;
    misdirect_action_e policy[MISDIRECT_CHECK_COUNT];
    /* One bit per name of the address (misdirect_predict_name.idx): does
     * one of its certificates cover it?  Shared by the vhosts with the
     * same certificates; NULL when they cover none. */
    const unsigned char *covers;
    /* With several certificates (RSA and ECDSA, say): each one's bitmap
     * and key type, for the clients that accept only that type. */
    int ncerts;
    const unsigned char **cert_covers;
    const char **cert_key;
    int verify;                    /* SSLVerifyClient: 0 none, 1 optional,
                                    * 2 require; 0 without TLS, where
                                    * mod_ssl's access check does nothing */
    int hs_verify;                 /* the same of its handshakes: the
                                    * default vhost's without TLS */
    int no_handshake;              /* its handshakes fail (see layout) */
    int tls13;                     /* its handshakes may be TLS 1.3 */
    int strict_sni;                /* SSLStrictSNIVHostCheck on */
    int hclass;                    /* misdirect_predict_class, by index */
    long sni_names;                /* names whose SNI selects it */
    apr_array_header_t *own;       /* int: names whose host selects it */
} misdirect_predict_vhost;

typedef struct {
    const char *name;              /* as configured */
    const char *lower;
    const char *host;              /* lower as a Host: no trailing dot */
    int idx;                       /* in the address's sorted names */
    misdirect_predict_vhost *h;       /* the vhost an SNI of it selects */
    misdirect_predict_vhost *r;       /* the vhost a host of it selects */
    int host_known;                /* by one of r's names, not as the
                                    * default: a name with a trailing dot
                                    * is no Host's */
    int allowed;                   /* MisdirectAllow of r forgives it */
} misdirect_predict_name;

/* Handshake vhosts that give every request for another vhost the same
 * answer: mod_ssl finds the same settings, the certificates cover the
 * same names, client verification is the same.  Pairs are worked out
 * once per class, not once per vhost. */
typedef struct {
    misdirect_predict_vhost *rep;     /* its first vhost in the file */
    misdirect_predict_vhost *alt;     /* its second, or NULL */
    apr_array_header_t *members;   /* misdirect_predict_vhost *, file order */
    long sni_members;              /* members that some SNI selects */
    /* Set by misdirect_predict_count(): do requests for other vhosts get
     * anything but 421 on the class's handshakes? */
    int open;
} misdirect_predict_class;

typedef struct {
    const char *key;               /* as configured: "*:443" */
    unsigned int port;
    apr_array_header_t *vhosts;    /* misdirect_predict_vhost *, file order */
    apr_array_header_t *names;     /* misdirect_predict_name, sorted */
    apr_array_header_t *classes;   /* misdirect_predict_class */
    int *scratch;                  /* one per name, for counting */
} misdirect_predict_addr;

/* Every pair with SNI, counted: the pairs whose host selects the SNI's
 * own vhost, and the others by outcome, [1] those whose host the
 * handshake's certificate covers (where browsers reuse connections). */
typedef struct {
    apr_int64_t total;
    apr_int64_t same;
    apr_int64_t cross[2][MISDIRECT_PREDICT_CODES];
} misdirect_predict_tally;

/* misdirect_predict_layout.c: the TLS addresses, their vhosts and names, what
 * selects what and which certificates cover which names. */
MISDIRECT_INTERNAL apr_array_header_t *misdirect_predict_layout(apr_pool_t *p,
                                                                server_rec *s);

/* misdirect_predict_matrix.c: classes (misdirect_predict_layout() first), and
 * the answers. */
MISDIRECT_INTERNAL apr_array_header_t *misdirect_predict_build(apr_pool_t *p,
                                                               server_rec *s);
MISDIRECT_INTERNAL void
misdirect_predict_judge(const misdirect_predict_addr *a,
                        const misdirect_predict_vhost *h,
                        const misdirect_predict_name *n, int sni,
                        misdirect_predict_outcome *o);
MISDIRECT_INTERNAL void misdirect_predict_count(misdirect_predict_addr *a,
                                                misdirect_predict_tally *t);

#define MISDIRECT_PREDICT_COVERS(v, i) \
    ((v)->covers && ((v)->covers[(i) >> 3] & (1u << ((i) & 7))))

#endif /* MISDIRECT_PREDICT_H */
