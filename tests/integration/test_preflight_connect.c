/*
 * Integration test of the preflight connection step through the real job
 * runner: a job is enqueued and claimed in a real PostgreSQL, the runner
 * decrypts the cluster's sealed credentials and talks HTTPS (libcurl, TLS
 * verified) to a real server:
 *  - a small HTTPS API server this test starts (libmicrohttpd with TLS,
 *    certificates made with the openssl command): version + paginated node
 *    list under a URL path prefix, bearer-token auth, a certificate issued
 *    for a DNS name only (so tls_server_name matters);
 *  - kubesim, when it is built: bearer token and client certificate.
 * Checks: version/node count stored on the cluster and in the job result,
 * API calls counted per phase, clear failures for bad tokens (401), wrong
 * CA and wrong server name (TLS), unreachable servers (retried, then
 * failed); with kubesim, connection reuse (kube/conncache.h): a job's
 * requests share one connection, the next job of the cluster reuses it,
 * and a changed CA bundle or credential reaches the very next job.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/jobs.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/install/runner.h"
#include "server/kube/client.h"
#include "server/kube/conncache.h"
#include "tests/integration/coredb.h"
#include "tests/unit/testlib.h"

#define KEY "k1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define GOOD_TOKEN "good-token-123"

static char url[512], tmpdir[64];
static PGconn *conn;
static struct app app;
static char tenant[DB_ID_LEN];
static char *ca_pem, *other_ca_pem, *srv_cert, *srv_key;
static int port;
static int cluster_seq;


/* ---- the test's own HTTPS API server ----------------------------------- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *u,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **state)
{
	const char *body;
	unsigned code = 200;
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *prefix = "/prefix/c1";
	if (!auth || strcmp(auth, "Bearer " GOOD_TOKEN) != 0) {
		code = 401;
		body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}";
	} else if (strncmp(u, prefix, strlen(prefix)) != 0) {
		code = 404;
		body = "{\"kind\":\"Status\",\"message\":\"no such path\",\"reason\":\"NotFound\",\"code\":404}";
	} else if (!strcmp(u + strlen(prefix), "/version")) {
		body = "{\"major\":\"1\",\"minor\":\"31\",\"gitVersion\":\"v1.31.4-test\"}";
	} else if (!strcmp(u + strlen(prefix), "/api/v1/nodes")) {
		const char *cont = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "continue");
		if (!cont)
			body = "{\"kind\":\"NodeList\",\"metadata\":{\"continue\":\"page/2+x\"},\"items\":[{\"metadata\":{\"name\":\"n1\"}},{\"metadata\":{\"name\":\"n2\"}}]}";
		else if (!strcmp(cont, "page/2+x"))
			body = "{\"kind\":\"NodeList\",\"metadata\":{},\"items\":[{\"metadata\":{\"name\":\"n3\"}}]}";
		else {
			code = 410;
			body = "{\"kind\":\"Status\",\"message\":\"bad continue\",\"reason\":\"Expired\",\"code\":410}";
		}
	} else {
		code = 404;
		body = "{\"kind\":\"Status\",\"message\":\"not found\",\"reason\":\"NotFound\",\"code\":404}";
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

static struct MHD_Daemon *start_server(char *why, size_t whylen)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=other-ca 2>/dev/null && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=apiserver 2>/dev/null && "
		 "printf 'subjectAltName=DNS:apiserver.internal\\n' > ext && "
		 "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext 2>/dev/null",
		 tmpdir);
	if (sh(cmd) != 0) {
		snprintf(why, whylen, "openssl could not make test certificates");
		return NULL;
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/ca.crt", tmpdir);
	ca_pem = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/other.crt", tmpdir);
	other_ca_pem = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/srv.crt", tmpdir);
	srv_cert = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/srv.key", tmpdir);
	srv_key = read_file_all(p, NULL);
	if (!ca_pem || !srv_cert || !srv_key) {
		snprintf(why, whylen, "test certificates missing");
		return NULL;
	}
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
		answer, NULL,
		MHD_OPTION_SOCK_ADDR, NULL,
		MHD_OPTION_HTTPS_MEM_KEY, srv_key, MHD_OPTION_HTTPS_MEM_CERT, srv_cert, MHD_OPTION_END);
	if (!d) {
		snprintf(why, whylen, "libmicrohttpd could not start an HTTPS server (TLS support?)");
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : 0;
	return d;
}

/* ---- helpers ---------------------------------------------------------- */

