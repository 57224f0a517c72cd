/*
 * controller.c: the loop that makes workloads behave.
 *
 * Every tick (sim.tick_ms) it visits the clusters that changed since the last
 * tick or have a pod becoming ready now, and (under sim.mu):
 * - marks CRDs Established/NamesAccepted;
 * - finishes namespace and foreground deletions, and garbage-collects pods
 *   whose owner is gone;
 * - reconciles DaemonSets (one pod per matching node) and Deployments
 *   (spec.replicas pods), replacing pods whose template hash is outdated;
 * - turns pods Ready ready_delay_ms after creation, and (k3s) nodes Ready
 *   once a cilium pod on them is ready;
 * - writes workload status the way kubectl rollout status reads it;
 * - registers Cilium's CRDs once cilium-operator is available (operator.c).
 * Writes are skipped when nothing changed, so idle clusters keep sharing the
 * scenario's objects.
 */
#include "tests/kubesim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void store_finish_namespaces(struct cluster *c);
void store_finish_foreground(struct cluster *c);

char *template_hash(const json_t *tmpl)
{
	char *s = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t h = fnv1a(s ? s : "", s ? strlen(s) : 0);
	free(s);
	static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
	char out[11];
	for (int i = 0; i < 10; i++) {
		out[i] = alpha[h % 27];
		h /= 27;
	}
	out[10] = 0;
	return xstrdup(out);
}

static int tolerates(const json_t *tolerations, const json_t *taint)
{
	const char *tk = jstr(taint, "key"), *tv = jstr(taint, "value"), *te = jstr(taint, "effect");
	size_t i;
	json_t *tol;
	json_array_foreach(tolerations, i, tol) {
		const char *k = jstr(tol, "key"), *op = jstr(tol, "operator"), *v = jstr(tol, "value");
		const char *e = jstr(tol, "effect");
		if (e && e[0] && te && strcmp(e, te))
			continue;
		if (op && !strcmp(op, "Exists")) {
			if (!k || !k[0] || (tk && !strcmp(k, tk)))
				return 1;
			continue;
		}
		if (k && tk && !strcmp(k, tk) && !strcmp(v ? v : "", tv ? tv : ""))
			return 1;
	}
	return 0;
}

/* Does a pod spec fit a node (nodeSelector, taints)? daemon adds the
 * DaemonSet controller's automatic tolerations. */
static int fits(const json_t *podspec, const json_t *node, int daemon)
{
	json_t *sel = json_object_get(podspec, "nodeSelector");
	json_t *labels = jpath(node, "metadata.labels");
	const char *k;
	json_t *v;
	json_object_foreach(sel, k, v) {
		const char *nv = jstr(labels, k);
		if (!nv || !json_is_string(v) || strcmp(nv, json_string_value(v)))
			return 0;
	}
	json_t *tolerations = json_object_get(podspec, "tolerations");
	size_t i;
	json_t *taint;
	json_array_foreach(jpath(node, "spec.taints"), i, taint) {
		const char *effect = jstr(taint, "effect");
		if (!effect || !strcmp(effect, "PreferNoSchedule"))
			continue;
		const char *key = jstr(taint, "key");
		if (daemon && key && (!strcmp(key, "node.kubernetes.io/not-ready") ||
				      !strcmp(key, "node.kubernetes.io/unreachable") ||
				      !strcmp(key, "node.kubernetes.io/disk-pressure") ||
				      !strcmp(key, "node.kubernetes.io/memory-pressure") ||
				      !strcmp(key, "node.kubernetes.io/pid-pressure") ||
				      !strcmp(key, "node.kubernetes.io/unschedulable") ||
				      !strcmp(key, "node.kubernetes.io/network-unavailable")))
			continue;
		if (!tolerates(tolerations, taint))
			return 0;
	}
	return 1;
}

static int pod_ready(const json_t *pod)
{
	size_t i;
	json_t *c;
	json_array_foreach(jpath(pod, "status.conditions"), i, c)
		if (!strcmp(jstr(c, "type") ? jstr(c, "type") : "", "Ready"))
			return !strcmp(jstr(c, "status") ? jstr(c, "status") : "", "True");
	return 0;
}

static int owned_by(const json_t *pod, const char *uid)
{
	size_t i;
	json_t *r;
	json_array_foreach(jpath(pod, "metadata.ownerReferences"), i, r)
		if (jstr(r, "uid") && !strcmp(jstr(r, "uid"), uid))
			return 1;
	return 0;
}

