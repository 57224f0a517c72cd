/*
 * db/sessions: see sessions.h.
 */
#include "db/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dbq.h"

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int db_session_create(PGconn *conn, const char *secret_hash, const char *csrf_token,
		      const char *tenant_id, const char *role, const char *issuer,
		      const char *subject, const char *name, const char *groups_json, long ttl_s,
		      struct db_session *out, char *err, size_t errlen)
{
	char ttl[24];
	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	const char *p[9] = { secret_hash, csrf_token, tenant_id && *tenant_id ? tenant_id : NULL,
			     role, issuer, subject, name ? name : "", groups_json ? groups_json : "[]",
			     ttl };
	memset(out, 0, sizeof(*out));
	PGresult *res;
	int st = dbq_one_row(conn,
			     "INSERT INTO auth_sessions (secret_hash, csrf_token, tenant_id, role,"
			     " issuer, subject, name, groups, expires_at)"
			     " SELECT $1, $2, $3::uuid, $4, $5, $6, $7, $8::jsonb,"
			     " now() + make_interval(secs => $9::bigint)"
			     " WHERE $3::uuid IS NULL OR EXISTS (SELECT 1 FROM tenants"
			     "   WHERE id = $3::uuid AND deleted_at IS NULL)"
			     " RETURNING id, ferry_ts(expires_at)",
			     9, p, &res, err, errlen);
	if (st != DB_OK)
		return st;
	copy(out->id, sizeof(out->id), PQgetvalue(res, 0, 0));
	copy(out->expires_at, sizeof(out->expires_at), PQgetvalue(res, 0, 1));
	PQclear(res);
	copy(out->tenant_id, sizeof(out->tenant_id), tenant_id);
	copy(out->role, sizeof(out->role), role);
	copy(out->subject, sizeof(out->subject), subject);
	copy(out->name, sizeof(out->name), name);
	copy(out->csrf_token, sizeof(out->csrf_token), csrf_token);
	return DB_OK;
}

int db_session_lookup(PGconn *conn, const char *secret_hash, struct db_session *out,
		      char *err, size_t errlen)
{
	const char *p[1] = { secret_hash };
	memset(out, 0, sizeof(*out));
	PGresult *res;
	int st = dbq_one_row(conn,
			     "SELECT s.id, COALESCE(s.tenant_id::text, ''), COALESCE(t.name, ''),"
			     " s.role, s.subject, s.name, s.csrf_token, ferry_ts(s.expires_at)"
			     " FROM auth_sessions s LEFT JOIN tenants t ON t.id = s.tenant_id"
			     " WHERE s.secret_hash = $1 AND s.expires_at > now()"
			     " AND (s.tenant_id IS NULL OR t.deleted_at IS NULL)",
			     1, p, &res, err, errlen);
	if (st != DB_OK)
		return st;
	copy(out->id, sizeof(out->id), PQgetvalue(res, 0, 0));
	copy(out->tenant_id, sizeof(out->tenant_id), PQgetvalue(res, 0, 1));
	copy(out->tenant_name, sizeof(out->tenant_name), PQgetvalue(res, 0, 2));
	copy(out->role, sizeof(out->role), PQgetvalue(res, 0, 3));
	copy(out->subject, sizeof(out->subject), PQgetvalue(res, 0, 4));
	copy(out->name, sizeof(out->name), PQgetvalue(res, 0, 5));
	copy(out->csrf_token, sizeof(out->csrf_token), PQgetvalue(res, 0, 6));
	copy(out->expires_at, sizeof(out->expires_at), PQgetvalue(res, 0, 7));
	PQclear(res);
	/* Sweep expired rows about once per hundred lookups. */
	if (rand() % 100 == 0) {
		dbq_exec(conn, "DELETE FROM auth_sessions WHERE expires_at < now() - interval '1 day'",
			 0, NULL, NULL, NULL, 0);
		dbq_exec(conn, "DELETE FROM auth_logins WHERE expires_at < now()", 0, NULL, NULL, NULL, 0);
	}
	return DB_OK;
}

int db_session_delete(PGconn *conn, const char *secret_hash, char *err, size_t errlen)
{
	const char *p[1] = { secret_hash };
	return dbq_exec(conn, "DELETE FROM auth_sessions WHERE secret_hash = $1", 1, p, NULL, err,
			errlen);
}

int db_login_create(PGconn *conn, const char *state_hash, const struct db_login *l, long ttl_s,
		    char *err, size_t errlen)
{
	char ttl[24];
	snprintf(ttl, sizeof(ttl), "%ld", ttl_s);
	const char *p[6] = { state_hash, l->nonce, l->code_verifier, l->tenant[0] ? l->tenant : NULL,
			     l->return_to[0] ? l->return_to : NULL, ttl };
	return dbq_exec(conn,
			"INSERT INTO auth_logins (state_hash, nonce, code_verifier, tenant, return_to,"
			" expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::bigint))",
			6, p, NULL, err, errlen);
}

int db_login_take(PGconn *conn, const char *state_hash, struct db_login *out, char *err,
		  size_t errlen)
{
	const char *p[1] = { state_hash };
	memset(out, 0, sizeof(*out));
	PGresult *res;
	int st = dbq_one_row(conn,
			     "DELETE FROM auth_logins WHERE state_hash = $1"
			     " RETURNING nonce, code_verifier, COALESCE(tenant, ''),"
			     " COALESCE(return_to, ''), expires_at > now()",
			     1, p, &res, err, errlen);
	if (st != DB_OK)
		return st;
	if (PQgetvalue(res, 0, 4)[0] != 't') {  /* taken, but expired */
		PQclear(res);
		return DB_NOT_FOUND;
	}
	copy(out->nonce, sizeof(out->nonce), PQgetvalue(res, 0, 0));
	copy(out->code_verifier, sizeof(out->code_verifier), PQgetvalue(res, 0, 1));
	copy(out->tenant, sizeof(out->tenant), PQgetvalue(res, 0, 2));
	copy(out->return_to, sizeof(out->return_to), PQgetvalue(res, 0, 3));
	PQclear(res);
	return DB_OK;
}

int db_session_tenant_id(PGconn *conn, const char *name, char id[37], char *err, size_t errlen)
{
	const char *p[1] = { name };
	id[0] = '\0';
	PGresult *res;
	int st = dbq_one_row(conn,
			     "SELECT id FROM tenants WHERE name = $1 AND deleted_at IS NULL",
			     1, p, &res, err, errlen);
	if (st != DB_OK)
		return st;
	copy(id, 37, PQgetvalue(res, 0, 0));
	PQclear(res);
	return DB_OK;
}
