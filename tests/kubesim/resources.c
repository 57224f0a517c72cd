/*
 * resources.c: the built-in resource types kubesim serves, the CRD-defined
 * types of each cluster, and the discovery documents built from them.
 *
 * A type is identified on the wire by group/version/resource; objects are
 * stored by "group/resource" (version independent), like etcd keys.
 * Some versions are only served for certain Kubernetes minors (flowcontrol).
 */
#include "tests/kubesim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALLV "create,delete,deletecollection,get,list,patch,update,watch"

static const struct res_type builtin[] = {
	/* group, version, resource, singular, kind, short, ns, status, gen, custom, min, max, categories */
	{"", "v1", "namespaces", "namespace", "Namespace", "ns", 0, 1, 0, 0, 0, 0, ""},
	{"", "v1", "nodes", "node", "Node", "no", 0, 1, 0, 0, 0, 0, ""},
	{"", "v1", "pods", "pod", "Pod", "po", 1, 1, 0, 0, 0, 0, "all"},
	{"", "v1", "services", "service", "Service", "svc", 1, 1, 0, 0, 0, 0, "all"},
	{"", "v1", "endpoints", "endpoints", "Endpoints", "ep", 1, 0, 0, 0, 0, 0, ""},
	{"", "v1", "configmaps", "configmap", "ConfigMap", "cm", 1, 0, 0, 0, 0, 0, ""},
	{"", "v1", "secrets", "secret", "Secret", "", 1, 0, 0, 0, 0, 0, ""},
	{"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", "sa", 1, 0, 0, 0, 0, 0, ""},
	{"", "v1", "events", "event", "Event", "ev", 1, 0, 0, 0, 0, 0, ""},
	{"", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", "pv", 0, 1, 0, 0, 0, 0, ""},
	{"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", "pvc", 1, 1, 0, 0, 0, 0, ""},
	{"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", "quota", 1, 1, 0, 0, 0, 0, ""},
	{"", "v1", "limitranges", "limitrange", "LimitRange", "limits", 1, 0, 0, 0, 0, 0, ""},
	{"apps", "v1", "daemonsets", "daemonset", "DaemonSet", "ds", 1, 1, 1, 0, 0, 0, "all"},
	{"apps", "v1", "deployments", "deployment", "Deployment", "deploy", 1, 1, 1, 0, 0, 0, "all"},
	{"apps", "v1", "replicasets", "replicaset", "ReplicaSet", "rs", 1, 1, 1, 0, 0, 0, "all"},
	{"apps", "v1", "statefulsets", "statefulset", "StatefulSet", "sts", 1, 1, 1, 0, 0, 0, "all"},
	{"apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", "", 1, 0, 0, 0, 0, 0, ""},
	{"batch", "v1", "jobs", "job", "Job", "", 1, 1, 1, 0, 0, 0, "all"},
	{"batch", "v1", "cronjobs", "cronjob", "CronJob", "cj", 1, 1, 1, 0, 0, 0, "all"},
	{"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", "", 0, 0, 0, 0, 0, 0, ""},
	{"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", "", 0, 0, 0, 0, 0, 0, ""},
	{"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", "", 1, 0, 0, 0, 0, 0, ""},
	{"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", "", 1, 0, 0, 0, 0, 0, ""},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", "crd,crds", 0, 1, 1, 0, 0, 0, "api-extensions"},
	{"apiregistration.k8s.io", "v1", "apiservices", "apiservice", "APIService", "", 0, 1, 0, 0, 0, 0, "api-extensions"},
	{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", "", 0, 0, 1, 0, 0, 0, "api-extensions"},
	{"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", "", 0, 0, 1, 0, 0, 0, "api-extensions"},
	{"flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "flowschema", "FlowSchema", "", 0, 1, 1, 0, 29, 0, ""},
	{"flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", "prioritylevelconfiguration", "PriorityLevelConfiguration", "", 0, 1, 1, 0, 29, 0, ""},
	{"flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "flowschema", "FlowSchema", "", 0, 1, 1, 0, 26, 31, ""},
	{"flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations", "prioritylevelconfiguration", "PriorityLevelConfiguration", "", 0, 1, 1, 0, 26, 31, ""},
	{"flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", "flowschema", "FlowSchema", "", 0, 1, 1, 0, 23, 28, ""},
	{"flowcontrol.apiserver.k8s.io", "v1beta2", "prioritylevelconfigurations", "prioritylevelconfiguration", "PriorityLevelConfiguration", "", 0, 1, 1, 0, 23, 28, ""},
	{"policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", "pdb", 1, 1, 1, 0, 0, 0, ""},
	{"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", "netpol", 1, 0, 1, 0, 0, 0, ""},
	{"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", "ing", 1, 1, 1, 0, 0, 0, ""},
	{"networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", "", 0, 0, 1, 0, 0, 0, ""},
	{"coordination.k8s.io", "v1", "leases", "lease", "Lease", "", 1, 0, 0, 0, 0, 0, ""},
	{"discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", "", 1, 0, 0, 0, 0, 0, ""},
	{"scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", "pc", 0, 0, 0, 0, 0, 0, ""},
	{"storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", "sc", 0, 0, 0, 0, 0, 0, ""},
};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

int res_cluster_minor(const struct cluster *c)
{
	const char *minor = jstr(c->scn->version, "minor");
	return minor ? atoi(minor) : 32;
}

static int served(const struct res_type *t, int minor)
{
	if (t->min_minor && minor < t->min_minor)
		return 0;
	if (t->max_minor && minor > t->max_minor)
		return 0;
	return 1;
}

/* Visit every type served by the cluster. */
static size_t all_types(const struct cluster *c, const struct res_type **out, size_t max)
{
	size_t n = 0;
	int minor = res_cluster_minor(c);
	for (size_t i = 0; i < NBUILTIN && n < max; i++)
		if (served(&builtin[i], minor))
			out[n++] = &builtin[i];
	for (size_t i = 0; i < c->ncrds && n < max; i++)
		out[n++] = &c->crds[i]->t;
	return n;
}

const struct res_type *res_find(const struct cluster *c, const char *group,
				const char *version, const char *resource)
{
	const struct res_type *types[512];
	size_t n = all_types(c, types, 512);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(types[i]->group, group) && !strcmp(types[i]->version, version) &&
		    !strcmp(types[i]->resource, resource))
			return types[i];
	return NULL;
}

const struct res_type *res_find_kind(const struct cluster *c, const char *apiversion,
				     const char *kind)
{
	const struct res_type *types[512];
	size_t n = all_types(c, types, 512);
	char group[256] = "";
	const char *version = apiversion;
	const char *slash = strchr(apiversion, '/');
	if (slash) {
		snprintf(group, sizeof(group), "%.*s", (int)(slash - apiversion), apiversion);
		version = slash + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(types[i]->group, group) && !strcmp(types[i]->version, version) &&
		    !strcmp(types[i]->kind, kind))
			return types[i];
	return NULL;
}

char *res_store_key(const struct res_type *t)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", t->group[0] ? t->group : "core", t->resource);
	return buf_steal(&b);
}

void res_qualified(const struct res_type *t, char *out, size_t outlen)
{
	if (t->group[0])
		snprintf(out, outlen, "%s.%s", t->resource, t->group);
	else
		snprintf(out, outlen, "%s", t->resource);
}

json_t *res_discovery_api(void)
{
	return json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
			 "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
			 "serverAddress", "127.0.0.1:443");
}

/* Versions of a group served by the cluster, in preference order. */
static size_t group_versions(const struct cluster *c, const char *group, const char **out,
			     size_t max)
{
	const struct res_type *types[512];
	size_t n = all_types(c, types, 512), nv = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(types[i]->group, group))
			continue;
		int seen = 0;
		for (size_t j = 0; j < nv; j++)
			if (!strcmp(out[j], types[i]->version))
				seen = 1;
		if (!seen && nv < max)
			out[nv++] = types[i]->version;
	}
	/* prefer v1 (stable) over betas: order stable versions first */
	for (size_t i = 0; i < nv; i++)
		for (size_t j = i + 1; j < nv; j++)
			if (!strchr(out[j], 'a') && !strchr(out[j], 'b') &&
			    (strchr(out[i], 'a') || strchr(out[i], 'b'))) {
				const char *t = out[i];
				out[i] = out[j];
				out[j] = t;
			}
	return nv;
}

