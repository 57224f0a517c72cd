#!/usr/bin/env python3
"""API integration: jobs, idempotency, the one-active-job rule, SSE,
openapi.json and /metrics.

ferryd runs with no workers, so jobs stay queued and every state seen here
comes from the API alone.
"""
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import (check, check_eq, finish, is_problem, run_test, start)  # noqa: E402

TESTS = ["api_jobs_create_and_get", "api_jobs_revisions", "api_jobs_idempotency", "api_jobs_concurrent_one_active",
         "api_jobs_list_filters", "api_jobs_cancel", "api_jobs_events", "api_jobs_sse_stream",
         "api_openapi_every_route", "api_metrics", "api_static_console", "api_job_params_schema",
         "api_job_params_refused"]
f = start("jobs", TESTS)
acme = f.tenant("acme")
OP = f.token(acme, "operator")
VIEW = f.token(acme, "viewer")


def new_cluster(name):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "tok-" + name}, OP)
    check_eq(r.status, 201, "cluster %s: %r" % (name, r))
    return r.json()["id"]


def t_create_get():
    cid = new_cluster("j1")
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": {"chart_version": "1.18.3"}}, OP)
    check_eq(r.status, 202, "202 %r" % r)
    job = r.json()
    check_eq(r.header("Location"), "/v1/jobs/" + job["id"], "Location")
    for k, v in (("cluster_id", cid), ("cluster_name", "j1"), ("kind", "install"), ("state", "queued"),
                 ("params", {"chart_version": "1.18.3"}), ("cancel_requested", False), ("error", None)):
        check_eq(job[k], v, k)
    check(isinstance(job["phases"], list), "phases list")
    g = f.get("/v1/jobs/" + job["id"], VIEW)
    check_eq(g.status, 200, "viewer reads job")
    check_eq(g.json()["id"], job["id"], "same job")
    check_eq(f.get("/v1/clusters/" + cid, VIEW).json()["active_job_id"], job["id"], "active job")
    # Every lifecycle kind is accepted and queued (one cluster each: one
    # active job per cluster).
    for kind in ("rollback", "uninstall", "adopt", "check", "repair"):
        other = new_cluster("j1-" + kind)
        r = f.post("/v1/clusters/%s/jobs" % other, {"kind": kind, "params": {"dry_run": True}}, OP)
        check_eq(r.status, 202, "%s accepted: %r" % (kind, r))
        check_eq(r.json()["kind"], kind, "kind")
        check_eq(f.get("/v1/clusters/" + other, VIEW).json()["active_job_id"], r.json()["id"], "queued")
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "destroy"}, OP)
    is_problem(r, 400)
    check("check" in r.json()["detail"] and "repair" in r.json()["detail"], "the kinds are named: %r" % r.json())


def t_revisions():
    cid = new_cluster("j-rev")
    r = f.get("/v1/clusters/%s/revisions" % cid, VIEW)
    check_eq(r.status, 200, "viewer lists revisions %r" % r)
    check_eq(r.json(), {"items": []}, "no revisions yet")
    tid = f.sql("SELECT tenant_id FROM clusters WHERE id = '%s'" % cid)
    f.sql("INSERT INTO release_revisions (tenant_id, cluster_id, revision, release_name, namespace, status,"
          " chart_name, chart_version, app_version, description, values, manifest) VALUES"
          " ('%s', '%s', 1, 'cilium', 'kube-system', 'superseded', 'cilium', '1.18.2', '1.18.2', 'Install complete',"
          " '{\"a\": 1}', 'm1'), ('%s', '%s', 2, 'cilium', 'kube-system', 'deployed', 'cilium', '1.18.3',"
          " '1.18.3', 'Upgrade complete', '{\"a\": 2}', 'm2')" % (tid, cid, tid, cid))
    r = f.get("/v1/clusters/%s/revisions" % cid, VIEW)
    items = r.json()["items"]
    check_eq([i["revision"] for i in items], [2, 1], "newest first")
    for k in ("status", "chart_name", "chart_version", "app_version", "description", "job_id", "started_by",
              "created_at", "updated_at"):
        check(k in items[0], "item has %s" % k)
    check("manifest" not in items[0] and "values" not in items[0], "the list is short")
    r = f.get("/v1/clusters/%s/revisions/2" % cid, VIEW)
    check_eq(r.status, 200, "one revision")
    check_eq((r.json()["values"], r.json()["manifest"], r.json()["status"]), ({"a": 2}, "m2", "deployed"), "full form")
    is_problem(f.get("/v1/clusters/%s/revisions/3" % cid, VIEW), 404)
    is_problem(f.get("/v1/clusters/%s/revisions/0" % cid, VIEW), 404)
    is_problem(f.get("/v1/clusters/%s/revisions/x1" % cid, VIEW), 404)
    is_problem(f.post("/v1/clusters/%s/revisions" % cid, {}, OP), 405)


