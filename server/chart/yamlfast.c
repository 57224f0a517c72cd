/*
 * yamlfast.c: a hand-written reader for block-style YAML (see yamlfast.h).
 *
 * The idea: values files and rendered manifests use a small, regular part
 * of YAML (block mappings and sequences, one-line scalars, comments, a few
 * block scalars and tiny flow collections). For that part the structure is
 * decided line by line from indentation, so a reader that looks at each
 * line's indentation and first characters is enough, and it can skip
 * comment lines with memchr instead of decoding every character as libyaml
 * does (~130 instructions per byte).
 *
 * It works in two passes. validate() checks every byte the way libyaml's
 * reader does (UTF-8 well-formed, printable) and refuses line breaks other
 * than '\n'. Then a recursive descent over lines reports the nodes to a
 * sink in document order (scalar, start and end of a collection), which is
 * the order in which libyaml's loader numbers them. Two sinks exist: the
 * document builder here (yamlfast_load: the structures of <yaml.h>, node
 * memory from an arena, see yamlfast.h) and yaml.c's converter that builds
 * chart values directly. The
 * places where YAML is subtle are reproduced from libyaml's scanner:
 *   - where a plain scalar ends (": ", " #", end of line) and when the next
 *     line would continue it (a content line deeper than the innermost block
 *     collection's column, libyaml's parser->indent): we bail there;
 *   - block scalars (|, >, chomping) follow libyaml's algorithm step by step
 *     (indentation detection from the first non-empty line, whitespace-only
 *     lines, folding rules);
 *   - simple keys must fit in 1024 characters.
 * Everything else that is not plainly in the subset returns "not handled"
 * and the caller falls back to libyaml. Functions return 1, or 0 for "not
 * handled" (also when the sink refuses an event); on the way out the sink's
 * owner discards what it built.
 */
#include "server/chart/yamlfast.h"
#include "server/chart/wordscan.h"

#include "server/common/buf.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static atomic_size_t yf_hits, yf_bails;
static atomic_int yf_disabled;

enum { YF_MAX_DEPTH = 200, YF_MAX_KEY = 1000 };

struct yf {
	const char *p;     /* cursor */
	const char *ls;    /* start of the line holding p; all before is consumed */
	const char *end;
	const struct yamlfast_sink *sink;
	struct buf sb;     /* decoded scalar text */
	int depth;
	int start_ok;      /* a leading "---" line is still allowed */
	int explicit_start;
};

/* ---------------------------------------------------------------- events */

static inline int add_scalar(struct yf *Y, const char *s, size_t n, yaml_scalar_style_t style)
{
	if (n > INT_MAX / 2)
		return 0;
	return Y->sink->scalar(Y->sink->ctx, s, n, style) == 0;
}

static int add_empty(struct yf *Y)
{
	return add_scalar(Y, "", 0, YAML_PLAIN_SCALAR_STYLE);
}

static int add_collection(struct yf *Y, int map, int flow)
{
	return Y->sink->begin(Y->sink->ctx, map, flow) == 0;
}

static int close_collection(struct yf *Y)
{
	return Y->sink->end(Y->sink->ctx) == 0;
}

/* ---------------------------------------------------------------- document sink */

/* memory of a document: nodes array plus bump-allocated blocks holding
 * scalar values and item/pair arrays */
struct yf_block {
	struct yf_block *next;
	size_t used, cap;
	/* data follows */
};

struct docb {
	yaml_document_t *doc;
	struct yf_block *mem;
	size_t ncap;       /* nodes allocated in doc->nodes */
	int *kids;         /* children of the open collections (ids; pairs as key, value) */
	size_t nkids, kcap;
	size_t *open;      /* open collections: id, then the index of its first kid */
	size_t nopen, ocap;
};

static void *arena_alloc(struct docb *D, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct yf_block *b = D->mem;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 60000 ? n : 60000;
		b = xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->used = 0;
		b->next = D->mem;
		D->mem = b;
	}
	void *p = (char *)(b + 1) + b->used;
	b->used += n;
	return p;
}

static void free_mem(struct yf_block *b)
{
	while (b) {
		struct yf_block *n = b->next;
		free(b);
		b = n;
	}
}

static void push_kid(struct docb *D, int id)
{
	if (D->nkids == D->kcap) {
		D->kcap = D->kcap ? D->kcap * 2 : 256;
		D->kids = xrealloc(D->kids, D->kcap * sizeof(int));
	}
	D->kids[D->nkids++] = id;
}

/* a new node (zeroed, type and tag set), a kid of the open collection if
 * any; its id, or 0 */
static int new_node(struct docb *D, yaml_node_type_t type, const char *tag)
{
	yaml_document_t *d = D->doc;
	size_t n = (size_t)(d->nodes.top - d->nodes.start);
	if (n >= (size_t)INT_MAX - 1)
		return 0;
	if (n == D->ncap) {
		D->ncap = D->ncap ? D->ncap * 2 : 64;
		d->nodes.start = xrealloc(d->nodes.start, D->ncap * sizeof(yaml_node_t));
		d->nodes.top = d->nodes.start + n;
		d->nodes.end = d->nodes.start + D->ncap;
	}
	/* a compound literal: inline stores instead of a memset call */
	*d->nodes.top++ = (yaml_node_t){ .type = type, .tag = (yaml_char_t *)tag };
	if (D->nopen)
		push_kid(D, (int)n + 1);
	return (int)n + 1;
}

