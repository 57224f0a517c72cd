/*
 * helmignore.c: .helmignore rules (see helmignore.h).
 *
 * The matcher follows Go's path/filepath.Match on Unix: the pattern is cut
 * into chunks at each run of '*'; a chunk matches at the current position
 * or, after a star, at any later position that does not skip a '/'. A
 * malformed pattern (an unclosed class, a trailing backslash, an empty
 * range end...) is an error, found even when the name does not match.
 * Rules are evaluated the way Helm's ignore.Rules.Ignore does, including
 * its treatment of negated rules: a path that a negated rule does NOT match
 * is ignored.
 */
#include "server/chart/helmignore.h"
#include "server/common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rule {
	char *pat;          /* the pattern proper (no '!', trailing '/' or leading '/') */
	int negate;
	int must_dir;
	int whole_path;     /* matched against the path, not the base name */
};

struct helmignore {
	struct rule *r;
	size_t n;
};

/* one UTF-8 rune at s[0..n) (n > 0): its length; *r = U+FFFD and length 1
 * for a byte that does not start a valid sequence (Go's DecodeRune) */
static size_t rune_at(const char *s, size_t n, unsigned *r)
{
	const unsigned char *u = (const unsigned char *)s;
	if (u[0] < 0x80) {
		*r = u[0];
		return 1;
	}
	size_t len = u[0] >= 0xf0 && u[0] <= 0xf4 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc2 && u[0] < 0xe0 ? 2 : 0;
	if (len == 0 || len > n)
		goto bad;
	unsigned v = u[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80)
			goto bad;
		v = v << 6 | (u[i] & 0x3f);
	}
	if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) || (len == 4 && (v < 0x10000 || v > 0x10ffff)))
		goto bad;
	*r = v;
	return len;
bad:
	*r = 0xfffd;
	return 1;
}

/* the pattern up to the next star outside a class; *star: stars skipped */
static size_t scan_chunk(const char **pat, int *star)
{
	const char *p = *pat;
	*star = 0;
	while (*p == '*') {
		p++;
		*star = 1;
	}
	int in_range = 0;
	size_t i;
	for (i = 0; p[i]; i++) {
		if (p[i] == '\\') {
			if (p[i + 1])
				i++;
		} else if (p[i] == '[') {
			in_range = 1;
		} else if (p[i] == ']') {
			in_range = 0;
		} else if (p[i] == '*' && !in_range) {
			break;
		}
	}
	*pat = p;
	return i;
}

/* a class bound at c[0..n): its rune, or -1 (malformed); advances *used */
static long class_char(const char *c, size_t n, size_t *used)
{
	size_t i = 0;
	if (n == 0 || c[0] == '-' || c[0] == ']')
		return -1;
	if (c[0] == '\\') {
		i = 1;
		if (n == 1)
			return -1;
	}
	unsigned r;
	size_t k = rune_at(c + i, n - i, &r);
	if (r == 0xfffd && k == 1 && (unsigned char)c[i] >= 0x80)
		return -1;
	if (i + k >= n)
		return -1;   /* the class must go on (at least its ']') */
	*used = i + k;
	return (long)r;
}

/*
 * Match chunk c[0..cn) at the start of s[0..sn): 1 with *rest = the bytes
 * of s it took, 0 no match, -1 malformed. Once the match has failed the
 * chunk is still read to the end, to find malformed patterns.
 */
static int match_chunk(const char *c, size_t cn, const char *s, size_t sn, size_t *took)
{
	int failed = 0;
	size_t si = 0, ci = 0;
	while (ci < cn) {
		if (!failed && si == sn)
			failed = 1;
		if (c[ci] == '[') {
			unsigned r = 0;
			if (!failed)
				si += rune_at(s + si, sn - si, &r);
			ci++;
			int negated = 0;
			if (ci < cn && c[ci] == '^') {
				negated = 1;
				ci++;
			}
			int match = 0, nrange = 0;
			for (;;) {
				if (ci < cn && c[ci] == ']' && nrange > 0) {
					ci++;
					break;
				}
				size_t used;
				long lo = class_char(c + ci, cn - ci, &used), hi;
				if (lo < 0)
					return -1;
				ci += used;
				hi = lo;
				if (c[ci] == '-') {
					hi = class_char(c + ci + 1, cn - ci - 1, &used);
					if (hi < 0)
						return -1;
					ci += 1 + used;
				}
				if ((unsigned long)lo <= r && r <= (unsigned long)hi)
					match = 1;
				nrange++;
			}
			if (match == negated)
				failed = 1;
		} else if (c[ci] == '?') {
			if (!failed) {
				if (s[si] == '/')
					failed = 1;
				unsigned r;
				si += rune_at(s + si, sn - si, &r);
			}
			ci++;
		} else {
			if (c[ci] == '\\') {
				ci++;
				if (ci == cn)
					return -1;
			}
			if (!failed) {
				if (c[ci] != s[si])
					failed = 1;
				si++;
			}
			ci++;
		}
	}
	if (failed)
		return 0;
	*took = si;
	return 1;
}

