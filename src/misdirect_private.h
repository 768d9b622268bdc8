/*
 * mod_misdirect: private to the module's own files.  Not an API: nothing
 * here is exported from mod_misdirect.so, and nothing here is meant for
 * other modules.
 *
 * Which file does what: HACKING.md, "Code layout".
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_PRIVATE_H
#define MISDIRECT_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_tables.h"
#include "apr_hash.h"

/* OpenSSL's types by name only: the files that use them include
 * OpenSSL's headers themselves. */
struct ssl_st;
struct x509_st;

/* What misdirect_tls.c keeps of a vhost's TLS context. */
struct misdirect_tls_ctx;

#include "misdirect_logic.h"

#define MISDIRECT_UNSET -1

/* The module's own message numbers: never httpd's AH numbers, never
 * reused once published. */
#define MISDIRECT_LOGNO(n) "MISDIRECT" #n ": "

/* Declares misdirect_module, and ties every other file's ap_log_* calls
 * to its LogLevel (misdirect:LEVEL), as mod_ssl's private header does;
 * the module file's AP_DECLARE_MODULE does it there. */
#ifdef MISDIRECT_MODULE_FILE
extern module AP_MODULE_DECLARE_DATA misdirect_module;
#else
APLOG_USE_MODULE(misdirect);
#endif

/* How many certificates of one vhost (RSA, ECDSA, ...) the coverage
 * memo tells apart.  Servers use two or three of OpenSSL's key types; a
 * certificate past the eighth is checked, but its answers not kept. */
#define MISDIRECT_CERT_SLOTS 8

/* The TLS settings of one vhost that decide whether mod_ssl lets a
 * request cross from another vhost's handshake (see misdirect_model.c). */
typedef struct misdirect_tls_profile misdirect_tls_profile;

typedef struct {
    int mode;                                /* misdirect_mode_e or UNSET */
    int action[MISDIRECT_CHECK_COUNT];       /* misdirect_action_e/UNSET */
    apr_array_header_t *allow;               /* const char *, normalised */
    apr_array_header_t *exempt;              /* const char *, URL-paths */
    apr_array_header_t *trusted;             /* apr_ipsubnet_t * */
    int lint;                                /* global only */
    int log_limit;                           /* global only */
    /* Set at startup, never by a directive, each by the file named:
     * create and merge leave them unset, and nothing else writes them. */
    misdirect_action_e policy[MISDIRECT_CHECK_COUNT]; /* misdirect_config.c:
                                              * each check's action,
                                              * defaulted */
    int counter_slot;                        /* misdirect_counters.c:
                                              * this vhost's counters */
    misdirect_tls_profile *tls;              /* misdirect_model.c: NULL
                                              * without SSLEngine */
    struct misdirect_tls_ctx *ctx;           /* misdirect_tls.c (mod_ssl's
                                              * init_server): its TLS
                                              * context's certificates and
                                              * their names */
    int file_order;                          /* misdirect_vhosts.c: 0 the
                                              * main server, then each
                                              * vhost's place */
    const char *desc;                        /* misdirect_vhosts.c:
                                              * "name (file:line)" */
} misdirect_srv_conf;

/* What the module knows about a client connection, in its conn_config
 * slot (misdirect_conn_get): on a TLS connection from mod_ssl's
 * pre_handshake on, on a plain one only once an h2c upgrade was asked
 * for.  HTTP/2 streams read their master connection's, from several
 * threads at once: the first request to find the handshake unknown
 * writes its record, which the others read once it is published (a
 * stream that comes meanwhile reads the handshake into a record of its
 * own, as mod_ssl's SSL_* variables of a stream read the master's SSL).
 * What a diagnosis line shows of the handshake is in the record, so that
 * no line reads the SSL while the connection's thread uses it. */
#define MISDIRECT_SNI_MAX 255                /* OpenSSL's longest SNI */
#define MISDIRECT_ALPN_MAX 255               /* a protocol id's longest */

