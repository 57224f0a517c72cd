/*
 * http: libmicrohttpd plumbing for ferryd.
 *
 * Threading (docs/ARCHITECTURE.md, Decisions): libmicrohttpd runs a few
 * event threads (one per core, at most HTTP_MAX_EVENT_THREADS), each an
 * epoll loop over its share of the connections, which never wait for the
 * database; a complete request is handed to a fixed pool of handler
 * threads (cfg.http_threads, FERRY_HTTP_THREADS, default
 * HTTP_DEFAULT_THREADS) through one queue in arrival order: the access
 * handler suspends the connection and queues it (work_submit), a handler
 * thread routes it, runs the handler straight-line (blocking on
 * PostgreSQL), queues the answer on the suspended connection and resumes
 * it; the event thread sends it. A handler that waits (a lock, an
 * exhausted pool) holds one handler thread, never an event loop, so other
 * connections go on being served by the other handler threads. Before
 * issue 14 every connection had a thread of its own. Quick reads (GETs of
 * API_QUICK_READ routes: plain SELECTs, no cluster call) skip the
 * hand-off: the event thread answers them itself when a pooled database
 * connection is free at once (answer_quick_read).
 *
 * One request goes through these steps (http_access):
 *   1. first call: allocate the per-request state; a Content-Length above
 *      cfg.max_body_bytes is refused (413): up to HTTP_DRAIN_MAX_BYTES the
 *      body is read and dropped first, so the client, still sending, gets
 *      the answer on a cleanly closed connection; above that at once
 *      (Connection: close);
 *   2. upload calls: append the body, or stop keeping it once it grows past
 *      the limit (chunked uploads) and answer 413 at the end;
 *   3. final call: give it a request id, route it (api_routes[]), check the
 *      token, the route's scope and minimum role, run the handler, send its
 *      answer, record metrics, write the audit row of a mutating /v1 request,
 *      release the request's database connection and log one line.
 * Paths outside /v1 and the health/metrics endpoints are static console
 * files from cfg.web_root (GET/HEAD only, no "..", regular files only).
 *
 * The SSE streams (/v1/jobs/{id}/events/stream, the campaign stream) are
 * callback responses that hold no thread while idle: the reader LISTENs on
 * DB_JOB_EVENTS_CHANNEL (or the campaign channel) with a connection of its
 * own (core's db/jobs.c NOTIFYs it with the job id on every event and state
 * change), reads the job's new events and state through the pool when its
 * job is named (and every 5 s regardless), formats `event: log` /
 * `event: job` records, and ends when the job has finished and every event
 * was sent, or when the server stops. Without a LISTEN connection it polls
 * every 300 ms; the database reads run on a handler thread (the
 * connection suspended meanwhile). With nothing to send it suspends its
 * connection (MHD_suspend_connection) and one hub thread (sse_hub_main) poll()s the
 * LISTEN sockets of all suspended streams and resumes a stream when a
 * notification names it, when its next poll or keep-alive is due, or when
 * the server stops (every suspended stream is resumed, and ends, before
 * MHD_stop_daemon).
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "db/audit.h"
#include "db/campaigns.h"
#include "db/jobs.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/connguard.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/tlscreds.h"
#include "server/trustproxy.h"

/* At most this many SSE streams hold a LISTEN connection of their own;
 * further streams poll, so streams cannot exhaust PostgreSQL's
 * connection slots. */
#define SSE_MAX_LISTENERS 32

/* Handler threads without FERRY_HTTP_THREADS: as many as the database
 * pool has connections (ferryd.c opens 16): more would only wait for a
 * database connection, fewer would leave connections unused. */
#define HTTP_DEFAULT_THREADS 16
/* Event threads: one per core, at most this many. */
#define HTTP_MAX_EVENT_THREADS 4

/* Sent on every answer to a request that came over HTTPS (ferryd's own TLS
 * or a trusted proxy's): browsers then refuse plain HTTP to this host for
 * a year. Not includeSubDomains: ferryd does not own its parent domain. */
#define HSTS_VALUE "max-age=31536000"

struct http_server {
	struct MHD_Daemon *daemon;
	struct app *app;
	struct connguard *guard;   /* request-head deadlines (slow clients) */
	struct trustproxy *proxies;  /* --trusted-proxy: may set X-Forwarded-* */
	int tls;                   /* ferryd terminates TLS (--tls-cert) */
	volatile int stopping;
	int port;
	atomic_int listeners;
	/* SSE hub (see sse_hub_main): */
	pthread_t hub;
	int hub_started;
	int hub_pipe[2];           /* wakes the hub: a stream suspended, or stop */
	pthread_mutex_t hub_mu;
	int hub_stopping;          /* under hub_mu: no stream suspends any more */
	struct sse_state *streams; /* under hub_mu: every open stream */
	/* Handler threads (see handlers_main): */
	pthread_t *handlers;
	int nhandlers;
	pthread_mutex_t work_mu;
	pthread_cond_t work_cv;
	struct work *work_head, *work_tail;  /* under work_mu, oldest first */
	int work_stopping;         /* under work_mu: run new work inline */
	int work_started;
};

/* One piece of work for a handler thread: fn(srv, arg) runs there and
 * ends by resuming the suspended connection it belongs to. */
struct work {
	struct work *next;
	void (*fn)(struct http_server *srv, void *arg);
	void *arg;
};

struct http_ctx {
	struct api_req req;
	struct buf body;
	int too_large;
	struct timespec start;
	int handed_off;            /* given to a handler thread (connection suspended) */
	const struct api_route *route;  /* a GET's route, found by answer_quick_read */
	enum MHD_Result answer_rc; /* what the handler thread's answer returned */
};

