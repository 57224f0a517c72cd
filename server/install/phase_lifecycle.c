/*
 * phase_lifecycle.c: the phases of the rollback and uninstall jobs, and
 * the install walk's "surroundings" phase (phases.h has the tables).
 *
 * rollback (`helm rollback cilium N`):
 *   cilium     re-apply revision N's stored manifest (PostgreSQL, else the
 *              release Secret: no chart archive is needed) as a new
 *              revision latest+1, Helm's numbering: pending-rollback
 *              record first, apply in order, delete what the deployed
 *              revision has and N does not (keep honoured), then the new
 *              revision "deployed" (description "Rollback to N"), the
 *              previous one "superseded", max_history applied. A killed job
 *              resumes its own pending-rollback record (its target is read
 *              back from the description, as Helm writes it).
 *   wait       the install's wait phase (the workloads this phase applied)
 *   surroundings  put back what revision N's snapshot recorded
 *              (surroundings.h): tke-eni-agent image, cni-config, retired
 *              DaemonSets, APF objects; the result is the new revision's
 *              snapshot.
 * uninstall (`helm uninstall cilium`, then ferry's own changes undone):
 *   uninstall  refused unless params.force when Cilium carries the only
 *              pod network (no other CNI DaemonSet runs); marks the newest
 *              record "uninstalling", deletes every object of the release's
 *              manifest in reverse order except helm.sh/resource-policy:
 *              keep (CRDs are not in Cilium's manifest: the operator
 *              creates them; params.delete_crds deletes the *.cilium.io
 *              CRDs too), then deletes the release records (or, with
 *              params.keep_history, keeps them with the newest one
 *              "uninstalled").
 *   wait-pods-gone  until no cilium pod is left in the release namespace
 *   surroundings  remove ferry's nodeSelector (and preStop hook) from
 *              kube-proxy, tke-cni-agent and ip-masq-agent, delete the CNI
 *              ConfigMap and the APF objects, and with
 *              params.restore_eni_agent put tke-eni-agent's image back to
 *              what it was before ferry changed it.
 * Every phase reads before it writes, so a re-run after a kill is safe.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/releases.h"
#include "server/chart/chart.h"
#include "server/install/phases.h"
#include "server/install/release.h"
#include "server/install/relstore.h"
#include "server/install/surroundings.h"
#include "server/kube/ops.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared ---------------------------------------------------------- */

/* A revision's content: from PostgreSQL, else from its release Secret. */
struct rev_content {
	json_t *values;        /* user values */
	json_t *meta;          /* chart metadata {name, version, appVersion, apiVersion} */
	json_t *chart_values;  /* the chart's default values, {} when unknown */
	char *manifest;
	json_t *surroundings;  /* {} when unknown */
	char *status;
};

static void rev_content_clear(struct rev_content *c)
{
	json_decref(c->values), json_decref(c->meta), json_decref(c->chart_values);
	json_decref(c->surroundings);
	free(c->manifest), free(c->status);
	memset(c, 0, sizeof(*c));
}

static int load_revision(struct install_run *run, const json_t *secrets, int rev, struct rev_content *c)
{
	memset(c, 0, sizeof(*c));
	char err[256] = "";
	json_t *db = db_release_get_for_job(run->ctx->conn, run->ctx->job, rev, err, sizeof err);
	const json_t *sec = relstore_secret_of(secrets, rev);
	json_t *rel = sec ? release_from_secret(sec, err, sizeof err) : NULL;
	if (!db && !rel)
		return -1;
	const json_t *chart = json_object_get(rel, "chart");
	if (db) {
		c->values = json_incref(json_object_get(db, "values"));
		c->manifest = strdup(json_string_value(json_object_get(db, "manifest")) ?
				     json_string_value(json_object_get(db, "manifest")) : "");
		c->meta = json_pack("{s:O, s:O, s:s}", "name", json_object_get(db, "chart_name"),
				    "version", json_object_get(db, "chart_version"), "apiVersion", "v2");
		if (json_is_string(json_object_get(db, "app_version")))
			json_object_set(c->meta, "appVersion", json_object_get(db, "app_version"));
		c->surroundings = json_incref(json_object_get(db, "surroundings"));
		c->status = strdup(json_string_value(json_object_get(db, "status")) ?
				   json_string_value(json_object_get(db, "status")) : "");
	} else {
		c->values = json_incref(json_object_get(rel, "config"));
		c->manifest = strdup(json_string_value(json_object_get(rel, "manifest")) ?
				     json_string_value(json_object_get(rel, "manifest")) : "");
		c->meta = json_deep_copy(json_object_get(chart, "metadata"));
		const char *st = json_string_value(json_object_get(json_object_get(rel, "info"), "status"));
		c->status = strdup(st ? st : "");
	}
	if (!c->values)
		c->values = json_object();
	if (!c->meta)
		c->meta = json_object();
	if (!c->surroundings)
		c->surroundings = json_object();
	c->chart_values = json_is_object(json_object_get(chart, "values")) ?
			  json_incref(json_object_get(chart, "values")) : json_object();
	json_decref(db), json_decref(rel);
	return 0;
}

