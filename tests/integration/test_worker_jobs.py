#!/usr/bin/env python3
"""Worker integration tests: real ferryd processes on one real PostgreSQL,
running real jobs against kubesim clusters over HTTPS.

Jobs take time and fail the way they do in production: kubesim holds a
cluster's requests (latency on the paths a phase calls) or answers 503
(fault injection, apitest.Kubesim.slow / fail_next); ferryd has no
test-only code path. Clusters are registered once through the API (an
API-only ferryd, apitest.Ferry) and copied with SQL (same sealed
credentials) where a test needs many; jobs are enqueued with SQL (the API
has its own tests); everything else goes through the worker processes.
The jobs: an install (11 phases, on kubesim cluster "inst"), check jobs
on the installed cluster (preflight + drift check, two phases, no
writes), connection-only preflights (one phase: GET /version and the node
list).

Covered: a worker SIGKILLed in the middle of an install and the install
finishing exactly once after restart (the phase that was running runs
again, no other does; one Helm release revision); a stalled (SIGSTOPped)
worker whose lease expires, the takeover, and the stale worker's writes
refused when it wakes up; two ferryd processes sharing 200 queued jobs,
each executed exactly once (kubesim counts 200 GET /version); cancel at a
phase boundary; SIGTERM releasing the lease without waiting for the job;
phase retries with backoff (503 answers) and giving up; NOTIFY waking idle
workers.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402
from apitest import Kubesim  # noqa: E402

BUILD = os.environ.get("FERRY_BUILD", "")
FERRYD = os.path.join(BUILD, "ferryd")
SHARED = os.environ.get("FERRY_SHARED") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                        "..", "shared")
CHARTS = os.path.join(SHARED, "charts")

TESTS = ["worker_sigkill_mid_job_finishes_once", "worker_lease_expiry_takeover_fences_stale_worker",
         "worker_two_processes_200_jobs_exactly_once", "worker_cancel_at_phase_boundary",
         "worker_sigterm_releases_lease", "worker_phase_retry_backoff", "worker_notify_wakes_idle_workers"]

# One kubesim cluster per test, so that one test's faults touch no other.
SIM = ["inst", "many", "retry", "giveup", "notify"]

results = {"passed": 0, "failed": 0}
procs = []
F = None        # the API-only ferryd (database, master key, registration)
KS = None       # kubesim
URL = None
TMP = None
INST = None     # the ferry cluster id of kubesim cluster "inst" (installed by the first test)


def psql(sql, url=None):
    out = subprocess.run(["psql", url or URL, "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("psql failed: %s: %s" % (sql[:200], out.stderr.strip()))
    return out.stdout.strip()


def val(sql):
    return psql(sql).split("\n")[0]


class Ferryd:
    def __init__(self, name, workers=2, lease=2, extra_env=None):
        self.name = name
        self.log = os.path.join(TMP, "%s.log" % name)
        env = dict(F.env)
        env.update({
            "FERRY_LISTEN": "127.0.0.1:0",
            "FERRY_WORKERS": str(workers),
            "FERRY_LEASE_SECONDS": str(lease),
            "FERRY_NODE_ID": name,
            "FERRY_RETRY_BASE_MS": "100",
            "FERRY_LOG_LEVEL": "info",
            "FERRY_CHARTS_DIR": CHARTS,
            "FERRY_DATA_DIR": os.path.join(TMP, "var-" + name),
        })
        env.update(extra_env or {})
        self.logf = open(self.log, "ab")
        self.p = subprocess.Popen([FERRYD, "serve"], env=env, stdout=self.logf,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(self)

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return "timeout"

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return ""


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Check:
    def __init__(self):
        self.errors = []

    def __call__(self, cond, what):
        if not cond:
            self.errors.append(what)


def run(name, fn):
    c = Check()
    try:
        fn(c)
    except Exception as e:  # a failed wait or psql error fails the test
        c.errors.append("%s: %s" % (type(e).__name__, e))
    for p in list(procs):
        if p.p.poll() is None:
            p.p.kill()
            p.p.wait()
    for n in SIM:   # faults never outlive their test
        KS.slow(n, 0)
    if c.errors:
        results["failed"] += 1
        print("FAIL: %s: %s" % (name, "; ".join(c.errors)))
        for p in procs:
            sys.stdout.write("  -- %s log tail:\n%s" % (p.name, p.tail()))
    else:
        results["passed"] += 1
        print("PASS: %s" % name)
    procs.clear()
    sys.stdout.flush()


TENANT = None
BASE = {}       # kubesim cluster name -> the ferry cluster registered for it


def register(sim, name):
    """Register kubesim cluster sim as ferry cluster name (tke profile)."""
    op = F.token(TENANT, "operator", name="op-" + name)
    kc = open(KS.cluster(sim)["kubeconfig"]).read()
    r = F.post("/v1/clusters", {"name": name, "profile": "tke", "kubeconfig": kc}, op)
    if r.status != 201:
        raise RuntimeError("register %s: %r" % (name, r))
    return r.json()["id"]


def new_clusters(n, prefix, sim):
    """Ferry clusters prefix-1..n, all on kubesim cluster sim: copies of
    BASE[sim]'s row (same address, CA and sealed credentials)."""
    psql("INSERT INTO clusters (tenant_id, name, profile, api_server, tls_server_name, ca_bundle, credentials, "
         " credentials_key_id, auth_kind, insecure_skip_tls_verify) "
         "SELECT tenant_id, '%s-' || g, profile, api_server, tls_server_name, ca_bundle, credentials, "
         " credentials_key_id, auth_kind, insecure_skip_tls_verify "
         "FROM clusters, generate_series(1, %d) g WHERE id = '%s'" % (prefix, n, BASE[sim]))


