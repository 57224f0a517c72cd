/*
 * value.c: arenas, the value model and Go-compatible printing (see cv.h).
 *
 * The formatting here reproduces Go's fmt and strconv output for the value
 * kinds templates see: %v of floats uses the shortest round-trip digits with
 * an exponent from 1e+06 up or below 1e-04 (strconv's 'g' with precision -1),
 * maps print with sorted keys as map[k:v], lists as [a b]. cv_sprintf
 * implements the fmt verbs charts use, with Go's %!verb(type=value) error
 * forms for mismatched operands.
 */
#define _GNU_SOURCE
#include "server/chart/cv.h"
#include "server/chart/wordscan.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* ---------------------------------------------------------------- arena */

struct cv_arena *cv_arena_new(void)
{
	return xcalloc(1, sizeof(struct cv_arena));
}

#define CHUNK_MAX ((size_t)2 * 1024 * 1024)
/* chunks this big are mapped directly and their pages faulted in ahead of
 * use, CHUNK_WINDOW bytes at a time: one madvise call costs about half of
 * what the 64 page faults it replaces would */
#define CHUNK_MAPPED ((size_t)64 * 1024)
#define CHUNK_WINDOW ((size_t)256 * 1024)
#define PAGE ((uintptr_t)4096)

/*
 * Freed mapped chunks kept for the next arena: unmapping a chunk of a
 * multi-threaded process costs a TLB shoot-down on every core (about
 * 0.2 ms per chunk on these VMs, 4 ms of a fresh install's two renders,
 * BENCHMARKS.md "Fresh install: ferryd CPU"), and a new mapping is faulted
 * in again. Chunk sizes repeat from arena to arena (64 KiB doubling up to
 * 2 MiB), so a chunk of the same size is taken back, its used part zeroed
 * (arenas hand out zeroed memory) and its faulted-in part kept. At most
 * CHUNK_CACHE_BYTES are kept (about one render's arena); the rest is
 * unmapped as before.
 */
#define CHUNK_CACHE_BYTES ((size_t)8 * 1024 * 1024)
#define CHUNK_CACHE_SLOTS 32

static struct {
	unsigned char *mem;
	size_t cap, ready, dirty;
} chunk_cache[CHUNK_CACHE_SLOTS];
static size_t chunk_cache_bytes;
static pthread_mutex_t chunk_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* a cached chunk of exactly c->cap bytes into c (1), or 0 */
static int chunk_from_cache(struct cv_chunk *c)
{
	unsigned char *mem = NULL;
	size_t ready = 0, dirty = 0;
	pthread_mutex_lock(&chunk_cache_lock);
	for (int i = 0; i < CHUNK_CACHE_SLOTS; i++)
		if (chunk_cache[i].mem && chunk_cache[i].cap == c->cap) {
			mem = chunk_cache[i].mem;
			ready = chunk_cache[i].ready;
			dirty = chunk_cache[i].dirty;
			chunk_cache[i].mem = NULL;
			chunk_cache_bytes -= c->cap;
			break;
		}
	pthread_mutex_unlock(&chunk_cache_lock);
	if (!mem)
		return 0;
	memset(mem, 0, dirty);
	c->mem = mem;
	c->mapped = 1;
	c->ready = ready;
	return 1;
}

/* keep c's mapping for another arena (1), or 0 when the cache is full */
static int chunk_to_cache(struct cv_chunk *c)
{
	int kept = 0;
	pthread_mutex_lock(&chunk_cache_lock);
	if (chunk_cache_bytes + c->cap <= CHUNK_CACHE_BYTES)
		for (int i = 0; i < CHUNK_CACHE_SLOTS && !kept; i++)
			if (!chunk_cache[i].mem) {
				chunk_cache[i].mem = c->mem;
				chunk_cache[i].cap = c->cap;
				chunk_cache[i].ready = c->ready;
				chunk_cache[i].dirty = c->used;
				chunk_cache_bytes += c->cap;
				kept = 1;
			}
	pthread_mutex_unlock(&chunk_cache_lock);
	return kept;
}

/* Memory for chunk c (c->cap bytes), zeroed (cv_alloc's blocks are zero
 * already); sets how much is faulted in. */
static void chunk_mem(struct cv_chunk *c)
{
	c->mapped = 0;
	if (c->cap >= CHUNK_MAPPED) {
		if (chunk_from_cache(c))
			return;
		void *p = mmap(NULL, c->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			c->mem = p;
			c->mapped = 1;
			c->ready = 0;
			return;
		}
	}
	c->mem = xcalloc(1, c->cap);
	c->ready = c->cap;
}

static void chunk_free(struct cv_chunk *c)
{
	if (c->mapped) {
		if (!chunk_to_cache(c))
			munmap(c->mem, c->cap);
	}
	else
		free(c->mem);
}

/* fault in c's pages up to at least `upto` bytes, plus a window ahead */
static void chunk_prefault(struct cv_chunk *c, size_t upto)
{
	size_t end = upto + CHUNK_WINDOW;
	if (end > c->cap)
		end = c->cap;
#ifdef MADV_POPULATE_WRITE
	uintptr_t from = ((uintptr_t)c->mem + c->ready + PAGE - 1) & ~(PAGE - 1);
	uintptr_t to = ((uintptr_t)c->mem + end) & ~(PAGE - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);  /* a hint */
#endif
	c->ready = end;
}

void cv_arena_free(struct cv_arena *a)
{
	if (!a)
		return;
	struct cv_chunk *c = a->head;
	while (c) {
		struct cv_chunk *n = c->next;
		chunk_free(c);
		free(c);
		c = n;
	}
	free(a);
}

size_t cv_arena_used(const struct cv_arena *a) { return a->total; }

void cv_arena_merge(struct cv_arena *dst, struct cv_arena *src)
{
	if (src->head) {
		struct cv_chunk *last = src->head;
		while (last->next)
			last = last->next;
		/* keep dst's current chunk first so it keeps filling */
		if (dst->head) {
			last->next = dst->head->next;
			dst->head->next = src->head;
		} else {
			dst->head = src->head;
		}
		dst->total += src->total;
	}
	free(src);
}

/* cv_alloc's uncommon case (cv.h): the current chunk needs more pages
 * faulted in, or a new chunk. n is rounded already. */
void *cv_alloc_slow(struct cv_arena *a, size_t n)
{
	struct cv_chunk *c = a->head;
	if (c && c->cap - c->used >= n) {
		chunk_prefault(c, c->used + n);
	} else {
		/* chunks grow with the arena (64 KiB up to 2 MiB): few mallocs */
		size_t want = a->total < 65536 ? 65536 : a->total > CHUNK_MAX ? CHUNK_MAX : a->total;
		size_t cap = n > want / 2 ? n : want;
		struct cv_chunk *nc = xmalloc(sizeof(*nc));
		nc->cap = cap;
		chunk_mem(nc);
		nc->used = 0;
		if (nc->ready < n)
			chunk_prefault(nc, n);
		if (n > 32768 && c) {
			/* big block: keep the current chunk in front */
			nc->next = c->next;
			c->next = nc;
		} else {
			nc->next = c;
			a->head = nc;
		}
		a->total += cap;
		c = nc;
	}
	void *p = c->mem + c->used;
	c->used += n;
	return p;
}

