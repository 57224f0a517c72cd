/*
 * db/tenants: tenant rows. A tenant is soft-deleted (deleted_at set) and
 * only while it has no clusters; its tokens stop working at once (token
 * lookup ignores deleted tenants). Tenant JSON: {id, name, created_at}.
 *
 * All functions return a db_status (db/dbq.h) with a message in err on
 * DB_ERROR; *out is a new reference owned by the caller on DB_OK.
 * Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_TENANTS_H
#define FERRY_DB_TENANTS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* DB_OK, DB_CONFLICT (name taken), DB_INVALID (name pattern), DB_ERROR. */
int db_tenant_create(PGconn *conn, const char *name, json_t **out, char *err, size_t errlen);
/* Live tenants, oldest first: {"items", "next_cursor"}. DB_BAD_CURSOR. */
int db_tenant_list(PGconn *conn, int limit, const char *cursor, json_t **out,
		   char *err, size_t errlen);
/* DB_OK, DB_NOT_FOUND (absent or already deleted), DB_CONFLICT (has
 * clusters; *nclusters set), DB_ERROR. */
int db_tenant_delete(PGconn *conn, const char *id, long *nclusters, char *err, size_t errlen);

#endif
