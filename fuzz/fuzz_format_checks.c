/*
 * Fuzz target: misdirect_format_checks as the escaping boundary of the
 * diagnosis line.  The module writes its result between double quotes
 * (checks="...") into error_log without ap_escape_logitem, so the result
 * must never hold anything that could end the quoted field or forge a
 * line or a terminal sequence, whatever the decision holds, and must
 * never overrun or leave unterminated the buffer it is given.
 * (ap_escape_logitem itself lives in the httpd binary and cannot be
 * linked here; the client-supplied fields it escapes are checked in the
 * server runs.)
 *
 * Input: 4 bytes of fired bits (any, also bits past the last check),
 * 4 bytes per check of action (any int, also out of range), 2 bytes of
 * buffer size.
 * Properties: nothing is written past the given size (the buffer is a
 * heap block of exactly that size, so ASan sees it); a non-empty buffer
 * holds a NUL; the text before it uses only [a-z:,?-]; with the size the
 * module uses (160), the list is complete: every fired check, in table
 * order, with the name of its action or "?"; a smaller buffer yields a
 * prefix of the complete text.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "fuzz_common.h"

#define MODULE_BUF 160

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    misdirect_decision d;
    char full[MODULE_BUF], *buf;
    size_t len, i, n;
    int c;

    if (size < 4 + 4 * MISDIRECT_CHECK_COUNT + 2) {
        return 0;
    }
    memset(&d, 0, sizeof(d));
    memcpy(&d.fired, data, 4);
    for (c = 0; c < MISDIRECT_CHECK_COUNT; c++) {
        int a;

        memcpy(&a, data + 4 + 4 * c, 4);
        /* Mostly real actions, sometimes anything. */
        if (!(a & 0x100)) {
            a = (int)((unsigned int)a % 3);
        }
        d.check_action[c] = (misdirect_action_e)a;
    }
    len = (size_t)(data[4 + 4 * MISDIRECT_CHECK_COUNT] << 8
                   | data[5 + 4 * MISDIRECT_CHECK_COUNT]) % 300;

    /* The complete text, in the module's buffer. */
    memset(full, 0x7f, sizeof(full));
    PROPERTY(misdirect_format_checks(&d, full, sizeof(full)) == full);
    PROPERTY(memchr(full, '\0', sizeof(full)) != NULL);
    n = strlen(full);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)full[i];

        PROPERTY((ch >= 'a' && ch <= 'z') || ch == ':' || ch == ','
                 || ch == '?' || ch == '-');
    }
    /* Complete: every fired check, in order, with its action's name. */
    {
        const char *s = full;

        for (c = 0; c < MISDIRECT_CHECK_COUNT; c++) {
            const char *name, *action;
            size_t nl, al;

            if (!(d.fired & MISDIRECT_BIT(c))) {
                continue;
            }
            if (s != full) {
                PROPERTY(*s == ',');
                s++;
            }
            name = misdirect_check_name((misdirect_check_e)c);
            action = misdirect_action_name(d.check_action[c]);
            nl = strlen(name);
            al = strlen(action);
            PROPERTY(strncmp(s, name, nl) == 0 && s[nl] == ':');
            PROPERTY(strncmp(s + nl + 1, action, al) == 0);
            s += nl + 1 + al;
        }
        PROPERTY(*s == '\0');
    }

    /* Any other size: bounded, terminated, a prefix of the above. */
    buf = malloc(len ? len : 1);
    if (!buf) {
        abort();
    }
    memset(buf, 0x7f, len ? len : 1);
    PROPERTY(misdirect_format_checks(&d, buf, len) == buf);
    if (len > 0) {
        PROPERTY(memchr(buf, '\0', len) != NULL);
        PROPERTY(strncmp(full, buf, strlen(buf)) == 0);
        if (len > n) {
            PROPERTY(strcmp(full, buf) == 0);
        }
    }
    free(buf);
    return 0;
}