char *cv_strndup(struct cv_arena *a, const char *s, size_t n)
{
	char *p = cv_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

/* ---------------------------------------------------------------- values */

cv cv_map_of(struct cv_arena *a, const struct cv_mapent *ents, size_t n)
{
	cv v = { CV_MAP, CS_IFACE_MAP, { 0 } };
	size_t head = (sizeof(struct cv_map) + 15) & ~(size_t)15;
	char *mem = cv_alloc(a, head + n * sizeof(*ents));
	v.u.map = (struct cv_map *)mem;
	if (n) {
		v.u.map->ents = (struct cv_mapent *)(mem + head);
		memcpy(v.u.map->ents, ents, n * sizeof(*ents));
		v.u.map->n = v.u.map->cap = n;
	}
	return v;
}

cv cv_list_of(struct cv_arena *a, const cv *items, size_t n)
{
	cv v = { CV_LIST, CS_IFACE_LIST, { 0 } };
	size_t head = (sizeof(struct cv_list) + 15) & ~(size_t)15;
	char *mem = cv_alloc(a, head + n * sizeof(*items));
	v.u.list = (struct cv_list *)mem;
	if (n) {
		v.u.list->items = (cv *)(mem + head);
		memcpy(v.u.list->items, items, n * sizeof(*items));
		v.u.list->n = v.u.list->cap = n;
	}
	return v;
}

void cv_entstack_put(struct cv_entstack *st, size_t base, const char *key, size_t klen, cv val)
{
	size_t n = st->n - base, i = n;
	/* ents is NULL until the first put (no offset from NULL, even zero). */
	struct cv_mapent *e = st->ents ? st->ents + base : NULL;
	if (n) {
		int c = cv_key_order(e[n - 1].key, e[n - 1].klen, key, klen);
		if (c == 0) {
			e[n - 1].val = val;
			return;
		}
		if (c > 0) {
			/* out of order: binary search */
			size_t lo = 0, hi = n - 1;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				int d = cv_key_order(e[mid].key, e[mid].klen, key, klen);
				if (d == 0) {
					e[mid].val = val;
					return;
				}
				if (d < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			i = lo;
		}
	}
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->ents = xrealloc(st->ents, st->cap * sizeof(*st->ents));
		e = st->ents + base;
	}
	if (i < n)
		memmove(&e[i + 1], &e[i], (n - i) * sizeof(*e));
	e[i].key = key;
	e[i].klen = klen;
	e[i].val = val;
	st->n++;
}

/* Recursion guard for deeply nested values built by templates. */
#define CV_MAX_DEPTH 100000
static _Thread_local int cv_depth;
#define ENTER(fail) do { if (++cv_depth > CV_MAX_DEPTH) { cv_depth--; fail; } } while (0)
#define LEAVE() (cv_depth--)

cv cv_str(struct cv_arena *a, const char *s, size_t len)
{
	return cv_str_ref(cv_strndup(a, s, len), len);
}

cv cv_cstr(struct cv_arena *a, const char *s)
{
	return cv_str(a, s, strlen(s));
}

cv cv_list_new(struct cv_arena *a, size_t cap)
{
	cv v = { CV_LIST, CS_IFACE_LIST, { 0 } };
	v.u.list = cv_alloc(a, sizeof(struct cv_list));
	if (cap) {
		v.u.list->items = cv_alloc(a, cap * sizeof(cv));
		v.u.list->cap = cap;
	}
	return v;
}

cv cv_map_new(struct cv_arena *a, size_t cap)
{
	cv v = { CV_MAP, CS_IFACE_MAP, { 0 } };
	v.u.map = cv_alloc(a, sizeof(struct cv_map));
	if (cap) {
		v.u.map->ents = cv_alloc(a, cap * sizeof(struct cv_mapent));
		v.u.map->cap = cap;
	}
	return v;
}

cv cv_obj_new(struct cv_arena *a, enum cv_objtype t, struct cv_obj **out)
{
	cv v = { CV_OBJ, 0, { 0 } };
	v.u.obj = cv_alloc(a, sizeof(struct cv_obj));
	v.u.obj->type = t;
	*out = v.u.obj;
	return v;
}

void cv_list_push(struct cv_arena *a, cv list, cv item)
{
	struct cv_list *l = list.u.list;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4;
		cv *ni = cv_alloc(a, nc * sizeof(cv));
		if (l->n)
			memcpy(ni, l->items, l->n * sizeof(cv));
		l->items = ni;
		l->cap = nc;
	}
	l->items[l->n++] = item;
}


static size_t map_find(const struct cv_map *m, const char *key, size_t klen, int *found)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cv_key_order(m->ents[mid].key, m->ents[mid].klen, key, klen);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

cv *cv_map_get(const struct cv_map *m, const char *key, size_t klen)
{
	int found;
	size_t i = map_find(m, key, klen, &found);
	return found ? &m->ents[i].val : NULL;
}

void cv_map_set(struct cv_arena *a, struct cv_map *m, const char *key, size_t klen, cv val)
{
	int found;
	size_t i = map_find(m, key, klen, &found);
	if (found) {
		m->ents[i].val = val;
		return;
	}
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 4;
		struct cv_mapent *ne = cv_alloc(a, nc * sizeof(*ne));
		if (m->n)
			memcpy(ne, m->ents, m->n * sizeof(*ne));
		m->ents = ne;
		m->cap = nc;
	}
	memmove(&m->ents[i + 1], &m->ents[i], (m->n - i) * sizeof(*m->ents));
	m->ents[i].key = cv_strndup(a, key, klen);
	m->ents[i].klen = klen;
	m->ents[i].val = val;
	m->n++;
}

int cv_map_del(struct cv_map *m, const char *key, size_t klen)
{
	int found;
	size_t i = map_find(m, key, klen, &found);
	if (!found)
		return 0;
	memmove(&m->ents[i], &m->ents[i + 1], (m->n - i - 1) * sizeof(*m->ents));
	m->n--;
	return 1;
}

int cv_truthy(cv v)
{
	switch (v.kind) {
	case CV_NIL: return 0;
	case CV_BOOL: return v.u.b;
	case CV_INT: return v.u.i != 0;
	case CV_FLOAT: return v.u.f != 0;
	case CV_STR: return v.u.str.len != 0;
	case CV_LIST: return v.u.list->n != 0;
	case CV_MAP: return v.sub == CS_STRUCT || v.u.map->n != 0;
	case CV_OBJ:
		if (v.u.obj->type == CO_APIVERSIONS)
			return v.u.obj->u.apis.n != 0;
		return 1;
	}
	return 0;
}

static cv deep_copy(struct cv_arena *a, cv v);

cv cv_deep_copy(struct cv_arena *a, cv v)
{
	cv r;
	ENTER(return cv_nil());
	r = deep_copy(a, v);
	LEAVE();
	return r;
}

static cv deep_copy(struct cv_arena *a, cv v)
{
	if (v.kind == CV_LIST) {
		cv n = cv_list_new(a, v.u.list->n);
		n.sub = v.sub;
		for (size_t i = 0; i < v.u.list->n; i++)
			n.u.list->items[i] = cv_deep_copy(a, v.u.list->items[i]);
		n.u.list->n = v.u.list->n;
		return n;
	}
	if (v.kind == CV_MAP) {
		cv n = cv_map_new(a, v.u.map->n);
		n.sub = v.sub;
		for (size_t i = 0; i < v.u.map->n; i++) {
			n.u.map->ents[i] = v.u.map->ents[i];
			n.u.map->ents[i].val = cv_deep_copy(a, v.u.map->ents[i].val);
		}
		n.u.map->n = v.u.map->n;
		return n;
	}
	return v;
}

static int deep_equal(cv a, cv b);

int cv_deep_equal(cv a, cv b)
{
	int r;
	ENTER(return 0);
	r = deep_equal(a, b);
	LEAVE();
	return r;
}

static int deep_equal(cv a, cv b)
{
	if (a.kind != b.kind)
		return 0;
	switch (a.kind) {
	case CV_NIL: return 1;
	case CV_BOOL: return a.u.b == b.u.b;
	case CV_INT: return a.sub == b.sub && a.u.i == b.u.i;
	case CV_FLOAT: return a.u.f == b.u.f;
	case CV_STR: return a.sub == b.sub && a.u.str.len == b.u.str.len &&
		!memcmp(a.u.str.s, b.u.str.s, a.u.str.len);
	case CV_LIST:
		if (a.sub != b.sub || a.u.list->n != b.u.list->n)
			return 0;
		for (size_t i = 0; i < a.u.list->n; i++)
			if (!cv_deep_equal(a.u.list->items[i], b.u.list->items[i]))
				return 0;
		return 1;
	case CV_MAP:
		if (a.sub != b.sub || a.u.map->n != b.u.map->n)
			return 0;
		for (size_t i = 0; i < a.u.map->n; i++) {
			struct cv_mapent *x = &a.u.map->ents[i], *y = &b.u.map->ents[i];
			if (cv_key_order(x->key, x->klen, y->key, y->klen) || !cv_deep_equal(x->val, y->val))
				return 0;
		}
		return 1;
	case CV_OBJ:
		return a.u.obj == b.u.obj;
	}
	return 0;
}