typedef struct {
    int tls;                                 /* 0: mod_ssl freed the SSL */
    server_rec *hs;                          /* H, or NULL: not known */
    /* The vhost whose TLS context served the handshake, and so the
     * certificate: H itself, but for an SNI that names a vhost without
     * SSLEngine on, which mod_ssl takes for H while it keeps the
     * address's default context. */
    server_rec *ctx_vhost;
    int sni_sent;                            /* in this ClientHello */
    /* Does mod_ssl's request check see a server name?  OpenSSL shows it
     * the name a resumed TLS 1.2 session began with, even where this
     * ClientHello sent none. */
    int ssl_sees_sni;
    int resumed;                             /* a resumed TLS session */
    int tls13;                               /* TLS 1.3 or later */
    char alpn[MISDIRECT_ALPN_MAX + 1];       /* "" when none */
    /* The SNI as sent, escaped (misdirect_escape_into) for a log line or
     * a variable; a copy, as OpenSSL's own string is freed by a TLS 1.2
     * renegotiation.  Escaped once per connection, not per finding:
     * saves a finding 190 instructions (0.37%, make bench). */
    char sni[3 * MISDIRECT_SNI_MAX + 1];
    /* Which of H's certificates the client was shown: a place in H's
     * certs[], MISDIRECT_CERT_ANY for a resumed session (it may hold any
     * of them), MISDIRECT_CERT_OTHER for one that is not among them (or
     * none). */
    struct x509_st *cert;
    int cert_slot;
} misdirect_handshake;

#define MISDIRECT_HELLO_UNSEEN (-2)

#define MISDIRECT_CERT_ANY   (-2)
#define MISDIRECT_CERT_OTHER (-1)

typedef struct {
    struct ssl_st *ssl;                      /* NULL on plain connections */
    /* The SNI of the ClientHello as the client sent it, read from the
     * message itself during the handshake (misdirect_tls.c); hello_sni_len
     * is -1 when none was sent, MISDIRECT_HELLO_UNSEEN before. */
    int hello_sni_len;
    char hello_sni[MISDIRECT_SNI_MAX + 1];
    apr_uint32_t state;                      /* of handshake: unknown,
                                              * being written, published
                                              * (misdirect_tls.c) */
    misdirect_handshake handshake;
    int h2c_checked;                         /* an HTTP/1.1 request asking
                                              * for h2c was judged: its
                                              * replay as stream 1 is not
                                              * judged again */
} misdirect_conn_ctx;

#define misdirect_conn_get(c) \
    ((misdirect_conn_ctx *)ap_get_module_config((c)->conn_config, \
                                                &misdirect_module))

/* c's context, made where there is none yet: the one place it is made,
 * by mod_ssl's pre_handshake or by a plain request that asks for h2c. */
static APR_INLINE misdirect_conn_ctx *misdirect_conn_make(conn_rec *c)
{
    misdirect_conn_ctx *cc = misdirect_conn_get(c);

    if (!cc) {
        cc = apr_pcalloc(c->pool, sizeof(*cc));
        cc->hello_sni_len = MISDIRECT_HELLO_UNSEEN;
        ap_set_module_config(c->conn_config, &misdirect_module, cc);
    }
    return cc;
}

/* What one checked request found, kept until the request ends, so that a
 * 421 that mod_ssl answers after us is explained too. */
typedef struct {
    misdirect_facts facts;
    unsigned int found;                      /* fired before the lists */
    misdirect_decision decision;             /* fired == 0: all forgiven */
    /* The handshake's record, copied: NULL on plain connections. */
    const misdirect_handshake *handshake;
    int request_no;                          /* on its connection, from 1 */
    misdirect_cause_e cause;                 /* the likely cause */
    misdirect_cause_facts cause_facts;       /* and what it came from */
    int cause_known;                         /* read only where a line
                                              * or a refusal needs it */
    /* A refusal the check did not answer, as the attribution found it
     * (misdirect_attrib.c); NULL: the module's own, or none. */
    struct misdirect_refusal *refusal;
} misdirect_req;

/* Who refused a request that the module's check did not refuse, and how:
 * the attribution finds it, the diagnosis words it.  mod_ssl's come
 * first, before MISDIRECT_BY_HANDLER (misdirect_refusal_is_ssl). */
