#!/usr/bin/env python3
"""Fleet campaigns, API side (issue 11), on a ferryd with no workers (no
advancer runs, so every state seen is the one the API set):
bad input is a clear 4xx before anything is stored; membership is the
selector's matches at creation, stored per cluster in list order with the
canary and waves; the Idempotency-Key replays; pause / resume (with a higher
budget) / approve / cancel follow the state machine with reasons; viewers
read, operators act, another tenant gets 404; every action is audited.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import check, check_eq, finish, is_problem, new_uuid, run_test, start  # noqa: E402

TESTS = ["campaign_bad_input", "campaign_membership_and_waves", "campaign_idempotency",
         "campaign_on_failure_rollback", "campaign_controls", "campaign_cancel", "campaign_tenancy_roles", "campaign_audit",
         "campaign_list_pages", "campaign_openapi", "campaign_metrics"]

charts = os.path.join(os.environ.get("FERRY_SHARED", "../shared"), "charts")
f = start("campaigns", TESTS, extra_args=["--charts-dir", charts])
acme = f.tenant("acme")
other = f.tenant("other")
OP = f.token(acme, "operator", name="alice")
VIEW = f.token(acme, "viewer")
OTHER = f.token(other, "operator")

ids = {}


def new_cluster(name, labels, token=OP):
    r = f.post("/v1/clusters", {"name": name, "profile": "tke", "api_server": "https://10.0.0.1",
                                "token": "tok-" + name, "labels": labels}, token)
    check_eq(r.status, 201, "cluster %s: %r" % (name, r))
    ids[name] = r.json()["id"]
    return ids[name]


for i in range(10):
    new_cluster("p%02d" % i, {"env": "prod"})
new_cluster("s1", {"env": "staging"})
new_cluster("o1", {"env": "prod"}, OTHER)


def camp(**kw):
    body = {"name": "c", "selector": "env=prod", "kind": "preflight"}
    body.update(kw)
    return body


def t_bad_input():
    cases = [
        (camp(selector="env=prod,,tier=web"), 400, "selector"),
        (camp(selector="bad key!=x"), 400, "selector"),
        (camp(selector="=x"), 400, "selector"),
        (camp(selector=""), 400, "selector"),
        (camp(selector="env=nowhere"), 422, "matches no cluster"),
        (camp(kind="frobnicate"), 400, "kind"),
        (camp(kind="upgrade", params={"chart_verison": "1.18.3"}), 422, "chart_verison"),
        (camp(name=""), 400, "name"),
        (camp(params=[1]), 400, "params"),
        (camp(strategy={"max_in_flight": "0%"}), 400, "percentage"),
        (camp(strategy={"max_in_flight": "101%"}), 400, "percentage"),
        (camp(strategy={"max_failures": "150%"}), 400, "percentage"),
        (camp(strategy={"waves": ["0%"]}), 400, "percentage"),
        (camp(strategy={"waves": []}), 400, "waves"),
        (camp(strategy={"max_in_flight": 0}), 400, "max_in_flight"),
        (camp(strategy={"canary": -1}), 400, "canary"),
        (camp(strategy={"canary": 11}), 400, "canary"),
        (camp(strategy={"pause_between_waves": "soon"}), 400, "pause_between_waves"),
        (camp(strategy={"bogus": 1}), 400, "bogus"),
        (camp(strategy={"window": {"cron": "0 2 * *", "duration": "4h"}}), 400, "5 fields"),
        (camp(strategy={"window": {"cron": "61 2 * * *", "duration": "4h"}}), 400, "minute"),
        (camp(strategy={"window": {"cron": "0 2 * * *"}}), 400, "duration"),
        (camp(strategy={"window": {"cron": "0 2 * * *", "duration": "4h", "time_zone": "Mars/Olympus"}}),
         400, "time zone"),
        (camp(strategy={"window": {"cron": "0 0 31 2 *", "duration": "4h"}}), 422, "never opens"),
        (camp(kind="upgrade", params={"chart_version": "9.9.9"}), 422, "9.9.9"),
        (camp(on_failure="rollback", kind="preflight"), 422, "rollback"),
        (camp(on_failure="retry"), 400, "on_failure"),
        (camp(extra=1), 400, "extra"),
    ]
    for body, status, word in cases:
        r = f.post("/v1/campaigns", body, OP)
        is_problem(r, status)
        check(word.lower() in r.text.lower(), "%r: %r should mention %r" % (body, r, word))
    check_eq(f.sql("SELECT count(*) FROM campaigns"), "0", "nothing stored")
    check_eq(f.sql("SELECT count(*) FROM jobs"), "0", "no job started")


def t_membership():
    r = f.post("/v1/campaigns", camp(name="m", strategy={"canary": 1, "waves": ["20%", "50%", "100%"],
                                                         "max_in_flight": "30%", "max_failures": 2}), OP)
    check_eq(r.status, 201, "create %r" % r)
    c = r.json()
    check_eq(r.header("Location"), "/v1/campaigns/" + c["id"], "Location")
    check_eq((c["state"], c["total"], c["canary"], c["max_in_flight"], c["max_failures"], c["waves"]),
             ("pending", 10, 1, 3, 2, 3), "resolved strategy")
    check_eq(c["counts"]["pending"], 10, "counts")
    check_eq([w["total"] for w in c["wave_progress"]], [1, 2, 3, 4], "canary + waves of 20/50/100% of 9")
    cl = f.get("/v1/campaigns/%s/clusters?limit=200" % c["id"], VIEW).json()["items"]
    check_eq([x["cluster_name"] for x in cl], ["p%02d" % i for i in range(10)], "list order, prod only")
    check_eq([x["wave"] for x in cl], [0, 1, 1, 2, 2, 2, 3, 3, 3, 3], "waves")
    check(all(x["state"] == "pending" and x["job_id"] is None for x in cl), "all pending")
    # Membership is fixed at creation: a cluster labelled prod later is not in.
    new_cluster("late", {"env": "prod"})
    check_eq(f.get("/v1/campaigns/" + c["id"], VIEW).json()["total"], 10, "total stays")
    f.delete("/v1/clusters/" + ids["late"], OP)
    ids["m"] = c["id"]


def t_idempotency():
    key = {"Idempotency-Key": "fleet-2026-12-07"}
    r1 = f.post("/v1/campaigns", camp(name="i"), OP, headers=key)
    check_eq(r1.status, 201, "first")
    r2 = f.post("/v1/campaigns", camp(name="i"), OP, headers=key)
    check_eq(r2.status, 200, "replay")
    check_eq(r2.json()["id"], r1.json()["id"], "same campaign")
    check_eq(f.sql("SELECT count(*) FROM campaigns WHERE idempotency_key = 'fleet-2026-12-07'"), "1", "one row")
    r3 = f.post("/v1/campaigns", camp(name="i"), OTHER, headers=key)
    check_eq(r3.status, 201, "another tenant's key is its own")


def t_on_failure():
    # The campaign's on_failure is the job-level remediation of every member.
    r = f.post("/v1/campaigns", camp(name="rb", kind="upgrade", on_failure="rollback",
                                     params={"chart_version": "1.18.3"}), OP)
    check_eq(r.status, 201, "create %r" % r)
    check_eq(r.json()["params"].get("on_failure"), "rollback", "members' jobs carry on_failure")
    stored = f.sql("SELECT params->>'on_failure' FROM campaigns WHERE id = '%s'" % r.json()["id"])
    check_eq(stored, "rollback", "stored with the campaign")


def t_controls():
    r = f.post("/v1/campaigns", camp(name="ctl", strategy={"max_failures": 1}), OP)
    cid = r.json()["id"]
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, None, OP), 409)
    is_problem(f.post("/v1/campaigns/%s/approve" % cid, None, OP), 409)
    r = f.post("/v1/campaigns/%s/pause" % cid, None, OP)
    check_eq(r.status, 200, "pause %r" % r)
    check_eq((r.json()["state"], r.json()["pause_kind"], r.json()["reason"]), ("paused", "user", "paused by alice"),
             "paused with reason")
    is_problem(f.post("/v1/campaigns/%s/pause" % cid, None, OP), 409)
    # The budget: resume may raise it, never to or below the failures so far.
    f.sql("UPDATE campaign_clusters SET state = 'failed', error = 'x' WHERE campaign_id = '%s' AND position < 2" % cid)
    f.sql("UPDATE campaigns SET pause_kind = 'budget', reason = 'failure budget reached: 2 of 1' WHERE id = '%s'" % cid)
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, None, OP), 422)
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, {"max_failures": 2}, OP), 422)
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, {"max_failures": 0}, OP), 400)
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, {"budget": 5}, OP), 400)
    r = f.post("/v1/campaigns/%s/resume" % cid, {"max_failures": 5}, OP)
    check_eq(r.status, 200, "resume %r" % r)
    check_eq((r.json()["state"], r.json()["max_failures"], r.json()["reason"]), ("running", 5, None), "resumed")
    # An approval gate is lifted by approve, not resume.
    f.sql("UPDATE campaigns SET state = 'paused', pause_kind = 'approval', reason = 'approval needed for wave 1'"
          " WHERE id = '%s'" % cid)
    is_problem(f.post("/v1/campaigns/%s/resume" % cid, None, OP), 409)
    r = f.post("/v1/campaigns/%s/approve" % cid, None, OP)
    check_eq(r.status, 200, "approve %r" % r)
    check_eq((r.json()["state"], r.json()["approved_wave"]), ("running", 1), "approved wave 1")


def t_cancel():
    r = f.post("/v1/campaigns", camp(name="cx"), OP)
    cid = r.json()["id"]
    r = f.post("/v1/campaigns/%s/cancel" % cid, None, OP)
    check_eq(r.status, 200, "cancel %r" % r)
    c = r.json()
    check_eq((c["state"], c["reason"], c["counts"]["cancelled"]), ("cancelled", "cancelled by alice", 10), "cancelled")
    check(c["finished_at"], "finished_at")
    for a in ("pause", "resume", "approve", "cancel"):
        p = is_problem(f.post("/v1/campaigns/%s/%s" % (cid, a), None, OP), 409)
        check("already finished" in p["detail"], "detail %r" % p)


def t_tenancy():
    cid = ids["m"]
    for path in ("/v1/campaigns/" + cid, "/v1/campaigns/%s/clusters" % cid):
        is_problem(f.get(path, OTHER), 404)
        check_eq(f.get(path, VIEW).status, 200, "viewer reads " + path)
    for a in ("pause", "resume", "approve", "cancel"):
        is_problem(f.post("/v1/campaigns/%s/%s" % (cid, a), None, OTHER), 404)
        is_problem(f.post("/v1/campaigns/%s/%s" % (cid, a), None, VIEW), 403)
    is_problem(f.post("/v1/campaigns", camp(), VIEW), 403)
    is_problem(f.get("/v1/campaigns/" + new_uuid(), OP), 404)
    is_problem(f.post("/v1/campaigns", camp(), f.platform_token), 403)
    # The other tenant's list holds only its own campaigns; its prod
    # selector never reaches acme's clusters.
    items = f.get("/v1/campaigns?limit=200", OTHER).json()["items"]
    check(all(c["id"] != cid for c in items), "list scoped")
    r = f.post("/v1/campaigns", camp(name="o"), OTHER)
    check_eq(r.json()["total"], 1, "other tenant's selector matches its one cluster")


def t_audit():
    cid = ids["m"]
    f.post("/v1/campaigns/%s/pause" % cid, None, OP)
    f.post("/v1/campaigns/%s/resume" % cid, None, OP)
    rows = f.sql("SELECT method || ' ' || path || ' ' || status || ' ' || coalesce(target, '')"
                 " FROM audit_log WHERE path LIKE '/v1/campaigns%%' ORDER BY id")
    check("POST /v1/campaigns/%s/pause 200 %s" % (cid, cid) in rows, "pause audited: %s" % rows)
    check("POST /v1/campaigns/%s/resume 200 %s" % (cid, cid) in rows, "resume audited")
    check("POST /v1/campaigns 201 %s" % cid in rows, "create audited with target")
    check("POST /v1/campaigns 400" in rows, "refused create audited too")


def t_pages():
    seen = []
    cursor = None
    while True:
        q = "/v1/campaigns?limit=2" + ("&cursor=" + cursor if cursor else "")
        page = f.get(q, VIEW).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    check_eq(len(seen), len(set(seen)), "no repeats")
    check_eq(len(seen), int(f.sql("SELECT count(*) FROM campaigns WHERE tenant_id = '%s'" % acme)), "all")
    check_eq(f.get("/v1/campaigns?state=cancelled", VIEW).json()["items"][0]["name"], "cx", "state filter")
    is_problem(f.get("/v1/campaigns?state=done", VIEW), 400)
    is_problem(f.get("/v1/campaigns?cursor=zzz", VIEW), 400)
    cid = ids["m"]
    p1 = f.get("/v1/campaigns/%s/clusters?limit=4" % cid, VIEW).json()
    p2 = f.get("/v1/campaigns/%s/clusters?limit=4&cursor=%s" % (cid, p1["next_cursor"]), VIEW).json()
    check_eq([x["position"] for x in p1["items"] + p2["items"]], list(range(8)), "cluster pages")
    is_problem(f.get("/v1/campaigns/%s/clusters?cursor=-1" % cid, VIEW), 400)
    is_problem(f.get("/v1/campaigns/%s/clusters?state=bogus" % cid, VIEW), 400)
    check_eq(len(f.get("/v1/campaigns/%s/clusters?state=pending" % cid, VIEW).json()["items"]), 10, "filter")


def t_openapi():
    doc = f.get("/v1/openapi.json").json()
    for m, p in [("post", "/v1/campaigns"), ("get", "/v1/campaigns"), ("get", "/v1/campaigns/{id}"),
                 ("get", "/v1/campaigns/{id}/clusters"), ("post", "/v1/campaigns/{id}/pause"),
                 ("post", "/v1/campaigns/{id}/resume"), ("post", "/v1/campaigns/{id}/approve"),
                 ("post", "/v1/campaigns/{id}/cancel")]:
        check(m in doc["paths"].get(p, {}), "openapi lacks %s %s" % (m, p))
    for s in ("Campaign", "CampaignCreate", "CampaignPage", "CampaignClusterPage"):
        check(s in doc["components"]["schemas"], "schema " + s)


def t_metrics():
    text = f.get("/metrics").text
    for state in ("pending", "running", "paused", "succeeded", "failed", "cancelled"):
        want = f.sql("SELECT count(*) FROM campaigns WHERE state = '%s'" % state)
        check('ferry_campaigns{state="%s"} %s\n' % (state, want) in text, "ferry_campaigns %s = %s" % (state, want))
    want = f.sql("SELECT count(*) FROM campaign_clusters x JOIN campaigns k ON k.id = x.campaign_id"
                 " WHERE k.state IN ('pending', 'running', 'paused') AND x.state = 'pending'")
    check(int(want) > 0, "some pending members")
    check('ferry_campaign_clusters{state="pending"} %s\n' % want in text, "members pending = %s" % want)
    check('ferry_campaign_clusters{state="skipped"} 0\n' in text, "every state present")


for name, fn in zip(TESTS, [t_bad_input, t_membership, t_idempotency, t_on_failure, t_controls, t_cancel, t_tenancy,
                            t_audit, t_pages, t_openapi, t_metrics]):
    run_test(name, fn)
finish(f)