static void set_next_due(struct cluster *c, int64_t when)
{
	if (!c->next_due_ms || when < c->next_due_ms)
		c->next_due_ms = when;
}

static json_t *make_pod(struct cluster *c, const json_t *owner, const char *kind,
			const char *hash, const char *node, int64_t now)
{
	const char *ns = jstr(json_object_get(owner, "metadata"), "namespace");
	const char *oname = jstr(json_object_get(owner, "metadata"), "name");
	const char *ouid = jstr(json_object_get(owner, "metadata"), "uid");
	json_t *tmpl = jpath(owner, "spec.template");
	char suffix[8], uid[37], ts[32], name[320];
	random_hex(suffix, 3);
	suffix[5] = 0;
	if (!strcmp(kind, "DaemonSet"))
		snprintf(name, sizeof(name), "%s-%s", oname, suffix);
	else
		snprintf(name, sizeof(name), "%s-%s-%s", oname, hash, suffix);
	new_uid(c, uid);
	rfc3339_now(ts);
	json_t *labels = json_deep_copy(jpath(tmpl, "metadata.labels"));
	if (!labels)
		labels = json_object();
	json_object_set_new(labels, !strcmp(kind, "DaemonSet") ? "controller-revision-hash" : "pod-template-hash",
			    json_string(hash));
	json_t *md = json_pack("{s:s, s:s, s:s, s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}",
			       "name", name, "namespace", ns, "uid", uid, "creationTimestamp", ts,
			       "labels", labels, "ownerReferences", "apiVersion", "apps/v1", "kind", kind,
			       "name", oname, "uid", ouid, "controller", 1, "blockOwnerDeletion", 1);
	json_t *ann = jpath(tmpl, "metadata.annotations");
	if (ann)
		json_object_set(md, "annotations", ann);
	json_t *spec = json_deep_copy(jpath(tmpl, "spec"));
	if (!spec)
		spec = json_object();
	if (node)
		json_object_set_new(spec, "nodeName", json_string(node));
	json_t *conds = json_pack("[{s:s, s:s, s:s}]", "type", "PodScheduled", "status", node ? "True" : "False",
				  "lastTransitionTime", ts);
	if (!node) {
		json_object_set_new(json_array_get(conds, 0), "reason", json_string("Unschedulable"));
		json_object_set_new(json_array_get(conds, 0), "message",
				    json_string("0/0 nodes are available: no nodes available to schedule pods."));
	}
	json_t *pod = json_pack("{s:s, s:s, s:o, s:o, s:{s:s, s:o, s:s}}", "apiVersion", "v1", "kind", "Pod",
				"metadata", md, "spec", spec, "status", "phase", "Pending", "conditions", conds,
				"qosClass", "BestEffort");
	if (node) {
		if (!c->pod_ready_at)
			c->pod_ready_at = json_object();
		char id[600];
		snprintf(id, sizeof(id), "%s/%s", ns, name);
		json_object_set_new(c->pod_ready_at, id, json_integer(now + g_sim.ready_delay_ms));
		set_next_due(c, now + g_sim.ready_delay_ms);
	}
	return pod;
}

static void store_pod(struct cluster *c, json_t *pod)
{
	char id[600];
	snprintf(id, sizeof(id), "%s/%s", jstr(json_object_get(pod, "metadata"), "namespace"),
		 jstr(json_object_get(pod, "metadata"), "name"));
	store_put(c, "core/pods", id, pod, 1);
}

void pod_terminate(struct cluster *c, const char *id_in, int grace_ms)
{
	char id[600];
	snprintf(id, sizeof(id), "%s", id_in);
	if (c->pod_ready_at)
		json_object_del(c->pod_ready_at, id);
	json_t *pod = json_object_get(json_object_get(c->store, "core/pods"), id);
	if (!pod)
		return;
	if (grace_ms <= 0) {
		if (c->pod_gone_at)
			json_object_del(c->pod_gone_at, id);
		store_del(c, "core/pods", id);
		return;
	}
	if (jpath(pod, "metadata.deletionTimestamp"))
		return;
	char ts[32];
	rfc3339_now(ts);
	json_t *np = json_deep_copy(pod);
	json_t *md = json_object_get(np, "metadata");
	json_object_set_new(md, "deletionTimestamp", json_string(ts));
	json_object_set_new(md, "deletionGracePeriodSeconds", json_integer(30));
	store_put(c, "core/pods", id, np, 0);
	if (!c->pod_gone_at)
		c->pod_gone_at = json_object();
	int64_t at = now_ms() + grace_ms;
	json_object_set_new(c->pod_gone_at, id, json_integer(at));
	set_next_due(c, at);
}

