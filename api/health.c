/*
 * api/health: /healthz (the process answers), /readyz (the database answers
 * and every built-in migration is applied with a matching checksum) and
 * /metrics (Prometheus text: the process counters of server/metrics.c plus
 * job counts by state, the queue depth and the oldest claimable job's age
 * read from the database at scrape time, so every ferryd sharing the
 * database reports the same job numbers; ferry_up says whether it could).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "db/jobs.h"
#include "db/migrate.h"
#include "db/pool.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/metrics.h"

void api_healthz(struct api_req *r)
{
	api_reply(r, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct api_req *r)
{
	r->db = db_acquire(r->app->db, 2000);
	if (!r->db) {
		api_problem(r, 503, "Service unavailable", "the database is not reachable");
		return;
	}
	PGresult *res = PQexec(r->db, "SELECT 1");
	int ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	if (!ok) {
		api_problem(r, 503, "Service unavailable", "the database is not answering queries");
		return;
	}
	size_t n = 0;
	const struct db_migration *list = db_migrations_builtin(&n);
	int cur = db_migrate_is_current(r->db, list, n);
	if (cur != 1) {
		api_problem(r, 503, "Service unavailable",
			    cur < 0 ? "could not read the migration state"
				    : "database migrations are not current; run `ferryd migrate`");
		return;
	}
	api_reply(r, 200, json_pack("{s:s}", "status", "ready"));
}

void api_metrics(struct api_req *r)
{
	struct buf out = BUF_INIT;
	metrics_render(r->app->metrics, &out);
	PGconn *db = db_acquire(r->app->db, 2000);
	json_t *stats = db ? db_job_stats_json(db) : NULL;
	struct buf camp = BUF_INIT;
	api_campaign_metrics(db, &camp);
	if (db)
		db_release(r->app->db, db);
	static const char *const states[] = { "queued", "running", "succeeded", "failed",
					      "cancelled", NULL };
	buf_puts(&out, "# HELP ferry_up Whether the job statistics could be read from the database.\n"
		       "# TYPE ferry_up gauge\n");
	buf_printf(&out, "ferry_up %d\n", stats ? 1 : 0);
	if (stats) {
		buf_puts(&out, "# HELP ferry_jobs Jobs by state.\n# TYPE ferry_jobs gauge\n");
		for (size_t i = 0; states[i]; i++)
			buf_printf(&out, "ferry_jobs{state=\"%s\"} %lld\n", states[i],
				   (long long)json_integer_value(json_object_get(stats, states[i])));
		buf_printf(&out, "# HELP ferry_job_queue_depth Jobs claimable now (queued and due, or with an expired lease).\n"
				 "# TYPE ferry_job_queue_depth gauge\nferry_job_queue_depth %lld\n",
			   (long long)json_integer_value(json_object_get(stats, "queue_depth")));
		buf_printf(&out, "# HELP ferry_job_queue_oldest_age_seconds How long the job claimable the longest has waited for a worker.\n"
				 "# TYPE ferry_job_queue_oldest_age_seconds gauge\nferry_job_queue_oldest_age_seconds %.3f\n",
			   json_number_value(json_object_get(stats, "oldest_claimable_seconds")));
		json_decref(stats);
	}
	if (camp.len)
		buf_puts(&out, buf_cstr(&camp));
	buf_free(&camp);
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	r->resp_text = buf_steal(&out);
}
