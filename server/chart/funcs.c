/*
 * funcs.c: the template function map Helm installs (Go builtins, sprig v3
 * and Helm's own), implemented over the cv value model.
 *
 * Each function has a Go-like signature string checked by the executor
 * before the call: a=interface{}, v=reflect.Value (anything, untyped nil
 * allowed), s=string, i=int, f=float64, b=bool, m=map[string]interface{},
 * l=[]interface{}, c=certificate, t=time.Time; "x*" makes the last
 * parameter variadic. Semantics (and error texts where they matter) follow
 * sprig 3.2/cast 1.5/Masterminds semver 3.2 as described in
 * shared/reference/go-template.md: numbers from values are float64,
 * arithmetic truncates to int64, typed parameters never convert, and so on.
 */
#define _GNU_SOURCE
#include "server/chart/tmpl.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/chart/keypool.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>

#define A (S->E->a)
#define FN(name) static int name(struct tstate *S, cv *a, int n, cv *out)
#define UNUSED (void)a; (void)n

static int ferr(struct tstate *S, const char *fn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ferr(struct tstate *S, const char *fn, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return tmpl_errf(S, "error calling %s: %s", fn, msg);
}

static cv sbuf(struct tstate *S, struct buf *b)
{
	cv v = cv_str(A, b->data ? b->data : "", b->len);
	buf_free(b);
	return v;
}

static cv strval(struct tstate *S, cv v)
{
	if (v.kind == CV_STR && v.sub != CS_BYTES)
		return v;
	struct buf b = BUF_INIT;
	cv_to_string(&b, v);
	return sbuf(S, &b);
}

#define SARG(i) (a[i].u.str.s), (a[i].u.str.len)

/* ---------------------------------------------------------------- Go builtins */

FN(f_not) { UNUSED; *out = cv_bool(!cv_truthy(a[0])); return 0; }

FN(f_len)
{
	UNUSED;
	cv v = a[0];
	switch (v.kind) {
	case CV_STR: *out = cv_int((int64_t)v.u.str.len, CS_INT); return 0;
	case CV_LIST: *out = cv_int((int64_t)v.u.list->n, CS_INT); return 0;
	case CV_MAP: *out = cv_int((int64_t)v.u.map->n, CS_INT); return 0;
	case CV_OBJ:
		if (v.u.obj->type == CO_FILES) { *out = cv_int((int64_t)v.u.obj->u.files.n, CS_INT); return 0; }
		if (v.u.obj->type == CO_APIVERSIONS) { *out = cv_int((int64_t)v.u.obj->u.apis.n, CS_INT); return 0; }
		break;
	case CV_NIL:
		return ferr(S, "len", "len of nil pointer");
	default: break;
	}
	return ferr(S, "len", "len of type %s", cv_type_name(v));
}

FN(f_index)
{
	cv item = a[0];
	if (item.kind == CV_NIL)
		return ferr(S, "index", "index of untyped nil");
	for (int i = 1; i < n; i++) {
		cv ix = a[i];
		if (item.kind == CV_NIL)
			return ferr(S, "index", "index of nil pointer");
		if (item.kind == CV_LIST || item.kind == CV_STR) {
			if (ix.kind != CV_INT)
				return ferr(S, "index", "cannot index slice/array with type %s", cv_type_name(ix));
			int64_t len = item.kind == CV_LIST ? (int64_t)item.u.list->n : (int64_t)item.u.str.len;
			if (ix.u.i < 0 || ix.u.i >= len)
				return ferr(S, "index", "index out of range: %lld", (long long)ix.u.i);
			if (item.kind == CV_LIST)
				item = item.u.list->items[ix.u.i];
			else
				item = cv_int((unsigned char)item.u.str.s[ix.u.i], CS_UINT64);
		} else if (item.kind == CV_MAP) {
			if (ix.kind != CV_STR && ix.kind != CV_NIL)
				return ferr(S, "index", "value has type %s; should be string", cv_type_name(ix));
			cv *v = ix.kind == CV_STR ? cv_map_get(item.u.map, ix.u.str.s, ix.u.str.len) : NULL;
			if (v)
				item = *v;
			else
				item = item.sub == CS_STRING_MAP ? cv_str_ref("", 0) : cv_nil();
		} else if (item.kind == CV_OBJ && item.u.obj->type == CO_FILES && ix.kind == CV_STR) {
			struct cv_files *fs = &item.u.obj->u.files;
			cv r = cv_nil();
			for (size_t k = 0; k < fs->n; k++)
				if (strlen(fs->files[k].name) == ix.u.str.len && !memcmp(fs->files[k].name, ix.u.str.s, ix.u.str.len)) {
					r = cv_str_ref(fs->files[k].data, fs->files[k].len);
					r.sub = CS_BYTES;
				}
			item = r;
		} else {
			return ferr(S, "index", "can't index item of type %s", cv_type_name(item));
		}
	}
	*out = item;
	return 0;
}

static void go_sprint(struct buf *b, cv *a, int n, int ln)
{
	for (int i = 0; i < n; i++) {
		if (i > 0) {
			int is_str_prev = a[i - 1].kind == CV_STR && a[i - 1].sub != CS_BYTES;
			int is_str = a[i].kind == CV_STR && a[i].sub != CS_BYTES;
			if (ln || (!is_str_prev && !is_str))
				buf_putc(b, ' ');
		}
		cv_fmt_v(b, a[i]);
	}
	if (ln)
		buf_putc(b, '\n');
}

FN(f_print) { struct buf b = BUF_INIT; go_sprint(&b, a, n, 0); *out = sbuf(S, &b); return 0; }
FN(f_println) { struct buf b = BUF_INIT; go_sprint(&b, a, n, 1); *out = sbuf(S, &b); return 0; }
FN(f_printf)
{
	struct buf b = BUF_INIT;
	cv_sprintf(&b, a[0].u.str.s, a[0].u.str.len, a + 1, (size_t)(n - 1));
	*out = sbuf(S, &b);
	return 0;
}

enum bk { BK_INVALID, BK_BOOL, BK_INT, BK_UINT, BK_FLOAT, BK_STRING, BK_OTHER };
static enum bk basic_kind(cv v)
{
	switch (v.kind) {
	case CV_NIL: return BK_INVALID;
	case CV_BOOL: return BK_BOOL;
	case CV_INT: return v.sub == CS_UINT64 ? BK_UINT : BK_INT;
	case CV_FLOAT: return BK_FLOAT;
	case CV_STR: return v.sub == CS_BYTES ? BK_OTHER : BK_STRING;
	default: return BK_OTHER;
	}
}

static int strcmp_cv(cv x, cv y)
{
	size_t n = x.u.str.len < y.u.str.len ? x.u.str.len : y.u.str.len;
	int c = n ? memcmp(x.u.str.s, y.u.str.s, n) : 0;
	if (c)
		return c;
	return x.u.str.len < y.u.str.len ? -1 : x.u.str.len > y.u.str.len;
}

static int eq2(struct tstate *S, const char *fn, cv x, cv y, int *res)
{
	enum bk k1 = basic_kind(x), k2 = basic_kind(y);
	*res = 0;
	if (k1 != k2) {
		if (k1 == BK_INT && k2 == BK_UINT) { *res = x.u.i >= 0 && (uint64_t)x.u.i == (uint64_t)y.u.i; return 0; }
		if (k1 == BK_UINT && k2 == BK_INT) { *res = y.u.i >= 0 && (uint64_t)y.u.i == (uint64_t)x.u.i; return 0; }
		if (x.kind != CV_NIL && y.kind != CV_NIL)
			return ferr(S, fn, "incompatible types for comparison");
		return 0;
	}
	switch (k1) {
	case BK_BOOL: *res = x.u.b == y.u.b; return 0;
	case BK_INT: case BK_UINT: *res = x.u.i == y.u.i; return 0;
	case BK_FLOAT: *res = x.u.f == y.u.f; return 0;
	case BK_STRING: *res = strcmp_cv(x, y) == 0; return 0;
	case BK_INVALID: *res = 1; return 0;
	default:
		if (x.kind == CV_LIST || x.kind == CV_MAP || x.kind == CV_STR)
			return ferr(S, fn, "non-comparable type %s", cv_type_name(x));
		if (x.kind == CV_OBJ && y.kind == CV_OBJ && x.u.obj->type == y.u.obj->type) {
			if (x.u.obj->type == CO_TIME)
				*res = x.u.obj->u.time.sec == y.u.obj->u.time.sec && x.u.obj->u.time.nsec == y.u.obj->u.time.nsec;
			else
				*res = x.u.obj == y.u.obj;
			return 0;
		}
		return ferr(S, fn, "incompatible types for comparison");
	}
}

FN(f_eq)
{
	for (int i = 1; i < n; i++) {
		int r;
		if (eq2(S, "eq", a[0], a[i], &r))
			return -1;
		if (r) {
			*out = cv_bool(1);
			return 0;
		}
	}
	*out = cv_bool(0);
	return 0;
}

FN(f_ne)
{
	UNUSED;
	int r;
	if (eq2(S, "ne", a[0], a[1], &r))
		return -1;
	*out = cv_bool(!r);
	return 0;
}

static int lt2(struct tstate *S, const char *fn, cv x, cv y, int *res)
{
	enum bk k1 = basic_kind(x), k2 = basic_kind(y);
	if (k1 == BK_INVALID || k1 == BK_OTHER || k2 == BK_INVALID || k2 == BK_OTHER || k1 == BK_BOOL)
		return ferr(S, fn, "invalid type for comparison");
	if (k1 != k2) {
		if (k1 == BK_INT && k2 == BK_UINT) { *res = x.u.i < 0 || (uint64_t)x.u.i < (uint64_t)y.u.i; return 0; }
		if (k1 == BK_UINT && k2 == BK_INT) { *res = y.u.i >= 0 && (uint64_t)x.u.i < (uint64_t)y.u.i; return 0; }
		return ferr(S, fn, "incompatible types for comparison");
	}
	switch (k1) {
	case BK_INT: *res = x.u.i < y.u.i; break;
	case BK_UINT: *res = (uint64_t)x.u.i < (uint64_t)y.u.i; break;
	case BK_FLOAT: *res = x.u.f < y.u.f; break;
	default: *res = strcmp_cv(x, y) < 0; break;
	}
	return 0;
}

FN(f_lt) { UNUSED; int r; if (lt2(S, "lt", a[0], a[1], &r)) return -1; *out = cv_bool(r); return 0; }
FN(f_le)
{
	UNUSED;
	int r, e;
	if (lt2(S, "le", a[0], a[1], &r)) return -1;
	if (!r && eq2(S, "le", a[0], a[1], &e)) return -1;
	*out = cv_bool(r || e);
	return 0;
}
FN(f_gt)
{
	UNUSED;
	int r, e;
	if (lt2(S, "gt", a[0], a[1], &r)) return -1;
	if (eq2(S, "gt", a[0], a[1], &e)) return -1;
	*out = cv_bool(!r && !e);
	return 0;
}
FN(f_ge) { UNUSED; int r; if (lt2(S, "ge", a[0], a[1], &r)) return -1; *out = cv_bool(!r); return 0; }

FN(f_html)
{
	struct buf t = BUF_INIT, b = BUF_INIT;
	go_sprint(&t, a, n, 0);
	for (size_t i = 0; i < t.len; i++) {
		switch (t.data[i]) {
		case '<': buf_puts(&b, "&lt;"); break;
		case '>': buf_puts(&b, "&gt;"); break;
		case '&': buf_puts(&b, "&amp;"); break;
		case '\'': buf_puts(&b, "&#39;"); break;
		case '"': buf_puts(&b, "&#34;"); break;
		case 0: buf_puts(&b, "\xef\xbf\xbd"); break;
		default: buf_putc(&b, t.data[i]);
		}
	}
	buf_free(&t);
	*out = sbuf(S, &b);
	return 0;
}

FN(f_urlquery)
{
	struct buf t = BUF_INIT, b = BUF_INIT;
	go_sprint(&t, a, n, 0);
	for (size_t i = 0; i < t.len; i++) {
		unsigned char c = (unsigned char)t.data[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			buf_putc(&b, (char)c);
		else if (c == ' ')
			buf_putc(&b, '+');
		else
			buf_printf(&b, "%%%02X", c);
	}
	buf_free(&t);
	*out = sbuf(S, &b);
	return 0;
}

FN(f_js)
{
	struct buf t = BUF_INIT, b = BUF_INIT;
	go_sprint(&t, a, n, 0);
	for (size_t i = 0; i < t.len; i++) {
		unsigned char c = (unsigned char)t.data[i];
		switch (c) {
		case '\\': buf_puts(&b, "\\\\"); break;
		case '\'': buf_puts(&b, "\\'"); break;
		case '"': buf_puts(&b, "\\\""); break;
		case '<': buf_puts(&b, "\\u003C"); break;
		case '>': buf_puts(&b, "\\u003E"); break;
		case '&': buf_puts(&b, "\\u0026"); break;
		case '=': buf_puts(&b, "\\u003D"); break;
		case '\n': buf_puts(&b, "\\n"); break;
		case '\r': buf_puts(&b, "\\r"); break;
		case '\t': buf_puts(&b, "\\t"); break;
		default:
			if (c < 0x20) buf_printf(&b, "\\u%04X", c);
			else buf_putc(&b, (char)c);
		}
	}
	buf_free(&t);
	*out = sbuf(S, &b);
	return 0;
}

/* ---------------------------------------------------------------- cast */

static int64_t parse_cast_int(const char *s, size_t len, int *ok)
{
	/* cast: trimZeroDecimal then strconv.ParseInt(s, 0, 0) */
	char tmp[128];
	*ok = 0;
	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = 0;
	char *dot = strchr(tmp, '.');
	if (dot) {
		int allzero = dot[1] != 0;
		for (char *p = dot + 1; *p; p++)
			if (*p != '0') allzero = 0;
		if (allzero)
			*dot = 0;
	}
	const char *p = tmp;
	int neg = 0;
	if (*p == '+' || *p == '-') { neg = *p == '-'; p++; }
	int base = 10;
	if (p[0] == '0' && p[1]) {
		if (p[1] == 'x' || p[1] == 'X') { base = 16; p += 2; }
		else if (p[1] == 'o' || p[1] == 'O') { base = 8; p += 2; }
		else if (p[1] == 'b' || p[1] == 'B') { base = 2; p += 2; }
		else { base = 8; p += 1; }
	}
	if (!*p)
		return 0;
	uint64_t v = 0;
	int prev_us = 1;
	for (; *p; p++) {
		if (*p == '_' && base != 10 && !prev_us) { prev_us = 1; continue; }
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : 99;
		if (d >= base)
			return 0;
		if (v > (UINT64_MAX - d) / base)
			return 0;
		v = v * base + d;
		prev_us = 0;
	}
	if (!neg && v > INT64_MAX) return 0;
	if (neg && v > (uint64_t)INT64_MAX + 1) return 0;
	*ok = 1;
	return neg ? (int64_t)(0 - v) : (int64_t)v;
}

static int64_t to_int64(cv v)
{
	switch (v.kind) {
	case CV_BOOL: return v.u.b;
	case CV_INT: return v.u.i;
	case CV_FLOAT:
		if (isnan(v.u.f)) return INT64_MIN;
		if (v.u.f >= 9.2233720368547758e18 || v.u.f <= -9.2233720368547758e18) return INT64_MIN;
		return (int64_t)v.u.f;
	case CV_STR: {
		int ok;
		return parse_cast_int(v.u.str.s, v.u.str.len, &ok);
	}
	default: return 0;
	}
}

static double to_float64(cv v)
{
	switch (v.kind) {
	case CV_BOOL: return v.u.b;
	case CV_INT: return v.sub == CS_UINT64 ? (double)(uint64_t)v.u.i : (double)v.u.i;
	case CV_FLOAT: return v.u.f;
	case CV_STR: {
		char tmp[128];
		if (v.u.str.len == 0 || v.u.str.len >= sizeof(tmp)) return 0;
		memcpy(tmp, v.u.str.s, v.u.str.len);
		tmp[v.u.str.len] = 0;
		char *end;
		double d = strtod(tmp, &end);
		if (*end || isspace((unsigned char)tmp[0])) return 0;
		return d;
	}
	default: return 0;
	}
}

FN(f_int) { UNUSED; *out = cv_int(to_int64(a[0]), CS_INT); return 0; }
FN(f_int64) { UNUSED; *out = cv_int(to_int64(a[0]), CS_INT64); return 0; }
FN(f_float64) { UNUSED; *out = cv_float(to_float64(a[0])); return 0; }
FN(f_atoi)
{
	UNUSED;
	char tmp[64];
	size_t l = a[0].u.str.len;
	int64_t v = 0;
	if (l && l < sizeof(tmp)) {
		memcpy(tmp, a[0].u.str.s, l);
		tmp[l] = 0;
		char *end;
		long long x = strtoll(tmp, &end, 10);
		if (!*end && !isspace((unsigned char)tmp[0]))
			v = x;
	}
	*out = cv_int(v, CS_INT);
	return 0;
}
FN(f_toDecimal)
{
	UNUSED;
	cv s = strval(S, a[0]);
	char tmp[64];
	int64_t v = 0;
	if (s.u.str.len && s.u.str.len < sizeof(tmp)) {
		memcpy(tmp, s.u.str.s, s.u.str.len);
		tmp[s.u.str.len] = 0;
		char *end;
		long long x = strtoll(tmp, &end, 8);
		if (!*end) v = x;
	}
	*out = cv_int(v, CS_INT64);
	return 0;
}

FN(f_add) { int64_t s = 0; for (int i = 0; i < n; i++) s += to_int64(a[i]); *out = cv_int(s, CS_INT64); return 0; }
FN(f_add1) { UNUSED; *out = cv_int(to_int64(a[0]) + 1, CS_INT64); return 0; }
FN(f_sub) { UNUSED; *out = cv_int(to_int64(a[0]) - to_int64(a[1]), CS_INT64); return 0; }
FN(f_mul) { int64_t s = to_int64(a[0]); for (int i = 1; i < n; i++) s *= to_int64(a[i]); *out = cv_int(s, CS_INT64); return 0; }
FN(f_div)
{
	UNUSED;
	int64_t d = to_int64(a[1]);
	if (d == 0)
		return ferr(S, "div", "runtime error: integer divide by zero");
	*out = cv_int(to_int64(a[0]) / d, CS_INT64);
	return 0;
}
FN(f_mod)
{
	UNUSED;
	int64_t d = to_int64(a[1]);
	if (d == 0)
		return ferr(S, "mod", "runtime error: integer divide by zero");
	*out = cv_int(to_int64(a[0]) % d, CS_INT64);
	return 0;
}
FN(f_max) { int64_t m = to_int64(a[0]); for (int i = 1; i < n; i++) { int64_t x = to_int64(a[i]); if (x > m) m = x; } *out = cv_int(m, CS_INT64); return 0; }
FN(f_min) { int64_t m = to_int64(a[0]); for (int i = 1; i < n; i++) { int64_t x = to_int64(a[i]); if (x < m) m = x; } *out = cv_int(m, CS_INT64); return 0; }
FN(f_maxf) { double m = to_float64(a[0]); for (int i = 1; i < n; i++) m = fmax(m, to_float64(a[i])); *out = cv_float(m); return 0; }
FN(f_minf) { double m = to_float64(a[0]); for (int i = 1; i < n; i++) m = fmin(m, to_float64(a[i])); *out = cv_float(m); return 0; }
FN(f_addf) { double s = 0; for (int i = 0; i < n; i++) s += to_float64(a[i]); *out = cv_float(s); return 0; }
FN(f_subf) { double s = to_float64(a[0]); for (int i = 1; i < n; i++) s -= to_float64(a[i]); *out = cv_float(s); return 0; }
FN(f_mulf) { double s = to_float64(a[0]); for (int i = 1; i < n; i++) s *= to_float64(a[i]); *out = cv_float(s); return 0; }
FN(f_divf) { double s = to_float64(a[0]); for (int i = 1; i < n; i++) s /= to_float64(a[i]); *out = cv_float(s); return 0; }
FN(f_floor) { UNUSED; *out = cv_float(floor(to_float64(a[0]))); return 0; }
FN(f_ceil) { UNUSED; *out = cv_float(ceil(to_float64(a[0]))); return 0; }
FN(f_round)
{
	double x = to_float64(a[0]);
	int64_t p = to_int64(a[1]);
	double rn = n > 2 ? to_float64(a[2]) : 0.5;
	double pow10 = pow(10, (double)p);
	double digit = pow10 * x;
	double r = 0;
	double frac = modf(digit, &r);
	if (frac >= rn) r = ceil(digit);
	else r = floor(digit);
	*out = cv_float(r / pow10);
	return 0;
}

static cv int_list(struct tstate *S, int64_t start, int64_t stop, int64_t step)
{
	cv l = cv_list_new(A, 0);
	if (step == 0)
		return l;
	int64_t count = 0;
	for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
		if (++count > 1000000) break;
		cv_list_push(A, l, cv_int(i, CS_INT));
	}
	return l;
}
FN(f_until) { UNUSED; int64_t c = a[0].u.i; *out = int_list(S, 0, c, c >= 0 ? 1 : -1); return 0; }
FN(f_untilStep) { UNUSED; *out = int_list(S, a[0].u.i, a[1].u.i, a[2].u.i); return 0; }
FN(f_seq)
{
	int64_t start = 1, stop = 0, step = 1;
	if (n == 0) { *out = cv_str_ref("", 0); return 0; }
	if (n == 1) { stop = to_int64(a[0]); }
	else if (n == 2) { start = to_int64(a[0]); stop = to_int64(a[1]); }
	else { start = to_int64(a[0]); step = to_int64(a[1]); stop = to_int64(a[2]); }
	if (n < 3 && stop < start) step = -1;
	struct buf b = BUF_INIT;
	int first = 1;
	if (step != 0)
		for (int64_t i = start, c = 0; (step > 0 ? i <= stop : i >= stop) && c < 1000000; i += step, c++) {
			buf_printf(&b, first ? "%lld" : " %lld", (long long)i);
			first = 0;
		}
	*out = sbuf(S, &b);
	return 0;
}

/* ---------------------------------------------------------------- logic */

FN(f_default)
{
	if (n < 2 || !cv_truthy(a[1])) { *out = a[0]; return 0; }
	*out = a[1];
	return 0;
}
FN(f_empty) { UNUSED; *out = cv_bool(!cv_truthy(a[0])); return 0; }
FN(f_coalesce)
{
	for (int i = 0; i < n; i++)
		if (cv_truthy(a[i])) { *out = a[i]; return 0; }
	*out = cv_nil();
	return 0;
}
FN(f_all) { for (int i = 0; i < n; i++) if (!cv_truthy(a[i])) { *out = cv_bool(0); return 0; } *out = cv_bool(1); return 0; }
FN(f_any) { for (int i = 0; i < n; i++) if (cv_truthy(a[i])) { *out = cv_bool(1); return 0; } *out = cv_bool(0); return 0; }
FN(f_ternary) { UNUSED; *out = a[2].u.b ? a[0] : a[1]; return 0; }

FN(f_required)
{
	UNUSED;
	if (a[1].kind == CV_NIL || (a[1].kind == CV_STR && a[1].sub != CS_BYTES && a[1].u.str.len == 0)) {
		S->E->fail_kind = 1;
		snprintf(S->E->fail_msg, sizeof(S->E->fail_msg), "%.*s", (int)a[0].u.str.len, a[0].u.str.s);
		return ferr(S, "required", "%.*s", (int)a[0].u.str.len, a[0].u.str.s);
	}
	*out = a[1];
	return 0;
}
FN(f_fail)
{
	UNUSED;
	S->E->fail_kind = 1;
	snprintf(S->E->fail_msg, sizeof(S->E->fail_msg), "%.*s", (int)a[0].u.str.len, a[0].u.str.s);
	return ferr(S, "fail", "%.*s", (int)a[0].u.str.len, a[0].u.str.s);
}

/* ---------------------------------------------------------------- strings */

static void quote_each(struct tstate *S, cv *a, int n, int single, struct buf *b)
{
	int first = 1;
	for (int i = 0; i < n; i++) {
		if (a[i].kind == CV_NIL)
			continue;
		if (!first)
			buf_putc(b, ' ');
		first = 0;
		cv s = strval(S, a[i]);
		if (single) {
			buf_putc(b, '\'');
			buf_append(b, s.u.str.s, s.u.str.len);
			buf_putc(b, '\'');
		} else {
			cv_go_quote(b, s.u.str.s, s.u.str.len);
		}
	}
}
FN(f_quote) { struct buf b = BUF_INIT; quote_each(S, a, n, 0, &b); *out = sbuf(S, &b); return 0; }
FN(f_squote) { struct buf b = BUF_INIT; quote_each(S, a, n, 1, &b); *out = sbuf(S, &b); return 0; }

FN(f_toString) { UNUSED; *out = strval(S, a[0]); return 0; }

static int uspace_at(const char *s, size_t len, size_t i, size_t *w)
{
	unsigned char c = (unsigned char)s[i];
	*w = 1;
	if (c == ' ' || (c >= '\t' && c <= '\r'))
		return 1;
	if (c == 0xC2 && i + 1 < len && (s[i + 1] == (char)0x85 || s[i + 1] == (char)0xA0)) { *w = 2; return 1; }
	if (c == 0xE1 && i + 2 < len && s[i + 1] == (char)0x9A && s[i + 2] == (char)0x80) { *w = 3; return 1; }
	if (c == 0xE2 && i + 2 < len) {
		unsigned char c1 = (unsigned char)s[i + 1], c2 = (unsigned char)s[i + 2];
		if ((c1 == 0x80 && ((c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF)) || (c1 == 0x81 && c2 == 0x9F)) { *w = 3; return 1; }
	}
	if (c == 0xE3 && i + 2 < len && s[i + 1] == (char)0x80 && s[i + 2] == (char)0x80) { *w = 3; return 1; }
	return 0;
}

FN(f_trim)
{
	UNUSED;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len, st = 0, en = len, w;
	while (st < en && uspace_at(s, len, st, &w)) st += w;
	while (en > st) {
		/* find start of last rune */
		size_t k = en - 1;
		while (k > st && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
		if (uspace_at(s, len, k, &w) && k + w == en) en = k;
		else break;
	}
	*out = cv_str_ref(s + st, en - st);
	return 0;
}

static int in_cutset(const char *cs, size_t cl, const char *s, size_t w)
{
	for (size_t i = 0; i < cl;) {
		size_t cw = 1;
		unsigned char c = (unsigned char)cs[i];
		if (c >= 0xC0) cw = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
		if (cw == w && i + cw <= cl && !memcmp(cs + i, s, w)) return 1;
		i += cw;
	}
	return 0;
}
static size_t rune_w(unsigned char c) { return c < 0xC0 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4; }

FN(f_trimAll)
{
	UNUSED;
	const char *cs = a[0].u.str.s, *s = a[1].u.str.s;
	size_t cl = a[0].u.str.len, len = a[1].u.str.len, st = 0, en = len;
	while (st < en) { size_t w = rune_w((unsigned char)s[st]); if (st + w > en || !in_cutset(cs, cl, s + st, w)) break; st += w; }
	while (en > st) {
		size_t k = en - 1;
		while (k > st && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
		if (in_cutset(cs, cl, s + k, en - k)) en = k; else break;
	}
	*out = cv_str_ref(s + st, en - st);
	return 0;
}
FN(f_trimPrefix)
{
	UNUSED;
	cv s = a[1];
	if (s.u.str.len >= a[0].u.str.len && !memcmp(s.u.str.s, a[0].u.str.s, a[0].u.str.len)) {
		s.u.str.s += a[0].u.str.len;
		s.u.str.len -= a[0].u.str.len;
	}
	*out = s;
	return 0;
}
FN(f_trimSuffix)
{
	UNUSED;
	cv s = a[1];
	if (s.u.str.len >= a[0].u.str.len && !memcmp(s.u.str.s + s.u.str.len - a[0].u.str.len, a[0].u.str.s, a[0].u.str.len))
		s.u.str.len -= a[0].u.str.len;
	*out = s;
	return 0;
}

static void map_case(struct buf *b, const char *s, size_t len, int upper)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80)
			buf_putc(b, (char)(upper ? toupper(c) : tolower(c)));
		else if (c == 0xC3 && i + 1 < len) {
			/* Latin-1 supplement letters */
			unsigned char d = (unsigned char)s[i + 1];
			if (upper && d >= 0xA0 && d <= 0xBE && d != 0xB7) d -= 0x20;
			else if (!upper && d >= 0x80 && d <= 0x9E && d != 0x97) d += 0x20;
			buf_putc(b, (char)c);
			buf_putc(b, (char)d);
			i++;
		} else
			buf_putc(b, (char)c);
	}
}
FN(f_upper) { UNUSED; struct buf b = BUF_INIT; map_case(&b, SARG(0), 1); *out = sbuf(S, &b); return 0; }
FN(f_lower) { UNUSED; struct buf b = BUF_INIT; map_case(&b, SARG(0), 0); *out = sbuf(S, &b); return 0; }

static int title_sep(const char *s, size_t len, size_t i)
{
	unsigned char c = (unsigned char)s[i];
	if (c < 0x80)
		return !(isalnum(c) || c == '_');
	size_t w;
	return uspace_at(s, len, i, &w);
}
FN(f_title)
{
	UNUSED;
	struct buf b = BUF_INIT;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len;
	int prev_sep = 1;
	for (size_t i = 0; i < len;) {
		size_t w = rune_w((unsigned char)s[i]);
		if (i + w > len) w = len - i;
		if (prev_sep)
			map_case(&b, s + i, w, 1);
		else
			buf_append(&b, s + i, w);
		prev_sep = title_sep(s, len, i);
		i += w;
	}
	*out = sbuf(S, &b);
	return 0;
}
FN(f_untitle)
{
	UNUSED;
	struct buf b = BUF_INIT;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len;
	int prev_space = 1;
	for (size_t i = 0; i < len; i++) {
		if (prev_space) map_case(&b, s + i, 1, 0);
		else buf_putc(&b, s[i]);
		prev_space = isspace((unsigned char)s[i]);
	}
	*out = sbuf(S, &b);
	return 0;
}

static void replace_all(struct buf *b, const char *s, size_t len, const char *old, size_t ol, const char *nw, size_t nl)
{
	if (ol == 0) {
		/* Go: insert at every rune boundary */
		buf_append(b, nw, nl);
		for (size_t i = 0; i < len;) {
			size_t w = rune_w((unsigned char)s[i]);
			if (i + w > len) w = len - i;
			buf_append(b, s + i, w);
			buf_append(b, nw, nl);
			i += w;
		}
		return;
	}
	size_t i = 0;
	while (i < len) {
		if (i + ol <= len && !memcmp(s + i, old, ol)) {
			buf_append(b, nw, nl);
			i += ol;
		} else
			buf_putc(b, s[i++]);
	}
}
FN(f_replace)
{
	UNUSED;
	struct buf b = BUF_INIT;
	replace_all(&b, SARG(2), SARG(0), SARG(1));
	*out = sbuf(S, &b);
	return 0;
}

static int str_contains(const char *h, size_t hl, const char *nd, size_t nl)
{
	if (nl == 0) return 1;
	for (size_t i = 0; i + nl <= hl; i++)
		if (!memcmp(h + i, nd, nl)) return 1;
	return 0;
}
FN(f_contains) { UNUSED; *out = cv_bool(str_contains(SARG(1), SARG(0))); return 0; }
FN(f_hasPrefix) { UNUSED; *out = cv_bool(a[1].u.str.len >= a[0].u.str.len && !memcmp(a[1].u.str.s, a[0].u.str.s, a[0].u.str.len)); return 0; }
FN(f_hasSuffix) { UNUSED; *out = cv_bool(a[1].u.str.len >= a[0].u.str.len && !memcmp(a[1].u.str.s + a[1].u.str.len - a[0].u.str.len, a[0].u.str.s, a[0].u.str.len)); return 0; }

/* strings.SplitN semantics; n < 0 = all */
static cv split_list(struct tstate *S, const char *s, size_t len, const char *sep, size_t sl, long n)
{
	cv l = cv_list_new(A, 4);
	l.sub = CS_STRING_LIST;
	if (n == 0)
		return l;
	if (sl == 0) {
		for (size_t i = 0; i < len;) {
			size_t w = rune_w((unsigned char)s[i]);
			if (i + w > len) w = len - i;
			if (n > 0 && (long)l.u.list->n == n - 1) {
				cv_list_push(A, l, cv_str_ref(s + i, len - i));
				return l;
			}
			cv_list_push(A, l, cv_str_ref(s + i, w));
			i += w;
		}
		return l;
	}
	size_t st = 0;
	for (size_t i = 0; i + sl <= len;) {
		if (n > 0 && (long)l.u.list->n == n - 1)
			break;
		if (!memcmp(s + i, sep, sl)) {
			cv_list_push(A, l, cv_str_ref(s + st, i - st));
			i += sl;
			st = i;
		} else
			i++;
	}
	cv_list_push(A, l, cv_str_ref(s + st, len - st));
	return l;
}
static cv list_to_split_map(struct tstate *S, cv l)
{
	cv m = cv_map_new(A, l.u.list->n);
	m.sub = CS_STRING_MAP;
	char k[32];
	for (size_t i = 0; i < l.u.list->n; i++) {
		int kl = snprintf(k, sizeof(k), "_%zu", i);
		cv_map_set(A, m.u.map, k, (size_t)kl, l.u.list->items[i]);
	}
	return m;
}
FN(f_split) { UNUSED; *out = list_to_split_map(S, split_list(S, SARG(1), SARG(0), -1)); return 0; }
FN(f_splitList) { UNUSED; *out = split_list(S, SARG(1), SARG(0), -1); return 0; }
FN(f_splitn) { UNUSED; *out = list_to_split_map(S, split_list(S, SARG(2), SARG(0), (long)a[1].u.i)); return 0; }

FN(f_join)
{
	UNUSED;
	struct buf b = BUF_INIT;
	cv v = a[1];
	if (v.kind == CV_LIST) {
		int first = 1;
		for (size_t i = 0; i < v.u.list->n; i++) {
			if (v.u.list->items[i].kind == CV_NIL && v.sub != CS_STRING_LIST)
				continue;
			if (!first) buf_append(&b, SARG(0));
			first = 0;
			cv_to_string(&b, v.u.list->items[i]);
		}
	} else if (v.kind != CV_NIL) {
		cv_to_string(&b, v);
	}
	*out = sbuf(S, &b);
	return 0;
}

FN(f_trunc)
{
	UNUSED;
	int64_t c = a[0].u.i;
	cv s = a[1];
	int64_t len = (int64_t)s.u.str.len;
	if (c < 0 && len + c > 0) {
		s.u.str.s += len + c;
		s.u.str.len = (size_t)-c;
	} else if (c >= 0 && len > c)
		s.u.str.len = (size_t)c;
	*out = s;
	return 0;
}

FN(f_substr)
{
	UNUSED;
	int64_t st = a[0].u.i, en = a[1].u.i;
	cv s = a[2];
	int64_t len = (int64_t)s.u.str.len;
	if (st < 0) {
		if (en < 0 || en > len) return ferr(S, "substr", "slice bounds out of range");
		s.u.str.len = (size_t)en;
	} else if (en < 0 || en > len) {
		if (st > len) return ferr(S, "substr", "slice bounds out of range");
		s.u.str.s += st;
		s.u.str.len = (size_t)(len - st);
	} else {
		if (st > en) return ferr(S, "substr", "slice bounds out of range");
		s.u.str.s += st;
		s.u.str.len = (size_t)(en - st);
	}
	*out = s;
	return 0;
}

FN(f_cat)
{
	struct buf b = BUF_INIT;
	int first = 1;
	for (int i = 0; i < n; i++) {
		if (a[i].kind == CV_NIL) continue;
		if (!first) buf_putc(&b, ' ');
		first = 0;
		cv_fmt_v(&b, a[i]);
	}
	*out = sbuf(S, &b);
	return 0;
}

static void do_indent(struct buf *b, int64_t sp, const char *s, size_t len)
{
	if (sp < 0) sp = 0;
	if (sp > 100000) sp = 100000;
	/* every line, the first included, gets sp spaces in front */
	size_t pad = (size_t)sp;
	const char *end = s + len;
	for (;;) {
		buf_reserve(b, pad);
		memset(b->data + b->len, ' ', pad);
		b->len += pad;
		b->data[b->len] = 0;
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl) {
			buf_append(b, s, (size_t)(end - s));
			break;
		}
		buf_append(b, s, (size_t)(nl + 1 - s));
		s = nl + 1;
	}
}
FN(f_indent) { UNUSED; struct buf b = BUF_INIT; do_indent(&b, a[0].u.i, SARG(1)); *out = sbuf(S, &b); return 0; }
FN(f_nindent) { UNUSED; struct buf b = BUF_INIT; buf_putc(&b, '\n'); do_indent(&b, a[0].u.i, SARG(1)); *out = sbuf(S, &b); return 0; }
FN(f_repeat)
{
	UNUSED;
	struct buf b = BUF_INIT;
	if (a[0].u.i < 0) return ferr(S, "repeat", "strings: negative Repeat count");
	if ((double)a[0].u.i * (double)a[1].u.str.len > 64.0 * 1024 * 1024)
		return ferr(S, "repeat", "repeat result too large");
	for (int64_t i = 0; i < a[0].u.i; i++) buf_append(&b, SARG(1));
	*out = sbuf(S, &b);
	return 0;
}
FN(f_nospace)
{
	UNUSED;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < a[0].u.str.len;) {
		size_t w;
		if (uspace_at(a[0].u.str.s, a[0].u.str.len, i, &w)) { i += w; continue; }
		buf_putc(&b, a[0].u.str.s[i++]);
	}
	*out = sbuf(S, &b);
	return 0;
}

