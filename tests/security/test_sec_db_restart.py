#!/usr/bin/env python3
"""Security regression suite, database faults (issue 13, finding 7).

- sec_db_restart_no_500: after a PostgreSQL restart every pooled connection
  is stale; the next requests (more than the pool holds, on several
  routes) all succeed: a stale connection is noticed and reset before use
  (a 500 per stale connection before).
- sec_db_restart_under_load: six clients keep reading while PostgreSQL
  restarts: every answer is a 200 or a 503 with Retry-After (a read whose
  connection breaks mid-request is run once more on a fresh one).
- sec_db_down_503: with PostgreSQL stopped, every route that needs the
  database answers 503 with Retry-After (500 before), /healthz stays 200,
  and everything works again once PostgreSQL is back.

Restarts the suite's throw-away PostgreSQL (FERRY_TEST_PG_HOST) with
pg_ctl; skips when that is not available.
"""
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from apitest import (check, check_eq, finish, run_test, skip_all, start)  # noqa: E402

TESTS = ["sec_db_restart_no_500", "sec_db_restart_under_load", "sec_db_down_503"]
pghost = os.environ.get("FERRY_TEST_PG_HOST")
bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
if not pghost or not bins or not os.path.isdir(os.path.join(pghost, "data")):
    skip_all(TESTS, "needs the suite's PostgreSQL (FERRY_TEST_PG_HOST) and pg_ctl")
PG_CTL = bins[-1]
AS = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def server_options():
    """The options the suite started the server with (postmaster.opts), so
    that a stop + start keeps its socket directory and settings."""
    import shlex
    words = shlex.split(open(os.path.join(pghost, "data", "postmaster.opts")).read())[1:]
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w == "-D":
            skip = True
        else:
            out.append(shlex.quote(w))
    return " ".join(out)


OPTS = server_options()


def pg_ctl(*args):
    if args[0] == "start":
        args = args + ("-o", OPTS)
    # -l: the server's output goes to its log, not to our pipes
    out = subprocess.run(AS + [PG_CTL, "-D", os.path.join(pghost, "data"), "-l", os.path.join(pghost, "server.log"),
                               "-w", "-t", "60"] + list(args),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("pg_ctl %s: %s %s" % (args, out.stdout, out.stderr))


f = start("sec_db", TESTS)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
r = f.post("/v1/clusters", {"name": "c", "profile": "tke", "api_server": "https://10.0.0.1", "token": "t"}, OP)
CID = r.json()["id"]
ROUTES = ["/v1/me", "/v1/clusters", "/v1/clusters/" + CID, "/v1/jobs", "/v1/charts"]


def warm_pool():
    # Use several pooled connections at once so that more than one is stale.
    import threading
    ts = [threading.Thread(target=lambda: f.get("/v1/clusters", OP)) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def t_restart():
    warm_pool()
    pg_ctl("restart", "-m", "fast")
    statuses = []
    for i in range(30):
        path = ROUTES[i % len(ROUTES)]
        r = f.get(path, OP)
        statuses.append((path, r.status, r.text[:200] if r.status != 200 else ""))
    bad = [s for s in statuses if s[1] != 200]
    if bad:
        print("   first bad answer: %r" % f.get(bad[0][0], OP))
    check(not bad, "answers after a restart: %r" % bad)


def t_down():
    warm_pool()
    pg_ctl("stop", "-m", "fast")
    try:
        for path in ROUTES + ["/readyz"]:
            r = f.get(path, OP, timeout=60)
            check_eq(r.status, 503, "%s with the database down: %r" % (path, r))
            check(r.header("Retry-After"), "%s: Retry-After: %r" % (path, r.headers))
        r = f.post("/v1/clusters", {"name": "d", "profile": "tke", "api_server": "https://10.0.0.1",
                                    "token": "t"}, OP, timeout=60)
        check_eq(r.status, 503, "POST with the database down: %r" % r)
        check(r.header("Retry-After"), "POST: Retry-After")
        check_eq(f.get("/healthz").status, 200, "/healthz needs no database")
    finally:
        pg_ctl("start")
    deadline = time.time() + 30
    st = None
    while time.time() < deadline:
        st = f.get("/v1/clusters", OP).status
        if st == 200:
            break
        time.sleep(0.5)
    check_eq(st, 200, "back once PostgreSQL is back")


def t_restart_under_load():
    """Requests in flight while PostgreSQL restarts: 200, or 503 with
    Retry-After while it is down; never a 500."""
    import threading
    stop = [False]
    seen = []
    lock = threading.Lock()

    def client(i):
        while not stop[0]:
            r = f.get(ROUTES[i % len(ROUTES)], OP, timeout=60)
            with lock:
                seen.append((r.status, r.header("Retry-After"), r.text[:160]))
    ts = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    try:
        time.sleep(0.5)
        pg_ctl("restart", "-m", "fast")
        time.sleep(1.0)
    finally:
        stop[0] = True
        for t in ts:
            t.join()
    statuses = sorted({s for s, _, _ in seen})
    print("   %d requests during a restart, statuses %s" % (len(seen), statuses))
    check(set(statuses) <= {200, 503}, "answers %r" % [x for x in seen if x[0] not in (200, 503)][:3])
    check(all(ra for st, ra, _ in seen if st == 503), "every 503 has Retry-After")
    check(seen and seen[-1][0] == 200, "served again after the restart")


run_test("sec_db_restart_no_500", t_restart)
run_test("sec_db_restart_under_load", t_restart_under_load)
run_test("sec_db_down_503", t_down)
finish(f)
