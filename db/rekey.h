/*
 * rekey: re-seal every stored credential under a new master key
 * (`ferryd rekey`, docs/OPERATIONS.md "Rotate the master key").
 *
 * Sealed columns (crypto_seal() output, with the id of the sealing key
 * beside it) are listed in one table in rekey.c; today that is
 * clusters.credentials / clusters.credentials_key_id (the imported
 * kubeconfig's token or client certificate and key). A module that adds a
 * sealed column adds a row there.
 *
 * Everything happens in one transaction on conn: the tables are locked
 * against concurrent writers (SHARE ROW EXCLUSIVE: readers go on, an API
 * write or a job's cluster update waits for the commit), every value is
 * opened with `old` and sealed with `new_keys` (its first key). If any value
 * does not open with `old` (a wrong old key, a tampered value) nothing is
 * changed and the function says which row failed.
 *
 * Memory: nothing returned to free. Not thread-safe on one conn (libpq).
 */
#ifndef FERRY_DB_REKEY_H
#define FERRY_DB_REKEY_H

#include <libpq-fe.h>
#include <stddef.h>

struct keyring;

/* 0 with *count = the number of values re-sealed, or -1 with a message in
 * err (the transaction rolled back, nothing changed). */
int db_rekey(PGconn *conn, const struct keyring *old, const struct keyring *new_keys, long *count,
	     char *err, size_t errlen);

#endif
