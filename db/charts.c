/*
 * db/charts: chart rows. The archive goes in and out as a binary
 * parameter/result (bytea), never as escaped text; everything else uses
 * the JSON-row helpers of db/dbq.h.
 *
 * An upload is one statement: INSERT ... ON CONFLICT DO NOTHING in a CTE,
 * and, when that inserted nothing, the existing row of the same name and
 * version, so the caller can tell "same bytes again" (idempotent) from
 * "other bytes under a taken version" (conflict) by the stored SHA-256.
 */
#include "db/charts.h"
#include "db/dbq.h"
#include "server/common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHART_JSON \
	"json_build_object('id', ch.id, 'name', ch.name, 'version', ch.version," \
	" 'app_version', ch.app_version, 'sha256', ch.sha256, 'size', ch.size," \
	" 'created_at', ferry_ts(ch.created_at))::text"

static int parse_row(const char *text, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	*out = json_loads(text, 0, &jerr);
	if (!*out) {
		snprintf(err, errlen, "bad JSON from database: %s", jerr.text);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_chart_put(PGconn *conn, const char *tenant_id, const struct db_chart_new *c,
		 json_t **out, int *created, char *err, size_t errlen)
{
	*out = NULL;
	*created = 0;
	if (c->len > 0x7fffffff) {
		snprintf(err, errlen, "archive too large");
		return DB_INVALID;
	}
	char size[24];
	snprintf(size, sizeof size, "%zu", c->len);
	const char *p[8] = { tenant_id, c->name, c->version,
			     c->app_version && *c->app_version ? c->app_version : NULL,
			     c->sha256, size, (const char *)c->archive, c->created_by };
	int lens[8] = { 0, 0, 0, 0, 0, 0, (int)c->len, 0 };
	int fmts[8] = { 0, 0, 0, 0, 0, 0, 1, 0 };
	static const char sql[] =
		"WITH ins AS ("
		" INSERT INTO charts (tenant_id, name, version, app_version, sha256, size, archive, created_by)"
		" VALUES ($1::uuid, $2, $3, $4, $5, $6::int, $7::bytea, $8::uuid)"
		" ON CONFLICT (tenant_id, name, version) DO NOTHING"
		" RETURNING *)"
		" SELECT " CHART_JSON ", 1, ch.sha256 FROM ins ch"
		" UNION ALL"
		" SELECT " CHART_JSON ", 0, ch.sha256 FROM charts ch"
		"  WHERE ch.tenant_id = $1::uuid AND ch.name = $2 AND ch.version = $3"
		"  AND NOT EXISTS (SELECT 1 FROM ins)";
	PGresult *res = PQexecParams(conn, sql, 8, NULL, p, lens, fmts, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	int st;
	if (PQntuples(res) < 1) {
		/* Deleted between the insert attempt and the read: rare; retryable. */
		snprintf(err, errlen, "chart row vanished during upload; retry");
		st = DB_ERROR;
	} else {
		st = parse_row(PQgetvalue(res, 0, 0), out, err, errlen);
		if (st == DB_OK) {
			*created = PQgetvalue(res, 0, 1)[0] == '1';
			if (!*created && strcmp(PQgetvalue(res, 0, 2), c->sha256) != 0)
				st = DB_CONFLICT;
		}
	}
	PQclear(res);
	return st;
}

int db_chart_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		 char *err, size_t errlen)
{
	const char *p[2] = { tenant_id, id };
	return dbq_json_row(conn,
			    "SELECT " CHART_JSON " FROM charts ch WHERE ch.tenant_id = $1::uuid AND ch.id = $2::uuid",
			    2, p, out, err, errlen);
}

int db_chart_list(PGconn *conn, const char *tenant_id, const char *name, int limit,
		  const char *cursor, json_t **out, char *err, size_t errlen)
{
	char us[24] = "", id[37] = "", lim[16];
	*out = NULL;
	if (cursor && dbq_cursor_parse(cursor, us, id) != 0)
		return DB_BAD_CURSOR;
	snprintf(lim, sizeof lim, "%d", limit + 1);
	const char *p[5] = { tenant_id, cursor ? us : NULL, cursor ? id : NULL, lim, name };
	return dbq_page(conn,
			"SELECT " CHART_JSON ", " DBQ_CURSOR_SQL("ch") " FROM charts ch"
			" WHERE ch.tenant_id = $1::uuid AND ($5::text IS NULL OR ch.name = $5)"
			" AND ($2::bigint IS NULL OR (ch.created_at, ch.id) >"
			"  ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
			" ORDER BY ch.created_at, ch.id LIMIT $4::int",
			5, p, limit, out, err, errlen);
}

int db_chart_delete(PGconn *conn, const char *tenant_id, const char *id, char *err,
		    size_t errlen)
{
	const char *p[2] = { tenant_id, id };
	long n = 0;
	int st = dbq_exec(conn, "DELETE FROM charts WHERE tenant_id = $1::uuid AND id = $2::uuid", 2, p,
			  &n, err, errlen);
	if (st == DB_OK && n == 0)
		return DB_NOT_FOUND;
	return st;
}

int db_chart_archive(PGconn *conn, const char *tenant_id, const char *name,
		     const char *version, unsigned char **data, size_t *len, char id[37],
		     char sha256[65], char *err, size_t errlen)
{
	*data = NULL;
	*len = 0;
	const char *p[3] = { tenant_id, name, version };
	/* Binary results: column 0 is the raw bytea; ids come back as 16 bytes,
	 * so they are cast to text first and read as text-in-binary (plain). */
	PGresult *res = PQexecParams(conn,
		"SELECT archive, id::text, sha256 FROM charts"
		" WHERE tenant_id = $1::uuid AND name = $2 AND version = $3",
		3, NULL, p, NULL, NULL, 1);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		snprintf(err, errlen, "no uploaded chart %s %s", name, version);
		return DB_NOT_FOUND;
	}
	size_t n = (size_t)PQgetlength(res, 0, 0);
	*data = xmalloc(n ? n : 1);
	memcpy(*data, PQgetvalue(res, 0, 0), n);
	*len = n;
	snprintf(id, 37, "%.*s", PQgetlength(res, 0, 1), PQgetvalue(res, 0, 1));
	snprintf(sha256, 65, "%.*s", PQgetlength(res, 0, 2), PQgetvalue(res, 0, 2));
	PQclear(res);
	return DB_OK;
}
