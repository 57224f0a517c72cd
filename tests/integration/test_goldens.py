#!/usr/bin/env python3
"""Golden comparisons for the chart engine (`ferry template`).

For each case in $FERRY_SHARED/goldens/ (chart, values files and flags from
its README table) and each extra case below, render with `ferry template
-o json` and require the same set of objects as the reference, keyed by
apiVersion/kind/namespace/name, each equal after parsing. Certificate
material (random on every render) is compared by structure: same keys, each
value a base64 PEM of the right type.

Extra cases compare against helmref (shared/tools/helmref) when it is built
(HELMREF env, $FERRY_SHARED/tools/helmref/helmref or /tmp/helmref/helmref),
also byte for byte on the YAML text; otherwise against the JSON committed
under tests/data/goldens/NAME.json.gz (made by helmref; regenerate with
tests/data/goldens/regen.sh). Error cases must fail with Helm's message.
Prints PASS:/FAIL:/SKIP: lines. Standard library only.
"""
import base64, gzip, json, os, re, shutil, subprocess, sys, tempfile

SRC = os.environ.get("FERRY_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("FERRY_BUILD", os.path.join(SRC, "build"))
SHARED = os.environ.get("FERRY_SHARED", os.path.abspath(os.path.join(SRC, "..", "shared")))
FERRY = shutil.which("ferry", path=BUILD + os.pathsep + os.environ.get("PATH", "")) or os.path.join(BUILD, "ferry")
CHARTS = os.path.join(SHARED, "charts")
DATA = os.path.join(SRC, "tests", "data", "goldens")

# name -> (chart, values files relative to the goldens dir or tests/data, flags)
GOLDEN_FLAGS = {
    "tke-1.18.3": ("cilium-1.18.3.tgz", ["values.yaml", "image-values.yaml"],
                   ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.32.2"]),
    "k3s-1.15.1": ("cilium-1.15.1.tgz", ["values.yaml"],
                   ["--namespace", "cilium", "--name", "cilium", "--kube-version", "v1.28.6+k3s1"]),
    "default-1.18.3": ("cilium-1.18.3.tgz", ["values.yaml"],
                       ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.32.2"]),
}

TKE = os.path.join(SHARED, "goldens", "tke-1.18.3")
K3S = os.path.join(SHARED, "goldens", "k3s-1.15.1")
# extra cases rendered by helmref: name -> (chart, values files (absolute), flags)
EXTRA = {
    "defaults-1.12.0": ("cilium-1.12.0.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]),
    "defaults-1.15.1": ("cilium-1.15.1.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]),
    "defaults-1.18.2": ("cilium-1.18.2.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]),
    "defaults-1.18.3": ("cilium-1.18.3.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]),
    "tke-1.18.2": ("cilium-1.18.2.tgz", [os.path.join(TKE, "values.yaml"), os.path.join(TKE, "image-values.yaml")],
                   ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.30.0-tke.5"]),
    "tke-1.12.0": ("cilium-1.12.0.tgz", [os.path.join(TKE, "values.yaml"), os.path.join(TKE, "image-values.yaml")],
                   ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.24.4-tke.5"]),
    "tke-1.15.1": ("cilium-1.15.1.tgz", [os.path.join(TKE, "values.yaml"), os.path.join(TKE, "image-values.yaml")],
                   ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.28.3"]),
    "k3s-1.18.3": ("cilium-1.18.3.tgz", [os.path.join(K3S, "values.yaml")],
                   ["--namespace", "cilium", "--name", "cilium", "--kube-version", "v1.28.6+k3s1"]),
    "sets-1.18.3": ("cilium-1.18.3.tgz", [os.path.join(TKE, "values.yaml")],
                    ["--namespace", "kube-system", "--name", "cilium",
                     "--set", "hubble.enabled=false,operator.replicas=1",
                     "--set", "ipam.operator.clusterPoolIPv4PodCIDRList={10.0.0.0/8,172.16.0.0/12}",
                     "--set", "operator.tolerations[0].key=a\\.b,operator.tolerations[0].operator=Exists",
                     "--set-string", "k8sServicePort=6443",
                     "--set", "hubble.relay.enabled=true,hubble.ui.enabled=true,hubble.enabled=true",
                     "--set", "clustermesh.useAPIServer=true,ingressController.enabled=true,envoy.enabled=true"]),
    # the seeds' value sets (shared/seeds), as --set flags
    "seed000-1.18.3": ("cilium-1.18.3.tgz", [], ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.30.0-tke.5"]
                       + sum([["--set", s] for s in [
                           "image.repository=quay.tencentcloudcr.com/cilium/cilium",
                           "envoy.image.repository=quay.tencentcloudcr.com/cilium/cilium-envoy",
                           "operator.image.repository=quay.tencentcloudcr.com/cilium/operator",
                           "certgen.image.repository=quay.tencentcloudcr.com/cilium/certgen",
                           "hubble.relay.image.repository=quay.tencentcloudcr.com/cilium/hubble-relay",
                           "hubble.ui.backend.image.repository=quay.tencentcloudcr.com/cilium/hubble-ui-backend",
                           "hubble.ui.frontend.image.repository=quay.tencentcloudcr.com/cilium/hubble-ui",
                           "nodeinit.image.repository=quay.tencentcloudcr.com/cilium/startup-script",
                           "preflight.image.repository=quay.tencentcloudcr.com/cilium/cilium",
                           "preflight.envoy.image.repository=quay.tencentcloudcr.com/cilium/cilium-envoy",
                           "clustermesh.apiserver.image.repository=quay.tencentcloudcr.com/cilium/clustermesh-apiserver",
                           "authentication.mutual.spire.install.agent.image.repository=docker.io/k8smirror/spire-agent",
                           "authentication.mutual.spire.install.server.image.repository=docker.io/k8smirror/spire-server",
                           "operator.tolerations[0].key=node-role.kubernetes.io/control-plane,operator.tolerations[0].operator=Exists",
                           "operator.tolerations[1].key=node-role.kubernetes.io/master,operator.tolerations[1].operator=Exists",
                           "operator.tolerations[2].key=node.kubernetes.io/not-ready,operator.tolerations[2].operator=Exists",
                           "operator.tolerations[3].key=node.cloudprovider.kubernetes.io/uninitialized,operator.tolerations[3].operator=Exists",
                           "operator.tolerations[4].key=tke.cloud.tencent.com/uninitialized,operator.tolerations[4].operator=Exists",
                           "operator.tolerations[5].key=tke.cloud.tencent.com/eni-ip-unavailable,operator.tolerations[5].operator=Exists",
                           "routingMode=native", "endpointRoutes.enabled=true", "ipam.mode=delegated-plugin",
                           "enableIPv4Masquerade=false", "devices=eth+", "cni.chainingMode=generic-veth",
                           "cni.customConf=true", "cni.configMap=cni-config", "cni.externalRouting=true",
                           "extraConfig.local-router-ipv4=169.254.32.16", "localRedirectPolicies.enabled=true",
                           "kubeProxyReplacement=true", "k8sServiceHost=169.254.128.112", "k8sServicePort=60002"]], [])),
    "seed001-1.18.2": ("cilium-1.18.2.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]
                       + sum([["--set", s] for s in [
                           "routingMode=native", "endpointRoutes.enabled=true", "enableIPv4Masquerade=false",
                           "cni.chainingMode=generic-veth", "cni.chainingTarget=multus-cni", "ipamd.mode=delegated-plugin",
                           "kubeProxyReplacement=true", "k8sServiceHost=10.0.0.5", "k8sServicePort=60002",
                           "extraConfig.local-router-ipv4=169.254.32.16"]], [])),
    "seed002-1.12.0": ("cilium-1.12.0.tgz", [], ["--namespace", "kube-system", "--name", "cilium"]
                       + sum([["--set", s] for s in [
                           "kubeProxyReplacement=strict", "k8sServiceHost=192.168.1.10", "k8sservicePort=6443",
                           "ipam.Operator.clusterPoolIPv4PodCIDRList=10.244.0.0/16", "enable-bpf-masquerade=true",
                           "ipam.Operator.ClusterPoolIPv4MaskSize=24", "devices=ens192", "hubble.Relay.Enabled=true",
                           "hubble.Ui.Enabled=true", "prometheus.Enabled=true", "operator.Prometheus.Enabled=true",
                           "hubble.Enabled=true", "hubble.Metrics.Enabled={dns, drop, tcp, flow, port-distribution, icmp, http}",
                           "image.UseDigest=false", "operator.image.useDigest=false",
                           "operator.Image.Repository=harbor.io/k8s/cilium/operator", "image.Repository=harbor.io/k8s/cilium/cilium",
                           "hubble.Relay.Image.Repository=harbor.io/k8s/cilium/hubble-relay",
                           "hubble.ui.Backend.Image.Repository=harbor.io/k8s/cilium/hubble-ui-backend",
                           "hubble.Ui.Backend.Image.Tag=v0.9.0", "hubble.ui.Frontend.Image.Repository=harbor.io/k8s/cilium/hubble-ui",
                           "hubble.ui.Frontend.Image.Tag=v0.9.0"]], [])),
    "seed004-1.15.1": ("cilium-1.15.1.tgz", [], ["--namespace", "kube-system", "--name", "cilium", "--kube-version", "v1.28.6+k3s1"]
                       + sum([["--set", s] for s in [
                           "operator.replicas=1", "ipam.mode=cluster-pool", "ipam.operator.clusterPoolIPv4PodCIDRList=10.0.0.0/16",
                           "routingMode=native", "autoDirectNodeRoutes=true", "ipv4NativeRoutingCIDR=10.0.0.0/16",
                           "bpf.masquerade=true", "kubeProxyReplacement=true", "loadBalancer.mode=dsr",
                           "loadBalancer.acceleration=native", "hubble.relay.enabled=true", "hubble.ui.enabled=true",
                           "installNoConntrackIptablesRules=true", "l2announcements.enabled=true"]], [])),
}

# cases where Helm itself fails: name -> (chart, files, flags, substring of the error)
ERRORS = {
    "k3s-1.12.0-error": ("cilium-1.12.0.tgz", [os.path.join(K3S, "values.yaml")],
                         ["--namespace", "cilium", "--name", "cilium"],
                         'cilium/templates/cilium-configmap.yaml:572:7: executing "cilium/templates/cilium-configmap.yaml" '
                         'at <ne $kubeProxyReplacement "disabled">: error calling ne: incompatible types for comparison'),
    "schema-1.18.3-error": ("cilium-1.18.3.tgz", [], ["--namespace", "kube-system", "--set", "hubble.enabled=yes"],
                            "- hubble.enabled: Invalid type. Expected: boolean, given: string"),
    "fail-1.18.3-error": ("cilium-1.18.3.tgz", [], ["--namespace", "kube-system",
                                                    "--set", "hubble.ui.enabled=true,hubble.relay.enabled=false"],
                          "execution error at (cilium/templates/validate.yaml:61:7): "
                          "Hubble UI requires .Values.hubble.relay.enabled=true"),
}

PEM_TYPES = {"ca.crt": "CERTIFICATE", "tls.crt": "CERTIFICATE", "tls.key": "RSA PRIVATE KEY",
             "ca.key": "RSA PRIVATE KEY"}


def helmref_bin():
    for p in [os.environ.get("HELMREF", ""), os.path.join(SHARED, "tools", "helmref", "helmref"), "/tmp/helmref/helmref"]:
        if p and os.access(p, os.X_OK):
            return p
    return None


def key(o):
    md = o.get("metadata") or {}
    return (o.get("apiVersion"), o.get("kind"), md.get("namespace"), md.get("name"))


def is_cert_secret(o):
    if o.get("kind") != "Secret":
        return False
    data = o.get("data") or {}
    return any(k in data for k in ("tls.crt", "ca.crt")) and any(
        isinstance(v, str) and v.startswith("LS0tLS1CRUdJTi") for v in data.values())


def pem_type(v):
    try:
        t = base64.b64decode(v).decode()
    except Exception:
        return None
    m = re.match(r"-----BEGIN ([A-Z ]+)-----\n", t)
    return m.group(1) if m and t.rstrip().endswith("-----END %s-----" % m.group(1)) else None


def norm_num(x):
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        return {k: norm_num(v) for k, v in x.items()}
    if isinstance(x, list):
        return [norm_num(v) for v in x]
    return x


def diff(a, b, path=""):
    """first difference between two parsed values, or None"""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                return "%s/%s: missing" % (path, k)
            if k not in b:
                return "%s/%s: unexpected" % (path, k)
            d = diff(a[k], b[k], path + "/" + k)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: list length %d != %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if a != b:
        sa, sb = str(a), str(b)
        if isinstance(a, str) and isinstance(b, str):
            i = next((i for i in range(min(len(sa), len(sb))) if sa[i] != sb[i]), min(len(sa), len(sb)))
            return "%s: differs at char %d: got %r want %r" % (path, i, sa[max(0, i - 60):i + 60], sb[max(0, i - 60):i + 60])
        return "%s: got %r want %r" % (path, sa[:200], sb[:200])
    return None


def compare(got, want):
    """returns a list of problems"""
    problems = []
    g = {key(o): o for o in got}
    w = {key(o): o for o in want}
    if len(g) != len(got):
        problems.append("duplicate object keys in ferry output")
    for k in sorted(set(w) - set(g), key=str):
        problems.append("missing object %s" % (k,))
    for k in sorted(set(g) - set(w), key=str):
        problems.append("unexpected object %s" % (k,))
    for k in sorted(set(g) & set(w), key=str):
        a, b = g[k], w[k]
        if is_cert_secret(b):
            da, db = a.get("data") or {}, b.get("data") or {}
            if sorted(da) != sorted(db):
                problems.append("%s: certificate keys %s != %s" % (k, sorted(da), sorted(db)))
            for kk, v in db.items():
                want_t = pem_type(v)
                if want_t and pem_type(da.get(kk, "")) != want_t:
                    problems.append("%s: data.%s is not a base64 PEM %s" % (k, kk, want_t))
                elif not want_t and da.get(kk) != v:
                    problems.append("%s: data.%s differs" % (k, kk))
            a = dict(a, data=None)
            b = dict(b, data=None)
        d = diff(norm_num(a), norm_num(b))
        if d:
            problems.append("%s: %s" % (k, d))
    return problems


def ferry_render(chart, files, flags):
    cmd = [FERRY, "template", os.path.join(CHARTS, chart)] + sum([["-f", f] for f in files], []) + flags + ["-o", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("ferry failed: " + p.stderr.strip()[:2000])
    return json.loads(p.stdout)


def helmref_render(hr, chart, files, flags):
    cmd = [hr, os.path.join(CHARTS, chart)] + sum([["-f", f] for f in files], []) + flags + ["-json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("helmref failed: " + p.stderr.strip()[:2000])
    return json.loads(p.stdout)


CERT_LINE = re.compile(r"^\s+(ca\.crt|tls\.crt|tls\.key|ca\.key): .*$", re.M)


def text_check(name, hr, chart, files, flags):
    """byte-level comparison of the YAML output (certificate lines masked)"""
    args = [os.path.join(CHARTS, chart)] + sum([["-f", f] for f in files], []) + flags
    a = subprocess.run([FERRY, "template"] + args, capture_output=True, text=True, timeout=300)
    b = subprocess.run([hr] + args, capture_output=True, text=True, timeout=300)
    if a.returncode or b.returncode:
        return "render failed: %s %s" % (a.stderr[:300], b.stderr[:300])
    ta, tb = CERT_LINE.sub("", a.stdout), CERT_LINE.sub("", b.stdout)
    if ta != tb:
        la, lb = ta.splitlines(), tb.splitlines()
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                return "yaml text differs at line %d: got %r want %r" % (i + 1, x[:200], y[:200])
        return "yaml text differs in length: %d vs %d lines" % (len(la), len(lb))
    return None


def error_case(name, hr, chart, files, flags, want_sub):
    args = [os.path.join(CHARTS, chart)] + sum([["-f", f] for f in files], []) + flags
    a = subprocess.run([FERRY, "template"] + args, capture_output=True, text=True, timeout=300)
    if a.returncode == 0:
        print("FAIL: golden %s: ferry succeeded, Helm fails" % name)
        return False
    want = want_sub
    if hr:
        b = subprocess.run([hr] + args, capture_output=True, text=True, timeout=300)
        if b.returncode == 0:
            print("FAIL: golden %s: helmref succeeded" % name)
            return False
        want = b.stderr.strip().splitlines()[-1].replace("Error: ", "", 1)
    if want and want not in a.stderr:
        print("FAIL: golden %s: error %r does not contain %r" % (name, a.stderr.strip()[:500], want[:500]))
        return False
    print("PASS: golden %s (fails like Helm)" % name)
    return True


def run_case(name, got_fn, want_fn):
    try:
        want = want_fn()
        if want is None:
            print("SKIP: golden %s: no helmref and no committed expectation" % name)
            return True
        got = got_fn()
    except Exception as e:  # noqa
        print("FAIL: golden %s: %s" % (name, e))
        return False
    problems = compare(got, want)
    if problems:
        print("FAIL: golden %s: %d problems; first: %s" % (name, len(problems), " | ".join(problems[:5])))
        return False
    print("PASS: golden %s (%d objects)" % (name, len(want)))
    return True


def main():
    ok = True
    only = sys.argv[1:] 
    for name, (chart, files, flags) in GOLDEN_FLAGS.items():
        if only and name not in only:
            continue
        d = os.path.join(SHARED, "goldens", name)
        ok &= run_case(name, lambda: ferry_render(chart, [os.path.join(d, f) for f in files], flags),
                       lambda: json.load(open(os.path.join(d, "expected.json"))))
    hr = helmref_bin()
    for name, (chart, files, flags) in EXTRA.items():
        if only and name not in only:
            continue
        committed = os.path.join(DATA, name + ".json.gz")

        def want(chart=chart, files=files, flags=flags, committed=committed):
            if hr:
                return helmref_render(hr, chart, files, flags)
            if os.path.exists(committed):
                with gzip.open(committed, "rt") as f:
                    return json.load(f)
            return None
        ok &= run_case(name, lambda chart=chart, files=files, flags=flags: ferry_render(chart, files, flags), want)
        if hr:
            d = text_check(name, hr, chart, files, flags)
            if d:
                print("FAIL: golden %s text: %s" % (name, d))
                ok = False
            else:
                print("PASS: golden %s text (byte-identical to helmref)" % name)
    for name, (chart, files, flags, sub) in ERRORS.items():
        if only and name not in only:
            continue
        ok &= error_case(name, hr, chart, files, flags, sub)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
