/*
 * Integration test of the install phases against kubesim and a real
 * PostgreSQL (tests/run provides both): refusals with zero writes for the
 * scenarios SPEC §2.1 names, the phases on a fresh TKE cluster, 20%
 * injected 5xx/429 still completing, and a second run changing nothing.
 *
 * The phases are walked by a small loop here (start/end phase records,
 * immediate retries) so the test does not depend on the runner's backoff
 * timings; the phase functions, the database records and the cluster are
 * the real ones. The worker-killed test uses the real runner
 * (runner_run_job) in a forked process that is SIGKILLed mid-cilium, then
 * takes the job over with a new lease in this process, as a worker does
 * after lease expiry.
 *
 * What the cluster is checked for after a real install of cilium 1.18.3
 * (the chart from $FERRY_CHARTS_DIR, else $FERRY_SHARED/charts): the
 * release Secret decoded here independently (base64 -> base64 -> gzip ->
 * JSON), every object of its manifest present in kubesim with the same
 * container images, the CNI ConfigMap's content and its name equal to the
 * chart's cni.configMap (the DaemonSet's cni-configuration volume), the
 * eni-agent image, the retired TKE components, the APF objects.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/jobs.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/yamljson.h"
#include "server/install/phases.h"
#include "server/install/runner.h"
#include "server/kube/client.h"
#include "tests/integration/coredb.h"
#include "tests/kubesim/kubesim_proc.h"
#include "tests/unit/testlib.h"

#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>


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
	if (!ca)
		ca = read_file_all(ks->ca_path, NULL);
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
	json_t *messages;       /* phase name -> message */
	json_t *stats;          /* [{phase, calls, wall_ms, api_ms, backoff_ms}] */
	long calls;
	long connects;          /* TLS connections the job's client opened */
	long cpu_ms, wall_ms;   /* this process (ferry's side of the job) */
};

static void run_out_clear(struct run_out *o)
{
	json_decref(o->result);
	json_decref(o->details);
	json_decref(o->messages);
	json_decref(o->stats);
	memset(o, 0, sizeof(*o));
}

static int run_job(const char *cluster_id, const char *kind, const char *params_json,
		   struct run_out *out);

/* Enqueue an install job and walk the phases. */
static int run_install(const char *cluster_id, const char *params_json, struct run_out *out)
{
	return run_job(cluster_id, "install", params_json, out);
}

