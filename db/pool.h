/*
 * db/pool: a fixed-size pool of libpq connections shared by HTTP handlers and
 * workers.
 *
 * Contract: db_pool_new() opens `size` connections to `url` (a libpq
 * connection string or URL) and returns NULL with a message in err when the
 * first one fails. db_acquire() blocks until a connection is free (at most
 * timeout_ms; NULL on timeout; waiting callers are served in arrival order) and returns it reset to a usable state (a
 * broken connection is re-established transparently). Every acquired
 * connection must be given back with db_release() by the same thread.
 * The pool owns the connections; db_pool_free() closes them.
 * Thread-safe.
 */
#ifndef FERRY_DB_POOL_H
#define FERRY_DB_POOL_H

#include <libpq-fe.h>
#include <stddef.h>

struct db_pool;

struct db_pool *db_pool_new(const char *url, int size, char *err, size_t errlen);
PGconn *db_acquire(struct db_pool *pool, int timeout_ms);
/* An idle, open, healthy connection at once, or NULL: never waits, never
 * connects (for callers that must not block; give it back with
 * db_release like any other). */
PGconn *db_try_acquire(struct db_pool *pool);
void db_release(struct db_pool *pool, PGconn *conn);
void db_pool_free(struct db_pool *pool);
/* The URL the pool was opened with (for LISTEN connections of its own). */
const char *db_pool_url(const struct db_pool *pool);

#endif