static double elapsed_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void new_request_id(char out[37])
{
	unsigned char b[16];
	if (random_bytes(b, sizeof(b)) != 0) {
		/* Not security relevant: fall back to time and address bits. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (i * 37) ^ (uintptr_t)out);
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

/* A caller's own X-Request-Id is kept (so a pipeline can correlate its
 * logs with ours) when it is 1-36 characters of [A-Za-z0-9._-]. */
static int request_id_ok(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > 36)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* ---- routing ----------------------------------------------------------- */

/* Does path match pattern? {id} segments must be UUIDs, {revision}
 * segments decimal numbers; both are captured. */
static int route_match(const char *pattern, const char *path,
		       char params[API_MAX_PARAMS][37])
{
	int np = 0;
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		const char *pe = strchr(p, '/');
		const char *se = strchr(s, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t sl = se ? (size_t)(se - s) : strlen(s);
		if (pl == 10 && !memcmp(p, "{revision}", 10)) {
			/* A release revision: 1-9 decimal digits, no leading 0. */
			if (sl < 1 || sl > 9 || s[0] == '0' || np >= API_MAX_PARAMS)
				return 0;
			for (size_t i = 0; i < sl; i++)
				if (s[i] < '0' || s[i] > '9')
					return 0;
			memcpy(params[np], s, sl);
			params[np++][sl] = '\0';
		} else if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
			if (sl != 36 || np >= API_MAX_PARAMS)
				return 0;
			char seg[64];
			memcpy(seg, s, sl);
			seg[sl] = '\0';
			if (!api_is_uuid(seg))
				return 0;
			/* Canonical lower case, so ids compare equal to the DB's text. */
			for (size_t i = 0; i < sl; i++)
				if (seg[i] >= 'A' && seg[i] <= 'F')
					seg[i] = (char)(seg[i] - 'A' + 'a');
			memcpy(params[np++], seg, sl + 1);
		} else if (pl != sl || memcmp(p, s, pl) != 0) {
			return 0;
		}
		p += pl;
		s += sl;
	}
	return *p == '\0' && *s == '\0';
}

static int is_api_path(const char *path)
{
	return !strncmp(path, "/v1/", 4) || !strcmp(path, "/v1") ||
	       !strcmp(path, "/healthz") || !strcmp(path, "/readyz") ||
	       !strcmp(path, "/metrics");
}

static int is_mutating(const char *method)
{
	return !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	       !strcmp(method, "PATCH") || !strcmp(method, "DELETE");
}

/* The handler answered 503 because its database connection broke. */
static int lost_database(const struct api_req *r)
{
	return r->status == 503 && r->db && PQstatus(r->db) == CONNECTION_BAD;
}

/* Forget an answer and the request's connection, to dispatch again. */
static void reset_answer(struct api_req *r)
{
	db_release(r->app->db, r->db);
	r->db = NULL;
	json_decref(r->resp);
	r->resp = NULL;
	free(r->resp_text);
	r->resp_text = NULL;
	r->content_type = NULL;
	r->status = 0;
	r->nhdr = 0;
	r->target[0] = '\0';
	memset(&r->auth, 0, sizeof(r->auth));
}

/* The route for method and path ({id} and {revision} segments captured in
 * params), or NULL; then allow lists the methods the path has, if any. */
static const struct api_route *route_lookup(const char *method, const char *path,
					    char params[API_MAX_PARAMS][37],
					    char *allow, size_t allowlen)
{
	if (allow)
		allow[0] = '\0';
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct api_route *rt = &api_routes[i];
		if (!route_match(rt->pattern, path, params))
			continue;
		if (!strcmp(rt->method, method))
			return rt;
		if (allow && strlen(allow) + strlen(rt->method) + 3 < allowlen) {
			if (*allow)
				strcat(allow, ", ");
			strcat(allow, rt->method);
		}
	}
	return NULL;
}

/* Check the caller's token, scope and role against the route, then run
 * its handler. */
static void route_run(struct api_req *r, const struct api_route *found)
{
	r->route = found->pattern;
	if (found->scope != API_SCOPE_PUBLIC) {
		if (!api_authenticate(r))
			return;
		if (found->scope == API_SCOPE_TENANT && !r->auth.tenant_id[0]) {
			api_problem(r, 403, "Forbidden",
				    "this route needs a tenant token; a platform-wide token has no tenant");
			return;
		}
		if (found->scope == API_SCOPE_PLATFORM && r->auth.tenant_id[0]) {
			api_problem(r, 403, "Forbidden",
				    "this route needs a platform-wide token");
			return;
		}
		if (r->auth.role < found->min_role) {
			api_problem(r, 403, "Forbidden",
				    "role %s may not %s %s (needs %s)",
				    api_role_name(r->auth.role), r->method, found->pattern,
				    api_role_name(found->min_role));
			return;
		}
	}
	found->fn(r);
	if (!r->status)
		api_problem(r, 500, "Internal error", "the handler gave no answer");
}

/* Answer r: run its route (known: already looked up, its parameters in
 * r->params; NULL: look it up here). */
static void dispatch(struct api_req *r, const struct api_route *known)
{
	char allow[64] = "";
	const struct api_route *found = known ? known : route_lookup(r->method, r->path, r->params,
								     allow, sizeof(allow));
	if (found) {
		route_run(r, found);
	} else if (*allow) {
		api_set_header(r, "Allow", allow);
		api_problem(r, 405, "Method not allowed",
			    "%s is not supported on %s (allowed: %s)", r->method,
			    r->path, allow);
	} else {
		api_problem(r, 404, "Not found", "no resource at %s", r->path);
	}
}

/* ---- static files ------------------------------------------------------ */

static const char *mime_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".json"))
		return "application/json";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".ico"))
		return "image/x-icon";
	if (!strcmp(dot, ".txt"))
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/* Open the static file for path, or -1. *size and *type filled on success. */
static int open_static(const char *root, const char *path, size_t *size,
		       const char **type)
{
	if (!root || !*root || path[0] != '/')
		return -1;
	if (strstr(path, "..") || strchr(path, '\\') || strstr(path, "//"))
		return -1;
	const char *rel = path + 1;
	if (!*rel)
		rel = "index.html";
	char full[4096];
	int n = snprintf(full, sizeof(full), "%s/%s", root, rel);
	if (n < 0 || (size_t)n >= sizeof(full))
		return -1;
	int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	*type = mime_type(full);
	return fd;
}

/* ---- handler threads ----------------------------------------------- */

/* Suspend conn and queue fn(srv, arg) for a handler thread, which runs it
 * and resumes conn. 0 when the handlers are stopping or gone (the caller
 * then does the work itself, on its own thread). Only from the access
 * handler or a content reader, where libmicrohttpd allows suspending;
 * work_mu is held across the suspend, so no handler thread can resume
 * conn before it is suspended. */
static int work_submit(struct http_server *srv, struct MHD_Connection *conn,
		       void (*fn)(struct http_server *, void *), void *arg)
{
	pthread_mutex_lock(&srv->work_mu);
	if (!srv->work_started || srv->work_stopping) {
		pthread_mutex_unlock(&srv->work_mu);
		return 0;
	}
	struct work *w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	MHD_suspend_connection(conn);
	if (srv->work_tail)
		srv->work_tail->next = w;
	else
		srv->work_head = w;
	srv->work_tail = w;
	pthread_cond_signal(&srv->work_cv);
	pthread_mutex_unlock(&srv->work_mu);
	return 1;
}

