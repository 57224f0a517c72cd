#!/usr/bin/env python3
"""README's API tour, run literally: ferryd serve --demo (what ./dev run
starts: demo tenant and tokens, kubesim with the tke-demo cluster), then
docs/tour.sh with the operator token the demo printed. README.md must show
the script's tour lines unchanged, so what the README says is what ran.
"""
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (Ferry, check, check_eq, finish, run_test, skip_all)  # noqa: E402

TESTS = ["readme_tour_in_readme", "readme_tour_runs_on_the_demo"]
SRC = os.environ.get("FERRY_SRC") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOUR = os.path.join(SRC, "docs", "tour.sh")
SHARED = os.environ.get("FERRY_SHARED") or os.path.join(SRC, "..", "shared")
for tool in ("curl", "jq"):
    if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
        skip_all(TESTS, "%s is not installed" % tool)
if not os.path.exists(os.path.join(SHARED, "charts", "cilium-1.18.3.tgz")):
    skip_all(TESTS, "no charts in %s" % SHARED)


def tour_lines():
    text = open(TOUR).read()
    body = text.split("# --- tour ---\n")[1].split("# --- end ---")[0]
    return [line for line in body.splitlines() if line.strip()]


def t_in_readme():
    readme = [line[4:] if line.startswith("    ") else line
              for line in open(os.path.join(SRC, "README.md")).read().splitlines()]
    lines = tour_lines()
    check(len(lines) > 10, "tour has lines")
    # consecutive in README, in the same order
    start = readme.index(lines[0]) if lines[0] in readme else -1
    check(start >= 0, "README lacks %r" % lines[0])
    shown = [line for line in readme[start:] if line.strip()][:len(lines)]
    check_eq(shown, lines, "README shows docs/tour.sh")


data_dir = tempfile.mkdtemp(prefix="ferry-tour-")
atexit.register(shutil.rmtree, data_dir, True)
os.environ["FERRY_CHARTS_DIR"] = os.path.join(SHARED, "charts")
f = Ferry("tour", extra_args=["--demo", "--data-dir", data_dir], workers=2)
deadline = time.time() + 30
token = None
while time.time() < deadline and not token:
    m = re.search(r"operator token \(demo\): (fy_\S+)", open(f.log_path).read())
    token = m.group(1) if m else None
    time.sleep(0.1)


def t_runs():
    check(token, "demo printed an operator token: %s" % open(f.log_path).read()[-1500:])
    check(os.path.exists(os.path.join(data_dir, "kubesim", "tke-demo", "kubeconfig")), "demo kubeconfig")
    env = dict(os.environ, T=token, FERRY_URL="http://127.0.0.1:%d" % f.port, FERRY_DATA_DIR=data_dir)
    out = subprocess.run(["bash", TOUR], cwd=SRC, env=env, capture_output=True, text=True, timeout=300)
    check_eq(out.returncode, 0, "tour exit status; stderr: %s; stdout tail: %s" % (out.stderr[-800:], out.stdout[-800:]))
    text = out.stdout
    check('"name":"prod-1"' in text.replace(" ", ""), "cluster registered")
    check("install: " in text and "chart_version" in text, "job kinds listed")
    check('"state": "succeeded"' in text, "install succeeded: %s" % text[-1500:])
    check("params.chart_verison" in text and "did you mean chart_version" in text, "typo refused")
    check('"sha256"' in text or '"digest"' in text or '"version":"1.18.3"' in text.replace(" ", ""),
          "chart uploaded: %s" % text[-600:])


run_test("readme_tour_in_readme", t_in_readme)
run_test("readme_tour_runs_on_the_demo", t_runs)
finish(f)
