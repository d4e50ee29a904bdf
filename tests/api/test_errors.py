"""Every class of bad input gets its own code in the one error envelope."""
import socket

import pytest
import requests

from conftest import PATIENCE, Worker, assert_error

UNKNOWN = "01a20000-0000-7000-8000-000000000000"


def raw(server, method, path, data, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.request(method, server.url + path, data=data, headers=headers, timeout=30)


def test_malformed_json(server):
    err = assert_error(raw(server, "POST", "/v1/jobs", b'{"model": "echo", "prompt": '), 400,
                       "INVALID_JSON")
    assert "line" in err["details"] and "column" in err["details"]
    assert_error(raw(server, "POST", "/v1/jobs", b'{"a":1,"a":2}'), 400, "INVALID_JSON")
    assert_error(raw(server, "POST", "/v1/jobs", b'\xff\xfe'), 400, "INVALID_JSON")


def test_body_must_be_an_object(server):
    assert_error(raw(server, "POST", "/v1/jobs", b'["model"]'), 400, "INVALID_REQUEST")
    assert_error(raw(server, "POST", "/v1/jobs", b'"text"'), 400, "INVALID_REQUEST")
    assert_error(raw(server, "POST", "/v1/jobs", b''), 400, "INVALID_REQUEST")


@pytest.mark.parametrize("body,field", [
    ({"prompt": "no model"}, "model"),
    ({"model": 5, "prompt": "x"}, "model"),
    ({"model": "", "prompt": "x"}, "model"),
    ({"model": "echo", "prompt": 12}, "prompt"),
    ({"model": "echo", "prompt": "x", "priority": "high"}, "priority"),
    ({"model": "echo", "prompt": "x", "priority": 1.5}, "priority"),
    ({"model": "echo", "prompt": "x", "max_attempts": 0}, "max_attempts"),
    ({"model": "echo", "prompt": "x", "promtp": "typo"}, "promtp"),
    ({"model": "echo", "messages": []}, "messages"),
    ({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ({"model": "echo", "messages": [{"role": "user"}]}, "content"),
    ({"model": "echo", "prompt": "x", "params": {"temperature": 9}}, "temperature"),
    ({"model": "echo", "prompt": "x", "params": {"max_tokens": "many"}}, "max_tokens"),
    ({"model": "echo", "prompt": "x", "params": {"bogus": 1}}, "bogus"),
    ({"model": "echo", "prompt": "x", "params": {"stop": [1]}}, "stop"),
])
def test_wrong_types_missing_and_unknown_fields(server, body, field):
    err = assert_error(server.post("/v1/jobs", body), 400, "INVALID_REQUEST")
    assert field in err["message"] or err["details"].get("field") == field, err


def test_a_job_needs_something_to_do(server):
    assert_error(server.post("/v1/jobs", {"model": "echo"}), 400, "INVALID_REQUEST")
    assert_error(server.post("/v1/jobs", {"model": "echo", "prompt": ""}), 400, "INVALID_REQUEST")


def test_body_over_the_limit(make_server):
    server = make_server("--max-body", "4k")
    big = {"model": "echo", "prompt": "x" * 5000}
    err = assert_error(server.post("/v1/jobs", big), 413, "PAYLOAD_TOO_LARGE")
    assert err["details"]["max_bytes"] == 4096
    # a chunked body (no Content-Length) is cut off the same way
    chunks = (b"x" * 1024 for _ in range(8))
    r = requests.post(server.url + "/v1/jobs", data=chunks,
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert server.get("/health").status_code == 200


def test_unknown_ids(server):
    assert_error(server.get(f"/v1/jobs/{UNKNOWN}"), 404, "NOT_FOUND")
    assert_error(server.get("/v1/jobs/not-a-uuid"), 404, "NOT_FOUND")
    assert_error(server.post(f"/v1/jobs/{UNKNOWN}/cancel"), 404, "NOT_FOUND")
    assert_error(server.post(f"/v1/workers/{UNKNOWN}/lease", {}), 404, "NOT_FOUND")
    assert_error(server.post(f"/v1/workers/{UNKNOWN}/heartbeat"), 404, "NOT_FOUND")
    assert_error(server.get("/v1/nothing-here"), 404, "NOT_FOUND")


def test_wrong_methods(server):
    r = requests.delete(server.url + "/v1/jobs", timeout=30)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST"}
    r = requests.put(server.url + f"/v1/jobs/{UNKNOWN}", timeout=30)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "GET"


def test_wrong_content_type(server):
    r = raw(server, "POST", "/v1/jobs", b'{"model":"echo","prompt":"x"}', "text/plain")
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_worker_payload_errors(server):
    ack = server.submit("x")
    w = Worker(server)
    job = w.lease_one()
    path = f"/v1/jobs/{ack['id']}/complete"
    assert_error(server.post(path, {"output": "x"}), 400, "INVALID_REQUEST")  # no lease
    assert_error(server.post(path, {"lease": job["lease"]["token"]}), 400, "INVALID_REQUEST")
    assert_error(server.post(path, {"lease": job["lease"]["token"], "output": "x",
                                    "usage": {"prompt_tokens": -1}}), 400, "INVALID_REQUEST")
    assert_error(server.post(f"/v1/jobs/{ack['id']}/fail", {"lease": job["lease"]["token"],
                                                           "error": "oops"}), 400, "INVALID_REQUEST")
    assert_error(server.post(f"/v1/workers/{w.id}/lease", {"max_jobs": 1001}), 400, "INVALID_REQUEST")
    assert_error(server.post(f"/v1/workers/{w.id}/lease", {"wait_s": -1}), 400, "INVALID_REQUEST")
    assert_error(server.post("/v1/workers", {"name": "x", "models": "echo"}), 400, "INVALID_REQUEST")
    # nothing changed
    assert server.job(ack["id"])["status"] == "leased"


def test_idle_and_slow_clients_are_cut_off(make_server):
    server = make_server("--idle-timeout", "1s")
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    silent = socket.create_connection(("127.0.0.1", server.port))
    # others are served meanwhile
    assert server.get("/health").status_code == 200
    for s in (slow, silent):
        s.settimeout(PATIENCE)
        assert s.recv(4096) == b""  # the server closed it
        s.close()
    assert server.get("/v1/jobs").json()["pagination"]["total"] == 0
