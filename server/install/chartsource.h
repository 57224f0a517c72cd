/*
 * install/chartsource: where a chart archive comes from (SPEC §5). Every
 * archive it returns passed chart_inspect() (server/chart/inspect.h, the
 * first line of defence against hostile archives, also used by the upload
 * handler).
 *
 * chartsource_resolve() turns (tenant, chart name, version) into archive
 * bytes, trying in order:
 *   1. the tenant's uploaded charts (table charts, db/charts.h);
 *   2. the configured Helm repositories, mirror first: GET <repo>/index.yaml,
 *      entries.<name>[] with that version, download urls[0] (absolute, or
 *      relative to the repository URL), check its sha256 digest when the
 *      index gives one, and inspect it;
 *   3. the local directory (FERRY_CHARTS_DIR, default ../shared/charts),
 *      file <name>-<version>.tgz.
 * Each source that does not have it adds a line to the error, so a failure
 * says where ferry looked.
 *
 * Memory: out->data is malloc'd and owned by the caller
 * (chartsource_archive_clear). Thread-safe: no shared state (libcurl easy
 * handles are per call; curl_global_init is the process's business).
 */
#ifndef FERRY_INSTALL_CHARTSOURCE_H
#define FERRY_INSTALL_CHARTSOURCE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "server/chart/inspect.h"

struct app;

/* index.yaml of a repository (the real cilium index is several MB). */
#define CHARTSOURCE_MAX_INDEX     (32u * 1024 * 1024)

struct chartsource_cfg {
	const char *repo_url;    /* FERRY_CHART_REPO_URL, NULL = none */
	const char *mirror_url;  /* FERRY_CHART_REPO_MIRROR, tried first, NULL = none */
	const char *ca_file;     /* FERRY_CHART_REPO_CA_FILE: extra trust for https, NULL = system */
	const char *charts_dir;  /* FERRY_CHARTS_DIR or app cfg; NULL = ../shared/charts */
	long timeout_ms;         /* per HTTP transfer; 0 = 60000 */
};

/* Configuration from app->cfg.charts_dir (may be NULL app) and the
 * environment variables named above. Strings are borrowed. */
void chartsource_cfg_default(struct chartsource_cfg *cfg, const struct app *app);

struct chartsource_archive {
	unsigned char *data;
	size_t len;
	char sha256[65];
	char origin[512];        /* "upload <id>", "repository <url>", "file <path>" */
	char owner_tenant[40];   /* the uploading tenant for "upload", else "" (a
				  * source every tenant shares) */
	struct chart_inspect_info info;
};
void chartsource_archive_clear(struct chartsource_archive *a);

/* Resolve (tenant_id, name, version). conn/tenant_id may be NULL (no
 * uploaded charts). 0 = found and inspected; -1 = no source has it (every
 * source's reason in err); -2 = a transient failure (database error, or
 * every configured repository unreachable / 5xx and no other source had
 * the chart): worth retrying. */
int chartsource_resolve(PGconn *conn, const char *tenant_id, const char *name,
			const char *version, const struct chartsource_cfg *cfg,
			struct chartsource_archive *out, char *err, size_t errlen);

/* struct app's chart_available (server/app.h): chartsource_resolve() of
 * chart cilium at install_chart_version(params), the archive dropped. */
int chartsource_available(const struct app *app, PGconn *conn, const char *tenant_id, const json_t *params,
			  char *version, size_t versionlen, char *err, size_t errlen);

/* Only the repository step (index.yaml, urls[0], digest). 0 = found;
 * 1 = the repository answered but has no such chart version (or a 404);
 * -1 = the repository or its archive is unusable (bad index, digest
 * mismatch, hostile archive); -2 = transport failure or 5xx/429. */
int chartsource_from_repo(const char *repo_url, const char *ca_file, long timeout_ms,
			  const char *name, const char *version,
			  struct chartsource_archive *out, char *err, size_t errlen);

/* Join a chart URL from an index with the repository URL: absolute URLs
 * stay, "/x" replaces the path, anything else is appended to the
 * repository path. malloc'd, NULL for an unusable reference. */
char *chartsource_join_url(const char *repo_url, const char *ref);

#endif
