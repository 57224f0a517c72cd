/*
 * Unit tests of the install2 modules: chart archive inspection (real
 * charts from shared/charts and hostile archives built here), SemVer and
 * URL helpers, the masquerade / endpoint-slice follow-ups (values, the
 * rollout-restart decision and patch, and the restart itself against a
 * kubesim cluster), the k3s L2-announcement objects, and kube/ops
 * behaviours against kubesim (429 + Retry-After, 5xx retries, deadline,
 * server-side-apply conflicts, dryRun).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/yamljson.h"
#include "server/install/chartsource.h"
#include "server/install/followups.h"
#include "server/install/l2.h"
#include "server/install/profiles.h"
#include "server/install/values.h"
#include "server/kube/client.h"
#include "server/kube/ops.h"
#include "server/kube/rollout.h"
#include "tests/kubesim/kubesim_proc.h"
#include "tests/unit/testlib.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- archive builders ---------------------------------------------------- */

static void tar_header(struct buf *b, const char *name, char type, size_t size, const char *link)
{
	unsigned char h[512];
	memset(h, 0, sizeof h);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	char octal[32];
	snprintf(octal, sizeof octal, "%011zo", size & 077777777777);
	memcpy(h + 124, octal, 12);
	memcpy(h + 136, "14000000000", 12);
	h[156] = (unsigned char)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	buf_append(b, h, 512);
}

static void tar_add(struct buf *b, const char *name, char type, const char *data, size_t len)
{
	if (strlen(name) >= 100) {
		tar_header(b, "././@LongLink", 'L', strlen(name) + 1, NULL);
		buf_append(b, name, strlen(name) + 1);
		size_t pad = (512 - (strlen(name) + 1) % 512) % 512;
		for (size_t i = 0; i < pad; i++)
			buf_putc(b, 0);
	}
	tar_header(b, name, type, len, NULL);
	buf_append(b, data, len);
	size_t pad = (512 - len % 512) % 512;
	for (size_t i = 0; i < pad; i++)
		buf_putc(b, 0);
}

static void tar_end(struct buf *b)
{
	for (int i = 0; i < 1024; i++)
		buf_putc(b, 0);
}

static void gz(const void *data, size_t len, struct buf *out)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
	size_t cap = deflateBound(&zs, (uLong)len) + 64;
	unsigned char *o = malloc(cap);
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = o;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	buf_append(out, o, cap - zs.avail_out);
	deflateEnd(&zs);
	free(o);
}

static const char chart_yaml[] = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n";

/* A demo chart archive with an extra entry (name, type, data) or none. */
static void demo_archive(struct buf *out, const char *extra, char type, const char *chartyaml)
{
	struct buf t = BUF_INIT;
	tar_add(&t, "demo/Chart.yaml", '0', chartyaml, strlen(chartyaml));
	tar_add(&t, "demo/values.yaml", '0', "a: 1\n", 5);
	tar_add(&t, "demo/templates/cm.yaml", '0', "kind: ConfigMap\n", 16);
	if (extra)
		tar_add(&t, extra, type, "x", type == '5' ? 0 : 1);
	tar_end(&t);
	gz(t.data, t.len, out);
	buf_free(&t);
}

static int inspect_fails_with(const struct buf *a, const char *needle)
{
	struct chart_inspect_info info;
	char err[512] = "";
	int rc = chart_inspect(a->data, a->len, &info, err, sizeof err);
	if (rc == 0) {
		printf("  expected failure containing \"%s\", got success\n", needle);
		return 0;
	}
	if (!strstr(err, needle)) {
		printf("  expected \"%s\" in \"%s\"\n", needle, err);
		return 0;
	}
	return 1;
}

static const char *shared_dir(void)
{
	const char *s = getenv("FERRY_SHARED");
	return s && *s ? s : "../shared";
}

/* ---- chart archives ----------------------------------------------------- */

static void test_inspect_real_charts(void)
{
	static const char *const versions[] = { "1.18.3", "1.12.0" };
	for (int i = 0; i < 2; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/charts/cilium-%s.tgz", shared_dir(), versions[i]);
		size_t len = 0;
		char *data = read_file_all(path, &len);
		check(data != NULL);
		if (!data)
			continue;
		struct chart_inspect_info info;
		char err[512] = "";
		check(chart_inspect(data, len, &info, err, sizeof err) == 0);
		if (err[0])
			printf("  %s: %s\n", path, err);
		check_str(info.name, "cilium");
		check_str(info.version, versions[i]);
		check(info.files > 50);
		check(info.unpacked > (long long)len);
		free(data);
	}
}

