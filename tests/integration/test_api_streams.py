#!/usr/bin/env python3
"""API integration: SSE streams on a small HTTP thread pool (issue 14).

ferryd serves HTTP with a fixed pool of threads (FERRY_HTTP_THREADS); an
idle SSE stream suspends its connection and holds no thread. Here ferryd
runs with 2 threads and more open streams than threads (and more than the
32 streams that get a LISTEN connection of their own, so some poll):
ordinary requests are still answered, a notification still reaches every
stream live, the end of the job ends every stream, and SIGTERM with
streams open ends them and exits 0. No workers: jobs stay queued.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["api_streams_outnumber_threads", "api_streams_sigterm"]
THREADS = 2
STREAMS = 36   # more than the threads and than SSE_MAX_LISTENERS (32)
f = start("streams", TESTS, env={"FERRY_HTTP_THREADS": str(THREADS)})
acme = f.tenant("acme")
OP = f.token(acme, "operator")
VIEW = f.token(acme, "viewer")


def new_job(name):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "tok-" + name}, OP)
    check_eq(r.status, 201, "cluster %s: %r" % (name, r))
    r = f.post("/v1/clusters/%s/jobs" % r.json()["id"], {"kind": "install"}, OP)
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
run_test("api_streams_sigterm", t_sigterm)
finish(f)   # the log must be free of sanitizer reports
