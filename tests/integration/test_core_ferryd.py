#!/usr/bin/env python3
"""ferryd as a program: subcommands, configuration errors, the embedded
PostgreSQL with --demo (tenant, tokens printed once, kubesim cluster when
built), and a clean stop on SIGINT/SIGTERM.

Uses the real binary, a real PostgreSQL (tests/run's for the URL-configured
cases, a private embedded one for --demo) and plain HTTP to the API.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("FERRY_BUILD", "")
ADMIN = os.environ.get("FERRY_TEST_PG_ADMIN_URL", "")
FERRYD = os.path.join(BUILD, "ferryd")
KEY = "k1:" + "cd" * 32
results = {"passed": 0, "failed": 0}


def run(name, fn):
    errors = []
    try:
        fn(lambda cond, what: errors.append(what) if not cond else None)
    except Exception as e:
        errors.append("%s: %s" % (type(e).__name__, e))
    if errors:
        results["failed"] += 1
        print("FAIL: %s: %s" % (name, "; ".join(errors)))
    else:
        results["passed"] += 1
        print("PASS: %s" % name)
    sys.stdout.flush()


def ferryd(args, env=None, timeout=60):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("FERRY_") and k not in ("FERRY_BUILD", "FERRY_SRC", "FERRY_SHARED"):
            del e[k]
    e.update(env or {})
    return subprocess.run([FERRYD] + args, capture_output=True, text=True, env=e, timeout=timeout)


def http(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def psql(url, sql):
    out = subprocess.run(["psql", url, "-tAq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def t_cli(check):
    r = ferryd(["version"])
    check(r.returncode == 0 and r.stdout.startswith("ferryd "), "version prints ferryd X")
    for cmd in (["serve", "--help"], ["migrate", "--help"], ["token", "create", "--help"], ["version", "--help"], ["--help"]):
        r = ferryd(cmd)
        check(r.returncode == 0 and "usage: ferryd" in r.stdout, "%s prints usage" % " ".join(cmd))
    r = ferryd(["frobnicate"])
    check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command refused")
    r = ferryd(["serve", "--bogus"])
    check(r.returncode == 2 and "unknown option --bogus" in r.stderr, "unknown option refused")
    # Bad settings stop start-up with one clear line naming the setting.
    cases = [
        ({"FERRY_WORKERS": "lots"}, "FERRY_WORKERS"),
        ({"FERRY_LOG_LEVEL": "chatty"}, "FERRY_LOG_LEVEL"),
        ({"FERRY_LISTEN": "nowhere"}, "FERRY_LISTEN"),
        ({"FERRY_DATABASE_URL": "postgresql:///x?host=/nonexistent"}, "no master key"),
        ({"FERRY_DATABASE_URL": "postgresql:///x?host=/nonexistent", "FERRY_MASTER_KEY": "k1:12"}, "FERRY_MASTER_KEY"),
        ({"FERRY_DATABASE_URL": "postgresql:///x?host=/nonexistent", "FERRY_MASTER_KEY_FILE": "/nonexistent/key"}, "master key file"),
        ({"FERRY_DATABASE_URL": "postgresql:///x?host=/nonexistent", "FERRY_MASTER_KEY": KEY}, "cannot connect"),
    ]
    for env, want in cases:
        r = ferryd(["serve"], env)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode != 0, "%s: exits non-zero" % env)
        check(len(lines) == 1 and want in lines[0], "%s: one line naming %r, got %r" % (env, want, r.stderr[-300:]))
    r = ferryd(["token", "create", "--tenant", "x", "--role", "boss"])
    check(r.returncode == 2 and "--role must be" in r.stderr, "bad role refused")


def t_migrate_and_token(check):
    db = "ferry_core_cli_%d" % os.getpid()
    url = ADMIN.replace("///postgres?", "///%s?" % db)
    psql(ADMIN, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    psql(ADMIN, "CREATE DATABASE %s" % db)
    try:
        env = {"FERRY_DATABASE_URL": url}
        r = ferryd(["migrate"], env)
        check(r.returncode == 0 and "applied" in r.stderr, "migrate applies: %s" % r.stderr[-200:])
        n = int(psql(url, "SELECT count(*) FROM ferry_schema_migrations"))
        check(n >= 2, "migrations recorded")
        r = ferryd(["migrate"], env)
        check(r.returncode == 0 and "current" in r.stderr, "second migrate is a no-op")
        r = ferryd(["token", "create", "--platform"], env)
        tok = r.stdout.strip()
        check(r.returncode == 0 and re.fullmatch(r"fy_[A-Za-z0-9_-]{43}", tok), "platform token printed: %r" % tok)
        r2 = ferryd(["token", "create", "--tenant", "acme", "--role", "viewer", "--name", "ci"], env)
        tok2 = r2.stdout.strip()
        check(r2.returncode == 0 and tok2.startswith("fy_"), "tenant token printed")
        rows = psql(url, "SELECT coalesce(t.name, '-'), k.role, k.name FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created_at")
        check(rows.split("\n") == ["-|admin|platform admin (bootstrap)", "acme|viewer|ci"], "token rows: %r" % rows)
        # Only the hash is stored.
        dump = psql(url, "SELECT string_agg(token_hash, ',') FROM api_tokens")
        check(tok not in dump and tok2 not in dump, "no token in plaintext")
        # The tokens work against a served API.
        env2 = dict(env, FERRY_MASTER_KEY=KEY, FERRY_LISTEN="127.0.0.1:0", FERRY_WORKERS="1")
        e = dict(os.environ)
        e.update(env2)
        log = tempfile.NamedTemporaryFile(delete=False)
        p = subprocess.Popen([FERRYD, "serve"], env=e, stdout=log, stderr=subprocess.STDOUT)
        try:
            port = None
            for _ in range(200):
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", open(log.name).read())
                if m:
                    port = m.group(1)
                    break
                time.sleep(0.05)
            check(port, "serve reports its port")
            if port:
                st, me = http("GET", "http://127.0.0.1:%s/v1/me" % port, tok)
                check(st == 200 and me.get("role") == "admin" and me.get("tenant_id") is None, "platform token works: %s %s" % (st, me))
                st, me = http("GET", "http://127.0.0.1:%s/v1/me" % port, tok2)
                check(st == 200 and me.get("tenant_name") == "acme" and me.get("role") == "viewer", "tenant token works")
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
            check(rc == 0, "serve exits 0 on SIGTERM (got %s)" % rc)
            os.unlink(log.name)
        # An edited, applied migration is refused at start-up.
        psql(url, "UPDATE ferry_schema_migrations SET checksum = 'x' WHERE version = 1")
        r = ferryd(["migrate"], env)
        check(r.returncode != 0 and "001_init.sql was changed" in r.stderr, "edited migration refused: %s" % r.stderr[-200:])
        r = ferryd(["serve"], dict(env2))
        check(r.returncode != 0 and "001_init.sql was changed" in r.stderr, "serve refuses too")
    finally:
        psql(ADMIN, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)


def t_embedded_demo(check):
    work = tempfile.mkdtemp(prefix="ferry-demo-")
    os.chmod(work, 0o755)  # the postgres user must reach the data directory
    try:
        for round_ in (1, 2):
            e = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_") or k in ("FERRY_BUILD",)}
            # the preflight renders the chart too, and cwd is not the checkout
            e.update({"FERRY_LISTEN": "127.0.0.1:0", "FERRY_WORKERS": "1",
                      "FERRY_CHARTS_DIR": os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")})
            out = open(os.path.join(work, "out%d.txt" % round_), "w+")
            err = open(os.path.join(work, "err%d.txt" % round_), "w+")
            p = subprocess.Popen([FERRYD, "serve", "--demo"], cwd=work, env=e, stdout=out, stderr=err)
            try:
                text = ""
                for _ in range(600):
                    text = open(out.name).read()
                    if "(tokens are shown once" in text or p.poll() is not None:
                        break
                    time.sleep(0.05)
                m = re.search(r"console:\s+(http://\S+)", text)
                op = re.search(r"operator token \(demo\):\s+(fy_\S+)", text)
                adm = re.search(r"platform admin token:\s+(fy_\S+)", text)
                check(m and op and adm, "round %d: console URL and tokens printed: %r %r" % (round_, text[-300:], open(err.name).read()[-500:]))
                if not (m and op and adm):
                    return
                base = m.group(1).rstrip("/")
                st, body = http("GET", base + "/readyz")
                check(st == 200, "round %d: ready (%s %s)" % (round_, st, body))
                st, me = http("GET", base + "/v1/me", op.group(1))
                check(st == 200 and me.get("tenant_name") == "demo" and me.get("role") == "operator", "operator token: %s" % me)
                st, me = http("GET", base + "/v1/me", adm.group(1))
                check(st == 200 and me.get("role") == "admin" and me.get("tenant_id") is None, "admin token: %s" % me)
                check(op.group(1) not in open(err.name).read(), "tokens never logged")
                check(os.path.exists(os.path.join(work, "var/pg/data/PG_VERSION")), "database under ./var/pg")
                ks = os.path.join(BUILD, "tests/kubesim/kubesim")
                if os.access(ks, os.X_OK):
                    st, cl = http("GET", base + "/v1/clusters", op.group(1))
                    names = [c.get("name") for c in (cl or {}).get("items", [])] if st == 200 else []
                    check("tke-demo" in names, "round %d: demo cluster registered: %s %s" % (round_, st, cl))
                    cid = [c["id"] for c in cl["items"] if c["name"] == "tke-demo"][0] if "tke-demo" in names else None
                    if cid:
                        st, job = http("POST", base + "/v1/clusters/%s/jobs" % cid, op.group(1), {"kind": "preflight", "params": {}})
                        check(st == 202, "preflight accepted: %s %s" % (st, job))
                        state = None
                        for _ in range(200):
                            st, job = http("GET", base + "/v1/jobs/%s" % job["id"], op.group(1))
                            state = job.get("state")
                            if state in ("succeeded", "failed"):
                                break
                            time.sleep(0.1)
                        check(state == "succeeded", "preflight against kubesim succeeded: %s" % job)
            finally:
                p.send_signal(signal.SIGINT)
                try:
                    rc = p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    rc = "timeout"
                check(rc == 0, "round %d: exits 0 on SIGINT (got %s): %s" % (round_, rc, open(err.name).read()[-400:]))
                check(not os.path.exists(os.path.join(work, "var/pg/data/postmaster.pid")), "PostgreSQL stopped")
        # Second round reused the data: one demo tenant, tokens of both rounds.
        check(os.path.exists(os.path.join(work, "var/master.key")), "master key kept in ./var")
    finally:
        pidfile = os.path.join(work, "var/pg/data/postmaster.pid")
        if os.path.exists(pidfile):  # never leave a server behind
            try:
                os.kill(int(open(pidfile).readline()), signal.SIGQUIT)
            except (OSError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)


def main():
    if not os.path.exists(FERRYD):
        print("SKIP: core_ferryd: %s not built" % FERRYD)
        return 0
    run("ferryd_cli_and_config_errors", t_cli)
    if ADMIN:
        run("ferryd_migrate_token_create_serve", t_migrate_and_token)
    else:
        print("SKIP: ferryd_migrate_token_create_serve: no FERRY_TEST_PG_ADMIN_URL")
    if glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        run("ferryd_embedded_postgres_demo_and_sigint", t_embedded_demo)
    else:
        print("SKIP: ferryd_embedded_postgres_demo_and_sigint: no PostgreSQL server binaries")
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
