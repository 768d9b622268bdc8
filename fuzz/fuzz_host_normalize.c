/*
 * Fuzz target: misdirect_host_normalize, which brings MisdirectAllow
 * entries and IPv6 request hosts to the form core leaves in r->hostname.
 *
 * Input: one byte choosing the output buffer size, then the host.
 * Properties: the buffer is never overrun and a result is NUL-terminated
 * inside it; a result is non-empty, lower case, printable, free of the
 * characters a host cannot hold, and has no trailing dot; normalising is
 * idempotent; an IPv6 literal is canonical whether bracketed or not;
 * upper case and one trailing dot make no difference; a name that is no
 * IP literal is only lower-cased and loses its dot, never rewritten.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

static int normalize_into(const char *in, char **out, size_t outlen)
{
    /* Exactly outlen bytes: ASan catches a write past the end. */
    *out = malloc(outlen ? outlen : 1);
    if (!*out) {
        abort();
    }
    return misdirect_host_normalize(in, *out, outlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *in;
    char *out, *again, *variant;
    size_t outlen, n, i;
    int rc;

    if (size < 1) {
        return 0;
    }
    /* 0..255, and the module's own sizes (64, strlen + 64) now and then */
    outlen = data[0];
    if (outlen == 255) {
        outlen = 300;
    }
    fuzz_split(data + 1, size - 1, 1, &fs);
    in = fs.s[0];
    n = strlen(in);

    rc = normalize_into(in, &out, outlen);
    PROPERTY(rc == 0 || rc == -1);
    PROPERTY(n > 0 || rc == -1);
    if (rc == 0) {
        size_t m;

        PROPERTY(outlen > 0 && memchr(out, '\0', outlen) != NULL);
        m = strlen(out);
        PROPERTY(m > 0);
        PROPERTY(out[m - 1] != '.');
        for (i = 0; i < m; i++) {
            unsigned char ch = (unsigned char)out[i];

            PROPERTY(ch > ' ' && ch < 0x7f);
            PROPERTY(!isupper(ch));
            PROPERTY(ch != '/' && ch != '\\' && ch != '"' && ch != ',');
        }
        /* No empty label survives. */
        PROPERTY(out[0] != '.' && !strstr(out, ".."));
        /* Idempotent, with room to spare. */
        rc = normalize_into(out, &again, m + 1);
        PROPERTY(rc == 0);
        PROPERTY(strcmp(out, again) == 0);
        free(again);

        if (strchr(in, ':') || in[0] == '[') {
            /* Only IPv6 literals hold a colon or a bracket. */
            PROPERTY(misdirect_ip_literal(out) == 6);
        }
        else if (!misdirect_ip_literal(out)) {
            /* A name: lower-cased, one trailing dot dropped, no more. */
            size_t k = n - (in[n - 1] == '.');

            PROPERTY(m == k);
            for (i = 0; i < k; i++) {
                PROPERTY(out[i] == tolower((unsigned char)in[i]));
            }
        }

        /* The same host in upper case, and with a trailing dot, is the
         * same host (IPv6 with a dot is no literal at all). */
        variant = fuzz_strdup(in);
        for (i = 0; i < n; i++) {
            variant[i] = (char)toupper((unsigned char)variant[i]);
        }
        rc = normalize_into(variant, &again, 300);
        PROPERTY(rc == 0 && strcmp(out, again) == 0);
        free(again);
        free(variant);
        if (!strchr(in, ':') && in[0] != '[' && in[n - 1] != '.'
            && n + 1 < outlen) {
            variant = malloc(n + 2);
            if (!variant) {
                abort();
            }
            memcpy(variant, in, n);
            variant[n] = '.';
            variant[n + 1] = '\0';
            rc = normalize_into(variant, &again, outlen);
            PROPERTY(rc == 0 && strcmp(out, again) == 0);
            free(again);
            free(variant);
        }
        /* A bare IPv6 literal and its bracketed form agree. */
        if (strchr(in, ':') && in[0] != '[' && n + 3 <= 64) {
            variant = malloc(n + 3);
            if (!variant) {
                abort();
            }
            variant[0] = '[';
            memcpy(variant + 1, in, n);
            variant[n + 1] = ']';
            variant[n + 2] = '\0';
            rc = normalize_into(variant, &again, 300);
            PROPERTY(rc == 0 && strcmp(out, again) == 0);
            free(again);
            free(variant);
        }
    }
    else if (n > 0 && !strchr(in, ':') && in[0] != '[') {
        /* A refused name is refused for a reason: too long for the
         * buffer, or a character that no host holds, or nothing left. */
        size_t k = n - (in[n - 1] == '.');
        int bad = k == 0 || k >= outlen;

        bad = bad || in[0] == '.';
        for (i = 0; i < k && !bad; i++) {
            unsigned char ch = (unsigned char)in[i];

            /* An empty label ("a..b", "a.."): core refuses such a Host. */
            bad = ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '\\'
                  || ch == '"' || ch == ',' || (ch == '.' && in[i + 1] == '.');
        }
        PROPERTY(bad);
    }
    free(out);
    fuzz_free(&fs);
    return 0;
}
