/*
 * rollout.c: kubectl's rollout status rules, over jansson objects.
 *
 * kubectl reads integers that the API server may omit (omitempty); every
 * accessor here therefore returns 0 for a missing or non-integer field.
 */
#include "server/kube/rollout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static long num_at(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);
	if (b)
		v = json_object_get(v, b);
	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_real(v))
		return (long)json_real_value(v);
	return 0;
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);
	if (b)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void say(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
	if (!msg || !msglen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

enum rollout_state rollout_daemonset_status(const json_t *ds, char *msg, size_t msglen)
{
	const json_t *meta = json_object_get(ds, "metadata");
	const json_t *spec = json_object_get(ds, "spec");
	const json_t *status = json_object_get(ds, "status");
	const char *name = str_at(meta, "name", NULL);
	if (!name)
		name = "?";
	if (!json_is_object(ds)) {
		say(msg, msglen, "%s: not a DaemonSet object", name);
		return ROLLOUT_ERROR;
	}
	const char *strategy = str_at(spec, "updateStrategy", "type");
	/* The API server defaults the strategy to RollingUpdate. */
	if (strategy && strcmp(strategy, "RollingUpdate") != 0) {
		if (msg && msglen)
			snprintf(msg, msglen,
				 "rollout status is only available for RollingUpdate strategy type (daemon set \"%s\" uses %s)",
				 name, strategy);
		return ROLLOUT_ERROR;
	}
	long gen = num_at(meta, "generation", NULL);
	long observed = num_at(status, "observedGeneration", NULL);
	if (gen > observed) {
		say(msg, msglen, "Waiting for daemon set \"%s\" spec update to be observed...", name);
		return ROLLOUT_PROGRESSING;
	}
	long desired = num_at(status, "desiredNumberScheduled", NULL);
	long updated = num_at(status, "updatedNumberScheduled", NULL);
	long available = num_at(status, "numberAvailable", NULL);
	if (updated < desired) {
		say(msg, msglen, "Waiting for daemon set \"%s\" rollout to finish: %ld out of %ld new pods have been updated...", name, updated, desired);
		return ROLLOUT_PROGRESSING;
	}
	if (available < desired) {
		say(msg, msglen, "Waiting for daemon set \"%s\" rollout to finish: %ld of %ld updated pods are available...", name, available, desired);
		return ROLLOUT_PROGRESSING;
	}
	say(msg, msglen, "daemon set \"%s\" successfully rolled out", name);
	return ROLLOUT_DONE;
}

enum rollout_state rollout_deployment_status(const json_t *dep, char *msg, size_t msglen)
{
	const json_t *meta = json_object_get(dep, "metadata");
	const json_t *spec = json_object_get(dep, "spec");
	const json_t *status = json_object_get(dep, "status");
	const char *name = str_at(meta, "name", NULL);
	if (!name)
		name = "?";
	if (!json_is_object(dep)) {
		say(msg, msglen, "%s: not a Deployment object", name);
		return ROLLOUT_ERROR;
	}
	long gen = num_at(meta, "generation", NULL);
	long observed = num_at(status, "observedGeneration", NULL);
	if (gen > observed) {
		say(msg, msglen, "Waiting for deployment \"%s\" spec update to be observed...", name);
		return ROLLOUT_PROGRESSING;
	}
	const json_t *conds = json_object_get(status, "conditions");
	size_t i;
	const json_t *c;
	json_array_foreach(conds, i, c) {
		const char *type = str_at(c, "type", NULL);
		const char *reason = str_at(c, "reason", NULL);
		if (type && reason && !strcmp(type, "Progressing") &&
		    !strcmp(reason, "ProgressDeadlineExceeded")) {
			say(msg, msglen, "deployment \"%s\" exceeded its progress deadline", name);
			return ROLLOUT_ERROR;
		}
	}
	const json_t *rj = json_object_get(spec, "replicas");
	long want = json_is_integer(rj) ? (long)json_integer_value(rj) : 1;
	long updated = num_at(status, "updatedReplicas", NULL);
	long replicas = num_at(status, "replicas", NULL);
	long available = num_at(status, "availableReplicas", NULL);
	if (updated < want) {
		say(msg, msglen, "Waiting for deployment \"%s\" rollout to finish: %ld out of %ld new replicas have been updated...", name, updated, want);
		return ROLLOUT_PROGRESSING;
	}
	if (replicas > updated) {
		say(msg, msglen, "Waiting for deployment \"%s\" rollout to finish: %ld old replicas are pending termination...", name, replicas - updated);
		return ROLLOUT_PROGRESSING;
	}
	if (available < updated) {
		say(msg, msglen, "Waiting for deployment \"%s\" rollout to finish: %ld of %ld updated replicas are available...", name, available, updated);
		return ROLLOUT_PROGRESSING;
	}
	say(msg, msglen, "deployment \"%s\" successfully rolled out", name);
	return ROLLOUT_DONE;
}

enum rollout_state rollout_status(const char *kind, const json_t *obj, char *msg, size_t msglen)
{
	if (!kind)
		kind = str_at(obj, "kind", NULL);
	if (kind && !strcmp(kind, "DaemonSet"))
		return rollout_daemonset_status(obj, msg, msglen);
	if (kind && !strcmp(kind, "Deployment"))
		return rollout_deployment_status(obj, msg, msglen);
	if (msg && msglen)
		snprintf(msg, msglen, "no rollout status for kind %s", kind ? kind : "(none)");
	return ROLLOUT_ERROR;
}

int rollout_daemonset_drained(const json_t *ds)
{
	const json_t *meta = json_object_get(ds, "metadata");
	const json_t *status = json_object_get(ds, "status");
	if (num_at(meta, "generation", NULL) > num_at(status, "observedGeneration", NULL))
		return 0;
	return num_at(status, "currentNumberScheduled", NULL) == 0 &&
	       num_at(status, "numberMisscheduled", NULL) == 0;
}

long rollout_daemonset_desired(const json_t *ds)
{
	return num_at(json_object_get(ds, "status"), "desiredNumberScheduled", NULL);
}
