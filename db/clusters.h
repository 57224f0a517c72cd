/*
 * db/clusters: cluster rows, always scoped by tenant: a cluster of another
 * tenant is DB_NOT_FOUND, like one that does not exist.
 *
 * Cluster JSON (the REST representation): {id, name, profile, labels,
 * api_server, tls_server_name, has_ca_bundle, auth, kube_version,
 * node_count, cilium_version, release_revision, release_status,
 * last_success_at, last_check, last_contact_at, created_at, updated_at,
 * active_job_id}. The release facts are written by jobs (db/releases.h). Never the CA text, never the
 * credentials (sealed in the row with AES-256-GCM by the caller, see
 * server/common/crypto.h). version (the ETag) is returned separately.
 *
 * Returns db_status (db/dbq.h); *out new reference on DB_OK.
 * Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_CLUSTERS_H
#define FERRY_DB_CLUSTERS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* Fields of a new cluster; also a patch (NULL = keep, for patches). */
struct db_cluster_fields {
	const char *name;
	const char *profile;
	const char *labels;            /* JSON object text; for patches a merge patch */
	const char *api_server;
	int set_tls_server_name;       /* patch: 1 = replace (value may be NULL) */
	const char *tls_server_name;
	int set_ca_bundle;             /* patch: 1 = replace (value may be NULL) */
	const char *ca_bundle;
	const char *credentials;       /* sealed */
	const char *credentials_key_id;
	const char *auth_kind;         /* "token" | "client-certificate" */
	int insecure;                  /* -1 = keep (patch), 0/1 */
};

/* DB_OK, DB_CONFLICT (name taken in the tenant), DB_INVALID, DB_ERROR. */
int db_cluster_create(PGconn *conn, const char *tenant_id, const struct db_cluster_fields *f,
		      json_t **out, int *version, char *err, size_t errlen);
/* DB_OK, DB_NOT_FOUND. version may be NULL. */
int db_cluster_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		   int *version, char *err, size_t errlen);

/* The same cluster as the API's response body (db/dbq.h dbq_json_body():
 * PostgreSQL's JSON text, re-encoded but never parsed; *body is malloc'd,
 * the caller frees it) and its version. DB_OK, DB_NOT_FOUND, DB_ERROR. */
int db_cluster_get_body(PGconn *conn, const char *tenant_id, const char *id, char **body,
			int *version, char *err, size_t errlen);

/* One label-selector requirement. */
enum db_label_op { DB_LABEL_EQ, DB_LABEL_NE, DB_LABEL_EXISTS, DB_LABEL_NOT_EXISTS };
struct db_label_req {
	enum db_label_op op;
	const char *key;
	const char *value;   /* EQ/NE only */
};
#define DB_MAX_LABEL_REQS 16

/* Clusters of the tenant matching every requirement, oldest first:
 * {"items", "next_cursor"}. DB_BAD_CURSOR on a bad cursor. */
int db_cluster_list(PGconn *conn, const char *tenant_id, const struct db_label_req *reqs,
		    int nreqs, int limit, const char *cursor, json_t **out,
		    char *err, size_t errlen);

/* Append " AND <requirement>" for each of reqs to sql (clusters aliased
 * "c"), adding their values to params from index *np on (advanced);
 * owned[i] (DB_MAX_LABEL_REQS slots) receive strings the caller frees
 * after running the query. Shared by the cluster list and campaigns. */
struct buf;
void db_cluster_selector_sql(struct buf *sql, const struct db_label_req *reqs, int nreqs,
			     const char **params, int *np, char **owned);

/* Apply a patch (labels merged: a null value removes the label). When
 * if_version > 0 the row must still have it. DB_OK, DB_NOT_FOUND,
 * DB_PRECONDITION, DB_CONFLICT (name taken), DB_INVALID, DB_ERROR. */
int db_cluster_update(PGconn *conn, const char *tenant_id, const char *id,
		      const struct db_cluster_fields *patch, int if_version,
		      json_t **out, int *version, char *err, size_t errlen);

/* Delete the cluster with its finished jobs (their phases and events go
 * with them). DB_OK, DB_NOT_FOUND, DB_PRECONDITION (if_version > 0 and
 * differs), DB_CONFLICT (a job is queued or running; its id in
 * active_job_id[37]), DB_ERROR. */
int db_cluster_delete(PGconn *conn, const char *tenant_id, const char *id, int if_version,
		      char active_job_id[37], char *err, size_t errlen);

#endif
