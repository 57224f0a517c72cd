/*
 * client.c: `ferry` as a REST client of ferryd, for CI pipelines and cron
 * jobs that start a job and wait for its result.
 *
 * The idea: every command is one or a few JSON requests (libcurl, jansson).
 * A non-2xx answer is turned into one line on stderr ("title: detail" from
 * the RFC 9457 problem document) and exit status 2. Waiting for a job polls
 * GET /v1/jobs/{id} and GET /v1/jobs/{id}/events?after=N once a second and
 * prints every new log line and every phase state change; the final state
 * decides the exit status (0 succeeded, 1 failed/cancelled, 3 --timeout).
 * Polling rather than the SSE stream keeps the client simple and robust
 * behind proxies that buffer; transient failures while waiting (connection
 * refused during a ferryd restart, 502/503/504) are retried for up to a
 * minute. Job creation sends an Idempotency-Key (the user's, or a random
 * one) so that a POST retried after a network error never starts two jobs.
 *
 * The bearer token comes from FERRY_TOKEN or --token-file, goes only into
 * the Authorization header, is never echoed (flag values are not printed in
 * error messages either), and redirects are not followed.
 */
#define _GNU_SOURCE
#include "server/cli/client.h"
#include "server/cli/client_internal.h"
#include "server/cli/config.h"
#include "server/cli/lifecycle.h"
#include "server/common/buf.h"
#include "server/common/yamljson.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define REQUEST_TIMEOUT_MS 30000L
#define TRANSIENT_RETRY_MS 60000.0

struct resp {
	long status;
	struct buf body;
	char content_type[128];
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void errorf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ferry: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---------------------------------------------------------------- options */

/* The flag's name without any "=value", for messages that must not echo values. */
void flag_name(const char *arg, char *out, size_t outlen)
{
	size_t n = strcspn(arg, "=");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, arg, n);
	out[n] = 0;
}

/* --flag value or --flag=value; *missing set when the value is absent. */
const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t nl = strlen(name);
	if (!strncmp(argv[*i], name, nl) && argv[*i][nl] == '=')
		return argv[*i] + nl + 1;
	if (!strcmp(argv[*i], name)) {
		if (*i + 1 >= argc) {
			*missing = 1;
			return NULL;
		}
		return argv[++*i];
	}
	return NULL;
}

static int parse_duration(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		;
	else if (!strcmp(end, "ms"))
		v /= 1000;
	else if (!strcmp(end, "m"))
		v *= 60;
	else if (!strcmp(end, "h"))
		v *= 3600;
	else
		return -1;
	*out = v;
	return 0;
}

/* Consumes a global option at argv[*i]: 1 consumed, 0 not global, -1 error. */
int global_opt(int argc, char **argv, int *i, struct globals *g)
{
	int missing = 0;
	const char *v;
	char name[64];
	if ((v = opt_value(argc, argv, i, "--server", &missing)))
		g->server = v;
	else if ((v = opt_value(argc, argv, i, "--token-file", &missing)))
		g->token_file = v;
	else if ((v = opt_value(argc, argv, i, "--ca-file", &missing)))
		g->ca_file = v;
	else if ((v = opt_value(argc, argv, i, "--output", &missing)) || (v = opt_value(argc, argv, i, "-o", &missing)))
		g->output = v;
	else if ((v = opt_value(argc, argv, i, "--timeout", &missing)))
		g->timeout = v;
	else if ((v = opt_value(argc, argv, i, "--context", &missing)))
		g->context = v;
	else if ((v = opt_value(argc, argv, i, "--config", &missing)))
		g->config = v;
	else if (!missing && (!strcmp(argv[*i], "--token") || !strncmp(argv[*i], "--token=", 8))) {
		errorf("--token is not accepted (it would show in the process list and shell history); "
		       "set FERRY_TOKEN or use --token-file FILE");
		return -1;
	}
	if (missing) {
		flag_name(argv[*i], name, sizeof name);
		errorf("%s needs a value", name);
		return -1;
	}
	return v ? 1 : 0;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
	size_t k = strspn(s, " \t\r\n");
	if (k)
		memmove(s, s + k, n - k + 1);
}

/* The structured format of print_doc(): 0 JSON, 1 YAML. One command per
 * process, so a file-level setting made once by client_init(). */
static int doc_yaml;

/* Sets up c from the settings (flag > environment > context > default,
 * config.h); 0, or -1 after printing why. Messages name where a bad value
 * came from and never echo a token. */
static int client_init(struct client *c, const struct cli_settings *s)
{
	memset(c, 0, sizeof(*c));
	if (strncmp(s->server, "http://", 7) && strncmp(s->server, "https://", 8)) {
		errorf("%s must be an http:// or https:// URL", s->server_from);
		return -1;
	}
	c->server_buf = xstrdup(s->server);
	size_t n = strlen(c->server_buf);
	while (n > 0 && c->server_buf[n - 1] == '/')
		c->server_buf[--n] = 0;
	c->server = c->server_buf;
	if (s->output && strcmp(s->output, "table") && strcmp(s->output, "json") && strcmp(s->output, "yaml")) {
		errorf("%s must be table, json or yaml", s->output_from);
		return -1;
	}
	c->structured = s->output && strcmp(s->output, "table");
	doc_yaml = s->output && !strcmp(s->output, "yaml");
	if (s->timeout) {
		if (parse_duration(s->timeout, &c->timeout_s) != 0 || c->timeout_s <= 0) {
			errorf("%s must be a positive duration such as 90, 90s, 5m or 1h", s->timeout_from);
			return -1;
		}
		c->deadline = now_ms() + c->timeout_s * 1000;
	}
	if (s->ca_file) {
		/* Checked here so a typo is a clear message, not a TLS failure. */
		FILE *ca = fopen(s->ca_file, "r");
		if (!ca) {
			errorf("cannot read the CA file %s (%s): %s", s->ca_file, s->ca_from, strerror(errno));
			return -1;
		}
		fclose(ca);
		c->ca_file = xstrdup(s->ca_file);
	}
	if (s->token_file) {
		c->token = read_file_limit(s->token_file, 64 * 1024, NULL);
		if (!c->token) {
			errorf("cannot read the token file %s (%s): %s", s->token_file, s->token_from,
			       strerror(errno));
			return -1;
		}
		trim(c->token);
		if (!*c->token) {
			errorf("the token file %s (%s) is empty", s->token_file, s->token_from);
			return -1;
		}
	} else if (s->token_env) {
		c->token = xstrdup(getenv("FERRY_TOKEN"));
		trim(c->token);
	} else {
		errorf("no token: set FERRY_TOKEN, use --token-file FILE, or a context with a token-file "
		       "(ferry config set-context)");
		return -1;
	}
	if (strpbrk(c->token, "\r\n")) {
		errorf("the token holds a line break; a token is one line");
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(c->curl = curl_easy_init())) {
		errorf("cannot initialise libcurl");
		return -1;
	}
	return 0;
}

