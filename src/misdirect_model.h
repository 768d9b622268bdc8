/*
 * mod_misdirect: what the two files of the model of mod_ssl's verdict
 * share, and nothing else includes.  misdirect_settings.c says what
 * mod_ssl compares and reads each directive line into the value it
 * compares; misdirect_model.c merges those values per vhost, interns
 * them and gives the verdict.  The rest of the module asks the model
 * through the functions in misdirect_private.h.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_MODEL_H
#define MISDIRECT_MODEL_H

#include "misdirect_private.h"

/* How one setting is read, merged and compared.  Each rule is what the
 * installed mod_ssl (2.4.71) was seen to do (docs/checks.md, "What
 * mod_ssl compares"), not what its documentation suggests. */
typedef enum {
    MISDIRECT_TLS_FILES,     /* list of paths, merged slot by slot with
                              * the global list, compared as multisets */
    MISDIRECT_TLS_PROTOCOL,  /* version bitmask; each directive restarts */
    MISDIRECT_TLS_CIPHER,    /* SSLCipherSuite [SSL] spec: exact string */
    MISDIRECT_TLS_CIPHER13,  /* SSLCipherSuite TLSv1.3 spec */
    MISDIRECT_TLS_WORDS,     /* keywords, any case */
    MISDIRECT_TLS_NUMBER,    /* atoi() */
    MISDIRECT_TLS_PATH,      /* one path, resolved against ServerRoot */
    MISDIRECT_TLS_STRING,    /* exact string */
    MISDIRECT_TLS_COMMANDS   /* ordered list, the vhost's after the global */
} misdirect_tls_kind_e;

/* SSLVHostSNIPolicy's two groups: secure compares both, authonly only
 * the second. */
typedef enum {
    MISDIRECT_TLS_SERVER = 0,   /* certificates, protocols, ciphers */
    MISDIRECT_TLS_AUTH,         /* client verification, conf commands */
    MISDIRECT_TLS_GROUPS
} misdirect_tls_group_e;

typedef struct {
    const char *directive;
    const char *label;           /* in explanations */
    misdirect_tls_kind_e kind;
    misdirect_tls_group_e group;
    const char *dflt;            /* when not configured; NULL: unset */
} misdirect_tls_setting_def;

/* The settings mod_ssl compares between the handshake's vhost and the
 * request's, one row each: X(index, directive, label in explanations, how
 * it is read, the group of SSLVHostSNIPolicy it counts in, default when
 * not configured or NULL: unset).  SSLOCSPOverrideResponder has no
 * default: mod_ssl tells an explicit "off" from an unset one.  The
 * indexes (MISDIRECT_TLS_CERTS, ...) and the table that
 * misdirect_settings.c defines both come from here. */
#define MISDIRECT_TLS_SETTING_TABLE(X)                                     \
    X(CERTS, "SSLCertificateFile", "SSLCertificateFile",                     \
      FILES, SERVER, NULL)                                                   \
    X(KEYS, "SSLCertificateKeyFile", "SSLCertificateKeyFile",                \
      FILES, SERVER, NULL)                                                   \
    X(PROTOCOLS, "SSLProtocol", "SSLProtocol",                               \
      PROTOCOL, SERVER, "all")                                               \
    X(CIPHERS, "SSLCipherSuite", "SSLCipherSuite",                           \
      CIPHER, SERVER, NULL)                                                  \
    X(CIPHERS13, "SSLCipherSuite", "SSLCipherSuite TLSv1.3",                 \
      CIPHER13, SERVER, NULL)                                                \
    X(VERIFY, "SSLVerifyClient", "SSLVerifyClient",                          \
      WORDS, AUTH, "none")                                                   \
    X(VERIFY_DEPTH, "SSLVerifyDepth", "SSLVerifyDepth",                      \
      NUMBER, AUTH, "1")                                                     \
    X(CA_FILE, "SSLCACertificateFile", "SSLCACertificateFile",               \
      PATH, AUTH, NULL)                                                      \
    X(CA_PATH, "SSLCACertificatePath", "SSLCACertificatePath",               \
      PATH, AUTH, NULL)                                                      \
    X(CADN_FILE, "SSLCADNRequestFile", "SSLCADNRequestFile",                 \
      PATH, AUTH, NULL)                                                      \
    X(CADN_PATH, "SSLCADNRequestPath", "SSLCADNRequestPath",                 \
      PATH, AUTH, NULL)                                                      \
    X(CRL_FILE, "SSLCARevocationFile", "SSLCARevocationFile",                \
      PATH, AUTH, NULL)                                                      \
    X(CRL_PATH, "SSLCARevocationPath", "SSLCARevocationPath",                \
      PATH, AUTH, NULL)                                                      \
    X(CRL_CHECK, "SSLCARevocationCheck", "SSLCARevocationCheck",             \
      WORDS, AUTH, "none")                                                   \
    X(OCSP, "SSLOCSPEnable", "SSLOCSPEnable",                                \
      WORDS, AUTH, "off")                                                    \
    X(OCSP_RESPONDER, "SSLOCSPDefaultResponder", "SSLOCSPDefaultResponder",  \
      STRING, AUTH, NULL)                                                    \
    X(OCSP_OVERRIDE, "SSLOCSPOverrideResponder", "SSLOCSPOverrideResponder", \
      WORDS, AUTH, NULL)                                                     \
    X(SRP_FILE, "SSLSRPVerifierFile", "SSLSRPVerifierFile",                  \
      PATH, AUTH, NULL)                                                      \
    X(CONF_CMDS, "SSLOpenSSLConfCmd", "SSLOpenSSLConfCmd",                   \
      COMMANDS, AUTH, NULL)

