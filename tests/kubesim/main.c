/*
 * main.c: kubesim's command line, start-up and shutdown.
 *
 * Start-up order: parse flags, create DIR, load or create the CA, make the
 * server and shared client certificates, build the clusters from their
 * scenarios, start HTTPS, write every cluster's files, then DIR/kubesim.json
 * last (atomically) so tests can poll for it. SIGTERM/SIGINT stop it cleanly.
 */
#include "tests/kubesim/sim.h"

#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sim g_sim = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void tls_free(void);

static struct cluster **graveyard;
static size_t ngraveyard;

/* Deleted clusters stay allocated until exit: watches may still use them. */
void cluster_graveyard_add(struct cluster *c);
void cluster_graveyard_add(struct cluster *c)
{
	graveyard = xrealloc(graveyard, (ngraveyard + 1) * sizeof(*graveyard));
	graveyard[ngraveyard++] = c;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kubesim --dir DIR [--listen 127.0.0.1:0] [--clusters N] [--scenario NAME]\n"
		"               [--cluster NAME=SCENARIO]... [--scenario-file NAME=FILE]...\n"
		"               [--ready-delay-ms N] [--tick-ms N] [--admin-token T] [--quiet]\n"
		"               [--exit-with-parent]\n"
		"scenarios: tke-fresh tke-with-nodes tke-globalrouter tke-dataplanev2 tke-old tke-ipvs tke-karpenter k3s generic\n");
}

static int write_info(char *err, size_t errlen)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < g_sim.nclusters; i++)
		if (g_sim.clusters[i])
			json_array_append_new(arr, cluster_info_json(g_sim.clusters[i]));
	char ca[4200];
	snprintf(ca, sizeof(ca), "%s/ca.crt", g_sim.dir);
	json_t *info = json_pack("{s:i, s:i, s:s, s:s, s:s, s:o}", "port", g_sim.port, "pid", (int)getpid(),
				 "admin_token", g_sim.admin_token, "dir", g_sim.dir, "ca", ca, "clusters", arr);
	char *s = json_dumps(info, JSON_INDENT(1));
	json_decref(info);
	char p[4200];
	snprintf(p, sizeof(p), "%s/kubesim.json", g_sim.dir);
	int rc = write_file(p, s, strlen(s), 0600);
	free(s);
	if (rc)
		snprintf(err, errlen, "cannot write %.900s", p);
	return rc;
}

/* Writing thousands of small files is bound by file-system latency, so a
 * few threads share the clusters (each cluster's files are independent). */
#define WRITERS 4
struct writer {
	size_t first;
	int failed;
	char err[512];
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (size_t i = w->first; i < g_sim.nclusters && !w->failed; i += WRITERS)
		if (cluster_write_files(g_sim.clusters[i], w->err, sizeof(w->err)))
			w->failed = 1;
	return NULL;
}

