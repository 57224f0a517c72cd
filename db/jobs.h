/*
 * db/jobs: the job queue in PostgreSQL.
 *
 * Two audiences use this module:
 *  - API handlers: db_job_enqueue() (idempotency key, one active job per
 *    cluster), db_job_get_json(), db_job_list_json(), db_job_events_json(),
 *    db_job_cancel(). Every one of them takes the caller's tenant id and
 *    only sees that tenant's jobs (tenant_id NULL = platform-wide caller,
 *    sees every tenant's jobs). Another tenant's job is simply "not found".
 *  - Workers: db_job_claim() (SELECT ... FOR UPDATE SKIP LOCKED, lease with a
 *    fencing token), db_job_heartbeat(), the phase records, db_job_event(),
 *    db_job_defer() (retry later), db_job_release() (shutdown) and
 *    db_job_finish(). Every worker write carries the lease token it was
 *    given by the claim and changes nothing when the token is no longer
 *    current (another worker took the job over): such calls return 0.
 *
 * Job states: queued -> running -> succeeded | failed | cancelled. A running
 * job whose lease expired is claimable again (takeover); a deferred job goes
 * back to queued with run_after in the future. The partial unique index
 * jobs_one_active_per_cluster guarantees at most one queued-or-running job
 * per cluster, even under concurrent enqueues.
 *
 * Notifications (pg_notify), at most one per channel and transaction, sent
 * after the change committed:
 *  - DB_JOBS_CHANNEL ("ferry_jobs"), payload = job id: a job became
 *    claimable (enqueued, deferred, released). Idle workers LISTEN on it.
 *  - DB_JOB_EVENTS_CHANNEL ("ferry_job_events"), payload = job id: the job
 *    got a new event, or its state or phases changed (SSE streams LISTEN),
 *    sent only while a session watches the job (db_job_watch).
 *    The claim sends none: the claimer's next write (db_job_begin) does.
 * A NOTIFY is its own transaction with synchronous_commit off, right after
 * the change's durable commit (inside the caller's transaction block it is
 * an ordinary pg_notify delivered at that commit): PostgreSQL holds a
 * database-wide lock from a notifying commit until its WAL flush, so a
 * NOTIFY inside every durable commit would serialise all job writes.
 *
 * Durability: every change of a job's state, phases, lease or result is a
 * synchronous commit. Only db_job_event()'s log lines (outside a
 * transaction block) commit asynchronously: they become durable with the
 * job's next synchronous commit (the WAL is ordered), so a PostgreSQL crash
 * can lose only log lines written after the job's last recorded state
 * change (a phase whose end was not recorded either, which then re-runs and
 * logs again); a ferryd crash loses none. The notes and pre statements of
 * a db_job_step() commit with the step, synchronously.
 *
 * JSON shapes are those of the REST contract (docs/ARCHITECTURE.md):
 * job = {id, cluster_id, cluster_name, kind, state, params, attempt, error,
 * result, cancel_requested, created_at, started_at, finished_at, phases:[{seq,
 * name, state, attempts, api_calls, started_at, finished_at, duration_ms,
 * message, detail}]}; timestamps RFC 3339 UTC.
 *
 * Memory: returned json_t are new references owned by the caller
 * (json_decref). Strings filled into caller buffers are NUL-terminated.
 * Thread-safety: functions are safe to call from many threads, each with
 * its own PGconn (a PGconn is used by one thread at a time).
 * Errors: functions returning int use -1 for a database error, with a
 * message in err (err may be NULL).
 */
#ifndef FERRY_DB_JOBS_H
#define FERRY_DB_JOBS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "db/dbq.h"

#define DB_JOBS_CHANNEL "ferry_jobs"
#define DB_JOB_EVENTS_CHANNEL "ferry_job_events"

/* A UUID in text form plus NUL. */
#define DB_ID_LEN 37

/* ---- API side ---------------------------------------------------------- */

struct db_job_new {
	const char *tenant_id;        /* required: the cluster's tenant */
	const char *cluster_id;       /* required */
	const char *kind;             /* install|upgrade|rollback|uninstall|adopt|preflight|check|repair */
	const json_t *params;         /* object or NULL (= {}) */
	const char *idempotency_key;  /* NULL or "" = none */
	const char *created_by;       /* token id or NULL */
};

