/*
 * mod_misdirect: counters in shared memory, a section in mod_status's
 * /server-status (HTML and ?auto), the misdirect-status handler (JSON,
 * or a plain-text table with ?text) and the misdirect-metrics handler
 * (Prometheus' text format 0.0.4, or OpenMetrics 1.0 when Accept asks).
 *
 * Licensed under the Apache License, Version 2.0.
 *
 *   <Location "/misdirect-status">
 *       SetHandler misdirect-status
 *       Require ip 127.0.0.1
 *   </Location>
 *   <Location "/misdirect-metrics">
 *       SetHandler misdirect-metrics
 *       Require ip 127.0.0.1
 *   </Location>
 *
 * Every checked request adds to the counters of its request vhost
 * (r->server): requests checked; requests on which a check fired and
 * what was done about them (rejected, reported, allowed); per check, how
 * often it fired and the action its policy gave it; and the 421, 400 and
 * 403 refusals that mod_ssl answered and the module explained.
 *
 * Lifetime: the counters live in one anonymous shared memory segment
 * owned by the parent process and inherited by every child.  A graceful
 * restart keeps it, so counters survive like mod_status's own totals and
 * the children of the old generation still count into it while they
 * finish; a start or full restart zeroes it (mpm's pre_mpm hook, which
 * runs only then, when no child is left).  Only a graceful restart that
 * adds more vhosts than the segment has room for moves the counters to a
 * larger one; what old children count after that is lost.  Nothing is
 * ever named in /dev/shm or SysV IPC, so nothing can be left behind by a
 * crash either.
 */

#include "mod_misdirect.h"

#include "ap_mpm.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_status.h"
#include "scoreboard.h"

#include "apr_hash.h"
#include "apr_optional_hooks.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_time.h"

APLOG_USE_MODULE(misdirect);

/* The request path must never take a lock, not even one hidden in a
 * library fallback. */
_Static_assert(__atomic_always_lock_free(sizeof(apr_uint64_t), 0),
               "mod_misdirect needs lock-free 64-bit atomics");

#define MISDIRECT_HANDLER  "misdirect-status"
#define MISDIRECT_METRICS  "misdirect-metrics"
#define MISDIRECT_KEEP_KEY "misdirect-status-segment"
#define MISDIRECT_MAGIC    0x4d495331u     /* "MIS1" */

/* Room left at each (re)allocation for vhosts that graceful restarts add
 * later: growing means a new segment, and old children would then count
 * into the old one, unseen. */
#define MISDIRECT_SPARE_SLOTS(n) ((n) + 64)

/* Per check: fired, and the action it was given (so the last three add
 * up to the first). */
typedef enum {
    MISDIRECT_OUT_FIRED = 0,
    MISDIRECT_OUT_REJECTED,
    MISDIRECT_OUT_REPORTED,
    MISDIRECT_OUT_ALLOWED,
    MISDIRECT_OUTCOMES
} misdirect_outcome_e;

/* What happened to one request, counted once per request. */
typedef enum {
    MISDIRECT_STAT_CHECKED = 0,
    MISDIRECT_STAT_FIRED,          /* at least one check fired */
    MISDIRECT_STAT_REJECTED,       /* this module answered 421 */
    MISDIRECT_STAT_REPORTED,
    MISDIRECT_STAT_ALLOWED,
    MISDIRECT_STAT_SSL_421,        /* mod_ssl refused, the module explained */
    MISDIRECT_STAT_SSL_400,
    MISDIRECT_STAT_SSL_403,
    MISDIRECT_STAT_OTHER_421,      /* a handler or a backend answered 421 */
    MISDIRECT_STAT_CHECKS,         /* then MISDIRECT_OUTCOMES per check */
    MISDIRECT_STAT_COUNT = MISDIRECT_STAT_CHECKS
                           + MISDIRECT_OUTCOMES * MISDIRECT_CHECK_COUNT
} misdirect_stat_e;

#define MISDIRECT_STAT_CHECK(check, out) \
    (MISDIRECT_STAT_CHECKS + MISDIRECT_OUTCOMES * (check) + (out))

/* Stable names: JSON keys and ?auto keys are an interface
 * (docs/counters.md). */
static const char *const misdirect_stat_json[MISDIRECT_STAT_CHECKS] = {
    "checked", "fired", "rejected", "reported", "allowed",
    "mod_ssl_421", "mod_ssl_400", "mod_ssl_403", "other_421"
};
static const char *const misdirect_stat_auto[MISDIRECT_STAT_CHECKS] = {
    "Checked", "Fired", "Rejected", "Reported", "Allowed",
    "ModSSL421", "ModSSL400", "ModSSL403", "Other421"
};
static const char *const misdirect_out_json[MISDIRECT_OUTCOMES] = {
    "fired", "rejected", "reported", "allowed"
};
static const char *const misdirect_out_auto[MISDIRECT_OUTCOMES] = {
    "Fired", "Rejected", "Reported", "Allowed"
};

#define MISDIRECT_ALIGN 64         /* a cache line */

/* One vhost's counters.  A cache line of its own, so that two busy
 * vhosts served by different CPUs do not slow each other down. */
typedef struct {
    apr_uint64_t key;              /* the vhost's identity; parent only */
    apr_uint64_t n[MISDIRECT_STAT_COUNT];
} __attribute__((aligned(MISDIRECT_ALIGN))) misdirect_slot;

typedef struct {
    apr_uint32_t magic;            /* tells a core dump what this is */
    apr_uint32_t capacity;         /* slots allocated */
    apr_uint32_t used;             /* slots given to a vhost so far */
    apr_uint32_t pad;
    apr_time_t started;            /* when the counters were last zeroed */
    misdirect_slot slot[];
} misdirect_segment;

/* What must outlive a configuration generation: the module is unloaded
 * and reloaded on every restart, its statics with it, so the segment is
 * found again through the process pool. */
typedef struct {
    apr_pool_t *pool;              /* the segment's own, under process */
    misdirect_segment *seg;
} misdirect_keep;

/* This generation's view, set in the parent before children fork. */
static misdirect_segment *misdirect_seg;
static int misdirect_active;       /* some vhost has Misdirect on */

typedef struct {
    apr_uint64_t n[MISDIRECT_STAT_COUNT];
} misdirect_counts;

/* A server as misdirect-metrics names it.  Its labels are escaped once
 * per configuration, so that a scrape only reads counters and writes. */
