/*
 * inflater: a fast decoder of raw DEFLATE streams (RFC 1951), written for
 * chart archives, where the whole compressed input is in memory and the
 * whole output goes to one growable buffer. Internal to server/chart.
 *
 * It accepts exactly the streams zlib's raw inflate (windowBits -15) accepts
 * and produces the same bytes; on hostile input it never reads outside
 * in[0..in_len) nor writes outside out[0..out_cap) and reports an error in
 * zlib's words.
 *
 * Usage:
 *   struct inflater z;            (about 26 KB: fine on a normal stack)
 *   inflater_init(&z, in, in_len);
 *   do rc = inflater_run(&z, out, &out_len, out_cap, hist_start, limit);
 *   while (rc == INFLATER_PAUSE or rc == INFLATER_FULL, after growing out);
 *
 * Memory: the decoder owns nothing on the heap; `in` must stay valid and
 * unchanged until the last inflater_run(). The caller owns `out`; the
 * decoder keeps offsets, never pointers into it, so `out` may move (grow)
 * between calls, as long as out[0..*out_len) is kept.
 * Thread-safety: one struct inflater per thread; no shared state.
 */
#ifndef FERRY_CHART_INFLATER_H
#define FERRY_CHART_INFLATER_H

#include <stddef.h>
#include <stdint.h>

enum {
	INFLATER_DONE = 0,   /* the final block ended */
	INFLATER_PAUSE = 1,  /* *out_len reached soft_limit */
	INFLATER_FULL = 2,   /* out[0..out_cap) is full: grow it, call again */
	INFLATER_ERROR = 3,  /* bad or truncated stream: inflater_error() */
};

/* decoding-table sizes: the 2^11-entry (literal/length) and 2^8-entry
 * (distance) first-level tables plus room for every second-level table a
 * complete code can need (at most one per two codes longer than the first
 * level, each at most 2^(15 - first-level bits) entries) */
#define INFLATER_LITLEN_TABLE (2048 + 143 * 16)
#define INFLATER_DIST_TABLE (256 + 15 * 128)

/* the state: all fields are private to inflater.c */
struct inflater {
	const unsigned char *in;
	size_t in_len;
	size_t in_pos;        /* next input byte to load into bits (it may pass
			       * in_len: missing bytes read as zero, and
			       * consuming one of them is "unexpected end") */
	uint64_t bits;        /* bit buffer, next bit lowest */
	unsigned nbits;       /* valid bits in it */
	int state;
	int final;            /* the current block is the last one */
	int fixed_ready;      /* the tables hold the fixed code */
	unsigned copy_len;    /* a match cut short by a full buffer */
	unsigned copy_dist;
	size_t stored_left;   /* bytes left in the current stored block */
	size_t in_used;       /* valid once done */
	const char *err;
	uint32_t litlen[INFLATER_LITLEN_TABLE];
	uint32_t dist[INFLATER_DIST_TABLE];
};

/* Start decoding in[0..in_len) (a raw DEFLATE stream, possibly followed by
 * anything else, e.g. a gzip trailer). */
void inflater_init(struct inflater *z, const unsigned char *in, size_t in_len);

/*
 * Decode into out[0..out_cap), appending at *out_len (updated on every
 * return). Back-references may reach out[hist_start .. *out_len) only
 * (hist_start = where this stream's output began: earlier bytes belong to
 * something else and are out of reach). Returns
 *   INFLATER_DONE   the final block ended; inflater_in_used() tells how
 *                   many whole bytes of input the stream took
 *   INFLATER_PAUSE  *out_len >= soft_limit (stopped at a symbol boundary,
 *                   possibly a few hundred bytes past the limit): call again
 *                   with a higher limit (pass SIZE_MAX for no limit)
 *   INFLATER_FULL   *out_len == out_cap and more output is coming: grow the
 *                   buffer and call again
 *   INFLATER_ERROR  inflater_error() says why; every later call returns
 *                   INFLATER_ERROR too
 * Bytes of out past the returned *out_len (up to out_cap) may have been
 * overwritten with scratch data.
 */
int inflater_run(struct inflater *z, unsigned char *out, size_t *out_len, size_t out_cap,
		 size_t hist_start, size_t soft_limit);

/* after INFLATER_DONE: whole input bytes consumed (what follows starts there) */
size_t inflater_in_used(const struct inflater *z);

/* after INFLATER_ERROR: a short static message ("invalid block type",
 * "invalid distance too far back", "unexpected end of data", ...); NULL
 * before any error */
const char *inflater_error(const struct inflater *z);

/* for tests: nonzero makes every decoder use the portable fast loop even on
 * CPUs where a faster variant (BMI2) exists; process-wide */
void inflater_force_generic(int on);

#endif