const char *cv_type_name(cv v)
{
	switch (v.kind) {
	case CV_NIL: return "<nil>";
	case CV_BOOL: return "bool";
	case CV_INT: return v.sub == CS_INT64 ? "int64" : v.sub == CS_UINT64 ? "uint64" : "int";
	case CV_FLOAT: return "float64";
	case CV_STR: return v.sub == CS_BYTES ? "[]uint8" : "string";
	case CV_LIST: return v.sub == CS_STRING_LIST ? "[]string" : "[]interface {}";
	case CV_MAP:
		if (v.sub == CS_STRING_MAP) return "map[string]string";
		if (v.sub == CS_VALUES) return "chartutil.Values";
		if (v.sub == CS_STRUCT) return "*chartutil.Capabilities";
		return "map[string]interface {}";
	case CV_OBJ:
		switch (v.u.obj->type) {
		case CO_SEMVER: return "*semver.Version";
		case CO_CERT: return "sprig.certificate";
		case CO_TIME: return "time.Time";
		case CO_FILES: return "chart.Files";
		case CO_APIVERSIONS: return "chartutil.VersionSet";
		}
	}
	return "?";
}

const char *cv_kind_name(cv v)
{
	switch (v.kind) {
	case CV_NIL: return "invalid";
	case CV_BOOL: return "bool";
	case CV_INT: return v.sub == CS_INT64 ? "int64" : v.sub == CS_UINT64 ? "uint64" : "int";
	case CV_FLOAT: return "float64";
	case CV_STR: return v.sub == CS_BYTES ? "slice" : "string";
	case CV_LIST: return "slice";
	case CV_MAP: return v.sub == CS_STRUCT ? "ptr" : "map";
	case CV_OBJ:
		switch (v.u.obj->type) {
		case CO_SEMVER: return "ptr";
		case CO_CERT: case CO_TIME: return "struct";
		case CO_FILES: return "map";
		case CO_APIVERSIONS: return "slice";
		}
	}
	return "invalid";
}

/* ---------------------------------------------------------------- floats */

/* Shortest round-trip digits: value = 0.DIGITS x 10^dp. Returns nd. */
static int shortest(double f, char *digits, int *dp)
{
	char tmp[40];
	f = fabs(f);
	if (f == 0) {
		digits[0] = '0';
		*dp = 1;
		return 1;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, f);
		if (strtod(tmp, NULL) == f || p == 17) {
			int nd = 0;
			const char *s = tmp;
			for (; *s && *s != 'e'; s++)
				if (*s >= '0' && *s <= '9')
					digits[nd++] = *s;
			int e = atoi(s + 1);
			while (nd > 1 && digits[nd - 1] == '0')
				nd--;
			*dp = e + 1;
			return nd;
		}
	}
	return 0;
}

static void put_exp(struct buf *b, int exp, int mindigits)
{
	char t[16];
	buf_putc(b, exp < 0 ? '-' : '+');
	if (exp < 0)
		exp = -exp;
	snprintf(t, sizeof(t), "%0*d", mindigits, exp);
	buf_puts(b, t);
}

static int float_special(struct buf *b, double f, int json)
{
	if (isnan(f)) {
		buf_puts(b, "NaN");
		return 1;
	}
	if (isinf(f)) {
		buf_puts(b, f > 0 ? "+Inf" : "-Inf");
		return 1;
	}
	(void)json;
	return 0;
}

/* %e form with shortest digits */
static void fmt_e(struct buf *b, const char *d, int nd, int dp, int expdigits)
{
	buf_putc(b, d[0]);
	if (nd > 1) {
		buf_putc(b, '.');
		buf_append(b, d + 1, nd - 1);
	}
	buf_putc(b, 'e');
	put_exp(b, dp - 1, expdigits);
}

static void fmt_f(struct buf *b, const char *d, int nd, int dp)
{
	if (dp <= 0) {
		buf_puts(b, "0.");
		for (int i = 0; i < -dp; i++)
			buf_putc(b, '0');
		buf_append(b, d, nd);
	} else if (dp >= nd) {
		buf_append(b, d, nd);
		for (int i = nd; i < dp; i++)
			buf_putc(b, '0');
	} else {
		buf_append(b, d, dp);
		buf_putc(b, '.');
		buf_append(b, d + dp, nd - dp);
	}
}

void cv_fmt_float_g(struct buf *b, double f)
{
	char d[40];
	int dp;
	if (float_special(b, f, 0))
		return;
	int nd = shortest(f, d, &dp);
	if (signbit(f))
		buf_putc(b, '-');
	int exp = dp - 1;
	if (exp < -4 || exp >= 6 /* eprec for shortest */ ) {
		/* Go: eprec = 6 unless digits > 6 ... strconv uses eprec=6 when shortest,
		 * but if nd > eprec and nd >= dp the plain form is kept: handled by
		 * strconv as: if eprec > nd && nd >= dp { eprec = nd }; shortest -> 6 */
		fmt_e(b, d, nd, dp, 2);
	} else {
		fmt_f(b, d, nd, dp);
	}
}

static void fmt_float_json(struct buf *b, double f)
{
	char d[40];
	int dp;
	double a = fabs(f);
	int nd = shortest(f, d, &dp);
	if (signbit(f) && f != 0)
		buf_putc(b, '-');
	if (a != 0 && (a < 1e-6 || a >= 1e21)) {
		buf_putc(b, d[0]);
		if (nd > 1) {
			buf_putc(b, '.');
			buf_append(b, d + 1, nd - 1);
		}
		buf_putc(b, 'e');
		put_exp(b, dp - 1, 1);
	} else {
		fmt_f(b, d, nd, dp);
	}
}

/* ---------------------------------------------------------------- %v */

static void fmt_semver(struct buf *b, const struct cv_semver *s)
{
	buf_printf(b, "%llu.%llu.%llu", (unsigned long long)s->major,
		   (unsigned long long)s->minor, (unsigned long long)s->patch);
	if (s->pre && *s->pre)
		buf_printf(b, "-%s", s->pre);
	if (s->meta && *s->meta)
		buf_printf(b, "+%s", s->meta);
}

static void fmt_time(struct buf *b, int64_t sec, int32_t nsec)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char s[64];
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	buf_puts(b, s);
	if (nsec) {
		char ns[16];
		snprintf(ns, sizeof(ns), "%09d", (int)nsec);
		int n = 9;
		while (n > 0 && ns[n - 1] == '0')
			n--;
		buf_putc(b, '.');
		buf_append(b, ns, n);
	}
	buf_puts(b, " +0000 UTC");
}

static void fmt_v1(struct buf *b, cv v, int top);

static void fmt_v(struct buf *b, cv v, int top)
{
	ENTER(buf_puts(b, "..."); return);
	fmt_v1(b, v, top);
	LEAVE();
}

