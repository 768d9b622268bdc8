/*
 * mod_misdirect: the counters for Prometheus, in its text format 0.0.4,
 * or OpenMetrics 1.0 when Accept asks (the misdirect-metrics handler of
 * misdirect_status.c).
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_counters.h"

#include "http_protocol.h"

#include "apr_hash.h"
#include "apr_strings.h"

static const char misdirect_prom_type[] =
    "text/plain; version=0.0.4; charset=utf-8";
static const char misdirect_om_type[] =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
#define MISDIRECT_PREFIX "apache_misdirect_"

/* A server as misdirect-metrics names it.  Its labels are escaped once
 * per configuration, so that a scrape only reads counters and writes. */
typedef struct {
    server_rec *s;
    const char *labels;            /* vhost="...",address="..." */
} misdirect_metric_server;

/* This generation's servers in configuration order. */
static misdirect_metric_server *misdirect_metric_servers;
static int misdirect_metric_count;

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
    MISDIRECT_FAM_ALL_CAUSES,
    MISDIRECT_FAM_VHOST_CHECKED,
    MISDIRECT_FAM_MISDIRECTED,
    MISDIRECT_FAM_FIRINGS,
    MISDIRECT_FAM_REFUSED,
    MISDIRECT_FAM_CAUSES,
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
    { "all_causes", 1,
      "Findings and refusals the module explained, by their most likely "
      "cause, all virtual hosts; always present." },
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
      "virtual host with a finding." },
    { "causes", 1,
      "Findings and refusals the module explained, by their most likely "
      "cause, per virtual host where that cause was seen." }
};

/* The action a request or a check was given, as a label, in the order
 * of the outcomes after MISDIRECT_OUT_FIRED. */
static const char *const misdirect_out_action[MISDIRECT_OUTCOMES] = {
    NULL, "action=\"reject\"", "action=\"report\"", "action=\"allow\"",
    "action=\"would-reject\""
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
#define MISDIRECT_CAUSE_LABEL(id, name) "cause=\"" name "\"",
static const char *const misdirect_cause_labels[] = {
    MISDIRECT_CAUSE_TABLE(MISDIRECT_CAUSE_LABEL)
};
#undef MISDIRECT_CAUSE_LABEL

#define MISDIRECT_REFUSALS \
    ((int)(sizeof(misdirect_refusals) / sizeof(misdirect_refusals[0])))

/* A label value as both formats want it: UTF-8 (misdirect_text_utf8), with
 * backslash, double quote and newline escaped. */
static const char *misdirect_label_value(apr_pool_t *p, const char *s)
{
    const char *in = misdirect_text_utf8(p, s ? s : "");
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
 * one their slot is keyed by (misdirect_counters_identities), so that moving
 * lines around them renames nothing.  Two address lists that only print
 * alike (a wildcard on IPv4 and on IPv6) take the next free turn. */
void misdirect_metrics_prepare(apr_pool_t *pconf, apr_pool_t *ptemp,
                               server_rec *main_s)
{
    apr_hash_t *seen = apr_hash_make(ptemp);
    misdirect_identity *id =
        misdirect_counters_identities(ptemp, main_s, &misdirect_metric_count);
    int i;

    misdirect_metric_servers = apr_palloc(pconf, misdirect_metric_count
                                          * sizeof(*misdirect_metric_servers));
    for (i = 0; i < misdirect_metric_count; i++) {
        server_rec *s = id[i].s;
        const char *base, *labels;
        int dup;

        base = apr_psprintf(pconf, "vhost=\"%s\",address=\"%s\"",
                            misdirect_label_value(ptemp,
                                                  misdirect_vhosts_name(s)),
                            misdirect_label_value(ptemp,
                                                  misdirect_vhosts_address(
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

const char *misdirect_metrics_type(request_rec *r)
{
    return misdirect_wants_openmetrics(apr_table_get(r->headers_in, "Accept"))
           ? misdirect_om_type : misdirect_prom_type;
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

/* The causes of a vhost (only those seen) or of all (every one). */
static void misdirect_metrics_causes(request_rec *r, misdirect_family_e f,
                                     const char *vhost,
                                     const misdirect_counts *c)
{
    int k;

    for (k = 0; k < MISDIRECT_CAUSE_COUNT; k++) {
        if (!*vhost || c->n[MISDIRECT_STAT_CAUSE(k)]) {
            misdirect_metrics_sample(r, f, vhost, misdirect_cause_labels[k],
                                     "", c->n[MISDIRECT_STAT_CAUSE(k)]);
        }
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

void misdirect_metrics(request_rec *r, const char *type)
{
    int om = type == misdirect_om_type;
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
                                 misdirect_counters_started()));

    /* The series that every scrape has, zero included, so that a server
     * with no misdirected request at all scrapes as a few lines whatever
     * its number of vhosts, and so that rate() and increase() see the
     * first misdirected request of all (a series that appears at 1 shows
     * them no increase).  Summed over all vhosts, also those a graceful
     * restart removed, from one reading of each slot. */
    misdirect_counters_totals(&c);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_CHECKED);
    misdirect_metrics_sample(r, MISDIRECT_FAM_CHECKED, "", "", "",
                             c.n[MISDIRECT_STAT_CHECKED]);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_ALL_MISDIRECTED);
    misdirect_metrics_actions(r, MISDIRECT_FAM_ALL_MISDIRECTED, "", &c);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_ALL_REFUSED);
    misdirect_metrics_refusals(r, MISDIRECT_FAM_ALL_REFUSED, "", &c);
    misdirect_metrics_family(r, om, MISDIRECT_FAM_ALL_CAUSES);
    misdirect_metrics_causes(r, MISDIRECT_FAM_ALL_CAUSES, "", &c);

    /* Per vhost, only those with a finding (a check fired, or a refusal
     * was counted), each read once so that every family shows the same
     * reading.  Findings only accumulate (until a full restart zeroes
     * them), so a vhost, once shown, stays. */
    for (i = 0; i < misdirect_metric_count; i++) {
        misdirect_counters_read(ms[i].s, &c);
        if (misdirect_counters_findings(&c)) {
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
    misdirect_metrics_family(r, om, MISDIRECT_FAM_CAUSES);
    for (i = 0; i < shown->nelts; i++) {
        misdirect_metrics_causes(r, MISDIRECT_FAM_CAUSES, v[i].labels,
                                 &v[i].c);
    }

    if (om) {
        ap_rputs("# EOF\n", r);
    }
}