/* Enqueue a job of kind (install | upgrade) and walk the phases. */
static int run_job(const char *cluster_id, const char *kind, const char *params_json,
		   struct run_out *out)
{
	memset(out, 0, sizeof(*out));
	json_t *params = json_loads(params_json, 0, NULL);
	struct db_job_new req = { .tenant_id = tenant_id, .cluster_id = cluster_id, .kind = kind,
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
	out->messages = json_object();
	out->stats = json_array();
	snprintf(out->state, sizeof out->state, "succeeded");
	struct timespec cpu0, wall0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
	clock_gettime(CLOCK_MONOTONIC, &wall0);
	for (int i = 0; i < n; i++) {
		enum phase_rc rc = PHASE_FAIL;
		for (int attempt = 1; attempt <= 5; attempt++) {
			ctx.phase = ph[i].name;
			ctx.phase_attempt = attempt;
			ctx.message[0] = 0;
			ctx.detail = json_object();
			db_job_phase_start(conn, claim.id, claim.lease_token, i + 1);
			long before = ctx.kube ? kube_client_requests(ctx.kube) : 0;
			struct timespec t0, t1, c0, c1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
			rc = ph[i].run(&ctx);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			long calls = (ctx.kube ? kube_client_requests(ctx.kube) : 0) - before;
			const json_t *tm = json_object_get(ctx.detail, "timing");
			json_array_append_new(out->stats, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "phase", ph[i].name,
				"calls", (json_int_t)calls,
				"cpu_us", (json_int_t)((c1.tv_sec - c0.tv_sec) * 1000000 + (c1.tv_nsec - c0.tv_nsec) / 1000),
				"wall_ms", (json_int_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000),
				"api_ms", json_integer_value(json_object_get(tm, "api_ms")),
				"backoff_ms", json_integer_value(json_object_get(tm, "backoff_ms"))));
			out->calls += calls;
			db_job_phase_end(conn, claim.id, claim.lease_token, i + 1,
					 rc == PHASE_OK ? "succeeded" : "failed", ctx.message, ctx.detail, (int)calls);
			json_object_set(out->details, ph[i].name, ctx.detail);
			json_object_set_new(out->messages, ph[i].name, json_string(ctx.message));
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
	struct timespec cpu1, wall1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	clock_gettime(CLOCK_MONOTONIC, &wall1);
	out->cpu_ms = (cpu1.tv_sec - cpu0.tv_sec) * 1000 + (cpu1.tv_nsec - cpu0.tv_nsec) / 1000000;
	out->wall_ms = (wall1.tv_sec - wall0.tv_sec) * 1000 + (wall1.tv_nsec - wall0.tv_nsec) / 1000000;
	out->connects = ctx.kube ? kube_client_connects(ctx.kube) : 0;
	runner_drop_pending(&ctx);
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

/* A counter of kubesim's stats for the cluster ("writes", "connections",
 * "total"), -1 when unreadable. */
static long sim_stat(const char *cluster, const char *what)
{
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/stats", cluster);
	long status = 0;
	char *body = NULL;
	long w = -1;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		json_t *j = json_loads(body, 0, NULL);
		w = (long)json_integer_value(json_object_get(j, what));
		json_decref(j);
	}
	free(body);
	return w;
}

static long sim_writes(const char *cluster)
{
	return sim_stat(cluster, "writes");
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

/* ---- independent readers of what the install left in the cluster ---- */

/* Standard base64 (RFC 4648) decode; NULL when malformed. */
static unsigned char *b64_decode(const char *in, size_t *outlen)
{
	size_t n = strlen(in);
	if (n % 4)
		return NULL;
	unsigned char *out = malloc(n / 4 * 3 + 1);
	int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	while (n > 0 && in[n - 1] == '=') {   /* EVP_DecodeBlock counts padding */
		len--;
		n--;
	}
	*outlen = (size_t)len;
	return out;
}

/* gunzip (RFC 1952); NUL-terminated text or NULL. */
static char *gunzip(const unsigned char *in, size_t len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return NULL;
	size_t cap = 1 << 20, used = 0;
	char *out = malloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	int zr;
	do {
		if (cap - used < 65536) {
			cap *= 2;
			out = realloc(out, cap);
		}
		z.next_out = (unsigned char *)out + used;
		z.avail_out = (uInt)(cap - used - 1);
		zr = inflate(&z, Z_NO_FLUSH);
		used = cap - 1 - z.avail_out;
	} while (zr == Z_OK);
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	out[used] = 0;
	return out;
}

/* The Helm release inside a release Secret as the API returns it:
 * data.release = base64(base64(gzip(JSON))). */
static json_t *decode_release_secret(const json_t *secret)
{
	const char *outer = json_string_value(json_object_get(json_object_get(secret, "data"), "release"));
	if (!outer)
		return NULL;
	size_t l1 = 0, l2 = 0;
	unsigned char *inner = b64_decode(outer, &l1);
	if (!inner)
		return NULL;
	char *inner_s = malloc(l1 + 1);
	memcpy(inner_s, inner, l1);
	inner_s[l1] = 0;
	unsigned char *gz = b64_decode(inner_s, &l2);
	char *text = gz ? gunzip(gz, l2) : NULL;
	json_t *rel = text ? json_loads(text, 0, NULL) : NULL;
	free(inner), free(inner_s), free(gz), free(text);
	return rel;
}

/* The admin dump path "group/resource" of an object of apiVersion/kind. */
static void group_resource(const char *api_version, const char *kind, char *out, size_t len)
{
	char group[128] = "core";
	const char *slash = strchr(api_version, '/');
	if (slash)
		snprintf(group, sizeof group, "%.*s", (int)(slash - api_version), api_version);
	char res[128];
	size_t k = 0;
	for (; kind[k] && k < sizeof res - 4; k++)
		res[k] = (char)(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] - 'A' + 'a' : kind[k]);
	res[k] = 0;
	if (k > 0 && res[k - 1] == 'y')
		snprintf(res + k - 1, sizeof res - k + 1, "ies");
	else
		snprintf(res + k, sizeof res - k, "s");
	snprintf(out, len, "%s/%s", group, res);
}

static json_t *sim_get(const char *cluster, const json_t *obj)
{
	const char *av = json_string_value(json_object_get(obj, "apiVersion"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (!av || !kind || !name)
		return NULL;
	char gr[300];
	group_resource(av, kind, gr, sizeof gr);
	json_t *live = sim_object(cluster, gr, ns, name);
	if (!live && !ns)   /* namespaced object rendered without a namespace */
		live = sim_object(cluster, gr, "kube-system", name);
	return live;
}

static const json_t *pod_spec(const json_t *obj)
{
	return json_object_get(json_object_get(json_object_get(obj, "spec"), "template"), "spec");
}

/* "img1 img2 ..." of the pod template's init and regular containers. */
static void template_images(const json_t *obj, char *out, size_t len)
{
	out[0] = 0;
	const char *lists[2] = { "initContainers", "containers" };
	for (int l = 0; l < 2; l++) {
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(pod_spec(obj), lists[l]), i, c) {
			size_t u = strlen(out);
			snprintf(out + u, len - u, "%s%s", u ? " " : "",
				 json_string_value(json_object_get(c, "image")));
		}
	}
}

/* The decoded release record of revision rev on cluster (NULL if none). */
static json_t *sim_release(const char *cluster, int rev, json_t **secret_out)
{
	char name[80];
	snprintf(name, sizeof name, "sh.helm.release.v1.cilium.v%d", rev);
	json_t *sec = sim_object(cluster, "core/secrets", "kube-system", name);
	json_t *rel = sec ? decode_release_secret(sec) : NULL;
	if (secret_out)
		*secret_out = sec;
	else
		json_decref(sec);
	return rel;
}

/* Count the Helm release Secrets of release cilium on cluster. */
static int sim_release_count(const char *cluster)
{
	long status = 0;
	char *body = NULL;
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/objects/core/secrets", cluster);
	int n = -1;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		json_t *j = json_loads(body, 0, NULL);
		const char *k;
		json_t *s;
		n = 0;
		json_object_foreach(j, k, s) {
			const json_t *labels = json_object_get(json_object_get(s, "metadata"), "labels");
			const char *owner = json_string_value(json_object_get(labels, "owner"));
			const char *nm = json_string_value(json_object_get(labels, "name"));
			if (owner && nm && !strcmp(owner, "helm") && !strcmp(nm, "cilium"))
				n++;
		}
		json_decref(j);
	}
	free(body);
	return n;
}

/*
 * Every object in the release manifest exists in kubesim, with the same
 * container images; every image is under prefix. Returns the number of
 * manifest objects.
 */
static int check_manifest_objects(const char *cluster, const json_t *rel, const char *prefix)
{
	const char *manifest = json_string_value(json_object_get(rel, "manifest"));
	check(manifest != NULL);
	if (!manifest)
		return 0;
	char err[256];
	json_t *docs = yaml_stream_to_json(manifest, strlen(manifest), err, sizeof err);
	check(docs != NULL);
	int n = 0, missing = 0, bad_images = 0, images = 0;
	size_t i;
	const json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d))
			continue;
		n++;
		json_t *live = sim_get(cluster, d);
		if (!live) {
			missing++;
			printf("# %s: %s %s missing\n", cluster, json_string_value(json_object_get(d, "kind")),
			       json_string_value(json_object_get(json_object_get(d, "metadata"), "name")));
			continue;
		}
		char want[2048], got[2048];
		template_images(d, want, sizeof want);
		template_images(live, got, sizeof got);
		if (strcmp(want, got)) {
			bad_images++;
			printf("# %s: images differ: want %s got %s\n", cluster, want, got);
		}
		for (char *tok = strtok(got, " "); tok; tok = strtok(NULL, " ")) {
			images++;
			if (strncmp(tok, prefix, strlen(prefix))) {
				bad_images++;
				printf("# %s: image %s not under %s\n", cluster, tok, prefix);
			}
		}
		json_decref(live);
	}
	check(n >= 20);
	check(missing == 0);
	check(bad_images == 0);
	check(images >= 5);   /* agent, envoy, operator and init containers */
	json_decref(docs);
	return n;
}

