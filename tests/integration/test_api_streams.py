#!/usr/bin/env python3
"""API integration: the HTTP threading model (issue 14).

ferryd's event threads hand requests to FERRY_HTTP_THREADS handler
threads; an idle SSE stream suspends its connection and holds no thread.
Here ferryd runs with 2 handler threads:
- api_streams_outnumber_threads: more open streams than threads (and more
  than the 32 streams that get a LISTEN connection of their own, so some
  poll): ordinary requests are still answered, a notification still
  reaches every stream live, the end of the job ends every stream;
- api_http_stalled_handler: a request stalled in the database (its audit
  write waits for a lock) holds one handler thread; requests on new
  connections are still answered while it waits, and it completes once
  the lock goes;
- api_http_quick_reads_inline: GETs of quick-read routes (API_QUICK_READ:
  GET cluster, GET job) are answered on their event thread (counted by
  ferry_http_quick_reads_total), with the same answers as on a handler
  thread (404 across tenants, 401 without a token); other routes are not;
- api_streams_sigterm: SIGTERM with streams open ends them and exits 0.
No workers: jobs stay queued. STREAMS_TEST_HTTP_THREADS=0 runs the same
tests with the handlers on the event threads (FERRY_HTTP_THREADS=0), where
api_http_stalled_handler fails: the kept connections of the stalled event
thread get no answer.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["api_streams_outnumber_threads", "api_http_stalled_handler", "api_http_quick_reads_inline",
         "api_streams_sigterm"]
THREADS = int(os.environ.get("STREAMS_TEST_HTTP_THREADS", "2"))
STREAMS = 36   # more than the threads and than SSE_MAX_LISTENERS (32)
f = start("streams", TESTS, env={"FERRY_HTTP_THREADS": str(THREADS)})
acme = f.tenant("acme")
OP = f.token(acme, "operator")
VIEW = f.token(acme, "viewer")
ADMIN = f.token(acme, "admin")
OTHER = f.token(f.tenant("other"), "viewer")
ZERO = "00000000-0000-4000-8000-000000000000"


def new_cluster(name):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "tok-" + name}, OP)
    check_eq(r.status, 201, "cluster %s: %r" % (name, r))
    return r.json()["id"]


def new_job(name):
    r = f.post("/v1/clusters/%s/jobs" % new_cluster(name), {"kind": "install"}, OP)
    check_eq(r.status, 202, "job: %r" % r)
    return r.json()["id"]


class Stream:
    """One SSE reader on its own thread; records events as they come."""

    def __init__(self, jid, port):
        self.jid = jid
        self.port = port
        self.events = []
        self.status = None
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            conn.request("GET", "/v1/jobs/%s/events/stream" % self.jid,
                         headers={"Authorization": "Bearer " + VIEW})
            r = conn.getresponse()
            self.status = r.status
            cur = {}
            for raw in r:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if cur:
                        with self.lock:
                            self.events.append(cur)
                    cur = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    cur[k] = v
            conn.close()
        except Exception as e:  # reported by the test through self.error
            self.error = repr(e)

    def logs(self):
        with self.lock:
            return [json.loads(e["data"])["message"] for e in self.events if e.get("event") == "log"]

    def states(self):
        with self.lock:
            return [json.loads(e["data"])["state"] for e in self.events if e.get("event") == "job"]


def wait_for(cond, what, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    check(False, "timed out waiting for " + what)


def t_outnumber_threads():
    jid = new_job("s1")
    streams = [Stream(jid, f.port) for _ in range(STREAMS)]
    wait_for(lambda: all(s.states() for s in streams), "every stream's first job event")
    check_eq(sorted(set(s.status for s in streams)), [200], "stream status")
    # Every stream is open and idle; the two threads still serve requests.
    for _ in range(5):
        r = f.get("/v1/jobs/" + jid, VIEW)
        check_eq(r.status, 200, "GET job while %d streams are open" % STREAMS)
        check_eq(r.json()["state"], "queued", "still queued")
    check(all(s.thread.is_alive() for s in streams), "a stream ended while its job was queued")
    # A new event reaches every stream while the job runs on (the ones with
    # a LISTEN connection through the NOTIFY, the others by polling).
    f.sql("INSERT INTO job_events (job_id, message) VALUES ('%s', 'live');"
          " SELECT pg_notify('ferry_job_events', '%s')" % (jid, jid))
    wait_for(lambda: all("live" in s.logs() for s in streams), "the live event on every stream")
    check(all(s.thread.is_alive() for s in streams), "a stream ended after the live event")
    # The end of the job ends every stream, with the final state last.
    r = f.post("/v1/jobs/%s/cancel" % jid, None, OP, content_type=None)
    check(r.status in (200, 202), "cancel: %r" % r)
    wait_for(lambda: not any(s.thread.is_alive() for s in streams), "every stream to end")
    for s in streams:
        check(s.error is None, "stream error: %s" % s.error)
        check_eq(s.states()[-1], "cancelled", "last job event")
        check_eq(s.logs().count("live"), 1, "the live event once")


class AuditLock:
    """An ACCESS EXCLUSIVE lock on audit_log, held by a psql session until
    the with block ends: every mutating request's audit write waits for it
    (holding its handler thread), while reads of other tables do not."""

    def __enter__(self):
        self.locker = subprocess.Popen(
            ["psql", "-X", "-q", f.db_url, "-c",
             "BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: f.sql("SELECT count(*) FROM pg_locks WHERE relation = 'audit_log'::regclass"
                               " AND mode = 'AccessExclusiveLock' AND granted") == "1", "the lock on audit_log")
        return self

    def waiting(self):
        """How many requests wait for the lock."""
        return int(f.sql("SELECT count(*) FROM pg_locks WHERE relation = 'audit_log'::regclass AND NOT granted"))

    def __exit__(self, *exc):
        f.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
              " WHERE query LIKE '%LOCK TABLE audit_log%' AND pid <> pg_backend_pid()")
        self.locker.wait(60)


def in_thread(out, key, fn):
    t = threading.Thread(target=lambda: out.__setitem__(key, fn()), daemon=True)
    t.start()
    return t


def t_stalled_handler():
    cid = new_cluster("stall")
    # Keep-alive connections opened before the stall: each stays on the
    # event thread that accepted it.
    conns = [http.client.HTTPConnection("127.0.0.1", f.port, timeout=60) for _ in range(8)]

    def get_on(c):
        c.request("GET", "/v1/clusters/" + cid, headers={"Authorization": "Bearer " + VIEW})
        resp = c.getresponse()
        resp.read()
        return resp.status
    for c in conns:
        check_eq(get_on(c), 200, "GET before the stall")
    out = {}
    t = None
    with AuditLock() as lock:
        t = in_thread(out, "r", lambda: f.request("PATCH", "/v1/clusters/" + cid, {"labels": {"stalled": "yes"}},
                                                  OP, timeout=300))
        # The PATCH's audit write waits for the lock (holding a handler thread).
        wait_for(lambda: lock.waiting() == 1, "the PATCH to wait for the lock")
        # Meanwhile requests are answered (by the other handler thread) on
        # every open connection, whichever event thread it is on, and on
        # new ones.
        for c in conns:
            check_eq(get_on(c), 200, "GET on a kept connection while a handler is stalled")
        for _ in range(4):
            check_eq(f.get("/v1/clusters/" + cid, VIEW).status, 200, "GET while a handler is stalled")
        check(t.is_alive(), "the PATCH finished although the lock was held")
    for c in conns:
        c.close()
    check(t is not None, "the PATCH never started")
    t.join(120)
    check(not t.is_alive(), "the PATCH did not finish after the lock went")
    check_eq(out["r"].status, 200, "the stalled PATCH: %r" % out.get("r"))
    check_eq(f.get("/v1/clusters/" + cid, VIEW).json()["labels"], {"stalled": "yes"}, "patched")


def quick_reads():
    m = re.search(r"^ferry_http_quick_reads_total (\d+)$", f.get("/metrics").text, re.M)
    check(m is not None, "ferry_http_quick_reads_total in /metrics")
    return int(m.group(1))


def t_quick_reads_inline():
    jid = new_job("quick")
    cid = f.get("/v1/jobs/" + jid, VIEW).json()["cluster_id"]
    before = quick_reads()
    for _ in range(5):
        check_eq(f.get("/v1/clusters/" + cid, VIEW).status, 200, "GET cluster")
        check_eq(f.get("/v1/jobs/" + jid, VIEW).status, 200, "GET job")
    check_eq(f.get("/v1/clusters/" + ZERO, VIEW).status, 404, "GET of another cluster")
    check_eq(f.get("/v1/jobs/" + jid, OTHER).status, 404, "GET of the job with another tenant's token")
    check_eq(f.get("/v1/jobs/" + jid).status, 401, "GET of the job without a token")
    after = quick_reads()
    # One after the other, each finds the pool's connection free: every
    # one of them was answered on its event thread.
    check_eq(after - before, 13, "quick reads counted")
    # Other routes go to a handler thread.
    check_eq(f.get("/v1/tokens", ADMIN).status, 200, "GET tokens")
    check_eq(f.request("PATCH", "/v1/clusters/" + cid, {"labels": {"q": "1"}}, OP).status, 200, "PATCH")
    check_eq(quick_reads(), after, "other routes are not quick reads")


def t_sigterm():
    jids = [new_job("s2-%d" % i) for i in range(4)]
    streams = [Stream(jids[i % len(jids)], f.port) for i in range(8)]
    wait_for(lambda: all(s.states() for s in streams), "every stream's first job event")
    f.proc.send_signal(signal.SIGTERM)
    try:
        rc = f.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = "still running after 60 s"
    check_eq(rc, 0, "ferryd's exit code after SIGTERM with streams open")
    wait_for(lambda: not any(s.thread.is_alive() for s in streams), "every stream to end after SIGTERM", 60)
    for s in streams:
        check_eq(s.status, 200, "stream status")
        check_eq(s.states()[-1], "queued", "the job was still queued")


run_test("api_streams_outnumber_threads", t_outnumber_threads)
run_test("api_http_stalled_handler", t_stalled_handler)
run_test("api_http_quick_reads_inline", t_quick_reads_inline)
run_test("api_streams_sigterm", t_sigterm)
finish(f)   # the log must be free of sanitizer reports