/* The revisions the job's cluster has, "1, 2, 3" (for messages). */
static void revision_list(struct install_run *run, const json_t *secrets, char *out, size_t len)
{
	out[0] = 0;
	char err[128];
	json_t *list = db_release_list_for_job(run->ctx->conn, run->ctx->job, err, sizeof err);
	size_t i;
	const json_t *r;
	json_array_foreach(list, i, r) {
		size_t u = strlen(out);
		snprintf(out + u, len - u, "%s%lld", u ? ", " : "",
			 (long long)json_integer_value(json_object_get(r, "revision")));
	}
	if (!json_array_size(list)) {
		json_array_foreach(secrets, i, r) {
			const char *v = json_string_value(json_object_get(json_object_get(
				json_object_get(r, "metadata"), "labels"), "version"));
			size_t u = strlen(out);
			snprintf(out + u, len - u, "%s%s", u ? ", " : "", v ? v : "?");
		}
	}
	json_decref(list);
	if (!out[0])
		snprintf(out, len, "none");
}

/* A release JSON for a rollback record. */
static json_t *rollback_record(struct install_run *run, const struct rev_content *t, const json_t *prev,
			       int revision, const char *status, const char *description)
{
	char now[48];
	release_now_rfc3339(now, sizeof now);
	const char *first = json_string_value(json_object_get(json_object_get(prev, "info"), "first_deployed"));
	struct release_info ri = {
		.name = run->release, .namespace_ = run->ns, .revision = revision,
		.status = status, .description = description,
		.first_deployed = first ? first : now, .last_deployed = now,
		.chart_metadata = t->meta, .chart_values = t->chart_values,
		.config = t->values, .manifest = t->manifest,
	};
	return release_build(&ri);
}

/* ---- rollback --------------------------------------------------------- */