static void fmt_v1(struct buf *b, cv v, int top)
{
	switch (v.kind) {
	case CV_NIL: buf_puts(b, "<nil>"); return;
	case CV_BOOL: buf_puts(b, v.u.b ? "true" : "false"); return;
	case CV_INT:
		if (v.sub == CS_UINT64)
			buf_printf(b, "%llu", (unsigned long long)(uint64_t)v.u.i);
		else
			buf_printf(b, "%lld", (long long)v.u.i);
		return;
	case CV_FLOAT: cv_fmt_float_g(b, v.u.f); return;
	case CV_STR:
		if (v.sub == CS_BYTES) {
			buf_putc(b, '[');
			for (size_t i = 0; i < v.u.str.len; i++)
				buf_printf(b, i ? " %u" : "%u", (unsigned char)v.u.str.s[i]);
			buf_putc(b, ']');
		} else {
			buf_append(b, v.u.str.s, v.u.str.len);
		}
		return;
	case CV_LIST:
		buf_putc(b, '[');
		for (size_t i = 0; i < v.u.list->n; i++) {
			if (i)
				buf_putc(b, ' ');
			fmt_v(b, v.u.list->items[i], 0);
		}
		buf_putc(b, ']');
		return;
	case CV_MAP:
		if (v.sub == CS_STRUCT)
			buf_puts(b, top ? "&{" : "{");
		else
			buf_puts(b, "map[");
		for (size_t i = 0; i < v.u.map->n; i++) {
			if (i)
				buf_putc(b, ' ');
			if (v.sub != CS_STRUCT) {
				buf_append(b, v.u.map->ents[i].key, v.u.map->ents[i].klen);
				buf_putc(b, ':');
			}
			fmt_v(b, v.u.map->ents[i].val, 0);
		}
		buf_putc(b, v.sub == CS_STRUCT ? '}' : ']');
		return;
	case CV_OBJ: {
		struct cv_obj *o = v.u.obj;
		switch (o->type) {
		case CO_SEMVER: fmt_semver(b, &o->u.sv); return;
		case CO_CERT:
			buf_printf(b, "{%s %s}", o->u.cert.cert, o->u.cert.key);
			return;
		case CO_TIME: fmt_time(b, o->u.time.sec, o->u.time.nsec); return;
		case CO_FILES:
			buf_puts(b, "map[");
			for (size_t i = 0; i < o->u.files.n; i++) {
				if (i)
					buf_putc(b, ' ');
				buf_printf(b, "%s:", o->u.files.files[i].name);
				fmt_v(b, (cv){ CV_STR, CS_BYTES, { .str = { o->u.files.files[i].data, o->u.files.files[i].len } } }, 0);
			}
			buf_putc(b, ']');
			return;
		case CO_APIVERSIONS:
			buf_putc(b, '[');
			for (size_t i = 0; i < o->u.apis.n; i++)
				buf_printf(b, i ? " %s" : "%s", o->u.apis.v[i]);
			buf_putc(b, ']');
			return;
		}
	}
	}
}

void cv_fmt_v(struct buf *b, cv v) { fmt_v(b, v, 1); }

void cv_to_string(struct buf *b, cv v)
{
	if (v.kind == CV_STR && v.sub == CS_BYTES) {
		buf_append(b, v.u.str.s, v.u.str.len);
		return;
	}
	fmt_v(b, v, 1);
}

/* ---------------------------------------------------------------- quoting */

static int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (s[0] < 0x80) { *cp = s[0]; return 1; }
	int n; uint32_t c;
	if ((s[0] & 0xE0) == 0xC0) { n = 2; c = s[0] & 0x1F; }
	else if ((s[0] & 0xF0) == 0xE0) { n = 3; c = s[0] & 0x0F; }
	else if ((s[0] & 0xF8) == 0xF0) { n = 4; c = s[0] & 0x07; }
	else return -1;
	if ((size_t)n > len) return -1;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80) return -1;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*cp = c;
	return n;
}

/* strconv.IsPrint for the code points that matter (spaces other than
 * U+0020, format characters, private use and noncharacters are not) */
