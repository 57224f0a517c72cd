/*
 * install/phase_preflight: the preflight connection step (phase_preflight),
 * run alone by a preflight job with params.connection_only and first by the
 * install's preflight phase (phase_preflight_checks.c).
 *
 * Connection step: reach the cluster's API server with its stored CA and
 * credentials, read GET /version and count the nodes (GET /api/v1/nodes,
 * paginated with limit/continue), store kube_version, node_count and
 * last_contact_at on the cluster row (only while this worker's lease is
 * current; with the phase's end record, runner_defer_write), and put them
 * into the job result. Failures are classified so
 * the user learns what to fix: TLS problems and 401/403 fail the job at
 * once (retrying cannot help); network errors, timeouts, 429 and 5xx are
 * retried with backoff by the runner. While it waits for the API server a
 * pooled runner's database connection is back in the pool (get_lending).
 *
 * The read-only checks of SPEC.md §2.1 (version floor, VPC-CNI, existing
 * Cilium, nodes, OS images, ...) are in phase_preflight_checks.c and
 * preflight_rules.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"
#include "server/install/runner.h"
#include "server/kube/client.h"
#include "server/kube/memo.h"

/* Map a response to a phase outcome with a message; PHASE_OK for 2xx. */
static enum phase_rc classify(struct runner_ctx *ctx, const char *what, int rc,
			      const struct kube_response *resp)
{
	char desc[300];
	kube_response_describe(resp, desc, sizeof(desc));
	if (rc < 0) {
		int tls = !strncmp(resp->error, "TLS error", 9);
		snprintf(ctx->message, sizeof(ctx->message), "cannot reach the API server (%s): %s%s", what,
			 desc, tls ? " (check the CA bundle and the server name)" : "");
		return tls ? PHASE_FAIL : PHASE_RETRY;
	}
	if (resp->status >= 200 && resp->status < 300)
		return PHASE_OK;
	if (resp->status == 401 || resp->status == 403) {
		snprintf(ctx->message, sizeof(ctx->message),
			 "the API server refused the stored credentials (%s): %s; check the cluster's token or client certificate",
			 what, desc);
		return PHASE_FAIL;
	}
	snprintf(ctx->message, sizeof(ctx->message), "%s failed: %s", what, desc);
	if (resp->status == 429 || resp->status >= 500) {
		if (resp->retry_after > 0)
			ctx->retry_after_ms = resp->retry_after * 1000;
		return PHASE_RETRY;
	}
	return PHASE_FAIL;
}

/* A GET that may wait on a slow API server: a pooled runner's database
 * connection goes back to the pool meanwhile (as for a rollout wait,
 * runner_sleep), so jobs waiting on slow clusters do not hold the pool's
 * connections; not while a transaction block is open on it. */
static int get_lending(struct runner_ctx *ctx, struct kube_client *kc, const char *path,
		       struct kube_response *resp)
{
	int lent = PQtransactionStatus(ctx->conn) == PQTRANS_IDLE && runner_lend_conn(ctx, 0);
	int rc = kube_get(kc, path, resp);
	if (lent)
		runner_take_conn(ctx);
	return rc;
}

static enum phase_rc count_nodes(struct runner_ctx *ctx, struct kube_client *kc, long *count)
{
	char *cont = NULL;
	enum phase_rc prc = PHASE_OK;
	*count = 0;
	for (int page = 0; page < 10000; page++) {
		struct buf path = BUF_INIT;
		buf_puts(&path, "/api/v1/nodes?limit=500");
		if (cont) {
			buf_puts(&path, "&continue=");
			for (const unsigned char *p = (const unsigned char *)cont; *p; p++) {
				if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
				    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
					buf_putc(&path, (char)*p);
				else
					buf_printf(&path, "%%%02X", *p);
			}
		}
		struct kube_response resp;
		int rc = get_lending(ctx, kc, buf_cstr(&path), &resp);
		prc = classify(ctx, "GET /api/v1/nodes", rc, &resp);
		/* The preflight checks read the same page next (kube/memo.h). */
		if (prc == PHASE_OK && resp.status == 200)
			kube_memo_put(kube_client_memo(kc), buf_cstr(&path), 200, kube_response_json(&resp));
		buf_free(&path);
		if (prc == PHASE_OK) {
			json_t *items = json_object_get(kube_response_json(&resp), "items");
			if (!json_is_array(items) && !json_is_null(items) && items) {
				snprintf(ctx->message, sizeof(ctx->message), "GET /api/v1/nodes: the answer is not a list");
				prc = PHASE_FAIL;
			} else {
				*count += (long)json_array_size(items);
				const char *c = json_string_value(json_object_get(
					json_object_get(kube_response_json(&resp), "metadata"), "continue"));
				free(cont);
				cont = c && *c ? xstrdup(c) : NULL;
			}
		}
		kube_response_free(&resp);
		if (prc != PHASE_OK || !cont)
			break;
	}
	free(cont);
	return prc;
}

enum phase_rc phase_preflight(struct runner_ctx *ctx)
{
	struct kube_client *kc = runner_kube(ctx);
	if (!kc)
		return PHASE_FAIL;

	struct kube_response resp;
	int rc = get_lending(ctx, kc, "/version", &resp);
	enum phase_rc prc = classify(ctx, "GET /version", rc, &resp);
	char version[128] = "";
	if (prc == PHASE_OK) {
		const char *v = json_string_value(json_object_get(kube_response_json(&resp), "gitVersion"));
		if (!v) {
			snprintf(ctx->message, sizeof(ctx->message),
				 "GET /version did not return a Kubernetes version (is this an API server?)");
			prc = PHASE_FAIL;
		} else {
			snprintf(version, sizeof(version), "%s", v);
			kube_memo_put(kube_client_memo(kc), "/version", 200, kube_response_json(&resp));
		}
	}
	kube_response_free(&resp);
	if (prc != PHASE_OK)
		return prc;
	/* With the phase's end (a short phase: no write of its own). */
	runner_note(ctx, "info", "connected: Kubernetes %s", version);

	long nodes = 0;
	prc = count_nodes(ctx, kc, &nodes);
	if (prc != PHASE_OK)
		return prc;

	char tok[32], count[32];
	snprintf(tok, sizeof(tok), "%lld", ctx->job->lease_token);
	snprintf(count, sizeof(count), "%ld", nodes);
	const char *params[5] = { ctx->job->cluster_id, ctx->job->id, tok, version, count };
	/* The facts the phase observed commit with its end record (the same
	 * transaction, no round trip of their own), and only while this
	 * worker's lease is current. */
	runner_defer_write(ctx,
		"UPDATE clusters SET kube_version = $4, node_count = $5::int, last_contact_at = now() "
		"WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM jobs WHERE id = $2::uuid "
		"  AND lease_token = $3::bigint AND state = 'running' FOR SHARE)",
		5, params);

	json_object_set_new(ctx->detail, "kube_version", json_string(version));
	json_object_set_new(ctx->detail, "node_count", json_integer(nodes));
	json_object_set_new(ctx->result, "kube_version", json_string(version));
	json_object_set_new(ctx->result, "node_count", json_integer(nodes));
	snprintf(ctx->message, sizeof(ctx->message), "Kubernetes %s, %ld node%s", version, nodes,
		 nodes == 1 ? "" : "s");
	return PHASE_OK;
}
