#!/usr/bin/env python3
"""The `ferry` pipeline commands end to end: a real ferryd (own database,
two workers) with clusters in kubesim (slow jobs: kubesim holds the
cluster's GET /version), driven through the real `ferry` binary as a CI job would drive it.

Checked: clusters list/get (table, json, selector, name resolution),
preflight --wait exit 0 on a fresh TKE cluster and exit 1 with the reason on
a Global Router cluster, install --dry-run --wait exit 0 with the flags
turned into job params, Idempotency-Key reuse giving the same job, jobs
list/get/cancel/wait, --timeout exit 3, a 409 and a 401 answered as one
"title: detail" line with exit 2, usage errors, and the token absent from
everything the CLI printed. Standard library only.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Kubesim, check, check_eq, finish, run_test, skip_all, start)  # noqa: E402

TESTS = ["cli_clusters_list", "cli_clusters_get", "cli_preflight_wait_succeeds",
         "cli_preflight_wait_global_router_fails", "cli_install_dry_run_wait",
         "cli_idempotency_key_same_job", "cli_jobs_list_get", "cli_timeout_cancel_conflict",
         "cli_wait_survives_ferryd_restart", "cli_bad_token", "cli_usage_errors", "cli_token_file", "cli_token_never_printed"]

build = os.environ.get("FERRY_BUILD", "")
FERRY = os.path.join(build, "ferry")
if not os.path.exists(FERRY):
    skip_all(TESTS, "needs the ferry binary (run via tests/run)")
shared = os.environ.get("FERRY_SHARED", "")
charts = os.path.join(shared, "charts")
if not os.path.isdir(charts):
    skip_all(TESTS, "no chart archives in %s" % charts)

ks = Kubesim(["--clusters", "2", "--cluster", "gr=tke-globalrouter"], TESTS, prefix="ferry-cli-kubesim-")
info = ks.info

os.environ["FERRY_CHARTS_DIR"] = charts
f = start("cli", TESTS, workers=2)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
SERVER = "http://127.0.0.1:%d" % f.port
ALL_OUTPUT = []  # everything ferry printed, checked for the token at the end


def sim_cluster(name):
    return ks.cluster(name)


def register(name, simname, labels):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "labels": labels,
                                "kubeconfig": open(sim_cluster(simname)["kubeconfig"]).read()}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))
    return r.json()["id"]


IDS = {}


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "<rc=%d stdout=%r stderr=%r>" % (self.rc, self.out[-1500:], self.err[-1500:])


def ferry(*args, token=OP, env=None, timeout=180):
    e = dict(os.environ)
    for k in ("FERRY_TOKEN", "FERRY_TOKEN_FILE", "FERRY_CONTEXT", "FERRY_OUTPUT", "FERRY_TIMEOUT"):
        e.pop(k, None)
    e["FERRY_CONFIG"] = os.path.join(f.tmp, "no-such-config")  # not the user's contexts
    e["FERRY_SERVER"] = SERVER
    if token is not None:
        e["FERRY_TOKEN"] = token
    if env:
        e.update(env)
    p = subprocess.run([FERRY] + list(args), env=e, capture_output=True, text=True, timeout=timeout)
    r = Run(p.returncode, p.stdout, p.stderr)
    ALL_OUTPUT.append(p.stdout + p.stderr)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in p.stderr, "sanitizer report from ferry %s: %s" % (" ".join(args), p.stderr[-3000:]))
    return r


def wait_idle(cid, timeout=120):
    """The cluster has no active job (tests must not trip the one-active rule)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = f.get("/v1/clusters/" + cid, OP).json()
        if not c.get("active_job_id"):
            return
        time.sleep(0.2)
    raise AssertionError("cluster %s still busy" % cid)


def setup():
    IDS["ci-1"] = register("ci-1", "c1", {"env": "ci", "team": "net"})
    IDS["ci-2"] = register("ci-2", "c2", {"env": "prod"})
    IDS["gr-1"] = register("gr-1", "gr", {"env": "ci", "router": "global"})


