/*
 * install/runner: runs one claimed job by walking its table of phases.
 *
 * The runner is handed a job a worker claimed (db/jobs.h) and a database
 * connection. It creates the job's phase rows, then for each phase in order
 * skips the ones already succeeded (a job taken over after its worker died
 * resumes at the first phase not yet succeeded), checks at every phase
 * boundary whether the job was cancelled (finish "cancelled") or the process
 * is stopping (release the lease so another worker resumes it at once), runs
 * the phase and records its state, message, detail, timing and the number of
 * Kubernetes API calls it made.
 *
 * A phase that fails with PHASE_RETRY is retried with exponential backoff
 * and jitter (the job goes back to "queued" with run_after in the future, so
 * no worker sits idle waiting) until max_phase_attempts attempts, then the
 * job fails; PHASE_FAIL fails the job at once. Every database write uses the
 * lease token; once a write reports the lease lost, the runner stops touching
 * the job.
 *
 * Phases are functions taking a struct runner_ctx. They must be idempotent:
 * running one again after a crash must be safe.
 *
 * Memory: phase tables are static; ctx->detail and ctx->result belong to
 * the runner (phases add to them); ctx->kube (runner_kube()) belongs to the
 * ctx and is freed when runner_run_job() returns.
 *
 * Thread-safety: runner_run_job() runs on the calling worker thread; the
 * flags it reads (stop, lease_lost, cancel_requested) are set by other
 * threads (heartbeat, signal handler) and read atomically.
 */
#ifndef FERRY_INSTALL_RUNNER_H
#define FERRY_INSTALL_RUNNER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stddef.h>

#include "db/jobs.h"

struct app;
struct db_pool;
struct kube_client;
struct runner_pending;

/* Shared between the runner and the worker's heartbeat thread. */
struct runner_flags {
	atomic_int lease_lost;        /* heartbeat saw another token */
	atomic_int cancel_requested;  /* heartbeat saw cancel_requested */
	atomic_int claim_open;        /* the claim is not committed yet: the
				       * runner commits it with its first write
				       * (the heartbeat leaves the job alone) */
};

enum phase_rc {
	PHASE_OK = 0,     /* succeeded */
	PHASE_RETRY = 1,  /* transient failure: retry later with backoff */
	PHASE_FAIL = 2,   /* permanent failure: the job fails now */
	PHASE_ABORT = 3   /* stop requested or lease lost mid-phase: record nothing */
};

struct runner_ctx {
	struct app *app;
	PGconn *conn;
	const struct db_job_claim *job;
	struct runner_flags *flags;
	const char *phase;            /* name of the running phase */
	int phase_attempt;            /* 1 on the first attempt of this phase */
	/* Filled by the phase: */
	char message[512];            /* one-line summary (or the error) */
	json_t *detail;               /* object, created empty by the runner */
	json_t *result;               /* the job's result object, shared by phases */
	long retry_after_ms;          /* with PHASE_RETRY: wait at least this long
				       * (a 429/503 Retry-After), 0 = backoff only */
	/* The cluster's API client, created by runner_kube() on first use. */
	struct kube_client *kube;
	/* Set by runner_run_job_pooled(): conn came from this pool and
	 * runner_sleep() gives it back while waiting (conn may change). */
	struct db_pool *pool;
	/* Log lines and writes that wait for the phase's end record
	 * (runner_note, runner_defer_write); the runner's. */
	struct runner_pending *pending;
};

typedef enum phase_rc (*phase_fn)(struct runner_ctx *ctx);

struct phase_def {
	const char *name;
	phase_fn run;
};

/* The phases of a job of this kind (with these params); NULL + *n = 0 for
 * an unknown kind. The table is static. */
const struct phase_def *runner_phases(const char *kind, const json_t *params, int *n);

/* Run (a step of) the job until it finishes, is deferred for a retry, is
 * released at shutdown, or its lease is lost. 0 normally, -1 on a database
 * error (the lease then simply expires and the job is taken over). */
int runner_run_job(struct app *app, PGconn *conn, const struct db_job_claim *job,
		   struct runner_flags *flags);
/* The same for a connection *conn taken from pool (the workers'): waits of
 * RUNNER_LEND_MS and more give it back to the pool and take one again, so a
 * job waiting on a rollout holds no database connection. On return *conn is
 * the connection to release to pool (possibly not the one given). *conn may
 * be inside a transaction block that holds the claim (flags->claim_open
 * set): the runner's first write (db_job_begin) joins it and commits both
 * in one round trip; a job the runner could not begin is left with the
 * block open or failed (the caller rolls it back: the job stays queued). */
#define RUNNER_LEND_MS 100
int runner_run_job_pooled(struct app *app, struct db_pool *pool, PGconn **conn,
			  const struct db_job_claim *job, struct runner_flags *flags);

/* For phases: */
/* The cluster's Kubernetes client (stored credentials decrypted with the
 * master keyring); NULL with a message in ctx->message when the cluster
 * record cannot be used. */
struct kube_client *runner_kube(struct runner_ctx *ctx);
/* 1 when the phase should give up now (process stopping, lease lost). */
int runner_should_abort(const struct runner_ctx *ctx);
/* Sleep up to ms, waking early (returning 1) when the phase should abort. */
int runner_sleep(struct runner_ctx *ctx, long ms);
/* A pooled runner's connection lent out for a wait and taken back (any
 * connection of the pool; waits as long as it takes): lend returns 1 when
 * it gave ctx->conn back (ctx->conn is then NULL until runner_take_conn),
 * 0 when there is nothing to lend (not pooled). publish_notes = 1 first
 * commits the phase's pending log lines (runner_note) so they are visible
 * during a long wait; 0 keeps them for the phase's end record (a short
 * wait, or the caller already published them). */
int runner_lend_conn(struct runner_ctx *ctx, int publish_notes);
void runner_take_conn(struct runner_ctx *ctx);
/* Append to the job's event log under the current phase. */
void runner_event(struct runner_ctx *ctx, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A log line like runner_event's that is written with the phase's end
 * record (one transaction, no round trip of its own), or before the next
 * runner_event, sleep or lent connection, whichever comes first: for the
 * lines of a short phase. With the end record it keeps the time it was
 * said; written earlier, the time it was written. */
void runner_note(struct runner_ctx *ctx, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A write of the phase's own (sql with n text parameters, copied; guarded
 * by the job's lease itself) that commits with the phase's end record, in
 * the same transaction; dropped when the phase ends without one (its lease
 * lost, the process stopping): the phase re-runs and writes it again. At
 * most RUNNER_MAX_DEFERRED per phase; more are written at once. */
#define RUNNER_MAX_DEFERRED 4
void runner_defer_write(struct runner_ctx *ctx, const char *sql, int n, const char *const *params);
/* Drops (frees, writes nothing) the notes and deferred writes a ctx still
 * holds: for a caller that drives phases itself rather than through
 * runner_run_job, which does this at the job's end. */
void runner_drop_pending(struct runner_ctx *ctx);

/* The retry delay before attempt (attempt >= 1 failures so far): base *
 * 2^(attempt-1), capped at 5 minutes, with +-50% jitter. */
long runner_backoff_ms(long base_ms, int failures);

/* Phase implementations (one file each). */
enum phase_rc phase_preflight(struct runner_ctx *ctx);

#endif
