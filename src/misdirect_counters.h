/*
 * mod_misdirect: what the counters and the pages that show them share.
 * Private to the module's files, like misdirect_private.h; the counting
 * calls of the request path are declared there.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_COUNTERS_H
#define MISDIRECT_COUNTERS_H

#include "misdirect_private.h"
#include "misdirect_stripes.h"

/* One reading of a vhost's counters, or of all of them. */
typedef struct {
    uint64_t n[MISDIRECT_STAT_COUNT];
} misdirect_counts;

/* Who a server is to its counters, in configuration order.  Two vhosts
 * alike in name and address (the lint warns) still count apart, by their
 * turn among them: the first keeps the plain key, the one requests for
 * the name reach; the metrics name the others by the same turn, so that
 * a series and its counters stay together whatever lines move above
 * them. */
typedef struct {
    server_rec *s;
    apr_uint64_t key;
    int turn;                      /* 1, or 2 and up for a duplicate */
} misdirect_identity;

/* misdirect_counters.c: storage that survives graceful restarts. */

/* Gives every server its counters; 0 when there are none (logged). */
MISDIRECT_INTERNAL int misdirect_counters_post_config(apr_pool_t *ptemp,
                                                      server_rec *main_s);
MISDIRECT_INTERNAL void misdirect_counters_register_hooks(void);
/* Are there counters to show (this generation has a segment)? */
MISDIRECT_INTERNAL int misdirect_counters_ready(void);
/* Does some vhost have Misdirect on or report-only? */
MISDIRECT_INTERNAL int misdirect_counters_active(void);
/* When the counters were last zeroed: a start or a full restart. */
MISDIRECT_INTERNAL apr_time_t misdirect_counters_started(void);
MISDIRECT_INTERNAL void misdirect_counters_read(server_rec *s,
                                                misdirect_counts *out);
/* All vhosts', also those a graceful restart removed. */
MISDIRECT_INTERNAL void misdirect_counters_totals(misdirect_counts *out);
/* A check fired, or a refusal was counted. */
MISDIRECT_INTERNAL int misdirect_counters_findings(const misdirect_counts *c);
MISDIRECT_INTERNAL misdirect_identity *
misdirect_counters_identities(apr_pool_t *p, server_rec *main_s, int *count);

/* misdirect_metrics.c: misdirect-metrics, for Prometheus. */

MISDIRECT_INTERNAL void misdirect_metrics_prepare(apr_pool_t *pconf,
                                                  apr_pool_t *ptemp,
                                                  server_rec *main_s);
/* The content type that r's Accept asks for: OpenMetrics or 0.0.4. */
MISDIRECT_INTERNAL const char *misdirect_metrics_type(request_rec *r);
MISDIRECT_INTERNAL void misdirect_metrics(request_rec *r, const char *type);

#endif /* MISDIRECT_COUNTERS_H */