static void test_inspect_demo(void)
{
	struct buf a = BUF_INIT;
	demo_archive(&a, NULL, 0, chart_yaml);
	struct chart_inspect_info info;
	char err[256] = "";
	check(chart_inspect(a.data, a.len, &info, err, sizeof err) == 0);
	check_str(info.name, "demo");
	check_str(info.version, "0.1.0");
	check_str(info.app_version, "1.0");
	check_str(info.api_version, "v2");
	check(info.files == 3);
	buf_free(&a);
	/* A long (GNU 'L') name inside the chart is fine. */
	char longname[300];
	snprintf(longname, sizeof longname, "demo/templates/%0200d.yaml", 7);
	demo_archive(&a, longname, '0', chart_yaml);
	check(chart_inspect(a.data, a.len, &info, err, sizeof err) == 0);
	check(info.files == 4);
	buf_free(&a);
	/* A directory entry is fine. */
	demo_archive(&a, "demo/charts/", '5', chart_yaml);
	check(chart_inspect(a.data, a.len, &info, err, sizeof err) == 0);
	buf_free(&a);
}

/* An accepted archive is remembered by its SHA-256 (inspect.h): the same
 * bytes again give the same info, and bytes that differ in one place are
 * checked in full. */
static void test_inspect_memo(void)
{
	struct buf a = BUF_INIT;
	demo_archive(&a, NULL, 0, chart_yaml);
	struct chart_inspect_info first, again;
	char err[256] = "";
	check(chart_inspect(a.data, a.len, &first, err, sizeof err) == 0);
	for (int i = 0; i < 3; i++) {
		memset(&again, 0x55, sizeof again);
		check(chart_inspect(a.data, a.len, &again, err, sizeof err) == 0);
		check(!memcmp(&first, &again, sizeof first));
	}
	/* the accepted bytes with garbage after them */
	struct buf b = BUF_INIT;
	buf_append(&b, a.data, a.len);
	buf_puts(&b, "GARBAGE");
	check(inspect_fails_with(&b, "trailing data"));
	/* one byte of the deflate data changed: a corrupt stream or check */
	buf_reset(&b);
	buf_append(&b, a.data, a.len);
	b.data[b.len / 2] ^= 0x5a;
	check(chart_inspect(b.data, b.len, &again, err, sizeof err) == -1);
	/* and the original is still accepted */
	check(chart_inspect(a.data, a.len, &again, err, sizeof err) == 0);
	check_str(again.name, "demo");
	buf_free(&b);
	buf_free(&a);
}

