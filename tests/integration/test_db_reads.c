/*
 * Integration tests of the API read path's database side (issue 14)
 * against a real PostgreSQL:
 *  - db/dbq prepares each statement once per connection, keeps answering
 *    exactly as before (rows, errors, conflicts), prepares again after the
 *    pool resets a connection the server closed, after DISCARD ALL, and
 *    holds at most 256 statements per connection;
 *  - dbq_json_body() gives, for PostgreSQL's JSON text, the very bytes the
 *    API sent when it parsed that text with jansson and printed it again
 *    (strings full of quotes, backslashes, control characters, non-ASCII
 *    and astral characters), and refuses broken text;
 *  - db/tokencache: bounded, expires, drops a put that raced an
 *    invalidation, and empties itself when a token is revoked by SQL from
 *    another connection (the NOTIFY trigger of migration 017).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "db/clusters.h"
#include "db/dbq.h"
#include "db/jobs.h"
#include "db/pool.h"
#include "db/tokencache.h"
#include "db/tokens.h"
#include "tests/integration/coredb.h"
#include "tests/unit/testlib.h"

static char url[512];
static PGconn *admin;

static long prepared_count(PGconn *c)
{
	return coredb_long(c, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'ferry\\_%'");
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_prepared_reused(void)
{
	PGconn *c = PQconnectdb(url);
	char err[256];
	json_t *row = NULL;
	const char *p[1] = { "7" };
	const char *sql = "SELECT json_build_object('n', $1::int + 1)";
	long before = prepared_count(c);
	for (int i = 0; i < 3; i++) {
		check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
		check(json_integer_value(json_object_get(row, "n")) == 8);
		json_decref(row);
	}
	/* Prepared once, used three times. */
	check(prepared_count(c) == before + 1);
	check(coredb_long(c, "SELECT count(*) FROM pg_prepared_statements"
			     " WHERE statement = 'SELECT json_build_object(''n'', $1::int + 1)'") == 1);
	/* Errors are the same as unprepared ones: a bad value, a syntax error,
	 * a unique violation. */
	const char *bad[1] = { "x" };
	check(dbq_json_row(c, sql, 1, bad, &row, err, sizeof(err)) == DB_INVALID);
	check(strstr(err, "invalid input syntax") != NULL);
	check(dbq_exec(c, "SELEC 1", 0, NULL, NULL, err, sizeof(err)) == DB_ERROR);
	check(strstr(err, "syntax error") != NULL);
	check(dbq_exec(c, "CREATE TEMP TABLE u (k int UNIQUE)", 0, NULL, NULL, err, sizeof(err)) == DB_OK);
	long n = 0;
	check(dbq_exec(c, "INSERT INTO u VALUES ($1)", 1, p, &n, err, sizeof(err)) == DB_OK && n == 1);
	check(dbq_exec(c, "INSERT INTO u VALUES ($1)", 1, p, &n, err, sizeof(err)) == DB_CONFLICT);
	/* Inside a transaction, and after one that failed. */
	check(dbq_exec(c, "BEGIN", 0, NULL, NULL, err, sizeof(err)) == DB_OK);
	check(dbq_exec(c, "INSERT INTO u VALUES ($1)", 1, p, &n, err, sizeof(err)) == DB_CONFLICT);
	check(dbq_exec(c, "ROLLBACK", 0, NULL, NULL, err, sizeof(err)) == DB_OK);
	check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
	json_decref(row);
	PQfinish(c);
}

static void test_prepared_discard(void)
{
	PGconn *c = PQconnectdb(url);
	char err[256];
	json_t *row = NULL;
	const char *p[1] = { "1" };
	const char *sql = "SELECT json_build_object('n', $1::int * 2)";
	check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
	json_decref(row);
	/* The server forgets every prepared statement; dbq prepares again. */
	PQclear(PQexec(c, "DISCARD ALL"));
	check(prepared_count(c) == 0);
	row = NULL;
	check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
	check(json_integer_value(json_object_get(row, "n")) == 2);
	json_decref(row);
	row = NULL;
	check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
	json_decref(row);
	check(prepared_count(c) == 1);
	PQfinish(c);
}

