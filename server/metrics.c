/*
 * metrics: a small fixed table of request counters and latency histograms.
 *
 * Requests are keyed by (method, route pattern, status); routes are patterns
 * like "/v1/clusters/{id}", never raw paths, so the table stays small (the
 * number of routes times the statuses they answer). The table is a plain
 * array searched linearly under one mutex: a few dozen entries, each
 * request touches it once. When it is full further keys are folded into one
 * "overflow" entry rather than growing without bound.
 *
 * The latency histogram is kept per (method, route) with the buckets below
 * (seconds), cumulative in the Prometheus way when rendered.
 *
 * The job, phase, cluster API and render metrics live in "families": a
 * capped array of series keyed by up to two label values, searched
 * linearly under the same mutex (a few dozen series; a phase touches them
 * a few times). The last slot of a family is its "other" series, which
 * takes every key once the rest are used up.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"

#define METRICS_MAX_KEYS 256
#define METRICS_MAX_ROUTES 64

static const double bucket_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct req_counter {
	char method[8];
	char route[96];
	int status;
	unsigned long long count;
};

struct route_hist {
	char method[8];
	char route[96];
	unsigned long long buckets[NBUCKETS]; /* not cumulative */
	unsigned long long count;
	double sum;
};

/* One series of a family: up to two label values and a counter, or a
 * histogram (count, sum, non-cumulative buckets). */
#define FAMILY_MAX_BUCKETS 16
struct series {
	char a[48], b[24];
	unsigned long long n;
	double sum;
	unsigned long long buckets[FAMILY_MAX_BUCKETS];
};

struct family {
	const char *name, *help, *type;   /* type: "counter" or "histogram" */
	const char *la, *lb;              /* label names; NULL = unused */
	const double *bounds;             /* histograms: bucket upper bounds */
	size_t nbounds;
	struct series *s;
	int n, cap;
};

/* job phases take from well under a second to many minutes (rollouts) */
static const double phase_bounds[] = { 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800 };
/* renders: a few ms (small charts) to seconds (key generation) */
static const double render_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

/* the eight job kinds, the final states, the retry classes and render
 * outcomes: their series exist from the start (at 0), so rate() and
 * alerts see them before the first event */
static const char *const job_kinds[] = { "install", "upgrade", "rollback", "uninstall", "adopt",
					 "preflight", "check", "repair", NULL };
static const char *const job_final_states[] = { "succeeded", "failed", "cancelled", NULL };
static const char *const retry_classes[] = { "network", "timeout", "throttled", "server_error",
					     "other", NULL };
static const char *const render_outcomes[] = { "ok", "error", "stopped", NULL };
static const char *const phase_outcomes[] = { "succeeded", "retry", "failed", "aborted", NULL };
/* label values of enum kube_outcome (server/kube/client.h), in its order */
static const char *const api_classes[] = { "2xx", "3xx", "4xx", "429", "5xx", "transport", "timeout" };
#define API_CLASSES ((int)(sizeof(api_classes) / sizeof(api_classes[0])))

enum {
	F_JOBS, F_PHASE_RUNS, F_PHASE_SECONDS, F_TAKEOVERS, F_RETRIES, F_API, F_RENDERS,
	F_RENDER_SECONDS, F_HTTP_QUICK, F_N
};

struct metrics {
	pthread_mutex_t lock;
	struct family fam[F_N];
	struct req_counter counters[METRICS_MAX_KEYS];
	int ncounters;
	struct route_hist hists[METRICS_MAX_ROUTES];
	int nhists;
	atomic_int workers_busy;
	atomic_int workers_total;
};

static void family_init(struct family *f, const char *name, const char *type, const char *help,
			const char *la, const char *lb, const double *bounds, size_t nbounds, int cap)
{
	f->name = name;
	f->type = type;
	f->help = help;
	f->la = la;
	f->lb = lb;
	f->bounds = bounds;
	f->nbounds = nbounds;
	f->cap = cap;
	f->s = xcalloc((size_t)cap, sizeof(*f->s));
}

