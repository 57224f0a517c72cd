/*
 * sim.h: kubesim's internal interfaces (one process, many simulated clusters).
 *
 * Threading: libmicrohttpd runs one thread per connection; every access to a
 * cluster (store, stats, faults, events) happens with sim.mu held. The
 * controller thread takes the same lock once per tick. sim.cv is broadcast on
 * every stored change so that watch streams wake up.
 *
 * Objects: a stored object (json_t) is never modified after it has been put
 * into a cluster's store; a write stores a new object. That lets clusters share
 * the scenario's template objects by reference (memory for 1,000 clusters) and
 * lets watch events keep references to old versions.
 */
#ifndef KUBESIM_SIM_H
#define KUBESIM_SIM_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"

/* ---- resource types (resources.c) */
struct res_type {
	const char *group;      /* "" for the core group */
	const char *version;
	const char *resource;   /* lowercase plural */
	const char *singular;
	const char *kind;
	const char *short_names; /* comma separated, may be "" */
	int namespaced;
	int has_status;         /* has a /status subresource */
	int tracks_generation;
	int custom;             /* a CRD-defined type (no strategic merge) */
	int min_minor, max_minor; /* served for these k8s minors (0 = any) */
	const char *categories; /* comma separated, may be "" */
};

/* A CRD-defined type of one cluster (strings owned). */
struct crd_type {
	struct res_type t;
	char *owned[6];
	char *crd_name;
};

/* ---- watch events */
struct sim_event {
	uint64_t rv;
	const char *type;       /* "ADDED", "MODIFIED", "DELETED" (static) */
	char *store_key;        /* "group/resource" */
	json_t *obj;            /* reference */
};

/* ---- faults */
struct faults {
	int latency_ms;
	double error_rate;
	int error_codes[8];
	int nerror_codes;
	int error_rr;
	int fail_next;
	int retry_after_s;
	double drop_rate;
	int drop_next;
	double hang_rate;
	int hang_next;
	double rate_limit_qps;
	double bucket;
	int64_t bucket_ms;
	char *verbs[10];
	int nverbs;
	char *path_contains;
	uint64_t seed;
	int active;
};

struct scenario;

struct cluster {
	char *name;
	const struct scenario *scn;
	char token[65], token_viewer[65], token_nobody[65];
	json_t *store;          /* {"apps/daemonsets": {"ns/name": obj}} */
	uint64_t rv;
	uint64_t compact_rv;    /* continue tokens / watch RVs below this: 410 */
	struct crd_type **crds;
	size_t ncrds;
	struct sim_event *ev;   /* ring, allocated on first write */
	size_t ev_head, ev_count;
	/* stats */
	uint64_t total, writes, faults_injected, rejected_auth;
	uint64_t connections;   /* TLS connections whose first request was for this cluster */
	uint64_t by_verb[9];
	json_t *by_request;     /* "METHOD path" -> integer, lazily */
	struct faults faults;
	/* controller */
	int dirty;
	int64_t next_due_ms;    /* 0 = nothing pending */
	json_t *pod_ready_at;   /* "ns/name" -> ms, lazily */
	json_t *pod_gone_at;    /* terminating pods: "ns/name" -> ms, lazily */
	json_t *progress;       /* deployments: "ns/name" -> {sig, ms}, lazily */
	uint64_t uid_seq;
};

struct sim {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cluster **clusters;
	size_t nclusters, cap;
	char *dir;
	char *admin_token;
	int port;
	int ready_delay_ms;
	int tick_ms;
	int quiet;
	volatile int stopping;
	/* TLS material (PEM) */
	char *ca_crt, *ca_key, *srv_crt, *srv_key;
	char *client_crt, *client_key; /* shared client cert for kubeconfigs */
	uint64_t start_ms;
};

extern struct sim g_sim;

/* ---- util.c */
int64_t now_ms(void);
void rfc3339_now(char out[32]);
void random_hex(char *out, size_t nbytes); /* writes 2*nbytes hex + NUL */
char *b64_encode(const void *data, size_t len);
/* Decodes standard or URL-safe base64; returns malloc'd bytes or NULL. */
unsigned char *b64_decode(const char *s, size_t *outlen);
int write_file(const char *path, const char *data, size_t len, int mode);
int mkdir_p(const char *path);
uint64_t fnv1a(const void *data, size_t len);
const char *jstr(const json_t *obj, const char *key); /* NULL if not a string */
json_t *jpath(const json_t *obj, const char *dotted);   /* borrowed or NULL */
/* Set obj.a.b.c = value (steals value), creating objects on the way. */
void jset_path(json_t *obj, const char *dotted, json_t *value);

/* ---- resources.c */
const struct res_type *res_find(const struct cluster *c, const char *group,
				const char *version, const char *resource);
const struct res_type *res_find_kind(const struct cluster *c,
				     const char *apiversion, const char *kind);
/* Discovery documents; NULL when the group/version is not served. */
json_t *res_discovery_api(void);
json_t *res_discovery_apis(const struct cluster *c);
json_t *res_discovery_group(const struct cluster *c, const char *group);
json_t *res_discovery_gv(const struct cluster *c, const char *group, const char *version);
int res_cluster_minor(const struct cluster *c);
/* A built-in type by apiVersion + kind, ignoring served-version rules. */
const struct res_type *res_builtin_kind(const char *apiversion, const char *kind);
/* "apps/daemonsets" (core: "core/pods"); caller frees. */
char *res_store_key(const struct res_type *t);
/* "daemonsets.apps" or "pods" */
void res_qualified(const struct res_type *t, char *out, size_t outlen);
/* CRD registration from a stored CRD object; replaces an earlier one. */
void res_register_crd(struct cluster *c, const json_t *crd);
void res_unregister_crd(struct cluster *c, const char *crd_name);
void res_free_crds(struct cluster *c);

