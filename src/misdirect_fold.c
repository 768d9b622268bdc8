/*
 * mod_misdirect: MisdirectLogLimit, without losing a line unaccounted.
 *
 * A browser page load on a shared certificate can bring twenty 421s in a
 * second, a misconfigured proxy thousands: one detailed line per cause
 * says all there is to say, and the rest is a count.  So repeats of one
 * (message, cause, handshake vhost, request vhost, SNI, host) fold into a
 * summary line with repeated="K" and the window they came in, and at
 * most MisdirectLogLimit detailed lines a second are written per child.
 * A line that finds the second's budget spent waits, whole, for the next
 * second with room; nothing is dropped but where the fold table is full,
 * and that is counted and said (MISDIRECT016).
 *
 * A thread of each child writes what is due once a second, so a summary
 * never waits for a later request, and the child's last lines are
 * written when it exits (also at a graceful restart).  Under prefork,
 * whose children die in a signal handler, there is no such thread: the
 * next line writes what has come due.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

/* Distinct lines a child keeps at once, and how long a window lasts
 * before its summary is due. */
#define MISDIRECT_FOLD_SLOTS 1024
#define MISDIRECT_FOLD_WINDOW apr_time_from_sec(4)

typedef struct {
    uint64_t hash;               /* 0: free */
    char *key;                   /* what hash stands for, compared */
    char *pending;               /* a detailed line not written yet */
    server_rec *s;
    int level;
    const char *logno;
    apr_uint32_t repeated;       /* lines folded since the detail */
    apr_time_t first;            /* the window */
    apr_time_t last;
} misdirect_fold_slot;

typedef struct {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *wake;
    apr_thread_t *thread;
    int stop;
    misdirect_fold_slot slot[MISDIRECT_FOLD_SLOTS];
    apr_time_t second;           /* of the budget */
    apr_time_t flushed;          /* when what was due was last written */
    int spent;                   /* detailed lines in that second */
    apr_uint32_t dropped;        /* the table was full */
} misdirect_fold_table;

static misdirect_fold_table *misdirect_fold;

static uint64_t misdirect_fold_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *key; key++) {
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    }
    return h ? h : 1;
}

/* Empties sl under the lock, and moves back each slot after it whose
 * probe from its home slot passed sl, as linear probing deletes: so a
 * lookup stops at the first empty slot instead of walking the table. */
static void misdirect_fold_free(misdirect_fold_slot *sl)
{
    misdirect_fold_slot *t = misdirect_fold->slot;
    apr_size_t hole = (apr_size_t)(sl - t), j = hole, home;

    free(sl->key);
    free(sl->pending);
    memset(sl, 0, sizeof(*sl));
    for (;;) {
        j = (j + 1) % MISDIRECT_FOLD_SLOTS;
        if (!t[j].hash) {
            return;
        }
        home = (apr_size_t)(t[j].hash % MISDIRECT_FOLD_SLOTS);
        /* Slot j may fill the hole unless its home lies after the hole,
         * up to j, going round. */
        if (hole < j ? (home <= hole || home > j)
                     : (home <= hole && home > j)) {
            t[hole] = t[j];
            memset(&t[j], 0, sizeof(t[j]));
            hole = j;
        }
    }
}

/* A budget for one more detailed line this second?  Under the lock. */
static int misdirect_fold_budget(apr_time_t now)
{
    int limit = misdirect_config_log_limit();

    if (apr_time_sec(now) != apr_time_sec(misdirect_fold->second)) {
        misdirect_fold->second = now;
        misdirect_fold->spent = 0;
    }
    if (misdirect_fold->spent < limit) {
        misdirect_fold->spent++;
        return 1;
    }
    return 0;
}

static const char *misdirect_fold_window(apr_pool_t *p,
                                         const misdirect_fold_slot *sl)
{
    char a[APR_RFC822_DATE_LEN], b[APR_RFC822_DATE_LEN];
    apr_time_exp_t x;
    apr_size_t n;

    apr_time_exp_gmt(&x, sl->first);
    apr_strftime(a, &n, sizeof(a), "%H:%M:%S", &x);
    apr_time_exp_gmt(&x, sl->last);
    apr_strftime(b, &n, sizeof(b), "%H:%M:%S", &x);
    return apr_psprintf(p, "%s-%s UTC", a, b);
}

/* Writes what a slot owes: its waiting detailed line (with how many
 * more came), or the summary of its repeats; always frees the slot, which
 * the flush's loop relies on to end. */
