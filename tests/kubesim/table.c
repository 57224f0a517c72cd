/*
 * table.c: server-side printing (meta.k8s.io/v1 Table), which kubectl asks
 * for with "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…".
 *
 * Columns follow the real API server's printers for the kinds an operator
 * looks at (nodes, pods, daemonsets, deployments, namespaces); every other
 * type gets Name and Age. Rows carry the object's metadata as
 * PartialObjectMetadata (includeObject=Metadata, the default).
 */
#include "tests/kubesim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void human_age(const char *ts, char *out, size_t len)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			  &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(out, len, "<unknown>");
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	long s = (long)(time(NULL) - timegm(&tm));
	if (s < 0)
		s = 0;
	long m = s / 60, h = s / 3600, d = s / 86400;
	if (s < 120)
		snprintf(out, len, "%lds", s);
	else if (m < 10)
		snprintf(out, len, s % 60 ? "%ldm%lds" : "%ldm", m, s % 60);
	else if (m < 180)
		snprintf(out, len, "%ldm", m);
	else if (h < 8)
		snprintf(out, len, m % 60 ? "%ldh%ldm" : "%ldh", h, m % 60);
	else if (h < 48)
		snprintf(out, len, "%ldh", h);
	else if (h < 24 * 8)
		snprintf(out, len, h % 24 ? "%ldd%ldh" : "%ldd", d, h % 24);
	else
		snprintf(out, len, "%ldd", d);
}

static json_t *col(const char *name, const char *type, const char *format, int priority)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", name, "type", type, "format", format,
			 "description", name, "priority", priority);
}

static json_t *num(const json_t *obj, const char *path)
{
	return json_integer(json_integer_value(jpath(obj, path)));
}

static json_t *node_row(const json_t *n, const char *age)
{
	const char *ready = "Unknown";
	size_t i;
	json_t *c;
	json_array_foreach(jpath(n, "status.conditions"), i, c)
		if (jstr(c, "type") && !strcmp(jstr(c, "type"), "Ready"))
			ready = jstr(c, "status") && !strcmp(jstr(c, "status"), "True") ? "Ready" : "NotReady";
	char status[64];
	snprintf(status, sizeof(status), "%s%s", ready,
		 json_is_true(jpath(n, "spec.unschedulable")) ? ",SchedulingDisabled" : "");
	struct buf roles = BUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach(jpath(n, "metadata.labels"), k, v)
		if (!strncmp(k, "node-role.kubernetes.io/", 24) && k[24])
			buf_printf(&roles, "%s%s", roles.len ? "," : "", k + 24);
	json_t *row = json_pack("[s, s, s, s, s]", jstr(json_object_get(n, "metadata"), "name"), status,
				roles.len ? buf_cstr(&roles) : "<none>", age,
				json_string_value(jpath(n, "status.nodeInfo.kubeletVersion")) ?
				json_string_value(jpath(n, "status.nodeInfo.kubeletVersion")) : "");
	buf_free(&roles);
	return row;
}

static json_t *pod_row(const json_t *p, const char *age)
{
	size_t total = json_array_size(jpath(p, "spec.containers")), ready = 0, i;
	long restarts = 0;
	json_t *cs;
	const char *reason = NULL;
	json_array_foreach(jpath(p, "status.containerStatuses"), i, cs) {
		if (json_is_true(json_object_get(cs, "ready")))
			ready++;
		restarts += (long)json_integer_value(json_object_get(cs, "restartCount"));
		const char *w = json_string_value(jpath(cs, "state.waiting.reason"));
		if (w)
			reason = w;
	}
	const char *status = json_string_value(jpath(p, "status.phase"));
	if (reason)
		status = reason;
	if (jpath(p, "metadata.deletionTimestamp"))
		status = "Terminating";
	char r[32];
	snprintf(r, sizeof(r), "%zu/%zu", ready, total);
	return json_pack("[s, s, s, i, s]", jstr(json_object_get(p, "metadata"), "name"), r,
			 status ? status : "Unknown", (int)restarts, age);
}

static json_t *ds_row(const json_t *d, const char *age)
{
	struct buf sel = BUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach(jpath(d, "spec.template.spec.nodeSelector"), k, v)
		buf_printf(&sel, "%s%s=%s", sel.len ? "," : "", k, json_string_value(v) ? json_string_value(v) : "");
	json_t *row = json_pack("[s, o, o, o, o, o, s, s]", jstr(json_object_get(d, "metadata"), "name"),
				num(d, "status.desiredNumberScheduled"), num(d, "status.currentNumberScheduled"),
				num(d, "status.numberReady"), num(d, "status.updatedNumberScheduled"),
				num(d, "status.numberAvailable"), sel.len ? buf_cstr(&sel) : "<none>", age);
	buf_free(&sel);
	return row;
}

