/*
 * phase_cilium.c: `helm upgrade --install cilium` without helm.
 *
 * 1. Load the chart through chartsource.h (the tenant's uploaded chart,
 *    else the configured Helm repository (mirror first), else
 *    FERRY_CHARTS_DIR/cilium-<version>.tgz) and compute the user values
 *    (values.c).
 * 2. Read the release's Helm records to find the revision: 1 for a first
 *    install, last + 1 otherwise (an upgrade for the templates). A record
 *    another tool left pending (pending-install/-upgrade/-rollback) is a
 *    Helm operation in flight: refused. A pending record ferry wrote (a job
 *    killed mid-write) is resumed: its revision number is reused. A record
 *    not written by ferry is accepted only when PostgreSQL holds it (an
 *    adopt job recorded it).
 * 3. Render with k8sServiceHost/Port from preflight, the cluster's
 *    version, and a live `lookup` (so certificates the chart generated on
 *    an earlier install are reused instead of regenerated). The user
 *    values follow Helm 3.14+'s reuse rules (values.h).
 *    The parsed chart is shared through the chart cache (chartcache.h);
 *    the job queues for a render slot (render_guard.h: one per core, the
 *    connection lent while queued) before step 2, so queued jobs hold no
 *    release history; afterwards only the documents, values and manifest
 *    are kept and the render and chart are released.
 * 4. Unless the render equals the deployed revision (same chart, config
 *    and manifest), write revision N as pending-install / pending-upgrade
 *    first (Secret and PostgreSQL), as Helm does, so that a concurrent
 *    `helm upgrade` is refused by Helm.
 * 5. Apply every object in install order with server-side apply
 *    (fieldManager ferry, force), each carrying Helm's ownership tags, and
 *    note which were created, changed or unchanged. A refused apply marks
 *    revision N "failed" (description and job.result.release.failed_objects
 *    name the object); a transient failure leaves it pending for the retry.
 * 6. Delete what the deployed revision's manifest has and the new one does
 *    not (after the applies, in reverse order), except objects annotated
 *    helm.sh/resource-policy: keep (relstore_delete_absent).
 * 7. Record revision N "deployed" and the previous one "superseded", then
 *    delete the release records beyond params.max_history (default 10).
 *    Unless nothing changed at all (same chart, same config, same manifest,
 *    every object unchanged): then the current revision stays, and a second
 *    install is a true no-op (zero writes).
 *    This is a deliberate difference from `helm upgrade --install`, which
 *    writes revision N+1 even when nothing changed: re-running a job must
 *    leave the cluster unchanged, and the records `helm history` shows stay
 *    meaningful. Any difference (chart version, config, rendered manifest,
 *    or an object that drifted and was re-applied) makes a new revision,
 *    exactly as helm upgrade would; first_deployed is carried over.
 *    (tests/integration/test_install_phases: install_second_run_no_changes,
 *    install_followups_upgrade.)
 * The Cilium charts' only hooks are the certgen Jobs (post-install,
 *    post-upgrade) rendered with tls.auto.method=cronJob; the chart engine
 *    keeps hooks apart and this phase does not run them (ferry's default
 *    tls.auto.method is helm, which renders none).
 * Every revision written is also recorded in PostgreSQL (db/releases.h),
 *    which keeps the cluster's cilium_version / release_revision /
 *    release_status.
 * In a dry run the applies carry dryRun=All and no record is written; the
 *    per-object outcome goes to job.result.dry_run.objects.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/app.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"
#include "server/install/chartcache.h"
#include "server/install/chartsource.h"
#include "server/install/phases.h"
#include "server/install/relstore.h"
#include "db/releases.h"
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

/* chart_render_opts.lookup: read a live object (empty object when absent),
 * through the job's memo: the same object read twice in one job (the
 * chart's own lookups repeat) is one request. */