static void client_free(struct client *c)
{
	if (c->curl) {
		curl_easy_cleanup(c->curl);
		curl_global_cleanup();
	}
	if (c->token) {
		memset(c->token, 0, strlen(c->token));
		free(c->token);
	}
	free(c->server_buf);
	free(c->ca_file);
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	if (b->len + size * n > 64u * 1024 * 1024)
		return 0; /* refuse absurd answers */
	buf_append(b, p, size * n);
	return size * n;
}

enum http_rc { HTTP_OK = 0, HTTP_TRANSPORT = 1, HTTP_DEADLINE = 2 };

/*
 * One request. path starts with "/v1/..."; body (may be NULL) is sent as
 * JSON. On transport errors prints nothing when quiet, else one line; the
 * answer (any status) lands in *r (caller frees r->body).
 */
static enum http_rc http_do(struct client *c, const char *method, const char *path, const json_t *body,
			    const char *idem_key, struct resp *r, int quiet)
{
	memset(r, 0, sizeof(*r));
	long tmo = REQUEST_TIMEOUT_MS;
	int by_deadline = 0;
	if (c->deadline) {
		double left = c->deadline - now_ms();
		if (left <= 0)
			return HTTP_DEADLINE;
		if (left < tmo) {
			tmo = (long)left + 1;
			by_deadline = 1;
		}
	}
	struct buf url = BUF_INIT, auth = BUF_INIT, idem = BUF_INIT;
	char *data = NULL;
	struct curl_slist *h = NULL;
	enum http_rc rc = HTTP_OK;
	CURL *cu = c->curl;
	curl_easy_reset(cu);
	buf_printf(&url, "%s%s", c->server, path);
	buf_printf(&auth, "Authorization: Bearer %s", c->token);
	h = curl_slist_append(h, buf_cstr(&auth));
	h = curl_slist_append(h, "Accept: application/json, application/problem+json");
	if (idem_key) {
		buf_printf(&idem, "Idempotency-Key: %s", idem_key);
		h = curl_slist_append(h, buf_cstr(&idem));
	}
	if (body) {
		data = json_dumps(body, JSON_COMPACT);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, data);
	}
	curl_easy_setopt(cu, CURLOPT_URL, buf_cstr(&url));
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST") && !body)
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, tmo < 10000 ? tmo : 10000L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, tmo);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "ferry-cli/" PACKAGE_VERSION);
	if (c->ca_file)
		curl_easy_setopt(cu, CURLOPT_CAINFO, c->ca_file);
	CURLcode cc = curl_easy_perform(cu);
	if (cc != CURLE_OK) {
		if (cc == CURLE_OPERATION_TIMEDOUT && by_deadline) {
			rc = HTTP_DEADLINE;
		} else {
			if (!quiet)
				errorf("cannot reach %s: %s", c->server, curl_easy_strerror(cc));
			rc = HTTP_TRANSPORT;
		}
		buf_free(&r->body);
		goto out;
	}
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r->status);
	char *ct = NULL;
	curl_easy_getinfo(cu, CURLINFO_CONTENT_TYPE, &ct);
	if (ct)
		snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
out:
	curl_slist_free_all(h);
	if (auth.data)
		memset(auth.data, 0, auth.len);
	buf_free(&auth);
	buf_free(&url);
	buf_free(&idem);
	free(data);
	return rc;
}

/* One line for a non-2xx answer: "title: detail (field: message; ...)". */
static void print_problem(const struct resp *r)
{
	json_t *p = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
	const char *title = json_string_value(json_object_get(p, "title"));
	const char *detail = json_string_value(json_object_get(p, "detail"));
	if (title || detail) {
		struct buf line = BUF_INIT;
		buf_printf(&line, "%s", title ? title : "Error");
		if (detail && *detail)
			buf_printf(&line, ": %s", detail);
		const json_t *errs = json_object_get(p, "errors");
		if (json_is_array(errs) && json_array_size(errs)) {
			size_t i;
			const json_t *e;
			buf_puts(&line, " (");
			json_array_foreach(errs, i, e) {
				const char *f = json_string_value(json_object_get(e, "field"));
				const char *m = json_string_value(json_object_get(e, "message"));
				buf_printf(&line, "%s%s%s%s", i ? "; " : "", f ? f : "", f && m ? ": " : "", m ? m : "");
			}
			buf_puts(&line, ")");
		}
		/* keep it on one line whatever the server wrote */
		for (size_t k = 0; k < line.len; k++)
			if (line.data[k] == '\n' || line.data[k] == '\r')
				line.data[k] = ' ';
		errorf("%s (HTTP %ld)", buf_cstr(&line), r->status);
		buf_free(&line);
	} else {
		char snippet[201];
		size_t n = r->body.len < 200 ? r->body.len : 200;
		for (size_t k = 0; k < n; k++) {
			char ch = r->body.data[k];
			snippet[k] = (ch == '\n' || ch == '\r' || (unsigned char)ch < 0x20) ? ' ' : ch;
		}
		snippet[n] = 0;
		errorf("HTTP %ld from the server%s%s", r->status, n ? ": " : "", snippet);
	}
	json_decref(p);
}

static int is_transient_status(long s)
{
	return s == 502 || s == 503 || s == 504;
}

static int timeout_exit(struct client *c)
{
	errorf("timed out after %gs (--timeout)", c->timeout_s);
	return EXIT_TIMEOUT;
}

/*
 * A JSON request: 0 with *out (new reference) on 2xx, else prints the error
 * and returns the exit status (2, or 3 when the deadline passed). When
 * retries > 0 transport errors and 502/503/504 are retried (only safe for
 * GETs and POSTs carrying an Idempotency-Key).
 */
int api(struct client *c, const char *method, const char *path, const json_t *body, const char *idem_key,
	int retries, json_t **out)
{
	struct resp r;
	int rc = EXIT_USAGE;
	*out = NULL;
	for (int attempt = 0;; attempt++) {
		int last = attempt >= retries;
		enum http_rc h = http_do(c, method, path, body, idem_key, &r, !last);
		if (h == HTTP_DEADLINE)
			return timeout_exit(c);
		if (h == HTTP_TRANSPORT || is_transient_status(r.status)) {
			if (!last) {
				buf_free(&r.body);
				usleep((useconds_t)(500000u << (attempt < 4 ? attempt : 4)));
				continue;
			}
			if (h == HTTP_TRANSPORT)
				return EXIT_USAGE;
		}
		break;
	}
	if (r.status < 200 || r.status > 299) {
		print_problem(&r);
		goto out;
	}
	json_error_t je;
	*out = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, &je);
	if (!*out) {
		errorf("the server's answer to %s %s is not JSON: %s", method, path, je.text);
		goto out;
	}
	rc = 0;
