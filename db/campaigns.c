/*
 * db/campaigns: see campaigns.h. The JSON is built in SQL (CAMPAIGN_JSON)
 * so every function answers with one shape; counts per state and per wave
 * come from campaign_clusters at read time (no counters to keep in step).
 */
#include "db/campaigns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dbq.h"
#include "db/jobs.h"
#include "server/common/buf.h"

#define COUNTS_OF(where) \
	"(SELECT json_build_object('pending', count(*) FILTER (WHERE x.state = 'pending')," \
	" 'waiting', count(*) FILTER (WHERE x.state = 'waiting')," \
	" 'running', count(*) FILTER (WHERE x.state = 'running')," \
	" 'succeeded', count(*) FILTER (WHERE x.state = 'succeeded')," \
	" 'skipped', count(*) FILTER (WHERE x.state = 'skipped')," \
	" 'failed', count(*) FILTER (WHERE x.state = 'failed')," \
	" 'cancelled', count(*) FILTER (WHERE x.state = 'cancelled'))" \
	" FROM campaign_clusters x WHERE " where ")"

#define CAMPAIGN_JSON \
	"json_build_object('id', k.id, 'name', k.name, 'selector', k.selector, 'kind', k.kind," \
	" 'params', k.params, 'strategy', k.strategy, 'state', k.state, 'pause_kind', k.pause_kind," \
	" 'reason', k.reason, 'total', k.total, 'canary', k.canary," \
	" 'max_in_flight', k.max_in_flight, 'max_failures', k.max_failures, 'waves', k.waves," \
	" 'pause_between_waves_s', k.pause_between_waves_s, 'manual_approval', k.manual_approval," \
	" 'approved_wave', k.approved_wave," \
	" 'window', CASE WHEN k.window_cron IS NULL THEN NULL ELSE json_build_object('cron'," \
	"   k.window_cron, 'duration_s', k.window_duration_s, 'time_zone', k.window_tz) END," \
	" 'counts', " COUNTS_OF("x.campaign_id = k.id") "," \
	" 'wave_progress', (SELECT coalesce(json_agg(w ORDER BY w.wave), '[]') FROM (" \
	"   SELECT y.wave, count(*) AS total, " COUNTS_OF("x.campaign_id = k.id AND x.wave = y.wave") " AS counts," \
	"   ferry_ts(min(y.started_at)) AS started_at," \
	"   CASE WHEN bool_and(y.state IN ('succeeded', 'skipped', 'failed', 'cancelled'))" \
	"     THEN ferry_ts(max(y.finished_at)) END AS finished_at" \
	"   FROM campaign_clusters y WHERE y.campaign_id = k.id GROUP BY y.wave) w)," \
	" 'created_by', k.created_by_name, 'created_at', ferry_ts(k.created_at)," \
	" 'started_at', ferry_ts(k.started_at), 'finished_at', ferry_ts(k.finished_at)," \
	" 'updated_at', ferry_ts(k.updated_at))"

long db_campaign_match_count(PGconn *conn, const char *tenant_id,
			     const struct db_label_req *reqs, int nreqs, char *err, size_t errlen)
{
	const char *p[1 + DB_MAX_LABEL_REQS];
	char *owned[DB_MAX_LABEL_REQS] = { 0 };
	int np = 0;
	p[np++] = tenant_id;
	struct buf sql = BUF_INIT;
	buf_puts(&sql, "SELECT count(*) FROM clusters c WHERE c.tenant_id = $1::uuid");
	db_cluster_selector_sql(&sql, reqs, nreqs, p, &np, owned);
	long n = -1;
	PGresult *r = PQexecParams(conn, buf_cstr(&sql), np, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = atol(PQgetvalue(r, 0, 0));
	else
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
	PQclear(r);
	buf_free(&sql);
	for (int i = 0; i < nreqs && i < DB_MAX_LABEL_REQS; i++)
		free(owned[i]);
	return n;
}

static int get_by(PGconn *conn, const char *where, int np, const char *const *p, json_t **out,
		  char *err, size_t errlen)
{
	char sql[8192];
	snprintf(sql, sizeof(sql), "SELECT " CAMPAIGN_JSON " FROM campaigns k WHERE %s", where);
	return dbq_json_row(conn, sql, np, p, out, err, errlen);
}

static int exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok;
}

