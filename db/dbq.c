/*
 * db/dbq: run parameterised queries whose rows are JSON text, and map
 * PostgreSQL error classes (SQLSTATE) to the few outcomes handlers care
 * about: conflict (23505 unique violation, 23P01 exclusion), invalid value
 * (23514 check, 22xxx data exceptions), anything else an error.
 *
 * Every statement goes through dbq_params(), which prepares it once per
 * connection. The statements a connection has prepared are kept with the
 * connection itself, as libpq "instance data" of an event procedure
 * (PQregisterEventProc): libpq tells that procedure when the connection is
 * reset (PQreset, which the pool does to a stale or broken connection: the
 * new server session has no prepared statements, so the table is emptied)
 * and when it is closed (the table is freed). A connection is used by one
 * thread at a time, so the table needs no lock.
 */
#include "db/dbq.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-events.h>

#include "server/common/buf.h"

/* ---- per-connection prepared statements ------------------------------- */

/* At most this many statements per connection (SQL built at run time, e.g.
 * label selectors, could otherwise grow the table without end); beyond it
 * a statement runs unnamed, as before. The index has twice as many slots,
 * so probing stays short. */
#define DBQ_MAX_PREPARED 256
#define DBQ_INDEX_SLOTS 512

struct dbq_stmt {
	uint64_t hash;
	char *sql;           /* NULL = free slot */
	char name[24];       /* "ferry_<n>" */
};

struct dbq_conn_state {
	struct dbq_stmt slots[DBQ_INDEX_SLOTS];
	int count;
	unsigned long next_id;   /* never reused, even after a reset */
};

static void stmts_clear(struct dbq_conn_state *st)
{
	for (int i = 0; i < DBQ_INDEX_SLOTS; i++) {
		free(st->slots[i].sql);
		st->slots[i].sql = NULL;
	}
	st->count = 0;
}

static int dbq_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_CONNRESET) {
		PGEventConnReset *e = info;
		struct dbq_conn_state *st = PQinstanceData(e->conn, dbq_event);
		if (st)
			stmts_clear(st);
	} else if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		struct dbq_conn_state *st = PQinstanceData(e->conn, dbq_event);
		if (st) {
			stmts_clear(st);
			free(st);
		}
	}
	return 1;
}

static struct dbq_conn_state *conn_state(PGconn *conn)
{
	struct dbq_conn_state *st = PQinstanceData(conn, dbq_event);
	if (st)
		return st;
	if (!PQregisterEventProc(conn, dbq_event, "ferry-dbq", NULL))
		return NULL;
	st = xcalloc(1, sizeof(*st));
	if (!PQsetInstanceData(conn, dbq_event, st)) {
		free(st);
		return NULL;
	}
	return st;
}

/* FNV-1a over the SQL text. */
static uint64_t sql_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding sql, or the free slot where it would go. */
static struct dbq_stmt *stmt_slot(struct dbq_conn_state *st, const char *sql, uint64_t h)
{
	for (unsigned i = 0; i < DBQ_INDEX_SLOTS; i++) {
		struct dbq_stmt *s = &st->slots[(h + i) & (DBQ_INDEX_SLOTS - 1)];
		if (!s->sql || (s->hash == h && !strcmp(s->sql, sql)))
			return s;
	}
	return NULL; /* not reached: the table is never more than half full */
}

/* Forget one statement (the server no longer has it, or it must be
 * prepared again). Open addressing: the entries after it in its probe run
 * are put back so that later lookups still find them. */
static void stmt_forget(struct dbq_conn_state *st, struct dbq_stmt *gone)
{
	free(gone->sql);
	gone->sql = NULL;
	st->count--;
	unsigned i = (unsigned)(gone - st->slots);
	for (unsigned j = (i + 1) & (DBQ_INDEX_SLOTS - 1); st->slots[j].sql;
	     j = (j + 1) & (DBQ_INDEX_SLOTS - 1)) {
		struct dbq_stmt moved = st->slots[j];
		st->slots[j].sql = NULL;
		struct dbq_stmt *to = stmt_slot(st, moved.sql, moved.hash);
		*to = moved;
	}
}

