/*
 * db/releases: release revisions and the cluster's release facts (see
 * releases.h). Worker writes are guarded by the job's lease like db/jobs.c:
 * the job row is locked FOR SHARE while the token is current, and the
 * job's own tenant and cluster are taken from that row, so a phase can
 * only ever write its own cluster's history. A revision write and the
 * cluster row that follows it run in one transaction.
 */
#include "db/releases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dbq.h"

/* The guard: the job row (tenant, cluster, author) while the lease is ours. */
#define GUARD "WITH g AS (SELECT j.id, j.tenant_id, j.cluster_id, j.created_by FROM jobs j " \
	"WHERE j.id = $1::uuid AND j.lease_token = $2::bigint AND j.state = 'running' FOR SHARE)"

/* The cluster row follows the history (releases.h). */
#define SYNC_CLUSTER GUARD " UPDATE clusters c SET " \
	" release_revision = (SELECT max(r.revision) FROM release_revisions r WHERE r.cluster_id = c.id)," \
	" release_status = (SELECT r.status FROM release_revisions r WHERE r.cluster_id = c.id" \
	"   ORDER BY r.revision DESC LIMIT 1)," \
	" cilium_version = (SELECT r.chart_version FROM release_revisions r WHERE r.cluster_id = c.id" \
	"   AND r.status = 'deployed' ORDER BY r.revision DESC LIMIT 1) " \
	"FROM g WHERE c.id = g.cluster_id"

#define REV_JSON \
	"json_build_object('revision', r.revision, 'status', r.status, 'release_name', r.release_name," \
	" 'namespace', r.namespace, 'chart_name', r.chart_name, 'chart_version', r.chart_version," \
	" 'app_version', r.app_version, 'description', r.description, 'job_id', r.job_id," \
	" 'started_by', COALESCE((SELECT COALESCE(NULLIF(t.name, ''), t.id::text) FROM api_tokens t" \
	"   WHERE t.id = r.started_by), r.started_by::text)," \
	" 'created_at', ferry_ts(r.created_at), 'updated_at', ferry_ts(r.updated_at))"

#define REV_FULL_JSON \
	"(" REV_JSON "::jsonb || jsonb_build_object('values', r.values, 'manifest', r.manifest," \
	" 'surroundings', r.surroundings))"

static void set_err(char *err, size_t errlen, PGconn *conn)
{
	if (err && errlen) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
	}
}

/* Run a guarded statement whose first row's first column is the guard
 * count: 1 / 0 (lease lost) / -1. */
