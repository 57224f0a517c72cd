/*
 * render_guard.c: limits and stop rule of a job's chart render (see the
 * header).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/render_guard.h"
#include "db/jobs.h"
#include "server/app.h"
#include "server/metrics.h"

#include <string.h>
#include <time.h>

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int should_stop(void *arg)
{
	struct render_guard *g = arg;
	struct runner_ctx *ctx = g->ctx;
	if (runner_should_abort(ctx)) {
		g->stopped = 1;
		return 1;
	}
	if (ctx->flags && atomic_load(&ctx->flags->cancel_requested)) {
		g->stopped = 2;
		return 1;
	}
	double now = mono_ms();
	if (ctx->conn && ctx->job && now >= g->next_poll_ms) {
		g->next_poll_ms = now + 250;
		int cancel = 0;
		int hb = db_job_heartbeat(ctx->conn, ctx->job->id, ctx->job->lease_token,
					  ctx->app->cfg.lease_seconds, &cancel);
		if (hb == 0 && ctx->flags) {
			atomic_store(&ctx->flags->lease_lost, 1);
			g->stopped = 1;
			return 1;
		}
		if (hb == 1 && cancel) {
			if (ctx->flags)
				atomic_store(&ctx->flags->cancel_requested, 1);
			g->stopped = 2;
			return 1;
		}
	}
	return 0;
}

void render_guard_init(struct render_guard *g, struct runner_ctx *ctx, struct chart_render_opts *ro)
{
	memset(g, 0, sizeof(*g));
	g->ctx = ctx;
	g->next_poll_ms = mono_ms() + 250;
	const struct app_config *cfg = &ctx->app->cfg;
	ro->max_ms = cfg->render_max_ms;
	ro->max_memory = cfg->render_max_memory;
	ro->max_steps = cfg->render_max_steps;
	ro->max_output = cfg->render_max_output;
	ro->should_stop = should_stop;
	ro->stop_ctx = g;
}

enum phase_rc render_guard_failed(const struct render_guard *g)
{
	return g->stopped == 1 ? PHASE_ABORT : PHASE_FAIL;
}

struct chart_render *render_guard_render(struct render_guard *g, const struct chart *ch,
					 const json_t *values, const struct chart_render_opts *ro,
					 char *err, size_t errlen)
{
	double t0 = mono_ms();
	struct chart_render *rd = chart_render(ch, values, ro, err, errlen);
	metrics_render_done(g->ctx->app->metrics, rd ? "ok" : g->stopped ? "stopped" : "error",
			    (mono_ms() - t0) / 1000.0);
	return rd;
}
