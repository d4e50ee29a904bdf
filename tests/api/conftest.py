"""Black-box fixtures: the real promptq binary on a free port in a temp folder.

Servers bind 127.0.0.1 with port 0 and announce the port they got in their log;
every process is stopped by its pid. Under the sanitizer build, any
AddressSanitizer/UBSan report in a server's log fails the test that ran it.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

BIN = os.environ.get("PROMPTQ_BIN", os.path.join(os.path.dirname(__file__), "../../build/promptq"))
SANITIZED = os.environ.get("PROMPTQ_SANITIZED") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# every response a test receives is checked against the OpenAPI document (openapi_check.py)
sys.path.insert(0, os.path.dirname(__file__))
import openapi_check  # noqa: E402
OPENAPI = openapi_check.install(BIN)

# how long a condition may take to become true before a test gives up
# (generous: the sanitizer build is several times slower)
PATIENCE = 30.0 if SANITIZED else 10.0


def wait_until(predicate, timeout=PATIENCE, what="condition"):
    """Polls a condition, for observing state from outside the process (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Server:
    def __init__(self, data_dir, args=(), secured=False, env=None):
        self.data_dir = data_dir
        self.env = dict(os.environ, **env) if env else None  # variables added to the server's environment
        # most suites test the queue, not identity: they run open unless asked
        self.args = list(args) if secured else ["--open", *args]
        self.proc = None
        self.log_path = None
        self.url = None
        self.port = None

    def start(self, port=0):
        self.log_path = os.path.join(self.data_dir, f"serve-{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w")
        cmd = [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data", self.data_dir,
               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

        def announced():
            if self.proc.poll() is not None:
                raise AssertionError(f"promptq serve exited: {self.read_log()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.read_log())
            return m and int(m.group(1))

        self.port = wait_until(announced, what="the server to listen")
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=PATIENCE):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError(f"promptq serve did not stop on {sig!r}:\n{self.read_log()[-3000:]}")
        finally:
            self.log.close()
        self.proc = None
        self.check_sanitizers()
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        self.proc = None

    def check_sanitizers(self):
        log = self.read_log()
        for marker in SANITIZER_MARKERS:
            assert marker not in log, f"sanitizer report in server log:\n{log[-6000:]}"

    # -- HTTP helpers ---------------------------------------------------------
    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", PATIENCE + 70), **kw)

    def post(self, path, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=kw.pop("timeout", PATIENCE + 70),
                             **kw)

    def submit(self, prompt="hello world", model="echo", **fields):
        r = self.post("/v1/jobs", {"model": model, "prompt": prompt, **fields})
        assert r.status_code == 202, r.text
        return r.json()

    def job(self, job_id):
        r = self.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


def cli(*args, stdin=None, check=True):
    """Runs a promptq command (user, key, price, ...); its stdout, or the whole result when check is off."""
    r = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=60)
    if not check:
        return r
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class ScriptedServer:
    """One of the scripted servers (scripted.py) as its own process: its URL once it listens;
    stopped by its process id."""

    def __init__(self, tmpdir, script, *args):
        here = os.path.dirname(os.path.abspath(__file__))
        self.log = open(os.path.join(tmpdir, f"{script}.log"), "w+")
        self.proc = subprocess.Popen([sys.executable, os.path.join(here, f"{script}.py"), *args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        port = wait_until(lambda: (open(self.log.name).read().split("listening on ") + [""])[1].strip(),
                          what=f"{script} to listen")
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=PATIENCE)
        self.log.close()


class Worker:
    """A test worker speaking the lease protocol over HTTP."""

    def __init__(self, server, models=("echo",), name="test-worker"):
        self.server = server
        r = server.post("/v1/workers", {"name": name, "models": list(models),
                                        "capabilities": {"max_concurrency": 4}})
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.registration = r.json()

    def lease(self, max_jobs=1, wait_s=0, models=None):
        body = {"max_jobs": max_jobs, "wait_s": wait_s}
        if models is not None:
            body["models"] = models
        r = self.server.post(f"/v1/workers/{self.id}/lease", body)
        assert r.status_code == 200, r.text
        return r.json()["jobs"]

    def lease_one(self, wait_s=5):
        jobs = self.lease(wait_s=wait_s)
        assert len(jobs) == 1, jobs
        return jobs[0]

    def complete(self, job, output="done", usage=None, token=None):
        return self.server.post(f"/v1/jobs/{job['id']}/complete", {
            "lease": token or job["lease"]["token"], "output": output,
            "usage": usage or {"prompt_tokens": 2, "completion_tokens": 1}})

    def fail(self, job, code="UPSTREAM_ERROR", message="it broke", retryable=True):
        return self.server.post(f"/v1/jobs/{job['id']}/fail", {
            "lease": job["lease"]["token"], "error": {"code": code, "message": message},
            "retryable": retryable})

    def heartbeat(self):
        r = self.server.post(f"/v1/workers/{self.id}/heartbeat")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="promptq-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(tmpdir_path):
    servers = []

    def make(*args, data_dir=None, secured=False):
        s = Server(data_dir or tmpdir_path, args, secured=secured)
        servers.append(s)
        return s.start()

    yield make
    for s in servers:
        if s.proc is not None:
            rc = s.stop()
            assert rc == 0, f"promptq serve exited {rc}:\n{s.read_log()[-3000:]}"


@pytest.fixture
def server(make_server):
    return make_server()


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id", "timestamp"}, body
    err = body["error"]
    assert err["code"] == code, body
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    assert isinstance(err["retryable"], bool)
    assert body["request_id"] == response.headers["X-Request-Id"]
    return err
