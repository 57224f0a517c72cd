/*
 * campaign: the advancer (see campaign.h for the model).
 */
#include "server/campaign.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/audit.h"
#include "db/campaigns.h"
#include "db/dbq.h"
#include "db/jobs.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/cron.h"
#include "server/log.h"

struct campaign_advancer {
	struct app *app;
	pthread_t thread;
	/* campaign_advancer_kick() sets kicked and signals: the thread's
	 * wait between passes ends early. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int kicked;
	/* Under mu: the number of active campaigns the last pass found. With
	 * none, a kick is not worth a pass (a job queue of plain jobs ends
	 * hundreds of jobs a second); a campaign created since is found by
	 * the next periodic pass. */
	int active;
};

/* The campaign row as a pass sees it. */
struct camp {
	char id[DB_ID_LEN];
	char tenant_id[DB_ID_LEN];
	char created_by[DB_ID_LEN];
	char state[16];
	char pause_kind[16];
	char kind[16];
	json_t *params;
	int max_in_flight, max_failures, manual_approval, approved_wave, pause_s;
	int has_window, window_duration_s;
	char window_cron[128], window_tz[64];
	double now;              /* epoch seconds */
	long long now_local;     /* local epoch seconds of the window's zone (cron.h) */
};

static int exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok;
}

static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *p, char *err,
		       size_t errlen)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Lock and read the campaign; 1 = ours for this transaction, 0 = held by
 * another process or not active, -1 = error. */
static int lock_campaign(PGconn *conn, const char *id, struct camp *c, char *err, size_t errlen)
{
	const char *p[1] = { id };
	PGresult *r = query(conn,
		"SELECT tenant_id, coalesce(created_by::text, ''), state, coalesce(pause_kind, ''), kind,"
		" params::text, max_in_flight, max_failures, manual_approval::int, approved_wave,"
		" pause_between_waves_s, window_cron IS NOT NULL, coalesce(window_duration_s, 0),"
		" coalesce(window_cron, ''), coalesce(window_tz, 'UTC'),"
		" extract(epoch from now()),"
		" extract(epoch from now() AT TIME ZONE coalesce(window_tz, 'UTC'))::bigint"
		" FROM campaigns WHERE id = $1::uuid AND active FOR UPDATE SKIP LOCKED",
		1, p, err, errlen);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof c->id, "%s", id);
	snprintf(c->tenant_id, sizeof c->tenant_id, "%s", PQgetvalue(r, 0, 0));
	snprintf(c->created_by, sizeof c->created_by, "%s", PQgetvalue(r, 0, 1));
	snprintf(c->state, sizeof c->state, "%s", PQgetvalue(r, 0, 2));
	snprintf(c->pause_kind, sizeof c->pause_kind, "%s", PQgetvalue(r, 0, 3));
	snprintf(c->kind, sizeof c->kind, "%s", PQgetvalue(r, 0, 4));
	c->params = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
	c->max_in_flight = atoi(PQgetvalue(r, 0, 6));
	c->max_failures = atoi(PQgetvalue(r, 0, 7));
	c->manual_approval = atoi(PQgetvalue(r, 0, 8));
	c->approved_wave = atoi(PQgetvalue(r, 0, 9));
	c->pause_s = atoi(PQgetvalue(r, 0, 10));
	c->has_window = PQgetvalue(r, 0, 11)[0] == 't';
	c->window_duration_s = atoi(PQgetvalue(r, 0, 12));
	snprintf(c->window_cron, sizeof c->window_cron, "%s", PQgetvalue(r, 0, 13));
	snprintf(c->window_tz, sizeof c->window_tz, "%s", PQgetvalue(r, 0, 14));
	c->now = atof(PQgetvalue(r, 0, 15));
	c->now_local = atoll(PQgetvalue(r, 0, 16));
	PQclear(r);
	return 1;
}

