/*
 * campaign: the advancer of fleet campaigns (db/campaigns.h holds the rows
 * and the two state machines).
 *
 * Every ferryd process with workers runs one advancer thread. Twice a
 * second, and at once when a job of this process ends
 * (campaign_advancer_kick: the next member starts without waiting for the
 * next tick), it takes a pool connection, lists the active campaigns and makes
 * one pass over each: a single transaction that first locks the campaign
 * row (SELECT ... FOR UPDATE SKIP LOCKED), so at most one process advances
 * a campaign at a time and the others skip it. Everything a pass decides
 * (per-cluster results read from the jobs, jobs enqueued, waits, pauses,
 * the final state) commits together or not at all: a process killed
 * mid-pass leaves nothing half-done, and a stale process cannot write after
 * losing its connection (the row lock and its transaction die with it,
 * which is the fencing). A job is enqueued with the idempotency key
 * "campaign:<campaign id>:<cluster id>" in the same transaction that marks
 * the cluster running, so each member's job is created exactly once.
 *
 * A pass, in order: record how running jobs ended (succeeded, skipped =
 * a zero-change run that kept the release revision, failed with the job's
 * error, cancelled); finish the campaign when no cluster is left; pause it
 * when the failures reach the budget; honour a pause; pause outside the
 * maintenance window (and resume inside it); then start the lowest wave not
 * finished: the canary (wave 0) alone, each later wave only after the ones
 * before it ended, after pause_between_waves or an approval, never more than
 * max_in_flight jobs running. Clusters not started get their waiting reason.
 *
 * Thread-safety: start/stop from the main thread; campaign_advance() from
 * any thread with its own connection; campaign_advancer_kick() from any
 * thread.
 */
#ifndef FERRY_CAMPAIGN_H
#define FERRY_CAMPAIGN_H

#include <libpq-fe.h>
#include <stddef.h>

struct app;
struct campaign_advancer;

/* Start the advancer thread; NULL if the thread could not start. */
struct campaign_advancer *campaign_advancer_start(struct app *app);
/* A job of this process ended: make a pass now (or right after the one
 * under way), unless the last pass found no active campaign. Any thread;
 * NULL is fine. */
void campaign_advancer_kick(struct campaign_advancer *ca);
/* Stop (after app->stopping is set or now) and free. NULL is fine. */
void campaign_advancer_stop(struct campaign_advancer *ca);

/* One pass over campaign id. 1 = advanced, 0 = another process holds it or
 * it is no longer active, -1 = database error (err). */
int campaign_advance(PGconn *conn, const char *id, char *err, size_t errlen);

#endif