static int doc_scalar(void *ctx, const char *s, size_t n, yaml_scalar_style_t style)
{
	struct docb *D = ctx;
	int id = new_node(D, YAML_SCALAR_NODE, YAML_STR_TAG);
	if (!id)
		return -1;
	char *v = arena_alloc(D, n + 1);
	if (n)
		memcpy(v, s, n);
	v[n] = 0;
	yaml_node_t *node = D->doc->nodes.start + id - 1;
	node->data.scalar.value = (yaml_char_t *)v;
	node->data.scalar.length = n;
	node->data.scalar.style = style;
	return 0;
}

static int doc_begin(void *ctx, int map, int flow)
{
	struct docb *D = ctx;
	int id = new_node(D, map ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE, map ? YAML_MAP_TAG : YAML_SEQ_TAG);
	if (!id)
		return -1;
	yaml_node_t *node = D->doc->nodes.start + id - 1;
	if (map)
		node->data.mapping.style = flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE;
	else
		node->data.sequence.style = flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE;
	if (D->nopen + 2 > D->ocap) {
		D->ocap = D->ocap ? D->ocap * 2 : 64;
		D->open = xrealloc(D->open, D->ocap * sizeof(size_t));
	}
	D->open[D->nopen++] = (size_t)id;
	D->open[D->nopen++] = D->nkids;
	return 0;
}

/* the kids pushed since the collection opened become its items/pairs */
static int doc_end(void *ctx)
{
	struct docb *D = ctx;
	if (D->nopen < 2)
		return -1;
	size_t base = D->open[--D->nopen];
	size_t id = D->open[--D->nopen];
	yaml_node_t *node = D->doc->nodes.start + id - 1;
	size_t n = D->nkids - base;
	if (node->type == YAML_MAPPING_NODE) {
		if (n % 2)
			return -1;
		yaml_node_pair_t *pairs = arena_alloc(D, (n / 2) * sizeof(*pairs));
		for (size_t i = 0; i + 1 < n; i += 2) {
			pairs[i / 2].key = D->kids[base + i];
			pairs[i / 2].value = D->kids[base + i + 1];
		}
		node->data.mapping.pairs.start = pairs;
		node->data.mapping.pairs.top = node->data.mapping.pairs.end = pairs + n / 2;
	} else {
		yaml_node_item_t *items = arena_alloc(D, n * sizeof(*items));
		if (n)
			memcpy(items, D->kids + base, n * sizeof(*items));
		node->data.sequence.items.start = items;
		node->data.sequence.items.top = node->data.sequence.items.end = items + n;
	}
	D->nkids = base;
	return 0;
}

/* ---------------------------------------------------------------- bytes */

/* libyaml's reader: well-formed UTF-8, printable characters only; we also
 * refuse '\r', NEL, LS, PS (other line breaks) and BOMs anywhere. */
static int validate(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
#ifdef __SSE2__
		/* 16 bytes at a time while they are printable ASCII, '\n' or '\t' */
		const __m128i lo = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F);
		const __m128i nl = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t');
		while (n - i >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
			/* signed compare: bytes >= 0x80 are negative, so "< 0x20" too */
			__m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del));
			__m128i ok = _mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, tab));
			if (_mm_movemask_epi8(_mm_andnot_si128(ok, bad)))
				break;
			i += 16;
		}
#endif
		while (i < n && ((unsigned char)(s[i] - 0x20) < 0x5F || s[i] == '\n'))
			i++;
		if (i >= n)
			break;
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c != '\n' && c != '\t')
				return 0;
			i++;
			continue;
		}
		size_t w;
		uint32_t v;
		if ((c & 0xE0) == 0xC0) { w = 2; v = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { w = 3; v = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { w = 4; v = c & 0x07; }
		else return 0;
		if (n - i < w)
			return 0;
		for (size_t k = 1; k < w; k++) {
			unsigned char t = s[i + k];
			if ((t & 0xC0) != 0x80)
				return 0;
			v = (v << 6) | (t & 0x3F);
		}
		if ((w == 2 && v < 0x80) || (w == 3 && v < 0x800) || (w == 4 && v < 0x10000))
			return 0;
		if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF || v < 0xA0)
			return 0;
		if (v == 0x2028 || v == 0x2029 || v == 0xFEFF || v == 0xFFFE || v == 0xFFFF)
			return 0;
		i += w;
	}
	return 1;
}

/* the byte at p, or 0 at the end (NUL never passes validate()) */
static inline int at(const struct yf *Y, const char *p)
{
	return p < Y->end ? (unsigned char)*p : 0;
}

static int is_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* "- " / "-\n" / "-" at the end: a block sequence entry */
static inline int is_entry(const struct yf *Y, const char *p)
{
	if (at(Y, p) != '-')
		return 0;
	int c = at(Y, p + 1);
	return c == ' ' || c == '\n' || c == 0;
}

/* May a plain scalar start here (block context)? Indicators refuse; so do
 * '?' and ':' (libyaml allows "?x" and ":x", we do not bother). */
static inline int plain_start_ok(const struct yf *Y, const char *p)
{
	int c = at(Y, p);
	switch (c) {
	case '-': {
		int d = at(Y, p + 1);
		return d != ' ' && d != '\n' && d != '\t' && d != 0;
	}
	case 0: case ' ': case '\t': case '\n':
	case '?': case ':': case ',': case '[': case ']': case '{': case '}': case '#':
	case '&': case '*': case '!': case '|': case '>': case '\'': case '"': case '%':
	case '@': case '`':
		return 0;
	default:
		return 1;
	}
}

/* ---------------------------------------------------------------- lines */

