#!/usr/bin/env python3
"""Security regression suite, slow clients (issue 13, finding 3). Loopback
only (127.0.0.0/8), bounded in count and time.

- sec_slowloris_1000: 1,000 connections from 127.0.0.2..127.0.0.17 trickle
  header lines (one every 0.5 s, never finishing the request head) for
  8 s (default settings: all of them stay open); all the while a client on
  127.0.0.1 gets GET /healthz and GET /v1/me answered 200 within a second,
  every time. (512 slow connections took the API down before.)
- sec_slowloris_header_deadline: a connection that keeps trickling is
  closed by the request-head deadline (FERRY_HTTP_HEADER_TIMEOUT_S, 3 s
  here) although every line restarts libmicrohttpd's idle timer.
- sec_slowloris_per_ip_cap: one address gets at most
  FERRY_HTTP_PER_IP_CONNECTIONS (64) connections; the rest are closed at
  once.
"""
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from apitest import (check, check_eq, finish, run_test, start)  # noqa: E402

TESTS = ["sec_slowloris_1000", "sec_slowloris_header_deadline", "sec_slowloris_per_ip_cap"]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
# The 1,000-connection test runs against the defaults (10 s request-head
# deadline: the slow connections stay open for the whole 8 s); the
# deadline and per-IP tests against a second ferryd with a 3 s deadline.
f = start("sec_slow", TESTS)
acme = f.tenant("acme")
OP = f.token(acme, "operator")


def slow_conn(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", f.port))
    except BlockingIOError:
        pass
    return s


def alive(s):
    """False once the server closed the connection."""
    try:
        d = s.recv(4096)
        return d != b"" and not d.startswith(b"HTTP/")
    except BlockingIOError:
        return True
    except OSError:
        return False


def trickle(socks, line=b"X-Slow: 1\r\n"):
    for s in list(socks):
        try:
            s.send(line)
        except (BlockingIOError, OSError):
            pass


def timed_get(path, token=None):
    t0 = time.time()
    r = f.get(path, token, timeout=5)
    return r.status, time.time() - t0


def t_1000():
    socks = []
    for i in range(1000):
        socks.append(slow_conn("127.0.0.%d" % (2 + i // 63)))
    time.sleep(0.5)
    trickle(socks, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    # Let the accept burst settle (a thread per connection is created),
    # then measure while all of them stay open and keep trickling.
    time.sleep(1.5)
    worst = 0.0
    answers = []
    least_open = 1000
    end = time.time() + 8
    while time.time() < end:
        # Like a real attacker, reconnect what the deadline closed.
        for i, s in enumerate(socks):
            if not alive(s):
                s.close()
                socks[i] = slow_conn("127.0.0.%d" % (2 + i // 63))
                trickle([socks[i]], b"GET /healthz HTTP/1.1\r\n")
        trickle(socks)
        least_open = min(least_open, sum(1 for s in socks if alive(s)))
        for path, tok in (("/healthz", None), ("/v1/me", OP)):
            st, took = timed_get(path, tok)
            answers.append(st)
            worst = max(worst, took)
        time.sleep(0.5)
    for s in socks:
        s.close()
    print("   %d answers, worst %.3f s; at least %d slow connections open at each check" %
          (len(answers), worst, least_open))
    check(set(answers) == {200}, "answers %r" % sorted(set(answers)))
    check(worst < 1.0, "slowest answer %.2f s" % worst)


def t_deadline():
    s = slow_conn("127.0.0.100")
    time.sleep(0.2)
    trickle([s], b"GET /healthz HTTP/1.1\r\n")
    t0 = time.time()
    closed_at = None
    while time.time() - t0 < 10:
        trickle([s])
        if not alive(s):
            closed_at = time.time() - t0
            break
        time.sleep(0.25)
    s.close()
    check(closed_at is not None, "a trickling connection was never closed")
    if closed_at is not None:
        print("   trickling connection closed after %.1f s" % closed_at)
        check(2.0 < closed_at < 5.0, "closed after %.1f s (deadline 3 s)" % closed_at)


def t_per_ip():
    socks = [slow_conn("127.0.0.101") for _ in range(100)]
    time.sleep(1.0)
    trickle(socks, b"GET /healthz HTTP/1.1\r\n")
    time.sleep(0.5)
    n = sum(1 for s in socks if alive(s))
    for s in socks:
        s.close()
    print("   %d of 100 connections from one address kept" % n)
    check(n <= 64, "%d connections kept from one address" % n)
    check(n >= 32, "the cap is not far below its setting: %d" % n)
    check_eq(f.get("/healthz").status, 200, "others still served")


run_test("sec_slowloris_1000", t_1000)
msg = f.stop()
if msg:
    print("FAIL: ferryd_shutdown_sec_slow: %s" % msg)
    import apitest
    apitest.FAILED += 1
else:
    print("PASS: ferryd_shutdown_sec_slow")
os.environ["FERRY_HTTP_HEADER_TIMEOUT_S"] = "3"
f = start("sec_slow3", TESTS)
run_test("sec_slowloris_header_deadline", t_deadline)
run_test("sec_slowloris_per_ip_cap", t_per_ip)
finish(f)
