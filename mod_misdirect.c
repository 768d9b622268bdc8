/*
 * mod_misdirect: misdirected requests as a per-VirtualHost policy, and
 * every 421 explained in error_log.
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * For every request read from a client, the module compares the virtual
 * host that the TLS handshake chose (mod_ssl, from SNI: "H") with the one
 * httpd core chose from the request's host (Host, :authority, or an
 * absolute-form target: "R"), runs seven checks, and lets the configuration
 * of R decide what each finding means:
 *
 *   scheme-mismatch    https:// target on plain HTTP, or http:// on TLS
 *   sni-missing        TLS without SNI on an address with name-based vhosts
 *   cert-mismatch      R != H and the certificate does not cover the host
 *   sni-host-mismatch  R != H but the certificate covers the host
 *                      (HTTP/2 connection reuse)
 *   unknown-host       the host is none of R's names (R is the fallback)
 *   port-mismatch      the host names a port the connection did not use
 *   forwarded-host     a forwarded host names another vhost of the
 *                      address than the one serving
 *
 * Directives (server config and <VirtualHost>, a vhost value overriding the
 * global one; the lists add up):
 *
 *   Misdirect On|Off|ReportOnly
 *   MisdirectPolicy CHECK reject|report|allow
 *       Misdirect ReportOnly
 *       MisdirectPolicy sni-host-mismatch report
 *   MisdirectAllow HOST...
 *       MisdirectAllow *.cdn.example 192.0.2.7
 *   MisdirectExempt URL-PATH...
 *       MisdirectExempt /.well-known/acme-challenge/
 *   MisdirectTrustedProxy CIDR...
 *       MisdirectTrustedProxy 10.0.0.0/8
 *
 * Server config only:
 *
 *   MisdirectLint On|Off
 *   MisdirectLogLimit N             diagnosis lines per second and child
 *
 * reject answers 421 Misdirected Request, report logs and serves, allow
 * only records.  Every finding is exposed as MISDIRECT_* variables in
 * r->subprocess_env for CustomLog, SetEnvIf and ErrorDocument pages.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_core.h"
#include "http_main.h"

/* AP_DECLARE_MODULE, below, ties this file's log calls to the module. */
#define MISDIRECT_MODULE_FILE
#include "src/misdirect_private.h"

/* ------------------------------------------------------------------ */
/* Startup                                                            */

static int misdirect_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    misdirect_tls_pre_config();
    return OK;
}

static int misdirect_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    misdirect_ssl_policy_e ssl;
    server_rec *v;
    int relaxed = 0;

    (void)plog;
    misdirect_model_build(pconf, ptemp, s);
    misdirect_config_resolve_policies(s);
    misdirect_vhosts_post_config(pconf, s);
    ssl = misdirect_model_policy();
    for (v = s; v; v = v->next) {
        misdirect_srv_conf *conf = misdirect_config_srv(v);

        relaxed += misdirect_model_tls_enabled(v)
                   && conf->action[MISDIRECT_CHECK_CERT] == MISDIRECT_UNSET
                   && conf->policy[MISDIRECT_CHECK_CERT]
                      != misdirect_default_action(MISDIRECT_CHECK_CERT);
    }
    misdirect_tls_post_config(pconf, ptemp, s);
    misdirect_names_build(pconf, ptemp, s);
    /* Startup reads the configuration twice: speak on the real pass. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        if (relaxed) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, MISDIRECT_LOGNO(014)
                         "SSLVHostSNIPolicy %s: mod_ssl serves requests "
                         "for a virtual host whose certificate differs "
                         "from the handshake's, so cert-mismatch defaults "
                         "to report (logged and served) instead of reject "
                         "in %d virtual host(s); 'MisdirectPolicy "
                         "cert-mismatch reject' refuses them again",
                         misdirect_settings_policy_name(ssl), relaxed);
        }
        if (misdirect_model_policy_origin() == MISDIRECT_SSL_POLICY_KEPT) {
            /* mod_ssl keeps the policy through restarts: say so at
             * the restart that removed the line, or the change is
             * believed done. */
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, MISDIRECT_LOGNO(042)
                         "SSLVHostSNIPolicy is no longer set, but mod_ssl "
                         "keeps %s, set before this restart, instead of "
                         "the default secure: a graceful or full restart "
                         "keeps it, only stopping and starting httpd "
                         "applies secure; mod_misdirect judges by %s too "
                         "until then; set 'SSLVHostSNIPolicy secure' to "
                         "apply it at a restart",
                         misdirect_settings_policy_name(ssl),
                         misdirect_settings_policy_name(ssl));
        }
        misdirect_lint(ptemp, s);
    }
    return misdirect_status_post_config(pconf, ptemp, s);
}

static void misdirect_test_config(apr_pool_t *pconf, server_rec *s)
{
    /* apachectl configtest stops before post_config: lint here too. */
    misdirect_model_build(pconf, pconf, s);
    misdirect_config_resolve_policies(s);
    misdirect_lint(pconf, s);
    misdirect_predict_dump(pconf, s);
}

static void misdirect_optional_fn_retrieve(void)
{
    misdirect_diag_optional_fns();
}

static void misdirect_register_hooks(apr_pool_t *p)
{
    /* After mod_ssl's, as mod_http2 and mod_md order theirs: every TLS
     * context (with mod_md's certificates too) is made by then. */
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    ap_hook_pre_config(misdirect_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(misdirect_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_post_config(misdirect_post_config, after_ssl, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_test_config(misdirect_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    misdirect_fold_register_hooks();
    /* The request check, the marks around mod_ssl's and the closing of
     * HTTP/1.x connections after a 421 (misdirect_request.c; after a
     * local ErrorDocument page, misdirect_attrib.c). */
    misdirect_request_register_hooks();
    /* Who answered the refusals the check did not answer, and their
     * lines and variables (misdirect_attrib.c). */
    misdirect_attrib_register_hooks();
    misdirect_status_register_hooks(p);
    misdirect_tls_register_hooks();
}

AP_DECLARE_MODULE(misdirect) = {
    STANDARD20_MODULE_STUFF,
    NULL,                       /* create per-directory config */
    NULL,                       /* merge per-directory config */
    misdirect_config_create_srv, /* create per-server config */
    misdirect_config_merge_srv, /* merge per-server config */
    misdirect_config_cmds,      /* directives, misdirect_config.c */
    misdirect_register_hooks,   /* register hooks */
    AP_MODULE_FLAG_ALWAYS_MERGE /* every vhost its own config: it holds
                                   the vhost's counters and TLS profile */
};
