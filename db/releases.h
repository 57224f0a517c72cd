/*
 * db/releases: the Helm release revisions of each cluster in PostgreSQL
 * (table release_revisions, migration 011), and the release facts the
 * cluster row shows (cilium_version, release_revision, release_status,
 * last_success_at, last_check).
 *
 * Two audiences:
 *  - workers (the lifecycle phases): every write carries the job's lease
 *    token and changes nothing once the token is no longer current (another
 *    worker took the job over): those calls return 0. The revision and the
 *    cluster row are always written for the job's own cluster and tenant.
 *    After every revision write the cluster row follows the history:
 *    release_revision and release_status = the newest revision's,
 *    cilium_version = the chart version of the newest deployed revision
 *    (NULL when none is deployed, e.g. after an uninstall).
 *  - API handlers: db_release_list_json() / db_release_get_json(), always
 *    scoped by tenant (another tenant's cluster is DB_NOT_FOUND).
 *
 * Revision JSON: {revision, status, release_name, namespace, chart_name,
 * chart_version, app_version, description, job_id, started_by (the name of
 * the token that started the job, else its id; null for an adopted
 * revision), created_at, updated_at}; the full form (db_release_get_json)
 * adds values (the user values applied), manifest (text) and surroundings.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safety: stateless; one PGconn per caller.
 * Errors: int functions return 1 (done), 0 (lease lost), -1 (database
 * error, message in err) unless stated otherwise.
 */
#ifndef FERRY_DB_RELEASES_H
#define FERRY_DB_RELEASES_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "db/jobs.h"

struct db_release_rev {
	int revision;                 /* >= 1 */
	const char *release_name;
	const char *namespace_;
	const char *status;           /* Helm's: deployed, superseded, failed, pending-*, ... */
	const char *chart_name;
	const char *chart_version;
	const char *app_version;      /* may be NULL */
	const char *description;      /* may be NULL */
	const json_t *values;         /* user values (object) or NULL = {} */
	const char *manifest;         /* may be NULL = "" */
	int adopted;                  /* 1: no job/token recorded as its author */
};

/* Insert or update revision rev->revision of the job's cluster (values,
 * manifest, status, chart; surroundings and created_at kept on update).
 * When the status is "deployed", every other deployed revision of the
 * cluster becomes "superseded" (Helm's rule: one deployed revision). */
int db_release_save(PGconn *conn, const struct db_job_claim *job,
		    const struct db_release_rev *rev, char *err, size_t errlen);

/* Set one revision's status (and description when non-NULL). 1 also when
 * the revision does not exist (nothing to do). */
int db_release_set_status(PGconn *conn, const struct db_job_claim *job, int revision,
			  const char *status, const char *description, char *err, size_t errlen);

/* Merge obj's members into the revision's surroundings (what a phase around
 * the release left: eni-agent image, cni-config, ...). */
int db_release_merge_surroundings(PGconn *conn, const struct db_job_claim *job, int revision,
				  const json_t *obj, char *err, size_t errlen);

/* Uninstall: keep_history = 1 marks every revision "uninstalled", else
 * deletes them all. */
int db_release_uninstalled(PGconn *conn, const struct db_job_claim *job, int keep_history,
			   char *err, size_t errlen);

/* Delete revisions older than the newest max_history (Helm's
 * --history-max; <= 0 keeps all). */
int db_release_prune(PGconn *conn, const struct db_job_claim *job, int max_history,
		     char *err, size_t errlen);

/* The job's cluster's revision in full form (new reference), or NULL when
 * absent (err "") or on error. */
json_t *db_release_get_for_job(PGconn *conn, const struct db_job_claim *job, int revision,
			       char *err, size_t errlen);

/* The job's cluster's revisions, newest first, short form (never NULL on
 * success; NULL on error). */
json_t *db_release_list_for_job(PGconn *conn, const struct db_job_claim *job,
				char *err, size_t errlen);

/* The release namespace of the job's cluster's newest revision into out:
 * 1 found, 0 none, -1 error. */
int db_release_namespace_for_job(PGconn *conn, const struct db_job_claim *job, char *out, size_t len);

/* last_success_at = now() on the job's cluster. */
int db_release_note_success(PGconn *conn, const struct db_job_claim *job, char *err, size_t errlen);

/* last_check = check (object) on the job's cluster. */
int db_release_set_last_check(PGconn *conn, const struct db_job_claim *job, const json_t *check,
			      char *err, size_t errlen);

/* ---- API side (db_status of db/dbq.h) ---- */

/* *out = {"items": [revision…]} newest first; DB_NOT_FOUND when the
 * cluster is not the tenant's. */
int db_release_list_json(PGconn *conn, const char *tenant_id, const char *cluster_id,
			 json_t **out, char *err, size_t errlen);

/* *out = the revision in full form; DB_NOT_FOUND when the cluster is not
 * the tenant's (*cluster_found 0) or has no such revision (*cluster_found
 * 1). cluster_found may be NULL. */
int db_release_get_json(PGconn *conn, const char *tenant_id, const char *cluster_id,
			int revision, json_t **out, int *cluster_found, char *err, size_t errlen);

#endif
