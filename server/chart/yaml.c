/*
 * yaml.c: YAML in and out the way Helm does it (see cv.h).
 *
 * Reading follows sigs.k8s.io/yaml: libyaml parses, scalars are resolved with
 * yaml.v2's YAML 1.1 rules (y/yes/on/off booleans, 0x/0o/0b/leading-zero
 * integers, "~" and "null"), non-string keys are stringified, and the result
 * is what a JSON round trip leaves (every number float64, unless the caller
 * asks to keep integers for Kubernetes objects). Most texts never reach
 * libyaml: yamlfast parses the block-style subset and reports its nodes to
 * a converter here that builds the values directly (same values, same
 * errors as converting libyaml's document; see "direct loading"). Plain
 * scalars are resolved by their first character first: most are strings.
 *
 * Writing reproduces Helm's toYaml: json.Marshal, then yaml.v2's emitter
 * (a port of libyaml): keys in yaml.v2's "natural" order, indentless lists
 * under keys, scalar style chosen by libyaml's scalar analysis (plain, single
 * quoted, double quoted, literal block with chomping indicators), plain and
 * quoted scalars folded at the first space past column 80.
 */
#define _GNU_SOURCE
#include "server/chart/cv.h"
#include "server/chart/yamlfast.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---------------------------------------------------------------- resolve */

enum rtag { R_STR, R_NULL, R_BOOL, R_INT, R_FLOAT, R_TIMESTAMP, R_MERGE };

/* yaml.v2's words for null ("", "~", null), bools (y, yes, on, true, n, no,
 * off, false, in three cases), infinities and NaN, by first character */
enum wkind { W_NULL, W_TRUE, W_FALSE, W_INF, W_NINF, W_NAN };
struct rword { const char *w; unsigned char len, kind; };

static const struct rword words_plus[] = { { "+.inf", 5, W_INF }, { "+.Inf", 5, W_INF }, { "+.INF", 5, W_INF }, { NULL, 0, 0 } };
static const struct rword words_minus[] = { { "-.inf", 5, W_NINF }, { "-.Inf", 5, W_NINF }, { "-.INF", 5, W_NINF }, { NULL, 0, 0 } };
static const struct rword words_dot[] = {
	{ ".inf", 4, W_INF }, { ".Inf", 4, W_INF }, { ".INF", 4, W_INF },
	{ ".nan", 4, W_NAN }, { ".NaN", 4, W_NAN }, { ".NAN", 4, W_NAN }, { NULL, 0, 0 },
};
static const struct rword words_F[] = { { "False", 5, W_FALSE }, { "FALSE", 5, W_FALSE }, { NULL, 0, 0 } };
static const struct rword words_N[] = {
	{ "N", 1, W_FALSE }, { "No", 2, W_FALSE }, { "NO", 2, W_FALSE }, { "Null", 4, W_NULL }, { "NULL", 4, W_NULL },
	{ NULL, 0, 0 },
};
static const struct rword words_O[] = {
	{ "On", 2, W_TRUE }, { "ON", 2, W_TRUE }, { "Off", 3, W_FALSE }, { "OFF", 3, W_FALSE }, { NULL, 0, 0 },
};
static const struct rword words_T[] = { { "True", 4, W_TRUE }, { "TRUE", 4, W_TRUE }, { NULL, 0, 0 } };
static const struct rword words_Y[] = { { "Y", 1, W_TRUE }, { "Yes", 3, W_TRUE }, { "YES", 3, W_TRUE }, { NULL, 0, 0 } };
static const struct rword words_f[] = { { "false", 5, W_FALSE }, { NULL, 0, 0 } };
static const struct rword words_n[] = { { "n", 1, W_FALSE }, { "no", 2, W_FALSE }, { "null", 4, W_NULL }, { NULL, 0, 0 } };
static const struct rword words_o[] = { { "on", 2, W_TRUE }, { "off", 3, W_FALSE }, { NULL, 0, 0 } };
static const struct rword words_t[] = { { "true", 4, W_TRUE }, { NULL, 0, 0 } };
static const struct rword words_y[] = { { "y", 1, W_TRUE }, { "yes", 3, W_TRUE }, { NULL, 0, 0 } };
static const struct rword words_tilde[] = { { "~", 1, W_NULL }, { NULL, 0, 0 } };

