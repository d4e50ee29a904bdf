"""The whole job flow, long-poll wake-ups, health and readiness."""
import threading
import time

from conftest import PATIENCE, Worker


def test_submit_lease_complete(server):
    ack = server.submit("say hello", priority=3, max_attempts=5)
    assert set(ack) >= {"id", "number", "status", "created_at"}
    assert ack["status"] == "queued" and isinstance(ack["number"], int)

    job = server.job(ack["id"])
    assert job["status"] == "queued"
    assert job["input"] == {"prompt": "say hello"}
    assert job["priority"] == 3 and job["max_attempts"] == 5 and job["attempts"] == 0

    w = Worker(server)
    leased = w.lease_one()
    assert leased["id"] == ack["id"] and leased["model"] == "echo"
    assert leased["input"] == {"prompt": "say hello"}
    assert leased["attempt"] == 1
    assert len(leased["lease"]["token"]) >= 32 and leased["lease"]["expires_at"]
    assert server.job(ack["id"])["status"] == "leased"

    r = w.complete(leased, output="hello!", usage={"prompt_tokens": 2, "completion_tokens": 1})
    assert r.status_code == 200, r.text
    done = server.job(ack["id"])
    assert done["status"] == "completed"
    assert done["output"] == "hello!"
    assert done["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    assert done["worker_id"] == w.id
    assert done["error"] is None
    assert done["latency_ms"]["total"] >= 0 and done["completed_at"]


def test_structured_output_and_messages(server):
    ack = server.post("/v1/jobs", {
        "model": "echo",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "params": {"max_tokens": 16, "temperature": 0.2, "stop": ["\n"], "seed": 7},
    }).json()
    w = Worker(server)
    job = w.lease_one()
    assert job["input"]["messages"][1] == {"role": "user", "content": "hi"}
    assert job["input"]["params"]["max_tokens"] == 16
    assert w.complete(job, output={"text": "hello", "tokens": [1, 2]}).status_code == 200
    assert server.job(ack["id"])["output"] == {"text": "hello", "tokens": [1, 2]}


def test_waiting_lease_is_woken_by_a_submit(server):
    w = Worker(server)
    got = {}

    def lease():
        start = time.monotonic()
        got["jobs"] = w.lease(wait_s=30)
        got["elapsed"] = time.monotonic() - start

    t = threading.Thread(target=lease)
    t.start()
    # the lease is parked once the server counts a waiting request; submitting
    # before that is also fine (the lease would find the job straight away)
    ack = server.submit("wake up")
    t.join(timeout=PATIENCE)
    assert not t.is_alive()
    assert [j["id"] for j in got["jobs"]] == [ack["id"]]
    assert got["elapsed"] < 25  # woken by the submit, not by the 30 s deadline


def test_waiting_lease_times_out_empty(server):
    w = Worker(server)
    start = time.monotonic()
    assert w.lease(wait_s=1) == []
    assert time.monotonic() - start >= 0.9


def test_lease_only_takes_its_models(server):
    other = server.submit("for another model", model="big-model")
    w = Worker(server, models=["echo"])
    assert w.lease() == []
    assert w.lease(models=["big-model"])[0]["id"] == other["id"]


def test_priority_then_age(server):
    low = server.submit("low", priority=0)
    high = server.submit("high", priority=10)
    low2 = server.submit("low 2", priority=0)
    w = Worker(server)
    order = [j["id"] for j in w.lease(max_jobs=3)]
    assert order == [high["id"], low["id"], low2["id"]]


def test_get_wait_returns_when_the_job_finishes(server):
    ack = server.submit("wait for me")
    w = Worker(server)
    job = w.lease_one()
    result = {}

    def waiter():
        start = time.monotonic()
        result["job"] = server.get(f"/v1/jobs/{ack['id']}?wait=30").json()
        result["elapsed"] = time.monotonic() - start

    t = threading.Thread(target=waiter)
    t.start()
    assert w.complete(job, output="finished").status_code == 200
    t.join(timeout=PATIENCE)
    assert result["job"]["status"] == "completed"
    assert result["job"]["output"] == "finished"
    assert result["elapsed"] < 25


def test_get_wait_times_out_with_the_current_state(server):
    ack = server.submit("nobody runs this")
    start = time.monotonic()
    job = server.get(f"/v1/jobs/{ack['id']}?wait=1").json()
    assert job["status"] == "queued"
    assert time.monotonic() - start >= 0.9


def test_health_ready_and_request_ids(server):
    r = server.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy" and r.json()["timestamp"]
    assert len(r.headers["X-Request-Id"]) >= 8
    r = server.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    r = server.get("/health", headers={"X-Request-Id": "trace-abc-123"})
    assert r.headers["X-Request-Id"] == "trace-abc-123"
    ids = {server.get("/health").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_one_log_line_per_request(server):
    server.get("/health", headers={"X-Request-Id": "log-line-check"})
    server.stop()
    lines = [l for l in server.read_log().splitlines() if "id=log-line-check" in l]
    assert len(lines) == 1 and "GET /health 200" in lines[0]


def test_worker_registration_and_heartbeat(server):
    w = Worker(server, models=["a", "b"], name="gpu-box")
    reg = w.registration
    assert reg["name"] == "gpu-box" and reg["models"] == ["a", "b"]
    assert reg["status"] == "online" and reg["heartbeat_interval_ms"] > 0
    info = server.get(f"/v1/workers/{w.id}").json()
    assert info["capabilities"] == {"max_concurrency": 4}
    hb = w.heartbeat()
    assert hb["cancel"] == [] and hb["status"] == "online"
