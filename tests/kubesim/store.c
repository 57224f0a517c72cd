/*
 * store.c: clusters, the generic object store, and the Kubernetes REST verbs.
 *
 * Each cluster keeps its objects in a JSON object of buckets keyed by
 * "group/resource", each bucket keyed by "namespace/name" ("/name" for
 * cluster-scoped types). Stored objects are immutable (see sim.h): every write
 * builds a new object, gives it the next resourceVersion, records a watch
 * event in the cluster's ring and wakes watchers.
 *
 * api_handle() routes one request (cluster prefix already removed) and
 * implements discovery, create/get/list/watch/update/patch/delete/
 * deletecollection and the status subresource with the real API server's
 * codes and Status bodies (reference/kubernetes-api.md).
 */
#include "tests/kubesim/sim.h"
#include "server/common/yamljson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_CAP 512

/* ------------------------------------------------------------ clusters */

uint64_t cluster_next_rv(struct cluster *c)
{
	return ++c->rv;
}

void new_uid(struct cluster *c, char out[37])
{
	char h[33];
	random_hex(h, 16);
	snprintf(out, 37, "%.8s-%.4s-4%.3s-a%.3s-%.12s", h, h + 8, h + 12, h + 15, h + 18);
	c->uid_seq++;
}

static void ev_clear(struct cluster *c)
{
	if (!c->ev)
		return;
	for (size_t i = 0; i < c->ev_count; i++) {
		struct sim_event *e = &c->ev[(c->ev_head + i) % EV_CAP];
		free(e->store_key);
		json_decref(e->obj);
	}
	c->ev_head = c->ev_count = 0;
}

static void load_scenario(struct cluster *c)
{
	c->store = json_object();
	size_t i;
	json_t *e;
	json_array_foreach(c->scn->objects, i, e) {
		json_t *obj = json_object_get(e, "obj");
		json_object_set(store_bucket(c, jstr(e, "key")), jstr(e, "id"), obj);
		if (!strcmp(jstr(e, "key"), "apiextensions.k8s.io/customresourcedefinitions"))
			res_register_crd(c, obj);
	}
	if (c->rv < c->scn->rv)
		c->rv = c->scn->rv;
	c->dirty = 1;
}

struct cluster *cluster_new(const char *name, const struct scenario *scn)
{
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->scn = scn;
	random_hex(c->token, 24);
	random_hex(c->token_viewer, 24);
	random_hex(c->token_nobody, 24);
	load_scenario(c);
	return c;
}

static void faults_clear(struct faults *f)
{
	for (int i = 0; i < f->nverbs; i++)
		free(f->verbs[i]);
	free(f->path_contains);
	memset(f, 0, sizeof(*f));
}

void cluster_reset(struct cluster *c)
{
	json_decref(c->store);
	res_free_crds(c);
	ev_clear(c);
	json_decref(c->by_request);
	c->by_request = NULL;
	json_decref(c->pod_ready_at);
	c->pod_ready_at = NULL;
	json_decref(c->pod_gone_at);
	c->pod_gone_at = NULL;
	json_decref(c->progress);
	c->progress = NULL;
	c->total = c->writes = c->faults_injected = c->rejected_auth = c->connections = 0;
	memset(c->by_verb, 0, sizeof(c->by_verb));
	faults_clear(&c->faults);
	c->rv += 1000;
	c->compact_rv = c->rv;
	load_scenario(c);
	pthread_cond_broadcast(&g_sim.cv);
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	json_decref(c->store);
	res_free_crds(c);
	ev_clear(c);
	free(c->ev);
	json_decref(c->by_request);
	json_decref(c->pod_ready_at);
	json_decref(c->pod_gone_at);
	json_decref(c->progress);
	faults_clear(&c->faults);
	free(c->name);
	free(c);
}

struct cluster *sim_find_cluster(const char *name)
{
	for (size_t i = 0; i < g_sim.nclusters; i++)
		if (g_sim.clusters[i] && !strcmp(g_sim.clusters[i]->name, name))
			return g_sim.clusters[i];
	return NULL;
}

/* ------------------------------------------------------------ store */

json_t *store_bucket(struct cluster *c, const char *key)
{
	json_t *b = json_object_get(c->store, key);
	if (!b) {
		b = json_object();
		json_object_set_new(c->store, key, b);
	}
	return b;
}

json_t *store_get(struct cluster *c, const char *key, const char *id)
{
	return json_object_get(json_object_get(c->store, key), id);
}

static void ev_add(struct cluster *c, const char *type, const char *key, json_t *obj, uint64_t rv)
{
	if (!c->ev)
		c->ev = xcalloc(EV_CAP, sizeof(*c->ev));
	if (c->ev_count == EV_CAP) {
		struct sim_event *old = &c->ev[c->ev_head];
		free(old->store_key);
		json_decref(old->obj);
		c->ev_head = (c->ev_head + 1) % EV_CAP;
		c->ev_count--;
	}
	struct sim_event *e = &c->ev[(c->ev_head + c->ev_count) % EV_CAP];
	e->rv = rv;
	e->type = type;
	e->store_key = xstrdup(key);
	e->obj = json_incref(obj);
	c->ev_count++;
}

static void set_rv(json_t *obj, uint64_t rv)
{
	json_t *md = json_object_get(obj, "metadata");
	if (!md) {
		md = json_object();
		json_object_set_new(obj, "metadata", md);
	}
	json_object_set_new(md, "resourceVersion", json_sprintf("%llu", (unsigned long long)rv));
}

json_t *store_put(struct cluster *c, const char *key, const char *id, json_t *obj, int created)
{
	uint64_t rv = cluster_next_rv(c);
	set_rv(obj, rv);
	json_object_set_new(store_bucket(c, key), id, obj);
	ev_add(c, created ? "ADDED" : "MODIFIED", key, obj, rv);
	c->dirty = 1;
	pthread_cond_broadcast(&g_sim.cv);
	return obj;
}

void store_del(struct cluster *c, const char *key, const char *id)
{
	json_t *b = json_object_get(c->store, key);
	json_t *old = json_object_get(b, id);
	if (!old)
		return;
	uint64_t rv = cluster_next_rv(c);
	json_t *gone = json_deep_copy(old);
	set_rv(gone, rv);
	ev_add(c, "DELETED", key, gone, rv);
	json_decref(gone);
	json_object_del(b, id);
	c->dirty = 1;
	pthread_cond_broadcast(&g_sim.cv);
}

/* ------------------------------------------------------------ responses */

json_t *status_error(int code, const char *reason, const char *message)
{
	return json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
			 "metadata", "status", "Failure", "message", message, "reason", reason,
			 "code", code);
}

void resp_status(struct api_resp *r, int code, const char *reason, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(r->body);
	r->code = code;
	r->body = status_error(code, reason, msg);
}

static void status_details(struct api_resp *r, const char *name, const struct res_type *t)
{
	json_t *d = json_object();
	if (name)
		json_object_set_new(d, "name", json_string(name));
	if (t) {
		json_object_set_new(d, "group", json_string(t->group));
		json_object_set_new(d, "kind", json_string(t->resource));
	}
	json_object_set_new(r->body, "details", d);
}

static void resp_json(struct api_resp *r, int code, json_t *body)
{
	json_decref(r->body);
	r->code = code;
	r->body = body;
}

static void not_found(struct api_resp *r, const struct res_type *t, const char *name)
{
	char q[300];
	res_qualified(t, q, sizeof(q));
	resp_status(r, 404, "NotFound", "%s \"%s\" not found", q, name);
	status_details(r, name, t);
}

static void conflict_modified(struct api_resp *r, const struct res_type *t, const char *name)
{
	char q[300];
	res_qualified(t, q, sizeof(q));
	resp_status(r, 409, "Conflict",
		    "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
		    "please apply your changes to the latest version and try again", q, name);
	status_details(r, name, t);
}

static void invalid(struct api_resp *r, const struct res_type *t, const char *name,
		    const char *field, const char *cause_reason, const char *msg)
{
	char grp[300];
	if (t->group[0])
		snprintf(grp, sizeof(grp), "%s.%s", t->kind, t->group);
	else
		snprintf(grp, sizeof(grp), "%s", t->kind);
	resp_status(r, 422, "Invalid", "%s \"%s\" is invalid: %s: %s", grp, name ? name : "", field, msg);
	json_t *d = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", name ? name : "",
			      "group", t->group, "kind", t->kind, "causes", "reason", cause_reason,
			      "message", msg, "field", field);
	json_object_set_new(r->body, "details", d);
}

/* ------------------------------------------------------------ routing */

struct route {
	enum { R_NONE, R_VERSION, R_API, R_APIS, R_GROUP, R_GV, R_RES, R_HEALTH, R_OPENAPI } kind;
	char group[256], version[256], ns[256], resource[256], name[256], sub[256];
	int nsegs_bad;
};

static int split_path(const char *path, char segs[8][256])
{
	int n = 0;
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (n >= 8)
			return -1;
		if (len >= 256)
			return -1;
		memcpy(segs[n], p, len);
		segs[n][len] = 0;
		n++;
		p += len;
		while (*p == '/')
			p++;
	}
	return n;
}

