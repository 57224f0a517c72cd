/*
 * ops.c: Kubernetes operations with retries, rate limiting and dry run.
 *
 * Every call goes through ops_call(): take a rate-limit token, send, and
 * on a retryable outcome sleep (Retry-After when the server gave one, else
 * exponential backoff with +-50% jitter) and try again, until the attempt
 * budget or the per-call deadline runs out. The final response is returned
 * as is, so callers see the real status of the last attempt.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/kube/ops.h"
#include "server/common/buf.h"
#include "server/kube/client.h"
#include "server/kube/memo.h"
#include "server/kube/names.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- rate-limit registry --------------------------------------------------- */

struct bucket {
	char *key;
	double tokens;
	double qps;
	double burst;
	double last;    /* monotonic seconds */
	struct bucket *next;
};

static pthread_mutex_t buckets_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket *buckets;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Take a token; returns the seconds to wait before the request may go
 * (0 = go now). The token is consumed either way (reserved). */
static double bucket_take(const char *key, double qps, double burst)
{
	pthread_mutex_lock(&buckets_lock);
	struct bucket *b = buckets;
	while (b && strcmp(b->key, key))
		b = b->next;
	double t = now_s();
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		b->key = xstrdup(key);
		b->tokens = burst;
		b->last = t;
		b->next = buckets;
		buckets = b;
	}
	b->qps = qps;
	b->burst = burst;
	b->tokens += (t - b->last) * qps;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last = t;
	b->tokens -= 1.0;
	double wait = b->tokens >= 0 ? 0 : -b->tokens / qps;
	pthread_mutex_unlock(&buckets_lock);
	return wait;
}

/* ---- the ops object -------------------------------------------------------- */

struct kind_cache {
	char *api_version;
	char *kind;
	char *resource;
	int namespaced;
	struct kind_cache *next;
};

struct kube_ops {
	struct kube_client *kc;
	struct kube_ops_opts o;
	char *rate_key;
	int dry_run;
	long retries;
	double api_s;        /* time spent inside HTTP exchanges */
	double wait_s;       /* time slept: rate limit and retry backoff */
	uint64_t rng;
	char err[512];
	struct kind_cache *kinds;
};

struct kube_ops *kube_ops_new(struct kube_client *kc, const struct kube_ops_opts *opts)
{
	struct kube_ops *ops = xcalloc(1, sizeof(*ops));
	ops->kc = kc;
	if (opts)
		ops->o = *opts;
	if (ops->o.deadline_ms <= 0)
		ops->o.deadline_ms = 60000;
	if (ops->o.max_attempts <= 0)
		ops->o.max_attempts = 10;
	if (ops->o.backoff_base_ms <= 0)
		ops->o.backoff_base_ms = 200;
	if (ops->o.backoff_max_ms <= 0)
		ops->o.backoff_max_ms = 5000;
	if (ops->o.burst <= 0)
		ops->o.burst = ops->o.qps >= 1 ? (int)ops->o.qps : 1;
	char key[64];
	snprintf(key, sizeof key, "private:%p", (void *)ops);
	ops->rate_key = xstrdup(ops->o.rate_key ? ops->o.rate_key : key);
	ops->o.rate_key = NULL;
	ops->rng = (uint64_t)(uintptr_t)ops ^ (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
	return ops;
}

void kube_ops_free(struct kube_ops *ops)
{
	if (!ops)
		return;
	while (ops->kinds) {
		struct kind_cache *k = ops->kinds;
		ops->kinds = k->next;
		free(k->api_version), free(k->kind), free(k->resource), free(k);
	}
	free(ops->rate_key);
	free(ops);
}

void kube_ops_set_dry_run(struct kube_ops *ops, int on) { ops->dry_run = on; }
int kube_ops_dry_run(const struct kube_ops *ops) { return ops->dry_run; }
const char *kube_ops_error(const struct kube_ops *ops) { return ops->err; }
long kube_ops_retries(const struct kube_ops *ops) { return ops->retries; }
long kube_ops_api_ms(const struct kube_ops *ops) { return (long)(ops->api_s * 1000.0 + 0.5); }
long kube_ops_backoff_ms(const struct kube_ops *ops) { return (long)(ops->wait_s * 1000.0 + 0.5); }

static void set_err(struct kube_ops *ops, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct kube_ops *ops, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ops->err, sizeof ops->err, fmt, ap);
	va_end(ap);
}

