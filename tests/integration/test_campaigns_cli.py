#!/usr/bin/env python3
"""`ferry fleet` end to end (issue 11): the real ferry binary against a real
ferryd with clusters in kubesim, as a cron job would run it. Every exit
status of --wait: 0 (every cluster succeeded), 1 (paused by the failure
budget, the reason on stderr; and cancelled while waiting), 2 (HTTP 4xx as
one "title: detail" line, usage, connection refused), 3 (--timeout while a
maintenance window keeps the campaign paused). Progress lines per wave and
per cluster; the same Idempotency-Key run twice gives one campaign;
list/get/clusters/pause/resume/approve/cancel.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, skip_all, start  # noqa: E402

TESTS = ["fleet_cli_wait_succeeds", "fleet_cli_budget_exit_1", "fleet_cli_idempotency_key",
         "fleet_cli_timeout_exit_3", "fleet_cli_controls", "fleet_cli_cancel_while_waiting_exit_1",
         "fleet_cli_errors_exit_2", "campaign_sse_stream"]

FERRY = os.path.join(os.environ.get("FERRY_BUILD", ""), "ferry")
if not os.path.exists(FERRY):
    skip_all(TESTS, "needs the ferry binary (run via tests/run)")
charts = os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")
ks = Kubesim(["--clusters", "4", "--cluster", "gr=tke-globalrouter", "--ready-delay-ms", "20"], TESTS,
             prefix="ferry-fleet-cli-")
f = start("fleetcli", TESTS, workers=4, extra_args=["--charts-dir", charts])
acme = f.tenant("acme")
OP = f.token(acme, "operator", name="cron")
SERVER = "http://127.0.0.1:%d" % f.port

for name, labels in [("c1", {"env": "ok", "all": "y"}), ("c2", {"env": "ok", "all": "y"}),
                     ("gr", {"env": "bad", "all": "y"}), ("c3", {"env": "ok", "all": "y"}),
                     ("c4", {"env": "ok", "all": "y"})]:
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "labels": labels,
                                "kubeconfig": open(ks.cluster(name)["kubeconfig"]).read()}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "<rc=%d stdout=%r stderr=%r>" % (self.rc, self.out[-1500:], self.err[-1500:])


def env(server=SERVER):
    e = dict(os.environ)
    e["FERRY_SERVER"] = server
    e["FERRY_TOKEN"] = OP
    return e


def ferry(*args, server=SERVER, timeout=240):
    p = subprocess.run([FERRY] + list(args), env=env(server), capture_output=True, text=True, timeout=timeout)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in p.stderr, "sanitizer report: %s" % p.stderr[-3000:])
    return Run(p.returncode, p.stdout, p.stderr)


def campaign_id(out):
    m = re.search(r"campaign ([0-9a-f-]{36})", out)
    check(m, "campaign id in %r" % out)
    return m.group(1)


def t_wait_ok():
    r = ferry("fleet", "preflight", "--selector", "env=ok", "--canary", "1", "--max-in-flight", "2",
              "--waves", "50%,100%", "--wait")
    check_eq(r.rc, 0, "exit 0: %r" % r)
    for line in ("canary wave 0: started (1 clusters)", "canary wave 0: done (1 succeeded",
                 "wave 1: started (2 clusters)", "wave 2: done (1 succeeded", "c4 succeeded",
                 "campaign succeeded"):
        check(line in r.out, "progress line %r in %r" % (line, r.out))
    # The canary ends before wave 1 starts, in the output as in fact; the
    # final state comes last.
    check(r.out.index("canary wave 0: done") < r.out.index("wave 1: started"), "order")
    check(r.out.strip().endswith("campaign succeeded"), "last line: %r" % r.out)
    cid = campaign_id(r.out)
    c = f.get("/v1/campaigns/" + cid, OP).json()
    check_eq((c["state"], c["counts"]["succeeded"]), ("succeeded", 4), "campaign")


def t_budget():
    r = ferry("fleet", "preflight", "--selector", "all=y", "--canary", "1", "--max-in-flight", "1",
              "--max-failures", "1", "--wait")
    check_eq(r.rc, 1, "exit 1: %r" % r)
    check("failure budget reached: 1 of 1" in r.err, "reason on stderr: %r" % r.err)
    check("gr failed: " in r.out, "the failing cluster's line: %r" % r.out)


def t_idem():
    args = ["fleet", "preflight", "--selector", "env=ok", "--idempotency-key", "fleet-2026-12-07", "--wait"]
    r1 = ferry(*args)
    check_eq(r1.rc, 0, "first %r" % r1)
    r2 = ferry(*args)
    check_eq(r2.rc, 0, "second %r" % r2)
    check_eq(campaign_id(r2.out), campaign_id(r1.out), "same campaign")
    check_eq(f.sql("SELECT count(*) FROM campaigns WHERE idempotency_key = 'fleet-2026-12-07'"), "1", "one")


def t_timeout():
    r = ferry("fleet", "preflight", "--selector", "env=ok", "--window", "0 0 1 1 *", "--window-duration", "1h",
              "--wait", "--timeout", "4s", "--name", "wintimeout")
    check_eq(r.rc, 3, "exit 3: %r" % r)
    check("outside maintenance window until" in r.out, "pause line: %r" % r.out)
    check("timed out" in r.err, "stderr %r" % r.err)


def t_controls():
    r = ferry("fleet", "list", "--state", "paused")
    check_eq(r.rc, 0, "list %r" % r)
    check("wintimeout" in r.out, "list shows the window campaign: %r" % r.out)
    cid = re.search(r"^([0-9a-f-]{36}) .*wintimeout", r.out, re.M).group(1)
    r = ferry("fleet", "get", cid)
    check(r.rc == 0 and "outside maintenance window" in r.out and "wave 0" in r.out, "get %r" % r)
    r = ferry("fleet", "clusters", cid, "--state", "waiting")
    check(r.rc == 0 and r.out.count("outside window") == 4, "clusters %r" % r)
    r = ferry("fleet", "pause", cid)
    check(r.rc == 0 and "paused: paused by cron" in r.out, "pause %r" % r)
    r = ferry("fleet", "approve", cid)
    check_eq(r.rc, 2, "approve refused: %r" % r)
    check("Conflict: " in r.err and "not waiting for an approval" in r.err, "one line: %r" % r.err)
    r = ferry("fleet", "resume", cid, "--max-failures", "3")
    check(r.rc == 0 and "running" in r.out, "resume %r" % r)
    r = ferry("--output", "json", "fleet", "get", cid)
    check_eq(r.rc, 0, "json get")
    check('"max_failures": 3' in r.out or '"max_failures":3' in r.out, "budget raised: %r" % r.out[:300])
    r = ferry("fleet", "cancel", cid)
    check(r.rc == 0 and "cancelled: cancelled by cron" in r.out, "cancel %r" % r)


def t_cancel_waiting():
    p = subprocess.Popen([FERRY, "fleet", "preflight", "--selector", "env=ok", "--window", "0 0 1 1 *",
                          "--window-duration", "1h", "--wait", "--name", "tocancel"], env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cid = None
    end = time.time() + 30
    while time.time() < end and not cid:
        items = f.get("/v1/campaigns?state=paused", OP).json()["items"]
        cid = next((c["id"] for c in items if c["name"] == "tocancel"), None)
        time.sleep(0.2)
    check(cid, "campaign paused by its window")
    check_eq(f.post("/v1/campaigns/%s/cancel" % cid, None, OP).status, 200, "cancel")
    out, err = p.communicate(timeout=60)
    check_eq(p.returncode, 1, "exit 1: %r %r" % (out, err))
    check("cancelled by cron" in err, "reason on stderr: %r" % err)


def t_errors():
    r = ferry("fleet", "preflight", "--selector", "env=", "--wait")
    check_eq(r.rc, 2, "422: %r" % r)
    check_eq(len(r.err.strip().splitlines()), 1, "one line")
    check("No clusters match" in r.err, "title: %r" % r.err)
    r = ferry("fleet", "upgrade", "--selector", "env=ok", "--version", "9.9.9")
    check(r.rc == 2 and "No chart for this version" in r.err, "no chart: %r" % r)
    r = ferry("fleet", "preflight", "--selector", "env=ok", "--max-in-flight", "150%")
    check(r.rc == 2 and "percentage" in r.err, "percent: %r" % r)
    r = ferry("fleet", "upgrade", "--selector", "env=ok")
    check(r.rc == 2 and "usage" in r.err, "usage without --version: %r" % r)
    r = ferry("fleet", "preflight", "--selector", "env=ok", "--bogus")
    check(r.rc == 2 and "unknown flag --bogus" in r.err, "flag %r" % r)
    r = ferry("fleet", "get", "not-an-id")
    check_eq(r.rc, 2, "bad id")
    r = ferry("fleet", "list", server="http://127.0.0.1:1")
    check_eq(r.rc, 2, "connection refused: %r" % r)


def t_sse():
    import http.client
    import json
    import threading
    r = f.post("/v1/campaigns", {"name": "sse", "selector": "env=ok", "kind": "preflight",
                                 "strategy": {"canary": 1, "max_in_flight": 2, "pause_between_waves": "2s"}}, OP)
    cid = r.json()["id"]
    check_eq(f.get("/v1/campaigns/%s/stream" % cid, f.token(f.tenant("strangers"), "viewer")).status, 404,
             "another tenant")
    events = []

    def reader():
        conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=120)
        conn.request("GET", "/v1/campaigns/%s/stream" % cid, headers={"Authorization": "Bearer " + OP})
        resp = conn.getresponse()
        events.append(("status", resp.status, resp.getheader("Content-Type")))
        kind = None
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
        conn.close()
        events.append(("end",))

    t = threading.Thread(target=reader)
    t.start()
    t.join(120)
    check(not t.is_alive(), "the stream ends by itself when the campaign is done")
    check_eq(events[0][:2], ("status", 200), "status")
    check(events[0][2].startswith("text/event-stream"), "content type")
    camps = [e[1] for e in events if e[0] == "campaign"]
    check_eq(camps[-1]["state"], "succeeded", "last campaign event")
    check(len(camps) >= 3, "live updates, not one snapshot: %d" % len(camps))
    seen = {}
    for e in events:
        if e[0] == "cluster":
            seen.setdefault(e[1]["cluster_name"], []).append(e[1]["state"])
    check_eq(sorted(seen), ["c1", "c2", "c3", "c4"], "every member")
    check(all(v[-1] == "succeeded" for v in seen.values()), "each ends succeeded: %r" % seen)
    check(any("waiting" in v or "pending" in v for v in seen.values()), "waiting states streamed: %r" % seen)


for name, fn in zip(TESTS, [t_wait_ok, t_budget, t_idem, t_timeout, t_controls, t_cancel_waiting, t_errors,
                            t_sse]):
    run_test(name, fn)
finish(f)
