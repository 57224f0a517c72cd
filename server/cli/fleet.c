/*
 * fleet.c: `ferry fleet ...`, the campaign commands (issue 11), for cron
 * jobs and pipelines:
 *
 *   fleet upgrade --selector S --version V [--canary N] [--max-in-flight N|P%]
 *         [--waves 10%,50%,100%] [--max-failures N|P%]
 *         [--pause-between-waves D|manual] [--window CRON --window-duration D
 *         [--window-tz TZ]] [-f values.yaml]... [--set k=v]... [--image-mirror]
 *         [--name NAME] [--idempotency-key KEY] [--wait]
 *   fleet preflight --selector S [same strategy flags] [--wait]
 *   fleet list [--state S] | get ID | clusters ID [--state S]
 *   fleet pause ID | resume ID [--max-failures N] | approve ID | cancel ID
 *
 * --wait follows the campaign by polling GET /v1/campaigns/{id} once a
 * second (its clusters only when the counts moved) and prints one line per
 * campaign state or reason change, per wave start and end, and per cluster
 * state change. Exit status: 0 every cluster succeeded or was skipped; 1 the
 * campaign failed, was cancelled or was paused by its failure budget (the
 * reason on stderr); 2 usage, connection or HTTP errors; 3 --timeout. A
 * pause for an approval, a maintenance window or by an operator is waited
 * out. The POST always carries an Idempotency-Key (the given one or a
 * random one), so it is retried safely, and the same cron line run twice
 * with a key from the date starts one campaign.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/cli/client_internal.h"
#include "server/common/buf.h"

/* Exit statuses: client_internal.h (EXIT_JOB_FAILED = 1: the campaign failed). */

static const char usage_text[] =
	"usage: ferry fleet upgrade --selector S --version V [--canary N] [--max-in-flight N|P%]\n"
	"         [--waves 10%,50%,100%] [--max-failures N|P%] [--pause-between-waves D|manual]\n"
	"         [--window CRON --window-duration D [--window-tz TZ]] [-f values.yaml]... [--set k=v]...\n"
	"         [--image-mirror] [--name NAME] [--idempotency-key KEY] [--wait]\n"
	"       ferry fleet preflight --selector S [strategy flags] [--wait]\n"
	"       ferry fleet list [--state S] | get ID | clusters ID [--state S]\n"
	"       ferry fleet pause ID | resume ID [--max-failures N] | approve ID | cancel ID\n";

struct fargs {
	const char *pos[2];
	int npos;
	const char *selector, *version, *canary, *mif, *waves, *mf, *pbw, *window, *wdur, *wtz,
		*name, *idem, *state;
	const char **files, **sets;
	size_t nfiles, nsets;
	int wait, image_mirror;
};

static int parse(int argc, char **argv, struct fargs *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *v = NULL;
		int k = client_skip_global(argc, argv, &i);
		if (k < 0)
			return -1;
		if (k > 0)
			continue;
		struct {
			const char *flag;
			const char **dst;
		} opts[] = {
			{ "--selector", &a->selector }, { "-l", &a->selector }, { "--version", &a->version },
			{ "--canary", &a->canary }, { "--max-in-flight", &a->mif }, { "--waves", &a->waves },
			{ "--max-failures", &a->mf }, { "--pause-between-waves", &a->pbw },
			{ "--window", &a->window }, { "--window-duration", &a->wdur },
			{ "--window-tz", &a->wtz }, { "--name", &a->name },
			{ "--idempotency-key", &a->idem }, { "--state", &a->state },
		};
		int hit = 0;
		for (size_t o = 0; o < sizeof opts / sizeof opts[0] && !hit; o++) {
			k = client_opt(argc, argv, &i, opts[o].flag, &v);
			if (k < 0)
				return -1;
			if (k > 0) {
				*opts[o].dst = v;
				hit = 1;
			}
		}
		if (hit)
			continue;
		if ((k = client_opt(argc, argv, &i, "-f", &v)) != 0 ||
		    (k = client_opt(argc, argv, &i, "--values", &v)) != 0) {
			if (k < 0)
				return -1;
			a->files = realloc(a->files, (a->nfiles + 1) * sizeof(char *));
			a->files[a->nfiles++] = v;
		} else if ((k = client_opt(argc, argv, &i, "--set", &v)) != 0) {
			if (k < 0)
				return -1;
			a->sets = realloc(a->sets, (a->nsets + 1) * sizeof(char *));
			a->sets[a->nsets++] = v;
		} else if (!strcmp(argv[i], "--wait")) {
			a->wait = 1;
		} else if (!strcmp(argv[i], "--image-mirror")) {
			a->image_mirror = 1;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			errorf("unknown flag %.60s", argv[i]);
			return -1;
		} else if (a->npos < 2) {
			a->pos[a->npos++] = argv[i];
		} else {
			errorf("unexpected argument %.60s", argv[i]);
			return -1;
		}
	}
	return 0;
}

