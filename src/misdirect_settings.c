/*
 * mod_misdirect: what mod_ssl compares between two vhosts, and how one
 * directive line is read into the value it compares.
 *
 * The table below lists the TLS settings that mod_ssl's verdict looks
 * at, each with its kind: a kind says how a line is read (protocols as
 * a version bitmask, keywords as a set in lower case, paths resolved
 * against ServerRoot, SSLOpenSSLConfCmd as a command and its resolved
 * value), so that two lines mod_ssl reads alike have the same canonical
 * value.  misdirect_model.c merges the values per vhost and compares
 * them.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_model.h"

#include "apr_strings.h"

#include <openssl/ssl.h>    /* SSL_CONF_* of SSLOpenSSLConfCmd */

/* The settings mod_ssl compares, as misdirect_model.h lists them. */
#define MISDIRECT_TLS_ROW(name, directive, label, kind, group, dflt)      \
    { directive, label, MISDIRECT_TLS_##kind, MISDIRECT_TLS_##group, dflt },
const misdirect_tls_setting_def misdirect_settings_table[] = {
    MISDIRECT_TLS_SETTING_TABLE(MISDIRECT_TLS_ROW)
};
#undef MISDIRECT_TLS_ROW

static const char *const misdirect_policy_names[] = {
    "strict", "secure", "authonly", "insecure"
};

const char *misdirect_settings_policy_name(misdirect_ssl_policy_e policy)
{
    return (unsigned)policy < sizeof(misdirect_policy_names)
                              / sizeof(misdirect_policy_names[0])
           ? misdirect_policy_names[policy] : "unknown";
}

static int misdirect_proto_bit(const char *w)
{
    if (!strcasecmp(w, "all")) {
        return MISDIRECT_PROTO_ALL;
    }
    if (!strcasecmp(w, "TLSv1")) {
        return MISDIRECT_PROTO_TLS1;
    }
    if (!strcasecmp(w, "TLSv1.1")) {
        return MISDIRECT_PROTO_TLS11;
    }
    if (!strcasecmp(w, "TLSv1.2")) {
        return MISDIRECT_PROTO_TLS12;
    }
    if (!strcasecmp(w, "TLSv1.3")) {
        return MISDIRECT_PROTO_TLS13;
    }
    return 0;
}

/* A bare version replaces what came before it on the line, +/- add and
 * remove; the line starts from no version, whatever the global says. */
static const char *misdirect_proto_canon(apr_pool_t *p,
                                         apr_array_header_t *words)
{
    int mask = 0, i;

    for (i = 0; i < words->nelts; i++) {
        const char *w = APR_ARRAY_IDX(words, i, const char *);
        int bit = misdirect_proto_bit(w[0] == '+' || w[0] == '-' ? w + 1
                                                                  : w);

        if (w[0] == '+') {
            mask |= bit;
        }
        else if (w[0] == '-') {
            mask &= ~bit;
        }
        else {
            mask = bit;
        }
    }
    return apr_itoa(p, mask);
}

const char *misdirect_settings_proto_versions(apr_pool_t *p, const char *canon)
{
    static const char *const names[] = {
        "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
    };
    int mask = atoi(canon), i;
    const char *out = NULL;

    for (i = 0; i < 4; i++) {
        if (mask & (1 << i)) {
            out = out ? apr_pstrcat(p, out, " ", names[i], NULL) : names[i];
        }
    }
    return out ? out : "no version";
}

/* A mode and its flags ("chain no_crl_for_cert_ok"), as mod_ssl reads
 * them: in any case, the flags as a set, so order and repeats make no
 * difference. */
static const char *misdirect_keywords_canon(apr_pool_t *p,
                                            apr_array_header_t *words)
{
    apr_array_header_t *w = apr_array_copy(p, words);
    const char *out = NULL;
    int i;

    for (i = 0; i < w->nelts; i++) {
        char *one = apr_pstrdup(p, APR_ARRAY_IDX(w, i, const char *));

        ap_str_tolower(one);
        APR_ARRAY_IDX(w, i, const char *) = one;
    }
    if (w->nelts > 2) {
        qsort(w->elts + w->elt_size, w->nelts - 1, w->elt_size,
              misdirect_text_strcmp);
    }
    for (i = 0; i < w->nelts; i++) {
        const char *one = APR_ARRAY_IDX(w, i, const char *);

        if (i < 2 || strcmp(one, APR_ARRAY_IDX(w, i - 1, const char *))) {
            out = out ? apr_pstrcat(p, out, " ", one, NULL) : one;
        }
    }
    return out ? out : "";
}

/* A configured path as mod_ssl keeps it: resolved against ServerRoot
 * (".." and "//" folded), or as written where httpd cannot resolve it. */
static const char *misdirect_resolved(apr_pool_t *p, const char *path)
{
    const char *r = ap_server_root_relative(p, path);

    return r ? r : apr_pstrdup(p, path);
}

/* The value of an SSLOpenSSLConfCmd: mod_ssl asks OpenSSL whether the
 * command takes a file or a directory and resolves such a value against
 * ServerRoot before it keeps it, so the model does the same. */
static const char *misdirect_command_value(apr_pool_t *p, const char *cmd,
                                           const char *value)
{
    SSL_CONF_CTX *cctx = SSL_CONF_CTX_new();
    int type;

    if (!cctx) {
        return apr_pstrdup(p, value);
    }
    SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER
                                 | SSL_CONF_FLAG_CERTIFICATE);
    type = SSL_CONF_cmd_value_type(cctx, cmd);
    SSL_CONF_CTX_free(cctx);
    return type == SSL_CONF_TYPE_FILE || type == SSL_CONF_TYPE_DIR
           ? misdirect_resolved(p, value) : apr_pstrdup(p, value);
}

