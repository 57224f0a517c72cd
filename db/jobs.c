/*
 * db/jobs: the job queue on PostgreSQL.
 *
 * The idea: PostgreSQL is the only coordinator. A worker claims a job with
 * one UPDATE whose target row is picked by SELECT ... FOR UPDATE SKIP LOCKED,
 * bumping the job's lease_token (the fencing token) and setting a lease
 * expiry. Every later write by that worker is conditional on the token still
 * being current: writes to the job row say "WHERE lease_token = $token", and
 * writes to the phase and event tables go through a guard CTE that locks the
 * job row FOR SHARE with the same condition. Because the claim must update
 * (and so lock) that row, a stale worker's write either completes before a
 * takeover or finds the token changed and does nothing; it can never land
 * after another worker took over.
 *
 * JSON for the API is built by PostgreSQL (json_build_object) and parsed
 * with jansson, so the shape lives in one SQL fragment (JOB_JSON below).
 * Timestamps go through ferry_ts() (migrations/002_core.sql).
 */
#include "db/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dbq.h"
#include "server/common/buf.h"

static void set_err(char *err, size_t errlen, const char *fmt, const char *detail)
{
	if (!err || errlen == 0)
		return;
	char m[512];
	snprintf(m, sizeof(m), "%s", detail ? detail : "");
	size_t l = strlen(m);
	while (l > 0 && (m[l - 1] == '\n' || m[l - 1] == ' '))
		m[--l] = 0;
	snprintf(err, errlen, fmt, m);
}

/* Run a parameterised statement; NULL with err set when it did not return
 * rows or complete. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params,
		     char *err, size_t errlen)
{
	PGresult *r = dbq_params(c, sql, n, params);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		set_err(err, errlen, "database: %s", PQerrorMessage(c));
		PQclear(r);
		return NULL;
	}
	return r;
}

/* A statement returning one row with one integer column (a guard count or a
 * row count); returns it, or -1 on error. */
static int run_count(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = run(c, sql, n, params, NULL, 0);
	if (!r)
		return -1;
	int v = PQntuples(r) > 0 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return v;
}

/* NOTIFY DB_JOB_EVENTS_CHANNEL with job id jid (an SQL expression) when a
 * session watches the job (db_job_watch holds the advisory lock shared: our
 * exclusive try fails); when nobody does, no notification is queued and the
 * statement writes nothing. A try that succeeds holds the lock to the end
 * of the transaction, so a stream starting meanwhile waits that long, then
 * reads what was committed before. */
#define WATCHED(jid) "CASE WHEN NOT pg_try_advisory_xact_lock(" DB_JOB_WATCH_LOCK_CLASS ", hashtext(" jid ")) " \
	"THEN pg_notify('" DB_JOB_EVENTS_CHANNEL "', " jid ") END"

/* Wake the listeners of the job's events (when watched, see WATCHED) and,
 * with wake_workers, the idle workers, after the change was committed. Outside a transaction
 * block this is a transaction of its own with synchronous_commit off: a
 * notification carries no data to lose (listeners re-read the rows, and a
 * crash ends their sessions anyway), and PostgreSQL holds its database-wide
 * NOTIFY lock from the notifying transaction's commit until its WAL flush,
 * so a NOTIFY inside a durable commit serialises every job's commits behind
 * one another. Inside the caller's transaction block it is an ordinary
 * pg_notify, delivered at the caller's commit (which stays synchronous).
 * Failures are ignored: listeners also poll. */
static void notify(PGconn *c, int wake_workers, const char *job_id)
{
	int in_tx = PQtransactionStatus(c) == PQTRANS_INTRANS;
	const char *params[2] = { job_id, wake_workers ? "t" : "f" };
	PGresult *r = PQexecParams(c, in_tx
		? "SELECT " WATCHED("$1") ", CASE WHEN $2::bool THEN pg_notify('" DB_JOBS_CHANNEL "', $1) END"
		: "SELECT set_config('synchronous_commit', 'off', true), " WATCHED("$1") ", "
		  "CASE WHEN $2::bool THEN pg_notify('" DB_JOBS_CHANNEL "', $1) END",
		2, NULL, params, NULL, NULL, 0);
	PQclear(r);
}

static void notify_events(PGconn *c, const char *job_id)
{
	notify(c, 0, job_id);
}

int db_job_watch(PGconn *conn, const char *job_id)
{
	const char *params[1] = { job_id };
	PGresult *r = PQexecParams(conn, "SELECT pg_advisory_lock_shared(" DB_JOB_WATCH_LOCK_CLASS ", hashtext($1))",
				   1, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok ? 0 : -1;
}

static json_t *parse_json(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j)
		set_err(err, errlen, "database: bad JSON from query: %s", je.text);
	return j;
}

static const char *const job_kinds[] = { "install", "upgrade", "rollback", "uninstall", "adopt", "preflight",
					 "check", "repair" };
static const char *const job_states[] = { "queued", "running", "succeeded", "failed", "cancelled" };

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

/* ---- JSON of a job ---------------------------------------------------- */

#define JOB_JSON_BASE \
	"'id', j.id, 'cluster_id', j.cluster_id, 'cluster_name', c.name, " \
	"'kind', j.kind, 'state', j.state, 'params', j.params, 'attempt', j.attempt, " \
	"'error', j.error, 'result', j.result, 'cancel_requested', j.cancel_requested, " \
	"'created_at', ferry_ts(j.created_at), 'started_at', ferry_ts(j.started_at), " \
	"'finished_at', ferry_ts(j.finished_at)"

