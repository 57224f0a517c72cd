/*
 * coredb.h: helpers for the core integration tests: a fresh database of
 * their own on the throw-away server tests/run starts, migrated, with a
 * tenant and clusters to hang jobs on. Header-only (static functions).
 */
#ifndef FERRY_TESTS_COREDB_H
#define FERRY_TESTS_COREDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db/migrate.h"

static void coredb_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Create database NAME_<pid> and write its URL into url. 0 on success;
 * -1 when tests/run's PostgreSQL is not available (why in why). */
static inline int coredb_create(const char *name, char *url, size_t len, char *why, size_t whylen)
{
	const char *admin = getenv("FERRY_TEST_PG_ADMIN_URL");
	if (!admin || !strstr(admin, "///postgres?")) {
		snprintf(why, whylen, "FERRY_TEST_PG_ADMIN_URL not set (run through tests/run)");
		return -1;
	}
	PGconn *c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(why, whylen, "cannot connect to %s", admin);
		PQfinish(c);
		return -1;
	}
	char db[128], sql[300];
	PQsetNoticeProcessor(c, coredb_quiet, NULL);
	snprintf(db, sizeof(db), "%s_%ld", name, (long)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	PQclear(PQexec(c, sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(why, whylen, "CREATE DATABASE failed: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	if (!ok)
		return -1;
	const char *rest = strstr(admin, "///postgres?") + strlen("///postgres");
	snprintf(url, len, "%.*s///%s%s", (int)(strstr(admin, "///postgres?") - admin), admin, db, rest);
	return 0;
}

static inline void coredb_drop(const char *url)
{
	const char *admin = getenv("FERRY_TEST_PG_ADMIN_URL");
	const char *p = strstr(url, "///");
	if (!admin || !p)
		return;
	char db[128];
	snprintf(db, sizeof(db), "%.*s", (int)strcspn(p + 3, "?"), p + 3);
	PGconn *c = PQconnectdb(admin);
	char sql[300];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	PQclear(PQexec(c, sql));
	PQfinish(c);
}

static inline int coredb_migrate(PGconn *c, char *why, size_t whylen)
{
	size_t n;
	const struct db_migration *list = db_migrations_builtin(&n);
	return db_migrate_apply(c, list, n, why, whylen) < 0 ? -1 : 0;
}

/* Run SQL returning one value; copies it into out (may be NULL). */
static inline int coredb_value(PGconn *c, const char *sql, char *out, size_t len)
{
	PGresult *r = PQexec(c, sql);
	int ok = (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1) ||
		 PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "coredb: %s: %s", sql, PQerrorMessage(c));
	if (ok && out && PQresultStatus(r) == PGRES_TUPLES_OK)
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return ok ? 0 : -1;
}

static inline long coredb_long(PGconn *c, const char *sql)
{
	char v[64] = "-1";
	if (coredb_value(c, sql, v, sizeof(v)) < 0)
		return -1;
	return atol(v);
}

#endif
