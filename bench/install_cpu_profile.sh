#!/usr/bin/env bash
# bench/install_cpu_profile.sh [BUILD_DIR] [RUNS]: bench/install_cpu.sh with
# `perf record --call-graph dwarf` attached to its ferryd, then where the
# CPU of the cached runs went, per install (bench/install_cpu_profile.py).
# Needs perf (linux-perf) and perf_event_paranoid <= 2. perf's own work
# (stack copies) inflates the bench's figures: use install_cpu.sh for those.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=$(mktemp -d /tmp/install-cpu-profile.XXXXXX)
"$src/bench/install_cpu.sh" "$build" "${2:-6}" > "$out/bench.txt" 2>&1 &
bench=$!
pid=""
for _ in $(seq 1 600); do
  pid=$(pgrep -n -f "^$build/ferryd serve" || true)
  [ -n "$pid" ] && break
  sleep 0.2
done
[ -n "$pid" ] || { echo "install_cpu_profile: ferryd did not start" >&2; exit 1; }
sleep 2   # its threads are running
perf record -F 2000 --call-graph dwarf,16384 -p "$pid" -o "$out/perf.data" >/dev/null 2>&1 &
perf_pid=$!
wait $bench || true
wait $perf_pid || true   # perf ends with ferryd
grep '^run' "$out/bench.txt"
perf script -i "$out/perf.data" -F comm,tid,time,ip,sym,dso 2>/dev/null > "$out/perf.txt"
python3 "$src/bench/install_cpu_profile.py" "$out/perf.txt"
echo "(perf data and bench output in $out)"