static const struct rword *word_list(unsigned char c)
{
	switch (c) {
	case '+': return words_plus;
	case '-': return words_minus;
	case '.': return words_dot;
	case 'F': return words_F;
	case 'N': return words_N;
	case 'O': return words_O;
	case 'T': return words_T;
	case 'Y': return words_Y;
	case 'f': return words_f;
	case 'n': return words_n;
	case 'o': return words_o;
	case 't': return words_t;
	case 'y': return words_y;
	case '~': return words_tilde;
	default: return NULL;
	}
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Go strconv.ParseInt(s, 0, 64)-like on an underscore-free string. */
static int parse_go_int(const char *s, size_t n, int64_t *iv, uint64_t *uv, int *is_unsigned)
{
	size_t i = 0;
	int neg = 0;
	if (i < n && (s[i] == '+' || s[i] == '-')) {
		neg = s[i] == '-';
		i++;
	}
	if (i >= n)
		return -1;
	int base = 10;
	if (s[i] == '0' && i + 1 < n) {
		char c = s[i + 1];
		if (c == 'x' || c == 'X') { base = 16; i += 2; }
		else if (c == 'o' || c == 'O') { base = 8; i += 2; }
		else if (c == 'b' || c == 'B') { base = 2; i += 2; }
		else { base = 8; i += 1; }
		if (i >= n)
			return -1;
	}
	uint64_t v = 0;
	for (; i < n; i++) {
		int d;
		char c = s[i];
		if (c >= '0' && c <= '9') d = c - '0';
		else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
		else return -1;
		if (d >= base)
			return -1;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -1;
		*iv = (int64_t)(0 - v);
		*is_unsigned = 0;
		return 0;
	}
	if (v > INT64_MAX) {
		*uv = v;
		*is_unsigned = 1;
		return 0;
	}
	*iv = (int64_t)v;
	*is_unsigned = 0;
	return 0;
}

static int yaml_style_float(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+')) i++;
	if (i < n && s[i] == '.') {
		i++;
		size_t st = i;
		while (i < n && is_digit(s[i])) i++;
		if (i == st) return 0;
	} else {
		size_t st = i;
		while (i < n && is_digit(s[i])) i++;
		if (i == st) return 0;
		if (i < n && s[i] == '.') {
			i++;
			while (i < n && is_digit(s[i])) i++;
		}
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+')) i++;
		size_t st = i;
		while (i < n && is_digit(s[i])) i++;
		if (i == st) return 0;
	}
	return i == n;
}

static int digits_at(const char *s, size_t n, size_t *i, int min, int max, int *val)
{
	size_t st = *i;
	int v = 0;
	while (*i < n && is_digit(s[*i]) && (int)(*i - st) < max)
		v = v * 10 + (s[(*i)++] - '0');
	*val = v;
	return (int)(*i - st) >= min;
}

/* yaml.v2 parseTimestamp: 2006-1-2, 2006-1-2 15:4:5[.9], 2006-1-2T15:4:5[.9]Z07:00 */
static int looks_timestamp(const char *s, size_t n)
{
	size_t i = 0;
	int y, mo, d, h, mi, se;
	if (!digits_at(s, n, &i, 4, 4, &y) || i >= n || s[i] != '-')
		return 0;
	i++;
	if (!digits_at(s, n, &i, 1, 2, &mo) || mo < 1 || mo > 12 || i >= n || s[i] != '-')
		return 0;
	i++;
	if (!digits_at(s, n, &i, 1, 2, &d) || d < 1)
		return 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return 0;
	if (i == n)
		return 1;
	char sep = s[i++];
	if (sep != 'T' && sep != 't' && sep != ' ')
		return 0;
	if (!digits_at(s, n, &i, 1, 2, &h) || h > 23 || i >= n || s[i++] != ':' ||
	    !digits_at(s, n, &i, 1, 2, &mi) || mi > 59 || i >= n || s[i++] != ':' ||
	    !digits_at(s, n, &i, 1, 2, &se) || se > 59)
		return 0;
	if (i < n && s[i] == '.') {
		size_t st = ++i;
		while (i < n && is_digit(s[i])) i++;
		if (i == st)
			return 0;
	}
	if (sep == ' ')
		return i == n;
	if (i < n && s[i] == 'Z')
		return i + 1 == n;
	if (i + 6 == n && (s[i] == '+' || s[i] == '-') && is_digit(s[i + 1]) && is_digit(s[i + 2]) && s[i + 3] == ':' &&
	    is_digit(s[i + 4]) && is_digit(s[i + 5]))
		return 1;
	return 0;
}

/* First characters of plain scalars that may be something other than a
 * string (yaml.v2's resolve table: signs, '.', digits, the letters of its
 * bool and null words, '~'). 1: a word or a number; 2: a word only. */
static const unsigned char resolve_hint[256] = {
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['y'] = 2, ['Y'] = 2, ['n'] = 2, ['N'] = 2, ['t'] = 2, ['T'] = 2, ['f'] = 2, ['F'] = 2,
	['o'] = 2, ['O'] = 2, ['~'] = 2,
};

/* yaml.v2's resolve() for a plain scalar. For numbers fills *f (and *iv). */
static enum rtag resolve(const char *s, size_t n, double *f, int64_t *iv, int *isint, int for_encode)
{
	*isint = 0;
	if (n == 0) return R_NULL;
	/* most scalars are decided by their first character */
	int hint = resolve_hint[(unsigned char)s[0]];
	if (!hint || (hint == 2 && n > 5)) /* the longest word is 5 bytes */
		return R_STR;
	if (is_digit(s[0]) || ((s[0] == '-' || s[0] == '+') && n > 1 && is_digit(s[1]))) {
		/* a plain decimal integer of up to 18 digits: what parse_go_int
		 * gives (base 10: no leading 0, no '_'); it is no timestamp */
		size_t i = is_digit(s[0]) ? 0 : 1, k = i;
		if (n - i <= 18 && (s[i] != '0' || n - i == 1)) {
			uint64_t v = 0;
			while (k < n && is_digit(s[k]))
				v = v * 10 + (uint64_t)(s[k++] - '0');
			if (k == n) {
				int64_t x = s[0] == '-' ? -(int64_t)v : (int64_t)v;
				*iv = x;
				*f = (double)x;
				*isint = 1;
				return R_INT;
			}
		}
	}
	/* the words are at most 5 bytes long */
	for (const struct rword *w = n <= 5 ? word_list((unsigned char)s[0]) : NULL; w && w->w; w++) {
		if (w->len != n || memcmp(w->w, s, n))
			continue;
		switch (w->kind) {
		case W_NULL: return R_NULL;
		case W_TRUE: *iv = 1; return R_BOOL;
		case W_FALSE: *iv = 0; return R_BOOL;
		case W_INF: *f = INFINITY; return R_FLOAT;
		case W_NINF: *f = -INFINITY; return R_FLOAT;
		default: *f = NAN; return R_FLOAT;
		}
	}
	char c = s[0];
	/* only strings starting with one of these have a resolve hint in yaml.v2 */
	if (!(c == '+' || c == '-' || c == '.' || is_digit(c) || strchr("yYnNtTfFoO~", c)))
		return R_STR;
	if (c == '.') {
		/* strconv.ParseFloat */
		char tmp[64];
		if (n < sizeof(tmp)) {
			memcpy(tmp, s, n);
			tmp[n] = 0;
			char *end;
			errno = 0;
			double d = strtod(tmp, &end);
			if (*end == 0 && n > 1 && !strchr(tmp, 'x') && !strchr(tmp, 'X') &&
			    !strpbrk(tmp, "iInN") && !isinf(d)) {
				*f = d;
				return R_FLOAT;
			}
		}
		return R_STR;
	}
	if (!(c == '+' || c == '-' || is_digit(c)))
		return R_STR;
	if (for_encode && looks_timestamp(s, n))
		return R_TIMESTAMP;
	char tmp[128];
	if (n >= sizeof(tmp))
		return R_STR;
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			tmp[m++] = s[i];
	tmp[m] = 0;
	int64_t i64;
	uint64_t u64;
	int uns;
	if (m && parse_go_int(tmp, m, &i64, &u64, &uns) == 0) {
		*isint = 1;
		if (uns) {
			*f = (double)u64;
			*iv = (int64_t)u64;
			*isint = 2;
		} else {
			*f = (double)i64;
			*iv = i64;
		}
		return R_INT;
	}
	if (yaml_style_float(tmp, m)) {
		*f = strtod(tmp, NULL);
		if (!isinf(*f)) /* Go's ParseFloat fails on overflow: a string */
			return R_FLOAT;
	}
	return R_STR;
}

/* ---------------------------------------------------------------- loader */

/* Short strings carved from bigger arena blocks: fewer cv_alloc calls, no
 * 16-byte rounding. Strings stay NUL-terminated. */
struct slab {
	char *p;
	size_t left;
};

enum { SLAB_BLOCK = 8192, SLAB_MAX = 256 };

static inline char *slab_strndup(struct cv_arena *a, struct slab *sl, const char *s, size_t n)
{
	if (!sl || n >= SLAB_MAX)
		return cv_strndup(a, s, n);
	if (sl->left < n + 1) {
		sl->p = cv_alloc(a, SLAB_BLOCK);
		sl->left = SLAB_BLOCK;
	}
	char *d = sl->p;
	if (n)
		memcpy(d, s, n);
	d[n] = 0;
	sl->p += n + 1;
	sl->left -= n + 1;
	return d;
}

struct loader {
	struct cv_arena *a;
	yaml_document_t *doc;
	int ints;
	long budget;
	char *err;
	size_t errlen;
	int failed;
	struct slab *slab; /* NULL: cv_strndup */
};

static cv load_node(struct loader *L, yaml_node_t *node, int depth);


/* Go strconv.FormatFloat(f, 'g', -1, 32), as ghodss/yaml formats float keys */
static void fmt_float32_key(struct buf *b, double d)
{
	if (isnan(d)) { buf_puts(b, ".nan"); return; }
	if (isinf(d)) { buf_puts(b, d > 0 ? ".inf" : "-.inf"); return; }
	float f = (float)d;
	if (isinf(f)) { buf_puts(b, d > 0 ? ".inf" : "-.inf"); return; }
	char tmp[64];
	int p;
	for (p = 1; p <= 9; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, (double)f);
		if (strtof(tmp, NULL) == f)
			break;
	}
	/* re-format the shortest digits with Go's %g rules */
	double rd = strtod(tmp, NULL);
	struct buf t = BUF_INIT;
	cv_fmt_float_g(&t, rd);
	buf_append(b, t.data, t.len);
	buf_free(&t);
}