typedef struct {
    server_rec *s;
    const char *labels;            /* vhost="...",address="..." */
} misdirect_metric_server;

/* This generation's servers in configuration order; set with
 * misdirect_seg. */
static misdirect_metric_server *misdirect_metric_servers;
static int misdirect_metric_count;

static void misdirect_metrics_prepare(apr_pool_t *pconf, apr_pool_t *ptemp,
                                      server_rec *main_s);

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

/* The main server, then the vhosts in the order of the configuration:
 * httpd keeps them the other way round. */
static server_rec **misdirect_servers(apr_pool_t *p, server_rec *main_s,
                                      int *count)
{
    server_rec **list, *s;
    int n = 0, i;

    for (s = main_s; s; s = s->next) {
        n++;
    }
    list = apr_palloc(p, n * sizeof(*list));
    list[0] = main_s;
    for (s = main_s->next, i = n - 1; s; s = s->next, i--) {
        list[i] = s;
    }
    *count = n;
    return list;
}

/* Who a server is to its slot, in configuration order.  Two vhosts alike
 * in name and address (the lint warns) still count apart, by their turn
 * among them: the first keeps the plain key, the one requests for the
 * name reach; the metrics name the others by the same turn, so that a
 * series and its slot stay together whatever lines move above them. */
typedef struct {
    server_rec *s;
    apr_uint64_t key;
    int turn;                      /* 1, or 2 and up for a duplicate */
} misdirect_identity;

static misdirect_identity *misdirect_identities(apr_pool_t *p,
                                                server_rec *main_s,
                                                int *count)
{
    apr_hash_t *taken = apr_hash_make(p);
    server_rec **list = misdirect_servers(p, main_s, count);
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

static int misdirect_server_mode(server_rec *s)
{
    const misdirect_srv_conf *conf = misdirect_conf(s);

    /* Unset means the default, On (see mod_misdirect.c). */
    return conf->mode == MISDIRECT_UNSET ? MISDIRECT_MODE_ON : conf->mode;
}

static size_t misdirect_segment_size(apr_uint32_t capacity)
{
    return sizeof(misdirect_segment) + capacity * sizeof(misdirect_slot);
}

/* A new segment with room for capacity slots, holding what old held.
 * The old one is unmapped from the parent only: children of the old
 * generation keep their mapping until they exit, then the kernel frees
 * it. */
static apr_status_t misdirect_segment_replace(misdirect_keep *keep,
                                              apr_pool_t *process,
                                              apr_uint32_t capacity)
{
    apr_pool_t *pool;
    apr_shm_t *shm;
    misdirect_segment *seg;
    apr_status_t rv;

    rv = apr_pool_create(&pool, process);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_tag(pool, "misdirect_status");
    /* APR keeps a header at the start of anonymous memory, so its base
     * address is only 8-aligned: ask for a line more and align the slots
     * to the cache lines their type promises. */
    rv = apr_shm_create(&shm, misdirect_segment_size(capacity)
                              + MISDIRECT_ALIGN, NULL, pool);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(pool);
        return rv;
    }
    seg = (misdirect_segment *)APR_ALIGN(
              (apr_uintptr_t)apr_shm_baseaddr_get(shm), MISDIRECT_ALIGN);
    memset(seg, 0, misdirect_segment_size(capacity));
    seg->magic = MISDIRECT_MAGIC;
    seg->capacity = capacity;
    seg->started = apr_time_now();
    if (keep->seg) {
        apr_uint32_t used = __atomic_load_n(&keep->seg->used,
                                            __ATOMIC_RELAXED);
        apr_uint32_t i;
        int k;

        seg->used = used;
        seg->started = keep->seg->started;
        for (i = 0; i < used; i++) {
            seg->slot[i].key = keep->seg->slot[i].key;
            for (k = 0; k < MISDIRECT_STAT_COUNT; k++) {
                seg->slot[i].n[k] = __atomic_load_n(&keep->seg->slot[i].n[k],
                                                    __ATOMIC_RELAXED);
            }
        }
        apr_pool_destroy(keep->pool);
    }
    keep->pool = pool;
    keep->seg = seg;
    return APR_SUCCESS;
}

/* Gives every server of the configuration its slot: the one its
 * identity had (graceful restart: old children still count into it), or
 * a new one.  Slots are never handed to another identity while the
 * segment lives, whatever the old children still believe. */
static apr_status_t misdirect_assign(misdirect_keep *keep,
                                     apr_pool_t *process, apr_pool_t *ptemp,
                                     server_rec *main_s)
{
    apr_hash_t *known = apr_hash_make(ptemp);
    misdirect_identity *id;
    apr_uint32_t used, fresh = 0, i;
    int n, j;

    id = misdirect_identities(ptemp, main_s, &n);
    used = keep->seg ? keep->seg->used : 0;
    for (i = 0; i < used; i++) {
        apr_uint64_t *k = apr_palloc(ptemp, sizeof(*k));

        *k = keep->seg->slot[i].key;
        apr_hash_set(known, k, sizeof(*k), (void *)(apr_uintptr_t)(i + 1));
    }
    for (j = 0; j < n; j++) {
        fresh += !apr_hash_get(known, &id[j].key, sizeof(id[j].key));
    }
    if (!keep->seg || used + fresh > keep->seg->capacity) {
        apr_status_t rv = misdirect_segment_replace(keep, process,
                              MISDIRECT_SPARE_SLOTS(used + fresh));

        if (rv != APR_SUCCESS) {
            return rv;
        }
    }

    misdirect_active = 0;
    for (j = 0; j < n; j++) {
        apr_uintptr_t at = (apr_uintptr_t)apr_hash_get(known, &id[j].key,
                                                       sizeof(id[j].key));
        misdirect_srv_conf *conf = misdirect_conf(id[j].s);

        if (!at) {
            at = ++used;
            keep->seg->slot[at - 1].key = id[j].key;
        }
        conf->index = (int)(at - 1);
        if (misdirect_server_mode(id[j].s) != MISDIRECT_MODE_OFF) {
            misdirect_active = 1;
        }
    }
    /* Old children read it concurrently to sum the totals. */
    __atomic_store_n(&keep->seg->used, used, __ATOMIC_RELEASE);
    misdirect_seg = keep->seg;
    return APR_SUCCESS;
}

