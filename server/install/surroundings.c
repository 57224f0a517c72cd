/*
 * install/surroundings: snapshot and restore of the objects around the
 * release (see surroundings.h). The retire selector and the preStop hook
 * are phase_retire.c's; the APF objects phase_apf.c's.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/surroundings.h"
#include "server/install/apf.h"
#include "server/kube/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DS_PATH "/apis/apps/v1/namespaces/kube-system/daemonsets/"
#define CM_PATH "/api/v1/namespaces/kube-system/configmaps/"
#define SEL_KEY "label-not-exist"
#define SEL_VAL "node-not-exist"
#define CNI_CONF "/host/etc/cni/net.d/00-multus.conf"

const char *const surroundings_retirable[] = { "kube-proxy", "tke-cni-agent", "ip-masq-agent", NULL };

static const json_t *pod_spec(const json_t *ds)
{
	return json_object_get(json_object_get(json_object_get(ds, "spec"), "template"), "spec");
}

static int is_retired(const json_t *ds)
{
	const char *v = json_string_value(json_object_get(json_object_get(pod_spec(ds), "nodeSelector"), SEL_KEY));
	return v && !strcmp(v, SEL_VAL);
}

/* ferry's preStop clean-up on the first container (phase_retire.c). */
static int has_our_prestop(const json_t *ds)
{
	const json_t *c0 = json_array_get(json_object_get(pod_spec(ds), "containers"), 0);
	const json_t *cmd = json_object_get(json_object_get(json_object_get(
		json_object_get(c0, "lifecycle"), "preStop"), "exec"), "command");
	return json_array_size(cmd) == 2 && json_string_value(json_array_get(cmd, 1)) &&
	       !strcmp(json_string_value(json_array_get(cmd, 1)), CNI_CONF);
}

static char *path_of(const char *base, const char *name)
{
	size_t n = strlen(base) + strlen(name) + 1;
	char *p = malloc(n);
	snprintf(p, n, "%s%s", base, name);
	return p;
}

/* GET into *out (through the job's memo when from_memo): 0 found, 1
 * absent, -1 failed (*status). */
static int get(struct install_run *run, const char *path, int from_memo, json_t **out, int *status)
{
	*out = NULL;
	int st = from_memo ? kube_ops_get_memo(run->ops, path, out) : kube_ops_get(run->ops, path, out);
	if (st == 200)
		return 0;
	if (st == 404)
		return 1;
	*status = st;
	return -1;
}

