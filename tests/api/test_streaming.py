"""Token streaming: a job's event log over Server-Sent Events."""
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import threading

import requests

from conftest import BIN, PATIENCE, Worker, assert_error, wait_until

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


def parse_sse(text):
    """Splits an SSE body into (event, id, data) tuples; comments are dropped."""
    events = []
    for block in text.split("\n\n"):
        fields = {"event": "message", "id": None, "data": []}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
        if fields["data"]:
            events.append((fields["event"], fields["id"], json.loads("\n".join(fields["data"]))))
    return events


def read_events(server, job_id, last_event_id=None, timeout=PATIENCE):
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    r = requests.get(f"{server.url}/v1/jobs/{job_id}/events", headers=headers, timeout=timeout)
    if r.status_code == 204:  # resumed after the final event: nothing more, and EventSource stops
        assert last_event_id and r.text == ""
        return []
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/event-stream"
    return parse_sse(r.text)


def post_chunks(server, job, chunks, token=None):
    return server.post(f"/v1/jobs/{job['id']}/chunks",
                       {"lease": token or job["lease"]["token"], "chunks": chunks})


def ordered(ids):
    keys = [tuple(int(p) for p in i.split(".")) for i in ids]
    return keys == sorted(keys) and len(set(keys)) == len(keys)


def test_live_stream_from_queued_to_complete(server):
    ack = server.submit("ignored")
    box = {}
    t = threading.Thread(target=lambda: box.update(events=read_events(server, ack["id"])))
    t.start()
    wait_until(lambda: server.get("/health").json()["waiting_requests"] >= 0 and t.is_alive(),
               what="the subscriber")
    w = Worker(server)
    job = w.lease_one()
    assert post_chunks(server, job, ["Hel", "lo"]).json()["seq"] == 2
    assert post_chunks(server, job, [", world"]).json() == {"seq": 3, "cancel_requested": False}
    assert w.complete(job, output="Hello, world").status_code == 200
    t.join(timeout=PATIENCE)
    events = box["events"]
    kinds = [e[0] for e in events]
    assert kinds[0] == "progress" and events[0][2]["status"] == "queued" and events[0][1] == "0.0"
    assert kinds[-1] == "complete" and events[-1][2]["output"] == "Hello, world"
    assert "".join(e[2]["content"] for e in events if e[0] == "chunk") == "Hello, world"
    assert ordered([e[1] for e in events])
    running = [e for e in events if e[0] == "progress" and e[2]["status"] == "running"]
    assert running and running[0][2]["attempt"] == 1 and running[0][2]["worker_id"] == w.id


def test_late_subscriber_and_resume_without_loss_or_repeats(server):
    ack = server.submit("x")
    w = Worker(server)
    job = w.lease_one()
    post_chunks(server, job, ["a", "b", "c", "d"])
    w.complete(job, output="abcd")
    full = read_events(server, ack["id"])  # arrives after the end: the whole log
    ids = [e[1] for e in full]
    assert [e[0] for e in full] == ["progress", "progress", "chunk", "chunk", "chunk", "chunk",
                                    "complete"]
    for cut in range(len(ids)):
        rest = read_events(server, ack["id"], last_event_id=ids[cut])
        assert [e[1] for e in rest] == ids[cut + 1:], f"resuming after {ids[cut]}"


def test_a_retry_starts_the_output_afresh(make_server):
    server = make_server("--retry-backoff", "10ms")
    ack = server.submit("x")
    w = Worker(server)
    first = w.lease_one()
    post_chunks(server, first, ["wrong"])
    w.fail(first, retryable=True)
    second = w.lease_one(wait_s=10)
    post_chunks(server, second, ["right"])
    w.complete(second, output="right")
    events = read_events(server, ack["id"])
    assert [e[2].get("content") for e in events if e[0] == "chunk"] == ["right"]
    assert [e[2]["attempt"] for e in events if e[0] == "progress" and "attempt" in e[2]] == [2]
    # a client that saw attempt 1 and resumes is told of attempt 2, then gets its chunks
    rest = read_events(server, ack["id"], last_event_id="1.1")
    assert rest[0][0] == "progress" and rest[0][2]["attempt"] == 2
    assert [e[0] for e in rest[1:]] == ["chunk", "complete"]


def test_jobs_that_end_without_a_result_end_with_an_error_event(server):
    ack = server.submit("x")
    server.post(f"/v1/jobs/{ack['id']}/cancel")
    events = read_events(server, ack["id"])
    assert events[-1][0] == "error" and events[-1][2]["code"] == "CANCELLED"
    assert events[-1][2]["status"] == "cancelled"


