#!/usr/bin/env python3
"""API integration: the chart resource (POST/GET/DELETE /v1/charts).

Upload of a real chart (shared/charts/cilium-1.18.3.tgz) with the bytes
stored exactly (SHA-256 checked in PostgreSQL), idempotent re-upload (200,
same id), other bytes under a taken version (409), hostile or broken
archives refused with 400 and a clear detail (not gzip, path traversal,
symlink, gzip bomb, missing Chart.yaml, bad version, empty body), 415 for
other content types, roles (viewer cannot upload) and tenant isolation
(404), delete then re-upload.

Skips every test when the ferryd under test has no /v1/charts route yet
(the route table is api/routes.c, added by the lead).
"""
import gzip
import hashlib
import io
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, run_test, skip_all, start)  # noqa: E402

TESTS = ["charts_upload_roundtrip", "charts_idempotent_and_conflict", "charts_hostile_archives",
         "charts_content_type_and_size", "charts_roles_and_isolation", "charts_delete_reupload"]
SHARED = os.environ.get("FERRY_SHARED") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
CHART = os.path.join(SHARED, "charts", "cilium-1.18.3.tgz")
if not os.path.exists(CHART):
    skip_all(TESTS, "no %s" % CHART)

f = start("charts", TESTS)
acme = f.tenant("acme")
other = f.tenant("other")
OP = f.token(acme, "operator")
VIEW = f.token(acme, "viewer")
OTHER = f.token(other, "operator")
REAL = open(CHART, "rb").read()

probe = f.request("GET", "/v1/charts", token=OP)
if probe.status == 404:
    f.stop()
    skip_all(TESTS, "ferryd has no /v1/charts route (api/routes.c entries not added yet)")


def raw_post_declared(path, length):
    """POST with a Content-Length header but only a few body bytes: the
    server must answer before the body it will never read. Returns (status,
    Connection header)."""
    import socket
    s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/gzip\r\nContent-Length: %d\r\n\r\n" % (path, OP, length)).encode()
                  + b"\x1f\x8b")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    conn_hdr = [h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("connection:")]
    return status, conn_hdr[0] if conn_hdr else ""


def upload(data, token=OP, ctype="application/gzip"):
    return f.request("POST", "/v1/charts", raw=data, token=token, content_type=ctype)


