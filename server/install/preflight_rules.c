/*
 * preflight_rules.c: decide whether an install may proceed.
 *
 * Each rule reads the objects handed in and appends {code, message} to the
 * refusals or the warnings. Messages say what was found and what to do
 * about it, because they are what the user reads in the job log and the
 * API's error field. Every rule runs even after a refusal, so one preflight
 * reports every problem at once.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/preflight_rules.h"
#include "server/common/buf.h"
#include "server/common/yamljson.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void add(json_t *arr, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(json_t *arr, const char *code, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	json_array_append_new(arr, json_pack("{s:s, s:s}", "code", code,
					     "message", buf_cstr(&b)));
	buf_free(&b);
}

static const json_t *items_of(const json_t *list)
{
	if (json_is_array(list))
		return list;
	return json_object_get(list, "items");
}

static const char *meta_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static const char *label(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

int preflight_parse_version(const char *v, int *major, int *minor, int *patch)
{
	if (!v)
		return -1;
	if (*v == 'v')
		v++;
	int a = 0, b = 0, c = 0, n = 0;
	if (sscanf(v, "%d.%d.%d%n", &a, &b, &c, &n) < 2)
		return -1;
	*major = a;
	*minor = b;
	*patch = c;
	return 0;
}

const json_t *preflight_find_daemonset(const json_t *list, const char *name)
{
	size_t i;
	const json_t *ds;
	json_array_foreach(items_of(list), i, ds) {
		const char *n = meta_str(ds, "name");
		if (n && !strcmp(n, name))
			return ds;
	}
	return NULL;
}

int preflight_node_is_virtual(const json_t *node)
{
	const char *t = label(node, "type");
	if (t && !strcmp(t, "virtual-kubelet"))
		return 1;
	const char *it = label(node, "node.kubernetes.io/instance-type");
	if (it && !strcmp(it, "eklet"))
		return 1;
	size_t i;
	const json_t *taint;
	json_array_foreach(json_object_get(json_object_get(node, "spec"), "taints"), i, taint) {
		const char *k = json_string_value(json_object_get(taint, "key"));
		if (k && !strcmp(k, "eks.tke.cloud.tencent.com/eklet"))
			return 1;
	}
	return 0;
}

static const char *node_info(const json_t *node, const char *key)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(node, "status"), "nodeInfo"), key));
}

int preflight_node_os_supported(const json_t *node, char *reason, size_t reasonlen)
{
	const char *os = node_info(node, "osImage");
	const char *kernel = node_info(node, "kernelVersion");
	if (!os)
		os = "";
	if (!strncasecmp(os, "TencentOS Server ", 17)) {
		int major = atoi(os + 17);
		if (major >= 4)
			return 1;
		snprintf(reason, reasonlen,
			 "runs %s; Cilium needs TencentOS 4 (or Ubuntu >= 22.04): "
			 "recreate it with the node annotation node.tke.cloud.tencent.com/beta-image=ts4-public",
			 os);
		return 0;
	}
	if (!strncasecmp(os, "Ubuntu ", 7)) {
		int major = atoi(os + 7);
		if (major >= 22)
			return 1;
		snprintf(reason, reasonlen, "runs %s; Cilium needs Ubuntu >= 22.04 (or TencentOS 4)", os);
		return 0;
	}
	int kmaj = 0, kmin = 0;
	if (kernel && sscanf(kernel, "%d.%d", &kmaj, &kmin) == 2 &&
	    (kmaj > 5 || (kmaj == 5 && kmin >= 10))) {
		snprintf(reason, reasonlen,
			 "runs %s (kernel %s), an OS not validated for Cilium on TKE "
			 "(TencentOS 4 and Ubuntu >= 22.04 are)", *os ? os : "an unknown OS", kernel);
		return -1;
	}
	snprintf(reason, reasonlen,
		 "runs %s with kernel %s; Cilium needs kernel >= 5.10 (TencentOS 4 or Ubuntu >= 22.04)",
		 *os ? os : "an unknown OS", kernel ? kernel : "(unknown)");
	return 0;
}

/* --proxy-mode in a container's command or args. */
static const char *mode_from_args(const json_t *arr, char *buf, size_t buflen)
{
	size_t i;
	const json_t *a;
	const char *prev = NULL;
	json_array_foreach(arr, i, a) {
		const char *s = json_string_value(a);
		if (!s)
			continue;
		const char *m = strstr(s, "--proxy-mode=");
		if (m) {
			snprintf(buf, buflen, "%.*s", (int)strcspn(m + 13, " \t\n\""), m + 13);
			return buf;
		}
		if (prev && !strcmp(prev, "--proxy-mode")) {
			snprintf(buf, buflen, "%s", s);
			return buf;
		}
		prev = s;
	}
	return NULL;
}

