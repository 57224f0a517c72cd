/*
 * crypto: AES-256-GCM sealing of stored credentials, API tokens, hashing.
 *
 * A keyring is a small array of (id, 32-byte key); the first one seals. The
 * sealed text is "v1:<id>:<base64(nonce12 | ciphertext | tag16)>" and the
 * string "v1:<id>" is bound to the ciphertext as additional authenticated
 * data, so a sealed value cannot be relabelled with another key id.
 * All primitives come from OpenSSL (EVP, RAND_bytes); nothing is invented
 * here except the framing.
 */
#include "server/common/crypto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "server/common/buf.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_KEYS 16
#define MAX_ID 64

struct keyring_key {
	char id[MAX_ID + 1];
	unsigned char key[KEY_LEN];
};

struct keyring {
	int n;
	struct keyring_key keys[MAX_KEYS];
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int valid_id_char(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.';
}

struct keyring *keyring_parse(const char *spec, char *err, size_t errlen)
{
	struct keyring *kr = xcalloc(1, sizeof(*kr));
	const char *p = spec ? spec : "";
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (kr->n == MAX_KEYS) {
			snprintf(err, errlen, "master key: more than %d keys", MAX_KEYS);
			goto fail;
		}
		const char *colon = strchr(p, ':');
		if (!colon || colon == p || colon - p > MAX_ID) {
			snprintf(err, errlen, "master key: expected \"id:hex64[,id:hex64...]\" (key %d)", kr->n + 1);
			goto fail;
		}
		struct keyring_key *k = &kr->keys[kr->n];
		for (const char *q = p; q < colon; q++) {
			if (!valid_id_char((unsigned char)*q)) {
				snprintf(err, errlen, "master key: key id may only contain letters, digits, '-', '_', '.' (key %d)", kr->n + 1);
				goto fail;
			}
		}
		memcpy(k->id, p, (size_t)(colon - p));
		k->id[colon - p] = 0;
		const char *h = colon + 1;
		int i = 0;
		for (; i < KEY_LEN; i++) {
			int hi = hexval((unsigned char)h[2 * i]);
			int lo = hi < 0 ? -1 : hexval((unsigned char)h[2 * i + 1]);
			if (hi < 0 || lo < 0)
				break;
			k->key[i] = (unsigned char)(hi << 4 | lo);
		}
		const char *end = h + 2 * i;
		if (i != KEY_LEN || (*end && *end != ',' && !isspace((unsigned char)*end))) {
			snprintf(err, errlen, "master key \"%s\": the key must be exactly 64 hex digits (32 bytes)", k->id);
			goto fail;
		}
		for (int j = 0; j < kr->n; j++) {
			if (!strcmp(kr->keys[j].id, k->id)) {
				snprintf(err, errlen, "master key: key id \"%s\" appears twice", k->id);
				goto fail;
			}
		}
		kr->n++;
		p = end;
	}
	if (kr->n == 0) {
		snprintf(err, errlen, "master key: empty (expected \"id:hex64\")");
		goto fail;
	}
	return kr;
fail:
	keyring_free(kr);
	return NULL;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

const char *keyring_current_id(const struct keyring *kr)
{
	return kr->keys[0].id;
}

const char *keyring_id_conflict(const struct keyring *a, const struct keyring *b)
{
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			if (!strcmp(a->keys[i].id, b->keys[j].id) &&
			    CRYPTO_memcmp(a->keys[i].key, b->keys[j].key, KEY_LEN) != 0)
				return a->keys[i].id;
	return NULL;
}

char *crypto_seal(const struct keyring *kr, const void *plain, size_t len)
{
	const struct keyring_key *k = &kr->keys[0];
	char aad[MAX_ID + 8];
	snprintf(aad, sizeof(aad), "v1:%s", k->id);
	unsigned char *out = xmalloc(NONCE_LEN + len + TAG_LEN);
	char *result = NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;
	if (!ctx || random_bytes(out, NONCE_LEN) != 0)
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k->key, out) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1)
		goto out;
	if (len > 0 && EVP_EncryptUpdate(ctx, out + NONCE_LEN, &n, plain, (int)len) != 1)
		goto out;
	int fin = 0;
	if (EVP_EncryptFinal_ex(ctx, out + NONCE_LEN + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + NONCE_LEN + len) != 1)
		goto out;
	char *b64 = base64_encode(out, NONCE_LEN + len + TAG_LEN);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:%s", aad, b64);
	free(b64);
	result = buf_steal(&b);
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(out, NONCE_LEN + len + TAG_LEN);
	free(out);
	return result;
}

