"""The OpenAI door carries everything an OpenAI-compatible upstream takes: tools and tool calls (streamed
too), structured output, logprobs, n, the upstream's finish_reason, the legacy completions, embeddings'
dimensions and token ids. Parameters a worker cannot honour are refused by name. A real `promptq worker
--backend openai` in front of the scripted upstream (fake_upstream.py, model `smart`)."""
import json

import requests

from conftest import PATIENCE, Worker
from test_openai import run_in_background
from test_openai_backend import upstream, upstream_requests, worker_for  # noqa: F401 (fixtures)

WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def post(server, path, body, **kw):
    return requests.post(server.url + path, json=body, timeout=60, **kw)


def stream_events(server, path, body):
    r = post(server, path, dict(body, stream=True), stream=True)
    assert r.status_code == 200, r.text
    lines = [line[6:] for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def openai_error(r, status, code, param=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


def test_a_tool_calling_round_trip(server, upstream, worker_for):
    worker_for(upstream, "smart")
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": ask, "tools": WEATHER,
                                              "tool_choice": "auto", "parallel_tool_calls": False})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "call_1" and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    sent = upstream_requests(upstream)[-1]["body"]
    assert sent["tools"] == WEATHER and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    # the history goes back with the assistant's call (content null, as the SDKs send it) and the tool's answer
    history = ask + [dict(choice["message"]), {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}]
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": history, "tools": WEATHER})
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]
    assert answer["message"]["content"] == "The tool said: sunny, 21C" and answer["finish_reason"] == "stop"
    sent = upstream_requests(upstream)[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather" and "content" not in sent[1]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}


def test_tool_calls_stream_as_deltas(server, upstream, worker_for):
    worker_for(upstream, "smart")
    chunks = stream_events(server, "/v1/chat/completions", {
        "model": "smart", "messages": [{"role": "user", "content": "weather?"}], "tools": WEATHER})
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"]
             and c["choices"][0]["delta"].get("tool_calls")]
    assert calls, chunks
    # fragments, put back together as an SDK does
    args = "".join(tc["function"].get("arguments", "") for frag in calls for tc in frag)
    assert json.loads(args) == {"city": "Paris"}
    assert calls[0][0]["id"] == "call_1" and calls[0][0]["function"]["name"] == "get_weather"
    assert all(tc["index"] == 0 for frag in calls for tc in frag)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_structured_output_and_json_mode(server, upstream, worker_for):
    worker_for(upstream, "smart")
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
              "required": ["city", "temp"], "additionalProperties": False}
    r = post(server, "/v1/chat/completions", {
        "model": "smart", "messages": [{"role": "user", "content": "weather as JSON"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}}})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"city": "Paris", "temp": 21.5}
    assert upstream_requests(upstream)[-1]["body"]["response_format"]["json_schema"]["schema"] == schema
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": [{"role": "user", "content": "x"}],
                                              "response_format": {"type": "json_object"}, "seed": 7,
                                              "presence_penalty": 0.5, "frequency_penalty": -0.5, "user": "u-1"})
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"ok": True}
    sent = upstream_requests(upstream)[-1]["body"]
    assert (sent["seed"], sent["presence_penalty"], sent["frequency_penalty"], sent["user"]) == (7, 0.5, -0.5, "u-1")
    openai_error(post(server, "/v1/chat/completions", {"model": "smart", "messages": [{"role": "user", "content": "x"}],
                                                       "response_format": {"type": "yaml"}}),
                 400, "invalid_request", "response_format")


