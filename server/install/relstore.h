/*
 * install/relstore: the release's records as the lifecycle phases use them,
 * in the cluster (Helm's release Secrets, release.h) and in PostgreSQL
 * (db/releases.h), plus the object bookkeeping of Helm's upgrade: which
 * objects a manifest holds, and deleting those a newer manifest no longer
 * renders (except helm.sh/resource-policy: keep).
 *
 * Every function takes a phase's install_run (phases.h) and honours its
 * dry run (deletes carry dryRun=All and are recorded as "deleted" in
 * job.result.dry_run.objects; no record is written).
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safety: as the phases'.
 */
#ifndef FERRY_INSTALL_RELSTORE_H
#define FERRY_INSTALL_RELSTORE_H

#include "server/install/phases.h"

#include <jansson.h>

/* What the release Secrets say. */
struct relstore_state {
	int latest;                 /* highest revision, 0 = none */
	const char *latest_status;  /* its status label (borrowed from secrets) */
	int latest_ours;            /* written by ferry (ferry.io/managed=true) */
	const json_t *latest_secret;
	const json_t *deployed;     /* Secret of the highest deployed revision, or NULL */
	int deployed_rev;
	int count;                  /* records listed */
};

/* List the release's Secrets (owner=helm,name=<release>) into *secrets
 * (items array). HTTP status (200) or -1. */
int relstore_list(struct install_run *run, json_t **secrets);

/* Scan a list of release Secrets. */
void relstore_scan(const json_t *secrets, struct relstore_state *rs);

/* The Secret of revision rev among secrets (borrowed) or NULL. */
const json_t *relstore_secret_of(const json_t *secrets, int rev);

/* Whether a status is one of Helm's pending ones (pending-install,
 * pending-upgrade, pending-rollback). */
int relstore_is_pending(const char *status);

/* Write a release (Helm release JSON) as a Secret: create (first creating
 * the release namespace when it does not exist), or replace when it exists
 * (a resumed job rewriting its own record). existing: the record is known
 * to exist (the pending record of the same revision), so replace first.
 * HTTP status or -1. */
int relstore_write(struct install_run *run, const json_t *rel, int existing);

/* relstore_write() then relstore_save_db(): the record in the cluster and
 * in PostgreSQL. A failed write is install_call_failed(what). */
enum phase_rc relstore_write_record(struct install_run *run, const json_t *rel, int existing, const char *what);

/* PUT the record in secret with a new status (and description when
 * non-NULL). HTTP status, 0 when the record is unreadable (warned). */
int relstore_restatus(struct install_run *run, const json_t *secret, const char *status,
		      const char *description);

/* Record the release (Helm release JSON) as a revision of the job's
 * cluster in PostgreSQL. adopted: no job author. PHASE_OK, PHASE_ABORT
 * (lease lost) or PHASE_RETRY (message set). Nothing in a dry run. */
enum phase_rc relstore_save_db(struct install_run *run, const json_t *rel, int adopted);

/* Delete the release Secrets beyond the newest max_history (and their
 * PostgreSQL revisions). HTTP-like status: 200, or the failing call's. */
int relstore_prune_history(struct install_run *run, const json_t *secrets, int max_history);

/* What applying a revision's objects did, for the phase's detail and
 * message. */
struct relstore_tally {
	long created, changed, unchanged, deleted, kept;
};

/* One applied object: recorded (install_record_object, with the changed
 * fields), counted by action, and for a DaemonSet or Deployment noted in
 * workloads as {kind, name, path} for the wait phase. */
void relstore_tally_applied(struct install_run *run, const json_t *obj, const char *action, json_t *fields,
			    struct relstore_tally *tally, json_t *workloads);

/* {created, changed, unchanged, deleted, kept} (new reference). */
json_t *relstore_tally_json(const struct relstore_tally *tally);

/* After revision was written deployed: the previously deployed record
 * (rs->deployed) becomes superseded, and the Secrets beyond the job's
 * max_history are pruned (a failed prune is only warned about, as Helm
 * does; the records are listed again only when rs's count plus the new
 * revision can exceed max_history). Nothing in a dry run. PHASE_OK, or the failure of the supersede
 * call (message set). */
enum phase_rc relstore_retire_previous(struct install_run *run, const struct relstore_state *rs, int revision);

/* The objects of a manifest (YAML stream text) as an array of
 * {apiVersion, kind, namespace, name} (namespace defaulted to ns for
 * namespaced kinds; "" for cluster-scoped ones). NULL when it does not
 * parse (message in err). */
json_t *relstore_manifest_objects(struct install_run *run, const char *manifest,
				  char *err, size_t errlen);

/* Delete every object of old_objs that is not in new_objs (same group,
 * kind, namespace, name), unless its live copy is annotated
 * helm.sh/resource-policy: keep; skip CRDs when skip_crds. Deleted and kept
 * objects are recorded (install_record_object). Returns 200 or the status
 * of the failing call (-1 transport), what names the failing object. */
int relstore_delete_absent(struct install_run *run, const json_t *old_objs, const json_t *new_objs,
			   int skip_crds, long *deleted, long *kept, char *what, size_t whatlen);

/* Helm's ownership tags on a chart object: label
 * app.kubernetes.io/managed-by=Helm, annotations meta.helm.sh/release-name
 * and -namespace. */
void relstore_tag_for_helm(json_t *obj, const char *release, const char *ns);

/* Whether PostgreSQL holds revision of the job's cluster. */
int relstore_in_db(struct install_run *run, int revision);

/* 1 (message set) when the release's newest record belongs to someone
 * else: another tool's pending record (a Helm operation in flight), or a
 * record neither written by ferry nor adopted (in PostgreSQL). */
int relstore_refuse_foreign(struct install_run *run, const struct relstore_state *rs);

#endif
