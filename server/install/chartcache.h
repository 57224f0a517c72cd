/*
 * install/chartcache: parsed charts shared by the jobs that render the same
 * chart, so a hundred concurrent upgrades to 1.18.3 parse it once.
 *
 * Key: the archive's SHA-256 (chartsource_resolve's answer) and, for a
 * tenant's uploaded chart, that tenant's id. A chart from the local
 * directory or a Helm repository is one entry every tenant shares; an
 * upload is only ever found again by jobs of the tenant that uploaded it
 * (resolve reads uploads tenant-scoped, and the key repeats the tenant), so
 * tenants never share a chart they did not upload, even byte-identical.
 *
 * Bounded and refcounted: chart_cache_get() returns a reference that the
 * caller gives back with chart_cache_put() as soon as its render is done.
 * An entry in use is never freed; of the entries nobody uses, the most
 * recently used `idle_max` are kept (FERRY_CHART_CACHE_SIZE), older ones are
 * freed. A miss loads the chart once: concurrent jobs wanting the same key
 * wait for the first one's load. A failed load is not cached (each caller
 * then loads itself and gets its own error).
 *
 * Shared charts must not be mutated: chart_render() only reads a loaded
 * chart (server/chart/chart.h: values and .Chart are copied into the
 * render's arena, templates and files are read-only, `tpl` parses into the
 * render's arena); that is what makes sharing safe.
 *
 * With cc NULL (tests that build their own app) every get loads a private
 * chart that put frees. Memory: the cache owns the charts; a reference
 * stays valid until put. Thread-safe.
 */
#ifndef FERRY_INSTALL_CHARTCACHE_H
#define FERRY_INSTALL_CHARTCACHE_H

#include <stddef.h>

struct chart;
struct chart_cache;
struct chart_ref;
struct chartsource_archive;

struct chart_cache *chart_cache_new(int idle_max);
/* Frees every entry; no reference may be outstanding. */
void chart_cache_free(struct chart_cache *cc);

/* The parsed chart of arc (data, sha256, owner_tenant), or NULL + err
 * (chart_load_archive's message). */
struct chart_ref *chart_cache_get(struct chart_cache *cc, const struct chartsource_archive *arc,
				  char *err, size_t errlen);
const struct chart *chart_ref_chart(const struct chart_ref *r);
/* Give the reference back (NULL is fine). */
void chart_cache_put(struct chart_cache *cc, struct chart_ref *r);

/* Entries held now and charts loaded since start (for tests and logs). */
void chart_cache_stats(struct chart_cache *cc, int *entries, long *loads);

#endif
