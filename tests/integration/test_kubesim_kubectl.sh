#!/usr/bin/env bash
# test_kubesim_kubectl.sh: kubectl as an independent client of kubesim.
# Starts kubesim (tke-with-nodes), points kubectl at the kubeconfig kubesim
# wrote (server URL with a /clusters/<name> path), and checks get, apply
# --server-side of a multi-document manifest, patch (json, merge, strategic),
# rollout status, delete, SSA conflicts, and RBAC-style 403s.
set -u
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubesim_kubectl: kubectl is not installed"
  exit 0
fi
build=${FERRY_BUILD:-$(pwd)}
bin=${KUBESIM:-$build/tests/kubesim/kubesim}
if [ ! -x "$bin" ]; then bin=$(command -v kubesim || true); fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "FAIL: kubesim_kubectl: kubesim binary not found (build tests/kubesim/kubesim)"
  exit 1
fi
dir=$(mktemp -d /tmp/kubesim-kubectl.XXXXXX)
"$bin" --dir "$dir" --cluster w=tke-with-nodes --ready-delay-ms 100 --tick-ms 20 --quiet --exit-with-parent 2>"$dir/kubesim.log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  [ -f "$dir/kubesim.json" ] && break
  sleep 0.05
done
if [ ! -f "$dir/kubesim.json" ]; then
  echo "FAIL: kubesim_kubectl_start: kubesim.json never appeared"; cat "$dir/kubesim.log"; exit 1
fi
export KUBECONFIG=$dir/w/kubeconfig
k() { kubectl --cache-dir "$dir/kcache" --request-timeout=20s "$@"; }

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
expect() {  # expect NAME PATTERN OUTPUT
  if printf '%s' "$3" | grep -qE -- "$2"; then pass "$1"; else fail "$1" "wanted /$2/, got: $(printf '%s' "$3" | head -c 400)"; fi
}

out=$(k get nodes 2>&1); expect kubectl_get_nodes '10\.0\.0\.11 +Ready +<none> +[0-9]+s +v1\.32\.2-tke\.1' "$out"
n=$(k get nodes -o name 2>&1 | wc -l); expect kubectl_get_nodes_count '^3$' "$n"
out=$(k get ds -n kube-system 2>&1); expect kubectl_get_ds 'tke-eni-agent +3 +[0-3] +[0-3] +[0-3] +[0-3] +<none>' "$out"
out=$(k --context w-cert get ns kube-system -o jsonpath='{.status.phase}' 2>&1); expect kubectl_client_cert 'Active' "$out"

cat >"$dir/m.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: cilium-config, namespace: kube-system}
data: {routing-mode: native}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: cilium, namespace: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: cilium, namespace: kube-system, labels: {app.kubernetes.io/part-of: cilium}}
spec:
  selector: {matchLabels: {k8s-app: cilium}}
  template:
    metadata: {labels: {k8s-app: cilium, app.kubernetes.io/part-of: cilium}}
    spec:
      serviceAccountName: cilium
      containers: [{name: cilium-agent, image: "quay.io/cilium/cilium:v1.18.3"}]
EOF
out=$(k apply --server-side --field-manager=ferry -f "$dir/m.yaml" 2>&1)
expect kubectl_apply_server_side 'daemonset.apps/cilium serverside-applied' "$out"
out=$(k rollout status ds/cilium -n kube-system --timeout=30s 2>&1)
expect kubectl_rollout_status 'successfully rolled out' "$out"
out=$(k get pods -n kube-system -l app.kubernetes.io/part-of=cilium -o name 2>&1 | wc -l)
expect kubectl_pods_by_label '^3$' "$out"