#define JOB_JSON_PHASES \
	"'phases', COALESCE((SELECT json_agg(json_build_object(" \
	"'seq', p.seq, 'name', p.name, 'state', p.state, 'attempts', p.attempts, " \
	"'api_calls', p.api_calls, 'started_at', ferry_ts(p.started_at), " \
	"'finished_at', ferry_ts(p.finished_at), " \
	"'duration_ms', (extract(epoch FROM (p.finished_at - p.started_at)) * 1000)::bigint, " \
	"'message', p.message, 'detail', p.detail) ORDER BY p.seq) " \
	"FROM job_phases p WHERE p.job_id = j.id), '[]'::json)"

/* One job as PostgreSQL's JSON text (one row, or none), tenant-scoped
 * unless tenant_id is NULL; NULL on a bad id or a database error. */
static PGresult *job_json_row(PGconn *conn, const char *tenant_id, const char *job_id,
			      char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!dbq_is_uuid(job_id) || (tenant_id && !dbq_is_uuid(tenant_id)))
		return NULL;
	const char *params[2] = { job_id, tenant_id };
	return run(conn,
		   "SELECT json_build_object(" JOB_JSON_BASE ", " JOB_JSON_PHASES ")::text "
		   "FROM jobs j JOIN clusters c ON c.id = j.cluster_id "
		   "WHERE j.id = $1 AND ($2::uuid IS NULL OR j.tenant_id = $2::uuid)",
		   2, params, err, errlen);
}

json_t *db_job_get_json(PGconn *conn, const char *tenant_id, const char *job_id,
			char *err, size_t errlen)
{
	PGresult *r = job_json_row(conn, tenant_id, job_id, err, errlen);
	if (!r)
		return NULL;
	json_t *j = NULL;
	if (PQntuples(r) == 1)
		j = parse_json(PQgetvalue(r, 0, 0), err, errlen);
	PQclear(r);
	return j;
}

char *db_job_get_body(PGconn *conn, const char *tenant_id, const char *job_id,
		      char *err, size_t errlen)
{
	PGresult *r = job_json_row(conn, tenant_id, job_id, err, errlen);
	if (!r)
		return NULL;
	char *body = NULL;
	if (PQntuples(r) == 1) {
		body = dbq_json_body(PQgetvalue(r, 0, 0));
		if (!body)
			set_err(err, errlen, "database: bad JSON from query%s", "");
	}
	PQclear(r);
	return body;
}