def t_idempotency():
    cid = new_cluster("j2")
    h = {"Idempotency-Key": "deploy-42"}
    r1 = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP, headers=h)
    r2 = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP, headers=h)
    check_eq(r1.status, 202, "first")
    check_eq(r2.status, 202, "retry")
    check_eq(r2.json()["id"], r1.json()["id"], "retry returns the same job")
    check_eq(r2.header("Location"), r1.header("Location"), "same Location")
    # Still the same after the job finished (cancelled here).
    f.post("/v1/jobs/%s/cancel" % r1.json()["id"], None, OP, content_type=None)
    r3 = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP, headers=h)
    check_eq(r3.json()["id"], r1.json()["id"], "replay after finish")
    check_eq(r3.json()["state"], "cancelled", "replay shows the current state")
    # A new key makes a new job.
    r4 = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP, headers={"Idempotency-Key": "deploy-43"})
    check_eq(r4.status, 202, "new key")
    check(r4.json()["id"] != r1.json()["id"], "new job")
    check_eq(f.sql("SELECT count(*) FROM jobs WHERE cluster_id = '%s'" % cid), "2", "two rows")
    is_problem(f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP,
                      headers={"Idempotency-Key": "k" * 300}), 400)


def t_concurrent():
    for round_ in range(3):
        cid = new_cluster("race-%d" % round_)
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(16)

        def worker(i):
            barrier.wait()
            r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r.status == 202]
        conflicts = [r for r in results if r.status == 409]
        check_eq(len(ok), 1, "exactly one 202 (statuses %s)" % sorted(r.status for r in results))
        check_eq(len(conflicts), 15, "the rest 409")
        winner = ok[0].json()["id"]
        for r in conflicts:
            p = is_problem(r, 409)
            check(winner in p["detail"], "409 names the active job: %r" % p)
        check_eq(f.sql("SELECT count(*) FROM jobs WHERE cluster_id = '%s'" % cid), "1", "one row")
    # Concurrent retries with one Idempotency-Key all get the same job.
    cid = new_cluster("race-idem")
    ids = []

    def retry():
        r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP, headers={"Idempotency-Key": "same"})
        ids.append((r.status, r.json().get("id")))
    threads = [threading.Thread(target=retry) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq({s for s, _ in ids}, {202}, "all retries 202: %r" % ids)
    check_eq(len({i for _, i in ids}), 1, "one job for all retries")


def t_list_filters():
    cid = new_cluster("j-list")
    made = []
    for i in range(5):
        r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "preflight"}, OP)
        check_eq(r.status, 202, "job %d" % i)
        made.append(r.json()["id"])
        f.post("/v1/jobs/%s/cancel" % made[-1], None, OP, content_type=None)
    r = f.get("/v1/jobs?cluster_id=%s&limit=2" % cid, VIEW)
    check_eq(r.status, 200, "list")
    seen, page = [], r.json()
    while True:
        seen += [j["id"] for j in page["items"]]
        if not page["next_cursor"]:
            break
        page = f.get("/v1/jobs?cluster_id=%s&limit=2&cursor=%s" % (cid, page["next_cursor"]), VIEW).json()
    check_eq(seen, list(reversed(made)), "newest first, every job once")
    r = f.get("/v1/jobs?state=cancelled&cluster_id=" + cid, VIEW)
    check_eq(len(r.json()["items"]), 5, "state filter")
    r = f.get("/v1/jobs?state=queued&cluster_id=" + cid, VIEW)
    check_eq(r.json()["items"], [], "no queued")


