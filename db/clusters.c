/*
 * db/clusters: cluster rows. The JSON representation is built in SQL
 * (CLUSTER_JSON) from the row plus the id of its active job, so every
 * function answers with the same shape. Writes use RETURNING to answer
 * without a second round trip; version is bumped by every update and is
 * the ETag.
 *
 * Delete runs in a transaction that first locks the cluster row
 * (FOR UPDATE): a concurrent job INSERT needs a KEY SHARE lock on the same
 * row for its foreign key check, so no job can be enqueued between the
 * "no active job" check and the delete.
 */
#include "db/clusters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dbq.h"
#include "server/common/buf.h"

#define CLUSTER_JSON_FIELDS \
	"'id', c.id, 'name', c.name, 'profile', c.profile, 'labels', c.labels," \
	" 'api_server', c.api_server, 'tls_server_name', c.tls_server_name," \
	" 'has_ca_bundle', c.ca_bundle IS NOT NULL, 'auth', c.auth_kind," \
	" 'insecure_skip_tls_verify', c.insecure_skip_tls_verify," \
	" 'kube_version', c.kube_version, 'node_count', c.node_count," \
	" 'cilium_version', c.cilium_version, 'release_revision', c.release_revision," \
	" 'release_status', c.release_status, 'last_success_at', ferry_ts(c.last_success_at)," \
	" 'last_check', c.last_check," \
	" 'last_contact_at', ferry_ts(c.last_contact_at), 'created_at', ferry_ts(c.created_at)," \
	" 'updated_at', ferry_ts(c.updated_at)," \
	" 'active_job_id', (SELECT j.id FROM jobs j WHERE j.cluster_id = c.id" \
	"   AND j.state IN ('queued', 'running') LIMIT 1)"

#define CLUSTER_JSON "json_build_object(" CLUSTER_JSON_FIELDS ", '_version', c.version)"

/* Move the hidden _version member out of obj. */
static void take_version(json_t *obj, int *version)
{
	if (version)
		*version = (int)json_integer_value(json_object_get(obj, "_version"));
	json_object_del(obj, "_version");
}

int db_cluster_create(PGconn *conn, const char *tenant_id, const struct db_cluster_fields *f,
		      json_t **out, int *version, char *err, size_t errlen)
{
	const char *p[11] = {
		tenant_id, f->name, f->profile, f->labels ? f->labels : "{}", f->api_server,
		f->tls_server_name, f->ca_bundle, f->credentials, f->credentials_key_id,
		f->auth_kind, f->insecure > 0 ? "true" : "false",
	};
	int st = dbq_json_row(conn,
			      "INSERT INTO clusters AS c (tenant_id, name, profile, labels, api_server,"
			      " tls_server_name, ca_bundle, credentials, credentials_key_id, auth_kind,"
			      " insecure_skip_tls_verify)"
			      " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11::boolean)"
			      " RETURNING " CLUSTER_JSON,
			      11, p, out, err, errlen);
	if (st == DB_OK)
		take_version(*out, version);
	return st;
}

int db_cluster_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		   int *version, char *err, size_t errlen)
{
	const char *p[2] = { id, tenant_id };
	int st = dbq_json_row(conn,
			      "SELECT " CLUSTER_JSON " FROM clusters c WHERE c.id = $1 AND c.tenant_id = $2",
			      2, p, out, err, errlen);
	if (st == DB_OK)
		take_version(*out, version);
	return st;
}

int db_cluster_get_body(PGconn *conn, const char *tenant_id, const char *id, char **body,
			int *version, char *err, size_t errlen)
{
	const char *p[2] = { id, tenant_id };
	*body = NULL;
	PGresult *r = dbq_params(conn,
				 "SELECT json_build_object(" CLUSTER_JSON_FIELDS ")::text, c.version"
				 " FROM clusters c WHERE c.id = $1 AND c.tenant_id = $2",
				 2, p);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		int st = dbq_status_of(r, conn, err, errlen);
		PQclear(r);
		return st;
	}
	int st = DB_NOT_FOUND;
	if (PQntuples(r) == 1) {
		*body = dbq_json_body(PQgetvalue(r, 0, 0));
		if (version)
			*version = atoi(PQgetvalue(r, 0, 1));
		st = DB_OK;
		if (!*body) {
			snprintf(err, errlen, "bad JSON from database");
			st = DB_ERROR;
		}
	}
	PQclear(r);
	return st;
}

