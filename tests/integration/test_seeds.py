#!/usr/bin/env python3
"""The four seed systems (../shared/seeds, SPEC §2 and §3), each installed
end to end through the API by a real ferryd with workers on its kubesim
scenario, with only the params docs/PROFILES.md documents, and the cluster
state the seed describes asserted object by object:

- seed_tke_1_18_3: TKE guide, Cilium 1.18.3 replacing kube-proxy
  (kube-proxy, tke-cni-agent, ip-masq-agent retired; kube-proxy-replacement
  true; delegated-plugin IPAM; release in kube-system).
- seed_tke_coexist_1_18_2: TKE 1.18.2 edition beside kube-proxy (nothing
  retired; kube-proxy-replacement false; chained behind multus-cni).
- seed_kubeadm_1_12: kubeadm without kube-proxy, Cilium 1.12.0 (002):
  kubeProxyReplacement strict, cluster-pool 10.244.0.0/16 mask 24,
  devices, hubble and prometheus, private registry; verify counts every pod
  kubesim runs for the release on three nodes (1.12 pods carry no
  app.kubernetes.io/part-of).
- seed_k3s_1_15_1_l2: k3s with Cilium 1.15.1 in namespace cilium (004):
  the namespace created as helm --create-namespace does, cluster-pool IPAM,
  native routing, DSR, the L2 announcement policy and LoadBalancer IP pool
  applied once cilium-operator registered the CRDs.

And the bad-params cases with kubesim's write counter: a typo and a wrong
type are a 422 before anything is queued; a chart version that does not
exist and values that do not render fail the job in preflight with zero
writes.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Kubesim, check, check_eq, finish, is_problem, run_test, start)  # noqa: E402

TESTS = ["seed_tke_1_18_3", "seed_tke_coexist_1_18_2", "seed_kubeadm_1_12", "seed_k3s_1_15_1_l2",
         "seed_bad_params_422_no_writes", "seed_missing_chart_fails_in_preflight",
         "seed_values_that_do_not_render_fail_in_preflight"]

ks = Kubesim(["--cluster", "tke=tke-fresh", "--cluster", "coexist=tke-fresh", "--cluster", "kubeadm=generic",
              "--cluster", "k3s=k3s", "--cluster", "bad=tke-fresh", "--ready-delay-ms", "50"],
             TESTS, prefix="ferry-seeds-")
os.environ.setdefault("FERRY_CHARTS_DIR", os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts"))
f = start("seeds", TESTS, workers=2)
acme = f.tenant("acme")
OP = f.token(acme, "operator")

# The requests of docs/PROFILES.md, one per seed system (keep them equal).
SEED_PARAMS = {
    "tke": {"chart_version": "1.18.3", "image_mirror": True},
    "coexist": {"chart_version": "1.18.2"},
    "kubeadm": {"chart_version": "1.12.0",
                "profile_options": {"k8s_service_host": "192.168.1.10", "k8s_service_port": 6443,
                                    "pod_cidr": "10.244.0.0/16", "pod_cidr_mask_size": 24,
                                    "devices": "ens192", "registry": "harbor.io/k8s/cilium"}},
    "k3s": {"chart_version": "1.15.1",
            "l2": {"cidrs": ["192.168.20.0/24"], "interfaces": ["ens192"],
                   "node_selector": {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane",
                                                           "operator": "Exists"}]},
                   "policy_name": "policy", "pool_name": "lb-ip-pool"}},
}


def register(name, profile):
    kc = open(ks.cluster(name)["kubeconfig"]).read()
    r = f.post("/v1/clusters", {"name": "seed-" + name, "profile": profile, "kubeconfig": kc}, OP)
    check_eq(r.status, 201, "register %s %r" % (name, r))
    return r.json()["id"]


def run_job(cid, kind, params, timeout=300):
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": kind, "params": params}, OP)
    check_eq(r.status, 202, "job %r" % r)
    jid = r.json()["id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = f.get("/v1/jobs/" + jid, OP).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError("job %s did not finish: %r" % (jid, job))


def objects(cluster, group_res):
    return ks.admin("GET", "/_sim/clusters/%s/objects/%s" % (cluster, group_res))


def obj(cluster, group_res, ns, name):
    return objects(cluster, group_res).get("%s/%s" % (ns or "", name))


def writes(cluster):
    return ks.admin("GET", "/_sim/clusters/%s/stats" % cluster)["writes"]


def config(cluster, ns, key):
    cm = obj(cluster, "core/configmaps", ns, "cilium-config")
    check(cm is not None, "cilium-config in %s" % ns)
    return cm["data"].get(key)


def retired(cluster, name):
    ds = obj(cluster, "apps/daemonsets", "kube-system", name)
    check(ds is not None, "%s still exists (never deleted)" % name)
    sel = ds["spec"]["template"]["spec"].get("nodeSelector") or {}
    return sel.get("label-not-exist") == "node-not-exist"


RELEASE_WORKLOADS = ("cilium", "cilium-envoy", "cilium-operator", "hubble-relay", "hubble-ui")


def release_pods(cluster, ns):
    """Pods kubesim runs for the release's workloads (not terminating)."""
    out = []
    for key, p in objects(cluster, "core/pods").items():
        refs = p["metadata"].get("ownerReferences") or [{}]
        if (key.startswith(ns + "/") and refs[0].get("name") in RELEASE_WORKLOADS
                and not p["metadata"].get("deletionTimestamp")):
            out.append(p["metadata"]["name"])
    return sorted(out)