/* Insert a cluster with sealed credentials; returns its id in out. */
static void add_cluster(const char *server, const char *ca, const char *tls_name, json_t *cred,
			char out[DB_ID_LEN])
{
	char *plain = json_dumps(cred, JSON_COMPACT);
	char *sealed = crypto_seal(app.keys, plain, strlen(plain));
	char name[32];
	snprintf(name, sizeof(name), "c%d", ++cluster_seq);
	const char *kind = json_object_get(cred, "token") ? "token" : "client-certificate";
	const char *p[7] = { tenant, name, server, ca, tls_name, sealed, kind };
	PGresult *r = PQexecParams(conn,
		"INSERT INTO clusters (tenant_id, name, profile, api_server, ca_bundle, tls_server_name, "
		"credentials, credentials_key_id, auth_kind) VALUES ($1, $2, 'generic', $3, $4, $5, $6, 'k1', $7) RETURNING id",
		7, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		snprintf(out, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "insert cluster: %s", PQerrorMessage(conn));
	PQclear(r);
	free(plain);
	free(sealed);
	json_decref(cred);
}

/* Enqueue a preflight job on the cluster and run it (once, or until it is
 * no longer deferred when retries happen); returns the job JSON. */
static json_t *run_preflight_existing(const char *id)
{
	char err[512];
	for (int round = 0; round < 10; round++) {
		char sql[200];
		snprintf(sql, sizeof(sql), "UPDATE jobs SET run_after = now() WHERE id = '%s' AND state = 'queued'", id);
		coredb_value(conn, sql, NULL, 0);
		struct db_job_claim job;
		if (db_job_claim(conn, "test", 30, &job, err, sizeof(err)) != 1)
			break;
		struct runner_flags flags;
		atomic_init(&flags.lease_lost, 0);
		atomic_init(&flags.cancel_requested, 0);
		runner_run_job(&app, conn, &job, &flags);
		db_job_claim_clear(&job);
		json_t *j = db_job_get_json(conn, tenant, id, err, sizeof(err));
		const char *state = json_string_value(json_object_get(j, "state"));
		if (state && strcmp(state, "queued") != 0)
			return j;
		json_decref(j);
	}
	return db_job_get_json(conn, tenant, id, err, sizeof(err));
}

static json_t *run_preflight(const char *cluster_id)
{
	char id[DB_ID_LEN], active[DB_ID_LEN], err[512];
	/* This file tests the connection step: run only that. */
	json_t *params = json_pack("{s:b}", "connection_only", 1);
	struct db_job_new req = { tenant, cluster_id, "preflight", params, NULL, NULL };
	int rc = db_job_enqueue(conn, &req, id, active, err, sizeof(err));
	json_decref(params);
	if (rc != DB_JOB_CREATED)
		return NULL;
	return run_preflight_existing(id);
}

static const char *jstr(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static json_t *phase1(json_t *job)
{
	return json_array_get(json_object_get(job, "phases"), 0);
}

static char server_url[256];

static void test_token_ok(void)
{
	char cid[DB_ID_LEN];
	add_cluster(server_url, ca_pem, "apiserver.internal", json_pack("{s:s}", "token", GOOD_TOKEN), cid);
	json_t *job = run_preflight(cid);
	check(job != NULL);
	check_str(jstr(job, "state"), "succeeded");
	json_t *res = json_object_get(job, "result");
	check_str(jstr(res, "kube_version"), "v1.31.4-test");
	check(json_integer_value(json_object_get(res, "node_count")) == 3);
	json_t *ph = phase1(job);
	check_str(jstr(ph, "name"), "preflight");
	check(json_integer_value(json_object_get(ph, "api_calls")) == 3);  /* version + 2 node pages */
	check_str(jstr(ph, "message"), "Kubernetes v1.31.4-test, 3 nodes");
	char sql[256], v[64] = "";
	snprintf(sql, sizeof(sql), "SELECT kube_version || '/' || node_count || '/' || (last_contact_at IS NOT NULL) FROM clusters WHERE id = '%s'", cid);
	coredb_value(conn, sql, v, sizeof(v));
	check_str(v, "v1.31.4-test/3/true");
	json_decref(job);
}

static void expect_failure(json_t *cred, const char *ca, const char *tls_name, const char *server,
			   const char *want, int want_attempts)
{
	char cid[DB_ID_LEN];
	add_cluster(server, ca, tls_name, cred, cid);
	json_t *job = run_preflight(cid);
	check(job != NULL);
	check_str(jstr(job, "state"), "failed");
	const char *error = jstr(job, "error");
	if (!error || !strstr(error, want)) {
		char msg[700];
		snprintf(msg, sizeof(msg), "error \"%s\" should contain \"%s\"", error ? error : "(null)", want);
		testlib_fail(__FILE__, __LINE__, msg);
	}
	check(error && !strstr(error, GOOD_TOKEN) && !strstr(error, "wrong-token"));
	check(json_integer_value(json_object_get(phase1(job), "attempts")) == want_attempts);
	json_decref(job);
}

/* Set a cluster's CA bundle, or its sealed credentials (cred non-NULL, a
 * reference taken), as re-registering it would. */
static void update_cluster(const char *cid, const char *ca, json_t *cred)
{
	char *plain = cred ? json_dumps(cred, JSON_COMPACT) : NULL;
	char *sealed = plain ? crypto_seal(app.keys, plain, strlen(plain)) : NULL;
	const char *p[2] = { cid, cred ? sealed : ca };
	PGresult *r = PQexecParams(conn, cred ? "UPDATE clusters SET credentials = $2 WHERE id = $1::uuid"
					      : "UPDATE clusters SET ca_bundle = $2 WHERE id = $1::uuid",
				   2, NULL, p, NULL, NULL, 0);
	check(PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdTuples(r), "1"));
	PQclear(r);
	free(plain);
	free(sealed);
	json_decref(cred);
}

static void test_bad_token(void)
{
	expect_failure(json_pack("{s:s}", "token", "wrong-token"), ca_pem, "apiserver.internal", server_url,
		       "refused the stored credentials", 1);
}

static void test_wrong_ca(void)
{
	expect_failure(json_pack("{s:s}", "token", GOOD_TOKEN), other_ca_pem, "apiserver.internal", server_url,
		       "TLS error", 1);
}

static void test_wrong_server_name(void)
{
	/* The certificate names apiserver.internal only, not 127.0.0.1. */
	expect_failure(json_pack("{s:s}", "token", GOOD_TOKEN), ca_pem, NULL, server_url, "TLS error", 1);
}

static void test_unreachable_retried(void)
{
	/* A port nobody listens on: retried (max 2 attempts here), then failed. */
	expect_failure(json_pack("{s:s}", "token", GOOD_TOKEN), ca_pem, NULL, "https://127.0.0.1:1/x",
		       "cannot reach the API server", 2);
}

/* ---- kubesim (when built) ------------------------------------------------ */

static pid_t kubesim_pid;
static char ks_dir[300];

static int start_kubesim(char *why, size_t whylen)
{
	const char *build = getenv("FERRY_BUILD");
	char bin[512];
	snprintf(bin, sizeof(bin), "%s/tests/kubesim/kubesim", build ? build : ".");
	if (access(bin, X_OK) != 0) {
		snprintf(why, whylen, "kubesim is not built (%.300s)", bin);
		return -1;
	}
	snprintf(ks_dir, sizeof(ks_dir), "%s/kubesim", tmpdir);
	kubesim_pid = fork();
	if (kubesim_pid == 0) {
		freopen("/dev/null", "w", stdout);
		execl(bin, bin, "--dir", ks_dir, "--cluster", "k1=tke-with-nodes", "--quiet", (char *)NULL);
		_exit(127);
	}
	char js[400];
	snprintf(js, sizeof(js), "%s/kubesim.json", ks_dir);
	for (int i = 0; i < 200; i++) {
		if (access(js, R_OK) == 0)
			return 0;
		struct timespec ts = { 0, 50000000L };
		nanosleep(&ts, NULL);
	}
	snprintf(why, whylen, "kubesim did not write %s", js);
	return -1;
}

static void test_kubesim(void)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/kubesim.json", ks_dir);
	char *js = read_file_all(p, NULL);
	json_t *j = json_loads(js ? js : "", 0, NULL);
	const char *server = jstr(json_array_get(json_object_get(j, "clusters"), 0), "server");
	snprintf(p, sizeof(p), "%s/ca.crt", ks_dir);
	char *ca = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/k1/token", ks_dir);
	char *token = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/k1/client.crt", ks_dir);
	char *crt = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/k1/client.key", ks_dir);
	char *key = read_file_all(p, NULL);
	check(server && ca && token && crt && key);
	if (server && ca && token && crt && key) {
		token[strcspn(token, "\r\n")] = 0;
		char cid[DB_ID_LEN];
		add_cluster(server, ca, NULL, json_pack("{s:s}", "token", token), cid);
		json_t *job = run_preflight(cid);
		check_str(jstr(job, "state"), "succeeded");
		const char *v = jstr(json_object_get(job, "result"), "kube_version");
		check(v && !strncmp(v, "v1.32.2", 7));
		check(json_integer_value(json_object_get(json_object_get(job, "result"), "node_count")) == 3);
		json_decref(job);
		add_cluster(server, ca, NULL, json_pack("{s:s, s:s}", "client_cert", crt, "client_key", key), cid);
		job = run_preflight(cid);
		check_str(jstr(job, "state"), "succeeded");
		json_decref(job);
		add_cluster(server, ca, NULL, json_pack("{s:s}", "token", "not-the-token"), cid);
		job = run_preflight(cid);
		check_str(jstr(job, "state"), "failed");
		check(jstr(job, "error") && strstr(jstr(job, "error"), "HTTP 401"));
		json_decref(job);
	}
	json_decref(j);
	free(js);
	free(ca);
	free(token);
	free(crt);
	free(key);
}

