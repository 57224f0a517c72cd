#!/usr/bin/env bash
# bench/install_bench.sh BUILD_DIR [RUNS]: what a fresh TKE install costs.
# A full install of cilium 1.18.3 on a kubesim tke-fresh cluster, every
# phase, as tests/integration/test_install_phases walks it (same process,
# real PostgreSQL from tests/run, kubesim over HTTPS), RUNS times (default
# 3). For each run it prints: API calls beside the bound of issue 14
# (objects written + 25; kubesim counts both), TLS connections opened,
# wall and CPU milliseconds of ferry's side (the test process: phases,
# chart render, kube client, database client), then the per-phase table
# of the first run. The same numbers for the second, identical install
# (every object unchanged, on the connection the first job left).
# Use an optimised, unsanitised build for figures, e.g.
#   mkdir build-install-bench && cd build-install-bench &&
#   ../configure CFLAGS="-O2 -g" &&
#   make tests/integration/test_install_phases tests/kubesim/kubesim
#   cd .. && bench/install_bench.sh build-install-bench
# Charts: $FERRY_CHARTS_DIR, default ../shared/charts beside the tree.
set -eu
build=${1:?usage: bench/install_bench.sh BUILD_DIR [RUNS]}
runs=${2:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# The real chart archives (as tests/run's other users find them).
export FERRY_CHARTS_DIR=${FERRY_CHARTS_DIR:-$top/../shared/charts}
log=$(mktemp /tmp/install-bench.XXXXXX)
trap 'rm -f "$log" "$log".*' EXIT
for i in $(seq 1 "$runs"); do
  : >"$log.$i"
  INSTALL_TEST_LOG="$log.$i" tests/run "$build" --only integration/test_install_phases >/dev/null || true
  echo "run $i:"
  grep -E '^# (fresh install: [0-9]+ (ms|objects|TLS)|second install: [0-9]+ (ms|new|API))' "$log.$i" | sed 's/^# /  /'
done
echo "per phase (run 1): calls, wall ms, ms waiting on the API server, ms backing off"
awk '/^# fresh install, per phase/{on=1; next} on && /^#   /{print "  " substr($0, 5); next} on{exit}' "$log.1"