/* A handler thread: work in arrival order; once stopping, the queue is
 * drained (every suspended connection in it resumed) before it returns. */
static void *handler_main(void *arg)
{
	struct http_server *srv = arg;
	pthread_mutex_lock(&srv->work_mu);
	for (;;) {
		while (!srv->work_head && !srv->work_stopping)
			pthread_cond_wait(&srv->work_cv, &srv->work_mu);
		struct work *w = srv->work_head;
		if (!w)
			break;
		srv->work_head = w->next;
		if (!srv->work_head)
			srv->work_tail = NULL;
		pthread_mutex_unlock(&srv->work_mu);
		w->fn(srv, w->arg);
		free(w);
		pthread_mutex_lock(&srv->work_mu);
	}
	pthread_mutex_unlock(&srv->work_mu);
	return NULL;
}

/* Stop the handler threads after they have drained the queue. */
static void handlers_stop(struct http_server *srv)
{
	pthread_mutex_lock(&srv->work_mu);
	srv->work_stopping = 1;
	pthread_cond_broadcast(&srv->work_cv);
	pthread_mutex_unlock(&srv->work_mu);
	for (int i = 0; i < srv->nhandlers; i++)
		pthread_join(srv->handlers[i], NULL);
	srv->nhandlers = 0;
	free(srv->handlers);
	srv->handlers = NULL;
}

/* ---- SSE --------------------------------------------------------------- */

struct sse_state {
	struct http_server *srv;
	char tenant_id[37];
	char job_id[37];
	char request_id[37];
	long long last_event;
	char *last_job;          /* the last job JSON sent, to send only changes */
	struct buf out;          /* formatted, not yet sent */
	size_t out_pos;
	int finished;            /* job finished and everything queued */
	double last_write;       /* mono_now() of the last bytes handed out */
	double next_poll;        /* poll the database at the latest then */
	PGconn *listen;          /* LISTENs on DB_JOB_EVENTS_CHANNEL, or NULL */
	int listen_tried;
	int campaign;            /* job_id is a campaign's id (api_campaign_stream_poll) */
	json_t *memo;            /* what the campaign stream sent */
	struct MHD_Connection *conn;
	/* Shared with the hub thread, under srv->hub_mu: */
	struct sse_state *prev, *next;  /* srv->streams */
	int registered;          /* in srv->streams */
	int suspended;           /* connection suspended, waiting for the hub */
	double wake_at;          /* the hub resumes it then at the latest */
	int hit;                 /* a notification named this stream's id */
	int listen_broken;       /* the LISTEN connection failed (hub saw it) */
	/* Set by the handler thread that polled for the stream: */
	int poll_done;
	int poll_rc;
};

/* A dedicated connection LISTENing for this job's changes; NULL when it
 * cannot be had (the stream then polls). */
static void sse_listen_close(struct sse_state *s)
{
	if (s->listen) {
		PQfinish(s->listen);
		s->listen = NULL;
		atomic_fetch_sub(&s->srv->listeners, 1);
	}
}

static PGconn *sse_listen_open(struct sse_state *s)
{
	if (atomic_fetch_add(&s->srv->listeners, 1) >= SSE_MAX_LISTENERS) {
		atomic_fetch_sub(&s->srv->listeners, 1);
		return NULL;
	}
	PGconn *c = PQconnectdb(db_pool_url(s->srv->app->db));
	if (!c || PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		atomic_fetch_sub(&s->srv->listeners, 1);
		return NULL;
	}
	PGresult *r = PQexec(c, s->campaign ? "LISTEN " DB_CAMPAIGN_EVENTS_CHANNEL
					     : "LISTEN " DB_JOB_EVENTS_CHANNEL);
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	/* Job writes notify only watched jobs (db/jobs.h). */
	if (ok && !s->campaign)
		ok = db_job_watch(c, s->job_id) == 0;
	if (!ok || PQsetnonblocking(c, 1) != 0) {
		PQfinish(c);
		atomic_fetch_sub(&s->srv->listeners, 1);
		return NULL;
	}
	return c;
}

static int job_is_final(const json_t *job)
{
	const char *st = json_string_value(json_object_get(job, "state"));
	return st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
		      !strcmp(st, "cancelled"));
}

/* One poll: queue new events and a changed job. -1 when the job vanished or
 * the database failed (the stream ends). */
static int sse_poll(struct sse_state *s)
{
	struct app *app = s->srv->app;
	PGconn *db = db_acquire(app->db, 5000);
	if (!db)
		return -1;
	char err[256] = "";
	int rc = 0;
	if (s->campaign) {
		rc = api_campaign_stream_poll(db, s->tenant_id, s->job_id, &s->memo, &s->out, &s->finished);
		goto out;
	}
	for (;;) {
		json_t *ev = db_job_events_json(db, s->tenant_id, s->job_id, s->last_event,
						500, err, sizeof(err));
		if (!ev) {
			rc = -1;
			goto out;
		}
		json_t *items = json_object_get(ev, "items");
		size_t i, n = json_array_size(items);
		json_t *item;
		json_array_foreach(items, i, item) {
			json_int_t id = json_integer_value(json_object_get(item, "id"));
			if (id > s->last_event)
				s->last_event = id;
			char *text = json_dumps(item, JSON_COMPACT);
			buf_printf(&s->out, "id: %lld\nevent: log\ndata: %s\n\n", (long long)id,
				   text ? text : "{}");
			free(text);
		}
		json_decref(ev);
		if (n < 500)
			break;
	}
	json_t *job = db_job_get_json(db, s->tenant_id, s->job_id, err, sizeof(err));
	if (!job) {
		rc = -1;
		goto out;
	}
	char *text = json_dumps(job, JSON_COMPACT);
	if (text && (!s->last_job || strcmp(text, s->last_job) != 0)) {
		buf_printf(&s->out, "event: job\ndata: %s\n\n", text);
		free(s->last_job);
		s->last_job = text;
		text = NULL;
	}
	free(text);
	if (job_is_final(job)) {
		/* One more look at the events: the final ones may have landed
		 * between our two queries. */
		json_t *ev = db_job_events_json(db, s->tenant_id, s->job_id, s->last_event,
						1000, err, sizeof(err));
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(ev, "items"), i, item) {
			json_int_t id = json_integer_value(json_object_get(item, "id"));
			if (id > s->last_event)
				s->last_event = id;
			char *t = json_dumps(item, JSON_COMPACT);
			buf_printf(&s->out, "id: %lld\nevent: log\ndata: %s\n\n", (long long)id,
				   t ? t : "{}");
			free(t);
		}
		json_decref(ev);
		s->finished = 1;
	}
	json_decref(job);
