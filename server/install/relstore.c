/*
 * install/relstore: the release's records and Helm's object bookkeeping
 * (see relstore.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/relstore.h"
#include "db/releases.h"
#include "server/chart/chart.h"
#include "server/install/release.h"
#include "server/kube/ops.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *label_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(
		json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

int relstore_list(struct install_run *run, json_t **secrets)
{
	char sel[128], *coll = NULL;
	*secrets = NULL;
	snprintf(sel, sizeof sel, "owner=helm,name=%s", run->release);
	if (kube_ops_paths(run->ops, "v1", "Secret", run->ns, NULL, &coll, NULL) < 0)
		return -1;
	int st = kube_ops_list(run->ops, coll, sel, NULL, 100, secrets);
	free(coll);
	return st;
}

void relstore_scan(const json_t *secrets, struct relstore_state *rs)
{
	memset(rs, 0, sizeof(*rs));
	size_t i;
	const json_t *s;
	json_array_foreach(secrets, i, s) {
		const char *v = label_of(s, "version");
		const char *st = label_of(s, "status");
		int rev = v ? atoi(v) : 0;
		rs->count++;
		if (rev > rs->latest) {
			rs->latest = rev;
			rs->latest_status = st;
			rs->latest_secret = s;
			const char *m = label_of(s, RELEASE_MANAGED_LABEL);
			rs->latest_ours = m && !strcmp(m, "true");
		}
		if (st && !strcmp(st, "deployed") && rev > rs->deployed_rev) {
			rs->deployed_rev = rev;
			rs->deployed = s;
		}
	}
}

const json_t *relstore_secret_of(const json_t *secrets, int rev)
{
	size_t i;
	const json_t *s;
	json_array_foreach(secrets, i, s) {
		const char *v = label_of(s, "version");
		if (v && atoi(v) == rev)
			return s;
	}
	return NULL;
}

int relstore_is_pending(const char *status)
{
	return status && !strncmp(status, "pending-", 8);
}

int relstore_write(struct install_run *run, const json_t *rel, int existing)
{
	/* The Secret goes out as text (release_secret_text): its data is a
	 * 150-200 kB base64 string that jansson would escape a character at a
	 * time. */
	char *wire = NULL;
	json_t *head = release_secret_head(rel, (long long)time(NULL), 0, &wire);
	char *text = head ? release_secret_text(head, wire) : NULL;
	char *coll = NULL, *item = NULL;
	int st = 400;
	if (text && kube_ops_object_paths(run->ops, head, run->ns, &coll, &item) == 0) {
		if (run->dry_run) {
			install_record_object(run, head, "created", NULL);
			st = 201;
		} else {
			/* The pending record this phase wrote: replace it. */
			st = existing ? kube_ops_send_text(run->ops, "PUT", item, text, NULL) : 404;
			if (st == 404)
				st = kube_ops_send_text(run->ops, "POST", coll, text, NULL);
			/* The namespace went missing (a rollback after someone deleted it):
			 * create it as helm --create-namespace would. */
			if (st == 404 && install_ensure_namespace(run) == PHASE_OK)
				st = kube_ops_send_text(run->ops, "POST", coll, text, NULL);
			if (st == 409)   /* a crashed attempt of this job already wrote it */
				st = kube_ops_send_text(run->ops, "PUT", item, text, NULL);
		}
	}
	free(coll), free(item);
	free(text);
	free(wire);
	json_decref(head);
	return st;
}

enum phase_rc relstore_write_record(struct install_run *run, const json_t *rel, int existing, const char *what)
{
	int st = relstore_write(run, rel, existing);
	if (st < 200 || st >= 300)
		return install_call_failed(run, st, what);
	return relstore_save_db(run, rel, 0);
}