enum key_err { KEY_OK, KEY_NULL, KEY_UINT64 };

/* The JSON object key for a scalar mapping key, as ghodss/yaml converts it,
 * copied into the arena (*key, *klen); resolve_it: a plain scalar without
 * the "!" tag. On KEY_NULL / KEY_UINT64 *key holds a copy of the text (for
 * key_error()). */
static inline enum key_err key_text(struct cv_arena *a, struct slab *sl, const char *s, size_t n, int resolve_it,
			     const char **key, size_t *klen)
{
	double f = 0;
	int64_t iv = 0;
	int isint;
	enum rtag t = resolve_it ? resolve(s, n, &f, &iv, &isint, 0) : R_STR;
	char tmp[64];
	switch (t) {
	case R_NULL:
		*key = slab_strndup(a, sl, s, n);
		*klen = n;
		return KEY_NULL;
	case R_BOOL:
		*key = iv ? "true" : "false";
		*klen = iv ? 4 : 5;
		return KEY_OK;
	case R_INT:
		if (isint == 2) {
			*key = cv_strndup(a, s, n);
			*klen = n;
			return KEY_UINT64;
		}
		*klen = (size_t)snprintf(tmp, sizeof(tmp), "%lld", (long long)iv);
		*key = slab_strndup(a, sl, tmp, *klen);
		return KEY_OK;
	case R_FLOAT: {
		struct buf b = BUF_INIT;
		fmt_float32_key(&b, f);
		*key = slab_strndup(a, sl, b.data ? b.data : "", b.len);
		*klen = b.len;
		buf_free(&b);
		return KEY_OK;
	}
	default:
		*key = slab_strndup(a, sl, s, n);
		*klen = n;
		return KEY_OK;
	}
}

/* map_key's error for a key key_text() refused */
static void key_error(struct loader *L, enum key_err e, const char *s, size_t n)
{
	if (e == KEY_NULL)
		snprintf(L->err, L->errlen, "error converting YAML to JSON: Unsupported map key of type: %%!s(<nil>), key: <nil>");
	else
		snprintf(L->err, L->errlen, "error converting YAML to JSON: Unsupported map key of type: uint64, key: %.*s",
			 (int)(n > 64 ? 64 : n), s);
	L->failed = 1;
}

/* a YAML node's scalar is resolved when plain and not tagged "!" */
static int node_resolves(const yaml_node_t *n)
{
	const char *tag = (const char *)n->tag;
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !(tag && tag[0] == '!' && tag[1] == 0);
}

/* JSON object key for a YAML mapping key, as ghodss/yaml converts it */
static int map_key(struct loader *L, yaml_node_t *kn, const char **key, size_t *klen)
{
	if (kn->type != YAML_SCALAR_NODE) {
		snprintf(L->err, L->errlen, "error converting YAML to JSON: unsupported map key (a collection)");
		L->failed = 1;
		return -1;
	}
	const char *s = (const char *)kn->data.scalar.value;
	size_t n = kn->data.scalar.length;
	enum key_err e = key_text(L->a, L->slab, s, n, node_resolves(kn), key, klen);
	if (e != KEY_OK) {
		key_error(L, e, s, n);
		return -1;
	}
	return 0;
}

/* A scalar's value; resolve_it: plain and not tagged "!" (else a string). */
static inline cv scalar_value(struct loader *L, const char *s, size_t n, int resolve_it)
{
	if (!resolve_it)
		return cv_str_ref(slab_strndup(L->a, L->slab, s, n), n);
	double f = 0;
	int64_t iv = 0;
	int isint;
	enum rtag t = resolve(s, n, &f, &iv, &isint, 0);
	switch (t) {
	case R_NULL: return cv_nil();
	case R_BOOL: return cv_bool((int)iv);
	case R_INT:
		if (L->ints && isint == 1)
			return cv_int(iv, CS_INT64);
		return cv_float(f);
	case R_FLOAT:
		if (isnan(f) || isinf(f)) {
			/* the JSON round trip (sigs.k8s.io/yaml) cannot carry these */
			snprintf(L->err, L->errlen, "error converting YAML to JSON: json: unsupported value: %s",
				 isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf");
			L->failed = 1;
			return cv_nil();
		}
		return cv_float(f);
	default: return cv_str_ref(slab_strndup(L->a, L->slab, s, n), n);
	}
}

static cv load_scalar(struct loader *L, yaml_node_t *node)
{
	return scalar_value(L, (const char *)node->data.scalar.value, node->data.scalar.length, node_resolves(node));
}

static void merge_into(struct loader *L, cv m, cv src)
{
	if (src.kind != CV_MAP)
		return;
	for (size_t i = 0; i < src.u.map->n; i++) {
		struct cv_mapent *e = &src.u.map->ents[i];
		if (!cv_map_get(m.u.map, e->key, e->klen))
			cv_map_set(L->a, m.u.map, e->key, e->klen, e->val);
	}
}

static cv load_node(struct loader *L, yaml_node_t *node, int depth)
{
	if (L->failed || !node)
		return cv_nil();
	if (--L->budget < 0 || depth > 2000) {
		snprintf(L->err, L->errlen, "document too large or too deeply nested (alias expansion?)");
		L->failed = 1;
		return cv_nil();
	}
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return load_scalar(L, node);
	case YAML_SEQUENCE_NODE: {
		size_t cnt = node->data.sequence.items.top - node->data.sequence.items.start;
		cv l = cv_list_new(L->a, cnt);
		for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
			cv_list_push(L->a, l, load_node(L, yaml_document_get_node(L->doc, *it), depth + 1));
		return l;
	}
	case YAML_MAPPING_NODE: {
		size_t cnt = node->data.mapping.pairs.top - node->data.mapping.pairs.start;
		cv m = cv_map_new(L->a, cnt);
		cv merges = cv_nil();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
			yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
			if (!kn)
				continue;
			if (kn->type == YAML_SCALAR_NODE && kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    kn->data.scalar.length == 2 && !memcmp(kn->data.scalar.value, "<<", 2)) {
				merges = load_node(L, vn, depth + 1);
				continue;
			}
			cv v = load_node(L, vn, depth + 1);
			const char *key;
			size_t klen;
			if (map_key(L, kn, &key, &klen))
				return cv_nil();
			cv_map_set(L->a, m.u.map, key, klen, v);
		}
		if (merges.kind == CV_MAP)
			merge_into(L, m, merges);
		else if (merges.kind == CV_LIST)
			for (size_t i = 0; i < merges.u.list->n; i++)
				merge_into(L, m, merges.u.list->items[i]);
		return m;
	}
	default:
		return cv_nil();
	}
}

