/*
 * test_api_helpers: the pure pieces of the API layer: JSON depth scanning
 * (strings with brackets and escapes), UUID checks, role names, pagination
 * cursors (db/dbq.h), and the Prometheus rendering of server/metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobparams.h"
#include "db/dbq.h"
#include "server/common/buf.h"
#include "server/metrics.h"
#include "tests/unit/testlib.h"

static int depth(const char *s)
{
	return api_json_depth(s, strlen(s));
}

static void test_json_depth(void)
{
	check(depth("{}") == 1);
	check(depth("42") == 0);
	check(depth("{\"a\":[1,{\"b\":[]}]}") == 4);
	check(depth("{\"a\":\"[[[[[[\"}") == 1);
	check(depth("{\"a\":\"\\\"[[[\"}") == 1);   /* escaped quote stays inside the string */
	check(depth("[[[[]]]]") == 4);
	check(depth("[[[[") == 4);                    /* unbalanced still counts */
	check(depth("[\"\\\\\",[[]]]") == 3);         /* escaped backslash ends before the quote */
}

static void test_uuid(void)
{
	check(api_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
	check(api_is_uuid("123E4567-E89B-12D3-A456-426614174000"));
	check(!api_is_uuid("123e4567e89b12d3a456426614174000"));
	check(!api_is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
	check(!api_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
	check(!api_is_uuid(""));
	check(!api_is_uuid(NULL));
}

static void test_roles(void)
{
	check(api_role_parse("admin") == API_ROLE_ADMIN);
	check(api_role_parse("operator") == API_ROLE_OPERATOR);
	check(api_role_parse("viewer") == API_ROLE_VIEWER);
	check(api_role_parse("Admin") == API_ROLE_NONE);
	check(api_role_parse(NULL) == API_ROLE_NONE);
	check(API_ROLE_ADMIN > API_ROLE_OPERATOR && API_ROLE_OPERATOR > API_ROLE_VIEWER);
	check_str(api_role_name(API_ROLE_OPERATOR), "operator");
}

static void test_cursor(void)
{
	char us[24], id[37];
	check(dbq_cursor_parse("1700000000123456.123e4567-e89b-12d3-a456-426614174000", us, id) == 0);
	check_str(us, "1700000000123456");
	check_str(id, "123e4567-e89b-12d3-a456-426614174000");
	check(dbq_cursor_parse("abc.123e4567-e89b-12d3-a456-426614174000", us, id) == -1);
	check(dbq_cursor_parse(".123e4567-e89b-12d3-a456-426614174000", us, id) == -1);
	check(dbq_cursor_parse("12.123e4567", us, id) == -1);
	check(dbq_cursor_parse("12", us, id) == -1);
	check(dbq_cursor_parse("123456789012345678901.123e4567-e89b-12d3-a456-426614174000", us, id) == -1);
	check(dbq_cursor_parse("1.123e4567-e89b-12d3-a456-42661417400'", us, id) == -1);
}

static void test_metrics(void)
{
	struct metrics *m = metrics_new();
	metrics_http_request(m, "GET", "/v1/clusters/{id}", 200, 0.003);
	metrics_http_request(m, "GET", "/v1/clusters/{id}", 200, 0.2);
	metrics_http_request(m, "GET", "/v1/clusters/{id}", 404, 0.001);
	metrics_http_request(m, "POST", "", 404, 0.001);
	metrics_http_request(m, "GET", "/evil\"\n{x}", 200, 0.001);
	metrics_set_workers(m, 4);
	metrics_worker_busy_inc(m);
	metrics_worker_busy_inc(m);
	metrics_worker_busy_dec(m);
	struct buf b = BUF_INIT;
	metrics_render(m, &b);
	const char *t = buf_cstr(&b);
	check(strstr(t, "ferry_http_requests_total{method=\"GET\",route=\"/v1/clusters/{id}\",status=\"200\"} 2\n"));
	check(strstr(t, "ferry_http_requests_total{method=\"GET\",route=\"/v1/clusters/{id}\",status=\"404\"} 1\n"));
	check(strstr(t, "route=\"unmatched\""));
	check(strstr(t, "/evil__{x}"));                       /* quote and newline neutralised */
	check(strstr(t, "ferry_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/clusters/{id}\",le=\"0.005\"} 2\n"));
	check(strstr(t, "ferry_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/clusters/{id}\",le=\"0.25\"} 3\n"));
	check(strstr(t, "ferry_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/clusters/{id}\"} 3\n"));
	check(strstr(t, "ferry_workers_busy 1\n"));
	check(strstr(t, "ferry_workers 4\n"));
	buf_free(&b);
	metrics_free(m);
	/* NULL is tolerated everywhere. */
	metrics_http_request(NULL, "GET", "/", 200, 0.1);
	metrics_worker_busy_inc(NULL);
	metrics_render(NULL, &b);
	check(b.len == 0);
	metrics_free(NULL);
}

static void test_metrics_overflow(void)
{
	struct metrics *m = metrics_new();
	char route[64];
	for (int i = 0; i < 400; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		metrics_http_request(m, "GET", route, 200, 0.01);
	}
	struct buf b = BUF_INIT;
	metrics_render(m, &b);
	check(strstr(buf_cstr(&b), "route=\"overflow\"") != NULL);
	buf_free(&b);
	metrics_free(m);
}

/* One params check: 0 = valid, else the field must be want_field. */
static void params_case(const char *kind, const char *json, const char *want_field, const char *want_text)
{
	json_t *p = json_loads(json, 0, NULL);
	char field[256] = "", msg[512] = "";
	int rc = jobparams_check(kind, p, field, sizeof field, msg, sizeof msg);
	if (!want_field) {
		if (rc != 0)
			printf("# %s %s: %s %s\n", kind, json, field, msg);
		check(rc == 0);
	} else {
		check(rc == -1);
		check_str(field, want_field);
		if (!strstr(msg, want_text))
			printf("# %s: message %s\n", json, msg);
		check(strstr(msg, want_text) != NULL);
	}
	json_decref(p);
}

static void test_jobparams(void)
{
	params_case("install", "{}", NULL, NULL);
	params_case("install", "null", NULL, NULL);
	params_case("install", "{\"chart_version\": \"1.15.1\", \"values_yaml\": [\"a: 1\\n\"], "
		    "\"set\": [\"x=1\"], \"l2\": {\"cidrs\": [\"10.1.0.0/24\"], \"node_selector\": {\"a\": \"b\"}}, "
		    "\"profile_options\": {\"pod_cidr\": \"10.0.0.0/16\", \"xdp\": true}, \"dry_run\": true}", NULL, NULL);
	params_case("install", "{\"chart_verison\": \"1.12.0\"}", "params.chart_verison",
		    "did you mean chart_version?");
	params_case("install", "{\"zzz\": 1}", "params.zzz", "unknown parameter");
	params_case("install", "{\"chart_version\": 1.12}", "params.chart_version", "must be a string");
	params_case("install", "{\"chart_version\": \"\"}", "params.chart_version", "must not be empty");
	params_case("install", "{\"wait_timeout_s\": 1.5}", "params.wait_timeout_s", "must be an integer");
	params_case("install", "{\"set\": [\"a=1\", 2]}", "params.set[1]", "must be a string");
	params_case("install", "{\"l2\": {\"cidrs\": []}}", "params.l2.cidrs", "empty list");
	params_case("install", "{\"l2\": {}}", "params.l2.cidrs", "is required");
	params_case("install", "{\"on_failure\": \"retry\"}", "params.on_failure", "one of [\"rollback\"]");
	params_case("install", "{\"profile_options\": {\"k8s_service_port\": 70000}}",
		    "params.profile_options.k8s_service_port", "at most 65535");
	params_case("install", "{\"nodepool\": {\"instance_families\": [\"S5\"], \"subnets\": [\"s\"], "
		    "\"cpu_limt\": 3}}", "params.nodepool.cpu_limt", "did you mean cpu_limit?");
	/* The test-only params of old are gone: unknown like any other. */
	params_case("install", "{\"test_sleep_ms\": 5}", "params.test_sleep_ms", "unknown parameter");
	params_case("preflight", "{\"test_fail_first\": 1}", "params.test_fail_first", "unknown parameter");
	params_case("preflight", "{\"connection_only\": true}", NULL, NULL);
	params_case("install", "{\"connection_only\": true}", "params.connection_only", "unknown parameter");
	params_case("rollback", "{\"revision\": 3, \"dry_run\": true}", NULL, NULL);
	params_case("rollback", "{\"revision\": 0}", "params.revision", "at least 1");
	params_case("uninstall", "{\"keep_history\": true, \"delete_crds\": false, \"restore_eni_agent\": true, "
		    "\"force\": true}", NULL, NULL);
	params_case("adopt", "{\"namespace\": \"cilium\", \"release_name\": \"cilium\"}", NULL, NULL);
	params_case("check", "{\"ignore\": [{\"path\": \"/data/debug\", \"kind\": \"ConfigMap\"}]}", NULL, NULL);
	params_case("repair", "{\"ignore\": [{\"kind\": \"ConfigMap\"}]}", "params.ignore[0].path", "is required");
	params_case("nope", "{}", "kind", "unknown job kind");
	check(jobparams_kind_known("repair") && !jobparams_kind_known("nope"));
	/* every schema parses and every documented param has a description */
	const char *kinds[] = { "install", "upgrade", "rollback", "uninstall", "adopt", "check", "repair",
				"preflight" };
	for (size_t i = 0; i < 8; i++) {
		json_t *sch = jobparams_schema(kinds[i]);
		const char *k;
		json_t *v;
		check(json_object_size(json_object_get(sch, "properties")) > 0);
		json_object_foreach(json_object_get(sch, "properties"), k, v)
			if (!json_is_string(json_object_get(v, "description"))) {
				printf("# %s.%s has no description\n", kinds[i], k);
				check(0);
			}
		json_decref(sch);
	}
}

int main(void)
{
	test_run("api_json_depth", test_json_depth);
	test_run("api_uuid", test_uuid);
	test_run("api_roles", test_roles);
	test_run("api_cursor_parse", test_cursor);
	test_run("metrics_render", test_metrics);
	test_run("metrics_overflow", test_metrics_overflow);
	test_run("jobparams_check", test_jobparams);
	return test_summary();
}
