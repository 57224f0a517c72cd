/*
 * profiles.c: values layers per cluster profile.
 *
 * Each layer is built as a plain jansson object in the order the guides
 * write their values.yaml, so `helm get values` on the release reads like
 * the guide. Options from the job parameters only add or flip keys; the
 * user's own layers and --set overrides come later and win (values.c).
 */
#include "server/install/profiles.h"
#include "server/install/imagetag.h"
#include "server/common/buf.h"

#include <stdio.h>
#include <string.h>

static const char *const profile_names[] = { "tke", "tke-coexist", "k3s", "generic" };

int profile_parse(const char *name, enum profile_kind *out)
{
	for (int i = 0; i < 4; i++) {
		if (name && !strcmp(name, profile_names[i])) {
			*out = (enum profile_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *profile_name(enum profile_kind kind)
{
	if ((int)kind < 0 || (int)kind > 3)
		return "?";
	return profile_names[kind];
}

const char *profile_release_namespace(enum profile_kind kind)
{
	return kind == PROFILE_K3S ? "cilium" : "kube-system";
}

int profile_uses_tke_cni(enum profile_kind kind)
{
	return kind == PROFILE_TKE;
}

static int param_bool(const json_t *params, const char *key)
{
	return json_is_true(json_object_get(params, key));
}

static const char *opt_str(const json_t *params, const char *key)
{
	const json_t *o = json_object_get(params, "profile_options");
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

/* profile_options.<key> as a bool: missing = dflt. */
static int opt_bool(const json_t *params, const char *key, int dflt)
{
	const json_t *o = json_object_get(params, "profile_options");
	const json_t *v = json_object_get(o, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static long opt_int(const json_t *params, const char *key, long dflt)
{
	const json_t *o = json_object_get(params, "profile_options");
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

int profile_replaces_kube_proxy(enum profile_kind kind, const json_t *params)
{
	if (kind == PROFILE_TKE_COEXIST)
		return 0;
	return !param_bool(params, "keep_kube_proxy");
}

/* Object at key inside obj, created when absent (borrowed). */
static json_t *sub(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(obj, key, v);
	}
	return v;
}

/* Charts before 1.14 take kubeProxyReplacement strict/disabled. */
static int legacy_kpr(const char *chart_version)
{
	int cmp;
	return chart_version && imagetag_compare_core(chart_version, "1.14.0", &cmp) == 0 && cmp < 0;
}

static json_t *kpr_value(const struct profile_inputs *in, int on, int as_string)
{
	if (legacy_kpr(in->chart_version))
		return json_string(on ? "strict" : "disabled");
	if (as_string)
		return json_string(on ? "true" : "false");
	return json_boolean(on);
}

static json_t *tke_tolerations(void)
{
	static const char *const keys[] = {
		"node-role.kubernetes.io/control-plane",
		"node-role.kubernetes.io/master",
		"node.kubernetes.io/not-ready",
		"node.cloudprovider.kubernetes.io/uninitialized",
		"tke.cloud.tencent.com/uninitialized",
		"tke.cloud.tencent.com/eni-ip-unavailable",
	};
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "key", keys[i],
						   "operator", "Exists"));
	return a;
}

/* Follow-ups from the guide's FAQ, shared by the TKE profiles. */
static void add_followups(json_t *v, const json_t *params)
{
	const json_t *masq = json_object_get(params, "masquerade");
	const char *cidr = json_string_value(json_object_get(masq, "vpc_cidr"));
	if (cidr && *cidr) {
		json_object_set_new(v, "enableIPv4Masquerade", json_true());
		json_object_set_new(v, "ipv4NativeRoutingCIDR", json_string(cidr));
		json_object_set_new(sub(v, "bpf"), "masquerade", json_true());
	}
	if (param_bool(params, "endpoint_slice"))
		json_object_set_new(sub(v, "ciliumEndpointSlice"), "enabled", json_true());
}

static int set_service(json_t *v, const struct profile_inputs *in, int required,
		       const char *profile, char *err, size_t errlen)
{
	const char *host = in->k8s_service_host;
	int port = in->k8s_service_port;
	const char *ohost = opt_str(in->params, "k8s_service_host");
	long oport = opt_int(in->params, "k8s_service_port", 0);
	if (ohost)
		host = ohost;
	if (oport > 0 && oport < 65536)
		port = (int)oport;
	if (!host || !*host || port <= 0) {
		if (!required)
			return 0;
		snprintf(err, errlen,
			 "profile %s replaces kube-proxy and needs the API server's real address "
			 "(k8sServiceHost/k8sServicePort); preflight did not find it in "
			 "default/kubernetes endpoints and none was given in profile_options",
			 profile);
		return -1;
	}
	json_object_set_new(v, "k8sServiceHost", json_string(host));
	json_object_set_new(v, "k8sServicePort", json_integer(port));
	return 0;
}

static json_t *tke_values(const struct profile_inputs *in, char *err, size_t errlen)
{
	const json_t *p = in->params;
	int kpr = profile_replaces_kube_proxy(PROFILE_TKE, p);
	const char *cm = json_string_value(json_object_get(p, "cni_config_map"));
	if (!cm || !*cm)
		cm = PROFILE_TKE_CNI_CONFIGMAP;
	json_t *v = json_object();
	json_object_set_new(v, "routingMode", json_string("native"));
	json_object_set_new(sub(v, "endpointRoutes"), "enabled", json_true());
	json_object_set_new(sub(v, "ipam"), "mode", json_string("delegated-plugin"));
	json_object_set_new(v, "enableIPv4Masquerade", json_false());
	json_object_set_new(v, "devices", json_string("eth+"));
	json_t *cni = sub(v, "cni");
	json_object_set_new(cni, "chainingMode", json_string("generic-veth"));
	json_object_set_new(cni, "customConf", json_true());
	json_object_set_new(cni, "configMap", json_string(cm));
	json_object_set_new(cni, "externalRouting", json_true());
	json_object_set_new(sub(v, "extraConfig"), "local-router-ipv4",
			    json_string(PROFILE_LOCAL_ROUTER_IPV4));
	json_object_set_new(sub(v, "localRedirectPolicies"), "enabled", json_true());
	json_object_set_new(v, "kubeProxyReplacement", kpr_value(in, kpr, 1));
	if (set_service(v, in, kpr, "tke", err, errlen) < 0) {
		json_decref(v);
		return NULL;
	}
	json_object_set_new(sub(v, "operator"), "tolerations", tke_tolerations());
	add_followups(v, p);
	return v;
}

static json_t *tke_coexist_values(const struct profile_inputs *in)
{
	json_t *v = json_object();
	json_object_set_new(v, "routingMode", json_string("native"));
	json_object_set_new(sub(v, "endpointRoutes"), "enabled", json_true());
	json_object_set_new(v, "enableIPv4Masquerade", json_false());
	json_t *cni = sub(v, "cni");
	json_object_set_new(cni, "chainingMode", json_string("generic-veth"));
	json_object_set_new(cni, "chainingTarget", json_string("multus-cni"));
	json_object_set_new(sub(v, "ipam"), "mode", json_string("delegated-plugin"));
	json_object_set_new(sub(v, "extraConfig"), "local-router-ipv4",
			    json_string(PROFILE_LOCAL_ROUTER_IPV4));
	add_followups(v, in->params);
	return v;
}

static json_t *k3s_values(const struct profile_inputs *in, char *err, size_t errlen)
{
	const json_t *p = in->params;
	const char *cidr = opt_str(p, "pod_cidr");
	if (!cidr)
		cidr = "10.0.0.0/16";
	int kpr = profile_replaces_kube_proxy(PROFILE_K3S, p);
	json_t *v = json_object();
	json_object_set_new(sub(v, "operator"), "replicas", json_integer(1));
	json_t *ipam = sub(v, "ipam");
	json_object_set_new(ipam, "mode", json_string("cluster-pool"));
	json_object_set_new(sub(ipam, "operator"), "clusterPoolIPv4PodCIDRList",
			    json_pack("[s]", cidr));
	json_object_set_new(v, "routingMode", json_string("native"));
	json_object_set_new(v, "autoDirectNodeRoutes", json_true());
	json_object_set_new(v, "ipv4NativeRoutingCIDR", json_string(cidr));
	json_object_set_new(sub(v, "bpf"), "masquerade", json_true());
	json_object_set_new(v, "kubeProxyReplacement", kpr_value(in, kpr, 0));
	if (set_service(v, in, 0, "k3s", err, errlen) < 0) {
		json_decref(v);
		return NULL;
	}
	json_t *lb = sub(v, "loadBalancer");
	json_object_set_new(lb, "mode", json_string("dsr"));
	if (opt_bool(p, "xdp", 0))
		json_object_set_new(lb, "acceleration", json_string("native"));
	json_t *hubble = sub(v, "hubble");
	json_object_set_new(sub(hubble, "relay"), "enabled", json_true());
	json_object_set_new(sub(hubble, "ui"), "enabled", json_true());
	json_object_set_new(v, "installNoConntrackIptablesRules", json_true());
	if (opt_bool(p, "l2announcements", 0) || json_is_object(json_object_get(p, "l2")))
		json_object_set_new(sub(v, "l2announcements"), "enabled", json_true());
	if (param_bool(p, "endpoint_slice"))
		json_object_set_new(sub(v, "ciliumEndpointSlice"), "enabled", json_true());
	return v;
}

/* Private-registry overrides of the generic profile (002: harbor mirror). */
static void registry_overrides(json_t *v, const char *registry)
{
	struct {
		const char *path[4];
		const char *image;
	} imgs[] = {
		{ { "image" }, "cilium" },
		{ { "operator", "image" }, "operator" },
		{ { "hubble", "relay", "image" }, "hubble-relay" },
		{ { "hubble", "ui", "backend", "image" }, "hubble-ui-backend" },
		{ { "hubble", "ui", "frontend", "image" }, "hubble-ui" },
	};
	for (size_t i = 0; i < sizeof(imgs) / sizeof(imgs[0]); i++) {
		json_t *o = v;
		for (int k = 0; k < 4 && imgs[i].path[k]; k++)
			o = sub(o, imgs[i].path[k]);
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s/%s", registry, imgs[i].image);
		json_object_set_new(o, "repository", json_string(buf_cstr(&b)));
		json_object_set_new(o, "useDigest", json_false());
		buf_free(&b);
	}
}

static json_t *generic_values(const struct profile_inputs *in, char *err, size_t errlen)
{
	const json_t *p = in->params;
	int kpr = profile_replaces_kube_proxy(PROFILE_GENERIC, p);
	const char *cidr = opt_str(p, "pod_cidr");
	if (!cidr)
		cidr = "10.244.0.0/16";
	long mask = opt_int(p, "pod_cidr_mask_size", 24);
	json_t *v = json_object();
	json_object_set_new(v, "kubeProxyReplacement", kpr_value(in, kpr, 0));
	if (set_service(v, in, kpr, "generic", err, errlen) < 0) {
		json_decref(v);
		return NULL;
	}
	const char *devices = opt_str(p, "devices");
	if (devices)
		json_object_set_new(v, "devices", json_string(devices));
	json_t *ipam = sub(v, "ipam");
	json_object_set_new(ipam, "mode", json_string("cluster-pool"));
	json_t *ipop = sub(ipam, "operator");
	json_object_set_new(ipop, "clusterPoolIPv4PodCIDRList", json_pack("[s]", cidr));
	json_object_set_new(ipop, "clusterPoolIPv4MaskSize", json_integer(mask));
	json_object_set_new(sub(v, "bpf"), "masquerade", json_true());
	if (opt_bool(p, "hubble", 1)) {
		json_t *h = sub(v, "hubble");
		json_object_set_new(h, "enabled", json_true());
		json_object_set_new(sub(h, "relay"), "enabled", json_true());
		json_object_set_new(sub(h, "ui"), "enabled", json_true());
		json_object_set_new(sub(h, "metrics"), "enabled",
				    json_pack("[s,s,s,s,s,s,s]", "dns", "drop", "tcp", "flow",
					      "port-distribution", "icmp", "http"));
	}
	if (opt_bool(p, "prometheus", 1)) {
		json_object_set_new(sub(v, "prometheus"), "enabled", json_true());
		json_object_set_new(sub(sub(v, "operator"), "prometheus"), "enabled", json_true());
	}
	const char *registry = opt_str(p, "registry");
	if (registry)
		registry_overrides(v, registry);
	if (param_bool(p, "endpoint_slice"))
		json_object_set_new(sub(v, "ciliumEndpointSlice"), "enabled", json_true());
	return v;
}

json_t *profile_values(enum profile_kind kind, const struct profile_inputs *in,
		       char *err, size_t errlen)
{
	struct profile_inputs none = { 0 };
	if (!in)
		in = &none;
	switch (kind) {
	case PROFILE_TKE:
		return tke_values(in, err, errlen);
	case PROFILE_TKE_COEXIST:
		return tke_coexist_values(in);
	case PROFILE_K3S:
		return k3s_values(in, err, errlen);
	case PROFILE_GENERIC:
		return generic_values(in, err, errlen);
	}
	snprintf(err, errlen, "unknown profile %d", (int)kind);
	return NULL;
}

/* ---- image mirror -------------------------------------------------------- */

#define MIRROR_FROM "quay.io/"
#define MIRROR_TO "quay.tencentcloudcr.com/"

/* Set value at a path of keys, creating objects on the way. */
static void set_path(json_t *root, const char *const *keys, int n, json_t *value)
{
	json_t *o = root;
	for (int i = 0; i < n - 1; i++)
		o = sub(o, keys[i]);
	json_object_set_new(o, keys[n - 1], value);
}

/* Walk defaults; for every object with a "repository" string starting with
 * quay.io/, put the rewritten value at the same path in out. */
static void mirror_walk(const json_t *node, const char **path, int depth, json_t *out)
{
	if (!json_is_object(node) || depth >= 30)
		return;
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)node, key, val) {
		if (!strcmp(key, "repository") && json_is_string(val) &&
		    !strncmp(json_string_value(val), MIRROR_FROM, strlen(MIRROR_FROM))) {
			struct buf b = BUF_INIT;
			buf_printf(&b, "%s%s", MIRROR_TO,
				   json_string_value(val) + strlen(MIRROR_FROM));
			path[depth] = key;
			set_path(out, path, depth + 1, json_string(buf_cstr(&b)));
			buf_free(&b);
		} else if (json_is_object(val)) {
			path[depth] = key;
			mirror_walk(val, path, depth + 1, out);
		}
	}
}

static int has_path(const json_t *root, const char *const *keys, int n)
{
	for (int i = 0; i < n && root; i++)
		root = json_object_get(root, keys[i]);
	return root != NULL;
}

json_t *profile_image_mirror_values(const json_t *chart_defaults)
{
	static const char *const spire_agent[] = { "authentication", "mutual", "spire", "install",
						   "agent", "image", "repository" };
	static const char *const spire_server[] = { "authentication", "mutual", "spire", "install",
						    "server", "image", "repository" };
	json_t *out = json_object();
	if (chart_defaults) {
		const char *path[32];
		mirror_walk(chart_defaults, path, 0, out);
		if (has_path(chart_defaults, spire_agent, 7))
			set_path(out, spire_agent, 7, json_string("docker.io/k8smirror/spire-agent"));
		if (has_path(chart_defaults, spire_server, 7))
			set_path(out, spire_server, 7, json_string("docker.io/k8smirror/spire-server"));
		return out;
	}
	/* The guide's image-values.yaml. */
	static const struct {
		const char *path[6];
		const char *repo;
	} guide[] = {
		{ { "image" }, "cilium/cilium" },
		{ { "envoy", "image" }, "cilium/cilium-envoy" },
		{ { "operator", "image" }, "cilium/operator" },
		{ { "certgen", "image" }, "cilium/certgen" },
		{ { "hubble", "relay", "image" }, "cilium/hubble-relay" },
		{ { "hubble", "ui", "backend", "image" }, "cilium/hubble-ui-backend" },
		{ { "hubble", "ui", "frontend", "image" }, "cilium/hubble-ui" },
		{ { "nodeinit", "image" }, "cilium/startup-script" },
		{ { "preflight", "image" }, "cilium/cilium" },
		{ { "preflight", "envoy", "image" }, "cilium/cilium-envoy" },
		{ { "clustermesh", "apiserver", "image" }, "cilium/clustermesh-apiserver" },
	};
	for (size_t i = 0; i < sizeof(guide) / sizeof(guide[0]); i++) {
		const char *keys[8];
		int n = 0;
		while (n < 6 && guide[i].path[n]) {
			keys[n] = guide[i].path[n];
			n++;
		}
		keys[n++] = "repository";
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s%s", MIRROR_TO, guide[i].repo);
		set_path(out, keys, n, json_string(buf_cstr(&b)));
		buf_free(&b);
	}
	set_path(out, spire_agent, 7, json_string("docker.io/k8smirror/spire-agent"));
	set_path(out, spire_server, 7, json_string("docker.io/k8smirror/spire-server"));
	return out;
}

const char *profile_cni_configmap_name(const json_t *user_values)
{
	const json_t *v = json_object_get(json_object_get(user_values, "cni"), "configMap");
	if (!json_is_string(v) || !json_string_length(v))
		return NULL;
	return json_string_value(v);
}