static void test_inspect_hostile(void)
{
	struct buf a = BUF_INIT;
	/* Not gzip at all. */
	buf_puts(&a, "this is not an archive, just text long enough");
	check(inspect_fails_with(&a, "not a gzip stream"));
	buf_reset(&a);
	/* gzip of something that is not tar. */
	static const char junk[2048] = "hello";
	gz(junk, sizeof junk, &a);
	check(inspect_fails_with(&a, "not a tar archive"));
	buf_reset(&a);
	/* Path traversal, absolute path, links, devices, a second chart. */
	demo_archive(&a, "demo/../../etc/passwd", '0', chart_yaml);
	check(inspect_fails_with(&a, "escapes the chart directory"));
	buf_reset(&a);
	demo_archive(&a, "/etc/cron.d/evil", '0', chart_yaml);
	check(inspect_fails_with(&a, "absolute path"));
	buf_reset(&a);
	demo_archive(&a, "demo/templates/link.yaml", '2', chart_yaml);
	check(inspect_fails_with(&a, "symbolic link"));
	buf_reset(&a);
	demo_archive(&a, "demo/templates/hard.yaml", '1', chart_yaml);
	check(inspect_fails_with(&a, "hard link"));
	buf_reset(&a);
	demo_archive(&a, "demo/dev", '3', chart_yaml);
	check(inspect_fails_with(&a, "unsupported type"));
	buf_reset(&a);
	demo_archive(&a, "other/Chart.yaml", '0', chart_yaml);
	check(inspect_fails_with(&a, "outside the chart directory"));
	buf_reset(&a);
	demo_archive(&a, "demo/./x", '0', chart_yaml);
	check(inspect_fails_with(&a, "\".\" path component"));
	buf_reset(&a);
	demo_archive(&a, "demo\\..\\x", '0', chart_yaml);
	check(inspect_fails_with(&a, "backslash"));
	buf_reset(&a);
	/* Chart.yaml problems. */
	demo_archive(&a, NULL, 0, "apiVersion: v2\nname: other\nversion: 0.1.0\n");
	check(inspect_fails_with(&a, "names the chart \"other\""));
	buf_reset(&a);
	demo_archive(&a, NULL, 0, "apiVersion: v2\nname: demo\nversion: \"1.2\"\n");
	check(inspect_fails_with(&a, "SemVer"));
	buf_reset(&a);
	demo_archive(&a, NULL, 0, "apiVersion: v2\nname: demo\nversion: [1\n");
	check(inspect_fails_with(&a, "not valid YAML"));
	buf_reset(&a);
	demo_archive(&a, NULL, 0, "name: demo\nversion: 0.1.0\n");
	check(inspect_fails_with(&a, "apiVersion"));
	buf_reset(&a);
	demo_archive(&a, "demo/Chart.yaml", '0', chart_yaml);
	check(inspect_fails_with(&a, "appears twice"));
	buf_reset(&a);
	/* No Chart.yaml. */
	{
		struct buf t = BUF_INIT;
		tar_add(&t, "demo/values.yaml", '0', "a: 1\n", 5);
		tar_end(&t);
		gz(t.data, t.len, &a);
		check(inspect_fails_with(&a, "no demo/Chart.yaml"));
		buf_reset(&a);
		/* A pax header smuggling a traversal path. */
		buf_reset(&t);
		const char rec[] = "26 path=demo/../../x.yaml\n";
		tar_add(&t, "demo/Chart.yaml", '0', chart_yaml, strlen(chart_yaml));
		tar_add(&t, "PaxHeaders/x", 'x', rec, strlen(rec));
		tar_add(&t, "demo/ok.yaml", '0', "a", 1);
		tar_end(&t);
		gz(t.data, t.len, &a);
		check(inspect_fails_with(&a, "escapes the chart directory"));
		buf_reset(&a);
		/* A header whose size runs past the end: truncated tar. */
		buf_reset(&t);
		tar_add(&t, "demo/Chart.yaml", '0', chart_yaml, strlen(chart_yaml));
		tar_header(&t, "demo/big.yaml", '0', 100000, NULL);
		buf_append(&t, "abc", 3);
		gz(t.data, t.len, &a);
		check(inspect_fails_with(&a, "truncated tar"));
		buf_reset(&a);
		/* A corrupted header checksum. */
		buf_reset(&t);
		tar_add(&t, "demo/Chart.yaml", '0', chart_yaml, strlen(chart_yaml));
		tar_add(&t, "demo/x.yaml", '0', "a", 1);
		t.data[1024 + 5] ^= 0x20;
		tar_end(&t);
		gz(t.data, t.len, &a);
		check(inspect_fails_with(&a, "bad checksum"));
		buf_reset(&a);
		buf_free(&t);
	}
	/* Truncated gzip, trailing garbage. */
	demo_archive(&a, NULL, 0, chart_yaml);
	struct buf cut = BUF_INIT;
	buf_append(&cut, a.data, a.len - 10);
	check(inspect_fails_with(&cut, "truncated gzip"));
	buf_free(&cut);
	buf_puts(&a, "GARBAGE");
	check(inspect_fails_with(&a, "trailing data"));
	buf_reset(&a);
	/* A gzip bomb: 65 MiB of zeros in a ~65 KB stream. */
	size_t big = CHART_INSPECT_MAX_UNPACKED + 1024 * 1024;
	char *zeros = calloc(1, big);
	gz(zeros, big, &a);
	free(zeros);
	check(a.len < 1024 * 1024);
	check(inspect_fails_with(&a, "gzip bomb"));
	buf_free(&a);
	/* Empty input. */
	struct chart_inspect_info info;
	char err[128];
	check(chart_inspect("", 0, &info, err, sizeof err) == -1);
}

