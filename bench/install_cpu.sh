#!/usr/bin/env bash
# bench/install_cpu.sh [BUILD_DIR] [RUNS]: ferryd CPU of one fresh TKE
# install, RUNS times (default 9); see bench/install_cpu.py. Same
# PostgreSQL set-up as bench/fleet_bench.sh. Optimised build (./dev build).
set -eu
export INSTALL_CPU_RUNS=${2:-9} FERRY_BENCH_DRIVER=install_cpu.py
exec "$(dirname "$0")/fleet_bench.sh" "${1:-$(cd "$(dirname "$0")/.." && pwd)/build}"
