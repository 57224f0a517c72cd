/*
 * scenario.c: the initial contents of a simulated cluster.
 *
 * A scenario is built once (from embedded YAML manifests plus small edits in
 * C, or from a scenario file) into a list of finished objects with uid,
 * resourceVersion and creationTimestamp. Every cluster using the scenario
 * shares these objects by reference until it changes them (see sim.h).
 */
#include "tests/kubesim/sim.h"
#include "server/common/yamljson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct scenario **scenarios;
static size_t nscenarios;

static const char tke_base_yaml[] =
"apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {kubernetes.io/metadata.name: default}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system, labels: {kubernetes.io/metadata.name: kube-system}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public, labels: {kubernetes.io/metadata.name: kube-public}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-node-lease, labels: {kubernetes.io/metadata.name: kube-node-lease}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n"
"---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: kube-system}\n"
"---\napiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default, labels: {component: apiserver, provider: kubernetes}}\n"
"spec: {type: ClusterIP, clusterIP: 172.16.252.1, clusterIPs: [172.16.252.1], sessionAffinity: None, ipFamilies: [IPv4], ipFamilyPolicy: SingleStack, internalTrafficPolicy: Cluster,\n"
"  ports: [{name: https, port: 443, protocol: TCP, targetPort: 60002}]}\nstatus: {loadBalancer: {}}\n"
"---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: kubernetes, namespace: default, labels: {endpointslice.kubernetes.io/skip-mirror: 'true'}}\n"
"subsets: [{addresses: [{ip: 169.254.128.7}], ports: [{name: https, port: 60002, protocol: TCP}]}]\n"
"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: tke-eni-agent, namespace: kube-system, labels: {k8s-app: tke-eni-agent}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: tke-eni-agent}}\n  revisionHistoryLimit: 10\n"
"  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: tke-eni-agent}}\n    spec:\n      hostNetwork: true\n      priorityClassName: system-node-critical\n      serviceAccountName: tke-eni-agent\n"
"      tolerations: [{operator: Exists}]\n"
"      containers:\n      - name: tke-eni-agent\n        image: ccr.ccs.tencentyun.com/tkeimages/tke-eni-agent:v3.7.5\n        imagePullPolicy: IfNotPresent\n        args: [--port=61677, --metrics-bind-address=:9100]\n"
"        securityContext: {privileged: true}\n        volumeMounts: [{name: host-cni-etc, mountPath: /host/etc/cni/net.d}]\n"
"      volumes: [{name: host-cni-etc, hostPath: {path: /etc/cni/net.d}}]\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n"
"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: tke-cni-agent, namespace: kube-system, labels: {k8s-app: tke-cni-agent}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: tke-cni-agent}}\n  revisionHistoryLimit: 10\n"
"  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: tke-cni-agent}}\n    spec:\n      hostNetwork: true\n      priorityClassName: system-node-critical\n"
"      tolerations: [{operator: Exists}]\n"
"      containers:\n      - name: tke-cni-agent\n        image: ccr.ccs.tencentyun.com/tkeimages/tke-cni-agent:v1.1.6\n        imagePullPolicy: IfNotPresent\n"
"        securityContext: {privileged: true}\n        volumeMounts: [{name: host-cni-etc, mountPath: /host/etc/cni/net.d}, {name: host-cni-bin, mountPath: /host/opt/cni/bin}]\n"
"      volumes: [{name: host-cni-etc, hostPath: {path: /etc/cni/net.d}}, {name: host-cni-bin, hostPath: {path: /opt/cni/bin}}]\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n"
"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system, labels: {k8s-app: kube-proxy}}\n"
"data: {config.conf: \"apiVersion: kubeproxy.config.k8s.io/v1alpha1\\nkind: KubeProxyConfiguration\\nmode: iptables\\n\"}\n"
"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-proxy, namespace: kube-system, labels: {k8s-app: kube-proxy}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: kube-proxy}}\n  revisionHistoryLimit: 10\n"
"  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: kube-proxy}}\n    spec:\n      hostNetwork: true\n      priorityClassName: system-node-critical\n"
"      tolerations: [{operator: Exists}]\n"
"      containers:\n      - name: kube-proxy\n        image: ccr.ccs.tencentyun.com/library/kube-proxy:v1.32.2-tke.1\n        imagePullPolicy: IfNotPresent\n"
"        command: [kube-proxy, --proxy-mode=iptables, --kubeconfig=/var/lib/kube-proxy/config, --hostname-override=$(NODE_NAME), --v=2]\n"
"        env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]\n"
"        securityContext: {privileged: true}\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n"
"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ip-masq-agent-config, namespace: kube-system}\n"
"data: {config: \"nonMasqueradeCIDRs:\\n- 172.16.0.0/16\\n- 10.0.0.0/16\\nresyncInterval: 1m0s\\n\"}\n"
"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ip-masq-agent, namespace: kube-system, labels: {k8s-app: ip-masq-agent}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: ip-masq-agent}}\n  revisionHistoryLimit: 10\n"
"  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: ip-masq-agent}}\n    spec:\n      hostNetwork: true\n"
"      tolerations: [{operator: Exists}]\n"
"      containers:\n      - name: ip-masq-agent\n        image: ccr.ccs.tencentyun.com/library/ip-masq-agent:v2.5.0\n        imagePullPolicy: IfNotPresent\n"
"        args: [--masq-chain=IP-MASQ-AGENT]\n        securityContext: {privileged: true}\n"
"        volumeMounts: [{name: config, mountPath: /etc/config}]\n"
"      volumes: [{name: config, configMap: {name: ip-masq-agent-config, items: [{key: config, path: ip-masq-agent}]}}]\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
"spec:\n  replicas: 2\n  selector: {matchLabels: {k8s-app: kube-dns}}\n  progressDeadlineSeconds: 600\n  revisionHistoryLimit: 10\n"
"  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}\n"
"  template:\n    metadata: {labels: {k8s-app: kube-dns}}\n    spec:\n      priorityClassName: system-cluster-critical\n"
"      tolerations: [{key: CriticalAddonsOnly, operator: Exists}, {key: node-role.kubernetes.io/master, effect: NoSchedule}]\n"
"      containers:\n      - name: coredns\n        image: ccr.ccs.tencentyun.com/tkeimages/coredns:1.11.1\n        args: [-conf, /etc/coredns/Corefile]\n"
"        ports: [{name: dns, containerPort: 53, protocol: UDP}, {name: dns-tcp, containerPort: 53, protocol: TCP}]\n"
"status: {}\n";

