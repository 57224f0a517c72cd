#!/usr/bin/env python3
"""The driver of bench/fleet_bench.sh (see there). Prints key value lines."""
import math
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["FERRY_SRC"], "tests", "integration"))
from apitest import Ferry, Kubesim  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rss_profile import RssSampler, fmt  # noqa: E402

N = int(os.environ.get("FLEET_BENCH_CLUSTERS", "1000"))
MIF = int(os.environ.get("FLEET_BENCH_MIF", "100"))
charts = os.path.join(os.environ["FERRY_SHARED"], "charts")

ks = Kubesim(["--clusters", str(N), "--scenario", "tke-fresh", "--ready-delay-ms", "50"], ["fleet_bench"],
             prefix="fleet-bench-ks-")
f = Ferry("bench", workers=MIF, extra_args=["--charts-dir", charts, "--lease-seconds", "60"])
op = f.token(f.tenant("bench"), "operator")
rss = RssSampler(f.proc.pid)
loads = []


def loadavg():
    loads.append(os.getloadavg()[0])
t0 = time.time()
for c in ks.info["clusters"]:
    r = f.post("/v1/clusters", {"name": c["name"], "profile": "tke", "labels": {"fleet": "bench"},
                                "kubeconfig": open(c["kubeconfig"]).read()}, op)
    assert r.status == 201, r
print("register_s %.1f" % (time.time() - t0), flush=True)

peak_conns = [0]
stop = [False]


