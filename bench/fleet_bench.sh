#!/usr/bin/env bash
# bench/fleet_bench.sh [BUILD_DIR] [CLUSTERS] [MAX_IN_FLIGHT]: a fleet
# campaign at scale (issue 11). CLUSTERS (default 1000) kubesim tke-fresh
# clusters get cilium 1.18.2 by one install campaign, then one upgrade
# campaign to 1.18.3 with MAX_IN_FLIGHT (default 100) runs and is measured:
# wall time against the ideal ceil(CLUSTERS/MAX_IN_FLIGHT) x the median
# upgrade job's duration in the same run, ferryd's peak RSS (VmHWM), the
# most PostgreSQL connections seen, Kubernetes API calls per cluster.
# Starts its own PostgreSQL (like tests/run) unless FERRY_TEST_PG_ADMIN_URL
# is set. Use an optimised, unsanitised build (./dev build -> build/).
set -eu
. "$(dirname "$0")/lib.sh"
bench_env "${1:-}"
export FLEET_BENCH_CLUSTERS=${2:-1000} FLEET_BENCH_MIF=${3:-100}
bench_postgres fleet-bench "-c fsync=off -c synchronous_commit=off"
# bench/install_cpu.sh reuses this set-up with its own driver.
python3 "$src/bench/${FERRY_BENCH_DRIVER:-fleet_bench.py}"
