"""The AI council (document 002 and the native council kind), end to end: the
real promptq binary, a real `promptq worker` with the openai backend, and a
scripted OpenAI-compatible model server whose answers each test sets."""
import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from conftest import BIN, PATIENCE, Server, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
MEMBERS = "alpha,beta,gamma"
MODELS = "alpha,beta,gamma,synth1,synth2,embedder"
AGREED = "The capital of France is Paris."


class Council:
    """A coordinator set up for councils, the scripted models and a worker for them."""

    def __init__(self, tmpdir, server_args=(), secured=False):
        self.tmpdir = tmpdir
        self.script_path = os.path.join(tmpdir, "script.json")
        self.script({})
        self.upstream_log = open(os.path.join(tmpdir, "upstream.log"), "w+")
        self.upstream = subprocess.Popen([sys.executable, os.path.join(HERE, "council_upstream.py"), self.script_path],
                                         stdout=self.upstream_log, stderr=subprocess.STDOUT)
        port = wait_until(lambda: (open(self.upstream_log.name).read().split("listening on ") + [""])[1].strip(),
                          what="the scripted models")
        self.upstream_url = f"http://127.0.0.1:{port}"
        self.server = Server(tmpdir, ["--council-members", MEMBERS, "--council-synthesizers", "synth1,synth2",
                                      "--council-member-timeout", "20s", *server_args], secured=secured)
        self.server.start()
        self.workers = []

    def script(self, plan):
        tmp = self.script_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(plan, f)
        os.replace(tmp, self.script_path)  # the model server never reads half a script

    def start_worker(self, models=MODELS, key=None):
        log = open(os.path.join(self.tmpdir, f"worker{len(self.workers)}.log"), "w")
        env = dict(os.environ, PQ_TEST_UPSTREAM_KEY="sk-test", **({"PROMPTQ_API_KEY": key} if key else {}))
        proc = subprocess.Popen([BIN, "worker", "--coordinator", self.server.url, "--backend", "openai",
                                 "--base-url", self.upstream_url + "/v1", "--api-key-env", "PQ_TEST_UPSTREAM_KEY",
                                 "--model", models, "--concurrency", "6", "--lease-wait", "2s"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        self.workers.append((proc, log))
        wait_until(lambda: "registered as" in open(log.name).read(), what="the worker to register")
        return proc

    def requests_seen(self):
        return requests.get(self.upstream_url + "/_requests", timeout=10).json()

    def submit(self, query="What is the capital of France?", headers=None, **fields):
        r = self.server.post("/api/v1/requests", {"query": query, **fields}, headers=headers)
        assert r.status_code == 202, r.text
        return r.json()["requestId"]

    def result(self, request_id, headers=None):
        def done():
            r = self.server.get(f"/api/v1/requests/{request_id}", headers=headers)
            assert r.status_code == 200, r.text
            return r.json() if r.json()["status"] != "processing" else None
        return wait_until(done, timeout=PATIENCE * 3, what="the council to finish")

    def transcript(self, request_id, headers=None):
        r = self.server.get(f"/api/v1/requests/{request_id}/transcript", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    def close(self):
        for proc, log in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=PATIENCE)
            log.close()
        rc = self.server.stop() if self.server.proc else 0
        self.upstream.send_signal(signal.SIGTERM)
        self.upstream.wait(timeout=PATIENCE)
        self.upstream_log.close()
        assert rc == 0, self.server.read_log()[-3000:]


@pytest.fixture
def council(tmpdir_path):
    c = Council(tmpdir_path)
    yield c
    c.close()


def agreeing(**overrides):
    plan = {m: {"answers": [AGREED]} for m in ("alpha", "beta", "gamma")}
    plan["synth1"] = {"answers": ["Paris is the capital of France, the council agrees."]}
    plan["synth2"] = {"answers": ["Synth two says Paris."]}
    plan.update(overrides)
    return plan


def sse_events(response):
    """(id, event, data) of each Server-Sent Event in a finished stream."""
    out = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return out


def test_members_who_agree_at_once_stop_after_round_one(council):
    council.script(agreeing())
    council.start_worker()
    rid = council.submit()
    result = council.result(rid)
    assert result["status"] == "completed", result
    assert result["consensusDecision"] == "Paris is the capital of France, the council agrees."
    assert result["confidence"] == "high"
    assert result["agreementLevel"] == 1.0
    assert result["degraded"] is False and result["fallback"] is None
    assert isinstance(result["cost"], float) and isinstance(result["latency"], int) and result["latency"] >= 0
    assert result["createdAt"] and result["completedAt"]
    t = council.transcript(rid)
    assert len(t["rounds"]) == 1
    assert {a["model"] for a in t["rounds"][0]["answers"]} == {"alpha", "beta", "gamma"}
    assert all(a["text"] == AGREED for a in t["rounds"][0]["answers"])
    assert t["rounds"][0]["similarity"] == "lexical"  # no worker serves an embedding model here
    assert t["rounds"][0]["matrix"] == [[1.0] * 3] * 3
    assert t["synthesis"]["model"] == "synth1"
    asked = [r["body"]["model"] for r in council.requests_seen()]
    assert sorted(asked) == ["alpha", "beta", "gamma", "synth1"]
