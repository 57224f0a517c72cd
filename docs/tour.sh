#!/usr/bin/env bash
# The API tour of README.md, runnable as it stands against the demo that
# `./dev run` starts (tests/integration/test_readme_tour.py runs it and checks
# that README.md shows these lines unchanged):
#
#   T=fy_... docs/tour.sh      # T: the operator token ./dev run printed
#
# FERRY_URL (default http://localhost:8080) and FERRY_DATA_DIR (default var,
# where ./dev run keeps the demo's files) say where the demo runs.
set -eu
: "${T:?set T to the operator token ./dev run printed}"
# --- tour ---
F=${FERRY_URL:-http://localhost:8080}      # where ./dev run listens
KC=${FERRY_DATA_DIR:-var}/kubesim/tke-demo/kubeconfig   # the demo's simulated cluster
api() { curl -sS --fail-with-body -H "Authorization: Bearer $T" "$@"; echo; }
json() { api -H 'Content-Type: application/json' "$@"; }

api $F/v1/me
# register a cluster from a kubeconfig (exec plugins and insecure TLS are refused)
CLUSTER=$(json $F/v1/clusters -d "$(jq -n --rawfile k "$KC" \
    '{name:"prod-1", profile:"tke", labels:{env:"prod"}, kubeconfig:$k}')" | jq -r .id)
api "$F/v1/clusters?selector=env=prod"
# every job kind and its parameters (descriptions and defaults: the full schema)
api $F/v1/job-kinds | jq -r '.items[] | "\(.kind): \(.params_schema.properties | keys | join(" "))"'
# install Cilium 1.18.3; the Idempotency-Key makes a retried POST safe
JOB=$(json -H 'Idempotency-Key: deploy-42' $F/v1/clusters/$CLUSTER/jobs \
    -d '{"kind":"install","params":{"chart_version":"1.18.3","image_mirror":true}}' | jq -r .id)
until api $F/v1/jobs/$JOB | jq -e '.state | IN("succeeded", "failed", "cancelled")' >/dev/null; do sleep 1; done
api $F/v1/jobs/$JOB | jq '{state, phases: [.phases[] | {name, state, message}]}'  # phases, timings, API calls
api "$F/v1/jobs/$JOB/events" | jq -r '.items[].message'                              # the job log
# a typo in a parameter is refused before anything runs (422 naming the field)
json $F/v1/clusters/$CLUSTER/jobs -d '{"kind":"install","params":{"chart_verison":"1.12.0"}}' || true
# upload a chart archive (the offline route: helm pull, copy, install from the file)
api -H 'Content-Type: application/gzip' --data-binary @../shared/charts/cilium-1.18.3.tgz $F/v1/charts
# a running job stops at its next phase boundary with: api -X POST $F/v1/jobs/$JOB/cancel
# --- end ---