const char *preflight_kube_proxy_mode(const json_t *ds, const json_t *cm)
{
	static const char *const known[] = { "iptables", "ipvs", "nftables", "kernelspace" };
	char buf[32];
	const char *found = NULL;
	const json_t *cs = json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "containers");
	size_t i;
	const json_t *c;
	json_array_foreach(cs, i, c) {
		found = mode_from_args(json_object_get(c, "command"), buf, sizeof buf);
		if (!found)
			found = mode_from_args(json_object_get(c, "args"), buf, sizeof buf);
		if (found)
			break;
	}
	if (!found && cm) {
		const char *key;
		const json_t *val;
		json_object_foreach(json_object_get(cm, "data"), key, val) {
			const char *text = json_string_value(val);
			if (!text)
				continue;
			json_t *conf = yaml_to_json(text, strlen(text), NULL, 0);
			const char *m = json_string_value(json_object_get(conf, "mode"));
			if (m) {
				snprintf(buf, sizeof buf, "%s", *m ? m : "iptables");
				found = buf;
			}
			json_decref(conf);
			if (found)
				break;
		}
	}
	if (!found)
		return NULL;
	if (!*found)
		return "iptables";   /* kube-proxy's default on Linux */
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (!strcmp(found, known[k]))
			return known[k];
	return NULL;
}

/* A Cilium agent DaemonSet anywhere in the list. */
static const json_t *find_cilium(const json_t *daemonsets)
{
	size_t i;
	const json_t *ds;
	json_array_foreach(items_of(daemonsets), i, ds) {
		const char *n = meta_str(ds, "name");
		const char *app = label(ds, "k8s-app");
		if ((n && !strcmp(n, "cilium")) || (app && !strcmp(app, "cilium")))
			return ds;
	}
	return NULL;
}

static void rule_version(const struct preflight_input *in, struct preflight_result *out)
{
	const char *gv = json_string_value(json_object_get(in->version, "gitVersion"));
	int maj = 0, min = 0, pat = 0;
	if (preflight_parse_version(gv, &maj, &min, &pat) < 0) {
		/* Fall back to major/minor ("32+" on vendor builds). */
		const char *smaj = json_string_value(json_object_get(in->version, "major"));
		const char *smin = json_string_value(json_object_get(in->version, "minor"));
		if (!smaj || !smin) {
			add(out->refusals, "kube_version",
			    "cannot read the Kubernetes version from GET /version (no gitVersion)");
			return;
		}
		maj = atoi(smaj);
		min = atoi(smin);
	}
	out->kube_version = xstrdup(gv ? gv : "");
	out->kube_major = maj;
	out->kube_minor = min;
	out->kube_patch = pat;
	int need_minor = 21;
	if (in->profile == PROFILE_TKE || in->profile == PROFILE_TKE_COEXIST)
		need_minor = 30;
	if (maj < 1 || (maj == 1 && min < need_minor))
		add(out->refusals, "kube_version",
		    "Kubernetes %s is too old: profile %s needs 1.%d.0 or newer; upgrade the cluster first",
		    gv ? gv : "?", profile_name(in->profile), need_minor);
}

static void rule_cni(const struct preflight_input *in, struct preflight_result *out)
{
	if (in->profile != PROFILE_TKE && in->profile != PROFILE_TKE_COEXIST)
		return;
	if (preflight_find_daemonset(in->daemonsets, "tke-eni-agent"))
		return;
	if (preflight_find_daemonset(in->daemonsets, "tke-bridge-agent"))
		add(out->refusals, "not_vpc_cni",
		    "this is a Global Router cluster (bridge CNI, DaemonSet kube-system/tke-bridge-agent): "
		    "Cilium cannot chain with the bridge plugin (cilium/cilium#20336, #35011); "
		    "create a cluster with the VPC-CNI network plugin instead");
	else
		add(out->refusals, "not_vpc_cni",
		    "the cluster does not use VPC-CNI (no DaemonSet kube-system/tke-eni-agent); "
		    "the TKE profiles chain Cilium behind VPC-CNI: create the cluster with "
		    "the VPC-CNI network plugin");
}