/*
 * The CNI ConfigMap holds the chained configuration of SPEC §2.3 and its
 * name is the chart's cni.configMap: the release config says so, the
 * rendered DaemonSet mounts it, cilium-config reads its key.
 */
static void check_cni_config(const char *cluster, const json_t *rel, const char *want_name)
{
	const char *name = json_string_value(json_object_get(json_object_get(json_object_get(rel, "config"),
									      "cni"), "configMap"));
	check_str(name, want_name);
	if (!name)
		return;
	json_t *cm = sim_object(cluster, "core/configmaps", "kube-system", name);
	check(cm != NULL);
	const char *text = json_string_value(json_object_get(json_object_get(cm, "data"), "cni-config"));
	json_t *cfg = text ? json_loads(text, 0, NULL) : NULL;
	check(cfg != NULL);
	check_str(json_string_value(json_object_get(cfg, "cniVersion")), "0.3.1");
	check_str(json_string_value(json_object_get(cfg, "name")), "generic-veth");
	json_t *plugins = json_object_get(cfg, "plugins");
	check(json_array_size(plugins) == 2);
	json_t *eni = json_array_get(plugins, 0), *cil = json_array_get(plugins, 1);
	check_str(json_string_value(json_object_get(eni, "type")), "tke-route-eni");
	check(json_integer_value(json_object_get(eni, "routeTable")) == 1);
	check(json_is_true(json_object_get(eni, "disableIPv6")));
	check(json_integer_value(json_object_get(eni, "mtu")) == 1500);
	check_str(json_string_value(json_object_get(json_object_get(eni, "ipam"), "type")), "tke-eni-ipamc");
	check_str(json_string_value(json_object_get(json_object_get(eni, "ipam"), "backend")), "127.0.0.1:61677");
	check_str(json_string_value(json_object_get(cil, "type")), "cilium-cni");
	check_str(json_string_value(json_object_get(cil, "chaining-mode")), "generic-veth");
	json_decref(cfg);
	json_decref(cm);
	/* The rendered chart uses that name. */
	json_t *ds = sim_object(cluster, "apps/daemonsets", "kube-system", "cilium");
	const char *vol_cm = NULL;
	size_t i;
	const json_t *v;
	json_array_foreach(json_object_get(pod_spec(ds), "volumes"), i, v)
		if (json_object_get(v, "configMap") &&
		    json_string_value(json_object_get(v, "name")) &&
		    !strcmp(json_string_value(json_object_get(v, "name")), "cni-configuration"))
			vol_cm = json_string_value(json_object_get(json_object_get(v, "configMap"), "name"));
	check_str(vol_cm, name);
	json_decref(ds);
	json_t *cc = sim_object(cluster, "core/configmaps", "kube-system", "cilium-config");
	const char *read = json_string_value(json_object_get(json_object_get(cc, "data"), "read-cni-conf"));
	check(read && strlen(read) > 11 && !strcmp(read + strlen(read) - 11, "/cni-config"));
	check_str(json_string_value(json_object_get(json_object_get(cc, "data"), "cni-chaining-mode")),
		  "generic-veth");
	json_decref(cc);
}

/* The release record: a valid Helm v3 release of revision rev. */
static void check_release_record(const char *cluster, int rev, const char *status, const json_t *rel,
				 const json_t *secret)
{
	check(rel != NULL);
	if (!rel)
		return;
	check_str(json_string_value(json_object_get(rel, "name")), "cilium");
	check_str(json_string_value(json_object_get(rel, "namespace")), "kube-system");
	check(json_integer_value(json_object_get(rel, "version")) == rev);
	check_str(json_string_value(json_object_get(json_object_get(rel, "info"), "status")), status);
	const json_t *md = json_object_get(json_object_get(rel, "chart"), "metadata");
	check_str(json_string_value(json_object_get(md, "name")), "cilium");
	check_str(json_string_value(json_object_get(md, "version")), "1.18.3");
	check(json_string_length(json_object_get(rel, "manifest")) > 10000);
	check(json_is_object(json_object_get(json_object_get(rel, "chart"), "values")));
	check_str(json_string_value(json_object_get(secret, "type")), "helm.sh/release.v1");
	const json_t *labels = json_object_get(json_object_get(secret, "metadata"), "labels");
	char v[16];
	snprintf(v, sizeof v, "%d", rev);
	check_str(json_string_value(json_object_get(labels, "owner")), "helm");
	check_str(json_string_value(json_object_get(labels, "name")), "cilium");
	check_str(json_string_value(json_object_get(labels, "status")), status);
	check_str(json_string_value(json_object_get(labels, "version")), v);
	(void)cluster;
}

