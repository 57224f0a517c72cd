#!/usr/bin/env python3
"""`make install DESTDIR=<tmp>` and the installed ferryd (issue 16).

Installs the build under test into a temporary root and checks what lands
there (programs, console, systemd unit, example environment file, man pages,
bash completion, docs), that nothing is left after `make uninstall`, that
the unit passes `systemd-analyze verify` and its hardening rates "OK" in
`systemd-analyze security`, and that the completion script completes. Then
it starts the installed ferryd against the test PostgreSQL, from a working
directory without a web/ folder and with no --web-root, with NOTIFY_SOCKET
pointing at a datagram socket this test listens on (a path, then an
abstract "@name"): ferryd must send READY=1 only when it already answers
/readyz, serve the console from the installed files (a marker written into
the installed index.html comes back), and send STOPPING=1 on SIGTERM.
Standard library only.
"""
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, run_test, skip_all  # noqa: E402
import apitest  # noqa: E402

TESTS = ["install_tree_files", "install_tree_uninstall", "install_systemd_unit", "install_bash_completion",
         "install_ferryd_serves_installed_console_and_notifies", "install_ferryd_notify_abstract_socket",
         "install_versions"]

BUILD = os.environ.get("FERRY_BUILD", "")
SRC = os.environ.get("FERRY_SRC", "")
ADMIN = os.environ.get("FERRY_TEST_PG_ADMIN_URL", "")
BASE = os.environ.get("FERRY_TEST_DATABASE_URL", "")
if not os.path.exists(os.path.join(BUILD, "Makefile")) or not ADMIN:
    skip_all(TESTS, "needs a configured build directory and the test PostgreSQL (run via tests/run)")

ROOT = tempfile.mkdtemp(prefix="ferry-destdir-")
INST = {}


def make(*targets):
    return subprocess.run(["make", "-s", "-C", BUILD] + list(targets) + ["DESTDIR=" + ROOT],
                          capture_output=True, text=True, timeout=600)


def install():
    r = make("install")
    if r.returncode != 0:
        skip_all(TESTS, "make install failed: %s" % (r.stdout + r.stderr)[-2000:], fail=True)
    ferryd = glob.glob(os.path.join(ROOT, "**", "bin", "ferryd"), recursive=True)
    if len(ferryd) != 1:
        skip_all(TESTS, "installed ferryd not found under %s" % ROOT, fail=True)
    INST["bindir"] = os.path.dirname(ferryd[0])
    INST["prefix"] = os.path.dirname(INST["bindir"])   # <ROOT><prefix>


def p(*parts):
    return os.path.join(INST["prefix"], *parts)


def t_files():
    for prog in ("ferryd", "ferry", "ferry-client"):
        check(os.access(os.path.join(INST["bindir"], prog), os.X_OK), "%s installed executable" % prog)
    for f in os.listdir(os.path.join(SRC, "web")):
        src = os.path.join(SRC, "web", f)
        if os.path.isfile(src) and not f.startswith("."):
            dst = p("share", "ferry", "web", f)
            check(os.path.isfile(dst), "console file %s installed" % f)
            check(open(src, "rb").read() == open(dst, "rb").read(), "%s installed as is" % f)
    version = subprocess.run([os.path.join(INST["bindir"], "ferryd"), "--version"], capture_output=True,
                             text=True).stdout.split()[-1]
    for man, sect in (("ferry.1", "man1"), ("ferryd.8", "man8")):
        text = open(p("share", "man", sect, man)).read()
        check(text.startswith(".TH "), "%s is a man page" % man)
        check('"ferry %s"' % version in text.splitlines()[0], "%s names version %s" % (man, version))
    check("FERRY_DATABASE_URL=" in open(p("etc", "ferry", "ferryd.env.example")).read(), "example env file")
    check(os.path.isfile(p("share", "bash-completion", "completions", "ferry")), "completion installed")
    check(os.path.isfile(p("share", "doc", "ferry", "OPERATIONS.md")), "OPERATIONS.md installed")
    unit = open(p("lib", "systemd", "system", "ferryd.service")).read()
    prefix = INST["prefix"][len(ROOT):]
    check("ExecStart=%s/bin/ferryd serve" % prefix in unit, "ExecStart names the installed ferryd: %s" % unit)
    for want in ("Type=notify", "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "LoadCredential=master.key:"):
        check(want in unit, "unit has %s" % want)
    check("@" + "bindir@" not in unit and "@" + "sysconfdir@" not in unit, "unit fully substituted")


def t_systemd_unit():
    # The unit as installed, but with the DESTDIR ferryd (verify checks that
    # ExecStart is executable) and the DESTDIR man pages (Documentation=).
    d = tempfile.mkdtemp(prefix="ferry-unit-")
    try:
        prefix = INST["prefix"][len(ROOT):]
        unit = open(p("lib", "systemd", "system", "ferryd.service")).read()
        unit = unit.replace("ExecStart=%s/bin/ferryd" % prefix, "ExecStart=%s/ferryd" % INST["bindir"])
        path = os.path.join(d, "ferryd.service")
        open(path, "w").write(unit)
        env = dict(os.environ, MANPATH=p("share", "man"))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, env=env)
        check_eq(r.returncode, 0, "systemd-analyze verify: %s" % (r.stdout + r.stderr))
        check(r.stdout.strip() == "" and r.stderr.strip() == "", "no warnings: %s" % (r.stdout + r.stderr))
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", path], capture_output=True,
                           text=True, env=env)
        m = re.search(r"Overall exposure level for ferryd.service: ([0-9.]+) (\w+)", r.stdout)
        check(m, "security rating printed: %s" % (r.stdout[-500:] + r.stderr))
        check(float(m.group(1)) <= 2.0 and m.group(2) == "OK", "hardened: exposure %s %s" % m.groups())
    finally:
        shutil.rmtree(d, ignore_errors=True)


