/*
 * server.c: kubesim's HTTPS front end (libmicrohttpd, one thread per
 * connection) and its admin API.
 *
 * A request is read completely, then: route by prefix (/clusters/<name>/… or
 * /_sim/…), authenticate (bearer token of the cluster or a client certificate
 * signed by kubesim's CA), count it, apply faults (latency, errors, drops,
 * hangs, rate limit), and hand it to api_handle() under sim.mu. Watches stream
 * from a content-reader callback that sleeps on sim.cv between events.
 */
#define _GNU_SOURCE
#include "tests/kubesim/sim.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int watch_collect(struct cluster *c, struct api_resp *w, uint64_t *last_rv, int initial,
		  struct buf *out);
void watch_bookmark(struct cluster *c, struct api_resp *w, struct buf *out);
void cluster_graveyard_add(struct cluster *c);

static struct MHD_Daemon *daemon_;

#define MAX_BODY (16u << 20)

struct reqctx {
	struct buf body;
	int too_big;
};

/* ------------------------------------------------------------ files */

json_t *cluster_info_json(const struct cluster *c)
{
	char server[300], kc[4096];
	snprintf(server, sizeof(server), "https://127.0.0.1:%d/clusters/%s", g_sim.port, c->name);
	snprintf(kc, sizeof(kc), "%s/%s/kubeconfig", g_sim.dir, c->name);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", c->name, "scenario", c->scn->name,
			 "server", server, "kubeconfig", kc, "token", c->token);
}

int cluster_write_files(struct cluster *c, char *err, size_t errlen)
{
	char dir[4096], p[4200];
	snprintf(dir, sizeof(dir), "%s/%s", g_sim.dir, c->name);
	if (mkdir_p(dir)) {
		snprintf(err, errlen, "cannot create %s", dir);
		return -1;
	}
	char *ca64 = b64_encode(g_sim.ca_crt, strlen(g_sim.ca_crt));
	char *crt64 = b64_encode(g_sim.client_crt, strlen(g_sim.client_crt));
	char *key64 = b64_encode(g_sim.client_key, strlen(g_sim.client_key));
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n- name: %s\n  cluster:\n"
		   "    server: https://127.0.0.1:%d/clusters/%s\n    certificate-authority-data: %s\n"
		   "users:\n- name: %s-token\n  user:\n    token: %s\n- name: %s-cert\n  user:\n"
		   "    client-certificate-data: %s\n    client-key-data: %s\ncontexts:\n"
		   "- name: %s\n  context:\n    cluster: %s\n    user: %s-token\n"
		   "- name: %s-cert\n  context:\n    cluster: %s\n    user: %s-cert\n"
		   "current-context: %s\n",
		   c->name, g_sim.port, c->name, ca64, c->name, c->token, c->name, crt64, key64,
		   c->name, c->name, c->name, c->name, c->name, c->name, c->name);
	free(ca64);
	free(crt64);
	free(key64);
	int rc = 0;
	snprintf(p, sizeof(p), "%s/kubeconfig", dir);
	rc |= write_file(p, b.data, b.len, 0600);
	buf_free(&b);
	snprintf(p, sizeof(p), "%s/token", dir);
	rc |= write_file(p, c->token, strlen(c->token), 0600);
	snprintf(p, sizeof(p), "%s/token-viewer", dir);
	rc |= write_file(p, c->token_viewer, strlen(c->token_viewer), 0600);
	snprintf(p, sizeof(p), "%s/token-nobody", dir);
	rc |= write_file(p, c->token_nobody, strlen(c->token_nobody), 0600);
	snprintf(p, sizeof(p), "%s/client.crt", dir);
	rc |= write_file(p, g_sim.client_crt, strlen(g_sim.client_crt), 0644);
	snprintf(p, sizeof(p), "%s/client.key", dir);
	rc |= write_file(p, g_sim.client_key, strlen(g_sim.client_key), 0600);
	if (rc) {
		snprintf(err, errlen, "cannot write files under %s", dir);
		return -1;
	}
	return 0;
}

static int valid_cluster_name(const char *n)
{
	size_t len = strlen(n);
	if (!len || len > 63 || n[0] == '-' || n[len - 1] == '-')
		return 0;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}

