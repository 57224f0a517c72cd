/*
 * ferry: the command-line program.
 *
 *   ferry template CHART [-f values.yaml]... [--set k=v]... [--set-string k=v]...
 *                  [--set-json k=json]... [--kube-version v] [--api-versions g/v]...
 *                  [--namespace ns] [--name release] [--output yaml|json]
 *
 * renders a chart like `helm template` with the server's chart engine
 * (server/chart). Other subcommands may be added by other modules; each one
 * is a function in the table below. Errors go to stderr, exit status 1.
 *
 * The pipeline commands (clusters, install, preflight, jobs: a REST client
 * of ferryd) live in server/cli/client.c (see client.h) and run as the
 * separate program ferry-client, installed next to ferry: ferry execs it for
 * those commands. Keeping libcurl out of this binary keeps `ferry template`
 * start-up short (the dynamic loader maps only the chart engine's libraries).
 */
#define _GNU_SOURCE
#include "server/chart/chart.h"
#include "server/cli/client.h"
#include "server/common/buf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* minor page faults so far (FERRY_TIMING): at about 1 us each they are a
 * visible part of a render's time */
static long minor_faults(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
	fputs("usage: ferry template [NAME] CHART [-f values.yaml]... [--set k=v]... [--set-string k=v]...\n"
	      "                      [--set-json k=json]... [--kube-version v] [--api-versions g/v]...\n"
	      "                      [--namespace ns] [--name release] [--output yaml|json]\n"
	      "                      [--skip-schema-validation]\n", f);
}

struct strlist { const char **v; size_t n, cap; };
static void sl_push(struct strlist *l, const char *s)
{
	if (l->n + 1 >= l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(char *));
	}
	l->v[l->n++] = s;
	l->v[l->n] = NULL;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char tmp[65536];
	size_t r;
	while ((r = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, r);
	if (f != stdin)
		fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

/* --flag value or --flag=value */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t nl = strlen(name);
	if (!strncmp(argv[*i], name, nl) && argv[*i][nl] == '=')
		return argv[*i] + nl + 1;
	if (!strcmp(argv[*i], name)) {
		if (*i + 1 >= argc)
			return NULL;
		return argv[++*i];
	}
	return NULL;
}