out:
	buf_free(&r.body);
	return rc;
}

char *escape(struct client *c, const char *s)
{
	char *e = curl_easy_escape(c->curl, s, 0);
	char *copy = xstrdup(e ? e : "");
	curl_free(e);
	return copy;
}

int looks_like_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!strchr("0123456789abcdefABCDEF", s[i]))
			return 0;
	}
	return 1;
}

/* All pages of a list endpoint (path already has its query, may be empty).
 * max = 0 for everything. *items gets a new array. */
enum poll_rc { POLL_OK, POLL_TRANSIENT, POLL_ERROR, POLL_DEADLINE };

static enum poll_rc poll_get(struct client *c, const char *path, json_t **out);

int list_all(struct client *c, const char *path, size_t max, int polling, json_t **items)
{
	*items = json_array();
	char *cursor = NULL;
	int rc = 0;
	for (;;) {
		struct buf p = BUF_INIT;
		size_t want = max ? max - json_array_size(*items) : 200;
		buf_printf(&p, "%s%slimit=%zu", path, strchr(path, '?') ? "&" : "?", want > 200 ? 200 : want);
		if (cursor) {
			char *e = escape(c, cursor);
			buf_printf(&p, "&cursor=%s", e);
			free(e);
		}
		json_t *page;
		rc = polling ? (int)poll_get(c, buf_cstr(&p), &page) : api(c, "GET", buf_cstr(&p), NULL, NULL, 2, &page);
		buf_free(&p);
		if (rc)
			break;
		json_array_extend(*items, json_object_get(page, "items"));
		free(cursor);
		const char *next = json_string_value(json_object_get(page, "next_cursor"));
		cursor = next ? xstrdup(next) : NULL;
		json_decref(page);
		if (!cursor || (max && json_array_size(*items) >= max))
			break;
	}
	free(cursor);
	if (rc) {
		json_decref(*items);
		*items = NULL;
	}
	return rc;
}

/* CLUSTER (a name or an id) → id in out. */
int resolve_cluster(struct client *c, const char *name_or_id, char *out, size_t outlen)
{
	if (looks_like_uuid(name_or_id)) {
		snprintf(out, outlen, "%s", name_or_id);
		return 0;
	}
	json_t *items;
	int rc = list_all(c, "/v1/clusters", 0, 0, &items);
	if (rc)
		return rc;
	size_t i;
	json_t *it;
	rc = EXIT_USAGE;
	json_array_foreach(items, i, it) {
		const char *n = json_string_value(json_object_get(it, "name"));
		const char *id = json_string_value(json_object_get(it, "id"));
		if (n && id && !strcmp(n, name_or_id)) {
			snprintf(out, outlen, "%s", id);
			rc = 0;
			break;
		}
	}
	if (rc)
		errorf("no cluster named %s", name_or_id);
	json_decref(items);
	return rc;
}

/* ---------------------------------------------------------------- output */

void print_doc(const json_t *v)
{
	if (doc_yaml) {
		char *y = json_to_yaml(v);
		fputs(y, stdout);
		free(y);
		return;
	}
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s)
		puts(s);
	free(s);
}