json_t *surroundings_read(struct install_run *run, const char *cni_name, int from_memo, int *status)
{
	json_t *snap = json_object(), *obj = NULL;
	*status = 200;
	char *p = path_of(DS_PATH, "tke-eni-agent");
	int r = get(run, p, from_memo, &obj, status);
	free(p);
	if (r < 0)
		goto fail;
	const json_t *c0 = json_array_get(json_object_get(pod_spec(obj), "containers"), 0);
	json_object_set_new(snap, "eni_agent_image", r == 0 && json_object_get(c0, "image")
				  ? json_incref(json_object_get(c0, "image")) : json_null());
	json_decref(obj);

	p = path_of(CM_PATH, cni_name ? cni_name : "cni-config");
	r = get(run, p, from_memo, &obj, status);
	free(p);
	if (r < 0)
		goto fail;
	if (r == 0)
		json_object_set_new(snap, "cni_config", json_pack("{s:s, s:O}", "name", cni_name ? cni_name : "cni-config",
			"data", json_object_get(obj, "data") ? json_object_get(obj, "data") : json_object()));
	else
		json_object_set_new(snap, "cni_config", json_null());
	json_decref(obj);

	json_t *retired = json_array();
	json_object_set_new(snap, "retired", retired);
	for (int i = 0; surroundings_retirable[i]; i++) {
		p = path_of(DS_PATH, surroundings_retirable[i]);
		r = get(run, p, from_memo, &obj, status);
		free(p);
		if (r < 0)
			goto fail;
		if (r == 0 && is_retired(obj))
			json_array_append_new(retired, json_string(surroundings_retirable[i]));
		json_decref(obj);
	}

	json_object_set_new(snap, "apf", json_null());
	static const char *const versions[] = { "v1", "v1beta3" };
	for (int v = 0; v < 2; v++) {
		char fsp[200], plp[200];
		snprintf(fsp, sizeof fsp, "/apis/" APF_GROUP "/%s/flowschemas/" APF_NAME, versions[v]);
		snprintf(plp, sizeof plp, "/apis/" APF_GROUP "/%s/prioritylevelconfigurations/" APF_NAME, versions[v]);
		json_t *fs = NULL, *pl = NULL;
		r = get(run, fsp, from_memo, &fs, status);
		if (r < 0)
			goto fail;
		if (r == 0) {
			r = get(run, plp, from_memo, &pl, status);
			if (r < 0) {
				json_decref(fs);
				goto fail;
			}
			char av[100];
			snprintf(av, sizeof av, APF_GROUP "/%s", versions[v]);
			json_object_set_new(snap, "apf", json_pack("{s:s, s:O, s:O}", "api_version", av,
				"flowschema", json_object_get(fs, "spec"),
				"priority_level", pl ? json_object_get(pl, "spec") : json_null()));
			json_decref(fs), json_decref(pl);
			break;
		}
	}
	return snap;
fail:
	json_decref(snap);
	return NULL;
}

static int in_list(const json_t *arr, const char *s)
{
	size_t i;
	const json_t *v;
	json_array_foreach(arr, i, v)
		if (json_string_value(v) && !strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

static void record(struct install_run *run, const char *av, const char *kind, const char *ns,
		   const char *name, const char *action, const char *field)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", av, "kind", kind, "metadata",
			      "name", name, "namespace", ns ? ns : "");
	json_t *f = field ? json_pack("[s]", field) : NULL;
	install_record_object(run, o, action, f);
	json_decref(o), json_decref(f);
}

static int ok(int st)
{
	return st >= 200 && st < 300;
}

/* Retire or bring back one DaemonSet. */
static int set_retired(struct install_run *run, const char *name, int want, long *changes)
{
	char *p = path_of(DS_PATH, name);
	json_t *ds = NULL;
	int st = 200;
	int r = get(run, p, 0, &ds, &st);
	if (r != 0) {
		free(p);
		return r == 1 ? 200 : st;
	}
	if (want && !is_retired(ds)) {
		json_t *patch = json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "spec", "nodeSelector",
					  SEL_KEY, SEL_VAL);
		st = kube_ops_patch(run->ops, p, KUBE_PATCH_STRATEGIC, patch, NULL);
		json_decref(patch);
		if (ok(st)) {
			(*changes)++;
			record(run, "apps/v1", "DaemonSet", "kube-system", name, "changed", ".spec.template.spec.nodeSelector");
			runner_event(run->ctx, "info", "%s retired again (nodeSelector %s)", name, SEL_KEY);
		}
	} else if (!want && (is_retired(ds) || has_our_prestop(ds))) {
		json_t *patch = json_array();
		if (is_retired(ds))
			json_array_append_new(patch, json_pack("{s:s, s:s}", "op", "remove",
				"path", "/spec/template/spec/nodeSelector/" SEL_KEY));
		if (has_our_prestop(ds)) {
			json_array_append_new(patch, json_pack("{s:s, s:s, s:s}", "op", "test",
				"path", "/spec/template/spec/containers/0/lifecycle/preStop/exec/command/1", "value", CNI_CONF));
			json_array_append_new(patch, json_pack("{s:s, s:s}", "op", "remove",
				"path", "/spec/template/spec/containers/0/lifecycle/preStop"));
		}
		st = kube_ops_patch(run->ops, p, KUBE_PATCH_JSON, patch, NULL);
		json_decref(patch);
		if (ok(st)) {
			(*changes)++;
			record(run, "apps/v1", "DaemonSet", "kube-system", name, "changed", ".spec.template.spec.nodeSelector");
			runner_event(run->ctx, "info", "%s schedules again (ferry's nodeSelector%s removed)", name,
				     has_our_prestop(ds) ? " and preStop hook" : "");
		}
	}
	json_decref(ds);
	free(p);
	return ok(st) ? 200 : st;
}