static void parse_route(const char *path, struct route *r)
{
	memset(r, 0, sizeof(*r));
	char s[8][256];
	int n = split_path(path, s);
	if (n < 0)
		return;
	if (n == 1 && !strcmp(s[0], "version")) {
		r->kind = R_VERSION;
		return;
	}
	if (n >= 1 && (!strcmp(s[0], "healthz") || !strcmp(s[0], "livez") || !strcmp(s[0], "readyz"))) {
		r->kind = R_HEALTH;
		return;
	}
	if (n >= 1 && !strcmp(s[0], "openapi")) {
		r->kind = R_OPENAPI;
		return;
	}
	int rest;
	if (n >= 1 && !strcmp(s[0], "api")) {
		if (n == 1) {
			r->kind = R_API;
			return;
		}
		snprintf(r->version, sizeof(r->version), "%s", s[1]);
		rest = 2;
	} else if (n >= 1 && !strcmp(s[0], "apis")) {
		if (n == 1) {
			r->kind = R_APIS;
			return;
		}
		snprintf(r->group, sizeof(r->group), "%s", s[1]);
		if (n == 2) {
			r->kind = R_GROUP;
			return;
		}
		snprintf(r->version, sizeof(r->version), "%s", s[2]);
		rest = 3;
	} else {
		return;
	}
	if (n == rest) {
		r->kind = R_GV;
		return;
	}
	int m = n - rest;
	char (*q)[256] = s + rest;
	if (!strcmp(q[0], "namespaces") && m >= 3 && strcmp(q[2], "status") && strcmp(q[2], "finalize")) {
		snprintf(r->ns, sizeof(r->ns), "%s", q[1]);
		snprintf(r->resource, sizeof(r->resource), "%s", q[2]);
		if (m >= 4)
			snprintf(r->name, sizeof(r->name), "%s", q[3]);
		if (m >= 5)
			snprintf(r->sub, sizeof(r->sub), "%s", q[4]);
		if (m > 5)
			return;
	} else {
		snprintf(r->resource, sizeof(r->resource), "%s", q[0]);
		if (m >= 2)
			snprintf(r->name, sizeof(r->name), "%s", q[1]);
		if (m >= 3)
			snprintf(r->sub, sizeof(r->sub), "%s", q[2]);
		if (m > 3)
			return;
	}
	r->kind = R_RES;
}

static const char *qparam(const struct api_req *req, const char *name)
{
	return jstr(req->query, name);
}

static int truthy(const char *v)
{
	return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

const char *api_verb(const char *method, const char *path, const char *query_raw)
{
	struct route r;
	parse_route(path, &r);
	if (r.kind != R_RES)
		return "get";
	if (!strcmp(method, "GET")) {
		if (r.name[0])
			return "get";
		if (query_raw && (strstr(query_raw, "watch=true") || strstr(query_raw, "watch=1")))
			return "watch";
		return "list";
	}
	if (!strcmp(method, "POST"))
		return "create";
	if (!strcmp(method, "PUT"))
		return "update";
	if (!strcmp(method, "PATCH"))
		return "patch";
	if (!strcmp(method, "DELETE"))
		return r.name[0] ? "delete" : "deletecollection";
	return "unknown";
}

/* ------------------------------------------------------------ helpers */

static json_t *parse_body(const struct api_req *req, struct api_resp *resp)
{
	if (!req->body || !req->body_len) {
		resp_status(resp, 400, "BadRequest", "the body of the request was empty");
		return NULL;
	}
	if (req->content_type && (strstr(req->content_type, "protobuf") || strstr(req->content_type, "cbor"))) {
		resp_status(resp, 415, "UnsupportedMediaType",
			    "the body of the request was in an unknown format - accepted media types include: "
			    "application/json, application/yaml (kubesim does not implement %s)", req->content_type);
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(req->body, req->body_len, 0, &je);
	if (!v && req->content_type && strstr(req->content_type, "yaml")) {
		char err[256];
		v = yaml_to_json(req->body, req->body_len, err, sizeof(err));
	}
	if (!v) {
		resp_status(resp, 400, "BadRequest",
			    "the body of the request was in an unknown format - accepted media types "
			    "include: application/json, application/yaml (%s)", je.text);
		return NULL;
	}
	return v;
}

static const char *default_manager(const struct api_req *req, char *buf, size_t len)
{
	const char *fm = qparam(req, "fieldManager");
	if (fm && fm[0])
		return fm;
	const char *ua = req->user_agent && req->user_agent[0] ? req->user_agent : "unknown";
	size_t n = strcspn(ua, "/ ");
	snprintf(buf, len, "%.*s", (int)(n > 128 ? 128 : n), ua);
	return buf;
}

static void gv_of(const struct res_type *t, char *out, size_t len)
{
	if (t->group[0])
		snprintf(out, len, "%s/%s", t->group, t->version);
	else
		snprintf(out, len, "%s", t->version);
}

static int is_dns_label_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 253)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		      *p == ':'))
			return 0;
	return 1;
}

/* Equal apart from resourceVersion and managedFields. */
static int same_object(const json_t *a, const json_t *b)
{
	json_t *ca = json_copy((json_t *)a), *cb = json_copy((json_t *)b);
	json_t *ma = json_copy(json_object_get(ca, "metadata"));
	json_t *mb = json_copy(json_object_get(cb, "metadata"));
	if (ma) {
		json_object_del(ma, "resourceVersion");
		json_object_del(ma, "managedFields");
		json_object_set_new(ca, "metadata", ma);
	}
	if (mb) {
		json_object_del(mb, "resourceVersion");
		json_object_del(mb, "managedFields");
		json_object_set_new(cb, "metadata", mb);
	}
	int eq = json_equal(ca, cb);
	json_decref(ca);
	json_decref(cb);
	return eq;
}

/* Spec-ish content (everything but metadata and status) equal? */
static int same_spec(const json_t *a, const json_t *b)
{
	json_t *ca = json_copy((json_t *)a), *cb = json_copy((json_t *)b);
	json_object_del(ca, "metadata");
	json_object_del(ca, "status");
	json_object_del(cb, "metadata");
	json_object_del(cb, "status");
	int eq = json_equal(ca, cb);
	json_decref(ca);
	json_decref(cb);
	return eq;
}

static void set_default(json_t *obj, const char *key, json_t *v)
{
	if (!json_object_get(obj, key))
		json_object_set_new(obj, key, v);
	else
		json_decref(v);
}

static void default_pod_spec(json_t *spec)
{
	if (!json_is_object(spec))
		return;
	set_default(spec, "restartPolicy", json_string("Always"));
	set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
	set_default(spec, "schedulerName", json_string("default-scheduler"));
	set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
	set_default(spec, "securityContext", json_object());
	const char *lists[] = {"containers", "initContainers"};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *ctr;
		json_array_foreach(json_object_get(spec, lists[l]), i, ctr) {
			if (!json_is_object(ctr))
				continue;
			const char *image = jstr(ctr, "image");
			const char *colon = image ? strrchr(image, ':') : NULL;
			const char *slash = image ? strrchr(image, '/') : NULL;
			int latest = !image || !colon || (slash && colon < slash) ||
				     !strcmp(colon, ":latest");
			if (image && strchr(image, '@'))
				latest = 0;
			set_default(ctr, "imagePullPolicy", json_string(latest ? "Always" : "IfNotPresent"));
			set_default(ctr, "terminationMessagePath", json_string("/dev/termination-log"));
			set_default(ctr, "terminationMessagePolicy", json_string("File"));
			set_default(ctr, "resources", json_object());
			size_t j;
			json_t *port;
			json_array_foreach(json_object_get(ctr, "ports"), j, port)
				if (json_is_object(port))
					set_default(port, "protocol", json_string("TCP"));
		}
	}
}

/* Defaulting as the API server does on every write (a useful subset). */
static void apply_defaults(struct cluster *c, const struct res_type *t, json_t *obj, int create)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!strcmp(t->kind, "DaemonSet") && json_is_object(spec)) {
		set_default(spec, "updateStrategy", json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate",
			"rollingUpdate", "maxUnavailable", 1, "maxSurge", 0));
		set_default(spec, "revisionHistoryLimit", json_integer(10));
		default_pod_spec(jpath(spec, "template.spec"));
	} else if (!strcmp(t->kind, "Deployment") && json_is_object(spec)) {
		set_default(spec, "replicas", json_integer(1));
		set_default(spec, "strategy", json_pack("{s:s, s:{s:s, s:s}}", "type", "RollingUpdate",
			"rollingUpdate", "maxUnavailable", "25%", "maxSurge", "25%"));
		set_default(spec, "revisionHistoryLimit", json_integer(10));
		set_default(spec, "progressDeadlineSeconds", json_integer(600));
		default_pod_spec(jpath(spec, "template.spec"));
	} else if ((!strcmp(t->kind, "StatefulSet") || !strcmp(t->kind, "ReplicaSet") ||
		    !strcmp(t->kind, "Job")) && json_is_object(spec)) {
		default_pod_spec(jpath(spec, "template.spec"));
	} else if (!strcmp(t->kind, "Pod")) {
		default_pod_spec(spec);
	} else if (!strcmp(t->kind, "Secret") && !t->group[0]) {
		set_default(obj, "type", json_string("Opaque"));
	} else if (!strcmp(t->kind, "Service") && !t->group[0] && json_is_object(spec)) {
		set_default(spec, "type", json_string("ClusterIP"));
		set_default(spec, "sessionAffinity", json_string("None"));
		const char *type = jstr(spec, "type");
		if (create && !json_object_get(spec, "clusterIP") && strcmp(type, "ExternalName")) {
			char ip[32];
			snprintf(ip, sizeof(ip), "172.16.%llu.%llu", 253 + (unsigned long long)(c->uid_seq / 250 % 3),
				 (unsigned long long)(c->uid_seq % 250 + 2));
			json_object_set_new(spec, "clusterIP", json_string(ip));
			json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
		}
		size_t i;
		json_t *port;
		json_array_foreach(json_object_get(spec, "ports"), i, port) {
			if (!json_is_object(port))
				continue;
			set_default(port, "protocol", json_string("TCP"));
			json_t *p = json_object_get(port, "port");
			if (p)
				set_default(port, "targetPort", json_incref(p));
		}
	} else if (!strcmp(t->kind, "Namespace") && !t->group[0]) {
		json_t *md = json_object_get(obj, "metadata");
		json_t *labels = json_object_get(md, "labels");
		if (!labels) {
			labels = json_object();
			json_object_set_new(md, "labels", labels);
		}
		const char *name = jstr(md, "name");
		if (name)
			json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(name));
		if (!spec)
			json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
	}
}

