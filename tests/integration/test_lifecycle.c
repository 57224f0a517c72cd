/*
 * Integration test of the release lifecycle (issue 10) against kubesim and
 * a real PostgreSQL (tests/run provides both): upgrades as helm upgrade
 * does them (values reuse modes, objects no longer rendered deleted, keep
 * annotations honoured, previous revision superseded, max_history, a failed
 * apply leaving the revision failed, Helm's pending-state lock), the
 * revisions recorded in PostgreSQL and the cluster's release facts.
 *
 * Jobs run through the real runner (runner_run_job) exactly as a worker
 * runs them: enqueue, claim, run until the job is finished (a deferred
 * retry is claimed again after its short backoff). The charts are the real
 * archives of $FERRY_SHARED/charts.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/clusters.h"
#include "db/dbq.h"
#include "db/jobs.h"
#include "db/releases.h"
#include "server/app.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/yamljson.h"
#include "server/install/phases.h"
#include "server/install/release.h"
#include "server/install/runner.h"
#include "server/kube/client.h"
#include "server/kube/ops.h"
#include "tests/integration/coredb.h"
#include "tests/kubesim/kubesim_proc.h"
#include "tests/unit/testlib.h"

#include <stdarg.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static struct kubesim_proc *ks;
static PGconn *conn;
static char db_url[512];
static struct app app;
/* The release namespace of the cluster under test (the profile's). */
static const char *rns = "kube-system";
static char tenant_id[DB_ID_LEN], other_tenant[DB_ID_LEN];

/* A new kubesim cluster name (the profile's scenario: tke-fresh, k3s,
 * generic) and its cluster row. */
static int make_cluster(const char *name, const char *profile, char id[DB_ID_LEN])
{
	char body[200];
	long status = 0;
	snprintf(body, sizeof body, "{\"name\": \"%s\", \"scenario\": \"%s\"}", name,
		 !strcmp(profile, "tke") ? "tke-fresh" : profile);
	if (kubesim_proc_admin(ks, "POST", "/_sim/clusters", body, &status, NULL) != 0 || status != 201) {
		printf("# kubesim cluster %s: %ld\n", name, status);
		return -1;
	}
	char *server = kubesim_proc_server_url(ks, name);
	char *token = kubesim_proc_read(ks, name, "token");
	char *ca = kubesim_proc_read(ks, "", "ca.crt");
	int ok = -1;
	if (server && token && ca) {
		token[strcspn(token, "\r\n")] = 0;
		json_t *cred = json_pack("{s:s}", "token", token);
		char *plain = json_dumps(cred, JSON_COMPACT);
		char *sealed = crypto_seal(app.keys, plain, strlen(plain));
		const char *p[7] = { tenant_id, name, profile, server, ca, sealed, keyring_current_id(app.keys) };
		PGresult *r = PQexecParams(conn,
			"INSERT INTO clusters (tenant_id, name, profile, api_server, ca_bundle, credentials, credentials_key_id) "
			"VALUES ($1::uuid, $2, $3, $4, $5, $6, $7) RETURNING id", 7, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			snprintf(id, DB_ID_LEN, "%s", PQgetvalue(r, 0, 0));
			ok = 0;
		} else {
			printf("# insert cluster: %s", PQerrorMessage(conn));
		}
		PQclear(r);
		free(plain), free(sealed), json_decref(cred);
	}
	free(server), free(token), free(ca);
	return ok;
}

/* A finished job: state, error, result. */
struct job_out {
	char id[DB_ID_LEN];
	char state[16];
	char error[1024];
	json_t *result;
};

static void job_out_clear(struct job_out *o)
{
	json_decref(o->result);
	memset(o, 0, sizeof(*o));
}

/* Enqueue a job and run it through the real runner until it finishes. */
static int run_job(const char *cluster_id, const char *kind, const char *params_json, struct job_out *out)
{
	memset(out, 0, sizeof(*out));
	json_t *params = json_loads(params_json, 0, NULL);
	struct db_job_new req = { .tenant_id = tenant_id, .cluster_id = cluster_id, .kind = kind,
				  .params = params };
	char active[DB_ID_LEN], err[256];
	int e = db_job_enqueue(conn, &req, out->id, active, err, sizeof err);
	json_decref(params);
	if (e != DB_JOB_CREATED) {
		printf("# enqueue %s: %d %s\n", kind, e, err);
		return -1;
	}
	for (int round = 0; round < 200; round++) {
		struct db_job_claim claim;
		int got = db_job_claim(conn, "test", 300, &claim, err, sizeof err);
		if (got == 1) {
			struct runner_flags flags;
			atomic_init(&flags.lease_lost, 0);
			atomic_init(&flags.cancel_requested, 0);
			runner_run_job(&app, conn, &claim, &flags);
			db_job_claim_clear(&claim);
		}
		char q[200];
		snprintf(q, sizeof q, "SELECT state FROM jobs WHERE id = '%s'", out->id);
		coredb_value(conn, q, out->state, sizeof out->state);
		if (!strcmp(out->state, "succeeded") || !strcmp(out->state, "failed") ||
		    !strcmp(out->state, "cancelled"))
			break;
		struct timespec ts = { 0, 50000000L };
		nanosleep(&ts, NULL);
	}
	json_t *job = db_job_get_json(conn, tenant_id, out->id, err, sizeof err);
	const char *error = json_string_value(json_object_get(job, "error"));
	snprintf(out->error, sizeof out->error, "%s", error ? error : "");
	out->result = json_incref(json_object_get(job, "result"));
	json_decref(job);
	if (strcmp(out->state, "succeeded"))
		printf("# job %s %s: %s\n", kind, out->state, out->error);
	return 0;
}

static long sim_writes(const char *cluster)
{
	char path[200];
	snprintf(path, sizeof path, "/_sim/clusters/%s/stats", cluster);
	long status = 0, w = -1;
	char *body = NULL;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200) {
		json_t *j = json_loads(body, 0, NULL);
		w = (long)json_integer_value(json_object_get(j, "writes"));
		json_decref(j);
	}
	free(body);
	return w;
}

/* Every object of group/resource on cluster: {"ns/name": obj} (new ref). */
static json_t *sim_dump(const char *cluster, const char *group_res)
{
	char path[300];
	snprintf(path, sizeof path, "/_sim/clusters/%s/objects/%s", cluster, group_res);
	long status = 0;
	char *body = NULL;
	json_t *j = NULL;
	if (kubesim_proc_admin(ks, "GET", path, NULL, &status, &body) == 0 && status == 200)
		j = json_loads(body, 0, NULL);
	free(body);
	return j ? j : json_object();
}

static json_t *sim_object(const char *cluster, const char *group_res, const char *ns, const char *name)
{
	json_t *all = sim_dump(cluster, group_res);
	char key[300];
	snprintf(key, sizeof key, "%s/%s", ns ? ns : "", name);
	json_t *o = json_incref(json_object_get(all, key));
	json_decref(all);
	return o;
}

/* "group/resources" of apiVersion/kind as kubesim's dump names them. */
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
	else if (k > 0 && res[k - 1] == 's')
		snprintf(res + k, sizeof res - k, "es");
	else
		snprintf(res + k, sizeof res - k, "s");
	snprintf(out, len, "%s/%s", group, res);
}

static int cluster_scoped(const char *kind)
{
	static const char *const k[] = { "ClusterRole", "ClusterRoleBinding", "Namespace",
					 "CustomResourceDefinition", "FlowSchema",
					 "PriorityLevelConfiguration", NULL };
	for (int i = 0; k[i]; i++)
		if (!strcmp(kind, k[i]))
			return 1;
	return 0;
}

