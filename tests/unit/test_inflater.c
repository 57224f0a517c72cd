/*
 * test_inflater: differential tests of the raw-DEFLATE decoder
 * (server/chart/inflater.h) against zlib's raw inflate (windowBits -15).
 *
 * Every stream is decoded by both; they must agree: both fail, or both
 * succeed with the same bytes and the same input length used. Streams:
 * the chart archives in $FERRY_SHARED/charts; random, text-like, run-heavy
 * and short-period buffers compressed by zlib at every level, strategy and
 * window size; hand-made streams (a small bit writer below) using the
 * longest length and distance and breaking each rule zlib enforces;
 * bit flips, byte changes and truncations of a few streams. The resumable
 * interface is tested by decoding with a soft limit one byte ahead, with
 * output buffers that grow a byte at a time (and move), and with a second
 * stream behind a first one in the same buffer (hist_start). Last, the
 * archive reader (archive.c) on a chart whose gzip size field is too
 * small, so its buffer has to grow and move while entries are watched.
 * Output buffers are allocated at their exact capacity so that AddressSanitizer
 * catches any write past it.
 */
#include "server/chart/archive.h"
#include "server/chart/inflater.h"
#include "server/common/buf.h"
#include "tests/unit/testlib.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* output beyond this is "too big" for both decoders (corrupted streams can
 * expand a lot) */
#define OUT_LIMIT (8u << 20)

/* $FERRY_SHARED, else shared/ beside the source tree (tests/run sets both) */
static const char *shared_dir(void)
{
	static char buf[1024];
	const char *s = getenv("FERRY_SHARED"), *src = getenv("FERRY_SRC");
	if (s && *s)
		return s;
	if (src && *src) {
		snprintf(buf, sizeof(buf), "%s/../shared", src);
		return buf;
	}
	/* run by hand from a build directory inside the source tree */
	DIR *d = opendir("../../shared/charts");
	if (d) {
		closedir(d);
		return "../../shared";
	}
	return "../shared";
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---------------------------------------------------------------- decoders */

struct result {
	int ok;              /* stream ended properly */
	int too_big;         /* output passed OUT_LIMIT */
	unsigned char *out;  /* malloc'd */
	size_t len;
	size_t used;         /* input bytes taken (when ok) */
	const char *msg;
};

static void result_free(struct result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}

static void zlib_decode(const unsigned char *in, size_t len, struct result *r)
{
	memset(r, 0, sizeof(*r));
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, -15) != Z_OK)
		abort();
	size_t cap = 4096;
	r->out = xmalloc(cap);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	int rc;
	for (;;) {
		if (r->len == cap) {
			if (cap >= OUT_LIMIT) {
				r->too_big = 1;
				break;
			}
			cap *= 2;
			r->out = xrealloc(r->out, cap);
		}
		zs.next_out = r->out + r->len;
		zs.avail_out = (uInt)(cap - r->len);
		rc = inflate(&zs, Z_NO_FLUSH);
		r->len = cap - zs.avail_out;
		if (rc == Z_STREAM_END) {
			r->ok = 1;
			r->used = len - zs.avail_in;
			break;
		}
		if (rc != Z_OK) {
			r->msg = zs.msg;
			break;
		}
		if (zs.avail_out != 0)   /* wants more input: there is none */
			break;
	}
	inflateEnd(&zs);
}

/* ours, with the output buffer growing (and moving) on INFLATER_FULL:
 * start: first capacity, grow: added each time (0: doubling); soft_step:
 * 0 for no soft limit, else each call may go that far past the output */
static void our_decode_ex(const unsigned char *in, size_t len, struct result *r, size_t start, size_t grow,
			  size_t soft_step, size_t *calls)
{
	memset(r, 0, sizeof(*r));
	struct inflater *z = xmalloc(sizeof(*z));
	inflater_init(z, in, len);
	size_t cap = start;
	r->out = xmalloc(cap ? cap : 1);
	size_t n = 0;
	for (;;) {
		size_t limit = soft_step ? r->len + soft_step : SIZE_MAX;
		int rc = inflater_run(z, r->out, &r->len, cap, 0, limit);
		n++;
		if (rc == INFLATER_DONE) {
			r->ok = 1;
			r->used = inflater_in_used(z);
			break;
		}
		if (rc == INFLATER_ERROR) {
			r->msg = inflater_error(z);
			break;
		}
		if (r->len > OUT_LIMIT) {
			r->too_big = 1;
			break;
		}
		if (rc == INFLATER_FULL) {
			size_t ncap = grow ? cap + grow : (cap ? cap * 2 : 1);
			/* move it: a fresh buffer of exactly the new size */
			unsigned char *nb = xmalloc(ncap);
			memcpy(nb, r->out, r->len);
			memset(r->out, 0xa5, cap);
			free(r->out);
			r->out = nb;
			cap = ncap;
		}
	}
	free(z);
	if (calls)
		*calls = n;
}

static void our_decode(const unsigned char *in, size_t len, struct result *r)
{
	our_decode_ex(in, len, r, 4096, 0, 0, NULL);
}

/* 1 when both agree; else prints a FAIL line naming the case */
static int agree(const char *what, const struct result *a, const struct result *b)
{
	char msg[600];
	if (a->too_big && b->too_big)
		return 1;
	if (a->ok != b->ok || a->too_big != b->too_big) {
		snprintf(msg, sizeof(msg), "%s: zlib %s (%s), inflater %s (%s)", what, a->ok ? "ok" : "fails",
			 a->msg ? a->msg : "-", b->ok ? "ok" : "fails", b->msg ? b->msg : "-");
		testlib_fail(__FILE__, __LINE__, msg);
		return 0;
	}
	if (!a->ok)
		return 1;
	if (a->len != b->len || memcmp(a->out, b->out, a->len) || a->used != b->used) {
		size_t i = 0;
		while (i < a->len && i < b->len && a->out[i] == b->out[i])
			i++;
		snprintf(msg, sizeof(msg), "%s: outputs differ (zlib %zu bytes, inflater %zu; first difference at %zu; input used %zu / %zu)",
			 what, a->len, b->len, i, a->used, b->used);
		testlib_fail(__FILE__, __LINE__, msg);
		return 0;
	}
	return 1;
}

