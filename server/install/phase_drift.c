/*
 * phase_drift.c: the drift check (`kind: check`, read-only) and repair
 * (`kind: repair`) of the cluster's current release revision.
 *
 * The current revision is the newest deployed one PostgreSQL holds
 * (db/releases.h). Every object of its manifest, with Helm's ownership
 * tags, goes through a server-side apply dry run (fieldManager ferry,
 * force): the fields where the live object differs from what the apply
 * would leave are exactly the fields ferry's field manager owns and
 * someone else changed (fields only others own are not compared). States:
 * in_sync, drifted (fields as JSON pointers), missing (404). params.ignore
 * ([{path, kind?, name?}]) drops fields another controller owns: a field
 * is ignored when it equals path or lies below it, on objects of that kind
 * and name when given. The surroundings (surroundings.h) are compared with
 * the snapshot recorded with the revision.
 *
 * check writes nothing to the cluster (every apply carries dryRun=All);
 * its outcome goes to job.result.check and to the cluster's last_check.
 * repair applies the drifted and missing objects for real and puts the
 * surroundings back to the snapshot; the revision stays (the manifest did
 * not change: nothing for Helm's history).
 */
#define _POSIX_C_SOURCE 200809L
#include "db/releases.h"
#include "server/chart/chart.h"
#include "server/install/phases.h"
#include "server/install/relstore.h"
#include "server/install/surroundings.h"
#include "server/kube/ops.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* params.ignore well-formed? (message set when not) */
static int ignore_ok(struct runner_ctx *ctx, const json_t *rules)
{
	if (!rules)
		return 1;
	if (!json_is_array(rules)) {
		snprintf(ctx->message, sizeof ctx->message, "params.ignore must be a list of {path, kind, name}");
		return 0;
	}
	size_t i;
	const json_t *r;
	json_array_foreach(rules, i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		const json_t *k = json_object_get(r, "kind"), *n = json_object_get(r, "name");
		if (!json_is_object(r) || !path || path[0] != '/' || (k && !json_is_string(k)) ||
		    (n && !json_is_string(n))) {
			snprintf(ctx->message, sizeof ctx->message,
				 "params.ignore[%zu] must be {\"path\": \"/json/pointer\", \"kind\": optional, "
				 "\"name\": optional}", i);
			return 0;
		}
	}
	return 1;
}

static int ignored(const json_t *rules, const char *kind, const char *name, const char *ptr)
{
	size_t i;
	const json_t *r;
	json_array_foreach(rules, i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		const char *k = json_string_value(json_object_get(r, "kind"));
		const char *n = json_string_value(json_object_get(r, "name"));
		if ((k && strcmp(k, kind)) || (n && strcmp(n, name)))
			continue;
		size_t l = strlen(path);
		if (!strncmp(ptr, path, l) && (ptr[l] == 0 || ptr[l] == '/' || path[l - 1] == '/'))
			return 1;
	}
	return 0;
}

