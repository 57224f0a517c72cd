/*
 * install/nodepool: the Karpenter node pool of SPEC §2.8, built from job
 * parameters: a NodePool (karpenter.sh/v1) and a TKEMachineNodeClass
 * (karpenter.k8s.tke/v1beta1), with the annotation that makes native nodes
 * boot TencentOS 4 (node.tke.cloud.tencent.com/beta-image=ts4-public).
 *
 * params.nodepool: {name ("default"), instance_families ["S5",...]
 * (required), capacity_types (["on-demand"]), min_cpu (1), cpu_limit (100),
 * subnets [ids] (required), security_groups [ids], ssh_keys [ids],
 * consolidation_policy ("WhenEmptyOrUnderutilized"), consolidate_after
 * ("5m"), budget_nodes ("10%")}.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safe (pure function).
 */
#ifndef FERRY_INSTALL_NODEPOOL_H
#define FERRY_INSTALL_NODEPOOL_H

#include <jansson.h>
#include <stddef.h>

/* [NodePool, TKEMachineNodeClass], or NULL with a message in err. */
json_t *nodepool_objects(const json_t *np, char *err, size_t errlen);

#endif
