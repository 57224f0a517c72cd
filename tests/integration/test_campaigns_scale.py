#!/usr/bin/env python3
"""Fleet campaigns at scale (issue 11): one ferryd with 100 workers runs a
campaign of 100 clusters with max_in_flight 100: connection-only
preflights against a kubesim cluster that holds every GET /version for
20 s (a slow API server). While all 100 jobs are in flight the process
holds far fewer than 100 PostgreSQL connections (a job waiting on its
cluster gives its connection back to the pool: the workers' pool has 32,
so 100 jobs in flight at once prove it) and uses little CPU (waiting does
not spin); every cluster's job then succeeds exactly once.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["campaign_100_in_flight_few_connections_no_spin"]

# One tenant owns all 100 jobs here: lift the per-tenant cap on running jobs
# (default workers - 1, the fairness rule of docs/SECURITY.md) so that all of
# them can be in flight at once.
os.environ["FERRY_TENANT_MAX_RUNNING_JOBS"] = "0"
ks = Kubesim(["--cluster", "big=tke-fresh"], TESTS, prefix="ferry-campaignscale-ks-")
KUBECONFIG = open(ks.cluster("big")["kubeconfig"]).read()
f = start("campaignscale", TESTS, workers=100, extra_args=["--lease-seconds", "20"])
acme = f.tenant("acme")
OP = f.token(acme, "operator")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def t_scale():
    for i in range(100):
        r = f.post("/v1/clusters", {"name": "s%03d" % i, "profile": "tke", "kubeconfig": KUBECONFIG,
                                    "labels": {"fleet": "big"}}, OP)
        check_eq(r.status, 201, "cluster")
    ks.slow("big", 20000)   # every job waits 20 s on GET /version
    r = f.post("/v1/campaigns", {"name": "big", "selector": "fleet=big", "kind": "preflight",
                                 "params": {"connection_only": True},
                                 "strategy": {"canary": 0, "max_in_flight": 100}}, OP)
    check_eq(r.status, 201, "campaign %r" % r)
    cid = r.json()["id"]
    end = time.time() + 60
    while time.time() < end:
        if f.sql("SELECT count(*) FROM jobs WHERE state = 'running'") == "100":
            break
        time.sleep(0.2)
    running = f.sql("SELECT count(*) FROM jobs WHERE state = 'running'")
    if running != "100":  # say why in the log before failing
        print("# jobs by state: %s" % f.sql("SELECT string_agg(state || '=' || n, ' ') FROM "
                                          "(SELECT state, count(*) n FROM jobs GROUP BY state) s"))
        print("# campaign: %s" % f.get("/v1/campaigns/" + cid, OP).text[:800])
        print("# ferryd log tail: %s" % open(f.log_path, errors="replace").read()[-3000:])
    check_eq(running, "100", "100 jobs running at once")
    time.sleep(1)
    conns = int(f.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND pid <> pg_backend_pid()"))
    c0, t0 = cpu_seconds(f.proc.pid), time.time()
    time.sleep(3)
    cpu = (cpu_seconds(f.proc.pid) - c0) / (time.time() - t0)
    running = int(f.sql("SELECT count(*) FROM jobs WHERE state = 'running'"))
    check(running >= 90, "still ~100 in flight while measuring (%d)" % running)
    note = "100 jobs in flight: %d PostgreSQL connections, %.0f%% of one core" % (conns, cpu * 100)
    print("# " + note, flush=True)
    if os.environ.get("FERRY_SCALE_REPORT"):  # figures for BENCHMARKS.md
        open(os.environ["FERRY_SCALE_REPORT"], "w").write(note + "\n")
    check(conns <= 52, "PostgreSQL connections with 100 jobs in flight: %d" % conns)
    check(cpu < 0.5, "CPU while 100 jobs wait: %.0f%% of a core" % (cpu * 100))
    end = time.time() + 180
    while time.time() < end:
        c = f.get("/v1/campaigns/" + cid, OP).json()
        if c["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 100), "campaign")
    per = f.sql("SELECT count(*) FROM jobs GROUP BY cluster_id").split()
    check_eq(sorted(int(x) for x in per), [1] * 100, "one job per cluster")


run_test(TESTS[0], t_scale)
finish(f)
