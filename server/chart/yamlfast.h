/*
 * yamlfast: a fast reader for the block-style YAML subset that chart values
 * files and rendered Kubernetes manifests use. Internal to server/chart.
 *
 * yamlfast_parse() reports the nodes of the document to a sink, in document
 * order (the order in which libyaml's loader numbers them): a scalar with
 * its value and style, the start of a mapping or sequence (block or flow),
 * the end of the innermost open one. A mapping's children come as key,
 * value, key, value...; keys are always scalars. Every scalar has
 * libyaml's default tag (tag:yaml.org,2002:str), every collection its
 * default seq/map tag. Contract: when it returns 0, the events are exactly
 * the nodes of what yaml_parser_load() would produce for the first (and
 * only) document of TEXT; for an input without any document (empty, only
 * comments) there are no events at all. When it returns non-zero ("not
 * handled"), the events delivered so far mean nothing and the caller uses
 * libyaml (which reports its own errors); a sink callback returning
 * non-zero also stops it with "not handled". yaml.c's converter is a sink
 * that builds chart values directly.
 *
 * yamlfast_load() builds a libyaml yaml_document_t (the structures of
 * <yaml.h>: nodes, items, pairs, tags, scalar values) so that yaml.c's loader
 * converts it exactly as it converts what yaml_parser_load() produces.
 * Contract: it returns 0 only with a document that is EXACTLY what
 * yaml_parser_load() would produce for the first (and only) document of
 * TEXT: same node order, node types, collection styles, scalar values,
 * scalar styles and tags (libyaml's default str/seq/map tags, an empty plain
 * scalar for a missing value); marks and directives are left zero. For an
 * input without any document (empty, only comments) the document has no
 * nodes, as libyaml's.
 *
 * The nodes are not allocated one by one as libyaml's document API does
 * (a strdup of the tag and a copy of the value per node, then as many
 * frees, which cost more than the parsing): values and item arrays live in
 * a few arena blocks and tags point to libyaml's constant tag strings. So
 * the document is read-only and must be released with yamlfast_free(),
 * never with yaml_document_delete().
 *
 * Anything outside the subset, anything invalid and anything merely unusual
 * (anchors, aliases, tags, directives, complex keys, multi-line plain or
 * quoted scalars, tabs in indentation, '\r', a second document, bytes
 * libyaml rejects, ...) makes it return non-zero ("not handled") with
 * nothing allocated; the caller then uses libyaml, which reports its own
 * errors. yamlfast never reports errors itself.
 *
 * Memory: on success the caller owns *out and releases it with
 * yamlfast_free(). On failure *out is zeroed and holds nothing.
 *
 * Thread-safety: no shared state except the statistics counters and the
 * disable switch, which are atomics. Any number of threads may call it.
 */
#ifndef FERRY_CHART_YAMLFAST_H
#define FERRY_CHART_YAMLFAST_H

#include <stddef.h>
#include <yaml.h>

struct yamlfast_doc {
	yaml_document_t doc; /* read-only; not for yaml_document_delete() */
	void *mem;           /* private: arena blocks */
};

struct yamlfast_sink {
	/* a scalar node: S (N bytes, not NUL-terminated) is valid only during
	 * the call */
	int (*scalar)(void *ctx, const char *s, size_t n, yaml_scalar_style_t style);
	/* the start of a mapping (map != 0) or sequence; flow: flow style */
	int (*begin)(void *ctx, int map, int flow);
	/* the end of the innermost open mapping or sequence */
	int (*end)(void *ctx);
	void *ctx;
};

/* 0: the whole text was read and its nodes delivered to SINK; non-zero:
 * not handled (use libyaml). Counted in yamlfast_stats(). */
int yamlfast_parse(const char *text, size_t len, const struct yamlfast_sink *sink);

/* 0: out->doc holds the document; non-zero: not handled (use libyaml). */
int yamlfast_load(const char *text, size_t len, struct yamlfast_doc *out);
/* Release a document from yamlfast_load() (NULL or zeroed: no-op). */
void yamlfast_free(struct yamlfast_doc *d);

/* Counters of yamlfast_parse()/yamlfast_load() calls since start: handled
 * and not handled (either pointer may be NULL). For tests and benchmarks. */
void yamlfast_stats(size_t *hits, size_t *bails);

/* Non-zero: every yamlfast_parse()/yamlfast_load() call returns "not
 * handled" (counted as a bail). For A/B comparisons in tests and benchmarks. */
void yamlfast_set_disabled(int disabled);

/* Compare two libyaml documents node by node from their roots: node types,
 * collection styles, scalar values, scalar styles and tags. Returns 1 when
 * equal; 0 otherwise with a short description of the first difference in
 * why (if why is non-NULL). For tests and fuzzing. */
int yamlfast_doc_equal(yaml_document_t *a, yaml_document_t *b, char *why, size_t whylen);

#endif