static misdirect_keep *misdirect_keep_get(apr_pool_t *process)
{
    void *data = NULL;
    misdirect_keep *keep;

    apr_pool_userdata_get(&data, MISDIRECT_KEEP_KEY, process);
    if (data) {
        return data;
    }
    /* No cleanup of ours: it would point into an unloaded module. */
    keep = apr_pcalloc(process, sizeof(*keep));
    apr_pool_userdata_set(keep, MISDIRECT_KEEP_KEY, apr_pool_cleanup_null,
                          process);
    return keep;
}

int misdirect_status_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                                 server_rec *main_s)
{
    apr_status_t rv;

    misdirect_seg = NULL;
    misdirect_metric_servers = NULL;
    misdirect_metric_count = 0;
    /* The first of the two startup passes never runs children. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    rv = misdirect_assign(misdirect_keep_get(main_s->process->pool),
                          main_s->process->pool, ptemp, main_s);
    if (rv != APR_SUCCESS) {
        /* Counting is not worth refusing to serve. */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, main_s,
                     MISDIRECT_LOGNO(040) "no shared memory for the "
                     "counters: /server-status and misdirect-status will "
                     "show none");
        misdirect_seg = NULL;
        return OK;
    }
    misdirect_metrics_prepare(pconf, ptemp, main_s);
    return OK;
}

/* Only a start or a full restart runs pre_mpm, and only after every
 * child of the old generation is gone: nobody counts while we zero. */
static int misdirect_status_pre_mpm(apr_pool_t *process,
                                    ap_scoreboard_e sb_type)
{
    misdirect_keep *keep = misdirect_keep_get(process);
    apr_pool_t *ptemp;

    (void)sb_type;
    if (!misdirect_seg || !keep->seg
        || apr_pool_create(&ptemp, process) != APR_SUCCESS) {
        return OK;
    }
    memset(keep->seg->slot, 0,
           keep->seg->capacity * sizeof(keep->seg->slot[0]));
    keep->seg->used = 0;
    keep->seg->started = apr_time_now();
    /* Vhosts gone from the configuration give their slots back. */
    if (misdirect_assign(keep, process, ptemp, ap_server_conf)
        != APR_SUCCESS) {
        misdirect_seg = NULL;
    }
    apr_pool_destroy(ptemp);
    return OK;
}

/* ------------------------------------------------------------------ */
/* Counting: every request, so O(1), no lock, no allocation           */

static misdirect_slot *misdirect_slot_of(server_rec *s)
{
    misdirect_segment *seg = misdirect_seg;
    int index;

    if (!seg) {
        return NULL;
    }
    index = misdirect_conf(s)->index;
    if (index < 0 || (apr_uint32_t)index >= seg->capacity) {
        return NULL;
    }
    return &seg->slot[index];
}

static void misdirect_add(misdirect_slot *slot, int stat)
{
    __atomic_fetch_add(&slot->n[stat], 1, __ATOMIC_RELAXED);
}

static misdirect_outcome_e misdirect_outcome(misdirect_action_e a)
{
    return a == MISDIRECT_REJECT ? MISDIRECT_OUT_REJECTED
           : a == MISDIRECT_REPORT ? MISDIRECT_OUT_REPORTED
           : MISDIRECT_OUT_ALLOWED;
}

