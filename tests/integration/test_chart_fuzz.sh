#!/usr/bin/env bash
# Runs the chart engine's fuzz targets for a few seconds each:
# - tests/fuzz/fuzz_chart_{template,yaml,archive} over tests/fuzz/corpus/*;
# - the differential target fuzz_yaml_fast (yamlfast vs libyaml), which
#   aborts on any difference, over its committed corpus plus real inputs
#   read from ../shared at run time (the goldens' values files; never
#   copied into the repository).
# The build is the sanitizer build in the suite, so any memory error aborts
# a target too. FUZZ_SECONDS (default 4) sets the time per target.
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${FERRY_BUILD:-$src/build}
shared=${FERRY_SHARED:-$src/../shared}
secs=${FUZZ_SECONDS:-4}
status=0

run_target() {   # run_target NAME SEED CORPUS_DIR...
  local name=$1 seed=$2 bin=$build/tests/fuzz/$1
  shift 2
  if [ ! -x "$bin" ]; then
    echo "SKIP: $name: not built ($bin)"
    return
  fi
  local out rc
  out=$("$bin" -t "$secs" -s "$seed" "$@" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && grep -q "^PASS: " <<<"$out"; then
    grep "^PASS: " <<<"$out"
  else
    echo "FAIL: $name: exit $rc"
    tail -n 30 <<<"$out" | sed 's/^/   | /'
    status=1
  fi
}

for t in template yaml archive; do
  run_target "fuzz_chart_$t" 12345 "$src/tests/fuzz/corpus/$t"
done
run_target fuzz_yaml_fast 12345 "$src/tests/fuzz/corpus/yamlfast" "$shared/goldens"
exit $status
