"""Many jobs in one request, and many results in one request: each acknowledged or refused on its
own, with the per-job rules kept (idempotency keys, fencing by lease token, retries)."""
import requests

from conftest import PATIENCE, Worker


def test_many_jobs_in_one_request(server):
    jobs = [{"model": "m", "prompt": "one"},
            {"prompt": "no model"},
            {"model": "m", "prompt": "keyed", "idempotency_key": "k-1"},
            "not an object",
            {"model": "m", "prompt": "x", "priority": 5000}]
    r = server.post("/v1/jobs/batch", {"jobs": jobs})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 400, 202, 400, 400]
    assert results[1]["error"]["code"] == "INVALID_REQUEST" and results[1]["error"]["details"]["field"] == "model"
    assert results[4]["error"]["details"]["field"] == "priority"
    ids = [results[0]["job"]["id"], results[2]["job"]["id"]]
    assert all(server.job(i)["status"] == "queued" for i in ids)
    # the same key again is the same job; with another body it is refused, on its own
    again = server.post("/v1/jobs/batch", {"jobs": [{"model": "m", "prompt": "keyed", "idempotency_key": "k-1"},
                                                    {"model": "m", "prompt": "changed", "idempotency_key": "k-1"},
                                                    {"model": "m", "prompt": "two"}]}).json()["results"]
    assert again[0]["status"] == 200 and again[0]["job"]["id"] == ids[1]
    assert again[1]["status"] == 422 and again[1]["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert again[2]["status"] == 202
    # refused as a whole only when the request itself is wrong
    for body in ({"jobs": []}, {"jobs": "x"}, {"jobs": [{}] * 1001}, {"jobs": [{"model": "m"}], "extra": 1}):
        assert server.post("/v1/jobs/batch", body).status_code == 400
    r = requests.post(server.url + "/v1/jobs/batch", json={"jobs": [{"model": "m", "prompt": "x"}]},
                      headers={"Idempotency-Key": "whole"}, timeout=PATIENCE)
    assert r.status_code == 400 and r.json()["error"]["details"]["header"] == "Idempotency-Key"


def test_many_results_in_one_request(server):
    r = server.post("/v1/jobs/batch", {"jobs": [{"model": "m", "prompt": f"job {i}"} for i in range(4)]})
    assert [x["status"] for x in r.json()["results"]] == [202] * 4
    w = Worker(server, models=["m"])
    leased = w.lease(max_jobs=4)
    assert len(leased) == 4
    a, b, c, d = leased
    r = server.post(f"/v1/workers/{w.id}/results", {"results": [
        {"job": a["id"], "lease": a["lease"]["token"], "output": "done a", "usage": {"prompt_tokens": 2,
                                                                                     "completion_tokens": 2}},
        {"job": b["id"], "lease": "not-its-token", "output": "stolen"},
        {"job": c["id"], "lease": c["lease"]["token"], "error": {"code": "UPSTREAM_DOWN", "message": "gone"},
         "retryable": True},
        {"job": d["id"], "lease": d["lease"]["token"], "output": "x", "error": {"code": "X"}},
        {"lease": "x", "output": "no job"},
    ]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 409, 200, 400, 400]
    assert results[0]["state"] == "completed" and results[2]["state"] == "queued"  # retried with backoff
    assert results[1]["error"]["code"] == "LEASE_MISMATCH" and results[1]["job"] == b["id"]
    assert server.job(a["id"])["output"] == "done a"
    assert server.job(b["id"])["status"] == "leased"  # fencing held: the stale token changed nothing
    assert server.job(d["id"])["status"] == "leased"
    # another worker's id is not this credential's... in open mode every worker is the caller's; an unknown one is 404
    assert server.post("/v1/workers/01a20000-0000-7000-8000-000000000000/results",
                       {"results": [{"job": a["id"], "lease": "x", "output": "y"}]}).status_code == 404
