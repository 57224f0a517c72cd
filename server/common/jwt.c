/*
 * jwt: see jwt.h. Keys are built from their JWK members with OpenSSL 3's
 * EVP_PKEY_fromdata (RSA: n, e; EC P-256: x, y); ES256 signatures come as
 * the raw 64-byte r || s of RFC 7518 and are turned into the DER form
 * OpenSSL verifies.
 */
#include "server/common/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"
#include "server/common/crypto.h"

#define JWT_MAX_LEN 16384

const char *jwt_result_name(enum jwt_result r)
{
	switch (r) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed";
	case JWT_ALG: return "algorithm";
	case JWT_UNKNOWN_KID: return "unknown_kid";
	case JWT_SIGNATURE: return "signature";
	case JWT_ISSUER: return "issuer";
	case JWT_AUDIENCE: return "audience";
	case JWT_EXPIRED: return "expired";
	case JWT_NOT_YET: return "not_yet_valid";
	case JWT_NONCE: return "nonce";
	}
	return "?";
}

static int b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int jwt_looks_like(const char *t)
{
	if (!t || strncmp(t, "eyJ", 3) != 0)
		return 0;
	int dots = 0;
	for (const char *p = t; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!b64url_char(*p))
			return 0;
	}
	return dots == 2;
}

/* Decode a base64url segment [s, s+n) (no padding, URL alphabet only). */
static unsigned char *seg_decode(const char *s, size_t n, size_t *out_len)
{
	for (size_t i = 0; i < n; i++)
		if (!b64url_char(s[i]))
			return NULL;
	char *tmp = xmalloc(n + 1);
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	unsigned char *r = base64_decode(tmp, out_len);
	free(tmp);
	return r;
}

