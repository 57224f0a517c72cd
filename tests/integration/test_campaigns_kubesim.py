#!/usr/bin/env python3
"""Fleet campaigns advanced by ferryd against kubesim (issue 11).

20 simulated clusters labelled env=prod, three of them on the
tke-globalrouter scenario whose preflight refuses (at list positions 2, 6
and 11). Campaigns of preflight jobs (cheap, real: every read-only check of
the profile over HTTPS) check: the canary runs first and alone; never more
than max_in_flight jobs at once (from the jobs' created/finished times); the
failure budget pauses at exactly the failure that reaches it, with the
reason, and nothing after it starts; resume with a higher budget finishes
the rest; a manual approval gate; pause_between_waves; a maintenance window
that opens at the next minute; cancel mid-wave (dry-run installs made slow
by kubesim holding each cluster's GET /version; the cancel stops them at
their chart render or next phase) and a cluster busy with another job; one real install campaign and
the upgrade to the same version after it, whose clusters are all skipped
(zero-change runs, release revision unchanged). Every member cluster gets
exactly one job per campaign.
"""
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, is_problem, run_test, start  # noqa: E402

TESTS = ["campaign_window_opens_later", "campaign_canary_first_max_in_flight",
         "campaign_budget_pause_and_resume", "campaign_manual_approval",
         "campaign_pause_between_waves", "campaign_cancel_mid_wave_and_busy",
         "campaign_install_then_skip"]

GR = {2, 6, 11}   # positions of the global-router clusters
names = []
args = ["--ready-delay-ms", "20"]
for i in range(20):
    n = ("gr%d" % i) if i in GR else ("c%d" % i)
    names.append(n)
    args += ["--cluster", "%s=%s" % (n, "tke-globalrouter" if i in GR else "tke-fresh")]
for n in ("w1", "w2", "u1", "u2"):
    args += ["--cluster", "%s=tke-fresh" % n]
ks = Kubesim(args, TESTS, prefix="ferry-campaign-ks-")

charts = os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")
f = start("campaignks", TESTS, workers=6, extra_args=["--charts-dir", charts, "--lease-seconds", "5"])
acme = f.tenant("acme")
OP = f.token(acme, "operator", name="alice")

cluster_ids = {}


def register(name, labels):
    kc = open(ks.cluster(name)["kubeconfig"]).read()
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "kubeconfig": kc, "labels": labels}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))
    cluster_ids[name] = r.json()["id"]


for n in names:
    register(n, {"env": "prod"})
for n in ("w1", "w2"):
    register(n, {"env": "win"})
for n in ("u1", "u2"):
    register(n, {"env": "upg"})


def create(body, status=201):
    body = dict(body)
    body.setdefault("name", "t")
    body.setdefault("kind", "preflight")
    body.setdefault("selector", "env=prod")
    r = f.post("/v1/campaigns", body, OP)
    check_eq(r.status, status, "create %r" % r)
    return r.json()


def get(cid):
    return f.get("/v1/campaigns/" + cid, OP).json()


def members(cid):
    return f.get("/v1/campaigns/%s/clusters?limit=200" % cid, OP).json()["items"]


def wait_campaign(cid, cond, timeout, what):
    return f.wait_campaign(cid, OP, cond, timeout, what)


def jobs_of(cid):
    """Per member: (position, cluster, job state, created, started, finished) as epoch floats."""
    rows = f.sql("SELECT x.position, x.cluster_name, j.state, extract(epoch from j.created_at),"
                 " extract(epoch from j.started_at), extract(epoch from j.finished_at)"
                 " FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
                 " WHERE x.campaign_id = '%s' ORDER BY x.position" % cid)
    out = []
    for line in rows.splitlines():
        p = line.split("|")
        out.append((int(p[0]), p[1], p[2], float(p[3]), float(p[4] or 0), float(p[5] or 0)))
    return out


def jobs_per_cluster(cid):
    """Jobs started for each member by this campaign (by the campaign's job key)."""
    rows = f.sql("SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'campaign:%s:%%'"
                 " GROUP BY cluster_id" % cid)
    return [int(x) for x in rows.split()] if rows else []


