/*
 * install/chart_preview: preflight's chart step. Before the install writes
 * anything, resolve the chart the cilium phase will install (the same
 * source order: tenant upload, Helm repository, FERRY_CHARTS_DIR), load
 * it, layer the user values and render it once, so that a chart version
 * that does not exist or values that do not render fail the job in
 * preflight with zero writes instead of in phase 4.
 *
 * The render has no live lookup (like `helm template`): the step reads
 * nothing from the cluster and writes nothing. Its output is thrown away,
 * so certificates in it are signed with the process's scratch key
 * (chart_render_opts.output_discarded) instead of fresh keys. The parsed
 * chart comes from the chart cache (chartcache.h) and the render waits for
 * a render slot (render_guard.h), as in the cilium phase.
 *
 * Thread-safety: as the runner's (one job on one worker thread).
 */
#ifndef FERRY_INSTALL_CHART_PREVIEW_H
#define FERRY_INSTALL_CHART_PREVIEW_H

#include "server/install/phases.h"

/* PHASE_OK (ctx->detail.chart = {version, source, sha256, objects}),
 * PHASE_RETRY when the chart source is unreachable, PHASE_FAIL with the
 * message naming what is missing or does not render. run->preflight must
 * hold the facts the values need (k8s_service_host/port, kube_version). */
enum phase_rc install_chart_preview(struct install_run *run);

#endif
