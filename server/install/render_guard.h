/*
 * install/render_guard: the budget and the stop rule of a chart render run
 * by a job (the cilium phase). A tenant's chart is untrusted input; its
 * templates run inside ferryd, so the render gets the operator's limits
 * (FERRY_RENDER_MAX_*, app config) and stops within a few milliseconds of
 * a cancel request or a shutdown.
 *
 * Cancel: a running job learns of a cancel from its heartbeat (every
 * lease/3 seconds); during a render the guard asks the database itself
 * every 250 ms (the same heartbeat statement, on the runner's connection,
 * which the runner is not using while it waits for the render).
 *
 * Usage:
 *   struct render_guard g;
 *   render_guard_init(&g, ctx, &render_opts);   // fills the limits + stop
 *   rd = render_guard_render(&g, chart, values, &render_opts, err, errlen);
 *   if (!rd) rc = render_guard_failed(&g);      // PHASE_ABORT or PHASE_FAIL
 *
 * render_guard_render() is chart_render() plus the render metrics
 * (ferry_chart_renders_total{outcome}, ferry_chart_render_duration_seconds).
 *
 * The guard borrows ctx; it owns nothing. One thread.
 *
 * Render slots: at most app->cfg.render_concurrency renders (default: the
 * online CPUs) run at once in a process; a job wanting one queues (first
 * come, first served) around load + render:
 *   if ((rc = render_slot_acquire(ctx)) != PHASE_OK) return rc;
 *   ... chart_render() ...
 *   render_slot_release(ctx);
 * While it queues, a pooled runner's database connection is lent to the
 * pool (runner_lend_conn), so jobs queued for the CPU do not keep jobs
 * that only need a connection (a rollout poll, a claim) from running; it
 * takes one again once it has the slot. A queued job leaves the queue on
 * shutdown or a lost lease (PHASE_ABORT) and on a cancel the heartbeat
 * reports (PHASE_FAIL, cancel_requested set: the runner finishes the job
 * "cancelled"). With app->render_slots NULL (tests that build their own
 * app) there is no cap. render_slots_new/free: ferryd serve, once.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_RENDER_GUARD_H
#define FERRY_INSTALL_RENDER_GUARD_H

#include "server/chart/chart.h"
#include "server/install/runner.h"

struct render_guard {
	struct runner_ctx *ctx;
	double next_poll_ms;   /* CLOCK_MONOTONIC ms of the next database poll */
	int stopped;           /* 1: shutdown or lease lost, 2: cancelled */
};

void render_guard_init(struct render_guard *g, struct runner_ctx *ctx, struct chart_render_opts *ro);
/* chart_render(ch, values, ro, err, errlen), counted and timed. */
struct chart_render *render_guard_render(struct render_guard *g, const struct chart *ch,
					 const json_t *values, const struct chart_render_opts *ro,
					 char *err, size_t errlen);
/* After a failed render: PHASE_ABORT when it was stopped by shutdown or a
 * lost lease (the phase re-runs later), else PHASE_FAIL (a cancel is
 * then finished as "cancelled" by the runner). */
enum phase_rc render_guard_failed(const struct render_guard *g);

struct render_slots;
struct render_slots *render_slots_new(int n);
void render_slots_free(struct render_slots *s);
enum phase_rc render_slot_acquire(struct runner_ctx *ctx);
void render_slot_release(struct runner_ctx *ctx);
/* Renders running and jobs queued now (for tests and logs). */
void render_slots_usage(struct render_slots *s, int *running, int *queued);

#endif