int db_campaign_create(PGconn *conn, const struct db_campaign_new *n, json_t **out,
		       int *replayed, char *err, size_t errlen)
{
	*out = NULL;
	*replayed = 0;
	if (n->idempotency_key) {
		const char *p[2] = { n->tenant_id, n->idempotency_key };
		int st = get_by(conn, "k.tenant_id = $1::uuid AND k.idempotency_key = $2", 2, p, out,
				err, errlen);
		if (st == DB_OK)
			*replayed = 1;
		if (st != DB_NOT_FOUND)
			return st;
	}
	char *params = n->params ? json_dumps(n->params, JSON_COMPACT) : strdup("{}");
	char *strategy = json_dumps(n->strategy, JSON_COMPACT);
	struct buf bounds = BUF_INIT;
	buf_puts(&bounds, "{");
	for (int i = 0; i < n->nbounds; i++)
		buf_printf(&bounds, "%s%d", i ? "," : "", n->bounds[i]);
	buf_puts(&bounds, "}");
	char canary[16], mif[16], mf[16], waves[16], pbw[16], wdur[16];
	snprintf(canary, sizeof canary, "%d", n->canary);
	snprintf(mif, sizeof mif, "%d", n->max_in_flight);
	snprintf(mf, sizeof mf, "%d", n->max_failures);
	snprintf(waves, sizeof waves, "%d", n->nbounds - 1);
	snprintf(pbw, sizeof pbw, "%d", n->pause_between_waves_s);
	snprintf(wdur, sizeof wdur, "%d", n->window_duration_s);
	int st = DB_ERROR;
	json_t *row = NULL;
	if (!exec_ok(conn, "BEGIN")) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		goto out;
	}
	{
		const char *p[18] = { n->tenant_id, n->name, n->selector, n->kind, params, strategy,
				      canary, mif, mf, waves, pbw, n->manual_approval ? "t" : "f",
				      n->window_cron, n->window_cron ? wdur : NULL,
				      n->window_cron ? n->window_tz : NULL, n->idempotency_key,
				      n->created_by, n->created_by_name ? n->created_by_name : "" };
		st = dbq_json_row(conn,
			"INSERT INTO campaigns (tenant_id, name, selector, kind, params, strategy, canary,"
			" max_in_flight, max_failures, waves, pause_between_waves_s, manual_approval,"
			" window_cron, window_duration_s, window_tz, idempotency_key, created_by,"
			" created_by_name, total) VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb,"
			" $7::int, $8::int, $9::int, $10::int, $11::int, $12::bool, $13, $14::int, $15, $16,"
			" $17::uuid, $18, 0) RETURNING json_build_object('id', id)",
			18, p, &row, err, errlen);
		if (st == DB_CONFLICT && n->idempotency_key) {
			/* A concurrent request with the same key won: replay it. */
			exec_ok(conn, "ROLLBACK");
			return db_campaign_create(conn, n, out, replayed, err, errlen);
		}
		if (st != DB_OK)
			goto rollback;
	}
	const char *id = json_string_value(json_object_get(row, "id"));
	{
		/* Membership: the matches now, in cluster list order; wave = the
		 * first bound the position is below (the last wave otherwise). */
		const char *p[3 + DB_MAX_LABEL_REQS];
		char *owned[DB_MAX_LABEL_REQS] = { 0 };
		int np = 0;
		p[np++] = id;
		p[np++] = n->tenant_id;
		p[np++] = buf_cstr(&bounds);
		struct buf sql = BUF_INIT;
		buf_puts(&sql,
			 "WITH m AS (SELECT c.id, c.name, (row_number() OVER (ORDER BY c.created_at, c.id) - 1)::int AS pos"
			 " FROM clusters c WHERE c.tenant_id = $2::uuid");
		db_cluster_selector_sql(&sql, n->reqs, n->nreqs, p, &np, owned);
		buf_puts(&sql,
			 "), ins AS (INSERT INTO campaign_clusters (campaign_id, cluster_id, tenant_id,"
			 " cluster_name, wave, position)"
			 " SELECT $1::uuid, m.id, $2::uuid, m.name, coalesce((SELECT min(u.i) - 1 FROM"
			 "  unnest($3::int[]) WITH ORDINALITY AS u(b, i) WHERE m.pos < u.b),"
			 "  cardinality($3::int[]) - 1), m.pos FROM m RETURNING 1)"
			 " UPDATE campaigns SET total = (SELECT count(*) FROM ins) WHERE id = $1::uuid"
			 " RETURNING total");
		PGresult *r = PQexecParams(conn, buf_cstr(&sql), np, NULL, p, NULL, NULL, 0);
		long total = -1;
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			total = atol(PQgetvalue(r, 0, 0));
		else
			snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		PQclear(r);
		buf_free(&sql);
		for (int i = 0; i < n->nreqs && i < DB_MAX_LABEL_REQS; i++)
			free(owned[i]);
		if (total < 0) {
			st = DB_ERROR;
			goto rollback;
		}
		if (total == 0) {
			snprintf(err, errlen, "the selector matches no cluster");
			st = DB_INVALID;
			goto rollback;
		}
	}
	{
		const char *p[1] = { id };
		st = get_by(conn, "k.id = $1::uuid", 1, p, out, err, errlen);
		if (st != DB_OK)
			goto rollback;
	}
	if (!exec_ok(conn, "COMMIT")) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		json_decref(*out);
		*out = NULL;
		st = DB_ERROR;
		goto out;
	}
	goto out;