out:
	db_release(app->db, db);
	return rc;
}

/* After a poll: a failed one ends the stream with an error event. */
static void sse_after_poll(struct sse_state *s, int rc)
{
	if (rc < 0) {
		buf_puts(&s->out, s->campaign ? "event: error\ndata: {\"detail\":\"the campaign stream ended\"}\n\n"
					      : "event: error\ndata: {\"detail\":\"the job stream ended\"}\n\n");
		s->finished = 1;
	}
}

static void sse_hub_add(struct http_server *srv, struct sse_state *s);

/* sse_poll; the first time after opening the stream's LISTEN connection
 * (before the first read, so no change is lost between the read and the
 * wait) and handing the stream to the hub. */
static int sse_poll_step(struct sse_state *s)
{
	if (!s->listen_tried) {
		s->listen_tried = 1;
		s->listen = sse_listen_open(s);
		sse_hub_add(s->srv, s);
	}
	return sse_poll(s);
}

/* On a handler thread, for a stream whose connection is suspended. */
static void sse_poll_work(struct http_server *srv, void *arg)
{
	struct sse_state *s = arg;
	(void)srv;
	s->poll_rc = sse_poll_step(s);
	s->poll_done = 1;
	MHD_resume_connection(s->conn);
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sse_stopping(const struct sse_state *s)
{
	return s->srv->stopping || s->srv->app->stopping;
}

/* Link s into the hub's list of streams (the hub may resume it from then
 * on) or out of it. */
static void sse_hub_add(struct http_server *srv, struct sse_state *s)
{
	pthread_mutex_lock(&srv->hub_mu);
	s->next = srv->streams;
	if (s->next)
		s->next->prev = s;
	s->prev = NULL;
	srv->streams = s;
	s->registered = 1;
	pthread_mutex_unlock(&srv->hub_mu);
}

static void sse_hub_remove(struct http_server *srv, struct sse_state *s)
{
	pthread_mutex_lock(&srv->hub_mu);
	if (s->registered) {
		if (s->prev)
			s->prev->next = s->next;
		else
			srv->streams = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->registered = 0;
	}
	pthread_mutex_unlock(&srv->hub_mu);
}

static void sse_hub_kick(struct http_server *srv)
{
	char c = 1;
	ssize_t n = write(srv->hub_pipe[1], &c, 1);
	(void)n; /* a full pipe already means "look again" */
}

/* Content reader of a stream, on one of libmicrohttpd's threads. It sends
 * what is queued; otherwise it polls the database when a notification
 * named its job (the hub set s->hit), when the stream starts, every 5 s
 * regardless (300 ms without a LISTEN connection), and writes a keep-alive
 * after 15 s of silence. With nothing to send it suspends its connection
 * and returns 0: the thread goes back to other connections, and the hub
 * resumes this one when its LISTEN socket has something or its next poll
 * or keep-alive is due. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_state *s = cls;
	struct http_server *srv = s->srv;
	(void)pos;
	for (;;) {
		if (s->out_pos < s->out.len) {
			size_t n = s->out.len - s->out_pos;
			if (n > max)
				n = max;
			memcpy(buf, s->out.data + s->out_pos, n);
			s->out_pos += n;
			if (s->out_pos == s->out.len) {
				buf_reset(&s->out);
				s->out_pos = 0;
			}
			s->last_write = mono_now();
			return (ssize_t)n;
		}
		if (s->poll_done) {
			s->poll_done = 0;
			sse_after_poll(s, s->poll_rc);
			continue;
		}
		if (s->finished || sse_stopping(s))
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* Not suspended: the hub leaves s alone until we suspend again. */
		pthread_mutex_lock(&srv->hub_mu);
		int hit = s->hit, broken = s->listen_broken;
		s->hit = 0;
		s->listen_broken = 0;
		pthread_mutex_unlock(&srv->hub_mu);
		if (broken)
			sse_listen_close(s);
		double now = mono_now();
		if (hit || broken || now >= s->next_poll) {
			/* The database reads run on a handler thread, like a
			 * request's: this thread serves other connections. */
			s->next_poll = now + (s->listen ? 5.0 : 0.3);
			if (work_submit(srv, s->conn, sse_poll_work, s))
				return 0;
			sse_after_poll(s, sse_poll_step(s));
			continue;
		}
		if (now - s->last_write >= 15) {
			buf_puts(&s->out, ": keep-alive\n\n");
			continue;
		}
		double wake = s->last_write + 15;
		if (s->next_poll < wake)
			wake = s->next_poll;
		/* Suspend first, then tell the hub: it resumes only streams
		 * marked suspended, so never one libmicrohttpd has not
		 * suspended yet. No libmicrohttpd call is made under hub_mu. */
		MHD_suspend_connection(s->conn);
		pthread_mutex_lock(&srv->hub_mu);
		if (srv->hub_stopping) {
			/* The hub has resumed every stream and is gone: resume
			 * ourselves; the next call sees the stop and ends. */
			pthread_mutex_unlock(&srv->hub_mu);
			MHD_resume_connection(s->conn);
			return 0;
		}
		s->wake_at = wake;
		s->suspended = 1;
		pthread_mutex_unlock(&srv->hub_mu);
		sse_hub_kick(srv);
		return 0;
	}
}

/* Under hub_mu: take a suspended stream off the hub and note its
 * connection in out[*n], which the hub resumes once it has let go of
 * hub_mu. Until then libmicrohttpd keeps the connection suspended, so
 * the stream cannot run or be freed. */
static void sse_hub_resume(struct sse_state *s, struct MHD_Connection **out, size_t *n)
{
	s->suspended = 0;
	out[(*n)++] = s->conn;
}

/* The hub thread: one poll() over the LISTEN sockets of every suspended
 * stream and a wake-up pipe, with the earliest due time as timeout (at
 * most 500 ms, to see app->stopping). A suspended stream cannot be freed
 * (libmicrohttpd leaves its connection alone) and only the hub resumes it,
 * so its pointer and LISTEN connection are the hub's until then. */
