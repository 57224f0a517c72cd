#!/usr/bin/env python3
"""The driver of bench/queue_bench.sh (see there). Prints a table."""
import collections
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["FERRY_SRC"], "tests", "integration"))
from apitest import Ferry, Kubesim  # noqa: E402

N = int(os.environ.get("QUEUE_BENCH_JOBS", "2000"))
WORKERS = [int(w) for w in os.environ.get("QUEUE_BENCH_WORKERS", "4 16").split()]
TENANTS = 16  # jobs spread over this many tenants: the per-tenant cap rarely binds
SRC = os.environ["FERRY_SRC"]


# ---- the statements under test, extracted from db/jobs.c -------------------

def c_statement(func):
    """The first SQL statement (a run of adjacent C string literals, with the
    channel macros expanded) in the body of db/jobs.c's function func."""
    text = open(os.path.join(SRC, "db", "jobs.c")).read()
    m = re.search(r"\n(?:int|static int|json_t \*)\s*%s\(" % func, text)
    if not m:
        raise SystemExit("queue_bench: %s not found in db/jobs.c" % func)
    macros = dict(re.findall(r'#define (DB_\w+) "([^"]*)"', open(os.path.join(SRC, "db", "jobs.h")).read()))
    body = text[m.end():]
    body = body[:body.index("\n}\n")]
    tok = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(DB_\w+)|(/\*.*?\*/))', re.S)
    pos = 0
    while True:
        s = body.find('"', pos)
        if s < 0:
            return None
        parts, p = [], s
        while True:
            t = tok.match(body, p)
            if not t:
                break
            if t.group(1) is not None:
                parts.append(t.group(1).encode().decode("unicode_escape"))
            elif t.group(2):
                parts.append(macros[t.group(2)])
            p = t.end()
        sql = "".join(parts)
        if re.match(r"\s*(WITH|UPDATE|INSERT|SELECT)\b", sql) and len(sql) > 80:
            return sql
        pos = p + 1


def bind(sql, values):
    """$n -> pgbench :variables or SQL literals (values[n])."""
    return re.sub(r"\$(\d+)", lambda m: values[int(m.group(1))], sql)


def pgbench_script(workers):
    claim = bind(c_statement("db_job_claim_fair"), {
        1: "('queuebench/w' || :client_id)", 2: "'30'", 3: "'%d'" % max(1, workers - 1), 4: "'queuebench'", 5: "'{}'"})
    result = "'{\"kube_version\": \"v1.30.0\", \"node_count\": 0}'"
    finish = c_statement("db_job_finish")
    if finish:  # before issue 14
        finish = bind(finish, {1: ":id", 2: ":lease_token", 3: "'succeeded'", 4: "NULL::text", 5: result})
    else:  # db_job_finish is db_job_step with a finish only
        finish = bind(c_statement("db_job_step"), {
            1: ":id", 2: ":lease_token", 3: "'0'", 4: "NULL", 5: "NULL", 6: "NULL", 7: "'0'", 8: "NULL", 9: "NULL",
            10: "NULL", 11: "'0'", 12: "'0'", 13: "'succeeded'", 14: "NULL", 15: result, 16: "NULL",
            17: "NULL", 18: "NULL", 19: "NULL", 20: "NULL"})
    script = claim.strip() + "\n\\gset\n" + finish.strip() + ";\n"
    if "pg_notify" not in finish:
        # db/jobs.c notifies in a transaction of its own after the commit
        # (notify() there): the same here.
        script += "SELECT set_config('synchronous_commit', 'off', true), pg_notify('ferry_job_events', :id);\n"
    return script


# ---- the set-up ------------------------------------------------------------

ks = Kubesim(["--clusters", "1", "--scenario", "tke-fresh"], ["queue_bench"], prefix="queue-bench-ks-")
api = Ferry("qbench", workers=0)
t0 = api.tenant("qb0")
op = api.token(t0, "operator")
r = api.post("/v1/clusters", {"name": "c1", "profile": "tke", "kubeconfig": open(ks.cluster("c1")["kubeconfig"]).read()}, op)
assert r.status == 201, r
# N clusters over TENANTS tenants, all with c1's sealed credentials (kubesim
# serves them all as c1).
api.sql("INSERT INTO tenants (name) SELECT 'qb' || g FROM generate_series(1, %d) g" % (TENANTS - 1))
api.sql("INSERT INTO clusters (tenant_id, name, profile, api_server, tls_server_name, ca_bundle, credentials,"
        " credentials_key_id, auth_kind, insecure_skip_tls_verify)"
        " SELECT t.id, 'q' || g, c.profile, c.api_server, c.tls_server_name, c.ca_bundle, c.credentials,"
        "  c.credentials_key_id, c.auth_kind, c.insecure_skip_tls_verify"
        " FROM generate_series(1, %d) g JOIN tenants t ON t.name = 'qb' || (g %% %d), clusters c"
        " WHERE c.name = 'c1'" % (N, TENANTS))


