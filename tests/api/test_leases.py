"""Lease expiry and redelivery, fencing, retries, dead jobs, cancellation."""
import time

from conftest import Worker, assert_error, wait_until


def test_expired_lease_is_redelivered_and_the_old_token_is_fenced(make_server):
    server = make_server("--lease-timeout", "300ms", "--reap-interval", "20ms",
                         "--retry-backoff", "10ms")
    ack = server.submit("slow job")
    w1, w2 = Worker(server, name="w1"), Worker(server, name="w2")
    first = w1.lease_one()
    # w1 never reports; the lease lapses and the job goes to w2
    second = w2.lease_one(wait_s=10)
    assert second["id"] == ack["id"]
    assert second["attempt"] == 2
    assert second["lease"]["token"] != first["lease"]["token"]
    # the first worker's late result is refused and changes nothing
    err = assert_error(w1.complete(first, output="stale"), 409, "LEASE_MISMATCH")
    assert ack["id"] in err["message"]
    assert server.job(ack["id"])["status"] == "leased"
    assert w2.complete(second, output="fresh").status_code == 200
    job = server.job(ack["id"])
    assert job["status"] == "completed" and job["output"] == "fresh"
    assert_error(w2.complete(second, output="twice"), 409, "LEASE_MISMATCH")


def test_foreign_token_is_refused(server):
    a = server.submit("a")
    b = server.submit("b")
    w = Worker(server)
    ja, jb = w.lease(max_jobs=2)
    assert_error(w.complete(ja, token=jb["lease"]["token"]), 409, "LEASE_MISMATCH")
    assert server.job(a["id"])["status"] == "leased"
    assert_error(w.complete({"id": "01a20000-0000-7000-8000-000000000000", "lease": ja["lease"]}),
                 404, "NOT_FOUND")


def test_heartbeat_keeps_a_lease_alive(make_server):
    # Over HTTP against the real clock; the timing itself (a lease pushed on by
    # each beat, lapsing when they stop) is tested on a manual clock in
    # tests/unit/engine/test_coord.c. Here the margin is wide: 150 ms beats
    # against a 2 s lease, so a slow (sanitized, loaded) machine cannot race it.
    server = make_server("--lease-timeout", "2s", "--reap-interval", "20ms")
    ack = server.submit("long job")
    w = Worker(server)
    job = w.lease_one()
    # heartbeat at a worker's cadence for well past the 2 s lease
    until = time.monotonic() + 3.0
    while time.monotonic() < until:
        w.heartbeat()
        assert server.job(ack["id"])["status"] == "leased"
        time.sleep(0.15)  # the worker's heartbeat interval, not synchronisation
    assert server.job(ack["id"])["attempts"] == 1
    assert w.complete(job).status_code == 200


def test_max_attempts_then_dead_with_last_error(make_server):
    server = make_server("--max-attempts", "2", "--retry-backoff", "10ms")
    ack = server.submit("doomed")
    w = Worker(server)
    r = w.fail(w.lease_one(), code="E1", message="first")
    assert r.status_code == 200 and r.json()["status"] == "queued"
    r = w.fail(w.lease_one(wait_s=10), code="E2", message="second")
    assert r.status_code == 200
    job = server.job(ack["id"])
    assert job["status"] == "dead" and job["attempts"] == 2
    assert job["error"] == {"code": "E2", "message": "second"}


def test_job_can_carry_its_own_max_attempts(server):
    ack = server.submit("once", max_attempts=1)
    w = Worker(server)
    w.fail(w.lease_one(), retryable=True)
    assert server.job(ack["id"])["status"] == "dead"


def test_non_retryable_failure_fails_at_once(server):
    ack = server.submit("bad input")
    w = Worker(server)
    assert w.fail(w.lease_one(), code="BAD_PROMPT", retryable=False).status_code == 200
    job = server.job(ack["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "BAD_PROMPT"


def test_silent_worker_goes_offline_and_its_leases_lapse(make_server):
    server = make_server("--worker-timeout", "300ms", "--lease-timeout", "60s",
                         "--reap-interval", "20ms", "--retry-backoff", "10ms")
    ack = server.submit("orphan")
    quiet = Worker(server, name="quiet")
    quiet.lease_one()
    wait_until(lambda: server.get(f"/v1/workers/{quiet.id}").json()["status"] == "offline",
               what="the silent worker to go offline")
    other = Worker(server, name="other")
    job = other.lease_one(wait_s=10)
    assert job["id"] == ack["id"] and job["attempt"] == 2


def test_cancel_queued_job(server):
    ack = server.submit("never mind")
    r = server.post(f"/v1/jobs/{ack['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert Worker(server).lease() == []
    assert_error(server.post(f"/v1/jobs/{ack['id']}/cancel"), 409, "INVALID_STATE")


def test_cancel_leased_job_reaches_the_worker(server):
    ack = server.submit("stop me")
    w = Worker(server)
    job = w.lease_one()
    r = server.post(f"/v1/jobs/{ack['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "leased" and r.json()["cancel_requested"] is True
    assert w.heartbeat()["cancel"] == [ack["id"]]
    # the worker stops and reports what it had
    assert w.complete(job, output="partial").status_code == 200
    done = server.job(ack["id"])
    assert done["status"] == "cancelled" and done["output"] == "partial"


def test_ttl_expires_a_queued_job(make_server):
    server = make_server("--reap-interval", "20ms")
    ack = server.submit("too late", ttl_s=1)
    wait_until(lambda: server.job(ack["id"])["status"] == "expired", what="the ttl to expire")
    assert Worker(server).lease() == []
