/*
 * Fuzz target: misdirect_path_under, which decides whether a request's
 * (normalised) URL-path falls under a MisdirectExempt prefix, and so
 * whether a request is exempt from rejection.  An exemption that reaches
 * too far lets a misdirected request through.
 *
 * Input: path NUL prefix.
 * Properties: the result equals the contract computed independently
 * ("starts with prefix, and the prefix ends in '/' or the path ends or
 * continues with '/' there"); every path is under itself and under "";
 * a path is under "/" exactly when it starts with '/'; "/a/" under-ness
 * implies "/a" under-ness; a path that continues the prefix's last
 * segment ("/ab" for "/a") is never under it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_strings fs;
    const char *path, *prefix;
    size_t np, nx;
    int got, want;
    char *s;

    fuzz_split(data, size, 2, &fs);
    path = fs.s[0];
    prefix = fs.s[1];
    np = strlen(path);
    nx = strlen(prefix);

    got = misdirect_path_under(path, prefix);
    PROPERTY(got == 0 || got == 1);
    want = np >= nx && memcmp(path, prefix, nx) == 0
           && (nx == 0 || prefix[nx - 1] == '/' || path[nx] == '\0'
               || path[nx] == '/');
    PROPERTY(got == want);

    PROPERTY(misdirect_path_under(path, path));
    PROPERTY(misdirect_path_under(path, ""));
    PROPERTY(misdirect_path_under(path, "/") == (path[0] == '/'));

    s = fuzz_concat(prefix, "/");
    if (misdirect_path_under(path, s)) {
        PROPERTY(misdirect_path_under(path, prefix));
    }
    free(s);
    if (nx > 0 && prefix[nx - 1] != '/') {
        /* The prefix's last segment continued: never under it. */
        s = fuzz_concat(prefix, "x");
        PROPERTY(!misdirect_path_under(s, prefix));
        free(s);
        s = fuzz_concat(prefix, "/x");
        PROPERTY(misdirect_path_under(s, prefix));
        free(s);
    }
    fuzz_free(&fs);
    return 0;
}