static const char cilium_dpv2_yaml[] =
"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata: {cni-chaining-mode: generic-veth, routing-mode: native}\n"
"---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: cilium, namespace: kube-system, labels: {k8s-app: cilium, app.kubernetes.io/part-of: cilium, app.kubernetes.io/name: cilium-agent}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: cilium}}\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 2, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: cilium, app.kubernetes.io/part-of: cilium, app.kubernetes.io/name: cilium-agent}}\n"
"    spec:\n      hostNetwork: true\n      tolerations: [{operator: Exists}]\n"
"      containers: [{name: cilium-agent, image: 'ccr.ccs.tencentyun.com/tkeimages/cilium:v1.16.6-tke.2'}]\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cilium-operator, namespace: kube-system, labels: {io.cilium/app: operator, app.kubernetes.io/part-of: cilium, app.kubernetes.io/name: cilium-operator}}\n"
"spec:\n  replicas: 1\n  selector: {matchLabels: {io.cilium/app: operator}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 50%}}\n"
"  template:\n    metadata: {labels: {io.cilium/app: operator, app.kubernetes.io/part-of: cilium, app.kubernetes.io/name: cilium-operator}}\n"
"    spec:\n      hostNetwork: true\n      tolerations: [{operator: Exists}]\n"
"      containers: [{name: cilium-operator, image: 'ccr.ccs.tencentyun.com/tkeimages/cilium-operator-generic:v1.16.6-tke.2'}]\n"
"status: {}\n";

