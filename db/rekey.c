/*
 * rekey.c: re-seal stored credentials under a new master key (rekey.h).
 */
#include "db/rekey.h"

#include "server/common/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every sealed column: table, its key column, the sealed value and the
 * column recording the sealing key's id. */
static const struct sealed_column {
	const char *table, *id_col, *value_col, *key_id_col;
} sealed_columns[] = {
	{ "clusters", "id", "credentials", "credentials_key_id" },
};

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(err, errlen, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Re-seals one column's values; 0 or -1 with err. */
static int rekey_column(PGconn *c, const struct sealed_column *col, const struct keyring *old,
			const struct keyring *new_keys, long *count, char *err, size_t errlen)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", col->table);
	if (exec_ok(c, sql, err, errlen) != 0)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT %s::text, %s FROM %s WHERE %s IS NOT NULL ORDER BY 1",
		 col->id_col, col->value_col, col->table, col->value_col);
	PGresult *rows = PQexec(c, sql);
	if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading %s.%s: %s", col->table, col->value_col, PQerrorMessage(c));
		PQclear(rows);
		return -1;
	}
	snprintf(sql, sizeof(sql), "UPDATE %s SET %s = $2, %s = $3 WHERE %s::text = $1", col->table,
		 col->value_col, col->key_id_col, col->id_col);
	int rc = 0;
	for (int i = 0; i < PQntuples(rows) && rc == 0; i++) {
		const char *id = PQgetvalue(rows, i, 0);
		char why[256];
		size_t len = 0;
		char *plain = crypto_open(old, PQgetvalue(rows, i, 1), &len, why, sizeof(why));
		if (!plain) {
			snprintf(err, errlen,
				 "the old key does not open %s.%s of %s %s (%s): is the old key the one ferryd "
				 "runs with?",
				 col->table, col->value_col, col->table, id, why);
			rc = -1;
			break;
		}
		char *sealed = crypto_seal(new_keys, plain, len);
		memset(plain, 0, len);
		free(plain);
		const char *p[3] = { id, sealed, keyring_current_id(new_keys) };
		PGresult *u = PQexecParams(c, sql, 3, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(u) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "updating %s %s: %s", col->table, id, PQerrorMessage(c));
			rc = -1;
		} else {
			(*count)++;
		}
		PQclear(u);
		free(sealed);
	}
	PQclear(rows);
	return rc;
}

int db_rekey(PGconn *c, const struct keyring *old, const struct keyring *new_keys, long *count,
	     char *err, size_t errlen)
{
	*count = 0;
	if (exec_ok(c, "BEGIN", err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(sealed_columns) / sizeof(sealed_columns[0]); i++) {
		if (rekey_column(c, &sealed_columns[i], old, new_keys, count, err, errlen) != 0) {
			char ignored[64];
			exec_ok(c, "ROLLBACK", ignored, sizeof(ignored));
			*count = 0;
			return -1;
		}
	}
	if (exec_ok(c, "COMMIT", err, errlen) != 0) {
		*count = 0;
		return -1;
	}
	return 0;
}
