"""Hardening: jobs that must never be stranded (a rate-limited result, a
lease whose worker no longer holds it, a lease answer that cannot reach its
long-poll), and what hostile input must not do."""
import json
import os
import socket
import subprocess
import signal
import time

import requests

from conftest import BIN, PATIENCE, Worker, wait_until
from test_identity import Tenants, req


def start_worker(server, key, data, *extra):
    log = open(os.path.join(data, f"worker-{len(os.listdir(data))}.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--model", "echo", "--api-key", key,
                             *extra], stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def stop_worker(proc, log):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=PATIENCE + 30) == 0
    log.close()
    with open(log.name) as f:
        return f.read()


def test_rate_limited_results_are_not_dropped(tmpdir_path, make_server):
    """Four streaming jobs on one worker under a tight worker limit: its
    chunk posts are refused (429), yet every result arrives."""
    t = Tenants(tmpdir_path)
    server = make_server("--rate-worker", "60", "--burst-worker", "4", data_dir=tmpdir_path, secured=True)
    prompt = " ".join(f"w{i}" for i in range(120))
    ids = [req(server, "POST", "/v1/jobs", t.h("bob"), {"model": "echo", "prompt": prompt}).json()["id"]
           for _ in range(4)]
    proc, log = start_worker(server, t.keys["worker"], tmpdir_path, "--concurrency", "4", "--echo-delay", "5ms")
    try:
        for jid in ids:
            job = wait_until(lambda: (j := req(server, "GET", f"/v1/jobs/{jid}?wait=5", t.h("bob")).json())
                             ["status"] == "completed" and j, timeout=PATIENCE * 3, what=f"job {jid} to complete")
            assert job["output"] == prompt
    finally:
        text = stop_worker(proc, log)
    assert "complete refused" not in text and "gave up" not in text


def test_unclaimed_leases_go_back(tmpdir_path, make_server):
    """A worker's heartbeat lists the jobs it holds; a lease it does not list
    (older than one heartbeat interval) is given back and leased again."""
    server = make_server("--worker-timeout", "900ms", "--retry-backoff", "1ms")  # heartbeat interval 300 ms
    ack = server.submit("held?")
    w = Worker(server)
    first = w.lease_one()
    # while claimed, the lease stays, however long
    def beat(jobs):
        r = server.post(f"/v1/workers/{w.id}/heartbeat", {"jobs": jobs})
        assert r.status_code == 200, r.text
        return r.json()
    assert beat([first["id"]])["released"] == 0
    assert server.job(ack["id"])["status"] == "leased"
    # unclaimed: it goes back once the lease is a heartbeat interval old
    wait_until(lambda: beat([])["released"] == 1, what="the unclaimed lease to go back")
    job = server.job(ack["id"])
    assert job["status"] == "queued" and job["error"]["code"] == "LEASE_ABANDONED"
    second = Worker(server, name="w2").lease_one(wait_s=10)
    assert second["id"] == ack["id"] and second["attempt"] == 2
    # an old-style heartbeat (no list) gives nothing back
    assert server.post(f"/v1/workers/{w.id}/heartbeat").json()["released"] == 0
    assert server.job(ack["id"])["status"] == "leased"


def test_a_lease_is_not_handed_to_a_closed_long_poll(server):
    """A worker's long-poll whose connection closed does not swallow the next
    job: it goes back at once, without costing an attempt."""
    w = Worker(server)
    body = b'{"max_jobs": 1, "wait_s": 30}'
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/workers/" + w.id.encode() + b"/lease HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    wait_until(lambda: "\nwaiting_requests 1" in server.get("/metrics").text, what="the long-poll to park")
    s.close()
    ack = server.submit("for a live worker")
    # the dead poll got it and gave it back, with its attempt refunded; a live worker takes it
    job = Worker(server, name="alive").lease_one(wait_s=10)
    assert job["id"] == ack["id"] and job["attempt"] == 1


# ---- API_KEYS: each key its own identity ----

KEY_A, KEY_B = "tenant-a-static-key-0001", "tenant-b-static-key-0002"


