/*
 * Integration test of the install phases against kubesim and a real
 * PostgreSQL (tests/run provides both): refusals with zero writes for the
 * scenarios SPEC §2.1 names, the phases on a fresh TKE cluster, 20%
 * injected 5xx/429 still completing, and a second run changing nothing.
 *
 * The phases are walked by a small loop here (start/end phase records,
 * immediate retries) so the test does not depend on the runner's backoff
 * timings; the phase functions, the database records and the cluster are
 * the real ones.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/jobs.h"
#include "server/app.h"
#include "server/common/crypto.h"
#include "server/install/phases.h"
#include "server/install/runner.h"
#include "server/kube/client.h"
#include "tests/integration/coredb.h"
#include "tests/kubesim/kubesim_proc.h"
#include "tests/unit/testlib.h"

#include <stdarg.h>
#include <time.h>


static struct kubesim_proc *ks;
static PGconn *conn;
static struct app app;
static char tenant_id[DB_ID_LEN];

/* The install job's phase table, exactly as the runner walks it. */
static const struct phase_def *phases(int *n)
{
	return install_phase_table(n);
}

/* A cluster row for kubesim cluster name with profile. */
static int make_cluster(const char *name, const char *profile, char id[DB_ID_LEN])
{
	char *server = kubesim_proc_server_url(ks, name);
	char *token = kubesim_proc_read(ks, name, "token");
	char *ca = kubesim_proc_read(ks, "", "ca.crt");
	if (!ca) {
		char path[400];
		snprintf(path, sizeof path, "%s", ks->ca_path);
		FILE *f = fopen(path, "r");
		if (f) {
			ca = calloc(1, 65536);
			size_t n = fread(ca, 1, 65535, f);
			ca[n] = 0;
			fclose(f);
		}
	}
	int ok = -1;
	if (server && token && ca) {
		size_t tl = strcspn(token, "\r\n");
		token[tl] = 0;
		json_t *cred = json_pack("{s:s}", "token", token);
		char *plain = json_dumps(cred, JSON_COMPACT);
		char *sealed = crypto_seal(app.keys, plain, strlen(plain));
		const char *p[6] = { tenant_id, name, profile, server, ca, sealed };
		const char *kid = keyring_current_id(app.keys);
		const char *p7[7] = { p[0], p[1], p[2], p[3], p[4], p[5], kid };
		PGresult *r = PQexecParams(conn,
			"INSERT INTO clusters (tenant_id, name, profile, api_server, ca_bundle, credentials, credentials_key_id) "
			"VALUES ($1::uuid, $2, $3, $4, $5, $6, $7) RETURNING id", 7, NULL, p7, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			snprintf(id, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
			ok = 0;
		} else {
			printf("insert cluster: %s", PQerrorMessage(conn));
		}
		PQclear(r);
		free(plain), free(sealed), json_decref(cred);
	}
	free(server), free(token), free(ca);
	return ok;
}

struct run_out {
	char state[16];         /* succeeded | failed */
	char failed_phase[64];
	char message[600];
	json_t *result;
	json_t *details;        /* phase name -> detail */
	long calls;
};

static void run_out_clear(struct run_out *o)
{
	json_decref(o->result);
	json_decref(o->details);
	memset(o, 0, sizeof(*o));
}

/* Enqueue an install job and walk the phases. */
static int run_install(const char *cluster_id, const char *params_json, struct run_out *out)
{
	memset(out, 0, sizeof(*out));
	json_t *params = json_loads(params_json, 0, NULL);
	struct db_job_new req = { .tenant_id = tenant_id, .cluster_id = cluster_id, .kind = "install",
				  .params = params };
	char job_id[DB_ID_LEN], active[DB_ID_LEN], err[256];
	if (db_job_enqueue(conn, &req, job_id, active, err, sizeof err) != DB_JOB_CREATED) {
		printf("enqueue: %s\n", err);
		json_decref(params);
		return -1;
	}
	json_decref(params);
	struct db_job_claim claim;
	if (db_job_claim(conn, "test", 300, &claim, err, sizeof err) != 1) {
		printf("claim: %s\n", err);
		return -1;
	}
	int n;
	const struct phase_def *ph = phases(&n);
	const char *names[16];
	for (int i = 0; i < n; i++)
		names[i] = ph[i].name;
	db_job_phases_init(conn, claim.id, claim.lease_token, names, n);
	struct runner_flags flags;
	atomic_init(&flags.lease_lost, 0);
	atomic_init(&flags.cancel_requested, 0);
	struct runner_ctx ctx = { .app = &app, .conn = conn, .job = &claim, .flags = &flags };
	ctx.result = json_object();
	out->details = json_object();
	snprintf(out->state, sizeof out->state, "succeeded");
	for (int i = 0; i < n; i++) {
		enum phase_rc rc = PHASE_FAIL;
		for (int attempt = 1; attempt <= 5; attempt++) {
			ctx.phase = ph[i].name;
			ctx.phase_attempt = attempt;
			ctx.message[0] = 0;
			ctx.detail = json_object();
			db_job_phase_start(conn, claim.id, claim.lease_token, i + 1);
			long before = ctx.kube ? kube_client_requests(ctx.kube) : 0;
			rc = ph[i].run(&ctx);
			long calls = (ctx.kube ? kube_client_requests(ctx.kube) : 0) - before;
			out->calls += calls;
			db_job_phase_end(conn, claim.id, claim.lease_token, i + 1,
					 rc == PHASE_OK ? "succeeded" : "failed", ctx.message, ctx.detail, (int)calls);
			json_object_set(out->details, ph[i].name, ctx.detail);
			if (getenv("INSTALL_TEST_LOG")) {
				FILE *lf = fopen(getenv("INSTALL_TEST_LOG"), "a");
				if (lf) {
					fprintf(lf, "%s: %s\n", ph[i].name, ctx.message);
					fclose(lf);
				}
			}
			json_decref(ctx.detail);
			ctx.detail = NULL;
			if (rc != PHASE_RETRY)
				break;
			printf("# phase %s attempt %d: %s (retrying)\n", ph[i].name, attempt, ctx.message);
			struct timespec ts = { 0, 200000000L };
			nanosleep(&ts, NULL);
		}
		if (rc != PHASE_OK) {
			snprintf(out->state, sizeof out->state, "failed");
			snprintf(out->failed_phase, sizeof out->failed_phase, "%s", ph[i].name);
			snprintf(out->message, sizeof out->message, "%s", ctx.message);
			break;
		}
	}
	db_job_finish(conn, claim.id, claim.lease_token, out->state,
		      strcmp(out->state, "succeeded") ? out->message : NULL, ctx.result);
	out->result = ctx.result;
	kube_client_free(ctx.kube);
	db_job_claim_clear(&claim);
	return 0;
}

/* A "# ..." note on stdout, also appended to $INSTALL_TEST_LOG. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	printf("# %s\n", line);
	const char *log = getenv("INSTALL_TEST_LOG");
	FILE *f = log ? fopen(log, "a") : NULL;
	if (f) {
		fprintf(f, "# %s\n", line);
		fclose(f);
	}
}

static long sim_writes(const char *cluster)
{
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/stats", cluster);
	long status = 0;
	char *body = NULL;
	long w = -1;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		json_t *j = json_loads(body, 0, NULL);
		w = (long)json_integer_value(json_object_get(j, "writes"));
		json_decref(j);
	}
	free(body);
	return w;
}

static json_t *sim_object(const char *cluster, const char *group_res, const char *ns, const char *name)
{
	char path[300];
	snprintf(path, sizeof path, "/_sim/clusters/%s/objects/%s", cluster, group_res);
	long status = 0;
	char *body = NULL;
	json_t *found = NULL;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		/* {"ns/name": object, ...} ("/name" for cluster-scoped objects) */
		json_t *j = json_loads(body, 0, NULL);
		char key[300];
		if (ns)
			snprintf(key, sizeof key, "%s/%s", ns, name);
		else
			snprintf(key, sizeof key, "/%s", name);
		found = json_incref(json_object_get(j, key));
		json_decref(j);
	}
	free(body);
	return found;
}