static uint64_t next_rand(struct kube_ops *ops)
{
	uint64_t x = ops->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	ops->rng = x;
	return x;
}

static int aborted(struct kube_ops *ops)
{
	return ops->o.should_abort && ops->o.should_abort(ops->o.abort_arg);
}

/* Sleep ms in small steps; 1 when aborted. */
static int nap(struct kube_ops *ops, long ms)
{
	while (ms > 0) {
		if (aborted(ops))
			return 1;
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { step / 1000, (step % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return aborted(ops);
}

static int retryable_status(long s)
{
	return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int is_write(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Keep the job's memo (kube/memo.h) true for its own writes: forget what
 * the write touched; an object the server answered for an item path (its
 * name is the path's last segment, so not a subresource) becomes the
 * known state, unless this was a dry run. */
static void memo_after_write(struct kube_ops *ops, const char *method, const char *path, int status,
			     const struct kube_response *resp)
{
	struct kube_memo *m = kube_client_memo(ops->kc);
	kube_memo_forget(m, path);
	if (ops->dry_run || status < 200 || status >= 300 || (strcmp(method, "PATCH") && strcmp(method, "PUT")))
		return;
	/* The answer is recorded as text and parsed only if read (then
	 * checked to be the object at this path: kube/memo.h). */
	char *bare = xstrndup(path, strcspn(path, "?"));
	kube_memo_put_raw(m, bare, resp->raw, resp->raw_len);
	free(bare);
}

int kube_ops_request(struct kube_ops *ops, const char *method, const char *path,
		     const char *content_type, const char *body, size_t body_len,
		     struct kube_response *resp)
{
	struct buf p = BUF_INIT;
	buf_puts(&p, path);
	if (ops->dry_run && is_write(method))
		buf_puts(&p, strchr(path, '?') ? "&dryRun=All" : "?dryRun=All");
	double start = now_s();
	double deadline = start + (double)ops->o.deadline_ms / 1000.0;
	int result = -1;
	ops->err[0] = '\0';
	memset(resp, 0, sizeof(*resp));
	for (int attempt = 1;; attempt++) {
		if (ops->o.qps > 0) {
			double wait = bucket_take(ops->rate_key, ops->o.qps, (double)ops->o.burst);
			if (wait > 0)
				ops->wait_s += wait;
			if (wait > 0 && nap(ops, (long)(wait * 1000.0 + 0.5))) {
				set_err(ops, "%s %s: stopped", method, path);
				result = -1;
				break;
			}
		}
		double t0 = now_s();
		int rc = kube_request(ops->kc, method, buf_cstr(&p), content_type, body, body_len, resp);
		ops->api_s += now_s() - t0;
		int retry;
		if (rc < 0) {
			set_err(ops, "%s", resp->error);
			retry = strncmp(resp->error, "TLS error", 9) != 0;
			result = -1;
		} else {
			result = (int)resp->status;
			retry = retryable_status(resp->status);
			if (retry) {
				char d[300];
				kube_response_describe(resp, d, sizeof d);
				set_err(ops, "%s %s: HTTP %ld: %s", method, path, resp->status, d);
			}
		}
		if (!retry || attempt >= ops->o.max_attempts)
			break;
		long delay;
		if (rc == 0 && resp->retry_after >= 0) {
			delay = resp->retry_after * 1000;
		} else {
			delay = ops->o.backoff_base_ms;
			for (int i = 1; i < attempt && delay < ops->o.backoff_max_ms; i++)
				delay *= 2;
			if (delay > ops->o.backoff_max_ms)
				delay = ops->o.backoff_max_ms;
			delay = delay / 2 + (long)(next_rand(ops) % (uint64_t)(delay + 1));
		}
		if (now_s() + (double)delay / 1000.0 > deadline)
			break;   /* the deadline would pass: return what we have */
		ops->wait_s += (double)delay / 1000.0;
		if (nap(ops, delay))
			break;
		kube_response_free(resp);
		memset(resp, 0, sizeof(*resp));
		ops->retries++;
	}
	buf_free(&p);
	if (result >= 200 && result < 300)
		ops->err[0] = '\0';
	if (is_write(method))
		memo_after_write(ops, method, path, result, resp);
	return result;
}

/* ---- paths ----------------------------------------------------------------- */

struct known_kind {
	const char *api_version;
	const char *kind;
	const char *resource;
	int namespaced;
};

static const struct known_kind known_kinds[] = {
	{ "v1", "Namespace", "namespaces", 0 },
	{ "v1", "Node", "nodes", 0 },
	{ "v1", "PersistentVolume", "persistentvolumes", 0 },
	{ "v1", "ServiceAccount", "serviceaccounts", 1 },
	{ "v1", "Secret", "secrets", 1 },
	{ "v1", "ConfigMap", "configmaps", 1 },
	{ "v1", "Service", "services", 1 },
	{ "v1", "Endpoints", "endpoints", 1 },
	{ "v1", "Pod", "pods", 1 },
	{ "v1", "PersistentVolumeClaim", "persistentvolumeclaims", 1 },
	{ "v1", "ResourceQuota", "resourcequotas", 1 },
	{ "v1", "LimitRange", "limitranges", 1 },
	{ "apps/v1", "DaemonSet", "daemonsets", 1 },
	{ "apps/v1", "Deployment", "deployments", 1 },
	{ "apps/v1", "StatefulSet", "statefulsets", 1 },
	{ "apps/v1", "ReplicaSet", "replicasets", 1 },
	{ "rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", 0 },
	{ "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", 0 },
	{ "rbac.authorization.k8s.io/v1", "Role", "roles", 1 },
	{ "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", 1 },
	{ "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", 0 },
	{ "flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas", 0 },
	{ "flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", 0 },
	{ "flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "flowschemas", 0 },
	{ "flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", "prioritylevelconfigurations", 0 },
	{ "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", 1 },
	{ "batch/v1", "Job", "jobs", 1 },
	{ "batch/v1", "CronJob", "cronjobs", 1 },
	{ "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", 1 },
	{ "networking.k8s.io/v1", "Ingress", "ingresses", 1 },
	{ "networking.k8s.io/v1", "IngressClass", "ingressclasses", 0 },
	{ "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", 0 },
	{ "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", 0 },
	{ "apiregistration.k8s.io/v1", "APIService", "apiservices", 0 },
	{ "scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", 0 },
	{ "coordination.k8s.io/v1", "Lease", "leases", 1 },
	{ "karpenter.sh/v1", "NodePool", "nodepools", 0 },
	{ "karpenter.k8s.tke/v1beta1", "TKEMachineNodeClass", "tkemachinenodeclasses", 0 },
	{ "cilium.io/v2alpha1", "CiliumL2AnnouncementPolicy", "ciliuml2announcementpolicies", 0 },
	{ "cilium.io/v2alpha1", "CiliumLoadBalancerIPPool", "ciliumloadbalancerippools", 0 },
	{ "cilium.io/v2", "CiliumLoadBalancerIPPool", "ciliumloadbalancerippools", 0 },
};

/* Discovery for a kind the table does not know. 0 / -1. */
static int discover(struct kube_ops *ops, const char *api_version, const char *kind,
		    const char **resource, int *namespaced)
{
	for (struct kind_cache *k = ops->kinds; k; k = k->next) {
		if (!strcmp(k->api_version, api_version) && !strcmp(k->kind, kind)) {
			*resource = k->resource;
			*namespaced = k->namespaced;
			return 0;
		}
	}
	struct buf path = BUF_INIT;
	if (strchr(api_version, '/'))
		buf_printf(&path, "/apis/%s", api_version);
	else
		buf_printf(&path, "/api/%s", api_version);
	json_t *list = NULL;
	int st = kube_ops_get(ops, buf_cstr(&path), &list);
	buf_free(&path);
	if (st != 200) {
		json_decref(list);
		set_err(ops, "unknown kind %s %s (discovery: %s)", api_version, kind,
			st == 404 ? "group/version not served" : "failed");
		return -1;
	}
	size_t i;
	const json_t *r;
	int found = -1;
	json_array_foreach(json_object_get(list, "resources"), i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *k = json_string_value(json_object_get(r, "kind"));
		if (!name || !k || strchr(name, '/') || strcmp(k, kind))
			continue;
		struct kind_cache *c = xcalloc(1, sizeof(*c));
		c->api_version = xstrdup(api_version);
		c->kind = xstrdup(kind);
		c->resource = xstrdup(name);
		c->namespaced = json_is_true(json_object_get(r, "namespaced"));
		c->next = ops->kinds;
		ops->kinds = c;
		*resource = c->resource;
		*namespaced = c->namespaced;
		found = 0;
		break;
	}
	json_decref(list);
	if (found < 0)
		set_err(ops, "kind %s is not served by %s", kind, api_version);
	return found;
}

int kube_ops_paths(struct kube_ops *ops, const char *api_version, const char *kind,
		   const char *ns, const char *name, char **collection, char **item)
{
	*collection = NULL;
	if (item)
		*item = NULL;
	if (!api_version || !kind) {
		set_err(ops, "object without apiVersion or kind");
		return -1;
	}
	/* Nothing reaches a URL unless the API server would accept it as a
	 * name; the segments are percent-encoded as well (a second wall). */
	char why[256];
	if (kube_api_version_valid(api_version, why, sizeof why) < 0 ||
	    (ns && *ns && kube_namespace_valid(ns, why, sizeof why) < 0) ||
	    (name && *name && kube_name_valid(kind, name, why, sizeof why) < 0)) {
		set_err(ops, "%s", why);
		return -1;
	}
	const char *resource = NULL;
	int namespaced = 0;
	for (size_t i = 0; i < sizeof(known_kinds) / sizeof(known_kinds[0]); i++) {
		if (!strcmp(known_kinds[i].api_version, api_version) && !strcmp(known_kinds[i].kind, kind)) {
			resource = known_kinds[i].resource;
			namespaced = known_kinds[i].namespaced;
			break;
		}
	}
	if (!resource && discover(ops, api_version, kind, &resource, &namespaced) < 0)
		return -1;
	if (namespaced && (!ns || !*ns)) {
		set_err(ops, "%s %s needs a namespace", kind, name ? name : "");
		return -1;
	}
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", strchr(api_version, '/') ? "/apis" : "/api", api_version);
	char *seg;
	if (namespaced) {
		seg = kube_path_segment(ns);
		buf_printf(&b, "/namespaces/%s", seg);
		free(seg);
	}
	seg = kube_path_segment(resource);
	buf_printf(&b, "/%s", seg);
	free(seg);
	if (item) {
		if (!name || !*name) {
			buf_free(&b);
			set_err(ops, "%s without metadata.name", kind);
			return -1;
		}
		seg = kube_path_segment(name);
		*item = xmalloc(b.len + strlen(seg) + 2);
		snprintf(*item, b.len + strlen(seg) + 2, "%s/%s", buf_cstr(&b), seg);
		free(seg);
	}
	*collection = buf_steal(&b);
	return 0;
}

int kube_ops_object_paths(struct kube_ops *ops, const json_t *obj, const char *default_ns,
			  char **collection, char **item)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	return kube_ops_paths(ops, json_string_value(json_object_get(obj, "apiVersion")),
			      json_string_value(json_object_get(obj, "kind")),
			      ns && *ns ? ns : default_ns,
			      json_string_value(json_object_get(meta, "name")), collection, item);
}

char *kube_ops_urlencode(const char *s)
{
	struct buf b = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			buf_putc(&b, (char)*p);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return buf_steal(&b);
}

/* ---- reads and writes ------------------------------------------------------ */

/* Steal the body on success, describe the failure otherwise. */
static int finish(struct kube_ops *ops, const char *method, const char *path, int st,
		  struct kube_response *resp, json_t **out)
{
	if (out)
		*out = NULL;
	if (st >= 200 && st < 300) {
		if (out) {
			*out = kube_response_json(resp);
			resp->body = NULL;
		}
	} else if (st > 0 && !ops->err[0]) {
		char d[300];
		kube_response_describe(resp, d, sizeof d);
		set_err(ops, "%s %s: HTTP %d: %s", method, path, st, d);
	}
	kube_response_free(resp);
	return st;
}

int kube_ops_get(struct kube_ops *ops, const char *path, json_t **out)
{
	struct kube_response resp;
	int st = kube_ops_request(ops, "GET", path, NULL, NULL, 0, &resp);
	return finish(ops, "GET", path, st, &resp, out);
}

int kube_ops_get_memo(struct kube_ops *ops, const char *path, json_t **out)
{
	struct kube_memo *m = kube_client_memo(ops->kc);
	int st = kube_memo_get(m, path, out);
	if (st)
		return st;
	st = kube_ops_get(ops, path, out);
	if (st == 200 || st == 404)
		kube_memo_put(m, path, st, *out);
	return st;
}

static int list_pages(struct kube_ops *ops, const char *collection, const char *label_selector,
		      const char *field_selector, int limit, json_t **items, int memo);

int kube_ops_list(struct kube_ops *ops, const char *collection, const char *label_selector,
		  const char *field_selector, int limit, json_t **items)
{
	return list_pages(ops, collection, label_selector, field_selector, limit, items, 0);
}

int kube_ops_list_memo(struct kube_ops *ops, const char *collection, const char *label_selector,
		       const char *field_selector, int limit, json_t **items)
{
	return list_pages(ops, collection, label_selector, field_selector, limit, items, 1);
}

static int list_pages(struct kube_ops *ops, const char *collection, const char *label_selector,
		      const char *field_selector, int limit, json_t **items, int memo)
{
	*items = json_array();
	char *cont = NULL;
	int st = -1;
	for (int page = 0; page < 100000; page++) {
		struct buf p = BUF_INIT;
		buf_printf(&p, "%s?limit=%d", collection, limit > 0 ? limit : 500);
		if (label_selector && *label_selector) {
			char *e = kube_ops_urlencode(label_selector);
			buf_printf(&p, "&labelSelector=%s", e);
			free(e);
		}
		if (field_selector && *field_selector) {
			char *e = kube_ops_urlencode(field_selector);
			buf_printf(&p, "&fieldSelector=%s", e);
			free(e);
		}
		if (cont) {
			char *e = kube_ops_urlencode(cont);
			buf_printf(&p, "&continue=%s", e);
			free(e);
		}
		json_t *body = NULL;
		st = memo ? kube_ops_get_memo(ops, buf_cstr(&p), &body) : kube_ops_get(ops, buf_cstr(&p), &body);
		buf_free(&p);
		free(cont);
		cont = NULL;
		if (st != 200) {
			json_decref(body);
			break;
		}
		json_array_extend(*items, json_object_get(body, "items"));
		const char *c = json_string_value(json_object_get(json_object_get(body, "metadata"), "continue"));
		if (c && *c)
			cont = xstrdup(c);
		json_decref(body);
		if (!cont)
			break;
	}
	free(cont);
	return st;
}

/* A write with its body already serialised. */
static int send_text(struct kube_ops *ops, const char *method, const char *path,
		     const char *ctype, const char *body, json_t **out)
{
	struct kube_response resp;
	int st = kube_ops_request(ops, method, path, ctype, body, strlen(body), &resp);
	return finish(ops, method, path, st, &resp, out);
}

int kube_ops_send_text(struct kube_ops *ops, const char *method, const char *path,
		      const char *json_text, json_t **out)
{
	return send_text(ops, method, path, "application/json", json_text, out);
}

static int send_json(struct kube_ops *ops, const char *method, const char *path,
		     const char *ctype, const json_t *obj, json_t **out)
{
	char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!body) {
		set_err(ops, "%s %s: cannot serialise the body", method, path);
		return -1;
	}
	int st = send_text(ops, method, path, ctype, body, out);
	free(body);
	return st;
}

int kube_ops_create(struct kube_ops *ops, const char *collection, const json_t *obj, json_t **out)
{
	return send_json(ops, "POST", collection, "application/json", obj, out);
}

int kube_ops_replace(struct kube_ops *ops, const char *item, const json_t *obj, json_t **out)
{
	return send_json(ops, "PUT", item, "application/json", obj, out);
}

int kube_ops_patch(struct kube_ops *ops, const char *item, enum kube_patch_type type,
		   const json_t *patch, json_t **out)
{
	const char *ct = type == KUBE_PATCH_JSON ? "application/json-patch+json"
		       : type == KUBE_PATCH_MERGE ? "application/merge-patch+json"
						  : "application/strategic-merge-patch+json";
	return send_json(ops, "PATCH", item, ct, patch, out);
}

int kube_ops_delete(struct kube_ops *ops, const char *item, const char *propagation)
{
	json_t *opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
				 "propagationPolicy", propagation ? propagation : "Background");
	if (ops->dry_run)
		json_object_set_new(opts, "dryRun", json_pack("[s]", "All"));
	int st = send_json(ops, "DELETE", item, "application/json", opts, NULL);
	json_decref(opts);
	return st;
}

int kube_ops_apply(struct kube_ops *ops, const char *item, const json_t *obj, int force,
		   json_t **out, json_t **conflicts)
{
	if (out)
		*out = NULL;
	if (conflicts)
		*conflicts = NULL;
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s?fieldManager=%s%s", item, KUBE_FIELD_MANAGER, force ? "&force=true" : "");
	char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	struct kube_response resp;
	int st = kube_ops_request(ops, "PATCH", buf_cstr(&p), "application/apply-patch+yaml",
				  body, body ? strlen(body) : 0, &resp);
	free(body);
	if (st == 409 && json_is_object(kube_response_json(&resp))) {
		json_t *list = json_array();
		struct buf fields = BUF_INIT;
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(json_object_get(resp.body, "details"), "causes"), i, c) {
			const char *field = json_string_value(json_object_get(c, "field"));
			const char *msg = json_string_value(json_object_get(c, "message"));
			json_t *entry = json_pack("{s:s, s:s}", "field", field ? field : "",
						  "message", msg ? msg : "");
			/* The API server says: conflict with "<manager>"[ using <apiVersion>]. */
			const char *q = msg ? strstr(msg, "conflict with \"") : NULL;
			const char *end = q ? strchr(q + 15, '"') : NULL;
			if (end && end > q + 15)
				json_object_set_new(entry, "manager",
						    json_stringn(q + 15, (size_t)(end - (q + 15))));
			json_array_append_new(list, entry);
			buf_printf(&fields, "%s%s", fields.len ? ", " : "", field ? field : "?");
		}
		const char *m = json_string_value(json_object_get(resp.body, "message"));
		set_err(ops, "server-side apply conflict on %s: %s%s%s", item, m ? m : "conflict",
			fields.len ? " (fields: " : "", fields.len ? buf_cstr(&fields) : "");
		if (fields.len)
			strncat(ops->err, ")", sizeof ops->err - strlen(ops->err) - 1);
		buf_free(&fields);
		if (conflicts)
			*conflicts = list;
		else
			json_decref(list);
	}
	st = finish(ops, "PATCH", buf_cstr(&p), st, &resp, out);
	buf_free(&p);
	return st;
}

/* ---- diff ------------------------------------------------------------------ */

static int ignored_meta(const char *key)
{
	static const char *const keys[] = { "resourceVersion", "uid", "generation",
					    "creationTimestamp", "managedFields", "selfLink" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return 1;
	return 0;
}

/* One path step: ".key" / "[i]", or JSON pointer "/key" (~ and / escaped) / "/i". */
static void step_key(struct buf *path, const char *key, int pointer)
{
	if (!pointer) {
		buf_printf(path, ".%s", key);
		return;
	}
	buf_putc(path, '/');
	for (const char *k = key; *k; k++) {
		if (*k == '~')
			buf_puts(path, "~0");
		else if (*k == '/')
			buf_puts(path, "~1");
		else
			buf_putc(path, *k);
	}
}

static long diff_rec(const json_t *a, const json_t *b, struct buf *path, int depth,
		     json_t *paths, long max, long found, int pointer)
{
	if (json_equal(a, b))
		return found;
	if (json_is_object(a) && json_is_object(b) && depth < 64) {
		const char *key;
		const json_t *v;
		size_t mark = path->len;
		json_object_foreach((json_t *)a, key, v) {
			if (depth == 0 && !strcmp(key, "status"))
				continue;
			if (depth == 1 && !strcmp(buf_cstr(path) + 1, "metadata") && ignored_meta(key))
				continue;
			step_key(path, key, pointer);
			found = diff_rec(v, json_object_get(b, key), path, depth + 1, paths, max, found, pointer);
			path->len = mark;
			path->data[mark] = '\0';
		}
		json_object_foreach((json_t *)b, key, v) {
			if (json_object_get(a, key))
				continue;
			if (depth == 0 && !strcmp(key, "status"))
				continue;
			if (depth == 1 && !strcmp(buf_cstr(path) + 1, "metadata") && ignored_meta(key))
				continue;
			step_key(path, key, pointer);
			found = diff_rec(NULL, v, path, depth + 1, paths, max, found, pointer);
			path->len = mark;
			path->data[mark] = '\0';
		}
		return found;
	}
	if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b) && depth < 64) {
		size_t mark = path->len;
		for (size_t i = 0; i < json_array_size(a); i++) {
			buf_printf(path, pointer ? "/%zu" : "[%zu]", i);
			found = diff_rec(json_array_get(a, i), json_array_get(b, i), path, depth + 1,
					 paths, max, found, pointer);
			path->len = mark;
			path->data[mark] = '\0';
		}
		return found;
	}
	if (found < max)
		json_array_append_new(paths, json_string(path->len ? buf_cstr(path) : pointer ? "" : "."));
	return found + 1;
}

long kube_ops_diff(const json_t *before, const json_t *after, json_t *paths, long max)
{
	struct buf path = BUF_INIT;
	buf_puts(&path, "");
	long n = diff_rec(before, after, &path, 0, paths, max, 0, 0);
	buf_free(&path);
	return n;
}

long kube_ops_diff_pointers(const json_t *before, const json_t *after, json_t *paths, long max)
{
	struct buf path = BUF_INIT;
	buf_puts(&path, "");
	long n = diff_rec(before, after, &path, 0, paths, max, 0, 1);
	buf_free(&path);
	return n;
}
