#!/usr/bin/env python3
"""bench/install_cpu_profile.py PERF_SCRIPT_OUTPUT: where ferryd's CPU went
during bench/install_cpu.sh, per install, from `perf script -F
comm,tid,time,ip,sym,dso` of a --call-graph dwarf recording at 2000 Hz.
Samples of the key pool thread are left out. Installs are told apart by
gaps of more than a second between samples of the job's threads; the
first (it loads the chart) is left out. Printed: the average per install
of the inclusive time of the functions that split an install into its
parts, then the functions with the most self time."""
import collections
import re
import sys

HZ = 2000.0
# gunzip/inflate: inspect.c's inflate (its 64 KiB buffer on the stack, before this round, cut the
# unwinding short: its samples lacked chart_inspect)
PARTS = ["run_job", "phase_install_preflight", "install_chart_preview", "phase_cilium", "chart_inspect", "gunzip", "inflate",
         "render_impl", "tmpl_exec", "render_setup", "make_cert", "X509_sign", "X509_PUBKEY_set",
         "PEM_read_bio_PrivateKey_ex", "cert_key", "chart_render_documents", "chart_render_free",
         "relstore_write_record", "release_encode", "deflate_raw", "deflate", "send_json", "install_apply",
         "kube_request", "curl_easy_perform", "json_loadb", "PQgetResult", "__GI_munmap", "exc_page_fault"]
JOB = ("run_job", "job_main", "job_on_stack", "gunzip")  # gunzip: see above

samples, cur = [], None
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        if cur:
            samples.append(cur)
        cur = None
    elif not line[0].isspace():
        p = line.split()
        i = [k for k, t in enumerate(p) if t.endswith(":")][0]
        cur = {"comm": " ".join(p[:i - 1]), "t": float(p[i][:-1]), "f": []}
    elif cur is not None:
        m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line.rstrip())
        if m:
            sym = m.group(1)
            cur["f"].append(sym if sym != "[unknown]" else "?@" + m.group(2).rsplit("/", 1)[-1])
if cur:
    samples.append(cur)
S = sorted((s for s in samples if not s["comm"].startswith("ferry-keypool")), key=lambda s: s["t"])
runs, last = [], None
for s in S:
    if not any(f in JOB for f in s["f"]):
        continue
    if last is None or s["t"] - last > 1.0:
        runs.append([])
    runs[-1].append(s)
    last = s["t"]
cached = runs[1:]
if not cached:
    sys.exit("install_cpu_profile: fewer than two installs in the recording")
ms = 1000.0 / HZ / len(cached)
inc, slf = collections.Counter(), collections.Counter()
for r in cached:
    for s in r:
        for f in set(s["f"]):
            inc[f] += 1
        if s["f"]:
            slf[s["f"][0]] += 1
print("%d cached installs; per install, job threads: %.1f ms (renders run on their own stack: their"
      " samples are under job_on_stack, not under the phase)" % (len(cached), sum(len(r) for r in cached) * ms))
for p in PARTS:
    print("  %-28s %6.1f ms" % (p, inc[p] * ms))
print("most self time:")
for k, v in slf.most_common(15):
    print("  %-40s %6.1f ms" % (k, v * ms))
