/*
 * db/tokens: token rows. Lookup is by the unique token_hash index; the
 * last_used_at touch is a separate cheap UPDATE, skipped when the stamp is
 * less than a minute old so read-heavy clients do not write on every call.
 */
#include "db/tokens.h"

#include <stdio.h>
#include <string.h>

#include "db/dbq.h"

#define TOKEN_JSON \
	"json_build_object('id', k.id, 'name', k.name, 'role', k.role, 'tenant_id', k.tenant_id," \
	" 'created_at', ferry_ts(k.created_at), 'last_used_at', ferry_ts(k.last_used_at)," \
	" 'revoked_at', ferry_ts(k.revoked_at))"

int db_token_create(PGconn *conn, const char *tenant_id, const char *name, const char *role,
		    const char *hash, json_t **out, char *err, size_t errlen)
{
	const char *p[4] = { tenant_id, name, role, hash };
	/* The tenant must be live; an absent one yields no row. */
	return dbq_json_row(conn,
			    "INSERT INTO api_tokens AS k (tenant_id, name, role, token_hash)"
			    " SELECT $1::uuid, $2, $3, $4"
			    " WHERE $1::uuid IS NULL OR EXISTS (SELECT 1 FROM tenants t"
			    "   WHERE t.id = $1::uuid AND t.deleted_at IS NULL)"
			    " RETURNING " TOKEN_JSON,
			    4, p, out, err, errlen);
}

int db_token_list(PGconn *conn, const char *scope, int limit, const char *cursor,
		  json_t **out, char *err, size_t errlen)
{
	char us[24] = "", id[37] = "", lim[16];
	if (cursor && dbq_cursor_parse(cursor, us, id) != 0)
		return DB_BAD_CURSOR;
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *p[4] = { scope, cursor ? us : NULL, cursor ? id : NULL, lim };
	return dbq_page(conn,
			"SELECT " TOKEN_JSON ", " DBQ_CURSOR_SQL("k") " FROM api_tokens k"
			" WHERE ($1::uuid IS NULL OR k.tenant_id = $1::uuid)"
			" AND ($2::bigint IS NULL OR"
			"  (k.created_at, k.id) > ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
			" ORDER BY k.created_at, k.id LIMIT $4::int",
			4, p, limit, out, err, errlen);
}

int db_token_revoke(PGconn *conn, const char *scope, const char *id, char *err, size_t errlen)
{
	const char *p[2] = { id, scope };
	long n = 0;
	int st = dbq_exec(conn,
			  "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())"
			  " WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2::uuid)",
			  2, p, &n, err, errlen);
	if (st != DB_OK)
		return st;
	return n ? DB_OK : DB_NOT_FOUND;
}

int db_token_lookup(PGconn *conn, const char *hash, struct db_token_info *info,
		    char *err, size_t errlen)
{
	const char *p[1] = { hash };
	memset(info, 0, sizeof(*info));
	PGresult *res;
	int st = dbq_one_row(conn,
			     "SELECT k.id, COALESCE(k.tenant_id::text, ''), COALESCE(t.name, ''), k.role,"
			     " k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'"
			     " FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id"
			     " WHERE k.token_hash = $1 AND k.revoked_at IS NULL"
			     " AND (k.tenant_id IS NULL OR t.deleted_at IS NULL)",
			     1, p, &res, err, errlen);
	if (st != DB_OK)
		return st;
	snprintf(info->id, sizeof(info->id), "%s", PQgetvalue(res, 0, 0));
	snprintf(info->tenant_id, sizeof(info->tenant_id), "%s", PQgetvalue(res, 0, 1));
	snprintf(info->tenant_name, sizeof(info->tenant_name), "%s", PQgetvalue(res, 0, 2));
	snprintf(info->role, sizeof(info->role), "%s", PQgetvalue(res, 0, 3));
	int touch = PQgetvalue(res, 0, 4)[0] == 't';
	PQclear(res);
	if (touch) {
		const char *q[1] = { info->id };
		dbq_exec(conn, "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", 1, q,
			 NULL, NULL, 0);
	}
	return DB_OK;
}