/* A value as table text (owned by caller). */
char *cell(const json_t *v)
{
	if (!v || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return xstrdup(*json_string_value(v) ? json_string_value(v) : "-");
	if (json_is_integer(v)) {
		char b[32];
		snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
		return xstrdup(b);
	}
	if (json_is_true(v))
		return xstrdup("true");
	if (json_is_false(v))
		return xstrdup("false");
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	return s ? s : xstrdup("?");
}

static char *labels_cell(const json_t *labels)
{
	struct buf b = BUF_INIT;
	const char *k;
	json_t *v;
	int first = 1;
	json_object_foreach((json_t *)labels, k, v) {
		buf_printf(&b, "%s%s=%s", first ? "" : ",", k, json_string_value(v) ? json_string_value(v) : "");
		first = 0;
	}
	if (first)
		buf_puts(&b, "-");
	return buf_steal(&b);
}

void table_add(struct table *t, char **row)
{
	t->cells = xrealloc(t->cells, (t->nrow + 1) * t->ncol * sizeof(char *));
	memcpy(t->cells + t->nrow * t->ncol, row, t->ncol * sizeof(char *));
	t->nrow++;
}

void table_print(struct table *t)
{
	size_t *w = xcalloc(t->ncol, sizeof(size_t));
	for (size_t r = 0; r < t->nrow; r++)
		for (size_t k = 0; k < t->ncol; k++) {
			size_t l = strlen(t->cells[r * t->ncol + k]);
			if (l > w[k])
				w[k] = l;
		}
	for (size_t r = 0; r < t->nrow; r++) {
		for (size_t k = 0; k < t->ncol; k++) {
			const char *s = t->cells[r * t->ncol + k];
			if (k + 1 == t->ncol)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[k], s);
		}
	}
	for (size_t i = 0; i < t->nrow * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
}

/* "drifted: 3 in sync, 1 drifted, 0 missing at T (job ID)"; caller frees. */
static char *last_check_cell(const json_t *lc)
{
	struct buf b = BUF_INIT;
	const char *k[] = { "outcome", "in_sync", "drifted", "missing", "at", "job_id" };
	char *v[6];
	for (int i = 0; i < 6; i++)
		v[i] = cell(json_object_get(lc, k[i]));
	buf_printf(&b, "%s: %s in sync, %s drifted, %s missing at %s (job %s)", v[0], v[1], v[2], v[3], v[4], v[5]);
	for (int i = 0; i < 6; i++)
		free(v[i]);
	return buf_steal(&b);
}

static void print_cluster(const json_t *cl)
{
	static const char *const keys[] = { "id", "name", "profile", "api_server", "tls_server_name", "auth",
					    "has_ca_bundle", "kube_version", "node_count", "cilium_version",
					    "release_revision", "release_status", "last_success_at", "last_check",
					    "last_contact_at", "active_job_id", "created_at", "updated_at", NULL };
	for (int i = 0; keys[i]; i++) {
		const json_t *v = json_object_get(cl, keys[i]);
		char *s = json_is_object(v) && !strcmp(keys[i], "last_check") ? last_check_cell(v) : cell(v);
		printf("%-17s %s\n", keys[i], s);
		free(s);
	}
	char *l = labels_cell(json_object_get(cl, "labels"));
	printf("%-17s %s\n", "labels", l);
	free(l);
}

static char *phase_summary(const json_t *ph)
{
	struct buf b = BUF_INIT;
	const json_t *d = json_object_get(ph, "duration_ms");
	const json_t *calls = json_object_get(ph, "api_calls");
	const json_t *att = json_object_get(ph, "attempts");
	int any = 0;
	if (json_is_integer(d)) {
		buf_printf(&b, "%s%lld ms", any ? ", " : "", (long long)json_integer_value(d));
		any = 1;
	}
	if (json_is_integer(calls) && json_integer_value(calls)) {
		buf_printf(&b, "%s%lld API calls", any ? ", " : "", (long long)json_integer_value(calls));
		any = 1;
	}
	if (json_is_integer(att) && json_integer_value(att) > 1) {
		buf_printf(&b, "%s%lld attempts", any ? ", " : "", (long long)json_integer_value(att));
		any = 1;
	}
	return buf_steal(&b);
}

static void print_job(const json_t *job)
{
	static const char *const keys[] = { "id", "cluster_id", "cluster_name", "kind", "state", "attempt",
					    "cancel_requested", "created_at", "started_at", "finished_at", "error",
					    NULL };
	for (int i = 0; keys[i]; i++) {
		char *s = cell(json_object_get(job, keys[i]));
		printf("%-17s %s\n", keys[i], s);
		free(s);
	}
	char *p = cell(json_object_get(job, "params"));
	printf("%-17s %s\n", "params", p);
	free(p);
	const json_t *phases = json_object_get(job, "phases");
	if (json_array_size(phases)) {
		struct table t = { 6, 0, NULL };
		char *hdr[6] = { xstrdup("PHASE"), xstrdup("STATE"), xstrdup("ATTEMPTS"), xstrdup("API CALLS"),
				 xstrdup("DURATION"), xstrdup("MESSAGE") };
		table_add(&t, hdr);
		size_t i;
		const json_t *ph;
		json_array_foreach(phases, i, ph) {
			const json_t *d = json_object_get(ph, "duration_ms");
			char dur[32] = "-";
			if (json_is_integer(d))
				snprintf(dur, sizeof dur, "%lld ms", (long long)json_integer_value(d));
			char *row[6] = { cell(json_object_get(ph, "name")), cell(json_object_get(ph, "state")),
					 cell(json_object_get(ph, "attempts")), cell(json_object_get(ph, "api_calls")),
					 xstrdup(dur), cell(json_object_get(ph, "message")) };
			table_add(&t, row);
		}
		putchar('\n');
		table_print(&t);
	}
}

/* ---------------------------------------------------------------- commands */

/* The per-command argument parsing is shared: each command declares the flags
 * it takes; global options may appear anywhere. */
struct args {
	const char *pos[3];
	int npos;
	const char *version, *idem, *selector, *state, *cluster, *limit;
	const char **files, **sets;
	size_t nfiles, nsets;
	int image_mirror, dry_run, allow_existing, wait, upgrade, connection_only;
	/* upgrade/install value handling and remediation (Helm's and Flux's) */
	int reuse_values, reset_values, reset_then_reuse_values;
	const char *max_history, *on_failure, *retries;
};

enum { F_INSTALL = 1, F_PREFLIGHT = 2, F_SELECTOR = 4, F_JOBLIST = 8 };

static int parse_args(int argc, char **argv, int flags, int maxpos, struct globals *g, struct args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		int missing = 0, k;
		const char *v = NULL;
		const char *arg = argv[i];
		if ((k = global_opt(argc, argv, &i, g)) != 0) {
			if (k < 0)
				return -1;
			continue;
		}
		if (!strcmp(arg, "--"))
			continue;
		if ((flags & (F_INSTALL | F_PREFLIGHT)) && !strcmp(arg, "--wait"))
			a->wait = 1;
		else if ((flags & (F_INSTALL | F_PREFLIGHT)) &&
			 (v = opt_value(argc, argv, &i, "--idempotency-key", &missing)))
			a->idem = v;
		else if ((flags & F_PREFLIGHT) && !strcmp(arg, "--connection-only"))
			a->connection_only = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--image-mirror"))
			a->image_mirror = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--dry-run"))
			a->dry_run = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--allow-existing-nodes"))
			a->allow_existing = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--upgrade"))
			a->upgrade = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--reuse-values"))
			a->reuse_values = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--reset-values"))
			a->reset_values = 1;
		else if ((flags & F_INSTALL) && !strcmp(arg, "--reset-then-reuse-values"))
			a->reset_then_reuse_values = 1;
		else if ((flags & F_INSTALL) && (v = opt_value(argc, argv, &i, "--max-history", &missing)))
			a->max_history = v;
		else if ((flags & F_INSTALL) && (v = opt_value(argc, argv, &i, "--on-failure", &missing)))
			a->on_failure = v;
		else if ((flags & F_INSTALL) && (v = opt_value(argc, argv, &i, "--retries", &missing)))
			a->retries = v;
		else if ((flags & F_INSTALL) && (v = opt_value(argc, argv, &i, "--version", &missing)))
			a->version = v;
		else if ((flags & F_INSTALL) && ((v = opt_value(argc, argv, &i, "-f", &missing)) ||
						 (v = opt_value(argc, argv, &i, "--values", &missing)))) {
			a->files = xrealloc(a->files, (a->nfiles + 1) * sizeof(char *));
			a->files[a->nfiles++] = v;
		} else if ((flags & F_INSTALL) && (v = opt_value(argc, argv, &i, "--set", &missing))) {
			a->sets = xrealloc(a->sets, (a->nsets + 1) * sizeof(char *));
			a->sets[a->nsets++] = v;
		} else if ((flags & F_SELECTOR) && ((v = opt_value(argc, argv, &i, "--selector", &missing)) ||
						    (v = opt_value(argc, argv, &i, "-l", &missing))))
			a->selector = v;
		else if ((flags & F_JOBLIST) && (v = opt_value(argc, argv, &i, "--state", &missing)))
			a->state = v;
		else if ((flags & F_JOBLIST) && (v = opt_value(argc, argv, &i, "--cluster", &missing)))
			a->cluster = v;
		else if ((flags & F_JOBLIST) && (v = opt_value(argc, argv, &i, "--limit", &missing)))
			a->limit = v;
		else if (missing || (arg[0] == '-' && arg[1])) {
			char name[64];
			flag_name(arg, name, sizeof name);
			errorf("%s %s", missing ? "a value is missing after" : "unknown flag", name);
			return -1;
		} else if (a->npos < maxpos)
			a->pos[a->npos++] = arg;
		else {
			errorf("unexpected argument %s", arg);
			return -1;
		}
	}
	return 0;
}

