#!/usr/bin/env python3
"""A fleet upgrade campaign with `on_failure: rollback`, on kubesim (issue 11).

Three tke-fresh clusters get cilium 1.18.2 from an install campaign; then an
upgrade campaign to 1.18.3 with on_failure: rollback and a failure budget
of 1. The canary's cluster refuses the patch of its cilium-operator
Deployment (kubesim fault, one 422), so its upgrade fails. What must
hold:
- the canary's cluster is back on its last deployed revision (1.18.2, a
  new "Rollback to 1" revision) by the time the failure counts against the
  budget, i.e. when the campaign is seen paused by the budget, not later;
- the member is `failed`, with the job's error naming the rollback, and the
  job's result records the remediation;
- resume with a budget of 2 upgrades the other two clusters (1.18.3,
  revision 2), and the campaign ends `failed`, "1 of 3 clusters failed";
- every member got exactly one job.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["campaign_rollback_install", "campaign_rollback_before_budget", "campaign_rollback_resume_rest"]

NAMES = ["rb0", "rb1", "rb2"]
args = ["--ready-delay-ms", "20"]
for n in NAMES:
    args += ["--cluster", "%s=tke-fresh" % n]
ks = Kubesim(args, TESTS, prefix="ferry-campaign-rb-")

charts = os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")
f = start("campaignrb", TESTS, workers=3, extra_args=["--charts-dir", charts])
OP = f.token(f.tenant("acme"), "operator", name="alice")

ids = {}
for n in NAMES:
    kc = open(ks.cluster(n)["kubeconfig"]).read()
    r = f.post("/v1/clusters", {"name": n, "profile": "tke", "kubeconfig": kc, "labels": {"env": "rb"}}, OP)
    check_eq(r.status, 201, "register %s: %r" % (n, r))
    ids[n] = r.json()["id"]


def create(body):
    r = f.post("/v1/campaigns", body, OP)
    check_eq(r.status, 201, "create %r" % r)
    return r.json()


def members(cid):
    return {m["cluster_name"]: m for m in f.get("/v1/campaigns/%s/clusters?limit=200" % cid, OP).json()["items"]}


def cluster(name):
    return f.get("/v1/clusters/" + ids[name], OP).json()


def wait_campaign(cid, cond, timeout, what):
    return f.wait_campaign(cid, OP, cond, timeout, what)


state = {}


def t_install():
    c = create({"name": "inst", "selector": "env=rb", "kind": "install",
                "params": {"chart_version": "1.18.2"}, "strategy": {"canary": 0, "max_in_flight": 3}})
    c = wait_campaign(c["id"], lambda c: c["state"] in ("succeeded", "failed"), 900, "install")
    check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 3), "installed: %r" % members(c["id"]))
    for n in NAMES:
        check_eq((cluster(n).get("cilium_version"), cluster(n).get("release_revision")), ("1.18.2", 1), n)


def t_rollback_before_budget():
    check("rb0" in ids, "setup ran")
    # The canary is the first member in the campaign's order; make that one fail.
    c = create({"name": "upg", "selector": "env=rb", "kind": "upgrade", "on_failure": "rollback",
                "params": {"chart_version": "1.18.3"},
                "strategy": {"canary": 1, "max_in_flight": 3, "max_failures": 1}})
    cid = c["id"]
    state["cid"] = cid
    canary = min(members(cid).values(), key=lambda m: m["position"])["cluster_name"]
    state["canary"] = canary
    ks.admin("PUT", "/_sim/clusters/%s/faults" % canary,
             {"fail_next": 1, "error_codes": [422], "verbs": ["patch"],
              "path_contains": "/deployments/cilium-operator"})
    c = wait_campaign(cid, lambda c: c["state"] in ("paused", "succeeded", "failed"), 900, "budget pause")
    # Seen at the pause, not later: the rollback happened before the failure counted.
    cl = cluster(canary)
    check_eq(c["state"], "paused", "paused by the budget: %r" % c)
    check_eq(c.get("reason"), "failure budget reached: 1 of 1", "reason")
    check_eq((cl.get("cilium_version"), cl.get("release_revision")), ("1.18.2", 3),
             "the canary's cluster is rolled back (revision 2 failed, 3 = rollback to 1) when the budget counts it")
    m = members(cid)
    check_eq(m[canary]["state"], "failed", "canary member failed")
    check("rolled back to revision 1" in (m[canary].get("error") or ""), "member error names the rollback: %r"
          % m[canary].get("error"))
    job = f.get("/v1/jobs/" + m[canary]["job_id"], OP).json()
    rem = job["result"]["remediation"]
    check_eq((rem["action"], rem["state"], rem["to_revision"], rem["revision"]), ("rollback", "succeeded", 1, 3),
             "remediation %r" % rem)
    others = [n for n in NAMES if n != canary]
    check(all(m[n]["state"] in ("pending", "waiting") for n in others), "nothing else started: %r" % m)
    ks.admin("PUT", "/_sim/clusters/%s/faults" % canary, {})


def t_resume_rest():
    cid = state.get("cid")
    check(cid is not None, "the budget test ran")
    r = f.post("/v1/campaigns/%s/resume" % cid, {"max_failures": 2}, OP)
    check(r.status in (200, 202), "resume: %r" % r)
    c = wait_campaign(cid, lambda c: c["state"] in ("succeeded", "failed", "cancelled"), 900, "the rest")
    check_eq((c["state"], c.get("reason")), ("failed", "1 of 3 clusters failed"), "end")
    m = members(cid)
    for n in NAMES:
        if n == state["canary"]:
            continue
        check_eq(m[n]["state"], "succeeded", n)
        check_eq((cluster(n).get("cilium_version"), cluster(n).get("release_revision")), ("1.18.3", 2), n)
    rows = f.sql("SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'campaign:%s:%%' GROUP BY cluster_id" % cid)
    check_eq(sorted(int(x) for x in rows.split()), [1, 1, 1], "one job per member")


for name, fn in zip(TESTS, [t_install, t_rollback_before_budget, t_resume_rest]):
    run_test(name, fn)
ks.stop()
finish(f)