static json_t *seg_json(const char *s, size_t n)
{
	size_t len;
	unsigned char *raw = seg_decode(s, n, &len);
	if (!raw)
		return NULL;
	json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A JWK member decoded from base64url into a BIGNUM-ready byte string. */
static unsigned char *jwk_bytes(const json_t *jwk, const char *name, size_t *len)
{
	const char *v = json_string_value(json_object_get(jwk, name));
	return v ? seg_decode(v, strlen(v), len) : NULL;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk)
{
	size_t nl = 0, el = 0;
	unsigned char *n = jwk_bytes(jwk, "n", &nl), *e = jwk_bytes(jwk, "e", &el);
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	if (!n || !e || nl < 256 || el == 0 || el > 8)   /* at least 2048 bits */
		goto out;
	bn = BN_bin2bn(n, (int)nl, NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	if (pkey && EVP_PKEY_get_bits(pkey) < 2048) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	if (!crv || strcmp(crv, "P-256") != 0)
		return NULL;
	size_t xl = 0, yl = 0;
	unsigned char *x = jwk_bytes(jwk, "x", &xl), *y = jwk_bytes(jwk, "y", &yl);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char pub[65];
	if (!x || !y || xl != 32 || yl != 32)
		goto out;
	pub[0] = 0x04;   /* uncompressed point */
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

/* Does this JWK fit a token signed with alg? */
static int jwk_fits(const json_t *k, const char *alg)
{
	const char *kty = json_string_value(json_object_get(k, "kty"));
	const char *kalg = json_string_value(json_object_get(k, "alg"));
	const char *use = json_string_value(json_object_get(k, "use"));
	if (!kty || (use && strcmp(use, "sig") != 0) || (kalg && strcmp(kalg, alg) != 0))
		return 0;
	return !strcmp(alg, "RS256") ? !strcmp(kty, "RSA") : !strcmp(kty, "EC");
}

/* The JWK for (kid, alg): by kid when the token names one, else the only
 * fitting key. *unknown = 1 when none. */
static const json_t *find_key(const json_t *jwks, const char *kid, const char *alg, int *unknown)
{
	const json_t *keys = json_object_get(jwks, "keys");
	const json_t *found = NULL;
	size_t i, fitting = 0;
	const json_t *k;
	*unknown = 0;
	json_array_foreach(keys, i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kid) {
			if (kk && !strcmp(kk, kid)) {
				found = k;
				break;
			}
		} else if (jwk_fits(k, alg)) {
			found = k;
			fitting++;
		}
	}
	if (!found || (!kid && fitting != 1)) {
		*unknown = 1;
		return NULL;
	}
	return found;
}

static int verify_sig(EVP_PKEY *pkey, const char *alg, const unsigned char *data, size_t dlen,
		      const unsigned char *sig, size_t slen)
{
	unsigned char *der = NULL;
	int derlen = 0;
	if (!strcmp(alg, "ES256")) {
		if (slen != 64)
			return 0;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
		if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return 0;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (derlen <= 0)
			return 0;
		sig = der;
		slen = (size_t)derlen;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		 EVP_DigestVerify(md, sig, slen, data, dlen) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok;
}

static int aud_has(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	size_t i;
	const json_t *a;
	json_array_foreach(aud, i, a)
		if (json_is_string(a) && !strcmp(json_string_value(a), want))
			return 1;
	return 0;
}

enum jwt_result jwt_verify(const char *token, const json_t *jwks, const struct jwt_expect *x,
			   json_t **claims_out, char *why, size_t whylen)
{
	enum jwt_result res = JWT_MALFORMED;
	json_t *hdr = NULL, *claims = NULL;
	unsigned char *sig = NULL;
	EVP_PKEY *pkey = NULL;
	*claims_out = NULL;
	snprintf(why, whylen, "not a JWT");
	size_t tl = token ? strlen(token) : 0;
	if (!token || tl > JWT_MAX_LEN)
		return JWT_MALFORMED;
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1 || d2[1] == '\0')
		return JWT_MALFORMED;
	hdr = seg_json(token, (size_t)(d1 - token));
	claims = seg_json(d1 + 1, (size_t)(d2 - d1 - 1));
	size_t slen = 0;
	sig = seg_decode(d2 + 1, strlen(d2 + 1), &slen);
	if (!hdr || !claims || !sig) {
		snprintf(why, whylen, "the JWT's header, claims or signature do not decode");
		goto out;
	}
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0) ||
	    json_object_get(hdr, "crit")) {
		res = JWT_ALG;
		snprintf(why, whylen, "JWT algorithm \"%.20s\" is not accepted (RS256, ES256)",
			 alg ? alg : "(none)");
		goto out;
	}
	int unknown;
	const json_t *jwk = find_key(jwks, kid, alg, &unknown);
	if (!jwk) {
		res = JWT_UNKNOWN_KID;
		snprintf(why, whylen, "no key \"%.64s\" in the issuer's key set", kid ? kid : "(no kid)");
		goto out;
	}
	if (!jwk_fits(jwk, alg) || !(pkey = !strcmp(alg, "RS256") ? jwk_rsa(jwk) : jwk_ec(jwk))) {
		res = JWT_ALG;
		snprintf(why, whylen, "key \"%.64s\" does not fit algorithm %s", kid ? kid : "", alg);
		goto out;
	}
	if (!verify_sig(pkey, alg, (const unsigned char *)token, (size_t)(d2 - token), sig, slen)) {
		res = JWT_SIGNATURE;
		snprintf(why, whylen, "the JWT's signature does not verify");
		goto out;
	}
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	if (!iss || !x->issuer || strcmp(iss, x->issuer) != 0) {
		res = JWT_ISSUER;
		snprintf(why, whylen, "the JWT's issuer \"%.100s\" is not the configured one",
			 iss ? iss : "");
		goto out;
	}
	if (!x->audience || !aud_has(json_object_get(claims, "aud"), x->audience)) {
		res = JWT_AUDIENCE;
		snprintf(why, whylen, "the JWT is not meant for this audience");
		goto out;
	}
	const json_t *exp = json_object_get(claims, "exp");
	if (!json_is_number(exp) || (double)x->now > json_number_value(exp) + x->skew) {
		res = JWT_EXPIRED;
		snprintf(why, whylen, "the JWT has expired (or has no exp)");
		goto out;
	}
	const json_t *nbf = json_object_get(claims, "nbf");
	if (nbf && (!json_is_number(nbf) || (double)(x->now + x->skew) < json_number_value(nbf))) {
		res = JWT_NOT_YET;
		snprintf(why, whylen, "the JWT is not valid yet (nbf)");
		goto out;
	}
	if (x->nonce) {
		const char *n = json_string_value(json_object_get(claims, "nonce"));
		if (!n || strcmp(n, x->nonce) != 0) {
			res = JWT_NONCE;
			snprintf(why, whylen, "the ID token's nonce does not match the login");
			goto out;
		}
	}
	res = JWT_OK;
	why[0] = '\0';
	*claims_out = claims;
	claims = NULL;
out:
	EVP_PKEY_free(pkey);
	free(sig);
	json_decref(hdr);
	json_decref(claims);
	return res;
}
