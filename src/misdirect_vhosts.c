/*
 * mod_misdirect: the configuration's vhosts, as every file names them.
 *
 * How a line names a vhost ("name (file:line)") and an address, the
 * vhosts in file order, the addresses with their vhosts, and whether a
 * host is one of a vhost's names as core's matching has it.  The lint,
 * the diagnosis, the status pages and the prediction all ask here.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "apr_strings.h"

const char *misdirect_vhosts_where(apr_pool_t *p, server_rec *s)
{
    if (!s->defn_name) {
        return "main server";
    }
    return apr_psprintf(p, "%s:%u", s->defn_name, s->defn_line_number);
}

/* "host:port", "[ip6]:port", and ":*" for a port of 0: any port, as
 * <VirtualHost addr:*> wrote it and as mod_status shows it. */
static const char *misdirect_vhosts_addr_join(apr_pool_t *p, const char *host,
                                              apr_port_t port)
{
    const char *fmt = strchr(host, ':') ? "[%s]:%s" : "%s:%s";

    return apr_psprintf(p, fmt, host, port ? apr_itoa(p, port) : "*");
}

static const char *misdirect_vhosts_addr_key(apr_pool_t *p,
                                             const server_addr_rec *sar)
{
    char *ip = NULL;

    apr_sockaddr_ip_get(&ip, sar->host_addr);
    return misdirect_vhosts_addr_join(p, ip ? ip : "?", sar->host_port);
}

static const char *misdirect_vhosts_addr_shown(apr_pool_t *p,
                                               const server_addr_rec *sar)
{
    const char *host = sar->virthost;

    if (!host) {
        return misdirect_vhosts_addr_key(p, sar);
    }
    return misdirect_vhosts_addr_join(p, host, sar->host_port);
}

const char *misdirect_vhosts_desc(apr_pool_t *p, server_rec *s)
{
    if (!s) {
        return "(unknown)";
    }
    if (misdirect_config_srv(s)->desc) {
        return misdirect_config_srv(s)->desc;
    }
    return apr_psprintf(p, "%s (%s)", s->server_hostname,
                        misdirect_vhosts_where(p, s));
}

apr_array_header_t *misdirect_vhosts_in_file_order(apr_pool_t *p,
                                                   server_rec *main_s)
{
    apr_array_header_t *list = apr_array_make(p, 64, sizeof(server_rec *));
    server_rec *s;
    int i, n;

    for (s = main_s->next; s; s = s->next) {
        APR_ARRAY_PUSH(list, server_rec *) = s;
    }
    for (i = 0, n = list->nelts; i < n / 2; i++) {
        s = APR_ARRAY_IDX(list, i, server_rec *);
        APR_ARRAY_IDX(list, i, server_rec *) =
            APR_ARRAY_IDX(list, n - 1 - i, server_rec *);
        APR_ARRAY_IDX(list, n - 1 - i, server_rec *) = s;
    }
    return list;
}

/* Do a and b hold the same vhosts: one <VirtualHost *:port> that httpd
 * keeps as two addresses, one per IP family. */
static int misdirect_vhosts_same(const misdirect_address *a,
                                 const misdirect_address *b)
{
    int i;

    if (a->vhosts->nelts != b->vhosts->nelts) {
        return 0;
    }
    for (i = 0; i < a->vhosts->nelts; i++) {
        if (APR_ARRAY_IDX(a->vhosts, i, misdirect_address_vhost).s
            != APR_ARRAY_IDX(b->vhosts, i, misdirect_address_vhost).s) {
            return 0;
        }
    }
    return 1;
}