static const char *obj_name(const json_t *o)
{
	return jstr(json_object_get(o, "metadata"), "name");
}

static const char *obj_ns(const json_t *o)
{
	return jstr(json_object_get(o, "metadata"), "namespace");
}

static void make_id(const struct res_type *t, const char *ns, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", t->namespaced ? ns : "", name);
}

/* Response copy of a stored object served under t's version. */
static json_t *served_copy(const struct res_type *t, json_t *obj)
{
	char gv[200];
	gv_of(t, gv, sizeof(gv));
	const char *av = jstr(obj, "apiVersion");
	if (av && !strcmp(av, gv) && jstr(obj, "kind"))
		return json_incref(obj);
	json_t *c = json_copy(obj);
	json_object_set_new(c, "apiVersion", json_string(gv));
	json_object_set_new(c, "kind", json_string(t->kind));
	return c;
}

static int check_dry_run(const struct api_req *req, struct api_resp *resp, int *dry)
{
	const char *d = qparam(req, "dryRun");
	*dry = 0;
	if (!d)
		return 0;
	if (!strcmp(d, "All")) {
		*dry = 1;
		return 0;
	}
	resp_status(resp, 422, "Invalid", "dryRun: Unsupported value: \"%s\": supported values: \"All\"", d);
	return -1;
}

static int namespace_ok(struct api_req *req, struct api_resp *resp, const struct res_type *t,
			const char *ns, const char *name, const char *verb)
{
	if (!t->namespaced)
		return 1;
	char id[300];
	snprintf(id, sizeof(id), "/%s", ns);
	json_t *nsobj = store_get(req->c, "core/namespaces", id);
	if (!nsobj) {
		resp_status(resp, 404, "NotFound", "namespaces \"%s\" not found", ns);
		json_object_set_new(resp->body, "details", json_pack("{s:s, s:s}", "name", ns, "kind", "namespaces"));
		return 0;
	}
	if (!strcmp(verb, "create") && jpath(nsobj, "metadata.deletionTimestamp")) {
		char q[300];
		res_qualified(t, q, sizeof(q));
		resp_status(resp, 403, "Forbidden",
			    "%s \"%s\" is forbidden: unable to create new content in namespace %s because it is being terminated",
			    q, name, ns);
		status_details(resp, name, t);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ create */

static void finish_create(struct api_req *req, struct api_resp *resp, const struct res_type *t,
			  const char *ns, json_t *obj, int dry, int via_apply)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *name = jstr(md, "name");
	char id[600], ts[32], uid[37], gv[200], mbuf[160];
	if (!namespace_ok(req, resp, t, ns, name, "create"))
		goto out;
	make_id(t, ns, name, id, sizeof(id));
	char *key = res_store_key(t);
	if (store_get(req->c, key, id)) {
		char q[300];
		res_qualified(t, q, sizeof(q));
		resp_status(resp, 409, "AlreadyExists", "%s \"%s\" already exists", q, name);
		status_details(resp, name, t);
		free(key);
		goto out;
	}
	rfc3339_now(ts);
	new_uid(req->c, uid);
	gv_of(t, gv, sizeof(gv));
	json_object_set_new(obj, "apiVersion", json_string(gv));
	json_object_set_new(obj, "kind", json_string(t->kind));
	json_object_set_new(md, "uid", json_string(uid));
	json_object_set_new(md, "creationTimestamp", json_string(ts));
	json_object_del(md, "deletionTimestamp");
	if (t->namespaced)
		json_object_set_new(md, "namespace", json_string(ns));
	else
		json_object_del(md, "namespace");
	if (t->tracks_generation)
		json_object_set_new(md, "generation", json_integer(1));
	else
		json_object_del(md, "generation");
	if (t->has_status && strcmp(t->kind, "Node") && strcmp(t->kind, "Namespace")) {
		if (!strcmp(t->kind, "Pod"))
			json_object_set_new(obj, "status", json_pack("{s:s, s:s}", "phase", "Pending", "qosClass", "BestEffort"));
		else if (!strcmp(t->kind, "CustomResourceDefinition") || t->custom)
			json_object_del(obj, "status");
		else
			json_object_set_new(obj, "status", json_object());
	}
	if (!strcmp(t->kind, "Namespace"))
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
	apply_defaults(req->c, t, obj, 1);
	{
		/* key order as the API server writes it: kind, apiVersion, metadata, … */
		json_t *ordered = json_pack("{s:O, s:O, s:O}", "kind", json_object_get(obj, "kind"),
					    "apiVersion", json_object_get(obj, "apiVersion"), "metadata", md);
		json_object_update_missing(ordered, obj);
		json_decref(obj);
		obj = ordered;
	}
	if (!via_apply) {
		json_object_del(md, "managedFields");
		ssa_update_managed(NULL, obj, default_manager(req, mbuf, sizeof(mbuf)), "Update", gv, NULL, ts);
	}
	if (!dry) {
		store_put(req->c, key, id, json_incref(obj), 1);
		if (!strcmp(t->kind, "CustomResourceDefinition"))
			res_register_crd(req->c, obj);
		req->c->writes++;
	} else {
		json_object_del(md, "resourceVersion");
	}
	free(key);
	resp_json(resp, 201, served_copy(t, obj));
out:
	json_decref(obj);
}

static void do_create(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		      const char *ns)
{
	int dry;
	if (check_dry_run(req, resp, &dry))
		return;
	json_t *obj = parse_body(req, resp);
	if (!obj)
		return;
	if (!json_is_object(obj)) {
		resp_status(resp, 400, "BadRequest", "the body of the request was in an unknown format");
		json_decref(obj);
		return;
	}
	const char *kind = jstr(obj, "kind");
	if (kind && strcmp(kind, t->kind)) {
		resp_status(resp, 400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s/%s)",
			    jstr(obj, "apiVersion") ? jstr(obj, "apiVersion") : "", t->group, t->version);
		json_decref(obj);
		return;
	}
	json_t *md = json_object_get(obj, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(obj, "metadata", md);
	}
	const char *body_ns = jstr(md, "namespace");
	if (t->namespaced && body_ns && body_ns[0] && strcmp(body_ns, ns)) {
		resp_status(resp, 400, "BadRequest",
			    "the namespace of the provided object does not match the namespace sent on the request");
		json_decref(obj);
		return;
	}
	const char *name = jstr(md, "name");
	const char *gen = jstr(md, "generateName");
	if ((!name || !name[0]) && gen && gen[0]) {
		char suffix[11];
		random_hex(suffix, 3);
		suffix[5] = 0;
		json_object_set_new(md, "name", json_sprintf("%s%s", gen, suffix));
		name = jstr(md, "name");
	}
	if (!name || !name[0]) {
		invalid(resp, t, "", "metadata.name", "FieldValueRequired",
			"Required value: name or generateName is required");
		json_decref(obj);
		return;
	}
	if (!is_dns_label_ok(name)) {
		char msg[600];
		snprintf(msg, sizeof(msg), "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", name);
		invalid(resp, t, name, "metadata.name", "FieldValueInvalid", msg);
		json_decref(obj);
		return;
	}
	json_object_del(md, "resourceVersion");
	finish_create(req, resp, t, ns, obj, dry, 0);
}

/* ------------------------------------------------------------ get / list */

struct fieldsel {
	char field[400];
	int neg;
	char value[256];
};

