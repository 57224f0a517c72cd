/*
 * kube/conncache: per-cluster TLS material and idle curl handles (see the
 * header for the contract).
 *
 * The PEM decoding follows what curl does with the same blobs (so a cached
 * and an uncached client trust and present the same things): every
 * certificate of the CA bundle goes into the store, with
 * X509_V_FLAG_PARTIAL_CHAIN as curl sets it (an intermediate CA in the
 * bundle is a trust anchor); the first certificate of the client PEM is the
 * leaf and the following ones its chain; the key must match the leaf.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/kube/conncache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "server/common/buf.h"

struct conncache_entry {
	char *key;
	unsigned char fp[CONNCACHE_FP_LEN];
	X509_STORE *store;          /* NULL: no CA bundle given */
	X509 *cert;                 /* NULL: no client certificate */
	STACK_OF(X509) *chain;      /* certificates after the leaf */
	EVP_PKEY *pkey;
	CURL *idle[CONNCACHE_IDLE_HANDLES];
	int nidle;
	int refs;                   /* users holding it */
	int in_table;               /* 0 once replaced or evicted */
	unsigned long last_used;    /* acquire sequence number, for LRU */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conncache_entry *table[CONNCACHE_MAX_ENTRIES];
static unsigned long seq;
static struct conncache_stats stats;
static pid_t table_pid;   /* the process the table's connections belong to */

/* Under the lock. A forked child inherits the table, whose idle handles
 * hold the parent's open TLS connections: using one, or even cleaning it
 * up (which sends a TLS close_notify), would corrupt the parent's stream.
 * The child forgets them (leaving the memory to the parent's copy) and
 * starts an empty table. */
static void forget_if_forked(void)
{
	if (table_pid == getpid())
		return;
	if (table_pid != 0)
		memset(table, 0, sizeof table);
	table_pid = getpid();
}

static void entry_free(struct conncache_entry *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nidle; i++)
		curl_easy_cleanup(e->idle[i]);
	X509_STORE_free(e->store);
	X509_free(e->cert);
	sk_X509_pop_free(e->chain, X509_free);
	EVP_PKEY_free(e->pkey);
	free(e->key);
	free(e);
}

static BIO *pem_bio(const char *pem)
{
	return BIO_new_mem_buf(pem, (int)strlen(pem));
}

static int load_ca(struct conncache_entry *e, const char *pem, char *err, size_t errlen)
{
	BIO *b = pem_bio(pem);
	STACK_OF(X509_INFO) *infos = b ? PEM_X509_INFO_read_bio(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	int n = 0;
	e->store = X509_STORE_new();
	for (int i = 0; infos && e->store && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);
		if (xi->x509 && X509_STORE_add_cert(e->store, xi->x509) == 1)
			n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (!e->store || n == 0) {
		snprintf(err, errlen, "the CA bundle holds no certificate that decodes");
		return -1;
	}
	X509_STORE_set_flags(e->store, X509_V_FLAG_PARTIAL_CHAIN);
	return 0;
}

static int load_client(struct conncache_entry *e, const char *cert_pem, const char *key_pem,
		       char *err, size_t errlen)
{
	BIO *b = pem_bio(cert_pem);
	e->cert = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
	if (e->cert) {
		e->chain = sk_X509_new_null();
		X509 *x;
		while (e->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
			sk_X509_push(e->chain, x);
	}
	BIO_free(b);
	ERR_clear_error();   /* the chain loop ends on "no start line" */
	if (!e->cert) {
		snprintf(err, errlen, "the client certificate does not decode");
		return -1;
	}
	b = pem_bio(key_pem);
	e->pkey = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!e->pkey) {
		ERR_clear_error();
		snprintf(err, errlen, "the client key does not decode");
		return -1;
	}
	if (X509_check_private_key(e->cert, e->pkey) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "the client key does not match the certificate");
		return -1;
	}
	return 0;
}

static struct conncache_entry *entry_build(const char *key, const unsigned char *fp, const char *ca_pem,
					   const char *cert_pem, const char *key_pem, char *err,
					   size_t errlen)
{
	struct conncache_entry *e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	memcpy(e->fp, fp, CONNCACHE_FP_LEN);
	if ((ca_pem && *ca_pem && load_ca(e, ca_pem, err, errlen) < 0) ||
	    (cert_pem && *cert_pem && load_client(e, cert_pem, key_pem ? key_pem : "", err, errlen) < 0)) {
		entry_free(e);
		return NULL;
	}
	return e;
}

/* Under the lock: drop e from the table slot i; freed now when unheld
 * (the caller frees what is returned, outside the lock). */
static struct conncache_entry *unlink_slot(int i)
{
	struct conncache_entry *e = table[i];
	table[i] = NULL;
	e->in_table = 0;
	return e->refs == 0 ? e : NULL;
}