static const char *refusal_codes(const struct run_out *o, char *buf, size_t len)
{
	buf[0] = 0;
	json_t *pf = json_object_get(o->details, "preflight");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(pf, "refusals"), i, r) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s", l ? "," : "", json_string_value(json_object_get(r, "code")));
	}
	return buf;
}

static void refused(const char *cluster, const char *profile, const char *params, const char *code)
{
	char id[DB_ID_LEN], codes[256];
	check(make_cluster(cluster, profile, id) == 0);
	long w0 = sim_writes(cluster);
	struct run_out o;
	check(run_install(id, params, &o) == 0);
	check_str(o.state, "failed");
	check_str(o.failed_phase, "preflight");
	check(strstr(refusal_codes(&o, codes, sizeof codes), code) != NULL);
	if (!strstr(codes, code))
		printf("# %s: refusals %s; message %s\n", cluster, codes, o.message);
	check(sim_writes(cluster) == w0);   /* nothing written */
	run_out_clear(&o);
}

static void test_refuse_globalrouter(void) { refused("gr", "tke", "{}", "not_vpc_cni"); }
static void test_refuse_dataplanev2(void) { refused("dp", "tke", "{}", "foreign_cilium"); }
static void test_refuse_old(void) { refused("old", "tke", "{}", "kube_version"); }
static void test_refuse_nodes(void) { refused("nodes", "tke", "{}", "existing_nodes"); }
static void test_refuse_nodes_os(void)
{
	/* Allowed, but one node runs TencentOS 3.1. */
	refused("nodes2", "tke", "{\"allow_existing_nodes\": true}", "node_os");
}
static void test_refuse_ipvs(void) { refused("ipvs", "tke-coexist", "{}", "kube_proxy_ipvs"); }

