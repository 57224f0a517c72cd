#!/usr/bin/env python3
"""The job queue's cost per job (issue 14), so that a regression fails:

- queue_commits_per_job: a preflight job with params.connection_only, run
  by a real ferryd worker against kubesim, makes at most WRITES_MAX write
  transactions (counted by PostgreSQL's transaction id counter, which only
  writing transactions advance) and, watched as an SSE stream watches it,
  1..NOTIFIES_MAX notifications on ferry_job_events (counted by a LISTEN
  session); unwatched, none and fewer writes; its events are all there, in
  order, and the cluster's version and node count are recorded.
- queue_claim_uses_index: with a few thousand queued jobs sharing one
  run_after, the plan of the claim statement (taken from db/jobs.c) has no
  Sort node: it walks jobs_claim_order_idx (migration 015).
"""
import os
import re
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["queue_commits_per_job", "queue_sse_stream_notified", "queue_claim_uses_index"]

# The write transactions of a fresh one-phase job (db/jobs.c, runner.c):
# claim + begin (one commit), its NOTIFY, the phase's end with its
# "connected" line, the cluster's version and node count and the job's
# finish (one commit), its NOTIFY: two durable commits. Before issue 14:
# 10 durable commits carrying 7 NOTIFYs; 6 write transactions before the
# phase's line and facts went with its end record.
WRITES_MAX = 4
NOTIFIES_MAX = 2
# Unwatched (no SSE stream on the job, db_job_watch): the NOTIFYs are not
# sent and their transactions write nothing.
WRITES_UNWATCHED_MAX = 2
SRC = os.environ.get("FERRY_SRC", ".")

ks = Kubesim(["--clusters", "1", "--scenario", "tke-fresh"], TESTS, prefix="ferry-queue-ks-")
f = start("queuecommits", TESTS, workers=1, extra_args=["--lease-seconds", "120"])
tenant = f.tenant("q")
OP = f.token(tenant, "operator")
r = f.post("/v1/clusters", {"name": "c1", "profile": "tke",
                            "kubeconfig": open(ks.cluster("c1")["kubeconfig"]).read()}, OP)
check_eq(r.status, 201, "register cluster: %r" % r)
CID = r.json()["id"]


class Listener:
    """A psql session LISTENing on ferry's job channels; with watch, it
    watches that job id as an SSE stream does (db_job_watch)."""

    def __init__(self, watch=None):
        self.p = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", f.db_url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.lines = []
        self.t = threading.Thread(target=lambda: self.lines.extend(self.p.stdout))
        self.t.start()
        self.p.stdin.write("LISTEN ferry_jobs; LISTEN ferry_job_events;\n")
        if watch:
            self.p.stdin.write("SELECT pg_advisory_lock_shared(14014, hashtext('%s'));\n" % watch)
        self.p.stdin.write("SELECT 'listening';\n")
        deadline = time.time() + 10
        while not any("listening" in x for x in self.lines) and time.time() < deadline:
            time.sleep(0.05)

    def poke(self):
        self.p.stdin.write("SELECT 1;\n")  # psql shows notifications after a command

    def stop(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)
        self.t.join()
        got = {}
        for x in self.lines:
            m = re.match(r'Asynchronous notification "(\w+)" with payload "([^"]*)"', x)
            if m:
                got.setdefault(m.group(1), []).append(m.group(2))
        return got


def next_xid():
    """The next transaction id, without taking one."""
    return int(f.sql("SELECT pg_snapshot_xmax(pg_current_snapshot())"))


def run_job(watch):
    """One preflight job (connection_only) through the idle worker; returns
    (job id, write transactions, {channel: [payloads]})."""
    jid = str(uuid.uuid4())
    lis = Listener(jid if watch else None)
    time.sleep(1.5)  # the worker is idle (its polls write nothing)
    x0 = next_xid()
    f.sql("WITH ins AS (INSERT INTO jobs (id, tenant_id, cluster_id, kind, params)"
          " VALUES ('%s', '%s', '%s', 'preflight', '{\"connection_only\": true}') RETURNING id)"
          " SELECT pg_notify('ferry_jobs', id::text) FROM ins" % (jid, tenant, CID))
    deadline = time.time() + 60
    while time.time() < deadline:
        if f.sql("SELECT state FROM jobs WHERE id = '%s'" % jid) in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    time.sleep(0.3)
    writes = next_xid() - x0 - 1  # less the INSERT above
    lis.poke()
    time.sleep(0.3)
    return jid, writes, lis.stop()


def run_job_least(watch, limit):
    """run_job, up to three times while the count is above limit: the
    transaction id counter is the whole server's, so a write elsewhere in
    the window (autovacuum's ANALYZE of another test's database takes
    transaction ids) adds to the job's own count, never subtracts. The job's
    own writes are the same every run: the least count is the truest."""
    best = None
    for attempt in range(3):
        run = run_job(watch)
        if best is None or run[1] < best[1]:
            best = run
        if run[1] <= limit:
            break
        print("   run %d counted %d write transactions: writes elsewhere in the window? again" % (attempt + 1, run[1]))
    return best