/* ---------------------------------------------------------------- direct loading */

/*
 * The converter as a yamlfast sink: the same values and errors as
 * load_node() on the document libyaml would build, without building it.
 * Nodes arrive in document order, so load_node's recursion becomes a stack
 * of open collections; entries and items collect on two stacks and become
 * arrays of the exact size when their collection ends. load_node's order
 * of effects is kept: a pair's value is converted before its key is
 * checked (map_key), after a failure no node is converted any more but the
 * keys of the mappings still open are checked (a later key error replaces
 * the message, as with load_node), and a key error ends its mapping.
 * Strings (keys and values) are copied once, from the text or yamlfast's
 * decoding buffer into the arena, short ones packed into slab blocks. When
 * yamlfast gives up half-way, what was built stays unreferenced in the
 * arena and libyaml reads the text as before.
 */
struct sframe {
	int map;          /* a mapping (else a sequence) */
	int want_key;     /* mapping: the next node is a key */
	int merge;        /* mapping: the pending key is "<<" */
	enum key_err key_err;
	const char *key;  /* the pending key, in the arena */
	size_t klen;
	size_t base;      /* its first entry or item on the stacks */
	cv merges;        /* the value of its last "<<" key */
};

struct sconv {
	struct loader L;
	struct sframe *fr;
	size_t nfr, cfr;
	struct cv_entstack es;    /* entries of the open mappings, innermost last */
	cv *items;                /* items of the open sequences, innermost last */
	size_t nitems, citems;
	long skip;                /* > 0: inside a collection that is not converted */
	cv root;
	char err[512];
};

/* load_node's entry checks for a node (not a key): 1 to convert it, 0 when
 * it is nil (after a failure; or the budget/depth error, now failed) */
static inline int s_node_start(struct sconv *S)
{
	struct loader *L = &S->L;
	if (L->failed)
		return 0;
	if (--L->budget < 0 || S->nfr > 2000) {
		snprintf(L->err, L->errlen, "document too large or too deeply nested (alias expansion?)");
		L->failed = 1;
		return 0;
	}
	return 1;
}


/* a node (value or item) is complete */
static inline int s_deliver(struct sconv *S, cv v)
{
	if (!S->nfr) {
		S->root = v;
		return 0;
	}
	struct sframe *f = &S->fr[S->nfr - 1];
	if (!f->map) {
		if (S->nitems == S->citems) {
			S->citems = S->citems ? S->citems * 2 : 128;
			S->items = xrealloc(S->items, S->citems * sizeof(*S->items));
		}
		S->items[S->nitems++] = v;
		return 0;
	}
	if (f->want_key)
		return -1; /* a value without a key: not from yamlfast */
	f->want_key = 1;
	if (f->merge) {
		f->merge = 0;
		f->merges = v;
		return 0;
	}
	if (f->key_err != KEY_OK) {
		/* map_key fails: load_node leaves this mapping at once */
		key_error(&S->L, f->key_err, f->key, f->klen);
		S->es.n = f->base;
		S->nfr--;
		S->skip = 1;
		return 0;
	}
	cv_entstack_put(&S->es, f->base, f->key, f->klen, v);
	return 0;
}

static int s_scalar(void *ctx, const char *s, size_t n, yaml_scalar_style_t style)
{
	struct sconv *S = ctx;
	if (S->skip)
		return 0;
	int plain = style == YAML_PLAIN_SCALAR_STYLE;
	struct sframe *f = S->nfr ? &S->fr[S->nfr - 1] : NULL;
	if (f && f->map && f->want_key) {
		f->want_key = 0;
		if (plain && n == 2 && s[0] == '<' && s[1] == '<') {
			f->merge = 1;
			return 0;
		}
		/* converted now (s is valid during this call only); an error
		 * counts once the value is done */
		f->key_err = key_text(S->L.a, S->L.slab, s, n, plain, &f->key, &f->klen);
		return 0;
	}
	if (!s_node_start(S))
		return s_deliver(S, cv_nil());
	return s_deliver(S, scalar_value(&S->L, s, n, plain));
}

static int s_begin(void *ctx, int map, int flow)
{
	(void)flow;
	struct sconv *S = ctx;
	if (S->skip) {
		S->skip++;
		return 0;
	}
	if (S->nfr && S->fr[S->nfr - 1].map && S->fr[S->nfr - 1].want_key)
		return -1; /* a collection as a key: not from yamlfast */
	if (!s_node_start(S)) {
		S->skip = 1;
		return 0;
	}
	if (S->nfr == S->cfr) {
		S->cfr = S->cfr ? S->cfr * 2 : 32;
		S->fr = xrealloc(S->fr, S->cfr * sizeof(*S->fr));
	}
	struct sframe *f = &S->fr[S->nfr++];
	f->map = map;
	f->want_key = map;
	f->merge = 0;
	f->key_err = KEY_OK;
	f->key = NULL;
	f->klen = 0;
	f->base = map ? S->es.n : S->nitems;
	f->merges = cv_nil();
	return 0;
}

static int s_end(void *ctx)
{
	struct sconv *S = ctx;
	if (S->skip)
		return --S->skip == 0 ? s_deliver(S, cv_nil()) : 0;
	if (!S->nfr)
		return -1;
	struct sframe f = S->fr[--S->nfr];
	struct cv_arena *a = S->L.a;
	cv v;
	if (f.map) {
		if (!f.want_key)
			return -1;
		v = cv_map_of(a, S->es.ents ? S->es.ents + f.base : NULL, S->es.n - f.base);
		S->es.n = f.base;
		if (f.merges.kind == CV_MAP)
			merge_into(&S->L, v, f.merges);
		else if (f.merges.kind == CV_LIST)
			for (size_t i = 0; i < f.merges.u.list->n; i++)
				merge_into(&S->L, v, f.merges.u.list->items[i]);
	} else {
		v = cv_list_of(a, S->items ? S->items + f.base : NULL, S->nitems - f.base);
		S->nitems = f.base;
	}
	return s_deliver(S, v);
}