static void test_prepared_pool_reset(void)
{
	char err[256];
	struct db_pool *pool = db_pool_new(url, 1, err, sizeof(err));
	check(pool != NULL);
	if (!pool)
		return;
	PGconn *c = db_acquire(pool, 5000);
	json_t *row = NULL;
	const char *p[1] = { "41" };
	const char *sql = "SELECT json_build_object('n', $1::int + 1)";
	check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
	json_decref(row);
	check(prepared_count(c) >= 1);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(c));
	db_release(pool, c);
	/* The server ends the session (as a restart does): the pool notices
	 * the closed connection and resets it; the new session has no
	 * prepared statements and dbq prepares its statement again. */
	char sql_kill[128];
	snprintf(sql_kill, sizeof(sql_kill), "SELECT pg_terminate_backend(%s)", pid);
	coredb_value(admin, sql_kill, NULL, 0);
	sleep_ms(200);
	c = db_acquire(pool, 5000);
	check(c != NULL);
	if (c) {
		check(PQbackendPID(c) != atoi(pid));
		check(prepared_count(c) == 0);
		row = NULL;
		check(dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) == DB_OK);
		check(json_integer_value(json_object_get(row, "n")) == 42);
		json_decref(row);
		check(prepared_count(c) == 1);
		db_release(pool, c);
	}
	db_pool_free(pool);
}

static void test_prepared_bounded(void)
{
	PGconn *c = PQconnectdb(url);
	char err[256];
	int ok = 1;
	/* 300 different texts: the first 256 are prepared, the rest run
	 * unnamed, every one answers. */
	for (int i = 0; i < 300; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT json_build_object('n', %d + $1::int)", i);
		const char *p[1] = { "1" };
		json_t *row = NULL;
		if (dbq_json_row(c, sql, 1, p, &row, err, sizeof(err)) != DB_OK ||
		    json_integer_value(json_object_get(row, "n")) != i + 1)
			ok = 0;
		json_decref(row);
	}
	check(ok);
	check(prepared_count(c) == 256);
	PQfinish(c);
}

/* The API's body before issue 14: jansson's parse and compact print. */
static char *jansson_body(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
	if (!v)
		return NULL;
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(v);
	size_t n = strlen(s);
	s = realloc(s, n + 2);
	s[n] = '\n';
	s[n + 1] = '\0';
	return s;
}

static void test_json_body(void)
{
	/* Values as PostgreSQL stores and prints them: text through
	 * json_build_object, jsonb (labels, params), nested. */
	static const char *const values[] = {
		"plain",
		"quote \" backslash \\ slash / done",
		"tab\tnewline\ncr\rbell\x07 esc\x1b del\x7f",
		"caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xe2\x82\xac",
		"astral \xf0\x9f\x9a\x80 \xf0\x9d\x84\x9e",
		"",
	};
	PGconn *c = admin;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *p[1] = { values[i] };
		PGresult *r = PQexecParams(c,
					   "SELECT json_build_object('s', $1::text, 'n', 12, 'neg', -3,"
					   " 'b', true, 'z', null, 'j', jsonb_build_object('k', $1::text,"
					   " 'a', jsonb_build_array(1, $1::text, '{}'::jsonb, '[]'::jsonb)),"
					   " 'arr', json_build_array($1::text, 2))::text",
					   1, NULL, p, NULL, NULL, 0);
		check(PQresultStatus(r) == PGRES_TUPLES_OK);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			continue;
		}
		const char *text = PQgetvalue(r, 0, 0);
		char *want = jansson_body(text);
		char *got = dbq_json_body(text);
		check(want != NULL);
		check_str(got, want);
		free(want);
		free(got);
		PQclear(r);
	}
	/* Escapes PostgreSQL's json type keeps as written. */
	static const char *const texts[] = {
		"{\"a\" : \"\\u00e9\\u4E2D\\ud83d\\ude80\\/\\b\\f\\u001f\"}",
		"[1, 2.5, -0, 1e3, \"x\"]",
		"  {\"nested\": {\"deep\": [[], {}, [null]]}}  ",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *got = dbq_json_body(texts[i]);
		json_t *g = got ? json_loads(got, 0, NULL) : NULL;
		json_t *w = json_loads(texts[i], JSON_DECODE_ANY, NULL);
		check(g && w && json_equal(g, w));
		json_decref(g);
		json_decref(w);
		if (i == 0) {
			char *want = jansson_body(texts[i]);
			check_str(got, want);
			free(want);
		}
		free(got);
	}
	/* Broken text is refused, as jansson refused it. */
	static const char *const broken[] = {
		"{\"a\": \"\xff\"}",          /* not UTF-8 */
		"{\"a\": \"\xc0\xaf\"}",      /* overlong */
		"{\"a\": \"\\ud800\"}",       /* lone surrogate */
		"{\"a\": \"\\u0000\"}",       /* NUL */
		"{\"a\": \"\\x\"}",           /* unknown escape */
		"{\"a\": \"open",             /* unterminated */
		"",
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		char *got = dbq_json_body(broken[i]);
		check(got == NULL);
		free(got);
	}
}

/* A job and a cluster read through the pass-through getters equal the
 * jansson path, byte for byte, with non-ASCII and escapes in them. */