/* decode with both; must both succeed (want_ok) or both fail; returns agreement */
static int diff_stream(const char *what, const unsigned char *in, size_t len, int want_ok, const char *want_msg)
{
	struct result a, b;
	zlib_decode(in, len, &a);
	our_decode(in, len, &b);
	int ok = agree(what, &a, &b);
	if (ok && want_ok >= 0 && a.ok != want_ok) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: expected %s, both %s (%s)", what, want_ok ? "success" : "failure",
			 a.ok ? "succeed" : "fail", a.msg ? a.msg : "-");
		testlib_fail(__FILE__, __LINE__, msg);
		ok = 0;
	}
	if (ok && want_msg && (!b.msg || strcmp(b.msg, want_msg))) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: message \"%s\", want \"%s\" (zlib: %s)", what, b.msg ? b.msg : "(none)",
			 want_msg, a.msg ? a.msg : "-");
		testlib_fail(__FILE__, __LINE__, msg);
		ok = 0;
	}
	result_free(&a);
	result_free(&b);
	return ok;
}

/* raw deflate with zlib; caller frees */
static unsigned char *zlib_compress(const unsigned char *in, size_t len, int level, int wbits, int strategy,
				    size_t *outlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, level, Z_DEFLATED, -wbits, 8, strategy) != Z_OK)
		abort();
	size_t cap = deflateBound(&zs, (uLong)len) + 64;
	unsigned char *out = xmalloc(cap);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/* ---------------------------------------------------------------- inputs */

enum { DATA_RANDOM, DATA_TEXT, DATA_RUNS, DATA_PERIODIC, DATA_MIXED, DATA_KINDS };
static const char *const data_names[] = { "random", "text", "runs", "periodic", "mixed" };

static unsigned char *make_data(int kind, size_t n)
{
	static const char *const words[] = {
		"apiVersion: ", "kind: ", "metadata:\n", "  name: ", "cilium", "{{ .Values.", " }}", "\n", "  ",
		"    ", "- ", "true", "false", "image", "repository", "quay.io/", "{{- if ", "{{- end }}\n", "labels:",
		"k8s-app", "hubble", "relay", "ui", ": ", "#", " ", "spec:\n", "containers:\n",
	};
	unsigned char *d = xmalloc(n ? n : 1);
	size_t i = 0;
	switch (kind) {
	case DATA_RANDOM:
		for (; i < n; i++)
			d[i] = (unsigned char)rnd();
		break;
	case DATA_TEXT:
		while (i < n) {
			const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
			for (; *w && i < n; w++)
				d[i++] = (unsigned char)*w;
		}
		break;
	case DATA_RUNS:
		while (i < n) {
			unsigned char c = rnd() % 3 ? 0 : (unsigned char)rnd();
			size_t run = 1 + rnd() % (rnd() % 4 ? 40 : 2000);
			for (size_t k = 0; k < run && i < n; k++)
				d[i++] = c;
		}
		break;
	case DATA_PERIODIC:
		while (i < n) {
			size_t period = 1 + rnd() % 9, reps = 1 + rnd() % 200;
			unsigned char pat[9];
			for (size_t k = 0; k < period; k++)
				pat[k] = (unsigned char)('a' + rnd() % 26);
			for (size_t k = 0; k < period * reps && i < n; k++)
				d[i++] = pat[k % period];
		}
		break;
	default:
		while (i < n) {
			int sub = (int)(rnd() % 4);
			size_t chunk = 1 + rnd() % 3000;
			if (chunk > n - i)
				chunk = n - i;
			unsigned char *p = make_data(sub, chunk);
			memcpy(d + i, p, chunk);
			free(p);
			i += chunk;
		}
		break;
	}
	return d;
}

/* ---------------------------------------------------------------- a bit writer */

struct bw {
	unsigned char *d;
	size_t n, cap;
	uint64_t acc;
	unsigned nb;
};

static void bw_put(struct bw *w, uint32_t v, unsigned n)
{
	w->acc |= (uint64_t)(v & ((n < 32 ? (1u << n) : 0u) - 1)) << w->nb;
	w->nb += n;
	while (w->nb >= 8) {
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 256;
			w->d = xrealloc(w->d, w->cap);
		}
		w->d[w->n++] = (unsigned char)w->acc;
		w->acc >>= 8;
		w->nb -= 8;
	}
}

/* a Huffman code: most significant bit first */
static void bw_code(struct bw *w, unsigned code, unsigned len)
{
	unsigned r = 0;
	for (unsigned i = 0; i < len; i++)
		r |= ((code >> i) & 1) << (len - 1 - i);
	bw_put(w, r, len);
}

static void bw_align(struct bw *w)
{
	if (w->nb % 8)
		bw_put(w, 0, 8 - w->nb % 8);
}

static void bw_bytes(struct bw *w, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bw_put(w, ((const unsigned char *)p)[i], 8);
}

/* canonical codes for lens[0..n) (RFC 1951 3.2.2) */
static void canonical(const unsigned char *lens, unsigned n, unsigned *codes)
{
	unsigned count[16] = { 0 }, next[16];
	for (unsigned i = 0; i < n; i++)
		count[lens[i]]++;
	count[0] = 0;
	unsigned code = 0;
	for (unsigned l = 1; l < 16; l++) {
		code = (code + count[l - 1]) << 1;
		next[l] = code;
	}
	for (unsigned i = 0; i < n; i++)
		codes[i] = lens[i] ? next[lens[i]]++ : 0;
}