typedef enum {
    MISDIRECT_BY_SSL_421 = 1,     /* mod_ssl's 421: SSLVHostSNIPolicy */
    MISDIRECT_BY_SSL_PLAIN,       /* 400: plain HTTP sent to a TLS port */
    MISDIRECT_BY_SSL_NO_HOST,     /* 400: SNI, but no host */
    MISDIRECT_BY_SSL_STRICT,      /* 403: SSLStrictSNIVHostCheck */
    MISDIRECT_BY_SSL_VERIFY,      /* 403: a client certificate that the
                                   * handshake did not ask for */
    MISDIRECT_BY_SSL_ENDED,       /* the same over TLS 1.2: the failed
                                   * renegotiation ended the connection */
    MISDIRECT_BY_SSL_RESET,       /* the same on HTTP/2: mod_http2 reset
                                   * the stream */
    MISDIRECT_BY_HANDLER,         /* a 421 of the request's handler */
    MISDIRECT_BY_BACKEND          /* a 421 of a proxied backend */
} misdirect_by_e;

typedef struct misdirect_refusal {
    misdirect_by_e by;
    const char *what;             /* who answered what */
    const char *detail;           /* why, in more words, or NULL */
    int level;
    /* The record as the line and the variables show it: the judged one,
     * or a copy without what does not apply (the module's checks for
     * mod_ssl's 400 and 403, the handshake where none took place). */
    const misdirect_req *shown;
    const char *preserve_host;    /* a backend's ProxyPreserveHost: "on",
                                   * "off", "?" (no mod_proxy) */
    int explained;
} misdirect_refusal;

/* Did mod_ssl refuse q's request (rather than a handler or backend)? */
static APR_INLINE int misdirect_refusal_is_ssl(const misdirect_req *q)
{
    return q->refusal && q->refusal->by < MISDIRECT_BY_HANDLER;
}

/* "mod_ssl" or "handler", as MISDIRECT_BY and the line's by= say. */
static APR_INLINE const char *misdirect_refusal_by(const misdirect_req *q)
{
    return !q->refusal ? NULL
           : misdirect_refusal_is_ssl(q) ? "mod_ssl" : "handler";
}

/* H of q's request, or NULL: not TLS, or not known. */
static APR_INLINE server_rec *misdirect_req_hs(const misdirect_req *q)
{
    return q->handshake ? q->handshake->hs : NULL;
}

/* q's SNI (escaped), or NULL: none sent, or no TLS.  Matching it against
 * host names or IP literals gives what the raw SNI would: the bytes that
 * are escaped occur in neither. */
static APR_INLINE const char *misdirect_req_sni(const misdirect_req *q)
{
    return q->handshake && q->handshake->sni_sent ? q->handshake->sni
                                                  : NULL;
}

/* mod_ssl's SSLVHostSNIPolicy (server config only; "secure" when not
 * set since httpd started, which is also what an httpd without the
 * directive does). */
typedef enum {
    MISDIRECT_SSL_POLICY_STRICT = 0,
    MISDIRECT_SSL_POLICY_SECURE,
    MISDIRECT_SSL_POLICY_AUTHONLY,
    MISDIRECT_SSL_POLICY_INSECURE
} misdirect_ssl_policy_e;

#include "misdirect_config.h"

/* misdirect_vhosts.c: the configuration's vhosts, as every file names
 * them. */
/* Where s is defined, "file:line" ("main server" for the main server). */
MISDIRECT_INTERNAL const char *misdirect_vhosts_where(apr_pool_t *p,
                                                      server_rec *s);
/* The <VirtualHost> addresses in file order (misdirect_address *), each
 * with its vhosts in file order; the IPv4 and the IPv6 half of a
 * "*:port" that hold the same vhosts are one. */
typedef struct {
    server_rec *s;
    server_addr_rec *sar;               /* s's entry for the address */
} misdirect_address_vhost;
typedef struct {
    const char *key;                    /* as httpd matches a connection's
                                         * local address: "ip:port",
                                         * "[ip6]:port" */
    const char *shown;                  /* as the configuration wrote it
                                         * ("*:443" stands for the IPv4
                                         * and the IPv6 wildcard) */
    apr_array_header_t *vhosts;         /* misdirect_address_vhost */
} misdirect_address;
MISDIRECT_INTERNAL apr_array_header_t *
misdirect_vhosts_addresses(apr_pool_t *p, server_rec *main_s);
/* "ServerName (file:line)", "(unknown)" for NULL: how every line names a
 * virtual host. */
MISDIRECT_INTERNAL const char *misdirect_vhosts_desc(apr_pool_t *p,
                                                     server_rec *s);
