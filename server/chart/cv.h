/*
 * cv: the chart engine's internal value model (not a public interface).
 *
 * Values mirror what Go's text/template sees when Helm renders a chart:
 * nil, bool, the integer kinds (int, int64, uint64), float64, strings,
 * lists ([]interface{} or []string), maps (map[string]interface{},
 * map[string]string, chartutil.Values) and a few opaque objects (semver
 * versions, certificates, time, .Files, .Capabilities.APIVersions).
 *
 * Memory: every value lives in an arena (struct cv_arena). Nothing is freed
 * individually; the arena is released as a whole. A loaded chart owns one
 * arena (read-only after loading); each render owns another. Maps and lists
 * are mutable (sprig's set/unset/merge mutate maps in place), so a render
 * deep-copies anything it may mutate.
 *
 * Thread-safety: an arena and its values belong to one thread at a time;
 * read-only sharing of a loaded chart's values is fine.
 */
#ifndef FERRY_CHART_CV_H
#define FERRY_CHART_CV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>

#include "server/common/buf.h"

/* An arena: allocations live until the arena is freed. Its layout is here
 * only so that cv_alloc's common case can be inlined; use the functions. */
struct cv_chunk { struct cv_chunk *next; size_t used, cap, ready; unsigned char *mem; int mapped; };
struct cv_arena { struct cv_chunk *head; size_t total; };
struct cv_arena *cv_arena_new(void);
void cv_arena_free(struct cv_arena *a);
void *cv_alloc_slow(struct cv_arena *a, size_t n);
/* n bytes, zeroed, 16-aligned */
static inline void *cv_alloc(struct cv_arena *a, size_t n)
{
	n = n ? (n + 15) & ~(size_t)15 : 16;
	struct cv_chunk *c = a->head;
	if (c && c->ready - c->used >= n) {
		void *p = c->mem + c->used;
		c->used += n;
		return p;
	}
	return cv_alloc_slow(a, n);
}
char *cv_strndup(struct cv_arena *a, const char *s, size_t n);
size_t cv_arena_used(const struct cv_arena *a);
/* move src's memory into dst (values of src stay valid); frees src */
void cv_arena_merge(struct cv_arena *dst, struct cv_arena *src);

enum cv_kind { CV_NIL, CV_BOOL, CV_INT, CV_FLOAT, CV_STR, CV_LIST, CV_MAP, CV_OBJ };

/* Go types behind a kind (typeOf / kindOf / %T). */
enum cv_sub {
	CS_NONE = 0,
	CS_INT, CS_INT64, CS_UINT64,              /* CV_INT */
	CS_STRING, CS_BYTES,                      /* CV_STR */
	CS_IFACE_LIST, CS_STRING_LIST,            /* CV_LIST */
	CS_IFACE_MAP, CS_STRING_MAP, CS_VALUES,   /* CV_MAP */
	CS_STRUCT,                                /* CV_MAP shown as a struct */
};

enum cv_objtype { CO_SEMVER, CO_CERT, CO_TIME, CO_FILES, CO_APIVERSIONS };

struct cv_list;
struct cv_map;
struct cv_obj;

typedef struct cv {
	uint8_t kind;
	uint8_t sub;
	union {
		int b;
		int64_t i;   /* CS_UINT64 stores the bits */
		double f;
		struct { const char *s; size_t len; } str;
		struct cv_list *list;
		struct cv_map *map;
		struct cv_obj *obj;
	} u;
} cv;

struct cv_list { size_t n, cap; cv *items; };
struct cv_mapent { const char *key; size_t klen; cv val; };
struct cv_map { size_t n, cap; struct cv_mapent *ents; /* sorted bytewise */ };

struct cv_semver { uint64_t major, minor, patch; const char *pre; const char *meta; const char *original; };
struct cv_cert { const char *cert; const char *key; };
struct cv_file { const char *name; const char *data; size_t len; };
struct cv_files { size_t n; struct cv_file *files; /* sorted by name */ };

struct cv_obj {
	enum cv_objtype type;
	union {
		struct cv_semver sv;
		struct cv_cert cert;
		struct { int64_t sec; int32_t nsec; } time;
		struct cv_files files;
		struct { size_t n; const char **v; } apis;
	} u;
};

/* constructors */
static inline cv cv_nil(void) { cv v = { CV_NIL, 0, { 0 } }; return v; }
static inline cv cv_bool(int b) { cv v = { CV_BOOL, 0, { 0 } }; v.u.b = !!b; return v; }
static inline cv cv_int(int64_t i, int sub) { cv v = { CV_INT, (uint8_t)sub, { 0 } }; v.u.i = i; return v; }
static inline cv cv_float(double f) { cv v = { CV_FLOAT, 0, { 0 } }; v.u.f = f; return v; }
cv cv_str(struct cv_arena *a, const char *s, size_t len);       /* copies */
cv cv_cstr(struct cv_arena *a, const char *s);                   /* copies */
static inline cv cv_str_ref(const char *s, size_t len)           /* no copy */
{ cv v = { CV_STR, CS_STRING, { 0 } }; v.u.str.s = s; v.u.str.len = len; return v; }
cv cv_list_new(struct cv_arena *a, size_t cap);
cv cv_map_new(struct cv_arena *a, size_t cap);
/* The order of keys in a cv_map: bytewise, a prefix first (<0, 0, >0).
 * Keys differ early, so a byte loop beats a memcmp call. */