/* Move to the next content line (skipping blank and comment lines) from
 * Y->ls. 1: Y->p at its first non-space, *col its column; 0: end of input;
 * -1: not handled (document markers). */
static int next_content(struct yf *Y, long *col)
{
	const char *p = Y->ls, *end = Y->end;
	for (;;) {
		const char *ls = p;
		p = word_skip_spaces(p, end);
		if (p >= end) {
			Y->p = Y->ls = end;
			return 0;
		}
		if (*p == '\n') {
			p++;
			continue;
		}
		if (*p == '#') {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
			continue;
		}
		if (p == ls && end - p >= 3 && (!memcmp(p, "---", 3) || !memcmp(p, "...", 3))) {
			int c = end - p == 3 ? 0 : (unsigned char)p[3];
			if (!Y->start_ok || p[0] != '-' || (c != 0 && c != ' ' && c != '\n'))
				return -1;
			/* the leading "---" line: only spaces or a comment may follow */
			Y->start_ok = 0;
			Y->explicit_start = 1;
			p += 3;
			int sp = 0;
			while (p < end && *p == ' ') {
				p++;
				sp = 1;
			}
			if (p < end && *p == '#' && sp) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				p = nl ? nl : end;
			}
			if (p < end && *p != '\n')
				return -1;
			continue;
		}
		Y->start_ok = 0;
		Y->p = p;
		Y->ls = ls;
		*col = (long)(p - ls);
		return 1;
	}
}

/* After a token: only spaces, then the end of the line or a comment
 * (preceded by a space). Consumes the line break. 1 ok, 0 not handled. */
static inline int rest_of_line(struct yf *Y)
{
	const char *p = Y->p, *end = Y->end;
	int sp = 0;
	while (p < end && *p == ' ') {
		p++;
		sp = 1;
	}
	if (p < end && *p == '#' && sp) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl : end;
	}
	if (p >= end) {
		Y->p = Y->ls = end;
		return 1;
	}
	if (*p != '\n')
		return 0;
	Y->p = Y->ls = p + 1;
	return 1;
}

/* ---------------------------------------------------------------- scalars */

enum plain_stop { PS_EOL, PS_COMMENT, PS_COLON };

/* the bytes scan_plain() must look at */
static const unsigned char plain_special[256] = { [' '] = 1, [':'] = 1, ['\n'] = 1, ['\t'] = 1 };

/* A plain scalar on one line from p (block context). *vend: end of the
 * value (trailing spaces trimmed); *stop: where and why it stopped.
 * 0 when not handled (tabs). */
static inline int scan_plain(const struct yf *Y, const char *p, const char **vend, const char **stop,
		      enum plain_stop *why)
{
	const char *end = Y->end, *ve = p;
	for (;;) {
		const char *s = p;
		while (end - p >= 8) {
			/* ' ', ':', and '\t' or '\n' (the only bytes below 0x20 here) */
			uint64_t w = word_load8(p);
			uint64_t m = word_bytes_eq(w, ' ') | word_bytes_eq(w, ':') | word_bytes_below(w, 0x20);
			if (m) {
				p += word_first(m);
				goto found;
			}
			p += 8;
		}
		while (p < end && !plain_special[(unsigned char)*p])
			p++;
	found:
		if (p > s)
			ve = p;
		if (p >= end || *p == '\n') {
			*why = PS_EOL;
			*stop = p;
			break;
		}
		if (*p == '\t')
			return 0;
		if (*p == ':') {
			int c = at(Y, p + 1);
			if (c == ' ' || c == '\n' || c == 0) {
				*why = PS_COLON;
				*stop = p;
				break;
			}
			p++;
			ve = p;
			continue;
		}
		/* spaces: a comment may follow; the value ends at ve unless
		 * more non-space characters follow */
		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == '#') {
			*why = PS_COMMENT;
			*stop = ve; /* rest_of_line() then sees " #" */
			break;
		}
	}
	*vend = ve;
	return 1;
}

/* End of a one-line quoted scalar starting at p (the quote): the byte after
 * the closing quote, or NULL (not closed on this line). */
static const char *quoted_end(const struct yf *Y, const char *p)
{
	const char *end = Y->end;
	char q = *p++;
	while (p < end) {
		char c = *p;
		if (c == '\n')
			return NULL;
		if (q == '\'' && c == '\'') {
			if (p + 1 < end && p[1] == '\'') {
				p += 2;
				continue;
			}
			return p + 1;
		}
		if (q == '"' && c == '"')
			return p + 1;
		if (q == '"' && c == '\\') {
			if (p + 1 >= end || p[1] == '\n')
				return NULL;
			p += 2;
			continue;
		}
		p++;
	}
	return NULL;
}

static void put_breaks(struct buf *b, long n);

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static void put_utf8(struct buf *b, uint32_t v)
{
	char t[4];
	size_t n;
	if (v < 0x80) { t[0] = (char)v; n = 1; }
	else if (v < 0x800) { t[0] = (char)(0xC0 | (v >> 6)); t[1] = (char)(0x80 | (v & 0x3F)); n = 2; }
	else if (v < 0x10000) {
		t[0] = (char)(0xE0 | (v >> 12)); t[1] = (char)(0x80 | ((v >> 6) & 0x3F));
		t[2] = (char)(0x80 | (v & 0x3F)); n = 3;
	} else {
		t[0] = (char)(0xF0 | (v >> 18)); t[1] = (char)(0x80 | ((v >> 12) & 0x3F));
		t[2] = (char)(0x80 | ((v >> 6) & 0x3F)); t[3] = (char)(0x80 | (v & 0x3F)); n = 4;
	}
	buf_append(b, t, n);
}

