/*
 * api/campaigns: fleet campaigns over HTTP. Validation happens here, all
 * of it before anything is stored: a bad field is 400, a campaign that
 * could never do anything (the selector matches no cluster, no chart for
 * the version, a job kind this build does not run, a window that never
 * opens) is 422. Membership (the selector's matches, in cluster list
 * order) is fixed at creation and stored per cluster (db/campaigns.c);
 * percentages are resolved against that count here.
 * The advancer (server/campaign.c) does the rest.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/campaigns.h"
#include "db/dbq.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/cron.h"

/* Collected field errors: answered together as one 400. */
struct verr {
	json_t *list;
};

static void bad(struct verr *v, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bad(struct verr *v, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!v->list)
		v->list = json_array();
	json_array_append_new(v->list, json_pack("{s:s,s:s}", "field", field, "message", msg));
}

/*
 * A count that may be an integer (>= min) or a percentage "N%" (1-100) of
 * total, rounded up (at least 1). *out = the count; 0 when absent (keeps
 * def). Reports into v.
 */
static int count_or_percent(json_t *j, const char *field, int min, int total, int def, int *out,
			    int *is_pct, struct verr *v)
{
	*out = def;
	if (is_pct)
		*is_pct = 0;
	if (!j || json_is_null(j))
		return 0;
	if (json_is_integer(j)) {
		json_int_t n = json_integer_value(j);
		if (n < min || n > 100000) {
			bad(v, field, "must be an integer from %d or a percentage like \"10%%\"", min);
			return -1;
		}
		*out = (int)n;
		return 0;
	}
	const char *s = json_string_value(j);
	size_t n = s ? strlen(s) : 0;
	if (n >= 2 && n <= 4 && s[n - 1] == '%') {
		char *end;
		long p = strtol(s, &end, 10);
		if (end == s + n - 1 && isdigit((unsigned char)s[0])) {
			if (p < 1 || p > 100) {
				bad(v, field, "a percentage must be from 1%% to 100%%");
				return -1;
			}
			if (is_pct)
				*is_pct = 1;
			int c = (int)((p * (long)total + 99) / 100);
			*out = c < 1 ? 1 : c;
			return 0;
		}
	}
	bad(v, field, "must be an integer or a percentage like \"10%%\"");
	return -1;
}

/* "90s", "10m", "4h", "1h30m", "2d" or an integer number of seconds. */
static long parse_duration(json_t *j)
{
	if (json_is_integer(j))
		return json_integer_value(j) >= 0 ? (long)json_integer_value(j) : -1;
	const char *s = json_string_value(j);
	if (!s || !*s)
		return -1;
	long total = 0;
	while (*s) {
		if (!isdigit((unsigned char)*s))
			return -1;
		char *end;
		long n = strtol(s, &end, 10);
		long unit;
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;
		}
		if (n > 10000000 / unit)
			return -1;
		total += n * unit;
		s = end + 1;
	}
	return total;
}

/* The token's name, for "paused by NAME" (its id when it has none). */
static void token_name(struct api_req *r, char *out, size_t outlen)
{
	if (r->auth.subject[0]) {   /* single sign-on: the person */
		snprintf(out, outlen, "%.120s", r->auth.subject);
		return;
	}
	snprintf(out, outlen, "token %.8s", r->auth.token_id);
	const char *p[1] = { r->auth.token_id };
	json_t *row = NULL;
	char err[128];
	if (dbq_json_row(r->db, "SELECT json_build_object('name', name) FROM api_tokens WHERE id = $1::uuid",
			 1, p, &row, err, sizeof err) == DB_OK) {
		const char *n = json_string_value(json_object_get(row, "name"));
		if (n && *n)
			snprintf(out, outlen, "%s", n);
	}
	json_decref(row);
}

static void reply_campaign(struct api_req *r, int status, json_t *c)
{
	const char *id = json_string_value(json_object_get(c, "id"));
	char loc[128];
	snprintf(loc, sizeof loc, "/v1/campaigns/%s", id ? id : "");
	api_set_header(r, "Location", loc);
	snprintf(r->target, sizeof r->target, "%s", id ? id : "");
	api_reply(r, status, c);
}

