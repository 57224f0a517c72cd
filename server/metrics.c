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
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
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

struct metrics {
	pthread_mutex_t lock;
	struct req_counter counters[METRICS_MAX_KEYS];
	int ncounters;
	struct route_hist hists[METRICS_MAX_ROUTES];
	int nhists;
	atomic_int workers_busy;
	atomic_int workers_total;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	atomic_init(&m->workers_busy, 0);
	atomic_init(&m->workers_total, 0);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
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

void metrics_render(struct metrics *m, struct buf *out)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
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
