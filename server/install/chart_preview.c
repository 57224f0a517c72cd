/*
 * chart_preview.c: resolve, load and render the chart once in preflight
 * (chart_preview.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/chart_preview.h"
#include "server/app.h"
#include "server/chart/chart.h"
#include "server/install/chartcache.h"
#include "server/install/chartsource.h"
#include "server/install/render_guard.h"
#include "server/install/values.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum phase_rc install_chart_preview(struct install_run *run)
{
	struct runner_ctx *ctx = run->ctx;
	const char *version = install_chart_version(run->params);
	char err[1024] = "";
	struct chartsource_cfg scfg;
	struct chartsource_archive arc = { 0 };
	struct chart_ref *ref = NULL;
	struct chart_render *rd = NULL;
	json_t *values = NULL;
	enum phase_rc rc = PHASE_FAIL;
	chartsource_cfg_default(&scfg, ctx->app);
	int sst = chartsource_resolve(ctx->conn, ctx->job ? ctx->job->tenant_id : NULL, "cilium", version,
				      &scfg, &arc, err, sizeof err);
	if (sst != 0) {
		snprintf(ctx->message, sizeof ctx->message, "chart: %.500s", err);
		rc = sst == -2 ? PHASE_RETRY : PHASE_FAIL;
		goto out;
	}
	ref = chart_cache_get(ctx->app->charts, &arc, err, sizeof err);
	/* parsed (or shared): the archive bytes are not needed while the
	 * job works or queues for a render slot */
	free(arc.data);
	arc.data = NULL;
	arc.len = 0;
	if (!ref) {
		snprintf(ctx->message, sizeof ctx->message, "chart: cannot load cilium %s from %.200s: %.250s",
			 version, arc.origin, err);
		goto out;
	}
	values = install_user_values(run, NULL, err, sizeof err);
	if (!values) {
		snprintf(ctx->message, sizeof ctx->message, "values: %.500s", err);
		goto out;
	}
	const char *kube_version = json_string_value(json_object_get(run->preflight, "kube_version"));
	struct chart_render_opts ro = {
		.release_name = run->release, .namespace_ = run->ns,
		.kube_version = kube_version && *kube_version ? kube_version : NULL,
		.revision = 1,
		/* only whether it renders matters: no fresh keys for it */
		.output_discarded = 1,
	};
	/* A tenant's chart: the same budget and stop rule as the cilium phase. */
	struct render_guard guard;
	render_guard_init(&guard, ctx, &ro);
	if ((rc = render_slot_acquire(ctx)) != PHASE_OK)
		goto out;
	rd = render_guard_render(&guard, chart_ref_chart(ref), values, &ro, err, sizeof err);
	render_slot_release(ctx);
	rc = PHASE_FAIL;
	if (!rd) {
		snprintf(ctx->message, sizeof ctx->message, "chart: rendering cilium %s with these values failed: %.440s",
			 version, err);
		rc = render_guard_failed(&guard);
		goto out;
	}
	/* counted, not built: the documents' JSON would only be thrown away */
	size_t objects = chart_render_document_count(rd);
	json_object_set_new(ctx->detail, "chart", json_pack("{s:s, s:s, s:s, s:I}", "version", version,
		"source", arc.origin, "sha256", arc.sha256, "objects", (json_int_t)objects));
	runner_event(ctx, "info", "chart cilium %s from %s renders %zu objects", version, arc.origin, objects);
	rc = PHASE_OK;
out:
	chart_render_free(rd);
	chart_cache_put(ctx->app->charts, ref);
	json_decref(values);
	chartsource_archive_clear(&arc);
	return rc;
}