def check_succeeded(job):
    bad = [(p["name"], p.get("message")) for p in job.get("phases", []) if p["state"] == "failed"]
    check_eq(job["state"], "succeeded", "job: %s %r" % (job.get("error"), bad))


def check_verify(job, cluster, ns):
    v = job["result"]["verify"]
    pods = release_pods(cluster, ns)
    names = sorted(p["name"] for p in v["pods"])
    check_eq(v["namespace"], ns, "verify namespace")
    check_eq(names, pods, "verify lists the pods kubesim runs")
    check_eq(v["total"], len(pods), "verify total")
    verify_msg = [p["message"] for p in job["phases"] if p["name"] == "verify"][0]
    check("%d running, %d ready, %d total" % (v["running"], v["ready"], v["total"]) in verify_msg,
          "verify message %r" % verify_msg)
    return v


def agents_ready(v, nodes):
    """The agent pods (what the wait phase waited for) run and are ready on
    every node; hubble relay/UI may still be starting when verify runs."""
    agents = [p for p in v["pods"] if p["name"].startswith("cilium-") and not p["name"].startswith(
        ("cilium-operator-", "cilium-envoy-"))]
    check_eq(len(agents), nodes, "one agent per node: %r" % v["pods"])
    for p in agents:
        check(p["status"] == "Running" and p["ready"].split("/")[0] == p["ready"].split("/")[1], "agent %r" % p)


def add_nodes(cluster, names):
    ks.admin("POST", "/_sim/clusters/%s/nodes" % cluster,
             {"nodes": [{"name": n, "osImage": "TencentOS Server 4.2", "kernelVersion": "6.6.47-12.tl4.x86_64",
                         "ready": True} for n in names]})


def t_tke():
    cid = register("tke", "tke")
    job = run_job(cid, "install", SEED_PARAMS["tke"])
    check_succeeded(job)
    for ds in ("kube-proxy", "tke-cni-agent", "ip-masq-agent"):
        check(retired("tke", ds), "%s retired" % ds)
    check_eq(config("tke", "kube-system", "kube-proxy-replacement"), "true", "KPR")
    check_eq(config("tke", "kube-system", "ipam"), "delegated-plugin", "IPAM")
    check_eq(config("tke", "kube-system", "routing-mode"), "native", "routing")
    check(obj("tke", "core/configmaps", "kube-system", "cni-config") is not None, "chained CNI ConfigMap")
    ds = obj("tke", "apps/daemonsets", "kube-system", "cilium")
    check(ds["spec"]["template"]["spec"]["containers"][0]["image"].startswith("quay.tencentcloudcr.com/cilium/cilium:"),
          "images from the guide's mirror")
    eni = obj("tke", "apps/daemonsets", "kube-system", "tke-eni-agent")
    check(eni["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v3.8.0-rc.0"), "eni-agent")
    check_eq(job["result"]["release"]["namespace"], "kube-system", "release namespace")
    # Nodes join, the same request again: verify counts the pods kubesim runs,
    # and the second preflight does not warn about ip-masq-agent again.
    add_nodes("tke", ["10.0.0.21", "10.0.0.22"])
    params = dict(SEED_PARAMS["tke"], allow_existing_nodes=True, wait_timeout_s=60)
    job = run_job(cid, "upgrade", params)
    check_succeeded(job)
    v = check_verify(job, "tke", "kube-system")
    check(v["total"] >= 5, "pods on 2 nodes: %r" % v)
    agents_ready(v, 2)
    codes = [w["code"] for w in job["result"]["preflight"]["warnings"]]
    check("ip_masq_agent" not in codes, "no 'will be stopped' warning after retire: %r" % codes)