static void misdirect_fold_write(apr_pool_t *p, misdirect_fold_slot *sl)
{
    if (sl->pending) {
        ap_log_error(APLOG_MARK, sl->level, 0, sl->s, "%s repeated=\"%u\" "
                     "window=\"%s\"", sl->pending, sl->repeated + 1,
                     misdirect_fold_window(p, sl));
        misdirect_fold_free(sl);
        return;
    }
    if (sl->repeated) {
        ap_log_error(APLOG_MARK, sl->level, 0, sl->s,
                     MISDIRECT_LOGNO(009) "%u more like the %sline above "
                     "were folded:%s repeated=\"%u\" window=\"%s\"",
                     sl->repeated, sl->logno, sl->key, sl->repeated,
                     misdirect_fold_window(p, sl));
    }
    misdirect_fold_free(sl);
}

/* Once a second, and for the last time when the child exits: the
 * summaries whose window is over, and the waiting lines the budget
 * admits (all of them at exit).  0: at exit, the lock was held, and the
 * table was not touched. */
static int misdirect_fold_flush(apr_pool_t *p, int final)
{
    apr_time_t now = apr_time_now();
    apr_uint32_t dropped;
    int i;

    /* At exit the lock can be held by the code a signal interrupted
     * (prefork dies in its signal handler): then nothing is written
     * rather than the child hanging. */
    if (final) {
        if (apr_thread_mutex_trylock(misdirect_fold->lock) != APR_SUCCESS) {
            return 0;
        }
    }
    else {
        apr_thread_mutex_lock(misdirect_fold->lock);
    }
    misdirect_fold->flushed = now;
    for (i = 0; i < MISDIRECT_FOLD_SLOTS; ) {
        misdirect_fold_slot *sl = &misdirect_fold->slot[i];

        if (sl->hash
            && (sl->pending ? final || misdirect_fold_budget(now)
                            : final
                              || now - sl->first >= MISDIRECT_FOLD_WINDOW)) {
            /* Freed, and maybe filled by a later slot: look again. */
            misdirect_fold_write(p, sl);
            continue;
        }
        i++;
    }
    dropped = misdirect_fold->dropped;
    misdirect_fold->dropped = 0;
    apr_thread_mutex_unlock(misdirect_fold->lock);
    if (dropped) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ap_server_conf,
                     MISDIRECT_LOGNO(016) "%u diagnosis line%s dropped: "
                     "more than %d different lines waited at once under "
                     "MisdirectLogLimit %d in this process (requests were "
                     "still decided and counted)", dropped,
                     dropped == 1 ? "" : "s", MISDIRECT_FOLD_SLOTS,
                     misdirect_config_log_limit());
    }
    if (!final) {
        apr_pool_clear(p);
    }
    return 1;
}

/* The slot that holds (h, logno, key), or NULL, and in *free_sl the
 * free slot that ends h's run (NULL: the table is full); under the
 * lock. */
static misdirect_fold_slot *misdirect_fold_find(uint64_t h,
                                                const char *logno,
                                                const char *key,
                                                misdirect_fold_slot **free_sl)
{
    misdirect_fold_slot *sl;
    int i;

    *free_sl = NULL;
    for (i = 0; i < MISDIRECT_FOLD_SLOTS; i++) {
        sl = &misdirect_fold->slot[(h + (uint64_t)i) % MISDIRECT_FOLD_SLOTS];
        if (!sl->hash) {
            *free_sl = sl;
            return NULL;
        }
        if (sl->hash == h && sl->logno == logno && !strcmp(sl->key, key)) {
            return sl;
        }
    }
    return NULL;
}

/* Counts a repeat of its window's line, if sl is one. */
static int misdirect_fold_count(misdirect_fold_slot *sl, apr_time_t now)
{
    if (!sl) {
        return 0;
    }
    sl->repeated++;
    sl->last = now;
    return 1;
}

/* Without a thread (prefork), each line, a repeat too, writes what has
 * come due; else a steady repeat would never close its window. */
static void misdirect_fold_due(request_rec *r, apr_time_t now)
{
    apr_pool_t *tmp;

    if (misdirect_fold->thread
        || now - misdirect_fold->flushed < apr_time_from_sec(1)) {
        return;
    }
    apr_pool_create(&tmp, r->pool);
    misdirect_fold_flush(tmp, 0);
    apr_pool_destroy(tmp);
}

int misdirect_fold_repeat(request_rec *r, int level, const char *logno,
                          const char *key)
{
    apr_time_t now = apr_time_now();
    misdirect_fold_slot *free_sl;
    uint64_t h;
    int repeat;

    if (level > APLOG_WARNING || !misdirect_fold
        || misdirect_config_log_limit() == 0) {
        return 0;
    }
    misdirect_fold_due(r, now);
    h = misdirect_fold_hash(apr_pstrcat(r->pool, logno, key, NULL));
    apr_thread_mutex_lock(misdirect_fold->lock);
    repeat = misdirect_fold_count(misdirect_fold_find(h, logno, key,
                                                      &free_sl), now);
    apr_thread_mutex_unlock(misdirect_fold->lock);
    return repeat;
}

