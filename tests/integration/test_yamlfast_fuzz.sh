#!/usr/bin/env bash
# Runs the differential fuzz target of the fast YAML reader
# (tests/fuzz/fuzz_yaml_fast: yamlfast vs libyaml, abort on any difference)
# for a few seconds over tests/fuzz/corpus/yamlfast. The suite's build has
# ASan/UBSan, so memory errors abort too. FUZZ_SECONDS (default 4) sets the
# time.
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${FERRY_BUILD:-$src/build}
secs=${FUZZ_SECONDS:-4}
bin=$build/tests/fuzz/fuzz_yaml_fast
if [ ! -x "$bin" ]; then
  echo "SKIP: fuzz_yaml_fast: not built ($bin)"
  exit 0
fi
# seeds: the committed corpus plus the shared goldens' values files (real
# chart inputs are read from ../shared, not copied into the repository)
shared=${FERRY_SHARED:-$src/../shared}
out=$("$bin" -t "$secs" -s 12345 "$src/tests/fuzz/corpus/yamlfast" "$shared/goldens" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "^PASS: " <<<"$out"; then
  grep "^PASS: " <<<"$out"
else
  echo "FAIL: fuzz_yaml_fast: exit $rc"
  tail -n 30 <<<"$out" | sed 's/^/   | /'
  exit 1
fi