/* A 503 with Retry-After from kubesim: the phase is retried no sooner than
 * the server asked, then succeeds. */
static void test_kubesim_retry_after(void)
{
	char p[512], err[512];
	snprintf(p, sizeof(p), "%s/kubesim.json", ks_dir);
	char *js = read_file_all(p, NULL);
	json_t *j = json_loads(js ? js : "", 0, NULL);
	snprintf(p, sizeof(p), "%s/ca.crt", ks_dir);
	char *ca = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/k1/token", ks_dir);
	char *token = read_file_all(p, NULL);
	const char *server = jstr(json_array_get(json_object_get(j, "clusters"), 0), "server");
	check(server && ca && token && jstr(j, "admin_token"));
	if (!(server && ca && token && jstr(j, "admin_token")))
		goto out;
	token[strcspn(token, "\r\n")] = 0;
	char base[128];
	snprintf(base, sizeof(base), "https://127.0.0.1:%d", (int)json_integer_value(json_object_get(j, "port")));
	struct kube_client_config cfg = { .server = base, .ca_pem = ca, .token = jstr(j, "admin_token") };
	struct kube_client *admin = kube_client_new(&cfg, err, sizeof(err));
	struct kube_response resp;
	json_t *faults = json_pack("{s:i, s:[i], s:i}", "fail_next", 1, "error_codes", 503, "retry_after_s", 3);
	check(kube_put_json(admin, "/_sim/clusters/k1/faults", faults, &resp) == 0 && resp.status == 200);
	kube_response_free(&resp);
	json_decref(faults);
	kube_client_free(admin);

	char cid[DB_ID_LEN], id[DB_ID_LEN], active[DB_ID_LEN];
	add_cluster(server, ca, NULL, json_pack("{s:s}", "token", token), cid);
	json_t *params = json_pack("{s:b}", "connection_only", 1);
	struct db_job_new req = { tenant, cid, "preflight", params, NULL, NULL };
	check(db_job_enqueue(conn, &req, id, active, err, sizeof(err)) == DB_JOB_CREATED);
	json_decref(params);
	struct db_job_claim job;
	check(db_job_claim(conn, "test", 30, &job, err, sizeof(err)) == 1);
	struct runner_flags flags;
	atomic_init(&flags.lease_lost, 0);
	atomic_init(&flags.cancel_requested, 0);
	runner_run_job(&app, conn, &job, &flags);
	db_job_claim_clear(&job);
	char sql[256], v[64] = "";
	snprintf(sql, sizeof(sql), "SELECT state || '/' || (run_after > now() + interval '2 seconds') FROM jobs WHERE id = '%s'", id);
	coredb_value(conn, sql, v, sizeof(v));
	check_str(v, "queued/true");
	json_t *job_json = run_preflight_existing(id);
	check_str(jstr(job_json, "state"), "succeeded");
	check(json_integer_value(json_object_get(phase1(job_json), "attempts")) == 2);
	json_decref(job_json);
out:
	json_decref(j);
	free(js);
	free(ca);
	free(token);
}

