/*
 * mod_misdirect: the counters, in shared memory that outlives graceful
 * restarts, and the calls that count each request into them.
 *
 * Licensed under the Apache License, Version 2.0.
 *
 * Every checked request adds to the counters of its request vhost
 * (r->server): requests checked; requests on which a check fired and
 * what was done about them (rejected, reported, allowed); per check, how
 * often it fired and the action its policy gave it; and the 421, 400 and
 * 403 refusals that mod_ssl answered and the module explained.  How they
 * lie in memory, striped per CPU so that busy CPUs do not share a cache
 * line, is misdirect_stripes.c's business.
 *
 * Lifetime: the counters live in one anonymous shared memory segment
 * owned by the parent process and inherited by every child.  The module
 * is unloaded and loaded again on every restart, its statics with it, so
 * the parent finds the segment again through httpd's retained data.  A
 * graceful restart keeps it, so counters survive like mod_status's own
 * totals and the children of the old generation still count into it
 * while they finish; a start or full restart zeroes it (mpm's pre_mpm
 * hook, which runs only then, when no child is left).  Only a graceful
 * restart that adds more vhosts than the segment has room for moves the
 * counters to a larger one; what old children count after that is lost.
 * Nothing is ever named in /dev/shm or SysV IPC, so nothing can be left
 * behind by a crash either.
 *
 * Size: 256 bytes per slot for the rows, 8 per slot and stripe for the
 * checked counters (a stripe per CPU, at most MISDIRECT_STRIPES_MAX) and
 * 8 for the slot's key, with room for 64 more vhosts than configured:
 * 5,000 vhosts take 1.4 MB on 2 CPUs, 3.9 MB on 64 or more.
 */

#include "misdirect_counters.h"

#include "ap_mpm.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "scoreboard.h"

#include "apr_hash.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include <unistd.h>

#define MISDIRECT_RETAINED "mod_misdirect-counters"
#define MISDIRECT_MAGIC    0x4d495332u     /* "MIS2" */

/* Room left at each (re)allocation for vhosts that graceful restarts add
 * later: growing means a new segment, and old children would then count
 * into the old one, unseen. */
#define MISDIRECT_SPARE_SLOTS(n) ((n) + 64)

typedef struct {
    apr_uint32_t magic;            /* tells a core dump what this is */
    apr_uint32_t capacity;         /* slots allocated */
    apr_uint32_t used;             /* slots given to a vhost so far */
    apr_uint32_t pad;
    apr_time_t started;            /* when the counters were last zeroed */
    apr_uint64_t *key;             /* per slot: its vhost; parent only */
    misdirect_stripes *counts;
} misdirect_segment;

/* What must outlive a configuration generation, in httpd's retained
 * data.  Every child maps the segment at the parent's address, so the
 * pointers into it hold in all of them. */
typedef struct {
    apr_pool_t *pool;              /* the segment's own, under process */
    misdirect_segment *seg;
} misdirect_retained;

/* This generation's view, set in the parent before children fork. */
static misdirect_segment *misdirect_seg;
static int misdirect_active;       /* some vhost has Misdirect on */

/* ------------------------------------------------------------------ */
/* Slots                                                              */

/* FNV-1a: the identity only needs to be stable, not secret. */
static apr_uint64_t misdirect_fnv(apr_uint64_t h, const void *data,
                                  size_t len)
{
    const unsigned char *p = data;

    while (len--) {
        h ^= *p++;
        h *= APR_UINT64_C(0x100000001b3);
    }
    return h;
}

/* A vhost keeps its counters across a graceful restart as long as its
 * ServerName and <VirtualHost> addresses stay: line numbers may move. */
static apr_uint64_t misdirect_server_key(server_rec *s, int is_main)
{
    apr_uint64_t h = APR_UINT64_C(0xcbf29ce484222325);
    server_addr_rec *sar;
    char ip[64];

    if (is_main) {
        return misdirect_fnv(h, "(main)", 6);
    }
    if (s->server_hostname) {
        h = misdirect_fnv(h, s->server_hostname,
                          strlen(s->server_hostname));
    }
    for (sar = s->addrs; sar; sar = sar->next) {
        if (apr_sockaddr_ip_getbuf(ip, sizeof(ip), sar->host_addr)
            != APR_SUCCESS) {
            ip[0] = '\0';
        }
        h = misdirect_fnv(h, "|", 1);
        h = misdirect_fnv(h, ip, strlen(ip));
        h = misdirect_fnv(h, &sar->host_port, sizeof(sar->host_port));
    }
    return h;
}

