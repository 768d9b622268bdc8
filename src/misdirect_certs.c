/*
 * mod_misdirect: certificates.
 *
 * Reading a vhost's certificate files as mod_ssl reads them (for the
 * lint and the prediction, which run before or without mod_ssl's
 * contexts), and the one rule of coverage that requests, lint and
 * prediction share: RFC 6125, as OpenSSL checks it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"

#include "apr_strings.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

int misdirect_certs_cover_name(X509 *cert, const char *name)
{
    if (misdirect_ip_literal(name)) {
        return X509_check_ip_asc(cert, name, 0) == 1;
    }
    /* RFC 6125: a wildcard stands for exactly one whole left-most
     * label. */
    return X509_check_host(cert, name, 0,
                           X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

/* Every certificate of a vhost (RSA, ECDSA, ...), read from its files
 * as mod_ssl reads them, into certs; the cache spares re-reading one file
 * shared by many vhosts. */
void misdirect_certs_read(apr_hash_t *cache, const apr_array_header_t *files,
                          apr_array_header_t *certs)
{
    int k;

    for (k = 0; k < files->nelts; k++) {
        const char *file = APR_ARRAY_IDX(files, k, const char *);
        X509 *cert;
        FILE *fp;

        if (!(cert = apr_hash_get(cache, file, APR_HASH_KEY_STRING))) {
            if (!(fp = fopen(file, "r"))) {
                continue;
            }
            cert = PEM_read_X509(fp, NULL, NULL, NULL);
            fclose(fp);
            if (!cert) {
                continue;
            }
            apr_hash_set(cache, file, APR_HASH_KEY_STRING, cert);
        }
        APR_ARRAY_PUSH(certs, X509 *) = cert;
    }
}

/* The certificates of s's SSLCertificateFile list, as the lint reads
 * them (for the prediction dump, which runs before mod_ssl loads its
 * contexts); cache maps a file to its X509 and is the caller's to free. */
void misdirect_certs_load(apr_pool_t *ptemp, apr_hash_t *cache,
                          server_rec *s, apr_array_header_t *certs)
{
    misdirect_certs_read(cache, misdirect_model_cert_files(ptemp, s), certs);
}

int misdirect_certs_cover_alias(X509 *cert, const char *name)
{
    if (name[0] == '*' && name[1] == '.') {
        /* A wildcard alias is covered when any one name under it is. */
        char probe[300];

        apr_snprintf(probe, sizeof(probe), "misdirect-probe%s", name + 1);
        return misdirect_certs_cover_name(cert, probe);
    }
    if (strpbrk(name, "*?")) {
        return 1;       /* other patterns: nothing sound to check */
    }
    return misdirect_certs_cover_name(cert, name);
}
