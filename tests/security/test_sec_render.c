/*
 * test_sec_render: a chart's templates are untrusted (a tenant can upload
 * one), so a render is a bounded, cancellable computation (issue 13,
 * finding 1). Each case fails before the budget existed:
 *
 *  - the printf doubling bomb stops at the memory / result-size limit with
 *    an error naming the limit and the template position, and this
 *    process's peak RSS stays below a bound;
 *  - a long loop stops at the wall-time limit, and so do 200 genPrivateKey
 *    calls (key generation counts);
 *  - should_stop (cancel, SIGTERM) ends a running render within a second;
 *  - the step limit and Helm's include recursion limit hold;
 *  - every real Cilium chart in ../shared/charts renders with the default
 *    limits divided by 4 (the recorded headroom), and the usage is printed
 *    for docs/SECURITY.md;
 *  - the engine at its depth limits (values.yaml nested 1,990 deep, then
 *    through toYaml/toJson/deepCopy/merge; template recursion to its depth
 *    limit, include recursion, 499 nested actions and parentheses) fits a
 *    job thread's stack (server/worker.h, WORKER_STACK_DEFAULT_KB): the
 *    chart is loaded (its YAML parsed, recursively) on a thread of that
 *    size, as a job does; the render itself switches to its own stack
 *    (chart.c). A stack overflow would crash the test.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/chart/chart.h"
#include "server/worker.h"
#include "tests/unit/testlib.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static struct chart *mini_chart(const char *tmpl)
{
	const char *names[] = { "Chart.yaml", "values.yaml", "templates/bomb.yaml" };
	const char *contents[] = { "apiVersion: v2\nname: evil\nversion: 1.0.0\n", "{}\n", tmpl };
	char err[512];
	struct chart *c = chart_load_files(names, contents, 3, err, sizeof err);
	if (!c)
		printf("chart_load_files: %s\n", err);
	return c;
}

/* Render; returns the error text (static) or NULL on success. */
static const char *render(const char *tmpl, struct chart_render_opts *o, double *ms)
{
	static char err[2048];
	struct chart *c = mini_chart(tmpl);
	if (!c)
		return "chart did not load";
	json_t *vals = json_object();
	o->release_name = "r";
	o->namespace_ = "default";
	double t0 = now_ms();
	struct chart_render *rd = chart_render(c, vals, o, err, sizeof err);
	if (ms)
		*ms = now_ms() - t0;
	json_decref(vals);
	chart_free(c);
	if (rd) {
		chart_render_free(rd);
		return NULL;
	}
	return err;
}

static long peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

#define BOMB "{{ $s := \"aaaa\" }}{{ range until 40 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}{{ $s }}\n"

static void t_bomb_default_limits(void)
{
	struct chart_render_opts o = { 0 };
	double ms;
	const char *e = render(BOMB, &o, &ms);
	check(e != NULL);
	if (!e)
		return;
	printf("   bomb (defaults): %.0f ms, peak RSS %ld MiB: %.200s\n", ms, peak_rss_mb(), e);
	check(strstr(e, "limit max_") != NULL);
	check(strstr(e, "evil/templates/bomb.yaml:1:") != NULL);   /* the position */
	/* 64 MiB result cap, 256 MiB arena: far below the 9 GB of the finding
	 * (ASan's shadow memory included). */
	check(peak_rss_mb() < 2048);
}

static void t_bomb_memory_limit(void)
{
	struct chart_render_opts o = { .max_memory = 32u << 20, .max_output = 1u << 30 };
	const char *e = render(BOMB, &o, NULL);
	check(e && strstr(e, "limit max_memory") && strstr(e, "32 MiB"));
}

static void t_time_limit(void)
{
	struct chart_render_opts o = { .max_ms = 300, .max_steps = 1L << 40 };
	double ms;
	const char *e = render("{{ range until 100000000 }}{{ sha256sum \"x\" }}{{ end }}\n", &o, &ms);
	check(e && strstr(e, "limit max_time"));
	check(ms < 1300);
}

static void t_keygen_counts(void)
{
	struct chart_render_opts o = { .max_ms = 500 };
	double ms;
	const char *e = render("{{ range until 200 }}{{ genPrivateKey \"rsa\" | len }}{{ end }}\n", &o, &ms);
	check(e && strstr(e, "limit max_time"));
	printf("   200 x genPrivateKey rsa with a 500 ms limit: stopped after %.0f ms\n", ms);
	check(ms < 5000);   /* one RSA-4096 generation past the limit at most */
}