static int result_ok(const PGresult *r)
{
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* The server lost or cannot use the prepared statement: 26000 (it does not
 * exist, e.g. after DISCARD ALL) or 0A000 "cached plan must not change
 * result type" (a table changed under it). */
static int stale_statement(const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return state && (!strcmp(state, "26000") || !strcmp(state, "0A000"));
}

PGresult *dbq_params(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	struct dbq_conn_state *st = conn_state(conn);
	if (!st)
		return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	uint64_t h = sql_hash(sql);
	struct dbq_stmt *s = stmt_slot(st, sql, h);
	if (!s || !s->sql) {
		if (!s || st->count >= DBQ_MAX_PREPARED)
			return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
		char name[24];
		snprintf(name, sizeof(name), "ferry_%lu", st->next_id++);
		PGresult *p = PQprepare(conn, name, sql, nparams, NULL);
		if (!result_ok(p))
			return p;  /* the same error the statement itself would give */
		PQclear(p);
		s->hash = h;
		s->sql = xstrdup(sql);
		memcpy(s->name, name, sizeof(name));
		st->count++;
	}
	PGresult *r = PQexecPrepared(conn, s->name, nparams, params, NULL, NULL, 0);
	if (!result_ok(r) && stale_statement(r)) {
		/* Prepared again on its next use. Outside a transaction the failed
		 * statement changed nothing, so it runs once more unnamed. */
		stmt_forget(st, s);
		if (PQtransactionStatus(conn) == PQTRANS_IDLE) {
			PQclear(r);
			r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
		}
	}
	return r;
}

/* ---- pipelines ------------------------------------------------------------ */

/* Read the next result of a pipelined query (and the NULL that ends it);
 * NULL when the connection failed. */
static PGresult *pipeline_result(PGconn *conn)
{
	PGresult *r = PQgetResult(conn);
	if (!r)
		return NULL;
	PGresult *extra;
	while ((extra = PQgetResult(conn)) != NULL)
		PQclear(extra);  /* not expected: one result per query */
	return r;
}

/* Forget s if it still holds sql (the same statement twice in one pipeline
 * shares a slot, which an earlier forget may have emptied or moved). */
static void forget_if(struct dbq_conn_state *st, struct dbq_stmt *s, const char *sql)
{
	if (s && s->sql && !strcmp(s->sql, sql))
		stmt_forget(st, s);
}

/* One attempt of dbq_pipeline; *stale = 1 when a prepared statement the
 * server lost was among the failures. */
static int pipeline_once(PGconn *conn, struct dbq_conn_state *st, struct dbq_call *calls, int n, int *stale)
{
	*stale = 0;
	for (int i = 0; i < n; i++)
		calls[i].res = NULL;
	if (!PQenterPipelineMode(conn))
		return -1;
	struct dbq_stmt **slot = xcalloc((size_t)n, sizeof(*slot));
	char *prepared = xcalloc((size_t)n, 1);
	int sent = 0, ok = 1;
	for (; sent < n; sent++) {
		struct dbq_call *c = &calls[sent];
		uint64_t h = sql_hash(c->sql);
		struct dbq_stmt *s = st ? stmt_slot(st, c->sql, h) : NULL;
		int queued;
		if (s && !s->sql && st->count < DBQ_MAX_PREPARED) {
			/* Prepared in this pipeline, right before its first use;
			 * forgotten again below if the PREPARE did not succeed. */
			snprintf(s->name, sizeof(s->name), "ferry_%lu", st->next_id++);
			s->hash = h;
			s->sql = xstrdup(c->sql);
			st->count++;
			prepared[sent] = 1;
			if (!PQsendPrepare(conn, s->name, c->sql, c->nparams, NULL)) {
				stmt_forget(st, s);
				break;
			}
		}
		if (s && s->sql) {
			slot[sent] = s;
			queued = PQsendQueryPrepared(conn, s->name, c->nparams, c->params, NULL, NULL, 0);
		} else {
			queued = PQsendQueryParams(conn, c->sql, c->nparams, NULL, c->params, NULL, NULL, 0);
		}
		if (!queued)
			break;
	}
	if (sent < n)
		ok = 0;
	int synced = PQpipelineSync(conn);
	for (int i = 0; i < n; i++) {
		if (i >= sent || !synced) {
			calls[i].res = NULL;
			continue;
		}
		if (prepared[i]) {
			PGresult *p = pipeline_result(conn);
			if (!result_ok(p) && slot[i]) {
				forget_if(st, slot[i], calls[i].sql);
				slot[i] = NULL;
			}
			PQclear(p);
		}
		calls[i].res = pipeline_result(conn);
		if (!result_ok(calls[i].res)) {
			ok = 0;
			if (slot[i] && stale_statement(calls[i].res)) {
				forget_if(st, slot[i], calls[i].sql);
				*stale = 1;
			}
		}
	}
	/* The sync's own result ends the pipeline. */
	PGresult *r;
	while (synced && (r = PQgetResult(conn)) != NULL) {
		int end = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if (end)
			break;
	}
	if (!PQexitPipelineMode(conn)) {
		/* Results left unread (the connection failed midway): start a
		 * new session rather than hand back a connection in a state
		 * nobody expects. */
		PQreset(conn);
		ok = 0;
	}
	free(slot);
	free(prepared);
	return ok ? 0 : -1;
}

int dbq_pipeline(PGconn *conn, struct dbq_call *calls, int n)
{
	struct dbq_conn_state *st = conn_state(conn);
	int in_block = PQtransactionStatus(conn) != PQTRANS_IDLE;
	int stale = 0;
	int rc = pipeline_once(conn, st, calls, n, &stale);
	/* A statement the server lost: outside a transaction block the
	 * pipeline's implicit transaction was rolled back, so it runs once
	 * more (preparing the statement again). */
	if (rc < 0 && stale && !in_block && PQtransactionStatus(conn) == PQTRANS_IDLE) {
		dbq_pipeline_clear(calls, n);
		rc = pipeline_once(conn, st, calls, n, &stale);
	}
	return rc;
}

void dbq_pipeline_clear(struct dbq_call *calls, int n)
{
	for (int i = 0; i < n; i++) {
		PQclear(calls[i].res);
		calls[i].res = NULL;
	}
}

int dbq_status_of(PGresult *res, PGconn *conn, char *err, size_t errlen)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	if (err && errlen) {
		snprintf(err, errlen, "%s", msg && *msg ? msg : "database error");
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
	}
	if (state && (!strcmp(state, "23505") || !strcmp(state, "23P01")))
		return DB_CONFLICT;
	if (state && (!strcmp(state, "23514") || !strncmp(state, "22", 2)))
		return DB_INVALID;
	return DB_ERROR;
}

