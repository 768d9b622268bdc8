/*
 * mod_misdirect: the configuration.
 *
 * The directives, their defaults, creating and merging each server's
 * configuration, and what the other files read of it.  Every value a
 * configuration leaves unset is read through its default here; the
 * checks' default actions come from the check table (misdirect_logic.h),
 * adjusted to mod_ssl's SSLVHostSNIPolicy once the model has read it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_main.h"
#include "apr_network_io.h"
#include "apr_strings.h"

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

misdirect_srv_conf *misdirect_config_srv(server_rec *s)
{
    return ap_get_module_config(s->module_config, &misdirect_module);
}

int misdirect_config_mode(const misdirect_srv_conf *conf)
{
    return MISDIRECT_GET(conf, mode);
}

int misdirect_config_lint(server_rec *main_s)
{
    return MISDIRECT_GET(misdirect_config_srv(main_s), lint);
}

int misdirect_config_log_limit(void)
{
    return MISDIRECT_GET(misdirect_config_srv(ap_server_conf), log_limit);
}

/* The action of a check a vhost leaves unset.  Where the administrator
 * relaxed mod_ssl's SSLVHostSNIPolicy on purpose, so that mod_ssl serves
 * a vhost whose certificate differs from the handshake's, the module
 * follows: it reports such requests rather than refusing them. */
static misdirect_action_e
misdirect_config_default_for(misdirect_check_e check,
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
void misdirect_config_resolve_policies(server_rec *s)
{
    misdirect_ssl_policy_e ssl = misdirect_model_policy();
    int i;

    for (; s; s = s->next) {
        misdirect_srv_conf *conf = misdirect_config_srv(s);

        for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
            conf->policy[i] = conf->action[i] == MISDIRECT_UNSET
                              ? misdirect_config_default_for(i, ssl)
                              : (misdirect_action_e)conf->action[i];
        }
    }
}

void *misdirect_config_create_srv(apr_pool_t *p, server_rec *s)
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
    conf->ctx = NULL;
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

void *misdirect_config_merge_srv(apr_pool_t *p, void *basev, void *addv)
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
    conf->ctx = NULL;
    conf->desc = NULL;
    return conf;
}

static const char *misdirect_set_mode(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    misdirect_srv_conf *conf = misdirect_config_srv(cmd->server);

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
    misdirect_srv_conf *conf = misdirect_config_srv(cmd->server);
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
    misdirect_srv_conf *conf = misdirect_config_srv(cmd->server);
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
    misdirect_srv_conf *conf = misdirect_config_srv(cmd->server);

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
    misdirect_srv_conf *conf = misdirect_config_srv(cmd->server);
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
    misdirect_config_srv(cmd->server)->lint = !strcasecmp(arg, "On");
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
    misdirect_config_srv(cmd->server)->log_limit = (int)n;
    return NULL;
}

const command_rec misdirect_config_cmds[] = {
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