static int go_printable(uint32_t c)
{
	if (c == 0xA0 || c == 0xAD || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
	    (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
	    (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xFFFE && c <= 0xFFFF) || (c >= 0x600 && c <= 0x605) ||
	    c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E || (c >= 0xF0000) || (c >= 0xE0000 && c <= 0xE007F))
		return 0;
	return 1;
}

void cv_go_quote(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	buf_putc(b, '"');
	for (size_t i = 0; i < len;) {
		uint32_t c;
		int n = utf8_decode(p + i, len - i, &c);
		if (n < 0) {
			buf_printf(b, "\\x%02x", p[i]);
			i++;
			continue;
		}
		switch (c) {
		case '\a': buf_puts(b, "\\a"); break;
		case '\b': buf_puts(b, "\\b"); break;
		case '\f': buf_puts(b, "\\f"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\v': buf_puts(b, "\\v"); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '"': buf_puts(b, "\\\""); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(b, "\\x%02x", c);
			else if (c >= 0x80 && c < 0xA0)
				buf_printf(b, "\\u%04x", c);
			else if (!go_printable(c))
				buf_printf(b, c > 0xFFFF ? "\\U%08x" : "\\u%04x", c);
			else
				buf_append(b, p + i, n);
		}
		i += n;
	}
	buf_putc(b, '"');
}

/* ---------------------------------------------------------------- printf */

struct fspec { int minus, plus, sharp, zero, space; int width, prec; };

static void pad(struct buf *b, const struct fspec *f, const char *s, size_t len)
{
	/* width counts runes */
	size_t runes = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			runes++;
	size_t w = f->width > 0 ? (size_t)f->width : 0;
	if (runes >= w) {
		buf_append(b, s, len);
		return;
	}
	size_t n = w - runes;
	if (f->minus) {
		buf_append(b, s, len);
		for (size_t i = 0; i < n; i++) buf_putc(b, ' ');
	} else if (f->zero && len && (s[0] == '-' || s[0] == '+')) {
		buf_putc(b, s[0]);
		for (size_t i = 0; i < n; i++) buf_putc(b, '0');
		buf_append(b, s + 1, len - 1);
	} else {
		for (size_t i = 0; i < n; i++) buf_putc(b, f->zero ? '0' : ' ');
		buf_append(b, s, len);
	}
}

static void bad_verb(struct buf *b, char verb, cv v)
{
	buf_printf(b, "%%!%c(", verb);
	if (v.kind == CV_NIL) {
		buf_puts(b, "<nil>)");
		return;
	}
	buf_puts(b, cv_type_name(v));
	buf_putc(b, '=');
	fmt_v(b, v, 1);
	buf_putc(b, ')');
}

static void fmt_int_verb(struct buf *b, const struct fspec *f, char verb, cv v)
{
	char t[80];
	int neg = 0;
	uint64_t u;
	if (v.sub == CS_UINT64)
		u = (uint64_t)v.u.i;
	else if (v.u.i < 0) {
		neg = 1;
		u = (uint64_t)0 - (uint64_t)v.u.i;
	} else
		u = (uint64_t)v.u.i;
	char digits[70];
	int n = 0;
	int base = verb == 'x' || verb == 'X' ? 16 : verb == 'o' || verb == 'O' ? 8 : verb == 'b' ? 2 : 10;
	const char *dig = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
	if (verb == 'c' || verb == 'q' || verb == 'U') {
		struct buf tmp = BUF_INIT;
		uint32_t cp = (uint32_t)u;
		char enc[5];
		int el = 0;
		if (cp < 0x80) enc[el++] = (char)cp;
		else if (cp < 0x800) { enc[el++] = (char)(0xC0 | (cp >> 6)); enc[el++] = (char)(0x80 | (cp & 0x3F)); }
		else if (cp < 0x10000) { enc[el++] = (char)(0xE0 | (cp >> 12)); enc[el++] = (char)(0x80 | ((cp >> 6) & 0x3F)); enc[el++] = (char)(0x80 | (cp & 0x3F)); }
		else { enc[el++] = (char)(0xF0 | (cp >> 18)); enc[el++] = (char)(0x80 | ((cp >> 12) & 0x3F)); enc[el++] = (char)(0x80 | ((cp >> 6) & 0x3F)); enc[el++] = (char)(0x80 | (cp & 0x3F)); }
		if (verb == 'c')
			buf_append(&tmp, enc, el);
		else if (verb == 'U')
			buf_printf(&tmp, "U+%04X", cp);
		else {
			buf_putc(&tmp, '\'');
			buf_append(&tmp, enc, el);
			buf_putc(&tmp, '\'');
		}
		pad(b, f, tmp.data, tmp.len);
		buf_free(&tmp);
		return;
	}
	do {
		digits[n++] = dig[u % base];
		u /= base;
	} while (u);
	int tl = 0;
	if (neg) t[tl++] = '-';
	else if (f->plus) t[tl++] = '+';
	else if (f->space) t[tl++] = ' ';
	if (f->sharp) {
		if (base == 16) { t[tl++] = '0'; t[tl++] = verb; }
		else if (base == 8 && digits[n - 1] != '0') t[tl++] = '0';
	}
	if (verb == 'O') { t[tl++] = '0'; t[tl++] = 'o'; }
	for (int i = n; i < f->prec; i++)
		t[tl++] = '0';
	while (n)
		t[tl++] = digits[--n];
	pad(b, f, t, tl);
}

static void fmt_float_verb(struct buf *b, const struct fspec *f, char verb, double x)
{
	struct buf t = BUF_INIT;
	if (isnan(x) || isinf(x)) {
		if (isnan(x)) buf_puts(&t, f->plus ? "+NaN" : "NaN");
		else buf_puts(&t, x > 0 ? (f->plus ? "+Inf" : "Inf") : "-Inf");
		struct fspec g = *f;
		g.zero = 0;
		pad(b, &g, t.data, t.len);
		buf_free(&t);
		return;
	}
	if (f->plus && !signbit(x)) buf_putc(&t, '+');
	else if (f->space && !signbit(x)) buf_putc(&t, ' ');
	if ((verb == 'g' || verb == 'G' || verb == 'v') && f->prec < 0) {
		cv_fmt_float_g(&t, x);
	} else if ((verb == 'e' || verb == 'E') && f->prec < 0) {
		char d[40];
		int dp;
		int nd = shortest(x, d, &dp);
		if (signbit(x)) buf_putc(&t, '-');
		if (x == 0) { nd = 1; dp = 1; }
		fmt_e(&t, d, nd, dp, 2);
	} else if (verb == 'f' || verb == 'F') {
		buf_printf(&t, "%.*f", f->prec < 0 ? 6 : f->prec, x);
	} else if (verb == 'e' || verb == 'E') {
		buf_printf(&t, "%.*e", f->prec, x);
	} else {
		buf_printf(&t, "%.*g", f->prec < 0 ? 6 : f->prec, x);
	}
	if (verb == 'E' || verb == 'G')
		for (size_t i = 0; i < t.len; i++)
			if (t.data[i] == 'e') t.data[i] = 'E';
	pad(b, f, t.data, t.len);
	buf_free(&t);
}

static void fmt_str_verb(struct buf *b, const struct fspec *f, char verb, const char *s, size_t len)
{
	struct buf t = BUF_INIT;
	if (f->prec >= 0) {
		/* precision truncates runes */
		size_t i = 0;
		int r = 0;
		while (i < len && r < f->prec) {
			i++;
			while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
			r++;
		}
		len = i;
	}
	if (verb == 'q') {
		if (f->sharp && !memchr(s, '`', len)) {
			buf_putc(&t, '`'); buf_append(&t, s, len); buf_putc(&t, '`');
		} else
			cv_go_quote(&t, s, len);
	} else if (verb == 'x' || verb == 'X') {
		for (size_t i = 0; i < len; i++)
			buf_printf(&t, verb == 'x' ? "%02x" : "%02X", (unsigned char)s[i]);
	} else {
		buf_append(&t, s, len);
	}
	pad(b, f, t.data ? t.data : "", t.len);
	buf_free(&t);
}

static void fmt_arg(struct buf *b, const struct fspec *f, char verb, cv v);

static void fmt_compound(struct buf *b, const struct fspec *f, char verb, cv v)
{
	if (v.kind == CV_LIST) {
		buf_putc(b, '[');
		for (size_t i = 0; i < v.u.list->n; i++) {
			if (i) buf_putc(b, ' ');
			fmt_arg(b, f, verb, v.u.list->items[i]);
		}
		buf_putc(b, ']');
	} else {
		buf_puts(b, "map[");
		for (size_t i = 0; i < v.u.map->n; i++) {
			if (i) buf_putc(b, ' ');
			fmt_arg(b, f, verb, cv_str_ref(v.u.map->ents[i].key, v.u.map->ents[i].klen));
			buf_putc(b, ':');
			fmt_arg(b, f, verb, v.u.map->ents[i].val);
		}
		buf_putc(b, ']');
	}
}

static void fmt_arg(struct buf *b, const struct fspec *f, char verb, cv v)
{
	if (verb == 'T') {
		const char *tn = cv_type_name(v);
		pad(b, f, tn, strlen(tn));
		return;
	}
	if (v.kind == CV_NIL) {
		if (verb == 'v') pad(b, f, "<nil>", 5);
		else bad_verb(b, verb, v);
		return;
	}
	switch (v.kind) {
	case CV_BOOL:
		if (verb == 'v' || verb == 't') pad(b, f, v.u.b ? "true" : "false", v.u.b ? 4 : 5);
		else bad_verb(b, verb, v);
		return;
	case CV_INT:
		if (verb == 'v') fmt_int_verb(b, f, 'd', v);
		else if (strchr("bcdoOqxXU", verb)) fmt_int_verb(b, f, verb, v);
		else bad_verb(b, verb, v);
		return;
	case CV_FLOAT:
		if (strchr("veEfFgGxX", verb) && verb != 'x' && verb != 'X') fmt_float_verb(b, f, verb, v.u.f);
		else bad_verb(b, verb, v);
		return;
	case CV_STR:
		if (v.sub == CS_BYTES && verb != 's' && verb != 'q' && verb != 'x' && verb != 'X') {
			struct buf t = BUF_INIT;
			fmt_v(&t, v, 1);
			pad(b, f, t.data, t.len);
			buf_free(&t);
			return;
		}
		if (strchr("vsqxX", verb)) fmt_str_verb(b, f, verb, v.u.str.s, v.u.str.len);
		else bad_verb(b, verb, v);
		return;
	case CV_LIST:
	case CV_MAP:
		if (v.kind == CV_MAP && v.sub == CS_STRUCT) break;
		fmt_compound(b, f, verb, v);
		return;
	default:
		break;
	}
	if (v.kind == CV_OBJ && v.u.obj->type == CO_SEMVER && (verb == 'v' || verb == 's' || verb == 'q')) {
		struct buf t = BUF_INIT;
		fmt_semver(&t, &v.u.obj->u.sv);
		fmt_str_verb(b, f, verb, t.data, t.len);
		buf_free(&t);
		return;
	}
	struct buf t = BUF_INIT;
	fmt_v(&t, v, 1);
	pad(b, f, t.data, t.len);
	buf_free(&t);
}

void cv_sprintf(struct buf *b, const char *fmt, size_t fmtlen, const cv *args, size_t nargs)
{
	size_t ai = 0;
	size_t i = 0;
	while (i < fmtlen) {
		char c = fmt[i];
		if (c != '%') {
			buf_putc(b, c);
			i++;
			continue;
		}
		i++;
		if (i >= fmtlen) {
			buf_puts(b, "%!(NOVERB)");
			break;
		}
		struct fspec f = { 0, 0, 0, 0, 0, -1, -1 };
		for (; i < fmtlen; i++) {
			char fc = fmt[i];
			if (fc == '-') { f.minus = 1; f.zero = 0; }
			else if (fc == '+') f.plus = 1;
			else if (fc == '#') f.sharp = 1;
			else if (fc == '0') f.zero = !f.minus;
			else if (fc == ' ') f.space = 1;
			else break;
		}
		if (i < fmtlen && fmt[i] == '*') {
			i++;
			if (ai < nargs && args[ai].kind == CV_INT) {
				f.width = (int)args[ai].u.i;
				if (f.width < 0) { f.minus = 1; f.width = -f.width; f.zero = 0; }
			} else
				buf_puts(b, "%!(BADWIDTH)");
			ai++;
		} else {
			while (i < fmtlen && fmt[i] >= '0' && fmt[i] <= '9') {
				f.width = (f.width < 0 ? 0 : f.width) * 10 + (fmt[i] - '0');
				if (f.width > 100000) f.width = 100000;
				i++;
			}
		}
		if (i < fmtlen && fmt[i] == '.') {
			i++;
			f.prec = 0;
			if (i < fmtlen && fmt[i] == '*') {
				i++;
				if (ai < nargs && args[ai].kind == CV_INT) f.prec = (int)args[ai].u.i;
				else buf_puts(b, "%!(BADPREC)");
				if (f.prec < 0) f.prec = -1;
				ai++;
			} else {
				while (i < fmtlen && fmt[i] >= '0' && fmt[i] <= '9') {
					f.prec = f.prec * 10 + (fmt[i] - '0');
					if (f.prec > 100000) f.prec = 100000;
					i++;
				}
			}
		}
		if (i >= fmtlen) {
			buf_puts(b, "%!(NOVERB)");
			break;
		}
		char verb = fmt[i++];
		if (verb == '%') {
			buf_putc(b, '%');
			continue;
		}
		if (ai >= nargs) {
			buf_printf(b, "%%!%c(MISSING)", verb);
			continue;
		}
		cv v = args[ai++];
		if (!strchr("vTtbcdoOqxXUeEfFgGsp", verb)) {
			bad_verb(b, verb, v);
			continue;
		}
		fmt_arg(b, &f, verb, v);
	}
	if (ai < nargs) {
		buf_puts(b, "%!(EXTRA ");
		for (size_t k = ai; k < nargs; k++) {
			if (k > ai) buf_puts(b, ", ");
			if (args[k].kind == CV_NIL) {
				buf_puts(b, "<nil>");
				continue;
			}
			buf_printf(b, "%s=", cv_type_name(args[k]));
			fmt_v(b, args[k], 1);
		}
		buf_putc(b, ')');
	}
}

/* ---------------------------------------------------------------- JSON */

static void json_str(struct buf *b, const char *s, size_t len, int html)
{
	const unsigned char *p = (const unsigned char *)s;
	static const char hex[] = "0123456789abcdef";
	buf_putc(b, '"');
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if (c == '"' || c == '\\') {
				buf_putc(b, '\\');
				buf_putc(b, (char)c);
			} else if (c == '\n') buf_puts(b, "\\n");
			else if (c == '\r') buf_puts(b, "\\r");
			else if (c == '\t') buf_puts(b, "\\t");
			else if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&'))) {
				buf_puts(b, "\\u00");
				buf_putc(b, hex[c >> 4]);
				buf_putc(b, hex[c & 15]);
			} else
				buf_putc(b, (char)c);
			i++;
			continue;
		}
		uint32_t cp;
		int n = utf8_decode(p + i, len - i, &cp);
		if (n < 0) {
			buf_puts(b, "\\ufffd");
			i++;
			continue;
		}
		if (cp == 0x2028 || cp == 0x2029)
			buf_printf(b, "\\u%04x", cp);
		else
			buf_append(b, p + i, n);
		i += n;
	}
	buf_putc(b, '"');
}

