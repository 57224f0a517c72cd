/*
 * test_kubesim: drives a real kubesim process over HTTPS with libcurl and
 * checks each behaviour of issue 3 against the wire facts in
 * shared/reference/kubernetes-api.md: auth (401/403), prefix routing,
 * discovery, the generic store (create/get/list/replace/delete, selectors,
 * pagination), generation/resourceVersion rules, the status subresource, the
 * four PATCH types with server-side apply conflicts, dryRun, controllers
 * (DaemonSet/Deployment/pods/CRDs), scenarios, faults, the admin API, watch,
 * and clean shutdown.
 */
#include "tests/unit/testlib.h"
#include "tests/kubesim/kubesim_proc.h"
#include "server/common/buf.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct kubesim_proc *ks;

struct resp {
	long code;
	char *body;
	json_t *json;
	char retry_after[32];
	char ctype[128];
	CURLcode curl;
	double seconds;
};

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
	buf_append(ud, p, s * n);
	return s * n;
}

static size_t header_cb(char *p, size_t s, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = s * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12))
		snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)strcspn(p + 13, "\r\n"), p + 13);
	if (len > 13 && !strncasecmp(p, "Content-Type:", 13))
		snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)strcspn(p + 14, "\r\n"), p + 14);
	return len;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* auth: "admin" (cluster token), "viewer", "nobody", "cert", "none", or a raw token */
static struct resp call(const char *method, const char *cluster, const char *path,
			const char *ctype, const char *body, const char *auth, long timeout_ms)
{
	struct resp r = {0};
	CURL *c = curl_easy_init();
	char url[2048], hdr[512];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/clusters/%s%s", ks->port, cluster, path);
	struct curl_slist *h = NULL;
	char *tok = NULL;
	char crt[400], key[400];
	if (!strcmp(auth, "admin"))
		tok = kubesim_proc_read(ks, cluster, "token");
	else if (!strcmp(auth, "viewer"))
		tok = kubesim_proc_read(ks, cluster, "token-viewer");
	else if (!strcmp(auth, "nobody"))
		tok = kubesim_proc_read(ks, cluster, "token-nobody");
	else if (!strcmp(auth, "cert")) {
		snprintf(crt, sizeof(crt), "%s/%s/client.crt", ks->dir, cluster);
		snprintf(key, sizeof(key), "%s/%s/client.key", ks->dir, cluster);
		curl_easy_setopt(c, CURLOPT_SSLCERT, crt);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	} else if (strcmp(auth, "none"))
		tok = xstrdup(auth);
	if (tok) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
		h = curl_slist_append(h, hdr);
		free(tok);
	}
	if (ctype) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	h = curl_slist_append(h, "User-Agent: kubesim-test/1.0");
	struct buf out = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, ks->ca_path);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 20000L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	r.curl = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.seconds);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	r.body = buf_steal(&out);
	r.json = json_loads(r.body, 0, NULL);
	return r;
}

static struct resp get(const char *cluster, const char *path)
{
	return call("GET", cluster, path, NULL, NULL, "admin", 0);
}

static const char *js(const json_t *j, const char *dotted)
{
	char part[256];
	const char *p = dotted;
	const json_t *cur = j;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		snprintf(part, sizeof(part), "%.*s", (int)n, p);
		if (json_is_array(cur))
			cur = json_array_get(cur, (size_t)atoi(part));
		else
			cur = json_object_get(cur, part);
		p = dot ? dot + 1 : p + n;
	}
	return json_string_value(cur);
}

static json_t *jp(const json_t *j, const char *dotted)
{
	char part[256];
	const char *p = dotted;
	const json_t *cur = j;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		snprintf(part, sizeof(part), "%.*s", (int)n, p);
		if (json_is_array(cur))
			cur = json_array_get(cur, (size_t)atoi(part));
		else
			cur = json_object_get(cur, part);
		p = dot ? dot + 1 : p + n;
	}
	return (json_t *)cur;
}