static void delete_pod(struct cluster *c, const char *id)
{
	pod_terminate(c, id, g_sim.ready_delay_ms);
}

static int terminating(const json_t *pod)
{
	return jpath(pod, "metadata.deletionTimestamp") != NULL;
}

/* Terminating pods whose grace period is over go away. */
static void tick_gone(struct cluster *c, int64_t now)
{
	if (!c->pod_gone_at)
		return;
	json_t *due = json_array();
	const char *id;
	json_t *when;
	json_object_foreach(c->pod_gone_at, id, when) {
		if (json_integer_value(when) <= now)
			json_array_append_new(due, json_string(id));
		else
			set_next_due(c, json_integer_value(when));
	}
	size_t i;
	json_t *v;
	json_array_foreach(due, i, v) {
		json_object_del(c->pod_gone_at, json_string_value(v));
		store_del(c, "core/pods", json_string_value(v));
	}
	json_decref(due);
}

/* Pods turning ready. */
static void tick_pods(struct cluster *c, int64_t now)
{
	if (!c->pod_ready_at)
		return;
	json_t *pods = json_object_get(c->store, "core/pods");
	json_t *when, *tmp;
	const char *rid;
	json_object_foreach_safe(c->pod_ready_at, tmp, rid, when) {
		char id[600];
		snprintf(id, sizeof(id), "%s", rid);
		json_t *pod = json_object_get(pods, id);
		if (!pod) {
			json_object_del(c->pod_ready_at, id);
			continue;
		}
		int64_t at = json_integer_value(when);
		if (at > now) {
			set_next_due(c, at);
			continue;
		}
		char ts[32];
		rfc3339_now(ts);
		json_t *np = json_deep_copy(pod);
		int broken = 0;
		json_t *statuses = json_array();
		size_t i;
		json_t *ctr;
		json_array_foreach(jpath(np, "spec.containers"), i, ctr) {
			const char *image = jstr(ctr, "image") ? jstr(ctr, "image") : "";
			int bad = strstr(image, "nonexistent") != NULL;
			broken |= bad;
			json_t *state = bad ? json_pack("{s:{s:s, s:s}}", "waiting", "reason", "ErrImagePull",
							"message", "failed to pull image")
					    : json_pack("{s:{s:s}}", "running", "startedAt", ts);
			json_array_append_new(statuses, json_pack("{s:s, s:s, s:s, s:b, s:b, s:i, s:o}",
				"name", jstr(ctr, "name") ? jstr(ctr, "name") : "", "image", image,
				"imageID", "", "ready", !bad, "started", !bad, "restartCount", 0, "state", state));
		}
		const char *node = json_string_value(jpath(np, "spec.nodeName"));
		json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:o, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]}",
			"phase", broken ? "Pending" : "Running", "hostIP", "10.0.0.1", "podIP", "10.0.1.1",
			"startTime", ts, "containerStatuses", statuses,
			"conditions", "type", "Initialized", "status", "True", "lastTransitionTime", ts,
			"type", "Ready", "status", broken ? "False" : "True", "lastTransitionTime", ts,
			"type", "ContainersReady", "status", broken ? "False" : "True", "lastTransitionTime", ts,
			"type", "PodScheduled", "status", "True", "lastTransitionTime", ts);
		json_object_set_new(st, "qosClass", json_string("BestEffort"));
		/* hostNetwork pods use the node address */
		json_t *nodeobj = NULL;
		if (node) {
			char nid[300];
			snprintf(nid, sizeof(nid), "/%s", node);
			nodeobj = json_object_get(json_object_get(c->store, "core/nodes"), nid);
		}
		const char *nodeip = nodeobj ? jstr(json_array_get(jpath(nodeobj, "status.addresses"), 0), "address") : NULL;
		if (nodeip) {
			json_object_set_new(st, "hostIP", json_string(nodeip));
			if (json_is_true(jpath(np, "spec.hostNetwork")))
				json_object_set_new(st, "podIP", json_string(nodeip));
			else
				json_object_set_new(st, "podIP", json_sprintf("10.200.%u.%u",
					(unsigned)(fnv1a(id, strlen(id)) % 250), (unsigned)(fnv1a(id, strlen(id)) / 250 % 250 + 2)));
		}
		json_object_set_new(np, "status", st);
		json_object_del(c->pod_ready_at, id);
		store_put(c, "core/pods", id, np, 0);
	}
}

