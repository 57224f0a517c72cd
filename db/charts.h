/*
 * db/charts: uploaded chart archives (migrations/010_charts.sql), always
 * scoped by tenant: another tenant's chart is DB_NOT_FOUND.
 *
 * Chart JSON (the REST representation): {id, name, version, app_version,
 * sha256, size, created_at}. The archive bytes are never part of it; they
 * are read with db_chart_archive() (the install's chart source).
 *
 * Returns db_status (db/dbq.h); *out new reference on DB_OK.
 * Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_CHARTS_H
#define FERRY_DB_CHARTS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

struct db_chart_new {
	const char *name;
	const char *version;
	const char *app_version;    /* NULL or "" = none */
	const char *sha256;         /* lower-case hex */
	const unsigned char *archive;
	size_t len;
	const char *created_by;     /* token id or NULL */
};

/*
 * Store a chart. DB_OK with *created = 1 (new row, *out the chart) or
 * *created = 0 (the same bytes were already stored under that name and
 * version: *out the existing chart); DB_CONFLICT when that name and
 * version hold different bytes (*out the existing chart); DB_INVALID,
 * DB_ERROR.
 */
int db_chart_put(PGconn *conn, const char *tenant_id, const struct db_chart_new *c,
		 json_t **out, int *created, char *err, size_t errlen);

/* DB_OK, DB_NOT_FOUND. */
int db_chart_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		 char *err, size_t errlen);

/* The tenant's charts, oldest first, optionally only those named name:
 * {"items", "next_cursor"}. DB_BAD_CURSOR on a bad cursor. */
int db_chart_list(PGconn *conn, const char *tenant_id, const char *name, int limit,
		  const char *cursor, json_t **out, char *err, size_t errlen);

/* DB_OK, DB_NOT_FOUND. */
int db_chart_delete(PGconn *conn, const char *tenant_id, const char *id, char *err,
		    size_t errlen);

/* The archive of (name, version): *data malloc'd (caller frees), *len,
 * id[37] and sha256[65] filled. DB_OK, DB_NOT_FOUND, DB_ERROR. */
int db_chart_archive(PGconn *conn, const char *tenant_id, const char *name,
		     const char *version, unsigned char **data, size_t *len, char id[37],
		     char sha256[65], char *err, size_t errlen);

#endif
