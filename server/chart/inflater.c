/*
 * inflater.c: raw DEFLATE decoding (RFC 1951), see inflater.h.
 *
 * The idea: the input is all in memory and the output is one flat buffer,
 * so there is no window to maintain and back-references are plain copies
 * inside the output. Speed comes from:
 *
 *  - a 64-bit bit buffer refilled without branches: 8 bytes are loaded at
 *    once and as many whole bytes as fit are counted in. Bits above the
 *    count may already hold later input; they are always the right bits,
 *    so OR-ing them in again later changes nothing. Whole table entries are
 *    subtracted from the bit count (only its low byte means anything),
 *    which saves an instruction per symbol.
 *  - decoding tables whose entries say everything about a symbol: a
 *    literal's byte, or a length/distance base together with how many
 *    extra bits follow, and the total bits (code + extra) to drop, so one
 *    lookup and one shift decode a length with its extra bits. Codes longer
 *    than the first-level table (11 bits literal/length, 8 bits distance)
 *    go through a second-level table the entry points to.
 *  - one refill per up to three literals or per literal(s) + match, in a
 *    loop that runs in chunks of iterations known to be safe in advance
 *    (enough input and output room for the worst case), so the iterations
 *    test nothing but a counter; once 32 KiB are out, no distance can
 *    reach before the stream's start and that check goes too.
 *  - match copies by 16 or 8 bytes at a time that may run up to 29 bytes
 *    past the match end (inside the room the chunk was sized for).
 *  - on x86-64 CPUs with BMI2 (checked at run time) the same loop compiled
 *    with BMI2's shift instructions.
 *
 * Everything else (the last bytes of input, the end of the output buffer,
 * block headers) goes through a careful path that reads missing input as
 * zero bytes and checks after every symbol whether it consumed any of them
 * ("unexpected end of data"), and that stops cleanly when the output buffer
 * is full (a match cut short is finished on the next call).
 *
 * Acceptance follows zlib's inflate: over-subscribed codes are refused;
 * incomplete codes are refused except a literal/length or distance code
 * with a single code of length 1 (and a distance code with no codes at
 * all), whose unused codes then fail when met; likewise symbols 286/287 and
 * distance codes 30/31 of the fixed code fail only when used.
 *
 * Table entry layout (uint32_t):
 *   bits 0-7    bits to drop: code length + extra bits (for a pointer to a
 *               second-level table: the first-level bits)
 *   bits 8-11   code length (so extra bits = (bits >> code length) masked);
 *               for a pointer: the second-level table's index bits
 *   bit 12      F_SUB: a pointer; bits 16-31 are the second-level offset
 *   bit 13      F_EOB: end of block
 *   bit 14      F_BAD: no such code / invalid symbol
 *   bit 15      F_LIT: a literal byte, in bits 16-23
 *   bits 16-31  literal, length base, distance base, code-length symbol, or
 *               second-level table offset
 */
#include "server/chart/inflater.h"

#include <string.h>

enum { ST_HEADER, ST_STORED, ST_HUFF, ST_DONE, ST_ERROR };

/* inner results of the block steps: keep going, or return this to the caller */
#define STEP_CONTINUE (-1)

#define F_SUB 0x1000u
#define F_EOB 0x2000u
#define F_BAD 0x4000u
#define F_LIT 0x8000u

#define LITLEN_BITS 11
#define DIST_BITS 8
#define PRECODE_BITS 7

/* output room the fast loop needs past its stop: two literals and a
 * 258-byte match, whose copy may write up to 29 bytes past its end */
#define FAST_OUT_MARGIN 300

static const unsigned short length_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
};
static const unsigned char length_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};
static const unsigned short dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
};
static const unsigned char dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};
/* the order in which code-length code lengths are stored */
static const unsigned char precode_order[19] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
};

/* what a symbol means, before its code length is added (bits 0-7: extra bits) */
static uint32_t litlen_symbol(unsigned s)
{
	if (s < 256)
		return F_LIT | (uint32_t)s << 16;
	if (s == 256)
		return F_EOB;
	if (s < 286)
		return (uint32_t)length_base[s - 257] << 16 | length_extra[s - 257];
	return F_BAD;
}

