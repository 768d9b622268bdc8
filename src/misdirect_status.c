/*
 * mod_misdirect: counters.  (Placeholder until the counters land.)
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "mod_misdirect.h"

#include "http_log.h"

APLOG_USE_MODULE(misdirect);

int misdirect_status_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                                 server_rec *main_s)
{
    (void)pconf;
    (void)ptemp;
    (void)main_s;
    return OK;
}

void misdirect_status_count(server_rec *s, const misdirect_decision *d)
{
    (void)s;
    (void)d;
}

void misdirect_status_count_ssl(server_rec *s)
{
    (void)s;
}

void misdirect_status_register_hooks(apr_pool_t *p)
{
    (void)p;
}
