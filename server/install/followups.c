/*
 * followups.c: the rollout restart of the masquerade / endpoint-slice
 * follow-ups. The decision is a pure function over the job parameters and
 * what the cilium phase recorded, so a second identical install (nothing
 * changed) restarts nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/followups.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void followup_now_rfc3339(char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *followup_restart_patch(const char *now)
{
	return json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "metadata", "annotations",
			 FOLLOWUP_RESTARTED_AT, now);
}

/* The action the cilium phase recorded for kind/name, or NULL. */
static const char *action_of(const json_t *detail, const char *kind, const char *name)
{
	size_t i;
	const json_t *o;
	json_array_foreach(json_object_get(detail, "objects"), i, o) {
		const char *k = json_string_value(json_object_get(o, "kind"));
		const char *n = json_string_value(json_object_get(o, "name"));
		if (k && n && !strcmp(k, kind) && !strcmp(n, name))
			return json_string_value(json_object_get(o, "action"));
	}
	return NULL;
}

int followup_needs_restart(const json_t *params, const json_t *cilium_detail)
{
	const json_t *masq = json_object_get(params, "masquerade");
	const char *cidr = json_string_value(json_object_get(masq, "vpc_cidr"));
	int force = json_is_true(json_object_get(masq, "restart"));
	int wanted = (cidr && *cidr) || json_is_true(json_object_get(params, "endpoint_slice")) || force;
	if (!wanted || !cilium_detail)
		return 0;
	const char *ds = action_of(cilium_detail, "DaemonSet", "cilium");
	if (!ds || !strcmp(ds, "created"))
		return 0;
	const char *cm = action_of(cilium_detail, "ConfigMap", "cilium-config");
	return force || (cm && !strcmp(cm, "changed"));
}

int followup_rollout_restart(struct kube_ops *ops, const char *path, const char *now)
{
	json_t *patch = followup_restart_patch(now);
	int st = kube_ops_patch(ops, path, KUBE_PATCH_MERGE, patch, NULL);
	json_decref(patch);
	return st;
}