/* The one kept copy of s (see misdirect_tls_reader). */
static const char *misdirect_tls_text(misdirect_tls_reader *rd,
                                      const char *s)
{
    const char *kept;

    if (!s) {
        return NULL;
    }
    if (!(kept = apr_hash_get(rd->texts, s, APR_HASH_KEY_STRING))) {
        kept = apr_pstrdup(rd->p, s);
        apr_hash_set(rd->texts, kept, APR_HASH_KEY_STRING, kept);
    }
    return kept;
}

/* The value one directive line gives, as mod_ssl reads it. */
static misdirect_tls_value *misdirect_tls_read(misdirect_tls_reader *rd,
                                               size_t i,
                                               apr_array_header_t *words,
                                               const ap_directive_t *line,
                                               int global)
{
    apr_pool_t *p = rd->scratch;
    misdirect_tls_value *v = apr_pcalloc(rd->p, sizeof(*v));
    const char *canon, *shown;
    const char *w0 = words->nelts > 0
                     ? APR_ARRAY_IDX(words, 0, const char *) : "";
    misdirect_tls_kind_e kind = misdirect_settings_table[i].kind;
    int k;

    v->line = line;
    v->global = global;
    v->count = 1;
    if (kind != MISDIRECT_TLS_FILES && kind != MISDIRECT_TLS_PATH
        && kind != MISDIRECT_TLS_CIPHER && kind != MISDIRECT_TLS_CIPHER13) {
        v->shown = apr_array_pstrcat(p, words, ' ');
    }
    switch (kind) {
    case MISDIRECT_TLS_FILES:
    case MISDIRECT_TLS_PATH:
        /* mod_ssl compares the paths it resolved, so quoting, "." and
         * ".." make no difference, while a symlink or a trailing slash
         * does. */
        v->canon = v->shown = misdirect_resolved(p, w0);
        break;
    case MISDIRECT_TLS_PROTOCOL:
        v->canon = misdirect_proto_canon(p, words);
        break;
    case MISDIRECT_TLS_CIPHER:
    case MISDIRECT_TLS_CIPHER13:
        v->canon = v->shown = words->nelts > 1
                              ? APR_ARRAY_IDX(words, 1, const char *) : w0;
        break;
    case MISDIRECT_TLS_WORDS:
        v->canon = misdirect_keywords_canon(p, words);
        break;
    case MISDIRECT_TLS_NUMBER:
        v->canon = apr_itoa(p, atoi(w0));
        break;
    case MISDIRECT_TLS_STRING:
        v->canon = v->shown;
        break;
    case MISDIRECT_TLS_COMMANDS:
        /* Command names are case-sensitive to mod_ssl; the length keeps
         * "a b" + "c" apart from "a" + "b c". */
        k = (int)strlen(w0);
        v->canon = apr_psprintf(p, "%d:%s%s", k, w0,
                                words->nelts > 1
                                ? misdirect_command_value(p, w0,
                                      APR_ARRAY_IDX(words, 1, const char *))
                                : "");
        break;
    }
    canon = v->canon;
    shown = v->shown;
    v->canon = misdirect_tls_text(rd, canon);
    v->shown = shown == canon ? v->canon : misdirect_tls_text(rd, shown);
    return v;
}

