/*
 * crc32.c: CRC-32 by folding with carry-less multiplication (see crc32.h).
 *
 * The idea (Gopal et al., "Fast CRC Computation for Generic Polynomials
 * Using PCLMULQDQ Instruction", Intel 2009): a 128-bit block can be moved
 * ("folded") 512 or 128 bits further down the message by multiplying its
 * two halves with constants x^k mod P, so four lanes of 128 bits absorb the
 * input 64 bytes at a time; the lanes are then folded into one, reduced to
 * 64 and 32 bits, and a Barrett reduction yields the remainder. The
 * constants below are those powers of x modulo the gzip polynomial in the
 * bit-reflected form gzip uses. Short tails and CPUs without PCLMULQDQ go
 * through zlib's crc32_z().
 */
#include "server/chart/crc32.h"

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

/* the inverted running state: len >= 64, a multiple of 16 */
CLMUL_TARGET static uint32_t fold(uint32_t state, const unsigned char *p, size_t len)
{
	const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);  /* x^(4*128+-32) */
	const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);  /* x^(128+-32) */
	const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124LL);                /* x^64 */
	const __m128i poly = _mm_set_epi64x(0x1f7011641LL, 0x1db710641LL);  /* mu, P */
	const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
	__m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
	__m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
	__m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
	__m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
	x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)state));
	p += 64;
	len -= 64;
	/* four lanes, 64 bytes a step */
	while (len >= 64) {
		__m128i h1 = _mm_clmulepi64_si128(x1, k1k2, 0x11), l1 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
		__m128i h2 = _mm_clmulepi64_si128(x2, k1k2, 0x11), l2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
		__m128i h3 = _mm_clmulepi64_si128(x3, k1k2, 0x11), l3 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
		__m128i h4 = _mm_clmulepi64_si128(x4, k1k2, 0x11), l4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
		x1 = _mm_xor_si128(_mm_xor_si128(h1, l1), _mm_loadu_si128((const __m128i *)(p + 0)));
		x2 = _mm_xor_si128(_mm_xor_si128(h2, l2), _mm_loadu_si128((const __m128i *)(p + 16)));
		x3 = _mm_xor_si128(_mm_xor_si128(h3, l3), _mm_loadu_si128((const __m128i *)(p + 32)));
		x4 = _mm_xor_si128(_mm_xor_si128(h4, l4), _mm_loadu_si128((const __m128i *)(p + 48)));
		p += 64;
		len -= 64;
	}
	/* the four lanes into one, then the remaining 16-byte blocks */
	__m128i next[3] = { x2, x3, x4 };
	for (int i = 0; i < 3; i++) {
		__m128i h = _mm_clmulepi64_si128(x1, k3k4, 0x11), l = _mm_clmulepi64_si128(x1, k3k4, 0x00);
		x1 = _mm_xor_si128(_mm_xor_si128(h, l), next[i]);
	}
	while (len >= 16) {
		__m128i h = _mm_clmulepi64_si128(x1, k3k4, 0x11), l = _mm_clmulepi64_si128(x1, k3k4, 0x00);
		x1 = _mm_xor_si128(_mm_xor_si128(h, l), _mm_loadu_si128((const __m128i *)p));
		p += 16;
		len -= 16;
	}
	/* 128 -> 64 bits */
	__m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
	t = _mm_srli_si128(x1, 4);
	x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5, 0x00);
	x1 = _mm_xor_si128(x1, t);
	/* Barrett reduction to 32 bits */
	t = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly, 0x10);
	t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
	x1 = _mm_xor_si128(x1, t);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int have_clmul(void)
{
	static int cached = -1;
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (v < 0) {
		unsigned a, b, c, d;
		v = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_PCLMUL) && (c & bit_SSE4_1);
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v;
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	if (len >= 64 && have_clmul()) {
		size_t n = len & ~(size_t)15;
		crc = ~fold(~crc, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)crc32_z(crc, p, len);
}

#else

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32_z(crc, buf, len);
}

#endif