static void copy_label(char *dst, size_t n, const char *src);

/* The series (a, b) of f, created when new; the "other" series once the
 * family is full. Called with the lock held. */
static struct series *series_get(struct family *f, const char *a, const char *b)
{
	char ca[48], cb[24];
	copy_label(ca, sizeof(ca), a ? a : "");
	copy_label(cb, sizeof(cb), b ? b : "");
	for (;;) {
		for (int i = 0; i < f->n; i++)
			if (!strcmp(f->s[i].a, ca) && !strcmp(f->s[i].b, cb))
				return &f->s[i];
		if (f->n < f->cap - 1 || (!strcmp(ca, "other") && f->n < f->cap)) {
			struct series *s = &f->s[f->n++];
			strcpy(s->a, ca);
			strcpy(s->b, cb);
			return s;
		}
		/* full: everything new goes to the one "other" series */
		strcpy(ca, "other");
		if (f->lb)
			strcpy(cb, "other");
	}
}

static void series_observe(struct family *f, struct series *s, double v)
{
	s->n++;
	s->sum += v;
	for (size_t i = 0; i < f->nbounds; i++)
		if (v <= f->bounds[i]) {
			s->buckets[i]++;
			break;
		}
}

/* v if it is one of set, else "other" (label values from callers are
 * kept to the documented sets) */
static const char *known(const char *const *set, const char *v)
{
	for (size_t i = 0; v && set[i]; i++)
		if (!strcmp(set[i], v))
			return v;
	return "other";
}

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	atomic_init(&m->workers_busy, 0);
	atomic_init(&m->workers_total, 0);
	struct family *f = m->fam;
	family_init(&f[F_JOBS], "ferry_jobs_total", "counter",
		    "Jobs this process's workers ended, by kind and final state.", "kind", "state", NULL, 0, 40);
	family_init(&f[F_PHASE_RUNS], "ferry_job_phase_runs_total", "counter",
		    "Phase runs this process ended, by phase and outcome.", "phase", "outcome", NULL, 0, 128);
	family_init(&f[F_PHASE_SECONDS], "ferry_job_phase_duration_seconds", "histogram",
		    "Wall time of a phase run (any outcome), by phase.", "phase", NULL, phase_bounds,
		    sizeof(phase_bounds) / sizeof(phase_bounds[0]), 48);
	family_init(&f[F_TAKEOVERS], "ferry_job_lease_takeovers_total", "counter",
		    "Jobs this process resumed after their previous worker vanished mid-phase (lease expired).",
		    NULL, NULL, NULL, 0, 2);
	family_init(&f[F_HTTP_QUICK], "ferry_http_quick_reads_total", "counter",
		    "API reads answered on the event thread that read them (quick-read routes, a database connection free at once) instead of a handler thread.",
		    NULL, NULL, NULL, 0, 2);
	family_init(&f[F_RETRIES], "ferry_job_retries_total", "counter",
		    "Phase retries this process scheduled, by the class of the failure.", "class", NULL, NULL, 0, 8);
	family_init(&f[F_API], "ferry_cluster_api_requests_total", "counter",
		    "Requests to clusters' API servers by phase and outcome class (errors: 4xx, 429, 5xx, transport, timeout).",
		    "phase", "code_class", NULL, 0, 256);
	family_init(&f[F_RENDERS], "ferry_chart_renders_total", "counter",
		    "Chart renders run by jobs in this process, by outcome.", "outcome", NULL, NULL, 0, 6);
	family_init(&f[F_RENDER_SECONDS], "ferry_chart_render_duration_seconds", "histogram",
		    "Wall time of a chart render run by a job.", NULL, NULL, render_bounds,
		    sizeof(render_bounds) / sizeof(render_bounds[0]), 2);
	for (size_t k = 0; job_kinds[k]; k++)
		for (size_t s = 0; job_final_states[s]; s++)
			series_get(&f[F_JOBS], job_kinds[k], job_final_states[s]);
	series_get(&f[F_TAKEOVERS], "", "");
	series_get(&f[F_HTTP_QUICK], "", "");
	for (size_t i = 0; retry_classes[i]; i++)
		series_get(&f[F_RETRIES], retry_classes[i], "");
	for (size_t i = 0; render_outcomes[i]; i++)
		series_get(&f[F_RENDERS], render_outcomes[i], "");
	series_get(&f[F_RENDER_SECONDS], "", "");
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < F_N; i++)
		free(m->fam[i].s);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void copy_label(char *dst, size_t n, const char *src)
{
	/* Label values must not break the exposition format. */
	size_t j = 0;
	for (size_t i = 0; src && src[i] && j + 1 < n; i++) {
		char c = src[i];
		dst[j++] = (c == '"' || c == '\\' || c == '\n') ? '_' : c;
	}
	dst[j] = '\0';
}

