/*
 * db/tokens: API tokens. Only the SHA-256 of a token is stored
 * (server/common/crypto.h token_hash); the secret itself never reaches the
 * database. Token JSON: {id, name, role, tenant_id, created_at, last_used_at,
 * revoked_at} — never the hash.
 *
 * tenant scoping: functions taking `scope` only see tokens of that tenant
 * when scope is a tenant id, every token when scope is NULL (platform admin).
 *
 * Returns db_status (db/dbq.h); *out new reference on DB_OK.
 * Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_TOKENS_H
#define FERRY_DB_TOKENS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* NOTIFYed when a token or tenant changes so that cached token facts may
 * be wrong (migrations/017_api_reads.sql; db/tokencache.h). */
#define DB_TOKENS_CHANNEL "ferry_tokens"

struct db_token_info {
	char id[37];
	char tenant_id[37];    /* "" = platform-wide */
	char tenant_name[64];
	char role[16];
};

/* tenant_id NULL = platform-wide token. DB_OK, DB_NOT_FOUND (tenant absent
 * or deleted), DB_INVALID (role), DB_ERROR. */
int db_token_create(PGconn *conn, const char *tenant_id, const char *name, const char *role,
		    const char *hash, json_t **out, char *err, size_t errlen);
int db_token_list(PGconn *conn, const char *scope, int limit, const char *cursor,
		  json_t **out, char *err, size_t errlen);
/* Revoke (idempotent). DB_OK, DB_NOT_FOUND. */
int db_token_revoke(PGconn *conn, const char *scope, const char *id, char *err, size_t errlen);
/* The live token with this hash (not revoked, tenant not deleted) into
 * info, touching last_used_at at most once a minute. DB_OK, DB_NOT_FOUND. */
int db_token_lookup(PGconn *conn, const char *hash, struct db_token_info *info,
		    char *err, size_t errlen);

#endif
