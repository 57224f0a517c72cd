/*
 * phase_common.c: what every install phase does the same way: set up the
 * client and the retrying ops, read the cluster's profile and the facts an
 * earlier phase recorded, classify failures, and apply one object while
 * telling created / changed / unchanged apart (the basis of dry runs and of
 * "a second install changes nothing").
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/phases.h"
#include "db/releases.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/install/preflight_rules.h"
#include "server/kube/client.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int should_abort(void *arg)
{
	return runner_should_abort((const struct runner_ctx *)arg);
}

static double env_double(const char *name, double dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	double d = strtod(v, &end);
	return *end ? dflt : d;
}

json_t *install_phase_detail(struct runner_ctx *ctx, const char *phase)
{
	const char *p[2] = { ctx->job->id, phase };
	PGresult *r = PQexecParams(ctx->conn,
		"SELECT detail::text FROM job_phases WHERE job_id = $1::uuid AND name = $2 "
		"AND detail IS NOT NULL ORDER BY seq LIMIT 1",
		2, NULL, p, NULL, NULL, 0);
	json_t *out = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		out = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	PQclear(r);
	if (out && !json_is_object(out)) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

static int read_profile(struct runner_ctx *ctx, enum profile_kind *kind)
{
	const char *p[1] = { ctx->job->cluster_id };
	PGresult *r = PQexecParams(ctx->conn, "SELECT profile FROM clusters WHERE id = $1::uuid",
				   1, NULL, p, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = profile_parse(PQgetvalue(r, 0, 0), kind);
	PQclear(r);
	return rc;
}

enum phase_rc install_run_begin(struct runner_ctx *ctx, struct install_run *run)
{
	memset(run, 0, sizeof(*run));
	run->ctx = ctx;
	run->params = ctx->job->params;
	run->dry_run = json_is_true(json_object_get(run->params, "dry_run"));
	run->release = INSTALL_RELEASE_NAME;
	if (read_profile(ctx, &run->profile) < 0) {
		snprintf(ctx->message, sizeof ctx->message, "cannot read the cluster's profile");
		return PHASE_RETRY;
	}
	run->ns = profile_release_namespace(run->profile);
	if (db_release_namespace_for_job(ctx->conn, ctx->job, run->ns_buf, sizeof run->ns_buf) == 1)
		run->ns = run->ns_buf;
	run->kc = runner_kube(ctx);
	if (!run->kc)
		return PHASE_FAIL;   /* runner_kube() wrote the message */
	double qps = env_double("FERRY_KUBE_QPS", 50);
	struct kube_ops_opts o = {
		.deadline_ms = (long)env_double("FERRY_KUBE_RETRY_DEADLINE_MS", 60000),
		.qps = qps,
		.burst = (int)(qps * 2),
		.rate_key = ctx->job->cluster_id,
		.should_abort = should_abort,
		.abort_arg = ctx,
	};
	run->ops = kube_ops_new(run->kc, &o);
	kube_ops_set_dry_run(run->ops, run->dry_run);
	run->preflight = install_phase_detail(ctx, "preflight");
	if (!run->preflight)
		run->preflight = json_object();
	const json_t *records = json_object_get(run->preflight, "release_records");
	run->first_install = !run->dry_run && json_is_integer(records) && json_integer_value(records) == 0 &&
			     ctx->job->attempt <= 1 && ctx->phase_attempt <= 1;
	return PHASE_OK;
}

void install_run_end(struct install_run *run)
{
	if (run->ops && run->ctx && json_is_object(run->ctx->detail)) {
		/* Where the phase's time went (BENCHMARKS.md "Install"). */
		json_t *t = json_pack("{s:I, s:I, s:I}", "api_ms", (json_int_t)kube_ops_api_ms(run->ops),
				      "backoff_ms", (json_int_t)kube_ops_backoff_ms(run->ops),
				      "retries", (json_int_t)kube_ops_retries(run->ops));
		json_object_set_new(run->ctx->detail, "timing", t);
	}
	kube_ops_free(run->ops);
	json_decref(run->preflight);
	json_decref(run->dry_namespaces);
	run->dry_namespaces = NULL;
	run->ops = NULL;
	run->preflight = NULL;
}

enum phase_rc install_call_failed(struct install_run *run, int status, const char *what)
{
	const char *e = kube_ops_error(run->ops);
	snprintf(run->ctx->message, sizeof run->ctx->message, "%s: %s", what,
		 e && *e ? e : (status < 0 ? "no response" : "unexpected answer"));
	if (runner_should_abort(run->ctx))
		return PHASE_ABORT;
	if (status < 0 || status == 429 || status >= 500)
		return PHASE_RETRY;
	return PHASE_FAIL;
}

json_t *install_result_obj(struct runner_ctx *ctx, const char *key)
{
	json_t *o = json_object_get(ctx->result, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(ctx->result, key, o);
	}
	return o;
}