static void test_semver_name_url(void)
{
	check(chart_semver_ok("1.18.3"));
	check(chart_semver_ok("0.0.0"));
	check(chart_semver_ok("1.19.0-pre.1"));
	check(chart_semver_ok("1.2.3-rc.1+build.5"));
	check(!chart_semver_ok("1.2"));
	check(!chart_semver_ok("v1.2.3"));
	check(!chart_semver_ok("01.2.3"));
	check(!chart_semver_ok("1.2.3-01"));
	check(!chart_semver_ok("1.2.3/../../x"));
	check(!chart_semver_ok(""));
	check(chart_name_ok("cilium"));
	check(chart_name_ok("my-chart.v2"));
	check(!chart_name_ok("../cilium"));
	check(!chart_name_ok("Cilium"));
	check(!chart_name_ok("-x"));
	char *u = chartsource_join_url("https://helm.cilium.io", "cilium-1.18.3.tgz");
	check_str(u, "https://helm.cilium.io/cilium-1.18.3.tgz");
	free(u);
	u = chartsource_join_url("https://h.example/charts/", "cilium-1.18.3.tgz");
	check_str(u, "https://h.example/charts/cilium-1.18.3.tgz");
	free(u);
	u = chartsource_join_url("https://h.example/charts", "/dl/c.tgz");
	check_str(u, "https://h.example/dl/c.tgz");
	free(u);
	u = chartsource_join_url("https://h.example/charts", "http://other/c.tgz");
	check_str(u, "http://other/c.tgz");
	free(u);
	check(chartsource_join_url("https://h.example", "file:///etc/passwd") == NULL);
	check(chartsource_join_url("https://h.example", "") == NULL);
	char sha[65];
	sha256_hex("abc", 3, sha);
	check_str(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* ---- masquerade / endpoint slice ---------------------------------------- */

static json_t *yj(const char *y)
{
	return yaml_to_json(y, strlen(y), NULL, 0);
}

static void test_masquerade_values(void)
{
	json_t *p = yj("masquerade: {vpc_cidr: 10.0.0.0/16}\nendpoint_slice: true\n");
	struct profile_inputs in = { "169.254.128.7", 60002, p, "1.18.3" };
	char err[256];
	json_t *v = profile_values(PROFILE_TKE, &in, err, sizeof err);
	check(v != NULL);
	check(json_is_true(json_object_get(v, "enableIPv4Masquerade")));
	check_str(json_string_value(json_object_get(v, "ipv4NativeRoutingCIDR")), "10.0.0.0/16");
	check(json_is_true(json_object_get(json_object_get(v, "bpf"), "masquerade")));
	check(json_is_true(json_object_get(json_object_get(v, "ciliumEndpointSlice"), "enabled")));
	json_decref(v);
	json_decref(p);
	/* Without the option the guide's values stay: no masquerade. */
	p = yj("{}");
	in.params = p;
	v = profile_values(PROFILE_TKE, &in, err, sizeof err);
	check(json_is_false(json_object_get(v, "enableIPv4Masquerade")));
	check(json_object_get(v, "ipv4NativeRoutingCIDR") == NULL);
	check(json_object_get(v, "ciliumEndpointSlice") == NULL);
	json_decref(v);
	json_decref(p);
}

static void test_restart_decision(void)
{
	char now[40];
	followup_now_rfc3339(now, sizeof now);
	check(strlen(now) == 20 && now[4] == '-' && now[10] == 'T' && now[19] == 'Z');
	json_t *patch = followup_restart_patch("2025-01-02T03:04:05Z");
	json_t *want = yj("spec: {template: {metadata: {annotations: "
			  "{kubectl.kubernetes.io/restartedAt: \"2025-01-02T03:04:05Z\"}}}}\n");
	check(json_equal(patch, want));
	json_decref(patch);
	json_decref(want);

	json_t *masq = yj("masquerade: {vpc_cidr: 10.0.0.0/16}\n");
	json_t *none = yj("{}");
	json_t *changed = yj("objects: [{kind: ConfigMap, name: cilium-config, action: changed},"
			     " {kind: DaemonSet, name: cilium, action: unchanged}]\n");
	json_t *fresh = yj("objects: [{kind: ConfigMap, name: cilium-config, action: created},"
			   " {kind: DaemonSet, name: cilium, action: created}]\n");
	json_t *same = yj("objects: [{kind: ConfigMap, name: cilium-config, action: unchanged},"
			  " {kind: DaemonSet, name: cilium, action: unchanged}]\n");
	check(followup_needs_restart(masq, changed) == 1);
	check(followup_needs_restart(masq, fresh) == 0);   /* new pods read the new config */
	check(followup_needs_restart(masq, same) == 0);    /* second identical install: no-op */
	check(followup_needs_restart(none, changed) == 0); /* not asked for */
	check(followup_needs_restart(masq, NULL) == 0);
	json_t *force = yj("masquerade: {vpc_cidr: 10.0.0.0/16, restart: true}\n");
	check(followup_needs_restart(force, same) == 1);
	json_t *eps = yj("endpoint_slice: true\n");
	check(followup_needs_restart(eps, changed) == 1);
	json_decref(masq), json_decref(none), json_decref(changed), json_decref(fresh);
	json_decref(same), json_decref(force), json_decref(eps);
}

/* ---- L2 announcements --------------------------------------------------- */

static void test_l2_objects(void)
{
	char err[512] = "";
	json_t *l2 = yj("interfaces: [ens192]\n"
			"node_selector: {matchExpressions: [{key: node-role.kubernetes.io/control-plane, operator: Exists}]}\n"
			"cidrs: [192.168.20.0/24]\n");
	json_t *objs = l2_objects(l2, "1.18.3", err, sizeof err);
	check(objs != NULL);
	if (!objs) {
		printf("  %s\n", err);
		json_decref(l2);
		return;
	}
	json_t *want = yj(
		"- apiVersion: cilium.io/v2alpha1\n"
		"  kind: CiliumL2AnnouncementPolicy\n"
		"  metadata: {name: ferry-l2-policy, labels: {app.kubernetes.io/managed-by: ferry}}\n"
		"  spec:\n"
		"    nodeSelector: {matchExpressions: [{key: node-role.kubernetes.io/control-plane, operator: Exists}]}\n"
		"    interfaces: [ens192]\n"
		"    externalIPs: true\n"
		"    loadBalancerIPs: true\n"
		"- apiVersion: cilium.io/v2alpha1\n"
		"  kind: CiliumLoadBalancerIPPool\n"
		"  metadata: {name: ferry-lb-ip-pool, labels: {app.kubernetes.io/managed-by: ferry}}\n"
		"  spec: {blocks: [{cidr: 192.168.20.0/24}]}\n");
	check(json_equal(objs, want));
	json_decref(want);
	json_decref(objs);
	/* Older charts: spec.cidrs. A plain label map becomes matchLabels. */
	json_decref(l2);
	l2 = yj("node_selector: {kubernetes.io/hostname: k3s-server}\ncidrs: [10.1.0.0/28, 'fd00::/120']\n"
		"external_ips: false\npool_name: lan\n");
	objs = l2_objects(l2, "1.14.5", err, sizeof err);
	check(objs != NULL);
	const json_t *pol = json_array_get(objs, 0), *pool = json_array_get(objs, 1);
	check_str(json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(pol, "spec"),
		"nodeSelector"), "matchLabels"), "kubernetes.io/hostname")), "k3s-server");
	check(json_is_false(json_object_get(json_object_get(pol, "spec"), "externalIPs")));
	check(json_object_get(json_object_get(pol, "spec"), "interfaces") == NULL);
	check(json_array_size(json_object_get(json_object_get(pool, "spec"), "cidrs")) == 2);
	check(json_object_get(json_object_get(pool, "spec"), "blocks") == NULL);
	check_str(json_string_value(json_object_get(json_object_get(pool, "metadata"), "name")), "lan");
	json_decref(objs);
	json_decref(l2);

	/* Refusals, each naming the field. */
	static const struct {
		const char *yaml;
		const char *needle;
	} bad[] = {
		{ "interfaces: [eth0]\n", "l2.cidrs" },
		{ "cidrs: []\n", "l2.cidrs" },
		{ "cidrs: [10.0.0.0/33]\n", "l2.cidrs[0]" },
		{ "cidrs: [10.0.0.0]\n", "l2.cidrs[0]" },
		{ "cidrs: [10.0.0.0/24, banana]\n", "l2.cidrs[1]" },
		{ "cidrs: [10.0.0.0/24]\ninterfaces: eth0\n", "l2.interfaces" },
		{ "cidrs: [10.0.0.0/24]\nnode_selector: [a]\n", "l2.node_selector" },
		{ "cidrs: [10.0.0.0/24]\nnode_selector: {a: 1}\n", "l2.node_selector.a" },
		{ "cidrs: [10.0.0.0/24]\nnode_selector: {matchExpressions: [{key: a, operator: In}]}\n",
		  "matchExpressions[0]" },
		{ "cidrs: [10.0.0.0/24]\nexternal_ips: yes-please\n", "l2.external_ips" },
		{ "cidrs: [10.0.0.0/24]\npolicy_name: Bad_Name\n", "l2.policy_name" },
		{ "cidrs: [10.0.0.0/24]\nsurprise: 1\n", "l2.surprise" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *b = yj(bad[i].yaml);
		err[0] = 0;
		json_t *o = l2_objects(b, NULL, err, sizeof err);
		check(o == NULL);
		if (!strstr(err, bad[i].needle)) {
			printf("  case %zu: want \"%s\" in \"%s\"\n", i, bad[i].needle, err);
			check(0);
		}
		json_decref(o);
		json_decref(b);
	}
	check(l2_cidr_ok("fd00::/112") && l2_cidr_ok("0.0.0.0/0") && !l2_cidr_ok("1.2.3.4/08"));

	/* Profile gate and values. */
	l2 = yj("cidrs: [10.0.0.0/24]\n");
	check(l2_check_params(PROFILE_K3S, l2, err, sizeof err) == 0);
	check(l2_check_params(PROFILE_TKE, l2, err, sizeof err) == -1);
	check(strstr(err, "k3s") != NULL);
	json_t *p = json_pack("{s:O}", "l2", l2);
	struct profile_inputs in = { NULL, 0, p, "1.18.3" };
	json_t *v = profile_values(PROFILE_K3S, &in, err, sizeof err);
	check(json_is_true(json_object_get(json_object_get(v, "l2announcements"), "enabled")));
	json_decref(v);
	json_decref(p);
	json_decref(l2);

	/* CRD readiness. */
	json_t *crd = yj("spec: {versions: [{name: v2alpha1, served: true}, {name: v2, served: true}]}\n"
			 "status: {conditions: [{type: NamesAccepted, status: 'True'}, {type: Established, status: 'True'}]}\n");
	check(l2_crd_ready(crd, "v2alpha1") == 1);
	check(l2_crd_ready(crd, "v1") == -1);
	json_decref(crd);
	crd = yj("spec: {versions: [{name: v2alpha1, served: true}]}\n"
		 "status: {conditions: [{type: Established, status: 'False'}]}\n");
	check(l2_crd_ready(crd, "v2alpha1") == 0);
	json_decref(crd);
}

