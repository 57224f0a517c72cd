/*
 * api/request: reading a request: query arguments, headers, the JSON body
 * (content type, size already capped by http.c, nesting depth capped here
 * before jansson sees it, duplicate keys refused), unknown fields, paging
 * limits, and the request's database connection (acquired on first use,
 * released by http.c when the request ends).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "api/api.h"
#include "db/dbq.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"

const char *api_query(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *api_cookie(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

const char *api_tenant(struct api_req *r)
{
	return r->auth.tenant_id[0] ? r->auth.tenant_id : NULL;
}

int api_is_uuid(const char *s)
{
	return dbq_is_uuid(s);
}

int api_dns_label_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return 0;
	}
	return 1;
}

void api_reply_page(struct api_req *r, int st, json_t *page, const char *err)
{
	if (st == DB_OK) {
		api_reply(r, 200, page);
		return;
	}
	json_decref(page);
	if (st == DB_BAD_CURSOR)
		api_problem(r, 400, "Bad request", "the cursor is not valid");
	else
		api_db_error(r, err);
}

int api_json_depth(const char *text, size_t len)
{
	int depth = 0, max = 0, in_str = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

const char *api_role_name(enum api_role role)
{
	switch (role) {
	case API_ROLE_VIEWER: return "viewer";
	case API_ROLE_OPERATOR: return "operator";
	case API_ROLE_ADMIN: return "admin";
	default: return "none";
	}
}

enum api_role api_role_parse(const char *name)
{
	if (!name)
		return API_ROLE_NONE;
	if (!strcmp(name, "viewer"))
		return API_ROLE_VIEWER;
	if (!strcmp(name, "operator"))
		return API_ROLE_OPERATOR;
	if (!strcmp(name, "admin"))
		return API_ROLE_ADMIN;
	return API_ROLE_NONE;
}

json_t *api_body_object(struct api_req *r)
{
	const char *ct = api_header(r, "Content-Type");
	if (!r->body || r->body_len == 0) {
		api_problem(r, 400, "Bad request", "a JSON object body is required");
		return NULL;
	}
	if (!ct || (strncasecmp(ct, "application/json", 16) != 0 &&
		    strncasecmp(ct, "application/merge-patch+json", 28) != 0)) {
		api_problem(r, 415, "Unsupported media type",
			    "send the body as application/json (got %s)", ct ? ct : "no Content-Type");
		return NULL;
	}
	if (memchr(r->body, '\0', r->body_len)) {
		api_problem(r, 400, "Bad request", "the body contains a NUL byte");
		return NULL;
	}
	int depth = api_json_depth(r->body, r->body_len);
	if (depth > r->app->cfg.max_json_depth) {
		api_problem(r, 400, "Bad request", "JSON nesting depth %d exceeds the limit of %d",
			    depth, r->app->cfg.max_json_depth);
		return NULL;
	}
	json_error_t jerr;
	json_t *v = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		api_problem(r, 400, "Bad request", "the body is not valid JSON: %s (line %d, column %d)",
			    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		api_problem(r, 400, "Bad request", "the body must be a JSON object");
		return NULL;
	}
	return v;
}

int api_check_fields(struct api_req *r, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *val;
	json_t *errors = NULL;
	struct buf names = BUF_INIT;
	json_object_foreach(obj, key, val) {
		int ok = 0;
		for (size_t i = 0; allowed[i]; i++)
			if (!strcmp(allowed[i], key)) {
				ok = 1;
				break;
			}
		if (ok)
			continue;
		if (!errors)
			errors = json_array();
		json_array_append_new(errors, json_pack("{s:s,s:s}", "field", key, "message",
							"unknown field"));
		buf_printf(&names, "%s\"%.64s\"", names.len ? ", " : "", key);
	}
	if (!errors)
		return 1;
	api_problem_errors(r, 400, "Unknown fields", errors, "unknown field(s): %s",
			   buf_cstr(&names));
	buf_free(&names);
	return 0;
}

int api_limit(struct api_req *r, int *limit)
{
	const char *s = api_query(r, "limit");
	*limit = 50;
	if (!s)
		return 1;
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 1 || v > 200) {
		api_problem(r, 400, "Bad request", "limit must be an integer from 1 to 200");
		return 0;
	}
	*limit = (int)v;
	return 1;
}

PGconn *api_db(struct api_req *r)
{
	if (r->db)
		return r->db;
	r->db = db_acquire(r->app->db, 5000);
	if (!r->db)
		api_problem(r, 503, "Service unavailable",
			    "no database connection is available; retry shortly");
	return r->db;
}
