#!/usr/bin/env python3
"""Security regression suite, per-tenant fairness (issue 13, finding 1:
one operator of one tenant could starve every tenant).

- sec_fairness_tenant_cap: a ferryd with 3 workers; tenant A queues 4 long
  jobs, then tenant B queues one. A never holds more than
  FERRY_TENANT_MAX_RUNNING_JOBS (default workers - 1 = 2) workers, and
  B's job starts at once instead of waiting for A's. (A took all three
  workers before, and B waited.)

The jobs are connection-only preflights against kubesim, which holds each
GET /version (10 s for A's cluster, 0.5 s for B's): slow API servers.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from apitest import (Kubesim, check, check_eq, finish, run_test, start)  # noqa: E402

TESTS = ["sec_fairness_tenant_cap"]
ks = Kubesim(["--cluster", "ka=tke-fresh", "--cluster", "kb=tke-fresh"], TESTS, prefix="ferry-fair-ks-")
f = start("sec_fair", TESTS, workers=3)
A = f.token(f.tenant("tenant-a"), "operator")
B = f.token(f.tenant("tenant-b"), "operator")


def job(tok, name, sim):
    kc = open(ks.cluster(sim)["kubeconfig"]).read()
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "kubeconfig": kc}, tok)
    check_eq(r.status, 201, "cluster %r" % r)
    r = f.post("/v1/clusters/%s/jobs" % r.json()["id"], {"kind": "preflight",
                                                         "params": {"connection_only": True}}, tok)
    check_eq(r.status, 202, "job %r" % r)
    return r.json()["id"]


def running(tenant_tok):
    items = f.get("/v1/jobs?state=running", tenant_tok).json()["items"]
    return len(items)


def t_cap():
    ks.slow("ka", 10000)
    ks.slow("kb", 500)
    a_jobs = [job(A, "a-%d" % i, "ka") for i in range(4)]
    time.sleep(1.5)
    most_a = 0
    for _ in range(10):
        most_a = max(most_a, running(A))
        time.sleep(0.1)
    check(most_a <= 2, "tenant A holds %d of 3 workers" % most_a)
    check(most_a >= 1, "tenant A runs at all")
    t0 = time.time()
    b = job(B, "b-0", "kb")
    started = None
    while time.time() - t0 < 3.5:
        st = f.get("/v1/jobs/" + b, B).json()["state"]
        if st in ("running", "succeeded"):
            started = time.time() - t0
            break
        time.sleep(0.05)
    check(started is not None, "tenant B's job waited behind tenant A's")
    if started is not None:
        print("   tenant B's job started %.2f s after it was queued" % started)
    for j in a_jobs:
        f.post("/v1/jobs/%s/cancel" % j, None, A, content_type=None)


run_test("sec_fairness_tenant_cap", t_cap)
finish(f)
