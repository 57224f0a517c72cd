/*
 * metrics: process-wide counters for /metrics (Prometheus text format).
 *
 * The HTTP layer records every request (route pattern, status, latency);
 * the worker pool reports how many workers are busy. Job counts by state
 * and the queue depth are read from the database at scrape time by the
 * /metrics handler (api/health.c), so every ferryd process sharing a
 * database reports the same job numbers.
 *
 * Memory: metrics_new() returns an object owned by the caller (main), freed
 * with metrics_free(). metrics_render() returns a malloc'd string.
 * Thread-safety: every function may be called from any thread (one mutex
 * for the request table, atomics for the gauges). All functions accept a
 * NULL struct metrics and then do nothing (tests may run without one).
 */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

struct metrics;
struct buf;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* One finished HTTP request: route pattern ("" = unmatched), method,
 * status code, duration in seconds. */
void metrics_http_request(struct metrics *m, const char *method, const char *route,
			  int status, double seconds);

/* Worker gauges: call busy_inc when a worker starts a job, busy_dec when it
 * stops; set_workers once with the pool size. */
void metrics_worker_busy_inc(struct metrics *m);
void metrics_worker_busy_dec(struct metrics *m);
void metrics_set_workers(struct metrics *m, int total);

/* Append the process metrics (requests, latency histogram, workers) in
 * Prometheus text format to out. */
void metrics_render(struct metrics *m, struct buf *out);

#endif
