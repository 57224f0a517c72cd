/*
 * phase_wait.c: wait for Cilium's workloads to roll out (kubectl's rules,
 * rollout.h) — the DaemonSets and Deployments the cilium phase applied
 * (cilium, cilium-envoy, cilium-operator with the default chart).
 *
 * A cluster without (non-virtual) nodes cannot run the pods: the phase then
 * succeeds at once and records state "waiting for nodes" instead of
 * hanging or failing; Cilium starts when the first nodes join. A dry run
 * has nothing to wait for.
 *
 * Before waiting, the masquerade / endpoint-slice follow-ups (followups.h)
 * restart the cilium DaemonSet's pods like `kubectl rollout restart` when
 * the cilium phase changed cilium-config under running pods. The restart
 * time is kept in this phase's detail so a retried wait does not restart
 * the pods a second time.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/followups.h"
#include "server/install/phases.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <string.h>

enum phase_rc phase_wait(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *cil = NULL;
	json_t *wr = install_result_obj(ctx, "wait");
	if (run.dry_run) {
		snprintf(ctx->message, sizeof ctx->message, "dry run: nothing to wait for");
		json_object_set_new(wr, "state", json_string("skipped (dry run)"));
		goto out;
	}
	long nodes = install_count_nodes(&run);
	if (nodes < 0) {
		rc = install_call_failed(&run, -1, "list nodes");
		goto out;
	}
	if (nodes == 0) {
		json_object_set_new(ctx->detail, "state", json_string("waiting for nodes"));
		json_object_set_new(wr, "state", json_string("waiting for nodes"));
		snprintf(ctx->message, sizeof ctx->message,
			 "waiting for nodes: the cluster has no nodes yet; Cilium's pods start when nodes join");
		goto out;
	}
	cil = install_phase_detail(ctx, "cilium");
	const json_t *workloads = json_object_get(cil, "workloads");
	if (!json_array_size(workloads)) {
		snprintf(ctx->message, sizeof ctx->message, "the cilium phase recorded no workloads to wait for");
		goto out;
	}
	long timeout = install_wait_timeout_ms(run.params);
	size_t i;
	const json_t *w;
	if (followup_needs_restart(run.params, cil)) {
		json_t *prev = install_phase_detail(ctx, ctx->phase ? ctx->phase : "wait");
		const char *done = json_string_value(json_object_get(prev, "restarted_at"));
		if (done) {
			json_object_set_new(ctx->detail, "restarted_at", json_string(done));
		} else {
			json_array_foreach(workloads, i, w) {
				const char *name = json_string_value(json_object_get(w, "name"));
				const char *kind = json_string_value(json_object_get(w, "kind"));
				const char *path = json_string_value(json_object_get(w, "path"));
				if (!name || !kind || !path || !*path || strcmp(kind, "DaemonSet") || strcmp(name, "cilium"))
					continue;
				char now[40];
				followup_now_rfc3339(now, sizeof now);
				int st = followup_rollout_restart(run.ops, path, now);
				if (st < 200 || st >= 300) {
					json_decref(prev);
					rc = install_call_failed(&run, st, "restart the cilium DaemonSet's pods");
					goto out;
				}
				json_object_set_new(ctx->detail, "restarted_at", json_string(now));
				json_object_set_new(wr, "restarted_at", json_string(now));
				runner_event(ctx, "info", "cilium-config changed under running agents: "
					     "restarted DaemonSet cilium (restartedAt %s)", now);
			}
		}
		json_decref(prev);
	}
	json_array_foreach(workloads, i, w) {
		const char *path = json_string_value(json_object_get(w, "path"));
		const char *kind = json_string_value(json_object_get(w, "kind"));
		if (!path || !*path || !kind)
			continue;
		rc = install_wait_rollout(&run, path, kind, timeout);
		if (rc != PHASE_OK)
			goto out;
	}
	json_object_set_new(ctx->detail, "state", json_string("rolled out"));
	json_object_set_new(wr, "state", json_string("rolled out"));
	snprintf(ctx->message, sizeof ctx->message, "%zu workload(s) rolled out on %ld node(s)",
		 json_array_size(workloads), nodes);
out:
	json_decref(cil);
	install_run_end(&run);
	return rc;
}
