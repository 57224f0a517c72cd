/*
 * chart.c: loading charts, merging values and rendering (see chart.h).
 *
 * Rendering follows Helm's engine: the user values are coalesced over the
 * chart defaults, one shared root object (.Values .Release .Chart
 * .Capabilities .Template .Files) is built, every template not starting with
 * "_" is executed in Helm's order (deepest path first, then reverse
 * bytewise), "<no value>" is blanked, NOTES.txt dropped, each file split on
 * Helm's "---" separator regex, each document parsed (hooks found through
 * the helm.sh/hook annotation) and the result stably sorted by Helm's
 * install order.
 */
#define _GNU_SOURCE
#include "server/chart/chart.h"
#include "server/chart/archive.h"
#include "server/chart/helmignore.h"
#include "server/chart/cv.h"
#include "server/chart/tmpl.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>

/* nested template/include calls allowed (Go: 100000; include: 1000 per name) */
#define CHART_MAX_TEMPLATE_DEPTH 10000
#define CHART_RENDER_STACK ((size_t)256 * 1024 * 1024)

struct chart_tpl {
	const char *name;
	const char *text;
	size_t len;
	int depth;          /* '/' in name: the sort key of Helm's render order */
};

struct chart {
	struct cv_arena *a;
	const char *name, *version, *app_version, *kube_constraint;
	cv meta;            /* .Chart (struct-like map) */
	cv defaults;        /* values.yaml */
	cv schema;          /* values.schema.json (NIL when absent) */
	char *schema_err;   /* values.schema.json did not parse */
	struct cv_files files;
	struct chart_tpl *tpls;
	size_t ntpls;
	struct tdefs defs;
	char *parse_err;
	char **owned;       /* file buffers the chart took over */
	size_t nowned;
};

struct doc {
	const char *source;
	char *text;
	size_t len;
	const char *kind;
	int rank;
	cv obj;
	int hook;
	json_t *events;
	size_t seq;
};

struct chart_render {
	struct cv_arena *a;          /* keeps the parsed objects */
	struct doc *docs;            /* documents and hooks, install order */
	size_t ndocs;
	cv vals;
	pthread_mutex_t mu;          /* JSON views are built on first use */
	json_t *docs_json, *hooks_json, *values_json;
	char *manifest, *output;
};

/* ---------------------------------------------------------------- loading */

/* a chart file: data/len is its text (a BOM skipped), mem what to free
 * (NULL when the data live in an archive's blob) */
struct rawfile { char *name; char *data; size_t len; char *mem; };

static int cmp_name(const void *x, const void *y)
{
	return strcmp(((const struct rawfile *)x)->name, ((const struct rawfile *)y)->name);
}

static int depth_of(const char *s)
{
	int d = 0;
	for (; *s; s++)
		if (*s == '/') d++;
	return d;
}

static int cmp_exec_order(const void *x, const void *y)
{
	const struct chart_tpl *a = x, *b = y;
	if (a->depth != b->depth)
		return b->depth - a->depth;
	return -strcmp(a->name, b->name);
}

static const char *meta_str(struct cv_arena *ar, cv m, const char *key)
{
	cv *v = m.kind == CV_MAP ? cv_map_gets(m.u.map, key) : NULL;
	if (!v || v->kind == CV_NIL)
		return "";
	if (v->kind == CV_STR)
		return v->u.str.s;
	struct buf b = BUF_INIT;
	cv_fmt_v(&b, *v);
	char *s = cv_strndup(ar, b.data ? b.data : "", b.len);
	buf_free(&b);
	return s;
}

static cv build_meta(struct cv_arena *ar, cv raw)
{
	static const struct { const char *json, *go; int str; } fields[] = {
		{ "name", "Name", 1 }, { "home", "Home", 1 }, { "sources", "Sources", 0 },
		{ "version", "Version", 1 }, { "description", "Description", 1 },
		{ "keywords", "Keywords", 0 }, { "maintainers", "Maintainers", 0 },
		{ "icon", "Icon", 1 }, { "apiVersion", "APIVersion", 1 }, { "condition", "Condition", 1 },
		{ "tags", "Tags", 1 }, { "appVersion", "AppVersion", 1 }, { "deprecated", "Deprecated", 2 },
		{ "annotations", "Annotations", 0 }, { "kubeVersion", "KubeVersion", 1 },
		{ "dependencies", "Dependencies", 0 }, { "type", "Type", 1 }, { NULL, NULL, 0 },
	};
	cv m = cv_map_new(ar, 20);
	m.sub = CS_STRUCT;
	for (int i = 0; fields[i].json; i++) {
		cv val;
		cv *v = raw.kind == CV_MAP ? cv_map_gets(raw.u.map, fields[i].json) : NULL;
		if (fields[i].str == 1)
			val = cv_cstr(ar, meta_str(ar, raw, fields[i].json));
		else if (fields[i].str == 2)
			val = cv_bool(v && cv_truthy(*v));
		else
			val = v ? *v : cv_nil();
		cv_map_set(ar, m.u.map, fields[i].go, strlen(fields[i].go), val);
	}
	cv_map_set(ar, m.u.map, "IsRoot", 6, cv_bool(1));
	return m;
}

/*
 * Parallel loading. Parsing a chart's files (values.yaml,
 * values.schema.json, every template) costs about as much as inflating the
 * archive, and the files are independent of each other, so the work is
 * shared by two threads. While the main thread inflates a .tgz, the archive
 * reader reports every entry that is complete and it is queued (Helm writes
 * Chart.yaml, values.yaml and values.schema.json first, then the
 * templates), and a worker thread parses queued entries as they arrive.
 * When the archive is read, the main thread takes what is still queued
 * itself, waits for the worker, and assembles the chart from the per-file
 * results in Helm's order, so the outcome does not depend on which thread
 * parsed what. Directory charts use the same queue, filled at once.
 *
 * Each template is parsed into a definition table of its own; the tables
 * are merged in Helm's parse order (the last definition wins), exactly as
 * if the files had been parsed one after the other. Template names start
 * with the chart's name, so templates are parsed early only after the
 * Chart.yaml entry has been read; results are matched to the final files
 * by their data pointer, and the queue is dropped if the archive buffer
 * ever has to move (a lying gzip size field).
 */
enum ekind { EK_CHART, EK_VALUES, EK_SCHEMA, EK_TEMPLATE };
enum estate { ES_PENDING, ES_BUSY, ES_DONE };

struct eitem {
	enum ekind kind;
	enum estate state;
	const char *data;        /* text (after a BOM); stays valid */
	size_t len;
	char *rel;               /* path inside the chart (malloc'd) */
	int parsed;              /* 0: not parsed (leave it to the assembler) */
	int rc;                  /* parse result: 0 ok */
	cv v;                    /* values / schema / Chart.yaml */
	struct tdefs *defs;      /* template: its own definitions */
	char *err;               /* parse error (malloc'd) */
};

struct early {
	pthread_mutex_t mu;
	pthread_cond_t cond;     /* an item finished, or items were queued */
	struct eitem *items;     /* realloc'd under mu: index, never point */
	size_t n, cap, next;     /* next: first item nobody has taken */
	int closed;              /* no more items will be queued */
	int started, joined;
	int sleeping;            /* threads waiting on cond */
	pthread_t th;
	struct cv_arena *wa;     /* the worker's arena (merged into the chart) */
	char *chart_name;        /* from the Chart.yaml item, once parsed */
	int chart_state;         /* 0 not queued, 1 queued, 2 parsed */
	size_t chart_idx;
};

static void early_init(struct early *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
}

/* parse one item's text into arena a; fills the result fields of *it */
static void early_parse(struct early *e, struct eitem *it, struct cv_arena *a)
{
	char err[1024];
	err[0] = 0;
	it->parsed = 1;
	switch (it->kind) {
	case EK_CHART:
	case EK_VALUES:
		it->rc = cv_from_yaml(a, it->data, it->len, &it->v, err, sizeof(err));
		break;
	case EK_SCHEMA:
		it->rc = cv_from_json(a, it->data, it->len, &it->v, 0, err, sizeof(err));
		break;
	case EK_TEMPLATE: {
		/* the chart's name is known: the caller waited for it */
		const char *cn = e->chart_name;
		if (!cn || !*cn) {
			it->parsed = 0;
			break;
		}
		size_t nl = strlen(cn) + 1 + strlen(it->rel) + 1;
		char *full = cv_alloc(a, nl);
		snprintf(full, nl, "%s/%s", cn, it->rel);
		it->defs = cv_alloc(a, sizeof(struct tdefs));
		it->rc = tmpl_parse(a, it->defs, full, it->data, it->len, err, sizeof(err));
		break;
	}
	}
	if (it->parsed && it->rc)
		it->err = xstrdup(err);
}

/*
 * Take the next queued item and parse it (into arena a). Returns 1 when it
 * did some work, 0 when nothing is queued. Called with mu held; returns
 * with mu held.
 */
static int early_take_one(struct early *e, struct cv_arena *a)
{
	if (e->next >= e->n)
		return 0;
	/* claim the item before any wait, so that no other thread takes it */
	size_t idx = e->next++;
	e->items[idx].state = ES_BUSY;
	if (e->items[idx].kind == EK_TEMPLATE)
		while (e->chart_state == 1 && e->items[e->chart_idx].state != ES_DONE)
			pthread_cond_wait(&e->cond, &e->mu);   /* its name is needed */
	struct eitem it = e->items[idx];
	pthread_mutex_unlock(&e->mu);
	early_parse(e, &it, a);
	pthread_mutex_lock(&e->mu);
	if (it.kind == EK_CHART && it.rc == 0 && it.v.kind == CV_MAP) {
		cv *nm = cv_map_gets(it.v.u.map, "name");
		if (nm && nm->kind == CV_STR)
			e->chart_name = xstrdup(nm->u.str.s);
		e->chart_state = 2;
	}
	it.state = ES_DONE;
	e->items[idx] = it;
	pthread_cond_broadcast(&e->cond);
	return 1;
}

