/*
 * mod_misdirect: the counters as pages: a section in mod_status's
 * /server-status (HTML and ?auto) and the misdirect-status handler
 * (JSON, or a plain-text table with ?text).  The same handler serves
 * misdirect-metrics, whose format misdirect_metrics.c writes.
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
 * What is counted, and for how long, is said in misdirect_counters.c.
 */

#include "misdirect_counters.h"

#include "ap_mpm.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_status.h"

#include "apr_optional_hooks.h"
#include "apr_strings.h"
#include "apr_time.h"

#define MISDIRECT_HANDLER  "misdirect-status"
#define MISDIRECT_METRICS  "misdirect-metrics"

/* Stable names: JSON keys and ?auto keys are an interface
 * (docs/counters.md). */
static const char *const misdirect_stat_json[MISDIRECT_STAT_CHECKS] = {
    "checked", "fired", "rejected", "reported", "allowed", "would_reject",
    "mod_ssl_421", "mod_ssl_400", "mod_ssl_403", "other_421"
};
static const char *const misdirect_stat_auto[MISDIRECT_STAT_CHECKS] = {
    "Checked", "Fired", "Rejected", "Reported", "Allowed", "WouldReject",
    "ModSSL421", "ModSSL400", "ModSSL403", "Other421"
};
static const char *const misdirect_out_json[MISDIRECT_OUTCOMES] = {
    "fired", "rejected", "reported", "allowed", "would_reject"
};
static const char *const misdirect_out_auto[MISDIRECT_OUTCOMES] = {
    "Fired", "Rejected", "Reported", "Allowed", "WouldReject"
};

/* ------------------------------------------------------------------ */
/* Describing                                                         */

static const char *misdirect_mode_name(server_rec *s)
{
    int mode = misdirect_config_mode(misdirect_config_srv(s));

    return mode == MISDIRECT_MODE_OFF ? "off"
           : mode == MISDIRECT_MODE_REPORT_ONLY ? "report-only" : "on";
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
    ap_rprintf(r, "%s  },\n%s  \"causes\": {", indent, indent);
    for (i = 0; i < MISDIRECT_CAUSE_COUNT; i++) {
        ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, i ? ", " : "",
                   misdirect_cause_name(i), c->n[MISDIRECT_STAT_CAUSE(i)]);
    }
    ap_rprintf(r, "}\n%s}", indent);
}

static void misdirect_json(request_rec *r)
{
    apr_pool_t *p = r->pool;
    misdirect_counts c;
    server_rec **list;
    apr_time_t started = misdirect_counters_started();
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
               misdirect_text_json_str(p, MISDIRECT_LIFETIME));
    misdirect_counters_totals(&c);
    misdirect_json_counts(r, &c, "  ");
    ap_rputs(",\n  \"vhosts\": [\n", r);
    list = misdirect_vhosts_all(p, ap_server_conf, &n);
    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        misdirect_counters_read(s, &c);
        ap_rprintf(r, "    {\n      \"server_name\": %s,\n"
                   "      \"address\": %s,\n"
                   "      \"defined_in\": %s,\n"
                   "      \"main_server\": %s,\n"
                   "      \"mode\": \"%s\",\n"
                   "      \"counters\": ",
                   misdirect_text_json_str(p, misdirect_vhosts_name(s)),
                   misdirect_text_json_str(p,
                                           misdirect_vhosts_address(p, s,
                                                                    is_main)),
                   misdirect_text_json_str(p, is_main ? NULL
                                         : misdirect_vhosts_where(p, s)),
                   is_main ? "true" : "false",
                   misdirect_mode_name(s));
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
    server_rec **list = misdirect_vhosts_all(p, ap_server_conf, &n);

    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        wname = misdirect_width(p, misdirect_vhosts_name(s), wname);
        waddr = misdirect_width(p, misdirect_vhosts_address(p, s, is_main),
                                waddr);
        wdef = misdirect_width(p, is_main ? "(main server)"
                               : misdirect_vhosts_where(p, s), wdef);
    }

    ap_rprintf(r, "mod_misdirect counters since %s (generation %d)\n%s\n\n",
               misdirect_iso_time(p, misdirect_counters_started()),
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

        misdirect_counters_read(s, &c);
        misdirect_text_row(r, html, misdirect_vhosts_name(s), wname,
                           misdirect_vhosts_address(p, s, is_main), waddr,
                           is_main ? "(main server)"
                           : misdirect_vhosts_where(p, s), wdef,
                           misdirect_mode_name(s),
                           &c);
    }
    misdirect_counters_totals(&c);
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
    ap_rprintf(r, "\n%-17s  explained\n", "cause (total)");
    for (i = 0; i < MISDIRECT_CAUSE_COUNT; i++) {
        ap_rprintf(r, "%-17s  %9" APR_UINT64_T_FMT "\n",
                   misdirect_cause_name(i), c.n[MISDIRECT_STAT_CAUSE(i)]);
    }
}