/* 1: the fast reader handled the text (*rc and *out as load_docs gives
 * them); 0: not handled, use libyaml. */
static int load_direct(struct cv_arena *a, const char *text, size_t len, cv *out, int ints, int *rc, char *err,
		       size_t errlen)
{
	struct sconv S;
	struct slab slab = { NULL, 0 };
	memset(&S, 0, sizeof(S));
	S.L.a = a;
	S.L.slab = &slab;
	S.L.ints = ints;
	S.L.budget = 20 * 1000 * 1000;
	S.L.err = S.err;
	S.L.errlen = sizeof(S.err);
	S.root = cv_nil();
	struct yamlfast_sink sink = { s_scalar, s_begin, s_end, &S };
	int handled = yamlfast_parse(text, len, &sink) == 0 && S.nfr == 0 && S.skip == 0;
	free(S.fr);
	free(S.es.ents);
	free(S.items);
	if (!handled)
		return 0;
	if (S.L.failed) {
		snprintf(err, errlen, "%s", S.err);
		*out = cv_nil();
		*rc = -1;
	} else {
		*out = S.root;
		*rc = 0;
	}
	return 1;
}

static int load_docs(struct cv_arena *a, const char *text, size_t len, cv *out, int ints,
		     int all, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;
	cv list = all ? cv_list_new(a, 4) : cv_nil();
	*out = cv_nil();
	/* one document: try the fast reader first (it converts what libyaml
	 * would read, or declines, and then libyaml reads the text as before) */
	if (!all && load_direct(a, text, len, out, ints, &rc, err, errlen))
		return rc;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "yaml: out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_load(&parser, &doc)) {
			snprintf(err, errlen, "yaml: line %lu: %s%s%s",
				 (unsigned long)parser.problem_mark.line + 1,
				 parser.problem ? parser.problem : "parse error",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			rc = -1;
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		struct loader L = { a, &doc, ints, 20 * 1000 * 1000, err, errlen, 0, NULL };
		cv v = load_node(&L, root, 0);
		yaml_document_delete(&doc);
		if (L.failed) {
			rc = -1;
			break;
		}
		if (!all) {
			*out = v;
			break;
		}
		cv_list_push(a, list, v);
	}
	yaml_parser_delete(&parser);
	if (all && rc == 0)
		*out = list;
	return rc;
}

int cv_from_yaml(struct cv_arena *a, const char *text, size_t len, cv *out, char *err, size_t errlen)
{
	return load_docs(a, text, len, out, 0, 0, err, errlen);
}

int cv_from_yaml_doc(struct cv_arena *a, const char *text, size_t len, cv *out, int ints, char *err, size_t errlen)
{
	return load_docs(a, text, len, out, ints, 0, err, errlen);
}

/* ---------------------------------------------------------------- emitter */

