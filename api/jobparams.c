/*
 * api/jobparams.c: the kind table, the parameter table and a small JSON
 * Schema checker over them (see jobparams.h).
 *
 * The schemas are written as JSON with single quotes instead of double
 * quotes (read by schema_parse(), which swaps them), so the table stays
 * readable; descriptions therefore never contain an apostrophe.
 */
#include "api/jobparams.h"
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	K_INSTALL = 1 << 0,
	K_UPGRADE = 1 << 1,
	K_ROLLBACK = 1 << 2,
	K_UNINSTALL = 1 << 3,
	K_ADOPT = 1 << 4,
	K_CHECK = 1 << 5,
	K_REPAIR = 1 << 6,
	K_PREFLIGHT = 1 << 7,
	K_ALL = 0xff,
	/* preflight evaluates the parameters of the install it precedes */
	K_INSTALLS = K_INSTALL | K_UPGRADE | K_PREFLIGHT,
};

static const struct {
	const char *name;
	unsigned bit;
	const char *description;
} kinds[] = {
	{ "install", K_INSTALL, "Install Cilium (helm upgrade --install): preflight, eni-agent, cni-config, "
				"cilium, wait, l2-announcements, retire-tke-components, apf, nodepool, verify" },
	{ "upgrade", K_UPGRADE, "The install walk on a cluster that has a release: a new revision when anything changed" },
	{ "rollback", K_ROLLBACK, "Roll the release back to an earlier revision" },
	{ "uninstall", K_UNINSTALL, "Delete the release and restore what the install retired" },
	{ "adopt", K_ADOPT, "Take over a Cilium release installed by hand with Helm" },
	{ "check", K_CHECK, "Compare the cluster with the deployed release (drift report, no writes)" },
	{ "repair", K_REPAIR, "Re-apply what drifted from the deployed release" },
	{ "preflight", K_PREFLIGHT, "Every read-only check of the install (or only the connection), no writes" },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct param {
	const char *name;
	unsigned kinds;
	const char *schema;   /* JSON with ' for " */
} params[] = {
	{ "dry_run", K_ALL,
	  "{'type':'boolean','default':false,'description':'Report what would be created, changed or deleted "
	  "(job.result.dry_run.objects) without changing the cluster: every write carries dryRun=All.'}" },
	{ "chart_version", K_INSTALLS,
	  "{'type':'string','minLength':1,'default':'1.18.3','description':'Cilium chart version. The chart is "
	  "the tenant upload of that version, else the configured Helm repository, else "
	  "FERRY_CHARTS_DIR/cilium-<version>.tgz; preflight resolves and renders it before any write.'}" },
	{ "values_yaml", K_INSTALLS,
	  "{'type':'array','items':{'type':'string'},'default':[],'description':'Helm values files (YAML text), "
	  "layered in order after the profile and image-mirror layers, like helm -f.'}" },
	{ "set", K_INSTALLS,
	  "{'type':'array','items':{'type':'string','minLength':1},'default':[],'description':'Helm --set "
	  "overrides key.path=value, applied last.'}" },
	{ "image_mirror", K_INSTALLS,
	  "{'type':'boolean','default':false,'description':'Rewrite quay.io image repositories to "
	  "quay.tencentcloudcr.com (and the spire images to docker.io/k8smirror) for clusters in mainland China.'}" },
	{ "wait_timeout_s", K_INSTALLS | K_ROLLBACK | K_REPAIR | K_UNINSTALL,
	  "{'type':'integer','minimum':1,'maximum':86400,'default':600,'description':'How long one attempt "
	  "of a waiting phase (rollouts, the L2 CRDs) waits before it is retried. Progress is logged every 30 s.'}" },
	{ "keep_kube_proxy", K_INSTALLS,
	  "{'type':'boolean','default':false,'description':'tke, k3s, generic: keep kube-proxy "
	  "(kubeProxyReplacement off; kube-proxy must run in iptables mode). tke-coexist always keeps it.'}" },
	{ "allow_existing_nodes", K_INSTALLS,
	  "{'type':'boolean','default':false,'description':'tke: install on a cluster that already has nodes "
	  "(their pods keep the old CNI until restarted).'}" },
	{ "cni_config_map", K_INSTALLS,
	  "{'type':'string','minLength':1,'default':'cni-config','description':'tke: name of the chained CNI "
	  "ConfigMap (cni.configMap).'}" },
	{ "endpoint_slice", K_INSTALLS,
	  "{'type':'boolean','default':false,'description':'Enable CiliumEndpointSlice (large clusters); the "
	  "agents are restarted when cilium-config changes.'}" },
	{ "masquerade", K_INSTALLS,
	  "{'type':'object','additionalProperties':false,'required':['vpc_cidr'],'description':'Node egress "
	  "masquerading (enableIPv4Masquerade, ipv4NativeRoutingCIDR, bpf.masquerade); the agents are restarted.',"
	  "'properties':{'vpc_cidr':{'type':'string','minLength':1,'description':'The VPC CIDR, "
	  "e.g. 10.0.0.0/16 (ipv4NativeRoutingCIDR).'}}}" },
	{ "profile_options", K_INSTALLS,
	  "{'type':'object','additionalProperties':false,'default':{},'description':'Options of the cluster "
	  "profile values layer.','properties':{"
	  "'pod_cidr':{'type':'string','minLength':1,'description':'k3s, generic: cluster-pool pod CIDR "
	  "(k3s default 10.0.0.0/16, generic default 10.244.0.0/16).'},"
	  "'pod_cidr_mask_size':{'type':'integer','minimum':1,'maximum':32,'default':24,'description':'generic: "
	  "clusterPoolIPv4MaskSize.'},"
	  "'devices':{'type':'string','minLength':1,'description':'generic: devices (e.g. ens192).'},"
	  "'xdp':{'type':'boolean','default':false,'description':'k3s: loadBalancer.acceleration native "
	  "(only where the NIC supports XDP).'},"
	  "'l2announcements':{'type':'boolean','default':false,'description':'k3s: l2announcements.enabled "
	  "(implied by params.l2).'},"
	  "'hubble':{'type':'boolean','default':true,'description':'generic: hubble, relay, UI and metrics.'},"
	  "'prometheus':{'type':'boolean','default':true,'description':'generic: agent and operator metrics.'},"
	  "'registry':{'type':'string','minLength':1,'description':'generic: private registry for the "
	  "images, e.g. harbor.io/k8s/cilium (useDigest false).'},"
	  "'k8s_service_host':{'type':'string','minLength':1,'description':'k8sServiceHost: the API server "
	  "address Cilium uses (default: found by preflight in default/kubernetes endpoints).'},"
	  "'k8s_service_port':{'type':'integer','minimum':1,'maximum':65535,'description':'k8sServicePort "
	  "(default: found by preflight).'}}}" },
	{ "l2", K_INSTALLS,
	  "{'type':'object','additionalProperties':false,'required':['cidrs'],'description':'k3s: L2 "
	  "announcements: l2announcements.enabled, then (once cilium-operator registered the CRDs) a "
	  "CiliumL2AnnouncementPolicy and a CiliumLoadBalancerIPPool.','properties':{"
	  "'cidrs':{'type':'array','minItems':1,'items':{'type':'string','minLength':1},'description':'IP "
	  "pool CIDRs, routable in the LAN (e.g. 192.168.20.0/24).'},"
	  "'interfaces':{'type':'array','items':{'type':'string','minLength':1},'description':'Interfaces "
	  "(regular expressions) to announce on; default all.'},"
	  "'node_selector':{'type':'object','description':'Nodes that announce: {label: value} or a "
	  "LabelSelector {matchLabels, matchExpressions}; default every node.'},"
	  "'external_ips':{'type':'boolean','default':true,'description':'Announce external IPs.'},"
	  "'load_balancer_ips':{'type':'boolean','default':true,'description':'Announce LoadBalancer IPs.'},"
	  "'policy_name':{'type':'string','minLength':1,'default':'ferry-l2-policy','description':'Name of "
	  "the CiliumL2AnnouncementPolicy.'},"
	  "'pool_name':{'type':'string','minLength':1,'default':'ferry-lb-ip-pool','description':'Name of "
	  "the CiliumLoadBalancerIPPool.'}}}" },
	{ "nodepool", K_INSTALLS,
	  "{'type':'object','additionalProperties':false,'required':['instance_families','subnets'],"
	  "'description':'tke: a Karpenter NodePool and TKEMachineNodeClass (TencentOS 4 nodes); preflight "
	  "checks that Karpenter is installed.','properties':{"
	  "'name':{'type':'string','minLength':1,'default':'default'},"
	  "'instance_families':{'type':'array','minItems':1,'items':{'type':'string'},'description':'e.g. [\\'S5\\']'},"
	  "'capacity_types':{'type':'array','items':{'type':'string'},'default':['on-demand']},"
	  "'min_cpu':{'type':'integer','minimum':0,'default':1},"
	  "'cpu_limit':{'type':'integer','minimum':1,'default':100},"
	  "'subnets':{'type':'array','minItems':1,'items':{'type':'string'}},"
	  "'security_groups':{'type':'array','items':{'type':'string'}},"
	  "'ssh_keys':{'type':'array','items':{'type':'string'}},"
	  "'consolidation_policy':{'type':'string','enum':['WhenEmptyOrUnderutilized','WhenEmpty'],"
	  "'default':'WhenEmptyOrUnderutilized'},"
	  "'consolidate_after':{'type':'string','default':'5m'},"
	  "'budget_nodes':{'type':'string','default':'10%'}}}" },
	{ "connection_only", K_PREFLIGHT,
	  "{'type':'boolean','default':false,'description':'Only the connection step (reach the API server, "
	  "count nodes), not the install checks.'}" },
	/* Lifecycle parameters (the lifecycle contract). */
	{ "reuse_values", K_INSTALL | K_UPGRADE,
	  "{'type':'boolean','default':false,'description':'Helm --reuse-values: start from the deployed "
	  "revision user values.'}" },
	{ "reset_values", K_INSTALL | K_UPGRADE,
	  "{'type':'boolean','default':false,'description':'Helm --reset-values: only this job values.'}" },
	{ "reset_then_reuse_values", K_INSTALL | K_UPGRADE,
	  "{'type':'boolean','default':false,'description':'Helm 3.14 --reset-then-reuse-values.'}" },
	{ "max_history", K_INSTALL | K_UPGRADE | K_ROLLBACK,
	  "{'type':'integer','minimum':0,'default':10,'description':'Release records kept (0 = no limit).'}" },
	{ "on_failure", K_INSTALL | K_UPGRADE,
	  "{'type':'string','enum':['rollback'],'description':'rollback: roll back to the previous revision "
	  "when the job fails.'}" },
	{ "retries", K_INSTALL | K_UPGRADE,
	  "{'type':'integer','minimum':0,'maximum':10,'default':0,'description':'Retries of a failed upgrade before on_failure.'}" },
	{ "revision", K_ROLLBACK,
	  "{'type':'integer','minimum':1,'description':'Revision to roll back to; default the previous one.'}" },
	{ "keep_history", K_UNINSTALL,
	  "{'type':'boolean','default':false,'description':'Keep the release records (helm uninstall --keep-history).'}" },
	{ "delete_crds", K_UNINSTALL,
	  "{'type':'boolean','default':false,'description':'Also delete Cilium CRDs (and so every custom "
	  "resource of them).'}" },
	{ "restore_eni_agent", K_UNINSTALL,
	  "{'type':'boolean','default':false,'description':'tke: set tke-eni-agent back to its image before "
	  "the install.'}" },
	{ "force", K_UNINSTALL,
	  "{'type':'boolean','default':false,'description':'Uninstall even when checks would refuse.'}" },
	{ "namespace", K_ADOPT,
	  "{'type':'string','minLength':1,'description':'Namespace of the release; default the cluster "
	  "profile namespace.'}" },
	{ "release_name", K_ADOPT,
	  "{'type':'string','enum':['cilium'],'default':'cilium','description':'Helm release name (this version adopts the release named cilium).'}" },
	{ "ignore", K_CHECK | K_REPAIR,
	  "{'type':'array','default':[],'description':'Differences not to report or repair.','items':{"
	  "'type':'object','additionalProperties':false,'required':['path'],'properties':{"
	  "'path':{'type':'string','minLength':1,'description':'JSON pointer, e.g. /data/debug'},"
	  "'kind':{'type':'string','description':'only objects of this kind'},"
	  "'name':{'type':'string','description':'only objects of this name'}}}}" },
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

static unsigned kind_bit(const char *kind)
{
	for (size_t i = 0; kind && i < NKINDS; i++)
		if (!strcmp(kinds[i].name, kind))
			return kinds[i].bit;
	return 0;
}

int jobparams_kind_known(const char *kind)
{
	return kind_bit(kind) != 0;
}

static json_t *schema_parse(const char *text)
{
	size_t n = strlen(text);
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	/* ' -> "; \' (an escaped apostrophe in a string) stays ' */
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '\\' && text[i + 1] == '\'') {
			s[o++] = '\\';
			s[o++] = '"';
			i++;
		} else {
			s[o++] = text[i] == '\'' ? '"' : text[i];
		}
	}
	s[o] = 0;
	json_t *j = json_loads(s, 0, NULL);
	free(s);
	return j;
}