static void json_indent(struct buf *b, int indent, int depth)
{
	if (!indent)
		return;
	buf_putc(b, '\n');
	for (int i = 0; i < depth * indent; i++)
		buf_putc(b, ' ');
}

static int to_json1(struct buf *b, cv v, int html, int indent, int depth);

static int to_json(struct buf *b, cv v, int html, int indent, int depth)
{
	int r;
	ENTER(return -1);
	r = to_json1(b, v, html, indent, depth);
	LEAVE();
	return r;
}

static int to_json1(struct buf *b, cv v, int html, int indent, int depth)
{
	switch (v.kind) {
	case CV_NIL: buf_puts(b, "null"); return 0;
	case CV_BOOL: buf_puts(b, v.u.b ? "true" : "false"); return 0;
	case CV_INT:
		if (v.sub == CS_UINT64) buf_printf(b, "%llu", (unsigned long long)(uint64_t)v.u.i);
		else buf_printf(b, "%lld", (long long)v.u.i);
		return 0;
	case CV_FLOAT:
		if (isnan(v.u.f) || isinf(v.u.f))
			return -1;
		fmt_float_json(b, v.u.f);
		return 0;
	case CV_STR:
		if (v.sub == CS_BYTES) {
			/* []byte marshals as base64 */
			static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			const unsigned char *s = (const unsigned char *)v.u.str.s;
			size_t n = v.u.str.len;
			buf_putc(b, '"');
			for (size_t i = 0; i < n; i += 3) {
				uint32_t x = s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
				buf_putc(b, t[(x >> 18) & 63]);
				buf_putc(b, t[(x >> 12) & 63]);
				buf_putc(b, i + 1 < n ? t[(x >> 6) & 63] : '=');
				buf_putc(b, i + 2 < n ? t[x & 63] : '=');
			}
			buf_putc(b, '"');
			return 0;
		}
		json_str(b, v.u.str.s, v.u.str.len, html);
		return 0;
	case CV_LIST:
		buf_putc(b, '[');
		for (size_t i = 0; i < v.u.list->n; i++) {
			if (i) buf_putc(b, ',');
			json_indent(b, indent, depth + 1);
			if (to_json(b, v.u.list->items[i], html, indent, depth + 1))
				return -1;
		}
		if (v.u.list->n)
			json_indent(b, indent, depth);
		buf_putc(b, ']');
		return 0;
	case CV_MAP:
		buf_putc(b, '{');
		for (size_t i = 0; i < v.u.map->n; i++) {
			if (i) buf_putc(b, ',');
			json_indent(b, indent, depth + 1);
			json_str(b, v.u.map->ents[i].key, v.u.map->ents[i].klen, html);
			buf_putc(b, ':');
			if (indent) buf_putc(b, ' ');
			if (to_json(b, v.u.map->ents[i].val, html, indent, depth + 1))
				return -1;
		}
		if (v.u.map->n)
			json_indent(b, indent, depth);
		buf_putc(b, '}');
		return 0;
	case CV_OBJ: {
		struct cv_obj *o = v.u.obj;
		if (o->type == CO_SEMVER) {
			struct buf t = BUF_INIT;
			fmt_semver(&t, &o->u.sv);
			json_str(b, t.data, t.len, html);
			buf_free(&t);
			return 0;
		}
		if (o->type == CO_CERT) {
			buf_puts(b, "{\"Cert\":");
			json_str(b, o->u.cert.cert, strlen(o->u.cert.cert), html);
			buf_puts(b, ",\"Key\":");
			json_str(b, o->u.cert.key, strlen(o->u.cert.key), html);
			buf_putc(b, '}');
			return 0;
		}
		if (o->type == CO_TIME) {
			time_t t = (time_t)o->u.time.sec;
			struct tm tm;
			char s[64];
			gmtime_r(&t, &tm);
			strftime(s, sizeof(s), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
			buf_puts(b, s);
			return 0;
		}
		if (o->type == CO_APIVERSIONS) {
			buf_putc(b, '[');
			for (size_t i = 0; i < o->u.apis.n; i++) {
				if (i) buf_putc(b, ',');
				json_str(b, o->u.apis.v[i], strlen(o->u.apis.v[i]), html);
			}
			buf_putc(b, ']');
			return 0;
		}
		buf_puts(b, "{}");
		return 0;
	}
	}
	return -1;
}

int cv_to_json(struct buf *b, cv v, int escape_html, int indent)
{
	size_t start = b->len;
	int r = to_json(b, v, escape_html, indent, 0);
	if (r) {
		b->len = start;
		if (b->data)
			b->data[start] = 0;
	}
	return r;
}

/* ---------------------------------------------------------------- jansson */

static json_t *to_jansson(cv v, int exact);

json_t *cv_to_jansson(cv v) { return to_jansson(v, 0); }
json_t *cv_to_jansson_exact(cv v) { return to_jansson(v, 1); }

static json_t *to_jansson1(cv v, int exact);

static json_t *to_jansson(cv v, int exact)
{
	json_t *r;
	ENTER(return json_null());
	r = to_jansson1(v, exact);
	LEAVE();
	return r;
}

static json_t *to_jansson1(cv v, int exact)
{
	switch (v.kind) {
	case CV_NIL: return json_null();
	case CV_BOOL: return json_boolean(v.u.b);
	case CV_INT: return json_integer(v.u.i);
	case CV_FLOAT:
		if (!exact && v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18)
			return json_integer((json_int_t)v.u.f);
		return json_real(v.u.f);
	case CV_STR: return json_stringn(v.u.str.s, v.u.str.len);
	case CV_LIST: {
		json_t *a = json_array();
		for (size_t i = 0; i < v.u.list->n; i++)
			json_array_append_new(a, to_jansson(v.u.list->items[i], exact));
		return a;
	}
	case CV_MAP: {
		json_t *o = json_object();
		for (size_t i = 0; i < v.u.map->n; i++)
			json_object_setn_new(o, v.u.map->ents[i].key, v.u.map->ents[i].klen,
					     to_jansson(v.u.map->ents[i].val, exact));
		return o;
	}
	case CV_OBJ: {
		struct buf b = BUF_INIT;
		json_t *r;
		if (cv_to_json(&b, v, 0, 0) == 0)
			r = json_loads(b.data, JSON_DECODE_ANY, NULL);
		else
			r = NULL;
		buf_free(&b);
		return r ? r : json_null();
	}
	}
	return json_null();
}

cv cv_from_jansson(struct cv_arena *a, const json_t *j, int ints)
{
	switch (json_typeof(j)) {
	case JSON_NULL: return cv_nil();
	case JSON_TRUE: return cv_bool(1);
	case JSON_FALSE: return cv_bool(0);
	case JSON_INTEGER:
		if (ints)
			return cv_int(json_integer_value(j), CS_INT64);
		return cv_float((double)json_integer_value(j));
	case JSON_REAL: return cv_float(json_real_value(j));
	case JSON_STRING: return cv_str(a, json_string_value(j), json_string_length(j));
	case JSON_ARRAY: {
		cv l = cv_list_new(a, json_array_size(j));
		for (size_t i = 0; i < json_array_size(j); i++)
			cv_list_push(a, l, cv_from_jansson(a, json_array_get(j, i), ints));
		return l;
	}
	case JSON_OBJECT: {
		cv m = cv_map_new(a, json_object_size(j));
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)j, k, x)
			cv_map_set(a, m.u.map, k, strlen(k), cv_from_jansson(a, x, ints));
		return m;
	}
	}
	return cv_nil();
}

