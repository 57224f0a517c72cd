"""apitest: shared helpers for the API integration tests (test_api_*.py).

Each test script gets its own database (created through
FERRY_TEST_PG_ADMIN_URL), its own master key and its own `ferryd serve` on a
free port with no workers (jobs stay queued, so tests are deterministic),
bootstraps a platform admin token with `ferryd token create --platform`,
and talks plain HTTP with urllib. Output follows the suite's convention:
one "PASS: name" / "FAIL: name: why" / "SKIP: name: why" line per test.

At the end ferryd gets SIGTERM and must exit 0 without sanitizer reports in
its log; otherwise that is a failure too.
Standard library only.
"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid

PASSED = 0
FAILED = 0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def check_eq(got, want, what=""):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def run_test(name, fn):
    global PASSED, FAILED
    try:
        fn()
    except Failure as e:
        FAILED += 1
        print("FAIL: %s: %s" % (name, e), flush=True)
        return
    except Exception as e:  # a crash in the test itself is a failure too
        FAILED += 1
        print("FAIL: %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        traceback.print_exc(file=sys.stdout)
        return
    PASSED += 1
    print("PASS: %s" % name, flush=True)


def skip_all(names, why, fail=False):
    """Report every test as skipped (environment missing) or, with fail,
    as failed (ferryd could not be started)."""
    for n in names:
        print("%s: %s: %s" % ("FAIL" if fail else "SKIP", n, why))
    sys.exit(1 if fail else 0)


def start(tag, names, **kw):  # noqa: E302
    try:
        return Ferry(tag, **kw)
    except EnvironmentError as e:
        skip_all(names, str(e))
    except Exception as e:
        skip_all(names, "could not start ferryd: %s" % e, fail=True)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", "replace")
        self._json = None

    def json(self):
        if self._json is None:
            self._json = json.loads(self.text)
        return self._json

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:300])


class Ferry:
    """A ferryd under test with its own database."""

    def __init__(self, tag, extra_args=(), workers=0, ssl_context=None, env=None):
        self.tag = tag
        self.build = os.environ.get("FERRY_BUILD", "")
        self.ferryd = shutil.which("ferryd") or os.path.join(self.build, "ferryd")
        admin = os.environ.get("FERRY_TEST_PG_ADMIN_URL")
        base = os.environ.get("FERRY_TEST_DATABASE_URL")
        if not admin or not base or not os.path.exists(self.ferryd):
            raise EnvironmentError("needs FERRY_TEST_PG_ADMIN_URL and a built ferryd (run via tests/run)")
        self.dbname = "ferry_api_%s_%d" % (tag, os.getpid())
        subprocess.run(["psql", "-q", "-X", admin, "-c", 'DROP DATABASE IF EXISTS "%s"' % self.dbname],
                       check=True, capture_output=True)
        subprocess.run(["psql", "-q", "-X", admin, "-c", 'CREATE DATABASE "%s"' % self.dbname],
                       check=True, capture_output=True)
        # Same server as the test database URL, another database name.
        left, _, query = base.partition("?")
        self.db_url = left.rsplit("/", 1)[0] + "/" + self.dbname + ("?" + query if query else "")
        self.admin_url = admin
        self.key = "k1:" + secrets.token_hex(32)
        self.tmp = tempfile.mkdtemp(prefix="ferry-api-")
        self.env = dict(os.environ)
        self.env.update({
            "FERRY_DATABASE_URL": self.db_url,
            "FERRY_MASTER_KEY": self.key,
            "FERRY_LOG_LEVEL": "info",
        })
        self.env.pop("FERRY_MASTER_KEY_FILE", None)
        if env:
            self.env.update(env)
        # With TLS (--tls-cert) requests go through this client context.
        self.ssl_context = ssl_context
        out = subprocess.run([self.ferryd, "token", "create", "--platform", "--name", "bootstrap"],
                             env=self.env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("ferryd token create failed: %s %s" % (out.stdout, out.stderr))
        self.platform_token = out.stdout.strip().splitlines()[-1].strip()
        self.log_path = os.path.join(self.tmp, "ferryd.log")
        self.log = open(self.log_path, "w")
        args = [self.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", str(workers),
                "--web-root", os.path.join(os.environ.get("FERRY_SRC", "."), "web")] + list(extra_args)
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("ferryd exited early: %s" % open(self.log_path).read()[-2000:])
            m = re.search(r"listening on https?://[^:]+:(\d+)/", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("ferryd did not start: %s" % open(self.log_path).read()[-2000:])

    # ---- HTTP
    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                content_type="application/json", timeout=30):
        if self.ssl_context:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {}
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            h["Content-Type"] = content_type
        if headers:
            h.update(headers)
        try:
            conn.request(method, path, body=data, headers=h)
        except (BrokenPipeError, ConnectionResetError):
            # A server may answer (e.g. 413) before the whole body is sent and
            # stop reading: the answer is still there to read.
            pass
        r = conn.getresponse()
        resp = Resp(r.status, r.getheaders(), r.read())
        conn.close()
        return resp

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)

    def post(self, path, body, token=None, **kw):
        return self.request("POST", path, body=body, token=token, **kw)

    def patch(self, path, body, token=None, **kw):
        return self.request("PATCH", path, body=body, token=token, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token=token, **kw)

    # ---- fixtures
    def tenant(self, name):
        r = self.post("/v1/tenants", {"name": name}, self.platform_token)
        check_eq(r.status, 201, "create tenant %s: %r" % (name, r))
        return r.json()["id"]

    def token(self, tenant_id, role, name="t"):
        body = {"name": name, "role": role}
        if tenant_id:
            body["tenant_id"] = tenant_id
        r = self.post("/v1/tokens", body, self.platform_token)
        check_eq(r.status, 201, "create token: %r" % r)
        return r.json()["token"]

    def wait_campaign(self, cid, token, cond, timeout, what):
        """Polls GET /v1/campaigns/{cid} until cond(campaign) holds; returns
        the campaign, or fails naming `what` with its state, reason and
        counts."""
        end = time.time() + timeout
        c = None
        while time.time() < end:
            c = self.get("/v1/campaigns/" + cid, token).json()
            if cond(c):
                return c
            time.sleep(0.2)
        raise Failure("timed out waiting for %s: %r" % (what, {k: c.get(k) for k in ("state", "reason", "counts")}))

    def sql(self, query):
        out = subprocess.run(["psql", "-X", "-A", "-t", "-q", self.db_url, "-c", query],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise Failure("psql failed: %s" % out.stderr)
        return out.stdout.strip()

    def pg_dump(self):
        out = subprocess.run(["pg_dump", "--no-owner", self.db_url],
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise Failure("pg_dump failed: %s" % out.stderr.decode(errors="replace"))
        return out.stdout

    def stop(self):
        """SIGTERM ferryd; it must exit 0 and its log be free of sanitizer
        reports. Returns a failure message or None."""
        msg = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = "timeout"
            if rc != 0:
                msg = "ferryd exited with %s" % rc
        self.log.close()
        log = open(self.log_path, errors="replace").read()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
            if bad in log:
                i = log.index(bad)
                msg = "ferryd log has a sanitizer report: %s" % log[max(0, i - 200):i + 3000]
                break
        subprocess.run(["psql", "-q", "-X", self.admin_url, "-c",
                        'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname],
                       capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return msg


def is_problem(r, status=None):
    """r must be an application/problem+json with matching status."""
    ct = r.header("Content-Type") or ""
    check(ct.startswith("application/problem+json"), "not problem+json (%s): %r" % (ct, r))
    p = r.json()
    for k in ("type", "title", "status", "detail"):
        check(k in p, "problem lacks %s: %r" % (k, r))
    check_eq(p["status"], r.status, "problem status member")
    if status is not None:
        check_eq(r.status, status, "status of %r" % r)
    return p


def finish(ferry):
    global FAILED
    if ferry is not None:
        msg = ferry.stop()
        if msg:
            FAILED += 1
            print("FAIL: ferryd_shutdown_%s: %s" % (ferry.tag, msg))
        else:
            print("PASS: ferryd_shutdown_%s" % ferry.tag)
    print("%d passed, %d failed" % (PASSED, FAILED))
    sys.exit(1 if FAILED else 0)


def make_ca(tmpdir, cn="ferry-test-ca"):
    """A self-signed CA (PEM) made with the openssl command."""
    key = os.path.join(tmpdir, cn + ".key")
    crt = os.path.join(tmpdir, cn + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + cn], check=True, capture_output=True)
    return open(crt).read(), open(key).read()


class Kubesim:
    """A kubesim process for a test script: started in a temp directory,
    ready once kubesim.json exists (self.info), stopped by stop().
    It exits with the test process (--exit-with-parent)."""

    def __init__(self, args, names, prefix="ferry-kubesim-"):
        binary = shutil.which("kubesim")
        if not binary:
            skip_all(names, "kubesim is not built")
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.proc = subprocess.Popen([binary, "--dir", self.dir, "--quiet", "--exit-with-parent"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.info = None
        for _ in range(200):
            p = os.path.join(self.dir, "kubesim.json")
            if os.path.exists(p):
                self.info = json.load(open(p))
                break
            time.sleep(0.05)
        if not self.info:
            self.stop()
            skip_all(names, "kubesim did not start", fail=True)

    def cluster(self, name):
        """The kubesim.json entry of one simulated cluster."""
        return [c for c in self.info["clusters"] if c["name"] == name][0]

    def admin(self, method, path, body=None):
        """A call of kubesim's admin API (/_sim/...) with an optional JSON
        body; returns the JSON answer."""
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=self.info["ca"])
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.info["port"], path), method=method,
                                     data=data, headers={"Authorization": "Bearer " + self.info["admin_token"],
                                                         "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.load(r)

    def slow(self, name, ms, path_contains="/version"):
        """Make a job slow without test code in ferryd: kubesim holds every
        request of cluster `name` whose path contains path_contains for ms
        (a connection-only preflight asks /version once); ms=0 clears."""
        self.admin("PUT", "/_sim/clusters/%s/faults" % name,
                   {"latency_ms": ms, "path_contains": path_contains} if ms else {})

    def fail_next(self, name, n, code=503, path_contains="/version"):
        """The next n matching requests of cluster `name` get `code` (503:
        a phase retry of class server_error, 429: throttled)."""
        self.admin("PUT", "/_sim/clusters/%s/faults" % name,
                   {"fail_next": n, "error_codes": [code], "retry_after_s": 0, "path_contains": path_contains})

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def new_uuid():
    return str(uuid.uuid4())
