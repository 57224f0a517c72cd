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

/* A job thread's stack (FERRY_WORKER_STACK_KB; glibc's default would be
 * 8 MB of address space per worker). Renders run on a stack of their own
 * (server/chart/chart.c); on the job's thread the deepest recursion is
 * YAML parsing (a tenant chart's values.yaml, values layers: libyaml's
 * loader recurses, up to the 2,000 levels the chart loader allows, about
 * 300-500 kB in an optimised build): tests/security/test_sec_render.c
 * loads and renders charts at the engine's depth limits on a thread of
 * this size. Sanitizer builds multiply it by WORKER_STACK_SANITIZER_FACTOR
 * (their frames are several times larger). docs/ARCHITECTURE.md. */
#define WORKER_STACK_DEFAULT_KB 1024
#define WORKER_STACK_SANITIZER_FACTOR 4
/* The stack size in bytes for a configured size in kB (0 = the default). */
static inline size_t worker_stack_bytes(int kb)
{
	size_t b = (size_t)(kb > 0 ? kb : WORKER_STACK_DEFAULT_KB) * 1024;
#ifdef __SANITIZE_ADDRESS__
	b *= WORKER_STACK_SANITIZER_FACTOR;
#endif
	return b;
}

struct worker_pool *worker_pool_start(struct app *app, char *err, size_t errlen);
void worker_pool_stop(struct worker_pool *wp);
/* Workers currently running a job (for /metrics). */
int worker_pool_busy(const struct worker_pool *wp);

#endif
