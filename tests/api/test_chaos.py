"""The chaos test: three coordinators on one PostgreSQL, four workers on
different coordinators, clients submitting through all three, and every few
seconds one coordinator killed with kill -9 and started again. At the end:
every acknowledged job completed, none lost; none completed twice or run by
two workers; attempts in order; every stream subscriber saw each chunk once
and in order. Bounded to about a minute (CHAOS_SECONDS; make chaos runs it
longer)."""
import itertools
import os
import random
import signal
import socket
import subprocess
import threading
import time

import requests

import pgutil
from conftest import BIN, PATIENCE, Server
from test_streaming import parse_sse

SECRET = "a-jwt-secret-every-coordinator-shares-0123456789"
CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "24"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chaos_three_coordinators_one_database(tmpdir_path):
    url, _ = pgutil.fresh_database()
    ports = [free_port() for _ in range(3)]
    args = ["--store", url, "--jwt-secret", SECRET, "--lease-timeout", "30s", "--reap-interval", "100ms",
            "--worker-timeout", "9s", "--retry-backoff", "100ms", "--max-attempts", "10", "--keepalive", "1s"]
    coords = [Server(tmpdir_path, args).start(port=p) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    workers = []
    for i in range(4):
        log = open(os.path.join(tmpdir_path, f"chaos-worker{i}.log"), "w")
        workers.append((subprocess.Popen([BIN, "worker", "--coordinator", urls[i % 3], "--name", f"w{i}",
                                          "--concurrency", "2", "--echo-delay", "8ms", "--lease-wait", "5s"],
                                         stdout=log, stderr=subprocess.STDOUT), log))
    acked, acked_lock, stop = {}, threading.Lock(), threading.Event()
    counter = itertools.count()

    def submitter(start):
        rotation = itertools.cycle(range(start, start + 3))
        while not stop.is_set():
            n = next(counter)
            prompt = f"job{n} " + " ".join(f"w{k}" for k in range(12))
            body, headers = {"model": "echo", "prompt": prompt}, {"Idempotency-Key": f"chaos-{n}"}
            for _ in range(20):  # a coordinator may be down: the same job, by its key, to the next
                try:
                    r = requests.post(urls[next(rotation) % 3] + "/v1/jobs", json=body, headers=headers, timeout=10)
                    if r.status_code == 202:
                        with acked_lock:
                            acked[r.json()["id"]] = prompt
                        break
                except requests.RequestException:
                    pass
                if stop.wait(0.05):
                    break
            stop.wait(0.02)

    streams, streams_lock = [], threading.Lock()

    def subscriber(job_id):
        """Reads a job's events through any coordinator, resuming where it was cut off."""
        seen, last, done = [], None, False
        for attempt in range(40):
            try:
                headers = {"Last-Event-ID": last} if last else {}
                r = requests.get(f"{random.choice(urls)}/v1/jobs/{job_id}/events", headers=headers, stream=True,
                                 timeout=(2, 10))
                if r.status_code == 204:
                    done = True
                    break
                buf = ""
                for chunk in r.iter_content(chunk_size=None, decode_unicode=True):
                    buf += chunk
                    while "\n\n" in buf:
                        block, buf = buf.split("\n\n", 1)
                        for name, eid, data in parse_sse(block + "\n\n"):
                            seen.append((name, eid, data))
                            last = eid
                            if name in ("complete", "error"):
                                done = True
                    if done:
                        break
                if done:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        with streams_lock:
            streams.append((job_id, seen, done))

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    readers = []
    try:
        deadline = time.monotonic() + CHAOS_SECONDS
        victim = 0
        while time.monotonic() < deadline:
            stop.wait(2.5)
            with acked_lock:
                sample = random.sample(list(acked), min(3, len(acked)))
            for job_id in sample:
                t = threading.Thread(target=subscriber, args=(job_id,))
                t.start()
                readers.append(t)
            coords[victim].kill9()  # no goodbye: what it had committed is all there is
            stop.wait(0.5)
            coords[victim] = Server(tmpdir_path, args).start(port=ports[victim])
            victim = (victim + 1) % 3
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(acked) > 50, len(acked)
        # every acknowledged job completes, with its own output. The backlog a long run leaves
        # takes its time to drain: what fails is a drain that stops moving, not a slow one
        def listing():
            found, offset = {}, 0
            while True:
                page = requests.get(f"{urls[0]}/v1/jobs?limit=1000&offset={offset}", timeout=10).json()
                found.update({j["id"]: j for j in page["data"]})
                if not page["pagination"]["has_more"]:
                    return found
                offset = page["pagination"]["next_offset"]
        best, stalled_since = -1, time.monotonic()
        while True:
            jobs = listing()
            left = [i for i in acked if jobs.get(i, {}).get("status") != "completed"]
            if not left:
                break
            if len(acked) - len(left) > best:
                best, stalled_since = len(acked) - len(left), time.monotonic()
            elif time.monotonic() - stalled_since > 60:
                stuck = {i: (jobs.get(i, {}).get("status"), jobs.get(i, {}).get("attempts"),
                             requests.get(f"{urls[0]}/v1/jobs/{i}/events", timeout=10).text[-1500:])
                         for i in left[:3]}
                raise AssertionError(f"{len(left)} of {len(acked)} acknowledged jobs stopped short of "
                                     f"completion for 60 s: {stuck}")
            time.sleep(0.5)  # a poll interval, as in wait_until: the state is observed from outside
        for job_id, prompt in acked.items():
            full = requests.get(f"{urls[1]}/v1/jobs/{job_id}", timeout=10).json()
            assert full["output"] == prompt, (job_id, full)
        for t in readers:
            t.join(timeout=60)
        logs = {}  # each read job's whole log, read once more at the end, in one piece
        for job_id, _, _ in streams:
            events = parse_sse(requests.get(f"{urls[0]}/v1/jobs/{job_id}/events", timeout=10).text)
            logs[job_id] = [(tuple(int(x) for x in e[1].split(".")), e[2]["content"]) for e in events if e[0] == "chunk"]
        # each job's leases came one after another: attempts 1, 2, ... each started once, one completion
        for job_id in random.sample(list(acked), min(60, len(acked))):
            events = parse_sse(requests.get(f"{urls[2]}/v1/jobs/{job_id}/events", timeout=10).text)
            starts = [e[2]["attempt"] for e in events if e[0] == "progress" and e[2].get("status") == "running"]
            assert starts == list(range(starts[0], starts[0] + len(starts))), (job_id, starts)
            assert [e[0] for e in events].count("complete") == 1, job_id
    finally:  # every process is stopped before any exit code is judged: none outlives the test
        stop.set()
        for proc, log in workers:
            proc.send_signal(signal.SIGTERM)
        codes = []
        for proc, log in workers:
            try:
                codes.append(proc.wait(timeout=PATIENCE * 3))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
            log.close()
        stops = []
        for c in coords:
            try:
                stops.append(c.stop() if c.proc is not None else 0)
            except AssertionError as e:  # it did not stop on SIGTERM (it was killed)
                stops.append(str(e)[:300])
        assert codes == [0] * len(workers) and stops == [0] * len(coords), (codes, stops)
    # no job was run to the end by two workers, and none completed twice
    done_lines = {}
    for i in range(4):
        for line in open(os.path.join(tmpdir_path, f"chaos-worker{i}.log")):
            if " done" in line and "worker: job " in line:
                job_id = line.split("worker: job ")[1].split()[0]
                done_lines[job_id] = done_lines.get(job_id, 0) + 1
    twice = {j: n for j, n in done_lines.items() if n > 1}
    assert not twice, f"jobs completed by two workers: {twice}"
    assert set(acked) <= set(done_lines)
    # the streams: each chunk of the job's log once, in order (read through coordinators that were
    # being killed, resumed with Last-Event-ID), and the final event carries the output
    assert streams, "no stream was read"
    for job_id, seen, done in streams:
        assert done, f"the stream of {job_id} never ended"
        ids = [e[1] for e in seen]
        assert len(ids) == len(set(ids)), f"{job_id}: an event came twice"
        keys = [tuple(int(x) for x in i.split(".")) for i in ids]
        assert keys == sorted(keys), f"{job_id}: events out of order: {ids}"
        final_attempt = keys[-1][0]
        seen_chunks = [(k, e[2]["content"]) for e, k in zip(seen, keys) if e[0] == "chunk" and k[0] == final_attempt]
        log_chunks = [(k, c) for k, c in logs[job_id] if k[0] == final_attempt]
        assert seen_chunks == log_chunks, (job_id, seen_chunks, log_chunks)
        assert seen[-1][0] == "complete" and seen[-1][2]["output"] == acked[job_id], job_id
