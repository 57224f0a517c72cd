/*
 * l2.c: the L2-announcement objects of the k3s profile and the phase that
 * applies them.
 *
 * The objects are pure functions of params.l2 (validated field by field
 * with messages naming the field). Cilium's operator registers its CRDs
 * when it starts, so the phase runs after "wait" and polls the two CRDs
 * until they are Established and serve v2alpha1 before applying; on a
 * cluster without nodes the operator cannot start and the phase records
 * "waiting for nodes" instead of hanging, like the wait phase.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/l2.h"
#include "server/install/imagetag.h"
#include "server/install/phases.h"
#include "server/kube/ops.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int l2_cidr_ok(const char *s)
{
	if (!s)
		return 0;
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || (size_t)(slash - s) >= 64)
		return 0;
	char addr[64];
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	unsigned char bin[16];
	int max;
	if (inet_pton(AF_INET, addr, bin) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, bin) == 1)
		max = 128;
	else
		return 0;
	const char *p = slash + 1;
	if (!*p || strlen(p) > 3)
		return 0;
	int bits = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		bits = bits * 10 + (*p - '0');
	}
	if (slash[1] == '0' && slash[2])
		return 0;   /* no leading zeros */
	return bits <= max;
}

static int strings_ok(const json_t *a)
{
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v)
		if (!json_is_string(v) || !json_string_length(v))
			return 0;
	return 1;
}

/* A Kubernetes LabelSelector from node_selector (map or selector). */
static json_t *selector_of(const json_t *ns, char *err, size_t errlen)
{
	if (!json_is_object(ns)) {
		snprintf(err, errlen, "l2.node_selector must be an object: {label: value} or "
			 "{matchLabels: {...}, matchExpressions: [...]}");
		return NULL;
	}
	const json_t *ml = json_object_get(ns, "matchLabels");
	const json_t *me = json_object_get(ns, "matchExpressions");
	if (ml || me) {
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)ns, k, v) {
			if (strcmp(k, "matchLabels") && strcmp(k, "matchExpressions")) {
				snprintf(err, errlen, "l2.node_selector: unknown field %.64s next to matchLabels/matchExpressions", k);
				return NULL;
			}
		}
		json_object_foreach((json_t *)ml, k, v) {
			if (!json_is_string(v)) {
				snprintf(err, errlen, "l2.node_selector.matchLabels.%.64s must be a string", k);
				return NULL;
			}
		}
		if ((ml && !json_is_object(ml)) || (me && !json_is_array(me))) {
			snprintf(err, errlen, "l2.node_selector: matchLabels is an object, matchExpressions a list");
			return NULL;
		}
		size_t i;
		const json_t *e;
		json_array_foreach(me, i, e) {
			const char *key = json_string_value(json_object_get(e, "key"));
			const char *op = json_string_value(json_object_get(e, "operator"));
			const json_t *vals = json_object_get(e, "values");
			int exists = op && (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist"));
			int in = op && (!strcmp(op, "In") || !strcmp(op, "NotIn"));
			if (!key || !*key || (!exists && !in) || (in && (!json_is_array(vals) ||
							 !json_array_size(vals) || !strings_ok(vals))) ||
			    (exists && vals && json_array_size(vals))) {
				snprintf(err, errlen, "l2.node_selector.matchExpressions[%zu]: needs key, operator "
					 "In/NotIn (with values) or Exists/DoesNotExist (without)", i);
				return NULL;
			}
		}
		return json_deep_copy(ns);
	}
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)ns, k, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "l2.node_selector.%.64s must be a string label value", k);
			return NULL;
		}
	}
	return json_pack("{s:O}", "matchLabels", ns);
}

