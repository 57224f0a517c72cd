/*
 * chartcache.c: a bounded, refcounted cache of parsed charts (see the
 * header).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/chartcache.h"
#include "server/chart/chart.h"
#include "server/install/chartsource.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An entry; also the reference handed out (private ones are not listed). */
struct chart_ref {
	struct chart_ref *next;
	char key[128];          /* "<sha256>" or "<sha256>/<tenant id>" */
	struct chart *ch;       /* NULL while loading or after a failed load */
	int refs;
	int loading;
	int listed;             /* in the cache's list */
	unsigned long last_use;
};

struct chart_cache {
	pthread_mutex_t mu;
	pthread_cond_t cond;    /* a load finished */
	struct chart_ref *head;
	int idle_max;
	unsigned long tick;
	long loads;
};

struct chart_cache *chart_cache_new(int idle_max)
{
	struct chart_cache *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return NULL;
	pthread_mutex_init(&cc->mu, NULL);
	pthread_cond_init(&cc->cond, NULL);
	cc->idle_max = idle_max < 0 ? 0 : idle_max;
	return cc;
}

static void entry_free(struct chart_ref *e)
{
	chart_free(e->ch);
	free(e);
}

void chart_cache_free(struct chart_cache *cc)
{
	if (!cc)
		return;
	for (struct chart_ref *e = cc->head, *n; e; e = n) {
		n = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&cc->mu);
	pthread_cond_destroy(&cc->cond);
	free(cc);
}

static void unlist(struct chart_cache *cc, struct chart_ref *e)
{
	for (struct chart_ref **pp = &cc->head; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	e->listed = 0;
}

/* Free the least recently used unused entries beyond idle_max (mu held). */
static void evict(struct chart_cache *cc)
{
	for (;;) {
		int idle = 0;
		struct chart_ref *lru = NULL;
		for (struct chart_ref *e = cc->head; e; e = e->next)
			if (!e->refs && e->ch) {
				idle++;
				if (!lru || e->last_use < lru->last_use)
					lru = e;
			}
		if (idle <= cc->idle_max || !lru)
			return;
		unlist(cc, lru);
		entry_free(lru);
	}
}

static struct chart_ref *load_private(const struct chartsource_archive *arc, char *err, size_t errlen)
{
	struct chart *ch = chart_load_archive(arc->data, arc->len, err, errlen);
	if (!ch)
		return NULL;
	struct chart_ref *e = calloc(1, sizeof(*e));
	if (!e) {
		chart_free(ch);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->ch = ch;
	e->refs = 1;
	return e;
}

struct chart_ref *chart_cache_get(struct chart_cache *cc, const struct chartsource_archive *arc,
				  char *err, size_t errlen)
{
	if (!cc || !arc->sha256[0] || cc->idle_max == 0)
		return load_private(arc, err, errlen);
	char key[128];
	snprintf(key, sizeof key, "%s%s%s", arc->sha256, arc->owner_tenant[0] ? "/" : "", arc->owner_tenant);
	pthread_mutex_lock(&cc->mu);
	struct chart_ref *e = cc->head;
	while (e && strcmp(e->key, key))
		e = e->next;
	if (e) {
		e->refs++;
		while (e->loading)
			pthread_cond_wait(&cc->cond, &cc->mu);
		if (e->ch) {
			e->last_use = ++cc->tick;
			pthread_mutex_unlock(&cc->mu);
			return e;
		}
		/* its load failed: load ourselves for our own error */
		if (--e->refs == 0)
			entry_free(e);   /* unlisted by the failed loader */
		pthread_mutex_unlock(&cc->mu);
		return load_private(arc, err, errlen);
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&cc->mu);
		return load_private(arc, err, errlen);
	}
	snprintf(e->key, sizeof e->key, "%s", key);
	e->refs = 1;
	e->loading = 1;
	e->listed = 1;
	e->next = cc->head;
	cc->head = e;
	pthread_mutex_unlock(&cc->mu);

	struct chart *ch = chart_load_archive(arc->data, arc->len, err, errlen);

	pthread_mutex_lock(&cc->mu);
	e->loading = 0;
	e->ch = ch;
	cc->loads++;
	e->last_use = ++cc->tick;
	if (!ch) {
		unlist(cc, e);
		if (--e->refs == 0)
			entry_free(e);
		e = NULL;
	}
	pthread_cond_broadcast(&cc->cond);
	evict(cc);
	pthread_mutex_unlock(&cc->mu);
	return e;
}

const struct chart *chart_ref_chart(const struct chart_ref *r)
{
	return r ? r->ch : NULL;
}

void chart_cache_put(struct chart_cache *cc, struct chart_ref *r)
{
	if (!r)
		return;
	if (!cc || !r->listed) {
		if (cc)
			pthread_mutex_lock(&cc->mu);
		int last = --r->refs == 0;
		if (cc)
			pthread_mutex_unlock(&cc->mu);
		if (last)
			entry_free(r);
		return;
	}
	pthread_mutex_lock(&cc->mu);
	r->refs--;
	r->last_use = ++cc->tick;
	evict(cc);
	pthread_mutex_unlock(&cc->mu);
}

void chart_cache_stats(struct chart_cache *cc, int *entries, long *loads)
{
	int n = 0;
	pthread_mutex_lock(&cc->mu);
	for (struct chart_ref *e = cc->head; e; e = e->next)
		n++;
	*loads = cc->loads;
	pthread_mutex_unlock(&cc->mu);
	*entries = n;
}
