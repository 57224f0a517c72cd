/*
 * api/tokens: creating, listing and revoking API tokens (admin role).
 * A tenant admin works only inside its own tenant; a platform admin may
 * create tokens for any tenant or platform-wide ones (no tenant_id).
 * The secret is generated here (32 random bytes), returned once in the 201
 * answer, and only its hash is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "db/dbq.h"
#include "db/tokencache.h"
#include "db/tokens.h"
#include "server/app.h"
#include "server/common/crypto.h"

static json_t *field_error(const char *field, const char *msg)
{
	return json_pack("[{s:s,s:s}]", "field", field, "message", msg);
}

void api_tokens_create(struct api_req *r)
{
	static const char *const fields[] = { "name", "role", "tenant_id", NULL };
	char *secret = NULL;
	json_t *body = api_body_object(r);
	if (!body)
		return;
	if (!api_check_fields(r, body, fields))
		goto out;
	json_t *name = json_object_get(body, "name");
	json_t *role = json_object_get(body, "role");
	json_t *tenant = json_object_get(body, "tenant_id");
	if (name && !json_is_string(name)) {
		api_problem_errors(r, 400, "Invalid field", field_error("name", "must be a string"),
				   "name must be a string");
		goto out;
	}
	if (name && strlen(json_string_value(name)) > 100) {
		api_problem_errors(r, 400, "Invalid field", field_error("name", "at most 100 characters"),
				   "name is longer than 100 characters");
		goto out;
	}
	if (!json_is_string(role) || api_role_parse(json_string_value(role)) == API_ROLE_NONE) {
		api_problem_errors(r, 400, "Invalid field",
				   field_error("role", "one of admin, operator, viewer"),
				   "role is required: admin, operator or viewer");
		goto out;
	}
	if (tenant && !json_is_null(tenant) &&
	    (!json_is_string(tenant) || !api_is_uuid(json_string_value(tenant)))) {
		api_problem_errors(r, 400, "Invalid field", field_error("tenant_id", "must be a UUID"),
				   "tenant_id must be a UUID");
		goto out;
	}
	const char *tenant_id = json_is_string(tenant) ? json_string_value(tenant) : NULL;
	if (api_tenant(r)) {
		/* Tenant admin: only its own tenant. */
		if (tenant_id && strcasecmp(tenant_id, r->auth.tenant_id) != 0) {
			api_problem(r, 404, "Not found", "no tenant %s", tenant_id);
			goto out;
		}
		tenant_id = r->auth.tenant_id;
	}
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	secret = token_generate();
	if (!secret) {
		api_problem(r, 500, "Internal error", "could not generate a token");
		goto out;
	}
	char hash[65];
	token_hash(secret, hash);
	json_t *tok = NULL;
	char err[256];
	int st = db_token_create(db, tenant_id, name ? json_string_value(name) : "",
				 json_string_value(role), hash, &tok, err, sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 404, "Not found", "no tenant %s", tenant_id ? tenant_id : "");
	} else if (st == DB_INVALID) {
		api_problem(r, 400, "Bad request", "the token fields are not valid");
	} else if (st != DB_OK) {
		api_db_error(r, err);
	} else {
		snprintf(r->target, sizeof(r->target), "%s",
			 json_string_value(json_object_get(tok, "id")));
		json_object_set_new(tok, "token", json_string(secret));
		api_reply(r, 201, tok);
	}
out:
	if (secret) {
		memset(secret, 0, strlen(secret));
		free(secret);
	}
	json_decref(body);
}

void api_tokens_list(struct api_req *r)
{
	int limit;
	if (!api_limit(r, &limit))
		return;
	const char *scope = api_tenant(r);
	const char *filter = api_query(r, "tenant_id");
	if (!scope && filter) {
		if (!api_is_uuid(filter)) {
			api_problem(r, 400, "Bad request", "tenant_id must be a UUID");
			return;
		}
		scope = filter;
	}
	PGconn *db = api_db(r);
	if (!db)
		return;
	json_t *page = NULL;
	char err[256];
	int st = db_token_list(db, scope, limit, api_query(r, "cursor"), &page, err, sizeof(err));
	api_reply_page(r, st, page, err);
}

void api_tokens_delete(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	char err[256];
	char mark[64];
	tokencache_mark(db, mark);
	int st = db_token_revoke(db, api_tenant(r), r->params[0], err, sizeof(err));
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no token %s", r->params[0]);
	else if (st != DB_OK)
		api_db_error(r, err);
	else {
		/* Committed: every process's token cache forgets the token
		 * before we answer (the NOTIFY of migrations/017_api_reads.sql,
		 * acknowledged by each listener). */
		tokencache_changed(r->app->tokens, db, mark, 1000);
		api_reply(r, 204, NULL);
	}
}