/* The escape sequence at *pp (a backslash, not before a line break) in a
 * double-quoted scalar, appended to Y->sb; *pp moves past it. limit: the
 * end of the text the escape may use. 0 when not handled. */
static int put_escape(struct yf *Y, const char **pp, const char *limit)
{
	const char *p = *pp;
	if (limit - p < 2)
		return 0;
	int c = (unsigned char)p[1];
	int hexlen = 0;
	p += 2;
	switch (c) {
	case '0': buf_putc(&Y->sb, '\0'); break;
	case 'a': buf_putc(&Y->sb, '\a'); break;
	case 'b': buf_putc(&Y->sb, '\b'); break;
	case 't': case '\t': buf_putc(&Y->sb, '\t'); break;
	case 'n': buf_putc(&Y->sb, '\n'); break;
	case 'v': buf_putc(&Y->sb, '\v'); break;
	case 'f': buf_putc(&Y->sb, '\f'); break;
	case 'r': buf_putc(&Y->sb, '\r'); break;
	case 'e': buf_putc(&Y->sb, 0x1B); break;
	case ' ': buf_putc(&Y->sb, ' '); break;
	case '"': buf_putc(&Y->sb, '"'); break;
	case '/': buf_putc(&Y->sb, '/'); break;
	case '\\': buf_putc(&Y->sb, '\\'); break;
	case 'N': put_utf8(&Y->sb, 0x85); break;
	case '_': put_utf8(&Y->sb, 0xA0); break;
	case 'L': put_utf8(&Y->sb, 0x2028); break;
	case 'P': put_utf8(&Y->sb, 0x2029); break;
	case 'x': hexlen = 2; break;
	case 'u': hexlen = 4; break;
	case 'U': hexlen = 8; break;
	default: return 0;
	}
	if (hexlen) {
		uint32_t v = 0;
		if (limit - p < hexlen)
			return 0;
		for (int k = 0; k < hexlen; k++) {
			int h = hexval((unsigned char)p[k]);
			if (h < 0)
				return 0;
			v = (v << 4) | (uint32_t)h;
		}
		if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
			return 0;
		put_utf8(&Y->sb, v);
		p += hexlen;
	}
	*pp = p;
	return 1;
}

/* the first byte at or after p that ends a run of plain text inside a
 * quoted scalar: the quote q, a line break or (double quotes) a backslash */
static inline const char *quoted_run(const char *p, const char *end, char q)
{
	while (end - p >= 8) {
		uint64_t w = word_load8(p);
		uint64_t m = word_bytes_eq(w, (unsigned char)q) | word_bytes_eq(w, '\n') | (q == '"' ? word_bytes_eq(w, '\\') : 0);
		if (m)
			return p + word_first(m);
		p += 8;
	}
	while (p < end && *p != q && *p != '\n' && !(q == '"' && *p == '\\'))
		p++;
	return p;
}

/* The common quoted scalar at p: closed on its line, without escapes (or
 * '' in single quotes). Its value is then the text between the quotes as
 * is (blanks inside a line are kept): *vs, *vn point into the text,
 * *after past the closing quote. 0 for any other. */
static inline int quoted_simple(const struct yf *Y, const char *p, const char **vs, size_t *vn, const char **after)
{
	char q = *p++;
	const char *e = quoted_run(p, Y->end, q);
	if (e >= Y->end || *e != q || (q == '\'' && e + 1 < Y->end && e[1] == '\''))
		return 0;
	*vs = p;
	*vn = (size_t)(e - p);
	*after = e + 1;
	return 1;
}

/* Decode the one-line quoted scalar at p into Y->sb; *after: past the
 * closing quote. 0 when not handled. */
static int decode_quoted(struct yf *Y, const char *p, const char **after)
{
	const char *e = quoted_end(Y, p);
	if (!e)
		return 0;
	buf_reset(&Y->sb);
	char q = *p++;
	const char *last = e - 1; /* the closing quote */
	while (p < last) {
		const char *s = p;
		while (p < last && *p != q && (q == '\'' || *p != '\\'))
			p++;
		if (p > s)
			buf_append(&Y->sb, s, (size_t)(p - s));
		if (p >= last)
			break;
		if (q == '\'') { /* '' */
			buf_putc(&Y->sb, '\'');
			p += 2;
			continue;
		}
		if (!put_escape(Y, &p, last))
			return 0;
	}
	*after = e;
	return 1;
}

/* A quoted scalar at p that may span lines (a value, not a key), decoded
 * into Y->sb following libyaml's yaml_parser_scan_flow_scalar: blanks
 * inside a line are kept, a line break between text folds to a space, n
 * empty lines give n breaks, blanks around breaks go, and "\" before a
 * break (double quotes) joins lines without a space. *after: past the
 * closing quote; Y->ls: the start of the line holding it. */
