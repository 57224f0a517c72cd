#!/usr/bin/env python3
"""Worker integration tests: real ferryd processes on one real PostgreSQL.

Jobs use the test-only phases (FERRY_TEST_MODE=1 and params
{"test_sleep_ms": N}: three phases test-1..3 that sleep N ms and log one event
per execution, "test_fail_first": K makes test-2 fail its first K attempts),
so they take time without a cluster. Jobs are enqueued with SQL (the API has
its own tests); everything else goes through ferryd.

Covered: a worker SIGKILLed mid-job and the job finishing exactly once after
restart; a stalled (SIGSTOPped) worker whose lease expires, the takeover, and
the stale worker's writes refused when it wakes up; two ferryd processes
sharing 200 queued jobs, each executed exactly once; cancel at a phase
boundary; SIGTERM releasing the lease; phase retries with backoff.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("FERRY_BUILD", "")
ADMIN = os.environ.get("FERRY_TEST_PG_ADMIN_URL", "")
FERRYD = os.path.join(BUILD, "ferryd")
TMP = tempfile.mkdtemp(prefix="ferry-worker-")
DBNAME = "ferry_core_worker_%d" % os.getpid()
URL = ADMIN.replace("///postgres?", "///%s?" % DBNAME)
MASTER_KEY = "k1:" + "ab" * 32

results = {"passed": 0, "failed": 0}
procs = []


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
        env = dict(os.environ)
        env.update({
            "FERRY_DATABASE_URL": URL,
            "FERRY_MASTER_KEY": MASTER_KEY,
            "FERRY_LISTEN": "127.0.0.1:0",
            "FERRY_WORKERS": str(workers),
            "FERRY_LEASE_SECONDS": str(lease),
            "FERRY_NODE_ID": name,
            "FERRY_TEST_MODE": "1",
            "FERRY_RETRY_BASE_MS": "100",
            "FERRY_LOG_LEVEL": "info",
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

    def stop(self, timeout=30):
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


def new_clusters(n, prefix):
    psql("INSERT INTO clusters (tenant_id, name, profile, api_server, credentials, credentials_key_id) "
         "SELECT '%s', '%s-' || g, 'generic', 'https://127.0.0.1:1', 'v1:k1:x', 'k1' "
         "FROM generate_series(1, %d) g" % (TENANT, prefix, n))


def enqueue(prefix, params, n=1):
    """One job per cluster prefix-1..n; returns the job ids."""
    new_clusters(n, prefix)
    out = psql("INSERT INTO jobs (tenant_id, cluster_id, kind, params) "
               "SELECT tenant_id, id, 'preflight', '%s'::jsonb FROM clusters "
               "WHERE name LIKE '%s-%%' RETURNING id" % (json.dumps(params), prefix))
    ids = out.split()
    psql("NOTIFY ferry_jobs")
    return ids


def job(jid):
    row = psql("SELECT state, attempt, coalesce(error, '') FROM jobs WHERE id = '%s'" % jid)
    state, attempt, error = row.split("|", 2)
    return state, int(attempt), error


def phase_attempts(jid):
    out = psql("SELECT seq, state, attempts FROM job_phases WHERE job_id = '%s' ORDER BY seq" % jid)
    return [tuple(l.split("|")) for l in out.split("\n") if l]


def count_events(jid, like):
    return int(val("SELECT count(*) FROM job_events WHERE job_id = '%s' AND message LIKE '%s'" % (jid, like)))


def phase_running(jid, seq):
    return val("SELECT state FROM job_phases WHERE job_id = '%s' AND seq = %d" % (jid, seq)) == "running"


# ---------------------------------------------------------------- the tests

def t_sigkill_mid_job(c):
    (jid,) = enqueue("kill", {"test_sleep_ms": 1500})
    a = Ferryd("kill-a", workers=1, lease=2)
    wait_for(lambda: phase_running(jid, 2), 30, "phase test-2 to run on kill-a")
    a.signal(signal.SIGKILL)
    a.p.wait()
    c(job(jid)[0] == "running", "job should still look running after the kill")
    b = Ferryd("kill-b", workers=1, lease=2)
    wait_for(lambda: job(jid)[0] == "succeeded", 40, "the job to finish on kill-b")
    state, attempt, _ = job(jid)
    c(attempt == 2, "attempt should be 2, got %d" % attempt)
    ph = phase_attempts(jid)
    c([p[2] for p in ph] == ["1", "2", "1"], "phase attempts should be 1,2,1: %s" % ph)
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    c(count_events(jid, "test phase test-1 executed%") == 1, "test-1 ran once")
    c(count_events(jid, "test phase test-3 executed%") == 1, "test-3 ran once")
    c(count_events(jid, "attempt 2: resumed by kill-b%") == 1, "resume event by kill-b")
    rc = b.stop()
    c(rc == 0, "kill-b should exit 0 on SIGTERM, got %s" % rc)


def t_stalled_worker_fenced(c):
    (jid,) = enqueue("stall", {"test_sleep_ms": 1200})
    a = Ferryd("stall-a", workers=1, lease=2)
    wait_for(lambda: phase_running(jid, 1), 30, "phase test-1 to run on stall-a")
    a.signal(signal.SIGSTOP)
    # Let the lease run out, then a second process takes the job over.
    b = Ferryd("stall-b", workers=1, lease=2)
    wait_for(lambda: val("SELECT lease_owner FROM jobs WHERE id = '%s'" % jid).startswith("stall-b"),
             30, "stall-b to take the job over")
    a.signal(signal.SIGCONT)   # the stale worker wakes up mid-phase
    wait_for(lambda: job(jid)[0] == "succeeded", 40, "the job to finish")
    time.sleep(1.0)            # give the stale worker time to try its writes
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    ph = phase_attempts(jid)
    c(all(p[1] == "succeeded" for p in ph), "all phases succeeded: %s" % ph)
    c(ph[1][2] == "1" and ph[2][2] == "1", "test-2 and test-3 ran once (stale worker fenced): %s" % ph)
    c(count_events(jid, "%resumed by stall-b%") == 1, "resume event")
    c(job(jid)[0] == "succeeded", "state stays succeeded")
    c(a.stop() == 0, "stall-a exits cleanly")
    c(b.stop() == 0, "stall-b exits cleanly")


def t_two_processes_200_jobs(c):
    ids = enqueue("many", {"test_sleep_ms": 10}, n=200)
    c(len(ids) == 200, "200 jobs enqueued")
    a = Ferryd("many-a", workers=3, lease=10)
    b = Ferryd("many-b", workers=3, lease=10)
    wait_for(lambda: int(val("SELECT count(*) FROM jobs j JOIN clusters c ON c.id = j.cluster_id "
                             "WHERE c.name LIKE 'many-%' AND j.state = 'succeeded'")) == 200,
             240, "200 jobs to succeed")
    per_job = psql("SELECT j.id, "
                   " (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.message LIKE 'job succeeded%'),"
                   " (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.message LIKE 'test phase %executed%'),"
                   " (SELECT sum(attempts) FROM job_phases p WHERE p.job_id = j.id), j.attempt "
                   "FROM jobs j JOIN clusters c ON c.id = j.cluster_id WHERE c.name LIKE 'many-%'")
    rows = [l.split("|") for l in per_job.split("\n") if l]
    c(len(rows) == 200, "200 rows")
    bad = [r for r in rows if r[1:] != ["1", "3", "3", "1"]]
    c(not bad, "every job finished once, ran each phase once, was claimed once; bad: %s" % bad[:3])
    by_a = int(val("SELECT count(*) FROM job_events WHERE message = 'job preflight started by many-a'"))
    by_b = int(val("SELECT count(*) FROM job_events WHERE message = 'job preflight started by many-b'"))
    c(by_a + by_b == 200, "200 starts in all, got %d + %d" % (by_a, by_b))
    c(by_a > 0 and by_b > 0, "both processes worked (%d / %d)" % (by_a, by_b))
    c(a.stop() == 0, "many-a exits cleanly")
    c(b.stop() == 0, "many-b exits cleanly")


def t_cancel_at_phase_boundary(c):
    (jid,) = enqueue("cancel", {"test_sleep_ms": 800})
    a = Ferryd("cancel-a", workers=1, lease=5)
    wait_for(lambda: phase_running(jid, 1), 30, "phase test-1 to run")
    psql("UPDATE jobs SET cancel_requested = true WHERE id = '%s'" % jid)
    wait_for(lambda: job(jid)[0] == "cancelled", 20, "the job to be cancelled")
    ph = phase_attempts(jid)
    c(ph[0][1] == "succeeded", "the running phase completed: %s" % ph)
    c(ph[1][2] == "0" and ph[2][2] == "0", "later phases never started: %s" % ph)
    c(count_events(jid, "job cancelled%") == 1, "one cancel finish event")
    c(a.stop() == 0, "cancel-a exits cleanly")


def t_sigterm_releases_lease(c):
    (jid,) = enqueue("term", {"test_sleep_ms": 4000})
    a = Ferryd("term-a", workers=1, lease=30)
    wait_for(lambda: phase_running(jid, 1), 30, "phase test-1 to run")
    t0 = time.time()
    rc = a.stop()
    c(rc == 0, "term-a exits 0 on SIGTERM, got %s" % rc)
    c(time.time() - t0 < 10, "shutdown does not wait for the phase to end")
    row = psql("SELECT state, coalesce(lease_owner, '-') FROM jobs WHERE id = '%s'" % jid)
    c(row == "queued|-", "lease released: the job is queued without owner (%s)" % row)
    b = Ferryd("term-b", workers=1, lease=30)
    # With a 30 s lease, only a released job can finish this fast.
    wait_for(lambda: job(jid)[0] == "succeeded", 25, "term-b to finish the released job")
    c(count_events(jid, "job succeeded%") == 1, "exactly one finish event")
    c(b.stop() == 0, "term-b exits cleanly")


def t_retry_with_backoff(c):
    (jid,) = enqueue("retry", {"test_sleep_ms": 10, "test_fail_first": 2})
    a = Ferryd("retry-a", workers=1, lease=5)
    wait_for(lambda: job(jid)[0] in ("succeeded", "failed"), 30, "the job to finish")
    state, attempt, error = job(jid)
    c(state == "succeeded", "succeeded after retries (%s %s)" % (state, error))
    ph = phase_attempts(jid)
    c([p[2] for p in ph] == ["1", "3", "1"], "test-2 ran 3 times: %s" % ph)
    c(count_events(jid, "attempt _ of 5 failed: injected test failure%retrying in%") == 2, "two retry events")
    # Exhausting the attempts fails the job with the phase's message.
    (jid2,) = enqueue("giveup", {"test_sleep_ms": 10, "test_fail_first": 99})
    wait_for(lambda: job(jid2)[0] in ("succeeded", "failed"), 60, "the second job to finish")
    state, attempt, error = job(jid2)
    c(state == "failed", "fails after 5 attempts (%s)" % state)
    c(error.startswith("phase test-2: injected test failure 5"), "error names the phase: %r" % error)
    c(phase_attempts(jid2)[1][2] == "5", "test-2 attempted 5 times")
    c(a.stop() == 0, "retry-a exits cleanly")


def t_notify_wakes_idle_workers(c):
    """Idle workers poll only once a second; NOTIFY must wake them at once.
    Five jobs, each enqueued into an idle process: the median start delay
    must stay under 0.3 s (polling alone gives about 0.6 s)."""
    a = Ferryd("notify-a", workers=2, lease=10)
    wait_for(lambda: "listening on" in open(a.log, errors="replace").read(), 30, "notify-a to start")
    time.sleep(1.5)
    delays = []
    for i in range(5):
        (jid,) = enqueue("notify%d" % i, {"test_sleep_ms": 1})
        wait_for(lambda: job(jid)[0] == "succeeded", 20, "job %d to finish" % i)
        delays.append(float(val("SELECT extract(epoch FROM started_at - created_at) FROM jobs WHERE id = '%s'" % jid)))
        time.sleep(0.3)
    delays.sort()
    c(delays[2] < 0.3 and delays[4] < 0.8,
      "jobs start right after their NOTIFY (median < 0.3 s, max < 0.8 s): %s" % delays)
    c(a.stop() == 0, "notify-a exits cleanly")


def main():
    global TENANT
    if not ADMIN or not os.path.exists(FERRYD):
        print("SKIP: worker_jobs: needs FERRY_TEST_PG_ADMIN_URL and %s (run through tests/run)" % FERRYD)
        return 0
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DBNAME, ADMIN)
    psql("CREATE DATABASE %s" % DBNAME, ADMIN)
    try:
        m = subprocess.run([FERRYD, "migrate", "--database-url", URL], capture_output=True, text=True)
        if m.returncode != 0:
            print("FAIL: worker_migrate: %s" % m.stderr.strip())
            return 1
        TENANT = val("INSERT INTO tenants (name) VALUES ('workers') RETURNING id")
        run("worker_sigkill_mid_job_finishes_once", t_sigkill_mid_job)
        run("worker_lease_expiry_takeover_fences_stale_worker", t_stalled_worker_fenced)
        run("worker_two_processes_200_jobs_exactly_once", t_two_processes_200_jobs)
        run("worker_cancel_at_phase_boundary", t_cancel_at_phase_boundary)
        run("worker_sigterm_releases_lease", t_sigterm_releases_lease)
        run("worker_phase_retry_backoff", t_retry_with_backoff)
        run("worker_notify_wakes_idle_workers", t_notify_wakes_idle_workers)
    finally:
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DBNAME, ADMIN)
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