def serve_with_keys(tmpdir_path, keys, *args):
    from conftest import Server
    env = os.environ.copy()
    os.environ["API_KEYS"] = keys
    try:
        return Server(tmpdir_path, args, secured=True).start()
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_api_keys_are_separate_non_admin_identities(tmpdir_path):
    server = serve_with_keys(tmpdir_path, f"{KEY_A}, {KEY_B}")
    try:
        a, b = {"X-Api-Key": KEY_A}, {"Authorization": f"Bearer {KEY_B}"}  # Bearer works for them too
        job = req(server, "POST", "/v1/jobs", a, {"model": "echo", "prompt": "a's secret"}).json()
        assert req(server, "GET", f"/v1/jobs/{job['id']}", a).status_code == 200
        assert req(server, "GET", f"/v1/jobs/{job['id']}", b).status_code == 404  # not b's
        assert req(server, "GET", "/v1/jobs", b).json()["pagination"]["total"] == 0
        assert req(server, "GET", "/v1/keys", b).status_code == 200
        assert len(req(server, "GET", "/v1/keys", b).json()["data"]) == 1  # its own only: no admin
        r = req(server, "POST", "/v1/keys", b, {"scope": "admin"})
        assert r.status_code == 403
        # both may act as a miner (client and worker routes): the document's use
        assert req(server, "POST", "/v1/workers", b, {"name": "m", "models": ["echo"]}).status_code == 201
    finally:
        assert server.stop() == 0
    # a key taken out of API_KEYS stops working at the next start
    server = serve_with_keys(tmpdir_path, KEY_A)
    try:
        assert req(server, "GET", "/v1/jobs", {"X-Api-Key": KEY_A}).status_code == 200
        r = req(server, "GET", "/v1/jobs", {"X-Api-Key": KEY_B})
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    finally:
        assert server.stop() == 0


def test_short_api_keys_and_secrets_stop_the_start(tmpdir_path):
    for env, needle in ((dict(API_KEYS="key1,key2,key3"), "API_KEYS"), (dict(SECRET_KEY="short"), "SECRET_KEY")):
        r = subprocess.run([BIN, "serve", "--data", tmpdir_path, "--listen", "127.0.0.1:0"],
                           env=dict(os.environ, **env), capture_output=True, text=True, timeout=PATIENCE)
        assert r.returncode == 2, r.stderr
        assert needle in r.stderr and ("16" in r.stderr or "32" in r.stderr), r.stderr


def test_a_worker_id_is_bound_to_its_credential(tmpdir_path, make_server):
    t = Tenants(tmpdir_path)
    from test_identity import cli
    carols_worker = {"Authorization": "Bearer " + cli("key", "create", "--user", "carol", "--scope", "worker",
                                                      "--data", tmpdir_path)}
    server = make_server(data_dir=tmpdir_path, secured=True)
    bobs = req(server, "POST", "/v1/workers", t.h("worker"), {"name": "bob-gpu", "models": ["echo"]}).json()["id"]
    for method, path in [("POST", f"/v1/workers/{bobs}/heartbeat"), ("POST", f"/v1/workers/{bobs}/lease"),
                         ("GET", f"/v1/workers/{bobs}")]:
        r = req(server, method, path, carols_worker)
        assert r.status_code == 404, (path, r.text)
        assert req(server, method, path, t.h("worker")).status_code == 200, path  # its own
        assert req(server, method, path, t.h("ann")).status_code == 200, path  # an admin's
    # the coordinator API's miners too
    r = req(server, "POST", "/v1/miner/heartbeat", carols_worker, {"miner_id": bobs})
    assert r.status_code == 404 and r.json()["error"]["code"] == "MINER_NOT_FOUND"


def test_listings_are_summaries_and_bounded(make_server):
    """Listings do not carry inputs and outputs unless asked, and a full
    listing stops at a few MiB instead of building every job at once."""
    server = make_server("--max-body", "2m")
    big = "x" * (900 * 1024)
    for i in range(6):
        server.submit(big + str(i))
    page = server.get("/v1/jobs?limit=1000").json()
    assert len(page["data"]) == 6 and page["full"] is False
    assert all("input" not in j and "output" not in j and j["status"] == "queued" for j in page["data"])
    assert len(server.get("/v1/jobs?limit=1000").content) < 20000
    full = server.get("/v1/jobs?limit=1000&full=true").json()
    assert 1 <= len(full["data"]) < 6  # 6 x 0.9 MiB does not fit the 4 MiB answer
    assert full["data"][0]["input"]["prompt"].startswith("xxx")
    assert full["pagination"]["has_more"] is True and full["pagination"]["next_offset"] == len(full["data"])
    rest = server.get(f"/v1/jobs?limit=1000&full=1&offset={full['pagination']['next_offset']}").json()
    assert len(full["data"]) + len(rest["data"]) <= 6 and rest["data"][0]["id"] != full["data"][-1]["id"]
    r = server.get("/v1/jobs?full=maybe")
    assert r.status_code == 400


