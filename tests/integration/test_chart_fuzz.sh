#!/usr/bin/env bash
# Runs the chart engine's fuzz targets (tests/fuzz/fuzz_chart_*) for a few
# seconds each over their corpus (tests/fuzz/corpus/*). The build is the
# sanitizer build in the suite, so any memory error aborts the target.
# FUZZ_SECONDS (default 4) sets the time per target.
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${FERRY_BUILD:-$src/build}
secs=${FUZZ_SECONDS:-4}
status=0
for t in template yaml archive; do
  bin=$build/tests/fuzz/fuzz_chart_$t
  if [ ! -x "$bin" ]; then
    echo "SKIP: fuzz_chart_$t: not built ($bin)"
    continue
  fi
  out=$("$bin" -t "$secs" -s 12345 "$src/tests/fuzz/corpus/$t" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && grep -q "^PASS: " <<<"$out"; then
    grep "^PASS: " <<<"$out"
  else
    echo "FAIL: fuzz_chart_$t: exit $rc"
    tail -n 30 <<<"$out" | sed 's/^/   | /'
    status=1
  fi
done
exit $status