static void *early_worker(void *arg)
{
	struct early *e = arg;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		if (early_take_one(e, e->wa))
			continue;
		if (e->closed)
			break;
		e->sleeping++;
		pthread_cond_wait(&e->cond, &e->mu);
		e->sleeping--;
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* queue one entry (main thread) and wake the worker if it sleeps */
static void early_add(struct early *e, enum ekind kind, const char *rel, const char *data, size_t len)
{
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) {
		data += 3;
		len -= 3;
	}
	pthread_mutex_lock(&e->mu);
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 256;
		e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
	}
	struct eitem *it = &e->items[e->n];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->data = data;
	it->len = len;
	it->rel = xstrdup(rel);
	if (kind == EK_CHART) {
		e->chart_state = 1;
		e->chart_idx = e->n;
	}
	e->n++;
	if (e->sleeping)
		pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

/* start the worker thread */
static void early_start(struct early *e)
{
	if (!e->started) {
		e->wa = cv_arena_new();
		if (pthread_create(&e->th, NULL, early_worker, e) == 0)
			e->started = 1;
	}
}

/* the kind of work a chart file gives the queue; -1: none */
static int early_kind(const char *rel, int chart_seen)
{
	if (!strcmp(rel, "Chart.yaml"))
		return chart_seen ? -1 : EK_CHART;
	if (!strcmp(rel, "values.yaml"))
		return EK_VALUES;
	if (!strcmp(rel, "values.schema.json"))
		return EK_SCHEMA;
	if (!strncmp(rel, "templates/", 10) && chart_seen)
		return EK_TEMPLATE;
	return -1;
}

/*
 * No more items: help with what is still queued (on arena a), then wait for
 * the worker. Afterwards the items are only read.
 */
static void early_finish(struct early *e, struct cv_arena *a)
{
	pthread_mutex_lock(&e->mu);
	e->closed = 1;
	pthread_cond_broadcast(&e->cond);
	while (early_take_one(e, a))
		;
	pthread_mutex_unlock(&e->mu);
	if (e->started && !e->joined) {
		pthread_join(e->th, NULL);
		e->joined = 1;
	}
}

/* the parsed item for this file text, or NULL */
static struct eitem *early_find(struct early *e, const char *data, size_t len)
{
	if (!e)
		return NULL;
	for (size_t i = 0; i < e->n; i++)
		if (e->items[i].data == data && e->items[i].len == len && e->items[i].parsed)
			return &e->items[i];
	return NULL;
}

/* stop the worker and forget every item (their pointers are about to go
 * stale); nothing queued is parsed any more */
static void early_drop(struct early *e)
{
	pthread_mutex_lock(&e->mu);
	e->closed = 1;
	e->next = e->n;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
	if (e->started && !e->joined) {
		pthread_join(e->th, NULL);
		e->joined = 1;
	}
	for (size_t i = 0; i < e->n; i++) {
		free(e->items[i].rel);
		free(e->items[i].err);
	}
	e->n = e->next = 0;
	e->chart_state = 0;
}

/* release everything; the worker's arena goes to dst (or is freed) */
static void early_free(struct early *e, struct cv_arena *dst)
{
	early_drop(e);
	free(e->items);
	free(e->chart_name);
	if (e->wa) {
		if (dst)
			cv_arena_merge(dst, e->wa);
		else
			cv_arena_free(e->wa);
	}
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
}

/*
 * Archive entry callback (main thread): queue the entries worth parsing
 * early. name == NULL: the buffer is about to move, drop everything.
 */
static int early_entry(void *ctx, const char *name, const char *data, size_t len)
{
	struct early *e = ctx;
	if (!name) {
		early_drop(e);
		return 1;
	}
	int k = early_kind(name, e->chart_state != 0);
	if (k >= 0)
		early_add(e, (enum ekind)k, name, data, len);
	return 0;
}

/* parse a file's text unless the early queue already did: 0, or -1 with
 * the parser's message in perr */
static int parse_item(struct early *e, struct cv_arena *a, enum ekind kind, const struct rawfile *f,
		      cv *out, char *perr, size_t perrlen)
{
	struct eitem *done = early_find(e, f->data, f->len);
	struct eitem it;
	if (done)
		it = *done;
	else {
		memset(&it, 0, sizeof(it));
		it.kind = kind;
		it.data = f->data;
		it.len = f->len;
		early_parse(NULL, &it, a);
	}
	*out = it.v;
	if (it.rc)
		snprintf(perr, perrlen, "%s", it.err ? it.err : "parse error");
	if (!done)
		free(it.err);
	return it.rc ? -1 : 0;
}

/* the threshold below which a directory chart is parsed on one thread */
#define EARLY_MIN_TEMPLATES 8

static struct chart *chart_from_files(struct rawfile *rf, size_t n, struct early *e, char *err, size_t errlen)
{
	struct chart *c = xcalloc(1, sizeof(*c));
	c->a = cv_arena_new();
	struct rawfile *chartyaml = NULL, *values = NULL, *schema = NULL;
	struct early local;
	int own_early = 0;
	char perr[1024];
	cv v;
	if (n)
		qsort(rf, n, sizeof(*rf), cmp_name);
	size_t ntpl = 0, nfiles = 0;
	for (size_t i = 0; i < n; i++) {
		/* skip a UTF-8 BOM (the early queue skips it the same way) */
		if (rf[i].len >= 3 && !memcmp(rf[i].data, "\xef\xbb\xbf", 3)) {
			rf[i].data += 3;
			rf[i].len -= 3;
		}
		if (!strcmp(rf[i].name, "Chart.yaml")) chartyaml = &rf[i];
		else if (!strcmp(rf[i].name, "values.yaml")) values = &rf[i];
		else if (!strcmp(rf[i].name, "values.schema.json")) schema = &rf[i];
		else if (!strncmp(rf[i].name, "templates/", 10)) ntpl++;
		else nfiles++;
	}
	if (!chartyaml) {
		snprintf(err, errlen, "Chart.yaml file is missing");
		goto fail;
	}
	/* a directory chart: queue everything now and parse on two threads */
	if (!e && ntpl >= EARLY_MIN_TEMPLATES) {
		early_init(&local);
		own_early = 1;
		e = &local;
		early_add(e, EK_CHART, chartyaml->name, chartyaml->data, chartyaml->len);
		if (values)
			early_add(e, EK_VALUES, values->name, values->data, values->len);
		if (schema)
			early_add(e, EK_SCHEMA, schema->name, schema->data, schema->len);
		for (size_t i = 0; i < n; i++)
			if (!strncmp(rf[i].name, "templates/", 10))
				early_add(e, EK_TEMPLATE, rf[i].name, rf[i].data, rf[i].len);
		early_start(e);
	}
	if (e)
		early_finish(e, c->a);
	if (parse_item(e, c->a, EK_CHART, chartyaml, &v, perr, sizeof(perr))) {
		snprintf(err, errlen, "cannot load Chart.yaml: %s", perr);
		goto fail;
	}
	cv raw = v;
	c->meta = build_meta(c->a, raw);
	c->name = meta_str(c->a, raw, "name");
	c->version = meta_str(c->a, raw, "version");
	c->app_version = meta_str(c->a, raw, "appVersion");
	c->kube_constraint = meta_str(c->a, raw, "kubeVersion");
	if (!*c->name) {
		snprintf(err, errlen, "validation: chart.metadata.name is required");
		goto fail;
	}
	if (strchr(c->name, '/') || strstr(c->name, "..")) {
		snprintf(err, errlen, "validation: chart.metadata.name %s is invalid", c->name);
		goto fail;
	}
	c->defaults = cv_map_new(c->a, 0);
	if (values) {
		if (parse_item(e, c->a, EK_VALUES, values, &v, perr, sizeof(perr))) {
			snprintf(err, errlen, "cannot load values.yaml: %s", perr);
			goto fail;
		}
		if (v.kind == CV_MAP)
			c->defaults = v;
		else if (v.kind != CV_NIL) {
			snprintf(err, errlen, "cannot load values.yaml: top level is not a map");
			goto fail;
		}
	}
	if (schema) {
		if (parse_item(e, c->a, EK_SCHEMA, schema, &v, perr, sizeof(perr))) {
			c->schema = cv_nil();
			c->schema_err = xstrdup(perr);
		} else
			c->schema = v;
	}
	c->tpls = cv_alloc(c->a, (ntpl + 1) * sizeof(struct chart_tpl));
	c->owned = xcalloc(n + 1, sizeof(char *));
	c->files.files = cv_alloc(c->a, (nfiles + 1) * sizeof(struct cv_file));
	for (size_t i = 0; i < n; i++) {
		const char *nm = rf[i].name;
		if (&rf[i] == chartyaml || &rf[i] == values || &rf[i] == schema)
			continue;
		if (!strncmp(nm, "templates/", 10)) {
			struct chart_tpl *t = &c->tpls[c->ntpls++];
			size_t nl = strlen(c->name) + 1 + strlen(nm) + 1;
			char *full = cv_alloc(c->a, nl);
			snprintf(full, nl, "%s/%s", c->name, nm);
			t->name = full;
			t->depth = depth_of(full);
			t->text = rf[i].data;
			t->len = rf[i].len;
			if (rf[i].mem)
				c->owned[c->nowned++] = rf[i].mem;
			rf[i].mem = NULL;
			continue;
		}
		if (!strcmp(nm, "Chart.lock") || !strncmp(nm, "charts/", 7) ||
		    !strcmp(nm, "requirements.yaml") || !strcmp(nm, "requirements.lock"))
			continue;
		struct cv_file *f = &c->files.files[c->files.n++];
		f->name = cv_strndup(c->a, nm, strlen(nm));
		f->data = rf[i].data;
		f->len = rf[i].len;
		if (rf[i].mem)
			c->owned[c->nowned++] = rf[i].mem;
		rf[i].mem = NULL;
	}
	if (c->ntpls)
		qsort(c->tpls, c->ntpls, sizeof(*c->tpls), cmp_exec_order);
	/* definitions in Helm's parse order: the last definition of a name wins */
	int early_names = e && e->chart_name && !strcmp(e->chart_name, c->name);
	for (size_t i = 0; i < c->ntpls; i++) {
		struct chart_tpl *t = &c->tpls[i];
		struct eitem *done = early_names ? early_find(e, t->text, t->len) : NULL;
		if (done && !done->rc) {
			tmpl_defs_merge(c->a, &c->defs, done->defs);
			continue;
		}
		if (done) {
			c->parse_err = xstrdup(done->err ? done->err : "parse error");
			break;
		}
		if (tmpl_parse(c->a, &c->defs, t->name, t->text, t->len, perr, sizeof(perr))) {
			c->parse_err = xstrdup(perr);
			break;
		}
	}
	if (own_early)
		early_free(&local, c->a);
	return c;
fail:
	if (own_early)
		early_free(&local, c->a);
	chart_free(c);
	return NULL;
}

