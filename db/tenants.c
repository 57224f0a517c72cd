/*
 * db/tenants: create, list and soft-delete tenants. The delete takes the
 * tenant row lock first so a cluster created concurrently (its foreign key
 * check locks the same row) cannot slip in between the count and the
 * update.
 */
#include "db/tenants.h"

#include <stdio.h>

#include "db/dbq.h"

#define TENANT_JSON \
	"json_build_object('id', t.id, 'name', t.name, 'created_at', ferry_ts(t.created_at))"

int db_tenant_create(PGconn *conn, const char *name, json_t **out, char *err, size_t errlen)
{
	const char *p[1] = { name };
	return dbq_json_row(conn,
			    "INSERT INTO tenants AS t (name) VALUES ($1) RETURNING " TENANT_JSON,
			    1, p, out, err, errlen);
}

int db_tenant_list(PGconn *conn, int limit, const char *cursor, json_t **out,
		   char *err, size_t errlen)
{
	char us[24] = "", id[37] = "", lim[16];
	if (cursor && dbq_cursor_parse(cursor, us, id) != 0)
		return DB_BAD_CURSOR;
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *p[3] = { cursor ? us : NULL, cursor ? id : NULL, lim };
	return dbq_page(conn,
			"SELECT " TENANT_JSON ", " DBQ_CURSOR_SQL("t") " FROM tenants t"
			" WHERE t.deleted_at IS NULL AND ($1::bigint IS NULL OR"
			"  (t.created_at, t.id) > ('epoch'::timestamptz + $1::bigint * interval '1 microsecond', $2::uuid))"
			" ORDER BY t.created_at, t.id LIMIT $3::int",
			3, p, limit, out, err, errlen);
}

int db_tenant_delete(PGconn *conn, const char *id, long *nclusters, char *err, size_t errlen)
{
	const char *p[1] = { id };
	int st = dbq_exec(conn, "BEGIN", 0, NULL, NULL, err, errlen);
	if (st != DB_OK)
		return st;
	json_t *row = NULL;
	st = dbq_json_row(conn,
			  "SELECT json_build_object('clusters', (SELECT count(*) FROM clusters c WHERE c.tenant_id = t.id))"
			  " FROM tenants t WHERE t.id = $1 AND t.deleted_at IS NULL FOR UPDATE",
			  1, p, &row, err, errlen);
	if (st != DB_OK)
		goto out;
	*nclusters = (long)json_integer_value(json_object_get(row, "clusters"));
	json_decref(row);
	if (*nclusters > 0) {
		st = DB_CONFLICT;
		goto out;
	}
	st = dbq_exec(conn, "UPDATE tenants SET deleted_at = now() WHERE id = $1", 1, p, NULL,
		      err, errlen);
	if (st != DB_OK)
		goto out;
	st = dbq_exec(conn, "COMMIT", 0, NULL, NULL, err, errlen);
	return st;
out:
	dbq_exec(conn, "ROLLBACK", 0, NULL, NULL, NULL, 0);
	return st;
}
