/*
 * api/tenants: platform administration of tenants (platform-wide admin
 * tokens only; http.c enforces the scope and role from the route table).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "db/dbq.h"
#include "db/tenants.h"
#include "db/tokencache.h"
#include "server/app.h"

void api_tenants_create(struct api_req *r)
{
	static const char *const fields[] = { "name", NULL };
	json_t *body = api_body_object(r);
	if (!body)
		return;
	if (!api_check_fields(r, body, fields))
		goto out;
	json_t *name = json_object_get(body, "name");
	if (!json_is_string(name)) {
		api_problem_errors(r, 400, "Invalid field",
				   json_pack("[{s:s,s:s}]", "field", "name", "message", "must be a string"),
				   "name is required and must be a string");
		goto out;
	}
	if (!api_dns_label_ok(json_string_value(name))) {
		api_problem_errors(r, 400, "Invalid field",
				   json_pack("[{s:s,s:s}]", "field", "name", "message",
					     "lower-case letters, digits and '-', 1-63 characters"),
				   "name must be a DNS label (lower-case letters, digits, '-')");
		goto out;
	}
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	json_t *t = NULL;
	char err[256];
	int st = db_tenant_create(db, json_string_value(name), &t, err, sizeof(err));
	if (st == DB_CONFLICT) {
		api_problem(r, 409, "Conflict", "a tenant named \"%s\" already exists",
			    json_string_value(name));
	} else if (st == DB_INVALID) {
		api_problem(r, 400, "Invalid field", "the tenant name is not valid");
	} else if (st != DB_OK) {
		api_db_error(r, err);
	} else {
		snprintf(r->target, sizeof(r->target), "%s",
			 json_string_value(json_object_get(t, "id")));
		api_reply(r, 201, t);
	}
out:
	json_decref(body);
}

void api_tenants_list(struct api_req *r)
{
	int limit;
	if (!api_limit(r, &limit))
		return;
	PGconn *db = api_db(r);
	if (!db)
		return;
	json_t *page = NULL;
	char err[256];
	int st = db_tenant_list(db, limit, api_query(r, "cursor"), &page, err, sizeof(err));
	api_reply_page(r, st, page, err);
}

void api_tenants_delete(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	long nclusters = 0;
	char err[256];
	char mark[64];
	tokencache_mark(db, mark);
	int st = db_tenant_delete(db, r->params[0], &nclusters, err, sizeof(err));
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no tenant %s", r->params[0]);
	else if (st == DB_CONFLICT)
		api_problem(r, 409, "Conflict",
			    "the tenant still has %ld cluster(s); delete them first", nclusters);
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
