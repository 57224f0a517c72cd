/*
 * session: see session.h.
 */
#include "api/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/oidc.h"
#include "db/dbq.h"
#include "db/sessions.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/jwt.h"
#include "server/log.h"

#define SESSION_COOKIE "ferry_session"
#define LOGIN_COOKIE "ferry_login"
#define LOGIN_TTL_S 600

/* A random base64url string of n random bytes into out (malloc'd). */
static char *random_text(size_t n)
{
	unsigned char b[48];
	if (n > sizeof(b) || random_bytes(b, n) != 0)
		return NULL;
	char *t = base64url_encode(b, n);
	OPENSSL_cleanse(b, sizeof(b));
	return t;
}

static int is_mutating(const char *m)
{
	return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH") || !strcmp(m, "DELETE");
}

/* The CSRF header equals the session's token (compared in constant time). */
static int csrf_ok(struct api_req *r, const char *want)
{
	const char *got = api_header(r, "X-CSRF-Token");
	size_t n = strlen(want);
	return got && want[0] && strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
}

static void set_cookie(struct api_req *r, const char *name, const char *value, const char *path,
		       long max_age)
{
	char c[512];
	snprintf(c, sizeof(c), "%s=%s; Path=%s; Max-Age=%ld; HttpOnly; SameSite=Lax%s", name, value,
		 path, max_age, r->secure ? "; Secure" : "");
	api_set_header(r, "Set-Cookie", c);
}

/* token_id stays "": rows that reference api_tokens (jobs.created_by, ...)
 * get NULL, and the audit row names the person in actor. */
static void fill_auth(struct api_req *r, const char *tenant_id, const char *tenant_name,
		      enum api_role role, const char *subject)
{
	r->auth.ok = 1;
	r->auth.token_id[0] = '\0';
	snprintf(r->auth.tenant_id, sizeof(r->auth.tenant_id), "%s", tenant_id);
	snprintf(r->auth.tenant_name, sizeof(r->auth.tenant_name), "%s", tenant_name);
	r->auth.role = role;
	snprintf(r->auth.subject, sizeof(r->auth.subject), "oidc:%s", subject);
}

static int session_auth(struct api_req *r, const char *cookie)
{
	char hash[65];
	token_hash(cookie, hash);
	PGconn *db = api_db(r);
	if (!db)
		return 0;
	struct db_session s;
	char err[256];
	int st = db_session_lookup(db, hash, &s, err, sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 401, "Unauthorized",
			    "the session has expired or was ended; sign in again");
		return 0;
	}
	if (st != DB_OK) {
		api_db_error(r, err);
		return 0;
	}
	if (is_mutating(r->method) && !csrf_ok(r, s.csrf_token)) {
		api_problem(r, 403, "Forbidden",
			    "a request authenticated by the session cookie must carry the session's "
			    "CSRF token in X-CSRF-Token (GET /v1/auth/session)");
		return 0;
	}
	fill_auth(r, s.tenant_id, s.tenant_name, api_role_parse(s.role), s.subject);
	return 1;
}

/* Claims -> tenant id/name and role; 0 after answering 403/503. */
static int map_claims(struct api_req *r, const json_t *claims, const char *want, char tenant_id[37],
		      char tenant[64], enum api_role *role)
{
	char why[256];
	tenant_id[0] = '\0';
	if (oidc_map(r->app->oidc, claims, want, tenant, role, why, sizeof(why)) != 0) {
		api_problem(r, 403, "Forbidden", "%s", why);
		return 0;
	}
	if (!tenant[0])
		return 1;
	PGconn *db = api_db(r);
	if (!db)
		return 0;
	char err[256];
	int st = db_session_tenant_id(db, tenant, tenant_id, err, sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 403, "Forbidden", "the tenant \"%s\" your groups map to does not exist",
			    tenant);
		return 0;
	}
	if (st != DB_OK) {
		api_db_error(r, err);
		return 0;
	}
	return 1;
}