misdirect_identity *
misdirect_counters_identities(apr_pool_t *p, server_rec *main_s, int *count)
{
    apr_hash_t *taken = apr_hash_make(p);
    server_rec **list = misdirect_vhosts_all(p, main_s, count);
    misdirect_identity *id = apr_palloc(p, *count * sizeof(*id));
    int j;

    for (j = 0; j < *count; j++) {
        id[j].s = list[j];
        id[j].key = misdirect_server_key(list[j], j == 0);
        for (id[j].turn = 1;
             apr_hash_get(taken, &id[j].key, sizeof(id[j].key));
             id[j].turn++) {
            id[j].key = misdirect_fnv(id[j].key, "#", 1);
        }
        apr_hash_set(taken, &id[j].key, sizeof(id[j].key), "");
    }
    return id;
}

static size_t misdirect_segment_size(apr_uint32_t capacity,
                                     apr_uint32_t stripes)
{
    return APR_ALIGN(sizeof(misdirect_segment)
                     + capacity * sizeof(apr_uint64_t), MISDIRECT_LINE)
           + misdirect_stripes_size(capacity, stripes);
}

/* A new segment with room for capacity slots, holding what the old one
 * held.  The old one is unmapped from the parent only: children of the
 * old generation keep their mapping until they exit, then the kernel
 * frees it. */
static apr_status_t misdirect_segment_replace(misdirect_retained *kept,
                                              apr_pool_t *process,
                                              apr_uint32_t capacity)
{
    apr_uint32_t stripes = misdirect_stripes_for(
                               sysconf(_SC_NPROCESSORS_CONF));
    apr_pool_t *pool;
    apr_shm_t *shm;
    misdirect_segment *seg;
    char *base;
    apr_status_t rv;

    rv = apr_pool_create(&pool, process);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_tag(pool, "misdirect_counters");
    /* APR keeps a header at the start of anonymous memory, so its base
     * address is only 8-aligned: ask for a line more and align the
     * counters to the cache lines their layout assumes. */
    rv = apr_shm_create(&shm, misdirect_segment_size(capacity, stripes)
                              + MISDIRECT_LINE, NULL, pool);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(pool);
        return rv;
    }
    base = (char *)APR_ALIGN((apr_uintptr_t)apr_shm_baseaddr_get(shm),
                             MISDIRECT_LINE);
    memset(base, 0, misdirect_segment_size(capacity, stripes));
    seg = (misdirect_segment *)base;
    seg->magic = MISDIRECT_MAGIC;
    seg->capacity = capacity;
    seg->started = apr_time_now();
    seg->key = (apr_uint64_t *)(seg + 1);
    seg->counts = misdirect_stripes_init(
                      base + misdirect_segment_size(capacity, stripes)
                      - misdirect_stripes_size(capacity, stripes),
                      capacity, stripes);
    if (kept->seg) {
        apr_uint32_t used = __atomic_load_n(&kept->seg->used,
                                            __ATOMIC_RELAXED);
        apr_uint32_t i;

        seg->used = used;
        seg->started = kept->seg->started;
        for (i = 0; i < used; i++) {
            misdirect_counts c;

            seg->key[i] = kept->seg->key[i];
            misdirect_stripes_read(kept->seg->counts, i, c.n);
            misdirect_stripes_set(seg->counts, i, c.n);
        }
        apr_pool_destroy(kept->pool);
    }
    kept->pool = pool;
    kept->seg = seg;
    return APR_SUCCESS;
}

/* Gives every server of the configuration its slot: the one its
 * identity had (graceful restart: old children still count into it), or
 * a new one.  Slots are never handed to another identity while the
 * segment lives, whatever the old children still believe. */
