/*
 * install/runner: the phase walk of one job (see runner.h for the contract).
 *
 * The walk is deliberately stateless between calls: everything it needs to
 * resume is in job_phases (which phases succeeded, how many attempts each
 * had). So a worker that crashes, a process that is stopped, and a phase
 * retry all take the same path: the job is claimed again (by anyone) and
 * runner_run_job() starts over, skipping what is done.
 */
#include "server/install/runner.h"
#include "server/install/phases.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/releases.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/kube/client.h"
#include "server/log.h"
#include "server/metrics.h"

/* ---- phase tables ------------------------------------------------------- */

/* A preflight job runs the install's preflight: the connection step and
 * every read-only check of the cluster's profile (nothing is written). */
static const struct phase_def preflight_phases[] = {
	{ "preflight", phase_install_preflight },
};

/* params {"connection_only": true}: only reach the API server and record
 * its version and node count (a "test connection" button). */
static const struct phase_def connection_phases[] = {
	{ "preflight", phase_preflight },
};

const struct phase_def *runner_phases(const char *kind, const json_t *params, int *n)
{
	if (!strcmp(kind, "preflight")) {
		*n = 1;
		if (json_is_true(json_object_get(params, "connection_only")))
			return connection_phases;
		return preflight_phases;
	}
	/* An upgrade is the same walk as an install (helm upgrade --install):
	 * every phase is idempotent and the cilium phase writes the next
	 * release revision. */
	if (!strcmp(kind, "install") || !strcmp(kind, "upgrade"))
		return install_phase_table(n);
	const struct phase_def *lc = lifecycle_phase_table(kind, n);
	if (lc)
		return lc;
	*n = 0;
	return NULL;
}

/* ---- helpers for phases --------------------------------------------------- */

int runner_should_abort(const struct runner_ctx *ctx)
{
	return ctx->app->stopping || atomic_load(&ctx->flags->lease_lost);
}

static void flush_notes(struct runner_ctx *ctx);

int runner_lend_conn(struct runner_ctx *ctx, int publish_notes)
{
	if (!ctx->pool || !ctx->conn)
		return 0;
	if (publish_notes)
		flush_notes(ctx);
	db_release(ctx->pool, ctx->conn);
	ctx->conn = NULL;
	return 1;
}

void runner_take_conn(struct runner_ctx *ctx)
{
	/* The phase needs one again whatever happened; wait for it. */
	for (int tries = 1; !(ctx->conn = db_acquire(ctx->pool, 1000)); tries++)
		if (tries % 10 == 0)
			log_msg(LOG_WARN, "job %s: still waiting for a database connection", ctx->job->id);
}