def tgz(entries, compress=True):
    """entries: [(name, bytes | None for a dir | ('symlink', target))]."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif isinstance(data, tuple):
                ti.type = tarfile.SYMTYPE
                ti.linkname = data[1]
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    raw = bio.getvalue()
    return gzip.compress(raw) if compress else raw


def chart_yaml(name="cilium", version="1.18.3"):
    return ("apiVersion: v2\nname: %s\nversion: %s\n" % (name, version)).encode()


def t_roundtrip():
    r = upload(REAL)
    check_eq(r.status, 201, "upload: %r" % r)
    c = r.json()
    check_eq(c["name"], "cilium", "name from Chart.yaml")
    check_eq(c["version"], "1.18.3", "version from Chart.yaml")
    check_eq(c["sha256"], hashlib.sha256(REAL).hexdigest(), "sha256")
    check_eq(c["size"], len(REAL), "size")
    check(c.get("app_version") == "1.18.3", "app_version: %r" % c)
    check_eq(r.header("Location"), "/v1/charts/" + c["id"], "Location")
    g = f.get("/v1/charts/" + c["id"], OP)
    check_eq(g.status, 200, "get")
    check_eq(g.json(), c, "get body")
    lst = f.get("/v1/charts?name=cilium", OP).json()
    check([x["id"] for x in lst["items"]] == [c["id"]], "list by name: %r" % lst)
    check_eq(f.get("/v1/charts?name=hubble", OP).json()["items"], [], "other name")
    stored = f.sql("SELECT encode(sha256(archive), 'hex') || ' ' || length(archive) FROM charts WHERE id = '%s'"
                   % c["id"])
    check_eq(stored, "%s %d" % (hashlib.sha256(REAL).hexdigest(), len(REAL)), "stored bytes")


def t_idempotent():
    first = upload(REAL)
    check(first.status in (200, 201), "first: %r" % first)
    again = upload(REAL)
    check_eq(again.status, 200, "re-upload of the same bytes")
    check_eq(again.json()["id"], first.json()["id"], "same chart")
    n = f.sql("SELECT count(*) FROM charts WHERE name = 'cilium' AND version = '1.18.3'")
    check_eq(n, "1", "one row")
    forged = tgz([("cilium/Chart.yaml", chart_yaml()), ("cilium/values.yaml", b"a: 1\n")])
    r = upload(forged)
    p = is_problem(r, 409)
    check("1.18.3" in p["detail"] and "other content" in p["detail"], "detail: %r" % p)


def t_hostile():
    cases = [
        (b"PK\x03\x04 this is a zip, not a tgz" * 4, "not a gzip stream"),
        (gzip.compress(b"hello world" * 100), "not a tar archive"),
        (tgz([("x/Chart.yaml", chart_yaml("x", "0.1.0")), ("x/../../etc/cron.d/evil", b"* * * * * root sh")]),
         "escapes the chart directory"),
        (tgz([("x/Chart.yaml", chart_yaml("x", "0.1.0")), ("x/templates/l.yaml", ("symlink", "/etc/shadow"))]),
         "symbolic link"),
        (tgz([("x/values.yaml", b"a: 1\n")]), "no x/Chart.yaml"),
        (tgz([("x/Chart.yaml", chart_yaml("x", "latest"))]), "SemVer"),
        (tgz([("x/Chart.yaml", chart_yaml("y", "0.1.0"))]), "names the chart"),
        (tgz([("x/Chart.yaml", chart_yaml("x", "0.1.0")), ("y/Chart.yaml", chart_yaml("y", "0.1.0"))]),
         "outside the chart directory"),
        (gzip.compress(b"\0" * (65 * 1024 * 1024 + 1)), "gzip bomb"),
        (REAL[:len(REAL) // 2], "truncated"),
    ]
    for data, needle in cases:
        r = upload(data)
        p = is_problem(r, 400)
        check(needle in p["detail"], "want %r in %r" % (needle, p["detail"]))
    r = upload(b"")
    is_problem(r, 400)
    check_eq(f.sql("SELECT count(*) FROM charts WHERE name <> 'cilium'"), "0", "nothing hostile stored")


def t_content_type():
    r = upload(REAL, ctype="application/json")
    is_problem(r, 415)
    r = upload(REAL, ctype="application/octet-stream")
    check(r.status in (200, 201), "octet-stream accepted: %r" % r)
    # Over the 1 MiB limit: ferryd reads and drops the body, then answers
    # 413 on a cleanly closed connection (it used to answer first and
    # reset the connection under the client still sending: BrokenPipeError).
    for _ in range(5):
        r = upload(b"\x1f\x8b" + b"\0" * (2 * 1024 * 1024))
        is_problem(r, 413)
    # A declared length too large to read is answered at once, and closed.
    r = raw_post_declared("/v1/charts", 64 * 1024 * 1024)
    check_eq(r[0], 413, "declared 64 MiB: %r" % (r,))
    check("close" in r[1].lower(), "Connection: close on the early answer: %r" % (r,))


def t_roles():
    r = upload(REAL, token=VIEW)
    is_problem(r, 403)
    cid = upload(REAL).json()["id"]
    check_eq(f.get("/v1/charts/" + cid, VIEW).status, 200, "viewer reads")
    is_problem(f.get("/v1/charts/" + cid, OTHER), 404)
    is_problem(f.delete("/v1/charts/" + cid, OTHER), 404)
    check_eq(f.get("/v1/charts", OTHER).json()["items"], [], "other tenant sees nothing")
    # The other tenant may upload the same chart: charts are per tenant.
    r = upload(REAL, token=OTHER)
    check_eq(r.status, 201, "other tenant's own upload")
    check(r.json()["id"] != cid, "a different row")
    is_problem(f.request("POST", "/v1/charts", raw=REAL, token=f.platform_token,
                         content_type="application/gzip"))


def t_delete():
    cid = upload(REAL).json()["id"]
    is_problem(f.delete("/v1/charts/" + cid, VIEW), 403)
    check_eq(f.delete("/v1/charts/" + cid, OP).status, 204, "delete")
    is_problem(f.get("/v1/charts/" + cid, OP), 404)
    is_problem(f.delete("/v1/charts/" + cid, OP), 404)
    r = upload(REAL)
    check_eq(r.status, 201, "upload after delete")


run_test("charts_upload_roundtrip", t_roundtrip)
run_test("charts_idempotent_and_conflict", t_idempotent)
run_test("charts_hostile_archives", t_hostile)
run_test("charts_content_type_and_size", t_content_type)
run_test("charts_roles_and_isolation", t_roles)
run_test("charts_delete_reupload", t_delete)
finish(f)
