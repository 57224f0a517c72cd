/*
 * testlib.h: the tiny test harness every unit-test binary uses.
 *
 * A test binary calls check()/check_str() and friends; each failing check
 * prints "FAIL: <test>: <file>:<line>: <what>". test_run(name, fn) runs one
 * test function and prints "PASS: name" if none of its checks failed. The
 * binary ends with test_summary(), which prints "N passed, N failed" and
 * returns the exit status. tests/run counts the PASS:/FAIL:/SKIP: lines of
 * every test program.
 */
#ifndef FERRY_TESTLIB_H
#define FERRY_TESTLIB_H

#include <stdio.h>
#include <string.h>

static int testlib_passed, testlib_failed, testlib_skipped;
static int testlib_current_failed;
static const char *testlib_current = "";

static inline void testlib_fail(const char *file, int line, const char *what)
{
	printf("FAIL: %s: %s:%d: %s\n", testlib_current, file, line, what);
	testlib_current_failed = 1;
}

/* check(cond): the condition must hold. */
#define check(cond) \
	do { if (!(cond)) testlib_fail(__FILE__, __LINE__, #cond); } while (0)

/* check_str(got, want): two C strings must be equal (NULL counts as "(null)"). */
#define check_str(got, want) \
	testlib_check_str(__FILE__, __LINE__, (got), (want))

static inline void testlib_check_str(const char *file, int line,
				     const char *got, const char *want)
{
	if (got && want && !strcmp(got, want))
		return;
	char msg[4096];
	snprintf(msg, sizeof(msg), "got \"%.1800s\", want \"%.1800s\"",
		 got ? got : "(null)", want ? want : "(null)");
	testlib_fail(file, line, msg);
}

static inline void test_run(const char *name, void (*fn)(void))
{
	testlib_current = name;
	testlib_current_failed = 0;
	fflush(stdout);
	fn();
	if (testlib_current_failed) {
		testlib_failed++;
	} else {
		testlib_passed++;
		printf("PASS: %s\n", name);
	}
	fflush(stdout);
}

/* Report a test that cannot run here, with the reason. */
static inline void test_skip(const char *name, const char *why)
{
	testlib_skipped++;
	printf("SKIP: %s: %s\n", name, why);
}

static inline int test_summary(void)
{
	printf("%d passed, %d failed, %d skipped\n", testlib_passed,
	       testlib_failed, testlib_skipped);
	return testlib_failed ? 1 : 0;
}

#endif
