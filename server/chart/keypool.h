/*
 * chart/keypool: RSA keys for the chart engine's certificate functions
 * (genCA, genSelfSignedCert, genSignedCert: RSA-2048; genPrivateKey "rsa":
 * RSA-4096), generated ahead of time so a render does not wait for them.
 *
 * Contract:
 * - keypool_take_rsa() always returns a fresh key the caller owns
 *   (EVP_PKEY_free): one from the pool when it has one, else generated
 *   inline on the caller's thread (correctness first: an empty, stopped or
 *   never started pool only costs time). A key is handed out at most once:
 *   taking it removes it from the pool, and the pool never copies a key.
 * - The pool is in memory only: keys are never written to a file, the
 *   database or a log, and are freed (OpenSSL clears private key material)
 *   when taken keys are freed by their owner or the pool stops. A random
 *   key is indistinguishable whenever it was made, so a key made minutes
 *   before the render is as good as one made during it.
 * - Bounded: at most `rsa2048` + `rsa4096` keys (keypool_start) wait in
 *   memory. One background thread refills the pool at the lowest priority
 *   (SCHED_IDLE, else nice 19): it uses CPU nobody else wants, so under
 *   load the pool drains and renders generate inline.
 * - keypool_scratch_rsa(): one process-wide key per size for renders whose
 *   output is thrown away (the preflight's preview render): the same key
 *   every time, never for anything that is applied or stored.
 *
 * Lifecycle: a process-wide singleton (the template functions have no
 * other context). ferryd serve calls keypool_start() after reading its
 * configuration and keypool_stop() after the workers stopped; `ferry
 * template` never starts it (inline keys). keypool_stop() joins the thread
 * (waiting for a key being generated) and frees every pooled key; start
 * and stop may be called again afterwards.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef FERRY_CHART_KEYPOOL_H
#define FERRY_CHART_KEYPOOL_H

#include <openssl/evp.h>

/* Pool sizes: keys of each size kept ready. Both 0 = no thread. 0 on
 * success, -1 when the thread cannot be started (the pool then stays
 * empty and keys are generated inline). A running pool is resized. */
int keypool_start(int rsa2048, int rsa4096);
void keypool_stop(void);

/* A fresh RSA key of bits 2048 or 4096 (other sizes: generated inline by
 * OpenSSL). stop (may be NULL) is polled while a 4096-bit key is
 * generated inline; non-zero abandons it (NULL returned). NULL on failure. */
EVP_PKEY *keypool_take_rsa(int bits, int (*stop)(void *ctx), void *ctx);

/* The process-wide scratch key of that size (a new reference: the caller
 * frees it with EVP_PKEY_free); generated on first use. NULL on failure. */
EVP_PKEY *keypool_scratch_rsa(int bits);

/* What the pool did, for tests and logs. */
struct keypool_stats {
	int ready2048, ready4096;   /* keys waiting now */
	long taken;                 /* keys handed out from the pool */
	long inline_made;           /* keys generated inline (pool empty) */
	long generated;             /* keys the background thread made */
};
void keypool_get_stats(struct keypool_stats *out);

#endif