json_t *jobparams_schema(const char *kind)
{
	unsigned bit = kind_bit(kind);
	if (!bit)
		return NULL;
	json_t *props = json_object();
	for (size_t i = 0; i < NPARAMS; i++) {
		if (!(params[i].kinds & bit))
			continue;
		json_t *s = schema_parse(params[i].schema);
		if (s)
			json_object_set_new(props, params[i].name, s);
	}
	return json_pack("{s:s, s:b, s:o}", "type", "object", "additionalProperties", 0, "properties", props);
}

/* ---- the checker ---------------------------------------------------------- */

static const char *type_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

static int type_ok(const json_t *v, const char *want)
{
	const char *t = type_of(v);
	return !strcmp(t, want) || (!strcmp(want, "number") && !strcmp(t, "integer"));
}

/* Levenshtein distance, capped: near misses get a "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 99;
	size_t d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			/* a swap of two neighbours counts as one edit */
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

struct check {
	char *field;
	size_t fieldlen;
	char *msg;
	size_t msglen;
};

static int fail(struct check *c, const char *path, const char *fmt, const char *a, const char *b)
{
	snprintf(c->field, c->fieldlen, "%s", path);
	snprintf(c->msg, c->msglen, fmt, a ? a : "", b ? b : "");
	return -1;
}