/* sim.mu held (or single-threaded start-up). */
int sim_add_cluster(const char *name, const char *scenario, char *err, size_t errlen)
{
	if (!valid_cluster_name(name)) {
		snprintf(err, errlen, "invalid cluster name \"%s\"", name);
		return -1;
	}
	if (sim_find_cluster(name)) {
		snprintf(err, errlen, "cluster \"%s\" already exists", name);
		return -2;
	}
	const struct scenario *s = scenario_get(scenario);
	if (!s) {
		snprintf(err, errlen, "unknown scenario \"%s\"", scenario);
		return -1;
	}
	struct cluster *c = cluster_new(name, s);
	if (g_sim.nclusters == g_sim.cap) {
		g_sim.cap = g_sim.cap ? g_sim.cap * 2 : 16;
		g_sim.clusters = xrealloc(g_sim.clusters, g_sim.cap * sizeof(*g_sim.clusters));
	}
	g_sim.clusters[g_sim.nclusters++] = c;
	if (g_sim.port && cluster_write_files(c, err, errlen))
		return -1;
	return 0;
}

/* ------------------------------------------------------------ helpers */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	json_object_set_new((json_t *)cls, key, json_string(value ? value : ""));
	return MHD_YES;
}

static void add_common_headers(struct MHD_Response *r)
{
	char uid[37];
	char h[33];
	random_hex(h, 16);
	snprintf(uid, sizeof(uid), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	MHD_add_response_header(r, "Audit-Id", uid);
	MHD_add_response_header(r, "Cache-Control", "no-cache, private");
	MHD_add_response_header(r, "X-Kubernetes-Pf-Flowschema-Uid", "0e3b8d2c-7a51-4f0e-9c3a-1d2e3f4a5b6c");
	MHD_add_response_header(r, "X-Kubernetes-Pf-Prioritylevel-Uid", "8c4d2e1f-3a5b-4c6d-8e7f-9a0b1c2d3e4f");
}

static enum MHD_Result send_buf(struct MHD_Connection *conn, int code, const char *ctype,
				char *data, size_t len, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", ctype);
	add_common_headers(r);
	if (retry_after && retry_after[0])
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int code, json_t *body,
				 const char *retry_after)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		s = xstrdup("{}");
	return send_buf(conn, code, "application/json", s, strlen(s), retry_after);
}

static enum MHD_Result send_admin_error(struct MHD_Connection *conn, int code, const char *msg)
{
	return send_json(conn, code, json_pack("{s:s}", "error", msg), NULL);
}

static int client_gone(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return 0;
	struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return 1;
	return 0;
}

/* The CN of a verified client certificate, or "" */
static void client_cert_user(struct MHD_Connection *conn, char *cn, size_t cnlen, char *org,
			     size_t orglen)
{
	cn[0] = org[0] = 0;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned int list_size = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &list_size);
	if (!certs || !list_size)
		return;
	unsigned int status = 0;
	if (gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return;
	gnutls_x509_crt_t crt;
	if (gnutls_x509_crt_init(&crt) != 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
		size_t n = cnlen;
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &n) != 0)
			cn[0] = 0;
		n = orglen;
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, 0, org, &n) != 0)
			org[0] = 0;
	}
	gnutls_x509_crt_deinit(crt);
}

static int verb_index(const char *verb)
{
	static const char *verbs[] = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"};
	for (int i = 0; i < 8; i++)
		if (!strcmp(verbs[i], verb))
			return i;
	return 8;
}