static int decode_quoted_lines(struct yf *Y, const char *p, const char **after)
{
	const char *end = Y->end, *ls = Y->ls;
	char q = *p++;
	buf_reset(&Y->sb);
	for (;;) {
		/* libyaml refuses document markers at the start of a line */
		if (p == ls && end - p >= 3 && (!memcmp(p, "---", 3) || !memcmp(p, "...", 3)))
			return 0;
		if (p >= end)
			return 0;
		int leading_blanks = 0;
		while (p < end && *p != ' ' && *p != '\t' && *p != '\n') {
			if (q == '\'' && *p == '\'') {
				if (p + 1 < end && p[1] == '\'') {
					buf_putc(&Y->sb, '\'');
					p += 2;
					continue;
				}
				break;
			}
			if (q == '"' && *p == '"')
				break;
			if (q == '"' && *p == '\\') {
				if (p + 1 < end && p[1] == '\n') { /* escaped line break */
					p += 2;
					ls = p;
					leading_blanks = 1;
					break;
				}
				if (!put_escape(Y, &p, end))
					return 0;
				continue;
			}
			const char *s = p;
			while (end - p >= 8) {
				/* blanks, breaks ('\t' and '\n' are the only bytes
				 * below 0x20 here), the quote, backslashes */
				uint64_t w = word_load8(p);
				uint64_t m = word_bytes_eq(w, ' ') | word_bytes_below(w, 0x20) | word_bytes_eq(w, (unsigned char)q) |
					     (q == '"' ? word_bytes_eq(w, '\\') : 0);
				if (m) {
					p += word_first(m);
					goto run_end;
				}
				p += 8;
			}
			while (p < end && *p != ' ' && *p != '\t' && *p != '\n' && *p != q &&
			       !(q == '"' && *p == '\\'))
				p++;
		run_end:
			buf_append(&Y->sb, s, (size_t)(p - s));
		}
		if (p < end && *p == q) {
			*after = p + 1;
			Y->ls = ls;
			return 1;
		}
		/* blanks and line breaks */
		const char *ws = p;
		size_t nws = 0;
		int first_break = 0;
		long trail = 0;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n')) {
			if (*p != '\n') {
				if (!leading_blanks)
					nws++;
			} else if (!leading_blanks) {
				nws = 0;
				first_break = 1;
				leading_blanks = 1;
				ls = p + 1;
			} else {
				trail++;
				ls = p + 1;
			}
			p++;
		}
		if (!leading_blanks) {
			buf_append(&Y->sb, ws, nws);
		} else if (first_break && trail == 0) {
			buf_putc(&Y->sb, ' ');
		} else {
			put_breaks(&Y->sb, trail);
		}
	}
}

/* Is the content at p a mapping key on this line? 1 yes (*colon at the
 * ':'), 0 no, -1 not handled. */
static int scan_key(const struct yf *Y, const char *p, const char **colon)
{
	int c = at(Y, p);
	const char *e;
	if (c == '"' || c == '\'') {
		e = quoted_end(Y, p);
		if (!e)
			return -1;
		while (e < Y->end && *e == ' ')
			e++;
	} else if (!plain_start_ok(Y, p)) {
		return (c == '[' || c == '{' || c == '|' || c == '>') ? 0 : -1;
	} else {
		const char *ve;
		enum plain_stop why;
		if (!scan_plain(Y, p, &ve, &e, &why))
			return -1;
		if (why != PS_COLON)
			return 0;
	}
	if (at(Y, e) != ':')
		return 0;
	c = at(Y, e + 1);
	if (c != ' ' && c != '\n' && c != 0)
		return 0;
	if (e - p > YF_MAX_KEY)
		return -1;
	*colon = e;
	return 1;
}

/* The key at Y->p (known to be one: scan_key said so); Y->p moves past
 * the ':'. Returns the key's node id or 0. */
static int parse_key(struct yf *Y, const char *colon)
{
	const char *p = Y->p;
	int id;
	if (*p == '"' || *p == '\'') {
		const char *after, *vs;
		size_t vn;
		yaml_scalar_style_t st = *p == '"' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE;
		if (quoted_simple(Y, p, &vs, &vn, &after))
			id = add_scalar(Y, vs, vn, st);
		else if (decode_quoted(Y, p, &after))
			id = add_scalar(Y, Y->sb.data ? Y->sb.data : "", Y->sb.len, st);
		else
			return 0;
	} else {
		const char *e = colon;
		while (e > p && e[-1] == ' ')
			e--;
		id = add_scalar(Y, p, (size_t)(e - p), YAML_PLAIN_SCALAR_STYLE);
	}
	Y->p = colon + 1;
	return id;
}

/* ---------------------------------------------------------------- block scalars */

/* libyaml's yaml_parser_scan_block_scalar_breaks: eat indentation and empty
 * lines, counting the breaks; fix the indentation if not yet known. */
static int bs_breaks(const struct yf *Y, const char **pp, const char **lsp, long *indent, long *trail, long ctx)
{
	const char *p = *pp, *ls = *lsp, *end = Y->end;
	long max_indent = 0;
	for (;;) {
		while ((!*indent || p - ls < *indent) && p < end && *p == ' ')
			p++;
		if (p - ls > max_indent)
			max_indent = (long)(p - ls);
		if ((!*indent || p - ls < *indent) && p < end && *p == '\t')
			return 0;
		if (!(p < end && *p == '\n'))
			break;
		(*trail)++;
		p++;
		ls = p;
	}
	if (!*indent) {
		*indent = max_indent;
		if (*indent < ctx + 1)
			*indent = ctx + 1;
		if (*indent < 1)
			*indent = 1;
	}
	*pp = p;
	*lsp = ls;
	return 1;
}

static void put_breaks(struct buf *b, long n)
{
	for (; n > 0; n--)
		buf_putc(b, '\n');
}

/* A block scalar at Y->p ('|' or '>'); ctx: the innermost block
 * collection's column (libyaml's parser->indent), -1 at the top. */
