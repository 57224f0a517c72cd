/*
 * fuzz_inflater: differential target for the raw-DEFLATE decoder
 * (server/chart/inflater.h) against zlib's raw inflate (windowBits -15).
 * Both decode the input (after a gzip member header, when the input starts
 * with one: the shared chart archives are seeds); they must both fail, or
 * both succeed with the same bytes and the same input length used;
 * otherwise abort(). The input's length picks how ours is driven: in one
 * call, with a small soft limit, with a buffer growing a few bytes at a time
 * (and moving), with the portable fast loop, or behind 40000 bytes of
 * earlier output that back-references must not reach (hist_start).
 */
#include "server/chart/archive.h"
#include "server/chart/inflater.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *fuzz_name = "fuzz_inflater";
const char *const fuzz_dictionary[] = {
	"\x00\x00\xff\xff", "\x01\x00\xfe\xff", "\x03", "\x01", "\x05", "\x04", "\xed\xbd", "\xec\xbd", "\xff\xff",
	"\x00\x00\x00\x00", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", NULL,
};

/* a bound on the output of both: a corrupted stream can expand 1000-fold */
#define LIMIT (4u << 20)

/* 1 ok, 0 failed, 2 too big; output in *out (malloc'd) */
static int with_zlib(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen, size_t *used)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, -15) != Z_OK)
		abort();
	unsigned char *o = malloc(LIMIT + 1);
	if (!o)
		abort();
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (unsigned)len;
	zs.next_out = o;
	zs.avail_out = LIMIT + 1;
	int rc = inflate(&zs, Z_FINISH);
	*outlen = LIMIT + 1 - zs.avail_out;
	*used = len - zs.avail_in;
	inflateEnd(&zs);
	*out = o;
	if (*outlen > LIMIT)
		return 2;
	return rc == Z_STREAM_END;
}

static int with_inflater(const unsigned char *in, size_t len, int mode, unsigned char **out, size_t *outlen,
			 size_t *used)
{
	struct inflater z;
	inflater_init(&z, in, len);
	size_t pre = mode == 4 ? 40000 : 0;
	size_t cap = mode == 2 ? 3 : pre + LIMIT + 1, olen = pre;
	unsigned char *o = malloc(cap);
	if (!o)
		abort();
	memset(o, 'p', pre);
	int rc, res;
	inflater_force_generic(mode == 3);
	for (;;) {
		size_t limit = mode == 1 ? olen + 1 + olen % 97 : SIZE_MAX;
		rc = inflater_run(&z, o, &olen, cap, pre, limit);
		if (olen - pre > LIMIT) {
			res = 2;
			break;
		}
		if (rc == INFLATER_DONE || rc == INFLATER_ERROR) {
			res = rc == INFLATER_DONE;
			break;
		}
		if (rc == INFLATER_FULL) {
			size_t ncap = cap + 1 + cap / 3;
			unsigned char *n = malloc(ncap);
			if (!n)
				abort();
			memcpy(n, o, olen);
			free(o);
			o = n;
			cap = ncap;
		}
	}
	inflater_force_generic(0);
	*used = res == 1 ? inflater_in_used(&z) : 0;
	memmove(o, o + pre, olen - pre);
	*out = o;
	*outlen = olen - pre;
	return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hl = archive_gzip_header_len(data, size);
	const unsigned char *in = data + hl;
	size_t len = size - hl;
	unsigned char *a, *b;
	size_t al, bl, au, bu;
	int ra = with_zlib(in, len, &a, &al, &au);
	int rb = with_inflater(in, len, (int)(size % 5), &b, &bl, &bu);
	if (ra == 2 || rb == 2) {
		/* both went past the bound, identically so far */
		if (ra != rb || memcmp(a, b, LIMIT)) {
			fprintf(stderr, "fuzz_inflater: output bound: zlib %d, inflater %d\n", ra, rb);
			abort();
		}
	} else if (ra != rb) {
		fprintf(stderr, "fuzz_inflater: zlib %s, inflater %s\n", ra ? "succeeds" : "fails",
			rb ? "succeeds" : "fails");
		abort();
	} else if (ra == 1 && (al != bl || au != bu || memcmp(a, b, al))) {
		fprintf(stderr, "fuzz_inflater: outputs differ: %zu/%zu bytes, input used %zu/%zu\n", al, bl, au, bu);
		abort();
	}
	free(a);
	free(b);
	return 0;
}