static int stop_after;   /* ms since start at which should_stop says yes */
static double stop_t0;
static int stop_cb(void *ctx)
{
	(void)ctx;
	return now_ms() - stop_t0 > stop_after;
}

static void t_should_stop(void)
{
	struct chart_render_opts o = { .should_stop = stop_cb, .max_steps = 1L << 40, .max_ms = 600000 };
	stop_after = 200;
	stop_t0 = now_ms();
	double ms;
	const char *e = render("{{ range until 100000000 }}{{ $x := add 1 2 }}{{ end }}\n", &o, &ms);
	check(e && strstr(e, "cancelled or the server is stopping"));
	check(ms < 1200);   /* within a second of the request */
	stop_t0 = now_ms();
	e = render("{{ range until 100 }}{{ $ca := genCA \"x\" 1 }}{{ genPrivateKey \"rsa\" | len }}{{ end }}\n", &o, &ms);
	check(e && strstr(e, "cancelled"));
	if (e)
		printf("   key generation loop stopped after %.0f ms: %.160s\n", ms, e);
	check(ms < 1500);
}

static void t_steps_and_recursion(void)
{
	struct chart_render_opts o = { .max_steps = 100000 };
	const char *e = render("{{ range until 1000000 }}x{{ end }}\n", &o, NULL);
	check(e && strstr(e, "limit max_steps"));
	/* the usage counter counts what the limit counts */
	struct chart_render_usage u = { 0 };
	struct chart_render_opts ou = { .usage = &u };
	check(render("{{ range until 1000 }}x{{ end }}\n", &ou, NULL) == NULL);
	check(u.steps >= 1000 && u.steps <= 5000);
	check(u.output >= 1000 && u.output < 1100);
	struct chart_render_opts o2 = { 0 };
	e = render("{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}\n", &o2, NULL);
	check(e != NULL);
	check(e && (strstr(e, "nested reference") || strstr(e, "depth")));
}

static void t_real_charts_headroom(void)
{
	const char *shared = getenv("FERRY_SHARED");
	const char *vers[] = { "1.12.0", "1.15.1", "1.18.2", "1.18.3" };
	int rendered = 0;
	for (size_t i = 0; i < 4; i++) {
		char path[1024], err[1024];
		snprintf(path, sizeof path, "%s/charts/cilium-%s.tgz", shared ? shared : "../shared", vers[i]);
		struct chart *c = chart_load(path, err, sizeof err);
		if (!c)
			continue;
		/* the chart's defaults, and most features on (hubble relay and
		 * UI with TLS certificates generated by the chart: key
		 * generation, the heaviest render ferry runs) */
		const char *layers[2] = { "{}",
			"{\"hubble\": {\"enabled\": true, \"relay\": {\"enabled\": true}, \"ui\": {\"enabled\": true},"
			" \"tls\": {\"auto\": {\"method\": \"helm\"}}}, \"envoy\": {\"enabled\": true},"
			" \"l2announcements\": {\"enabled\": true}, \"bgpControlPlane\": {\"enabled\": true},"
			" \"clustermesh\": {\"useAPIServer\": true}, \"prometheus\": {\"enabled\": true}}" };
		for (int l = 0; l < 2; l++) {
			struct chart_render_usage u = { 0 };
			/* a quarter of every default: the headroom is at least 4x */
			struct chart_render_opts o = {
				.release_name = "cilium", .namespace_ = "kube-system",
				.max_steps = CHART_DEFAULT_MAX_STEPS / 4, .max_output = CHART_DEFAULT_MAX_OUTPUT / 4,
				.max_memory = CHART_DEFAULT_MAX_MEMORY / 4, .max_ms = CHART_DEFAULT_MAX_MS / 4,
				.usage = &u,
			};
			json_t *vals = json_loads(layers[l], 0, NULL);
			double t0 = now_ms();
			struct chart_render *rd = chart_render(c, vals, &o, err, sizeof err);
			double ms = now_ms() - t0;
			check(rd != NULL);
			if (!rd)
				printf("   cilium %s: %s\n", vers[i], err);
			printf("   cilium %s (%s): %ld steps, %zu KiB arena, largest output %zu KiB, %.0f ms\n",
			       vers[i], l ? "features on" : "defaults", u.steps, u.memory >> 10, u.output >> 10, ms);
			chart_render_free(rd);
			json_decref(vals);
		}
		chart_free(c);
		rendered++;
	}
	if (!rendered)
		printf("SKIP: sec_render_real_charts_headroom: no charts in ../shared/charts\n");
	check(rendered == 0 || rendered == 4);
}