static uint32_t dist_symbol(unsigned s)
{
	if (s < 30)
		return (uint32_t)dist_base[s] << 16 | dist_extra[s];
	return F_BAD;
}

static uint32_t precode_symbol(unsigned s)
{
	return (uint32_t)s << 16;
}

enum { KIND_LITLEN, KIND_DIST, KIND_PRECODE };

/* the next len-bit code, both bit-reversed: add 1 at the top bit, carrying
 * downwards (DEFLATE sends codes most significant bit first, and the tables
 * are indexed by the bits in the order they arrive) */
static unsigned next_reversed(unsigned rev, unsigned len)
{
	unsigned bit = 1u << (len - 1);
	while (rev & bit) {
		rev ^= bit;
		bit >>= 1;
	}
	return rev | bit;
}

/*
 * Build the decoding table of a canonical Huffman code given by lens[0..n)
 * (0 = symbol unused). root: first-level index bits; cap: table size.
 * Returns 0, or -1 for a set of lengths zlib refuses.
 */
static int build_table(uint32_t *table, size_t cap, unsigned root, const unsigned char *lens, unsigned n, int kind)
{
	unsigned count[16] = { 0 }, offs[16], left_at[16];
	unsigned short sorted[288];
	unsigned max = 0;
	for (unsigned s = 0; s < n; s++)
		count[lens[s]]++;
	count[0] = 0;
	for (unsigned l = 1; l <= 15; l++)
		if (count[l])
			max = l;
	/* Kraft sum: negative = over-subscribed, positive = incomplete */
	long left = 1;
	for (unsigned l = 1; l <= 15; l++) {
		left = 2 * left - (long)count[l];
		if (left < 0)
			return -1;
	}
	if (left > 0) {
		/* zlib takes an incomplete literal/length or distance code only
		 * when it is empty or a single code of length 1 */
		if (kind == KIND_PRECODE || max > 1)
			return -1;
		for (size_t i = 0; i < ((size_t)1 << root); i++)
			table[i] = F_BAD;
		for (unsigned s = 0; s < n; s++)
			if (lens[s] == 1) {
				uint32_t e = (kind == KIND_LITLEN ? litlen_symbol(s) : dist_symbol(s)) + 1 + (1u << 8);
				for (size_t i = 0; i < ((size_t)1 << root); i += 2)
					table[i] = e;
			}
		return 0;
	}
	/* complete: sort the symbols by code length, then by value */
	offs[1] = 0;
	for (unsigned l = 1; l < 15; l++)
		offs[l + 1] = offs[l] + count[l];
	for (unsigned s = 0; s < n; s++)
		if (lens[s])
			sorted[offs[lens[s]]++] = (unsigned short)s;
	for (unsigned l = 1; l <= 15; l++)
		left_at[l] = count[l];
	unsigned rev = 0, k = 0;   /* next canonical code (bit-reversed), its index in sorted */
	size_t next_sub = (size_t)1 << root, sub_start = 0;
	unsigned sub_bits = 0, sub_prefix = ~0u;
	for (unsigned l = 1; l <= max; l++) {
		for (unsigned c = 0; c < count[l]; c++, k++, rev = next_reversed(rev, l)) {
			unsigned s = sorted[k];
			uint32_t sym = kind == KIND_LITLEN ? litlen_symbol(s) : kind == KIND_DIST ? dist_symbol(s) : precode_symbol(s);
			if (l <= root) {
				uint32_t e = sym + l + (l << 8);
				for (size_t i = rev; i < ((size_t)1 << root); i += (size_t)1 << l)
					table[i] = e;
				continue;
			}
			unsigned prefix = rev & ((1u << root) - 1);
			if (prefix != sub_prefix) {
				/* a new second-level table: as many index bits as it
				 * takes for the codes sharing this prefix to fill it */
				unsigned bits = l - root;
				long room = (long)1 << bits;
				for (;;) {
					room -= (long)left_at[root + bits];
					if (room <= 0 || root + bits >= max)
						break;
					bits++;
					room *= 2;
				}
				if (next_sub + ((size_t)1 << bits) > cap)
					return -1;   /* cannot happen for a complete code */
				sub_prefix = prefix;
				sub_bits = bits;
				sub_start = next_sub;
				next_sub += (size_t)1 << bits;
				table[prefix] = F_SUB | (uint32_t)sub_start << 16 | bits << 8 | root;
			}
			unsigned sl = l - root;
			uint32_t e = sym + sl + (sl << 8);
			for (size_t i = rev >> root; i < ((size_t)1 << sub_bits); i += (size_t)1 << sl)
				table[sub_start + i] = e;
			left_at[l]--;
		}
		/* the next length's first code is this one shifted left: in
		 * reversed form, the same number */
	}
	return 0;
}

