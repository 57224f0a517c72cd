/*
 * preflight_rules: the decisions of the preflight phase (SPEC §2.1), as a
 * pure function over what the phase read from the cluster. No I/O here:
 * the preflight phase gathers the objects and records the result; tests
 * feed objects directly.
 *
 * Refusals (the job fails before anything is changed):
 *  - kube_version     Kubernetes below the profile's minimum (tke: 1.30.0)
 *  - not_vpc_cni      tke profiles: no kube-system/tke-eni-agent DaemonSet;
 *                     a Global Router (bridge CNI) cluster gets its own reason
 *  - foreign_cilium   a Cilium DaemonSet runs that is not a release ferry
 *                     manages (TKE DataPlaneV2, or a hand-made Helm release:
 *                     then the message points at an adopt job)
 *  - existing_nodes   ordinary/native nodes exist and allow_existing_nodes
 *                     was not set
 *  - node_os          an existing node's OS is not supported by the chosen
 *                     Cilium (TencentOS 4 and Ubuntu >= 22.04 are; TencentOS
 *                     3 and older Ubuntu are not; others by kernel >= 5.10)
 *  - kube_proxy_ipvs  kube-proxy is kept (tke-coexist or keep_kube_proxy)
 *                     but runs in ipvs mode (cilium/cilium#18610)
 *  - no_api_endpoint  kube-proxy is replaced but default/kubernetes has no
 *                     address to use as k8sServiceHost
 *  - no_karpenter     a nodepool was requested but Karpenter is absent
 * Warnings (the job continues): ip_masq_agent, super_nodes,
 * endpoint_slice_advised (>= PREFLIGHT_LARGE_CLUSTER_NODES nodes),
 * api_endpoint_not_link_local (tke: the address is not 169.254.x.x).
 *
 * Memory: preflight_evaluate() fills a struct whose json_t members and
 * strings the caller releases with preflight_result_clear().
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_PREFLIGHT_RULES_H
#define FERRY_INSTALL_PREFLIGHT_RULES_H

#include "server/install/profiles.h"

#include <jansson.h>

#define PREFLIGHT_LARGE_CLUSTER_NODES 500

struct preflight_input {
	enum profile_kind profile;
	const json_t *params;         /* job parameters (may be NULL) */
	const json_t *version;        /* GET /version body */
	const json_t *daemonsets;     /* kube-system DaemonSetList (or items array) */
	const json_t *nodes;          /* NodeList (or items array); NULL = none */
	const json_t *endpoints;      /* default/kubernetes Endpoints; NULL = 404 */
	const json_t *kube_proxy_cm;  /* kube-system/kube-proxy ConfigMap; NULL = 404 */
	const json_t *release_secrets;/* release namespace Secrets labelled
				       * owner=helm,name=<release> (list or array) */
	const char *release_name;     /* "cilium" */
	int adopted;                  /* the release's newest record is recorded in
				       * PostgreSQL (an adopt job took it over): ours */
	int karpenter_installed;      /* CRD nodepools.karpenter.sh exists */
};

struct preflight_result {
	json_t *refusals;       /* [{code, message}] */
	json_t *warnings;       /* [{code, message}] */
	char *kube_version;     /* gitVersion, e.g. "v1.32.2-tke.1" */
	int kube_major, kube_minor, kube_patch;
	char *k8s_service_host; /* NULL when not found */
	int k8s_service_port;
	long nodes;             /* ordinary + native nodes */
	long super_nodes;       /* virtual kubelet nodes */
	int release_exists;     /* a ferry-managed release record exists */
};

/* Evaluate every rule. Returns the number of refusals (0 = go). */
int preflight_evaluate(const struct preflight_input *in, struct preflight_result *out);
void preflight_result_clear(struct preflight_result *r);

/* "Refused: a; b" style summary of the refusals, malloc'd. */
char *preflight_refusal_summary(const struct preflight_result *r);

/* Helpers exposed for tests and other phases. */
int preflight_parse_version(const char *git_version, int *major, int *minor, int *patch);
int preflight_node_is_virtual(const json_t *node);
/* 1 = supported, 0 = not supported (reason filled), -1 = unknown OS with an
 * acceptable kernel (a warning). */
int preflight_node_os_supported(const json_t *node, char *reason, size_t reasonlen);
/* "iptables", "ipvs", or NULL when not determinable: the kube-proxy
 * ConfigMap's config (mode: ...) or the DaemonSet's --proxy-mode flag. */
const char *preflight_kube_proxy_mode(const json_t *kube_proxy_ds, const json_t *kube_proxy_cm);
/* The DaemonSet named name in a list (or items array), borrowed. */
const json_t *preflight_find_daemonset(const json_t *list, const char *name);

#define PREFLIGHT_MANAGED_LABEL "ferry.io/managed"

#endif
