/* Unit tests for server/install/preflight_rules: every refusal and warning
 * of SPEC §2.1 from hand-made cluster objects shaped like the API's. */
#define _POSIX_C_SOURCE 200809L
#include "server/common/yamljson.h"
#include "server/install/preflight_rules.h"
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

static const char *TKE_DS =
	"items:\n"
	"- metadata: {name: tke-eni-agent, namespace: kube-system}\n"
	"  spec: {template: {spec: {containers: [{name: a, image: 'ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.7.5'}]}}}\n"
	"- metadata: {name: tke-cni-agent, namespace: kube-system}\n"
	"- metadata: {name: ip-masq-agent, namespace: kube-system}\n"
	"- metadata: {name: kube-proxy, namespace: kube-system}\n"
	"  spec: {template: {spec: {containers: [{name: kube-proxy, args: ['--proxy-mode=iptables', '--v=2']}]}}}\n";

struct fixture {
	json_t *version, *ds, *nodes, *ep, *cm, *secrets, *params;
	struct preflight_input in;
	struct preflight_result out;
};

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->version = yj("{major: '1', minor: '32', gitVersion: v1.32.2-tke.1}");
	f->ds = yj(TKE_DS);
	f->ep = yj("subsets: [{addresses: [{ip: 169.254.128.7}], ports: [{name: https, port: 60002, protocol: TCP}]}]");
	f->params = json_object();
	f->in.profile = PROFILE_TKE;
	f->in.release_name = "cilium";
}

static int fx_eval(struct fixture *f)
{
	f->in.version = f->version;
	f->in.daemonsets = f->ds;
	f->in.nodes = f->nodes;
	f->in.endpoints = f->ep;
	f->in.kube_proxy_cm = f->cm;
	f->in.release_secrets = f->secrets;
	f->in.params = f->params;
	preflight_result_clear(&f->out);
	return preflight_evaluate(&f->in, &f->out);
}

static int has(const json_t *arr, const char *code)
{
	size_t i;
	const json_t *x;
	json_array_foreach(arr, i, x)
		if (!strcmp(json_string_value(json_object_get(x, "code")), code))
			return 1;
	return 0;
}

static const char *msg_of(const json_t *arr, const char *code)
{
	size_t i;
	const json_t *x;
	json_array_foreach(arr, i, x)
		if (!strcmp(json_string_value(json_object_get(x, "code")), code))
			return json_string_value(json_object_get(x, "message"));
	return "";
}

static void fx_free(struct fixture *f)
{
	preflight_result_clear(&f->out);
	json_decref(f->version), json_decref(f->ds), json_decref(f->nodes);
	json_decref(f->ep), json_decref(f->cm), json_decref(f->secrets), json_decref(f->params);
}

static void test_fresh_tke_passes(void)
{
	struct fixture f;
	fx_init(&f);
	check(fx_eval(&f) == 0);
	check_str(f.out.k8s_service_host, "169.254.128.7");
	check(f.out.k8s_service_port == 60002);
	check(f.out.kube_minor == 32);
	check_str(f.out.kube_version, "v1.32.2-tke.1");
	check(has(f.out.warnings, "ip_masq_agent"));
	check(f.out.nodes == 0);
	fx_free(&f);
}

/* After an install retired ip-masq-agent (nodeSelector that matches
 * nothing), preflight no longer warns that it "will be stopped". */
static void test_retired_masq_not_warned(void)
{
	struct fixture f;
	fx_init(&f);
	json_t *ds = (json_t *)preflight_find_daemonset(f.ds, "ip-masq-agent");
	check(ds != NULL);
	check(preflight_daemonset_retired(ds) == 0);
	/* what the retire phase leaves: spec.template.spec.nodeSelector */
	json_object_set_new(ds, "spec", json_pack("{s:{s:{s:{s:s}}}}", "template", "spec", "nodeSelector",
						  RETIRE_SELECTOR_KEY, RETIRE_SELECTOR_VALUE));
	check(preflight_daemonset_retired(ds) == 1);
	check(fx_eval(&f) == 0);
	check(!has(f.out.warnings, "ip_masq_agent"));
	fx_free(&f);
}

