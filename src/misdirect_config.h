/*
 * mod_misdirect: the configuration (misdirect_config.c).  Private, not
 * an API.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_CONFIG_H
#define MISDIRECT_CONFIG_H

/* Included by misdirect_private.h, which defines misdirect_srv_conf. */

/* The module record's: creating and merging a server's configuration,
 * and the directives. */
MISDIRECT_INTERNAL void *misdirect_config_create_srv(apr_pool_t *p,
                                                     server_rec *s);
MISDIRECT_INTERNAL void *misdirect_config_merge_srv(apr_pool_t *p,
                                                    void *basev,
                                                    void *addv);
MISDIRECT_INTERNAL extern const command_rec misdirect_config_cmds[];

/* A server's configuration, its mode and the log limit defaulted. */
MISDIRECT_INTERNAL misdirect_srv_conf *misdirect_config_srv(server_rec *s);
MISDIRECT_INTERNAL int misdirect_config_mode(const misdirect_srv_conf *conf);
MISDIRECT_INTERNAL int misdirect_config_log_limit(void);
MISDIRECT_INTERNAL int misdirect_config_lint(server_rec *main_s);
/* At startup, once the model has read mod_ssl's policy: each vhost's
 * action of every check, its own or the default (policy[]). */
MISDIRECT_INTERNAL void misdirect_config_resolve_policies(server_rec *s);

#endif /* MISDIRECT_CONFIG_H */
