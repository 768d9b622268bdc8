/*
 * mod_misdirect: text helpers.
 *
 * Client text escaped for error_log and variables, configuration text as
 * UTF-8 and as JSON strings, lists of checks, and the small comparisons
 * of words and strings that several files need.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "apr_strings.h"

/* Not ap_escape_logitem: httpd escapes every error_log message again,
 * turning its \" into \\" and so ending the quoted field early.
 * Percent-encoding survives that second pass unchanged. */
const char *misdirect_text_escape(apr_pool_t *p, const char *s)
{
    /* Most names need nothing escaped, and are then their own escaped
     * form: a request that trips a check is spared a copy. */
    if (!misdirect_escape_needed(s)) {
        return s;
    }
    return misdirect_escape_into(s, apr_palloc(p, 3 * strlen(s) + 1));
}

const char *misdirect_text_check_list(apr_pool_t *p, unsigned int mask)
{
    const char *out = NULL;
    int i;

    /* One check, as nearly always: its name, nothing to join. */
    if (mask && !(mask & (mask - 1))) {
        return misdirect_check_name(__builtin_ctz(mask));
    }
    for (i = 0; i < MISDIRECT_CHECK_COUNT; i++) {
        if (mask & MISDIRECT_BIT(i)) {
            out = out ? apr_pstrcat(p, out, ",", misdirect_check_name(i),
                                    NULL)
                      : misdirect_check_name(i);
        }
    }
    return out ? out : "none";
}

/* The length of the valid UTF-8 sequence at p, or 0. */
static int misdirect_text_utf8_len(const unsigned char *p)
{
    unsigned int c = p[0], cp;
    int len, i;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    }
    else {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* No overlong forms, no surrogates, nothing beyond Unicode. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

/* Configuration text is bytes, and both JSON and Prometheus want UTF-8
 * (Prometheus refuses a whole scrape over one invalid label value): valid
 * UTF-8 passes, any other byte is read as Latin-1.  Returns s itself
 * when it is valid already, the usual case. */
const char *misdirect_text_utf8(apr_pool_t *p, const char *s)
{
    const unsigned char *in = (const unsigned char *)s;
    char *out, *o;
    int len;

    while (*in && (len = misdirect_text_utf8_len(in)) > 0) {
        in += len;
    }
    if (!*in) {
        return s;
    }
    o = out = apr_palloc(p, strlen(s) * 2 + 1);
    memcpy(o, s, (const char *)in - s);
    o += (const char *)in - s;
    while (*in) {
        len = misdirect_text_utf8_len(in);
        if (len > 0) {
            memcpy(o, in, len);
            o += len;
            in += len;
            continue;
        }
        *o++ = (char)(0xc0 | (*in >> 6));
        *o++ = (char)(0x80 | (*in & 0x3f));
        in++;
    }
    *o = '\0';
    return out;
}

/* A JSON string literal of s, which always parses.  <, > and & are
 * escaped too, so no browser sniffs markup. */
const char *misdirect_text_json_str(apr_pool_t *p, const char *s)
{
    const unsigned char *in;
    char *out, *o;

    if (!s) {
        return "null";
    }
    in = (const unsigned char *)misdirect_text_utf8(p, s);
    o = out = apr_palloc(p, strlen((const char *)in) * 6 + 3);
    *o++ = '"';
    for (; *in; in++) {
        if (*in == '"' || *in == '\\') {
            *o++ = '\\';
            *o++ = (char)*in;
        }
        else if (*in < 0x20 || *in == 0x7f || *in == '<' || *in == '>'
                 || *in == '&') {
            o += apr_snprintf(o, 7, "\\u%04x", *in);
        }
        else {
            *o++ = (char)*in;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

int misdirect_text_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int misdirect_text_has_item(const char *list, const char *item, char sep)
{
    size_t n = strlen(item);
    const char *at;

    for (at = strstr(list, item); at; at = strstr(at + 1, item)) {
        if ((at == list || at[-1] == ' ') && (!at[n] || at[n] == sep)) {
            return 1;
        }
    }
    return 0;
}