int relstore_restatus(struct install_run *run, const json_t *secret, const char *status,
		      const char *description)
{
	char err[256];
	json_t *rel = release_from_secret(secret, err, sizeof err);
	if (!rel) {
		runner_event(run->ctx, "warn", "cannot read a release record: %s", err);
		return 0;
	}
	json_t *info = json_object_get(rel, "info");
	json_object_set_new(info, "status", json_string(status));
	if (description)
		json_object_set_new(info, "description", json_string(description));
	json_t *sec = release_secret(rel, 0, (long long)time(NULL));
	const char *created = label_of(secret, "createdAt");
	if (created)
		json_object_set_new(json_object_get(json_object_get(sec, "metadata"), "labels"),
				    "createdAt", json_string(created));
	/* Keep the record's own marks (ferry.io/managed or not). */
	const char *managed = label_of(secret, RELEASE_MANAGED_LABEL);
	json_t *labels = json_object_get(json_object_get(sec, "metadata"), "labels");
	if (!managed)
		json_object_del(labels, RELEASE_MANAGED_LABEL);
	char *coll = NULL, *item = NULL;
	int st = 400;
	if (kube_ops_object_paths(run->ops, sec, run->ns, &coll, &item) == 0)
		st = run->dry_run ? 200 : kube_ops_replace(run->ops, item, sec, NULL);
	free(coll), free(item);
	json_decref(sec), json_decref(rel);
	return st;
}

enum phase_rc relstore_save_db(struct install_run *run, const json_t *rel, int adopted)
{
	if (run->dry_run)
		return PHASE_OK;
	const json_t *info = json_object_get(rel, "info");
	const json_t *meta = json_object_get(json_object_get(rel, "chart"), "metadata");
	const json_t *config = json_object_get(rel, "config");
	struct db_release_rev rv = {
		.revision = (int)json_integer_value(json_object_get(rel, "version")),
		.release_name = json_string_value(json_object_get(rel, "name")),
		.namespace_ = json_string_value(json_object_get(rel, "namespace")),
		.status = json_string_value(json_object_get(info, "status")),
		.chart_name = json_string_value(json_object_get(meta, "name")),
		.chart_version = json_string_value(json_object_get(meta, "version")),
		.app_version = json_string_value(json_object_get(meta, "appVersion")),
		.description = json_string_value(json_object_get(info, "description")),
		.values = json_is_object(config) ? config : NULL,
		.manifest = json_string_value(json_object_get(rel, "manifest")),
		.adopted = adopted,
	};
	if (rv.revision < 1 || !rv.release_name || !rv.namespace_ || !rv.status || !rv.chart_name ||
	    !rv.chart_version) {
		snprintf(run->ctx->message, sizeof run->ctx->message,
			 "the release record lacks its name, namespace, status or chart");
		return PHASE_FAIL;
	}
	char err[300] = "";
	int rc = db_release_save(run->ctx->conn, run->ctx->job, &rv, err, sizeof err);
	if (rc == 0) {
		atomic_store(&run->ctx->flags->lease_lost, 1);
		return PHASE_ABORT;
	}
	if (rc < 0) {
		snprintf(run->ctx->message, sizeof run->ctx->message, "could not record revision %d: %.400s",
			 rv.revision, err);
		return PHASE_RETRY;
	}
	return PHASE_OK;
}

int relstore_prune_history(struct install_run *run, const json_t *secrets, int max_history)
{
	if (max_history <= 0)
		return 200;
	/* Revisions, newest first. */
	size_t n = json_array_size(secrets);
	int *revs = calloc(n + 1, sizeof(int));
	size_t k = 0, i;
	const json_t *s;
	json_array_foreach(secrets, i, s) {
		const char *v = label_of(s, "version");
		if (v && atoi(v) > 0)
			revs[k++] = atoi(v);
	}
	int st = 200;
	/* Keep the newest max_history: delete every revision below the
	 * max_history-th largest. */
	for (size_t a = 0; a < k; a++)
		for (size_t b = a + 1; b < k; b++)
			if (revs[b] > revs[a]) {
				int t = revs[a];
				revs[a] = revs[b];
				revs[b] = t;
			}
	for (size_t j = (size_t)max_history; j < k; j++) {
		char *name = release_secret_name(run->release, revs[j]);
		char *coll = NULL, *item = NULL;
		if (kube_ops_paths(run->ops, "v1", "Secret", run->ns, name, &coll, &item) == 0) {
			int d = kube_ops_delete(run->ops, item, NULL);
			if (d != 404 && (d < 200 || d >= 300))
				st = d;
			else
				runner_event(run->ctx, "info", "history: deleted release record %s", name);
		}
		free(coll), free(item), free(name);
		if (st != 200)
			break;
	}
	free(revs);
	if (st == 200 && !run->dry_run) {
		char err[300] = "";
		if (db_release_prune(run->ctx->conn, run->ctx->job, max_history, err, sizeof err) < 0)
			runner_event(run->ctx, "warn", "could not prune the stored history: %s", err);
	}
	return st;
}