/* The live copy of a manifest document (NULL when absent). */
static json_t *sim_get(const char *cluster, const json_t *doc)
{
	const char *av = json_string_value(json_object_get(doc, "apiVersion"));
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	const json_t *meta = json_object_get(doc, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (!av || !kind || !name)
		return NULL;
	char gr[300];
	group_resource(av, kind, gr, sizeof gr);
	return sim_object(cluster, gr, cluster_scoped(kind) ? "" : (ns ? ns : rns), name);
}

/* The decoded release record of revision rev (NULL if none). */
static json_t *sim_release(const char *cluster, int rev)
{
	char name[80], err[200];
	snprintf(name, sizeof name, "sh.helm.release.v1.cilium.v%d", rev);
	json_t *sec = sim_object(cluster, "core/secrets", rns, name);
	json_t *rel = sec ? release_from_secret(sec, err, sizeof err) : NULL;
	json_decref(sec);
	return rel;
}

static const char *rel_status(const json_t *rel)
{
	return json_string_value(json_object_get(json_object_get(rel, "info"), "status"));
}

/* Revisions of cluster's release Secrets, as a bit set (1 << rev). */
static long sim_release_revs(const char *cluster)
{
	json_t *all = sim_dump(cluster, "core/secrets");
	const char *k;
	json_t *s;
	long bits = 0;
	json_object_foreach(all, k, s) {
		const json_t *labels = json_object_get(json_object_get(s, "metadata"), "labels");
		const char *owner = json_string_value(json_object_get(labels, "owner"));
		const char *v = json_string_value(json_object_get(labels, "version"));
		if (owner && !strcmp(owner, "helm") && v)
			bits |= 1L << atoi(v);
	}
	json_decref(all);
	return bits;
}

/* A Kubernetes request on cluster with its own token (a person with
 * kubectl). Returns the status. */
static long kube_call(const char *cluster, const char *method, const char *path, const char *ctype,
		      const char *body)
{
	char *server = kubesim_proc_server_url(ks, cluster);
	char *token = kubesim_proc_read(ks, cluster, "token");
	char *ca = kubesim_proc_read(ks, "", "ca.crt");
	token[strcspn(token, "\r\n")] = 0;
	struct kube_client_config cfg = { .server = server, .ca_pem = ca, .token = token };
	char err[256];
	struct kube_client *kc = kube_client_new(&cfg, err, sizeof err);
	struct kube_response resp;
	memset(&resp, 0, sizeof resp);
	long st = -1;
	if (kc && kube_request(kc, method, path, ctype, body, body ? strlen(body) : 0, &resp) == 0)
		st = resp.status;
	kube_response_free(&resp);
	kube_client_free(kc);
	free(server), free(token), free(ca);
	return st;
}

/* The cluster as the API shows it (GET /v1/clusters/{id}). */
static json_t *cluster_json(const char *id)
{
	json_t *c = NULL;
	int version = 0;
	char err[200];
	db_cluster_get(conn, tenant_id, id, &c, &version, err, sizeof err);
	return c;
}

/* GET /v1/clusters/{id}/revisions as the API answers it. */
static json_t *revisions(const char *id)
{
	json_t *out = NULL;
	char err[200];
	db_release_list_json(conn, tenant_id, id, &out, err, sizeof err);
	return out;
}

static const json_t *rev_item(const json_t *list, size_t i)
{
	return json_array_get(json_object_get(list, "items"), i);
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* ---- upgrade ------------------------------------------------------------ */

#define MEDIUM "\"values_yaml\": [\"bpf:\\n  monitorAggregation: medium\\n\"]"
#define INSTALL_182 "{\"chart_version\": \"1.18.2\", " MEDIUM ", " \
	"\"set\": [\"hubble.relay.enabled=true\", \"hubble.ui.enabled=true\"]}"
#define UPGRADE_183 "{\"chart_version\": \"1.18.3\", \"reuse_values\": true, " \
	"\"set\": [\"hubble.ui.enabled=false\"]}"
#define FRESH_183 "{\"chart_version\": \"1.18.3\", " MEDIUM ", " \
	"\"set\": [\"hubble.relay.enabled=true\", \"hubble.ui.enabled=false\"]}"

/* "Kind/name" of every document of a release's manifest, as an object
 * (key -> document). */
static json_t *manifest_set(const json_t *rel)
{
	const char *m = json_string_value(json_object_get(rel, "manifest"));
	char err[200];
	json_t *docs = m ? yaml_stream_to_json(m, strlen(m), err, sizeof err) : NULL;
	json_t *set = json_object();
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d))
			continue;
		char key[300];
		snprintf(key, sizeof key, "%s/%s", jstr(d, "kind"),
			 jstr(json_object_get(d, "metadata"), "name"));
		json_object_set(set, key, d);
	}
	json_decref(docs);
	return set;
}

static const json_t *config_at(const json_t *rel, const char *a, const char *b)
{
	const json_t *c = json_object_get(json_object_get(rel, "config"), a);
	return b ? json_object_get(c, b) : c;
}

static const char *ds_image(const char *cluster)
{
	static char img[300];
	json_t *ds = sim_object(cluster, "apps/daemonsets", rns, "cilium");
	const json_t *c = json_array_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "containers"), 0);
	snprintf(img, sizeof img, "%s", jstr(c, "image"));
	json_decref(ds);
	return img;
}

static char upg_id[4][DB_ID_LEN];

/* install 1.18.2 -> upgrade 1.18.3 (reuse_values, hubble UI turned off,
 * one UI object annotated keep by hand) on cluster, compared with a fresh
 * 1.18.3 install with the same values on fresh. */
