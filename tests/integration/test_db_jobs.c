/*
 * Integration tests of db/migrate and db/jobs against a real PostgreSQL:
 * migrations applied once with checksums, enqueue with idempotency keys and
 * the one-active-job rule (also under concurrent enqueues), claims with
 * SKIP LOCKED, lease expiry and takeover, fencing of stale writers, cancel,
 * listing with cursors, events.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/jobs.h"
#include "db/migrate.h"
#include "tests/integration/coredb.h"
#include "tests/unit/testlib.h"

static char url[512];
static PGconn *conn;
static char tenant[DB_ID_LEN], tenant2[DB_ID_LEN], cluster[DB_ID_LEN], cluster2[DB_ID_LEN];

static void make_cluster(const char *tenant_id, const char *name, char out[DB_ID_LEN])
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO clusters (tenant_id, name, profile, api_server, credentials, credentials_key_id) "
		 "VALUES ('%s', '%s', 'tke', 'https://127.0.0.1:1', 'v1:k1:x', 'k1') RETURNING id",
		 tenant_id, name);
	coredb_value(conn, sql, out, DB_ID_LEN);
}

static void test_migrations(void)
{
	char err[1024];
	size_t n;
	const struct db_migration *list = db_migrations_builtin(&n);
	check(n >= 2);
	check(list[0].version == 1 && !strcmp(list[0].name, "001_init.sql"));
	check(db_migrate_is_current(conn, list, n) == 0);
	check(db_migrate_apply(conn, list, n, err, sizeof(err)) == (int)n);
	check(db_migrate_is_current(conn, list, n) == 1);
	/* Second run: nothing to do. */
	check(db_migrate_apply(conn, list, n, err, sizeof(err)) == 0);
	check(coredb_long(conn, "SELECT count(*) FROM ferry_schema_migrations") == (long)n);
	/* An edited, applied migration is refused and nothing changes. */
	struct db_migration edited[2] = { list[0], { 999, "999_new.sql", "CREATE TABLE should_not_exist (x int);" } };
	edited[0].sql = "-- edited\nSELECT 1;";
	check(db_migrate_apply(conn, edited, 2, err, sizeof(err)) == -1);
	check(strstr(err, "001_init.sql was changed") != NULL);
	check(coredb_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'should_not_exist'") == 0);
	check(db_migrate_is_current(conn, edited, 1) == 0);
	/* A failing migration leaves no trace and names its file. */
	struct db_migration broken[1] = { { 998, "998_broken.sql", "CREATE TABLE half_done (x int); SELECT nonsense_fn();" } };
	check(db_migrate_apply(conn, broken, 1, err, sizeof(err)) == -1);
	check(strstr(err, "998_broken.sql failed") != NULL);
	check(coredb_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'") == 0);
	check(coredb_long(conn, "SELECT count(*) FROM ferry_schema_migrations WHERE version = 998") == 0);
}

static void test_enqueue_rules(void)
{
	char err[512], id[DB_ID_LEN], active[DB_ID_LEN], id2[DB_ID_LEN];
	json_t *params = json_pack("{s:s}", "version", "1.18.3");
	struct db_job_new req = { tenant, cluster, "install", params, "key-1", NULL };
	check(db_job_enqueue(conn, &req, id, active, err, sizeof(err)) == DB_JOB_CREATED);
	/* Same key: the same job. */
	check(db_job_enqueue(conn, &req, id2, active, err, sizeof(err)) == DB_JOB_REPLAYED);
	check_str(id2, id);
	/* Another key, same cluster: conflict naming the active job. */
	req.idempotency_key = "key-2";
	active[0] = 0;
	check(db_job_enqueue(conn, &req, id2, active, err, sizeof(err)) == DB_JOB_CONFLICT);
	check_str(active, id);
	/* Other tenant's cluster is not found; bad kind refused. */
	struct db_job_new other = { tenant2, cluster, "install", NULL, NULL, NULL };
	check(db_job_enqueue(conn, &other, id2, active, err, sizeof(err)) == DB_JOB_NO_CLUSTER);
	struct db_job_new bad = { tenant, cluster, "explode", NULL, NULL, NULL };
	check(db_job_enqueue(conn, &bad, id2, active, err, sizeof(err)) == DB_JOB_BAD_KIND);
	/* The job as JSON, for the owner only. */
	json_t *j = db_job_get_json(conn, tenant, id, err, sizeof(err));
	check(j != NULL);
	check_str(json_string_value(json_object_get(j, "state")), "queued");
	check_str(json_string_value(json_object_get(j, "cluster_name")), "alpha");
	check_str(json_string_value(json_object_get(json_object_get(j, "params"), "version")), "1.18.3");
	check(json_is_array(json_object_get(j, "phases")));
	check(json_is_null(json_object_get(j, "started_at")));
	const char *created = json_string_value(json_object_get(j, "created_at"));
	check(created && strlen(created) == 24 && created[10] == 'T' && created[23] == 'Z');
	json_decref(j);
	check(db_job_get_json(conn, tenant2, id, err, sizeof(err)) == NULL);
	check_str(err, "");
	check(db_job_get_json(conn, tenant, "not-a-uuid", err, sizeof(err)) == NULL);
	/* Cancel while queued: cancelled at once; then a new job may start. */
	check(db_job_cancel(conn, tenant2, id, err, sizeof(err)) == DB_CANCEL_NOT_FOUND);
	check(db_job_cancel(conn, tenant, id, err, sizeof(err)) == DB_CANCEL_DONE);
	check(db_job_cancel(conn, tenant, id, err, sizeof(err)) == DB_CANCEL_FINISHED);
	check(db_job_active_for_cluster(conn, cluster, active) == 0);
	req.idempotency_key = "key-3";
	check(db_job_enqueue(conn, &req, id2, active, err, sizeof(err)) == DB_JOB_CREATED);
	check(db_job_cancel(conn, NULL, id2, err, sizeof(err)) == DB_CANCEL_DONE);
	json_decref(params);
}

struct racer {
	const char *key;
	int result;
	char id[DB_ID_LEN];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	PGconn *c = PQconnectdb(url);
	char err[256], active[DB_ID_LEN];
	struct db_job_new req = { tenant, cluster2, "preflight", NULL, r->key, NULL };
	r->result = db_job_enqueue(c, &req, r->id, active, err, sizeof(err));
	PQfinish(c);
	return NULL;
}

static void test_concurrent_enqueue(void)
{
	enum { N = 12 };
	pthread_t t[N];
	struct racer r[N];
	char keys[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "race-%d", i % 4 == 0 ? 0 : i);
		r[i].key = keys[i];
		r[i].result = -99;
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	int created = 0, conflicts = 0, replayed = 0;
	for (int i = 0; i < N; i++) {
		created += r[i].result == DB_JOB_CREATED;
		conflicts += r[i].result == DB_JOB_CONFLICT;
		replayed += r[i].result == DB_JOB_REPLAYED;
	}
	check(created == 1);
	check(created + conflicts + replayed == N);
	check(coredb_long(conn, "SELECT count(*) FROM jobs WHERE state IN ('queued','running') "
				"AND cluster_id = (SELECT id FROM clusters WHERE name = 'beta')") == 1);
	/* Clean up: cancel it. */
	char active[DB_ID_LEN], err[256];
	if (db_job_active_for_cluster(conn, cluster2, active) == 1)
		db_job_cancel(conn, tenant, active, err, sizeof(err));
}

static void test_claim_lease_fencing(void)
{
	char err[512], id[DB_ID_LEN], active[DB_ID_LEN];
	struct db_job_new req = { tenant, cluster, "preflight", NULL, NULL, NULL };
	check(db_job_enqueue(conn, &req, id, active, err, sizeof(err)) == DB_JOB_CREATED);
	struct db_job_claim a, b;
	check(db_job_claim(conn, "A", 30, &a, err, sizeof(err)) == 1);
	check_str(a.id, id);
	check(a.attempt == 1);
	/* Nothing else to claim; a live lease is not stolen. */
	check(db_job_claim(conn, "B", 30, &b, err, sizeof(err)) == 0);
	const char *names[2] = { "one", "two" };
	check(db_job_phases_init(conn, id, a.lease_token, names, 2) == 1);
	check(db_job_phase_start(conn, id, a.lease_token, 1) == 1);
	check(db_job_phase_end(conn, id, a.lease_token, 1, "succeeded", "ok", NULL, 3) == 1);
	check(db_job_event(conn, id, a.lease_token, "info", "one", "hello") == 1);
	int cancel = -1;
	check(db_job_heartbeat(conn, id, a.lease_token, 30, &cancel) == 1);
	check(cancel == 0);

	/* A's lease expires; B takes over with a higher token. */
	char sql[256];
	snprintf(sql, sizeof(sql), "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = '%s'", id);
	coredb_value(conn, sql, NULL, 0);
	check(db_job_claim(conn, "B", 30, &b, err, sizeof(err)) == 1);
	check_str(b.id, id);
	check(b.lease_token > a.lease_token);
	check(b.attempt == 2);
	/* Every write of the stale holder A is refused. */
	check(db_job_heartbeat(conn, id, a.lease_token, 30, NULL) == 0);
	check(db_job_phase_start(conn, id, a.lease_token, 2) == 0);
	check(db_job_phase_end(conn, id, a.lease_token, 2, "failed", "stale", NULL, 1) == 0);
	check(db_job_event(conn, id, a.lease_token, "info", NULL, "stale event") == 0);
	check(db_job_finish(conn, id, a.lease_token, "failed", "stale", NULL) == 0);
	check(db_job_defer(conn, id, a.lease_token, 10) == 0);
	check(db_job_release(conn, id, a.lease_token) == 0);
	char states[2][16];
	int attempts[2];
	check(db_job_phase_states(conn, id, 2, states, attempts) == 0);
	check_str(states[0], "succeeded");
	check_str(states[1], "pending");
	check(attempts[1] == 0);
	/* Cancel while running: requested; the heartbeat reports it. */
	check(db_job_cancel(conn, tenant, id, err, sizeof(err)) == DB_CANCEL_REQUESTED);
	cancel = 0;
	check(db_job_heartbeat(conn, id, b.lease_token, 30, &cancel) == 1);
	check(cancel == 1);
	json_t *res = json_pack("{s:i}", "x", 1);
	check(db_job_finish(conn, id, b.lease_token, "cancelled", "cancelled by request", res) == 1);
	check(db_job_finish(conn, id, b.lease_token, "succeeded", NULL, NULL) == 0);
	json_decref(res);
	json_t *j = db_job_get_json(conn, tenant, id, err, sizeof(err));
	check_str(json_string_value(json_object_get(j, "state")), "cancelled");
	check(json_integer_value(json_object_get(json_object_get(j, "result"), "x")) == 1);
	json_t *ph = json_array_get(json_object_get(j, "phases"), 0);
	check_str(json_string_value(json_object_get(ph, "state")), "succeeded");
	check(json_integer_value(json_object_get(ph, "api_calls")) == 3);
	check(json_is_integer(json_object_get(ph, "duration_ms")));
	json_decref(j);
	/* Events: the stale one is absent; the finish event is there. */
	json_t *ev = db_job_events_json(conn, tenant, id, 0, 100, err, sizeof(err));
	json_t *items = json_object_get(ev, "items");
	int hello = 0, stale = 0, finished = 0;
	size_t i;
	json_t *e;
	json_array_foreach(items, i, e) {
		const char *m = json_string_value(json_object_get(e, "message"));
		hello += !strcmp(m, "hello");
		stale += !strcmp(m, "stale event");
		finished += !strncmp(m, "job cancelled", 13);
	}
	check(hello == 1 && stale == 0 && finished == 1);
	long long first = json_integer_value(json_object_get(json_array_get(items, 0), "id"));
	json_t *ev2 = db_job_events_json(conn, tenant, id, first, 100, err, sizeof(err));
	check(json_array_size(json_object_get(ev2, "items")) == json_array_size(items) - 1);
	check(db_job_events_json(conn, tenant2, id, 0, 100, err, sizeof(err)) == NULL);
	json_decref(ev);
	json_decref(ev2);
	db_job_claim_clear(&a);
	db_job_claim_clear(&b);
}

static void test_defer_and_list(void)
{
	char err[512], id[DB_ID_LEN], active[DB_ID_LEN];
	struct db_job_new req = { tenant, cluster, "upgrade", NULL, NULL, NULL };
	check(db_job_enqueue(conn, &req, id, active, err, sizeof(err)) == DB_JOB_CREATED);
	struct db_job_claim a;
	check(db_job_claim(conn, "A", 30, &a, err, sizeof(err)) == 1);
	check(db_job_defer(conn, id, a.lease_token, 60000) == 1);
	/* Deferred into the future: not claimable now, still the active job. */
	struct db_job_claim b;
	check(db_job_claim(conn, "B", 30, &b, err, sizeof(err)) == 0);
	check(db_job_active_for_cluster(conn, cluster, active) == 1);
	check(db_job_release(conn, id, a.lease_token) == 0);
	json_t *stats = db_job_stats_json(conn);
	check(json_integer_value(json_object_get(stats, "queued")) >= 1);
	json_decref(stats);
	db_job_cancel(conn, tenant, id, err, sizeof(err));
	db_job_claim_clear(&a);

	/* Pagination: walk every job of the tenant two at a time. */
	long total = coredb_long(conn, "SELECT count(*) FROM jobs WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'core-a')");
	int bad = 0, seen = 0, pages = 0;
	char cursor[DB_ID_LEN] = "";
	for (;;) {
		json_t *l = db_job_list_json(conn, tenant, NULL, NULL, 2, cursor[0] ? cursor : NULL, &bad, err, sizeof(err));
		check(l != NULL);
		if (!l)
			break;
		seen += (int)json_array_size(json_object_get(l, "items"));
		pages++;
		json_t *next = json_object_get(l, "next_cursor");
		int more = json_is_string(next);
		if (more)
			snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
		json_decref(l);
		if (!more || pages > 100)
			break;
	}
	check(seen == total);
	check(pages == (total + 1) / 2 || pages == total / 2 + 1);
	json_t *l = db_job_list_json(conn, tenant, "cancelled", NULL, 200, NULL, &bad, err, sizeof(err));
	json_t *it;
	size_t i;
	json_array_foreach(json_object_get(l, "items"), i, it)
		check_str(json_string_value(json_object_get(it, "state")), "cancelled");
	json_decref(l);
	check(db_job_list_json(conn, tenant, "bogus", NULL, 10, NULL, &bad, err, sizeof(err)) == NULL && bad);
	check(db_job_list_json(conn, tenant, NULL, NULL, 10, "zzz", &bad, err, sizeof(err)) == NULL && bad);
	check(db_job_list_json(conn, tenant, NULL, NULL, 0, NULL, &bad, err, sizeof(err)) == NULL && bad);
	l = db_job_list_json(conn, tenant2, NULL, NULL, 10, NULL, &bad, err, sizeof(err));
	check(l && json_array_size(json_object_get(l, "items")) == 0);
	json_decref(l);
}

/* dbq_pipeline: the statements are one implicit transaction (a failure
 * rolls back the ones before it and skips the ones after), prepared again
 * after the server forgot them, and part of the caller's block inside one
 * (a "COMMIT" in the pipeline ends it). */
static void test_pipeline(void)
{
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TEMP TABLE pl (k int PRIMARY KEY)"));
	const char *one[1] = { "1" }, *two[1] = { "2" };
	struct dbq_call calls[3] = {
		{ "INSERT INTO pl VALUES ($1::int)", 1, one, NULL },
		{ "INSERT INTO pl VALUES ($1::int)", 1, one, NULL },  /* duplicate key */
		{ "INSERT INTO pl VALUES ($1::int)", 1, two, NULL },
	};
	check(dbq_pipeline(c, calls, 3) == -1);
	check(PQresultStatus(calls[0].res) == PGRES_COMMAND_OK);
	check(PQresultStatus(calls[1].res) == PGRES_FATAL_ERROR);
	check(PQresultStatus(calls[2].res) == PGRES_PIPELINE_ABORTED);
	dbq_pipeline_clear(calls, 3);
	check(PQtransactionStatus(c) == PQTRANS_IDLE);
	check(coredb_long(c, "SELECT count(*) FROM pl") == 0);
	/* After DISCARD ALL the prepared statements are gone: prepared again. */
	PQclear(PQexec(c, "DISCARD ALL"));
	PQclear(PQexec(c, "CREATE TEMP TABLE pl (k int PRIMARY KEY)"));
	calls[1].params = two;
	check(dbq_pipeline(c, calls, 2) == 0);
	dbq_pipeline_clear(calls, 2);
	check(coredb_long(c, "SELECT count(*) FROM pl") == 2);
	/* Inside a block: nothing is visible elsewhere until the COMMIT. */
	PGconn *other = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TABLE pl_shared (k int)"));
	PQclear(PQexec(c, "BEGIN"));
	struct dbq_call in[2] = { { "INSERT INTO pl_shared VALUES (7)", 0, NULL, NULL }, { "SELECT 1", 0, NULL, NULL } };
	check(dbq_pipeline(c, in, 2) == 0);
	dbq_pipeline_clear(in, 2);
	check(PQtransactionStatus(c) == PQTRANS_INTRANS);
	check(coredb_long(other, "SELECT count(*) FROM pl_shared") == 0);
	struct dbq_call end[2] = { { "INSERT INTO pl_shared VALUES (8)", 0, NULL, NULL }, { "COMMIT", 0, NULL, NULL } };
	check(dbq_pipeline(c, end, 2) == 0);
	dbq_pipeline_clear(end, 2);
	check(PQtransactionStatus(c) == PQTRANS_IDLE);
	check(coredb_long(other, "SELECT count(*) FROM pl_shared") == 2);
	PQclear(PQexec(c, "DROP TABLE pl_shared"));
	PQfinish(other);
	PQfinish(c);
}

/* The worker's path: the claim opens a block and returns the cluster's
 * connection settings; db_job_begin commits claim and begin together; a
 * step carries the phase's notes (in order, with their own time) and its
 * deferred writes in its transaction, and a stale token writes none of it. */
static void test_claim_begin_step(void)
{
	char err[512], id[DB_ID_LEN], active[DB_ID_LEN], cl[DB_ID_LEN];
	make_cluster(tenant, "gamma", cl);
	struct db_job_new req = { tenant, cl, "preflight", NULL, NULL, NULL };
	check(db_job_enqueue(conn, &req, id, active, err, sizeof(err)) == DB_JOB_CREATED);
	PGconn *other = PQconnectdb(url);
	struct db_job_claim a;
	check(db_job_claim_fair(conn, "A", "node", 30, 0, NULL, 0, 1, &a, err, sizeof(err)) == 1);
	check_str(a.id, id);
	check(PQtransactionStatus(conn) == PQTRANS_INTRANS);
	check(a.cluster.found);
	check_str(a.cluster.api_server, "https://127.0.0.1:1");
	check_str(a.cluster.credentials, "v1:k1:x");
	check(a.cluster.ca_bundle == NULL);
	/* Not committed yet: another session still sees the job queued. */
	char sql[256], v[64] = "";
	snprintf(sql, sizeof(sql), "SELECT state FROM jobs WHERE id = '%s'", id);
	coredb_value(other, sql, v, sizeof(v));
	check_str(v, "queued");
	const char *names[1] = { "preflight" };
	int started = 0;
	check(db_job_begin(conn, id, a.lease_token, names, 1, 1, "started", &started) == 1);
	check(started == 1);
	check(PQtransactionStatus(conn) == PQTRANS_IDLE);
	coredb_value(other, sql, v, sizeof(v));
	check_str(v, "running");

	/* A stale token: neither the step nor its guarded pre write lands. */
	const char *stale_p[3] = { cl, id, "0" };
	const char *guarded = "UPDATE clusters SET node_count = 99 WHERE id = $1::uuid AND EXISTS "
			      "(SELECT 1 FROM jobs WHERE id = $2::uuid AND lease_token = $3::bigint FOR SHARE)";
	struct dbq_call pre[1] = { { guarded, 3, stale_p, NULL } };
	struct db_job_note notes[2] = { { "info", "preflight", "first note", "2020-01-01 00:00:00+00" },
					{ "warn", NULL, "second \"note\"", NULL } };
	struct db_job_step st = { .notes = notes, .nnotes = 2, .pre = pre, .npre = 1, .end_seq = 1,
				  .end_state = "succeeded", .finish_state = "succeeded" };
	check(db_job_step(conn, id, a.lease_token - 1, &st, NULL, NULL) == 0);
	dbq_pipeline_clear(pre, 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM job_events WHERE job_id = '%s' AND message LIKE '%%note%%'", id);
	check(coredb_long(conn, sql) == 0);
	/* The current token: everything in one transaction. */
	char tok[32];
	snprintf(tok, sizeof(tok), "%lld", a.lease_token);
	const char *cur_p[3] = { cl, id, tok };
	pre[0].params = cur_p;
	st.event_level = "info";
	st.event_message = "phase done";
	check(db_job_step(conn, id, a.lease_token, &st, NULL, NULL) == 1);
	dbq_pipeline_clear(pre, 1);
	snprintf(sql, sizeof(sql), "SELECT node_count FROM clusters WHERE id = '%s'", cl);
	check(coredb_long(conn, sql) == 99);
	snprintf(sql, sizeof(sql), "SELECT string_agg(level || ':' || COALESCE(phase, '-') || ':' || message, '|' ORDER BY id)"
		 " FROM job_events WHERE job_id = '%s'", id);
	char evs[512] = "";
	coredb_value(conn, sql, evs, sizeof(evs));
	check_str(evs, "info:-:started|info:preflight:first note|warn:-:second \"note\"|info:-:phase done|info:-:job succeeded");
	snprintf(sql, sizeof(sql), "SELECT extract(year FROM at) FROM job_events WHERE job_id = '%s' AND message = 'first note'", id);
	check(coredb_long(conn, sql) == 2020);
	snprintf(sql, sizeof(sql), "SELECT state FROM jobs WHERE id = '%s'", id);
	coredb_value(conn, sql, v, sizeof(v));
	check_str(v, "succeeded");
	db_job_claim_clear(&a);
	PQfinish(other);
}

int main(void)
{
	char why[512];
	if (coredb_create("ferry_core_jobs", url, sizeof(url), why, sizeof(why)) != 0) {
		test_skip("db_jobs", why);
		return test_summary();
	}
	conn = PQconnectdb(url);
	test_run("migrate_once_checksums_refuse_edits", test_migrations);
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('core-a') RETURNING id", tenant, sizeof(tenant));
	coredb_value(conn, "INSERT INTO tenants (name) VALUES ('core-b') RETURNING id", tenant2, sizeof(tenant2));
	make_cluster(tenant, "alpha", cluster);
	make_cluster(tenant, "beta", cluster2);
	test_run("jobs_enqueue_idempotency_conflict_cancel", test_enqueue_rules);
	test_run("jobs_concurrent_enqueue_one_active", test_concurrent_enqueue);
	test_run("jobs_claim_lease_takeover_fencing", test_claim_lease_fencing);
	test_run("jobs_defer_list_cursor", test_defer_and_list);
	test_run("dbq_pipeline_one_transaction_reprepared", test_pipeline);
	test_run("jobs_claim_begin_step_one_round_trip_each", test_claim_begin_step);
	PQfinish(conn);
	coredb_drop(url);
	return test_summary();
}