/* ---- against kubesim ---------------------------------------------------- */

static struct kubesim_proc *ks;
static struct kube_client *kc;

static void faults(const char *json)
{
	long st = 0;
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/c1/faults", json, &st, NULL);
	check(st == 200);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kube_ops *new_ops(long deadline_ms, int max_attempts)
{
	struct kube_ops_opts o = { .deadline_ms = deadline_ms, .max_attempts = max_attempts,
				   .backoff_base_ms = 20, .backoff_max_ms = 200 };
	return kube_ops_new(kc, &o);
}

static void test_ops_retry_after(void)
{
	struct kube_ops *ops = new_ops(20000, 5);
	faults("{\"fail_next\": 1, \"error_codes\": [429], \"retry_after_s\": 1, \"verbs\": [\"get\"]}");
	json_t *out = NULL;
	double t0 = now_s();
	int st = kube_ops_get(ops, "/api/v1/namespaces/default", &out);
	double dt = now_s() - t0;
	check(st == 200);
	check(out != NULL);
	check(kube_ops_retries(ops) == 1);
	check(dt >= 0.9);        /* waited what Retry-After said, not the 20 ms backoff */
	check(dt < 5.0);
	json_decref(out);
	faults("{}");
	kube_ops_free(ops);
}

static void test_ops_5xx(void)
{
	struct kube_ops *ops = new_ops(20000, 5);
	faults("{\"fail_next\": 2, \"error_codes\": [500, 503], \"retry_after_s\": 0, \"verbs\": [\"get\"]}");
	json_t *out = NULL;
	check(kube_ops_get(ops, "/api/v1/namespaces/default", &out) == 200);
	check(kube_ops_retries(ops) == 2);
	json_decref(out);
	out = NULL;
	/* More failures than attempts: the last status comes back, with a message. */
	faults("{\"fail_next\": 10, \"error_codes\": [503], \"retry_after_s\": 0, \"verbs\": [\"get\"]}");
	int st = kube_ops_get(ops, "/api/v1/namespaces/default", &out);
	check(st == 503);
	check(strstr(kube_ops_error(ops), "503") != NULL);
	check(kube_ops_retries(ops) == 2 + 4);
	json_decref(out);
	out = NULL;
	faults("{}");
	/* A 404 is an answer, not retried. */
	long before = kube_ops_retries(ops);
	check(kube_ops_get(ops, "/api/v1/namespaces/default/configmaps/nope", &out) == 404);
	check(kube_ops_retries(ops) == before);
	kube_ops_free(ops);
}

static void test_ops_deadline(void)
{
	struct kube_ops *ops = new_ops(600, 10);
	/* Retry-After 3 s would pass the 600 ms deadline: give up at once. */
	faults("{\"fail_next\": 5, \"error_codes\": [503], \"retry_after_s\": 3, \"verbs\": [\"get\"]}");
	json_t *out = NULL;
	double t0 = now_s();
	int st = kube_ops_get(ops, "/api/v1/namespaces/default", &out);
	double dt = now_s() - t0;
	check(st == 503);
	check(dt < 1.5);
	json_decref(out);
	/* Backoff retries stop at the deadline too. */
	faults("{\"fail_next\": 1000, \"error_codes\": [500], \"retry_after_s\": 0, \"latency_ms\": 150, \"verbs\": [\"get\"]}");
	out = NULL;
	t0 = now_s();
	st = kube_ops_get(ops, "/api/v1/namespaces/default", &out);
	dt = now_s() - t0;
	check(st == 500);
	check(dt < 2.0);
	check(kube_ops_retries(ops) < 9);
	json_decref(out);
	faults("{}");
	kube_ops_free(ops);
}

static void test_ops_apply_conflict(void)
{
	struct kube_ops *ops = new_ops(20000, 3);
	/* Another manager owns data.a. */
	const char *other = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"owned\","
			    "\"namespace\":\"default\"},\"data\":{\"a\":\"1\"}}";
	struct kube_response resp;
	int st = kube_ops_request(ops, "PATCH", "/api/v1/namespaces/default/configmaps/owned?fieldManager=other-tool",
				  "application/apply-patch+yaml", other, strlen(other), &resp);
	check(st == 201 || st == 200);
	kube_response_free(&resp);
	json_t *mine = yj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned, namespace: default}\n"
			  "data: {a: '2', b: '3'}\n");
	json_t *conflicts = NULL, *out = NULL;
	st = kube_ops_apply(ops, "/api/v1/namespaces/default/configmaps/owned", mine, 0, &out, &conflicts);
	check(st == 409);
	check(json_array_size(conflicts) >= 1);
	const json_t *c0 = json_array_get(conflicts, 0);
	const char *field = json_string_value(json_object_get(c0, "field"));
	check(field && strstr(field, "data") && strstr(field, "a"));
	const char *mgr = json_string_value(json_object_get(c0, "manager"));
	if (!mgr || strcmp(mgr, "other-tool")) {
		char *d = json_dumps(conflicts, 0);
		printf("  conflicts: %s\n", d);
		free(d);
	}
	check(mgr && !strcmp(mgr, "other-tool"));
	check(strstr(kube_ops_error(ops), "conflict") != NULL);
	json_decref(conflicts);
	json_decref(out);
	conflicts = out = NULL;
	/* force takes the field over. */
	st = kube_ops_apply(ops, "/api/v1/namespaces/default/configmaps/owned", mine, 1, &out, &conflicts);
	check(st == 200);
	check_str(json_string_value(json_object_get(json_object_get(out, "data"), "a")), "2");
	json_decref(out);
	json_decref(conflicts);
	json_decref(mine);
	kube_ops_free(ops);
}

