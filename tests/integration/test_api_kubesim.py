#!/usr/bin/env python3
"""API integration, end to end against kubesim: clusters imported through
the API (a kubeconfig with a token, the certificate context of the same
kubeconfig, explicit fields) connect for real: a preflight job run by a
worker reaches the simulated API server over verified TLS and fills the
cluster's kube_version and node_count. A cluster registered with the wrong
CA or a wrong token fails its job with a clear message, and the message
holds no credential.
"""
import json
import os
import ssl
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Kubesim, check, check_eq, finish, make_ca, run_test, start)  # noqa: E402

TESTS = ["api_kubesim_kubeconfig_token", "api_kubesim_kubeconfig_cert_context",
         "api_kubesim_explicit_fields", "api_kubesim_wrong_ca", "api_kubesim_wrong_token",
         "api_kubesim_preflight_refuses_global_router", "api_kubesim_lifecycle"]

ks = Kubesim(["--clusters", "2", "--cluster", "gr=tke-globalrouter", "--cluster", "lc=tke-fresh"], TESTS,
             prefix="ferry-api-kubesim-")
info, simdir = ks.info, ks.dir

CHARTS = os.path.join(os.environ.get("FERRY_SHARED") or os.path.join(os.environ.get("FERRY_SRC", "."), "..", "shared"),
                      "charts")
f = start("kubesim", TESTS, workers=2, extra_args=["--charts-dir", CHARTS])
acme = f.tenant("acme")
OP = f.token(acme, "operator")
c1 = ks.cluster("c1")
c2 = ks.cluster("c2")
kc1 = open(c1["kubeconfig"]).read()
ca = open(info["ca"]).read()


def sim_node_count(cluster):
    ctx = ssl.create_default_context(cafile=info["ca"])
    req = urllib.request.Request(cluster["server"] + "/api/v1/nodes",
                                 headers={"Authorization": "Bearer " + cluster["token"]})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return len(json.load(r)["items"])


def run_preflight(cid, timeout=60):
    return run_kind(cid, "preflight", {}, timeout)