static json_t *deploy_row(const json_t *d, const char *age)
{
	char r[48];
	json_t *rep = jpath(d, "spec.replicas");
	snprintf(r, sizeof(r), "%lld/%lld", (long long)json_integer_value(jpath(d, "status.readyReplicas")),
		 rep ? (long long)json_integer_value(rep) : 1LL);
	return json_pack("[s, s, o, o, s]", jstr(json_object_get(d, "metadata"), "name"), r,
			 num(d, "status.updatedReplicas"), num(d, "status.availableReplicas"), age);
}

json_t *table_for(const struct res_type *t, const json_t *objects, const char *rv,
		  const char *cont)
{
	int core = !t->group[0];
	enum { GENERIC, NODE, POD, DS, DEPLOY, NS } kind = GENERIC;
	if (core && !strcmp(t->kind, "Node"))
		kind = NODE;
	else if (core && !strcmp(t->kind, "Pod"))
		kind = POD;
	else if (core && !strcmp(t->kind, "Namespace"))
		kind = NS;
	else if (!strcmp(t->group, "apps") && !strcmp(t->kind, "DaemonSet"))
		kind = DS;
	else if (!strcmp(t->group, "apps") && !strcmp(t->kind, "Deployment"))
		kind = DEPLOY;
	json_t *cols = json_array();
	json_array_append_new(cols, col("Name", "string", "name", 0));
	switch (kind) {
	case NODE:
		json_array_append_new(cols, col("Status", "string", "", 0));
		json_array_append_new(cols, col("Roles", "string", "", 0));
		json_array_append_new(cols, col("Age", "string", "", 0));
		json_array_append_new(cols, col("Version", "string", "", 0));
		break;
	case POD:
		json_array_append_new(cols, col("Ready", "string", "", 0));
		json_array_append_new(cols, col("Status", "string", "", 0));
		json_array_append_new(cols, col("Restarts", "string", "", 0));
		json_array_append_new(cols, col("Age", "string", "", 0));
		break;
	case DS:
		json_array_append_new(cols, col("Desired", "integer", "", 0));
		json_array_append_new(cols, col("Current", "integer", "", 0));
		json_array_append_new(cols, col("Ready", "integer", "", 0));
		json_array_append_new(cols, col("Up-to-date", "integer", "", 0));
		json_array_append_new(cols, col("Available", "integer", "", 0));
		json_array_append_new(cols, col("Node Selector", "string", "", 0));
		json_array_append_new(cols, col("Age", "string", "", 0));
		break;
	case DEPLOY:
		json_array_append_new(cols, col("Ready", "string", "", 0));
		json_array_append_new(cols, col("Up-to-date", "string", "", 0));
		json_array_append_new(cols, col("Available", "string", "", 0));
		json_array_append_new(cols, col("Age", "string", "", 0));
		break;
	case NS:
		json_array_append_new(cols, col("Status", "string", "", 0));
		json_array_append_new(cols, col("Age", "string", "", 0));
		break;
	case GENERIC:
		json_array_append_new(cols, col("Age", "string", "", 0));
		break;
	}
	json_t *rows = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o) {
		json_t *md = json_object_get(o, "metadata");
		char age[32];
		human_age(jstr(md, "creationTimestamp"), age, sizeof(age));
		json_t *cells;
		switch (kind) {
		case NODE:
			cells = node_row(o, age);
			break;
		case POD:
			cells = pod_row(o, age);
			break;
		case DS:
			cells = ds_row(o, age);
			break;
		case DEPLOY:
			cells = deploy_row(o, age);
			break;
		case NS:
			cells = json_pack("[s, s, s]", jstr(md, "name"),
					  json_string_value(jpath(o, "status.phase")) ?
					  json_string_value(jpath(o, "status.phase")) : "Active", age);
			break;
		default:
			cells = json_pack("[s, s]", jstr(md, "name") ? jstr(md, "name") : "", age);
		}
		json_t *partial = json_pack("{s:s, s:s, s:O}", "kind", "PartialObjectMetadata",
					    "apiVersion", "meta.k8s.io/v1", "metadata", md);
		json_array_append_new(rows, json_pack("{s:o, s:o}", "cells", cells, "object", partial));
	}
	json_t *meta = json_pack("{s:s}", "resourceVersion", rv ? rv : "");
	if (cont)
		json_object_set_new(meta, "continue", json_string(cont));
	return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
			 "metadata", meta, "columnDefinitions", cols, "rows", rows);
}
