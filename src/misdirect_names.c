/*
 * mod_misdirect: the configuration's names, indexed for requests.
 *
 * The forwarded-host check asks whether the host a gateway forwarded
 * names a virtual host of the connection's address.  Core answers such
 * questions by walking the address's vhosts; the module must not add
 * work that grows with them to a request, so every ServerName and
 * ServerAlias is put in a hash once per configuration pass, and only
 * the vhosts with wildcard aliases are walked.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "apr_strings.h"

/* Lower-case name -> apr_array_header_t of server_rec *, in file order. */
static apr_hash_t *misdirect_names_exact;
/* The vhosts with a wildcard ServerAlias, in file order. */
static apr_array_header_t *misdirect_names_wild;

static void misdirect_names_add(apr_pool_t *p, const char *name,
                                server_rec *s)
{
    char *lower = apr_pstrdup(p, name);
    apr_array_header_t *list;

    ap_str_tolower(lower);
    list = apr_hash_get(misdirect_names_exact, lower, APR_HASH_KEY_STRING);
    if (!list) {
        list = apr_array_make(p, 1, sizeof(server_rec *));
        apr_hash_set(misdirect_names_exact, lower, APR_HASH_KEY_STRING,
                     list);
    }
    if (list->nelts
        && APR_ARRAY_IDX(list, list->nelts - 1, server_rec *) == s) {
        return;                 /* a name the vhost gives twice */
    }
    APR_ARRAY_PUSH(list, server_rec *) = s;
}

void misdirect_names_build(apr_pool_t *p, apr_pool_t *ptemp,
                           server_rec *main_s)
{
    apr_array_header_t *vhosts = misdirect_vhosts_in_file_order(ptemp,
                                                                 main_s);
    int i, k;

    misdirect_names_exact = apr_hash_make(p);
    misdirect_names_wild = apr_array_make(p, 4, sizeof(server_rec *));
    for (i = 0; i < vhosts->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(vhosts, i, server_rec *);

        if (s->server_hostname) {
            misdirect_names_add(p, s->server_hostname, s);
        }
        for (k = 0; s->names && k < s->names->nelts; k++) {
            misdirect_names_add(p, APR_ARRAY_IDX(s->names, k, const char *),
                                s);
        }
        if (s->wild_names && s->wild_names->nelts) {
            APR_ARRAY_PUSH(misdirect_names_wild, server_rec *) = s;
        }
    }
}

/* Does s have a <VirtualHost> address that c's connection reaches: its
 * port (or any), its IP address (or a wildcard)? */
static int misdirect_names_serves(server_rec *s, conn_rec *c)
{
    server_addr_rec *sar;

    for (sar = s->addrs; sar; sar = sar->next) {
        if ((sar->host_port == 0 || sar->host_port == c->local_addr->port)
            && (apr_sockaddr_is_wildcard(sar->host_addr)
                || apr_sockaddr_equal(sar->host_addr, c->local_addr))) {
            return 1;
        }
    }
    return 0;
}

server_rec *misdirect_names_vhost(conn_rec *c, const char *lower,
                                  server_rec *not)
{
    apr_array_header_t *list;
    int i;

    if (!misdirect_names_exact) {
        return NULL;
    }
    list = apr_hash_get(misdirect_names_exact, lower, APR_HASH_KEY_STRING);
    for (i = 0; list && i < list->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(list, i, server_rec *);

        if (s != not && misdirect_names_serves(s, c)) {
            return s;
        }
    }
    for (i = 0; i < misdirect_names_wild->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(misdirect_names_wild, i, server_rec *);
        int k;

        if (s == not || !misdirect_names_serves(s, c)) {
            continue;
        }
        for (k = 0; k < s->wild_names->nelts; k++) {
            if (misdirect_wildcard_match(APR_ARRAY_IDX(s->wild_names, k,
                                                       const char *),
                                         lower)) {
                return s;
            }
        }
    }
    return NULL;
}