static json_t *group_doc(const struct cluster *c, const char *group)
{
	const char *vers[16];
	size_t nv = group_versions(c, group, vers, 16);
	if (!nv)
		return NULL;
	json_t *versions = json_array();
	char gv[300];
	for (size_t i = 0; i < nv; i++) {
		snprintf(gv, sizeof(gv), "%s/%s", group, vers[i]);
		json_array_append_new(versions, json_pack("{s:s, s:s}", "groupVersion", gv,
							  "version", vers[i]));
	}
	snprintf(gv, sizeof(gv), "%s/%s", group, vers[0]);
	return json_pack("{s:s, s:o, s:{s:s, s:s}}", "name", group, "versions", versions,
			 "preferredVersion", "groupVersion", gv, "version", vers[0]);
}

json_t *res_discovery_apis(const struct cluster *c)
{
	const struct res_type *types[512];
	size_t n = all_types(c, types, 512);
	json_t *groups = json_array();
	const char *seen[128];
	size_t nseen = 0;
	for (size_t i = 0; i < n; i++) {
		const char *g = types[i]->group;
		if (!g[0])
			continue;
		int dup = 0;
		for (size_t j = 0; j < nseen; j++)
			if (!strcmp(seen[j], g))
				dup = 1;
		if (dup || nseen >= 128)
			continue;
		seen[nseen++] = g;
		json_t *doc = group_doc(c, g);
		if (doc)
			json_array_append_new(groups, doc);
	}
	return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1",
			 "groups", groups);
}

