/*
 * api/auth: bearer tokens. The presented token is hashed (SHA-256) and
 * looked up by hash; the database never sees the secret and a timing
 * difference in the lookup reveals nothing useful about it. Every failure
 * (no header, wrong scheme, unknown, revoked, tenant deleted) is the same
 * 401 so callers cannot probe which tokens exist. Accepted tokens are kept
 * a few seconds in the process's token cache (db/tokencache.h), emptied
 * by every revocation in any process.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/session.h"
#include "db/dbq.h"
#include "db/tokencache.h"
#include "db/tokens.h"
#include "server/app.h"
#include "server/common/crypto.h"

int api_authenticate(struct api_req *r)
{
	const char *h = api_header(r, "Authorization");
	/* Single sign-on (a console session cookie, an issuer's JWT). */
	int sso_ok;
	if (api_sso_authenticate(r, h, &sso_ok))
		return sso_ok;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		api_problem(r, 401, "Unauthorized",
			    "send an API token as \"Authorization: Bearer <token>\"");
		return 0;
	}
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	if (n == 0 || n > 256) {
		api_problem(r, 401, "Unauthorized", "the bearer token is not valid");
		return 0;
	}
	char hash[65];
	token_hash(tok, hash);
	struct db_token_info info;
	char err[256];
	int st;
	/* The token cache first (db/tokencache.h: revocations empty it). */
	struct tokencache *tc = r->app ? r->app->tokens : NULL;
	uint64_t gen = 0;
	if (tc && tokencache_get(tc, hash, &info, &gen)) {
		st = DB_OK;
	} else {
		PGconn *db = api_db(r);
		if (!db)
			return 0;
		st = db_token_lookup(db, hash, &info, err, sizeof(err));
		if (st == DB_OK && tc)
			tokencache_put(tc, hash, &info, gen);
	}
	if (st == DB_NOT_FOUND) {
		api_problem(r, 401, "Unauthorized",
			    "the bearer token is not valid (unknown or revoked)");
		return 0;
	}
	if (st != DB_OK) {
		api_db_error(r, err);
		return 0;
	}
	r->auth.ok = 1;
	snprintf(r->auth.token_id, sizeof(r->auth.token_id), "%s", info.id);
	snprintf(r->auth.tenant_id, sizeof(r->auth.tenant_id), "%s", info.tenant_id);
	snprintf(r->auth.tenant_name, sizeof(r->auth.tenant_name), "%s", info.tenant_name);
	r->auth.role = api_role_parse(info.role);
	return 1;
}

void api_me_get(struct api_req *r)
{
	json_t *me = json_object();
	json_object_set_new(me, "token_id",
			    r->auth.token_id[0] ? json_string(r->auth.token_id) : json_null());
	json_object_set_new(me, "tenant_id",
			    r->auth.tenant_id[0] ? json_string(r->auth.tenant_id) : json_null());
	json_object_set_new(me, "tenant_name",
			    r->auth.tenant_id[0] ? json_string(r->auth.tenant_name) : json_null());
	json_object_set_new(me, "role", json_string(api_role_name(r->auth.role)));
	if (r->auth.subject[0])
		json_object_set_new(me, "subject", json_string(r->auth.subject));
	api_reply(r, 200, me);
}
