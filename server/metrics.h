/*
 * metrics: process-wide counters for /metrics (Prometheus text format).
 *
 * The HTTP layer records every request (route pattern, status, latency);
 * the worker pool reports how many workers are busy; the job runner reports
 * finished jobs, phase runs and their duration, lease takeovers, retries and
 * the cluster API calls of each phase; the cilium and preflight phases
 * report chart renders. All of these count what THIS process did. Job
 * counts by state, the queue depth and the age of the oldest claimable job
 * are read from the database at scrape time by the /metrics handler
 * (api/health.c), so every ferryd process sharing a database reports the
 * same numbers for those (aggregate them with max, not sum). The metric
 * names, labels and their value sets: docs/observability/README.md.
 *
 * Bounded cardinality: no label ever holds a cluster, job or tenant id.
 * Label values come from fixed sets (job kinds, states, outcome classes)
 * or from the phase tables compiled into ferryd; each table is capped and
 * further keys are folded into one "other" series, so a bug cannot make
 * the output grow without bound.
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
/* One of them was answered on its event thread (server/http.c's quick
 * reads), not by a handler thread. */
void metrics_http_quick_read(struct metrics *m);

/* Worker gauges: call busy_inc when a worker starts a job, busy_dec when it
 * stops; set_workers once with the pool size. */
void metrics_worker_busy_inc(struct metrics *m);
void metrics_worker_busy_dec(struct metrics *m);
void metrics_set_workers(struct metrics *m, int total);

/* Jobs (called by the runner, server/install/runner.c). */
/* A job this process's worker ended: kind (install, upgrade, ...), state
 * (succeeded, failed, cancelled). */
void metrics_job_finished(struct metrics *m, const char *kind, const char *state);
/* One phase run ended: phase name, outcome ("succeeded", "retry",
 * "failed", "aborted"), its wall time. */
void metrics_phase_done(struct metrics *m, const char *phase, const char *outcome, double seconds);
/* This process took over a job whose previous worker vanished mid-phase
 * (its lease expired while a phase was running). */
void metrics_lease_takeover(struct metrics *m);
/* A phase asked for a retry; cls: "network", "timeout", "throttled" (429),
 * "server_error" (5xx), "other". */
void metrics_job_retry(struct metrics *m, const char *cls);
/* Cluster API requests one phase made, by class: counts[] indexed by
 * enum kube_outcome (server/kube/client.h), n = KUBE_OUT_N. */
void metrics_cluster_api(struct metrics *m, const char *phase, const long *counts, int n);
/* One chart render ended: outcome ("ok", "error", "stopped"), its time. */
void metrics_render_done(struct metrics *m, const char *outcome, double seconds);

/* Append the process metrics (requests, latency histogram, workers, jobs,
 * phases, cluster API calls, renders) in Prometheus text format to out. */
void metrics_render(struct metrics *m, struct buf *out);

#endif