def max_overlap(intervals):
    ev = []
    for a, b in intervals:
        ev.append((a, 1))
        ev.append((b, -1))
    ev.sort(key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


state = {}


def start_window():
    # Opens at the next whole minute (UTC), for an hour.
    now = datetime.datetime.now(datetime.timezone.utc)
    nxt = (now + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (nxt - now).total_seconds() < 5:  # too close to call: the one after
        nxt += datetime.timedelta(minutes=1)
    cron = "%d %d * * *" % (nxt.minute, nxt.hour)
    c = create({"name": "win", "selector": "env=win", "strategy": {
        "canary": 0, "max_in_flight": 2, "window": {"cron": cron, "duration": "1h", "time_zone": "UTC"}}})
    state["win"] = (c["id"], nxt)
    c = wait_campaign(c["id"], lambda c: c["state"] == "paused", 20, "window pause")
    check_eq(c["pause_kind"], "window", "pause kind")
    check_eq(c["reason"], "outside maintenance window until %02d:%02d UTC" % (nxt.hour, nxt.minute), "reason")
    check(all(m["state"] == "waiting" and m["reason"] == "outside window" for m in members(c["id"])),
          "members wait for the window")
    check_eq(jobs_per_cluster(c["id"]), [], "nothing started before the window")


def t_window():
    cid, nxt = state["win"]
    c = wait_campaign(cid, lambda c: c["state"] == "succeeded", 150, "window campaign done")
    first = min(j[3] for j in jobs_of(cid))
    check(first >= nxt.timestamp() - 0.5, "first job at %s, window opened %s" % (first, nxt.timestamp()))
    check_eq(c["counts"]["succeeded"], 2, "both ran")


def t_canary_mif():
    c = create({"name": "mif", "strategy": {"canary": 1, "max_in_flight": 3, "max_failures": 10}})
    cid = c["id"]
    c = wait_campaign(cid, lambda c: c["state"] in ("succeeded", "failed"), 240, "campaign end")
    check_eq(c["state"], "failed", "three clusters refuse preflight")
    check_eq(c["reason"], "3 of 20 clusters failed", "reason")
    check_eq((c["counts"]["succeeded"], c["counts"]["failed"]), (17, 3), "counts")
    js = jobs_of(cid)
    check_eq(len(js), 20, "one job per member")
    check_eq(sorted(jobs_per_cluster(cid)), [1] * 20, "exactly one job per cluster")
    canary = js[0]
    check_eq(canary[1], "c0", "canary is the first cluster")
    check(all(j[4] >= canary[5] for j in js[1:]), "nothing started before the canary finished")
    # Running = claimed until finished (created_at is the advancer pass's
    # transaction start, earlier than the commit that made the job exist).
    peak = max_overlap([(j[4], j[5]) for j in js[1:]])
    check(peak <= 3, "at most 3 in flight, saw %d" % peak)
    check(peak >= 2, "jobs did run side by side (peak %d)" % peak)
    for m in members(cid):
        if m["cluster_name"].startswith("gr"):
            check_eq(m["state"], "failed", m["cluster_name"])
            check(m["error"] and "lobal" in m["error"], "the job's error: %r" % m["error"])


def t_budget():
    c = create({"name": "budget", "strategy": {"canary": 1, "max_in_flight": 1, "max_failures": 2}})
    cid = c["id"]
    c = wait_campaign(cid, lambda c: c["state"] == "paused", 240, "budget pause")
    check_eq((c["pause_kind"], c["reason"]), ("budget", "failure budget reached: 2 of 2"), "pause")
    audited = f.sql("SELECT count(*) FROM audit_log WHERE method = 'ADVANCE' AND target = '%s'"
                    " AND path = '/v1/campaigns/%s/paused:budget' AND token_id IS NULL" % (cid, cid))
    check_eq(audited, "1", "the advancer's pause is in the audit log")
    ms = members(cid)
    started = [m["position"] for m in ms if m["job_id"]]
    check_eq(started, list(range(7)), "stopped right after the second failure (position 6)")
    check_eq([m["position"] for m in ms if m["state"] == "failed"], [2, 6], "failed positions")
    time.sleep(1.5)
    check_eq(len(jobs_per_cluster(cid)), 7, "nothing more starts while paused")
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, None, OP), 422)
    r = f.post("/v1/campaigns/%s/resume" % cid, {"max_failures": 5}, OP)
    check_eq(r.status, 200, "resume %r" % r)
    c = wait_campaign(cid, lambda c: c["state"] in ("succeeded", "failed"), 240, "end")
    check_eq((c["state"], c["counts"]["failed"], c["counts"]["succeeded"]), ("failed", 3, 17), "finished the rest")
    check_eq(sorted(jobs_per_cluster(cid)), [1] * 20, "one job per cluster")


def t_manual():
    c = create({"name": "gate", "selector": "env=prod,!nope", "strategy": {
        "canary": 1, "waves": [4, "100%"], "max_in_flight": 4, "max_failures": 10,
        "pause_between_waves": "manual"}})
    cid = c["id"]
    c = wait_campaign(cid, lambda c: c["state"] == "paused", 60, "gate")
    check_eq((c["pause_kind"], c["reason"]), ("approval", "approval needed for wave 1"), "gate reason")
    check_eq(len(jobs_per_cluster(cid)), 1, "only the canary ran")
    ms = members(cid)
    check_eq(ms[1]["reason"], "approval needed for wave 1", "member reason")
    check_eq(ms[9]["reason"], "wave 2 not started", "later wave reason")
    check_eq(f.post("/v1/campaigns/%s/approve" % cid, None, OP).status, 200, "approve")
    c = wait_campaign(cid, lambda c: c["state"] == "paused" and "wave 2" in (c["reason"] or ""), 120, "gate 2")
    check_eq(len(jobs_per_cluster(cid)), 5, "canary + wave 1")
    check_eq(f.post("/v1/campaigns/%s/approve" % cid, None, OP).status, 200, "approve 2")
    c = wait_campaign(cid, lambda c: c["state"] in ("succeeded", "failed"), 240, "end")
    check_eq(c["counts"]["failed"] + c["counts"]["succeeded"], 20, "all ran")


