/*
 * archive.c: gunzip (libdeflate), then walk the tar headers (see archive.h).
 *
 * Decompression never writes past the total-size limit, so a gzip bomb
 * costs at most CHART_MAX_TOTAL_SIZE bytes of memory (see inflate_member).
 * Headers are checked (checksum, octal fields); pax 'path' records and GNU
 * long names are honoured; anything but regular files and directories is
 * refused. Entries are not copied out: their data stay in the one
 * decompressed buffer (archive.blob), each terminated in place.
 */
#define _GNU_SOURCE
#include "server/chart/archive.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"

#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* whoever watches the entries appear (archive_read_tgz_progress) */
struct watch {
	archive_entry_fn fn;      /* NULL once told the buffer moves or goes */
	void *ctx;
	int progress;             /* still wants entries */
	size_t off;               /* next tar header to look at */
};

static int octal(const char *p, size_t n, unsigned long long *v);

/* tell the watcher the buffer is about to move or go away; no more calls.
 * This holds even after it stopped wanting entries: work it started on
 * the bytes may still be running. */
static void unwatch(struct watch *w)
{
	if (w->fn) {
		w->fn(w->ctx, NULL, NULL, 0);
		w->fn = NULL;
	}
}

/* report the plain entries now complete in tar[0..len); the full walk in
 * archive_read_tgz_progress checks everything again afterwards */
static void watch_entries(struct watch *w, const char *tar, size_t len)
{
	while (w->fn && w->progress && w->off + 512 <= len) {
		const char *h = tar + w->off;
		char type = h[156];
		unsigned long long size;
		if ((type != '0' && type != 0) || h[345] || !memchr(h, 0, 100) ||
		    octal(h + 124, 12, &size) || size > CHART_MAX_FILE_SIZE) {
			w->progress = 0;  /* end of archive, or not a plain file */
			return;
		}
		if (w->off + 512 + size > len)
			return;           /* wait for the whole entry */
		const char *slash = strchr(h, '/');
		if (slash && slash != h && slash[1] && w->fn(w->ctx, slash + 1, h + 512, (size_t)size))
			w->progress = 0;
		w->off += 512 + ((size + 511) / 512) * 512;
	}
}

/*
 * Length of the gzip member header at p (RFC 1952), 0 when it is not one
 * or is cut short. Only deflate members are accepted.
 */
