/*
 * test_render_cache: the parsed-chart cache (server/install/chartcache.h)
 * on the real cilium 1.18.3 archive, and the render slots
 * (server/install/render_guard.h) with a real PostgreSQL connection pool:
 *
 * - one load per key however many jobs ask at once; an upload is keyed by
 *   its tenant (no sharing across tenants, even byte-identical); idle
 *   entries bounded; a broken archive is not cached; no cache = private
 *   charts; concurrent renders of one shared chart give the same objects.
 * - render slots: at most N at once, first come first served; a queued
 *   job's connection is lent to the pool (another thread can take it
 *   from a pool of one) and taken back once it has the slot; cancel and
 *   shutdown take a job out of the queue.
 */
#define _POSIX_C_SOURCE 200809L
#include "db/pool.h"
#include "server/app.h"
#include "server/chart/chart.h"
#include "server/chart/keypool.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/install/chartcache.h"
#include "server/install/chartsource.h"
#include "server/install/render_guard.h"
#include "tests/integration/coredb.h"
#include "tests/unit/testlib.h"

#include <pthread.h>
#include <time.h>

static struct chartsource_archive arc;   /* cilium-1.18.3.tgz */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- chart cache ---- */

struct getter { struct chart_cache *cc; const struct chartsource_archive *a; struct chart_ref *r; };

static void *get_thread(void *arg)
{
	struct getter *g = arg;
	char err[256];
	g->r = chart_cache_get(g->cc, g->a, err, sizeof err);
	return NULL;
}

