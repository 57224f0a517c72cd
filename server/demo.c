/*
 * demo: the demo tenant, its tokens and a simulated cluster for ./dev run.
 *
 * kubesim runs as a child in its own session (so Ctrl-C reaches ferryd
 * first, which then stops everything in order) with PR_SET_PDEATHSIG so it
 * never outlives a killed ferryd. kubesim writes kubesim.json once it
 * serves; we wait for that file, then read the cluster's server URL, the CA
 * and the bearer token from the files kubesim writes (see
 * tests/kubesim/README.md) and upsert the cluster row.
 */
#include "server/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/log.h"

#define DEMO_CLUSTER "tke-demo"

struct demo {
	pid_t kubesim;
};

static void trim(char *s)
{
	size_t l = strlen(s);
	while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == ' '))
		s[--l] = 0;
}

static char *find_kubesim(void)
{
	const char *env = getenv("KUBESIM");
	if (env && *env)
		return access(env, X_OK) == 0 ? xstrdup(env) : NULL;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/tests/kubesim/kubesim", exe);
	if (access(buf_cstr(&b), X_OK) == 0)
		return buf_steal(&b);
	buf_free(&b);
	return NULL;
}

static int exec_params(PGconn *c, const char *sql, int n, const char *const *p,
		       PGresult **out, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "demo: %s", PQerrorMessage(c));
		trim(err);
		PQclear(r);
		return -1;
	}
	if (out)
		*out = r;
	else
		PQclear(r);
	return 0;
}

/* Create a token row; the secret goes to *secret (caller frees). */
static int make_token(PGconn *c, const char *tenant_id, const char *role, const char *name,
		      char **secret, char *err, size_t errlen)
{
	char *tok = token_generate();
	char hash[65];
	if (!tok) {
		snprintf(err, errlen, "demo: no randomness for a token");
		return -1;
	}
	token_hash(tok, hash);
	const char *p[4] = { tenant_id, name, role, hash };
	if (exec_params(c, "INSERT INTO api_tokens (tenant_id, name, role, token_hash) "
			   "VALUES ($1::uuid, $2, $3, $4)", 4, p, NULL, err, errlen) < 0) {
		free(tok);
		return -1;
	}
	*secret = tok;
	return 0;
}

