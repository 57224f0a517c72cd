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
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
export FLEET_BENCH_CLUSTERS=${2:-1000} FLEET_BENCH_MIF=${3:-100}
export FERRY_SRC=$src FERRY_BUILD=$build
export FERRY_SHARED=${FERRY_SHARED:-$(cd "$src/.." && pwd)/shared}
export PATH=$build:$build/tests/kubesim:$PATH
pgdir=""
cleanup() {
  if [ -n "$pgdir" ]; then
    $pg_as "$pg_bin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
}
trap cleanup EXIT
pg_as=""
if [ -z "${FERRY_TEST_PG_ADMIN_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pgdir=$(mktemp -d /tmp/fleet-bench-pg.XXXXXX)
  chmod 755 "$pgdir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$pgdir"
    pg_as="runuser -u postgres --"
  fi
  $pg_as "$pg_bin/initdb" -D "$pgdir/data" -U postgres -A trust >/dev/null
  $pg_as "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -o \
    "-c listen_addresses='' -c unix_socket_directories=$pgdir -c max_connections=300 -c fsync=off -c synchronous_commit=off" \
    start >/dev/null
  "$pg_bin/createdb" -h "$pgdir" -U postgres ferry_bench
  export FERRY_TEST_DATABASE_URL="postgresql:///ferry_bench?host=$pgdir&user=postgres"
  export FERRY_TEST_PG_ADMIN_URL="postgresql:///postgres?host=$pgdir&user=postgres"
fi
# bench/install_cpu.sh reuses this set-up with its own driver.
python3 "$src/bench/${FERRY_BENCH_DRIVER:-fleet_bench.py}"