static uint64_t rng_next(uint64_t *s)
{
	if (!*s)
		*s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_ms();
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------ faults */

enum fault_kind { F_NONE, F_ERROR, F_DROP, F_HANG, F_RATE };

struct fault_decision {
	enum fault_kind kind;
	int code;
	int latency_ms;
	int retry_after_s;
};

static int fault_matches(const struct faults *f, const char *verb, const char *path)
{
	if (f->nverbs) {
		int ok = 0;
		for (int i = 0; i < f->nverbs; i++)
			if (!strcmp(f->verbs[i], verb))
				ok = 1;
		if (!ok)
			return 0;
	}
	if (f->path_contains && !strstr(path, f->path_contains))
		return 0;
	return 1;
}

static void decide_fault(struct cluster *c, const char *verb, const char *path,
			 struct fault_decision *d)
{
	struct faults *f = &c->faults;
	memset(d, 0, sizeof(*d));
	if (!f->active || !fault_matches(f, verb, path))
		return;
	d->latency_ms = f->latency_ms;
	d->retry_after_s = f->retry_after_s;
	if (f->rate_limit_qps > 0) {
		int64_t now = now_ms();
		if (!f->bucket_ms) {
			f->bucket = f->rate_limit_qps;
			f->bucket_ms = now;
		}
		f->bucket += (double)(now - f->bucket_ms) * f->rate_limit_qps / 1000.0;
		if (f->bucket > f->rate_limit_qps)
			f->bucket = f->rate_limit_qps < 1 ? 1 : f->rate_limit_qps;
		f->bucket_ms = now;
		if (f->bucket < 1) {
			d->kind = F_RATE;
			d->code = 429;
			d->retry_after_s = 1;
			return;
		}
		f->bucket -= 1;
	}
	if (f->hang_next > 0) {
		f->hang_next--;
		d->kind = F_HANG;
		return;
	}
	if (f->drop_next > 0) {
		f->drop_next--;
		d->kind = F_DROP;
		return;
	}
	int err = 0;
	if (f->fail_next > 0) {
		f->fail_next--;
		err = 1;
	} else if (f->error_rate > 0 && rng_unit(&f->seed) < f->error_rate) {
		err = 1;
	}
	if (err) {
		d->kind = F_ERROR;
		d->code = f->nerror_codes ? f->error_codes[f->error_rr++ % f->nerror_codes] : 500;
		return;
	}
	if (f->hang_rate > 0 && rng_unit(&f->seed) < f->hang_rate) {
		d->kind = F_HANG;
		return;
	}
	if (f->drop_rate > 0 && rng_unit(&f->seed) < f->drop_rate) {
		d->kind = F_DROP;
		return;
	}
}

static int faults_from_json(struct faults *f, const json_t *j, char *err, size_t errlen)
{
	struct faults n;
	memset(&n, 0, sizeof(n));
	if (!json_is_object(j)) {
		snprintf(err, errlen, "faults must be a JSON object");
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)j, k, v) {
		if (!strcmp(k, "latency_ms"))
			n.latency_ms = (int)json_integer_value(v);
		else if (!strcmp(k, "error_rate"))
			n.error_rate = json_number_value(v);
		else if (!strcmp(k, "fail_next"))
			n.fail_next = (int)json_integer_value(v);
		else if (!strcmp(k, "retry_after_s"))
			n.retry_after_s = (int)json_integer_value(v);
		else if (!strcmp(k, "drop_rate"))
			n.drop_rate = json_number_value(v);
		else if (!strcmp(k, "drop_next"))
			n.drop_next = (int)json_integer_value(v);
		else if (!strcmp(k, "hang_rate"))
			n.hang_rate = json_number_value(v);
		else if (!strcmp(k, "hang_next"))
			n.hang_next = (int)json_integer_value(v);
		else if (!strcmp(k, "rate_limit_qps"))
			n.rate_limit_qps = json_number_value(v);
		else if (!strcmp(k, "seed"))
			n.seed = (uint64_t)json_integer_value(v);
		else if (!strcmp(k, "path_contains") && json_is_string(v))
			n.path_contains = xstrdup(json_string_value(v));
		else if (!strcmp(k, "error_codes") && json_is_array(v)) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x) {
				int code = (int)json_integer_value(x);
				if (code < 400 || code > 599) {
					snprintf(err, errlen, "error_codes: %d is not a 4xx/5xx code", code);
					free(n.path_contains);
					for (int q = 0; q < n.nverbs; q++)
						free(n.verbs[q]);
					return -1;
				}
				if (n.nerror_codes < 8)
					n.error_codes[n.nerror_codes++] = code;
			}
		} else if (!strcmp(k, "verbs") && json_is_array(v)) {
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x)
				if (json_is_string(x) && n.nverbs < 10)
					n.verbs[n.nverbs++] = xstrdup(json_string_value(x));
		} else {
			snprintf(err, errlen, "unknown fault field \"%s\"", k);
			free(n.path_contains);
			for (int q = 0; q < n.nverbs; q++)
				free(n.verbs[q]);
			return -1;
		}
	}
	n.active = n.latency_ms || n.error_rate > 0 || n.fail_next || n.drop_rate > 0 || n.drop_next ||
		   n.hang_rate > 0 || n.hang_next || n.rate_limit_qps > 0;
	for (int i = 0; i < f->nverbs; i++)
		free(f->verbs[i]);
	free(f->path_contains);
	*f = n;
	return 0;
}

