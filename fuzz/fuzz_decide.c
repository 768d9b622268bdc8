/*
 * Fuzz target: the decision chain misdirect_evaluate -> misdirect_forgive
 * -> misdirect_decide -> misdirect_format_checks, with the facts of a
 * request, the configured actions, the mode and the exemption all taken
 * from the input.
 *
 * Input: 4 bytes of fact bits and the ports, 1 byte per check action,
 * mode, flags, then the absolute-form scheme (NUL-terminated, optional).
 * Properties (each straight from the checks table in docs/checks.md,
 * computed here independently): which checks fire; cert-mismatch and
 * sni-host-mismatch never together; no TLS check on a plain connection;
 * MisdirectAllow leaves only scheme-mismatch, MisdirectTrustedProxy
 * removes exactly the TLS checks; the action is the strongest of the
 * fired checks' actions, never reject under ReportOnly or on an exempt
 * path; the reason is the first rejecting check, else the first
 * reported, else the first that fired; the formatted list names every
 * fired check with its action, in table order, and nothing else.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#include <strings.h>

#define BIT(c) MISDIRECT_BIT(MISDIRECT_CHECK_##c)

static unsigned int spec_fired(const misdirect_facts *f)
{
    unsigned int want = 0;

    if (f->scheme && ((f->tls && !strcasecmp(f->scheme, "http"))
                      || (!f->tls && !strcasecmp(f->scheme, "https")))) {
        want |= BIT(SCHEME);
    }
    if (f->tls && !f->sni_sent && f->name_based) {
        want |= BIT(SNI_MISSING);
    }
    if (f->tls && f->handshake_known && !f->same_vhost) {
        want |= f->cert_covers ? BIT(SNI_HOST) : BIT(CERT);
    }
    if (!f->host_sent || !f->host_known) {
        want |= BIT(UNKNOWN_HOST);
    }
    if (f->host_port != 0 && f->host_port != f->local_port) {
        want |= BIT(PORT);
    }
    return want;
}

/* The formatted list, parsed back: which checks with which actions. */
static void parse_checks(const char *s, const misdirect_decision *d)
{
    unsigned int seen = 0;
    int last = -1;

    while (*s) {
        const char *colon = strchr(s, ':');
        const char *end = strchr(s, ',');
        char name[32], action[16];
        size_t nl, al;
        int c, a;

        PROPERTY(colon != NULL);
        if (!end) {
            end = s + strlen(s);
        }
        PROPERTY(colon < end);
        nl = (size_t)(colon - s);
        al = (size_t)(end - colon - 1);
        PROPERTY(nl < sizeof(name) && al < sizeof(action));
        memcpy(name, s, nl);
        name[nl] = '\0';
        memcpy(action, colon + 1, al);
        action[al] = '\0';
        c = misdirect_check_parse(name);
        a = misdirect_action_parse(action);
        PROPERTY(c >= 0 && a >= 0);
        PROPERTY(c > last);                 /* table order, no repeats */
        PROPERTY(d->fired & MISDIRECT_BIT(c));
        PROPERTY((int)d->check_action[c] == a);
        seen |= MISDIRECT_BIT(c);
        last = c;
        s = *end ? end + 1 : end;
        PROPERTY(*end == '\0' || *s != '\0'); /* no trailing comma */
    }
    PROPERTY(seen == (d->fired & ((1u << MISDIRECT_CHECK_COUNT) - 1)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    misdirect_facts f;
    misdirect_action_e actions[MISDIRECT_CHECK_COUNT];
    misdirect_mode_e mode;
    misdirect_decision d;
    unsigned int fired, forgiven, want, strongest;
    int host_allowed, peer_trusted, exempt, i, first, first_reject,
        first_report;
    char *scheme = NULL, buf[160];

    if (size < 4 + MISDIRECT_CHECK_COUNT + 2) {
        return 0;
    }
    memset(&f, 0, sizeof(f));
    f.tls = data[0] & 1;
    f.handshake_known = data[0] >> 1 & 1;
    f.sni_sent = data[0] >> 2 & 1;
    f.name_based = data[0] >> 3 & 1;
    f.same_vhost = data[0] >> 4 & 1;
    f.cert_covers = data[0] >> 5 & 1;
    f.host_sent = data[0] >> 6 & 1;
    f.host_known = data[0] >> 7 & 1;
    /* Ports: 0 (none given), the usual ones, or anything up to 65535. */
    f.host_port = (data[1] & 3) == 0 ? 0 : (data[1] & 3) == 1 ? 443
                  : (unsigned int)(data[1] << 8 | data[2]);
    f.local_port = (data[3] & 1) ? 443 : (unsigned int)(data[2] << 8
                                                        | data[3]);
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        actions[i] = (misdirect_action_e)(data[4 + i] % 3);
    }
    mode = (data[4 + MISDIRECT_CHECK_COUNT] & 1) ? MISDIRECT_MODE_REPORT_ONLY
                                                 : MISDIRECT_MODE_ON;
    host_allowed = data[5 + MISDIRECT_CHECK_COUNT] & 1;
    peer_trusted = data[5 + MISDIRECT_CHECK_COUNT] >> 1 & 1;
    exempt = data[5 + MISDIRECT_CHECK_COUNT] >> 2 & 1;
    if (data[5 + MISDIRECT_CHECK_COUNT] >> 3 & 1) {
        size_t off = 6 + MISDIRECT_CHECK_COUNT, n = size - off;
        const uint8_t *nul = memchr(data + off, '\0', n);

        if (nul) {
            n = (size_t)(nul - (data + off));
        }
        scheme = malloc(n + 1);
        if (!scheme) {
            abort();
        }
        memcpy(scheme, data + off, n);
        scheme[n] = '\0';
        f.scheme = scheme;
    }

    fired = misdirect_evaluate(&f);
    PROPERTY(fired == spec_fired(&f));
    PROPERTY(!((fired & BIT(CERT)) && (fired & BIT(SNI_HOST))));
    if (!f.tls) {
        PROPERTY(!(fired & MISDIRECT_TLS_CHECKS));
    }

    forgiven = misdirect_forgive(fired, host_allowed, peer_trusted);
    PROPERTY((forgiven & ~fired) == 0);
    want = fired;
    if (host_allowed) {
        want &= BIT(SCHEME);
    }
    if (peer_trusted) {
        want &= ~MISDIRECT_TLS_CHECKS;
    }
    PROPERTY(forgiven == want);

    memset(&d, 0xA5, sizeof(d));
    misdirect_decide(forgiven, actions, mode, exempt, &d);
    PROPERTY(d.fired == forgiven);
    strongest = MISDIRECT_ALLOW;
    first = first_reject = first_report = -1;
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        misdirect_action_e a = MISDIRECT_ALLOW;

        if (forgiven & MISDIRECT_BIT(i)) {
            a = exempt ? MISDIRECT_ALLOW : actions[i];
            if (a == MISDIRECT_REJECT && mode == MISDIRECT_MODE_REPORT_ONLY) {
                a = MISDIRECT_REPORT;
            }
            if (first < 0) {
                first = i;
            }
            if (a == MISDIRECT_REJECT && first_reject < 0) {
                first_reject = i;
            }
            if (a == MISDIRECT_REPORT && first_report < 0) {
                first_report = i;
            }
            if (a > strongest) {
                strongest = a;
            }
        }
        PROPERTY(d.check_action[i] == a);
    }
    PROPERTY(d.action == strongest);
    if (exempt || mode == MISDIRECT_MODE_REPORT_ONLY) {
        PROPERTY(d.action != MISDIRECT_REJECT);
    }
    if (!forgiven) {
        PROPERTY(d.action == MISDIRECT_ALLOW);
    }
    else {
        PROPERTY(forgiven & MISDIRECT_BIT(d.reason));
        PROPERTY((int)d.reason == (first_reject >= 0 ? first_reject
                                   : first_report >= 0 ? first_report
                                   : first));
        PROPERTY((d.action == MISDIRECT_REJECT)
                 == (d.check_action[d.reason] == MISDIRECT_REJECT));
    }

    /* The module's buffer size; the list must always fit whole. */
    memset(buf, 0x5A, sizeof(buf));
    PROPERTY(misdirect_format_checks(&d, buf, sizeof(buf)) == buf);
    PROPERTY(memchr(buf, '\0', sizeof(buf)) != NULL);
    parse_checks(buf, &d);

    /* Names round-trip through the parsers the directives use. */
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        PROPERTY(misdirect_check_parse(misdirect_check_name(i)) == i);
    }
    for (i = MISDIRECT_ALLOW; i <= MISDIRECT_REJECT; i++) {
        PROPERTY(misdirect_action_parse(misdirect_action_name(i)) == i);
    }
    free(scheme);
    return 0;
}