static const char bridge_yaml[] =
"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: tke-bridge-agent, namespace: kube-system, labels: {k8s-app: tke-bridge-agent}}\n"
"spec:\n  selector: {matchLabels: {k8s-app: tke-bridge-agent}}\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}\n"
"  template:\n    metadata: {labels: {k8s-app: tke-bridge-agent}}\n"
"    spec:\n      hostNetwork: true\n      tolerations: [{operator: Exists}]\n"
"      containers: [{name: tke-bridge-agent, image: 'ccr.ccs.tencentyun.com/tkeimages/tke-bridge-agent:v0.1.7', args: [--cni-conf=bridge]}]\n"
"status: {currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1}\n";

static const char k3s_yaml[] =
"apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {kubernetes.io/metadata.name: default}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system, labels: {kubernetes.io/metadata.name: kube-system}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public, labels: {kubernetes.io/metadata.name: kube-public}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-node-lease, labels: {kubernetes.io/metadata.name: kube-node-lease}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default, labels: {component: apiserver, provider: kubernetes}}\n"
"spec: {type: ClusterIP, clusterIP: 10.43.0.1, clusterIPs: [10.43.0.1], ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]}\nstatus: {loadBalancer: {}}\n"
"---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: kubernetes, namespace: default}\n"
"subsets: [{addresses: [{ip: 192.168.1.10}], ports: [{name: https, port: 6443, protocol: TCP}]}]\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
"spec:\n  replicas: 1\n  selector: {matchLabels: {k8s-app: kube-dns}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}\n"
"  template:\n    metadata: {labels: {k8s-app: kube-dns}}\n    spec:\n"
"      tolerations: [{key: CriticalAddonsOnly, operator: Exists}, {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}, {key: node-role.kubernetes.io/master, operator: Exists, effect: NoSchedule}]\n"
"      containers: [{name: coredns, image: 'rancher/mirrored-coredns-coredns:1.12.0'}]\n"
"status: {}\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: local-path-provisioner, namespace: kube-system, labels: {app: local-path-provisioner}}\n"
"spec:\n  replicas: 1\n  selector: {matchLabels: {app: local-path-provisioner}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}\n"
"  template:\n    metadata: {labels: {app: local-path-provisioner}}\n    spec:\n"
"      tolerations: [{key: CriticalAddonsOnly, operator: Exists}, {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]\n"
"      containers: [{name: local-path-provisioner, image: 'rancher/local-path-provisioner:v0.0.30'}]\n"
"status: {}\n";

static const char generic_yaml[] =
"apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {kubernetes.io/metadata.name: default}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system, labels: {kubernetes.io/metadata.name: kube-system}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-public, labels: {kubernetes.io/metadata.name: kube-public}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: kube-node-lease, labels: {kubernetes.io/metadata.name: kube-node-lease}}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n"
"---\napiVersion: v1\nkind: Service\nmetadata: {name: kubernetes, namespace: default, labels: {component: apiserver, provider: kubernetes}}\n"
"spec: {type: ClusterIP, clusterIP: 10.96.0.1, clusterIPs: [10.96.0.1], ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]}\nstatus: {loadBalancer: {}}\n"
"---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: kubernetes, namespace: default}\n"
"subsets: [{addresses: [{ip: 192.168.10.100}], ports: [{name: https, port: 6443, protocol: TCP}]}]\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
"spec:\n  replicas: 2\n  selector: {matchLabels: {k8s-app: kube-dns}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}\n"
"  template:\n    metadata: {labels: {k8s-app: kube-dns}}\n    spec:\n"
"      tolerations: [{key: CriticalAddonsOnly, operator: Exists}, {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]\n"
"      containers: [{name: coredns, image: 'registry.k8s.io/coredns/coredns:v1.11.3'}]\n"
"status: {}\n";


