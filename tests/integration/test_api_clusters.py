#!/usr/bin/env python3
"""API integration: the cluster resource.

Create from connection fields (token or client certificate) and from an
uploaded kubeconfig (context choice, *-data decoding; exec plugins,
insecure-skip-tls-verify and file references refused unless the server
allows insecure kubeconfigs), label selectors, cursor pagination, PATCH as
a merge patch with ETag/If-Match, DELETE refused while a job is active,
and credentials absent from every response and from a pg_dump in
plaintext (they are sealed with AES-256-GCM).
"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, make_ca, run_test, start)  # noqa: E402

TESTS = ["api_clusters_create_token", "api_clusters_create_client_cert",
         "api_clusters_kubeconfig", "api_clusters_kubeconfig_refusals",
         "api_clusters_kubeconfig_insecure_allowed", "api_clusters_selector",
         "api_clusters_pagination", "api_clusters_patch_etag", "api_clusters_delete_active_job",
         "api_clusters_credentials_never_shown"]
f = start("clusters", TESTS)
ca_pem, ca_key = make_ca(f.tmp, "cluster-ca")
cert_pem, key_pem = make_ca(f.tmp, "client-user")
other_cert, _ = make_ca(f.tmp, "other-user")
acme = f.tenant("acme")
OP = f.token(acme, "operator")
SECRETS = []   # every credential we sent; none may ever come back


def b64(s):
    return base64.b64encode(s.encode()).decode()


def kubeconfig(server="https://k8s.example:6443", user=None, ctx_extra="", cluster_extra="",
               current="main"):
    if user is None:
        user = "    token: kc-token-main\n"
    return """apiVersion: v1
kind: Config
current-context: %s
clusters:
- name: c-main
  cluster:
    server: %s
    certificate-authority-data: %s
%s- name: c-other
  cluster:
    server: https://other.example
    certificate-authority-data: %s
contexts:
- name: main
  context: {cluster: c-main, user: u-main}
- name: other
  context: {cluster: c-other, user: u-other}
%susers:
- name: u-main
  user:
%s- name: u-other
  user:
    token: kc-token-other
