/* Unit tests for the install helper's pure modules: imagetag, rollout,
 * cniconfig, apf, profiles. */
#define _POSIX_C_SOURCE 200809L
#include "server/common/buf.h"
#include "server/common/yamljson.h"
#include "server/install/apf.h"
#include "server/install/cniconfig.h"
#include "server/install/imagetag.h"
#include "server/install/profiles.h"
#include "server/install/waitlog.h"
#include "server/kube/rollout.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>

static json_t *yj(const char *y)
{
	char err[256];
	json_t *v = yaml_to_json(y, strlen(y), err, sizeof(err));
	if (!v)
		printf("yaml error: %s\n", err);
	return v;
}

/* ---- imagetag */

static void test_imagetag_split(void)
{
	char *repo, *tag;
	check(imagetag_split("ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.7.2", &repo, &tag) == 0);
	check_str(repo, "ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent");
	check_str(tag, "v3.7.2");
	free(repo), free(tag);
	check(imagetag_split("localhost:5000/x/agent", &repo, &tag) == 0);
	check_str(repo, "localhost:5000/x/agent");
	check(tag == NULL);
	free(repo), free(tag);
	check(imagetag_split("localhost:5000/agent:v1@sha256:abcd", &repo, &tag) == 0);
	check_str(repo, "localhost:5000/agent");
	check_str(tag, "v1");
	free(repo), free(tag);
	check(imagetag_split("", &repo, &tag) == -1);
}

static void test_imagetag_order(void)
{
	int c;
	check(imagetag_compare("v3.7.2", "v3.8.0", &c) == 0 && c < 0);
	check(imagetag_compare("v3.7.99", "v3.8.0", &c) == 0 && c < 0);
	check(imagetag_compare("v3.8.0-rc.0", "v3.8.0", &c) == 0 && c < 0);
	check(imagetag_compare("v3.8.0", "3.8.0", &c) == 0 && c == 0);
	check(imagetag_compare("v3.10.0", "v3.8.0", &c) == 0 && c > 0);
	check(imagetag_compare("v3.8.0-rc.1", "v3.8.0-rc.0", &c) == 0 && c > 0);
	check(imagetag_compare("v3.8.0-rc.10", "v3.8.0-rc.9", &c) == 0 && c > 0);
	check(imagetag_compare("v3.8.0-alpha", "v3.8.0-rc.0", &c) == 0 && c < 0);
	check(imagetag_compare("v3.8", "v3.8.0", &c) == 0 && c == 0);
	check(imagetag_compare("v3.8.0+build.5", "v3.8.0", &c) == 0 && c == 0);
	check(imagetag_compare_core("v3.8.0-rc.0", "v3.8.0", &c) == 0 && c == 0);
	check(imagetag_compare_core("v3.7.9-rc.0", "v3.8.0", &c) == 0 && c < 0);
	check(imagetag_compare("latest", "v3.8.0", &c) == -1);
	check(imagetag_compare("v3.8.0.1", "v3.8.0", &c) == -1);
	check(imagetag_compare("v3.8.0-", "v3.8.0", &c) == -1);
	check(imagetag_compare("", "v3.8.0", &c) == -1);
	check(imagetag_compare(NULL, "v3.8.0", &c) == -1);
}

/* ---- rollout */

static void test_rollout_daemonset(void)
{
	char msg[256];
	json_t *ds = yj("metadata: {name: cilium, generation: 2}\n"
			"spec: {updateStrategy: {type: RollingUpdate}}\n"
			"status: {observedGeneration: 1, desiredNumberScheduled: 3}\n");
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check(strstr(msg, "spec update to be observed") != NULL);
	json_object_set_new(json_object_get(ds, "status"), "observedGeneration", json_integer(2));
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check_str(msg, "Waiting for daemon set \"cilium\" rollout to finish: 0 out of 3 new pods have been updated...");
	json_object_set_new(json_object_get(ds, "status"), "updatedNumberScheduled", json_integer(3));
	json_object_set_new(json_object_get(ds, "status"), "numberAvailable", json_integer(2));
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check_str(msg, "Waiting for daemon set \"cilium\" rollout to finish: 2 of 3 updated pods are available...");
	json_object_set_new(json_object_get(ds, "status"), "numberAvailable", json_integer(3));
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_DONE);
	check_str(msg, "daemon set \"cilium\" successfully rolled out");
	check(rollout_status("DaemonSet", ds, msg, sizeof msg) == ROLLOUT_DONE);
	check(rollout_status(NULL, ds, msg, sizeof msg) == ROLLOUT_ERROR); /* no kind */
	json_object_set_new(json_object_get(ds, "spec"), "updateStrategy",
			    json_pack("{s:s}", "type", "OnDelete"));
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_ERROR);
	check(strstr(msg, "RollingUpdate") != NULL);
	json_decref(ds);

	/* No nodes: desired 0, observed: done at once (kubectl's rule). */
	ds = yj("metadata: {name: cilium, generation: 1}\nstatus: {observedGeneration: 1}\n");
	check(rollout_daemonset_status(ds, msg, sizeof msg) == ROLLOUT_DONE);
	check(rollout_daemonset_desired(ds) == 0);
	check(rollout_daemonset_drained(ds));
	json_decref(ds);
	ds = yj("metadata: {name: kube-proxy, generation: 3}\n"
		"status: {observedGeneration: 3, currentNumberScheduled: 2}\n");
	check(!rollout_daemonset_drained(ds));
	json_decref(ds);
	check(rollout_daemonset_status(NULL, msg, sizeof msg) == ROLLOUT_ERROR);
}

