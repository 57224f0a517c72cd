/*
 * Integration test of server/install/chartsource and db/charts: a real
 * PostgreSQL (tests/run's), and real local Helm repositories served by
 * python3's http.server over HTTP and over HTTPS (a throw-away self-signed
 * certificate made with the openssl command), holding an index.yaml
 * written here and a copy of shared/charts/cilium-1.18.3.tgz in a
 * temporary directory (never in the repository).
 *
 * Checked: the repository path (index, relative urls[0], digest check,
 * wrong archive, missing version, HTTPS with and without the CA), mirror
 * first then primary, the resolution order upload -> repository ->
 * directory with tenant isolation, the "not found anywhere" and
 * "transient" outcomes, and the upload table's idempotency / conflict
 * rules.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/charts.h"
#include "db/dbq.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/install/chartsource.h"
#include "server/kube/client.h"
#include "tests/integration/coredb.h"
#include "tests/unit/testlib.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char tmp[256], http_url[128], https_url[128], cert_path[300];
static pid_t http_pid = -1, https_pid = -1;
static PGconn *conn;
static char tenant_a[40], tenant_b[40];
static char *archive;      /* cilium-1.18.3.tgz bytes */
static size_t archive_len;
static char archive_sha[65];

static int spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, len, f);
	return fclose(f) == 0 && w == len ? 0 : -1;
}

static const char server_py[] =
	"import functools, http.server, os, ssl, sys\n"
	"d, pf = sys.argv[1], sys.argv[2]\n"
	"class H(http.server.SimpleHTTPRequestHandler):\n"
	"    def log_message(self, *a): pass\n"
	"s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(H, directory=d))\n"
	"if len(sys.argv) > 4:\n"
	"    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"    c.load_cert_chain(sys.argv[3], sys.argv[4])\n"
	"    s.socket = c.wrap_socket(s.socket, server_side=True)\n"
	"open(pf + '.tmp', 'w').write(str(s.server_address[1]))\n"
	"os.rename(pf + '.tmp', pf)\n"
	"s.serve_forever()\n";

