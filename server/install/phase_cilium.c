/*
 * phase_cilium.c: `helm upgrade --install cilium` without helm.
 *
 * 1. Load the chart through chartsource.h (the tenant's uploaded chart,
 *    else the configured Helm repository (mirror first), else
 *    FERRY_CHARTS_DIR/cilium-<version>.tgz) and compute the user values
 *    (values.c).
 * 2. Read the release's Helm records to find the revision: 1 for a first
 *    install, last + 1 otherwise (an upgrade for the templates).
 * 3. Render with k8sServiceHost/Port from preflight, the cluster's
 *    version, and a live `lookup` (so certificates the chart generated on
 *    an earlier install are reused instead of regenerated).
 * 4. Apply every object in install order with server-side apply
 *    (fieldManager ferry, force), each carrying Helm's ownership tags, and
 *    note which were created, changed or unchanged.
 * 5. Record the release: a new revision "deployed" and the previous one
 *    "superseded" — unless nothing changed at all (same chart, same config,
 *    same manifest, every object unchanged): then the current revision
 *    stays, and a second install is a true no-op (zero writes).
 *    This is a deliberate difference from `helm upgrade --install`, which
 *    writes revision N+1 even when nothing changed: re-running a job must
 *    leave the cluster unchanged, and the records `helm history` shows stay
 *    meaningful. Any difference (chart version, config, rendered manifest,
 *    or an object that drifted and was re-applied) makes a new revision,
 *    exactly as helm upgrade would; first_deployed is carried over.
 *    (tests/integration/test_install_phases: install_second_run_no_changes,
 *    install_followups_upgrade.)
 * In a dry run the applies carry dryRun=All and no record is written; the
 *    per-object outcome goes to job.result.dry_run.objects.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/app.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"
#include "server/install/chartsource.h"
#include "server/install/phases.h"
#include "server/install/release.h"
#include "server/install/render_guard.h"
#include "server/install/values.h"
#include "server/kube/names.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* chart_render_opts.lookup: read a live object (empty object when absent). */
static json_t *live_lookup(void *arg, const char *api_version, const char *kind,
			   const char *ns, const char *name)
{
	struct install_run *run = arg;
	char *coll = NULL, *item = NULL;
	json_t *out = NULL;
	if (name && *name &&
	    kube_ops_paths(run->ops, api_version, kind, ns, name, &coll, &item) == 0)
		kube_ops_get(run->ops, item, &out);
	free(coll);
	free(item);
	return out ? out : json_object();
}

