/*
 * install/followups: the guide's FAQ follow-ups that need more than values
 * (SPEC §2, "Optional follow-ups"): node egress masquerading
 * (params.masquerade {vpc_cidr}) and CiliumEndpointSlice
 * (params.endpoint_slice) change cilium-config, which running agents only
 * read at start-up, so the cilium DaemonSet's pods are restarted the way
 * `kubectl rollout restart` does it: a merge patch setting the pod
 * template annotation kubectl.kubernetes.io/restartedAt to the current
 * RFC 3339 time, then the usual rollout wait.
 *
 * The values themselves are added by profiles.c (enableIPv4Masquerade,
 * ipv4NativeRoutingCIDR, bpf.masquerade; ciliumEndpointSlice.enabled).
 *
 * Memory: returned json_t are new references. Thread-safe.
 */
#ifndef FERRY_INSTALL_FOLLOWUPS_H
#define FERRY_INSTALL_FOLLOWUPS_H

#include <jansson.h>
#include <stddef.h>

struct kube_ops;

#define FOLLOWUP_RESTARTED_AT "kubectl.kubernetes.io/restartedAt"

/* Current UTC time as RFC 3339 ("2025-01-02T03:04:05Z") into out. */
void followup_now_rfc3339(char *out, size_t outlen);

/* {"spec":{"template":{"metadata":{"annotations":{restartedAt: now}}}}} */
json_t *followup_restart_patch(const char *now);

/*
 * Whether the cilium DaemonSet's pods must be restarted after the cilium
 * phase: a follow-up that changes the agent configuration was asked for
 * (masquerade.vpc_cidr, endpoint_slice, or masquerade.restart: true to
 * force it), the DaemonSet "cilium" already existed (not "created" in this
 * job: new pods read the new config anyway) and the ConfigMap
 * "cilium-config" was changed by this job (or the restart is forced).
 * cilium_detail is the cilium phase's detail ({objects: [{kind, name,
 * action}]}); NULL = 0.
 */
int followup_needs_restart(const json_t *params, const json_t *cilium_detail);

/* Merge-patch the workload at path (a DaemonSet or Deployment item path)
 * with followup_restart_patch(now). Returns the HTTP status or -1. */
int followup_rollout_restart(struct kube_ops *ops, const char *path, const char *now);

#endif
