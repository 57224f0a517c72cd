/*
 * cron: see cron.h. Fields are bit sets; searching walks days first (a day
 * that cannot match is skipped whole), then hours, then minutes.
 */
#include "server/common/cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parse one field into bits lo..hi of *out. */
static int parse_field(const char *s, size_t n, int lo, int hi, uint64_t *out, int *star,
		       const char *name, char *why, size_t whylen)
{
	char buf[128];
	if (n == 0 || n >= sizeof(buf)) {
		snprintf(why, whylen, "%s: empty or too long", name);
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = 0;
	*out = 0;
	*star = !strcmp(buf, "*");
	char *next = buf;
	while (next) {
		char *part = next;
		char *comma = strchr(part, ',');
		next = NULL;
		if (comma) {
			*comma = 0;
			next = comma + 1;
		}
		if (!*part)
			goto bad;  /* "1,,2", ",1", "1," */
		long a = lo, b = hi, step = 1;
		char *p = part, *end;
		if (*p == '*') {
			p++;
		} else {
			a = strtol(p, &end, 10);
			if (end == p)
				goto bad;
			p = end;
			b = a;
			if (*p == '-') {
				p++;
				b = strtol(p, &end, 10);
				if (end == p)
					goto bad;
				p = end;
			}
		}
		if (*p == '/') {
			p++;
			step = strtol(p, &end, 10);
			if (end == p || step < 1)
				goto bad;
			p = end;
			if (a == b && part[0] != '*')
				b = hi;  /* "N/S" = from N to the end */
		}
		if (*p)
			goto bad;
		if (a < lo || b > hi || a > b) {
			snprintf(why, whylen, "%s: %s is outside %d-%d", name, part, lo, hi);
			return -1;
		}
		for (long v = a; v <= b; v += step)
			*out |= (uint64_t)1 << v;
	}
	if (!*out)
		goto bad;
	return 0;
bad:
	snprintf(why, whylen, "%s: cannot read \"%.*s\"", name, (int)n, s);
	return -1;
}

int cron_parse(const char *expr, struct cron *c, char *why, size_t whylen)
{
	static const char *const names[5] = { "minute", "hour", "day of month", "month",
					      "day of week" };
	static const int lo[5] = { 0, 0, 1, 1, 0 }, hi[5] = { 59, 23, 31, 12, 7 };
	uint64_t bits[5];
	int star[5];
	int nf = 0;
	memset(c, 0, sizeof(*c));
	const char *p = expr ? expr : "";
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (nf == 5) {
			snprintf(why, whylen, "a cron expression has 5 fields (minute hour day month weekday)");
			return -1;
		}
		if (parse_field(s, (size_t)(p - s), lo[nf], hi[nf], &bits[nf], &star[nf], names[nf],
				why, whylen) != 0)
			return -1;
		nf++;
	}
	if (nf != 5) {
		snprintf(why, whylen, "a cron expression has 5 fields (minute hour day month weekday)");
		return -1;
	}
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);  /* 7 = Sunday = 0 */
	c->dom_star = star[2];
	c->dow_star = star[4];
	return 0;
}

static int day_matches(const struct cron *c, const struct tm *tm)
{
	if (!(c->month & (1u << (tm->tm_mon + 1))))
		return 0;
	int dom = (c->dom >> tm->tm_mday) & 1, dow = (c->dow >> tm->tm_wday) & 1;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

int cron_matches(const struct cron *c, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	return day_matches(c, &tm) && ((c->hour >> tm.tm_hour) & 1) &&
	       ((c->minute >> tm.tm_min) & 1);
}

long long cron_next(const struct cron *c, long long t, int limit_days)
{
	long long m = (t + 59) / 60 * 60;
	if (t < 0)
		m = t - (t % 60);
	long long stop = m + (long long)limit_days * 86400;
	while (m <= stop) {
		time_t tt = (time_t)m;
		struct tm tm;
		gmtime_r(&tt, &tm);
		if (!day_matches(c, &tm)) {
			m += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
			continue;
		}
		if (!((c->hour >> tm.tm_hour) & 1)) {
			m += 3600 - (tm.tm_min * 60 + tm.tm_sec);
			continue;
		}
		if ((c->minute >> tm.tm_min) & 1)
			return m;
		m += 60;
	}
	return -1;
}

int cron_window_open(const struct cron *c, int duration_s, long long now, long long *next_open)
{
	if (next_open)
		*next_open = -1;
	/* The latest match at or before now, within the duration: walk minutes
	 * back (a duration is at most 7 days: 10080 steps). */
	long long start = now - (now % 60);
	for (long long m = start; m > now - duration_s; m -= 60)
		if (cron_matches(c, m))
			return 1;
	if (next_open)
		*next_open = cron_next(c, now + 1, 4 * 366 + 1);
	return 0;
}