static json_t *faults_to_json(const struct faults *f)
{
	json_t *codes = json_array(), *verbs = json_array();
	for (int i = 0; i < f->nerror_codes; i++)
		json_array_append_new(codes, json_integer(f->error_codes[i]));
	for (int i = 0; i < f->nverbs; i++)
		json_array_append_new(verbs, json_string(f->verbs[i]));
	json_t *j = json_pack("{s:i, s:f, s:o, s:i, s:i, s:f, s:i, s:f, s:i, s:f, s:o}",
			      "latency_ms", f->latency_ms, "error_rate", f->error_rate, "error_codes", codes,
			      "fail_next", f->fail_next, "retry_after_s", f->retry_after_s,
			      "drop_rate", f->drop_rate, "drop_next", f->drop_next, "hang_rate", f->hang_rate,
			      "hang_next", f->hang_next, "rate_limit_qps", f->rate_limit_qps, "verbs", verbs);
	if (f->path_contains)
		json_object_set_new(j, "path_contains", json_string(f->path_contains));
	return j;
}

/* ------------------------------------------------------------ streaming */

struct watch_state {
	struct cluster *c;
	struct api_resp resp;
	struct MHD_Connection *conn;
	uint64_t last_rv;
	struct buf pending;
	size_t off;
	int64_t deadline;
	int64_t last_bookmark;
	int ending;
};

static void watch_free(void *cls)
{
	struct watch_state *ws = cls;
	buf_free(&ws->pending);
	free(ws->resp.watch_key);
	free(ws->resp.watch_ns);
	free(ws->resp.watch_name);
	json_decref(ws->resp.watch_label_sel);
	free(ws);
}

static ssize_t watch_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct watch_state *ws = cls;
	(void)pos;
	while (ws->off >= ws->pending.len) {
		buf_reset(&ws->pending);
		ws->off = 0;
		if (ws->ending || g_sim.stopping || now_ms() >= ws->deadline)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&g_sim.mu);
		if (ws->c->rv > ws->last_rv)
			ws->ending = watch_collect(ws->c, &ws->resp, &ws->last_rv, 0, &ws->pending);
		if (!ws->pending.len) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 500000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&g_sim.cv, &g_sim.mu, &ts);
			if (ws->c->rv > ws->last_rv)
				ws->ending = watch_collect(ws->c, &ws->resp, &ws->last_rv, 0, &ws->pending);
			if (!ws->pending.len && ws->resp.watch_bookmarks && now_ms() - ws->last_bookmark > 5000) {
				watch_bookmark(ws->c, &ws->resp, &ws->pending);
				ws->last_bookmark = now_ms();
			}
		}
		pthread_mutex_unlock(&g_sim.mu);
		if (!ws->pending.len && client_gone(ws->conn))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = ws->pending.len - ws->off;
	if (n > max)
		n = max;
	memcpy(out, ws->pending.data + ws->off, n);
	ws->off += n;
	return (ssize_t)n;
}

struct drop_state {
	char *data;
	size_t len;
};

static ssize_t drop_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct drop_state *ds = cls;
	size_t half = ds->len / 2;
	if (pos >= half)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = half - pos;
	if (n > max)
		n = max;
	memcpy(out, ds->data + pos, n);
	return (ssize_t)n;
}

static void drop_free(void *cls)
{
	struct drop_state *ds = cls;
	free(ds->data);
	free(ds);
}

/* ------------------------------------------------------------ admin */

