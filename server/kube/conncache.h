/*
 * kube/conncache: what one cluster's connections can share across jobs,
 * kept per cluster in process memory (never written anywhere):
 *
 *  - the parsed TLS material: the CA bundle as an X509_STORE, the client
 *    certificate (with its chain) and private key as OpenSSL objects, so a
 *    new TLS connection installs them into curl's SSL_CTX (kube/client's
 *    CURLOPT_SSL_CTX_FUNCTION) instead of decoding the PEM again;
 *  - idle curl easy handles (at most CONNCACHE_IDLE_HANDLES per cluster),
 *    which keep their live keep-alive connection and TLS session cache, so
 *    the next job for the cluster reuses the connection (or resumes the TLS
 *    session) instead of a full handshake.
 *
 * An entry is keyed by a string (the cluster id) and carries a fingerprint
 * (SHA-256 over the server URL, TLS server name, CA bundle, client
 * certificate, key and the insecure flag; kube/client computes it). A
 * caller with another fingerprint for the same key (the cluster was
 * re-registered, its credentials or CA changed) replaces the entry: the old
 * one leaves the table at once (no new client gets it), and is freed with
 * its idle handles and connections when its last user releases it. So a
 * credentials change reaches the very next client.
 *
 * Bounded: at most CONNCACHE_MAX_ENTRIES clusters; a new one evicts the
 * least recently used entry nobody holds (when every entry is held, the
 * new one is used uncached and freed on release).
 *
 * Thread-safety: every function may be called from any thread; the table
 * is under one mutex (held only for lookups, never while parsing PEM or
 * doing I/O). An entry is shared read-only by its users (OpenSSL objects
 * are reference counted; X509_STORE is safe for concurrent verification);
 * an easy handle is handed to one user at a time.
 *
 * Fork: a child process starts with an empty cache; the parent's idle
 * connections are never touched by the child (sharing a TLS stream between
 * two processes would corrupt it).
 *
 * Memory: conncache_acquire() returns a reference that the caller gives
 * back with conncache_release(), together with its easy handle (which the
 * cache keeps idle or cleans up). conncache_clear() frees every idle entry
 * (kube_global_cleanup() calls it).
 */
#ifndef FERRY_KUBE_CONNCACHE_H
#define FERRY_KUBE_CONNCACHE_H

#include <stddef.h>

#define CONNCACHE_MAX_ENTRIES 256
#define CONNCACHE_IDLE_HANDLES 2
#define CONNCACHE_FP_LEN 32

struct conncache_entry;

struct conncache_stats {
	long builds;    /* entries built (PEM decoded) */
	long hits;      /* acquires that found a current entry */
	long replaced;  /* entries dropped because the fingerprint changed */
	long evicted;   /* entries dropped for room */
	long handles_reused;  /* acquires that got an idle easy handle */
	long entries;   /* entries in the table now */
};

/* The entry of key with fingerprint fp: found, or built from the PEM
 * (ca_pem and cert_pem/key_pem may each be NULL). *curl gets an idle easy
 * handle of the entry (a CURL *, typed void * to keep curl.h out of this
 * header), or NULL: the caller makes its own. NULL with a message in err
 * when the PEM does not decode (the caller falls back to handing curl the
 * PEM, whose error the request then reports). */
struct conncache_entry *conncache_acquire(const char *key, const unsigned char fp[CONNCACHE_FP_LEN],
					  const char *ca_pem, const char *cert_pem, const char *key_pem,
					  void **curl, char *err, size_t errlen);

/* Give back an entry and the caller's easy handle (may be NULL): kept idle
 * when the entry is still current and has room, else cleaned up. */
void conncache_release(struct conncache_entry *e, void *curl);

/* Whether the entry holds a CA store / a client certificate and key. */
int conncache_has_ca(const struct conncache_entry *e);
int conncache_has_client_cert(const struct conncache_entry *e);

/* Install the entry's material into an OpenSSL SSL_CTX (curl's
 * CURLOPT_SSL_CTX_FUNCTION). 0, or -1 when OpenSSL refuses it. */
int conncache_install(const struct conncache_entry *e, void *ssl_ctx);

void conncache_get_stats(struct conncache_stats *out);

/* Free every entry nobody holds (entries in use are freed on release). */
void conncache_clear(void);

#endif
