"""Signed receipts: issued for completed jobs, checked offline, broken by any change."""
import json
import os
import subprocess

import requests

from conftest import BIN, Worker, assert_error


def verify(path, *args):
    return subprocess.run([BIN, "receipt", "verify", path, *args], capture_output=True, text=True, timeout=30)


def test_receipt_flow(server, tmpdir_path):
    key = requests.get(server.url + "/v1/receipts/key", timeout=30).json()
    assert key["algorithm"] == "ed25519" and len(key["key_id"]) == 16
    ack = server.submit("sign me", model="m1")
    assert_error(server.get(f"/v1/jobs/{ack['id']}/receipt"), 409, "INVALID_STATE")  # not done yet
    w = Worker(server, models=["m1"])
    w.complete(w.lease_one(), output="signed answer", usage={"prompt_tokens": 2, "completion_tokens": 2})
    r = server.get(f"/v1/jobs/{ack['id']}/receipt")
    assert r.status_code == 200
    receipt = r.json()
    body = receipt["receipt"]
    assert body["job_id"] == ack["id"] and body["worker_id"] == w.id and body["model"] == "m1"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2}
    assert len(body["input_sha256"]) == 64 and body["started_at"] and body["completed_at"]
    assert receipt["signature"]["public_key"] == key["public_key"]
    assert server.get(f"/v1/jobs/{ack['id']}/receipt").json() == receipt  # the same bytes each time

    path = os.path.join(tmpdir_path, "receipt.json")
    json.dump(receipt, open(path, "w"))
    ok = verify(path, "--public-key", key["public_key"])  # offline
    assert ok.returncode == 0 and ok.stdout.startswith("valid"), ok.stdout + ok.stderr
    assert verify(path, "--coordinator", server.url).returncode == 0  # key fetched from the coordinator
    for field, value in [("model", "gpt-9"), ("output_sha256", "0" * 64), ("worker_id", "someone"),
                         ("usage", {"prompt_tokens": 2, "completion_tokens": 99}), ("completed_at", "2030-01-01")]:
        tampered = json.loads(json.dumps(receipt))
        tampered["receipt"][field] = value
        json.dump(tampered, open(path, "w"))
        bad = verify(path, "--public-key", key["public_key"])
        assert bad.returncode == 1 and bad.stdout.startswith("INVALID"), field


def test_receipt_key_survives_restarts(tmpdir_path):
    from conftest import Server
    first = Server(tmpdir_path).start()
    k1 = requests.get(first.url + "/v1/receipts/key", timeout=30).json()["public_key"]
    assert first.stop() == 0
    second = Server(tmpdir_path).start()
    try:
        assert requests.get(second.url + "/v1/receipts/key", timeout=30).json()["public_key"] == k1
        assert oct(os.stat(os.path.join(tmpdir_path, "receipt.key")).st_mode & 0o777) == "0o600"
    finally:
        assert second.stop() == 0
