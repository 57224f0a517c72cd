/*
 * db/tokencache: token hash -> token facts, a few seconds at most, emptied
 * by NOTIFY ferry_tokens (see the header for the rules).
 *
 * Layout: capacity / 4 sets of 4 entries; a hash picks its set from its
 * first hex digits (SHA-256 output, so evenly spread). One mutex guards the
 * entries, the generation and the listening connection: the listener
 * thread waits on the socket without it and takes it to read; a lookup
 * takes it, reads whatever already arrived on the socket (a poll() with no
 * wait) and then looks. The generation counts invalidations; a put carries
 * the generation its miss saw and is dropped when it changed.
 *
 * Acknowledgements: the listener session is named TOKENCACHE_APP_NAME and,
 * after emptying the cache for a notification, runs "SELECT 1", which moves
 * its state_change in pg_stat_activity; a revoking process waits until no
 * listener session of the database is older than the revocation's start.
 */
#include "db/tokencache.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "server/common/buf.h"
#include "server/log.h"

#define WAYS 4

struct tc_entry {
	char hash[65];           /* "" = free */
	struct db_token_info info;
	long long stored_ms;     /* monotonic */
};

struct tokencache {
	pthread_mutex_t mu;
	struct tc_entry *entries;
	int nsets;
	long long ttl_ms;
	uint64_t gen;
	PGconn *listen;          /* NULL while not listening */
	char *url;
	volatile int stopping;
	pthread_t thread;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Caller holds mu. */
static void clear_locked(struct tokencache *tc)
{
	for (int i = 0; i < tc->nsets * WAYS; i++)
		tc->entries[i].hash[0] = '\0';
	tc->gen++;
}

/* Caller holds mu. Drop the listening connection: the cache is off until
 * the thread has a new one. */
static void lose_listener_locked(struct tokencache *tc)
{
	if (tc->listen) {
		PQfinish(tc->listen);
		tc->listen = NULL;
		log_msg(LOG_INFO, "token cache: notification connection lost; cache off until it is back");
	}
	clear_locked(tc);
}

/* Caller holds mu. Read what already arrived on the listening socket
 * (never blocks; the thread waits outside the lock and calls this once the
 * socket is readable); any notification empties the cache. */
static void drain_locked(struct tokencache *tc)
{
	if (!tc->listen)
		return;
	struct pollfd pfd = { .fd = PQsocket(tc->listen), .events = POLLIN };
	if (pfd.fd < 0) {
		lose_listener_locked(tc);
		return;
	}
	int n = poll(&pfd, 1, 0);
	if (n <= 0)
		return;
	if (!PQconsumeInput(tc->listen) || PQstatus(tc->listen) == CONNECTION_BAD) {
		lose_listener_locked(tc);
		return;
	}
	int got = 0;
	PGnotify *nt;
	while ((nt = PQnotifies(tc->listen)) != NULL) {
		got = 1;
		PQfreemem(nt);
	}
	if (got) {
		clear_locked(tc);
		/* The acknowledgement tokencache_changed() waits for: this
		 * session's state_change in pg_stat_activity moves past the
		 * change's start. */
		PGresult *r = PQexec(tc->listen, "SELECT 1");
		int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (!ok)
			lose_listener_locked(tc);
	}
}

static PGconn *connect_listener(const char *url)
{
	/* Named, so that a revoking process can see it in pg_stat_activity. */
	const char *const keys[] = { "dbname", "application_name", NULL };
	const char *const vals[] = { url, TOKENCACHE_APP_NAME, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	PGresult *r = PQexec(c, "LISTEN " DB_TOKENS_CHANNEL);
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok || PQsetnonblocking(c, 1) != 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static void *listener_main(void *arg)
{
	struct tokencache *tc = arg;
	int backoff_ms = 100;
	while (!tc->stopping) {
		pthread_mutex_lock(&tc->mu);
		int fd = tc->listen ? PQsocket(tc->listen) : -1;
		pthread_mutex_unlock(&tc->mu);
		if (fd < 0) {
			PGconn *c = connect_listener(tc->url);
			if (!c) {
				for (int slept = 0; slept < backoff_ms && !tc->stopping; slept += 50) {
					struct timespec ts = { 0, 50 * 1000 * 1000 };
					nanosleep(&ts, NULL);
				}
				if (backoff_ms < 1000)
					backoff_ms *= 2;
				continue;
			}
			backoff_ms = 100;
			pthread_mutex_lock(&tc->mu);
			/* Changes made while nobody listened are unknown: start
			 * empty (the cache was off and empty meanwhile anyway). */
			clear_locked(tc);
			tc->listen = c;
			pthread_mutex_unlock(&tc->mu);
			continue;
		}
		/* Wait without the lock; lookups may read the socket meanwhile. */
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, 200);
		if (n < 0 && errno != EINTR)
			continue;
		if (n > 0) {
			pthread_mutex_lock(&tc->mu);
			drain_locked(tc);
			pthread_mutex_unlock(&tc->mu);
		}
	}
	return NULL;
}

struct tokencache *tokencache_new(const char *url, int capacity, int ttl_ms)
{
	if (capacity < WAYS)
		capacity = WAYS;
	struct tokencache *tc = xcalloc(1, sizeof(*tc));
	tc->nsets = capacity / WAYS;
	tc->entries = xcalloc((size_t)tc->nsets * WAYS, sizeof(*tc->entries));
	tc->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
	tc->url = xstrdup(url);
	pthread_mutex_init(&tc->mu, NULL);
	if (pthread_create(&tc->thread, NULL, listener_main, tc) != 0) {
		pthread_mutex_destroy(&tc->mu);
		free(tc->entries);
		free(tc->url);
		free(tc);
		return NULL;
	}
	return tc;
}

void tokencache_free(struct tokencache *tc)
{
	if (!tc)
		return;
	tc->stopping = 1;
	pthread_join(tc->thread, NULL);
	PQfinish(tc->listen);
	pthread_mutex_destroy(&tc->mu);
	free(tc->entries);
	free(tc->url);
	free(tc);
}

static struct tc_entry *set_of(struct tokencache *tc, const char *hash)
{
	/* The first 8 hex digits of the hash (SHA-256: evenly spread). */
	unsigned long v = 0;
	for (int i = 0; i < 8; i++) {
		char c = hash[i];
		v = v << 4 | (unsigned long)(c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return &tc->entries[(size_t)(v % (unsigned long)tc->nsets) * WAYS];
}

int tokencache_get(struct tokencache *tc, const char *hash, struct db_token_info *info,
		   uint64_t *gen)
{
	if (strlen(hash) != 64) {
		*gen = 0;
		return 0;
	}
	int hit = 0;
	long long now = now_ms();
	pthread_mutex_lock(&tc->mu);
	drain_locked(tc);
	if (tc->listen) {
		struct tc_entry *set = set_of(tc, hash);
		for (int i = 0; i < WAYS; i++) {
			struct tc_entry *e = &set[i];
			if (e->hash[0] && !memcmp(e->hash, hash, 64)) {
				if (now - e->stored_ms < tc->ttl_ms) {
					*info = e->info;
					hit = 1;
				} else {
					e->hash[0] = '\0';
				}
				break;
			}
		}
	}
	*gen = tc->gen;
	pthread_mutex_unlock(&tc->mu);
	return hit;
}

void tokencache_put(struct tokencache *tc, const char *hash, const struct db_token_info *info,
		    uint64_t gen)
{
	if (strlen(hash) != 64)
		return;
	long long now = now_ms();
	pthread_mutex_lock(&tc->mu);
	drain_locked(tc);
	if (tc->listen && tc->gen == gen) {
		struct tc_entry *set = set_of(tc, hash), *slot = NULL;
		/* The entry of this hash, else a free one, else the oldest. */
		for (int i = 0; i < WAYS && !slot; i++)
			if (set[i].hash[0] && !memcmp(set[i].hash, hash, 64))
				slot = &set[i];
		for (int i = 0; i < WAYS && !slot; i++)
			if (!set[i].hash[0])
				slot = &set[i];
		if (!slot) {
			slot = &set[0];
			for (int i = 1; i < WAYS; i++)
				if (set[i].stored_ms < slot->stored_ms)
					slot = &set[i];
		}
		memcpy(slot->hash, hash, 65);
		slot->info = *info;
		slot->stored_ms = now;
	}
	pthread_mutex_unlock(&tc->mu);
}

void tokencache_clear(struct tokencache *tc)
{
	if (!tc)
		return;
	pthread_mutex_lock(&tc->mu);
	clear_locked(tc);
	pthread_mutex_unlock(&tc->mu);
}

void tokencache_mark(PGconn *conn, char mark[64])
{
	mark[0] = '\0';
	PGresult *r = PQexec(conn, "SELECT clock_timestamp()::text");
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(mark, 64, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

void tokencache_changed(struct tokencache *tc, PGconn *conn, const char *mark, int timeout_ms)
{
	tokencache_clear(tc);
	if (!mark || !mark[0])
		return;
	long long deadline = now_ms() + timeout_ms;
	const char *p[1] = { mark };
	for (;;) {
		/* Listener sessions of this database that have not run their
		 * acknowledgement since the mark. */
		PGresult *r = PQexecParams(conn,
					   "SELECT count(*) FROM pg_stat_activity"
					   " WHERE application_name = '" TOKENCACHE_APP_NAME "'"
					   " AND datname = current_database() AND state_change < $1::timestamptz",
					   1, NULL, p, NULL, NULL, 0);
		int left = r && PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
		PQclear(r);
		if (left == 0 || now_ms() >= deadline)
			break;
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int tokencache_count(struct tokencache *tc)
{
	int n = 0;
	pthread_mutex_lock(&tc->mu);
	for (int i = 0; i < tc->nsets * WAYS; i++)
		n += tc->entries[i].hash[0] != '\0';
	pthread_mutex_unlock(&tc->mu);
	return n;
}

int tokencache_listening(struct tokencache *tc)
{
	pthread_mutex_lock(&tc->mu);
	drain_locked(tc);
	int up = tc->listen != NULL;
	pthread_mutex_unlock(&tc->mu);
	return up;
}
