/*
 * test_archive: the gzip layer of the chart archive reader
 * (server/chart/archive.h: libdeflate's raw inflate inside ferry's own gzip
 * framing, CRC and length checks, and the size limit) against zlib's
 * reading of the same bytes.
 *
 * Differential cases: the chart archives in $FERRY_SHARED/charts; buffers
 * (random, text-like, run-heavy, empty) compressed by zlib at every level,
 * strategy and window size; byte changes and truncations of a chart's
 * gzip stream. For each, archive_gunzip() and zlib's gzip inflate (member
 * after member, nothing else allowed after the last) must both refuse, or
 * both accept with the same bytes. Then the limits libdeflate makes ferry
 * handle itself (it needs the whole output's room up front): a gzip size
 * field that lies low or high still gives the right bytes, the output may
 * reach the limit exactly but not pass it, and a gzip bomb is refused.
 * The tar-level limits (entries, file size, paths) are in test_chart.
 */
#include "server/chart/archive.h"
#include "server/chart/chart.h"
#include "server/common/buf.h"
#include "tests/unit/testlib.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* $FERRY_SHARED, else ../shared beside the source tree (tests/run sets it) */
static const char *shared_dir(void)
{
	const char *s = getenv("FERRY_SHARED");
	return s && *s ? s : "../shared";
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* zlib's reading: gzip members one after another, the whole input used;
 * 0 with the bytes in out, -1 when zlib refuses */
static int zlib_gunzip(const unsigned char *in, size_t len, size_t max, struct buf *out)
{
	buf_reset(out);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	unsigned char chunk[65536];
	int rc = -1;
	for (;;) {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		int z = inflate(&zs, Z_NO_FLUSH);
		size_t got = sizeof(chunk) - zs.avail_out;
		if (out->len + got > max)
			break;
		buf_append(out, chunk, got);
		if (z == Z_STREAM_END) {
			if (zs.avail_in == 0) {
				rc = 0;
				break;
			}
			inflateReset(&zs);   /* another member must follow */
			continue;
		}
		if (z != Z_OK)
			break;
	}
	inflateEnd(&zs);
	return rc;
}

/* gzip of data[0..n) by zlib with these parameters (malloc'd) */
static unsigned char *zlib_gzip(const unsigned char *data, size_t n, int level, int wbits, int strategy,
				size_t *outlen)
{
	size_t cap = n + n / 8 + 1024;
	unsigned char *gz = malloc(cap);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, level, Z_DEFLATED, 16 + wbits, 8, strategy);
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)n;
	zs.next_out = gz;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return gz;
}

static int mismatches;

/* both refuse, or both accept the same bytes */
static void agree(const unsigned char *gz, size_t len, const char *what)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	char err[256];
	int ra = archive_gunzip(gz, len, CHART_MAX_TOTAL_SIZE, &a, err, sizeof(err));
	int rb = zlib_gunzip(gz, len, CHART_MAX_TOTAL_SIZE, &b);
	int same = ra == rb && (ra != 0 || (a.len == b.len && !memcmp(a.data, b.data, a.len)));
	if (!same && mismatches++ < 5)
		fprintf(stderr, "  %s: ferry %s (%s), zlib %s\n", what, ra ? "refused" : "accepted",
			ra ? err : "", rb ? "refused" : "accepted");
	check(same);
	if (ra)
		check(strstr(err, "chart archive: ") == err);
	buf_free(&a);
	buf_free(&b);
}

static unsigned char *read_chart(const char *name, size_t *len)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/charts/%s", shared_dir(), name);
	return (unsigned char *)read_file_all(path, len);
}

static void test_charts(void)
{
	char dir[1200];
	snprintf(dir, sizeof(dir), "%s/charts", shared_dir());
	DIR *d = opendir(dir);
	check(d != NULL);
	if (!d)
		return;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".tgz"))
			continue;
		size_t len;
		unsigned char *gz = read_chart(e->d_name, &len);
		check(gz != NULL);
		if (!gz)
			continue;
		agree(gz, len, e->d_name);
		struct archive ar;
		char err[512];
		check(archive_read_tgz(gz, len, &ar, err, sizeof(err)) == 0 && ar.n > 50);
		archive_free(&ar);
		free(gz);
		n++;
	}
	closedir(d);
	check(n >= 4);
}

static void test_levels_strategies_windows(void)
{
	size_t n = 300000;
	unsigned char *bufs[4];
	for (int k = 0; k < 4; k++)
		bufs[k] = malloc(n);
	static const char words[][8] = { "cilium", "kind", "name:", " ", "\n", "{{", "}}", "value" };
	for (size_t i = 0; i < n; i++) {
		bufs[0][i] = (unsigned char)rnd();                        /* random */
		bufs[1][i] = (unsigned char)words[rnd() % 8][i % 5] | 32; /* text-like */
		bufs[2][i] = (unsigned char)((i / 1000) & 0xff);          /* long runs */
		bufs[3][i] = (unsigned char)"abcabcabd"[i % 9];           /* short period */
	}
	static const int strategies[] = { Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED };
	for (int k = 0; k < 4; k++)
		for (int level = 0; level <= 9; level++)
			for (size_t s = 0; s < sizeof(strategies) / sizeof(strategies[0]); s++)
				for (int w = 9; w <= 15; w += 3) {
					size_t len;
					unsigned char *gz = zlib_gzip(bufs[k], n, level, w, strategies[s], &len);
					agree(gz, len, "zlib-made");
					struct buf out = BUF_INIT;
					char err[256];
					check(archive_gunzip(gz, len, n, &out, err, sizeof(err)) == 0 && out.len == n &&
					      !memcmp(out.data, bufs[k], n));
					buf_free(&out);
					free(gz);
				}
	/* empty input */
	size_t len;
	unsigned char *gz = zlib_gzip(bufs[0], 0, 6, 15, Z_DEFAULT_STRATEGY, &len);
	agree(gz, len, "empty");
	free(gz);
	for (int k = 0; k < 4; k++)
		free(bufs[k]);
}