static const char b64t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static void b64_encode(struct buf *b, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t x = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
		buf_putc(b, b64t[(x >> 18) & 63]);
		buf_putc(b, b64t[(x >> 12) & 63]);
		buf_putc(b, i + 1 < n ? b64t[(x >> 6) & 63] : '=');
		buf_putc(b, i + 2 < n ? b64t[x & 63] : '=');
	}
}
static int b64_decode(struct buf *b, const char *s, size_t n)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i;
	size_t pad = 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\r' || c == '\n') continue;
		if (c == '=') { pad++; continue; }
		if (pad) return -1;
		const char *p = strchr(b64t, c);
		if (!p || !c) return -1;
		acc = (acc << 6) | (uint32_t)(p - b64t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(b, (char)((acc >> bits) & 0xFF));
		}
	}
	if (bits >= 6) return -1;
	return 0;
}
FN(f_b64enc) { UNUSED; struct buf b = BUF_INIT; b64_encode(&b, (const unsigned char *)a[0].u.str.s, a[0].u.str.len); *out = sbuf(S, &b); return 0; }
FN(f_b64dec)
{
	UNUSED;
	struct buf b = BUF_INIT;
	if (b64_decode(&b, SARG(0))) {
		buf_reset(&b);
		buf_puts(&b, "illegal base64 data at input byte 0");
	}
	*out = sbuf(S, &b);
	return 0;
}