static inline int cv_key_order(const char *a, size_t al, const char *b, size_t bl)
{
	size_t n = al < bl ? al : bl, i = 0;
	while (i < n && a[i] == b[i])
		i++;
	if (i < n)
		return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
	return al < bl ? -1 : al > bl;
}

/* Entries of maps a reader builds bottom-up (JSON, YAML): the open maps
 * share one growing array (malloc'd; the reader frees ents), each owning
 * its entries from a base index on, sorted by key. */
struct cv_entstack { struct cv_mapent *ents; size_t n, cap; };
/* Add key/val to the open map whose entries start at base: a key that
 * sorts after the last one is appended, others are put in place; a
 * repeated key replaces the value (as cv_map_set). The key is not copied. */
void cv_entstack_put(struct cv_entstack *st, size_t base, const char *key, size_t klen, cv val);

/* a map of a copy of n entries (sorted by key, no repeats) or a list of a
 * copy of n items, each in one block */
cv cv_map_of(struct cv_arena *a, const struct cv_mapent *ents, size_t n);
cv cv_list_of(struct cv_arena *a, const cv *items, size_t n);
cv cv_obj_new(struct cv_arena *a, enum cv_objtype t, struct cv_obj **out);

void cv_list_push(struct cv_arena *a, cv list, cv item);
/* map access: lookup returns NULL when missing */
cv *cv_map_get(const struct cv_map *m, const char *key, size_t klen);
void cv_map_set(struct cv_arena *a, struct cv_map *m, const char *key, size_t klen, cv val);
int cv_map_del(struct cv_map *m, const char *key, size_t klen);
static inline cv *cv_map_gets(const struct cv_map *m, const char *key) { return cv_map_get(m, key, strlen(key)); }

int cv_truthy(cv v);
cv cv_deep_copy(struct cv_arena *a, cv v);
int cv_deep_equal(cv a, cv b);   /* reflect.DeepEqual */
static inline int cv_is_str(cv v) { return v.kind == CV_STR; }

/* Go type names: typeOf ("float64", "[]interface {}", "<nil>") and kindOf. */
const char *cv_type_name(cv v);
const char *cv_kind_name(cv v);

/* fmt.Print-style formatting (%v). nil prints "<nil>". */
void cv_fmt_v(struct buf *b, cv v);
/* Go's strconv.FormatFloat(f, 'g', -1, 64) with fmt %v's exponent rule. */
void cv_fmt_float_g(struct buf *b, double f);
/* sprig toString: strings as is, nil "<nil>", others %v. */
void cv_to_string(struct buf *b, cv v);
/* Go's printf with the given args. */
void cv_sprintf(struct buf *b, const char *fmt, size_t fmtlen, const cv *args, size_t nargs);
/* Go %q quoting of a string. */
void cv_go_quote(struct buf *b, const char *s, size_t len);

/* encoding/json (escape_html as in json.Marshal); 0 ok, -1 unsupported */
int cv_to_json(struct buf *b, cv v, int escape_html, int indent);
/* Helm toYaml (json round trip then yaml.v2 emit); no trailing newline strip */
int cv_to_yaml(struct buf *b, cv v);

/* YAML (sigs.k8s.io/yaml typing: all numbers float64, YAML 1.1 bools,
 * non-string keys stringified). Parses the first document. Returns 0 or -1
 * with a message. *out is NIL for an empty document. */
int cv_from_yaml(struct cv_arena *a, const char *text, size_t len, cv *out, char *err, size_t errlen);
/* All documents of a stream as typed for output objects: integers stay
 * integers (CS_INT64), floats float64. */
int cv_from_yaml_doc(struct cv_arena *a, const char *text, size_t len, cv *out, int ints, char *err, size_t errlen);
/* JSON text to value; numbers float64 (or int64 if ints) */
int cv_from_json(struct cv_arena *a, const char *text, size_t len, cv *out, int ints, char *err, size_t errlen);

/* jansson bridge. to_jansson: integers as json_integer, floats json_real
 * unless integral (then integer). from_jansson: integers become int64 when
 * ints, else float64. */
json_t *cv_to_jansson(cv v);
/* same, but every float64 stays a json_real (keeps Helm's number typing) */
json_t *cv_to_jansson_exact(cv v);
cv cv_from_jansson(struct cv_arena *a, const json_t *j, int ints);

#endif