enum phase_rc phase_rollback_release(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *secrets = NULL, *prev = NULL, *rel = NULL, *docs = NULL;
	json_t *old_objs = NULL, *new_objs = NULL, *workloads = json_array();
	struct rev_content t = { 0 };
	char err[512] = "", revs[256];
	int st = relstore_list(&run, &secrets);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	struct relstore_state rs;
	relstore_scan(secrets, &rs);
	if (!rs.latest) {
		snprintf(ctx->message, sizeof ctx->message,
			 "there is no release %s in namespace %s to roll back (no Helm release records)",
			 run.release, run.ns);
		rc = PHASE_FAIL;
		goto out;
	}
	if (relstore_refuse_foreign(&run, &rs)) {
		rc = PHASE_FAIL;
		goto out;
	}
	int resume = rs.latest_ours && rs.latest_status && !strcmp(rs.latest_status, "pending-rollback");
	int revision = resume ? rs.latest : rs.latest + 1;
	int target = 0;
	if (!resume && relstore_is_pending(rs.latest_status) && !run.dry_run) {
		/* An install or upgrade of ours that never finished: it failed. */
		st = relstore_restatus(&run, rs.latest_secret, "failed", "Interrupted, superseded by a rollback");
		char e2[256];
		if ((st == 0 || (st >= 200 && st < 300)) &&
		    db_release_set_status(ctx->conn, ctx->job, rs.latest, "failed", NULL, e2, sizeof e2) < 0)
			runner_event(ctx, "warn", "could not record revision %d as failed: %s", rs.latest, e2);
	}
	const json_t *want = json_object_get(run.params, "revision");
	if (resume) {
		/* Our own interrupted rollback: its target is in the description. */
		json_t *pend = release_from_secret(rs.latest_secret, err, sizeof err);
		const char *d = json_string_value(json_object_get(json_object_get(pend, "info"), "description"));
		if (d && !strncmp(d, "Rollback to ", 12))
			target = atoi(d + 12);
		json_decref(pend);
		runner_event(ctx, "info", "resuming the interrupted rollback to revision %d (revision %d)",
			     target, revision);
	} else if (want && !json_is_null(want)) {
		if (!json_is_integer(want) || json_integer_value(want) < 1) {
			snprintf(ctx->message, sizeof ctx->message, "params.revision must be a revision number >= 1");
			rc = PHASE_FAIL;
			goto out;
		}
		target = (int)json_integer_value(want);
	} else {
		target = rs.latest - 1;   /* Helm's default: the one before the current */
	}
	if (target < 1 || load_revision(&run, secrets, target, &t) < 0) {
		revision_list(&run, secrets, revs, sizeof revs);
		if (target < 1)
			snprintf(ctx->message, sizeof ctx->message,
				 "release %s has no revision before %d to roll back to (revisions: %s)",
				 run.release, rs.latest, revs);
		else
			snprintf(ctx->message, sizeof ctx->message,
				 "release %s has no revision %d (revisions: %s)", run.release, target, revs);
		rc = PHASE_FAIL;
		goto out;
	}
	if (rs.deployed)
		prev = release_from_secret(rs.deployed, err, sizeof err);
	docs = chart_manifest_objects(t.manifest, strlen(t.manifest), err, sizeof err);
	if (!docs) {
		snprintf(ctx->message, sizeof ctx->message, "revision %d's manifest does not parse: %.300s",
			 target, err);
		rc = PHASE_FAIL;
		goto out;
	}
	if (prev) {
		old_objs = relstore_manifest_objects(&run, json_string_value(json_object_get(prev, "manifest")),
						     err, sizeof err);
		new_objs = relstore_manifest_objects(&run, t.manifest, err, sizeof err);
		if (!old_objs || !new_objs) {
			snprintf(ctx->message, sizeof ctx->message, "cannot read a release manifest: %.300s", err);
			rc = PHASE_FAIL;
			goto out;
		}
	}
	char desc[64];
	snprintf(desc, sizeof desc, "Rollback to %d", target);
	runner_event(ctx, "info", "rolling release %s back to revision %d (chart %s %s) as revision %d%s",
		     run.release, target, json_string_value(json_object_get(t.meta, "name")),
		     json_string_value(json_object_get(t.meta, "version")), revision,
		     run.dry_run ? ", dry run" : "");
	json_object_set_new(ctx->detail, "target", json_integer(target));
	json_object_set_new(ctx->detail, "revision", json_integer(revision));
	if (!run.dry_run) {
		rel = rollback_record(&run, &t, prev, revision, "pending-rollback", desc);
		rc = relstore_write_record(&run, rel, resume, "write the pending-rollback record");
		json_decref(rel);
		rel = NULL;
		if (rc != PHASE_OK)
			goto out;
	}
	struct relstore_tally tally = { 0 };
	size_t i;
	const json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d))
			continue;
		json_t *obj = json_deep_copy(d);
		relstore_tag_for_helm(obj, run.release, run.ns);
		json_t *fields = json_array();
		const char *action;
		st = install_apply(&run, obj, &action, fields);
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
		if (st < 200 || st >= 300) {
			char what[256];
			snprintf(what, sizeof what, "apply %s %s", kind ? kind : "?", name ? name : "?");
			rc = install_call_failed(&run, st, what);
			if (rc == PHASE_FAIL && !run.dry_run) {
				char fdesc[700], keep[sizeof ctx->message];
				memcpy(keep, ctx->message, sizeof keep);
				snprintf(fdesc, sizeof fdesc, "Rollback \"%s\" failed: %s", run.release, ctx->message);
				rel = rollback_record(&run, &t, prev, revision, "failed", fdesc);
				if (relstore_write_record(&run, rel, 1, "mark the rollback failed") != PHASE_OK)
					runner_event(ctx, "warn", "could not mark revision %d failed", revision);
				memcpy(ctx->message, keep, sizeof keep);
				json_object_set_new(install_result_obj(ctx, "release"), "failed_objects",
					json_pack("[{s:s, s:s, s:s}]", "kind", kind ? kind : "", "name", name ? name : "",
						  "error", ctx->message));
			}
			json_decref(fields), json_decref(obj);
			goto out;
		}
		relstore_tally_applied(&run, obj, action, fields, &tally, workloads);
		json_decref(fields), json_decref(obj);
	}
	json_object_set_new(ctx->detail, "workloads", workloads);
	workloads = NULL;
	if (old_objs) {
		char what[300] = "";
		st = relstore_delete_absent(&run, old_objs, new_objs, 0, &tally.deleted, &tally.kept, what, sizeof what);
		if (st != 200) {
			rc = install_call_failed(&run, st, what);
			goto out;
		}
	}
	json_object_set_new(ctx->detail, "counts", relstore_tally_json(&tally));
	rel = rollback_record(&run, &t, prev, revision, "deployed", desc);
	rc = relstore_write_record(&run, rel, 1, "write the Helm release record");
	if (rc != PHASE_OK)
		goto out;
	if ((rc = relstore_retire_previous(&run, &rs, revision)) != PHASE_OK)
		goto out;
	json_t *rr = install_result_obj(ctx, "release");
	json_object_set_new(rr, "name", json_string(run.release));
	json_object_set_new(rr, "namespace", json_string(run.ns));
	json_object_set_new(rr, "revision", json_integer(revision));
	json_object_set_new(rr, "rolled_back_to", json_integer(target));
	json_object_set(rr, "chart_version", json_object_get(t.meta, "version"));
	json_object_set_new(rr, "status", json_string("deployed"));
	snprintf(ctx->message, sizeof ctx->message,
		 "%srolled back to revision %d as revision %d: %ld created, %ld changed, %ld unchanged, %ld deleted",
		 run.dry_run ? "dry run: " : "", target, revision, tally.created, tally.changed, tally.unchanged, tally.deleted);
	rc = PHASE_OK;