static void build_fixed(struct inflater *z)
{
	unsigned char lens[288];
	memset(lens, 8, 144);
	memset(lens + 144, 9, 112);
	memset(lens + 256, 7, 24);
	memset(lens + 280, 8, 8);
	build_table(z->litlen, INFLATER_LITLEN_TABLE, LITLEN_BITS, lens, 288, KIND_LITLEN);
	memset(lens, 5, 32);
	build_table(z->dist, INFLATER_DIST_TABLE, DIST_BITS, lens, 32, KIND_DIST);
	z->fixed_ready = 1;
}

/* ---------------------------------------------------------------- bits */

static inline uint64_t load64le(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* careful refill: at least n (<= 56) bits, missing input reads as zero */
static void need(struct inflater *z, unsigned n)
{
	while (z->nbits < n) {
		unsigned char b = z->in_pos < z->in_len ? z->in[z->in_pos] : 0;
		z->bits |= (uint64_t)b << z->nbits;
		z->in_pos++;
		z->nbits += 8;
	}
}

static unsigned take(struct inflater *z, unsigned n)
{
	need(z, n);
	unsigned v = (unsigned)(z->bits & (((uint64_t)1 << n) - 1));
	z->bits >>= n;
	z->nbits -= n;
	return v;
}

/* bits consumed so far */
static size_t consumed(const struct inflater *z)
{
	return z->in_pos * 8 - z->nbits;
}

/* were bits past the end of the input consumed (plus `more` about to be)? */
static int overrun(const struct inflater *z, unsigned more)
{
	return consumed(z) + more > z->in_len * 8;
}

static int fail(struct inflater *z, const char *msg)
{
	if (overrun(z, 0))
		msg = "unexpected end of data";
	z->err = msg;
	z->state = ST_ERROR;
	return INFLATER_ERROR;
}

static void finish_stream(struct inflater *z)
{
	z->in_used = (consumed(z) + 7) / 8;
	z->state = ST_DONE;
}

/* ---------------------------------------------------------------- headers */

static int read_dynamic(struct inflater *z)
{
	unsigned char lens[286 + 30];
	unsigned char plens[19];
	uint32_t ptable[1 << PRECODE_BITS];
	unsigned hlit = take(z, 5) + 257;
	unsigned hdist = take(z, 5) + 1;
	unsigned hclen = take(z, 4) + 4;
	if (hlit > 286 || hdist > 30)
		return fail(z, "too many length or distance symbols");
	memset(plens, 0, sizeof(plens));
	for (unsigned i = 0; i < hclen; i++)
		plens[precode_order[i]] = (unsigned char)take(z, 3);
	if (build_table(ptable, 1 << PRECODE_BITS, PRECODE_BITS, plens, 19, KIND_PRECODE))
		return fail(z, "invalid code lengths set");
	unsigned total = hlit + hdist;
	for (unsigned n = 0; n < total;) {
		need(z, 14);
		uint32_t e = ptable[z->bits & ((1u << PRECODE_BITS) - 1)];
		z->bits >>= e & 0xff;
		z->nbits -= e & 0xff;
		unsigned sym = e >> 16, rep;
		unsigned char val = 0;
		if (sym < 16) {
			lens[n++] = (unsigned char)sym;
			continue;
		}
		if (sym == 16) {
			if (n == 0)
				return fail(z, "invalid bit length repeat");
			val = lens[n - 1];
			rep = 3 + take(z, 2);
		} else if (sym == 17) {
			rep = 3 + take(z, 3);
		} else {
			rep = 11 + take(z, 7);
		}
		if (n + rep > total)
			return fail(z, "invalid bit length repeat");
		memset(lens + n, val, rep);
		n += rep;
	}
	if (overrun(z, 0))
		return fail(z, "unexpected end of data");
	if (lens[256] == 0)
		return fail(z, "invalid code -- missing end-of-block");
	z->fixed_ready = 0;
	if (build_table(z->litlen, INFLATER_LITLEN_TABLE, LITLEN_BITS, lens, hlit, KIND_LITLEN))
		return fail(z, "invalid literal/lengths set");
	if (build_table(z->dist, INFLATER_DIST_TABLE, DIST_BITS, lens + hlit, hdist, KIND_DIST))
		return fail(z, "invalid distances set");
	return STEP_CONTINUE;
}

static int read_header(struct inflater *z)
{
	unsigned h = take(z, 3);
	if (overrun(z, 0))
		return fail(z, "unexpected end of data");
	z->final = h & 1;
	switch (h >> 1) {
	case 0: {
		/* stored: skip to a byte boundary, then LEN and NLEN */
		take(z, z->nbits & 7);
		unsigned len = take(z, 16), nlen = take(z, 16);
		if (overrun(z, 0))
			return fail(z, "unexpected end of data");
		if (len != (~nlen & 0xffff))
			return fail(z, "invalid stored block lengths");
		/* hand the bytes still in the bit buffer back to the input */
		z->in_pos -= z->nbits / 8;
		z->bits = 0;
		z->nbits = 0;
		if (z->in_len - z->in_pos < len)
			return fail(z, "unexpected end of data");
		z->stored_left = len;
		z->state = ST_STORED;
		return STEP_CONTINUE;
	}
	case 1:
		if (!z->fixed_ready)
			build_fixed(z);
		z->state = ST_HUFF;
		return STEP_CONTINUE;
	case 2: {
		int rc = read_dynamic(z);
		if (rc == STEP_CONTINUE)
			z->state = ST_HUFF;
		return rc;
	}
	default:
		return fail(z, "invalid block type");
	}
}

static int copy_stored(struct inflater *z, unsigned char *out, size_t *o_io, size_t cap, size_t soft_limit)
{
	size_t o = *o_io;
	int rc = STEP_CONTINUE;
	while (z->stored_left) {
		if (o >= soft_limit) {
			rc = INFLATER_PAUSE;
			goto out;
		}
		if (o >= cap) {
			rc = INFLATER_FULL;
			goto out;
		}
		size_t n = z->stored_left;
		if (n > cap - o)
			n = cap - o;
		if (n > soft_limit - o)
			n = soft_limit - o;
		memcpy(out + o, z->in + z->in_pos, n);
		o += n;
		z->in_pos += n;
		z->stored_left -= n;
	}
	if (z->final)
		finish_stream(z);
	else
		z->state = ST_HEADER;
out:
	*o_io = o;
	return rc;
}

/* low_mask[n]: the n low bits set (n <= 28: code + extra bits); one AND
 * with a table operand is cheaper than building the mask with shifts */
static const uint32_t low_mask[32] = {
	0x0, 0x1, 0x3, 0x7, 0xf, 0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff, 0x3fff, 0x7fff,
	0xffff, 0x1ffff, 0x3ffff, 0x7ffff, 0xfffff, 0x1fffff, 0x3fffff, 0x7fffff, 0xffffff, 0x1ffffff,
	0x3ffffff, 0x7ffffff, 0xfffffff, 0x1fffffff, 0x3fffffff, 0x7fffffff,
};

/* ---------------------------------------------------------------- matches */

static inline void copy8(unsigned char *dst, const unsigned char *src)
{
	uint64_t v;
	memcpy(&v, src, 8);
	memcpy(dst, &v, 8);
}

static inline void copy16(unsigned char *dst, const unsigned char *src)
{
	unsigned char v[16];
	memcpy(v, src, 16);
	memcpy(dst, v, 16);
}

/* for a distance d < 8: a multiple of d that is at least 8 (the match
 * repeats with that period too, and is then copied by words) */
static const unsigned char short_period[8] = { 0, 8, 8, 9, 8, 10, 12, 14 };

/* copy a match of len (3..258) from dist back; may write up to 29 bytes
 * past op + len */
static inline void copy_match_fast(unsigned char *op, size_t dist, unsigned len)
{
	const unsigned char *src = op - dist;
	if (dist >= 16) {
		/* most matches are short: two unconditional 16-byte copies
		 * (each reads only bytes before the ones it writes) */
		copy16(op, src);
		copy16(op + 16, src + 16);
		if (len > 32) {
			unsigned char *end = op + len;
			op += 32;
			src += 32;
			do {
				copy16(op, src);
				op += 16;
				src += 16;
			} while (op < end);
		}
	} else if (dist >= 8) {
		unsigned char *end = op + len;
		do {
			copy8(op, src);
			op += 8;
			src += 8;
		} while (op < end);
	} else if (dist == 1) {
		unsigned char *end = op + len;
		uint64_t v = (uint64_t)src[0] * 0x0101010101010101ull;
		do {
			memcpy(op, &v, 8);
			op += 8;
		} while (op < end);
	} else {
		unsigned char *end = op + len;
		for (int i = 0; i < 8; i++)
			op[i] = src[i];
		op += 8;
		size_t period = short_period[dist];
		while (op < end) {
			copy8(op, op - period);
			op += 8;
		}
	}
}

/* ---------------------------------------------------------------- huffman blocks */

/* the fast loop's state, copied in and out of locals */
struct fast {
	const uint32_t *lt, *dt;
	const unsigned char *in;
	size_t in_len, ip;
	uint64_t bb;
	unsigned bc;
	unsigned char *out;
	size_t o, stop, hist_start;
	const char *err;
};

enum { FAST_MORE, FAST_EOB, FAST_ERROR };

/* the registers of the fast loop */
struct regs {
	uint64_t bb;          /* bit buffer */
	unsigned bc;          /* bits in it: the low 8 bits only (whole entries
			       * are subtracted, so the bits above are junk) */
	size_t ip;
	unsigned char *op;
};

/*
 * k iterations of the fast loop, each safe without checks of input or output
 * room (the caller worked k out). Each refills the bit buffer (>= 56 bits)
 * and then decodes up to three literals (<= 15 bits each), or up to two
 * literals, a second refill and one length and distance (<= 20 + 28 bits):
 * at most 2 + 258 bytes of output (plus the scratch a match copy may write
 * past its end), at most 14 bytes of input and 15 bytes read. check_far: distances may reach before hist
 * (a constant: once 32 KiB are out, no distance can, and the check goes).
 */
static inline __attribute__((always_inline)) int fast_chunk(const uint32_t *lt, const uint32_t *dt,
							    const unsigned char *in, const unsigned char *hist,
							    struct regs *r, size_t k, const int check_far,
							    const char **err)
{
	uint64_t bb = r->bb, saved;
	unsigned bc = r->bc;
	size_t ip = r->ip;
	unsigned char *op = r->op;
	int rc = FAST_MORE;
	uint32_t e, n;
	unsigned len;
	size_t dist;
	do {
		bb |= load64le(in + ip) << (uint8_t)bc;
		ip += 7 - ((bc >> 3) & 7);
		bc |= 56;
		e = lt[bb & ((1u << LITLEN_BITS) - 1)];
		if (e & F_LIT) {
			bb >>= (uint8_t)e;
			bc -= e;
			*op++ = (unsigned char)(e >> 16);
			e = lt[bb & ((1u << LITLEN_BITS) - 1)];
			if (e & F_LIT) {
				bb >>= (uint8_t)e;
				bc -= e;
				*op++ = (unsigned char)(e >> 16);
				e = lt[bb & ((1u << LITLEN_BITS) - 1)];
				if (e & F_LIT) {
					bb >>= (uint8_t)e;
					bc -= e;
					*op++ = (unsigned char)(e >> 16);
					continue;
				}
			}
			/* something else after one or two literals: refill (the
			 * entry stays valid: refilling adds bits at the top) */
			bb |= load64le(in + ip) << (uint8_t)bc;
			ip += 7 - ((bc >> 3) & 7);
			bc |= 56;
		}
		if (__builtin_expect((e & (F_SUB | F_EOB | F_BAD)) != 0, 0)) {
			if (e & F_SUB) {
				bb >>= (uint8_t)e;
				bc -= e;
				e = lt[(e >> 16) + (bb & ((1u << ((e >> 8) & 15)) - 1))];
				if (e & F_LIT) {
					bb >>= (uint8_t)e;
					bc -= e;
					*op++ = (unsigned char)(e >> 16);
					continue;
				}
			}
			if (e & (F_EOB | F_BAD)) {
				bb >>= (uint8_t)e;
				bc -= e;
				if (e & F_BAD) {
					*err = "invalid literal/length code";
					rc = FAST_ERROR;
				} else {
					rc = FAST_EOB;
				}
				break;
			}
		}
		/* a length (no flags: bits 8-15 are the code length) */
		saved = bb;
		n = (uint8_t)e;
		bb >>= n;
		bc -= e;
		len = (e >> 16) + (((uint32_t)saved & low_mask[n]) >> (uint8_t)(e >> 8));
		/* >= 36 bits left: enough for a distance */
		e = dt[bb & ((1u << DIST_BITS) - 1)];
		if (__builtin_expect((e & (F_SUB | F_BAD)) != 0, 0)) {
			if (e & F_SUB) {
				bb >>= (uint8_t)e;
				bc -= e;
				e = dt[(e >> 16) + (bb & ((1u << ((e >> 8) & 15)) - 1))];
			}
			if (e & F_BAD) {
				*err = "invalid distance code";
				rc = FAST_ERROR;
				break;
			}
		}
		saved = bb;
		n = (uint8_t)e;
		bb >>= n;
		bc -= e;
		dist = (e >> 16) + (((uint32_t)saved & low_mask[n]) >> (uint8_t)(e >> 8));
		if (check_far && __builtin_expect(dist > (size_t)(op - hist), 0)) {
			*err = "invalid distance too far back";
			rc = FAST_ERROR;
			break;
		}
		copy_match_fast(op, dist, len);
		op += len;
	} while (--k);
	r->bb = bb;
	r->bc = bc;
	r->ip = ip;
	r->op = op;
	return rc;
}

/*
 * Decode while the input has 8 bytes past every refill and the output has
 * FAST_OUT_MARGIN bytes of room before f->stop.
 */
static inline __attribute__((always_inline)) int fast_loop_body(struct fast *f)
{
	unsigned char *const out = f->out;
	const unsigned char *const hist = out + f->hist_start;
	unsigned char *const ostop = out + f->stop;
	struct regs r = { f->bb, f->bc, f->ip, out + f->o };
	int rc = FAST_MORE;
	while (rc == FAST_MORE) {
		/* iterations that are safe without further checks: each reads up
		 * to 15 bytes from ip and moves ip by <= 14; each writes <= 260
		 * bytes (and scratch within FAST_OUT_MARGIN) */
		if (r.op >= ostop || r.ip + 15 > f->in_len)
			break;
		size_t k = (size_t)(ostop - r.op) / 260 + 1, kin = (f->in_len - r.ip - 15) / 14 + 1;
		if (k > kin)
			k = kin;
		size_t reach = (size_t)(r.op - hist);
		if (reach >= 32768) {
			rc = fast_chunk(f->lt, f->dt, f->in, hist, &r, k, 0, &f->err);
		} else {
			/* until 32 KiB are out (each iteration writes >= 1 byte) */
			if (k > 32768 - reach)
				k = 32768 - reach;
			rc = fast_chunk(f->lt, f->dt, f->in, hist, &r, k, 1, &f->err);
		}
	}
	f->bb = r.bb;
	f->bc = (uint8_t)r.bc;
	f->ip = r.ip;
	f->o = (size_t)(r.op - out);
	return rc;
}

static int fast_loop_generic(struct fast *f)
{
	return fast_loop_body(f);
}

#if defined(__GNUC__) && defined(__x86_64__)
/* the same loop with BMI2's shifts and bit extraction (no shift-count
 * register juggling): about a fifth fewer instructions */
#define HAVE_FAST_LOOP_BMI2 1
__attribute__((target("bmi2"))) static int fast_loop_bmi2(struct fast *f)
{
	return fast_loop_body(f);
}
#endif

static _Atomic int force_generic;

void inflater_force_generic(int on)
{
	force_generic = on;
}

static int fast_loop(struct fast *f)
{
#ifdef HAVE_FAST_LOOP_BMI2
	if (__builtin_cpu_supports("bmi2") && !force_generic)
		return fast_loop_bmi2(f);
#endif
	return fast_loop_generic(f);
}

static int decode_huff(struct inflater *z, unsigned char *out, size_t *o_io, size_t cap, size_t hist_start,
		       size_t soft_limit)
{
	size_t o = *o_io;
	int rc = STEP_CONTINUE;
	const uint32_t *lt = z->litlen, *dt = z->dist;

	/* a match cut short by a full buffer last time */
	if (z->copy_len) {
		if (o >= soft_limit) {
			rc = INFLATER_PAUSE;
			goto out;
		}
		size_t n = z->copy_len;
		if (n > cap - o)
			n = cap - o;
		for (size_t i = 0; i < n; i++)
			out[o + i] = out[o + i - z->copy_dist];
		o += n;
		z->copy_len -= (unsigned)n;
		if (z->copy_len) {
			rc = INFLATER_FULL;
			goto out;
		}
	}

	/* the fast loop */
	{
		struct fast f;
		f.lt = lt;
		f.dt = dt;
		f.in = z->in;
		f.in_len = z->in_len;
		f.ip = z->in_pos;
		f.bb = z->bits;
		f.bc = z->nbits;
		f.out = out;
		f.o = o;
		f.stop = cap > FAST_OUT_MARGIN ? cap - FAST_OUT_MARGIN : 0;
		if (f.stop > soft_limit)
			f.stop = soft_limit;
		f.hist_start = hist_start;
		f.err = NULL;
		int r = fast_loop(&f);
		z->bits = f.bb;
		z->nbits = f.bc;
		z->in_pos = f.ip;
		o = f.o;
		if (r == FAST_ERROR) {
			rc = fail(z, f.err);
			goto out;
		}
		if (r == FAST_EOB) {
			if (z->final)
				finish_stream(z);
			else
				z->state = ST_HEADER;
			goto out;
		}
	}

	/* the careful loop: near the end of the input or of the output */
	for (;;) {
		if (o >= soft_limit) {
			rc = INFLATER_PAUSE;
			goto out;
		}
		/* a whole symbol: <= 15 + 5 bits of length, <= 15 + 13 of distance */
		need(z, 48);
		uint64_t bb = z->bits, saved;
		unsigned drop = 0, n;
		uint32_t e = lt[bb & ((1u << LITLEN_BITS) - 1)];
		if (e & F_SUB) {
			drop = e & 0xff;
			bb >>= drop;
			e = lt[(e >> 16) + (bb & ((1u << ((e >> 8) & 15)) - 1))];
		}
		if (e & F_BAD) {
			rc = overrun(z, drop + 1) ? fail(z, "unexpected end of data") : fail(z, "invalid literal/length code");
			goto out;
		}
		/* no room: stop before taking the symbol (unless it ends the block) */
		if (o >= cap && !(e & F_EOB)) {
			rc = INFLATER_FULL;
			goto out;
		}
		saved = bb;
		n = e & 0xff;
		bb >>= n;
		drop += n;
		z->bits = bb;
		z->nbits -= drop;
		if (overrun(z, 0)) {
			rc = fail(z, "unexpected end of data");
			goto out;
		}
		if (e & F_LIT) {
			out[o++] = (unsigned char)(e >> 16);
			continue;
		}
		if (e & F_EOB) {
			if (z->final)
				finish_stream(z);
			else
				z->state = ST_HEADER;
			goto out;
		}
		unsigned len = (e >> 16) + (unsigned)((saved & (((uint64_t)1 << n) - 1)) >> ((e >> 8) & 15));
		drop = 0;
		e = dt[bb & ((1u << DIST_BITS) - 1)];
		if (e & F_SUB) {
			drop = e & 0xff;
			bb >>= drop;
			e = dt[(e >> 16) + (bb & ((1u << ((e >> 8) & 15)) - 1))];
		}
		if (e & F_BAD) {
			rc = overrun(z, drop + 1) ? fail(z, "unexpected end of data") : fail(z, "invalid distance code");
			goto out;
		}
		saved = bb;
		n = e & 0xff;
		bb >>= n;
		drop += n;
		z->bits = bb;
		z->nbits -= drop;
		if (overrun(z, 0)) {
			rc = fail(z, "unexpected end of data");
			goto out;
		}
		size_t dist = (e >> 16) + (size_t)((saved & (((uint64_t)1 << n) - 1)) >> ((e >> 8) & 15));
		if (dist > o - hist_start) {
			rc = fail(z, "invalid distance too far back");
			goto out;
		}
		size_t m = len;
		if (m > cap - o)
			m = cap - o;
		for (size_t i = 0; i < m; i++)
			out[o + i] = out[o + i - dist];
		o += m;
		if (m < len) {
			z->copy_len = len - (unsigned)m;
			z->copy_dist = (unsigned)dist;
			rc = INFLATER_FULL;
			goto out;
		}
	}
out:
	*o_io = o;
	return rc;
}

/* ---------------------------------------------------------------- API */

void inflater_init(struct inflater *z, const unsigned char *in, size_t in_len)
{
	z->in = in;
	z->in_len = in_len;
	z->in_pos = 0;
	z->bits = 0;
	z->nbits = 0;
	z->state = ST_HEADER;
	z->final = 0;
	z->fixed_ready = 0;
	z->copy_len = 0;
	z->copy_dist = 0;
	z->stored_left = 0;
	z->in_used = 0;
	z->err = NULL;
}

int inflater_run(struct inflater *z, unsigned char *out, size_t *out_len, size_t out_cap,
		 size_t hist_start, size_t soft_limit)
{
	size_t o = *out_len;
	int rc;
	if (z->state != ST_ERROR && (o > out_cap || hist_start > o)) {
		z->err = "invalid output buffer";
		z->state = ST_ERROR;
	}
	for (;;) {
		switch (z->state) {
		case ST_HEADER:
			rc = read_header(z);
			break;
		case ST_STORED:
			rc = copy_stored(z, out, &o, out_cap, soft_limit);
			break;
		case ST_HUFF:
			rc = decode_huff(z, out, &o, out_cap, hist_start, soft_limit);
			break;
		case ST_DONE:
			rc = INFLATER_DONE;
			break;
		default:
			rc = INFLATER_ERROR;
			break;
		}
		if (rc != STEP_CONTINUE)
			break;
	}
	*out_len = o;
	return rc;
}

size_t inflater_in_used(const struct inflater *z)
{
	return z->in_used;
}

const char *inflater_error(const struct inflater *z)
{
	return z->err;
}
