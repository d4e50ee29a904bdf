"""The dashboard's server side and the API's description, black-box: the live
feed (GET /v1/dashboard/events) per caller, retrying a dead job, the OpenAPI
document and the pages' files, and the dispatcher checking bodies against
the document's schemas."""
import json
import os
import subprocess

import pytest
import requests

from conftest import BIN, PATIENCE, Server, assert_error


def cli(*args, stdin=None):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, check=True).stdout.strip()


class Tenants:
    def __init__(self, data):
        cli("user", "add", "ada", "--admin", "--data", data, stdin="ada-password\n")
        cli("user", "add", "bob", "--data", data, stdin="bob-password\n")
        cli("user", "add", "cy", "--data", data, stdin="cy-password\n")
        self.keys = {name: cli("key", "create", "--user", name, "--data", data) for name in ("bob", "cy")}
        self.keys["ada"] = cli("key", "create", "--user", "ada", "--scope", "admin", "--data", data)
        self.keys["worker"] = cli("key", "create", "--user", "ada", "--scope", "worker", "--data", data)
        self.server = Server(data, ["--max-attempts", "1"], secured=True).start()

    def call(self, who, method, path, body=None, **kw):
        return requests.request(method, self.server.url + path, json=body, timeout=PATIENCE,
                                headers={"Authorization": "Bearer " + self.keys[who]}, **kw)


@pytest.fixture
def tenants(tmpdir_path):
    t = Tenants(tmpdir_path)
    yield t
    assert t.server.stop() == 0