/* A release record ferry wrote (labelled PREFLIGHT_MANAGED_LABEL=true). */
static int release_state(const struct preflight_input *in, int *foreign)
{
	size_t i;
	const json_t *s;
	int ours = 0;
	*foreign = 0;
	json_array_foreach(items_of(in->release_secrets), i, s) {
		const char *owner = label(s, "owner");
		const char *name = label(s, "name");
		if (!owner || strcmp(owner, "helm") || !name ||
		    (in->release_name && strcmp(name, in->release_name)))
			continue;
		const char *m = label(s, PREFLIGHT_MANAGED_LABEL);
		if (m && !strcmp(m, "true"))
			ours = 1;
		else
			*foreign = 1;
	}
	return ours;
}

static void rule_cilium(const struct preflight_input *in, struct preflight_result *out)
{
	int foreign = 0;
	out->release_exists = release_state(in, &foreign) || in->adopted;
	const json_t *ds = find_cilium(in->daemonsets);
	if (out->release_exists)
		return;
	if (foreign) {
		add(out->refusals, "foreign_cilium",
		    "a Helm release \"%s\" installed outside ferry exists%s; start an adopt job to take it "
		    "over (it keeps its values) instead of installing a second Cilium",
		    in->release_name ? in->release_name : "cilium", ds ? " and Cilium runs" : "");
		return;
	}
	if (ds)
		add(out->refusals, "foreign_cilium",
		    "Cilium already runs (DaemonSet %s/%s) and is not a release ferry manages "
		    "(TKE's DataPlaneV2 option deploys one); a second Cilium would conflict: "
		    "use a cluster created without DataPlaneV2",
		    meta_str(ds, "namespace") ? meta_str(ds, "namespace") : "?", meta_str(ds, "name"));
}

static void rule_nodes(const struct preflight_input *in, struct preflight_result *out)
{
	size_t i;
	const json_t *n;
	int allow = json_is_true(json_object_get(in->params, "allow_existing_nodes"));
	struct buf names = BUF_INIT, supers = BUF_INIT;
	json_array_foreach(items_of(in->nodes), i, n) {
		const char *name = meta_str(n, "name");
		if (preflight_node_is_virtual(n)) {
			out->super_nodes++;
			buf_printf(&supers, "%s%s", supers.len ? ", " : "", name ? name : "?");
			continue;
		}
		out->nodes++;
		if (names.len < 200)
			buf_printf(&names, "%s%s", names.len ? ", " : "", name ? name : "?");
		char reason[256];
		int ok = preflight_node_os_supported(n, reason, sizeof reason);
		if (ok == 0 && !out->release_exists)
			add(out->refusals, "node_os", "node %s %s", name ? name : "?", reason);
		else if (ok <= 0)
			add(out->warnings, "node_os", "node %s %s", name ? name : "?", reason);
	}
	if (out->nodes > 0 && !allow && !out->release_exists &&
	    (in->profile == PROFILE_TKE || in->profile == PROFILE_TKE_COEXIST))
		add(out->refusals, "existing_nodes",
		    "%ld node(s) already exist (%s%s): install Cilium before adding nodes, or set "
		    "allow_existing_nodes: true; existing nodes keep stale CNI rules until rebooted "
		    "(ferry adds the tke-cni-agent preStop clean-up when allowed)",
		    out->nodes, buf_cstr(&names), names.len >= 200 ? ", ..." : "");
	if (out->super_nodes > 0)
		add(out->warnings, "super_nodes",
		    "%ld super node(s) (virtual kubelet: %s): cilium-operator uses hostNetwork and cannot "
		    "become ready there; taint them so it is not scheduled on them",
		    out->super_nodes, buf_cstr(&supers));
	if (out->nodes >= PREFLIGHT_LARGE_CLUSTER_NODES &&
	    !json_is_true(json_object_get(in->params, "endpoint_slice")))
		add(out->warnings, "endpoint_slice_advised",
		    "%ld nodes: a cluster this large should enable CiliumEndpointSlice "
		    "(job option endpoint_slice: true, i.e. ciliumEndpointSlice.enabled=true)",
		    out->nodes);
	buf_free(&names);
	buf_free(&supers);
}