/* Start a server for dir; its port into *port. */
static pid_t start_server(const char *dir, const char *cert, const char *key, int *port)
{
	char pf[400];
	snprintf(pf, sizeof pf, "%s/port-%s", tmp, cert ? "https" : "http");
	pid_t pid = fork();
	if (pid == 0) {
		if (cert)
			execlp("python3", "python3", "-c", server_py, dir, pf, cert, key, (char *)NULL);
		else
			execlp("python3", "python3", "-c", server_py, dir, pf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		size_t n;
		char *s = read_file_all(pf, &n);
		if (s) {
			*port = atoi(s);
			free(s);
			return pid;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

static void stop_server(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static int setup_repo(char *why, size_t whylen)
{
	const char *shared = getenv("FERRY_SHARED");
	char path[400];
	snprintf(path, sizeof path, "%s/charts/cilium-1.18.3.tgz", shared && *shared ? shared : "../shared");
	archive = read_file_all(path, &archive_len);
	if (!archive) {
		snprintf(why, whylen, "cannot read %s", path);
		return -1;
	}
	sha256_hex(archive, archive_len, archive_sha);
	snprintf(tmp, sizeof tmp, "/tmp/ferry-charts-XXXXXX");
	if (!mkdtemp(tmp)) {
		snprintf(why, whylen, "mkdtemp failed");
		return -1;
	}
	char d[400];
	snprintf(d, sizeof d, "%s/repo", tmp);
	mkdir(d, 0700);
	snprintf(d, sizeof d, "%s/repo/charts", tmp);
	mkdir(d, 0700);
	snprintf(d, sizeof d, "%s/dir", tmp);
	mkdir(d, 0700);
	snprintf(path, sizeof path, "%s/repo/charts/cilium-1.18.3.tgz", tmp);
	if (spit(path, archive, archive_len) != 0) {
		snprintf(why, whylen, "cannot write %s", path);
		return -1;
	}
	struct buf idx = BUF_INIT;
	buf_printf(&idx,
		   "apiVersion: v1\n"
		   "entries:\n"
		   "  cilium:\n"
		   "  - name: cilium\n    version: 1.18.3\n    digest: %s\n    urls:\n    - charts/cilium-1.18.3.tgz\n"
		   "  - name: cilium\n    version: 1.15.1\n    digest: \"%064d\"\n    urls:\n    - charts/cilium-1.18.3.tgz\n"
		   "  - name: cilium\n    version: 1.12.0\n    urls:\n    - /charts/cilium-1.18.3.tgz\n"
		   "  - name: cilium\n    version: 1.18.2\n    urls:\n    - charts/missing.tgz\n"
		   "generated: \"2025-10-23T18:49:00Z\"\n",
		   archive_sha, 0);
	snprintf(path, sizeof path, "%s/repo/index.yaml", tmp);
	int rc = spit(path, idx.data, idx.len);
	buf_free(&idx);
	if (rc != 0) {
		snprintf(why, whylen, "cannot write the index");
		return -1;
	}
	int port = 0;
	snprintf(d, sizeof d, "%s/repo", tmp);
	http_pid = start_server(d, NULL, NULL, &port);
	if (http_pid < 0) {
		snprintf(why, whylen, "python3 http.server did not start");
		return -1;
	}
	snprintf(http_url, sizeof http_url, "http://127.0.0.1:%d", port);
	/* HTTPS with a throw-away certificate. */
	char cmd[1200], key[300];
	snprintf(cert_path, sizeof cert_path, "%s/tls.crt", tmp);
	snprintf(key, sizeof key, "%s/tls.key", tmp);
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
		 "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
		 key, cert_path);
	if (system(cmd) == 0) {
		https_pid = start_server(d, cert_path, key, &port);
		if (https_pid > 0)
			snprintf(https_url, sizeof https_url, "https://127.0.0.1:%d/", port);
	}
	return 0;
}

static void test_repo_http(void)
{
	struct chartsource_archive a;
	char err[1024] = "";
	memset(&a, 0, sizeof a);
	int rc = chartsource_from_repo(http_url, NULL, 20000, "cilium", "1.18.3", &a, err, sizeof err);
	if (rc != 0)
		printf("  %s\n", err);
	check(rc == 0);
	check(a.len == archive_len);
	check_str(a.sha256, archive_sha);
	check_str(a.info.version, "1.18.3");
	check(strstr(a.origin, "/charts/cilium-1.18.3.tgz") != NULL);
	chartsource_archive_clear(&a);
}

static void test_repo_refusals(void)
{
	struct chartsource_archive a;
	char err[1024] = "";
	memset(&a, 0, sizeof a);
	check(chartsource_from_repo(http_url, NULL, 20000, "cilium", "9.9.9", &a, err, sizeof err) == 1);
	check(strstr(err, "no chart cilium version 9.9.9") != NULL);
	check(chartsource_from_repo(http_url, NULL, 20000, "cilium", "1.15.1", &a, err, sizeof err) == -1);
	check(strstr(err, "digest mismatch") != NULL);
	/* No digest, absolute path URL, but the archive is another version. */
	check(chartsource_from_repo(http_url, NULL, 20000, "cilium", "1.12.0", &a, err, sizeof err) == -1);
	check(strstr(err, "holds cilium 1.18.3") != NULL);
	check(chartsource_from_repo(http_url, NULL, 20000, "cilium", "1.18.2", &a, err, sizeof err) == 1);
	check(strstr(err, "404") != NULL);
	check(chartsource_from_repo(http_url, NULL, 20000, "hubble", "1.18.3", &a, err, sizeof err) == 1);
	/* Nothing listens there: transient. */
	check(chartsource_from_repo("http://127.0.0.1:1", NULL, 5000, "cilium", "1.18.3", &a, err, sizeof err) == -2);
	check(a.data == NULL);
	/* Credentials in the URL never reach a message. */
	check(chartsource_from_repo("http://user:s3cret@127.0.0.1:1/x", NULL, 5000, "cilium", "1.18.3", &a, err,
				    sizeof err) == -2);
	check(strstr(err, "s3cret") == NULL);
}

static void test_repo_https(void)
{
	struct chartsource_archive a;
	char err[1024] = "";
	memset(&a, 0, sizeof a);
	int rc = chartsource_from_repo(https_url, cert_path, 20000, "cilium", "1.18.3", &a, err, sizeof err);
	if (rc != 0)
		printf("  %s\n", err);
	check(rc == 0);
	check_str(a.sha256, archive_sha);
	chartsource_archive_clear(&a);
	/* Without the CA the certificate is not trusted. */
	check(chartsource_from_repo(https_url, NULL, 20000, "cilium", "1.18.3", &a, err, sizeof err) == -2);
	check(a.data == NULL);
}

static void test_uploads_table(void)
{
	struct db_chart_new c = { "cilium", "1.18.3", "1.18.3", archive_sha,
				  (const unsigned char *)archive, archive_len, NULL };
	json_t *out = NULL;
	int created = -1;
	char err[256];
	check(db_chart_put(conn, tenant_a, &c, &out, &created, err, sizeof err) == DB_OK);
	check(created == 1);
	check_str(json_string_value(json_object_get(out, "sha256")), archive_sha);
	check(json_integer_value(json_object_get(out, "size")) == (json_int_t)archive_len);
	char id[40];
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	/* Same bytes again: the same row, not created. */
	check(db_chart_put(conn, tenant_a, &c, &out, &created, err, sizeof err) == DB_OK);
	check(created == 0);
	check_str(json_string_value(json_object_get(out, "id")), id);
	json_decref(out);
	/* Other bytes under that version: conflict, the existing row returned. */
	struct db_chart_new other = c;
	char sha2[65];
	sha256_hex("x", 1, sha2);
	other.sha256 = sha2;
	other.archive = (const unsigned char *)"x";
	other.len = 1;
	check(db_chart_put(conn, tenant_a, &other, &out, &created, err, sizeof err) == DB_CONFLICT);
	check_str(json_string_value(json_object_get(out, "id")), id);
	json_decref(out);
	/* Tenant isolation. */
	check(db_chart_get(conn, tenant_b, id, &out, err, sizeof err) == DB_NOT_FOUND);
	check(db_chart_get(conn, tenant_a, id, &out, err, sizeof err) == DB_OK);
	json_decref(out);
	check(db_chart_list(conn, tenant_b, NULL, 10, NULL, &out, err, sizeof err) == DB_OK);
	check(json_array_size(json_object_get(out, "items")) == 0);
	json_decref(out);
	check(db_chart_list(conn, tenant_a, "cilium", 10, NULL, &out, err, sizeof err) == DB_OK);
	check(json_array_size(json_object_get(out, "items")) == 1);
	json_decref(out);
	check(db_chart_delete(conn, tenant_b, id, err, sizeof err) == DB_NOT_FOUND);
	/* The bytes come back exactly. */
	unsigned char *data = NULL;
	size_t len = 0;
	char cid[37], csha[65];
	check(db_chart_archive(conn, tenant_a, "cilium", "1.18.3", &data, &len, cid, csha, err, sizeof err) == DB_OK);
	check(len == archive_len && data && !memcmp(data, archive, len));
	check_str(cid, id);
	check_str(csha, archive_sha);
	free(data);
	check(db_chart_archive(conn, tenant_b, "cilium", "1.18.3", &data, &len, cid, csha, err, sizeof err) ==
	      DB_NOT_FOUND);
}

static void test_resolve_order(void)
{
	struct chartsource_cfg cfg = { .repo_url = http_url, .mirror_url = "http://127.0.0.1:1",
				       .charts_dir = "/nonexistent", .timeout_ms = 10000 };
	struct chartsource_archive a;
	char err[2048] = "";
	/* Tenant A uploaded it (test_uploads_table): the upload wins. */
	check(chartsource_resolve(conn, tenant_a, "cilium", "1.18.3", &cfg, &a, err, sizeof err) == 0);
	check(!strncmp(a.origin, "upload ", 7));
	check_str(a.sha256, archive_sha);
	chartsource_archive_clear(&a);
	/* Tenant B has no upload: the dead mirror is skipped, the repository serves. */
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.3", &cfg, &a, err, sizeof err) == 0);
	check(!strncmp(a.origin, "repository http://127.0.0.1:", 28));
	chartsource_archive_clear(&a);
	/* A working mirror is used first. */
	struct chartsource_cfg mcfg = cfg;
	mcfg.mirror_url = http_url;
	mcfg.repo_url = "http://127.0.0.1:1";
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.3", &mcfg, &a, err, sizeof err) == 0);
	chartsource_archive_clear(&a);
	/* No repository: the local directory. */
	char dir[300], path[400];
	snprintf(dir, sizeof dir, "%s/dir", tmp);
	snprintf(path, sizeof path, "%s/cilium-1.18.3.tgz", dir);
	spit(path, archive, archive_len);
	struct chartsource_cfg dcfg = { .charts_dir = dir };
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.3", &dcfg, &a, err, sizeof err) == 0);
	check(!strncmp(a.origin, "file ", 5));
	chartsource_archive_clear(&a);
	/* A file that holds another version is refused. */
	snprintf(path, sizeof path, "%s/cilium-1.18.9.tgz", dir);
	spit(path, archive, archive_len);
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.9", &dcfg, &a, err, sizeof err) == -1);
	check(strstr(err, "holds chart cilium 1.18.3") != NULL);
	/* Nowhere: every source says why. */
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.99.0", &cfg, &a, err, sizeof err) == -1);
	check(strstr(err, "no upload") && strstr(err, "no chart cilium version 1.99.0") && strstr(err, "mirror:") &&
	      strstr(err, "/nonexistent/cilium-1.99.0.tgz"));
	/* Only a dead repository and no file: transient, worth a retry. */
	struct chartsource_cfg tcfg = { .repo_url = "http://127.0.0.1:1", .charts_dir = "/nonexistent",
					.timeout_ms = 5000 };
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.3", &tcfg, &a, err, sizeof err) == -2);
	/* Names and versions that could escape the directory never get that far. */
	check(chartsource_resolve(conn, tenant_b, "../cilium", "1.18.3", &dcfg, &a, err, sizeof err) == -1);
	check(chartsource_resolve(conn, tenant_b, "cilium", "1.18.3/../../x", &dcfg, &a, err, sizeof err) == -1);
}

int main(void)
{
	static const char *const names[] = { "repo_http", "repo_refusals", "repo_https", "uploads_table",
					     "resolve_order" };
	char url[512], why[512] = "";
	if (coredb_create("ferry_charts_src", url, sizeof url, why, sizeof why) != 0) {
		for (size_t i = 0; i < 5; i++)
			test_skip(names[i], why);
		return test_summary();
	}
	kube_global_init();
	conn = PQconnectdb(url);
	PQsetNoticeProcessor(conn, coredb_quiet, NULL);
	if (PQstatus(conn) != CONNECTION_OK || coredb_migrate(conn, why, sizeof why) != 0 ||
	    coredb_value(conn, "INSERT INTO tenants (name) VALUES ('a') RETURNING id", tenant_a, sizeof tenant_a) ||
	    coredb_value(conn, "INSERT INTO tenants (name) VALUES ('b') RETURNING id", tenant_b, sizeof tenant_b) ||
	    setup_repo(why, sizeof why) != 0) {
		for (size_t i = 0; i < 5; i++)
			printf("FAIL: %s: setup: %s\n", names[i], why[0] ? why : PQerrorMessage(conn));
	} else {
		test_run(names[0], test_repo_http);
		test_run(names[1], test_repo_refusals);
		if (https_url[0])
			test_run(names[2], test_repo_https);
		else
			test_skip(names[2], "no openssl command or the HTTPS server did not start");
		test_run(names[3], test_uploads_table);
		test_run(names[4], test_resolve_order);
	}
	stop_server(http_pid);
	stop_server(https_pid);
	if (tmp[0]) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	free(archive);
	PQfinish(conn);
	coredb_drop(url);
	kube_global_cleanup();
	return test_summary();
}
