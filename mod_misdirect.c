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
#include "http_main.h"
#include "http_core.h"
#include "apr_network_io.h"
#include "apr_strings.h"

/* AP_DECLARE_MODULE, below, ties this file's log calls to the module. */
#define MISDIRECT_MODULE_FILE
#include "src/misdirect_private.h"

/* The value of every directive a configuration leaves unset (the checks'
 * actions come from the check table, misdirect_logic.h), read through
 * MISDIRECT_GET where the value is used. */
static const misdirect_srv_conf misdirect_defaults = {
    .mode = MISDIRECT_MODE_ON,
    .lint = 1,
    .log_limit = 10,
};

#define MISDIRECT_GET(conf, field) \
    ((conf)->field == MISDIRECT_UNSET ? misdirect_defaults.field \
                                      : (conf)->field)

misdirect_srv_conf *misdirect_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &misdirect_module);
}

int misdirect_mode(const misdirect_srv_conf *conf)
{
    return MISDIRECT_GET(conf, mode);
}

int misdirect_lint_enabled(server_rec *main_s)
{
    return MISDIRECT_GET(misdirect_conf(main_s), lint);
}

int misdirect_log_limit(void)
{
    return MISDIRECT_GET(misdirect_conf(ap_server_conf), log_limit);
}

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

/* The action of a check a vhost leaves unset.  Where the administrator
 * relaxed mod_ssl's SSLVHostSNIPolicy on purpose, so that mod_ssl serves
 * a vhost whose certificate differs from the handshake's, the module
 * follows: it reports such requests rather than refusing them. */
misdirect_action_e misdirect_default_for(misdirect_check_e check,
                                         misdirect_ssl_policy_e ssl)
{
    if (check == MISDIRECT_CHECK_CERT
        && (ssl == MISDIRECT_SSL_POLICY_AUTHONLY
            || ssl == MISDIRECT_SSL_POLICY_INSECURE)) {
        return MISDIRECT_REPORT;
    }
    return misdirect_default_action(check);
}

/* Each vhost's action of every check, its own or the default under
 * mod_ssl's policy, which the model has read. */
static void misdirect_policies_resolve(server_rec *s)
{
    misdirect_ssl_policy_e ssl = misdirect_ssl_policy();
    int i;

    for (; s; s = s->next) {
        misdirect_srv_conf *conf = misdirect_conf(s);

        for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
            conf->policy[i] = conf->action[i] == MISDIRECT_UNSET
                              ? misdirect_default_for(i, ssl)
                              : (misdirect_action_e)conf->action[i];
        }
    }
}

static int misdirect_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    misdirect_ssl_policy_e ssl;
    server_rec *v;
    int file_order = 0, relaxed = 0;

    (void)plog;
    misdirect_tls_profiles_build(pconf, ptemp, s);
    misdirect_policies_resolve(s);
    ssl = misdirect_ssl_policy();
    for (v = s; v; v = v->next) {
        misdirect_srv_conf *conf = misdirect_conf(v);

        conf->file_order = file_order++;
        /* Every diagnosis line names vhosts so: written once. */
        conf->desc = misdirect_vhost_desc(pconf, v);
        relaxed += misdirect_tls_enabled(v)
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
                         misdirect_ssl_policy_name(ssl), relaxed);
        }
        if (misdirect_ssl_policy_origin() == MISDIRECT_SSL_POLICY_KEPT) {
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
                         misdirect_ssl_policy_name(ssl),
                         misdirect_ssl_policy_name(ssl));
        }
        misdirect_lint(ptemp, s);
    }
    return misdirect_status_post_config(pconf, ptemp, s);
}

static void misdirect_test_config(apr_pool_t *pconf, server_rec *s)
{
    /* apachectl configtest stops before post_config: lint here too. */
    misdirect_tls_profiles_build(pconf, pconf, s);
    misdirect_policies_resolve(s);
    misdirect_lint(pconf, s);
    misdirect_dump(pconf, s);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                      */

static void *misdirect_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    misdirect_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    (void)s;
    conf->mode = MISDIRECT_UNSET;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        conf->action[i] = MISDIRECT_UNSET;
    }
    conf->allow = NULL;
    conf->exempt = NULL;
    conf->trusted = NULL;
    conf->lint = MISDIRECT_UNSET;
    conf->log_limit = MISDIRECT_UNSET;
    conf->counter_slot = MISDIRECT_UNSET;
    conf->tls = NULL;
    conf->ctx_certs = NULL;
    conf->desc = NULL;
    return conf;
}

