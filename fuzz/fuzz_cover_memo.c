/*
 * Fuzz target: the certificate coverage memo (misdirect_cover_key, _get,
 * _put), which stands between a request and OpenSSL.
 *
 * Input: a program of 6-byte operations on a memo of 8 slots, so that
 * keys crowd and overwrite each other: a byte that chooses put or get
 * and the answer to put, then the handshake vhost, certificate slot,
 * request vhost and name number of the key, each one byte (the vhost
 * bytes scaled up so that large indices are tried too).
 * Properties: a key is 0 exactly when a field is out of range; two
 * different in-range field tuples give different keys; a get answers -1
 * or the answer last put for that very key, never another key's; right
 * after a put, the get of that key answers what was put.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#define FUZZ_KEYS 64

typedef struct {
    unsigned int hs, cert, rs;
    int name;
    uint64_t key;
    int answer;                               /* -1: never put */
} fuzz_entry;

static int fuzz_in_range(unsigned int hs, unsigned int cert,
                         unsigned int rs, int name)
{
    return hs < (1u << 22) && rs < (1u << 22) && cert < 8 && name > 0
           && name < (1 << 15);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t slots[8] = { 0 };
    misdirect_cover_memo memo = { slots, 7 };
    fuzz_entry seen[FUZZ_KEYS];
    int nseen = 0, i;
    size_t at;

    PROPERTY(misdirect_cover_get(NULL, 1) == -1);
    for (at = 0; at + 6 <= size; at += 6) {
        const uint8_t *op = data + at;
        unsigned int hs = (unsigned int)op[1] * 16449u;
        unsigned int cert = op[2] % 10;
        unsigned int rs = (unsigned int)op[3] * 16449u;
        int name = (int)op[4] * 131 - 2;
        uint64_t key = misdirect_cover_key(hs, cert, rs, name);
        fuzz_entry *e = NULL;

        PROPERTY((key != 0) == fuzz_in_range(hs, cert, rs, name));
        for (i = 0; i < nseen; i++) {
            int same = seen[i].hs == hs && seen[i].cert == cert
                       && seen[i].rs == rs && seen[i].name == name;

            if (key && seen[i].key) {
                PROPERTY(same == (seen[i].key == key));
            }
            if (same) {
                e = &seen[i];
            }
        }
        if (!e && nseen < FUZZ_KEYS) {
            e = &seen[nseen++];
            e->hs = hs;
            e->cert = cert;
            e->rs = rs;
            e->name = name;
            e->key = key;
            e->answer = -1;
        }
        if (op[0] & 1) {
            int covers = (op[0] >> 1) & 1;

            misdirect_cover_put(&memo, key, covers);
            if (e && key) {
                e->answer = covers;
            }
            PROPERTY(misdirect_cover_get(&memo, key) == (key ? covers : -1));
        }
        else {
            int got = misdirect_cover_get(&memo, key);

            PROPERTY(key || got == -1);
            if (e) {
                PROPERTY(got == -1 || got == e->answer);
            }
        }
    }
    /* Whatever the program did, no slot answers for a key never put. */
    for (i = 0; i < nseen; i++) {
        int got = misdirect_cover_get(&memo, seen[i].key);

        PROPERTY(got == -1 || got == seen[i].answer);
    }
    return 0;
}