static void test_ops_dry_run(void)
{
	struct kube_ops *ops = new_ops(20000, 3);
	kube_ops_set_dry_run(ops, 1);
	check(kube_ops_dry_run(ops) == 1);
	json_t *cm = yj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost, namespace: default}\ndata: {a: '1'}\n");
	json_t *out = NULL;
	check(kube_ops_create(ops, "/api/v1/namespaces/default/configmaps", cm, &out) == 201);
	check(out != NULL);
	json_decref(out);
	out = NULL;
	json_t *conf = NULL;
	json_t *cm2 = yj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost2, namespace: default}\n");
	check(kube_ops_apply(ops, "/api/v1/namespaces/default/configmaps/ghost2", cm2, 1, &out, &conf) / 100 == 2);
	json_decref(cm2);
	json_decref(out), json_decref(conf);
	out = NULL;
	/* Reads are not affected, and nothing was stored. */
	check(kube_ops_get(ops, "/api/v1/namespaces/default/configmaps/ghost", &out) == 404);
	check(kube_ops_get(ops, "/api/v1/namespaces/default/configmaps/ghost2", &out) == 404);
	kube_ops_set_dry_run(ops, 0);
	check(kube_ops_create(ops, "/api/v1/namespaces/default/configmaps", cm, &out) == 201);
	json_decref(out);
	out = NULL;
	check(kube_ops_get(ops, "/api/v1/namespaces/default/configmaps/ghost", &out) == 200);
	json_decref(out);
	json_decref(cm);
	kube_ops_free(ops);
}