/* the fixed code */
static void fixed_lens(unsigned char *ll, unsigned char *dl)
{
	for (int i = 0; i < 288; i++)
		ll[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
	for (int i = 0; i < 32; i++)
		dl[i] = 5;
}

/* a block's codes, for writing symbols */
struct codes {
	unsigned char ll[288], dl[32];
	unsigned llc[288], dlc[32];
};

static void codes_make(struct codes *c)
{
	canonical(c->ll, 288, c->llc);
	canonical(c->dl, 32, c->dlc);
}

static void put_lit(struct bw *w, const struct codes *c, unsigned sym)
{
	bw_code(w, c->llc[sym], c->ll[sym]);
}

static const unsigned short len_base[29] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
					     35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const unsigned char len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
					     3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const unsigned short d_base[30] = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
					   513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const unsigned char d_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
					   7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

static void put_match(struct bw *w, const struct codes *c, unsigned len, unsigned dist)
{
	int s = 28;
	while (len_base[s] > len)
		s--;
	if (len == 258)
		s = 28;
	else if (s == 28)
		s = 27;
	put_lit(w, c, 257 + (unsigned)s);
	bw_put(w, len - len_base[s], len_extra[s]);
	int d = 29;
	while (d_base[d] > dist)
		d--;
	bw_code(w, c->dlc[d], c->dl[d]);
	bw_put(w, dist - d_base[d], d_extra[d]);
}

static const unsigned char cl_order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };

/* a complete code-length code for all 19 symbols */
static void all_precode(unsigned char *pl)
{
	for (int i = 0; i < 19; i++)
		pl[i] = i < 13 ? 4 : 5;
}

/* a dynamic block header: hlit/hdist/hclen as given, the code-length code
 * pl (19 lengths by symbol), then the sequence seq[0..nseq) of code-length
 * symbols, each followed by its extra bits (seq entries: symbol | extra << 8) */
static void put_dynamic(struct bw *w, int final, unsigned hlit, unsigned hdist, unsigned hclen, const unsigned char *pl,
			const unsigned *seq, size_t nseq)
{
	unsigned pc[19];
	canonical(pl, 19, pc);
	bw_put(w, (unsigned)final, 1);
	bw_put(w, 2, 2);
	bw_put(w, hlit - 257, 5);
	bw_put(w, hdist - 1, 5);
	bw_put(w, hclen - 4, 4);
	for (unsigned i = 0; i < hclen; i++)
		bw_put(w, pl[cl_order[i]], 3);
	for (size_t i = 0; i < nseq; i++) {
		unsigned sym = seq[i] & 0xff, extra = seq[i] >> 8;
		bw_code(w, pc[sym], pl[sym]);
		if (sym == 16)
			bw_put(w, extra, 2);
		else if (sym == 17)
			bw_put(w, extra, 3);
		else if (sym == 18)
			bw_put(w, extra, 7);
	}
}

/* a dynamic header for c->ll[0..hlit), c->dl[0..hdist), lengths written
 * one by one */
static void put_dynamic_codes(struct bw *w, int final, const struct codes *c, unsigned hlit, unsigned hdist)
{
	unsigned char pl[19];
	unsigned seq[288 + 32];
	size_t n = 0;
	all_precode(pl);
	for (unsigned i = 0; i < hlit; i++)
		seq[n++] = c->ll[i];
	for (unsigned i = 0; i < hdist; i++)
		seq[n++] = c->dl[i];
	put_dynamic(w, final, hlit, hdist, 19, pl, seq, n);
}

/* a valid dynamic code: 226 symbols of 8 bits and 60 of 9; distances: 2 of
 * 4 bits and 28 of 5 */
static void good_dynamic(struct codes *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 286; i++)
		c->ll[i] = i < 226 ? 8 : 9;
	for (int i = 0; i < 30; i++)
		c->dl[i] = i < 2 ? 4 : 5;
	codes_make(c);
}

/* ---------------------------------------------------------------- tests */

static int count_charts;


static void test_charts(void)
{
	char dir[1100];
	snprintf(dir, sizeof(dir), "%s/charts", shared_dir());
	DIR *d = opendir(dir);
	check(d != NULL);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".tgz"))
			continue;
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		size_t len;
		unsigned char *gz = (unsigned char *)read_file_all(path, &len);
		size_t hl = gz ? archive_gzip_header_len(gz, len) : 0;
		check(hl > 0);
		if (!hl) {
			free(gz);
			continue;
		}
		/* the deflate data, then the 8-byte trailer */
		struct result a, b;
		zlib_decode(gz + hl, len - hl, &a);
		our_decode(gz + hl, len - hl, &b);
		check(a.ok && b.ok && a.len > 100000);
		agree(de->d_name, &a, &b);
		check(b.used == len - hl - 8);
		/* an output buffer of exactly the right size: no FULL, no overrun */
		struct result c;
		size_t calls;
		our_decode_ex(gz + hl, len - hl, &c, a.len, 0, 0, &calls);
		check(c.ok && calls == 1 && c.len == a.len && !memcmp(c.out, a.out, a.len));
		result_free(&a);
		result_free(&b);
		result_free(&c);
		free(gz);
		count_charts++;
	}
	closedir(d);
	check(count_charts >= 1);
}

