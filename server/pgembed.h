/*
 * pgembed: the embedded PostgreSQL of the local default (no database URL
 * configured).
 *
 * pgembed_start(dir) makes sure a cluster exists in dir/data (initdb on the
 * first run), starts it listening on a Unix socket in dir only (no TCP),
 * and creates the database "ferry". PostgreSQL refuses to run as root, so
 * when ferryd runs as root the server runs as the "postgres" system user
 * (created if missing) and dir is owned by it; the directory is 0700, so
 * only that user (and root) can reach the socket. A server already running
 * on dir (a second ferryd on the same working tree) is reused and left
 * running at stop. PostgreSQL binaries: $FERRY_PG_BIN, else the newest
 * /usr/lib/postgresql/<version>/bin.
 *
 * Memory: the struct owns its strings. Not thread-safe; start and stop from
 * the main thread.
 */
#ifndef FERRY_PGEMBED_H
#define FERRY_PGEMBED_H

#include <stddef.h>

struct pgembed;

/* NULL with a one-line message in err on failure (initdb/start log path
 * included). */
struct pgembed *pgembed_start(const char *dir, char *err, size_t errlen);
/* libpq URL of the "ferry" database. */
const char *pgembed_url(const struct pgembed *pg);
/* Stop the server if this process started it (fast shutdown); free. */
void pgembed_stop(struct pgembed *pg);

#endif