static void args_free(struct args *a)
{
	free(a->files);
	free(a->sets);
}

static int do_clusters_list(struct client *c, const struct args *a)
{
	struct buf p = BUF_INIT;
	buf_puts(&p, "/v1/clusters");
	if (a->selector) {
		char *e = escape(c, a->selector);
		buf_printf(&p, "?selector=%s", e);
		free(e);
	}
	json_t *items;
	int rc = list_all(c, buf_cstr(&p), 0, 0, &items);
	buf_free(&p);
	if (rc)
		return rc;
	if (c->structured) {
		print_doc(items);
	} else {
		struct table t = { 8, 0, NULL };
		char *hdr[8] = { xstrdup("NAME"), xstrdup("ID"), xstrdup("PROFILE"), xstrdup("KUBE"), xstrdup("NODES"),
				 xstrdup("CILIUM"), xstrdup("ACTIVE JOB"), xstrdup("LABELS") };
		table_add(&t, hdr);
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			char *row[8] = { cell(json_object_get(it, "name")), cell(json_object_get(it, "id")),
					 cell(json_object_get(it, "profile")), cell(json_object_get(it, "kube_version")),
					 cell(json_object_get(it, "node_count")), cell(json_object_get(it, "cilium_version")),
					 cell(json_object_get(it, "active_job_id")), labels_cell(json_object_get(it, "labels")) };
			table_add(&t, row);
		}
		table_print(&t);
	}
	json_decref(items);
	return 0;
}

static int do_clusters_get(struct client *c, const char *target)
{
	char id[64];
	int rc = resolve_cluster(c, target, id, sizeof id);
	if (rc)
		return rc;
	char path[128];
	snprintf(path, sizeof path, "/v1/clusters/%s", id);
	json_t *cl;
	if ((rc = api(c, "GET", path, NULL, NULL, 2, &cl)))
		return rc;
	if (c->structured)
		print_doc(cl);
	else
		print_cluster(cl);
	json_decref(cl);
	return 0;
}

/* ---------------------------------------------------------------- waiting */

static int job_finished(const char *state)
{
	return state && (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled"));
}

static const char *clock_of(const char *ts, char *out, size_t outlen)
{
	/* RFC 3339 "2026-11-21T06:04:39.123Z" → "06:04:39" */
	const char *t = ts ? strchr(ts, 'T') : NULL;
	if (t && strlen(t) >= 9)
		snprintf(out, outlen, "%.8s", t + 1);
	else
		snprintf(out, outlen, "--:--:--");
	return out;
}

static void wall_clock(char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, outlen, "%H:%M:%S", &tm);
}

/* Progress lines of one poll, printed in time order (RFC 3339 strings of
 * one fixed format sort as text): a phase start before the log lines of the
 * same millisecond, a phase end after them. */
struct progress_line {
	char *at;
	int order;
	size_t seq;
	char *text;
};
struct progress {
	struct progress_line *v;
	size_t n;
};

static void progress_add(struct progress *p, const char *at, int order, char *text)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n] = (struct progress_line){ xstrdup(at ? at : ""), order, p->n, text };
	p->n++;
}

static int progress_cmp(const void *a, const void *b)
{
	const struct progress_line *x = a, *y = b;
	int c = strcmp(x->at, y->at);
	if (c)
		return c;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void progress_print(struct progress *p, FILE *f)
{
	if (p->n)
		qsort(p->v, p->n, sizeof(*p->v), progress_cmp);
	for (size_t i = 0; i < p->n; i++)
		fprintf(f, "%s\n", p->v[i].text);
}

static void progress_free(struct progress *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].at);
		free(p->v[i].text);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* "[hh:mm:ss] job ID: STATE" when the state differs from *last. */
static void print_job_state(FILE *prog, const json_t *job, const char *id, const char *state, char **last)
{
	char ts[16];
	if (!state || (*last && !strcmp(*last, state)))
		return;
	const char *key = !strcmp(state, "queued") ? "created_at" : !strcmp(state, "running") ? "started_at"
												 : "finished_at";
	const char *at = json_string_value(json_object_get(job, key));
	if (at)
		clock_of(at, ts, sizeof ts);
	else
		wall_clock(ts, sizeof ts);
	fprintf(prog, "[%s] job %s: %s\n", ts, id, state);
	free(*last);
	*last = xstrdup(state);
}

/* A GET while waiting: POLL_OK with *out (new reference, any JSON), or
 * POLL_TRANSIENT (connection failed, 502/503/504; nothing printed), or
 * POLL_ERROR (printed), or POLL_DEADLINE. */
static enum poll_rc poll_get(struct client *c, const char *path, json_t **out)
{
	struct resp r;
	*out = NULL;
	enum http_rc h = http_do(c, "GET", path, NULL, NULL, &r, 1);
	if (h == HTTP_DEADLINE)
		return POLL_DEADLINE;
	if (h == HTTP_TRANSPORT)
		return POLL_TRANSIENT;
	enum poll_rc rc = POLL_OK;
	if (is_transient_status(r.status)) {
		rc = POLL_TRANSIENT;
	} else if (r.status != 200) {
		print_problem(&r);
		rc = POLL_ERROR;
	} else if (!(*out = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL))) {
		errorf("the server's answer to GET %s is not JSON", path);
		rc = POLL_ERROR;
	}
	buf_free(&r.body);
	return rc;
}

/*
 * Follows job `id` until it finishes; progress lines go to `prog`. Returns
 * the exit status; *final gets the last job JSON (new reference) or NULL.
 */
