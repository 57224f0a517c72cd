/*
 * kube/memo: what one job has already learnt about objects in its cluster,
 * so that the job does not ask the API server twice for the same thing.
 *
 * An entry maps a request path (without query string, except for list
 * pages, whose query is part of what was asked) to the HTTP status of the
 * last answer (200 with the object, or 404) as of some earlier moment of
 * the job. kube/ops keeps it current for the job's own writes: every write
 * forgets the entries of its path, of the paths below it and of the paths
 * above it (a write to an item forgets the list of its collection); a
 * server-side apply, patch or replace that succeeded (not in a dry run)
 * then records the object the server answered.
 *
 * Readers opt in (kube_ops_get_memo): only reads for which "as of earlier
 * in this job, or as this job last wrote it" is good enough use it (the
 * chart's lookup, the surroundings snapshot, the preflight facts). Waits,
 * drift checks and anything deciding about other writers read live.
 *
 * Bounded: KUBE_MEMO_MAX entries, the oldest dropped first.
 *
 * Memory: the memo keeps its own copies; kube_memo_get() returns a new
 * reference (a deep copy) owned by the caller. Thread-safety: none; it
 * belongs to its kube_client, which belongs to one thread at a time.
 */
#ifndef FERRY_KUBE_MEMO_H
#define FERRY_KUBE_MEMO_H

#include <jansson.h>

#define KUBE_MEMO_MAX 512

struct kube_memo;

struct kube_memo *kube_memo_new(void);
void kube_memo_free(struct kube_memo *m);

/* Record status (200 with obj, or 404 with obj NULL) for path. */
void kube_memo_put(struct kube_memo *m, const char *path, int status, const json_t *obj);

/* Record the object at path as the server's answer text (len bytes of
 * JSON), parsed only if it is ever read: most objects a job writes are not
 * read again. An answer that then turns out not to be the object at path
 * (not a JSON object, a Status, another name) counts as nothing known. */
void kube_memo_put_raw(struct kube_memo *m, const char *path, const char *raw, size_t len);

/* The recorded status for path (200 with *out set, 404 with *out NULL),
 * or 0 when nothing is known (*out NULL). */
int kube_memo_get(struct kube_memo *m, const char *path, json_t **out);

/* Forget path, every path below it and every path above it (whole
 * segments; query strings ignored for the comparison). */
void kube_memo_forget(struct kube_memo *m, const char *path);

/* Entries held, and answers given from the memo so far. */
long kube_memo_size(const struct kube_memo *m);
long kube_memo_hits(const struct kube_memo *m);

#endif