static void write_status(struct cluster *c, const char *key, const char *id, json_t *obj, json_t *status)
{
	json_t *cur = json_object_get(obj, "status");
	if (cur && json_equal(cur, status)) {
		json_decref(status);
		return;
	}
	json_t *n = json_copy(obj);
	json_object_set_new(n, "metadata", json_deep_copy(json_object_get(obj, "metadata")));
	json_object_set_new(n, "status", status);
	store_put(c, key, id, n, 0);
}

static void set_count(json_t *st, const char *k, long v, int omitempty)
{
	if (v || !omitempty)
		json_object_set_new(st, k, json_integer(v));
}

/* Pods owned by uid: returns a new array of ids. */
static json_t *owned_pods(struct cluster *c, const char *uid)
{
	json_t *out = json_array();
	json_t *pods = json_object_get(c->store, "core/pods");
	const char *id;
	json_t *pod;
	json_object_foreach(pods, id, pod)
		if (owned_by(pod, uid))
			json_array_append_new(out, json_string(id));
	return out;
}

/* spec.updateStrategy.rollingUpdate.maxUnavailable scaled to desired
 * (percentages round up), at least 1. */
static long max_unavailable(const json_t *ds, long desired)
{
	json_t *mu = jpath(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable");
	long v = 1;
	if (json_is_integer(mu)) {
		v = (long)json_integer_value(mu);
	} else if (json_is_string(mu)) {
		const char *s = json_string_value(mu);
		long pct = atol(s);
		v = strchr(s, '%') ? (pct * desired + 99) / 100 : pct;
	}
	return v < 1 ? 1 : v;
}

static void tick_daemonset(struct cluster *c, const char *id, json_t *ds, int64_t now)
{
	json_t *md = json_object_get(ds, "metadata");
	if (json_object_get(md, "deletionTimestamp"))
		return;
	const char *uid = jstr(md, "uid");
	if (!uid)
		return;
	char uidbuf[64];
	snprintf(uidbuf, sizeof(uidbuf), "%s", uid);
	json_t *podspec = jpath(ds, "spec.template.spec");
	char *hash = template_hash(jpath(ds, "spec.template"));
	const char *strategy = json_string_value(jpath(ds, "spec.updateStrategy.type"));
	int rolling = !strategy || !strcmp(strategy, "RollingUpdate");
	json_t *nodes = json_object_get(c->store, "core/nodes");
	json_t *pods = json_object_get(c->store, "core/pods");
	json_t *mine = owned_pods(c, uidbuf);
	json_t *targets = json_object(); /* node name -> 1 */
	const char *nid;
	json_t *node;
	json_object_foreach(nodes, nid, node)
		if (fits(podspec, node, 1))
			json_object_set_new(targets, nid + 1, json_true());
	/* terminate pods on nodes no longer targeted and duplicates at once;
	 * outdated pods only within the maxUnavailable budget (ready old pods
	 * count against it, unready ones go freely), as RollingUpdate does */
	json_t *covered = json_object();
	json_t *ready_nodes = json_object();
	size_t i;
	json_t *pid;
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		const char *pn = json_string_value(jpath(pod, "spec.nodeName"));
		if (pod && pn && !terminating(pod) && pod_ready(pod))
			json_object_set_new(ready_nodes, pn, json_true());
	}
	long unavailable = 0;
	const char *tn;
	json_t *tv;
	json_object_foreach(targets, tn, tv)
		if (!json_object_get(ready_nodes, tn))
			unavailable++;
	long budget = max_unavailable(ds, (long)json_object_size(targets)) - unavailable;
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		if (!pod || terminating(pod))
			continue;
		const char *pn = json_string_value(jpath(pod, "spec.nodeName"));
		const char *ph = jstr(jpath(pod, "metadata.labels"), "controller-revision-hash");
		if (!pn || !json_object_get(targets, pn) || json_object_get(covered, pn)) {
			delete_pod(c, json_string_value(pid));
			continue;
		}
		if (rolling && (!ph || strcmp(ph, hash))) {
			if (!pod_ready(pod)) {
				delete_pod(c, json_string_value(pid));
				continue;
			}
			if (budget > 0) {
				budget--;
				delete_pod(c, json_string_value(pid));
				continue;
			}
		}
		json_object_set_new(covered, pn, json_true());
	}
	json_decref(ready_nodes);
	json_object_foreach(targets, tn, tv)
		if (!json_object_get(covered, tn))
			store_pod(c, make_pod(c, ds, "DaemonSet", hash, tn, now));
	json_decref(mine);
	/* status, per node as the DaemonSet controller counts it: a node with
	 * any daemon pod (terminating ones included) is scheduled */
	mine = owned_pods(c, uidbuf);
	pods = json_object_get(c->store, "core/pods");
	json_t *per_node = json_object(); /* node -> {any, updated, ready} */
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		const char *pn = json_string_value(jpath(pod, "spec.nodeName"));
		if (!pn)
			continue;
		json_t *e = json_object_get(per_node, pn);
		if (!e) {
			e = json_pack("{s:b, s:b, s:b}", "any", 1, "updated", 0, "ready", 0);
			json_object_set_new(per_node, pn, e);
		}
		if (terminating(pod))
			continue;
		const char *ph = jstr(jpath(pod, "metadata.labels"), "controller-revision-hash");
		if (ph && !strcmp(ph, hash))
			json_object_set_new(e, "updated", json_true());
		if (pod_ready(pod))
			json_object_set_new(e, "ready", json_true());
	}
	long desired = (long)json_object_size(targets), current = 0, updated = 0, ready = 0, mis = 0;
	const char *pn;
	json_t *e;
	json_object_foreach(per_node, pn, e) {
		if (!json_object_get(targets, pn)) {
			mis++;
			continue;
		}
		current++;
		updated += json_is_true(json_object_get(e, "updated"));
		ready += json_is_true(json_object_get(e, "ready"));
	}
	json_decref(per_node);
	json_t *st = json_object();
	set_count(st, "currentNumberScheduled", current, 0);
	set_count(st, "desiredNumberScheduled", desired, 0);
	set_count(st, "numberAvailable", ready, 1);
	set_count(st, "numberMisscheduled", mis, 0);
	set_count(st, "numberReady", ready, 0);
	set_count(st, "numberUnavailable", desired - ready > 0 ? desired - ready : 0, 1);
	json_object_set(st, "observedGeneration", json_object_get(md, "generation"));
	set_count(st, "updatedNumberScheduled", updated, 1);
	write_status(c, "apps/daemonsets", id, ds, st);
	json_decref(mine);
	json_decref(targets);
	json_decref(covered);
	free(hash);
}