/* The vhosts (main server left out) in the order of the configuration
 * files: httpd keeps them the other way round. */
MISDIRECT_INTERNAL apr_array_header_t *
misdirect_vhosts_in_file_order(apr_pool_t *p, server_rec *main_s);
/* The main server, then the vhosts in the order of the configuration. */
MISDIRECT_INTERNAL server_rec **misdirect_vhosts_all(apr_pool_t *p,
                                                     server_rec *main_s,
                                                     int *count);
/* Is host one of s's names, as core's vhost matching sees them?  0 for
 * no, else which name (see misdirect_host_matches). */
MISDIRECT_INTERNAL int misdirect_vhosts_has_name(server_rec *s,
                                                 const char *host,
                                                 apr_port_t port);
/* At startup: each server's place (file_order) and "name (file:line)"
 * (desc). */
MISDIRECT_INTERNAL void misdirect_vhosts_post_config(apr_pool_t *pconf,
                                                     server_rec *main_s);
/* s's ServerName, "" where it has none. */
MISDIRECT_INTERNAL const char *misdirect_vhosts_name(server_rec *s);
/* "127.0.0.1:443 [::1]:443", "*:443"; NULL for the main server. */
MISDIRECT_INTERNAL const char *misdirect_vhosts_address(apr_pool_t *p,
                                                        server_rec *s,
                                                        int is_main);

/* misdirect_model.c, misdirect_settings.c: the model of mod_ssl's
 * verdict.  Each vhost's TLS settings, read from the configuration tree
 * once per pass as mod_ssl parses them (quotes stripped, paths resolved,
 * lists as sets, protocols as versions), the policy, and the settings
 * that differ.  The request path, the explanation of mod_ssl's refusals
 * and the lint all ask the same functions. */
MISDIRECT_INTERNAL void misdirect_model_build(apr_pool_t *p,
                                              apr_pool_t *ptemp,
                                              server_rec *main_s);
MISDIRECT_INTERNAL misdirect_ssl_policy_e misdirect_model_policy(void);
/* Where that policy comes from: mod_ssl keeps the last value set through
 * restarts, so a configuration that no longer sets it keeps it until
 * httpd is stopped and started. */
typedef enum {
    MISDIRECT_SSL_POLICY_DEFAULT,       /* not set: secure */
    MISDIRECT_SSL_POLICY_SET,           /* set by this configuration */
    MISDIRECT_SSL_POLICY_KEPT           /* not set, and mod_ssl keeps
                                         * another value an earlier
                                         * configuration set */
} misdirect_ssl_policy_origin_e;
MISDIRECT_INTERNAL misdirect_ssl_policy_origin_e
misdirect_model_policy_origin(void);
/* Does s serve TLS (SSLEngine on, here or inherited)? */
MISDIRECT_INTERNAL int misdirect_model_tls_enabled(server_rec *s);
/* Does s take its certificates from another module (mod_md), no
 * SSLCertificateFile naming them?  -1 before this pass's model is
 * built. */
MISDIRECT_INTERNAL int misdirect_model_certs_elsewhere(server_rec *s);
MISDIRECT_INTERNAL const char *
misdirect_settings_policy_name(misdirect_ssl_policy_e policy);
/* Would mod_ssl answer 421 to a request that selects rs on a connection
 * whose handshake selected hs (hs != rs, both TLS vhosts)?  Cheap: it
 * compares values computed at startup. */
MISDIRECT_INTERNAL int misdirect_model_refuses(server_rec *hs, server_rec *rs);
/* The settings mod_ssl compares under the policy that differ between hs
 * and rs, each with both values and where they are set, escaped for a
 * log field; NULL when none differs. */
MISDIRECT_INTERNAL const char *misdirect_model_differences(apr_pool_t *p,
                                                           server_rec *hs,
                                                           server_rec *rs);
/* SSLStrictSNIVHostCheck of s as mod_ssl merges it: without SNI on a
 * name-based address, mod_ssl answers 403 when the handshake's or the
 * request's vhost has it on. */
MISDIRECT_INTERNAL int misdirect_model_strict_sni(server_rec *s);
/* SSLVerifyClient of s as the model merged it: 0 none, 1 optional (or
 * optional_no_ca), 2 require. */