static enum MHD_Result handle_admin(struct MHD_Connection *conn, const char *method,
				    const char *path, struct reqctx *rc)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	char want[300];
	snprintf(want, sizeof(want), "Bearer %s", g_sim.admin_token);
	if (!auth || strcmp(auth, want))
		return send_admin_error(conn, 401, "admin token required");
	char segs[6][256];
	int n = 0;
	const char *p = path + strlen("/_sim/");
	while (*p && n < 6) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		snprintf(segs[n], sizeof(segs[n]), "%.*s", (int)(len < 255 ? len : 255), p);
		n++;
		p = e ? e + 1 : p + len;
	}
	if (n < 1 || strcmp(segs[0], "clusters"))
		return send_admin_error(conn, 404, "unknown admin path");
	json_t *body = NULL;
	if (rc->body.len) {
		body = json_loadb(rc->body.data, rc->body.len, 0, NULL);
		if (!body)
			return send_admin_error(conn, 400, "body is not JSON");
	}
	enum MHD_Result ret;
	char err[512];
	pthread_mutex_lock(&g_sim.mu);
	if (n == 1) {
		if (!strcmp(method, "GET")) {
			json_t *arr = json_array();
			for (size_t i = 0; i < g_sim.nclusters; i++)
				if (g_sim.clusters[i])
					json_array_append_new(arr, json_pack("{s:s, s:s}", "name", g_sim.clusters[i]->name,
									     "scenario", g_sim.clusters[i]->scn->name));
			ret = send_json(conn, 200, json_pack("{s:o}", "clusters", arr), NULL);
		} else if (!strcmp(method, "POST")) {
			const char *name = jstr(body, "name"), *scn = jstr(body, "scenario");
			int r = name ? sim_add_cluster(name, scn ? scn : "tke-fresh", err, sizeof(err)) : -1;
			if (!name)
				snprintf(err, sizeof(err), "name is required");
			if (r == 0)
				ret = send_json(conn, 201, cluster_info_json(sim_find_cluster(name)), NULL);
			else
				ret = send_admin_error(conn, r == -2 ? 409 : 400, err);
		} else {
			ret = send_admin_error(conn, 405, "method not allowed");
		}
		goto out;
	}
	struct cluster *c = sim_find_cluster(segs[1]);
	if (!c) {
		ret = send_admin_error(conn, 404, "no such cluster");
		goto out;
	}
	const char *what = n >= 3 ? segs[2] : "";
	if (n == 2 && !strcmp(method, "DELETE")) {
		for (size_t i = 0; i < g_sim.nclusters; i++)
			if (g_sim.clusters[i] == c)
				g_sim.clusters[i] = NULL;
		cluster_graveyard_add(c);
		ret = send_json(conn, 200, json_pack("{s:s}", "deleted", segs[1]), NULL);
	} else if (n == 2 && !strcmp(method, "GET")) {
		ret = send_json(conn, 200, cluster_info_json(c), NULL);
	} else if (!strcmp(what, "stats") && n == 3 && !strcmp(method, "GET")) {
		static const char *verbs[] = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "other"};
		json_t *bv = json_object();
		for (int i = 0; i < 9; i++)
			json_object_set_new(bv, verbs[i], json_integer((json_int_t)c->by_verb[i]));
		ret = send_json(conn, 200, json_pack("{s:I, s:I, s:o, s:I, s:o, s:I, s:I, s:I}",
			"total", (json_int_t)c->total, "writes", (json_int_t)c->writes, "by_verb", bv,
			"connections", (json_int_t)c->connections,
			"by_request", c->by_request ? json_incref(c->by_request) : json_object(),
			"faults_injected", (json_int_t)c->faults_injected,
			"rejected_auth", (json_int_t)c->rejected_auth, "resource_version", (json_int_t)c->rv), NULL);
	} else if (!strcmp(what, "stats") && n == 4 && !strcmp(segs[3], "reset") && !strcmp(method, "POST")) {
		c->total = c->writes = c->faults_injected = c->rejected_auth = c->connections = 0;
		memset(c->by_verb, 0, sizeof(c->by_verb));
		json_decref(c->by_request);
		c->by_request = NULL;
		ret = send_json(conn, 200, json_pack("{s:b}", "ok", 1), NULL);
	} else if (!strcmp(what, "reset") && !strcmp(method, "POST")) {
		cluster_reset(c);
		ret = send_json(conn, 200, json_pack("{s:b}", "ok", 1), NULL);
	} else if (!strcmp(what, "compact") && !strcmp(method, "POST")) {
		c->compact_rv = ++c->rv;
		ret = send_json(conn, 200, json_pack("{s:b}", "ok", 1), NULL);
	} else if (!strcmp(what, "faults") && !strcmp(method, "GET")) {
		ret = send_json(conn, 200, faults_to_json(&c->faults), NULL);
	} else if (!strcmp(what, "faults") && (!strcmp(method, "PUT") || !strcmp(method, "POST"))) {
		if (faults_from_json(&c->faults, body ? body : json_object(), err, sizeof(err)))
			ret = send_admin_error(conn, 400, err);
		else
			ret = send_json(conn, 200, faults_to_json(&c->faults), NULL);
	} else if (!strcmp(what, "nodes") && !strcmp(method, "POST")) {
		json_t *added = json_array();
		json_t *list = json_object_get(body, "nodes");
		json_int_t count = json_integer_value(json_object_get(body, "count"));
		json_t *gen = NULL;
		if (!list && count > 0) {
			gen = json_array();
			json_t *nodes = json_object_get(c->store, "core/nodes");
			int k = 1;
			for (json_int_t i = 0; i < count && i < 10000; i++) {
				char nm[64], id[80];
				do {
					snprintf(nm, sizeof(nm), "node-%d", k++);
					snprintf(id, sizeof(id), "/%s", nm);
				} while (json_object_get(nodes, id));
				json_array_append_new(gen, json_pack("{s:s}", "name", nm));
			}
			list = gen;
		}
		size_t i;
		json_t *nd;
		int bad = 0;
		json_array_foreach(list, i, nd) {
			const char *nm = jstr(nd, "name");
			if (!nm || !nm[0]) {
				bad = 1;
				break;
			}
			char id[300];
			snprintf(id, sizeof(id), "/%s", nm);
			json_t *ready = json_object_get(nd, "ready");
			int is_ready = ready ? json_is_true(ready) : !c->scn->k3s;
			json_t *node = scenario_make_node(nm, json_object_get(nd, "labels"), json_object_get(nd, "taints"),
							  jstr(nd, "osImage"), jstr(nd, "kernelVersion"), is_ready,
							  json_is_true(json_object_get(nd, "virtual")));
			json_object_set(jpath(node, "status.nodeInfo"), "kubeletVersion",
					json_object_get(c->scn->version, "gitVersion"));
			char uid[37], ts[32];
			new_uid(c, uid);
			rfc3339_now(ts);
			json_object_set_new(json_object_get(node, "metadata"), "uid", json_string(uid));
			json_object_set_new(json_object_get(node, "metadata"), "creationTimestamp", json_string(ts));
			store_put(c, "core/nodes", id, node, json_object_get(json_object_get(c->store, "core/nodes"), id) == NULL);
			json_array_append_new(added, json_string(nm));
		}
		json_decref(gen);
		if (bad) {
			json_decref(added);
			ret = send_admin_error(conn, 400, "every node needs a name");
		} else {
			ret = send_json(conn, 201, json_pack("{s:o}", "added", added), NULL);
		}
	} else if (!strcmp(what, "objects") && n >= 4 && !strcmp(method, "GET")) {
		char key[600];
		snprintf(key, sizeof(key), "%s/%s", segs[3], n >= 5 ? segs[4] : "");
		json_t *b = json_object_get(c->store, key);
		ret = send_json(conn, 200, b ? json_incref(b) : json_object(), NULL);
	} else {
		ret = send_admin_error(conn, 404, "unknown admin path");
	}