static cv digest_hex(struct tstate *S, const char *md, const char *s, size_t len)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	EVP_Digest(s, len, h, &hl, EVP_get_digestbyname(md), NULL);
	struct buf b = BUF_INIT;
	for (unsigned i = 0; i < hl; i++) buf_printf(&b, "%02x", h[i]);
	return sbuf(S, &b);
}
FN(f_sha256sum) { UNUSED; *out = digest_hex(S, "SHA256", SARG(0)); return 0; }
FN(f_sha1sum) { UNUSED; *out = digest_hex(S, "SHA1", SARG(0)); return 0; }
FN(f_sha512sum) { UNUSED; *out = digest_hex(S, "SHA512", SARG(0)); return 0; }
FN(f_adler32sum)
{
	UNUSED;
	uint32_t s1 = 1, s2 = 0;
	for (size_t i = 0; i < a[0].u.str.len; i++) {
		s1 = (s1 + (unsigned char)a[0].u.str.s[i]) % 65521;
		s2 = (s2 + s1) % 65521;
	}
	struct buf b = BUF_INIT;
	buf_printf(&b, "%u", (s2 << 16) | s1);
	*out = sbuf(S, &b);
	return 0;
}

/* ---------------------------------------------------------------- regex */

static int compile_re(regex_t *re, const char *p, size_t len)
{
	char *pat = xstrndup(p, len);
	int rc = regcomp(re, pat, REG_EXTENDED);
	free(pat);
	return rc;
}

FN(f_regexMatch)
{
	UNUSED;
	regex_t re;
	if (compile_re(&re, SARG(0))) { *out = cv_bool(0); return 0; }
	char *s = xstrndup(SARG(1));
	*out = cv_bool(regexec(&re, s, 0, NULL, 0) == 0);
	free(s);
	regfree(&re);
	return 0;
}
FN(f_mustRegexMatch)
{
	UNUSED;
	regex_t re;
	if (compile_re(&re, SARG(0)))
		return ferr(S, "mustRegexMatch", "error parsing regexp: %.*s", (int)a[0].u.str.len, a[0].u.str.s);
	char *s = xstrndup(SARG(1));
	*out = cv_bool(regexec(&re, s, 0, NULL, 0) == 0);
	free(s);
	regfree(&re);
	return 0;
}