static int parse_block_scalar(struct yf *Y, long ctx)
{
	const char *p = Y->p;
	int literal = *p == '|';
	int chomp = 0;
	p++;
	if (at(Y, p) == '-') { chomp = -1; p++; }
	else if (at(Y, p) == '+') { chomp = 1; p++; }
	int c = at(Y, p);
	if (c != ' ' && c != '\n' && c != 0)
		return 0; /* indentation indicators, "|#", ... */
	Y->p = p;
	if (!rest_of_line(Y))
		return 0;
	p = Y->p;
	const char *ls = Y->ls, *end = Y->end;
	long indent = 0, trail = 0;
	int lead = 0, leading_blank = 0;
	buf_reset(&Y->sb);
	if (!bs_breaks(Y, &p, &ls, &indent, &trail, ctx))
		return 0;
	while (p < end && p - ls == indent) {
		int trailing_blank = *p == ' ' || *p == '\t';
		if (!literal && lead && !leading_blank && !trailing_blank) {
			if (trail == 0)
				buf_putc(&Y->sb, ' ');
		} else if (lead) {
			buf_putc(&Y->sb, '\n');
		}
		lead = 0;
		put_breaks(&Y->sb, trail);
		trail = 0;
		leading_blank = trailing_blank;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		buf_append(&Y->sb, p, (size_t)(e - p));
		if (nl) {
			lead = 1;
			p = nl + 1;
			ls = p;
		} else {
			p = ls = end;
		}
		if (!bs_breaks(Y, &p, &ls, &indent, &trail, ctx))
			return 0;
	}
	if (chomp != -1 && lead)
		buf_putc(&Y->sb, '\n');
	if (chomp == 1)
		put_breaks(&Y->sb, trail);
	Y->p = Y->ls = ls;
	return add_scalar(Y, Y->sb.data, Y->sb.len, literal ? YAML_LITERAL_SCALAR_STYLE : YAML_FOLDED_SCALAR_STYLE);
}

/* ---------------------------------------------------------------- flow */

static int flow_safe(int c)
{
	return is_alnum(c) || c >= 0x80 || c == '_' || c == '.' || c == '/' || c == '+' || c == '-' ||
	       c == '=' || c == '~' || c == '(' || c == ')';
}

/* A scalar inside a one-line flow collection: quoted, or plain made of
 * "safe" characters and inner spaces. Y->p moves past it. */
static int parse_flow_scalar(struct yf *Y)
{
	const char *p = Y->p;
	int c = at(Y, p);
	if (c == '"' || c == '\'') {
		const char *after;
		if (!decode_quoted(Y, p, &after))
			return 0;
		Y->p = after;
		return add_scalar(Y, Y->sb.data, Y->sb.len,
				  c == '"' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE);
	}
	if (!flow_safe(c) || c == '-' || c == '+') {
		if (!((c == '-' || c == '+') && flow_safe(at(Y, p + 1))))
			return 0;
	}
	const char *s = p;
	while (p < Y->end && (flow_safe((unsigned char)*p) || *p == ' '))
		p++;
	const char *e = p;
	while (e > s && e[-1] == ' ')
		e--;
	Y->p = p;
	if (e - s > YF_MAX_KEY)
		return 0;
	return add_scalar(Y, s, (size_t)(e - s), YAML_PLAIN_SCALAR_STYLE);
}

static void skip_spaces(struct yf *Y)
{
	while (Y->p < Y->end && *Y->p == ' ')
		Y->p++;
}

/* A flow sequence or mapping of scalars on one line at Y->p ('[' or '{'). */
static int parse_flow(struct yf *Y)
{
	int map = *Y->p == '{';
	char close = map ? '}' : ']';
	if (!add_collection(Y, map, 1))
		return 0;
	Y->p++;
	skip_spaces(Y);
	if (at(Y, Y->p) == close) {
		Y->p++;
		return close_collection(Y);
	}
	for (;;) {
		const char *ks = Y->p;
		int k = parse_flow_scalar(Y);
		if (!k || Y->p - ks > YF_MAX_KEY)
			return 0;
		skip_spaces(Y);
		if (map) {
			if (at(Y, Y->p) != ':' || at(Y, Y->p + 1) != ' ')
				return 0;
			Y->p += 2;
			skip_spaces(Y);
			if (!parse_flow_scalar(Y))
				return 0;
			skip_spaces(Y);
		} else if (at(Y, Y->p) == ':') {
			return 0;
		}
		int c = at(Y, Y->p);
		if (c == close) {
			Y->p++;
			return close_collection(Y);
		}
		if (c != ',')
			return 0;
		Y->p++;
		skip_spaces(Y);
		if (at(Y, Y->p) == close)
			return 0; /* trailing comma */
	}
}

/* ---------------------------------------------------------------- block structure */

static int parse_node_at_line(struct yf *Y, long ctx, long col);
static int parse_block_seq(struct yf *Y, long c);
static int parse_block_map(struct yf *Y, long c, const char *colon);

/* A value that starts at Y->p and ends on this line (or a block scalar);
 * consumes the rest of the line. */
