#!/usr/bin/env python3
"""The ferry CLI's habits (issue 16): --version, the configuration file with
named contexts (`ferry config ...`), FERRY_* environment overrides with the
precedence flag > environment > context > default, and --output
json|yaml|table.

A real ferryd (own database, no workers) with two clusters, driven through
the real `ferry` binary with a private configuration file (FERRY_CONFIG or
XDG_CONFIG_HOME). A context pointing at a closed port, a wrong token and
different default outputs make every precedence step visible in the exit
status or the output format. Standard library only.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, finish, make_ca, run_test, skip_all, start  # noqa: E402

TESTS = ["cli_version", "cli_config_contexts", "cli_config_file_mode_and_errors",
         "cli_precedence_server", "cli_precedence_token", "cli_precedence_output",
         "cli_output_yaml", "cli_env_timeout_and_bad_values", "cli_xdg_config_home"]

build = os.environ.get("FERRY_BUILD", "")
FERRY = os.path.join(build, "ferry")
if not os.path.exists(FERRY):
    skip_all(TESTS, "needs the ferry binary (run via tests/run)")

f = start("cliconfig", TESTS)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
GOOD = "http://127.0.0.1:%d" % f.port
DEAD = "http://127.0.0.1:1"
BAD_TOKEN = "fy_" + "B" * 43
ca_pem, _ = make_ca(f.tmp)
for name in ("edge-1", "edge-2"):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.10:6443",
                                "ca_bundle": ca_pem, "token": "sa-token-" + name}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))

CFG_DIR = tempfile.mkdtemp(prefix="ferry-cfg-", dir=f.tmp)
CFG = os.path.join(CFG_DIR, "sub", "config")   # the directory does not exist yet
TOKEN_FILE = os.path.join(CFG_DIR, "op.token")
with open(TOKEN_FILE, "w") as fh:
    fh.write(OP + "\n")
BAD_FILE = os.path.join(CFG_DIR, "bad.token")
with open(BAD_FILE, "w") as fh:
    fh.write(BAD_TOKEN + "\n")
OUTPUT = []


class Run:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr

    def __repr__(self):
        return "<rc=%d out=%r err=%r>" % (self.rc, self.out[-800:], self.err[-800:])


def ferry(*args, env=None, prog=FERRY):
    """ferry with only the FERRY_* variables given (and FERRY_CONFIG=CFG
    unless env overrides it)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_") and k != "XDG_CONFIG_HOME"}
    e["FERRY_CONFIG"] = CFG
    e.update(env or {})
    e = {k: v for k, v in e.items() if v is not None}
    p = subprocess.run([prog] + list(args), env=e, capture_output=True, text=True, timeout=60)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in p.stderr, "sanitizer report: %s" % p.stderr[-3000:])
    OUTPUT.append(p.stdout + p.stderr)
    return Run(p)


def names_in_table(out):
    return sorted(l.split()[0] for l in out.strip().splitlines()[1:])