/* Record how the campaign's finished jobs ended. */
static int sync_running(PGconn *conn, struct camp *c, char *err, size_t errlen)
{
	const char *p[1] = { c->id };
	/* skipped = the job succeeded and its cilium phase wrote no new
	 * revision ("no changes: ..."), i.e. the cluster was already there. */
	PGresult *r = query(conn,
		"SELECT x.cluster_id, j.state, coalesce(j.error, ''),"
		" EXISTS (SELECT 1 FROM job_phases ph WHERE ph.job_id = j.id AND ph.name = 'cilium'"
		"   AND ph.state = 'succeeded' AND ph.message LIKE 'no changes:%')"
		" FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
		" WHERE x.campaign_id = $1::uuid AND x.state = 'running'"
		" AND j.state IN ('succeeded', 'failed', 'cancelled') ORDER BY x.position",
		1, p, err, errlen);
	if (!r)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		const char *js = PQgetvalue(r, i, 1);
		const char *to = js, *reason = NULL, *error = NULL;
		if (!strcmp(js, "succeeded") && PQgetvalue(r, i, 3)[0] == 't') {
			to = "skipped";
			reason = "already at the target: a zero-change run, no new revision";
		} else if (!strcmp(js, "failed")) {
			error = PQgetvalue(r, i, 2);
		}
		if (db_campaign_cluster_transition(conn, c->id, PQgetvalue(r, i, 0), to, reason, NULL,
						   error, err, errlen) < 0)
			rc = -1;
	}
	PQclear(r);
	return rc;
}

/* Counts of the campaign's clusters per state. */
struct counts {
	int pending, waiting, running, succeeded, skipped, failed, cancelled;
};

static int read_counts(PGconn *conn, const char *id, struct counts *k, char *err, size_t errlen)
{
	const char *p[1] = { id };
	PGresult *r = query(conn,
		"SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'waiting'),"
		" count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'succeeded'),"
		" count(*) FILTER (WHERE state = 'skipped'), count(*) FILTER (WHERE state = 'failed'),"
		" count(*) FILTER (WHERE state = 'cancelled')"
		" FROM campaign_clusters WHERE campaign_id = $1::uuid",
		1, p, err, errlen);
	if (!r)
		return -1;
	k->pending = atoi(PQgetvalue(r, 0, 0));
	k->waiting = atoi(PQgetvalue(r, 0, 1));
	k->running = atoi(PQgetvalue(r, 0, 2));
	k->succeeded = atoi(PQgetvalue(r, 0, 3));
	k->skipped = atoi(PQgetvalue(r, 0, 4));
	k->failed = atoi(PQgetvalue(r, 0, 5));
	k->cancelled = atoi(PQgetvalue(r, 0, 6));
	PQclear(r);
	return 0;
}

/* Move the campaign, keeping c->state in step. -1 on error.
 * What the advancer decides on its own (a pause for the failure budget,
 * an approval gate or the window, and the campaign's end) is audited like
 * an operator's action, in the same transaction: method "ADVANCE", path
 * /v1/campaigns/<id>/<state>[:<pause kind>], no token. */
static int move(PGconn *conn, struct camp *c, const char *state, const char *kind,
		const char *reason, char *err, size_t errlen)
{
	int m = db_campaign_transition(conn, c->id, state, kind, reason, err, errlen);
	if (m == 1) {
		snprintf(c->state, sizeof c->state, "%s", state);
		snprintf(c->pause_kind, sizeof c->pause_kind, "%s", kind ? kind : "");
		if (strcmp(state, "running")) {
			char path[160];
			snprintf(path, sizeof path, "/v1/campaigns/%s/%s%s%s", c->id, state, kind ? ":" : "",
				 kind ? kind : "");
			struct db_audit_entry e = { .tenant_id = c->tenant_id, .method = "ADVANCE", .path = path,
						    .status = 200, .target = c->id };
			if (db_audit_write(conn, &e, err, errlen) < 0)
				return -1;
		}
	}
	return m < 0 ? -1 : 0;
}

/* Give every not-started cluster of waves >= from_wave (all waves when
 * only_wave < 0, else just only_wave) the waiting reason; "" = the default
 * "wave N not started". Only rows whose reason differs are touched. */
