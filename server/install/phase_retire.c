/*
 * phase_retire.c: make kube-proxy, tke-cni-agent and (if present)
 * ip-masq-agent schedule nowhere, the guide's way: a strategic merge patch
 * of spec.template.spec.nodeSelector to {"label-not-exist":
 * "node-not-exist"}. They are never deleted (deleting kube-proxy blocks
 * later TKE upgrades; the nodeSelector keeps a way back, see uninstall).
 *
 * When nodes already exist, tke-cni-agent first gets a preStop hook that
 * removes /host/etc/cni/net.d/00-multus.conf, and its rollout is awaited,
 * so existing nodes drop the old CNI configuration as the pods go.
 * Each step is skipped when already in place. Skipped entirely when
 * kube-proxy is kept (tke-coexist, keep_kube_proxy) and outside TKE.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/phases.h"
#include "server/install/preflight_rules.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DS_PATH "/apis/apps/v1/namespaces/kube-system/daemonsets/"
#define SEL_KEY RETIRE_SELECTOR_KEY
#define SEL_VAL RETIRE_SELECTOR_VALUE
#define CNI_CONF "/host/etc/cni/net.d/00-multus.conf"

static int retired(const json_t *ds)
{
	const json_t *sel = json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "nodeSelector");
	const char *v = json_string_value(json_object_get(sel, SEL_KEY));
	return v && !strcmp(v, SEL_VAL);
}

static int has_prestop(const json_t *ds)
{
	const json_t *c0 = json_array_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "containers"), 0);
	const json_t *cmd = json_object_get(json_object_get(json_object_get(
		json_object_get(c0, "lifecycle"), "preStop"), "exec"), "command");
	return json_array_size(cmd) == 2 && json_string_value(json_array_get(cmd, 1)) &&
	       !strcmp(json_string_value(json_array_get(cmd, 1)), CNI_CONF);
}

static enum phase_rc add_prestop(struct install_run *run, const json_t *ds, const char *path)
{
	if (has_prestop(ds))
		return PHASE_OK;
	json_t *patch = json_pack("[{s:s, s:s, s:{s:{s:{s:[s,s]}}}}]", "op", "add",
				  "path", "/spec/template/spec/containers/0/lifecycle",
				  "value", "preStop", "exec", "command", "rm", CNI_CONF);
	int st = kube_ops_patch(run->ops, path, KUBE_PATCH_JSON, patch, NULL);
	json_decref(patch);
	if (st != 200)
		return install_call_failed(run, st, "add the preStop clean-up to tke-cni-agent");
	json_t *f = json_pack("[s]", ".spec.template.spec.containers[0].lifecycle.preStop");
	install_record_object(run, ds, "changed", f);
	json_decref(f);
	if (run->dry_run)
		return PHASE_OK;
	runner_event(run->ctx, "info", "tke-cni-agent: preStop clean-up of %s added; waiting for the rollout",
		     CNI_CONF);
	return install_wait_rollout(run, path, "DaemonSet", install_wait_timeout_ms(run->params));
}

enum phase_rc phase_retire(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	if (run.profile != PROFILE_TKE) {
		snprintf(ctx->message, sizeof ctx->message, "not needed for profile %s",
			 profile_name(run.profile));
		goto out;
	}
	if (!profile_replaces_kube_proxy(run.profile, run.params)) {
		snprintf(ctx->message, sizeof ctx->message,
			 "skipped: kube-proxy is kept (keep_kube_proxy), so the TKE components stay");
		goto out;
	}
	static const char *const names[] = { "kube-proxy", "tke-cni-agent", "ip-masq-agent" };
	long nodes = install_count_nodes(&run);
	if (nodes < 0) {
		rc = install_call_failed(&run, -1, "list nodes");
		goto out;
	}
	char done[256] = "";
	json_t *selector = json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "spec",
				     "nodeSelector", SEL_KEY, SEL_VAL);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[256];
		snprintf(path, sizeof path, DS_PATH "%s", names[i]);
		json_t *ds = NULL;
		int st = kube_ops_get_memo(run.ops, path, &ds);
		if (st == 404) {
			runner_event(ctx, "info", "%s: not present", names[i]);
			continue;
		}
		if (st != 200) {
			rc = install_call_failed(&run, st, names[i]);
			json_decref(ds);
			break;
		}
		if (retired(ds)) {
			install_record_object(&run, ds, "unchanged", NULL);
			json_decref(ds);
			continue;
		}
		if (!strcmp(names[i], "tke-cni-agent") && nodes > 0) {
			rc = add_prestop(&run, ds, path);
			if (rc != PHASE_OK) {
				json_decref(ds);
				break;
			}
		}
		st = kube_ops_patch(run.ops, path, KUBE_PATCH_STRATEGIC, selector, NULL);
		if (st != 200) {
			rc = install_call_failed(&run, st, names[i]);
			json_decref(ds);
			break;
		}
		json_t *f = json_pack("[s]", ".spec.template.spec.nodeSelector." SEL_KEY);
		install_record_object(&run, ds, "changed", f);
		json_decref(f);
		json_decref(ds);
		runner_event(ctx, "info", "%s%s now schedules nowhere (nodeSelector %s=%s)",
			     run.dry_run ? "dry run: " : "", names[i], SEL_KEY, SEL_VAL);
		size_t l = strlen(done);
		snprintf(done + l, sizeof done - l, "%s%s", l ? ", " : "", names[i]);
	}
	json_decref(selector);
	if (rc == PHASE_OK)
		snprintf(ctx->message, sizeof ctx->message, "%s%s",
			 !done[0] ? (run.dry_run ? "dry run: " : "") : run.dry_run ? "dry run: would retire " : "retired: ",
			 done[0] ? done : "nothing to do (already retired)");
out:
	install_run_end(&run);
	return rc;
}
