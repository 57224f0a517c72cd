/*
 * install/phases: the install job's phases (SPEC §2) and what they share.
 *
 * install_phase_table() is the phase table of an install job; the runner
 * (runner.c) returns it from runner_phases() for kinds "install" and
 * "upgrade" (an upgrade is the same walk).
 * Phases, in order:
 *   preflight          core's connection step, then preflight_rules
 *   eni-agent          tke-eni-agent image to v3.8.0-rc.0 when older
 *   cni-config         the chained CNI ConfigMap (tke profile)
 *   cilium             render the chart, apply with SSA, Helm release record
 *   wait               rollout of cilium, cilium-envoy, cilium-operator (after a
 *                      rollout restart of cilium when a masquerade/endpoint-slice
 *                      follow-up changed cilium-config, followups.h)
 *   l2-announcements   k3s: CiliumL2AnnouncementPolicy + LoadBalancer IP pool (l2.h)
 *   retire-tke-components  kube-proxy, tke-cni-agent, ip-masq-agent
 *   apf                FlowSchema + PriorityLevelConfiguration
 *   nodepool           Karpenter NodePool + TKEMachineNodeClass (optional)
 *   surroundings       snapshot of the objects around the release, kept
 *                      with the revision for a rollback (surroundings.h)
 *   verify             pod table
 * Rollback, uninstall, adopt, check and repair jobs: lifecycle_phase_table()
 * (phase_lifecycle.c, phase_drift.c).
 *
 * Every phase is idempotent (reads first, writes only what differs; on a
 * first install the server-side apply's own answer replaces the read, see
 * install_apply()), logs into the job's event log, and honours params.dry_run (writes carry
 * dryRun=All; what would change is recorded in job.result.dry_run.objects).
 * Facts a later phase needs (preflight's k8sServiceHost, node count, ...)
 * are kept in the phase's detail (job_phases.detail), which survives retries
 * and takeovers, and read back with install_phase_detail().
 *
 * Thread-safety: as the runner's (one job on one worker thread).
 */
#ifndef FERRY_INSTALL_PHASES_H
#define FERRY_INSTALL_PHASES_H

#include "server/install/profiles.h"
#include "server/install/runner.h"
#include "server/install/waitlog.h"

#include <jansson.h>

struct kube_ops;

#define INSTALL_RELEASE_NAME "cilium"
#define INSTALL_DEFAULT_CHART_VERSION "1.18.3"
#define INSTALL_DEFAULT_ENI_TAG "v3.8.0-rc.0"

/* The phases of an install job (static table), *n set. */
const struct phase_def *install_phase_table(int *n);

/* The phases of a rollback, uninstall, adopt, check or repair job; NULL
 * and *n = 0 for another kind. */
const struct phase_def *lifecycle_phase_table(const char *kind, int *n);

enum phase_rc phase_install_preflight(struct runner_ctx *ctx);
enum phase_rc phase_eni_agent(struct runner_ctx *ctx);
enum phase_rc phase_cni_config(struct runner_ctx *ctx);
enum phase_rc phase_cilium(struct runner_ctx *ctx);
enum phase_rc phase_wait(struct runner_ctx *ctx);
enum phase_rc phase_retire(struct runner_ctx *ctx);
enum phase_rc phase_apf(struct runner_ctx *ctx);
enum phase_rc phase_nodepool(struct runner_ctx *ctx);
enum phase_rc phase_verify(struct runner_ctx *ctx);
enum phase_rc phase_record_surroundings(struct runner_ctx *ctx);
enum phase_rc phase_rollback_release(struct runner_ctx *ctx);
enum phase_rc phase_restore_surroundings(struct runner_ctx *ctx);
enum phase_rc phase_uninstall_release(struct runner_ctx *ctx);
enum phase_rc phase_uninstall_wait(struct runner_ctx *ctx);
enum phase_rc phase_adopt(struct runner_ctx *ctx);
enum phase_rc phase_check(struct runner_ctx *ctx);
enum phase_rc phase_repair(struct runner_ctx *ctx);

/* ---- remediation (phase_lifecycle.c), used by the runner ---- */

/* The job is an install/upgrade with params.on_failure "rollback" (not a
 * dry run). */
int lifecycle_wants_remediation(const struct db_job_claim *job);
/* params.retries (0..10, default 0): how many times a failed phase of such
 * a job is tried again before the remediation. */
int lifecycle_retries(const struct db_job_claim *job);
/* Roll the job's cluster back to its newest deployed revision (the rollback
 * job's cilium phase, run inside this job); result.remediation = {action,
 * to_revision, revision, state: succeeded|failed|skipped, message}.
 * outcome gets a sentence for the job's error. 0 rolled back, -1 not. */
int lifecycle_remediate(struct runner_ctx *ctx, char *outcome, size_t len);

