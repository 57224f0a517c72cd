/*
 * db/pool: a fixed array of libpq connections guarded by one mutex and a
 * condition variable.
 *
 * db_acquire() takes any idle slot (else waits in line, up to the timeout,
 * for a connection handed over by db_release()), then makes sure the connection is usable: a connection that
 * went bad (server restart, network) is reset, and one left inside a
 * transaction by a careless caller is rolled back. Connections are opened
 * lazily after the first one, so a pool of 16 does not cost 16 connections
 * until the load needs them.
 */
#include "db/pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/common/buf.h"
#include "server/log.h"

struct db_slot {
	PGconn *conn;
	int busy;
};

/* A thread waiting for a connection; released connections are handed to
 * the oldest waiter (first come, first served: with more threads than
 * connections, a condition variable's arbitrary wake-up order left some
 * requests waiting many turns, the latency tail at 64 HTTP clients). */
struct db_waiter {
	pthread_cond_t cv;
	struct db_slot *given;   /* set by db_release() */
	struct db_waiter *next;
};

struct db_pool {
	char *url;
	int size;
	struct db_slot *slots;
	pthread_mutex_t mu;
	struct db_waiter *head, *tail;   /* FIFO of waiting threads */
};

static PGconn *open_conn(const char *url, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(url);
	if (!c) {
		snprintf(err, errlen, "database: out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(c);
		size_t l = strlen(m);
		while (l > 0 && (m[l - 1] == '\n' || m[l - 1] == ' '))
			l--;
		snprintf(err, errlen, "database: cannot connect: %.*s", (int)l, m);
		/* libpq's message spans lines; the caller wants one. */
		for (char *p = err; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		PQfinish(c);
		return NULL;
	}
	/* Timestamps in UTC so that to_char()/text output is RFC 3339-friendly. */
	PGresult *r = PQexec(c, "SET TIME ZONE 'UTC'");
	PQclear(r);
	return c;
}

struct db_pool *db_pool_new(const char *url, int size, char *err, size_t errlen)
{
	if (size < 1)
		size = 1;
	PGconn *first = open_conn(url, err, errlen);
	if (!first)
		return NULL;
	struct db_pool *p = xcalloc(1, sizeof(*p));
	p->url = xstrdup(url);
	p->size = size;
	p->slots = xcalloc((size_t)size, sizeof(*p->slots));
	p->slots[0].conn = first;
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

/* An idle connection has nothing to read. When its socket is readable the
 * server has said something on its own: after a restart or an
 * administrator's pg_terminate_backend that is a FATAL message and EOF.
 * Reading it turns the connection's status to CONNECTION_BAD, so it is
 * reset here instead of failing the next query (a 500 before). */
static void check_stale(PGconn *conn)
{
	int fd = PQsocket(conn);
	if (fd < 0)
		return;
	/* The message and the EOF may take two reads. */
	for (int i = 0; i < 4; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, i ? 5 : 0) <= 0)
			return;
		if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD) {
			log_msg(LOG_INFO, "database connection closed by the server; reconnecting");
			return;
		}
	}
}

static void make_usable(struct db_pool *pool, struct db_slot *s)
{
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		check_stale(s->conn);
	if (s->conn && PQstatus(s->conn) == CONNECTION_BAD) {
		PQreset(s->conn);
		if (PQstatus(s->conn) == CONNECTION_OK) {
			PGresult *r = PQexec(s->conn, "SET TIME ZONE 'UTC'");
			PQclear(r);
		}
	}
	if (!s->conn) {
		char err[256];
		s->conn = open_conn(pool->url, err, sizeof(err));
		if (!s->conn)
			log_msg(LOG_WARN, "%s", err);
	}
	if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE &&
	    PQstatus(s->conn) == CONNECTION_OK) {
		PGresult *r = PQexec(s->conn, "ROLLBACK");
		PQclear(r);
	}
}

/* Caller holds mu: the slot goes to the oldest waiter (still busy), or
 * becomes idle. */