/* A direct JSON reader into arena values. It accepts exactly the documents
 * jansson accepts in the common case (ASCII strings, in-range numbers); on
 * anything unusual (errors, non-ASCII bytes, lone surrogates, NUL in keys,
 * out-of-range numbers, deep nesting) it gives up and the caller falls back
 * to jansson, so error messages and edge-case typing stay jansson's.
 *
 * Speed: pretty-printed JSON (values.schema.json) is mostly indentation, so
 * runs of spaces and of plain string bytes are skipped 8 bytes at a time
 * (word compares). Strings without escapes are copied once, from the text
 * into the arena, short ones packed into bigger blocks (fewer cv_alloc
 * calls, no 16-byte rounding). The entries of an object (and the items of
 * an array) are collected on a stack and copied into an array of the exact
 * size when it closes; a key that sorts after the previous one (generated
 * files are sorted) is appended without a search, any other key is put in
 * place by binary search (a repeated key replaces the value, as with
 * jansson). Small integers are converted without strtoll. */
struct jrd {
	struct cv_arena *a;
	const char *p, *end;
	int ints;
	struct buf tmp;           /* a string with escapes, decoded */
	struct cv_entstack es;    /* entries of the open objects, innermost last */
	cv *items;                /* items of the open arrays, innermost last */
	size_t nitems, citems;
	char *slab;               /* room for short strings */
	size_t slab_left;
};

enum { JRD_SLAB_BLOCK = 8192, JRD_SLAB_MAX = 256 };

/* a NUL-terminated copy of s in the arena */
static inline char *jrd_strndup(struct jrd *r, const char *s, size_t n)
{
	if (n >= JRD_SLAB_MAX)
		return cv_strndup(r->a, s, n);
	if (r->slab_left < n + 1) {
		r->slab = cv_alloc(r->a, JRD_SLAB_BLOCK);
		r->slab_left = JRD_SLAB_BLOCK;
	}
	char *d = r->slab;
	if (n)
		memcpy(d, s, n);
	d[n] = 0;
	r->slab += n + 1;
	r->slab_left -= n + 1;
	return d;
}

#define JRD_MAX_DEPTH 2048
static const char *jrd_skip_ws(const char *p, const char *end)
{
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ') {
			p++;
			/* indentation: whole words of spaces */
			while (end - p >= 8) {
				uint64_t x = word_load8(p) ^ (WORD_ONES * ' ');
				if (x) {
					/* the lowest non-zero byte of x holds its lowest set bit */
					p += word_first(x);
					break;
				}
				p += 8;
			}
			continue;
		}
		if (c == '\n' || c == '\t' || c == '\r') {
			p++;
			continue;
		}
		break;
	}
	return p;
}

static inline void jrd_ws(struct jrd *r)
{
	/* most calls find a token right away */
	if (r->p < r->end && (unsigned char)*r->p > ' ')
		return;
	r->p = jrd_skip_ws(r->p, r->end);
}

/* The first byte at or after p that a string cannot take as is: '"',
 * '\\', a control character or a non-ASCII byte; end if none. */
static inline const char *jrd_scan_str(const char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t w = word_load8(p);
		uint64_t q = w ^ (WORD_ONES * '"'), b = w ^ (WORD_ONES * '\\');
		/* per byte: zero (q, b), below 0x20, or 0x80 and up. Borrows
		 * may flag bytes above a flagged one, never below: the lowest
		 * flagged byte is exact, and it is the one wanted */
		uint64_t m = ((q - WORD_ONES) & ~q) | ((b - WORD_ONES) & ~b) | ((w - WORD_ONES * 0x20) & ~w) | w;
		m &= WORD_HIGH;
		if (m)
			return p + word_first(m);
		p += 8;
	}
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
			return p;
		p++;
	}
	return p;
}

static int jrd_hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
		else return -1;
	}
	*out = v;
	return 0;
}

static int jrd_string_escaped(struct jrd *r, const char *p, const char **s, size_t *len, int *has_nul);

/* reads a string after the opening quote. Without escapes *s points into
 * the text; otherwise into r->tmp. Returns -1 to fall back. */
static inline int jrd_string(struct jrd *r, const char **s, size_t *len, int *has_nul)
{
	const char *start = r->p, *end = r->end;
	const char *p = jrd_scan_str(start, end);
	if (p < end && *p == '"') {
		*s = start;
		*len = (size_t)(p - start);
		r->p = p + 1;
		return 0;
	}
	return jrd_string_escaped(r, p, s, len, has_nul);
}