static const char karpenter_yaml[] =
"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: nodepools.karpenter.sh}\n"
"spec:\n  group: karpenter.sh\n  scope: Cluster\n  names: {plural: nodepools, singular: nodepool, kind: NodePool, listKind: NodePoolList}\n"
"  versions: [{name: v1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n"
"status: {acceptedNames: {plural: nodepools, singular: nodepool, kind: NodePool, listKind: NodePoolList}, storedVersions: [v1],\n"
"  conditions: [{type: NamesAccepted, status: 'True', reason: NoConflicts, message: no conflicts found}, {type: Established, status: 'True', reason: InitialNamesAccepted, message: the initial names have been accepted}]}\n"
"---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: tkemachinenodeclasses.karpenter.k8s.tke}\n"
"spec:\n  group: karpenter.k8s.tke\n  scope: Cluster\n  names: {plural: tkemachinenodeclasses, singular: tkemachinenodeclass, kind: TKEMachineNodeClass, listKind: TKEMachineNodeClassList}\n"
"  versions: [{name: v1beta1, served: true, storage: true, subresources: {status: {}}, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n"
"status: {acceptedNames: {plural: tkemachinenodeclasses, singular: tkemachinenodeclass, kind: TKEMachineNodeClass, listKind: TKEMachineNodeClassList}, storedVersions: [v1beta1],\n"
"  conditions: [{type: NamesAccepted, status: 'True', reason: NoConflicts, message: no conflicts found}, {type: Established, status: 'True', reason: InitialNamesAccepted, message: the initial names have been accepted}]}\n"
"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: karpenter, namespace: kube-system, labels: {app.kubernetes.io/name: karpenter}}\n"
"spec:\n  replicas: 2\n  selector: {matchLabels: {app.kubernetes.io/name: karpenter}}\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}\n"
"  template:\n    metadata: {labels: {app.kubernetes.io/name: karpenter}}\n    spec:\n      tolerations: [{key: CriticalAddonsOnly, operator: Exists}]\n"
"      containers: [{name: controller, image: 'ccr.ccs.tencentyun.com/tkeimages/karpenter-provider-tke:v0.1.6'}]\n"
"status: {}\n";

static json_t *version_doc(const char *git_version, const char *minor)
{
	char major[8] = "1";
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", major,
			 "minor", minor, "gitVersion", git_version,
			 "gitCommit", "5b2d8d1e7c1f9a6e4b3c2d1a0f9e8d7c6b5a4f3e",
			 "gitTreeState", "clean", "buildDate", "2025-03-01T10:12:44Z",
			 "goVersion", "go1.23.6", "compiler", "gc", "platform", "linux/amd64");
}

static uint64_t uid_counter;

/* Give obj the metadata a stored object has; returns the store entry. */
static json_t *finish_object(struct scenario *s, json_t *obj, char *err, size_t errlen)
{
	const char *apiversion = jstr(obj, "apiVersion"), *kind = jstr(obj, "kind");
	if (!apiversion || !kind) {
		snprintf(err, errlen, "scenario object without apiVersion/kind");
		return NULL;
	}
	const struct res_type *t = res_builtin_kind(apiversion, kind);
	if (!t) {
		snprintf(err, errlen, "scenario object of unknown kind %s %s", apiversion, kind);
		return NULL;
	}
	json_t *md = json_object_get(obj, "metadata");
	const char *name = jstr(md, "name");
	if (!name) {
		snprintf(err, errlen, "scenario %s without metadata.name", kind);
		return NULL;
	}
	const char *ns = jstr(md, "namespace");
	if (t->namespaced && !ns) {
		json_object_set_new(md, "namespace", json_string("default"));
		ns = "default";
	}
	char uid[40], ts[32], rv[24];
	uint64_t u = ++uid_counter;
	snprintf(uid, sizeof(uid), "5c0a%04x-%04x-4%03x-8%03x-%012llx", (unsigned)(fnv1a(s->name, strlen(s->name)) & 0xffff),
		 (unsigned)(u & 0xffff), (unsigned)(u >> 16 & 0xfff), (unsigned)(u & 0xfff),
		 (unsigned long long)(fnv1a(name, strlen(name)) & 0xffffffffffffULL));
	rfc3339_now(ts);
	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)++s->rv);
	json_object_set_new(md, "uid", json_string(uid));
	json_object_set_new(md, "resourceVersion", json_string(rv));
	json_object_set_new(md, "creationTimestamp", json_string(ts));
	if (t->tracks_generation && !json_object_get(md, "generation"))
		json_object_set_new(md, "generation", json_integer(1));
	char *key = res_store_key(t);
	char id[600];
	snprintf(id, sizeof(id), "%s/%s", t->namespaced ? ns : "", name);
	json_t *entry = json_pack("{s:s, s:s, s:O}", "key", key, "id", id, "obj", obj);
	free(key);
	return entry;
}