enum db_job_enqueue_result {
	DB_JOB_CREATED = 0,    /* a new job; job_id filled */
	DB_JOB_REPLAYED = 1,   /* same tenant + idempotency key seen before; job_id
				* is the earlier job (whatever its state) */
	DB_JOB_CONFLICT = 2,   /* another job is queued or running on the cluster;
				* its id is in active_job_id */
	DB_JOB_NO_CLUSTER = 3, /* no such cluster in that tenant (also when it is
				* deleted while the job is being created) */
	DB_JOB_BAD_KIND = 4,   /* kind not one of the eight */
	DB_JOB_KEY_REUSED = 5, /* the tenant used this idempotency key for a job
				* on another cluster (keys are scoped to
				* tenant + cluster + key); nothing created */
	DB_JOB_DB_ERROR = -1
};

/*
 * Enqueue a job (and NOTIFY DB_JOBS_CHANNEL). job_id and active_job_id are
 * caller buffers of DB_ID_LEN bytes (active_job_id may be NULL). Safe under
 * concurrent calls: exactly one of N concurrent enqueues for one cluster
 * returns DB_JOB_CREATED, the others DB_JOB_CONFLICT (or DB_JOB_REPLAYED when
 * they carry the same idempotency key).
 */
enum db_job_enqueue_result db_job_enqueue(PGconn *conn, const struct db_job_new *req,
					  char job_id[DB_ID_LEN],
					  char active_job_id[DB_ID_LEN],
					  char *err, size_t errlen);

/* The job as JSON, or NULL when it does not exist for this tenant (tenant_id
 * NULL = any tenant) or on a database error (then err is set; on "not found"
 * err is set to ""). */
json_t *db_job_get_json(PGconn *conn, const char *tenant_id, const char *job_id,
			char *err, size_t errlen);

/* The same job as the API's response body (db/dbq.h dbq_json_body():
 * PostgreSQL's JSON text re-encoded, never parsed; malloc'd, the caller
 * frees it); NULL as db_job_get_json. */
char *db_job_get_body(PGconn *conn, const char *tenant_id, const char *job_id,
		      char *err, size_t errlen);

/* {"items":[job…], "next_cursor": "…"|null}, newest first. state and
 * cluster_id filter when non-NULL; limit 1..200; cursor is the opaque value
 * of an earlier next_cursor or NULL. Returns NULL on a bad cursor/filter
 * (*bad_request set to 1, message in err) or database error. Items do not
 * carry "phases" (use db_job_get_json for them). */
json_t *db_job_list_json(PGconn *conn, const char *tenant_id, const char *state,
			 const char *cluster_id, int limit, const char *cursor,
			 int *bad_request, char *err, size_t errlen);

/* {"items":[{id, at, level, phase, message}…]} in id order, ids > after_id,
 * at most limit (1..1000). NULL when the job does not exist for the tenant
 * (err "") or on a database error. */
json_t *db_job_events_json(PGconn *conn, const char *tenant_id, const char *job_id,
			   long long after_id, int limit, char *err, size_t errlen);

enum db_job_cancel_result {
	DB_CANCEL_DONE = 0,        /* queued job is now cancelled */
	DB_CANCEL_REQUESTED = 1,   /* running job: cancel_requested set, the
				    * worker stops at the next phase boundary */
	DB_CANCEL_FINISHED = 2,    /* job already finished: nothing changed */
	DB_CANCEL_NOT_FOUND = 3,
	DB_CANCEL_DB_ERROR = -1
};
enum db_job_cancel_result db_job_cancel(PGconn *conn, const char *tenant_id,
					const char *job_id, char *err, size_t errlen);

/* The id of the cluster's queued or running job into active_job_id; 1 if
 * there is one, 0 if none, -1 on error. */
int db_job_active_for_cluster(PGconn *conn, const char *cluster_id,
			      char active_job_id[DB_ID_LEN]);

/* Counts for /metrics: jobs by state (keys = states), "queue_depth"
 * (claimable now), "oldest_claimable_seconds" (how long the job claimable
 * the longest has been: since its run_after, or since its lease expired;
 * 0 when none). NULL on error. */
json_t *db_job_stats_json(PGconn *conn);