/* "group|kind|namespace|name" of an object at its item path. */
static char *object_key(struct install_run *run, const json_t *obj, char **item_out)
{
	const char *av = json_string_value(json_object_get(obj, "apiVersion"));
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	char *coll = NULL, *item = NULL;
	if (!av || !kind || !name || kube_ops_object_paths(run->ops, obj, run->ns, &coll, &item) < 0) {
		free(coll), free(item);
		return NULL;
	}
	const char *nsp = strstr(item, "/namespaces/");
	char ns[256] = "";
	if (nsp) {
		nsp += strlen("/namespaces/");
		size_t l = strcspn(nsp, "/");
		snprintf(ns, sizeof ns, "%.*s", (int)l, nsp);
	}
	const char *slash = strchr(av, '/');
	size_t gl = slash ? (size_t)(slash - av) : 0;
	size_t len = gl + strlen(kind) + strlen(ns) + strlen(name) + 4;
	char *key = malloc(len);
	snprintf(key, len, "%.*s|%s|%s|%s", (int)gl, av, kind, ns, name);
	free(coll);
	if (item_out)
		*item_out = item;
	else
		free(item);
	return key;
}

json_t *relstore_manifest_objects(struct install_run *run, const char *manifest, char *err, size_t errlen)
{
	json_t *docs = chart_manifest_objects(manifest ? manifest : "", manifest ? strlen(manifest) : 0,
					   err, errlen);
	if (!docs)
		return NULL;
	json_t *out = json_array();
	size_t i;
	const json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d))
			continue;
		char *item = NULL;
		char *key = object_key(run, d, &item);
		if (!key)
			continue;
		const json_t *meta = json_object_get(d, "metadata");
		json_array_append_new(out, json_pack("{s:s, s:O, s:O, s:O, s:s, s:s}", "key", key,
			"apiVersion", json_object_get(d, "apiVersion"), "kind", json_object_get(d, "kind"),
			"name", json_object_get(meta, "name"), "path", item,
			"namespace", strstr(item, "/namespaces/") ? run->ns : ""));
		free(key), free(item);
	}
	json_decref(docs);
	return out;
}

static int has_key(const json_t *objs, const char *key)
{
	size_t i;
	const json_t *o;
	json_array_foreach(objs, i, o)
		if (!strcmp(json_string_value(json_object_get(o, "key")), key))
			return 1;
	return 0;
}

int relstore_delete_absent(struct install_run *run, const json_t *old_objs, const json_t *new_objs,
			   int skip_crds, long *deleted, long *kept, char *what, size_t whatlen)
{
	/* Helm deletes in reverse install order; the old manifest is in
	 * install order. */
	for (size_t i = json_array_size(old_objs); i-- > 0;) {
		const json_t *o = json_array_get(old_objs, i);
		const char *key = json_string_value(json_object_get(o, "key"));
		const char *kind = json_string_value(json_object_get(o, "kind"));
		if (has_key(new_objs, key))
			continue;
		if (skip_crds && kind && !strcmp(kind, "CustomResourceDefinition"))
			continue;
		const char *path = json_string_value(json_object_get(o, "path"));
		json_t *live = NULL;
		int st = kube_ops_get(run->ops, path, &live);
		if (st == 404)
			continue;
		if (st != 200) {
			snprintf(what, whatlen, "read %s %s", kind, json_string_value(json_object_get(o, "name")));
			return st;
		}
		json_t *rec = json_pack("{s:O, s:O, s:{s:O, s:s}}", "apiVersion", json_object_get(o, "apiVersion"),
					"kind", json_object_get(o, "kind"), "metadata", "name",
					json_object_get(o, "name"), "namespace", json_string_value(json_object_get(o, "namespace")));
		const char *policy = json_string_value(json_object_get(
			json_object_get(json_object_get(live, "metadata"), "annotations"), "helm.sh/resource-policy"));
		int keep = policy && !strcmp(policy, "keep");
		json_decref(live);
		if (keep) {
			runner_event(run->ctx, "info", "%s %s kept (helm.sh/resource-policy: keep)", kind,
				     json_string_value(json_object_get(o, "name")));
			(*kept)++;
			json_decref(rec);
			continue;
		}
		st = kube_ops_delete(run->ops, path, NULL);
		if (st != 404 && (st < 200 || st >= 300)) {
			snprintf(what, whatlen, "delete %s %s", kind, json_string_value(json_object_get(o, "name")));
			json_decref(rec);
			return st;
		}
		install_record_object(run, rec, "deleted", NULL);
		(*deleted)++;
		json_decref(rec);
	}
	return 200;
}