static void test_cache_shares(void)
{
	struct chart_cache *cc = chart_cache_new(1);
	struct getter g[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		g[i] = (struct getter){ cc, &arc, NULL };
		pthread_create(&th[i], NULL, get_thread, &g[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	int entries;
	long loads;
	chart_cache_stats(cc, &entries, &loads);
	check(loads == 1 && entries == 1);
	for (int i = 0; i < 8; i++) {
		check(g[i].r != NULL);
		check(chart_ref_chart(g[i].r) == chart_ref_chart(g[0].r));
	}
	check(!strcmp(chart_version(chart_ref_chart(g[0].r)), "1.18.3"));
	/* the same bytes uploaded by a tenant: an entry of its own */
	struct chartsource_archive up = arc;
	snprintf(up.owner_tenant, sizeof up.owner_tenant, "%s", "00000000-0000-0000-0000-00000000000a");
	char err[256];
	struct chart_ref *ra = chart_cache_get(cc, &up, err, sizeof err);
	snprintf(up.owner_tenant, sizeof up.owner_tenant, "%s", "00000000-0000-0000-0000-00000000000b");
	struct chart_ref *rb = chart_cache_get(cc, &up, err, sizeof err);
	check(ra && rb && chart_ref_chart(ra) != chart_ref_chart(rb));
	check(chart_ref_chart(ra) != chart_ref_chart(g[0].r));
	chart_cache_stats(cc, &entries, &loads);
	check(loads == 3 && entries == 3);
	for (int i = 0; i < 8; i++)
		chart_cache_put(cc, g[i].r);
	chart_cache_put(cc, ra);
	chart_cache_put(cc, rb);
	/* nothing in use: at most idle_max (1) kept, the most recently used */
	chart_cache_stats(cc, &entries, &loads);
	check(entries == 1);
	snprintf(up.owner_tenant, sizeof up.owner_tenant, "%s", "00000000-0000-0000-0000-00000000000b");
	rb = chart_cache_get(cc, &up, err, sizeof err);
	chart_cache_stats(cc, &entries, &loads);
	check(loads == 3);   /* still there: no new load */
	chart_cache_put(cc, rb);
	chart_cache_free(cc);
}

static void test_cache_bad_and_none(void)
{
	struct chart_cache *cc = chart_cache_new(4);
	struct chartsource_archive bad = { 0 };
	bad.data = (unsigned char *)"not a chart at all";
	bad.len = strlen((char *)bad.data);
	snprintf(bad.sha256, sizeof bad.sha256, "%064d", 0);
	char err[256] = "";
	check(chart_cache_get(cc, &bad, err, sizeof err) == NULL);
	check(err[0] != 0);
	int entries;
	long loads;
	chart_cache_stats(cc, &entries, &loads);
	check(entries == 0);
	chart_cache_free(cc);
	/* no cache: private charts */
	struct chart_ref *a = chart_cache_get(NULL, &arc, err, sizeof err);
	struct chart_ref *b = chart_cache_get(NULL, &arc, err, sizeof err);
	check(a && b && chart_ref_chart(a) != chart_ref_chart(b));
	chart_cache_put(NULL, a);
	chart_cache_put(NULL, b);
}

struct renderer { const struct chart *ch; size_t ndocs; char *manifest_head; };

static void *render_thread(void *arg)
{
	struct renderer *r = arg;
	char err[512];
	json_t *vals = json_pack("{s:{s:s}}", "cluster", "name", "shared");
	struct chart_render_opts ro = { .release_name = "cilium", .namespace_ = "kube-system", .output_discarded = 1 };
	struct chart_render *rd = chart_render(r->ch, vals, &ro, err, sizeof err);
	if (rd) {
		r->ndocs = json_array_size(chart_render_documents(rd));
		/* what each document is (certificates and random tokens differ
		 * from render to render, the objects do not) */
		struct buf b = BUF_INIT;
		size_t i;
		const json_t *d;
		json_array_foreach(chart_render_documents(rd), i, d) {
			const json_t *o = json_object_get(d, "object");
			buf_printf(&b, "%s %s %s\n", json_string_value(json_object_get(d, "source")),
				   json_string_value(json_object_get(o, "kind")),
				   json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
		}
		r->manifest_head = strdup(buf_cstr(&b));
		buf_free(&b);
	}
	chart_render_free(rd);
	json_decref(vals);
	return NULL;
}

/* Renders of one shared chart at once: each gets the full, same result,
 * and the chart is unchanged afterwards (ASan/UBSan watch the memory). */
static void test_cache_concurrent_renders(void)
{
	struct chart_cache *cc = chart_cache_new(2);
	char err[256];
	struct chart_ref *ref = chart_cache_get(cc, &arc, err, sizeof err);
	check(ref != NULL);
	if (!ref) {
		chart_cache_free(cc);
		return;
	}
	struct renderer r[3] = { { chart_ref_chart(ref), 0, NULL }, { chart_ref_chart(ref), 0, NULL },
				 { chart_ref_chart(ref), 0, NULL } };
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, render_thread, &r[i]);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	check(r[0].ndocs > 20);
	for (int i = 1; i < 3; i++) {
		check(r[i].ndocs == r[0].ndocs);
		check(r[i].manifest_head && r[0].manifest_head && !strcmp(r[i].manifest_head, r[0].manifest_head));
	}
	/* a render after them is still the same */
	struct renderer after = { chart_ref_chart(ref), 0, NULL };
	render_thread(&after);
	check(after.ndocs == r[0].ndocs);
	for (int i = 0; i < 3; i++)
		free(r[i].manifest_head);
	free(after.manifest_head);
	chart_cache_put(cc, ref);
	chart_cache_free(cc);
}

/* ---- render slots ---- */

static char db_url[512];

struct waiter {
	struct runner_ctx ctx;
	struct runner_flags flags;
	struct db_job_claim job;
	enum phase_rc rc;
	int done;
	int order;            /* when it got its slot */
	int have_conn_after;  /* a connection again after the wait */
};

static atomic_int order_counter;

static void waiter_init(struct waiter *w, struct app *app, struct db_pool *pool, const char *id)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->job.id, sizeof w->job.id, "%s", id);
	w->ctx.app = app;
	w->ctx.flags = &w->flags;
	w->ctx.job = &w->job;
	w->ctx.pool = pool;
}

static void *slot_thread(void *arg)
{
	struct waiter *w = arg;
	w->ctx.conn = db_acquire(w->ctx.pool, 10000);
	w->rc = render_slot_acquire(&w->ctx);
	w->order = atomic_fetch_add(&order_counter, 1);
	w->have_conn_after = w->ctx.conn != NULL;
	if (w->rc == PHASE_OK)
		render_slot_release(&w->ctx);
	if (w->ctx.conn)
		db_release(w->ctx.pool, w->ctx.conn);
	w->ctx.conn = NULL;
	w->done = 1;
	return NULL;
}

static int wait_queued(struct render_slots *s, int want)
{
	for (int i = 0; i < 400; i++) {
		int run, q;
		render_slots_usage(s, &run, &q);
		if (q == want)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static void test_slots_queue_and_lend(void)
{
	char err[256];
	struct db_pool *pool = db_pool_new(db_url, 1, err, sizeof err);
	check(pool != NULL);
	if (!pool)
		return;
	struct app app;
	memset(&app, 0, sizeof app);
	app.render_slots = render_slots_new(1);
	/* the holder: no pool, no connection */
	struct waiter holder;
	waiter_init(&holder, &app, NULL, "holder");
	check(render_slot_acquire(&holder.ctx) == PHASE_OK);
	int run, q;
	render_slots_usage(app.render_slots, &run, &q);
	check(run == 1 && q == 0);
	/* B queues with the pool's only connection ... */
	struct waiter b;
	waiter_init(&b, &app, pool, "b");
	pthread_t tb;
	pthread_create(&tb, NULL, slot_thread, &b);
	check(wait_queued(app.render_slots, 1));
	/* ... which it lent out: we can take it */
	PGconn *c = db_acquire(pool, 3000);
	check(c != NULL);
	if (c) {
		PGresult *r = PQexec(c, "SELECT 1");
		check(PQresultStatus(r) == PGRES_TUPLES_OK);
		PQclear(r);
	}
	/* C queues behind B (it waits for the connection first: give it
	 * back so C can take it, queue, and lend it again) */
	struct waiter cw;
	waiter_init(&cw, &app, pool, "c");
	pthread_t tc;
	pthread_create(&tc, NULL, slot_thread, &cw);
	sleep_ms(100);
	if (c)
		db_release(pool, c);
	check(wait_queued(app.render_slots, 2));
	check(!b.done && !cw.done);
	/* the slot goes to B, then C, each with a connection again */
	render_slot_release(&holder.ctx);
	pthread_join(tb, NULL);
	pthread_join(tc, NULL);
	check(b.rc == PHASE_OK && cw.rc == PHASE_OK);
	check(b.order < cw.order);
	check(b.have_conn_after && cw.have_conn_after);
	render_slots_usage(app.render_slots, &run, &q);
	check(run == 0 && q == 0);
	render_slots_free(app.render_slots);
	db_pool_free(pool);
}

static void test_slots_cancel_and_stop(void)
{
	char err[256];
	struct db_pool *pool = db_pool_new(db_url, 2, err, sizeof err);
	check(pool != NULL);
	if (!pool)
		return;
	struct app app;
	memset(&app, 0, sizeof app);
	app.render_slots = render_slots_new(1);
	struct waiter holder;
	waiter_init(&holder, &app, NULL, "holder");
	check(render_slot_acquire(&holder.ctx) == PHASE_OK);
	/* a cancel (as the heartbeat reports it) takes a queued job out */
	struct waiter d;
	waiter_init(&d, &app, pool, "d");
	pthread_t td;
	pthread_create(&td, NULL, slot_thread, &d);
	check(wait_queued(app.render_slots, 1));
	atomic_store(&d.flags.cancel_requested, 1);
	pthread_join(td, NULL);
	check(d.rc == PHASE_FAIL);
	check(strstr(d.ctx.message, "cancelled") != NULL);
	check(d.have_conn_after);
	int run, q;
	render_slots_usage(app.render_slots, &run, &q);
	check(run == 1 && q == 0);
	/* shutdown: PHASE_ABORT (the phase re-runs later) */
	struct waiter e;
	waiter_init(&e, &app, pool, "e");
	pthread_t te;
	pthread_create(&te, NULL, slot_thread, &e);
	check(wait_queued(app.render_slots, 1));
	app.stopping = 1;
	pthread_join(te, NULL);
	check(e.rc == PHASE_ABORT);
	app.stopping = 0;
	/* the holder's slot still works for the next job */
	render_slot_release(&holder.ctx);
	struct waiter f;
	waiter_init(&f, &app, NULL, "f");
	check(render_slot_acquire(&f.ctx) == PHASE_OK);
	render_slot_release(&f.ctx);
	render_slots_usage(app.render_slots, &run, &q);
	check(run == 0 && q == 0);
	render_slots_free(app.render_slots);
	db_pool_free(pool);
}

int main(void)
{
	const char *shared = getenv("FERRY_SHARED");
	char path[512];
	snprintf(path, sizeof path, "%s/charts/cilium-1.18.3.tgz", shared ? shared : "../shared");
	size_t n = 0;
	arc.data = (unsigned char *)read_file_all(path, &n);
	arc.len = n;
	if (!arc.data) {
		test_skip("chart_cache_shares_one_load", "no cilium-1.18.3.tgz (FERRY_SHARED)");
	} else {
		sha256_hex(arc.data, arc.len, arc.sha256);
		test_run("chart_cache_shares_one_load", test_cache_shares);
		test_run("chart_cache_bad_archive_and_no_cache", test_cache_bad_and_none);
		test_run("chart_cache_concurrent_renders", test_cache_concurrent_renders);
	}
	free(arc.data);
	keypool_stop();   /* the scratch key */
	char why[512] = "";
	if (coredb_create("ferry_render_slots", db_url, sizeof db_url, why, sizeof why) != 0) {
		test_skip("render_slots_queue_and_lend", why);
		test_skip("render_slots_cancel_and_stop", why);
		return test_summary();
	}
	test_run("render_slots_queue_and_lend", test_slots_queue_and_lend);
	test_run("render_slots_cancel_and_stop", test_slots_cancel_and_stop);
	coredb_drop(db_url);
	return test_summary();
}
