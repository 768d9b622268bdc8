/*
 * mod_misdirect fuzz targets: shared helpers.
 *
 * Each target links src/misdirect_logic.c alone (it needs no httpd) and
 * checks properties of the result, not only that nothing crashed: a
 * failed property aborts, which libFuzzer reports as a crash with the
 * input that caused it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#ifndef MISDIRECT_FUZZ_COMMON_H
#define MISDIRECT_FUZZ_COMMON_H

#include "misdirect_logic.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed property: say which and where, then abort so that libFuzzer
 * saves the input as a crash artifact. */
#define PROPERTY(cond)                                                   \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "PROPERTY FAILED: %s (%s:%d)\n", #cond,      \
                    __FILE__, __LINE__);                                 \
            abort();                                                     \
        }                                                                \
    } while (0)

/* The input cut into strings at NUL bytes: what a client can send as a
 * host or SNI never holds a NUL (core and OpenSSL refuse it), so NUL is
 * a free separator.  Strings are separate heap blocks, so ASan sees any
 * read past one's end. */
typedef struct {
    char *s[16];
    int n;
} fuzz_strings;

static inline void fuzz_split(const uint8_t *data, size_t size, int max,
                              fuzz_strings *out)
{
    size_t start = 0, i;

    out->n = 0;
    if (max > 16) {
        max = 16;
    }
    for (i = 0; i <= size && out->n < max; i++) {
        if (i == size || data[i] == '\0') {
            size_t len = i - start;
            char *p = malloc(len + 1);

            if (!p) {
                abort();
            }
            memcpy(p, data + start, len);
            p[len] = '\0';
            out->s[out->n++] = p;
            start = i + 1;
        }
    }
    /* Fewer pieces than asked for: the missing ones are empty. */
    while (out->n < max) {
        char *p = malloc(1);

        if (!p) {
            abort();
        }
        p[0] = '\0';
        out->s[out->n++] = p;
    }
}

static inline void fuzz_free(fuzz_strings *fs)
{
    int i;

    for (i = 0; i < fs->n; i++) {
        free(fs->s[i]);
    }
    fs->n = 0;
}

static inline char *fuzz_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);

    if (!p) {
        abort();
    }
    memcpy(p, s, n + 1);
    return p;
}

/* a followed by b, in a new string. */
static inline char *fuzz_concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 1);

    if (!p) {
        abort();
    }
    memcpy(p, a, na);
    memcpy(p + na, b, nb + 1);
    return p;
}

/* Reference glob with '*' (any run) and '?' (one character), ASCII case
 * folded: dynamic programming, written from the contract in
 * misdirect_logic.h, to compare the module's backtracking matcher with. */
static inline int fuzz_ref_glob(const char *pat, const char *str)
{
    size_t np = strlen(pat), ns = strlen(str), i, j;
    unsigned char *row = calloc(ns + 1, 1), *next = calloc(ns + 1, 1);
    int r;

    if (!row || !next) {
        abort();
    }
    /* row[j]: does pat[i..] match str[j..]?  Built from the end. */
    row[ns] = 1;
    for (i = np; i-- > 0;) {
        unsigned char pc = (unsigned char)pat[i];

        next[ns] = pc == '*' ? row[ns] : 0;
        for (j = ns; j-- > 0;) {
            unsigned char sc = (unsigned char)str[j];

            if (pc == '*') {
                next[j] = row[j] || next[j + 1];
            }
            else {
                next[j] = (pc == '?' || tolower(pc) == tolower(sc))
                          && row[j + 1];
            }
        }
        memcpy(row, next, ns + 1);
    }
    r = row[0];
    free(row);
    free(next);
    return r;
}

#endif /* MISDIRECT_FUZZ_COMMON_H */