static int guarded(PGconn *conn, const char *sql, int n, const char *const *p, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = PQntuples(r) > 0 && atoi(PQgetvalue(r, 0, 0)) > 0;
	else if (PQresultStatus(r) == PGRES_COMMAND_OK)
		rc = atoi(PQcmdTuples(r)) > 0;
	else {
		set_err(err, errlen, conn);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static int exec_plain(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok ? 0 : -1;
}

/* The write, then the cluster row, in one transaction. */
static int write_and_sync(PGconn *conn, const struct db_job_claim *job, const char *sql, int n,
			  const char *const *p, char *err, size_t errlen)
{
	if (exec_plain(conn, "BEGIN") < 0) {
		set_err(err, errlen, conn);
		return -1;
	}
	int rc = guarded(conn, sql, n, p, err, errlen);
	if (rc == 1) {
		char tok[32];
		snprintf(tok, sizeof tok, "%lld", job->lease_token);
		const char *sp[2] = { job->id, tok };
		if (guarded(conn, SYNC_CLUSTER, 2, sp, err, errlen) < 0)
			rc = -1;
	}
	if (rc == 1) {
		if (exec_plain(conn, "COMMIT") < 0) {
			set_err(err, errlen, conn);
			rc = -1;
		}
	} else {
		exec_plain(conn, "ROLLBACK");
	}
	return rc;
}

int db_release_save(PGconn *conn, const struct db_job_claim *job, const struct db_release_rev *rev,
		    char *err, size_t errlen)
{
	char tok[32], num[16];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	snprintf(num, sizeof num, "%d", rev->revision);
	char *values = rev->values ? json_dumps(rev->values, JSON_COMPACT) : NULL;
	const char *p[13] = { job->id, tok, num, rev->release_name, rev->namespace_, rev->status,
			      rev->chart_name, rev->chart_version, rev->app_version,
			      rev->description ? rev->description : "", values ? values : "{}",
			      rev->manifest ? rev->manifest : "", rev->adopted ? "true" : "false" };
	int rc = write_and_sync(conn, job,
		GUARD ", up AS (INSERT INTO release_revisions AS r (tenant_id, cluster_id, revision, release_name,"
		"   namespace, status, chart_name, chart_version, app_version, description, job_id, started_by,"
		"   values, manifest)"
		"  SELECT g.tenant_id, g.cluster_id, $3::int, $4, $5, $6, $7, $8, $9, $10,"
		"   CASE WHEN $13::boolean THEN NULL ELSE g.id END,"
		"   CASE WHEN $13::boolean THEN NULL ELSE g.created_by END, $11::jsonb, $12 FROM g"
		"  ON CONFLICT (cluster_id, revision) DO UPDATE SET status = EXCLUDED.status,"
		"   release_name = EXCLUDED.release_name, namespace = EXCLUDED.namespace,"
		"   chart_name = EXCLUDED.chart_name, chart_version = EXCLUDED.chart_version,"
		"   app_version = EXCLUDED.app_version, description = EXCLUDED.description,"
		"   values = EXCLUDED.values, manifest = EXCLUDED.manifest, updated_at = now() RETURNING 1),"
		" sup AS (UPDATE release_revisions r SET status = 'superseded', updated_at = now() FROM g"
		"  WHERE $6 = 'deployed' AND r.cluster_id = g.cluster_id AND r.revision <> $3::int"
		"  AND r.status = 'deployed' RETURNING 1)"
		" SELECT (SELECT count(*) FROM g) + 0 * ((SELECT count(*) FROM up) + (SELECT count(*) FROM sup))",
		13, p, err, errlen);
	free(values);
	return rc;
}

int db_release_set_status(PGconn *conn, const struct db_job_claim *job, int revision,
			  const char *status, const char *description, char *err, size_t errlen)
{
	char tok[32], num[16];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	snprintf(num, sizeof num, "%d", revision);
	const char *p[5] = { job->id, tok, num, status, description };
	return write_and_sync(conn, job,
		GUARD ", u AS (UPDATE release_revisions r SET status = $4,"
		"  description = COALESCE($5, r.description), updated_at = now() FROM g"
		"  WHERE r.cluster_id = g.cluster_id AND r.revision = $3::int RETURNING 1)"
		" SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM u)",
		5, p, err, errlen);
}

int db_release_merge_surroundings(PGconn *conn, const struct db_job_claim *job, int revision,
				  const json_t *obj, char *err, size_t errlen)
{
	char tok[32], num[16];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	snprintf(num, sizeof num, "%d", revision);
	char *text = json_dumps(obj, JSON_COMPACT);
	const char *p[4] = { job->id, tok, num, text ? text : "{}" };
	int rc = guarded(conn,
		GUARD ", u AS (UPDATE release_revisions r SET surroundings = r.surroundings || $4::jsonb,"
		"  updated_at = now() FROM g WHERE r.cluster_id = g.cluster_id AND r.revision = $3::int RETURNING 1)"
		" SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM u)",
		4, p, err, errlen);
	free(text);
	return rc;
}

int db_release_uninstalled(PGconn *conn, const struct db_job_claim *job, int keep_history,
			   char *err, size_t errlen)
{
	char tok[32];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	const char *p[2] = { job->id, tok };
	if (keep_history)
		return write_and_sync(conn, job,
			GUARD ", u AS (UPDATE release_revisions r SET status = 'uninstalled',"
			"  description = 'Uninstallation complete', updated_at = now() FROM g"
			"  WHERE r.cluster_id = g.cluster_id AND r.revision = (SELECT max(x.revision)"
			"   FROM release_revisions x WHERE x.cluster_id = g.cluster_id) RETURNING 1),"
			" s AS (UPDATE release_revisions r SET status = 'superseded', updated_at = now() FROM g"
			"  WHERE r.cluster_id = g.cluster_id AND r.status = 'deployed' AND r.revision <> (SELECT"
			"   max(x.revision) FROM release_revisions x WHERE x.cluster_id = g.cluster_id) RETURNING 1)"
			" SELECT (SELECT count(*) FROM g) + 0 * ((SELECT count(*) FROM u) + (SELECT count(*) FROM s))",
			2, p, err, errlen);
	return write_and_sync(conn, job,
		GUARD ", d AS (DELETE FROM release_revisions r USING g WHERE r.cluster_id = g.cluster_id RETURNING 1)"
		" SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM d)",
		2, p, err, errlen);
}

int db_release_prune(PGconn *conn, const struct db_job_claim *job, int max_history,
		     char *err, size_t errlen)
{
	if (max_history <= 0)
		return 1;
	char tok[32], num[16];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	snprintf(num, sizeof num, "%d", max_history);
	const char *p[3] = { job->id, tok, num };
	return write_and_sync(conn, job,
		GUARD ", d AS (DELETE FROM release_revisions r USING g WHERE r.cluster_id = g.cluster_id"
		"  AND r.revision NOT IN (SELECT x.revision FROM release_revisions x"
		"   WHERE x.cluster_id = g.cluster_id ORDER BY x.revision DESC LIMIT $3::int) RETURNING 1)"
		" SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM d)",
		3, p, err, errlen);
}

json_t *db_release_get_for_job(PGconn *conn, const struct db_job_claim *job, int revision,
			       char *err, size_t errlen)
{
	char num[16];
	snprintf(num, sizeof num, "%d", revision);
	const char *p[3] = { job->cluster_id, job->tenant_id, num };
	json_t *out = NULL;
	int st = dbq_json_row(conn,
		"SELECT " REV_FULL_JSON " FROM release_revisions r WHERE r.cluster_id = $1::uuid"
		" AND r.tenant_id = $2::uuid AND r.revision = $3::int",
		3, p, &out, err, errlen);
	if (st == DB_NOT_FOUND && err && errlen)
		err[0] = '\0';
	return st == DB_OK ? out : NULL;
}

json_t *db_release_list_for_job(PGconn *conn, const struct db_job_claim *job, char *err, size_t errlen)
{
	const char *p[2] = { job->cluster_id, job->tenant_id };
	json_t *out = NULL;
	int st = dbq_json_rows(conn,
		"SELECT " REV_JSON " FROM release_revisions r WHERE r.cluster_id = $1::uuid"
		" AND r.tenant_id = $2::uuid ORDER BY r.revision DESC",
		2, p, &out, err, errlen);
	return st == DB_OK ? out : NULL;
}

int db_release_namespace_for_job(PGconn *conn, const struct db_job_claim *job, char *out, size_t len)
{
	const char *p[2] = { job->cluster_id, job->tenant_id };
	PGresult *r = PQexecParams(conn, "SELECT namespace FROM release_revisions WHERE cluster_id = $1::uuid"
				   " AND tenant_id = $2::uuid ORDER BY revision DESC LIMIT 1",
				   2, NULL, p, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		rc = PQntuples(r) == 1;
		if (rc)
			snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

int db_release_note_success(PGconn *conn, const struct db_job_claim *job, char *err, size_t errlen)
{
	char tok[32];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	const char *p[2] = { job->id, tok };
	return guarded(conn,
		GUARD ", u AS (UPDATE clusters c SET last_success_at = now() FROM g WHERE c.id = g.cluster_id"
		"  RETURNING 1) SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM u)",
		2, p, err, errlen);
}

int db_release_set_last_check(PGconn *conn, const struct db_job_claim *job, const json_t *check,
			      char *err, size_t errlen)
{
	char tok[32];
	snprintf(tok, sizeof tok, "%lld", job->lease_token);
	char *text = json_dumps(check, JSON_COMPACT);
	const char *p[3] = { job->id, tok, text ? text : "null" };
	int rc = guarded(conn,
		GUARD ", u AS (UPDATE clusters c SET last_check = $3::jsonb FROM g WHERE c.id = g.cluster_id"
		"  RETURNING 1) SELECT (SELECT count(*) FROM g) + 0 * (SELECT count(*) FROM u)",
		3, p, err, errlen);
	free(text);
	return rc;
}

/* ---- API side ---- */

static int cluster_visible(PGconn *conn, const char *tenant_id, const char *cluster_id,
			   char *err, size_t errlen)
{
	if (!tenant_id || !dbq_is_uuid(tenant_id) || !dbq_is_uuid(cluster_id))
		return DB_NOT_FOUND;
	const char *p[2] = { cluster_id, tenant_id };
	json_t *row = NULL;
	int st = dbq_json_row(conn, "SELECT json_build_object('id', c.id) FROM clusters c"
			      " WHERE c.id = $1::uuid AND c.tenant_id = $2::uuid", 2, p, &row, err, errlen);
	json_decref(row);
	return st;
}

int db_release_list_json(PGconn *conn, const char *tenant_id, const char *cluster_id,
			 json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	int st = cluster_visible(conn, tenant_id, cluster_id, err, errlen);
	if (st != DB_OK)
		return st;
	const char *p[2] = { cluster_id, tenant_id };
	json_t *items = NULL;
	st = dbq_json_rows(conn,
		"SELECT " REV_JSON " FROM release_revisions r WHERE r.cluster_id = $1::uuid"
		" AND r.tenant_id = $2::uuid ORDER BY r.revision DESC",
		2, p, &items, err, errlen);
	if (st == DB_OK)
		*out = json_pack("{s:o}", "items", items);
	return st;
}

int db_release_get_json(PGconn *conn, const char *tenant_id, const char *cluster_id,
			int revision, json_t **out, int *cluster_found, char *err, size_t errlen)
{
	*out = NULL;
	if (cluster_found)
		*cluster_found = 0;
	int st = cluster_visible(conn, tenant_id, cluster_id, err, errlen);
	if (st != DB_OK)
		return st;
	if (cluster_found)
		*cluster_found = 1;
	if (revision < 1)
		return DB_NOT_FOUND;
	char num[16];
	snprintf(num, sizeof num, "%d", revision);
	const char *p[3] = { cluster_id, tenant_id, num };
	return dbq_json_row(conn,
		"SELECT " REV_FULL_JSON " FROM release_revisions r WHERE r.cluster_id = $1::uuid"
		" AND r.tenant_id = $2::uuid AND r.revision = $3::int",
		3, p, out, err, errlen);
}
