/*
 * api: the REST handlers of ferryd and the small toolkit they share.
 *
 * server/http.c turns every libmicrohttpd request into a struct api_req,
 * matches it against api_routes[] (api/routes.c), authenticates it
 * (api/auth.c), checks the route's scope and minimum role, and calls the
 * handler. A handler reads the request through the api_* accessors and
 * answers exactly once with api_reply() or api_problem(); http.c sends the
 * answer, records metrics, writes the audit row of mutating requests and
 * gives the database connection back.
 *
 * Errors are RFC 9457 problem+json: {type, title, status, detail[, errors]}.
 * Other tenants' objects are always 404, never 403.
 *
 * Memory: an api_req lives on http.c's per-request state; everything it
 * points to is owned by http.c, except r->resp (owned by the request after
 * api_reply(), freed by http.c).
 * Thread-safety: one request is handled by one thread at a time.
 */
#ifndef FERRY_API_H
#define FERRY_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

struct app;
struct buf;
struct MHD_Connection;

enum api_role {
	API_ROLE_NONE = 0,
	API_ROLE_VIEWER = 1,
	API_ROLE_OPERATOR = 2,
	API_ROLE_ADMIN = 3
};

/* Which kind of token a route accepts. */
enum api_scope {
	API_SCOPE_PUBLIC = 0,    /* no authentication (health, metrics, openapi) */
	API_SCOPE_ANY = 1,       /* any valid token */
	API_SCOPE_TENANT = 2,    /* a token bound to a tenant */
	API_SCOPE_PLATFORM = 3   /* a platform-wide token (tenant_id NULL) */
};

struct api_auth {
	int ok;                  /* 1 once the bearer token was accepted */
	char token_id[37];
	char tenant_id[37];      /* "" for a platform-wide token */
	char tenant_name[64];
	enum api_role role;
	/* Single sign-on (api/session.c): "oidc:<subject>" of the person or
	 * client; "" for an API token. token_id is "" under single sign-on. */
	char subject[264];       /* "oidc:" + up to 255 (OIDC Core 2) */
};

#define API_MAX_PARAMS 2
#define API_MAX_HEADERS 6

struct api_req {
	struct app *app;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	const char *route;                 /* matched pattern, "" if none */
	char request_id[37];
	char params[API_MAX_PARAMS][37];   /* {id} (UUID) and {revision} (digits) path parameters, in order */
	const char *body;                  /* request body (NUL-terminated) or NULL */
	size_t body_len;
	struct api_auth auth;
	PGconn *db;                        /* acquired by api_db(), released by http.c */

	/* The answer. */
	int status;                        /* 0 until the handler answered */
	json_t *resp;                      /* JSON body (or NULL for none) */
	const char *content_type;          /* default application/json */
	char *resp_text;                   /* non-JSON body (malloc'd), e.g. /metrics */
	char hdr_name[API_MAX_HEADERS][32];
	char hdr_value[API_MAX_HEADERS][1024];   /* Location and Set-Cookie need room */
	int nhdr;
	char target[64];                   /* audit target (object id) */
	char sse_job_id[37];               /* set by the SSE handler: stream this job */
	char sse_campaign_id[37];          /* ... or this campaign (api/campaigns.c) */
	/* Where the request came from (server/trustproxy.h): the client's
	 * address, and 1 when it used HTTPS (ferryd's TLS or a trusted
	 * proxy's X-Forwarded-Proto). */
	char client_ip[46];
	int secure;
};

typedef void (*api_handler)(struct api_req *r);

struct api_route {
	const char *method;       /* "GET", "POST", "PATCH", "DELETE" */
	const char *pattern;      /* "/v1/clusters/{id}/jobs" ({id} = a UUID) */
	api_handler fn;
	enum api_scope scope;
	enum api_role min_role;
	const char *summary;      /* one line, for openapi.json */
	const char *request_schema;   /* name of the request schema, or NULL */
	const char *response_schema;  /* name of the response schema, or NULL */
	int success_status;
	/* API_QUICK_READ: the handler only reads the database (plain SELECTs,
	 * which never wait for a row lock under MVCC), calls no cluster and
	 * answers in well under a millisecond of CPU. server/http.c may then
	 * run it on the event thread that read the request, when a database
	 * connection is free at once, instead of handing it to a handler
	 * thread (issue 14: the hand-off costs two thread wake-ups);
	 * API_MAY_BLOCK for everything else. */
	int quick_read;
};

#define API_MAY_BLOCK 0
#define API_QUICK_READ 1

extern const struct api_route api_routes[];
extern const size_t api_routes_count;

/* ---- answering --------------------------------------------------------- */

/* Answer with a JSON body (stolen; NULL = no body). */
void api_reply(struct api_req *r, int status, json_t *body);
/* Answer with a JSON body that is already text (malloc'd, stolen), e.g.
 * PostgreSQL's JSON through dbq_json_body(). */
void api_reply_body(struct api_req *r, int status, char *json_text);
/* Answer with a problem+json. title is short and fixed per kind of error;
 * detail (printf-style) explains this occurrence. */