/* unicode.IsLetter for the scripts that occur in practice */
static int is_letter_rune(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	if (c == 0xAA || c == 0xB5 || c == 0xBA)
		return 1;
	if (c < 0xC0)
		return 0;
	if (c <= 0x24F)
		return c != 0xD7 && c != 0xF7;
	return (c >= 0x250 && c <= 0x2C1) || (c >= 0x370 && c <= 0x3FF && c != 0x37E && c != 0x387) ||
	       (c >= 0x400 && c <= 0x481) || (c >= 0x48A && c <= 0x52F) || (c >= 0x531 && c <= 0x587) ||
	       (c >= 0x5D0 && c <= 0x5F2) || (c >= 0x620 && c <= 0x64A) || (c >= 0x671 && c <= 0x6D3) ||
	       (c >= 0x904 && c <= 0x939) || (c >= 0xE01 && c <= 0xE30) || (c >= 0x1E00 && c <= 0x1FFF) ||
	       (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
	       (c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A) || (c >= 0x20000 && c <= 0x2FA1F);
}

static size_t decode_rune(const char *s, size_t n, size_t i, uint32_t *r)
{
	unsigned char c = (unsigned char)s[i];
	if (c < 0x80) { *r = c; return 1; }
	int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
	if (i + len > n) { *r = 0xFFFD; return 1; }
	uint32_t v = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
	for (int k = 1; k < len; k++)
		v = (v << 6) | ((unsigned char)s[i + k] & 0x3F);
	*r = len == 1 ? 0xFFFD : v;
	return len;
}

/* yaml.v2 keyList.Less for string keys */
static int natural_less(const char *a, size_t an, const char *b, size_t bn)
{
	uint32_t ar[256], br[256];
	uint32_t *A = an > 256 ? xmalloc(an * 4) : ar, *B = bn > 256 ? xmalloc(bn * 4) : br;
	size_t na = 0, nb = 0;
	for (size_t i = 0; i < an;) i += decode_rune(a, an, i, &A[na++]);
	for (size_t i = 0; i < bn;) i += decode_rune(b, bn, i, &B[nb++]);
	int res = -1;
	for (size_t i = 0; i < na && i < nb; i++) {
		if (A[i] == B[i])
			continue;
		int al = is_letter_rune(A[i]), bl = is_letter_rune(B[i]);
		if (al && bl) { res = A[i] < B[i]; break; }
		if (al || bl) { res = bl; break; }
		int64_t anum = 0, bnum = 0;
		size_t ai, bi;
		if (A[i] == '0' || B[i] == '0') {
			for (size_t j = i; j-- > 0 && A[j] >= '0' && A[j] <= '9';)
				if (A[j] != '0') { anum = 1; bnum = 1; break; }
		}
		for (ai = i; ai < na && A[ai] >= '0' && A[ai] <= '9'; ai++) anum = (int64_t)((uint64_t)anum * 10 + (A[ai] - '0')); /* wraps like Go */
		for (bi = i; bi < nb && B[bi] >= '0' && B[bi] <= '9'; bi++) bnum = (int64_t)((uint64_t)bnum * 10 + (B[bi] - '0'));
		if (anum != bnum) { res = anum < bnum; break; }
		if (ai != bi) { res = ai < bi; break; }
		res = A[i] < B[i];
		break;
	}
	if (res < 0)
		res = na < nb;
	if (A != ar) free(A);
	if (B != br) free(B);
	return res;
}

static void sort_natural(struct cv_mapent **e, size_t n)
{
	/* insertion sort on pointers (maps are small); stable */
	for (size_t i = 1; i < n; i++) {
		struct cv_mapent *x = e[i];
		size_t j = i;
		while (j > 0 && natural_less(x->key, x->klen, e[j - 1]->key, e[j - 1]->klen)) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

struct emitter {
	struct buf *b;
	int err;
};

static size_t column(struct buf *b)
{
	size_t col = 0;
	for (size_t i = b->len; i > 0; i--) {
		char c = b->data[i - 1];
		if (c == '\n')
			break;
		if (((unsigned char)c & 0xC0) != 0x80)
			col++;
	}
	return col;
}

static void spaces(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_putc(b, ' ');
}

/* libyaml IS_PRINTABLE on the UTF-8 bytes at s[i] */
static int yprintable(const unsigned char *s, size_t n, size_t i)
{
	unsigned char c = s[i];
	unsigned char c1 = i + 1 < n ? s[i + 1] : 0, c2 = i + 2 < n ? s[i + 2] : 0;
	return c == 0x0A || (c >= 0x20 && c <= 0x7E) || (c == 0xC2 && c1 >= 0xA0) ||
	       (c > 0xC2 && c < 0xED) || (c == 0xED && c1 < 0xA0) || c == 0xEE ||
	       (c == 0xEF && !(c1 == 0xBB && c2 == 0xBF) && !(c1 == 0xBF && (c2 == 0xBE || c2 == 0xBF)));
}

static size_t ywidth(unsigned char c)
{
	return (c & 0x80) == 0 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
}

static int is_break_at(const unsigned char *s, size_t n, size_t i)
{
	if (i >= n) return 0;
	if (s[i] == '\r' || s[i] == '\n') return 1;
	if (s[i] == 0xC2 && i + 1 < n && s[i + 1] == 0x85) return 1;
	if (s[i] == 0xE2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) return 1;
	return 0;
}

static int is_blankz_at(const unsigned char *s, size_t n, size_t i)
{
	return i >= n || s[i] == ' ' || s[i] == '\t' || is_break_at(s, n, i) || s[i] == 0;
}

struct analysis { int multiline, flow_plain, block_plain, single_quoted, block; };

static void analyze(const char *str, size_t n, struct analysis *an)
{
	const unsigned char *s = (const unsigned char *)str;
	memset(an, 0, sizeof(*an));
	if (n == 0) {
		an->block_plain = 1;
		an->single_quoted = 1;
		return;
	}
	int block_ind = 0, flow_ind = 0, line_breaks = 0, special = 0;
	int leading_space = 0, leading_break = 0, trailing_space = 0, trailing_break = 0;
	int break_space = 0, space_break = 0, prev_space = 0, prev_break = 0;
	if (n >= 3 && ((s[0] == '-' && s[1] == '-' && s[2] == '-') || (s[0] == '.' && s[1] == '.' && s[2] == '.'))) {
		block_ind = 1;
		flow_ind = 1;
	}
	int preceded_ws = 1;
	int followed_ws = is_blankz_at(s, n, ywidth(s[0]));
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t w = ywidth(c);
		if (i == 0) {
			if (strchr("#,[]{}&*!|>'\"%@`", c) && c) { flow_ind = 1; block_ind = 1; }
			if (c == '?' || c == ':') { flow_ind = 1; if (followed_ws) block_ind = 1; }
			if (c == '-' && followed_ws) { flow_ind = 1; block_ind = 1; }
		} else {
			if (c && strchr(",?[]{}", c)) flow_ind = 1;
			if (c == ':') { flow_ind = 1; if (followed_ws) block_ind = 1; }
			if (c == '#' && preceded_ws) { flow_ind = 1; block_ind = 1; }
		}
		if (!yprintable(s, n, i))
			special = 1;
		int brk = is_break_at(s, n, i);
		if (brk)
			line_breaks = 1;
		if (c == ' ') {
			if (i == 0) leading_space = 1;
			if (i + w == n) trailing_space = 1;
			if (prev_break) break_space = 1;
			prev_space = 1;
			prev_break = 0;
		} else if (brk) {
			if (i == 0) leading_break = 1;
			if (i + w == n) trailing_break = 1;
			if (prev_space) space_break = 1;
			prev_break = 1;
			prev_space = 0;
		} else {
			prev_space = 0;
			prev_break = 0;
		}
		preceded_ws = is_blankz_at(s, n, i);
		i += w;
		if (i < n)
			followed_ws = is_blankz_at(s, n, i + ywidth(s[i]));
	}
	an->multiline = line_breaks;
	an->flow_plain = an->block_plain = an->single_quoted = an->block = 1;
	if (leading_space || leading_break || trailing_space || trailing_break)
		an->flow_plain = an->block_plain = 0;
	if (trailing_space)
		an->block = 0;
	if (break_space)
		an->flow_plain = an->block_plain = an->single_quoted = 0;
	if (space_break || special)
		an->flow_plain = an->block_plain = an->single_quoted = an->block = 0;
	if (line_breaks)
		an->flow_plain = an->block_plain = 0;
	if (flow_ind)
		an->flow_plain = 0;
	if (block_ind)
		an->block_plain = 0;
}

static int is_base60_float(const char *s, size_t n)
{
	/* ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+')) i++;
	if (i >= n || !is_digit(s[i])) return 0;
	i++;
	while (i < n && (is_digit(s[i]) || s[i] == '_')) i++;
	int groups = 0;
	while (i < n && s[i] == ':') {
		i++;
		if (i < n && s[i] >= '0' && s[i] <= '5' && i + 1 < n && is_digit(s[i + 1])) i += 2;
		else if (i < n && is_digit(s[i])) i++;
		else return 0;
		groups++;
	}
	if (!groups) return 0;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && (is_digit(s[i]) || s[i] == '_')) i++;
	}
	return i == n;
}

enum style { ST_PLAIN, ST_SINGLE, ST_DOUBLE, ST_LITERAL };

static void write_indent(struct buf *b, int indent)
{
	buf_putc(b, '\n');
	spaces(b, indent);
}

static void write_plain(struct buf *b, const char *s, size_t n, int indent, int allow_breaks)
{
	size_t col = column(b);
	int sp = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == ' ') {
			if (allow_breaks && !sp && col > 80 && !(i + 1 < n && s[i + 1] == ' ')) {
				write_indent(b, indent);
				col = indent;
			} else {
				buf_putc(b, ' ');
				col++;
			}
			sp = 1;
			i++;
		} else {
			size_t w = ywidth((unsigned char)s[i]);
			if (i + w > n) w = n - i;
			buf_append(b, s + i, w);
			col++;
			sp = 0;
			i += w;
		}
	}
}

static void write_single(struct buf *b, const char *s, size_t n, int indent, int allow_breaks)
{
	size_t col = column(b);
	int sp = 0, breaks = 0;
	buf_putc(b, '\'');
	col++;
	for (size_t i = 0; i < n;) {
		if (is_break_at((const unsigned char *)s, n, i)) {
			/* LS/PS/NEL: written as is; the next text is indented */
			size_t w = ywidth((unsigned char)s[i]);
			buf_append(b, s + i, w);
			i += w;
			col = 0;
			breaks = 1;
			continue;
		}
		if (breaks) {
			spaces(b, indent);
			col = indent;
			breaks = 0;
		}
		if (s[i] == ' ') {
			if (allow_breaks && !sp && col > 80 && i != 0 && i != n - 1 && !(i + 1 < n && s[i + 1] == ' ')) {
				write_indent(b, indent);
				col = indent;
			} else {
				buf_putc(b, ' ');
				col++;
			}
			sp = 1;
			i++;
		} else {
			if (s[i] == '\'') {
				buf_putc(b, '\'');
				col++;
			}
			size_t w = ywidth((unsigned char)s[i]);
			if (i + w > n) w = n - i;
			buf_append(b, s + i, w);
			col++;
			sp = 0;
			i += w;
		}
	}
	buf_putc(b, '\'');
}