def t_completion():
    script = p("share", "bash-completion", "completions", "ferry")
    cfg = os.path.join(ROOT, "cfg", "config")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    open(cfg, "w").write("current-context: alpha\ncontexts:\n- name: alpha\n- name: beta\n")

    def complete(words):
        code = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _ferry; printf "%%s\\n" "${COMPREPLY[@]}"'
                % (script, " ".join("'%s'" % w for w in words), len(words) - 1))
        env = dict(os.environ, FERRY_CONFIG=cfg, PATH=INST["bindir"] + ":" + os.environ["PATH"])
        r = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=env, timeout=30)
        check_eq(r.returncode, 0, "bash: %s" % r.stderr)
        return r.stdout.split()

    check_eq(complete(["ferry", "con"]), ["config"], "command")
    check_eq(sorted(complete(["ferry", "-o", ""])), ["json", "table", "yaml"], "output formats")
    check_eq(sorted(complete(["ferry", "config", "use-context", ""])), ["alpha", "beta"], "context names")
    check_eq(complete(["ferry", "--context", "b"]), ["beta"], "--context value")
    check("--dry-run" in complete(["ferry", "install", "c1", "--dr"]), "install flags")
    check_eq(complete(["ferry", "jobs", "w"]), ["wait"], "jobs subcommand")


def t_uninstall():
    r = make("uninstall")
    check_eq(r.returncode, 0, "make uninstall: %s" % (r.stdout + r.stderr)[-1000:])
    left = [os.path.join(dp, f) for dp, _, fs in os.walk(ROOT) if not dp.startswith(os.path.join(ROOT, "cfg"))
            for f in fs]
    check_eq(left, [], "files left after make uninstall")
    install()  # back for the next tests