/* Is a chart for the version available to this tenant? 1 yes, 0 answered.
 * Asked through app->chart_available (server/app.h): the chart sources are
 * the installer's business, not a handler's. */
static int chart_available(struct api_req *r, json_t *params)
{
	char version[128] = "", err[1024] = "";
	int rc = r->app->chart_available(r->app, r->db, api_tenant(r), params, version, sizeof version, err,
					 sizeof err);
	if (rc == 0)
		return 1;
	if (rc == -2) {
		api_problem(r, 503, "Service unavailable",
			    "cannot check chart cilium %s now: %s", version, err);
		return 0;
	}
	api_problem_errors(r, 422, "No chart for this version",
			   json_pack("[{s:s,s:s}]", "field", "params.chart_version", "message",
				     "no chart source has this version"),
			   "no chart cilium %s is available: %s", version, err);
	return 0;
}

void api_campaigns_create(struct api_req *r)
{
	static const char *const fields[] = { "name", "selector", "kind", "params", "strategy",
					      "on_failure", NULL };
	static const char *const sfields[] = { "canary", "max_in_flight", "waves", "max_failures",
					       "pause_between_waves", "window", NULL };
	static const char *const wfields[] = { "cron", "duration", "time_zone", NULL };
	json_t *body = api_body_object(r);
	if (!body)
		return;
	char *store = NULL;
	struct verr v = { NULL };
	if (!api_check_fields(r, body, fields))
		goto out;
	json_t *kind = json_object_get(body, "kind");
	json_t *params = json_object_get(body, "params");
	json_t *strategy = json_object_get(body, "strategy");
	json_t *jname = json_object_get(body, "name");
	json_t *jsel = json_object_get(body, "selector");
	const char *idem = api_header(r, "Idempotency-Key");
	if (idem && (strlen(idem) == 0 || strlen(idem) > 200)) {
		api_problem(r, 400, "Bad request", "Idempotency-Key must be 1-200 characters");
		goto out;
	}
	if (!api_job_validate(r, kind, params))
		goto out;
	const char *name = json_string_value(jname);
	if (!name || !*name || strlen(name) > 100)
		bad(&v, "name", "required: 1-100 characters");
	const char *sel = json_string_value(jsel);
	struct db_label_req reqs[DB_MAX_LABEL_REQS];
	memset(reqs, 0, sizeof reqs);
	int nreqs = 0;
	char why[256] = "";
	if (!sel || !*sel) {
		bad(&v, "selector", "required: a label selector such as env=prod");
	} else if (api_parse_selector(sel, &store, reqs, &nreqs, why, sizeof why) != 0) {
		bad(&v, "selector", "bad label selector: %s", why);
	}
	json_t *onf = json_object_get(body, "on_failure");
	if (onf && !json_is_null(onf)) {
		if (!json_is_string(onf) || strcmp(json_string_value(onf), "rollback"))
			bad(&v, "on_failure", "must be \"rollback\" or absent");
	}
	if (strategy && !json_is_object(strategy) && !json_is_null(strategy))
		bad(&v, "strategy", "must be an object");
	if (v.list) {
		api_problem_errors(r, 400, "Invalid request", v.list, "the campaign has invalid fields");
		v.list = NULL;
		goto out;
	}
	if (json_is_object(strategy) && !api_check_fields(r, strategy, sfields))
		goto out;
	json_t *window = json_object_get(strategy, "window");
	if (window && !json_is_null(window)) {
		if (!json_is_object(window)) {
			api_problem(r, 400, "Invalid request", "strategy.window must be an object");
			goto out;
		}
		if (!api_check_fields(r, window, wfields))
			goto out;
	}
	if (onf && json_is_string(onf)) {
		/* A member whose job fails is put back to its last deployed
		 * revision before it counts against the budget: the job-level
		 * remediation (params.on_failure), which install and upgrade run. */
		const char *k = json_string_value(kind);
		if (strcmp(k, "install") && strcmp(k, "upgrade")) {
			api_problem_errors(r, 422, "Invalid campaign",
					   json_pack("[{s:s,s:s}]", "field", "on_failure", "message",
						     "only install and upgrade campaigns can roll back"),
					   "on_failure: rollback applies to install and upgrade campaigns, not %s", k);
			goto out;
		}
		if (!json_is_object(params)) {
			json_object_set_new(body, "params", json_object());
			params = json_object_get(body, "params");
		}
		json_object_set_new(params, "on_failure", json_string("rollback"));
	}
	PGconn *db = api_db(r);
	if (!db)
		goto out;

	/* Syntax of the strategy first (no totals needed), then the match. */
	json_t *waves = json_object_get(strategy, "waves");
	if (waves && !json_is_null(waves) &&
	    (!json_is_array(waves) || json_array_size(waves) == 0 ||
	     json_array_size(waves) > DB_CAMPAIGN_MAX_WAVES - 1))
		bad(&v, "strategy.waves", "must be a list of 1-%d sizes or percentages",
		    DB_CAMPAIGN_MAX_WAVES - 1);
	long pause_s = 0;
	int manual = 0;
	json_t *pbw = json_object_get(strategy, "pause_between_waves");
	if (pbw && !json_is_null(pbw)) {
		if (json_is_string(pbw) && !strcmp(json_string_value(pbw), "manual"))
			manual = 1;
		else if ((pause_s = parse_duration(pbw)) < 0 || pause_s > 7 * 86400)
			bad(&v, "strategy.pause_between_waves",
			    "must be a duration up to 7d (\"30s\", \"10m\", \"1h30m\") or \"manual\"");
	}
	const char *wcron = NULL, *wtz = "UTC";
	long wdur = 0;
	struct cron cr;
	if (json_is_object(window)) {
		wcron = json_string_value(json_object_get(window, "cron"));
		if (!wcron || cron_parse(wcron, &cr, why, sizeof why) != 0)
			bad(&v, "strategy.window.cron", "%s", wcron ? why : "required: a cron expression");
		json_t *d = json_object_get(window, "duration");
		if (!d || (wdur = parse_duration(d)) < 60 || wdur > 7 * 86400)
			bad(&v, "strategy.window.duration", "required: a duration from 1m to 7d (\"4h\")");
		json_t *tz = json_object_get(window, "time_zone");
		if (tz && !json_is_null(tz)) {
			wtz = json_string_value(tz);
			if (!wtz || !*wtz || strlen(wtz) > 60) {
				bad(&v, "strategy.window.time_zone", "must be a time zone name such as Europe/Berlin");
				wtz = "UTC";
			}
		}
	}
	if (v.list) {
		api_problem_errors(r, 400, "Invalid request", v.list, "the campaign strategy is invalid");
		v.list = NULL;
		goto out;
	}
	long long now_local = 0;
	if (wcron) {
		const char *p[1] = { wtz };
		json_t *row = NULL;
		char err[256];
		int st = dbq_json_row(db,
			"SELECT json_build_object('t', extract(epoch from now() AT TIME ZONE $1)::bigint)"
			" WHERE EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)",
			1, p, &row, err, sizeof err);
		if (st == DB_NOT_FOUND) {
			api_problem_errors(r, 400, "Invalid request",
					   json_pack("[{s:s,s:s}]", "field", "strategy.window.time_zone",
						     "message", "unknown time zone"),
					   "unknown time zone \"%s\"", wtz);
			goto out;
		}
		if (st != DB_OK) {
			api_db_error(r, err);
			goto out;
		}
		now_local = json_integer_value(json_object_get(row, "t"));
		json_decref(row);
		long long next = -1;
		if (!cron_window_open(&cr, (int)wdur, now_local, &next) && next < 0) {
			api_problem_errors(r, 422, "Window never opens",
					   json_pack("[{s:s,s:s}]", "field", "strategy.window.cron",
						     "message", "matches no date"),
					   "the maintenance window \"%s\" never opens", wcron);
			goto out;
		}
	}
	char err[256] = "";
	long total = db_campaign_match_count(db, api_tenant(r), reqs, nreqs, err, sizeof err);
	if (total < 0) {
		api_db_error(r, err);
		goto out;
	}
	if (total == 0) {
		api_problem_errors(r, 422, "No clusters match",
				   json_pack("[{s:s,s:s}]", "field", "selector", "message",
					     "matches no cluster"),
				   "the selector \"%s\" matches no cluster", sel);
		goto out;
	}
	int canary = 1, mif = 1, mf = 1;
	json_t *jc = json_object_get(strategy, "canary");
	if (jc && !json_is_null(jc)) {
		if (!json_is_integer(jc) || json_integer_value(jc) < 0 || json_integer_value(jc) > total)
			bad(&v, "strategy.canary", "must be an integer from 0 to the %ld matching clusters",
			    total);
		else
			canary = (int)json_integer_value(jc);
	}
	if (canary > total)
		canary = (int)total;
	count_or_percent(json_object_get(strategy, "max_in_flight"), "strategy.max_in_flight", 1,
			 (int)total, 1, &mif, NULL, &v);
	count_or_percent(json_object_get(strategy, "max_failures"), "strategy.max_failures", 1,
			 (int)total, 1, &mf, NULL, &v);
	/* Wave bounds: cumulative counts; integers are sizes, percentages are
	 * the share of the clusters after the canary reached by that wave. */
	int bounds[DB_CAMPAIGN_MAX_WAVES];
	int nb = 0;
	int rest = (int)total - canary;
	bounds[nb++] = canary;
	if (json_is_array(waves)) {
		size_t i;
		json_t *w;
		json_array_foreach(waves, i, w) {
			int n = 0, pct = 0;
			char f[48];
			snprintf(f, sizeof f, "strategy.waves[%zu]", i);
			if (count_or_percent(w, f, 1, rest, 0, &n, &pct, &v) < 0)
				continue;
			int end = pct ? canary + n : bounds[nb - 1] + n;
			if (end > (int)total)
				end = (int)total;
			if (end > bounds[nb - 1])
				bounds[nb++] = end;
		}
	}
	if (bounds[nb - 1] < total)
		bounds[nb++] = (int)total;
	if (nb == 1)  /* only a canary: one empty wave keeps "waves >= 1" */
		bounds[nb++] = (int)total;
	if (v.list) {
		api_problem_errors(r, 400, "Invalid request", v.list, "the campaign strategy is invalid");
		v.list = NULL;
		goto out;
	}
	const char *k = json_string_value(kind);
	if ((!strcmp(k, "install") || !strcmp(k, "upgrade")) && !chart_available(r, params))
		goto out;
	char by[128];
	token_name(r, by, sizeof by);
	json_t *shown = json_is_object(strategy) ? json_incref(strategy) : json_object();
	struct db_campaign_new n = {
		.tenant_id = api_tenant(r), .name = name, .selector = sel, .reqs = reqs,
		.nreqs = nreqs, .kind = k, .params = json_is_object(params) ? params : NULL,
		.strategy = shown, .canary = canary, .max_in_flight = mif, .max_failures = mf,
		.bounds = bounds, .nbounds = nb, .pause_between_waves_s = (int)pause_s,
		.manual_approval = manual, .window_cron = wcron, .window_duration_s = (int)wdur,
		.window_tz = wtz, .idempotency_key = idem,
		.created_by = r->auth.token_id[0] ? r->auth.token_id : NULL,  /* NULL: single sign-on */
		.created_by_name = by,
	};
	json_t *c = NULL;
	int replayed = 0;
	int st = db_campaign_create(db, &n, &c, &replayed, err, sizeof err);
	json_decref(shown);
	if (st == DB_OK)
		reply_campaign(r, replayed ? 200 : 201, c);
	else if (st == DB_INVALID)
		api_problem(r, 422, "No clusters match", "%s", err);
	else
		api_db_error(r, err);
out:
	json_decref(v.list);
	free(store);
	json_decref(body);
}