/* ---- shared by the phases (phase_common.c) ---- */

struct install_run {
	struct runner_ctx *ctx;
	struct kube_client *kc;
	struct kube_ops *ops;
	enum profile_kind profile;
	const json_t *params;       /* the job's params (borrowed) */
	int dry_run;
	const char *ns;             /* release namespace: the one ferry recorded
				     * for the cluster's release (an adopted
				     * release may live elsewhere), else the
				     * profile's */
	char ns_buf[64];
	const char *release;        /* release name */
	json_t *preflight;          /* preflight facts (own reference), {} if none */
	json_t *dry_namespaces;     /* dry run: namespaces this phase would have
				     * created (name -> true); objects in them
				     * cannot be checked by the server */
	int first_install;          /* the objects this phase applies are
				     * expected not to exist: the job's
				     * preflight found no release record, it is
				     * the job's first attempt and the phase's,
				     * not a dry run (the cilium phase also
				     * requires no record now); install_apply()
				     * then skips its read */
};

/* Set up a phase: kube client, ops (retries, rate limit, abort), profile,
 * preflight facts. PHASE_OK, or the rc to return (message set). */
enum phase_rc install_run_begin(struct runner_ctx *ctx, struct install_run *run);
void install_run_end(struct install_run *run);

/* A failed call (status or -1) as a phase outcome: transport errors, 429
 * and 5xx (after ops' own retries) -> PHASE_RETRY, anything else ->
 * PHASE_FAIL; the message names what was being done. */
enum phase_rc install_call_failed(struct install_run *run, int status, const char *what);

/* The detail object a phase of this job stored (new reference or NULL). */
json_t *install_phase_detail(struct runner_ctx *ctx, const char *phase);

/* result[key] as an object, created when missing (borrowed). */
json_t *install_result_obj(struct runner_ctx *ctx, const char *key);

/* Record one object's dry-run (or real) outcome in result.dry_run.objects
 * (dry run) and in detail.objects: {kind, namespace, name, action, fields}. */
void install_record_object(struct install_run *run, const json_t *obj, const char *action,
			   const json_t *fields);

/* Apply obj with server-side apply (force) after reading the live object,
 * telling apart created / changed (fields filled) / unchanged. When
 * run->first_install, the read is skipped and the apply's own answer
 * decides: 201 "created"; 200 (the object was there before the first
 * install) "changed", without fields, since what it held is unknown. In dry run
 * the apply carries dryRun=All; an object whose namespace does not exist
 * yet but was (dry-run) created earlier in the same phase is reported
 * "created" without a server round trip (the API server would answer 404:
 * a dry-run create persists nothing). Returns the HTTP status of the apply (or
 * of the failing read), -1 on transport failure; *action is a static
 * string. fields may be NULL. */
int install_apply(struct install_run *run, const json_t *obj, const char **action,
		  json_t *fields);

/* Helm's --create-namespace: create the release namespace (run->ns) when
 * it is missing, labelled name=<ns> as Helm does, recorded like any other
 * created object (dry run: dryRun=All, and later objects in it count as
 * created). Ferry never deletes it. PHASE_OK when it exists or was
 * created, else install_call_failed()'s outcome (message set). */
enum phase_rc install_ensure_namespace(struct install_run *run);

/* Progress of a long wait (waitlog.h): install_wait_tick() logs an info
 * event "waiting for <what>: <elapsed> s so far, deadline <timeout> s
 * (<state>)" each time WAITLOG_EVERY_MS (30 s) more have passed. */
void install_wait_start(struct waitlog *w, const char *what, long timeout_ms);
void install_wait_tick(struct install_run *run, struct waitlog *w, const char *state);

/* Poll a DaemonSet or Deployment at path until kubectl's rollout rule says
 * done (PHASE_OK), errors (PHASE_FAIL) or timeout_ms passes (PHASE_RETRY).
 * The first check is at once (from the job's own write of the object when
 * that shows the rollout still going, else a GET); the next ones back off
 * from INSTALL_ROLLOUT_POLL_FIRST_MS, doubling, to INSTALL_ROLLOUT_POLL_MAX_MS,
 * sleeping in runner_sleep() (cancellable; waits of RUNNER_LEND_MS or more
 * lend the database connection). */
#define INSTALL_ROLLOUT_POLL_FIRST_MS 25
#define INSTALL_ROLLOUT_POLL_MAX_MS 1000
enum phase_rc install_wait_rollout(struct install_run *run, const char *path, const char *kind,
				   long timeout_ms);

/* params.wait_timeout_s in ms (default 600 s). */
long install_wait_timeout_ms(const json_t *params);

/* params.max_history: Helm's --history-max (default 10, 0 = keep all). */
int install_max_history(const json_t *params);

/* Non-virtual nodes in the cluster now (-1 on failure). */
long install_count_nodes(struct install_run *run);

#endif