size_t archive_gzip_header_len(const unsigned char *p, size_t n)
{
	if (n < 10 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || (p[3] & 0xe0))
		return 0;
	unsigned flags = p[3];
	size_t i = 10;
	if (flags & 4) {            /* FEXTRA */
		if (i + 2 > n)
			return 0;
		size_t xl = (size_t)p[i] | (size_t)p[i + 1] << 8;
		i += 2 + xl;
	}
	for (unsigned f = 8; f <= 16; f <<= 1)   /* FNAME, FCOMMENT */
		if (flags & f) {
			while (i < n && p[i])
				i++;
			i++;
		}
	if (flags & 2)              /* FHCRC */
		i += 2;
	return i <= n ? i : 0;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Fault in the pages of out up to byte `upto` in one call before the
 * decoder writes them: about half the cost of taking the page faults one
 * by one (1.6 MB of tar is 400 pages). Only a hint; small buffers are left
 * alone.
 */
static void prefault(struct buf *out, size_t upto)
{
#ifdef MADV_POPULATE_WRITE
	const uintptr_t page = 4096;
	if (out->cap < 262144)
		return;
	if (upto > out->cap)
		upto = out->cap;
	uintptr_t from = ((uintptr_t)out->data + out->len + page - 1) & ~(page - 1);
	uintptr_t to = ((uintptr_t)out->data + upto) & ~(page - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#else
	(void)out;
	(void)upto;
#endif
}

/*
 * Inflate one raw DEFLATE stream at in[0..len) with libdeflate, appending
 * to out, at most `room` bytes. libdeflate decodes a whole buffer at once
 * and must be given room for the whole output, so the first try gets
 * `guess` bytes (the gzip size field, exact for a one-member archive, or a
 * multiple of the input) and each later try twice as much, up to `room`:
 * a stream that does not fit in `room` is refused (*too_big), so a gzip
 * bomb costs at most `room` bytes of memory and about twice that of
 * decoding. Returns 0 (*used = input bytes the stream took) or -1.
 */
static int inflate_member(struct libdeflate_decompressor *d, const unsigned char *in, size_t len,
			  struct buf *out, struct watch *w, size_t guess, size_t room, size_t *used,
			  int *too_big)
{
	size_t avail = guess < room ? guess : room;
	*too_big = 0;
	for (;;) {
		if (out->len && out->cap - out->len < avail + 1)
			unwatch(w);   /* buf_reserve is about to move what it saw */
		buf_reserve(out, avail + 1);
		/* pages the output will surely need; not all of a huge guess */
		prefault(out, out->len + (avail < 16 * len ? avail : 16 * len));
		size_t got = 0;
		enum libdeflate_result r = libdeflate_deflate_decompress_ex(
			d, in, len, out->data + out->len, avail, used, &got);
		if (r == LIBDEFLATE_SUCCESS) {
			out->len += got;
			out->data[out->len] = 0;
			return 0;
		}
		if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
			return -1;
		if (avail >= room) {
			*too_big = 1;
			return -1;
		}
		avail = avail > room / 2 ? room : avail * 2;
	}
}

/*
 * Inflate the gzip stream (one or more members). The deflate data are
 * decoded by libdeflate; the headers, CRC-32 (libdeflate's) and length
 * trailers are checked here, so the messages can say which part is wrong.
 */
static int gunzip(const void *data, size_t len, size_t max, struct buf *out, struct watch *w,
		  char *err, size_t errlen)
{
	const unsigned char *in = data;
	buf_reset(out);
	/* The gzip trailer holds the size mod 2^32 of the last member: the
	 * first guess of the output size. */
	size_t isize = len >= 18 ? le32(in + len - 4) : 0;
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	if (!d) {
		snprintf(err, errlen, "chart archive: out of memory");
		return -1;
	}
	size_t pos = 0;
	int ok = 0;
	const char *why = "not a gzip header";
	for (;;) {
		/* one member: header, deflate data, CRC-32 and length */
		size_t hl = archive_gzip_header_len(in + pos, len - pos);
		if (!hl)
			break;
		pos += hl;
		size_t start = out->len, used = 0;
		size_t guess = 4 * (len - pos);
		if (guess < isize)
			guess = isize;
		if (guess < 65536)
			guess = 65536;
		int too_big;
		if (inflate_member(d, in + pos, len - pos, out, w, guess, max - start, &used, &too_big)) {
			libdeflate_free_decompressor(d);
			if (too_big)
				snprintf(err, errlen, "chart archive: decompressed size exceeds %zu bytes", max);
			else
				snprintf(err, errlen, "chart archive: not a valid gzip stream (%s)",
					 "invalid or truncated deflate data");
			return -1;
		}
		watch_entries(w, out->data, out->len);
		pos += used;
		if (len - pos < 8) {
			why = "truncated";
			break;
		}
		uint32_t crc = libdeflate_crc32(0, out->data + start, out->len - start);
		if (le32(in + pos) != crc || le32(in + pos + 4) != (uint32_t)(out->len - start)) {
			why = le32(in + pos) != crc ? "incorrect data check" : "incorrect length check";
			break;
		}
		pos += 8;
		/* more input: another member must follow (as Go's reader wants) */
		if (pos == len) {
			ok = 1;
			break;
		}
	}
	libdeflate_free_decompressor(d);
	if (!ok) {
		snprintf(err, errlen, "chart archive: not a valid gzip stream (%s)", why);
		return -1;
	}
	return 0;
}

int archive_gunzip(const void *data, size_t len, size_t max, struct buf *out, char *err, size_t errlen)
{
	struct watch w = { NULL, NULL, 0, 0 };
	return gunzip(data, len, max, out, &w, err, errlen);
}

static int octal(const char *p, size_t n, unsigned long long *v)
{
	unsigned long long x = 0;
	size_t i = 0;
	if (n && ((unsigned char)p[0] & 0x80)) {
		/* base-256 (GNU) */
		x = (unsigned char)p[0] & 0x7f;
		for (i = 1; i < n; i++) {
			if (x > (1ULL << 50))
				return -1;
			x = (x << 8) | (unsigned char)p[i];
		}
		*v = x;
		return 0;
	}
	while (i < n && p[i] == ' ') i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (x > (1ULL << 60))
			return -1;
		x = x * 8 + (unsigned long long)(p[i] - '0');
	}
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != 0)
			return -1;
	*v = x;
	return 0;
}

