"""test_auth_tls: ferryd's HTTPS listener (issue 15) with certificates made
at test time by the openssl command, checked with Python's ssl module (a
real TLS client) and curl:

- HTTPS with the test CA, HSTS on the console and the API, plain HTTP
  refused on the TLS port;
- protocol floor and ciphers: TLS 1.3 by default, TLS 1.2 only with AEAD
  ciphers, TLS 1.1 and CBC suites refused;
- SIGHUP reload: a new connection gets the new certificate while a
  connection opened before keeps working on its socket; a broken
  certificate/key pair at reload keeps the previous one;
- start-up refuses a key that does not belong to the certificate, and a
  lone --tls-cert;
- --trusted-proxy: X-Forwarded-Proto/-For believed only from the CIDR;
- the `ferry` client trusts a private CA through --ca-file, FERRY_CA_FILE
  or a context's ca-file, and refuses the server without it.
"""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402
from apitest import check, check_eq, run_test  # noqa: E402

NAMES = ["tls_https_and_hsts", "tls_cli_ca_file", "tls_protocols_and_ciphers", "tls_sighup_reload_keeps_connections",
         "tls_reload_broken_pair_keeps_previous", "tls_startup_refuses_bad_pair",
         "trusted_proxy_forwarded_headers"]

TMP = tempfile.mkdtemp(prefix="ferry-tls-")


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca():
    key, crt = os.path.join(TMP, "ca.key"), os.path.join(TMP, "ca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", "/CN=ferry test CA")
    return crt, key