static int jwt_auth(struct api_req *r, const char *token)
{
	struct oidc *o = r->app->oidc;
	if (!o) {
		api_problem(r, 401, "Unauthorized",
			    "the bearer token is a JWT but no OpenID Connect issuer is configured");
		return 0;
	}
	json_t *claims = NULL;
	char why[256];
	int res = oidc_verify(o, token, NULL, NULL, &claims, why, sizeof(why));
	if (res < 0) {
		log_msg(LOG_WARN, "request %s: cannot verify a JWT: %s", r->request_id, why);
		api_problem(r, 503, "Service unavailable", "the issuer's keys cannot be fetched now");
		return 0;
	}
	if (res != JWT_OK) {
		api_problem(r, 401, "Unauthorized", "the bearer JWT is not valid: %s", why);
		return 0;
	}
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	char tenant_id[37], tenant[64];
	enum api_role role;
	int ok = 0;
	if (!sub || !*sub || strlen(sub) > 255)
		api_problem(r, 401, "Unauthorized", "the bearer JWT has no subject (or one over 255 bytes)");
	else if (map_claims(r, claims, api_header(r, "X-Ferry-Tenant"), tenant_id, tenant, &role)) {
		fill_auth(r, tenant_id, tenant, role, sub);
		ok = 1;
	}
	json_decref(claims);
	return ok;
}

int api_sso_authenticate(struct api_req *r, const char *authorization, int *ok)
{
	if (!authorization) {
		const char *cookie = api_cookie(r, SESSION_COOKIE);
		if (!cookie || !*cookie)
			return 0;
		*ok = session_auth(r, cookie);
		return 1;
	}
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return 0;
	const char *tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	if (!jwt_looks_like(tok))
		return 0;
	*ok = jwt_auth(r, tok);
	return 1;
}

/* ---- routes ------------------------------------------------------------- */

static int sso_on(struct api_req *r)
{
	if (r->app->oidc)
		return 1;
	api_problem(r, 404, "Not found", "single sign-on is not configured on this server");
	return 0;
}

/* A console path to return to: "/" + printable, not "//" (no open
 * redirect to another host). */
static int return_to_ok(const char *p)
{
	if (!p || p[0] != '/' || p[1] == '/' || p[1] == '\\' || strlen(p) > 200)
		return 0;
	for (const char *c = p; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f)
			return 0;
	return 1;
}

void api_auth_login(struct api_req *r)
{
	if (!sso_on(r))
		return;
	const char *tenant = api_query(r, "tenant");
	const char *ret = api_query(r, "return_to");
	if (tenant && strcmp(tenant, "*") != 0 && !api_dns_label_ok(tenant)) {
		api_problem(r, 400, "Bad request", "tenant must be a tenant name or *");
		return;
	}
	if (ret && !return_to_ok(ret)) {
		api_problem(r, 400, "Bad request", "return_to must be a path on this server");
		return;
	}
	char *state = random_text(32), *nonce = random_text(32), *verifier = random_text(48);
	if (!state || !nonce || !verifier) {
		free(state);
		free(nonce);
		free(verifier);
		api_problem(r, 500, "Internal error", "no randomness");
		return;
	}
	unsigned char digest[32];
	EVP_Digest(verifier, strlen(verifier), digest, NULL, EVP_sha256(), NULL);
	char *challenge = base64url_encode(digest, sizeof(digest));
	struct db_login l;
	memset(&l, 0, sizeof(l));
	snprintf(l.nonce, sizeof(l.nonce), "%s", nonce);
	snprintf(l.code_verifier, sizeof(l.code_verifier), "%s", verifier);
	snprintf(l.tenant, sizeof(l.tenant), "%s", tenant ? tenant : "");
	snprintf(l.return_to, sizeof(l.return_to), "%s", ret ? ret : "");
	char hash[65], err[512];
	token_hash(state, hash);
	struct buf url = BUF_INIT;
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	if (db_login_create(db, hash, &l, LOGIN_TTL_S, err, sizeof(err)) != DB_OK) {
		api_db_error(r, err);
		goto out;
	}
	if (oidc_authorize_url(r->app->oidc, state, nonce, challenge, &url, err, sizeof(err)) != 0) {
		log_msg(LOG_WARN, "request %s: single sign-on: %s", r->request_id, err);
		api_problem(r, 503, "Service unavailable", "the identity provider cannot be reached: %s",
			    err);
		goto out;
	}
	set_cookie(r, LOGIN_COOKIE, state, "/v1/auth/", LOGIN_TTL_S);
	api_set_header(r, "Location", buf_cstr(&url));
	api_reply(r, 302, NULL);
out:
	buf_free(&url);
	OPENSSL_cleanse(verifier, strlen(verifier));
	free(state);
	free(nonce);
	free(verifier);
	free(challenge);
}