static void give_back_locked(struct db_pool *pool, struct db_slot *slot)
{
	struct db_waiter *w = pool->head;
	if (!w) {
		slot->busy = 0;
		return;
	}
	pool->head = w->next;
	if (!pool->head)
		pool->tail = NULL;
	w->given = slot;
	pthread_cond_signal(&w->cv);
}

/* Caller holds mu: an idle slot (with an open connection when
 * with_conn), or NULL. */
static struct db_slot *idle_slot_locked(struct db_pool *pool, int with_conn)
{
	for (int i = 0; i < pool->size; i++)
		if (!pool->slots[i].busy && (pool->slots[i].conn || !with_conn))
			return &pool->slots[i];
	return NULL;
}

PGconn *db_acquire(struct db_pool *pool, int timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->mu);
	/* Prefer an idle slot that already has a connection. */
	struct db_slot *slot = idle_slot_locked(pool, 1);
	if (!slot)
		slot = idle_slot_locked(pool, 0);
	if (slot) {
		slot->busy = 1;
	} else {
		struct db_waiter w = { .given = NULL, .next = NULL };
		pthread_cond_init(&w.cv, NULL);
		if (pool->tail)
			pool->tail->next = &w;
		else
			pool->head = &w;
		pool->tail = &w;
		int rc = 0;
		while (!w.given && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&w.cv, &pool->mu, &deadline);
		if (!w.given) {
			/* Timed out: leave the queue. */
			struct db_waiter **pp = &pool->head, *prev = NULL;
			while (*pp && *pp != &w) {
				prev = *pp;
				pp = &(*pp)->next;
			}
			if (*pp)
				*pp = w.next;
			if (pool->tail == &w)
				pool->tail = prev;
		}
		pthread_cond_destroy(&w.cv);
		slot = w.given;  /* handed over busy */
		if (!slot) {
			pthread_mutex_unlock(&pool->mu);
			return NULL;
		}
	}
	pthread_mutex_unlock(&pool->mu);

	make_usable(pool, slot);
	if (!slot->conn || PQstatus(slot->conn) != CONNECTION_OK) {
		pthread_mutex_lock(&pool->mu);
		give_back_locked(pool, slot);
		pthread_mutex_unlock(&pool->mu);
		return NULL;
	}
	return slot->conn;
}

PGconn *db_try_acquire(struct db_pool *pool)
{
	pthread_mutex_lock(&pool->mu);
	struct db_slot *slot = idle_slot_locked(pool, 1);
	if (slot)
		slot->busy = 1;
	pthread_mutex_unlock(&pool->mu);
	if (!slot)
		return NULL;
	check_stale(slot->conn);
	if (PQstatus(slot->conn) != CONNECTION_OK ||
	    PQtransactionStatus(slot->conn) != PQTRANS_IDLE) {
		/* Needs a reconnect or a ROLLBACK: db_acquire's work, not ours. */
		pthread_mutex_lock(&pool->mu);
		give_back_locked(pool, slot);
		pthread_mutex_unlock(&pool->mu);
		return NULL;
	}
	return slot->conn;
}

void db_release(struct db_pool *pool, PGconn *conn)
{
	if (!conn)
		return;
	pthread_mutex_lock(&pool->mu);
	for (int i = 0; i < pool->size; i++) {
		if (pool->slots[i].conn == conn) {
			give_back_locked(pool, &pool->slots[i]);
			break;
		}
	}
	pthread_mutex_unlock(&pool->mu);
}

void db_pool_free(struct db_pool *pool)
{
	if (!pool)
		return;
	for (int i = 0; i < pool->size; i++)
		if (pool->slots[i].conn)
			PQfinish(pool->slots[i].conn);
	pthread_mutex_destroy(&pool->mu);
	free(pool->slots);
	free(pool->url);
	free(pool);
}

const char *db_pool_url(const struct db_pool *pool)
{
	return pool->url;
}
