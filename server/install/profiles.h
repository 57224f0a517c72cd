/*
 * profiles: the Helm values layer each cluster profile starts from, and
 * the optional image-mirror layer (SPEC §2.4 and §3).
 *
 * Profiles:
 *  - "tke" (VPC-CNI, kube-proxy replaced): the guide's values.yaml:
 *    routingMode native, endpointRoutes.enabled, ipam.mode delegated-plugin,
 *    enableIPv4Masquerade false, devices eth+, cni{chainingMode generic-veth,
 *    customConf true, configMap <name>, externalRouting true},
 *    extraConfig.local-router-ipv4 169.254.32.16, localRedirectPolicies,
 *    kubeProxyReplacement "true", k8sServiceHost/Port, operator.tolerations.
 *    With keep_kube_proxy, kubeProxyReplacement is "false".
 *  - "tke-coexist" (1.18.2 edition, kube-proxy kept): native routing,
 *    endpointRoutes, no masquerade, generic-veth chained behind multus-cni,
 *    delegated-plugin IPAM, local-router-ipv4.
 *  - "k3s": cluster-pool IPAM with a pod CIDR, native routing,
 *    autoDirectNodeRoutes, ipv4NativeRoutingCIDR, bpf.masquerade, KPR,
 *    loadBalancer.mode dsr (+acceleration native when the NIC does XDP),
 *    hubble relay and UI, operator.replicas 1, installNoConntrackIptablesRules,
 *    optional l2announcements. Release namespace "cilium".
 *  - "generic" (kubeadm without kube-proxy): KPR, k8sServiceHost/Port,
 *    devices, cluster-pool CIDR and mask size, hubble and prometheus,
 *    private-registry image overrides.
 *
 * Options come from the job parameters (jansson object, may be NULL):
 *   keep_kube_proxy: bool, endpoint_slice: bool, masquerade: {vpc_cidr},
 *   l2: {interfaces, node_selector, cidrs} (k3s: l2announcements.enabled;
 *     the objects themselves come from l2.h),
 *   cni_config_map: string (tke; default "cni-config"),
 *   profile_options: {pod_cidr, pod_cidr_mask_size, devices, xdp: bool,
 *     l2announcements: bool, hubble: bool, prometheus: bool, registry}
 * and from preflight: the API server endpoint Cilium must use.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_PROFILES_H
#define FERRY_INSTALL_PROFILES_H

#include <jansson.h>
#include <stddef.h>

enum profile_kind {
	PROFILE_TKE = 0,
	PROFILE_TKE_COEXIST,
	PROFILE_K3S,
	PROFILE_GENERIC
};

#define PROFILE_TKE_CNI_CONFIGMAP "cni-config"
#define PROFILE_LOCAL_ROUTER_IPV4 "169.254.32.16"

/* "tke" | "tke-coexist" | "k3s" | "generic"; 0 or -1. */
int profile_parse(const char *name, enum profile_kind *out);
const char *profile_name(enum profile_kind kind);

/* The namespace the release lives in: kube-system, or cilium for k3s. */
const char *profile_release_namespace(enum profile_kind kind);

/* Whether the profile needs the TKE chained CNI ConfigMap (phase 3) and
 * the TKE-specific phases (eni-agent). */
int profile_uses_tke_cni(enum profile_kind kind);

/* Whether kube-proxy is replaced (and so retired by phase 6) for these
 * parameters. */
int profile_replaces_kube_proxy(enum profile_kind kind, const json_t *params);

struct profile_inputs {
	const char *k8s_service_host;  /* from preflight; NULL = not known */
	int k8s_service_port;          /* 0 = not known */
	const json_t *params;          /* job parameters, may be NULL */
	const char *chart_version;     /* e.g. "1.18.3"; NULL = current charts */
};

/* The profile's values layer. Returns NULL with a message in err when a
 * required input is missing (e.g. tke without k8sServiceHost, k3s without
 * a pod CIDR gets the seed's default 10.0.0.0/16, so it never fails). */
json_t *profile_values(enum profile_kind kind, const struct profile_inputs *in,
		       char *err, size_t errlen);

/* The image-mirror layer. With chart_defaults (the chart's values.yaml as
 * JSON), every "repository" string under an image block that starts with
 * "quay.io/" is rewritten to "quay.tencentcloudcr.com/" and the spire
 * agent/server images go to docker.io/k8smirror/spire-{agent,server};
 * without it, the guide's image-values.yaml. Only changed keys appear. */
json_t *profile_image_mirror_values(const json_t *chart_defaults);

/* The chained-CNI ConfigMap name the merged user values ask for
 * (cni.configMap), or NULL when it is missing or empty. Borrowed from
 * user_values. Phase 3 and the chart render both read it from the same
 * merged values, so the two can never disagree. */
const char *profile_cni_configmap_name(const json_t *user_values);

#endif