static void expand_repl(struct buf *b, const char *repl, size_t rl, const char *s, regmatch_t *m, size_t nm)
{
	for (size_t i = 0; i < rl; i++) {
		if (repl[i] != '$' || i + 1 >= rl) {
			buf_putc(b, repl[i]);
			continue;
		}
		if (repl[i + 1] == '$') {
			buf_putc(b, '$');
			i++;
			continue;
		}
		size_t ns, ne;
		size_t j;
		if (repl[i + 1] == '{') {
			ns = i + 2;
			for (j = ns; j < rl && repl[j] != '}'; j++) ;
			if (j >= rl || j == ns) { buf_putc(b, '$'); continue; }
			ne = j;
			i = j;
		} else {
			ns = i + 1;
			for (j = ns; j < rl && (isalnum((unsigned char)repl[j]) || repl[j] == '_'); j++) ;
			if (j == ns) { buf_putc(b, '$'); continue; }
			ne = j;
			i = j - 1;
		}
		int num = 1;
		size_t g = 0;
		for (size_t k = ns; k < ne; k++) {
			if (!isdigit((unsigned char)repl[k])) { num = 0; break; }
			g = g * 10 + (size_t)(repl[k] - '0');
			if (g > 1000) g = 1000;
		}
		if (num && g < nm && m[g].rm_so >= 0)
			buf_append(b, s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
	}
}

static int regex_replace(struct tstate *S, const char *fn, cv *a, int literal, cv *out)
{
	regex_t re;
	if (compile_re(&re, SARG(0)))
		return ferr(S, fn, "regexp: Compile(%.*s): error parsing regexp", (int)a[0].u.str.len, a[0].u.str.s);
	char *s = xstrndup(SARG(1));
	size_t len = a[1].u.str.len;
	struct buf b = BUF_INIT;
	regmatch_t m[10];
	size_t pos = 0;
	while (pos <= len) {
		int flags = pos > 0 ? REG_NOTBOL : 0;
		if (regexec(&re, s + pos, 10, m, flags) != 0)
			break;
		for (int k = 0; k < 10; k++)
			if (m[k].rm_so >= 0) { m[k].rm_so += (regoff_t)pos; m[k].rm_eo += (regoff_t)pos; }
		buf_append(&b, s + pos, (size_t)m[0].rm_so - pos);
		if (literal)
			buf_append(&b, SARG(2));
		else
			expand_repl(&b, a[2].u.str.s, a[2].u.str.len, s, m, 10);
		if (m[0].rm_eo == m[0].rm_so) {
			if ((size_t)m[0].rm_eo < len)
				buf_putc(&b, s[m[0].rm_eo]);
			pos = (size_t)m[0].rm_eo + 1;
		} else
			pos = (size_t)m[0].rm_eo;
	}
	if (pos < len)
		buf_append(&b, s + pos, len - pos);
	free(s);
	regfree(&re);
	*out = sbuf(S, &b);
	return 0;
}
FN(f_regexReplaceAll) { UNUSED; return regex_replace(S, "regexReplaceAll", a, 0, out); }
FN(f_regexReplaceAllLiteral) { UNUSED; return regex_replace(S, "regexReplaceAllLiteral", a, 1, out); }

static int regex_find(struct tstate *S, cv *a, long limit, cv *out, int all)
{
	regex_t re;
	if (compile_re(&re, SARG(0)))
		return ferr(S, "regexFind", "error parsing regexp");
	char *s = xstrndup(SARG(1));
	size_t len = a[1].u.str.len;
	cv l = cv_list_new(A, 2);
	l.sub = CS_STRING_LIST;
	regmatch_t m[1];
	size_t pos = 0;
	while (pos <= len && (limit < 0 || (long)l.u.list->n < limit)) {
		if (regexec(&re, s + pos, 1, m, pos ? REG_NOTBOL : 0) != 0)
			break;
		cv_list_push(A, l, cv_str(A, s + pos + m[0].rm_so, (size_t)(m[0].rm_eo - m[0].rm_so)));
		pos += (size_t)m[0].rm_eo + (m[0].rm_eo == m[0].rm_so ? 1 : 0);
		if (!all) break;
	}
	free(s);
	regfree(&re);
	if (!all)
		*out = l.u.list->n ? l.u.list->items[0] : cv_str_ref("", 0);
	else
		*out = l;
	return 0;
}
FN(f_regexFind) { UNUSED; return regex_find(S, a, 1, out, 0); }
FN(f_regexFindAll) { UNUSED; return regex_find(S, a, (long)a[2].u.i, out, 1); }

/* ---------------------------------------------------------------- lists */

static int as_list(struct tstate *S, const char *fn, cv v, cv *out)
{
	*out = v;
	if (v.kind == CV_LIST) return 0;
	return ferr(S, fn, "Cannot %s on type %s", fn, v.kind == CV_NIL ? "<nil>" : cv_kind_name(v));
}

FN(f_list)
{
	cv l = cv_list_new(A, (size_t)n);
	for (int i = 0; i < n; i++) cv_list_push(A, l, a[i]);
	*out = l;
	return 0;
}
FN(f_first)
{
	UNUSED;
	cv l;
	if (as_list(S, "first", a[0], &l)) return -1;
	*out = l.u.list->n ? l.u.list->items[0] : cv_nil();
	return 0;
}
FN(f_last)
{
	UNUSED;
	cv l;
	if (as_list(S, "last", a[0], &l)) return -1;
	*out = l.u.list->n ? l.u.list->items[l.u.list->n - 1] : cv_nil();
	return 0;
}
static cv sublist(struct tstate *S, cv l, size_t st, size_t en)
{
	cv r = cv_list_new(A, en > st ? en - st : 0);
	for (size_t i = st; i < en; i++) cv_list_push(A, r, l.u.list->items[i]);
	return r;
}
FN(f_rest) { UNUSED; cv l; if (as_list(S, "rest", a[0], &l)) return -1; *out = l.u.list->n ? sublist(S, l, 1, l.u.list->n) : cv_nil(); return 0; }
FN(f_initial) { UNUSED; cv l; if (as_list(S, "initial", a[0], &l)) return -1; *out = l.u.list->n ? sublist(S, l, 0, l.u.list->n - 1) : cv_nil(); return 0; }
FN(f_reverse)
{
	UNUSED;
	cv l;
	if (as_list(S, "reverse", a[0], &l)) return -1;
	cv r = cv_list_new(A, l.u.list->n);
	for (size_t i = l.u.list->n; i-- > 0;) cv_list_push(A, r, l.u.list->items[i]);
	*out = r;
	return 0;
}
FN(f_append)
{
	UNUSED;
	cv l;
	if (as_list(S, "push", a[0], &l)) return -1;
	cv r = sublist(S, l, 0, l.u.list->n);
	cv_list_push(A, r, a[1]);
	*out = r;
	return 0;
}
FN(f_prepend)
{
	UNUSED;
	cv l;
	if (as_list(S, "prepend", a[0], &l)) return -1;
	cv r = cv_list_new(A, l.u.list->n + 1);
	cv_list_push(A, r, a[1]);
	for (size_t i = 0; i < l.u.list->n; i++) cv_list_push(A, r, l.u.list->items[i]);
	*out = r;
	return 0;
}
FN(f_concat)
{
	cv r = cv_list_new(A, 4);
	for (int i = 0; i < n; i++) {
		if (a[i].kind != CV_LIST)
			return ferr(S, "concat", "Cannot concat type %s as list", cv_kind_name(a[i]));
		for (size_t k = 0; k < a[i].u.list->n; k++) cv_list_push(A, r, a[i].u.list->items[k]);
	}
	*out = r;
	return 0;
}
FN(f_has)
{
	UNUSED;
	if (a[1].kind == CV_NIL) { *out = cv_bool(0); return 0; }
	if (a[1].kind != CV_LIST)
		return ferr(S, "has", "Cannot find has on type %s", cv_kind_name(a[1]));
	int found = 0;
	for (size_t i = 0; i < a[1].u.list->n && !found; i++) {
		cv x = a[1].u.list->items[i], y = a[0];
		if (x.kind == CV_STR && y.kind == CV_STR && x.sub != CS_BYTES && y.sub != CS_BYTES)
			found = x.u.str.len == y.u.str.len && !memcmp(x.u.str.s, y.u.str.s, x.u.str.len);
		else
			found = cv_deep_equal(x, y);
	}
	*out = cv_bool(found);
	return 0;
}
FN(f_uniq)
{
	UNUSED;
	cv l;
	if (as_list(S, "uniq", a[0], &l)) return -1;
	cv r = cv_list_new(A, l.u.list->n);
	for (size_t i = 0; i < l.u.list->n; i++) {
		int dup = 0;
		for (size_t k = 0; k < r.u.list->n && !dup; k++) dup = cv_deep_equal(r.u.list->items[k], l.u.list->items[i]);
		if (!dup) cv_list_push(A, r, l.u.list->items[i]);
	}
	*out = r;
	return 0;
}
FN(f_without)
{
	cv l;
	if (as_list(S, "without", a[0], &l)) return -1;
	cv r = cv_list_new(A, l.u.list->n);
	for (size_t i = 0; i < l.u.list->n; i++) {
		int drop = 0;
		for (int k = 1; k < n && !drop; k++) drop = cv_deep_equal(a[k], l.u.list->items[i]);
		if (!drop) cv_list_push(A, r, l.u.list->items[i]);
	}
	*out = r;
	return 0;
}
FN(f_compact)
{
	UNUSED;
	cv l;
	if (as_list(S, "compact", a[0], &l)) return -1;
	cv r = cv_list_new(A, l.u.list->n);
	for (size_t i = 0; i < l.u.list->n; i++)
		if (cv_truthy(l.u.list->items[i])) cv_list_push(A, r, l.u.list->items[i]);
	*out = r;
	return 0;
}
static int cmp_strs(const void *x, const void *y)
{
	const cv *p = x, *q = y;
	size_t n = p->u.str.len < q->u.str.len ? p->u.str.len : q->u.str.len;
	int c = n ? memcmp(p->u.str.s, q->u.str.s, n) : 0;
	return c ? c : (p->u.str.len < q->u.str.len ? -1 : p->u.str.len > q->u.str.len);
}
FN(f_sortAlpha)
{
	UNUSED;
	cv r = cv_list_new(A, 4);
	r.sub = CS_STRING_LIST;
	if (a[0].kind == CV_LIST) {
		for (size_t i = 0; i < a[0].u.list->n; i++) cv_list_push(A, r, strval(S, a[0].u.list->items[i]));
	} else
		cv_list_push(A, r, strval(S, a[0]));
	if (r.u.list->n > 1)
		qsort(r.u.list->items, r.u.list->n, sizeof(cv), cmp_strs);
	*out = r;
	return 0;
}
FN(f_slice)
{
	cv l = a[0];
	if (l.kind != CV_LIST && l.kind != CV_STR)
		return ferr(S, "slice", "list should be type of slice or array but %s", cv_kind_name(l));
	int64_t len = l.kind == CV_LIST ? (int64_t)l.u.list->n : (int64_t)l.u.str.len;
	int64_t st = n > 1 ? to_int64(a[1]) : 0, en = n > 2 ? to_int64(a[2]) : len;
	if (st < 0 || en > len || st > en)
		return ferr(S, "slice", "slice bounds out of range");
	if (l.kind == CV_STR) {
		l.u.str.s += st;
		l.u.str.len = (size_t)(en - st);
		*out = l;
	} else
		*out = sublist(S, l, (size_t)st, (size_t)en);
	return 0;
}
FN(f_chunk)
{
	UNUSED;
	cv l;
	if (as_list(S, "chunk", a[1], &l)) return -1;
	int64_t size = a[0].u.i;
	if (size <= 0) return ferr(S, "chunk", "invalid chunk size");
	cv r = cv_list_new(A, 4);
	for (size_t i = 0; i < l.u.list->n; i += (size_t)size) {
		size_t en = i + (size_t)size < l.u.list->n ? i + (size_t)size : l.u.list->n;
		cv_list_push(A, r, sublist(S, l, i, en));
	}
	*out = r;
	return 0;
}

/* ---------------------------------------------------------------- dicts */

static struct cv_map *need_map(cv v)
{
	return v.kind == CV_MAP ? v.u.map : NULL;
}

FN(f_dict)
{
	cv m = cv_map_new(A, (size_t)(n / 2 + 1));
	for (int i = 0; i < n; i += 2) {
		cv k = strval(S, a[i]);
		cv v = i + 1 < n ? a[i + 1] : cv_str_ref("", 0);
		cv_map_set(A, m.u.map, k.u.str.s, k.u.str.len, v);
	}
	*out = m;
	return 0;
}
FN(f_get)
{
	UNUSED;
	struct cv_map *m = need_map(a[0]);
	cv *v = m ? cv_map_get(m, SARG(1)) : NULL;
	*out = v ? *v : cv_str_ref("", 0);
	return 0;
}
FN(f_set)
{
	UNUSED;
	struct cv_map *m = need_map(a[0]);
	if (!m) return ferr(S, "set", "assignment to entry in nil map");
	cv_map_set(A, m, SARG(1), a[2]);
	*out = a[0];
	return 0;
}
FN(f_unset)
{
	UNUSED;
	struct cv_map *m = need_map(a[0]);
	if (m) cv_map_del(m, SARG(1));
	*out = a[0];
	return 0;
}
FN(f_hasKey)
{
	UNUSED;
	struct cv_map *m = need_map(a[0]);
	*out = cv_bool(m && cv_map_get(m, SARG(1)) != NULL);
	return 0;
}
FN(f_keys)
{
	cv r = cv_list_new(A, 4);
	r.sub = CS_STRING_LIST;
	for (int i = 0; i < n; i++) {
		struct cv_map *m = need_map(a[i]);
		if (!m) continue;
		for (size_t k = 0; k < m->n; k++) cv_list_push(A, r, cv_str_ref(m->ents[k].key, m->ents[k].klen));
	}
	*out = r;
	return 0;
}
FN(f_values)
{
	UNUSED;
	cv r = cv_list_new(A, 4);
	struct cv_map *m = need_map(a[0]);
	if (m)
		for (size_t k = 0; k < m->n; k++) cv_list_push(A, r, m->ents[k].val);
	*out = r;
	return 0;
}
static int pick_omit(struct tstate *S, cv *a, int n, cv *out, int pick)
{
	struct cv_map *m = need_map(a[0]);
	cv r = cv_map_new(A, 4);
	if (m) {
		for (size_t k = 0; k < m->n; k++) {
			int listed = 0;
			for (int i = 1; i < n && !listed; i++)
				listed = a[i].u.str.len == m->ents[k].klen && !memcmp(a[i].u.str.s, m->ents[k].key, m->ents[k].klen);
			if (listed == pick)
				cv_map_set(A, r.u.map, m->ents[k].key, m->ents[k].klen, m->ents[k].val);
		}
	}
	*out = r;
	return 0;
}
FN(f_pick) { return pick_omit(S, a, n, out, 1); }
FN(f_omit) { return pick_omit(S, a, n, out, 0); }
FN(f_pluck)
{
	cv r = cv_list_new(A, 4);
	for (int i = 1; i < n; i++) {
		struct cv_map *m = need_map(a[i]);
		cv *v = m ? cv_map_get(m, SARG(0)) : NULL;
		if (v) cv_list_push(A, r, *v);
	}
	*out = r;
	return 0;
}

static void mergo(struct tstate *S, struct cv_map *dst, struct cv_map *src, int overwrite)
{
	for (size_t k = 0; k < src->n; k++) {
		struct cv_mapent *e = &src->ents[k];
		cv *d = cv_map_get(dst, e->key, e->klen);
		if (d && d->kind == CV_MAP && e->val.kind == CV_MAP) {
			mergo(S, d->u.map, e->val.u.map, overwrite);
			continue;
		}
		if (!d || !cv_truthy(*d) || (overwrite && cv_truthy(e->val)))
			cv_map_set(A, dst, e->key, e->klen, e->val);
	}
}
static int do_merge(struct tstate *S, cv *a, int n, cv *out, int overwrite, const char *fn)
{
	struct cv_map *dst = need_map(a[0]);
	if (!dst) return ferr(S, fn, "dst must be a map");
	for (int i = 1; i < n; i++) {
		struct cv_map *src = need_map(a[i]);
		if (src) mergo(S, dst, src, overwrite);
	}
	*out = a[0];
	return 0;
}
FN(f_merge) { return do_merge(S, a, n, out, 0, "merge"); }
FN(f_mergeOverwrite) { return do_merge(S, a, n, out, 1, "mergeOverwrite"); }
FN(f_deepCopy) { UNUSED; *out = cv_deep_copy(A, a[0]); return 0; }
FN(f_dig)
{
	if (n < 3) return ferr(S, "dig", "dig needs at least three arguments");
	cv d = a[n - 1];
	cv def = a[n - 2];
	if (d.kind != CV_MAP) return ferr(S, "dig", "interface conversion: interface {} is %s, not map[string]interface {}", cv_type_name(d));
	for (int i = 0; i < n - 2; i++) {
		cv k = a[i];
		if (k.kind != CV_STR) return ferr(S, "dig", "interface conversion: interface {} is %s, not string", cv_type_name(k));
		cv *v = cv_map_get(d.u.map, k.u.str.s, k.u.str.len);
		if (!v) { *out = def; return 0; }
		if (i == n - 3) { *out = *v; return 0; }
		if (v->kind != CV_MAP) return ferr(S, "dig", "interface conversion: interface {} is %s, not map[string]interface {}", cv_type_name(*v));
		d = *v;
	}
	*out = def;
	return 0;
}

/* ---------------------------------------------------------------- types */

FN(f_typeOf) { UNUSED; *out = cv_cstr(A, cv_type_name(a[0])); return 0; }
FN(f_kindOf) { UNUSED; *out = cv_cstr(A, cv_kind_name(a[0])); return 0; }
FN(f_typeIs) { UNUSED; const char *t = cv_type_name(a[1]); *out = cv_bool(strlen(t) == a[0].u.str.len && !memcmp(t, a[0].u.str.s, a[0].u.str.len)); return 0; }
FN(f_typeIsLike)
{
	UNUSED;
	const char *t = cv_type_name(a[1]);
	int r = strlen(t) == a[0].u.str.len && !memcmp(t, a[0].u.str.s, a[0].u.str.len);
	if (!r && strlen(t) + 1 == a[0].u.str.len && a[0].u.str.s[0] == '*' && !memcmp(t, a[0].u.str.s + 1, strlen(t))) r = 1;
	*out = cv_bool(r);
	return 0;
}
FN(f_kindIs) { UNUSED; const char *t = cv_kind_name(a[1]); *out = cv_bool(strlen(t) == a[0].u.str.len && !memcmp(t, a[0].u.str.s, a[0].u.str.len)); return 0; }
FN(f_deepEqual) { UNUSED; *out = cv_bool(cv_deep_equal(a[0], a[1])); return 0; }

/* ---------------------------------------------------------------- yaml/json */

static cv error_map(struct tstate *S, const char *msg)
{
	cv m = cv_map_new(A, 1);
	cv_map_set(A, m.u.map, "Error", 5, cv_cstr(A, msg));
	return m;
}

FN(f_toYaml)
{
	UNUSED;
	struct buf b = BUF_INIT;
	if (cv_to_yaml(&b, a[0]) == 0 && b.len && b.data[b.len - 1] == '\n')
		b.len--;
	*out = sbuf(S, &b);
	return 0;
}
FN(f_toJson) { UNUSED; struct buf b = BUF_INIT; cv_to_json(&b, a[0], 1, 0); *out = sbuf(S, &b); return 0; }
FN(f_toRawJson) { UNUSED; struct buf b = BUF_INIT; cv_to_json(&b, a[0], 0, 0); *out = sbuf(S, &b); return 0; }
FN(f_toPrettyJson) { UNUSED; struct buf b = BUF_INIT; cv_to_json(&b, a[0], 1, 2); *out = sbuf(S, &b); return 0; }
FN(f_mustToJson)
{
	UNUSED;
	struct buf b = BUF_INIT;
	if (cv_to_json(&b, a[0], 1, 0)) { buf_free(&b); return ferr(S, "mustToJson", "json: unsupported value"); }
	*out = sbuf(S, &b);
	return 0;
}
FN(f_fromYaml)
{
	UNUSED;
	char err[512];
	cv v;
	if (cv_from_yaml(A, SARG(0), &v, err, sizeof(err))) { *out = error_map(S, err); return 0; }
	if (v.kind == CV_NIL) v = cv_map_new(A, 0);
	if (v.kind != CV_MAP) {
		*out = error_map(S, "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}");
		return 0;
	}
	*out = v;
	return 0;
}
FN(f_fromYamlArray)
{
	UNUSED;
	char err[512];
	cv v;
	if (cv_from_yaml(A, SARG(0), &v, err, sizeof(err)) || (v.kind != CV_LIST && v.kind != CV_NIL)) {
		cv l = cv_list_new(A, 1);
		cv_list_push(A, l, cv_cstr(A, err));
		*out = l;
		return 0;
	}
	*out = v.kind == CV_NIL ? cv_list_new(A, 0) : v;
	return 0;
}
FN(f_fromJson)
{
	UNUSED;
	char err[512];
	cv v;
	if (cv_from_json(A, SARG(0), &v, 0, err, sizeof(err)) || v.kind != CV_MAP) {
		*out = error_map(S, "invalid JSON");
		return 0;
	}
	*out = v;
	return 0;
}
FN(f_fromJsonArray)
{
	UNUSED;
	char err[512];
	cv v;
	if (cv_from_json(A, SARG(0), &v, 0, err, sizeof(err)) || v.kind != CV_LIST) {
		cv l = cv_list_new(A, 1);
		cv_list_push(A, l, cv_cstr(A, "invalid JSON"));
		*out = l;
		return 0;
	}
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------- helm */

FN(f_include) { UNUSED; return tmpl_include(S, SARG(0), a[1], out); }
FN(f_tpl) { UNUSED; return tmpl_tpl(S, SARG(0), a[1], out); }
FN(f_lookup)
{
	UNUSED;
	struct tengine *E = S->E;
	if (!E->lookup) {
		*out = cv_map_new(A, 0);
		return 0;
	}
	char *av = xstrndup(SARG(0)), *k = xstrndup(SARG(1)), *ns = xstrndup(SARG(2)), *nm = xstrndup(SARG(3));
	json_t *j = E->lookup(E->lookup_ctx, av, k, ns, nm);
	free(av); free(k); free(ns); free(nm);
	if (!j) {
		*out = cv_map_new(A, 0);
		return 0;
	}
	*out = cv_from_jansson(A, j, 1);
	json_decref(j);
	if (out->kind != CV_MAP)
		*out = cv_map_new(A, 0);
	return 0;
}
FN(f_getHostByName) { UNUSED; *out = cv_str_ref("", 0); return 0; }

/* ---------------------------------------------------------------- semver */

static int parse_num(const char *s, size_t len, uint64_t *v)
{
	if (len == 0) return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i])) return -1;
		if (x > (UINT64_MAX - 9) / 10) return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