void api_problem(struct api_req *r, int status, const char *title,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same with an "errors" member (array of {field, message}; stolen). */
void api_problem_errors(struct api_req *r, int status, const char *title,
			json_t *errors, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* 500 for a database failure: logs what (with the request id), tells the
 * client only that an internal error happened. */
void api_db_error(struct api_req *r, const char *what);
/* Add a response header (ignored beyond API_MAX_HEADERS). */
void api_set_header(struct api_req *r, const char *name, const char *value);
/* The standard problem type URI / title for a status. */
const char *api_status_title(int status);

/* ---- reading the request ----------------------------------------------- */

/* A query-string argument or NULL. */
const char *api_query(struct api_req *r, const char *name);
/* A request header or NULL. */
const char *api_header(struct api_req *r, const char *name);
/* A request cookie or NULL. */
const char *api_cookie(struct api_req *r, const char *name);
/* The body parsed as a JSON object (new reference), or NULL after answering
 * 400/415 (empty, not JSON, too deep, not an object, wrong content type). */
json_t *api_body_object(struct api_req *r);
/* 1 if every key of obj is in allowed (NULL-terminated); otherwise answers
 * 400 naming the unknown fields and returns 0. */
int api_check_fields(struct api_req *r, json_t *obj, const char *const *allowed);
/* ?limit= (1..200, default 50) into *limit; 0 after answering 400. */
int api_limit(struct api_req *r, int *limit);
/* A database connection for this request, or NULL after answering 503. */
PGconn *api_db(struct api_req *r);
/* The tenant id of the caller or NULL for a platform-wide token. */
const char *api_tenant(struct api_req *r);

/* ---- helpers ----------------------------------------------------------- */

/* 1 if s is a canonical lower/upper-case UUID text. */
int api_is_uuid(const char *s);
/* 1 if s is a DNS label (RFC 1123): 1-63 of [a-z0-9-], no '-' at either
 * end. Tenant and cluster names. */
int api_dns_label_ok(const char *s);
/* Answer a list request from a db_*_list() result (db/dbq.h statuses):
 * DB_OK -> 200 with page (stolen), DB_BAD_CURSOR -> 400, anything else ->
 * 500 logging err. */
void api_reply_page(struct api_req *r, int st, json_t *page, const char *err);
/* Maximum nesting depth of JSON text (objects+arrays), scanning strings
 * correctly; used to refuse deep documents before parsing. */
int api_json_depth(const char *text, size_t len);
const char *api_role_name(enum api_role role);
/* Parse a label selector ("k=v,k!=v,k,!k", as GET /v1/clusters takes) into
 * reqs[DB_MAX_LABEL_REQS] (pointing into *store, a copy the caller frees
 * even on failure); *n = requirements (0 = matches everything). 0 or -1
 * with a reason in why. (api/clusters.c) */
struct db_label_req;
int api_parse_selector(const char *sel, char **store, struct db_label_req *reqs, int *n,
		       char *why, size_t whylen);
enum api_role api_role_parse(const char *name);

/* ---- auth (api/auth.c) ------------------------------------------------- */

/* Authenticate the bearer token of r into r->auth. 1 = ok; 0 = answered
 * 401 (missing/unknown/revoked token) or 503. */
int api_authenticate(struct api_req *r);

/* ---- handlers ---------------------------------------------------------- */
void api_me_get(struct api_req *r);
void api_tenants_create(struct api_req *r);
void api_tenants_list(struct api_req *r);
void api_tenants_delete(struct api_req *r);
void api_tokens_create(struct api_req *r);
void api_tokens_list(struct api_req *r);
void api_tokens_delete(struct api_req *r);
void api_clusters_create(struct api_req *r);
void api_clusters_list(struct api_req *r);
void api_clusters_get(struct api_req *r);
void api_clusters_patch(struct api_req *r);
void api_clusters_delete(struct api_req *r);
/* Check a job's kind (JSON string) and params (object, null or absent)
 * as POST /v1/clusters/{id}/jobs does; 1 = fine, 0 = answered 400/422.
 * The one place job kinds and params are validated (jobs and campaigns). */
int api_job_validate(struct api_req *r, json_t *kind, json_t *params);
void api_jobs_create(struct api_req *r);
void api_jobs_list(struct api_req *r);
void api_jobs_get(struct api_req *r);
void api_jobs_events(struct api_req *r);
void api_jobs_stream(struct api_req *r);
void api_jobs_cancel(struct api_req *r);
void api_campaigns_create(struct api_req *r);
void api_campaigns_list(struct api_req *r);
void api_campaigns_get(struct api_req *r);
void api_campaigns_clusters(struct api_req *r);
void api_campaigns_pause(struct api_req *r);
void api_campaigns_resume(struct api_req *r);
void api_campaigns_approve(struct api_req *r);
void api_campaigns_cancel(struct api_req *r);
void api_campaigns_stream(struct api_req *r);
/* One poll of a campaign's SSE stream (http.c): appends "event: cluster"
 * for each member that changed since the last poll and then "event:
 * campaign" when the campaign changed; *memo (NULL at first, owned by the
 * caller, json_decref at the end) remembers what was sent. *finished = 1
 * once the campaign ended and no job of it runs. 0, or -1 (gone / db). */
int api_campaign_stream_poll(PGconn *db, const char *tenant_id, const char *id, json_t **memo,
			     struct buf *out, int *finished);
/* Append the campaign gauges (ferry_campaigns, ferry_campaign_clusters)
 * to a /metrics body; nothing when db is NULL or the query fails. */
void api_campaign_metrics(PGconn *db, struct buf *out);
void api_healthz(struct api_req *r);
void api_readyz(struct api_req *r);
void api_metrics(struct api_req *r);
void api_openapi(struct api_req *r);

#endif
