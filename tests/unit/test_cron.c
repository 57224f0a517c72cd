/*
 * test_cron: server/common/cron.c, the cron expressions and maintenance windows of
 * fleet campaigns. Times are "local epoch seconds" (wall clock as if UTC).
 */
#include <string.h>
#include <time.h>

#include "server/common/cron.h"
#include "tests/unit/testlib.h"

/* Epoch seconds of a UTC wall-clock time. */
static long long at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
	return (long long)timegm(&tm);
}

static void t_parse_errors(void)
{
	struct cron c;
	char why[128];
	static const char *const bad[] = { "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
					   "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "a * * * *",
					   "5-1 * * * *", "1,,2 * * * *", "1- * * * *", NULL };
	for (int i = 0; bad[i]; i++) {
		why[0] = 0;
		check(cron_parse(bad[i], &c, why, sizeof why) == -1);
		check(why[0] != 0);
	}
	check(cron_parse("0 2 * * 1-5", &c, why, sizeof why) == 0);
	check(cron_parse(" */15  0-6/2 1,15 * 7 ", &c, why, sizeof why) == 0);
	check(cron_parse("61 2 * * *", &c, why, sizeof why) == -1);
	check(strstr(why, "minute") != NULL);
}

static void t_matches(void)
{
	struct cron c;
	char why[128];
	check(cron_parse("0 2 * * 1-5", &c, why, sizeof why) == 0);
	check(cron_matches(&c, at(2026, 12, 7, 2, 0)));        /* Monday 02:00 */
	check(cron_matches(&c, at(2026, 12, 7, 2, 0) + 59));   /* any second of it */
	check(!cron_matches(&c, at(2026, 12, 7, 2, 1)));
	check(!cron_matches(&c, at(2026, 12, 6, 2, 0)));       /* Sunday */
	/* Both day fields restricted: either matches (Vixie cron). */
	check(cron_parse("0 0 13 * 5", &c, why, sizeof why) == 0);
	check(cron_matches(&c, at(2026, 12, 13, 0, 0)));       /* the 13th, a Sunday */
	check(cron_matches(&c, at(2026, 12, 11, 0, 0)));       /* a Friday */
	check(!cron_matches(&c, at(2026, 12, 12, 0, 0)));
	/* 7 is Sunday too; steps from a start. */
	check(cron_parse("30 */6 * * 7", &c, why, sizeof why) == 0);
	check(cron_matches(&c, at(2026, 12, 6, 18, 30)));
	check(!cron_matches(&c, at(2026, 12, 6, 19, 30)));
	check(cron_parse("5/20 * * * *", &c, why, sizeof why) == 0);
	check(cron_matches(&c, at(2026, 1, 1, 0, 45)) && !cron_matches(&c, at(2026, 1, 1, 0, 4)));
}

static void t_next_and_windows(void)
{
	struct cron c;
	char why[128];
	long long next;
	check(cron_parse("0 2 * * 1-5", &c, why, sizeof why) == 0);
	/* Friday 03:00 -> Monday 02:00. */
	check(cron_next(&c, at(2026, 12, 11, 3, 0), 10) == at(2026, 12, 14, 2, 0));
	/* Inside a 4 h window at 05:59, outside at 06:00 (until tomorrow 02:00). */
	check(cron_window_open(&c, 4 * 3600, at(2026, 12, 8, 5, 59), &next) == 1);
	check(cron_window_open(&c, 4 * 3600, at(2026, 12, 8, 6, 0), &next) == 0);
	check(next == at(2026, 12, 9, 2, 0));
	/* A window opening at the next minute. */
	check(cron_parse("31 14 * * *", &c, why, sizeof why) == 0);
	check(cron_window_open(&c, 3600, at(2026, 12, 7, 14, 30) + 20, &next) == 0);
	check(next == at(2026, 12, 7, 14, 31));
	/* 29 February is found within four years; 31 February never. */
	check(cron_parse("0 0 29 2 *", &c, why, sizeof why) == 0);
	check(cron_window_open(&c, 3600, at(2026, 12, 7, 0, 0), &next) == 0 && next == at(2028, 2, 29, 0, 0));
	check(cron_parse("0 0 31 2 *", &c, why, sizeof why) == 0);
	check(cron_window_open(&c, 3600, at(2026, 12, 7, 0, 0), &next) == 0 && next == -1);
}

int main(void)
{
	test_run("cron_parse_errors", t_parse_errors);
	test_run("cron_matches", t_matches);
	test_run("cron_next_and_windows", t_next_and_windows);
	return test_summary();
}