static int parse_fieldsel(const char *s, const struct res_type *t, struct fieldsel *out, int max,
			  char *err, size_t errlen)
{
	int n = 0;
	const char *p = s;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char term[400];
		snprintf(term, sizeof(term), "%.*s", (int)len, p);
		p = comma ? comma + 1 : NULL;
		if (!term[0])
			continue;
		if (n >= max) {
			snprintf(err, errlen, "too many field selector terms");
			return -1;
		}
		char *op = strstr(term, "!=");
		int neg = 0, oplen = 1;
		if (op) {
			neg = 1;
			oplen = 2;
		} else if ((op = strstr(term, "=="))) {
			oplen = 2;
		} else if (!(op = strchr(term, '='))) {
			snprintf(err, errlen, "invalid selector: '%s'; can't understand '%s'", s, term);
			return -1;
		}
		*op = 0;
		snprintf(out[n].field, sizeof(out[n].field), "%s", term);
		snprintf(out[n].value, sizeof(out[n].value), "%s", op + oplen);
		out[n].neg = neg;
		const char *f = out[n].field;
		int ok = !strcmp(f, "metadata.name") || !strcmp(f, "metadata.namespace");
		if (!strcmp(t->kind, "Pod") && !t->group[0])
			ok = ok || !strcmp(f, "spec.nodeName") || !strcmp(f, "status.phase") ||
			     !strcmp(f, "spec.restartPolicy") || !strcmp(f, "spec.schedulerName") ||
			     !strcmp(f, "spec.serviceAccountName") || !strcmp(f, "status.podIP");
		if (!strcmp(t->kind, "Secret") && !t->group[0])
			ok = ok || !strcmp(f, "type");
		if (!strcmp(t->kind, "Event") && !t->group[0])
			ok = ok || !strncmp(f, "involvedObject.", 15) || !strcmp(f, "reason") || !strcmp(f, "type");
		if (!strcmp(t->kind, "Node") && !t->group[0])
			ok = ok || !strcmp(f, "spec.unschedulable");
		if (!ok) {
			snprintf(err, errlen, "field label not supported: %s", f);
			return -1;
		}
		n++;
	}
	return n;
}

static int fieldsel_match(const struct fieldsel *fs, int n, const json_t *obj)
{
	for (int i = 0; i < n; i++) {
		json_t *v = jpath(obj, fs[i].field);
		const char *s = json_string_value(v);
		char tmp[32];
		if (json_is_boolean(v)) {
			snprintf(tmp, sizeof(tmp), "%s", json_is_true(v) ? "true" : "false");
			s = tmp;
		}
		if (!s)
			s = "";
		int eq = !strcmp(s, fs[i].value);
		if (eq == fs[i].neg)
			return 0;
	}
	return 1;
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *list_item(const struct res_type *t, json_t *obj)
{
	if (t->custom)
		return json_incref(obj);
	json_t *c = json_copy(obj);
	json_object_del(c, "apiVersion");
	json_object_del(c, "kind");
	return c;
}

struct selection {
	json_t *labels;            /* parsed label selector or NULL */
	struct fieldsel fs[8];
	int nfs;
};

static int selection_parse(struct api_req *req, struct api_resp *resp, const struct res_type *t,
			   struct selection *sel)
{
	char err[512];
	memset(sel, 0, sizeof(*sel));
	const char *ls = qparam(req, "labelSelector");
	if (ls && ls[0]) {
		sel->labels = labelsel_parse(ls, err, sizeof(err));
		if (!sel->labels) {
			resp_status(resp, 400, "BadRequest", "%s", err);
			return -1;
		}
	}
	const char *fsel = qparam(req, "fieldSelector");
	if (fsel && fsel[0]) {
		sel->nfs = parse_fieldsel(fsel, t, sel->fs, 8, err, sizeof(err));
		if (sel->nfs < 0) {
			json_decref(sel->labels);
			sel->labels = NULL;
			resp_status(resp, 400, "BadRequest", "%s", err);
			return -1;
		}
	}
	return 0;
}

static int selection_match(const struct selection *sel, const json_t *obj)
{
	if (sel->labels && !labelsel_match(sel->labels, jpath(obj, "metadata.labels")))
		return 0;
	return fieldsel_match(sel->fs, sel->nfs, obj);
}

static int wants_table(const struct api_req *req)
{
	return req->accept && strstr(req->accept, "as=Table") && strstr(req->accept, "g=meta.k8s.io");
}

static void do_list(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		    const char *ns)
{
	struct selection sel;
	if (selection_parse(req, resp, t, &sel))
		return;
	const char *limit_s = qparam(req, "limit");
	const char *cont = qparam(req, "continue");
	long limit = limit_s ? atol(limit_s) : 0;
	char start[600] = "";
	if (cont && cont[0]) {
		size_t len;
		unsigned char *raw = b64_decode(cont, &len);
		json_t *tok = raw ? json_loadb((char *)raw, len, 0, NULL) : NULL;
		free(raw);
		const char *st = jstr(tok, "start");
		json_t *rvj = json_object_get(tok, "rv");
		if (!st || !json_is_integer(rvj)) {
			json_decref(tok);
			json_decref(sel.labels);
			resp_status(resp, 400, "BadRequest", "continue key is not valid: illegal base64 data or malformed token");
			return;
		}
		if ((uint64_t)json_integer_value(rvj) < req->c->compact_rv) {
			json_decref(tok);
			json_decref(sel.labels);
			resp_status(resp, 410, "Expired",
				    "The provided continue parameter is too old to display a consistent list result. "
				    "You can start a new list without the continue parameter, or use the continue token "
				    "in this response to retrieve the remainder of the results. Continuing with the "
				    "provided token results in an inconsistent list - objects that were created, modified, "
				    "or deleted between the time the first chunk was returned and now may show up in the list.");
			return;
		}
		snprintf(start, sizeof(start), "%s", st);
		json_decref(tok);
	}
	char *key = res_store_key(t);
	json_t *bucket = json_object_get(req->c->store, key);
	size_t n = json_object_size(bucket), k = 0;
	const char **ids = xcalloc(n + 1, sizeof(*ids));
	const char *id;
	json_t *obj;
	json_object_foreach(bucket, id, obj) {
		if (t->namespaced && ns[0]) {
			size_t nl = strlen(ns);
			if (strncmp(id, ns, nl) || id[nl] != '/')
				continue;
		}
		if (start[0] && strcmp(id, start) <= 0)
			continue;
		ids[k++] = id;
	}
	qsort(ids, k, sizeof(*ids), cmp_ids);
	json_t *items = json_array();
	char last[600] = "";
	int more = 0;
	for (size_t i = 0; i < k; i++) {
		obj = json_object_get(bucket, ids[i]);
		if (!selection_match(&sel, obj))
			continue;
		if (limit > 0 && (long)json_array_size(items) >= limit) {
			more = 1;
			break;
		}
		json_array_append_new(items, list_item(t, obj));
		snprintf(last, sizeof(last), "%s", ids[i]);
	}
	free(ids);
	free(key);
	json_decref(sel.labels);
	char gv[200], lk[200], rv[32];
	gv_of(t, gv, sizeof(gv));
	snprintf(lk, sizeof(lk), "%sList", t->kind);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)req->c->rv);
	json_t *meta = json_pack("{s:s}", "resourceVersion", rv);
	if (more) {
		json_t *tok = json_pack("{s:s, s:I, s:s}", "v", "meta.k8s.io/v1", "rv", (json_int_t)req->c->rv,
					"start", last);
		char *s = json_dumps(tok, JSON_COMPACT);
		char *b = b64_encode(s, strlen(s));
		json_object_set_new(meta, "continue", json_string(b));
		free(s);
		free(b);
		json_decref(tok);
	}
	if (wants_table(req)) {
		resp_json(resp, 200, table_for(t, items, rv, jstr(meta, "continue")));
		json_decref(items);
		json_decref(meta);
		return;
	}
	resp_json(resp, 200, json_pack("{s:s, s:s, s:o, s:o}", "kind", lk, "apiVersion", gv,
					"metadata", meta, "items", items));
}

/* ------------------------------------------------------------ watch */

static void watch_setup(struct api_req *req, struct api_resp *resp, const struct res_type *t,
			const char *ns)
{
	struct selection sel;
	if (selection_parse(req, resp, t, &sel))
		return;
	resp->watch = 1;
	resp->watch_type = t;
	resp->watch_key = res_store_key(t);
	resp->watch_ns = xstrdup(ns);
	resp->watch_label_sel = sel.labels;
	/* field selector: only metadata.name / metadata.namespace equality are
	 * kept for watches (what kubectl and informers send) */
	resp->watch_name = NULL;
	for (int i = 0; i < sel.nfs; i++) {
		if (!strcmp(sel.fs[i].field, "metadata.name") && !sel.fs[i].neg)
			resp->watch_name = xstrdup(sel.fs[i].value);
		if (!strcmp(sel.fs[i].field, "metadata.namespace") && !sel.fs[i].neg) {
			free(resp->watch_ns);
			resp->watch_ns = xstrdup(sel.fs[i].value);
		}
	}
	const char *rv = qparam(req, "resourceVersion");
	resp->watch_rv = rv && rv[0] ? strtoull(rv, NULL, 10) : 0;
	const char *to = qparam(req, "timeoutSeconds");
	resp->watch_timeout_s = to ? atoi(to) : 0;
	if (resp->watch_timeout_s <= 0 || resp->watch_timeout_s > 1800)
		resp->watch_timeout_s = 1800;
	resp->watch_bookmarks = truthy(qparam(req, "allowWatchBookmarks"));
	resp->code = 200;
}

