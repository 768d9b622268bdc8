/*
 * Fuzz target: misdirect_host_matches, which tells whether the request's
 * host is one of a vhost's names (ServerName, ServerAlias, wildcard
 * ServerAlias), and so whether unknown-host fires.
 *
 * Input: host NUL server_name NUL flags NUL entries..., the two flag
 * bytes choosing how many entries there are, which are exact names and
 * which wildcards, and where NULL holes are (core can leave NULLs in its
 * lists).
 * Properties: the result is exactly "equal to ServerName, or equal to an
 * exact name, or matched by a wildcard", all case-insensitive, computed
 * here independently, and names the first literal name that matched (the
 * key of the coverage memo); the host always matches a list that holds
 * it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *host, *server_name, *names[12], *wild[12];
    unsigned int flags;
    int nnames = 0, nwild = 0, i, want, wild_hit, got;

    if (size > 2000) {
        return 0;
    }
    fuzz_split(data, size, 16, &fs);
    host = fs.s[0];
    server_name = fs.s[1];
    /* flags: bit i says entry i is a wildcard, bits 12-15 how many
     * entries there are (0..12), a few of them NULL holes; bits 12-13
     * with bit 0 drop the ServerName. */
    flags = (unsigned char)fs.s[2][0];
    if (fs.s[2][0]) {
        flags |= (unsigned int)(unsigned char)fs.s[2][1] << 8;
    }
    if ((flags & 0x3000) == 0x3000 && (flags & 1)) {
        server_name = NULL;
    }
    /* The reference answer names the first literal name that matches,
     * and only then a wildcard. */
    want = server_name && !strcasecmp(host, server_name)
           ? MISDIRECT_NAME_SERVER : 0;
    wild_hit = 0;
    for (i = 0; i < (int)((flags >> 12) % 13); i++) {
        const char *v = (i * 7 + flags) % 11 == 0 ? NULL : fs.s[3 + i];

        if (flags & (1u << i)) {
            wild[nwild++] = v;
            wild_hit |= v && fuzz_ref_glob(v, host);
        }
        else {
            if (!want && v && !strcasecmp(host, v)) {
                want = MISDIRECT_NAME_ALIAS(nnames);
            }
            names[nnames++] = v;
        }
    }
    if (!want && wild_hit) {
        want = MISDIRECT_NAME_PATTERN;
    }
    got = misdirect_host_matches(host, server_name, nnames ? names : NULL,
                                 nnames, nwild ? wild : NULL, nwild);
    PROPERTY(got == want);

    /* Empty lists and no ServerName: nothing matches. */
    PROPERTY(!misdirect_host_matches(host, NULL, NULL, 0, NULL, 0));
    /* The host in any slot matches. */
    PROPERTY(misdirect_host_matches(host, host, NULL, 0, NULL, 0));
    names[0] = host;
    PROPERTY(misdirect_host_matches(host, NULL, names, 1, NULL, 0));
    wild[0] = "*";
    PROPERTY(misdirect_host_matches(host, NULL, NULL, 0, wild, 1));
    fuzz_free(&fs);
    return 0;
}