MISDIRECT_INTERNAL int misdirect_model_verify_level(server_rec *s);
/* Does r have CA certificates for client verification of its own
 * (SSLCACertificateFile or Path set, and not as h has them)?  OpenSSL
 * keeps the handshake's CA list, so over TLS 1.2 mod_ssl does not
 * renegotiate for r's SSLVerifyClient require: it answers 403 at once
 * (AH02256).  Without, the renegotiation asks the client for a
 * certificate, and one that has none ends the connection. */
MISDIRECT_INTERNAL int misdirect_model_own_ca(server_rec *h, server_rec *r);
/* May clients negotiate TLS 1.3 on a handshake that the SNI gave s, on
 * an address whose default vhost is dflt?  s's SSLProtocol decides when
 * it is set (there or globally), else dflt's: mod_ssl leaves the
 * versions of the connection's first context in place. */
MISDIRECT_INTERNAL int misdirect_model_offers_tls13(server_rec *s,
                                                    server_rec *dflt);
/* s's SSLCertificateFile list as the model compares it (resolved paths,
 * a multiset): equal for vhosts that name the same files; NULL when s
 * serves no TLS or names none. */
MISDIRECT_INTERNAL const char *misdirect_model_certs_key(server_rec *s);
/* The files of s's SSLCertificateFile list as mod_ssl resolved them, in
 * configured order; empty when s serves no TLS or names none. */
MISDIRECT_INTERNAL apr_array_header_t *
misdirect_model_cert_files(apr_pool_t *p, server_rec *s);
/* The labels of the settings mod_ssl compares under the policy that
 * differ between a and b, in the model's order: what
 * misdirect_model_differences describes, SSLEngine and certificates from
 * another module left out. */
MISDIRECT_INTERNAL apr_array_header_t *
misdirect_model_differing(apr_pool_t *p, server_rec *a, server_rec *b);

/* misdirect_lint.c: the startup lint, from the model's answers. */
MISDIRECT_INTERNAL void misdirect_lint(apr_pool_t *ptemp,
                                       server_rec *main_s);

/* misdirect_tls.c: what mod_ssl shows the module.  Its optional hooks,
 * each vhost's certificates, and the handshake of a connection. */
MISDIRECT_INTERNAL void misdirect_tls_register_hooks(void);
MISDIRECT_INTERNAL void misdirect_tls_pre_config(void);
MISDIRECT_INTERNAL void misdirect_tls_post_config(apr_pool_t *pconf,
                                                  apr_pool_t *ptemp,
                                                  server_rec *main_s);
/* Names the certificates init_server noted for s (subject and digest),
 * which the model compares where the files do not name them (mod_md's);
 * the model asks once per vhost, after mod_ssl made its contexts, and
 * nothing is named for other vhosts. */
MISDIRECT_INTERNAL void misdirect_tls_name_ctx_certs(apr_pool_t *p,
                                                     server_rec *s);
/* The names of s's certificates as mod_ssl's context holds them, or
 * NULL. */
MISDIRECT_INTERNAL const char *misdirect_tls_ctx_names(server_rec *s);
/* The handshake of c's TLS session as mod_ssl showed it, or NULL (a
 * plain connection, or TLS by a module other than mod_ssl).  scratch
 * holds the answer while another thread is still publishing it. */
MISDIRECT_INTERNAL const misdirect_handshake *
misdirect_tls_handshake_get(conn_rec *c, misdirect_handshake *scratch);
/* Does the certificate of the handshake hk cover host, which is rs's
 * name number name (see misdirect_host_matches)? */
MISDIRECT_INTERNAL int misdirect_tls_cert_covers(const misdirect_handshake *hk,
                                                 server_rec *rs, int name,
                                                 const char *host);

/* misdirect_certs.c: certificates. */
/* Does cert cover name (a host name or IP literal), by RFC 6125 as
 * OpenSSL checks it?  The one coverage rule of requests, lint and dump. */
MISDIRECT_INTERNAL int misdirect_certs_cover_name(struct x509_st *cert,
                                                  const char *name);
/* The same for a configured alias: a wildcard alias is covered when a
 * name under it is; other patterns count as covered. */
MISDIRECT_INTERNAL int misdirect_certs_cover_alias(struct x509_st *cert,
                                                   const char *name);