static void rule_components(const struct preflight_input *in, struct preflight_result *out)
{
	int is_tke = in->profile == PROFILE_TKE || in->profile == PROFILE_TKE_COEXIST;
	int kpr = profile_replaces_kube_proxy(in->profile, in->params);
	if (is_tke && kpr && preflight_find_daemonset(in->daemonsets, "ip-masq-agent"))
		add(out->warnings, "ip_masq_agent",
		    "ip-masq-agent is installed; it conflicts with Cilium and the retire phase will "
		    "stop it (nodeSelector, not deleted)");
	const json_t *kp = preflight_find_daemonset(in->daemonsets, "kube-proxy");
	if (!kpr && (kp || in->kube_proxy_cm)) {
		const char *mode = preflight_kube_proxy_mode(kp, in->kube_proxy_cm);
		if (mode && !strcmp(mode, "ipvs"))
			add(out->refusals, "kube_proxy_ipvs",
			    "kube-proxy runs in ipvs mode, which Cilium cannot coexist with "
			    "(cilium/cilium#18610): switch kube-proxy to iptables mode or let Cilium "
			    "replace it (keep_kube_proxy: false, profile tke)");
		else if (!mode)
			add(out->warnings, "kube_proxy_mode",
			    "could not determine kube-proxy's mode; it must be iptables to coexist with Cilium");
	}
	if (json_is_object(json_object_get(in->params, "nodepool")) && !in->karpenter_installed)
		add(out->refusals, "no_karpenter",
		    "a Karpenter node pool was requested but Karpenter is not installed "
		    "(no CRD nodepools.karpenter.sh): enable the tke-karpenter add-on first");
}

static void rule_endpoint(const struct preflight_input *in, struct preflight_result *out)
{
	const json_t *subset = json_array_get(json_object_get(in->endpoints, "subsets"), 0);
	const char *ip = json_string_value(json_object_get(
		json_array_get(json_object_get(subset, "addresses"), 0), "ip"));
	const json_t *port = json_object_get(json_array_get(json_object_get(subset, "ports"), 0), "port");
	if (ip && *ip && json_is_integer(port)) {
		out->k8s_service_host = xstrdup(ip);
		out->k8s_service_port = (int)json_integer_value(port);
		if ((in->profile == PROFILE_TKE || in->profile == PROFILE_TKE_COEXIST) &&
		    strncmp(ip, "169.254.", 8) != 0)
			add(out->warnings, "api_endpoint_not_link_local",
			    "default/kubernetes points at %s, not TKE's usual 169.254.x.x address; if that "
			    "is the cluster's CLB, Cilium may intercept its own path to the API server",
			    ip);
		return;
	}
	int needs = profile_replaces_kube_proxy(in->profile, in->params) &&
		    in->profile != PROFILE_K3S;
	const char *given = json_string_value(json_object_get(
		json_object_get(in->params, "profile_options"), "k8s_service_host"));
	if (needs && !given)
		add(out->refusals, "no_api_endpoint",
		    "cannot find the API server's address in default/kubernetes endpoints "
		    "(needed as k8sServiceHost when Cilium replaces kube-proxy); never use the "
		    "cluster's CLB address; give profile_options.k8s_service_host/port explicitly");
}

int preflight_evaluate(const struct preflight_input *in, struct preflight_result *out)
{
	memset(out, 0, sizeof(*out));
	out->refusals = json_array();
	out->warnings = json_array();
	rule_version(in, out);
	rule_cni(in, out);
	rule_cilium(in, out);
	rule_nodes(in, out);
	rule_components(in, out);
	rule_endpoint(in, out);
	return (int)json_array_size(out->refusals);
}

void preflight_result_clear(struct preflight_result *r)
{
	json_decref(r->refusals);
	json_decref(r->warnings);
	free(r->kube_version);
	free(r->k8s_service_host);
	memset(r, 0, sizeof(*r));
}

char *preflight_refusal_summary(const struct preflight_result *r)
{
	struct buf b = BUF_INIT;
	size_t i;
	const json_t *x;
	json_array_foreach(r->refusals, i, x)
		buf_printf(&b, "%s%s", i ? "; " : "",
			   json_string_value(json_object_get(x, "message")));
	return buf_steal(&b);
}