/* The hub's arrays, with room for one entry per stream plus one. */
struct hub_bufs {
	struct pollfd *pfd;
	struct sse_state **who;
	struct MHD_Connection **wake;
	size_t cap;
};

/* Under hub_mu: make room for every stream in srv->streams. */
static void hub_reserve(struct http_server *srv, struct hub_bufs *b)
{
	size_t n = 1;
	for (struct sse_state *s = srv->streams; s; s = s->next)
		n++;
	if (n <= b->cap)
		return;
	b->cap = n * 2;
	b->pfd = xrealloc(b->pfd, b->cap * sizeof(*b->pfd));
	b->who = xrealloc(b->who, b->cap * sizeof(*b->who));
	b->wake = xrealloc(b->wake, b->cap * sizeof(*b->wake));
}

static void *sse_hub_main(void *arg)
{
	struct http_server *srv = arg;
	struct hub_bufs hb = { 0 };
	struct pollfd *pfd;
	struct sse_state **who;
	struct MHD_Connection **wake;
	size_t nwake = 0;
	for (;;) {
		pthread_mutex_lock(&srv->hub_mu);
		hub_reserve(srv, &hb);
		pfd = hb.pfd, who = hb.who, wake = hb.wake;
		if (srv->hub_stopping || srv->app->stopping) {
			srv->hub_stopping = 1;
			nwake = 0;
			for (struct sse_state *s = srv->streams; s; s = s->next)
				if (s->suspended)
					sse_hub_resume(s, wake, &nwake);
			pthread_mutex_unlock(&srv->hub_mu);
			for (size_t i = 0; i < nwake; i++)
				MHD_resume_connection(wake[i]);
			break;
		}
		pfd[0] = (struct pollfd){ .fd = srv->hub_pipe[0], .events = POLLIN };
		size_t np = 1;
		double now = mono_now(), next = now + 0.5;
		for (struct sse_state *s = srv->streams; s; s = s->next) {
			if (!s->suspended)
				continue;
			if (s->wake_at < next)
				next = s->wake_at;
			if (s->listen) {
				pfd[np] = (struct pollfd){ .fd = PQsocket(s->listen), .events = POLLIN };
				who[np++] = s;
			}
		}
		pthread_mutex_unlock(&srv->hub_mu);
		int ms = next <= now ? 0 : (int)((next - now) * 1000) + 1;
		int rc = poll(pfd, np, ms);
		if (rc < 0 && errno != EINTR) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (pfd[0].revents) {
			char drain[64];
			while (read(srv->hub_pipe[0], drain, sizeof(drain)) > 0)
				;
		}
		pthread_mutex_lock(&srv->hub_mu);
		hub_reserve(srv, &hb); /* streams may have come since */
		pfd = hb.pfd, who = hb.who, wake = hb.wake;
		nwake = 0;
		for (size_t i = 1; rc > 0 && i < np; i++) {
			struct sse_state *s = who[i];
			if (!pfd[i].revents || !s->suspended)
				continue;
			if (!PQconsumeInput(s->listen)) {
				s->listen_broken = 1; /* the stream closes it and polls */
				sse_hub_resume(s, wake, &nwake);
				continue;
			}
			PGnotify *nt;
			while ((nt = PQnotifies(s->listen)) != NULL) {
				if (nt->extra && !strcmp(nt->extra, s->job_id))
					s->hit = 1;
				PQfreemem(nt);
			}
			if (s->hit)
				sse_hub_resume(s, wake, &nwake);
		}
		now = mono_now();
		for (struct sse_state *s = srv->streams; s; s = s->next)
			if (s->suspended && now >= s->wake_at)
				sse_hub_resume(s, wake, &nwake);
		pthread_mutex_unlock(&srv->hub_mu);
		for (size_t i = 0; i < nwake; i++)
			MHD_resume_connection(wake[i]);
	}
	free(hb.pfd);
	free(hb.who);
	free(hb.wake);
	return NULL;
}

static void sse_free(void *cls)
{
	struct sse_state *s = cls;
	sse_hub_remove(s->srv, s);
	sse_listen_close(s);
	buf_free(&s->out);
	json_decref(s->memo);
	free(s->last_job);
	free(s);
}

/* ---- responses --------------------------------------------------------- */

static struct MHD_Response *build_response(struct http_server *srv, struct api_req *r)
{
	struct MHD_Response *resp;
	if ((r->sse_job_id[0] || r->sse_campaign_id[0]) && r->status == 200) {
		struct sse_state *s = xcalloc(1, sizeof(*s));
		s->srv = srv;
		snprintf(s->tenant_id, sizeof(s->tenant_id), "%s", r->auth.tenant_id);
		s->campaign = r->sse_campaign_id[0] != 0;
		snprintf(s->job_id, sizeof(s->job_id), "%s",
			 s->campaign ? r->sse_campaign_id : r->sse_job_id);
		snprintf(s->request_id, sizeof(s->request_id), "%s", r->request_id);
		s->conn = r->conn;
		s->last_write = mono_now();
		const char *after = api_header(r, "Last-Event-ID");
		if (after)
			s->last_event = strtoll(after, NULL, 10);
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s,
							 sse_free);
		if (!resp) {
			sse_free(s);
			return NULL;
		}
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	} else {
		char *body;
		size_t len;
		const char *ctype = r->content_type ? r->content_type : "application/json";
		if (r->resp_text) {
			body = r->resp_text;
			r->resp_text = NULL;
			len = strlen(body);
		} else if (r->resp) {
			body = json_dumps(r->resp, JSON_COMPACT | JSON_ENSURE_ASCII);
			if (!body)
				body = xstrdup("{}");
			size_t bl = strlen(body);
			body = xrealloc(body, bl + 2);
			body[bl] = '\n';
			body[bl + 1] = '\0';
			len = bl + 1;
		} else {
			body = xstrdup("");
			len = 0;
		}
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(body);
			return NULL;
		}
		if (len || r->resp)
			MHD_add_response_header(resp, "Content-Type", ctype);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->secure)
		MHD_add_response_header(resp, "Strict-Transport-Security", HSTS_VALUE);
	int retry_after = 0;
	for (int i = 0; i < r->nhdr; i++) {
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
		retry_after |= !strcasecmp(r->hdr_name[i], "Retry-After");
	}
	/* Every 503 (database unreachable, lost, pool exhausted) tells the
	 * client when to come back. */
	if (r->status == 503 && !retry_after)
		MHD_add_response_header(resp, "Retry-After", "2");
	return resp;
}