def enqueue(prefix, params, n=1, sim="many", kind="preflight", notify=True):
    """One job per new cluster prefix-1..n on kubesim cluster sim; returns
    the job ids."""
    new_clusters(n, prefix, sim)
    return enqueue_on("name LIKE '%s-%%'" % prefix, params, kind, notify)


def enqueue_on(where, params, kind, notify=True):
    # Queued and announced (NOTIFY ferry_jobs, payload the job id, as
    # db/jobs.c does) in one transaction, as ferryd enqueues; notify=False:
    # queued silently, for the workers' poll to find.
    out = psql("WITH j AS (INSERT INTO jobs (tenant_id, cluster_id, kind, params) "
               "SELECT tenant_id, id, '%s', '%s'::jsonb FROM clusters "
               "WHERE %s RETURNING id) "
               "SELECT id%s FROM j" % (kind, json.dumps(params), where,
                                       ", pg_notify('ferry_jobs', id::text)" if notify else ""))
    return [l.split("|")[0] for l in out.split("\n") if l]


def check_job():
    """A check job (preflight, then the drift check) on the installed cluster."""
    (jid,) = enqueue_on("id = '%s'" % INST, {}, "check")
    return jid


def job(jid):
    row = psql("SELECT state, attempt, coalesce(error, '') FROM jobs WHERE id = '%s'" % jid)
    state, attempt, error = row.split("|", 2)
    return state, int(attempt), error


def phase_attempts(jid):
    out = psql("SELECT seq, state, attempts, name FROM job_phases WHERE job_id = '%s' ORDER BY seq" % jid)
    return [tuple(l.split("|")) for l in out.split("\n") if l]


def count_events(jid, like):
    return int(val("SELECT count(*) FROM job_events WHERE job_id = '%s' AND message LIKE '%s'" % (jid, like)))


def phase_running(jid, seq):
    return val("SELECT state FROM job_phases WHERE job_id = '%s' AND seq = %d" % (jid, seq)) == "running"


def phase_seq(jid, name):
    return int(val("SELECT seq FROM job_phases WHERE job_id = '%s' AND name = '%s'" % (jid, name)))


def sim_stats(sim):
    return KS.admin("GET", "/_sim/clusters/%s/stats" % sim)


# ---------------------------------------------------------------- the tests

