#!/usr/bin/env python3
"""API integration: tenant isolation on every route.

Tenant beta, with an admin token (the strongest tenant role), aims every
route that takes an object id at tenant acme's cluster and job: each answer
must be 404 problem+json (never 403, never the object), and acme's objects
must be unchanged afterwards. Lists never show another tenant's objects.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, make_ca, run_test, start)  # noqa: E402

TESTS = ["api_isolation_every_route_404", "api_isolation_lists", "api_isolation_unchanged",
         "api_isolation_same_names"]
f = start("isolation", TESTS)
ca_pem, _ = make_ca(f.tmp)

acme = f.tenant("acme")
beta = f.tenant("beta")
A = f.token(acme, "admin")
B = f.token(beta, "admin")


def cluster_body(name, labels=None):
    b = {"name": name, "profile": "tke", "api_server": "https://10.1.0.1", "ca_bundle": ca_pem,
         "token": "secret-" + name}
    if labels:
        b["labels"] = labels
    return b


r = f.post("/v1/clusters", cluster_body("prod-1", {"env": "prod"}), A)
check_eq(r.status, 201, "acme cluster")
CID = r.json()["id"]
ETAG = r.header("ETag")
r = f.post("/v1/clusters/%s/jobs" % CID, {"kind": "install", "params": {"version": "1.18.3"}}, A)
check_eq(r.status, 202, "acme job")
JID = r.json()["id"]
r = f.post("/v1/tokens", {"name": "acme-viewer", "role": "viewer"}, A)
ATOK_ID = r.json()["id"]
BEFORE = f.get("/v1/clusters/" + CID, A).json()


def t_every_route():
    attempts = [
        ("GET", "/v1/clusters/" + CID, None, {}),
        ("PATCH", "/v1/clusters/" + CID, {"labels": {"owned": "beta"}}, {}),
        ("PATCH", "/v1/clusters/" + CID, {"name": "stolen"}, {"If-Match": ETAG}),
        ("DELETE", "/v1/clusters/" + CID, None, {}),
        ("DELETE", "/v1/clusters/" + CID, None, {"If-Match": ETAG}),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"kind": "preflight"}, {}),
        ("POST", "/v1/clusters/%s/jobs" % CID, {"kind": "preflight"}, {"Idempotency-Key": "k1"}),
        ("GET", "/v1/clusters/%s/revisions" % CID, None, {}),
        ("GET", "/v1/clusters/%s/revisions/1" % CID, None, {}),
        ("GET", "/v1/jobs/" + JID, None, {}),
        ("GET", "/v1/jobs/%s/events" % JID, None, {}),
        ("GET", "/v1/jobs/%s/events/stream" % JID, None, {}),
        ("POST", "/v1/jobs/%s/cancel" % JID, None, {}),
        ("DELETE", "/v1/tokens/" + ATOK_ID, None, {}),
        ("DELETE", "/v1/tokens/" + ATOK_ID.upper(), None, {}),
        ("GET", "/v1/clusters/" + CID.upper(), None, {}),
    ]
    for method, path, body, headers in attempts:
        r = f.request(method, path, body=body, token=B, headers=headers,
                      content_type="application/json" if body is not None else None, timeout=10)
        p = is_problem(r, 404)
        check(CID not in r.text.replace(path, "") or "no cluster" in p["detail"],
              "404 leaks object data: %r" % r)
        check("prod-1" not in r.text and "secret" not in r.text, "leak in %r" % r)


def t_lists():
    for path in ("/v1/clusters", "/v1/jobs", "/v1/tokens", "/v1/clusters?selector=env=prod",
                 "/v1/jobs?cluster_id=" + CID, "/v1/jobs?state=queued"):
        r = f.get(path, B)
        check_eq(r.status, 200, path)
        ids = [i["id"] for i in r.json()["items"]]
        check(CID not in ids and JID not in ids and ATOK_ID not in ids,
              "%s shows acme's objects to beta" % path)
        check("prod-1" not in r.text, "%s leaks a name" % path)
    r = f.get("/v1/jobs?cluster_id=" + CID, A)
    check_eq([i["id"] for i in r.json()["items"]], [JID], "acme sees its job")


def t_unchanged():
    after = f.get("/v1/clusters/" + CID, A)
    check_eq(after.status, 200, "acme still has its cluster")
    check_eq(after.json(), BEFORE, "acme cluster changed by beta's attempts")
    check_eq(after.header("ETag"), ETAG, "etag")
    job = f.get("/v1/jobs/" + JID, A).json()
    check_eq(job["state"], "queued", "job state")
    check_eq(job["cancel_requested"], False, "cancel flag")
    check_eq(f.get("/v1/me", f.token(acme, "viewer")).status, 200, "acme tokens work")
    r = f.get("/v1/tokens?limit=200", A)
    t = [x for x in r.json()["items"] if x["id"] == ATOK_ID][0]
    check_eq(t["revoked_at"], None, "acme token revoked by beta")


def t_same_names():
    # Names are unique per tenant, not globally.
    r = f.post("/v1/clusters", cluster_body("prod-1"), B)
    check_eq(r.status, 201, "beta may reuse the name: %r" % r)
    bcid = r.json()["id"]
    check(bcid != CID, "distinct ids")
    is_problem(f.post("/v1/clusters", cluster_body("prod-1"), A), 409)
    # beta's own job on its own cluster works; acme cannot see it.
    r = f.post("/v1/clusters/%s/jobs" % bcid, {"kind": "preflight"}, B)
    check_eq(r.status, 202, "beta job")
    is_problem(f.get("/v1/jobs/" + r.json()["id"], A), 404)
    # A fresh Idempotency-Key does not get around the one-active-job rule.
    r1 = f.post("/v1/clusters/%s/jobs" % bcid, {"kind": "preflight"}, B,
                headers={"Idempotency-Key": "shared-key"})
    check_eq(r1.status, 409, "beta cluster busy")


run_test("api_isolation_every_route_404", t_every_route)
run_test("api_isolation_lists", t_lists)
run_test("api_isolation_unchanged", t_unchanged)
run_test("api_isolation_same_names", t_same_names)
finish(f)