void relstore_tag_for_helm(json_t *obj, const char *release, const char *ns)
{
	json_t *meta = json_object_get(obj, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	json_t *labels = json_object_get(meta, "labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(meta, "labels", labels);
	}
	json_object_set_new(labels, "app.kubernetes.io/managed-by", json_string("Helm"));
	json_t *ann = json_object_get(meta, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(meta, "annotations", ann);
	}
	json_object_set_new(ann, "meta.helm.sh/release-name", json_string(release));
	json_object_set_new(ann, "meta.helm.sh/release-namespace", json_string(ns));
}

int relstore_in_db(struct install_run *run, int revision)
{
	char err[128];
	json_t *r = db_release_get_for_job(run->ctx->conn, run->ctx->job, revision, err, sizeof err);
	int ok = r != NULL;
	json_decref(r);
	return ok;
}

void relstore_tally_applied(struct install_run *run, const json_t *obj, const char *action, json_t *fields,
			    struct relstore_tally *tally, json_t *workloads)
{
	install_record_object(run, obj, action, fields);
	if (!strcmp(action, "created"))
		tally->created++;
	else if (!strcmp(action, "changed"))
		tally->changed++;
	else
		tally->unchanged++;
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	if (kind && (!strcmp(kind, "DaemonSet") || !strcmp(kind, "Deployment"))) {
		const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
		char *coll = NULL, *item = NULL;
		kube_ops_object_paths(run->ops, obj, run->ns, &coll, &item);
		json_array_append_new(workloads, json_pack("{s:s, s:s, s:s}", "kind", kind, "name", name ? name : "",
							   "path", item ? item : ""));
		free(coll), free(item);
	}
}

json_t *relstore_tally_json(const struct relstore_tally *tally)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "created", (json_int_t)tally->created,
			 "changed", (json_int_t)tally->changed, "unchanged", (json_int_t)tally->unchanged,
			 "deleted", (json_int_t)tally->deleted, "kept", (json_int_t)tally->kept);
}

enum phase_rc relstore_retire_previous(struct install_run *run, const struct relstore_state *rs, int revision)
{
	if (run->dry_run)
		return PHASE_OK;
	if (rs->deployed && rs->deployed_rev != revision) {
		int st = relstore_restatus(run, rs->deployed, "superseded", NULL);
		if (st != 0 && (st < 200 || st >= 300))
			return install_call_failed(run, st, "mark the previous revision superseded");
	}
	int max_history = install_max_history(run->params);
	if (max_history <= 0 || rs->count + (revision > rs->latest) <= max_history)
		return PHASE_OK;   /* nothing beyond max_history */
	json_t *now_secrets = NULL;
	if (relstore_list(run, &now_secrets) == 200) {
		int st = relstore_prune_history(run, now_secrets, max_history);
		if (st != 200)
			runner_event(run->ctx, "warn", "could not prune the release history (status %d)", st);
	}
	json_decref(now_secrets);
	return PHASE_OK;
}

int relstore_refuse_foreign(struct install_run *run, const struct relstore_state *rs)
{
	struct runner_ctx *ctx = run->ctx;
	if (relstore_is_pending(rs->latest_status) && !rs->latest_ours) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s revision %d is %s: another Helm operation is in progress on this "
			 "release (helm install/upgrade/rollback); wait until it finishes, or if it died, "
			 "roll the release back with helm, then run the job again",
			 run->release, rs->latest, rs->latest_status);
		return 1;
	}
	if (rs->latest && !rs->latest_ours && !relstore_in_db(run, rs->latest)) {
		snprintf(ctx->message, sizeof ctx->message,
			 "release %s revision %d was not written by ferry; use an adopt job first",
			 run->release, rs->latest);
		return 1;
	}
	return 0;
}