void api_auth_callback(struct api_req *r)
{
	if (!sso_on(r))
		return;
	struct oidc *o = r->app->oidc;
	const char *error = api_query(r, "error");
	const char *code = api_query(r, "code");
	const char *state = api_query(r, "state");
	const char *cookie = api_cookie(r, LOGIN_COOKIE);
	if (error) {
		api_problem(r, 401, "Unauthorized", "the identity provider refused the sign-in: %.100s",
			    error);
		return;
	}
	if (!code || !state || strlen(code) > 2048 || strlen(state) > 128) {
		api_problem(r, 400, "Bad request", "the callback needs code and state");
		return;
	}
	/* The state must be the one this browser started with. */
	if (!cookie || strlen(cookie) != strlen(state) ||
	    CRYPTO_memcmp(cookie, state, strlen(state)) != 0) {
		api_problem(r, 400, "Bad request",
			    "this sign-in was not started from this browser (state mismatch); start again");
		return;
	}
	PGconn *db = api_db(r);
	if (!db)
		return;
	char hash[65], err[512];
	token_hash(state, hash);
	struct db_login l;
	int st = db_login_take(db, hash, &l, err, sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 400, "Bad request", "this sign-in expired or was already used; start again");
		return;
	}
	if (st != DB_OK) {
		api_db_error(r, err);
		return;
	}
	json_t *tokens = NULL, *claims = NULL;
	char *secret = NULL, *csrf = NULL, *groups = NULL;
	if (oidc_exchange_code(o, code, l.code_verifier, &tokens, err, sizeof(err)) != 0) {
		log_msg(LOG_WARN, "request %s: code exchange failed: %s", r->request_id, err);
		api_problem(r, 502, "Bad gateway", "the identity provider did not accept the code: %s", err);
		goto out;
	}
	int res = oidc_verify(o, json_string_value(json_object_get(tokens, "id_token")),
			      oidc_client_id(o), l.nonce, &claims, err, sizeof(err));
	if (res != JWT_OK) {
		log_msg(LOG_WARN, "request %s: ID token refused: %s", r->request_id, err);
		api_problem(r, 401, "Unauthorized", "the ID token is not valid: %s", err);
		goto out;
	}
	char tenant_id[37], tenant[64];
	enum api_role role;
	if (!map_claims(r, claims, l.tenant[0] ? l.tenant : NULL, tenant_id, tenant, &role))
		goto out;
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	const char *name = json_string_value(json_object_get(claims, "name"));
	if (!name)
		name = json_string_value(json_object_get(claims, "email"));
	json_t *g = json_object_get(claims, "groups");
	groups = json_dumps(json_is_array(g) ? g : json_array(), JSON_COMPACT);
	secret = random_text(32);
	csrf = random_text(24);
	if (!sub || !*sub || strlen(sub) > 255 || !secret || !csrf) {
		api_problem(r, 401, "Unauthorized", "the ID token has no subject (or one over 255 bytes)");
		goto out;
	}
	char shash[65];
	token_hash(secret, shash);
	struct db_session s;
	st = db_session_create(db, shash, csrf, tenant_id, api_role_name(role), oidc_issuer(o), sub,
			       name ? name : "", groups, oidc_session_ttl(o), &s, err, sizeof(err));
	if (st != DB_OK) {
		if (st == DB_NOT_FOUND)
			api_problem(r, 403, "Forbidden", "the tenant was deleted meanwhile");
		else
			api_db_error(r, err);
		goto out;
	}
	fill_auth(r, tenant_id, tenant, role, sub);
	log_msg(LOG_INFO, "request %s: oidc:%s signed in (tenant %s, role %s)", r->request_id, sub,
		tenant[0] ? tenant : "*", api_role_name(role));
	set_cookie(r, SESSION_COOKIE, secret, "/", oidc_session_ttl(o));
	set_cookie(r, LOGIN_COOKIE, "", "/v1/auth/", 0);
	api_set_header(r, "Location", l.return_to[0] ? l.return_to : "/");
	api_reply(r, 302, NULL);