struct conncache_entry *conncache_acquire(const char *key, const unsigned char fp[CONNCACHE_FP_LEN],
					  const char *ca_pem, const char *cert_pem, const char *key_pem,
					  void **curl, char *err, size_t errlen)
{
	*curl = NULL;
	struct conncache_entry *drop = NULL, *e = NULL;
	pthread_mutex_lock(&lock);
	forget_if_forked();
	for (int i = 0; i < CONNCACHE_MAX_ENTRIES; i++) {
		if (!table[i] || strcmp(table[i]->key, key))
			continue;
		if (!memcmp(table[i]->fp, fp, CONNCACHE_FP_LEN)) {
			e = table[i];
			stats.hits++;
		} else {
			/* Re-registered with other credentials: never reuse. */
			drop = unlink_slot(i);
			stats.replaced++;
		}
		break;
	}
	if (e) {
		e->refs++;
		e->last_used = ++seq;
		if (e->nidle > 0) {
			*curl = e->idle[--e->nidle];
			stats.handles_reused++;
		}
	}
	pthread_mutex_unlock(&lock);
	entry_free(drop);
	drop = NULL;
	if (e)
		return e;

	/* Decode outside the lock. */
	struct conncache_entry *built = entry_build(key, fp, ca_pem, cert_pem, key_pem, err, errlen);
	if (!built)
		return NULL;
	struct conncache_entry *evict = NULL;
	pthread_mutex_lock(&lock);
	forget_if_forked();
	stats.builds++;
	int slot = -1, lru = -1;
	for (int i = 0; i < CONNCACHE_MAX_ENTRIES; i++) {
		if (table[i] && !strcmp(table[i]->key, key)) {
			/* Another thread built it meanwhile: the newer build wins. */
			drop = unlink_slot(i);
			slot = i;
			break;
		}
		if (!table[i] && slot < 0)
			slot = i;
		if (table[i] && table[i]->refs == 0 && (lru < 0 || table[i]->last_used < table[lru]->last_used))
			lru = i;
	}
	if (slot < 0 && lru >= 0) {
		evict = unlink_slot(lru);
		stats.evicted++;
		slot = lru;
	}
	built->refs = 1;
	built->last_used = ++seq;
	if (slot >= 0) {
		table[slot] = built;
		built->in_table = 1;
	}
	pthread_mutex_unlock(&lock);
	entry_free(drop);
	entry_free(evict);
	return built;
}

void conncache_release(struct conncache_entry *e, void *curl)
{
	if (!e) {
		if (curl)
			curl_easy_cleanup(curl);
		return;
	}
	struct conncache_entry *done = NULL;
	pthread_mutex_lock(&lock);
	forget_if_forked();
	e->refs--;
	if (curl && e->in_table && e->nidle < CONNCACHE_IDLE_HANDLES) {
		e->idle[e->nidle++] = curl;
		curl = NULL;
	}
	if (!e->in_table && e->refs == 0)
		done = e;
	pthread_mutex_unlock(&lock);
	if (curl)
		curl_easy_cleanup(curl);
	entry_free(done);
}

int conncache_has_ca(const struct conncache_entry *e)
{
	return e && e->store != NULL;
}

int conncache_has_client_cert(const struct conncache_entry *e)
{
	return e && e->cert != NULL;
}

int conncache_install(const struct conncache_entry *e, void *ssl_ctx)
{
	SSL_CTX *ctx = ssl_ctx;
	if (e->store)
		SSL_CTX_set1_cert_store(ctx, e->store);
	if (e->cert) {
		if (SSL_CTX_use_certificate(ctx, e->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, e->pkey) != 1)
			return -1;
		SSL_CTX_clear_chain_certs(ctx);
		for (int i = 0; i < sk_X509_num(e->chain); i++)
			if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(e->chain, i)) != 1)
				return -1;
	}
	return 0;
}

void conncache_get_stats(struct conncache_stats *out)
{
	pthread_mutex_lock(&lock);
	forget_if_forked();
	*out = stats;
	out->entries = 0;
	for (int i = 0; i < CONNCACHE_MAX_ENTRIES; i++)
		if (table[i])
			out->entries++;
	pthread_mutex_unlock(&lock);
}

void conncache_clear(void)
{
	struct conncache_entry *freed[CONNCACHE_MAX_ENTRIES];
	int n = 0;
	pthread_mutex_lock(&lock);
	forget_if_forked();
	for (int i = 0; i < CONNCACHE_MAX_ENTRIES; i++) {
		if (!table[i])
			continue;
		struct conncache_entry *e = unlink_slot(i);
		if (e)
			freed[n++] = e;
	}
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < n; i++)
		entry_free(freed[i]);
}