static int write_all_files(char *err, size_t errlen)
{
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	memset(w, 0, sizeof(w));
	for (int i = 0; i < WRITERS; i++) {
		w[i].first = (size_t)i;
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	int rc = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed && !rc) {
			snprintf(err, errlen, "%s", w[i].err);
			rc = -1;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *listen = "127.0.0.1:0", *scenario = "tke-fresh", *admin = NULL;
	long nclusters = -1;
	char err[1024];
	int rc = 1;
	json_t *named = json_array();
	g_sim.ready_delay_ms = 200;
	g_sim.tick_ms = 50;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			json_decref(named);
			return 0;
		}
		if (!strcmp(a, "--quiet")) {
			g_sim.quiet = 1;
			continue;
		}
		if (!strcmp(a, "--exit-with-parent")) {
			/* SIGTERM (a clean stop) when the parent process dies */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() == 1) {
				json_decref(named);
				return 1;
			}
			continue;
		}
		if (!v) {
			fprintf(stderr, "kubesim: %s needs a value\n", a);
			usage(stderr);
			goto out;
		}
		i++;
		if (!strcmp(a, "--dir"))
			dir = v;
		else if (!strcmp(a, "--listen"))
			listen = v;
		else if (!strcmp(a, "--clusters"))
			nclusters = atol(v);
		else if (!strcmp(a, "--scenario"))
			scenario = v;
		else if (!strcmp(a, "--cluster"))
			json_array_append_new(named, json_string(v));
		else if (!strcmp(a, "--ready-delay-ms"))
			g_sim.ready_delay_ms = atoi(v);
		else if (!strcmp(a, "--tick-ms"))
			g_sim.tick_ms = atoi(v) > 0 ? atoi(v) : 50;
		else if (!strcmp(a, "--admin-token"))
			admin = v;
		else if (!strcmp(a, "--scenario-file")) {
			const char *eq = strchr(v, '=');
			if (!eq) {
				fprintf(stderr, "kubesim: --scenario-file wants NAME=FILE\n");
				goto out;
			}
			char name[128];
			snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
			if (scenario_load_file(name, eq + 1, err, sizeof(err))) {
				fprintf(stderr, "kubesim: %s\n", err);
				goto out;
			}
		} else {
			fprintf(stderr, "kubesim: unknown option %s\n", a);
			usage(stderr);
			goto out;
		}
	}
	if (!dir) {
		fprintf(stderr, "kubesim: --dir is required\n");
		usage(stderr);
		goto out;
	}
	if (nclusters < 0)
		nclusters = json_array_size(named) ? 0 : 1;
	if (nclusters > 100000) {
		fprintf(stderr, "kubesim: --clusters too large\n");
		goto out;
	}
	if (mkdir_p(dir)) {
		fprintf(stderr, "kubesim: cannot create %s\n", dir);
		goto out;
	}
	char absdir[PATH_MAX];
	if (!realpath(dir, absdir)) {
		fprintf(stderr, "kubesim: cannot resolve %s\n", dir);
		goto out;
	}
	g_sim.dir = xstrdup(absdir);
	if (admin) {
		g_sim.admin_token = xstrdup(admin);
	} else {
		char t[65];
		random_hex(t, 24);
		g_sim.admin_token = xstrdup(t);
	}
	if (tls_load_or_create_ca(g_sim.dir, err, sizeof(err)) || tls_make_server_cert(err, sizeof(err)) ||
	    tls_make_client_cert("kubesim-admin", "system:masters", &g_sim.client_crt, &g_sim.client_key,
				 err, sizeof(err))) {
		fprintf(stderr, "kubesim: %s\n", err);
		goto out;
	}
	if (!scenario_get(scenario)) {
		fprintf(stderr, "kubesim: unknown scenario \"%s\"\n", scenario);
		goto out;
	}
	for (long i = 1; i <= nclusters; i++) {
		char name[32];
		snprintf(name, sizeof(name), "c%ld", i);
		if (sim_add_cluster(name, scenario, err, sizeof(err))) {
			fprintf(stderr, "kubesim: %s\n", err);
			goto out;
		}
	}
	size_t k;
	json_t *nv;
	json_array_foreach(named, k, nv) {
		const char *s = json_string_value(nv);
		const char *eq = strchr(s, '=');
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - s) : strlen(s)), s);
		if (sim_add_cluster(name, eq ? eq + 1 : scenario, err, sizeof(err))) {
			fprintf(stderr, "kubesim: %s\n", err);
			goto out;
		}
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (server_start(listen, err, sizeof(err))) {
		fprintf(stderr, "kubesim: %s\n", err);
		goto out;
	}
	if (write_all_files(err, sizeof(err))) {
		fprintf(stderr, "kubesim: %s\n", err);
		server_stop();
		goto out;
	}
	pthread_t ctl;
	pthread_create(&ctl, NULL, controller_main, NULL);
	if (write_info(err, sizeof(err))) {
		fprintf(stderr, "kubesim: %s\n", err);
		g_sim.stopping = 1;
		pthread_join(ctl, NULL);
		server_stop();
		goto out;
	}
	if (!g_sim.quiet)
		fprintf(stderr, "kubesim: serving %zu cluster(s) on https://127.0.0.1:%d (dir %s)\n",
			g_sim.nclusters, g_sim.port, g_sim.dir);
	int sig = 0;
	sigwait(&set, &sig);
	if (!g_sim.quiet)
		fprintf(stderr, "kubesim: signal %d, stopping\n", sig);
	g_sim.stopping = 1;
	server_stop();
	pthread_join(ctl, NULL);
	rc = 0;
out:
	for (size_t i = 0; i < g_sim.nclusters; i++)
		cluster_free(g_sim.clusters[i]);
	for (size_t i = 0; i < ngraveyard; i++)
		cluster_free(graveyard[i]);
	free(graveyard);
	free(g_sim.clusters);
	scenario_free_all();
	tls_free();
	free(g_sim.dir);
	free(g_sim.admin_token);
	free(g_sim.ca_crt);
	free(g_sim.ca_key);
	free(g_sim.srv_crt);
	free(g_sim.srv_key);
	free(g_sim.client_crt);
	free(g_sim.client_key);
	json_decref(named);
	return rc;
}