def t_clusters_list():
    r = ferry("clusters", "list")
    check_eq(r.rc, 0, "exit status %r" % r)
    lines = r.out.strip().splitlines()
    check(lines[0].split()[:3] == ["NAME", "ID", "PROFILE"], "table header: %r" % lines[0])
    for n in ("ci-1", "ci-2", "gr-1"):
        check(any(l.split()[0] == n and IDS[n] in l for l in lines[1:]), "%s with its id in %r" % (n, r.out))
    check(any("env=ci,team=net" in l for l in lines), "labels column: %r" % r.out)
    r = ferry("--output", "json", "clusters", "list", "--selector", "env=ci")
    check_eq(r.rc, 0, "json exit %r" % r)
    items = json.loads(r.out)
    check_eq(sorted(c["name"] for c in items), ["ci-1", "gr-1"], "selector env=ci")
    # global options may follow the command too
    r = ferry("clusters", "list", "--selector=env=ci,router!=global", "--output=json")
    check_eq([c["name"] for c in json.loads(r.out)], ["ci-1"], "selector with != %r" % r)
    r = ferry("clusters", "list", "--selector", "env=nowhere")
    check_eq(r.rc, 0, "empty list exit")
    check_eq(len(r.out.strip().splitlines()), 1, "only the header: %r" % r.out)


def t_clusters_get():
    r = ferry("clusters", "get", "ci-1")
    check_eq(r.rc, 0, "by name %r" % r)
    check("id                %s" % IDS["ci-1"] in r.out, "id row: %r" % r.out)
    check("profile           tke" in r.out, "profile row: %r" % r.out)
    r = ferry("clusters", "get", IDS["ci-2"], "-o", "json")
    check_eq(r.rc, 0, "by id %r" % r)
    check_eq(json.loads(r.out)["name"], "ci-2", "json by id")
    r = ferry("clusters", "get", "no-such-cluster")
    check_eq(r.rc, 2, "unknown name %r" % r)
    check("no cluster named no-such-cluster" in r.err, "message %r" % r.err)
    # a well-formed id of nothing: the API's 404 problem as one line
    r = ferry("clusters", "get", "00000000-0000-4000-8000-000000000000")
    check_eq(r.rc, 2, "unknown id %r" % r)
    check_eq(len(r.err.strip().splitlines()), 1, "one line: %r" % r.err)
    check(r.err.startswith("ferry: Not found: ") and "(HTTP 404)" in r.err, "problem line %r" % r.err)


def t_preflight_ok():
    r = ferry("preflight", "ci-1", "--wait")
    check_eq(r.rc, 0, "exit status %r" % r)
    lines = r.out.splitlines()
    jid = lines[0].strip()
    check_eq(len(jid), 36, "first line is the job id: %r" % lines[0])
    check(any("phase preflight: succeeded" in l for l in lines), "succeeded transition: %r" % r.out)
    check(any("job %s: succeeded" % jid in l for l in lines), "final state line: %r" % r.out)
    job = f.get("/v1/jobs/" + jid, OP).json()
    check_eq((job["kind"], job["state"], job["cluster_id"]), ("preflight", "succeeded", IDS["ci-1"]), "job")
    # the log lines of the job are all printed
    ev = f.get("/v1/jobs/%s/events?limit=200" % jid, OP).json()["items"]
    check(ev, "job has events")
    for e in ev:
        check(e["message"] in r.out, "log line %r printed" % e["message"])
    # --connection-only sends the connection_only param
    r = ferry("preflight", IDS["ci-1"], "--connection-only", "--wait", "-o", "json")
    check_eq(r.rc, 0, "connection-only %r" % r)
    job = json.loads(r.out)
    check_eq(job["params"], {"connection_only": True}, "params")
    check_eq(job["state"], "succeeded", "state")
    check("phase preflight: succeeded" in r.err, "progress goes to stderr in json mode: %r" % r.err)


def t_preflight_gr():
    r = ferry("preflight", "gr-1", "--wait")
    check_eq(r.rc, 1, "exit status %r" % r)
    check("global router" in r.err.lower(), "error printed: %r" % r.err)
    check("failed" in r.err, "state in the message: %r" % r.err)
    check(any("phase preflight: failed" in l for l in r.out.splitlines()), "phase failure shown %r" % r.out)