static int ident_ok(const char *s, size_t len)
{
	if (len == 0) return 0;
	size_t st = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i == st) return 0;
			st = i + 1;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-') return 0;
	}
	return 1;
}

/* Masterminds NewVersion (loose); wildcard parts allowed when wild != NULL:
 * wild receives 0 none, 1 minor dirty, 2 patch dirty, 3 major dirty */
static int semver_parse(struct cv_arena *ar, const char *s, size_t len, struct cv_semver *out, int *wild)
{
	memset(out, 0, sizeof(*out));
	out->original = cv_strndup(ar, s, len);
	size_t i = 0;
	if (i < len && (s[i] == 'v' || s[i] == 'V')) i++;
	/* numeric part until - or + */
	size_t core_end = i;
	while (core_end < len && s[core_end] != '-' && s[core_end] != '+') core_end++;
	uint64_t parts[3] = { 0, 0, 0 };
	int np = 0, dirty = 0;
	size_t st = i;
	for (size_t k = i; k <= core_end; k++) {
		if (k == core_end || s[k] == '.') {
			if (np >= 3) return -1;
			const char *p = s + st;
			size_t pl = k - st;
			if (wild && pl == 1 && (*p == 'x' || *p == 'X' || *p == '*')) {
				if (!dirty) dirty = np == 0 ? 3 : np == 1 ? 1 : 2;
				parts[np++] = 0;
			} else {
				if (parse_num(p, pl, &parts[np])) return -1;
				if (dirty) return -1;
				np++;
			}
			st = k + 1;
		}
	}
	if (np == 0) return -1;
	if (wild) {
		if (!dirty && np == 1) dirty = 1;
		else if (!dirty && np == 2) dirty = 2;
		*wild = dirty;
	}
	out->major = parts[0];
	out->minor = parts[1];
	out->patch = parts[2];
	i = core_end;
	if (i < len && s[i] == '-') {
		size_t pe = i + 1;
		while (pe < len && s[pe] != '+') pe++;
		if (!ident_ok(s + i + 1, pe - i - 1)) return -1;
		out->pre = cv_strndup(ar, s + i + 1, pe - i - 1);
		i = pe;
	}
	if (i < len && s[i] == '+') {
		if (!ident_ok(s + i + 1, len - i - 1)) return -1;
		out->meta = cv_strndup(ar, s + i + 1, len - i - 1);
		i = len;
	}
	return i == len ? 0 : -1;
}

static int cmp_u(uint64_t x, uint64_t y) { return x < y ? -1 : x > y; }

static int cmp_pre(const char *a, const char *b)
{
	if ((!a || !*a) && (!b || !*b)) return 0;
	if (!a || !*a) return 1;
	if (!b || !*b) return -1;
	while (1) {
		const char *ae = strchr(a, '.'), *be = strchr(b, '.');
		size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
		uint64_t an, bn;
		int anum = parse_num(a, al, &an) == 0, bnum = parse_num(b, bl, &bn) == 0;
		int c;
		if (anum && bnum) c = cmp_u(an, bn);
		else if (anum) c = -1;
		else if (bnum) c = 1;
		else {
			size_t m = al < bl ? al : bl;
			c = memcmp(a, b, m);
			if (!c) c = al < bl ? -1 : al > bl;
			c = c < 0 ? -1 : c > 0;
		}
		if (c) return c;
		if (!ae && !be) return 0;
		if (!ae) return -1;
		if (!be) return 1;
		a = ae + 1;
		b = be + 1;
	}
}

static int sv_cmp(const struct cv_semver *x, const struct cv_semver *y)
{
	int c = cmp_u(x->major, y->major);
	if (!c) c = cmp_u(x->minor, y->minor);
	if (!c) c = cmp_u(x->patch, y->patch);
	if (!c) c = cmp_pre(x->pre, y->pre);
	return c;
}

FN(f_semver)
{
	UNUSED;
	struct cv_obj *o;
	cv v = cv_obj_new(A, CO_SEMVER, &o);
	if (semver_parse(A, SARG(0), &o->u.sv, NULL))
		return ferr(S, "semver", "Invalid Semantic Version");
	*out = v;
	return 0;
}