static long cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* kubesim's count of TLS connections for cluster k1 (stats.connections). */
static long k1_connections(const char *admin_token, const char *base, const char *ca)
{
	char err[256];
	struct kube_client_config cfg = { .server = base, .ca_pem = ca, .token = admin_token };
	struct kube_client *admin = kube_client_new(&cfg, err, sizeof(err));
	struct kube_response resp;
	long n = -1;
	if (admin && kube_get(admin, "/_sim/clusters/k1/stats", &resp) == 0 && resp.status == 200)
		n = (long)json_integer_value(json_object_get(kube_response_json(&resp), "connections"));
	if (admin)
		kube_response_free(&resp);
	kube_client_free(admin);
	return n;
}

/* kube/conncache.h: a job's requests share one connection, the next job of
 * the cluster reuses it without a handshake, and a changed CA bundle or
 * credential reaches the very next job (the kept connection would have
 * worked: it must not be used). */
static void test_kubesim_connection_reuse_and_invalidation(void)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/kubesim.json", ks_dir);
	char *js = read_file_all(p, NULL);
	json_t *j = json_loads(js ? js : "", 0, NULL);
	snprintf(p, sizeof(p), "%s/ca.crt", ks_dir);
	char *ca = read_file_all(p, NULL);
	snprintf(p, sizeof(p), "%s/k1/token", ks_dir);
	char *token = read_file_all(p, NULL);
	const char *server = jstr(json_array_get(json_object_get(j, "clusters"), 0), "server");
	const char *adm = jstr(j, "admin_token");
	check(server && ca && token && adm);
	if (!(server && ca && token && adm))
		goto out;
	token[strcspn(token, "\r\n")] = 0;
	char base[128];
	snprintf(base, sizeof(base), "https://127.0.0.1:%d", (int)json_integer_value(json_object_get(j, "port")));

	char cid[DB_ID_LEN];
	add_cluster(server, ca, NULL, json_pack("{s:s}", "token", token), cid);
	struct conncache_stats s0, s1;
	conncache_get_stats(&s0);
	long c0 = k1_connections(adm, base, ca);
	long t0 = cpu_us();
	json_t *job = run_preflight(cid);
	long t1 = cpu_us();
	check_str(jstr(job, "state"), "succeeded");
	check(json_integer_value(json_object_get(phase1(job), "api_calls")) >= 2);   /* version + nodes */
	json_decref(job);
	long c1 = k1_connections(adm, base, ca);
	printf("# first job: %ld connection(s)\n", c1 - c0);
	check(c1 - c0 == 1);
	conncache_get_stats(&s1);
	check(s1.builds == s0.builds + 1);

	/* The next job: the cached TLS material and the open connection. */
	long t2 = cpu_us();
	job = run_preflight(cid);
	long t3 = cpu_us();
	printf("# connection-only job, CPU of this process (client side, database included): "
	       "first %ld us (decode + handshake), next %ld us (cached, kept connection)\n", t1 - t0, t3 - t2);
	check_str(jstr(job, "state"), "succeeded");
	json_decref(job);
	long c2 = k1_connections(adm, base, ca);
	printf("# second job: %ld connection(s)\n", c2 - c1);
	check(c2 - c1 == 0);
	conncache_get_stats(&s0);
	check(s0.builds == s1.builds && s0.hits >= s1.hits + 1 && s0.handles_reused >= s1.handles_reused + 1);

	/* Re-registered with another CA: the very next job trusts only it. */
	update_cluster(cid, other_ca_pem, NULL);
	job = run_preflight(cid);
	check_str(jstr(job, "state"), "failed");
	check(jstr(job, "error") && strstr(jstr(job, "error"), "TLS error"));
	json_decref(job);
	conncache_get_stats(&s1);
	check(s1.replaced == s0.replaced + 1);

	/* Back to kubesim's CA: works again, on a new connection. */
	update_cluster(cid, ca, NULL);
	c1 = k1_connections(adm, base, ca);
	job = run_preflight(cid);
	check_str(jstr(job, "state"), "succeeded");
	json_decref(job);
	check(k1_connections(adm, base, ca) - c1 == 1);

	/* A credential change reaches the next job too. */
	update_cluster(cid, NULL, json_pack("{s:s}", "token", "not-the-token"));
	job = run_preflight(cid);
	check_str(jstr(job, "state"), "failed");
	check(jstr(job, "error") && strstr(jstr(job, "error"), "HTTP 401"));
	json_decref(job);