def psql(q):
    return api.sql(q)




# The measured job: preflight with params.connection_only against kubesim
# (GET /version, list nodes: two HTTPS requests). Two shapes of queue:
#  - "new": every job is for another cluster, so every job opens a TLS
#    connection and decodes its cluster's CA and credentials;
#  - "repeat": the jobs cycle over REPEAT_CLUSTERS clusters (each gets
#    N / REPEAT_CLUSTERS jobs), the steady state of a fleet preflighted
#    again and again: the per-cluster TLS material and keep-alive
#    connections (server/kube/conncache) are reused. A cluster can hold only
#    one queued-or-running job (jobs_one_active_per_cluster), so for these
#    runs that index is dropped in the bench's database (for pgbench's runs
#    too) and created again afterwards.
KIND = "preflight"
PARAMS = '{"connection_only": true}'
SHAPES = os.environ.get("QUEUE_BENCH_SHAPES", "new repeat").split()
REPEAT_CLUSTERS = int(os.environ.get("QUEUE_BENCH_REPEAT_CLUSTERS", "64"))
ONE_ACTIVE = psql("SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_one_active_per_cluster'")


def reset_and_enqueue(shape="new"):
    for q in ("DELETE FROM job_events", "DELETE FROM job_phases", "DELETE FROM jobs"):
        psql(q)
    has_index = psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'jobs_one_active_per_cluster'") == "1"
    if shape == "repeat" and has_index:
        psql("DROP INDEX jobs_one_active_per_cluster")
    if shape == "new" and not has_index:
        psql(ONE_ACTIVE)
    for q in ("VACUUM ANALYZE jobs", "VACUUM ANALYZE job_phases", "VACUUM ANALYZE job_events", "CHECKPOINT"):
        psql(q)
    clusters = N if shape == "new" else REPEAT_CLUSTERS
    psql("INSERT INTO jobs (tenant_id, cluster_id, kind, params) SELECT c.tenant_id, c.id, 'preflight', '%s'"
         " FROM (SELECT * FROM clusters WHERE name LIKE 'q%%' ORDER BY name LIMIT %d) c,"
         " generate_series(1, %d) ORDER BY random() LIMIT %d" % (PARAMS, clusters, (N + clusters - 1) // clusters, N))
    psql("ANALYZE jobs")


def db_counters():
    v = psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(v)


class Sampler:
    """One psql session: LISTENs on ferry's job channels (to count the
    NOTIFYs) and samples the wait events of active backends every 50 ms."""

    def __init__(self):
        self.p = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", api.db_url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.waits = collections.Counter()
        self.notifies = collections.Counter()
        self.samples = 0
        self.stop_flag = False
        self.reader = threading.Thread(target=self.read)
        self.reader.start()
        self.p.stdin.write("LISTEN ferry_jobs; LISTEN ferry_job_events;\n")
        self.writer = threading.Thread(target=self.write)
        self.writer.start()

    def write(self):
        q = ("SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*) FROM pg_stat_activity"
             " WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
             " AND datname = current_database() GROUP BY 1;\n")
        while not self.stop_flag:
            self.p.stdin.write(q)
            self.samples += 1
            time.sleep(0.05)
        self.p.stdin.write("SELECT 1;\n")
        self.p.stdin.close()

    def read(self):
        for line in self.p.stdout:
            m = re.match(r'Asynchronous notification "(\w+)"', line)
            if m:
                self.notifies[m.group(1)] += 1
                continue
            m = re.match(r"^(.+)\|(\d+)$", line.strip())
            if m:
                self.waits[m.group(1)] += int(m.group(2))

    def stop(self):
        self.stop_flag = True
        self.writer.join()
        self.p.wait(timeout=30)
        self.reader.join()
        top = sorted(self.waits.items(), key=lambda kv: -kv[1])[:5]
        s = max(1, self.samples)
        return ", ".join("%s %.1f" % (k, v / s) for k, v in top), sum(self.notifies.values())


def rate():
    row = psql("SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*),"
               " extract(epoch FROM max(finished_at) - min(started_at)) FROM jobs").split("|")
    ok, total, span = int(row[0]), int(row[1]), float(row[2] or 0)
    return ok, total, (ok / span if span > 0 else 0.0)


def run_pgbench(clients, shape):
    reset_and_enqueue(shape)
    script = os.path.join(api.tmp, "claim_complete.sql")
    open(script, "w").write(pgbench_script(clients))
    per = (N - clients) // clients  # a margin, so no client finds the queue empty
    c0 = db_counters()
    smp = Sampler()
    out = subprocess.run(["pgbench", "-n", "-M", "extended", "-c", str(clients), "-j", "2", "-t", str(per),
                          "-f", script, api.db_url], capture_output=True, text=True)
    waits, notifies = smp.stop()
    if out.returncode != 0:
        raise SystemExit("pgbench failed: %s %s" % (out.stdout, out.stderr))
    commits = db_counters() - c0
    done = int(psql("SELECT count(*) FROM jobs WHERE state = 'succeeded'"))
    ok, total, r = rate()
    return {"rate": r, "jobs": done, "commits": commits / max(1, done), "notifies": notifies / max(1, done),
            "waits": waits}


def cpu_ms(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def run_ferry(workers, shape, kind=KIND):
    reset_and_enqueue(shape)
    # No RSA key pool: a preflight never uses one, and its fill at start
    # (8 RSA-2048 keys, about a second of CPU) is not the queue's cost.
    env = dict(api.env, FERRY_KEY_POOL_SIZE="0")
    log = open(os.path.join(api.tmp, "ferryd-%s-%s-w%d.log" % (kind, shape, workers)), "w")
    c0 = db_counters()
    smp = Sampler()
    p = subprocess.Popen([api.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", str(workers),
                          "--web-root", os.path.join(SRC, "web"), "--log-level", "warn"],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + max(600, N / 2)
    while time.time() < deadline:
        left = int(psql("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"))
        if left == 0 or p.poll() is not None:
            break
        # The figure comes from the job rows, not from when this loop
        # sees the end; each check starts a psql process, which competes
        # for the same two cores (pgbench's run has no such poller).
        time.sleep(1.0)
    waits, notifies = smp.stop()
    cpu = cpu_ms(p.pid) if p.poll() is None else 0
    p.terminate()
    p.wait(timeout=60)
    log.close()
    commits = db_counters() - c0
    ok, total, r = rate()
    print("# ferry %s %s %d workers: job ms median %s, phase ms median %s, claim lag ms median %s" % (
        kind, shape, workers, psql(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)"
        " FROM jobs"), psql(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)"
        " FROM job_phases"), psql(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.started_at - j.started_at) * 1000)"
        " FROM job_phases p JOIN jobs j ON j.id = p.job_id")), flush=True)
    if ok != total:
        bad = psql("SELECT state, error FROM jobs WHERE state <> 'succeeded' LIMIT 3")
        print("# ferry %d workers: %d of %d jobs succeeded: %s" % (workers, ok, total, bad), flush=True)
    return {"rate": r, "jobs": ok, "commits": commits / max(1, total), "notifies": notifies / max(1, total),
            "waits": waits, "cpu": cpu / max(1, total)}


