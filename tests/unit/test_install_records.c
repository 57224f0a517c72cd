/* Unit tests for server/install/release (Helm v3 release records) and
 * server/install/verify (the pod table). */
#define _POSIX_C_SOURCE 200809L
#include "server/chart/chart.h"
#include "server/common/yamljson.h"
#include "server/install/release.h"
#include "server/install/verify.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>
#include <zlib.h>

static json_t *yj(const char *y)
{
	char err[256];
	json_t *v = yaml_to_json(y, strlen(y), err, sizeof(err));
	if (!v)
		printf("yaml error: %s\n", err);
	return v;
}

static void test_release_roundtrip(void)
{
	json_t *meta = json_pack("{s:s, s:s, s:s, s:s}", "name", "cilium", "version", "1.18.3",
				 "appVersion", "1.18.3", "apiVersion", "v2");
	json_t *config = yj("routingMode: native\ncni: {configMap: cni-config}\n");
	struct release_info info = {
		.name = "cilium", .namespace_ = "kube-system", .revision = 1,
		.status = "deployed", .description = "Install complete",
		.chart_metadata = meta, .config = config,
		.manifest = "---\n# Source: cilium/templates/a.yaml\nkind: ConfigMap\n",
	};
	json_t *r = release_build(&info);
	/* Helm's key order and the three time keys. */
	const char *k;
	json_t *v;
	const char *order[] = { "name", "info", "chart", "config", "manifest", "version", "namespace" };
	int i = 0, in_order = 1;
	json_object_foreach(r, k, v) {
		if (i >= 7 || strcmp(k, order[i]))
			in_order = 0;
		i++;
	}
	check(in_order && i == 7);
	json_t *inf = json_object_get(r, "info");
	check(json_object_get(inf, "first_deployed") && json_object_get(inf, "last_deployed"));
	check_str(json_string_value(json_object_get(inf, "deleted")), "");
	check(json_is_array(json_object_get(json_object_get(r, "chart"), "templates")));

	char *enc = release_encode(r);
	check(enc && !strncmp(enc, "H4sIAAAAAAAC/", 13));   /* Go's gzip header */
	char err[256];
	json_t *back = release_decode(enc, err, sizeof err);
	check(back && json_equal(back, r));
	json_decref(back);

	/* A record that compresses to more than 512 KiB takes the second,
	 * stronger compression (release.c): still Go's header, still decodes. */
	{
		size_t n = 900 * 1024;
		unsigned char *noise = malloc(n);
		unsigned long long x = 88172645463325252ull;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			noise[i] = (unsigned char)x;
		}
		char *b64 = release_b64_encode(noise, n);
		json_t *big = json_deep_copy(r);
		json_object_set_new(big, "manifest", json_string(b64));
		char *benc = release_encode(big);
		check(benc && !strncmp(benc, "H4sIAAAAAAAC/", 13));
		check(benc && strlen(benc) > 4 * 512 * 1024 / 3);
		json_t *bback = release_decode(benc, err, sizeof err);
		check(bback && json_equal(bback, big));
		json_decref(bback);
		json_decref(big);
		free(benc);
		free(b64);
		free(noise);
	}

	json_t *sec = release_secret(r, 1700000000, 0);
	check_str(json_string_value(json_object_get(json_object_get(sec, "metadata"), "name")),
		  "sh.helm.release.v1.cilium.v1");
	check_str(json_string_value(json_object_get(sec, "type")), "helm.sh/release.v1");
	json_t *labels = json_object_get(json_object_get(sec, "metadata"), "labels");
	check_str(json_string_value(json_object_get(labels, "owner")), "helm");
	check_str(json_string_value(json_object_get(labels, "name")), "cilium");
	check_str(json_string_value(json_object_get(labels, "status")), "deployed");
	check_str(json_string_value(json_object_get(labels, "version")), "1");
	check_str(json_string_value(json_object_get(labels, "createdAt")), "1700000000");
	check(json_object_get(labels, "modifiedAt") == NULL);
	const char *wire = json_string_value(json_object_get(json_object_get(sec, "data"), "release"));
	check(wire && !strncmp(wire, "SDRzSUFBQUFBQUFD", 16));
	back = release_from_secret(sec, err, sizeof err);
	check(back && json_equal(back, r));
	check_str(json_string_value(json_object_get(json_object_get(back, "config"), "routingMode")), "native");
	json_decref(back);

	/* The Secret as text (relstore_write sends this): the same object. */
	char *wire2 = NULL;
	json_t *head = release_secret_head(r, 1700000000, 0, &wire2);
	char *text = head ? release_secret_text(head, wire2) : NULL;
	json_t *parsed = text ? json_loads(text, 0, NULL) : NULL;
	check(parsed && json_equal(parsed, sec));
	check(head && json_object_get(head, "data") == NULL);
	json_decref(parsed);
	free(text);
	free(wire2);
	json_decref(head);

	/* No config when user values are empty (Helm omits it). */
	json_t *empty = json_object();
	info.config = empty;
	json_t *r2 = release_build(&info);
	check(json_object_get(r2, "config") == NULL);
	json_decref(r2), json_decref(empty);

	free(enc);
	json_decref(sec), json_decref(r), json_decref(meta), json_decref(config);
}