/* byte changes and truncations of a real chart's stream: the same verdict
 * as zlib's (its gzip header is left alone: zlib checks a header CRC that
 * ferry skips, like Go's reader) */
static void test_corruption(void)
{
	size_t len;
	unsigned char *gz = read_chart("cilium-1.12.0.tgz", &len);
	check(gz != NULL);
	if (!gz)
		return;
	unsigned char *c = malloc(len);
	for (int i = 0; i < 300; i++) {
		memcpy(c, gz, len);
		size_t at = 10 + rnd() % (len - 10);
		c[at] ^= (unsigned char)(1u << (rnd() % 8));
		if (i % 3 == 0)
			c[10 + rnd() % (len - 10)] = (unsigned char)rnd();
		agree(c, len, "changed");
	}
	for (size_t cut = 0; cut < len; cut += 1 + len / 97)
		agree(gz, cut, "truncated");
	agree(gz, len - 1, "truncated by one");
	free(c);
	free(gz);
}

/* libdeflate needs the output's room up front: the size field is only a
 * guess, the limit is exact, a bomb is refused */
static void test_limits(void)
{
	size_t n = 1u << 20, len;
	unsigned char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)("ferry"[i % 5] + (i >> 12 & 3));
	unsigned char *gz = zlib_gzip(data, n, 9, 15, Z_DEFAULT_STRATEGY, &len);
	struct buf out = BUF_INIT;
	char err[256];
	/* the size field lies low (grow and retry), high (room never used) */
	static const uint32_t lies[] = { 0, 1, 65536, 100u << 20, 0xffffffffu };
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		unsigned char *l = malloc(len);
		memcpy(l, gz, len);
		memcpy(l + len - 4, (unsigned char[4]){ (unsigned char)lies[i], (unsigned char)(lies[i] >> 8),
							(unsigned char)(lies[i] >> 16), (unsigned char)(lies[i] >> 24) }, 4);
		/* decoded right, then refused by the length check */
		check(archive_gunzip(l, len, CHART_MAX_TOTAL_SIZE, &out, err, sizeof(err)) != 0 &&
		      strstr(err, "incorrect length check"));
		free(l);
	}
	/* the limit: exactly n is fine, n - 1 is not */
	check(archive_gunzip(gz, len, n, &out, err, sizeof(err)) == 0 && out.len == n &&
	      !memcmp(out.data, data, n));
	check(archive_gunzip(gz, len, n - 1, &out, err, sizeof(err)) != 0 &&
	      strstr(err, "decompressed size exceeds"));
	free(gz);
	/* a bomb: 200 MiB of zeros (about 200 KB compressed) */
	size_t big = 200u << 20;
	unsigned char *zeros = calloc(1, big);
	gz = zlib_gzip(zeros, big, 9, 15, Z_DEFAULT_STRATEGY, &len);
	free(zeros);
	check(len < big / 500);
	check(archive_gunzip(gz, len, CHART_MAX_TOTAL_SIZE, &out, err, sizeof(err)) != 0 &&
	      strstr(err, "decompressed size exceeds"));
	struct archive ar;
	check(archive_read_tgz(gz, len, &ar, err, sizeof(err)) != 0 && strstr(err, "decompressed size exceeds"));
	free(gz);
	buf_free(&out);
	free(data);
}

/* the entry watcher (chart_load_archive's early parsing) sees every plain
 * entry of a one-member archive, and is told before a second member makes
 * the buffer move */
struct seen { int n, unwatched; };

static int on_entry(void *ctx, const char *name, const char *data, size_t len)
{
	struct seen *s = ctx;
	(void)data;
	(void)len;
	if (!name)
		s->unwatched++;
	else
		s->n++;
	return 0;
}

static void test_watcher(void)
{
	size_t len;
	unsigned char *gz = read_chart("cilium-1.18.3.tgz", &len);
	check(gz != NULL);
	if (!gz)
		return;
	struct archive a, b;
	struct seen s = { 0, 0 };
	char err[512];
	check(archive_read_tgz_progress(gz, len, &a, on_entry, &s, err, sizeof(err)) == 0);
	check(a.n > 100 && s.n > 10 && s.unwatched == 0);
	/* the same member followed by an empty one: the size field read is
	 * the empty member's (0), the first guess is too small */
	static const unsigned char empty_member[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	unsigned char *two = malloc(len + sizeof(empty_member));
	memcpy(two, gz, len);
	memcpy(two + len, empty_member, sizeof(empty_member));
	s.n = s.unwatched = 0;
	check(archive_read_tgz_progress(two, len + sizeof(empty_member), &b, on_entry, &s, err, sizeof(err)) == 0);
	check(b.n == a.n && s.n > 10);
	for (size_t i = 0; i < a.n && i < b.n; i++)
		check(!strcmp(a.e[i].name, b.e[i].name) && a.e[i].len == b.e[i].len &&
		      !memcmp(a.e[i].data, b.e[i].data, a.e[i].len));
	archive_free(&a);
	archive_free(&b);
	free(two);
	free(gz);
}

int main(void)
{
	test_run("archive_gunzip_charts_vs_zlib", test_charts);
	test_run("archive_gunzip_levels_strategies_windows_vs_zlib", test_levels_strategies_windows);
	test_run("archive_gunzip_corruption_vs_zlib", test_corruption);
	test_run("archive_gunzip_limits", test_limits);
	test_run("archive_entry_watcher", test_watcher);
	return test_summary();
}