/* ---- worker side ------------------------------------------------------- */

struct db_job_claim {
	char id[DB_ID_LEN];
	char tenant_id[DB_ID_LEN];
	char cluster_id[DB_ID_LEN];
	char kind[16];
	json_t *params;          /* owned by the claim: db_job_claim_clear() */
	int attempt;             /* 1 on the first claim, +1 on every later one */
	long long lease_token;   /* fencing token for every later write */
	int cancel_requested;
	/* The cluster's connection settings as the claim read them (strings
	 * owned by the claim, NULL = SQL NULL; credentials still sealed);
	 * found = 0 when the cluster row is gone. */
	struct {
		int found;
		char *api_server, *ca_bundle, *tls_server_name, *credentials;
		int insecure_skip_tls_verify;
	} cluster;
};

/* Claim one claimable job for owner (queued with run_after <= now, or
 * running with an expired lease). 1 = claimed (out filled), 0 = nothing to
 * do, -1 = error. */
int db_job_claim(PGconn *conn, const char *owner, int lease_seconds,
		 struct db_job_claim *out, char *err, size_t errlen);
/* The same with per-tenant fairness: jobs of a tenant that already has
 * tenant_cap running jobs leased by the workers of group (owners named
 * "<group>/...": one process) are passed over, so one tenant cannot
 * occupy every worker of a process; so are the jobs of the nfull tenants
 * in full_tenants (ids). One statement. A group's claims that are not yet
 * committed are invisible to each other's count: server/worker.c runs the
 * claim statement in a transaction block under a mutex, passes the tenants
 * its own workers (claims in flight included) hold tenant_cap jobs of as
 * full_tenants, and commits after the mutex is released, so claims do not
 * queue behind each other's WAL flush. tenant_cap 0 or group NULL = no cap
 * (db_job_claim). keep_open: the claim opens a transaction block (BEGIN in
 * the same round trip) and leaves it open when it claimed a job (the
 * caller commits it, see db_job_begin); when nothing was claimed, or on
 * an error, the block is rolled back before returning. */
int db_job_claim_fair(PGconn *conn, const char *owner, const char *group, int lease_seconds,
		      int tenant_cap, const char *const *full_tenants, int nfull, int keep_open,
		      struct db_job_claim *out, char *err, size_t errlen);
void db_job_claim_clear(struct db_job_claim *c);

/* Extend the lease. 1 = still ours (cancel_requested refreshed if non-NULL),
 * 0 = lease lost, -1 = error. */
int db_job_heartbeat(PGconn *conn, const char *job_id, long long token,
		     int lease_seconds, int *cancel_requested);

/* Create the job's phase rows (names in order, seq 1..n) if absent. Returns
 * 1, 0 (lease lost) or -1. */
int db_job_phases_init(PGconn *conn, const char *job_id, long long token,
		       const char *const *names, int n);

/* The states of phases 1..n into states[i] (caller array of n buffers of
 * 16 bytes) and their attempt counts into attempts[i]. 0 / -1. */
int db_job_phase_states(PGconn *conn, const char *job_id, int n,
			char (*states)[16], int *attempts);

/* Mark phase seq running (attempts + 1, started_at set on first start).
 * 1 / 0 (lease lost) / -1. */
int db_job_phase_start(PGconn *conn, const char *job_id, long long token, int seq);

/* End phase seq with state (succeeded|failed|skipped), a message (may be
 * NULL), detail (object or NULL; not stolen) and the API calls made during
 * this attempt (added to the count). 1 / 0 / -1. */
int db_job_phase_end(PGconn *conn, const char *job_id, long long token, int seq,
		     const char *state, const char *message, const json_t *detail,
		     int api_calls);

/* Append an event to the job's log (and NOTIFY DB_JOB_EVENTS_CHANNEL), in
 * one asynchronous commit (see "Durability" above).
 * level debug|info|warn|error; phase may be NULL. Guarded by the token
 * (token 0 = unguarded, for API-side events). 1 / 0 / -1. */
int db_job_event(PGconn *conn, const char *job_id, long long token,
		 const char *level, const char *phase, const char *message);

/* Put the job back to queued, runnable again after delay_ms (a phase retry
 * with backoff). 1 / 0 / -1. */
