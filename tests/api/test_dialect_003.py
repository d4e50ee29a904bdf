"""Seed 003, the coordinator API, as its document shows it: clients, miners
(workers underneath), users with a wallet, receipts, its error shape and limits."""
import base64
import json
import os
import subprocess

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import BIN, PATIENCE, Server, wait_until

CLIENT_KEY = "client-key-from-api-keys-1"
MINER_KEY = "miner-key-from-api-keys-22"


def start(tmpdir_path, *args):
    env_keys = f"{CLIENT_KEY},{MINER_KEY}"
    os.environ["API_KEYS"] = env_keys
    try:
        return Server(tmpdir_path, args, secured=True).start()
    finally:
        del os.environ["API_KEYS"]


def call(server, method, path, key=None, body=None, headers=None, params=None):
    h = dict(headers or {})
    if key:
        h["X-Api-Key"] = key
    return requests.request(method, server.url + path, json=body, headers=h, params=params, timeout=PATIENCE)


def error_003(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def test_client_and_miner_round_trip(tmpdir_path):
    server = start(tmpdir_path)
    try:
        # the document's example request
        r = call(server, "POST", "/v1/client/jobs", CLIENT_KEY,
                 {"job_type": "llm_inference", "parameters": {"prompt": "hello miners", "max_tokens": 16}})
        assert r.status_code == 201, r.text
        job = r.json()
        assert set(job) == {"id", "client_id", "job_type", "parameters", "status", "created_at", "updated_at"}
        assert job["status"] == "pending" and job["job_type"] == "llm_inference"
        assert job["parameters"]["prompt"] == "hello miners"

        miner = call(server, "POST", "/v1/miner/register", MINER_KEY,
                     {"address": "miner-1", "endpoint": "http://gpu:9000", "capabilities": ["echo"]}).json()
        assert set(miner) == {"id", "address", "endpoint", "capabilities", "status", "last_heartbeat"}
        assert miner["status"] == "active" and miner["capabilities"] == ["echo"]
        hb = call(server, "POST", "/v1/miner/heartbeat", MINER_KEY, {"miner_id": miner["id"]})
        assert hb.status_code == 200 and hb.json()["status"] == "ok"
        jobs = call(server, "GET", "/v1/miner/jobs", MINER_KEY, params={"miner_id": miner["id"], "wait_s": 5}).json()
        assert [j["id"] for j in jobs] == [job["id"]] and jobs[0]["lease_token"]
        status = call(server, "GET", f"/v1/client/jobs/{job['id']}/status", CLIENT_KEY).json()
        assert status["status"] == "running"
        done = call(server, "POST", "/v1/miner/result", MINER_KEY,
                    {"miner_id": miner["id"], "job_id": job["id"], "lease_token": jobs[0]["lease_token"],
                     "status": "completed", "result": {"text": "hi"}, "usage": {"completion_tokens": 1}})
        assert done.status_code == 200 and done.json()["status"] == "completed"
        status = call(server, "GET", f"/v1/client/jobs/{job['id']}/status", CLIENT_KEY).json()
        assert status["status"] == "completed" and status["result"] == {"text": "hi"}

        receipts = call(server, "GET", f"/v1/client/jobs/{job['id']}/receipts", CLIENT_KEY).json()
        assert len(receipts) == 1
        receipt = receipts[0]
        assert set(receipt) >= {"id", "job_id", "miner_id", "result", "proof", "created_at"}
        assert receipt["miner_id"] == miner["id"] and receipt["proof"]
        path = os.path.join(tmpdir_path, "r.json")
        json.dump(receipt["signed"], open(path, "w"))
        ok = subprocess.run([BIN, "receipt", "verify", path, "--coordinator", server.url], capture_output=True,
                            text=True, timeout=30)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        # a stale token changes nothing
        error_003(call(server, "POST", "/v1/miner/result", MINER_KEY,
                       {"job_id": job["id"], "lease_token": "stale", "status": "completed", "result": "x"}),
                  409, "LEASE_MISMATCH")
        # a result for a job that does not exist names it
        unknown = "01a20000-0000-7000-8000-0000000000ff"
        e = error_003(call(server, "POST", "/v1/miner/result", MINER_KEY,
                           {"job_id": unknown, "lease_token": "t", "status": "completed", "result": "x"}),
                      404, "JOB_NOT_FOUND")
        assert e["message"] == f"no job {unknown}" and e["details"]["job_id"] == unknown
        # the miner is a worker: the native registry knows it
        assert call(server, "GET", f"/v1/workers/{miner['id']}", MINER_KEY).json()["name"] == "miner-1"
    finally:
        assert server.stop() == 0


def test_error_shape_and_codes(tmpdir_path):
    server = start(tmpdir_path)
    try:
        e = error_003(call(server, "POST", "/v1/client/jobs", CLIENT_KEY,
                           {"job_type": "image_generation", "parameters": {}}), 400, "INVALID_JOB_TYPE")
        assert e["message"] == "The specified job type is not supported"
        error_003(call(server, "GET", "/v1/client/jobs/01a20000-0000-7000-8000-000000000000/status", CLIENT_KEY),
                  404, "JOB_NOT_FOUND")
        error_003(call(server, "POST", "/v1/client/jobs", None, {"job_type": "llm_inference", "parameters": {}}),
                  401, "UNAUTHORIZED")
        error_003(call(server, "POST", "/v1/miner/heartbeat", MINER_KEY, {"miner_id": "01a20000-0000-7000-8000-000000000000"}),
                  404, "MINER_NOT_FOUND")
        error_003(call(server, "GET", "/v1/miner/jobs", MINER_KEY), 400, "INVALID_REQUEST")
    finally:
        assert server.stop() == 0


def wallet():
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return key, pub


def login(server, key, pub, tamper=None):
    ch = call(server, "GET", "/v1/users/challenge", params={"wallet": pub}).json()
    sig = base64.b64encode(key.sign(ch["challenge"].encode())).decode()
    body = {"wallet": pub, "challenge": ch["challenge"], "signature": sig}
    if tamper:
        tamper(body)
    return call(server, "POST", "/v1/users/login", body=body), body


def test_wallet_login_is_real(tmpdir_path):
    server = start(tmpdir_path, "--rate-login", "100")  # this test logs in many times
    try:
        key, pub = wallet()
        r, body = login(server, key, pub)
        assert r.status_code == 200, r.text
        session = r.json()
        assert session["user"]["wallet"] == pub and session["session_token"]
        h = {"X-Session-Token": session["session_token"]}
        me = call(server, "GET", "/v1/users/me", headers=h)
        assert me.status_code == 200 and me.json()["id"] == session["user"]["id"]
        assert me.headers["RateLimit-Policy"].startswith("60;w=60")  # the user routes' limit
        bal = call(server, "GET", f"/v1/users/{session['user']['id']}/balance", headers=h).json()
        assert bal == {"user_id": session["user"]["id"], "balance": 0.0, "currency": "AITBC"}
        # the same wallet logs in again as the same user
        again, _ = login(server, key, pub)
        assert again.json()["user"]["id"] == session["user"]["id"]

        # replayed: the challenge was spent
        error_003(call(server, "POST", "/v1/users/login", body=body), 401, "INVALID_SIGNATURE")
        # wrong: another key signed it
        other, other_pub = wallet()
        r, _ = login(server, key, pub, tamper=lambda b: b.update(
            signature=base64.b64encode(other.sign(b["challenge"].encode())).decode()))
        error_003(r, 401, "INVALID_SIGNATURE")
        # someone else's challenge
        r, _ = login(server, key, pub, tamper=lambda b: b.update(wallet=other_pub))
        error_003(r, 401, "INVALID_SIGNATURE")
        # a challenge never issued
        r, _ = login(server, key, pub, tamper=lambda b: b.update(challenge="0" * 64))
        error_003(r, 401, "INVALID_SIGNATURE")
        # another user's balance does not exist for this one
        theirs, _ = login(server, other, other_pub)
        error_003(call(server, "GET", f"/v1/users/{theirs.json()['user']['id']}/balance", headers=h),
                  404, "USER_NOT_FOUND")
        error_003(call(server, "GET", "/v1/users/me", headers={"X-Session-Token": "forged"}), 401, "UNAUTHORIZED")
    finally:
        assert server.stop() == 0


def test_its_environment_variables(tmpdir_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    folder = os.path.join(tmpdir_path, "db")
    env = dict(os.environ, API_HOST="127.0.0.1", API_PORT=str(port), DATABASE_URL=f"sqlite:///{folder}/coordinator.db",
               SECRET_KEY="k" * 40, API_KEYS=CLIENT_KEY)
    log = open(os.path.join(tmpdir_path, "env.log"), "w")
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: f"listening on http://127.0.0.1:{port}" in open(log.name).read(), what="API_PORT")
        r = requests.post(f"http://127.0.0.1:{port}/v1/client/jobs", headers={"X-Api-Key": CLIENT_KEY},
                          json={"job_type": "llm_inference", "parameters": {"prompt": "x"}}, timeout=30)
        assert r.status_code == 201
        assert os.path.exists(os.path.join(folder, "promptq.db"))
    finally:
        proc.terminate()
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()
    r = subprocess.run([BIN, "serve"], env=dict(os.environ, DATABASE_URL="mysql://db/x"), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "DATABASE_URL" in r.stderr
    r = subprocess.run([BIN, "serve", "--data", tmpdir_path], env=dict(os.environ, DATABASE_URL="postgresql://db.invalid/x"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "postgresql://db.invalid/x" in r.stderr  # PostgreSQL is a real choice now


def test_an_expired_challenge_is_refused(tmpdir_path):
    import time
    server = start(tmpdir_path, "--challenge-ttl", "200ms")
    try:
        key, pub = wallet()
        ch = call(server, "GET", "/v1/users/challenge", params={"wallet": pub}).json()
        sig = base64.b64encode(key.sign(ch["challenge"].encode())).decode()
        time.sleep(0.3)  # the challenge's lifetime passes: this is what is tested, not synchronisation
        r = call(server, "POST", "/v1/users/login", body={"wallet": pub, "challenge": ch["challenge"], "signature": sig})
        error_003(r, 401, "INVALID_SIGNATURE")
    finally:
        assert server.stop() == 0