static void free_raw(struct rawfile *rf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rf[i].name);
		free(rf[i].mem);
	}
	free(rf);
}

struct chart *chart_load_files(const char *const *names, const char *const *contents, size_t n,
			       char *err, size_t errlen)
{
	struct rawfile *rf = xcalloc(n + 1, sizeof(*rf));
	for (size_t i = 0; i < n; i++) {
		rf[i].name = xstrdup(names[i]);
		rf[i].len = strlen(contents[i]);
		rf[i].data = rf[i].mem = xstrndup(contents[i], rf[i].len);
	}
	struct chart *c = chart_from_files(rf, n, NULL, err, errlen);
	free_raw(rf, n);
	return c;
}

struct chart *chart_load_archive(const void *data, size_t len, char *err, size_t errlen)
{
	struct archive ar;
	struct early e;
	struct chart *c = NULL;
	early_init(&e);
	early_start(&e);    /* the worker thread starts while the file is inflated */
	if (archive_read_tgz_progress(data, len, &ar, early_entry, &e, err, errlen))
		goto out;
	struct rawfile *rf = xcalloc(ar.n + 1, sizeof(*rf));
	for (size_t i = 0; i < ar.n; i++) {
		rf[i].name = ar.e[i].name;
		rf[i].data = ar.e[i].data;
		rf[i].len = ar.e[i].len;
		ar.e[i].name = ar.e[i].data = NULL;
	}
	size_t n = ar.n;
	c = chart_from_files(rf, n, &e, err, errlen);
	free_raw(rf, n);
	early_drop(&e);     /* the worker is done with the blob (also on failure) */
	if (c) {
		/* the files' data live in the archive's blob: the chart keeps it
		 * (owned has a spare slot) */
		c->owned[c->nowned++] = ar.blob;
		ar.blob = NULL;
	}
	archive_free(&ar);
out:
	/* the worker's results live in its arena: keep them with the chart */
	early_free(&e, c ? c->a : NULL);
	return c;
}

static int read_file(const char *path, char **data, size_t *len, size_t max)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct buf b = BUF_INIT;
	char tmp[65536];
	size_t r;
	while ((r = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		buf_append(&b, tmp, r);
		if (b.len > max) {
			fclose(f);
			buf_free(&b);
			errno = EFBIG;
			return -1;
		}
	}
	int e = ferror(f);
	fclose(f);
	if (e) {
		buf_free(&b);
		return -1;
	}
	*len = b.len;
	*data = buf_steal(&b);
	return 0;
}

struct dirwalk {
	struct rawfile *rf;
	size_t n, cap;
	size_t total;
	const struct helmignore *ign;   /* the chart's .helmignore rules */
	char *err;
	size_t errlen;
};

static int walk_dir(struct dirwalk *W, const char *root, const char *rel, int depth)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(W->err, W->errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		char r2[4096], p2[4096];
		if ((size_t)snprintf(r2, sizeof(r2), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= sizeof(r2) ||
		    (size_t)snprintf(p2, sizeof(p2), "%s/%s", root, r2) >= sizeof(p2)) {
			snprintf(W->err, W->errlen, "path too long under %s", root);
			rc = -1;
			break;
		}
		struct stat st;
		if (stat(p2, &st))
			continue;
		/* an ignored directory is skipped with everything below it */
		if (helmignore_ignored(W->ign, r2, S_ISDIR(st.st_mode)))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 32) {
				snprintf(W->err, W->errlen, "%s: directory tree too deep", p2);
				rc = -1;
			} else if (strcmp(r2, "charts") && strcmp(de->d_name, ".git"))
				rc = walk_dir(W, root, r2, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (W->n >= CHART_MAX_ENTRIES) {
			snprintf(W->err, W->errlen, "chart directory: more than %d files", CHART_MAX_ENTRIES);
			rc = -1;
			break;
		}
		if (W->n == W->cap) {
			W->cap = W->cap ? W->cap * 2 : 64;
			W->rf = xrealloc(W->rf, W->cap * sizeof(*W->rf));
		}
		struct rawfile *f = &W->rf[W->n];
		if (read_file(p2, &f->data, &f->len, CHART_MAX_FILE_SIZE)) {
			snprintf(W->err, W->errlen, "cannot read %s: %s", p2, strerror(errno));
			rc = -1;
			break;
		}
		f->mem = f->data;
		W->total += f->len;
		if (W->total > CHART_MAX_TOTAL_SIZE) {
			free(f->data);
			snprintf(W->err, W->errlen, "chart directory larger than %u bytes", CHART_MAX_TOTAL_SIZE);
			rc = -1;
			break;
		}
		f->name = xstrdup(r2);
		W->n++;
	}
	closedir(d);
	return rc;
}

struct chart *chart_load(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		/* .helmignore applies to directories (archives were filtered when
		 * they were packaged), with Helm's default rule added */
		char ipath[4096];
		char *itext = NULL;
		size_t ilen = 0;
		snprintf(ipath, sizeof(ipath), "%s/.helmignore", path);
		if (read_file(ipath, &itext, &ilen, CHART_MAX_FILE_SIZE) && errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: %s", ipath, strerror(errno));
			return NULL;
		}
		struct helmignore *ign = helmignore_parse(itext, ilen, err, errlen);
		free(itext);
		if (!ign)
			return NULL;
		struct dirwalk W = { 0 };
		W.ign = ign;
		W.err = err;
		W.errlen = errlen;
		int rc = walk_dir(&W, path, "", 0);
		helmignore_free(ign);
		if (rc) {
			free_raw(W.rf, W.n);
			return NULL;
		}
		struct chart *c = chart_from_files(W.rf, W.n, NULL, err, errlen);
		free_raw(W.rf, W.n);
		return c;
	}
	char *data;
	size_t len;
	if (read_file(path, &data, &len, 64u * 1024 * 1024)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct chart *c = chart_load_archive(data, len, err, errlen);
	free(data);
	return c;
}

const char *chart_name(const struct chart *c) { return c->name; }
const char *chart_version(const struct chart *c) { return c->version; }
const char *chart_app_version(const struct chart *c) { return c->app_version; }

void chart_free(struct chart *c)
{
	if (!c)
		return;
	cv_arena_free(c->a);
	free(c->parse_err);
	free(c->schema_err);
	for (size_t i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c);
}

/* ---------------------------------------------------------------- values */

static json_t *float_numbers(json_t *j)
{
	/* turn json integers into reals (values-file numbers are float64) */
	if (json_is_integer(j))
		return json_real((double)json_integer_value(j));
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(j, tmp, k, v)
			if (json_is_integer(v) || json_is_object(v) || json_is_array(v))
				json_object_set_new(j, k, float_numbers(v));
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			json_t *v = json_array_get(j, i);
			if (json_is_integer(v) || json_is_object(v) || json_is_array(v))
				json_array_set_new(j, i, float_numbers(v));
		}
	}
	return json_incref(j);
}

json_t *chart_values_parse(const char *yaml, size_t len, char *err, size_t errlen)
{
	struct cv_arena *a = cv_arena_new();
	cv v;
	json_t *r = NULL;
	if (cv_from_yaml(a, yaml, len, &v, err, errlen) == 0) {
		if (v.kind == CV_NIL)
			r = json_object();
		else if (v.kind != CV_MAP)
			snprintf(err, errlen, "values: top level is not a map");
		else {
			r = cv_to_jansson(v);
			json_t *f = float_numbers(r);
			json_decref(r);
			r = f;
		}
	}
	cv_arena_free(a);
	return r;
}

static void merge_maps(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)src, k, v) {
		json_t *d = json_object_get(dst, k);
		if (json_is_object(v) && json_is_object(d)) {
			json_t *copy = json_deep_copy(d);
			merge_maps(copy, v);
			json_object_set_new(dst, k, copy);
		} else {
			json_object_set_new(dst, k, json_deep_copy(v));
		}
	}
}