static int bool_or(const json_t *o, const char *key, int dflt, int *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "l2.%s must be true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

static const char *name_or(const json_t *o, const char *key, const char *dflt, char *err,
			   size_t errlen, int *bad)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return dflt;
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	int ok = n > 0 && n <= 63;
	for (size_t i = 0; ok && i < n; i++) {
		char c = s[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		     ((c == '-' || c == '.') && i > 0 && i < n - 1);
	}
	if (!ok) {
		snprintf(err, errlen, "l2.%s must be a DNS name (lower-case letters, digits, '-', '.')", key);
		*bad = 1;
	}
	return s;
}

json_t *l2_objects(const json_t *l2, const char *chart_version, char *err, size_t errlen)
{
	static const char *const known[] = { "interfaces", "node_selector", "cidrs", "external_ips",
					     "load_balancer_ips", "policy_name", "pool_name", NULL };
	if (!json_is_object(l2)) {
		snprintf(err, errlen, "l2 must be an object {interfaces, node_selector, cidrs}");
		return NULL;
	}
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)l2, key, val) {
		int ok = 0;
		for (int i = 0; known[i]; i++)
			ok |= !strcmp(known[i], key);
		if (!ok) {
			snprintf(err, errlen, "l2.%.64s is not a known field (interfaces, node_selector, cidrs, "
				 "external_ips, load_balancer_ips, policy_name, pool_name)", key);
			return NULL;
		}
	}
	const json_t *cidrs = json_object_get(l2, "cidrs");
	if (!json_is_array(cidrs) || !json_array_size(cidrs)) {
		snprintf(err, errlen, "l2.cidrs must list at least one CIDR for the LoadBalancer IP pool "
			 "(a range routable in the nodes' L2 network, e.g. 192.168.20.0/24)");
		return NULL;
	}
	size_t i;
	const json_t *c;
	json_array_foreach(cidrs, i, c) {
		if (!l2_cidr_ok(json_string_value(c))) {
			snprintf(err, errlen, "l2.cidrs[%zu] is not an IPv4 or IPv6 CIDR", i);
			return NULL;
		}
	}
	const json_t *ifs = json_object_get(l2, "interfaces");
	if (ifs && (!json_is_array(ifs) || !strings_ok(ifs))) {
		snprintf(err, errlen, "l2.interfaces must be a list of interface names or regular expressions");
		return NULL;
	}
	int ext, lb, bad = 0;
	if (bool_or(l2, "external_ips", 1, &ext, err, errlen) || bool_or(l2, "load_balancer_ips", 1, &lb, err, errlen))
		return NULL;
	const char *pname = name_or(l2, "policy_name", "ferry-l2-policy", err, errlen, &bad);
	const char *plname = name_or(l2, "pool_name", "ferry-lb-ip-pool", err, errlen, &bad);
	if (bad)
		return NULL;
	json_t *sel = NULL;
	const json_t *ns = json_object_get(l2, "node_selector");
	if (ns && !(sel = selector_of(ns, err, errlen)))
		return NULL;

	json_t *spec = json_object();
	if (sel)
		json_object_set_new(spec, "nodeSelector", sel);
	if (ifs && json_array_size(ifs))
		json_object_set_new(spec, "interfaces", json_deep_copy(ifs));
	json_object_set_new(spec, "externalIPs", json_boolean(ext));
	json_object_set_new(spec, "loadBalancerIPs", json_boolean(lb));
	json_t *policy = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:o}", "apiVersion", L2_API_VERSION,
				   "kind", "CiliumL2AnnouncementPolicy", "metadata", "name", pname,
				   "labels", "app.kubernetes.io/managed-by", "ferry", "spec", spec);

	int cmp = 1;
	int old = chart_version && imagetag_compare_core(chart_version, "1.15.0", &cmp) == 0 && cmp < 0;
	json_t *blocks = json_array();
	json_array_foreach(cidrs, i, c)
		json_array_append_new(blocks, json_pack("{s:O}", "cidr", c));
	json_t *pool = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:o}}", "apiVersion", L2_API_VERSION,
				 "kind", "CiliumLoadBalancerIPPool", "metadata", "name", plname,
				 "labels", "app.kubernetes.io/managed-by", "ferry",
				 "spec", old ? "cidrs" : "blocks", blocks);
	return json_pack("[o,o]", policy, pool);
}

int l2_check_params(enum profile_kind profile, const json_t *l2, char *err, size_t errlen)
{
	if (profile != PROFILE_K3S) {
		snprintf(err, errlen, "l2 (L2 announcements) is only offered for the k3s profile, not %s",
			 profile_name(profile));
		return -1;
	}
	json_t *objs = l2_objects(l2, NULL, err, errlen);
	if (!objs)
		return -1;
	json_decref(objs);
	return 0;
}

int l2_crd_ready(const json_t *crd, const char *version)
{
	int established = 0;
	size_t i;
	const json_t *c;
	json_array_foreach(json_object_get(json_object_get(crd, "status"), "conditions"), i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		const char *s = json_string_value(json_object_get(c, "status"));
		if (t && s && !strcmp(t, "Established") && !strcmp(s, "True"))
			established = 1;
	}
	if (!established)
		return 0;
	const json_t *v;
	json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		if (n && !strcmp(n, version) && json_is_true(json_object_get(v, "served")))
			return 1;
	}
	return -1;
}

/* ---- the phase ---------------------------------------------------------- */

/* Poll both CRDs: PHASE_OK when ready, PHASE_RETRY on timeout (message
 * set), PHASE_FAIL when a version is not served, PHASE_ABORT. *absent set
 * when a CRD did not exist at the last poll. */
