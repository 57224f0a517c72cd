/*
 * api/problem: answering a request. Every error leaves ferryd as an RFC 9457
 * problem document:
 *   {"type": "about:blank" or a ferry problem URI, "title": fixed per kind,
 *    "status": n, "detail": what happened this time, "instance": path,
 *    "request_id": id[, "errors": [{field, message}…]]}
 * with Content-Type application/problem+json. Details are written by
 * handlers for the user and never include credentials.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "server/log.h"

void api_reply(struct api_req *r, int status, json_t *body)
{
	if (r->status) {
		/* Answered twice: a handler bug; keep the first answer. */
		json_decref(body);
		return;
	}
	r->status = status;
	r->resp = body;
	r->content_type = "application/json";
}

void api_reply_body(struct api_req *r, int status, char *json_text)
{
	if (r->status) {
		free(json_text);
		return;
	}
	r->status = status;
	r->resp_text = json_text;
	r->content_type = "application/json";
}

const char *api_status_title(int status)
{
	switch (status) {
	case 400: return "Bad request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not found";
	case 405: return "Method not allowed";
	case 409: return "Conflict";
	case 412: return "Precondition failed";
	case 413: return "Request body too large";
	case 415: return "Unsupported media type";
	case 422: return "Unprocessable content";
	case 500: return "Internal error";
	case 503: return "Service unavailable";
	default: return "Error";
	}
}

/* A JSON string of client-influenced text: when it is not valid UTF-8
 * (a percent-decoded path, a truncated multi-byte name), bytes above
 * ASCII become '?' so the member is never silently dropped. */
static json_t *safe_string(const char *text)
{
	json_t *v = json_string(text);
	if (v)
		return v;
	char buf[1024];
	size_t i;
	for (i = 0; text[i] && i + 1 < sizeof(buf); i++)
		buf[i] = (unsigned char)text[i] < 0x80 ? text[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

static void problem_v(struct api_req *r, int status, const char *title, json_t *errors,
		      const char *fmt, va_list ap)
{
	char detail[1024];
	vsnprintf(detail, sizeof(detail), fmt, ap);
	json_t *p = json_object();
	json_object_set_new(p, "type", json_string("about:blank"));
	json_object_set_new(p, "title", json_string(title ? title : api_status_title(status)));
	json_object_set_new(p, "status", json_integer(status));
	json_object_set_new(p, "detail", safe_string(detail));
	if (r->path)
		json_object_set_new(p, "instance", safe_string(r->path));
	json_object_set_new(p, "request_id", json_string(r->request_id));
	if (errors)
		json_object_set_new(p, "errors", errors);
	if (r->status) {
		json_decref(p);
		return;
	}
	r->status = status;
	r->resp = p;
	r->content_type = "application/problem+json";
	if (status == 401)
		api_set_header(r, "WWW-Authenticate", "Bearer realm=\"ferry\"");
}

void api_problem(struct api_req *r, int status, const char *title, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	problem_v(r, status, title, NULL, fmt, ap);
	va_end(ap);
}

void api_problem_errors(struct api_req *r, int status, const char *title, json_t *errors,
			const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	problem_v(r, status, title, errors, fmt, ap);
	va_end(ap);
}

void api_db_error(struct api_req *r, const char *what)
{
	struct log_ctx lc = { .request_id = r->request_id,
			      .tenant = r->auth.ok ? r->auth.tenant_name : NULL };
	log_ctx_msg(LOG_ERROR, &lc, "database error: %s", what && *what ? what : "(no message)");
	if (r->db && PQstatus(r->db) == CONNECTION_BAD) {
		/* The database went away under the request: a retry can work. */
		api_problem(r, 503, "Service unavailable",
			    "the database connection was lost; retry shortly");
		return;
	}
	api_problem(r, 500, "Internal error",
		    "a database operation failed; the request id %s identifies it in the server log",
		    r->request_id);
}

void api_set_header(struct api_req *r, const char *name, const char *value)
{
	if (r->nhdr >= API_MAX_HEADERS)
		return;
	snprintf(r->hdr_name[r->nhdr], sizeof(r->hdr_name[0]), "%s", name);
	snprintf(r->hdr_value[r->nhdr], sizeof(r->hdr_value[0]), "%s", value);
	r->nhdr++;
}
