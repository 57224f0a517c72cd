/*
 * test_jwt: server/common/jwt.c against tokens signed at test time with
 * keys OpenSSL generates here (RSA 2048 and P-256), published as a JWKS the
 * way an OpenID provider does: valid tokens pass; forged signatures,
 * alg=none/HS256, wrong issuer or audience, expired and not-yet-valid
 * tokens, unknown key ids and a wrong nonce are refused with their own
 * result.
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/jwt.h"
#include "tests/unit/testlib.h"

static EVP_PKEY *rsa_key, *rsa_other, *ec_key, *rsa_small;
static json_t *jwks;
static long long now;

static char *b64u_bn(const EVP_PKEY *k, const char *name)
{
	BIGNUM *bn = NULL;
	EVP_PKEY_get_bn_param(k, name, &bn);
	unsigned char buf[1024];
	int n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return base64url_encode(buf, (size_t)n);
}

static json_t *jwk_of(EVP_PKEY *k, const char *kid)
{
	json_t *j = json_object();
	json_object_set_new(j, "kid", json_string(kid));
	json_object_set_new(j, "use", json_string("sig"));
	if (EVP_PKEY_is_a(k, "RSA")) {
		char *n = b64u_bn(k, OSSL_PKEY_PARAM_RSA_N), *e = b64u_bn(k, OSSL_PKEY_PARAM_RSA_E);
		json_object_set_new(j, "kty", json_string("RSA"));
		json_object_set_new(j, "n", json_string(n));
		json_object_set_new(j, "e", json_string(e));
		free(n);
		free(e);
	} else {
		unsigned char pub[65];
		size_t len = 0;
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len);
		char *x = base64url_encode(pub + 1, 32), *y = base64url_encode(pub + 33, 32);
		json_object_set_new(j, "kty", json_string("EC"));
		json_object_set_new(j, "crv", json_string("P-256"));
		json_object_set_new(j, "x", json_string(x));
		json_object_set_new(j, "y", json_string(y));
		free(x);
		free(y);
	}
	return j;
}

static char *b64u_json(json_t *j)
{
	char *t = json_dumps(j, JSON_COMPACT);
	char *r = base64url_encode(t, strlen(t));
	free(t);
	return r;
}

/* header {alg, kid} . claims . signature by key (NULL = sig "AAAA"). */
static char *sign(EVP_PKEY *key, const char *alg, const char *kid, json_t *claims)
{
	json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	char *hb = b64u_json(h), *cb = b64u_json(claims);
	json_decref(h);
	json_decref(claims);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s.%s", hb, cb);
	free(hb);
	free(cb);
	unsigned char sig[1024];
	size_t slen = sizeof(sig);
	if (key) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
		EVP_DigestSign(md, sig, &slen, (const unsigned char *)b.data, b.len);
		EVP_MD_CTX_free(md);
		if (EVP_PKEY_is_a(key, "EC")) {
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
			const BIGNUM *r, *s;
			ECDSA_SIG_get0(es, &r, &s);
			BN_bn2binpad(r, sig, 32);
			BN_bn2binpad(s, sig + 32, 32);
			ECDSA_SIG_free(es);
			slen = 64;
		}
	} else {
		memcpy(sig, "\x01\x02\x03", 3);
		slen = 3;
	}
	char *sb = base64url_encode(sig, slen);
	buf_printf(&b, ".%s", sb);
	free(sb);
	return buf_steal(&b);
}

static json_t *claims_ok(void)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:[s]}", "iss", "https://idp.example",
			 "sub", "alice", "aud", "ferry", "iat", (json_int_t)now,
			 "exp", (json_int_t)(now + 300), "groups", "ops");
}

static enum jwt_result verify(const char *tok, const char *nonce)
{
	struct jwt_expect x = { .issuer = "https://idp.example", .audience = "ferry", .now = now,
				.skew = 60, .nonce = nonce };
	json_t *claims = NULL;
	char why[256];
	enum jwt_result r = jwt_verify(tok, jwks, &x, &claims, why, sizeof(why));
	if (r == JWT_OK)
		check_str(json_string_value(json_object_get(claims, "sub")), "alice");
	else
		check(claims == NULL && why[0]);
	json_decref(claims);
	return r;
}

static void t_valid(void)
{
	char *t = sign(rsa_key, "RS256", "r1", claims_ok());
	check(verify(t, NULL) == JWT_OK);
	check(jwt_looks_like(t));
	free(t);
	t = sign(ec_key, "ES256", "e1", claims_ok());
	check(verify(t, NULL) == JWT_OK);
	free(t);
	json_t *c = claims_ok();
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", "ferry"));
	json_object_set_new(c, "nonce", json_string("n-1"));
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, "n-1") == JWT_OK);
	check(verify(t, "n-2") == JWT_NONCE);
	free(t);
	/* Expired 30 s ago: inside the 60 s skew. */
	c = claims_ok();
	json_object_set_new(c, "exp", json_integer(now - 30));
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_OK);
	free(t);
}

