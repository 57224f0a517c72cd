/*
 * parse_bench: what the chart engine's own readers save over the chosen
 * libraries alone (docs/CHART_ENGINE.md, "Hand-written parts beside chosen
 * libraries"). On the files of a real chart, interleaved in one run:
 *   YAML: cv_from_yaml() (yamlfast.c straight into values, libyaml when it
 *         declines) against libyaml + jansson (yaml_to_json, then
 *         cv_from_jansson: the path without yamlfast);
 *   JSON: cv_from_json() (the engine's reader, jansson on anything unusual)
 *         against json_loadb + cv_from_jansson (jansson alone).
 * Prints the median time per file of each and their ratio.
 *
 * Usage: parse_bench [-n RUNS] [CHART.tgz]   (default: cilium-1.18.3.tgz in
 * $FERRY_SHARED/charts)
 */
#define _GNU_SOURCE
#include "server/chart/archive.h"
#include "server/chart/cv.h"
#include "server/common/buf.h"
#include "server/common/yamljson.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* one parse of text by way k (0 = ferry's reader, 1 = the library alone) */
static int parse(int json, int k, const char *text, size_t len)
{
	char err[512];
	struct cv_arena *a = cv_arena_new();
	cv v;
	int rc = 0;
	if (k == 0) {
		rc = json ? cv_from_json(a, text, len, &v, 0, err, sizeof(err))
			  : cv_from_yaml(a, text, len, &v, err, sizeof(err));
	} else {
		json_t *j = json ? json_loadb(text, len, JSON_DECODE_ANY, NULL) : yaml_to_json(text, len, err, sizeof(err));
		if (!j)
			rc = -1;
		else
			v = cv_from_jansson(a, j, 0);
		json_decref(j);
	}
	cv_arena_free(a);
	return rc;
}

int main(int argc, char **argv)
{
	int runs = 101;
	const char *path = NULL;
	char def[1200];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			runs = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
		else
			path = argv[i];
	}
	if (!path) {
		const char *s = getenv("FERRY_SHARED");
		snprintf(def, sizeof(def), "%s/charts/cilium-1.18.3.tgz", s && *s ? s : "../shared");
		path = def;
	}
	size_t len;
	char *gz = read_file_all(path, &len);
	struct archive ar;
	char err[512];
	if (!gz || archive_read_tgz(gz, len, &ar, err, sizeof(err))) {
		fprintf(stderr, "parse_bench: cannot read %s\n", path);
		return 1;
	}
	static const char *const files[] = { "values.yaml", "Chart.yaml", "values.schema.json", NULL };
	double *t[2] = { calloc((size_t)runs, sizeof(double)), calloc((size_t)runs, sizeof(double)) };
	double total[2] = { 0, 0 };
	int bad = 0;
	for (int f = 0; files[f]; f++) {
		const struct archive_entry *e = NULL;
		for (size_t i = 0; i < ar.n; i++)
			if (!strcmp(ar.e[i].name, files[f]))
				e = &ar.e[i];
		if (!e)
			continue;
		int json = strstr(files[f], ".json") != NULL;
		for (int r = 0; r < runs; r++)
			for (int s = 0; s < 2; s++) {
				int k = (r + s) % 2;   /* alternate which goes first */
				double t0 = now();
				bad |= parse(json, k, e->data, e->len);
				t[k][r] = now() - t0;
			}
		double m[2];
		for (int k = 0; k < 2; k++) {
			qsort(t[k], (size_t)runs, sizeof(double), cmp_double);
			m[k] = t[k][runs / 2] * 1e3;
			total[k] += m[k];
		}
		printf("| %s (%zu bytes) | %s | %.3f ms | %.3f ms | %.2fx |\n", files[f], e->len,
		       json ? "ferry JSON reader / jansson" : "yamlfast / libyaml + jansson", m[0], m[1], m[1] / m[0]);
	}
	printf("| all three | | %.3f ms | %.3f ms | %.2fx |\n", total[0], total[1], total[1] / total[0]);
	archive_free(&ar);
	free(gz);
	free(t[0]);
	free(t[1]);
	return bad;
}
