/*
 * operator.c: what cilium-operator does to the API server when it starts.
 *
 * A real cilium-operator (every chart version ferry installs, 1.12 on)
 * registers Cilium's CustomResourceDefinitions itself when it starts (unless
 * the chart was told to skip that), and phases such as l2-announcements wait
 * for them. kubesim does the same: once a Deployment named cilium-operator
 * has an available replica, the CRDs that operator version registers are
 * created (Established on the next tick by the CRD controller). The version
 * comes from the operator image tag (":v1.15.1", digest ignored); an image
 * without a parsable tag counts as the newest known version.
 *
 * The CRDs carry a schema that keeps unknown fields, like every custom
 * resource in kubesim; only names, scope and served versions matter here.
 * The writes are the cluster's own: they do not count in the client write
 * counter (stats "writes").
 */
#include "tests/kubesim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op_crd {
	const char *plural, *kind, *scope;
	const char *versions;   /* comma-separated, the first is the storage version */
	int since_minor;        /* first 1.x that registers it */
	int until_minor;        /* last 1.x that registers it (0 = still does) */
};

/* Cilium's CRDs by operator minor version (1.12 .. 1.21), from the CRD
 * lists of the cilium-operator releases: L2 announcement policies appear in
 * 1.14, LoadBalancer IP pools in 1.13 (cilium.io/v2 served as well from
 * 1.17), external workloads were dropped after 1.16. */
static const struct op_crd crds[] = {
	{ "ciliumnetworkpolicies", "CiliumNetworkPolicy", "Namespaced", "v2", 0, 0 },
	{ "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy", "Cluster", "v2", 0, 0 },
	{ "ciliumendpoints", "CiliumEndpoint", "Namespaced", "v2", 0, 0 },
	{ "ciliumidentities", "CiliumIdentity", "Cluster", "v2", 0, 0 },
	{ "ciliumnodes", "CiliumNode", "Cluster", "v2", 0, 0 },
	{ "ciliumlocalredirectpolicies", "CiliumLocalRedirectPolicy", "Namespaced", "v2", 0, 0 },
	{ "ciliumexternalworkloads", "CiliumExternalWorkload", "Cluster", "v2", 0, 16 },
	{ "ciliumendpointslices", "CiliumEndpointSlice", "Cluster", "v2alpha1", 0, 0 },
	{ "ciliumegressgatewaypolicies", "CiliumEgressGatewayPolicy", "Cluster", "v2", 12, 0 },
	{ "ciliumenvoyconfigs", "CiliumEnvoyConfig", "Namespaced", "v2", 12, 0 },
	{ "ciliumclusterwideenvoyconfigs", "CiliumClusterwideEnvoyConfig", "Cluster", "v2", 12, 0 },
	{ "ciliumbgppeeringpolicies", "CiliumBGPPeeringPolicy", "Cluster", "v2alpha1", 12, 0 },
	{ "ciliumnodeconfigs", "CiliumNodeConfig", "Namespaced", "v2alpha1", 13, 0 },
	{ "ciliumcidrgroups", "CiliumCIDRGroup", "Cluster", "v2alpha1", 13, 0 },
	{ "ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", "Cluster", "v2alpha1", 13, 16 },
	{ "ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", "Cluster", "v2,v2alpha1", 17, 0 },
	{ "ciliuml2announcementpolicies", "CiliumL2AnnouncementPolicy", "Cluster", "v2alpha1", 14, 0 },
	{ "ciliumpodippools", "CiliumPodIPPool", "Cluster", "v2alpha1", 14, 0 },
};

/* Minor version of the operator image tag (":v1.15.1" -> 15), 99 when the
 * tag says nothing. */
static int image_minor(const char *image)
{
	if (!image)
		return 99;
	const char *at = strchr(image, '@');
	size_t len = at ? (size_t)(at - image) : strlen(image);
	const char *colon = NULL;
	for (size_t i = 0; i < len; i++)
		if (image[i] == ':')
			colon = image + i;
		else if (image[i] == '/')
			colon = NULL;
	int major, minor;
	if (!colon || sscanf(colon + 1, "v%d.%d", &major, &minor) != 2 || major != 1)
		return 99;
	return minor;
}

static json_t *crd_object(struct cluster *c, const struct op_crd *d)
{
	char name[160], singular[128], listkind[128], uid[37], ts[32];
	snprintf(name, sizeof name, "%s.cilium.io", d->plural);
	snprintf(singular, sizeof singular, "%s", d->kind);
	for (char *p = singular; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	snprintf(listkind, sizeof listkind, "%sList", d->kind);
	new_uid(c, uid);
	rfc3339_now(ts);
	json_t *versions = json_array();
	char vbuf[64];
	snprintf(vbuf, sizeof vbuf, "%s", d->versions);
	int first = 1;
	for (char *save = NULL, *v = strtok_r(vbuf, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
		json_array_append_new(versions, json_pack("{s:s, s:b, s:b, s:{s:{s:s, s:b}}}", "name", v,
			"served", 1, "storage", first, "schema", "openAPIV3Schema", "type", "object",
			"x-kubernetes-preserve-unknown-fields", 1));
		first = 0;
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:I, s:{s:s}}, s:{s:s, s:{s:s, s:s, s:s, s:s, s:[s]}, s:s, s:o}}",
		"kind", "CustomResourceDefinition", "apiVersion", "apiextensions.k8s.io/v1",
		"metadata", "name", name, "uid", uid, "creationTimestamp", ts, "generation", (json_int_t)1,
		"labels", "io.cilium.k8s.crd.schema.version", "kubesim",
		"spec", "group", "cilium.io", "names", "plural", d->plural, "singular", singular,
		"kind", d->kind, "listKind", listkind, "categories", "cilium",
		"scope", d->scope, "versions", versions);
}

static void register_for(struct cluster *c, int minor)
{
	const char *key = "apiextensions.k8s.io/customresourcedefinitions";
	for (size_t i = 0; i < sizeof(crds) / sizeof(crds[0]); i++) {
		const struct op_crd *d = &crds[i];
		if (minor < d->since_minor || (d->until_minor && minor > d->until_minor))
			continue;
		char id[170];
		snprintf(id, sizeof id, "/%s.cilium.io", d->plural);
		if (store_get(c, key, id))
			continue;
		json_t *stored = store_put(c, key, id, crd_object(c, d), 1);
		res_register_crd(c, stored);
	}
}

void operator_tick(struct cluster *c)
{
	const char *id;
	json_t *dep;
	int minor = -1;
	json_object_foreach(json_object_get(c->store, "apps/deployments"), id, dep) {
		const char *name = jstr(json_object_get(dep, "metadata"), "name");
		if (!name || strcmp(name, "cilium-operator"))
			continue;
		if (json_integer_value(jpath(dep, "status.availableReplicas")) < 1)
			continue;
		json_t *ctr = json_array_get(jpath(dep, "spec.template.spec.containers"), 0);
		minor = image_minor(jstr(ctr, "image"));
	}
	if (minor >= 0)
		register_for(c, minor);
}