static void test_zlib_matrix(void)
{
	static const int strategies[] = { Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED };
	static const char *const snames[] = { "default", "filtered", "huffman", "rle", "fixed" };
	static const size_t sizes[] = { 0, 1, 2, 3, 100, 5000, 70000 };
	int cases = 0;
	for (int kind = 0; kind < DATA_KINDS; kind++)
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t n = sizes[si];
			unsigned char *data = make_data(kind, n);
			for (int level = 0; level <= 9; level++)
				for (int st = 0; st < 5; st++)
					for (int wb = 9; wb <= 15; wb++) {
						/* every window size for the big inputs, a few for the rest */
						if (n < 70000 && wb != 9 && wb != 12 && wb != 15)
							continue;
						if (n >= 70000 && level != 1 && level != 6 && level != 9 && wb != 15)
							continue;
						size_t cl;
						unsigned char *c = zlib_compress(data, n, level, wb, strategies[st], &cl);
						char what[200];
						snprintf(what, sizeof(what), "%s/%zu level %d %s wbits %d", data_names[kind], n,
							 level, snames[st], wb);
						struct result a, b;
						zlib_decode(c, cl, &a);
						our_decode(c, cl, &b);
						if (agree(what, &a, &b))
							check(b.ok && b.len == n && (n == 0 || !memcmp(b.out, data, n)));
						result_free(&a);
						result_free(&b);
						free(c);
						cases++;
					}
			free(data);
		}
	check(cases > 1000);
}

/* the longest length (258) at the longest distance (32768), in fixed and
 * dynamic blocks, and a stored block of 65535 bytes */
static void test_max_length_distance(void)
{
	for (int dyn = 0; dyn < 2; dyn++) {
		struct bw w = { 0 };
		struct codes c;
		if (dyn) {
			good_dynamic(&c);
			put_dynamic_codes(&w, 1, &c, 286, 30);
		} else {
			fixed_lens(c.ll, c.dl);
			codes_make(&c);
			bw_put(&w, 1, 1);
			bw_put(&w, 1, 2);
		}
		for (int i = 0; i < 32768; i++)
			put_lit(&w, &c, (unsigned)(rnd() % 256));
		put_match(&w, &c, 258, 32768);
		put_match(&w, &c, 258, 32768);
		put_match(&w, &c, 258, 1);
		put_match(&w, &c, 3, 32768);
		put_lit(&w, &c, 256);
		bw_align(&w);
		struct result a, b;
		zlib_decode(w.d, w.n, &a);
		our_decode(w.d, w.n, &b);
		check(a.ok && b.ok);
		if (agree(dyn ? "dynamic 258/32768" : "fixed 258/32768", &a, &b)) {
			check(b.len == 32768 + 3 * 258 + 3);
			check(!memcmp(b.out + 32768, b.out, 258));
			check(b.used == w.n);
		}
		result_free(&a);
		result_free(&b);
		/* one byte further back is too far */
		w.n = 0;
		w.nb = 0;
		w.acc = 0;
		if (dyn) {
			put_dynamic_codes(&w, 1, &c, 286, 30);
		} else {
			bw_put(&w, 1, 1);
			bw_put(&w, 1, 2);
		}
		for (int i = 0; i < 32767; i++)
			put_lit(&w, &c, (unsigned)(rnd() % 256));
		put_match(&w, &c, 258, 32768);
		put_lit(&w, &c, 256);
		bw_align(&w);
		diff_stream("distance 32768 after 32767 bytes", w.d, w.n, 0, "invalid distance too far back");
		free(w.d);
	}
	/* stored blocks: 65535 bytes, an empty one, a final one */
	struct bw w = { 0 };
	unsigned char *data = make_data(DATA_RANDOM, 65535);
	bw_put(&w, 0, 1);
	bw_put(&w, 0, 2);
	bw_align(&w);
	bw_put(&w, 65535, 16);
	bw_put(&w, 0, 16);
	bw_bytes(&w, data, 65535);
	bw_put(&w, 0, 3);
	bw_align(&w);
	bw_put(&w, 0, 16);
	bw_put(&w, 0xffff, 16);
	bw_put(&w, 1, 1);
	bw_put(&w, 0, 2);
	bw_align(&w);
	bw_put(&w, 3, 16);
	bw_put(&w, 0xfffc, 16);
	bw_bytes(&w, "xyz", 3);
	bw_bytes(&w, "trailing", 8);
	struct result a, b;
	zlib_decode(w.d, w.n, &a);
	our_decode(w.d, w.n, &b);
	check(a.ok && b.ok && b.len == 65538 && !memcmp(b.out, data, 65535) && b.used == w.n - 8);
	agree("stored blocks", &a, &b);
	result_free(&a);
	result_free(&b);
	free(w.d);
	free(data);
}

/* compressed test streams used by the resumption and corruption tests */
static unsigned char *sample_stream(int which, size_t *len, size_t *plain)
{
	static const int kinds[] = { DATA_TEXT, DATA_MIXED, DATA_RUNS, DATA_PERIODIC, DATA_TEXT, DATA_MIXED };
	static const int levels[] = { 6, 1, 9, 6, 0, 6 };
	static const int strategies[] = { Z_DEFAULT_STRATEGY, Z_DEFAULT_STRATEGY, Z_RLE, Z_FIXED, Z_DEFAULT_STRATEGY,
					  Z_HUFFMAN_ONLY };
	size_t n = which == 4 ? 3000 : 6000;
	unsigned char *data = make_data(kinds[which], n);
	unsigned char *c = zlib_compress(data, n, levels[which], 15, strategies[which], len);
	free(data);
	*plain = n;
	return c;
}
#define N_SAMPLES 6

static void test_soft_limit(void)
{
	for (int s = 0; s < N_SAMPLES; s++) {
		size_t len, plain;
		unsigned char *c = sample_stream(s, &len, &plain);
		struct result a;
		zlib_decode(c, len, &a);
		check(a.ok && a.len == plain);
		/* every limit one byte past the output so far, then a few bigger steps */
		static const size_t steps[] = { 1, 2, 3, 5, 64, 257, 300, 1000, 4096 };
		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			struct result b;
			size_t calls;
			our_decode_ex(c, len, &b, plain + 1000, 0, steps[i], &calls);
			char what[100];
			snprintf(what, sizeof(what), "sample %d soft step %zu", s, steps[i]);
			agree(what, &a, &b);
			/* it did stop: at least one call per (step + a match) of output */
			check(calls >= plain / (steps[i] + 258));
			result_free(&b);
		}
		result_free(&a);
		free(c);
	}
}