static int check_value(struct check *c, const json_t *schema, const json_t *v, const char *path);

static int check_object(struct check *c, const json_t *schema, const json_t *v, const char *path)
{
	const json_t *props = json_object_get(schema, "properties");
	const json_t *addl = json_object_get(schema, "additionalProperties");
	char sub[512];
	size_t i;
	const json_t *req;
	json_array_foreach(json_object_get(schema, "required"), i, req) {
		const char *k = json_string_value(req);
		if (k && !json_object_get(v, k)) {
			snprintf(sub, sizeof sub, "%s.%s", path, k);
			return fail(c, sub, "is required%s%s", NULL, NULL);
		}
	}
	const char *k;
	const json_t *val;
	json_object_foreach((json_t *)v, k, val) {
		snprintf(sub, sizeof sub, "%s.%s", path, k);
		const json_t *ps = json_object_get(props, k);
		if (ps) {
			if (check_value(c, ps, val, sub) < 0)
				return -1;
			continue;
		}
		if (json_is_object(addl)) {
			if (check_value(c, addl, val, sub) < 0)
				return -1;
			continue;
		}
		if (!json_is_false(addl))
			continue;
		const char *near = NULL;
		size_t best = 3;
		const char *pk;
		const json_t *pv;
		json_object_foreach((json_t *)props, pk, pv) {
			size_t d = distance(k, pk);
			if (d < best) {
				best = d;
				near = pk;
			}
		}
		if (near)
			return fail(c, sub, "unknown parameter; did you mean %s?%s", near, NULL);
		return fail(c, sub, "unknown parameter%s%s", NULL, NULL);
	}
	return 0;
}