out=$(k patch ds cilium -n kube-system --type json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"quay.io/cilium/cilium:v1.18.4"}]' 2>&1)
expect kubectl_patch_json 'patched' "$out"
out=$(k rollout status ds/cilium -n kube-system --timeout=30s 2>&1)
expect kubectl_rollout_after_update 'successfully rolled out' "$out"
out=$(k get pods -n kube-system -l k8s-app=cilium -o jsonpath='{.items[*].spec.containers[0].image}' 2>&1)
expect kubectl_pods_rolled 'v1\.18\.4' "$out"
out=$(k patch ds cilium -n kube-system --type strategic -p '{"spec":{"template":{"spec":{"containers":[{"name":"cilium-agent","env":[{"name":"A","value":"1"}]}]}}}}' 2>&1)
expect kubectl_patch_strategic 'patched' "$out"
out=$(k get ds cilium -n kube-system -o jsonpath='{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[0].name}' 2>&1)
expect kubectl_patch_strategic_merged 'v1\.18\.4 A' "$out"
out=$(k patch ds kube-proxy -n kube-system --type merge -p '{"spec":{"template":{"spec":{"nodeSelector":{"label-not-exist":"node-not-exist"}}}}}' 2>&1)
expect kubectl_patch_merge 'patched' "$out"
out=$(k rollout status ds/kube-proxy -n kube-system --timeout=30s 2>&1)
expect kubectl_rollout_nodeselector 'successfully rolled out' "$out"
for _ in $(seq 1 100); do
  n=$(k get pods -n kube-system -l k8s-app=kube-proxy -o name 2>/dev/null | wc -l); [ "$n" = 0 ] && break; sleep 0.05
done
expect kubectl_nodeselector_removes_pods '^0$' "$n"

# SSA conflict: another manager changed a field ferry applied
k patch cm cilium-config -n kube-system --type merge -p '{"data":{"routing-mode":"tunnel"}}' >/dev/null 2>&1
out=$(k apply --server-side --field-manager=ferry -f "$dir/m.yaml" 2>&1)
expect kubectl_apply_conflict 'conflict with "kubectl-patch"' "$out"
out=$(k apply --server-side --field-manager=ferry --force-conflicts -f "$dir/m.yaml" 2>&1)
expect kubectl_apply_force 'configmap/cilium-config serverside-applied' "$out"

out=$(k --token "$(cat "$dir/w/token-viewer")" delete ds cilium -n kube-system 2>&1)
expect kubectl_forbidden 'User "viewer" cannot delete resource "daemonsets"' "$out"
out=$(k --token wrong get ns 2>&1)
expect kubectl_unauthorized 'Unauthorized|must be logged in' "$out"

cat >"$dir/d.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: op, namespace: kube-system}
spec:
  replicas: 2
  selector: {matchLabels: {app: op}}
  template:
    metadata: {labels: {app: op}}
    spec:
      containers: [{name: operator-generic, image: "quay.io/cilium/operator-generic:v1.18.3"}]
EOF
out=$(k apply --server-side -f "$dir/d.yaml" 2>&1)
expect kubectl_apply_deployment 'deployment.apps/op serverside-applied' "$out"
out=$(k rollout status deployment/op -n kube-system --timeout=30s 2>&1)
expect kubectl_rollout_deployment 'successfully rolled out' "$out"
out=$(k set image deployment/op -n kube-system operator-generic=quay.io/cilium/operator-generic:v1.18.4 2>&1)
expect kubectl_set_image 'image updated' "$out"
out=$(k rollout status deployment/op -n kube-system --timeout=30s 2>&1)
expect kubectl_rollout_deployment_update 'successfully rolled out' "$out"
for _ in $(seq 1 100); do
  out=$(k get pods -n kube-system -l app=op -o jsonpath='{.items[*].spec.containers[0].image}' 2>&1)
  case "$out" in *v1.18.3*) sleep 0.05 ;; *) break ;; esac
done
expect kubectl_deployment_pods_updated '^quay.io/cilium/operator-generic:v1.18.4 quay.io/cilium/operator-generic:v1.18.4$' "$out"

out=$(k delete ds cilium -n kube-system 2>&1)
expect kubectl_delete 'daemonset.apps "cilium" deleted' "$out"
for _ in $(seq 1 100); do
  n=$(k get pods -n kube-system -l k8s-app=cilium -o name 2>/dev/null | wc -l); [ "$n" = 0 ] && break; sleep 0.05
done
expect kubectl_delete_removes_pods '^0$' "$n"

kill "$pid"
wait "$pid"; rc=$?
if [ "$rc" = 0 ]; then pass kubesim_sigterm_clean_exit; else fail kubesim_sigterm_clean_exit "exit status $rc: $(tail -5 "$dir/kubesim.log")"; fi
if grep -q "ERROR: AddressSanitizer\|runtime error" "$dir/kubesim.log"; then
  fail kubesim_sanitizers "$(grep -m3 'ERROR\|runtime error' "$dir/kubesim.log")"
fi