rollback:
	exec_ok(conn, "ROLLBACK");
out:
	json_decref(row);
	buf_free(&bounds);
	free(params);
	free(strategy);
	return st;
}

int db_campaign_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		    char *err, size_t errlen)
{
	*out = NULL;
	if (!dbq_is_uuid(id))
		return DB_NOT_FOUND;
	const char *p[2] = { tenant_id, id };
	return get_by(conn, "k.tenant_id = $1::uuid AND k.id = $2::uuid", 2, p, out, err, errlen);
}

int db_campaign_list(PGconn *conn, const char *tenant_id, const char *state, int limit,
		     const char *cursor, json_t **out, char *err, size_t errlen)
{
	char us[24] = "", cid[37] = "", lim[16];
	*out = NULL;
	if (cursor && dbq_cursor_parse(cursor, us, cid) != 0)
		return DB_BAD_CURSOR;
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *p[5] = { tenant_id, cursor ? us : NULL, cursor ? cid : NULL, lim, state };
	return dbq_page(conn,
		"SELECT " CAMPAIGN_JSON ", " DBQ_CURSOR_SQL("k") " FROM campaigns k"
		" WHERE k.tenant_id = $1::uuid AND ($5::text IS NULL OR k.state = $5)"
		" AND ($2::bigint IS NULL OR (k.created_at, k.id) <"
		"  ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
		" ORDER BY k.created_at DESC, k.id DESC LIMIT $4::int",
		5, p, limit, out, err, errlen);
}