void metrics_http_request(struct metrics *m, const char *method, const char *route,
			  int status, double seconds)
{
	if (!m)
		return;
	char meth[8], rt[96];
	copy_label(meth, sizeof(meth), method);
	copy_label(rt, sizeof(rt), route && *route ? route : "unmatched");
	pthread_mutex_lock(&m->lock);
	struct req_counter *c = NULL;
	for (int i = 0; i < m->ncounters; i++) {
		struct req_counter *e = &m->counters[i];
		if (e->status == status && !strcmp(e->method, meth) && !strcmp(e->route, rt)) {
			c = e;
			break;
		}
	}
	if (!c) {
		if (m->ncounters < METRICS_MAX_KEYS) {
			c = &m->counters[m->ncounters++];
		} else {
			c = &m->counters[METRICS_MAX_KEYS - 1];
			strcpy(meth, "OTHER");
			strcpy(rt, "overflow");
			status = 0;
		}
		strcpy(c->method, meth);
		strcpy(c->route, rt);
		c->status = status;
	}
	c->count++;

	struct route_hist *h = NULL;
	for (int i = 0; i < m->nhists; i++) {
		if (!strcmp(m->hists[i].method, meth) && !strcmp(m->hists[i].route, rt)) {
			h = &m->hists[i];
			break;
		}
	}
	if (!h && m->nhists < METRICS_MAX_ROUTES) {
		h = &m->hists[m->nhists++];
		strcpy(h->method, meth);
		strcpy(h->route, rt);
	}
	if (h) {
		for (size_t b = 0; b < NBUCKETS; b++) {
			if (seconds <= bucket_bounds[b]) {
				h->buckets[b]++;
				break;
			}
		}
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics_worker_busy_inc(struct metrics *m)
{
	if (m)
		atomic_fetch_add(&m->workers_busy, 1);
}

void metrics_worker_busy_dec(struct metrics *m)
{
	if (m)
		atomic_fetch_sub(&m->workers_busy, 1);
}

void metrics_set_workers(struct metrics *m, int total)
{
	if (m)
		atomic_store(&m->workers_total, total);
}

void metrics_job_finished(struct metrics *m, const char *kind, const char *state)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_JOBS], known(job_kinds, kind), known(job_final_states, state))->n++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_phase_done(struct metrics *m, const char *phase, const char *outcome, double seconds)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_PHASE_RUNS], phase, known(phase_outcomes, outcome))->n++;
	struct family *f = &m->fam[F_PHASE_SECONDS];
	series_observe(f, series_get(f, phase, ""), seconds);
	pthread_mutex_unlock(&m->lock);
}

void metrics_lease_takeover(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_TAKEOVERS], "", "")->n++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_http_quick_read(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_HTTP_QUICK], "", "")->n++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_job_retry(struct metrics *m, const char *cls)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_RETRIES], known(retry_classes, cls), "")->n++;
	pthread_mutex_unlock(&m->lock);
}

