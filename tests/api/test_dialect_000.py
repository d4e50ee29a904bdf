"""Seed 000, the asynchronous prompt queue, exactly as its README shows it."""
import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time

import requests

from conftest import BIN, PATIENCE, Server, Worker, wait_until
from test_identity import Tenants


def login(server, user="bob", password="bob-password"):
    return requests.post(server.url + "/auth", json={"user": user, "password": password}, timeout=30)


def test_the_documented_flow(tmpdir_path):
    Tenants(tmpdir_path)
    server = Server(tmpdir_path, secured=True).start()
    try:
        r = login(server)
        assert r.status_code == 200
        auth = r.json()
        assert set(auth) >= {"access_token", "expires_at", "expires_in"}
        assert isinstance(auth["expires_in"], int)
        h = {"Authorization": f"Bearer {auth['access_token']}"}

        r = requests.post(server.url + "/jobs", json={"system": "You are terse.", "prompt": "Say hi"},
                          headers=h, timeout=30)
        assert r.status_code == 201
        job_id = r.json()["job_id"]
        assert isinstance(job_id, int)

        r = requests.get(f"{server.url}/jobs/{job_id}", headers=h, timeout=30)
        assert r.status_code == 202 and r.json() == {"status": "In progress", "response": None}

        # a local worker (the README's "Local worker") answers it
        keys = subprocess.run([BIN, "key", "create", "--user", "bob", "--scope", "worker", "--data", tmpdir_path],
                              capture_output=True, text=True, check=True).stdout.strip()
        wh = {"Authorization": f"Bearer {keys}"}
        w = requests.post(server.url + "/v1/workers", json={"name": "gpu", "models": ["echo"]}, headers=wh,
                          timeout=30).json()
        job = requests.post(f"{server.url}/v1/workers/{w['id']}/lease", json={"wait_s": 5}, headers=wh,
                            timeout=30).json()["jobs"][0]
        assert job["input"] == {"system": "You are terse.", "prompt": "Say hi"}
        requests.post(f"{server.url}/v1/jobs/{job['id']}/complete",
                      json={"lease": job["lease"]["token"], "output": "Hi."}, headers=wh, timeout=30)
        r = requests.get(f"{server.url}/jobs/{job_id}", headers=h, timeout=30)
        assert r.status_code == 200 and r.json() == {"status": "Completed", "response": "Hi."}
    finally:
        assert server.stop() == 0


def test_documented_errors(tmpdir_path):
    Tenants(tmpdir_path)
    server = Server(tmpdir_path, secured=True).start()
    try:
        token = login(server).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        r = requests.post(server.url + "/jobs", json={"system": "", "prompt": ""}, headers=h, timeout=30)
        assert r.status_code == 400 and "error" in r.json()
        for bad in ({"Authorization": "Bearer nonsense"}, {}):
            r = requests.post(server.url + "/jobs", json={"prompt": "x"}, headers=bad, timeout=30)
            assert r.status_code == 403 and "error" in r.json()
            assert requests.get(server.url + "/jobs/1", headers=bad, timeout=30).status_code == 403
        # the Content-Type middleware on /auth
        r = requests.post(server.url + "/auth", data='{"user":"bob","password":"bob-password"}', timeout=30)
        assert r.status_code == 415
        assert login(server, password="wrong").status_code == 401
        # another user's job does not exist for this one
        mine = requests.post(server.url + "/jobs", json={"prompt": "x"}, headers=h, timeout=30).json()["job_id"]
        carol = login(server, "carol", "carol-password").json()["access_token"]
        r = requests.get(f"{server.url}/jobs/{mine}", headers={"Authorization": f"Bearer {carol}"}, timeout=30)
        assert r.status_code == 404
    finally:
        assert server.stop() == 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_its_environment_variables(tmpdir_path):
    Tenants(tmpdir_path)
    port = free_port()
    secret = "a-shared-secret-that-is-long-enough-for-hs256"
    env = dict(os.environ, APP_PORT=str(port), JWT_SECRET=secret, MAX_REQUESTSPERMINUTE="30")
    log = open(os.path.join(tmpdir_path, "env.log"), "w")
    proc = subprocess.Popen([BIN, "serve", "--data", tmpdir_path], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: "listening on http://0.0.0.0:%d" % port in open(log.name).read(),
                   what="serve on APP_PORT")
        r = requests.post(url + "/auth", json={"user": "bob", "password": "bob-password"}, timeout=30)
        token = r.json()["access_token"]
        head, payload, _ = token.split(".")
        expected = b64(hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest())
        assert token.split(".")[2] == expected  # signed with JWT_SECRET
        r = requests.get(url + "/jobs/1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.headers["RateLimit-Policy"].startswith("30;w=60")  # MAX_REQUESTSPERMINUTE
    finally:
        proc.terminate()
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()
    # DB_* name the document's PostgreSQL: the store is there (an unreachable one stops the start, clearly,
    # without showing the password); tests/api/test_postgres.py serves through them
    r = subprocess.run([BIN, "serve", "--data", tmpdir_path],
                       env=dict(os.environ, DB_HOST="db.invalid", DB_USER="app", DB_PASSWORD="s3cret"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "postgresql://app:***@db.invalid:5432/postgres" in r.stderr, r.stderr
    assert "s3cret" not in r.stderr
