/*
 * phase_apf.c: API Priority and Fairness limits for Cilium's list calls
 * (apf.h): FlowSchema and PriorityLevelConfiguration "cilium", applied with
 * server-side apply in the flowcontrol version the server serves (v1, or
 * v1beta3 on 1.26-1.28). Shares follow params.cluster_level ("L1000") when
 * given, else the node count.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/apf.h"
#include "server/install/phases.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <string.h>

/* The best flowcontrol version the server offers (static string). */
static const char *served_version(struct install_run *run, int *status)
{
	json_t *g = NULL;
	*status = kube_ops_get(run->ops, "/apis/" APF_GROUP, &g);
	const char *out = NULL;
	if (*status == 200) {
		static const char *const pref[] = { APF_GROUP "/v1", APF_GROUP "/v1beta3" };
		for (size_t k = 0; k < 2 && !out; k++) {
			size_t i;
			const json_t *v;
			json_array_foreach(json_object_get(g, "versions"), i, v) {
				const char *gv = json_string_value(json_object_get(v, "groupVersion"));
				if (gv && !strcmp(gv, pref[k])) {
					out = pref[k];
					break;
				}
			}
		}
	}
	json_decref(g);
	return out;
}

enum phase_rc phase_apf(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *fs = NULL, *pl = NULL;
	int st;
	const char *av = served_version(&run, &st);
	if (st != 200 && st != 404) {
		rc = install_call_failed(&run, st, "discover flowcontrol.apiserver.k8s.io");
		goto out;
	}
	if (!av) {
		snprintf(ctx->message, sizeof ctx->message,
			 "skipped: the API server serves neither flowcontrol v1 nor v1beta3");
		goto out;
	}
	const char *level = json_string_value(json_object_get(run.params, "cluster_level"));
	int shares = apf_shares_for_level(level);
	if (level && shares < 0) {
		snprintf(ctx->message, sizeof ctx->message,
			 "cluster_level \"%s\" is not a TKE cluster level (L5, L20, ..., L5000)", level);
		rc = PHASE_FAIL;
		goto out;
	}
	if (shares < 0) {
		long nodes = install_count_nodes(&run);
		if (nodes < 0) {
			rc = install_call_failed(&run, -1, "list nodes");
			goto out;
		}
		shares = apf_shares_for_nodes(nodes);
	}
	fs = apf_flowschema(av, run.ns);
	pl = apf_priority_level(av, shares);
	json_t *objs[2] = { pl, fs };   /* the level first: the schema refers to it */
	const char *acts[2] = { "", "" };
	for (int i = 0; i < 2; i++) {
		json_t *fields = json_array();
		st = install_apply(&run, objs[i], &acts[i], fields);
		if (st < 200 || st >= 300) {
			json_decref(fields);
			rc = install_call_failed(&run, st, i ? "apply FlowSchema cilium"
							     : "apply PriorityLevelConfiguration cilium");
			goto out;
		}
		install_record_object(&run, objs[i], acts[i], fields);
		json_decref(fields);
	}
	json_object_set_new(ctx->detail, "api_version", json_string(av));
	json_object_set_new(ctx->detail, "nominal_concurrency_shares", json_integer(shares));
	snprintf(ctx->message, sizeof ctx->message,
		 "%sPriorityLevelConfiguration cilium %s (shares %d), FlowSchema cilium %s (%s)",
		 run.dry_run ? "dry run: " : "", acts[0], shares, acts[1], av);
out:
	json_decref(fs);
	json_decref(pl);
	install_run_end(&run);
	return rc;
}
