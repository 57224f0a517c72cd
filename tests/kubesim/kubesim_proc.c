/*
 * kubesim_proc.c: run kubesim as a child process for tests (see the header).
 * The admin API is called with libcurl, trusting kubesim's CA.
 */
#include "tests/kubesim/kubesim_proc.h"
#include "server/common/buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void find_binary(char *out, size_t len)
{
	const char *env = getenv("KUBESIM");
	if (env && env[0]) {
		snprintf(out, len, "%s", env);
		return;
	}
	const char *b = getenv("FERRY_BUILD");
	if (b && b[0]) {
		snprintf(out, len, "%s/tests/kubesim/kubesim", b);
		if (access(out, X_OK) == 0)
			return;
	}
	if (access("tests/kubesim/kubesim", X_OK) == 0) {
		snprintf(out, len, "tests/kubesim/kubesim");
		return;
	}
	snprintf(out, len, "kubesim");
}

static void rm_rf(const char *dir)
{
	pid_t p = fork();
	if (p == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

struct kubesim_proc *kubesim_proc_start(const struct kubesim_opts *opts, char *err, size_t errlen)
{
	struct kubesim_opts def = {0};
	if (!opts)
		opts = &def;
	struct kubesim_proc *ks = xcalloc(1, sizeof(*ks));
	snprintf(ks->dir, sizeof(ks->dir), "/tmp/kubesim.XXXXXX");
	if (!mkdtemp(ks->dir)) {
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		free(ks);
		return NULL;
	}
	char bin[1024], nbuf[32], rbuf[32], tbuf[32], log[400];
	find_binary(bin, sizeof(bin));
	const char *argv[64];
	int n = 0;
	argv[n++] = bin;
	argv[n++] = "--dir";
	argv[n++] = ks->dir;
	argv[n++] = "--quiet";
	int named = 0;
	while (named < 16 && opts->named[named])
		named++;
	if (opts->clusters > 0 || !named) {
		snprintf(nbuf, sizeof(nbuf), "%d", opts->clusters > 0 ? opts->clusters : 1);
		argv[n++] = "--clusters";
		argv[n++] = nbuf;
	}
	argv[n++] = "--scenario";
	argv[n++] = opts->scenario ? opts->scenario : "tke-fresh";
	for (int i = 0; i < named; i++) {
		argv[n++] = "--cluster";
		argv[n++] = opts->named[i];
	}
	if (opts->ready_delay_ms > 0) {
		snprintf(rbuf, sizeof(rbuf), "%d", opts->ready_delay_ms);
		argv[n++] = "--ready-delay-ms";
		argv[n++] = rbuf;
	}
	if (opts->tick_ms > 0) {
		snprintf(tbuf, sizeof(tbuf), "%d", opts->tick_ms);
		argv[n++] = "--tick-ms";
		argv[n++] = tbuf;
	}
	for (int i = 0; i < 8 && opts->extra_args[i]; i++)
		argv[n++] = opts->extra_args[i];
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/kubesim.log", ks->dir);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		rm_rf(ks->dir);
		free(ks);
		return NULL;
	}
	if (pid == 0) {
		/* a crashed test must not leave kubesim running */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(1);
		FILE *f = freopen(log, "w", stderr);
		(void)f;
		execvp(bin, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	ks->pid = pid;
	char info[400];
	snprintf(info, sizeof(info), "%s/kubesim.json", ks->dir);
	snprintf(ks->ca_path, sizeof(ks->ca_path), "%s/ca.crt", ks->dir);
	for (int i = 0; i < 2000; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char msg[400] = "";
			FILE *lf = fopen(log, "r");
			if (lf) {
				size_t n = fread(msg, 1, sizeof(msg) - 1, lf);
				msg[n] = 0;
				msg[strcspn(msg, "\n")] = 0;
				fclose(lf);
			}
			snprintf(err, errlen, "kubesim (%s) exited early, status %d: %s", bin,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
			ks->pid = 0;
			kubesim_proc_stop(ks);
			return NULL;
		}
		json_t *j = json_load_file(info, 0, NULL);
		if (j) {
			ks->port = (int)json_integer_value(json_object_get(j, "port"));
			snprintf(ks->admin_token, sizeof(ks->admin_token), "%s",
				 json_string_value(json_object_get(j, "admin_token")) ?
				 json_string_value(json_object_get(j, "admin_token")) : "");
			json_decref(j);
			return ks;
		}
		struct timespec ts = {0, 10000000L};
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "kubesim did not write %s within 20 s", info);
	kubesim_proc_stop(ks);
	return NULL;
}

const char *kubesim_proc_kubeconfig(struct kubesim_proc *ks, const char *cluster)
{
	static char path[600];
	snprintf(path, sizeof(path), "%s/%s/kubeconfig", ks->dir, cluster);
	return path;
}

char *kubesim_proc_server_url(const struct kubesim_proc *ks, const char *cluster)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "https://127.0.0.1:%d/clusters/%s", ks->port, cluster);
	return buf_steal(&b);
}

char *kubesim_proc_read(const struct kubesim_proc *ks, const char *cluster, const char *file)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s/%s", ks->dir, cluster, file);
	return read_file_all(path, NULL);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	buf_append(ud, ptr, size * nmemb);
	return size * nmemb;
}

int kubesim_proc_admin(const struct kubesim_proc *ks, const char *method, const char *path,
		       const char *json_body, long *status, char **body)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	char url[1024], auth[300];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", ks->port, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ks->admin_token);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	struct buf out = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, ks->ca_path);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (json_body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (status)
		*status = code;
	if (body)
		*body = buf_steal(&out);
	buf_free(&out);
	return rc == CURLE_OK ? 0 : -1;
}

int kubesim_proc_stop(struct kubesim_proc *ks)
{
	if (!ks)
		return 0;
	int result = 0;
	if (ks->pid > 0) {
		kill(ks->pid, SIGTERM);
		int status = 0, done = 0;
		for (int i = 0; i < 1000; i++) {
			if (waitpid(ks->pid, &status, WNOHANG) == ks->pid) {
				done = 1;
				break;
			}
			struct timespec ts = {0, 10000000L};
			nanosleep(&ts, NULL);
		}
		if (!done) {
			kill(ks->pid, SIGKILL);
			waitpid(ks->pid, &status, 0);
			result = -1;
		} else {
			result = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
	}
	if (getenv("KUBESIM_KEEP_DIR") == NULL)
		rm_rf(ks->dir);
	free(ks);
	return result;
}