static int sv_check(const char *op, size_t opl, const struct cv_semver *c, int dirty, const struct cv_semver *v)
{
#define OP(lit) (opl == sizeof(lit) - 1 && !memcmp(op, lit, opl))
	int has_pre = v->pre && *v->pre, c_pre = c->pre && *c->pre;
	if (dirty == 3 && !OP("!=")) /* "*" */
		return !(has_pre && !c_pre);
	if (opl == 0 || OP("=")) {
		if (dirty) {
			if (has_pre && !c_pre) return 0;
			if (v->major != c->major) return 0;
			if (dirty == 2 && v->minor != c->minor) return 0;
			return 1;
		}
		return sv_cmp(v, c) == 0;
	}
	if (OP("!=")) {
		if (dirty) {
			if (has_pre && !c_pre) return 0;
			if (v->major != c->major) return 1;
			if (dirty == 2 && v->minor != c->minor) return 1;
			return dirty == 3 ? 0 : 0;
		}
		return sv_cmp(v, c) != 0;
	}
	if (has_pre && !c_pre)
		return 0;
	if (OP(">")) {
		if (!dirty) return sv_cmp(v, c) > 0;
		if (v->major != c->major) return v->major > c->major;
		if (dirty == 1) return 0;
		if (dirty == 2) return v->minor > c->minor;
		return sv_cmp(v, c) > 0;
	}
	if (OP("<")) return sv_cmp(v, c) < 0;
	if (OP(">=") || OP("=>")) return sv_cmp(v, c) >= 0;
	if (OP("<=") || OP("=<")) {
		if (!dirty) return sv_cmp(v, c) <= 0;
		if (v->major != c->major) return v->major < c->major;
		if (dirty == 1) return 1;
		if (dirty == 2) return v->minor <= c->minor;
		return sv_cmp(v, c) <= 0;
	}
	if (OP("~") || OP("~>")) {
		if (sv_cmp(v, c) < 0) return 0;
		if (c->major == 0 && c->minor == 0 && c->patch == 0 && dirty == 0) return 1;
		if (v->major != c->major) return 0;
		if (v->minor != c->minor && dirty != 1) return 0;
		return 1;
	}
	if (OP("^")) {
		if (sv_cmp(v, c) < 0) return 0;
		if (c->major > 0 || dirty == 1) return v->major == c->major;
		if (c->minor > 0 || dirty == 2) return v->minor == c->minor;
		return v->patch == c->patch;
	}
#undef OP
	return -1;
}

/* returns 1/0, or -1 for a bad constraint */
static int semver_satisfies(struct cv_arena *ar, const char *cs, size_t cl, const struct cv_semver *v)
{
	size_t i = 0;
	int any_group = 0;
	while (i <= cl) {
		/* one OR group */
		size_t ge = i;
		while (ge < cl && !(ge + 1 < cl && cs[ge] == '|' && cs[ge + 1] == '|')) ge++;
		int ok = 1, count = 0;
		size_t p = i;
		while (p < ge) {
			while (p < ge && (cs[p] == ' ' || cs[p] == ',' || cs[p] == '\t')) p++;
			if (p >= ge) break;
			size_t os = p;
			while (p < ge && strchr("=!<>~^", cs[p])) p++;
			size_t opl = p - os;
			while (p < ge && cs[p] == ' ') p++;
			size_t vs = p;
			while (p < ge && (isalnum((unsigned char)cs[p]) || cs[p] == '.' || cs[p] == '-' || cs[p] == '+' || cs[p] == '*')) p++;
			if (p == vs) return -1;
			struct cv_semver c;
			int dirty;
			if (semver_parse(ar, cs + vs, p - vs, &c, &dirty)) return -1;
			/* hyphen range */
			size_t q = p;
			while (q < ge && cs[q] == ' ') q++;
			if (opl == 0 && q + 1 < ge && cs[q] == '-' && cs[q + 1] == ' ') {
				q++;
				while (q < ge && cs[q] == ' ') q++;
				size_t v2 = q;
				while (q < ge && (isalnum((unsigned char)cs[q]) || cs[q] == '.' || cs[q] == '-' || cs[q] == '+' || cs[q] == '*')) q++;
				struct cv_semver c2;
				int d2;
				if (q == v2 || semver_parse(ar, cs + v2, q - v2, &c2, &d2)) return -1;
				int r1 = sv_check(">=", 2, &c, dirty, v), r2 = sv_check("<=", 2, &c2, d2, v);
				if (!r1 || !r2) ok = 0;
				p = q;
				count++;
				continue;
			}
			int r = sv_check(cs + os, opl, &c, dirty, v);
			if (r < 0) return -1;
			if (!r) ok = 0;
			count++;
		}
		if (count == 0) return -1;
		if (ok) any_group = 1;
		if (ge >= cl) break;
		i = ge + 2;
	}
	return any_group;
}

FN(f_semverCompare)
{
	UNUSED;
	struct cv_semver v;
	if (semver_parse(A, SARG(1), &v, NULL))
		return ferr(S, "semverCompare", "Invalid Semantic Version");
	int r = semver_satisfies(A, SARG(0), &v);
	if (r < 0)
		return ferr(S, "semverCompare", "improper constraint: %.*s", (int)a[0].u.str.len, a[0].u.str.s);
	*out = cv_bool(r);
	return 0;
}

int chart_semver_satisfies(const char *constraint, const char *version);
int chart_semver_satisfies(const char *constraint, const char *version)
{
	struct cv_arena *ar = cv_arena_new();
	struct cv_semver v;
	int r = -1;
	if (semver_parse(ar, version, strlen(version), &v, NULL) == 0)
		r = semver_satisfies(ar, constraint, strlen(constraint), &v);
	cv_arena_free(ar);
	return r;
}

/* ---------------------------------------------------------------- time */

static cv make_time(struct tstate *S, int64_t sec, int32_t nsec)
{
	struct cv_obj *o;
	cv v = cv_obj_new(A, CO_TIME, &o);
	o->u.time.sec = sec;
	o->u.time.nsec = nsec;
	return v;
}
FN(f_now)
{
	UNUSED;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*out = make_time(S, ts.tv_sec, (int32_t)ts.tv_nsec);
	return 0;
}

/* Go time.ParseDuration; returns 0 ok with nanoseconds */
static int parse_duration(const char *s, size_t len, double *ns)
{
	size_t i = 0;
	int neg = 0;
	if (i < len && (s[i] == '-' || s[i] == '+')) { neg = s[i] == '-'; i++; }
	if (len - i == 1 && s[i] == '0') { *ns = 0; return 0; }
	if (i >= len) return -1;
	double total = 0;
	while (i < len) {
		size_t st = i;
		double v = 0;
		while (i < len && isdigit((unsigned char)s[i])) v = v * 10 + (s[i++] - '0');
		int pre = i > st;
		double frac = 0, scale = 1;
		if (i < len && s[i] == '.') {
			i++;
			size_t fs = i;
			while (i < len && isdigit((unsigned char)s[i])) { frac = frac * 10 + (s[i++] - '0'); scale *= 10; }
			if (!pre && i == fs) return -1;
		} else if (!pre)
			return -1;
		size_t us = i;
		while (i < len && !isdigit((unsigned char)s[i]) && s[i] != '.') i++;
		size_t ul = i - us;
		const char *u = s + us;
		double mult;
		if (ul == 2 && !memcmp(u, "ns", 2)) mult = 1;
		else if ((ul == 2 && !memcmp(u, "us", 2)) || (ul == 3 && (!memcmp(u, "\xc2\xb5s", 3) || !memcmp(u, "\xce\xbcs", 3)))) mult = 1e3;
		else if (ul == 2 && !memcmp(u, "ms", 2)) mult = 1e6;
		else if (ul == 1 && *u == 's') mult = 1e9;
		else if (ul == 1 && *u == 'm') mult = 60e9;
		else if (ul == 1 && *u == 'h') mult = 3600e9;
		else return -1;
		total += (v + frac / scale) * mult;
	}
	*ns = neg ? -total : total;
	return 0;
}
static int date_modify(struct tstate *S, cv *a, cv *out, int must)
{
	double ns;
	if (parse_duration(SARG(0), &ns)) {
		if (must) return ferr(S, "mustDateModify", "time: invalid duration \"%.*s\"", (int)a[0].u.str.len, a[0].u.str.s);
		*out = a[1];
		return 0;
	}
	struct cv_obj *t = a[1].u.obj;
	int64_t total = t->u.time.nsec + (int64_t)ns;
	int64_t sec = t->u.time.sec + total / 1000000000;
	int64_t nsec = total % 1000000000;
	if (nsec < 0) { nsec += 1000000000; sec--; }
	*out = make_time(S, sec, (int32_t)nsec);
	return 0;
}
FN(f_dateModify) { UNUSED; return date_modify(S, a, out, 0); }
FN(f_mustDateModify) { UNUSED; return date_modify(S, a, out, 1); }

static void go_date(struct buf *b, const char *lay, size_t ll, int64_t sec, int32_t nsec)
{
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static const char *monl[] = { "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December" };
	static const char *day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *dayl[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
	for (size_t i = 0; i < ll;) {
		const char *p = lay + i;
		size_t r = ll - i;
#define M(lit) (r >= sizeof(lit) - 1 && !memcmp(p, lit, sizeof(lit) - 1) && (i += sizeof(lit) - 1, 1))
		if (M("2006")) buf_printf(b, "%04d", tm.tm_year + 1900);
		else if (M("January")) buf_puts(b, monl[tm.tm_mon]);
		else if (M("Jan")) buf_puts(b, mon[tm.tm_mon]);
		else if (M("Monday")) buf_puts(b, dayl[tm.tm_wday]);
		else if (M("Mon")) buf_puts(b, day[tm.tm_wday]);
		else if (M("MST")) buf_puts(b, "UTC");
		else if (M("01")) buf_printf(b, "%02d", tm.tm_mon + 1);
		else if (M("02")) buf_printf(b, "%02d", tm.tm_mday);
		else if (M("_2")) buf_printf(b, "%2d", tm.tm_mday);
		else if (M("06")) buf_printf(b, "%02d", tm.tm_year % 100);
		else if (M("15")) buf_printf(b, "%02d", tm.tm_hour);
		else if (M("03")) buf_printf(b, "%02d", tm.tm_hour % 12 ? tm.tm_hour % 12 : 12);
		else if (M("04")) buf_printf(b, "%02d", tm.tm_min);
		else if (M("05")) buf_printf(b, "%02d", tm.tm_sec);
		else if (M("-07:00")) buf_puts(b, "+00:00");
		else if (M("-0700")) buf_puts(b, "+0000");
		else if (M("Z07:00")) buf_puts(b, "Z");
		else if (M("Z0700")) buf_puts(b, "Z");
		else if (M(".000000000")) buf_printf(b, ".%09d", (int)nsec);
		else if (M(".000000")) buf_printf(b, ".%06d", (int)(nsec / 1000));
		else if (M(".000")) buf_printf(b, ".%03d", (int)(nsec / 1000000));
		else if (M("PM")) buf_puts(b, tm.tm_hour >= 12 ? "PM" : "AM");
		else if (M("pm")) buf_puts(b, tm.tm_hour >= 12 ? "pm" : "am");
		else if (M("1")) buf_printf(b, "%d", tm.tm_mon + 1);
		else if (M("2")) buf_printf(b, "%d", tm.tm_mday);
		else if (M("3")) buf_printf(b, "%d", tm.tm_hour % 12 ? tm.tm_hour % 12 : 12);
		else if (M("4")) buf_printf(b, "%d", tm.tm_min);
		else if (M("5")) buf_printf(b, "%d", tm.tm_sec);
		else buf_putc(b, lay[i++]);
#undef M
	}
}
FN(f_date)
{
	UNUSED;
	int64_t sec = 0;
	int32_t nsec = 0;
	if (a[1].kind == CV_OBJ && a[1].u.obj->type == CO_TIME) { sec = a[1].u.obj->u.time.sec; nsec = a[1].u.obj->u.time.nsec; }
	else if (a[1].kind == CV_INT) sec = a[1].u.i;
	else if (a[1].kind == CV_FLOAT) sec = (int64_t)a[1].u.f;
	else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		sec = ts.tv_sec;
	}
	struct buf b = BUF_INIT;
	go_date(&b, SARG(0), sec, nsec);
	*out = sbuf(S, &b);
	return 0;
}
FN(f_unixEpoch) { UNUSED; *out = cv_str(A, "", 0); { struct buf b = BUF_INIT; buf_printf(&b, "%lld", (long long)a[0].u.obj->u.time.sec); *out = sbuf(S, &b); } return 0; }

/* ---------------------------------------------------------------- random */

