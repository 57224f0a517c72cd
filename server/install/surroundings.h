/*
 * install/surroundings: the ferry-managed objects around the Cilium release
 * (SPEC §2: the tke-eni-agent image, the chained CNI ConfigMap, the retired
 * TKE DaemonSets, the APF objects), as a snapshot kept with each release
 * revision (db/releases.h "surroundings") and put back by a rollback (to
 * the target revision's snapshot) or an uninstall (to the state before the
 * install).
 *
 * Snapshot (JSON object):
 *   eni_agent_image         tke-eni-agent's first container image, or null
 *                           when the DaemonSet does not exist
 *   eni_agent_image_before  its image before ferry first changed it
 *   cni_config              {"name", "data"} of the CNI ConfigMap, or null
 *   retired                 names of the DaemonSets (kube-proxy,
 *                           tke-cni-agent, ip-masq-agent) whose nodeSelector
 *                           is ferry's schedule-nowhere selector
 *   apf                     {"api_version", "flowschema", "priority_level"}
 *                           (the objects' specs) or null
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safety: as the phases'.
 */
#ifndef FERRY_INSTALL_SURROUNDINGS_H
#define FERRY_INSTALL_SURROUNDINGS_H

#include "server/install/phases.h"

#include <jansson.h>

/* The DaemonSets ferry retires (NULL-terminated). */
extern const char *const surroundings_retirable[];

/* Read the snapshot from the cluster. cni_name: the CNI ConfigMap's name
 * (NULL = "cni-config"). from_memo: objects this job already read or wrote
 * are taken from the job's memo (kube_ops_get_memo: the install job's own
 * snapshot after its phases wrote them); 0 reads everything live (drift
 * checks, restores). NULL on a failed read (*status set). */
json_t *surroundings_read(struct install_run *run, const char *cni_name, int from_memo, int *status);

/* Put the cluster back to want (a snapshot; members absent from want are
 * left alone), given now (surroundings_read() of the cluster). eni image
 * restored only when want has eni_agent_image (a string). Each change is
 * recorded (install_record_object) and logged; *changes counts them.
 * Returns 200 or the failing call's status, what naming it. */
int surroundings_restore(struct install_run *run, const json_t *want, const json_t *now,
			 long *changes, char *what, size_t whatlen);

/* Compare want with now member by member: an array of
 * {name, member (the snapshot member compared), state: in_sync|drifted,
 * detail} (drift check). */
json_t *surroundings_compare(const json_t *want, const json_t *now);

#endif