static const char *cilium_config(const char *cluster, const char *key, char *buf, size_t len)
{
	json_t *cc = sim_object(cluster, "core/configmaps", "kube-system", "cilium-config");
	const char *v = json_string_value(json_object_get(json_object_get(cc, "data"), key));
	snprintf(buf, len, "%s", v ? v : "(absent)");
	json_decref(cc);
	return buf;
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
static void test_refuse_ipvs(void)
{
	refused("ipvs", "tke-coexist", "{}", "kube_proxy_ipvs");
	/* keep_kube_proxy on the tke profile needs iptables mode too. */
	refused("ipvs2", "tke", "{\"keep_kube_proxy\": true}", "kube_proxy_ipvs");
}

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
	const json_t *lim = json_object_get(json_object_get(pl, "spec"), "limited");
	check_str(json_string_value(json_object_get(json_object_get(pl, "spec"), "type")), "Limited");
	check(json_integer_value(json_object_get(lim, "lendablePercent")) == 0);
	check(json_integer_value(json_object_get(lim, "borrowingLimitPercent")) == 0);
	const json_t *queuing = json_object_get(json_object_get(lim, "limitResponse"), "queuing");
	check(json_integer_value(json_object_get(queuing, "handSize")) == 6);
	check(json_integer_value(json_object_get(queuing, "queueLengthLimit")) == 50);
	check(json_integer_value(json_object_get(queuing, "queues")) == 64);
	json_decref(pl);
	json_t *fs = sim_object(cluster, "flowcontrol.apiserver.k8s.io/flowschemas", NULL, "cilium");
	check(fs != NULL);
	const json_t *fspec = json_object_get(fs, "spec");
	check(json_integer_value(json_object_get(fspec, "matchingPrecedence")) == 2);
	check_str(json_string_value(json_object_get(json_object_get(fspec, "distinguisherMethod"), "type")), "ByUser");
	check_str(json_string_value(json_object_get(json_object_get(fspec, "priorityLevelConfiguration"), "name")),
		  "cilium");
	const json_t *subj = json_object_get(json_array_get(json_object_get(json_array_get(
		json_object_get(fspec, "rules"), 0), "subjects"), 0), "serviceAccount");
	check_str(json_string_value(json_object_get(subj, "namespace")), "kube-system");
	check_str(json_string_value(json_object_get(subj, "name")), "cilium");
	json_decref(fs);
	check_str(json_string_value(json_object_get(json_object_get(o->result, "wait"), "state")),
		  "waiting for nodes");
	check(json_object_get(json_object_get(o->result, "verify"), "pods") != NULL);
}

static char fresh_id[DB_ID_LEN];

/* "# phase calls wall api backoff" lines, and the totals. */
static void note_phase_stats(const char *what, const struct run_out *o)
{
	size_t i;
	const json_t *st;
	long calls = 0, wall = 0, api = 0, backoff = 0, cpu = 0, cpu_kube = 0;
	note("%s, per phase: calls, wall ms, ms waiting on the API server, ms backing off, CPU us", what);
	json_array_foreach(o->stats, i, st) {
		long c = (long)json_integer_value(json_object_get(st, "calls"));
		long w = (long)json_integer_value(json_object_get(st, "wall_ms"));
		long a = (long)json_integer_value(json_object_get(st, "api_ms"));
		long b = (long)json_integer_value(json_object_get(st, "backoff_ms"));
		long u = (long)json_integer_value(json_object_get(st, "cpu_us"));
		const char *name = json_string_value(json_object_get(st, "phase"));
		note("  %-22s %4ld %6ld %6ld %6ld %8ld", name, c, w, a, b, u);
		calls += c, wall += w, api += a, backoff += b, cpu += u;
		/* preflight and cilium render the chart (key generation included) */
		if (strcmp(name, "preflight") && strcmp(name, "cilium"))
			cpu_kube += u;
	}
	note("  %-22s %4ld %6ld %6ld %6ld %8ld", "total", calls, wall, api, backoff, cpu);
	note("  CPU of the phases that do not render the chart: %ld us", cpu_kube);
	const json_t *cm = json_object_get(json_object_get(o->details, "cilium"), "chart_ms");
	if (cm)
		note("  cilium chart: resolve %lld ms, load %lld ms, render %lld ms",
		     (long long)json_integer_value(json_object_get(cm, "resolve")),
		     (long long)json_integer_value(json_object_get(cm, "load")),
		     (long long)json_integer_value(json_object_get(cm, "render")));
}

/* The fresh install's params: a user values layer and a --set override,
 * which must come back in the release's config. */
#define FRESH_PARAMS "{\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"], " \
		     "\"set\": [\"operator.replicas=1\"]}"

static void test_fresh_install(void)
{
	check(make_cluster("fresh", "tke", fresh_id) == 0);
	struct run_out o;
	check(run_install(fresh_id, FRESH_PARAMS, &o) == 0);
	check_fresh_outcome("fresh", &o);
	note("fresh install: %ld API calls, %ld writes", o.calls, sim_writes("fresh"));
	note("fresh install: %ld ms wall, %ld ms CPU (this process: ferry's side, render included)",
	     o.wall_ms, o.cpu_ms);
	/* Issue 14's bound: at most objects + 25 API calls, objects being what
	 * the install writes besides its release record (written twice:
	 * pending-install, then deployed). kubesim counts both sides. */
	long objects = sim_writes("fresh") - 2;
	note("fresh install: %ld objects written, %ld API calls (bound %ld), %ld requests seen by kubesim",
	     objects, o.calls, objects + 25, sim_stat("fresh", "total"));
	check(objects >= 28);
	check(o.calls <= objects + 25);
	check(sim_stat("fresh", "total") == o.calls);
	/* Keep-alive: the whole job on one connection (one more allowed for a
	 * connection the server closed). */
	note("fresh install: %ld TLS connections (client), %ld (kubesim)", o.connects,
	     sim_stat("fresh", "connections"));
	check(o.connects >= 1 && o.connects <= 2);
	check(sim_stat("fresh", "connections") == o.connects);
	note_phase_stats("fresh install", &o);
	{
		long status = 0;
		char *body = NULL;
		kubesim_proc_admin(ks, "GET", "/_sim/clusters/fresh/stats", NULL, &status, &body);
		json_t *st = json_loads(body ? body : "{}", 0, NULL);
		char *bv = json_dumps(json_object_get(st, "by_verb"), JSON_COMPACT | JSON_SORT_KEYS);
		note("fresh install, requests by verb (kubesim): %s", bv ? bv : "?");
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(st, "by_request"), k, v)
			if (!strstr(k, "/namespaces/kube-system/") || strstr(k, "secrets") || strstr(k, "eni"))
				note("  %3lld %s", (long long)json_integer_value(v), k);
		free(bv);
		json_decref(st);
		free(body);
	}
	/* The release record, decoded here (not by ferry's own decoder). */
	json_t *secret = NULL;
	json_t *rel = sim_release("fresh", 1, &secret);
	check_release_record("fresh", 1, "deployed", rel, secret);
	const json_t *config = json_object_get(rel, "config");
	check_str(json_string_value(json_object_get(json_object_get(config, "bpf"), "monitorAggregation")), "medium");
	check(json_integer_value(json_object_get(json_object_get(config, "operator"), "replicas")) == 1);
	check_str(json_string_value(json_object_get(config, "routingMode")), "native");
	check_str(json_string_value(json_object_get(config, "k8sServiceHost")), "169.254.128.7");
	check(json_integer_value(json_object_get(config, "k8sServicePort")) == 60002);
	/* Every rendered object is in the cluster with quay.io images. */
	int n = check_manifest_objects("fresh", rel, "quay.io/cilium/");
	json_t *counts = json_object_get(json_object_get(o.details, "cilium"), "counts");
	check(json_integer_value(json_object_get(counts, "created")) == n);
	check_cni_config("fresh", rel, "cni-config");
	char buf[128];
	check_str(cilium_config("fresh", "kube-proxy-replacement", buf, sizeof buf), "true");
	check_str(cilium_config("fresh", "routing-mode", buf, sizeof buf), "native");
	check_str(cilium_config("fresh", "ipam", buf, sizeof buf), "delegated-plugin");
	check(sim_release_count("fresh") == 1);
	json_decref(rel), json_decref(secret);
	run_out_clear(&o);
}