static void rand_chars(struct buf *b, int64_t n, const char *set)
{
	size_t sl = strlen(set);
	if (n < 0) n = 0;
	if (n > 1000000) n = 1000000;
	for (int64_t i = 0; i < n; i++) {
		unsigned char r;
		RAND_bytes(&r, 1);
		buf_putc(b, set[r % sl]);
	}
}
FN(f_randAlphaNum) { UNUSED; struct buf b = BUF_INIT; rand_chars(&b, a[0].u.i, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"); *out = sbuf(S, &b); return 0; }
FN(f_randAlpha) { UNUSED; struct buf b = BUF_INIT; rand_chars(&b, a[0].u.i, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"); *out = sbuf(S, &b); return 0; }
FN(f_randNumeric) { UNUSED; struct buf b = BUF_INIT; rand_chars(&b, a[0].u.i, "0123456789"); *out = sbuf(S, &b); return 0; }
FN(f_uuidv4)
{
	UNUSED;
	unsigned char u[16];
	RAND_bytes(u, 16);
	u[6] = (u[6] & 0x0F) | 0x40;
	u[8] = (u[8] & 0x3F) | 0x80;
	struct buf b = BUF_INIT;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) buf_putc(&b, '-');
		buf_printf(&b, "%02x", u[i]);
	}
	*out = sbuf(S, &b);
	return 0;
}

/* ---------------------------------------------------------------- certificates */

static char *bio_str(struct cv_arena *ar, BIO *bio)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	return cv_strndup(ar, p, n > 0 ? (size_t)n : 0);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -1;
	int rc = X509_add_ext(cert, ex, -1) ? 0 : -1;
	X509_EXTENSION_free(ex);
	return rc;
}

/* Key generation's stop rule: the render's budget (time, cancel). */
static int keygen_stop(void *ctx)
{
	return tmpl_budget_exceeded(ctx);
}

void tmpl_certs_release(struct tengine *E)
{
	X509_free(E->last_cert);
	EVP_PKEY_free(E->last_key);
	E->last_cert = NULL;
	E->last_key = NULL;
	E->last_cert_pem = E->last_key_pem = NULL;
}

/* The key of a certificate: fresh from the key pool (keypool.h), or the
 * process's scratch key when the render's output is thrown away. NULL
 * with the error set when the budget ran out meanwhile. */
static EVP_PKEY *cert_key(struct tstate *S, int bits)
{
	EVP_PKEY *key = S->E->scratch_keys ? keypool_scratch_rsa(bits) : keypool_take_rsa(bits, keygen_stop, S);
	if (!key)
		tmpl_budget_check(S);
	return key;
}

/* make a certificate; ca_cert/ca_key NULL for self-signed CA */
static int make_cert(struct tstate *S, const char *fn, const char *cn, size_t cnl, cv ips, cv dns, int64_t days,
		     int is_ca, X509 *ca_cert, EVP_PKEY *ca_key, cv *out)
{
	if (tmpl_budget_check(S))   /* key generation is slow: counted against the time limit */
		return -1;
	EVP_PKEY *key = cert_key(S, 2048);
	if (!key && S->E->failed)
		return -1;
	int rc = -1;
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	struct buf san = BUF_INIT;
	char *cns = xstrndup(cn, cnl);
	if (!key || !x || !bn || !cb || !kb)
		goto out;
	X509_set_version(x, 2);
	BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	X509_NAME *name = X509_get_subject_name(x);
	if (cnl)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cns, -1, -1, 0);
	X509_set_issuer_name(x, ca_cert ? X509_get_subject_name(ca_cert) : name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_time_adj_ex(X509_getm_notAfter(x), (int)(days > 3650000 ? 3650000 : days), 0, NULL);
	X509_set_pubkey(x, key);
	X509 *issuer = ca_cert ? ca_cert : x;
	add_ext(x, issuer, NID_key_usage, is_ca ? "critical,digitalSignature,keyEncipherment,keyCertSign" : "critical,digitalSignature,keyEncipherment");
	add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
	add_ext(x, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (is_ca)
		add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (ca_cert)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	for (int pass = 0; pass < 2; pass++) {
		cv l = pass == 0 ? dns : ips;
		if (l.kind != CV_LIST)
			continue;
		for (size_t i = 0; i < l.u.list->n; i++) {
			cv e = l.u.list->items[i];
			if (e.kind != CV_STR) {
				ferr(S, fn, "error processing %s: expected string", pass ? "IPs" : "DNS names");
				goto out;
			}
			if (san.len) buf_putc(&san, ',');
			buf_printf(&san, "%s:%.*s", pass ? "IP" : "DNS", (int)e.u.str.len, e.u.str.s);
		}
	}
	if (san.len && add_ext(x, issuer, NID_subject_alt_name, san.data)) {
		ferr(S, fn, "invalid subject alternative name: %s", san.data);
		goto out;
	}
	if (!X509_sign(x, ca_key ? ca_key : key, EVP_sha256()))
		goto out;
	PEM_write_bio_X509(cb, x);
	PEM_write_bio_PrivateKey_traditional(kb, key, NULL, NULL, 0, NULL, NULL);
	struct cv_obj *o;
	*out = cv_obj_new(A, CO_CERT, &o);
	o->u.cert.cert = bio_str(A, cb);
	o->u.cert.key = bio_str(A, kb);
	/* Kept for a genSignedCert that this certificate signs (see
	 * struct tengine). */
	tmpl_certs_release(S->E);
	if (X509_up_ref(x) == 1 && EVP_PKEY_up_ref(key) == 1) {
		S->E->last_cert = x;
		S->E->last_key = key;
		S->E->last_cert_pem = o->u.cert.cert;
		S->E->last_key_pem = o->u.cert.key;
	}
	rc = 0;
out:
	if (rc && !S->E->failed)
		ferr(S, fn, "certificate generation failed");
	free(cns);
	buf_free(&san);
	EVP_PKEY_free(key);
	X509_free(x);
	BN_free(bn);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

FN(f_genCA) { UNUSED; return make_cert(S, "genCA", SARG(0), cv_nil(), cv_nil(), a[1].u.i, 1, NULL, NULL, out); }
FN(f_genSelfSignedCert) { UNUSED; return make_cert(S, "genSelfSignedCert", SARG(0), a[1], a[2], a[3].u.i, 0, NULL, NULL, out); }
FN(f_genSignedCert)
{
	UNUSED;
	struct cv_obj *ca = a[4].kind == CV_OBJ ? a[4].u.obj : NULL;
	if (!ca)
		return ferr(S, "genSignedCert", "error parsing CA certificate");
	BIO *cb = BIO_new_mem_buf(ca->u.cert.cert, -1), *kb = BIO_new_mem_buf(ca->u.cert.key, -1);
	struct tengine *E = S->E;
	X509 *cc = NULL;
	EVP_PKEY *ck = NULL;
	if (E->last_cert && ca->u.cert.cert == E->last_cert_pem && ca->u.cert.key == E->last_key_pem &&
	    X509_up_ref(E->last_cert) == 1) {
		/* The certificate object this render made last: its parsed
		 * certificate and key are at hand. */
		cc = E->last_cert;
		if (EVP_PKEY_up_ref(E->last_key) == 1)
			ck = E->last_key;
	} else {
		cc = PEM_read_bio_X509(cb, NULL, NULL, NULL);
		ck = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
	}
	int rc;
	if (!cc || !ck)
		rc = ferr(S, "genSignedCert", "error parsing CA certificate or key");
	else
		rc = make_cert(S, "genSignedCert", SARG(0), a[1], a[2], a[3].u.i, 0, cc, ck, out);
	X509_free(cc);
	EVP_PKEY_free(ck);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}
FN(f_buildCustomCert)
{
	UNUSED;
	struct buf c = BUF_INIT, k = BUF_INIT;
	int rc = -1;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	if (b64_decode(&c, SARG(0)) || b64_decode(&k, SARG(1))) {
		rc = ferr(S, "buildCustomCert", "unable to decode base64");
		goto out;
	}
	BIO *cb = BIO_new_mem_buf(c.data ? c.data : "", (int)c.len), *kb = BIO_new_mem_buf(k.data ? k.data : "", (int)k.len);
	x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
	BIO_free(cb);
	BIO_free(kb);
	if (!x) { rc = ferr(S, "buildCustomCert", "error parsing certificate"); goto out; }
	if (!key) { rc = ferr(S, "buildCustomCert", "error parsing private key"); goto out; }
	struct cv_obj *o;
	*out = cv_obj_new(A, CO_CERT, &o);
	o->u.cert.cert = cv_strndup(A, c.data, c.len);
	o->u.cert.key = cv_strndup(A, k.data, k.len);
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	buf_free(&c);
	buf_free(&k);
	return rc;
}
FN(f_genPrivateKey)
{
	UNUSED;
	EVP_PKEY *key = NULL;
	if (tmpl_budget_check(S))
		return -1;
	if (a[0].u.str.len == 3 && !memcmp(a[0].u.str.s, "rsa", 3)) {
		key = cert_key(S, 4096);
		if (!key && S->E->failed)
			return -1;
	}
	else if (a[0].u.str.len == 5 && !memcmp(a[0].u.str.s, "ecdsa", 5)) key = EVP_EC_gen("P-256");
	if (!key) { *out = cv_cstr(A, "Unknown type"); return 0; }
	BIO *kb = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey_traditional(kb, key, NULL, NULL, 0, NULL, NULL);
	*out = cv_str_ref(bio_str(A, kb), 0);
	out->u.str.len = strlen(out->u.str.s);
	BIO_free(kb);
	EVP_PKEY_free(key);
	return 0;
}

/* ---------------------------------------------------------------- more sprig */

FN(f_regexSplit)
{
	UNUSED;
	regex_t re;
	if (compile_re(&re, SARG(0)))
		return ferr(S, "regexSplit", "error parsing regexp");
	char *s = xstrndup(SARG(1));
	size_t len = a[1].u.str.len;
	int64_t lim = a[2].u.i;
	cv l = cv_list_new(A, 4);
	l.sub = CS_STRING_LIST;
	if (lim == 0) {
		free(s);
		regfree(&re);
		*out = l;
		return 0;
	}
	/* Go: FindAllStringIndex (empty matches abutting a match are skipped),
	 * then Split's loop */
	size_t pos = 0, beg = 0, end = 0, count = 0;
	long prev_end = -1;
	regmatch_t m[1];
	while (pos <= len && (lim < 0 || (int64_t)count < lim)) {
		if (regexec(&re, s + pos, 1, m, pos ? REG_NOTBOL : 0) != 0)
			break;
		size_t ms = pos + (size_t)m[0].rm_so, me = pos + (size_t)m[0].rm_eo;
		if (ms == me && (long)ms == prev_end) {
			if (ms >= len)
				break;
			pos = ms + 1;
			continue;
		}
		count++;
		prev_end = (long)me;
		pos = me == ms ? me + 1 : me;
		if (lim > 0 && (int64_t)l.u.list->n == lim - 1)
			break;
		end = ms;
		if (me != 0)
			cv_list_push(A, l, cv_str(A, s + beg, end - beg));
		beg = me;
	}
	if (end != len || l.u.list->n == 0)
		cv_list_push(A, l, cv_str(A, s + beg, len - beg));
	free(s);
	regfree(&re);
	*out = l;
	return 0;
}

FN(f_regexQuoteMeta)
{
	UNUSED;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < a[0].u.str.len; i++) {
		char c = a[0].u.str.s[i];
		if (strchr("\\.+*?()|[]{}^$", c) && c)
			buf_putc(&b, '\\');
		buf_putc(&b, c);
	}
	*out = sbuf(S, &b);
	return 0;
}

FN(f_toStrings)
{
	UNUSED;
	cv r = cv_list_new(A, 4);
	r.sub = CS_STRING_LIST;
	if (a[0].kind == CV_LIST) {
		for (size_t i = 0; i < a[0].u.list->n; i++)
			if (a[0].u.list->items[i].kind != CV_NIL)
				cv_list_push(A, r, strval(S, a[0].u.list->items[i]));
	} else if (a[0].kind != CV_NIL)
		cv_list_push(A, r, strval(S, a[0]));
	*out = r;
	return 0;
}

static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }

FN(f_swapcase)
{
	UNUSED;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < a[0].u.str.len; i++) {
		char c = a[0].u.str.s[i];
		buf_putc(&b, is_upper(c) ? (char)(c + 32) : is_lower(c) ? (char)(c - 32) : c);
	}
	*out = sbuf(S, &b);
	return 0;
}

/* split into words at non-alphanumerics and lower-to-upper changes */
static void case_words(struct tstate *S, const char *s, size_t n, char sep, int camel, struct buf *b)
{
	int first = 1, newword = 1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!isalnum((unsigned char)c)) {
			newword = 1;
			continue;
		}
		if (i > 0 && is_upper(c) && (is_lower(s[i - 1]) || isdigit((unsigned char)s[i - 1])))
			newword = 1;
		if (newword && !first && sep)
			buf_putc(b, sep);
		if (camel)
			buf_putc(b, newword ? (char)toupper((unsigned char)c) : c);
		else
			buf_putc(b, (char)tolower((unsigned char)c));
		newword = 0;
		first = 0;
	}
	(void)S;
}
FN(f_snakecase) { UNUSED; struct buf b = BUF_INIT; case_words(S, SARG(0), '_', 0, &b); *out = sbuf(S, &b); return 0; }
FN(f_kebabcase) { UNUSED; struct buf b = BUF_INIT; case_words(S, SARG(0), '-', 0, &b); *out = sbuf(S, &b); return 0; }
FN(f_camelcase) { UNUSED; struct buf b = BUF_INIT; case_words(S, SARG(0), 0, 1, &b); *out = sbuf(S, &b); return 0; }

FN(f_initials)
{
	UNUSED;
	struct buf b = BUF_INIT;
	int inword = 0;
	for (size_t i = 0; i < a[0].u.str.len; i++) {
		char c = a[0].u.str.s[i];
		if (isspace((unsigned char)c)) { inword = 0; continue; }
		if (!inword) buf_putc(&b, c);
		inword = 1;
	}
	*out = sbuf(S, &b);
	return 0;
}

FN(f_abbrev)
{
	UNUSED;
	int64_t w = a[0].u.i;
	cv s = a[1];
	if (w < 4 || (int64_t)s.u.str.len <= w) {
		*out = s;
		return 0;
	}
	struct buf b = BUF_INIT;
	buf_append(&b, s.u.str.s, (size_t)(w - 3));
	buf_puts(&b, "...");
	*out = sbuf(S, &b);
	return 0;
}

FN(f_plural)
{
	UNUSED;
	*out = a[2].u.i == 1 ? a[0] : a[1];
	return 0;
}

FN(f_isAbs) { UNUSED; *out = cv_bool(a[0].u.str.len && a[0].u.str.s[0] == '/'); return 0; }

FN(f_b32enc)
{
	UNUSED;
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const unsigned char *s = (const unsigned char *)a[0].u.str.s;
	size_t len = a[0].u.str.len;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < len; i += 5) {
		uint64_t x = 0;
		size_t k = len - i < 5 ? len - i : 5;
		for (size_t j = 0; j < 5; j++) x = (x << 8) | (j < k ? s[i + j] : 0);
		static const int outc[] = { 0, 2, 4, 5, 7, 8 };
		for (int j = 0; j < 8; j++)
			buf_putc(&b, j < outc[k] ? t[(x >> (35 - 5 * j)) & 31] : '=');
	}
	*out = sbuf(S, &b);
	return 0;
}

