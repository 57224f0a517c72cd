#!/bin/sh
# Build ferry without sanitizers (build-bench/) and run the chart engine
# benchmark; extra arguments go to bench/chart_bench.py (e.g. --update BENCHMARKS.md).
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$src/build-bench"
cd "$src/build-bench"
[ -f Makefile ] || ../configure --enable-werror >/dev/null
make -j2 ferry >/dev/null
cd "$src"
exec python3 bench/chart_bench.py --ferry "$src/build-bench/ferry" "$@"
