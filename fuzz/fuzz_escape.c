/*
 * Fuzz target: misdirect_escape_into, through which every piece of
 * client text (SNI, Host, X-Forwarded-Host, Forwarded, scheme, ALPN)
 * reaches a quoted error_log field, a MISDIRECT_* variable or an
 * ErrorDocument page.  A flaw here lets a client forge log fields or lines.
 *
 * Input: the client text (cut at the first NUL, as C strings are).
 * Properties: the output fits the documented 3 * strlen + 1 bytes (the
 * buffer is a heap block of exactly that size, so ASan sees any overrun)
 * and is NUL-terminated; it holds only printable ASCII and never a byte
 * that httpd's error_log escaping rewrites (control bytes, bytes above
 * 0x7e, '"', '\\'), so the field reads back as written; '%' only opens a
 * %xx escape; decoding gives the input back (nothing lost, nothing
 * ambiguous); bytes that need no escaping stay as they are; escaping
 * the output again escapes only its '%'s.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;      /* upper-case hex is not what the module writes */
}

static int needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' || ch == '%';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *in;
    char *out, *again, *dec;
    size_t n, m, i, k, pct = 0;

    fuzz_split(data, size, 1, &fs);
    in = fs.s[0];
    n = strlen(in);
    out = malloc(3 * n + 1);
    if (!out) {
        abort();
    }
    memset(out, 0x7f, 3 * n + 1);
    PROPERTY(misdirect_escape_into(in, out) == out);
    PROPERTY(memchr(out, '\0', 3 * n + 1) != NULL);
    m = strlen(out);
    PROPERTY(m >= n && m <= 3 * n);

    dec = malloc(m + 1);
    if (!dec) {
        abort();
    }
    for (i = 0, k = 0; i < m; i++) {
        unsigned char ch = (unsigned char)out[i];

        PROPERTY(ch >= 0x20 && ch <= 0x7e);
        PROPERTY(ch != '"' && ch != '\\');
        if (ch == '%') {
            int hi, lo;

            PROPERTY(i + 2 < m + 1 && out[i + 1] && out[i + 2]);
            hi = hexval(out[i + 1]);
            lo = hexval(out[i + 2]);
            PROPERTY(hi >= 0 && lo >= 0);
            /* Only what needed it was escaped. */
            PROPERTY(needs_escape((unsigned char)(hi << 4 | lo)));
            dec[k++] = (char)(hi << 4 | lo);
            i += 2;
            pct++;
        }
        else {
            dec[k++] = (char)ch;
        }
    }
    dec[k] = '\0';
    PROPERTY(k == n && memcmp(dec, in, n) == 0);
    free(dec);

    /* Escaping twice: only the '%'s of the first pass change. */
    again = malloc(3 * m + 1);
    if (!again) {
        abort();
    }
    misdirect_escape_into(out, again);
    PROPERTY(strlen(again) == m + 2 * pct);
    free(again);
    free(out);
    fuzz_free(&fs);
    return 0;
}