json_t *db_job_list_json(PGconn *conn, const char *tenant_id, const char *state,
			 const char *cluster_id, int limit, const char *cursor,
			 int *bad_request, char *err, size_t errlen)
{
	*bad_request = 0;
	if (state && !in_list(state, job_states, 5)) {
		*bad_request = 1;
		snprintf(err, errlen, "state must be one of queued, running, succeeded, failed, cancelled");
		return NULL;
	}
	if (cluster_id && !dbq_is_uuid(cluster_id)) {
		*bad_request = 1;
		snprintf(err, errlen, "cluster_id must be a UUID");
		return NULL;
	}
	if (cursor && !dbq_is_uuid(cursor)) {
		*bad_request = 1;
		snprintf(err, errlen, "cursor is not valid");
		return NULL;
	}
	if (limit < 1 || limit > 200) {
		*bad_request = 1;
		snprintf(err, errlen, "limit must be between 1 and 200");
		return NULL;
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *params[5] = { tenant_id, state, cluster_id, cursor, lim };
	PGresult *r = run(conn,
			  "SELECT json_build_object(" JOB_JSON_BASE ")::text, j.id "
			  "FROM jobs j JOIN clusters c ON c.id = j.cluster_id "
			  "WHERE ($1::uuid IS NULL OR j.tenant_id = $1::uuid) "
			  "AND ($2::text IS NULL OR j.state = $2) "
			  "AND ($3::uuid IS NULL OR j.cluster_id = $3::uuid) "
			  "AND ($4::uuid IS NULL OR (j.created_at, j.id) < "
			  "     (SELECT k.created_at, k.id FROM jobs k WHERE k.id = $4::uuid)) "
			  "ORDER BY j.created_at DESC, j.id DESC LIMIT $5::int",
			  5, params, err, errlen);
	if (!r)
		return NULL;
	json_t *items = json_array();
	int n = PQntuples(r);
	int shown = n > limit ? limit : n;
	for (int i = 0; i < shown; i++) {
		json_t *j = parse_json(PQgetvalue(r, i, 0), err, errlen);
		if (!j) {
			json_decref(items);
			PQclear(r);
			return NULL;
		}
		json_array_append_new(items, j);
	}
	json_t *next = n > limit ? json_string(PQgetvalue(r, limit - 1, 1)) : json_null();
	PQclear(r);
	return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}

json_t *db_job_events_json(PGconn *conn, const char *tenant_id, const char *job_id,
			   long long after_id, int limit, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!dbq_is_uuid(job_id) || (tenant_id && !dbq_is_uuid(tenant_id)))
		return NULL;
	if (limit < 1)
		limit = 1;
	if (limit > 1000)
		limit = 1000;
	char after[32], lim[16];
	snprintf(after, sizeof(after), "%lld", after_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *params[4] = { job_id, tenant_id, after, lim };
	PGresult *r = run(conn,
			  "SELECT (SELECT count(*) FROM jobs j WHERE j.id = $1::uuid "
			  "        AND ($2::uuid IS NULL OR j.tenant_id = $2::uuid)), "
			  "COALESCE((SELECT json_agg(json_build_object('id', e.id, 'at', ferry_ts(e.at), "
			  "  'level', e.level, 'phase', e.phase, 'message', e.message) ORDER BY e.id) "
			  "  FROM (SELECT * FROM job_events WHERE job_id = $1::uuid AND id > $3::bigint "
			  "        ORDER BY id LIMIT $4::int) e), '[]'::json)::text",
			  4, params, err, errlen);
	if (!r)
		return NULL;
	json_t *out = NULL;
	if (atoi(PQgetvalue(r, 0, 0)) == 1) {
		json_t *items = parse_json(PQgetvalue(r, 0, 1), err, errlen);
		if (items)
			out = json_pack("{s:o}", "items", items);
	}
	PQclear(r);
	return out;
}

/* ---- enqueue and cancel ------------------------------------------------ */

/* 1 when the tenant used key before (job_id set; 2 when that job belongs
 * to another cluster than cluster_id), 0 when not, -1 on error. */
static int find_by_key(PGconn *conn, const char *tenant_id, const char *cluster_id, const char *key,
		       char job_id[DB_ID_LEN], char *err, size_t errlen)
{
	const char *params[3] = { tenant_id, key, cluster_id };
	PGresult *r = run(conn, "SELECT id, cluster_id = $3::uuid FROM jobs"
			  " WHERE tenant_id = $1::uuid AND idempotency_key = $2",
			  3, params, err, errlen);
	if (!r)
		return -1;
	int found = PQntuples(r) == 1;
	if (found) {
		snprintf(job_id, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
		if (strcmp(PQgetvalue(r, 0, 1), "t"))
			found = 2;
	}
	PQclear(r);
	return found;
}

int db_job_active_for_cluster(PGconn *conn, const char *cluster_id, char active_job_id[DB_ID_LEN])
{
	if (!dbq_is_uuid(cluster_id))
		return 0;
	const char *params[1] = { cluster_id };
	PGresult *r = run(conn,
			  "SELECT id FROM jobs WHERE cluster_id = $1::uuid AND state IN ('queued', 'running')",
			  1, params, NULL, 0);
	if (!r)
		return -1;
	int found = PQntuples(r) > 0;
	if (found && active_job_id)
		snprintf(active_job_id, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
}

enum db_job_enqueue_result db_job_enqueue(PGconn *conn, const struct db_job_new *req,
					  char job_id[DB_ID_LEN],
					  char active_job_id[DB_ID_LEN],
					  char *err, size_t errlen)
{
	enum db_job_enqueue_result rc = DB_JOB_DB_ERROR;
	char *params_text = NULL;
	const char *key = req->idempotency_key && *req->idempotency_key ? req->idempotency_key : NULL;
	if (err && errlen)
		err[0] = 0;
	if (!in_list(req->kind, job_kinds, 8)) {
		snprintf(err, errlen, "kind must be one of install, upgrade, rollback, uninstall, adopt, preflight, "
			 "check, repair");
		return DB_JOB_BAD_KIND;
	}
	if (!dbq_is_uuid(req->tenant_id) || !dbq_is_uuid(req->cluster_id)) {
		snprintf(err, errlen, "no such cluster");
		return DB_JOB_NO_CLUSTER;
	}
	if (req->params && !json_is_object(req->params)) {
		snprintf(err, errlen, "params must be an object");
		return DB_JOB_DB_ERROR;
	}
	params_text = req->params ? json_dumps(req->params, JSON_COMPACT) : xstrdup("{}");

	/* A few rounds: a conflicting job may finish between our INSERT and
	 * the lookup of the active job. */
	for (int round = 0; round < 5; round++) {
		if (key) {
			int f = find_by_key(conn, req->tenant_id, req->cluster_id, key, job_id, err, errlen);
			if (f < 0)
				goto out;
			if (f == 2) {
				job_id[0] = '\0';
				snprintf(err, errlen, "Idempotency-Key was already used for a job on another cluster");
				rc = DB_JOB_KEY_REUSED;
				goto out;
			}
			if (f) {
				rc = DB_JOB_REPLAYED;
				goto out;
			}
		}
		const char *p[6] = { req->tenant_id, req->cluster_id, req->kind, params_text, key, req->created_by };
		PGresult *r = PQexecParams(conn,
			"WITH ins AS ("
			"  INSERT INTO jobs (tenant_id, cluster_id, kind, params, idempotency_key, created_by) "
			"  SELECT $1::uuid, c.id, $3, $4::jsonb, $5, $6::uuid FROM clusters c "
			"  WHERE c.id = $2::uuid AND c.tenant_id = $1::uuid "
			"  FOR KEY SHARE OF c "   /* a concurrent DELETE waits, or we see it gone */
			"  RETURNING id) "
			"SELECT id FROM ins",
			6, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			if (PQntuples(r) == 1) {
				snprintf(job_id, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
				rc = DB_JOB_CREATED;
				PQclear(r);
				notify(conn, 1, job_id);
				goto out;
			} else {
				snprintf(err, errlen, "no such cluster");
				rc = DB_JOB_NO_CLUSTER;
			}
			PQclear(r);
			goto out;
		}
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
		int unique = state && !strcmp(state, "23505");
		int active = unique && constraint && !strcmp(constraint, "jobs_one_active_per_cluster");
		int idem = unique && constraint && !strcmp(constraint, "jobs_idempotency");
		if (state && !strcmp(state, "23503")) {
			/* The cluster went away between our read and the insert. */
			PQclear(r);
			snprintf(err, errlen, "no such cluster");
			rc = DB_JOB_NO_CLUSTER;
			goto out;
		}
		if (!active && !idem)
			set_err(err, errlen, "database: %s", PQerrorMessage(conn));
		PQclear(r);
		if (idem)
			continue;  /* a concurrent request with the same key won: replay it */
		if (!active)
			goto out;
		char other[DB_ID_LEN];
		int a = db_job_active_for_cluster(conn, req->cluster_id, other);
		if (a < 0) {
			snprintf(err, errlen, "database: looking up the active job failed");
			goto out;
		}
		if (a == 1) {
			if (active_job_id)
				snprintf(active_job_id, DB_ID_LEN, "%s", other);
			snprintf(err, errlen, "cluster already has an active job %s", other);
			rc = DB_JOB_CONFLICT;
			goto out;
		}
	}
	snprintf(err, errlen, "database: could not enqueue the job (too much contention)");
out:
	free(params_text);
	return rc;
}

enum db_job_cancel_result db_job_cancel(PGconn *conn, const char *tenant_id,
					const char *job_id, char *err, size_t errlen)
{
	if (!dbq_is_uuid(job_id) || (tenant_id && !dbq_is_uuid(tenant_id)))
		return DB_CANCEL_NOT_FOUND;
	const char *params[2] = { job_id, tenant_id };
	PGresult *r = run(conn,
		"WITH c AS ("
		"  UPDATE jobs SET cancel_requested = true, updated_at = now(), "
		"    state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, "
		"    finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END, "
		"    lease_owner = CASE WHEN state = 'queued' THEN NULL ELSE lease_owner END "
		"  WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid) "
		"    AND state IN ('queued', 'running') "
		"  RETURNING id, state), "
		"e AS (INSERT INTO job_events (job_id, level, message) "
		"  SELECT id, 'warn', CASE WHEN state = 'cancelled' THEN 'job cancelled while queued' "
		"    ELSE 'cancel requested; the job stops at the next phase boundary' END FROM c) "
		"SELECT state FROM c",
		2, params, err, errlen);
	if (!r)
		return DB_CANCEL_DB_ERROR;
	if (PQntuples(r) == 1) {
		int done = !strcmp(PQgetvalue(r, 0, 0), "cancelled");
		PQclear(r);
		notify_events(conn, job_id);
		return done ? DB_CANCEL_DONE : DB_CANCEL_REQUESTED;
	}
	PQclear(r);
	r = run(conn, "SELECT 1 FROM jobs WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid)",
		2, params, err, errlen);
	if (!r)
		return DB_CANCEL_DB_ERROR;
	int exists = PQntuples(r) == 1;
	PQclear(r);
	return exists ? DB_CANCEL_FINISHED : DB_CANCEL_NOT_FOUND;
}

json_t *db_job_stats_json(PGconn *conn)
{
	PGresult *r = run(conn,
		"SELECT json_build_object("
		" 'queued', count(*) FILTER (WHERE state = 'queued'),"
		" 'running', count(*) FILTER (WHERE state = 'running'),"
		" 'succeeded', count(*) FILTER (WHERE state = 'succeeded'),"
		" 'failed', count(*) FILTER (WHERE state = 'failed'),"
		" 'cancelled', count(*) FILTER (WHERE state = 'cancelled'),"
		" 'queue_depth', count(*) FILTER (WHERE (state = 'queued' AND run_after <= now())"
		"      OR (state = 'running' AND lease_expires_at < now())),"
		/* how long the longest-waiting claimable job has been claimable:
		 * since run_after (queued) or since its lease ran out (taken over) */
		" 'oldest_claimable_seconds', COALESCE(extract(epoch FROM now() - min(CASE"
		"      WHEN state = 'queued' AND run_after <= now() THEN run_after"
		"      WHEN state = 'running' AND lease_expires_at < now() THEN lease_expires_at END)), 0)"
		")::text FROM jobs",
		0, NULL, NULL, 0);
	if (!r)
		return NULL;
	json_t *j = parse_json(PQgetvalue(r, 0, 0), NULL, 0);
	PQclear(r);
	return j;
}

/* ---- worker side -------------------------------------------------------- */

int db_job_claim(PGconn *conn, const char *owner, int lease_seconds,
		 struct db_job_claim *out, char *err, size_t errlen)
{
	return db_job_claim_fair(conn, owner, NULL, lease_seconds, 0, NULL, 0, 0, out, err, errlen);
}

static char *dup_value(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : xstrdup(PQgetvalue(r, 0, col));
}

int db_job_claim_fair(PGconn *conn, const char *owner, const char *group, int lease_seconds,
		      int tenant_cap, const char *const *full_tenants, int nfull, int keep_open,
		      struct db_job_claim *out, char *err, size_t errlen)
{
	/* With a cap, a job is claimable only while its tenant has fewer
	 * running jobs (live leases) held by the group's workers than the
	 * cap and is not one of full_tenants (see jobs.h). The cluster's
	 * connection settings come back with the job (a job's first database
	 * read otherwise). */
	static const char *const claim_sql =
		"WITH c AS (UPDATE jobs SET state = 'running', lease_owner = $1, "
		"  lease_token = lease_token + 1, attempt = attempt + 1, "
		"  lease_expires_at = now() + make_interval(secs => $2::int), "
		"  started_at = COALESCE(started_at, now()), updated_at = now() "
		"WHERE id = (SELECT id FROM jobs j "
		"  WHERE ((j.state = 'queued' AND j.run_after <= now()) "
		"     OR (j.state = 'running' AND j.lease_expires_at < now())) "
		"    AND NOT (j.tenant_id = ANY ($5::uuid[])) "
		"    AND ($3::int = 0 OR (SELECT count(*) FROM jobs r WHERE r.tenant_id = j.tenant_id "
		"         AND r.state = 'running' AND r.lease_expires_at >= now() "
		"         AND left(r.lease_owner, length($4) + 1) = $4 || '/') < $3::int) "
		"  ORDER BY j.run_after, j.created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
		"RETURNING id, tenant_id, cluster_id, kind, params::text, attempt, lease_token, "
		"  cancel_requested) "
		"SELECT c.*, k.id IS NOT NULL AS cluster_found, k.api_server, k.ca_bundle, k.tls_server_name, k.credentials, "
		"  k.insecure_skip_tls_verify "
		"FROM c LEFT JOIN clusters k ON k.id = c.cluster_id AND k.tenant_id = c.tenant_id";
	char secs[16], cap[16];
	snprintf(secs, sizeof(secs), "%d", lease_seconds);
	if (!group || tenant_cap <= 0)
		tenant_cap = 0, group = "";
	snprintf(cap, sizeof(cap), "%d", tenant_cap);
	struct buf full = BUF_INIT;
	buf_putc(&full, '{');
	for (int i = 0; i < nfull; i++)
		if (dbq_is_uuid(full_tenants[i]))
			buf_printf(&full, "%s%s", full.len > 1 ? "," : "", full_tenants[i]);
	buf_putc(&full, '}');
	const char *params[5] = { owner, secs, cap, group, buf_cstr(&full) };
	/* keep_open: BEGIN and the claim in one round trip. */
	struct dbq_call calls[2] = { { "BEGIN", 0, NULL, NULL }, { claim_sql, 5, params, NULL } };
	struct dbq_call *call = keep_open ? &calls[1] : &calls[0];
	if (keep_open) {
		dbq_pipeline(conn, calls, 2);
	} else {
		calls[0] = calls[1];
		calls[0].res = dbq_params(conn, claim_sql, 5, params);
	}
	buf_free(&full);
	PGresult *r = call->res;
	int got = -1;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		set_err(err, errlen, "database: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
	else
		got = PQntuples(r) == 1;
	if (got == 1) {
		memset(out, 0, sizeof(*out));
		snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(r, 0, 0));
		snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", PQgetvalue(r, 0, 1));
		snprintf(out->cluster_id, sizeof(out->cluster_id), "%s", PQgetvalue(r, 0, 2));
		snprintf(out->kind, sizeof(out->kind), "%s", PQgetvalue(r, 0, 3));
		out->params = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
		if (!out->params)
			out->params = json_object();
		out->attempt = atoi(PQgetvalue(r, 0, 5));
		out->lease_token = atoll(PQgetvalue(r, 0, 6));
		out->cancel_requested = PQgetvalue(r, 0, 7)[0] == 't';
		out->cluster.found = PQgetvalue(r, 0, 8)[0] == 't';
		out->cluster.api_server = dup_value(r, 9);
		out->cluster.ca_bundle = dup_value(r, 10);
		out->cluster.tls_server_name = dup_value(r, 11);
		out->cluster.credentials = dup_value(r, 12);
		out->cluster.insecure_skip_tls_verify = PQgetvalue(r, 0, 13)[0] == 't';
	}
	dbq_pipeline_clear(calls, keep_open ? 2 : 1);
	/* Nothing claimed: the block opened for it ends here. */
	if (keep_open && got != 1 && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PGresult *rb = PQexec(conn, "ROLLBACK");
		PQclear(rb);
	}
	return got;
}

static void free_secret(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void db_job_claim_clear(struct db_job_claim *c)
{
	if (!c)
		return;
	json_decref(c->params);
	c->params = NULL;
	free(c->cluster.api_server);
	free(c->cluster.ca_bundle);
	free(c->cluster.tls_server_name);
	free_secret(c->cluster.credentials);
	memset(&c->cluster, 0, sizeof(c->cluster));
}

int db_job_heartbeat(PGconn *conn, const char *job_id, long long token,
		     int lease_seconds, int *cancel_requested)
{
	char tok[32], secs[16];
	snprintf(tok, sizeof(tok), "%lld", token);
	snprintf(secs, sizeof(secs), "%d", lease_seconds);
	const char *params[3] = { job_id, tok, secs };
	PGresult *r = run(conn,
		"UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3::int) "
		"WHERE id = $1::uuid AND lease_token = $2::bigint AND state = 'running' "
		"RETURNING cancel_requested",
		3, params, NULL, 0);
	if (!r)
		return -1;
	int ok = PQntuples(r) == 1;
	if (ok && cancel_requested)
		*cancel_requested = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return ok;
}

/* The guard: the job row locked FOR SHARE while this lease is current. */
#define GUARD "WITH g AS (SELECT id FROM jobs WHERE id = $1::uuid AND lease_token = $2::bigint " \
	"AND state = 'running' FOR SHARE)"

/* names as a text[] literal; phase names are plain identifiers but quote
 * anyway. */
static void text_array(struct buf *arr, const char *const *names, int n)
{
	buf_putc(arr, '{');
	for (int i = 0; i < n; i++) {
		buf_puts(arr, i ? ",\"" : "\"");
		for (const char *p = names[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(arr, '\\');
			buf_putc(arr, *p);
		}
		buf_putc(arr, '"');
	}
	buf_putc(arr, '}');
}

/* One element of a text[] literal being built in b (the i-th; NULL = SQL
 * NULL); array_end closes it. */
static void array_elem(struct buf *b, int i, const char *s)
{
	buf_puts(b, i ? "," : "{");
	if (!s) {
		buf_puts(b, "NULL");
		return;
	}
	buf_putc(b, '"');
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

static const char *array_end(struct buf *b)
{
	buf_putc(b, '}');
	return buf_cstr(b);
}

int db_job_phases_init(PGconn *conn, const char *job_id, long long token,
		       const char *const *names, int n)
{
	char tok[32];
	snprintf(tok, sizeof(tok), "%lld", token);
	struct buf arr = BUF_INIT;
	text_array(&arr, names, n);
	const char *params[3] = { job_id, tok, buf_cstr(&arr) };
	int rc = run_count(conn,
		GUARD ", ins AS (INSERT INTO job_phases (job_id, seq, name) "
		"  SELECT $1::uuid, s.i, s.name FROM unnest($3::text[]) WITH ORDINALITY AS s(name, i) "
		"  WHERE EXISTS (SELECT 1 FROM g) ON CONFLICT (job_id, seq) DO NOTHING RETURNING 1) "
		"SELECT count(*) FROM g",
		3, params);
	buf_free(&arr);
	return rc < 0 ? -1 : rc > 0;
}

int db_job_phase_states(PGconn *conn, const char *job_id, int n,
			char (*states)[16], int *attempts)
{
	for (int i = 0; i < n; i++) {
		snprintf(states[i], 16, "pending");
		if (attempts)
			attempts[i] = 0;
	}
	const char *params[1] = { job_id };
	PGresult *r = run(conn, "SELECT seq, state, attempts FROM job_phases WHERE job_id = $1::uuid",
			  1, params, NULL, 0);
	if (!r)
		return -1;
	for (int row = 0; row < PQntuples(r); row++) {
		int seq = atoi(PQgetvalue(r, row, 0));
		if (seq < 1 || seq > n)
			continue;
		snprintf(states[seq - 1], 16, "%s", PQgetvalue(r, row, 1));
		if (attempts)
			attempts[seq - 1] = atoi(PQgetvalue(r, row, 2));
	}
	PQclear(r);
	return 0;
}

int db_job_phase_start(PGconn *conn, const char *job_id, long long token, int seq)
{
	char tok[32], s[16];
	snprintf(tok, sizeof(tok), "%lld", token);
	snprintf(s, sizeof(s), "%d", seq);
	const char *params[3] = { job_id, tok, s };
	int rc = run_count(conn,
		GUARD ", u AS (UPDATE job_phases SET state = 'running', attempts = attempts + 1, "
		"  started_at = COALESCE(started_at, now()), finished_at = NULL "
		"  WHERE job_id = $1::uuid AND seq = $3::int AND EXISTS (SELECT 1 FROM g) RETURNING 1) "
		"SELECT count(*) FROM g",
		3, params);
	if (rc > 0)
		notify_events(conn, job_id);
	return rc < 0 ? -1 : rc > 0;
}

int db_job_phase_end(PGconn *conn, const char *job_id, long long token, int seq,
		     const char *state, const char *message, const json_t *detail,
		     int api_calls)
{
	struct db_job_step st = { .end_seq = seq, .end_state = state, .end_message = message,
				  .end_detail = detail, .api_calls = api_calls };
	return db_job_step(conn, job_id, token, &st, NULL, NULL);
}

int db_job_event(PGconn *conn, const char *job_id, long long token,
		 const char *level, const char *phase, const char *message)
{
	char tok[32];
	snprintf(tok, sizeof(tok), "%lld", token);
	/* A log line: outside the caller's transaction block it commits
	 * asynchronously, with its NOTIFY in the same transaction (see jobs.h). */
	const char *async = PQtransactionStatus(conn) == PQTRANS_INTRANS ? "f" : "t";
	const char *params[6] = { job_id, tok, level, phase, message, async };
	int rc = run_count(conn,
		"WITH g AS (SELECT id FROM jobs WHERE id = $1::uuid AND ($2::bigint = 0 OR "
		"  (lease_token = $2::bigint AND state = 'running')) FOR SHARE), "
		"i AS (INSERT INTO job_events (job_id, level, phase, message) "
		"  SELECT id, $3, $4, $5 FROM g RETURNING 1) "
		"SELECT count(*), CASE WHEN $6::bool THEN set_config('synchronous_commit', 'off', true) END, "
		"  " WATCHED("$1::uuid::text") " FROM g",
		6, params);
	return rc < 0 ? -1 : rc > 0;
}

int db_job_defer(PGconn *conn, const char *job_id, long long token, long delay_ms)
{
	struct db_job_step st = { .requeue = 1, .requeue_ms = delay_ms };
	return db_job_step(conn, job_id, token, &st, NULL, NULL);
}

int db_job_release(PGconn *conn, const char *job_id, long long token)
{
	return db_job_defer(conn, job_id, token, 0);
}

int db_job_finish(PGconn *conn, const char *job_id, long long token,
		  const char *state, const char *error, const json_t *result)
{
	struct db_job_step st = { .finish_state = state, .finish_error = error, .result = result };
	return db_job_step(conn, job_id, token, &st, NULL, NULL);
}

int db_job_begin(PGconn *conn, const char *job_id, long long token, const char *const *names, int n,
		 int start_first, const char *message, int *started)
{
	char tok[32];
	snprintf(tok, sizeof(tok), "%lld", token);
	struct buf arr = BUF_INIT;
	text_array(&arr, names, n);
	const char *params[5] = { job_id, tok, buf_cstr(&arr), start_first ? "t" : "f", message };
	/* The last column: watched (see WATCHED; the try holds the lock to
	 * our commit, so a stream starting meanwhile reads after it). */
	struct dbq_call calls[2] = {
		{ GUARD ", ins AS (INSERT INTO job_phases (job_id, seq, name, state, attempts, started_at) "
		  "  SELECT $1::uuid, s.i, s.name, "
		  "    CASE WHEN s.i = 1 AND $4::bool THEN 'running' ELSE 'pending' END, "
		  "    CASE WHEN s.i = 1 AND $4::bool THEN 1 ELSE 0 END, "
		  "    CASE WHEN s.i = 1 AND $4::bool THEN now() END "
		  "  FROM unnest($3::text[]) WITH ORDINALITY AS s(name, i) "
		  "  WHERE EXISTS (SELECT 1 FROM g) ON CONFLICT (job_id, seq) DO NOTHING RETURNING state), "
		  "e AS (INSERT INTO job_events (job_id, level, message) "
		  "  SELECT id, 'info', $5 FROM g WHERE $5::text IS NOT NULL RETURNING 1) "
		  "SELECT (SELECT count(*) FROM g), (SELECT count(*) FROM ins WHERE state = 'running'), "
		  "  NOT pg_try_advisory_xact_lock(" DB_JOB_WATCH_LOCK_CLASS ", hashtext($1::text))",
		  5, params, NULL },
		{ "COMMIT", 0, NULL, NULL },
	};
	/* Inside the claim's block: the write and the COMMIT in one round trip. */
	int commit = PQtransactionStatus(conn) == PQTRANS_INTRANS;
	int failed = dbq_pipeline(conn, calls, commit ? 2 : 1) < 0;
	buf_free(&arr);
	PGresult *r = calls[0].res;
	if (failed || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    (commit && PQtransactionStatus(conn) != PQTRANS_IDLE)) {
		dbq_pipeline_clear(calls, 2);
		return -1;
	}
	int ok = atoi(PQgetvalue(r, 0, 0)) > 0;
	if (started)
		*started = ok && atoi(PQgetvalue(r, 0, 1)) > 0;
	int watched = PQgetvalue(r, 0, 2)[0] == 't';
	dbq_pipeline_clear(calls, 2);
	if (ok && watched)
		notify_events(conn, job_id);
	return ok;
}

void db_job_notify(PGconn *conn, const char *job_id)
{
	notify_events(conn, job_id);
}

int db_job_step(PGconn *conn, const char *job_id, long long token, const struct db_job_step *st,
		int *cancel_requested, int *started)
{
	char tok[32], end_seq[16], calls[16], start_seq[16], lease[16], requeue_ms[32];
	snprintf(tok, sizeof(tok), "%lld", token);
	snprintf(end_seq, sizeof(end_seq), "%d", st->end_seq);
	snprintf(calls, sizeof(calls), "%d", st->api_calls);
	snprintf(start_seq, sizeof(start_seq), "%d", st->start_seq);
	snprintf(lease, sizeof(lease), "%d", st->lease_seconds);
	snprintf(requeue_ms, sizeof(requeue_ms), "%ld", st->requeue_ms < 0 ? 0 : st->requeue_ms);
	char *det = st->end_detail ? json_dumps(st->end_detail, JSON_COMPACT) : NULL;
	char *res = st->result ? json_dumps(st->result, JSON_COMPACT) : NULL;
	struct buf nl = BUF_INIT, np = BUF_INIT, nm = BUF_INIT, na = BUF_INIT;
	for (int i = 0; i < st->nnotes; i++) {
		array_elem(&nl, i, st->notes[i].level);
		array_elem(&np, i, st->notes[i].phase);
		array_elem(&nm, i, st->notes[i].message);
		array_elem(&na, i, st->notes[i].at);
	}
	const char *params[20] = {
		job_id, tok, end_seq, st->end_state, st->end_message, det, calls,
		st->event_message ? st->event_level : NULL, st->event_phase, st->event_message,
		start_seq, lease, st->finish_state, st->finish_error, res,
		st->requeue ? requeue_ms : NULL,
		st->nnotes ? array_end(&nl) : NULL, st->nnotes ? array_end(&np) : NULL,
		st->nnotes ? array_end(&nm) : NULL, st->nnotes ? array_end(&na) : NULL,
	};
	/* One transaction. $13 = finish state, $16 = requeue delay: either ends
	 * the lease; a phase is started ($11) only when the job goes on and no
	 * cancel was requested. The two events are inserted in order (ids). */
	static const char *const step_sql =
		"WITH g AS (SELECT id, cancel_requested FROM jobs WHERE id = $1::uuid "
		"  AND lease_token = $2::bigint AND state = 'running' FOR UPDATE), "
		"pe AS (UPDATE job_phases SET state = $4, finished_at = now(), message = $5, "
		"  detail = $6::jsonb, api_calls = api_calls + $7::int "
		"  WHERE job_id = $1::uuid AND seq = $3::int AND EXISTS (SELECT 1 FROM g) RETURNING 1), "
		"ps AS (UPDATE job_phases SET state = 'running', attempts = attempts + 1, "
		"  started_at = COALESCE(started_at, now()), finished_at = NULL "
		"  WHERE job_id = $1::uuid AND seq = $11::int AND $13::text IS NULL AND $16::bigint IS NULL "
		"    AND EXISTS (SELECT 1 FROM g WHERE NOT g.cancel_requested) RETURNING 1), "
		"j AS (UPDATE jobs SET "
		"  state = CASE WHEN $13::text IS NOT NULL THEN $13 WHEN $16::bigint IS NOT NULL THEN 'queued' "
		"    ELSE state END, "
		"  lease_expires_at = CASE WHEN $13::text IS NOT NULL OR $16::bigint IS NOT NULL THEN NULL "
		"    WHEN $12::int > 0 THEN now() + make_interval(secs => $12::int) ELSE lease_expires_at END, "
		"  lease_owner = CASE WHEN $13::text IS NOT NULL OR $16::bigint IS NOT NULL THEN NULL "
		"    ELSE lease_owner END, "
		"  error = CASE WHEN $13::text IS NOT NULL THEN $14 ELSE error END, "
		"  result = CASE WHEN $13::text IS NOT NULL THEN $15::jsonb ELSE result END, "
		"  finished_at = CASE WHEN $13::text IS NOT NULL THEN now() ELSE finished_at END, "
		"  run_after = CASE WHEN $16::bigint IS NOT NULL "
		"    THEN now() + make_interval(secs => ($16::bigint / 1000.0)::float8) ELSE run_after END, "
		"  updated_at = now() "
		"  WHERE id IN (SELECT id FROM g) "
		"    AND ($12::int > 0 OR $13::text IS NOT NULL OR $16::bigint IS NOT NULL) RETURNING 1), "
		"e AS (INSERT INTO job_events (job_id, level, phase, message, at) "
		"  SELECT g.id, v.level, v.phase, v.message, COALESCE(v.at, now()) FROM g, ("
		"    SELECT 0, n.k, n.level, n.phase, n.message, n.at::timestamptz "
		"    FROM unnest($17::text[], $18::text[], $19::text[], $20::text[]) WITH ORDINALITY "
		"      AS n(level, phase, message, at, k) "
		"    UNION ALL VALUES "
		"    (1, 0, $8::text, $9::text, $10::text, NULL::timestamptz), "
		"    (2, 0, CASE $13::text WHEN 'succeeded' THEN 'info' WHEN 'cancelled' THEN 'warn' ELSE 'error' END, "
		"        NULL, 'job ' || $13::text || COALESCE(': ' || $14::text, ''), NULL)) "
		"    AS v(o, k, level, phase, message, at) "
		"  WHERE v.message IS NOT NULL ORDER BY v.o, v.k RETURNING 1) "
		"SELECT (SELECT count(*) FROM g), (SELECT bool_or(cancel_requested) FROM g), "
		"  (SELECT count(*) FROM ps), "
		"  NOT pg_try_advisory_xact_lock(" DB_JOB_WATCH_LOCK_CLASS ", hashtext($1::text))";
	/* With pre statements: they and the step in one pipeline (one implicit
	 * transaction, or the caller's block). */
	PGresult *r = NULL;
	if (st->npre > 0) {
		struct dbq_call *calls = xcalloc((size_t)st->npre + 1, sizeof(*calls));
		memcpy(calls, st->pre, (size_t)st->npre * sizeof(*calls));
		calls[st->npre] = (struct dbq_call){ step_sql, 20, params, NULL };
		dbq_pipeline(conn, calls, st->npre + 1);
		memcpy(st->pre, calls, (size_t)st->npre * sizeof(*calls));
		r = calls[st->npre].res;
		free(calls);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			r = NULL;
		}
	} else {
		r = run(conn, step_sql, 20, params, NULL, 0);
	}
	free(det);
	free(res);
	buf_free(&nl);
	buf_free(&np);
	buf_free(&nm);
	buf_free(&na);
	if (!r)
		return -1;
	int ok = atoi(PQgetvalue(r, 0, 0)) > 0;
	if (cancel_requested)
		*cancel_requested = ok && PQgetvalue(r, 0, 1)[0] == 't';
	if (started)
		*started = ok && atoi(PQgetvalue(r, 0, 2)) > 0;
	/* Watched (see WATCHED; the try holds the lock to our commit, so a
	 * stream starting meanwhile reads after it): only then the events
	 * NOTIFY's round trip. */
	int watched = PQgetvalue(r, 0, 3)[0] == 't';
	PQclear(r);
	if (ok && (watched || st->requeue))
		notify(conn, st->requeue, job_id);
	return ok;
}