def t_sigkill_mid_job(c):
    """An install whose worker dies (SIGKILL) in its apf phase, which
    kubesim makes slow (every flowcontrol request held 2.5 s)."""
    global INST
    INST = BASE["inst"]
    KS.slow("inst", 2500, "flowcontrol")
    (jid,) = enqueue_on("id = '%s'" % INST, {}, "install")
    a = Ferryd("kill-a", workers=1, lease=2)
    wait_for(lambda: phase_attempts(jid), 60, "the job's phases")
    apf = phase_seq(jid, "apf")
    wait_for(lambda: phase_running(jid, apf), 240, "phase apf to run on kill-a")
    a.signal(signal.SIGKILL)
    a.p.wait()
    c(job(jid)[0] == "running", "job should still look running after the kill")
    b = Ferryd("kill-b", workers=1, lease=2)
    wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 240, "the job to finish on kill-b")
    state, attempt, error = job(jid)
    c(state == "succeeded", "the install succeeded: %s %s" % (state, error))
    c(attempt == 2, "attempt should be 2, got %d" % attempt)
    ph = phase_attempts(jid)
    want = [(p[3], "2" if p[3] == "apf" else "1") for p in ph]
    c([(p[3], p[2]) for p in ph] == want and len(ph) >= 8,
      "apf ran twice, every other phase once: %s" % [(p[3], p[2]) for p in ph])
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    c(count_events(jid, "attempt 2: resumed by kill-b%") == 1, "resume event by kill-b")
    secrets = sorted(k for k in KS.admin("GET", "/_sim/clusters/inst/objects/core/secrets")
                     if "sh.helm.release.v1.cilium." in k)
    c(secrets == ["kube-system/sh.helm.release.v1.cilium.v1"] or
      (len(secrets) == 1 and secrets[0].endswith("/sh.helm.release.v1.cilium.v1")),
      "one Helm release revision on the cluster: %s" % secrets)
    rc = b.stop()
    c(rc == 0, "kill-b should exit 0 on SIGTERM, got %s" % rc)


def need_install(c):
    if not INST or job_state_of_install() != "succeeded":
        raise AssertionError("needs the install of the first test (worker_sigkill_mid_job_finishes_once)")


def job_state_of_install():
    return val("SELECT state FROM jobs WHERE cluster_id = '%s' AND kind = 'install' "
               "ORDER BY created_at DESC LIMIT 1" % INST)


def t_stalled_worker_fenced(c):
    need_install(c)
    KS.slow("inst", 1500, "/version")   # the preflight phase's first call
    jid = check_job()
    a = Ferryd("stall-a", workers=1, lease=2)
    wait_for(lambda: phase_running(jid, 1), 60, "phase preflight to run on stall-a")
    a.signal(signal.SIGSTOP)
    # Let the lease run out, then a second process takes the job over.
    b = Ferryd("stall-b", workers=1, lease=2)
    wait_for(lambda: val("SELECT lease_owner FROM jobs WHERE id = '%s'" % jid).startswith("stall-b"),
             60, "stall-b to take the job over")
    a.signal(signal.SIGCONT)   # the stale worker wakes up mid-phase
    wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 120, "the job to finish")
    time.sleep(1.0)            # give the stale worker time to try its writes
    c(job(jid)[0] == "succeeded", "the check job succeeded: %s" % (job(jid),))
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    ph = phase_attempts(jid)
    c(len(ph) == 2 and all(p[1] == "succeeded" for p in ph), "all phases succeeded: %s" % ph)
    c(len(ph) == 2 and ph[1][2] == "1", "the check phase ran once (stale worker fenced): %s" % ph)
    c(count_events(jid, "%resumed by stall-b%") == 1, "resume event")
    c(job(jid)[0] == "succeeded", "state stays succeeded")
    c(a.stop() == 0, "stall-a exits cleanly")
    c(b.stop() == 0, "stall-b exits cleanly")