static long jint(const json_t *j, const char *dotted)
{
	return (long)json_integer_value(jp(j, dotted));
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void admin(const char *method, const char *path, const char *body, long want)
{
	long st = 0;
	char *out = NULL;
	kubesim_proc_admin(ks, method, path, body, &st, &out);
	if (st != want) {
		char msg[600];
		snprintf(msg, sizeof(msg), "admin %s %s: %ld (want %ld): %.300s", method, path, st, want, out ? out : "");
		testlib_fail(__FILE__, __LINE__, msg);
	}
	free(out);
}

/* Poll a GET until pred holds (or ~8 s). */
static int wait_for(const char *cluster, const char *path, int (*pred)(const json_t *))
{
	for (int i = 0; i < 160; i++) {
		struct resp r = get(cluster, path);
		int ok = r.code == 200 && pred(r.json);
		resp_free(&r);
		if (ok)
			return 1;
		sleep_ms(50);
	}
	return 0;
}

/* ------------------------------------------------------------ tests */

static void test_files(void)
{
	struct stat st;
	char p[600];
	snprintf(p, sizeof(p), "%s/kubesim.json", ks->dir);
	check(stat(p, &st) == 0);
	snprintf(p, sizeof(p), "%s/ca.key", ks->dir);
	check(stat(p, &st) == 0);
	char *kc = kubesim_proc_read(ks, "c1", "kubeconfig");
	char want[200];
	snprintf(want, sizeof(want), "server: https://127.0.0.1:%d/clusters/c1", ks->port);
	check(kc && strstr(kc, want));
	check(kc && strstr(kc, "certificate-authority-data:"));
	check(kc && strstr(kc, "client-certificate-data:"));
	check(kc && strstr(kc, "token:"));
	free(kc);
	char *tok = kubesim_proc_read(ks, "c1", "token");
	check(tok && strlen(tok) >= 32);
	free(tok);
}

static void test_auth(void)
{
	struct resp r = call("GET", "c1", "/api/v1/namespaces", NULL, NULL, "none", 0);
	check(r.code == 401);
	check_str(js(r.json, "kind"), "Status");
	check_str(js(r.json, "reason"), "Unauthorized");
	check(jint(r.json, "code") == 401);
	resp_free(&r);
	r = call("GET", "c1", "/api/v1/namespaces", NULL, NULL, "not-a-token", 0);
	check(r.code == 401);
	resp_free(&r);
	/* c2's token is not valid for c1 */
	char *t2 = kubesim_proc_read(ks, "c2", "token");
	r = call("GET", "c1", "/api/v1/namespaces", NULL, NULL, t2, 0);
	check(r.code == 401);
	resp_free(&r);
	free(t2);
	r = call("GET", "c1", "/api/v1/namespaces", NULL, NULL, "cert", 0);
	check(r.code == 200);
	check_str(js(r.json, "kind"), "NamespaceList");
	resp_free(&r);
	r = call("GET", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets", NULL, NULL, "viewer", 0);
	check(r.code == 200);
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/default/configmaps", "application/json",
		 "{\"metadata\":{\"name\":\"v\"}}", "viewer", 0);
	check(r.code == 403);
	check_str(js(r.json, "reason"), "Forbidden");
	check_str(js(r.json, "message"),
		  "configmaps is forbidden: User \"viewer\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\"");
	resp_free(&r);
	r = call("GET", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", NULL, NULL, "nobody", 0);
	check(r.code == 403);
	check_str(js(r.json, "message"),
		  "daemonsets.apps \"kube-proxy\" is forbidden: User \"nobody\" cannot get resource \"daemonsets\" in API group \"apps\" in the namespace \"kube-system\"");
	check_str(js(r.json, "details.kind"), "daemonsets");
	resp_free(&r);
	r = get("nosuch", "/version");
	check(r.code == 404);
	resp_free(&r);
}

static void test_discovery(void)
{
	struct resp r = get("c1", "/version");
	check(r.code == 200);
	check_str(js(r.json, "gitVersion"), "v1.32.2-tke.1");
	check_str(js(r.json, "major"), "1");
	resp_free(&r);
	r = get("c1", "/api");
	check_str(js(r.json, "kind"), "APIVersions");
	check_str(js(r.json, "versions.0"), "v1");
	resp_free(&r);
	r = get("c1", "/apis");
	check_str(js(r.json, "kind"), "APIGroupList");
	check(r.body && strstr(r.body, "\"groupVersion\":\"apps/v1\""));
	check(r.body && strstr(r.body, "\"groupVersion\":\"flowcontrol.apiserver.k8s.io/v1\""));
	check(r.body && !strstr(r.body, "flowcontrol.apiserver.k8s.io/v1beta3"));
	resp_free(&r);
	r = get("c1", "/apis/apps/v1");
	check_str(js(r.json, "kind"), "APIResourceList");
	check_str(js(r.json, "groupVersion"), "apps/v1");
	check(r.body && strstr(r.body, "\"name\":\"daemonsets\""));
	check(r.body && strstr(r.body, "\"name\":\"daemonsets/status\""));
	check(r.body && strstr(r.body, "\"shortNames\":[\"ds\"]"));
	resp_free(&r);
	r = get("c1", "/api/v1");
	check(r.body && strstr(r.body, "\"name\":\"nodes\",\"singularName\":\"node\",\"namespaced\":false"));
	resp_free(&r);
	r = get("c1", "/apis/nope.example.com/v1");
	check(r.code == 404);
	check_str(js(r.json, "reason"), "NotFound");
	resp_free(&r);
	r = get("old", "/apis/flowcontrol.apiserver.k8s.io");
	check(r.code == 200);
	check_str(js(r.json, "preferredVersion.version"), "v1beta3");
	resp_free(&r);
	r = get("old", "/version");
	check_str(js(r.json, "gitVersion"), "v1.28.3-tke.5");
	check_str(js(r.json, "minor"), "28+");
	resp_free(&r);
}

static void test_tke_fresh(void)
{
	struct resp r = get("c1", "/api/v1/namespaces/default/endpoints/kubernetes");
	check(r.code == 200);
	check(js(r.json, "subsets.0.addresses.0.ip") && !strncmp(js(r.json, "subsets.0.addresses.0.ip"), "169.254.", 8));
	check(jint(r.json, "subsets.0.ports.0.port") == 60002);
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-eni-agent");
	check(r.code == 200);
	const char *img = js(r.json, "spec.template.spec.containers.0.image");
	check(img && strstr(img, ":v3.7."));
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets");
	check(json_array_size(jp(r.json, "items")) == 4);
	check(js(r.json, "items.0.kind") == NULL); /* list items carry no kind */
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(r.body && strstr(r.body, "--proxy-mode=iptables"));
	resp_free(&r);
	r = get("c1", "/api/v1/nodes");
	check(r.code == 200 && json_array_size(jp(r.json, "items")) == 0);
	resp_free(&r);
}

static void test_scenarios(void)
{
	struct resp r = get("gr", "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-eni-agent");
	check(r.code == 404);
	resp_free(&r);
	r = get("gr", "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-bridge-agent");
	check(r.code == 200);
	resp_free(&r);
	r = get("dp", "/api/v1/namespaces/kube-system/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dcilium");
	check(r.code == 200);
	resp_free(&r);
	r = get("dp", "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium");
	check(r.code == 200);
	check(r.body && strstr(r.body, "\"app.kubernetes.io/part-of\":\"cilium\""));
	resp_free(&r);
	r = get("ipvs", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(r.body && strstr(r.body, "--proxy-mode=ipvs"));
	resp_free(&r);
	r = get("k3s", "/version");
	check(js(r.json, "gitVersion") && strstr(js(r.json, "gitVersion"), "+k3s"));
	resp_free(&r);
	r = get("k3s", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(r.code == 404);
	resp_free(&r);
	r = get("k3s", "/api/v1/nodes");
	check(json_array_size(jp(r.json, "items")) == 1);
	check_str(js(r.json, "items.0.status.conditions.0.status"), "False");
	resp_free(&r);
	r = get("nodes", "/api/v1/nodes");
	check(json_array_size(jp(r.json, "items")) == 3);
	check(r.body && strstr(r.body, "TencentOS Server 3.1"));
	check(r.body && strstr(r.body, "\"kernelVersion\":\"5.15.0-119-generic\""));
	resp_free(&r);
	r = get("gen", "/api/v1/nodes");
	check(json_array_size(jp(r.json, "items")) == 3);
	resp_free(&r);
}

static void test_create_get(void)
{
	const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\",\"labels\":{\"app\":\"x\",\"tier\":\"a\"}},\"data\":{\"k\":\"v\"}}";
	struct resp r = call("POST", "c1", "/api/v1/namespaces/kube-system/configmaps", "application/json", cm, "admin", 0);
	check(r.code == 201);
	check(js(r.json, "metadata.uid") && strlen(js(r.json, "metadata.uid")) == 36);
	check(js(r.json, "metadata.resourceVersion") != NULL);
	check(js(r.json, "metadata.creationTimestamp") != NULL);
	check_str(js(r.json, "metadata.namespace"), "kube-system");
	check_str(js(r.json, "metadata.managedFields.0.manager"), "kubesim-test");
	check(jp(r.json, "metadata.generation") == NULL);
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/kube-system/configmaps", "application/json", cm, "admin", 0);
	check(r.code == 409);
	check_str(js(r.json, "reason"), "AlreadyExists");
	check_str(js(r.json, "message"), "configmaps \"cfg\" already exists");
	check_str(js(r.json, "details.kind"), "configmaps");
	check_str(js(r.json, "status"), "Failure");
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/missing/configmaps", "application/json", cm, "admin", 0);
	check(r.code == 404);
	check_str(js(r.json, "message"), "namespaces \"missing\" not found");
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/kube-system/configmaps", "application/json", "{not json", "admin", 0);
	check(r.code == 400);
	check_str(js(r.json, "reason"), "BadRequest");
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/kube-system/configmaps", "application/json", "{\"metadata\":{}}", "admin", 0);
	check(r.code == 422);
	check_str(js(r.json, "reason"), "Invalid");
	check_str(js(r.json, "details.causes.0.field"), "metadata.name");
	resp_free(&r);
	r = get("c1", "/api/v1/namespaces/kube-system/configmaps/cfg");
	check(r.code == 200);
	check_str(js(r.json, "kind"), "ConfigMap");
	check_str(js(r.json, "data.k"), "v");
	resp_free(&r);
	/* cluster-scoped */
	r = call("POST", "c1", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "application/json",
		 "{\"metadata\":{\"name\":\"cr1\"},\"rules\":[]}", "admin", 0);
	check(r.code == 201);
	check(jp(r.json, "metadata.namespace") == NULL);
	resp_free(&r);
	r = get("c1", "/apis/rbac.authorization.k8s.io/v1/clusterroles/cr1");
	check(r.code == 200);
	resp_free(&r);
}

static void test_list(void)
{
	for (int i = 0; i < 5; i++) {
		char body[200];
		snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"s%d\",\"labels\":{\"grp\":\"%s\"}},\"type\":\"Opaque\"}", i, i % 2 ? "odd" : "even");
		struct resp r = call("POST", "c2", "/api/v1/namespaces/default/secrets", "application/json", body, "admin", 0);
		check(r.code == 201);
		resp_free(&r);
	}
	struct resp r = get("c2", "/api/v1/namespaces/default/secrets?labelSelector=grp%3Dodd");
	check_str(js(r.json, "kind"), "SecretList");
	check(json_array_size(jp(r.json, "items")) == 2);
	resp_free(&r);
	r = get("c2", "/api/v1/namespaces/default/secrets?labelSelector=grp%20in%20(odd,even),grp!%3Deven");
	check(json_array_size(jp(r.json, "items")) == 2);
	resp_free(&r);
	r = get("c2", "/api/v1/namespaces/default/secrets?labelSelector=!grp");
	check(json_array_size(jp(r.json, "items")) == 0);
	resp_free(&r);
	r = get("c2", "/api/v1/secrets?fieldSelector=metadata.name%3Ds3");
	check(json_array_size(jp(r.json, "items")) == 1);
	check_str(js(r.json, "items.0.metadata.name"), "s3");
	resp_free(&r);
	r = get("c2", "/api/v1/secrets?fieldSelector=spec.foo%3Dx");
	check(r.code == 400);
	check_str(js(r.json, "message"), "field label not supported: spec.foo");
	resp_free(&r);
	r = get("c2", "/api/v1/secrets?labelSelector=a%20in%20b");
	check(r.code == 400);
	resp_free(&r);
	/* pagination */
	r = get("c2", "/api/v1/namespaces/default/secrets?limit=2");
	check(json_array_size(jp(r.json, "items")) == 2);
	check_str(js(r.json, "items.0.metadata.name"), "s0");
	const char *cont = js(r.json, "metadata.continue");
	check(cont != NULL);
	char path[1200];
	snprintf(path, sizeof(path), "/api/v1/namespaces/default/secrets?limit=2&continue=%s", cont ? cont : "");
	char *saved = xstrdup(path);
	resp_free(&r);
	r = get("c2", saved);
	check(json_array_size(jp(r.json, "items")) == 2);
	check_str(js(r.json, "items.0.metadata.name"), "s2");
	resp_free(&r);
	r = get("c2", "/api/v1/namespaces/default/secrets?continue=bm9wZQ");
	check(r.code == 400);
	resp_free(&r);
	admin("POST", "/_sim/clusters/c2/compact", NULL, 200);
	r = get("c2", saved);
	check(r.code == 410);
	check_str(js(r.json, "reason"), "Expired");
	resp_free(&r);
	free(saved);
}

static const char *ds_json =
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"agent\",\"namespace\":\"kube-system\","
	"\"labels\":{\"app.kubernetes.io/part-of\":\"cilium\"}},\"spec\":{\"selector\":{\"matchLabels\":{\"k8s-app\":\"agent\"}},"
	"\"template\":{\"metadata\":{\"labels\":{\"k8s-app\":\"agent\",\"app.kubernetes.io/part-of\":\"cilium\"}},"
	"\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"quay.io/cilium/cilium:v1.18.3\",\"env\":[{\"name\":\"E1\",\"value\":\"1\"}]},"
	"{\"name\":\"b\",\"image\":\"busybox:1\"}]}}},\"status\":{\"numberReady\":99}}";

static void test_update_generation_status(void)
{
	struct resp r = call("POST", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets", "application/json", ds_json, "admin", 0);
	check(r.code == 201);
	check(jint(r.json, "metadata.generation") == 1);
	check(jint(r.json, "status.numberReady") == 0); /* status is not taken on create */
	check_str(js(r.json, "spec.updateStrategy.type"), "RollingUpdate");
	json_t *obj = json_incref(r.json);
	char rv1[32];
	snprintf(rv1, sizeof(rv1), "%s", js(obj, "metadata.resourceVersion"));
	resp_free(&r);
	/* metadata-only change: generation stays (unconditional: the
	 * controller may already have written status, changing the RV) */
	json_object_set_new(jp(obj, "metadata.labels"), "extra", json_string("1"));
	json_object_del(jp(obj, "metadata"), "resourceVersion");
	char *s = json_dumps(obj, JSON_COMPACT);
	json_object_set_new(jp(obj, "metadata"), "resourceVersion", json_string(rv1));
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent", "application/json", s, "admin", 0);
	free(s);
	check(r.code == 200);
	check(jint(r.json, "metadata.generation") == 1);
	check(js(r.json, "metadata.resourceVersion") && strcmp(js(r.json, "metadata.resourceVersion"), rv1) != 0);
	resp_free(&r);
	/* stale resourceVersion: 409 Conflict */
	json_object_set_new(jp(obj, "spec.template.spec"), "hostNetwork", json_true());
	s = json_dumps(obj, JSON_COMPACT);
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent", "application/json", s, "admin", 0);
	free(s);
	check(r.code == 409);
	check_str(js(r.json, "reason"), "Conflict");
	check_str(js(r.json, "message"), "Operation cannot be fulfilled on daemonsets.apps \"agent\": the object has been modified; please apply your changes to the latest version and try again");
	resp_free(&r);
	/* without resourceVersion: unconditional; spec change bumps generation */
	json_object_del(jp(obj, "metadata"), "resourceVersion");
	s = json_dumps(obj, JSON_COMPACT);
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent", "application/json", s, "admin", 0);
	free(s);
	check(r.code == 200);
	check(jint(r.json, "metadata.generation") == 2);
	resp_free(&r);
	json_decref(obj);
	/* status subresource: only status changes */
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent");
	obj = json_incref(r.json);
	resp_free(&r);
	json_object_set_new(obj, "status", json_pack("{s:i}", "numberReady", 7));
	/* the controller writes status too: an unconditional update avoids a
	 * (real) 409 race with it */
	json_object_del(jp(obj, "metadata"), "resourceVersion");
	json_object_set_new(jp(obj, "spec.template.spec"), "hostNetwork", json_false());
	s = json_dumps(obj, JSON_COMPACT);
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent/status", "application/json", s, "admin", 0);
	free(s);
	check(r.code == 200);
	check(jint(r.json, "status.numberReady") == 7);
	check(json_is_true(jp(r.json, "spec.template.spec.hostNetwork")));
	check(jint(r.json, "metadata.generation") == 2);
	resp_free(&r);
	json_decref(obj);
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/none", "application/json",
		 "{\"metadata\":{\"name\":\"none\"}}", "admin", 0);
	check(r.code == 404);
	resp_free(&r);
	r = call("PUT", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent", "application/json",
		 "{\"metadata\":{\"name\":\"other\"}}", "admin", 0);
	check(r.code == 400);
	resp_free(&r);
	r = call("DELETE", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent", NULL, NULL, "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "kind"), "Status");
	check_str(js(r.json, "status"), "Success");
	check_str(js(r.json, "details.kind"), "daemonsets");
	check_str(js(r.json, "details.group"), "apps");
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent");
	check(r.code == 404);
	resp_free(&r);
}

static void test_patches(void)
{
	const char *base = "/apis/apps/v1/namespaces/kube-system/daemonsets/agent";
	struct resp r = call("POST", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets", "application/json", ds_json, "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	/* JSON patch */
	r = call("PATCH", "c1", base, "application/json-patch+json",
		 "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"quay.io/cilium/cilium:v1.18.4\"},"
		 "{\"op\":\"add\",\"path\":\"/metadata/labels/j\",\"value\":\"1\"}]", "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "spec.template.spec.containers.0.image"), "quay.io/cilium/cilium:v1.18.4");
	check_str(js(r.json, "metadata.labels.j"), "1");
	check(jint(r.json, "metadata.generation") == 2);
	resp_free(&r);
	r = call("PATCH", "c1", base, "application/json-patch+json",
		 "[{\"op\":\"remove\",\"path\":\"/spec/nope\"}]", "admin", 0);
	check(r.code == 422);
	resp_free(&r);
	r = call("PATCH", "c1", base, "application/json-patch+json",
		 "[{\"op\":\"test\",\"path\":\"/metadata/labels/j\",\"value\":\"2\"}]", "admin", 0);
	check(r.code == 422);
	resp_free(&r);
	/* merge patch: null deletes, lists replace */
	r = call("PATCH", "c1", base, "application/merge-patch+json",
		 "{\"metadata\":{\"labels\":{\"j\":null}},\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"label-not-exist\":\"node-not-exist\"}}}}}", "admin", 0);
	check(r.code == 200);
	check(js(r.json, "metadata.labels.j") == NULL);
	check_str(js(r.json, "spec.template.spec.nodeSelector.label-not-exist"), "node-not-exist");
	check(json_array_size(jp(r.json, "spec.template.spec.containers")) == 2);
	resp_free(&r);
	/* strategic merge: containers by name, env by name */
	r = call("PATCH", "c1", base, "application/strategic-merge-patch+json",
		 "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"b\",\"image\":\"busybox:2\",\"env\":[{\"name\":\"X\",\"value\":\"y\"}]},"
		 "{\"name\":\"c\",\"image\":\"new:1\"}],\"volumes\":[{\"name\":\"v\",\"emptyDir\":{}}]}}}}", "admin", 0);
	check(r.code == 200);
	check(json_array_size(jp(r.json, "spec.template.spec.containers")) == 3);
	check_str(js(r.json, "spec.template.spec.containers.0.image"), "quay.io/cilium/cilium:v1.18.4");
	check_str(js(r.json, "spec.template.spec.containers.1.image"), "busybox:2");
	check_str(js(r.json, "spec.template.spec.containers.2.name"), "c");
	check_str(js(r.json, "spec.template.spec.volumes.0.name"), "v");
	resp_free(&r);
	r = call("PATCH", "c1", base, "application/strategic-merge-patch+json",
		 "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"$patch\":\"delete\"},"
		 "{\"name\":\"a\",\"env\":[{\"name\":\"E2\",\"value\":\"2\"}]}]}}}}", "admin", 0);
	check(r.code == 200);
	check(json_array_size(jp(r.json, "spec.template.spec.containers")) == 2);
	check(json_array_size(jp(r.json, "spec.template.spec.containers.0.env")) == 2);
	resp_free(&r);
	r = call("PATCH", "c1", base, "application/xml", "<x/>", "admin", 0);
	check(r.code == 415);
	resp_free(&r);
	/* resourceVersion in a patch is a precondition */
	r = call("PATCH", "c1", base, "application/merge-patch+json", "{\"metadata\":{\"resourceVersion\":\"1\"}}", "admin", 0);
	check(r.code == 409);
	check_str(js(r.json, "reason"), "Conflict");
	resp_free(&r);
	r = call("PATCH", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/missing", "application/merge-patch+json", "{}", "admin", 0);
	check(r.code == 404);
	resp_free(&r);
	r = call("DELETE", "c1", base, NULL, NULL, "admin", 0);
	check(r.code == 200);
	resp_free(&r);
}

static void test_apply(void)
{
	const char *p = "/api/v1/namespaces/kube-system/configmaps/applied";
	const char *cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: kube-system\ndata:\n  a: \"1\"\n  b: \"2\"\n";
	struct resp r = call("PATCH", "c1", p, "application/apply-patch+yaml", cfg, "admin", 0);
	check(r.code == 422);
	check(r.body && strstr(r.body, "fieldManager: Required value: is required for apply patch"));
	resp_free(&r);
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=ferry", "application/apply-patch+yaml", cfg, "admin", 0);
	check(r.code == 201);
	check_str(js(r.json, "data.b"), "2");
	check_str(js(r.json, "metadata.managedFields.0.manager"), "ferry");
	check_str(js(r.json, "metadata.managedFields.0.operation"), "Apply");
	check(jp(r.json, "metadata.managedFields.0.fieldsV1.f:data.f:a") != NULL);
	resp_free(&r);
	/* same apply again: 200, no change */
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=ferry", "application/apply-patch+yaml", cfg, "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	/* another manager changes a: then ferry's apply conflicts */
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=someone", "application/merge-patch+json",
		 "{\"data\":{\"a\":\"9\"}}", "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=ferry", "application/apply-patch+yaml", cfg, "admin", 0);
	check(r.code == 409);
	check_str(js(r.json, "reason"), "Conflict");
	check_str(js(r.json, "details.causes.0.reason"), "FieldManagerConflict");
	check_str(js(r.json, "details.causes.0.field"), ".data.a");
	check(js(r.json, "message") && !strncmp(js(r.json, "message"), "Apply failed with 1 conflict: conflict with \"someone\" using v1", 62));
	resp_free(&r);
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=ferry&force=true", "application/apply-patch+yaml", cfg, "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "data.a"), "1");
	resp_free(&r);
	/* fields dropped from the applied config are removed */
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?fieldManager=ferry", "application/apply-patch+yaml",
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"a\":\"1\"}}", "admin", 0);
	check(r.code == 200);
	check(js(r.json, "data.b") == NULL);
	check_str(js(r.json, "data.a"), "1");
	resp_free(&r);
	/* a container dropped from the applied config is removed as a whole */
	const char *ds2 = "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"ssa\"},\"spec\":{"
		"\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},"
		"\"spec\":{\"containers\":[{\"name\":\"one\",\"image\":\"i:1\"}%s]}}}}";
	char body[1024];
	snprintf(body, sizeof(body), ds2, ",{\"name\":\"two\",\"image\":\"i:2\"}");
	r = call("PATCH", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/ssa?fieldManager=ferry", "application/apply-patch+yaml", body, "admin", 0);
	check(r.code == 201);
	check(json_array_size(jp(r.json, "spec.template.spec.containers")) == 2);
	resp_free(&r);
	snprintf(body, sizeof(body), ds2, "");
	r = call("PATCH", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/ssa?fieldManager=ferry", "application/apply-patch+yaml", body, "admin", 0);
	check(r.code == 200);
	check(json_array_size(jp(r.json, "spec.template.spec.containers")) == 1);
	check_str(js(r.json, "spec.template.spec.containers.0.name"), "one");
	check(jint(r.json, "metadata.generation") == 2);
	resp_free(&r);
	r = call("DELETE", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/ssa", NULL, NULL, "admin", 0);
	resp_free(&r);
	r = call("PATCH", "c1", "/api/v1/namespaces/kube-system/configmaps/applied?force=true", "application/merge-patch+json", "{}", "admin", 0);
	check(r.code == 422);
	resp_free(&r);
}

static void test_dry_run(void)
{
	struct resp r = call("POST", "c1", "/api/v1/namespaces/default/configmaps?dryRun=All", "application/json",
			     "{\"metadata\":{\"name\":\"dry\"}}", "admin", 0);
	check(r.code == 201);
	check_str(js(r.json, "metadata.name"), "dry");
	resp_free(&r);
	r = get("c1", "/api/v1/namespaces/default/configmaps/dry");
	check(r.code == 404);
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/default/configmaps?dryRun=Yes", "application/json",
		 "{\"metadata\":{\"name\":\"dry\"}}", "admin", 0);
	check(r.code == 422);
	resp_free(&r);
	r = call("PATCH", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?dryRun=All", "application/merge-patch+json",
		 "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"a\":\"b\"}}}}}", "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "spec.template.spec.nodeSelector.a"), "b");
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(jp(r.json, "spec.template.spec.nodeSelector") == NULL);
	resp_free(&r);
	r = call("PATCH", "c1", "/api/v1/namespaces/default/configmaps/dry2?fieldManager=f&dryRun=All", "application/apply-patch+yaml",
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"dry2\"}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	r = call("DELETE", "c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?dryRun=All", NULL, NULL, "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	r = get("c1", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(r.code == 200);
	resp_free(&r);
	r = get("c1", "/api/v1/namespaces/default/configmaps/dry2");
	check(r.code == 404);
	resp_free(&r);
}

static int ds_three_ready(const json_t *j)
{
	return jint(j, "status.desiredNumberScheduled") == 3 && jint(j, "status.numberReady") == 3 &&
	       jint(j, "status.observedGeneration") == jint(j, "metadata.generation") &&
	       jint(j, "status.updatedNumberScheduled") == 3;
}

static int ds_zero(const json_t *j)
{
	return jint(j, "status.desiredNumberScheduled") == 0 && jint(j, "status.currentNumberScheduled") == 0 &&
	       jint(j, "status.numberMisscheduled") == 0 &&
	       jint(j, "status.observedGeneration") == jint(j, "metadata.generation") &&
	       jp(j, "status.numberAvailable") == NULL; /* omitempty: a missing field means 0 */
}

static int pods_none(const json_t *j)
{
	return json_array_size(json_object_get(j, "items")) == 0;
}

static int dep_available(const json_t *j)
{
	return jint(j, "status.availableReplicas") == 2 && jint(j, "status.updatedReplicas") == 2 &&
	       jint(j, "status.observedGeneration") == jint(j, "metadata.generation") &&
	       jint(j, "status.replicas") == 2;
}

static int crd_established(const json_t *j)
{
	json_t *conds = jp(j, "status.conditions");
	size_t i;
	json_t *c;
	json_array_foreach(conds, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "type")) ?: "", "Established") &&
		    !strcmp(json_string_value(json_object_get(c, "status")) ?: "", "True"))
			return 1;
	return 0;
}

static int has_two_pods(const json_t *j)
{
	return json_array_size(json_object_get(j, "items")) == 2;
}

static int k3s_ready(const json_t *j)
{
	const char *s = js(j, "items.0.status.conditions.0.status");
	return s && !strcmp(s, "True");
}

static void test_controllers(void)
{
	const char *ds = "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-eni-agent";
	check(wait_for("nodes", ds, ds_three_ready));
	struct resp r = get("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dtke-eni-agent");
	check(json_array_size(jp(r.json, "items")) == 3);
	check_str(js(r.json, "items.0.status.phase"), "Running");
	check_str(js(r.json, "items.0.metadata.ownerReferences.0.kind"), "DaemonSet");
	resp_free(&r);
	/* rolling: a new image replaces every pod */
	r = call("PATCH", "nodes", ds, "application/json-patch+json",
		 "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.8.0-rc.0\"}]", "admin", 0);
	check(r.code == 200);
	check(jint(r.json, "metadata.generation") == 2);
	resp_free(&r);
	check(wait_for("nodes", ds, ds_three_ready));
	r = get("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dtke-eni-agent");
	check(r.body && strstr(r.body, "v3.8.0-rc.0") && !strstr(r.body, "v3.7.5"));
	resp_free(&r);
	/* the nodeSelector trick takes the pods away */
	r = call("PATCH", "nodes", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", "application/strategic-merge-patch+json",
		 "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"label-not-exist\":\"node-not-exist\"}}}}}", "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	check(wait_for("nodes", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", ds_zero));
	check(wait_for("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-proxy", pods_none));
	/* Deployment by replicas; pods carry template labels */
	r = call("POST", "nodes", "/apis/apps/v1/namespaces/kube-system/deployments", "application/json",
		 "{\"metadata\":{\"name\":\"op\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"io.cilium/app\":\"operator\"}},"
		 "\"template\":{\"metadata\":{\"labels\":{\"io.cilium/app\":\"operator\",\"app.kubernetes.io/part-of\":\"cilium\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"o\",\"image\":\"quay.io/cilium/operator-generic:v1.18.3\"}]}}}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	check(wait_for("nodes", "/apis/apps/v1/namespaces/kube-system/deployments/op", dep_available));
	check(wait_for("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dcilium", has_two_pods));
	/* deleting the workload deletes its pods */
	r = call("DELETE", "nodes", "/apis/apps/v1/namespaces/kube-system/deployments/op", NULL, NULL, "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	check(wait_for("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dcilium", pods_none));
	/* tke-fresh: no nodes, DaemonSets want 0; nodes added at run time */
	r = get("c2", ds);
	check(jint(r.json, "status.desiredNumberScheduled") == 0);
	resp_free(&r);
	admin("POST", "/_sim/clusters/c2/nodes", "{\"count\":3}", 201);
	check(wait_for("c2", ds, ds_three_ready));
	/* CRDs: Established, served, custom resources stored; SMP -> 415 */
	r = call("POST", "c1", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json",
		 "{\"metadata\":{\"name\":\"ciliumnetworkpolicies.cilium.io\"},\"spec\":{\"group\":\"cilium.io\",\"scope\":\"Namespaced\","
		 "\"names\":{\"plural\":\"ciliumnetworkpolicies\",\"singular\":\"ciliumnetworkpolicy\",\"kind\":\"CiliumNetworkPolicy\",\"shortNames\":[\"cnp\"]},"
		 "\"versions\":[{\"name\":\"v2\",\"served\":true,\"storage\":true,\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\"}}}]}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	check(wait_for("c1", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ciliumnetworkpolicies.cilium.io", crd_established));
	r = get("c1", "/apis/cilium.io/v2");
	check(r.code == 200 && r.body && strstr(r.body, "\"kind\":\"CiliumNetworkPolicy\""));
	resp_free(&r);
	r = get("c1", "/apis");
	check(r.body && strstr(r.body, "\"groupVersion\":\"cilium.io/v2\""));
	resp_free(&r);
	r = call("POST", "c1", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies", "application/json",
		 "{\"apiVersion\":\"cilium.io/v2\",\"kind\":\"CiliumNetworkPolicy\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"endpointSelector\":{}}}", "admin", 0);
	check(r.code == 201);
	check(jint(r.json, "metadata.generation") == 1);
	resp_free(&r);
	r = get("c1", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies");
	check_str(js(r.json, "items.0.kind"), "CiliumNetworkPolicy"); /* CR list items keep kind */
	resp_free(&r);
	r = call("PATCH", "c1", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/p", "application/strategic-merge-patch+json", "{}", "admin", 0);
	check(r.code == 415);
	check_str(js(r.json, "reason"), "UnsupportedMediaType");
	resp_free(&r);
	r = call("PUT", "c1", "/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/p", "application/json",
		 "{\"apiVersion\":\"cilium.io/v2\",\"kind\":\"CiliumNetworkPolicy\",\"metadata\":{\"name\":\"p\"},\"spec\":{}}", "admin", 0);
	check(r.code == 422); /* custom resources need a resourceVersion on update */
	resp_free(&r);
	/* k3s: the node becomes Ready once a cilium pod runs on it */
	r = call("POST", "k3s", "/apis/apps/v1/namespaces/kube-system/daemonsets", "application/json",
		 "{\"metadata\":{\"name\":\"cilium\"},\"spec\":{\"selector\":{\"matchLabels\":{\"k8s-app\":\"cilium\"}},"
		 "\"template\":{\"metadata\":{\"labels\":{\"k8s-app\":\"cilium\"}},\"spec\":{\"hostNetwork\":true,\"containers\":[{\"name\":\"c\",\"image\":\"cilium:1\"}]}}}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	check(wait_for("k3s", "/api/v1/nodes", k3s_ready));
}


static int progress_deadline_exceeded(const json_t *j)
{
	json_t *conds = jp(j, "status.conditions");
	size_t i;
	json_t *c;
	json_array_foreach(conds, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "type")) ?: "", "Progressing") &&
		    !strcmp(json_string_value(json_object_get(c, "status")) ?: "", "False") &&
		    !strcmp(json_string_value(json_object_get(c, "reason")) ?: "", "ProgressDeadlineExceeded"))
			return 1;
	return 0;
}

static int one_pod_listed(const json_t *j)
{
	return json_array_size(json_object_get(j, "items")) == 1;
}

static void test_pods_terminating_deadline(void)
{
	/* a pod deleted with a grace period answers with itself, carrying
	 * deletionTimestamp, and disappears later; gracePeriodSeconds=0 is at once */
	struct resp r = get("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dtke-cni-agent");
	char name[300], path[400];
	snprintf(name, sizeof(name), "%s", js(r.json, "items.0.metadata.name") ?: "none");
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/namespaces/kube-system/pods/%s", name);
	r = call("DELETE", "nodes", path, NULL, NULL, "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "kind"), "Pod");
	check(js(r.json, "metadata.deletionTimestamp") != NULL);
	resp_free(&r);
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		r = get("nodes", path);
		gone = r.code == 404;
		resp_free(&r);
		sleep_ms(20);
	}
	check(gone);
	/* the DaemonSet controller replaces it */
	check(wait_for("nodes", "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-cni-agent", ds_three_ready));
	r = get("nodes", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dtke-cni-agent");
	snprintf(name, sizeof(name), "%s", js(r.json, "items.0.metadata.name") ?: "none");
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/namespaces/kube-system/pods/%s?gracePeriodSeconds=0", name);
	r = call("DELETE", "nodes", path, NULL, NULL, "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "kind"), "Status");
	resp_free(&r);
	/* a Deployment that cannot progress reports ProgressDeadlineExceeded */
	r = call("POST", "nodes", "/apis/apps/v1/namespaces/default/deployments", "application/json",
		 "{\"metadata\":{\"name\":\"stuck\"},\"spec\":{\"replicas\":1,\"progressDeadlineSeconds\":1,"
		 "\"selector\":{\"matchLabels\":{\"app\":\"stuck\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"stuck\"}},"
		 "\"spec\":{\"containers\":[{\"name\":\"s\",\"image\":\"example.com/nonexistent:1\"}]}}}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	check(wait_for("nodes", "/api/v1/namespaces/default/pods?labelSelector=app%3Dstuck", one_pod_listed));
	r = get("nodes", "/api/v1/namespaces/default/pods?labelSelector=app%3Dstuck");
	resp_free(&r);
	int exceeded = 0;
	for (int i = 0; i < 60 && !exceeded; i++) {
		r = get("nodes", "/apis/apps/v1/namespaces/default/deployments/stuck");
		exceeded = progress_deadline_exceeded(r.json);
		resp_free(&r);
		if (!exceeded)
			sleep_ms(50);
	}
	check(exceeded);
	r = get("nodes", "/api/v1/namespaces/default/pods?labelSelector=app%3Dstuck");
	check_str(js(r.json, "items.0.status.containerStatuses.0.state.waiting.reason"), "ErrImagePull");
	resp_free(&r);
}

static long stat_of(const char *cluster, const char *what)
{
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/stats", cluster);
	long st = 0, v = -1;
	char *body = NULL;
	kubesim_proc_admin(ks, "GET", path, NULL, &st, &body);
	json_t *s = json_loads(body ? body : "", 0, NULL);
	if (st == 200)
		v = jint(s, what);
	json_decref(s);
	free(body);
	return v;
}

/* stats.connections counts TLS connections, not requests: three requests
 * on one keep-alive connection are one, three fresh handles three. */
static void test_stats_connections(void)
{
	admin("POST", "/_sim/clusters/c2/stats/reset", NULL, 200);
	check(stat_of("c2", "connections") == 0);
	for (int i = 0; i < 3; i++) {
		struct resp r = get("c2", "/version");   /* a new handle each time */
		check(r.code == 200);
		resp_free(&r);
	}
	check(stat_of("c2", "connections") == 3);
	char *tok = kubesim_proc_read(ks, "c2", "token");
	char url[300], hdr[400];
	snprintf(url, sizeof url, "https://127.0.0.1:%d/clusters/c2/version", ks->port);
	snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", tok ? tok : "");
	struct curl_slist *h = curl_slist_append(NULL, hdr);
	CURL *c = curl_easy_init();
	struct buf out = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, ks->ca_path);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	long total_connects = 0;
	for (int i = 0; i < 3; i++) {
		long code = 0, n = 0;
		check(curl_easy_perform(c) == CURLE_OK);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &n);
		check(code == 200);
		total_connects += n;
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	buf_free(&out);
	free(tok);
	check(total_connects == 1);
	check(stat_of("c2", "connections") == 4);
	check(stat_of("c2", "total") == 6);
	admin("POST", "/_sim/clusters/c2/stats/reset", NULL, 200);
	check(stat_of("c2", "connections") == 0);
}

static void test_faults_and_stats(void)
{
	admin("POST", "/_sim/clusters/c3/stats/reset", NULL, 200);
	admin("PUT", "/_sim/clusters/c3/faults", "{\"fail_next\":2,\"error_codes\":[503],\"retry_after_s\":2}", 200);
	struct resp r = get("c3", "/version");
	check(r.code == 503);
	check_str(js(r.json, "reason"), "ServiceUnavailable");
	check(jint(r.json, "details.retryAfterSeconds") == 2);
	check_str(r.retry_after, "2");
	resp_free(&r);
	r = get("c3", "/version");
	check(r.code == 503);
	resp_free(&r);
	r = get("c3", "/version");
	check(r.code == 200);
	resp_free(&r);
	admin("PUT", "/_sim/clusters/c3/faults", "{\"fail_next\":1,\"error_codes\":[429],\"retry_after_s\":1}", 200);
	r = get("c3", "/version");
	check(r.code == 429);
	check(strstr(r.ctype, "text/plain") != NULL);
	check_str(r.retry_after, "1");
	resp_free(&r);
	/* filters: only patch requests on daemonsets fail */
	admin("PUT", "/_sim/clusters/c3/faults", "{\"error_rate\":1.0,\"error_codes\":[500],\"verbs\":[\"patch\"],\"path_contains\":\"/daemonsets/\"}", 200);
	r = get("c3", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy");
	check(r.code == 200);
	resp_free(&r);
	r = call("PATCH", "c3", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", "application/merge-patch+json", "{}", "admin", 0);
	check(r.code == 500);
	check_str(js(r.json, "reason"), "InternalError");
	resp_free(&r);
	/* latency */
	admin("PUT", "/_sim/clusters/c3/faults", "{\"latency_ms\":300}", 200);
	r = get("c3", "/version");
	check(r.code == 200 && r.seconds >= 0.29);
	resp_free(&r);
	/* dropped mid-response */
	admin("PUT", "/_sim/clusters/c3/faults", "{\"drop_next\":1}", 200);
	r = get("c3", "/apis/apps/v1/namespaces/kube-system/daemonsets");
	check(r.curl != CURLE_OK || r.json == NULL);
	resp_free(&r);
	/* hang: the client's timeout fires */
	admin("PUT", "/_sim/clusters/c3/faults", "{\"hang_next\":1}", 200);
	r = call("GET", "c3", "/version", NULL, NULL, "admin", 500);
	check(r.curl == CURLE_OPERATION_TIMEDOUT);
	resp_free(&r);
	/* rate limit */
	admin("PUT", "/_sim/clusters/c3/faults", "{\"rate_limit_qps\":2}", 200);
	int limited = 0;
	for (int i = 0; i < 8; i++) {
		r = get("c3", "/version");
		if (r.code == 429)
			limited++;
		resp_free(&r);
	}
	check(limited >= 4);
	admin("PUT", "/_sim/clusters/c3/faults", "{}", 200);
	r = get("c3", "/version");
	check(r.code == 200);
	resp_free(&r);
	admin("PUT", "/_sim/clusters/c3/faults", "{\"bogus\":1}", 400);
	/* stats */
	long st = 0;
	char *body = NULL;
	kubesim_proc_admin(ks, "GET", "/_sim/clusters/c3/stats", NULL, &st, &body);
	json_t *s = json_loads(body ? body : "", 0, NULL);
	check(st == 200);
	check(jint(s, "by_verb.patch") == 1);
	check(jint(s, "writes") == 0);
	check(jint(s, "faults_injected") >= 8);
	check(json_integer_value(json_object_get(jp(s, "by_request"), "GET /version")) >= 10);
	check(json_integer_value(json_object_get(jp(s, "by_request"), "PATCH /apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy")) == 1);
	json_decref(s);
	free(body);
	/* admin auth */
	struct kubesim_proc fake = *ks;
	snprintf(fake.admin_token, sizeof(fake.admin_token), "wrong");
	kubesim_proc_admin(&fake, "GET", "/_sim/clusters", NULL, &st, NULL);
	check(st == 401);
}

static void test_reset_and_runtime_clusters(void)
{
	struct resp r = call("DELETE", "c3", "/apis/apps/v1/namespaces/kube-system/daemonsets/ip-masq-agent", NULL, NULL, "admin", 0);
	check(r.code == 200);
	resp_free(&r);
	admin("POST", "/_sim/clusters/c3/reset", NULL, 200);
	r = get("c3", "/apis/apps/v1/namespaces/kube-system/daemonsets/ip-masq-agent");
	check(r.code == 200);
	resp_free(&r);
	admin("POST", "/_sim/clusters", "{\"name\":\"late\",\"scenario\":\"tke-old\"}", 201);
	admin("POST", "/_sim/clusters", "{\"name\":\"late\",\"scenario\":\"tke-old\"}", 409);
	admin("POST", "/_sim/clusters", "{\"name\":\"Bad_Name\"}", 400);
	r = get("late", "/version");
	check(r.code == 200);
	check_str(js(r.json, "gitVersion"), "v1.28.3-tke.5");
	resp_free(&r);
	admin("DELETE", "/_sim/clusters/late", NULL, 200);
	r = get("late", "/version");
	check(r.code == 404);
	resp_free(&r);
}

static void test_watch(void)
{
	struct resp r = get("c2", "/api/v1/namespaces/default/configmaps");
	char rv[32];
	snprintf(rv, sizeof(rv), "%s", js(r.json, "metadata.resourceVersion") ?: "0");
	resp_free(&r);
	r = call("POST", "c2", "/api/v1/namespaces/default/configmaps", "application/json", "{\"metadata\":{\"name\":\"w1\"}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	r = call("PATCH", "c2", "/api/v1/namespaces/default/configmaps/w1", "application/merge-patch+json", "{\"data\":{\"x\":\"1\"}}", "admin", 0);
	resp_free(&r);
	char path[300];
	snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%s&timeoutSeconds=1&fieldSelector=metadata.name%%3Dw1", rv);
	r = get("c2", path);
	check(r.code == 200);
	check(r.body && strstr(r.body, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\""));
	check(r.body && strstr(r.body, "\"type\":\"MODIFIED\""));
	resp_free(&r);
	admin("POST", "/_sim/clusters/c2/compact", NULL, 200);
	r = get("c2", path);
	check(r.body && strstr(r.body, "\"type\":\"ERROR\"") && strstr(r.body, "\"code\":410"));
	resp_free(&r);
}

static void test_many_clusters_start(void)
{
	char err[512];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	struct kubesim_proc *big = kubesim_proc_start(&(struct kubesim_opts){.clusters = 200}, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &b);
	check(big != NULL);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	check(secs < 5.0); /* well under a second unsanitized; ASan is slower */
	if (big) {
		char p[400];
		snprintf(p, sizeof(p), "%s/c200/kubeconfig", big->dir);
		check(access(p, R_OK) == 0);
		check(kubesim_proc_stop(big) == 0);
	} else {
		printf("# %s\n", err);
	}
}



static void test_namespaces_karpenter(void)
{
	struct resp r = call("POST", "c1", "/api/v1/namespaces", "application/json",
			     "{\"metadata\":{\"name\":\"tmp-ns\"}}", "admin", 0);
	check(r.code == 201);
	check_str(js(r.json, "status.phase"), "Active");
	resp_free(&r);
	r = call("POST", "c1", "/api/v1/namespaces/tmp-ns/configmaps", "application/json",
		 "{\"metadata\":{\"name\":\"x\"}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	r = call("DELETE", "c1", "/api/v1/namespaces/tmp-ns", NULL, NULL, "admin", 0);
	check(r.code == 200);
	check_str(js(r.json, "status.phase"), "Terminating");
	resp_free(&r);
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		r = get("c1", "/api/v1/namespaces/tmp-ns");
		gone = r.code == 404;
		resp_free(&r);
		if (!gone)
			sleep_ms(20);
	}
	check(gone);
	r = get("c1", "/api/v1/namespaces/tmp-ns/configmaps/x");
	check(r.code == 404);
	resp_free(&r);
	/* Karpenter scenario: CRDs served from the start */
	r = get("karp", "/apis/karpenter.sh/v1/nodepools");
	check(r.code == 200);
	check_str(js(r.json, "kind"), "NodePoolList");
	resp_free(&r);
	r = call("POST", "karp", "/apis/karpenter.k8s.tke/v1beta1/tkemachinenodeclasses", "application/json",
		 "{\"apiVersion\":\"karpenter.k8s.tke/v1beta1\",\"kind\":\"TKEMachineNodeClass\",\"metadata\":{\"name\":\"default\"},\"spec\":{}}", "admin", 0);
	check(r.code == 201);
	resp_free(&r);
	r = get("c1", "/apis/karpenter.sh/v1/nodepools");
	check(r.code == 404);
	resp_free(&r);
	/* super nodes added through the admin API */
	admin("POST", "/_sim/clusters/karp/nodes", "{\"nodes\":[{\"name\":\"eklet-1\",\"virtual\":true}]}", 201);
	r = get("karp", "/api/v1/nodes?labelSelector=type%3Dvirtual-kubelet");
	check(json_array_size(jp(r.json, "items")) == 1);
	check(r.body && strstr(r.body, "eks.tke.cloud.tencent.com/eklet"));
	resp_free(&r);
}


/* Malformed input never crashes kubesim nor gets a 5xx. */
static void test_bad_input(void)
{
	static const char *types[] = {"application/json-patch+json", "application/merge-patch+json",
				      "application/strategic-merge-patch+json", "application/apply-patch+yaml"};
	static const char *bodies[] = {
		"", "null", "[]", "{}", "\"x\"", "[{\"op\":\"replace\",\"path\":\"\",\"value\":1}]",
		"[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":1}]", "[{\"op\":\"move\",\"from\":\"/spec\",\"path\":\"/spec/x\"}]",
		"[{\"op\":\"remove\",\"path\":\"/metadata\"}]", "[{\"op\":\"replace\",\"path\":\"/metadata/name\",\"value\":\"x\"}]",
		"{\"metadata\":{\"name\":\"other\"}}", "{\"spec\":{\"template\":{\"spec\":{\"containers\":[1,\"x\",{\"name\":null}]}}}}",
		"{\"$foo\":1}", "{\"kind\":\"DaemonSet\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"labels\":[]},\"spec\":[]}",
		"{\"kind\":\"DaemonSet\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"managedFields\":5,\"ownerReferences\":[{\"uid\":1},\"x\"]}}",
		"- a\n- b", ": : :"};
	int bad = 0;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		for (size_t j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
			struct resp r = call("PATCH", "c3", "/apis/apps/v1/namespaces/kube-system/daemonsets/tke-cni-agent?fieldManager=z",
					     types[i], bodies[j], "admin", 0);
			if (r.code < 200 || r.code >= 500) {
				printf("# %s %s -> %ld\n", types[i], bodies[j], r.code);
				bad++;
			}
			resp_free(&r);
		}
	static const char *paths[] = {"/api/v1/namespaces/kube-system/pods/x/status/extra/more/x/y/z",
		"/api/v1/nodes?labelSelector=(((", "/api/v1/pods?fieldSelector=%3D%3D", "/api/v1/pods?limit=-5",
		"/api/v1/pods?continue=%25%25", "/api/v1/namespaces/x/nodes", "/openapi/v3/apis/x", "/apis//v1"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct resp r = call("DELETE", "c3", paths[i], "application/json", "{", "admin", 0);
		if (r.code < 400 || r.code >= 500)
			bad++;
		resp_free(&r);
		r = get("c3", paths[i]);
		if (r.code >= 500 || r.code == 0)
			bad++;
		resp_free(&r);
	}
	check(bad == 0);
	struct resp r = get("c3", "/version");
	check(r.code == 200);
	resp_free(&r);
	admin("POST", "/_sim/clusters/c3/reset", NULL, 200);
}


static void test_scenario_file(void)
{
	char path[] = "/tmp/kubesim-scenario-XXXXXX";
	int fd = mkstemp(path);
	check(fd >= 0);
	if (fd < 0)
		return;
	const char *yaml =
		"base: tke-fresh\n"
		"version: {gitVersion: v1.30.4-tke.9, minor: \"30\"}\n"
		"remove:\n- {resource: daemonsets, namespace: kube-system, name: ip-masq-agent}\n"
		"objects:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: extra, namespace: kube-system}\n  data: {k: v}\n"
		"nodes:\n- {name: 10.1.0.5, osImage: TencentOS Server 3.1 (Final), kernelVersion: 5.4.119, labels: {pool: a}}\n";
	check(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
	close(fd);
	char arg[128];
	snprintf(arg, sizeof(arg), "custom=%s", path);
	char err[512];
	struct kubesim_proc *saved = ks;
	ks = kubesim_proc_start(&(struct kubesim_opts){.named = {"cx=custom", NULL},
		.extra_args = {"--scenario-file", arg, NULL}}, err, sizeof(err));
	check(ks != NULL);
	if (ks) {
		struct resp r = get("cx", "/version");
		check_str(js(r.json, "gitVersion"), "v1.30.4-tke.9");
		resp_free(&r);
		r = get("cx", "/apis/apps/v1/namespaces/kube-system/daemonsets/ip-masq-agent");
		check(r.code == 404);
		resp_free(&r);
		r = get("cx", "/api/v1/namespaces/kube-system/configmaps/extra");
		check_str(js(r.json, "data.k"), "v");
		resp_free(&r);
		r = get("cx", "/api/v1/nodes");
		check_str(js(r.json, "items.0.status.nodeInfo.osImage"), "TencentOS Server 3.1 (Final)");
		check_str(js(r.json, "items.0.metadata.labels.pool"), "a");
		resp_free(&r);
		check(kubesim_proc_stop(ks) == 0);
	} else {
		printf("# %s\n", err);
	}
	ks = saved;
	unlink(path);
	/* a broken scenario file: kubesim refuses to start, saying why */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	check(write(fd, "objects: [{kind: Nope}]\n", 24) == 24);
	close(fd);
	struct kubesim_proc *bad = kubesim_proc_start(&(struct kubesim_opts){.named = {"cx=custom", NULL},
		.extra_args = {"--scenario-file", arg, NULL}}, err, sizeof(err));
	check(bad == NULL);
	unlink(path);
}

static void test_clean_stop(void)
{
	check(kubesim_proc_stop(ks) == 0); /* SIGTERM: exit status 0, no sanitizer report */
	ks = NULL;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char err[512];
	ks = kubesim_proc_start(&(struct kubesim_opts){
		.clusters = 3, .scenario = "tke-fresh", .ready_delay_ms = 100, .tick_ms = 20,
		.named = {"old=tke-old", "nodes=tke-with-nodes", "gr=tke-globalrouter", "dp=tke-dataplanev2",
			  "ipvs=tke-ipvs", "k3s=k3s", "gen=generic", "karp=tke-karpenter", NULL}}, err, sizeof(err));
	if (!ks) {
		printf("FAIL: kubesim_start: %s\n", err);
		return 1;
	}
	test_run("kubesim_files", test_files);
	test_run("kubesim_auth", test_auth);
	test_run("kubesim_discovery", test_discovery);
	test_run("kubesim_tke_fresh", test_tke_fresh);
	test_run("kubesim_scenarios", test_scenarios);
	test_run("kubesim_create_get", test_create_get);
	test_run("kubesim_list_selectors_pagination", test_list);
	test_run("kubesim_update_generation_status", test_update_generation_status);
	test_run("kubesim_patch_json_merge_strategic", test_patches);
	test_run("kubesim_server_side_apply", test_apply);
	test_run("kubesim_dry_run", test_dry_run);
	test_run("kubesim_controllers", test_controllers);
	test_run("kubesim_pods_terminating_progress_deadline", test_pods_terminating_deadline);
	test_run("kubesim_faults_stats", test_faults_and_stats);
	test_run("kubesim_stats_count_connections", test_stats_connections);
	test_run("kubesim_reset_runtime_clusters", test_reset_and_runtime_clusters);
	test_run("kubesim_watch", test_watch);
	test_run("kubesim_namespaces_karpenter_supernodes", test_namespaces_karpenter);
	test_run("kubesim_bad_input", test_bad_input);
	test_run("kubesim_clean_stop", test_clean_stop);
	test_run("kubesim_200_clusters_start", test_many_clusters_start);
	test_run("kubesim_scenario_file", test_scenario_file);
	curl_global_cleanup();
	return test_summary();
}
