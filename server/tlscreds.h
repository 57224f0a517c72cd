/*
 * tlscreds: the certificate and key ferryd's HTTPS listener presents,
 * loaded from PEM files and replaceable while connections are open
 * (SIGHUP). libmicrohttpd asks for them on every handshake through
 * tlscreds_retrieve() (MHD_OPTION_HTTPS_CERT_CALLBACK), so a reload takes
 * effect for the next handshake and never touches established sessions.
 *
 * One set of credentials per process (the callback has no user pointer):
 * tlscreds_load() installs the first set, tlscreds_reload() replaces it.
 * A reload that fails (unreadable file, bad PEM, key not matching the
 * certificate) keeps the current set and says why.
 *
 * Memory: replaced sets are kept until tlscreds_free_all(), because a
 * handshake may still be using the pointers it was handed; reloads are rare
 * (a few a year per process), so this costs a few KiB at most.
 * Thread-safety: tlscreds_retrieve() runs on MHD's connection threads;
 * load/reload/free from one thread (ferryd's main).
 */
#ifndef FERRY_TLSCREDS_H
#define FERRY_TLSCREDS_H

#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

/* The GnuTLS priority string of the listener: TLS 1.3 and 1.2 only,
 * AEAD ciphers only (AES-GCM, ChaCha20-Poly1305), forward-secret key
 * exchange (ECDHE; DHE-RSA with the RFC 7919 groups), server's order. */
extern const char tlscreds_priorities[];

/* Load cert_file (PEM, leaf first, then intermediates) and key_file (PEM,
 * PKCS#1/PKCS#8/SEC1, unencrypted) as the current set. 0, or -1 with the
 * reason in err (nothing installed). */
int tlscreds_load(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* Same files read again; on failure the current set stays. */
int tlscreds_reload(char *err, size_t errlen);
/* A short description of the current leaf ("subject, expires DATE") for
 * the log; "" when none. */
void tlscreds_describe(char *out, size_t outlen);
/* gnutls_certificate_retrieve_function2 for libmicrohttpd. */
int tlscreds_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		      gnutls_pcert_st **pcert, unsigned int *pcert_length,
		      gnutls_privkey_t *pkey);
void tlscreds_free_all(void);

#endif
