/*
 * yamljson.c: YAML <-> JSON conversion over libyaml's event parser.
 *
 * The parser walks events recursively: a mapping becomes an object, a
 * sequence an array, a scalar is typed by resolve_scalar(). Anchored nodes are
 * remembered (by reference) so that aliases can point at them; an alias
 * expansion budget stops "billion laughs" documents.
 */
#include "server/common/yamljson.h"
#include "server/common/buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 200
#define MAX_ANCHORS 1024
#define MAX_ALIAS_USES 10000
/* Nodes that alias expansion may copy in one stream. */
#define MAX_ALIAS_NODES 100000

struct anchor {
	char *name;
	json_t *value;
};

struct reader {
	yaml_parser_t parser;
	struct anchor anchors[MAX_ANCHORS];
	int nanchors;
	int alias_uses;
	long alias_nodes;
	char *err;
	size_t errlen;
	int failed;
};

static void fail_at(struct reader *r, const yaml_mark_t *mark, const char *msg)
{
	if (r->failed)
		return;
	r->failed = 1;
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "line %lu, column %lu: %s",
			 (unsigned long)mark->line + 1,
			 (unsigned long)mark->column + 1, msg);
}

static void fail_parser(struct reader *r)
{
	if (r->failed)
		return;
	r->failed = 1;
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "line %lu, column %lu: %s%s%s",
			 (unsigned long)r->parser.problem_mark.line + 1,
			 (unsigned long)r->parser.problem_mark.column + 1,
			 r->parser.problem ? r->parser.problem : "invalid YAML",
			 r->parser.context ? " " : "",
			 r->parser.context ? r->parser.context : "");
}

static int next_event(struct reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->parser, ev)) {
		fail_parser(r);
		return -1;
	}
	return 0;
}

/* Is s (len n) a YAML integer as Kubernetes reads it? Stores it in *out. */
static int parse_int(const char *s, json_int_t *out)
{
	const char *p = s;
	int neg = 0;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	if (!*p)
		return 0;
	int base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && p[1] == 'o') {
		base = 8;
		p += 2;
	}
	if (!*p)
		return 0;
	for (const char *q = p; *q; q++) {
		if (base == 16 ? !isxdigit((unsigned char)*q)
			       : !(*q >= '0' && *q <= (base == 8 ? '7' : '9')))
			return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(p, NULL, base);
	if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
		return 0;
	*out = neg ? -(json_int_t)v : (json_int_t)v;
	return 1;
}

static int parse_float(const char *s, double *out)
{
	if (!strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, ".INF") ||
	    !strcmp(s, "+.inf")) {
		*out = INFINITY;
		return 1;
	}
	if (!strcmp(s, "-.inf") || !strcmp(s, "-.Inf") || !strcmp(s, "-.INF")) {
		*out = -INFINITY;
		return 1;
	}
	/* digits with optional sign, one dot and an exponent */
	const char *p = s;
	int digits = 0;
	if (*p == '+' || *p == '-')
		p++;
	while (isdigit((unsigned char)*p)) {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			p++;
			digits++;
		}
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return 0;
	*out = strtod(s, NULL);
	return 1;
}

static json_t *resolve_scalar(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (tag && !strcmp(tag, YAML_STR_TAG))
		return json_stringn(s, n);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, n);
	if (strlen(s) != n) /* embedded NUL: keep as string */
		return json_stringn(s, n);
	if (n == 0 || !strcmp(s, "~") || !strcmp(s, "null") ||
	    !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	json_int_t i;
	if (parse_int(s, &i))
		return json_integer(i);
	double d;
	if (parse_float(s, &d))
		return json_real(d);
	return json_stringn(s, n);
}

static void remember_anchor(struct reader *r, const yaml_char_t *name,
			    json_t *value, const yaml_mark_t *mark)
{
	if (!name)
		return;
	if (r->nanchors >= MAX_ANCHORS) {
		fail_at(r, mark, "too many anchors");
		return;
	}
	r->anchors[r->nanchors].name = xstrdup((const char *)name);
	r->anchors[r->nanchors].value = json_incref(value);
	r->nanchors++;
}

static json_t *read_node(struct reader *r, yaml_event_t *ev, int depth);

/* Counts the nodes of v, stopping once the count passes limit. */
static long count_nodes(const json_t *v, long limit)
{
	long n = 1;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach((json_t *)v, k, c) {
			n += count_nodes(c, limit - n);
			if (n > limit)
				return n;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c) {
			n += count_nodes(c, limit - n);
			if (n > limit)
				return n;
		}
	}
	return n;
}

