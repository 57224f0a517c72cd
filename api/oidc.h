/*
 * oidc: ferryd as an OpenID Connect relying party (docs/AUTH.md).
 *
 * Holds the configured issuer (FERRY_OIDC_*), its discovery document and
 * its key set (JWKS), both fetched with libcurl on first use and cached:
 * the key set is fetched again after an hour, or at once when a token names
 * a key id it does not have (a rotation), at most once per
 * FERRY_OIDC_JWKS_MIN_REFRESH_S (60 s) so that tokens with made-up key ids
 * cannot make ferryd hammer the issuer. Verification itself is
 * server/common/jwt.c.
 *
 * Claim mapping: FERRY_OIDC_ROLE_MAP is "GROUP=TENANT:ROLE[,...]" over the
 * values of the groups claim (FERRY_OIDC_GROUPS_CLAIM, "groups"); TENANT
 * "*" = platform-wide. oidc_map() picks the tenant of the first rule that
 * matches (or the one asked for) and the highest role any matching rule
 * gives for it.
 *
 * Memory: oidc_new() returns an object the caller frees with oidc_free();
 * json_t results are new references for the caller.
 * Thread-safety: every function may be called from any number of request
 * threads at once (a mutex guards the cache; fetches run outside it).
 */
#ifndef FERRY_OIDC_H
#define FERRY_OIDC_H

#include <jansson.h>
#include <stddef.h>

#include "api/api.h"
#include "server/common/buf.h"
#include "server/common/jwt.h"

struct oidc;

/* Configuration from the environment (FERRY_OIDC_CLIENT_ID, ..., see
 * docs/AUTH.md) for issuer (NULL = SSO off: returns NULL with err "").
 * NULL + reason in err for a bad setting. */
struct oidc *oidc_from_env(const char *issuer, char *err, size_t errlen);
void oidc_free(struct oidc *o);

const char *oidc_issuer(const struct oidc *o);
const char *oidc_client_id(const struct oidc *o);
/* Session length in seconds (FERRY_OIDC_SESSION_HOURS, 8 h). */
long oidc_session_ttl(const struct oidc *o);

/* The authorization request URL (code flow, PKCE S256) into out.
 * 0, or -1 with a reason (issuer unreachable). */
int oidc_authorize_url(struct oidc *o, const char *state, const char *nonce,
		       const char *code_challenge, struct buf *out, char *err, size_t errlen);
/* Exchange an authorization code at the token endpoint; *tokens = the
 * token response ({id_token, access_token, ...}). 0 or -1 + reason. */
int oidc_exchange_code(struct oidc *o, const char *code, const char *code_verifier,
		       json_t **tokens, char *err, size_t errlen);
/* Verify a JWT from this issuer for audience (NULL = the configured API
 * audience, FERRY_OIDC_AUDIENCE or the client id) and nonce (NULL = not
 * checked), fetching the key set again once for an unknown key id.
 * -1 (JWT_* below 0 never happens) when the key set cannot be had: why. */
int oidc_verify(struct oidc *o, const char *token, const char *audience, const char *nonce,
		json_t **claims, char *why, size_t whylen);
/* The groups from claims mapped to a tenant name ("" = platform-wide) and
 * a role. want_tenant (NULL = any) restricts the choice. 0, or -1 when no
 * rule matches (why says so). */
int oidc_map(const struct oidc *o, const json_t *claims, const char *want_tenant,
	     char tenant[64], enum api_role *role, char *why, size_t whylen);
/* The issuer's end_session_endpoint, or NULL (valid until oidc_free). */
const char *oidc_end_session_endpoint(struct oidc *o);

#endif