void install_record_object(struct install_run *run, const json_t *obj, const char *action,
			   const json_t *fields)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "kind", kind ? kind : "",
				"namespace", ns ? ns : "", "name", name ? name : "",
				"action", action);
	if (fields && json_array_size(fields))
		json_object_set(rec, "fields", (json_t *)fields);
	json_t *list = json_object_get(run->ctx->detail, "objects");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(run->ctx->detail, "objects", list);
	}
	json_array_append(list, rec);
	if (run->dry_run) {
		json_t *dr = install_result_obj(run->ctx, "dry_run");
		json_t *objs = json_object_get(dr, "objects");
		if (!json_is_array(objs)) {
			objs = json_array();
			json_object_set_new(dr, "objects", objs);
		}
		json_object_set_new(rec, "phase", json_string(run->ctx->phase ? run->ctx->phase : ""));
		json_array_append(objs, rec);
	}
	json_decref(rec);
}

int install_apply(struct install_run *run, const json_t *obj, const char **action, json_t *fields)
{
	char *coll = NULL, *item = NULL;
	*action = "failed";
	if (kube_ops_object_paths(run->ops, obj, run->ns, &coll, &item) < 0)
		return 400;
	json_t *live = NULL, *after = NULL, *conflicts = NULL;
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	int st;
	if (run->dry_run && ns && json_object_get(run->dry_namespaces, ns)) {
		/* Its namespace exists only in this dry run. */
		*action = "created";
		st = 201;
		goto out;
	}
	if (run->first_install) {
		/* Server-side apply answers 201 when it created the object; the
		 * object it answers is not needed (nor parsed). */
		st = kube_ops_apply(run->ops, item, obj, 1, NULL, &conflicts);
		if (st >= 200 && st < 300)
			*action = st == 201 ? "created" : "changed";
		goto out;
	}
	st = kube_ops_get(run->ops, item, &live);
	if (st != 200 && st != 404)
		goto out;
	st = kube_ops_apply(run->ops, item, obj, 1, &after, &conflicts);
	if (st < 200 || st >= 300)
		goto out;
	if (!live) {
		*action = "created";
		const char *name = json_string_value(json_object_get(meta, "name"));
		if (run->dry_run && kind && !strcmp(kind, "Namespace") && name) {
			if (!run->dry_namespaces)
				run->dry_namespaces = json_object();
			json_object_set_new(run->dry_namespaces, name, json_true());
		}
	} else {
		json_t *paths = fields ? fields : json_array();
		long n = kube_ops_diff(live, after, paths, 50);
		*action = n ? "changed" : "unchanged";
		if (!fields)
			json_decref(paths);
	}
out:
	json_decref(live);
	json_decref(after);
	json_decref(conflicts);
	free(coll);
	free(item);
	return st;
}

enum phase_rc install_ensure_namespace(struct install_run *run)
{
	char path[320];
	snprintf(path, sizeof path, "/api/v1/namespaces/%s", run->ns);
	json_t *live = NULL;
	int st = kube_ops_get(run->ops, path, &live);
	json_decref(live);
	if (st == 200)
		return PHASE_OK;
	if (st != 404)
		return install_call_failed(run, st, "read the release namespace");
	/* As `helm install --create-namespace` makes it: label name=<ns>, no
	 * Helm ownership annotations, so no uninstall or prune of the release
	 * ever deletes it (the API server adds kubernetes.io/metadata.name). */
	json_t *nsobj = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace",
				  "metadata", "name", run->ns, "labels", "name", run->ns);
	st = kube_ops_create(run->ops, "/api/v1/namespaces", nsobj, NULL);
	if (st == 409)   /* created meanwhile (a retry, or by hand) */
		st = 201;
	if (st >= 200 && st < 300) {
		install_record_object(run, nsobj, "created", NULL);
		runner_event(run->ctx, "info", "%snamespace %s created (as helm --create-namespace)",
			     run->dry_run ? "dry run: " : "", run->ns);
		if (run->dry_run) {
			if (!run->dry_namespaces)
				run->dry_namespaces = json_object();
			json_object_set_new(run->dry_namespaces, run->ns, json_true());
		}
	}
	json_decref(nsobj);
	if (st < 200 || st >= 300)
		return install_call_failed(run, st, "create the release namespace");
	return PHASE_OK;
}

static double mono_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void install_wait_start(struct waitlog *w, const char *what, long timeout_ms)
{
	waitlog_start(w, what, timeout_ms, mono_now_ms());
}

void install_wait_tick(struct install_run *run, struct waitlog *w, const char *state)
{
	char line[600];
	if (waitlog_due(w, mono_now_ms(), state, line, sizeof line))
		runner_event(run->ctx, "info", "%s", line);
}

long install_count_nodes(struct install_run *run)
{
	json_t *items = NULL;
	int st = kube_ops_list(run->ops, "/api/v1/nodes", NULL, NULL, 500, &items);
	long n = -1;
	if (st == 200) {
		n = 0;
		size_t i;
		const json_t *node;
		json_array_foreach(items, i, node)
			if (!preflight_node_is_virtual(node))
				n++;
	}
	json_decref(items);
	return n;
}