def t_version():
    for prog in ("ferry", "ferry-client"):
        r = ferry("--version", prog=os.path.join(build, prog))
        check_eq(r.rc, 0, "%s --version %r" % (prog, r))
        check(r.out.startswith("ferry ") and r.out.count(".") == 2, "%s version line %r" % (prog, r.out))
    r = ferry("version")
    check(r.rc == 0 and r.out.startswith("ferry "), "ferry version %r" % r)
    r = subprocess.run([os.path.join(build, "ferryd"), "--version"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.startswith("ferryd "), "ferryd --version %r" % r.stdout)


def t_contexts():
    r = ferry("config", "get-contexts")
    check_eq((r.rc, r.out.split()), (0, ["CURRENT", "NAME", "SERVER", "TOKEN-FILE", "OUTPUT"]), "empty %r" % r)
    r = ferry("config", "current-context")
    check(r.rc == 2 and "no current context" in r.err, "no current context yet %r" % r)
    # a relative token file is made absolute against the current directory
    r = subprocess.run([FERRY, "config", "set-context", "prod", "--server", GOOD, "--token-file", "op.token"],
                       cwd=CFG_DIR, env={"FERRY_CONFIG": CFG, "PATH": os.environ["PATH"]},
                       capture_output=True, text=True)
    check_eq(r.returncode, 0, "set-context prod %r" % r.stderr)
    r = ferry("config", "set-context", "dead", "--server", DEAD, "--token-file", TOKEN_FILE, "--output", "json")
    check_eq(r.rc, 0, "set-context dead %r" % r)
    r = ferry("config", "use-context", "prod")
    check_eq((r.rc, r.out.strip()), (0, "switched to context prod"), "use-context %r" % r)
    r = ferry("config", "current-context")
    check_eq((r.rc, r.out), (0, "prod\n"), "current-context")
    r = ferry("config", "get-contexts")
    rows = [l.split() for l in r.out.strip().splitlines()]
    check_eq(rows[1], ["*", "prod", GOOD, TOKEN_FILE, "-"], "prod row (current, absolute token file)")
    check_eq(rows[2], ["dead", DEAD, TOKEN_FILE, "json"], "dead row")
    r = ferry("config", "get-contexts", "-o", "name")
    check_eq(r.out, "prod\ndead\n", "-o name")
    r = ferry("config", "view", "-o", "json")
    view = json.loads(r.out)
    check_eq(view["current-context"], "prod", "view current-context")
    check_eq([c["name"] for c in view["contexts"]], ["prod", "dead"], "view contexts")
    r = ferry("config", "view")
    check(r.out.startswith("current-context: prod\ncontexts:\n"), "view is YAML %r" % r.out)
    # set-context --current changes the current one; rename keeps it current
    r = ferry("config", "set-context", "--current", "--output", "table")
    check_eq(r.rc, 0, "set-context --current %r" % r)
    r = ferry("config", "rename-context", "prod", "production")
    check_eq(r.rc, 0, "rename %r" % r)
    check_eq(ferry("config", "current-context").out, "production\n", "current follows the rename")
    r = ferry("config", "rename-context", "production", "dead")
    check(r.rc == 2 and "already exists" in r.err, "rename onto an existing name %r" % r)
    r = ferry("config", "use-context", "nowhere")
    check(r.rc == 2 and "no context named nowhere" in r.err, "unknown context %r" % r)
    r = ferry("config", "set-context", "tmp", "--server", "ftp://x")
    check(r.rc == 2 and "http://" in r.err, "bad server refused %r" % r)
    r = ferry("config", "set-context", "tmp", "--output", "xml")
    check(r.rc == 2 and "table, json or yaml" in r.err, "bad output refused %r" % r)
    r = ferry("config", "set-context", "tmp", "--server", GOOD)
    r = ferry("config", "delete-context", "tmp")
    check_eq((r.rc, r.out.strip()), (0, "deleted context tmp"), "delete %r" % r)
    check_eq(ferry("config", "get-contexts", "-o", "name").out, "production\ndead\n", "after delete")
    # the context from the file is used by every command
    r = ferry("clusters", "list")
    check_eq(r.rc, 0, "list through the current context %r" % r)
    check_eq(names_in_table(r.out), ["edge-1", "edge-2"], "table from the context")


def t_file_mode_and_errors():
    st = os.stat(CFG)
    check_eq(stat.S_IMODE(st.st_mode), 0o600, "config file mode")
    check_eq(stat.S_IMODE(os.stat(os.path.dirname(CFG)).st_mode), 0o700, "config directory mode")
    check(OP not in open(CFG).read(), "the token is not in the file")
    broken = os.path.join(CFG_DIR, "broken")
    for text, want in (("contexts: {a: 1}\n", "contexts must be a list"),
                       ("contexts:\n- server: http://x\n", "every context needs a name"),
                       ("current-context: [x]\n", "current-context must be a name"),
                       ("contexts: [\n", "broken")):
        with open(broken, "w") as fh:
            fh.write(text)
        r = ferry("clusters", "list", env={"FERRY_CONFIG": broken, "FERRY_TOKEN": OP, "FERRY_SERVER": GOOD})
        check(r.rc == 2 and want in r.err, "%r: %r" % (text, r))
        check_eq(len(r.err.strip().splitlines()), 1, "one line %r" % r.err)
    with open(broken, "w") as fh:
        fh.write("current-context: gone\ncontexts: []\n")
    r = ferry("clusters", "list", env={"FERRY_CONFIG": broken, "FERRY_TOKEN": OP})
    check(r.rc == 2 and "current context gone" in r.err, "dangling current-context %r" % r)
    # no file at all: the defaults (and a named context is an error)
    missing = os.path.join(CFG_DIR, "missing")
    r = ferry("clusters", "list", env={"FERRY_CONFIG": missing, "FERRY_TOKEN": OP, "FERRY_SERVER": GOOD})
    check_eq(r.rc, 0, "no config file %r" % r)
    r = ferry("--context", "prod", "clusters", "list", env={"FERRY_CONFIG": missing, "FERRY_TOKEN": OP})
    check(r.rc == 2 and "no context named prod" in r.err and "--context" in r.err, "named context %r" % r)


def t_server():
    # context (current = production → GOOD) < FERRY_CONTEXT < --context
    check_eq(ferry("clusters", "list").rc, 0, "current context")
    r = ferry("clusters", "list", env={"FERRY_CONTEXT": "dead"})
    check(r.rc == 2 and "cannot reach %s" % DEAD in r.err, "FERRY_CONTEXT wins over current-context %r" % r)
    r = ferry("--context", "production", "clusters", "list", env={"FERRY_CONTEXT": "dead"})
    check_eq(r.rc, 0, "--context wins over FERRY_CONTEXT %r" % r)
    r = ferry("clusters", "list", "--context", "dead")
    check(r.rc == 2 and "cannot reach" in r.err, "--context after the command %r" % r)
    # FERRY_SERVER beats the context's server; --server beats FERRY_SERVER
    r = ferry("--context", "dead", "clusters", "list", env={"FERRY_SERVER": GOOD})
    check_eq(r.rc, 0, "FERRY_SERVER over the context %r" % r)
    r = ferry("--server", DEAD, "clusters", "list", env={"FERRY_SERVER": GOOD})
    check(r.rc == 2 and "cannot reach %s" % DEAD in r.err, "--server over FERRY_SERVER %r" % r)


def t_token():
    # context token-file < FERRY_TOKEN_FILE < FERRY_TOKEN < --token-file
    r = ferry("clusters", "list", env={"FERRY_TOKEN_FILE": BAD_FILE})
    check(r.rc == 2 and "(HTTP 401)" in r.err, "FERRY_TOKEN_FILE over the context %r" % r)
    r = ferry("clusters", "list", env={"FERRY_TOKEN_FILE": BAD_FILE, "FERRY_TOKEN": OP})
    check_eq(r.rc, 0, "FERRY_TOKEN over FERRY_TOKEN_FILE %r" % r)
    r = ferry("clusters", "list", env={"FERRY_TOKEN": BAD_TOKEN})
    check(r.rc == 2 and "(HTTP 401)" in r.err, "FERRY_TOKEN over the context %r" % r)
    r = ferry("--token-file", TOKEN_FILE, "clusters", "list", env={"FERRY_TOKEN": BAD_TOKEN})
    check_eq(r.rc, 0, "--token-file over FERRY_TOKEN %r" % r)
    r = ferry("clusters", "list", env={"FERRY_TOKEN_FILE": os.path.join(CFG_DIR, "nope")})
    check(r.rc == 2 and "FERRY_TOKEN_FILE" in r.err, "names where the token file came from %r" % r)
    # a relative token-file in the file is relative to the file's directory
    rel = os.path.join(CFG_DIR, "rel-config")
    with open(rel, "w") as fh:
        fh.write("current-context: r\ncontexts:\n- name: r\n  server: %s\n  token-file: op.token\n" % GOOD)
    r = ferry("clusters", "list", env={"FERRY_CONFIG": rel})
    check_eq(r.rc, 0, "relative token-file %r" % r)
    check(BAD_TOKEN not in "".join(OUTPUT) and OP not in "".join(OUTPUT), "no token ever printed")


def t_output():
    # context output (dead: json) < FERRY_OUTPUT < --output
    r = ferry("--context", "dead", "--server", GOOD, "clusters", "list")
    check_eq(r.rc, 0, "context output %r" % r)
    check_eq(sorted(c["name"] for c in json.loads(r.out)), ["edge-1", "edge-2"], "json from the context")
    r = ferry("--context", "dead", "--server", GOOD, "clusters", "list", env={"FERRY_OUTPUT": "table"})
    check_eq(names_in_table(r.out), ["edge-1", "edge-2"], "FERRY_OUTPUT over the context %r" % r)
    r = ferry("--context", "dead", "--server", GOOD, "clusters", "list", "-o", "yaml",
              env={"FERRY_OUTPUT": "table"})
    check(r.out.startswith("- "), "--output over FERRY_OUTPUT %r" % r)
    r = ferry("clusters", "list", env={"FERRY_OUTPUT": "xml"})
    check(r.rc == 2 and "FERRY_OUTPUT must be table, json or yaml" in r.err, "bad FERRY_OUTPUT named %r" % r)


def t_yaml():
    js = json.loads(ferry("clusters", "get", "edge-1", "-o", "json").out)
    r = ferry("clusters", "get", "edge-1", "--output", "yaml")
    check_eq(r.rc, 0, "yaml %r" % r)
    lines = r.out.splitlines()
    check("id: %s" % js["id"] in lines, "id line %r" % r.out)
    check("name: edge-1" in lines and "profile: tke" in lines, "scalar lines %r" % r.out)
    check(not r.out.lstrip().startswith("{"), "not JSON")
    r = ferry("jobs", "list", "-o", "yaml")
    check_eq((r.rc, r.out.strip()), (0, "[]"), "empty list as YAML %r" % r)
    r = ferry("config", "get-contexts", "-o", "yaml")
    check(r.rc == 0 and "- name: production" in r.out, "contexts as YAML %r" % r)


def t_timeout_env():
    r = ferry("clusters", "list", env={"FERRY_TIMEOUT": "soon"})
    check(r.rc == 2 and "FERRY_TIMEOUT must be a positive duration" in r.err, "bad FERRY_TIMEOUT %r" % r)
    r = ferry("--timeout", "5m", "clusters", "list", env={"FERRY_TIMEOUT": "soon"})
    check_eq(r.rc, 0, "--timeout over FERRY_TIMEOUT %r" % r)
    r = ferry("--server", "ftp://x", "clusters", "list")
    check(r.rc == 2 and "--server must be an http" in r.err, "bad --server named %r" % r)


def t_xdg():
    xdg = os.path.join(CFG_DIR, "xdg")
    r = ferry("config", "set-context", "x", "--server", GOOD, "--token-file", TOKEN_FILE,
              env={"FERRY_CONFIG": None, "XDG_CONFIG_HOME": xdg})
    check_eq(r.rc, 0, "set-context under XDG_CONFIG_HOME %r" % r)
    check(os.path.isfile(os.path.join(xdg, "ferry", "config")), "written to $XDG_CONFIG_HOME/ferry/config")
    home = os.path.join(CFG_DIR, "home")
    r = ferry("config", "set-context", "h", "--server", GOOD, env={"FERRY_CONFIG": None, "HOME": home})
    check_eq(r.rc, 0, "set-context under HOME %r" % r)
    check(os.path.isfile(os.path.join(home, ".config", "ferry", "config")), "written to ~/.config/ferry/config")
    r = ferry("--context", "x", "clusters", "list", env={"FERRY_CONFIG": None, "XDG_CONFIG_HOME": xdg})
    check_eq(r.rc, 0, "used from XDG_CONFIG_HOME %r" % r)


run_test("cli_version", t_version)
run_test("cli_config_contexts", t_contexts)
run_test("cli_config_file_mode_and_errors", t_file_mode_and_errors)
run_test("cli_precedence_server", t_server)
run_test("cli_precedence_token", t_token)
run_test("cli_precedence_output", t_output)
run_test("cli_output_yaml", t_yaml)
run_test("cli_env_timeout_and_bad_values", t_timeout_env)
run_test("cli_xdg_config_home", t_xdg)
finish(f)
