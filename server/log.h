/*
 * log: structured logs, one JSON object per line on stderr:
 *   {"time":"2026-11-21T10:00:00.123Z","level":"info","msg":"...",
 *    "request_id":"...","job_id":"...","tenant":"..."}
 * Empty/NULL context fields are omitted. Messages must never contain
 * credentials: callers pass ids and names, not secrets.
 * Thread-safe (one write(2) per line).
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Messages below this level are dropped; default LOG_INFO. */
void log_set_level(enum log_level level);
/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int log_level_parse(const char *name);

struct log_ctx {
	const char *request_id;
	const char *job_id;
	const char *tenant;
};

void log_ctx_msg(enum log_level level, const struct log_ctx *ctx,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Without context. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