static void test_old_version_refused(void)
{
	struct fixture f;
	fx_init(&f);
	json_decref(f.version);
	f.version = yj("{major: '1', minor: '28', gitVersion: v1.28.3-tke.5}");
	check(fx_eval(&f) == 1);
	check(has(f.out.refusals, "kube_version"));
	check(strstr(msg_of(f.out.refusals, "kube_version"), "1.30.0") != NULL);
	/* k3s on 1.28 is fine. */
	f.in.profile = PROFILE_K3S;
	check(fx_eval(&f) == 0);
	/* Vendor "minor: 32+" without a gitVersion. */
	json_decref(f.version);
	f.version = yj("{major: '1', minor: '29+'}");
	f.in.profile = PROFILE_TKE;
	check(fx_eval(&f) == 1 && has(f.out.refusals, "kube_version"));
	fx_free(&f);
}

static void test_globalrouter_refused(void)
{
	struct fixture f;
	fx_init(&f);
	json_decref(f.ds);
	f.ds = yj("items: [{metadata: {name: tke-bridge-agent, namespace: kube-system}}, {metadata: {name: kube-proxy}}]");
	check(fx_eval(&f) >= 1);
	check(strstr(msg_of(f.out.refusals, "not_vpc_cni"), "Global Router") != NULL);
	check(strstr(msg_of(f.out.refusals, "not_vpc_cni"), "20336") != NULL);
	json_decref(f.ds);
	f.ds = yj("items: []");
	check(fx_eval(&f) >= 1);
	check(strstr(msg_of(f.out.refusals, "not_vpc_cni"), "tke-eni-agent") != NULL);
	fx_free(&f);
}

static void test_foreign_cilium(void)
{
	struct fixture f;
	fx_init(&f);
	json_array_append_new(json_object_get(f.ds, "items"),
			      yj("metadata: {name: cilium, namespace: kube-system, labels: {app.kubernetes.io/part-of: cilium}}"));
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "foreign_cilium"), "DataPlaneV2") != NULL);
	/* A hand-made Helm release: point at adopt. */
	f.secrets = yj("items: [{metadata: {name: sh.helm.release.v1.cilium.v1, labels: {owner: helm, name: cilium, status: deployed, version: '1'}}}]");
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "foreign_cilium"), "adopt") != NULL);
	/* Ours: fine. */
	json_decref(f.secrets);
	f.secrets = yj("items: [{metadata: {name: sh.helm.release.v1.cilium.v1, labels: {owner: helm, name: cilium, status: deployed, version: '1', ferry.io/managed: 'true'}}}]");
	check(fx_eval(&f) == 0);
	check(f.out.release_exists);
	fx_free(&f);
}

static const char *NODES =
	"items:\n"
	"- metadata: {name: 10.0.0.11}\n  status: {nodeInfo: {osImage: TencentOS Server 4.2, kernelVersion: 6.6.47-12.tl4.x86_64}}\n"
	"- metadata: {name: 10.0.0.12}\n  status: {nodeInfo: {osImage: Ubuntu 22.04.4 LTS, kernelVersion: 5.15.0-105-generic}}\n";

static void test_existing_nodes(void)
{
	struct fixture f;
	fx_init(&f);
	f.nodes = yj(NODES);
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "existing_nodes"), "allow_existing_nodes") != NULL);
	check(strstr(msg_of(f.out.refusals, "existing_nodes"), "10.0.0.11") != NULL);
	check(f.out.nodes == 2);
	json_object_set_new(f.params, "allow_existing_nodes", json_true());
	check(fx_eval(&f) == 0);
	/* A TencentOS 3 node is refused even when allowed. */
	json_array_append_new(json_object_get(f.nodes, "items"),
			      yj("metadata: {name: 10.0.0.13}\nstatus: {nodeInfo: {osImage: TencentOS Server 3.1 (Final), kernelVersion: 5.4.119-19.0009.44}}"));
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "node_os"), "10.0.0.13") != NULL);
	check(strstr(msg_of(f.out.refusals, "node_os"), "ts4-public") != NULL);
	fx_free(&f);
}