int runner_sleep(struct runner_ctx *ctx, long ms)
{
	/* A pooled runner does not hold a database connection while it waits
	 * (a rollout wait must not pin one per job in flight): it goes back to
	 * the pool and another is taken afterwards. Waiting never spins: 50 ms
	 * sleeps, to notice an abort. */
	if (ms > 0)
		flush_notes(ctx);  /* visible while the phase waits */
	int lend = ms >= RUNNER_LEND_MS && runner_lend_conn(ctx, 0);
	while (ms > 0) {
		if (runner_should_abort(ctx))
			break;
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { step / 1000, (step % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
	if (lend)
		runner_take_conn(ctx);
	return runner_should_abort(ctx);
}

/* ---- what waits for the phase's end record ------------------------------ */

#define RUNNER_MAX_NOTES 16

struct runner_pending {
	int nnotes;
	char *level[RUNNER_MAX_NOTES], *phase[RUNNER_MAX_NOTES], *message[RUNNER_MAX_NOTES];
	char at[RUNNER_MAX_NOTES][40];
	struct db_job_note notes[RUNNER_MAX_NOTES];  /* views for db_job_step */
	int nwrites;
	struct dbq_call writes[RUNNER_MAX_DEFERRED];
	int nparams[RUNNER_MAX_DEFERRED];
	char **params[RUNNER_MAX_DEFERRED];
};

static struct runner_pending *pending(struct runner_ctx *ctx)
{
	if (!ctx->pending)
		ctx->pending = xcalloc(1, sizeof(*ctx->pending));
	return ctx->pending;
}

static void clear_notes(struct runner_pending *p)
{
	for (int i = 0; i < p->nnotes; i++) {
		free(p->level[i]);
		free(p->phase[i]);
		free(p->message[i]);
	}
	p->nnotes = 0;
}

static void clear_writes(struct runner_pending *p)
{
	for (int i = 0; i < p->nwrites; i++) {
		for (int k = 0; k < p->nparams[i]; k++)
			free(p->params[i][k]);
		free(p->params[i]);
		free((char *)p->writes[i].sql);
		PQclear(p->writes[i].res);
	}
	p->nwrites = 0;
}

static void pending_free(struct runner_pending *p)
{
	if (!p)
		return;
	clear_notes(p);
	clear_writes(p);
	free(p);
}

void runner_drop_pending(struct runner_ctx *ctx)
{
	pending_free(ctx->pending);
	ctx->pending = NULL;
}

/* Write the pending notes now, each as db_job_event does (asynchronous). */
static void flush_notes(struct runner_ctx *ctx)
{
	struct runner_pending *p = ctx->pending;
	if (!p || !p->nnotes || !ctx->conn)
		return;
	for (int i = 0; i < p->nnotes; i++)
		if (db_job_event(ctx->conn, ctx->job->id, ctx->job->lease_token, p->level[i], p->phase[i],
				 p->message[i]) == 0)
			atomic_store(&ctx->flags->lease_lost, 1);
	clear_notes(p);
}

void runner_note(struct runner_ctx *ctx, const char *level, const char *fmt, ...)
{
	struct runner_pending *p = pending(ctx);
	if (p->nnotes == RUNNER_MAX_NOTES)
		flush_notes(ctx);
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	int i = p->nnotes++;
	p->level[i] = xstrdup(level);
	p->phase[i] = ctx->phase ? xstrdup(ctx->phase) : NULL;
	p->message[i] = xstrdup(buf_cstr(&b));
	buf_free(&b);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char day[24];
	strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(p->at[i], sizeof p->at[i], "%.19s.%06d+00", day, (int)(ts.tv_nsec / 1000 % 1000000));
}

void runner_defer_write(struct runner_ctx *ctx, const char *sql, int n, const char *const *params)
{
	struct runner_pending *p = pending(ctx);
	if (p->nwrites == RUNNER_MAX_DEFERRED) {
		PGresult *r = PQexecParams(ctx->conn, sql, n, NULL, params, NULL, NULL, 0);
		PQclear(r);
		return;
	}
	int i = p->nwrites++;
	p->nparams[i] = n;
	p->params[i] = xcalloc((size_t)(n > 0 ? n : 1), sizeof(char *));
	for (int k = 0; k < n; k++)
		p->params[i][k] = params[k] ? xstrdup(params[k]) : NULL;
	p->writes[i] = (struct dbq_call){ xstrdup(sql), n, (const char *const *)p->params[i], NULL };
}

void runner_event(struct runner_ctx *ctx, const char *level, const char *fmt, ...)
{
	flush_notes(ctx);  /* the lines said before this one */
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (db_job_event(ctx->conn, ctx->job->id, ctx->job->lease_token, level, ctx->phase,
			 buf_cstr(&b)) == 0)
		atomic_store(&ctx->flags->lease_lost, 1);
	buf_free(&b);
}

long runner_backoff_ms(long base_ms, int failures)
{
	if (base_ms < 1)
		base_ms = 1;
	long d = base_ms;
	for (int i = 1; i < failures && d < 300000; i++)
		d *= 2;
	if (d > 300000)
		d = 300000;
	unsigned r = 0;
	random_bytes(&r, sizeof(r));
	/* +-50% jitter: d/2 .. d*3/2 */
	return d / 2 + (long)(r % (unsigned long)(d + 1));
}

struct kube_client *runner_kube(struct runner_ctx *ctx)
{
	if (ctx->kube)
		return ctx->kube;
	struct kube_client *kc = NULL;
	char *plain = NULL;
	size_t len = 0;
	json_t *cred = NULL;
	PGresult *r = NULL;
	/* The connection settings: as the claim read them (db_job_claim), or
	 * read now for a claim that did not carry them. */
	const char *server, *ca, *sni, *sealed;
	int insecure;
	if (ctx->job->cluster.found) {
		server = ctx->job->cluster.api_server;
		ca = ctx->job->cluster.ca_bundle;
		sni = ctx->job->cluster.tls_server_name;
		sealed = ctx->job->cluster.credentials;
		insecure = ctx->job->cluster.insecure_skip_tls_verify;
	} else {
		const char *params[2] = { ctx->job->cluster_id, ctx->job->tenant_id };
		r = PQexecParams(ctx->conn,
			"SELECT api_server, ca_bundle, tls_server_name, credentials, insecure_skip_tls_verify "
			"FROM clusters WHERE id = $1::uuid AND tenant_id = $2::uuid",
			2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			snprintf(ctx->message, sizeof(ctx->message), "the cluster record could not be read");
			goto out;
		}
		server = PQgetvalue(r, 0, 0);
		ca = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
		sni = PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2);
		sealed = PQgetvalue(r, 0, 3);
		insecure = PQgetvalue(r, 0, 4)[0] == 't';
	}
	char err[256];
	plain = sealed ? crypto_open(ctx->app->keys, sealed, &len, err, sizeof(err)) : NULL;
	if (!plain) {
		snprintf(ctx->message, sizeof(ctx->message),
			 "the cluster's stored credentials cannot be decrypted: %s", sealed ? err : "none stored");
		goto out;
	}
	cred = json_loadb(plain, len, 0, NULL);
	if (!json_is_object(cred)) {
		snprintf(ctx->message, sizeof(ctx->message), "the cluster's stored credentials are malformed");
		goto out;
	}
	const char *cert = json_string_value(json_object_get(cred, "client_cert"));
	if (!cert)
		cert = json_string_value(json_object_get(cred, "client_certificate"));
	struct kube_client_config cfg = {
		.server = server,
		.ca_pem = ca,
		.tls_server_name = sni,
		.token = json_string_value(json_object_get(cred, "token")),
		.client_cert_pem = cert,
		.client_key_pem = json_string_value(json_object_get(cred, "client_key")),
		.timeout_ms = 30000,
		.connect_timeout_ms = 10000,
		.insecure_skip_tls_verify = insecure,
		.cache_key = ctx->job->cluster_id,
	};
	kc = kube_client_new(&cfg, err, sizeof(err));
	if (!kc)
		snprintf(ctx->message, sizeof(ctx->message), "the cluster's connection settings are unusable: %s", err);
out:
	PQclear(r);
	json_decref(cred);
	if (plain) {
		memset(plain, 0, len);
		free(plain);
	}
	ctx->kube = kc;
	return kc;
}

/* ---- the walk -------------------------------------------------------------- */

/* Kinds whose success changes the cluster or its release (the cluster's
 * last_success_at); preflight and check only read. */
static int kind_writes(const struct db_job_claim *job)
{
	return strcmp(job->kind, "preflight") && strcmp(job->kind, "check") &&
	       !json_is_true(json_object_get(job->params, "dry_run"));
}

/* Record one transition (db_job_step); lease lost = the flag set. The
 * result goes with a finish. 1 / 0 / -1 as db_job_step. */
static int step(struct runner_ctx *ctx, struct db_job_step *st, int *cancel, int *started)
{
	if (st->finish_state)
		st->result = ctx->result;
	/* What the phase left for its end record goes with this transition. */
	struct runner_pending *p = ctx->pending;
	if (p) {
		for (int i = 0; i < p->nnotes; i++)
			p->notes[i] = (struct db_job_note){ p->level[i], p->phase[i], p->message[i], p->at[i] };
		st->notes = p->notes;
		st->nnotes = p->nnotes;
		st->pre = p->writes;
		st->npre = p->nwrites;
	}
	int rc = db_job_step(ctx->conn, ctx->job->id, ctx->job->lease_token, st, cancel, started);
	if (p) {
		for (int i = 0; rc >= 0 && i < p->nwrites; i++)
			if (PQresultStatus(p->writes[i].res) != PGRES_TUPLES_OK &&
			    PQresultStatus(p->writes[i].res) != PGRES_COMMAND_OK)
				log_msg(LOG_WARN, "job %s: a phase's deferred write failed: %s", ctx->job->id,
					p->writes[i].res ? PQresultErrorMessage(p->writes[i].res) : "not run");
		clear_notes(p);
		clear_writes(p);
	}
	if (rc == 0)
		atomic_store(&ctx->flags->lease_lost, 1);
	return rc;
}

/* Finish the job, with st's other parts (a phase's end, its event) in the
 * same transaction. */
static int finish_step(struct runner_ctx *ctx, struct db_job_step *st, const char *state, const char *error)
{
	if (!strcmp(state, "succeeded") && kind_writes(ctx->job)) {
		char err[256] = "";
		if (db_release_note_success(ctx->conn, ctx->job, err, sizeof err) < 0)
			log_msg(LOG_WARN, "job %s: could not record last_success_at: %s", ctx->job->id, err);
	}
	st->finish_state = state;
	st->finish_error = error;
	int rc = step(ctx, st, NULL, NULL);
	struct log_ctx lc = { NULL, ctx->job->id, ctx->job->tenant_id };
	if (rc == 1)
		log_ctx_msg(state[0] == 's' ? LOG_INFO : LOG_WARN, &lc, "job %s %s%s%s", ctx->job->kind,
			    state, error ? ": " : "", error ? error : "");
	else if (rc == 0)
		log_ctx_msg(LOG_WARN, &lc, "job lease lost before it could be marked %s", state);
	if (rc == 1)
		metrics_job_finished(ctx->app->metrics, ctx->job->kind, state);
	return rc < 0 ? -1 : 0;
}

static int finish(struct runner_ctx *ctx, const char *state, const char *error)
{
	struct db_job_step st = { 0 };
	return finish_step(ctx, &st, state, error);
}

/* When the worker's claim is still open on ctx->conn (flags->claim_open),
 * commit it after the runner's first write and then NOTIFY (a job of an
 * unknown kind: its finish; db_job_begin commits the claim itself). 0, or
 * -1 when the commit failed (the claim is then undone: the job stays
 * queued). */
static int commit_claim(struct runner_ctx *ctx)
{
	if (PQtransactionStatus(ctx->conn) != PQTRANS_INTRANS)
		return 0;
	PGresult *r = PQexec(ctx->conn, "COMMIT");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK && PQtransactionStatus(ctx->conn) == PQTRANS_IDLE;
	PQclear(r);
	if (!ok) {
		log_msg(LOG_WARN, "job %s: committing the claim failed: %s", ctx->job->id, PQerrorMessage(ctx->conn));
		return -1;
	}
	atomic_store(&ctx->flags->claim_open, 0);
	db_job_notify(ctx->conn, ctx->job->id);
	return 0;
}

static double mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Metrics of one phase run: its outcome and wall time, and the cluster API
 * requests it made by class (the client's counts minus those before it). */
static void observe_phase(struct runner_ctx *ctx, const long before[KUBE_OUT_N], double t0,
			  const char *outcome)
{
	metrics_phase_done(ctx->app->metrics, ctx->phase, outcome, mono_seconds() - t0);
	if (!ctx->kube)
		return;
	long now[KUBE_OUT_N];
	kube_client_outcomes(ctx->kube, now);
	for (int i = 0; i < KUBE_OUT_N; i++)
		now[i] -= before[i];
	metrics_cluster_api(ctx->app->metrics, ctx->phase, now, KUBE_OUT_N);
}

/* The class of a phase retry for ferry_job_retries_total: the last failed
 * cluster API request of this phase run, when it had one. */
static const char *retry_class(const struct runner_ctx *ctx, const long before[KUBE_OUT_N])
{
	if (!ctx->kube)
		return "other";
	long now[KUBE_OUT_N];
	kube_client_outcomes(ctx->kube, now);
	long failed = 0;
	for (int i = KUBE_OUT_4XX; i < KUBE_OUT_N; i++)
		failed += now[i] - before[i];
	if (!failed)
		return "other";
	switch (kube_client_last_failure(ctx->kube)) {
	case KUBE_OUT_429: return "throttled";
	case KUBE_OUT_5XX: return "server_error";
	case KUBE_OUT_TRANSPORT: return "network";
	case KUBE_OUT_TIMEOUT: return "timeout";
	default: return "other";
	}
}

/* The job walk; pool non-NULL lets runner_sleep() lend the connection out
 * (see runner_run_job_pooled), and *final gets the connection held at the
 * end.
 *
 * Commits: every transition is one db_job_step() transaction that carries
 * everything that happens at that point (a phase's end, its event, the next
 * phase's start with the lease extended, or the job's finish / requeue),
 * and a fresh job's first phase starts in db_job_begin(), committed with
 * the worker's claim. A one-phase job thus makes two synchronous commits of
 * its own: claim + begin, end + finish. */
static int run_job(struct app *app, PGconn *conn, const struct db_job_claim *job,
		   struct runner_flags *flags, struct db_pool *pool, PGconn **final)
{
	struct log_ctx lc = { NULL, job->id, job->tenant_id };
	struct runner_ctx ctx = { .app = app, .conn = conn, .job = job, .flags = flags, .pool = pool };
	int rc = 0, n = 0;
	char (*states)[16] = NULL;
	int *attempts = NULL;
	const char **names = NULL;
	const struct phase_def *phases = runner_phases(job->kind, job->params, &n);
	ctx.result = json_object();
	if (!phases) {
		rc = finish(&ctx, "failed", "unknown job kind");
		if (commit_claim(&ctx) < 0)
			rc = -1;
		goto out;
	}
	names = xcalloc((size_t)n, sizeof(*names));
	for (int i = 0; i < n; i++)
		names[i] = phases[i].name;
	states = xcalloc((size_t)n, sizeof(*states));
	attempts = xcalloc((size_t)n, sizeof(*attempts));
	for (int i = 0; i < n; i++)
		snprintf(states[i], sizeof(states[i]), "pending");
	/* A job claimed the first time has no phase rows and no result yet:
	 * its rows are created with phase 1 already running (one commit). */
	int fresh = job->attempt == 1;
	int started_seq = 0;  /* the phase db_job_begin / db_job_step started */
	{
		char msg[300];
		if (fresh)
			snprintf(msg, sizeof msg, "job %s started by %s", job->kind, app->cfg.node_id);
		else
			snprintf(msg, sizeof msg, "attempt %d: resumed by %s", job->attempt, app->cfg.node_id);
		int started = 0;
		int ok = db_job_begin(ctx.conn, job->id, job->lease_token, names, n,
				      fresh && !job->cancel_requested && !app->stopping, msg, &started);
		if (ok <= 0) {
			rc = ok < 0 ? -1 : 0;
			goto out;
		}
		/* db_job_begin committed the claim with its write. */
		atomic_store(&flags->claim_open, 0);
		if (started) {
			started_seq = 1;
			attempts[0] = 0;  /* this attempt is attempts[0] + 1 */
		}
	}
	if (!fresh) {
		if (db_job_phase_states(ctx.conn, job->id, n, states, attempts) < 0) {
			rc = -1;
			goto out;
		}
		/* The result accumulates across attempts: start from what is stored. */
		const char *p[1] = { job->id };
		PGresult *r = PQexecParams(ctx.conn, "SELECT result::text FROM jobs WHERE id = $1::uuid AND result IS NOT NULL",
					   1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			json_t *old = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
			if (json_is_object(old))
				json_object_update(ctx.result, old);
			json_decref(old);
		}
		PQclear(r);
	}
	/* A phase still "running" in a job claimed again: its worker vanished
	 * mid-phase (a retry, a shutdown and a cancel all end the phase
	 * first), and this claim took the job over after its lease expired. */
	for (int i = 0; job->attempt > 1 && i < n; i++)
		if (!strcmp(states[i], "running")) {
			metrics_lease_takeover(app->metrics);
			break;
		}
	ctx.phase = NULL;

	for (int i = 0; i < n; i++) {
		if (!strcmp(states[i], "succeeded") || !strcmp(states[i], "skipped"))
			continue;
		if (started_seq != i + 1) {
			/* Phase boundary: cancellation, shutdown, lost lease; then
			 * the phase starts with the lease extended (one commit). */
			int cancel = job->cancel_requested || atomic_load(&flags->cancel_requested);
			if (atomic_load(&flags->lease_lost)) {
				log_ctx_msg(LOG_WARN, &lc, "lease lost; leaving the job to its new owner");
				goto out;
			}
			if (!cancel && app->stopping) {
				struct db_job_step st = { .requeue = 1, .requeue_ms = 0 };
				step(&ctx, &st, NULL, NULL);
				log_ctx_msg(LOG_INFO, &lc, "shutting down: released the job before phase %s", phases[i].name);
				goto out;
			}
			if (!cancel) {
				struct db_job_step st = { .lease_seconds = app->cfg.lease_seconds, .start_seq = i + 1 };
				int started = 0;
				int ok = step(&ctx, &st, &cancel, &started);
				if (ok <= 0) {
					if (ok == 0)
						log_ctx_msg(LOG_WARN, &lc, "lease lost; leaving the job to its new owner");
					rc = ok < 0 ? -1 : 0;
					goto out;
				}
				if (!cancel && !started) {
					atomic_store(&flags->lease_lost, 1);  /* the phase row is gone */
					goto out;
				}
			}
			if (cancel) {
				ctx.phase = NULL;
				rc = finish(&ctx, "cancelled", "cancelled by request");
				goto out;
			}
		}
		started_seq = 0;

		ctx.phase = phases[i].name;
		ctx.phase_attempt = attempts[i] + 1;
		ctx.message[0] = 0;
		ctx.retry_after_ms = 0;
		json_decref(ctx.detail);
		ctx.detail = json_object();
		long calls_before = ctx.kube ? kube_client_requests(ctx.kube) : 0;
		long api_before[KUBE_OUT_N] = { 0 };
		if (ctx.kube)
			kube_client_outcomes(ctx.kube, api_before);
		double t0 = mono_seconds();
		enum phase_rc prc = phases[i].run(&ctx);
		long calls = (ctx.kube ? kube_client_requests(ctx.kube) : 0) - calls_before;
		observe_phase(&ctx, api_before, t0,
			      prc == PHASE_OK ? "succeeded" : prc == PHASE_RETRY ? "retry"
			      : prc == PHASE_FAIL ? "failed" : "aborted");
		if (prc == PHASE_ABORT || atomic_load(&flags->lease_lost)) {
			/* Shutdown or takeover mid-phase: the phase re-runs later. */
			if (!atomic_load(&flags->lease_lost) && app->stopping) {
				struct db_job_step st = { .end_seq = i + 1, .end_state = "pending",
							  .end_message = "interrupted by shutdown",
							  .api_calls = (int)calls, .requeue = 1, .requeue_ms = 0 };
				step(&ctx, &st, NULL, NULL);
				log_ctx_msg(LOG_INFO, &lc, "shutting down: released the job during phase %s", ctx.phase);
			}
			goto out;
		}
		struct db_job_step st = {
			.end_seq = i + 1,
			.end_state = prc == PHASE_OK ? "succeeded" : "failed",
			.end_message = ctx.message[0] ? ctx.message : NULL,
			.end_detail = ctx.detail,
			.api_calls = (int)calls,
			.event_phase = ctx.phase,
		};
		char event[1200];
		if (prc == PHASE_OK) {
			snprintf(event, sizeof event, "phase %s succeeded%s%s", ctx.phase,
				 ctx.message[0] ? ": " : "", ctx.message);
			st.event_level = "info";
			st.event_message = event;
			int next = i + 1;
			while (next < n && (!strcmp(states[next], "succeeded") || !strcmp(states[next], "skipped")))
				next++;
			if (next == n) {
				ctx.phase = NULL;
				rc = finish_step(&ctx, &st, "succeeded", NULL);
				goto out;
			}
			/* The next phase starts in the same commit unless the
			 * process stops or a cancel is known (the loop's boundary
			 * handles those). */
			int cancel = job->cancel_requested || atomic_load(&flags->cancel_requested);
			if (!cancel && !app->stopping) {
				st.lease_seconds = app->cfg.lease_seconds;
				st.start_seq = next + 1;
			}
			int started = 0;
			int ok = step(&ctx, &st, &cancel, &started);
			if (ok <= 0) {
				rc = ok < 0 ? -1 : 0;
				goto out;
			}
			if (cancel)
				atomic_store(&flags->cancel_requested, 1);
			if (started)
				started_seq = next + 1;
			i = next - 1;
			continue;
		}
		if (atomic_load(&flags->cancel_requested)) {
			/* A phase that stopped for a cancel (a chart render does). */
			ctx.phase = NULL;
			rc = finish_step(&ctx, &st, "cancelled", "cancelled by request");
			goto out;
		}
		char error[1400];
		snprintf(error, sizeof(error), "phase %s: %s", ctx.phase,
			 ctx.message[0] ? ctx.message : "failed");
		int max = app->cfg.max_phase_attempts > 0 ? app->cfg.max_phase_attempts : 5;
		/* on_failure: rollback (Flux's upgrade remediation): a phase past
		 * preflight that failed for good is tried params.retries more
		 * times, then the release is rolled back and the job fails with
		 * both outcomes. */
		int remediate = lifecycle_wants_remediation(job) && strcmp(ctx.phase, "preflight") &&
				(prc == PHASE_FAIL || ctx.phase_attempt >= max);
		if (remediate && ctx.phase_attempt <= lifecycle_retries(job)) {
			long delay = runner_backoff_ms(app->cfg.retry_base_ms > 0 ? app->cfg.retry_base_ms : 1000, 1);
			snprintf(event, sizeof event, "%s; on_failure: retry %d of %d in %ld ms", ctx.message,
				 ctx.phase_attempt, lifecycle_retries(job), delay);
			st.event_level = "warn";
			st.event_message = event;
			st.requeue = 1;
			st.requeue_ms = delay;
			metrics_job_retry(app->metrics, retry_class(&ctx, api_before));
			if (step(&ctx, &st, NULL, NULL) < 0)
				rc = -1;
			goto out;
		}
		if (remediate) {
			char outcome[600];
			st.event_level = "error";
			st.event_message = ctx.message[0] ? ctx.message : "failed";
			if (step(&ctx, &st, NULL, NULL) <= 0) {
				rc = -1;
				goto out;
			}
			lifecycle_remediate(&ctx, outcome, sizeof outcome);
			size_t u = strlen(error);
			snprintf(error + u, sizeof(error) - u, "; on_failure: %s", outcome);
			ctx.phase = NULL;
			rc = finish(&ctx, "failed", error);
			goto out;
		}
		if (prc == PHASE_RETRY && ctx.phase_attempt < max) {
			long delay = runner_backoff_ms(app->cfg.retry_base_ms > 0 ? app->cfg.retry_base_ms : 1000,
						       ctx.phase_attempt);
			if (ctx.retry_after_ms > delay)
				delay = ctx.retry_after_ms;
			snprintf(event, sizeof event, "attempt %d of %d failed: %s; retrying in %ld ms",
				 ctx.phase_attempt, max, ctx.message, delay);
			st.event_level = "warn";
			st.event_message = event;
			st.requeue = 1;
			st.requeue_ms = delay;
			metrics_job_retry(app->metrics, retry_class(&ctx, api_before));
			if (step(&ctx, &st, NULL, NULL) < 0)
				rc = -1;
			goto out;
		}
		if (prc == PHASE_RETRY)
			snprintf(event, sizeof event, "attempt %d of %d failed: %s; giving up",
				 ctx.phase_attempt, max, ctx.message);
		else
			snprintf(event, sizeof event, "%s", ctx.message[0] ? ctx.message : "failed");
		st.event_level = "error";
		st.event_message = event;
		ctx.phase = NULL;
		rc = finish_step(&ctx, &st, "failed", error);
		goto out;
	}
	ctx.phase = NULL;
	rc = finish(&ctx, "succeeded", NULL);
out:
	runner_drop_pending(&ctx);
	kube_client_free(ctx.kube);
	json_decref(ctx.detail);
	json_decref(ctx.result);
	free(states);
	free(attempts);
	free(names);
	if (final)
		*final = ctx.conn;
	return rc;
}

int runner_run_job(struct app *app, PGconn *conn, const struct db_job_claim *job,
		   struct runner_flags *flags)
{
	return run_job(app, conn, job, flags, NULL, NULL);
}

int runner_run_job_pooled(struct app *app, struct db_pool *pool, PGconn **conn,
			  const struct db_job_claim *job, struct runner_flags *flags)
{
	return run_job(app, *conn, job, flags, pool, conn);
}