out:
	if (secret)
		OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
	free(csrf);
	free(groups);
	json_decref(tokens);
	json_decref(claims);
}

/* The session the request's cookie names: 1 found (*s, *db and hash set),
 * 0 no cookie or no such live session, -1 the problem already answered
 * (no database, a database error). */
static int cookie_session(struct api_req *r, PGconn **db, struct db_session *s, char hash[65])
{
	const char *cookie = api_cookie(r, SESSION_COOKIE);
	if (!cookie || !*cookie)
		return 0;
	char err[256];
	token_hash(cookie, hash);
	if (!(*db = api_db(r)))
		return -1;
	int st = db_session_lookup(*db, hash, s, err, sizeof(err));
	if (st == DB_NOT_FOUND)
		return 0;
	if (st != DB_OK) {
		api_db_error(r, err);
		return -1;
	}
	return 1;
}

void api_auth_logout(struct api_req *r)
{
	PGconn *db = NULL;
	struct db_session s;
	char hash[65], err[256];
	int found = cookie_session(r, &db, &s, hash);
	if (found < 0)
		return;
	if (found) {
		if (!csrf_ok(r, s.csrf_token)) {
			api_problem(r, 403, "Forbidden", "logout needs the session's CSRF token in X-CSRF-Token");
			return;
		}
		fill_auth(r, s.tenant_id, s.tenant_name, api_role_parse(s.role), s.subject);
		if (db_session_delete(db, hash, err, sizeof(err)) != DB_OK) {
			api_db_error(r, err);
			return;
		}
	}
	json_t *out = json_object();
	set_cookie(r, SESSION_COOKIE, "", "/", 0);
	const char *end = r->app->oidc ? oidc_end_session_endpoint(r->app->oidc) : NULL;
	json_object_set_new(out, "signed_out", json_true());
	json_object_set_new(out, "end_session_endpoint", end ? json_string(end) : json_null());
	api_reply(r, 200, out);
}

void api_auth_session(struct api_req *r)
{
	json_t *out = json_object();
	json_t *sso = json_object();
	json_object_set_new(sso, "enabled", json_boolean(r->app->oidc != NULL));
	if (r->app->oidc) {
		json_object_set_new(sso, "issuer", json_string(oidc_issuer(r->app->oidc)));
		json_object_set_new(sso, "login_url", json_string("/v1/auth/login"));
	}
	json_object_set_new(out, "sso", sso);
	PGconn *db = NULL;
	struct db_session s;
	char hash[65];
	json_t *sess = json_null();
	int found = cookie_session(r, &db, &s, hash);
	if (found < 0) {
		json_decref(out);
		return;
	}
	if (found)
		sess = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s}", "id", s.id,
				 "subject", s.subject, "name", s.name, "tenant_id",
				 s.tenant_id[0] ? json_string(s.tenant_id) : json_null(),
				 "tenant_name",
				 s.tenant_id[0] ? json_string(s.tenant_name) : json_null(),
				 "role", s.role, "expires_at", s.expires_at, "csrf_token",
				 s.csrf_token);
	json_object_set_new(out, "session", sess);
	api_reply(r, 200, out);
}