static int bad_path(const char *p)
{
	if (p[0] == '/' || p[0] == '\\')
		return 1;
	const char *s = p;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return 1;
		if (memchr(s, '\\', l))
			return 1;
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

void archive_free(struct archive *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->e[i].name);
	free(a->blob);
	free(a->e);
	free(a->top);
	memset(a, 0, sizeof(*a));
}

/* parse pax records for "path" */
static char *pax_path(const char *d, size_t n)
{
	size_t i = 0;
	char *path = NULL;
	while (i < n) {
		size_t st = i;
		unsigned long len = 0;
		while (i < n && d[i] >= '0' && d[i] <= '9') {
			len = len * 10 + (unsigned long)(d[i] - '0');
			if (len > n) return path;
			i++;
		}
		if (len == 0 || st + len > n || i >= n || d[i] != ' ')
			return path;
		const char *kv = d + i + 1;
		size_t kvl = st + len - (i + 1);
		if (kvl > 5 && !memcmp(kv, "path=", 5)) {
			free(path);
			path = xstrndup(kv + 5, kvl - 6); /* drop trailing \n */
		}
		i = st + len;
	}
	return path;
}

int archive_read_tgz(const void *data, size_t len, struct archive *out, char *err, size_t errlen)
{
	return archive_read_tgz_progress(data, len, out, NULL, NULL, err, errlen);
}