static int follow_job(struct client *c, const char *id, FILE *prog, json_t **final)
{
	json_t *seen = json_object(); /* phase name → last printed state */
	char *last_state = NULL;
	long long after = 0;
	double failing_since = 0;
	int rc = EXIT_USAGE;
	*final = NULL;
	for (;;) {
		char path[160], ts[16];
		json_t *job = NULL, *ev = NULL;
		snprintf(path, sizeof path, "/v1/jobs/%s", id);
		enum poll_rc p = poll_get(c, path, &job);
		if (p == POLL_OK && !json_is_object(job)) {
			errorf("the server's answer to GET %s is not a JSON object", path);
			p = POLL_ERROR;
		}
		if (p != POLL_OK) {
		poll_failed:
			json_decref(job);
			job = NULL;
			if (p == POLL_DEADLINE) {
				rc = timeout_exit(c);
				break;
			}
			if (p == POLL_ERROR)
				break;
			/* ferryd restarting or a proxy hiccup: keep trying for a while */
			if (!failing_since) {
				failing_since = now_ms();
				wall_clock(ts, sizeof ts);
				fprintf(prog, "[%s] cannot reach %s; retrying\n", ts, c->server);
				fflush(prog);
			}
			if (now_ms() - failing_since > TRANSIENT_RETRY_MS) {
				errorf("gave up: %s has not answered for %.0f s", c->server, TRANSIENT_RETRY_MS / 1000);
				break;
			}
			goto sleep;
		}
		failing_since = 0;
		/* the job's own state first (queued/running), then its new log
		 * lines, then phase changes, and a final state last */
		const char *state = json_string_value(json_object_get(job, "state"));
		if (!job_finished(state))
			print_job_state(prog, job, id, state, &last_state);
		/* new log lines (all pages) and phase changes, merged by time */
		struct progress pr = { 0 };
		long long ev_after = after; /* committed only when every page arrived */
		for (;;) {
			snprintf(path, sizeof path, "/v1/jobs/%s/events?after=%lld&limit=200", id, ev_after);
			p = poll_get(c, path, &ev);
			if (p == POLL_OK && !json_is_object(ev)) {
				errorf("the server's answer to GET %s is not a JSON object", path);
				p = POLL_ERROR;
			}
			if (p != POLL_OK) {
				json_decref(ev);
				progress_free(&pr);
				goto poll_failed;
			}
			const json_t *items = json_object_get(ev, "items");
			size_t i;
			const json_t *e;
			json_array_foreach(items, i, e) {
				const json_t *eid = json_object_get(e, "id");
				if (json_is_integer(eid) && json_integer_value(eid) > ev_after)
					ev_after = json_integer_value(eid);
				const char *at = json_string_value(json_object_get(e, "at"));
				const char *level = json_string_value(json_object_get(e, "level"));
				const char *phase = json_string_value(json_object_get(e, "phase"));
				const char *msg = json_string_value(json_object_get(e, "message"));
				struct buf l = BUF_INIT;
				buf_printf(&l, "[%s] %-5s %s%s%s", clock_of(at, ts, sizeof ts), level ? level : "info",
					   phase ? phase : "", phase ? ": " : "", msg ? msg : "");
				progress_add(&pr, at, 1, buf_steal(&l));
			}
			size_t n = json_array_size(items);
			json_decref(ev);
			ev = NULL;
			if (n < 200)
				break;
		}
		after = ev_after;
		const json_t *phases = json_object_get(job, "phases");
		size_t i;
		const json_t *ph;
		json_array_foreach(phases, i, ph) {
			const char *name = json_string_value(json_object_get(ph, "name"));
			const char *st = json_string_value(json_object_get(ph, "state"));
			if (!name || !st)
				continue;
			const char *prev = json_string_value(json_object_get(seen, name));
			if (prev && !strcmp(prev, st))
				continue;
			json_object_set_new(seen, name, json_string(st));
			if (!strcmp(st, "pending"))
				continue;
			int running = !strcmp(st, "running");
			char *sum = phase_summary(ph);
			const char *msg = json_string_value(json_object_get(ph, "message"));
			const char *at = json_string_value(json_object_get(ph, running ? "started_at" : "finished_at"));
			/* the log already has each phase's message; repeat it for failures */
			int with_msg = msg && *msg && !strcmp(st, "failed");
			struct buf l = BUF_INIT;
			buf_printf(&l, "[%s] phase %s: %s%s%s%s%s%s", at ? clock_of(at, ts, sizeof ts) : "--:--:--", name,
				   st, *sum ? " (" : "", sum, *sum ? ")" : "", with_msg ? ": " : "", with_msg ? msg : "");
			free(sum);
			progress_add(&pr, at, running ? 0 : 2, buf_steal(&l));
		}
		progress_print(&pr, prog);
		progress_free(&pr);
		if (job_finished(state))
			print_job_state(prog, job, id, state, &last_state);
		fflush(prog);
		if (job_finished(state)) {
			if (!strcmp(state, "succeeded")) {
				rc = EXIT_OK;
			} else {
				const char *err = json_string_value(json_object_get(job, "error"));
				errorf("job %s %s: %s", id, state, err && *err ? err : "(no error message)");
				rc = EXIT_JOB_FAILED;
			}
			*final = job;
			break;
		}
		json_decref(job);
	sleep:
		if (c->deadline && now_ms() + 1000 > c->deadline) {
			double left = c->deadline - now_ms();
			if (left > 0)
				usleep((useconds_t)(left * 1000));
			/* one more look after the deadline would race it: report now */
			rc = timeout_exit(c);
			break;
		}
		usleep(1000000);
	}
	free(last_state);
	json_decref(seen);
	return rc;
}

/* Prints the job (json mode) or its id, then follows it when asked. */
static int after_create(struct client *c, json_t *job, int wait)
{
	const char *id = json_string_value(json_object_get(job, "id"));
	if (!id) {
		errorf("the server's answer holds no job id");
		return EXIT_USAGE;
	}
	if (!wait) {
		if (c->structured)
			print_doc(job);
		else
			printf("%s\n", id);
		return EXIT_OK;
	}
	if (!c->structured) {
		printf("%s\n", id);
		fflush(stdout);
	}
	json_t *final;
	int rc = follow_job(c, id, c->structured ? stderr : stdout, &final);
	if (final && c->structured)
		print_doc(final);
	else if (final)
		lifecycle_print_result(final);
	json_decref(final);
	return rc;
}

static char *random_key(void)
{
	unsigned char rnd[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, rnd, sizeof rnd) : -1;
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof rnd) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		srand((unsigned)(t.tv_nsec ^ getpid()));
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (unsigned char)rand();
	}
	struct buf b = BUF_INIT;
	buf_puts(&b, "ferry-cli-");
	for (size_t i = 0; i < sizeof rnd; i++)
		buf_printf(&b, "%02x", rnd[i]);
	return buf_steal(&b);
}

int create_job(struct client *c, const char *cluster, const char *kind, json_t *params, const char *idem,
	       int wait)
{
	char id[64], path[160];
	int rc = resolve_cluster(c, cluster, id, sizeof id);
	if (rc) {
		json_decref(params);
		return rc;
	}
	snprintf(path, sizeof path, "/v1/clusters/%s/jobs", id);
	json_t *body = json_pack("{s:s,s:o}", "kind", kind, "params", params);
	char *key = idem ? NULL : random_key();
	json_t *job;
	/* retried POSTs are safe: they carry an Idempotency-Key */
	rc = api(c, "POST", path, body, idem ? idem : key, 3, &job);
	free(key);
	json_decref(body);
	if (rc)
		return rc;
	rc = after_create(c, job, wait);
	json_decref(job);
	return rc;
}

