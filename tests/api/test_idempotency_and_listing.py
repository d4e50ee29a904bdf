"""Idempotency keys under concurrency; listing and pagination."""
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import Worker, assert_error


def test_fifty_concurrent_identical_submits_make_one_job(server):
    body = {"model": "echo", "prompt": "exactly once"}

    def submit(_):
        return requests.post(server.url + "/v1/jobs", json=body,
                             headers={"Idempotency-Key": "order-42"}, timeout=60)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(submit, range(50)))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses if r.status_code != 202]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if not r.json()["idempotent_replay"]) == 1
    listing = server.get("/v1/jobs").json()
    assert listing["pagination"]["total"] == 1
    assert len(Worker(server).lease(max_jobs=10)) == 1


def test_same_key_different_body_is_refused(server):
    h = {"Idempotency-Key": "k-1"}
    first = server.post("/v1/jobs", {"model": "echo", "prompt": "one"}, headers=h)
    assert first.status_code == 202
    again = server.post("/v1/jobs", {"model": "echo", "prompt": "one"}, headers=h)
    assert again.json()["id"] == first.json()["id"]
    err = assert_error(server.post("/v1/jobs", {"model": "echo", "prompt": "two"}, headers=h),
                       422, "IDEMPOTENCY_MISMATCH")
    assert not err["retryable"]


def test_pagination_and_filters(server):
    ids = [server.submit(f"job {i}", model="a" if i % 2 else "b")["id"] for i in range(25)]
    page = server.get("/v1/jobs?limit=10").json()
    assert page["pagination"] == {"limit": 10, "offset": 0, "total": 25, "has_more": True, "next_offset": 10}
    assert [j["id"] for j in page["data"]] == ids[::-1][:10]  # newest first
    last = server.get("/v1/jobs?limit=10&offset=20").json()
    assert len(last["data"]) == 5 and last["pagination"]["has_more"] is False
    seen = []
    for offset in range(0, 25, 7):
        seen += [j["id"] for j in server.get(f"/v1/jobs?limit=7&offset={offset}").json()["data"]]
    assert sorted(seen) == sorted(ids)

    by_model = server.get("/v1/jobs?model=a&limit=100").json()
    assert by_model["pagination"]["total"] == 12
    assert all(j["model"] == "a" for j in by_model["data"])

    w = Worker(server, models=["a", "b"])
    for job in w.lease(max_jobs=3):
        w.complete(job)
    done = server.get("/v1/jobs?status=completed").json()
    assert done["pagination"]["total"] == 3
    assert all(j["status"] == "completed" for j in done["data"])
    assert server.get("/v1/jobs?status=queued&model=b").json()["pagination"]["total"] + \
        server.get("/v1/jobs?status=queued&model=a").json()["pagination"]["total"] == 22


def test_bad_list_parameters(server):
    assert_error(server.get("/v1/jobs?status=running"), 400, "INVALID_REQUEST")
    assert_error(server.get("/v1/jobs?limit=0"), 400, "INVALID_REQUEST")
    assert_error(server.get("/v1/jobs?limit=abc"), 400, "INVALID_REQUEST")
    assert_error(server.get("/v1/jobs?offset=-1"), 400, "INVALID_REQUEST")