void misdirect_status_count(server_rec *s, const misdirect_decision *d)
{
    misdirect_slot *slot = misdirect_slot_of(s);
    unsigned int rest;

    if (!slot) {
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

void misdirect_status_count_ssl(server_rec *s, int status)
{
    misdirect_slot *slot = misdirect_slot_of(s);

    if (!slot) {
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

void misdirect_status_count_other(server_rec *s)
{
    misdirect_slot *slot = misdirect_slot_of(s);

    if (slot) {
        misdirect_add(slot, MISDIRECT_STAT_OTHER_421);
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                            */

/* Backwards, against the order in which a request is counted (checked,
 * fired, its action, then per check), so that a request caught halfway
 * shows as checked but not yet fired rather than the other way round
 * (where the additions stay in order, as on x86: they are relaxed).  It
 * is not one instant either way. */
static void misdirect_read_slot(const misdirect_slot *slot,
                                misdirect_counts *out)
{
    int k;

    for (k = MISDIRECT_STAT_COUNT - 1; k >= 0; k--) {
        out->n[k] = __atomic_load_n(&slot->n[k], __ATOMIC_RELAXED);
    }
}

static void misdirect_read_server(server_rec *s, misdirect_counts *out)
{
    const misdirect_slot *slot = misdirect_slot_of(s);

    if (slot) {
        misdirect_read_slot(slot, out);
    }
    else {
        memset(out, 0, sizeof(*out));
    }
}

/* The totals include vhosts that a graceful restart removed: their
 * requests happened. */
static void misdirect_read_totals(misdirect_counts *out)
{
    misdirect_segment *seg = misdirect_seg;
    apr_uint32_t used = __atomic_load_n(&seg->used, __ATOMIC_ACQUIRE);
    apr_uint32_t i;
    int k;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < used && i < seg->capacity; i++) {
        misdirect_counts one;

        misdirect_read_slot(&seg->slot[i], &one);
        for (k = 0; k < MISDIRECT_STAT_COUNT; k++) {
            out->n[k] += one.n[k];
        }
    }
}

static int misdirect_has_findings(const misdirect_counts *c)
{
    return c->n[MISDIRECT_STAT_FIRED] || c->n[MISDIRECT_STAT_SSL_421]
           || c->n[MISDIRECT_STAT_SSL_400] || c->n[MISDIRECT_STAT_SSL_403]
           || c->n[MISDIRECT_STAT_OTHER_421];
}

/* ------------------------------------------------------------------ */
/* Describing                                                         */

static const char *misdirect_mode_name(int mode)
{
    return mode == MISDIRECT_MODE_OFF ? "off"
           : mode == MISDIRECT_MODE_REPORT_ONLY ? "report-only" : "on";
}

static const char *misdirect_server_name(server_rec *s)
{
    return s->server_hostname ? s->server_hostname : "";
}

/* "127.0.0.1:443 [::1]:443", "*:443"; NULL for the main server. */
/* Is word one of the space-separated words of list? */
static int misdirect_word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    const char *at;

    for (at = strstr(list, word); at; at = strstr(at + 1, word)) {
        if ((at == list || at[-1] == ' ') && (at[n] == ' ' || !at[n])) {
            return 1;
        }
    }
    return 0;
}

static const char *misdirect_server_address(apr_pool_t *p, server_rec *s,
                                            int is_main)
{
    const char *out = "", *item;
    server_addr_rec *sar;
    char ip[64];

    if (is_main) {
        return NULL;
    }
    for (sar = s->addrs; sar; sar = sar->next) {
        const char *host;

        if (apr_sockaddr_is_wildcard(sar->host_addr)
            || apr_sockaddr_ip_getbuf(ip, sizeof(ip), sar->host_addr)
               != APR_SUCCESS) {
            host = "*";
        }
        else {
            host = sar->host_addr->family == APR_INET6
                   ? apr_pstrcat(p, "[", ip, "]", NULL)
                   : apr_pstrdup(p, ip);
        }
        item = apr_psprintf(p, "%s:%s", host, sar->host_port
                                              ? apr_itoa(p, sar->host_port)
                                              : "*");
        /* httpd keeps "*:443" as two addresses, IPv4 and IPv6; the
         * configuration wrote it once, and so does this. */
        if (!misdirect_word_in(out, item)) {
            out = apr_pstrcat(p, out, *out ? " " : "", item, NULL);
        }
    }
    return out;
}

static const char *misdirect_server_defined(apr_pool_t *p, server_rec *s)
{
    if (!s->defn_name) {
        return NULL;
    }
    return apr_psprintf(p, "%s:%u", s->defn_name, s->defn_line_number);
}

static const char *misdirect_iso_time(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;

    apr_time_exp_gmt(&x, t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                        x.tm_year + 1900, x.tm_mon + 1, x.tm_mday,
                        x.tm_hour, x.tm_min, x.tm_sec);
}

static int misdirect_generation(void)
{
    int gen = 0;

    if (ap_mpm_query(AP_MPMQ_GENERATION, &gen) != APR_SUCCESS) {
        gen = 0;
    }
    return gen;
}

#define MISDIRECT_LIFETIME "Counters are kept across graceful restarts " \
    "and reset by a start or full restart (then \"started\" changes)."

/* ------------------------------------------------------------------ */
/* JSON                                                               */

/* The length of the valid UTF-8 sequence at p, or 0. */
static int misdirect_utf8_len(const unsigned char *p)
{
    unsigned int c = p[0], cp;
    int len, i;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    }
    else {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* No overlong forms, no surrogates, nothing beyond Unicode. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

/* Configuration text is bytes, and both JSON and Prometheus want UTF-8
 * (Prometheus refuses a whole scrape over one invalid label value): valid
 * UTF-8 passes, any other byte is read as Latin-1.  Returns s itself
 * when it is valid already, the usual case. */
static const char *misdirect_utf8(apr_pool_t *p, const char *s)
{
    const unsigned char *in = (const unsigned char *)s;
    char *out, *o;
    int len;

    while (*in && (len = misdirect_utf8_len(in)) > 0) {
        in += len;
    }
    if (!*in) {
        return s;
    }
    o = out = apr_palloc(p, strlen(s) * 2 + 1);
    memcpy(o, s, (const char *)in - s);
    o += (const char *)in - s;
    while (*in) {
        len = misdirect_utf8_len(in);
        if (len > 0) {
            memcpy(o, in, len);
            o += len;
            in += len;
            continue;
        }
        *o++ = (char)(0xc0 | (*in >> 6));
        *o++ = (char)(0x80 | (*in & 0x3f));
        in++;
    }
    *o = '\0';
    return out;
}

/* A JSON string literal of s, which always parses.  <, > and & are
 * escaped too, so no browser sniffs markup. */
static const char *misdirect_json_str(apr_pool_t *p, const char *s)
{
    const unsigned char *in;
    char *out, *o;

    if (!s) {
        return "null";
    }
    in = (const unsigned char *)misdirect_utf8(p, s);
    o = out = apr_palloc(p, strlen((const char *)in) * 6 + 3);
    *o++ = '"';
    for (; *in; in++) {
        if (*in == '"' || *in == '\\') {
            *o++ = '\\';
            *o++ = (char)*in;
        }
        else if (*in < 0x20 || *in == 0x7f || *in == '<' || *in == '>'
                 || *in == '&') {
            o += apr_snprintf(o, 7, "\\u%04x", *in);
        }
        else {
            *o++ = (char)*in;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static void misdirect_json_counts(request_rec *r, const misdirect_counts *c,
                                  const char *indent)
{
    int k, i, o;

    ap_rputs("{\n", r);
    for (k = 0; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "%s  \"%s\": %" APR_UINT64_T_FMT ",\n", indent,
                   misdirect_stat_json[k], c->n[k]);
    }
    ap_rprintf(r, "%s  \"checks\": {\n", indent);
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        ap_rprintf(r, "%s    \"%s\": {", indent, misdirect_check_name(i));
        for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
            ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, o ? ", " : "",
                       misdirect_out_json[o],
                       c->n[MISDIRECT_STAT_CHECK(i, o)]);
        }
        ap_rputs(i + 1 < MISDIRECT_CHECK_COUNT ? "},\n" : "}\n", r);
    }
    ap_rprintf(r, "%s  }\n%s}", indent, indent);
}

static void misdirect_json(request_rec *r)
{
    apr_pool_t *p = r->pool;
    misdirect_counts c;
    server_rec **list;
    apr_time_t started = misdirect_seg->started;
    int n, i;

    ap_rprintf(r, "{\n  \"module\": \"mod_misdirect\",\n"
               "  \"started\": \"%s\",\n"
               "  \"started_epoch\": %" APR_TIME_T_FMT ",\n"
               "  \"uptime\": %" APR_TIME_T_FMT ",\n"
               "  \"generation\": %d,\n"
               "  \"note\": %s,\n"
               "  \"totals\": ",
               misdirect_iso_time(p, started), apr_time_sec(started),
               apr_time_sec(apr_time_now() - started),
               misdirect_generation(),
               misdirect_json_str(p, MISDIRECT_LIFETIME));
    misdirect_read_totals(&c);
    misdirect_json_counts(r, &c, "  ");
    ap_rputs(",\n  \"vhosts\": [\n", r);
    list = misdirect_servers(p, ap_server_conf, &n);
    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        misdirect_read_server(s, &c);
        ap_rprintf(r, "    {\n      \"server_name\": %s,\n"
                   "      \"address\": %s,\n"
                   "      \"defined_in\": %s,\n"
                   "      \"main_server\": %s,\n"
                   "      \"mode\": \"%s\",\n"
                   "      \"counters\": ",
                   misdirect_json_str(p, misdirect_server_name(s)),
                   misdirect_json_str(p, misdirect_server_address(p, s,
                                                                  is_main)),
                   misdirect_json_str(p, misdirect_server_defined(p, s)),
                   is_main ? "true" : "false",
                   misdirect_mode_name(misdirect_server_mode(s)));
        misdirect_json_counts(r, &c, "      ");
        ap_rputs(i + 1 < n ? "\n    },\n" : "\n    }\n", r);
    }
    ap_rputs("  ]\n}\n", r);
}

/* ------------------------------------------------------------------ */
/* Plain text (?text, and /server-status without tables)             */

/* Configuration text can hold control characters: never send them to
 * a terminal, and in HTML escape markup too. */
static const char *misdirect_text_str(apr_pool_t *p, const char *s,
                                      int html)
{
    const char *t = ap_escape_logitem(p, s ? s : "");

    return html ? ap_escape_html(p, t) : t;
}

static int misdirect_width(apr_pool_t *p, const char *s, int at_least)
{
    int len = (int)strlen(ap_escape_logitem(p, s ? s : ""));

    return len > at_least ? len : at_least;
}

static void misdirect_text_row(request_rec *r, int html, const char *name,
                               int wname, const char *addr, int waddr,
                               const char *defined, int wdef,
                               const char *mode, const misdirect_counts *c)
{
    apr_pool_t *p = r->pool;
    int k;

    /* Padding by visible width: HTML entities do not count. */
    ap_rprintf(r, "%s%*s  %s%*s  %s%*s  %-11s",
               misdirect_text_str(p, name, html),
               wname - misdirect_width(p, name, 0), "",
               misdirect_text_str(p, addr, html),
               waddr - misdirect_width(p, addr, 0), "",
               misdirect_text_str(p, defined, html),
               wdef - misdirect_width(p, defined, 0), "", mode);
    for (k = 0; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "  %*" APR_UINT64_T_FMT, (int)strlen(
                       misdirect_stat_json[k]), c->n[k]);
    }
    ap_rputs("\n", r);
}

static void misdirect_text(request_rec *r, int html)
{
    apr_pool_t *p = r->pool;
    int wname = 5, waddr = 7, wdef = 10, k, i, o, n;
    misdirect_counts c;
    server_rec **list = misdirect_servers(p, ap_server_conf, &n);

    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        wname = misdirect_width(p, misdirect_server_name(s), wname);
        waddr = misdirect_width(p, misdirect_server_address(p, s, is_main),
                                waddr);
        wdef = misdirect_width(p, is_main ? "(main server)"
                               : misdirect_server_defined(p, s), wdef);
    }

    ap_rprintf(r, "mod_misdirect counters since %s (generation %d)\n%s\n\n",
               misdirect_iso_time(p, misdirect_seg->started),
               misdirect_generation(), MISDIRECT_LIFETIME);
    ap_rprintf(r, "%-*s  %-*s  %-*s  %-11s", wname, "vhost", waddr,
               "address", wdef, "defined in", "mode");
    for (k = 0; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "  %s", misdirect_stat_json[k]);
    }
    ap_rputs("\n", r);
    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        misdirect_read_server(s, &c);
        misdirect_text_row(r, html, misdirect_server_name(s), wname,
                           misdirect_server_address(p, s, is_main), waddr,
                           is_main ? "(main server)"
                           : misdirect_server_defined(p, s), wdef,
                           misdirect_mode_name(misdirect_server_mode(s)),
                           &c);
    }
    misdirect_read_totals(&c);
    misdirect_text_row(r, html, "total", wname, "", waddr, "", wdef, "", &c);

    ap_rprintf(r, "\n%-17s", "check (total)");
    for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
        ap_rprintf(r, "  %s", misdirect_out_json[o]);
    }
    ap_rputs("\n", r);
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        ap_rprintf(r, "%-17s", misdirect_check_name(i));
        for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
            ap_rprintf(r, "  %*" APR_UINT64_T_FMT,
                       (int)strlen(misdirect_out_json[o]),
                       c.n[MISDIRECT_STAT_CHECK(i, o)]);
        }
        ap_rputs("\n", r);
    }
}