/* Wait until the DaemonSet at path is rolled out; 1 = done. */
static int wait_ds(struct kube_ops *ops, const char *path, double timeout_s)
{
	double end = now_s() + timeout_s;
	while (now_s() < end) {
		json_t *ds = NULL;
		if (kube_ops_get(ops, path, &ds) == 200 &&
		    rollout_daemonset_status(ds, NULL, 0) == ROLLOUT_DONE) {
			json_decref(ds);
			return 1;
		}
		json_decref(ds);
		usleep(50000);
	}
	return 0;
}

/* Sorted-insensitive set of pod uids of the DaemonSet (label k8s-app=cilium). */
static json_t *pod_uids(struct kube_ops *ops)
{
	json_t *pods = NULL, *uids = json_object();
	kube_ops_list(ops, "/api/v1/namespaces/kube-system/pods", "k8s-app=cilium", NULL, 0, &pods);
	size_t i;
	const json_t *p;
	json_array_foreach(pods, i, p) {
		const char *uid = json_string_value(json_object_get(json_object_get(p, "metadata"), "uid"));
		if (uid)
			json_object_set_new(uids, uid, json_true());
	}
	json_decref(pods);
	return uids;
}

static void test_rollout_restart(void)
{
	struct kube_ops *ops = new_ops(20000, 3);
	const char *path = "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium";
	json_t *ds = yj("apiVersion: apps/v1\nkind: DaemonSet\n"
			"metadata: {name: cilium, namespace: kube-system}\n"
			"spec:\n"
			"  selector: {matchLabels: {k8s-app: cilium}}\n"
			"  template:\n"
			"    metadata: {labels: {k8s-app: cilium}}\n"
			"    spec:\n"
			"      tolerations: [{operator: Exists}]\n"
			"      containers: [{name: cilium-agent, image: quay.io/cilium/cilium:v1.18.3}]\n");
	json_t *out = NULL, *conf = NULL;
	check(kube_ops_apply(ops, path, ds, 1, &out, &conf) / 100 == 2);
	long gen0 = (long)json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation"));
	json_decref(out), json_decref(conf);
	out = NULL;
	check(wait_ds(ops, path, 20));
	json_t *before = pod_uids(ops);
	check(json_object_size(before) == 3);

	char now[40];
	followup_now_rfc3339(now, sizeof now);
	check(followup_rollout_restart(ops, path, now) == 200);
	check(kube_ops_get(ops, path, &out) == 200);
	long gen1 = (long)json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation"));
	check(gen1 == gen0 + 1);
	const char *ann = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(out, "spec"), "template"), "metadata"), "annotations"), FOLLOWUP_RESTARTED_AT));
	check(ann && !strcmp(ann, now));
	json_decref(out);
	check(wait_ds(ops, path, 20));
	json_t *after = pod_uids(ops);
	check(json_object_size(after) == 3);
	const char *uid;
	json_t *v;
	json_object_foreach(after, uid, v)
		check(json_object_get(before, uid) == NULL);   /* every pod is new */
	json_decref(before), json_decref(after), json_decref(ds);
	kube_ops_free(ops);
}