/* ---- scenario.c */
struct scenario {
	char *name;
	json_t *version;   /* /version document */
	json_t *objects;   /* array of {"key":"apps/daemonsets","id":"ns/name","obj":{…}} */
	uint64_t rv;       /* highest RV used by the template */
	int k3s;           /* nodes NotReady until a cilium pod is ready */
};
const struct scenario *scenario_get(const char *name);
int scenario_load_file(const char *name, const char *path, char *err, size_t errlen);
void scenario_free_all(void);
/* Build a node object (new reference). */
json_t *scenario_make_node(const char *name, const json_t *labels, const json_t *taints,
			   const char *os_image, const char *kernel, int ready, int is_virtual);

/* ---- operator.c: cilium-operator registers Cilium's CRDs once available */
void operator_tick(struct cluster *c);

/* ---- store.c */
struct cluster *cluster_new(const char *name, const struct scenario *scn);
void cluster_reset(struct cluster *c);
void cluster_free(struct cluster *c);
struct cluster *sim_find_cluster(const char *name);
/* Objects of one store key (borrowed json object id->obj, created if absent). */
json_t *store_bucket(struct cluster *c, const char *key);
json_t *store_get(struct cluster *c, const char *key, const char *id);
/* Store obj (steals the reference) with a new resourceVersion; records the
 * event. Returns the stored object (borrowed). */
json_t *store_put(struct cluster *c, const char *key, const char *id, json_t *obj,
		  int created);
void store_del(struct cluster *c, const char *key, const char *id);
uint64_t cluster_next_rv(struct cluster *c);
void new_uid(struct cluster *c, char out[37]);

struct api_req {
	struct cluster *c;
	const char *method;
	const char *path;        /* without the cluster prefix */
	const char *query_raw;
	json_t *query;           /* name -> string */
	const char *body;
	size_t body_len;
	const char *content_type;
	const char *user_agent;
	const char *accept;      /* Accept header (for as=Table) */
	const char *user;        /* authenticated user */
	int can_write;
	int can_read;
	const char *verb;        /* k8s verb, filled by the router */
};

struct api_resp {
	int code;
	json_t *body;            /* JSON body (owned) */
	char *text;              /* or a text body (owned) */
	const char *content_type;
	char retry_after[16];
	/* watch: if set, the handler streams events */
	int watch;
	char *watch_key;
	char *watch_ns, *watch_name;
	json_t *watch_label_sel;   /* parsed selector */
	uint64_t watch_rv;
	int watch_timeout_s;
	int watch_bookmarks;
	const struct res_type *watch_type;
};

/* Route an API request (sim.mu held). Fills resp. Sets req->verb. */
void api_handle(struct api_req *req, struct api_resp *resp);
/* Classify the Kubernetes verb of a request without handling it. */
const char *api_verb(const char *method, const char *path, const char *query_raw);
json_t *status_error(int code, const char *reason, const char *message);
void resp_status(struct api_resp *r, int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Selectors (selector.c) */
json_t *labelsel_parse(const char *s, char *err, size_t errlen); /* array */
int labelsel_match(const json_t *sel, const json_t *labels);
/* Returns the items for a watch event check; used by store.c */

/* ---- table.c */
/* A meta.k8s.io/v1 Table of objects (array) of type t. */
json_t *table_for(const struct res_type *t, const json_t *objects, const char *rv,
		  const char *cont);

/* ---- patch.c */
/* Each returns a new object or NULL with an error code + message. */
json_t *patch_json(const json_t *doc, const json_t *ops, int *code, char *err, size_t errlen);
json_t *patch_merge(const json_t *doc, const json_t *patch);
json_t *patch_strategic(const json_t *doc, const json_t *patch, char *err, size_t errlen);
/* Server-side apply. live may be NULL (create). On conflict returns NULL and
 * sets *conflicts to an array of {"manager","field","message"} and msg. */
json_t *ssa_apply(const json_t *live, const json_t *applied, const char *manager,
		  int force, const char *apiversion, const char *now,
		  json_t **conflicts, char *msg, size_t msglen);
/* managedFields bookkeeping for a non-apply write: manager takes the fields
 * that differ between old (may be NULL) and new. Modifies new in place. */
void ssa_update_managed(const json_t *old, json_t *newobj, const char *manager,
			const char *operation, const char *apiversion,
			const char *subresource, const char *now);

/* ---- controller.c */
void *controller_main(void *arg);
void controller_tick_cluster(struct cluster *c, int64_t now);
char *template_hash(const json_t *tmpl);
/* Delete a pod gracefully: it gets deletionTimestamp now and disappears
 * grace_ms later (0: at once). sim.mu held. */
void pod_terminate(struct cluster *c, const char *id, int grace_ms);

/* ---- tlsgen.c */
int tls_load_or_create_ca(const char *dir, char *err, size_t errlen);
int tls_make_server_cert(char *err, size_t errlen);
/* A client certificate signed by the CA: returns 0 and PEM strings. */
int tls_make_client_cert(const char *cn, const char *org, char **crt, char **key,
			 char *err, size_t errlen);

/* ---- server.c */
int server_start(const char *listen, char *err, size_t errlen);
void server_stop(void);
int cluster_write_files(struct cluster *c, char *err, size_t errlen);
json_t *cluster_info_json(const struct cluster *c);
int sim_add_cluster(const char *name, const char *scenario, char *err, size_t errlen);

#endif
