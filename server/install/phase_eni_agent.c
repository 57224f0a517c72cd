/*
 * phase_eni_agent.c: upgrade kube-system/tke-eni-agent to the v3.8.0 line.
 *
 * Cilium uses route tables 2004 and 2005, which VPC-CNI before v3.8.0 may
 * also pick. When the agent's first container runs a tag older than
 * v3.8.0 (pre-releases of 3.8.0 count as the 3.8.0 line), its image is
 * JSON-patched to the same repository with eni_agent_tag (default
 * v3.8.0-rc.0) — with a "test" operation on the old value so a concurrent
 * change is never overwritten — and the rollout is awaited. Only the tke
 * profile needs this; a tag that is not a version fails with advice.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/imagetag.h"
#include "server/install/phases.h"
#include "server/kube/client.h"
#include "server/kube/memo.h"
#include "server/kube/ops.h"
#include "server/kube/rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENI_PATH "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-eni-agent"

long install_wait_timeout_ms(const json_t *params)
{
	const json_t *v = json_object_get(params, "wait_timeout_s");
	return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) * 1000 : 600000;
}

enum phase_rc install_wait_rollout(struct install_run *run, const char *path, const char *kind,
				   long timeout_ms)
{
	/* The first check is at once: the object this job just wrote (the
	 * answer to its apply or patch, in the job's memo) when that says the
	 * rollout is still going, which saves a read that could only say the
	 * same; else a GET. Then polls back off from 25 ms, doubling, to 1 s. */
	long waited = 0, step = INSTALL_ROLLOUT_POLL_FIRST_MS;
	char msg[256] = "", what[300];
	snprintf(what, sizeof what, "%s rollout (%s)", kind, path);
	struct waitlog w;
	install_wait_start(&w, what, timeout_ms);
	json_t *known = NULL;
	if (kube_memo_get(kube_client_memo(run->kc), path, &known) == 200 &&
	    rollout_status(kind, known, NULL, 0) != ROLLOUT_PROGRESSING) {
		json_decref(known);
		known = NULL;
	}
	for (;;) {
		json_t *obj = known;
		known = NULL;
		if (!obj) {
			int st = kube_ops_get(run->ops, path, &obj);
			if (st != 200) {
				json_decref(obj);
				return install_call_failed(run, st, path);
			}
		}
		enum rollout_state rs = rollout_status(kind, obj, msg, sizeof msg);
		json_decref(obj);
		if (rs == ROLLOUT_DONE) {
			runner_event(run->ctx, "info", "%s", msg);
			return PHASE_OK;
		}
		if (rs == ROLLOUT_ERROR) {
			snprintf(run->ctx->message, sizeof run->ctx->message, "%s", msg);
			return PHASE_FAIL;
		}
		if (waited >= timeout_ms) {
			snprintf(run->ctx->message, sizeof run->ctx->message,
				 "timed out after %ld s: %s", waited / 1000, msg);
			return PHASE_RETRY;
		}
		install_wait_tick(run, &w, msg);
		if (runner_sleep(run->ctx, step))
			return PHASE_ABORT;
		waited += step;
		step = step * 2 > INSTALL_ROLLOUT_POLL_MAX_MS ? INSTALL_ROLLOUT_POLL_MAX_MS : step * 2;
	}
}

enum phase_rc phase_eni_agent(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *ds = NULL, *patch = NULL;
	char *repo = NULL, *tag = NULL;
	if (run.profile != PROFILE_TKE && run.profile != PROFILE_TKE_COEXIST) {
		snprintf(ctx->message, sizeof ctx->message, "not needed for profile %s",
			 profile_name(run.profile));
		goto out;
	}
	const char *want = json_string_value(json_object_get(run.params, "eni_agent_tag"));
	if (!want || !*want)
		want = INSTALL_DEFAULT_ENI_TAG;
	int st = kube_ops_get_memo(run.ops, ENI_PATH, &ds);
	if (st != 200) {
		rc = install_call_failed(&run, st, "read kube-system/tke-eni-agent");
		goto out;
	}
	const json_t *c0 = json_array_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "containers"), 0);
	const char *image = json_string_value(json_object_get(c0, "image"));
	if (!image || imagetag_split(image, &repo, &tag) < 0) {
		snprintf(ctx->message, sizeof ctx->message, "tke-eni-agent has no container image");
		rc = PHASE_FAIL;
		goto out;
	}
	int cmp = 0;
	if (!tag || imagetag_compare_core(tag, "v3.8.0", &cmp) < 0) {
		snprintf(ctx->message, sizeof ctx->message,
			 "cannot tell the version of tke-eni-agent from its image %s; make sure it is "
			 "v3.8.0 or newer (Cilium's route tables 2004/2005 collide with older VPC-CNI) "
			 "and set eni_agent_tag to its tag", image);
		rc = PHASE_FAIL;
		goto out;
	}
	json_object_set_new(ctx->detail, "image_before", json_string(image));
	if (cmp >= 0) {
		snprintf(ctx->message, sizeof ctx->message, "tke-eni-agent %s is new enough", tag);
		install_record_object(&run, ds, "unchanged", NULL);
		goto out;
	}
	char newimg[512];
	snprintf(newimg, sizeof newimg, "%s:%s", repo, want);
	patch = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]",
			  "op", "test", "path", "/spec/template/spec/containers/0/image", "value", image,
			  "op", "replace", "path", "/spec/template/spec/containers/0/image", "value", newimg);
	st = kube_ops_patch(run.ops, ENI_PATH, KUBE_PATCH_JSON, patch, NULL);
	if (st != 200) {
		rc = install_call_failed(&run, st, "patch tke-eni-agent image");
		goto out;
	}
	json_t *fields = json_pack("[s]", ".spec.template.spec.containers[0].image");
	install_record_object(&run, ds, "changed", fields);
	json_decref(fields);
	json_object_set_new(ctx->detail, "image_after", json_string(newimg));
	if (run.dry_run) {
		snprintf(ctx->message, sizeof ctx->message, "dry run: would set tke-eni-agent image %.200s -> %.200s",
			 image, newimg);
		goto out;
	}
	runner_event(ctx, "info", "tke-eni-agent image %.200s -> %.200s; waiting for the rollout", image, newimg);
	rc = install_wait_rollout(&run, ENI_PATH, "DaemonSet", install_wait_timeout_ms(run.params));
	if (rc == PHASE_OK)
		snprintf(ctx->message, sizeof ctx->message, "tke-eni-agent upgraded %s -> %s", tag, want);
out:
	free(repo);
	free(tag);
	json_decref(ds);
	json_decref(patch);
	install_run_end(&run);
	return rc;
}