def snapshots(tenants, who, query=""):
    """The feed's snapshots as they come (a generator over one open stream)."""
    r = tenants.call(who, "GET", "/v1/dashboard/events" + query, stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/event-stream"
    try:
        event = None
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "snapshot":
                yield json.loads(line[6:])
    finally:
        r.close()


def first_where(stream, predicate, limit=50):
    for _, snap in zip(range(limit), stream):
        if predicate(snap):
            return snap
    raise AssertionError("no snapshot matched")


def test_the_feed_pushes_a_snapshot_at_once_and_another_when_a_job_changes(tenants):
    worker = tenants.call("worker", "POST", "/v1/workers", {"name": "box", "models": ["echo"], "capabilities": {"max_concurrency": 3}})
    assert worker.status_code == 201
    feed = snapshots(tenants, "ada")
    first = next(feed)
    assert first["me"] == {"name": "ada", "admin": True}
    assert first["jobs"] == [] and first["jobs_total"] == 0 and first["totals"]["submitted"] == 0
    assert [w["name"] for w in first["workers"]] == ["box"] and first["workers"][0]["slots"] == 3
    assert len(first["throughput"]["series"]) == 0 and first["throughput"]["bucket_ms"] == 10000
    job = tenants.call("bob", "POST", "/v1/jobs", {"model": "echo", "prompt": "hi"}).json()
    snap = first_where(feed, lambda s: len(s["jobs"]) == 1)
    assert snap["jobs"][0]["id"] == job["id"] and snap["jobs"][0]["status"] == "queued"
    assert snap["queues"] == [{"model": "echo", "queued": 1, "leased": 0, "served": True,
                              "next": {"id": job["id"], "priority": 0, "queued_at": job["created_at"]}}]
    assert snap["totals"]["submitted"] == 1
    # the worker takes it and finishes it: the feed shows it held, then the hour's throughput counts it
    leased = tenants.call("worker", "POST", f"/v1/workers/{worker.json()['id']}/lease", {"max_jobs": 1}).json()["jobs"][0]
    held = first_where(feed, lambda s: s["workers"][0]["jobs"])
    assert held["workers"][0]["jobs"] == [{"id": job["id"], "model": "echo"}] and held["workers"][0]["busy"] == 1
    done = tenants.call("worker", "POST", f"/v1/jobs/{job['id']}/complete",
                        {"lease": leased["lease"]["token"], "output": "ok", "usage": {"completion_tokens": 7}})
    assert done.status_code == 200
    counted = first_where(feed, lambda s: s.get("throughput") and s["throughput"]["series"])
    series = counted["throughput"]["series"][0]
    assert series["model"] == "echo" and sum(series["jobs"]) == 1 and sum(series["tokens"]) == 7
    assert len(series["jobs"]) == 360
    feed.close()


def test_each_caller_sees_only_what_the_api_shows_them(tenants):
    bobs = tenants.call("bob", "POST", "/v1/jobs", {"model": "echo", "prompt": "bob's"}).json()
    cys = tenants.call("cy", "POST", "/v1/jobs", {"model": "secret-model", "prompt": "cy's"}).json()
    bob = next(snapshots(tenants, "bob"))
    assert bob["me"] == {"name": "bob", "admin": False}
    assert [j["id"] for j in bob["jobs"]] == [bobs["id"]]
    assert bob["queues"] == []  # no worker serves either model: nobody learns other tenants' model names
    assert bob["workers"] == [] and "totals" not in bob  # the coordinator's totals are for admins
    # once echo is served, its queue shows; its next job is named to its owner (and admins) only
    tenants.call("worker", "POST", "/v1/workers", {"name": "box", "models": ["echo"]})
    cy_echo = tenants.call("cy", "POST", "/v1/jobs", {"model": "echo", "prompt": "cy's too"}).json()
    bob = next(snapshots(tenants, "bob"))
    assert [(q["model"], q["queued"], q["next"]["id"]) for q in bob["queues"]] == [("echo", 2, bobs["id"])]
    cy = next(snapshots(tenants, "cy"))
    assert [(q["model"], q["queued"], "next" in q) for q in cy["queues"]] == [("echo", 2, False)]
    assert {j["id"] for j in cy["jobs"]} == {cys["id"], cy_echo["id"]}
    ada = next(snapshots(tenants, "ada"))
    assert {j["id"] for j in ada["jobs"]} == {bobs["id"], cys["id"], cy_echo["id"]}
    assert {q["model"] for q in ada["queues"]} == {"echo", "secret-model"}
    only_cy = next(snapshots(tenants, "ada", "?user=cy&state=queued&model=secret-model"))
    assert [j["id"] for j in only_cy["jobs"]] == [cys["id"]]
    assert next(snapshots(tenants, "ada", "?model=echo"))["jobs_total"] == 2
    assert_error(tenants.call("bob", "GET", "/v1/dashboard/events?user=cy"), 403, "FORBIDDEN")
    assert_error(tenants.call("bob", "GET", "/v1/dashboard/events?state=sleeping"), 400, "INVALID_REQUEST")
    assert_error(tenants.call("ada", "GET", "/v1/dashboard/events?user=nobody"), 404, "NOT_FOUND")
    assert_error(requests.get(tenants.server.url + "/v1/dashboard/events", timeout=PATIENCE), 401, "UNAUTHORIZED")


def test_an_admin_retries_a_job_that_ended_without_completing(tenants):
    worker = tenants.call("worker", "POST", "/v1/workers", {"name": "box", "models": ["echo"]}).json()
    job = tenants.call("bob", "POST", "/v1/jobs", {"model": "echo", "prompt": "try me", "priority": 3}).json()
    leased = tenants.call("worker", "POST", f"/v1/workers/{worker['id']}/lease", {"max_jobs": 1}).json()["jobs"][0]
    failed = tenants.call("worker", "POST", f"/v1/jobs/{job['id']}/fail",
                          {"lease": leased["lease"]["token"], "error": {"code": "BOOM", "message": "no"}, "retryable": True})
    assert failed.json()["status"] == "dead"  # --max-attempts 1
    assert_error(tenants.call("bob", "POST", f"/v1/jobs/{job['id']}/retry"), 403, "FORBIDDEN")
    r = tenants.call("ada", "POST", f"/v1/jobs/{job['id']}/retry")
    assert r.status_code == 201, r.text
    again = r.json()
    assert again["retry_of"] == job["id"] and again["id"] != job["id"]
    assert again["status"] == "queued" and again["attempts"] == 0 and again["priority"] == 3
    assert again["input"] == {"prompt": "try me"} and again["model"] == "echo"
    # it is bob's job, as the first one was: bob reads it, and the dead one is kept as it was
    assert tenants.call("bob", "GET", f"/v1/jobs/{again['id']}").status_code == 200
    assert tenants.call("bob", "GET", f"/v1/jobs/{job['id']}").json()["status"] == "dead"
    err = assert_error(tenants.call("ada", "POST", f"/v1/jobs/{again['id']}/retry"), 409, "INVALID_STATE")
    assert err["details"] == {"status": "queued"}
    assert_error(tenants.call("ada", "POST", "/v1/jobs/01a20000-0000-7000-8000-000000000000/retry"), 404, "NOT_FOUND")


def test_the_openapi_document_is_served_as_the_binary_prints_it(server):
    served = server.get("/openapi.json")
    assert served.status_code == 200 and served.headers["Content-Type"] == "application/json"
    printed = json.loads(subprocess.check_output([BIN, "routes", "--openapi"]))
    assert served.json() == printed == server.get("/api/openapi.json").json()
    doc = served.json()
    assert doc["openapi"] == "3.1.0"
    submit = doc["paths"]["/v1/jobs"]["post"]
    assert submit["operationId"] == "jobs.submit" and submit["requestBody"]["required"] is True
    assert doc["paths"]["/v1/client/jobs"]["post"]["tags"] == ["d003"]
    assert doc["paths"]["/api/v1/client/jobs"]["post"]["summary"] == doc["paths"]["/v1/client/jobs"]["post"]["summary"]
    assert not [p for p in doc["paths"] if "**" in p]  # catch-alls answer what no route serves


def test_the_pages_and_their_files(server, tmpdir_path):
    for path in ("/", "/dashboard", "/docs", "/redoc", "/api/docs", "/api/redoc"):
        r = server.get(path)
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8", path
        assert "<script" in r.text and "cdn" not in r.text.lower() and "https://" not in r.text
    for name, kind in (("dashboard.js", "text/javascript"), ("swagger-ui-bundle.js", "text/javascript"),
                       ("uPlot.min.css", "text/css"), ("redoc.standalone.js", "text/javascript")):
        r = server.get("/assets/" + name)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind) and len(r.content) > 1000, name
        assert server.get("/api/assets/" + name).content == r.content
    assert_error(server.get("/assets/..%2Fpackage.json"), 404, "NOT_FOUND")
    assert_error(server.get("/assets/index.html"), 404, "NOT_FOUND")
    # without the npm packages the viewers say what to do; the built-in files still come
    os.mkdir(tmpdir_path + "/bare")
    bare = Server(tmpdir_path + "/bare", ["--web-assets", tmpdir_path + "/nowhere"]).start()
    try:
        err = assert_error(bare.get("/assets/swagger-ui-bundle.js"), 503, "UNAVAILABLE")
        assert "scripts/bootstrap" in err["message"]
        assert bare.get("/assets/dashboard.js").status_code == 200
    finally:
        assert bare.stop() == 0


def test_bodies_are_checked_against_the_documented_schema_before_the_handler(server):
    err = assert_error(server.post("/v1/jobs", {"model": "echo", "messages": [{"role": "bot", "content": "x"}]}),
                       400, "INVALID_REQUEST")
    assert err["details"]["field"] == "messages[0].role" and "must be one of" in err["message"]
    err = assert_error(server.post("/v1/jobs", {"model": "echo", "prompt": "x", "priority": "high"}), 400, "INVALID_REQUEST")
    assert err["details"]["field"] == "priority"
    # null reads as absent, as the handlers always did
    assert server.post("/v1/jobs", {"model": "echo", "prompt": "x", "priority": None}).status_code == 202
    # the same check answers in a dialect's own shape
    r = server.post("/v1/chat/completions", {"model": "echo", "messages": "hello"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
