#!/usr/bin/env python3
"""Security regression suite, API part (issue 13): every case here was a
500, a leak or a wrong answer before the fix.

- sec_api_cursor_out_of_range (finding 4): a cursor whose timestamp is past
  what PostgreSQL holds is a 400 on every cursor-paged list.
- sec_api_userinfo_and_control_chars (finding 6): api_server with userinfo,
  a fragment, a query or control characters, a kubeconfig server: with
  userinfo, a tls_server_name that is not a DNS name or IP: 400, nothing
  stored, the credential never echoed; migration 013 strips user
  information stored before (also from a database dump).
- sec_api_idempotency_scoped_to_cluster (finding 9): a key first used on one
  cluster and replayed on another is a 422, not the first cluster's job.
- sec_api_delete_race (finding 5): deleting a cluster while jobs are being
  created gives only 202/404/409 answers, never a 500.
"""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from apitest import (check, check_eq, finish, is_problem, run_test, start)  # noqa: E402

TESTS = ["sec_api_cursor_out_of_range", "sec_api_userinfo_and_control_chars", "sec_api_stored_userinfo_scrubbed",
         "sec_api_idempotency_scoped_to_cluster", "sec_api_delete_race"]

f = start("sec_api", TESTS)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
ADMIN = f.token(acme, "admin")
n_clusters = [0]


def new_cluster(name):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "tok-" + name}, OP)
    check_eq(r.status, 201, "cluster %s: %r" % (name, r))
    return r.json()["id"]


def t_cursor():
    uuid = "0b9a2e64-8c1f-4e57-9a7c-3d2f1b0e6a11"
    routes = [("/v1/clusters", OP), ("/v1/charts", OP), ("/v1/tokens", ADMIN),
              ("/v1/tenants", f.platform_token)]
    for ts in ("99999999999999999999", "9223372036854775807", "253402300800000000",
               "999999999999999999"):
        for path, tok in routes:
            r = f.get("%s?cursor=%s.%s" % (path, ts, uuid), tok)
            p = is_problem(r, 400)
            check("cursor" in p["detail"], "names the cursor: %r" % p)
    # the largest valid one still works (an empty page)
    for path, tok in routes:
        r = f.get("%s?cursor=253402300799999999.%s" % (path, uuid), tok)
        check_eq(r.status, 200, "%s with the last valid cursor: %r" % (path, r))


def t_userinfo():
    base = {"profile": "tke", "token": "tok"}
    bad_servers = ["https://user:s3cr3t@10.0.0.1:6443", "https://s3cr3t@10.0.0.1",
                   "https://10.0.0.1/#frag", "https://10.0.0.1/?x=1", "https://10.0.0.1/a\r\nb",
                   "https://10.0.0.1/\x00", "https://10.0.0.1/a\\b"]
    for i, s in enumerate(bad_servers):
        r = f.post("/v1/clusters", dict(base, name="bad-url-%d" % i, api_server=s), OP)
        p = is_problem(r, 400)
        check("s3cr3t" not in r.text, "the credential is not echoed: %r" % r)
        if "\x00" not in s:   # (a NUL is already refused by the JSON reader)
            check(any(e.get("field") == "api_server" for e in p.get("errors", [])) or "api_server" in p["detail"],
                  "names api_server: %r" % p)
    for i, name in enumerate(["a\r\nb", "localhost/../../x?", "a b", "", "x" * 254, "-a.b"]):
        r = f.post("/v1/clusters", dict(base, name="bad-tsn-%d" % i, api_server="https://10.0.0.1",
                                        tls_server_name=name), OP)
        is_problem(r, 400)
    for i, name in enumerate(["kubernetes", "api.internal.example", "10.0.0.1", "fe80::1"]):
        r = f.post("/v1/clusters", dict(base, name="ok-tsn-%d" % i, api_server="https://10.0.0.1",
                                        tls_server_name=name), OP)
        check_eq(r.status, 201, "tls_server_name %r: %r" % (name, r))
    kc = ("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
          "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
          "clusters:\n- name: k\n  cluster:\n    server: %s\n%s"
          "users:\n- name: u\n  user: {token: abc}\n")
    for i, (server, extra) in enumerate([("https://admin:s3cr3t@10.0.0.1:6443", ""),
                                         ("https://10.0.0.1:6443", "    tls-server-name: \"a\\r\\nb\"\n")]):
        r = f.post("/v1/clusters", {"name": "bad-kc-%d" % i, "profile": "tke",
                                    "kubeconfig": kc % (server, extra)}, OP)
        is_problem(r, 400)
        check("s3cr3t" not in r.text, "kubeconfig credential not echoed: %r" % r)
    # a PATCH cannot bring userinfo in either
    cid = new_cluster("patch-url")
    r = f.patch("/v1/clusters/" + cid, {"api_server": "https://u:s3cr3t@10.0.0.2"}, OP,
                content_type="application/merge-patch+json")
    check(r.status in (400, 415), "PATCH with userinfo refused: %r" % r)
    check("s3cr3t" not in f.sql("SELECT string_agg(api_server, ' ') FROM clusters"), "nothing stored")


