#!/usr/bin/env python3
"""OpenAI's Batch API through promptq: what creating a batch costs the writer, and how fast its
requests drain. Per run, on a fresh server (127.0.0.1, a temp folder, stopped by pid):
  create   upload + create of a 50,000-request file: seconds for each, and the p50/max latency
           of single native submits made while the batch is queued (the one transaction that
           queues 50,000 jobs holds the writer)
  drain    requests per second from create to `completed` for a 10,000-request batch, two echo
           workers of 16 slots; against the same 10,000 requests sent one by one to
           /v1/chat/completions by 32 client threads
Usage: bench/batch.py BIN [RUNS]"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = sys.argv[1]
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def call(url, method="GET", body=None, data=None, headers=None):
    req = urllib.request.Request(url, method=method, data=data if data is not None else
                                 (json.dumps(body).encode() if body is not None else None),
                                 headers=headers or ({"Content-Type": "application/json"} if body is not None else {}))
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(work):
    log = open(os.path.join(work, "serve.log"), "w")
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data", work, "--open", "--log-level",
                             "warn", "--max-queued-per-user", "0", "--max-upload", "64m"], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            call(url + "/ready")
            return proc, url
        except OSError:
            time.sleep(0.01)
    raise SystemExit("the server did not start")


def workers(url, work, n=2):
    procs = []
    for i in range(n):
        log = open(os.path.join(work, f"worker{i}.log"), "w")
        procs.append(subprocess.Popen([BIN, "worker", "--coordinator", url, "--model", "e", "--concurrency", "16",
                                       "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT))
    time.sleep(0.5)
    return procs


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)


def lines(n):
    return "\n".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "e", "messages": [{"role": "user", "content": f"request {i}"}],
                                          "max_tokens": 8}}) for i in range(n)).encode()


def upload(url, payload):
    boundary = "benchboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()
    return call(url + "/v1/files", "POST", data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def create_run():
    work = tempfile.mkdtemp(prefix="promptq-bench-batch-")
    proc, url = serve(work)
    try:
        w = workers(url, work, 1)  # the model is served; its worker stays paused below
        for p in w:
            p.send_signal(signal.SIGSTOP)
        payload = lines(50000)
        t0 = time.monotonic()
        f = upload(url, payload)
        t1 = time.monotonic()
        latencies, done = [], threading.Event()

        def probe():
            while not done.is_set():
                s = time.monotonic()
                call(url + "/v1/jobs", "POST", {"model": "e", "prompt": "probe"})
                latencies.append((time.monotonic() - s) * 1000)
        th = threading.Thread(target=probe)
        th.start()
        time.sleep(0.2)
        t2 = time.monotonic()
        b = call(url + "/v1/batches", "POST", {"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                               "completion_window": "24h"})
        t3 = time.monotonic()
        time.sleep(0.2)
        done.set()
        th.join()
        assert b["request_counts"]["total"] == 50000, b
        for p in w:
            p.send_signal(signal.SIGCONT)
        stop(w)
        return t1 - t0, t3 - t2, statistics.median(latencies), max(latencies), len(payload)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def drain_run(n=10000):
    work = tempfile.mkdtemp(prefix="promptq-bench-batch-")
    proc, url = serve(work)
    try:
        w = workers(url, work)
        f = upload(url, lines(n))
        t0 = time.monotonic()
        b = call(url + "/v1/batches", "POST", {"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                               "completion_window": "24h"})
        while call(f"{url}/v1/batches/{b['id']}")["status"] != "completed":
            time.sleep(0.05)
        batch_rate = n / (time.monotonic() - t0)
        left = list(range(n))
        lock = threading.Lock()

        def client():
            while True:
                with lock:
                    if not left:
                        return
                    i = left.pop()
                call(url + "/v1/chat/completions", "POST",
                     {"model": "e", "messages": [{"role": "user", "content": f"request {i}"}], "max_tokens": 8})
        t0 = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        single_rate = n / (time.monotonic() - t0)
        stop(w)
        return batch_rate, single_rate
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


print(f"# machine: {os.cpu_count()} cores; {BIN}")
for run in range(1, RUNS + 1):
    up, create, p50, worst, size = create_run()
    print(f"create run {run}: upload {size / 1e6:.1f} MB in {up:.2f} s; create (50,000 requests queued) {create:.2f} s; "
          f"native submits meanwhile p50 {p50:.1f} ms, max {worst:.0f} ms")
for run in range(1, RUNS + 1):
    batch_rate, single_rate = drain_run()
    print(f"drain run {run}: batch {batch_rate:.0f} requests/s; one by one through /v1/chat/completions "
          f"{single_rate:.0f} requests/s")