static void test_second_install_no_changes(void)
{
	long w0 = sim_writes("fresh"), c0 = sim_stat("fresh", "connections");
	struct run_out o;
	check(run_install(fresh_id, FRESH_PARAMS, &o) == 0);
	check_str(o.state, "succeeded");
	/* The next job of the cluster reuses the connection the first one
	 * left (kube/conncache.h): no new TLS handshake at all. */
	note("second install: %ld new TLS connections", o.connects);
	check(o.connects == 0);
	check(sim_stat("fresh", "connections") == c0);
	long w1 = sim_writes("fresh");
	note("second install: %ld API calls, %ld writes", o.calls, w1 - w0);
	note("second install: %ld ms wall, %ld ms CPU", o.wall_ms, o.cpu_ms);
	note_phase_stats("second install", &o);
	check(w1 - w0 == 0);
	/* Only server-side applies that change nothing may be sent. */
	size_t i;
	const char *k;
	json_t *d, *obj;
	long objects = 0;
	json_object_foreach(o.details, k, d) {
		json_array_foreach(json_object_get(d, "objects"), i, obj) {
			const char *a = json_string_value(json_object_get(obj, "action"));
			check_str(a, "unchanged");
			objects++;
		}
	}
	check(objects >= 20);
	/* No new release revision: an unchanged install is not an upgrade. */
	check(sim_release_count("fresh") == 1);
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 1);
	json_t *secret = NULL;
	json_t *rel = sim_release("fresh", 1, &secret);
	check_release_record("fresh", 1, "deployed", rel, secret);
	json_decref(rel), json_decref(secret);
	run_out_clear(&o);
}

/* After an install, a dry run of the same install reports nothing to do. */
static void test_dry_run_after_install(void)
{
	long w0 = sim_writes("fresh");
	struct run_out o;
	check(run_install(fresh_id, "{\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"], "
			  "\"set\": [\"operator.replicas=1\"], \"dry_run\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	check(sim_writes("fresh") == w0);
	json_t *objs = json_object_get(json_object_get(o.result, "dry_run"), "objects");
	size_t i;
	json_t *obj;
	long created = 0, changed = 0, unchanged = 0;
	json_array_foreach(objs, i, obj) {
		const char *a = json_string_value(json_object_get(obj, "action"));
		if (a && !strcmp(a, "created"))
			created++;
		else if (a && !strcmp(a, "changed"))
			changed++;
		else
			unchanged++;
		if (strcmp(a ? a : "", "unchanged"))
			printf("# dry run after install: %s %s %s\n", json_string_value(json_object_get(obj, "kind")),
			       json_string_value(json_object_get(obj, "name")), a ? a : "?");
	}
	note("dry run after install: %ld API calls; %ld created, %ld changed, %ld unchanged", o.calls, created,
	     changed, unchanged);
	check(created == 0 && changed == 0);
	check(unchanged >= 20);
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
	if (strcmp(o.state, "succeeded"))
		printf("# dry run failed in %s: %s\n", o.failed_phase, o.message);
	check(sim_writes("dry") == w0);
	json_t *objs = json_object_get(json_object_get(o.result, "dry_run"), "objects");
	check(json_array_size(objs) >= 25);
	/* Objects in the namespace the chart creates (cilium-secrets) are
	 * reported as created too. */
	size_t i;
	json_t *obj;
	int in_new_ns = 0;
	json_array_foreach(objs, i, obj)
		if (!strcmp(json_string_value(json_object_get(obj, "namespace")) ? json_string_value(json_object_get(obj, "namespace")) : "", "cilium-secrets"))
			in_new_ns++;
	check(in_new_ns >= 1);
	json_t *eni = sim_object("dry", "apps/daemonsets", "kube-system", "tke-eni-agent");
	const char *img = json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(
		json_object_get(json_object_get(eni, "spec"), "template"), "spec"), "containers"), 0), "image"));
	check(img && strstr(img, "v3.7.") != NULL);
	json_decref(eni);
	check(sim_object("dry", "core/configmaps", "kube-system", "cilium-config") == NULL);
	check(sim_release_count("dry") == 0);
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
	/* Completed with every object once and one release record. */
	check(sim_release_count("faulty") == 1);
	json_t *secret = NULL;
	json_t *rel = sim_release("faulty", 1, &secret);
	check_release_record("faulty", 1, "deployed", rel, secret);
	check_manifest_objects("faulty", rel, "quay.io/cilium/");
	check_cni_config("faulty", rel, "cni-config");
	json_decref(rel), json_decref(secret);
	json_decref(st);
	free(body);
	run_out_clear(&o);
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/faulty/faults", "{}", &status, NULL);
}