def t_pause_between():
    c = create({"name": "gap", "selector": "env=win", "strategy": {
        "canary": 1, "max_in_flight": 2, "pause_between_waves": "3s"}})
    cid = c["id"]
    c = wait_campaign(cid, lambda c: c["state"] == "succeeded", 120, "end")
    js = jobs_of(cid)
    check(js[1][4] - js[0][5] >= 3.0, "wave 1 began %.2fs after the canary ended" % (js[1][4] - js[0][5]))


def t_cancel_busy():
    # Every job of this test waits on its cluster's GET /version (kubesim
    # holds it) 3 s; c1's own job waits 25 s on each of its two requests
    # (until the campaign has seen c1 busy), longer than the canary takes.
    for n in names:
        if n == "c1":
            ks.slow(n, 25000, "/")
        else:
            ks.slow(n, 3000)
    try:
        cancel_busy()
    finally:
        for n in names:
            ks.slow(n, 0)


def cancel_busy():
    # A job of its own keeps c1 busy: the campaign waits for it with a reason.
    r = f.post("/v1/clusters/%s/jobs" % cluster_ids["c1"], {"kind": "preflight",
                                                            "params": {"connection_only": True}}, OP)
    check_eq(r.status, 202, "own job")
    own = r.json()["id"]
    c = create({"name": "cx", "kind": "install", "params": {"dry_run": True}, "strategy": {
        "canary": 1, "max_in_flight": 4, "max_failures": 10}})
    cid = c["id"]
    # c0 (canary) then wave 1: c1 is busy.
    end = time.time() + 120
    busy = None
    while time.time() < end and not busy:
        for m in members(cid):
            if m["cluster_name"] == "c1" and (m["reason"] or "").startswith("cluster busy with job"):
                busy = m
        time.sleep(0.2)
    check(busy, "c1 waits: cluster busy")
    check_eq(busy["reason"], "cluster busy with job " + own, "names the job")
    ks.slow("c1", 3000)   # the own job ends after its current request
    wait_campaign(cid, lambda c: c["counts"]["running"] >= 3, 60, "wave running")
    r = f.post("/v1/campaigns/%s/cancel" % cid, None, OP)
    check_eq(r.status, 200, "cancel")
    check_eq(r.json()["state"], "cancelled", "cancelled at once")
    n_started = len(jobs_per_cluster(cid))
    end = time.time() + 180
    while time.time() < end and int(f.sql("SELECT count(*) FROM campaign_clusters WHERE campaign_id = '%s'"
                                          " AND state = 'running'" % cid)) > 0:
        time.sleep(0.2)
    ms = members(cid)
    check(all(m["state"] in ("succeeded", "cancelled") for m in ms), "every member ended: %r"
          % sorted(set(m["state"] for m in ms)))
    check(any(m["state"] == "cancelled" and m["job_id"] for m in ms), "a running job was cancelled")
    check_eq(len(jobs_per_cluster(cid)), n_started, "nothing started after cancel")
    check_eq(f.sql("SELECT active FROM campaigns WHERE id = '%s'" % cid), "f", "advancer let go")


def t_install_skip():
    c = create({"name": "inst", "selector": "env=upg", "kind": "install",
                "params": {"chart_version": "1.18.3"}, "strategy": {"canary": 1, "max_in_flight": 2}})
    c = wait_campaign(c["id"], lambda c: c["state"] in ("succeeded", "failed"), 600, "install")
    check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 2), "installed: %r" % members(c["id"]))
    c = create({"name": "upg", "selector": "env=upg", "kind": "upgrade",
                "params": {"chart_version": "1.18.3"}, "strategy": {"canary": 1, "max_in_flight": 2}})
    c = wait_campaign(c["id"], lambda c: c["state"] in ("succeeded", "failed"), 600, "upgrade")
    check_eq((c["state"], c["counts"]["skipped"]), ("succeeded", 2), "skipped: %r" % members(c["id"]))
    for m in members(c["id"]):
        check(m["reason"].startswith("already at the target"), "reason %r" % m["reason"])
        job = f.get("/v1/jobs/" + m["job_id"], OP).json()
        check_eq(job["result"]["release"]["revision"], 1, "no new revision")


run_test("campaign_window_setup", start_window)
for name, fn in zip(TESTS[1:], [t_canary_mif, t_budget, t_manual, t_pause_between, t_cancel_busy,
                                t_install_skip]):
    run_test(name, fn)
run_test(TESTS[0], t_window)
finish(f)
