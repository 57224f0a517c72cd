/*
 * jwt: verification of JSON Web Tokens (RFC 7519) signed with RS256 or
 * ES256 (RFC 7518) against a JSON Web Key Set (RFC 7517), as an OpenID
 * Connect issuer publishes it. Pure: no I/O; the caller supplies the key
 * set and the clock (api/oidc.c fetches and caches the set).
 *
 * What is refused, and the result that says so:
 *   - anything but three base64url parts with JSON objects: JWT_MALFORMED;
 *   - "alg" other than RS256/ES256 (so "none" and HS256 with a public key
 *     as secret never pass), or a key whose kty/alg/use/crv does not fit
 *     the token's alg, or an RSA key under 2048 bits: JWT_ALG;
 *   - a "kid" the set does not have (or no kid and not exactly one key
 *     that fits): JWT_UNKNOWN_KID (the caller may refetch the set once);
 *   - a signature that does not verify: JWT_SIGNATURE;
 *   - "iss" not equal to the expected issuer: JWT_ISSUER;
 *   - "aud" (string or array) not containing the audience: JWT_AUDIENCE;
 *   - "exp" missing or now > exp + skew: JWT_EXPIRED;
 *   - now + skew < "nbf" (when present): JWT_NOT_YET;
 *   - "nonce" different from the expected one (when one is expected):
 *     JWT_NONCE.
 * The signature is checked before any claim is believed.
 *
 * Memory: jwt_verify() puts a new reference to the claims in *claims on
 * JWT_OK (caller json_decref()s); nothing else is kept.
 * Thread-safety: stateless; any number of threads.
 */
#ifndef FERRY_JWT_H
#define FERRY_JWT_H

#include <jansson.h>
#include <stddef.h>

enum jwt_result {
	JWT_OK = 0,
	JWT_MALFORMED,
	JWT_ALG,
	JWT_UNKNOWN_KID,
	JWT_SIGNATURE,
	JWT_ISSUER,
	JWT_AUDIENCE,
	JWT_EXPIRED,
	JWT_NOT_YET,
	JWT_NONCE
};

struct jwt_expect {
	const char *issuer;     /* required */
	const char *audience;   /* required */
	long long now;          /* seconds since the epoch */
	int skew;               /* clock skew allowed on exp/nbf, seconds */
	const char *nonce;      /* NULL = not checked */
};

/* Verify token against jwks ({"keys": [...]}) and x. On anything but
 * JWT_OK, why holds a one-line reason fit for a log (never the token). */
enum jwt_result jwt_verify(const char *token, const json_t *jwks, const struct jwt_expect *x,
			   json_t **claims, char *why, size_t whylen);
/* 1 if text has the shape of a compact JWS ("xxx.yyy.zzz", base64url
 * characters, header starting "eyJ"): how API tokens ("fy_...") and JWTs
 * are told apart. */
int jwt_looks_like(const char *text);
/* A short stable name ("expired", "signature", ...) for metrics/tests. */
const char *jwt_result_name(enum jwt_result r);

#endif
