/*
 * test_sec_names: every place ferry builds a Kubernetes API path or accepts
 * a connection string, fed hostile input (issue 13, findings 2, 4 and 6).
 *
 *  - kube_ops_paths / kube_ops_object_paths (the path builder every phase,
 *    the chart's live lookup and the release records use) refuse names,
 *    namespaces and apiVersions the API server would refuse, before any
 *    request (the ops object here has no client: a request would crash);
 *  - the segments they do emit are percent-encoded;
 *  - kube_object_names_valid (the render-time check of every manifest
 *    object) applies the per-kind rules;
 *  - the fixed paths the phases use are checked against the same rules;
 *  - API server URLs and TLS server names with userinfo, fragments or
 *    control characters are refused, also through a kubeconfig;
 *  - pagination cursors out of PostgreSQL's range are refused.
 */
#include "db/dbq.h"
#include "server/common/endpoint.h"
#include "server/common/kubeconfig.h"
#include "server/kube/names.h"
#include "server/kube/ops.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>

static const char *const hostile[] = {
	"../../../../../../h12/api/v1/namespaces/kube-system/configmaps/pwned",
	"../../x", "..", ".", "a/b", "a%2Fb", "a?b", "a#b", "a b", "a\r\nb", "a\\b",
	"", "A", "-a", "a-", "a..b", "\xc3\xa9", "a\tb",
};

static void t_paths_refuse_hostile(void)
{
	struct kube_ops *ops = kube_ops_new(NULL, NULL);
	const char *kinds[][2] = { { "v1", "ConfigMap" }, { "v1", "Namespace" }, { "v1", "Service" },
				   { "rbac.authorization.k8s.io/v1", "ClusterRole" },
				   { "apps/v1", "DaemonSet" }, { "v1", "Secret" } };
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
			/* RBAC names may hold some characters others may not; the
			 * path-breaking ones are refused for every kind. */
			const char *h = hostile[i];
			int rbac_ok = !strcmp(kinds[k][1], "ClusterRole") &&
				      (!strcmp(h, "A") || !strcmp(h, "-a") || !strcmp(h, "a-") || !strcmp(h, "a..b"));
			if (!*h || rbac_ok)
				continue;
			char *coll = NULL, *item = NULL;
			int rc = kube_ops_paths(ops, kinds[k][0], kinds[k][1], "kube-system", h, &coll, &item);
			if (rc != -1 || item) {
				char msg[300];
				snprintf(msg, sizeof msg, "%s name \"%s\" produced %s", kinds[k][1], h,
					 item ? item : "?");
				testlib_fail(__FILE__, __LINE__, msg);
			}
			free(coll), free(item);
			/* as a namespace */
			rc = kube_ops_paths(ops, "v1", "ConfigMap", h, "ok", &coll, &item);
			check(rc == -1 && !item);
			free(coll), free(item);
		}
	}
	/* A hostile apiVersion is refused before discovery would send it. */
	char *coll = NULL, *item = NULL;
	check(kube_ops_paths(ops, "../../x/v1", "Foo", NULL, "a", &coll, &item) == -1);
	check(strstr(kube_ops_error(ops), "apiVersion") != NULL);
	check(kube_ops_paths(ops, "v1/../..", "Foo", NULL, "a", &coll, &item) == -1);
	/* the error names the rule and the value, sanitised */
	check(kube_ops_paths(ops, "v1", "ConfigMap", "default", "a\r\nb", &coll, &item) == -1);
	check(strstr(kube_ops_error(ops), "DNS-1123 subdomain") != NULL);
	check(strchr(kube_ops_error(ops), '\r') == NULL && strchr(kube_ops_error(ops), '\n') == NULL);
	/* object form */
	json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
				"metadata", "name", "../../../x");
	check(kube_ops_object_paths(ops, obj, "default", &coll, &item) == -1 && !item);
	json_decref(obj);
	kube_ops_free(ops);
}