void db_cluster_selector_sql(struct buf *sql, const struct db_label_req *reqs, int nreqs,
			     const char **params, int *np, char **owned)
{
	for (int i = 0; i < nreqs && i < DB_MAX_LABEL_REQS; i++) {
		const struct db_label_req *q = &reqs[i];
		owned[i] = NULL;
		if (q->op == DB_LABEL_EQ || q->op == DB_LABEL_NE) {
			json_t *o = json_object();
			json_object_set_new(o, q->key, json_string(q->value));
			owned[i] = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			params[(*np)++] = owned[i];
			buf_printf(sql, q->op == DB_LABEL_EQ ? " AND c.labels @> $%d::jsonb"
							      : " AND NOT (c.labels @> $%d::jsonb)",
				   *np);
		} else {
			params[(*np)++] = q->key;
			buf_printf(sql, q->op == DB_LABEL_EXISTS ? " AND c.labels ? $%d"
								 : " AND NOT (c.labels ? $%d)",
				   *np);
		}
	}
}

int db_cluster_list(PGconn *conn, const char *tenant_id, const struct db_label_req *reqs,
		    int nreqs, int limit, const char *cursor, json_t **out,
		    char *err, size_t errlen)
{
	char us[24] = "", id[37] = "", lim[16];
	if (cursor && dbq_cursor_parse(cursor, us, id) != 0)
		return DB_BAD_CURSOR;
	if (nreqs > DB_MAX_LABEL_REQS)
		nreqs = DB_MAX_LABEL_REQS;
	snprintf(lim, sizeof(lim), "%d", limit + 1);

	const char *p[4 + DB_MAX_LABEL_REQS];
	char *owned[DB_MAX_LABEL_REQS] = { 0 };
	int np = 0;
	p[np++] = tenant_id;
	p[np++] = cursor ? us : NULL;
	p[np++] = cursor ? id : NULL;
	p[np++] = lim;
	struct buf sql = BUF_INIT;
	buf_puts(&sql, "SELECT " CLUSTER_JSON ", " DBQ_CURSOR_SQL("c") " FROM clusters c"
		       " WHERE c.tenant_id = $1 AND ($2::bigint IS NULL OR"
		       "  (c.created_at, c.id) > ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))");
	db_cluster_selector_sql(&sql, reqs, nreqs, p, &np, owned);
	buf_puts(&sql, " ORDER BY c.created_at, c.id LIMIT $4::int");
	int st = dbq_page(conn, buf_cstr(&sql), np, p, limit, out, err, errlen);
	if (st == DB_OK) {
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(*out, "items"), i, item)
			take_version(item, NULL);
	}
	buf_free(&sql);
	for (int i = 0; i < nreqs; i++)
		free(owned[i]);
	return st;
}

/* After an UPDATE/DELETE matched no row: absent, or version mismatch? */
static int why_no_row(PGconn *conn, const char *tenant_id, const char *id, char *err,
		      size_t errlen)
{
	json_t *row = NULL;
	const char *p[2] = { id, tenant_id };
	int st = dbq_json_row(conn,
			      "SELECT json_build_object('v', version) FROM clusters WHERE id = $1 AND tenant_id = $2",
			      2, p, &row, err, errlen);
	json_decref(row);
	if (st == DB_OK)
		return DB_PRECONDITION;
	return st;
}