static void test_bodies_equal(void)
{
	char tenant[DB_ID_LEN] = "", cluster[DB_ID_LEN] = "", job[DB_ID_LEN] = "";
	coredb_value(admin, "INSERT INTO tenants (name) VALUES ('reads') RETURNING id", tenant, sizeof(tenant));
	char sql[1024];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO clusters (tenant_id, name, profile, api_server, credentials, credentials_key_id,"
		 " labels) VALUES ('%s', 'c1', 'tke', 'https://127.0.0.1:1', 'v1:k1:x', 'k1',"
		 " '{\"team\": \"caf\xc3\xa9 \\\"q\\\" \xf0\x9f\x9a\x80\", \"n\": \"1\"}') RETURNING id",
		 tenant);
	coredb_value(admin, sql, cluster, sizeof(cluster));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO jobs (tenant_id, cluster_id, kind, params) VALUES ('%s', '%s', 'install',"
		 " '{\"values_yaml\": \"a: \\\"b\\\"\\n\\tc: \xe2\x82\xac\\n\", \"n\": 3}') RETURNING id",
		 tenant, cluster);
	coredb_value(admin, sql, job, sizeof(job));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO job_phases (job_id, seq, name, state, detail, message) VALUES"
		 " ('%s', 1, 'preflight', 'succeeded', '{\"nodes\": 3, \"why\": \"\\u00e9\\\\\"}', 'ok \xc3\xa9')",
		 job);
	check(coredb_value(admin, sql, NULL, 0) == 0);

	char err[256];
	json_t *cj = NULL;
	int v1 = 0, v2 = 0;
	char *cb = NULL;
	check(db_cluster_get(admin, tenant, cluster, &cj, &v1, err, sizeof(err)) == DB_OK);
	check(db_cluster_get_body(admin, tenant, cluster, &cb, &v2, err, sizeof(err)) == DB_OK);
	char *cwant = cj ? json_dumps(cj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	check(cb && cwant && strlen(cb) == strlen(cwant) + 1 && !strncmp(cb, cwant, strlen(cwant)));
	check(v1 == v2 && v1 >= 1);
	free(cwant);
	free(cb);
	json_decref(cj);
	/* Another tenant sees nothing. */
	cb = NULL;
	check(db_cluster_get_body(admin, "00000000-0000-0000-0000-000000000000", cluster, &cb, &v2, err,
				  sizeof(err)) == DB_NOT_FOUND && !cb);

	json_t *jj = db_job_get_json(admin, tenant, job, err, sizeof(err));
	char *jb = db_job_get_body(admin, tenant, job, err, sizeof(err));
	char *jwant = jj ? json_dumps(jj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	check(jb && jwant && strlen(jb) == strlen(jwant) + 1 && !strncmp(jb, jwant, strlen(jwant)));
	check(jb && strstr(jb, "\\u00E9") != NULL);
	free(jwant);
	free(jb);
	json_decref(jj);
	jb = db_job_get_body(admin, "00000000-0000-0000-0000-000000000000", job, err, sizeof(err));
	check(jb == NULL && err[0] == '\0');
	/* Platform-wide callers (tenant NULL) see it. */
	jb = db_job_get_body(admin, NULL, job, err, sizeof(err));
	check(jb != NULL);
	free(jb);
}

static void fake_hash(int i, char out[65])
{
	/* Spread over the sets like SHA-256 output would be. */
	unsigned long x = (unsigned long)i * 2654435761UL + 12345;
	for (int k = 0; k < 64; k++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		out[k] = "0123456789abcdef"[(x >> 59) & 15];
	}
	out[64] = '\0';
}

static int wait_listening(struct tokencache *tc)
{
	for (int i = 0; i < 100; i++) {
		if (tokencache_listening(tc))
			return 1;
		sleep_ms(50);
	}
	return 0;
}

static void test_tokencache_bounded_ttl(void)
{
	struct tokencache *tc = tokencache_new(url, 8, 300);
	check(tc != NULL);
	if (!tc)
		return;
	check(wait_listening(tc));
	struct db_token_info info = { .id = "x", .role = "viewer" }, got;
	uint64_t gen;
	char h[65];
	for (int i = 0; i < 200; i++) {
		fake_hash(i, h);
		check(tokencache_get(tc, h, &got, &gen) == 0);
		tokencache_put(tc, h, &info, gen);
		check(tokencache_count(tc) <= 8);
	}
	check(tokencache_count(tc) == 8);
	/* The last one is there; it expires after the TTL. */
	check(tokencache_get(tc, h, &got, &gen) == 1 && !strcmp(got.role, "viewer"));
	sleep_ms(400);
	check(tokencache_get(tc, h, &got, &gen) == 0);
	/* A put that raced an invalidation is dropped. */
	fake_hash(7, h);
	check(tokencache_get(tc, h, &got, &gen) == 0);
	tokencache_clear(tc);
	tokencache_put(tc, h, &info, gen);
	check(tokencache_get(tc, h, &got, &gen) == 0);
	tokencache_put(tc, h, &info, gen);
	check(tokencache_get(tc, h, &got, &gen) == 1);
	/* Not a hash: never cached. */
	tokencache_put(tc, "short", &info, gen);
	check(tokencache_get(tc, "short", &got, &gen) == 0);
	tokencache_free(tc);
}

static void test_tokencache_notify(void)
{
	struct tokencache *tc = tokencache_new(url, 64, 60000);
	check(tc != NULL);
	if (!tc)
		return;
	check(wait_listening(tc));
	char id[DB_ID_LEN] = "";
	coredb_value(admin,
		     "INSERT INTO api_tokens (name, role, token_hash) VALUES ('n', 'admin',"
		     " repeat('ab', 32)) RETURNING id",
		     id, sizeof(id));
	char h[65];
	memset(h, 0, sizeof(h));
	for (int i = 0; i < 32; i++)
		memcpy(h + 2 * i, "ab", 2);
	PGconn *c = PQconnectdb(url);
	struct db_token_info info, got;
	uint64_t gen;
	char err[256];
	check(tokencache_get(tc, h, &got, &gen) == 0);
	check(db_token_lookup(c, h, &info, err, sizeof(err)) == DB_OK);
	tokencache_put(tc, h, &info, gen);
	check(tokencache_get(tc, h, &got, &gen) == 1 && !strcmp(got.id, id));
	/* last_used_at changes notify nothing: the entry stays. */
	coredb_value(admin, "UPDATE api_tokens SET last_used_at = now() - interval '1 hour'", NULL, 0);
	sleep_ms(100);
	check(tokencache_get(tc, h, &got, &gen) == 1);
	/* Revoked by SQL on another connection: the very next lookup misses
	 * (the notification is on the socket before the UPDATE returns). */
	coredb_value(admin, "UPDATE api_tokens SET revoked_at = now()", NULL, 0);
	int missed = 0;
	for (int i = 0; i < 100 && !missed; i++) {
		missed = tokencache_get(tc, h, &got, &gen) == 0;
		if (!missed)
			sleep_ms(10);
	}
	check(missed);
	check(db_token_lookup(c, h, &info, err, sizeof(err)) == DB_NOT_FOUND);
	/* A listener connection cut by the server: the cache is off (and
	 * empty) until it is back, then works again. */
	coredb_value(admin, "UPDATE api_tokens SET revoked_at = NULL", NULL, 0);
	check(db_token_lookup(c, h, &info, err, sizeof(err)) == DB_OK);
	check(tokencache_get(tc, h, &got, &gen) == 0);
	tokencache_put(tc, h, &info, gen);
	check(tokencache_get(tc, h, &got, &gen) == 1);
	uint64_t before_loss = gen;
	coredb_value(admin,
		     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		     " WHERE application_name = '" TOKENCACHE_APP_NAME "'",
		     NULL, 0);
	sleep_ms(100);
	/* Emptied (at the loss, and again at the reconnect). */
	check(tokencache_get(tc, h, &got, &gen) == 0);
	check(wait_listening(tc));
	/* An answer read before the loss is not stored after it. */
	tokencache_put(tc, h, &info, before_loss);
	check(tokencache_get(tc, h, &got, &gen) == 0);
	tokencache_put(tc, h, &info, gen);
	check(tokencache_get(tc, h, &got, &gen) == 1);
	PQfinish(c);
	tokencache_free(tc);
}

int main(void)
{
	char why[512];
	if (coredb_create("ferry_db_reads", url, sizeof(url), why, sizeof(why)) != 0) {
		test_skip("db_reads", why);
		return test_summary();
	}
	admin = PQconnectdb(url);
	PQsetNoticeProcessor(admin, coredb_quiet, NULL);
	if (coredb_migrate(admin, why, sizeof(why)) != 0) {
		printf("FAIL: db_reads: migrations: %s\n", why);
		return 1;
	}
	test_run("dbq_prepared_once_same_answers", test_prepared_reused);
	test_run("dbq_prepared_after_discard_all", test_prepared_discard);
	test_run("dbq_prepared_survive_pool_reset", test_prepared_pool_reset);
	test_run("dbq_prepared_bounded_per_connection", test_prepared_bounded);
	test_run("dbq_json_body_equals_jansson", test_json_body);
	test_run("db_get_bodies_equal_json_path", test_bodies_equal);
	test_run("tokencache_bounded_ttl_race", test_tokencache_bounded_ttl);
	test_run("tokencache_notify_revoke_listener_loss", test_tokencache_notify);
	PQfinish(admin);
	coredb_drop(url);
	return test_summary();
}
