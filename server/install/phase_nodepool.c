/*
 * phase_nodepool.c: the optional Karpenter node pool (nodepool.h). The
 * objects are built from params.nodepool and applied with server-side
 * apply; without params.nodepool the phase has nothing to do. Preflight
 * already refused the job when Karpenter is missing.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/nodepool.h"
#include "server/install/phases.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <string.h>

static const char *str_or(const json_t *o, const char *k, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v && *v ? v : dflt;
}

/* An id list as [{id: x}, ...]; -1 when not a list of strings. */
static int id_terms(const json_t *list, json_t **out)
{
	*out = json_array();
	size_t i;
	const json_t *v;
	if (list && !json_is_array(list))
		return -1;
	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			return -1;
		json_array_append_new(*out, json_pack("{s:O}", "id", v));
	}
	return 0;
}

json_t *nodepool_objects(const json_t *np, char *err, size_t errlen)
{
	const char *name = str_or(np, "name", "default");
	const json_t *fam = json_object_get(np, "instance_families");
	if (!json_is_array(fam) || !json_array_size(fam)) {
		snprintf(err, errlen, "nodepool.instance_families must list at least one instance family (e.g. [\"S5\"])");
		return NULL;
	}
	json_t *subnets, *sgs, *keys;
	int bad = id_terms(json_object_get(np, "subnets"), &subnets);
	bad |= id_terms(json_object_get(np, "security_groups"), &sgs);
	bad |= id_terms(json_object_get(np, "ssh_keys"), &keys);
	if (bad || !json_array_size(subnets)) {
		json_decref(subnets), json_decref(sgs), json_decref(keys);
		snprintf(err, errlen, "nodepool.subnets (required), security_groups and ssh_keys must be lists of ids");
		return NULL;
	}
	const json_t *cap = json_object_get(np, "capacity_types");
	json_t *capv = json_is_array(cap) && json_array_size(cap) ? json_deep_copy(cap)
								   : json_pack("[s]", "on-demand");
	const json_t *mc = json_object_get(np, "min_cpu");
	char min_cpu[32];
	snprintf(min_cpu, sizeof min_cpu, "%lld", json_is_integer(mc) ? (long long)json_integer_value(mc) : 1LL);
	const json_t *cl = json_object_get(np, "cpu_limit");
	json_int_t cpu_limit = json_is_integer(cl) ? json_integer_value(cl) : 100;

	json_t *reqs = json_pack("[{s:s, s:s, s:[s]}, {s:s, s:s, s:[s]}, {s:s, s:s, s:O}, {s:s, s:s, s:o}, {s:s, s:s, s:[s]}]",
				 "key", "kubernetes.io/arch", "operator", "In", "values", "amd64",
				 "key", "kubernetes.io/os", "operator", "In", "values", "linux",
				 "key", "karpenter.k8s.tke/instance-family", "operator", "In", "values", fam,
				 "key", "karpenter.sh/capacity-type", "operator", "In", "values", capv,
				 "key", "karpenter.k8s.tke/instance-cpu", "operator", "Gt", "values", min_cpu);
	json_t *pool = json_pack(
		"{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:s, s:s, s:[{s:s}]}, s:{s:{s:{s:s}}, s:{s:o, s:{s:s, s:s, s:s}}}, s:{s:I}}}",
		"apiVersion", "karpenter.sh/v1", "kind", "NodePool",
		"metadata", "name", name, "labels", "app.kubernetes.io/managed-by", "ferry",
		"spec",
		"disruption", "consolidationPolicy", str_or(np, "consolidation_policy", "WhenEmptyOrUnderutilized"),
		"consolidateAfter", str_or(np, "consolidate_after", "5m"),
		"budgets", "nodes", str_or(np, "budget_nodes", "10%"),
		"template", "metadata", "annotations",
		"beta.karpenter.k8s.tke.machine.spec/annotations", "node.tke.cloud.tencent.com/beta-image=ts4-public",
		"spec", "requirements", reqs,
		"nodeClassRef", "group", "karpenter.k8s.tke", "kind", "TKEMachineNodeClass", "name", name,
		"limits", "cpu", cpu_limit);
	json_t *cls = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:o}}",
				"apiVersion", "karpenter.k8s.tke/v1beta1", "kind", "TKEMachineNodeClass",
				"metadata", "name", name, "labels", "app.kubernetes.io/managed-by", "ferry",
				"spec", "subnetSelectorTerms", subnets);
	json_t *spec = json_object_get(cls, "spec");
	if (json_array_size(sgs))
		json_object_set(spec, "securityGroupSelectorTerms", sgs);
	if (json_array_size(keys))
		json_object_set(spec, "sshKeySelectorTerms", keys);
	json_decref(sgs), json_decref(keys);
	return json_pack("[o, o]", pool, cls);
}

enum phase_rc phase_nodepool(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *objs = NULL;
	const json_t *np = json_object_get(run.params, "nodepool");
	if (!json_is_object(np)) {
		snprintf(ctx->message, sizeof ctx->message, "no node pool requested");
		goto out;
	}
	char err[256];
	objs = nodepool_objects(np, err, sizeof err);
	if (!objs) {
		snprintf(ctx->message, sizeof ctx->message, "%s", err);
		rc = PHASE_FAIL;
		goto out;
	}
	const char *acts[2] = { "", "" };
	for (size_t i = 0; i < 2; i++) {
		json_t *o = json_array_get(objs, i);
		json_t *fields = json_array();
		int st = install_apply(&run, o, &acts[i], fields);
		if (st < 200 || st >= 300) {
			json_decref(fields);
			rc = install_call_failed(&run, st, i ? "apply TKEMachineNodeClass" : "apply NodePool");
			goto out;
		}
		install_record_object(&run, o, acts[i], fields);
		json_decref(fields);
	}
	snprintf(ctx->message, sizeof ctx->message, "%sNodePool %s %s, TKEMachineNodeClass %s",
		 run.dry_run ? "dry run: " : "",
		 json_string_value(json_object_get(json_object_get(json_array_get(objs, 0), "metadata"), "name")),
		 acts[0], acts[1]);
out:
	json_decref(objs);
	install_run_end(&run);
	return rc;
}