/* ------------------------------------------------------------------ */
/* mod_status                                                         */

static void misdirect_status_auto(request_rec *r)
{
    misdirect_counts c;
    int k, i, o;

    misdirect_counters_totals(&c);
    ap_rprintf(r, "MisdirectStarted: %" APR_TIME_T_FMT "\n",
               apr_time_sec(misdirect_counters_started()));
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
    for (i = 0; i < MISDIRECT_CAUSE_COUNT; i++) {
        ap_rprintf(r, "MisdirectCause_%s: %" APR_UINT64_T_FMT "\n",
                   misdirect_cause_name(i), c.n[MISDIRECT_STAT_CAUSE(i)]);
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

    misdirect_counters_totals(&c);
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
    list = misdirect_vhosts_all(p, ap_server_conf, &n);
    for (i = 0; i < n; i++) {
        server_rec *s = list[i];
        int is_main = i == 0;

        misdirect_counters_read(s, &c);
        if (!misdirect_counters_findings(&c)) {
            quiet++;
            continue;
        }
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td>",
                   misdirect_text_str(p, misdirect_vhosts_name(s), 1),
                   misdirect_text_str(p, misdirect_vhosts_address(p, s,
                                                                  is_main),
                                      1),
                   misdirect_text_str(p, is_main ? "(main server)"
                                      : misdirect_vhosts_where(p, s), 1));
        misdirect_html_cells(r, &c);
        ap_rputs("</tr>\n", r);
    }
    misdirect_counters_totals(&c);
    ap_rputs("<tr><td><b>total</b></td><td></td><td></td>", r);
    misdirect_html_cells(r, &c);
    ap_rprintf(r, "</tr>\n</table>\n<p>%d virtual host%s without findings "
               "not shown.</p>\n", quiet, quiet == 1 ? "" : "s");
}

/* mod_status's optional hook: a section of /server-status, and Key:
 * value lines in its ?auto form. */
static int misdirect_status_hook(request_rec *r, int flags)
{
    if (!misdirect_counters_ready() || !misdirect_counters_active()) {
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
               misdirect_iso_time(r->pool, misdirect_counters_started()),
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
    MISDIRECT_FORMAT_METRICS
} misdirect_format_e;

static int misdirect_status_handler(request_rec *r)
{
    misdirect_format_e format;
    const char *type;

    /* Every request passes here: testing the first byte spares the
     * others two strcmp() calls, 65 of an accepted request's 51,000
     * instructions (0.13%, make bench when the test was added). */
    if (!r->handler || (r->handler[0] != MISDIRECT_HANDLER[0]
                        && r->handler[0] != MISDIRECT_METRICS[0])) {
        return DECLINED;
    }
    if (!strcmp(r->handler, MISDIRECT_HANDLER)) {
        format = misdirect_args_have(r->args, "text")
                 ? MISDIRECT_FORMAT_TEXT : MISDIRECT_FORMAT_JSON;
        type = format == MISDIRECT_FORMAT_TEXT ? "text/plain; charset=utf-8"
                                               : "application/json";
    }
    else if (!strcmp(r->handler, MISDIRECT_METRICS)) {
        format = MISDIRECT_FORMAT_METRICS;
        type = misdirect_metrics_type(r);
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
    if (!misdirect_counters_ready()) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, MISDIRECT_LOGNO(041)
                      "counters unavailable (see the startup log)");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_set_content_type(r, type);
    /* A snapshot: never worth caching. */
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    switch (format) {
    case MISDIRECT_FORMAT_TEXT:
        misdirect_text(r, 0);
        break;
    case MISDIRECT_FORMAT_METRICS:
        misdirect_metrics(r, type);
        break;
    default:
        misdirect_json(r);
        break;
    }
    return OK;
}

int misdirect_status_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                                 server_rec *main_s)
{
    if (misdirect_counters_post_config(ptemp, main_s)) {
        misdirect_metrics_prepare(pconf, ptemp, main_s);
    }
    return OK;
}

void misdirect_status_register_hooks(apr_pool_t *p)
{
    (void)p;
    misdirect_counters_register_hooks();
    ap_hook_handler(misdirect_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, misdirect_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