static enum MHD_Result send_static(struct http_server *srv, struct MHD_Connection *conn,
				   struct http_ctx *ctx)
{
	struct api_req *r = &ctx->req;
	size_t size = 0;
	const char *type = NULL;
	int fd = -1;
	if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))
		fd = open_static(srv->app->cfg.web_root, r->path, &size, &type);
	if (fd < 0) {
		return MHD_NO; /* caller answers with a problem */
	}
	struct MHD_Response *resp = MHD_create_response_from_fd(size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	/* The console is one HTML file, one script and one stylesheet from
	 * this origin: nothing inline, nothing foreign, never framed. */
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
				"base-uri 'none'; form-action 'self'");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (r->secure)
		MHD_add_response_header(resp, "Strict-Transport-Security", HSTS_VALUE);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	return ret;
}

static void finish_request(struct http_server *srv, struct http_ctx *ctx)
{
	struct api_req *r = &ctx->req;
	struct app *app = srv->app;
	double secs = elapsed_since(&ctx->start);
	metrics_http_request(app->metrics, r->method, r->route ? r->route : "", r->status, secs);
	if (is_mutating(r->method) && is_api_path(r->path)) {
		PGconn *db = r->db ? r->db : db_acquire(app->db, 5000);
		if (db) {
			char err[256];
			/* The path is client text: printable ASCII only, bounded,
			 * so the row always inserts. */
			char path[512];
			size_t j = 0;
			for (const char *p = r->path; *p && j + 1 < sizeof(path); p++)
				path[j++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
			path[j] = '\0';
			struct db_audit_entry e = {
				.tenant_id = r->auth.ok ? r->auth.tenant_id : NULL,
				.token_id = r->auth.ok ? r->auth.token_id : NULL,
				.request_id = r->request_id,
				.method = r->method,
				.path = path,
				.status = r->status,
				.target = r->target[0] ? r->target : NULL,
				.actor = r->auth.ok && r->auth.subject[0] ? r->auth.subject : NULL,
			};
			if (db_audit_write(db, &e, err, sizeof(err)) != 0)
				log_msg(LOG_ERROR, "audit write failed for request %s: %s",
					r->request_id, err);
			if (db != r->db)
				db_release(app->db, db);
		} else {
			log_msg(LOG_ERROR, "audit write skipped for request %s: no database connection",
				r->request_id);
		}
	}
	if (r->db) {
		db_release(app->db, r->db);
		r->db = NULL;
	}
	struct log_ctx lc = { .request_id = r->request_id,
			      .tenant = r->auth.ok ? r->auth.tenant_name : NULL };
	log_ctx_msg(r->status >= 500 ? LOG_WARN : LOG_DEBUG, &lc, "%s %s -> %d (%.1f ms, from %s)",
		    r->method, r->path, r->status, secs * 1000.0, r->client_ip);
}

static void ctx_free(struct http_ctx *ctx)
{
	if (!ctx)
		return;
	json_decref(ctx->req.resp);
	free(ctx->req.resp_text);
	buf_free(&ctx->body);
	free(ctx);
}

/* Oversized bodies up to this size are read (and dropped) before the 413. */
#define HTTP_DRAIN_MAX_BYTES (16u * 1024 * 1024)

static enum MHD_Result queue_api_answer(struct http_server *srv, struct MHD_Connection *conn,
					struct http_ctx *ctx)
{
	struct api_req *r = &ctx->req;
	struct MHD_Response *resp = build_response(srv, r);
	enum MHD_Result ret = MHD_NO;
	if (resp) {
		ret = MHD_queue_response(conn, (unsigned int)r->status, resp);
		MHD_destroy_response(resp);
	}
	return ret;
}

static enum MHD_Result answer_request(struct http_server *srv, struct MHD_Connection *conn,
				      struct http_ctx *ctx);
static void run_request(struct http_server *srv, void *arg);

/* On the event thread: answer a GET of an API_QUICK_READ route here, when
 * a pooled database connection is free at once (db_try_acquire), and save
 * the hand-off to a handler thread and back (two thread wake-ups, the
 * largest cost of a cached-token read at 16 connections on two cores).
 * Such a handler only runs SELECTs, which wait for no row lock, so it
 * cannot hold up the thread's other connections the way a write waiting
 * for a lock would. 1 = answered (ctx->answer_rc set); 0 = not a quick
 * read, no connection free, or the connection broke under the read: the
 * caller hands it off (where a broken connection is retried once). */
static int answer_quick_read(struct http_server *srv, struct MHD_Connection *conn,
			     struct http_ctx *ctx)
{
	struct api_req *r = &ctx->req;
	if (ctx->too_large || ctx->body.len || strcmp(r->method, "GET") ||
	    strncmp(r->path, "/v1/", 4))
		return 0;
	const struct api_route *rt = route_lookup(r->method, r->path, r->params, NULL, 0);
	ctx->route = rt;  /* a hand-off does not look it up again */
	if (!rt || rt->quick_read != API_QUICK_READ)
		return 0;
	r->db = db_try_acquire(srv->app->db);
	if (!r->db)
		return 0;
	dispatch(r, rt);
	if (lost_database(r)) {
		reset_answer(r);
		return 0;
	}
	metrics_http_quick_read(srv->app->metrics);
	ctx->answer_rc = queue_api_answer(srv, conn, ctx);
	finish_request(srv, ctx);
	return 1;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **con_cls)
{
	struct http_server *srv = cls;
	struct app *app = srv->app;
	struct http_ctx *ctx = *con_cls;
	(void)version;

	if (!ctx) {
		connguard_head_received(srv->guard, conn);
		ctx = xcalloc(1, sizeof(*ctx));
		clock_gettime(CLOCK_MONOTONIC, &ctx->start);
		ctx->req.app = app;
		ctx->req.conn = conn;
		ctx->req.method = method;
		ctx->req.path = url;
		ctx->req.route = "";
		const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
		if (request_id_ok(rid))
			snprintf(ctx->req.request_id, sizeof(ctx->req.request_id), "%s", rid);
		else
			new_request_id(ctx->req.request_id);
		*con_cls = ctx;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		trustproxy_client(srv->proxies, ci ? ci->client_addr : NULL,
				  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"),
				  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto"),
				  srv->tls, ctx->req.client_ip, &ctx->req.secure);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(cl, &end, 10);
			if (!errno && !*end && v > app->cfg.max_body_bytes && v <= HTTP_DRAIN_MAX_BYTES) {
				/* Read and drop the body, answer 413 once it has
				 * arrived: answering first and closing with unread
				 * data resets the connection under a client that is
				 * still sending (it sees EPIPE, not the 413). */
				ctx->too_large = 1;
				return MHD_YES;
			}
			if (errno || *end || v > app->cfg.max_body_bytes) {
				/* Too large to be worth reading: answer now and close. */
				api_set_header(&ctx->req, "Connection", "close");
				api_problem(&ctx->req, 413, "Request body too large",
					    "the request body exceeds the limit of %zu bytes",
					    app->cfg.max_body_bytes);
				enum MHD_Result ret = queue_api_answer(srv, conn, ctx);
				finish_request(srv, ctx);
				ctx->too_large = 2; /* answered */
				return ret;
			}
		}
		return MHD_YES;
	}
	if (ctx->too_large == 2) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!ctx->too_large) {
			if (ctx->body.len + *upload_data_size > app->cfg.max_body_bytes) {
				ctx->too_large = 1;
				buf_free(&ctx->body);
			} else {
				buf_append(&ctx->body, upload_data, *upload_data_size);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* Upload complete: a handler thread answers (the connection is
	 * suspended meanwhile), or this thread when they are stopping. */
	if (ctx->handed_off)
		return ctx->answer_rc; /* called again after the answer */
	ctx->handed_off = 1;
	ctx->answer_rc = MHD_YES;
	if (answer_quick_read(srv, conn, ctx))
		return ctx->answer_rc;
	if (work_submit(srv, conn, run_request, ctx))
		return MHD_YES;
	return answer_request(srv, conn, ctx);
}

/* Route the complete request, run its handler and queue the answer. */
static enum MHD_Result answer_request(struct http_server *srv, struct MHD_Connection *conn,
				      struct http_ctx *ctx)
{
	struct app *app = srv->app;
	struct api_req *r = &ctx->req;
	const char *url = r->path, *method = r->method;
	r->body = ctx->body.len ? ctx->body.data : NULL;
	r->body_len = ctx->body.len;
	if (ctx->too_large) {
		api_problem(r, 413, "Request body too large",
			    "the request body exceeds the limit of %zu bytes",
			    app->cfg.max_body_bytes);
	} else if (is_api_path(url)) {
		dispatch(r, ctx->route);
		if (lost_database(r) && !is_mutating(r->method)) {
			/* The pooled connection died under a read (a
			 * PostgreSQL restart the stale check did not see yet):
			 * the pool resets it; run the request once more. */
			reset_answer(r);
			dispatch(r, ctx->route);
		}
	} else {
		if (send_static(srv, conn, ctx) == MHD_YES) {
			finish_request(srv, ctx);
			return MHD_YES;
		}
		if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
			api_problem(r, 404, "Not found", "no resource at %s", url);
		else
			api_problem(r, 405, "Method not allowed", "%s is not supported on %s",
				    method, url);
	}
	enum MHD_Result ret = queue_api_answer(srv, conn, ctx);
	finish_request(srv, ctx);
	return ret;
}

/* On a handler thread: answer a request whose connection is suspended. A
 * failed answer (MHD_NO) closes the connection when libmicrohttpd calls
 * the access handler again. */
static void run_request(struct http_server *srv, void *arg)
{
	struct http_ctx *ctx = arg;
	struct MHD_Connection *conn = ctx->req.conn;
	ctx->answer_rc = answer_request(srv, conn, ctx);
	MHD_resume_connection(conn);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	(void)toe;
	connguard_request_done(srv->guard, conn);
	struct http_ctx *ctx = *con_cls;
	if (ctx && ctx->req.db) {
		/* Should not happen (finish_request releases), but never leak a
		 * pooled connection. */
		db_release(ctx->req.app->db, ctx->req.db);
		ctx->req.db = NULL;
	}
	ctx_free(ctx);
	*con_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_msg(LOG_WARN, "http: %s", msg);
}

/* Parse "host:port", "[v6]:port" or ":port" into addr. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
			char *err, size_t errlen)
{
	char host[256];
	const char *colon;
	memset(ss, 0, sizeof(*ss));
	if (!listen || !*listen) {
		snprintf(err, errlen, "listen address is empty");
		return -1;
	}
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "bad listen address \"%s\" (want [v6addr]:port)", listen);
			return -1;
		}
		size_t hl = (size_t)(close - listen - 1);
		if (hl >= sizeof(host)) {
			snprintf(err, errlen, "bad listen address \"%s\"", listen);
			return -1;
		}
		memcpy(host, listen + 1, hl);
		host[hl] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon) {
			snprintf(err, errlen, "bad listen address \"%s\" (want host:port)", listen);
			return -1;
		}
		size_t hl = (size_t)(colon - listen);
		if (hl >= sizeof(host)) {
			snprintf(err, errlen, "bad listen address \"%s\"", listen);
			return -1;
		}
		memcpy(host, listen, hl);
		host[hl] = '\0';
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 0 || port > 65535) {
		snprintf(err, errlen, "bad port in listen address \"%s\"", listen);
		return -1;
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "*")) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_ANY);
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (!strcmp(host, "localhost")) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
	} else {
		snprintf(err, errlen, "bad host \"%s\" in listen address (use an IP address)", host);
		return -1;
	}
	return 0;
}

/* Stop the SSE hub (resuming every suspended stream) and free its pipe;
 * harmless when it never started. */
static void hub_stop(struct http_server *srv)
{
	if (srv->hub_started) {
		pthread_mutex_lock(&srv->hub_mu);
		srv->hub_stopping = 1;
		pthread_mutex_unlock(&srv->hub_mu);
		sse_hub_kick(srv);
		pthread_join(srv->hub, NULL);
		srv->hub_started = 0;
	}
	for (int i = 0; i < 2; i++)
		if (srv->hub_pipe[i] >= 0)
			close(srv->hub_pipe[i]);
	srv->hub_pipe[0] = srv->hub_pipe[1] = -1;
}

struct http_server *http_server_start(struct app *app, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (parse_listen(app->cfg.listen, &ss, &sslen, err, errlen) != 0)
		return NULL;
	if (app->cfg.max_body_bytes == 0)
		app->cfg.max_body_bytes = 1024 * 1024;
	if (app->cfg.max_json_depth <= 0)
		app->cfg.max_json_depth = 32;
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->app = app;
	srv->hub_pipe[0] = srv->hub_pipe[1] = -1;
	pthread_mutex_init(&srv->hub_mu, NULL);
	pthread_mutex_init(&srv->work_mu, NULL);
	pthread_cond_init(&srv->work_cv, NULL);
	atomic_init(&srv->listeners, 0);
	/* Slow clients (docs/SECURITY.md): a total connection limit with
	 * headroom, a per-IP cap, absolute request-head deadlines
	 * (connguard), poll() rather than select() so that descriptors past
	 * FD_SETSIZE work, and a descriptor limit that fits the total. */
	unsigned int max_conn = app->cfg.http_max_connections > 0 ? (unsigned)app->cfg.http_max_connections : 2048;
	unsigned int per_ip = app->cfg.http_per_ip_connections > 0 ? (unsigned)app->cfg.http_per_ip_connections : 64;
	double head_s = app->cfg.http_header_timeout_s > 0 ? app->cfg.http_header_timeout_s : 10;
	double idle_s = app->cfg.http_idle_timeout_s > 0 ? app->cfg.http_idle_timeout_s : 60;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_conn + 1024) {
		rlim_t want = (rlim_t)max_conn + 1024;
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	srv->guard = connguard_new(head_s, idle_s);
	if (!srv->guard) {
		snprintf(err, errlen, "cannot start the connection watchdog thread");
		free(srv);
		return NULL;
	}
	srv->proxies = trustproxy_parse(app->cfg.trusted_proxies, err, errlen);
	if (!srv->proxies) {
		connguard_free(srv->guard);
		free(srv);
		return NULL;
	}
	if (app->cfg.tls_cert) {
		if (tlscreds_load(app->cfg.tls_cert, app->cfg.tls_key, err, errlen) != 0)
			goto fail;
		srv->tls = 1;
	}
	/* Event threads: one epoll loop per core (at most
	 * HTTP_MAX_EVENT_THREADS) over its share of the connections; handler
	 * threads: cfg.http_threads (see the top of this file). */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int event_threads = cpus < 1 ? 1 : cpus > HTTP_MAX_EVENT_THREADS ? HTTP_MAX_EVENT_THREADS
										  : (unsigned)cpus;
	/* 0: no handler threads, the event threads run the handlers (one
	 * hand-off less per request, but a handler that waits holds up its
	 * event thread's other connections). */
	int nhandlers = app->cfg.http_threads >= 0 ? app->cfg.http_threads : HTTP_DEFAULT_THREADS;
	srv->handlers = xcalloc((size_t)nhandlers + 1, sizeof(*srv->handlers));
	pthread_mutex_lock(&srv->work_mu);
	for (; srv->nhandlers < nhandlers; srv->nhandlers++)
		if (pthread_create(&srv->handlers[srv->nhandlers], NULL, handler_main, srv) != 0)
			break;
	srv->work_started = srv->nhandlers > 0;
	pthread_mutex_unlock(&srv->work_mu);
	if (srv->nhandlers < nhandlers) {
		snprintf(err, errlen, "cannot start %d HTTP handler threads", nhandlers);
		goto fail;
	}
	if (pipe(srv->hub_pipe) != 0) {
		srv->hub_pipe[0] = srv->hub_pipe[1] = -1;
		snprintf(err, errlen, "cannot create the SSE hub's pipe: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(srv->hub_pipe[i], F_SETFD, FD_CLOEXEC);
		fcntl(srv->hub_pipe[i], F_SETFL, O_NONBLOCK);
	}
	if (pthread_create(&srv->hub, NULL, sse_hub_main, srv) != 0) {
		snprintf(err, errlen, "cannot start the SSE hub thread");
		goto fail;
	}
	srv->hub_started = 1;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The same options with and without TLS; with it, the certificate
	 * comes from tlscreds on every handshake, so SIGHUP can replace it
	 * (http_server_reload_tls) while connections stay open. */
	if (srv->tls)
		srv->daemon = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, http_access, srv,
					       MHD_OPTION_HTTPS_CERT_CALLBACK, tlscreds_retrieve,
					       MHD_OPTION_HTTPS_PRIORITIES, tlscreds_priorities,
					       MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, srv,
					       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
					       MHD_OPTION_THREAD_POOL_SIZE, event_threads,
					       MHD_OPTION_CONNECTION_LIMIT, max_conn,
					       MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
					       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
					       MHD_OPTION_NOTIFY_CONNECTION, connguard_notify, srv->guard,
					       MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv,
					       MHD_OPTION_END);
	else
		srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, http_access, srv,
					       MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, srv,
					       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
					       MHD_OPTION_THREAD_POOL_SIZE, event_threads,
					       MHD_OPTION_CONNECTION_LIMIT, max_conn,
					       MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
					       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
					       MHD_OPTION_NOTIFY_CONNECTION, connguard_notify, srv->guard,
					       MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv,
					       MHD_OPTION_END);
	if (!srv->daemon) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not available%s)",
			 app->cfg.listen, srv->tls ? ", or TLS is not available" : "");
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon,
							       MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? (int)info->port : 0;
	return srv;
fail:
	hub_stop(srv);
	handlers_stop(srv);
	if (srv->tls)
		tlscreds_free_all();
	trustproxy_free(srv->proxies);
	connguard_free(srv->guard);
	free(srv);
	return NULL;
}

int http_server_tls(const struct http_server *srv)
{
	return srv ? srv->tls : 0;
}

int http_server_reload_tls(struct http_server *srv, char *err, size_t errlen)
{
	if (!srv || !srv->tls) {
		snprintf(err, errlen, "TLS is not configured");
		return -1;
	}
	return tlscreds_reload(err, errlen);
}

int http_server_port(const struct http_server *srv)
{
	return srv ? srv->port : 0;
}

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	srv->stopping = 1;
	/* Every suspended stream must be resumed (and ends) before
	 * MHD_stop_daemon: the hub does that on its way out. */
	hub_stop(srv);
	/* Then the handler threads, once they have answered what is queued
	 * (resuming those connections); from here on requests are answered
	 * on the event threads. */
	handlers_stop(srv);
	MHD_stop_daemon(srv->daemon);
	connguard_free(srv->guard);
	if (srv->tls)
		tlscreds_free_all();
	trustproxy_free(srv->proxies);
	free(srv);
}