static void test_rollout_deployment(void)
{
	char msg[256];
	json_t *d = yj("metadata: {name: cilium-operator, generation: 1}\n"
		       "spec: {replicas: 2}\n"
		       "status: {observedGeneration: 1, replicas: 3, updatedReplicas: 2, availableReplicas: 1}\n");
	check(rollout_deployment_status(d, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check_str(msg, "Waiting for deployment \"cilium-operator\" rollout to finish: 1 old replicas are pending termination...");
	json_object_set_new(json_object_get(d, "status"), "replicas", json_integer(2));
	check(rollout_deployment_status(d, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check(strstr(msg, "1 of 2 updated replicas are available") != NULL);
	json_object_set_new(json_object_get(d, "status"), "availableReplicas", json_integer(2));
	check(rollout_deployment_status(d, msg, sizeof msg) == ROLLOUT_DONE);
	json_object_set_new(json_object_get(d, "status"), "conditions",
			    json_pack("[{s:s, s:s}]", "type", "Progressing", "reason",
				      "ProgressDeadlineExceeded"));
	check(rollout_deployment_status(d, msg, sizeof msg) == ROLLOUT_ERROR);
	check(strstr(msg, "exceeded its progress deadline") != NULL);
	json_decref(d);
	/* spec.replicas missing = 1. */
	d = yj("metadata: {name: x, generation: 1}\nstatus: {observedGeneration: 1}\n");
	check(rollout_deployment_status(d, msg, sizeof msg) == ROLLOUT_PROGRESSING);
	check(strstr(msg, "0 out of 1 new replicas") != NULL);
	json_decref(d);
}

/* ---- cniconfig */

static void test_cniconfig(void)
{
	json_t *cm = cniconfig_configmap("cni-config", "kube-system", NULL);
	check_str(json_string_value(json_object_get(cm, "kind")), "ConfigMap");
	const char *text = json_string_value(json_object_get(json_object_get(cm, "data"), "cni-config"));
	check(text != NULL);
	json_t *c = json_loads(text ? text : "", 0, NULL);
	check(c != NULL);
	check_str(json_string_value(json_object_get(c, "cniVersion")), "0.3.1");
	check_str(json_string_value(json_object_get(c, "name")), "generic-veth");
	json_t *plugins = json_object_get(c, "plugins");
	check(json_array_size(plugins) == 2);
	json_t *eni = json_array_get(plugins, 0);
	check_str(json_string_value(json_object_get(eni, "type")), "tke-route-eni");
	check(json_integer_value(json_object_get(eni, "routeTable")) == 1);
	check(json_is_true(json_object_get(eni, "disableIPv6")));
	check(json_integer_value(json_object_get(eni, "mtu")) == 1500);
	check_str(json_string_value(json_object_get(json_object_get(eni, "ipam"), "type")), "tke-eni-ipamc");
	check_str(json_string_value(json_object_get(json_object_get(eni, "ipam"), "backend")), "127.0.0.1:61677");
	json_t *cil = json_array_get(plugins, 1);
	check_str(json_string_value(json_object_get(cil, "type")), "cilium-cni");
	check_str(json_string_value(json_object_get(cil, "chaining-mode")), "generic-veth");
	/* The guide's layout: the text starts with cniVersion. */
	check(text && !strncmp(text, "{\n  \"cniVersion\": \"0.3.1\",\n  \"name\": \"generic-veth\"", 50));
	json_decref(c);
	json_decref(cm);
}

/* ---- apf */

static void test_apf(void)
{
	check(apf_shares_for_level("L5") == 10);
	check(apf_shares_for_level("L500") == 10);
	check(apf_shares_for_level("L1000") == 6);
	check(apf_shares_for_level("l3000") == 3);
	check(apf_shares_for_level("L5000") == 2);
	check(apf_shares_for_level("L") == -1);
	check(apf_shares_for_level("X500") == -1);
	check(apf_shares_for_level("L-5") == -1);
	check(apf_shares_for_level(NULL) == -1);
	check(apf_shares_for_nodes(0) == 10);
	check(apf_shares_for_nodes(501) == 6);
	check(apf_shares_for_nodes(3000) == 3);
	check(apf_shares_for_nodes(4000) == 2);
	check_str(apf_api_version_for(32), "flowcontrol.apiserver.k8s.io/v1");
	check_str(apf_api_version_for(28), "flowcontrol.apiserver.k8s.io/v1beta3");
	check(apf_api_version_for(25) == NULL);

	/* Equal to the guide's cilium-apf.yaml (with shares for L5000). */
	json_t *want_fs = yj(
		"apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\n"
		"metadata: {name: cilium, labels: {app.kubernetes.io/managed-by: ferry}}\n"
		"spec:\n  distinguisherMethod: {type: ByUser}\n  matchingPrecedence: 2\n"
		"  priorityLevelConfiguration: {name: cilium}\n  rules:\n  - resourceRules:\n"
		"    - apiGroups: ['cilium.io']\n      clusterScope: true\n      namespaces: ['*']\n"
		"      resources: ['*']\n      verbs: [list]\n"
		"    - apiGroups: ['']\n      clusterScope: true\n      namespaces: ['*']\n"
		"      resources: [pods]\n      verbs: [list]\n"
		"    subjects:\n    - kind: ServiceAccount\n      serviceAccount: {name: cilium, namespace: kube-system}\n");
	json_t *fs = apf_flowschema("flowcontrol.apiserver.k8s.io/v1", "kube-system");
	check(json_equal(fs, want_fs));
	json_t *want_pl = yj(
		"apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: PriorityLevelConfiguration\n"
		"metadata: {name: cilium, labels: {app.kubernetes.io/managed-by: ferry}}\n"
		"spec:\n  limited:\n    nominalConcurrencyShares: 2\n    borrowingLimitPercent: 0\n"
		"    lendablePercent: 0\n    limitResponse:\n      queuing: {handSize: 6, queueLengthLimit: 50, queues: 64}\n"
		"      type: Queue\n  type: Limited\n");
	json_t *pl = apf_priority_level("flowcontrol.apiserver.k8s.io/v1", apf_shares_for_level("L5000"));
	check(json_equal(pl, want_pl));
	json_decref(fs), json_decref(want_fs), json_decref(pl), json_decref(want_pl);
}

/* ---- profiles */

static void test_profile_tke_equals_guide(void)
{
	/* The guide's values.yaml (SPEC §2.4), with the command line's
	 * cni-config name and the endpoint preflight discovered. */
	json_t *want = yj(
		"routingMode: native\nendpointRoutes: {enabled: true}\n"
		"ipam: {mode: delegated-plugin}\nenableIPv4Masquerade: false\ndevices: eth+\n"
		"cni: {chainingMode: generic-veth, customConf: true, configMap: cni-config, externalRouting: true}\n"
		"extraConfig: {local-router-ipv4: 169.254.32.16}\n"
		"localRedirectPolicies: {enabled: true}\n"
		"kubeProxyReplacement: \"true\"\nk8sServiceHost: 169.254.128.112\nk8sServicePort: 60002\n"
		"operator:\n  tolerations:\n"
		"  - {key: node-role.kubernetes.io/control-plane, operator: Exists}\n"
		"  - {key: node-role.kubernetes.io/master, operator: Exists}\n"
		"  - {key: node.kubernetes.io/not-ready, operator: Exists}\n"
		"  - {key: node.cloudprovider.kubernetes.io/uninitialized, operator: Exists}\n"
		"  - {key: tke.cloud.tencent.com/uninitialized, operator: Exists}\n"
		"  - {key: tke.cloud.tencent.com/eni-ip-unavailable, operator: Exists}\n");
	struct profile_inputs in = { "169.254.128.112", 60002, NULL, "1.18.3" };
	char err[256] = "";
	json_t *v = profile_values(PROFILE_TKE, &in, err, sizeof err);
	check(v != NULL);
	check(json_equal(v, want));
	if (!json_equal(v, want)) {
		char *s = json_dumps(v, JSON_INDENT(1));
		printf("got: %s\n", s);
		free(s);
	}
	check_str(profile_cni_configmap_name(v), "cni-config");
	json_decref(v);

	/* No endpoint known: refused with an actionable message. */
	in.k8s_service_host = NULL;
	check(profile_values(PROFILE_TKE, &in, err, sizeof err) == NULL);
	check(strstr(err, "k8sServiceHost") != NULL);

	/* Options: keep kube-proxy, masquerade, endpoint slice, a CM name. */
	json_t *params = yj("keep_kube_proxy: true\nendpoint_slice: true\n"
			    "masquerade: {vpc_cidr: 172.22.0.0/16}\ncni_config_map: cni-configuration\n");
	in.params = params;
	v = profile_values(PROFILE_TKE, &in, err, sizeof err);
	check(v != NULL);
	check_str(json_string_value(json_object_get(v, "kubeProxyReplacement")), "false");
	check(json_is_true(json_object_get(v, "enableIPv4Masquerade")));
	check_str(json_string_value(json_object_get(v, "ipv4NativeRoutingCIDR")), "172.22.0.0/16");
	check(json_is_true(json_object_get(json_object_get(v, "bpf"), "masquerade")));
	check(json_is_true(json_object_get(json_object_get(v, "ciliumEndpointSlice"), "enabled")));
	check_str(profile_cni_configmap_name(v), "cni-configuration");
	check(!profile_replaces_kube_proxy(PROFILE_TKE, params));
	json_decref(v);
	json_decref(params);
	json_decref(want);
	check(profile_replaces_kube_proxy(PROFILE_TKE, NULL));
	check(!profile_replaces_kube_proxy(PROFILE_TKE_COEXIST, NULL));
}

static void test_profile_others(void)
{
	char err[256];
	struct profile_inputs in = { "10.0.0.1", 6443, NULL, "1.15.1" };
	/* k3s = the seed's command line (the k3s golden's values minus the
	 * optional XDP and L2 pieces). */
	json_t *v = profile_values(PROFILE_K3S, &in, err, sizeof err);
	json_t *g = yj("operator: {replicas: 1}\nipam: {mode: cluster-pool, operator: {clusterPoolIPv4PodCIDRList: [10.0.0.0/16]}}\n"
		       "routingMode: native\nautoDirectNodeRoutes: true\nipv4NativeRoutingCIDR: 10.0.0.0/16\n"
		       "bpf: {masquerade: true}\nkubeProxyReplacement: true\n"
		       "k8sServiceHost: 10.0.0.1\nk8sServicePort: 6443\n"
		       "loadBalancer: {mode: dsr}\nhubble: {relay: {enabled: true}, ui: {enabled: true}}\n"
		       "installNoConntrackIptablesRules: true\n");
	check(json_equal(v, g));
	json_decref(v), json_decref(g);
	json_t *p = yj("profile_options: {xdp: true, l2announcements: true, pod_cidr: 10.42.0.0/16}\n");
	in.params = p;
	v = profile_values(PROFILE_K3S, &in, err, sizeof err);
	check_str(json_string_value(json_object_get(json_object_get(v, "loadBalancer"), "acceleration")), "native");
	check(json_is_true(json_object_get(json_object_get(v, "l2announcements"), "enabled")));
	check_str(json_string_value(json_object_get(v, "ipv4NativeRoutingCIDR")), "10.42.0.0/16");
	json_decref(v), json_decref(p);
	check_str(profile_release_namespace(PROFILE_K3S), "cilium");
	check_str(profile_release_namespace(PROFILE_TKE), "kube-system");

	in.params = NULL;
	v = profile_values(PROFILE_TKE_COEXIST, &in, err, sizeof err);
	check_str(json_string_value(json_object_get(json_object_get(v, "cni"), "chainingTarget")), "multus-cni");
	check(json_object_get(v, "kubeProxyReplacement") == NULL);
	check(!profile_uses_tke_cni(PROFILE_TKE_COEXIST));
	json_decref(v);

	/* generic on a 1.12 chart: strict KPR, registry overrides. */
	p = yj("profile_options: {registry: harbor.io/k8s/cilium, devices: ens192}\n");
	struct profile_inputs gi = { "192.168.1.10", 6443, p, "1.12.0" };
	v = profile_values(PROFILE_GENERIC, &gi, err, sizeof err);
	check_str(json_string_value(json_object_get(v, "kubeProxyReplacement")), "strict");
	check_str(json_string_value(json_object_get(json_object_get(json_object_get(v, "operator"), "image"), "repository")),
		  "harbor.io/k8s/cilium/operator");
	check_str(json_string_value(json_object_get(v, "devices")), "ens192");
	json_decref(v);
	gi.k8s_service_host = NULL;
	check(profile_values(PROFILE_GENERIC, &gi, err, sizeof err) == NULL);
	json_decref(p);

	enum profile_kind k;
	check(profile_parse("tke-coexist", &k) == 0 && k == PROFILE_TKE_COEXIST);
	check(profile_parse("openshift", &k) == -1);
	check_str(profile_name(PROFILE_GENERIC), "generic");
}

static void test_profile_mirror(void)
{
	json_t *m = profile_image_mirror_values(NULL);
	check_str(json_string_value(json_object_get(json_object_get(m, "image"), "repository")),
		  "quay.tencentcloudcr.com/cilium/cilium");
	check_str(json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(m, "hubble"), "ui"), "frontend"), "image") ?
		  json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(m, "hubble"), "ui"), "frontend"), "image"), "repository") : NULL),
		  "quay.tencentcloudcr.com/cilium/hubble-ui");
	json_decref(m);
	json_t *defaults = yj("image: {repository: quay.io/cilium/cilium, tag: v1.18.3}\n"
			      "operator: {image: {repository: quay.io/cilium/operator, suffix: '-generic'}}\n"
			      "other: {image: {repository: docker.io/library/busybox}}\n"
			      "authentication: {mutual: {spire: {install: {agent: {image: {repository: ghcr.io/spiffe/spire-agent}},"
			      " server: {image: {repository: ghcr.io/spiffe/spire-server}}}}}}\n");
	m = profile_image_mirror_values(defaults);
	json_t *want = yj("image: {repository: quay.tencentcloudcr.com/cilium/cilium}\n"
			  "operator: {image: {repository: quay.tencentcloudcr.com/cilium/operator}}\n"
			  "authentication: {mutual: {spire: {install: {agent: {image: {repository: docker.io/k8smirror/spire-agent}},"
			  " server: {image: {repository: docker.io/k8smirror/spire-server}}}}}}\n");
	check(json_equal(m, want));
	json_decref(m), json_decref(want), json_decref(defaults);
}

