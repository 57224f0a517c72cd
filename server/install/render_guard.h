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

#endif
