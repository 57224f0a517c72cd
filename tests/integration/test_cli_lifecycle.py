#!/usr/bin/env python3
"""The release lifecycle commands of `ferry` end to end: a real ferryd (own
database, two workers) installing the real Cilium charts into kubesim,
driven through the real `ferry` binary as a pipeline would drive it.

Checked, in order on one TKE cluster: install 1.18.2 --wait, `history`
(table, json, --revision N), upgrade to 1.18.3 with --reuse-values and
--max-history (the flags become job params, revision 2 deployed, 1
superseded), `check --wait` printing a clean report, a hand edit of
cilium-config reported as drifted with its field (and --ignore sent as the
ignore rule), `repair --wait` putting it back, `rollback --revision 1
--wait` giving revision 3 at 1.18.2, a rollback to a revision that does not
exist failing with exit 1, `uninstall --dry-run --wait` listing deletions
and writing nothing, `uninstall --keep-history --wait`. On k3s (Cilium the
only CNI) uninstall refused with exit 1 until --force, and --delete-crds.
On a second cluster `adopt` with no release failing with exit 1; on a
third, a release written by another manager (another tenant's ferry, which
writes Helm's own release Secrets) adopted with zero writes, then upgraded
as revision 2. The Idempotency-Key and --timeout exit 3 on a lifecycle
command; usage errors (exit 2, flag values never echoed).
Standard library only.
"""
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Kubesim, check, check_eq, finish, run_test, skip_all, start)  # noqa: E402

TESTS = ["cli_lifecycle_usage_errors", "cli_install_and_history", "cli_upgrade_value_flags",
         "cli_check_clean", "cli_check_reports_drift", "cli_repair", "cli_rollback",
         "cli_rollback_missing_revision_fails", "cli_uninstall_dry_run", "cli_uninstall",
         "cli_adopt_without_release_fails", "cli_adopt_then_upgrade", "cli_lifecycle_idempotency_and_timeout"]

build = os.environ.get("FERRY_BUILD", "")
FERRY = os.path.join(build, "ferry")
if not os.path.exists(FERRY):
    skip_all(TESTS, "needs the ferry binary (run via tests/run)")
shared = os.environ.get("FERRY_SHARED", "")
charts = os.path.join(shared, "charts")
if not os.path.isdir(charts):
    skip_all(TESTS, "no chart archives in %s" % charts)

ks = Kubesim(["--clusters", "3", "--cluster", "k3=k3s"], TESTS, prefix="ferry-clilc-kubesim-")
os.environ["FERRY_CHARTS_DIR"] = charts
f = start("clilc", TESTS, workers=2)
acme = f.tenant("acme")
OP = f.token(acme, "operator", name="pipeline")
SERVER = "http://127.0.0.1:%d" % f.port
IDS = {}
JOBS = {}


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "<rc=%d stdout=%r stderr=%r>" % (self.rc, self.out[-2000:], self.err[-2000:])


def ferry(*args, timeout=400):
    e = dict(os.environ, FERRY_SERVER=SERVER, FERRY_TOKEN=OP)
    p = subprocess.run([FERRY] + list(args), env=e, capture_output=True, text=True, timeout=timeout)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in p.stderr, "sanitizer report from ferry %s: %s" % (" ".join(args), p.stderr[-3000:]))
    check(OP not in p.stdout + p.stderr, "the token appeared in the output of ferry %s" % " ".join(args))
    return Run(p.returncode, p.stdout, p.stderr)


def job_of(r):
    """The job a `--wait` run started (its id is the first line)."""
    jid = r.out.splitlines()[0].strip() if r.out else ""
    check_eq(len(jid), 36, "first line is the job id: %r" % r)
    return f.get("/v1/jobs/" + jid, OP).json()


def register(name, simname, profile="tke"):
    r = f.post("/v1/clusters", {"name": name, "profile": profile,
                                "kubeconfig": open(ks.cluster(simname)["kubeconfig"]).read()}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))
    return r.json()["id"]


def kube(simname, method, path, body=None, ctype="application/merge-patch+json"):
    """A request to a simulated cluster's API server as its admin."""
    c = ks.cluster(simname)
    ctx = ssl.create_default_context(cafile=ks.info["ca"])
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(c["server"] + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + c["token"], "Content-Type": ctype})
    with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
        return json.load(r)


def writes(simname):
    """kubesim's count of write requests to one cluster."""
    st = ks.admin("GET", "/_sim/clusters/%s/stats" % simname)
    return st.get("writes", st.get("write_requests"))