static void test_node_os(void)
{
	char r[256];
	json_t *n = yj("status: {nodeInfo: {osImage: Ubuntu 20.04.6 LTS, kernelVersion: 5.4.0}}");
	check(preflight_node_os_supported(n, r, sizeof r) == 0);
	check(strstr(r, "22.04") != NULL);
	json_decref(n);
	n = yj("status: {nodeInfo: {osImage: Ubuntu 24.04 LTS, kernelVersion: 6.8.0}}");
	check(preflight_node_os_supported(n, r, sizeof r) == 1);
	json_decref(n);
	n = yj("status: {nodeInfo: {osImage: Debian GNU/Linux 12, kernelVersion: 6.1.0-18-amd64}}");
	check(preflight_node_os_supported(n, r, sizeof r) == -1);
	json_decref(n);
	n = yj("status: {nodeInfo: {osImage: CentOS Linux 7, kernelVersion: 3.10.0-1160}}");
	check(preflight_node_os_supported(n, r, sizeof r) == 0);
	check(strstr(r, "5.10") != NULL);
	json_decref(n);
	n = yj("metadata: {name: x}");
	check(preflight_node_os_supported(n, r, sizeof r) == 0);
	json_decref(n);
}

static void test_super_nodes_warned(void)
{
	struct fixture f;
	fx_init(&f);
	f.nodes = yj("items:\n- metadata: {name: eklet-1, labels: {type: virtual-kubelet}}\n"
		     "- metadata: {name: eklet-2}\n  spec: {taints: [{key: eks.tke.cloud.tencent.com/eklet, effect: NoSchedule}]}\n");
	check(fx_eval(&f) == 0);        /* super nodes are not "existing nodes" */
	check(has(f.out.warnings, "super_nodes"));
	check(f.out.super_nodes == 2 && f.out.nodes == 0);
	check(strstr(msg_of(f.out.warnings, "super_nodes"), "taint") != NULL);
	fx_free(&f);
}

static void test_large_cluster_advice(void)
{
	struct fixture f;
	fx_init(&f);
	f.nodes = json_pack("{s:[]}", "items");
	for (int i = 0; i < PREFLIGHT_LARGE_CLUSTER_NODES; i++) {
		char name[32];
		snprintf(name, sizeof name, "n%d", i);
		json_array_append_new(json_object_get(f.nodes, "items"),
				      json_pack("{s:{s:s}, s:{s:{s:s, s:s}}}", "metadata", "name", name,
						"status", "nodeInfo", "osImage", "TencentOS Server 4",
						"kernelVersion", "6.6"));
	}
	json_object_set_new(f.params, "allow_existing_nodes", json_true());
	check(fx_eval(&f) == 0);
	check(has(f.out.warnings, "endpoint_slice_advised"));
	json_object_set_new(f.params, "endpoint_slice", json_true());
	check(fx_eval(&f) == 0);
	check(!has(f.out.warnings, "endpoint_slice_advised"));
	fx_free(&f);
}

