/*
 * mod_misdirect: the counters' memory layout, striped per CPU.  Private
 * to the module's files.
 *
 * Nothing here knows httpd or APR: the caller hands over a block of
 * memory (shared between processes or not) and slot numbers, so the
 * benchmark (bench/counters.c) links this file alone and measures the
 * very code that counts requests.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_STRIPES_H
#define MISDIRECT_STRIPES_H

#include <stddef.h>
#include <stdint.h>

#include "misdirect_logic.h"

/* Per check: fired, and the action it was given (so the last three add
 * up to the first). */
typedef enum {
    MISDIRECT_OUT_FIRED = 0,
    MISDIRECT_OUT_REJECTED,
    MISDIRECT_OUT_REPORTED,
    MISDIRECT_OUT_ALLOWED,
    MISDIRECT_OUT_WOULD_REJECT,    /* Misdirect ReportOnly's "reject" */
    MISDIRECT_OUTCOMES
} misdirect_outcome_e;

/* What happened to one request, counted once per request. */
typedef enum {
    MISDIRECT_STAT_CHECKED = 0,    /* the one every request writes */
    MISDIRECT_STAT_FIRED,          /* at least one check fired */
    MISDIRECT_STAT_REJECTED,       /* this module answered 421 */
    MISDIRECT_STAT_REPORTED,
    MISDIRECT_STAT_ALLOWED,
    MISDIRECT_STAT_WOULD_REJECT,   /* served under ReportOnly, which On
                                    * would have refused */
    MISDIRECT_STAT_SSL_421,        /* mod_ssl refused, the module explained */
    MISDIRECT_STAT_SSL_400,
    MISDIRECT_STAT_SSL_403,
    MISDIRECT_STAT_OTHER_421,      /* a handler or a backend answered 421 */
    MISDIRECT_STAT_CHECKS,         /* then MISDIRECT_OUTCOMES per check */
    /* Then each finding or refusal the module explained, by its most
     * likely cause; then nothing, up to whole cache lines. */
    MISDIRECT_STAT_CAUSES = MISDIRECT_STAT_CHECKS
                            + MISDIRECT_OUTCOMES * MISDIRECT_CHECK_COUNT,
    MISDIRECT_STAT_USED = MISDIRECT_STAT_CAUSES + MISDIRECT_CAUSE_COUNT,
    MISDIRECT_STAT_COUNT = 1 + (MISDIRECT_STAT_USED - 1 + 7) / 8 * 8
} misdirect_stat_e;

#define MISDIRECT_STAT_CHECK(check, out) \
    (MISDIRECT_STAT_CHECKS + MISDIRECT_OUTCOMES * (check) + (out))
#define MISDIRECT_STAT_CAUSE(cause) (MISDIRECT_STAT_CAUSES + (cause))

/* A request's outcome is counted at MISDIRECT_STAT_FIRED + its outcome. */
_Static_assert(MISDIRECT_STAT_FIRED + MISDIRECT_OUT_REJECTED
               == MISDIRECT_STAT_REJECTED
               && MISDIRECT_STAT_FIRED + MISDIRECT_OUT_REPORTED
                  == MISDIRECT_STAT_REPORTED
               && MISDIRECT_STAT_FIRED + MISDIRECT_OUT_ALLOWED
                  == MISDIRECT_STAT_ALLOWED
               && MISDIRECT_STAT_FIRED + MISDIRECT_OUT_WOULD_REJECT
                  == MISDIRECT_STAT_WOULD_REJECT,
               "the request outcomes follow MISDIRECT_STAT_FIRED in the "
               "order of misdirect_outcome_e");

#define MISDIRECT_LINE 64          /* a cache line */

/* More CPUs than this share stripes (CPU number modulo the stripes). */
#define MISDIRECT_STRIPES_MAX 64

/*
 * The layout, for capacity slots (one per vhost) and S stripes:
 *
 *   checked[S][stride]   every request's counter: one copy per stripe,
 *                        each stripe's copies on cache lines of its own
 *   rows[capacity]       the other counters, one row of whole cache
 *                        lines per slot, shared by all CPUs
 *
 * An accepted request adds 1 to checked[its CPU's stripe][slot] and
 * writes nothing else, so CPUs that serve the same vhost at once do not
 * pass a cache line back and forth.  A request on which a check fired
 * also writes its slot's row; it costs a few thousand instructions
 * anyway, and striping the rows would multiply their memory by S.
 * Readers add the stripes up.
 */
typedef struct {
    uint32_t stripes;
    uint32_t capacity;
    uint32_t stride;               /* slots per stripe, whole lines */
    uint32_t pad;
    uint64_t *checked;             /* inside the same block */
    uint64_t (*rows)[MISDIRECT_STAT_COUNT - 1];
} misdirect_stripes;

/* How many stripes for ncpu CPUs (sysconf's count; < 1 if unknown). */
MISDIRECT_INTERNAL uint32_t misdirect_stripes_for(long ncpu);

/* Bytes of the block for capacity slots and stripes: the caller gives
 * that much memory, aligned to MISDIRECT_LINE and zeroed. */
MISDIRECT_INTERNAL size_t misdirect_stripes_size(uint32_t capacity,
                                                 uint32_t stripes);
MISDIRECT_INTERNAL misdirect_stripes *misdirect_stripes_init(void *mem,
                                                   uint32_t capacity,
                                                   uint32_t stripes);

/* The stripe of the CPU this thread runs on. */
MISDIRECT_INTERNAL uint32_t misdirect_stripes_cpu(const misdirect_stripes *t);

/* One more of stat for slot: lock-free, no allocation, O(1).  Inline, as
 * every request calls it, with a constant stat that picks the branch at
 * compile time. */
static inline void misdirect_stripes_add(misdirect_stripes *t,
                                         uint32_t slot, int stat)
{
    uint64_t *n = stat == MISDIRECT_STAT_CHECKED
                  ? &t->checked[(size_t)misdirect_stripes_cpu(t) * t->stride
                                + slot]
                  : &t->rows[slot][stat - 1];

    __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
}

/* Reads slot's counters, all stripes added up, into out. */
MISDIRECT_INTERNAL void misdirect_stripes_read(const misdirect_stripes *t,
                                               uint32_t slot,
                                               uint64_t *out);

/* Sets slot's counters from in (stripe 0 takes the sum), for a block
 * that nobody counts into yet. */
MISDIRECT_INTERNAL void misdirect_stripes_set(misdirect_stripes *t,
                                              uint32_t slot,
                                              const uint64_t *in);

/* Zeroes every counter; nobody may be counting. */
MISDIRECT_INTERNAL void misdirect_stripes_zero(misdirect_stripes *t);

#endif /* MISDIRECT_STRIPES_H */
