/*
 * worker: the pool of job worker threads of one ferryd process.
 *
 * worker_pool_start() starts app->cfg.workers threads plus two helpers: a
 * listener thread holding a dedicated connection that LISTENs on
 * DB_JOBS_CHANNEL and wakes idle workers when a job becomes claimable (they
 * also poll every second, so a lost notification only costs latency), and a
 * heartbeat thread that extends the lease of every job in flight every
 * lease_seconds/3 and tells its runner when the lease was lost or the job
 * cancelled. Each worker claims a job (db_job_claim_fair, with the
 * per-tenant cap counted over this process's workers), runs it with the
 * install runner (which commits the claim with its first write), and goes
 * back to waiting.
 *
 * worker_pool_stop() is the SIGTERM path: it sets app->stopping (runners
 * stop at the next phase boundary, or mid-phase for phases that wait, and
 * release their leases so another process resumes at once), then joins all
 * threads and frees the pool. Thread-safety: start/stop from the main thread only;
 * worker_pool_busy() from anywhere.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <stddef.h>

struct app;
struct worker_pool;

struct worker_pool *worker_pool_start(struct app *app, char *err, size_t errlen);
void worker_pool_stop(struct worker_pool *wp);
/* Workers currently running a job (for /metrics). */
int worker_pool_busy(const struct worker_pool *wp);

#endif