static void t_forged(void)
{
	/* Signed by another key under the published kid. */
	char *t = sign(rsa_other, "RS256", "r1", claims_ok());
	check(verify(t, NULL) == JWT_SIGNATURE);
	free(t);
	/* Claims changed after signing (sub -> admin). */
	t = sign(rsa_key, "RS256", "r1", claims_ok());
	json_t *c = claims_ok();
	json_object_set_new(c, "sub", json_string("mallory"));
	char *cb = b64u_json(c);
	json_decref(c);
	char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
	struct buf b = BUF_INIT;
	buf_printf(&b, "%.*s.%s%s", (int)(d1 - t), t, cb, d2);
	check(verify(buf_cstr(&b), NULL) == JWT_SIGNATURE);
	buf_free(&b);
	free(cb);
	free(t);
	/* An ES256 signature with one bit flipped. */
	t = sign(ec_key, "ES256", "e1", claims_ok());
	size_t n = strlen(t);
	t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
	check(verify(t, NULL) == JWT_SIGNATURE);
	free(t);
}

static void t_alg(void)
{
	char *t = sign(NULL, "none", "r1", claims_ok());
	check(verify(t, NULL) == JWT_ALG);
	/* alg none with an empty signature part */
	*strrchr(t, '.') = '\0';
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s.", t);
	check(verify(buf_cstr(&b), NULL) == JWT_MALFORMED);
	buf_free(&b);
	free(t);
	t = sign(NULL, "HS256", "r1", claims_ok());
	check(verify(t, NULL) == JWT_ALG);
	free(t);
	/* RS256 header naming the EC key. */
	t = sign(rsa_key, "RS256", "e1", claims_ok());
	check(verify(t, NULL) == JWT_ALG);
	free(t);
	/* A 1024-bit RSA key in the set is refused. */
	t = sign(rsa_small, "RS256", "small", claims_ok());
	check(verify(t, NULL) == JWT_ALG);
	free(t);
}

static void t_claims(void)
{
	json_t *c = claims_ok();
	json_object_set_new(c, "iss", json_string("https://evil.example"));
	char *t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_ISSUER);
	free(t);
	c = claims_ok();
	json_object_set_new(c, "aud", json_string("someone-else"));
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_AUDIENCE);
	free(t);
	c = claims_ok();
	json_object_del(c, "aud");
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_AUDIENCE);
	free(t);
	c = claims_ok();
	json_object_set_new(c, "exp", json_integer(now - 120));
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_EXPIRED);
	free(t);
	c = claims_ok();
	json_object_del(c, "exp");
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_EXPIRED);
	free(t);
	c = claims_ok();
	json_object_set_new(c, "nbf", json_integer(now + 600));
	t = sign(rsa_key, "RS256", "r1", c);
	check(verify(t, NULL) == JWT_NOT_YET);
	free(t);
}

static void t_kid_and_shape(void)
{
	char *t = sign(rsa_key, "RS256", "rotated-away", claims_ok());
	check(verify(t, NULL) == JWT_UNKNOWN_KID);
	free(t);
	check(verify("fy_abc", NULL) == JWT_MALFORMED);
	check(verify("eyJ.eyJ.", NULL) == JWT_MALFORMED);
	check(verify("a.b.c.d", NULL) == JWT_MALFORMED);
	check(verify("", NULL) == JWT_MALFORMED);
	check(!jwt_looks_like("fy_abcdef"));
	check(!jwt_looks_like("eyJhbGc.eyJ"));
	check(!jwt_looks_like("eyJ a.b.c"));
	check_str(jwt_result_name(JWT_EXPIRED), "expired");
}

int main(void)
{
	now = (long long)time(NULL);
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	jwks = json_pack("{s:[o,o,o]}", "keys", jwk_of(rsa_key, "r1"), jwk_of(ec_key, "e1"),
			 jwk_of(rsa_small, "small"));
	test_run("jwt_valid_rs256_es256_aud_array_nonce_skew", t_valid);
	test_run("jwt_forged_signature_refused", t_forged);
	test_run("jwt_alg_none_hs256_wrong_key_type_refused", t_alg);
	test_run("jwt_wrong_iss_aud_expired_nbf_refused", t_claims);
	test_run("jwt_unknown_kid_and_malformed", t_kid_and_shape);
	json_decref(jwks);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa_other);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec_key);
	return test_summary();
}
