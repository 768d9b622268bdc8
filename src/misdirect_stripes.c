/*
 * mod_misdirect: the counters' memory layout, striped per CPU.  See
 * misdirect_stripes.h.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE                /* sched_getcpu */
#endif

#include "misdirect_stripes.h"

#include <sched.h>
#include <string.h>

/* The request path must never take a lock, not even one hidden in a
 * library fallback. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "mod_misdirect needs lock-free 64-bit atomics");

/* A row is whole cache lines, so that two vhosts' rows share none. */
_Static_assert((MISDIRECT_STAT_COUNT - 1) * sizeof(uint64_t)
               % MISDIRECT_LINE == 0,
               "a row of counters must fill whole cache lines");

#define MISDIRECT_PER_LINE (MISDIRECT_LINE / sizeof(uint64_t))

static size_t misdirect_stripes_head(void)
{
    return (sizeof(misdirect_stripes) + MISDIRECT_LINE - 1)
           / MISDIRECT_LINE * MISDIRECT_LINE;
}

static uint32_t misdirect_stripes_stride(uint32_t capacity)
{
    return (uint32_t)((capacity + MISDIRECT_PER_LINE - 1)
                      / MISDIRECT_PER_LINE * MISDIRECT_PER_LINE);
}

uint32_t misdirect_stripes_for(long ncpu)
{
    if (ncpu < 1) {
        return 1;
    }
    return ncpu > MISDIRECT_STRIPES_MAX ? MISDIRECT_STRIPES_MAX
                                        : (uint32_t)ncpu;
}

size_t misdirect_stripes_size(uint32_t capacity, uint32_t stripes)
{
    return misdirect_stripes_head()
           + (size_t)stripes * misdirect_stripes_stride(capacity)
             * sizeof(uint64_t)
           + (size_t)capacity * sizeof(((misdirect_stripes *)0)->rows[0]);
}

misdirect_stripes *misdirect_stripes_init(void *mem, uint32_t capacity,
                                          uint32_t stripes)
{
    misdirect_stripes *t = mem;
    char *at = (char *)mem + misdirect_stripes_head();

    t->stripes = stripes ? stripes : 1;
    t->capacity = capacity;
    t->stride = misdirect_stripes_stride(capacity);
    t->checked = (uint64_t *)at;
    at += (size_t)t->stripes * t->stride * sizeof(uint64_t);
    t->rows = (void *)at;
    return t;
}

/* The stripe of the CPU we run on.  A thread that moves to another CPU
 * between this and its addition only shares a line for that one
 * addition, which stays atomic.  Without sched_getcpu (or when it
 * fails) everything goes to stripe 0: correct, only not spread.  glibc
 * reads the CPU from memory the kernel keeps up to date (rseq), so this
 * costs a few instructions, no system call. */
uint32_t misdirect_stripes_cpu(const misdirect_stripes *t)
{
#ifdef __linux__
    int cpu;

    if (t->stripes == 1) {
        return 0;                  /* one CPU: no need to ask */
    }
    cpu = sched_getcpu();
    if (cpu >= 0) {
        return (uint32_t)cpu < t->stripes ? (uint32_t)cpu
                                          : (uint32_t)cpu % t->stripes;
    }
#else
    (void)t;
#endif
    return 0;
}

/* Backwards, against the order in which a request is counted (checked,
 * fired, its action, then per check), so that a request caught halfway
 * shows as checked but not yet fired rather than the other way round
 * (where the additions stay in order, as on x86: they are relaxed).  It
 * is not one instant either way. */
void misdirect_stripes_read(const misdirect_stripes *t, uint32_t slot,
                            uint64_t *out)
{
    uint64_t sum = 0;
    uint32_t s;
    int k;

    for (k = MISDIRECT_STAT_COUNT - 1; k > MISDIRECT_STAT_CHECKED; k--) {
        out[k] = __atomic_load_n(&t->rows[slot][k - 1], __ATOMIC_RELAXED);
    }
    for (s = 0; s < t->stripes; s++) {
        sum += __atomic_load_n(&t->checked[(size_t)s * t->stride + slot],
                               __ATOMIC_RELAXED);
    }
    out[MISDIRECT_STAT_CHECKED] = sum;
}

void misdirect_stripes_set(misdirect_stripes *t, uint32_t slot,
                           const uint64_t *in)
{
    uint32_t s;
    int k;

    for (s = 0; s < t->stripes; s++) {
        t->checked[(size_t)s * t->stride + slot] = 0;
    }
    t->checked[slot] = in[MISDIRECT_STAT_CHECKED];
    for (k = MISDIRECT_STAT_CHECKED + 1; k < MISDIRECT_STAT_COUNT; k++) {
        t->rows[slot][k - 1] = in[k];
    }
}

void misdirect_stripes_zero(misdirect_stripes *t)
{
    memset(t->checked, 0, (size_t)t->stripes * t->stride * sizeof(uint64_t));
    memset(t->rows, 0, (size_t)t->capacity * sizeof(t->rows[0]));
}