def t_install_dry_run():
    wait_idle(IDS["ci-1"])
    vals = os.path.join(f.tmp, "values.yaml")
    with open(vals, "w") as fh:
        fh.write("debug:\n  enabled: true\n")
    r = ferry("install", "ci-1", "--version", "1.18.3", "-f", vals, "--set", "operator.replicas=1",
              "--image-mirror", "--dry-run", "--wait", timeout=300)
    check_eq(r.rc, 0, "exit status %r" % r)
    jid = r.out.splitlines()[0].strip()
    job = f.get("/v1/jobs/" + jid, OP).json()
    check_eq(job["state"], "succeeded", "job state")
    check_eq(job["kind"], "install", "kind")
    check_eq(job["params"], {"chart_version": "1.18.3", "values_yaml": ["debug:\n  enabled: true\n"],
                             "set": ["operator.replicas=1"], "image_mirror": True, "dry_run": True}, "params")
    for ph in job["phases"]:
        check("phase %s: %s" % (ph["name"], ph["state"]) in r.out, "phase %s shown: %r" % (ph["name"], r.out))
    check("dry run" in r.out, "dry-run log lines shown")
    # nothing installed: the cluster has no Cilium release
    check_eq(f.get("/v1/clusters/" + IDS["ci-1"], OP).json()["cilium_version"], None, "dry run wrote nothing")


def t_idempotency():
    wait_idle(IDS["ci-1"])
    r1 = ferry("install", "ci-1", "--dry-run", "--idempotency-key", "pipeline-run-77")
    check_eq(r1.rc, 0, "first %r" % r1)
    jid = r1.out.strip()
    check_eq(len(jid), 36, "prints only the job id: %r" % r1.out)
    r2 = ferry("install", "ci-1", "--dry-run", "--idempotency-key", "pipeline-run-77")
    check_eq(r2.rc, 0, "retry %r" % r2)
    check_eq(r2.out.strip(), jid, "same job id")
    r3 = ferry("jobs", "wait", jid)
    check_eq(r3.rc, 0, "wait %r" % r3)
    # after it finished, the same key still names the same job (no new run)
    r4 = ferry("install", "ci-1", "--dry-run", "--idempotency-key", "pipeline-run-77", "--wait")
    check_eq(r4.rc, 0, "retry after finish %r" % r4)
    check_eq(r4.out.splitlines()[0].strip(), jid, "same job after finish")
    n = f.sql("SELECT count(*) FROM jobs WHERE cluster_id = '%s' AND kind = 'install'" % IDS["ci-1"])
    check_eq(n, "2", "one job for the key (plus the earlier dry run)")


def t_jobs_list_get():
    r = ferry("jobs", "list", "--cluster", "ci-1", "-o", "json", "--limit", "0")
    check_eq(r.rc, 0, "list %r" % r)
    jobs = json.loads(r.out)
    check(len(jobs) >= 4, "ci-1 jobs: %d" % len(jobs))
    check(all(j["cluster_id"] == IDS["ci-1"] for j in jobs), "filtered by cluster")
    r = ferry("jobs", "list", "--state", "failed")
    check_eq(r.rc, 0, "list failed %r" % r)
    lines = r.out.strip().splitlines()
    check(lines[0].split()[:4] == ["ID", "CLUSTER", "KIND", "STATE"], "header %r" % lines[0])
    check(len(lines) >= 2 and all(" failed " in l for l in lines[1:]), "failed jobs only: %r" % r.out)
    check(any("gr-1" in l for l in lines[1:]), "the Global Router preflight is listed: %r" % r.out)
    jid = jobs[0]["id"]
    r = ferry("jobs", "get", jid)
    check_eq(r.rc, 0, "get %r" % r)
    check("id                %s" % jid in r.out, "id row")
    check("PHASE" in r.out and "API CALLS" in r.out, "phase table: %r" % r.out)
    r = ferry("jobs", "list", "--state", "bogus")
    check_eq(r.rc, 2, "bad state %r" % r)
    check(r.err.startswith("ferry: ") and len(r.err.strip().splitlines()) == 1, "one line %r" % r.err)