static apr_status_t misdirect_assign(misdirect_retained *kept,
                                     apr_pool_t *process, apr_pool_t *ptemp,
                                     server_rec *main_s)
{
    apr_hash_t *known = apr_hash_make(ptemp);
    misdirect_identity *id;
    apr_uint32_t used, fresh = 0, i;
    int n, j;

    id = misdirect_counters_identities(ptemp, main_s, &n);
    used = kept->seg ? kept->seg->used : 0;
    for (i = 0; i < used; i++) {
        /* A copy: growing replaces the segment and its keys. */
        apr_uint64_t *k = apr_pmemdup(ptemp, &kept->seg->key[i],
                                      sizeof(*k));

        apr_hash_set(known, k, sizeof(*k), (void *)(apr_uintptr_t)(i + 1));
    }
    for (j = 0; j < n; j++) {
        fresh += !apr_hash_get(known, &id[j].key, sizeof(id[j].key));
    }
    if (!kept->seg || used + fresh > kept->seg->capacity) {
        apr_status_t rv = misdirect_segment_replace(kept, process,
                              MISDIRECT_SPARE_SLOTS(used + fresh));

        if (rv != APR_SUCCESS) {
            return rv;
        }
    }

    misdirect_active = 0;
    for (j = 0; j < n; j++) {
        apr_uintptr_t at = (apr_uintptr_t)apr_hash_get(known, &id[j].key,
                                                       sizeof(id[j].key));

        if (!at) {
            at = ++used;
            kept->seg->key[at - 1] = id[j].key;
        }
        misdirect_config_srv(id[j].s)->counter_slot = (int)(at - 1);
        if (misdirect_config_mode(misdirect_config_srv(id[j].s))
            != MISDIRECT_MODE_OFF) {
            misdirect_active = 1;
        }
    }
    /* Old children read it concurrently to sum the totals. */
    __atomic_store_n(&kept->seg->used, used, __ATOMIC_RELEASE);
    misdirect_seg = kept->seg;
    return APR_SUCCESS;
}

static misdirect_retained *misdirect_retained_get(void)
{
    misdirect_retained *kept = ap_retained_data_get(MISDIRECT_RETAINED);

    /* No cleanup of ours: it would point into an unloaded module. */
    return kept ? kept : ap_retained_data_create(MISDIRECT_RETAINED,
                                                 sizeof(*kept));
}

int misdirect_counters_post_config(apr_pool_t *ptemp, server_rec *main_s)
{
    apr_status_t rv;

    misdirect_seg = NULL;
    /* The first of the two startup passes never runs children. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return 0;
    }
    rv = misdirect_assign(misdirect_retained_get(), main_s->process->pool,
                          ptemp, main_s);
    if (rv != APR_SUCCESS) {
        /* Counting is not worth refusing to serve. */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, main_s,
                     MISDIRECT_LOGNO(040) "no shared memory for the "
                     "counters: /server-status and misdirect-status will "
                     "show none");
        misdirect_seg = NULL;
        return 0;
    }
    return 1;
}

/* Only a start or a full restart runs pre_mpm, and only after every
 * child of the old generation is gone: nobody counts while we zero. */
static int misdirect_counters_pre_mpm(apr_pool_t *process,
                                      ap_scoreboard_e sb_type)
{
    misdirect_retained *kept = misdirect_retained_get();
    apr_pool_t *ptemp;

    (void)sb_type;
    if (!misdirect_seg || !kept->seg
        || apr_pool_create(&ptemp, process) != APR_SUCCESS) {
        return OK;
    }
    misdirect_stripes_zero(kept->seg->counts);
    memset(kept->seg->key, 0, kept->seg->capacity * sizeof(apr_uint64_t));
    kept->seg->used = 0;
    kept->seg->started = apr_time_now();
    /* Vhosts gone from the configuration give their slots back. */
    if (misdirect_assign(kept, process, ptemp, ap_server_conf)
        != APR_SUCCESS) {
        misdirect_seg = NULL;
    }
    apr_pool_destroy(ptemp);
    return OK;
}

void misdirect_counters_register_hooks(void)
{
    ap_hook_pre_mpm(misdirect_counters_pre_mpm, NULL, NULL,
                    APR_HOOK_MIDDLE);
}

/* ------------------------------------------------------------------ */
/* Counting: every request, so O(1), no lock, no allocation           */

/* s's slot, or -1 when it has none. */
static int misdirect_slot_of(server_rec *s)
{
    misdirect_segment *seg = misdirect_seg;
    int index;

    if (!seg) {
        return -1;
    }
    index = misdirect_config_srv(s)->counter_slot;
    if (index < 0 || (apr_uint32_t)index >= seg->capacity) {
        return -1;
    }
    return index;
}

static void misdirect_add(int slot, int stat)
{
    misdirect_stripes_add(misdirect_seg->counts, (uint32_t)slot, stat);
}

