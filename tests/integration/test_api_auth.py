#!/usr/bin/env python3
"""API integration: tokens, roles and the audit log.

The role matrix: for every route, which kinds of token get in (2xx/4xx from
the handler) and which are refused (401 without/invalid token, 403 for a
role or scope that is not enough). Plus the token lifecycle: shown once,
stored only as a hash, revoked tokens and tokens of deleted tenants stop
working at once, and every mutating request lands in audit_log.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, make_ca, new_uuid,  # noqa: E402
                     run_test, start)

TESTS = ["api_auth_missing_and_bad_tokens", "api_auth_me", "api_auth_role_matrix",
         "api_auth_tenant_admin_scope", "api_auth_revoke", "api_auth_deleted_tenant",
         "api_auth_token_hash_only", "api_auth_audit_log"]

f = start("auth", TESTS)

ca_pem, _ = make_ca(f.tmp)
T = {}


def setup():
    T["acme"] = f.tenant("acme")
    T["beta"] = f.tenant("beta")
    for role in ("admin", "operator", "viewer"):
        T[role] = f.token(T["acme"], role, "acme-" + role)
    T["platform_viewer"] = f.token(None, "viewer", "pviewer")
    T["platform"] = f.platform_token


setup()


def cluster_body(name):
    return {"name": name, "profile": "generic", "api_server": "https://10.0.0.1:6443",
            "ca_bundle": ca_pem, "token": "sa-token-" + name}


def t_missing():
    for path in ("/v1/me", "/v1/clusters", "/v1/jobs", "/v1/tokens", "/v1/tenants"):
        r = f.get(path)
        is_problem(r, 401)
        check(r.header("WWW-Authenticate") is not None, "401 without WWW-Authenticate")
    for tok in ("nonsense", "fy_" + "A" * 43, "", "x" * 300):
        is_problem(f.get("/v1/me", tok), 401)
    r = f.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    is_problem(r, 401)
    # The public endpoints need no token.
    for path in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json"):
        check_eq(f.get(path).status, 200, path)


def t_me():
    r = f.get("/v1/me", T["operator"])
    check_eq(r.status, 200, "me")
    me = r.json()
    check_eq(me["tenant_id"], T["acme"], "tenant_id")
    check_eq(me["tenant_name"], "acme", "tenant_name")
    check_eq(me["role"], "operator", "role")
    r = f.get("/v1/me", T["platform"])
    check_eq(r.json()["tenant_id"], None, "platform tenant")
    check_eq(r.json()["role"], "admin", "platform role")


def t_matrix():
    # A cluster and a job of acme to aim the per-object routes at.
    r = f.post("/v1/clusters", cluster_body("matrix"), T["operator"])
    check_eq(r.status, 201, "cluster: %r" % r)
    cid = r.json()["id"]
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, T["operator"])
    check_eq(r.status, 202, "job: %r" % r)
    jid = r.json()["id"]
    # (method, path, body, allowed token kinds) -- everything else is 403.
    routes = [
        ("GET", "/v1/me", None, {"admin", "operator", "viewer", "platform", "platform_viewer"}),
        ("GET", "/v1/tenants", None, {"platform", "platform_viewer"}),
        ("POST", "/v1/tenants", {"name": "matrix-x"}, {"platform"}),
        ("DELETE", "/v1/tenants/" + new_uuid(), None, {"platform"}),
        ("GET", "/v1/tokens", None, {"admin", "platform"}),
        ("POST", "/v1/tokens", {"name": "m", "role": "viewer"}, {"admin", "platform"}),
        ("DELETE", "/v1/tokens/" + new_uuid(), None, {"admin", "platform"}),
        ("GET", "/v1/clusters", None, {"admin", "operator", "viewer"}),
        ("POST", "/v1/clusters", cluster_body("m-%s"), {"admin", "operator"}),
        ("GET", "/v1/clusters/" + cid, None, {"admin", "operator", "viewer"}),
        ("PATCH", "/v1/clusters/" + cid, {"labels": {"k": "v"}}, {"admin", "operator"}),
        ("DELETE", "/v1/clusters/" + new_uuid(), None, {"admin", "operator"}),
        ("POST", "/v1/clusters/%s/jobs" % new_uuid(), {"kind": "install"}, {"admin", "operator"}),
        ("GET", "/v1/jobs", None, {"admin", "operator", "viewer"}),
        ("GET", "/v1/jobs/" + jid, None, {"admin", "operator", "viewer"}),
        ("GET", "/v1/jobs/%s/events" % jid, None, {"admin", "operator", "viewer"}),
        ("POST", "/v1/jobs/%s/cancel" % new_uuid(), None, {"admin", "operator"}),
    ]
    n = 0
    for method, path, body, allowed in routes:
        for kind in ("admin", "operator", "viewer", "platform", "platform_viewer"):
            b = body
            if isinstance(b, dict) and "name" in b and "%s" in str(b.get("name")):
                n += 1
                b = dict(b, name=b["name"] % n)
            r = f.request(method, path, body=b, token=T[kind],
                          content_type="application/json" if b is not None else None)
            if kind in allowed:
                check(r.status != 403 and r.status != 401,
                      "%s %s as %s was refused: %r" % (method, path, kind, r))
                check(r.status < 500, "%s %s as %s: %r" % (method, path, kind, r))
            else:
                check_eq(r.status, 403, "%s %s as %s" % (method, path, kind))
                is_problem(r, 403)


def t_tenant_admin_scope():
    # A tenant admin creates tokens only in its own tenant.
    r = f.post("/v1/tokens", {"name": "x", "role": "viewer"}, T["admin"])
    check_eq(r.status, 201, "own tenant")
    check_eq(r.json()["tenant_id"], T["acme"], "token tenant defaults to the admin's")
    r = f.post("/v1/tokens", {"name": "x", "role": "viewer", "tenant_id": T["beta"]}, T["admin"])
    is_problem(r, 404)
    # It lists only its tenant's tokens.
    r = f.get("/v1/tokens?limit=200", T["admin"])
    check_eq(r.status, 200, "list")
    for t in r.json()["items"]:
        check_eq(t["tenant_id"], T["acme"], "listed token of another tenant")
        check("token" not in t and "token_hash" not in t, "list leaks secrets: %r" % t)
    # It cannot revoke a beta token.
    r = f.post("/v1/tokens", {"name": "b", "role": "viewer", "tenant_id": T["beta"]}, T["platform"])
    check_eq(r.status, 201, "platform creates beta token")
    beta_tok_id = r.json()["id"]
    is_problem(f.delete("/v1/tokens/" + beta_tok_id, T["admin"]), 404)
    # The platform admin lists everything, or one tenant with ?tenant_id=.
    r = f.get("/v1/tokens?limit=200&tenant_id=" + T["beta"], T["platform"])
    check(all(t["tenant_id"] == T["beta"] for t in r.json()["items"]), "tenant filter")
    check(any(t["id"] == beta_tok_id for t in r.json()["items"]), "beta token listed")
    # Roles must be real.
    p = is_problem(f.post("/v1/tokens", {"name": "x", "role": "root"}, T["admin"]), 400)
    check_eq(p["errors"][0]["field"], "role", "bad role names the field")


def t_revoke():
    r = f.post("/v1/tokens", {"name": "short-lived", "role": "operator"}, T["admin"])
    tok = r.json()["token"]
    tid = r.json()["id"]
    check_eq(f.get("/v1/me", tok).status, 200, "fresh token works")
    check_eq(f.delete("/v1/tokens/" + tid, T["admin"]).status, 204, "revoke")
    is_problem(f.get("/v1/me", tok), 401)
    check_eq(f.delete("/v1/tokens/" + tid, T["admin"]).status, 204, "revoke twice is fine")
    r = f.get("/v1/tokens?limit=200", T["admin"])
    rows = [t for t in r.json()["items"] if t["id"] == tid]
    check(rows and rows[0]["revoked_at"], "revoked_at shown")


def t_deleted_tenant():
    tid = f.tenant("doomed")
    tok = f.token(tid, "admin")
    check_eq(f.get("/v1/me", tok).status, 200, "works before delete")
    # Refused while it has clusters.
    r = f.post("/v1/clusters", cluster_body("d1"), tok)
    check_eq(r.status, 201, "cluster in doomed")
    cid = r.json()["id"]
    p = is_problem(f.delete("/v1/tenants/" + tid, f.platform_token), 409)
    check("cluster" in p["detail"], "409 says why: %r" % p)
    check_eq(f.delete("/v1/clusters/" + cid, tok).status, 204, "delete cluster")
    check_eq(f.delete("/v1/tenants/" + tid, f.platform_token).status, 204, "delete tenant")
    is_problem(f.get("/v1/me", tok), 401)
    is_problem(f.delete("/v1/tenants/" + tid, f.platform_token), 404)
    names = [t["name"] for t in f.get("/v1/tenants?limit=200", f.platform_token).json()["items"]]
    check("doomed" not in names, "deleted tenant still listed")
    # Duplicate tenant names conflict.
    is_problem(f.post("/v1/tenants", {"name": "acme"}, f.platform_token), 409)
    is_problem(f.post("/v1/tenants", {"name": "Not_Valid"}, f.platform_token), 400)


def t_hash_only():
    r = f.post("/v1/tokens", {"name": "hashcheck", "role": "viewer"}, T["admin"])
    secret = r.json()["token"]
    check(secret.startswith("fy_") and len(secret) >= 40, "token shape %r" % secret)
    # Not returned again anywhere.
    lst = f.get("/v1/tokens?limit=200", T["admin"]).text
    check(secret not in lst, "secret in token list")
    dump = f.pg_dump()
    check(secret.encode() not in dump, "token secret in pg_dump")
    stored = f.sql("SELECT token_hash FROM api_tokens WHERE id = '%s'" % r.json()["id"])
    check(len(stored) == 64 and stored != secret, "stored value is a hash")


def t_audit():
    before = int(f.sql("SELECT count(*) FROM audit_log"))
    r = f.post("/v1/clusters", cluster_body("audited"), T["operator"])
    check_eq(r.status, 201, "create")
    cid = r.json()["id"]
    rid = r.header("X-Request-Id")
    f.post("/v1/clusters", cluster_body("denied"), T["viewer"])      # 403
    f.post("/v1/clusters", cluster_body("anon"))                       # 401
    f.get("/v1/clusters", T["viewer"])                                 # reads are not audited
    after = int(f.sql("SELECT count(*) FROM audit_log"))
    check_eq(after - before, 3, "audit rows for 3 mutating requests")
    row = f.sql("SELECT method || ' ' || path || ' ' || status || ' ' || coalesce(target::text,'') || ' '"
                " || coalesce(tenant_id::text,'') FROM audit_log WHERE request_id = '%s'" % rid)
    check_eq(row, "POST /v1/clusters 201 %s %s" % (cid, T["acme"]), "audit row")
    statuses = f.sql("SELECT string_agg(status::text, ',' ORDER BY id) FROM audit_log WHERE id > "
                     "(SELECT max(id) - 2 FROM audit_log)")
    check_eq(statuses, "403,401", "refused requests audited too")
    # A caller's own request id is kept when sane, replaced otherwise.
    r = f.post("/v1/clusters", cluster_body("rid"), T["operator"], headers={"X-Request-Id": "ci-run-42.step_7"})
    check_eq(r.header("X-Request-Id"), "ci-run-42.step_7", "request id echoed")
    check_eq(f.sql("SELECT count(*) FROM audit_log WHERE request_id = 'ci-run-42.step_7'"), "1", "audited under it")
    r = f.get("/v1/me", T["operator"], headers={"X-Request-Id": "bad id\"<>"})
    check(r.header("X-Request-Id") != "bad id\"<>" and len(r.header("X-Request-Id")) == 36, "bad id replaced")
    check("sa-token" not in f.sql("SELECT string_agg(path || coalesce(target,''), ' ') FROM audit_log"),
          "audit holds a credential")


run_test("api_auth_missing_and_bad_tokens", t_missing)
run_test("api_auth_me", t_me)
run_test("api_auth_role_matrix", t_matrix)
run_test("api_auth_tenant_admin_scope", t_tenant_admin_scope)
run_test("api_auth_revoke", t_revoke)
run_test("api_auth_deleted_tenant", t_deleted_tenant)
run_test("api_auth_token_hash_only", t_hash_only)
run_test("api_auth_audit_log", t_audit)
finish(f)
