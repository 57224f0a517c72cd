/*
 * api/jobs: starting and following jobs. The queue itself (idempotency,
 * the one-active-job rule, cancel semantics, the JSON shape) lives in
 * db/jobs.c; this file maps its outcomes to HTTP:
 *   created -> 202 + Location, replayed (same Idempotency-Key) -> 202 with
 *   the earlier job, conflict -> 409 naming the active job, no cluster in
 *   the caller's tenant -> 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jobparams.h"
#include "db/jobs.h"
#include "server/app.h"

static const char *const kinds[] = { "install", "upgrade", "rollback", "uninstall", "adopt",
				     "preflight", "check", "repair", NULL };

/* The caller's job id as JSON (new reference), or NULL after answering 404
 * (no such job in the caller's tenant) or 500. */
static json_t *job_or_answer(struct api_req *r, const char *job_id)
{
	char err[256] = "";
	json_t *job = db_job_get_json(r->db, api_tenant(r), job_id, err, sizeof(err));
	if (!job) {
		if (err[0])
			api_db_error(r, err);
		else
			api_problem(r, 404, "Not found", "no job %s", job_id);
	}
	return job;
}

static void reply_job(struct api_req *r, int status, const char *job_id)
{
	json_t *job = job_or_answer(r, job_id);
	if (!job)
		return;
	char loc[128];
	snprintf(loc, sizeof(loc), "/v1/jobs/%s", job_id);
	api_set_header(r, "Location", loc);
	snprintf(r->target, sizeof(r->target), "%s", job_id);
	api_reply(r, status, job);
}

int api_job_validate(struct api_req *r, json_t *kind, json_t *params)
{
	int kind_ok = 0;
	if (json_is_string(kind))
		for (size_t i = 0; kinds[i]; i++)
			if (!strcmp(kinds[i], json_string_value(kind)))
				kind_ok = 1;
	if (!kind_ok) {
		api_problem_errors(r, 400, "Invalid request",
				   json_pack("[{s:s,s:s}]", "field", "kind", "message",
					     "one of install, upgrade, rollback, uninstall, adopt, preflight, check, repair"),
				   "kind is required: install, upgrade, rollback, uninstall, adopt, preflight, check "
				   "or repair");
		return 0;
	}
	if (params && !json_is_object(params) && !json_is_null(params)) {
		api_problem_errors(r, 400, "Invalid request",
				   json_pack("[{s:s,s:s}]", "field", "params", "message", "must be an object"),
				   "params must be an object");
		return 0;
	}
	char pfield[256], pmsg[512];
	if (jobparams_check(json_string_value(kind), params, pfield, sizeof pfield, pmsg, sizeof pmsg) < 0) {
		api_problem_errors(r, 422, "Invalid job parameters",
				   json_pack("[{s:s,s:s}]", "field", pfield, "message", pmsg),
				   "%s: %s (GET /v1/job-kinds lists every kind's parameters)", pfield, pmsg);
		return 0;
	}
	return 1;
}

void api_jobs_create(struct api_req *r)
{
	static const char *const fields[] = { "kind", "params", NULL };
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	json_t *body = api_body_object(r);
	if (!body)
		return;
	if (!api_check_fields(r, body, fields))
		goto out;
	json_t *kind = json_object_get(body, "kind");
	json_t *params = json_object_get(body, "params");
	if (!api_job_validate(r, kind, params))
		goto out;
	const char *idem = api_header(r, "Idempotency-Key");
	if (idem && (strlen(idem) == 0 || strlen(idem) > 200)) {
		api_problem(r, 400, "Bad request", "Idempotency-Key must be 1-200 characters");
		goto out;
	}
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	struct db_job_new req = {
		.tenant_id = r->auth.tenant_id,
		.cluster_id = r->params[0],
		.kind = json_string_value(kind),
		.params = json_is_object(params) ? params : NULL,
		.idempotency_key = idem,
		.created_by = r->auth.token_id[0] ? r->auth.token_id : NULL,  /* NULL: single sign-on */
	};
	char job_id[DB_ID_LEN] = "", active[DB_ID_LEN] = "", err[256] = "";
	enum db_job_enqueue_result res = db_job_enqueue(db, &req, job_id, active, err, sizeof(err));
	if (res == DB_JOB_CONFLICT && idem) {
		/* Two retries with one key racing: the loser may hit the
		 * one-active index before the idempotency index. Asking again
		 * finds the winner's committed job by its key. */
		res = db_job_enqueue(db, &req, job_id, active, err, sizeof(err));
	}
	switch (res) {
	case DB_JOB_CREATED:
	case DB_JOB_REPLAYED:
		reply_job(r, 202, job_id);
		break;
	case DB_JOB_CONFLICT: {
		char loc[128];
		snprintf(loc, sizeof(loc), "/v1/jobs/%s", active);
		api_problem_errors(r, 409, "Conflict",
				   json_pack("[{s:s,s:s}]", "field", "active_job_id", "message", active),
				   "job %s is already queued or running on this cluster (%s)", active, loc);
		break;
	}
	case DB_JOB_NO_CLUSTER:
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
		break;
	case DB_JOB_BAD_KIND:
		api_problem(r, 400, "Invalid request", "unknown job kind");
		break;
	case DB_JOB_KEY_REUSED:
		api_problem(r, 422, "Unprocessable request",
			    "Idempotency-Key was already used for a job on another cluster; use a new key");
		break;
	default:
		api_db_error(r, err);
		break;
	}
out:
	json_decref(body);
}

