#!/usr/bin/env python3
"""The token cache and the pass-through GET bodies (issue 14).

Two ferryd processes on one database, A (apitest's) and B (started here).
Every token is first used on both, so that both caches hold it.

- token_revoked_same_process: revoked through A, refused by A on the next
  request.
- token_revoked_other_process: revoked through A, refused by B on the very
  next request (B's cache empties on the NOTIFY of migration 017); ten
  tokens in a row, each used a moment before on B.
- token_revoked_by_sql: revoked by an UPDATE from psql (no ferryd
  involved): B refuses it.
- tenant_deleted_tokens_refused: a tenant deleted through A: its token is
  refused by A and B.
- token_cache_keeps_roles_and_tenants: cached tokens keep their own tenant
  and role: a viewer cannot write, another tenant's cluster is 404.
- get_bodies_pass_through: GET /v1/jobs/{id} and /v1/clusters/{id} are the
  same JSON as the list endpoints' items (still printed by jansson), with
  non-ASCII and escapes, compact, ASCII only, one trailing newline; the
  ETag is the cluster's version.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["token_revoked_same_process", "token_revoked_other_process", "token_revoked_by_sql",
         "tenant_deleted_tokens_refused", "token_cache_keeps_roles_and_tenants",
         "get_bodies_pass_through"]

f = start("tokcache", TESTS)
acme = f.tenant("acme")
ADMIN = f.token(acme, "admin")


class Other:
    """A second ferryd on the same database (API only)."""

    def __init__(self):
        self.log_path = os.path.join(f.tmp, "ferryd-b.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([f.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", "0",
                                      "--node-id", "b"], env=f.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            m = re.search(r"listening on http://[^:]+:(\d+)/", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("second ferryd did not start: %s" % open(self.log_path).read()[-2000:])

    def get(self, path, token):
        saved = f.port
        f.port = self.port
        try:
            return f.get(path, token)
        finally:
            f.port = saved

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        self.log.close()
        log = open(self.log_path, errors="replace").read()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            check(bad not in log, "second ferryd: sanitizer report: %s" % log[-3000:])
        check_eq(rc, 0, "second ferryd exit status")


B = Other()


def new_token(role="viewer", tenant=None):
    r = f.post("/v1/tokens", {"name": "c", "role": role}, ADMIN)
    check_eq(r.status, 201, "token: %r" % r)
    body = r.json()
    return body["id"], body["token"]


def used_on_both(tok):
    for _ in range(3):
        check_eq(f.get("/v1/me", tok).status, 200, "A accepts the token")
        check_eq(B.get("/v1/me", tok).status, 200, "B accepts the token")


def t_same():
    tid, tok = new_token()
    used_on_both(tok)
    check_eq(f.delete("/v1/tokens/" + tid, ADMIN).status, 204, "revoke")
    check_eq(f.get("/v1/me", tok).status, 401, "A after the revoke")
    check_eq(f.get("/v1/clusters", tok).status, 401, "A after the revoke, another route")
    # Revoking again is still 204 and quick.
    t0 = time.time()
    check_eq(f.delete("/v1/tokens/" + tid, ADMIN).status, 204, "second revoke")
    check(time.time() - t0 < 0.9, "a second revoke does not wait for a notification")


def t_other():
    for i in range(10):
        tid, tok = new_token()
        used_on_both(tok)
        check_eq(f.delete("/v1/tokens/" + tid, ADMIN).status, 204, "revoke %d" % i)
        r = B.get("/v1/me", tok)
        check_eq(r.status, 401, "B right after the revoke on A (round %d)" % i)


def t_sql():
    tid, tok = new_token()
    used_on_both(tok)
    f.sql("UPDATE api_tokens SET revoked_at = now() WHERE id = '%s'" % tid)
    # The NOTIFY is delivered asynchronously to B's listener; it is on its
    # socket within a moment of the commit.
    deadline = time.time() + 1.0
    st = B.get("/v1/me", tok).status
    while st != 401 and time.time() < deadline:
        time.sleep(0.01)
        st = B.get("/v1/me", tok).status
    check_eq(st, 401, "B after a revoke by SQL")
    check_eq(f.get("/v1/me", tok).status, 401, "A after a revoke by SQL")


def t_tenant():
    other = f.tenant("doomed")
    r = f.post("/v1/tokens", {"name": "d", "role": "viewer", "tenant_id": other}, f.platform_token)
    check_eq(r.status, 201, "token of the doomed tenant")
    tok = r.json()["token"]
    used_on_both(tok)
    check_eq(f.delete("/v1/tenants/" + other, f.platform_token).status, 204, "delete tenant")
    check_eq(f.get("/v1/me", tok).status, 401, "A: tenant deleted")
    check_eq(B.get("/v1/me", tok).status, 401, "B: tenant deleted")


def t_roles():
    globex = f.tenant("globex")
    gop = f.token(globex, "operator")
    _, viewer = new_token("viewer")
    r = f.post("/v1/clusters", {"name": "g1", "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "t"}, gop)
    check_eq(r.status, 201, "globex cluster")
    gcid = r.json()["id"]
    for srv in (f, B):
        for _ in range(2):   # second round from the cache
            check_eq(srv.get("/v1/clusters/" + gcid, viewer).status, 404, "another tenant's cluster")
            check_eq(srv.get("/v1/clusters/" + gcid, gop).status, 200, "own cluster")
    for _ in range(2):
        r = f.post("/v1/clusters", {"name": "v", "profile": "tke", "api_server": "https://10.0.0.1",
                                    "token": "t"}, viewer)
        check_eq(r.status, 403, "a cached viewer token still cannot write")


def jansson_compact(body):
    """body as jansson printed it (JSON_COMPACT | JSON_ENSURE_ASCII):
    Python's compact ASCII output with jansson's upper-case \\u hex."""
    text = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=True).encode()
    return re.sub(rb"\\u([0-9a-f]{4})", lambda m: b"\\u" + m.group(1).upper(), text) + b"\n"


def t_bodies():
    op = f.token(acme, "operator")
    labels = {"team": "net-ops", "app.kubernetes.io/name": "x_y.z"}
    r = f.post("/v1/clusters", {"name": "body", "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "t", "labels": labels}, op)
    check_eq(r.status, 201, "cluster: %r" % r)
    cid = r.json()["id"]
    # Job params keep any text: quotes, backslashes, slashes, control
    # characters, non-ASCII and astral characters.
    values = "team: \"caf\u00e9 \\ / \u4e2d \U0001F680\"\n\tx: 1\n"
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": {"values_yaml": [values]}}, op)
    check_eq(r.status, 202, "job: %r" % r)
    jid = r.json()["id"]
    for srv in (f, B):
        g = srv.get("/v1/clusters/" + cid, op)
        check_eq(g.status, 200, "GET cluster")
        check_eq(g.header("Content-Type"), "application/json", "content type")
        check(g.body.endswith(b"}\n") and g.body.count(b"\n") == 1, "one trailing newline: %r" % g.body[-40:])
        check_eq(g.body, jansson_compact(g.body), "compact, ASCII, jansson's escapes")
        cl = g.json()
        check_eq(cl["labels"], labels, "labels round trip")
        check("_version" not in cl, "no hidden members")
        items = [c for c in f.get("/v1/clusters", op).json()["items"] if c["id"] == cid]
        check_eq(cl, items[0], "GET equals the list item")
        check_eq(g.header("ETag"), '"1"', "ETag")
        gj = srv.get("/v1/jobs/" + jid, op)
        check_eq(gj.status, 200, "GET job")
        job = gj.json()
        check(gj.body.endswith(b"}\n"), "newline")
        listed = [j for j in f.get("/v1/jobs", op).json()["items"] if j["id"] == jid][0]
        check_eq(job["phases"], [], "phases")
        job.pop("phases")
        check_eq(job, listed, "GET job equals the list item")
        check_eq(gj.body, jansson_compact(gj.body), "job: compact, ASCII, jansson's escapes")
        check(b"\\u00E9" in gj.body and b"\\uD83D\\uDE80" in gj.body, "jansson's escapes: %r" % gj.body)
        check(all(b < 0x80 for b in gj.body), "ASCII only: %r" % gj.body)
        check_eq(job["params"]["values_yaml"], [values], "params round trip")
        check_eq(srv.get("/v1/jobs/" + jid, ADMIN).status, 200, "same tenant's admin")
    gl = f.tenant("globex2")
    gtok = f.token(gl, "admin")
    check_eq(f.get("/v1/jobs/" + jid, gtok).status, 404, "another tenant's job")
    check_eq(f.get("/v1/clusters/" + cid, gtok).status, 404, "another tenant's cluster")


try:
    run_test("token_revoked_same_process", t_same)
    run_test("token_revoked_other_process", t_other)
    run_test("token_revoked_by_sql", t_sql)
    run_test("tenant_deleted_tokens_refused", t_tenant)
    run_test("token_cache_keeps_roles_and_tenants", t_roles)
    run_test("get_bodies_pass_through", t_bodies)
finally:
    B.stop()
finish(f)
