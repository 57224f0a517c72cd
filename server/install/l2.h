/*
 * install/l2: k3s L2 announcements (SPEC §3, seed 004): with params.l2 the
 * k3s values layer sets l2announcements.enabled (profiles.c), and once
 * Cilium's CRDs are Established this module applies
 *   CiliumL2AnnouncementPolicy (cilium.io/v2alpha1) "ferry-l2-policy":
 *     spec.nodeSelector, spec.interfaces, externalIPs, loadBalancerIPs;
 *   CiliumLoadBalancerIPPool (cilium.io/v2alpha1) "ferry-lb-ip-pool":
 *     spec.blocks [{cidr}] (Cilium >= 1.15; spec.cidrs for older charts,
 *     the field the seed's 1.14-era example uses).
 *
 * params.l2 = {
 *   interfaces: ["ens192", "^eth[0-9]+"],   optional: all interfaces
 *   node_selector: {label: value, ...} or a LabelSelector
 *                  {matchLabels, matchExpressions}; optional: every node
 *   cidrs: ["192.168.20.0/24", ...]           required, IPv4 or IPv6
 *   external_ips: bool (default true), load_balancer_ips: bool (default true)
 *   policy_name, pool_name: optional names
 * }
 *
 * The phase "l2-announcements" (after "wait": the operator creates the
 * CRDs when it starts) waits for both CRDs, then applies the objects with
 * server-side apply; without params.l2 it does nothing.
 *
 * Memory: returned json_t are new references. Thread-safe (pure parts).
 */
#ifndef FERRY_INSTALL_L2_H
#define FERRY_INSTALL_L2_H

#include "server/install/profiles.h"
#include "server/install/runner.h"

#include <jansson.h>
#include <stddef.h>

#define L2_POLICY_CRD "ciliuml2announcementpolicies.cilium.io"
#define L2_POOL_CRD "ciliumloadbalancerippools.cilium.io"
#define L2_API_VERSION "cilium.io/v2alpha1"

/* 0 when params.l2 (l2) is usable for this profile, else -1 + message. */
int l2_check_params(enum profile_kind profile, const json_t *l2, char *err, size_t errlen);

/* [policy, pool] built from params.l2 for a chart version (NULL = current);
 * NULL + message when invalid. */
json_t *l2_objects(const json_t *l2, const char *chart_version, char *err, size_t errlen);

/* 1 when s is an IPv4 or IPv6 CIDR ("10.0.0.0/24", "fd00::/112"). */
int l2_cidr_ok(const char *s);

/* Whether a CRD object is Established and serves version (e.g.
 * "v2alpha1"): 1 yes, 0 not yet Established, -1 Established but the
 * version is not served. */
int l2_crd_ready(const json_t *crd, const char *version);

/* The phase (phases.h naming: runs after "wait"). */
enum phase_rc phase_l2(struct runner_ctx *ctx);

#endif
