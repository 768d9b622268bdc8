/*
 * Fuzz target: misdirect_hello_sni, which reads the SNI out of each TLS
 * connection's ClientHello, bytes the client chose, before OpenSSL has
 * checked them.
 *
 * Input: the handshake message (type, length, body).
 * Properties: the answer is -1 or a length that fits in the message;
 * the name copied out is terminated inside the buffer, never longer than
 * the answer, and equals the message's bytes at the name's place; the
 * answer does not depend on the size of the output buffer; -1 leaves
 * nothing to read.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#define _GNU_SOURCE                 /* memmem */

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char big[300], small[8];
    unsigned char *msg;
    int n, m;

    /* A heap copy of exactly the input, so ASan sees any read past it. */
    msg = malloc(size ? size : 1);
    if (!msg) {
        abort();
    }
    memcpy(msg, data, size);
    memset(big, 'x', sizeof(big));
    n = misdirect_hello_sni(msg, size, big, sizeof(big));
    PROPERTY(n >= -1);
    PROPERTY(n < 0 || (size_t)n + 4 + 2 + 32 + 1 + 2 + 1 + 2 + 4 + 5
                      <= size);
    if (n >= 0) {
        size_t len = strnlen(big, sizeof(big));

        PROPERTY(len < sizeof(big));
        PROPERTY(len <= (size_t)n);
        PROPERTY(memmem(msg, size, big, len) != NULL);
    }
    m = misdirect_hello_sni(msg, size, small, sizeof(small));
    PROPERTY(m == n);
    if (m >= 0) {
        PROPERTY(strnlen(small, sizeof(small)) < sizeof(small));
        PROPERTY(strncmp(small, big, sizeof(small) - 1) == 0);
    }
    free(msg);
    return 0;
}
