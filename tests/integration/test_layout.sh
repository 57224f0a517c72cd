#!/usr/bin/env bash
# The include arrows docs/ARCHITECTURE.md allows handlers: api/ reaches
# db/, server/common/, the pure parsers of server/chart/ and the process
# context (server/app.h, log.h, metrics.h), never server/install/,
# server/kube/ or another server/ module. What only the installer knows is
# asked through struct app (app->chart_available).
set -u
src=${FERRY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
bad=$(grep -HnE '#include "server/' "$src"/api/*.c "$src"/api/*.h |
  grep -vE '"server/(common|chart)/[a-z_]+\.h"|"server/(app|log|metrics)\.h"')
if [ -z "$bad" ]; then echo "PASS: layout_api_includes"; else
  echo "FAIL: layout_api_includes: handlers include what they may not reach: $(echo "$bad" | tr '\n' ' ')"; fi