def make_leaf(ca, cn, kind="rsa"):
    """A server certificate for 127.0.0.1 signed by ca; returns (cert, key)."""
    key, csr, crt = [os.path.join(TMP, cn + s) for s in (".key", ".csr", ".pem")]
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
    ext = os.path.join(TMP, cn + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", crt, "-days", "1", "-extfile", ext)
    return crt, key


def client_ctx(cafile, **kw):
    ctx = ssl.create_default_context(cafile=cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def peer_cn(sock):
    cert = sock.getpeercert()
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def handshake(port, ctx):
    """(version, cipher, CN) of a fresh TLS connection, or the ssl error."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except (ssl.SSLError, ConnectionResetError) as e:
        raw.close()
        return e
    try:
        return s.version(), s.cipher()[0], peer_cn(s)
    finally:
        s.close()


def wait_log(ferry, pattern, timeout=15, also=None):
    """Wait for a log line matching pattern (and containing also)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in open(ferry.log_path, errors="replace"):
            if re.search(pattern, line) and (also is None or also in line):
                return True
        time.sleep(0.05)
    return False


def main():
    try:
        ca = make_ca()
        cert_path, key_path = os.path.join(TMP, "live.pem"), os.path.join(TMP, "live.key")
        first = make_leaf(ca, "ferry-one")
        second = make_leaf(ca, "ferry-two", kind="ec")
        third = make_leaf(ca, "ferry-three")
    except (OSError, subprocess.CalledProcessError) as e:
        apitest.skip_all(NAMES, "openssl cannot make test certificates: %s" % e)
    for src, dst in ((first[0], cert_path), (first[1], key_path)):
        with open(src) as f, open(dst, "w") as g:
            g.write(f.read())
    ctx = client_ctx(ca[0])
    ferry = apitest.start("tls", NAMES, extra_args=["--tls-cert", cert_path, "--tls-key", key_path],
                          ssl_context=ctx)
    port = ferry.port

    def https_and_hsts():
        r = ferry.get("/healthz")
        check_eq(r.status, 200, "GET /healthz over HTTPS")
        check_eq(r.header("Strict-Transport-Security"), "max-age=31536000", "HSTS on the API")
        r = ferry.get("/")
        check_eq(r.status, 200, "the console over HTTPS")
        check_eq(r.header("Strict-Transport-Security"), "max-age=31536000", "HSTS on the console")
        r = ferry.get("/v1/me", token=ferry.platform_token)
        check_eq(r.status, 200, "an API token over HTTPS")
        check(open(ferry.log_path).read().count("listening on https://127.0.0.1:%d/" % port) == 1,
              "the log names the https URL")
        # Plain HTTP on the TLS port gets no HTTP answer.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/healthz")
            resp = c.getresponse()
            got = resp.status
        except (http.client.HTTPException, OSError):
            got = None
        check(got is None or got >= 400, "plain HTTP on the TLS port answered %r" % got)
        # curl, another TLS stack, verifying against the test CA.
        out = subprocess.run(["curl", "-sS", "--cacert", ca[0], "-o", "/dev/null", "-w",
                              "%{http_code} %{ssl_verify_result}",
                              "https://127.0.0.1:%d/healthz" % port],
                             capture_output=True, text=True, timeout=30)
        check_eq(out.stdout.strip(), "200 0", "curl over HTTPS (%s)" % out.stderr)

    def cli_ca_file():
        prog = os.path.join(os.environ.get("FERRY_BUILD", ""), "ferry")
        check(os.path.exists(prog), "no ferry binary at %s" % prog)
        tok = os.path.join(TMP, "viewer.token")
        with open(tok, "w") as fh:
            fh.write(ferry.token(ferry.tenant("tlsacme"), "viewer") + "\n")
        cfg = os.path.join(TMP, "cli", "config")
        base = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        base.update({"FERRY_CONFIG": cfg, "FERRY_TOKEN_FILE": tok})
        url = "https://127.0.0.1:%d" % port

        def cli(*args, **env):
            p = subprocess.run([prog] + list(args), env=dict(base, **env), capture_output=True, text=True,
                               timeout=60)
            return p.returncode, p.stdout + p.stderr
        rc, out = cli("--server", url, "clusters", "list")
        check(rc == 2 and "certificate" in out.lower(), "without the CA the server is refused: %r" % ((rc, out),))
        rc, out = cli("--server", url, "--ca-file", ca[0], "clusters", "list")
        check_eq(rc, 0, "--ca-file: %s" % out)
        rc, out = cli("--server", url, "clusters", "list", FERRY_CA_FILE=ca[0])
        check_eq(rc, 0, "FERRY_CA_FILE: %s" % out)
        rc, out = cli("config", "set-context", "tls", "--server", url, "--ca-file", ca[0])
        check_eq(rc, 0, "set-context --ca-file: %s" % out)
        rc, out = cli("--context", "tls", "clusters", "list")
        check_eq(rc, 0, "a context's ca-file: %s" % out)
        # The flag wins over the context's file, and a missing file is named.
        rc, out = cli("--context", "tls", "--ca-file", os.path.join(TMP, "nope.pem"), "clusters", "list")
        check(rc == 2 and "cannot read the CA file" in out and "--ca-file" in out, "missing file: %r" % ((rc, out),))
        # A CA that did not sign the server's certificate is refused.
        other_key, other = os.path.join(TMP, "other-ca.key"), os.path.join(TMP, "other-ca.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", other_key, "-out", other,
                "-days", "2", "-subj", "/CN=another CA")
        rc, out = cli("--server", url, "--ca-file", other, "clusters", "list")
        check_eq(rc, 2, "a wrong CA file: %s" % out)

    def protocols():
        v = handshake(port, client_ctx(ca[0]))
        check(isinstance(v, tuple) and v[0] == "TLSv1.3", "default handshake: %r" % (v,))
        v = handshake(port, client_ctx(ca[0], maximum_version=ssl.TLSVersion.TLSv1_2))
        check(isinstance(v, tuple) and v[0] == "TLSv1.2", "TLS 1.2 client: %r" % (v,))
        check("GCM" in v[1] or "CHACHA20" in v[1], "TLS 1.2 cipher is AEAD: %s" % v[1])
        cbc = client_ctx(ca[0], maximum_version=ssl.TLSVersion.TLSv1_2)
        cbc.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA")
        v = handshake(port, cbc)
        check(isinstance(v, Exception), "a CBC-only TLS 1.2 client got through: %r" % (v,))
        old = client_ctx(ca[0])
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        v = handshake(port, old)
        check(isinstance(v, Exception), "a TLS 1.1 client got through: %r" % (v,))
        # openssl s_client offering only TLS 1.1 is refused too.
        out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_1",
                              "-cipher", "DEFAULT:@SECLEVEL=0"], input="", capture_output=True,
                             text=True, timeout=30)
        check(out.returncode != 0, "openssl s_client -tls1_1 connected")

    def reload_keeps_connections():
        # A keep-alive connection opened before the reload.
        before = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
        before.request("GET", "/healthz")
        r = before.getresponse()
        r.read()
        check_eq(r.status, 200, "first request")
        sock = before.sock
        check_eq(peer_cn(sock), "ferry-one", "certificate before the reload")
        for src, dst in ((second[0], cert_path), (second[1], key_path)):
            with open(src) as f, open(dst, "w") as g:
                g.write(f.read())
        ferry.proc.send_signal(signal.SIGHUP)
        check(wait_log(ferry, r"SIGHUP: TLS certificate reloaded: CN=ferry-two"),
              "no reload line in the log")
        v = handshake(port, ctx)
        check(isinstance(v, tuple) and v[2] == "ferry-two", "new connection after reload: %r" % (v,))
        # The old connection: same socket, still served.
        for _ in range(3):
            before.request("GET", "/healthz")
            r = before.getresponse()
            r.read()
            check_eq(r.status, 200, "request on the connection opened before the reload")
        check(before.sock is sock, "the connection was re-opened")
        check_eq(peer_cn(before.sock), "ferry-one", "old connection keeps its session")
        before.close()
        check(ferry.proc.poll() is None, "ferryd died on SIGHUP")

    def reload_broken_pair():
        # The certificate of three with the key of two: refused, two stays.
        with open(third[0]) as f, open(cert_path, "w") as g:
            g.write(f.read())
        ferry.proc.send_signal(signal.SIGHUP)
        check(wait_log(ferry, r"TLS reload failed, the previous certificate stays: .*does not belong"),
              "no refusal in the log")
        v = handshake(port, ctx)
        check(isinstance(v, tuple) and v[2] == "ferry-two", "after a refused reload: %r" % (v,))
        with open(cert_path, "w") as g:
            g.write("not a certificate\n")
        ferry.proc.send_signal(signal.SIGHUP)
        check(wait_log(ferry, r"TLS reload failed.*not a PEM certificate"), "garbage accepted")
        v = handshake(port, ctx)
        check(isinstance(v, tuple) and v[2] == "ferry-two", "after garbage: %r" % (v,))
        # Put a good pair back: the next reload takes it.
        for src, dst in ((third[0], cert_path), (third[1], key_path)):
            with open(src) as f, open(dst, "w") as g:
                g.write(f.read())
        ferry.proc.send_signal(signal.SIGHUP)
        check(wait_log(ferry, r"reloaded: CN=ferry-three"), "good pair not taken")
        v = handshake(port, ctx)
        check(isinstance(v, tuple) and v[2] == "ferry-three", "after the good pair: %r" % (v,))

    def startup_refusals():
        env = dict(ferry.env)
        out = subprocess.run([ferry.ferryd, "serve", "--listen", "127.0.0.1:0", "--workers", "0",
                              "--tls-cert", first[0], "--tls-key", second[1]],
                             env=env, capture_output=True, text=True, timeout=60)
        check(out.returncode != 0, "started with a mismatched key")
        check("does not belong to the certificate" in out.stderr, "message: %s" % out.stderr[-500:])
        out = subprocess.run([ferry.ferryd, "serve", "--listen", "127.0.0.1:0", "--tls-cert", first[0]],
                             env=env, capture_output=True, text=True, timeout=60)
        check_eq(out.returncode, 2, "lone --tls-cert exit status")
        check("go together" in out.stderr, "message: %s" % out.stderr)
        out = subprocess.run([ferry.ferryd, "serve", "--trusted-proxy", "10.0.0.0/33"],
                             env=env, capture_output=True, text=True, timeout=60)
        check_eq(out.returncode, 2, "bad --trusted-proxy exit status")
        check("prefix longer than 32" in out.stderr, "message: %s" % out.stderr)

    run_test("tls_https_and_hsts", https_and_hsts)
    run_test("tls_cli_ca_file", cli_ca_file)
    run_test("tls_protocols_and_ciphers", protocols)
    run_test("tls_sighup_reload_keeps_connections", reload_keeps_connections)
    run_test("tls_reload_broken_pair_keeps_previous", reload_broken_pair)
    run_test("tls_startup_refuses_bad_pair", startup_refusals)

    # Behind a proxy: plain HTTP, headers believed only from the CIDR.
    trusted = apitest.start("proxy", ["trusted_proxy_forwarded_headers"],
                            extra_args=["--trusted-proxy", "127.0.0.0/8", "--log-level", "debug"])
    untrusted = apitest.start("noproxy", ["trusted_proxy_forwarded_headers"],
                              extra_args=["--trusted-proxy", "10.0.0.0/8,fd00::/8", "--log-level", "debug"])

    def forwarded():
        fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9, 127.0.0.5",
               "X-Request-Id": "fwd-trusted"}
        r = trusted.get("/healthz", headers=fwd)
        check_eq(r.header("Strict-Transport-Security"), "max-age=31536000",
                 "HSTS behind a trusted proxy saying https")
        check(wait_log(trusted, r"from 203\.0\.113\.9\)", also="fwd-trusted"), "client address from X-Forwarded-For")
        r = trusted.get("/healthz", headers={"X-Forwarded-Proto": "http"})
        check_eq(r.header("Strict-Transport-Security"), None, "no HSTS for proto http")
        fwd["X-Request-Id"] = "fwd-untrusted"
        r = untrusted.get("/healthz", headers=fwd)
        check_eq(r.header("Strict-Transport-Security"), None, "HSTS from an untrusted peer's header")
        check(wait_log(untrusted, r"from 127\.0\.0\.1\)", also="fwd-untrusted"), "untrusted X-Forwarded-For was used")

    run_test("trusted_proxy_forwarded_headers", forwarded)
    for f in (trusted, untrusted):
        msg = f.stop()
        if msg:
            apitest.FAILED += 1
            print("FAIL: ferryd_shutdown_%s: %s" % (f.tag, msg))
    apitest.finish(ferry)


if __name__ == "__main__":
    main()