/* "10" -> 10, "10%" stays a string (the server resolves percentages). */
static json_t *count_value(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end)
		return json_integer(v);
	return json_string(s);
}

static char *random_key(void)
{
	unsigned char rnd[12];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, rnd, sizeof rnd) : -1;
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof rnd)
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (unsigned char)(rand() ^ getpid());
	struct buf b = BUF_INIT;
	buf_puts(&b, "ferry-fleet-");
	for (size_t i = 0; i < sizeof rnd; i++)
		buf_printf(&b, "%02x", rnd[i]);
	return buf_steal(&b);
}

static void now_clock(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, n, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long num(const json_t *o, const char *k)
{
	return (long)json_integer_value(json_object_get(o, k));
}


static int finished(const char *state)
{
	return !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

/* Print what changed since the last look (prev_* hold the previous
 * views; updated). */
static void report(FILE *out, const json_t *camp, json_t *clusters, json_t *seen_cl,
		   json_t *seen_waves, char *last_state, size_t lslen)
{
	char clk[16];
	now_clock(clk, sizeof clk);
	char st[256];
	snprintf(st, sizeof st, "%s%s%s", str(camp, "state"),
		 json_is_string(json_object_get(camp, "reason")) ? ": " : "", str(camp, "reason"));
	/* A new state is printed first, except the final one (after the last
	 * wave and cluster lines). */
	int final = finished(str(camp, "state"));
	if (strcmp(st, last_state) && !final) {
		fprintf(out, "%s campaign %s\n", clk, st);
		snprintf(last_state, lslen, "%s", st);
	}
	size_t i;
	const json_t *w;
	json_array_foreach(json_object_get(camp, "wave_progress"), i, w) {
		char key[16];
		snprintf(key, sizeof key, "%ld", num(w, "wave"));
		const json_t *cnt = json_object_get(w, "counts");
		long waiting = num(cnt, "pending") + num(cnt, "waiting");
		const char *was = json_string_value(json_object_get(seen_waves, key));
		const char *now = json_is_string(json_object_get(w, "finished_at")) ? "done"
				  : waiting < num(w, "total")                       ? "started"
										    : "";
		if (!*now || (was && !strcmp(was, now)))
			continue;
		const char *label = num(w, "wave") ? "wave" : "canary wave";
		if (!was)  /* a wave seen for the first time may already be done */
			fprintf(out, "%s %s %ld: started (%ld clusters)\n", clk, label, num(w, "wave"),
				num(w, "total"));
		if (!strcmp(now, "done"))
			fprintf(out, "%s %s %ld: done (%ld succeeded, %ld skipped, %ld failed, %ld cancelled)\n",
				clk, label, num(w, "wave"), num(cnt, "succeeded"), num(cnt, "skipped"),
				num(cnt, "failed"), num(cnt, "cancelled"));
		json_object_set_new(seen_waves, key, json_string(now));
	}
	const json_t *cl;
	json_array_foreach(clusters, i, cl) {
		const char *cs = str(cl, "state");
		if (!strcmp(cs, "pending") || !strcmp(cs, "waiting"))
			continue;  /* reasons churn; `fleet clusters` shows them */
		const char *name = str(cl, "cluster_name");
		const char *was = json_string_value(json_object_get(seen_cl, name));
		if (was && !strcmp(was, cs))
			continue;
		if (!strcmp(cs, "running"))
			fprintf(out, "%s %s running (job %s)\n", clk, name, str(cl, "job_id"));
		else if (!strcmp(cs, "failed"))
			fprintf(out, "%s %s failed: %s\n", clk, name, str(cl, "error"));
		else
			fprintf(out, "%s %s %s\n", clk, name, cs);
		json_object_set_new(seen_cl, name, json_string(cs));
	}
	if (strcmp(st, last_state) && final) {
		fprintf(out, "%s campaign %s\n", clk, st);
		snprintf(last_state, lslen, "%s", st);
	}
	fflush(out);
}

/* Follow campaign id to its end (or a budget pause). */
static int follow(struct client *c, const char *id)
{
	FILE *out = c->structured ? stderr : stdout;
	json_t *seen_cl = json_object(), *seen_waves = json_object(), *camp = NULL;
	char last_state[256] = "", last_counts[256] = "";
	int rc = EXIT_USAGE;
	double transient_since = 0;
	for (;;) {
		char path[128];
		snprintf(path, sizeof path, "/v1/campaigns/%s", id);
		json_decref(camp);
		camp = NULL;
		int p = client_poll(c, path, &camp);
		json_t *clusters = NULL;
		if (p == 0) {
			char *counts = json_dumps(json_object_get(camp, "counts"), JSON_COMPACT | JSON_SORT_KEYS);
			if (strcmp(counts ? counts : "", last_counts)) {
				char cpath[128];
				snprintf(cpath, sizeof cpath, "/v1/campaigns/%s/clusters", id);
				p = list_all(c, cpath, 0, 1, &clusters);
				if (p == 0)
					snprintf(last_counts, sizeof last_counts, "%s", counts ? counts : "");
			}
			free(counts);
		}
		if (p == 3) {
			rc = client_timed_out(c);
			break;
		}
		if (p == 2)
			break;
		if (p == 1) {
			/* ferryd restarting: keep trying for a minute */
			if (!transient_since)
				transient_since = (double)time(NULL);
			else if ((double)time(NULL) - transient_since > 60) {
				errorf("lost the connection to ferryd while waiting");
				break;
			}
			sleep(1);
			continue;
		}
		transient_since = 0;
		report(out, camp, clusters, seen_cl, seen_waves, last_state, sizeof last_state);
		json_decref(clusters);
		const char *st = str(camp, "state");
		if (finished(st) || (!strcmp(st, "paused") && !strcmp(str(camp, "pause_kind"), "budget"))) {
			if (!strcmp(st, "succeeded")) {
				rc = EXIT_OK;
			} else {
				errorf("campaign %s %s%s%s", id, st, json_is_string(json_object_get(camp, "reason")) ? ": " : "",
				     str(camp, "reason"));
				rc = EXIT_JOB_FAILED;
			}
			break;
		}
		sleep(1);
	}
	if (camp && c->structured)
		print_doc(camp);
	json_decref(camp);
	json_decref(seen_cl);
	json_decref(seen_waves);
	return rc;
}

static int create(struct client *c, const char *kind, struct fargs *a)
{
	if (a->npos || !a->selector || (!strcmp(kind, "upgrade") && !a->version)) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if ((a->window != NULL) != (a->wdur != NULL)) {
		errorf("--window and --window-duration go together");
		return EXIT_USAGE;
	}
	json_t *params = json_object();
	if (a->version)
		json_object_set_new(params, "chart_version", json_string(a->version));
	if (client_add_values(params, a->files, a->nfiles, a->sets, a->nsets) != 0) {
		json_decref(params);
		return EXIT_USAGE;
	}
	if (a->image_mirror)
		json_object_set_new(params, "image_mirror", json_true());
	json_t *strategy = json_object();
	if (a->canary)
		json_object_set_new(strategy, "canary", count_value(a->canary));
	if (a->mif)
		json_object_set_new(strategy, "max_in_flight", count_value(a->mif));
	if (a->mf)
		json_object_set_new(strategy, "max_failures", count_value(a->mf));
	if (a->pbw)
		json_object_set_new(strategy, "pause_between_waves", json_string(a->pbw));
	if (a->waves) {
		json_t *w = json_array();
		char *copy = strdup(a->waves), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(w, count_value(t));
		free(copy);
		json_object_set_new(strategy, "waves", w);
	}
	if (a->window)
		json_object_set_new(strategy, "window",
				    json_pack("{s:s,s:s,s:s}", "cron", a->window, "duration", a->wdur,
					      "time_zone", a->wtz ? a->wtz : "UTC"));
	char name[200];
	snprintf(name, sizeof name, "%s %s%s%s", kind, a->selector, a->version ? " to " : "",
		 a->version ? a->version : "");
	json_t *body = json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", a->name ? a->name : name,
				 "selector", a->selector, "kind", kind, "params", params,
				 "strategy", strategy);
	char *key = a->idem ? NULL : random_key();
	json_t *camp = NULL;
	int rc = api(c, "POST", "/v1/campaigns", body, a->idem ? a->idem : key, 3, &camp);
	free(key);
	json_decref(body);
	if (rc)
		return rc;
	const char *id = str(camp, "id");
	char idc[64];
	snprintf(idc, sizeof idc, "%s", id);
	if (!a->wait) {
		if (c->structured)
			print_doc(camp);
		else
			printf("%s\n", idc);
		json_decref(camp);
		return EXIT_OK;
	}
	if (!c->structured) {
		printf("campaign %s: %ld clusters, canary %ld, max in flight %ld, failure budget %ld\n", idc,
		       num(camp, "total"), num(camp, "canary"), num(camp, "max_in_flight"),
		       num(camp, "max_failures"));
		fflush(stdout);
	}
	json_decref(camp);
	return follow(c, idc);
}

static void print_campaign_line(const json_t *k)
{
	const json_t *cnt = json_object_get(k, "counts");
	printf("%-36s  %-10s %5ld  %4ld/%-4ld %4ld  %-24.24s %s\n", str(k, "id"), str(k, "state"),
	       num(k, "total"), num(cnt, "succeeded") + num(cnt, "skipped"), num(k, "total"),
	       num(cnt, "failed"), str(k, "name"), str(k, "reason"));
}

static int show(struct client *c, const char *path, int kind)
{
	json_t *v = NULL;
	int rc = api(c, "GET", path, NULL, NULL, 3, &v);
	if (rc)
		return rc;
	if (c->structured) {
		print_doc(v);
	} else if (kind == 0) {
		printf("%-36s  %-10s %5s  %9s %4s  %-24s %s\n", "ID", "STATE", "TOTAL", "DONE", "FAIL", "NAME",
		       "REASON");
		size_t i;
		const json_t *k;
		json_array_foreach(json_object_get(v, "items"), i, k)
			print_campaign_line(k);
	} else if (kind == 1) {
		static const char *const keys[] = { "id", "name", "selector", "kind", "state", "reason", "total",
						    "canary", "max_in_flight", "max_failures", "created_by",
						    "created_at", "started_at", "finished_at", NULL };
		for (int i = 0; keys[i]; i++) {
			const json_t *x = json_object_get(v, keys[i]);
			if (json_is_integer(x))
				printf("%-14s %lld\n", keys[i], (long long)json_integer_value(x));
			else
				printf("%-14s %s\n", keys[i], json_is_string(x) ? json_string_value(x) : "-");
		}
		size_t i;
		const json_t *w;
		json_array_foreach(json_object_get(v, "wave_progress"), i, w) {
			const json_t *cnt = json_object_get(w, "counts");
			printf("wave %-9ld %ld clusters: %ld succeeded, %ld skipped, %ld failed, %ld running, %ld waiting\n",
			       num(w, "wave"), num(w, "total"), num(cnt, "succeeded"), num(cnt, "skipped"),
			       num(cnt, "failed"), num(cnt, "running"), num(cnt, "pending") + num(cnt, "waiting"));
		}
	} else {
		printf("%-4s %-24s %-10s %-36s %s\n", "WAVE", "CLUSTER", "STATE", "JOB", "REASON / ERROR");
		size_t i;
		const json_t *x;
		json_array_foreach(json_object_get(v, "items"), i, x)
			printf("%-4ld %-24.24s %-10s %-36s %s\n", num(x, "wave"), str(x, "cluster_name"),
			       str(x, "state"), json_is_string(json_object_get(x, "job_id")) ? str(x, "job_id") : "-",
			       json_is_string(json_object_get(x, "error")) ? str(x, "error") : str(x, "reason"));
	}
	json_decref(v);
	return EXIT_OK;
}

static int id_ok(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
			return 0;
	return 1;
}

int fleet_main(struct client *c, int argc, char **argv)
{
	struct fargs a;
	int rc = EXIT_USAGE;
	if (argc < 1) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[0];
	if (parse(argc - 1, argv + 1, &a) != 0)
		goto out;
	if (!strcmp(sub, "upgrade") || !strcmp(sub, "preflight")) {
		rc = create(c, sub, &a);
		goto out;
	}
	char path[256];
	if (!strcmp(sub, "list") && a.npos == 0) {
		snprintf(path, sizeof path, "/v1/campaigns?limit=200%s%s", a.state ? "&state=" : "",
			 a.state ? a.state : "");
		if (a.state && strspn(a.state, "abcdefghijklmnopqrstuvwxyz") != strlen(a.state)) {
			errorf("--state must be a campaign state");
			goto out;
		}
		rc = show(c, path, 0);
		goto out;
	}
	if (a.npos != 1 || !id_ok(a.pos[0])) {
		fputs(usage_text, stderr);
		goto out;
	}
	const char *id = a.pos[0];
	if (!strcmp(sub, "get")) {
		snprintf(path, sizeof path, "/v1/campaigns/%s", id);
		rc = show(c, path, 1);
	} else if (!strcmp(sub, "clusters")) {
		if (a.state && strspn(a.state, "abcdefghijklmnopqrstuvwxyz") != strlen(a.state)) {
			errorf("--state must be a cluster state");
			goto out;
		}
		snprintf(path, sizeof path, "/v1/campaigns/%s/clusters?limit=200%s%s", id,
			 a.state ? "&state=" : "", a.state ? a.state : "");
		rc = show(c, path, 2);
	} else if (!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "approve") ||
		   !strcmp(sub, "cancel")) {
		snprintf(path, sizeof path, "/v1/campaigns/%s/%s", id, sub);
		json_t *body = NULL;
		if (a.mf && !strcmp(sub, "resume"))
			body = json_pack("{s:o}", "max_failures", count_value(a.mf));
		json_t *v = NULL;
		rc = api(c, "POST", path, body, NULL, 0, &v);
		json_decref(body);
		if (rc == 0) {
			if (c->structured)
				print_doc(v);
			else
				printf("campaign %s %s%s%s\n", id, str(v, "state"),
				       json_is_string(json_object_get(v, "reason")) ? ": " : "", str(v, "reason"));
			if (a.wait && strcmp(sub, "pause"))
				rc = follow(c, id);
		}
		json_decref(v);
	} else {
		errorf("unknown fleet command %.40s", sub);
		fputs(usage_text, stderr);
	}
out:
	free(a.files);
	free(a.sets);
	return rc;
}