static misdirect_outcome_e misdirect_outcome(misdirect_action_e a)
{
    return a == MISDIRECT_REJECT ? MISDIRECT_OUT_REJECTED
           : a == MISDIRECT_WOULD_REJECT ? MISDIRECT_OUT_WOULD_REJECT
           : a == MISDIRECT_REPORT ? MISDIRECT_OUT_REPORTED
           : MISDIRECT_OUT_ALLOWED;
}

void misdirect_counters_count(server_rec *s, const misdirect_decision *d)
{
    int slot = misdirect_slot_of(s);
    unsigned int rest;

    if (slot < 0) {
        return;
    }
    misdirect_add(slot, MISDIRECT_STAT_CHECKED);
    if (!d || !d->fired) {
        return;
    }
    misdirect_add(slot, MISDIRECT_STAT_FIRED);
    /* The request-level outcomes sit right after FIRED, in the same
     * order as the per-check ones. */
    misdirect_add(slot, MISDIRECT_STAT_FIRED + misdirect_outcome(d->action));
    for (rest = d->fired & MISDIRECT_ALL_CHECKS; rest; rest &= rest - 1) {
        int i = __builtin_ctz(rest);

        misdirect_add(slot, MISDIRECT_STAT_CHECK(i, MISDIRECT_OUT_FIRED));
        misdirect_add(slot, MISDIRECT_STAT_CHECK(i,
                          misdirect_outcome(d->check_action[i])));
    }
}

void misdirect_counters_count_ssl(server_rec *s, int status)
{
    int slot = misdirect_slot_of(s);

    if (slot < 0) {
        return;
    }
    switch (status) {
    case HTTP_MISDIRECTED_REQUEST:
        misdirect_add(slot, MISDIRECT_STAT_SSL_421);
        break;
    case HTTP_BAD_REQUEST:
        misdirect_add(slot, MISDIRECT_STAT_SSL_400);
        break;
    case HTTP_FORBIDDEN:
        misdirect_add(slot, MISDIRECT_STAT_SSL_403);
        break;
    default:
        break;
    }
}

void misdirect_counters_count_cause(server_rec *s, misdirect_cause_e cause)
{
    int slot = misdirect_slot_of(s);

    if (slot >= 0 && (unsigned int)cause < MISDIRECT_CAUSE_COUNT) {
        misdirect_add(slot, MISDIRECT_STAT_CAUSE(cause));
    }
}

void misdirect_counters_count_other(server_rec *s)
{
    int slot = misdirect_slot_of(s);

    if (slot >= 0) {
        misdirect_add(slot, MISDIRECT_STAT_OTHER_421);
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                            */

int misdirect_counters_ready(void)
{
    return misdirect_seg != NULL;
}

int misdirect_counters_active(void)
{
    return misdirect_active;
}

apr_time_t misdirect_counters_started(void)
{
    return misdirect_seg ? misdirect_seg->started : 0;
}

void misdirect_counters_read(server_rec *s, misdirect_counts *out)
{
    int slot = misdirect_slot_of(s);

    if (slot >= 0) {
        misdirect_stripes_read(misdirect_seg->counts, (uint32_t)slot,
                               out->n);
    }
    else {
        memset(out, 0, sizeof(*out));
    }
}

/* The totals include vhosts that a graceful restart removed: their
 * requests happened. */
void misdirect_counters_totals(misdirect_counts *out)
{
    misdirect_segment *seg = misdirect_seg;
    apr_uint32_t used, i;
    int k;

    memset(out, 0, sizeof(*out));
    if (!seg) {
        return;
    }
    used = __atomic_load_n(&seg->used, __ATOMIC_ACQUIRE);
    for (i = 0; i < used && i < seg->capacity; i++) {
        misdirect_counts one;

        misdirect_stripes_read(seg->counts, i, one.n);
        for (k = 0; k < MISDIRECT_STAT_COUNT; k++) {
            out->n[k] += one.n[k];
        }
    }
}

int misdirect_counters_findings(const misdirect_counts *c)
{
    return c->n[MISDIRECT_STAT_FIRED] || c->n[MISDIRECT_STAT_SSL_421]
           || c->n[MISDIRECT_STAT_SSL_400] || c->n[MISDIRECT_STAT_SSL_403]
           || c->n[MISDIRECT_STAT_OTHER_421];
}
