/*
 * db/sessions: server-side console sessions and pending single sign-on
 * logins (migrations/016_auth_sessions.sql). Only SHA-256 hashes of the
 * session secret and of the login state reach the database.
 *
 * Returns db_status (db/dbq.h). Thread-safety: stateless; one PGconn per
 * caller. Strings are copied into the caller's structs; nothing to free.
 */
#ifndef FERRY_DB_SESSIONS_H
#define FERRY_DB_SESSIONS_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_session {
	char id[37];
	char tenant_id[37];      /* "" = platform-wide */
	char tenant_name[64];
	char role[16];
	char subject[256];
	char name[128];
	char csrf_token[64];
	char expires_at[40];     /* RFC 3339 */
};

struct db_login {
	char nonce[64];
	char code_verifier[128];
	char tenant[64];         /* "" = none asked for */
	char return_to[256];     /* "" = / */
};

/* Insert a session for secret_hash lasting ttl_s seconds; tenant_id NULL
 * or "" = platform-wide. groups_json: a JSON array text. The new row's id
 * and expiry into out (other members copied from the arguments).
 * DB_OK, DB_NOT_FOUND (tenant gone), DB_ERROR. */
int db_session_create(PGconn *conn, const char *secret_hash, const char *csrf_token,
		      const char *tenant_id, const char *role, const char *issuer,
		      const char *subject, const char *name, const char *groups_json, long ttl_s,
		      struct db_session *out, char *err, size_t errlen);
/* The live session (not expired, tenant not deleted) with this hash.
 * DB_OK, DB_NOT_FOUND. Also deletes expired sessions now and then. */
int db_session_lookup(PGconn *conn, const char *secret_hash, struct db_session *out,
		      char *err, size_t errlen);
/* Delete the session (logout). DB_OK (also when there was none). */
int db_session_delete(PGconn *conn, const char *secret_hash, char *err, size_t errlen);

/* Record a pending login for ttl_s seconds. DB_OK, DB_ERROR. */
int db_login_create(PGconn *conn, const char *state_hash, const struct db_login *l, long ttl_s,
		    char *err, size_t errlen);
/* Take (delete and return) the pending login of state_hash if it has not
 * expired: a state works once. DB_OK, DB_NOT_FOUND. */
int db_login_take(PGconn *conn, const char *state_hash, struct db_login *out, char *err,
		  size_t errlen);
/* The id of the live tenant called name. DB_OK, DB_NOT_FOUND. */
int db_session_tenant_id(PGconn *conn, const char *name, char id[37], char *err, size_t errlen);

#endif
