"""The openai worker backend end to end, against a scripted upstream."""
import os
import signal
import subprocess
import sys

import pytest
import requests

from conftest import BIN, PATIENCE, ScriptedServer, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = "normal,nousage,slow,disconnect,malformed,ratelimit,broken,reject,embedder"


@pytest.fixture
def upstream(tmpdir_path):
    scripted = ScriptedServer(tmpdir_path, "fake_upstream")
    yield scripted.url
    scripted.stop()


def upstream_requests(upstream):
    return requests.get(upstream + "/_requests", timeout=10).json()


@pytest.fixture
def worker_for(server, tmpdir_path):
    procs = []

    def start(upstream, models=MODELS, *extra):
        log = open(os.path.join(tmpdir_path, f"worker{len(procs)}.log"), "w")
        env = dict(os.environ, PQ_TEST_UPSTREAM_KEY="sk-test-123")
        proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--backend", "openai",
                                 "--base-url", upstream + "/v1", "--api-key-env", "PQ_TEST_UPSTREAM_KEY",
                                 "--model", models, "--concurrency", "2", "--lease-wait", "2s", *extra],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append((proc, log))
        wait_until(lambda: "registered as" in open(log.name).read(), what="the worker to register")
        return proc

    yield start
    for proc, log in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()


def finished(server, job_id):
    return server.get(f"/v1/jobs/{job_id}?wait=30").json()


def test_streamed_chat_with_usage(server, upstream, worker_for):
    worker_for(upstream)
    ack = server.submit("hi", model="normal", params={"max_tokens": 50, "temperature": 0.1},
                        system="be nice")
    job = finished(server, ack["id"])
    assert job["status"] == "completed", job
    assert job["output"] == "Hello from upstream"
    assert job["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    sent = upstream_requests(upstream)[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer sk-test-123"
    assert sent["body"]["stream"] is True and sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["messages"] == [{"role": "system", "content": "be nice"},
                                        {"role": "user", "content": "hi"}]
    assert sent["body"]["max_tokens"] == 50 and sent["body"]["temperature"] == 0.1


def test_counts_tokens_when_upstream_does_not(server, upstream, worker_for):
    worker_for(upstream)
    job = finished(server, server.submit("hi", model="nousage")["id"])
    assert job["status"] == "completed" and job["usage"]["completion_tokens"] == 3


def test_upstream_model_name(server, upstream, worker_for):
    worker_for(upstream, "public-name", "--upstream-model", "normal")
    job = finished(server, server.submit("hi", model="public-name")["id"])
    assert job["output"] == "Hello from upstream"
    assert upstream_requests(upstream)[-1]["body"]["model"] == "normal"


@pytest.mark.parametrize("model,status,code", [
    ("ratelimit", "dead", "UPSTREAM_RATE_LIMITED"),   # retryable: dead after its one attempt
    ("broken", "dead", "UPSTREAM_ERROR"),
    ("disconnect", "dead", "UPSTREAM_DISCONNECTED"),
    ("malformed", "dead", "UPSTREAM_BAD_STREAM"),
    ("reject", "failed", "UPSTREAM_REJECTED"),         # not retryable: failed at once
])
def test_upstream_failures_are_sorted(server, upstream, worker_for, model, status, code):
    worker_for(upstream)
    job = finished(server, server.submit("hi", model=model, max_attempts=1)["id"])
    assert job["status"] == status, job
    assert job["error"]["code"] == code


def test_retryable_failures_are_retried(server, upstream, worker_for):
    worker_for(upstream)
    r = server.post("/v1/jobs", {"model": "ratelimit", "prompt": "hi", "max_attempts": 2})
    job = finished(server, r.json()["id"])
    assert job["status"] == "dead" and job["attempts"] == 2


def test_unreachable_upstream(server, worker_for):
    worker_for("http://127.0.0.1:1")
    job = finished(server, server.submit("hi", model="normal", max_attempts=1)["id"])
    assert job["error"]["code"] == "UPSTREAM_UNAVAILABLE"


def test_cancel_aborts_the_upstream_request(make_server, upstream, tmpdir_path):
    server = make_server("--worker-timeout", "1s")
    log = open(os.path.join(tmpdir_path, "w.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--backend", "openai",
                             "--base-url", upstream + "/v1", "--model", "slow"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        ack = server.submit("go", model="slow")
        # wait for the first tokens to stream through the coordinator
        with requests.get(f"{server.url}/v1/jobs/{ack['id']}/events", stream=True,
                          timeout=PATIENCE) as events:
            for line in events.iter_lines(decode_unicode=True):
                if line == "event: chunk":
                    break
        server.post(f"/v1/jobs/{ack['id']}/cancel")
        job = finished(server, ack["id"])
        assert job["status"] == "cancelled"
        assert 0 < len(job["output"]) < len("".join(f"t{i} " for i in range(40)))
        wait_until(lambda: upstream_requests(upstream)[-1]["aborted"], what="upstream to see the abort")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()


def test_embeddings(server, upstream, worker_for):
    worker_for(upstream)
    ack = server.post("/v1/jobs", {"model": "embedder", "embeddings": ["one", "two"]}).json()
    job = finished(server, ack["id"])
    assert job["status"] == "completed", job
    assert [d["embedding"] for d in job["output"]["data"]] == [[0.5, -0.25], [0.5, -0.25]]
    assert job["usage"]["prompt_tokens"] == 7
    sent = upstream_requests(upstream)[-1]
    assert sent["path"] == "/v1/embeddings" and sent["body"] == {"model": "embedder", "input": ["one", "two"]}


def test_an_upstream_refusal_is_the_clients_4xx_and_runs_once(server, upstream, worker_for):
    """context_length_exceeded from the model server: the OpenAI door answers
    400 with that code (an SDK does not retry a 4xx), and the upstream saw
    the request once."""
    worker_for(upstream, MODELS + ",toolong")
    before = len(upstream_requests(upstream))
    r = server.post("/v1/chat/completions", {"model": "toolong", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded" and err["type"] == "invalid_request_error"
    assert "maximum context length" in err["message"]
    assert len(upstream_requests(upstream)) == before + 1


def test_an_abandoned_stream_cancels_its_job(server, upstream, worker_for):
    """A client that aborts a streamed chat completion leaves no job running
    on the GPU: the job is cancelled and the upstream request aborted."""
    worker_for(upstream)
    r = requests.post(server.url + "/v1/chat/completions", stream=True, timeout=PATIENCE,
                      json={"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    lines = r.iter_lines()
    assert next(l for l in lines if l.startswith(b"data: ") and b'"content":"' in l and b'""' not in l)
    r.close()  # the SDK's abort
    job = wait_until(lambda: (j := server.get("/v1/jobs?limit=1&full=1").json()["data"][0])["status"] == "cancelled"
                     and j, what="the abandoned job to be cancelled")
    assert job["model"] == "slow"