/* The scheduler's part for a Pending pod that had no node: bind it to node
 * (it turns Ready ready_delay_ms later, as a newly created pod does). */
static void bind_pod(struct cluster *c, const char *id_in, const json_t *pod, const char *node, int64_t now)
{
	char id[600], ts[32];
	snprintf(id, sizeof(id), "%s", id_in);
	rfc3339_now(ts);
	json_t *np = json_deep_copy(pod);
	json_t *spec = json_object_get(np, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(np, "spec", spec);
	}
	json_object_set_new(spec, "nodeName", json_string(node));
	json_t *st = json_object_get(np, "status");
	if (json_is_object(st))
		json_object_set_new(st, "conditions", json_pack("[{s:s, s:s, s:s}]", "type", "PodScheduled",
								"status", "True", "lastTransitionTime", ts));
	store_put(c, "core/pods", id, np, 0);
	if (!c->pod_ready_at)
		c->pod_ready_at = json_object();
	json_object_set_new(c->pod_ready_at, id, json_integer(now + g_sim.ready_delay_ms));
	set_next_due(c, now + g_sim.ready_delay_ms);
}

static void tick_deployment(struct cluster *c, const char *id, json_t *dep, int64_t now)
{
	json_t *md = json_object_get(dep, "metadata");
	if (json_object_get(md, "deletionTimestamp"))
		return;
	const char *uid = jstr(md, "uid");
	if (!uid)
		return;
	char uidbuf[64];
	snprintf(uidbuf, sizeof(uidbuf), "%s", uid);
	json_t *rj = jpath(dep, "spec.replicas");
	long replicas = rj ? (long)json_integer_value(rj) : 1;
	json_t *podspec = jpath(dep, "spec.template.spec");
	char *hash = template_hash(jpath(dep, "spec.template"));
	json_t *pods = json_object_get(c->store, "core/pods");
	json_t *mine = owned_pods(c, uidbuf);
	long n_new = 0, n_new_ready = 0;
	size_t i;
	json_t *pid;
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		if (terminating(pod))
			continue;
		const char *ph = jstr(jpath(pod, "metadata.labels"), "pod-template-hash");
		if (ph && !strcmp(ph, hash)) {
			n_new++;
			if (pod_ready(pod))
				n_new_ready++;
		}
	}
	/* scale new pods to replicas; old pods go once the new ones are ready */
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		if (terminating(pod))
			continue;
		const char *ph = jstr(jpath(pod, "metadata.labels"), "pod-template-hash");
		int is_new = ph && !strcmp(ph, hash);
		if (is_new && n_new > replicas) {
			delete_pod(c, json_string_value(pid));
			n_new--;
		} else if (!is_new && n_new_ready >= replicas) {
			delete_pod(c, json_string_value(pid));
		}
	}
	/* choose nodes round-robin among those that fit */
	json_t *nodes = json_object_get(c->store, "core/nodes");
	json_t *fit = json_array();
	const char *nid;
	json_t *node;
	json_object_foreach(nodes, nid, node)
		if (fits(podspec, node, 0))
			json_array_append_new(fit, json_string(nid + 1));
	/* pods created while no node fitted are bound once one does */
	if (json_array_size(fit)) {
		size_t rr = 0;
		json_array_foreach(mine, i, pid) {
			json_t *pod = json_object_get(pods, json_string_value(pid));
			if (!pod || terminating(pod) || jpath(pod, "spec.nodeName"))
				continue;
			bind_pod(c, json_string_value(pid), pod,
				 json_string_value(json_array_get(fit, rr++ % json_array_size(fit))), now);
		}
	}
	for (long k = n_new; k < replicas; k++) {
		const char *target = json_array_size(fit) ?
			json_string_value(json_array_get(fit, (size_t)k % json_array_size(fit))) : NULL;
		store_pod(c, make_pod(c, dep, "Deployment", hash, target, now));
	}
	json_decref(fit);
	json_decref(mine);
	/* status */
	mine = owned_pods(c, uidbuf);
	pods = json_object_get(c->store, "core/pods");
	long total = 0, updated = 0, ready = 0;
	json_array_foreach(mine, i, pid) {
		json_t *pod = json_object_get(pods, json_string_value(pid));
		if (terminating(pod))
			continue;
		total++;
		const char *ph = jstr(jpath(pod, "metadata.labels"), "pod-template-hash");
		if (ph && !strcmp(ph, hash))
			updated++;
		if (pod_ready(pod))
			ready++;
	}
	json_decref(mine);
	json_t *st = json_object();
	json_object_set(st, "observedGeneration", json_object_get(md, "generation"));
	set_count(st, "replicas", total, 1);
	set_count(st, "updatedReplicas", updated, 1);
	set_count(st, "readyReplicas", ready, 1);
	set_count(st, "availableReplicas", ready, 1);
	set_count(st, "unavailableReplicas", replicas - ready > 0 ? replicas - ready : 0, 1);
	/* keep condition timestamps stable unless the status flips */
	json_t *old = jpath(dep, "status.conditions");
	int complete = updated >= replicas && total == updated && ready >= updated;
	const char *avail = ready >= (replicas > 0 ? replicas - 1 : 0) && (ready > 0 || replicas == 0) ? "True" : "False";
	const char *preason = complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated";
	const char *pstatus = "True";
	/* progress deadline: no change in the counts for progressDeadlineSeconds */
	{
		char sig[128];
		snprintf(sig, sizeof(sig), "%lld/%ld/%ld/%ld",
			 (long long)json_integer_value(json_object_get(md, "generation")), total, updated, ready);
		if (!c->progress)
			c->progress = json_object();
		json_t *pe = json_object_get(c->progress, id);
		if (!pe || strcmp(jstr(pe, "sig") ? jstr(pe, "sig") : "", sig)) {
			pe = json_pack("{s:s, s:I}", "sig", sig, "ms", (json_int_t)now);
			json_object_set_new(c->progress, id, pe);
		}
		json_t *pds = jpath(dep, "spec.progressDeadlineSeconds");
		int64_t since = (int64_t)json_integer_value(json_object_get(pe, "ms"));
		if (!complete && json_is_integer(pds)) {
			int64_t deadline = since + (int64_t)json_integer_value(pds) * 1000;
			if (now >= deadline) {
				preason = "ProgressDeadlineExceeded";
				pstatus = "False";
			} else {
				set_next_due(c, deadline);
			}
		}
	}
	char ts[32];
	rfc3339_now(ts);
	json_t *conds = json_array();
	const char *types[2] = {"Available", "Progressing"};
	const char *stat[2] = {avail, pstatus};
	const char *reasons[2] = {!strcmp(avail, "True") ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable", preason};
	for (int k = 0; k < 2; k++) {
		const char *prev_ts = NULL;
		size_t j;
		json_t *oc;
		json_array_foreach(old, j, oc)
			if (!strcmp(jstr(oc, "type") ? jstr(oc, "type") : "", types[k]) &&
			    !strcmp(jstr(oc, "status") ? jstr(oc, "status") : "", stat[k]) &&
			    !strcmp(jstr(oc, "reason") ? jstr(oc, "reason") : "", reasons[k]))
				prev_ts = jstr(oc, "lastTransitionTime");
		json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", types[k],
			"status", stat[k], "reason", reasons[k],
			"message", k == 0 ? (!strcmp(avail, "True") ? "Deployment has minimum availability." :
					       "Deployment does not have minimum availability.")
					  : (complete ? "ReplicaSet has successfully progressed." :
					     !strcmp(pstatus, "False") ? "ReplicaSet has timed out progressing." :
					     "ReplicaSet is progressing."),
			"lastUpdateTime", prev_ts ? prev_ts : ts, "lastTransitionTime", prev_ts ? prev_ts : ts));
	}
	json_object_set_new(st, "conditions", conds);
	write_status(c, "apps/deployments", id, dep, st);
	free(hash);
}

