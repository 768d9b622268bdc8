/*
 * Fuzz target: misdirect_ip_literal, which decides whether the request's
 * host or the SNI is an IP address (checked against IP SANs, and named
 * in the diagnosis hint).
 *
 * Input: the host.
 * Properties: the answer is 0, 4 or 6 and agrees with inet_pton; an IPv4
 * literal holds no colon and normalises to itself, an IPv6 literal
 * holds one and normalises to a canonical literal that is still IPv6
 * and equals its bracketed form; a bracketed form normalises to an IPv6
 * literal; what is no literal is never treated as one after normalising
 * either, unless normalising dropped a trailing dot (then it may become
 * an IPv4 literal: "127.0.0.1.").
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#include <arpa/inet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *in;
    unsigned char addr[16];
    char out[300], out2[300], *br;
    size_t n;
    int kind;

    fuzz_split(data, size, 1, &fs);
    in = fs.s[0];
    n = strlen(in);
    kind = misdirect_ip_literal(in);
    PROPERTY(kind == 0 || kind == 4 || kind == 6);
    PROPERTY((kind == 4) == (inet_pton(AF_INET, in, addr) == 1));
    PROPERTY((kind == 6) == (inet_pton(AF_INET6, in, addr) == 1));
    if (kind == 4) {
        PROPERTY(!strchr(in, ':'));
        PROPERTY(misdirect_host_normalize(in, out, sizeof(out)) == 0);
        PROPERTY(strcmp(in, out) == 0);
    }
    else if (kind == 6) {
        PROPERTY(strchr(in, ':') != NULL);
        PROPERTY(misdirect_host_normalize(in, out, sizeof(out)) == 0);
        PROPERTY(misdirect_ip_literal(out) == 6);
        br = malloc(n + 3);
        if (!br) {
            abort();
        }
        br[0] = '[';
        memcpy(br + 1, in, n);
        br[n + 1] = ']';
        br[n + 2] = '\0';
        PROPERTY(misdirect_host_normalize(br, out2, sizeof(out2)) == 0);
        PROPERTY(strcmp(out, out2) == 0);
        free(br);
    }
    else if (in[0] == '[') {
        /* A bracketed IPv6 literal is no literal as it stands, but
         * normalises to one. */
        if (misdirect_host_normalize(in, out, sizeof(out)) == 0) {
            PROPERTY(misdirect_ip_literal(out) == 6);
        }
    }
    else if (misdirect_host_normalize(in, out, sizeof(out)) == 0) {
        PROPERTY(misdirect_ip_literal(out) != 6);
        PROPERTY(misdirect_ip_literal(out) == 0
                 || (n > 0 && in[n - 1] == '.'));
    }
    fuzz_free(&fs);
    return 0;
}