int db_job_defer(PGconn *conn, const char *job_id, long long token, long delay_ms);

/* Give the lease back at shutdown: the job is claimable again at once.
 * 1 / 0 / -1. */
int db_job_release(PGconn *conn, const char *job_id, long long token);

/* Finish: state succeeded|failed|cancelled, error message (NULL for
 * success), result object (or NULL; not stolen). Only while the token is
 * current. 1 / 0 / -1. */
int db_job_finish(PGconn *conn, const char *job_id, long long token,
		  const char *state, const char *error, const json_t *result);

/* The start of a run of a claimed job, in one transaction: create its phase
 * rows (names in order, seq 1..n) if absent, log message (info; NULL =
 * none) and, when start_first, mark phase 1 running with its first attempt
 * (for a job claimed the first time, whose phases cannot exist yet). *started
 * (may be NULL) = 1 when phase 1 was started. 1 / 0 (lease lost) / -1.
 * Inside the caller's transaction block (the worker's claim, see
 * db_job_claim_fair's keep_open) it commits that block with its write, in
 * the same round trip: claim and begin are one durable commit (-1 when the
 * commit failed: nothing of the block stays, the job is still queued).
 * NOTIFYs (after the commit) only when the job is watched. */
int db_job_begin(PGconn *conn, const char *job_id, long long token, const char *const *names, int n,
		 int start_first, const char *message, int *started);
/* NOTIFY DB_JOB_EVENTS_CHANNEL for the job (after the caller's commit;
 * only when watched, see db_job_watch). */
void db_job_notify(PGconn *conn, const char *job_id);

/* Watch a job's events: a session that LISTENs on DB_JOB_EVENTS_CHANNEL for
 * job_id must call this on that session (before its first read), because
 * job writes NOTIFY DB_JOB_EVENTS_CHANNEL only while some session watches
 * the job: a shared session-level advisory lock (class
 * DB_JOB_WATCH_LOCK_CLASS, key hashtext(job id)) that ends with the session.
 * Most jobs run unwatched and then send no notification at all; a hash
 * collision only costs a spurious one. 0 / -1. */
#define DB_JOB_WATCH_LOCK_CLASS "14014"
int db_job_watch(PGconn *conn, const char *job_id);

/* One transition of a running job, in one transaction (every field is
 * optional; zero/NULL = not this part):
 *  - run the pre statements and log the notes (see below);
 *  - end phase end_seq with end_state, end_message, end_detail (not
 *    stolen) and api_calls added to its count (as db_job_phase_end);
 *  - log event_message at event_level under event_phase;
 *  - extend the lease by lease_seconds (as db_job_heartbeat);
 *  - then one of: finish the job with finish_state, finish_error and result
 *    (as db_job_finish, with its closing event after the one above);
 *    requeue it (requeue = 1) to run again after requeue_ms (as
 *    db_job_defer / db_job_release); or start phase start_seq (as
 *    db_job_phase_start), unless a cancel was requested.
 * *cancel_requested and *started (may be NULL) report the job's cancel flag
 * and whether start_seq was started. 1 / 0 (lease lost: nothing written) /
 * -1. */
struct db_job_note {
	const char *level;
	const char *phase;    /* may be NULL */
	const char *message;
	const char *at;       /* when it was said (timestamptz text); NULL = now */
};
struct db_job_step {
	/* Log lines logged first (a phase's deferred lines), in order. */
	const struct db_job_note *notes;
	int nnotes;
	/* Statements run first in the same transaction (one commit, one round
	 * trip): a phase's own writes that go with its end, each guarded by
	 * the lease itself. Their results are the caller's (dbq_call.res,
	 * freed with dbq_pipeline_clear). */
	struct dbq_call *pre;
	int npre;
	int end_seq;
	const char *end_state;
	const char *end_message;
	const json_t *end_detail;
	int api_calls;
	const char *event_level;
	const char *event_phase;
	const char *event_message;
	int lease_seconds;
	const char *finish_state;
	const char *finish_error;
	const json_t *result;
	int requeue;
	long requeue_ms;
	int start_seq;
};
int db_job_step(PGconn *conn, const char *job_id, long long token, const struct db_job_step *step,
		int *cancel_requested, int *started);

#endif