static void tag_for_helm(json_t *obj, const char *release, const char *ns)
{
	json_t *meta = json_object_get(obj, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	json_t *labels = json_object_get(meta, "labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(meta, "labels", labels);
	}
	json_object_set_new(labels, "app.kubernetes.io/managed-by", json_string("Helm"));
	json_t *ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	json_object_set_new(ann, "meta.helm.sh/release-name", json_string(release));
	json_object_set_new(ann, "meta.helm.sh/release-namespace", json_string(ns));
}

static const char *label_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

/* Find the latest record and the deployed one among the release Secrets. */
struct release_state {
	int latest;              /* highest revision, 0 = none */
	const char *latest_status;
	int latest_ours;
	const json_t *deployed;  /* Secret with status=deployed (highest) */
};

static void scan_records(const json_t *secrets, struct release_state *rs)
{
	memset(rs, 0, sizeof(*rs));
	int deployed_rev = 0;
	size_t i;
	const json_t *s;
	json_array_foreach(secrets, i, s) {
		const char *v = label_of(s, "version");
		const char *st = label_of(s, "status");
		int rev = v ? atoi(v) : 0;
		if (rev > rs->latest) {
			rs->latest = rev;
			rs->latest_status = st;
			const char *m = label_of(s, RELEASE_MANAGED_LABEL);
			rs->latest_ours = m && !strcmp(m, "true");
		}
		if (st && !strcmp(st, "deployed") && rev > deployed_rev) {
			deployed_rev = rev;
			rs->deployed = s;
		}
	}
}

static json_t *chart_metadata(const struct chart *ch)
{
	json_t *m = json_object();
	json_object_set_new(m, "name", json_string(chart_name(ch)));
	json_object_set_new(m, "version", json_string(chart_version(ch)));
	if (chart_app_version(ch))
		json_object_set_new(m, "appVersion", json_string(chart_app_version(ch)));
	json_object_set_new(m, "apiVersion", json_string("v2"));
	return m;
}

static const char *str_or_empty(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "";
}

/* Whether the deployed record already holds this config, manifest and
 * chart version. */
static int same_release(const json_t *prev, const json_t *values, const char *manifest,
			const char *version)
{
	const json_t *config = json_object_get(prev, "config");
	int same_config = config ? json_equal(config, values) : json_object_size(values) == 0;
	const json_t *pver = json_object_get(json_object_get(json_object_get(prev, "chart"), "metadata"),
					     "version");
	return same_config && !strcmp(str_or_empty(json_object_get(prev, "manifest")), manifest ? manifest : "") &&
	       !strcmp(str_or_empty(pver), version);
}

/* PUT a release record with a new status (superseded). */
static int restatus(struct install_run *run, const json_t *secret, const char *status)
{
	char err[256];
	json_t *rel = release_from_secret(secret, err, sizeof err);
	if (!rel) {
		runner_event(run->ctx, "warn", "cannot read the previous release record: %s", err);
		return 0;
	}
	json_object_set_new(json_object_get(rel, "info"), "status", json_string(status));
	json_t *sec = release_secret(rel, 0, (long long)time(NULL));
	const char *created = label_of(secret, "createdAt");
	if (created)
		json_object_set_new(json_object_get(json_object_get(sec, "metadata"), "labels"),
				    "createdAt", json_string(created));
	char *coll = NULL, *item = NULL;
	int st = kube_ops_object_paths(run->ops, sec, run->ns, &coll, &item) == 0
			 ? kube_ops_replace(run->ops, item, sec, NULL) : 400;
	free(coll), free(item);
	json_decref(sec), json_decref(rel);
	return st;
}

enum phase_rc phase_cilium(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	char err[1024] = "";
	struct chart *ch = NULL;
	struct chart_render *rd = NULL;
	json_t *values = NULL, *secrets = NULL, *prev = NULL, *meta = NULL, *rel = NULL;
	json_t *sec = NULL, *workloads = json_array();
	char *coll = NULL;
	const char *version = install_chart_version(run.params);
	struct chartsource_archive arc = { 0 };
	struct chartsource_cfg scfg;
	double t_resolve = mono_ms(), t_load = 0, t_render = 0, t_rendered = 0;
	chartsource_cfg_default(&scfg, ctx->app);
	int sst = chartsource_resolve(ctx->conn, ctx->job ? ctx->job->tenant_id : NULL, "cilium", version,
				      &scfg, &arc, err, sizeof err);
	if (sst != 0) {
		snprintf(ctx->message, sizeof ctx->message, "%.500s", err);
		rc = sst == -2 ? PHASE_RETRY : PHASE_FAIL;
		goto out;
	}
	t_load = mono_ms();
	ch = chart_load_archive(arc.data, arc.len, err, sizeof err);
	if (!ch) {
		snprintf(ctx->message, sizeof ctx->message, "cannot load chart cilium %s from %.200s: %.250s",
			 version, arc.origin, err);
		rc = PHASE_FAIL;
		goto out;
	}
	runner_event(ctx, "info", "chart cilium %s from %s (sha256 %s)", version, arc.origin, arc.sha256);
	json_object_set_new(ctx->detail, "chart_source", json_string(arc.origin));
	json_object_set_new(ctx->detail, "chart_sha256", json_string(arc.sha256));
	values = install_user_values(&run, NULL, err, sizeof err);
	if (!values) {
		snprintf(ctx->message, sizeof ctx->message, "%.500s", err);
		rc = PHASE_FAIL;
		goto out;
	}

	/* The release's history. */
	char sel[128];
	snprintf(sel, sizeof sel, "owner=helm,name=%s", run.release);
	kube_ops_paths(run.ops, "v1", "Secret", run.ns, NULL, &coll, NULL);
	int st = kube_ops_list(run.ops, coll, sel, NULL, 100, &secrets);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	struct release_state rs;
	scan_records(secrets, &rs);
	if (rs.latest && !rs.latest_ours) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s revision %d was not written by ferry; use an adopt job first",
			 run.release, rs.latest);
		rc = PHASE_FAIL;
		goto out;
	}
	int revision = rs.latest + 1;
	int is_upgrade = rs.deployed != NULL;
	if (rs.deployed)
		prev = release_from_secret(rs.deployed, err, sizeof err);

	/* Render. */
	const char *kube_version = json_string_value(json_object_get(run.preflight, "kube_version"));
	struct chart_render_opts ro = {
		.release_name = run.release, .namespace_ = run.ns,
		.kube_version = kube_version && *kube_version ? kube_version : NULL,
		.is_upgrade = is_upgrade, .revision = revision,
		.lookup = live_lookup, .lookup_ctx = &run,
	};
	struct render_guard guard;
	render_guard_init(&guard, ctx, &ro);
	t_render = mono_ms();
	rd = chart_render(ch, values, &ro, err, sizeof err);
	t_rendered = mono_ms();
	if (!rd) {
		snprintf(ctx->message, sizeof ctx->message, "rendering cilium %s failed: %.440s", version, err);
		rc = render_guard_failed(&guard);
		goto out;
	}
	/* Where the phase's own time goes (lookups during the render are API
	 * time, counted by ops as well). */
	json_object_set_new(ctx->detail, "chart_ms", json_pack("{s:I, s:I, s:I}",
		"resolve", (json_int_t)(t_load - t_resolve), "load", (json_int_t)(t_render - t_load),
		"render", (json_int_t)(t_rendered - t_render)));
	const json_t *docs = chart_render_documents(rd);
	runner_event(ctx, "info", "rendered chart cilium %s: %zu objects (revision %d%s)", version,
		     json_array_size(docs), revision, run.dry_run ? ", dry run" : "");
	/* Every name and namespace is checked before the first request. */
	if (kube_documents_names_valid(docs, err, sizeof err) < 0) {
		snprintf(ctx->message, sizeof ctx->message,
			 "cilium %s renders an object the API server would refuse: %.420s", version, err);
		rc = PHASE_FAIL;
		goto out;
	}

	/* Apply in install order. */
	long created = 0, changed = 0, unchanged = 0;
	size_t i;
	const json_t *doc;
	json_array_foreach(docs, i, doc) {
		const json_t *o = json_object_get(doc, "object");
		if (!json_is_object(o))
			continue;
		json_t *obj = json_deep_copy(o);
		tag_for_helm(obj, run.release, run.ns);
		json_t *fields = json_array();
		const char *action;
		st = install_apply(&run, obj, &action, fields);
		if (st < 200 || st >= 300) {
			const char *kind = json_string_value(json_object_get(obj, "kind"));
			const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
			char what[256];
			snprintf(what, sizeof what, "apply %s %s", kind ? kind : "?", name ? name : "?");
			rc = install_call_failed(&run, st, what);
			json_decref(fields), json_decref(obj);
			goto out;
		}
		install_record_object(&run, obj, action, fields);
		if (!strcmp(action, "created"))
			created++;
		else if (!strcmp(action, "changed"))
			changed++;
		else
			unchanged++;
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		if (kind && (!strcmp(kind, "DaemonSet") || !strcmp(kind, "Deployment"))) {
			char *c = NULL, *item = NULL;
			kube_ops_object_paths(run.ops, obj, run.ns, &c, &item);
			json_array_append_new(workloads, json_pack("{s:s, s:s, s:s}", "kind", kind,
				"name", json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")),
				"path", item ? item : ""));
			free(c), free(item);
		}
		json_decref(fields), json_decref(obj);
	}
	json_object_set_new(ctx->detail, "workloads", workloads);
	workloads = NULL;
	json_object_set_new(ctx->detail, "chart_version", json_string(version));
	json_object_set_new(ctx->detail, "namespace", json_string(run.ns));
	json_object_set_new(ctx->detail, "counts", json_pack("{s:I, s:I, s:I}", "created", (json_int_t)created,
							     "changed", (json_int_t)changed,
							     "unchanged", (json_int_t)unchanged));

	/* Nothing changed and the record already says so: keep the revision. */
	const char *manifest = chart_render_manifest(rd);
	if (prev && !created && !changed && same_release(prev, values, manifest, version)) {
		json_object_set_new(ctx->detail, "revision", json_integer(rs.latest));
		json_object_set_new(install_result_obj(ctx, "release"), "revision", json_integer(rs.latest));
		snprintf(ctx->message, sizeof ctx->message,
			 "no changes: %ld objects unchanged, release %s revision %d is current",
			 unchanged, run.release, rs.latest);
		rc = PHASE_OK;
		goto out;
	}

	/* The release record. */
	meta = chart_metadata(ch);
	char now[48];
	release_now_rfc3339(now, sizeof now);
	const char *first = json_string_value(json_object_get(json_object_get(prev, "info"), "first_deployed"));
	struct release_info ri = {
		.name = run.release, .namespace_ = run.ns, .revision = revision,
		.status = "deployed", .description = is_upgrade ? "Upgrade complete" : "Install complete",
		.first_deployed = first ? first : now, .last_deployed = now,
		.chart_metadata = meta, .chart_values = chart_render_values(rd),
		.config = values, .manifest = manifest,
	};
	rel = release_build(&ri);
	sec = release_secret(rel, (long long)time(NULL), 0);
	char *scoll = NULL, *sitem = NULL;
	kube_ops_object_paths(run.ops, sec, run.ns, &scoll, &sitem);
	if (run.dry_run) {
		install_record_object(&run, sec, "created", NULL);
		st = 201;
	} else {
		st = kube_ops_create(run.ops, scoll, sec, NULL);
		if (st == 409)   /* a crashed attempt already wrote it */
			st = kube_ops_replace(run.ops, sitem, sec, NULL);
	}
	free(scoll), free(sitem);
	if (st < 200 || st >= 300) {
		rc = install_call_failed(&run, st, "write the Helm release record");
		goto out;
	}
	if (rs.deployed && !run.dry_run) {
		st = restatus(&run, rs.deployed, "superseded");
		if (st != 0 && (st < 200 || st >= 300)) {
			rc = install_call_failed(&run, st, "mark the previous revision superseded");
			goto out;
		}
	}
	json_object_set_new(ctx->detail, "revision", json_integer(revision));
	json_t *rr = install_result_obj(ctx, "release");
	json_object_set_new(rr, "name", json_string(run.release));
	json_object_set_new(rr, "namespace", json_string(run.ns));
	json_object_set_new(rr, "revision", json_integer(revision));
	json_object_set_new(rr, "chart_version", json_string(version));
	snprintf(ctx->message, sizeof ctx->message,
		 "%scilium %s: %ld created, %ld changed, %ld unchanged; release revision %d",
		 run.dry_run ? "dry run: " : "", version, created, changed, unchanged, revision);
	rc = PHASE_OK;
out:
	chart_render_free(rd);
	chart_free(ch);
	json_decref(values), json_decref(secrets), json_decref(prev), json_decref(meta);
	json_decref(rel), json_decref(sec), json_decref(workloads);
	free(coll);
	chartsource_archive_clear(&arc);
	install_run_end(&run);
	return rc;
}