/* ------------------------------------------------------------------ */
/* mod_status                                                         */

static void misdirect_status_auto(request_rec *r)
{
    misdirect_counts c;
    int k, i, o;

    misdirect_read_totals(&c);
    ap_rprintf(r, "MisdirectStarted: %" APR_TIME_T_FMT "\n",
               apr_time_sec(misdirect_seg->started));
    for (k = 0; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "Misdirect%s: %" APR_UINT64_T_FMT "\n",
                   misdirect_stat_auto[k], c.n[k]);
    }
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
            ap_rprintf(r, "Misdirect%s_%s: %" APR_UINT64_T_FMT "\n",
                       misdirect_out_auto[o], misdirect_check_name(i),
                       c.n[MISDIRECT_STAT_CHECK(i, o)]);
        }
    }
}

static void misdirect_html_cells(request_rec *r, const misdirect_counts *c)
{
    int k;

    for (k = MISDIRECT_STAT_CHECKED; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "<td align=\"right\">%" APR_UINT64_T_FMT "</td>",
                   c->n[k]);
    }
}

static void misdirect_status_html(request_rec *r)
{
    apr_pool_t *p = r->pool;
    misdirect_counts c;
    server_rec **list;
    int k, i, o, n, quiet = 0;

    misdirect_read_totals(&c);
    ap_rputs("<table border=\"0\"><tr><th>Check</th>", r);
    for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
        ap_rprintf(r, "<th>%s</th>", misdirect_out_auto[o]);
    }
    ap_rputs("</tr>\n", r);
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        ap_rprintf(r, "<tr><td>%s</td>", misdirect_check_name(i));
        for (o = 0; o < MISDIRECT_OUTCOMES; o++) {
            ap_rprintf(r, "<td align=\"right\">%" APR_UINT64_T_FMT "</td>",
                       c.n[MISDIRECT_STAT_CHECK(i, o)]);
        }
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</table>\n", r);

    ap_rputs("<p>Virtual hosts with findings (the request's vhost):</p>\n"
             "<table border=\"0\"><tr><th>Virtual host</th><th>Address</th>"
             "<th>Defined in</th>", r);
    for (k = MISDIRECT_STAT_CHECKED; k < MISDIRECT_STAT_CHECKS; k++) {
        ap_rprintf(r, "<th>%s</th>", misdirect_stat_json[k]);
    }
    ap_rputs("</tr>\n", r);
    list = misdirect_servers(p, ap_server_conf, &n);
    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        misdirect_read_server(s, &c);
        if (!misdirect_has_findings(&c)) {
            quiet++;
            continue;
        }
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td>",
                   misdirect_text_str(p, misdirect_server_name(s), 1),
                   misdirect_text_str(p, misdirect_server_address(p, s,
                                                                  is_main),
                                      1),
                   misdirect_text_str(p, is_main ? "(main server)"
                                      : misdirect_server_defined(p, s), 1));
        misdirect_html_cells(r, &c);
        ap_rputs("</tr>\n", r);
    }
    misdirect_read_totals(&c);
    ap_rputs("<tr><td><b>total</b></td><td></td><td></td>", r);
    misdirect_html_cells(r, &c);
    ap_rprintf(r, "</tr>\n</table>\n<p>%d virtual host%s without findings "
               "not shown.</p>\n", quiet, quiet == 1 ? "" : "s");
}

