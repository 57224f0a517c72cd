/*
 * install/chartsource: where a chart archive comes from (SPEC §5), and the
 * first line of defence against hostile archives.
 *
 * chartsource_inspect() checks that bytes are a Helm chart archive without
 * unpacking anything to disk: gzip (zlib) around a ustar/pax/GNU tar whose
 * entries all live under one top-level directory, with no absolute paths,
 * no "..", no links or device nodes, bounded entry count and sizes (a gzip
 * bomb stops at CHARTSOURCE_MAX_UNPACKED), and a <dir>/Chart.yaml whose
 * name equals the directory and whose version is a SemVer 2 string. It is
 * the validation of uploads until the chart engine's chart_load_archive()
 * is wired in as well (it does not replace it: it does not render).
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

#include <libpq-fe.h>
#include <stddef.h>

struct app;

/* Limits of an archive (compressed input, unpacked tar stream, entries,
 * one file, Chart.yaml). */
#define CHARTSOURCE_MAX_ARCHIVE   (16u * 1024 * 1024)
#define CHARTSOURCE_MAX_UNPACKED  (64u * 1024 * 1024)
#define CHARTSOURCE_MAX_ENTRIES   5000
#define CHARTSOURCE_MAX_FILE      (8u * 1024 * 1024)
#define CHARTSOURCE_MAX_CHART_YAML (256u * 1024)
/* index.yaml of a repository (the real cilium index is several MB). */
#define CHARTSOURCE_MAX_INDEX     (32u * 1024 * 1024)

struct chartsource_info {
	char name[64];         /* Chart.yaml name (= the top-level directory) */
	char version[64];      /* Chart.yaml version (SemVer 2) */
	char app_version[64];  /* Chart.yaml appVersion, "" when absent */
	char api_version[8];   /* "v1" | "v2" */
	long files;            /* regular files in the archive */
	long long unpacked;    /* bytes of the unpacked tar stream */
};

/* 0 when data is an acceptable chart archive (info filled), -1 with a
 * one-line reason in err ("not a gzip stream", "entry ../x escapes the
 * chart directory", ...). */
int chartsource_inspect(const void *data, size_t len, struct chartsource_info *info,
			char *err, size_t errlen);

/* 1 when s is a SemVer 2 version (optional leading "v" not allowed). */
int chartsource_semver_ok(const char *s);
/* 1 when s is an acceptable chart name: [a-z0-9]([-a-z0-9_.]*[a-z0-9])?, 1-63. */
int chartsource_name_ok(const char *s);

/* Lower-case hex SHA-256 of data into out[65]. */
void chartsource_sha256_hex(const void *data, size_t len, char out[65]);

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
	struct chartsource_info info;
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
