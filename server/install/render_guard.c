/*
 * render_guard.c: limits and stop rule of a job's chart render (see the
 * header).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/render_guard.h"
#include "db/jobs.h"
#include "server/app.h"
#include "server/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- render slots -------------------------------------------------------- */

/* A queued job; granted is set by the releaser that hands it its slot. */
struct slot_waiter {
	struct slot_waiter *next;
	int granted;
};

struct render_slots {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int free_slots, running;
	struct slot_waiter *head, *tail;   /* FIFO */
	int queued;
};

struct render_slots *render_slots_new(int n)
{
	struct render_slots *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->free_slots = n > 0 ? n : 1;
	return s;
}

void render_slots_free(struct render_slots *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void render_slots_usage(struct render_slots *s, int *running, int *queued)
{
	pthread_mutex_lock(&s->mu);
	*running = s->running;
	*queued = s->queued;
	pthread_mutex_unlock(&s->mu);
}

static void unlink_waiter(struct render_slots *s, struct slot_waiter *w)
{
	struct slot_waiter **pp = &s->head, *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (s->tail == w)
		s->tail = prev;
	s->queued--;
}

/* Give a free slot to the first queued job (s->mu held). */
static void grant_next(struct render_slots *s)
{
	while (s->free_slots > 0 && s->head) {
		struct slot_waiter *w = s->head;
		s->head = w->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		s->free_slots--;
		s->running++;
		w->granted = 1;
	}
	pthread_cond_broadcast(&s->cond);
}

enum phase_rc render_slot_acquire(struct runner_ctx *ctx)
{
	struct render_slots *s = ctx->app->render_slots;
	if (!s)
		return PHASE_OK;
	pthread_mutex_lock(&s->mu);
	if (s->free_slots > 0 && !s->head) {
		s->free_slots--;
		s->running++;
		pthread_mutex_unlock(&s->mu);
		return PHASE_OK;
	}
	struct slot_waiter w = { NULL, 0 };
	if (s->tail)
		s->tail->next = &w;
	else
		s->head = &w;
	s->tail = &w;
	s->queued++;
	pthread_mutex_unlock(&s->mu);

	/* Nothing to do with the connection while queued: lend it. */
	int lent = runner_lend_conn(ctx, 1);
	enum phase_rc rc = PHASE_OK;
	pthread_mutex_lock(&s->mu);
	while (!w.granted) {
		int cancel = ctx->flags && atomic_load(&ctx->flags->cancel_requested);
		if (runner_should_abort(ctx) || cancel) {
			unlink_waiter(s, &w);
			rc = cancel && !runner_should_abort(ctx) ? PHASE_FAIL : PHASE_ABORT;
			break;
		}
		/* 50 ms steps, like runner_sleep, to notice an abort */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cond, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc == PHASE_FAIL)
		snprintf(ctx->message, sizeof ctx->message, "cancelled while waiting for a chart render slot");
	if (lent)
		runner_take_conn(ctx);
	return rc;
}

void render_slot_release(struct runner_ctx *ctx)
{
	struct render_slots *s = ctx->app->render_slots;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->running--;
	s->free_slots++;
	grant_next(s);
	pthread_mutex_unlock(&s->mu);
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