static int set_waiting(PGconn *conn, struct camp *c, int only_wave, int from_wave,
		       const char *reason, char *err, size_t errlen)
{
	char ow[16], fw[16];
	snprintf(ow, sizeof ow, "%d", only_wave);
	snprintf(fw, sizeof fw, "%d", from_wave);
	const char *p[4] = { c->id, ow, fw, reason };
	PGresult *r = query(conn,
		"SELECT cluster_id, CASE WHEN $4 = '' THEN 'wave ' || wave || ' not started' ELSE $4 END"
		" FROM campaign_clusters WHERE campaign_id = $1::uuid AND state IN ('pending', 'waiting')"
		" AND ((($2::int < 0 AND wave >= $3::int)) OR wave = $2::int)"
		" AND (state = 'pending' OR reason IS DISTINCT FROM"
		"   CASE WHEN $4 = '' THEN 'wave ' || wave || ' not started' ELSE $4 END)"
		" ORDER BY position",
		4, p, err, errlen);
	if (!r)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++)
		if (db_campaign_cluster_transition(conn, c->id, PQgetvalue(r, i, 0), "waiting",
						   PQgetvalue(r, i, 1), NULL, NULL, err, errlen) < 0)
			rc = -1;
	PQclear(r);
	return rc;
}

/* Start cluster_id's job. 1 started (running), 0 left waiting or failed,
 * -1 error. The savepoint keeps a unique violation inside the enqueue from
 * aborting the whole pass. */
static int start_cluster(PGconn *conn, struct camp *c, const char *cluster_id, char *err,
			 size_t errlen)
{
	char key[128];
	snprintf(key, sizeof key, "campaign:%s:%s", c->id, cluster_id);
	struct db_job_new req = {
		.tenant_id = c->tenant_id,
		.cluster_id = cluster_id,
		.kind = c->kind,
		.params = c->params,
		.idempotency_key = key,
		.created_by = c->created_by[0] ? c->created_by : NULL,
	};
	char job_id[DB_ID_LEN] = "", active[DB_ID_LEN] = "", jerr[256] = "";
	if (!exec_ok(conn, "SAVEPOINT campaign_start")) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		return -1;
	}
	enum db_job_enqueue_result res = db_job_enqueue(conn, &req, job_id, active, jerr, sizeof jerr);
	if (res == DB_JOB_DB_ERROR) {
		/* Most likely the one-active index refused the INSERT: find the
		 * job holding the cluster (ours, by key, or somebody else's). */
		if (!exec_ok(conn, "ROLLBACK TO SAVEPOINT campaign_start")) {
			snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
			return -1;
		}
		const char *p[3] = { c->tenant_id, key, cluster_id };
		PGresult *r = query(conn,
			"SELECT id::text, idempotency_key IS NOT DISTINCT FROM $2 FROM jobs"
			" WHERE tenant_id = $1::uuid AND (idempotency_key = $2 OR"
			"  (cluster_id = $3::uuid AND state IN ('queued', 'running')))"
			" ORDER BY (idempotency_key IS NOT DISTINCT FROM $2) DESC LIMIT 1",
			3, p, err, errlen);
		if (!r)
			return -1;
		if (PQntuples(r) == 0) {
			PQclear(r);
			snprintf(err, errlen, "enqueue failed: %s", jerr);
			return -1;
		}
		snprintf(job_id, sizeof job_id, "%s", PQgetvalue(r, 0, 0));
		snprintf(active, sizeof active, "%s", PQgetvalue(r, 0, 0));
		res = PQgetvalue(r, 0, 1)[0] == 't' ? DB_JOB_REPLAYED : DB_JOB_CONFLICT;
		PQclear(r);
	} else if (!exec_ok(conn, "RELEASE SAVEPOINT campaign_start")) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		return -1;
	}
	int m;
	switch (res) {
	case DB_JOB_CREATED:
	case DB_JOB_REPLAYED:
		m = db_campaign_cluster_transition(conn, c->id, cluster_id, "running", NULL, job_id, NULL,
						   err, errlen);
		return m < 0 ? -1 : 1;
	case DB_JOB_CONFLICT: {
		char reason[96];
		snprintf(reason, sizeof reason, "cluster busy with job %s", active);
		m = db_campaign_cluster_transition(conn, c->id, cluster_id, "waiting", reason, NULL, NULL,
						   err, errlen);
		return m < 0 ? -1 : 0;
	}
	case DB_JOB_NO_CLUSTER:
		m = db_campaign_cluster_transition(conn, c->id, cluster_id, "failed", NULL, NULL,
						   "the cluster no longer exists", err, errlen);
		return m < 0 ? -1 : 0;
	default:
		snprintf(err, errlen, "enqueue: %s", jerr);
		return -1;
	}
}

