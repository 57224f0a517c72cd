#!/usr/bin/env bash
# bench/kubesim_bench.sh [KUBESIM_BINARY]: kubesim throughput and memory.
# - start-up time and resident memory with 1,000 tke-fresh clusters
#   (after the controller's first pass; VmRSS and VmHWM from /proc)
# - requests/second for GET (one keep-alive connection) and for server-side
#   apply (PATCH application/apply-patch+yaml) with kubesim pinned to one
#   core (taskset -c 0) and the client (curl URL globbing, one connection,
#   sequential) on another.
# Use an optimised, unsanitised build for numbers (e.g. configure CFLAGS=-O2).
set -eu
bin=${1:-${KUBESIM:-./tests/kubesim/kubesim}}
n_get=${N_GET:-20000}
n_apply=${N_APPLY:-5000}
dir=$(mktemp -d /tmp/kubesim-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
wait_json() { for _ in $(seq 1 2000); do [ -f "$1/kubesim.json" ] && return 0; sleep 0.005; done; return 1; }

# ---- 1,000 clusters: start-up and memory
t0=$(date +%s.%N)
taskset -c 0 "$bin" --dir "$dir/big" --clusters 1000 --scenario tke-fresh --quiet &
pid=$!
wait_json "$dir/big"
t1=$(date +%s.%N)
sleep 2   # let the controller create every cluster's pending coredns pods
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
kill $pid; wait $pid || true; pid=
printf 'startup_1000_clusters_s %.3f\n' "$(echo "$t1 - $t0" | bc -l)"
printf 'rss_1000_clusters_mb %.1f\nhwm_1000_clusters_mb %.1f\n' "$(echo "$rss/1024" | bc -l)" "$(echo "$hwm/1024" | bc -l)"

# start-up again with DIR on tmpfs: the 6,000 small files dominate on overlayfs
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm=$(mktemp -d /dev/shm/kubesim-bench.XXXXXX)
  t0=$(date +%s.%N)
  taskset -c 0 "$bin" --dir "$shm" --clusters 1000 --scenario tke-fresh --quiet &
  pid=$!
  wait_json "$shm"
  t1=$(date +%s.%N)
  kill $pid; wait $pid || true; pid=
  rm -rf "$shm"
  printf 'startup_1000_clusters_tmpfs_s %.3f\n' "$(echo "$t1 - $t0" | bc -l)"
fi
t0=$(date +%s.%N)
taskset -c 0 "$bin" --dir "$dir/single" --clusters 1 --quiet &
pid=$!
wait_json "$dir/single"
t1=$(date +%s.%N)
kill $pid; wait $pid || true; pid=
printf 'startup_1_cluster_s %.3f\n' "$(echo "$t1 - $t0" | bc -l)"

# ---- throughput on one core
taskset -c 0 "$bin" --dir "$dir/one" --clusters 1 --quiet &
pid=$!
wait_json "$dir/one"
port=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['port'])" "$dir/one/kubesim.json")
tok=$(cat "$dir/one/c1/token")
base="https://127.0.0.1:$port/clusters/c1"
cpu=1; [ "$(nproc)" -lt 2 ] && cpu=0
s=$(date +%s.%N)
taskset -c $cpu curl -s -o /dev/null --cacert "$dir/one/ca.crt" -H "Authorization: Bearer $tok" \
  "$base/apis/apps/v1/namespaces/kube-system/daemonsets/tke-eni-agent?n=[1-$n_get]"
e=$(date +%s.%N)
printf 'get_rps %.0f\n' "$(echo "$n_get / ($e - $s)" | bc -l)"
cat >"$dir/apply.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: cilium, namespace: kube-system, labels: {app.kubernetes.io/part-of: cilium}}
spec:
  selector: {matchLabels: {k8s-app: cilium}}
  template:
    metadata: {labels: {k8s-app: cilium, app.kubernetes.io/part-of: cilium}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
      - name: cilium-agent
        image: quay.io/cilium/cilium:v1.18.3
        env: [{name: K8S_NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}, {name: CILIUM_K8S_NAMESPACE, value: kube-system}]
        volumeMounts: [{name: bpf, mountPath: /sys/fs/bpf}, {name: run, mountPath: /var/run/cilium}]
      volumes: [{name: bpf, hostPath: {path: /sys/fs/bpf}}, {name: run, hostPath: {path: /var/run/cilium}}]
YAML
s=$(date +%s.%N)
taskset -c $cpu curl -s -o /dev/null --cacert "$dir/one/ca.crt" -H "Authorization: Bearer $tok" \
  -X PATCH -H "Content-Type: application/apply-patch+yaml" --data-binary @"$dir/apply.yaml" \
  "$base/apis/apps/v1/namespaces/kube-system/daemonsets/cilium?fieldManager=bench&n=[1-$n_apply]"
e=$(date +%s.%N)
printf 'ssa_rps %.0f\n' "$(echo "$n_apply / ($e - $s)" | bc -l)"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/one/ca.crt" -H "Authorization: Bearer $tok" "$base/apis/apps/v1/namespaces/kube-system/daemonsets/cilium")
[ "$code" = 200 ] || { echo "apply did not create the DaemonSet ($code)" >&2; exit 1; }