int client_add_values(json_t *params, const char **files, size_t nfiles, const char **sets,
		      size_t nsets)
{
	if (nfiles) {
		json_t *arr = json_array();
		for (size_t i = 0; i < nfiles; i++) {
			size_t len;
			char *text = read_file_limit(files[i], 4 * 1024 * 1024, &len);
			if (!text) {
				errorf("cannot read values file %s: %s", files[i],
				       errno == EFBIG ? "larger than 4 MiB" : strerror(errno));
				json_decref(arr);
				return -1;
			}
			json_t *s = json_stringn(text, len);
			free(text);
			if (!s) {
				errorf("values file %s is not UTF-8 text", files[i]);
				json_decref(arr);
				return -1;
			}
			json_array_append_new(arr, s);
		}
		json_object_set_new(params, "values_yaml", arr);
	}
	if (nsets) {
		json_t *arr = json_array();
		for (size_t i = 0; i < nsets; i++)
			json_array_append_new(arr, json_string(sets[i]));
		json_object_set_new(params, "set", arr);
	}
	return 0;
}

/* The install/upgrade flags that map to params one to one (reuse/reset
 * values, max history, remediation); 0 or the usage exit status. */
static int install_value_params(const struct args *a, json_t *params)
{
	if (a->reuse_values + a->reset_values + a->reset_then_reuse_values > 1) {
		errorf("--reuse-values, --reset-values and --reset-then-reuse-values exclude each other");
		return EXIT_USAGE;
	}
	if (a->reuse_values)
		json_object_set_new(params, "reuse_values", json_true());
	if (a->reset_values)
		json_object_set_new(params, "reset_values", json_true());
	if (a->reset_then_reuse_values)
		json_object_set_new(params, "reset_then_reuse_values", json_true());
	long long n;
	if (a->max_history) {
		if (lifecycle_parse_count(a->max_history, &n) != 0) {
			errorf("--max-history must be a whole number (0: keep every revision)");
			return EXIT_USAGE;
		}
		json_object_set_new(params, "max_history", json_integer(n));
	}
	if (a->on_failure) {
		if (strcmp(a->on_failure, "rollback")) {
			errorf("--on-failure takes rollback");
			return EXIT_USAGE;
		}
		json_object_set_new(params, "on_failure", json_string(a->on_failure));
	}
	if (a->retries) {
		if (lifecycle_parse_count(a->retries, &n) != 0) {
			errorf("--retries must be a whole number");
			return EXIT_USAGE;
		}
		json_object_set_new(params, "retries", json_integer(n));
	}
	return 0;
}

/* `ferry install` and `ferry upgrade` (= install --upgrade). */
static int install_or_upgrade(struct client *c, int argc, char **argv, struct globals *g, int upgrade)
{
	struct args a;
	int rc = EXIT_USAGE;
	if (parse_args(argc, argv, F_INSTALL, 1, g, &a) != 0)
		goto out;
	if (a.npos != 1) {
		errorf("usage: ferry %s CLUSTER [--version V] [-f values.yaml]... [--set k=v]... [--wait] ...",
		       upgrade ? "upgrade" : "install");
		goto out;
	}
	if (upgrade)
		a.upgrade = 1;
	json_t *params = json_object();
	if ((rc = install_value_params(&a, params)) != 0) {
		json_decref(params);
		goto out;
	}
	rc = EXIT_USAGE;
	if (a.version)
		json_object_set_new(params, "chart_version", json_string(a.version));
	if (client_add_values(params, a.files, a.nfiles, a.sets, a.nsets) != 0) {
		json_decref(params);
		goto out;
	}
	if (a.image_mirror)
		json_object_set_new(params, "image_mirror", json_true());
	if (a.dry_run)
		json_object_set_new(params, "dry_run", json_true());
	if (a.allow_existing)
		json_object_set_new(params, "allow_existing_nodes", json_true());
	rc = create_job(c, a.pos[0], a.upgrade ? "upgrade" : "install", params, a.idem, a.wait);
out:
	args_free(&a);
	return rc;
}

static int cmd_install(struct client *c, int argc, char **argv, struct globals *g)
{
	return install_or_upgrade(c, argc, argv, g, 0);
}

static int cmd_upgrade(struct client *c, int argc, char **argv, struct globals *g)
{
	return install_or_upgrade(c, argc, argv, g, 1);
}

static int cmd_preflight(struct client *c, int argc, char **argv, struct globals *g)
{
	struct args a;
	int rc = EXIT_USAGE;
	if (parse_args(argc, argv, F_PREFLIGHT, 1, g, &a) != 0)
		goto out;
	if (a.npos != 1) {
		errorf("usage: ferry preflight CLUSTER [--connection-only] [--wait]");
		goto out;
	}
	json_t *params = json_object();
	if (a.connection_only)
		json_object_set_new(params, "connection_only", json_true());
	rc = create_job(c, a.pos[0], "preflight", params, a.idem, a.wait);
out:
	args_free(&a);
	return rc;
}

static int do_jobs_list(struct client *c, const struct args *a)
{
	struct buf p = BUF_INIT;
	char sep = '?';
	int rc;
	size_t max = 50;
	if (a->limit) {
		char *end;
		long v = strtol(a->limit, &end, 10);
		if (*end || end == a->limit || v < 0) {
			errorf("--limit must be a number (0 for all)");
			return EXIT_USAGE;
		}
		max = (size_t)v;
	}
	buf_puts(&p, "/v1/jobs");
	if (a->state) {
		char *e = escape(c, a->state);
		buf_printf(&p, "%cstate=%s", sep, e);
		free(e);
		sep = '&';
	}
	if (a->cluster) {
		char id[64];
		if ((rc = resolve_cluster(c, a->cluster, id, sizeof id))) {
			buf_free(&p);
			return rc;
		}
		buf_printf(&p, "%ccluster_id=%s", sep, id);
	}
	json_t *items;
	rc = list_all(c, buf_cstr(&p), max, 0, &items);
	buf_free(&p);
	if (rc)
		return rc;
	if (c->structured) {
		print_doc(items);
	} else {
		struct table t = { 7, 0, NULL };
		char *hdr[7] = { xstrdup("ID"), xstrdup("CLUSTER"), xstrdup("KIND"), xstrdup("STATE"),
				 xstrdup("CREATED"), xstrdup("FINISHED"), xstrdup("ERROR") };
		table_add(&t, hdr);
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			char *err = cell(json_object_get(it, "error"));
			if (strlen(err) > 80)
				strcpy(err + 77, "...");
			char *row[7] = { cell(json_object_get(it, "id")), cell(json_object_get(it, "cluster_name")),
					 cell(json_object_get(it, "kind")), cell(json_object_get(it, "state")),
					 cell(json_object_get(it, "created_at")), cell(json_object_get(it, "finished_at")),
					 err };
			table_add(&t, row);
		}
		table_print(&t);
	}
	json_decref(items);
	return 0;
}