static void test_release_decode_plain_and_bad(void)
{
	char err[256];
	/* Helm's decoder accepts plain JSON when the gzip magic is absent. */
	char *b = release_b64_encode("{\"name\":\"x\",\"version\":2}", 24);
	json_t *r = release_decode(b, err, sizeof err);
	check(r && json_integer_value(json_object_get(r, "version")) == 2);
	json_decref(r);
	free(b);
	check(release_decode("!!!notbase64", err, sizeof err) == NULL);
	check(strstr(err, "base64") != NULL);
	/* Truncated gzip. */
	json_t *obj = json_pack("{s:s}", "name", "y");
	char *enc = release_encode(obj);
	size_t len;
	unsigned char *raw = release_b64_decode(enc, &len);
	char *half = release_b64_encode(raw, len / 2);
	check(release_decode(half, err, sizeof err) == NULL);
	check(strstr(err, "gzip") != NULL);
	free(half), free(raw), free(enc), json_decref(obj);
	json_t *sec = yj("data: {}");
	check(release_from_secret(sec, err, sizeof err) == NULL);
	json_decref(sec);
}

static void test_release_names(void)
{
	check(release_name_valid("cilium"));
	check(release_name_valid("my.cilium-1"));
	check(!release_name_valid("Cilium"));
	check(!release_name_valid("-x"));
	check(!release_name_valid("x."));
	check(!release_name_valid(""));
	check(!release_name_valid("a234567890123456789012345678901234567890123456789012345"));
	char *n = release_secret_name("cilium", 12);
	check_str(n, "sh.helm.release.v1.cilium.v12");
	free(n);
	json_t *list = yj("items:\n- metadata: {labels: {version: '2'}, name: a}\n"
			  "- metadata: {labels: {version: '10'}, name: b}\n- metadata: {labels: {version: '9'}, name: c}\n");
	const json_t *l = release_latest_secret(list);
	check_str(json_string_value(json_object_get(json_object_get(l, "metadata"), "name")), "b");
	json_decref(list);
}

