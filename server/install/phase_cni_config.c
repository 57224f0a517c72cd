/*
 * phase_cni_config.c: the ConfigMap kube-system/<cni.configMap> holding the
 * chained CNI configuration (SPEC §2.3).
 *
 * The name is read from the same merged user values the cilium phase
 * renders with (install_user_values), so the ConfigMap and the chart's
 * cni.configMap can never disagree, whatever layer or --set changed it.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/cniconfig.h"
#include "server/install/phases.h"
#include "server/install/values.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum phase_rc phase_cni_config(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *values = NULL, *cm = NULL, *fields = json_array();
	if (!profile_uses_tke_cni(run.profile)) {
		snprintf(ctx->message, sizeof ctx->message, "not needed for profile %s",
			 profile_name(run.profile));
		goto out;
	}
	char err[512] = "";
	values = install_user_values(&run, NULL, err, sizeof err);
	if (!values) {
		snprintf(ctx->message, sizeof ctx->message, "%s", err);
		rc = PHASE_FAIL;
		goto out;
	}
	const char *name = profile_cni_configmap_name(values);
	if (!name) {
		snprintf(ctx->message, sizeof ctx->message,
			 "cni.configMap is empty in the merged values; the tke profile needs the name of "
			 "the ConfigMap that holds the chained CNI configuration");
		rc = PHASE_FAIL;
		goto out;
	}
	cm = cniconfig_configmap(name, "kube-system", NULL);
	const char *action;
	int st = install_apply(&run, cm, &action, fields);
	if (st < 200 || st >= 300) {
		rc = install_call_failed(&run, st, "apply the CNI ConfigMap");
		goto out;
	}
	install_record_object(&run, cm, action, fields);
	json_object_set_new(ctx->detail, "configmap", json_string(name));
	snprintf(ctx->message, sizeof ctx->message, "%sConfigMap kube-system/%s %s",
		 run.dry_run ? "dry run: " : "", name, action);
out:
	json_decref(values);
	json_decref(cm);
	json_decref(fields);
	install_run_end(&run);
	return rc;
}