def t_coexist():
    cid = register("coexist", "tke-coexist")
    job = run_job(cid, "install", SEED_PARAMS["coexist"])
    check_succeeded(job)
    for ds in ("kube-proxy", "tke-cni-agent", "ip-masq-agent"):
        check(not retired("coexist", ds), "%s kept" % ds)
    check_eq(config("coexist", "kube-system", "kube-proxy-replacement"), "false", "KPR off")
    check_eq(config("coexist", "kube-system", "ipam"), "delegated-plugin", "IPAM")
    check_eq(config("coexist", "kube-system", "cni-chaining-target"), "multus-cni", "chained behind multus")
    check_eq(job["result"]["release"]["chart_version"], "1.18.2", "chart")
    add_nodes("coexist", ["10.0.1.21", "10.0.1.22"])
    job = run_job(cid, "upgrade", dict(SEED_PARAMS["coexist"], allow_existing_nodes=True, wait_timeout_s=60))
    check_succeeded(job)
    v = check_verify(job, "coexist", "kube-system")
    check(v["total"] >= 5, "pods on 2 nodes: %r" % v)
    agents_ready(v, 2)
    check(not retired("coexist", "kube-proxy"), "kube-proxy still kept")


def t_kubeadm():
    cid = register("kubeadm", "generic")
    job = run_job(cid, "install", SEED_PARAMS["kubeadm"])
    check_succeeded(job)
    check_eq(config("kubeadm", "kube-system", "kube-proxy-replacement"), "strict", "KPR strict (1.12)")
    check_eq(config("kubeadm", "kube-system", "ipam"), "cluster-pool", "IPAM")
    check_eq(config("kubeadm", "kube-system", "cluster-pool-ipv4-cidr"), "10.244.0.0/16", "pod CIDR")
    check_eq(config("kubeadm", "kube-system", "cluster-pool-ipv4-mask-size"), "24", "mask size")
    check_eq(config("kubeadm", "kube-system", "enable-bpf-masquerade"), "true", "bpf masquerade")
    check_eq(config("kubeadm", "kube-system", "enable-hubble"), "true", "hubble")
    check(obj("kubeadm", "apps/daemonsets", "kube-system", "kube-proxy") is None, "no kube-proxy")
    ds = obj("kubeadm", "apps/daemonsets", "kube-system", "cilium")
    check(ds["spec"]["template"]["spec"]["containers"][0]["image"].startswith("harbor.io/k8s/cilium/cilium:"),
          "private registry image")
    # cilium-operator 1.12 registered its CRDs (kubesim does what the operator
    # does when it starts), but not the L2 ones, which came with 1.14
    crds = objects("kubeadm", "apiextensions.k8s.io/customresourcedefinitions")
    check("/ciliumnetworkpolicies.cilium.io" in crds and "/ciliumnodes.cilium.io" in crds, "1.12 CRDs: %r" % list(crds))
    check("/ciliuml2announcementpolicies.cilium.io" not in crds, "no L2 CRD from a 1.12 operator")
    v = check_verify(job, "kubeadm", "kube-system")
    # 3 agents + operator + hubble-relay + hubble-ui on three nodes
    check(v["total"] >= 6, "1.12 pods found: %r" % v)
    agents_ready(v, 3)


