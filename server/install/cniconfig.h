/*
 * cniconfig: the chained CNI configuration of the TKE profile (SPEC §2.3)
 * and the ConfigMap that carries it.
 *
 * The chain is: tke-route-eni (routeTable, disableIPv6, mtu, ipam
 * tke-eni-ipamc with its backend) then cilium-cni in generic-veth chaining
 * mode; cniVersion 0.3.1, name generic-veth. Cilium reads it from the
 * ConfigMap named by the chart value cni.configMap, key "cni-config"
 * (cni.configMapKey's default).
 *
 * Memory: returned json_t / strings are new and owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_CNICONFIG_H
#define FERRY_INSTALL_CNICONFIG_H

#include <jansson.h>

#define CNICONFIG_KEY "cni-config"
#define CNICONFIG_DEFAULT_NAME "cni-config"

struct cniconfig_opts {
	int route_table;          /* 0 = default 1 */
	int mtu;                  /* 0 = default 1500 */
	const char *ipam_backend; /* NULL = "127.0.0.1:61677" */
};

/* The chained configuration as a JSON object. opts may be NULL. */
json_t *cniconfig_tke_chain(const struct cniconfig_opts *opts);

/* The same, as the text stored in the ConfigMap (2-space indented JSON, as
 * in the guide). */
char *cniconfig_tke_chain_text(const struct cniconfig_opts *opts);

/* The ConfigMap object (apiVersion v1, kind ConfigMap) named name in
 * namespace ns with data{"cni-config": text}, labelled
 * app.kubernetes.io/managed-by=ferry. */
json_t *cniconfig_configmap(const char *name, const char *ns,
			    const struct cniconfig_opts *opts);

#endif