/* The image_mirror layer: every image under quay.tencentcloudcr.com; and a
 * --set of cni.configMap renames the CNI ConfigMap to match the chart. */
static void test_image_mirror_and_cni_name(void)
{
	char id[DB_ID_LEN];
	check(make_cluster("mirror", "tke", id) == 0);
	struct run_out o;
	check(run_install(id, "{\"image_mirror\": true, \"set\": [\"cni.configMap=cni-chain-custom\"]}", &o) == 0);
	check_fresh_outcome("mirror", &o);
	json_t *secret = NULL;
	json_t *rel = sim_release("mirror", 1, &secret);
	check_release_record("mirror", 1, "deployed", rel, secret);
	check_manifest_objects("mirror", rel, "quay.tencentcloudcr.com/cilium/");
	check_cni_config("mirror", rel, "cni-chain-custom");
	check(sim_object("mirror", "core/configmaps", "kube-system", "cni-config") == NULL);
	json_decref(rel), json_decref(secret);
	run_out_clear(&o);
}

static int nodeselector_retired(const char *cluster, const char *ds_name)
{
	json_t *ds = sim_object(cluster, "apps/daemonsets", "kube-system", ds_name);
	const char *v = json_string_value(json_object_get(json_object_get(pod_spec(ds), "nodeSelector"),
							  "label-not-exist"));
	int r = ds ? (v && !strcmp(v, "node-not-exist")) : -1;
	json_decref(ds);
	return r;
}

/* kube-proxy kept: tke-coexist profile, or tke with keep_kube_proxy. */
static void test_keep_kube_proxy(void)
{
	char id[DB_ID_LEN], id2[DB_ID_LEN], buf[64];
	check(make_cluster("keep", "tke", id) == 0);
	struct run_out o;
	check(run_install(id, "{\"keep_kube_proxy\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	const char *rm = json_string_value(json_object_get(o.messages, "retire-tke-components"));
	check(rm && !strncmp(rm, "skipped", 7));
	check(nodeselector_retired("keep", "kube-proxy") == 0);
	check(nodeselector_retired("keep", "tke-cni-agent") == 0);
	check_str(cilium_config("keep", "kube-proxy-replacement", buf, sizeof buf), "false");
	run_out_clear(&o);

	check(make_cluster("coexist", "tke-coexist", id2) == 0);
	check(run_install(id2, "{}", &o) == 0);
	check_str(o.state, "succeeded");
	if (strcmp(o.state, "succeeded"))
		printf("# coexist failed in %s: %s\n", o.failed_phase, o.message);
	rm = json_string_value(json_object_get(o.messages, "retire-tke-components"));
	check(rm && (!strncmp(rm, "skipped", 7) || !strncmp(rm, "not needed", 10)));
	check(nodeselector_retired("coexist", "kube-proxy") == 0);
	check(nodeselector_retired("coexist", "ip-masq-agent") == 0);
	check_str(cilium_config("coexist", "kube-proxy-replacement", buf, sizeof buf), "false");
	check_str(cilium_config("coexist", "cni-chaining-target", buf, sizeof buf), "multus-cni");
	run_out_clear(&o);
}

static long pods_on(const char *cluster, const char *prefix, int *ready)
{
	long status = 0;
	char *body = NULL;
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/objects/core/pods", cluster);
	long n = 0;
	*ready = 0;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		json_t *j = json_loads(body, 0, NULL);
		const char *k;
		json_t *p;
		json_object_foreach(j, k, p) {
			const char *name = json_string_value(json_object_get(json_object_get(p, "metadata"), "name"));
			if (name && !strncmp(name, prefix, strlen(prefix))) {
				n++;
				size_t i;
				json_t *c;
				json_array_foreach(json_object_get(json_object_get(p, "status"), "conditions"), i, c)
					if (!strcmp(json_string_value(json_object_get(c, "type")) ? json_string_value(json_object_get(c, "type")) : "", "Ready") &&
					    !strcmp(json_string_value(json_object_get(c, "status")) ? json_string_value(json_object_get(c, "status")) : "", "True"))
						(*ready)++;
			}
		}
		json_decref(j);
	}
	free(body);
	return n;
}

/* Nodes join the empty cluster after the install: a new install job (no
 * changes) waits for the rollout and verify lists the running pods. */
static void test_nodes_join_then_verify(void)
{
	long status = 0;
	char *body = NULL;
	kubesim_proc_admin(ks, "POST", "/_sim/clusters/fresh/nodes", "{\"count\": 2}", &status, &body);
	free(body);
	check(status == 201);
	struct run_out o;
	check(run_install(fresh_id, "{\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"], "
			  "\"set\": [\"operator.replicas=1\"], \"wait_timeout_s\": 20}", &o) == 0);
	check_str(o.state, "succeeded");
	if (strcmp(o.state, "succeeded"))
		printf("# after nodes joined: failed in %s: %s\n", o.failed_phase, o.message);
	const char *wstate = json_string_value(json_object_get(json_object_get(o.result, "wait"), "state"));
	check(wstate == NULL || strcmp(wstate, "waiting for nodes") != 0);
	json_t *pods = json_object_get(json_object_get(o.result, "verify"), "pods");
	size_t i;
	json_t *row;
	int agents = 0, envoys = 0, operators = 0, not_running = 0;
	json_array_foreach(pods, i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		const char *ready = json_string_value(json_object_get(row, "ready"));
		const char *st = json_string_value(json_object_get(row, "status"));
		if (!name || !ready || !st)
			continue;
		if (!strncmp(name, "cilium-operator-", 16))
			operators++;
		else if (!strncmp(name, "cilium-envoy-", 13))
			envoys++;
		else if (!strncmp(name, "cilium-", 7))
			agents++;
		if (strcmp(st, "Running") || ready[0] == '0' || strchr(ready, '/') == NULL ||
		    strcmp(ready, strchr(ready, '/') + 1) < 0)
			not_running++;
		if (strcmp(st, "Running"))
			printf("# pod %s %s %s\n", name, ready, st);
	}
	note("after 2 nodes joined: verify lists %zu pods (%d agents, %d envoy, %d operator)",
	     json_array_size(pods), agents, envoys, operators);
	note_phase_stats("install after 2 nodes joined", &o);
	check(agents == 2 && envoys == 2 && operators == 1);
	check(not_running == 0);
	/* The retired TKE components are still there and run nowhere. */
	const char *names[] = { "kube-proxy", "tke-cni-agent", "ip-masq-agent" };
	for (int k = 0; k < 3; k++) {
		int ready = 0;
		check(nodeselector_retired("fresh", names[k]) == 1);
		check(pods_on("fresh", names[k], &ready) == 0);
	}
	check(sim_release_count("fresh") == 1);
	run_out_clear(&o);
}

