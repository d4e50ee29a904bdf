"""OpenAI's Files and Batch APIs: upload (multipart), retrieve, content, delete, list; a batch whose
requests are ordinary queued jobs, with OpenAI's statuses, request counts and its output and error files
in OpenAI's JSONL; a file that does not validate; cancel; a coordinator restart in the middle; the
limits; and the batch price. Real `promptq worker`s (echo backend)."""
import json
import os
import signal
import socket

import pytest
import requests

from conftest import PATIENCE, Server, cli, wait_until
from test_openai_responses import Workers, openai_error


@pytest.fixture
def workers(tmpdir_path):
    w = Workers(tmpdir_path)
    yield w
    w.stop_all()


def line(custom_id, content, model="e", url="/v1/chat/completions", **extra):
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url,
                       "body": {"model": model, "messages": [{"role": "user", "content": content}], **extra}})


def upload(server, text, headers=None, purpose="batch", name="requests.jsonl"):
    data = text if isinstance(text, bytes) else text.encode()
    return requests.post(server.url + "/v1/files", files={"file": (name, data)}, data={"purpose": purpose},
                         headers=headers or {}, timeout=PATIENCE)


def create(server, file_id, headers=None, endpoint="/v1/chat/completions", **extra):
    return requests.post(server.url + "/v1/batches", headers=headers or {}, timeout=PATIENCE,
                         json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra})


def batch(server, batch_id, headers=None):
    r = requests.get(f"{server.url}/v1/batches/{batch_id}", headers=headers or {}, timeout=PATIENCE)
    assert r.status_code == 200, r.text
    return r.json()


def until(server, batch_id, statuses, headers=None):
    return wait_until(lambda: (lambda b: b if b["status"] in statuses else None)(batch(server, batch_id, headers)),
                      what=f"the batch to be {statuses}")


def content(server, file_id, headers=None):
    r = requests.get(f"{server.url}/v1/files/{file_id}/content", headers=headers or {}, timeout=PATIENCE)
    assert r.status_code == 200, r.text
    return [json.loads(x) for x in r.text.splitlines() if x]