def test_the_upstreams_finish_reason_logprobs_and_n(server, upstream, worker_for):
    worker_for(upstream, "smart")
    msgs = [{"role": "user", "content": "x"}]
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "max_tokens": 2})
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["choices"][0]["message"]["content"] == "cut"
    chunks = stream_events(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "max_tokens": 2})
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    # the job's own output keeps the text for every other door
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "logprobs": True, "top_logprobs": 1})
    choice = r.json()["choices"][0]
    assert [t["token"] for t in choice["logprobs"]["content"]] == ["Hello", " from", " upstream"]
    assert choice["logprobs"]["content"][0]["top_logprobs"][0]["logprob"] == -0.5
    chunks = stream_events(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "logprobs": True})
    assert [t["token"] for c in chunks if c["choices"] and c["choices"][0].get("logprobs")
            for t in c["choices"][0]["logprobs"]["content"]] == ["Hello", " from", " upstream"]
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "n": 3})
    assert [c["message"]["content"] for c in r.json()["choices"]] == ["answer 0", "answer 1", "answer 2"]
    assert [c["index"] for c in r.json()["choices"]] == [0, 1, 2]
    chunks = stream_events(server, "/v1/chat/completions", {"model": "smart", "messages": msgs, "n": 2})
    texts = {0: "", 1: ""}
    for c in chunks:
        for ch in c["choices"]:
            texts[ch["index"]] += ch["delta"].get("content") or ""
    assert texts == {0: "answer 0", 1: "answer 1"}