static int check_value(struct check *c, const json_t *schema, const json_t *v, const char *path)
{
	const json_t *type = json_object_get(schema, "type");
	if (json_is_string(type) && !type_ok(v, json_string_value(type)))
		return fail(c, path, "must be %s %s", !strcmp(json_string_value(type), "integer") ||
			    !strcmp(json_string_value(type), "array") || !strcmp(json_string_value(type), "object")
			    ? "an" : "a", json_string_value(type));
	const json_t *en = json_object_get(schema, "enum");
	if (json_is_array(en)) {
		int found = 0;
		size_t i;
		const json_t *e;
		json_array_foreach(en, i, e)
			if (json_equal(e, v))
				found = 1;
		if (!found) {
			char *list = json_dumps(en, JSON_COMPACT);
			int r = fail(c, path, "must be one of %s%s", list, NULL);
			free(list);
			return r;
		}
	}
	char num[64];
	const json_t *min = json_object_get(schema, "minimum");
	const json_t *max = json_object_get(schema, "maximum");
	if (json_is_number(v) && json_is_number(min) && json_number_value(v) < json_number_value(min)) {
		snprintf(num, sizeof num, "%g", json_number_value(min));
		return fail(c, path, "must be at least %s%s", num, NULL);
	}
	if (json_is_number(v) && json_is_number(max) && json_number_value(v) > json_number_value(max)) {
		snprintf(num, sizeof num, "%g", json_number_value(max));
		return fail(c, path, "must be at most %s%s", num, NULL);
	}
	const json_t *minlen = json_object_get(schema, "minLength");
	if (json_is_string(v) && json_is_integer(minlen) &&
	    (json_int_t)json_string_length(v) < json_integer_value(minlen))
		return fail(c, path, "must not be empty%s%s", NULL, NULL);
	if (json_is_array(v)) {
		const json_t *mi = json_object_get(schema, "minItems");
		if (json_is_integer(mi) && (json_int_t)json_array_size(v) < json_integer_value(mi))
			return fail(c, path, "must not be an empty list%s%s", NULL, NULL);
		const json_t *items = json_object_get(schema, "items");
		size_t i;
		const json_t *e;
		char sub[512];
		if (json_is_object(items))
			json_array_foreach(v, i, e) {
				snprintf(sub, sizeof sub, "%s[%zu]", path, i);
				if (check_value(c, items, e, sub) < 0)
					return -1;
			}
	}
	if (json_is_object(v))
		return check_object(c, schema, v, path);
	return 0;
}

