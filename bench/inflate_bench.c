/*
 * inflate_bench: decompress chart archives with zlib's raw inflate and with
 * libdeflate's (what server/chart/archive.c uses), interleaved in one run,
 * and print the median time of each and the ratio. Both outputs are
 * compared, so a wrong decoder cannot look fast.
 *
 * Usage: inflate_bench [-n RUNS] [-m zlib|libdeflate|both] [FILE.tgz]...
 * Without files: every .tgz in $FERRY_SHARED/charts (default ../shared).
 * -m zlib / -m libdeflate run only one decoder (for callgrind: -n 1).
 */
#define _GNU_SOURCE
#include "server/chart/archive.h"
#include "server/common/buf.h"

#include <dirent.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}


static int run_zlib(z_stream *zs, const unsigned char *in, size_t inlen, unsigned char *out, size_t cap, size_t *outlen)
{
	inflateReset(zs);
	zs->next_in = (Bytef *)in;
	zs->avail_in = (uInt)inlen;
	zs->next_out = out;
	zs->avail_out = (uInt)cap;
	int rc = inflate(zs, Z_FINISH);
	*outlen = cap - zs->avail_out;
	return rc == Z_STREAM_END ? 0 : -1;
}

static int run_libdeflate(struct libdeflate_decompressor *d, const unsigned char *in, size_t inlen,
			  unsigned char *out, size_t cap, size_t *outlen)
{
	size_t used;
	return libdeflate_deflate_decompress_ex(d, in, inlen, out, cap, &used, outlen) == LIBDEFLATE_SUCCESS ? 0 : -1;
}

static int bench_file(const char *path, int runs, const char *mode)
{
	size_t len;
	unsigned char *data = (unsigned char *)read_file_all(path, &len);
	if (!data) {
		fprintf(stderr, "inflate_bench: cannot read %s\n", path);
		return -1;
	}
	size_t off = archive_gzip_header_len(data, len);
	if (!off || len - off < 8) {
		fprintf(stderr, "inflate_bench: %s: not a gzip file\n", path);
		free(data);
		return -1;
	}
	size_t isize = (size_t)data[len - 4] | (size_t)data[len - 3] << 8 | (size_t)data[len - 2] << 16 |
		       (size_t)data[len - 1] << 24;
	size_t cap = isize + 65536;
	unsigned char *o1 = xmalloc(cap), *o2 = xmalloc(cap);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	inflateInit2(&zs, -15);
	struct libdeflate_decompressor *z = libdeflate_alloc_decompressor();
	double *tz = xcalloc((size_t)runs, sizeof(double)), *tf = xcalloc((size_t)runs, sizeof(double));
	int do_z = strcmp(mode, "libdeflate") != 0, do_f = strcmp(mode, "zlib") != 0;
	size_t l1 = 0, l2 = 0;
	int bad = 0;
	for (int r = 0; r < runs; r++) {
		/* alternate which goes first, against drift */
		for (int k = 0; k < 2; k++) {
			int zl = (k == 0) == (r % 2 == 0);
			if (zl && do_z) {
				double t = now();
				bad |= run_zlib(&zs, data + off, len - off, o1, cap, &l1);
				tz[r] = now() - t;
			} else if (!zl && do_f) {
				double t = now();
				bad |= run_libdeflate(z, data + off, len - off, o2, cap, &l2);
				tf[r] = now() - t;
			}
		}
	}
	if (do_z && do_f && (l1 != l2 || memcmp(o1, o2, l1)))
		bad = 1;
	qsort(tz, (size_t)runs, sizeof(double), cmp_double);
	qsort(tf, (size_t)runs, sizeof(double), cmp_double);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	double mz = tz[runs / 2] * 1e3, mf = tf[runs / 2] * 1e3;
	printf("%-20s %7zu -> %8zu bytes  zlib %7.3f ms  libdeflate %7.3f ms  ratio %.2fx%s\n", base, len, do_f ? l2 : l1,
	       mz, mf, do_z && do_f && mf > 0 ? mz / mf : 0.0, bad ? "  MISMATCH/ERROR" : "");
	inflateEnd(&zs);
	libdeflate_free_decompressor(z);
	free(tz);
	free(tf);
	free(o1);
	free(o2);
	free(data);
	return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
	int runs = 201, rc = 0, files = 0;
	const char *mode = "both";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			runs = atoi(argv[++i]);
			if (runs < 1)
				runs = 1;
		} else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			mode = argv[++i];
		} else {
			files++;
			if (bench_file(argv[i], runs, mode))
				rc = 1;
		}
	}
	if (!files) {
		const char *shared = getenv("FERRY_SHARED");
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/charts", shared && *shared ? shared : "../shared");
		struct dirent **names;
		int n = scandir(dir, &names, NULL, alphasort);
		if (n < 0) {
			fprintf(stderr, "inflate_bench: cannot list %s\n", dir);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			size_t l = strlen(names[i]->d_name);
			if (l > 4 && !strcmp(names[i]->d_name + l - 4, ".tgz")) {
				char p[2048];
				snprintf(p, sizeof(p), "%s/%s", dir, names[i]->d_name);
				if (bench_file(p, runs, mode))
					rc = 1;
			}
			free(names[i]);
		}
		free(names);
	}
	return rc;
}
