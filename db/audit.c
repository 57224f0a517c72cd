/*
 * db/audit: one INSERT per mutating request. Empty strings become NULL so
 * that the uuid columns accept "no tenant" and "no token".
 */
#include "db/audit.h"

#include <stdio.h>

#include "db/dbq.h"

static const char *nullable(const char *s)
{
	return s && *s ? s : NULL;
}

int db_audit_write(PGconn *conn, const struct db_audit_entry *e, char *err, size_t errlen)
{
	char status[16];
	snprintf(status, sizeof(status), "%d", e->status);
	const char *params[8] = {
		nullable(e->tenant_id), nullable(e->token_id), nullable(e->request_id),
		e->method, e->path, status, nullable(e->target), nullable(e->actor),
	};
	int st = dbq_exec(conn,
			  "INSERT INTO audit_log (tenant_id, token_id, request_id, method, path, status, target,"
			  " actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
			  8, params, NULL, err, errlen);
	return st == DB_OK ? 0 : -1;
}
