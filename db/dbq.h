/*
 * db/dbq: small query helpers for the API side's per-aggregate modules
 * (db/tenants.c, db/tokens.c, db/clusters.c, db/audit.c).
 *
 * The API's JSON representations are built by PostgreSQL itself
 * (json_build_object in the query), so a query returns one text column per
 * row holding a JSON object; dbq_json_rows() parses those into a jansson
 * array. SQL always goes through parameters.
 *
 * Every statement is prepared once per connection (dbq_params()), so
 * PostgreSQL parses and plans it once, not on every call.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safety: one PGconn per caller (a connection's prepared-statement
 * table belongs to the connection).
 */
#ifndef FERRY_DB_DBQ_H
#define FERRY_DB_DBQ_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* Results of the API side's db functions. */
enum db_status {
	DB_OK = 0,
	DB_NOT_FOUND = 1,   /* no such row (or another tenant's) */
	DB_CONFLICT = 2,    /* unique violation or a rule refusing the change */
	DB_INVALID = 3,     /* the database rejected a value (check constraint) */
	DB_PRECONDITION = 4,/* If-Match version did not match */
	DB_BAD_CURSOR = 5,  /* a pagination cursor that is not ours */
	DB_ERROR = -1       /* connection or SQL error; message in err */
};

/* PQexecParams with text parameters and text results, the statement
 * prepared on first use on this connection (named ferry_<n>; at most 256
 * per connection, later ones run unnamed). Same answer as PQexecParams,
 * including errors; the caller PQclear()s it. The table of a connection is
 * emptied when libpq resets the connection (PQreset, as db/pool does to a
 * stale one) and freed with it; a statement the server lost (DISCARD ALL,
 * a table changed under it) is prepared again, and run again at once when
 * no transaction is open. */
PGresult *dbq_params(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* Several statements in one round trip (libpq pipeline mode), each
 * prepared like dbq_params (a PREPARE the connection still needs travels in
 * the same round trip). Outside a transaction block the statements form one
 * implicit transaction (one commit; a failure rolls them all back and the
 * ones after it are not run); inside the caller's block they are part of
 * it, and a calls[i].sql of "COMMIT" ends it. calls[i].res gets each
 * statement's result (NULL when it was never sent; PGRES_PIPELINE_ABORTED
 * when it was skipped after a failure). 0 when every statement succeeded,
 * -1 otherwise. The caller frees the results with dbq_pipeline_clear(). */
struct dbq_call {
	const char *sql;
	int nparams;
	const char *const *params;  /* text parameters, NULL = SQL NULL */
	PGresult *res;              /* out */
};
int dbq_pipeline(PGconn *conn, struct dbq_call *calls, int n);
void dbq_pipeline_clear(struct dbq_call *calls, int n);

/* PostgreSQL's JSON text of an object, re-encoded exactly as jansson prints
 * it with JSON_COMPACT | JSON_ENSURE_ASCII (no whitespace between tokens;
 * strings escaped like jansson: \" \\ \b \f \n \r \t, other control
 * characters and every non-ASCII character as \uXXXX, upper-case hex,
 * surrogate pairs above U+FFFF), followed by "\n": the body the API sent
 * when it parsed the text and printed it again, without building the
 * object. Numbers are copied as PostgreSQL wrote them (jansson printed a
 * real with 17 digits). NULL when the text is not valid JSON in UTF-8.
 * Caller frees. */
char *dbq_json_body(const char *text);

/* Run sql with nparams text parameters (NULL = SQL NULL); every row's
 * first column is JSON text. *out = JSON array of the parsed rows.
 * Returns DB_OK, DB_CONFLICT (unique violation), DB_INVALID (check or
 * invalid text), or DB_ERROR, with a message in err. */
int dbq_json_rows(PGconn *conn, const char *sql, int nparams,
		  const char *const *params, json_t **out, char *err, size_t errlen);

/* Same, expecting at most one row: *out = the object, DB_NOT_FOUND when no
 * row came back. */
int dbq_json_row(PGconn *conn, const char *sql, int nparams,
		 const char *const *params, json_t **out, char *err, size_t errlen);

/* A query expected to return one row (dbq_params): DB_OK with *res (the
 * caller PQclear()s it), DB_NOT_FOUND when no row came back (*res NULL),
 * or the error's status with a message in err (*res NULL). */
int dbq_one_row(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res,
		char *err, size_t errlen);

/* Run a command; *affected (if non-NULL) gets the row count. */
int dbq_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     long *affected, char *err, size_t errlen);

/*
 * Cursor pagination over (created_at, id). Cursors are "<µs since epoch>.<uuid>"
 * of the last row of a page: opaque to clients, validated here.
 * dbq_cursor_parse() splits one into its two SQL parameters (us[24],
 * id[37]); 0 on success, -1 if it is malformed or its time lies past
 * 9999-12-31 (so no cursor reaches SQL that PostgreSQL cannot hold).
 * dbq_page() runs sql whose rows are (json text, cursor text) and which
 * returns at most limit+1 rows; *out = {"items":[…], "next_cursor": C|null}.
 * DBQ_CURSOR_SQL(tbl) is the SQL expression producing a row's cursor.
 */
int dbq_cursor_parse(const char *cursor, char us[24], char id[37]);
int dbq_page(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     int limit, json_t **out, char *err, size_t errlen);
#define DBQ_CURSOR_SQL(tbl) \
	"((extract(epoch from " tbl ".created_at) * 1000000)::bigint || '.' || " tbl ".id)"

/* 1 if s is a canonical UUID text (8-4-4-4-12 hex digits, either case);
 * checked before an id reaches a ::uuid cast, and by the API router. */
int dbq_is_uuid(const char *s);

/* Map a failed PGresult to a db_status and message. */
int dbq_status_of(PGresult *res, PGconn *conn, char *err, size_t errlen);

#endif