static void test_verify_rows(void)
{
	json_t *pods = yj(
		"items:\n"
		"- metadata: {name: cilium-zrxwn, creationTimestamp: '2026-01-01T00:00:00Z'}\n"
		"  spec: {nodeName: n1, containers: [{name: cilium-agent}]}\n"
		"  status: {phase: Running, containerStatuses: [{name: cilium-agent, ready: true, restartCount: 0}]}\n"
		"- metadata: {name: cilium-5rfrk, creationTimestamp: '2026-01-01T00:00:00Z'}\n"
		"  spec: {containers: [{name: cilium-agent}]}\n"
		"  status: {phase: Pending, containerStatuses: [{name: cilium-agent, ready: false, restartCount: 3,"
		" state: {waiting: {reason: CrashLoopBackOff}}}]}\n"
		"- metadata: {name: cilium-operator-1, creationTimestamp: '2025-12-31T23:00:00+08:00', deletionTimestamp: x}\n"
		"  spec: {containers: [{name: a}, {name: b}]}\n"
		"  status: {phase: Running, containerStatuses: [{ready: true, restartCount: 1}, {ready: true, restartCount: 1}]}\n");
	time_t now = verify_parse_time("2026-01-01T00:01:00Z");
	json_t *rows = verify_pod_rows(pods, now);
	check(json_array_size(rows) == 3);
	json_t *r0 = json_array_get(rows, 0);
	check_str(json_string_value(json_object_get(r0, "name")), "cilium-5rfrk");
	check_str(json_string_value(json_object_get(r0, "ready")), "0/1");
	check_str(json_string_value(json_object_get(r0, "status")), "CrashLoopBackOff");
	check(json_integer_value(json_object_get(r0, "restarts")) == 3);
	check_str(json_string_value(json_object_get(r0, "age")), "60s");
	json_t *r1 = json_array_get(rows, 1);
	check_str(json_string_value(json_object_get(r1, "status")), "Terminating");
	check_str(json_string_value(json_object_get(r1, "ready")), "2/2");
	check_str(json_string_value(json_object_get(r1, "age")), "9h");   /* 15:00Z: the +08:00 offset applied */
	check(json_integer_value(json_object_get(r1, "restarts")) == 2);
	json_t *r2 = json_array_get(rows, 2);
	check_str(json_string_value(json_object_get(r2, "status")), "Running");
	long total;
	check(verify_ready_count(rows, &total) == 1 && total == 3);
	char *t = verify_table_text(rows);
	check(!strncmp(t, "NAME                READY   STATUS             RESTARTS   AGE\n", 62));
	check(strstr(t, "cilium-zrxwn        1/1     Running            0          60s\n") != NULL);
	free(t);
	json_decref(rows), json_decref(pods);
}

/* One selector of verify_pod_selectors ("k=v" or "k in (a,b)") against a
 * label map. */
static int selector_matches(const char *sel, const json_t *labels)
{
	char key[128];
	const char *in = strstr(sel, " in (");
	if (in) {
		snprintf(key, sizeof key, "%.*s", (int)(in - sel), sel);
		const char *v = json_string_value(json_object_get(labels, key));
		if (!v)
			return 0;
		const char *p = in + 5;
		size_t vl = strlen(v);
		while (*p && *p != ')') {
			size_t n = strcspn(p, ",)");
			if (n == vl && !strncmp(p, v, n))
				return 1;
			p += n + (p[n] == ',');
		}
		return 0;
	}
	const char *eq = strchr(sel, '=');
	snprintf(key, sizeof key, "%.*s", (int)(eq - sel), sel);
	const char *v = json_string_value(json_object_get(labels, key));
	return v && !strcmp(v, eq + 1);
}

/* The pods of every workload each real chart renders (hubble relay and UI
 * on, as the seeds have them) are found by verify's selectors; 1.12's carry
 * no app.kubernetes.io/part-of (the selector verify used to rely on). */