static void test_full_resume(void)
{
	for (int s = 0; s < N_SAMPLES; s++) {
		size_t len, plain;
		unsigned char *c = sample_stream(s, &len, &plain);
		struct result a;
		zlib_decode(c, len, &a);
		static const size_t grows[] = { 1, 2, 7, 300, 301, 1000 };
		for (size_t i = 0; i < sizeof(grows) / sizeof(grows[0]); i++) {
			struct result b;
			size_t calls;
			our_decode_ex(c, len, &b, i == 0 ? 0 : 1, grows[i], 0, &calls);
			char what[100];
			snprintf(what, sizeof(what), "sample %d buffer growing by %zu", s, grows[i]);
			agree(what, &a, &b);
			check(calls >= plain / grows[i]);
			result_free(&b);
		}
		/* soft limits and a growing buffer together */
		struct result b;
		our_decode_ex(c, len, &b, 10, 33, 17, NULL);
		agree("soft limit 17, growing by 33", &a, &b);
		result_free(&b);
		result_free(&a);
		free(c);
	}
}

/* a second stream behind the first in the same buffer reaches only its own output */
static void test_hist_start(void)
{
	struct codes c;
	fixed_lens(c.ll, c.dl);
	codes_make(&c);
	size_t l1, plain;
	unsigned char *first = sample_stream(0, &l1, &plain);
	for (int bad = 0; bad < 2; bad++) {
		struct bw w = { 0 };
		bw_put(&w, 1, 1);
		bw_put(&w, 1, 2);
		put_lit(&w, &c, 'x');
		put_lit(&w, &c, 'y');
		put_match(&w, &c, 5, bad ? 3 : 2);
		put_lit(&w, &c, 256);
		bw_align(&w);
		size_t cap = plain + 100;
		unsigned char *out = xmalloc(cap);
		size_t olen = 0;
		struct inflater z;
		inflater_init(&z, first, l1);
		check(inflater_run(&z, out, &olen, cap, 0, SIZE_MAX) == INFLATER_DONE && olen == plain);
		inflater_init(&z, w.d, w.n);
		int rc = inflater_run(&z, out, &olen, cap, plain, SIZE_MAX);
		if (bad) {
			check(rc == INFLATER_ERROR);
			check_str(inflater_error(&z), "invalid distance too far back");
			/* errors stick */
			check(inflater_run(&z, out, &olen, cap, plain, SIZE_MAX) == INFLATER_ERROR);
		} else {
			check(rc == INFLATER_DONE && olen == plain + 7 && !memcmp(out + plain, "xyxyxyx", 7));
			check(inflater_in_used(&z) == w.n);
			/* done stays done */
			check(inflater_run(&z, out, &olen, cap, plain, SIZE_MAX) == INFLATER_DONE && olen == plain + 7);
		}
		free(out);
		free(w.d);
	}
	/* the same with zlib: a fresh stream sees nothing before it */
	free(first);
}

