/*
 * Fuzz target: misdirect_wildcard_match, the glob of wildcard
 * ServerAlias and MisdirectAllow entries, applied to the request's host.
 * Both the pattern and the host are fuzzed.
 *
 * Input: pattern NUL host.
 * Properties: the result equals a reference matcher (dynamic
 * programming over the same contract: '*' any run, '?' one character,
 * ASCII case folded); "*" matches everything; a pattern matches itself
 * and its own upper-case form; a pattern without '*' or '?' matches
 * exactly the hosts that equal it ignoring case; a pattern that matches
 * also matches when both gain the same suffix or when '*' is prepended.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#include <strings.h>

static char *upper(const char *s)
{
    char *u = fuzz_strdup(s);
    size_t i;

    for (i = 0; u[i]; i++) {
        u[i] = (char)toupper((unsigned char)u[i]);
    }
    return u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *pat, *host;
    char *u, *p2, *h2;
    int got;

    /* The module's matcher is linear in practice, the reference is
     * quadratic: keep inputs at the size of real host names. */
    if (size > 1100) {
        return 0;
    }
    fuzz_split(data, size, 2, &fs);
    pat = fs.s[0];
    host = fs.s[1];

    got = misdirect_wildcard_match(pat, host);
    PROPERTY(got == 0 || got == 1);
    PROPERTY(got == fuzz_ref_glob(pat, host));

    PROPERTY(misdirect_wildcard_match("*", host));
    PROPERTY(misdirect_wildcard_match("*", pat));
    PROPERTY(misdirect_wildcard_match(pat, pat));
    u = upper(pat);
    PROPERTY(misdirect_wildcard_match(pat, u));
    PROPERTY(misdirect_wildcard_match(u, pat));
    free(u);
    if (!strpbrk(pat, "*?")) {
        PROPERTY(got == !strcasecmp(pat, host));
    }
    if (got) {
        p2 = fuzz_concat("*", pat);
        PROPERTY(misdirect_wildcard_match(p2, host));
        free(p2);
        p2 = fuzz_concat(pat, ".example");
        h2 = fuzz_concat(host, ".EXAMPLE");
        PROPERTY(misdirect_wildcard_match(p2, h2));
        free(p2);
        free(h2);
    }
    fuzz_free(&fs);
    return 0;
}