def t_two_processes_200_jobs(c):
    KS.admin("POST", "/_sim/clusters/many/stats/reset")
    ids = enqueue("many", {"connection_only": True}, n=200, sim="many")
    c(len(ids) == 200, "200 jobs enqueued")
    a = Ferryd("many-a", workers=3, lease=10)
    b = Ferryd("many-b", workers=3, lease=10)
    wait_for(lambda: int(val("SELECT count(*) FROM jobs j JOIN clusters c ON c.id = j.cluster_id "
                             "WHERE c.name LIKE 'many-%' AND j.state IN ('succeeded', 'failed')")) == 200,
             300, "200 jobs to finish")
    per_job = psql("SELECT j.id, j.state, "
                   " (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.message LIKE 'job succeeded%'),"
                   " (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.message LIKE 'connected: %'),"
                   " (SELECT sum(attempts) FROM job_phases p WHERE p.job_id = j.id), j.attempt "
                   "FROM jobs j JOIN clusters c ON c.id = j.cluster_id WHERE c.name LIKE 'many-%'")
    rows = [l.split("|") for l in per_job.split("\n") if l]
    c(len(rows) == 200, "200 rows")
    bad = [r for r in rows if r[1:] != ["succeeded", "1", "1", "1", "1"]]
    c(not bad, "every job succeeded once, ran its phase once, was claimed once; bad: %s" % bad[:3])
    # The cluster's side: each job asked for the version exactly once.
    by_req = sim_stats("many")["by_request"]
    c(by_req.get("GET /version") == 200, "kubesim answered GET /version 200 times: %s" % by_req.get("GET /version"))
    by_a = int(val("SELECT count(*) FROM job_events WHERE message = 'job preflight started by many-a'"))
    by_b = int(val("SELECT count(*) FROM job_events WHERE message = 'job preflight started by many-b'"))
    c(by_a + by_b == 200, "200 starts in all, got %d + %d" % (by_a, by_b))
    c(by_a > 0 and by_b > 0, "both processes worked (%d / %d)" % (by_a, by_b))
    c(a.stop() == 0, "many-a exits cleanly")
    c(b.stop() == 0, "many-b exits cleanly")


def t_cancel_at_phase_boundary(c):
    need_install(c)
    KS.slow("inst", 2000, "/version")
    jid = check_job()
    a = Ferryd("cancel-a", workers=1, lease=5)
    wait_for(lambda: phase_running(jid, 1), 60, "phase preflight to run")
    psql("UPDATE jobs SET cancel_requested = true WHERE id = '%s'" % jid)
    wait_for(lambda: job(jid)[0] in ("cancelled", "succeeded", "failed"), 60, "the job to end")
    c(job(jid)[0] == "cancelled", "the job was cancelled: %s" % (job(jid),))
    ph = phase_attempts(jid)
    c(ph[0][1] == "succeeded", "the running phase completed: %s" % ph)
    c(len(ph) == 2 and ph[1][2] == "0", "the later phase never started: %s" % ph)
    c(count_events(jid, "job cancelled%") == 1, "one cancel finish event")
    c(a.stop() == 0, "cancel-a exits cleanly")


def t_sigterm_releases_lease(c):
    need_install(c)
    # Every request of the cluster held 1.5 s: the preflight takes ~3 s,
    # the drift check (dozens of reads) a minute or more.
    KS.slow("inst", 1500, "/")
    jid = check_job()
    a = Ferryd("term-a", workers=1, lease=30)
    wait_for(lambda: phase_running(jid, 1), 60, "phase preflight to run")
    t0 = time.time()
    rc = a.stop()
    c(rc == 0, "term-a exits 0 on SIGTERM, got %s" % rc)
    c(time.time() - t0 < 20, "shutdown does not wait for the job to end (%.1f s)" % (time.time() - t0))
    row = psql("SELECT state, coalesce(lease_owner, '-') FROM jobs WHERE id = '%s'" % jid)
    c(row == "queued|-", "lease released: the job is queued without owner (%s)" % row)
    KS.slow("inst", 0)
    b = Ferryd("term-b", workers=1, lease=30)
    # With a 30 s lease, only a released job can finish this fast.
    wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 25, "term-b to finish the released job")
    c(job(jid)[0] == "succeeded", "the check job succeeded: %s" % (job(jid),))
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    c(b.stop() == 0, "term-b exits cleanly")