/* each rule zlib enforces, broken on purpose */
static void test_rejections(void)
{
	struct codes fx, good;
	fixed_lens(fx.ll, fx.dl);
	codes_make(&fx);
	good_dynamic(&good);
	unsigned char pl[19];
	unsigned seq[400] = { 0 };
	struct bw w = { 0 };
#define RESET() (w.n = 0, w.nb = 0, w.acc = 0)

	/* block type 3 */
	RESET();
	bw_put(&w, 1, 1);
	bw_put(&w, 3, 2);
	bw_put(&w, 0, 16);
	diff_stream("block type 3", w.d, w.n, 0, "invalid block type");

	/* stored: LEN/NLEN mismatch; data cut short */
	RESET();
	bw_put(&w, 1, 3);
	bw_align(&w);
	bw_put(&w, 5, 16);
	bw_put(&w, 0xfffb, 16);
	bw_bytes(&w, "hello", 5);
	diff_stream("stored lengths", w.d, w.n, 0, "invalid stored block lengths");
	RESET();
	bw_put(&w, 1, 3);
	bw_align(&w);
	bw_put(&w, 5, 16);
	bw_put(&w, 0xfffa, 16);
	bw_bytes(&w, "hell", 4);
	diff_stream("stored data truncated", w.d, w.n, 0, "unexpected end of data");
	RESET();
	bw_put(&w, 1, 3);
	bw_align(&w);
	bw_put(&w, 5, 16);
	bw_put(&w, 0xfffa, 16);
	bw_bytes(&w, "hello", 5);
	diff_stream("stored ok", w.d, w.n, 1, NULL);

	/* HLIT 287 and HDIST 31 */
	RESET();
	all_precode(pl);
	put_dynamic(&w, 1, 287, 30, 19, pl, seq, 0);
	bw_put(&w, 0, 32);
	diff_stream("HLIT 287", w.d, w.n, 0, "too many length or distance symbols");
	RESET();
	put_dynamic(&w, 1, 286, 31, 19, pl, seq, 0);
	bw_put(&w, 0, 32);
	diff_stream("HDIST 31", w.d, w.n, 0, "too many length or distance symbols");

	/* code-length code: over-subscribed, incomplete, empty */
	size_t n = 0;
	for (int i = 0; i < 286; i++)
		seq[n++] = good.ll[i];
	for (int i = 0; i < 30; i++)
		seq[n++] = good.dl[i];
	RESET();
	all_precode(pl);
	pl[0] = 3;
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, 0);
	bw_put(&w, 0, 32);
	diff_stream("code-length code over-subscribed", w.d, w.n, 0, "invalid code lengths set");
	RESET();
	all_precode(pl);
	pl[18] = 0;
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, 0);
	bw_put(&w, 0, 32);
	diff_stream("code-length code incomplete", w.d, w.n, 0, "invalid code lengths set");
	RESET();
	memset(pl, 0, sizeof(pl));
	pl[8] = 1;
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, 0);
	bw_put(&w, 0, 32);
	diff_stream("code-length code with one code", w.d, w.n, 0, "invalid code lengths set");
	RESET();
	memset(pl, 0, sizeof(pl));
	put_dynamic(&w, 1, 286, 30, 4, pl, seq, 0);
	for (int i = 0; i < 20; i++)
		bw_put(&w, 0, 32);
	diff_stream("code-length code empty", w.d, w.n, 0, NULL);

	/* repeat 16 first; repeats past the end */
	RESET();
	all_precode(pl);
	seq[0] = 16 | 1 << 8;
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, 1);
	bw_put(&w, 0, 32);
	diff_stream("repeat with no previous length", w.d, w.n, 0, "invalid bit length repeat");
	for (int k = 0; k < 3; k++) {
		RESET();
		n = 0;
		for (int i = 0; i < 286; i++)
			seq[n++] = good.ll[i];
		for (int i = 0; i < 28; i++)
			seq[n++] = good.dl[i];
		/* 2 left to fill: a repeat of 3 (16: previous, 17: zeros, 18: 11 zeros) */
		seq[n++] = k == 0 ? 16 : k == 1 ? 17 : 18;
		put_dynamic(&w, 1, 286, 30, 19, pl, seq, n);
		bw_put(&w, 0, 32);
		diff_stream("repeat past the end", w.d, w.n, 0, "invalid bit length repeat");
	}
	/* repeats that cross from the literal/length to the distance lengths are fine */
	RESET();
	n = 0;
	for (int i = 0; i < 280; i++)
		seq[n++] = good.ll[i];
	seq[n++] = 16 | 3 << 8;   /* 6 x 9: ll 280..285 */
	seq[n++] = 4;
	seq[n++] = 4;
	seq[n++] = 5;
	seq[n++] = 16 | 3 << 8;   /* 4 x 6 x 5 */
	seq[n++] = 16 | 3 << 8;
	seq[n++] = 16 | 3 << 8;
	seq[n++] = 16 | 3 << 8;
	seq[n++] = 16 | 0 << 8;   /* 3 x 5: 28 in all */
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, n);
	put_lit(&w, &good, 'a');
	put_match(&w, &good, 10, 1);
	put_lit(&w, &good, 256);
	bw_align(&w);
	diff_stream("repeats in range", w.d, w.n, 1, NULL);
	/* three 9s repeated across: an incomplete distance code */
	RESET();
	n = 0;
	for (int i = 0; i < 279; i++)
		seq[n++] = good.ll[i];
	seq[n++] = 9;
	seq[n++] = 16 | 3 << 8;   /* 6 more 9s: ll 280..285 */
	seq[n++] = 16 | 0 << 8;   /* 3 more 9s: dist 0..2, crossing over */
	for (int i = 3; i < 30; i++)
		seq[n++] = 0;
	put_dynamic(&w, 1, 286, 30, 19, pl, seq, n);
	bw_put(&w, 0, 16);
	diff_stream("repeat crossing into distances (bad code)", w.d, w.n, 0, "invalid distances set");
	/* zeros repeated across (18): literal/lengths 270..285 and distances
	 * 0..9 unused */
	{
		struct codes z;
		memset(&z, 0, sizeof(z));
		for (int i = 0; i < 270; i++)
			z.ll[i] = i < 242 ? 8 : 9;
		for (int i = 10; i < 30; i++)
			z.dl[i] = i < 22 ? 4 : 5;
		codes_make(&z);
		RESET();
		n = 0;
		for (int i = 0; i < 270; i++)
			seq[n++] = z.ll[i];
		seq[n++] = 18 | 15 << 8;  /* 26 zeros */
		for (int i = 10; i < 30; i++)
			seq[n++] = z.dl[i];
		put_dynamic(&w, 1, 286, 30, 19, pl, seq, n);
		for (int i = 0; i < 40; i++)
			put_lit(&w, &z, (unsigned)('a' + i % 26));
		put_match(&w, &z, 10, 33);
		put_match(&w, &z, 22, 40);   /* length symbol 269, the last one */
		put_lit(&w, &z, 256);
		bw_align(&w);
		diff_stream("zero repeat crossing into distances", w.d, w.n, 1, NULL);
	}

	/* literal/length code: no end-of-block; over-subscribed; incomplete */
	struct codes c;
	RESET();
	c = good;
	c.ll[256] = 0;
	put_dynamic_codes(&w, 1, &c, 286, 30);
	bw_put(&w, 0, 32);
	diff_stream("no end-of-block code", w.d, w.n, 0, "invalid code -- missing end-of-block");
	RESET();
	c = good;
	c.ll[0] = 7;
	put_dynamic_codes(&w, 1, &c, 286, 30);
	bw_put(&w, 0, 32);
	diff_stream("literal/length code over-subscribed", w.d, w.n, 0, "invalid literal/lengths set");
	RESET();
	c = good;
	c.ll[0] = 0;
	put_dynamic_codes(&w, 1, &c, 286, 30);
	bw_put(&w, 0, 32);
	diff_stream("literal/length code incomplete", w.d, w.n, 0, "invalid literal/lengths set");
	/* ... except a single code of length 1: then only that code may appear */
	memset(&c, 0, sizeof(c));
	c.ll[256] = 1;
	c.dl[0] = 1;
	codes_make(&c);
	RESET();
	put_dynamic_codes(&w, 1, &c, 257, 1);
	put_lit(&w, &c, 256);
	bw_align(&w);
	diff_stream("only an end-of-block code", w.d, w.n, 1, NULL);
	RESET();
	put_dynamic_codes(&w, 1, &c, 257, 1);
	bw_put(&w, 1, 1);   /* the unused code */
	bw_align(&w);
	diff_stream("unused code of a one-code set", w.d, w.n, 0, "invalid literal/length code");
	memset(&c, 0, sizeof(c));
	c.ll[256] = 2;
	codes_make(&c);
	RESET();
	put_dynamic_codes(&w, 1, &c, 257, 1);
	put_lit(&w, &c, 256);
	bw_align(&w);
	diff_stream("one code of length 2", w.d, w.n, 0, "invalid literal/lengths set");

	/* distance code: over-subscribed; incomplete; one code; none */
	RESET();
	c = good;
	c.dl[5] = 3;
	put_dynamic_codes(&w, 1, &c, 286, 30);
	bw_put(&w, 0, 32);
	diff_stream("distance code over-subscribed", w.d, w.n, 0, "invalid distances set");
	RESET();
	c = good;
	c.dl[5] = 0;
	put_dynamic_codes(&w, 1, &c, 286, 30);
	bw_put(&w, 0, 32);
	diff_stream("distance code incomplete", w.d, w.n, 0, "invalid distances set");
	for (int k = 0; k < 4; k++) {
		c = good;
		memset(c.dl, 0, sizeof(c.dl));
		if (k < 3)
			c.dl[k == 2 ? 29 : 0] = 1;
		codes_make(&c);
		RESET();
		put_dynamic_codes(&w, 1, &c, 286, 30);
		put_lit(&w, &c, 'a');
		put_lit(&w, &c, 'b');
		if (k == 0) {
			put_match(&w, &c, 7, 1);   /* the one distance code: fine */
		} else if (k == 1) {
			put_lit(&w, &c, 257);      /* length 3, then the unused distance code */
			bw_put(&w, 1, 1);
		} else if (k == 3) {
			put_lit(&w, &c, 257);      /* no distance codes at all */
			bw_put(&w, 0, 1);
		}
		put_lit(&w, &c, 256);
		bw_align(&w);
		const char *what[] = { "one distance code used", "unused code of a one-code distance set",
				       "one distance code (29), only literals", "no distance codes, a match" };
		diff_stream(what[k], w.d, w.n, k == 0 || k == 2, k == 1 || k == 3 ? "invalid distance code" : NULL);
	}
	/* no distance codes and only literals: fine */
	c = good;
	memset(c.dl, 0, sizeof(c.dl));
	codes_make(&c);
	RESET();
	put_dynamic_codes(&w, 1, &c, 286, 1);
	put_lit(&w, &c, 'a');
	put_lit(&w, &c, 256);
	bw_align(&w);
	diff_stream("no distance codes, literals only", w.d, w.n, 1, NULL);

	/* fixed code: literal/length 286 and 287, distances 30 and 31 */
	for (int k = 0; k < 4; k++) {
		RESET();
		bw_put(&w, 1, 1);
		bw_put(&w, 1, 2);
		put_lit(&w, &fx, 'a');
		if (k < 2) {
			put_lit(&w, &fx, 286 + (unsigned)k);
		} else {
			put_lit(&w, &fx, 257);
			bw_code(&w, 28 + (unsigned)k, 5);
		}
		put_lit(&w, &fx, 256);
		bw_put(&w, 0, 16);
		diff_stream(k < 2 ? "fixed symbol 286/287" : "fixed distance 30/31", w.d, w.n, 0,
			    k < 2 ? "invalid literal/length code" : "invalid distance code");
	}

	/* distances before the start of the output */
	for (unsigned d = 1; d <= 3; d++) {
		RESET();
		bw_put(&w, 1, 1);
		bw_put(&w, 1, 2);
		put_lit(&w, &fx, 'a');
		put_lit(&w, &fx, 'b');
		put_match(&w, &fx, 3, d);
		put_lit(&w, &fx, 256);
		bw_align(&w);
		diff_stream(d <= 2 ? "distance within output" : "distance too far back", w.d, w.n, d <= 2,
			    d <= 2 ? NULL : "invalid distance too far back");
	}

	/* a stream that never ends: blocks without the final bit */
	RESET();
	bw_put(&w, 0, 1);
	bw_put(&w, 1, 2);
	put_lit(&w, &fx, 'a');
	put_lit(&w, &fx, 256);
	bw_align(&w);
	diff_stream("no final block", w.d, w.n, 0, "unexpected end of data");
	/* empty input */
	diff_stream("empty input", (const unsigned char *)"", 0, 0, "unexpected end of data");
	free(w.d);