def t_stored_userinfo_scrubbed():
    """Migration 013 removes user information stored before the check."""
    cid = new_cluster("old-url")
    f.sql("UPDATE clusters SET api_server = 'https://admin:s3cr3t@10.0.0.9:6443/k8s' WHERE id = '%s'" % cid)
    f.sql("DELETE FROM ferry_schema_migrations WHERE version = 13")
    out = subprocess.run([f.ferryd, "migrate"], env=f.env, capture_output=True, text=True, timeout=60)
    check_eq(out.returncode, 0, "ferryd migrate: %s %s" % (out.stdout, out.stderr))
    r = f.get("/v1/clusters/" + cid, OP)
    check_eq(r.json()["api_server"], "https://10.0.0.9:6443/k8s", "userinfo removed")
    check("s3cr3t" not in f.pg_dump().decode(errors="replace"), "not in a database dump")


def t_idempotency():
    a = new_cluster("idem-a")
    b = new_cluster("idem-b")
    r1 = f.post("/v1/clusters/%s/jobs" % a, {"kind": "install"}, OP, headers={"Idempotency-Key": "k-1"})
    check_eq(r1.status, 202, "first use: %r" % r1)
    again = f.post("/v1/clusters/%s/jobs" % a, {"kind": "install"}, OP, headers={"Idempotency-Key": "k-1"})
    check_eq(again.status, 202, "replay on the same cluster")
    check_eq(again.json()["id"], r1.json()["id"], "the same job")
    r2 = f.post("/v1/clusters/%s/jobs" % b, {"kind": "install"}, OP, headers={"Idempotency-Key": "k-1"})
    p = is_problem(r2, 422)
    check("another cluster" in p["detail"], "clear message: %r" % p)
    check(r1.json()["id"] not in r2.text, "the other cluster's job is not returned")
    check_eq(f.sql("SELECT count(*) FROM jobs WHERE cluster_id = '%s'" % b), "0", "nothing created on b")


def t_delete_race():
    statuses = []
    lock = threading.Lock()
    for round_ in range(6):
        cid = new_cluster("race-del-%d" % round_)
        barrier = threading.Barrier(9)

        def create():
            barrier.wait()
            for _ in range(4):
                r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP)
                with lock:
                    statuses.append(("job", r.status, r.text[:200]))
                if r.status == 202:
                    f.post("/v1/jobs/%s/cancel" % r.json()["id"], None, OP, content_type=None)

        def delete():
            barrier.wait()
            for _ in range(8):
                r = f.delete("/v1/clusters/" + cid, OP)
                with lock:
                    statuses.append(("delete", r.status, r.text[:200]))
                if r.status in (204, 404):
                    break
        threads = [threading.Thread(target=create) for _ in range(8)] + [threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    bad = [s for s in statuses if s[1] >= 500]
    check(not bad, "no 5xx: %r" % bad[:3])
    check({s[1] for s in statuses if s[0] == "job"} <= {202, 404, 409}, "job answers: %r" %
          sorted({s[1] for s in statuses}))


run_test("sec_api_cursor_out_of_range", t_cursor)
run_test("sec_api_userinfo_and_control_chars", t_userinfo)
run_test("sec_api_stored_userinfo_scrubbed", t_stored_userinfo_scrubbed)
run_test("sec_api_idempotency_scoped_to_cluster", t_idempotency)
run_test("sec_api_delete_race", t_delete_race)
finish(f)