out:
	json_decref(j);
	free(js);
	free(ca);
	free(token);
}

int main(void)
{
	char why[512];
	if (coredb_create("ferry_core_preflight", url, sizeof(url), why, sizeof(why)) != 0) {
		test_skip("preflight_connect", why);
		return test_summary();
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ferry-preflight-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		test_skip("preflight_connect", "mkdtemp failed");
		return test_summary();
	}
	kube_global_init();
	conn = PQconnectdb(url);
	if (coredb_migrate(conn, why, sizeof(why)) != 0) {
		printf("FAIL: preflight_migrate: %s\n", why);
		return 1;
	}
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('pre') RETURNING id", tenant, sizeof(tenant));
	memset(&app, 0, sizeof(app));
	app.keys = keyring_parse(KEY, why, sizeof(why));
	app.cfg.lease_seconds = 30;
	app.cfg.max_phase_attempts = 2;
	app.cfg.retry_base_ms = 1;
	app.cfg.node_id = "preflight-test";

	struct MHD_Daemon *d = start_server(why, sizeof(why));
	if (!d) {
		test_skip("preflight_own_https_server", why);
	} else {
		snprintf(server_url, sizeof(server_url), "https://127.0.0.1:%d/prefix/c1", port);
		test_run("preflight_token_version_nodes_stored", test_token_ok);
		test_run("preflight_bad_token_fails_clearly", test_bad_token);
		test_run("preflight_wrong_ca_tls_error", test_wrong_ca);
		test_run("preflight_wrong_server_name_tls_error", test_wrong_server_name);
		test_run("preflight_unreachable_retried_then_failed", test_unreachable_retried);
		MHD_stop_daemon(d);
	}
	if (start_kubesim(why, sizeof(why)) == 0) {
		test_run("preflight_against_kubesim_token_and_client_cert", test_kubesim);
		test_run("preflight_kubesim_503_retry_after_honoured", test_kubesim_retry_after);
		test_run("preflight_kubesim_connection_reused_and_credentials_change_invalidates",
			 test_kubesim_connection_reuse_and_invalidation);
	} else {
		test_skip("preflight_against_kubesim_token_and_client_cert", why);
		test_skip("preflight_kubesim_503_retry_after_honoured", why);
		test_skip("preflight_kubesim_connection_reused_and_credentials_change_invalidates", why);
	}
	if (kubesim_pid > 0) {
		kill(kubesim_pid, SIGTERM);
		waitpid(kubesim_pid, NULL, 0);
	}
	keyring_free(app.keys);
	PQfinish(conn);
	coredb_drop(url);
	kube_global_cleanup();
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	sh(cmd);
	free(ca_pem);
	free(other_ca_pem);
	free(srv_cert);
	free(srv_key);
	return test_summary();
}
