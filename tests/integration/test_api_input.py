#!/usr/bin/env python3
"""API integration: malformed, oversized and wrongly typed requests.

Every bad request must get a 4xx application/problem+json whose status
member matches, with a detail; unknown fields are named; nothing is
created by a refused request; and ferryd survives all of it (the harness
checks its exit status and sanitizer-free log at the end).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, make_ca, new_uuid,  # noqa: E402
                     run_test, start)

TESTS = ["api_input_not_json", "api_input_content_type", "api_input_oversized",
         "api_input_depth", "api_input_unknown_fields", "api_input_wrong_types",
         "api_input_paths_and_methods", "api_input_query_params", "api_input_nothing_created",
         "api_input_raw_garbage"]
f = start("input", TESTS, extra_args=["--max-body-bytes", "65536"])
ca_pem, _ = make_ca(f.tmp)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
ADM = f.token(acme, "admin")
GOOD = {"name": "good", "profile": "k3s", "api_server": "https://10.0.0.1:6443", "ca_bundle": ca_pem,
        "token": "abc"}
r = f.post("/v1/clusters", GOOD, OP)
check_eq(r.status, 201, "fixture cluster %r" % r)
CID = r.json()["id"]


def t_not_json():
    for raw in (b"{", b"not json", b"{\"name\": }", b"[1,2]", b"\"str\"", b"42", b"null",
                b"{\"name\":\"a\",\"name\":\"b\"}", b"\xff\xfe{}", b"{\"a\":\"\\u0000\"}",
                b"{\"a\":1}\x00", b""):
        r = f.request("POST", "/v1/clusters", raw=raw, token=OP)
        p = is_problem(r, 400)
        check(p["detail"], "detail empty")


def t_content_type():
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
        r = f.request("POST", "/v1/clusters", raw=b'{"name":"x"}', token=OP,
                      content_type=ct)
        is_problem(r, 415)
    r = f.request("POST", "/v1/clusters", raw=b'{"name":"x"}', token=OP,
                  content_type="application/json; charset=utf-8")
    check_eq(r.status, 400, "json with charset accepted, then validated")


def t_oversized():
    big = b'{"name":"' + b"a" * 70000 + b'"}'
    r = f.request("POST", "/v1/clusters", raw=big, token=OP)
    p = is_problem(r, 413)
    check("65536" in p["detail"], "limit named: %r" % p)
    # Chunked upload (no Content-Length) is capped too.
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    head = ("POST /v1/clusters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n" % OP).encode()
    s.sendall(head)
    chunk = b"a" * 8192
    try:
        for _ in range(12):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close early; the answer is what matters
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    check(b" 413 " in data, "chunked oversize answered %r" % data[:200])
    check(b"application/problem+json" in data, "chunked 413 is a problem")
    # Huge declared length, no body sent: refused at once.
    r = f.request("POST", "/v1/clusters", raw=b"", token=OP,
                  headers={"Content-Length": "99999999999"})
    is_problem(r, 413)


def t_depth():
    deep = "[" * 40 + "]" * 40
    r = f.request("POST", "/v1/clusters", raw='{"labels":%s}' % deep, token=OP)
    p = is_problem(r, 400)
    check("depth" in p["detail"], "depth named: %r" % p)
    # Brackets inside strings do not count.
    r = f.request("POST", "/v1/clusters", raw='{"name":"%s"}' % ("[" * 100), token=OP)
    p = is_problem(r, 400)
    check("depth" not in p["detail"], "string brackets counted as depth")


def t_unknown_fields():
    cases = [
        ("/v1/clusters", dict(GOOD, name="u1", colour="blue", apiServer="x"), {"colour", "apiServer"}),
        ("/v1/clusters/%s/jobs" % CID, {"kind": "install", "force": True}, {"force"}),
        ("/v1/tokens", {"role": "viewer", "expires": "never"}, {"expires"}),
    ]
    for path, body, unknown in cases:
        r = f.post(path, body, ADM)
        p = is_problem(r, 400)
        named = {e["field"] for e in p.get("errors", [])}
        check_eq(named, unknown, "unknown fields named in errors of %s" % path)
        for u in unknown:
            check(u in p["detail"], "detail names %s" % u)
    r = f.patch("/v1/clusters/" + CID, {"nmae": "x"}, OP)
    p = is_problem(r, 400)
    check_eq([e["field"] for e in p["errors"]], ["nmae"], "patch unknown field")


def t_wrong_types():
    cases = [
        ("POST", "/v1/clusters", dict(GOOD, name=5), "name"),
        ("POST", "/v1/clusters", dict(GOOD, name="t1", profile=["tke"]), "profile"),
        ("POST", "/v1/clusters", dict(GOOD, name="t2", profile="eks"), "profile"),
        ("POST", "/v1/clusters", dict(GOOD, name="t3", labels=["a"]), "labels"),
        ("POST", "/v1/clusters", dict(GOOD, name="t4", labels={"a": 1}), "labels.a"),
        ("POST", "/v1/clusters", dict(GOOD, name="t5", labels={"bad key!": "v"}), "labels.bad key!"),
        ("POST", "/v1/clusters", dict(GOOD, name="t6", api_server="http://plain:80"), "api_server"),
        ("POST", "/v1/clusters", dict(GOOD, name="t7", ca_bundle="not a pem"), "ca_bundle"),
        ("POST", "/v1/clusters", dict(GOOD, name="t8", token=12), "token"),
        ("POST", "/v1/clusters", dict(GOOD, name="Upper_Case"), "name"),
        ("POST", "/v1/clusters", dict(GOOD, name="t9", token="has space"), "token"),
        ("POST", "/v1/clusters", {"name": "t10", "profile": "tke", "api_server": "https://x"}, "token"),
        ("POST", "/v1/clusters", dict(GOOD, name="t11", client_certificate="x"), None),
        ("POST", "/v1/clusters", dict(GOOD, name="t12", kubeconfig=5), None),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"kind": 1}, "kind"),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"kind": "explode"}, "kind"),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"kind": "install", "params": [1]}, "params"),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"params": {}}, "kind"),
        ("PATCH", "/v1/clusters/" + CID, {"name": None}, "name"),
        ("PATCH", "/v1/clusters/" + CID, {"labels": {"x": 5}}, "labels.x"),
        ("POST", "/v1/tokens", {"role": "admin", "tenant_id": "nope"}, "tenant_id"),
        ("POST", "/v1/tokens", {"role": "admin", "name": 7}, "name"),
    ]
    for method, path, body, field in cases:
        r = f.request(method, path, body=body, token=ADM)
        p = is_problem(r, 400)
        if field:
            fields = [e["field"] for e in p.get("errors", [])]
            check(field in fields, "%s %s %r: errors %r do not name %s" % (method, path, body, fields, field))


def t_paths_methods():
    for path in ("/v1/clusters/not-a-uuid", "/v1/clusters/%s/x" % CID, "/v1/nothing", "/v1/jobs/1",
                 "/v1/clusters/" + new_uuid(), "/v1/jobs/" + new_uuid(), "/v1/clusters/",
                 "/v1/jobs/%s/events" % new_uuid()):
        is_problem(f.get(path, OP), 404)
    # Paths that decode to invalid UTF-8 still get a complete problem.
    for path in ("/v1/%ff%fe", "/v1/clusters/%c3", "/%ff.html"):
        p = is_problem(f.get(path, OP), 404)
        check("?" in p["detail"], "detail kept: %r" % p)
    p = is_problem(f.post("/v1/clusters", {"\u00e9" * 40 + "x": 1}, OP), 400)
    check(p["detail"].startswith("unknown field"), "truncated multibyte name: %r" % p)
    for method, path in (("PUT", "/v1/clusters"), ("DELETE", "/v1/clusters"), ("POST", "/v1/me"),
                         ("PATCH", "/v1/jobs/" + new_uuid()), ("GET", "/v1/clusters/%s/jobs" % CID)):
        r = f.request(method, path, token=OP, content_type=None)
        is_problem(r, 405)
        check(r.header("Allow"), "405 carries Allow")


def t_query():
    for q in ("limit=0", "limit=201", "limit=abc", "limit=", "cursor=garbage", "cursor=1.notauuid",
              "selector=a%3D%3D%3Db", "selector=bad%20key", "selector=,", "selector=k%3D" + "v" * 70):
        is_problem(f.get("/v1/clusters?" + q, OP), 400)
    for q in ("state=sleeping", "cluster_id=xyz", "limit=1000", "cursor=%%%"):
        is_problem(f.get("/v1/jobs?" + q, OP), 400)
    for q in ("after=-1", "after=x", "limit=0", "limit=5000"):
        is_problem(f.get("/v1/jobs/%s/events?%s" % (new_uuid(), q), OP), 400)
    is_problem(f.get("/v1/tenants?cursor=zzz", f.platform_token), 400)
    is_problem(f.get("/v1/tokens?cursor=zzz", ADM), 400)


def t_nothing_created():
    r = f.get("/v1/clusters?limit=200", OP)
    names = [c["name"] for c in r.json()["items"]]
    check_eq(names, ["good"], "refused requests created clusters")
    check_eq(f.sql("SELECT count(*) FROM jobs"), "0", "refused requests created jobs")


def t_raw_garbage():
    # Broken HTTP must not hurt the server.
    for payload in (b"GARBAGE\r\n\r\n", b"GET /v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                    b"POST /v1/clusters HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", f.port), timeout=5)
        try:
            s.sendall(payload)
            s.recv(4096)
        except OSError:
            pass
        s.close()
    check_eq(f.get("/healthz").status, 200, "server alive after garbage")


run_test("api_input_not_json", t_not_json)
run_test("api_input_content_type", t_content_type)
run_test("api_input_oversized", t_oversized)
run_test("api_input_depth", t_depth)
run_test("api_input_unknown_fields", t_unknown_fields)
run_test("api_input_wrong_types", t_wrong_types)
run_test("api_input_paths_and_methods", t_paths_methods)
run_test("api_input_query_params", t_query)
run_test("api_input_nothing_created", t_nothing_created)
run_test("api_input_raw_garbage", t_raw_garbage)
finish(f)