def test_images_reach_an_upstream_that_takes_them(server, upstream, worker_for):
    worker_for(upstream, "smart")
    content = [{"type": "text", "text": "what is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]
    r = post(server, "/v1/chat/completions", {"model": "smart", "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200, r.text
    assert upstream_requests(upstream)[-1]["body"]["messages"][0]["content"] == content


def test_legacy_completions(server, upstream, worker_for):
    worker_for(upstream, "smart")
    r = post(server, "/v1/completions", {"model": "smart", "prompt": "Say hi", "logprobs": 1, "echo": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    choice = body["choices"][0]
    assert choice["text"] == "Say hiHello from upstream" and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["tokens"] == ["Hello", " from", " upstream"]
    assert choice["logprobs"]["token_logprobs"] == [-0.5, -0.5, -0.5]
    sent = upstream_requests(upstream)[-1]
    assert sent["path"] == "/v1/completions" and sent["body"]["prompt"] == "Say hi"
    assert sent["body"]["logprobs"] == 1 and sent["body"]["max_tokens"] == 16  # OpenAI's legacy default
    chunks = stream_events(server, "/v1/completions", {"model": "smart", "prompt": "Say hi", "max_tokens": 50})
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Hello from upstream"
    assert all(c["object"] == "text_completion" for c in chunks)
    openai_error(post(server, "/v1/completions", {"model": "smart", "prompt": "x", "suffix": "y"}),
                 400, "unsupported_parameter", "suffix")
    openai_error(post(server, "/v1/completions", {"model": "smart", "prompt": [1, 2]}), 400, "invalid_request", "prompt")


def test_embeddings_dimensions_and_token_ids(server, upstream, worker_for):
    worker_for(upstream, "smart")
    r = post(server, "/v1/embeddings", {"model": "smart", "input": [[1, 2, 3], [4]], "dimensions": 3, "user": "u"})
    assert r.status_code == 200, r.text
    assert [len(d["embedding"]) for d in r.json()["data"]] == [3, 3]
    assert upstream_requests(upstream)[-1]["body"] == {"model": "smart", "input": [[1, 2, 3], [4]], "dimensions": 3,
                                                       "user": "u"}
    r = post(server, "/v1/embeddings", {"model": "smart", "input": [5, 6]})
    assert len(r.json()["data"]) == 1


def test_what_a_worker_cannot_honour_is_refused_by_name(server):
    Worker(server, models=["plain"])  # registers without saying which parameters it honours
    msgs = [{"role": "user", "content": "x"}]
    for param, value in [("tools", WEATHER), ("response_format", {"type": "json_object"}), ("logprobs", True),
                         ("presence_penalty", 1), ("n", 2), ("seed", 1)]:
        err = openai_error(post(server, "/v1/chat/completions", {"model": "plain", "messages": msgs, param: value}),
                           400, "unsupported_parameter", param)
        assert "plain" in err["message"]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]
    openai_error(post(server, "/v1/chat/completions", {"model": "plain", "messages": image}), 400,
                 "unsupported_content", "messages")
    openai_error(post(server, "/v1/embeddings", {"model": "plain", "input": "x", "dimensions": 4}), 400,
                 "unsupported_parameter", "dimensions")
    openai_error(post(server, "/v1/chat/completions", {"model": "plain", "messages": msgs, "functions": []}), 400,
                 "unknown_parameter", "functions")
    # values that ask nothing pass, and reach the worker as given
    w = Worker(server, models=["plain"])
    t, box = run_in_background(lambda: post(server, "/v1/chat/completions", {
        "model": "plain", "messages": msgs, "n": 1, "logprobs": False, "max_tokens": 5, "user": "u-2"}))
    job = w.lease_one(wait_s=10)
    assert job["input"]["params"] == {"n": 1, "logprobs": False, "max_tokens": 5, "user": "u-2"}
    w.complete(job, output="fine")
    t.join(PATIENCE)
    assert box["result"].json()["choices"][0]["message"]["content"] == "fine"


def test_an_echo_worker_honours_n_seed_and_dimensions(server):
    import subprocess, os, signal
    from conftest import BIN, wait_until
    log = os.path.join(server.data_dir, "echo-worker.log")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--model", "e"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "registered as" in open(log).read(), what="the worker to register")
        r = post(server, "/v1/chat/completions", {"model": "e", "messages": [{"role": "user", "content": "two words"}],
                                                  "n": 2, "seed": 3})
        assert [c["message"]["content"] for c in r.json()["choices"]] == ["two words", "two words"]
        r = post(server, "/v1/embeddings", {"model": "e", "input": "x", "dimensions": 5})
        assert len(r.json()["data"][0]["embedding"]) == 5
        openai_error(post(server, "/v1/chat/completions", {"model": "e", "messages": [{"role": "user", "content": "x"}],
                                                           "tools": WEATHER}), 400, "unsupported_parameter", "tools")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_every_error_of_the_door_is_openais_shape(server):
    for method, path in [("POST", "/v1/images/generations"), ("GET", "/v1/fine_tuning/jobs"),
                         ("GET", "/v1/models/a/b"), ("POST", "/v1/chat/completions/x")]:
        r = requests.request(method, server.url + path, timeout=30)
        err = openai_error(r, 404, "unknown_url")
        assert err["type"] == "invalid_request_error" and path in err["message"]
    r = requests.get(server.url + "/v1/chat/completions", timeout=30)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_a_retry_that_streamed_more_than_it_kept(server):
    """A worker streams a long text, then completes with a shorter answer carrying logprobs (a retry
    after a partial stream does this): the stream ends cleanly with the logprobs it had not sent."""
    w = Worker(server, models=["m1"])
    r = {}

    def run():
        r["chunks"] = [json.loads(x[6:]) for x in post(server, "/v1/chat/completions", {
            "model": "m1", "messages": [{"role": "user", "content": "x"}], "stream": True}, stream=True)
            .iter_lines(decode_unicode=True) if x.startswith("data: ") and x != "data: [DONE]"]
    t, _ = run_in_background(run)
    job = w.lease_one(wait_s=10)
    assert server.post(f"/v1/jobs/{job['id']}/chunks", {"lease": job["lease"]["token"],
                                                         "chunks": ["A" * 4000]}).status_code == 200
    w.complete(job, output={"content": "B", "finish_reason": "stop", "logprobs": {"content": [
        {"token": "B", "logprob": -0.1, "top_logprobs": []}]}})
    t.join(PATIENCE)
    assert r["chunks"][-1]["choices"][0]["finish_reason"] == "stop"
    assert any(c["choices"] and (c["choices"][0].get("logprobs") or {}).get("content") for c in r["chunks"])
