/*
 * waitlog.c: progress lines of a long wait (waitlog.h).
 */
#include "server/install/waitlog.h"

#include <stdio.h>

void waitlog_start(struct waitlog *w, const char *what, long timeout_ms, double now_ms)
{
	w->what = what;
	w->timeout_ms = timeout_ms;
	w->start_ms = now_ms;
	w->next_ms = now_ms + WAITLOG_EVERY_MS;
}

int waitlog_due(struct waitlog *w, double now_ms, const char *state, char *out, size_t outlen)
{
	if (now_ms < w->next_ms)
		return 0;
	int has_state = state && *state;
	snprintf(out, outlen, "waiting for %s: %ld s so far, deadline %ld s%s%s%s", w->what,
		 (long)((now_ms - w->start_ms) / 1000), w->timeout_ms / 1000, has_state ? " (" : "",
		 has_state ? state : "", has_state ? ")" : "");
	/* the next one on the 30 s grid from the start, also after a long poll */
	while (w->next_ms <= now_ms)
		w->next_ms += WAITLOG_EVERY_MS;
	return 1;
}