static void check_fresh_outcome(const char *cluster, const struct run_out *o)
{
	check_str(o->state, "succeeded");
	if (strcmp(o->state, "succeeded"))
		printf("# %s failed in %s: %s\n", cluster, o->failed_phase, o->message);
	json_t *eni = sim_object(cluster, "apps/daemonsets", "kube-system", "tke-eni-agent");
	const char *img = json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(
		json_object_get(json_object_get(eni, "spec"), "template"), "spec"), "containers"), 0), "image"));
	check_str(img, "ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.8.0-rc.0");
	json_decref(eni);
	const char *names[] = { "kube-proxy", "tke-cni-agent", "ip-masq-agent" };
	for (int i = 0; i < 3; i++) {
		json_t *ds = sim_object(cluster, "apps/daemonsets", "kube-system", names[i]);
		check(ds != NULL);
		const char *v = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
			json_object_get(ds, "spec"), "template"), "spec"), "nodeSelector"), "label-not-exist"));
		check_str(v, "node-not-exist");
		json_decref(ds);
	}
	json_t *pl = sim_object(cluster, "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations", NULL, "cilium");
	check(json_integer_value(json_object_get(json_object_get(json_object_get(pl, "spec"), "limited"),
						 "nominalConcurrencyShares")) == 10);
	json_decref(pl);
	json_t *fs = sim_object(cluster, "flowcontrol.apiserver.k8s.io/flowschemas", NULL, "cilium");
	check(fs != NULL);
	json_decref(fs);
	check_str(json_string_value(json_object_get(json_object_get(o->result, "wait"), "state")),
		  "waiting for nodes");
	check(json_object_get(json_object_get(o->result, "verify"), "pods") != NULL);
}

static char fresh_id[DB_ID_LEN];

static void test_fresh_install(void)
{
	check(make_cluster("fresh", "tke", fresh_id) == 0);
	struct run_out o;
	check(run_install(fresh_id, "{}", &o) == 0);
	check_fresh_outcome("fresh", &o);
	note("fresh install: %ld API calls, %ld writes", o.calls, sim_writes("fresh"));
	run_out_clear(&o);
}

static void test_second_install_no_changes(void)
{
	long w0 = sim_writes("fresh");
	struct run_out o;
	check(run_install(fresh_id, "{}", &o) == 0);
	check_str(o.state, "succeeded");
	long w1 = sim_writes("fresh");
	note("second install: %ld API calls, %ld writes", o.calls, w1 - w0);
	/* Only server-side applies that change nothing may be sent. */
	size_t i;
	const char *k;
	json_t *d, *obj;
	json_object_foreach(o.details, k, d) {
		json_array_foreach(json_object_get(d, "objects"), i, obj) {
			const char *a = json_string_value(json_object_get(obj, "action"));
			check_str(a, "unchanged");
		}
	}
	run_out_clear(&o);
}

