"""PostgreSQL, and several coordinators on one database: the queue, streams,
logins and the maintenance follow a job wherever it is; an outage is a 503
that ends, with nothing acknowledged lost."""
import os
import subprocess
import threading

import requests

import pgutil
from conftest import BIN, PATIENCE, Server, Worker, assert_error, wait_until
from test_streaming import parse_sse, post_chunks

SECRET = "a-jwt-secret-every-coordinator-shares-0123456789"


def coordinators(tmpdir_path, url, n, *args):
    """n coordinators on one database (sharing a data folder: one receipt key)."""
    servers = []
    for _ in range(n):
        s = Server(tmpdir_path, ["--store", url, "--jwt-secret", SECRET, *args])
        servers.append(s.start())
    return servers


def stop_all(servers):
    for s in servers:
        if s.proc is not None:
            assert s.stop() == 0, s.read_log()[-2000:]


def test_the_backend_serves_one_coordinator(tmpdir_path):
    url, _ = pgutil.fresh_database()
    [a] = coordinators(tmpdir_path, url, 1)
    try:
        ack = a.submit("on postgres")
        w = Worker(a)
        job = w.lease_one()
        assert job["id"] == ack["id"] and job["kind"] == "chat"
        assert w.complete(job, output="done").status_code == 200
        assert a.job(ack["id"])["status"] == "completed"
        assert a.get("/ready").status_code == 200
    finally:
        stop_all([a])
    r = subprocess.run([BIN, "migrate", "--store", url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "0 migrations applied" in r.stdout


def test_a_job_submitted_on_one_coordinator_reaches_a_worker_waiting_on_another(tmpdir_path):
    url, _ = pgutil.fresh_database()
    a, b = coordinators(tmpdir_path, url, 2)
    try:
        w = Worker(b, models=["m"])
        got = {}
        t = threading.Thread(target=lambda: got.update(jobs=w.lease(wait_s=20)))
        t.start()
        wait_until(lambda: "\nwaiting_requests 1" in b.get("/metrics").text, what="the lease to wait on b")
        ack = a.submit("from a", model="m")
        t.join(timeout=PATIENCE)
        assert [j["id"] for j in got["jobs"]] == [ack["id"]]  # handed over by the notification, not a poll
        # idempotency keys hold across coordinators
        h = {"Idempotency-Key": "one-order"}
        first = a.post("/v1/jobs", {"model": "m", "prompt": "x"}, headers=h).json()
        again = b.post("/v1/jobs", {"model": "m", "prompt": "x"}, headers=h).json()
        assert again["id"] == first["id"] and again["idempotent_replay"] is True
        # b serves the models of workers that registered on a
        Worker(a, models=["only-on-a"], name="wa")
        wait_until(lambda: any(m["id"] == "only-on-a" for m in b.get("/v1/models").json()["data"]),
                   what="b to learn a's worker")
    finally:
        stop_all([a, b])


def test_a_stream_follows_the_job_across_coordinators(tmpdir_path):
    url, _ = pgutil.fresh_database()
    a, b = coordinators(tmpdir_path, url, 2)
    try:
        ack = a.submit("stream me")
        w = Worker(a)
        job = w.lease_one()
        events = []
        reader = threading.Thread(target=lambda: events.extend(parse_sse(
            requests.get(f"{b.url}/v1/jobs/{ack['id']}/events", timeout=PATIENCE * 2).text)))
        reader.start()
        wait_until(lambda: "\nsse_subscribers 1" in b.get("/metrics").text, what="the subscriber on b")
        post_chunks(a, job, ["al", "pha"])
        post_chunks(a, job, ["-beta"])
        w.complete(job, output="alpha-beta")
        reader.join(timeout=PATIENCE * 2)
        chunks = [e[2]["content"] for e in events if e[0] == "chunk"]
        assert chunks == ["al", "pha", "-beta"] and events[-1][0] == "complete"
        # resumable on the other coordinator
        rest = parse_sse(requests.get(f"{a.url}/v1/jobs/{ack['id']}/events",
                                      headers={"Last-Event-ID": events[2][1]}, timeout=PATIENCE).text)
        assert [e[2].get("content") for e in rest if e[0] == "chunk"] == ["pha", "-beta"]
    finally:
        stop_all([a, b])


def test_a_wallet_login_may_end_on_another_coordinator(tmpdir_path):
    import base64
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    url, _ = pgutil.fresh_database()
    servers = [Server(tmpdir_path, ["--store", url, "--jwt-secret", SECRET], secured=True).start() for _ in range(2)]
    a, b = servers
    try:
        key = Ed25519PrivateKey.generate()
        wallet = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        challenge = requests.get(f"{a.url}/v1/users/challenge", params={"wallet": wallet}, timeout=PATIENCE).json()
        signature = base64.b64encode(key.sign(challenge["challenge"].encode())).decode()
        login = {"wallet": wallet, "challenge": challenge["challenge"], "signature": signature}
        r = requests.post(f"{b.url}/v1/users/login", json=login, timeout=PATIENCE)
        assert r.status_code == 200, r.text
        token = r.json()["session_token"]
        assert requests.get(f"{a.url}/v1/users/me", headers={"X-Session-Token": token}, timeout=PATIENCE).status_code == 200
        again = requests.post(f"{a.url}/v1/users/login", json=login, timeout=PATIENCE)  # spent, on any coordinator
        assert again.status_code == 401
    finally:
        stop_all(servers)


def test_the_maintenance_moves_when_its_coordinator_dies(tmpdir_path):
    url, _ = pgutil.fresh_database()
    servers = coordinators(tmpdir_path, url, 2, "--lease-timeout", "1s", "--reap-interval", "50ms",
                           "--retry-backoff", "10ms")
    try:
        leader = wait_until(lambda: next((s for s in servers if "runs the maintenance" in s.read_log()), None),
                            what="a maintenance leader")
        other = servers[1 - servers.index(leader)]
        leader.kill9()
        ack = other.submit("orphan")
        w = Worker(other)
        first = w.lease_one()
        # nobody completes it: the survivor takes the maintenance over and the lease lapses
        second = Worker(other, name="w2").lease_one(wait_s=20)
        assert second["id"] == ack["id"] and second["attempt"] == 2
        assert first["lease"]["token"] != second["lease"]["token"]
        assert "runs the maintenance" in other.read_log()
    finally:
        stop_all(servers)


def test_an_outage_is_a_503_that_ends_and_loses_nothing(tmpdir_path):
    url, _ = pgutil.fresh_database()
    [a] = coordinators(tmpdir_path, url, 1)
    try:
        kept = a.submit("acknowledged before the outage")
        pgutil.stop_server()
        try:
            r = a.post("/v1/jobs", {"model": "echo", "prompt": "during"})
            assert_error(r, 503, "STORE_FAILED")
            assert r.json()["error"]["retryable"] is True
            assert a.get("/ready").status_code == 503
        finally:
            pgutil.start_server()
        try:
            wait_until(lambda: a.get("/ready").status_code == 200, what="the coordinator to reconnect")
        except AssertionError:
            print(a.read_log()[-3000:], a.get("/ready").text)
            raise
        after = a.submit("after")
        assert a.job(kept["id"])["status"] == "queued" and a.job(after["id"])["status"] == "queued"
    finally:
        stop_all([a])


def test_the_prompt_queue_runs_on_its_documented_database(tmpdir_path):
    url, (host, port, user, name) = pgutil.fresh_database()
    server = Server(tmpdir_path, env=dict(DB_HOST=host, DB_PORT=str(port), DB_USER=user, DB_NAME=name,
                                          DB_SSLMODE="disable")).start()
    try:
        assert "postgresql://" in server.read_log()
        r = requests.post(f"{server.url}/v1/jobs", json={"model": "echo", "prompt": "x"}, timeout=PATIENCE)
        assert r.status_code == 202
        assert pgutil.query(url, f"SELECT model FROM jobs WHERE id = '{r.json()['id']}'") == "echo"
    finally:
        assert server.stop() == 0


def test_the_coordinator_api_runs_on_its_database_url(tmpdir_path):
    """Document 003's DATABASE_URL=postgresql://... is the store."""
    url, _ = pgutil.fresh_database()
    key = "client-key-for-the-postgres-test-1"
    server = Server(tmpdir_path, secured=True,
                    env=dict(DATABASE_URL=url.replace("postgres://", "postgresql://"), API_KEYS=key)).start()
    try:
        r = requests.post(f"{server.url}/v1/client/jobs", headers={"X-Api-Key": key},
                          json={"job_type": "llm_inference", "parameters": {"prompt": "x"}}, timeout=PATIENCE)
        assert r.status_code == 201, r.text
        assert pgutil.query(url, "SELECT count(*) FROM jobs") == "1"
        assert not os.path.exists(os.path.join(tmpdir_path, "promptq.db"))
    finally:
        assert server.stop() == 0


def test_without_notifications_the_coordinators_poll(tmpdir_path):
    """Behind PgBouncer in transaction mode LISTEN does not work: --store-poll
    finds the other coordinators' work on each reaper beat instead."""
    url, _ = pgutil.fresh_database()
    a, b = coordinators(tmpdir_path, url, 2, "--store-poll", "--reap-interval", "100ms")
    try:
        w = Worker(b, models=["m"])
        got = {}
        t = threading.Thread(target=lambda: got.update(jobs=w.lease(wait_s=20)))
        t.start()
        wait_until(lambda: "\nwaiting_requests 1" in b.get("/metrics").text, what="the lease to wait on b")
        ack = a.submit("from a", model="m")
        t.join(timeout=PATIENCE)
        assert [j["id"] for j in got["jobs"]] == [ack["id"]]
        Worker(a, models=["only-on-a"], name="wa")
        wait_until(lambda: any(m["id"] == "only-on-a" for m in b.get("/v1/models").json()["data"]),
                   what="b to learn a's worker")
        assert "LISTEN" not in a.read_log()
    finally:
        stop_all([a, b])


def test_a_council_deliberates_across_coordinators_without_losing_an_answer(tmpdir_path):
    """Members of one council finish at the same moment on two coordinators: each step locks the
    council's row, so no answer is lost and the council moves on exactly once."""
    url, _ = pgutil.fresh_database()
    a, b = coordinators(tmpdir_path, url, 2, "--council-members", "alpha,beta,gamma", "--council-synthesizers",
                        "synth")
    try:
        w = Worker(a, models=["alpha", "beta", "gamma", "synth"])
        Worker(b, models=["synth"], name="on-b")  # each coordinator knows a synthesizer is served
        rid = a.post("/api/v1/requests", {"query": "Capital of France?"}).json()["requestId"]
        members = w.lease(max_jobs=3, wait_s=10)
        assert sorted(j["model"] for j in members) == ["alpha", "beta", "gamma"]
        done = []
        threads = [threading.Thread(target=lambda j=j, s=s: done.append(
                       s.post(f"/v1/jobs/{j['id']}/complete", {"lease": j["lease"]["token"], "output": "Paris"})
                       .status_code)) for j, s in zip(members, (a, b, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=PATIENCE)
        assert done == [200, 200, 200]
        synth = w.lease_one(wait_s=10)  # one synthesis job, leasable by either worker
        assert synth["model"] == "synth"
        assert b.post(f"/v1/jobs/{synth['id']}/complete", {"lease": synth["lease"]["token"],
                                                            "output": "Paris."}).status_code == 200
        result = b.get(f"/api/v1/requests/{rid}").json()
        assert result["status"] == "completed" and result["consensusDecision"] == "Paris."
        t = a.get(f"/api/v1/requests/{rid}/transcript").json()
        assert [x["status"] for x in t["rounds"][0]["answers"]] == ["completed"] * 3
        assert w.lease(wait_s=0) == []  # one synthesis, not one per coordinator
    finally:
        stop_all([a, b])


def test_coordinators_sharing_a_database_cannot_overspend_together(tmpdir_path):
    """A balance that covers exactly ten worst cases, submits racing on two coordinators: ten jobs."""
    url, _ = pgutil.fresh_database()
    def cli(*args, stdin=None):
        r = subprocess.run([BIN, *args, "--store", url], input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    cli("user", "add", "ann", "--admin", stdin="ann-password\n")
    cli("user", "add", "bob", stdin="bob-password\n")
    key = cli("key", "create", "--user", "bob")
    cli("price", "set", "m", "--input", "1", "--output", "2")
    servers = [Server(tmpdir_path, ["--store", url, "--jwt-secret", SECRET, "--rate-client", "0"], secured=True).start()
               for _ in range(2)]
    try:
        h = {"Authorization": f"Bearer {key}"}
        body = {"model": "m", "prompt": "same", "params": {"max_tokens": 100}}
        needed = servers[0].post("/v1/jobs", body, headers=h).json()["error"]["details"]["needed"]["micros"]
        cli("credit", "grant", "bob", f"0.{needed * 10:06d}")
        codes = []
        start = threading.Barrier(16)

        def burst(server):
            s = requests.Session()
            start.wait()
            for _ in range(10):
                codes.append(s.post(server.url + "/v1/jobs", json=body, headers=h, timeout=PATIENCE).status_code)

        threads = [threading.Thread(target=burst, args=(servers[i % 2],)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=PATIENCE * 3)
        assert len(codes) == 160 and codes.count(202) == 10, sorted(set(codes))
        credits = servers[1].get("/v1/credits", headers=h).json()
        assert credits["available"]["micros"] == 0 and credits["held"]["micros"] == needed * 10
    finally:
        stop_all(servers)


def test_users_take_turns_and_routing_holds_across_coordinators(tmpdir_path):
    """Fair turns kept in the database: ann's backlog submitted on one coordinator, bob's single job on
    another; leases alternating between the two coordinators give bob's job within one turn of each
    user with work. A job requiring a label goes only to the worker with it."""
    url, _ = pgutil.fresh_database()

    def cli(*args, stdin=None):
        r = subprocess.run([BIN, *args, "--store", url], input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    keys = {}
    for name in ("ann", "bob"):
        cli("user", "add", name, stdin=f"{name}-password\n")
        keys[name] = cli("key", "create", "--user", name)
    keys["worker"] = cli("key", "create", "--user", "ann", "--scope", "worker")
    servers = [Server(tmpdir_path, ["--store", url, "--jwt-secret", SECRET, "--rate-client", "0", "--rate-worker", "0"],
                      secured=True).start() for _ in range(2)]
    try:
        def call(i, who, method, path, body=None):
            r = requests.request(method, servers[i].url + path, json=body, timeout=PATIENCE,
                                 headers={"Authorization": "Bearer " + keys[who]})
            assert r.status_code < 400, r.text
            return r.json()

        call(0, "ann", "POST", "/v1/jobs/batch", {"jobs": [{"model": "m", "prompt": f"ann {i}"} for i in range(30)]})
        wid = call(1, "worker", "POST", "/v1/workers", {"name": "w", "models": ["m"]})["id"]
        first = call(0, "worker", "POST", f"/v1/workers/{wid}/lease", {})["jobs"]
        assert first[0]["input"]["prompt"].startswith("ann")
        bob = call(1, "bob", "POST", "/v1/jobs", {"model": "m", "prompt": "bob 0"})["id"]
        nxt = call(1, "worker", "POST", f"/v1/workers/{wid}/lease", {})["jobs"]
        assert [j["id"] for j in nxt] == [bob]  # ann had her turn (on the other coordinator): bob's comes now
        # routing on the shared store: the label's job skips the worker without it
        needy = call(0, "ann", "POST", "/v1/jobs", {"model": "m2", "prompt": "x",
                                                     "requirements": {"labels": {"gpu": "h100"}}})["id"]
        plain_w = call(0, "worker", "POST", "/v1/workers", {"name": "plain", "models": ["m2"]})["id"]
        gpu_w = call(1, "worker", "POST", "/v1/workers", {"name": "gpu", "models": ["m2"],
                                                          "capabilities": {"labels": {"gpu": "h100"}}})["id"]
        assert call(0, "worker", "POST", f"/v1/workers/{plain_w}/lease", {})["jobs"] == []
        assert [j["id"] for j in call(1, "worker", "POST", f"/v1/workers/{gpu_w}/lease", {})["jobs"]] == [needy]
    finally:
        stop_all(servers)