out:
	rev_content_clear(&t);
	json_decref(secrets), json_decref(prev), json_decref(rel), json_decref(docs);
	json_decref(old_objs), json_decref(new_objs), json_decref(workloads);
	install_run_end(&run);
	return rc;
}

/* ---- surroundings ----------------------------------------------------- */

/* Store the snapshot as revision rev's surroundings. */
static enum phase_rc save_snapshot(struct install_run *run, int rev, const json_t *snap)
{
	if (run->dry_run || rev < 1)
		return PHASE_OK;
	char err[256] = "";
	int r = db_release_merge_surroundings(run->ctx->conn, run->ctx->job, rev, snap, err, sizeof err);
	if (r == 0) {
		atomic_store(&run->ctx->flags->lease_lost, 1);
		return PHASE_ABORT;
	}
	if (r < 0) {
		snprintf(run->ctx->message, sizeof run->ctx->message, "could not record the surroundings: %.300s", err);
		return PHASE_RETRY;
	}
	return PHASE_OK;
}

/* The CNI ConfigMap name a snapshot names (NULL = default). */
static const char *cni_name_of(const json_t *snap)
{
	return json_string_value(json_object_get(json_object_get(snap, "cni_config"), "name"));
}

/* Install walk: record the surroundings with the revision the cilium phase
 * wrote or kept, so that a rollback can put them back. */
enum phase_rc phase_record_surroundings(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *cil = install_phase_detail(ctx, "cilium");
	json_t *cni = install_phase_detail(ctx, "cni-config");
	json_t *eni = install_phase_detail(ctx, "eni-agent");
	json_t *snap = NULL, *prev = NULL;
	int rev = (int)json_integer_value(json_object_get(cil, "revision"));
	if (run.dry_run || rev < 1) {
		snprintf(ctx->message, sizeof ctx->message, "nothing to record%s", run.dry_run ? " (dry run)" : "");
		goto out;
	}
	int st;
	snap = surroundings_read(&run, json_string_value(json_object_get(cni, "configmap")), 1, &st);
	if (!snap) {
		rc = install_call_failed(&run, st, "read the release's surroundings");
		goto out;
	}
	/* The image before ferry first changed it: carried from the previous
	 * revision's snapshot, else this job's eni-agent phase, else now. */
	char err[128];
	prev = rev > 1 ? db_release_get_for_job(ctx->conn, ctx->job, rev - 1, err, sizeof err) : NULL;
	const json_t *before = json_object_get(json_object_get(prev, "surroundings"), "eni_agent_image_before");
	if (!json_is_string(before))
		before = json_object_get(eni, "image_before");
	if (!json_is_string(before))
		before = json_object_get(snap, "eni_agent_image");
	json_object_set(snap, "eni_agent_image_before", before ? (json_t *)before : json_null());
	rc = save_snapshot(&run, rev, snap);
	if (rc == PHASE_OK)
		snprintf(ctx->message, sizeof ctx->message, "recorded with revision %d (%zu retired DaemonSet(s)%s%s)",
			 rev, json_array_size(json_object_get(snap, "retired")),
			 json_is_object(json_object_get(snap, "cni_config")) ? ", cni-config" : "",
			 json_is_object(json_object_get(snap, "apf")) ? ", APF" : "");
out:
	json_decref(cil), json_decref(cni), json_decref(eni), json_decref(snap), json_decref(prev);
	install_run_end(&run);
	return rc;
}

/* Rollback: the target revision's snapshot. Uninstall: the state before
 * the install. */
enum phase_rc phase_restore_surroundings(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	int uninstall = !strcmp(ctx->job->kind, "uninstall");
	json_t *first = install_phase_detail(ctx, uninstall ? "uninstall" : "cilium");
	json_t *want = NULL, *now = NULL, *after = NULL, *tr = NULL;
	char err[256];
	if (uninstall) {
		const json_t *was = json_object_get(first, "surroundings");
		want = json_pack("{s:n, s:[], s:n}", "cni_config", "retired", "apf");
		if (json_is_true(json_object_get(run.params, "restore_eni_agent"))) {
			const json_t *img = json_object_get(was, "eni_agent_image_before");
			if (json_is_string(img))
				json_object_set(want, "eni_agent_image", (json_t *)img);
			else
				runner_event(ctx, "warn", "restore_eni_agent: the image before the install is not "
					     "recorded; tke-eni-agent left as it is");
		}
		/* The ConfigMap name the install used. */
		if (cni_name_of(was))
			json_object_set_new(want, "cni_name", json_string(cni_name_of(was)));
	} else {
		int target = (int)json_integer_value(json_object_get(first, "target"));
		tr = db_release_get_for_job(ctx->conn, ctx->job, target, err, sizeof err);
		want = json_deep_copy(json_object_get(tr, "surroundings"));
		if (!json_object_size(want)) {
			snprintf(ctx->message, sizeof ctx->message,
				 "revision %d has no recorded surroundings: left as they are", target);
			goto out;
		}
	}
	int st;
	const char *cni = cni_name_of(want) ? cni_name_of(want) :
			  json_string_value(json_object_get(want, "cni_name"));
	now = surroundings_read(&run, cni, 0, &st);
	if (!now) {
		rc = install_call_failed(&run, st, "read the release's surroundings");
		goto out;
	}
	long changes = 0;
	char what[200] = "";
	st = surroundings_restore(&run, want, now, &changes, what, sizeof what);
	if (st != 200) {
		rc = install_call_failed(&run, st, what);
		goto out;
	}
	json_object_set_new(ctx->detail, "changes", json_integer(changes));
	if (!uninstall) {
		after = surroundings_read(&run, cni, 0, &st);
		if (after) {
			const json_t *before = json_object_get(want, "eni_agent_image_before");
			json_object_set(after, "eni_agent_image_before", before ? (json_t *)before : json_null());
			rc = save_snapshot(&run, (int)json_integer_value(json_object_get(first, "revision")), after);
			if (rc != PHASE_OK)
				goto out;
		}
	}
	snprintf(ctx->message, sizeof ctx->message, "%s%ld change(s) to put the surroundings back%s",
		 run.dry_run ? "dry run: " : "", changes, uninstall ? " to before the install" : "");
out:
	json_decref(first), json_decref(want), json_decref(now), json_decref(after), json_decref(tr);
	install_run_end(&run);
	return rc;
}