int db_campaign_clusters(PGconn *conn, const char *tenant_id, const char *id,
			 const char *state, int limit, const char *cursor, json_t **out,
			 char *err, size_t errlen)
{
	*out = NULL;
	json_t *c = NULL;
	int st = db_campaign_get(conn, tenant_id, id, &c, err, errlen);
	json_decref(c);
	if (st != DB_OK)
		return st;
	/* The cursor is the position of the last row of the previous page. */
	if (cursor) {
		char *end;
		long v = strtol(cursor, &end, 10);
		if (!*cursor || *end || v < 0)
			return DB_BAD_CURSOR;
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *p[4] = { id, state, cursor, lim };
	return dbq_page(conn,
		"SELECT json_build_object('cluster_id', x.cluster_id, 'cluster_name', x.cluster_name,"
		" 'wave', x.wave, 'position', x.position, 'state', x.state, 'reason', x.reason,"
		" 'job_id', x.job_id, 'error', x.error, 'started_at', ferry_ts(x.started_at),"
		" 'finished_at', ferry_ts(x.finished_at)), x.position::text"
		" FROM campaign_clusters x WHERE x.campaign_id = $1::uuid"
		" AND ($2::text IS NULL OR x.state = $2) AND ($3::int IS NULL OR x.position > $3::int)"
		" ORDER BY x.position LIMIT $4::int",
		4, p, limit, out, err, errlen);
}

json_t *db_campaign_stats_json(PGconn *conn)
{
	json_t *out = NULL;
	char err[256];
	dbq_json_row(conn,
		"SELECT json_build_object("
		" 'campaigns', (SELECT coalesce(json_object_agg(state, n), '{}') FROM"
		"   (SELECT state, count(*) AS n FROM campaigns GROUP BY state) s),"
		" 'clusters', (SELECT coalesce(json_object_agg(state, n), '{}') FROM"
		"   (SELECT x.state, count(*) AS n FROM campaign_clusters x JOIN campaigns k ON k.id = x.campaign_id"
		"    WHERE k.state IN ('pending', 'running', 'paused') GROUP BY x.state) s))",
		0, NULL, &out, err, sizeof err);
	return out;
}

/* ---- state machines ------------------------------------------------------ */

/* The states each state may be entered from. */
struct allowed {
	const char *to;
	const char *from;   /* SQL array text */
};

static const struct allowed campaign_moves[] = {
	{ "running", "{pending,paused}" },
	{ "paused", "{pending,running,paused}" },   /* paused->paused: a new reason */
	{ "succeeded", "{running}" },
	{ "failed", "{running,paused}" },
	{ "cancelled", "{pending,running,paused}" },
	{ NULL, NULL }
};

static const struct allowed cluster_moves[] = {
	{ "pending", "{waiting}" },
	{ "waiting", "{pending,waiting}" },
	{ "running", "{pending,waiting,running}" },
	{ "succeeded", "{running}" },
	{ "skipped", "{running}" },
	{ "failed", "{pending,waiting,running}" },
	{ "cancelled", "{pending,waiting,running}" },
	{ NULL, NULL }
};

/* Run a query whose one row and column is a count: that count (0 or 1
 * here), or -1. */
static int count_of(PGconn *conn, const char *sql, int n, const char *const *p, char *err,
		    size_t errlen)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = atoi(PQgetvalue(r, 0, 0)) > 0;
	else
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
	PQclear(r);
	return rc;
}

static const char *from_states(const struct allowed *t, const char *to)
{
	for (; t->to; t++)
		if (!strcmp(t->to, to))
			return t->from;
	return NULL;
}

int db_campaign_transition(PGconn *conn, const char *id, const char *state,
			   const char *pause_kind, const char *reason, char *err, size_t errlen)
{
	const char *from = from_states(campaign_moves, state);
	if (!from) {
		snprintf(err, errlen, "no campaign state %s", state);
		return -1;
	}
	const char *p[5] = { id, state, from, pause_kind, reason };
	return count_of(conn,
		"WITH u AS (UPDATE campaigns SET state = $2, pause_kind = $4, reason = $5, updated_at = now(),"
		" started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,"
		" finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() END,"
		" active = CASE WHEN $2 IN ('succeeded', 'failed') THEN false ELSE active END"
		" WHERE id = $1::uuid AND state = ANY ($3::text[]) RETURNING id)"
		" SELECT count(*) FROM (SELECT pg_notify('" DB_CAMPAIGN_EVENTS_CHANNEL "', id::text) FROM u) z",
		5, p, err, errlen);
}