def t_cancel():
    cid = new_cluster("j-cancel")
    jid = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP).json()["id"]
    is_problem(f.post("/v1/jobs/%s/cancel" % jid, None, VIEW, content_type=None), 403)
    r = f.post("/v1/jobs/%s/cancel" % jid, None, OP, content_type=None)
    check_eq(r.status, 202, "cancel %r" % r)
    check_eq(r.json()["state"], "cancelled", "queued -> cancelled")
    p = is_problem(f.post("/v1/jobs/%s/cancel" % jid, None, OP, content_type=None), 409)
    check("finished" in p["detail"], p["detail"])
    check_eq(f.get("/v1/clusters/" + cid, OP).json()["active_job_id"], None, "no active job")
    check_eq(f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP).status, 202, "new job allowed")


def t_events():
    cid = new_cluster("j-events")
    jid = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP).json()["id"]
    f.sql("INSERT INTO job_events (job_id, level, phase, message) SELECT '%s', 'info', 'preflight',"
          " 'line ' || g FROM generate_series(1, 7) g" % jid)
    r = f.get("/v1/jobs/%s/events" % jid, VIEW)
    check_eq(r.status, 200, "events")
    items = r.json()["items"]
    check_eq([e["message"] for e in items], ["line %d" % i for i in range(1, 8)], "log order")
    for e in items:
        check(set(e) >= {"id", "at", "level", "phase", "message"}, "event shape %r" % e)
    r = f.get("/v1/jobs/%s/events?after=%d&limit=2" % (jid, items[3]["id"]), VIEW)
    check_eq([e["message"] for e in r.json()["items"]], ["line 5", "line 6"], "after + limit")


def read_sse(path, token, timeout):
    """Read an SSE stream to its end; returns (status, headers, events, seconds)."""
    t0 = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=timeout)
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    status, ctype = r.status, r.getheader("Content-Type")
    events = []
    if status == 200:
        cur = {}
        for raw in r:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if cur:
                    events.append(cur)
                cur = {}
            elif line.startswith(":"):
                continue
            else:
                k, _, v = line.partition(": ")
                cur[k] = v
                cur["_t"] = time.time()
    conn.close()
    return status, ctype, events, time.time() - t0


def t_sse():
    cid = new_cluster("j-sse")
    jid = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install"}, OP).json()["id"]
    f.sql("INSERT INTO job_events (job_id, message) VALUES ('%s', 'first'), ('%s', 'second')" % (jid, jid))
    out = {}

    def reader():
        out["r"] = read_sse("/v1/jobs/%s/events/stream" % jid, VIEW, 30)
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(1.0)
    # Events arrive live: the NOTIFY that db/jobs.c sends with every event
    # wakes the stream (a psql insert sends it by hand).
    f.sql("INSERT INTO job_events (job_id, message) VALUES ('%s', 'third');"
          " SELECT pg_notify('ferry_job_events', '%s')" % (jid, jid))
    time.sleep(1.5)
    check(t.is_alive(), "stream ended while the job was still queued")
    cancel_at = time.time()
    f.post("/v1/jobs/%s/cancel" % jid, None, OP, content_type=None)
    t.join(15)
    check(not t.is_alive(), "stream did not end after the job finished")
    status, ctype, events, _ = out["r"]
    check_eq(status, 200, "stream status")
    check(ctype.startswith("text/event-stream"), "content type %s" % ctype)
    logs = [json.loads(e["data"])["message"] for e in events if e.get("event") == "log"]
    check_eq(logs[:3], ["first", "second", "third"], "log events in order")
    third = [e for e in events if e.get("event") == "log" and json.loads(e["data"])["message"] == "third"][0]
    check(third["_t"] < cancel_at, "the third event came only with the final state (not live)")
    check(third.get("id"), "log events carry an id for Last-Event-ID")
    jobs = [json.loads(e["data"]) for e in events if e.get("event") == "job"]
    check(jobs, "no job events")
    check_eq(jobs[0]["state"], "queued", "first job event")
    check_eq(jobs[-1]["state"], "cancelled", "last job event is the final state")
    # A finished job's stream replays and ends at once; Last-Event-ID resumes.
    status, _, events, secs = read_sse("/v1/jobs/%s/events/stream" % jid, VIEW, 10)
    check(secs < 5, "finished stream took %.1fs" % secs)
    check_eq(len([e for e in events if e.get("event") == "log"]), len(logs), "replay")
    # Last-Event-ID resumes after that event.
    conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
    conn.request("GET", "/v1/jobs/%s/events/stream" % jid,
                 headers={"Authorization": "Bearer " + VIEW, "Last-Event-ID": third["id"]})
    body = conn.getresponse().read().decode()
    conn.close()
    check("third" not in body and "first" not in body and "cancelled" in body, "resume: %r" % body[:300])