/* the rest of jrd_string(): p is at the first byte that is not plain */
static int jrd_string_escaped(struct jrd *r, const char *p, const char **s, size_t *len, int *has_nul)
{
	const char *start = r->p, *end = r->end;
	if (p >= end || *p != '\\')
		return -1;
	r->tmp.len = 0;
	buf_append(&r->tmp, start, (size_t)(p - start));
	for (;;) {
		/* p is at a '\\' */
		if (end - p < 2)
			return -1;
		char e = p[1];
		p += 2;
		char ch;
		switch (e) {
		case '"': ch = '"'; break;
		case '\\': ch = '\\'; break;
		case '/': ch = '/'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u': {
			unsigned u;
			if (end - p < 4 || jrd_hex4(p, &u))
				return -1;
			p += 4;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return -1;
			if (u >= 0xD800 && u <= 0xDBFF) {
				unsigned lo;
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || jrd_hex4(p + 2, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				p += 6;
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			}
			char o[4];
			size_t on;
			if (u == 0)
				*has_nul = 1;
			if (u < 0x80) { o[0] = (char)u; on = 1; }
			else if (u < 0x800) { o[0] = (char)(0xC0 | (u >> 6)); o[1] = (char)(0x80 | (u & 0x3F)); on = 2; }
			else if (u < 0x10000) {
				o[0] = (char)(0xE0 | (u >> 12)); o[1] = (char)(0x80 | ((u >> 6) & 0x3F));
				o[2] = (char)(0x80 | (u & 0x3F)); on = 3;
			} else {
				o[0] = (char)(0xF0 | (u >> 18)); o[1] = (char)(0x80 | ((u >> 12) & 0x3F));
				o[2] = (char)(0x80 | ((u >> 6) & 0x3F)); o[3] = (char)(0x80 | (u & 0x3F)); on = 4;
			}
			buf_append(&r->tmp, o, on);
			goto run;
		}
		default:
			return -1;
		}
		buf_append(&r->tmp, &ch, 1);
	run:;
		const char *s0 = p;
		p = jrd_scan_str(p, end);
		if (p > s0)
			buf_append(&r->tmp, s0, (size_t)(p - s0));
		if (p >= end)
			return -1;
		if (*p == '"') {
			r->p = p + 1;
			*s = r->tmp.data;
			*len = r->tmp.len;
			return 0;
		}
		if (*p != '\\')
			return -1;
	}
}

static int jrd_number(struct jrd *r, cv *out)
{
	const char *p = r->p, *start = p, *end = r->end;
	int real = 0, neg = 0;
	uint64_t v = 0;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end)
		return -1;
	const char *digits = p;
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return -1;
	} else if (*p >= '1' && *p <= '9') {
		/* wraps for long numbers; only used up to 18 digits */
		while (p < end && *p >= '0' && *p <= '9')
			v = v * 10 + (uint64_t)(*p++ - '0');
	} else
		return -1;
	size_t ndigits = (size_t)(p - digits);
	if (p < end && *p == '.') {
		real = 1;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = 1;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (!real && ndigits <= 18) {
		/* what strtoll gives, without the copy */
		int64_t x = neg ? -(int64_t)v : (int64_t)v;
		*out = r->ints ? cv_int(x, CS_INT64) : cv_float((double)x);
		r->p = p;
		return 0;
	}
	size_t n = (size_t)(p - start);
	char small[64];
	if (n >= sizeof(small))
		return -1;
	memcpy(small, start, n);
	small[n] = 0;
	errno = 0;
	if (!real) {
		long long x = strtoll(small, NULL, 10);
		if (errno == ERANGE)
			return -1;
		*out = r->ints ? cv_int(x, CS_INT64) : cv_float((double)x);
	} else {
		double d = strtod(small, NULL);
		if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
			return -1;
		*out = cv_float(d);
	}
	r->p = p;
	return 0;
}


static void jrd_push(struct jrd *r, cv v)
{
	if (r->nitems == r->citems) {
		r->citems = r->citems ? r->citems * 2 : 64;
		r->items = xrealloc(r->items, r->citems * sizeof(*r->items));
	}
	r->items[r->nitems++] = v;
}

static int jrd_value(struct jrd *r, cv *out, int depth)
{
	if (depth > JRD_MAX_DEPTH)
		return -1;
	jrd_ws(r);
	if (r->p >= r->end)
		return -1;
	char c = *r->p;
	switch (c) {
	case '{': {
		r->p++;
		size_t base = r->es.n;
		jrd_ws(r);
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			*out = cv_map_of(r->a, NULL, 0);
			return 0;
		}
		for (;;) {
			jrd_ws(r);
			if (r->p >= r->end || *r->p != '"')
				return -1;
			r->p++;
			const char *k;
			size_t kl;
			int nul = 0;
			if (jrd_string(r, &k, &kl, &nul) || nul)
				return -1;
			/* copied now: r->tmp is reused by the value */
			const char *key = jrd_strndup(r, k, kl);
			jrd_ws(r);
			if (r->p >= r->end || *r->p != ':')
				return -1;
			r->p++;
			cv v;
			if (jrd_value(r, &v, depth + 1))
				return -1;
			cv_entstack_put(&r->es, base, key, kl, v);
			jrd_ws(r);
			if (r->p >= r->end)
				return -1;
			if (*r->p == ',') {
				r->p++;
				continue;
			}
			if (*r->p == '}') {
				r->p++;
				*out = cv_map_of(r->a, r->es.ents ? r->es.ents + base : NULL, r->es.n - base);
				r->es.n = base;
				return 0;
			}
			return -1;
		}
	}
	case '[': {
		r->p++;
		size_t base = r->nitems;
		jrd_ws(r);
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			*out = cv_list_of(r->a, NULL, 0);
			return 0;
		}
		for (;;) {
			cv v;
			if (jrd_value(r, &v, depth + 1))
				return -1;
			jrd_push(r, v);
			jrd_ws(r);
			if (r->p >= r->end)
				return -1;
			if (*r->p == ',') {
				r->p++;
				continue;
			}
			if (*r->p == ']') {
				r->p++;
				*out = cv_list_of(r->a, r->items ? r->items + base : NULL, r->nitems - base);
				r->nitems = base;
				return 0;
			}
			return -1;
		}
	}
	case '"': {
		r->p++;
		const char *s;
		size_t sl;
		int nul = 0;
		if (jrd_string(r, &s, &sl, &nul))
			return -1;
		*out = cv_str_ref(jrd_strndup(r, s, sl), sl);
		return 0;
	}
	case 't':
		if (r->end - r->p >= 4 && !memcmp(r->p, "true", 4)) {
			r->p += 4;
			*out = cv_bool(1);
			return 0;
		}
		return -1;
	case 'f':
		if (r->end - r->p >= 5 && !memcmp(r->p, "false", 5)) {
			r->p += 5;
			*out = cv_bool(0);
			return 0;
		}
		return -1;
	case 'n':
		if (r->end - r->p >= 4 && !memcmp(r->p, "null", 4)) {
			r->p += 4;
			*out = cv_nil();
			return 0;
		}
		return -1;
	default:
		return jrd_number(r, out);
	}
}

/* 0 and *out set, or -1: not handled here (use jansson). Values built
 * before giving up stay in the arena (unreferenced). */
static int json_direct(struct cv_arena *a, const char *text, size_t len, cv *out, int ints)
{
	struct jrd r = { a, text, text + len, ints, BUF_INIT, { NULL, 0, 0 }, NULL, 0, 0, NULL, 0 };
	cv v;
	int rc = jrd_value(&r, &v, 1);
	if (!rc) {
		jrd_ws(&r);
		/* a token glued to a literal ("truex") is jansson's error */
		if (r.p != r.end)
			rc = -1;
	}
	buf_free(&r.tmp);
	free(r.es.ents);
	free(r.items);
	if (!rc)
		*out = v;
	return rc;
}

int cv_from_json(struct cv_arena *a, const char *text, size_t len, cv *out, int ints, char *err, size_t errlen)
{
	if (!json_direct(a, text, len, out, ints))
		return 0;
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j) {
		snprintf(err, errlen, "%s (line %d column %d)", je.text, je.line, je.column);
		return -1;
	}
	*out = cv_from_jansson(a, j, ints);
	json_decref(j);
	return 0;
}