print("jobs %d, tenants %d, PostgreSQL %s" % (N, TENANTS, psql("SHOW server_version")), flush=True)
print("fsync %s, synchronous_commit %s" % (psql("SHOW fsync"), psql("SHOW synchronous_commit")), flush=True)
rows = []
for w in WORKERS:
    for shape in SHAPES:
        if os.environ.get("QUEUE_BENCH_SKIP_PGBENCH"):
            b = {"rate": 0, "commits": 0, "notifies": 0, "waits": ""}
        else:
            b = run_pgbench(w, shape)
        print("# pgbench %s %d clients: %.0f jobs/s, %.1f commits/job, %.1f NOTIFY/job; waits: %s"
              % (shape, w, b["rate"], b["commits"], b["notifies"], b["waits"]), flush=True)
        f = run_ferry(w, shape)
        print("# ferry %s %s %d workers: %.0f jobs/s, %.1f commits/job, %.1f NOTIFY/job, ferryd CPU %.2f ms/job;"
              " waits: %s" % (KIND, shape, w, f["rate"], f["commits"], f["notifies"], f["cpu"], f["waits"]),
              flush=True)
        rows.append(("%s (%s)" % (KIND, "a new cluster per job" if shape == "new"
                                  else "%d clusters, repeated" % REPEAT_CLUSTERS), w, f, b))
reset_and_enqueue("new")  # the index back

print()
print("| job | workers | ferry jobs/s | commits/job | NOTIFY/job | ferryd CPU ms/job "
      "| pgbench claim+complete jobs/s (same clients) | ratio (target >= 0.7) |")
print("|---|---|---|---|---|---|---|---|")
for kind, w, f, b in rows:
    print("| %s | %d | %.0f | %.1f | %.1f | %.2f | %.0f | %.2f |"
          % (kind, w, f["rate"], f["commits"], f["notifies"], f["cpu"], b["rate"],
             f["rate"] / b["rate"] if b["rate"] else 0))
print()
print("scaling with workers (target: grows until PostgreSQL is the limit):")
for shape_row in sorted(set(k for k, _, _, _ in rows)):
    print("  %s: " % shape_row + ", ".join("%d workers %.0f jobs/s (pgbench %.0f)" % (w, f["rate"], b["rate"])
                                          for k, w, f, b in rows if k == shape_row))
api.stop()
ks.stop()
