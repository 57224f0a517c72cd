#!/usr/bin/env bash
# The suite runs on the sanitizer build, but users run the optimised one,
# and a few code paths differ between them: a render switches to its own
# large stack with swapcontext in the optimised build and uses a thread
# under ASan (chart.c, "Templates recurse"). This runs the chart engine's
# unit tests and one real render with the optimised build that `./dev test`
# makes beside the sanitizer build (FERRY_OPT_BUILD, default $FERRY_SRC/build).
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
opt=${FERRY_OPT_BUILD:-$src/build}
shared=${FERRY_SHARED:-$src/../shared}
if [ ! -x "$opt/tests/unit/test_chart" ] || [ ! -x "$opt/ferry" ]; then
  echo "SKIP: optimised_build: no optimised build with tests in $opt"
  exit 0
fi
if [ "$(cd "$opt" && pwd)" = "$(cd "${FERRY_BUILD:-/nonexistent}" 2>/dev/null && pwd)" ]; then
  echo "SKIP: optimised_build: the suite already runs on $opt"
  exit 0
fi
rc=0
out=$("$opt/tests/unit/test_chart" 2>&1)
if [ $? -eq 0 ] && ! grep -q '^FAIL: ' <<<"$out" && grep -q '^PASS: ' <<<"$out"; then
  echo "PASS: optimised_build: unit/test_chart ($(grep -c '^PASS: ' <<<"$out") tests)"
else
  echo "FAIL: optimised_build: unit/test_chart"
  grep -E '^FAIL: ' <<<"$out" | head -n 20 | sed 's/^/   | /'
  tail -n 10 <<<"$out" | sed 's/^/   | /'
  rc=1
fi
# a real chart through the ferry command: the goldens' TKE case must render
# the same documents as the sanitizer build's ferry (certificates aside)
chart=$shared/charts/cilium-1.18.3.tgz
g=$shared/goldens/tke-1.18.3
if [ -f "$chart" ] && [ -d "$g" ]; then
  args=(template "$chart" -f "$g/values.yaml" -f "$g/image-values.yaml" --namespace kube-system
        --name cilium --kube-version v1.32.2 --set hubble.enabled=false)
  a=$("$opt/ferry" "${args[@]}" 2>&1); ra=$?
  b=$("${FERRY_BUILD:-$src/build-asan}/ferry" "${args[@]}" 2>&1); rb=$?
  if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ "$a" = "$b" ] && [ "$(grep -c '^kind: ' <<<"$a")" -ge 10 ]; then
    echo "PASS: optimised_build: ferry template cilium 1.18.3 (TKE values) equals the sanitizer build's output"
  else
    echo "FAIL: optimised_build: ferry template differs or failed (exit $ra / $rb)"
    diff <(echo "$a") <(echo "$b") | head -n 20 | sed 's/^/   | /'
    rc=1
  fi
else
  echo "SKIP: optimised_build: $chart not found"
fi
exit $rc
