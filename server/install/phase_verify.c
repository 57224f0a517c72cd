/*
 * phase_verify.c: list the release's pods in the release namespace by the
 * labels every chart version sets (verify_pod_selectors: 1.12's pods carry
 * no app.kubernetes.io/part-of) and report them as `kubectl get pod` does
 * (verify.h): rows into job.result.verify.pods, the table into the log.
 * Pods being deleted (the previous revision's after an upgrade) are left
 * out. The phase reports; it does not fail on pods that are not ready (the
 * wait phase judged the rollout), but says how many run and are ready.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/common/buf.h"
#include "server/install/phases.h"
#include "server/install/verify.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum phase_rc phase_verify(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *pods = json_array();
	char *coll = NULL;
	size_t terminating = 0;
	kube_ops_paths(run.ops, "v1", "Pod", run.ns, NULL, &coll, NULL);
	for (int i = 0; verify_pod_selectors[i]; i++) {
		json_t *list = NULL;
		int st = kube_ops_list(run.ops, coll, verify_pod_selectors[i], NULL, 500, &list);
		if (st != 200) {
			json_decref(list);
			rc = install_call_failed(&run, st, "list Cilium's pods");
			goto out;
		}
		terminating += verify_collect_pods(pods, list);
		json_decref(list);
	}
	json_t *rows = verify_pod_rows(pods, time(NULL));
	long total = 0, ready = verify_ready_count(rows, &total);
	long running = verify_running_count(rows);
	json_t *vr = install_result_obj(ctx, "verify");
	json_object_set_new(vr, "namespace", json_string(run.ns));
	json_object_set_new(vr, "pods", rows);
	json_object_set_new(vr, "running", json_integer(running));
	json_object_set_new(vr, "ready", json_integer(ready));
	json_object_set_new(vr, "total", json_integer(total));
	json_object_set_new(vr, "terminating_ignored", json_integer((json_int_t)terminating));
	json_object_set(ctx->detail, "pods", rows);
	if (total) {
		char *table = verify_table_text(rows);
		runner_event(ctx, "info", "kubectl --namespace=%s get pod -l '%s' (and -l %s)\n%s",
			     run.ns, verify_pod_selectors[0], verify_pod_selectors[1], table);
		free(table);
	}
	char extra[96] = "";
	if (!total)
		snprintf(extra, sizeof extra, " (no nodes yet, or a dry run)");
	else if (terminating)
		snprintf(extra, sizeof extra, " (%zu terminating pod(s) of the previous revision not counted)",
			 terminating);
	snprintf(ctx->message, sizeof ctx->message, "Cilium pods: %ld running, %ld ready, %ld total%s",
		 running, ready, total, extra);
out:
	json_decref(pods);
	free(coll);
	install_run_end(&run);
	return rc;
}