int misdirect_fold_line(request_rec *r, int level, const char *logno,
                        const char *key, const char *line)
{
    apr_time_t now = apr_time_now();
    uint64_t h;
    misdirect_fold_slot *sl, *free_sl;
    int detail = 0;

    if (level > APLOG_WARNING || !misdirect_fold
        || misdirect_config_log_limit() == 0) {
        return 1;
    }
    misdirect_fold_due(r, now);
    h = misdirect_fold_hash(apr_pstrcat(r->pool, logno, key, NULL));
    apr_thread_mutex_lock(misdirect_fold->lock);
    /* Another thread may have written the first of these meanwhile. */
    if (misdirect_fold_count(misdirect_fold_find(h, logno, key, &free_sl),
                             now)) {
        apr_thread_mutex_unlock(misdirect_fold->lock);
        return 0;
    }
    if (!free_sl) {
        misdirect_fold->dropped++;
        apr_thread_mutex_unlock(misdirect_fold->lock);
        return 0;
    }
    sl = free_sl;
    sl->key = strdup(key);
    detail = misdirect_fold_budget(now);
    sl->pending = detail ? NULL : strdup(line);
    if (!sl->key || (!detail && !sl->pending)) {
        misdirect_fold_free(sl);
        misdirect_fold->dropped++;
        apr_thread_mutex_unlock(misdirect_fold->lock);
        return 0;
    }
    sl->hash = h;
    sl->s = r->server;
    sl->level = level;
    sl->logno = logno;
    sl->first = sl->last = now;
    apr_thread_mutex_unlock(misdirect_fold->lock);
    return detail;
}

static void *APR_THREAD_FUNC misdirect_fold_main(apr_thread_t *t, void *d)
{
    apr_pool_t *p;

    (void)d;
    apr_pool_create(&p, NULL);
    apr_thread_mutex_lock(misdirect_fold->lock);
    while (!misdirect_fold->stop) {
        apr_thread_cond_timedwait(misdirect_fold->wake, misdirect_fold->lock,
                                  apr_time_from_sec(1));
        if (misdirect_fold->stop) {
            break;
        }
        apr_thread_mutex_unlock(misdirect_fold->lock);
        misdirect_fold_flush(p, 0);
        apr_thread_mutex_lock(misdirect_fold->lock);
    }
    apr_thread_mutex_unlock(misdirect_fold->lock);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* The child exits: stop the thread, then write everything that is owed,
 * budget or not. */
static apr_status_t misdirect_fold_exit(void *data)
{
    apr_pool_t *p;
    apr_status_t rv;
    int i;

    (void)data;
    if (!misdirect_fold) {
        return APR_SUCCESS;
    }
    if (misdirect_fold->thread) {
        apr_thread_mutex_lock(misdirect_fold->lock);
        misdirect_fold->stop = 1;
        apr_thread_cond_signal(misdirect_fold->wake);
        apr_thread_mutex_unlock(misdirect_fold->lock);
        apr_thread_join(&rv, misdirect_fold->thread);
    }
    apr_pool_create(&p, NULL);
    /* A table whose lock an interrupted thread holds is left alone. */
    if (misdirect_fold_flush(p, 1)) {
        for (i = 0; i < MISDIRECT_FOLD_SLOTS; ) {
            if (misdirect_fold->slot[i].hash) {
                misdirect_fold_free(&misdirect_fold->slot[i]);
                continue;       /* a later slot may have moved here */
            }
            i++;
        }
    }
    apr_pool_destroy(p);
    misdirect_fold = NULL;
    return APR_SUCCESS;
}

static void misdirect_fold_child_init(apr_pool_t *pchild, server_rec *s)
{
    misdirect_fold_table *t;
    int threaded = 0;

    (void)s;
    if (misdirect_config_log_limit() == 0) {
        return;                 /* every line in detail: nothing to fold */
    }
    t = apr_pcalloc(pchild, sizeof(*t));
    if (apr_thread_mutex_create(&t->lock, APR_THREAD_MUTEX_DEFAULT, pchild)
        != APR_SUCCESS
        || apr_thread_cond_create(&t->wake, pchild) != APR_SUCCESS) {
        return;
    }
    misdirect_fold = t;
    t->flushed = apr_time_now();
    /* Registered before the thread starts, and run before pchild's
     * subpools go (the thread's among them): the cleanup joins it. */
    apr_pool_pre_cleanup_register(pchild, NULL, misdirect_fold_exit);
    /* Threaded MPMs end a child from its main thread, with signals
     * blocked in the others.  prefork dies in a signal handler, which a
     * thread of ours could receive, or interrupt while it holds the
     * lock: there, due lines are written by the next line and at exit. */
    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS
        || threaded == AP_MPMQ_NOT_SUPPORTED
        || apr_thread_create(&t->thread, NULL, misdirect_fold_main, NULL,
                             pchild) != APR_SUCCESS) {
        t->thread = NULL;
    }
}

void misdirect_fold_register_hooks(void)
{
    ap_hook_child_init(misdirect_fold_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
}
