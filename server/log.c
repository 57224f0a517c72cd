/*
 * log: one JSON object per line on stderr.
 *
 * Each call formats the message, escapes it as a JSON string and emits the
 * whole line with a single write(2), so lines from different threads never
 * interleave. The level threshold is a plain atomic int.
 */
#include "server/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server/common/buf.h"

static atomic_int log_threshold = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	atomic_store(&log_threshold, (int)level);
}

int log_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(name, level_names[i]))
			return i;
	if (!strcasecmp(name, "warning"))
		return LOG_WARN;
	return -1;
}

static void put_json_string(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_putc(b, (char)*p);
		}
	}
	buf_putc(b, '"');
}

static void put_field(struct buf *b, const char *key, const char *val)
{
	if (!val || !*val)
		return;
	buf_printf(b, ",\"%s\":", key);
	put_json_string(b, val);
}

static void log_vwrite(enum log_level level, const struct log_ctx *ctx,
		       const char *fmt, va_list ap)
{
	if ((int)level < atomic_load(&log_threshold))
		return;
	if ((int)level < 0 || level > LOG_ERROR)
		level = LOG_ERROR;
	struct buf msg = BUF_INIT, line = BUF_INIT;
	buf_vprintf(&msg, fmt, ap);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[64];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	buf_printf(&line, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
		   ts.tv_nsec / 1000000L, level_names[level]);
	put_json_string(&line, buf_cstr(&msg));
	if (ctx) {
		put_field(&line, "request_id", ctx->request_id);
		put_field(&line, "job_id", ctx->job_id);
		put_field(&line, "tenant", ctx->tenant);
	}
	buf_puts(&line, "}\n");
	const char *p = line.data;
	size_t left = line.len;
	while (left > 0) {
		ssize_t n = write(STDERR_FILENO, p, left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	buf_free(&msg);
	buf_free(&line);
}

void log_ctx_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, ctx, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
}