static int watch_matches(const struct api_resp *w, const json_t *obj)
{
	const char *ns = obj_ns(obj), *name = obj_name(obj);
	if (w->watch_type->namespaced && w->watch_ns && w->watch_ns[0] &&
	    (!ns || strcmp(ns, w->watch_ns)))
		return 0;
	if (w->watch_name && (!name || strcmp(name, w->watch_name)))
		return 0;
	if (w->watch_label_sel && !labelsel_match(w->watch_label_sel, jpath(obj, "metadata.labels")))
		return 0;
	return 1;
}

static void emit_event(struct buf *out, const char *type, json_t *obj, const struct res_type *t)
{
	json_t *o = served_copy(t, obj);
	json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", o);
	char *s = json_dumps(ev, JSON_COMPACT);
	buf_puts(out, s);
	buf_putc(out, '\n');
	free(s);
	json_decref(ev);
}

/* Events after *last_rv for watch w (lock held). Returns 1 when the stream
 * must end after out is sent (410), 0 otherwise. *last_rv advances. */
int watch_collect(struct cluster *c, struct api_resp *w, uint64_t *last_rv, int initial,
		  struct buf *out);
int watch_collect(struct cluster *c, struct api_resp *w, uint64_t *last_rv, int initial,
		  struct buf *out)
{
	if (initial && w->watch_rv == 0) {
		/* "0"/empty: synthetic ADDED events for the current state */
		json_t *bucket = json_object_get(c->store, w->watch_key);
		const char *id;
		json_t *obj;
		json_object_foreach(bucket, id, obj)
			if (watch_matches(w, obj))
				emit_event(out, "ADDED", obj, w->watch_type);
		*last_rv = c->rv;
		return 0;
	}
	if (initial) {
		*last_rv = w->watch_rv;
		uint64_t oldest = c->ev_count ? c->ev[c->ev_head].rv : c->rv + 1;
		int too_old = w->watch_rv < c->compact_rv ||
			      (c->ev_count == EV_CAP && w->watch_rv + 1 < oldest);
		if (w->watch_rv > c->rv) {
			/* a future RV: real servers wait; we start from now */
			*last_rv = c->rv;
		}
		if (too_old) {
			char msg[200];
			snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
				 (unsigned long long)w->watch_rv, (unsigned long long)(oldest ? oldest - 1 : 0));
			json_t *st = status_error(410, "Expired", msg);
			json_t *ev = json_pack("{s:s, s:o}", "type", "ERROR", "object", st);
			char *s = json_dumps(ev, JSON_COMPACT);
			buf_puts(out, s);
			buf_putc(out, '\n');
			free(s);
			json_decref(ev);
			return 1;
		}
	}
	for (size_t i = 0; i < c->ev_count; i++) {
		struct sim_event *e = &c->ev[(c->ev_head + i) % EV_CAP];
		if (e->rv <= *last_rv)
			continue;
		if (strcmp(e->store_key, w->watch_key) || !watch_matches(w, e->obj))
			continue;
		emit_event(out, e->type, e->obj, w->watch_type);
	}
	if (c->rv > *last_rv)
		*last_rv = c->rv;
	return 0;
}

void watch_bookmark(struct cluster *c, struct api_resp *w, struct buf *out);
void watch_bookmark(struct cluster *c, struct api_resp *w, struct buf *out)
{
	char gv[200];
	gv_of(w->watch_type, gv, sizeof(gv));
	json_t *ev = json_pack("{s:s, s:{s:s, s:s, s:{s:s}}}", "type", "BOOKMARK", "object", "kind",
			       w->watch_type->kind, "apiVersion", gv, "metadata", "resourceVersion", "");
	json_object_set_new(jpath(ev, "object.metadata"), "resourceVersion",
			    json_sprintf("%llu", (unsigned long long)c->rv));
	char *s = json_dumps(ev, JSON_COMPACT);
	buf_puts(out, s);
	buf_putc(out, '\n');
	free(s);
	json_decref(ev);
}

/* ------------------------------------------------------------ update */

/* Build the object a write stores, from the live object and the desired
 * one; enforces immutable metadata, status-subresource rules and
 * generation. Returns a new object. */
static json_t *merge_write(struct cluster *c, const struct res_type *t, const json_t *live,
			   json_t *desired, const char *sub)
{
	json_t *out;
	if (sub && !strcmp(sub, "status")) {
		out = json_copy((json_t *)live);
		json_t *st = json_object_get(desired, "status");
		if (st)
			json_object_set(out, "status", st);
		else
			json_object_del(out, "status");
		json_t *md = json_copy(json_object_get(live, "metadata"));
		json_object_set_new(out, "metadata", md);
		return out;
	}
	out = json_deep_copy(desired);
	json_t *md = json_object_get(out, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(out, "metadata", md);
	}
	json_t *lmd = json_object_get(live, "metadata");
	const char *keep[] = {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
			      "name", "namespace", "generation"};
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *v = json_object_get(lmd, keep[i]);
		if (v)
			json_object_set(md, keep[i], v);
		else
			json_object_del(md, keep[i]);
	}
	json_object_set(out, "apiVersion", json_object_get(live, "apiVersion"));
	json_object_set(out, "kind", json_object_get(live, "kind"));
	if (t->has_status) {
		json_t *st = json_object_get(live, "status");
		if (st)
			json_object_set(out, "status", st);
		else
			json_object_del(out, "status");
	}
	apply_defaults(c, t, out, 0);
	if (t->tracks_generation && !same_spec(live, out)) {
		json_int_t g = json_integer_value(json_object_get(lmd, "generation"));
		json_object_set_new(md, "generation", json_integer(g + 1));
	}
	return out;
}

/* Store (or dry-run) an update from live to out. Takes out. */
static void commit_update(struct api_req *req, struct api_resp *resp, const struct res_type *t,
			  const char *key, const char *id, json_t *live, json_t *out, int dry,
			  const char *manager, const char *operation, const char *sub)
{
	char gv[200], ts[32];
	gv_of(t, gv, sizeof(gv));
	rfc3339_now(ts);
	if (same_object(live, out)) {
		json_decref(out);
		resp_json(resp, 200, served_copy(t, live));
		return;
	}
	if (manager && strcmp(operation, "Apply"))
		ssa_update_managed(live, out, manager, operation, gv, sub, ts);
	json_object_set(json_object_get(out, "metadata"), "resourceVersion",
			json_object_get(json_object_get(live, "metadata"), "resourceVersion"));
	if (dry) {
		resp_json(resp, 200, served_copy(t, out));
		json_decref(out);
		return;
	}
	req->c->writes++;
	/* an object being deleted goes once its last finalizer is removed */
	if (jpath(out, "metadata.deletionTimestamp") &&
	    json_array_size(jpath(out, "metadata.finalizers")) == 0) {
		store_del(req->c, key, id);
		resp_json(resp, 200, served_copy(t, out));
		json_decref(out);
		return;
	}
	json_t *stored = store_put(req->c, key, id, out, 0);
	if (!strcmp(t->kind, "CustomResourceDefinition"))
		res_register_crd(req->c, stored);
	resp_json(resp, 200, served_copy(t, stored));
}

static void do_update(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		      const char *ns, const char *name, const char *sub)
{
	int dry;
	if (check_dry_run(req, resp, &dry))
		return;
	json_t *obj = parse_body(req, resp);
	if (!obj)
		return;
	char id[600], mbuf[160];
	make_id(t, ns, name, id, sizeof(id));
	char *key = res_store_key(t);
	json_t *live = store_get(req->c, key, id);
	const char *bname = obj_name(obj);
	const char *kind = jstr(obj, "kind");
	if (!json_is_object(obj) || (kind && strcmp(kind, t->kind))) {
		resp_status(resp, 400, "BadRequest", "the body of the request was in an unknown format or of the wrong kind");
		goto out;
	}
	if (bname && strcmp(bname, name)) {
		resp_status(resp, 400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)",
			    bname, name);
		goto out;
	}
	const char *bns = obj_ns(obj);
	if (t->namespaced && bns && bns[0] && strcmp(bns, ns)) {
		resp_status(resp, 400, "BadRequest",
			    "the namespace of the provided object does not match the namespace sent on the request");
		goto out;
	}
	if (!live) {
		not_found(resp, t, name);
		goto out;
	}
	const char *rv = jstr(json_object_get(obj, "metadata"), "resourceVersion");
	if (rv && rv[0]) {
		if (strcmp(rv, jstr(json_object_get(live, "metadata"), "resourceVersion"))) {
			conflict_modified(resp, t, name);
			goto out;
		}
	} else if (t->custom) {
		invalid(resp, t, name, "metadata.resourceVersion", "FieldValueInvalid",
			"Invalid value: 0x0: must be specified for an update");
		goto out;
	}
	json_t *out = merge_write(req->c, t, live, obj, sub[0] ? sub : NULL);
	/* the managedFields a client sends on PUT replace the old ones */
	json_t *mf = jpath(obj, "metadata.managedFields");
	if (!sub[0]) {
		if (json_is_array(mf))
			json_object_set(json_object_get(out, "metadata"), "managedFields", mf);
		else
			json_object_set(json_object_get(out, "metadata"), "managedFields",
					jpath(live, "metadata.managedFields"));
	}
	commit_update(req, resp, t, key, id, live, out, dry, default_manager(req, mbuf, sizeof(mbuf)),
		      "Update", sub[0] ? sub : NULL);
