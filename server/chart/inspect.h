/*
 * chart/inspect: the structural check of a chart archive, the first line
 * of defence against hostile uploads (the upload handler api/charts.c and
 * every source of install/chartsource.h run it before anything else).
 *
 * chart_inspect() checks that bytes are a Helm chart archive without
 * unpacking anything to disk: gzip around a ustar/pax/GNU tar whose
 * entries all live under one top-level directory, with no absolute paths,
 * no "..", no links or device nodes, bounded entry count and sizes (a gzip
 * bomb stops at CHART_INSPECT_MAX_UNPACKED), and a <dir>/Chart.yaml whose
 * name equals the directory and whose version is a SemVer 2 string. It
 * does not render: chart_load_archive() (chart.h) loads the chart later.
 *
 * No I/O; thread-safe. The one piece of shared state is a small memo
 * (8 entries, under a mutex) of the SHA-256 and info of archives that
 * passed: the check depends on the bytes alone, and every install job
 * inspects the same chart twice.
 */
#ifndef FERRY_CHART_INSPECT_H
#define FERRY_CHART_INSPECT_H

#include <stddef.h>

/* Limits of an archive (compressed input, unpacked tar stream, entries,
 * one file, Chart.yaml). */
#define CHART_INSPECT_MAX_ARCHIVE   (16u * 1024 * 1024)
#define CHART_INSPECT_MAX_UNPACKED  (64u * 1024 * 1024)
#define CHART_INSPECT_MAX_ENTRIES   5000
#define CHART_INSPECT_MAX_FILE      (8u * 1024 * 1024)
#define CHART_INSPECT_MAX_CHART_YAML (256u * 1024)

struct chart_inspect_info {
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
int chart_inspect(const void *data, size_t len, struct chart_inspect_info *info,
		  char *err, size_t errlen);

/* 1 when s is a SemVer 2 version (optional leading "v" not allowed). */
int chart_semver_ok(const char *s);
/* 1 when s is an acceptable chart name: [a-z0-9]([-a-z0-9_.]*[a-z0-9])?, 1-63. */
int chart_name_ok(const char *s);

#endif