static int parse_inline_value(struct yf *Y, long ctx)
{
	const char *p = Y->p;
	int c = at(Y, p), id;
	if (c == '"' || c == '\'') {
		const char *after, *vs;
		size_t vn;
		yaml_scalar_style_t st = c == '"' ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE;
		if (quoted_simple(Y, p, &vs, &vn, &after))
			id = add_scalar(Y, vs, vn, st);
		else if (decode_quoted_lines(Y, p, &after))
			id = add_scalar(Y, Y->sb.data ? Y->sb.data : "", Y->sb.len, st);
		else
			return 0;
		Y->p = after;
	} else if (c == '[' || c == '{') {
		if (++Y->depth > YF_MAX_DEPTH)
			return 0;
		id = parse_flow(Y);
		Y->depth--;
	} else if (c == '|' || c == '>') {
		return parse_block_scalar(Y, ctx);
	} else {
		if (!plain_start_ok(Y, p))
			return 0;
		const char *ve, *stop;
		enum plain_stop why;
		if (!scan_plain(Y, p, &ve, &stop, &why) || why == PS_COLON)
			return 0;
		id = add_scalar(Y, p, (size_t)(ve - p), YAML_PLAIN_SCALAR_STYLE);
		Y->p = stop;
	}
	if (!id || !rest_of_line(Y))
		return 0;
	return id;
}

/* The node whose first line starts at Y->p, column col, inside a block
 * collection at column ctx (-1: the document). */
static int parse_node_at_line(struct yf *Y, long ctx, long col)
{
	if (is_entry(Y, Y->p))
		return parse_block_seq(Y, col);
	const char *colon;
	int k = scan_key(Y, Y->p, &colon);
	if (k < 0)
		return 0;
	if (k)
		return parse_block_map(Y, col, colon);
	return parse_inline_value(Y, ctx);
}

/* A block mapping whose first key is at Y->p, column c; colon: the ':'
 * after it (scan_key() found it already). */
static int parse_block_map(struct yf *Y, long c, const char *colon)
{
	if (++Y->depth > YF_MAX_DEPTH || !add_collection(Y, 1, 0))
		return 0;
	for (;;) {
		if (!colon && scan_key(Y, Y->p, &colon) != 1)
			return 0;
		int v;
		if (!parse_key(Y, colon))
			return 0;
		colon = NULL;
		const char *p = Y->p;
		while (p < Y->end && *p == ' ')
			p++;
		int ch = at(Y, p);
		long col2;
		if (ch == 0 || ch == '\n' || (ch == '#' && p > Y->p)) {
			if (!rest_of_line(Y))
				return 0;
			int r = next_content(Y, &col2);
			if (r < 0)
				return 0;
			if (r > 0 && col2 > c)
				v = parse_node_at_line(Y, c, col2);
			else if (r > 0 && col2 == c && is_entry(Y, Y->p))
				v = parse_block_seq(Y, c); /* indentless */
			else
				v = add_empty(Y);
		} else {
			Y->p = p;
			v = parse_inline_value(Y, c);
		}
		if (!v)
			return 0;
		int r = next_content(Y, &col2);
		if (r < 0 || (r > 0 && col2 > c))
			return 0;
		if (r == 0 || col2 < c)
			break;
		if (is_entry(Y, Y->p))
			return 0;
	}
	Y->depth--;
	return close_collection(Y);
}

/* A block sequence whose first '-' is at Y->p, column c. */
static int parse_block_seq(struct yf *Y, long c)
{
	if (++Y->depth > YF_MAX_DEPTH || !add_collection(Y, 0, 0))
		return 0;
	for (;;) {
		const char *p = Y->p + 1;
		while (p < Y->end && *p == ' ')
			p++;
		int ch = at(Y, p), item;
		long col2;
		if (ch == 0 || ch == '\n' || (ch == '#' && p > Y->p + 1)) {
			Y->p++;
			if (!rest_of_line(Y))
				return 0;
			int r = next_content(Y, &col2);
			if (r < 0)
				return 0;
			item = r > 0 && col2 > c ? parse_node_at_line(Y, c, col2) : add_empty(Y);
		} else {
			const char *colon;
			col2 = (long)(p - Y->ls);
			Y->p = p;
			int k;
			if (is_entry(Y, p))
				item = parse_block_seq(Y, col2);
			else if ((k = scan_key(Y, p, &colon)) < 0)
				item = 0;
			else if (k)
				item = parse_block_map(Y, col2, colon);
			else
				item = parse_inline_value(Y, c);
		}
		if (!item)
			return 0;
		int r = next_content(Y, &col2);
		if (r < 0 || (r > 0 && col2 > c))
			return 0;
		if (r == 0 || col2 < c || !is_entry(Y, Y->p))
			break;
	}
	Y->depth--;
	return close_collection(Y);
}

/* ---------------------------------------------------------------- entry points */

static int load(struct yf *Y)
{
	long col;
	int r = next_content(Y, &col);
	if (r < 0)
		return 0;
	if (r == 0)
		return Y->explicit_start ? add_empty(Y) != 0 : 1;
	if (!parse_node_at_line(Y, -1, col))
		return 0;
	return next_content(Y, &col) == 0;
}

/* 1 when the text was read to its end with every event accepted */
static int parse_text(const char *text, size_t len, const struct yamlfast_sink *sink, int *explicit_start)
{
	if (atomic_load_explicit(&yf_disabled, memory_order_relaxed) || !text ||
	    !validate((const unsigned char *)text, len))
		goto bail;
	struct yf Y = { text, text, text + len, sink, BUF_INIT, 0, 1, 0 };
	int ok = load(&Y);
	buf_free(&Y.sb);
	if (!ok)
		goto bail;
	if (explicit_start)
		*explicit_start = Y.explicit_start;
	atomic_fetch_add_explicit(&yf_hits, 1, memory_order_relaxed);
	return 1;
bail:
	atomic_fetch_add_explicit(&yf_bails, 1, memory_order_relaxed);
	return 0;
}

int yamlfast_parse(const char *text, size_t len, const struct yamlfast_sink *sink)
{
	return parse_text(text, len, sink, NULL) ? 0 : -1;
}