def t_retry_with_backoff(c):
    # The first two GET /version get 503: the preflight phase is retried.
    KS.fail_next("retry", 2, 503)
    (jid,) = enqueue("retry", {"connection_only": True}, sim="retry")
    a = Ferryd("retry-a", workers=1, lease=5)
    wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 60, "the job to finish")
    state, attempt, error = job(jid)
    c(state == "succeeded", "succeeded after retries (%s %s)" % (state, error))
    ph = phase_attempts(jid)
    c([p[2] for p in ph] == ["3"], "preflight ran 3 times: %s" % ph)
    c(count_events(jid, "attempt _ of 5 failed: GET /version failed: %503%retrying in%") == 2, "two retry events")
    # Exhausting the attempts fails the job with the phase's message.
    KS.fail_next("giveup", 99, 503)
    (jid2,) = enqueue("giveup", {"connection_only": True}, sim="giveup")
    wait_for(lambda: job(jid2)[0] in ("succeeded", "failed"), 120, "the second job to finish")
    state, attempt, error = job(jid2)
    c(state == "failed", "fails after 5 attempts (%s)" % state)
    c(error.startswith("phase preflight: GET /version failed:") and "503" in error,
      "error names the phase and the answer: %r" % error)
    c(phase_attempts(jid2)[0][2] == "5", "preflight attempted 5 times")
    c(a.stop() == 0, "retry-a exits cleanly")


def t_notify_wakes_idle_workers(c):
    """Idle workers poll only once a second; NOTIFY must wake them at once.
    Jobs enqueued one at a time into an idle process, alternately announced
    (NOTIFY, as ferryd enqueues) and silent (found by the poll): the
    announced ones start clearly sooner (median start delay at least 0.1 s
    below the silent ones'; polling alone gives about 0.6 s more). Both
    medians come from the same run, so the machine's load shifts both
    alike."""
    a = Ferryd("notify-a", workers=2, lease=10)
    wait_for(lambda: "listening on" in open(a.log, errors="replace").read(), 30, "notify-a to start")
    time.sleep(1.5)
    delays = {True: [], False: []}
    for i in range(14):
        notify = i % 2 == 0
        (jid,) = enqueue("notify%d" % i, {"connection_only": True}, sim="notify", notify=notify)
        wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 30, "job %d to finish" % i)
        c(job(jid)[0] == "succeeded", "job %d succeeded: %s" % (i, job(jid)))
        delays[notify].append(float(val("SELECT extract(epoch FROM started_at - created_at) FROM jobs "
                                        "WHERE id = '%s'" % jid)))
        time.sleep(0.3)
    for d in delays.values():
        d.sort()
    c(delays[True][3] + 0.1 < delays[False][3],
      "announced jobs start right after their NOTIFY: %s, polled: %s" % (delays[True], delays[False]))
    c(a.stop() == 0, "notify-a exits cleanly")


def main():
    global TENANT, F, KS, URL, TMP
    if not os.path.exists(FERRYD):
        print("SKIP: worker_jobs: needs %s (run through tests/run)" % FERRYD)
        return 0
    KS = Kubesim(["--ready-delay-ms", "50"] + sum((["--cluster", "%s=tke-fresh" % n] for n in SIM), []),
                 TESTS, prefix="ferry-worker-ks-")
    F = apitest.start("worker", TESTS, workers=0)
    URL, TMP = F.db_url, F.tmp
    try:
        TENANT = F.tenant("workers")
        for n in SIM:
            BASE[n] = register(n, n)
        run(TESTS[0], t_sigkill_mid_job)
        run(TESTS[1], t_stalled_worker_fenced)
        run(TESTS[2], t_two_processes_200_jobs)
        run(TESTS[3], t_cancel_at_phase_boundary)
        run(TESTS[4], t_sigterm_releases_lease)
        run(TESTS[5], t_retry_with_backoff)
        run(TESTS[6], t_notify_wakes_idle_workers)
    finally:
        msg = F.stop()
        if msg:
            results["failed"] += 1
            print("FAIL: worker_api_ferryd_shutdown: %s" % msg)
        KS.stop()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