def test_files_and_a_batch_end_to_end(server, workers):
    workers.start(server, "e,emb")
    text = "\n".join([line("a", "first one"), line("b", "second one"), line("c", "third one", max_tokens=5),
                      line("bad", "x", model="e", tools="not a list")]) + "\n"
    f = upload(server, text)
    assert f.status_code == 200, f.text
    meta = f.json()
    assert meta["object"] == "file" and meta["purpose"] == "batch" and meta["bytes"] == len(text.encode())
    assert meta["filename"] == "requests.jsonl" and meta["id"].startswith("file-")
    assert requests.get(f"{server.url}/v1/files/{meta['id']}", timeout=30).json() == meta
    assert requests.get(f"{server.url}/v1/files/{meta['id']}/content", timeout=30).text == text
    r = create(server, meta["id"], metadata={"job": "nightly"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["object"] == "batch" and b["id"].startswith("batch_") and b["endpoint"] == "/v1/chat/completions"
    assert b["status"] in ("in_progress", "finalizing") and b["metadata"] == {"job": "nightly"}
    assert b["request_counts"]["total"] == 4 and b["input_file_id"] == meta["id"]
    done = until(server, b["id"], ("completed",))
    assert done["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    assert done["completed_at"] and done["output_file_id"] and done["error_file_id"]
    out = content(server, done["output_file_id"])
    assert sorted(o["custom_id"] for o in out) == ["a", "b", "c"]
    by_id = {o["custom_id"]: o for o in out}
    assert by_id["a"]["response"]["status_code"] == 200 and by_id["a"]["error"] is None
    body = by_id["b"]["response"]["body"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "second one"
    assert by_id["a"]["id"].startswith("batch_req_") and by_id["a"]["response"]["request_id"]
    # each request was an ordinary low-priority job of the batch
    job = requests.get(f"{server.url}/v1/jobs/{by_id['a']['response']['request_id']}", timeout=30).json()
    assert job["priority"] == -100 and job["status"] == "completed"
    errors = content(server, done["error_file_id"])
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("bad", 400)]
    assert errors[0]["response"]["body"]["error"]["param"] == "tools"
    # the listings
    listed = requests.get(f"{server.url}/v1/batches", timeout=30).json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == b["id"]
    files = requests.get(f"{server.url}/v1/files", timeout=30).json()["data"]
    assert {x["id"] for x in files} == {meta["id"], done["output_file_id"], done["error_file_id"]}
    assert {x["purpose"] for x in files} == {"batch", "batch_output"}
    assert requests.get(f"{server.url}/v1/files?purpose=batch", timeout=30).json()["data"] == [meta]
    d = requests.delete(f"{server.url}/v1/files/{meta['id']}", timeout=30)
    assert d.json() == {"id": meta["id"], "object": "file", "deleted": True}
    openai_error(requests.get(f"{server.url}/v1/files/{meta['id']}", timeout=30), 404, "not_found")
    # an output file is not a batch's input
    openai_error(create(server, done["output_file_id"]), 400, "invalid_request", "input_file_id")
    # a batch's Idempotency-Key is the batch's: a repeat is the same batch, and its requests each run
    again_file = upload(server, "\n".join([line("x", "one"), line("y", "two")])).json()
    first = create(server, again_file["id"], headers={"Idempotency-Key": "nightly-7"})
    assert first.status_code == 200, first.text
    second = create(server, again_file["id"], headers={"Idempotency-Key": "nightly-7"})
    assert second.json()["id"] == first.json()["id"]
    assert until(server, first.json()["id"], ("completed",))["request_counts"]["completed"] == 2
    # embeddings batches too
    emb = upload(server, json.dumps({"custom_id": "e1", "method": "POST", "url": "/v1/embeddings",
                                     "body": {"model": "emb", "input": "hello"}}) + "\n").json()
    eb = create(server, emb["id"], endpoint="/v1/embeddings").json()
    eb = until(server, eb["id"], ("completed",))
    assert content(server, eb["output_file_id"])[0]["response"]["body"]["object"] == "list"


def test_a_file_that_does_not_validate(server, workers):
    workers.start(server, "e")
    openai_error(upload(server, line("a", "x") + "\n{not json\n"), 400, "invalid_file_format", "file")
    openai_error(upload(server, line("a", "x"), purpose="fine-tune"), 400, "invalid_request", "purpose")
    openai_error(upload(server, "\xff\xfe", name="x.jsonl"), 400)
    for bad in (b'{"custom_id": "\xc0\xaf"}', b'{"custom_id": "\xed\xa0\x80"}', b'{"custom_id": "a\x00"}'):
        openai_error(upload(server, bad), 400, "invalid_file_format", "file")  # overlong, surrogate, NUL
    r = requests.post(server.url + "/v1/files", data={"purpose": "batch"}, timeout=30)
    openai_error(r, 415)
    # lines that break the batch's rules fail the batch as a whole, with OpenAI's errors
    bad = upload(server, "\n".join([line("a", "x"), line("a", "y"), line("b", "z", url="/v1/embeddings")])).json()
    b = create(server, bad["id"]).json()
    assert b["status"] == "failed" and b["failed_at"]
    assert [(e["code"], e["line"]) for e in b["errors"]["data"]] == [("duplicate_custom_id", 2),
                                                                    ("mismatched_endpoint", 3)]
    assert requests.get(f"{server.url}/v1/jobs?status=queued", timeout=30).json()["pagination"]["total"] == 0
    openai_error(create(server, bad["id"], endpoint="/v1/images"), 400, "invalid_request", "endpoint")
    openai_error(requests.post(server.url + "/v1/batches", json={"input_file_id": bad["id"], "endpoint":
                                                                  "/v1/chat/completions", "completion_window": "1h"},
                               timeout=30), 400, "invalid_request", "completion_window")
    openai_error(create(server, "file-nope"), 404, "not_found", "input_file_id")
    emb = upload(server, json.dumps({"custom_id": "b64", "method": "POST", "url": "/v1/embeddings",
                                     "body": {"model": "e", "input": "x", "encoding_format": "base64"}})).json()
    refused = until(server, create(server, emb["id"], endpoint="/v1/embeddings").json()["id"], ("completed",))
    assert refused["request_counts"] == {"total": 1, "completed": 0, "failed": 1}
    assert content(server, refused["error_file_id"])[0]["response"]["body"]["error"]["param"] == "encoding_format"
    openai_error(requests.get(f"{server.url}/v1/batches/batch_nope", timeout=30), 404, "not_found")


def test_limits(tmpdir_path, make_server, workers):
    server = make_server("--max-upload", "2m")
    # the server's own limit on an upload (set low here) is answered before the body is read, in OpenAI's shape
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 3000000\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "request_too_large"
    # ... and a body under it passes, though it is larger than --max-body (1m), which other routes keep
    ok = upload(server, line("a", "x" * 1500000))
    assert ok.status_code == 200, ok.text
    # OpenAI's limit of 50,000 requests a file
    tiny = json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {}})
    many = "\n".join(tiny.replace('"x"', f'"{i}"') for i in range(50001))
    os.makedirs(os.path.join(tmpdir_path, "big"))
    big = make_server("--max-upload", "16m", data_dir=os.path.join(tmpdir_path, "big"))
    openai_error(upload(big, many), 400, "too_many_lines", "file")


def test_cancel_keeps_what_ran(server, workers):
    workers.start(server, "e", "--echo-delay", "200ms", "--concurrency", "1")
    text = "\n".join(line(f"r{i}", "one two three") for i in range(6))
    b = create(server, upload(server, text).json()["id"]).json()
    wait_until(lambda: batch(server, b["id"])["request_counts"]["completed"] >= 1, what="a request to complete")
    c = requests.post(f"{server.url}/v1/batches/{b['id']}/cancel", timeout=30)
    assert c.status_code == 200 and c.json()["status"] in ("cancelling", "cancelled")
    done = until(server, b["id"], ("cancelled",))
    assert done["cancelled_at"] and done["request_counts"]["total"] == 6
    out = content(server, done["output_file_id"])
    errors = content(server, done["error_file_id"])
    assert len(out) >= 1 and len(out) + len(errors) == 6
    assert {e["error"]["code"] for e in errors if e["error"]} <= {"batch_cancelled"}
    assert any(e["error"] and e["error"]["code"] == "batch_cancelled" for e in errors)
    # its work came with its submit: retrying the job alone would "complete" an empty copy, so it is refused
    r = requests.post(f"{server.url}/v1/jobs/{b['id'].removeprefix('batch_')}/retry", timeout=30)
    assert r.status_code == 409 and "submit it again" in r.json()["error"]["message"], r.text


def test_a_batch_survives_a_restart(tmpdir_path, workers):
    # a lease held by a worker that went away returns to the queue within a second
    server = Server(tmpdir_path, ["--lease-timeout", "1s"]).start()
    proc = workers.start(server, "e")
    proc.send_signal(signal.SIGTERM)  # its model stays known while it is away
    assert proc.wait(timeout=PATIENCE) == 0
    text = "\n".join(line(f"r{i}", f"request {i}") for i in range(20))
    b = create(server, upload(server, text).json()["id"]).json()
    assert b["status"] == "in_progress"
    server.kill9()
    restarted = Server(tmpdir_path, ["--lease-timeout", "1s"]).start()
    try:
        assert batch(restarted, b["id"])["request_counts"] == {"total": 20, "completed": 0, "failed": 0}
        workers.start(restarted, "e")
        done = until(restarted, b["id"], ("completed",))
        assert done["request_counts"] == {"total": 20, "completed": 20, "failed": 0}
        out = content(restarted, done["output_file_id"])
        assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(20))
        assert all(o["response"]["body"]["choices"][0]["message"]["content"] == f"request {o['custom_id'][1:]}"
                   for o in out)
    finally:
        workers.stop_all()
        assert restarted.stop() == 0


