"""The AI council (document 002 and the native council kind), end to end: the
real promptq binary, a real `promptq worker` with the openai backend, and a
scripted OpenAI-compatible model server whose answers each test sets."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from conftest import BIN, PATIENCE, ScriptedServer, Server, cli, wait_until

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
        self.upstream = ScriptedServer(tmpdir, "council_upstream", self.script_path)
        self.upstream_url = self.upstream.url
        self.server = Server(tmpdir, ["--council-members", MEMBERS, "--council-synthesizers", "synth1,synth2",
                                      "--council-member-timeout", "20s", *server_args], secured=secured)
        try:
            self.server.start()
        except BaseException:
            self.upstream.stop()  # nobody will call close(): leave no process behind
            raise
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
        self.script({})  # held answers end, so the workers can stop
        for proc, log in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=PATIENCE)
            log.close()
        rc = self.server.stop() if self.server.proc else 0
        self.upstream.stop()
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
    # the council's receipt signs its output, which names every answer's own receipted hash
    for a in t["rounds"][0]["answers"] + [t["synthesis"]]:
        child = council.server.get(f"/v1/jobs/{a['job']}/receipt").json()
        assert child["receipt"]["output_sha256"] == a["outputSha256"]
    assert t["receipt"]["receipt"]["job_id"] == rid and t["receipt"]["signature"]["algorithm"] == "ed25519"
    asked = [r["body"]["model"] for r in council.requests_seen()]
    assert sorted(asked) == ["alpha", "beta", "gamma", "synth1"]


def test_members_who_converge_in_round_two(council):
    council.script(agreeing(alpha={"answers": ["Lyon, I think.", AGREED]},
                            beta={"answers": ["Marseille is the largest port.", AGREED]}))
    council.start_worker()
    rid = council.submit(synthesisStrategy={"type": "iterative-consensus",
                                            "config": {"maxRounds": 3, "agreementThreshold": 0.9}})
    result = council.result(rid)
    assert result["status"] == "completed" and result["confidence"] == "high"
    t = council.transcript(rid)
    assert [r["round"] for r in t["rounds"]] == [1, 2]
    assert t["rounds"][0]["agreement"] < 0.9 <= t["rounds"][1]["agreement"]
    # in round 2 each member saw the others' round-1 answers, anonymised, and its own
    alpha_round2 = [r["body"] for r in council.requests_seen() if r["body"].get("model") == "alpha"][1]
    text = json.dumps(alpha_round2["messages"])
    assert "Marseille is the largest port." in text and AGREED in text and "Lyon, I think." in text
    assert "beta" not in text and "gamma" not in text


NEVER = {"alpha": {"answers": ["Paris, without a doubt."]},
         "beta": {"answers": ["Quantum chromodynamics governs quarks."]},
         "gamma": {"answers": ["Bananas are rich in potassium."]}}


@pytest.mark.parametrize("fallback", ["meta-synthesis", "majority", "fail"])
def test_members_who_never_agree(council, fallback):
    council.script(agreeing(**NEVER))
    council.start_worker()
    rid = council.submit(synthesisStrategy={"config": {"maxRounds": 2, "fallbackStrategy": fallback}})
    result = council.result(rid)
    t = council.transcript(rid)
    assert len(t["rounds"]) == 2
    if fallback == "fail":
        assert result["status"] == "failed"
        assert result["error"]["code"] == "CONSENSUS_NOT_REACHED" and result["error"]["retryable"] is False
        assert result["error"]["details"]["rounds"] == 2
        return
    assert result["status"] == "completed"
    assert result["degraded"] is True and result["fallback"] == fallback
    assert result["confidence"] == "low"  # agreement far below 0.5, no consensus
    if fallback == "majority":
        assert result["consensusDecision"] in [p["answers"][0] for p in NEVER.values()]
        assert "synth1" not in [r["body"]["model"] for r in council.requests_seen()]
    else:
        assert result["consensusDecision"] == "Paris is the capital of France, the council agrees."
        synth = [r["body"] for r in council.requests_seen() if r["body"]["model"] == "synth1"][0]
        assert "did not reach agreement" in json.dumps(synth["messages"])


def test_one_failing_member_leaves_the_quorum(council):
    council.script(agreeing(gamma={"status": 400}))
    council.start_worker()
    rid = council.submit()
    result = council.result(rid)
    assert result["status"] == "completed"
    assert result["confidence"] == "medium"  # consensus, one member missing
    t = council.transcript(rid)
    gamma = [a for a in t["rounds"][0]["answers"] if a["model"] == "gamma"][0]
    assert gamma["status"] == "failed" and gamma["error"]["code"] == "UPSTREAM_REJECTED"


def test_too_many_failing_members_miss_the_quorum(council):
    council.script(agreeing(beta={"status": 400}, gamma={"status": 400}))
    council.start_worker()
    result = council.result(council.submit())
    assert result["status"] == "failed"
    assert result["error"]["code"] == "MINIMUM_QUORUM_NOT_MET" and result["error"]["retryable"] is True
    assert result["error"]["details"] == {"round": 1, "answered": 1, "quorum": 2}


def test_every_member_failing_is_all_providers_failed(council):
    council.script(agreeing(alpha={"status": 400}, beta={"status": 400}, gamma={"status": 400}))
    council.start_worker()
    result = council.result(council.submit())
    assert result["status"] == "failed"
    assert result["error"]["code"] == "ALL_PROVIDERS_FAILED" and result["error"]["retryable"] is True


def test_a_failing_synthesizer_falls_back_to_the_next(council):
    council.script(agreeing(synth1={"status": 400}))
    council.start_worker()
    rid = council.submit()
    result = council.result(rid)
    assert result["status"] == "completed" and result["consensusDecision"] == "Synth two says Paris."
    assert result["degraded"] is False and result["confidence"] == "high"
    t = council.transcript(rid)
    assert t["synthesis"]["model"] == "synth2"
    assert t["synthesis"]["tried"] == [{"model": "synth1", "error": "UPSTREAM_REJECTED"}]


def test_no_synthesizer_left_means_the_nearest_answer_and_says_so(council):
    council.script(agreeing(synth1={"status": 400}, synth2={"status": 400}))
    council.start_worker()
    result = council.result(council.submit())
    assert result["status"] == "completed" and result["consensusDecision"] == AGREED
    assert result["degraded"] is True and result["fallback"] == "nearest-answer"
    assert result["confidence"] == "medium"


def test_agreement_from_embeddings_when_a_worker_serves_the_model(council):
    council.script(agreeing(alpha={"answers": ["Paris is the capital."]}))
    council.start_worker()
    rid = council.submit(synthesisStrategy={"config": {"embeddingModel": "embedder", "agreementThreshold": 0.5}})
    assert council.result(rid)["status"] == "completed"
    t = council.transcript(rid)
    assert t["rounds"][0]["similarity"] == "embedding"
    embeds = [r["body"] for r in council.requests_seen() if r["path"].endswith("/embeddings")]
    assert len(embeds) == 1 and sorted(embeds[0]["input"]) == sorted(["Paris is the capital.", AGREED, AGREED])
    m = t["rounds"][0]["matrix"]
    assert m[1][2] == 1.0 and 0.5 < m[0][1] < 1.0  # same texts, same letters; different ones differ


def test_sequential_members_see_the_latest_answers(council):
    council.script(agreeing(alpha={"answers": ["First draft from alpha.", "Alpha's revision."]},
                            beta={"answers": ["Beta's draft.", AGREED]}))
    council.start_worker()
    rid = council.submit(synthesisStrategy={"config": {"negotiationMode": "sequential", "maxRounds": 2,
                                                       "fallbackStrategy": "majority"}})
    assert council.result(rid)["status"] == "completed"
    seen = [r["body"] for r in council.requests_seen() if r["body"]["model"] in ("alpha", "beta", "gamma")]
    assert len(seen) == 6
    assert [b["model"] for b in seen[3:]] == ["alpha", "beta", "gamma"]  # round 2: one after another
    beta_round2 = json.dumps(seen[4]["messages"])
    assert "Alpha's revision." in beta_round2  # this round's answer, not alpha's first draft
    assert "First draft from alpha." not in beta_round2


def test_the_stream_tells_the_whole_story_and_resumes(council):
    council.script(agreeing())
    council.start_worker()
    rid = council.submit(streaming=True)
    r = council.server.get(f"/api/v1/requests/{rid}/stream", timeout=PATIENCE * 3)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(r)
    kinds = [e[1] for e in events]
    assert kinds[0] == "progress" and events[0][2]["status"] == "distributing"
    assert {"status": "deliberating", "message": "Round 1 of 3", "round": 1} in [e[2] for e in events]
    statuses = [e[2]["status"] for e in events if e[1] == "progress"]
    assert statuses.index("deliberating") < statuses.index("synthesizing")
    chunks = "".join(e[2]["content"] for e in events if e[1] == "chunk")
    assert chunks == "Paris is the capital of France, the council agrees."
    assert kinds[-1] == "complete" and kinds.count("complete") == 1
    done = events[-1][2]
    assert done["requestId"] == rid and done["status"] == "completed"
    assert isinstance(done["cost"], float) and isinstance(done["latency"], int)
    # a late subscriber resuming after the first chunk gets exactly the rest
    first_chunk = [e for e in events if e[1] == "chunk"][0]
    rest = sse_events(council.server.get(f"/api/v1/requests/{rid}/stream",
                                         headers={"Last-Event-ID": first_chunk[0]}))
    assert rest == events[events.index(first_chunk) + 1:]
    # an EventSource reconnecting after the end is told to stop
    r = council.server.get(f"/api/v1/requests/{rid}/stream", headers={"Last-Event-ID": events[-1][0]})
    assert r.status_code == 204 and r.text == ""


def test_a_council_survives_kill_9_of_its_coordinator(council):
    council.script(agreeing(alpha={"hold": True}))
    council.start_worker()
    rid = council.submit()
    wait_until(lambda: any(r["body"].get("model") == "alpha" for r in council.requests_seen()),
               what="alpha to be asked")
    port = council.server.port
    council.server.kill9()
    council.server.start(port=port)  # the worker reconnects to the same address
    council.script(agreeing())  # alpha answers now, to a coordinator that was killed
    result = council.result(rid)
    assert result["status"] == "completed" and result["confidence"] == "high", result
    t = council.transcript(rid)
    assert len(t["rounds"]) == 1 and all(a["status"] == "completed" for a in t["rounds"][0]["answers"])


def test_bad_requests_get_the_documents_envelope(council):
    for body, field in [({}, "query"), ({"query": ""}, "query"), ({"query": 5}, "query"),
                        ({"query": "q", "synthesisStrategy": {"type": "vote"}}, "synthesisStrategy.type"),
                        ({"query": "q", "synthesisStrategy": {"config": {"maxRounds": 0}}}, "synthesisStrategy.config.maxRounds"),
                        ({"query": "q", "synthesisStrategy": {"config": {"agreementThreshold": 2}}},
                         "synthesisStrategy.config.agreementThreshold"),
                        ({"query": "q", "synthesisStrategy": {"config": {"negotiationMode": "loud"}}},
                         "synthesisStrategy.config.negotiationMode"),
                        ({"query": "q", "council": {"members": ["alpha", "mystery"]}}, "members"),
                        ({"query": "q", "surprise": 1}, "surprise")]:
        r = council.server.post("/api/v1/requests", body)
        assert r.status_code == 400, (body, r.text)
        b = r.json()
        assert set(b) == {"error", "requestId", "timestamp"}, b
        assert b["error"]["code"] == "INVALID_REQUEST" and b["error"]["retryable"] is False
        assert b["error"]["details"].get("field") == field, (body, b)
    r = requests.post(council.server.url + "/api/v1/requests", data="{not json",
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    missing = "01a23460-0000-7000-8000-000000000000"
    for path in (missing, missing + "/stream", missing + "/transcript", "not-an-id"):
        r = council.server.get("/api/v1/requests/" + path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", r.text
    assert council.server.get("/api/v1/requests/" + missing).json()["requestId"] == missing
    # an ordinary job is no council
    job = council.server.post("/v1/jobs", {"model": "alpha", "prompt": "hi"}).json()
    assert council.server.get(f"/api/v1/requests/{job['id']}").status_code == 404


def test_a_request_may_narrow_the_council(council):
    council.script(agreeing())
    council.start_worker()
    rid = council.submit(council={"members": ["alpha", "beta"], "synthesizers": ["synth2"], "quorum": 2})
    result = council.result(rid)
    assert result["consensusDecision"] == "Synth two says Paris."
    assert sorted(r["body"]["model"] for r in council.requests_seen()) == ["alpha", "beta", "synth2"]
    r = council.server.post("/api/v1/requests", {"query": "q", "council": {"members": ["alpha"], "quorum": 2}})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "quorum"


def test_a_council_without_a_quorum_of_live_members_is_refused_at_once(council):
    r = council.server.post("/api/v1/requests", {"query": "anyone there?"})
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "SERVICE_UNAVAILABLE" and err["retryable"] is True
    assert err["details"] == {"members": ["alpha", "beta", "gamma"], "served": [], "quorum": 2}
    council.start_worker(models="alpha,synth1")
    r = council.server.post("/api/v1/requests", {"query": "anyone there?"})
    assert r.status_code == 503 and r.json()["error"]["details"]["served"] == ["alpha"]
    r = council.server.post("/api/v1/requests", {"query": "q", "council": {"members": ["alpha"], "quorum": 1}})
    assert r.status_code == 202, r.text  # a council narrowed to what is served runs


def test_listing_is_paginated_as_the_document_says(council):
    council.script({m: {"hold": True} for m in ("alpha", "beta", "gamma")})  # they stay processing
    council.start_worker()
    ids = [council.submit(f"question {i}") for i in range(5)]
    page = council.server.get("/api/v1/requests?limit=2&offset=1").json()
    assert page["pagination"] == {"limit": 2, "offset": 1, "total": 5, "hasMore": True}
    assert [d["requestId"] for d in page["data"]] == list(reversed(ids))[1:3]
    assert all(d["status"] == "processing" for d in page["data"])
    last = council.server.get("/api/v1/requests?offset=4").json()
    assert last["pagination"] == {"limit": 20, "offset": 4, "total": 5, "hasMore": False}
    for q in ("limit=0", "limit=101", "offset=-1", "limit=x"):
        r = council.server.get("/api/v1/requests?" + q)
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST", q


@pytest.fixture
def secured_council(tmpdir_path):
    for name in ("bob", "carol"):
        cli("user", "add", name, "--data", tmpdir_path, stdin=f"{name}-password\n")
    keys = {"bob": cli("key", "create", "--user", "bob", "--data", tmpdir_path),
            "carol": cli("key", "create", "--user", "carol", "--data", tmpdir_path),
            "worker": cli("key", "create", "--user", "bob", "--scope", "worker", "--data", tmpdir_path)}
    c = Council(tmpdir_path, ["--rate-client", "600", "--burst-client", "100"], secured=True)
    c.keys = keys
    c.h = lambda who: {"Authorization": f"Bearer {keys[who]}"}
    c.script(agreeing())
    c.start_worker(key=keys["worker"])
    yield c
    c.close()


def test_the_documents_python_example_as_written(secured_council, capsys):
    API_BASE = secured_council.server.url + '/api/v1'
    API_KEY = secured_council.keys["bob"]

    # -- from here on, document 002's Python example, unchanged --
    def submit_request(query, session_id=None):
        response = requests.post(
            f'{API_BASE}/requests',
            json={'query': query, 'sessionId': session_id},
            headers={'Authorization': f'Bearer {API_KEY}'}
        )
        response.raise_for_status()
        return response.json()

    def get_response(request_id):
        response = requests.get(
            f'{API_BASE}/requests/{request_id}',
            headers={'Authorization': f'Bearer {API_KEY}'}
        )
        response.raise_for_status()
        return response.json()

    # Usage
    result = submit_request('What is machine learning?')
    request_id = result['request_id'] if 'request_id' in result else result['requestId']
    print(f'Request ID: {request_id}')

    # Poll for completion
    while True:
        time.sleep(1)
        result = get_response(request_id)
        if result['status'] != 'processing':
            break

    print(f"Response: {result['consensusDecision']}")
    # -- end of the example --
    out = capsys.readouterr().out
    assert "Response: Paris is the capital of France, the council agrees." in out


def test_the_documents_curl_examples(secured_council):
    base = secured_council.server.url
    key = secured_council.keys["bob"]
    submitted = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{base}/api/v1/requests", "-H", f"Authorization: Bearer {key}",
         "-H", "Content-Type: application/json", "-d",
         '{\n    "query": "Explain quantum computing in simple terms",\n    "sessionId": "user-123-session"\n  }'],
        capture_output=True, text=True, timeout=60, check=True)
    body = json.loads(submitted.stdout)
    assert set(body) == {"requestId", "status", "createdAt"} and body["status"] == "processing"
    rid = body["requestId"]
    streamed = subprocess.run(["curl", "-sS", "-N", "-H", f"Authorization: Bearer {key}",
                               f"{base}/api/v1/requests/{rid}/stream"],
                              capture_output=True, text=True, timeout=60, check=True)
    assert "event: complete" in streamed.stdout and "event: chunk" in streamed.stdout
    polled = subprocess.run(["curl", "-sS", "-X", "GET", f"{base}/api/v1/requests/{rid}",
                             "-H", f"Authorization: Bearer {key}"], capture_output=True, text=True, timeout=60,
                            check=True)
    assert json.loads(polled.stdout)["status"] == "completed"


def test_credentials_and_tenancy(secured_council):
    c = secured_council
    r = c.server.post("/api/v1/requests", {"query": "q"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    assert set(r.json()) == {"error", "requestId", "timestamp"}
    r = c.server.post("/api/v1/requests", {"query": "q"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    rid = c.submit(headers=c.h("bob"))
    for path in ("", "/stream", "/transcript"):
        r = c.server.get(f"/api/v1/requests/{rid}{path}", headers=c.h("carol"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert c.server.get("/api/v1/requests", headers=c.h("carol")).json()["pagination"]["total"] == 0
    assert c.result(rid, headers=c.h("bob"))["status"] == "completed"
    # a JWT works as well as a key
    token = c.server.post("/v1/auth/token", {"user": "bob", "password": "bob-password"}).json()["access_token"]
    assert c.server.get(f"/api/v1/requests/{rid}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # a council its owner cannot pay for: the document's envelope, the native code, not retryable
    for model in MODELS.split(","):
        cli("price", "set", model, "--input", "1", "--output", "1", "--data", c.tmpdir)
    r = c.server.post("/api/v1/requests", {"query": "q"}, headers=c.h("carol"))
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "INSUFFICIENT_CREDITS" and r.json()["error"]["retryable"] is False


def test_a_session_gives_members_its_earlier_turns_and_only_its_owners(secured_council):
    c = secured_council
    first = c.submit("Who wrote Hamlet?", headers=c.h("bob"), sessionId="s-1")
    assert c.result(first, headers=c.h("bob"))["status"] == "completed"
    c.result(c.submit("Unrelated question", headers=c.h("bob"), sessionId="s-2"), headers=c.h("bob"))
    second = c.submit("When was he born?", headers=c.h("bob"), sessionId="s-1")
    c.result(second, headers=c.h("bob"))
    t = c.transcript(second, headers=c.h("bob"))
    assert t["context"] == [{"query": "Who wrote Hamlet?",
                             "decision": "Paris is the capital of France, the council agrees."}]
    asked = [json.dumps(r["body"]["messages"]) for r in c.requests_seen() if r["body"].get("model") == "alpha"]
    assert "Who wrote Hamlet?" in asked[-1] and "Unrelated question" not in asked[-1]
    # carol's session of the same name knows nothing of bob's
    theirs = c.submit("When was he born?", headers=c.h("carol"), sessionId="s-1")
    c.result(theirs, headers=c.h("carol"))
    assert "context" not in c.transcript(theirs, headers=c.h("carol"))


def test_rate_limits_answer_429_with_the_documents_headers(tmpdir_path):
    cli("user", "add", "dora", "--data", tmpdir_path, stdin="dora-password\n")
    key = cli("key", "create", "--user", "dora", "--data", tmpdir_path)
    worker_key = cli("key", "create", "--user", "dora", "--scope", "worker", "--data", tmpdir_path)
    c = Council(tmpdir_path, ["--rate-client", "3", "--burst-client", "3"], secured=True)
    try:
        c.script({m: {"hold": True} for m in ("alpha", "beta", "gamma")})
        c.start_worker(key=worker_key)
        h = {"Authorization": f"Bearer {key}"}
        codes = [c.server.post("/api/v1/requests", {"query": f"q{i}"}, headers=h) for i in range(6)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and all(r.status_code in (202, 429) for r in codes)
        r = limited[0]
        assert r.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED" and r.json()["error"]["retryable"] is True
        assert r.headers["X-RateLimit-Limit"] == "3" and r.headers["X-RateLimit-Remaining"] == "0"
        assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1 and int(r.headers["Retry-After"]) >= 1
    finally:
        c.close()


def test_the_native_door_runs_a_council_too(council):
    council.script(agreeing())
    council.start_worker()
    r = council.server.post("/v1/jobs", {"kind": "council", "input": {"query": "Capital of France?", "maxRounds": 1}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "leased"  # the coordinator runs it at once: it never waits for a worker
    done = council.server.get(f"/v1/jobs/{job['id']}?wait=30").json()
    assert done["kind"] == "council" and done["model"] == "council"
    assert done["status"] == "completed", done
    assert done["output"]["decision"] == "Paris is the capital of France, the council agrees."
    assert len(done["output"]["rounds"]) == 1
    events = sse_events(council.server.get(f"/v1/jobs/{job['id']}/events"))
    assert [e[1] for e in events if e[1] == "progress"][:1] == ["progress"]
    assert events[-1][1] == "complete"
    # its members are ordinary jobs, each a step of the council
    children = [j for j in council.server.get("/v1/jobs?limit=50").json()["data"] if j["id"] != job["id"]]
    assert sorted(j["model"] for j in children) == ["alpha", "beta", "gamma", "synth1"]
    assert all(j["parent_id"] == job["id"] and j["status"] == "completed" for j in children)
    r = council.server.post("/v1/jobs", {"kind": "council", "model": "alpha", "input": {"query": "q"}})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "model"
    r = council.server.post("/v1/jobs", {"model": "council", "prompt": "a chat posing as a council"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "model"


def test_cancelling_a_council_stops_its_members(council):
    council.script(agreeing(alpha={"hold": True}, beta={"hold": True}, gamma={"hold": True}))
    council.start_worker()
    job = council.server.post("/v1/jobs", {"kind": "council", "input": {"query": "q"}}).json()
    wait_until(lambda: len(council.requests_seen()) == 3, what="every member to be asked")
    r = council.server.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    children = [j for j in council.server.get("/v1/jobs?limit=50").json()["data"] if j["id"] != job["id"]]
    assert len(children) == 3
    council.script(agreeing())  # the members' answers arrive after the cancel: nothing moves
    wait_until(lambda: all(council.server.job(j["id"])["status"] == "cancelled" for j in children),
               what="the members to be cancelled")
    assert council.server.get(f"/api/v1/requests/{job['id']}").json()["error"]["code"] == "CANCELLED"


def test_the_command_line_streams_a_council(council):
    council.script(agreeing())
    council.start_worker()
    r = subprocess.run([BIN, "council", "What is the capital of France?", "--stream", "--coordinator",
                        council.server.url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Paris is the capital of France, the council agrees.\n"
    assert "[distributing] Distributing to 3 council members" in r.stderr
    assert "[deliberating] Round 1 of 3" in r.stderr and "confidence high" in r.stderr
    council.script(agreeing(alpha={"status": 400}, beta={"status": 400}, gamma={"status": 400}))
    r = subprocess.run([BIN, "council", "Again?", "--coordinator", council.server.url, "--rounds", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "ALL_PROVIDERS_FAILED" in r.stderr, r.stderr


def test_empty_answers_are_no_answers(council):
    council.script(agreeing(beta={"answers": ["   "]}, synth1={"answers": [" "]}))
    council.start_worker()
    rid = council.submit()
    result = council.result(rid)
    assert result["status"] == "completed" and result["consensusDecision"] == "Synth two says Paris."
    t = council.transcript(rid)
    beta = [a for a in t["rounds"][0]["answers"] if a["model"] == "beta"][0]
    assert beta["status"] == "failed" and beta["error"]["code"] == "EMPTY_ANSWER"
    assert t["synthesis"]["tried"] == [{"model": "synth1", "error": "EMPTY_ANSWER"}]


def test_a_replayed_request_shows_the_council_as_it_is_now(council):
    council.script(agreeing())
    council.start_worker()
    h = {"Idempotency-Key": "ask-once"}
    first = council.server.post("/api/v1/requests", {"query": "q"}, headers=h).json()
    council.result(first["requestId"])
    again = council.server.post("/api/v1/requests", {"query": "q"}, headers=h)
    assert again.status_code == 202
    assert again.json()["requestId"] == first["requestId"] and again.json()["status"] == "completed"
    r = council.server.post("/api/v1/requests", {"query": "another"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_REQUEST"


def test_odd_input_still_gets_the_envelope(council):
    council.script(agreeing())
    council.start_worker()
    for body, field in [({"query": "   "}, "query"), ({"query": "q", "sessionId": ""}, "sessionId"),
                        ({"query": "q", "council": {"quorum": 1}}, "quorum")]:  # below the majority
        r = council.server.post("/api/v1/requests", body)
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == field, (body, r.text)
    for path in ("%ff%fe", "%c3%28"):
        r = council.server.get("/api/v1/requests/" + path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", r.text