static void tick_crds(struct cluster *c)
{
	json_t *crds = json_object_get(c->store, "apiextensions.k8s.io/customresourcedefinitions");
	const char *id;
	json_t *crd;
	json_t *todo = json_array();
	json_object_foreach(crds, id, crd) {
		int established = 0;
		size_t i;
		json_t *cond;
		json_array_foreach(jpath(crd, "status.conditions"), i, cond)
			if (!strcmp(jstr(cond, "type") ? jstr(cond, "type") : "", "Established") &&
			    !strcmp(jstr(cond, "status") ? jstr(cond, "status") : "", "True"))
				established = 1;
		if (!established)
			json_array_append_new(todo, json_string(id));
	}
	size_t i;
	json_t *v;
	json_array_foreach(todo, i, v) {
		crd = json_object_get(crds, json_string_value(v));
		char ts[32];
		rfc3339_now(ts);
		json_t *versions = json_array();
		size_t j;
		json_t *ver;
		json_array_foreach(jpath(crd, "spec.versions"), j, ver)
			if (json_is_true(json_object_get(ver, "storage")))
				json_array_append_new(versions, json_string(jstr(ver, "name") ? jstr(ver, "name") : ""));
		json_t *st = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}], s:O, s:o}",
			"conditions", "type", "NamesAccepted", "status", "True", "reason", "NoConflicts",
			"message", "no conflicts found", "lastTransitionTime", ts,
			"type", "Established", "status", "True", "reason", "InitialNamesAccepted",
			"message", "the initial names have been accepted", "lastTransitionTime", ts,
			"acceptedNames", jpath(crd, "spec.names") ? jpath(crd, "spec.names") : json_object(),
			"storedVersions", versions);
		write_status(c, "apiextensions.k8s.io/customresourcedefinitions", json_string_value(v), crd, st);
	}
	json_decref(todo);
}

