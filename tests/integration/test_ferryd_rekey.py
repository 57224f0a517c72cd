#!/usr/bin/env python3
"""`ferryd rekey`: rotate the master key and re-seal every stored credential
(docs/OPERATIONS.md "Rotate the master key").

A real ferryd (own database) imports two kubesim clusters (their
kubeconfig credentials are sealed under k1), then stops. Checked with the
real binary: a wrong old key (right id, wrong bytes; an unknown id) is
refused with a clear line and changes nothing; a new key with the old id,
or no new key, is a usage error; the right old key re-seals both
credentials under k2 in one go (new ciphertexts, key id k2); afterwards k1
alone no longer opens them. Then the documented rotation without downtime:
a ferryd running with "k3,k2" seals a new cluster under k3, and rekey with
old keyring "k3,k2" and new key "k3" re-seals the rest; a ferryd started
with only k3 runs a preflight job against every cluster, i.e. the re-sealed
credentials open to the same kubeconfig token. Standard library only.
"""
import os
import re
import secrets
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import Kubesim, check, check_eq, finish, run_test, start  # noqa: E402

TESTS = ["rekey_refuses_wrong_old_key", "rekey_usage_errors", "rekey_reseals_every_credential",
         "rekey_online_rotation", "rekey_new_key_runs_jobs"]

ks = Kubesim(["--clusters", "1"], TESTS, prefix="ferry-rekey-kubesim-")
f = start("rekey", TESTS, workers=1)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
KUBECONFIG = open(ks.cluster("c1")["kubeconfig"]).read()
IDS = []
for name in ("edge-1", "edge-2"):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "kubeconfig": KUBECONFIG}, OP)
    check_eq(r.status, 201, "register %s: %r" % (name, r))
    IDS.append(r.json()["id"])
# ferryd stops; rekey runs against its database
f.proc.send_signal(signal.SIGTERM)
f.proc.wait(timeout=60)

OLD = f.key
NEW = "k2:" + secrets.token_hex(32)
new_file = os.path.join(f.tmp, "new.key")
with open(new_file, "w") as fh:
    fh.write(NEW + "\n")


def creds():
    return f.sql("SELECT string_agg(credentials_key_id || ' ' || credentials, ',' ORDER BY id) FROM clusters")


def rekey(old_key, *args):
    env = dict(f.env)
    env["FERRY_MASTER_KEY"] = old_key
    return subprocess.run([f.ferryd, "rekey"] + list(args), env=env, capture_output=True, text=True, timeout=120)


def no_sanitizer(r):
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in r.stderr, "sanitizer report: %s" % r.stderr[-3000:])


BEFORE = creds()


def t_wrong_old_key():
    check(BEFORE.count("k1 v1:k1:") == 2, "both sealed under k1 first: %r" % BEFORE[:80])
    for wrong in ("k1:" + secrets.token_hex(32), "k9:" + secrets.token_hex(32)):  # wrong bytes; unknown id
        r = rekey(wrong, "--new-key-file", new_file)
        no_sanitizer(r)
        check_eq(r.returncode, 1, "refused %r" % r.stderr)
        lines = r.stderr.strip().splitlines()
        check_eq(len(lines), 1, "one line: %r" % r.stderr)
        check(lines[0].startswith("ferryd: rekey refused, nothing changed: the old key does not open "
                                  "clusters.credentials of clusters "), "clear refusal: %r" % lines[0])
        check(any(i in lines[0] for i in IDS), "names the cluster: %r" % lines[0])
        check(OLD[3:] not in r.stderr and NEW[3:] not in r.stderr, "no key material printed")
        check_eq(creds(), BEFORE, "nothing changed")


def t_usage():
    r = rekey(OLD)
    check(r.returncode == 2 and "--new-key-file" in r.stderr, "needs a new key: %r" % r.stderr)
    same = os.path.join(f.tmp, "same.key")
    with open(same, "w") as fh:
        fh.write("k1:" + secrets.token_hex(32))
    r = rekey(OLD, "--new-key-file", same)
    check(r.returncode == 2 and 'names "k1" a different key' in r.stderr, "same id refused: %r" % r.stderr)
    bad = os.path.join(f.tmp, "bad.key")
    with open(bad, "w") as fh:
        fh.write("k2:1234")
    r = rekey(OLD, "--new-key-file", bad)
    check(r.returncode == 2 and "the new key file" in r.stderr, "malformed new key: %r" % r.stderr)
    r = rekey(OLD, "--new-key-file", os.path.join(f.tmp, "missing.key"))
    check(r.returncode == 2 and "cannot read the new key file" in r.stderr, "missing file: %r" % r.stderr)
    check_eq(creds(), BEFORE, "nothing changed")


