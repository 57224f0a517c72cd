/*
 * wordscan: word-at-a-time byte scanning for the chart engine's readers
 * (yamlfast.c, value.c's JSON reader). Internal to server/chart; header only.
 *
 * 8 bytes are loaded as one little-endian word and the bytes of interest get
 * their 0x80 bit set in a mask. The tricks may also flag bytes above a
 * flagged one (borrows), never below, so the lowest flagged byte is always
 * exact, which is all the scanners use. No state; thread-safe.
 */
#ifndef FERRY_CHART_WORDSCAN_H
#define FERRY_CHART_WORDSCAN_H

#include <stdint.h>
#include <string.h>

#define WORD_ONES 0x0101010101010101ull
#define WORD_HIGH 0x8080808080808080ull

/* 8 bytes at p (any alignment) as a word whose lowest byte is the first */
static inline uint64_t word_load8(const char *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/* flags on the bytes of w equal to c */
static inline uint64_t word_bytes_eq(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (WORD_ONES * c);
	return (x - WORD_ONES) & ~x & WORD_HIGH;
}

/* flags on the bytes of w below c (c <= 0x80) */
static inline uint64_t word_bytes_below(uint64_t w, unsigned char c)
{
	return (w - WORD_ONES * c) & ~w & WORD_HIGH;
}

/* the index of the lowest byte of m with a bit set (m != 0) */
static inline unsigned word_first(uint64_t m)
{
	return (unsigned)__builtin_ctzll(m) / 8;
}

/* the first byte at or after p that is not a space (end if none) */
static inline const char *word_skip_spaces(const char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t x = word_load8(p) ^ (WORD_ONES * ' ');
		if (x) /* the lowest non-zero byte holds x's lowest set bit */
			return p + word_first(x);
		p += 8;
	}
	while (p < end && *p == ' ')
		p++;
	return p;
}

#endif