json_t *res_discovery_group(const struct cluster *c, const char *group)
{
	json_t *doc = group_doc(c, group);
	if (!doc)
		return NULL;
	json_object_set_new(doc, "kind", json_string("APIGroup"));
	json_object_set_new(doc, "apiVersion", json_string("v1"));
	return doc;
}

static json_t *csv_array(const char *csv)
{
	json_t *a = json_array();
	const char *p = csv;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(a, json_stringn(p, n));
		p = comma ? comma + 1 : NULL;
	}
	return a;
}

json_t *res_discovery_gv(const struct cluster *c, const char *group, const char *version)
{
	const struct res_type *types[512];
	size_t n = all_types(c, types, 512);
	json_t *resources = json_array();
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		const struct res_type *t = types[i];
		if (strcmp(t->group, group) || strcmp(t->version, version))
			continue;
		any = 1;
		json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", t->resource,
				      "singularName", t->singular, "namespaced", t->namespaced,
				      "kind", t->kind, "verbs", csv_array(ALLV));
		if (t->short_names[0])
			json_object_set_new(r, "shortNames", csv_array(t->short_names));
		if (t->categories && t->categories[0])
			json_object_set_new(r, "categories", csv_array(t->categories));
		json_array_append_new(resources, r);
		if (t->has_status) {
			char sub[200];
			snprintf(sub, sizeof(sub), "%s/status", t->resource);
			json_array_append_new(resources,
				json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name", sub,
					  "singularName", "", "namespaced", t->namespaced,
					  "kind", t->kind, "verbs", "get", "patch", "update"));
		}
	}
	if (!any) {
		json_decref(resources);
		return NULL;
	}
	char gv[300];
	if (group[0])
		snprintf(gv, sizeof(gv), "%s/%s", group, version);
	else
		snprintf(gv, sizeof(gv), "%s", version);
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
			 "groupVersion", gv, "resources", resources);
}

static void crd_type_free(struct crd_type *ct)
{
	for (size_t i = 0; i < sizeof(ct->owned) / sizeof(ct->owned[0]); i++)
		free(ct->owned[i]);
	free(ct->crd_name);
	free(ct);
}