def t_timeout_cancel_conflict():
    cid = IDS["ci-2"]
    wait_idle(cid)
    # A dry-run install on a cluster whose every request kubesim holds 1 s:
    # its preflight phase alone takes many seconds; the cancel ends the job
    # (the chart render stops, or at the next phase boundary).
    ks.slow("c2", 1000, "/")
    try:
        timeout_cancel_conflict(cid)
    finally:
        ks.slow("c2", 0)


def timeout_cancel_conflict(cid):
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": {"dry_run": True}}, OP)
    check_eq(r.status, 202, "slow job %r" % r)
    jid = r.json()["id"]
    t0 = time.time()
    w = ferry("jobs", "wait", jid, "--timeout", "1.5")
    took = time.time() - t0
    check_eq(w.rc, 3, "timeout exit %r" % w)
    check("timed out" in w.err, "timeout message %r" % w.err)
    check(took < 10, "returned soon after the timeout (%.1fs)" % took)
    # a second job on a busy cluster: the 409 problem as one line
    c = ferry("preflight", "ci-2")
    check_eq(c.rc, 2, "conflict exit %r" % c)
    check_eq(len(c.err.strip().splitlines()), 1, "one line %r" % c.err)
    check(c.err.startswith("ferry: Conflict: ") and jid in c.err and "(HTTP 409)" in c.err,
          "names the active job: %r" % c.err)
    x = ferry("jobs", "cancel", jid)
    check_eq(x.rc, 0, "cancel %r" % x)
    check("cancel requested for job %s" % jid in x.out, "cancel output %r" % x.out)
    w = ferry("jobs", "wait", jid, "--timeout", "180")
    check_eq(w.rc, 1, "cancelled job exit 1 %r" % w)
    check("job %s cancelled" % jid in w.err, "message %r" % w.err)
    # cancelling a finished job: 409 problem, exit 2
    x = ferry("jobs", "cancel", jid)
    check_eq(x.rc, 2, "cancel finished %r" % x)
    check("already finished" in x.err, "detail %r" % x.err)


def t_restart():
    """`jobs wait` rides out a ferryd restart (connection refused for a few
    seconds) and still reports the job's result."""
    cid = IDS["ci-2"]
    wait_idle(cid)
    ks.slow("c2", 2500)  # the job's GET /version takes 2.5 s
    try:
        restart(cid)
    finally:
        ks.slow("c2", 0)