/* mod_status's optional hook: a section of /server-status, and Key:
 * value lines in its ?auto form. */
static int misdirect_status_hook(request_rec *r, int flags)
{
    if (!misdirect_seg || !misdirect_active) {
        return OK;
    }
    if (flags & AP_STATUS_SHORT) {
        misdirect_status_auto(r);
        return OK;
    }
    ap_rprintf(r, "<hr />\n<h2>Misdirected requests (mod_misdirect)</h2>\n"
               "<p>Counting since %s. %s "
               "Per-vhost detail: a location with <code>SetHandler "
               MISDIRECT_HANDLER "</code>.</p>\n",
               misdirect_iso_time(r->pool, misdirect_seg->started),
               MISDIRECT_LIFETIME);
    if (flags & AP_STATUS_NOTABLE) {
        ap_rputs("<pre>", r);
        misdirect_text(r, 1);
        ap_rputs("</pre>\n", r);
    }
    else {
        misdirect_status_html(r);
    }
    return OK;
}

/* ------------------------------------------------------------------ */
/* Prometheus and OpenMetrics (misdirect-metrics)                     */

#define MISDIRECT_PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MISDIRECT_OM_TYPE \
    "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define MISDIRECT_PREFIX "apache_misdirect_"

/* The families, in the order a scrape lists them: first those that every
 * scrape has, whatever happened and however many vhosts there are (a
 * few lines), then the per-vhost detail, only for vhosts with a finding.
 * Family names are an interface (docs/counters.md); a counter's samples
 * add _total. */
typedef enum {
    MISDIRECT_FAM_START = 0,
    MISDIRECT_FAM_CHECKED,
    MISDIRECT_FAM_ALL_MISDIRECTED,
    MISDIRECT_FAM_ALL_REFUSED,
    MISDIRECT_FAM_VHOST_CHECKED,
    MISDIRECT_FAM_MISDIRECTED,
    MISDIRECT_FAM_FIRINGS,
    MISDIRECT_FAM_REFUSED,
    MISDIRECT_FAMILIES
} misdirect_family_e;

static const struct {
    const char *name;
    int counter;                   /* else a gauge */
    const char *help;
} misdirect_families[MISDIRECT_FAMILIES] = {
    { "start_time_seconds", 0,
      "When the counters were last set to zero (a start or full restart), "
      "in seconds since the epoch; a graceful restart keeps them." },
    { "checked_requests", 1,
      "Requests checked, all virtual hosts." },
    { "all_misdirected_requests", 1,
      "Requests on which a check fired, by the action taken, all virtual "
      "hosts; always present, for alerts." },
    { "all_refused_requests", 1,
      "421s by who answered them (module, mod_ssl, handler), and mod_ssl's "
      "400s and 403s, all virtual hosts; always present, for alerts." },
    { "vhost_checked_requests", 1,
      "Requests checked, per virtual host with a finding." },
    { "misdirected_requests", 1,
      "Requests on which a check fired, by the action taken (the strictest "
      "of the checks'), per virtual host with a finding." },
    { "check_firings", 1,
      "Requests on which each check fired, by the action its policy gave "
      "it, per virtual host where it fired." },
    { "refused_requests", 1,
      "421s by who answered them, and mod_ssl's 400s and 403s, per "
      "virtual host with a finding." }
};

/* The action a request or a check was given, as a label, in the order
 * of the outcomes after MISDIRECT_OUT_FIRED. */
static const char *const misdirect_out_action[MISDIRECT_OUTCOMES] = {
    NULL, "action=\"reject\"", "action=\"report\"", "action=\"allow\""
};

/* The refusals, as status and sender labels: 421s by who answered them
 * (this module's are the requests it rejected), then mod_ssl's 400 and
 * 403. */
static const struct {
    int stat;
    const char *labels;
} misdirect_refusals[] = {
    { MISDIRECT_STAT_REJECTED,  "status=\"421\",sender=\"module\"" },
    { MISDIRECT_STAT_SSL_421,   "status=\"421\",sender=\"mod_ssl\"" },
    { MISDIRECT_STAT_OTHER_421, "status=\"421\",sender=\"handler\"" },
    { MISDIRECT_STAT_SSL_400,   "status=\"400\",sender=\"mod_ssl\"" },
    { MISDIRECT_STAT_SSL_403,   "status=\"403\",sender=\"mod_ssl\"" }
};
#define MISDIRECT_REFUSALS \
    ((int)(sizeof(misdirect_refusals) / sizeof(misdirect_refusals[0])))

/* A label value as both formats want it: UTF-8 (misdirect_utf8), with
 * backslash, double quote and newline escaped. */
static const char *misdirect_label_value(apr_pool_t *p, const char *s)
{
    const char *in = misdirect_utf8(p, s ? s : "");
    char *out = apr_palloc(p, strlen(in) * 2 + 1), *o = out;

    for (; *in; in++) {
        if (*in == '\\' || *in == '"') {
            *o++ = '\\';
            *o++ = *in;
        }
        else if (*in == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *in;
        }
    }
    *o = '\0';
    return out;
}