def t_openapi():
    r = f.get("/v1/openapi.json")
    check_eq(r.status, 200, "openapi")
    doc = r.json()
    check(doc["openapi"].startswith("3."), "version")
    expected = [("get", "/v1/me"), ("post", "/v1/tenants"), ("get", "/v1/tenants"),
                ("delete", "/v1/tenants/{id}"), ("post", "/v1/tokens"), ("get", "/v1/tokens"),
                ("delete", "/v1/tokens/{id}"), ("post", "/v1/clusters"), ("get", "/v1/clusters"),
                ("get", "/v1/clusters/{id}"), ("patch", "/v1/clusters/{id}"),
                ("delete", "/v1/clusters/{id}"), ("post", "/v1/clusters/{id}/jobs"), ("get", "/v1/jobs"),
                ("get", "/v1/jobs/{id}"), ("get", "/v1/jobs/{id}/events"),
                ("get", "/v1/jobs/{id}/events/stream"), ("post", "/v1/jobs/{id}/cancel"),
                ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/v1/openapi.json"),
                ("get", "/v1/clusters/{id}/revisions"), ("get", "/v1/clusters/{id}/revisions/{revision}")]
    for method, path in expected:
        check(path in doc["paths"] and method in doc["paths"][path], "openapi lacks %s %s" % (method, path))
    # Every $ref resolves.
    refs = []

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "$ref":
                    refs.append(v)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    for ref in refs:
        name = ref.rsplit("/", 1)[-1]
        check(name in doc["components"]["schemas"], "dangling $ref %s" % ref)
    check("credentials" not in json.dumps(doc["components"]["schemas"]["Cluster"]), "cluster schema")


def t_metrics():
    f.get("/v1/me", OP)
    f.get("/v1/clusters/00000000-0000-0000-0000-000000000000", OP)
    r = f.get("/metrics")
    check_eq(r.status, 200, "metrics")
    check(r.header("Content-Type").startswith("text/plain"), "content type")
    t = r.text
    check('ferry_http_requests_total{method="GET",route="/v1/me",status="200"}' in t, "request counter")
    check('route="/v1/clusters/{id}",status="404"' in t, "route pattern, not raw path")
    check("00000000-0000" not in t, "raw ids in metric labels")
    check('ferry_http_request_duration_seconds_bucket{method="GET",route="/v1/me",le="+Inf"}' in t,
          "histogram")
    check('ferry_jobs{state="queued"}' in t and "ferry_job_queue_depth" in t, "job gauges")
    check("ferry_workers_busy 0" in t, "worker gauge")
    queued = int(f.sql("SELECT count(*) FROM jobs WHERE state = 'queued'"))
    check('ferry_jobs{state="queued"} %d' % queued in t, "queued gauge matches the database")


def t_static():
    r = f.get("/")
    index = os.path.join(os.environ.get("FERRY_SRC", "."), "web", "index.html")
    if os.path.exists(index):
        check_eq(r.status, 200, "console index")
        check(r.header("Content-Type").startswith("text/html"), "html")
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/web/../../etc/passwd", "/nope.js"):
        r = f.get(path)
        check(r.status == 404, "%s -> %d" % (path, r.status))
        check("root:" not in r.text, "path traversal")
    is_problem(f.request("POST", "/index.html", raw=b"x", content_type="text/plain"), 405)