void metrics_cluster_api(struct metrics *m, const char *phase, const long *counts, int n)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < n && i < API_CLASSES; i++)
		if (counts[i] > 0)
			series_get(&m->fam[F_API], phase, api_classes[i])->n += (unsigned long long)counts[i];
	pthread_mutex_unlock(&m->lock);
}

void metrics_render_done(struct metrics *m, const char *outcome, double seconds)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	series_get(&m->fam[F_RENDERS], known(render_outcomes, outcome), "")->n++;
	struct family *f = &m->fam[F_RENDER_SECONDS];
	series_observe(f, series_get(f, "", ""), seconds);
	pthread_mutex_unlock(&m->lock);
}

/* the label set of a series: "" or {la="a",lb="b"} (extra: one more
 * label, e.g. le="0.5", or NULL) */
static void labels(struct buf *out, const struct family *f, const struct series *s, const char *extra)
{
	int any = 0;
	if (f->la) {
		buf_printf(out, "{%s=\"%s\"", f->la, s->a);
		any = 1;
	}
	if (f->lb) {
		buf_printf(out, "%s%s=\"%s\"", any ? "," : "{", f->lb, s->b);
		any = 1;
	}
	if (extra) {
		buf_printf(out, "%s%s", any ? "," : "{", extra);
		any = 1;
	}
	if (any)
		buf_puts(out, "}");
}

static void render_family(struct buf *out, const struct family *f)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
	for (int i = 0; i < f->n; i++) {
		const struct series *s = &f->s[i];
		if (!f->nbounds) {
			buf_puts(out, f->name);
			labels(out, f, s, NULL);
			buf_printf(out, " %llu\n", s->n);
			continue;
		}
		unsigned long long cum = 0;
		char le[48];
		for (size_t b = 0; b < f->nbounds; b++) {
			cum += s->buckets[b];
			snprintf(le, sizeof(le), "le=\"%g\"", f->bounds[b]);
			buf_printf(out, "%s_bucket", f->name);
			labels(out, f, s, le);
			buf_printf(out, " %llu\n", cum);
		}
		buf_printf(out, "%s_bucket", f->name);
		labels(out, f, s, "le=\"+Inf\"");
		buf_printf(out, " %llu\n%s_sum", s->n, f->name);
		labels(out, f, s, NULL);
		buf_printf(out, " %.6f\n%s_count", s->sum, f->name);
		labels(out, f, s, NULL);
		buf_printf(out, " %llu\n", s->n);
	}
}

void metrics_render(struct metrics *m, struct buf *out)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < F_N; i++)
		render_family(out, &m->fam[i]);
	buf_puts(out, "# HELP ferry_http_requests_total HTTP requests by route and status.\n"
		      "# TYPE ferry_http_requests_total counter\n");
	for (int i = 0; i < m->ncounters; i++) {
		struct req_counter *c = &m->counters[i];
		buf_printf(out, "ferry_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
			   c->method, c->route, c->status, c->count);
	}
	buf_puts(out, "# HELP ferry_http_request_duration_seconds HTTP request latency.\n"
		      "# TYPE ferry_http_request_duration_seconds histogram\n");
	for (int i = 0; i < m->nhists; i++) {
		struct route_hist *h = &m->hists[i];
		unsigned long long cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += h->buckets[b];
			buf_printf(out, "ferry_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
				   h->method, h->route, bucket_bounds[b], cum);
		}
		buf_printf(out, "ferry_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
			   h->method, h->route, h->count);
		buf_printf(out, "ferry_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
			   h->method, h->route, h->sum);
		buf_printf(out, "ferry_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
			   h->method, h->route, h->count);
	}
	pthread_mutex_unlock(&m->lock);
	buf_printf(out, "# HELP ferry_workers_busy Workers currently running a job.\n"
			"# TYPE ferry_workers_busy gauge\nferry_workers_busy %d\n",
		   atomic_load(&m->workers_busy));
	buf_printf(out, "# HELP ferry_workers Size of the worker pool.\n"
			"# TYPE ferry_workers gauge\nferry_workers %d\n",
		   atomic_load(&m->workers_total));
}
