"""oidctest: a real OpenID provider for the single sign-on tests.

Runs tests/browser/oidc_provider.mjs (the npm package oidc-provider) with
a confidential client for ferryd and test users with groups, signs JWTs
with the provider's own keys (the openssl command) the way an issuer
would, and walks the authorization-code flow with urllib through the
provider's development login and consent pages.
Standard library only (plus node and the npm package).
"""
import base64
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("FERRY_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BROWSER_DIR = os.path.join(SRC, "tests", "browser")

CLIENT_ID = "ferry-console"
CLIENT_SECRET = "console-secret-for-tests"
USERS = {
    "alice": {"groups": ["acme-ops"], "name": "Alice Ops", "email": "alice@example.com"},
    "bob": {"groups": ["acme-viewers"], "name": "Bob Viewer"},
    "carol": {"groups": ["marketing"], "name": "Carol Unmapped"},
    "dave": {"groups": ["platform-admins"], "name": "Dave Platform"},
    "erin": {"groups": ["acme-ops", "globex-admins"], "name": "Erin Both"},
}
ROLE_MAP = ("acme-ops=acme:operator,acme-viewers=acme:viewer,acme-admins=acme:admin,"
            "globex-admins=globex:admin,platform-admins=*:admin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def available():
    """None, or why the provider cannot run here."""
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "oidc-provider")):
        return "npm package oidc-provider missing (cd tests/browser && npm install)"
    return None


class Provider:
    def __init__(self, tmp, redirect_uri, kids=("k1",), port=None):
        self.tmp = tmp
        self.keys_dir = os.path.join(tmp, "idp-keys")
        os.makedirs(self.keys_dir, exist_ok=True)
        self.port = port or free_port()
        self.issuer = "http://127.0.0.1:%d" % self.port
        self.redirect_uri = redirect_uri
        self.proc = None
        self.jwks_fetches = 0
        self.start(kids)

    def start(self, kids):
        cfg = {"port": self.port, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "redirect_uri": self.redirect_uri, "keys_dir": self.keys_dir, "kids": list(kids),
               "users": USERS}
        path = os.path.join(self.tmp, "idp.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.log_path = os.path.join(self.tmp, "idp-%s.log" % "-".join(kids))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "oidc_provider.mjs"), path],
                                     cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "ready " in open(self.log_path).read():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the OpenID provider did not start: %s" % open(self.log_path).read()[-2000:])

    def stop(self):
        if self.proc:
            self.jwks_fetches += self.jwks_count()
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.proc = None

    def restart(self, kids):
        """A key rotation: the same issuer with other keys."""
        self.stop()
        self.start(kids)

    def jwks_count(self):
        return sum(1 for line in open(self.log_path) if line.strip() == "jwks")

    def key_file(self, kid):
        return os.path.join(self.keys_dir, "%s.pem" % kid)

    def ferry_env(self, ferry_port, audience="ferry-api"):
        return {
            "FERRY_OIDC_ISSUER": self.issuer,
            "FERRY_OIDC_CLIENT_ID": CLIENT_ID,
            "FERRY_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "FERRY_OIDC_REDIRECT_URL": "http://127.0.0.1:%d/v1/auth/callback" % ferry_port,
            "FERRY_OIDC_AUDIENCE": audience,
            "FERRY_OIDC_ROLE_MAP": ROLE_MAP,
            "FERRY_OIDC_JWKS_MIN_REFRESH_S": "1",
        }


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(claims, key_file=None, kid="k1", alg="RS256", header=None):
    """A compact JWS signed with key_file (RS256 via openssl) or, for alg
    none/HS256, with a made-up signature."""
    h = {"alg": alg, "typ": "JWT", "kid": kid}
    if header:
        h.update(header)
    signing_input = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=signing_input,
                             capture_output=True, check=True).stdout
    elif alg == "none":
        sig = b""
    else:
        sig = b"\x00" * 32
    return signing_input.decode() + "." + b64u(sig)


def claims(issuer, sub="alice", groups=("acme-ops",), aud="ferry-api", exp_in=300, **extra):
    now = int(time.time())
    c = {"iss": issuer, "sub": sub, "aud": aud, "iat": now, "exp": now + exp_in,
         "groups": list(groups)}
    c.update(extra)
    return c


class _Recorder(urllib.request.HTTPRedirectHandler):
    """Follows redirects like a browser and remembers every URL."""

    def __init__(self):
        self.urls = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.urls.append(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Browser:
    """urllib with a cookie jar: enough of a browser for the provider's
    development login and consent forms."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.redirects = _Recorder()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  self.redirects)

    def open(self, url, data=None, headers=None, method=None):
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            r = self.opener.open(req, timeout=30)
            return r.status, r.geturl(), r.read().decode("utf-8", "replace"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.geturl(), e.read().decode("utf-8", "replace"), e.headers

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c
        return None

    def login(self, ferry_base, user, tenant=None, return_to=None):
        """The whole code flow; returns (status, final url, body) of the last
        answer (ferry's console after a successful sign-in)."""
        q = {}
        if tenant:
            q["tenant"] = tenant
        if return_to:
            q["return_to"] = return_to
        url = ferry_base + "/v1/auth/login" + ("?" + urllib.parse.urlencode(q) if q else "")
        status, where, body, _ = self.open(url)
        for _ in range(4):  # login page, then consent page
            m = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', body)
            if status != 200 or not m or "/interaction/" not in where:
                return status, where, body
            action = urllib.parse.urljoin(where, m.group(1))
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
            if 'name="login"' in body:
                fields.update({"login": user, "password": "any"})
            status, where, body, _ = self.open(action, data=urllib.parse.urlencode(fields).encode())
        return status, where, body