out:
	free(key);
	json_decref(obj);
}

/* ------------------------------------------------------------ patch */

static void do_patch(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		     const char *ns, const char *name, const char *sub)
{
	int dry;
	if (check_dry_run(req, resp, &dry))
		return;
	const char *ct = req->content_type ? req->content_type : "";
	int is_json = !strncmp(ct, "application/json-patch+json", 27);
	int is_merge = !strncmp(ct, "application/merge-patch+json", 28);
	int is_smp = !strncmp(ct, "application/strategic-merge-patch+json", 38);
	int is_apply = !strncmp(ct, "application/apply-patch+yaml", 28) ||
		       !strncmp(ct, "application/apply-patch+cbor", 28);
	if (!is_json && !is_merge && !is_smp && !is_apply) {
		resp_status(resp, 415, "UnsupportedMediaType",
			    "the body of the request was in an unknown format - accepted media types include: "
			    "application/json-patch+json, application/merge-patch+json, "
			    "application/apply-patch+yaml, application/strategic-merge-patch+json");
		return;
	}
	if (is_smp && t->custom) {
		resp_status(resp, 415, "UnsupportedMediaType",
			    "the body of the request was in an unknown format - accepted media types include: "
			    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
		return;
	}
	const char *fm = qparam(req, "fieldManager");
	const char *force = qparam(req, "force");
	if (is_apply && (!fm || !fm[0])) {
		resp_status(resp, 422, "Invalid",
			    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
		json_object_set_new(resp->body, "details", json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}",
			"group", "meta.k8s.io", "kind", "PatchOptions", "causes", "reason", "FieldValueRequired",
			"message", "Required value: is required for apply patch", "field", "fieldManager"));
		return;
	}
	if (fm && strlen(fm) > 128) {
		resp_status(resp, 422, "Invalid",
			    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes");
		return;
	}
	if (!is_apply && force) {
		resp_status(resp, 422, "Invalid",
			    "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch");
		return;
	}
	json_t *patch = NULL;
	if (is_apply) {
		char err[256];
		patch = req->body_len ? yaml_to_json(req->body, req->body_len, err, sizeof(err)) : NULL;
		if (!json_is_object(patch)) {
			json_decref(patch);
			resp_status(resp, 400, "BadRequest", "error decoding YAML: %s",
				    req->body_len ? err : "empty body");
			return;
		}
	} else {
		json_error_t je;
		patch = json_loadb(req->body ? req->body : "", req->body_len, 0, &je);
		if (!patch || (is_json && !json_is_array(patch)) || (!is_json && !json_is_object(patch))) {
			json_decref(patch);
			resp_status(resp, 400, "BadRequest", "error decoding patch: %s",
				    je.text[0] ? je.text : "unexpected JSON type");
			return;
		}
	}
	char id[600], mbuf[160], gv[200], ts[32], errbuf[1024];
	make_id(t, ns, name, id, sizeof(id));
	gv_of(t, gv, sizeof(gv));
	rfc3339_now(ts);
	char *key = res_store_key(t);
	json_t *live = store_get(req->c, key, id);
	json_t *patched = NULL;
	if (is_apply) {
		const char *pn = obj_name(patch), *pk = jstr(patch, "kind"), *pv = jstr(patch, "apiVersion");
		if (!pk || !pv) {
			resp_status(resp, 400, "BadRequest", "Object 'Kind' is missing in '%.200s'", req->body);
			goto out;
		}
		if (strcmp(pk, t->kind)) {
			resp_status(resp, 400, "BadRequest", "the kind in the patch (%s) does not match %s", pk, t->kind);
			goto out;
		}
		if (pn && strcmp(pn, name)) {
			resp_status(resp, 400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)", pn, name);
			goto out;
		}
		const char *pns = obj_ns(patch);
		if (t->namespaced && pns && pns[0] && strcmp(pns, ns)) {
			resp_status(resp, 400, "BadRequest",
				    "the namespace of the provided object does not match the namespace sent on the request");
			goto out;
		}
		json_t *conflicts = NULL;
		char msg[2048];
		json_t *applied = json_deep_copy(patch);
		json_t *amd = json_object_get(applied, "metadata");
		if (!json_is_object(amd)) {
			amd = json_object();
			json_object_set_new(applied, "metadata", amd);
		}
		json_object_set_new(amd, "name", json_string(name));
		if (t->namespaced)
			json_object_set_new(amd, "namespace", json_string(ns));
		const char *arv = jstr(amd, "resourceVersion");
		if (live && arv && arv[0] && strcmp(arv, jstr(json_object_get(live, "metadata"), "resourceVersion"))) {
			json_decref(applied);
			conflict_modified(resp, t, name);
			goto out;
		}
		json_object_del(amd, "resourceVersion");
		json_object_del(amd, "managedFields");
		json_t *result = ssa_apply(live, applied, fm, truthy(force), gv, ts, &conflicts, msg, sizeof(msg));
		json_decref(applied);
		if (!result) {
			resp_status(resp, 409, "Conflict", "%s", msg);
			json_object_set_new(resp->body, "details", json_pack("{s:o}", "causes", conflicts));
			goto out;
		}
		if (!live) {
			if (sub[0]) {
				json_decref(result);
				not_found(resp, t, name);
				goto out;
			}
			json_t *md = json_object_get(result, "metadata");
			json_t *mf = json_incref(json_object_get(md, "managedFields"));
			finish_create(req, resp, t, ns, result, dry, 1);
			json_decref(mf);
			goto out;
		}
		patched = result;
	} else {
		if (!live) {
			not_found(resp, t, name);
			goto out;
		}
		int code = 422;
		if (is_json)
			patched = patch_json(live, patch, &code, errbuf, sizeof(errbuf));
		else if (is_merge)
			patched = patch_merge(live, patch);
		else
			patched = patch_strategic(live, patch, errbuf, sizeof(errbuf));
		if (!patched) {
			if (code == 422)
				resp_status(resp, 422, "Invalid", "the server rejected our request due to an error in our request: %s", errbuf);
			else
				resp_status(resp, code, "BadRequest", "%s", errbuf);
			goto out;
		}
		if (!json_is_object(patched)) {
			json_decref(patched);
			resp_status(resp, 400, "BadRequest", "patch produced a non-object");
			goto out;
		}
		const char *prv = jpath(patched, "metadata.resourceVersion") ?
			json_string_value(jpath(patched, "metadata.resourceVersion")) : NULL;
		const char *lrv = jstr(json_object_get(live, "metadata"), "resourceVersion");
		if (prv && lrv && strcmp(prv, lrv)) {
			json_decref(patched);
			conflict_modified(resp, t, name);
			goto out;
		}
		const char *pname = obj_name(patched);
		if (!pname || strcmp(pname, name)) {
			char msg[300];
			snprintf(msg, sizeof(msg), "Invalid value: \"%.200s\": field is immutable", pname ? pname : "");
			json_decref(patched);
			invalid(resp, t, name, "metadata.name", "FieldValueInvalid", msg);
			goto out;
		}
	}
	json_t *out = merge_write(req->c, t, live, patched, sub[0] ? sub : NULL);
	if (!sub[0] && !is_apply)
		json_object_set(json_object_get(out, "metadata"), "managedFields",
				jpath(live, "metadata.managedFields"));
	json_decref(patched);
	commit_update(req, resp, t, key, id, live, out, dry,
		      is_apply ? fm : default_manager(req, mbuf, sizeof(mbuf)),
		      is_apply ? "Apply" : "Update", sub[0] ? sub : NULL);
out:
	free(key);
	json_decref(patch);
}

/* ------------------------------------------------------------ delete */

/* Remove dependents (pods owned by uid) now. */
static void orphan_or_delete_dependents(struct cluster *c, const char *uid, int orphan)
{
	json_t *pods = json_object_get(c->store, "core/pods");
	const char *id;
	json_t *pod, *tmp;
	json_object_foreach_safe(pods, tmp, id, pod) {
		json_t *refs = jpath(pod, "metadata.ownerReferences");
		size_t i;
		json_t *r;
		int owned = 0;
		json_array_foreach(refs, i, r)
			if (uid && !strcmp(jstr(r, "uid") ? jstr(r, "uid") : "", uid))
				owned = 1;
		if (!owned)
			continue;
		if (orphan) {
			json_t *np = json_deep_copy(pod);
			json_object_del(json_object_get(np, "metadata"), "ownerReferences");
			store_put(c, "core/pods", id, np, 0);
		} else if (!jpath(pod, "metadata.deletionTimestamp")) {
			char pid[600];
			snprintf(pid, sizeof(pid), "%s", id);
			pod_terminate(c, pid, g_sim.ready_delay_ms);
		}
	}
}

static void delete_namespace_contents(struct cluster *c, const char *ns)
{
	const char *key;
	json_t *bucket;
	size_t nl = strlen(ns);
	json_object_foreach(c->store, key, bucket) {
		const char *id;
		json_t *obj, *tmp;
		json_object_foreach_safe(bucket, tmp, id, obj) {
			if (!strncmp(id, ns, nl) && id[nl] == '/')
				store_del(c, key, id);
		}
	}
}

static int delete_one(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		      const char *key, const char *id, json_t *live, const char *policy, int dry,
		      int grace_ms, int *deferred)
{
	const char *uid = jstr(json_object_get(live, "metadata"), "uid");
	*deferred = 0;
	int has_finalizers = json_array_size(jpath(live, "metadata.finalizers")) > 0;
	int workload = !strcmp(t->kind, "DaemonSet") || !strcmp(t->kind, "Deployment") ||
		       !strcmp(t->kind, "ReplicaSet") || !strcmp(t->kind, "StatefulSet") ||
		       !strcmp(t->kind, "Job");
	int is_ns = !strcmp(t->kind, "Namespace") && !t->group[0];
	if (dry)
		return 0;
	req->c->writes++;
	char uidbuf[64];
	snprintf(uidbuf, sizeof(uidbuf), "%s", uid ? uid : "");
	if (has_finalizers || is_ns || (workload && policy && !strcmp(policy, "Foreground"))) {
		json_t *nobj = json_deep_copy(live);
		json_t *md = json_object_get(nobj, "metadata");
		char ts[32];
		rfc3339_now(ts);
		if (!json_object_get(md, "deletionTimestamp"))
			json_object_set_new(md, "deletionTimestamp", json_string(ts));
		json_object_set_new(md, "deletionGracePeriodSeconds", json_integer(0));
		if (workload && policy && !strcmp(policy, "Foreground")) {
			json_t *fin = json_object_get(md, "finalizers");
			if (!fin) {
				fin = json_array();
				json_object_set_new(md, "finalizers", fin);
			}
			json_array_append_new(fin, json_string("foregroundDeletion"));
		}
		if (is_ns)
			json_object_set_new(nobj, "status", json_pack("{s:s}", "phase", "Terminating"));
		store_put(req->c, key, id, nobj, 0);
		*deferred = 1;
		return 0;
	}
	if (workload) {
		int orphan = policy && !strcmp(policy, "Orphan");
		orphan_or_delete_dependents(req->c, uidbuf, orphan);
	}
	if (!strcmp(t->kind, "CustomResourceDefinition")) {
		res_unregister_crd(req->c, obj_name(live));
		/* remove its custom resources */
		const char *group = jstr(jpath(live, "spec"), "group");
		const char *plural = jstr(jpath(live, "spec.names"), "plural");
		if (group && plural) {
			char ck[300];
			snprintf(ck, sizeof(ck), "%s/%s", group, plural);
			json_t *b = json_object_get(req->c->store, ck);
			const char *cid;
			json_t *o, *tmp;
			json_object_foreach_safe(b, tmp, cid, o)
				store_del(req->c, ck, cid);
		}
	}
	if (!strcmp(t->kind, "Pod") && !t->group[0]) {
		if (grace_ms > 0) {
			if (!jpath(live, "metadata.deletionTimestamp"))
				pod_terminate(req->c, id, grace_ms);
			*deferred = 1;
			return 0;
		}
		pod_terminate(req->c, id, 0);
		return 0;
	}
	store_del(req->c, key, id);
	return 0;
}

static void do_delete(struct api_req *req, struct api_resp *resp, const struct res_type *t,
		      const char *ns, const char *name)
{
	int dry;
	if (check_dry_run(req, resp, &dry))
		return;
	json_t *opts = NULL;
	if (req->body_len) {
		opts = json_loadb(req->body, req->body_len, 0, NULL);
		if (!json_is_object(opts)) {
			json_decref(opts);
			resp_status(resp, 400, "BadRequest", "the body of the request was in an unknown format");
			return;
		}
		json_t *dr = json_object_get(opts, "dryRun");
		if (json_array_size(dr) == 1 && !strcmp(json_string_value(json_array_get(dr, 0)) ?
							json_string_value(json_array_get(dr, 0)) : "", "All"))
			dry = 1;
	}
	const char *policy = jstr(opts, "propagationPolicy");
	if (!policy)
		policy = qparam(req, "propagationPolicy");
	if (policy && strcmp(policy, "Background") && strcmp(policy, "Foreground") && strcmp(policy, "Orphan")) {
		resp_status(resp, 422, "Invalid", "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"", policy);
		json_decref(opts);
		return;
	}
	char id[600];
	make_id(t, ns, name, id, sizeof(id));
	char *key = res_store_key(t);
	json_t *live = store_get(req->c, key, id);
	if (!live) {
		not_found(resp, t, name);
		goto out;
	}
	json_incref(live);
	json_t *pre = json_object_get(opts, "preconditions");
	const char *puid = jstr(pre, "uid"), *prv = jstr(pre, "resourceVersion");
	const char *luid = jstr(json_object_get(live, "metadata"), "uid");
	const char *lrv = jstr(json_object_get(live, "metadata"), "resourceVersion");
	char q[300];
	res_qualified(t, q, sizeof(q));
	if (puid && strcmp(puid, luid ? luid : "")) {
		resp_status(resp, 409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in precondition: %s, UID in object meta: %s",
			    q, name, puid, luid ? luid : "");
		status_details(resp, name, t);
		json_decref(live);
		goto out;
	}
	if (prv && strcmp(prv, lrv ? lrv : "")) {
		resp_status(resp, 409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
			    q, name, prv, lrv ? lrv : "");
		status_details(resp, name, t);
		json_decref(live);
		goto out;
	}
	int deferred = 0;
	json_t *gp = json_object_get(opts, "gracePeriodSeconds");
	const char *gq = qparam(req, "gracePeriodSeconds");
	int grace_ms = g_sim.ready_delay_ms;
	if (json_is_integer(gp))
		grace_ms = json_integer_value(gp) > 0 ? g_sim.ready_delay_ms : 0;
	else if (gq)
		grace_ms = atoi(gq) > 0 ? g_sim.ready_delay_ms : 0;
	delete_one(req, resp, t, key, id, live, policy, dry, grace_ms, &deferred);
	if (deferred) {
		resp_json(resp, 200, served_copy(t, store_get(req->c, key, id)));
	} else {
		json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s, s:s, s:s}}", "kind", "Status",
				       "apiVersion", "v1", "metadata", "status", "Success", "details",
				       "name", name, "group", t->group, "kind", t->resource, "uid", luid ? luid : "");
		resp_json(resp, 200, st);
	}
	json_decref(live);