int yamlfast_load(const char *text, size_t len, struct yamlfast_doc *out)
{
	memset(out, 0, sizeof(*out));
	yaml_document_t *doc = &out->doc;
	struct docb D = { doc, NULL, 0, NULL, 0, 0, NULL, 0, 0 };
	struct yamlfast_sink sink = { doc_scalar, doc_begin, doc_end, &D };
	int explicit_start = 0;
	int ok = parse_text(text, len, &sink, &explicit_start) && D.nopen == 0;
	free(D.kids);
	free(D.open);
	if (!ok) {
		free(doc->nodes.start);
		free_mem(D.mem);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	doc->start_implicit = !explicit_start;
	doc->end_implicit = 1;
	out->mem = D.mem;
	return 0;
}

void yamlfast_free(struct yamlfast_doc *d)
{
	if (!d)
		return;
	free(d->doc.nodes.start);
	free_mem(d->mem);
	memset(d, 0, sizeof(*d));
}

void yamlfast_stats(size_t *hits, size_t *bails)
{
	if (hits)
		*hits = atomic_load(&yf_hits);
	if (bails)
		*bails = atomic_load(&yf_bails);
}

void yamlfast_set_disabled(int disabled)
{
	atomic_store(&yf_disabled, disabled);
}

/* ---------------------------------------------------------------- comparison */

static int node_equal(yaml_document_t *da, int ia, yaml_document_t *db, int ib, char *why, size_t whylen, int depth)
{
	yaml_node_t *a = yaml_document_get_node(da, ia), *b = yaml_document_get_node(db, ib);
	if (!a || !b) {
		if (a == b)
			return 1;
		snprintf(why, whylen, "node %d/%d missing", ia, ib);
		return 0;
	}
	if (ia != ib) {
		snprintf(why, whylen, "node ids %d vs %d (order differs)", ia, ib);
		return 0;
	}
	if (depth > 10000) {
		snprintf(why, whylen, "too deep");
		return 0;
	}
	if (a->type != b->type) {
		snprintf(why, whylen, "node %d/%d: type %d vs %d", ia, ib, (int)a->type, (int)b->type);
		return 0;
	}
	const char *ta = (const char *)a->tag, *tb = (const char *)b->tag;
	if ((!ta || !tb) ? ta != tb : strcmp(ta, tb) != 0) {
		snprintf(why, whylen, "node %d/%d: tag %s vs %s", ia, ib, ta ? ta : "(null)", tb ? tb : "(null)");
		return 0;
	}
	switch (a->type) {
	case YAML_SCALAR_NODE:
		if (a->data.scalar.style != b->data.scalar.style) {
			snprintf(why, whylen, "node %d/%d: scalar style %d vs %d (\"%.60s\")", ia, ib,
				 (int)a->data.scalar.style, (int)b->data.scalar.style, (const char *)b->data.scalar.value);
			return 0;
		}
		if (a->data.scalar.length != b->data.scalar.length ||
		    memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) != 0) {
			snprintf(why, whylen, "node %d/%d: scalar \"%.80s\" vs \"%.80s\"", ia, ib,
				 (const char *)a->data.scalar.value, (const char *)b->data.scalar.value);
			return 0;
		}
		return 1;
	case YAML_SEQUENCE_NODE: {
		yaml_node_item_t *x = a->data.sequence.items.start, *y = b->data.sequence.items.start;
		ptrdiff_t n = a->data.sequence.items.top - x;
		if (a->data.sequence.style != b->data.sequence.style || n != b->data.sequence.items.top - y) {
			snprintf(why, whylen, "node %d/%d: sequence style %d vs %d, %ld vs %ld items", ia, ib,
				 (int)a->data.sequence.style, (int)b->data.sequence.style, (long)n,
				 (long)(b->data.sequence.items.top - y));
			return 0;
		}
		for (ptrdiff_t i = 0; i < n; i++)
			if (!node_equal(da, x[i], db, y[i], why, whylen, depth + 1))
				return 0;
		return 1;
	}
	case YAML_MAPPING_NODE: {
		yaml_node_pair_t *x = a->data.mapping.pairs.start, *y = b->data.mapping.pairs.start;
		ptrdiff_t n = a->data.mapping.pairs.top - x;
		if (a->data.mapping.style != b->data.mapping.style || n != b->data.mapping.pairs.top - y) {
			snprintf(why, whylen, "node %d/%d: mapping style %d vs %d, %ld vs %ld pairs", ia, ib,
				 (int)a->data.mapping.style, (int)b->data.mapping.style, (long)n,
				 (long)(b->data.mapping.pairs.top - y));
			return 0;
		}
		for (ptrdiff_t i = 0; i < n; i++)
			if (!node_equal(da, x[i].key, db, y[i].key, why, whylen, depth + 1) ||
			    !node_equal(da, x[i].value, db, y[i].value, why, whylen, depth + 1))
				return 0;
		return 1;
	}
	default:
		snprintf(why, whylen, "node %d: no type", ia);
		return 0;
	}
}

int yamlfast_doc_equal(yaml_document_t *a, yaml_document_t *b, char *why, size_t whylen)
{
	char dummy[8];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = 0;
	int ea = a->nodes.start == a->nodes.top, eb = b->nodes.start == b->nodes.top;
	if (ea || eb) {
		if (ea == eb)
			return 1;
		snprintf(why, whylen, "one document is empty");
		return 0;
	}
	return node_equal(a, 1, b, 1, why, whylen, 0);
}