static int add_yaml(struct scenario *s, const char *yaml, char *err, size_t errlen)
{
	char perr[256];
	json_t *docs = yaml_stream_to_json(yaml, strlen(yaml), perr, sizeof(perr));
	if (!docs) {
		snprintf(err, errlen, "scenario YAML: %s", perr);
		return -1;
	}
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d) {
		json_t *e = finish_object(s, d, err, errlen);
		if (!e) {
			json_decref(docs);
			return -1;
		}
		json_array_append_new(s->objects, e);
	}
	json_decref(docs);
	return 0;
}

static json_t *find_entry(struct scenario *s, const char *key, const char *id, size_t *index)
{
	size_t i;
	json_t *e;
	json_array_foreach(s->objects, i, e) {
		if (!strcmp(jstr(e, "key"), key) && !strcmp(jstr(e, "id"), id)) {
			if (index)
				*index = i;
			return e;
		}
	}
	return NULL;
}

static void remove_entry(struct scenario *s, const char *key, const char *id)
{
	size_t idx;
	if (find_entry(s, key, id, &idx))
		json_array_remove(s->objects, idx);
}

json_t *scenario_make_node(const char *name, const json_t *labels, const json_t *taints,
			   const char *os_image, const char *kernel, int ready, int is_virtual)
{
	json_t *lbl = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kubernetes.io/hostname", name,
				"kubernetes.io/os", "linux", "kubernetes.io/arch", "amd64",
				"beta.kubernetes.io/os", "linux", "node.kubernetes.io/instance-type",
				is_virtual ? "eklet" : "SA5.LARGE8");
	json_object_set_new(lbl, "topology.kubernetes.io/zone", json_string("ap-guangzhou-3"));
	if (is_virtual)
		json_object_set_new(lbl, "type", json_string("virtual-kubelet"));
	if (json_is_object(labels))
		json_object_update(lbl, (json_t *)labels);
	json_t *tn = json_is_array(taints) ? json_deep_copy(taints) : json_array();
	if (is_virtual)
		json_array_append_new(tn, json_pack("{s:s, s:s, s:s}", "key", "eks.tke.cloud.tencent.com/eklet",
						    "value", "true", "effect", "NoSchedule"));
	if (!ready)
		json_array_append_new(tn, json_pack("{s:s, s:s}", "key", "node.kubernetes.io/not-ready",
						    "effect", "NoSchedule"));
	char ts[32];
	rfc3339_now(ts);
	json_t *spec = json_object();
	if (json_array_size(tn))
		json_object_set_new(spec, "taints", tn);
	else
		json_decref(tn);
	json_object_set_new(spec, "providerID", json_sprintf("qcloud:///800003/ins-%08llx",
		(unsigned long long)(fnv1a(name, strlen(name)) & 0xffffffff)));
	json_t *node = json_pack(
		"{s:s, s:s, s:{s:s, s:o, s:{s:s}}, s:o, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, "
		"s:[{s:s, s:s, s:s, s:s, s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}], "
		"s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}}",
		"apiVersion", "v1", "kind", "Node", "metadata", "name", name, "labels", lbl,
		"annotations", "node.alpha.kubernetes.io/ttl", "0", "spec", spec, "status",
		"capacity", "cpu", "4", "memory", "7901164Ki", "pods", "61",
		"allocatable", "cpu", "3920m", "memory", "6710316Ki", "pods", "61",
		"conditions", "type", "Ready", "status", ready ? "True" : "False",
		"reason", ready ? "KubeletReady" : "KubeletNotReady",
		"message", ready ? "kubelet is posting ready status" :
				   "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
		"lastHeartbeatTime", ts, "lastTransitionTime", ts,
		"addresses", "type", "InternalIP", "address", name, "type", "Hostname", "address", name,
		"nodeInfo", "osImage", os_image ? os_image : "TencentOS Server 4.2",
		"kernelVersion", kernel ? kernel : "6.6.47-12.tl4.x86_64",
		"kubeletVersion", "v1.32.2-tke.1", "kubeProxyVersion", "",
		"containerRuntimeVersion", "containerd://1.7.22", "architecture", "amd64",
		"operatingSystem", "linux", "machineID", "", "systemUUID", "", "bootID", "");
	/* an IP-looking name is the InternalIP; otherwise invent one */
	int dots = 0;
	for (const char *p = name; *p; p++)
		dots += *p == '.';
	if (dots != 3) {
		json_t *addr = json_array_get(jpath(node, "status.addresses"), 0);
		json_object_set_new(addr, "address", json_sprintf("10.0.%u.%u",
			(unsigned)(fnv1a(name, strlen(name)) % 200), (unsigned)(fnv1a(name, strlen(name)) / 7 % 250 + 2)));
	}
	return node;
}

