/*
 * What counting a request costs when two CPUs count for the same vhost:
 * the module's own counting code (src/misdirect_stripes.c, linked, not
 * copied) with one stripe, which is one counter that every CPU writes as
 * the module had before, and with a stripe per CPU, as it has now.  Each
 * is timed with one thread, then with two threads on two CPUs counting
 * into the same slot at once.
 *
 *   bench/build/counters [-n increments per thread] [-r rounds]
 *
 * Prints a Markdown table of nanoseconds of CPU time per increment (the
 * median of the rounds, and the least; with two threads, the slower
 * one's), and checks that every increment was counted.  `make bench`
 * runs it; bench/README.md has the figures.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE                /* pthread_setaffinity_np */
#endif

#include "misdirect_stripes.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CAPACITY 64          /* slots, as for a few dozen vhosts */
#define BENCH_SLOT     7           /* the one vhost that is counted */
#define BENCH_ROUNDS_MAX 99

typedef struct {
    misdirect_stripes *t;
    long n;
    int cpu;                       /* to run on, or -1 */
    pthread_barrier_t *go;
    double ns;                     /* per increment, measured */
} bench_worker;

/* The thread's own CPU time: on a machine with other work, time spent
 * waiting for a CPU would otherwise count as cost.  Waiting for a cache
 * line still counts, as the CPU is busy then. */
static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *bench_run(void *arg)
{
    bench_worker *w = arg;
    double start;
    long i;

    if (w->cpu >= 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    pthread_barrier_wait(w->go);
    start = bench_now();
    for (i = 0; i < w->n; i++) {
        misdirect_stripes_add(w->t, BENCH_SLOT, MISDIRECT_STAT_CHECKED);
    }
    w->ns = (bench_now() - start) / (double)w->n;
    return NULL;
}

/* One round: threads counting n each into a fresh block of the given
 * stripes; returns the slowest thread's nanoseconds per increment. */
static double bench_round(uint32_t stripes, int threads, long n, int ncpu)
{
    size_t size = misdirect_stripes_size(BENCH_CAPACITY, stripes);
    void *mem = aligned_alloc(MISDIRECT_LINE, (size + MISDIRECT_LINE - 1)
                                              / MISDIRECT_LINE
                                              * MISDIRECT_LINE);
    misdirect_stripes *t;
    bench_worker w[2];
    pthread_t tid[2];
    pthread_barrier_t go;
    uint64_t counts[MISDIRECT_STAT_COUNT];
    double worst = 0;
    int i;

    if (!mem) {
        perror("aligned_alloc");
        exit(1);
    }
    memset(mem, 0, size);
    t = misdirect_stripes_init(mem, BENCH_CAPACITY, stripes);
    pthread_barrier_init(&go, NULL, threads);
    for (i = 0; i < threads; i++) {
        w[i].t = t;
        w[i].n = n;
        w[i].cpu = ncpu > 1 ? i % ncpu : -1;
        w[i].go = &go;
        pthread_create(&tid[i], NULL, bench_run, &w[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        worst = w[i].ns > worst ? w[i].ns : worst;
    }
    pthread_barrier_destroy(&go);
    misdirect_stripes_read(t, BENCH_SLOT, counts);
    if (counts[MISDIRECT_STAT_CHECKED] != (uint64_t)threads * n) {
        fprintf(stderr, "counters: %llu counted, %llu expected\n",
                (unsigned long long)counts[MISDIRECT_STAT_CHECKED],
                (unsigned long long)threads * n);
        exit(1);
    }
    free(mem);
    return worst;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void bench_row(const char *what, uint32_t stripes, int threads,
                      long n, int rounds, int ncpu)
{
    double ns[BENCH_ROUNDS_MAX];
    int i;

    for (i = 0; i < rounds; i++) {
        ns[i] = bench_round(stripes, threads, n, ncpu);
    }
    qsort(ns, rounds, sizeof(ns[0]), bench_cmp);
    printf("| %s | %u | %d | %.2f | %.2f |\n", what, stripes, threads,
           ns[rounds / 2], ns[0]);
}

int main(int argc, char **argv)
{
    long n = 20000000;
    int rounds = 5, opt;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t stripes = misdirect_stripes_for(sysconf(_SC_NPROCESSORS_CONF));

    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        switch (opt) {
        case 'n':
            n = atol(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-n increments] [-r rounds]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || rounds < 1 || rounds > BENCH_ROUNDS_MAX) {
        fprintf(stderr, "counters: -n at least 1, -r from 1 to %d\n",
                BENCH_ROUNDS_MAX);
        return 2;
    }
    printf("Counting one vhost's requests: %ld increments per thread, "
           "%d rounds, %d CPUs online%s.\n\n", n, rounds, ncpu,
           ncpu > 1 ? ", thread i on CPU i" : " (threads not pinned)");
    printf("| counter | stripes | threads | CPU ns per increment, median "
           "| least |\n|---|---:|---:|---:|---:|\n");
    bench_row("shared (one for all CPUs)", 1, 1, n, rounds, ncpu);
    bench_row("striped (one per CPU)", stripes, 1, n, rounds, ncpu);
    bench_row("shared (one for all CPUs)", 1, 2, n, rounds, ncpu);
    bench_row("striped (one per CPU)", stripes, 2, n, rounds, ncpu);
    return 0;
}