static void upgrade_case(int slot, const char *cluster, const char *fresh, const char *profile)
{
	char *id = upg_id[slot], fid[DB_ID_LEN], path[300];
	rns = !strcmp(profile, "k3s") ? "cilium" : "kube-system";
	check(make_cluster(cluster, profile, id) == 0);
	struct job_out o;
	check(run_job(id, "install", INSTALL_182, &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	json_t *rel1 = sim_release(cluster, 1);
	check_str(rel_status(rel1), "deployed");
	json_t *revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 1);
	check(json_integer_value(json_object_get(rev_item(revs, 0), "revision")) == 1);
	check_str(jstr(rev_item(revs, 0), "status"), "deployed");
	check_str(jstr(rev_item(revs, 0), "chart_version"), "1.18.2");
	json_decref(revs);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "cilium_version"), "1.18.2");
	check(json_integer_value(json_object_get(c, "release_revision")) == 1);
	check_str(jstr(c, "release_status"), "deployed");
	check(json_is_string(json_object_get(c, "last_success_at")));
	json_decref(c);
	json_t *ui = sim_object(cluster, "apps/deployments", rns, "hubble-ui");
	check(ui != NULL);
	json_decref(ui);

	/* Someone marks one UI object keep, as Helm users do. */
	snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/hubble-ui-nginx", rns);
	check(kube_call(cluster, "PATCH", path,
			"application/merge-patch+json",
			"{\"metadata\":{\"annotations\":{\"helm.sh/resource-policy\":\"keep\"}}}") == 200);

	check(run_job(id, "upgrade", UPGRADE_183, &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 2);
	job_out_clear(&o);
	json_t *rel2 = sim_release(cluster, 2);
	json_decref(rel1);
	rel1 = sim_release(cluster, 1);
	check_str(rel_status(rel2), "deployed");
	check_str(rel_status(rel1), "superseded");
	/* Values reused, the new one on top. */
	check_str(json_string_value(config_at(rel2, "bpf", "monitorAggregation")), "medium");
	check(json_is_true(json_object_get(config_at(rel2, "hubble", "relay"), "enabled")));
	check(json_is_false(json_object_get(config_at(rel2, "hubble", "ui"), "enabled")));

	/* A fresh 1.18.3 install with the same values renders the same set of
	 * objects, and the upgraded cluster holds exactly those (plus the
	 * keep one). */
	check(make_cluster(fresh, profile, fid) == 0);
	check(run_job(fid, "install", FRESH_183, &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	json_t *relf = sim_release(fresh, 1);
	json_t *s1 = manifest_set(rel1), *s2 = manifest_set(rel2), *sf = manifest_set(relf);
	check(json_object_size(sf) > 20);
	check(json_object_size(s2) == json_object_size(sf));
	const char *k;
	json_t *d;
	json_object_foreach(sf, k, d)
		if (!json_object_get(s2, k)) {
			printf("# %s: %s not in the upgraded release\n", cluster, k);
			check(0);
		}
	json_object_update(s1, s2);   /* every object either revision rendered */
	int gone = 0;
	json_object_foreach(s1, k, d) {
		json_t *live = sim_get(cluster, d);
		int want = json_object_get(sf, k) != NULL || !strcmp(k, "ConfigMap/hubble-ui-nginx");
		if ((live != NULL) != want) {
			printf("# %s: %s is %s\n", cluster, k, live ? "left over" : "missing");
			check(0);
		}
		if (!live)
			gone++;
		json_decref(live);
	}
	check(gone >= 4);   /* the UI's Deployment, Service, ClusterRole(Binding), ServiceAccount */
	json_t *keep = sim_object(cluster, "core/configmaps", rns, "hubble-ui-nginx");
	check(keep != NULL);
	json_decref(keep);
	check_str(ds_image(cluster), ds_image(fresh));
	check(strstr(ds_image(cluster), "v1.18.3") != NULL);

	/* PostgreSQL and the cluster row follow. */
	revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 2);
	check(json_integer_value(json_object_get(rev_item(revs, 0), "revision")) == 2);
	check_str(jstr(rev_item(revs, 0), "status"), "deployed");
	check_str(jstr(rev_item(revs, 0), "chart_version"), "1.18.3");
	check_str(jstr(rev_item(revs, 1), "status"), "superseded");
	json_decref(revs);
	json_t *full = NULL;
	char err[200];
	check(db_release_get_json(conn, tenant_id, id, 2, &full, NULL, err, sizeof err) == DB_OK);
	check_str(json_string_value(json_object_get(json_object_get(json_object_get(full, "values"), "bpf"),
						    "monitorAggregation")), "medium");
	check(strstr(jstr(full, "manifest"), "kind: DaemonSet") != NULL);
	json_decref(full);
	c = cluster_json(id);
	check_str(jstr(c, "cilium_version"), "1.18.3");
	check(json_integer_value(json_object_get(c, "release_revision")) == 2);
	json_decref(c);
	json_decref(s1), json_decref(s2), json_decref(sf);
	json_decref(rel1), json_decref(rel2), json_decref(relf);
}

static void test_upgrade_tke(void) { upgrade_case(0, "up-tke", "fresh-tke", "tke"); }
static void test_upgrade_k3s(void) { upgrade_case(1, "up-k3s", "fresh-k3s", "k3s"); }
static void test_upgrade_generic(void) { upgrade_case(2, "up-gen", "fresh-gen", "generic"); }

/* 1.15.1 -> 1.18.2 -> 1.18.3: the cluster ends with exactly the objects a
 * fresh 1.18.3 install renders, none left over from the older charts. */
static void chain_case(const char *cluster, const char *fresh, const char *profile)
{
	char id[DB_ID_LEN], fid[DB_ID_LEN];
	rns = !strcmp(profile, "k3s") ? "cilium" : "kube-system";
	check(make_cluster(cluster, profile, id) == 0);
	struct job_out o;
	static const char *const versions[] = { "1.15.1", "1.18.2", "1.18.3" };
	json_t *seen = json_object();   /* every object any revision rendered */
	for (int v = 0; v < 3; v++) {
		char params[200];
		snprintf(params, sizeof params, "{\"chart_version\": \"%s\"}", versions[v]);
		check(run_job(id, v ? "upgrade" : "install", params, &o) == 0);
		check_str(o.state, "succeeded");
		check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == v + 1);
		job_out_clear(&o);
		json_t *rel = sim_release(cluster, v + 1);
		json_t *set = manifest_set(rel);
		json_object_update(seen, set);
		json_decref(set), json_decref(rel);
	}
	check(make_cluster(fresh, profile, fid) == 0);
	check(run_job(fid, "install", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	json_t *relf = sim_release(fresh, 1);
	json_t *sf = manifest_set(relf);
	check(json_object_size(sf) > 20);
	const char *k;
	json_t *d;
	int old_only = 0;
	json_object_foreach(seen, k, d) {
		json_t *live = sim_get(cluster, d);
		int want = json_object_get(sf, k) != NULL;
		if (!want)
			old_only++;
		if ((live != NULL) != want) {
			printf("# %s: %s is %s\n", cluster, k, live ? "left over" : "missing");
			check(0);
		}
		json_decref(live);
	}
	printf("# %s: %d object(s) of the older charts are gone\n", cluster, old_only);
	check_str(ds_image(cluster), ds_image(fresh));
	json_decref(seen), json_decref(sf), json_decref(relf);
}

static void test_chain_k3s(void) { chain_case("chain-k3s", "chain-k3s-fresh", "k3s"); }
static void test_chain_generic(void) { chain_case("chain-gen", "chain-gen-fresh", "generic"); }

/* Helm's default values mode: an upgrade without values reuses the
 * previous ones, so nothing changes and no revision is written. */
static void test_upgrade_default_reuses(void)
{
	rns = "kube-system";
	long w0 = sim_writes("up-tke");
	struct job_out o;
	check(run_job(upg_id[0], "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 2);
	job_out_clear(&o);
	check(sim_writes("up-tke") - w0 == 0);
	/* reset_values: only the given values (the profile's stay). */
	check(run_job(upg_id[0], "upgrade", "{\"chart_version\": \"1.18.3\", \"reset_values\": true, "
		      "\"dry_run\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	/* The dry run would delete hubble-relay (no longer enabled). */
	int relay_deleted = 0;
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(json_object_get(o.result, "dry_run"), "objects"), i, x)
		if (!strcmp(jstr(x, "action"), "deleted") && !strcmp(jstr(x, "name"), "hubble-relay") &&
		    !strcmp(jstr(x, "kind"), "Deployment"))
			relay_deleted = 1;
	check(relay_deleted);
	job_out_clear(&o);
	check(sim_writes("up-tke") - w0 == 0);
}

/* max_history: older release records are deleted, in the cluster and in
 * PostgreSQL. */
static void test_max_history(void)
{
	struct job_out o;
	check(run_job(upg_id[0], "upgrade", "{\"chart_version\": \"1.18.3\", \"reuse_values\": true, "
		      "\"set\": [\"operator.replicas=1\"], \"max_history\": 2}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(sim_release_revs("up-tke") == ((1L << 2) | (1L << 3)));
	json_t *revs = revisions(upg_id[0]);
	check(json_array_size(json_object_get(revs, "items")) == 2);
	check(json_integer_value(json_object_get(rev_item(revs, 0), "revision")) == 3);
	check(json_integer_value(json_object_get(rev_item(revs, 1), "revision")) == 2);
	json_decref(revs);
}

/* A refused apply: the revision ends "failed" naming the object; the next
 * upgrade continues with the following revision. */
static void test_failed_apply(void)
{
	rns = "kube-system";
	char id[DB_ID_LEN];
	check(make_cluster("failing", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", INSTALL_182, &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	long status = 0;
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/failing/faults",
			   "{\"fail_next\": 1, \"error_codes\": [422], \"verbs\": [\"patch\"], "
			   "\"path_contains\": \"/deployments/cilium-operator\"}", &status, NULL);
	check(status == 200);
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "cilium-operator") != NULL);
	const json_t *rr = json_object_get(o.result, "release");
	check_str(jstr(rr, "status"), "failed");
	const json_t *fo = json_array_get(json_object_get(rr, "failed_objects"), 0);
	check_str(jstr(fo, "kind"), "Deployment");
	check_str(jstr(fo, "name"), "cilium-operator");
	job_out_clear(&o);
	json_t *r2 = sim_release("failing", 2), *r1 = sim_release("failing", 1);
	check_str(rel_status(r2), "failed");
	check_str(rel_status(r1), "deployed");
	check(strstr(jstr(json_object_get(r2, "info"), "description"), "cilium-operator") != NULL);
	json_decref(r1), json_decref(r2);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "release_status"), "failed");
	check_str(jstr(c, "cilium_version"), "1.18.2");
	json_decref(c);
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/failing/faults", "{}", &status, NULL);
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 3);
	job_out_clear(&o);
	json_t *r3 = sim_release("failing", 3);
	r1 = sim_release("failing", 1);
	check_str(rel_status(r3), "deployed");
	check_str(rel_status(r1), "superseded");
	json_decref(r1), json_decref(r3);

	/* A refused apply during a rollback: revision 4 "failed", 3 stays
	 * deployed. */
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/failing/faults",
			   "{\"fail_next\": 1, \"error_codes\": [422], \"verbs\": [\"patch\"], "
			   "\"path_contains\": \"/deployments/cilium-operator\"}", &status, NULL);
	check(run_job(id, "rollback", "{\"revision\": 1}", &o) == 0);
	check_str(o.state, "failed");
	const json_t *f0 = json_array_get(json_object_get(json_object_get(o.result, "release"), "failed_objects"), 0);
	check_str(jstr(f0, "name"), "cilium-operator");
	job_out_clear(&o);
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/failing/faults", "{}", &status, NULL);
	json_t *r4 = sim_release("failing", 4);
	r3 = sim_release("failing", 3);
	check_str(rel_status(r4), "failed");
	check(strstr(jstr(json_object_get(r4, "info"), "description"), "Rollback \"cilium\" failed") != NULL);
	check_str(rel_status(r3), "deployed");
	json_decref(r3), json_decref(r4);
	c = cluster_json(id);
	check_str(jstr(c, "release_status"), "failed");
	check_str(jstr(c, "cilium_version"), "1.18.3");
	json_decref(c);
}

/* Another tool's pending record (a helm upgrade in flight): refused,
 * nothing written. */
static void test_foreign_pending_refused(void)
{
	char id[DB_ID_LEN];
	check(make_cluster("pending", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", INSTALL_182, &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	/* helm upgrade's pending-upgrade record, as Helm labels it. */
	check(kube_call("pending", "POST", "/api/v1/namespaces/kube-system/secrets", "application/json",
			"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"helm.sh/release.v1\","
			"\"metadata\":{\"name\":\"sh.helm.release.v1.cilium.v2\",\"labels\":{\"name\":\"cilium\","
			"\"owner\":\"helm\",\"status\":\"pending-upgrade\",\"version\":\"2\"}},"
			"\"data\":{\"release\":\"e30=\"}}") == 201);
	long w0 = sim_writes("pending");
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "pending-upgrade") != NULL);
	check(strstr(o.error, "another Helm operation") != NULL);
	job_out_clear(&o);
	check(sim_writes("pending") - w0 == 0);
}

/* Dry runs of rollback and uninstall: what would change, nothing written. */
static void test_dry_runs(void)
{
	rns = "kube-system";
	long w0 = sim_writes("up-tke");
	struct job_out o;
	check(run_job(upg_id[0], "rollback", "{\"revision\": 2, \"dry_run\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	long changed = 0;
	size_t i;
	const json_t *x;
	json_array_foreach(json_object_get(json_object_get(o.result, "dry_run"), "objects"), i, x)
		if (!strcmp(jstr(x, "action"), "changed"))
			changed++;
	check(changed >= 1);   /* operator.replicas goes back */
	job_out_clear(&o);
	check(run_job(upg_id[0], "uninstall", "{\"dry_run\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	long deleted = 0;
	json_array_foreach(json_object_get(json_object_get(o.result, "dry_run"), "objects"), i, x)
		if (!strcmp(jstr(x, "action"), "deleted"))
			deleted++;
	check(deleted > 20);
	job_out_clear(&o);
	check(sim_writes("up-tke") == w0);
	json_t *revs = revisions(upg_id[0]);
	check(json_integer_value(json_object_get(rev_item(revs, 0), "revision")) == 3);
	check_str(jstr(rev_item(revs, 0), "status"), "deployed");
	json_decref(revs);
}

/* Tenant scope of the revision queries. */
static void test_revisions_scoped(void)
{
	json_t *out = NULL;
	char err[200];
	check(db_release_list_json(conn, other_tenant, upg_id[0], &out, err, sizeof err) == DB_NOT_FOUND);
	check(db_release_get_json(conn, other_tenant, upg_id[0], 3, &out, NULL, err, sizeof err) == DB_NOT_FOUND);
	check(db_release_get_json(conn, tenant_id, upg_id[0], 99, &out, NULL, err, sizeof err) == DB_NOT_FOUND);
	check(db_release_get_json(conn, tenant_id, upg_id[0], 3, &out, NULL, err, sizeof err) == DB_OK);
	json_decref(out);
}

/* ---- rollback and uninstall ------------------------------------------------- */

static int retired(const char *cluster, const char *ds_name)
{
	json_t *ds = sim_object(cluster, "apps/daemonsets", "kube-system", ds_name);
	const char *v = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "nodeSelector"), "label-not-exist"));
	int r = ds ? (v && !strcmp(v, "node-not-exist")) : -1;
	json_decref(ds);
	return r;
}

static const char *eni_image(const char *cluster)
{
	static char img[300];
	json_t *ds = sim_object(cluster, "apps/daemonsets", "kube-system", "tke-eni-agent");
	const json_t *c = json_array_get(json_object_get(json_object_get(json_object_get(
		json_object_get(ds, "spec"), "template"), "spec"), "containers"), 0);
	snprintf(img, sizeof img, "%s", jstr(c, "image"));
	json_decref(ds);
	return img;
}

/* Objects in the cluster carrying the release's annotation. */
static long release_objects_left(const char *cluster)
{
	static const char *const res[] = { "apps/daemonsets", "apps/deployments", "core/configmaps", "core/secrets",
		"core/services", "core/serviceaccounts", "rbac.authorization.k8s.io/clusterroles",
		"rbac.authorization.k8s.io/clusterrolebindings", "rbac.authorization.k8s.io/roles",
		"rbac.authorization.k8s.io/rolebindings", NULL };
	long n = 0;
	for (int i = 0; res[i]; i++) {
		json_t *all = sim_dump(cluster, res[i]);
		const char *k;
		json_t *o;
		json_object_foreach(all, k, o) {
			const char *rn = jstr(json_object_get(json_object_get(o, "metadata"), "annotations"),
					      "meta.helm.sh/release-name");
			const json_t *labels = json_object_get(json_object_get(o, "metadata"), "labels");
			if (!strcmp(rn, "cilium") || !strcmp(jstr(labels, "owner"), "helm")) {
				printf("# %s: %s %s left\n", cluster, res[i], k);
				n++;
			}
		}
		json_decref(all);
	}
	return n;
}

/* The sequence: install 1.18.2 -> upgrade 1.18.3 -> rollback to 1
 * (revision 3, from the stored manifest with no chart archive reachable)
 * -> uninstall -> install again. */
static void sequence_case(const char *cluster, const char *profile)
{
	char id[DB_ID_LEN];
	rns = !strcmp(profile, "k3s") ? "cilium" : "kube-system";
	int tke = !strcmp(profile, "tke");
	check(make_cluster(cluster, profile, id) == 0);
	struct job_out o;
	check(run_job(id, "install", "{\"chart_version\": \"1.18.2\", " MEDIUM "}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	char img182[300];
	snprintf(img182, sizeof img182, "%s", ds_image(cluster));
	check(strstr(img182, "v1.18.2") != NULL);
	json_t *full = NULL;
	char err[200];
	/* The install recorded its surroundings with revision 1. */
	check(db_release_get_json(conn, tenant_id, id, 1, &full, NULL, err, sizeof err) == DB_OK);
	const json_t *sur = json_object_get(full, "surroundings");
	if (tke) {
		check(json_array_size(json_object_get(sur, "retired")) >= 2);
		check_str(jstr(sur, "eni_agent_image"), "ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.8.0-rc.0");
		check_str(jstr(sur, "eni_agent_image_before"), "ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.7.5");
		check(json_is_object(json_object_get(sur, "cni_config")));
	}
	check(json_is_object(json_object_get(sur, "apf")));
	json_decref(full);

	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(strstr(ds_image(cluster), "v1.18.3") != NULL);
	if (tke) {
		/* Someone changes the surroundings by hand. */
		check(kube_call(cluster, "PATCH", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
				"application/json-patch+json",
				"[{\"op\":\"remove\",\"path\":\"/spec/template/spec/nodeSelector/label-not-exist\"}]") == 200);
		check(retired(cluster, "kube-proxy") == 0);
	}

	/* Bad input first: nothing written. */
	long w0 = sim_writes(cluster);
	check(run_job(id, "rollback", "{\"revision\": 7}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "no revision 7") && strstr(o.error, "revisions: 2, 1"));
	job_out_clear(&o);
	check(sim_writes(cluster) == w0);

	/* Rollback to 1 with no chart archive anywhere. */
	const char *charts = app.cfg.charts_dir;
	app.cfg.charts_dir = "/nonexistent";
	check(run_job(id, "rollback", "{\"revision\": 1}", &o) == 0);
	app.cfg.charts_dir = charts;
	check_str(o.state, "succeeded");
	const json_t *rr = json_object_get(o.result, "release");
	check(json_integer_value(json_object_get(rr, "revision")) == 3);
	check(json_integer_value(json_object_get(rr, "rolled_back_to")) == 1);
	job_out_clear(&o);
	check_str(ds_image(cluster), img182);
	json_t *r3 = sim_release(cluster, 3), *r2 = sim_release(cluster, 2), *r1 = sim_release(cluster, 1);
	check_str(rel_status(r3), "deployed");
	check_str(rel_status(r2), "superseded");
	check_str(jstr(json_object_get(r3, "info"), "description"), "Rollback to 1");
	check_str(json_string_value(config_at(r3, "bpf", "monitorAggregation")), "medium");
	check_str(jstr(r3, "manifest"), jstr(r1, "manifest"));
	json_decref(r1), json_decref(r2), json_decref(r3);
	json_t *revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 3);
	check(json_integer_value(json_object_get(rev_item(revs, 0), "revision")) == 3);
	check_str(jstr(rev_item(revs, 0), "status"), "deployed");
	check_str(jstr(rev_item(revs, 0), "chart_version"), "1.18.2");
	check_str(jstr(rev_item(revs, 0), "description"), "Rollback to 1");
	json_decref(revs);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "cilium_version"), "1.18.2");
	check(json_integer_value(json_object_get(c, "release_revision")) == 3);
	json_decref(c);
	if (tke)
		check(retired(cluster, "kube-proxy") == 1);   /* back as at revision 1 */

	/* Uninstall. */
	if (!tke) {
		/* Cilium is the only pod network here: refused without force. */
		w0 = sim_writes(cluster);
		check(run_job(id, "uninstall", "{}", &o) == 0);
		check_str(o.state, "failed");
		check(strstr(o.error, "only pod network") && strstr(o.error, "force"));
		job_out_clear(&o);
		check(sim_writes(cluster) == w0);
	}
	check(run_job(id, "uninstall", tke ? "{\"restore_eni_agent\": true}" : "{\"force\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(release_objects_left(cluster) == 0);
	check(sim_release_revs(cluster) == 0);
	json_t *cm = sim_object(cluster, "core/configmaps", "kube-system", "cni-config");
	check(cm == NULL);
	json_decref(cm);
	json_t *fs = sim_object(cluster, "flowcontrol.apiserver.k8s.io/flowschemas", "", "cilium");
	check(fs == NULL);
	json_decref(fs);
	if (tke) {
		check(retired(cluster, "kube-proxy") == 0);
		check(retired(cluster, "tke-cni-agent") == 0);
		check(retired(cluster, "ip-masq-agent") == 0);
		check_str(eni_image(cluster), "ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.7.5");
	}
	revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 0);
	json_decref(revs);
	c = cluster_json(id);
	check(json_is_null(json_object_get(c, "cilium_version")));
	check(json_is_null(json_object_get(c, "release_revision")));
	json_decref(c);

	/* Uninstall and rollback of a cluster with no release: clear errors,
	 * nothing written. */
	w0 = sim_writes(cluster);
	check(run_job(id, "uninstall", "{\"force\": true}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "no release cilium") != NULL);
	job_out_clear(&o);
	check(run_job(id, "rollback", "{}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "no release cilium") != NULL);
	job_out_clear(&o);
	check(sim_writes(cluster) == w0);

	/* Install again. */
	check(run_job(id, "install", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 1);
	job_out_clear(&o);
	check(strstr(ds_image(cluster), "v1.18.3") != NULL);
	if (tke)
		check(retired(cluster, "kube-proxy") == 1);
}

static void test_sequence_tke(void) { sequence_case("seq-tke", "tke"); }
static void test_sequence_k3s(void) { sequence_case("seq-k3s", "k3s"); }
static void test_sequence_generic(void) { sequence_case("seq-gen", "generic"); }

/* uninstall with keep_history keeps the records, the newest "uninstalled". */
static void test_uninstall_keep_history(void)
{
	char id[DB_ID_LEN];
	rns = "kube-system";
	check(make_cluster("keephist", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(run_job(id, "uninstall", "{\"keep_history\": true}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	json_t *r1 = sim_release("keephist", 1);
	check_str(rel_status(r1), "uninstalled");
	json_decref(r1);
	json_t *revs = revisions(id);
	check_str(jstr(rev_item(revs, 0), "status"), "uninstalled");
	json_decref(revs);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "release_status"), "uninstalled");
	check(json_is_null(json_object_get(c, "cilium_version")));
	json_decref(c);
	json_t *ds = sim_object("keephist", "apps/daemonsets", "kube-system", "cilium");
	check(ds == NULL);
	json_decref(ds);
}

/* ---- adopt ------------------------------------------------------------------ */

static struct kube_client *client_for(const char *cluster)
{
	char *server = kubesim_proc_server_url(ks, cluster);
	char *token = kubesim_proc_read(ks, cluster, "token");
	char *ca = kubesim_proc_read(ks, "", "ca.crt");
	token[strcspn(token, "\r\n")] = 0;
	struct kube_client_config cfg = { .server = server, .ca_pem = ca, .token = token };
	char err[256];
	struct kube_client *kc = kube_client_new(&cfg, err, sizeof err);
	free(server), free(token), free(ca);
	return kc;
}

/* The seed procedure by hand: render the chart, apply every object with
 * server-side apply under field manager "helm" with Helm's ownership tags,
 * then the release Secret revision 1 (no ferry.io/managed label), with
 * chart_name as the chart's name and status as its status. */
static int hand_install(const char *cluster, const char *ns, const char *version, const char *values_json,
			const char *chart_name_, const char *status)
{
	char path[700], err[512];
	snprintf(path, sizeof path, "%s/cilium-%s.tgz", app.cfg.charts_dir, version);
	size_t len = 0;
	char *tgz = read_file_all(path, &len);
	struct chart *ch = tgz ? chart_load_archive(tgz, len, err, sizeof err) : NULL;
	free(tgz);
	if (!ch)
		return -1;
	json_t *values = json_loads(values_json, 0, NULL);
	struct chart_render_opts ro = { .release_name = "cilium", .namespace_ = ns, .revision = 1 };
	struct chart_render *rd = chart_render(ch, values, &ro, err, sizeof err);
	struct kube_client *kc = client_for(cluster);
	struct kube_ops *ops = kube_ops_new(kc, NULL);
	int bad = !rd;
	size_t i;
	const json_t *d;
	json_array_foreach(rd ? chart_render_documents(rd) : NULL, i, d) {
		json_t *obj = json_deep_copy(json_object_get(d, "object"));
		json_t *meta = json_object_get(obj, "metadata");
		if (!json_object_get(meta, "labels"))
			json_object_set_new(meta, "labels", json_object());
		if (!json_object_get(meta, "annotations"))
			json_object_set_new(meta, "annotations", json_object());
		json_object_set_new(json_object_get(meta, "labels"), "app.kubernetes.io/managed-by", json_string("Helm"));
		json_object_set_new(json_object_get(meta, "annotations"), "meta.helm.sh/release-name", json_string("cilium"));
		json_object_set_new(json_object_get(meta, "annotations"), "meta.helm.sh/release-namespace", json_string(ns));
		char *coll = NULL, *item = NULL;
		if (kube_ops_object_paths(ops, obj, ns, &coll, &item) == 0) {
			char url[800];
			snprintf(url, sizeof url, "%s?fieldManager=helm&force=true", item);
			char *body = json_dumps(obj, JSON_COMPACT);
			struct kube_response resp;
			memset(&resp, 0, sizeof resp);
			if (kube_request(kc, "PATCH", url, "application/apply-patch+yaml", body, strlen(body), &resp) != 0 ||
			    resp.status >= 300) {
				printf("# hand install: %s: %ld\n", item, resp.status);
				bad = 1;
			}
			kube_response_free(&resp);
			free(body);
		}
		free(coll), free(item);
		json_decref(obj);
	}
	if (!bad) {
		json_t *meta = json_pack("{s:s, s:s, s:s, s:s}", "name", chart_name_, "version", version,
					 "appVersion", version, "apiVersion", "v2");
		struct release_info ri = { .name = "cilium", .namespace_ = ns, .revision = 1, .status = status,
			.description = "Install complete", .chart_metadata = meta,
			.chart_values = chart_render_values(rd), .config = values,
			.manifest = chart_render_manifest(rd) };
		json_t *rel = release_build(&ri);
		json_t *sec = release_secret(rel, (long long)time(NULL), 0);
		json_object_del(json_object_get(json_object_get(sec, "metadata"), "labels"), RELEASE_MANAGED_LABEL);
		char *body = json_dumps(sec, JSON_COMPACT);
		char url[300];
		snprintf(url, sizeof url, "/api/v1/namespaces/%s/secrets", ns);
		bad = kube_call(cluster, "POST", url, "application/json", body) != 201;
		free(body);
		json_decref(rel), json_decref(sec), json_decref(meta);
	}
	kube_ops_free(ops);
	kube_client_free(kc);
	chart_render_free(rd);
	chart_free(ch);
	json_decref(values);
	return bad ? -1 : 0;
}

#define HAND_VALUES "{\"bpf\": {\"monitorAggregation\": \"medium\"}, \"operator\": {\"replicas\": 1}}"

static void test_adopt(void)
{
	char id[DB_ID_LEN];
	rns = "kube-system";
	check(make_cluster("adopt", "generic", id) == 0);
	check(hand_install("adopt", "kube-system", "1.18.2", HAND_VALUES, "cilium", "deployed") == 0);
	/* Before adopting, an install is refused and names adopt. */
	struct job_out o;
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "adopt") != NULL);
	job_out_clear(&o);
	long w0 = sim_writes("adopt");
	check(run_job(id, "adopt", "{}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 1);
	job_out_clear(&o);
	check(sim_writes("adopt") == w0);   /* zero writes to the cluster */
	json_t *revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 1);
	check_str(jstr(rev_item(revs, 0), "status"), "deployed");
	check_str(jstr(rev_item(revs, 0), "chart_version"), "1.18.2");
	check(json_is_null(json_object_get(rev_item(revs, 0), "started_by")));
	json_decref(revs);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "cilium_version"), "1.18.2");
	check(json_integer_value(json_object_get(c, "release_revision")) == 1);
	json_decref(c);
	/* The next upgrade continues Helm's numbering with the adopted values. */
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 2);
	job_out_clear(&o);
	json_t *r2 = sim_release("adopt", 2), *r1 = sim_release("adopt", 1);
	check_str(rel_status(r2), "deployed");
	check_str(rel_status(r1), "superseded");
	check_str(json_string_value(config_at(r2, "bpf", "monitorAggregation")), "medium");
	check(json_number_value(config_at(r2, "operator", "replicas")) == 1);
	json_decref(r1), json_decref(r2);
	check(strstr(ds_image("adopt"), "v1.18.3") != NULL);
}

/* Adopt refusals: clear errors, zero writes. */
static void test_adopt_refusals(void)
{
	char id[DB_ID_LEN];
	struct job_out o;
	check(make_cluster("adopt-none", "generic", id) == 0);
	long w0 = sim_writes("adopt-none");
	check(run_job(id, "adopt", "{}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "no Helm release cilium found") != NULL);
	job_out_clear(&o);
	check(sim_writes("adopt-none") == w0);

	/* A release in another namespace. */
	check(make_cluster("adopt-ns", "generic", id) == 0);
	check(kube_call("adopt-ns", "POST", "/api/v1/namespaces", "application/json",
			"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"net\"}}") == 201);
	check(hand_install("adopt-ns", "net", "1.18.2", HAND_VALUES, "cilium", "deployed") == 0);
	w0 = sim_writes("adopt-ns");
	check(run_job(id, "adopt", "{}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "namespace net") && strstr(o.error, "params.namespace"));
	job_out_clear(&o);
	check(sim_writes("adopt-ns") == w0);
	/* ... adopted there when asked; later jobs use that namespace. */
	check(run_job(id, "adopt", "{\"namespace\": \"net\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(sim_writes("adopt-ns") == w0);
	json_t *full = NULL;
	char err[200];
	check(db_release_get_json(conn, tenant_id, id, 1, &full, NULL, err, sizeof err) == DB_OK);
	check_str(jstr(full, "namespace"), "net");
	json_decref(full);

	/* Not Cilium. */
	check(make_cluster("adopt-other", "generic", id) == 0);
	check(hand_install("adopt-other", "kube-system", "1.18.2", HAND_VALUES, "mycilium", "deployed") == 0);
	w0 = sim_writes("adopt-other");
	check(run_job(id, "adopt", "{}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "not Cilium") != NULL);
	job_out_clear(&o);

	/* A Helm operation in flight. */
	check(make_cluster("adopt-pend", "generic", id) == 0);
	check(hand_install("adopt-pend", "kube-system", "1.18.2", HAND_VALUES, "cilium", "pending-install") == 0);
	w0 = sim_writes("adopt-pend");
	check(run_job(id, "adopt", "{}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "pending-install") && strstr(o.error, "in flight"));
	job_out_clear(&o);
	check(sim_writes("adopt-pend") == w0);
}

/* ---- drift check and repair -------------------------------------------------- */

static const json_t *check_entry(const json_t *result, const char *list, const char *name)
{
	size_t i;
	const json_t *e;
	json_array_foreach(json_object_get(json_object_get(result, "check"), list), i, e)
		if (!strcmp(jstr(e, "name"), name) && (strcmp(list, "objects") || !strcmp(jstr(e, "kind"), "ConfigMap")))
			return e;
	return NULL;
}

/* Print what a check found out of sync (for a failing test's log). */
static void note_drift(const json_t *result)
{
	const char *lists[2] = { "objects", "surroundings" };
	for (int l = 0; l < 2; l++) {
		size_t i;
		const json_t *e;
		json_array_foreach(json_object_get(json_object_get(result, "check"), lists[l]), i, e) {
			if (!strcmp(jstr(e, "state"), "in_sync"))
				continue;
			char *f = json_dumps(e, JSON_COMPACT);
			printf("# drift: %s\n", f);
			free(f);
		}
	}
}

static long summary(const json_t *result, const char *key)
{
	note_drift(result);
	return (long)json_integer_value(json_object_get(json_object_get(json_object_get(result, "check"), "summary"), key));
}

/* Exactly the two hand edits are reported, nothing written; repair puts
 * both back. */
static void test_drift(void)
{
	char id[DB_ID_LEN];
	rns = "kube-system";
	check(make_cluster("drift", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", "{\"chart_version\": \"1.18.3\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	long w0 = sim_writes("drift");
	check(run_job(id, "check", "{}", &o) == 0);
	check_str(o.state, "succeeded");
	check(summary(o.result, "drifted") == 0 && summary(o.result, "missing") == 0);
	check(summary(o.result, "in_sync") > 20);
	job_out_clear(&o);
	check(sim_writes("drift") == w0);

	/* Two edits by hand. */
	check(kube_call("drift", "PATCH", "/api/v1/namespaces/kube-system/configmaps/cilium-config",
			"application/merge-patch+json", "{\"data\":{\"enable-ipv4\":\"false\"}}") == 200);
	check(kube_call("drift", "PATCH", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
			"application/json-patch+json",
			"[{\"op\":\"remove\",\"path\":\"/spec/template/spec/nodeSelector/label-not-exist\"}]") == 200);
	w0 = sim_writes("drift");
	check(run_job(id, "check", "{}", &o) == 0);
	check_str(o.state, "succeeded");
	check(summary(o.result, "drifted") == 2);
	check(summary(o.result, "missing") == 0);
	const json_t *cm = check_entry(o.result, "objects", "cilium-config");
	check_str(jstr(cm, "state"), "drifted");
	check(json_array_size(json_object_get(cm, "fields")) == 1);
	check_str(json_string_value(json_array_get(json_object_get(cm, "fields"), 0)), "/data/enable-ipv4");
	const json_t *kp = check_entry(o.result, "surroundings", "kube-proxy retired");
	check_str(jstr(kp, "state"), "drifted");
	/* Every other object and surrounding is in sync. */
	size_t i;
	const json_t *e;
	long other = 0;
	json_array_foreach(json_object_get(json_object_get(o.result, "check"), "objects"), i, e)
		if (strcmp(jstr(e, "state"), "in_sync") && e != cm)
			other++;
	check(other == 0);
	job_out_clear(&o);
	check(sim_writes("drift") == w0);
	json_t *c = cluster_json(id);
	const json_t *lc = json_object_get(c, "last_check");
	check_str(jstr(lc, "outcome"), "drifted");
	check(json_integer_value(json_object_get(lc, "drifted")) == 2);
	check(json_is_string(json_object_get(lc, "at")) && json_is_string(json_object_get(lc, "job_id")));
	json_decref(c);

	/* An ignore rule for a field another controller owns. */
	check(run_job(id, "check", "{\"ignore\": [{\"path\": \"/data/enable-ipv4\", \"kind\": \"ConfigMap\", "
		      "\"name\": \"cilium-config\"}]}", &o) == 0);
	check_str(o.state, "succeeded");
	check(summary(o.result, "drifted") == 1);
	check_str(jstr(check_entry(o.result, "objects", "cilium-config"), "state"), "in_sync");
	job_out_clear(&o);
	check(run_job(id, "check", "{\"ignore\": [{\"kind\": \"ConfigMap\"}]}", &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "params.ignore[0]") != NULL);
	job_out_clear(&o);
	check(sim_writes("drift") == w0);

	/* Repair. */
	check(run_job(id, "repair", "{}", &o) == 0);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "repair"), "repaired")) == 2);
	job_out_clear(&o);
	check(retired("drift", "kube-proxy") == 1);
	json_t *cfg = sim_object("drift", "core/configmaps", "kube-system", "cilium-config");
	check_str(jstr(json_object_get(cfg, "data"), "enable-ipv4"), "true");
	json_decref(cfg);
	check(run_job(id, "check", "{}", &o) == 0);
	check(summary(o.result, "drifted") == 0 && summary(o.result, "missing") == 0);
	job_out_clear(&o);
	c = cluster_json(id);
	check_str(jstr(json_object_get(c, "last_check"), "outcome"), "in_sync");
	json_decref(c);

	/* A deleted object is "missing". */
	check(kube_call("drift", "DELETE", "/api/v1/namespaces/kube-system/configmaps/cilium-config", NULL, NULL) == 200);
	check(run_job(id, "check", "{}", &o) == 0);
	check(summary(o.result, "missing") == 1);
	check_str(jstr(check_entry(o.result, "objects", "cilium-config"), "state"), "missing");
	job_out_clear(&o);
}

/* ---- remediation ---------------------------------------------------------- */

/* on_failure: rollback with one retry: the upgrade fails twice (revisions 2
 * and 3 failed), the cluster is rolled back to revision 1 (revision 4),
 * the job fails naming both. */
static void test_on_failure_rollback(void)
{
	char id[DB_ID_LEN];
	rns = "kube-system";
	check(make_cluster("remedy", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", INSTALL_182, &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	char img[300];
	snprintf(img, sizeof img, "%s", ds_image("remedy"));
	long status = 0;
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/remedy/faults",
			   "{\"fail_next\": 2, \"error_codes\": [422], \"verbs\": [\"patch\"], "
			   "\"path_contains\": \"/deployments/cilium-operator\"}", &status, NULL);
	check(status == 200);
	check(run_job(id, "upgrade", "{\"chart_version\": \"1.18.3\", \"on_failure\": \"rollback\", \"retries\": 1}",
		      &o) == 0);
	check_str(o.state, "failed");
	check(strstr(o.error, "cilium-operator") != NULL);
	check(strstr(o.error, "on_failure: rolled back to revision 1 as revision 4") != NULL);
	const json_t *rem = json_object_get(o.result, "remediation");
	check_str(jstr(rem, "state"), "succeeded");
	check(json_integer_value(json_object_get(rem, "to_revision")) == 1);
	job_out_clear(&o);
	check_str(ds_image("remedy"), img);
	json_t *r2 = sim_release("remedy", 2), *r3 = sim_release("remedy", 3), *r4 = sim_release("remedy", 4);
	check_str(rel_status(r2), "failed");
	check_str(rel_status(r3), "failed");
	check_str(rel_status(r4), "deployed");
	check_str(jstr(json_object_get(r4, "info"), "description"), "Rollback to 1");
	json_decref(r2), json_decref(r3), json_decref(r4);
	json_t *c = cluster_json(id);
	check_str(jstr(c, "cilium_version"), "1.18.2");
	check(json_integer_value(json_object_get(c, "release_revision")) == 4);
	json_decref(c);
	kubesim_proc_admin(ks, "PUT", "/_sim/clusters/remedy/faults", "{}", &status, NULL);
}

/* ---- kill -9 in the write phases -------------------------------------------- */

static long faults_injected(const char *cluster)
{
	char path[200], *body = NULL;
	long status = 0;
	snprintf(path, sizeof path, "/_sim/clusters/%s/stats", cluster);
	kubesim_proc_admin(ks, "GET", path, NULL, &status, &body);
	json_t *st = json_loads(body ? body : "{}", 0, NULL);
	long n = (long)json_integer_value(json_object_get(st, "faults_injected"));
	json_decref(st);
	free(body);
	return n;
}

/* A worker runs the job in a child process; the request matching fault
 * hangs, the child is SIGKILLed there, and after its lease expires this
 * process takes the job over as another worker would and runs it to the
 * end. Returns the job's final state in out. */
static void killed_mid_job(const char *cluster, const char *cluster_id, const char *kind, const char *params_json,
			   const char *fault, struct job_out *out)
{
	char err[256], path[200];
	long status = 0;
	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof path, "/_sim/clusters/%s/faults", cluster);
	kubesim_proc_admin(ks, "PUT", path, fault, &status, NULL);
	check(status == 200);
	long before = faults_injected(cluster);
	json_t *params = json_loads(params_json, 0, NULL);
	struct db_job_new req = { .tenant_id = tenant_id, .cluster_id = cluster_id, .kind = kind, .params = params };
	char active[DB_ID_LEN];
	check(db_job_enqueue(conn, &req, out->id, active, err, sizeof err) == DB_JOB_CREATED);
	json_decref(params);
	struct db_job_claim claim;
	check(db_job_claim(conn, "worker-a", 2, &claim, err, sizeof err) == 1);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		PGconn *c2 = PQconnectdb(db_url);
		struct runner_flags flags;
		atomic_init(&flags.lease_lost, 0);
		atomic_init(&flags.cancel_requested, 0);
		app.cfg.lease_seconds = 2;
		runner_run_job(&app, c2, &claim, &flags);
		_exit(0);   /* not reached while the request hangs */
	}
	long injected = before;
	for (int i = 0; i < 600 && injected == before; i++) {
		struct timespec ts = { 0, 50000000L };
		nanosleep(&ts, NULL);
		injected = faults_injected(cluster);
	}
	check(injected > before);
	kill(pid, SIGKILL);
	int wst = 0;
	waitpid(pid, &wst, 0);
	check(WIFSIGNALED(wst));
	kubesim_proc_admin(ks, "PUT", path, "{}", &status, NULL);
	db_job_claim_clear(&claim);
	/* Takeover after the lease expired. */
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
	check_str(c2.id, out->id);
	struct runner_flags flags;
	atomic_init(&flags.lease_lost, 0);
	atomic_init(&flags.cancel_requested, 0);
	check(runner_run_job(&app, conn, &c2, &flags) == 0);
	db_job_claim_clear(&c2);
	json_t *job = db_job_get_json(conn, tenant_id, out->id, err, sizeof err);
	snprintf(out->state, sizeof out->state, "%s", jstr(job, "state"));
	snprintf(out->error, sizeof out->error, "%s", jstr(job, "error"));
	out->result = json_incref(json_object_get(job, "result"));
	json_decref(job);
	if (strcmp(out->state, "succeeded"))
		printf("# %s after the kill: %s %s\n", kind, out->state, out->error);
}

#define HANG(verb, what) "{\"hang_next\": 1, \"verbs\": [\"" verb "\"], \"path_contains\": \"" what "\"}"

static void test_killed_upgrade_rollback_uninstall_repair(void)
{
	char id[DB_ID_LEN];
	rns = "kube-system";
	check(make_cluster("killed", "tke", id) == 0);
	struct job_out o;
	check(run_job(id, "install", "{\"chart_version\": \"1.18.2\"}", &o) == 0);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	char img182[300];
	snprintf(img182, sizeof img182, "%s", ds_image("killed"));
	/* Upgrade killed while applying: its own pending-upgrade revision 2 is
	 * resumed (no revision 3). */
	killed_mid_job("killed", id, "upgrade", "{\"chart_version\": \"1.18.3\"}",
		       HANG("patch", "/deployments/cilium-operator"), &o);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 2);
	job_out_clear(&o);
	check(sim_release_revs("killed") == ((1L << 1) | (1L << 2)));
	json_t *r2 = sim_release("killed", 2), *r1 = sim_release("killed", 1);
	check_str(rel_status(r2), "deployed");
	check_str(rel_status(r1), "superseded");
	json_decref(r1), json_decref(r2);
	check(strstr(ds_image("killed"), "v1.18.3") != NULL);

	/* Rollback killed while applying: the takeover resumes its own
	 * pending-rollback revision 3 (no revision 4). */
	killed_mid_job("killed", id, "rollback", "{\"revision\": 1}",
		       HANG("patch", "/deployments/cilium-operator"), &o);
	check_str(o.state, "succeeded");
	check(json_integer_value(json_object_get(json_object_get(o.result, "release"), "revision")) == 3);
	job_out_clear(&o);
	check(sim_release_revs("killed") == ((1L << 1) | (1L << 2) | (1L << 3)));
	json_t *r3 = sim_release("killed", 3);
	check_str(rel_status(r3), "deployed");
	json_decref(r3);
	check_str(ds_image("killed"), img182);

	/* Repair killed mid-apply. */
	check(kube_call("killed", "PATCH", "/api/v1/namespaces/kube-system/configmaps/cilium-config",
			"application/merge-patch+json", "{\"data\":{\"enable-ipv4\":\"false\"}}") == 200);
	killed_mid_job("killed", id, "repair", "{}", HANG("patch", "/configmaps/cilium-config"), &o);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	json_t *cfg = sim_object("killed", "core/configmaps", "kube-system", "cilium-config");
	check_str(jstr(json_object_get(cfg, "data"), "enable-ipv4"), "true");
	json_decref(cfg);

	/* Uninstall killed while deleting: the takeover finishes it. */
	killed_mid_job("killed", id, "uninstall", "{}", HANG("delete", "/deployments/cilium-operator"), &o);
	check_str(o.state, "succeeded");
	job_out_clear(&o);
	check(release_objects_left("killed") == 0);
	check(sim_release_revs("killed") == 0);
	check(retired("killed", "kube-proxy") == 0);
	json_t *revs = revisions(id);
	check(json_array_size(json_object_get(revs, "items")) == 0);
	json_decref(revs);
	app.cfg.lease_seconds = 300;
}

int main(void)
{
	char url[512], why[512];
	if (coredb_create("ferry_lifecycle", url, sizeof url, why, sizeof why) < 0) {
		test_skip("lifecycle", why);
		return test_summary();
	}
	snprintf(db_url, sizeof db_url, "%s", url);
	conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK || coredb_migrate(conn, why, sizeof why) < 0) {
		printf("FAIL: lifecycle: database setup: %s\n", why);
		return 1;
	}
	kube_global_init();
	setenv("FERRY_KUBE_RETRY_DEADLINE_MS", "20000", 1);
	char err[256];
	ks = kubesim_proc_start(&(struct kubesim_opts){
		.clusters = 0,
		.ready_delay_ms = 50 }, err, sizeof err);
	if (!ks) {
		test_skip("lifecycle", err);
		PQfinish(conn);
		coredb_drop(url);
		return test_summary();
	}
	app.keys = keyring_parse("k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err, sizeof err);
	app.cfg.node_id = "test";
	app.cfg.lease_seconds = 300;
	app.cfg.retry_base_ms = 20;
	app.cfg.max_phase_attempts = 5;
	static char charts_dir[600];
	if (getenv("FERRY_CHARTS_DIR"))
		snprintf(charts_dir, sizeof charts_dir, "%s", getenv("FERRY_CHARTS_DIR"));
	else if (getenv("FERRY_SHARED"))
		snprintf(charts_dir, sizeof charts_dir, "%s/charts", getenv("FERRY_SHARED"));
	app.cfg.charts_dir = charts_dir[0] ? charts_dir : NULL;
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('lifecycle') RETURNING id", tenant_id, sizeof tenant_id);
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('other') RETURNING id", other_tenant, sizeof other_tenant);

	test_run("lifecycle_upgrade_tke", test_upgrade_tke);
	test_run("lifecycle_upgrade_k3s", test_upgrade_k3s);
	test_run("lifecycle_upgrade_generic", test_upgrade_generic);
	test_run("lifecycle_upgrade_chain_k3s", test_chain_k3s);
	test_run("lifecycle_upgrade_chain_generic", test_chain_generic);
	test_run("lifecycle_upgrade_default_reuses_values", test_upgrade_default_reuses);
	test_run("lifecycle_max_history", test_max_history);
	test_run("lifecycle_failed_apply", test_failed_apply);
	test_run("lifecycle_foreign_pending_refused", test_foreign_pending_refused);
	test_run("lifecycle_dry_run_rollback_uninstall", test_dry_runs);
	test_run("lifecycle_revisions_tenant_scoped", test_revisions_scoped);
	test_run("lifecycle_sequence_tke", test_sequence_tke);
	test_run("lifecycle_sequence_k3s", test_sequence_k3s);
	test_run("lifecycle_sequence_generic", test_sequence_generic);
	test_run("lifecycle_uninstall_keep_history", test_uninstall_keep_history);
	test_run("lifecycle_adopt_then_upgrade", test_adopt);
	test_run("lifecycle_adopt_refusals", test_adopt_refusals);
	test_run("lifecycle_drift_check_and_repair", test_drift);
	test_run("lifecycle_on_failure_rollback", test_on_failure_rollback);
	test_run("lifecycle_killed_upgrade_rollback_repair_uninstall", test_killed_upgrade_rollback_uninstall_repair);

	kubesim_proc_stop(ks);
	PQfinish(conn);
	coredb_drop(url);
	return test_summary();
}