def run_kind(cid, kind, params, timeout=60):
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": kind, "params": params}, OP)
    check_eq(r.status, 202, "job %r" % r)
    jid = r.json()["id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = f.get("/v1/jobs/" + jid, OP).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError("job %s did not finish: %r" % (jid, job))


def t_kc_token():
    r = f.post("/v1/clusters", {"name": "sim-c1", "profile": "tke", "kubeconfig": kc1}, OP)
    check_eq(r.status, 201, "import %r" % r)
    check_eq(r.json()["auth"], "token", "auth")
    cid = r.json()["id"]
    job = run_preflight(cid)
    check_eq(job["state"], "succeeded", "preflight: %s" % job.get("error"))
    c = f.get("/v1/clusters/" + cid, OP).json()
    check(c["kube_version"], "kube_version filled: %r" % c)
    check_eq(c["node_count"], sim_node_count(c1), "node_count matches kubesim")
    check(c["last_contact_at"], "last_contact_at")


def t_kc_cert():
    r = f.post("/v1/clusters", {"name": "sim-c1-cert", "profile": "tke", "kubeconfig": kc1,
                                "context": "c1-cert"}, OP)
    check_eq(r.status, 201, "import %r" % r)
    check_eq(r.json()["auth"], "client-certificate", "auth")
    job = run_preflight(r.json()["id"])
    check_eq(job["state"], "succeeded", "preflight: %s" % job.get("error"))


def t_explicit():
    token = open(os.path.join(simdir, "c2", "token")).read().strip()
    r = f.post("/v1/clusters", {"name": "sim-c2", "profile": "generic", "api_server": c2["server"],
                                "ca_bundle": ca, "token": token}, OP)
    check_eq(r.status, 201, "create %r" % r)
    job = run_preflight(r.json()["id"])
    check_eq(job["state"], "succeeded", "preflight: %s" % job.get("error"))


def t_wrong_ca():
    other_ca, _ = make_ca(f.tmp, "not-kubesim")
    token = open(os.path.join(simdir, "c2", "token")).read().strip()
    r = f.post("/v1/clusters", {"name": "sim-bad-ca", "profile": "generic", "api_server": c2["server"],
                                "ca_bundle": other_ca, "token": token}, OP)
    check_eq(r.status, 201, "create")
    job = run_preflight(r.json()["id"], timeout=120)
    check_eq(job["state"], "failed", "wrong CA must fail")
    check(job["error"] and ("TLS" in job["error"] or "certificate" in job["error"].lower()),
          "error names TLS: %r" % job["error"])
    check(token not in json.dumps(job), "token in job")


def t_wrong_token():
    r = f.post("/v1/clusters", {"name": "sim-bad-token", "profile": "generic", "api_server": c2["server"],
                                "ca_bundle": ca, "token": "definitely-wrong-token"}, OP)
    check_eq(r.status, 201, "create")
    job = run_preflight(r.json()["id"], timeout=120)
    check_eq(job["state"], "failed", "wrong token must fail")
    check("definitely-wrong-token" not in json.dumps(job), "token echoed in job")
    ev = f.get("/v1/jobs/%s/events?limit=1000" % job["id"], OP).text
    check("definitely-wrong-token" not in ev, "token echoed in events")


def t_global_router():
    """A preflight job runs every read-only check of the profile: a Global
    Router cluster is refused with its reason, and nothing is written."""
    gr = ks.cluster("gr")
    r = f.post("/v1/clusters", {"name": "sim-gr", "profile": "tke", "kubeconfig": open(gr["kubeconfig"]).read()}, OP)
    check_eq(r.status, 201, "create: %r" % r)
    ks.admin("POST", "/_sim/clusters/gr/stats/reset")
    job = run_preflight(r.json()["id"], timeout=120)
    check_eq(job["state"], "failed", "global router must be refused")
    check("global router" in (job["error"] or "").lower(), "error names Global Router: %r" % job["error"])
    stats = ks.admin("GET", "/_sim/clusters/gr/stats")
    check(stats["total"] > 0, "preflight read the cluster")
    check_eq(stats["writes"], 0, "preflight wrote nothing")


def t_lifecycle():
    """Through the API with real workers: install, upgrade, the history and
    the cluster's release fields, a drift check, a rollback."""
    lc = ks.cluster("lc")
    r = f.post("/v1/clusters", {"name": "sim-lc", "profile": "tke", "kubeconfig": open(lc["kubeconfig"]).read()}, OP)
    check_eq(r.status, 201, "create: %r" % r)
    cid = r.json()["id"]
    job = run_kind(cid, "install", {"chart_version": "1.18.2"}, 240)
    check_eq(job["state"], "succeeded", "install: %s" % job.get("error"))
    job = run_kind(cid, "upgrade", {"chart_version": "1.18.3"}, 240)
    check_eq(job["state"], "succeeded", "upgrade: %s" % job.get("error"))
    revs = f.get("/v1/clusters/%s/revisions" % cid, OP).json()["items"]
    check_eq([(x["revision"], x["status"], x["chart_version"]) for x in revs],
             [(2, "deployed", "1.18.3"), (1, "superseded", "1.18.2")], "history")
    check_eq(revs[0]["job_id"], job["id"], "the upgrade job wrote revision 2")
    check_eq(revs[0]["started_by"], "t", "started by the operator token (its name)")
    one = f.get("/v1/clusters/%s/revisions/1" % cid, OP).json()
    check("kind: DaemonSet" in one["manifest"] and isinstance(one["values"], dict), "full revision")
    c = f.get("/v1/clusters/" + cid, OP).json()
    check_eq((c["cilium_version"], c["release_revision"], c["release_status"]), ("1.18.3", 2, "deployed"), "cluster")
    check(c["last_success_at"], "last_success_at")
    check_eq(c["last_check"], None, "no check yet")
    job = run_kind(cid, "check", {}, 120)
    check_eq(job["state"], "succeeded", "check: %s" % job.get("error"))
    summary = job["result"]["check"]["summary"]
    check_eq((summary["drifted"], summary["missing"]), (0, 0), "in sync: %r" % summary)
    lcheck = f.get("/v1/clusters/" + cid, OP).json()["last_check"]
    check_eq((lcheck["outcome"], lcheck["job_id"]), ("in_sync", job["id"]), "last_check")
    job = run_kind(cid, "rollback", {"revision": 1}, 240)
    check_eq(job["state"], "succeeded", "rollback: %s" % job.get("error"))
    check_eq(job["result"]["release"]["revision"], 3, "Helm's numbering")
    c = f.get("/v1/clusters/" + cid, OP).json()
    check_eq((c["cilium_version"], c["release_revision"]), ("1.18.2", 3), "cluster after the rollback")


try:
    run_test("api_kubesim_kubeconfig_token", t_kc_token)
    run_test("api_kubesim_kubeconfig_cert_context", t_kc_cert)
    run_test("api_kubesim_explicit_fields", t_explicit)
    run_test("api_kubesim_wrong_ca", t_wrong_ca)
    run_test("api_kubesim_wrong_token", t_wrong_token)
    run_test("api_kubesim_preflight_refuses_global_router", t_global_router)
    run_test("api_kubesim_lifecycle", t_lifecycle)
finally:
    ks.stop()
finish(f)