static void test_dry_run_changes_nothing(void)
{
	char id[DB_ID_LEN];
	check(make_cluster("dry", "tke", id) == 0);
	struct run_out o;
	long w0 = sim_writes("dry");
	check(run_install(id, "{\"dry_run\": true}", &o) == 0);
	note("dry run: %ld API calls, %ld writes (all dryRun=All)", o.calls, sim_writes("dry") - w0);
	check_str(o.state, "succeeded");
	json_t *objs = json_object_get(json_object_get(o.result, "dry_run"), "objects");
	check(json_array_size(objs) >= 4);
	json_t *eni = sim_object("dry", "apps/daemonsets", "kube-system", "tke-eni-agent");
	const char *img = json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(
		json_object_get(json_object_get(eni, "spec"), "template"), "spec"), "containers"), 0), "image"));
	check(img && strstr(img, "v3.7.") != NULL);
	json_decref(eni);
	run_out_clear(&o);
}

static void test_faults_still_complete(void)
{
	char id[DB_ID_LEN];
	check(make_cluster("faulty", "tke", id) == 0);
	long status = 0;
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/faulty/faults",
			   "{\"error_rate\": 0.2, \"error_codes\": [500, 503, 429], \"retry_after_s\": 0, \"seed\": 123456789}",
			   &status, NULL);
	check(status == 200);
	struct run_out o;
	check(run_install(id, "{}", &o) == 0);
	check_fresh_outcome("faulty", &o);
	char *body = NULL;
	kubesim_proc_admin(ks, "GET", "/_sim/clusters/faulty/stats", NULL, &status, &body);
	json_t *st = json_loads(body ? body : "{}", 0, NULL);
	long injected = (long)json_integer_value(json_object_get(st, "faults_injected"));
	note("with 20%% injected 500/503/429: %ld API calls, %ld faults injected", o.calls, injected);
	check(injected >= 3);   /* the retries were really exercised */
	json_decref(st);
	free(body);
	run_out_clear(&o);
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/faulty/faults", "{}", &status, NULL);
}

int main(void)
{
	char url[512], why[512];
	if (coredb_create("ferry_install", url, sizeof url, why, sizeof why) < 0) {
		test_skip("install_phases", why);
		return test_summary();
	}
	conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK || coredb_migrate(conn, why, sizeof why) < 0) {
		printf("FAIL: install_phases: database setup: %s\n", why);
		return 1;
	}
	kube_global_init();
	setenv("FERRY_KUBE_RETRY_DEADLINE_MS", "20000", 1);
	char err[256];
	ks = kubesim_proc_start(&(struct kubesim_opts){
		.named = { "gr=tke-globalrouter", "dp=tke-dataplanev2", "old=tke-old", "nodes=tke-with-nodes", "nodes2=tke-with-nodes",
			   "ipvs=tke-ipvs", "fresh=tke-fresh", "dry=tke-fresh", "faulty=tke-fresh", NULL },
		.ready_delay_ms = 50 }, err, sizeof err);
	if (!ks) {
		test_skip("install_phases", err);
		PQfinish(conn);
		coredb_drop(url);
		return test_summary();
	}
	app.keys = keyring_parse("k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err, sizeof err);
	app.cfg.node_id = "test";
	/* The real chart archives: $FERRY_CHARTS_DIR, else $FERRY_SHARED/charts,
	 * else the default (../shared/charts relative to the working dir). */
	static char charts_dir[600];
	if (getenv("FERRY_CHARTS_DIR"))
		snprintf(charts_dir, sizeof charts_dir, "%s", getenv("FERRY_CHARTS_DIR"));
	else if (getenv("FERRY_SHARED"))
		snprintf(charts_dir, sizeof charts_dir, "%s/charts", getenv("FERRY_SHARED"));
	app.cfg.charts_dir = charts_dir[0] ? charts_dir : NULL;
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('install-test') RETURNING id", tenant_id, sizeof tenant_id);

	test_run("install_refuse_globalrouter", test_refuse_globalrouter);
	test_run("install_refuse_dataplanev2", test_refuse_dataplanev2);
	test_run("install_refuse_old_kubernetes", test_refuse_old);
	test_run("install_refuse_existing_nodes", test_refuse_nodes);
	test_run("install_refuse_tencentos3_node", test_refuse_nodes_os);
	test_run("install_refuse_kube_proxy_ipvs", test_refuse_ipvs);
	test_run("install_fresh_tke", test_fresh_install);
	test_run("install_second_run_no_changes", test_second_install_no_changes);
	test_run("install_dry_run", test_dry_run_changes_nothing);
	test_run("install_with_20pct_faults", test_faults_still_complete);

	kubesim_proc_stop(ks);
	keyring_free(app.keys);
	PQfinish(conn);
	coredb_drop(url);
	kube_global_cleanup();
	return test_summary();
}