int jobparams_check(const char *kind, const json_t *p, char *field, size_t fieldlen, char *msg,
		    size_t msglen)
{
	struct check c = { field, fieldlen, msg, msglen };
	json_t *schema = jobparams_schema(kind);
	if (!schema)
		return fail(&c, "kind", "unknown job kind %s%s", kind, NULL);
	int rc = 0;
	if (p && !json_is_null(p))
		rc = check_value(&c, schema, p, "params");
	json_decref(schema);
	return rc;
}

json_t *jobparams_openapi_job_create(void)
{
	json_t *alts = json_array();
	for (size_t i = 0; i < NKINDS; i++)
		json_array_append_new(alts, json_pack("{s:s, s:s, s:[s], s:b, s:{s:{s:s}, s:o}}",
			"type", "object", "description", kinds[i].description, "required", "kind",
			"additionalProperties", 0, "properties", "kind", "const", kinds[i].name,
			"params", jobparams_schema(kinds[i].name)));
	return json_pack("{s:o}", "oneOf", alts);
}

void api_job_kinds(struct api_req *r)
{
	json_t *items = json_array();
	for (size_t i = 0; i < NKINDS; i++)
		json_array_append_new(items, json_pack("{s:s, s:s, s:o}", "kind", kinds[i].name,
			"description", kinds[i].description,
			"params_schema", jobparams_schema(kinds[i].name)));
	api_reply(r, 200, json_pack("{s:o}", "items", items));
}