/* Every certificate of files (RSA, ECDSA, ...), read as mod_ssl reads
 * them, into certs; cache maps a file to its X509 (spares re-reading a
 * file many vhosts share), and the caller frees them. */
MISDIRECT_INTERNAL void misdirect_certs_read(apr_hash_t *cache,
                                             const apr_array_header_t *files,
                                             apr_array_header_t *certs);
/* The certificates of s's SSLCertificateFile list, likewise. */
MISDIRECT_INTERNAL void misdirect_certs_load(apr_pool_t *ptemp,
                                             apr_hash_t *cache,
                                             server_rec *s,
                                             apr_array_header_t *certs);

/* misdirect_names.c: the configuration's names, indexed once per pass
 * (misdirect_names_build, at post_config). */
MISDIRECT_INTERNAL void misdirect_names_build(apr_pool_t *p,
                                              apr_pool_t *ptemp,
                                              server_rec *main_s);
/* The first vhost other than not, on the address and port c reached,
 * whose ServerName or ServerAlias (wildcards too) is the lower-case name
 * lower; NULL for none. */
MISDIRECT_INTERNAL server_rec *misdirect_names_vhost(conn_rec *c,
                                                     const char *lower,
                                                     server_rec *not);

/* misdirect_request.c: the request check. */
MISDIRECT_INTERNAL void misdirect_request_register_hooks(void);
/* Does MisdirectAllow of conf forgive host? */
MISDIRECT_INTERNAL int
misdirect_request_host_allowed(const misdirect_srv_conf *conf,
                               const char *host);
/* The facts, findings and decision of r as the request check sees them
 * (c is the client's connection), kept in r's request_config. */
MISDIRECT_INTERNAL misdirect_req *misdirect_request_judge(request_rec *r,
                                                          conn_rec *c);
/* Judges q's likely cause (q->cause), reading the headers and stream
 * facts it needs: only where something is to be said. */
MISDIRECT_INTERNAL void misdirect_request_find_cause(request_rec *r,
                                                     conn_rec *c,
                                                     misdirect_req *q);
/* Publishes what q found in r's MISDIRECT_* variables. */
MISDIRECT_INTERNAL void misdirect_request_set_vars(const misdirect_req *q,
                                                   request_rec *r);
/* What the request check left in r's request_config besides a record:
 * r reached mod_ssl's check (and no further), or was judged clean. */
MISDIRECT_INTERNAL extern const misdirect_req misdirect_request_reached;
MISDIRECT_INTERNAL extern const misdirect_req misdirect_request_judged_clean;

/* misdirect_text.c: text helpers. */
/* Client text, escaped for a log field or a variable (see
 * misdirect_escape_into): s itself when nothing in it needs escaping,
 * else a copy in p. */
MISDIRECT_INTERNAL const char *misdirect_text_escape(apr_pool_t *p,
                                                     const char *s);
/* Configuration text as UTF-8: valid sequences pass, any other byte is
 * read as Latin-1. */
MISDIRECT_INTERNAL const char *misdirect_text_utf8(apr_pool_t *p,
                                                   const char *s);
/* s as a JSON string, "null" for NULL: configuration text as UTF-8 (see
 * misdirect_text_utf8), quotes, controls and <>& escaped. */
MISDIRECT_INTERNAL const char *misdirect_text_json_str(apr_pool_t *p,
                                                       const char *s);
/* "check,check" for a set of checks. */
MISDIRECT_INTERNAL const char *misdirect_text_check_list(apr_pool_t *p,
                                                         unsigned int mask);
/* qsort's comparison of two const char * elements. */
MISDIRECT_INTERNAL int misdirect_text_strcmp(const void *a, const void *b);
/* Is item one of list's items, each preceded by the start or a space and
 * followed by the end or sep (',' for "a, b", ' ' for "a b")? */
MISDIRECT_INTERNAL int misdirect_text_has_item(const char *list,
                                               const char *item, char sep);

/* misdirect_fold.c: MisdirectLogLimit.  Is the line of (logno, key),
 * key being what makes two lines the same, a repeat within its window?
 * Then it is counted, and 1 says that there is no line to build. */
MISDIRECT_INTERNAL int misdirect_fold_repeat(request_rec *r, int level,
                                             const char *logno,
                                             const char *key);