/* Format a local epoch time for a reason: "HH:MM TZ" today, else the date. */
static void local_when(long long t, long long now, const char *tz, char *out, size_t outlen)
{
	time_t tt = (time_t)t, tn = (time_t)now;
	struct tm a, b;
	gmtime_r(&tt, &a);
	gmtime_r(&tn, &b);
	if (a.tm_year == b.tm_year && a.tm_yday == b.tm_yday)
		snprintf(out, outlen, "%02d:%02d %s", a.tm_hour, a.tm_min, tz);
	else
		snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d %s", a.tm_year + 1900, a.tm_mon + 1,
			 a.tm_mday, a.tm_hour, a.tm_min, tz);
}

/* Start what may start now. */
static int start_wave(PGconn *conn, struct camp *c, struct counts *k, char *err, size_t errlen)
{
	const char *p[1] = { c->id };
	/* The lowest wave with clusters not started, whether it has begun, and
	 * whether every earlier wave has ended (and when). */
	PGresult *r = query(conn,
		"WITH w AS (SELECT min(wave) AS wave FROM campaign_clusters"
		"  WHERE campaign_id = $1::uuid AND state IN ('pending', 'waiting'))"
		" SELECT w.wave,"
		" EXISTS (SELECT 1 FROM campaign_clusters x WHERE x.campaign_id = $1::uuid AND x.wave = w.wave"
		"   AND x.state NOT IN ('pending', 'waiting')),"
		" NOT EXISTS (SELECT 1 FROM campaign_clusters x WHERE x.campaign_id = $1::uuid"
		"   AND x.wave < w.wave AND x.state = 'running'),"
		" coalesce((SELECT extract(epoch from max(x.finished_at)) FROM campaign_clusters x"
		"   WHERE x.campaign_id = $1::uuid AND x.wave < w.wave), 0)"
		" FROM w WHERE w.wave IS NOT NULL",
		1, p, err, errlen);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	int wave = atoi(PQgetvalue(r, 0, 0));
	int begun = PQgetvalue(r, 0, 1)[0] == 't';
	int before_done = PQgetvalue(r, 0, 2)[0] == 't';
	double before_end = atof(PQgetvalue(r, 0, 3));
	PQclear(r);

	/* Later waves wait for this one. */
	if (set_waiting(conn, c, -1, wave + 1, "", err, errlen) < 0)
		return -1;
	if (!begun) {
		if (!before_done)
			return set_waiting(conn, c, wave, 0, "", err, errlen);
		if (wave > 0 && c->manual_approval && c->approved_wave < wave) {
			char reason[64];
			snprintf(reason, sizeof reason, "approval needed for wave %d", wave);
			if (move(conn, c, "paused", "approval", reason, err, errlen) < 0)
				return -1;
			return set_waiting(conn, c, wave, 0, reason, err, errlen);
		}
		if (wave > 0 && c->pause_s > 0 && c->now < before_end + c->pause_s) {
			char reason[96], when[64];
			local_when((long long)(before_end + c->pause_s), (long long)c->now, "UTC", when,
				   sizeof when);
			snprintf(reason, sizeof reason, "wave %d starts at %s", wave, when);
			return set_waiting(conn, c, wave, 0, reason, err, errlen);
		}
	}
	int slots = c->max_in_flight - k->running;
	char w[16];
	snprintf(w, sizeof w, "%d", wave);
	char full[64];
	snprintf(full, sizeof full, "max in flight (%d) reached", c->max_in_flight);
	const char *q[3] = { c->id, w, full };
	/* Column 2: the cluster already waits for a free slot (a pass leaves
	 * it alone rather than rewrite the same reason: at 1,000 members and
	 * 100 in flight that was 900 updates a pass). */
	r = query(conn,
		"SELECT cluster_id, state = 'waiting' AND reason IS NOT DISTINCT FROM $3"
		" FROM campaign_clusters WHERE campaign_id = $1::uuid AND wave = $2::int"
		" AND state IN ('pending', 'waiting') ORDER BY position",
		3, q, err, errlen);
	if (!r)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(r) && rc >= 0; i++) {
		const char *cl = PQgetvalue(r, i, 0);
		if (slots <= 0) {
			if (PQgetvalue(r, i, 1)[0] != 't')
				rc = db_campaign_cluster_transition(conn, c->id, cl, "waiting", full, NULL,
								    NULL, err, errlen);
			continue;
		}
		rc = start_cluster(conn, c, cl, err, errlen);
		if (rc == 1) {
			slots--;
			k->running++;
		}
	}
	PQclear(r);
	return rc < 0 ? -1 : 0;
}

