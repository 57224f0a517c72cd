/*
 * kube/ops: the operations install phases perform, on top of kube/client:
 * typed object paths, get/list (label and field selectors, pagination),
 * create, replace, delete, JSON/merge/strategic patches, server-side apply
 * (fieldManager "ferry", conflicts reported field by field), dry run
 * (dryRun=All on every write), and the reliability rules every call gets:
 *
 *  - retries on transport errors (not TLS errors), 429 and 5xx (500, 502,
 *    503, 504), with exponential backoff and jitter, honouring Retry-After
 *    (seconds), all within a per-call deadline;
 *  - a per-cluster rate limit (token bucket keyed by a string the caller
 *    chooses, normally the cluster id), shared by every kube_ops of the
 *    process that uses the same key;
 *  - an abort callback checked between attempts (the runner's "stop now").
 *
 * Object paths come from a table of the built-in kinds an install touches
 * plus the CRD kinds ferry creates (Karpenter, Cilium L2); other kinds are
 * resolved through API discovery (GET /apis/<group>/<version>) and cached.
 *
 * Results: functions returning int give the final HTTP status (200, 201,
 * 404, 409, ...) or -1 when no response arrived (transport failure after
 * retries, deadline, abort); a readable message is left in
 * kube_ops_error(ops) (never credentials). Returned json_t are new
 * references owned by the caller.
 *
 * Memo: every write keeps the client's memo (kube/memo.h, one per job)
 * true for the job's own writes; kube_ops_get_memo()/kube_ops_list_memo()
 * answer from it when the job already knows the object (read earlier, or
 * the answer to its own apply/patch/replace), else read and remember.
 *
 * Thread-safety: one kube_ops (like its kube_client) belongs to one thread;
 * the rate-limit registry is process-wide and locked.
 */
#ifndef FERRY_KUBE_OPS_H
#define FERRY_KUBE_OPS_H

#include <jansson.h>
#include <stddef.h>

struct kube_client;
struct kube_ops;

#define KUBE_FIELD_MANAGER "ferry"

struct kube_ops_opts {
	long deadline_ms;       /* per call, all retries included; 0 = 60000 */
	int max_attempts;       /* 0 = 10 */
	long backoff_base_ms;   /* 0 = 200 */
	long backoff_max_ms;    /* 0 = 5000 */
	double qps;             /* per-cluster rate; 0 = unlimited */
	int burst;              /* 0 = max(1, qps) */
	const char *rate_key;   /* registry key (cluster id); NULL = private */
	int (*should_abort)(void *arg);   /* may be NULL */
	void *abort_arg;
};

/* kc is borrowed and must outlive the ops. opts may be NULL. */
struct kube_ops *kube_ops_new(struct kube_client *kc, const struct kube_ops_opts *opts);
void kube_ops_free(struct kube_ops *ops);

/* Every write from now on carries dryRun=All. */
void kube_ops_set_dry_run(struct kube_ops *ops, int on);
int kube_ops_dry_run(const struct kube_ops *ops);

/* The message of the last failure ("" after a success). */
const char *kube_ops_error(const struct kube_ops *ops);
/* Retries performed so far (attempts beyond the first of each call). */
long kube_ops_retries(const struct kube_ops *ops);
/* Milliseconds spent so far inside HTTP exchanges (waiting on the API
 * server, network included), and sleeping before requests (rate limit,
 * retry backoff, Retry-After). */
long kube_ops_api_ms(const struct kube_ops *ops);
long kube_ops_backoff_ms(const struct kube_ops *ops);

/* One request with the retry rules. resp is filled as kube_request()
 * fills it (caller frees with kube_response_free) and the return value is
 * the status or -1. Query strings in path are kept; dryRun=All is added to
 * writes in dry-run mode. */
struct kube_response;
int kube_ops_request(struct kube_ops *ops, const char *method, const char *path,
		     const char *content_type, const char *body, size_t body_len,
		     struct kube_response *resp);

/* ---- paths ------------------------------------------------------------- */

/* The REST path of an object's collection and of the object itself, from
 * apiVersion, kind, metadata.namespace (default_ns when missing for a
 * namespaced kind) and metadata.name. Returns 0 or -1 (unknown kind: the
 * message in kube_ops_error). Strings are malloc'd. */
int kube_ops_paths(struct kube_ops *ops, const char *api_version, const char *kind,
		   const char *ns, const char *name, char **collection, char **item);
int kube_ops_object_paths(struct kube_ops *ops, const json_t *obj, const char *default_ns,
			  char **collection, char **item);

/* Percent-encode for a query value (malloc'd). */
char *kube_ops_urlencode(const char *s);

/* ---- reads ------------------------------------------------------------- */

/* GET path: 200 with *out set, 404 (*out NULL), other status or -1. */
int kube_ops_get(struct kube_ops *ops, const char *path, json_t **out);

/* List a collection path with optional selectors, following continue
 * tokens (page size limit, 0 = 500). *items = array of every item. */
int kube_ops_list(struct kube_ops *ops, const char *collection, const char *label_selector,
		  const char *field_selector, int limit, json_t **items);

/* The same through the job's memo: what this job already read at path (or
 * last wrote there) without a request, else a GET whose 200 or 404 is
 * remembered. Only for reads where the state as of earlier in the job is
 * good enough (see kube/memo.h). */
int kube_ops_get_memo(struct kube_ops *ops, const char *path, json_t **out);
int kube_ops_list_memo(struct kube_ops *ops, const char *collection, const char *label_selector,
		       const char *field_selector, int limit, json_t **items);

/* ---- writes ------------------------------------------------------------ */

enum kube_patch_type { KUBE_PATCH_JSON, KUBE_PATCH_MERGE, KUBE_PATCH_STRATEGIC };

int kube_ops_create(struct kube_ops *ops, const char *collection, const json_t *obj, json_t **out);
/* The same as create (method "POST" at a collection) or replace ("PUT" at
 * an item) with the object already serialised as JSON text. */
int kube_ops_send_text(struct kube_ops *ops, const char *method, const char *path,
		      const char *json_text, json_t **out);
int kube_ops_replace(struct kube_ops *ops, const char *item, const json_t *obj, json_t **out);
int kube_ops_patch(struct kube_ops *ops, const char *item, enum kube_patch_type type,
		   const json_t *patch, json_t **out);
/* DELETE with propagationPolicy (NULL = Background). 200/202, 404, ... */
int kube_ops_delete(struct kube_ops *ops, const char *item, const char *propagation);

/* Server-side apply of obj (apiVersion/kind/metadata required) at its item
 * path, fieldManager=ferry, force when asked. On a 409 conflict, *conflicts
 * (if non-NULL) gets [{field, manager?, message}] and the error message
 * names them. *out gets the object the server returned. */
int kube_ops_apply(struct kube_ops *ops, const char *item, const json_t *obj, int force,
		   json_t **out, json_t **conflicts);

/* ---- comparison -------------------------------------------------------- */

/* The field paths (".spec.template.spec.containers[0].image") where after
 * differs from before, ignoring server-managed metadata (resourceVersion,
 * uid, generation, creationTimestamp, managedFields, selfLink) and status.
 * Appends strings to paths (an array); at most max entries. Returns the
 * number of differences found (may exceed max). */
long kube_ops_diff(const json_t *before, const json_t *after, json_t *paths, long max);
/* The same with RFC 6901 JSON pointers ("/data/enable-ipv4",
 * "/metadata/labels/app.kubernetes.io~1name", "/spec/x/0/image"). */
long kube_ops_diff_pointers(const json_t *before, const json_t *after, json_t *paths, long max);

#endif