out:
	free(key);
	json_decref(opts);
}

static void do_deletecollection(struct api_req *req, struct api_resp *resp,
				const struct res_type *t, const char *ns)
{
	int dry;
	if (check_dry_run(req, resp, &dry))
		return;
	struct selection sel;
	if (selection_parse(req, resp, t, &sel))
		return;
	char *key = res_store_key(t);
	json_t *bucket = json_object_get(req->c->store, key);
	json_t *victims = json_array();
	const char *id;
	json_t *obj;
	json_object_foreach(bucket, id, obj) {
		if (t->namespaced && ns[0]) {
			size_t nl = strlen(ns);
			if (strncmp(id, ns, nl) || id[nl] != '/')
				continue;
		}
		if (selection_match(&sel, obj))
			json_array_append_new(victims, json_string(id));
	}
	size_t i;
	json_t *v;
	json_array_foreach(victims, i, v) {
		json_t *live = store_get(req->c, key, json_string_value(v));
		if (!live)
			continue;
		json_incref(live);
		int deferred;
		delete_one(req, resp, t, key, json_string_value(v), live, qparam(req, "propagationPolicy"), dry,
			   g_sim.ready_delay_ms, &deferred);
		json_decref(live);
	}
	json_decref(victims);
	json_decref(sel.labels);
	free(key);
	resp_json(resp, 200, json_pack("{s:s, s:s, s:{}, s:s}", "kind", "Status", "apiVersion", "v1",
				       "metadata", "status", "Success"));
}

/* ------------------------------------------------------------ router */

static int verb_allowed(const struct api_req *req, const char *verb)
{
	if (!strcmp(verb, "get") || !strcmp(verb, "list") || !strcmp(verb, "watch"))
		return req->can_read;
	return req->can_write;
}

static void forbidden(struct api_resp *resp, const struct api_req *req, const struct res_type *t,
		      const char *verb, const char *ns, const char *name, const char *sub)
{
	char q[300], res[300], scope[400];
	res_qualified(t, q, sizeof(q));
	if (sub && sub[0])
		snprintf(res, sizeof(res), "%s/%s", t->resource, sub);
	else
		snprintf(res, sizeof(res), "%s", t->resource);
	if (t->namespaced && ns[0])
		snprintf(scope, sizeof(scope), "in the namespace \"%s\"", ns);
	else
		snprintf(scope, sizeof(scope), "at the cluster scope");
	if (name && name[0])
		resp_status(resp, 403, "Forbidden",
			    "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s",
			    q, name, req->user, verb, res, t->group, scope);
	else
		resp_status(resp, 403, "Forbidden",
			    "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s",
			    q, req->user, verb, res, t->group, scope);
	status_details(resp, name && name[0] ? name : NULL, t);
}

