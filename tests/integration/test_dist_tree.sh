#!/usr/bin/env bash
# The release tree (`make distdir`, what `make dist` packs) holds exactly the
# project's files: every file git tracks (but .gitignore/.gitkeep), plus the
# generated autotools files, and nothing from the build tree (objects, test
# binaries, .deps). A file missing from EXTRA_DIST breaks `make distcheck`
# (about 5 min; .ci/run runs it, not this suite); this check takes seconds.
set -u
build=${FERRY_BUILD:?run via tests/run}
src=${FERRY_SRC:?run via tests/run}
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  echo "SKIP: dist_tree_matches_git: $src is not a git checkout (a release tree)"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-distdir.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
d=$tmp/ferry
if ! make -s -C "$build" distdir distdir="$d" top_distdir="$d" >"$tmp/log" 2>&1; then
  echo "FAIL: dist_tree_matches_git: make distdir failed: $(tail -n 5 "$tmp/log" | tr '\n' ' ')"
  exit 1
fi
(cd "$d" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$tmp/have"
git -C "$src" ls-files | grep -Ev '(^|/)\.git(ignore|keep|attributes)$' | LC_ALL=C sort >"$tmp/want"
missing=$(LC_ALL=C comm -23 "$tmp/want" "$tmp/have")
extra=$(LC_ALL=C comm -13 "$tmp/want" "$tmp/have" |
  grep -Ev '^(Makefile\.in|aclocal\.m4|configure|build-aux/[a-z-]+)$')
if [ -n "$missing" ]; then
  echo "FAIL: dist_tree_matches_git: tracked files missing from the release tree (add them to EXTRA_DIST): $(echo $missing)"
else
  echo "PASS: dist_tree_matches_git"
fi
if [ -n "$extra" ]; then
  echo "FAIL: dist_tree_has_no_build_output: not from the source tree: $(echo "$extra" | head -n 20 | tr '\n' ' ')"
else
  echo "PASS: dist_tree_has_no_build_output"
fi
# the unit is generated at build time, the template ships
if [ -f "$d/packaging/ferryd.service.in" ] && [ ! -e "$d/packaging/ferryd.service" ]; then
  echo "PASS: dist_tree_unit_template"
else
  echo "FAIL: dist_tree_unit_template: packaging/ferryd.service.in must ship, ferryd.service must not"
fi