int dbq_json_rows(PGconn *conn, const char *sql, int nparams,
		  const char *const *params, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	PGresult *res = dbq_params(conn, sql, nparams, params);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	json_t *arr = json_array();
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		json_error_t jerr;
		const char *text = PQgetvalue(res, i, 0);
		json_t *row = json_loads(text, JSON_DECODE_ANY, &jerr);
		if (!row) {
			snprintf(err, errlen, "bad JSON from database: %s", jerr.text);
			json_decref(arr);
			PQclear(res);
			return DB_ERROR;
		}
		json_array_append_new(arr, row);
	}
	PQclear(res);
	*out = arr;
	return DB_OK;
}

int dbq_json_row(PGconn *conn, const char *sql, int nparams,
		 const char *const *params, json_t **out, char *err, size_t errlen)
{
	json_t *arr = NULL;
	*out = NULL;
	int st = dbq_json_rows(conn, sql, nparams, params, &arr, err, errlen);
	if (st != DB_OK)
		return st;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		if (err && errlen)
			err[0] = '\0';
		return DB_NOT_FOUND;
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return DB_OK;
}

int dbq_one_row(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res,
		char *err, size_t errlen)
{
	PGresult *r = dbq_params(conn, sql, nparams, params);
	*res = NULL;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(r, conn, err, errlen);
		PQclear(r);
		return st;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return DB_NOT_FOUND;
	}
	*res = r;
	return DB_OK;
}

int dbq_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     long *affected, char *err, size_t errlen)
{
	PGresult *res = dbq_params(conn, sql, nparams, params);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	if (affected)
		*affected = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int dbq_cursor_parse(const char *cursor, char us[24], char id[37])
{
	const char *dot = strchr(cursor, '.');
	if (!dot || dot == cursor || (size_t)(dot - cursor) > 20)
		return -1;
	for (const char *p = cursor; p < dot; p++)
		if (*p < '0' || *p > '9')
			return -1;
	/* A timestamp PostgreSQL can hold: at most 9999-12-31T23:59:59.999999Z
	 * (253402300799999999 us); anything larger is not a cursor of ours. */
	if ((size_t)(dot - cursor) > 18 ||
	    ((size_t)(dot - cursor) == 18 && strncmp(cursor, "253402300799999999", 18) > 0))
		return -1;
	const char *u = dot + 1;
	if (strlen(u) != 36)
		return -1;
	for (int i = 0; i < 36; i++) {
		char c = u[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -1;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return -1;
		}
	}
	memcpy(us, cursor, (size_t)(dot - cursor));
	us[dot - cursor] = '\0';
	memcpy(id, u, 37);
	return 0;
}

int dbq_page(PGconn *conn, const char *sql, int nparams, const char *const *params,
	     int limit, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	PGresult *res = dbq_params(conn, sql, nparams, params);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(res, conn, err, errlen);
		PQclear(res);
		return st;
	}
	json_t *items = json_array();
	int n = PQntuples(res);
	json_t *next = json_null();
	for (int i = 0; i < n; i++) {
		if (i == limit) {
			json_decref(next);
			next = json_string(PQgetvalue(res, i - 1, 1));
			break;
		}
		json_error_t jerr;
		json_t *row = json_loads(PQgetvalue(res, i, 0), JSON_DECODE_ANY, &jerr);
		if (!row) {
			snprintf(err, errlen, "bad JSON from database: %s", jerr.text);
			json_decref(items);
			json_decref(next);
			PQclear(res);
			return DB_ERROR;
		}
		json_array_append_new(items, row);
	}
	PQclear(res);
	*out = json_pack("{s:o,s:o}", "items", items, "next_cursor", next);
	return DB_OK;
}

