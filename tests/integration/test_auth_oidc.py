"""test_auth_oidc: single sign-on against a real OpenID provider (issue 15).

The provider is the npm package oidc-provider (tests/browser/
oidc_provider.mjs) with its own RSA keys; ferryd is configured with it as
issuer. Covered:

- the authorization-code flow with PKCE through the provider's login and
  consent pages: session cookie (HttpOnly, SameSite=Lax, not Secure over
  plain HTTP), /v1/auth/session, /v1/me as the person;
- claim (groups) -> tenant + role mapping: operator, viewer, platform-wide,
  a chosen tenant, no mapping = 403;
- CSRF: writes with the cookie need X-CSRF-Token; the audit row names the
  person;
- logout ends the session; a callback cannot be replayed and only
  completes in the browser that started it;
- API clients with the issuer's JWTs: mapped like people; expired,
  forged, wrong-issuer, wrong-audience, alg=none and HS256 tokens refused;
  API tokens keep working;
- key rotation: a token signed by a new key passes once the issuer
  publishes it; unknown key ids refetch the key set at most once a second.
"""
import json
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402
import oidctest  # noqa: E402
from apitest import check, check_eq, run_test  # noqa: E402

NAMES = ["oidc_login_code_flow_session_cookie", "oidc_role_mapping_from_groups",
         "oidc_csrf_required_on_writes", "oidc_logout_ends_session",
         "oidc_callback_replay_and_foreign_state_refused", "oidc_bearer_jwt_mapped",
         "oidc_bearer_jwt_refusals", "oidc_api_tokens_still_work",
         "oidc_key_rotation_and_refetch_rate_limit", "oidc_misconfiguration_refused"]