/* Which setting a directive line is, or -1: SSLCipherSuite counts as
 * two, by its optional protocol word ("SSL" or "TLSv1.3", exactly). */
static int misdirect_tls_setting(const char *directive,
                                 apr_array_header_t *words)
{
    size_t i;

    if (!strcasecmp(directive, "SSLCipherSuite")) {
        return words->nelts > 1
               && !strcmp(APR_ARRAY_IDX(words, 0, const char *), "TLSv1.3")
               ? MISDIRECT_TLS_CIPHERS13 : MISDIRECT_TLS_CIPHERS;
    }
    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        if (!strcasecmp(directive, misdirect_settings_table[i].directive)) {
            return (int)i;
        }
    }
    return -1;
}

static apr_array_header_t *misdirect_words(apr_pool_t *p, const char *args)
{
    apr_array_header_t *words = apr_array_make(p, 4, sizeof(const char *));
    const char *w;

    while (*(w = ap_getword_conf(p, &args))) {
        APR_ARRAY_PUSH(words, const char *) = w;
    }
    return words;
}

void misdirect_settings_scope_take(misdirect_tls_reader *rd,
                                   misdirect_tls_scope *sc, int global,
                                   const ap_directive_t *d)
{
    apr_array_header_t *words;
    int i;

    if (d->directive[0] == '<' || strncasecmp(d->directive, "SSL", 3)) {
        return;
    }
    words = misdirect_words(rd->scratch, d->args);
    if (!strcasecmp(d->directive, "SSLEngine")) {
        /* "optional" is no longer supported: mod_ssl leaves TLS off. */
        sc->engine = words->nelts > 0
                     && !strcasecmp(APR_ARRAY_IDX(words, 0, const char *),
                                    "on");
        return;
    }
    if (!strcasecmp(d->directive, "SSLStrictSNIVHostCheck")) {
        sc->strict_sni = words->nelts > 0
                         && !strcasecmp(APR_ARRAY_IDX(words, 0, const char *),
                                        "on");
        return;
    }
    if (!strcasecmp(d->directive, "SSLVHostSNIPolicy")) {
        const char *w = words->nelts ? APR_ARRAY_IDX(words, 0, char *) : "";
        size_t k;

        for (k = 0; k < sizeof(misdirect_policy_names)
                        / sizeof(misdirect_policy_names[0]); k++) {
            if (!strcasecmp(w, misdirect_policy_names[k])) {
                rd->policy = (misdirect_ssl_policy_e)k;
                rd->policy_set = 1;
            }
        }
        return;
    }
    if ((i = misdirect_tls_setting(d->directive, words)) < 0) {
        return;
    }
    if (!sc->seen[i]) {
        sc->seen[i] = apr_array_make(sc->pool, 2,
                                     sizeof(misdirect_tls_value *));
    }
    APR_ARRAY_PUSH(sc->seen[i], misdirect_tls_value *) =
        misdirect_tls_read(rd, (size_t)i, words, d, global);
}

/* The defaults, one set per pass, shared by every vhost. */
static misdirect_tls_value misdirect_tls_defaults[MISDIRECT_TLS_NSETTINGS];

void misdirect_settings_defaults_init(void)
{
    static char all[16];
    size_t i;

    apr_snprintf(all, sizeof(all), "%d", MISDIRECT_PROTO_ALL);
    for (i = 0; i < MISDIRECT_TLS_NSETTINGS; i++) {
        misdirect_tls_value *d = &misdirect_tls_defaults[i];

        memset(d, 0, sizeof(*d));
        d->shown = misdirect_settings_table[i].dflt;
        d->canon = misdirect_settings_table[i].kind == MISDIRECT_TLS_PROTOCOL
                   ? all : d->shown;
        d->count = d->canon != NULL;
    }
}

const misdirect_tls_value *misdirect_settings_default(size_t i)
{
    return &misdirect_tls_defaults[i];
}
