/*
 * db/campaigns: fleet campaigns (a job kind rolled out over the clusters a
 * label selector matched at creation) and their per-cluster rows.
 *
 * Every API-side function takes the caller's tenant id and sees only that
 * tenant's campaigns: another tenant's campaign is DB_NOT_FOUND.
 *
 * The two state machines (docs/API.md "Campaigns"):
 *   campaign: pending -> running <-> paused -> succeeded | failed | cancelled
 *             (pending may also go to paused or cancelled)
 *   cluster:  pending | waiting -> running -> succeeded | skipped | failed |
 *             cancelled; pending <-> waiting; pending | waiting -> cancelled
 *             or failed (the cluster was deleted)
 * Every transition of either goes through db_campaign_transition() or
 * db_campaign_cluster_transition(), which refuse a move the machine does
 * not allow (they change nothing and return 0).
 *
 * Campaign JSON: {id, name, selector, kind, params, strategy, state,
 * pause_kind, reason, total, canary, max_in_flight, max_failures, waves,
 * pause_between_waves_s, manual_approval, approved_wave, window
 * ({cron, duration_s, time_zone} | null), counts {pending, waiting, running,
 * succeeded, skipped, failed, cancelled}, wave_progress [{wave, total,
 * counts, started_at, finished_at}], created_by, created_at, started_at,
 * finished_at, updated_at}. Cluster row JSON: {cluster_id, cluster_name,
 * wave, position, state, reason, job_id, error, started_at, finished_at}.
 *
 * Returns db_status (db/dbq.h); *out is a new reference on DB_OK.
 * Thread-safety: stateless; one PGconn per caller.
 */
#ifndef FERRY_DB_CAMPAIGNS_H
#define FERRY_DB_CAMPAIGNS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "db/clusters.h"

#define DB_CAMPAIGN_MAX_WAVES 64

/* pg_notify channel, payload = campaign id: the campaign or one of its
 * clusters changed state or reason (sent by the transition functions,
 * delivered at commit; the SSE stream LISTENs). */
#define DB_CAMPAIGN_EVENTS_CHANNEL "ferry_campaign_events"

struct db_campaign_new {
	const char *tenant_id;
	const char *name;
	const char *selector;              /* text as given (shown back) */
	const struct db_label_req *reqs;   /* the parsed selector */
	int nreqs;
	const char *kind;
	const json_t *params;              /* object or NULL */
	const json_t *strategy;            /* as given, shown back */
	int canary, max_in_flight, max_failures;
	/* Cumulative cluster counts at the end of the canary (bounds[0]) and of
	 * each wave after it (bounds[1..nbounds-1]; the last = total). Clusters
	 * beyond the last bound (created meanwhile) join the last wave. */
	const int *bounds;
	int nbounds;
	int pause_between_waves_s;
	int manual_approval;
	const char *window_cron;           /* NULL = no window */
	int window_duration_s;
	const char *window_tz;
	const char *idempotency_key;       /* NULL = none */
	const char *created_by;            /* token id */
	const char *created_by_name;       /* token name (pause reasons) */
};

/* Clusters of the tenant the selector matches now (0..). -1 on error. */
long db_campaign_match_count(PGconn *conn, const char *tenant_id,
			     const struct db_label_req *reqs, int nreqs, char *err, size_t errlen);

/* Create the campaign and its membership in one transaction. *replayed =
 * 1 when the idempotency key named an existing campaign (then *out is that
 * one and nothing was created). DB_OK, DB_INVALID (the selector matches no
 * cluster any more), DB_ERROR. */
int db_campaign_create(PGconn *conn, const struct db_campaign_new *n, json_t **out,
		       int *replayed, char *err, size_t errlen);

/* The campaign JSON. DB_OK, DB_NOT_FOUND, DB_ERROR. */
int db_campaign_get(PGconn *conn, const char *tenant_id, const char *id, json_t **out,
		    char *err, size_t errlen);

/* Newest first; state filters when non-NULL; cursor pages. */
int db_campaign_list(PGconn *conn, const char *tenant_id, const char *state, int limit,
		     const char *cursor, json_t **out, char *err, size_t errlen);

/* The campaign's clusters in rollout order; state filters when non-NULL;
 * cursor = an earlier next_cursor. DB_NOT_FOUND, DB_BAD_CURSOR. */
int db_campaign_clusters(PGconn *conn, const char *tenant_id, const char *id,
			 const char *state, int limit, const char *cursor, json_t **out,
			 char *err, size_t errlen);

enum db_campaign_action {
	DB_CAMPAIGN_PAUSE, DB_CAMPAIGN_RESUME, DB_CAMPAIGN_CANCEL, DB_CAMPAIGN_APPROVE
};

/*
 * An operator's action. by = the token name for "paused by NAME";
 * new_max_failures > 0 raises the budget on resume (it may not lower it
 * below the failures so far). DB_OK (*out = the campaign), DB_NOT_FOUND,
 * DB_CONFLICT (the action does not apply now; why says so), DB_INVALID
 * (budget too low; why), DB_ERROR. Cancel also asks every running job of
 * the campaign to stop at its next phase boundary and cancels the clusters
 * not started.
 */
int db_campaign_control(PGconn *conn, const char *tenant_id, const char *id,
			enum db_campaign_action action, const char *by, int new_max_failures,
			json_t **out, char *why, size_t whylen);

/* For /metrics: {"campaigns": {state: n} over every campaign, "clusters":
 * {state: n} over the members of campaigns not finished}. NULL on error. */
json_t *db_campaign_stats_json(PGconn *conn);

/* ---- the two state machines -------------------------------------------- */

/* Move campaign id to state (pause_kind/reason may be NULL = cleared).
 * 1 moved, 0 refused (not allowed from its current state, or no row),
 * -1 error. Sets started_at / finished_at / active as the state implies. */
int db_campaign_transition(PGconn *conn, const char *id, const char *state,
			   const char *pause_kind, const char *reason, char *err, size_t errlen);

/* Move one member cluster. job_id / error may be NULL (kept / cleared as
 * the state implies). Moving a cluster to its current state only updates
 * the reason. 1 / 0 / -1 as above. */
int db_campaign_cluster_transition(PGconn *conn, const char *campaign_id,
				   const char *cluster_id, const char *state, const char *reason,
				   const char *job_id, const char *error, char *err, size_t errlen);

#endif