def test_chunk_errors(server):
    ack = server.submit("x")
    w = Worker(server)
    job = w.lease_one()
    assert_error(post_chunks(server, job, ["x"], token="stale"), 409, "LEASE_MISMATCH")
    assert_error(post_chunks(server, job, []), 400, "INVALID_REQUEST")
    assert_error(post_chunks(server, job, [1, 2]), 400, "INVALID_REQUEST")
    assert_error(server.get("/v1/jobs/01a20000-0000-7000-8000-000000000000/events"), 404, "NOT_FOUND")
    w.complete(job)
    assert_error(post_chunks(server, job, ["late"]), 409, "LEASE_MISMATCH")
    server.post(f"/v1/jobs/{ack['id']}/cancel")


def test_cancel_is_reported_on_the_chunk_answer(server):
    ack = server.submit("x")
    w = Worker(server)
    job = w.lease_one()
    server.post(f"/v1/jobs/{ack['id']}/cancel")
    assert post_chunks(server, job, ["a"]).json()["cancel_requested"] is True


def test_a_thousand_subscribers_on_one_job(make_server):
    server = make_server("--per-ip-limit", "2048")  # all of them from 127.0.0.1
    ack = server.submit("x")
    request = (f"GET /v1/jobs/{ack['id']}/events HTTP/1.1\r\nHost: t\r\n"
               "Accept: text/event-stream\r\nConnection: close\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    received = {}
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(request)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        received[s] = bytearray()
    # all of them are parked on the job before it runs
    wait_until(lambda: server.get("/health").status_code == 200 and
               all(len(b) > 0 for b in drain(sel, received)), what="every subscriber's first event")
    w = Worker(server)
    job = w.lease_one()
    post_chunks(server, job, ["one ", "two"])
    w.complete(job, output="one two")
    open_socks = set(received)
    while open_socks:
        events = sel.select(timeout=PATIENCE)
        assert events, "subscribers stalled"
        for key, _ in events:
            data = key.fileobj.recv(65536)
            if data:
                received[key.fileobj] += data
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                open_socks.discard(key.fileobj)
    for body in received.values():
        text = bytes(body).decode()
        assert "event: complete" in text and '"content":"one "' in text and '"content":"two"' in text


def drain(sel, received):
    for key, _ in sel.select(timeout=0.05):
        data = key.fileobj.recv(65536)
        if data:
            received[key.fileobj] += data
    return received.values()


def test_a_vanished_subscriber_is_cleaned_up(server):
    ack = server.submit("x")
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"GET /v1/jobs/{ack['id']}/events HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    s.settimeout(PATIENCE)
    seen = b""
    while b"event: progress" not in seen:
        data = s.recv(4096)
        assert data, "the stream closed early"
        seen += data
    s.close()  # gone mid-stream
    w = Worker(server)
    job = w.lease_one()
    post_chunks(server, job, ["a"])
    w.complete(job)
    # the server carries on; at stop, the sanitizer build would report a leak
    assert read_events(server, ack["id"])[-1][0] == "complete"


def test_submit_stream_prints_tokens_from_a_real_worker(server):
    log = open(os.path.join(server.data_dir, "worker.log"), "w")
    worker = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--echo-delay", "20ms"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        words = " ".join(f"word{i}" for i in range(30))
        r = subprocess.run([BIN, "submit", "--coordinator", server.url, "--stream", words],
                           capture_output=True, text=True, timeout=PATIENCE + 30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == words + "\n"
        jobs = server.get("/v1/jobs").json()["data"]
        events = read_events(server, jobs[0]["id"])
        chunks = [e for e in events if e[0] == "chunk"]
        assert len(chunks) >= 2  # it really streamed (600 ms of tokens, posted every 50 ms)
        assert "".join(c[2]["content"] for c in chunks) == words
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=PATIENCE) == 0
        log.close()


def test_idle_streams_get_keepalive_comments(make_server):
    server = make_server("--keepalive", "200ms")
    ack = server.submit("nobody runs this")
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"GET /v1/jobs/{ack['id']}/events HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    s.settimeout(PATIENCE)
    seen = b""
    while seen.count(b": keepalive") < 2:  # and again: they keep coming
        data = s.recv(4096)
        assert data, "the stream closed"
        seen += data
    s.close()


def test_a_queued_job_knows_its_position(server):
    ids = [server.submit(f"job {i}", model="m")["id"] for i in range(3)]
    server.submit("other model", model="other")
    urgent = server.submit("urgent", model="m", priority=5)["id"]

    def first_event(job_id):
        r = requests.get(f"{server.url}/v1/jobs/{job_id}/events", stream=True, timeout=PATIENCE)
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                r.close()
                return json.loads(line[6:])

    # the higher-priority one, submitted last, is leased first: the others wait behind it too
    assert [first_event(i)["position"] for i in ids] == [2, 3, 4]
    assert first_event(urgent)["position"] == 1