""" % (current, server, b64(ca_pem), cluster_extra, b64(ca_pem), ctx_extra, user)


SECRETS += ["kc-token-main", "kc-token-other"]


def t_token():
    body = {"name": "tok", "profile": "tke", "labels": {"env": "prod", "team": "net"},
            "api_server": "https://10.0.0.10:6443", "ca_bundle": ca_pem,
            "tls_server_name": "kubernetes", "token": "sa-token-tok-123"}
    SECRETS.append("sa-token-tok-123")
    r = f.post("/v1/clusters", body, OP)
    check_eq(r.status, 201, "create %r" % r)
    c = r.json()
    check_eq(r.header("Location"), "/v1/clusters/" + c["id"], "Location")
    check(r.header("ETag"), "ETag")
    for k, v in (("name", "tok"), ("profile", "tke"), ("auth", "token"), ("has_ca_bundle", True),
                 ("tls_server_name", "kubernetes"), ("api_server", "https://10.0.0.10:6443"),
                 ("labels", {"env": "prod", "team": "net"}), ("active_job_id", None),
                 ("kube_version", None), ("node_count", None)):
        check_eq(c[k], v, k)
    for k in ("created_at", "updated_at"):
        check(c[k].endswith("Z") and "T" in c[k], "%s RFC 3339 UTC: %s" % (k, c[k]))
    g = f.get("/v1/clusters/" + c["id"], OP)
    check_eq(g.json(), c, "GET equals POST answer")
    check_eq(g.header("ETag"), r.header("ETag"), "same ETag")
    is_problem(f.post("/v1/clusters", body, OP), 409)


def t_client_cert():
    body = {"name": "cert", "profile": "generic", "api_server": "https://10.0.0.11",
            "client_certificate": cert_pem, "client_key": key_pem}
    r = f.post("/v1/clusters", body, OP)
    check_eq(r.status, 201, "create %r" % r)
    check_eq(r.json()["auth"], "client-certificate", "auth")
    check_eq(r.json()["has_ca_bundle"], False, "no CA")
    # A key that does not belong to the certificate is refused.
    r = f.post("/v1/clusters", dict(body, name="cert2", client_certificate=other_cert), OP)
    p = is_problem(r, 400)
    check("does not match" in p["detail"], p["detail"])
    # Key without certificate, both token and certificate.
    is_problem(f.post("/v1/clusters", dict(body, name="cert3", client_certificate=None), OP), 400)
    body4 = dict(body, name="cert4", token="t")
    is_problem(f.post("/v1/clusters", body4, OP), 400)


def t_kubeconfig():
    r = f.post("/v1/clusters", {"name": "kc1", "profile": "k3s", "kubeconfig": kubeconfig()}, OP)
    check_eq(r.status, 201, "kubeconfig import %r" % r)
    c = r.json()
    check_eq(c["api_server"], "https://k8s.example:6443", "server from current-context")
    check_eq(c["auth"], "token", "auth")
    check_eq(c["has_ca_bundle"], True, "CA decoded")
    r = f.post("/v1/clusters", {"name": "kc2", "profile": "k3s", "kubeconfig": kubeconfig(),
                                "context": "other"}, OP)
    check_eq(r.status, 201, "context choice %r" % r)
    check_eq(r.json()["api_server"], "https://other.example", "other context")
    # Client certificate data in the kubeconfig.
    user = "    client-certificate-data: %s\n    client-key-data: %s\n" % (b64(cert_pem), b64(key_pem))
    r = f.post("/v1/clusters", {"name": "kc3", "profile": "generic",
                                "kubeconfig": kubeconfig(user=user)}, OP)
    check_eq(r.status, 201, "cert kubeconfig %r" % r)
    check_eq(r.json()["auth"], "client-certificate", "auth")
    # tls-server-name is carried over.
    r = f.post("/v1/clusters", {"name": "kc4", "profile": "generic", "kubeconfig": kubeconfig(
        cluster_extra="    tls-server-name: api.internal\n".replace("    ", "    ", 1))}, OP)
    # (cluster_extra lands after the CA line of c-main)
    check_eq(r.status, 201, "tls-server-name %r" % r)
    check_eq(r.json()["tls_server_name"], "api.internal", "tls_server_name")


def t_kubeconfig_refusals():
    cases = [
        ("exec", kubeconfig(user="    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                 "      command: /bin/sh\n      args: [-c, 'rm -rf /']\n"), "exec"),
        ("insecure", kubeconfig(cluster_extra="    insecure-skip-tls-verify: true\n"),
         "insecure-skip-tls-verify"),
        ("file-ca", kubeconfig().replace("certificate-authority-data: " + b64(ca_pem),
                                         "certificate-authority: /etc/ssl/private/x.pem", 1), "file"),
        ("token-file", kubeconfig(user="    tokenFile: /etc/shadow\n"), "tokenFile"),
        ("key-file", kubeconfig(user="    client-certificate: /etc/passwd\n    client-key: /etc/shadow\n"),
         "file"),
        ("basic", kubeconfig(user="    username: admin\n    password: hunter2\n"), "basic"),
        ("http", kubeconfig(server="http://k8s.example:8080"), "https"),
        ("no-context", kubeconfig(current="missing"), "missing"),
        ("yaml", "apiVersion: v1\nclusters: [\n", "YAML"),
        ("not-config", "- just\n- a list\n", "mapping"),
        ("bad-b64", kubeconfig().replace(b64(ca_pem), "not*valid*base64", 1), "base64"),
        ("auth-provider", kubeconfig(user="    auth-provider:\n      name: gcp\n"), "auth-provider"),
    ]
    for name, kc, word in cases:
        r = f.post("/v1/clusters", {"name": "bad-" + name, "profile": "generic", "kubeconfig": kc}, OP)
        p = is_problem(r, 400)
        check(word.lower() in p["detail"].lower(), "%s: detail %r lacks %r" % (name, p["detail"], word))
        check("hunter2" not in r.text and "rm -rf" not in r.text, "%s: error echoes secrets" % name)
    # Mixing kubeconfig with direct fields, or context without kubeconfig.
    is_problem(f.post("/v1/clusters", {"name": "mix", "profile": "generic", "kubeconfig": kubeconfig(),
                                       "token": "x"}, OP), 400)
    is_problem(f.post("/v1/clusters", {"name": "mix2", "profile": "generic", "api_server": "https://a",
                                       "token": "x", "context": "main"}, OP), 400)
    SECRETS.append("hunter2")


def t_insecure_allowed():
    g = start("clusters_insecure", ["api_clusters_kubeconfig_insecure_allowed"],
              extra_args=["--allow-insecure-kubeconfig"])
    try:
        t = g.token(g.tenant("lab"), "operator")
        kc = kubeconfig(cluster_extra="    insecure-skip-tls-verify: true\n")
        r = g.post("/v1/clusters", {"name": "lab1", "profile": "k3s", "kubeconfig": kc}, t)
        check_eq(r.status, 201, "insecure allowed %r" % r)
        check_eq(r.json()["insecure_skip_tls_verify"], True, "flag shown")
        # exec alone is still unusable (ferry runs no plugins)...
        kc = kubeconfig(user="    exec:\n      command: aws\n")
        is_problem(g.post("/v1/clusters", {"name": "lab2", "profile": "k3s", "kubeconfig": kc}, t), 400)
        # ...but tolerated next to a static token.
        kc = kubeconfig(user="    token: kc-token-main\n    exec:\n      command: aws\n")
        r = g.post("/v1/clusters", {"name": "lab3", "profile": "k3s", "kubeconfig": kc}, t)
        check_eq(r.status, 201, "exec tolerated with a token %r" % r)
        # File references stay refused for uploads.
        kc = kubeconfig(user="    tokenFile: /etc/shadow\n")
        is_problem(g.post("/v1/clusters", {"name": "lab4", "profile": "k3s", "kubeconfig": kc}, t), 400)
    finally:
        msg = g.stop()
        check(msg is None, msg or "")


def t_selector():
    mk = [("s-prod-a", {"env": "prod", "team": "a"}), ("s-prod-b", {"env": "prod", "team": "b"}),
          ("s-dev-a", {"env": "dev", "team": "a"}), ("s-none", {})]
    for name, labels in mk:
        r = f.post("/v1/clusters", {"name": name, "profile": "generic", "labels": labels,
                                    "api_server": "https://10.9.9.9", "token": "t-" + name}, OP)
        check_eq(r.status, 201, name)
        SECRETS.append("t-" + name)

    def names(sel):
        r = f.get("/v1/clusters?limit=200&selector=" + sel, OP)
        check_eq(r.status, 200, sel)
        return sorted(c["name"] for c in r.json()["items"] if c["name"].startswith("s-"))
    check_eq(names("env%3Dprod"), ["s-prod-a", "s-prod-b"], "env=prod")
    check_eq(names("env%3D%3Dprod,team!%3Db"), ["s-prod-a"], "env==prod,team!=b")
    check_eq(names("team!%3Da"), ["s-none", "s-prod-b"], "team!=a (absent counts)")
    check_eq(names("env"), ["s-dev-a", "s-prod-a", "s-prod-b"], "exists")
    check_eq(names("!env"), ["s-none"], "not exists")
    check_eq(names("env%3Dstaging"), [], "no match")


def t_pagination():
    for i in range(7):
        r = f.post("/v1/clusters", {"name": "page-%d" % i, "profile": "generic",
                                    "api_server": "https://10.8.8.8", "token": "pt-%d" % i}, OP)
        check_eq(r.status, 201, "page-%d" % i)
        SECRETS.append("pt-%d" % i)
    seen, cursor, pages = [], None, 0
    while True:
        q = "/v1/clusters?limit=3" + ("&cursor=" + cursor if cursor else "")
        r = f.get(q, OP)
        check_eq(r.status, 200, q)
        page = r.json()
        check(len(page["items"]) <= 3, "page too long")
        seen += [c["name"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
        check(pages < 50, "pagination does not end")
    total = f.get("/v1/clusters?limit=200", OP).json()
    check_eq(seen, [c["name"] for c in total["items"]], "pages cover the list once, in order")
    check_eq(len(seen), len(set(seen)), "no duplicates")
    check_eq(total["next_cursor"], None, "single page has no cursor")


def t_patch():
    r = f.post("/v1/clusters", {"name": "patchme", "profile": "tke", "labels": {"a": "1", "b": "2"},
                                "api_server": "https://10.7.7.7", "token": "patch-old-token"}, OP)
    cid, etag = r.json()["id"], r.header("ETag")
    SECRETS.append("patch-old-token")
    r = f.patch("/v1/clusters/" + cid, {"labels": {"b": None, "c": "3"}, "profile": "tke-coexist"}, OP,
                headers={"If-Match": etag})
    check_eq(r.status, 200, "patch %r" % r)
    c = r.json()
    check_eq(c["labels"], {"a": "1", "c": "3"}, "merge patch of labels")
    check_eq(c["profile"], "tke-coexist", "profile")
    check(r.header("ETag") != etag, "ETag changes")
    # The old ETag is now stale.
    p = is_problem(f.patch("/v1/clusters/" + cid, {"name": "x"}, OP, headers={"If-Match": etag}), 412)
    check("changed" in p["detail"], p["detail"])
    is_problem(f.patch("/v1/clusters/" + cid, {"name": "x"}, OP, headers={"If-Match": "garbage"}), 412)
    is_problem(f.delete("/v1/clusters/" + cid, OP, headers={"If-Match": etag}), 412)
    # Credentials switch from token to client certificate.
    r = f.patch("/v1/clusters/" + cid, {"client_certificate": cert_pem, "client_key": key_pem,
                                        "ca_bundle": ca_pem}, OP)
    check_eq(r.status, 200, "credential patch %r" % r)
    check_eq(r.json()["auth"], "client-certificate", "auth switched")
    check_eq(r.json()["has_ca_bundle"], True, "CA set")
    r = f.patch("/v1/clusters/" + cid, {"ca_bundle": None, "name": "patched"}, OP)
    check_eq(r.json()["has_ca_bundle"], False, "CA removed by null")
    check_eq(r.json()["name"], "patched", "renamed")
    is_problem(f.patch("/v1/clusters/" + cid, {"name": "tok"}, OP), 409)
    check_eq(f.patch("/v1/clusters/" + cid, {}, OP, headers={"If-Match": "*"}).status, 200, "If-Match *")


def t_delete_active():
    r = f.post("/v1/clusters", {"name": "busy", "profile": "tke", "api_server": "https://10.6.6.6",
                                "token": "busy-token"}, OP)
    cid = r.json()["id"]
    SECRETS.append("busy-token")
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP)
    check_eq(r.status, 202, "job")
    jid = r.json()["id"]
    check_eq(f.get("/v1/clusters/" + cid, OP).json()["active_job_id"], jid, "active_job_id shown")
    p = is_problem(f.delete("/v1/clusters/" + cid, OP), 409)
    check(jid in p["detail"], "409 names the job: %r" % p)
    check_eq(f.get("/v1/clusters/" + cid, OP).status, 200, "still there")
    check_eq(f.post("/v1/jobs/%s/cancel" % jid, None, OP, content_type=None).status, 202, "cancel")
    check_eq(f.get("/v1/jobs/" + jid, OP).json()["state"], "cancelled", "queued job cancelled at once")
    check_eq(f.delete("/v1/clusters/" + cid, OP).status, 204, "delete once idle")
    is_problem(f.get("/v1/clusters/" + cid, OP), 404)
    is_problem(f.get("/v1/jobs/" + jid, OP), 404)
    is_problem(f.delete("/v1/clusters/" + cid, OP), 404)


def t_never_shown():
    # Every response we can provoke, plus the database dump.
    texts = [f.get("/v1/clusters?limit=200", OP).text]
    for c in f.get("/v1/clusters?limit=200", OP).json()["items"]:
        texts.append(f.get("/v1/clusters/" + c["id"], OP).text)
    texts.append(f.get("/v1/jobs?limit=200", OP).text)
    blob = "\n".join(texts)
    for s in SECRETS + [key_pem.split("\n")[1]]:
        check(s not in blob, "credential %r in an API response" % s[:20])
    dump = f.pg_dump()
    for s in SECRETS + [key_pem.split("\n")[1], b64(key_pem)[:40]]:
        check(s.encode() not in dump, "credential %r in pg_dump plaintext" % s[:20])
    sealed = f.sql("SELECT credentials FROM clusters LIMIT 1")
    check(sealed.startswith("v1:k1:"), "credentials sealed with key id: %r" % sealed[:12])
    check(f.sql("SELECT count(DISTINCT credentials_key_id) FROM clusters") == "1", "key id recorded")


run_test("api_clusters_create_token", t_token)
run_test("api_clusters_create_client_cert", t_client_cert)
run_test("api_clusters_kubeconfig", t_kubeconfig)
run_test("api_clusters_kubeconfig_refusals", t_kubeconfig_refusals)
run_test("api_clusters_kubeconfig_insecure_allowed", t_insecure_allowed)
run_test("api_clusters_selector", t_selector)
run_test("api_clusters_pagination", t_pagination)
run_test("api_clusters_patch_etag", t_patch)
run_test("api_clusters_delete_active_job", t_delete_active)
run_test("api_clusters_credentials_never_shown", t_never_shown)
finish(f)
