/*
 * phase_preflight_checks.c: the install job's preflight phase.
 *
 * It runs core's connection step (phase_preflight: reach the API server,
 * record version and node count), then reads what preflight_rules needs —
 * GET /version, every DaemonSet, the nodes, default/kubernetes endpoints,
 * the kube-proxy ConfigMap, the release's Helm records and (when a node
 * pool is asked for) the Karpenter CRD — and lets the rules decide; then
 * resolves and renders the chart once (chart_preview.h), so a missing
 * chart or values that do not render fail here. Nothing is written to the
 * cluster. The facts later phases need go into this
 * phase's detail, which outlives retries.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/chart_preview.h"
#include "server/install/l2.h"
#include "server/install/phases.h"
#include "server/install/relstore.h"
#include "server/install/preflight_rules.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET that treats 404 as "absent" (*out NULL); other failures -> rc. */
static enum phase_rc get_optional(struct install_run *run, const char *path, json_t **out)
{
	int st = kube_ops_get_memo(run->ops, path, out);
	if (st == 200 || st == 404)
		return PHASE_OK;
	return install_call_failed(run, st, path);
}

enum phase_rc phase_install_preflight(struct runner_ctx *ctx)
{
	enum phase_rc rc = phase_preflight(ctx);
	if (rc != PHASE_OK)
		return rc;
	struct install_run run;
	rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *version = NULL, *ds = NULL, *nodes = NULL, *ep = NULL, *cm = NULL;
	json_t *secrets = NULL, *crd = NULL;
	struct preflight_result res = { 0 };
	int st;
	char sel[128];
	char *coll = NULL;

	/* The connection step just read /version and the nodes (the memo). */
	if ((rc = get_optional(&run, "/version", &version)) != PHASE_OK)
		goto out;
	if ((st = kube_ops_list(run.ops, "/apis/apps/v1/daemonsets", NULL, NULL, 500, &ds)) != 200) {
		rc = install_call_failed(&run, st, "list DaemonSets");
		goto out;
	}
	if ((st = kube_ops_list_memo(run.ops, "/api/v1/nodes", NULL, NULL, 500, &nodes)) != 200) {
		rc = install_call_failed(&run, st, "list nodes");
		goto out;
	}
	if ((rc = get_optional(&run, "/api/v1/namespaces/default/endpoints/kubernetes", &ep)) != PHASE_OK)
		goto out;
	if ((rc = get_optional(&run, "/api/v1/namespaces/kube-system/configmaps/kube-proxy", &cm)) != PHASE_OK)
		goto out;
	snprintf(sel, sizeof sel, "owner=helm,name=%s", run.release);
	kube_ops_paths(run.ops, "v1", "Secret", run.ns, NULL, &coll, NULL);
	if ((st = kube_ops_list(run.ops, coll, sel, NULL, 100, &secrets)) != 200) {
		rc = install_call_failed(&run, st, "list release records");
		goto out;
	}
	int karpenter = 0;
	if (json_is_object(json_object_get(run.params, "nodepool"))) {
		if ((rc = get_optional(&run, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
					     "nodepools.karpenter.sh", &crd)) != PHASE_OK)
			goto out;
		karpenter = crd != NULL;
	}

	if (json_object_get(run.params, "l2")) {
		char lerr[300];
		if (l2_check_params(run.profile, json_object_get(run.params, "l2"), lerr, sizeof lerr) != 0) {
			snprintf(ctx->message, sizeof ctx->message, "refused: %s", lerr);
			rc = PHASE_FAIL;
			goto out;
		}
	}

	struct preflight_input in = {
		.profile = run.profile, .params = run.params, .version = version,
		.daemonsets = ds, .nodes = nodes, .endpoints = ep, .kube_proxy_cm = cm,
		.release_secrets = secrets, .release_name = run.release,
		.karpenter_installed = karpenter,
	};
	struct relstore_state rs;
	relstore_scan(secrets, &rs);
	in.adopted = rs.latest > 0 && relstore_in_db(&run, rs.latest);
	int refusals = preflight_evaluate(&in, &res);
	size_t i;
	const json_t *w;
	json_array_foreach(res.warnings, i, w)
		runner_event(ctx, "warn", "%s", json_string_value(json_object_get(w, "message")));
	json_t *d = ctx->detail;
	json_object_set_new(d, "profile", json_string(profile_name(run.profile)));
	json_object_set_new(d, "kube_version", json_string(res.kube_version ? res.kube_version : ""));
	json_object_set_new(d, "kube_minor", json_integer(res.kube_minor));
	json_object_set_new(d, "nodes", json_integer(res.nodes));
	json_object_set_new(d, "super_nodes", json_integer(res.super_nodes));
	json_object_set_new(d, "release_exists", json_boolean(res.release_exists));
	/* Helm records of the release in the cluster: 0 makes the job a first
	 * install (install_run.first_install). */
	json_object_set_new(d, "release_records", json_integer((json_int_t)json_array_size(secrets)));
	if (res.k8s_service_host) {
		json_object_set_new(d, "k8s_service_host", json_string(res.k8s_service_host));
		json_object_set_new(d, "k8s_service_port", json_integer(res.k8s_service_port));
	}
	json_object_set(d, "warnings", res.warnings);
	json_object_set(d, "refusals", res.refusals);
	json_t *r = install_result_obj(ctx, "preflight");
	json_object_update(r, d);
	if (refusals) {
		char *sum = preflight_refusal_summary(&res);
		snprintf(ctx->message, sizeof ctx->message, "refused: %s", sum);
		free(sum);
		rc = PHASE_FAIL;
		goto out;
	}
	/* The lists read above (release records included) are done with:
	 * freed before the preview, which may queue for a render slot. */
	json_decref(version), json_decref(ds), json_decref(nodes), json_decref(ep);
	json_decref(cm), json_decref(secrets), json_decref(crd);
	version = ds = nodes = ep = cm = secrets = crd = NULL;
	/* The chart and the values, resolved and rendered once before any
	 * phase writes (the values need the facts just found). */
	json_decref(run.preflight);
	run.preflight = json_incref(d);
	if ((rc = install_chart_preview(&run)) != PHASE_OK) {
		json_object_set_new(r, "chart_error", json_string(ctx->message));
		goto out;
	}
	json_object_set(r, "chart", json_object_get(d, "chart"));
	snprintf(ctx->message, sizeof ctx->message, "Kubernetes %s, profile %s, %ld node(s), "
		 "API server endpoint %s:%d, %zu warning(s)",
		 res.kube_version ? res.kube_version : "?", profile_name(run.profile), res.nodes,
		 res.k8s_service_host ? res.k8s_service_host : "(none)", res.k8s_service_port,
		 json_array_size(res.warnings));
	rc = PHASE_OK;
out:
	preflight_result_clear(&res);
	json_decref(version), json_decref(ds), json_decref(nodes), json_decref(ep);
	json_decref(cm), json_decref(secrets), json_decref(crd);
	free(coll);
	install_run_end(&run);
	return rc;
}