void api_jobs_list(struct api_req *r)
{
	int limit;
	if (!api_limit(r, &limit))
		return;
	const char *state = api_query(r, "state");
	const char *cluster = api_query(r, "cluster_id");
	static const char *const states[] = { "queued", "running", "succeeded", "failed",
					      "cancelled", NULL };
	if (state) {
		int ok = 0;
		for (size_t i = 0; states[i]; i++)
			if (!strcmp(states[i], state))
				ok = 1;
		if (!ok) {
			api_problem(r, 400, "Bad request",
				    "state must be queued, running, succeeded, failed or cancelled");
			return;
		}
	}
	if (cluster && !api_is_uuid(cluster)) {
		api_problem(r, 400, "Bad request", "cluster_id must be a UUID");
		return;
	}
	PGconn *db = api_db(r);
	if (!db)
		return;
	int bad = 0;
	char err[256] = "";
	json_t *page = db_job_list_json(db, api_tenant(r), state, cluster, limit,
					api_query(r, "cursor"), &bad, err, sizeof(err));
	if (!page) {
		if (bad)
			api_problem(r, 400, "Bad request", "%s", err[0] ? err : "bad filter or cursor");
		else
			api_db_error(r, err);
		return;
	}
	api_reply(r, 200, page);
}

void api_jobs_get(struct api_req *r)
{
	if (!api_db(r))
		return;
	/* PostgreSQL's JSON passed through: ferry adds nothing to a GET. */
	char err[256] = "";
	char *body = db_job_get_body(r->db, api_tenant(r), r->params[0], err, sizeof(err));
	if (!body) {
		if (err[0])
			api_db_error(r, err);
		else
			api_problem(r, 404, "Not found", "no job %s", r->params[0]);
		return;
	}
	api_reply_body(r, 200, body);
}

void api_jobs_events(struct api_req *r)
{
	long long after = 0;
	int limit = 100;
	const char *a = api_query(r, "after");
	if (a) {
		char *end;
		after = strtoll(a, &end, 10);
		if (!*a || *end || after < 0) {
			api_problem(r, 400, "Bad request", "after must be a non-negative event id");
			return;
		}
	}
	const char *l = api_query(r, "limit");
	if (l) {
		char *end;
		long v = strtol(l, &end, 10);
		if (!*l || *end || v < 1 || v > 1000) {
			api_problem(r, 400, "Bad request", "limit must be an integer from 1 to 1000");
			return;
		}
		limit = (int)v;
	}
	if (!api_db(r))
		return;
	char err[256] = "";
	json_t *ev = db_job_events_json(r->db, api_tenant(r), r->params[0], after, limit, err,
					sizeof(err));
	if (!ev) {
		if (err[0])
			api_db_error(r, err);
		else
			api_problem(r, 404, "Not found", "no job %s", r->params[0]);
		return;
	}
	api_reply(r, 200, ev);
}

void api_jobs_stream(struct api_req *r)
{
	/* Check access now so a stranger gets a plain 404; http.c then streams. */
	if (!api_db(r))
		return;
	json_t *job = job_or_answer(r, r->params[0]);
	if (!job)
		return;
	json_decref(job);
	snprintf(r->sse_job_id, sizeof(r->sse_job_id), "%s", r->params[0]);
	r->status = 200;
	r->content_type = "text/event-stream";
}

void api_jobs_cancel(struct api_req *r)
{
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	if (!api_db(r))
		return;
	char err[256] = "";
	enum db_job_cancel_result res = db_job_cancel(r->db, api_tenant(r), r->params[0], err,
						      sizeof(err));
	switch (res) {
	case DB_CANCEL_DONE:
	case DB_CANCEL_REQUESTED:
		reply_job(r, 202, r->params[0]);
		break;
	case DB_CANCEL_FINISHED: {
		json_t *job = db_job_get_json(r->db, api_tenant(r), r->params[0], err, sizeof(err));
		const char *st = json_string_value(json_object_get(job, "state"));
		api_problem(r, 409, "Conflict", "job %s has already finished (%s)", r->params[0],
			    st ? st : "finished");
		json_decref(job);
		break;
	}
	case DB_CANCEL_NOT_FOUND:
		api_problem(r, 404, "Not found", "no job %s", r->params[0]);
		break;
	default:
		api_db_error(r, err);
		break;
	}
}