static void write_double(struct buf *b, const char *str, size_t n, int indent, int allow_breaks)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t col = column(b);
	int sp = 0;
	buf_putc(b, '"');
	col++;
	for (size_t i = 0; i < n;) {
		size_t w = ywidth(s[i]);
		if (i + w > n) w = n - i;
		int bom = s[i] == 0xEF && i + 2 < n && s[i + 1] == 0xBB && s[i + 2] == 0xBF;
		if (!yprintable(s, n, i) || bom || is_break_at(s, n, i) || s[i] == '"' || s[i] == '\\') {
			uint32_t r;
			decode_rune(str, n, i, &r);
			size_t before = b->len;
			switch (r) {
			case 0: buf_puts(b, "\\0"); break;
			case 7: buf_puts(b, "\\a"); break;
			case 8: buf_puts(b, "\\b"); break;
			case 9: buf_puts(b, "\\t"); break;
			case 10: buf_puts(b, "\\n"); break;
			case 11: buf_puts(b, "\\v"); break;
			case 12: buf_puts(b, "\\f"); break;
			case 13: buf_puts(b, "\\r"); break;
			case 27: buf_puts(b, "\\e"); break;
			case '"': buf_puts(b, "\\\""); break;
			case '\\': buf_puts(b, "\\\\"); break;
			case 0x85: buf_puts(b, "\\N"); break;
			case 0xA0: buf_puts(b, "\\_"); break;
			case 0x2028: buf_puts(b, "\\L"); break;
			case 0x2029: buf_puts(b, "\\P"); break;
			default:
				if (r <= 0xFF) buf_printf(b, "\\x%02X", r);
				else if (r <= 0xFFFF) buf_printf(b, "\\u%04X", r);
				else buf_printf(b, "\\U%08X", r);
			}
			col += b->len - before;
			sp = 0;
			i += w;
		} else if (s[i] == ' ') {
			if (allow_breaks && !sp && col > 80 && i != 0 && i != n - 1) {
				write_indent(b, indent);
				col = indent;
				if (i + 1 < n && s[i + 1] == ' ') {
					buf_putc(b, '\\');
					col++;
				}
			} else {
				buf_putc(b, ' ');
				col++;
			}
			sp = 1;
			i++;
		} else {
			buf_append(b, s + i, w);
			col++;
			sp = 0;
			i += w;
		}
	}
	buf_putc(b, '"');
}

static int ends_with_break(const struct buf *b)
{
	const unsigned char *d = (const unsigned char *)b->data;
	size_t n = b->len;
	if (n == 0)
		return 0;
	if (d[n - 1] == '\n')
		return 1;
	if (n >= 2 && d[n - 2] == 0xC2 && d[n - 1] == 0x85)
		return 1;
	return n >= 3 && d[n - 3] == 0xE2 && d[n - 2] == 0x80 && (d[n - 1] == 0xA8 || d[n - 1] == 0xA9);
}

static void write_literal(struct buf *b, const char *str, size_t n, int indent)
{
	const unsigned char *s = (const unsigned char *)str;
	buf_putc(b, '|');
	if (n && (s[0] == ' ' || is_break_at(s, n, 0)))
		buf_printf(b, "%d", 2);
	/* chomping: look at the last character and the one before it */
	size_t last = n ? n - 1 : 0;
	while (last > 0 && (s[last] & 0xC0) == 0x80) last--;
	if (!n || !is_break_at(s, n, last)) {
		buf_putc(b, '-');
	} else if (last == 0) {
		buf_putc(b, '+');
	} else {
		size_t k = last - 1;
		while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
		if (is_break_at(s, n, k))
			buf_putc(b, '+');
	}
	buf_putc(b, '\n');
	int breaks = 1;
	for (size_t i = 0; i < n;) {
		if (is_break_at(s, n, i)) {
			size_t w = s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : ywidth(s[i]);
			if (s[i] == '\r' || s[i] == '\n') buf_putc(b, '\n');
			else buf_append(b, s + i, w);
			i += w;
			breaks = 1;
		} else {
			if (breaks)
				spaces(b, indent);
			size_t w = ywidth(s[i]);
			if (i + w > n) w = n - i;
			buf_append(b, s + i, w);
			i += w;
			breaks = 0;
		}
	}
}

/* The style yaml.v2 + libyaml pick for a string. */
static enum style string_style(const char *s, size_t n, int key)
{
	double f;
	int64_t iv;
	int isint;
	enum rtag t = resolve(s, n, &f, &iv, &isint, 1);
	int can_plain = t == R_STR && !is_base60_float(s, n);
	enum style st;
	if (memchr(s, '\n', n))
		st = ST_LITERAL;
	else if (can_plain)
		st = ST_PLAIN;
	else
		st = ST_DOUBLE;
	struct analysis an;
	analyze(s, n, &an);
	if (st == ST_PLAIN) {
		if (!an.block_plain || (n == 0 && key))
			st = ST_SINGLE;
		/* a multiline simple key can't be plain */
		if (key && an.multiline)
			st = ST_DOUBLE;
	}
	if (st == ST_SINGLE && !an.single_quoted)
		st = ST_DOUBLE;
	if (st == ST_SINGLE && key && an.multiline)
		st = ST_DOUBLE;
	if (st == ST_LITERAL && (!an.block || key))
		st = ST_DOUBLE;
	return st;
}

static void write_string(struct buf *b, const char *s, size_t n, int indent, int key)
{
	switch (string_style(s, n, key)) {
	case ST_PLAIN: write_plain(b, s, n, indent, !key); break;
	case ST_SINGLE: write_single(b, s, n, indent, !key); break;
	case ST_DOUBLE: write_double(b, s, n, indent, !key); break;
	case ST_LITERAL: write_literal(b, s, n, indent); break;
	}
}