def t_reseal():
    r = rekey(OLD, "--new-key-file", new_file)
    no_sanitizer(r)
    check_eq(r.returncode, 0, "rekey %r" % r.stderr)
    check('re-sealed 2 credentials under key "k2" (was "k1")' in r.stderr, "summary: %r" % r.stderr)
    after = creds()
    check_eq(after.count("k2 v1:k2:"), 2, "both under k2: %r" % after[:80])
    old_ct = set(x.split(" ")[1] for x in BEFORE.split(","))
    check(not old_ct & set(x.split(" ")[1] for x in after.split(",")), "new ciphertexts")
    # k1 alone no longer opens anything: a second rekey with it is refused
    k3 = os.path.join(f.tmp, "k3.key")
    with open(k3, "w") as fh:
        fh.write("k3:" + secrets.token_hex(32))
    r = rekey(OLD, "--new-key-file", k3)
    check(r.returncode == 1 and 'key id "k2" is not in the keyring' in r.stderr, "k1 no longer opens: %r" % r.stderr)
    check_eq(creds(), after, "the refused rekey changed nothing")


def serve(key):
    """ferryd serve (one worker) with only `key`; sets f.proc/f.port."""
    env = dict(f.env)
    env["FERRY_MASTER_KEY"] = key
    f.log.close()
    f.log = open(f.log_path, "w")
    f.proc = subprocess.Popen([f.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", "1"], env=env,
                              stdout=f.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    port = None
    while time.time() < deadline and port is None:
        m = re.search(r"listening on http://[^:]+:(\d+)/", open(f.log_path).read())
        if m:
            port = int(m.group(1))
        else:
            time.sleep(0.05)
    check(port, "ferryd started: %s" % open(f.log_path).read()[-1500:])
    f.port = port


K3 = "k3:" + secrets.token_hex(32)


def t_online_rotation():
    # every ferryd runs with the new key first: new credentials are sealed
    # under k3, the older ones still open with k2
    serve(K3 + "," + NEW)
    r = f.post("/v1/clusters", {"name": "edge-3", "profile": "tke", "kubeconfig": KUBECONFIG}, OP)
    check_eq(r.status, 201, "register edge-3 %r" % r)
    IDS.append(r.json()["id"])
    f.proc.send_signal(signal.SIGTERM)
    check_eq(f.proc.wait(timeout=60), 0, "ferryd stopped")
    mixed = creds()
    check_eq((mixed.count("k2 v1:k2:"), mixed.count("k3 v1:k3:")), (2, 1), "k2 and k3 before: %r" % mixed[:80])
    k3_file = os.path.join(f.tmp, "k3only.key")
    with open(k3_file, "w") as fh:
        fh.write(K3)
    r = rekey(K3 + "," + NEW, "--new-key-file", k3_file)
    no_sanitizer(r)
    check_eq(r.returncode, 0, "rekey %r" % r.stderr)
    check('re-sealed 3 credentials under key "k3" (was "k3")' in r.stderr, "summary %r" % r.stderr)
    check_eq(creds().count("k3 v1:k3:"), 3, "all under k3")


def t_new_key_runs_jobs():
    serve(K3)
    for cid in IDS:
        r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight", "params": {"connection_only": True}}, OP)
        check_eq(r.status, 202, "preflight queued %r" % r)
        jid = r.json()["id"]
        job = None
        deadline = time.time() + 90
        while time.time() < deadline:
            job = f.get("/v1/jobs/" + jid, OP).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        check_eq(job["state"], "succeeded", "preflight with re-sealed credentials: %r" % job.get("error"))


run_test("rekey_refuses_wrong_old_key", t_wrong_old_key)
run_test("rekey_usage_errors", t_usage)
run_test("rekey_reseals_every_credential", t_reseal)
run_test("rekey_online_rotation", t_online_rotation)
run_test("rekey_new_key_runs_jobs", t_new_key_runs_jobs)
ks.stop()
finish(f)