/* Pods whose controller is gone (background deletion). */
static void gc_pods(struct cluster *c)
{
	json_t *pods = json_object_get(c->store, "core/pods");
	json_t *uids = json_object();
	const char *keys[] = {"apps/daemonsets", "apps/deployments", "apps/replicasets", "apps/statefulsets", "batch/jobs"};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char *id;
		json_t *o;
		json_object_foreach(json_object_get(c->store, keys[k]), id, o) {
			const char *u = jstr(json_object_get(o, "metadata"), "uid");
			if (u)
				json_object_set_new(uids, u, json_true());
		}
	}
	const char *id;
	json_t *pod, *tmp;
	json_object_foreach_safe(pods, tmp, id, pod) {
		json_t *refs = jpath(pod, "metadata.ownerReferences");
		if (!json_array_size(refs))
			continue;
		const char *u = jstr(json_array_get(refs, 0), "uid");
		if (u && !json_object_get(uids, u) && !terminating(pod))
			delete_pod(c, id);
	}
	json_decref(uids);
}

/* k3s: nodes become Ready when a ready cilium pod runs on them. */
static void tick_k3s_nodes(struct cluster *c)
{
	json_t *nodes = json_object_get(c->store, "core/nodes");
	json_t *pods = json_object_get(c->store, "core/pods");
	const char *nid;
	json_t *node;
	json_t *ready_nodes = json_object();
	const char *pid;
	json_t *pod;
	json_object_foreach(pods, pid, pod) {
		json_t *refs = jpath(pod, "metadata.ownerReferences");
		const char *oname = jstr(json_array_get(refs, 0), "name");
		const char *okind = jstr(json_array_get(refs, 0), "kind");
		const char *pn = json_string_value(jpath(pod, "spec.nodeName"));
		if (oname && okind && !strcmp(okind, "DaemonSet") && !strcmp(oname, "cilium") && pn && pod_ready(pod))
			json_object_set_new(ready_nodes, pn, json_true());
	}
	json_t *todo = json_array();
	json_object_foreach(nodes, nid, node) {
		int want = json_object_get(ready_nodes, nid + 1) != NULL;
		json_t *cond = json_array_get(jpath(node, "status.conditions"), 0);
		int is = !strcmp(jstr(cond, "status") ? jstr(cond, "status") : "", "True");
		if (want && !is)
			json_array_append_new(todo, json_string(nid));
	}
	size_t i;
	json_t *v;
	json_array_foreach(todo, i, v) {
		node = json_object_get(nodes, json_string_value(v));
		json_t *n = json_deep_copy(node);
		json_t *cond = json_array_get(jpath(n, "status.conditions"), 0);
		json_object_set_new(cond, "status", json_string("True"));
		json_object_set_new(cond, "reason", json_string("KubeletReady"));
		json_object_set_new(cond, "message", json_string("kubelet is posting ready status"));
		json_t *taints = jpath(n, "spec.taints");
		for (size_t j = 0; j < json_array_size(taints); j++)
			if (!strcmp(jstr(json_array_get(taints, j), "key") ? jstr(json_array_get(taints, j), "key") : "",
				    "node.kubernetes.io/not-ready"))
				json_array_remove(taints, j--);
		store_put(c, "core/nodes", json_string_value(v), n, 0);
	}
	json_decref(todo);
	json_decref(ready_nodes);
}