int dbq_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* ---- PostgreSQL's JSON text as the API's body ------------------------- */

static void put_u16(struct buf *b, unsigned v)
{
	char seq[8];
	snprintf(seq, sizeof(seq), "\\u%04X", v & 0xffffu);
	buf_append(b, seq, 6);
}

/* One code point of a string, escaped as jansson's dump does with
 * JSON_ENSURE_ASCII. */
static void put_codepoint(struct buf *b, uint32_t cp)
{
	switch (cp) {
	case '\\': buf_append(b, "\\\\", 2); return;
	case '"': buf_append(b, "\\\"", 2); return;
	case '\b': buf_append(b, "\\b", 2); return;
	case '\f': buf_append(b, "\\f", 2); return;
	case '\n': buf_append(b, "\\n", 2); return;
	case '\r': buf_append(b, "\\r", 2); return;
	case '\t': buf_append(b, "\\t", 2); return;
	default: break;
	}
	if (cp < 0x20 || (cp > 0x7f && cp < 0x10000)) {
		put_u16(b, cp);
	} else if (cp < 0x80) {
		buf_putc(b, (char)cp);
	} else {
		cp -= 0x10000;
		put_u16(b, 0xd800 | (cp >> 10));
		put_u16(b, 0xdc00 | (cp & 0x3ff));
	}
}

static int hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/* Decode one UTF-8 sequence at p (strict: no overlong forms, no
 * surrogates, at most U+10FFFF). Its length, or 0 when invalid. */
static int utf8_decode(const unsigned char *p, uint32_t *cp)
{
	int n;
	uint32_t v, min;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		n = 2, v = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3, v = p[0] & 0x0f, min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4, v = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* The string starting after its opening quote at *pp, re-escaped into b;
 * *pp ends after the closing quote. -1 on invalid text. */
static int put_string(struct buf *b, const char **pp)
{
	const unsigned char *p = (const unsigned char *)*pp;
	buf_putc(b, '"');
	for (;;) {
		uint32_t cp;
		if (*p == '"') {
			p++;
			break;
		}
		if (*p == '\0' || *p < 0x20)
			return -1;
		if (*p != '\\') {
			/* Plain ASCII runs are copied as they are. */
			const unsigned char *run = p;
			while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
				p++;
			if (p > run) {
				buf_append(b, run, (size_t)(p - run));
				continue;
			}
			int n = utf8_decode(p, &cp);
			if (!n)
				return -1;
			p += n;
			put_codepoint(b, cp);
			continue;
		}
		p++;
		switch (*p) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (hex4((const char *)p + 1, &cp) < 0)
				return -1;
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				uint32_t lo;
				if (p[1] != '\\' || p[2] != 'u' || hex4((const char *)p + 3, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
				return -1;  /* jansson refuses a lone low surrogate and \u0000 */
			}
			break;
		default:
			return -1;
		}
		p++;
		put_codepoint(b, cp);
	}
	buf_putc(b, '"');
	*pp = (const char *)p;
	return 0;
}

char *dbq_json_body(const char *text)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(text);
	buf_reserve(&b, n + 2);
	const char *p = text;
	while (*p) {
		if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
			p++;
		} else if (*p == '"') {
			p++;
			if (put_string(&b, &p) < 0) {
				buf_free(&b);
				return NULL;
			}
		} else {
			/* Punctuation, numbers, true/false/null: copied. */
			const char *run = p;
			while (*p && *p != '"' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
				p++;
			buf_append(&b, run, (size_t)(p - run));
		}
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	buf_putc(&b, '\n');
	return buf_steal(&b);
}