def t_k3s():
    cid = register("k3s", "k3s")
    check(obj("k3s", "core/namespaces", None, "cilium") is None, "no namespace cilium before")
    job = run_job(cid, "install", SEED_PARAMS["k3s"])
    check_succeeded(job)
    ns = obj("k3s", "core/namespaces", None, "cilium")
    check(ns is not None, "namespace cilium created")
    check_eq(ns["metadata"]["labels"].get("name"), "cilium", "labelled as helm --create-namespace")
    check_eq(job["result"]["release"]["namespace"], "cilium", "release namespace")
    secrets = objects("k3s", "core/secrets")
    check("cilium/sh.helm.release.v1.cilium.v1" in secrets, "release record in cilium")
    check_eq(config("k3s", "cilium", "kube-proxy-replacement"), "true", "KPR")
    check_eq(config("k3s", "cilium", "ipam"), "cluster-pool", "IPAM")
    check_eq(config("k3s", "cilium", "routing-mode"), "native", "routing")
    check_eq(config("k3s", "cilium", "bpf-lb-mode"), "dsr", "DSR")
    check_eq(config("k3s", "cilium", "enable-l2-announcements"), "true", "l2announcements")
    crds = objects("k3s", "apiextensions.k8s.io/customresourcedefinitions")
    for name in ("ciliuml2announcementpolicies", "ciliumloadbalancerippools"):
        conds = crds["/%s.cilium.io" % name]["status"]["conditions"]
        check(any(c["type"] == "Established" and c["status"] == "True" for c in conds), "%s Established" % name)
    l2_log = [e["message"] for e in f.get("/v1/jobs/%s/events?limit=1000" % job["id"], OP).json()["items"]
              if e.get("phase") == "l2-announcements"]
    check(l2_log, "the l2-announcements phase logged")
    pol = objects("k3s", "cilium.io/ciliuml2announcementpolicies").get("/policy")
    check(pol is not None, "L2 announcement policy")
    check_eq(pol["spec"]["interfaces"], ["ens192"], "interfaces")
    check_eq(pol["spec"]["nodeSelector"]["matchExpressions"][0]["key"], "node-role.kubernetes.io/control-plane",
             "announcing nodes")
    check(pol["spec"].get("externalIPs") is True and pol["spec"].get("loadBalancerIPs") is True, "announces")
    pool = objects("k3s", "cilium.io/ciliumloadbalancerippools").get("/lb-ip-pool")
    check(pool is not None, "LB IP pool")
    check_eq(pool["spec"]["blocks"], [{"cidr": "192.168.20.0/24"}], "pool blocks")
    node = objects("k3s", "core/nodes")["/k3s-server"]
    check_eq(node["status"]["conditions"][0]["status"], "True", "node Ready once Cilium runs")
    v = check_verify(job, "k3s", "cilium")
    check(v["total"] >= 3, "pods: %r" % v)
    agents_ready(v, 1)


def t_bad_params():
    cid = register("bad", "tke")
    w0 = writes("bad")
    for params, field in (({"chart_verison": "1.12.0"}, "params.chart_verison"),
                          ({"chart_version": 1.12}, "params.chart_version"),
                          ({"l2": {"cidrs": "192.168.20.0/24"}}, "params.l2.cidrs")):
        r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": params}, OP)
        is_problem(r, 422)
        check_eq(r.json()["errors"][0]["field"], field, "422 names the field")
    check_eq(f.get("/v1/jobs?cluster_id=" + cid, OP).json()["items"], [], "nothing queued")
    check_eq(writes("bad"), w0, "zero writes")


def t_missing_chart():
    cid = [c["id"] for c in f.get("/v1/clusters", OP).json()["items"] if c["name"] == "seed-bad"][0]
    w0 = writes("bad")
    job = run_job(cid, "install", {"chart_version": "1.99.0"})
    check_eq(job["state"], "failed", "job")
    failed = [p for p in job["phases"] if p["state"] == "failed"]
    check_eq([p["name"] for p in failed], ["preflight"], "fails in preflight")
    check("1.99.0" in failed[0]["message"], "message names the version: %r" % failed[0]["message"])
    check_eq(writes("bad"), w0, "zero writes")


def t_bad_values():
    cid = [c["id"] for c in f.get("/v1/clusters", OP).json()["items"] if c["name"] == "seed-bad"][0]
    w0 = writes("bad")
    # values.schema.json of the chart refuses a string where an integer goes
    job = run_job(cid, "install", {"set": ["operator.replicas=many"], "values_yaml": ["a: [unclosed\n"]})
    check_eq(job["state"], "failed", "job")
    failed = [p for p in job["phases"] if p["state"] == "failed"]
    check_eq([p["name"] for p in failed], ["preflight"], "fails in preflight: %r" % failed)
    check("values" in failed[0]["message"], "message: %r" % failed[0]["message"])
    check_eq(writes("bad"), w0, "zero writes")


run_test("seed_tke_1_18_3", t_tke)
run_test("seed_tke_coexist_1_18_2", t_coexist)
run_test("seed_kubeadm_1_12", t_kubeadm)
run_test("seed_k3s_1_15_1_l2", t_k3s)
run_test("seed_bad_params_422_no_writes", t_bad_params)
run_test("seed_missing_chart_fails_in_preflight", t_missing_chart)
run_test("seed_values_that_do_not_render_fail_in_preflight", t_bad_values)
ks.stop()
finish(f)