static json_t *live_lookup(void *arg, const char *api_version, const char *kind,
			   const char *ns, const char *name)
{
	struct install_run *run = arg;
	char *coll = NULL, *item = NULL;
	json_t *out = NULL;
	if (name && *name &&
	    kube_ops_paths(run->ops, api_version, kind, ns, name, &coll, &item) == 0)
		kube_ops_get_memo(run->ops, item, &out);
	free(coll);
	free(item);
	return out ? out : json_object();
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

/* What the phase keeps of a render once the render itself (its arena) is
 * freed: the documents, the coalesced values, the manifest. */
struct rendered {
	json_t *docs, *chart_values, *meta;
	char *manifest;
};

/* A release record: the release JSON for revision ri (new reference). */
static json_t *build_record(struct install_run *run, const struct rendered *rd,
			    const json_t *prev, const json_t *values, int revision, const char *status,
			    const char *description)
{
	char now[48];
	release_now_rfc3339(now, sizeof now);
	const char *first = json_string_value(json_object_get(json_object_get(prev, "info"), "first_deployed"));
	struct release_info ri = {
		.name = run->release, .namespace_ = run->ns, .revision = revision,
		.status = status, .description = description,
		.first_deployed = first ? first : now, .last_deployed = now,
		.chart_metadata = rd->meta, .chart_values = rd->chart_values,
		.config = values, .manifest = rd->manifest,
	};
	return release_build(&ri);
}

/* params.max_history: Helm's --history-max (default 10, 0 = unlimited). */
int install_max_history(const json_t *params)
{
	const json_t *m = json_object_get(params, "max_history");
	return json_is_integer(m) && json_integer_value(m) >= 0 ? (int)json_integer_value(m) : 10;
}

enum phase_rc phase_cilium(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	char err[1024] = "";
	struct chart_ref *ref = NULL;
	struct chart_render *rd = NULL;
	struct rendered out = { 0 };
	json_t *values = NULL, *secrets = NULL, *prev = NULL, *rel = NULL;
	json_t *old_objs = NULL, *new_objs = NULL, *workloads = json_array();
	const char *version = install_chart_version(run.params);
	struct chartsource_archive arc = { 0 };
	struct chartsource_cfg scfg;
	double t_resolve = mono_ms(), t_load = 0, t_loaded = 0, t_slot = 0, t_render = 0, t_rendered = 0;
	int have_slot = 0;
	chartsource_cfg_default(&scfg, ctx->app);
	int sst = chartsource_resolve(ctx->conn, ctx->job ? ctx->job->tenant_id : NULL, "cilium", version,
				      &scfg, &arc, err, sizeof err);
	if (sst != 0) {
		snprintf(ctx->message, sizeof ctx->message, "%.500s", err);
		rc = sst == -2 ? PHASE_RETRY : PHASE_FAIL;
		goto out;
	}
	t_load = mono_ms();
	ref = chart_cache_get(ctx->app->charts, &arc, err, sizeof err);
	t_loaded = mono_ms();
	/* parsed (or shared): the archive bytes are not needed while the
	 * job works or queues for a render slot */
	free(arc.data);
	arc.data = NULL;
	arc.len = 0;
	if (!ref) {
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

	if ((rc = install_ensure_namespace(&run)) != PHASE_OK)
		goto out;
	/* Queue for the render slot before reading the release's history: a
	 * queued job then holds its values and a chart reference, not the
	 * deployed record (its manifest alone is hundreds of kB, times every
	 * job queued). Reading and decoding the history is the slot holder's
	 * work. */
	struct render_guard guard;
	double t_queued = mono_ms();
	if ((rc = render_slot_acquire(ctx)) != PHASE_OK)
		goto out;
	have_slot = 1;
	t_slot = mono_ms();
	/* The release's history. */
	int st = relstore_list(&run, &secrets);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	struct relstore_state rs;
	relstore_scan(secrets, &rs);
	if (relstore_refuse_foreign(&run, &rs)) {
		rc = PHASE_FAIL;
		goto out;
	}
	/* Of the list the phase needs the latest and the deployed Secret (rs
	 * points into both): drop the other revisions' records now. */
	json_t *kept = json_array();
	if (rs.latest_secret)
		json_array_append(kept, (json_t *)rs.latest_secret);
	if (rs.deployed && rs.deployed != rs.latest_secret)
		json_array_append(kept, (json_t *)rs.deployed);
	json_decref(secrets);
	secrets = kept;
	/* No record at all: nothing of the release can be in the cluster (the
	 * pending record is written before the first object), so each apply's
	 * answer tells created from existing, without a read first. */
	run.first_install = !run.dry_run && rs.latest == 0;
	/* Our own pending record (this job, killed mid-write): resume it. */
	int resume = relstore_is_pending(rs.latest_status) && rs.latest_ours;
	int revision = resume ? rs.latest : rs.latest + 1;
	int is_upgrade = rs.deployed != NULL;
	if (rs.deployed)
		prev = release_from_secret(rs.deployed, err, sizeof err);
	/* Of the deployed record the phase needs its config, manifest, chart
	 * metadata and dates: drop the chart's coalesced values, the bulk of
	 * a decoded record, before the job may queue for a render slot. */
	json_t *prev_chart = json_object_get(prev, "chart");
	json_object_del(prev_chart, "values");
	json_object_del(prev_chart, "templates");
	json_object_del(prev_chart, "files");
	json_object_del(prev_chart, "schema");
	if (resume)
		runner_event(ctx, "info", "resuming release %s revision %d left %s", run.release, revision,
			     rs.latest_status);

	/* Render. */
	const char *kube_version = json_string_value(json_object_get(run.preflight, "kube_version"));
	struct chart_render_opts ro = {
		.release_name = run.release, .namespace_ = run.ns,
		.kube_version = kube_version && *kube_version ? kube_version : NULL,
		.is_upgrade = is_upgrade, .revision = revision,
		.lookup = live_lookup, .lookup_ctx = &run,
	};
	render_guard_init(&guard, ctx, &ro);
	t_render = mono_ms();
	rd = render_guard_render(&guard, chart_ref_chart(ref), values, &ro, err, sizeof err);
	render_slot_release(ctx);
	have_slot = 0;
	t_rendered = mono_ms();
	if (!rd) {
		snprintf(ctx->message, sizeof ctx->message, "rendering cilium %s failed: %.440s", version, err);
		rc = render_guard_failed(&guard);
		goto out;
	}
	/* Keep what the phase needs and free the render and the parsed chart
	 * now: many jobs apply at once, and a render's arena is several times
	 * the size of its documents. */
	out.docs = json_incref((json_t *)chart_render_documents(rd));
	out.chart_values = json_incref((json_t *)chart_render_values(rd));
	out.manifest = strdup(chart_render_manifest(rd));
	out.meta = chart_metadata(chart_ref_chart(ref));
	chart_render_free(rd);
	rd = NULL;
	chart_cache_put(ctx->app->charts, ref);
	ref = NULL;
	if (!out.manifest) {
		snprintf(ctx->message, sizeof ctx->message, "out of memory");
		goto out;
	}
	/* Where the phase's own time goes (lookups during the render are API
	 * time, counted by ops as well). */
	json_object_set_new(ctx->detail, "chart_ms", json_pack("{s:I, s:I, s:I, s:I, s:I}",
		"resolve", (json_int_t)(t_load - t_resolve), "load", (json_int_t)(t_loaded - t_load),
		"queued", (json_int_t)(t_slot - t_queued), "history", (json_int_t)(t_render - t_slot),
		"render", (json_int_t)(t_rendered - t_render)));
	const json_t *docs = out.docs;
	const char *manifest = out.manifest;
	runner_event(ctx, "info", "rendered chart cilium %s: %zu objects (revision %d%s)", version,
		     json_array_size(docs), revision, run.dry_run ? ", dry run" : "");
	/* Every name and namespace is checked before the first request. */
	if (kube_documents_names_valid(docs, err, sizeof err) < 0) {
		snprintf(ctx->message, sizeof ctx->message,
			 "cilium %s renders an object the API server would refuse: %.420s", version, err);
		rc = PHASE_FAIL;
		goto out;
	}

	/* The same release as deployed: at most drift to repair, no pending
	 * record and no new revision unless an object changes. */
	int same = prev && !resume && same_release(prev, values, manifest, version);
	if (prev && !same) {
		old_objs = relstore_manifest_objects(&run, json_string_value(json_object_get(prev, "manifest")),
						     err, sizeof err);
		new_objs = relstore_manifest_objects(&run, manifest, err, sizeof err);
		if (!old_objs || !new_objs) {
			snprintf(ctx->message, sizeof ctx->message, "cannot read a release manifest: %.400s", err);
			rc = PHASE_FAIL;
			goto out;
		}
	}
	if (!same) {
		rel = build_record(&run, &out, prev, values, revision,
				   is_upgrade ? "pending-upgrade" : "pending-install",
				   is_upgrade ? "Preparing upgrade" : "Initial install underway");
		rc = run.dry_run ? PHASE_OK : relstore_write_record(&run, rel, resume, "write the pending release record");
		json_decref(rel);
		rel = NULL;
		if (rc != PHASE_OK)
			goto out;
	}

	/* Apply in install order. */
	struct relstore_tally tally = { 0 };
	size_t i;
	const json_t *doc;
	json_array_foreach(docs, i, doc) {
		const json_t *o = json_object_get(doc, "object");
		if (!json_is_object(o))
			continue;
		json_t *obj = json_deep_copy(o);
		relstore_tag_for_helm(obj, run.release, run.ns);
		json_t *fields = json_array();
		const char *action;
		st = install_apply(&run, obj, &action, fields);
		if (st < 200 || st >= 300) {
			const char *kind = json_string_value(json_object_get(obj, "kind"));
			const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
			char what[256];
			snprintf(what, sizeof what, "apply %s %s", kind ? kind : "?", name ? name : "?");
			rc = install_call_failed(&run, st, what);
			if (rc == PHASE_FAIL && !same && !run.dry_run) {
				/* Helm's failed upgrade: the revision stays, "failed". */
				json_t *rr = install_result_obj(ctx, "release");
				json_object_set_new(rr, "revision", json_integer(revision));
				json_object_set_new(rr, "status", json_string("failed"));
				json_object_set_new(rr, "failed_objects", json_pack("[{s:s, s:s, s:s}]",
					"kind", kind ? kind : "", "name", name ? name : "", "error", ctx->message));
				char desc[700];
				snprintf(desc, sizeof desc, "%s \"%s\" failed: %s", is_upgrade ? "Upgrade" : "Release",
					 run.release, ctx->message);
				char keep[sizeof ctx->message];
				memcpy(keep, ctx->message, sizeof keep);
				rel = build_record(&run, &out, prev, values, revision, "failed", desc);
				if (relstore_write_record(&run, rel, 1, "mark the release failed") != PHASE_OK)
					runner_event(ctx, "warn", "could not mark revision %d failed: %s", revision,
						     ctx->message);
				memcpy(ctx->message, keep, sizeof keep);
			}
			json_decref(fields), json_decref(obj);
			goto out;
		}
		relstore_tally_applied(&run, obj, action, fields, &tally, workloads);
		json_decref(fields), json_decref(obj);
	}
	json_object_set_new(ctx->detail, "workloads", workloads);
	workloads = NULL;
	json_object_set_new(ctx->detail, "chart_version", json_string(version));
	json_object_set_new(ctx->detail, "namespace", json_string(run.ns));

	/* What the deployed revision had and this one does not. */
	if (old_objs) {
		char what[300] = "";
		st = relstore_delete_absent(&run, old_objs, new_objs, 0, &tally.deleted, &tally.kept, what, sizeof what);
		if (st != 200) {
			rc = install_call_failed(&run, st, what);
			goto out;
		}
	}
	json_object_set_new(ctx->detail, "counts", relstore_tally_json(&tally));

	/* Nothing changed and the record already says so: keep the revision. */
	if (same && !tally.created && !tally.changed) {
		/* PostgreSQL knows the current revision (a release from before
		 * revisions were recorded gets its row now). */
		rc = relstore_in_db(&run, rs.latest) ? PHASE_OK : relstore_save_db(&run, prev, 0);
		if (rc != PHASE_OK)
			goto out;
		json_object_set_new(ctx->detail, "revision", json_integer(rs.latest));
		json_object_set_new(install_result_obj(ctx, "release"), "revision", json_integer(rs.latest));
		snprintf(ctx->message, sizeof ctx->message,
			 "no changes: %ld objects unchanged, release %s revision %d is current",
			 tally.unchanged, run.release, rs.latest);
		rc = PHASE_OK;
		goto out;
	}

	/* The release record: N deployed, the previous one superseded. */
	rel = build_record(&run, &out, prev, values, revision, "deployed",
			   is_upgrade ? "Upgrade complete" : "Install complete");
	rc = relstore_write_record(&run, rel, !same || resume, "write the Helm release record");
	if (rc != PHASE_OK)
		goto out;
	if ((rc = relstore_retire_previous(&run, &rs, revision)) != PHASE_OK)
		goto out;
	json_object_set_new(ctx->detail, "revision", json_integer(revision));
	json_t *rr = install_result_obj(ctx, "release");
	json_object_set_new(rr, "name", json_string(run.release));
	json_object_set_new(rr, "namespace", json_string(run.ns));
	json_object_set_new(rr, "revision", json_integer(revision));
	json_object_set_new(rr, "chart_version", json_string(version));
	json_object_set_new(rr, "status", json_string("deployed"));
	snprintf(ctx->message, sizeof ctx->message,
		 "%scilium %s: %ld created, %ld changed, %ld unchanged, %ld deleted; release revision %d",
		 run.dry_run ? "dry run: " : "", version, tally.created, tally.changed, tally.unchanged, tally.deleted, revision);
	rc = PHASE_OK;
out:
	if (have_slot)
		render_slot_release(ctx);
	chart_render_free(rd);
	chart_cache_put(ctx->app->charts, ref);
	json_decref(out.docs), json_decref(out.chart_values), json_decref(out.meta);
	free(out.manifest);
	json_decref(values), json_decref(secrets), json_decref(prev);
	json_decref(rel), json_decref(workloads), json_decref(old_objs), json_decref(new_objs);
	chartsource_archive_clear(&arc);
	install_run_end(&run);
	return rc;
}
