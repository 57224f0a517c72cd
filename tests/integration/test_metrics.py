#!/usr/bin/env python3
"""/metrics after real jobs: the job, phase, retry, takeover, cluster API and
render metrics move by what actually happened, the exposition passes
`promtool check metrics`, and the alert rules and the dashboard in
docs/observability/ are checked against it (`promtool check rules`, every
metric the dashboard and the rules use is one ferryd exports).

Set-up: kubesim with one tke-fresh cluster; one API-only ferryd (the
apitest harness, its own database) and worker processes started here
against the same database (`ferryd serve --workers 1`), because the job
metrics are per process: the process whose worker ran a job counts it.
Jobs: a full preflight (cluster API calls and a chart render), a
connection-only preflight whose first /version answer is a 503 or a 429
(kubesim's fault injection: one retry of class server_error / throttled),
and a job whose worker is SIGKILLed mid-phase (kubesim holds /version for
3 s) and taken over by another process once its 2 s lease expired.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Kubesim, check, check_eq, finish, run_test, start)  # noqa: E402

TESTS = ["metrics_job_counters_move", "metrics_cluster_api_matches_kubesim", "metrics_render_counted",
         "metrics_retry_classes", "metrics_lease_takeover", "metrics_no_id_labels",
         "metrics_promtool_check_metrics", "metrics_promtool_check_rules", "metrics_dashboard_uses_exported_metrics",
         "metrics_db_gauges_on_every_process"]

SRC = os.environ.get("FERRY_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OBS = os.path.join(SRC, "docs", "observability")
SHARED = os.environ.get("FERRY_SHARED") or os.path.join(SRC, "..", "shared")
CHARTS = os.path.join(SHARED, "charts")

ks = Kubesim(["--cluster", "c1=tke-fresh"], TESTS, prefix="ferry-metrics-")
f = start("metrics", TESTS, workers=0, extra_args=["--charts-dir", CHARTS])
acme = f.tenant("acme")
OP = f.token(acme, "operator")
c1 = ks.cluster("c1")
r = f.post("/v1/clusters", {"name": "sim-c1", "profile": "tke", "kubeconfig": open(c1["kubeconfig"]).read()}, OP)
CID = r.json()["id"] if r.status == 201 else None


class Worker:
    """`ferryd serve --workers 1` on the harness's database."""

    def __init__(self, name, lease=2):
        self.name = name
        self.log_path = os.path.join(f.tmp, "worker-%s.log" % name)
        env = dict(f.env, FERRY_RETRY_BASE_MS="100")
        self.proc = subprocess.Popen(
            [f.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", "1", "--lease-seconds", str(lease),
             "--node-id", name, "--charts-dir", CHARTS, "--web-root", os.path.join(SRC, "web")],
            env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            m = re.search(r"listening on http://[^:]+:(\d+)/", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        check(self.port, "worker %s did not start: %s" % (name, open(self.log_path).read()[-2000:]))

    def text(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as resp:
            return resp.read().decode()

    def metrics(self):
        return parse(self.text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        log = open(self.log_path).read()
        check(self.proc.returncode in (0, -signal.SIGKILL), "worker %s exit %s" % (self.name, self.proc.returncode))
        check("AddressSanitizer" not in log and "runtime error" not in log, "sanitizer report in %s" % self.name)


def parse(text):
    """{'name{labels}': value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        out[key] = float(val)
    return out


def get(m, key):
    return m.get(key, 0.0)


def job_wait(jid, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = f.get("/v1/jobs/" + jid, OP).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError("job %s did not finish" % jid)


def enqueue(params):
    r = f.post("/v1/clusters/%s/jobs" % CID, {"kind": "preflight", "params": params}, OP)
    check_eq(r.status, 202, "job %r" % r)
    return r.json()["id"]


W = Worker("w1")
before = W.metrics()
ks.admin("POST", "/_sim/clusters/c1/stats/reset")
JOB1 = job_wait(enqueue({}))
sim_total = ks.admin("GET", "/_sim/clusters/c1/stats")["total"]
after = W.metrics()


def t_jobs():
    check_eq(JOB1["state"], "succeeded", "preflight: %s" % JOB1.get("error"))
    k = 'ferry_jobs_total{kind="preflight",state="succeeded"}'
    check_eq(get(after, k) - get(before, k), 1.0, k)
    k = 'ferry_jobs_total{kind="install",state="succeeded"}'
    check(k in before and get(after, k) == 0, "series of every kind exist from the start at 0")
    k = 'ferry_job_phase_runs_total{phase="preflight",outcome="succeeded"}'
    check_eq(get(after, k) - get(before, k), 1.0, k)
    k = 'ferry_job_phase_duration_seconds_count{phase="preflight"}'
    check_eq(get(after, k) - get(before, k), 1.0, k)
    inf = get(after, 'ferry_job_phase_duration_seconds_bucket{phase="preflight",le="+Inf"}')
    check_eq(inf, get(after, k), "+Inf bucket = count")
    check(get(after, 'ferry_job_phase_duration_seconds_sum{phase="preflight"}') > 0, "duration sum")


def t_api():
    # every request kubesim saw during the job, counted by the phase that made it
    ours = sum(v - get(before, k) for k, v in after.items()
               if k.startswith('ferry_cluster_api_requests_total{phase="preflight"'))
    check(sim_total > 3, "kubesim saw the preflight: %r" % sim_total)
    check_eq(ours, float(sim_total), "cluster API requests = kubesim's count")
    ok = get(after, 'ferry_cluster_api_requests_total{phase="preflight",code_class="2xx"}')
    check(ok > 0, "2xx class")
    # the job's own per-phase count agrees too
    phases = JOB1.get("phases") or []
    calls = sum(p.get("api_calls", 0) for p in phases)
    check(calls == 0 or calls == sim_total, "job api_calls %r vs kubesim %r" % (calls, sim_total))


def t_render():
    k = 'ferry_chart_renders_total{outcome="ok"}'
    check_eq(get(after, k) - get(before, k), 1.0, "the preflight's chart preview render")
    k = "ferry_chart_render_duration_seconds_count"
    check_eq(get(after, k) - get(before, k), 1.0, k)


def t_retries():
    for code, cls in ((503, "server_error"), (429, "throttled")):
        m0 = W.metrics()
        ks.fail_next("c1", 1, code)
        job = job_wait(enqueue({"connection_only": True}))
        ks.admin("PUT", "/_sim/clusters/c1/faults", {})
        check_eq(job["state"], "succeeded", "job after one %d: %s" % (code, job.get("error")))
        m1 = W.metrics()
        k = 'ferry_job_retries_total{class="%s"}' % cls
        check_eq(get(m1, k) - get(m0, k), 1.0, k)
        k = 'ferry_job_phase_runs_total{phase="preflight",outcome="retry"}'
        check_eq(get(m1, k) - get(m0, k), 1.0, k)
        klass = "429" if code == 429 else "5xx"
        k = 'ferry_cluster_api_requests_total{phase="preflight",code_class="%s"}' % klass
        check_eq(get(m1, k) - get(m0, k), 1.0, k)


def t_takeover():
    W.stop()   # only the two processes below work now
    a = Worker("wa", lease=2)
    ks.slow("c1", 3000)
    jid = enqueue({"connection_only": True})
    deadline = time.time() + 30
    while time.time() < deadline:
        job = f.get("/v1/jobs/" + jid, OP).json()
        if job["state"] == "running" and any(p.get("state") == "running" for p in job.get("phases") or []):
            break
        time.sleep(0.05)
    check_eq(job["state"], "running", "job running on wa")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    ks.slow("c1", 0)
    b = Worker("wb", lease=2)
    try:
        m0 = b.metrics()
        check_eq(get(m0, "ferry_job_lease_takeovers_total"), 0.0, "no takeover yet")
        job = job_wait(jid)
        check_eq(job["state"], "succeeded", "taken over: %s" % job.get("error"))
        m1 = b.metrics()
        check_eq(get(m1, "ferry_job_lease_takeovers_total"), 1.0, "wb counted the takeover")
        k = 'ferry_jobs_total{kind="preflight",state="succeeded"}'
        check_eq(get(m1, k), 1.0, "wb counts the job it finished")
    finally:
        b.stop()


def t_no_ids():
    body = W.text()
    for ident in (CID, JOB1["id"], acme):
        check(ident not in body, "an id in /metrics: %s" % ident)
    labels = set(re.findall(r'[{,]([a-z_]+)="', body))
    check(labels <= {"method", "route", "status", "le", "kind", "state", "phase", "outcome", "class",
                     "code_class", "campaign_state"} | {"state"}, "label names: %r" % labels)


def promtool():
    p = shutil.which("promtool")
    if not p:
        raise EnvironmentError("promtool is not installed (Debian package prometheus; ./dev deps)")
    return p


LIVE = {}


def t_check_metrics():
    pt = promtool()
    for name, text in (("worker", W.text()), ("api", f.get("/metrics").text)):
        LIVE[name] = text
        out = subprocess.run([pt, "check", "metrics"], input=text, capture_output=True, text=True)
        check_eq(out.returncode, 0, "promtool check metrics (%s): %s%s" % (name, out.stdout, out.stderr))


def t_check_rules():
    pt = promtool()
    rules = os.path.join(OBS, "ferry-alerts.yml")
    out = subprocess.run([pt, "check", "rules", rules], capture_output=True, text=True)
    check_eq(out.returncode, 0, "promtool check rules: %s%s" % (out.stdout, out.stderr))
    check("SUCCESS" in out.stdout, out.stdout)
    names = set(re.findall(r"alert: (\w+)", open(rules).read()))
    for want in ("FerryJobQueueBackingUp", "FerryJobsFailing", "FerryLeaseTakeovers", "FerryDatabaseUnavailable"):
        check(want in names, "alert %s" % want)
    exported = exported_names()
    for expr in re.findall(r"expr: (.*)", open(rules).read()):
        for m in re.findall(r"\b(ferry_[a-z_]+)", expr):
            check(m in exported, "rules use %s, which ferryd does not export" % m)


def exported_names():
    names = set()
    for text in LIVE.values() or [W.text()]:
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                n, t = line.split()[2:4]
                names.add(n)
                if t == "histogram":
                    names |= {n + "_bucket", n + "_sum", n + "_count"}
    return names


def t_dashboard():
    d = json.load(open(os.path.join(OBS, "ferry-dashboard.json")))
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    check(len(exprs) >= 8, "dashboard panels: %d" % len(exprs))
    exported = exported_names()
    for e in exprs:
        for m in re.findall(r"\b(ferry_[a-z_]+)", e):
            check(m in exported, "dashboard uses %s, which ferryd does not export" % m)


def t_db_gauges():
    # the queue gauges come from the database: the API-only process and a
    # worker process report the same numbers
    api = parse(f.get("/metrics").text)
    wk = W.metrics()
    for k in ('ferry_jobs{state="succeeded"}', "ferry_job_queue_depth", "ferry_up"):
        check(k in api and k in wk, "%s on both" % k)
        check_eq(api[k], wk[k], k)
    check_eq(api["ferry_up"], 1.0, "ferry_up")
    check("ferry_job_queue_oldest_age_seconds" in api, "oldest age gauge")
    check(api["ferry_job_queue_oldest_age_seconds"] >= 0, "oldest age >= 0")


if __name__ == "__main__":
    if not CID:
        for n in TESTS:
            print("FAIL: %s: cluster import failed: %r" % (n, r))
        sys.exit(1)
    run_test("metrics_job_counters_move", t_jobs)
    run_test("metrics_cluster_api_matches_kubesim", t_api)
    run_test("metrics_render_counted", t_render)
    run_test("metrics_retry_classes", t_retries)
    run_test("metrics_no_id_labels", t_no_ids)
    run_test("metrics_promtool_check_metrics", t_check_metrics)
    run_test("metrics_promtool_check_rules", t_check_rules)
    run_test("metrics_dashboard_uses_exported_metrics", t_dashboard)
    run_test("metrics_db_gauges_on_every_process", t_db_gauges)
    run_test("metrics_lease_takeover", t_takeover)
    ks.stop()
    finish(f)