static apr_array_header_t *misdirect_merge_list(apr_pool_t *p,
                                                apr_array_header_t *base,
                                                apr_array_header_t *add)
{
    if (!base) {
        return add;
    }
    if (!add) {
        return base;
    }
    return apr_array_append(p, base, add);
}

static void *misdirect_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    misdirect_srv_conf *base = basev, *add = addv;
    misdirect_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    conf->mode = add->mode == MISDIRECT_UNSET ? base->mode : add->mode;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        conf->action[i] = add->action[i] == MISDIRECT_UNSET ? base->action[i]
                                                  : add->action[i];
    }
    conf->allow = misdirect_merge_list(p, base->allow, add->allow);
    conf->exempt = misdirect_merge_list(p, base->exempt, add->exempt);
    conf->trusted = misdirect_merge_list(p, base->trusted, add->trusted);
    conf->lint = add->lint == MISDIRECT_UNSET ? base->lint : add->lint;
    conf->log_limit = add->log_limit == MISDIRECT_UNSET ? base->log_limit
                                              : add->log_limit;
    /* Set per vhost at startup, never inherited. */
    conf->counter_slot = MISDIRECT_UNSET;
    conf->tls = NULL;
    conf->ctx_certs = NULL;
    conf->desc = NULL;
    return conf;
}

static const char *misdirect_set_mode(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);

    (void)dummy;
    if (!strcasecmp(arg, "On")) {
        conf->mode = MISDIRECT_MODE_ON;
    }
    else if (!strcasecmp(arg, "Off")) {
        conf->mode = MISDIRECT_MODE_OFF;
    }
    else if (!strcasecmp(arg, "ReportOnly")) {
        conf->mode = MISDIRECT_MODE_REPORT_ONLY;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: %s: expected On, Off or "
                            "ReportOnly", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *misdirect_set_policy(cmd_parms *cmd, void *dummy,
                                        const char *check,
                                        const char *action)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    int c = misdirect_check_parse(check);
    int a = misdirect_action_parse(action);
    int i;

    (void)dummy;
    if (c < 0) {
        const char *known = misdirect_check_name(0);

        for (i = 1; i < MISDIRECT_CHECK_COUNT; i++) {
            known = apr_pstrcat(cmd->pool, known,
                                i + 1 < MISDIRECT_CHECK_COUNT ? ", " : " or ",
                                misdirect_check_name(i), NULL);
        }
        return apr_psprintf(cmd->pool, "%s: %s: unknown check, expected %s",
                            cmd->cmd->name, check, known);
    }
    if (a < 0) {
        return apr_psprintf(cmd->pool, "%s: %s: unknown action for %s, "
                            "expected reject, report or allow",
                            cmd->cmd->name, action, check);
    }
    conf->action[c] = a;
    return NULL;
}

static const char *misdirect_add_allow(cmd_parms *cmd, void *dummy,
                                       const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    char *norm = apr_palloc(cmd->pool, strlen(arg) + 64);

    (void)dummy;
    if (misdirect_host_normalize(arg, norm, strlen(arg) + 64) != 0) {
        return apr_psprintf(cmd->pool, "%s: %s: not a host name, "
                            "*.wildcard name or IP address (no scheme, "
                            "port or path)", cmd->cmd->name, arg);
    }
    if (!conf->allow) {
        conf->allow = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(conf->allow, const char *) = norm;
    return NULL;
}

static const char *misdirect_add_exempt(cmd_parms *cmd, void *dummy,
                                        const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);

    (void)dummy;
    if (arg[0] != '/') {
        return apr_psprintf(cmd->pool, "%s: %s: expected a URL-path "
                            "starting with /", cmd->cmd->name, arg);
    }
    if (!conf->exempt) {
        conf->exempt = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    APR_ARRAY_PUSH(conf->exempt, const char *) = arg;
    return NULL;
}

static const char *misdirect_add_trusted(cmd_parms *cmd, void *dummy,
                                         const char *arg)
{
    misdirect_srv_conf *conf = misdirect_conf(cmd->server);
    char *ip = apr_pstrdup(cmd->temp_pool, arg);
    char *mask = strchr(ip, '/');
    apr_ipsubnet_t *sub;
    apr_status_t rv;

    (void)dummy;
    if (mask) {
        *mask++ = '\0';
    }
    switch (misdirect_cidr_check(ip, mask)) {
    case MISDIRECT_CIDR_NOT_ADDRESS:
        return apr_psprintf(cmd->pool, "%s: %s: not a whole IPv4 or IPv6 "
                            "address (write a range as 10.0.0.0/8)",
                            cmd->cmd->name, arg);
    case MISDIRECT_CIDR_BAD_MASK:
        return apr_psprintf(cmd->pool, "%s: %s: the mask must be a prefix "
                            "length (1-32 for IPv4, 1-128 for IPv6) or a "
                            "contiguous IPv4 netmask", cmd->cmd->name, arg);
    case MISDIRECT_CIDR_HOST_BITS:
        return apr_psprintf(cmd->pool, "%s: %s: the address has bits set "
                            "past the mask; write the network address of "
                            "the range, or the single address without a "
                            "mask", cmd->cmd->name, arg);
    default:
        break;
    }
    rv = apr_ipsubnet_create(&sub, ip, mask, cmd->pool);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s: not an IP address or CIDR "
                            "range (%pm)", cmd->cmd->name, arg, &rv);
    }
    if (!conf->trusted) {
        conf->trusted = apr_array_make(cmd->pool, 4,
                                       sizeof(apr_ipsubnet_t *));
    }
    APR_ARRAY_PUSH(conf->trusted, apr_ipsubnet_t *) = sub;
    return NULL;
}

