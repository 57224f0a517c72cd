/*
 * api/charts: upload, list, get and delete chart archives.
 *
 * The body of an upload is the archive itself, not JSON. It is checked by
 * chart_inspect() (gzip + tar structure, no links or escaping paths,
 * bounded sizes, Chart.yaml name and SemVer version) before anything is
 * stored; the name and version stored are the ones Chart.yaml declares.
 * The SHA-256 of the exact bytes makes a repeated upload idempotent.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/charts.h"
#include "db/charts.h"
#include "db/dbq.h"
#include "server/chart/inspect.h"
#include "server/common/crypto.h"

static int archive_type(const char *ct)
{
	static const char *const ok[] = { "application/gzip", "application/x-gzip",
					  "application/x-tar+gzip", "application/x-compressed-tar",
					  "application/octet-stream", NULL };
	if (!ct)
		return 0;
	for (int i = 0; ok[i]; i++) {
		size_t n = strlen(ok[i]);
		if (!strncasecmp(ct, ok[i], n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
			return 1;
	}
	return 0;
}

static void reply_chart(struct api_req *r, int status, json_t *chart)
{
	snprintf(r->target, sizeof(r->target), "%s",
		 json_string_value(json_object_get(chart, "id")));
	if (status == 201) {
		char loc[128];
		snprintf(loc, sizeof(loc), "/v1/charts/%s", r->target);
		api_set_header(r, "Location", loc);
	}
	api_reply(r, status, chart);
}

void api_charts_upload(struct api_req *r)
{
	const char *ct = api_header(r, "Content-Type");
	if (!archive_type(ct)) {
		api_problem(r, 415, "Unsupported media type",
			    "send the chart archive (.tgz) as application/gzip or application/octet-stream (got %s)",
			    ct ? ct : "no Content-Type");
		return;
	}
	if (!r->body || r->body_len == 0) {
		api_problem(r, 400, "Invalid chart archive", "the body is empty: send the chart .tgz");
		return;
	}
	struct chart_inspect_info info;
	char why[512];
	if (chart_inspect(r->body, r->body_len, &info, why, sizeof why) != 0) {
		api_problem_errors(r, 400, "Invalid chart archive",
				   json_pack("[{s:s,s:s}]", "field", "body", "message", why),
				   "the upload is not a usable Helm chart archive: %s", why);
		return;
	}
	PGconn *db = api_db(r);
	if (!db)
		return;
	char sha[65];
	sha256_hex(r->body, r->body_len, sha);
	struct db_chart_new c = {
		.name = info.name, .version = info.version, .app_version = info.app_version,
		.sha256 = sha, .archive = (const unsigned char *)r->body, .len = r->body_len,
		.created_by = r->auth.token_id[0] ? r->auth.token_id : NULL,
	};
	json_t *chart = NULL;
	int created = 0;
	char err[256];
	int st = db_chart_put(db, r->auth.tenant_id, &c, &chart, &created, err, sizeof err);
	if (st == DB_CONFLICT) {
		api_problem_errors(r, 409, "Conflict",
				   json_pack("[{s:s,s:O}]", "field", "existing_id", "message",
					     json_object_get(chart, "id")),
				   "chart %s version %s is already stored with other content (sha256 %s); "
				   "charts are immutable: bump the version or delete the stored one first",
				   info.name, info.version,
				   json_string_value(json_object_get(chart, "sha256")));
		json_decref(chart);
	} else if (st == DB_INVALID) {
		api_problem(r, 400, "Invalid chart archive", "the chart was rejected by the database: %s", err);
	} else if (st != DB_OK) {
		api_db_error(r, err);
	} else {
		reply_chart(r, created ? 201 : 200, chart);
	}
}

void api_charts_list(struct api_req *r)
{
	int limit;
	if (!api_limit(r, &limit))
		return;
	const char *name = api_query(r, "name");
	if (name && !chart_name_ok(name)) {
		api_problem(r, 400, "Bad request", "name must be a chart name (lower-case letters, digits, '-', '_', '.')");
		return;
	}
	PGconn *db = api_db(r);
	if (!db)
		return;
	json_t *page = NULL;
	char err[256];
	int st = db_chart_list(db, r->auth.tenant_id, name, limit, api_query(r, "cursor"), &page, err,
			       sizeof err);
	api_reply_page(r, st, page, err);
}

void api_charts_get(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	json_t *chart = NULL;
	char err[256];
	int st = db_chart_get(db, r->auth.tenant_id, r->params[0], &chart, err, sizeof err);
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no chart %s", r->params[0]);
	else if (st != DB_OK)
		api_db_error(r, err);
	else
		reply_chart(r, 200, chart);
}

void api_charts_delete(struct api_req *r)
{
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	PGconn *db = api_db(r);
	if (!db)
		return;
	char err[256];
	int st = db_chart_delete(db, r->auth.tenant_id, r->params[0], err, sizeof err);
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no chart %s", r->params[0]);
	else if (st != DB_OK)
		api_db_error(r, err);
	else
		api_reply(r, 204, NULL);
}