def test_the_batch_price_and_tenancy(tmpdir_path, make_server, workers):
    cli("user", "add", "ann", "--admin", "--data", tmpdir_path, stdin="ann-password\n")
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    cli("user", "add", "carol", "--data", tmpdir_path, stdin="carol-password\n")
    keys = {who: cli("key", "create", "--user", who, *(["--scope", "admin"] if who == "ann" else []),
                     "--data", tmpdir_path) for who in ("ann", "bob", "carol")}
    wkey = cli("key", "create", "--user", "ann", "--scope", "worker", "--data", tmpdir_path)
    cli("price", "set", "e", "--input", "1000", "--output", "2000", "--data", tmpdir_path)
    server = make_server("--batch-discount", "50", data_dir=tmpdir_path, secured=True)
    h = {who: {"Authorization": f"Bearer {k}"} for who, k in keys.items()}
    assert requests.post(server.url + "/v1/credits/grant", json={"user": "bob", "amount": "100"}, headers=h["ann"],
                         timeout=30).status_code == 201
    workers.start(server, "e", key=wkey)
    # the same request, alone and in a batch
    alone = requests.post(server.url + "/v1/chat/completions", headers=h["bob"], timeout=60,
                          json={"model": "e", "messages": [{"role": "user", "content": "price me please"}]}).json()
    f = upload(server, line("p", "price me please"), headers=h["bob"]).json()
    b = create(server, f["id"], headers=h["bob"]).json()
    done = until(server, b["id"], ("completed",), headers=h["bob"])
    job = requests.get(f"{server.url}/v1/jobs/{done['id'][len('batch_'):]}", headers=h["bob"], timeout=30).json()
    assert job["cost"]["micros"] * 2 == round(alone["usage"]["cost"] * 1e6)
    # carol sees none of it
    openai_error(requests.get(f"{server.url}/v1/batches/{b['id']}", headers=h["carol"], timeout=30), 404)
    openai_error(requests.get(f"{server.url}/v1/files/{f['id']}", headers=h["carol"], timeout=30), 404)
    openai_error(requests.get(f"{server.url}/v1/files/{done['output_file_id']}/content", headers=h["carol"],
                              timeout=30), 404)
    openai_error(create(server, f["id"], headers=h["carol"]), 404, "not_found", "input_file_id")
    assert requests.get(server.url + "/v1/batches", headers=h["carol"], timeout=30).json()["data"] == []
    assert requests.get(server.url + "/v1/files", headers=h["carol"], timeout=30).json()["data"] == []


def test_a_request_of_a_batch_stays_with_its_batch(server, workers):
    workers.start(server, "e")
    text = json.dumps({"custom_id": "r", "method": "POST", "url": "/v1/responses", "body": {"model": "e", "input": "hi"}})
    b = until(server, create(server, upload(server, text).json()["id"], endpoint="/v1/responses").json()["id"],
              ("completed",))
    out = content(server, b["output_file_id"])
    rid = out[0]["response"]["body"]["id"]
    assert out[0]["response"]["body"]["object"] == "response" and rid.startswith("resp_")
    openai_error(requests.delete(f"{server.url}/v1/responses/{rid}", timeout=30), 400, "invalid_request")
    assert content(server, b["output_file_id"])[0]["custom_id"] == "r"