def sample():
    while not stop[0]:
        try:
            n = int(f.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid()"))
            peak_conns[0] = max(peak_conns[0], n)
        except Exception:
            pass
        time.sleep(0.5)


def campaign(kind, version):
    r = f.post("/v1/campaigns", {"name": "%s %s" % (kind, version), "selector": "fleet=bench", "kind": kind,
                                 "params": {"chart_version": version},
                                 "strategy": {"canary": 0, "max_in_flight": MIF, "max_failures": N}}, op)
    assert r.status == 201, r
    cid = r.json()["id"]
    start = time.time()
    while True:
        r = f.get("/v1/campaigns/" + cid, op, timeout=120)
        if r.status != 200:  # a busy server may answer 503: ask again
            print("# GET campaign: %r" % r, flush=True)
        elif r.json()["state"] in ("succeeded", "failed", "cancelled"):
            return cid, r.json(), time.time() - start
        loadavg()
        time.sleep(1)


def cpu_s(pid):
    """utime + stime of a process, seconds (/proc/PID/stat)."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


cid, c, wall = campaign("install", "1.18.2")
print("install_campaign_s %.1f state %s counts %s" % (wall, c["state"], c["counts"]), flush=True)
install_peak = (rss.peak_kb, rss.peak_breakdown)
print("install_peak_rss_mb %.1f: %s" % (install_peak[0] / 1024, fmt(install_peak[1])), flush=True)
# The upgrade's own peak: the sampler starts afresh (VmHWM keeps the
# install's; both are printed).
rss.stop()
rss = RssSampler(f.proc.pid)
loads.clear()
th = threading.Thread(target=sample)
th.start()
cpu0 = cpu_s(f.proc.pid)
cid, c, wall = campaign("upgrade", "1.18.3")
cpu1 = cpu_s(f.proc.pid)
rss.stop()
stop[0] = True
th.join()
durs = [float(x) for x in f.sql(
    "SELECT extract(epoch from j.finished_at - j.started_at) FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
    " WHERE x.campaign_id = '%s'" % cid).split()]
one = statistics.median(durs)
ideal = math.ceil(N / MIF) * one
calls = f.sql("SELECT sum(p.api_calls) FROM campaign_clusters x JOIN job_phases p ON p.job_id = x.job_id"
              " WHERE x.campaign_id = '%s'" % cid)
hwm = [line.split()[1] for line in open("/proc/%d/status" % f.proc.pid) if line.startswith("VmHWM")][0]
print("clusters %d max_in_flight %d" % (N, MIF))
print("upgrade_state %s counts %s" % (c["state"], c["counts"]))
print("upgrade_wall_s %.1f" % wall)
print("one_upgrade_median_s %.2f (p90 %.2f, mean %.2f)" % (one, sorted(durs)[int(len(durs) * 0.9)],
                                                          statistics.mean(durs)))
print("ideal_s %.1f ratio %.2f (target <= 1.2: %s)" % (ideal, wall / ideal, "met" if wall / ideal <= 1.2 else "MISSED"))
print("ferryd_peak_rss_mb %.1f (VmHWM, install campaign included; target <= 100: %s)"
      % (int(hwm) / 1024, "met" if int(hwm) <= 100 * 1024 else "MISSED"))
print("upgrade_peak_rss_mb %.1f: %s" % (rss.peak_kb / 1024, fmt(rss.peak_breakdown)))
print("load_average_during_upgrade min %.1f max %.1f" % (min(loads or [0]), max(loads or [0])))
print("pg_connections_peak %d" % peak_conns[0])
print("api_calls_per_cluster %.1f" % (int(calls or 0) / N))
print("ferryd_cpu_s %.1f (%.0f ms per upgrade)" % (cpu1 - cpu0, (cpu1 - cpu0) * 1000 / N))
# Where an upgrade's time goes: median per phase, the wait between the
# campaign's enqueue and a worker's claim, the cilium phase's chart timing.
q = f.sql("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch from j.started_at - j.created_at))"
          " FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id WHERE x.campaign_id = '%s'" % cid)
print("claim_wait_median_s %.2f" % float(q or 0))
# After the first wave (jobs enqueued one by one as others end): what a
# member waits between its enqueue and a worker's claim, and between the
# end of the job whose slot it took and its enqueue (the advancer).
q = f.sql("WITH j AS (SELECT j.created_at, j.started_at, j.finished_at,"
          " row_number() OVER (ORDER BY j.created_at) AS n FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
          " WHERE x.campaign_id = '%s')"
          " SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch from started_at - created_at))::numeric, 3),"
          " round(percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch from started_at - created_at))::numeric, 3)"
          " FROM j WHERE n > %d" % (cid, MIF))
print("later_waves_claim_wait_s median|p90 %s" % (q or "-"))
ends = sorted(float(x) for x in f.sql(
    "SELECT extract(epoch from j.finished_at) FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
    " WHERE x.campaign_id = '%s'" % cid).split())
starts = sorted(float(x) for x in f.sql(
    "SELECT extract(epoch from j.created_at) FROM campaign_clusters x JOIN jobs j ON j.id = x.job_id"
    " WHERE x.campaign_id = '%s'" % cid).split())
# the k-th enqueue after the first wave follows the (k - MIF)-th job end
gaps = sorted(s - e for s, e in zip(starts[MIF:], ends))
if gaps:
    print("later_waves_end_to_enqueue_s median %.3f p90 %.3f" % (gaps[len(gaps) // 2], gaps[int(len(gaps) * 0.9)]))
rows = f.sql("SELECT p.name, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch from"
             " p.finished_at - p.started_at))::numeric, 2) FROM campaign_clusters x JOIN job_phases p"
             " ON p.job_id = x.job_id WHERE x.campaign_id = '%s' GROUP BY p.name, p.seq ORDER BY p.seq" % cid)
print("phase_median_s " + " ".join(rows.replace("|", "=").split()))
rows = f.sql("SELECT k, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v::numeric)) FROM campaign_clusters x"
             " JOIN job_phases p ON p.job_id = x.job_id, jsonb_each_text(p.detail->'chart_ms') AS e(k, v)"
             " WHERE x.campaign_id = '%s' AND p.name = 'cilium' GROUP BY k ORDER BY k" % cid)
print("cilium_chart_ms_median " + " ".join(rows.replace("|", "=").split()))
f.stop()
ks.stop()