static void t_paths_valid_and_encoded(void)
{
	struct kube_ops *ops = kube_ops_new(NULL, NULL);
	char *coll = NULL, *item = NULL;
	check(kube_ops_paths(ops, "v1", "ConfigMap", "kube-system", "cilium-config", &coll, &item) == 0);
	check_str(coll, "/api/v1/namespaces/kube-system/configmaps");
	check_str(item, "/api/v1/namespaces/kube-system/configmaps/cilium-config");
	free(coll), free(item);
	check(kube_ops_paths(ops, "rbac.authorization.k8s.io/v1", "ClusterRole", NULL,
			     "system:cilium:Weird Name", &coll, &item) == -1);  /* space */
	check(kube_ops_paths(ops, "rbac.authorization.k8s.io/v1", "ClusterRole", NULL,
			     "system:cilium[x]", &coll, &item) == 0);
	check_str(item, "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:cilium%5Bx%5D");
	free(coll), free(item);
	check(kube_ops_paths(ops, "v1", "Namespace", NULL, "kube-system", &coll, &item) == 0);
	check_str(item, "/api/v1/namespaces/kube-system");
	free(coll), free(item);
	check(kube_ops_paths(ops, "v1", "Secret", "kube-system", "sh.helm.release.v1.cilium.v3", &coll, &item) == 0);
	check_str(item, "/api/v1/namespaces/kube-system/secrets/sh.helm.release.v1.cilium.v3");
	free(coll), free(item);
	/* collections alone (list calls) */
	check(kube_ops_paths(ops, "v1", "Pod", "kube-system", NULL, &coll, NULL) == 0);
	check_str(coll, "/api/v1/namespaces/kube-system/pods");
	free(coll);
	char *seg = kube_path_segment("a/b?c#d%e f..");
	check_str(seg, "a%2Fb%3Fc%23d%25e%20f..");
	free(seg);
	kube_ops_free(ops);
}

static void t_object_rules_per_kind(void)
{
	char err[256];
	struct { const char *av, *kind, *ns, *name; int ok; } cases[] = {
		{ "v1", "ConfigMap", "kube-system", "cilium-config", 1 },
		{ "v1", "ConfigMap", "kube-system", "a.b.c", 1 },
		{ "v1", "ConfigMap", "kube-system", "../../x", 0 },
		{ "v1", "ConfigMap", "../..", "x", 0 },
		{ "v1", "ConfigMap", "Kube", "x", 0 },
		{ "v1", "Namespace", NULL, "a.b", 0 },          /* a label, no dots */
		{ "v1", "Namespace", NULL, "cilium-test", 1 },
		{ "v1", "Service", "kube-system", "1abc", 0 },  /* DNS-1035 */
		{ "v1", "Service", "kube-system", "hubble-peer", 1 },
		{ "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", NULL, "system:x", 1 },
		{ "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", NULL, "..", 0 },
		{ "cilium.io/v2", "CiliumNetworkPolicy", "default", "x/y", 0 },
		{ "cilium.io/v2", "Cilium/Policy", "default", "x", 0 },
		{ "cilium.io/../v2", "CiliumNetworkPolicy", "default", "x", 0 },
		{ "apps/v1", "DaemonSet", "kube-system", NULL, 0 },
		{ "apps/v1", "DaemonSet", "", "cilium", 1 },     /* empty = the release's */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *o = json_pack("{s:s, s:s, s:{}}", "apiVersion", cases[i].av, "kind", cases[i].kind, "metadata");
		json_t *m = json_object_get(o, "metadata");
		if (cases[i].ns)
			json_object_set_new(m, "namespace", json_string(cases[i].ns));
		if (cases[i].name)
			json_object_set_new(m, "name", json_string(cases[i].name));
		int ok = kube_object_names_valid(o, err, sizeof err) == 0;
		if (ok != cases[i].ok) {
			char msg[400];
			snprintf(msg, sizeof msg, "case %zu (%s %s): got %s (%s)", i, cases[i].kind,
				 cases[i].name ? cases[i].name : "-", ok ? "valid" : "invalid", err);
			testlib_fail(__FILE__, __LINE__, msg);
		}
		json_decref(o);
	}
}

static void t_documents(void)
{
	char err[512];
	json_t *docs = json_pack("[{s:s, s:{s:s, s:s, s:{s:s}}}, {s:s, s:{s:s, s:s, s:{s:s}}}]",
				 "source", "c/templates/ok.yaml", "object", "apiVersion", "v1", "kind", "ConfigMap",
				 "metadata", "name", "fine",
				 "source", "c/templates/bad.yaml", "object", "apiVersion", "v1", "kind", "Namespace",
				 "metadata", "name", "../../x");
	check(kube_documents_names_valid(docs, err, sizeof err) == -1);
	check(strstr(err, "c/templates/bad.yaml") && strstr(err, "Namespace name"));
	json_array_remove(docs, 1);
	check(kube_documents_names_valid(docs, err, sizeof err) == 0);
	json_decref(docs);
}

/* The fixed paths in the phases (phase_retire, phase_eni_agent,
 * phase_preflight_checks, l2) are built from these names: they must pass
 * the same rules. */
static void t_fixed_names(void)
{
	char err[256];
	const char *ds[] = { "kube-proxy", "tke-cni-agent", "ip-masq-agent", "tke-eni-agent" };
	for (size_t i = 0; i < 4; i++)
		check(kube_name_valid("DaemonSet", ds[i], err, sizeof err) == 0);
	check(kube_name_valid("CustomResourceDefinition", "ciliuml2announcementpolicies.cilium.io", err, sizeof err) == 0);
	check(kube_name_valid("CustomResourceDefinition", "nodepools.karpenter.sh", err, sizeof err) == 0);
	check(kube_namespace_valid("kube-system", err, sizeof err) == 0);
	check(kube_namespace_valid("default", err, sizeof err) == 0);
}

