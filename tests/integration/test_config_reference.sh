#!/usr/bin/env bash
# docs/OPERATIONS.md's configuration reference names every setting: each
# FERRY_* variable the programs read (a quoted "FERRY_…" in server/, api/,
# db/) and each flag ferryd's option parser takes (a quoted "--…" in
# server/ferryd.c). A module that adds a setting adds its row there.
set -u
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
doc=$src/docs/OPERATIONS.md
missing=""
for v in $(grep -rohE '"FERRY_[A-Z0-9_]+"' "$src/server" "$src/api" "$src/db" --include='*.c' | tr -d '"' | sort -u); do
  grep -q "\`$v" "$doc" || missing="$missing $v"
done
if [ -z "$missing" ]; then echo "PASS: config_reference_env"; else
  echo "FAIL: config_reference_env: not in docs/OPERATIONS.md:$missing"; fi
missing=""
for f in $(grep -oE '"--[a-z][a-z-]*"' "$src/server/ferryd.c" | tr -d '"' | sort -u); do
  grep -q -- "\`$f" "$doc" || missing="$missing $f"
done
if [ -z "$missing" ]; then echo "PASS: config_reference_flags"; else
  echo "FAIL: config_reference_flags: ferryd flags not in docs/OPERATIONS.md:$missing"; fi