static void test_kube_proxy_ipvs(void)
{
	struct fixture f;
	fx_init(&f);
	f.in.profile = PROFILE_TKE_COEXIST;
	check(fx_eval(&f) == 0);   /* iptables from the DaemonSet args */
	check(!has(f.out.warnings, "ip_masq_agent"));   /* coexist keeps it */
	json_decref(f.ds);
	f.ds = yj("items:\n- metadata: {name: tke-eni-agent}\n- metadata: {name: kube-proxy}\n");
	f.cm = yj("data: {config.conf: \"apiVersion: kubeproxy.config.k8s.io/v1alpha1\\nkind: KubeProxyConfiguration\\nmode: ipvs\\n\"}");
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "kube_proxy_ipvs"), "18610") != NULL);
	/* Replacing kube-proxy: its mode does not matter. */
	f.in.profile = PROFILE_TKE;
	check(fx_eval(&f) == 0);
	json_object_set_new(f.params, "keep_kube_proxy", json_true());
	check(fx_eval(&f) == 1);
	fx_free(&f);
	json_t *ds = yj("spec: {template: {spec: {containers: [{name: kp, command: [kube-proxy, --proxy-mode, ipvs]}]}}}");
	check_str(preflight_kube_proxy_mode(ds, NULL), "ipvs");
	json_decref(ds);
	json_t *cm = yj("data: {config.conf: \"mode: ''\\n\"}");
	check_str(preflight_kube_proxy_mode(NULL, cm), "iptables");
	json_decref(cm);
	check(preflight_kube_proxy_mode(NULL, NULL) == NULL);
}

static void test_endpoint(void)
{
	struct fixture f;
	fx_init(&f);
	json_decref(f.ep);
	f.ep = NULL;
	check(fx_eval(&f) == 1);
	check(strstr(msg_of(f.out.refusals, "no_api_endpoint"), "CLB") != NULL);
	json_t *po = json_pack("{s:s, s:i}", "k8s_service_host", "10.1.1.1", "k8s_service_port", 443);
	json_object_set_new(f.params, "profile_options", po);
	check(fx_eval(&f) == 0);
	f.ep = yj("subsets: [{addresses: [{ip: 10.0.0.100}], ports: [{port: 443}]}]");
	check(fx_eval(&f) == 0);
	check(has(f.out.warnings, "api_endpoint_not_link_local"));
	fx_free(&f);
}

static void test_karpenter(void)
{
	struct fixture f;
	fx_init(&f);
	json_object_set_new(f.params, "nodepool", json_pack("{s:[s]}", "instance_families", "S5"));
	check(fx_eval(&f) == 1);
	check(has(f.out.refusals, "no_karpenter"));
	f.in.karpenter_installed = 1;
	check(fx_eval(&f) == 0);
	json_object_set_new(f.params, "nodepool", json_null());
	f.in.karpenter_installed = 0;
	check(fx_eval(&f) == 0);
	fx_free(&f);
}

static void test_summary_lists_all(void)
{
	struct fixture f;
	fx_init(&f);
	json_decref(f.version);
	f.version = yj("{gitVersion: v1.28.0}");
	json_decref(f.ds);
	f.ds = yj("items: []");
	check(fx_eval(&f) == 2);
	char *s = preflight_refusal_summary(&f.out);
	check(strstr(s, "too old") && strstr(s, "VPC-CNI") && strstr(s, "; "));
	free(s);
	fx_free(&f);
}

int main(void)
{
	test_run("preflight_fresh_tke_passes", test_fresh_tke_passes);
	test_run("preflight_retired_masq_not_warned", test_retired_masq_not_warned);
	test_run("preflight_old_version_refused", test_old_version_refused);
	test_run("preflight_globalrouter_refused", test_globalrouter_refused);
	test_run("preflight_foreign_cilium", test_foreign_cilium);
	test_run("preflight_existing_nodes", test_existing_nodes);
	test_run("preflight_node_os", test_node_os);
	test_run("preflight_super_nodes_warned", test_super_nodes_warned);
	test_run("preflight_large_cluster_advice", test_large_cluster_advice);
	test_run("preflight_kube_proxy_ipvs", test_kube_proxy_ipvs);
	test_run("preflight_endpoint", test_endpoint);
	test_run("preflight_karpenter", test_karpenter);
	test_run("preflight_summary_lists_all", test_summary_lists_all);
	return test_summary();
}