/* Helm strvals grammar */
struct setp {
	const char *s;
	size_t len, pos;
	int mode; /* 0 typed, 1 string, 2 json */
	char *err;
	size_t errlen;
};

static int sp_until(struct setp *p, const char *stop, struct buf *out, char *last)
{
	buf_reset(out);
	while (p->pos < p->len) {
		char c = p->s[p->pos++];
		if (strchr(stop, c) && c) {
			*last = c;
			return 0;
		}
		if (c == '\\' && p->pos < p->len)
			c = p->s[p->pos++];
		buf_putc(out, c);
	}
	*last = 0;
	return 1; /* eof */
}

static json_t *sp_typed(struct setp *p, const char *v)
{
	if (p->mode == 1)
		return json_string(v);
	if (!strcasecmp(v, "true")) return json_true();
	if (!strcasecmp(v, "false")) return json_false();
	if (!strcasecmp(v, "null")) return json_null();
	if (!strcmp(v, "0")) return json_integer(0);
	if (v[0] && v[0] != '0') {
		char *end;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (!*end && !errno && !(v[0] == '+' && 0) && v[0] != ' ' && v[0] != '\t')
			return json_integer(x);
	}
	return json_string(v);
}

static int sp_value(struct setp *p, json_t **out)
{
	struct buf b = BUF_INIT;
	char last;
	if (p->mode == 2) {
		json_error_t je;
		json_t *j = json_loadb(p->s + p->pos, p->len - p->pos, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
		if (!j) {
			snprintf(p->err, p->errlen, "invalid JSON value: %s", je.text);
			return -1;
		}
		p->pos += (size_t)je.position;
		while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n')) p->pos++;
		if (p->pos < p->len) {
			if (p->s[p->pos] != ',') {
				json_decref(j);
				snprintf(p->err, p->errlen, "unexpected data after JSON value");
				return -1;
			}
			p->pos++;
		}
		json_t *f = float_numbers(j);
		json_decref(j);
		*out = f;
		return 0;
	}
	if (p->pos >= p->len || p->s[p->pos] != '{') {
		sp_until(p, ",", &b, &last);
		*out = sp_typed(p, buf_cstr(&b));
		buf_free(&b);
		return 0;
	}
	p->pos++;
	json_t *list = json_array();
	for (;;) {
		int eof = sp_until(p, ",}", &b, &last);
		if (eof) {
			buf_free(&b);
			*out = list;
			snprintf(p->err, p->errlen, "list must terminate with '}'");
			return -1;
		}
		json_array_append_new(list, sp_typed(p, buf_cstr(&b)));
		if (last == '}') {
			if (p->pos < p->len && p->s[p->pos] == ',')
				p->pos++;
			buf_free(&b);
			*out = list;
			return 0;
		}
	}
}

static int sp_index(struct setp *p, int *idx)
{
	struct buf b = BUF_INIT;
	char last;
	if (sp_until(p, "]", &b, &last)) {
		buf_free(&b);
		snprintf(p->err, p->errlen, "error parsing index: missing ']'");
		return -1;
	}
	char *end;
	long v = strtol(buf_cstr(&b), &end, 10);
	int bad = !b.len || *end;
	buf_free(&b);
	if (bad) {
		snprintf(p->err, p->errlen, "error parsing index: not a number");
		return -1;
	}
	if (v < 0 || v > 65536) {
		snprintf(p->err, p->errlen, "index %ld out of range", v);
		return -1;
	}
	*idx = (int)v;
	return 0;
}

static void set_index(json_t *list, int i, json_t *v)
{
	while ((int)json_array_size(list) <= i)
		json_array_append_new(list, json_null());
	json_array_set_new(list, (size_t)i, v);
}

static int sp_key(struct setp *p, json_t *data, int depth);

static int sp_list_item(struct setp *p, json_t *list, int i, int depth)
{
	struct buf k = BUF_INIT;
	char last;
	if (depth > 100) {
		snprintf(p->err, p->errlen, "nesting too deep");
		return -1;
	}
	int eof = sp_until(p, "[.=", &k, &last);
	int rc = 0;
	if (k.len) {
		snprintf(p->err, p->errlen, "unexpected data at end of array index: \"%s\"", k.data);
		rc = -1;
	} else if (eof) {
	} else if (last == '=') {
		json_t *v = NULL;
		rc = sp_value(p, &v);
		if (v)
			set_index(list, i, v);
	} else if (last == '[') {
		int j;
		if (sp_index(p, &j)) {
			rc = -1;
		} else {
			json_t *inner = (size_t)i < json_array_size(list) && json_is_array(json_array_get(list, (size_t)i))
				? json_incref(json_array_get(list, (size_t)i)) : json_array();
			rc = sp_list_item(p, inner, j, depth + 1);
			set_index(list, i, inner);
		}
	} else {
		json_t *inner = (size_t)i < json_array_size(list) && json_is_object(json_array_get(list, (size_t)i))
			? json_incref(json_array_get(list, (size_t)i)) : json_object();
		rc = sp_key(p, inner, depth + 1);
		set_index(list, i, inner);
	}
	buf_free(&k);
	return rc;
}

static int sp_key(struct setp *p, json_t *data, int depth)
{
	struct buf k = BUF_INIT;
	char last;
	int rc = 0;
	if (depth > 100) {
		snprintf(p->err, p->errlen, "nesting too deep");
		return -1;
	}
	int eof = sp_until(p, "=[,.", &k, &last);
	const char *key = buf_cstr(&k);
	if (eof) {
		if (k.len) {
			snprintf(p->err, p->errlen, "key \"%s\" has no value", key);
			rc = -1;
		}
	} else if (last == ',') {
		snprintf(p->err, p->errlen, "key \"%s\" has no value (cannot end with ,)", key);
		rc = -1;
	} else if (last == '=') {
		json_t *v = NULL;
		rc = sp_value(p, &v);
		if (v) {
			if (k.len)
				json_object_set_new(data, key, v);
			else
				json_decref(v);
		}
	} else if (last == '[') {
		int i;
		if (sp_index(p, &i)) {
			rc = -1;
		} else {
			json_t *cur = json_object_get(data, key);
			json_t *list = json_is_array(cur) ? json_incref(cur) : json_array();
			rc = sp_list_item(p, list, i, depth + 1);
			if (k.len)
				json_object_set(data, key, list);
			json_decref(list);
		}
	} else {
		json_t *cur = json_object_get(data, key);
		json_t *inner = json_is_object(cur) ? json_incref(cur) : json_object();
		rc = sp_key(p, inner, depth + 1);
		if (rc == 0 && json_object_size(inner) == 0) {
			snprintf(p->err, p->errlen, "key map \"%s\" has no value", key);
			rc = -1;
		}
		if (json_object_size(inner) && k.len)
			json_object_set(data, key, inner);
		json_decref(inner);
	}
	buf_free(&k);
	return rc;
}

static int parse_set(const char *s, json_t *dest, int mode, char *err, size_t errlen)
{
	struct setp p = { s, strlen(s), 0, mode, err, errlen };
	while (p.pos < p.len)
		if (sp_key(&p, dest, 0))
			return -1;
	return 0;
}

json_t *chart_values_merge(const json_t *const *layers, size_t nlayers,
			   const char *const *sets, const char *const *set_strings,
			   const char *const *set_jsons, char *err, size_t errlen)
{
	json_t *base = json_object();
	for (size_t i = 0; i < nlayers; i++) {
		if (!layers[i] || json_is_null(layers[i]))
			continue;
		if (!json_is_object(layers[i])) {
			snprintf(err, errlen, "values layer %zu is not a map", i + 1);
			json_decref(base);
			return NULL;
		}
		merge_maps(base, layers[i]);
	}
	static const char *what[] = { "--set", "--set-string", "--set-json" };
	const char *const *lists[3] = { sets, set_strings, set_jsons };
	for (int m = 0; m < 3; m++) {
		for (const char *const *s = lists[m]; s && *s; s++) {
			char e[512];
			if (parse_set(*s, base, m, e, sizeof(e))) {
				snprintf(err, errlen, "failed parsing %s data %s: %s", what[m], *s, e);
				json_decref(base);
				return NULL;
			}
		}
	}
	return base;
}

/* Helm's coalesce: user over defaults; a user null deletes a defaulted key */
static void coalesce_tables(struct cv_arena *a, struct cv_map *dst, struct cv_map *src)
{
	for (size_t i = 0; i < src->n; i++) {
		struct cv_mapent *e = &src->ents[i];
		cv *d = cv_map_get(dst, e->key, e->klen);
		if (d && d->kind == CV_NIL) {
			cv_map_del(dst, e->key, e->klen);
		} else if (!d) {
			cv_map_set(a, dst, e->key, e->klen, cv_deep_copy(a, e->val));
		} else if (e->val.kind == CV_MAP && d->kind == CV_MAP) {
			coalesce_tables(a, d->u.map, e->val.u.map);
		}
	}
}

/* ---------------------------------------------------------------- schema */

/*
 * JSON Schema (draft-07) validation of the coalesced values, as Helm does
 * with gojsonschema before rendering. The keywords charts use are
 * supported: type, properties, items, enum, anyOf, oneOf (others are
 * ignored); messages follow gojsonschema's.
 */
struct serr { struct buf *out; int n; };

static const char *json_type_of(cv v)
{
	switch (v.kind) {
	case CV_NIL: return "null";
	case CV_BOOL: return "boolean";
	case CV_INT: return "integer";
	case CV_FLOAT: return v.u.f == floor(v.u.f) && isfinite(v.u.f) ? "integer" : "number";
	case CV_STR: return "string";
	case CV_LIST: return "array";
	case CV_MAP: return "object";
	default: return "object";
	}
}

static int type_matches(const char *want, size_t wl, cv v)
{
	const char *t = json_type_of(v);
#define W(lit) (wl == sizeof(lit) - 1 && !memcmp(want, lit, wl))
	if (W("number"))
		return v.kind == CV_INT || v.kind == CV_FLOAT;
	return strlen(t) == wl && !memcmp(t, want, wl);
#undef W
}

static int json_equal_num(cv a, cv b)
{
	double x = a.kind == CV_INT ? (double)a.u.i : a.u.f, y = b.kind == CV_INT ? (double)b.u.i : b.u.f;
	return x == y;
}

static int values_equal(cv a, cv b)
{
	if ((a.kind == CV_INT || a.kind == CV_FLOAT) && (b.kind == CV_INT || b.kind == CV_FLOAT))
		return json_equal_num(a, b);
	return cv_deep_equal(a, b);
}

/*
 * Where in the values the check is: a chain from the innermost key or list
 * index up to the root (NULL). It is spelled out ("a.b.0", truncated to
 * 1023 bytes) only for an error message.
 */
struct spath {
	const struct spath *up;
	const char *key;       /* a map key, or NULL for a list index */
	size_t klen;
	size_t index;
};

/* out = path + "." + key (no dot at the root), truncated to 1023 bytes */
static void sub_path(char out[1024], const char *key, size_t klen)
{
	size_t n = strlen(out);
	if (n && n < 1023)
		out[n++] = '.';
	if (klen > 1023 - n)
		klen = 1023 - n;
	memcpy(out + n, key, klen);
	out[n + klen] = 0;
}

static void path_text(const struct spath *p, char out[1024])
{
	if (!p) {
		out[0] = 0;
		return;
	}
	path_text(p->up, out);
	if (p->key) {
		sub_path(out, p->key, p->klen);
	} else {
		char num[24];
		int nl = snprintf(num, sizeof(num), "%zu", p->index);
		sub_path(out, num, (size_t)nl);
	}
}

static void serr_add(struct serr *E, const struct spath *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void serr_add(struct serr *E, const struct spath *where, const char *fmt, ...)
{
	if (!E->out)
		{ E->n++; return; }
	char path[1024];
	path_text(where, path);
	va_list ap;
	buf_printf(E->out, "- %s: ", *path ? path : "(root)");
	va_start(ap, fmt);
	buf_vprintf(E->out, fmt, ap);
	va_end(ap);
	buf_putc(E->out, '\n');
	E->n++;
}


/* the keywords schema_check reads, found in one pass over a schema map */
struct skeys { cv *type, *enumv, *props, *items, *any_of, *one_of; };

static void schema_keys(struct cv_map *m, struct skeys *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < m->n; i++) {
		struct cv_mapent *e = &m->ents[i];
#define KEY(lit) (e->klen == sizeof(lit) - 1 && !memcmp(e->key, lit, e->klen))
		if (KEY("type"))
			k->type = &e->val;
		else if (KEY("enum"))
			k->enumv = &e->val;
		else if (KEY("properties"))
			k->props = &e->val;
		else if (KEY("items"))
			k->items = &e->val;
		else if (KEY("anyOf"))
			k->any_of = &e->val;
		else if (KEY("oneOf"))
			k->one_of = &e->val;
#undef KEY
	}
}

static void schema_check(cv sch, cv v, const struct spath *path, struct serr *E, int depth)
{
	if (sch.kind != CV_MAP || depth > 200)
		return;
	struct skeys k;
	schema_keys(sch.u.map, &k);
	cv *t = k.type;
	if (t) {
		int ok = 0;
		if (t->kind == CV_STR)
			ok = type_matches(t->u.str.s, t->u.str.len, v);
		else if (t->kind == CV_LIST) {
			for (size_t i = 0; i < t->u.list->n && !ok; i++) {
				cv x = t->u.list->items[i];
				if (x.kind == CV_STR && type_matches(x.u.str.s, x.u.str.len, v))
					ok = 1;
			}
		} else
			ok = 1;
		if (!ok) {
			/* the expected types are spelled out only for a message */
			struct buf exp = BUF_INIT;
			if (t->kind == CV_STR)
				buf_append(&exp, t->u.str.s, t->u.str.len);
			else {
				buf_putc(&exp, '[');
				for (size_t i = 0; i < t->u.list->n; i++) {
					cv x = t->u.list->items[i];
					if (x.kind != CV_STR)
						continue;
					if (exp.len > 1)
						buf_putc(&exp, ',');
					buf_append(&exp, x.u.str.s, x.u.str.len);
				}
				buf_putc(&exp, ']');
			}
			serr_add(E, path, "Invalid type. Expected: %s, given: %s", buf_cstr(&exp), json_type_of(v));
			buf_free(&exp);
			return;
		}
	}
	cv *en = k.enumv;
	if (en && en->kind == CV_LIST) {
		int ok = 0;
		for (size_t i = 0; i < en->u.list->n && !ok; i++)
			ok = values_equal(en->u.list->items[i], v);
		if (!ok) {
			struct buf al = BUF_INIT;
			for (size_t i = 0; i < en->u.list->n; i++) {
				if (i)
					buf_puts(&al, ", ");
				cv_to_json(&al, en->u.list->items[i], 0, 0);
			}
			char where[1024];
			path_text(path, where);
			serr_add(E, path, "%s must be one of the following: %s", *where ? where : "(root)", buf_cstr(&al));
			buf_free(&al);
		}
	}
	cv *props = k.props;
	if (props && props->kind == CV_MAP && v.kind == CV_MAP) {
		/* both maps are sorted by key: walk them side by side */
		const struct cv_map *vm = v.u.map;
		size_t j = 0;
		for (size_t i = 0; i < props->u.map->n; i++) {
			struct cv_mapent *pe = &props->u.map->ents[i];
			int c = -1;
			while (j < vm->n && (c = cv_key_order(vm->ents[j].key, vm->ents[j].klen, pe->key, pe->klen)) < 0)
				j++;
			if (j == vm->n || c != 0)
				continue;
			cv *x = &vm->ents[j].val;
			struct spath sub = { path, pe->key, pe->klen, 0 };
			schema_check(pe->val, *x, &sub, E, depth + 1);
		}
	}
	cv *items = k.items;
	if (items && v.kind == CV_LIST) {
		for (size_t i = 0; i < v.u.list->n; i++) {
			cv isch = items->kind == CV_LIST ? (i < items->u.list->n ? items->u.list->items[i] : cv_nil()) : *items;
			struct spath sub = { path, NULL, 0, i };
			schema_check(isch, v.u.list->items[i], &sub, E, depth + 1);
		}
	}
	for (int one = 0; one < 2; one++) {
		cv *xs = one ? k.one_of : k.any_of;
		if (!xs || xs->kind != CV_LIST || xs->u.list->n == 0)
			continue;
		int valid = 0, best_score = -1, best_n = 0;
		size_t best = 0;
		for (size_t i = 0; i < xs->u.list->n; i++) {
			struct serr probe = { NULL, 0 };
			cv sub = xs->u.list->items[i];
			schema_check(sub, v, path, &probe, depth + 1);
			if (probe.n == 0) {
				valid++;
				continue;
			}
			/* like gojsonschema, report the closest match: one whose
			 * type fits, then the one with the fewest errors */
			cv *st = sub.kind == CV_MAP ? cv_map_gets(sub.u.map, "type") : NULL;
			int score = !st || (st->kind == CV_STR && type_matches(st->u.str.s, st->u.str.len, v));
			if (score > best_score || (score == best_score && probe.n < best_n)) {
				best_score = score;
				best_n = probe.n;
				best = i;
			}
		}
		if (one ? valid != 1 : valid == 0) {
			serr_add(E, path, one ? "Must validate one and only one schema (oneOf)" : "Must validate at least one schema (anyOf)");
			if (valid == 0)
				schema_check(xs->u.list->items[best], v, path, E, depth + 1);
		}
	}
}

/* ---------------------------------------------------------------- render */

static const char *const install_order[] = {
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
	"StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", NULL,
};

static const char *const hook_events[] = {
	"pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
	"pre-rollback", "post-rollback", "test", "test-success", NULL,
};

static const char *const default_apis[] = {
	"admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1alpha1", "admissionregistration.k8s.io/v1beta1",
	"internal.apiserver.k8s.io/v1alpha1", "apps/v1", "apps/v1beta1", "apps/v1beta2",
	"authentication.k8s.io/v1", "authentication.k8s.io/v1alpha1", "authentication.k8s.io/v1beta1",
	"authorization.k8s.io/v1", "authorization.k8s.io/v1beta1", "autoscaling/v1", "autoscaling/v2",
	"autoscaling/v2beta1", "autoscaling/v2beta2", "batch/v1", "batch/v1beta1", "certificates.k8s.io/v1",
	"certificates.k8s.io/v1beta1", "certificates.k8s.io/v1alpha1", "coordination.k8s.io/v1alpha2",
	"coordination.k8s.io/v1beta1", "coordination.k8s.io/v1", "v1", "discovery.k8s.io/v1",
	"discovery.k8s.io/v1beta1", "events.k8s.io/v1", "events.k8s.io/v1beta1", "extensions/v1beta1",
	"flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta1", "flowcontrol.apiserver.k8s.io/v1beta2",
	"flowcontrol.apiserver.k8s.io/v1beta3", "networking.k8s.io/v1", "networking.k8s.io/v1beta1",
	"node.k8s.io/v1", "node.k8s.io/v1alpha1", "node.k8s.io/v1beta1", "policy/v1", "policy/v1beta1",
	"rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1beta1", "rbac.authorization.k8s.io/v1alpha1",
	"resource.k8s.io/v1", "resource.k8s.io/v1beta2", "resource.k8s.io/v1beta1", "resource.k8s.io/v1alpha3",
	"scheduling.k8s.io/v1alpha1", "scheduling.k8s.io/v1beta1", "scheduling.k8s.io/v1",
	"storage.k8s.io/v1beta1", "storage.k8s.io/v1", "storage.k8s.io/v1alpha1",
	"storagemigration.k8s.io/v1alpha1", "apiextensions.k8s.io/v1beta1", "apiextensions.k8s.io/v1", NULL,
};

/* k8s ParseGeneric-like: "v1.28.6+k3s1" -> v1.28.6 major 1 minor 28 */
static int parse_kube_version(const char *s, char *ver, size_t vl, char *maj, char *min)
{
	while (*s == ' ' || *s == '\t') s++;
	if (*s == 'v') s++;
	unsigned long comps[8];
	int n = 0;
	const char *p = s;
	while (n < 8) {
		if (*p < '0' || *p > '9')
			break;
		const char *st = p;
		unsigned long x = 0;
		while (*p >= '0' && *p <= '9') {
			x = x * 10 + (unsigned long)(*p - '0');
			if (x > 1000000000UL) return -1;
			p++;
		}
		if (n == 0 && p - st > 1 && st[0] == '0') return -1;
		comps[n++] = x;
		if (*p != '.') break;
		p++;
	}
	if (n < 2)
		return -1;
	size_t w = (size_t)snprintf(ver, vl, "v%lu", comps[0]);
	for (int i = 1; i < n && w < vl; i++)
		w += (size_t)snprintf(ver + w, vl - w, ".%lu", comps[i]);
	snprintf(maj, 16, "%lu", comps[0]);
	snprintf(min, 16, "%lu", comps[1]);
	return 0;
}


static int doc_rank(const char *kind)
{
	for (int i = 0; install_order[i]; i++)
		if (!strcmp(install_order[i], kind))
			return i;
	return 1000;
}

static int cmp_docs(const void *x, const void *y)
{
	const struct doc *a = x, *b = y;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->rank == 1000) {
		int c = strcmp(a->kind, b->kind);
		if (c)
			return c;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_re_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

/* Helm's SplitManifests on one file's output: calls fn for each document */
static void split_docs(const char *s, size_t len, void (*fn)(void *, const char *, size_t), void *ctx)
{
	size_t st = 0, en = len;
	while (st < en && is_ws(s[st])) st++;
	while (en > st && is_ws(s[en - 1])) en--;
	size_t piece = st;
	size_t i = st;
	while (i < en) {
		size_t mstart, mend;
		if (i == st && en - i >= 3 && !memcmp(s + i, "---", 3)) {
			mstart = i;
			mend = i + 3;
		} else {
			/* the next "\n---" */
			const char *m = memmem(s + i, en - i, "\n---", 4);
			if (!m)
				break;
			size_t at = (size_t)(m - s);
			/* extend back over whitespace, but not before the current piece */
			size_t b = at;
			while (b > piece && is_re_ws(s[b - 1])) b--;
			mstart = b;
			mend = at + 4;
		}
		while (mend < en && is_re_ws(s[mend])) mend++;
		fn(ctx, s + piece, mstart - piece);
		piece = mend;
		i = mend > i ? mend : i + 1;
		if (mend == en)
			break;
	}
	fn(ctx, s + piece, en - piece);
}

struct split_ctx {
	struct doc **docs;
	size_t *n, *cap;
	const char *source;
};

static void add_doc(void *vctx, const char *s, size_t len)
{
	struct split_ctx *c = vctx;
	size_t st = 0, en = len;
	while (st < en && is_ws(s[st])) st++;
	while (en > st && is_ws(s[en - 1])) en--;
	if (st == en)
		return;
	if (*c->n == *c->cap) {
		*c->cap = *c->cap ? *c->cap * 2 : 64;
		*c->docs = xrealloc(*c->docs, *c->cap * sizeof(struct doc));
	}
	struct doc *d = &(*c->docs)[(*c->n)++];
	memset(d, 0, sizeof(*d));
	d->source = c->source;
	/* keep the newline the manifest puts after each document (block
	 * scalars at the end of a document keep their final line break) */
	d->text = xmalloc(en - st + 2);
	memcpy(d->text, s + st, en - st);
	d->text[en - st] = '\n';
	d->text[en - st + 1] = 0;
	d->len = en - st;
	d->seq = *c->n;
}

/* A stored release manifest back into objects, with the YAML rules the
 * render used (chart.h). */
json_t *chart_manifest_objects(const char *manifest, size_t len, char *err, size_t errlen)
{
	struct doc *docs = NULL;
	size_t ndocs = 0, cap = 0;
	struct split_ctx sc = { &docs, &ndocs, &cap, "manifest" };
	split_docs(manifest, len, add_doc, &sc);
	struct cv_arena *a = cv_arena_new();
	json_t *out = json_array();
	for (size_t i = 0; i < ndocs; i++) {
		cv obj;
		if (!out || cv_from_yaml_doc(a, docs[i].text, docs[i].len + 1, &obj, 1, err, errlen)) {
			json_decref(out);
			out = NULL;
		} else if (obj.kind == CV_MAP) {
			json_array_append_new(out, cv_to_jansson(obj));
		}
		free(docs[i].text);
	}
	free(docs);
	cv_arena_free(a);
	return out;
}

static const char *map_str(cv m, const char *key)
{
	if (m.kind != CV_MAP)
		return NULL;
	cv *v = cv_map_gets(m.u.map, key);
	return v && v->kind == CV_STR ? v->u.str.s : NULL;
}

struct pjob { struct doc *docs; size_t from, to; struct cv_arena *a; long failed; char err[512]; };

static void *parse_docs_job(void *arg)
{
	struct pjob *j = arg;
	for (size_t i = j->from; i < j->to; i++) {
		struct doc *d = &j->docs[i];
		if (cv_from_yaml_doc(j->a, d->text, d->len + 1, &d->obj, 1, j->err, sizeof(j->err))) {
			j->failed = (long)i;
			break;
		}
	}
	return NULL;
}

/* coalesce values and build the root object; fills E */
static int render_setup(const struct chart *c, const json_t *user_values, const struct chart_render_opts *opts,
			struct cv_arena *a, struct tengine *E, cv *vals_out, const char **basepath_out,
			char *err, size_t errlen)
{
	if (c->parse_err) {
		snprintf(err, errlen, "%s", c->parse_err);
		return -1;
	}
	/* values */
	cv vals = cv_deep_copy(a, c->defaults);
	if (user_values && json_is_object(user_values)) {
		cv user = cv_from_jansson(a, user_values, 1);
		/* json reals are float64, integers int64: cv_from_jansson(…,1) did that */
		coalesce_tables(a, user.u.map, vals.u.map);
		/* keys only in user stay; user nulls over defaults removed above */
		vals = user;
	}
	vals.sub = CS_VALUES;
	if (c->schema_err && !opts->skip_schema_validation) {
		snprintf(err, errlen, "%s: values.schema.json: %s", c->name, c->schema_err);
		return -1;
	}
	if (c->schema.kind == CV_MAP && !opts->skip_schema_validation) {
		struct buf eb = BUF_INIT;
		struct serr se = { &eb, 0 };
		schema_check(c->schema, vals, NULL, &se, 0);
		if (se.n) {
			snprintf(err, errlen, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s",
				 c->name, buf_cstr(&eb));
			buf_free(&eb);
			return -1;
		}
		buf_free(&eb);
	}
	/* capabilities */
	char kv[64], kmaj[16], kmin[16];
	const char *kvs = opts->kube_version && *opts->kube_version ? opts->kube_version : "v1.32.2";
	if (parse_kube_version(kvs, kv, sizeof(kv), kmaj, kmin)) {
		snprintf(err, errlen, "invalid kube version \"%s\"", kvs);
		return -1;
	}
	if (c->kube_constraint && *c->kube_constraint) {
		int ok = chart_semver_satisfies(c->kube_constraint, kv);
		if (ok != 1) {
			snprintf(err, errlen, "chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
				 c->kube_constraint, kv);
			return -1;
		}
	}
	cv caps = cv_map_new(a, 4);
	caps.sub = CS_STRUCT;
	cv kube = cv_map_new(a, 4);
	kube.sub = CS_STRUCT;
	cv_map_set(a, kube.u.map, "Version", 7, cv_cstr(a, kv));
	cv_map_set(a, kube.u.map, "Major", 5, cv_cstr(a, kmaj));
	cv_map_set(a, kube.u.map, "Minor", 5, cv_cstr(a, kmin));
	cv_map_set(a, kube.u.map, "GitVersion", 10, cv_cstr(a, kv));
	cv_map_set(a, caps.u.map, "KubeVersion", 11, kube);
	struct cv_obj *apis;
	cv apiv = cv_obj_new(a, CO_APIVERSIONS, &apis);
	size_t napi = 0, nextra = 0;
	while (default_apis[napi]) napi++;
	if (opts->api_versions)
		while (opts->api_versions[nextra]) nextra++;
	apis->u.apis.v = cv_alloc(a, (napi + nextra + 1) * sizeof(char *));
	for (size_t i = 0; i < napi; i++) apis->u.apis.v[apis->u.apis.n++] = default_apis[i];
	for (size_t i = 0; i < nextra; i++) apis->u.apis.v[apis->u.apis.n++] = cv_cstr(a, opts->api_versions[i]).u.str.s;
	cv_map_set(a, caps.u.map, "APIVersions", 11, apiv);
	cv helmv = cv_map_new(a, 4);
	helmv.sub = CS_STRUCT;
	cv_map_set(a, helmv.u.map, "Version", 7, cv_cstr(a, "v3.19.0"));
	cv_map_set(a, helmv.u.map, "GitCommit", 9, cv_cstr(a, ""));
	cv_map_set(a, helmv.u.map, "GitTreeState", 12, cv_cstr(a, ""));
	cv_map_set(a, helmv.u.map, "GoVersion", 9, cv_cstr(a, "go1.24"));
	cv_map_set(a, caps.u.map, "HelmVersion", 11, helmv);
	/* release */
	cv rel = cv_map_new(a, 6);
	cv_map_set(a, rel.u.map, "Name", 4, cv_cstr(a, opts->release_name ? opts->release_name : "release-name"));
	cv_map_set(a, rel.u.map, "Namespace", 9, cv_cstr(a, opts->namespace_ ? opts->namespace_ : "default"));
	cv_map_set(a, rel.u.map, "IsUpgrade", 9, cv_bool(opts->is_upgrade));
	cv_map_set(a, rel.u.map, "IsInstall", 9, cv_bool(!opts->is_upgrade));
	cv_map_set(a, rel.u.map, "Revision", 8, cv_int(opts->revision > 0 ? opts->revision : 1, CS_INT));
	cv_map_set(a, rel.u.map, "Service", 7, cv_cstr(a, "Helm"));
	struct cv_obj *fo;
	cv files = cv_obj_new(a, CO_FILES, &fo);
	fo->u.files = c->files;
	cv root = cv_map_new(a, 8);
	root.sub = CS_VALUES;
	cv_map_set(a, root.u.map, "Values", 6, vals);
	cv_map_set(a, root.u.map, "Release", 7, rel);
	/* A copy: the chart is shared by concurrent renders (a parsed chart is
	 * cached per version), and `set` / `merge` may write into maps of
	 * .Chart (e.g. .Chart.Annotations). Values are copied above. */
	cv_map_set(a, root.u.map, "Chart", 5, cv_deep_copy(a, c->meta));
	cv_map_set(a, root.u.map, "Capabilities", 12, caps);
	cv_map_set(a, root.u.map, "Files", 5, files);
	cv_map_set(a, root.u.map, "Subcharts", 9, cv_map_new(a, 0));
	size_t bpl = strlen(c->name) + 11;
	char *basepath = cv_alloc(a, bpl);
	snprintf(basepath, bpl, "%s/templates", c->name);

	E->a = a;
	E->defs = (struct tdefs *)&c->defs;
	E->root = root;
	E->lookup = opts->lookup;
	E->lookup_ctx = opts->lookup_ctx;
	E->max_depth = CHART_MAX_TEMPLATE_DEPTH;
	E->max_steps = opts->max_steps > 0 ? opts->max_steps : CHART_DEFAULT_MAX_STEPS;
	E->max_output = opts->max_output > 0 ? opts->max_output : CHART_DEFAULT_MAX_OUTPUT;
	E->max_memory = opts->max_memory > 0 ? opts->max_memory : CHART_DEFAULT_MAX_MEMORY;
	E->max_ms = opts->max_ms > 0 ? opts->max_ms : CHART_DEFAULT_MAX_MS;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	E->deadline_ms = (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6 + (double)E->max_ms;
	E->should_stop = opts->should_stop;
	E->stop_ctx = opts->stop_ctx;
	E->scratch_keys = opts->output_discarded;
	*vals_out = vals;
	*basepath_out = basepath;
	return 0;
}

static struct chart_render *render_impl(const struct chart *c, const json_t *user_values,
					 const struct chart_render_opts *opts, char *err, size_t errlen)
{
	struct chart_render *R = NULL;
	struct cv_arena *a = cv_arena_new();
	struct tengine E;
	struct doc *docs = NULL;
	size_t ndocs = 0, capdocs = 0;
	struct { const char *name; char *out; size_t len; } *outs = NULL;
	size_t nouts = 0;
	memset(&E, 0, sizeof(E));
	struct chart_render_opts dflt = { 0 };
	if (!opts)
		opts = &dflt;
	cv vals;
	const char *basepath;
	if (render_setup(c, user_values, opts, a, &E, &vals, &basepath, err, errlen))
		goto out;
	cv root = E.root;
	outs = xcalloc(c->ntpls + 1, sizeof(*outs));
	for (size_t i = 0; i < c->ntpls; i++) {
		const char *nm = c->tpls[i].name;
		const char *base = strrchr(nm, '/');
		base = base ? base + 1 : nm;
		if (base[0] == '_')
			continue;
		cv tv = cv_map_new(a, 2);
		tv.sub = CS_VALUES;
		cv_map_set(a, tv.u.map, "Name", 4, cv_cstr(a, nm));
		cv_map_set(a, tv.u.map, "BasePath", 8, cv_cstr(a, basepath));
		cv_map_set(a, root.u.map, "Template", 8, tv);
		struct tdef *d = tmpl_lookup(E.defs, nm, strlen(nm));
		if (!d)
			continue;
		E.cur_file = nm;
		struct buf out = BUF_INIT;
		if (tmpl_exec(&E, nm, d->file, d->body, root, &out)) {
			buf_free(&out);
			if (E.fail_kind)
				snprintf(err, errlen, "execution error at (%s): %s", E.fail_loc[0] ? E.fail_loc : nm, E.fail_msg);
			else
				snprintf(err, errlen, "%s", E.err);
			goto out;
		}
		tmpl_blank_no_value(&out);
		outs[nouts].name = nm;
		outs[nouts].len = out.len;
		outs[nouts].out = buf_steal(&out);
		nouts++;
	}
	/* post-processing: files in bytewise order */
	for (size_t i = 0; i < nouts; i++)
		for (size_t k = i + 1; k < nouts; k++)
			if (strcmp(outs[k].name, outs[i].name) < 0) {
				__typeof__(*outs) t = outs[i];
				outs[i] = outs[k];
				outs[k] = t;
			}
	for (size_t i = 0; i < nouts; i++) {
		size_t nl = strlen(outs[i].name);
		if (nl >= 9 && !strcmp(outs[i].name + nl - 9, "NOTES.txt"))
			continue;
		struct split_ctx sc = { &docs, &ndocs, &capdocs, outs[i].name };
		split_docs(outs[i].out, outs[i].len, add_doc, &sc);
	}
	/* parse the documents, the second half on another thread */
	{
		struct pjob pj[2];
		size_t half = ndocs > 8 ? ndocs / 2 : ndocs;
		pj[0] = (struct pjob){ docs, 0, half, a, -1, "" };
		pj[1] = (struct pjob){ docs, half, ndocs, cv_arena_new(), -1, "" };
		pthread_t th;
		int threaded = half < ndocs && pthread_create(&th, NULL, parse_docs_job, &pj[1]) == 0;
		parse_docs_job(&pj[0]);
		if (threaded)
			pthread_join(th, NULL);
		else
			parse_docs_job(&pj[1]);
		cv_arena_merge(a, pj[1].a);
		for (int k = 0; k < 2; k++)
			if (pj[k].failed >= 0) {
				snprintf(err, errlen, "YAML parse error on %s: error converting YAML to JSON: %s",
					 docs[pj[k].failed].source, pj[k].err);
				goto out;
			}
	}
	for (size_t i = 0; i < ndocs; i++) {
		struct doc *d = &docs[i];
		d->seq = i;
		const char *kind = map_str(d->obj, "kind");
		d->kind = kind ? kind : "";
		d->rank = doc_rank(d->kind);
		cv *md = d->obj.kind == CV_MAP ? cv_map_gets(d->obj.u.map, "metadata") : NULL;
		cv *ann = md && md->kind == CV_MAP ? cv_map_gets(md->u.map, "annotations") : NULL;
		cv *hk = ann && ann->kind == CV_MAP ? cv_map_gets(ann->u.map, "helm.sh/hook") : NULL;
		if (hk) {
			d->hook = 1;
			d->events = json_array();
			struct buf hb = BUF_INIT;
			cv_to_string(&hb, *hk);
			const char *s = buf_cstr(&hb);
			int known = 1;
			while (1) {
				const char *e = strchr(s, ',');
				size_t l = e ? (size_t)(e - s) : strlen(s);
				size_t st = 0;
				while (st < l && is_ws(s[st])) st++;
				while (l > st && is_ws(s[l - 1])) l--;
				char ev[64];
				snprintf(ev, sizeof(ev), "%.*s", (int)(l - st), s + st);
				for (char *p = ev; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
				int ok = 0;
				for (int k = 0; hook_events[k]; k++)
					if (!strcmp(hook_events[k], ev)) ok = 1;
				if (!ok) known = 0;
				json_array_append_new(d->events, json_string(ev));
				if (!e) break;
				s = e + 1;
			}
			buf_free(&hb);
			if (!known)
				d->hook = 2; /* unknown hook: dropped */
		}
	}
	if (ndocs)
		qsort(docs, ndocs, sizeof(*docs), cmp_docs);
	R = xcalloc(1, sizeof(*R));
	pthread_mutex_init(&R->mu, NULL);
	struct buf man = BUF_INIT, hooks = BUF_INIT;
	for (size_t i = 0; i < ndocs; i++) {
		struct doc *d = &docs[i];
		if (d->hook == 2)
			continue;
		struct buf *target = d->hook ? &hooks : &man;
		buf_printf(target, "---\n# Source: %s\n", d->source);
		buf_append(target, d->text, d->len);
		buf_putc(target, '\n');
	}
	R->manifest = buf_steal(&man);
	{
		struct buf outb = BUF_INIT;
		size_t st = 0, en = strlen(R->manifest);
		while (st < en && is_ws(R->manifest[st])) st++;
		while (en > st && is_ws(R->manifest[en - 1])) en--;
		buf_append(&outb, R->manifest + st, en - st);
		buf_putc(&outb, '\n');
		if (hooks.len)
			buf_append(&outb, hooks.data, hooks.len);
		R->output = buf_steal(&outb);
	}
	buf_free(&hooks);
	R->vals = vals;
	R->vals.sub = CS_IFACE_MAP;
	/* hand the documents and the arena over to the result */
	R->a = a;
	R->docs = docs;
	R->ndocs = ndocs;
	a = NULL;
	docs = NULL;
	ndocs = 0;
out:
	if (opts->usage) {
		size_t biggest = 0;
		for (size_t i = 0; i < nouts; i++)
			if (outs[i].len > biggest)
				biggest = outs[i].len;
		opts->usage->steps = E.steps;
		opts->usage->memory = cv_arena_used(R ? R->a : a);
		opts->usage->output = biggest;
	}
	for (size_t i = 0; i < ndocs; i++) {
		free(docs[i].text);
		json_decref(docs[i].events);
	}
	free(docs);
	for (size_t i = 0; i < nouts; i++)
		free(outs[i].out);
	free(outs);
	buf_free(&E.scratch);
	tmpl_certs_release(&E);
	cv_arena_free(a);
	return R;
}

static int render_template_impl(const struct chart *c, const char *text, const json_t *user_values,
				const struct chart_render_opts *opts, char **out, char *err, size_t errlen)
{
	struct cv_arena *a = cv_arena_new();
	struct tengine E;
	struct chart_render_opts dflt = { 0 };
	int rc = -1;
	memset(&E, 0, sizeof(E));
	*out = NULL;
	cv vals;
	const char *basepath;
	if (render_setup(c, user_values, opts ? opts : &dflt, a, &E, &vals, &basepath, err, errlen))
		goto out;
	size_t nl = strlen(basepath) + 10;
	char *name = cv_alloc(a, nl);
	snprintf(name, nl, "%s/_inline", basepath);
	struct tdefs *local = cv_alloc(a, sizeof(*local));
	local->parent = E.defs;
	size_t tl = strlen(text);
	char *copy = cv_strndup(a, text, tl);
	if (tmpl_parse(a, local, name, copy, tl, err, errlen))
		goto out;
	E.defs = local;
	cv tv = cv_map_new(a, 2);
	tv.sub = CS_VALUES;
	cv_map_set(a, tv.u.map, "Name", 4, cv_cstr(a, name));
	cv_map_set(a, tv.u.map, "BasePath", 8, cv_cstr(a, basepath));
	cv_map_set(a, E.root.u.map, "Template", 8, tv);
	struct tdef *d = tmpl_lookup(local, name, strlen(name));
	struct buf b = BUF_INIT;
	E.cur_file = name;
	if (tmpl_exec(&E, name, d->file, d->body, E.root, &b)) {
		buf_free(&b);
		if (E.fail_kind)
			snprintf(err, errlen, "execution error at (%s): %s", E.fail_loc[0] ? E.fail_loc : name, E.fail_msg);
		else
			snprintf(err, errlen, "%s", E.err);
		goto out;
	}
	tmpl_blank_no_value(&b);
	*out = buf_steal(&b);
	rc = 0;
out:
	tmpl_certs_release(&E);
	cv_arena_free(a);
	return rc;
}

/*
 * Templates recurse (include, template, tpl) and Go's goroutine stacks
 * grow, so Helm tolerates deep nesting. Renders run on a large stack of
 * their own (only the pages touched become resident): the calling thread
 * switches to it with swapcontext and back when the render returns. A
 * thread with a large stack would do the same, but waiting for it puts the
 * caller to sleep and waking it again costs up to milliseconds on a busy
 * virtual machine; the switch costs a few microseconds. If the stack
 * cannot be mapped, a thread is used after all.
 */
struct job {
	const struct chart *c;
	const char *text;
	const json_t *user;
	const struct chart_render_opts *opts;
	char **out;
	char *err;
	size_t errlen;
	struct chart_render *r;
	int rc;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	if (j->text)
		j->rc = render_template_impl(j->c, j->text, j->user, j->opts, j->out, j->err, j->errlen);
	else
		j->r = render_impl(j->c, j->user, j->opts, j->err, j->errlen);
	return NULL;
}

/* the job the render stack runs: set by the thread just before it switches
 * to the stack, read at once by job_on_stack */
static _Thread_local struct job *stack_job;

static void job_on_stack(void)
{
	job_main(stack_job);
	/* returning follows uc_link back to run_on_stack */
}

/* gcc says ASan with __SANITIZE_ADDRESS__, clang with __has_feature */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHART_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CHART_ASAN 1
#endif

/* run j on a fresh CHART_RENDER_STACK-byte stack: 0, or -1 (not run) */
static int run_on_stack(struct job *j)
{
#if defined(CHART_ASAN)
	/* ASan does not follow stack switches without help (and warns about
	 * them): sanitizer builds use the thread; tests/integration/
	 * test_optimised_build.sh runs the chart tests on the -O2 build */
	(void)j;
	return -1;
#endif
	size_t guard = 65536;
	char *mem = mmap(NULL, CHART_RENDER_STACK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	/* the stack grows down: an inaccessible bottom catches an overflow */
	ucontext_t ctx, back;
	if (mprotect(mem, guard, PROT_NONE) || getcontext(&ctx)) {
		munmap(mem, CHART_RENDER_STACK);
		return -1;
	}
	ctx.uc_stack.ss_sp = mem + guard;
	ctx.uc_stack.ss_size = CHART_RENDER_STACK - guard;
	ctx.uc_link = &back;
	makecontext(&ctx, job_on_stack, 0);
	stack_job = j;
	int rc = swapcontext(&back, &ctx);
	munmap(mem, CHART_RENDER_STACK);
	return rc ? -1 : 0;
}

static void run_job(struct job *j)
{
	if (run_on_stack(j) == 0)
		return;
	pthread_attr_t attr;
	pthread_t th;
	int started = 0;
	if (pthread_attr_init(&attr) == 0) {
		if (pthread_attr_setstacksize(&attr, CHART_RENDER_STACK) == 0 &&
		    pthread_create(&th, &attr, job_main, j) == 0)
			started = 1;
		pthread_attr_destroy(&attr);
	}
	if (started)
		pthread_join(th, NULL);
	else
		job_main(j);
}

struct chart_render *chart_render(const struct chart *c, const json_t *user_values,
				  const struct chart_render_opts *opts, char *err, size_t errlen)
{
	struct job j = { c, NULL, user_values, opts, NULL, err, errlen, NULL, 0 };
	run_job(&j);
	return j.r;
}

int chart_render_template(const struct chart *c, const char *text, const json_t *user_values,
			  const struct chart_render_opts *opts, char **out, char *err, size_t errlen)
{
	struct job j = { c, text, user_values, opts, out, err, errlen, NULL, -1 };
	run_job(&j);
	return j.rc;
}

static void build_json(struct chart_render *r)
{
	pthread_mutex_lock(&r->mu);
	if (!r->docs_json) {
		json_t *docs = json_array(), *hooks = json_array();
		for (size_t i = 0; i < r->ndocs; i++) {
			struct doc *d = &r->docs[i];
			if (d->hook == 2)
				continue;
			json_t *o = json_object();
			json_object_set_new(o, "source", json_string(d->source));
			json_object_set_new(o, "kind", json_string(d->kind));
			json_object_set_new(o, "object", cv_to_jansson(d->obj));
			json_object_set_new(o, "yaml", json_stringn(d->text, d->len));
			if (d->hook) {
				json_object_set(o, "events", d->events);
				json_array_append_new(hooks, o);
			} else
				json_array_append_new(docs, o);
		}
		r->values_json = cv_to_jansson_exact(r->vals);
		r->hooks_json = hooks;
		r->docs_json = docs;
	}
	pthread_mutex_unlock(&r->mu);
}

const json_t *chart_render_documents(const struct chart_render *r)
{
	build_json((struct chart_render *)r);
	return r->docs_json;
}

size_t chart_render_document_count(const struct chart_render *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->ndocs; i++)
		n += r->docs[i].hook == 0;
	return n;
}

const json_t *chart_render_hooks(const struct chart_render *r)
{
	build_json((struct chart_render *)r);
	return r->hooks_json;
}

const json_t *chart_render_values(const struct chart_render *r)
{
	build_json((struct chart_render *)r);
	return r->values_json;
}

const char *chart_render_manifest(const struct chart_render *r) { return r->manifest; }
const char *chart_render_output(const struct chart_render *r) { return r->output; }

void chart_render_free(struct chart_render *r)
{
	if (!r)
		return;
	json_decref(r->docs_json);
	json_decref(r->hooks_json);
	json_decref(r->values_json);
	for (size_t i = 0; i < r->ndocs; i++) {
		free(r->docs[i].text);
		json_decref(r->docs[i].events);
	}
	free(r->docs);
	cv_arena_free(r->a);
	pthread_mutex_destroy(&r->mu);
	free(r->manifest);
	free(r->output);
	free(r);
}
