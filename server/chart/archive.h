/*
 * archive: read a chart .tgz (gzip + ustar/pax/GNU tar) into memory.
 * Internal to server/chart.
 *
 * Every regular file becomes an entry named by its path with the first
 * component (the chart directory) stripped. Links, devices, absolute paths,
 * ".." components, oversized files/archives and too many entries are
 * rejected with a clear message. Memory: archive_free() releases entries.
 * Thread-safe (no shared state).
 */
#ifndef FERRY_CHART_ARCHIVE_H
#define FERRY_CHART_ARCHIVE_H

#include <stddef.h>

struct archive_entry {
	char *name;     /* path inside the chart, e.g. "templates/x.yaml" */
	char *data;     /* NUL-terminated */
	size_t len;
};

struct archive {
	struct archive_entry *e;
	size_t n;
	char *top;      /* the stripped first component (chart directory) */
};

int archive_read_tgz(const void *data, size_t len, struct archive *out, char *err, size_t errlen);
void archive_free(struct archive *a);

#endif