/* ---- uninstall ---------------------------------------------------------- */

/* A CNI other than Cilium runs (so pods keep networking without it). */
static int other_cni(struct install_run *run, int *status, char *which, size_t len)
{
	static const char *const ds[] = { "tke-eni-agent", "tke-bridge-agent", "kube-flannel-ds", "calico-node",
					  "aws-node", NULL };
	*status = 200;
	for (int i = 0; ds[i]; i++) {
		char path[200];
		snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/daemonsets/%s",
			 !strcmp(ds[i], "kube-flannel-ds") ? "kube-flannel" : "kube-system", ds[i]);
		json_t *o = NULL;
		int st = kube_ops_get(run->ops, path, &o);
		json_decref(o);
		if (st == 200) {
			snprintf(which, len, "%s", ds[i]);
			return 1;
		}
		if (st != 404) {
			*status = st;
			return -1;
		}
	}
	return 0;
}

/* Delete the cilium.io CRDs (params.delete_crds). */
static int delete_cilium_crds(struct install_run *run, long *deleted)
{
	json_t *items = NULL;
	int st = kube_ops_list(run->ops, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", NULL, NULL,
			       0, &items);
	if (st == 404)
		return 200;
	if (st != 200)
		return st;
	size_t i;
	const json_t *crd;
	json_array_foreach(items, i, crd) {
		const char *name = json_string_value(json_object_get(json_object_get(crd, "metadata"), "name"));
		size_t n = name ? strlen(name) : 0;
		if (n < 10 || strcmp(name + n - 10, ".cilium.io"))
			continue;
		char path[300];
		snprintf(path, sizeof path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s", name);
		st = kube_ops_delete(run->ops, path, NULL);
		if (st != 404 && (st < 200 || st >= 300))
			break;
		install_record_object(run, crd, "deleted", NULL);
		(*deleted)++;
		st = 200;
	}
	json_decref(items);
	return st;
}

enum phase_rc phase_uninstall_release(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *secrets = NULL, *objs = NULL, *none = json_array(), *rel = NULL, *cur = NULL;
	char err[512] = "";
	int st = relstore_list(&run, &secrets);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	struct relstore_state rs;
	relstore_scan(secrets, &rs);
	if (!rs.latest) {
		snprintf(ctx->message, sizeof ctx->message,
			 "there is no release %s in namespace %s to uninstall (no Helm release records)",
			 run.release, run.ns);
		rc = PHASE_FAIL;
		goto out;
	}
	int resume = rs.latest_ours && rs.latest_status && !strcmp(rs.latest_status, "uninstalling");
	if (!resume && relstore_refuse_foreign(&run, &rs)) {
		rc = PHASE_FAIL;
		goto out;
	}
	char which[64] = "";
	int other = other_cni(&run, &st, which, sizeof which);
	if (other < 0) {
		rc = install_call_failed(&run, st, "look for another CNI");
		goto out;
	}
	if (!other && !json_is_true(json_object_get(run.params, "force"))) {
		snprintf(ctx->message, sizeof ctx->message,
			 "refused: Cilium carries the only pod network on this cluster (no other CNI DaemonSet "
			 "runs), so uninstalling it leaves every pod without networking until another CNI is "
			 "installed; set params.force to uninstall anyway");
		rc = PHASE_FAIL;
		goto out;
	}
	if (other)
		runner_event(ctx, "info", "another pod network stays (%s)", which);
	/* What to delete: the newest record's manifest (the deployed one when
	 * the newest failed, as Helm uninstalls the last release). */
	const json_t *sec = rs.latest_secret;
	rel = release_from_secret(sec, err, sizeof err);
	if (!rel) {
		snprintf(ctx->message, sizeof ctx->message, "cannot read release record %d: %.300s", rs.latest, err);
		rc = PHASE_FAIL;
		goto out;
	}
	/* The surroundings the install left (the restore phase's input). */
	cur = db_release_get_for_job(ctx->conn, ctx->job, rs.deployed_rev ? rs.deployed_rev : rs.latest,
				     err, sizeof err);
	json_object_set(ctx->detail, "surroundings", json_object_get(cur, "surroundings") ?
			json_object_get(cur, "surroundings") : json_object());
	if (!resume && !run.dry_run) {
		st = relstore_restatus(&run, sec, "uninstalling", "Deletion in progress (or silently failed)");
		if (st != 0 && (st < 200 || st >= 300)) {
			rc = install_call_failed(&run, st, "mark the release uninstalling");
			goto out;
		}
		char e2[256];
		if (db_release_set_status(ctx->conn, ctx->job, rs.latest, "uninstalling", NULL, e2, sizeof e2) < 0)
			runner_event(ctx, "warn", "could not record the uninstalling status: %s", e2);
	}
	objs = relstore_manifest_objects(&run, json_string_value(json_object_get(rel, "manifest")), err, sizeof err);
	if (!objs) {
		snprintf(ctx->message, sizeof ctx->message, "cannot read the release manifest: %.300s", err);
		rc = PHASE_FAIL;
		goto out;
	}
	long deleted = 0, kept = 0;
	char what[300] = "";
	st = relstore_delete_absent(&run, objs, none, 1, &deleted, &kept, what, sizeof what);
	if (st != 200) {
		rc = install_call_failed(&run, st, what);
		goto out;
	}
	if (json_is_true(json_object_get(run.params, "delete_crds"))) {
		st = delete_cilium_crds(&run, &deleted);
		if (st != 200) {
			rc = install_call_failed(&run, st, "delete the cilium.io CRDs");
			goto out;
		}
	}
	/* The records. */
	int keep_history = json_is_true(json_object_get(run.params, "keep_history"));
	size_t i;
	const json_t *s;
	json_array_foreach(secrets, i, s) {
		const char *v = json_string_value(json_object_get(json_object_get(json_object_get(s, "metadata"),
											"labels"), "version"));
		int rev = v ? atoi(v) : 0;
		if (keep_history) {
			if (rev != rs.latest)
				continue;
			st = relstore_restatus(&run, s, "uninstalled", "Uninstallation complete");
		} else {
			char *name = release_secret_name(run.release, rev);
			char *coll = NULL, *item = NULL;
			st = kube_ops_paths(run.ops, "v1", "Secret", run.ns, name, &coll, &item) == 0
				     ? kube_ops_delete(run.ops, item, NULL) : 400;
			if (st == 404)
				st = 200;
			free(coll), free(item), free(name);
		}
		if (st != 0 && (st < 200 || st >= 300)) {
			rc = install_call_failed(&run, st, "remove the release records");
			goto out;
		}
	}
	if (!run.dry_run) {
		int r = db_release_uninstalled(ctx->conn, ctx->job, keep_history, err, sizeof err);
		if (r == 0) {
			atomic_store(&ctx->flags->lease_lost, 1);
			rc = PHASE_ABORT;
			goto out;
		}
		if (r < 0) {
			snprintf(ctx->message, sizeof ctx->message, "could not record the uninstall: %.300s", err);
			rc = PHASE_RETRY;
			goto out;
		}
	}
	json_t *rr = install_result_obj(ctx, "release");
	json_object_set_new(rr, "name", json_string(run.release));
	json_object_set_new(rr, "namespace", json_string(run.ns));
	json_object_set_new(rr, "status", json_string(keep_history ? "uninstalled" : "deleted"));
	json_object_set_new(rr, "deleted_objects", json_integer(deleted));
	json_object_set_new(rr, "kept_objects", json_integer(kept));
	snprintf(ctx->message, sizeof ctx->message, "%srelease %s uninstalled: %ld object(s) deleted, %ld kept; "
		 "records %s", run.dry_run ? "dry run: " : "", run.release, deleted, kept,
		 keep_history ? "kept (uninstalled)" : "deleted");
	rc = PHASE_OK;
out:
	json_decref(secrets), json_decref(objs), json_decref(none), json_decref(rel), json_decref(cur);
	install_run_end(&run);
	return rc;
}

/* Until no Cilium pod is left in the release namespace. */
enum phase_rc phase_uninstall_wait(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	if (run.dry_run) {
		snprintf(ctx->message, sizeof ctx->message, "dry run: nothing to wait for");
		goto out;
	}
	char *coll = NULL;
	kube_ops_paths(run.ops, "v1", "Pod", run.ns, NULL, &coll, NULL);
	long timeout = install_wait_timeout_ms(run.params), waited = 0;
	for (;;) {
		json_t *pods = NULL;
		int st = kube_ops_list(run.ops, coll, "app.kubernetes.io/part-of=cilium", NULL, 0, &pods);
		size_t n = json_array_size(pods);
		json_decref(pods);
		if (st != 200) {
			rc = install_call_failed(&run, st, "list the cilium pods");
			break;
		}
		if (n == 0) {
			snprintf(ctx->message, sizeof ctx->message, "no cilium pod left");
			break;
		}
		if (waited >= timeout) {
			snprintf(ctx->message, sizeof ctx->message, "%zu cilium pod(s) still terminating after %ld s",
				 n, timeout / 1000);
			rc = PHASE_RETRY;
			break;
		}
		if (runner_sleep(ctx, 500)) {
			rc = PHASE_ABORT;
			break;
		}
		waited += 500;
	}
	free(coll);
out:
	install_run_end(&run);
	return rc;
}

/* ---- adopt ---------------------------------------------------------------- */

/* Find the release's Secrets in another namespace (for the refusal). */
static int release_elsewhere(struct install_run *run, const char *name, char *ns_out, size_t len)
{
	char sel[128];
	snprintf(sel, sizeof sel, "owner=helm,name=%s", name);
	json_t *items = NULL;
	int st = kube_ops_list(run->ops, "/api/v1/secrets", sel, NULL, 100, &items);
	int found = 0;
	const json_t *s = json_array_get(items, 0);
	if (st == 200 && s) {
		const char *ns = json_string_value(json_object_get(json_object_get(s, "metadata"), "namespace"));
		snprintf(ns_out, len, "%s", ns ? ns : "?");
		found = 1;
	}
	json_decref(items);
	return found;
}

/* A hand-made Helm release becomes ferry's: its revisions are recorded in
 * PostgreSQL as they are, the deployed one current. Nothing is written to
 * the cluster. */
enum phase_rc phase_adopt(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *secrets = NULL, *deployed = NULL, *snap = NULL;
	char err[512] = "";
	const char *name = json_string_value(json_object_get(run.params, "release_name"));
	const char *ns = json_string_value(json_object_get(run.params, "namespace"));
	if (name && strcmp(name, INSTALL_RELEASE_NAME)) {
		snprintf(ctx->message, sizeof ctx->message,
			 "ferry manages the Cilium release named \"%s\"; a release named \"%.100s\" cannot be "
			 "adopted", INSTALL_RELEASE_NAME, name);
		rc = PHASE_FAIL;
		goto out;
	}
	if (ns && *ns) {
		snprintf(run.ns_buf, sizeof run.ns_buf, "%s", ns);
		run.ns = run.ns_buf;
	}
	int st = relstore_list(&run, &secrets);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	struct relstore_state rs;
	relstore_scan(secrets, &rs);
	if (!rs.latest) {
		char other[128];
		if (!ns && release_elsewhere(&run, run.release, other, sizeof other))
			snprintf(ctx->message, sizeof ctx->message,
				 "release %s is in namespace %s, not in the %s profile's namespace %s; set "
				 "params.namespace to \"%s\" to adopt it there",
				 run.release, other, profile_name(run.profile), run.ns, other);
		else
			snprintf(ctx->message, sizeof ctx->message,
				 "no Helm release %s found in namespace %s (no sh.helm.release.v1.%s.vN Secret): "
				 "nothing to adopt", run.release, run.ns, run.release);
		rc = PHASE_FAIL;
		goto out;
	}
	if (relstore_is_pending(rs.latest_status)) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s revision %d is %s: a Helm operation is in flight; adopt it once it has "
			 "finished", run.release, rs.latest, rs.latest_status);
		rc = PHASE_FAIL;
		goto out;
	}
	if (!rs.deployed) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s has no deployed revision (the newest, %d, is %s): nothing running to adopt",
			 run.release, rs.latest, rs.latest_status ? rs.latest_status : "?");
		rc = PHASE_FAIL;
		goto out;
	}
	deployed = release_from_secret(rs.deployed, err, sizeof err);
	if (!deployed) {
		snprintf(ctx->message, sizeof ctx->message, "cannot read release %s revision %d: %.300s",
			 run.release, rs.deployed_rev, err);
		rc = PHASE_FAIL;
		goto out;
	}
	const json_t *meta = json_object_get(json_object_get(deployed, "chart"), "metadata");
	const char *chart = json_string_value(json_object_get(meta, "name"));
	if (!chart || strcmp(chart, "cilium")) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s revision %d is chart \"%.100s\", not Cilium: ferry adopts only the cilium chart",
			 run.release, rs.deployed_rev, chart ? chart : "?");
		rc = PHASE_FAIL;
		goto out;
	}
	const char *version = json_string_value(json_object_get(meta, "version"));
	runner_event(ctx, "info", "adopting release %s revision %d (cilium %s) from namespace %s",
		     run.release, rs.deployed_rev, version ? version : "?", run.ns);
	/* Every readable revision, oldest first, so the deployed one is the
	 * newest deployed row. */
	long recorded = 0;
	for (int rev = 1; rev <= rs.latest && !run.dry_run; rev++) {
		const json_t *sec = relstore_secret_of(secrets, rev);
		json_t *rel = sec ? release_from_secret(sec, err, sizeof err) : NULL;
		if (!rel)
			continue;
		rc = relstore_save_db(&run, rel, 1);
		json_decref(rel);
		if (rc != PHASE_OK)
			goto out;
		recorded++;
	}
	/* What surrounds the release now, for a later rollback to this revision. */
	snap = surroundings_read(&run, NULL, 0, &st);
	if (snap) {
		json_object_set(snap, "eni_agent_image_before", json_object_get(snap, "eni_agent_image"));
		rc = save_snapshot(&run, rs.deployed_rev, snap);
		if (rc != PHASE_OK)
			goto out;
	}
	json_t *rr = install_result_obj(ctx, "release");
	json_object_set_new(rr, "name", json_string(run.release));
	json_object_set_new(rr, "namespace", json_string(run.ns));
	json_object_set_new(rr, "revision", json_integer(rs.deployed_rev));
	json_object_set_new(rr, "chart_version", json_string(version ? version : ""));
	json_object_set_new(rr, "status", json_string("deployed"));
	json_object_set_new(rr, "adopted_revisions", json_integer(recorded));
	snprintf(ctx->message, sizeof ctx->message,
		 "%sadopted release %s revision %d (cilium %s); %ld revision(s) recorded, nothing written to "
		 "the cluster", run.dry_run ? "dry run: " : "", run.release, rs.deployed_rev,
		 version ? version : "?", recorded);
	rc = PHASE_OK;
