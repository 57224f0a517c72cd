/*
 * cniconfig.c: build the TKE chained CNI configuration.
 *
 * The object is built with jansson (so the text is always valid JSON) and
 * dumped with key order preserved, which reproduces the guide's layout.
 */
#include "server/install/cniconfig.h"
#include "server/common/buf.h"

#include <stdlib.h>

json_t *cniconfig_tke_chain(const struct cniconfig_opts *opts)
{
	int route_table = opts && opts->route_table ? opts->route_table : 1;
	int mtu = opts && opts->mtu ? opts->mtu : 1500;
	const char *backend = opts && opts->ipam_backend ? opts->ipam_backend
							 : "127.0.0.1:61677";
	json_t *eni = json_pack("{s:s, s:i, s:b, s:i, s:{s:s, s:s}}",
				"type", "tke-route-eni",
				"routeTable", route_table,
				"disableIPv6", 1,
				"mtu", mtu,
				"ipam", "type", "tke-eni-ipamc", "backend", backend);
	json_t *cilium = json_pack("{s:s, s:s}", "type", "cilium-cni",
				   "chaining-mode", "generic-veth");
	return json_pack("{s:s, s:s, s:[o, o]}", "cniVersion", "0.3.1",
			 "name", "generic-veth", "plugins", eni, cilium);
}

char *cniconfig_tke_chain_text(const struct cniconfig_opts *opts)
{
	json_t *c = cniconfig_tke_chain(opts);
	char *s = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(c);
	return s;
}

json_t *cniconfig_configmap(const char *name, const char *ns,
			    const struct cniconfig_opts *opts)
{
	char *text = cniconfig_tke_chain_text(opts);
	json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}",
			       "apiVersion", "v1", "kind", "ConfigMap",
			       "metadata", "name", name, "namespace", ns,
			       "labels", "app.kubernetes.io/managed-by", "ferry",
			       "data", CNICONFIG_KEY, text);
	free(text);
	return cm;
}
