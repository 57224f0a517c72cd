/*
 * worker: worker threads, a LISTEN thread and a heartbeat thread.
 *
 * Coordination inside the process is one mutex + condition variable: the
 * listener bumps a "wakeups" counter and broadcasts; an idle worker waits on
 * the condition with a one-second timeout, then tries to claim. Jobs in
 * flight are registered in a small table (one slot per worker) that the
 * heartbeat thread walks; it owns its own PGconn so a slow phase never
 * delays heartbeats. All cross-process coordination is in PostgreSQL
 * (db/jobs.c).
 */
#include "server/worker.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "db/jobs.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/campaign.h"
#include "server/common/buf.h"
#include "server/install/runner.h"
#include "server/log.h"
#include "server/metrics.h"

/* At most this many jobs work (hold a database connection) at once; the
 * others wait for one, or are waiting on their cluster and hold none. */
#define WORKER_MAX_CONNS 32

struct worker_slot {
	struct worker_pool *wp;
	pthread_t thread;
	int index;
	/* The job in flight (guarded by wp->mu): holds = 1 from the claim
	 * statement to the end of the run (the per-tenant count), busy = 1
	 * once the claim is committed (the heartbeat's cue). */
	int holds;
	char tenant_id[DB_ID_LEN];
	int busy;
	char job_id[DB_ID_LEN];
	long long token;
	struct runner_flags flags;
};

struct worker_pool {
	struct app *app;
	int n;
	struct worker_slot *slots;
	pthread_t listener, heartbeat;
	int listener_started, heartbeat_started;
	struct campaign_advancer *campaigns;  /* fleet campaigns (server/campaign.h) */
	/* The workers' own connections (min(workers, WORKER_MAX_CONNS)): a job
	 * holds one only while it works, and the API's pool (app->db) is never
	 * starved by jobs. */
	struct db_pool *db;
	pthread_mutex_t mu;
	pthread_mutex_t claim_mu;  /* one claim statement at a time: the
				    * per-tenant cap then counts every claim
				    * before it (committed or not) */
	pthread_cond_t cv;
	unsigned long wakeups;
	atomic_int busy;
};