def main():
    why = oidctest.available()
    if why:
        apitest.skip_all(NAMES, why)
    tmp = tempfile.mkdtemp(prefix="ferry-oidc-")
    ferry_port = oidctest.free_port()
    base = "http://127.0.0.1:%d" % ferry_port
    try:
        idp = oidctest.Provider(tmp, base + "/v1/auth/callback")
    except Exception as e:
        apitest.skip_all(NAMES, "cannot start the OpenID provider: %s" % e, fail=True)
    # The test plays its own TLS-terminating proxy (X-Forwarded-Proto).
    ferry = apitest.start("oidc", NAMES, extra_args=["--listen", "127.0.0.1:%d" % ferry_port,
                                                     "--trusted-proxy", "127.0.0.1"],
                          env=idp.ferry_env(ferry_port))
    acme = ferry.tenant("acme")
    globex = ferry.tenant("globex")

    def with_cookie(browser, method, path, body=None, csrf=None):
        h = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if csrf:
            h["X-CSRF-Token"] = csrf
        status, _, text, headers = browser.open(base + path, data=data, headers=h, method=method)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    sessions = {}

    def signed_in(user, **kw):
        b = oidctest.Browser()
        status, where, body = b.login(base, user, **kw)
        check_eq(status, 200, "sign-in of %s ended at %s: %s" % (user, where, body[:300]))
        check(where.startswith(base + "/"), "landed on %s" % where)
        st, s = with_cookie(b, "GET", "/v1/auth/session")
        check_eq(st, 200, "GET /v1/auth/session")
        check(s["session"] is not None, "no session after sign-in: %r" % s)
        return b, s["session"]

    def code_flow():
        b, s = signed_in("alice", return_to="/#/clusters")
        check("/#/clusters" in b.redirects.urls[-1], "return_to not honoured: %r" % b.redirects.urls[-1:])
        # The flow went through the provider with PKCE S256 and a nonce.
        auth = [u for u in b.redirects.urls if u.startswith(idp.issuer + "/auth?")]
        check(auth, "no authorization request: %r" % b.redirects.urls)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(auth[0]).query)
        check_eq(q.get("code_challenge_method"), ["S256"], "PKCE method")
        check(len(q.get("code_challenge", [""])[0]) == 43, "PKCE challenge")
        check(q.get("nonce") and q.get("state"), "nonce and state")
        c = b.cookie("ferry_session")
        check(c is not None, "no ferry_session cookie")
        check(c.has_nonstandard_attr("HttpOnly"), "cookie not HttpOnly")
        check_eq(c.get_nonstandard_attr("SameSite"), "Lax", "SameSite")
        check(not c.secure, "Secure over plain HTTP would never be sent back")
        check_eq(c.path, "/", "cookie path")
        # Behind a TLS-terminating proxy the cookies are Secure.
        r = ferry.get("/v1/auth/login", headers={"X-Forwarded-Proto": "https"})
        check_eq(r.status, 302, "login behind the proxy")
        check(r.header("Set-Cookie").endswith("; Secure"), "cookie over https: %s" % r.header("Set-Cookie"))
        check_eq(r.header("Strict-Transport-Security"), "max-age=31536000", "HSTS")
        r = ferry.get("/v1/auth/login")
        check("Secure" not in r.header("Set-Cookie"), "cookie over http: %s" % r.header("Set-Cookie"))
        check_eq(b.cookie("ferry_login"), None, "login cookie left behind")
        check_eq(s["role"], "operator", "alice's role")
        check_eq(s["tenant_name"], "acme", "alice's tenant")
        check_eq(s["subject"], "alice", "subject")
        check_eq(s["name"], "Alice Ops", "name claim")
        check(len(s["csrf_token"]) >= 32, "csrf token")
        st, me = with_cookie(b, "GET", "/v1/me")
        check_eq(st, 200, "/v1/me with the session")
        check_eq(me["subject"], "oidc:alice", "me.subject")
        check_eq(me["tenant_id"], acme, "me.tenant_id")
        check_eq(ferry.sql("SELECT count(*) FROM auth_sessions WHERE subject = 'alice'"), "1", "session row")
        check(ferry.sql("SELECT secret_hash FROM auth_sessions WHERE subject = 'alice'") != c.value,
              "the secret itself is stored")
        sessions["alice"] = (b, s)

    def role_mapping():
        b, s = signed_in("bob")
        check_eq((s["role"], s["tenant_name"]), ("viewer", "acme"), "bob")
        st, _ = with_cookie(b, "GET", "/v1/clusters")
        check_eq(st, 200, "viewer reads")
        st, p = with_cookie(b, "POST", "/v1/clusters", {}, csrf=s["csrf_token"])
        check_eq(st, 403, "viewer writes: %r" % p)
        b, s = signed_in("dave")
        check_eq((s["role"], s["tenant_id"]), ("admin", None), "dave platform-wide")
        st, _ = with_cookie(b, "GET", "/v1/tenants")
        check_eq(st, 200, "platform admin lists tenants")
        b, s = signed_in("erin")
        check_eq((s["role"], s["tenant_name"]), ("operator", "acme"), "erin: first rule's tenant")
        b, s = signed_in("erin", tenant="globex")
        check_eq((s["role"], s["tenant_id"]), ("admin", globex), "erin asking for globex")
        b = oidctest.Browser()
        status, where, body = b.login(base, "carol")
        check_eq(status, 403, "carol has no mapped group: %s" % body[:200])
        check("no FERRY_OIDC_ROLE_MAP rule matches" in body, body[:300])
        check_eq(b.cookie("ferry_session"), None, "carol got a session")
        b = oidctest.Browser()
        status, where, body = b.login(base, "alice", tenant="globex")
        check_eq(status, 403, "alice asking for a tenant she has no group for")

    def csrf():
        b, s = sessions["alice"]
        st, p = with_cookie(b, "POST", "/v1/clusters", {})
        check_eq(st, 403, "write without CSRF header: %r" % p)
        check("CSRF" in p["detail"], p["detail"])
        st, p = with_cookie(b, "POST", "/v1/clusters", {}, csrf="x" * len(s["csrf_token"]))
        check_eq(st, 403, "write with a wrong CSRF token")
        before = ferry.sql("SELECT count(*) FROM audit_log WHERE actor = 'oidc:alice'")
        st, p = with_cookie(b, "POST", "/v1/clusters", {"name": "c1"}, csrf=s["csrf_token"])
        check(st in (400, 422), "write with the CSRF token passes auth (then validation): %d %r" % (st, p))
        after = ferry.sql("SELECT count(*) FROM audit_log WHERE actor = 'oidc:alice'")
        check_eq(int(after), int(before) + 1, "audit row with the person as actor")
        check_eq(ferry.sql("SELECT coalesce(token_id::text, 'none') FROM audit_log WHERE actor = 'oidc:alice' ORDER BY id DESC LIMIT 1"),
                 "none", "audit token_id under SSO")
        # A cookie never counts when an Authorization header is present.
        st, _, _, _ = b.open(base + "/v1/me", headers={"Authorization": "Bearer fy_wrong"})
        check_eq(st, 401, "bad bearer next to a good cookie")

    def logout():
        b, s = sessions["alice"]
        st, _ = with_cookie(b, "POST", "/v1/auth/logout")
        check_eq(st, 403, "logout without CSRF")
        st, out = with_cookie(b, "POST", "/v1/auth/logout", csrf=s["csrf_token"])
        check_eq(st, 200, "logout")
        check_eq(out["signed_out"], True, "signed_out")
        check(out["end_session_endpoint"].startswith(idp.issuer), "end_session_endpoint %r" % out)
        check_eq(ferry.sql("SELECT count(*) FROM auth_sessions WHERE subject = 'alice'"), "0", "row deleted")
        check_eq(b.cookie("ferry_session"), None, "cookie cleared")
        # The old cookie value, replayed by hand, is dead.
        old = ferry.request("GET", "/v1/me", headers={"Cookie": "ferry_session=" + sessions["alice_cookie"]})
        check_eq(old.status, 401, "old session cookie after logout")
        st, sess = with_cookie(b, "GET", "/v1/auth/session")
        check_eq(sess["session"], None, "session after logout")

    def replay():
        b = oidctest.Browser()
        status, where, body = b.login(base, "alice")
        check_eq(status, 200, "sign-in")
        cb = [u for u in b.redirects.urls if "/v1/auth/callback?" in u]
        check(cb, "no callback seen")
        st, _, body, _ = b.open(cb[-1])
        check_eq(st, 400, "replayed callback: %s" % body[:200])
        # Another browser (no login cookie) with a fresh state is refused.
        b2 = oidctest.Browser()
        st, where, body, _ = b2.open(base + "/v1/auth/login")
        state = urllib.parse.parse_qs(urllib.parse.urlparse(b2.redirects.urls[0]).query)["state"][0]
        st, _, body, _ = oidctest.Browser().open(base + "/v1/auth/callback?code=abc&state=" + state)
        check_eq(st, 400, "callback from a browser that did not start: %s" % body[:200])
        check("not started from this browser" in body, body[:200])
        st, _, body, _ = b2.open(base + "/v1/auth/callback?error=access_denied&state=" + state)
        check_eq(st, 401, "provider refusal")
        st, _, body, _ = b2.open(base + "/v1/auth/login?return_to=//evil.example/")
        check_eq(st, 400, "open redirect refused")

    key1 = idp.key_file("k1")

    def bearer_mapped():
        tok = oidctest.sign_jwt(oidctest.claims(idp.issuer), key1)
        r = ferry.get("/v1/me", token=tok)
        check_eq(r.status, 200, "JWT bearer: %r" % r)
        check_eq((r.json()["role"], r.json()["tenant_id"], r.json()["subject"]),
                 ("operator", acme, "oidc:alice"), "mapped")
        r = ferry.post("/v1/clusters", {}, token=tok)
        check(r.status in (400, 422), "operator JWT writes without CSRF (no cookie): %r" % r)
        # A job started by an issuer's JWT (no API token behind it).
        t = ferry.token(acme, "operator")
        c = ferry.post("/v1/clusters", {"name": "jwt-c1", "profile": "generic",
                                         "api_server": "https://127.0.0.1:9", "token": "x"}, token=t)
        check_eq(c.status, 201, "cluster: %r" % c)
        j = ferry.post("/v1/clusters/%s/jobs" % c.json()["id"], {"kind": "preflight"}, token=tok)
        check_eq(j.status, 202, "job started with a JWT: %r" % j)
        check_eq(ferry.sql("SELECT actor FROM audit_log WHERE target = '%s'" % j.json()["id"]),
                 "oidc:alice", "audit actor of the job")
        tok = oidctest.sign_jwt(oidctest.claims(idp.issuer, sub="ci", groups=["acme-viewers"]), key1)
        r = ferry.post("/v1/clusters", {}, token=tok)
        check_eq(r.status, 403, "viewer JWT write")
        tok = oidctest.sign_jwt(oidctest.claims(idp.issuer, sub="e", groups=["acme-ops", "globex-admins"]), key1)
        r = ferry.get("/v1/me", token=tok, headers={"X-Ferry-Tenant": "globex"})
        check_eq((r.status, r.json().get("tenant_id"), r.json().get("role")), (200, globex, "admin"),
                 "X-Ferry-Tenant")
        tok = oidctest.sign_jwt(oidctest.claims(idp.issuer, groups=["marketing"]), key1)
        check_eq(ferry.get("/v1/me", token=tok).status, 403, "unmapped groups")
        # An ID token for the console client is not an API token.
        tok = oidctest.sign_jwt(oidctest.claims(idp.issuer, aud=oidctest.CLIENT_ID), key1)
        check_eq(ferry.get("/v1/me", token=tok).status, 401, "console audience on the API")

    def bearer_refusals():
        other = os.path.join(tmp, "attacker.pem")
        apitest.subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", other,
                                "-pkeyopt", "rsa_keygen_bits:2048"], check=True, capture_output=True)
        cases = [
            ("expired", oidctest.sign_jwt(oidctest.claims(idp.issuer, exp_in=-600), key1), "expired"),
            ("forged", oidctest.sign_jwt(oidctest.claims(idp.issuer), other), "signature"),
            ("wrong issuer", oidctest.sign_jwt(oidctest.claims("http://127.0.0.1:1"), key1), "issuer"),
            ("wrong audience", oidctest.sign_jwt(oidctest.claims(idp.issuer, aud="someone-else"), key1), "audience"),
            ("not yet valid", oidctest.sign_jwt(oidctest.claims(idp.issuer, nbf=int(time.time()) + 3600), key1), "not valid yet"),
            ("alg none", oidctest.sign_jwt(oidctest.claims(idp.issuer), alg="none") + "AA", "algorithm"),
            ("HS256", oidctest.sign_jwt(oidctest.claims(idp.issuer), alg="HS256"), "algorithm"),
        ]
        for what, tok, word in cases:
            r = ferry.get("/v1/me", token=tok)
            p = apitest.is_problem(r, 401)
            check(word in p["detail"], "%s: detail %r" % (what, p["detail"]))
        # Tampered claims under a valid signature.
        good = oidctest.sign_jwt(oidctest.claims(idp.issuer), key1)
        h, c, s = good.split(".")
        evil = oidctest.claims(idp.issuer, groups=["platform-admins"])
        tampered = h + "." + oidctest.b64u(json.dumps(evil).encode()) + "." + s
        check_eq(ferry.get("/v1/tenants", token=tampered).status, 401, "tampered groups")

    def api_tokens():
        t = ferry.token(acme, "operator")
        r = ferry.get("/v1/me", token=t)
        check_eq(r.status, 200, "API token")
        check("subject" not in r.json(), "API token has no subject")
        check_eq(ferry.get("/v1/me", token=ferry.platform_token).status, 200, "platform token")
        check_eq(ferry.get("/v1/me", token="fy_unknown").status, 401, "unknown token")

    def rotation():
        key2 = idp.key_file("k2")
        # k2 does not exist yet at the provider: make it by restarting with both.
        idp.restart(["k1", "k2"])
        time.sleep(1.1)
        tok2 = oidctest.sign_jwt(oidctest.claims(idp.issuer), key2, kid="k2")
        r = ferry.get("/v1/me", token=tok2)
        check_eq(r.status, 200, "token of the new key after rotation: %r" % r)
        # Drop k1: its tokens fail once the set is fetched again.
        idp.restart(["k2"])
        before = idp.jwks_count()
        time.sleep(1.1)
        bogus = oidctest.sign_jwt(oidctest.claims(idp.issuer), key2, kid="made-up")
        t0 = time.time()
        n = 0
        while time.time() - t0 < 1.5:
            check_eq(ferry.get("/v1/me", token=bogus).status, 401, "unknown kid")
            n += 1
        fetched = idp.jwks_count() - before
        check(n >= 5, "only %d requests" % n)
        check(1 <= fetched <= 3, "%d JWKS fetches for %d unknown-kid requests in 1.5 s" % (fetched, n))
        tok1 = oidctest.sign_jwt(oidctest.claims(idp.issuer), key1, kid="k1")
        check_eq(ferry.get("/v1/me", token=tok1).status, 401, "retired key k1 after refetch")
        check_eq(ferry.get("/v1/me", token=tok2).status, 200, "k2 still good")

    def misconfig():
        env = dict(ferry.env)
        for k, v, word in (("FERRY_OIDC_ROLE_MAP", "ops=acme", "GROUP=TENANT:ROLE"),
                           ("FERRY_OIDC_ROLE_MAP", "ops=acme:root", "bad tenant"),
                           ("FERRY_OIDC_REDIRECT_URL", "http://ferry.example/cb", "REDIRECT_URL"),
                           ("FERRY_OIDC_ISSUER", "http://idp.example", "https://"),
                           ("FERRY_OIDC_CLIENT_ID", "", "CLIENT_ID")):
            e = dict(env)
            e[k] = v
            out = apitest.subprocess.run([ferry.ferryd, "serve", "--listen", "127.0.0.1:0"], env=e,
                                         capture_output=True, text=True, timeout=60)
            check_eq(out.returncode, 2, "%s=%s exit status" % (k, v))
            check(word in out.stderr, "%s=%s: %s" % (k, v, out.stderr))

    run_test("oidc_login_code_flow_session_cookie", code_flow)
    if "alice" in sessions:
        sessions["alice_cookie"] = sessions["alice"][0].cookie("ferry_session").value
    run_test("oidc_role_mapping_from_groups", role_mapping)
    run_test("oidc_csrf_required_on_writes", csrf)
    run_test("oidc_logout_ends_session", logout)
    run_test("oidc_callback_replay_and_foreign_state_refused", replay)
    run_test("oidc_bearer_jwt_mapped", bearer_mapped)
    run_test("oidc_bearer_jwt_refusals", bearer_refusals)
    run_test("oidc_api_tokens_still_work", api_tokens)
    run_test("oidc_key_rotation_and_refetch_rate_limit", rotation)
    run_test("oidc_misconfiguration_refused", misconfig)
    idp.stop()
    apitest.finish(ferry)


if __name__ == "__main__":
    main()