int campaign_advance(PGconn *conn, const char *id, char *err, size_t errlen)
{
	if (!exec_ok(conn, "BEGIN")) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		return -1;
	}
	struct camp c;
	int got = lock_campaign(conn, id, &c, err, errlen);
	if (got <= 0) {
		exec_ok(conn, "ROLLBACK");
		return got;
	}
	int rc = -1;
	struct counts k;
	const char *p[1] = { id };
	if (dbq_exec(conn, "UPDATE campaigns SET ticks = ticks + 1 WHERE id = $1::uuid", 1, p, NULL,
		     err, errlen) != DB_OK)
		goto out;
	if (sync_running(conn, &c, err, errlen) < 0 || read_counts(conn, id, &k, err, errlen) < 0)
		goto out;
	if (!strcmp(c.state, "cancelled")) {
		/* Cancelled: only waiting for running jobs to stop. */
		if (k.running == 0 &&
		    dbq_exec(conn, "UPDATE campaigns SET active = false WHERE id = $1::uuid", 1, p, NULL,
			     err, errlen) != DB_OK)
			goto out;
		rc = 1;
		goto out;
	}
	if (k.pending + k.waiting + k.running == 0) {
		if (!strcmp(c.state, "pending") && move(conn, &c, "running", NULL, NULL, err, errlen) < 0)
			goto out;
		/* Succeeded only when every member succeeded or was skipped; a
		 * member whose job was cancelled on its own counts against it. */
		char reason[128] = "";
		int total = k.succeeded + k.skipped + k.failed + k.cancelled;
		if (k.failed && k.cancelled)
			snprintf(reason, sizeof reason, "%d of %d clusters failed, %d cancelled", k.failed,
				 total, k.cancelled);
		else if (k.failed)
			snprintf(reason, sizeof reason, "%d of %d clusters failed", k.failed, total);
		else if (k.cancelled)
			snprintf(reason, sizeof reason, "%d of %d clusters cancelled", k.cancelled, total);
		if (move(conn, &c, reason[0] ? "failed" : "succeeded", NULL, reason[0] ? reason : NULL,
			 err, errlen) < 0)
			goto out;
		rc = 1;
		goto out;
	}
	if (k.failed >= c.max_failures) {
		if (strcmp(c.state, "paused") || strcmp(c.pause_kind, "budget")) {
			char reason[96];
			snprintf(reason, sizeof reason, "failure budget reached: %d of %d", k.failed,
				 c.max_failures);
			if (move(conn, &c, "paused", "budget", reason, err, errlen) < 0)
				goto out;
		}
		rc = 1;
		goto out;
	}
	if (!strcmp(c.state, "pending") && move(conn, &c, "running", NULL, NULL, err, errlen) < 0)
		goto out;
	if (!strcmp(c.state, "paused") && strcmp(c.pause_kind, "window")) {
		rc = 1;  /* user, budget or approval: an operator lifts it */
		goto out;
	}
	if (c.has_window) {
		struct cron cr;
		char why[128];
		long long next = -1;
		int open = cron_parse(c.window_cron, &cr, why, sizeof why) == 0 &&
			   cron_window_open(&cr, c.window_duration_s, c.now_local, &next);
		if (!open) {
			char reason[160], when[64] = "never";
			if (next >= 0)
				local_when(next, c.now_local, c.window_tz, when, sizeof when);
			snprintf(reason, sizeof reason, "outside maintenance window until %s", when);
			if (move(conn, &c, "paused", "window", reason, err, errlen) < 0 ||
			    set_waiting(conn, &c, -1, 0, "outside window", err, errlen) < 0)
				goto out;
			rc = 1;
			goto out;
		}
		if (!strcmp(c.state, "paused") && move(conn, &c, "running", NULL, NULL, err, errlen) < 0)
			goto out;
	} else if (!strcmp(c.state, "paused")) {
		/* A window pause without a window (cannot happen): run. */
		if (move(conn, &c, "running", NULL, NULL, err, errlen) < 0)
			goto out;
	}
	if (start_wave(conn, &c, &k, err, errlen) < 0)
		goto out;
	rc = 1;