static void wake_all(struct worker_pool *wp)
{
	pthread_mutex_lock(&wp->mu);
	wp->wakeups++;
	pthread_cond_broadcast(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
}

/* Wait until woken or timeout_ms elapse (or stopping). */
static void wait_for_work(struct worker_pool *wp, unsigned long seen, long timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&wp->mu);
	while (wp->wakeups == seen && !wp->app->stopping) {
		if (pthread_cond_timedwait(&wp->cv, &wp->mu, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&wp->mu);
}

/* The claim's transaction block is left open for the runner (see
 * runner_run_job_pooled); end a block the runner did not commit. */
static void end_claim(PGconn *conn)
{
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(conn, "ROLLBACK");
		PQclear(r);
	}
}

/* Claim one job for slot: under claim_mu, the tenants this process's
 * workers already hold cap jobs of (claims not yet committed included:
 * slot->holds) are passed over, and the claim statement runs in a
 * transaction block that is committed after the mutex is released (by the
 * runner, with its first write), so concurrent claims share WAL flushes
 * instead of queueing behind each other's. 1 (the block is open) / 0 / -1
 * as db_job_claim_fair. */
static int claim(struct worker_slot *slot, PGconn *conn, const char *owner, struct db_job_claim *job,
		 char *err, size_t errlen)
{
	struct worker_pool *wp = slot->wp;
	struct app *app = wp->app;
	int cap = app->cfg.tenant_max_running_jobs;
	const char **full = xcalloc((size_t)wp->n + 1, sizeof(*full));
	int nfull = 0;
	pthread_mutex_lock(&wp->claim_mu);
	pthread_mutex_lock(&wp->mu);
	for (int i = 0; cap > 0 && i < wp->n; i++) {
		if (!wp->slots[i].holds)
			continue;
		int count = 0, seen = 0;
		for (int k = 0; k < wp->n; k++) {
			if (!wp->slots[k].holds || strcmp(wp->slots[k].tenant_id, wp->slots[i].tenant_id))
				continue;
			count++;
			seen |= k < i;  /* counted at an earlier slot already */
		}
		if (count >= cap && !seen)
			full[nfull++] = wp->slots[i].tenant_id;
	}
	pthread_mutex_unlock(&wp->mu);
	/* BEGIN and the claim in one round trip; the block stays open. */
	int got = db_job_claim_fair(conn, owner, app->cfg.node_id, app->cfg.lease_seconds, cap, full, nfull, 1,
				    job, err, errlen);
	if (got == 1) {
		pthread_mutex_lock(&wp->mu);
		slot->holds = 1;
		memcpy(slot->tenant_id, job->tenant_id, sizeof(slot->tenant_id));
		pthread_mutex_unlock(&wp->mu);
	}
	pthread_mutex_unlock(&wp->claim_mu);
	free(full);
	/* got == 1: the block stays open; the runner commits the claim with
	 * its first write, so claim and begin are one WAL flush. */
	return got;
}

/* Free memory in the malloc arenas above which a job's end trims them. */
#define WORKER_TRIM_FREE_BYTES (1024 * 1024)

/* After a job: hand the pages freed inside the malloc arenas back to the
 * kernel. 100 jobs in flight interleave their allocations, so what one job
 * frees is mostly holes between the others' (docs/ARCHITECTURE.md
 * "Memory"), which only malloc_trim() returns. A cheap job (a connection
 * check) frees too little to be worth it: trimming after each of those
 * made the next one fault its pages in again (madvise, page faults and
 * TLB flushes were a third of ferryd's CPU in bench/queue_bench.sh), so
 * the arenas are trimmed only when they hold more than
 * WORKER_TRIM_FREE_BYTES free. */
static void trim_heap(void)
{
	struct mallinfo2 mi = mallinfo2();
	if (mi.fordblks >= WORKER_TRIM_FREE_BYTES)
		malloc_trim(0);
}

static void *worker_main(void *arg)
{
	struct worker_slot *slot = arg;
	struct worker_pool *wp = slot->wp;
	struct app *app = wp->app;
	char owner[256];
	snprintf(owner, sizeof(owner), "%s/w%d", app->cfg.node_id, slot->index);
	while (!app->stopping) {
		pthread_mutex_lock(&wp->mu);
		unsigned long seen = wp->wakeups;
		pthread_mutex_unlock(&wp->mu);

		PGconn *conn = db_acquire(wp->db, 5000);
		if (!conn) {
			log_msg(LOG_WARN, "worker %d: no database connection; retrying", slot->index);
			wait_for_work(wp, seen, 1000);
			continue;
		}
		struct db_job_claim job;
		char err[512];
		int got = claim(slot, conn, owner, &job, err, sizeof(err));
		if (got < 0)
			log_msg(LOG_WARN, "worker %d: claim failed: %s", slot->index, err);
		if (got == 1) {
			pthread_mutex_lock(&wp->mu);
			slot->busy = 1;
			memcpy(slot->job_id, job.id, sizeof(slot->job_id));
			slot->token = job.lease_token;
			atomic_store(&slot->flags.lease_lost, 0);
			atomic_store(&slot->flags.cancel_requested, job.cancel_requested);
			atomic_store(&slot->flags.claim_open, 1);
			pthread_mutex_unlock(&wp->mu);
			atomic_fetch_add(&wp->busy, 1);
			if (app->metrics)
				metrics_worker_busy_inc(app->metrics);

			struct log_ctx lc = { NULL, job.id, job.tenant_id };
			log_ctx_msg(LOG_INFO, &lc, "claimed %s job (attempt %d) as %s", job.kind,
				    job.attempt, owner);
			runner_run_job_pooled(app, wp->db, &conn, &job, &slot->flags);
			end_claim(conn);
			/* a campaign's member may have ended: its next one
			 * starts now rather than at the advancer's next tick */
			campaign_advancer_kick(wp->campaigns);

			atomic_fetch_sub(&wp->busy, 1);
			if (app->metrics)
				metrics_worker_busy_dec(app->metrics);
			pthread_mutex_lock(&wp->mu);
			slot->busy = 0;
			slot->holds = 0;
			pthread_mutex_unlock(&wp->mu);
			db_job_claim_clear(&job);
			trim_heap();
		}
		db_release(wp->db, conn);
		if (got != 1)
			wait_for_work(wp, seen, 1000);
	}
	return NULL;
}

static PGconn *connect_listener(struct worker_pool *wp)
{
	PGconn *c = PQconnectdb(db_pool_url(wp->app->db));
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	PGresult *r = PQexec(c, "LISTEN " DB_JOBS_CHANNEL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static void *listener_main(void *arg)
{
	struct worker_pool *wp = arg;
	PGconn *c = NULL;
	while (!wp->app->stopping) {
		if (!c || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = connect_listener(wp);
			if (!c) {
				for (int i = 0; i < 10 && !wp->app->stopping; i++) {
					struct timespec ts = { 0, 100000000L };
					nanosleep(&ts, NULL);
				}
				continue;
			}
			wake_all(wp);  /* we may have missed notifications */
		}
		struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
		int pr = poll(&pfd, 1, 200);
		if (pr < 0 && errno != EINTR)
			continue;
		if (pr > 0) {
			if (!PQconsumeInput(c)) {
				PQfinish(c);
				c = NULL;
				continue;
			}
			int got = 0;
			PGnotify *n;
			while ((n = PQnotifies(c)) != NULL) {
				got = 1;
				PQfreemem(n);
			}
			if (got)
				wake_all(wp);
		}
	}
	PQfinish(c);
	return NULL;
}

static void *heartbeat_main(void *arg)
{
	struct worker_pool *wp = arg;
	struct app *app = wp->app;
	PGconn *c = NULL;
	long period_ms = app->cfg.lease_seconds * 1000L / 3;
	if (period_ms < 200)
		period_ms = 200;
	while (!app->stopping) {
		for (long slept = 0; slept < period_ms && !app->stopping; slept += 100) {
			struct timespec ts = { 0, 100000000L };
			nanosleep(&ts, NULL);
		}
		if (app->stopping)
			break;
		if (!c || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			c = PQconnectdb(db_pool_url(app->db));
			if (PQstatus(c) != CONNECTION_OK) {
				log_msg(LOG_WARN, "heartbeat: cannot connect to the database");
				continue;
			}
		}
		for (int i = 0; i < wp->n; i++) {
			struct worker_slot *s = &wp->slots[i];
			char id[DB_ID_LEN];
			long long token;
			pthread_mutex_lock(&wp->mu);
			int busy = s->busy;
			memcpy(id, s->job_id, sizeof(id));
			token = s->token;
			pthread_mutex_unlock(&wp->mu);
			/* A claim not committed yet is not in the table either. */
			if (!busy || atomic_load(&s->flags.claim_open))
				continue;
			int cancel = 0;
			int hb = db_job_heartbeat(c, id, token, app->cfg.lease_seconds, &cancel);
			/* Only report for the job we read (the slot may have moved on). */
			pthread_mutex_lock(&wp->mu);
			if (s->busy && s->token == token && !strcmp(s->job_id, id)) {
				if (hb == 0)
					atomic_store(&s->flags.lease_lost, 1);
				if (hb == 1 && cancel)
					atomic_store(&s->flags.cancel_requested, 1);
			}
			pthread_mutex_unlock(&wp->mu);
			if (hb == 0) {
				struct log_ctx lc = { NULL, id, NULL };
				log_ctx_msg(LOG_WARN, &lc, "lease lost (another worker took the job over)");
			}
		}
	}
	PQfinish(c);
	return NULL;
}

struct worker_pool *worker_pool_start(struct app *app, char *err, size_t errlen)
{
	struct worker_pool *wp = xcalloc(1, sizeof(*wp));
	wp->app = app;
	wp->n = app->cfg.workers;
	wp->slots = xcalloc((size_t)(wp->n > 0 ? wp->n : 1), sizeof(*wp->slots));
	pthread_mutex_init(&wp->mu, NULL);
	pthread_mutex_init(&wp->claim_mu, NULL);
	pthread_cond_init(&wp->cv, NULL);
	if (app->metrics)
		metrics_set_workers(app->metrics, wp->n);
	if (wp->n <= 0)
		return wp;  /* an API-only process */
	wp->db = db_pool_new(db_pool_url(app->db), wp->n < WORKER_MAX_CONNS ? wp->n : WORKER_MAX_CONNS, err,
			     errlen);
	if (!wp->db)
		goto fail;
	if (pthread_create(&wp->listener, NULL, listener_main, wp) != 0)
		goto fail;
	wp->listener_started = 1;
	if (pthread_create(&wp->heartbeat, NULL, heartbeat_main, wp) != 0)
		goto fail;
	wp->heartbeat_started = 1;
	if (!(wp->campaigns = campaign_advancer_start(app)))
		goto fail;
	/* Bounded stacks: a thread per job, 100 jobs in flight, would be
	 * 800 MB of address space at glibc's 8 MB (worker.h). */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (pthread_attr_setstacksize(&attr, worker_stack_bytes(app->cfg.worker_stack_kb)) != 0)
		log_msg(LOG_WARN, "worker stack size %d kB refused: using the default", app->cfg.worker_stack_kb);
	for (int i = 0; i < wp->n; i++) {
		wp->slots[i].wp = wp;
		wp->slots[i].index = i;
		if (pthread_create(&wp->slots[i].thread, &attr, worker_main, &wp->slots[i]) != 0) {
			wp->n = i;
			pthread_attr_destroy(&attr);
			goto fail;
		}
	}
	pthread_attr_destroy(&attr);
	return wp;
fail:
	snprintf(err, errlen, "cannot start worker threads");
	worker_pool_stop(wp);
	return NULL;
}

void worker_pool_stop(struct worker_pool *wp)
{
	if (!wp)
		return;
	wp->app->stopping = 1;
	wake_all(wp);
	for (int i = 0; i < wp->n; i++)
		if (wp->slots[i].wp)
			pthread_join(wp->slots[i].thread, NULL);
	if (wp->listener_started)
		pthread_join(wp->listener, NULL);
	if (wp->heartbeat_started)
		pthread_join(wp->heartbeat, NULL);
	campaign_advancer_stop(wp->campaigns);
	db_pool_free(wp->db);
	pthread_mutex_destroy(&wp->mu);
	pthread_mutex_destroy(&wp->claim_mu);
	pthread_cond_destroy(&wp->cv);
	free(wp->slots);
	free(wp);
}

int worker_pool_busy(const struct worker_pool *wp)
{
	return wp ? atomic_load(&((struct worker_pool *)wp)->busy) : 0;
}
