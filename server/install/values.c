/*
 * values.c: layer the install's values and hand them to the chart
 * engine's coalescing (chart_values_merge), which also parses --set.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/values.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"
#include "server/common/yamljson.h"
#include "db/releases.h"
#include "server/install/phases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *install_chart_version(const json_t *params)
{
	const char *v = json_string_value(json_object_get(params, "chart_version"));
	return v && *v ? v : INSTALL_DEFAULT_CHART_VERSION;
}

json_t *install_values_build(const struct install_values_in *in, char *err, size_t errlen)
{
	json_t *layers[64];
	size_t n = 0;
	const char **sets = NULL;
	json_t *out = NULL;
	struct profile_inputs pin = { in->k8s_service_host, in->k8s_service_port, in->params,
				      in->chart_version };
	layers[n] = profile_values(in->profile, &pin, err, errlen);
	if (!layers[n])
		return NULL;
	n++;
	if (json_is_true(json_object_get(in->params, "image_mirror")))
		layers[n++] = profile_image_mirror_values(in->chart_defaults);
	if (json_is_object(in->previous))
		layers[n++] = json_deep_copy(in->previous);
	const json_t *user = json_object_get(in->params, "values_yaml");
	if (user && !json_is_array(user)) {
		snprintf(err, errlen, "values_yaml must be a list of YAML strings");
		goto out;
	}
	size_t i;
	const json_t *y;
	json_array_foreach(user, i, y) {
		if (n >= sizeof(layers) / sizeof(layers[0]) - 1) {
			snprintf(err, errlen, "too many values layers (at most %zu)",
				 sizeof(layers) / sizeof(layers[0]) - 2);
			goto out;
		}
		const char *text = json_string_value(y);
		if (!text) {
			snprintf(err, errlen, "values_yaml[%zu] is not a string", i);
			goto out;
		}
		char yerr[256];
		/* Helm's typing: YAML 1.1 booleans, every number a float64. */
		json_t *v = chart_values_parse(text, strlen(text), yerr, sizeof yerr);
		if (!v) {
			snprintf(err, errlen, "values_yaml[%zu]: %s", i, yerr);
			goto out;
		}
		if (json_is_null(v)) {
			json_decref(v);
			continue;
		}
		if (!json_is_object(v)) {
			json_decref(v);
			snprintf(err, errlen, "values_yaml[%zu] is not a mapping", i);
			goto out;
		}
		layers[n++] = v;
	}
	const json_t *set = json_object_get(in->params, "set");
	if (set && !json_is_array(set)) {
		snprintf(err, errlen, "set must be a list of \"key=value\" strings");
		goto out;
	}
	sets = xcalloc(json_array_size(set) + 1, sizeof(*sets));
	json_array_foreach(set, i, y) {
		sets[i] = json_string_value(y);
		if (!sets[i]) {
			snprintf(err, errlen, "set[%zu] is not a string", i);
			goto out;
		}
	}
	char merr[512] = "";
	out = chart_values_merge((const json_t *const *)layers, n, sets, NULL, NULL, merr, sizeof merr);
	if (!out)
		snprintf(err, errlen, "values: %s", merr);
out:
	for (size_t k = 0; k < n; k++)
		json_decref(layers[k]);
	free(sets);
	return out;
}

int install_values_reuse(const json_t *params)
{
	if (json_is_true(json_object_get(params, "reset_values")))
		return 0;
	if (json_is_true(json_object_get(params, "reuse_values")) ||
	    json_is_true(json_object_get(params, "reset_then_reuse_values")))
		return 1;
	return json_array_size(json_object_get(params, "values_yaml")) == 0 &&
	       json_array_size(json_object_get(params, "set")) == 0;
}

/* The user values of the cluster's newest deployed revision (new
 * reference) or NULL. */
static json_t *previous_values(struct install_run *run)
{
	char err[256];
	json_t *list = db_release_list_for_job(run->ctx->conn, run->ctx->job, err, sizeof err);
	json_t *out = NULL;
	size_t i;
	const json_t *r;
	json_array_foreach(list, i, r) {
		const char *st = json_string_value(json_object_get(r, "status"));
		if (st && !strcmp(st, "deployed")) {
			json_t *full = db_release_get_for_job(run->ctx->conn, run->ctx->job,
				(int)json_integer_value(json_object_get(r, "revision")), err, sizeof err);
			out = json_incref(json_object_get(full, "values"));
			json_decref(full);
			break;
		}
	}
	json_decref(list);
	return out;
}

json_t *install_user_values(struct install_run *run, const json_t *chart_defaults,
			    char *err, size_t errlen)
{
	json_t *previous = install_values_reuse(run->params) ? previous_values(run) : NULL;
	const json_t *port = json_object_get(run->preflight, "k8s_service_port");
	struct install_values_in in = {
		.profile = run->profile,
		.params = run->params,
		.k8s_service_host = json_string_value(json_object_get(run->preflight, "k8s_service_host")),
		.k8s_service_port = json_is_integer(port) ? (int)json_integer_value(port) : 0,
		.chart_version = install_chart_version(run->params),
		.chart_defaults = chart_defaults,
		.previous = previous,
	};
	json_t *out = install_values_build(&in, err, errlen);
	json_decref(previous);
	return out;
}