#undef RESET
}

/* bit flips, byte changes and every truncation of a few streams */
static void test_corruption(void)
{
	int bad = 0, cases = 0, accepted = 0;
	for (int s = 0; s < N_SAMPLES && bad < 5; s++) {
		size_t len, plain;
		unsigned char *c = sample_stream(s, &len, &plain);
		unsigned char *m = xmalloc(len);
		char what[100];
		/* truncations */
		for (size_t cut = 0; cut < len && bad < 5; cut++) {
			unsigned char *t = xmalloc(cut ? cut : 1);
			memcpy(t, c, cut);
			snprintf(what, sizeof(what), "sample %d cut at %zu", s, cut);
			if (!diff_stream(what, t, cut, -1, NULL))
				bad++;
			free(t);
			cases++;
		}
		/* bit flips at (up to) 1500 positions, every bit */
		size_t stride = len / 1500 + 1;
		for (size_t pos = 0; pos < len && bad < 5; pos += stride)
			for (int bit = 0; bit < 8; bit++) {
				memcpy(m, c, len);
				m[pos] ^= (unsigned char)(1u << bit);
				snprintf(what, sizeof(what), "sample %d bit %d of byte %zu flipped", s, bit, pos);
				struct result a, b;
				zlib_decode(m, len, &a);
				our_decode(m, len, &b);
				if (!agree(what, &a, &b))
					bad++;
				accepted += a.ok;
				result_free(&a);
				result_free(&b);
				cases++;
			}
		/* random bytes, several at once */
		for (int i = 0; i < 3000 && bad < 5; i++) {
			memcpy(m, c, len);
			int k = 1 + (int)(rnd() % 3);
			for (int j = 0; j < k; j++)
				m[rnd() % len] = (unsigned char)rnd();
			snprintf(what, sizeof(what), "sample %d random bytes #%d", s, i);
			if (!diff_stream(what, m, len, -1, NULL))
				bad++;
			cases++;
		}
		free(m);
		free(c);
	}
	check(bad == 0);
	check(cases > 50000);
	/* flips in literal bits keep a stream valid: the cases covered both outcomes */
	check(accepted > 0);
}