static int delete_if_present(struct install_run *run, const char *path, const char *av, const char *kind,
			     const char *ns, const char *name, long *changes)
{
	int st = kube_ops_delete(run->ops, path, NULL);
	if (st == 404)
		return 200;
	if (!ok(st))
		return st;
	(*changes)++;
	record(run, av, kind, ns, name, "deleted", NULL);
	runner_event(run->ctx, "info", "%s %s deleted", kind, name);
	return 200;
}

int surroundings_restore(struct install_run *run, const json_t *want, const json_t *now,
			 long *changes, char *what, size_t whatlen)
{
	int st = 200;
	/* tke-eni-agent image. */
	const char *img = json_string_value(json_object_get(want, "eni_agent_image"));
	const char *cur = json_string_value(json_object_get(now, "eni_agent_image"));
	if (img && cur && strcmp(img, cur)) {
		json_t *patch = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]",
			"op", "test", "path", "/spec/template/spec/containers/0/image", "value", cur,
			"op", "replace", "path", "/spec/template/spec/containers/0/image", "value", img);
		st = kube_ops_patch(run->ops, DS_PATH "tke-eni-agent", KUBE_PATCH_JSON, patch, NULL);
		json_decref(patch);
		if (!ok(st)) {
			snprintf(what, whatlen, "restore the tke-eni-agent image");
			return st;
		}
		(*changes)++;
		record(run, "apps/v1", "DaemonSet", "kube-system", "tke-eni-agent", "changed",
		       ".spec.template.spec.containers[0].image");
		runner_event(run->ctx, "info", "tke-eni-agent image %s -> %s", cur, img);
	}
	/* The CNI ConfigMap. */
	if (json_object_get(want, "cni_config")) {
		const json_t *wc = json_object_get(want, "cni_config");
		const json_t *nc = json_object_get(now, "cni_config");
		if (json_is_object(wc)) {
			json_t *cm = json_pack("{s:s, s:s, s:{s:O, s:s}, s:O}", "apiVersion", "v1", "kind", "ConfigMap",
				"metadata", "name", json_object_get(wc, "name"), "namespace", "kube-system",
				"data", json_object_get(wc, "data"));
			const char *action = NULL;
			st = install_apply(run, cm, &action, NULL);
			if (ok(st) && strcmp(action, "unchanged")) {
				(*changes)++;
				install_record_object(run, cm, action, NULL);
			}
			json_decref(cm);
		} else if (json_is_object(nc)) {
			const char *name = json_string_value(json_object_get(nc, "name"));
			char *p = path_of(CM_PATH, name);
			st = delete_if_present(run, p, "v1", "ConfigMap", "kube-system", name, changes);
			free(p);
		}
		if (!ok(st)) {
			snprintf(what, whatlen, "restore the CNI ConfigMap");
			return st;
		}
	}
	/* Retired DaemonSets. */
	const json_t *wr = json_object_get(want, "retired");
	if (json_is_array(wr)) {
		for (int i = 0; surroundings_retirable[i]; i++) {
			st = set_retired(run, surroundings_retirable[i], in_list(wr, surroundings_retirable[i]), changes);
			if (!ok(st)) {
				snprintf(what, whatlen, "restore the nodeSelector of %s", surroundings_retirable[i]);
				return st;
			}
		}
	}
	/* APF objects. */
	if (json_object_get(want, "apf")) {
		const json_t *wa = json_object_get(want, "apf");
		const json_t *na = json_object_get(now, "apf");
		if (json_is_object(wa)) {
			const char *av = json_string_value(json_object_get(wa, "api_version"));
			json_t *pl = json_pack("{s:s, s:s, s:{s:s}, s:O}", "apiVersion", av,
				"kind", "PriorityLevelConfiguration", "metadata", "name", APF_NAME,
				"spec", json_object_get(wa, "priority_level"));
			json_t *fs = json_pack("{s:s, s:s, s:{s:s}, s:O}", "apiVersion", av, "kind", "FlowSchema",
				"metadata", "name", APF_NAME, "spec", json_object_get(wa, "flowschema"));
			json_t *objs[2] = { pl, fs };
			for (int i = 0; i < 2 && ok(st); i++) {
				const char *action = NULL;
				st = install_apply(run, objs[i], &action, NULL);
				if (ok(st) && strcmp(action, "unchanged")) {
					(*changes)++;
					install_record_object(run, objs[i], action, NULL);
				}
			}
			json_decref(pl), json_decref(fs);
		} else if (json_is_object(na)) {
			const char *av = json_string_value(json_object_get(na, "api_version"));
			char fsp[200], plp[200];
			snprintf(fsp, sizeof fsp, "/apis/%s/flowschemas/" APF_NAME, av);
			snprintf(plp, sizeof plp, "/apis/%s/prioritylevelconfigurations/" APF_NAME, av);
			st = delete_if_present(run, fsp, av, "FlowSchema", NULL, APF_NAME, changes);
			if (ok(st))
				st = delete_if_present(run, plp, av, "PriorityLevelConfiguration", NULL, APF_NAME, changes);
		}
		if (!ok(st)) {
			snprintf(what, whatlen, "restore the APF objects");
			return st;
		}
	}
	return 200;
}