#define MISDIRECT_TLS_INDEX(name, directive, label, kind, group, dflt)    \
    MISDIRECT_TLS_##name,
enum {
    MISDIRECT_TLS_SETTING_TABLE(MISDIRECT_TLS_INDEX)
    MISDIRECT_TLS_NSETTINGS
};
#undef MISDIRECT_TLS_INDEX

/* The table itself, in index order (misdirect_settings.c). */
MISDIRECT_INTERNAL extern const misdirect_tls_setting_def
    misdirect_settings_table[MISDIRECT_TLS_NSETTINGS];

/* Protocol versions as bits; SSLv3 is not in Debian's OpenSSL, so mod_ssl
 * accepts only its removal, which changes nothing. */
#define MISDIRECT_PROTO_TLS1   0x1
#define MISDIRECT_PROTO_TLS11  0x2
#define MISDIRECT_PROTO_TLS12  0x4
#define MISDIRECT_PROTO_TLS13  0x8
#define MISDIRECT_PROTO_ALL    0xf

/* One occurrence of a directive, or one value once merged.  Values are
 * shared: a vhost that does not set a directive points at the global
 * value, so 5,000 vhosts cost 5,000 pointers, not 5,000 copies; where a
 * value came from is the directive itself, made into words only when a
 * line is logged. */
typedef struct misdirect_tls_value misdirect_tls_value;
struct misdirect_tls_value {
    const char *canon;      /* what is compared; NULL: not set */
    const char *shown;      /* as configured, quotes stripped; NULL for
                             * a list of more than one item */
    const ap_directive_t *line;     /* NULL: the default, or a list */
    int global;             /* set outside any <VirtualHost> */
    int count;              /* items of a list value: lists of other
                             * lengths differ whatever their canon */
    const misdirect_tls_value *const *items;  /* count > 1: in configured
                                               * order */
};

/* The directives of one scope (the global server or one <VirtualHost>),
 * every occurrence in file order. */
typedef struct {
    int engine;                                   /* MISDIRECT_UNSET, 0, 1 */
    int strict_sni;                               /* SSLStrictSNIVHostCheck,
                                                   * likewise */
    apr_array_header_t *seen[MISDIRECT_TLS_NSETTINGS];
    apr_pool_t *pool;                             /* of the seen lists */
} misdirect_tls_scope;

/* What reading the tree needs.  The model keeps only the values and the
 * texts they compare, each text once however many vhosts hold it; all
 * else lives in scratch, cleared after each vhost, so that reading
 * 5,000 vhosts costs what they keep and not what reading them took. */
typedef struct {
    apr_pool_t *p;              /* the configuration's: what is kept */
    apr_pool_t *scratch;
    apr_hash_t *texts;          /* text -> its one kept copy */
    misdirect_ssl_policy_e policy;  /* SSLVHostSNIPolicy, as last read */
    int policy_set;                 /* and whether any line set it */
} misdirect_tls_reader;

/* misdirect_settings.c: reading. */
/* Takes one directive of the tree (not a section) into a scope: a
 * setting of the table, SSLEngine, or SSLVHostSNIPolicy (into rd). */
MISDIRECT_INTERNAL void misdirect_settings_scope_take(misdirect_tls_reader *rd,
                                                      misdirect_tls_scope *sc,
                                                      int global,
                                                      const ap_directive_t *d);
/* The defaults, one set per pass, shared by every vhost: made by
 * misdirect_settings_defaults_init, setting i's by misdirect_settings_default.
 */
MISDIRECT_INTERNAL void misdirect_settings_defaults_init(void);
MISDIRECT_INTERNAL const misdirect_tls_value *
misdirect_settings_default(size_t i);
/* An SSLProtocol canon as the versions it enables, for explanations. */
MISDIRECT_INTERNAL const char *
misdirect_settings_proto_versions(apr_pool_t *p, const char *canon);

#endif /* MISDIRECT_MODEL_H */