int archive_read_tgz_progress(const void *data, size_t len, struct archive *out,
			      archive_entry_fn fn, void *ctx, char *err, size_t errlen)
{
	struct buf tar = BUF_INIT;
	struct watch w = { fn, ctx, fn != NULL, 0 };
	memset(out, 0, sizeof(*out));
	if (len < 2 || ((const unsigned char *)data)[0] != 0x1f || ((const unsigned char *)data)[1] != 0x8b) {
		snprintf(err, errlen, "chart archive: not a gzip file");
		return -1;
	}
	if (gunzip(data, len, CHART_MAX_TOTAL_SIZE, &tar, &w, err, errlen)) {
		unwatch(&w);
		buf_free(&tar);
		return -1;
	}
	size_t pos = 0, cap = 0;
	char *longname = NULL;
	int rc = -1;
	while (pos + 512 <= tar.len) {
		const char *h = tar.data + pos;
		int zero = 1;
		for (int i = 0; i < 512 && zero; i++)
			if (h[i]) zero = 0;
		if (zero)
			break;
		unsigned long long size, chk;
		if (octal(h + 124, 12, &size) || octal(h + 148, 8, &chk)) {
			snprintf(err, errlen, "chart archive: corrupt tar header at offset %zu", pos);
			goto out;
		}
		/* the checksum counts its own 8-byte field as spaces */
		unsigned sum = 0;
		for (int i = 0; i < 512; i++)
			sum += (unsigned char)h[i];
		for (int i = 148; i < 156; i++)
			sum -= (unsigned char)h[i];
		sum += 8 * ' ';
		if (sum != chk) {
			snprintf(err, errlen, "chart archive: tar header checksum mismatch at offset %zu", pos);
			goto out;
		}
		char type = h[156];
		size_t dpos = pos + 512;
		if (size > tar.len || dpos + size > tar.len) {
			snprintf(err, errlen, "chart archive: truncated tar entry at offset %zu", pos);
			goto out;
		}
		size_t next = dpos + (size_t)((size + 511) / 512 * 512);
		char name[512];
		if (longname) {
			snprintf(name, sizeof(name), "%s", longname);
			free(longname);
			longname = NULL;
		} else {
			char nm[101], pfx[156];
			memcpy(nm, h, 100);
			nm[100] = 0;
			memcpy(pfx, h + 345, 155);
			pfx[155] = 0;
			if (!memcmp(h + 257, "ustar", 5) && pfx[0])
				snprintf(name, sizeof(name), "%s/%s", pfx, nm);
			else
				snprintf(name, sizeof(name), "%s", nm);
		}
		if (type == 'x' || type == 'L') {
			longname = type == 'x' ? pax_path(tar.data + dpos, (size_t)size) : xstrndup(tar.data + dpos, (size_t)size);
			if (longname && strlen(longname) >= sizeof(name) - 1) {
				snprintf(err, errlen, "chart archive: path too long");
				goto out;
			}
			pos = next;
			continue;
		}
		if (type == 'g' || type == '5') {
			pos = next;
			continue;
		}
		if (type == '1' || type == '2') {
			snprintf(err, errlen, "chart archive: %s is a %s link; links are not allowed in charts", name,
				 type == '1' ? "hard" : "symbolic");
			goto out;
		}
		if (type != '0' && type != 0 && type != '7') {
			snprintf(err, errlen, "chart archive: %s has unsupported tar entry type '%c'", name, type);
			goto out;
		}
		if (bad_path(name)) {
			snprintf(err, errlen, "chart archive: illegal path %s (absolute or containing ..)", name);
			goto out;
		}
		if (size > CHART_MAX_FILE_SIZE) {
			snprintf(err, errlen, "chart archive: %s is larger than %u bytes", name, CHART_MAX_FILE_SIZE);
			goto out;
		}
		if (out->n >= CHART_MAX_ENTRIES) {
			snprintf(err, errlen, "chart archive: more than %d entries", CHART_MAX_ENTRIES);
			goto out;
		}
		/* strip the first component */
		char *p = name;
		while (*p == '.' && p[1] == '/') p += 2;
		char *slash = strchr(p, '/');
		if (!slash || !slash[1]) {
			pos = next;
			continue; /* a file at top level: ignored like Helm */
		}
		if (!out->top)
			out->top = xstrndup(p, (size_t)(slash - p));
		else if (strlen(out->top) != (size_t)(slash - p) || memcmp(out->top, p, (size_t)(slash - p))) {
			snprintf(err, errlen, "chart archive: more than one top-level directory (%s and %.*s)", out->top,
				 (int)(slash - p), p);
			goto out;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 64;
			out->e = xrealloc(out->e, cap * sizeof(*out->e));
		}
		out->e[out->n].name = xstrdup(slash + 1);
		out->e[out->n].data = tar.data + dpos;   /* NUL-terminated below */
		out->e[out->n].len = (size_t)size;
		out->n++;
		pos = next;
	}
	if (out->n == 0) {
		snprintf(err, errlen, "chart archive: no files in archive");
		goto out;
	}
	/* entries stay in the decompressed stream: terminate each one (the
	 * byte after it is tar padding, an already-read header or the
	 * buffer's own NUL) */
	for (size_t i = 0; i < out->n; i++)
		out->e[i].data[out->e[i].len] = 0;
	out->blob = tar.data;
	tar.data = NULL;
	rc = 0;
out:
	free(longname);
	if (rc)
		unwatch(&w);
	buf_free(&tar);
	if (rc)
		archive_free(out);
	return rc;
}