static void compare_one(json_t *out, const char *member, const char *name, const json_t *want,
			const json_t *now, const char *detail)
{
	int same = json_equal(want ? want : json_null(), now ? now : json_null()) ||
		   (!want && !now);
	json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "member", member,
		"state", same ? "in_sync" : "drifted", "detail", same ? "" : detail));
}

json_t *surroundings_compare(const json_t *want, const json_t *now)
{
	json_t *out = json_array();
	if (json_is_string(json_object_get(want, "eni_agent_image")))
		compare_one(out, "eni_agent_image", "tke-eni-agent image", json_object_get(want, "eni_agent_image"),
			    json_object_get(now, "eni_agent_image"), "the tke-eni-agent image differs");
	if (json_object_get(want, "cni_config"))
		compare_one(out, "cni_config", "cni-config", json_object_get(want, "cni_config"),
			    json_object_get(now, "cni_config"), "the CNI ConfigMap differs or is missing");
	const json_t *wr = json_object_get(want, "retired"), *nr = json_object_get(now, "retired");
	for (int i = 0; surroundings_retirable[i] && json_is_array(wr); i++) {
		int w = in_list(wr, surroundings_retirable[i]), n = in_list(nr, surroundings_retirable[i]);
		if (!w && !n)
			continue;
		char name[80], detail[160];
		snprintf(name, sizeof name, "%s retired", surroundings_retirable[i]);
		snprintf(detail, sizeof detail, "%s %s", surroundings_retirable[i],
			 w ? "schedules again (ferry's nodeSelector is gone)" : "is retired but should run");
		json_t *a = json_boolean(w), *b = json_boolean(n);
		compare_one(out, "retired", name, a, b, detail);
		json_decref(a), json_decref(b);
	}
	if (json_object_get(want, "apf"))
		compare_one(out, "apf", "APF objects", json_object_get(want, "apf"), json_object_get(now, "apf"),
			    "the FlowSchema / PriorityLevelConfiguration cilium differ or are missing");
	return out;
}