int helmignore_match(const char *pattern, const char *name)
{
	const char *p = pattern;
	size_t nl = strlen(name);
	while (*p) {
		int star;
		size_t cn = scan_chunk(&p, &star);
		const char *chunk = p;
		p += cn;
		if (star && cn == 0)
			return memchr(name, '/', nl) == NULL;   /* a trailing star */
		size_t took;
		int rc = match_chunk(chunk, cn, name, nl, &took);
		if (rc == 1 && (took == nl || *p)) {
			name += took;
			nl -= took;
			continue;
		}
		if (rc < 0)
			return -1;
		if (star) {
			int found = 0;
			/* the star takes i + 1 more bytes, never a '/' */
			for (size_t i = 0; i < nl && name[i] != '/'; i++) {
				rc = match_chunk(chunk, cn, name + i + 1, nl - i - 1, &took);
				if (rc == 1) {
					if (!*p && took < nl - i - 1)
						continue;   /* the last chunk must end the name */
					name += i + 1 + took;
					nl -= i + 1 + took;
					found = 1;
					break;
				}
				if (rc < 0)
					return -1;
			}
			if (found)
				continue;
		}
		/* no match: the rest of the pattern must still be well formed */
		while (*p) {
			cn = scan_chunk(&p, &star);
			if (match_chunk(p, cn, "", 0, &took) < 0)
				return -1;
			p += cn;
		}
		return 0;
	}
	return nl == 0;
}

static int add_rule(struct helmignore *h, const char *line, size_t len, char *err, size_t errlen)
{
	while (len && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r' || line[0] == '\v' || line[0] == '\f')) {
		line++;
		len--;
	}
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r' ||
		       line[len - 1] == '\v' || line[len - 1] == '\f'))
		len--;
	if (len == 0 || line[0] == '#')
		return 0;
	char *raw = xstrndup(line, len);
	if (strstr(raw, "**")) {
		snprintf(err, errlen, ".helmignore: double-star (**) syntax is not supported: %s", raw);
		free(raw);
		return -1;
	}
	if (memchr(raw, 0, len) || helmignore_match(raw, "abc") < 0) {
		snprintf(err, errlen, ".helmignore: syntax error in pattern: %s", raw);
		free(raw);
		return -1;
	}
	struct rule r = { 0 };
	char *p = raw;
	if (*p == '!') {
		r.negate = 1;
		p++;
	}
	size_t pl = strlen(p);
	if (pl && p[pl - 1] == '/') {
		r.must_dir = 1;
		p[--pl] = 0;
	}
	if (*p == '/') {
		r.whole_path = 1;
		p++;
	} else if (strchr(p, '/')) {
		r.whole_path = 1;
	}
	r.pat = xstrdup(p);
	free(raw);
	h->r = xrealloc(h->r, (h->n + 1) * sizeof(*h->r));
	h->r[h->n++] = r;
	return 0;
}

struct helmignore *helmignore_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct helmignore *h = xcalloc(1, sizeof(*h));
	size_t i = 0;
	while (text && i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		if (add_rule(h, text + i, end - i, err, errlen)) {
			helmignore_free(h);
			return NULL;
		}
		i = end + 1;
	}
	/* Helm's default: hidden files under templates/ */
	static const char dflt[] = "templates/.?*";
	add_rule(h, dflt, sizeof(dflt) - 1, err, errlen);
	return h;
}

void helmignore_free(struct helmignore *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->r[i].pat);
	free(h->r);
	free(h);
}

int helmignore_ignored(const struct helmignore *h, const char *path, int is_dir)
{
	if (!h || !*path || !strcmp(path, ".") || !strcmp(path, "./"))
		return 0;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	for (size_t i = 0; i < h->n; i++) {
		const struct rule *r = &h->r[i];
		int m = helmignore_match(r->pat, r->whole_path ? path : base) == 1;
		if (r->negate) {
			/* Helm: a negated rule ignores what it does not match */
			if ((r->must_dir && !is_dir) || !m)
				return 1;
			continue;
		}
		if (r->must_dir && !is_dir)
			continue;
		if (m)
			return 1;
	}
	return 0;
}