FN(f_randInt)
{
	UNUSED;
	int64_t lo = a[0].u.i, hi = a[1].u.i;
	if (hi <= lo)
		return ferr(S, "randInt", "invalid argument to Intn");
	uint64_t r;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	*out = cv_int(lo + (int64_t)(r % (uint64_t)(hi - lo)), CS_INT);
	return 0;
}

/* ---------------------------------------------------------------- table */

static const struct tfuncdef funcs[] = {
	{ "abbrev", "is", f_abbrev },
	{ "add", "a*", f_add },
	{ "add1", "a", f_add1 },
	{ "addf", "a*", f_addf },
	{ "adler32sum", "s", f_adler32sum },
	{ "all", "a*", f_all },
	{ "and", "aa*", NULL },
	{ "any", "a*", f_any },
	{ "append", "aa", f_append },
	{ "atoi", "s", f_atoi },
	{ "b32enc", "s", f_b32enc },
	{ "b64dec", "s", f_b64dec },
	{ "b64enc", "s", f_b64enc },
	{ "base", NULL, NULL },
	{ "biggest", "aa*", f_max },
	{ "buildCustomCert", "ss", f_buildCustomCert },
	{ "camelcase", "s", f_camelcase },
	{ "cat", "a*", f_cat },
	{ "ceil", "a", f_ceil },
	{ "chunk", "ia", f_chunk },
	{ "clean", NULL, NULL },
	{ "coalesce", "a*", f_coalesce },
	{ "compact", "a", f_compact },
	{ "concat", "a*", f_concat },
	{ "contains", "ss", f_contains },
	{ "date", "sa", f_date },
	{ "dateModify", "st", f_dateModify },
	{ "deepCopy", "a", f_deepCopy },
	{ "deepEqual", "aa", f_deepEqual },
	{ "default", "aa*", f_default },
	{ "dict", "a*", f_dict },
	{ "dig", "a*", f_dig },
	{ "dir", NULL, NULL },
	{ "div", "aa", f_div },
	{ "divf", "aa*", f_divf },
	{ "empty", "a", f_empty },
	{ "eq", "vv*", f_eq },
	{ "ext", NULL, NULL },
	{ "fail", "s", f_fail },
	{ "first", "a", f_first },
	{ "float64", "a", f_float64 },
	{ "floor", "a", f_floor },
	{ "fromJson", "s", f_fromJson },
	{ "fromJsonArray", "s", f_fromJsonArray },
	{ "fromYaml", "s", f_fromYaml },
	{ "fromYamlArray", "s", f_fromYamlArray },
	{ "ge", "vv", f_ge },
	{ "genCA", "si", f_genCA },
	{ "genPrivateKey", "s", f_genPrivateKey },
	{ "genSelfSignedCert", "slli", f_genSelfSignedCert },
	{ "genSignedCert", "sllic", f_genSignedCert },
	{ "get", "ms", f_get },
	{ "getHostByName", "s", f_getHostByName },
	{ "gt", "vv", f_gt },
	{ "has", "aa", f_has },
	{ "hasKey", "ms", f_hasKey },
	{ "hasPrefix", "ss", f_hasPrefix },
	{ "hasSuffix", "ss", f_hasSuffix },
	{ "html", "a*", f_html },
	{ "include", "sa", f_include },
	{ "indent", "is", f_indent },
	{ "index", "vv*", f_index },
	{ "initial", "a", f_initial },
	{ "initials", "s", f_initials },
	{ "int", "a", f_int },
	{ "int64", "a", f_int64 },
	{ "isAbs", "s", f_isAbs },
	{ "join", "sa", f_join },
	{ "js", "a*", f_js },
	{ "kebabcase", "s", f_kebabcase },
	{ "keys", "m*", f_keys },
	{ "kindIs", "sa", f_kindIs },
	{ "kindOf", "a", f_kindOf },
	{ "last", "a", f_last },
	{ "le", "vv", f_le },
	{ "len", "v", f_len },
	{ "list", "a*", f_list },
	{ "lookup", "ssss", f_lookup },
	{ "lower", "s", f_lower },
	{ "lt", "vv", f_lt },
	{ "max", "aa*", f_max },
	{ "maxf", "aa*", f_maxf },
	{ "merge", "mm*", f_merge },
	{ "mergeOverwrite", "mm*", f_mergeOverwrite },
	{ "min", "aa*", f_min },
	{ "minf", "aa*", f_minf },
	{ "mod", "aa", f_mod },
	{ "mul", "aa*", f_mul },
	{ "mulf", "aa*", f_mulf },
	{ "mustAppend", "aa", f_append },
	{ "mustChunk", "ia", f_chunk },
	{ "mustCompact", "a", f_compact },
	{ "mustDateModify", "st", f_mustDateModify },
	{ "mustDeepCopy", "a", f_deepCopy },
	{ "mustFirst", "a", f_first },
	{ "mustFromJson", "s", f_fromJson },
	{ "mustHas", "aa", f_has },
	{ "mustInitial", "a", f_initial },
	{ "mustLast", "a", f_last },
	{ "mustMerge", "mm*", f_merge },
	{ "mustMergeOverwrite", "mm*", f_mergeOverwrite },
	{ "mustPrepend", "aa", f_prepend },
	{ "mustPush", "aa", f_append },
	{ "mustRegexFind", "ss", f_regexFind },
	{ "mustRegexFindAll", "ssi", f_regexFindAll },
	{ "mustRegexMatch", "ss", f_mustRegexMatch },
	{ "mustRegexReplaceAll", "sss", f_regexReplaceAll },
	{ "mustRegexReplaceAllLiteral", "sss", f_regexReplaceAllLiteral },
	{ "mustRegexSplit", "ssi", f_regexSplit },
	{ "mustRest", "a", f_rest },
	{ "mustReverse", "a", f_reverse },
	{ "mustSlice", "aa*", f_slice },
	{ "mustToJson", "a", f_mustToJson },
	{ "mustToPrettyJson", "a", f_toPrettyJson },
	{ "mustToRawJson", "a", f_toRawJson },
	{ "mustUniq", "a", f_uniq },
	{ "mustWithout", "aa*", f_without },
	{ "ne", "vv", f_ne },
	{ "nindent", "is", f_nindent },
	{ "nospace", "s", f_nospace },
	{ "not", "v", f_not },
	{ "now", "", f_now },
	{ "omit", "ms*", f_omit },
	{ "or", "aa*", NULL },
	{ "pick", "ms*", f_pick },
	{ "pluck", "sm*", f_pluck },
	{ "plural", "ssi", f_plural },
	{ "prepend", "aa", f_prepend },
	{ "print", "a*", f_print },
	{ "printf", "sa*", f_printf },
	{ "println", "a*", f_println },
	{ "push", "aa", f_append },
	{ "quote", "a*", f_quote },
	{ "randAlpha", "i", f_randAlpha },
	{ "randAlphaNum", "i", f_randAlphaNum },
	{ "randInt", "ii", f_randInt },
	{ "randNumeric", "i", f_randNumeric },
	{ "regexFind", "ss", f_regexFind },
	{ "regexFindAll", "ssi", f_regexFindAll },
	{ "regexMatch", "ss", f_regexMatch },
	{ "regexQuoteMeta", "s", f_regexQuoteMeta },
	{ "regexReplaceAll", "sss", f_regexReplaceAll },
	{ "regexReplaceAllLiteral", "sss", f_regexReplaceAllLiteral },
	{ "regexSplit", "ssi", f_regexSplit },
	{ "repeat", "is", f_repeat },
	{ "replace", "sss", f_replace },
	{ "required", "sa", f_required },
	{ "rest", "a", f_rest },
	{ "reverse", "a", f_reverse },
	{ "round", "aa*", f_round },
	{ "semver", "s", f_semver },
	{ "semverCompare", "ss", f_semverCompare },
	{ "seq", "a*", f_seq },
	{ "set", "msa", f_set },
	{ "sha1sum", "s", f_sha1sum },
	{ "sha256sum", "s", f_sha256sum },
	{ "sha512sum", "s", f_sha512sum },
	{ "slice", "aa*", f_slice },
	{ "snakecase", "s", f_snakecase },
	{ "sortAlpha", "a", f_sortAlpha },
	{ "split", "ss", f_split },
	{ "splitList", "ss", f_splitList },
	{ "splitn", "sis", f_splitn },
	{ "squote", "a*", f_squote },
	{ "sub", "aa", f_sub },
	{ "subf", "aa*", f_subf },
	{ "substr", "iis", f_substr },
	{ "swapcase", "s", f_swapcase },
	{ "ternary", "aab", f_ternary },
	{ "title", "s", f_title },
	{ "toDecimal", "a", f_toDecimal },
	{ "toJson", "a", f_toJson },
	{ "toPrettyJson", "a", f_toPrettyJson },
	{ "toRawJson", "a", f_toRawJson },
	{ "toString", "a", f_toString },
	{ "toStrings", "a", f_toStrings },
	{ "toYaml", "a", f_toYaml },
	{ "tpl", "sa", f_tpl },
	{ "trim", "s", f_trim },
	{ "trimAll", "ss", f_trimAll },
	{ "trimPrefix", "ss", f_trimPrefix },
	{ "trimSuffix", "ss", f_trimSuffix },
	{ "trunc", "is", f_trunc },
	{ "tuple", "a*", f_list },
	{ "typeIs", "sa", f_typeIs },
	{ "typeIsLike", "sa", f_typeIsLike },
	{ "typeOf", "a", f_typeOf },
	{ "uniq", "a", f_uniq },
	{ "unixEpoch", "t", f_unixEpoch },
	{ "unset", "ms", f_unset },
	{ "until", "i", f_until },
	{ "untilStep", "iii", f_untilStep },
	{ "untitle", "s", f_untitle },
	{ "upper", "s", f_upper },
	{ "urlquery", "a*", f_urlquery },
	{ "uuidv4", "", f_uuidv4 },
	{ "values", "m", f_values },
	{ "without", "aa*", f_without },
};

/* path functions (Go's path package) */
static size_t path_clean(const char *s, size_t len, char *out)
{
	/* out must have len+2 bytes */
	if (len == 0) { out[0] = '.'; return 1; }
	int rooted = s[0] == '/';
	size_t w = 0, r = 0, dotdot = 0;
	if (rooted) { out[w++] = '/'; r = 1; dotdot = 1; }
	while (r < len) {
		if (s[r] == '/') r++;
		else if (s[r] == '.' && (r + 1 == len || s[r + 1] == '/')) r++;
		else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == len || s[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/') w--;
			} else if (!rooted) {
				if (w > 0) out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0)) out[w++] = '/';
			for (; r < len && s[r] != '/'; r++) out[w++] = s[r];
		}
	}
	if (w == 0) out[w++] = '.';
	return w;
}
FN(f_base)
{
	UNUSED;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len;
	if (len == 0) { *out = cv_str_ref(".", 1); return 0; }
	while (len > 0 && s[len - 1] == '/') len--;
	size_t i = len;
	while (i > 0 && s[i - 1] != '/') i--;
	if (len == 0) { *out = cv_str_ref("/", 1); return 0; }
	*out = cv_str(A, s + i, len - i);
	return 0;
}
FN(f_dir)
{
	UNUSED;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len;
	size_t i = len;
	while (i > 0 && s[i - 1] != '/') i--;
	char *o = cv_alloc(A, i + 3);
	size_t w = path_clean(s, i, o);
	*out = cv_str_ref(o, w);
	return 0;
}
FN(f_clean)
{
	UNUSED;
	char *o = cv_alloc(A, a[0].u.str.len + 3);
	size_t w = path_clean(SARG(0), o);
	*out = cv_str_ref(o, w);
	return 0;
}
FN(f_ext)
{
	UNUSED;
	const char *s = a[0].u.str.s;
	size_t len = a[0].u.str.len;
	for (size_t i = len; i > 0 && s[i - 1] != '/'; i--)
		if (s[i - 1] == '.') { *out = cv_str(A, s + i - 1, len - i + 1); return 0; }
	*out = cv_str_ref("", 0);
	return 0;
}

static const struct tfuncdef path_funcs[] = {
	{ "base", "s", f_base }, { "clean", "s", f_clean }, { "dir", "s", f_dir }, { "ext", "s", f_ext },
};

/* name -> function, resolved once per name: an open-addressing hash index
 * over funcs[], built on first use (the parser looks a name up for every
 * function call in every template) */
#define FUNC_SLOTS 1024
static const struct tfuncdef *func_index[FUNC_SLOTS];
static pthread_once_t func_index_once = PTHREAD_ONCE_INIT;

static unsigned func_hash(const char *name, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return h & (FUNC_SLOTS - 1);
}

/* a table entry without a signature stands for one of path_funcs */
static const struct tfuncdef *func_resolve(const struct tfuncdef *f)
{
	if (f->sig)
		return f;
	for (size_t k = 0; k < sizeof(path_funcs) / sizeof(path_funcs[0]); k++)
		if (!strcmp(path_funcs[k].name, f->name))
			return &path_funcs[k];
	return NULL;
}

static void func_index_build(void)
{
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		const struct tfuncdef *f = func_resolve(&funcs[i]);
		if (!f)
			continue;
		unsigned h = func_hash(funcs[i].name, strlen(funcs[i].name));
		while (func_index[h])
			h = (h + 1) & (FUNC_SLOTS - 1);
		func_index[h] = f;
	}
}

const struct tfuncdef *tmpl_func_find(const char *name, size_t len)
{
	pthread_once(&func_index_once, func_index_build);
	for (unsigned h = func_hash(name, len);; h = (h + 1) & (FUNC_SLOTS - 1)) {
		const struct tfuncdef *f = func_index[h];
		if (!f)
			return NULL;
		if (!strncmp(f->name, name, len) && !f->name[len])
			return f;
	}
}