def restart(cid):
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight", "params": {"connection_only": True}}, OP)
    check_eq(r.status, 202, "slow job %r" % r)
    jid = r.json()["id"]
    e = dict(os.environ, FERRY_SERVER=SERVER, FERRY_TOKEN=OP)
    waiter = subprocess.Popen([FERRY, "jobs", "wait", jid, "--timeout", "120"], env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    f.proc.send_signal(signal.SIGTERM)
    check_eq(f.proc.wait(timeout=30), 0, "first ferryd exit status")
    time.sleep(2)
    args = [f.ferryd, "serve", "--listen", "127.0.0.1:%d" % f.port, "--workers", "2",
            "--web-root", os.path.join(os.environ.get("FERRY_SRC", "."), "web")]
    f.proc = subprocess.Popen(args, env=f.env, stdout=f.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while open(f.log_path).read().count("listening on") < 2:
        check(f.proc.poll() is None and time.time() < deadline, "second ferryd did not start")
        time.sleep(0.05)
    out, err = waiter.communicate(timeout=150)
    ALL_OUTPUT.append(out + err)
    check_eq(waiter.returncode, 0, "wait exit status; stdout %r stderr %r" % (out[-1500:], err[-1500:]))
    check("cannot reach %s; retrying" % SERVER in out, "the outage was reported: %r" % out)
    check("job %s: succeeded" % jid in out, "final state: %r" % out)
    check_eq(f.get("/v1/jobs/" + jid, OP).json()["state"], "succeeded", "job state")


def t_bad_token():
    bad = "fy_" + "A" * 43
    want = f.get("/v1/clusters", bad).json()
    r = ferry("clusters", "list", token=bad)
    check_eq(r.rc, 2, "exit status %r" % r)
    check_eq(r.err.strip(), "ferry: %s: %s (HTTP 401)" % (want["title"], want["detail"]), "problem line")
    check(bad not in r.out + r.err, "token echoed")
    r = ferry("install", "ci-1", "--dry-run", "--wait", token=bad)
    check_eq(r.rc, 2, "install with bad token %r" % r)
    check(want["detail"] in r.err and bad not in r.out + r.err, "detail, no token %r" % r.err)
    r = ferry("clusters", "list", token=None)
    check_eq(r.rc, 2, "no token %r" % r)
    check("FERRY_TOKEN" in r.err, "says how to give one %r" % r.err)
    r = ferry("clusters", "list", env={"FERRY_SERVER": "http://127.0.0.1:1"})
    check_eq(r.rc, 2, "unreachable server %r" % r)
    check("cannot reach http://127.0.0.1:1" in r.err, "connection message %r" % r.err)


def t_usage():
    r = ferry("install")
    check_eq(r.rc, 2, "missing cluster %r" % r)
    check("usage: ferry install" in r.err, "usage %r" % r.err)
    r = ferry("install", "ci-1", "--no-such-flag=s3cr3t")
    check_eq(r.rc, 2, "unknown flag %r" % r)
    check("--no-such-flag" in r.err and "s3cr3t" not in r.err, "flag named, value not echoed %r" % r.err)
    r = ferry("--token", "s3cr3t-value", "clusters", "list")
    check_eq(r.rc, 2, "--token refused %r" % r)
    check("s3cr3t-value" not in r.err and "FERRY_TOKEN" in r.err, "refusal %r" % r.err)
    r = ferry("clusters", "list", "--output", "xml")
    check_eq(r.rc, 2, "bad output %r" % r)
    check("--output must be table, json or yaml" in r.err, "names the flag %r" % r.err)
    r = ferry("jobs", "wait", "not-a-uuid")
    check_eq(r.rc, 2, "bad id %r" % r)
    r = ferry("jobs", "wait", "00000000-0000-4000-8000-000000000000")
    check_eq(r.rc, 2, "unknown job %r" % r)
    check("Not found" in r.err, "404 line %r" % r.err)
    r = ferry("--help")
    check_eq(r.rc, 0, "help %r" % r)
    check("install CLUSTER" in r.out and "exit status" in r.out, "help text")
    # ferry template is still dispatched as before
    r = ferry("template", "--help")
    check_eq(r.rc, 0, "template help %r" % r)
    check(r.out.startswith("usage: ferry template"), "template usage %r" % r.out)


def t_token_file():
    path = os.path.join(f.tmp, "token")
    with open(path, "w") as fh:
        fh.write(OP + "\n")
    r = ferry("--token-file", path, "clusters", "list", token=None)
    check_eq(r.rc, 0, "token file %r" % r)
    check("ci-1" in r.out, "listed")
    r = ferry("--token-file", os.path.join(f.tmp, "missing"), "clusters", "list", token=None)
    check_eq(r.rc, 2, "missing file %r" % r)


def t_token_never_printed():
    check(len(ALL_OUTPUT) > 20, "enough runs recorded")
    for out in ALL_OUTPUT:
        check(OP not in out, "the operator token appeared in CLI output")
        check(OP[3:20] not in out, "a piece of the token appeared in CLI output")


try:
    setup()
    run_test("cli_clusters_list", t_clusters_list)
    run_test("cli_clusters_get", t_clusters_get)
    run_test("cli_preflight_wait_succeeds", t_preflight_ok)
    run_test("cli_preflight_wait_global_router_fails", t_preflight_gr)
    run_test("cli_install_dry_run_wait", t_install_dry_run)
    run_test("cli_idempotency_key_same_job", t_idempotency)
    run_test("cli_jobs_list_get", t_jobs_list_get)
    run_test("cli_timeout_cancel_conflict", t_timeout_cancel_conflict)
    run_test("cli_wait_survives_ferryd_restart", t_restart)
    run_test("cli_bad_token", t_bad_token)
    run_test("cli_usage_errors", t_usage)
    run_test("cli_token_file", t_token_file)
    run_test("cli_token_never_printed", t_token_never_printed)
finally:
    ks.stop()
finish(f)