/* A user's values file is read as Helm reads it: numbers are float64 and
 * YAML 1.1 booleans (yes/no) are booleans; --set integers stay int64. */
static void test_user_values_typing(void)
{
	json_t *params = json_pack("{s:[s], s:[s]}", "values_yaml",
				   "operator:\n  replicas: 2\nhubble:\n  enabled: no\n",
				   "set", "bpf.mapDynamicSizeRatio=3");
	struct install_values_in in = { .profile = PROFILE_TKE, .params = params,
					.k8s_service_host = "169.254.0.1", .k8s_service_port = 60002,
					.chart_version = "1.18.3" };
	char err[256] = "";
	json_t *v = install_values_build(&in, err, sizeof err);
	check(v != NULL);
	if (v) {
		json_t *replicas = json_object_get(json_object_get(v, "operator"), "replicas");
		check(json_is_real(replicas) && json_real_value(replicas) == 2.0);
		check(json_is_false(json_object_get(json_object_get(v, "hubble"), "enabled")));
		json_t *ratio = json_object_get(json_object_get(v, "bpf"), "mapDynamicSizeRatio");
		check(json_is_integer(ratio) && json_integer_value(ratio) == 3);
	}
	json_decref(v);
	json_decref(params);
}

int main(void)
{
	test_run("user_values_typing", test_user_values_typing);
	test_run("inspect_real_charts", test_inspect_real_charts);
	test_run("inspect_demo_chart", test_inspect_demo);
	test_run("inspect_hostile_archives", test_inspect_hostile);
	test_run("inspect_memo", test_inspect_memo);
	test_run("semver_name_url", test_semver_name_url);
	test_run("masquerade_values", test_masquerade_values);
	test_run("restart_decision", test_restart_decision);
	test_run("l2_objects", test_l2_objects);

	static const char *const kube_tests[] = { "ops_retry_after_429", "ops_5xx_retries", "ops_deadline",
						  "ops_apply_conflict", "ops_dry_run", "rollout_restart" };
	char err[512] = "";
	kube_global_init();
	ks = kubesim_proc_start(&(struct kubesim_opts){ .clusters = 1, .scenario = "generic",
							 .ready_delay_ms = 50, .tick_ms = 20 },
				err, sizeof err);
	if (!ks) {
		for (size_t i = 0; i < sizeof kube_tests / sizeof kube_tests[0]; i++)
			test_skip(kube_tests[i], err[0] ? err : "kubesim not available");
		kube_global_cleanup();
		return test_summary();
	}
	char *server = kubesim_proc_server_url(ks, "c1");
	char *token = kubesim_proc_read(ks, "c1", "token");
	char *ca = kubesim_proc_read(ks, "", "ca.crt");
	size_t clen = 0;
	if (!ca)
		ca = read_file_all(ks->ca_path, &clen);
	if (token)
		token[strcspn(token, "\r\n")] = 0;
	struct kube_client_config cfg = { .server = server, .ca_pem = ca, .token = token,
					  .timeout_ms = 10000 };
	kc = kube_client_new(&cfg, err, sizeof err);
	if (!kc) {
		for (size_t i = 0; i < sizeof kube_tests / sizeof kube_tests[0]; i++)
			printf("FAIL: %s: kube client: %s\n", kube_tests[i], err);
	} else {
		test_run(kube_tests[0], test_ops_retry_after);
		test_run(kube_tests[1], test_ops_5xx);
		test_run(kube_tests[2], test_ops_deadline);
		test_run(kube_tests[3], test_ops_apply_conflict);
		test_run(kube_tests[4], test_ops_dry_run);
		test_run(kube_tests[5], test_rollout_restart);
		kube_client_free(kc);
	}
	free(server), free(token), free(ca);
	kubesim_proc_stop(ks);
	kube_global_cleanup();
	return test_summary();
}
