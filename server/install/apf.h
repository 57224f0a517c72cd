/*
 * apf: API Priority and Fairness objects that rate-limit Cilium's list
 * calls (SPEC §2.7): FlowSchema "cilium" and PriorityLevelConfiguration
 * "cilium".
 *
 * FlowSchema: matchingPrecedence 2, distinguisher ByUser, subject the
 * ServiceAccount <ns>/cilium, verb list on every cilium.io resource and on
 * core pods, cluster scope and all namespaces. PriorityLevelConfiguration:
 * Limited, lendablePercent 0, borrowingLimitPercent 0, Queue with handSize
 * 6, queueLengthLimit 50, queues 64, nominalConcurrencyShares by cluster
 * size (TKE cluster levels): up to L500 -> 10, L1000 -> 6, L3000 -> 3,
 * larger (L5000) -> 2.
 *
 * api_version is "flowcontrol.apiserver.k8s.io/v1" (Kubernetes 1.29+) or
 * ".../v1beta3" (1.26-1.31, same shape); apf_api_version_for() picks one.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_APF_H
#define FERRY_INSTALL_APF_H

#include <jansson.h>

#define APF_NAME "cilium"
#define APF_GROUP "flowcontrol.apiserver.k8s.io"

/* Shares for a TKE cluster level "L5".."L5000" (case-insensitive "l"
 * accepted). Returns -1 for anything that is not a level. */
int apf_shares_for_level(const char *level);

/* Shares for a node count (the level the cluster needs: <=500 nodes -> L500
 * and below, <=1000 -> L1000, <=3000 -> L3000, more -> L5000). */
int apf_shares_for_nodes(long nodes);

/* The served flowcontrol group version to use, given the server's minor
 * version (e.g. 32 for v1.32): v1 from 1.29, v1beta3 for 1.26-1.28, NULL
 * (unsupported) before. */
const char *apf_api_version_for(int kube_minor);

json_t *apf_flowschema(const char *api_version, const char *sa_namespace);
json_t *apf_priority_level(const char *api_version, int shares);

#endif