def t_commits():
    jid, writes, got = run_job_least(True, WRITES_MAX)
    check_eq(f.sql("SELECT state FROM jobs WHERE id = '%s'" % jid), "succeeded", "job state")
    events = f.sql("SELECT message FROM job_events WHERE job_id = '%s' ORDER BY id" % jid).splitlines()
    check(len(events) == 4 and events[0].startswith("job preflight started") and
          events[1].startswith("connected: Kubernetes") and events[2].startswith("phase preflight succeeded") and
          events[3] == "job succeeded", "events in order: %r" % events)
    check_eq(f.sql("SELECT state || ' ' || attempts FROM job_phases WHERE job_id = '%s'" % jid), "succeeded 1",
             "phase")
    # The phase's facts committed with its end record (runner_defer_write).
    check_eq(f.sql("SELECT kube_version LIKE 'v1.%%' AND node_count IS NOT NULL AND last_contact_at IS NOT NULL"
                   " FROM clusters WHERE id = '%s'" % CID), "t", "the cluster's version and node count recorded")
    # The "connected" line, written with the phase's end, keeps the time it
    # was said: not after the phase's end.
    check_eq(f.sql("SELECT bool_and(e.at <= p.finished_at) FROM job_events e JOIN job_phases p ON p.job_id = e.job_id"
                   " WHERE e.job_id = '%s' AND e.message LIKE 'connected:%%'" % jid), "t", "the line's time")
    mine = [p for p in got.get("ferry_job_events", []) if p == jid]
    print("   watched job %s: %d write transactions, %d NOTIFYs on ferry_job_events, %d on ferry_jobs"
          % (jid, writes, len(mine), len(got.get("ferry_jobs", []))))
    check(writes <= WRITES_MAX, "the job made %d write transactions (at most %d)" % (writes, WRITES_MAX))
    check(1 <= len(mine) <= NOTIFIES_MAX,
          "the watched job sent %d NOTIFYs on ferry_job_events (1..%d)" % (len(mine), NOTIFIES_MAX))
    # Only the enqueue above wakes workers; the claim and the run send none.
    check_eq(got.get("ferry_jobs", []), [jid], "ferry_jobs notifications")
    # Nobody watches the next job: it notifies nobody and writes less.
    jid2, writes2, got2 = run_job_least(False, WRITES_UNWATCHED_MAX)
    check_eq(f.sql("SELECT state FROM jobs WHERE id = '%s'" % jid2), "succeeded", "unwatched job state")
    print("   unwatched job: %d write transactions, %d NOTIFYs on ferry_job_events"
          % (writes2, len(got2.get("ferry_job_events", []))))
    check_eq(got2.get("ferry_job_events", []), [], "NOTIFYs for an unwatched job")
    check(writes2 <= WRITES_UNWATCHED_MAX, "the unwatched job made %d write transactions (at most %d)"
          % (writes2, WRITES_UNWATCHED_MAX))


def t_sse():
    """The SSE stream (server/http.c) watches its job: a job that starts
    after the stream opened streams its final state on the NOTIFY, well
    before the stream's 5 s fallback poll."""
    import http.client
    jid = str(uuid.uuid4())
    f.sql("INSERT INTO jobs (id, tenant_id, cluster_id, kind, params, run_after) VALUES ('%s', '%s', '%s',"
          " 'preflight', '{\"connection_only\": true}', now() + interval '2 seconds')" % (jid, tenant, CID))
    conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=60)
    conn.request("GET", "/v1/jobs/%s/events/stream" % jid, headers={"Authorization": "Bearer " + OP})
    resp = conn.getresponse()
    check_eq(resp.status, 200, "stream status")
    got_final = None
    deadline = time.time() + 40
    while time.time() < deadline:
        line = resp.fp.readline().decode()
        if not line:
            break
        if line.startswith("data:") and '"state":"succeeded"' in line.replace(" ", ""):
            got_final = time.time()
            break
    conn.close()
    check(got_final is not None, "the stream sent the job's final state")
    finished = float(f.sql("SELECT extract(epoch FROM finished_at) FROM jobs WHERE id = '%s'" % jid))
    print("   stream got the final state %.2f s after the job finished" % (got_final - finished))
    check(got_final - finished < 2.5, "final state %.2f s after the finish (NOTIFY, not the 5 s poll)"
          % (got_final - finished))


def claim_statement():
    """db_job_claim_fair's statement, as C string literals in db/jobs.c."""
    text = open(os.path.join(SRC, "db", "jobs.c")).read()
    body = text[text.index("\nint db_job_claim_fair("):]
    body = body[body.index("claim_sql ="):]
    body = body[:body.index(";\n")]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def t_index():
    # An API-only ferryd on a database of its own: no worker claims these.
    g = start("queueindex", TESTS, workers=0)
    try:
        index_plan(g)
    finally:
        msg = g.stop()
    check(msg is None, msg or "")


def index_plan(g):
    n = 3000
    t = g.tenant("ix")
    g.sql("INSERT INTO clusters (tenant_id, name, profile, api_server, credentials, credentials_key_id)"
          " SELECT '%s', 'ix' || g, 'tke', 'https://127.0.0.1:1', 'x', 'k1' FROM generate_series(1, %d) g"
          % (t, n))
    g.sql("INSERT INTO jobs (tenant_id, cluster_id, kind, run_after, state)"
          " SELECT tenant_id, id, 'preflight', timestamptz '2020-01-01', 'queued' FROM clusters WHERE name LIKE 'ix%'"
          " UNION ALL SELECT tenant_id, id, 'preflight', timestamptz '2020-01-01', 'succeeded' FROM clusters"
          " WHERE name LIKE 'ix%'")
    g.sql("ANALYZE jobs")
    plan = g.sql("PREPARE claim(text, text, int, text, text) AS %s; "
                 "EXPLAIN EXECUTE claim('bench/w0', '30', 3, 'bench', '{}')" % claim_statement())
    check("jobs_claim_order_idx" in plan, "the claim walks jobs_claim_order_idx:\n%s" % plan)
    check(not re.search(r"\bSort\b", plan), "the claim sorts the queue:\n%s" % plan)


run_test("queue_commits_per_job", t_commits)
run_test("queue_sse_stream_notified", t_sse)
run_test("queue_claim_uses_index", t_index)
ks.stop()
finish(f)
