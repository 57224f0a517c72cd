/*
 * api/routes: the route table. http.c matches requests against it in order
 * and enforces scope and minimum role before calling the handler; openapi.c
 * describes every entry, so a route added here is documented automatically.
 */
#include "api/api.h"
#include "api/charts.h"
#include "api/jobparams.h"
#include "api/revisions.h"
#include "api/session.h"

#include <stddef.h>

const struct api_route api_routes[] = {
	{ "GET", "/healthz", api_healthz, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Liveness: the process answers", NULL, "Status", 200, API_MAY_BLOCK },
	{ "GET", "/readyz", api_readyz, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Readiness: database reachable and migrations current", NULL, "Status", 200, API_MAY_BLOCK },
	{ "GET", "/metrics", api_metrics, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Prometheus metrics (text format)", NULL, NULL, 200, API_MAY_BLOCK },
	{ "GET", "/v1/openapi.json", api_openapi, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "This OpenAPI document", NULL, NULL, 200, API_MAY_BLOCK },
	{ "GET", "/v1/auth/login", api_auth_login, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Single sign-on: redirect to the OpenID provider (code flow + PKCE; ?tenant=, ?return_to=)",
	  NULL, NULL, 302, API_MAY_BLOCK },
	{ "GET", "/v1/auth/callback", api_auth_callback, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Single sign-on: the provider's redirect back; sets the session cookie", NULL, NULL, 302, API_MAY_BLOCK },
	{ "POST", "/v1/auth/logout", api_auth_logout, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "End the console session (X-CSRF-Token required)", NULL, NULL, 200, API_MAY_BLOCK },
	{ "GET", "/v1/auth/session", api_auth_session, API_SCOPE_PUBLIC, API_ROLE_NONE,
	  "Whether single sign-on is on, and the caller's session with its CSRF token", NULL, NULL, 200, API_MAY_BLOCK },
	{ "GET", "/v1/me", api_me_get, API_SCOPE_ANY, API_ROLE_VIEWER,
	  "Who am I: the calling token's id, tenant and role", NULL, "Me", 200,
	  API_QUICK_READ },

	{ "POST", "/v1/tenants", api_tenants_create, API_SCOPE_PLATFORM, API_ROLE_ADMIN,
	  "Create a tenant (platform admin)", "TenantCreate", "Tenant", 201, API_MAY_BLOCK },
	{ "GET", "/v1/tenants", api_tenants_list, API_SCOPE_PLATFORM, API_ROLE_VIEWER,
	  "List tenants (platform token)", NULL, "TenantPage", 200, API_MAY_BLOCK },
	{ "DELETE", "/v1/tenants/{id}", api_tenants_delete, API_SCOPE_PLATFORM, API_ROLE_ADMIN,
	  "Delete a tenant (soft; refused while it has clusters)", NULL, NULL, 204, API_MAY_BLOCK },

	{ "POST", "/v1/tokens", api_tokens_create, API_SCOPE_ANY, API_ROLE_ADMIN,
	  "Create an API token (the secret is returned only here)", "TokenCreate", "TokenCreated", 201, API_MAY_BLOCK },
	{ "GET", "/v1/tokens", api_tokens_list, API_SCOPE_ANY, API_ROLE_ADMIN,
	  "List API tokens (a tenant admin sees its tenant's)", NULL, "TokenPage", 200, API_MAY_BLOCK },
	{ "DELETE", "/v1/tokens/{id}", api_tokens_delete, API_SCOPE_ANY, API_ROLE_ADMIN,
	  "Revoke an API token", NULL, NULL, 204, API_MAY_BLOCK },

	{ "POST", "/v1/clusters", api_clusters_create, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Register a cluster (connection fields or a kubeconfig)", "ClusterCreate", "Cluster", 201, API_MAY_BLOCK },
	{ "GET", "/v1/clusters", api_clusters_list, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "List clusters (label selector, cursor pagination)", NULL, "ClusterPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/clusters/{id}", api_clusters_get, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "Get a cluster (ETag header)", NULL, "Cluster", 200,
	  API_QUICK_READ },
	{ "PATCH", "/v1/clusters/{id}", api_clusters_patch, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Update a cluster (merge patch; If-Match honoured)", "ClusterPatch", "Cluster", 200, API_MAY_BLOCK },
	{ "DELETE", "/v1/clusters/{id}", api_clusters_delete, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Delete a cluster (409 while a job is active)", NULL, NULL, 204, API_MAY_BLOCK },

	{ "GET", "/v1/clusters/{id}/revisions", api_revisions_list, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "A cluster's release history, newest first", NULL, "RevisionList", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/clusters/{id}/revisions/{revision}", api_revisions_get, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "One release revision with its user values and manifest", NULL, "RevisionFull", 200, API_MAY_BLOCK },

	{ "POST", "/v1/clusters/{id}/jobs", api_jobs_create, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Start a job on a cluster (202 + Location; Idempotency-Key honoured)", "JobCreate", "Job", 202, API_MAY_BLOCK },
	{ "GET", "/v1/job-kinds", api_job_kinds, API_SCOPE_ANY, API_ROLE_VIEWER,
	  "Job kinds and the JSON Schema of each kind's params (descriptions, defaults)", NULL, "JobKinds", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/jobs", api_jobs_list, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "List jobs (filter by state, cluster_id; cursor pagination)", NULL, "JobPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/jobs/{id}", api_jobs_get, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "Get a job with its phases", NULL, "Job", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/jobs/{id}/events", api_jobs_events, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "A job's log (after=<event id>, limit)", NULL, "EventPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/jobs/{id}/events/stream", api_jobs_stream, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "A job's log and state as server-sent events (event: log, event: job)", NULL, NULL, 200, API_MAY_BLOCK },
	{ "POST", "/v1/jobs/{id}/cancel", api_jobs_cancel, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Cancel a job (stops at the next phase boundary)", NULL, "Job", 202, API_MAY_BLOCK },

	{ "POST", "/v1/campaigns", api_campaigns_create, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Start a fleet campaign (201 + Location; Idempotency-Key honoured, 200 on replay)", "CampaignCreate", "Campaign", 201, API_MAY_BLOCK },
	{ "GET", "/v1/campaigns", api_campaigns_list, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "List campaigns (filter by state; cursor pagination)", NULL, "CampaignPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/campaigns/{id}", api_campaigns_get, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "Get a campaign with counts per state and per wave", NULL, "Campaign", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/campaigns/{id}/clusters", api_campaigns_clusters, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "A campaign's clusters: state, reason, job (filter by state; cursor pagination)", NULL, "CampaignClusterPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/campaigns/{id}/stream", api_campaigns_stream, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "A campaign's changes as server-sent events (event: cluster, event: campaign)", NULL, NULL, 200, API_MAY_BLOCK },
	{ "POST", "/v1/campaigns/{id}/pause", api_campaigns_pause, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Pause a campaign (running jobs finish; no new ones start)", NULL, "Campaign", 200, API_MAY_BLOCK },
	{ "POST", "/v1/campaigns/{id}/resume", api_campaigns_resume, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Resume a paused campaign (optionally with a higher max_failures)", "CampaignResume", "Campaign", 200, API_MAY_BLOCK },
	{ "POST", "/v1/campaigns/{id}/approve", api_campaigns_approve, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Approve the next wave of a campaign waiting at a manual gate", NULL, "Campaign", 200, API_MAY_BLOCK },
	{ "POST", "/v1/campaigns/{id}/cancel", api_campaigns_cancel, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Cancel a campaign (running jobs stop at their next phase boundary)", NULL, "Campaign", 200, API_MAY_BLOCK },

	{ "POST", "/v1/charts", api_charts_upload, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Upload a Helm chart archive (.tgz body; 201 new, 200 same bytes again, 409 other bytes)", NULL, "Chart", 201, API_MAY_BLOCK },
	{ "GET", "/v1/charts", api_charts_list, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "List uploaded charts (name filter, cursor pagination)", NULL, "ChartPage", 200,
	  API_QUICK_READ },
	{ "GET", "/v1/charts/{id}", api_charts_get, API_SCOPE_TENANT, API_ROLE_VIEWER,
	  "Get an uploaded chart's metadata", NULL, "Chart", 200,
	  API_QUICK_READ },
	{ "DELETE", "/v1/charts/{id}", api_charts_delete, API_SCOPE_TENANT, API_ROLE_OPERATOR,
	  "Delete an uploaded chart", NULL, NULL, 204, API_MAY_BLOCK },
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
