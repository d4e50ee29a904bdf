#!/usr/bin/env python3
"""How fast a real `promptq worker` (echo backend, 16 slots) drains a queue filled beforehand:
20,000 jobs queued with POST /v1/jobs/batch on a fresh server (127.0.0.1, a temp folder,
--open, SQLite, sync full), then the worker started and timed until every job is completed.
Compares two builds of the worker (or one with other flags: "build-release/promptq --prefetch 16")
against the same server binary, or measures one.
Usage: bench/agent_drain.py SERVER_BIN WORKER_A [WORKER_B] [RUNS]"""
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

args = sys.argv[1:]
RUNS = int(args.pop()) if len(args) > 2 and args[-1].isdigit() else 2
SERVER, A, B = args[0], args[1], args[2] if len(args) > 2 else None


def call(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def run(worker_bin, n=20000):
    work = tempfile.mkdtemp(prefix="promptq-bench-agent-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([SERVER, "serve", "--listen", f"127.0.0.1:{port}", "--data", work, "--open",
                               "--log-level", "warn", "--max-queued-per-user", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                call(url + "/ready")
                break
            except OSError:
                time.sleep(0.02)
        for _ in range(0, n, 1000):
            call(url + "/v1/jobs/batch", "POST", {"jobs": [{"model": "e", "prompt": "a few words here"}] * 1000})
        t0 = time.monotonic()
        binary, *flags = worker_bin.split()
        worker = subprocess.Popen([binary, "worker", "--coordinator", url, "--model", "e", "--concurrency", "16",
                                   "--log-level", "warn", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while call(url + "/v1/jobs?status=completed&limit=1")["pagination"]["total"] < n:
            time.sleep(0.05)
        rate = n / (time.monotonic() - t0)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        return rate
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


for r in range(1, RUNS + 1):
    if B:
        print(f"run {r}: {A} {run(A):.0f} jobs/s; {B} {run(B):.0f} jobs/s")
    else:
        print(f"agent drain: 20000 queued jobs, {A}: {run(A):.0f} jobs/s")
