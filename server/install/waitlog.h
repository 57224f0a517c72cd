/*
 * install/waitlog: progress lines of a long wait (a rollout, Cilium's CRDs),
 * so that no waiting phase is silent for longer than WAITLOG_EVERY_MS.
 *
 * waitlog_start() notes what is awaited, the deadline and the start time;
 * waitlog_due() is asked at every poll with the current time and, once
 * WAITLOG_EVERY_MS more have passed, fills the line
 *   "waiting for <what>: <elapsed> s so far, deadline <timeout> s (<state>)"
 * (the phase logs it: install_wait_tick() in phases.h).
 *
 * Pure; times are monotonic milliseconds given by the caller.
 */
#ifndef FERRY_INSTALL_WAITLOG_H
#define FERRY_INSTALL_WAITLOG_H

#include <stddef.h>

#define WAITLOG_EVERY_MS 30000

struct waitlog {
	const char *what;       /* borrowed, e.g. "DaemonSet rollout (...)" */
	long timeout_ms;
	double start_ms;
	double next_ms;         /* when the next line is due */
};

void waitlog_start(struct waitlog *w, const char *what, long timeout_ms, double now_ms);

/* 1 when a progress line is due at now_ms (written to out), else 0. state
 * (may be NULL) says what the last poll saw. */
int waitlog_due(struct waitlog *w, double now_ms, const char *state, char *out, size_t outlen);

#endif