static enum phase_rc wait_crds(struct install_run *run, long timeout_ms, int *absent)
{
	static const char *const crds[2] = { L2_POLICY_CRD, L2_POOL_CRD };
	long waited = 0, step = 1000;
	struct waitlog w;
	install_wait_start(&w, "Cilium's L2 CRDs " L2_POLICY_CRD " and " L2_POOL_CRD
			   " (cilium-operator registers them when it starts)", timeout_ms);
	for (;;) {
		int ready = 0;
		*absent = 0;
		for (int i = 0; i < 2; i++) {
			char path[160];
			snprintf(path, sizeof path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s",
				 crds[i]);
			json_t *crd = NULL;
			int st = kube_ops_get(run->ops, path, &crd);
			if (st == 404) {
				*absent = 1;
				continue;
			}
			if (st != 200)
				return install_call_failed(run, st, "read Cilium's L2 CRDs");
			int r = l2_crd_ready(crd, "v2alpha1");
			json_decref(crd);
			if (r < 0) {
				snprintf(run->ctx->message, sizeof run->ctx->message,
					 "CRD %s does not serve cilium.io/v2alpha1; this Cilium version cannot take "
					 "the L2 objects ferry writes", crds[i]);
				return PHASE_FAIL;
			}
			ready += r;
		}
		if (ready == 2)
			return PHASE_OK;
		if (waited >= timeout_ms) {
			snprintf(run->ctx->message, sizeof run->ctx->message,
				 "Cilium's L2 CRDs (%s, %s) were not Established after %ld s; is cilium-operator running?",
				 L2_POLICY_CRD, L2_POOL_CRD, timeout_ms / 1000);
			return PHASE_RETRY;
		}
		install_wait_tick(run, &w, *absent ? "not registered yet" : "registered, not Established yet");
		if (runner_sleep(run->ctx, step))
			return PHASE_ABORT;
		waited += step;
	}
}

enum phase_rc phase_l2(struct runner_ctx *ctx)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *objs = NULL;
	const json_t *l2 = json_object_get(run.params, "l2");
	if (!l2) {
		snprintf(ctx->message, sizeof ctx->message, "no L2 announcements requested");
		goto out;
	}
	char err[512];
	if (l2_check_params(run.profile, l2, err, sizeof err) != 0 ||
	    !(objs = l2_objects(l2, json_string_value(json_object_get(run.params, "chart_version")),
				 err, sizeof err))) {
		snprintf(ctx->message, sizeof ctx->message, "%s", err);
		rc = PHASE_FAIL;
		goto out;
	}
	json_t *res = install_result_obj(ctx, "l2");
	int absent = 0;
	if (run.dry_run) {
		/* Cilium is not installed in a dry run: report what would be created. */
		rc = wait_crds(&run, 0, &absent);
		if (rc == PHASE_FAIL || rc == PHASE_ABORT)
			goto out;
		if (rc == PHASE_RETRY) {
			size_t i;
			const json_t *o;
			json_array_foreach(objs, i, o)
				install_record_object(&run, o, "created", NULL);
			snprintf(ctx->message, sizeof ctx->message,
				 "dry run: the L2 policy and IP pool would be created once Cilium's CRDs exist");
			rc = PHASE_OK;
			goto out;
		}
	} else {
		long nodes = install_count_nodes(&run);
		long timeout = install_wait_timeout_ms(run.params);
		rc = wait_crds(&run, nodes == 0 ? 0 : timeout, &absent);
		if (rc == PHASE_RETRY && nodes == 0) {
			json_object_set_new(ctx->detail, "state", json_string("waiting for nodes"));
			json_object_set_new(res, "state", json_string("waiting for nodes"));
			snprintf(ctx->message, sizeof ctx->message,
				 "waiting for nodes: cilium-operator registers the L2 CRDs when it runs; "
				 "run the install again after nodes join to apply the L2 policy and IP pool");
			rc = PHASE_OK;
			goto out;
		}
		if (rc != PHASE_OK)
			goto out;
	}
	size_t i;
	const json_t *o;
	json_t *applied = json_array();
	json_object_set_new(ctx->detail, "objects_applied", applied);
	json_array_foreach(objs, i, o) {
		const char *action;
		json_t *fields = json_array();
		int st = install_apply(&run, o, &action, fields);
		const char *kind = json_string_value(json_object_get(o, "kind"));
		const char *name = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
		if (st < 200 || st >= 300) {
			char what[200];
			snprintf(what, sizeof what, "apply %s %s", kind, name);
			json_decref(fields);
			rc = install_call_failed(&run, st, what);
			goto out;
		}
		install_record_object(&run, o, action, fields);
		json_array_append_new(applied, json_pack("{s:s, s:s, s:s}", "kind", kind, "name", name,
							 "action", action));
		json_decref(fields);
	}
	json_object_set_new(res, "state", json_string(run.dry_run ? "dry run" : "applied"));
	snprintf(ctx->message, sizeof ctx->message, "%sL2 announcement policy and LoadBalancer IP pool applied",
		 run.dry_run ? "dry run: " : "");
	rc = PHASE_OK;
out:
	json_decref(objs);
	install_run_end(&run);
	return rc;
}