static const char *misdirect_set_lint(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "On") && strcasecmp(arg, "Off")) {
        return apr_psprintf(cmd->pool, "%s: %s: expected On or Off",
                            cmd->cmd->name, arg);
    }
    misdirect_conf(cmd->server)->lint = !strcasecmp(arg, "On");
    return NULL;
}

static const char *misdirect_set_log_limit(cmd_parms *cmd, void *dummy,
                                           const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < 0 || n > 1000000) {
        return apr_psprintf(cmd->pool, "%s: %s: expected a number of lines "
                            "per second from 0 (no limit) to 1000000",
                            cmd->cmd->name, arg);
    }
    misdirect_conf(cmd->server)->log_limit = (int)n;
    return NULL;
}

static void misdirect_optional_fn_retrieve(void)
{
    misdirect_diag_optional_fns();
}

static void misdirect_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(misdirect_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(misdirect_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_post_config(misdirect_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_test_config(misdirect_test_config, NULL, NULL, APR_HOOK_MIDDLE);
    misdirect_fold_register_hooks();
    /* The request check, the marks around mod_ssl's, the explanation of
     * others' refusals and the closing of HTTP/1.x connections after any
     * 421 (misdirect_request.c). */
    misdirect_request_register_hooks();
    misdirect_status_register_hooks(p);
    misdirect_tls_register_hooks();
}

static const command_rec misdirect_cmds[] = {
    AP_INIT_TAKE1("Misdirect", misdirect_set_mode, NULL, RSRC_CONF,
                  "On, Off or ReportOnly (every reject becomes report)"),
    AP_INIT_TAKE2("MisdirectPolicy", misdirect_set_policy, NULL, RSRC_CONF,
                  "a check, one of " MISDIRECT_CHECK_NAMES "and an action: "
                  "reject, report or allow"),
    AP_INIT_ITERATE("MisdirectAllow", misdirect_add_allow, NULL, RSRC_CONF,
                    "host names, *.wildcard names or IP addresses for "
                    "which no check but scheme-mismatch fires"),
    AP_INIT_ITERATE("MisdirectExempt", misdirect_add_exempt, NULL,
                    RSRC_CONF, "URL-path prefixes that are never rejected"),
    AP_INIT_ITERATE("MisdirectTrustedProxy", misdirect_add_trusted, NULL,
                    RSRC_CONF, "IP addresses or CIDR ranges of gateways "
                    "whose TLS handshakes are not judged"),
    AP_INIT_TAKE1("MisdirectLint", misdirect_set_lint, NULL, RSRC_CONF,
                  "On or Off: warn at startup about configurations that "
                  "will misdirect"),
    AP_INIT_TAKE1("MisdirectLogLimit", misdirect_set_log_limit, NULL,
                  RSRC_CONF, "diagnosis lines per second per process, "
                  "0 for no limit"),
    { NULL }
};

AP_DECLARE_MODULE(misdirect) = {
    STANDARD20_MODULE_STUFF,
    NULL,                       /* create per-directory config */
    NULL,                       /* merge per-directory config */
    misdirect_create_srv_conf,  /* create per-server config */
    misdirect_merge_srv_conf,   /* merge per-server config */
    misdirect_cmds,             /* directives */
    misdirect_register_hooks,   /* register hooks */
    AP_MODULE_FLAG_ALWAYS_MERGE /* every vhost its own config: it holds
                                   the vhost's counters and TLS profile */
};