static void test_verify_selectors_real_charts(void)
{
	const char *shared = getenv("FERRY_SHARED");
	const char *versions[] = { "1.12.0", "1.15.1", "1.18.3" };
	for (size_t k = 0; k < 3; k++) {
		char path[1024], err[512];
		snprintf(path, sizeof path, "%s/charts/cilium-%s.tgz", shared ? shared : "../shared", versions[k]);
		struct chart *ch = chart_load(path, err, sizeof err);
		if (!ch) {
			printf("# %s: %s\n", path, err);
			check(ch != NULL);
			continue;
		}
		json_t *values = yj("hubble: {enabled: true, relay: {enabled: true}, ui: {enabled: true}}\n");
		struct chart_render_opts ro = { .release_name = "cilium", .namespace_ = "kube-system" };
		struct chart_render *rd = chart_render(ch, values, &ro, err, sizeof err);
		check(rd != NULL);
		size_t i, workloads = 0, part_of = 0;
		const json_t *doc;
		json_array_foreach(rd ? chart_render_documents(rd) : NULL, i, doc) {
			const json_t *o = json_object_get(doc, "object");
			const char *kind = json_string_value(json_object_get(o, "kind"));
			if (!kind || (strcmp(kind, "DaemonSet") && strcmp(kind, "Deployment")))
				continue;
			const json_t *labels = json_object_get(json_object_get(json_object_get(
				json_object_get(o, "spec"), "template"), "metadata"), "labels");
			int found = 0;
			for (int s = 0; verify_pod_selectors[s]; s++)
				found |= selector_matches(verify_pod_selectors[s], labels);
			if (!found)
				printf("# %s: pods of %s %s not found by verify\n", versions[k], kind,
				       json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
			check(found);
			workloads++;
			part_of += json_object_get(labels, "app.kubernetes.io/part-of") != NULL;
		}
		check(workloads >= 4);   /* agent, operator, relay, UI (+ envoy) */
		if (k == 0)
			check(part_of == 0);
		else
			check(part_of == workloads);
		chart_render_free(rd);
		chart_free(ch);
		json_decref(values);
	}
}

/* Pods from both selectors: a pod matched twice counts once, terminating
 * pods (the previous revision's, after an upgrade) are left out. */
static void test_verify_collect(void)
{
	json_t *a = yj("items:\n"
		       "- metadata: {name: cilium-a}\n  status: {phase: Running}\n"
		       "- metadata: {name: cilium-old, deletionTimestamp: '2026-01-01T00:00:00Z'}\n"
		       "  status: {phase: Running}\n");
	json_t *b = yj("items:\n"
		       "- metadata: {name: cilium-operator-x}\n  status: {phase: Pending}\n"
		       "- metadata: {name: cilium-a}\n  status: {phase: Running}\n");
	json_t *out = json_array();
	check(verify_collect_pods(out, a) == 1);
	check(verify_collect_pods(out, b) == 0);
	check(json_array_size(out) == 2);
	json_t *rows = verify_pod_rows(out, time(NULL));
	long total = 0;
	verify_ready_count(rows, &total);
	check(total == 2);
	check(verify_running_count(rows) == 1);
	json_decref(rows), json_decref(out), json_decref(a), json_decref(b);
}

static void test_human_duration(void)
{
	char b[32];
	struct { long long s; const char *want; } cases[] = {
		{ -1, "<invalid>" }, { 0, "0s" }, { 119, "119s" }, { 120, "2m" }, { 150, "2m30s" },
		{ 600, "10m" }, { 3 * 3600 - 1, "179m" }, { 3 * 3600, "3h" }, { 3 * 3600 + 300, "3h5m" },
		{ 8 * 3600, "8h" }, { 47 * 3600, "47h" }, { 48 * 3600, "2d" }, { 49 * 3600, "2d1h" },
		{ 8 * 86400, "8d" }, { 800LL * 86400, "2y70d" }, { 3000LL * 86400, "8y" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		verify_human_duration(cases[i].s, b, sizeof b);
		check_str(b, cases[i].want);
	}
	check(verify_parse_time("garbage") == (time_t)-1);
	check(verify_parse_time("1970-01-02T00:00:00.5Z") == 86400);
}

int main(void)
{
	test_run("release_roundtrip", test_release_roundtrip);
	test_run("release_decode_plain_and_bad", test_release_decode_plain_and_bad);
	test_run("release_names", test_release_names);
	test_run("verify_rows", test_verify_rows);
	test_run("verify_human_duration", test_human_duration);
	test_run("verify_selectors_real_charts", test_verify_selectors_real_charts);
	test_run("verify_collect_pods", test_verify_collect);
	return test_summary();
}
