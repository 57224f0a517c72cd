/*
 * common/cron: five-field cron expressions (minute hour day-of-month month
 * day-of-week) and maintenance windows built on them, for fleet campaigns.
 *
 * Syntax per field: '*', N, N-M, '*' or N-M followed by /STEP, and lists of
 * those separated by ','. Day of week 0-7 (0 and 7 = Sunday). As in Vixie
 * cron, when both day fields are restricted a day matches if either does.
 * No names (MON, JAN) and no macros (@daily).
 *
 * Times are "local epoch seconds": the wall-clock time of the window's time
 * zone written as if it were UTC (PostgreSQL's `now() AT TIME ZONE tz`), so
 * this module needs no time zone database and no global state. Around a DST
 * change a window follows the wall clock.
 *
 * Pure functions; thread-safe; nothing to free.
 */
#ifndef FERRY_CRON_H
#define FERRY_CRON_H

#include <stddef.h>
#include <stdint.h>

struct cron {
	uint64_t minute;   /* bit i = minute i */
	uint32_t hour;
	uint32_t dom;      /* bits 1..31 */
	uint16_t month;    /* bits 1..12 */
	uint8_t dow;       /* bits 0..6 */
	int dom_star, dow_star;
};

/* Parse expr; 0 on success, -1 with a reason in why. */
int cron_parse(const char *expr, struct cron *c, char *why, size_t whylen);

/* 1 if the minute starting at local time t (seconds, any second in it)
 * matches. */
int cron_matches(const struct cron *c, long long t);

/* The first matching minute start >= t (rounded up to a minute), searching
 * at most limit_days days ahead; -1 if none. */
long long cron_next(const struct cron *c, long long t, int limit_days);

/*
 * A window opens at every match and stays open duration_s seconds. Returns
 * 1 if local time now is inside a window (a match in (now - duration_s,
 * now]); 0 if not, with *next_open = the next opening (-1 if none within
 * 4 years and 1 day, i.e. the window never opens).
 */
int cron_window_open(const struct cron *c, int duration_s, long long now,
		     long long *next_open);

#endif