int db_cluster_update(PGconn *conn, const char *tenant_id, const char *id,
		      const struct db_cluster_fields *f, int if_version,
		      json_t **out, int *version, char *err, size_t errlen)
{
	char ver[16];
	snprintf(ver, sizeof(ver), "%d", if_version);
	const char *p[16] = {
		id, tenant_id, if_version > 0 ? ver : NULL,
		f->name, f->profile, f->labels, f->api_server,
		f->set_tls_server_name ? "true" : "false", f->tls_server_name,
		f->set_ca_bundle ? "true" : "false", f->ca_bundle,
		f->credentials, f->credentials_key_id, f->auth_kind,
		f->insecure < 0 ? NULL : (f->insecure ? "true" : "false"),
	};
	int st = dbq_json_row(conn,
			      "UPDATE clusters AS c SET"
			      " name = COALESCE($4, c.name),"
			      " profile = COALESCE($5, c.profile),"
			      " labels = CASE WHEN $6::jsonb IS NULL THEN c.labels"
			      "   ELSE jsonb_strip_nulls(c.labels || $6::jsonb) END,"
			      " api_server = COALESCE($7, c.api_server),"
			      " tls_server_name = CASE WHEN $8::boolean THEN $9 ELSE c.tls_server_name END,"
			      " ca_bundle = CASE WHEN $10::boolean THEN $11 ELSE c.ca_bundle END,"
			      " credentials = COALESCE($12, c.credentials),"
			      " credentials_key_id = COALESCE($13, c.credentials_key_id),"
			      " auth_kind = COALESCE($14, c.auth_kind),"
			      " insecure_skip_tls_verify = COALESCE($15::boolean, c.insecure_skip_tls_verify),"
			      " version = c.version + 1, updated_at = now()"
			      " WHERE c.id = $1 AND c.tenant_id = $2 AND ($3::int IS NULL OR c.version = $3::int)"
			      " RETURNING " CLUSTER_JSON,
			      15, p, out, err, errlen);
	if (st == DB_OK) {
		take_version(*out, version);
		return DB_OK;
	}
	if (st == DB_NOT_FOUND && if_version > 0)
		return why_no_row(conn, tenant_id, id, err, errlen);
	return st;
}

int db_cluster_delete(PGconn *conn, const char *tenant_id, const char *id, int if_version,
		      char active_job_id[37], char *err, size_t errlen)
{
	const char *p[2] = { id, tenant_id };
	json_t *row = NULL;
	int st = dbq_exec(conn, "BEGIN", 0, NULL, NULL, err, errlen);
	if (st != DB_OK)
		return st;
	st = dbq_json_row(conn,
			  "SELECT json_build_object('version', c.version, 'active',"
			  " (SELECT j.id FROM jobs j WHERE j.cluster_id = c.id"
			  "  AND j.state IN ('queued', 'running') LIMIT 1))"
			  " FROM clusters c WHERE c.id = $1 AND c.tenant_id = $2 FOR UPDATE",
			  2, p, &row, err, errlen);
	if (st != DB_OK)
		goto out;
	if (if_version > 0 && json_integer_value(json_object_get(row, "version")) != if_version) {
		st = DB_PRECONDITION;
		goto out;
	}
	const char *active = json_string_value(json_object_get(row, "active"));
	if (active) {
		snprintf(active_job_id, 37, "%s", active);
		st = DB_CONFLICT;
		goto out;
	}
	st = dbq_exec(conn,
		      "DELETE FROM jobs WHERE cluster_id = $1 AND tenant_id = $2",
		      2, p, NULL, err, errlen);
	if (st != DB_OK)
		goto out;
	st = dbq_exec(conn, "DELETE FROM clusters WHERE id = $1 AND tenant_id = $2", 2, p, NULL,
		      err, errlen);
	if (st != DB_OK)
		goto out;
	json_decref(row);
	return dbq_exec(conn, "COMMIT", 0, NULL, NULL, err, errlen);
out:
	json_decref(row);
	dbq_exec(conn, "ROLLBACK", 0, NULL, NULL, NULL, 0);
	return st;
}
