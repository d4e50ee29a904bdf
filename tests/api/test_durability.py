"""An acknowledged job survives kill -9 of the coordinator; shutdown is graceful."""
import signal
import threading
import time

import requests

from conftest import PATIENCE, Server, Worker, wait_until


def test_every_acknowledged_job_survives_kill_9(tmpdir_path):
    server = Server(tmpdir_path).start()
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(n):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                r = session.post(server.url + "/v1/jobs",
                                 json={"model": "echo", "prompt": f"job {n}-{i}"}, timeout=10)
            except requests.RequestException:
                return  # the server is gone: whatever was not acknowledged may be lost
            if r.status_code == 202:
                with lock:
                    acked.append(r.json()["id"])
            i += 1

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 300, what="300 acknowledged submits")
    server.kill9()  # mid-stream: requests are in flight
    stop.set()
    for t in threads:
        t.join(timeout=PATIENCE)
    with lock:
        acknowledged = list(acked)

    restarted = Server(tmpdir_path).start()
    try:
        missing = [i for i in acknowledged if restarted.get(f"/v1/jobs/{i}").status_code != 200]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged jobs lost"
        total = restarted.get("/v1/jobs?status=queued&limit=1").json()["pagination"]["total"]
        assert total >= len(acknowledged)
        # and the restarted coordinator hands them out (its index was rebuilt)
        w = Worker(restarted)
        assert len(w.lease(max_jobs=64)) == 64
    finally:
        assert restarted.stop() == 0


def test_leased_jobs_survive_a_restart(tmpdir_path):
    server = Server(tmpdir_path).start()
    ack = server.submit("carry on")
    w = Worker(server)
    job = w.lease_one()
    server.kill9()
    restarted = Server(tmpdir_path).start()
    try:
        assert restarted.job(ack["id"])["status"] == "leased"
        r = restarted.post(f"/v1/jobs/{job['id']}/complete",  # the same lease token still holds
                           {"lease": job["lease"]["token"], "output": "after restart"})
        assert r.status_code == 200, r.text
        assert restarted.job(ack["id"])["output"] == "after restart"
    finally:
        assert restarted.stop() == 0


def test_sigterm_answers_waiting_requests_then_exits_cleanly(tmpdir_path):
    server = Server(tmpdir_path).start()
    w = Worker(server)
    queued = server.submit("still queued")
    got = {}

    def long_poll():
        got["lease"] = requests.post(f"{server.url}/v1/workers/{w.id}/lease",
                                     json={"wait_s": 50, "models": ["nothing-serves-this"]},
                                     timeout=PATIENCE + 60)

    def get_wait():
        got["get"] = requests.get(f"{server.url}/v1/jobs/{queued['id']}?wait=50",
                                  timeout=PATIENCE + 60)

    threads = [threading.Thread(target=long_poll), threading.Thread(target=get_wait)]
    for t in threads:
        t.start()
    # once both are parked, stopping must answer them rather than leave them hanging for 50 s
    wait_until(lambda: server.get("/health").json()["waiting_requests"] == 2,
               what="both long-polls to be parked")
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    for t in threads:
        t.join(timeout=PATIENCE)
    assert time.monotonic() - started < 40
    assert got["lease"].status_code == 200 and got["lease"].json() == {"jobs": []}
    assert got["get"].status_code == 200 and got["get"].json()["status"] == "queued"
    assert "stopped cleanly" in server.read_log()


def test_one_coordinator_per_data_folder(tmpdir_path, make_server):
    make_server(data_dir=tmpdir_path)
    second = Server(tmpdir_path)
    try:
        second.start()
        raise AssertionError("a second coordinator started on the same data folder")
    except AssertionError as e:
        assert "in use by another promptq serve" in second.read_log(), str(e)
