/*
 * db/migrate: apply numbered SQL migrations exactly once each.
 *
 * Bookkeeping lives in ferry_schema_migrations(version, name, checksum,
 * applied_at). The whole run holds pg_advisory_lock(DB_MIGRATE_LOCK) so two
 * processes starting together do not both apply 002. Each migration runs
 * in one transaction with its bookkeeping row: a migration that fails
 * leaves nothing behind and the error names the file. Checksums are the
 * SHA-256 of the file text; a mismatch with an applied version is refused,
 * because silently diverging schemas are worse than a failed start.
 */
#include "db/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/crypto.h"

/* An arbitrary constant: "ferry" in ASCII. */
#define DB_MIGRATE_LOCK "6710389371513"

static void trim_copy(char *dst, size_t len, const char *msg)
{
	snprintf(dst, len, "%s", msg ? msg : "");
	size_t l = strlen(dst);
	while (l > 0 && (dst[l - 1] == '\n' || dst[l - 1] == ' '))
		dst[--l] = 0;
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok && err) {
		char m[400];
		trim_copy(m, sizeof(m), PQerrorMessage(c));
		snprintf(err, errlen, "migrate: %s", m);
	}
	PQclear(r);
	return ok ? 0 : -1;
}

static const char create_table[] =
	"CREATE TABLE IF NOT EXISTS ferry_schema_migrations ("
	" version integer PRIMARY KEY,"
	" name text NOT NULL,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";

/* Look up the checksum of an applied version: 1 found (into sum), 0 not,
 * -1 error. */
static int applied_sum(PGconn *c, int version, char sum[65], char *err, size_t errlen)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", version);
	const char *params[1] = { v };
	PGresult *r = PQexecParams(c, "SELECT checksum FROM ferry_schema_migrations WHERE version = $1",
				   1, NULL, params, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		if (err) {
			char m[400];
			trim_copy(m, sizeof(m), PQerrorMessage(c));
			snprintf(err, errlen, "migrate: %s", m);
		}
		rc = -1;
	} else if (PQntuples(r) == 0) {
		rc = 0;
	} else {
		snprintf(sum, 65, "%s", PQgetvalue(r, 0, 0));
		rc = 1;
	}
	PQclear(r);
	return rc;
}

int db_migrate_apply(PGconn *conn, const struct db_migration *list, size_t n,
		     char *err, size_t errlen)
{
	int applied = 0;
	if (exec_ok(conn, "SELECT pg_advisory_lock(" DB_MIGRATE_LOCK ")", err, errlen) < 0)
		return -1;
	PGresult *t = PQexec(conn, "SELECT to_regclass('ferry_schema_migrations') IS NULL");
	int missing = PQresultStatus(t) == PGRES_TUPLES_OK && PQgetvalue(t, 0, 0)[0] == 't';
	PQclear(t);
	if (missing && exec_ok(conn, create_table, err, errlen) < 0) {
		applied = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct db_migration *m = &list[i];
		char want[65], have[65];
		sha256_hex(m->sql, strlen(m->sql), want);
		int found = applied_sum(conn, m->version, have, err, errlen);
		if (found < 0) {
			applied = -1;
			goto out;
		}
		if (found) {
			if (strcmp(want, have) != 0) {
				snprintf(err, errlen,
					 "migrate: %s was changed after it was applied (checksum %.12s… in the database, %.12s… in this build); "
					 "add a new migration instead of editing an applied one",
					 m->name, have, want);
				applied = -1;
				goto out;
			}
			continue;
		}
		if (exec_ok(conn, "BEGIN", err, errlen) < 0) {
			applied = -1;
			goto out;
		}
		PGresult *r = PQexec(conn, m->sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			char msg[400];
			trim_copy(msg, sizeof(msg), PQerrorMessage(conn));
			snprintf(err, errlen, "migrate: %s failed: %s", m->name, msg);
			PQclear(r);
			exec_ok(conn, "ROLLBACK", NULL, 0);
			applied = -1;
			goto out;
		}
		PQclear(r);
		char v[16];
		snprintf(v, sizeof(v), "%d", m->version);
		const char *params[3] = { v, m->name, want };
		r = PQexecParams(conn,
				 "INSERT INTO ferry_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
				 3, NULL, params, NULL, NULL, 0);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || exec_ok(conn, "COMMIT", err, errlen) < 0) {
			if (!ok) {
				char msg[400];
				trim_copy(msg, sizeof(msg), PQerrorMessage(conn));
				snprintf(err, errlen, "migrate: recording %s failed: %s", m->name, msg);
			}
			exec_ok(conn, "ROLLBACK", NULL, 0);
			applied = -1;
			goto out;
		}
		applied++;
	}
out:
	exec_ok(conn, "SELECT pg_advisory_unlock(" DB_MIGRATE_LOCK ")", NULL, 0);
	return applied;
}

int db_migrate_is_current(PGconn *conn, const struct db_migration *list, size_t n)
{
	PGresult *r = PQexec(conn, "SELECT version, checksum FROM ferry_schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* The table not existing means nothing was applied yet. */
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		int rc = state && !strcmp(state, "42P01") ? 0 : -1;
		PQclear(r);
		return rc;
	}
	int current = 1;
	for (size_t i = 0; i < n && current; i++) {
		char want[65];
		sha256_hex(list[i].sql, strlen(list[i].sql), want);
		int found = 0;
		for (int row = 0; row < PQntuples(r); row++) {
			if (atoi(PQgetvalue(r, row, 0)) == list[i].version &&
			    !strcmp(PQgetvalue(r, row, 1), want))
				found = 1;
		}
		if (!found)
			current = 0;
	}
	PQclear(r);
	return current;
}
