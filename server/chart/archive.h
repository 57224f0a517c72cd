/*
 * archive: read a chart .tgz (gzip + ustar/pax/GNU tar) into memory.
 * Internal to server/chart.
 *
 * Every regular file becomes an entry named by its path with the first
 * component (the chart directory) stripped. Links, devices, absolute paths,
 * ".." components, oversized files/archives and too many entries are
 * rejected with a clear message. Memory: archive_free() releases entries
 * (names and the one blob holding their data).
 * Thread-safe (no shared state).
 */
#ifndef FERRY_CHART_ARCHIVE_H
#define FERRY_CHART_ARCHIVE_H

#include <stddef.h>

struct archive_entry {
	char *name;     /* path inside the chart, e.g. "templates/x.yaml" */
	char *data;     /* NUL-terminated, inside blob (not freed alone) */
	size_t len;
};

struct archive {
	struct archive_entry *e;
	size_t n;
	char *top;      /* the stripped first component (chart directory) */
	char *blob;     /* the decompressed tar stream holding every entry's
			 * data; a caller may take it over (set it NULL) */
};

int archive_read_tgz(const void *data, size_t len, struct archive *out, char *err, size_t errlen);
/* Same, calling fn(ctx, name, data, len) on the calling thread for each
 * file entry once it is inflated (name: as in struct archive_entry, valid
 * only during the call; data: not NUL-terminated), until fn returns
 * nonzero. libdeflate inflates a gzip member at once, so the entries of a
 * member are reported together when it is done, before the tar walk and
 * its checks: for starting work on them, possibly on other threads, while
 * the rest of the archive is checked. Only plain ustar
 * entries are reported; the reports simply stop at anything else (pax
 * records, long names). The data stay where they are (they become the blob
 * on success) unless the buffer has to move or is freed (a failure); before
 * that happens fn is called once more with name == NULL, after which it
 * must not touch the data any more. */
typedef int (*archive_entry_fn)(void *ctx, const char *name, const char *data, size_t len);
int archive_read_tgz_progress(const void *data, size_t len, struct archive *out,
			      archive_entry_fn fn, void *ctx, char *err, size_t errlen);
void archive_free(struct archive *a);
/* The gzip layer alone: inflate every member of data[0..len) into out
 * (reset first), at most max bytes. 0, or -1 with a message in err ("...
 * decompressed size exceeds N bytes", "... not a valid gzip stream (why)").
 * out is the caller's (buf_free). */
struct buf;
int archive_gunzip(const void *data, size_t len, size_t max, struct buf *out, char *err, size_t errlen);
/* Length of the gzip member header at p[0..n) (RFC 1952: deflate only, no
 * reserved flags), 0 when it is not one or is cut short. */
size_t archive_gzip_header_len(const unsigned char *p, size_t n);

#endif
