#!/usr/bin/env python3
"""Fleet campaigns with several ferryd processes on one database (issue 11).

Two processes advance two campaigns of 30 clusters each at once
(connection-only preflights against kubesim, which holds each GET /version
1 s: a slow API server); one process is killed with SIGKILL in the middle
of a wave and started again. Every member cluster gets exactly
one job per campaign, every job succeeds, max_in_flight holds throughout
(a dead process's jobs count as in flight until another takes them over),
and both processes worked. Then PostgreSQL itself is restarted (immediate
mode) in the middle of another campaign: it still finishes with one job per
cluster. A member job cancelled alone (a dry-run install, slow the same
way) fails the campaign.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["campaign_two_processes_kill9_exactly_once", "campaign_survives_postgresql_restart",
         "campaign_member_job_cancelled_alone_fails_campaign"]

ks = Kubesim(["--cluster", "ha=tke-fresh", "--ready-delay-ms", "20"], TESTS, prefix="ferry-campaignha-ks-")
KUBECONFIG = open(ks.cluster("ha")["kubeconfig"]).read()
ks.slow("ha", 1000)   # every job waits 1 s on GET /version
CHARTS = os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")
os.environ["FERRY_CHARTS_DIR"] = CHARTS   # for the dry-run installs (API check and workers)
f = start("campaignha", TESTS, workers=3, extra_args=["--lease-seconds", "3", "--node-id", "b"])
acme = f.tenant("acme")
OP = f.token(acme, "operator")


def spawn(node):
    log = open(os.path.join(f.tmp, "ferryd-%s.log" % node), "ab")
    return subprocess.Popen([f.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", "3",
                             "--lease-seconds", "3", "--node-id", node], env=f.env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def max_overlap(intervals):
    ev = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


def t_ha():
    for i in range(60):
        r = f.post("/v1/clusters", {"name": "h%02d" % i, "profile": "tke", "kubeconfig": KUBECONFIG,
                                    "labels": {"fleet": "a" if i < 30 else "b"}}, OP)
        check_eq(r.status, 201, "cluster")
    a = spawn("a")
    try:
        cids = []
        for sel in ("fleet=a", "fleet=b"):
            r = f.post("/v1/campaigns", {"name": sel, "selector": sel, "kind": "preflight",
                                         "params": {"connection_only": True},
                                         "strategy": {"canary": 1, "max_in_flight": 5, "waves": ["30%"]}}, OP)
            check_eq(r.status, 201, "campaign %r" % r)
            cids.append(r.json()["id"])
        # Mid-wave: some clusters of the first campaign done, some running.
        end = time.time() + 120
        while time.time() < end:
            c = f.get("/v1/campaigns/" + cids[0], OP).json()
            if c["counts"]["succeeded"] >= 6 and c["counts"]["running"] >= 3:
                break
            time.sleep(0.05)
        check(time.time() < end, "campaign reached mid-wave")
        a.send_signal(signal.SIGKILL)
        a.wait()
        time.sleep(1)
        a = spawn("a")
        for cid in cids:
            end = time.time() + 240
            while time.time() < end:
                c = f.get("/v1/campaigns/" + cid, OP).json()
                if c["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.2)
            check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 30), "campaign %s" % cid)
            per = f.sql("SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'campaign:%s:%%'"
                        " GROUP BY cluster_id" % cid).split()
            check_eq(sorted(int(x) for x in per), [1] * 30, "exactly one job per cluster")
            check_eq(f.sql("SELECT count(*) FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
                           " WHERE x.campaign_id = '%s' AND j.state = 'succeeded'" % cid), "30", "jobs succeeded")
            rows = f.sql("SELECT extract(epoch from j.started_at), extract(epoch from j.finished_at)"
                         " FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
                         " WHERE x.campaign_id = '%s' AND x.wave > 0" % cid)
            iv = [tuple(float(v) for v in line.split("|")) for line in rows.splitlines()]
            check(max_overlap(iv) <= 5, "max_in_flight 5 held: %d" % max_overlap(iv))
        for path in (f.log_path, os.path.join(f.tmp, "ferryd-a.log")):
            check("claimed preflight job" in open(path, errors="replace").read(), "%s ran jobs" % path)
        taken = f.sql("SELECT count(*) FROM jobs WHERE attempt > 1")
        check(int(taken) >= 1, "jobs of the killed process were taken over")
        log = open(os.path.join(f.tmp, "ferryd-a.log"), errors="replace").read()
        check(not re.search("AddressSanitizer|runtime error:", log), "sanitizer report in a's log")
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGTERM)
            a.wait(timeout=30)


def pg_restart():
    """Restart the suite's PostgreSQL (tests/run's, FERRY_TEST_PG_HOST) at once."""
    import glob
    host = os.environ["FERRY_TEST_PG_HOST"]
    pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    # -l: the server must not inherit our stdout pipe (run() would wait for it)
    cmd = [pg_ctl, "-D", os.path.join(host, "data"), "-l", os.path.join(host, "server.log"), "-m", "immediate",
           "-w", "restart"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "pg_ctl restart: %s %s" % (out.stdout, out.stderr))


def t_pg_restart():
    if not os.environ.get("FERRY_TEST_PG_HOST"):
        raise AssertionError("needs tests/run's PostgreSQL (FERRY_TEST_PG_HOST)")
    for i in range(20):
        r = f.post("/v1/clusters", {"name": "r%02d" % i, "profile": "tke", "kubeconfig": KUBECONFIG,
                                    "labels": {"fleet": "r"}}, OP)
        check_eq(r.status, 201, "cluster")
    r = f.post("/v1/campaigns", {"name": "restart", "selector": "fleet=r", "kind": "preflight",
                                 "params": {"connection_only": True},
                                 "strategy": {"canary": 1, "max_in_flight": 4}}, OP)
    cid = r.json()["id"]
    end = time.time() + 120
    while time.time() < end:
        c = f.get("/v1/campaigns/" + cid, OP).json()
        if c["counts"]["succeeded"] >= 4 and c["counts"]["running"] >= 2:
            break
        time.sleep(0.05)
    pg_restart()
    end = time.time() + 240
    while time.time() < end:
        r = f.get("/v1/campaigns/" + cid, OP)
        if r.status == 200 and r.json()["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    c = r.json()
    check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 20), "campaign after the restart")
    per = f.sql("SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'campaign:%s:%%' GROUP BY cluster_id" % cid)
    check_eq(sorted(int(x) for x in per.split()), [1] * 20, "exactly one job per cluster")


def t_member_cancelled():
    for i in range(3):
        check_eq(f.post("/v1/clusters", {"name": "m%d" % i, "profile": "tke", "kubeconfig": KUBECONFIG,
                                         "labels": {"fleet": "m"}}, OP).status, 201, "cluster")
    # Dry-run installs (a connection-only preflight cannot be cancelled: its
    # one phase runs to its end); the cancelled one stops at its chart
    # render or the next phase boundary.
    r = f.post("/v1/campaigns", {"name": "m", "selector": "fleet=m", "kind": "install",
                                 "params": {"dry_run": True}, "strategy": {"canary": 0, "max_in_flight": 3}}, OP)
    check_eq(r.status, 201, "campaign %r" % r)
    cid = r.json()["id"]
    end = time.time() + 60
    job = None
    while time.time() < end and not job:
        items = f.get("/v1/campaigns/%s/clusters?state=running" % cid, OP).json()["items"]
        job = items[0]["job_id"] if items else None
        time.sleep(0.1)
    check(job, "a member running")
    check_eq(f.post("/v1/jobs/%s/cancel" % job, None, OP).status, 202, "cancel one job")
    end = time.time() + 300
    while time.time() < end:
        c = f.get("/v1/campaigns/" + cid, OP).json()
        if c["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    check_eq((c["state"], c["reason"]), ("failed", "1 of 3 clusters cancelled"), "not a success")


run_test(TESTS[0], t_ha)
run_test(TESTS[2], t_member_cancelled)
run_test(TESTS[1], t_pg_restart)
finish(f)