static int add_node(struct scenario *s, const char *name, const char *os, const char *kernel,
		    int ready, json_t *labels, json_t *taints, char *err, size_t errlen)
{
	json_t *n = scenario_make_node(name, labels, taints, os, kernel, ready, 0);
	json_object_set(jpath(n, "status.nodeInfo"), "kubeletVersion", json_object_get(s->version, "gitVersion"));
	json_t *e = finish_object(s, n, err, errlen);
	json_decref(n);
	if (!e)
		return -1;
	json_array_append_new(s->objects, e);
	return 0;
}

/* Replace a string inside one object of the scenario (a new object). */
static void edit_object(struct scenario *s, const char *key, const char *id,
			void (*fn)(json_t *obj, const void *arg), const void *arg)
{
	json_t *e = find_entry(s, key, id, NULL);
	if (!e)
		return;
	json_t *copy = json_deep_copy(json_object_get(e, "obj"));
	fn(copy, arg);
	json_object_set_new(e, "obj", copy);
}

static void set_proxy_mode(json_t *obj, const void *arg)
{
	const char *mode = arg;
	if (!strcmp(jstr(obj, "kind"), "ConfigMap")) {
		json_t *data = json_object_get(obj, "data");
		json_object_set_new(data, "config.conf", json_sprintf(
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: %s\n", mode));
		return;
	}
	json_t *cmd = json_object_get(json_array_get(jpath(obj, "spec.template.spec.containers"), 0), "command");
	json_array_set_new(cmd, 1, json_sprintf("--proxy-mode=%s", mode));
}

static void set_image(json_t *obj, const void *arg)
{
	json_t *c0 = json_array_get(jpath(obj, "spec.template.spec.containers"), 0);
	json_object_set_new(c0, "image", json_string(arg));
}

static struct scenario *scenario_new(const char *name, const char *git_version,
				     const char *minor)
{
	struct scenario *s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->version = version_doc(git_version, minor);
	s->objects = json_array();
	return s;
}

static void scenario_free(struct scenario *s)
{
	free(s->name);
	json_decref(s->version);
	json_decref(s->objects);
	free(s);
}

static struct scenario *build_builtin(const char *name, char *err, size_t errlen)
{
	struct scenario *s = NULL;
	int rc = 0;
	if (!strcmp(name, "tke-fresh") || !strcmp(name, "tke-with-nodes") ||
	    !strcmp(name, "tke-globalrouter") || !strcmp(name, "tke-dataplanev2") ||
	    !strcmp(name, "tke-ipvs") || !strcmp(name, "tke-old") || !strcmp(name, "tke-karpenter")) {
		int old = !strcmp(name, "tke-old");
		s = scenario_new(name, old ? "v1.28.3-tke.5" : "v1.32.2-tke.1", old ? "28+" : "32");
		rc = add_yaml(s, tke_base_yaml, err, errlen);
		if (!rc && old)
			edit_object(s, "apps/daemonsets", "kube-system/kube-proxy", set_image,
				    "ccr.ccs.tencentyun.com/library/kube-proxy:v1.28.3-tke.5");
		if (!rc && !strcmp(name, "tke-with-nodes")) {
			rc = add_node(s, "10.0.0.11", "TencentOS Server 4.2", "6.6.47-12.tl4.x86_64", 1, NULL, NULL, err, errlen) ||
			     add_node(s, "10.0.0.12", "Ubuntu 22.04.4 LTS", "5.15.0-119-generic", 1, NULL, NULL, err, errlen) ||
			     add_node(s, "10.0.0.13", "TencentOS Server 3.1 (Final)", "5.4.119-19.0009.44", 1, NULL, NULL, err, errlen);
		}
		if (!rc && !strcmp(name, "tke-globalrouter")) {
			remove_entry(s, "apps/daemonsets", "kube-system/tke-eni-agent");
			rc = add_yaml(s, bridge_yaml, err, errlen);
		}
		if (!rc && !strcmp(name, "tke-dataplanev2"))
			rc = add_yaml(s, cilium_dpv2_yaml, err, errlen);
		if (!rc && !strcmp(name, "tke-karpenter"))
			rc = add_yaml(s, karpenter_yaml, err, errlen);
		if (!rc && !strcmp(name, "tke-ipvs")) {
			edit_object(s, "apps/daemonsets", "kube-system/kube-proxy", set_proxy_mode, "ipvs");
			edit_object(s, "core/configmaps", "kube-system/kube-proxy", set_proxy_mode, "ipvs");
		}
	} else if (!strcmp(name, "k3s")) {
		s = scenario_new(name, "v1.31.4+k3s1", "31");
		s->k3s = 1;
		rc = add_yaml(s, k3s_yaml, err, errlen);
		if (!rc) {
			json_t *labels = json_pack("{s:s, s:s}", "node-role.kubernetes.io/control-plane", "true",
						   "node-role.kubernetes.io/master", "true");
			rc = add_node(s, "k3s-server", "Ubuntu 24.04.1 LTS", "6.8.0-51-generic", 0, labels, NULL, err, errlen);
			json_decref(labels);
		}
	} else if (!strcmp(name, "generic")) {
		s = scenario_new(name, "v1.32.2", "32");
		rc = add_yaml(s, generic_yaml, err, errlen);
		if (!rc) {
			json_t *labels = json_pack("{s:s}", "node-role.kubernetes.io/control-plane", "");
			json_t *taints = json_pack("[{s:s, s:s}]", "key", "node-role.kubernetes.io/control-plane", "effect", "NoSchedule");
			rc = add_node(s, "cp-1", "Ubuntu 22.04.4 LTS", "5.15.0-119-generic", 1, labels, taints, err, errlen) ||
			     add_node(s, "worker-1", "Ubuntu 22.04.4 LTS", "5.15.0-119-generic", 1, NULL, NULL, err, errlen) ||
			     add_node(s, "worker-2", "Ubuntu 22.04.4 LTS", "5.15.0-119-generic", 1, NULL, NULL, err, errlen);
			json_decref(labels);
			json_decref(taints);
		}
	} else {
		snprintf(err, errlen, "unknown scenario \"%s\" (known: tke-fresh, tke-with-nodes, "
			 "tke-globalrouter, tke-dataplanev2, tke-old, tke-ipvs, tke-karpenter, k3s, generic)", name);
		return NULL;
	}
	if (rc) {
		scenario_free(s);
		return NULL;
	}
	return s;
}

static const struct scenario *lookup(const char *name)
{
	for (size_t i = 0; i < nscenarios; i++)
		if (!strcmp(scenarios[i]->name, name))
			return scenarios[i];
	return NULL;
}

static void register_scenario(struct scenario *s)
{
	for (size_t i = 0; i < nscenarios; i++)
		if (!strcmp(scenarios[i]->name, s->name)) {
			scenario_free(scenarios[i]);
			scenarios[i] = s;
			return;
		}
	scenarios = xrealloc(scenarios, (nscenarios + 1) * sizeof(*scenarios));
	scenarios[nscenarios++] = s;
}

const struct scenario *scenario_get(const char *name)
{
	const struct scenario *s = lookup(name);
	if (s)
		return s;
	char err[256];
	struct scenario *n = build_builtin(name, err, sizeof(err));
	if (!n)
		return NULL;
	register_scenario(n);
	return n;
}

int scenario_load_file(const char *name, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open scenario file %s", path);
		return -1;
	}
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	char perr[256];
	json_t *doc = yaml_to_json(buf_cstr(&b), b.len, perr, sizeof(perr));
	buf_free(&b);
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "scenario file %s: %s", path, doc ? "not a mapping" : perr);
		json_decref(doc);
		return -1;
	}
	const char *base = jstr(doc, "base");
	struct scenario *s = build_builtin(base ? base : "tke-fresh", err, errlen);
	if (!s) {
		json_decref(doc);
		return -1;
	}
	free(s->name);
	s->name = xstrdup(name);
	int rc = 0;
	json_t *ver = json_object_get(doc, "version");
	if (json_is_object(ver))
		json_object_update(s->version, ver);
	if (json_is_true(json_object_get(doc, "k3s")))
		s->k3s = 1;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "remove"), i, v) {
		const char *res = jstr(v, "resource"), *ns = jstr(v, "namespace"), *nm = jstr(v, "name");
		const char *grp = jstr(v, "group");
		if (!res || !nm)
			continue;
		char key[300], id[600];
		snprintf(key, sizeof(key), "%s/%s", grp && grp[0] ? grp : (strcmp(res, "daemonsets") && strcmp(res, "deployments") ? "core" : "apps"), res);
		snprintf(id, sizeof(id), "%s/%s", ns ? ns : "", nm);
		remove_entry(s, key, id);
	}
	json_array_foreach(json_object_get(doc, "objects"), i, v) {
		if (rc)
			break;
		json_t *copy = json_deep_copy(v);
		json_t *e = finish_object(s, copy, err, errlen);
		json_decref(copy);
		if (!e) {
			rc = -1;
			break;
		}
		remove_entry(s, jstr(e, "key"), jstr(e, "id"));
		json_array_append_new(s->objects, e);
	}
	json_array_foreach(json_object_get(doc, "nodes"), i, v) {
		if (rc)
			break;
		const char *nm = jstr(v, "name");
		if (!nm) {
			snprintf(err, errlen, "scenario file %s: node without name", path);
			rc = -1;
			break;
		}
		json_t *ready = json_object_get(v, "ready");
		rc = add_node(s, nm, jstr(v, "osImage"), jstr(v, "kernelVersion"),
			      ready ? json_is_true(ready) : 1, json_object_get(v, "labels"),
			      json_object_get(v, "taints"), err, errlen);
	}
	json_decref(doc);
	if (rc) {
		scenario_free(s);
		return -1;
	}
	register_scenario(s);
	return 0;
}

void scenario_free_all(void)
{
	for (size_t i = 0; i < nscenarios; i++)
		scenario_free(scenarios[i]);
	free(scenarios);
	scenarios = NULL;
	nscenarios = 0;
}