enum ctx { C_TOP, C_MAPVAL, C_SEQ };

/* JSON-normalise a value for emission: returns the map/list/scalar text */
static int emit(struct emitter *E, cv v, int indent, enum ctx ctx);

static void emit_number_text(struct buf *b, cv v)
{
	if (v.kind == CV_INT) {
		if (v.sub == CS_UINT64) buf_printf(b, "%llu", (unsigned long long)(uint64_t)v.u.i);
		else buf_printf(b, "%lld", (long long)v.u.i);
		return;
	}
	double f = v.u.f;
	if (f == floor(f) && fabs(f) < 1e21) {
		/* json prints it as an integer; yaml.v2 re-reads int64/uint64 */
		if (f >= -9223372036854775808.0 && f < 9223372036854775808.0) {
			buf_printf(b, "%lld", (long long)f);
			return;
		}
		if (f >= 0 && f < 18446744073709551616.0) {
			buf_printf(b, "%llu", (unsigned long long)f);
			return;
		}
	}
	cv_fmt_float_g(b, f);
}

static int emit_scalar_text(struct emitter *E, cv v, int indent)
{
	struct buf *b = E->b;
	switch (v.kind) {
	case CV_NIL: buf_puts(b, "null"); return 0;
	case CV_BOOL: buf_puts(b, v.u.b ? "true" : "false"); return 0;
	case CV_INT:
	case CV_FLOAT:
		if (v.kind == CV_FLOAT && (isnan(v.u.f) || isinf(v.u.f)))
			return -1;
		emit_number_text(b, v);
		return 0;
	case CV_STR:
		if (v.sub == CS_BYTES) {
			struct buf t = BUF_INIT;
			cv_to_json(&t, v, 0, 0);
			write_string(b, t.data + 1, t.len - 2, indent, 0);
			buf_free(&t);
			return 0;
		}
		write_string(b, v.u.str.s, v.u.str.len, indent, 0);
		return 0;
	default:
		return -1;
	}
}

/* convert objects to their JSON-equivalent maps/lists/strings */
static cv normalise(cv v, struct cv_arena *a)
{
	if (v.kind != CV_OBJ)
		return v;
	struct buf t = BUF_INIT;
	cv out = cv_nil();
	if (cv_to_json(&t, v, 0, 0) == 0) {
		char err[64];
		if (cv_from_json(a, t.data, t.len, &out, 1, err, sizeof(err)))
			out = cv_nil();
	}
	buf_free(&t);
	return out;
}

static struct cv_arena *tmp_arena(struct emitter *E, struct cv_arena **a)
{
	(void)E;
	if (!*a)
		*a = cv_arena_new();
	return *a;
}

static int emit_inner1(struct emitter *E, cv v, int indent, enum ctx ctx, struct cv_arena **ta);
static _Thread_local int emit_depth;

static int emit_inner(struct emitter *E, cv v, int indent, enum ctx ctx, struct cv_arena **ta)
{
	if (emit_depth > 2000)
		return -1;
	emit_depth++;
	int r = emit_inner1(E, v, indent, ctx, ta);
	emit_depth--;
	return r;
}

static int emit_inner1(struct emitter *E, cv v, int indent, enum ctx ctx, struct cv_arena **ta)
{
	struct buf *b = E->b;
	if (v.kind == CV_OBJ)
		v = normalise(v, tmp_arena(E, ta));
	int is_map = v.kind == CV_MAP, is_list = v.kind == CV_LIST;
	if ((is_map && v.u.map->n == 0) || (is_list && v.u.list->n == 0)) {
		if (ctx != C_TOP)
			buf_putc(b, ' ');
		buf_puts(b, is_map ? "{}\n" : "[]\n");
		return 0;
	}
	if (is_map) {
		size_t n = v.u.map->n;
		struct cv_mapent **ents = xmalloc(n * sizeof(*ents));
		for (size_t i = 0; i < n; i++)
			ents[i] = &v.u.map->ents[i];
		sort_natural(ents, n);
		int kin = ctx == C_TOP ? 0 : indent + 2;
		int rc = 0;
		for (size_t i = 0; i < n && !rc; i++) {
			if (i == 0 && ctx == C_SEQ)
				buf_putc(b, ' ');
			else if (i == 0 && ctx == C_MAPVAL) {
				buf_putc(b, '\n');
				spaces(b, kin);
			} else
				spaces(b, kin);
			const char *k = ents[i]->key;
			size_t kl = ents[i]->klen;
			struct analysis ka;
			analyze(k, kl, &ka);
			if (kl > 128 || ka.multiline) {
				/* not a simple key (libyaml): "? key" then ": value",
				 * the value laid out like a sequence item */
				buf_puts(b, "? ");
				write_string(b, k, kl, kin + 2, 0);
				if (!ends_with_break(b))
					buf_putc(b, '\n');
				spaces(b, kin);
				buf_putc(b, ':');
				rc = emit_inner(E, ents[i]->val, kin, C_SEQ, ta);
				continue;
			}
			write_string(b, k, kl, kin, 1);
			buf_putc(b, ':');
			rc = emit_inner(E, ents[i]->val, kin, C_MAPVAL, ta);
		}
		free(ents);
		return rc;
	}
	if (is_list) {
		int sin = ctx == C_TOP ? 0 : ctx == C_MAPVAL ? indent : indent + 2;
		int rc = 0;
		for (size_t i = 0; i < v.u.list->n && !rc; i++) {
			if (i == 0 && ctx == C_SEQ)
				buf_putc(b, ' ');
			else if (i == 0 && ctx == C_MAPVAL) {
				buf_putc(b, '\n');
				spaces(b, sin);
			} else
				spaces(b, sin);
			buf_putc(b, '-');
			rc = emit_inner(E, v.u.list->items[i], sin, C_SEQ, ta);
		}
		return rc;
	}
	/* scalar */
	if (ctx != C_TOP)
		buf_putc(b, ' ');
	int sind = ctx == C_TOP ? 2 : indent + 2;
	if (emit_scalar_text(E, v, sind))
		return -1;
	if (!ends_with_break(b))
		buf_putc(b, '\n');
	return 0;
}

static int emit(struct emitter *E, cv v, int indent, enum ctx ctx)
{
	struct cv_arena *ta = NULL;
	int rc = emit_inner(E, v, indent, ctx, &ta);
	cv_arena_free(ta);
	return rc;
}

int cv_to_yaml(struct buf *b, cv v)
{
	struct emitter E = { b, 0 };
	size_t start = b->len;
	int rc = emit(&E, v, 0, C_TOP);
	if (rc) {
		b->len = start;
		if (b->data)
			b->data[start] = 0;
	}
	return rc;
}
