#!/usr/bin/env bash
# The chart engine's fuzz targets built with clang's AddressSanitizer and
# UndefinedBehaviorSanitizer and run for a few seconds each (issue 13,
# finding 8). gcc's UBSan, the one the rest of the suite uses, does not
# check everything clang's does (e.g. "applying zero offset to null
# pointer"), so a fuzzer built with clang found what the suite did not.
#
# Built from source into $FERRY_BUILD/fuzz-clang/ (again only when a source
# is newer than the last build), with the same replay/mutation driver as
# the gcc targets (tests/fuzz/fuzz_driver.c). Every clang report is fatal.
#
#   FUZZ_SECONDS=N   seconds per target (default 3)
#   FUZZ_LIBFUZZER=1 build with libFuzzer (-fsanitize=fuzzer) instead of
#                    the driver: for the longer run in docs/SECURITY.md
# Skips (SKIP lines) when clang is not installed.
set -u
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${FERRY_BUILD:-$src/build}
shared=${FERRY_SHARED:-$src/../shared}
secs=${FUZZ_SECONDS:-3}
targets="fuzz_chart_template fuzz_chart_yaml fuzz_chart_archive fuzz_yaml_fast"
cc=$(command -v clang)
if [ -z "$cc" ]; then
  for t in $targets; do echo "SKIP: clang_$t: clang is not installed (./dev deps installs it)"; done
  exit 0
fi
out=$build/fuzz-clang${FUZZ_LIBFUZZER:+-libfuzzer}
mkdir -p "$out"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
flags="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE=1 -g -O1 -Wall -Wextra -Wno-unused-parameter -Werror -I$src $(pkg-config --cflags jansson yaml-0.1 openssl zlib libdeflate)"
libs="$(pkg-config --libs jansson yaml-0.1 openssl zlib libdeflate) -lpthread -lm"
if [ -n "${FUZZ_LIBFUZZER:-}" ]; then
  san="$san -fsanitize=fuzzer"
  flags="$flags -DFUZZ_LIBFUZZER"
fi
lib_srcs="$(ls "$src"/server/chart/*.c) $src/server/common/buf.c $src/server/common/yamljson.c"

# Rebuild when any source or header is newer than the stamp.
stamp=$out/.stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$src/server/chart" "$src/server/common" "$src/tests/fuzz" "$src/tests/unit/cv_strict.h" \
      -newer "$stamp" \( -name '*.c' -o -name '*.h' \) 2>/dev/null | head -n 1)" ]; then
  rm -f "$out"/*.o "$stamp"
  pids=""
  for f in $lib_srcs "$src"/tests/fuzz/*.c; do
    o=$out/$(basename "${f%.c}").o
    $cc $flags $san -c "$f" -o "$o" 2>"$o.log" &
    pids="$pids $!"
    # two at a time: the machine is shared
    if [ "$(jobs -r | wc -l)" -ge 2 ]; then wait -n; fi
  done
  fail=0
  for p in $pids; do wait "$p" || fail=1; done
  if [ $fail -ne 0 ]; then
    for t in $targets; do echo "FAIL: clang_$t: clang could not compile the sources"; done
    cat "$out"/*.o.log | head -n 40
    exit 1
  fi
  touch "$stamp"
fi
libobjs=""
for f in $lib_srcs; do libobjs="$libobjs $out/$(basename "${f%.c}").o"; done
driver=$out/fuzz_driver.o
[ -n "${FUZZ_LIBFUZZER:-}" ] && driver=""

status=0
run_target() {   # run_target NAME SEED CORPUS...
  local name=$1 seed=$2 bin=$out/$1
  shift 2
  if ! $cc $san "$out/$name.o" $driver $libobjs $libs -o "$bin" 2>"$bin.log"; then
    echo "FAIL: clang_$name: link failed"; head -n 20 "$bin.log"; status=1; return
  fi
  local o rc
  if [ -n "${FUZZ_LIBFUZZER:-}" ]; then
    mkdir -p "$out/corpus-$name"
    o=$(ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -seed="$seed" "$out/corpus-$name" "$@" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && o="PASS: clang_$name: libFuzzer ${secs}s
$o"
  else
    o=$(ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -t "$secs" -s "$seed" "$@" 2>&1)
    rc=$?
  fi
  if [ $rc -eq 0 ] && grep -q "^PASS: " <<<"$o"; then
    grep "^PASS: " <<<"$o" | sed 's/^PASS: \(fuzz_\)/PASS: clang_\1/'
  else
    echo "FAIL: clang_$name: exit $rc"
    tail -n 30 <<<"$o" | sed 's/^/   | /'
    status=1
  fi
}
for t in template yaml archive; do
  run_target "fuzz_chart_$t" 777 "$src/tests/fuzz/corpus/$t"
done
run_target fuzz_yaml_fast 777 "$src/tests/fuzz/corpus/yamlfast" "$shared/goldens"
exit $status
