"""Routing by capability, black-box: workers advertise context and labels
(at registration, and again on a heartbeat), jobs carry requirements, a
lease hands out only what its worker meets, a job nobody can serve says why,
operators' aliases and fallbacks, /v1/models with slots, and a restart."""
import json
import os
import signal
import subprocess
import threading

import requests

from conftest import BIN, PATIENCE, Worker, assert_error, wait_until

H100 = {"labels": {"gpu": "h100"}, "min_context": 32768}


def register(server, name, models, caps):
    r = server.post("/v1/workers", {"name": name, "models": models, "capabilities": caps})
    assert r.status_code == 201, r.text
    w = Worker.__new__(Worker)
    w.server, w.id = server, r.json()["id"]
    return w


def submit(server, model="m", **fields):
    r = server.post("/v1/jobs", {"model": model, "prompt": "hi", **fields})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_a_job_that_needs_a_label_goes_only_to_the_worker_that_has_it(server):
    small = register(server, "small", ["m"], {"context_length": 65536, "labels": {"gpu": "a10", "region": "eu"}})
    big = register(server, "big", ["m"], {"context_length": 8192, "labels": {"gpu": "h100"}})
    right = register(server, "right", ["m"], {"context_length": 131072, "labels": {"gpu": "h100", "region": "us"}})
    needy = submit(server, requirements=H100, priority=5)
    plain = submit(server)
    assert small.lease(max_jobs=5) and True  # takes what it meets: the plain job only
    server_jobs = {j: server.job(j)["status"] for j in (needy, plain)}
    assert server_jobs == {needy: "queued", plain: "leased"}
    assert big.lease(max_jobs=5) == []  # the label, but too short a context
    got = right.lease(max_jobs=5)
    assert [j["id"] for j in got] == [needy]
    assert server.job(needy)["requirements"] == H100


def test_a_job_nobody_can_serve_says_why(server):
    register(server, "w", ["m"], {"context_length": 8192, "labels": {"gpu": "a10"}})
    job = submit(server, requirements={"labels": {"gpu": "tpu"}})
    reason = server.job(job)["waiting_reason"]
    assert "label gpu=tpu" in reason and "1 serves it" in reason, reason
    lonely = submit(server, model="nobody-serves-this")
    assert server.job(lonely)["waiting_reason"] == "no live worker serves model 'nobody-serves-this'"
    # the event stream's first progress event says it too
    with requests.get(f"{server.url}/v1/jobs/{job}/events", stream=True, timeout=PATIENCE) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                first = json.loads(line[6:])
                break
    assert first["status"] == "queued" and "label gpu=tpu" in first["waiting_reason"], first
    # a servable job shows no reason
    served = submit(server)
    assert "waiting_reason" not in server.job(served)


def test_a_heartbeat_updates_what_a_worker_offers(server):
    w = register(server, "w", ["m"], {"labels": {"gpu": "a10"}})
    job = submit(server, requirements={"labels": {"gpu": "h100"}})
    assert w.lease() == []
    r = server.post(f"/v1/workers/{w.id}/heartbeat", {"capabilities": {"labels": {"gpu": "h100"}}})
    assert r.status_code == 200, r.text
    assert [j["id"] for j in w.lease()] == [job]
    assert server.get(f"/v1/workers/{w.id}").json()["capabilities"] == {"labels": {"gpu": "h100"}}
    bad = server.post(f"/v1/workers/{w.id}/heartbeat", {"capabilities": {"labels": {"gpu": 5}}})
    assert_error(bad, 400, "INVALID_REQUEST")


def test_a_waiting_lease_gets_a_job_it_meets_and_not_one_it_does_not(server):
    w = register(server, "w", ["m"], {"labels": {"gpu": "h100"}})
    other = register(server, "other", ["m"], {"labels": {"gpu": "a10"}})
    # the waiting lease parks first; then a job it cannot take, then one it can
    got = {}
    t = threading.Thread(target=lambda: got.update(jobs=w.lease(wait_s=10)))
    t.start()
    wait_until(lambda: server.get("/health").json()["waiting_requests"] == 1, what="the lease to park")
    no = submit(server, requirements={"labels": {"gpu": "a10"}})
    yes = submit(server, requirements={"labels": {"gpu": "h100"}})
    t.join(timeout=PATIENCE)
    assert [j["id"] for j in got["jobs"]] == [yes]
    assert [j["id"] for j in other.lease()] == [no]