static int state_ok(struct api_req *r, const char *state, const char *const *states)
{
	if (!state)
		return 1;
	for (size_t i = 0; states[i]; i++)
		if (!strcmp(states[i], state))
			return 1;
	struct buf b = BUF_INIT;
	for (size_t i = 0; states[i]; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", states[i]);
	api_problem(r, 400, "Bad request", "state must be one of %s", buf_cstr(&b));
	buf_free(&b);
	return 0;
}

void api_campaigns_list(struct api_req *r)
{
	static const char *const states[] = { "pending", "running", "paused", "succeeded", "failed",
					      "cancelled", NULL };
	int limit;
	if (!api_limit(r, &limit) || !state_ok(r, api_query(r, "state"), states) || !api_db(r))
		return;
	json_t *page = NULL;
	char err[256] = "";
	int st = db_campaign_list(r->db, api_tenant(r), api_query(r, "state"), limit,
				  api_query(r, "cursor"), &page, err, sizeof err);
	api_reply_page(r, st, page, err);
}

void api_campaigns_get(struct api_req *r)
{
	if (!api_db(r))
		return;
	json_t *c = NULL;
	char err[256] = "";
	int st = db_campaign_get(r->db, api_tenant(r), r->params[0], &c, err, sizeof err);
	if (st == DB_OK)
		api_reply(r, 200, c);
	else if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no campaign %s", r->params[0]);
	else
		api_db_error(r, err);
}

void api_campaigns_clusters(struct api_req *r)
{
	static const char *const states[] = { "pending", "waiting", "running", "succeeded", "skipped",
					      "failed", "cancelled", NULL };
	int limit;
	if (!api_limit(r, &limit) || !state_ok(r, api_query(r, "state"), states) || !api_db(r))
		return;
	json_t *page = NULL;
	char err[256] = "";
	int st = db_campaign_clusters(r->db, api_tenant(r), r->params[0], api_query(r, "state"), limit,
				      api_query(r, "cursor"), &page, err, sizeof err);
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no campaign %s", r->params[0]);
	else
		api_reply_page(r, st, page, err);
}

static void control(struct api_req *r, enum db_campaign_action action)
{
	snprintf(r->target, sizeof r->target, "%s", r->params[0]);
	int new_budget = 0;
	if (action == DB_CAMPAIGN_RESUME && r->body && r->body_len) {
		static const char *const fields[] = { "max_failures", NULL };
		json_t *body = api_body_object(r);
		if (!body)
			return;
		if (!api_check_fields(r, body, fields)) {
			json_decref(body);
			return;
		}
		json_t *mf = json_object_get(body, "max_failures");
		if (mf && !json_is_null(mf)) {
			if (!json_is_integer(mf) || json_integer_value(mf) < 1 ||
			    json_integer_value(mf) > 100000) {
				api_problem(r, 400, "Invalid request", "max_failures must be a positive integer");
				json_decref(body);
				return;
			}
			new_budget = (int)json_integer_value(mf);
		}
		json_decref(body);
	}
	if (!api_db(r))
		return;
	char by[128], why[256] = "";
	token_name(r, by, sizeof by);
	json_t *c = NULL;
	int st = db_campaign_control(r->db, api_tenant(r), r->params[0], action, by, new_budget, &c,
				     why, sizeof why);
	switch (st) {
	case DB_OK:
		api_reply(r, 200, c);
		break;
	case DB_NOT_FOUND:
		api_problem(r, 404, "Not found", "no campaign %s", r->params[0]);
		break;
	case DB_CONFLICT:
		api_problem(r, 409, "Conflict", "%s", why);
		break;
	case DB_INVALID:
		api_problem(r, 422, "Budget too low", "%s", why);
		break;
	default:
		api_db_error(r, why);
		break;
	}
}

void api_campaigns_pause(struct api_req *r) { control(r, DB_CAMPAIGN_PAUSE); }
void api_campaigns_resume(struct api_req *r) { control(r, DB_CAMPAIGN_RESUME); }
void api_campaigns_approve(struct api_req *r) { control(r, DB_CAMPAIGN_APPROVE); }
void api_campaigns_cancel(struct api_req *r) { control(r, DB_CAMPAIGN_CANCEL); }

void api_campaign_metrics(PGconn *db, struct buf *out)
{
	static const char *const cstates[] = { "pending", "running", "paused", "succeeded", "failed",
						"cancelled", NULL };
	static const char *const mstates[] = { "pending", "waiting", "running", "succeeded", "skipped",
						"failed", "cancelled", NULL };
	json_t *st = db ? db_campaign_stats_json(db) : NULL;
	if (!st)
		return;
	json_t *k = json_object_get(st, "campaigns"), *m = json_object_get(st, "clusters");
	buf_puts(out, "# HELP ferry_campaigns Fleet campaigns by state.\n# TYPE ferry_campaigns gauge\n");
	for (size_t i = 0; cstates[i]; i++)
		buf_printf(out, "ferry_campaigns{state=\"%s\"} %lld\n", cstates[i],
			   (long long)json_integer_value(json_object_get(k, cstates[i])));
	buf_puts(out, "# HELP ferry_campaign_clusters Member clusters of unfinished campaigns by state.\n"
		      "# TYPE ferry_campaign_clusters gauge\n");
	for (size_t i = 0; mstates[i]; i++)
		buf_printf(out, "ferry_campaign_clusters{state=\"%s\"} %lld\n", mstates[i],
			   (long long)json_integer_value(json_object_get(m, mstates[i])));
	json_decref(st);
}

void api_campaigns_stream(struct api_req *r)
{
	/* Check access now so a stranger gets a plain 404; http.c streams. */
	if (!api_db(r))
		return;
	json_t *c = NULL;
	char err[256] = "";
	int st = db_campaign_get(r->db, api_tenant(r), r->params[0], &c, err, sizeof err);
	json_decref(c);
	if (st == DB_NOT_FOUND) {
		api_problem(r, 404, "Not found", "no campaign %s", r->params[0]);
		return;
	}
	if (st != DB_OK) {
		api_db_error(r, err);
		return;
	}
	snprintf(r->sse_campaign_id, sizeof r->sse_campaign_id, "%s", r->params[0]);
	r->status = 200;
	r->content_type = "text/event-stream";
}

int api_campaign_stream_poll(PGconn *db, const char *tenant_id, const char *id, json_t **memo,
			     struct buf *out, int *finished)
{
	if (!*memo)
		*memo = json_pack("{s:s,s:{}}", "campaign", "", "members");
	json_t *c = NULL;
	char err[256];
	if (db_campaign_get(db, tenant_id, id, &c, err, sizeof err) != DB_OK)
		return -1;
	char *text = json_dumps(c, JSON_COMPACT);
	int changed = text && strcmp(text, json_string_value(json_object_get(*memo, "campaign")));
	if (changed) {
		/* Members first, then the campaign: a client that redraws on
		 * "campaign" sees its clusters already updated. */
		json_t *seen = json_object_get(*memo, "members");
		char *cursor = NULL;
		for (;;) {
			json_t *page = NULL;
			if (db_campaign_clusters(db, tenant_id, id, NULL, 200, cursor, &page, err, sizeof err) !=
			    DB_OK) {
				free(cursor);
				free(text);
				json_decref(c);
				return -1;
			}
			free(cursor);
			cursor = NULL;
			size_t i;
			json_t *m;
			json_array_foreach(json_object_get(page, "items"), i, m) {
				char *mt = json_dumps(m, JSON_COMPACT);
				const char *cid = json_string_value(json_object_get(m, "cluster_id"));
				const char *was = json_string_value(json_object_get(seen, cid ? cid : ""));
				if (mt && cid && (!was || strcmp(was, mt))) {
					buf_printf(out, "event: cluster\ndata: %s\n\n", mt);
					json_object_set_new(seen, cid, json_string(mt));
				}
				free(mt);
			}
			const char *next = json_string_value(json_object_get(page, "next_cursor"));
			if (next)
				cursor = strdup(next);
			json_decref(page);
			if (!cursor)
				break;
		}
		buf_printf(out, "event: campaign\ndata: %s\n\n", text);
		json_object_set_new(*memo, "campaign", json_string(text));
	}
	const char *state = json_string_value(json_object_get(c, "state"));
	long running = (long)json_integer_value(json_object_get(json_object_get(c, "counts"), "running"));
	*finished = state && (!strcmp(state, "succeeded") || !strcmp(state, "failed") ||
			      (!strcmp(state, "cancelled") && running == 0));
	free(text);
	json_decref(c);
	return 0;
}