apr_array_header_t *misdirect_vhosts_addresses(apr_pool_t *p,
                                               server_rec *main_s)
{
    apr_array_header_t *all = misdirect_vhosts_in_file_order(p, main_s);
    apr_array_header_t *order = apr_array_make(p, 4, sizeof(void *));
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(void *));
    apr_hash_t *by_key = apr_hash_make(p), *by_shown = apr_hash_make(p);
    int i;

    for (i = 0; i < all->nelts; i++) {
        server_rec *s = APR_ARRAY_IDX(all, i, server_rec *);
        server_addr_rec *sar;

        for (sar = s->addrs; sar; sar = sar->next) {
            const char *key = misdirect_vhosts_addr_key(p, sar);
            misdirect_address *a = apr_hash_get(by_key, key,
                                                APR_HASH_KEY_STRING);
            misdirect_address_vhost *v;

            if (!a) {
                a = apr_pcalloc(p, sizeof(*a));
                a->key = key;
                a->shown = misdirect_vhosts_addr_shown(p, sar);
                a->vhosts = apr_array_make(p, 4, sizeof(*v));
                apr_hash_set(by_key, key, APR_HASH_KEY_STRING, a);
                APR_ARRAY_PUSH(order, misdirect_address *) = a;
            }
            if (a->vhosts->nelts
                && APR_ARRAY_IDX(a->vhosts, a->vhosts->nelts - 1,
                                 misdirect_address_vhost).s == s) {
                continue;       /* s names this address twice */
            }
            v = apr_array_push(a->vhosts);
            v->s = s;
            v->sar = sar;
        }
    }
    for (i = 0; i < order->nelts; i++) {
        misdirect_address *a = APR_ARRAY_IDX(order, i, misdirect_address *);
        misdirect_address *twin = apr_hash_get(by_shown, a->shown,
                                               APR_HASH_KEY_STRING);

        if (twin && misdirect_vhosts_same(a, twin)) {
            continue;               /* the other family of a "*" */
        }
        if (!twin) {
            apr_hash_set(by_shown, a->shown, APR_HASH_KEY_STRING, a);
        }
        APR_ARRAY_PUSH(out, misdirect_address *) = a;
    }
    return out;
}

/* The main server, then the vhosts in file order. */
server_rec **misdirect_vhosts_all(apr_pool_t *p, server_rec *main_s,
                                  int *count)
{
    apr_array_header_t *vhosts = misdirect_vhosts_in_file_order(p, main_s);
    server_rec **list = apr_palloc(p, (vhosts->nelts + 1) * sizeof(*list));

    list[0] = main_s;
    memcpy(list + 1, vhosts->elts, vhosts->nelts * sizeof(*list));
    *count = vhosts->nelts + 1;
    return list;
}

int misdirect_vhosts_has_name(server_rec *s, const char *host,
                              apr_port_t port)
{
    server_addr_rec *sar;
    int name;

    name = misdirect_host_matches(host, s->server_hostname,
               s->names ? (const char *const *)s->names->elts : NULL,
               s->names ? s->names->nelts : 0,
               s->wild_names ? (const char *const *)s->wild_names->elts
                             : NULL,
               s->wild_names ? s->wild_names->nelts : 0);
    if (name) {
        return name;
    }
    /* Core also accepts the name the <VirtualHost> line itself used. */
    for (sar = s->addrs; sar; sar = sar->next) {
        if ((sar->host_port == 0 || sar->host_port == port)
            && sar->virthost && !strcasecmp(host, sar->virthost)) {
            return MISDIRECT_NAME_PATTERN;
        }
    }
    return 0;
}

const char *misdirect_vhosts_name(server_rec *s)
{
    return s->server_hostname ? s->server_hostname : "";
}

const char *misdirect_vhosts_address(apr_pool_t *p, server_rec *s,
                                     int is_main)
{
    const char *out = "", *item;
    server_addr_rec *sar;
    char ip[64];

    if (is_main) {
        return NULL;
    }
    for (sar = s->addrs; sar; sar = sar->next) {
        item = misdirect_vhosts_addr_join(
            p,
            apr_sockaddr_is_wildcard(sar->host_addr)
                    || apr_sockaddr_ip_getbuf(ip, sizeof(ip), sar->host_addr)
                           != APR_SUCCESS
                ? "*"
                : ip,
            sar->host_port);
        /* httpd keeps "*:443" as two addresses, IPv4 and IPv6; the
         * configuration wrote it once, and so does this. */
        if (!misdirect_text_has_item(out, item, ' ')) {
            out = apr_pstrcat(p, out, *out ? " " : "", item, NULL);
        }
    }
    return out;
}

void misdirect_vhosts_post_config(apr_pool_t *pconf, server_rec *main_s)
{
    server_rec *v;
    int order = 0;

    for (v = main_s; v; v = v->next) {
        misdirect_srv_conf *conf = misdirect_config_srv(v);

        conf->file_order = order++;
        /* Every diagnosis line names vhosts so: written once. */
        conf->desc = misdirect_vhosts_desc(pconf, v);
    }
}
