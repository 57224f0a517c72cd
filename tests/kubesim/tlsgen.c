/*
 * tlsgen.c: the CA, server and client certificates kubesim serves with.
 *
 * Keys are EC P-256 (generation takes microseconds, so 1,000 clusters start
 * quickly). The CA is reused from DIR/ca.crt + DIR/ca.key when both exist, so
 * a restarted kubesim keeps old kubeconfigs valid. PEM strings are kept in
 * g_sim for libmicrohttpd (server key/cert, CA as client trust).
 */
#include "tests/kubesim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *ca_pkey;
static X509 *ca_cert;

static void set_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static char *pem_of_key(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = xstrndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static char *pem_of_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = xstrndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
}

/* A new certificate for key, signed by the CA (or self-signed when ca is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org, int is_ca,
		       const char *san, const char *eku)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	char hex[33];
	random_hex(hex, 8);
	BIGNUM *bn = NULL;
	BN_hex2bn(&bn, hex);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 60L * 60 * 24 * 365 * 10);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509 *issuer = is_ca ? x : ca_cert;
	X509_set_issuer_name(x, X509_get_subject_name(issuer));
	if (is_ca) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(x, issuer, NID_ext_key_usage, eku);
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
		if (san)
			add_ext(x, issuer, NID_subject_alt_name, san);
	}
	if (!X509_sign(x, is_ca ? key : ca_pkey, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int tls_load_or_create_ca(const char *dir, char *err, size_t errlen)
{
	char crt_path[4096], key_path[4096];
	snprintf(crt_path, sizeof(crt_path), "%s/ca.crt", dir);
	snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
	FILE *fc = fopen(crt_path, "r"), *fk = fopen(key_path, "r");
	if (fc && fk) {
		ca_cert = PEM_read_X509(fc, NULL, NULL, NULL);
		ca_pkey = PEM_read_PrivateKey(fk, NULL, NULL, NULL);
	}
	if (fc)
		fclose(fc);
	if (fk)
		fclose(fk);
	if (!ca_cert || !ca_pkey) {
		X509_free(ca_cert);
		EVP_PKEY_free(ca_pkey);
		ca_pkey = EVP_EC_gen("P-256");
		if (!ca_pkey) {
			set_err(err, errlen, "CA key generation failed");
			return -1;
		}
		ca_cert = make_cert(ca_pkey, "kubesim-ca", "kubesim", 1, NULL, NULL);
		if (!ca_cert) {
			set_err(err, errlen, "CA signing failed");
			return -1;
		}
		char *kp = pem_of_key(ca_pkey), *cp = pem_of_cert(ca_cert);
		int rc = write_file(key_path, kp, strlen(kp), 0600) ||
			 write_file(crt_path, cp, strlen(cp), 0644);
		free(kp);
		free(cp);
		if (rc) {
			snprintf(err, errlen, "cannot write %s", crt_path);
			return -1;
		}
	}
	g_sim.ca_crt = pem_of_cert(ca_cert);
	g_sim.ca_key = pem_of_key(ca_pkey);
	return 0;
}

int tls_make_server_cert(char *err, size_t errlen)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k) {
		set_err(err, errlen, "server key generation failed");
		return -1;
	}
	X509 *x = make_cert(k, "kubesim", "kubesim", 0,
			    "IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubesim,DNS:kubernetes,DNS:kubernetes.default.svc",
			    "serverAuth");
	if (!x) {
		EVP_PKEY_free(k);
		set_err(err, errlen, "server certificate signing failed");
		return -1;
	}
	g_sim.srv_crt = pem_of_cert(x);
	g_sim.srv_key = pem_of_key(k);
	X509_free(x);
	EVP_PKEY_free(k);
	char p[4096];
	snprintf(p, sizeof(p), "%s/server.crt", g_sim.dir);
	write_file(p, g_sim.srv_crt, strlen(g_sim.srv_crt), 0644);
	snprintf(p, sizeof(p), "%s/server.key", g_sim.dir);
	write_file(p, g_sim.srv_key, strlen(g_sim.srv_key), 0600);
	return 0;
}

int tls_make_client_cert(const char *cn, const char *org, char **crt, char **key,
			 char *err, size_t errlen)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k) {
		set_err(err, errlen, "client key generation failed");
		return -1;
	}
	X509 *x = make_cert(k, cn, org, 0, NULL, "clientAuth");
	if (!x) {
		EVP_PKEY_free(k);
		set_err(err, errlen, "client certificate signing failed");
		return -1;
	}
	*crt = pem_of_cert(x);
	*key = pem_of_key(k);
	X509_free(x);
	EVP_PKEY_free(k);
	return 0;
}

void tls_free(void);
void tls_free(void)
{
	X509_free(ca_cert);
	EVP_PKEY_free(ca_pkey);
	ca_cert = NULL;
	ca_pkey = NULL;
}