/* Follow-ups on the installed cluster (with nodes): masquerade and
 * CiliumEndpointSlice change cilium-config, so the agents are restarted
 * like `kubectl rollout restart`; an explicit cluster level changes the APF
 * shares; the release becomes revision 2 (an upgrade, as helm would). */
static void test_followups_upgrade(void)
{
	json_t *ds0 = sim_object("fresh", "apps/daemonsets", "kube-system", "cilium");
	long gen0 = (long)json_integer_value(json_object_get(json_object_get(ds0, "metadata"), "generation"));
	json_decref(ds0);
	struct run_out o;
	check(run_job(fresh_id, "upgrade",
		      "{\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"], \"set\": [\"operator.replicas=1\"], "
		      "\"masquerade\": {\"vpc_cidr\": \"10.0.0.0/16\"}, \"endpoint_slice\": true, \"cluster_level\": \"L1000\"}",
		      &o) == 0);
	check_str(o.state, "succeeded");
	if (strcmp(o.state, "succeeded"))
		printf("# follow-ups failed in %s: %s\n", o.failed_phase, o.message);
	char buf[128];
	check_str(cilium_config("fresh", "enable-ipv4-masquerade", buf, sizeof buf), "true");
	check_str(cilium_config("fresh", "enable-bpf-masquerade", buf, sizeof buf), "true");
	check_str(cilium_config("fresh", "ipv4-native-routing-cidr", buf, sizeof buf), "10.0.0.0/16");
	check_str(cilium_config("fresh", "enable-cilium-endpoint-slice", buf, sizeof buf), "true");
	const char *restarted = json_string_value(json_object_get(json_object_get(o.result, "wait"), "restarted_at"));
	check(restarted != NULL);
	json_t *ds = sim_object("fresh", "apps/daemonsets", "kube-system", "cilium");
	const char *ann = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "metadata"), "annotations"), "kubectl.kubernetes.io/restartedAt"));
	check_str(ann, restarted);
	check((long)json_integer_value(json_object_get(json_object_get(ds, "metadata"), "generation")) > gen0);
	/* Rolled out: every agent pod runs the new template and is ready. */
	const json_t *dst = json_object_get(ds, "status");
	check(json_integer_value(json_object_get(dst, "updatedNumberScheduled")) == 2);
	check(json_integer_value(json_object_get(dst, "numberReady")) == 2);
	json_decref(ds);
	json_t *pl = sim_object("fresh", "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations", NULL, "cilium");
	check(json_integer_value(json_object_get(json_object_get(json_object_get(pl, "spec"), "limited"),
						 "nominalConcurrencyShares")) == 6);
	json_decref(pl);
	/* Helm upgrade semantics: revision 2 deployed, revision 1 superseded. */
	check(sim_release_count("fresh") == 2);
	json_t *s1 = NULL, *s2 = NULL;
	json_t *r1 = sim_release("fresh", 1, &s1), *r2 = sim_release("fresh", 2, &s2);
	check_release_record("fresh", 1, "superseded", r1, s1);
	check_release_record("fresh", 2, "deployed", r2, s2);
	check_str(json_string_value(json_object_get(json_object_get(r2, "config"), "ipv4NativeRoutingCIDR")),
		  "10.0.0.0/16");
	check_str(json_string_value(json_object_get(json_object_get(r2, "info"), "first_deployed")),
		  json_string_value(json_object_get(json_object_get(r1, "info"), "first_deployed")));
	json_decref(r1), json_decref(r2), json_decref(s1), json_decref(s2);
	run_out_clear(&o);
	/* The same upgrade again: nothing changes, no revision 3, no restart. */
	long w0 = sim_writes("fresh");
	check(run_job(fresh_id, "upgrade",
		      "{\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"], \"set\": [\"operator.replicas=1\"], "
		      "\"masquerade\": {\"vpc_cidr\": \"10.0.0.0/16\"}, \"endpoint_slice\": true, \"cluster_level\": \"L1000\"}",
		      &o) == 0);
	check_str(o.state, "succeeded");
	check(sim_writes("fresh") == w0);
	check(sim_release_count("fresh") == 2);
	check(json_object_get(json_object_get(o.result, "wait"), "restarted_at") == NULL);
	run_out_clear(&o);
}

/*
 * A worker dies during the cilium phase: the real runner runs the job in
 * a child process, which is SIGKILLed while an apply of the cilium
 * DaemonSet hangs (kubesim fault), after some chart objects were written
 * and before the release record. The job's lease expires; this process
 * claims it (attempt 2, new lease) and runs it with the runner: it resumes
 * at the cilium phase and completes, with one release record and every
 * object once.
 */