out:
	json_decref(c.params);
	if (rc < 0) {
		exec_ok(conn, "ROLLBACK");
		return -1;
	}
	if (!exec_ok(conn, "COMMIT")) {
		snprintf(err, errlen, "database: commit: %s", PQerrorMessage(conn));
		return -1;
	}
	return rc;
}

/* One pass over every active campaign. */
/* One pass over the active campaigns; the number found, or -1. */
static int advance_all(struct app *app)
{
	PGconn *conn = db_acquire(app->db, 2000);
	if (!conn)
		return -1;
	char err[512] = "";
	PGresult *r = PQexec(conn, "SELECT id FROM campaigns WHERE active ORDER BY updated_at, id LIMIT 500");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_msg(LOG_WARN, "campaign advancer: %s", PQerrorMessage(conn));
		PQclear(r);
		db_release(app->db, conn);
		return -1;
	}
	int found = PQntuples(r);
	for (int i = 0; i < PQntuples(r) && !app->stopping; i++) {
		if (campaign_advance(conn, PQgetvalue(r, i, 0), err, sizeof err) < 0)
			log_msg(LOG_WARN, "campaign %s: advancing failed: %s", PQgetvalue(r, i, 0), err);
	}
	PQclear(r);
	db_release(app->db, conn);
	return found;
}

/* Passes run every ADVANCE_PERIOD_MS, and at once after a kick (a job of
 * this process ended). Kicks during a pass make one more pass after it. */
#define ADVANCE_PERIOD_MS 500

static void *advancer_main(void *arg)
{
	struct campaign_advancer *ca = arg;
	while (!ca->app->stopping) {
		pthread_mutex_lock(&ca->mu);
		ca->kicked = 0;
		pthread_mutex_unlock(&ca->mu);
		int found = advance_all(ca->app);
		pthread_mutex_lock(&ca->mu);
		ca->active = found;  /* -1 (an error) still lets kicks through */
		pthread_mutex_unlock(&ca->mu);
		/* 100 ms steps: app->stopping is a plain flag, not signalled */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		long long end_ms = (long long)until.tv_sec * 1000 + until.tv_nsec / 1000000 + ADVANCE_PERIOD_MS;
		pthread_mutex_lock(&ca->mu);
		while (!ca->kicked && !ca->app->stopping) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
			if (now_ms >= end_ms)
				break;
			long long step = end_ms - now_ms < 100 ? end_ms - now_ms : 100;
			long long at = now_ms + step;
			struct timespec ts = { (time_t)(at / 1000), (long)(at % 1000) * 1000000L };
			pthread_cond_timedwait(&ca->cv, &ca->mu, &ts);
		}
		pthread_mutex_unlock(&ca->mu);
	}
	return NULL;
}

struct campaign_advancer *campaign_advancer_start(struct app *app)
{
	struct campaign_advancer *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return NULL;
	ca->app = app;
	pthread_mutex_init(&ca->mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ca->cv, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ca->thread, NULL, advancer_main, ca) != 0) {
		pthread_mutex_destroy(&ca->mu);
		pthread_cond_destroy(&ca->cv);
		free(ca);
		return NULL;
	}
	return ca;
}

void campaign_advancer_kick(struct campaign_advancer *ca)
{
	if (!ca)
		return;
	pthread_mutex_lock(&ca->mu);
	if (ca->active) {
		ca->kicked = 1;
		pthread_cond_signal(&ca->cv);
	}
	pthread_mutex_unlock(&ca->mu);
}

void campaign_advancer_stop(struct campaign_advancer *ca)
{
	if (!ca)
		return;
	ca->app->stopping = 1;
	campaign_advancer_kick(ca);
	pthread_join(ca->thread, NULL);
	pthread_mutex_destroy(&ca->mu);
	pthread_cond_destroy(&ca->cv);
	free(ca);
}