def faults(simname, body):
    """Sets kubesim's fault injection for one cluster ({} clears it)."""
    ctx = ssl.create_default_context(cafile=ks.info["ca"])
    req = urllib.request.Request("https://127.0.0.1:%d/_sim/clusters/%s/faults" % (ks.info["port"], simname),
                                 data=json.dumps(body).encode(), method="PUT",
                                 headers={"Authorization": "Bearer " + ks.info["admin_token"],
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        r.read()


def history(name):
    r = ferry("history", name, "-o", "json")
    check_eq(r.rc, 0, "history json %r" % r)
    return json.loads(r.out)


def rows(out, first):
    """The table lines whose first column is `first`."""
    return [l.split() for l in out.splitlines() if l.split() and l.split()[0] == first]


CM = "/api/v1/namespaces/kube-system/configmaps/cilium-config"


def setup():
    IDS["lc"] = register("lc-1", "c1")
    IDS["bare"] = register("bare-1", "c2")


def t_usage():
    for args, want in [(("rollback",), "usage: ferry rollback CLUSTER"),
                       (("rollback", "lc-1", "--revision", "abc"), "--revision must be a whole number"),
                       (("rollback", "lc-1", "--revision", "0"), "--revision must be a whole number"),
                       (("check", "lc-1", "--ignore", "data.debug"), "--ignore takes a JSON pointer"),
                       (("upgrade", "lc-1", "--reuse-values", "--reset-values"), "exclude each other"),
                       (("upgrade", "lc-1", "--on-failure", "uninstall"), "--on-failure takes rollback"),
                       (("install", "lc-1", "--max-history", "-1"), "--max-history must be a whole number"),
                       (("adopt", "lc-1", "--namespace"), "a value is missing after --namespace"),
                       (("history",), "usage: ferry history CLUSTER"),
                       (("uninstall", "lc-1", "extra"), "unexpected argument extra")]:
        r = ferry(*args)
        check_eq(r.rc, 2, "%s: exit %r" % (" ".join(args), r))
        check(want in r.err, "%s: message %r" % (" ".join(args), r.err))
    r = ferry("uninstall", "lc-1", "--purge=s3cr3t")
    check(r.rc == 2 and "--purge" in r.err and "s3cr3t" not in r.err, "flag named, value not echoed %r" % r)
    r = ferry("--help")
    for cmd in ("rollback CLUSTER", "uninstall CLUSTER", "adopt CLUSTER", "check CLUSTER", "repair CLUSTER",
                "history CLUSTER", "--reset-then-reuse-values"):
        check(cmd in r.out, "help lists %s" % cmd)
    # nothing was started by any of these
    check_eq(f.sql("SELECT count(*) FROM jobs"), "0", "no job created by a usage error")


def t_install_history():
    r = ferry("install", "lc-1", "--version", "1.18.2", "--wait")
    check_eq(r.rc, 0, "install %r" % r)
    r = ferry("history", "lc-1")
    check_eq(r.rc, 0, "history %r" % r)
    lines = r.out.strip().splitlines()
    check_eq(lines[0].split()[:3], ["REVISION", "STATUS", "CHART"], "header %r" % lines[0])
    check("STARTED BY" in lines[0], "started-by column %r" % lines[0])
    got = rows(r.out, "1")
    check(got and got[0][1] == "deployed" and got[0][2] == "cilium-1.18.2", "revision 1 row: %r" % r.out)
    items = history("lc-1")
    api = f.get("/v1/clusters/%s/revisions" % IDS["lc"], OP).json()["items"]
    check_eq(items, api, "json output is the API's items")
    check_eq([(i["revision"], i["status"], i["chart_version"]) for i in items], [(1, "deployed", "1.18.2")],
             "one revision")
    check(items[0]["started_by"] and items[0]["started_by"] in r.out, "started_by shown: %r" % r.out)
    check_eq(items[0]["started_by"], "pipeline", "started_by is the token's name")
    # one revision in full: facts, values, manifest
    r = ferry("history", "lc-1", "--revision", "1")
    check_eq(r.rc, 0, "history --revision %r" % r)
    check("chart_version  1.18.2" in r.out and "\nvalues:\n" in r.out, "facts and values %r" % r.out[:600])
    check("\nmanifest:\n" in r.out and "kind: DaemonSet" in r.out, "manifest printed")
    one = f.get("/v1/clusters/%s/revisions/1" % IDS["lc"], OP).json()
    r = ferry("history", "lc-1", "--revision", "1", "-o", "json")
    check_eq(json.loads(r.out), one, "json is the API's revision")
    r = ferry("history", "lc-1", "--revision", "7")
    check(r.rc == 2 and "(HTTP 404)" in r.err, "missing revision: %r" % r)


def t_upgrade():
    r = ferry("upgrade", "lc-1", "--version", "1.18.3", "--reuse-values", "--max-history", "5", "--wait")
    check_eq(r.rc, 0, "upgrade %r" % r)
    job = job_of(r)
    check_eq((job["kind"], job["params"]), ("upgrade", {"chart_version": "1.18.3", "reuse_values": True,
                                                        "max_history": 5}), "kind and params")
    items = history("lc-1")
    check_eq([(i["revision"], i["status"], i["chart_version"]) for i in items],
             [(2, "deployed", "1.18.3"), (1, "superseded", "1.18.2")], "history after the upgrade")
    c = f.get("/v1/clusters/" + IDS["lc"], OP).json()
    check_eq((c["cilium_version"], c["release_revision"]), ("1.18.3", 2), "cluster fields")
    # the remediation flags reach the job as params (dry run: nothing written)
    r = ferry("upgrade", "lc-1", "--version", "1.18.3", "--reset-then-reuse-values", "--on-failure", "rollback",
              "--retries", "2", "--dry-run", "--wait")
    check_eq(r.rc, 0, "dry-run upgrade %r" % r)
    check_eq(job_of(r)["params"], {"chart_version": "1.18.3", "reset_then_reuse_values": True,
                                   "on_failure": "rollback", "retries": 2, "dry_run": True}, "params")
    check("unchanged" in r.out, "dry-run table printed: %r" % r.out)
    check_eq(len(history("lc-1")), 2, "a dry run adds no revision")


def t_check_clean():
    r = ferry("check", "lc-1", "--wait")
    check_eq(r.rc, 0, "check %r" % r)
    job = job_of(r)
    res = job["result"]["check"]
    check_eq(res["summary"]["drifted"] + res["summary"]["missing"], 0, "a fresh upgrade is in sync: %r" % res)
    check("drift report (%d objects)" % len(res["objects"]) in r.out, "report header %r" % r.out)
    check("%d in sync, 0 drifted, 0 missing" % res["summary"]["in_sync"] in r.out, "summary line %r" % r.out)
    check(rows(r.out, "in_sync"), "object rows %r" % r.out)
    lc = f.get("/v1/clusters/" + IDS["lc"], OP).json()["last_check"]
    check_eq((lc["outcome"], lc["job_id"]), ("in_sync", job["id"]), "cluster last_check")


def t_check_drift():
    cm = kube("c1", "GET", CM)
    JOBS["drift_key"] = key = sorted(cm["data"])[0]
    JOBS["drift_value"] = cm["data"][key]
    kube("c1", "PATCH", CM, {"data": {key: "edited-by-hand"}})
    before = writes("c1")
    r = ferry("check", "lc-1", "--wait")
    check_eq(r.rc, 0, "check %r" % r)
    if before is not None:
        check_eq(writes("c1"), before, "check wrote nothing")
    job = job_of(r)
    drifted = [o for o in job["result"]["check"]["objects"] if o["state"] != "in_sync"]
    check_eq([(o["kind"], o["name"], o["state"]) for o in drifted], [("ConfigMap", "cilium-config", "drifted")],
             "only the edited ConfigMap drifted")
    field = "/data/" + key
    check(field in drifted[0]["fields"], "field %s named: %r" % (field, drifted[0]))
    row = rows(r.out, "drifted")
    check(row and row[0][1:4] == ["ConfigMap", "kube-system", "cilium-config"] and field in " ".join(row[0]),
          "drifted row printed: %r" % r.out)
    check("1 drifted" in r.out, "summary %r" % r.out)
    check_eq(f.get("/v1/clusters/" + IDS["lc"], OP).json()["last_check"]["outcome"], "drifted", "last_check")
    # an ignore rule for that field: sent as the contract's rule, and the
    # field no longer counts
    r = ferry("check", "lc-1", "--ignore", "ConfigMap/cilium-config:" + field, "--wait")
    check_eq(r.rc, 0, "check --ignore %r" % r)
    job = job_of(r)
    check_eq(job["params"], {"ignore": [{"kind": "ConfigMap", "name": "cilium-config", "path": field}]}, "params")
    check_eq(job["result"]["check"]["summary"]["drifted"], 0, "ignored field not drift: %r" % job["result"])


def t_repair():
    r = ferry("repair", "lc-1", "--wait")
    check_eq(r.rc, 0, "repair %r" % r)
    check_eq(job_of(r)["kind"], "repair", "kind")
    check_eq(kube("c1", "GET", CM)["data"][JOBS["drift_key"]], JOBS["drift_value"], "value put back")
    r = ferry("check", "lc-1", "--wait")
    check_eq(r.rc, 0, "check after repair %r" % r)
    check(", 0 drifted, 0 missing" in r.out, "in sync again %r" % r.out)


def t_rollback():
    r = ferry("rollback", "lc-1", "--revision", "1", "--wait")
    check_eq(r.rc, 0, "rollback %r" % r)
    job = job_of(r)
    check_eq((job["kind"], job["params"]), ("rollback", {"revision": 1}), "job")
    items = history("lc-1")
    check_eq([(i["revision"], i["status"], i["chart_version"]) for i in items[:2]],
             [(3, "deployed", "1.18.2"), (2, "superseded", "1.18.3")], "history after the rollback")
    r = ferry("history", "lc-1")
    check(rows(r.out, "3") and rows(r.out, "3")[0][1:3] == ["deployed", "cilium-1.18.2"], "table %r" % r.out)
    ds = kube("c1", "GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium")
    img = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    check(":v1.18.2" in img, "cilium image back at v1.18.2: %s" % img)


def t_rollback_missing():
    before = writes("c1")
    r = ferry("rollback", "lc-1", "--revision", "99", "--wait")
    check_eq(r.rc, 1, "exit status %r" % r)
    check("failed" in r.err and "99" in r.err, "error names the revision: %r" % r.err)
    if before is not None:
        check_eq(writes("c1"), before, "nothing written")
    check_eq(history("lc-1")[0]["revision"], 3, "history unchanged")


def t_uninstall_dry_run():
    before = writes("c1")
    r = ferry("uninstall", "lc-1", "--dry-run", "--wait")
    check_eq(r.rc, 0, "exit status %r" % r)
    job = job_of(r)
    objs = job["result"]["dry_run"]["objects"]
    dele = [o for o in objs if o["action"] == "deleted"]
    check(any(o["kind"] == "DaemonSet" and o["name"] == "cilium" for o in dele), "cilium DaemonSet deleted: %r" % objs)
    check(rows(r.out, "deleted"), "deleted rows printed %r" % r.out)
    check("%d deleted" % len(dele) in r.out, "summary %r" % r.out)
    if before is not None:
        check_eq(writes("c1"), before, "dry run wrote nothing")
    check_eq(history("lc-1")[0]["status"], "deployed", "release untouched")


def t_uninstall():
    # kubesim's TKE cluster runs tke-eni-agent, another CNI: no --force needed
    r = ferry("uninstall", "lc-1", "--keep-history", "--wait")
    check_eq(r.rc, 0, "uninstall %r" % r)
    job = job_of(r)
    check_eq((job["kind"], job["params"]), ("uninstall", {"keep_history": True}), "job")
    try:
        kube("c1", "GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium")
        check(False, "the cilium DaemonSet is still there")
    except urllib.error.HTTPError as e:
        check_eq(e.code, 404, "DaemonSet gone")
    c = f.get("/v1/clusters/" + IDS["lc"], OP).json()
    check_eq(c["cilium_version"], None, "cluster shows no Cilium")
    items = history("lc-1")
    check(items and all(i["status"] in ("uninstalled", "superseded") for i in items) and
          items[0]["status"] == "uninstalled", "history kept, nothing deployed: %r" % [
              (i["revision"], i["status"]) for i in items])


def t_uninstall_force():
    """On k3s Cilium is the only CNI: uninstall is refused (exit 1, the
    reason and the way through named) until --force; --delete-crds removes
    Cilium's CRDs too."""
    register("edge-k3s", "k3", profile="k3s")
    r = ferry("install", "edge-k3s", "--version", "1.18.3", "--wait")
    check_eq(r.rc, 0, "install on k3s %r" % r)
    before = writes("k3")
    r = ferry("uninstall", "edge-k3s", "--wait")
    check_eq(r.rc, 1, "refused %r" % r)
    check("only pod network" in r.err and "force" in r.err, "reason and way through: %r" % r.err)
    if before is not None:
        check_eq(writes("k3"), before, "a refusal writes nothing")
    r = ferry("uninstall", "edge-k3s", "--force", "--delete-crds", "--wait")
    check_eq(r.rc, 0, "forced %r" % r)
    check_eq(job_of(r)["params"], {"force": True, "delete_crds": True}, "params")
    crds = kube("k3", "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    left = [c["metadata"]["name"] for c in crds if c["metadata"]["name"].endswith(".cilium.io")]
    check_eq(left, [], "Cilium CRDs deleted")
    check_eq(history("edge-k3s"), [], "release records deleted (no --keep-history)")


def t_adopt_none():
    before = writes("c2")
    r = ferry("adopt", "bare-1", "--namespace", "kube-system", "--wait")
    check_eq(r.rc, 1, "exit status %r" % r)
    check_eq(job_of(r)["params"], {"namespace": "kube-system"}, "params")
    check("release" in r.err.lower(), "error says no release: %r" % r.err)
    if before is not None:
        check_eq(writes("c2"), before, "adopt wrote nothing")


def t_adopt():
    """A release another manager made (here: ferry of another tenant, which
    writes Helm's own release Secrets) is adopted with zero writes, then
    upgraded as revision 2."""
    beta = f.tenant("beta")
    bt = f.token(beta, "operator", name="other-team")
    r = f.post("/v1/clusters", {"name": "legacy", "profile": "tke",
                                "kubeconfig": open(ks.cluster("c3")["kubeconfig"]).read()}, bt)
    check_eq(r.status, 201, "register in beta %r" % r)
    j = f.post("/v1/clusters/%s/jobs" % r.json()["id"], {"kind": "install", "params": {"chart_version": "1.18.2"}},
               bt)
    check_eq(j.status, 202, "install in beta %r" % j)
    deadline = time.time() + 300
    while f.get("/v1/jobs/" + j.json()["id"], bt).json()["state"] in ("queued", "running"):
        check(time.time() < deadline, "beta install did not finish")
        time.sleep(0.5)
    check_eq(f.get("/v1/jobs/" + j.json()["id"], bt).json()["state"], "succeeded", "beta install")
    IDS["legacy"] = register("legacy-3", "c3")
    check_eq(history("legacy-3"), [], "nothing recorded for acme before the adopt")
    before = writes("c3")
    r = ferry("adopt", "legacy-3", "--wait")
    check_eq(r.rc, 0, "adopt %r" % r)
    check_eq(job_of(r)["params"], {}, "params")
    if before is not None:
        check_eq(writes("c3"), before, "adopt wrote nothing to the cluster")
    items = history("legacy-3")
    check_eq([(i["revision"], i["status"], i["chart_version"]) for i in items], [(1, "deployed", "1.18.2")],
             "adopted history")
    r = ferry("upgrade", "legacy-3", "--version", "1.18.3", "--wait")
    check_eq(r.rc, 0, "upgrade after adopt %r" % r)
    items = history("legacy-3")
    check_eq([(i["revision"], i["status"], i["chart_version"]) for i in items[:2]],
             [(2, "deployed", "1.18.3"), (1, "superseded", "1.18.2")], "Helm's numbering continued")


def t_idem_timeout():
    r1 = ferry("check", "bare-1", "--idempotency-key", "drift-nightly-1")
    check_eq(r1.rc, 0, "first %r" % r1)
    r2 = ferry("check", "bare-1", "--idempotency-key", "drift-nightly-1", "--wait")
    check_eq(r2.out.splitlines()[0].strip(), r1.out.strip(), "same job for the same key")
    check_eq(ferry("jobs", "wait", r1.out.strip(), "--timeout", "120").rc, 1, "(that check fails: no release)")
    # a slow cluster: --timeout ends the wait with exit 3
    faults("c2", {"latency_ms": 1500})
    try:
        r = ferry("check", "bare-1", "--wait", "--timeout", "1")
        check_eq(r.rc, 3, "timeout exit %r" % r)
        check("timed out" in r.err, "message %r" % r.err)
        jid = r.out.splitlines()[0].strip()
    finally:
        faults("c2", {})
    ferry("jobs", "cancel", jid)
    ferry("jobs", "wait", jid, "--timeout", "120")


try:
    setup()
    run_test("cli_lifecycle_usage_errors", t_usage)
    run_test("cli_install_and_history", t_install_history)
    run_test("cli_upgrade_value_flags", t_upgrade)
    run_test("cli_check_clean", t_check_clean)
    run_test("cli_check_reports_drift", t_check_drift)
    run_test("cli_repair", t_repair)
    run_test("cli_rollback", t_rollback)
    run_test("cli_rollback_missing_revision_fails", t_rollback_missing)
    run_test("cli_uninstall_dry_run", t_uninstall_dry_run)
    run_test("cli_uninstall", t_uninstall)
    run_test("cli_uninstall_only_cni_needs_force", t_uninstall_force)
    run_test("cli_adopt_without_release_fails", t_adopt_none)
    run_test("cli_adopt_then_upgrade", t_adopt)
    run_test("cli_lifecycle_idempotency_and_timeout", t_idem_timeout)
finally:
    ks.stop()
finish(f)