static void test_worker_killed_mid_cilium(void)
{
	char id[DB_ID_LEN], err[256];
	check(make_cluster("killed", "tke", id) == 0);
	long status = 0;
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/killed/faults",
			   "{\"hang_next\": 1, \"verbs\": [\"patch\"], \"path_contains\": \"/daemonsets/cilium-envoy\"}",
			   &status, NULL);
	check(status == 200);
	json_t *params = json_loads(FRESH_PARAMS, 0, NULL);
	struct db_job_new req = { .tenant_id = tenant_id, .cluster_id = id, .kind = "install", .params = params };
	char job_id[DB_ID_LEN], active[DB_ID_LEN];
	check(db_job_enqueue(conn, &req, job_id, active, err, sizeof err) == DB_JOB_CREATED);
	json_decref(params);
	struct db_job_claim claim;
	check(db_job_claim(conn, "worker-a", 2, &claim, err, sizeof err) == 1);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* The doomed worker: its own connection, the real runner. */
		char url[512];
		snprintf(url, sizeof url, "%s", getenv("INSTALL_TEST_DB_URL"));
		PGconn *c2 = PQconnectdb(url);
		struct runner_flags flags;
		atomic_init(&flags.lease_lost, 0);
		atomic_init(&flags.cancel_requested, 0);
		app.cfg.lease_seconds = 2;
		runner_run_job(&app, c2, &claim, &flags);
		_exit(0);   /* not reached while the apply hangs */
	}
	check(pid > 0);
	/* Wait until the child is stuck on the hanging apply, then kill it. */
	long injected = 0;
	for (int i = 0; i < 300 && injected < 1; i++) {
		char *body = NULL;
		kubesim_proc_admin(ks, "GET", "/_sim/clusters/killed/stats", NULL, &status, &body);
		json_t *st = json_loads(body ? body : "{}", 0, NULL);
		injected = (long)json_integer_value(json_object_get(st, "faults_injected"));
		json_decref(st);
		free(body);
		if (injected < 1) {
			struct timespec ts = { 0, 50000000L };
			nanosleep(&ts, NULL);
		}
	}
	check(injected == 1);
	kill(pid, SIGKILL);
	int wst = 0;
	waitpid(pid, &wst, 0);
	check(WIFSIGNALED(wst));
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/killed/faults", "{}", &status, NULL);
	/* What the dead worker left: some chart objects and its own
	 * pending-install record (Helm's lock), which the takeover resumes. */
	json_t *left = sim_object("killed", "core/configmaps", "kube-system", "cilium-config");
	check(left != NULL);
	json_decref(left);
	check(sim_release_count("killed") == 1);
	json_t *pending = sim_release("killed", 1, NULL);
	check_str(json_string_value(json_object_get(json_object_get(pending, "info"), "status")), "pending-install");
	json_decref(pending);
	db_job_claim_clear(&claim);

	/* Takeover after the lease expires, as another worker would. */
	struct db_job_claim c2;
	int got = 0;
	for (int i = 0; i < 100 && got != 1; i++) {
		got = db_job_claim(conn, "worker-b", 300, &c2, err, sizeof err);
		if (got != 1) {
			struct timespec ts = { 0, 100000000L };
			nanosleep(&ts, NULL);
		}
	}
	check(got == 1);
	if (got != 1)
		return;
	check_str(c2.id, job_id);
	check(c2.attempt == 2);
	struct runner_flags flags;
	atomic_init(&flags.lease_lost, 0);
	atomic_init(&flags.cancel_requested, 0);
	app.cfg.lease_seconds = 300;
	check(runner_run_job(&app, conn, &c2, &flags) == 0);
	char state[32] = "", q[300];
	snprintf(q, sizeof q, "SELECT state FROM jobs WHERE id = '%s'", job_id);
	coredb_value(conn, q, state, sizeof state);
	check_str(state, "succeeded");
	snprintf(q, sizeof q, "SELECT count(*) FROM job_phases WHERE job_id = '%s' AND state = 'succeeded'", job_id);
	char nsucc[16] = "";
	coredb_value(conn, q, nsucc, sizeof nsucc);
	int n;
	install_phase_table(&n);
	check(atoi(nsucc) == n);
	/* One release record, every object of its manifest exactly once. */
	check(sim_release_count("killed") == 1);
	json_t *secret = NULL;
	json_t *rel = sim_release("killed", 1, &secret);
	check_release_record("killed", 1, "deployed", rel, secret);
	check_manifest_objects("killed", rel, "quay.io/cilium/");
	check_cni_config("killed", rel, "cni-config");
	json_decref(rel), json_decref(secret);
	note("worker killed mid-cilium: job resumed by attempt %d and succeeded", c2.attempt);
	db_job_claim_clear(&c2);
}

int main(void)
{
	char url[512], why[512];
	if (coredb_create("ferry_install", url, sizeof url, why, sizeof why) < 0) {
		test_skip("install_phases", why);
		return test_summary();
	}
	setenv("INSTALL_TEST_DB_URL", url, 1);
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
			   "ipvs=tke-ipvs", "fresh=tke-fresh", "dry=tke-fresh", "faulty=tke-fresh", "mirror=tke-fresh",
			   "keep=tke-fresh", "coexist=tke-fresh", "killed=tke-fresh", "ipvs2=tke-ipvs", NULL },
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
	test_run("install_dry_run_after_install", test_dry_run_after_install);
	test_run("install_dry_run", test_dry_run_changes_nothing);
	test_run("install_image_mirror_cni_name", test_image_mirror_and_cni_name);
	test_run("install_keep_kube_proxy", test_keep_kube_proxy);
	test_run("install_nodes_join_then_verify", test_nodes_join_then_verify);
	test_run("install_followups_upgrade", test_followups_upgrade);
	test_run("install_with_20pct_faults", test_faults_still_complete);
	test_run("install_worker_killed_mid_cilium", test_worker_killed_mid_cilium);

	kubesim_proc_stop(ks);
	keyring_free(app.keys);
	PQfinish(conn);
	coredb_drop(url);
	kube_global_cleanup();
	return test_summary();
}