# ---- HTTP framing and slow headers ----

def raw_exchange(port, data, timeout=PATIENCE):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_ambiguous_framing_is_refused_and_the_connection_closed(server):
    """RFC 9112 6.3: Content-Length with Transfer-Encoding, or two differing
    Content-Lengths, are refused (a proxy could read them another way and
    smuggle a request), in the error envelope, and the connection closes."""
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    cases = {
        "both": head + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "differ": head + b"Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}",
        "coding": head + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    }
    for name, data in cases.items():
        out = raw_exchange(server.port, data + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head_, _, body = out.partition(b"\r\n\r\n")
        assert head_.startswith(b"HTTP/1.1 400"), (name, out[:200])
        assert b"Connection: close" in head_, name
        assert json.loads(body)["error"]["code"] == "INVALID_REQUEST", name
        assert out.count(b"HTTP/1.1") == 1, name  # the smuggled second request is never read
    assert server.get("/health").status_code == 200


def test_malformed_heads_get_the_envelope_once(server):
    """What libmicrohttpd would answer with HTML of its own (and, for a bad
    Content-Length, with its status line and headers twice) is judged at the
    front door: one answer, in the envelope, then the connection closes."""
    cases = {
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}": (400, "Content-Length"),
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}": (400, "Content-Length"),
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1e23\r\n\r\n{}": (400, "Content-Length"),
        b"GET /v1/jobs?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n": (414, None),
        b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 13000 + b"\r\n\r\n": (431, None),
        b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n": (400, None),
        b"GET /v1/jobs HTTP/2.0\r\nHost: x\r\n\r\n": (400, None),
        b"GET /v1/jobs HTTP/1.1\r\nHo st: x\r\n\r\n": (400, None),
    }
    for data, (status, header) in cases.items():
        out = raw_exchange(server.port, data)
        head_, _, body = out.partition(b"\r\n\r\n")
        assert head_.startswith(b"HTTP/1.1 %d" % status), (data[:60], out[:200])
        status_lines = [l for l in out.split(b"\r\n") if l.startswith(b"HTTP/1.")]
        assert len(status_lines) == 1 and b"Connection: close" in head_, out[:300]
        err = json.loads(body)["error"]
        assert err["code"] in ("INVALID_REQUEST", "URI_TOO_LONG", "HEADERS_TOO_LARGE") and err["message"]
        if header:
            assert err["details"]["header"] == header
    assert server.get("/health").status_code == 200


def test_headers_must_arrive_in_time(make_server):
    """One byte every 300 ms keeps libmicrohttpd's idle timer happy; the
    header deadline (1 s here) closes the connection anyway."""
    server = make_server("--header-timeout", "1s", "--idle-timeout", "30s")
    s = socket.create_connection(("127.0.0.1", server.port))
    started = time.monotonic()
    closed = False
    for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 200:
        try:
            s.send(bytes([byte]))
            s.settimeout(0.3)  # the trickle's pace, and how long we listen for the close
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    elapsed = time.monotonic() - started
    s.close()
    assert closed and elapsed < 15, elapsed  # well before the 30 s idle timeout
    assert server.get("/health").status_code == 200  # others are unaffected


# ---- event streams: the end, and clients that leave ----

def test_reconnecting_after_the_final_event_gets_204(server):
    from test_streaming import parse_sse
    ack = server.submit("done soon")
    w = Worker(server)
    assert w.complete(w.lease_one()).status_code == 200
    r = requests.get(f"{server.url}/v1/jobs/{ack['id']}/events", timeout=PATIENCE)
    events = parse_sse(r.text)
    assert events[-1][0] == "complete"
    again = requests.get(f"{server.url}/v1/jobs/{ack['id']}/events", headers={"Last-Event-ID": events[-1][1]},
                         timeout=PATIENCE)
    assert again.status_code == 204 and again.text == ""  # EventSource stops reconnecting
    earlier = requests.get(f"{server.url}/v1/jobs/{ack['id']}/events", headers={"Last-Event-ID": events[0][1]},
                           timeout=PATIENCE)
    assert earlier.status_code == 200 and parse_sse(earlier.text)[-1][0] == "complete"  # what it missed


