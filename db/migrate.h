/*
 * db/migrate: the schema migration runner.
 *
 * Migrations are the numbered files migrations/NNN_name.sql, compiled into
 * ferryd at build time (db/embed_migrations.sh generates the table), so the
 * binary always carries the schema it expects. db_migrate_apply() takes a
 * session advisory lock (so concurrent ferryd processes migrate one at a
 * time), creates the bookkeeping table ferry_schema_migrations if needed,
 * and applies every migration not yet recorded, in version order, each in
 * its own transaction together with its record (version, name, SHA-256 of
 * the text). A recorded migration whose text changed since it was applied
 * is refused: start-up stops with a message naming the file.
 *
 * Memory: the built-in table is static. Thread-safety: stateless; one
 * PGconn per caller.
 */
#ifndef FERRY_DB_MIGRATE_H
#define FERRY_DB_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_migration {
	int version;        /* NNN from the file name */
	const char *name;   /* file name, e.g. "001_init.sql" */
	const char *sql;    /* file contents */
};

/* The migrations built into this binary, sorted by version. */
const struct db_migration *db_migrations_builtin(size_t *n);

/* Apply the pending ones among list[0..n) (sorted by version). Returns the
 * number applied (>= 0) or -1 with a message in err. */
int db_migrate_apply(PGconn *conn, const struct db_migration *list, size_t n,
		     char *err, size_t errlen);

/* 1 if every migration of list is applied with a matching checksum, 0 if
 * some are pending or differ, -1 on a database error. */
int db_migrate_is_current(PGconn *conn, const struct db_migration *list, size_t n);

#endif