out:
	json_decref(secrets), json_decref(deployed), json_decref(snap);
	install_run_end(&run);
	return rc;
}

/* ---- remediation (params.on_failure: rollback) ----------------------------- */

int lifecycle_wants_remediation(const struct db_job_claim *job)
{
	const char *of = json_string_value(json_object_get(job->params, "on_failure"));
	return (!strcmp(job->kind, "upgrade") || !strcmp(job->kind, "install")) && of &&
	       !strcmp(of, "rollback") && !json_is_true(json_object_get(job->params, "dry_run"));
}

int lifecycle_retries(const struct db_job_claim *job)
{
	const json_t *r = json_object_get(job->params, "retries");
	return json_is_integer(r) && json_integer_value(r) > 0 && json_integer_value(r) <= 10
		       ? (int)json_integer_value(r) : 0;
}

int lifecycle_remediate(struct runner_ctx *ctx, char *outcome, size_t len)
{
	char err[256] = "";
	json_t *list = db_release_list_for_job(ctx->conn, ctx->job, err, sizeof err);
	int target = 0;
	size_t i;
	const json_t *r;
	json_array_foreach(list, i, r) {
		const char *st = json_string_value(json_object_get(r, "status"));
		if (st && !strcmp(st, "deployed")) {
			target = (int)json_integer_value(json_object_get(r, "revision"));
			break;
		}
	}
	json_decref(list);
	json_t *rem = json_object();
	json_object_set_new(ctx->result, "remediation", rem);
	json_object_set_new(rem, "action", json_string("rollback"));
	if (!target) {
		snprintf(outcome, len, "no deployed revision to roll back to");
		json_object_set_new(rem, "state", json_string("skipped"));
		json_object_set_new(rem, "message", json_string(outcome));
		return -1;
	}
	/* The rollback phase, run for this job with params {revision: target}. */
	struct db_job_claim sub = *ctx->job;
	sub.params = json_pack("{s:i}", "revision", target);
	const json_t *mh = json_object_get(ctx->job->params, "max_history");
	if (mh)
		json_object_set(sub.params, "max_history", (json_t *)mh);
	snprintf(sub.kind, sizeof sub.kind, "rollback");
	struct runner_ctx rc2 = *ctx;
	rc2.job = &sub;
	rc2.phase = "remediation";
	rc2.message[0] = 0;
	rc2.detail = json_object();
	runner_event(&rc2, "warn", "on_failure: rolling back to revision %d", target);
	enum phase_rc prc = phase_rollback_release(&rc2);
	json_object_set_new(rem, "to_revision", json_integer(target));
	if (prc == PHASE_OK) {
		json_object_set(rem, "revision", json_object_get(rc2.detail, "revision"));
		json_object_set_new(rem, "state", json_string("succeeded"));
		snprintf(outcome, len, "rolled back to revision %d as revision %lld", target,
			 (long long)json_integer_value(json_object_get(rc2.detail, "revision")));
	} else {
		json_object_set_new(rem, "state", json_string("failed"));
		snprintf(outcome, len, "the rollback to revision %d failed too: %s", target, rc2.message);
	}
	json_object_set_new(rem, "message", json_string(outcome));
	runner_event(&rc2, prc == PHASE_OK ? "info" : "error", "on_failure: %s", outcome);
	json_decref(rc2.detail);
	json_decref(sub.params);
	return prc == PHASE_OK ? 0 : -1;
}
