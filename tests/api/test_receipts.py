"""Signed receipts: issued for completed jobs, checked offline, broken by any change."""
import base64
import json
import os
import subprocess

import requests

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


def sign(key, job_id, input_obj, output_obj):
    import hashlib
    canon_in = json.dumps(input_obj, separators=(",", ":"), sort_keys=True)
    canon_out = json.dumps(output_obj, separators=(",", ":"))
    message = "promptq-receipt-v1:%s:%s:%s" % (job_id, hashlib.sha256(canon_in.encode()).hexdigest(),
                                               hashlib.sha256(canon_out.encode()).hexdigest())
    return base64.b64encode(key.sign(message.encode())).decode()


def test_a_worker_signs_with_the_key_it_registered(server, tmpdir_path):
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    r = server.post("/v1/workers", {"name": "signer", "models": ["m"], "public_key": pub})
    assert r.status_code == 201 and r.json()["public_key"] == pub
    wid = r.json()["id"]
    assert_error(server.post("/v1/workers", {"name": "x", "public_key": "not-a-key"}), 400, "INVALID_REQUEST")
    ack = server.submit("attest this", model="m")
    job = server.post(f"/v1/workers/{wid}/lease", {"wait_s": 5}).json()["jobs"][0]
    forged = sign(Ed25519PrivateKey.generate(), job["id"], job["input"], "answer")
    r = server.post(f"/v1/jobs/{job['id']}/complete",
                    {"lease": job["lease"]["token"], "output": "answer", "worker_signature": forged})
    assert_error(r, 400, "INVALID_REQUEST")
    assert server.job(ack["id"])["status"] == "leased"  # nothing changed
    good = sign(key, job["id"], job["input"], "answer")
    r = server.post(f"/v1/jobs/{job['id']}/complete",
                    {"lease": job["lease"]["token"], "output": "answer", "worker_signature": good})
    assert r.status_code == 200, r.text
    receipt = server.get(f"/v1/jobs/{ack['id']}/receipt").json()
    assert receipt["receipt"]["worker_signature"] == good and receipt["receipt"]["worker_public_key"] == pub
    path = os.path.join(tmpdir_path, "signed.json")
    json.dump(receipt, open(path, "w"))
    assert verify(path, "--coordinator", server.url).returncode == 0


def test_the_agent_signs_with_signing_key(server, tmpdir_path):
    log = open(os.path.join(tmpdir_path, "w.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--signing-key",
                             os.path.join(tmpdir_path, "worker.key")], stdout=log, stderr=subprocess.STDOUT)
    try:
        r = subprocess.run([BIN, "submit", "--coordinator", server.url, "--wait", "--json", "signed by the agent"],
                           capture_output=True, text=True, timeout=60)
        job = json.loads(r.stdout)
        receipt = server.get(f"/v1/jobs/{job['id']}/receipt").json()
        assert receipt["receipt"].get("worker_signature")
        path = os.path.join(tmpdir_path, "agent.json")
        json.dump(receipt, open(path, "w"))
        assert verify(path, "--coordinator", server.url).returncode == 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()