class Notify:
    """A datagram socket like the one systemd gives a Type=notify service."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "ferry-test-notify-%d-%s" % (os.getpid(), secrets.token_hex(4))
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="ferry-notify-")
            self.env = os.path.join(self.dir, "notify")
            self.sock.bind(self.env)

    def wait_for(self, word, timeout, proc):
        """The first datagram holding the line `word` (others collected)."""
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            if proc.poll() is not None and word != "STOPPING=1":
                raise AssertionError("ferryd exited (%s) before %s" % (proc.returncode, word))
            self.sock.settimeout(0.2)
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            seen.append(msg)
            if word in msg.split("\n"):
                return msg
        raise AssertionError("no %s within %ss (got %r)" % (word, timeout, seen))

    def close(self):
        self.sock.close()


def new_db(tag):
    name = "ferry_install_%s_%d" % (tag, os.getpid())
    subprocess.run(["psql", "-q", "-X", ADMIN, "-c", 'DROP DATABASE IF EXISTS "%s"' % name], check=True,
                   capture_output=True)
    subprocess.run(["psql", "-q", "-X", ADMIN, "-c", 'CREATE DATABASE "%s"' % name], check=True,
                   capture_output=True)
    left, _, query = BASE.partition("?")
    return name, left.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def drop_db(name):
    subprocess.run(["psql", "-q", "-X", ADMIN, "-c", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name],
                   capture_output=True)


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.read()


def serve_installed(abstract, marker=None):
    """Starts the installed ferryd with a notify socket; checks READY=1
    comes when /readyz already answers, the console (marker), STOPPING=1."""
    dbname, url = new_db("a" if abstract else "p")
    notify = Notify(abstract)
    cwd = tempfile.mkdtemp(prefix="ferry-cwd-")   # no web/ here
    log_path = os.path.join(cwd, "ferryd.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_") or k in ("FERRY_BUILD", "FERRY_SRC")}
    env.update({"FERRY_DATABASE_URL": url, "FERRY_MASTER_KEY": "k1:" + secrets.token_hex(32),
                "NOTIFY_SOCKET": notify.env, "FERRY_LOG_LEVEL": "info"})
    log = open(log_path, "w")
    proc = subprocess.Popen([os.path.join(INST["bindir"], "ferryd"), "serve", "--listen", "127.0.0.1:0",
                             "--workers", "1"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        msg = notify.wait_for("READY=1", 90, proc)
        text = open(log_path).read()
        m = re.search(r"listening on http://[^:]+:(\d+)/", text)
        check(m, "listening line logged before READY=1: %s" % text[-1500:])
        port = int(m.group(1))
        # READY=1 means ready: /readyz answers 200 right away
        status, _ = get(port, "/readyz")
        check_eq(status, 200, "/readyz right after READY=1")
        check("STATUS=serving" in msg.split("\n"), "STATUS line: %r" % msg)
        webdir = p("share", "ferry", "web")
        check("console %s" % webdir in text, "serves the installed console: %s" % text[-1500:])
        if marker:
            status, body = get(port, "/")
            check_eq(status, 200, "GET /")
            check(marker.encode() in body, "the installed index.html (with its marker) is served")
        status, body = get(port, "/app.js")
        check(status == 200 and body == open(os.path.join(webdir, "app.js"), "rb").read(), "app.js served")
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", 30, proc)
        check_eq(proc.wait(timeout=60), 0, "ferryd exit status")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        text = open(log_path, errors="replace").read()
        notify.close()
        shutil.rmtree(cwd, ignore_errors=True)
        drop_db(dbname)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in text, "sanitizer report: %s" % text[-3000:])


def t_serve_path():
    marker = "<!-- installed-by-test-%s -->" % secrets.token_hex(6)
    with open(p("share", "ferry", "web", "index.html"), "a") as fh:
        fh.write(marker + "\n")
    serve_installed(False, marker)


def t_serve_abstract():
    serve_installed(True)


def t_versions():
    for prog, name in (("ferry", "ferry"), ("ferryd", "ferryd"), ("ferry-client", "ferry")):
        r = subprocess.run([os.path.join(INST["bindir"], prog), "--version"], capture_output=True, text=True)
        check_eq(r.returncode, 0, "%s --version" % prog)
        check(re.fullmatch(r"%s \d+\.\d+\.\d+\n" % name, r.stdout), "%s --version: %r" % (prog, r.stdout))


try:
    install()
    run_test("install_tree_files", t_files)
    run_test("install_tree_uninstall", t_uninstall)
    if shutil.which("systemd-analyze"):
        run_test("install_systemd_unit", t_systemd_unit)
    else:
        print("SKIP: install_systemd_unit: systemd-analyze is not installed (Debian: systemd)")
    run_test("install_bash_completion", t_completion)
    run_test("install_ferryd_serves_installed_console_and_notifies", t_serve_path)
    run_test("install_ferryd_notify_abstract_socket", t_serve_abstract)
    run_test("install_versions", t_versions)
finally:
    shutil.rmtree(ROOT, ignore_errors=True)
print("%d passed, %d failed" % (apitest.PASSED, apitest.FAILED))
sys.exit(1 if apitest.FAILED else 0)