/* open x n, mid, close x n (malloc'd). */
static char *nested(const char *open, const char *mid, const char *close, int n)
{
	size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
	char *s = malloc((size_t)n * (lo + lc) + lm + 1), *p = s;
	for (int i = 0; i < n; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, mid, lm);
	p += lm;
	for (int i = 0; i < n; i++, p += lc)
		memcpy(p, close, lc);
	*p = 0;
	return s;
}

struct deep_case {
	const char *values, *tmpl;
	const char *result;    /* NULL = rendered, else the error */
	char err[1024];
};

static void *deep_render(void *arg)
{
	struct deep_case *dc = arg;
	const char *names[] = { "Chart.yaml", "values.yaml", "templates/deep.yaml" };
	const char *contents[] = { "apiVersion: v2\nname: deep\nversion: 1.0.0\n", dc->values, dc->tmpl };
	struct chart *c = chart_load_files(names, contents, 3, dc->err, sizeof dc->err);
	if (!c) {
		dc->result = dc->err;
		return NULL;
	}
	json_t *vals = json_object();
	struct chart_render_opts o = { .release_name = "r", .namespace_ = "default" };
	struct chart_render *rd = chart_render(c, vals, &o, dc->err, sizeof dc->err);
	dc->result = rd ? NULL : dc->err;
	chart_render_free(rd);
	json_decref(vals);
	chart_free(c);
	return NULL;
}

/* Render on a thread with a job thread's stack; the outcome in dc. */
static int deep_on_worker_stack(struct deep_case *dc)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, worker_stack_bytes(0));
	pthread_t t;
	int ok = pthread_create(&t, &a, deep_render, dc) == 0;
	if (ok)
		pthread_join(t, NULL);
	pthread_attr_destroy(&a);
	return ok;
}

static void t_depth_limits_fit_worker_stack(void)
{
	char *deep_map = nested("{a: ", "1", "}", 1990);
	char *values = malloc(strlen(deep_map) + 8);
	sprintf(values, "d: %s\n", deep_map);
	char *ifs = nested("{{ if true }}", "x", "{{ end }}", 499);
	char *parens = nested("(", "1", ")", 499);
	char *ptmpl = malloc(strlen(parens) + 16);
	sprintf(ptmpl, "{{ %s }}\n", parens);
	struct deep_case cases[] = {
		{ values, "{{ toYaml .Values | len }} {{ toJson .Values | len }}"
			  "{{ $c := deepCopy .Values }}{{ $m := merge (dict) $c .Values }}{{ $m | len }}\n", NULL, "" },
		{ "{}\n", "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}\n", NULL, "" },
		{ "{}\n", "{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}\n", NULL, "" },
		{ "{}\n", ifs, NULL, "" },
		{ "{}\n", ptmpl, NULL, "" },
		{ "{}\n", "{{ $d := dict }}{{ range until 50000 }}{{ $d = dict \"a\" $d }}{{ end }}"
			   "{{ toJson $d | len }} {{ toYaml $d | len }}\n", NULL, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		check(deep_on_worker_stack(&cases[i]));
		printf("   case %zu on a %zu kB stack: %.120s\n", i, worker_stack_bytes(0) >> 10,
		       cases[i].result ? cases[i].result : "rendered");
	}
	/* the deep values and the nesting render; the recursions stop at
	 * their limits with an error */
	check(cases[0].result == NULL);
	check(cases[1].result && strstr(cases[1].result, "depth"));
	check(cases[2].result && strstr(cases[2].result, "error calling include"));
	check(cases[3].result == NULL);
	check(cases[4].result == NULL);
	free(deep_map), free(values), free(ifs), free(parens), free(ptmpl);
}

int main(void)
{
	test_run("sec_render_bomb_default_limits", t_bomb_default_limits);
	test_run("sec_render_memory_limit", t_bomb_memory_limit);
	test_run("sec_render_time_limit", t_time_limit);
	test_run("sec_render_keygen_counts_against_time", t_keygen_counts);
	test_run("sec_render_should_stop_within_a_second", t_should_stop);
	test_run("sec_render_steps_and_recursion", t_steps_and_recursion);
	test_run("sec_render_real_charts_headroom", t_real_charts_headroom);
	test_run("sec_render_depth_limits_fit_worker_stack", t_depth_limits_fit_worker_stack);
	return test_summary();
}