/* Reads nodes until the closing event of the current collection. */
static json_t *read_mapping(struct reader *r, yaml_event_t *start, int depth)
{
	json_t *obj = json_object();
	remember_anchor(r, start->data.mapping_start.anchor, obj, &start->start_mark);
	for (;;) {
		yaml_event_t kev;
		if (next_event(r, &kev))
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			return obj;
		}
		json_t *key = read_node(r, &kev, depth + 1);
		yaml_mark_t kmark = kev.start_mark;
		yaml_event_delete(&kev);
		if (!key)
			goto fail;
		yaml_event_t vev;
		if (next_event(r, &vev)) {
			json_decref(key);
			goto fail;
		}
		json_t *val = read_node(r, &vev, depth + 1);
		yaml_event_delete(&vev);
		if (!val) {
			json_decref(key);
			goto fail;
		}
		struct buf kb = BUF_INIT;
		if (json_is_string(key))
			buf_append(&kb, json_string_value(key), json_string_length(key));
		else if (json_is_integer(key))
			buf_printf(&kb, "%lld", (long long)json_integer_value(key));
		else if (json_is_real(key))
			buf_printf(&kb, "%g", json_real_value(key));
		else if (json_is_true(key))
			buf_puts(&kb, "true");
		else if (json_is_false(key))
			buf_puts(&kb, "false");
		else if (json_is_null(key))
			buf_puts(&kb, "null");
		else {
			buf_free(&kb);
			json_decref(key);
			json_decref(val);
			fail_at(r, &kmark, "mapping keys must be scalars");
			goto fail;
		}
		json_decref(key);
		if (!strcmp(buf_cstr(&kb), "<<") && json_is_object(val)) {
			/* merge key: copy entries that are not already set */
			const char *mk;
			json_t *mv;
			json_object_foreach(val, mk, mv) {
				if (!json_object_get(obj, mk))
					json_object_set(obj, mk, mv);
			}
			json_decref(val);
		} else {
			json_object_setn_new(obj, buf_cstr(&kb), kb.len, val);
		}
		buf_free(&kb);
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *read_sequence(struct reader *r, yaml_event_t *start, int depth)
{
	json_t *arr = json_array();
	remember_anchor(r, start->data.sequence_start.anchor, arr, &start->start_mark);
	for (;;) {
		yaml_event_t ev;
		if (next_event(r, &ev))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return arr;
		}
		json_t *item = read_node(r, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!item)
			goto fail;
		json_array_append_new(arr, item);
	}
fail:
	json_decref(arr);
	return NULL;
}

static json_t *read_node(struct reader *r, yaml_event_t *ev, int depth)
{
	if (depth > MAX_DEPTH) {
		fail_at(r, &ev->start_mark, "document nested too deeply");
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		json_t *v = resolve_scalar(ev);
		remember_anchor(r, ev->data.scalar.anchor, v, &ev->start_mark);
		return v;
	}
	case YAML_MAPPING_START_EVENT:
		return read_mapping(r, ev, depth);
	case YAML_SEQUENCE_START_EVENT:
		return read_sequence(r, ev, depth);
	case YAML_ALIAS_EVENT:
		if (++r->alias_uses > MAX_ALIAS_USES) {
			fail_at(r, &ev->start_mark, "too many alias expansions");
			return NULL;
		}
		for (int i = r->nanchors - 1; i >= 0; i--)
			if (!strcmp(r->anchors[i].name, (const char *)ev->data.alias.anchor)) {
				r->alias_nodes += count_nodes(r->anchors[i].value,
							      MAX_ALIAS_NODES);
				if (r->alias_nodes > MAX_ALIAS_NODES) {
					fail_at(r, &ev->start_mark,
						"alias expansion too large");
					return NULL;
				}
				return json_deep_copy(r->anchors[i].value);
			}
		fail_at(r, &ev->start_mark, "unknown alias");
		return NULL;
	default:
		fail_at(r, &ev->start_mark, "unexpected YAML event");
		return NULL;
	}
}

static void reader_free(struct reader *r)
{
	for (int i = 0; i < r->nanchors; i++) {
		free(r->anchors[i].name);
		json_decref(r->anchors[i].value);
	}
	r->nanchors = 0;
	yaml_parser_delete(&r->parser);
}