int db_campaign_cluster_transition(PGconn *conn, const char *campaign_id,
				   const char *cluster_id, const char *state, const char *reason,
				   const char *job_id, const char *error, char *err, size_t errlen)
{
	const char *from = from_states(cluster_moves, state);
	if (!from) {
		snprintf(err, errlen, "no campaign cluster state %s", state);
		return -1;
	}
	const char *p[6] = { campaign_id, cluster_id, state, from, reason, job_id };
	const char *p7[7] = { p[0], p[1], p[2], p[3], p[4], p[5], error };
	return count_of(conn,
		/* clock_timestamp(): the moment of the move, not the start of the
		 * advancer's transaction (the wave gates measure from it). */
		"WITH u AS (UPDATE campaign_clusters SET state = $3, reason = $5, updated_at = clock_timestamp(),"
		" job_id = coalesce($6::uuid, job_id), error = $7,"
		" started_at = CASE WHEN $3 = 'running' THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,"
		" finished_at = CASE WHEN $3 IN ('succeeded', 'skipped', 'failed', 'cancelled') THEN clock_timestamp() END"
		" WHERE campaign_id = $1::uuid AND cluster_id = $2::uuid AND state = ANY ($4::text[])"
		" RETURNING campaign_id)"
		" SELECT count(*) FROM (SELECT pg_notify('" DB_CAMPAIGN_EVENTS_CHANNEL "', campaign_id::text) FROM u) z",
		7, p7, err, errlen);
}

/* ---- operator actions ------------------------------------------------------ */

