#!/usr/bin/env bash
# Runs the differential fuzz target of the raw-DEFLATE decoder
# (tests/fuzz/fuzz_inflater: inflater vs zlib, abort on any difference) for
# a few seconds over tests/fuzz/corpus/inflater and the shared chart
# archives (read from ../shared at run time, not copied into the
# repository). The suite's build has ASan/UBSan, so memory errors abort too.
# FUZZ_SECONDS (default 4) sets the time.
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${FERRY_BUILD:-$src/build}
secs=${FUZZ_SECONDS:-4}
bin=$build/tests/fuzz/fuzz_inflater
if [ ! -x "$bin" ]; then
  echo "SKIP: fuzz_inflater: not built ($bin)"
  exit 0
fi
shared=${FERRY_SHARED:-$src/../shared}
out=$("$bin" -t "$secs" -s 4242 "$src/tests/fuzz/corpus/inflater" "$shared/charts" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "^PASS: " <<<"$out"; then
  grep "^PASS: " <<<"$out"
else
  echo "FAIL: fuzz_inflater: exit $rc"
  tail -n 30 <<<"$out" | sed 's/^/   | /'
  exit 1
fi
