/*
 * api/openapi: GET /v1/openapi.json. Paths come from the route table
 * (api/routes.c) so every route is described; the schemas of the request
 * and response bodies are written out below as JSON text, once.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"

static const char schemas_json[] =
	"{"
	"\"Chart\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"name\":{\"type\":\"string\"},\"version\":{\"type\":\"string\"},\"app_version\":{\"type\":[\"string\",\"null\"]},\"sha256\":{\"type\":\"string\"},\"size\":{\"type\":\"integer\"},\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
	"\"ChartPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Chart\"}},\"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
	"\"Problem\":{\"type\":\"object\",\"required\":[\"type\",\"title\",\"status\",\"detail\"],"
	" \"properties\":{\"type\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},"
	"  \"status\":{\"type\":\"integer\"},\"detail\":{\"type\":\"string\"},\"instance\":{\"type\":\"string\"},"
	"  \"request_id\":{\"type\":\"string\"},"
	"  \"errors\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
	"   \"field\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"}}}}}},"
	"\"Status\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}},"
	"\"Me\":{\"type\":\"object\",\"properties\":{\"token_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	" \"tenant_id\":{\"type\":[\"string\",\"null\"]},\"tenant_name\":{\"type\":[\"string\",\"null\"]},"
	" \"role\":{\"enum\":[\"admin\",\"operator\",\"viewer\"]}}},"
	"\"TenantCreate\":{\"type\":\"object\",\"required\":[\"name\"],\"additionalProperties\":false,"
	" \"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$\"}}},"
	"\"Tenant\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	" \"name\":{\"type\":\"string\"},\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
	"\"TenantPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Tenant\"}},"
	" \"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
	"\"TokenCreate\":{\"type\":\"object\",\"required\":[\"role\"],\"additionalProperties\":false,"
	" \"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":100},\"role\":{\"enum\":[\"admin\",\"operator\",\"viewer\"]},"
	"  \"tenant_id\":{\"type\":[\"string\",\"null\"],\"format\":\"uuid\"}}},"
	"\"Token\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
	" \"name\":{\"type\":\"string\"},\"role\":{\"type\":\"string\"},\"tenant_id\":{\"type\":[\"string\",\"null\"]},"
	" \"created_at\":{\"type\":\"string\"},\"last_used_at\":{\"type\":[\"string\",\"null\"]},\"revoked_at\":{\"type\":[\"string\",\"null\"]}}},"
	"\"TokenCreated\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Token\"},{\"type\":\"object\","
	" \"properties\":{\"token\":{\"type\":\"string\",\"description\":\"the secret, shown only once\"}}}]},"
	"\"TokenPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Token\"}},"
	" \"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
	"\"Labels\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\",\"maxLength\":63}},"
	"\"ClusterCreate\":{\"type\":\"object\",\"required\":[\"name\",\"profile\"],\"additionalProperties\":false,"
	" \"description\":\"Either api_server + (token | client_certificate + client_key) [+ ca_bundle, tls_server_name], or kubeconfig [+ context].\","
	" \"properties\":{\"name\":{\"type\":\"string\"},\"profile\":{\"enum\":[\"tke\",\"tke-coexist\",\"k3s\",\"generic\"]},"
	"  \"labels\":{\"$ref\":\"#/components/schemas/Labels\"},\"api_server\":{\"type\":\"string\",\"format\":\"uri\"},"
	"  \"ca_bundle\":{\"type\":\"string\"},\"tls_server_name\":{\"type\":\"string\"},\"token\":{\"type\":\"string\",\"writeOnly\":true},"
	"  \"client_certificate\":{\"type\":\"string\",\"writeOnly\":true},\"client_key\":{\"type\":\"string\",\"writeOnly\":true},"
	"  \"kubeconfig\":{\"type\":\"string\",\"writeOnly\":true},\"context\":{\"type\":\"string\"}}},"
	"\"ClusterPatch\":{\"type\":\"object\",\"additionalProperties\":false,\"description\":\"JSON merge patch; a null label value removes the label.\","
	" \"properties\":{\"name\":{\"type\":\"string\"},\"profile\":{\"enum\":[\"tke\",\"tke-coexist\",\"k3s\",\"generic\"]},"
	"  \"labels\":{\"type\":\"object\"},\"api_server\":{\"type\":\"string\"},\"ca_bundle\":{\"type\":[\"string\",\"null\"]},"
	"  \"tls_server_name\":{\"type\":[\"string\",\"null\"]},\"token\":{\"type\":\"string\"},\"client_certificate\":{\"type\":\"string\"},"
	"  \"client_key\":{\"type\":\"string\"},\"kubeconfig\":{\"type\":\"string\"},\"context\":{\"type\":\"string\"}}},"
	"\"Cluster\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"name\":{\"type\":\"string\"},"
	" \"profile\":{\"type\":\"string\"},\"labels\":{\"$ref\":\"#/components/schemas/Labels\"},\"api_server\":{\"type\":\"string\"},"
	" \"tls_server_name\":{\"type\":[\"string\",\"null\"]},\"has_ca_bundle\":{\"type\":\"boolean\"},"
	" \"auth\":{\"enum\":[\"token\",\"client-certificate\"]},\"insecure_skip_tls_verify\":{\"type\":\"boolean\"},"
	" \"kube_version\":{\"type\":[\"string\",\"null\"]},\"node_count\":{\"type\":[\"integer\",\"null\"]},"
	" \"cilium_version\":{\"type\":[\"string\",\"null\"]},\"release_revision\":{\"type\":[\"integer\",\"null\"]},"
	" \"release_status\":{\"type\":[\"string\",\"null\"]},\"last_success_at\":{\"type\":[\"string\",\"null\"]},"
	" \"last_check\":{\"type\":[\"object\",\"null\"],\"description\":\"{at, job_id, outcome: in_sync|drifted, in_sync, drifted, missing}\"},"
	" \"last_contact_at\":{\"type\":[\"string\",\"null\"]},\"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"},"
	" \"active_job_id\":{\"type\":[\"string\",\"null\"]}}},"
	"\"ClusterPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Cluster\"}},"
	" \"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
	"\"JobCreate\":{\"type\":\"object\",\"required\":[\"kind\"],\"additionalProperties\":false,"
	" \"properties\":{\"kind\":{\"enum\":[\"install\",\"upgrade\",\"rollback\",\"uninstall\",\"adopt\",\"preflight\",\"check\",\"repair\"]},"
	"  \"params\":{\"type\":\"object\"}}},"
	"\"Phase\":{\"type\":\"object\",\"properties\":{\"seq\":{\"type\":\"integer\"},\"name\":{\"type\":\"string\"},"
	" \"state\":{\"enum\":[\"pending\",\"running\",\"succeeded\",\"failed\",\"skipped\"]},\"attempts\":{\"type\":\"integer\"},"
	" \"api_calls\":{\"type\":\"integer\"},\"started_at\":{\"type\":[\"string\",\"null\"]},\"finished_at\":{\"type\":[\"string\",\"null\"]},"
	" \"duration_ms\":{\"type\":[\"integer\",\"null\"]},\"message\":{\"type\":[\"string\",\"null\"]},\"detail\":{}}},"
	"\"Job\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"cluster_id\":{\"type\":\"string\"},"
	" \"cluster_name\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},"
	" \"state\":{\"enum\":[\"queued\",\"running\",\"succeeded\",\"failed\",\"cancelled\"]},\"params\":{\"type\":\"object\"},"
	" \"attempt\":{\"type\":\"integer\"},\"error\":{\"type\":[\"string\",\"null\"]},\"result\":{},"
	" \"cancel_requested\":{\"type\":\"boolean\"},\"created_at\":{\"type\":\"string\"},\"started_at\":{\"type\":[\"string\",\"null\"]},"
	" \"finished_at\":{\"type\":[\"string\",\"null\"]},\"phases\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Phase\"}}}},"
	"\"JobPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Job\"}},"
	" \"next_cursor\":{\"type\":[\"string\",\"null\"]}}},"
	"\"Event\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"at\":{\"type\":\"string\"},"
	" \"level\":{\"enum\":[\"debug\",\"info\",\"warn\",\"error\"]},\"phase\":{\"type\":[\"string\",\"null\"]},\"message\":{\"type\":\"string\"}}},"
	"\"Revision\":{\"type\":\"object\",\"properties\":{\"revision\":{\"type\":\"integer\"},"
	" \"status\":{\"enum\":[\"unknown\",\"deployed\",\"uninstalled\",\"superseded\",\"failed\",\"uninstalling\","
	"  \"pending-install\",\"pending-upgrade\",\"pending-rollback\"]},\"release_name\":{\"type\":\"string\"},"
	" \"namespace\":{\"type\":\"string\"},\"chart_name\":{\"type\":\"string\"},\"chart_version\":{\"type\":\"string\"},"
	" \"app_version\":{\"type\":[\"string\",\"null\"]},\"description\":{\"type\":\"string\"},"
	" \"job_id\":{\"type\":[\"string\",\"null\"]},\"started_by\":{\"type\":[\"string\",\"null\"]},"
	" \"created_at\":{\"type\":\"string\"},\"updated_at\":{\"type\":\"string\"}}},"
	"\"RevisionList\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Revision\"}}}},"
	"\"RevisionFull\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Revision\"},{\"type\":\"object\","
	" \"properties\":{\"values\":{\"type\":\"object\"},\"manifest\":{\"type\":\"string\"},\"surroundings\":{\"type\":\"object\"}}}]},"
	"\"EventPage\":{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Event\"}}}}"
	"}";

static json_t *param(const char *name, const char *in, const char *desc, int required)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:{s:s}}", "name", name, "in", in, "description", desc,
			 "required", required, "schema", "type", "string");
}

static json_t *ref(const char *schema)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "#/components/schemas/%s", schema);
	return json_pack("{s:s}", "$ref", buf);
}

static json_t *problem_response(const char *desc)
{
	return json_pack("{s:s,s:{s:{s:o}}}", "description", desc, "content",
			 "application/problem+json", "schema", ref("Problem"));
}

static json_t *operation(const struct api_route *rt)
{
	json_t *op = json_object();
	json_object_set_new(op, "summary", json_string(rt->summary));
	json_t *params = json_array();
	if (strstr(rt->pattern, "{id}"))
		json_array_append_new(params, param("id", "path", "object id (UUID)", 1));
	if (strstr(rt->pattern, "{revision}"))
		json_array_append_new(params, param("revision", "path", "release revision number", 1));
	if (!strcmp(rt->method, "GET") && strstr(rt->pattern, "/v1/") &&
	    (!strcmp(rt->pattern, "/v1/tenants") || !strcmp(rt->pattern, "/v1/tokens") ||
	     !strcmp(rt->pattern, "/v1/clusters") || !strcmp(rt->pattern, "/v1/jobs"))) {
		json_array_append_new(params, param("limit", "query", "page size 1..200 (default 50)", 0));
		json_array_append_new(params, param("cursor", "query", "next_cursor of the previous page", 0));
	}
	if (!strcmp(rt->pattern, "/v1/clusters") && !strcmp(rt->method, "GET"))
		json_array_append_new(params, param("selector", "query",
						    "label selector: k=v, k==v, k!=v, k, !k, comma-separated", 0));
	if (!strcmp(rt->pattern, "/v1/jobs")) {
		json_array_append_new(params, param("state", "query", "queued|running|succeeded|failed|cancelled", 0));
		json_array_append_new(params, param("cluster_id", "query", "only this cluster's jobs", 0));
	}
	if (!strcmp(rt->pattern, "/v1/jobs/{id}/events")) {
		json_array_append_new(params, param("after", "query", "only events with a larger id", 0));
		json_array_append_new(params, param("limit", "query", "1..1000 (default 100)", 0));
	}
	if (!strcmp(rt->pattern, "/v1/clusters/{id}/jobs"))
		json_array_append_new(params, param("Idempotency-Key", "header",
						    "a retried POST with the same key returns the same job", 0));
	if (!strcmp(rt->pattern, "/v1/clusters/{id}") && strcmp(rt->method, "GET") != 0)
		json_array_append_new(params, param("If-Match", "header", "the ETag of a GET", 0));
	if (json_array_size(params))
		json_object_set_new(op, "parameters", params);
	else
		json_decref(params);
	if (rt->request_schema)
		json_object_set_new(op, "requestBody",
				    json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
					      "application/json", "schema", ref(rt->request_schema)));
	json_t *responses = json_object();
	char code[8];
	snprintf(code, sizeof(code), "%d", rt->success_status);
	json_t *ok = json_pack("{s:s}", "description", "success");
	if (rt->response_schema)
		json_object_set_new(ok, "content", json_pack("{s:{s:o}}", "application/json", "schema",
							     ref(rt->response_schema)));
	else if (!strcmp(rt->pattern, "/metrics"))
		json_object_set_new(ok, "content", json_pack("{s:{}}", "text/plain"));
	else if (strstr(rt->pattern, "/stream"))
		json_object_set_new(ok, "content", json_pack("{s:{}}", "text/event-stream"));
	json_object_set_new(responses, code, ok);
	if (rt->scope != API_SCOPE_PUBLIC) {
		json_object_set_new(responses, "401", problem_response("missing or invalid token"));
		json_object_set_new(responses, "403", problem_response("the token's role or scope is not enough"));
	}
	if (strstr(rt->pattern, "{id}"))
		json_object_set_new(responses, "404", problem_response("no such object in the caller's tenant"));
	if (rt->request_schema)
		json_object_set_new(responses, "400", problem_response("malformed, wrongly typed or unknown fields"));
	if (!strcmp(rt->method, "POST") || !strcmp(rt->method, "DELETE") || !strcmp(rt->method, "PATCH"))
		json_object_set_new(responses, "409", problem_response("conflict with the current state"));
	json_object_set_new(op, "responses", responses);
	if (rt->scope == API_SCOPE_PUBLIC)
		json_object_set_new(op, "security", json_array());
	return op;
}

void api_openapi(struct api_req *r)
{
	json_error_t jerr;
	json_t *schemas = json_loads(schemas_json, 0, &jerr);
	if (!schemas) {
		api_problem(r, 500, "Internal error", "openapi schemas do not parse: %s", jerr.text);
		return;
	}
	json_t *paths = json_object();
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct api_route *rt = &api_routes[i];
		json_t *item = json_object_get(paths, rt->pattern);
		if (!item) {
			item = json_object();
			json_object_set_new(paths, rt->pattern, item);
		}
		char method[16];
		size_t j;
		for (j = 0; rt->method[j] && j + 1 < sizeof(method); j++)
			method[j] = (char)(rt->method[j] | 0x20);
		method[j] = '\0';
		json_object_set_new(item, method, operation(rt));
	}
	json_t *doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o,s:{s:{s:s,s:s}}},s:[{s:[]}]}",
				"openapi", "3.1.0",
				"info", "title", "ferry API", "version", "1",
				"description", "Install and upgrade Cilium on many Kubernetes clusters. "
					       "Errors are application/problem+json (RFC 9457).",
				"paths", paths,
				"components", "schemas", schemas, "securitySchemes", "bearer",
				"type", "http", "scheme", "bearer",
				"security", "bearer");
	api_reply(r, 200, doc);
}