char *crypto_open(const struct keyring *kr, const char *sealed, size_t *len_out,
		  char *err, size_t errlen)
{
	char *plain = NULL;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	if (!sealed || strncmp(sealed, "v1:", 3) != 0) {
		snprintf(err, errlen, "sealed secret: unknown format");
		goto out;
	}
	const char *id = sealed + 3;
	const char *colon = strchr(id, ':');
	if (!colon || colon == id || colon - id > MAX_ID) {
		snprintf(err, errlen, "sealed secret: malformed key id");
		goto out;
	}
	const struct keyring_key *k = NULL;
	for (int i = 0; i < kr->n; i++) {
		if (strlen(kr->keys[i].id) == (size_t)(colon - id) &&
		    !strncmp(kr->keys[i].id, id, (size_t)(colon - id)))
			k = &kr->keys[i];
	}
	if (!k) {
		snprintf(err, errlen, "sealed secret: key id \"%.*s\" is not in the keyring", (int)(colon - id), id);
		goto out;
	}
	raw = base64_decode(colon + 1, &rawlen);
	if (!raw || rawlen < NONCE_LEN + TAG_LEN) {
		snprintf(err, errlen, "sealed secret: corrupt encoding");
		goto out;
	}
	size_t clen = rawlen - NONCE_LEN - TAG_LEN;
	plain = xmalloc(clen + 1);
	char aad[MAX_ID + 8];
	snprintf(aad, sizeof(aad), "v1:%s", k->id);
	int n = 0, fin = 0;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    (clen > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + NONCE_LEN, (int)clen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + NONCE_LEN + clen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + (clen > 0 ? n : 0), &fin) != 1) {
		snprintf(err, errlen, "sealed secret: authentication failed (wrong key or tampered data)");
		OPENSSL_cleanse(plain, clen + 1);
		free(plain);
		plain = NULL;
		goto out;
	}
	plain[clen] = 0;
	if (len_out)
		*len_out = clen;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return plain;
}

char *base64url_encode(const void *data, size_t len)
{
	char *b64 = base64_encode(data, len);
	char *w = b64;
	for (char *p = b64; *p && *p != '='; p++)
		*w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	*w = '\0';
	return b64;
}

char *token_generate(void)
{
	unsigned char raw[32];
	if (random_bytes(raw, sizeof(raw)) != 0)
		return NULL;
	char *b64 = base64url_encode(raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	struct buf b = BUF_INIT;
	buf_printf(&b, "fy_%s", b64);
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
	return buf_steal(&b);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		memset(out, '0', 64);
		out[64] = 0;
		return;
	}
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = 0;
}

void token_hash(const char *token, char out[65])
{
	sha256_hex(token, strlen(token), out);
}

int random_bytes(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

char *base64_encode(const void *data, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = data;
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0, i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = tbl[v >> 6 & 63];
		out[o++] = tbl[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = i + 1 < len ? tbl[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
	return out;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+' || c == '-') return 62;
	if (c == '/' || c == '_') return 63;
	return -1;
}

unsigned char *base64_decode(const char *text, size_t *len_out)
{
	if (!text)
		return NULL;
	size_t n = strlen(text);
	while (n > 0 && text[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return NULL;
	unsigned char *out = xmalloc(n / 4 * 3 + 3);
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)text[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	if (len_out)
		*len_out = o;
	return out;
}