/* A wait logs what it waits for, how long so far and its deadline every
 * 30 s, never more often, and catches up after a long poll. */
static void test_waitlog(void)
{
	struct waitlog w;
	char line[300];
	double t0 = 5000.0;
	waitlog_start(&w, "Cilium's L2 CRDs", 600000, t0);
	check(!waitlog_due(&w, t0 + 1000, "absent", line, sizeof line));
	check(!waitlog_due(&w, t0 + 29999, "absent", line, sizeof line));
	check(waitlog_due(&w, t0 + 30000, "not registered yet", line, sizeof line));
	check_str(line, "waiting for Cilium's L2 CRDs: 30 s so far, deadline 600 s (not registered yet)");
	check(!waitlog_due(&w, t0 + 45000, NULL, line, sizeof line));
	check(waitlog_due(&w, t0 + 61000, NULL, line, sizeof line));
	check_str(line, "waiting for Cilium's L2 CRDs: 61 s so far, deadline 600 s");
	/* a poll that took 100 s: one line now, the next on the 30 s grid */
	check(waitlog_due(&w, t0 + 161000, "x", line, sizeof line));
	check(!waitlog_due(&w, t0 + 179000, "x", line, sizeof line));
	check(waitlog_due(&w, t0 + 180000, "x", line, sizeof line));
}

int main(void)
{
	test_run("imagetag_split", test_imagetag_split);
	test_run("imagetag_order", test_imagetag_order);
	test_run("rollout_daemonset", test_rollout_daemonset);
	test_run("rollout_deployment", test_rollout_deployment);
	test_run("cniconfig_tke_chain", test_cniconfig);
	test_run("apf_objects", test_apf);
	test_run("profile_tke_equals_guide", test_profile_tke_equals_guide);
	test_run("profile_others", test_profile_others);
	test_run("profile_image_mirror", test_profile_mirror);
	test_run("waitlog_every_30s", test_waitlog);
	return test_summary();
}