static void now_rfc3339_ms(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

static enum phase_rc drift(struct runner_ctx *ctx, int repair)
{
	struct install_run run;
	enum phase_rc rc = install_run_begin(ctx, &run);
	if (rc != PHASE_OK)
		return rc;
	json_t *list = NULL, *full = NULL, *docs = NULL, *now = NULL, *sur = NULL;
	json_t *objects = json_array();
	char err[512] = "";
	const json_t *rules = json_object_get(run.params, "ignore");
	if (!ignore_ok(ctx, rules)) {
		rc = PHASE_FAIL;
		goto out;
	}
	list = db_release_list_for_job(ctx->conn, ctx->job, err, sizeof err);
	if (!list) {
		snprintf(ctx->message, sizeof ctx->message, "could not read the release history: %.300s", err);
		rc = PHASE_RETRY;
		goto out;
	}
	int rev = 0;
	size_t i;
	const json_t *r;
	json_array_foreach(list, i, r) {
		if (!strcmp(json_string_value(json_object_get(r, "status")) ?
			    json_string_value(json_object_get(r, "status")) : "", "deployed")) {
			rev = (int)json_integer_value(json_object_get(r, "revision"));
			break;
		}
	}
	if (!rev || !(full = db_release_get_for_job(ctx->conn, ctx->job, rev, err, sizeof err))) {
		snprintf(ctx->message, sizeof ctx->message,
			 "this cluster has no deployed release ferry recorded: nothing to %s (install or adopt first)",
			 repair ? "repair" : "check");
		rc = PHASE_FAIL;
		goto out;
	}
	const char *manifest = json_string_value(json_object_get(full, "manifest"));
	docs = chart_manifest_objects(manifest ? manifest : "", manifest ? strlen(manifest) : 0, err, sizeof err);
	if (!docs) {
		snprintf(ctx->message, sizeof ctx->message, "revision %d's manifest does not parse: %.300s", rev, err);
		rc = PHASE_FAIL;
		goto out;
	}
	long in_sync = 0, drifted = 0, missing = 0, repaired = 0;
	const json_t *d;
	json_array_foreach(docs, i, d) {
		if (!json_is_object(d))
			continue;
		json_t *obj = json_deep_copy(d);
		relstore_tag_for_helm(obj, run.release, run.ns);
		const char *kind = json_string_value(json_object_get(obj, "kind"));
		const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
		char *coll = NULL, *item = NULL;
		json_t *live = NULL, *after = NULL, *fields = json_array();
		const char *state = "in_sync";
		int st = kube_ops_object_paths(run.ops, obj, run.ns, &coll, &item) == 0 ? kube_ops_get(run.ops, item, &live)
											   : 400;
		if (st == 404) {
			state = "missing";
		} else if (st == 200) {
			kube_ops_set_dry_run(run.ops, 1);
			st = kube_ops_apply(run.ops, item, obj, 1, &after, NULL);
			kube_ops_set_dry_run(run.ops, run.dry_run);
			if (st >= 200 && st < 300) {
				json_t *all = json_array();
				kube_ops_diff_pointers(live, after, all, 100);
				size_t k;
				const json_t *f;
				json_array_foreach(all, k, f)
					if (!ignored(rules, kind ? kind : "", name ? name : "", json_string_value(f)))
						json_array_append(fields, (json_t *)f);
				json_decref(all);
				if (json_array_size(fields))
					state = "drifted";
			}
		}
		if (st != 404 && (st < 200 || st >= 300)) {
			char what[256];
			snprintf(what, sizeof what, "compare %s %s", kind ? kind : "?", name ? name : "?");
			rc = install_call_failed(&run, st, what);
		} else {
			const char *ns = strstr(item, "/namespaces/") ? run.ns : "";
			json_array_append_new(objects, json_pack("{s:s, s:s, s:s, s:s, s:O}", "kind", kind ? kind : "",
				"namespace", ns, "name", name ? name : "", "state", state, "fields", fields));
			if (!strcmp(state, "in_sync"))
				in_sync++;
			else if (!strcmp(state, "drifted"))
				drifted++;
			else
				missing++;
			if (repair && strcmp(state, "in_sync")) {
				const char *action = NULL;
				json_t *fl = json_array();
				st = install_apply(&run, obj, &action, fl);
				if (st >= 200 && st < 300) {
					install_record_object(&run, obj, action, fl);
					repaired++;
					runner_event(ctx, "info", "%s %s %s: %s", kind, name, state,
						     run.dry_run ? "would be repaired" : "repaired");
				} else {
					char what[256];
					snprintf(what, sizeof what, "repair %s %s", kind ? kind : "?", name ? name : "?");
					rc = install_call_failed(&run, st, what);
				}
				json_decref(fl);
			} else if (strcmp(state, "in_sync")) {
				runner_event(ctx, "warn", "%s %s %s%s", kind, name, state,
					     json_array_size(fields) ? " (fields differ)" : "");
			}
		}
		json_decref(live), json_decref(after), json_decref(fields), json_decref(obj);
		free(coll), free(item);
		if (rc != PHASE_OK)
			goto out;
	}
	/* The surroundings. */
	const json_t *want = json_object_get(full, "surroundings");
	int st;
	now = surroundings_read(&run, json_string_value(json_object_get(json_object_get(want, "cni_config"), "name")), 0,
				&st);
	if (!now) {
		rc = install_call_failed(&run, st, "read the release's surroundings");
		goto out;
	}
	sur = surroundings_compare(want, now);
	long sur_drifted = 0;
	json_array_foreach(sur, i, r) {
		if (!strcmp(json_string_value(json_object_get(r, "state")), "in_sync")) {
			in_sync++;
		} else {
			drifted++;
			sur_drifted++;
			runner_event(ctx, "warn", "%s", json_string_value(json_object_get(r, "detail")));
		}
	}
	if (repair && sur_drifted) {
		long changes = 0;
		char what[200] = "";
		/* Only what drifted: the in-sync members stay untouched. */
		json_t *w = json_object();
		json_array_foreach(sur, i, r) {
			if (!strcmp(json_string_value(json_object_get(r, "state")), "in_sync"))
				continue;
			const char *member = json_string_value(json_object_get(r, "member"));
			json_object_set(w, member, json_object_get(want, member));
		}
		st = surroundings_restore(&run, w, now, &changes, what, sizeof what);
		json_decref(w);
		if (st != 200) {
			rc = install_call_failed(&run, st, what);
			goto out;
		}
		repaired += changes;
	}
	json_t *check = json_pack("{s:i, s:O, s:O, s:{s:I, s:I, s:I}}", "revision", rev, "objects", objects,
		"surroundings", sur, "summary", "in_sync", (json_int_t)in_sync, "drifted", (json_int_t)drifted,
		"missing", (json_int_t)missing);
	json_object_set_new(ctx->result, "check", check);
	if (repair)
		json_object_set_new(ctx->result, "repair", json_pack("{s:I}", "repaired", (json_int_t)repaired));
	if (!run.dry_run) {
		char at[40];
		now_rfc3339_ms(at, sizeof at);
		int clean = repair || (!drifted && !missing);
		json_t *lc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "at", at, "job_id", ctx->job->id,
			"outcome", clean ? "in_sync" : "drifted",
			"in_sync", (json_int_t)(repair ? in_sync + drifted + missing : in_sync),
			"drifted", (json_int_t)(repair ? 0 : drifted), "missing", (json_int_t)(repair ? 0 : missing));
		int w = db_release_set_last_check(ctx->conn, ctx->job, lc, err, sizeof err);
		json_decref(lc);
		if (w == 0) {
			atomic_store(&ctx->flags->lease_lost, 1);
			rc = PHASE_ABORT;
			goto out;
		}
		if (w < 0)
			runner_event(ctx, "warn", "could not record the check on the cluster: %s", err);
	}
	if (repair)
		snprintf(ctx->message, sizeof ctx->message, "%srevision %d: %ld drifted, %ld missing; %ld repaired",
			 run.dry_run ? "dry run: " : "", rev, drifted, missing, repaired);
	else
		snprintf(ctx->message, sizeof ctx->message, "revision %d: %ld in sync, %ld drifted, %ld missing",
			 rev, in_sync, drifted, missing);
out:
	json_decref(list), json_decref(full), json_decref(docs), json_decref(now), json_decref(sur);
	json_decref(objects);
	install_run_end(&run);
	return rc;
}

enum phase_rc phase_check(struct runner_ctx *ctx)
{
	return drift(ctx, 0);
}

enum phase_rc phase_repair(struct runner_ctx *ctx)
{
	return drift(ctx, 1);
}