static int cmd_jobs(struct client *c, int argc, char **argv, struct globals *g)
{
	struct args a;
	int rc = EXIT_USAGE;
	if (parse_args(argc, argv, F_JOBLIST, 2, g, &a) != 0)
		goto out;
	const char *sub = a.npos ? a.pos[0] : "";
	if (!strcmp(sub, "list") && a.npos == 1) {
		rc = do_jobs_list(c, &a);
		goto out;
	}
	if (a.npos != 2 || a.state || a.cluster || a.limit ||
	    (strcmp(sub, "get") && strcmp(sub, "wait") && strcmp(sub, "cancel"))) {
		errorf("usage: ferry jobs list [--state S] [--cluster C] [--limit N] | jobs get|wait|cancel ID");
		goto out;
	}
	const char *id = a.pos[1];
	if (!looks_like_uuid(id)) {
		errorf("%s is not a job id (a UUID)", id);
		goto out;
	}
	char path[160];
	json_t *job;
	if (!strcmp(sub, "get")) {
		snprintf(path, sizeof path, "/v1/jobs/%s", id);
		if ((rc = api(c, "GET", path, NULL, NULL, 2, &job)))
			goto out;
		if (c->structured)
			print_doc(job);
		else
			print_job(job);
		json_decref(job);
	} else if (!strcmp(sub, "cancel")) {
		snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
		if ((rc = api(c, "POST", path, NULL, NULL, 0, &job)))
			goto out;
		if (c->structured)
			print_doc(job);
		else {
			const char *st = json_string_value(json_object_get(job, "state"));
			printf("cancel requested for job %s (state: %s)\n", id, st ? st : "?");
		}
		json_decref(job);
	} else {
		json_t *final;
		rc = follow_job(c, id, c->structured ? stderr : stdout, &final);
		if (final && c->structured)
			print_doc(final);
		json_decref(final);
	}
out:
	args_free(&a);
	return rc;
}

static int cmd_clusters(struct client *c, int argc, char **argv, struct globals *g)
{
	struct args a;
	int rc = EXIT_USAGE;
	if (parse_args(argc, argv, F_SELECTOR, 2, g, &a) != 0)
		goto out;
	const char *sub = a.npos ? a.pos[0] : "";
	if (!strcmp(sub, "list") && a.npos == 1)
		rc = do_clusters_list(c, &a);
	else if (!strcmp(sub, "get") && a.npos == 2 && !a.selector)
		rc = do_clusters_get(c, a.pos[1]);
	else
		errorf("usage: ferry clusters list [--selector k=v,...] | clusters get NAME|ID");
out:
	args_free(&a);
	return rc;
}

/* ------------------------------------- for the fleet commands (fleet.c) */

int client_poll(struct client *c, const char *path, json_t **out)
{
	return (int)poll_get(c, path, out);
}

int client_timed_out(struct client *c)
{
	return timeout_exit(c);
}

int client_skip_global(int argc, char **argv, int *i)
{
	struct globals g = { 0 };
	return global_opt(argc, argv, i, &g);
}

int client_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	int missing = 0;
	*value = opt_value(argc, argv, i, name, &missing);
	if (missing) {
		errorf("a value is missing after %s", name);
		return -1;
	}
	return *value != NULL;
}

static int cmd_fleet(struct client *c, int argc, char **argv, struct globals *g)
{
	(void)g;  /* already applied by client_main */
	return fleet_main(c, argc, argv);
}

/* ---------------------------------------------------------------- entry */

int client_main(int argc, char **argv)
{
	struct globals g = { 0 };
	int i = 1;
	/* global options before the command */
	for (; i < argc; i++) {
		int k = global_opt(argc, argv, &i, &g);
		if (k < 0)
			return EXIT_USAGE;
		if (k == 0)
			break;
	}
	if (i >= argc || !strcmp(argv[i], "help") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
		client_usage(i >= argc ? stderr : stdout);
		return i >= argc ? EXIT_USAGE : EXIT_OK;
	}
	const char *cmd = argv[i];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("ferry %s\n", PACKAGE_VERSION);
		return EXIT_OK;
	}
	/* The configuration needs no server nor token. */
	if (!strcmp(cmd, "config"))
		return config_main(&g, argc - i - 1, argv + i + 1);
	int (*fn)(struct client *, int, char **, struct globals *) = NULL;
	if (!strcmp(cmd, "clusters"))
		fn = cmd_clusters;
	else if (!strcmp(cmd, "install"))
		fn = cmd_install;
	else if (!strcmp(cmd, "upgrade"))
		fn = cmd_upgrade;
	else if (!strcmp(cmd, "preflight"))
		fn = cmd_preflight;
	else if (!strcmp(cmd, "jobs"))
		fn = cmd_jobs;
	else if (!strcmp(cmd, "fleet"))
		fn = cmd_fleet;
	else if (!(fn = lifecycle_command(cmd))) {
		errorf("unknown command %s", cmd);
		client_usage(stderr);
		return EXIT_USAGE;
	}
	for (int k = i + 1; k < argc; k++)
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			client_usage(stdout);
			return EXIT_OK;
		}
	/* Global options may also follow the command: collect them before
	 * connecting (the command's own parser skips them again). */
	struct client c;
	struct globals g2 = g;
	for (int k = i + 1; k < argc; k++) {
		if (!strcmp(argv[k], "--"))
			break;
		if (global_opt(argc, argv, &k, &g2) < 0)
			return EXIT_USAGE;
	}
	struct cli_settings settings;
	if (cli_settings_resolve(&g2, &settings) != 0)
		return EXIT_USAGE;
	int rc = client_init(&c, &settings);
	cli_settings_free(&settings);
	if (rc != 0) {
		client_free(&c);
		return EXIT_USAGE;
	}
	rc = fn(&c, argc - i - 1, argv + i + 1, &g2);
	client_free(&c);
	return rc;
}
