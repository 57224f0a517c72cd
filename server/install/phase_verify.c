/*
 * phase_verify.c: list the pods labelled app.kubernetes.io/part-of=cilium
 * in the release namespace and report them as `kubectl get pod` does
 * (verify.h): rows into job.result.verify.pods, the table into the log.
 * The phase reports; it does not fail on pods that are not ready (the wait
 * phase judged the rollout), but says how many are.
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
	json_t *pods = NULL;
	char *coll = NULL;
	kube_ops_paths(run.ops, "v1", "Pod", run.ns, NULL, &coll, NULL);
	int st = kube_ops_list(run.ops, coll, "app.kubernetes.io/part-of=cilium", NULL, 500, &pods);
	if (st != 200) {
		rc = install_call_failed(&run, st, "list Cilium's pods");
		goto out;
	}
	json_t *rows = verify_pod_rows(pods, time(NULL));
	long total = 0, ready = verify_ready_count(rows, &total);
	json_t *vr = install_result_obj(ctx, "verify");
	json_object_set_new(vr, "namespace", json_string(run.ns));
	json_object_set_new(vr, "pods", rows);
	json_object_set_new(vr, "ready", json_integer(ready));
	json_object_set_new(vr, "total", json_integer(total));
	json_object_set(ctx->detail, "pods", rows);
	if (total) {
		char *table = verify_table_text(rows);
		runner_event(ctx, "info", "kubectl --namespace=%s get pod -l app.kubernetes.io/part-of=cilium\n%s",
			     run.ns, table);
		free(table);
	}
	snprintf(ctx->message, sizeof ctx->message, "%ld of %ld Cilium pod(s) running and ready%s", ready, total,
		 total ? "" : " (no nodes yet, or a dry run)");
out:
	json_decref(pods);
	free(coll);
	install_run_end(&run);
	return rc;
}