/* Labels for every server, once per configuration.  ServerName alone
 * does not name a vhost: the same name on two addresses is two vhosts,
 * hence address ("" for the main server).  Two vhosts alike in both (the
 * lint warns) would be one series twice, which makes Prometheus drop
 * samples: the second and later of them also get dup, their turn, the
 * one their slot is keyed by (misdirect_identities), so that moving
 * lines around them renames nothing.  Two address lists that only print
 * alike (a wildcard on IPv4 and on IPv6) take the next free turn. */
static void misdirect_metrics_prepare(apr_pool_t *pconf, apr_pool_t *ptemp,
                                      server_rec *main_s)
{
    apr_hash_t *seen = apr_hash_make(ptemp);
    misdirect_identity *id = misdirect_identities(ptemp, main_s,
                                                  &misdirect_metric_count);
    int i;

    misdirect_metric_servers = apr_palloc(pconf, misdirect_metric_count
                                          * sizeof(*misdirect_metric_servers));
    for (i = 0; i < misdirect_metric_count; i++) {
        server_rec *s = id[i].s;
        const char *base, *labels;
        int dup;

        base = apr_psprintf(pconf, "vhost=\"%s\",address=\"%s\"",
                   misdirect_label_value(ptemp, misdirect_server_name(s)),
                   misdirect_label_value(ptemp, misdirect_server_address(
                                                    ptemp, s, i == 0)));
        for (dup = id[i].turn; ; dup++) {
            labels = dup == 1 ? base : apr_psprintf(pconf, "%s,dup=\"%d\"",
                                                    base, dup);
            if (!apr_hash_get(seen, labels, APR_HASH_KEY_STRING)) {
                break;
            }
        }
        apr_hash_set(seen, labels, APR_HASH_KEY_STRING, "");
        misdirect_metric_servers[i].s = s;
        misdirect_metric_servers[i].labels = labels;
    }
}

/* Is the weight among the parameters [p, end) of a media range zero? */
static int misdirect_q_zero(const char *p, const char *end)
{
    while ((p = memchr(p, ';', end - p)) != NULL) {
        p++;
        p += strspn(p, " \t");
        if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
            p += 2;
            if (*p != '0') {
                return 0;
            }
            for (p++; p < end && (*p == '0' || *p == '.'); p++) {
                continue;
            }
            return p == end || *p == ';' || *p == ' ' || *p == '\t';
        }
    }
    return 0;
}

/* Does Accept ask for OpenMetrics, a media range of that type whose
 * weight is not zero?  Prometheus lists it first and the 0.0.4 text
 * format as its fallback; every other client gets the latter, which
 * curl, promtool and older scrapers read. */
static int misdirect_wants_openmetrics(const char *accept)
{
    static const char type[] = "application/openmetrics-text";
    const size_t len = sizeof(type) - 1;
    const char *p, *end;

    for (p = accept; p && *p; p = *end ? end + 1 : end) {
        end = p + strcspn(p, ",");
        p += strspn(p, " \t");
        if ((size_t)(end - p) < len || strncasecmp(p, type, len)) {
            continue;
        }
        p += len;
        if (p < end && *p != ';' && *p != ' ' && *p != '\t') {
            continue;             /* a longer type name */
        }
        if (!misdirect_q_zero(p, end)) {
            return 1;
        }
    }
    return 0;
}

/* HELP and TYPE, once per family.  OpenMetrics names a counter family
 * without _total, its samples with it; the 0.0.4 format uses the sample
 * name for both. */
static void misdirect_metrics_family(request_rec *r, int om,
                                     misdirect_family_e f)
{
    const char *name = misdirect_families[f].name;
    int counter = misdirect_families[f].counter;
    const char *suffix = counter && !om ? "_total" : "";

    ap_rprintf(r, "# HELP " MISDIRECT_PREFIX "%s%s %s\n"
               "# TYPE " MISDIRECT_PREFIX "%s%s %s\n", name, suffix,
               misdirect_families[f].help, name, suffix,
               counter ? "counter" : "gauge");
}

/* One sample.  Its labels come in up to three parts, each "" or
 * name="value" pairs: the vhost's, then what the family adds. */
static void misdirect_metrics_sample(request_rec *r, misdirect_family_e f,
                                     const char *vhost, const char *more,
                                     const char *last, apr_uint64_t value)
{
    const char *part[3] = { vhost, more, last };
    int i, labels = 0;

    ap_rprintf(r, MISDIRECT_PREFIX "%s%s", misdirect_families[f].name,
               misdirect_families[f].counter ? "_total" : "");
    for (i = 0; i < 3; i++) {
        if (*part[i]) {
            ap_rvputs(r, labels++ ? "," : "{", part[i], NULL);
        }
    }
    ap_rprintf(r, "%s %" APR_UINT64_T_FMT "\n", labels ? "}" : "", value);
}

/* The counters per action and per refusal, of a vhost or of all. */
static void misdirect_metrics_actions(request_rec *r, misdirect_family_e f,
                                      const char *vhost,
                                      const misdirect_counts *c)
{
    int o;

    for (o = MISDIRECT_OUT_REJECTED; o < MISDIRECT_OUTCOMES; o++) {
        misdirect_metrics_sample(r, f, vhost, misdirect_out_action[o], "",
                                 c->n[MISDIRECT_STAT_FIRED + o]);
    }
}

static void misdirect_metrics_refusals(request_rec *r, misdirect_family_e f,
                                       const char *vhost,
                                       const misdirect_counts *c)
{
    int k;

    for (k = 0; k < MISDIRECT_REFUSALS; k++) {
        misdirect_metrics_sample(r, f, vhost, misdirect_refusals[k].labels,
                                 "", c->n[misdirect_refusals[k].stat]);
    }
}

/* A vhost with a finding, as one reading of its counters. */
typedef struct {
    const char *labels;
    misdirect_counts c;
} misdirect_metric_shown;

