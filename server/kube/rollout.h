/*
 * rollout: the completion rules of `kubectl rollout status` for DaemonSets
 * and Deployments, as pure functions over the object JSON (what a GET of
 * apps/v1 daemonsets/NAME or deployments/NAME returns).
 *
 * DaemonSet: updateStrategy must be RollingUpdate (else an error, as
 * kubectl says); while metadata.generation > status.observedGeneration the
 * spec update is not observed yet; then not done while
 * updatedNumberScheduled < desiredNumberScheduled or numberAvailable <
 * desiredNumberScheduled. Deployment: once observed, the Progressing
 * condition with reason ProgressDeadlineExceeded is an error; not done while
 * updatedReplicas < spec.replicas (default 1), status.replicas >
 * updatedReplicas, or availableReplicas < updatedReplicas. Missing status
 * counters count as 0 (they are omitempty on the wire).
 *
 * Messages are kubectl's wording. Thread-safe, no allocation.
 */
#ifndef FERRY_KUBE_ROLLOUT_H
#define FERRY_KUBE_ROLLOUT_H

#include <jansson.h>
#include <stddef.h>

enum rollout_state {
	ROLLOUT_DONE = 0,        /* "successfully rolled out" */
	ROLLOUT_PROGRESSING = 1, /* keep waiting */
	ROLLOUT_ERROR = -1       /* will never finish as is (msg says why) */
};

/* msg (may be NULL) receives a one-line human-readable status. */
enum rollout_state rollout_daemonset_status(const json_t *ds, char *msg, size_t msglen);
enum rollout_state rollout_deployment_status(const json_t *dep, char *msg, size_t msglen);

/* Dispatch on the object's kind (DaemonSet or Deployment; anything else is
 * ROLLOUT_ERROR). kind may be NULL to read it from the object. */
enum rollout_state rollout_status(const char *kind, const json_t *obj, char *msg, size_t msglen);

/* A DaemonSet whose pods are all gone: the spec change is observed and
 * currentNumberScheduled == 0 and numberMisscheduled == 0 (used after the
 * nodeSelector retirement, where kubectl's rule passes too early). */
int rollout_daemonset_drained(const json_t *ds);

/* The DaemonSet's desiredNumberScheduled (0 when missing). */
long rollout_daemonset_desired(const json_t *ds);

#endif