void controller_tick_cluster(struct cluster *c, int64_t now)
{
	if (!c->dirty && (!c->next_due_ms || c->next_due_ms > now))
		return;
	c->dirty = 0;
	c->next_due_ms = 0;
	uint64_t rv_before = c->rv;
	tick_crds(c);
	store_finish_namespaces(c);
	store_finish_foreground(c);
	gc_pods(c);
	tick_gone(c, now);
	tick_pods(c, now);
	json_t *ids = json_array();
	const char *id;
	json_t *obj;
	json_object_foreach(json_object_get(c->store, "apps/daemonsets"), id, obj)
		json_array_append_new(ids, json_string(id));
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		obj = json_object_get(json_object_get(c->store, "apps/daemonsets"), json_string_value(v));
		if (obj)
			tick_daemonset(c, json_string_value(v), obj, now);
	}
	json_array_clear(ids);
	json_object_foreach(json_object_get(c->store, "apps/deployments"), id, obj)
		json_array_append_new(ids, json_string(id));
	json_array_foreach(ids, i, v) {
		obj = json_object_get(json_object_get(c->store, "apps/deployments"), json_string_value(v));
		if (obj)
			tick_deployment(c, json_string_value(v), obj, now);
	}
	json_decref(ids);
	operator_tick(c);
	if (c->scn->k3s)
		tick_k3s_nodes(c);
	/* our own writes set dirty; run again next tick only if something moved */
	c->dirty = c->rv != rv_before;
}

void *controller_main(void *arg)
{
	(void)arg;
	while (!g_sim.stopping) {
		struct timespec ts = {0, (long)g_sim.tick_ms * 1000000L};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&g_sim.mu);
		int64_t now = now_ms();
		for (size_t i = 0; i < g_sim.nclusters; i++)
			if (g_sim.clusters[i])
				controller_tick_cluster(g_sim.clusters[i], now);
		pthread_mutex_unlock(&g_sim.mu);
	}
	return NULL;
}