/* ---------------------------------------------------------------- archive.c */

struct seen {
	size_t n, unwatched;
	char **names, **datas;
	size_t *lens;
};

static int on_entry(void *ctx, const char *name, const char *data, size_t len)
{
	struct seen *s = ctx;
	if (!name) {
		s->unwatched++;
		return 0;
	}
	s->names = xrealloc(s->names, (s->n + 1) * sizeof(char *));
	s->datas = xrealloc(s->datas, (s->n + 1) * sizeof(char *));
	s->lens = xrealloc(s->lens, (s->n + 1) * sizeof(size_t));
	s->names[s->n] = xstrdup(name);
	s->datas[s->n] = xmalloc(len + 1);
	memcpy(s->datas[s->n], data, len);
	s->lens[s->n] = len;
	s->n++;
	return 0;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->datas[i]);
	}
	free(s->names);
	free(s->datas);
	free(s->lens);
	memset(s, 0, sizeof(*s));
}

/* the entries watched while inflating are those of the finished archive */
static void check_watched(const struct seen *s, const struct archive *a)
{
	size_t matched = 0;
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < a->n; j++)
			if (!strcmp(s->names[i], a->e[j].name)) {
				check(s->lens[i] == a->e[j].len && !memcmp(s->datas[i], a->e[j].data, s->lens[i]));
				matched++;
				break;
			}
	check(matched == s->n);
}

static void test_archive_reader(void)
{
	char path[1200], err[512];
	snprintf(path, sizeof(path), "%s/charts/cilium-1.18.3.tgz", shared_dir());
	size_t len;
	unsigned char *gz = (unsigned char *)read_file_all(path, &len);
	check(gz != NULL);
	if (!gz)
		return;
	struct archive a, b;
	struct seen s = { 0 };
	check(archive_read_tgz_progress(gz, len, &a, on_entry, &s, err, sizeof(err)) == 0);
	check(a.n > 100 && s.n > 10 && s.unwatched == 0);
	check_watched(&s, &a);
	seen_free(&s);
	/* the same member followed by an empty one: the size field read (the
	 * last member's, 0) is far too small, the buffer grows and moves
	 * while entries are watched */
	static const unsigned char empty_member[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	unsigned char *two = xmalloc(len + sizeof(empty_member));
	memcpy(two, gz, len);
	memcpy(two + len, empty_member, sizeof(empty_member));
	check(archive_read_tgz_progress(two, len + sizeof(empty_member), &b, on_entry, &s, err, sizeof(err)) == 0);
	check(s.unwatched == 1 && s.n >= 1);
	check(b.n == a.n);
	for (size_t i = 0; i < a.n && i < b.n; i++)
		check(!strcmp(a.e[i].name, b.e[i].name) && a.e[i].len == b.e[i].len &&
		      !memcmp(a.e[i].data, b.e[i].data, a.e[i].len));
	check_watched(&s, &b);
	seen_free(&s);
	archive_free(&b);
	/* a corrupted deflate stream: zlib's words in the message */
	memcpy(two, gz, len);
	two[len / 2] ^= 0x55;
	two[len / 2 + 1] ^= 0xaa;
	int rc = archive_read_tgz(two, len, &b, err, sizeof(err));
	check(rc != 0 && strstr(err, "not a valid gzip stream"));
	if (rc == 0)
		archive_free(&b);
	/* cut short */
	check(archive_read_tgz(gz, len / 2, &b, err, sizeof(err)) != 0 && strstr(err, "unexpected end of data"));
	archive_free(&a);
	free(two);
	free(gz);
}

int main(void)
{
	/* the fastest fast loop this CPU has (BMI2 on most x86-64) */
	test_run("inflater_charts", test_charts);
	test_run("inflater_zlib_levels_strategies_windows", test_zlib_matrix);
	test_run("inflater_max_length_distance_stored", test_max_length_distance);
	test_run("inflater_soft_limit_resume", test_soft_limit);
	test_run("inflater_full_resume", test_full_resume);
	test_run("inflater_hist_start", test_hist_start);
	test_run("inflater_rejections", test_rejections);
	test_run("inflater_corruption", test_corruption);
	test_run("inflater_archive_reader", test_archive_reader);
	/* and the portable one */
	inflater_force_generic(1);
	test_run("inflater_generic_charts", test_charts);
	test_run("inflater_generic_zlib_levels_strategies_windows", test_zlib_matrix);
	test_run("inflater_generic_max_length_distance_stored", test_max_length_distance);
	test_run("inflater_generic_corruption", test_corruption);
	inflater_force_generic(0);
	return test_summary();
}