static void t_server_urls(void)
{
	char err[256];
	check(kube_server_url_valid("https://10.0.0.1:6443", err, sizeof err) == 0);
	check(kube_server_url_valid("https://api.example.com/k8s/clusters/c-1", err, sizeof err) == 0);
	check(kube_server_url_valid("https://[::1]:6443", err, sizeof err) == 0);
	const char *bad[] = { "https://user:pass@host/x", "https://user@host", "https://host/#frag",
			      "https://host/?q=1", "https://ho\r\nst", "https://host/a b", "http://host",
			      "https://", "https://:443", "https://host\\@x", "https://h\x7f" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (kube_server_url_valid(bad[i], err, sizeof err) == 0) {
			char msg[200];
			snprintf(msg, sizeof msg, "accepted bad URL #%zu", i);
			testlib_fail(__FILE__, __LINE__, msg);
		}
		check(strstr(err, "pass@host") == NULL);  /* never echoes credentials */
	}
	check(kube_tls_server_name_valid("kubernetes.default.svc", err, sizeof err) == 0);
	check(kube_tls_server_name_valid("10.0.0.1", err, sizeof err) == 0);
	check(kube_tls_server_name_valid("fe80::1", err, sizeof err) == 0);
	check(kube_tls_server_name_valid("a\r\nb", err, sizeof err) < 0);
	check(kube_tls_server_name_valid("localhost/../../x?", err, sizeof err) < 0);
	check(kube_tls_server_name_valid("", err, sizeof err) < 0);
	check(kube_tls_server_name_valid("a..b", err, sizeof err) < 0);
}

static void t_kubeconfig_urls(void)
{
	const char *tmpl =
		"apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		"contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
		"clusters:\n- name: k\n  cluster:\n    server: \"%s\"\n%s"
		"users:\n- name: u\n  user: {token: abc}\n";
	struct { const char *server, *extra; int ok; } cases[] = {
		{ "https://10.0.0.1:6443", "", 1 },
		{ "https://admin:secret@10.0.0.1:6443", "", 0 },
		{ "https://10.0.0.1:6443/#x", "", 0 },
		{ "https://10.0.0.1:6443", "    tls-server-name: \"a\\r\\nb\"\n", 0 },
		{ "https://10.0.0.1:6443", "    tls-server-name: \"localhost/../../x?\"\n", 0 },
		{ "https://10.0.0.1:6443", "    tls-server-name: kubernetes\n", 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[1024], err[256] = "";
		snprintf(text, sizeof text, tmpl, cases[i].server, cases[i].extra);
		struct kubeconfig_opts o = { .allow_insecure = 1 };
		struct kubeconfig_creds c;
		memset(&c, 0, sizeof c);
		int rc = kubeconfig_parse(text, strlen(text), NULL, &o, &c, err, sizeof err);
		if ((rc == 0) != cases[i].ok) {
			char msg[400];
			snprintf(msg, sizeof msg, "kubeconfig case %zu: rc %d (%s)", i, rc, err);
			testlib_fail(__FILE__, __LINE__, msg);
		}
		check(strstr(err, "secret") == NULL);
		if (rc == 0)
			kubeconfig_creds_free(&c);
	}
}

static void t_cursor_range(void)
{
	char us[24], id[37];
	const char *uuid = "0b9a2e64-8c1f-4e57-9a7c-3d2f1b0e6a11";
	char c[128];
	snprintf(c, sizeof c, "1733500000000000.%s", uuid);
	check(dbq_cursor_parse(c, us, id) == 0);
	snprintf(c, sizeof c, "253402300799999999.%s", uuid);
	check(dbq_cursor_parse(c, us, id) == 0);
	snprintf(c, sizeof c, "253402300800000000.%s", uuid);
	check(dbq_cursor_parse(c, us, id) == -1);
	snprintf(c, sizeof c, "99999999999999999999.%s", uuid);
	check(dbq_cursor_parse(c, us, id) == -1);
	snprintf(c, sizeof c, "9223372036854775807.%s", uuid);
	check(dbq_cursor_parse(c, us, id) == -1);
}

int main(void)
{
	test_run("sec_paths_refuse_hostile_names", t_paths_refuse_hostile);
	test_run("sec_paths_valid_and_encoded", t_paths_valid_and_encoded);
	test_run("sec_object_name_rules_per_kind", t_object_rules_per_kind);
	test_run("sec_manifest_documents_checked", t_documents);
	test_run("sec_fixed_paths_follow_the_rules", t_fixed_names);
	test_run("sec_server_url_and_tls_name", t_server_urls);
	test_run("sec_kubeconfig_server_and_tls_name", t_kubeconfig_urls);
	test_run("sec_cursor_range", t_cursor_range);
	return test_summary();
}