static int cmd_template(int argc, char **argv)
{
	struct strlist files = { 0 }, sets = { 0 }, set_strings = { 0 }, set_jsons = { 0 }, apis = { 0 }, pos = { 0 };
	const char *kube = NULL, *ns = "default", *name = NULL, *output = "yaml";
	int skip_schema = 0;
	int rc = 1;
	for (int i = 1; i < argc; i++) {
		const char *v;
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--skip-schema-validation")) {
			skip_schema = 1;
			continue;
		}
		if ((v = opt_value(argc, argv, &i, "-f")) || (v = opt_value(argc, argv, &i, "--values")))
			sl_push(&files, v);
		else if ((v = opt_value(argc, argv, &i, "--set")))
			sl_push(&sets, v);
		else if ((v = opt_value(argc, argv, &i, "--set-string")))
			sl_push(&set_strings, v);
		else if ((v = opt_value(argc, argv, &i, "--set-json")))
			sl_push(&set_jsons, v);
		else if ((v = opt_value(argc, argv, &i, "--kube-version")))
			kube = v;
		else if ((v = opt_value(argc, argv, &i, "--api-versions")) || (v = opt_value(argc, argv, &i, "-a")))
			sl_push(&apis, v);
		else if ((v = opt_value(argc, argv, &i, "--namespace")) || (v = opt_value(argc, argv, &i, "-n")))
			ns = v;
		else if ((v = opt_value(argc, argv, &i, "--name")))
			name = v;
		else if ((v = opt_value(argc, argv, &i, "--output")) || (v = opt_value(argc, argv, &i, "-o")))
			output = v;
		else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "Error: unknown or incomplete flag %s\n", a);
			usage(stderr);
			goto out;
		} else
			sl_push(&pos, a);
	}
	if (pos.n < 1 || pos.n > 2) {
		usage(stderr);
		goto out;
	}
	const char *chart_path = pos.v[pos.n - 1];
	if (pos.n == 2)
		name = pos.v[0];
	if (!name)
		name = "release-name";
	if (strcmp(output, "yaml") && strcmp(output, "json")) {
		fprintf(stderr, "Error: --output must be yaml or json\n");
		goto out;
	}
	char err[4096];
	int timing = getenv("FERRY_TIMING") != NULL;
	double t0 = now_ms();
	long f0 = minor_faults();
	json_t **layers = xcalloc(files.n + 1, sizeof(json_t *));
	for (size_t i = 0; i < files.n; i++) {
		size_t len;
		char *data = slurp(files.v[i], &len);
		if (!data) {
			fprintf(stderr, "Error: open %s: cannot read\n", files.v[i]);
			goto free_layers;
		}
		layers[i] = chart_values_parse(data, len, err, sizeof(err));
		free(data);
		if (!layers[i]) {
			fprintf(stderr, "Error: failed to parse %s: %s\n", files.v[i], err);
			goto free_layers;
		}
	}
	json_t *user = chart_values_merge((const json_t *const *)layers, files.n, sets.v, set_strings.v, set_jsons.v,
					  err, sizeof(err));
	if (!user) {
		fprintf(stderr, "Error: %s\n", err);
		goto free_layers;
	}
	double t1 = now_ms();
	long f1 = minor_faults();
	struct chart *c = chart_load(chart_path, err, sizeof(err));
	double t2 = now_ms();
	long f2 = minor_faults();
	if (!c) {
		fprintf(stderr, "Error: %s\n", err);
		json_decref(user);
		goto free_layers;
	}
	struct chart_render_opts o = { 0 };
	o.release_name = name;
	o.namespace_ = ns;
	o.kube_version = kube;
	o.api_versions = apis.v;
	o.revision = 1;
	o.skip_schema_validation = skip_schema;
	struct chart_render *r = chart_render(c, user, &o, err, sizeof(err));
	double t3 = now_ms();
	if (timing)
		fprintf(stderr, "values %.2f ms, load %.2f ms, render %.2f ms (minor faults: %ld before, %ld, %ld, %ld)\n",
			t1 - t0, t2 - t1, t3 - t2, f0, f1 - f0, f2 - f1, minor_faults() - f2);
	if (!r) {
		fprintf(stderr, "Error: %s\n", err);
	} else {
		if (!strcmp(output, "json")) {
			json_t *all = json_array();
			const json_t *lists[2] = { chart_render_documents(r), chart_render_hooks(r) };
			for (int k = 0; k < 2; k++) {
				size_t i;
				json_t *d;
				json_array_foreach(lists[k], i, d) {
					json_t *obj = json_object_get(d, "object");
					if (obj && !json_is_null(obj))
						json_array_append(all, obj);
				}
			}
			char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
			puts(s);
			free(s);
			json_decref(all);
		} else {
			fputs(chart_render_output(r), stdout);
		}
#ifndef __SANITIZE_ADDRESS__
		/* a one-shot command: leave the clean-up to the kernel */
		if (fflush(stdout) == 0)
			exit(0);
#endif
		chart_render_free(r);
		rc = 0;
	}
	chart_free(c);
	json_decref(user);
free_layers:
	for (size_t i = 0; i < files.n; i++)
		json_decref(layers[i]);
	free(layers);
out:
	free(files.v); free(sets.v); free(set_strings.v); free(set_jsons.v); free(apis.v); free(pos.v);
	return rc;
}

static const struct { const char *name; int (*fn)(int, char **); } commands[] = {
	{ "template", cmd_template },
};

/* Runs ferry-client from the directory of this executable with the same
 * arguments; returns only on failure. */
static int exec_client(char **argv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "ferry: cannot find my own path: %s\n", strerror(errno));
		return 2;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	struct buf path = BUF_INIT;
	buf_append(&path, self, slash ? (size_t)(slash - self) : 0);
	buf_puts(&path, "/ferry-client");
	execv(path.data, argv);
	fprintf(stderr, "ferry: cannot run %s: %s\n", path.data, strerror(errno));
	buf_free(&path);
	return 2;
}

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		client_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("ferry %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	if (client_handles(argv[1]))
		return exec_client(argv);
	fprintf(stderr, "ferry: unknown command %s\n", argv[1]);
	usage(stderr);
	client_usage(stderr);
	return 2;
}