/* Reads documents; stops after the first one when all == 0. */
static json_t *read_stream(const char *text, size_t len, char *err,
			   size_t errlen, int all)
{
	struct reader *r = xcalloc(1, sizeof(*r));
	r->err = err;
	r->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	yaml_parser_initialize(&r->parser);
	yaml_parser_set_input_string(&r->parser, (const unsigned char *)text, len);

	json_t *docs = json_array();
	json_t *result = NULL;
	int done = 0;
	while (!done) {
		yaml_event_t ev;
		if (next_event(r, &ev))
			goto out;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT: {
			yaml_event_t nev;
			if (next_event(r, &nev)) {
				yaml_event_delete(&ev);
				goto out;
			}
			json_t *doc;
			if (nev.type == YAML_DOCUMENT_END_EVENT) {
				doc = json_null();
			} else {
				doc = read_node(r, &nev, 0);
				yaml_event_delete(&nev);
				if (!doc) {
					yaml_event_delete(&ev);
					goto out;
				}
				if (next_event(r, &nev)) { /* DOCUMENT_END */
					json_decref(doc);
					yaml_event_delete(&ev);
					goto out;
				}
			}
			yaml_event_delete(&nev);
			json_array_append_new(docs, doc);
			if (!all)
				done = 1;
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (all) {
		/* drop empty documents */
		json_t *kept = json_array();
		size_t i;
		json_t *d;
		json_array_foreach(docs, i, d) {
			if (!json_is_null(d))
				json_array_append(kept, d);
		}
		result = kept;
	} else {
		result = json_array_size(docs) ? json_incref(json_array_get(docs, 0))
					      : json_null();
	}
out:
	json_decref(docs);
	reader_free(r);
	free(r);
	return result;
}

json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
	return read_stream(text, len, err, errlen, 0);
}

json_t *yaml_stream_to_json(const char *text, size_t len, char *err, size_t errlen)
{
	return read_stream(text, len, err, errlen, 1);
}

/* ---- emitter ---------------------------------------------------------- */

/* Does a plain scalar with this text read back as the same string? */
static int needs_quotes(const char *s, size_t n)
{
	if (n == 0 || strlen(s) != n)
		return 1;
	yaml_event_t fake;
	memset(&fake, 0, sizeof(fake));
	fake.data.scalar.value = (yaml_char_t *)s;
	fake.data.scalar.length = n;
	fake.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
	json_t *v = resolve_scalar(&fake);
	int typed = !json_is_string(v);
	json_decref(v);
	if (typed)
		return 1;
	if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
		return 1;
	if (s[n - 1] == ' ' || s[n - 1] == '\t')
		return 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 1;
		if (c == ':' && (i + 1 == n || s[i + 1] == ' '))
			return 1;
		if (c == '#' && i > 0 && s[i - 1] == ' ')
			return 1;
	}
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "no") ||
	    !strcasecmp(s, "on") || !strcasecmp(s, "off") ||
	    !strcasecmp(s, "y") || !strcasecmp(s, "n"))
		return 1;
	return 0;
}

static void emit_string(struct buf *b, const char *s, size_t n)
{
	if (!needs_quotes(s, n)) {
		buf_append(b, s, n);
		return;
	}
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\r': buf_puts(b, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(b, "\\x%02x", c);
			else
				buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

static void emit_scalar(struct buf *b, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		emit_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		buf_printf(b, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL: {
		double d = json_real_value(v);
		if (isinf(d))
			buf_puts(b, d > 0 ? ".inf" : "-.inf");
		else if (isnan(d))
			buf_puts(b, ".nan");
		else {
			char tmp[64];
			snprintf(tmp, sizeof(tmp), "%.17g", d);
			/* keep it a float when read back */
			if (!strpbrk(tmp, ".eE"))
				strcat(tmp, ".0");
			buf_puts(b, tmp);
		}
		break;
	}
	case JSON_TRUE: buf_puts(b, "true"); break;
	case JSON_FALSE: buf_puts(b, "false"); break;
	default: buf_puts(b, "null"); break;
	}
}

static void indent_to(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_putc(b, ' ');
}

static int is_empty_collection(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0);
}

static void emit_node(struct buf *b, const json_t *v, int indent);

/* Emits the value of a key or list item that follows "key:" or "- ". */
static void emit_value_after(struct buf *b, const json_t *v, int indent, int in_list)
{
	if (json_is_object(v) && json_object_size(v)) {
		if (in_list) {
			/* first key on the same line as the dash */
			emit_node(b, v, indent);
		} else {
			buf_putc(b, '\n');
			indent_to(b, indent);
			emit_node(b, v, indent);
		}
	} else if (json_is_array(v) && json_array_size(v)) {
		buf_putc(b, '\n');
		indent_to(b, indent);
		emit_node(b, v, indent);
	} else if (is_empty_collection(v)) {
		buf_puts(b, json_is_object(v) ? "{}" : "[]");
	} else {
		emit_scalar(b, v);
	}
}

/* Emits v whose first line starts at the current position, later lines at
 * indent spaces. */
static void emit_node(struct buf *b, const json_t *v, int indent)
{
	if (json_is_object(v) && json_object_size(v)) {
		const char *k;
		json_t *child;
		int first = 1;
		json_object_foreach((json_t *)v, k, child) {
			if (!first) {
				buf_putc(b, '\n');
				indent_to(b, indent);
			}
			first = 0;
			emit_string(b, k, strlen(k));
			buf_putc(b, ':');
			if (!(json_is_object(child) && json_object_size(child)) &&
			    !(json_is_array(child) && json_array_size(child)))
				buf_putc(b, ' ');
			emit_value_after(b, child, indent + 2, 0);
		}
	} else if (json_is_array(v) && json_array_size(v)) {
		size_t i;
		json_t *child;
		json_array_foreach((json_t *)v, i, child) {
			if (i) {
				buf_putc(b, '\n');
				indent_to(b, indent);
			}
			buf_puts(b, "- ");
			if (json_is_array(child) && json_array_size(child)) {
				emit_node(b, child, indent + 2);
			} else {
				emit_value_after(b, child, indent + 2, 1);
			}
		}
	} else {
		emit_value_after(b, v, indent, 0);
	}
}

char *json_to_yaml(const json_t *value)
{
	struct buf b = BUF_INIT;
	emit_node(&b, value, 0);
	buf_putc(&b, '\n');
	return buf_steal(&b);
}