out:
	pthread_mutex_unlock(&g_sim.mu);
	json_decref(body);
	return ret;
}

/* ------------------------------------------------------------ API */

static enum MHD_Result send_api_error(struct MHD_Connection *conn, int code, const char *reason,
				      const char *msg, int retry_after)
{
	json_t *st = status_error(code, reason, msg);
	char ra[16] = "";
	if (retry_after > 0) {
		json_object_set_new(st, "details", json_pack("{s:i}", "retryAfterSeconds", retry_after));
		snprintf(ra, sizeof(ra), "%d", retry_after);
	}
	return send_json(conn, code, st, ra);
}

static enum MHD_Result handle_cluster(struct MHD_Connection *conn, const char *method,
				      const char *url, struct reqctx *rc)
{
	const char *rest = url + strlen("/clusters/");
	const char *slash = strchr(rest, '/');
	char name[128];
	snprintf(name, sizeof(name), "%.*s", (int)(slash ? (size_t)(slash - rest) : strlen(rest)), rest);
	const char *path = slash ? slash : "/";
	/* auth */
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	char cn[256], org[256];
	client_cert_user(conn, cn, sizeof(cn), org, sizeof(org));
	json_t *query = json_object();
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, query);
	const char *watchp = jstr(query, "watch");
	const char *query_raw = watchp && (!strcmp(watchp, "true") || !strcmp(watchp, "1")) ? "watch=true" : "";
	const char *verb = api_verb(method, path, query_raw);
	struct fault_decision fd;
	memset(&fd, 0, sizeof(fd));
	pthread_mutex_lock(&g_sim.mu);
	struct cluster *c = sim_find_cluster(name);
	if (!c) {
		pthread_mutex_unlock(&g_sim.mu);
		json_decref(query);
		char msg[300];
		snprintf(msg, sizeof(msg), "no simulated cluster named \"%s\"", name);
		return send_api_error(conn, 404, "NotFound", msg, 0);
	}
	const char *user = NULL;
	int can_read = 0, can_write = 0;
	if (auth && !strncmp(auth, "Bearer ", 7)) {
		const char *tok = auth + 7;
		if (!strcmp(tok, c->token)) {
			user = "kubesim-admin";
			can_read = can_write = 1;
		} else if (!strcmp(tok, c->token_viewer)) {
			user = "viewer";
			can_read = 1;
		} else if (!strcmp(tok, c->token_nobody)) {
			user = "nobody";
		}
	} else if (cn[0]) {
		user = cn;
		if (!strcmp(cn, "kubesim-admin") || !strcmp(org, "system:masters"))
			can_read = can_write = 1;
		else if (!strcmp(cn, "viewer"))
			can_read = 1;
	}
	c->total++;
	{
		/* A connection counts for the cluster of its first request, so a
		 * client's keep-alive shows as fewer connections than requests. */
		const union MHD_ConnectionInfo *sci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		int *seen = sci ? sci->socket_context : NULL;
		if (seen && !*seen) {
			*seen = 1;
			c->connections++;
		}
	}
	if (!user) {
		c->rejected_auth++;
		pthread_mutex_unlock(&g_sim.mu);
		json_decref(query);
		return send_api_error(conn, 401, "Unauthorized", "Unauthorized", 0);
	}
	c->by_verb[verb_index(verb)]++;
	if (!c->by_request)
		c->by_request = json_object();
	char rk[1200];
	snprintf(rk, sizeof(rk), "%s %s", method, path);
	json_object_set_new(c->by_request, rk,
			    json_integer(json_integer_value(json_object_get(c->by_request, rk)) + 1));
	decide_fault(c, verb, path, &fd);
	if (fd.kind != F_NONE)
		c->faults_injected++;
	pthread_mutex_unlock(&g_sim.mu);
	if (fd.latency_ms > 0) {
		struct timespec ts = {fd.latency_ms / 1000, (long)(fd.latency_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (fd.kind == F_HANG) {
		json_decref(query);
		while (!g_sim.stopping && !client_gone(conn)) {
			struct timespec ts = {0, 50000000L};
			nanosleep(&ts, NULL);
		}
		return MHD_NO;
	}
	if (fd.kind == F_RATE || (fd.kind == F_ERROR && fd.code == 429)) {
		json_decref(query);
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", fd.retry_after_s > 0 ? fd.retry_after_s : 1);
		const char *msg = "Too many requests, please try again later.\n";
		return send_buf(conn, 429, "text/plain; charset=utf-8", xstrdup(msg), strlen(msg), ra);
	}
	if (fd.kind == F_ERROR) {
		json_decref(query);
		const char *reason = fd.code == 503 ? "ServiceUnavailable" : fd.code == 504 ? "Timeout" :
				     fd.code >= 500 ? "InternalError" : "BadRequest";
		const char *msg = fd.code == 503 ? "the server is currently unable to handle the request" :
				  fd.code == 504 ? "Timeout: request did not complete within requested timeout - context deadline exceeded" :
				  fd.code >= 500 ? "Internal error occurred: injected fault" : "injected fault";
		return send_api_error(conn, fd.code, reason, msg, fd.retry_after_s);
	}
	/* the real request */
	struct api_req req = {0};
	struct api_resp resp = {0};
	req.method = method;
	req.path = path;
	req.query_raw = query_raw;
	req.query = query;
	req.body = rc->body.data;
	req.body_len = rc->body.len;
	req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
	req.user_agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
	req.accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
	req.user = user;
	req.can_read = can_read;
	req.can_write = can_write;
	pthread_mutex_lock(&g_sim.mu);
	c = sim_find_cluster(name);
	if (!c) {
		pthread_mutex_unlock(&g_sim.mu);
		json_decref(query);
		return send_api_error(conn, 404, "NotFound", "cluster went away", 0);
	}
	req.c = c;
	char *user_copy = xstrdup(user);
	req.user = user_copy;
	api_handle(&req, &resp);
	struct watch_state *ws = NULL;
	if (resp.watch) {
		ws = xcalloc(1, sizeof(*ws));
		ws->c = c;
		ws->resp = resp;
		ws->conn = conn;
		ws->deadline = now_ms() + (int64_t)resp.watch_timeout_s * 1000;
		ws->last_bookmark = now_ms();
		ws->ending = watch_collect(c, &ws->resp, &ws->last_rv, 1, &ws->pending);
		memset(&resp, 0, sizeof(resp));
	}
	pthread_mutex_unlock(&g_sim.mu);
	free(user_copy);
	json_decref(query);
	if (ws) {
		struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
									   watch_reader, ws, watch_free);
		MHD_add_response_header(r, "Content-Type", "application/json");
		MHD_add_response_header(r, "Transfer-Encoding", "chunked");
		add_common_headers(r);
		enum MHD_Result ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (fd.kind == F_DROP) {
		struct drop_state *ds = xcalloc(1, sizeof(*ds));
		ds->data = resp.body ? json_dumps(resp.body, JSON_COMPACT) : xstrdup(resp.text ? resp.text : "");
		ds->len = strlen(ds->data);
		json_decref(resp.body);
		free(resp.text);
		struct MHD_Response *r = MHD_create_response_from_callback(ds->len, 4096, drop_reader, ds, drop_free);
		MHD_add_response_header(r, "Content-Type", "application/json");
		enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.code, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (resp.text) {
		return send_buf(conn, resp.code, resp.content_type ? resp.content_type : "text/plain",
				resp.text, strlen(resp.text), NULL);
	}
	return send_json(conn, resp.code ? resp.code : 500,
			 resp.body ? resp.body : status_error(500, "InternalError", "no response"),
			 resp.retry_after);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct reqctx *rc = *con_cls;
	if (!rc) {
		rc = xcalloc(1, sizeof(*rc));
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (rc->body.len + *upload_data_size > MAX_BODY)
			rc->too_big = 1;
		else
			buf_append(&rc->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rc->too_big)
		return send_api_error(conn, 413, "RequestEntityTooLarge", "the request body is too large", 0);
	if (!strncmp(url, "/_sim/", 6))
		return handle_admin(conn, method, url, rc);
	if (!strncmp(url, "/clusters/", 10))
		return handle_cluster(conn, method, url, rc);
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/livez"))
		return send_buf(conn, 200, "text/plain", xstrdup("ok"), 2, NULL);
	return send_api_error(conn, 404, "NotFound",
			      "the server could not find the requested resource (kubesim serves /clusters/<name>/...)", 0);
}

/* Per connection: whether its first request was counted yet. */
static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = xcalloc(1, sizeof(int));
	} else {
		free(*socket_context);
		*socket_context = NULL;
	}
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct reqctx *rc = *con_cls;
	if (rc) {
		buf_free(&rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

/* libmicrohttpd's messages; a client that goes away during a watch or a
 * dropped-response fault is normal here and not worth a line. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (g_sim.quiet || strstr(fmt, "application error generating response") ||
	    strstr(fmt, "Error: received handshake message out of context"))
		return;
	fputs("kubesim: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int server_start(const char *listen, char *err, size_t errlen)
{
	char host[256] = "127.0.0.1";
	int port = 0;
	const char *colon = strrchr(listen, ':');
	if (colon) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
		port = atoi(colon + 1);
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "--listen: \"%s\" is not an IPv4 address:port", listen);
		return -1;
	}
	daemon_ = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				   MHD_USE_POLL | MHD_USE_TLS | MHD_USE_ERROR_LOG,
				   (uint16_t)port, NULL, NULL, access_handler, NULL,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				   MHD_OPTION_HTTPS_MEM_KEY, g_sim.srv_key,
				   MHD_OPTION_HTTPS_MEM_CERT, g_sim.srv_crt,
				   MHD_OPTION_HTTPS_MEM_TRUST, g_sim.ca_crt,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)600,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2000,
				   MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				   MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
				   MHD_OPTION_END);
	if (!daemon_) {
		snprintf(err, errlen, "cannot start HTTPS server on %s", listen);
		return -1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	g_sim.port = di ? di->port : port;
	return 0;
}

void server_stop(void)
{
	if (daemon_) {
		pthread_mutex_lock(&g_sim.mu);
		pthread_cond_broadcast(&g_sim.cv);
		pthread_mutex_unlock(&g_sim.mu);
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
	}
}