static pid_t start_kubesim(const char *bin, const char *dir)
{
	char logfile[PATH_MAX + 64];
	snprintf(logfile, sizeof(logfile), "%s/kubesim.log", dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setsid();
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	char cluster[64];
	snprintf(cluster, sizeof(cluster), "%s=tke-fresh", DEMO_CLUSTER);
	execl(bin, bin, "--dir", dir, "--cluster", cluster, (char *)NULL);
	_exit(127);
}

static int register_cluster(PGconn *c, struct app *app, const char *tenant_id, const char *dir,
			    char *err, size_t errlen)
{
	int rc = -1;
	char path[PATH_MAX + 64];
	char *js = NULL, *ca = NULL, *token = NULL, *sealed = NULL, *cred = NULL;
	json_t *j = NULL;
	snprintf(path, sizeof(path), "%s/kubesim.json", dir);
	js = read_file_all(path, NULL);
	j = js ? json_loads(js, 0, NULL) : NULL;
	const char *server = NULL;
	json_t *cl;
	size_t i;
	json_array_foreach(json_object_get(j, "clusters"), i, cl) {
		const char *name = json_string_value(json_object_get(cl, "name"));
		if (name && !strcmp(name, DEMO_CLUSTER))
			server = json_string_value(json_object_get(cl, "server"));
	}
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	ca = read_file_all(path, NULL);
	snprintf(path, sizeof(path), "%s/%s/token", dir, DEMO_CLUSTER);
	token = read_file_all(path, NULL);
	if (!server || !ca || !token) {
		snprintf(err, errlen, "demo: kubesim did not write its cluster files in %s", dir);
		goto out;
	}
	trim(token);
	json_t *credj = json_pack("{s:s}", "token", token);
	cred = json_dumps(credj, JSON_COMPACT);
	json_decref(credj);
	sealed = crypto_seal(app->keys, cred, strlen(cred));
	if (!sealed) {
		snprintf(err, errlen, "demo: cannot seal the cluster credentials");
		goto out;
	}
	const char *p[5] = { tenant_id, server, ca, sealed, keyring_current_id(app->keys) };
	rc = exec_params(c,
		"INSERT INTO clusters (tenant_id, name, labels, profile, api_server, ca_bundle, credentials, credentials_key_id) "
		"VALUES ($1::uuid, '" DEMO_CLUSTER "', '{\"env\":\"demo\",\"sim\":\"kubesim\"}', 'tke', $2, $3, $4, $5) "
		"ON CONFLICT (tenant_id, name) DO UPDATE SET api_server = EXCLUDED.api_server, "
		"  ca_bundle = EXCLUDED.ca_bundle, credentials = EXCLUDED.credentials, "
		"  credentials_key_id = EXCLUDED.credentials_key_id, updated_at = now(), "
		"  version = clusters.version + 1",
		5, p, NULL, err, errlen);
	if (rc == 0)
		log_msg(LOG_INFO, "demo: simulated cluster %s registered (%s)", DEMO_CLUSTER, server);
out:
	json_decref(j);
	free(js);
	free(ca);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	if (cred) {
		memset(cred, 0, strlen(cred));
		free(cred);
	}
	free(sealed);
	return rc;
}

struct demo *demo_setup(struct app *app, const char *console_url, char *err, size_t errlen)
{
	struct demo *d = xcalloc(1, sizeof(*d));
	char *op = NULL, *adm = NULL;
	PGresult *r = NULL;
	PGconn *c = db_acquire(app->db, 10000);
	if (!c) {
		snprintf(err, errlen, "demo: no database connection");
		goto fail;
	}
	if (exec_params(c, "INSERT INTO tenants (name) VALUES ('demo') ON CONFLICT (name) DO NOTHING",
			0, NULL, NULL, err, errlen) < 0 ||
	    exec_params(c, "SELECT id FROM tenants WHERE name = 'demo'", 0, NULL, &r, err, errlen) < 0)
		goto fail;
	char tenant_id[64];
	snprintf(tenant_id, sizeof(tenant_id), "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	r = NULL;
	if (make_token(c, tenant_id, "operator", "demo operator", &op, err, errlen) < 0 ||
	    make_token(c, NULL, "admin", "demo platform admin", &adm, err, errlen) < 0)
		goto fail;

	char *bin = find_kubesim();
	if (bin) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/kubesim", app->cfg.data_dir);
		mkdir(dir, 0700);
		char js[PATH_MAX + 64];
		snprintf(js, sizeof(js), "%s/kubesim.json", dir);
		unlink(js);
		d->kubesim = start_kubesim(bin, dir);
		int ready = 0;
		for (int i = 0; i < 200 && d->kubesim > 0; i++) {
			if (access(js, R_OK) == 0) {
				ready = 1;
				break;
			}
			int st;
			if (waitpid(d->kubesim, &st, WNOHANG) == d->kubesim) {
				d->kubesim = 0;
				break;
			}
			struct timespec ts = { 0, 50000000L };
			nanosleep(&ts, NULL);
		}
		if (!ready || register_cluster(c, app, tenant_id, dir, err, errlen) < 0) {
			if (!ready)
				log_msg(LOG_WARN, "demo: kubesim (%s) did not start; see %s/kubesim.log", bin, dir);
			else
				log_msg(LOG_WARN, "%s", err);
			log_msg(LOG_WARN, "demo: continuing without a simulated cluster");
		}
		free(bin);
	} else {
		log_msg(LOG_INFO, "demo: kubesim not built; no simulated cluster (make tests/kubesim/kubesim)");
	}
	db_release(app->db, c);
	c = NULL;

	printf("\n"
	       "  ferry demo is running\n"
	       "  console:              %s\n"
	       "  operator token (demo): %s\n"
	       "  platform admin token:  %s\n"
	       "  (tokens are shown once; Ctrl-C stops everything)\n\n",
	       console_url, op, adm);
	fflush(stdout);
	free(op);
	free(adm);
	return d;
fail:
	PQclear(r);
	if (c)
		db_release(app->db, c);
	free(op);
	free(adm);
	demo_stop(d);
	return NULL;
}

void demo_stop(struct demo *d)
{
	if (!d)
		return;
	if (d->kubesim > 0) {
		kill(d->kubesim, SIGTERM);
		int st;
		for (int i = 0; i < 100; i++) {
			if (waitpid(d->kubesim, &st, WNOHANG) == d->kubesim) {
				d->kubesim = 0;
				break;
			}
			struct timespec ts = { 0, 50000000L };
			nanosleep(&ts, NULL);
		}
		if (d->kubesim > 0) {
			kill(d->kubesim, SIGKILL);
			waitpid(d->kubesim, &st, 0);
		}
	}
	free(d);
}