void res_unregister_crd(struct cluster *c, const char *crd_name)
{
	size_t j = 0;
	for (size_t i = 0; i < c->ncrds; i++) {
		if (!strcmp(c->crds[i]->crd_name, crd_name))
			crd_type_free(c->crds[i]);
		else
			c->crds[j++] = c->crds[i];
	}
	c->ncrds = j;
}

void res_register_crd(struct cluster *c, const json_t *crd)
{
	const char *crd_name = jstr(json_object_get(crd, "metadata"), "name");
	json_t *spec = json_object_get(crd, "spec");
	json_t *names = json_object_get(spec, "names");
	const char *group = jstr(spec, "group");
	const char *plural = jstr(names, "plural");
	const char *kind = jstr(names, "kind");
	if (!crd_name || !group || !plural || !kind)
		return;
	res_unregister_crd(c, crd_name);
	const char *singular = jstr(names, "singular");
	const char *scope = jstr(spec, "scope");
	json_t *shorts = json_object_get(names, "shortNames");
	json_t *cats = json_object_get(names, "categories");
	struct buf sb = BUF_INIT, cb = BUF_INIT;
	size_t i;
	json_t *v;
	json_array_foreach(shorts, i, v) {
		if (json_is_string(v))
			buf_printf(&sb, "%s%s", sb.len ? "," : "", json_string_value(v));
	}
	json_array_foreach(cats, i, v) {
		if (json_is_string(v))
			buf_printf(&cb, "%s%s", cb.len ? "," : "", json_string_value(v));
	}
	char lower_kind[256];
	snprintf(lower_kind, sizeof(lower_kind), "%s", kind);
	for (char *p = lower_kind; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	json_array_foreach(json_object_get(spec, "versions"), i, v) {
		const char *vname = jstr(v, "name");
		if (!vname || json_is_false(json_object_get(v, "served")))
			continue;
		if (c->ncrds >= 256)
			break;
		struct crd_type *ct = xcalloc(1, sizeof(*ct));
		ct->crd_name = xstrdup(crd_name);
		ct->owned[0] = xstrdup(group);
		ct->owned[1] = xstrdup(vname);
		ct->owned[2] = xstrdup(plural);
		ct->owned[3] = xstrdup(singular ? singular : lower_kind);
		ct->owned[4] = xstrdup(kind);
		ct->owned[5] = xstrdup(buf_cstr(&sb));
		ct->t.group = ct->owned[0];
		ct->t.version = ct->owned[1];
		ct->t.resource = ct->owned[2];
		ct->t.singular = ct->owned[3];
		ct->t.kind = ct->owned[4];
		ct->t.short_names = ct->owned[5];
		ct->t.categories = "";
		ct->t.namespaced = !scope || strcmp(scope, "Cluster") != 0;
		ct->t.has_status = json_object_get(json_object_get(v, "subresources"), "status") != NULL;
		ct->t.tracks_generation = 1;
		ct->t.custom = 1;
		c->crds = xrealloc(c->crds, (c->ncrds + 1) * sizeof(*c->crds));
		c->crds[c->ncrds++] = ct;
	}
	buf_free(&sb);
	buf_free(&cb);
}

void res_free_crds(struct cluster *c)
{
	for (size_t i = 0; i < c->ncrds; i++)
		crd_type_free(c->crds[i]);
	free(c->crds);
	c->crds = NULL;
	c->ncrds = 0;
}

const struct res_type *res_builtin_kind(const char *apiversion, const char *kind)
{
	char group[256] = "";
	const char *version = apiversion;
	const char *slash = strchr(apiversion, '/');
	if (slash) {
		snprintf(group, sizeof(group), "%.*s", (int)(slash - apiversion), apiversion);
		version = slash + 1;
	}
	for (size_t i = 0; i < NBUILTIN; i++)
		if (!strcmp(builtin[i].group, group) && !strcmp(builtin[i].version, version) &&
		    !strcmp(builtin[i].kind, kind))
			return &builtin[i];
	return NULL;
}
