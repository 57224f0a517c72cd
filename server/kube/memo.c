/*
 * kube/memo: a small path -> (status, object) map; see the header.
 * A plain array scanned linearly: a job touches at most a few dozen paths.
 */
#include "server/kube/memo.h"

#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"

struct memo_entry {
	char *path;
	int status;
	json_t *obj;
	char *raw;      /* kube_memo_put_raw's text until its first read */
	size_t raw_len;
};

struct kube_memo {
	struct memo_entry e[KUBE_MEMO_MAX];
	long n;
	long hits;
};

struct kube_memo *kube_memo_new(void)
{
	return xcalloc(1, sizeof(struct kube_memo));
}

static void entry_clear(struct memo_entry *e)
{
	free(e->path);
	json_decref(e->obj);
	free(e->raw);
	memset(e, 0, sizeof(*e));
}

void kube_memo_free(struct kube_memo *m)
{
	if (!m)
		return;
	for (long i = 0; i < m->n; i++)
		entry_clear(&m->e[i]);
	free(m);
}

static void remove_at(struct kube_memo *m, long i)
{
	entry_clear(&m->e[i]);
	memmove(&m->e[i], &m->e[i + 1], (size_t)(m->n - i - 1) * sizeof(m->e[0]));
	m->n--;
	memset(&m->e[m->n], 0, sizeof(m->e[0]));
}

static long find(const struct kube_memo *m, const char *path)
{
	for (long i = 0; i < m->n; i++)
		if (!strcmp(m->e[i].path, path))
			return i;
	return -1;
}

/* A new entry for path (an old one for it dropped, the oldest dropped
 * when full). */
static struct memo_entry *entry_add(struct kube_memo *m, const char *path, int status)
{
	long i = find(m, path);
	if (i >= 0)
		remove_at(m, i);
	if (m->n == KUBE_MEMO_MAX)
		remove_at(m, 0);
	struct memo_entry *e = &m->e[m->n++];
	e->path = xstrdup(path);
	e->status = status;
	return e;
}

void kube_memo_put_raw(struct kube_memo *m, const char *path, const char *raw, size_t len)
{
	if (!m || !path || !raw || !len)
		return;
	struct memo_entry *e = entry_add(m, path, 200);
	e->raw = xmalloc(len);
	memcpy(e->raw, raw, len);
	e->raw_len = len;
}

void kube_memo_put(struct kube_memo *m, const char *path, int status, const json_t *obj)
{
	if (!m || !path || (status != 200 && status != 404) || (status == 200 && !obj))
		return;
	struct memo_entry *e = entry_add(m, path, status);
	e->obj = status == 200 ? json_deep_copy(obj) : NULL;
}

/* Parse a raw entry: 1 when it is the object at its path (then e->obj). */
static int parse_raw(struct memo_entry *e)
{
	json_t *obj = json_loadb(e->raw, e->raw_len, 0, NULL);
	free(e->raw);
	e->raw = NULL;
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	const char *last = strrchr(e->path, '/');
	if (!json_is_object(obj) || !kind || !strcmp(kind, "Status") || !name || !last ||
	    strcmp(last + 1, name)) {
		json_decref(obj);
		return 0;
	}
	e->obj = obj;
	return 1;
}

int kube_memo_get(struct kube_memo *m, const char *path, json_t **out)
{
	*out = NULL;
	long i = m && path ? find(m, path) : -1;
	if (i < 0)
		return 0;
	if (m->e[i].raw && !parse_raw(&m->e[i])) {
		remove_at(m, i);
		return 0;
	}
	m->hits++;
	if (m->e[i].obj)
		*out = json_deep_copy(m->e[i].obj);
	return m->e[i].status;
}

/* Length of p without its query string. */
static size_t bare_len(const char *p)
{
	return strcspn(p, "?");
}

/* Whether a (first alen bytes) is b's path or an ancestor of it. */
static int covers(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen <= blen && !memcmp(a, b, alen) && (alen == blen || b[alen] == '/');
}

void kube_memo_forget(struct kube_memo *m, const char *path)
{
	if (!m || !path)
		return;
	size_t plen = bare_len(path);
	for (long i = m->n - 1; i >= 0; i--) {
		const char *k = m->e[i].path;
		size_t klen = bare_len(k);
		if (covers(path, plen, k, klen) || covers(k, klen, path, plen))
			remove_at(m, i);
	}
}

long kube_memo_size(const struct kube_memo *m)
{
	return m ? m->n : 0;
}

long kube_memo_hits(const struct kube_memo *m)
{
	return m ? m->hits : 0;
}
