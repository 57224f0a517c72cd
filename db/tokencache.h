/*
 * db/tokencache: a small in-memory cache of the API tokens this process
 * has accepted, so that a request does not look its token up in
 * PostgreSQL every time (issue 14).
 *
 * What it holds: token hash -> struct db_token_info of live tokens only
 * (an unknown or revoked token is never cached and is looked up every
 * time). Bounded: at most `capacity` entries (4-way set associative on
 * the hash; a full set drops its oldest entry); each entry lives at most
 * ttl_ms.
 *
 * Invalidation: a thread of the cache LISTENs on DB_TOKENS_CHANNEL with a
 * connection of its own; migrations/017_api_reads.sql NOTIFYs that
 * channel whenever a token or tenant changes in a way that matters
 * (revoked, deleted, role, tenant renamed or deleted), whichever process
 * made the change. Every notification empties the cache. A lookup first
 * reads any notification already waiting on the listening socket, so a
 * revocation committed before a request arrives is seen by that request.
 * While the listening connection is down (PostgreSQL restarting, not yet
 * connected) the cache answers nothing and stores nothing, and it starts
 * empty when the connection is back: no notification can be missed.
 * A process revoking through the API empties its own cache and waits for
 * the others' acknowledgements (tokencache_changed()), so the revocation
 * holds everywhere when the API answers; a change made by plain SQL
 * reaches every cache when its notification is delivered (about a
 * millisecond).
 *
 * A lookup that misses reads the database; tokencache_put() stores that
 * answer only if no invalidation happened since the miss (the generation
 * returned by tokencache_get()), so an answer read before a revocation is
 * never stored after it.
 *
 * Memory: the cache owns everything; tokencache_free() stops the thread.
 * Thread-safety: every function may be called from any thread.
 */
#ifndef FERRY_DB_TOKENCACHE_H
#define FERRY_DB_TOKENCACHE_H

#include <stdint.h>

#include <libpq-fe.h>

#include "db/tokens.h"

struct tokencache;

/* url: the database (a libpq URL) to LISTEN on. capacity >= 4 (rounded
 * down to a multiple of 4), ttl_ms > 0. NULL if the thread cannot start. */
struct tokencache *tokencache_new(const char *url, int capacity, int ttl_ms);
void tokencache_free(struct tokencache *tc);

/* 1 and *info filled when hash (token_hash() hex) is cached and fresh;
 * 0 otherwise, with *gen set for the tokencache_put() that follows. */
int tokencache_get(struct tokencache *tc, const char *hash, struct db_token_info *info,
		   uint64_t *gen);
/* Store the database's answer for hash, read after tokencache_get()
 * returned gen; ignored when the cache was invalidated since or is not
 * listening. */
void tokencache_put(struct tokencache *tc, const char *hash, const struct db_token_info *info,
		    uint64_t gen);
/* Forget everything now. */
void tokencache_clear(struct tokencache *tc);
/* The listening sessions' application_name. */
#define TOKENCACHE_APP_NAME "ferry-tokens"

/* For a change this process makes (a revocation), so that it is in force
 * in every process before the caller answers: tokencache_mark() before the
 * change (on the connection that makes it; mark = the database's clock),
 * tokencache_changed() after its commit: empties this cache, then waits
 * (at most timeout_ms; the listener of a process that hangs cannot hold
 * a revocation up longer) until every listening session of the database
 * (any ferryd's cache) has emptied its cache for a notification since the
 * mark, as pg_stat_activity shows. tc NULL: only the wait. */
void tokencache_mark(PGconn *conn, char mark[64]);
void tokencache_changed(struct tokencache *tc, PGconn *conn, const char *mark, int timeout_ms);

/* Entries held now (for tests). */
int tokencache_count(struct tokencache *tc);
/* 1 while the listening connection is up (the cache is in use). */
int tokencache_listening(struct tokencache *tc);

#endif