int db_campaign_control(PGconn *conn, const char *tenant_id, const char *id,
			enum db_campaign_action action, const char *by, int new_max_failures,
			json_t **out, char *why, size_t whylen)
{
	*out = NULL;
	if (!dbq_is_uuid(id))
		return DB_NOT_FOUND;
	if (!exec_ok(conn, "BEGIN")) {
		snprintf(why, whylen, "database: %s", PQerrorMessage(conn));
		return DB_ERROR;
	}
	int st = DB_ERROR;
	/* Lock the row: the advancer holds the same lock for its whole pass,
	 * so an action lands between two passes, never inside one. */
	const char *p[2] = { tenant_id, id };
	PGresult *r = PQexecParams(conn,
		"SELECT state, coalesce(pause_kind, ''), max_failures, approved_wave,"
		" (SELECT count(*) FROM campaign_clusters x WHERE x.campaign_id = k.id AND x.state = 'failed'),"
		" coalesce(reason, '')"
		" FROM campaigns k WHERE k.tenant_id = $1::uuid AND k.id = $2::uuid FOR UPDATE",
		2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(why, whylen, "database: %s", PQerrorMessage(conn));
		PQclear(r);
		goto rollback;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		st = DB_NOT_FOUND;
		goto rollback;
	}
	char state[16], kind[16];
	snprintf(state, sizeof state, "%s", PQgetvalue(r, 0, 0));
	snprintf(kind, sizeof kind, "%s", PQgetvalue(r, 0, 1));
	int max_failures = atoi(PQgetvalue(r, 0, 2));
	int failed = atoi(PQgetvalue(r, 0, 4));
	PQclear(r);
	int finished = !strcmp(state, "succeeded") || !strcmp(state, "failed") ||
		       !strcmp(state, "cancelled");
	if (finished) {
		snprintf(why, whylen, "campaign %s has already finished (%s)", id, state);
		st = DB_CONFLICT;
		goto rollback;
	}
	char err[256] = "";
	int moved = 0;
	switch (action) {
	case DB_CAMPAIGN_PAUSE: {
		if (!strcmp(state, "paused") && !strcmp(kind, "user")) {
			snprintf(why, whylen, "campaign %s is already paused", id);
			st = DB_CONFLICT;
			goto rollback;
		}
		char reason[200];
		snprintf(reason, sizeof reason, "paused by %s", by && *by ? by : "an operator");
		moved = db_campaign_transition(conn, id, "paused", "user", reason, err, sizeof err);
		break;
	}
	case DB_CAMPAIGN_RESUME: {
		if (strcmp(state, "paused")) {
			snprintf(why, whylen, "campaign %s is not paused (%s)", id, state);
			st = DB_CONFLICT;
			goto rollback;
		}
		if (!strcmp(kind, "approval")) {
			snprintf(why, whylen, "campaign %s waits for an approval: use approve", id);
			st = DB_CONFLICT;
			goto rollback;
		}
		int budget = new_max_failures > 0 ? new_max_failures : max_failures;
		if (budget <= failed) {
			snprintf(why, whylen,
				 "%d clusters failed; resuming needs max_failures above %d", failed, failed);
			st = !strcmp(kind, "budget") || new_max_failures > 0 ? DB_INVALID : DB_CONFLICT;
			goto rollback;
		}
		if (new_max_failures > 0) {
			char b[16];
			snprintf(b, sizeof b, "%d", budget);
			const char *q[2] = { id, b };
			if (dbq_exec(conn, "UPDATE campaigns SET max_failures = $2::int WHERE id = $1::uuid",
				     2, q, NULL, err, sizeof err) != DB_OK)
				goto dberr;
		}
		/* A window pause is the advancer's to lift; resume from anything
		 * else goes back to running (the advancer re-checks the window). */
		moved = db_campaign_transition(conn, id, "running", NULL, NULL, err, sizeof err);
		break;
	}
	case DB_CAMPAIGN_APPROVE: {
		if (strcmp(state, "paused") || strcmp(kind, "approval")) {
			snprintf(why, whylen, "campaign %s is not waiting for an approval", id);
			st = DB_CONFLICT;
			goto rollback;
		}
		const char *q[1] = { id };
		/* The wave waiting is the lowest one with clusters not started. */
		if (dbq_exec(conn,
			     "UPDATE campaigns k SET approved_wave = greatest(k.approved_wave,"
			     " (SELECT min(x.wave) FROM campaign_clusters x WHERE x.campaign_id = k.id"
			     "  AND x.state IN ('pending', 'waiting'))) WHERE k.id = $1::uuid",
			     1, q, NULL, err, sizeof err) != DB_OK)
			goto dberr;
		moved = db_campaign_transition(conn, id, "running", NULL, NULL, err, sizeof err);
		break;
	}
	case DB_CAMPAIGN_CANCEL: {
		char reason[200];
		snprintf(reason, sizeof reason, "cancelled by %s", by && *by ? by : "an operator");
		moved = db_campaign_transition(conn, id, "cancelled", NULL, reason, err, sizeof err);
		if (moved != 1)
			break;
		/* Clusters not started: cancelled now, one transition each. */
		const char *q[1] = { id };
		r = PQexecParams(conn,
			"SELECT cluster_id, job_id FROM campaign_clusters WHERE campaign_id = $1::uuid"
			" AND state IN ('pending', 'waiting', 'running') ORDER BY position",
			1, NULL, q, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			snprintf(err, sizeof err, "%s", PQerrorMessage(conn));
			goto dberr;
		}
		for (int i = 0; i < PQntuples(r); i++) {
			if (PQgetisnull(r, i, 1)) {
				if (db_campaign_cluster_transition(conn, id, PQgetvalue(r, i, 0), "cancelled",
								   "campaign cancelled", NULL, NULL, err,
								   sizeof err) < 0) {
					PQclear(r);
					goto dberr;
				}
			} else if (db_job_cancel(conn, tenant_id, PQgetvalue(r, i, 1), err, sizeof err) ==
				   DB_CANCEL_DB_ERROR) {
				/* The running job stops at its next phase boundary; the
				 * advancer records how it ended. */
				PQclear(r);
				goto dberr;
			}
		}
		PQclear(r);
		break;
	}
	}
	if (moved < 0)
		goto dberr;
	if (moved == 0) {
		snprintf(why, whylen, "campaign %s cannot do that from state %s", id, state);
		st = DB_CONFLICT;
		goto rollback;
	}
	{
		const char *q[2] = { tenant_id, id };
		st = get_by(conn, "k.tenant_id = $1::uuid AND k.id = $2::uuid", 2, q, out, why, whylen);
		if (st != DB_OK)
			goto rollback;
	}
	if (!exec_ok(conn, "COMMIT")) {
		snprintf(why, whylen, "database: %s", PQerrorMessage(conn));
		json_decref(*out);
		*out = NULL;
		return DB_ERROR;
	}
	return DB_OK;
dberr:
	snprintf(why, whylen, "database: %s", err);
	st = DB_ERROR;
rollback:
	exec_ok(conn, "ROLLBACK");
	return st;
}
