"""The OpenAI-compatible front door, byte for byte in OpenAI's format."""
import json
import threading

import requests

from conftest import PATIENCE, Worker


def openai_error(r, status, code, param=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and err["param"] == param
    return err


def chat(server, body, stream=False):
    return requests.post(f"{server.url}/v1/chat/completions", json=body, stream=stream,
                         timeout=PATIENCE + 30)


def run_in_background(fn):
    box = {}
    t = threading.Thread(target=lambda: box.update(result=fn()))
    t.start()
    return t, box


def test_completion_through_the_queue(server):
    w = Worker(server, models=["m1"])
    t, box = run_in_background(lambda: chat(server, {
        "model": "m1", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 10, "temperature": 0.5, "user": "end-user-7"}))
    job = w.lease_one(wait_s=10)
    assert job["input"]["messages"] == [{"role": "user", "content": "hi"}]
    assert job["input"]["params"] == {"max_tokens": 10, "temperature": 0.5, "user": "end-user-7"}
    w.complete(job, output="hello", usage={"prompt_tokens": 1, "completion_tokens": 1})
    t.join(PATIENCE)
    r = box["result"]
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"] == f"chatcmpl-{job['id']}"
    assert body["model"] == "m1" and isinstance(body["created"], int)
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "hello",
                                                        "refusal": None},
                                "logprobs": None, "finish_reason": "stop"}]
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    # the same job is visible natively
    assert server.job(job["id"])["status"] == "completed"


def sse_data(response):
    return [line[len("data: "):] for line in response.iter_lines(decode_unicode=True)
            if line.startswith("data: ")]


def test_stream_format(server):
    w = Worker(server, models=["m1"])
    t, box = run_in_background(lambda: sse_data(chat(server, {
        "model": "m1", "messages": [{"role": "user", "content": "x"}], "stream": True,
        "stream_options": {"include_usage": True}}, stream=True)))
    job = w.lease_one(wait_s=10)
    server.post(f"/v1/jobs/{job['id']}/chunks", {"lease": job["lease"]["token"], "chunks": ["He", "llo"]})
    w.complete(job, output="Hello world", usage={"prompt_tokens": 3, "completion_tokens": 2})
    t.join(PATIENCE)
    lines = box["result"]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(l) for l in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == f"chatcmpl-{job['id']}"
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:] if c["choices"]]
    # streamed pieces, then what the worker did not stream, then the finish chunk
    assert contents == ["He", "llo", " world", None]
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "stop"
    assert finish[0]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_fields(server):
    w = Worker(server, models=["m1"])
    t, box = run_in_background(lambda: sse_data(chat(server, {
        "model": "m1", "messages": [{"role": "user", "content": "x"}], "stream": True}, stream=True)))
    w.complete(w.lease_one(wait_s=10), output="ok")
    t.join(PATIENCE)
    chunks = [json.loads(l) for l in box["result"][:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_stream_reports_a_failed_job(server):
    w = Worker(server, models=["m1"])
    t, box = run_in_background(lambda: sse_data(chat(server, {
        "model": "m1", "messages": [{"role": "user", "content": "x"}], "stream": True}, stream=True)))
    w.fail(w.lease_one(wait_s=10), code="UPSTREAM_DOWN", message="model server gone", retryable=False)
    t.join(PATIENCE)
    last = json.loads(box["result"][-1])
    assert last["error"]["code"] == "UPSTREAM_DOWN" and last["error"]["type"] == "server_error"


def test_failed_job_without_streaming(server):
    w = Worker(server, models=["m1"])
    t, box = run_in_background(lambda: chat(server, {"model": "m1",
                                                     "messages": [{"role": "user", "content": "x"}]}))
    w.fail(w.lease_one(wait_s=10), code="UPSTREAM_DOWN", message="gone", retryable=False)
    t.join(PATIENCE)
    err = openai_error(box["result"], 500, "upstream_down")
    assert err["type"] == "server_error" and "gone" in err["message"]


def test_errors_in_openai_shape(server):
    Worker(server, models=["m1"])
    openai_error(chat(server, {"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
                 404, "model_not_found", "model")
    openai_error(chat(server, {"model": "m1", "messages": []}), 400, "invalid_request", "messages")
    openai_error(chat(server, {"messages": [{"role": "user", "content": "x"}]}), 400,
                 "invalid_request", "model")
    openai_error(chat(server, {"model": "m1", "messages": [{"role": "user", "content": "x"}], "n": 2}),
                 400, "unsupported_parameter", "n")  # no worker of m1 says it honours n
    openai_error(chat(server, {"model": "m1", "messages": [{"role": "user", "content": "x"}],
                               "temperature": 7}), 400, "invalid_request", "temperature")
    r = requests.post(f"{server.url}/v1/chat/completions", data=b"{oops",
                      headers={"Content-Type": "application/json"}, timeout=30)
    openai_error(r, 400, "invalid_json")
    openai_error(requests.get(f"{server.url}/v1/models/nope", timeout=30), 404, "model_not_found", "model")


def test_models_follow_live_workers(make_server):
    server = make_server("--worker-timeout", "500ms", "--reap-interval", "20ms")
    assert server.get("/v1/models").json() == {"object": "list", "data": []}
    Worker(server, models=["a", "b"])
    Worker(server, models=["b", "c"])
    listing = server.get("/v1/models").json()
    assert sorted(m["id"] for m in listing["data"]) == ["a", "b", "c"]
    assert all(m["object"] == "model" and m["owned_by"] == "promptq" for m in listing["data"])
    from conftest import wait_until
    wait_until(lambda: server.get("/v1/models").json()["data"] == [],
               what="silent workers' models to disappear")


def test_embeddings(server):
    w = Worker(server, models=["emb"])
    t, box = run_in_background(lambda: requests.post(f"{server.url}/v1/embeddings",
                                                     json={"model": "emb", "input": ["a b", "c"]}, timeout=PATIENCE))
    job = w.lease_one(wait_s=10)
    assert job["input"] == {"embeddings": ["a b", "c"]}
    w.complete(job, output={"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]},
                                                       {"object": "embedding", "index": 1, "embedding": [0.2]}]},
               usage={"prompt_tokens": 3, "completion_tokens": 0})
    t.join(PATIENCE)
    body = box["result"].json()
    assert body["object"] == "list" and body["model"] == "emb"
    assert [d["embedding"] for d in body["data"]] == [[0.1], [0.2]]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    # encoding_format base64: little-endian float32s, as OpenAI sends them
    import base64
    import struct
    t, box = run_in_background(lambda: requests.post(f"{server.url}/v1/embeddings", timeout=PATIENCE,
                                                     json={"model": "emb", "input": "x", "encoding_format": "base64"}))
    w.complete(w.lease_one(wait_s=10), output={"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, -2.0]}]})
    t.join(PATIENCE)
    raw = base64.b64decode(box["result"].json()["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -2.0)
    openai_error(requests.post(f"{server.url}/v1/embeddings", json={"model": "emb"}, timeout=30),
                 400, "invalid_request", "input")
    # the schema names the item at fault
    openai_error(requests.post(f"{server.url}/v1/embeddings", json={"model": "emb", "input": [True]}, timeout=30),
                 400, "invalid_request", "input[0]")