/* Is this diagnosis line (line, whole) to be written now?  0: it was
 * folded into its summary, or waits for a second with room.  Lines below
 * warn are asked for, and always written. */
MISDIRECT_INTERNAL int misdirect_fold_line(request_rec *r, int level,
                                           const char *logno,
                                           const char *key,
                                           const char *line);
/* Each child's fold table and the thread that writes what is due. */
MISDIRECT_INTERNAL void misdirect_fold_register_hooks(void);

/* misdirect_diag.c: the diagnosis line. */
MISDIRECT_INTERNAL void misdirect_diag_optional_fns(void);
/* The HTTP/2 stream id of r, or NULL (HTTP/1.x, or no mod_http2). */
MISDIRECT_INTERNAL const char *misdirect_diag_h2_stream(request_rec *r);
/* What a line tells the administrator to change: brief, what happened
 * and the fix in a few words, at the start of the line; hint, the same
 * at length in the terms of the clients that cause it, as its last
 * field.  NULL when there is nothing to say. */
typedef struct {
    const char *brief;
    const char *hint;
} misdirect_advice;

/* Gives a line's advice; diff, the TLS settings that differ, or NULL. */
typedef misdirect_advice (*misdirect_advise_fn)(const misdirect_req *q,
                                                request_rec *r,
                                                conn_rec *c,
                                                const char *diff);

/* What one line says, apart from the record: its level and number, who
 * answered what (and why, in more words), further fields (with a leading
 * space), and the advice (NULL: that of the module's own findings). */
typedef struct {
    int level;
    const char *logno;
    const char *what;
    const char *detail;
    const char *extra;
    misdirect_advise_fn advise;
} misdirect_line;

/* The one line that explains a finding or a refusal.  A repeat folded
 * under MisdirectLogLimit is counted, and its line, advice and all,
 * never built. */
MISDIRECT_INTERNAL void misdirect_diag_log(const misdirect_req *q,
                                           request_rec *r, conn_rec *c,
                                           const misdirect_line *ln);
/* The advice of a refusal of mod_ssl's, and of a handler's 421. */
MISDIRECT_INTERNAL misdirect_advice
misdirect_diag_ssl_advice(const misdirect_req *q, request_rec *r,
                          conn_rec *c, const char *diff);
MISDIRECT_INTERNAL misdirect_advice
misdirect_diag_handler_advice(const misdirect_req *q, request_rec *r,
                              conn_rec *c, const char *diff);

/* misdirect_attrib.c: who refused what the check did not refuse. */
MISDIRECT_INTERNAL void misdirect_attrib_register_hooks(void);

/* misdirect_predict_dump.c: with -t -D DUMP_MISDIRECT_JSON or -D
 * DUMP_MISDIRECT, what every (SNI, host) pair of each TLS address will get, on
 * stdout. */
MISDIRECT_INTERNAL void misdirect_predict_dump(apr_pool_t *ptemp,
                                               server_rec *main_s);

/* misdirect_counters.c: the counters in shared memory, and the calls of
 * the request path that count. */
/* Every checked request; d is NULL when nothing fired. */
MISDIRECT_INTERNAL void misdirect_counters_count(server_rec *s,
                                                 const misdirect_decision *d);
/* A 421, 400 or 403 (status) that mod_ssl answered and this module
 * explained. */
MISDIRECT_INTERNAL void misdirect_counters_count_ssl(server_rec *s,
                                                     int status);
/* A 421 that neither this module nor mod_ssl answered: a handler, the
 * application or a proxied backend. */
MISDIRECT_INTERNAL void misdirect_counters_count_other(server_rec *s);
/* A finding or refusal the module explained, by its likely cause. */
MISDIRECT_INTERNAL void misdirect_counters_count_cause(server_rec *s,
                                                       misdirect_cause_e c);

/* misdirect_status.c: the counters' segment, mod_status's section, the
 * misdirect-status and misdirect-metrics handlers. */
MISDIRECT_INTERNAL int misdirect_status_post_config(apr_pool_t *pconf,
                                                    apr_pool_t *ptemp,
                                                    server_rec *main_s);
MISDIRECT_INTERNAL void misdirect_status_register_hooks(apr_pool_t *p);

#endif /* MISDIRECT_PRIVATE_H */