def test_bad_requirements_are_refused(server):
    for req, words in (({"min_context": 0}, "min_context"), ({"labels": {"gpu": 1}}, "labels"),
                       ({"gpus": 2}, "gpus"), ({"labels": {"a b": "c"}}, "labels")):
        r = server.post("/v1/jobs", {"model": "m", "prompt": "x", "requirements": req})
        err = assert_error(r, 400, "INVALID_REQUEST")
        assert err["details"].get("field", "").startswith("requirements"), err
        assert words in err["message"], err


def test_an_alias_is_served_by_its_targets_as_themselves(make_server):
    server = make_server("--model-alias", "chat-large=llama-70b|qwen-72b")
    w = register(server, "w", ["qwen-72b"], {"max_concurrency": 3})
    job = submit(server, model="chat-large")
    leased = w.lease()
    assert [j["id"] for j in leased] == [job]
    assert leased[0]["model"] == "qwen-72b"  # the worker runs it as the model it has
    assert server.job(job)["model"] == "chat-large"  # the client keeps the name it asked for
    models = {m["id"]: m for m in server.get("/v1/models").json()["data"]}
    assert models["chat-large"]["workers"] == 1 and models["chat-large"]["slots"] == 3
    assert models["qwen-72b"]["slots"] == 3
    assert "llama-70b" not in models
    assert server.get("/v1/models/chat-large").json()["slots"] == 3


def test_a_fallback_model_serves_when_the_first_fails(make_server):
    server = make_server("--model-fallback", "big=small", "--max-attempts", "3")
    big = Worker(server, models=("big",), name="big")
    small = Worker(server, models=("small",), name="small")
    job = submit(server, model="big")
    first = big.lease_one()
    assert big.fail(first, code="UPSTREAM_ERROR", message="overloaded", retryable=True).status_code == 200
    moved = server.job(job)
    assert moved["status"] == "queued" and moved["model"] == "small", moved
    assert big.lease() == []
    second = small.lease_one()
    assert second["id"] == job
    assert small.complete(second, output="from small").status_code == 200
    done = server.job(job)
    assert done["status"] == "completed" and done["attempts"] == 2 and done["output"] == "from small"
    # a failure that is not retryable is final: no fallback
    job2 = submit(server, model="big")
    j = big.lease_one()
    assert big.fail(j, retryable=False).status_code == 200
    assert server.job(job2)["status"] == "failed"


def test_requirements_survive_a_restart(tmpdir_path, make_server):
    server = make_server(data_dir=tmpdir_path)
    needy = submit(server, requirements=H100)
    plain = submit(server)
    assert server.stop() == 0
    server = make_server(data_dir=tmpdir_path)
    lacking = register(server, "lacking", ["m"], {"labels": {"gpu": "h100"}})  # no context said
    assert [j["id"] for j in lacking.lease(max_jobs=5)] == [plain]
    able = register(server, "able", ["m"], {"context_length": 32768, "labels": {"gpu": "h100"}})
    assert [j["id"] for j in able.lease(max_jobs=5)] == [needy]


def test_promptq_worker_advertises_its_labels_and_context(server):
    log = open(os.path.join(server.data_dir, "worker.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--model", "m", "--labels",
                             "gpu=h100,region=eu", "--context-length", "32768"], stdout=log, stderr=subprocess.STDOUT)
    try:
        job = submit(server, requirements={"min_context": 32768, "labels": {"region": "eu"}})
        done = wait_until(lambda: server.job(job)["status"] == "completed" and server.job(job),
                          what="the labelled worker to run the job")
        caps = server.get(f"/v1/workers/{done['worker_id']}").json()["capabilities"]
        assert caps["labels"] == {"gpu": "h100", "region": "eu"} and caps["context_length"] == 32768
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()


def test_a_model_that_falls_back_to_itself_is_refused_before_the_server_starts(tmpdir_path):
    import pytest
    from conftest import Server
    for bad in ("big=big", "big=", "=small", "big"):
        s = Server(tmpdir_path, ["--model-fallback", bad])
        with pytest.raises(AssertionError, match="exited"):
            s.start()
        assert "--model-fallback wants MODEL=OTHER" in s.read_log()