static void misdirect_metrics(request_rec *r, int om)
{
    const misdirect_metric_server *ms = misdirect_metric_servers;
    apr_array_header_t *shown = apr_array_make(r->pool, 8,
                                               sizeof(misdirect_metric_shown));
    const misdirect_metric_shown *v;
    const char *check[MISDIRECT_CHECK_COUNT];
    misdirect_counts c;
    int i, k, o;

    misdirect_metrics_family(r, om, MISDIRECT_FAM_START);
    misdirect_metrics_sample(r, MISDIRECT_FAM_START, "", "", "",
                             (apr_uint64_t)apr_time_sec(
                                 misdirect_seg->started));

    /* The series that every scrape has, zero included, so that a server
     * with no misdirected request at all scrapes as a few lines whatever
     * its number of vhosts, and so that rate() and increase() see the
     * first misdirected request of all (a series that appears at 1 shows
     * them no increase).  Summed over all vhosts, also those a graceful
     * restart removed, from one reading of each slot. */
    misdirect_read_totals(&c);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_CHECKED);
    misdirect_metrics_sample(r, MISDIRECT_FAM_CHECKED, "", "", "",
                             c.n[MISDIRECT_STAT_CHECKED]);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_ALL_MISDIRECTED);
    misdirect_metrics_actions(r, MISDIRECT_FAM_ALL_MISDIRECTED, "", &c);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_ALL_REFUSED);
    misdirect_metrics_refusals(r, MISDIRECT_FAM_ALL_REFUSED, "", &c);

    /* Per vhost, only those with a finding (a check fired, or a refusal
     * was counted), each read once so that every family shows the same
     * reading.  Findings only accumulate (until a full restart zeroes
     * them), so a vhost, once shown, stays. */
    for (i = 0; i < misdirect_metric_count; i++) {
        misdirect_read_server(ms[i].s, &c);
        if (misdirect_has_findings(&c)) {
            misdirect_metric_shown *one = apr_array_push(shown);

            one->labels = ms[i].labels;
            one->c = c;
        }
    }
    v = (const misdirect_metric_shown *)shown->elts;

    misdirect_metrics_family(r, om, MISDIRECT_FAM_VHOST_CHECKED);
    for (i = 0; i < shown->nelts; i++) {
        misdirect_metrics_sample(r, MISDIRECT_FAM_VHOST_CHECKED, v[i].labels,
                                 "", "", v[i].c.n[MISDIRECT_STAT_CHECKED]);
    }
    misdirect_metrics_family(r, om, MISDIRECT_FAM_MISDIRECTED);
    for (i = 0; i < shown->nelts; i++) {
        misdirect_metrics_actions(r, MISDIRECT_FAM_MISDIRECTED, v[i].labels,
                                  &v[i].c);
    }
    misdirect_metrics_family(r, om, MISDIRECT_FAM_FIRINGS);
    for (k = 0; k < MISDIRECT_CHECK_COUNT; k++) {
        check[k] = apr_pstrcat(r->pool, "check=\"", misdirect_check_name(k),
                               "\"", NULL);
    }
    for (i = 0; i < shown->nelts; i++) {
        for (k = 0; k < MISDIRECT_CHECK_COUNT; k++) {
            if (!v[i].c.n[MISDIRECT_STAT_CHECK(k, MISDIRECT_OUT_FIRED)]) {
                continue;
            }
            for (o = MISDIRECT_OUT_REJECTED; o < MISDIRECT_OUTCOMES; o++) {
                misdirect_metrics_sample(r, MISDIRECT_FAM_FIRINGS,
                                         v[i].labels, check[k],
                                         misdirect_out_action[o],
                                         v[i].c.n[MISDIRECT_STAT_CHECK(k,
                                                                       o)]);
            }
        }
    }
    misdirect_metrics_family(r, om, MISDIRECT_FAM_REFUSED);
    for (i = 0; i < shown->nelts; i++) {
        misdirect_metrics_refusals(r, MISDIRECT_FAM_REFUSED, v[i].labels,
                                   &v[i].c);
    }

    if (om) {
        ap_rputs("# EOF\n", r);
    }
}

/* ------------------------------------------------------------------ */
/* The misdirect-status and misdirect-metrics handlers                */

static int misdirect_args_have(const char *args, const char *word)
{
    size_t len = strlen(word);

    while (args && *args) {
        if (!strncmp(args, word, len)
            && (args[len] == '\0' || args[len] == '&'
                || args[len] == '=')) {
            return 1;
        }
        args = strchr(args, '&');
        args = args ? args + 1 : NULL;
    }
    return 0;
}

typedef enum {
    MISDIRECT_FORMAT_JSON,
    MISDIRECT_FORMAT_TEXT,
    MISDIRECT_FORMAT_PROMETHEUS,
    MISDIRECT_FORMAT_OPENMETRICS
} misdirect_format_e;

static int misdirect_status_handler(request_rec *r)
{
    misdirect_format_e format;

    /* Every request passes here: the first byte turns nearly all away
     * (both names start alike). */
    if (!r->handler || r->handler[0] != MISDIRECT_HANDLER[0]) {
        return DECLINED;
    }
    if (!strcmp(r->handler, MISDIRECT_HANDLER)) {
        format = misdirect_args_have(r->args, "text")
                 ? MISDIRECT_FORMAT_TEXT : MISDIRECT_FORMAT_JSON;
    }
    else if (!strcmp(r->handler, MISDIRECT_METRICS)) {
        format = misdirect_wants_openmetrics(apr_table_get(r->headers_in,
                                                           "Accept"))
                 ? MISDIRECT_FORMAT_OPENMETRICS : MISDIRECT_FORMAT_PROMETHEUS;
        /* The format follows Accept: a cache must know. */
        apr_table_mergen(r->headers_out, "Vary", "Accept");
    }
    else {
        return DECLINED;
    }
    /* GET, and HEAD with it: a 405 says so in Allow. */
    ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, -1);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!misdirect_seg) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, MISDIRECT_LOGNO(041)
                      "counters unavailable (see the startup log)");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_set_content_type(r, format == MISDIRECT_FORMAT_TEXT
                           ? "text/plain; charset=utf-8"
                           : format == MISDIRECT_FORMAT_PROMETHEUS
                           ? MISDIRECT_PROM_TYPE
                           : format == MISDIRECT_FORMAT_OPENMETRICS
                           ? MISDIRECT_OM_TYPE : "application/json");
    /* A snapshot: never worth caching. */
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    switch (format) {
    case MISDIRECT_FORMAT_TEXT:
        misdirect_text(r, 0);
        break;
    case MISDIRECT_FORMAT_PROMETHEUS:
    case MISDIRECT_FORMAT_OPENMETRICS:
        misdirect_metrics(r, format == MISDIRECT_FORMAT_OPENMETRICS);
        break;
    default:
        misdirect_json(r);
        break;
    }
    return OK;
}

void misdirect_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_mpm(misdirect_status_pre_mpm, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(misdirect_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, misdirect_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