def t_params_schema():
    # Every kind with a params schema: descriptions and defaults, served at
    # /v1/job-kinds and inside the OpenAPI document's JobCreate.
    r = f.get("/v1/job-kinds", VIEW)
    check_eq(r.status, 200, "job-kinds %r" % r)
    kinds = {k["kind"]: k for k in r.json()["items"]}
    for k in ("install", "upgrade", "rollback", "uninstall", "adopt", "check", "repair", "preflight"):
        check(k in kinds, "job-kinds lacks %s" % k)
        check_eq(kinds[k]["params_schema"]["additionalProperties"], False, "%s closed" % k)
    props = kinds["install"]["params_schema"]["properties"]
    for name in ("chart_version", "values_yaml", "set", "image_mirror", "dry_run", "wait_timeout_s",
                 "keep_kube_proxy", "profile_options", "l2", "masquerade", "nodepool", "reuse_values",
                 "max_history", "on_failure", "retries"):
        check(name in props, "install params lack %s" % name)
        check(props[name].get("description"), "%s has no description" % name)
    check_eq(props["chart_version"]["default"], "1.18.3", "chart_version default")
    check_eq(props["wait_timeout_s"]["default"], 600, "wait_timeout_s default")
    for k in kinds:   # the test-only params of old are gone from every kind
        for gone in ("test_sleep_ms", "test_fail_first"):
            check(gone not in kinds[k]["params_schema"]["properties"], "%s documents %s" % (k, gone))
    check("revision" in kinds["rollback"]["params_schema"]["properties"], "rollback revision")
    check("ignore" in kinds["check"]["params_schema"]["properties"], "check ignore")
    check("release_name" in kinds["adopt"]["params_schema"]["properties"], "adopt release_name")
    doc = f.get("/v1/openapi.json").json()
    alts = doc["components"]["schemas"]["JobCreate"]["oneOf"]
    by_kind = {a["properties"]["kind"]["const"]: a for a in alts}
    check_eq(by_kind["install"]["properties"]["params"], kinds["install"]["params_schema"], "openapi = job-kinds")
    check("/v1/job-kinds" in doc["paths"], "openapi lists /v1/job-kinds")


def t_params_refused():
    # Unknown, mistyped and out-of-range params: 422 naming the field, and no
    # job queued.
    cid = new_cluster("params-c")
    cases = [
        ({"chart_verison": "1.12.0"}, "params.chart_verison", "did you mean chart_version"),
        ({"chart_version": 1.12}, "params.chart_version", "must be a string"),
        ({"dry_run": "yes"}, "params.dry_run", "must be a boolean"),
        ({"wait_timeout_s": 0}, "params.wait_timeout_s", "at least 1"),
        ({"l2": {"cidrs": ["10.1.0.0/24"], "interface": ["eth0"]}}, "params.l2.interface", "did you mean interfaces"),
        ({"l2": {"cidrs": [7]}}, "params.l2.cidrs[0]", "must be a string"),
        ({"profile_options": {"pod_cidr": "10.0.0.0/16", "xdp": "true"}}, "params.profile_options.xdp", "boolean"),
        ({"masquerade": {}}, "params.masquerade.vpc_cidr", "required"),
        ({"revision": 2}, "params.revision", "unknown parameter"),        # rollback's, not install's
    ]
    for params, field, text in cases:
        r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": params}, OP)
        is_problem(r, 422)
        errs = r.json().get("errors") or [{}]
        check_eq(errs[0].get("field"), field, "field for %r" % params)
        check(text in errs[0].get("message", "") and field in r.json()["detail"], "message for %r: %r" % (params, r))
    # The test-only params of old (test_sleep_ms, test_fail_first) are
    # unknown parameters like any other, for every kind.
    for kind in ("install", "upgrade", "rollback", "uninstall", "adopt", "check", "repair", "preflight"):
        for gone in ("test_sleep_ms", "test_fail_first"):
            r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": kind, "params": {gone: 10}}, OP)
            is_problem(r, 422)
            errs = r.json().get("errors") or [{}]
            check_eq(errs[0].get("field"), "params." + gone, "%s %s refused" % (kind, gone))
            check("unknown parameter" in errs[0].get("message", ""), "%s %s: %r" % (kind, gone, r))
    check_eq(f.get("/v1/jobs?cluster_id=" + cid, OP).json()["items"], [], "nothing queued")
    # The lifecycle kinds' params are known to the schema.
    r = f.post("/v1/clusters/%s/jobs" % cid, {"kind": "install", "params": {"reuse_values": True, "max_history": 3,
                                                                           "on_failure": "rollback"}}, OP)
    check_eq(r.status, 202, "lifecycle params accepted %r" % r)


run_test("api_jobs_create_and_get", t_create_get)
run_test("api_jobs_revisions", t_revisions)
run_test("api_jobs_idempotency", t_idempotency)
run_test("api_jobs_concurrent_one_active", t_concurrent)
run_test("api_jobs_list_filters", t_list_filters)
run_test("api_jobs_cancel", t_cancel)
run_test("api_jobs_events", t_events)
run_test("api_jobs_sse_stream", t_sse)
run_test("api_openapi_every_route", t_openapi)
run_test("api_metrics", t_metrics)
run_test("api_static_console", t_static)
run_test("api_job_params_schema", t_params_schema)
run_test("api_job_params_refused", t_params_refused)
finish(f)