/* Minimal OpenAPI v3: an index of group versions and, per group version,
 * one PATCH operation per kind declaring the fieldValidation parameter.
 * That is what kubectl checks before relying on server-side validation. */
static json_t *openapi_v3(struct cluster *c, const char *gvpath)
{
	json_t *apis = res_discovery_apis(c);
	json_t *gvs = json_array();
	json_array_append_new(gvs, json_string("api/v1"));
	size_t i, j;
	json_t *g, *v;
	json_array_foreach(json_object_get(apis, "groups"), i, g)
		json_array_foreach(json_object_get(g, "versions"), j, v)
			json_array_append_new(gvs, json_sprintf("apis/%s", jstr(v, "groupVersion")));
	json_decref(apis);
	json_t *out = NULL;
	if (!gvpath) {
		json_t *paths = json_object();
		json_array_foreach(gvs, i, v) {
			const char *p = json_string_value(v);
			json_object_set_new(paths, p, json_pack("{s:s}", "serverRelativeURL", ""));
			json_object_set_new(json_object_get(paths, p), "serverRelativeURL",
					    json_sprintf("/openapi/v3/%s?hash=%016llx", p,
							 (unsigned long long)fnv1a(p, strlen(p))));
		}
		out = json_pack("{s:o}", "paths", paths);
	} else {
		char group[256] = "", version[64] = "";
		if (!strncmp(gvpath, "api/", 4)) {
			snprintf(version, sizeof(version), "%s", gvpath + 4);
		} else if (!strncmp(gvpath, "apis/", 5)) {
			const char *sl = strchr(gvpath + 5, '/');
			if (sl) {
				snprintf(group, sizeof(group), "%.*s", (int)(sl - gvpath - 5), gvpath + 5);
				snprintf(version, sizeof(version), "%s", sl + 1);
			}
		}
		json_t *doc = version[0] ? res_discovery_gv(c, group, version) : NULL;
		if (doc) {
			json_t *paths = json_object();
			json_array_foreach(json_object_get(doc, "resources"), i, v) {
				const char *rname = jstr(v, "name");
				if (!rname || strchr(rname, '/'))
					continue;
				int nsd = json_is_true(json_object_get(v, "namespaced"));
				char p[700];
				snprintf(p, sizeof(p), "/%s%s%s/%s/{name}", gvpath[0] == 'a' && gvpath[3] == '/' ? "" : "",
					 gvpath, nsd ? "/namespaces/{namespace}" : "", rname);
				json_t *param = json_pack("[{s:s, s:s, s:s, s:{s:s}}]", "name", "fieldValidation",
							  "in", "query", "description", "fieldValidation",
							  "schema", "type", "string");
				json_t *op = json_pack("{s:{s:s, s:s, s:s}, s:o, s:{s:{s:s}}}",
					"x-kubernetes-group-version-kind", "group", group, "version", version,
					"kind", jstr(v, "kind"), "parameters", param,
					"responses", "200", "description", "OK");
				json_object_set_new(paths, p, json_pack("{s:o}", "patch", op));
			}
			out = json_pack("{s:s, s:{s:s, s:s}, s:o, s:{}}", "openapi", "3.0.0", "info", "title",
					"Kubernetes", "version", "unversioned", "paths", paths, "components");
			json_decref(doc);
		}
	}
	json_decref(gvs);
	return out;
}

void api_handle(struct api_req *req, struct api_resp *resp)
{
	struct route r;
	parse_route(req->path, &r);
	const char *m = req->method;
	req->verb = "get";
	switch (r.kind) {
	case R_VERSION:
		resp_json(resp, 200, json_deep_copy(req->c->scn->version));
		return;
	case R_HEALTH:
		resp->code = 200;
		resp->text = xstrdup("ok");
		resp->content_type = "text/plain; charset=utf-8";
		return;
	case R_OPENAPI:
		if (!strcmp(req->path, "/openapi/v3")) {
			resp_json(resp, 200, openapi_v3(req->c, NULL));
			return;
		}
		if (!strncmp(req->path, "/openapi/v3/", 12)) {
			json_t *d = openapi_v3(req->c, req->path + 12);
			if (d) {
				resp_json(resp, 200, d);
				return;
			}
		}
		resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	case R_API:
		resp_json(resp, 200, res_discovery_api());
		return;
	case R_APIS:
		resp_json(resp, 200, res_discovery_apis(req->c));
		return;
	case R_GROUP: {
		json_t *d = res_discovery_group(req->c, r.group);
		if (d)
			resp_json(resp, 200, d);
		else
			resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	}
	case R_GV: {
		json_t *d = res_discovery_gv(req->c, r.group, r.version);
		if (d)
			resp_json(resp, 200, d);
		else
			resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	}
	case R_NONE:
		resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	case R_RES:
		break;
	}
	const struct res_type *t = res_find(req->c, r.group, r.version, r.resource);
	if (!t || (r.ns[0] && !t->namespaced) ||
	    (r.sub[0] && (strcmp(r.sub, "status") || !t->has_status))) {
		resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	}
	const char *verb = api_verb(m, req->path, req->query_raw);
	req->verb = verb;
	if (!verb_allowed(req, verb)) {
		forbidden(resp, req, t, verb, r.ns, r.name, r.sub);
		return;
	}
	if (!strcmp(m, "GET")) {
		if (r.name[0]) {
			char id[600];
			make_id(t, r.ns, r.name, id, sizeof(id));
			char *key = res_store_key(t);
			json_t *obj = store_get(req->c, key, id);
			free(key);
			if (!obj) {
				not_found(resp, t, r.name);
			} else if (wants_table(req)) {
				json_t *one = json_pack("[O]", obj);
				resp_json(resp, 200, table_for(t, one, jstr(json_object_get(obj, "metadata"), "resourceVersion"), NULL));
				json_decref(one);
			} else {
				resp_json(resp, 200, served_copy(t, obj));
			}
		} else if (!strcmp(verb, "watch")) {
			watch_setup(req, resp, t, r.ns);
		} else {
			do_list(req, resp, t, r.ns);
		}
		return;
	}
	if (t->namespaced && !r.ns[0] && strcmp(m, "GET")) {
		resp_status(resp, 404, "NotFound", "the server could not find the requested resource");
		return;
	}
	if (!strcmp(m, "POST")) {
		if (r.name[0]) {
			resp_status(resp, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
			return;
		}
		do_create(req, resp, t, r.ns);
	} else if (!strcmp(m, "PUT") && r.name[0]) {
		do_update(req, resp, t, r.ns, r.name, r.sub);
	} else if (!strcmp(m, "PATCH") && r.name[0]) {
		do_patch(req, resp, t, r.ns, r.name, r.sub);
	} else if (!strcmp(m, "DELETE")) {
		if (r.name[0])
			do_delete(req, resp, t, r.ns, r.name);
		else
			do_deletecollection(req, resp, t, r.ns);
	} else {
		resp_status(resp, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
	}
}

/* Delete everything in terminating namespaces, then the namespace (controller). */
void store_finish_namespaces(struct cluster *c);
void store_finish_namespaces(struct cluster *c)
{
	json_t *nss = json_object_get(c->store, "core/namespaces");
	json_t *dead = json_array();
	const char *id;
	json_t *ns;
	json_object_foreach(nss, id, ns)
		if (jpath(ns, "metadata.deletionTimestamp"))
			json_array_append_new(dead, json_string(id));
	size_t i;
	json_t *v;
	json_array_foreach(dead, i, v) {
		const char *nid = json_string_value(v);
		delete_namespace_contents(c, nid + 1);
		store_del(c, "core/namespaces", nid);
	}
	json_decref(dead);
}

/* Foreground deletions: owners with the foregroundDeletion finalizer. */
void store_finish_foreground(struct cluster *c);
void store_finish_foreground(struct cluster *c)
{
	const char *keys[] = {"apps/daemonsets", "apps/deployments", "apps/replicasets", "apps/statefulsets", "batch/jobs"};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		json_t *b = json_object_get(c->store, keys[k]);
		const char *id;
		json_t *obj, *tmp;
		json_object_foreach_safe(b, tmp, id, obj) {
			if (!jpath(obj, "metadata.deletionTimestamp"))
				continue;
			json_t *fin = jpath(obj, "metadata.finalizers");
			size_t i;
			json_t *f;
			int fg = 0;
			json_array_foreach(fin, i, f)
				if (!strcmp(json_string_value(f) ? json_string_value(f) : "", "foregroundDeletion"))
					fg = 1;
			if (!fg)
				continue;
			char uid[64];
			snprintf(uid, sizeof(uid), "%s", jstr(json_object_get(obj, "metadata"), "uid") ?
				 jstr(json_object_get(obj, "metadata"), "uid") : "");
			orphan_or_delete_dependents(c, uid, 0);
			if (json_array_size(fin) == 1) {
				store_del(c, keys[k], id);
			} else {
				json_t *n = json_deep_copy(obj);
				json_t *nf = jpath(n, "metadata.finalizers");
				for (size_t j = 0; j < json_array_size(nf); j++)
					if (!strcmp(json_string_value(json_array_get(nf, j)), "foregroundDeletion"))
						json_array_remove(nf, j--);
				store_put(c, keys[k], id, n, 0);
			}
		}
	}
}