def test_a_closed_stream_is_let_go_soon(make_server):
    """A client that closes a quiet stream frees it within seconds, not at
    the next keepalive (60 s here)."""
    server = make_server("--keepalive", "60s")
    ack = server.submit("nobody runs this")
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"GET /v1/jobs/{ack['id']}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    wait_until(lambda: "\nsse_subscribers 1" in server.get("/metrics").text, what="the stream to open")
    s.close()
    wait_until(lambda: "\nsse_subscribers 0" in server.get("/metrics").text, timeout=15,
               what="the closed stream to be let go")


# ---- small ones ----

def test_data_files_are_private(server):
    for name in ("promptq.db", "receipt.key"):
        mode = os.stat(os.path.join(server.data_dir, name)).st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
    assert os.stat(server.data_dir).st_mode & 0o077 == 0


def test_a_completed_job_shows_no_earlier_error(make_server):
    server = make_server("--retry-backoff", "1ms")
    ack = server.submit("flaky")
    w = Worker(server)
    w.fail(w.lease_one(), code="OOM", message="first try died", retryable=True)
    assert w.complete(w.lease_one(wait_s=10)).status_code == 200
    job = server.job(ack["id"])
    assert job["status"] == "completed" and job["error"] is None and job["attempts"] == 2


def test_rate_headers_and_burst_follow_the_limit(tmpdir_path, make_server):
    t = Tenants(tmpdir_path)
    server = make_server("--rate-client", "3", data_dir=tmpdir_path, secured=True)
    r = req(server, "GET", "/v1/jobs", t.h("bob"))
    assert r.headers["RateLimit-Policy"] == "3;w=60;burst=3"  # not a burst of 20 for a limit of 3
    assert [req(server, "GET", "/v1/jobs", t.h("bob")).status_code for _ in range(3)] == [200, 200, 429]
    assert server.stop() == 0
    unlimited = make_server("--rate-client", "0", data_dir=tmpdir_path, secured=True)
    r = req(unlimited, "GET", "/v1/jobs", t.h("bob"))
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers and "RateLimit-Policy" not in r.headers


# ---- compatibility ----

def test_the_task_api_can_be_served_without_credentials(tmpdir_path, make_server):
    """001's document has no authentication: --anonymous-dialect 001 serves
    its client routes to callers without credentials, as one non-admin user,
    while everything else still needs credentials."""
    t = Tenants(tmpdir_path)
    server = make_server("--anonymous-dialect", "001", data_dir=tmpdir_path, secured=True)
    r = req(server, "GET", "/api/tasks")
    assert r.status_code == 200 and r.json() == {"tasks": []}
    assert req(server, "GET", "/api/stats").json()["users"]["total"] == 1  # not an admin: sees itself
    assert req(server, "GET", "/v1/jobs").status_code == 401  # the native API still needs credentials
    assert req(server, "GET", "/jobs/1").status_code == 403  # and 000's
    # bob's own jobs are not the anonymous user's
    bob = req(server, "POST", "/v1/jobs", t.h("bob"), {"model": "echo", "prompt": "bob's"}).json()
    assert req(server, "GET", f"/api/task/{bob['number']}").status_code == 404


def test_the_coordinator_api_answers_under_its_documented_prefix(tmpdir_path):
    server = serve_with_keys(tmpdir_path, KEY_A)
    try:
        h = {"X-Api-Key": KEY_A}
        r = req(server, "POST", "/api/v1/client/jobs", h, {"job_type": "llm_inference", "parameters": {"prompt": "hi"}})
        assert r.status_code == 201, r.text
        job = r.json()
        assert req(server, "GET", f"/api/v1/client/jobs/{job['id']}/status", h).json()["status"] == "pending"
        assert req(server, "GET", f"/v1/client/jobs/{job['id']}/status", h).status_code == 200  # both spellings
    finally:
        assert server.stop() == 0
