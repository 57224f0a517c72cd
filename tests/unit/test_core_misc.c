/* Unit tests of small core pieces: log lines, backoff, kube client config. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/install/runner.h"
#include "server/kube/client.h"
#include "server/kube/memo.h"
#include "server/log.h"
#include "tests/unit/testlib.h"

/* Capture what log_* writes to stderr. */
static char *capture_log(void (*fn)(void))
{
	char path[] = "/tmp/ferry-log-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	static char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	return buf;
}

static void emit(void)
{
	log_set_level(LOG_INFO);
	log_msg(LOG_DEBUG, "hidden %d", 1);
	struct log_ctx ctx = { "req-1", "job-\"2\"", NULL };
	log_ctx_msg(LOG_WARN, &ctx, "line with \"quotes\"\nand a newline\t%s", "x");
	log_msg(LOG_ERROR, "plain");
}

static void test_log_lines(void)
{
	char *out = capture_log(emit);
	char *nl = strchr(out, '\n');
	check(nl != NULL);
	if (!nl)
		return;
	*nl = 0;
	json_error_t je;
	json_t *a = json_loads(out, 0, &je);
	json_t *b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
	check(a && b);
	check_str(json_string_value(json_object_get(a, "level")), "warn");
	check_str(json_string_value(json_object_get(a, "msg")), "line with \"quotes\"\nand a newline\tx");
	check_str(json_string_value(json_object_get(a, "request_id")), "req-1");
	check_str(json_string_value(json_object_get(a, "job_id")), "job-\"2\"");
	check(json_object_get(a, "tenant") == NULL);
	const char *t = json_string_value(json_object_get(a, "time"));
	check(t && strlen(t) == 24 && t[23] == 'Z');
	check_str(json_string_value(json_object_get(b, "msg")), "plain");
	check(strstr(nl + 1, "hidden") == NULL && strstr(out, "hidden") == NULL);
	json_decref(a);
	json_decref(b);
	check(log_level_parse("debug") == LOG_DEBUG && log_level_parse("WARN") == LOG_WARN);
	check(log_level_parse("loud") == -1 && log_level_parse(NULL) == -1);
}

static void test_backoff(void)
{
	for (int i = 0; i < 200; i++) {
		long d1 = runner_backoff_ms(1000, 1), d3 = runner_backoff_ms(1000, 3);
		long big = runner_backoff_ms(1000, 40);
		check(d1 >= 500 && d1 <= 1500);
		check(d3 >= 2000 && d3 <= 6000);
		check(big >= 150000 && big <= 450000);
	}
	/* Jitter: not all the same. */
	long first = runner_backoff_ms(1000, 2);
	int differs = 0;
	for (int i = 0; i < 20; i++)
		differs |= runner_backoff_ms(1000, 2) != first;
	check(differs);
}

static void test_kube_config(void)
{
	char err[256];
	struct kube_client_config bad1 = { .server = "http://127.0.0.1:6443" };
	check(kube_client_new(&bad1, err, sizeof(err)) == NULL);
	check(strstr(err, "https://") != NULL);
	struct kube_client_config bad2 = { .server = "https://127.0.0.1:99999" };
	check(kube_client_new(&bad2, err, sizeof(err)) == NULL);
	struct kube_client_config bad3 = { .server = "https://h", .client_cert_pem = "PEM" };
	check(kube_client_new(&bad3, err, sizeof(err)) == NULL);
	check(strstr(err, "key") != NULL);
	struct kube_client_config ok = { .server = "https://[::1]:6443/prefix/", .token = "t" };
	struct kube_client *kc = kube_client_new(&ok, err, sizeof(err));
	check(kc != NULL);
	check(kube_client_requests(kc) == 0);
	/* A refused connection is a transport error, counted, without the token. */
	struct kube_client_config dead = { .server = "https://127.0.0.1:1", .token = "secret-token-x",
					   .connect_timeout_ms = 2000 };
	struct kube_client *kd = kube_client_new(&dead, err, sizeof(err));
	struct kube_response r;
	check(kube_get(kd, "/version", &r) == -1);
	check(r.status == 0 && strstr(r.error, "network error") && !strstr(r.error, "secret-token-x"));
	check(kube_client_requests(kd) == 1);
	char desc[256];
	kube_response_describe(&r, desc, sizeof(desc));
	check(strstr(desc, "GET /version") != NULL);
	kube_response_free(&r);
	kube_client_free(kd);
	kube_client_free(kc);
}

/* kube/memo: an answer recorded as text is parsed when first read, and only
 * counts when it is the object at its path. */
static void test_memo_raw(void)
{
	struct kube_memo *m = kube_memo_new();
	const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
			 "\"metadata\":{\"name\":\"cilium-config\",\"namespace\":\"kube-system\"},"
			 "\"data\":{\"a\":\"1\"}}";
	const char *path = "/api/v1/namespaces/kube-system/configmaps/cilium-config";
	kube_memo_put_raw(m, path, cm, strlen(cm));
	json_t *got = NULL;
	check(kube_memo_get(m, path, &got) == 200);
	check(json_is_object(got) &&
	      !strcmp(json_string_value(json_object_get(json_object_get(got, "data"), "a")), "1"));
	/* The caller owns its copy: changing it does not change the memo. */
	json_object_set_new(got, "data", json_null());
	json_decref(got);
	got = NULL;
	check(kube_memo_get(m, path, &got) == 200 && json_is_object(json_object_get(got, "data")));
	json_decref(got);

	/* Not the object at the path: a Status, another name, not JSON. */
	const char *status = "{\"kind\":\"Status\",\"metadata\":{\"name\":\"x\"},\"status\":\"Success\"}";
	kube_memo_put_raw(m, "/api/v1/namespaces/kube-system/configmaps/x", status, strlen(status));
	check(kube_memo_get(m, "/api/v1/namespaces/kube-system/configmaps/x", &got) == 0 && !got);
	kube_memo_put_raw(m, "/api/v1/namespaces/kube-system/configmaps/other", cm, strlen(cm));
	check(kube_memo_get(m, "/api/v1/namespaces/kube-system/configmaps/other", &got) == 0 && !got);
	kube_memo_put_raw(m, "/api/v1/namespaces/kube-system/configmaps/y", "{\"kind\":", 9);
	check(kube_memo_get(m, "/api/v1/namespaces/kube-system/configmaps/y", &got) == 0 && !got);
	/* Dropped once found wanting: only the good entry is left. */
	check(kube_memo_size(m) == 1);

	/* A write forgets it, parsed or not. */
	kube_memo_put_raw(m, path, cm, strlen(cm));
	kube_memo_forget(m, "/api/v1/namespaces/kube-system/configmaps");
	check(kube_memo_get(m, path, &got) == 0 && !got);
	kube_memo_free(m);
}

int main(void)
{
	kube_global_init();
	test_run("log_json_lines", test_log_lines);
	test_run("runner_backoff_jitter_bounds", test_backoff);
	test_run("kube_client_config_and_transport_errors", test_kube_config);
	test_run("kube_memo_raw_answers", test_memo_raw);
	kube_global_cleanup();
	return test_summary();
}
