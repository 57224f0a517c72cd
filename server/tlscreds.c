/*
 * tlscreds: see tlscreds.h. The current set is one pointer under a mutex;
 * the retrieve callback hands GnuTLS the set's arrays, which stay valid
 * until tlscreds_free_all() (replaced sets go on a retired list).
 */
#include "server/tlscreds.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/x509.h>

#include "server/common/buf.h"

/* A leaf and up to 9 intermediates. */
#define TLS_MAX_CHAIN 10

const char tlscreds_priorities[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:"
	"%SERVER_PRECEDENCE";

struct creds {
	gnutls_pcert_st pcert[TLS_MAX_CHAIN];
	unsigned int npcert;
	gnutls_privkey_t key;
	struct creds *retired;  /* older sets, freed at the end */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct creds *current;
static char *cert_path, *key_path;

static void creds_free(struct creds *c)
{
	if (!c)
		return;
	for (unsigned int i = 0; i < c->npcert; i++)
		gnutls_pcert_deinit(&c->pcert[i]);
	if (c->key)
		gnutls_privkey_deinit(c->key);
	free(c);
}

/* 1 if key signs what the leaf's public key verifies. */
static int key_matches(gnutls_privkey_t key, gnutls_pcert_st *leaf)
{
	int pk = gnutls_privkey_get_pk_algorithm(key, NULL);
	if (pk < 0 || pk != gnutls_pubkey_get_pk_algorithm(leaf->pubkey, NULL))
		return 0;
	gnutls_sign_algorithm_t algo = gnutls_pk_to_sign((gnutls_pk_algorithm_t)pk, GNUTLS_DIG_SHA256);
	if (algo == GNUTLS_SIGN_UNKNOWN)
		return 0;
	static const unsigned char probe[] = "ferryd tls key check";
	gnutls_datum_t data = { (unsigned char *)probe, sizeof(probe) - 1 };
	gnutls_datum_t sig = { NULL, 0 };
	if (gnutls_privkey_sign_data2(key, algo, 0, &data, &sig) < 0)
		return 0;
	int ok = gnutls_pubkey_verify_data2(leaf->pubkey, algo, 0, &data, &sig) >= 0;
	gnutls_free(sig.data);
	return ok;
}

static struct creds *creds_read(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	size_t clen = 0, klen = 0;
	char *ctext = NULL, *ktext = NULL;
	struct creds *c = NULL;
	ctext = read_file_limit(cert_file, 1 << 20, &clen);
	if (!ctext) {
		snprintf(err, errlen, "TLS certificate %s: %s", cert_file, strerror(errno));
		goto out;
	}
	ktext = read_file_limit(key_file, 1 << 20, &klen);
	if (!ktext) {
		snprintf(err, errlen, "TLS key %s: %s", key_file, strerror(errno));
		goto out;
	}
	c = xcalloc(1, sizeof(*c));
	gnutls_datum_t d = { (unsigned char *)ctext, (unsigned int)clen };
	unsigned int n = TLS_MAX_CHAIN;
	int rc = gnutls_pcert_list_import_x509_raw(c->pcert, &n, &d, GNUTLS_X509_FMT_PEM, 0);
	if (rc < 0 || n == 0) {
		snprintf(err, errlen, "TLS certificate %s: not a PEM certificate chain (%s)", cert_file,
			 rc < 0 ? gnutls_strerror(rc) : "no certificate");
		goto fail;
	}
	c->npcert = n;
	gnutls_datum_t k = { (unsigned char *)ktext, (unsigned int)klen };
	if (gnutls_privkey_init(&c->key) < 0 ||
	    gnutls_privkey_import_x509_raw(c->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		snprintf(err, errlen, "TLS key %s: not an unencrypted PEM private key", key_file);
		goto fail;
	}
	if (!key_matches(c->key, &c->pcert[0])) {
		snprintf(err, errlen, "TLS key %s does not belong to the certificate in %s", key_file,
			 cert_file);
		goto fail;
	}
	goto out;
fail:
	creds_free(c);
	c = NULL;
out:
	if (ktext)
		memset(ktext, 0, klen);
	free(ctext);
	free(ktext);
	return c;
}

static void install(struct creds *c)
{
	pthread_mutex_lock(&mu);
	c->retired = current;
	current = c;
	pthread_mutex_unlock(&mu);
}

int tlscreds_load(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct creds *c = creds_read(cert_file, key_file, err, errlen);
	if (!c)
		return -1;
	free(cert_path);
	free(key_path);
	cert_path = xstrdup(cert_file);
	key_path = xstrdup(key_file);
	install(c);
	return 0;
}

int tlscreds_reload(char *err, size_t errlen)
{
	if (!cert_path) {
		snprintf(err, errlen, "TLS is not configured");
		return -1;
	}
	struct creds *c = creds_read(cert_path, key_path, err, errlen);
	if (!c)
		return -1;
	install(c);
	return 0;
}

void tlscreds_describe(char *out, size_t outlen)
{
	out[0] = '\0';
	pthread_mutex_lock(&mu);
	struct creds *c = current;
	gnutls_x509_crt_t crt;
	if (c && gnutls_x509_crt_init(&crt) >= 0) {
		if (gnutls_x509_crt_import(crt, &c->pcert[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
			char dn[256];
			size_t dnl = sizeof(dn);
			if (gnutls_x509_crt_get_dn(crt, dn, &dnl) < 0)
				snprintf(dn, sizeof(dn), "?");
			time_t exp = gnutls_x509_crt_get_expiration_time(crt);
			struct tm tm;
			char when[32] = "?";
			if (exp != (time_t)-1 && gmtime_r(&exp, &tm))
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			snprintf(out, outlen, "%s, expires %s", dn, when);
		}
		gnutls_x509_crt_deinit(crt);
	}
	pthread_mutex_unlock(&mu);
}

int tlscreds_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		      gnutls_pcert_st **pcert, unsigned int *pcert_length,
		      gnutls_privkey_t *pkey)
{
	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	pthread_mutex_lock(&mu);
	struct creds *c = current;
	pthread_mutex_unlock(&mu);
	if (!c)
		return -1;
	*pcert = c->pcert;
	*pcert_length = c->npcert;
	*pkey = c->key;
	return 0;
}

void tlscreds_free_all(void)
{
	pthread_mutex_lock(&mu);
	struct creds *c = current;
	current = NULL;
	pthread_mutex_unlock(&mu);
	while (c) {
		struct creds *next = c->retired;
		creds_free(c);
		c = next;
	}
	free(cert_path);
	free(key_path);
	cert_path = key_path = NULL;
}
