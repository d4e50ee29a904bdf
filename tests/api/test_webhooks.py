"""Completion webhooks, black-box: a real coordinator POSTs to a receiver
in this test (127.0.0.1, so the server runs with --webhook-allow-private
except where the refusal itself is tested). Every delivery's signature is
checked here the Standard Webhooks way (tests/node/webhooks.test.js checks
them again with the `standardwebhooks` library itself). Retries, the
delivery log, redelivery, subscriptions by event and by key, and a
coordinator killed with deliveries pending."""
import base64
import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import PATIENCE, Server, Worker, assert_error, cli, wait_until

FAST = ["--webhook-allow-private", "--webhook-retry-base", "20ms"]


class Receiver:
    """Records each POST; answers from a script of statuses (then 200)."""

    def __init__(self, statuses=(), body=b"ok", hold=None):
        self.statuses = list(statuses)
        self.got = []
        self.lock = threading.Lock()
        receiver = self
        answer = body

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if hold is not None:  # a receiver that keeps the request until the test lets it go
                    hold.wait(PATIENCE * 2)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n):
        return wait_until(lambda: len(self.got) >= n and list(self.got), what=f"{n} deliveries")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*statuses, **kw):
        made.append(Receiver(statuses, **kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def verify(secret, delivery):
    """The Standard Webhooks check: HMAC-SHA256 over id.timestamp.body with the secret's bytes."""
    h = delivery["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + delivery["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in h["webhook-signature"].split(" "), h
    return json.loads(delivery["body"])


def loopback_name():
    """A host name (not an address) that resolves to loopback here: this machine's own name, which Debian's
    /etc/hosts maps to 127.0.0.1 or 127.0.1.1."""
    for name in (socket.gethostname(), socket.getfqdn()):
        try:
            if all(info[4][0].startswith("127.") or info[4][0] == "::1" for info in socket.getaddrinfo(name, 80)):
                return name
        except OSError:
            pass
    raise AssertionError("this machine's name does not resolve to a loopback address (see /etc/hosts)")


def run_job(server, worker, output="done", **fields):
    job = server.submit("hi", model="echo", **fields)
    leased = worker.lease_one()
    assert leased["id"] == job["id"]
    assert worker.complete(leased, output=output).status_code == 200
    return job["id"]


def test_a_job_names_its_webhook_and_is_told_once_signed(make_server, receiver):
    server = make_server(*FAST)
    rx = receiver()
    worker = Worker(server)
    job = run_job(server, worker, output="the answer", webhook_url=rx.url)
    [delivery] = rx.wait_for(1)
    secret = server.get("/v1/webhook-secret").json()["secret"]
    event = verify(secret, delivery)
    assert event["type"] == "job.completed"
    assert event["data"]["id"] == job and event["data"]["status"] == "completed"
    assert event["data"]["output"] == "the answer"
    assert delivery["headers"]["webhook-id"].startswith("msg_")
    assert delivery["headers"]["content-type"] == "application/json"
    log = server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"]
    assert wait_until(lambda: server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"][0]["status"]
                      == "delivered", what="the log to say delivered")
    assert log[0]["id"] == delivery["headers"]["webhook-id"] and log[0]["url"] == rx.url
    assert server.job(job)["webhook_url"] == rx.url


def test_a_receiver_that_fails_three_times_gets_it_a_fourth_and_no_more(make_server, receiver):
    server = make_server(*FAST)
    rx = receiver(503, 500, 429)
    job = run_job(server, Worker(server), webhook_url=rx.url)
    got = rx.wait_for(4)
    d = wait_until(lambda: [x for x in server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"]
                            if x["status"] == "delivered"], what="delivered")[0]
    assert d["attempts"] == 4 and d["last_status"] == 200 and d["last_error"] is None
    assert len({g["headers"]["webhook-id"] for g in got}) == 1  # one message, tried four times
    assert len({g["body"] for g in got}) == 1
    # nothing more comes: a delivered message is done (a redelivery would be a fifth request)
    assert server.post(f"/v1/webhook-deliveries/{d['id']}/redeliver").status_code == 202
    rx.wait_for(5)
    assert len(rx.got) == 5


def test_a_4xx_is_final_and_a_redelivery_sends_it_again(make_server, receiver):
    server = make_server(*FAST)
    rx = receiver(410)
    job = run_job(server, Worker(server), webhook_url=rx.url)
    rx.wait_for(1)
    d = wait_until(lambda: [x for x in server.get(f"/v1/webhook-deliveries?job_id={job}&status=failed").json()["data"]],
                   what="failed")[0]
    assert d["attempts"] == 1 and d["last_status"] == 410 and "410" in d["last_error"]
    r = server.post(f"/v1/webhook-deliveries/{d['id']}/redeliver")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    second = rx.wait_for(2)[1]
    assert second["headers"]["webhook-id"] == d["id"]
    assert_error(server.post("/v1/webhook-deliveries/msg_nope/redeliver"), 404, "NOT_FOUND")


def test_subscriptions_by_event_and_by_key(tmpdir_path, receiver):
    for name in ("ann", "bob"):
        cli("user", "add", name, "--data", tmpdir_path, stdin=f"{name}-password\n")
    keys = {n: cli("key", "create", "--user", n, "--data", tmpdir_path) for n in ("ann", "bob")}
    keys["ann2"] = cli("key", "create", "--user", "ann", "--data", tmpdir_path)
    keys["worker"] = cli("key", "create", "--user", "bob", "--scope", "worker", "--data", tmpdir_path)
    server = Server(tmpdir_path, [*FAST, "--rate-client", "0"], secured=True).start()
    try:
        def call(who, method, path, body=None):
            return requests.request(method, server.url + path, json=body, timeout=PATIENCE,
                                    headers={"Authorization": "Bearer " + keys[who]})

        everything, failures, by_key = receiver(), receiver(), receiver()
        subs = {}
        for rx, body, who in ((everything, {}, "ann"), (failures, {"events": ["job.failed", "job.dead"]}, "ann"),
                              (by_key, {"key_only": True}, "ann2")):
            r = call(who, "POST", "/v1/webhooks", {"url": rx.url, **body})
            assert r.status_code == 201, r.text
            subs[rx.url] = r.json()
            assert r.json()["secret"].startswith("whsec_")
        assert [w["url"] for w in call("ann", "GET", "/v1/webhooks").json()["data"]] == \
            [everything.url, failures.url, by_key.url]
        assert "secret" not in call("ann", "GET", "/v1/webhooks").json()["data"][0]
        assert call("bob", "GET", "/v1/webhooks").json()["data"] == []
        assert call("bob", "GET", f"/v1/webhooks/{subs[everything.url]['id']}").status_code == 404
        wid = call("worker", "POST", "/v1/workers", {"name": "w", "models": ["m"]}).json()["id"]

        def run(who, fail=False):
            job = call(who, "POST", "/v1/jobs", {"model": "m", "prompt": who}).json()["id"]
            [j] = call("worker", "POST", f"/v1/workers/{wid}/lease", {}).json()["jobs"]
            if fail:
                call("worker", "POST", f"/v1/jobs/{job}/fail", {"lease": j["lease"]["token"],
                                                                "error": {"code": "X", "message": "no"},
                                                                "retryable": False})
            else:
                call("worker", "POST", f"/v1/jobs/{job}/complete", {"lease": j["lease"]["token"], "output": "ok"})
            return job

        a = run("ann")              # everything
        b = run("ann", fail=True)   # everything and failures
        c = run("ann2")             # everything and by_key
        run("bob")                  # nobody of ann's
        everything.wait_for(3)
        failures.wait_for(1)
        by_key.wait_for(1)
        events = [verify(subs[everything.url]["secret"], d) for d in everything.got]
        assert sorted((e["data"]["id"], e["type"]) for e in events) == \
            sorted([(a, "job.completed"), (b, "job.failed"), (c, "job.completed")])
        assert [verify(subs[failures.url]["secret"], d)["data"]["id"] for d in failures.got] == [b]
        assert [verify(subs[by_key.url]["secret"], d)["data"]["id"] for d in by_key.got] == [c]
        # a deleted subscription is told nothing more
        assert call("ann", "DELETE", f"/v1/webhooks/{subs[everything.url]['id']}").json()["deleted"] is True
        assert call("ann", "DELETE", f"/v1/webhooks/{subs[everything.url]['id']}").status_code == 404
        run("ann2")
        by_key.wait_for(2)
        assert len(everything.got) == 3
        assert_error(call("ann", "POST", "/v1/webhooks", {"url": everything.url, "events": ["job.exploded"]}),
                     400, "INVALID_REQUEST")
    finally:
        assert server.stop() == 0


def test_a_webhook_to_a_private_address_is_refused_unless_allowed(make_server, receiver):
    server = make_server()
    for url in ("http://127.0.0.1:9/hook", "http://[::1]/hook", "http://169.254.169.254/latest", "http://localhost/x",
                "http://10.0.0.8/hook"):
        err = assert_error(server.post("/v1/webhooks", {"url": url}), 400, "INVALID_REQUEST")
        assert "--webhook-allow-private" in err["message"], err
        err = assert_error(server.post("/v1/jobs", {"model": "echo", "prompt": "x", "webhook_url": url}), 400,
                           "INVALID_REQUEST")
        assert err["details"]["field"] == "webhook_url"
    for url in ("ftp://example.com/x", "file:///etc/passwd", "https://u:p@example.com/"):
        assert_error(server.post("/v1/webhooks", {"url": url}), 400, "INVALID_REQUEST")
    # a name that resolves to loopback passes the URL check, and is refused where it connects
    rx = receiver()
    name = loopback_name()
    sneaky = rx.url.replace("127.0.0.1", name)
    job = server.post("/v1/jobs", {"model": "echo", "prompt": "x", "webhook_url": sneaky})
    assert job.status_code == 202, job.text
    worker = Worker(server)
    leased = worker.lease_one()
    assert worker.complete(leased).status_code == 200
    d = wait_until(lambda: [x for x in server.get(f"/v1/webhook-deliveries?job_id={leased['id']}").json()["data"]
                            if x["status"] == "failed"], what="the delivery to be refused")[0]
    assert d["attempts"] == 1 and "refused" in d["last_error"] and "127.0." in d["last_error"], d
    assert rx.got == []


def test_a_delivery_pending_when_the_coordinator_is_killed_goes_out_after_restart(tmpdir_path, receiver):
    rx = receiver(503)  # the first attempt fails, and its retry is due only in 2 s
    args = ["--webhook-allow-private", "--webhook-retry-base", "2s"]
    server = Server(tmpdir_path, args).start()
    job = run_job(server, Worker(server), webhook_url=rx.url)
    rx.wait_for(1)
    wait_until(lambda: server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"][0]["attempts"] == 1
               and server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"][0]["last_status"] == 503,
               what="the failed attempt to be recorded")
    server.kill9()
    server = Server(tmpdir_path, args).start()
    try:
        got = rx.wait_for(2)
        assert got[1]["headers"]["webhook-id"] == got[0]["headers"]["webhook-id"]
        d = wait_until(lambda: [x for x in server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"]
                                if x["status"] == "delivered"], what="delivered after the restart")[0]
        assert d["attempts"] == 2
    finally:
        assert server.stop() == 0


def test_a_receivers_answer_is_kept_as_plain_text(make_server, receiver):
    server = make_server(*FAST)
    rx = receiver(400, body=b"\xff\xfe bad\nforged log line \x00 " + b"x" * 500)
    job = run_job(server, Worker(server), webhook_url=rx.url)
    d = wait_until(lambda: [x for x in server.get(f"/v1/webhook-deliveries?job_id={job}").json()["data"]
                            if x["status"] == "failed"], what="the 400 to be recorded")[0]
    error = d["last_error"]
    assert error.startswith("the receiver answered 400: ") and "\n" not in error and len(error) < 260, error
    assert all(32 <= ord(ch) < 127 for ch in error), error
    assert "forged log line" in error
    assert "\nforged" not in server.read_log()


def test_one_users_slow_receiver_does_not_hold_up_another(tmpdir_path, receiver):
    for name in ("ann", "bob"):
        cli("user", "add", name, "--data", tmpdir_path, stdin=f"{name}-password\n")
    keys = {n: cli("key", "create", "--user", n, "--data", tmpdir_path) for n in ("ann", "bob")}
    keys["worker"] = cli("key", "create", "--user", "bob", "--scope", "worker", "--data", tmpdir_path)
    # four slots: one at a time to a host, two for a user: ann's hanging receiver holds one of them
    server = Server(tmpdir_path, [*FAST, "--rate-client", "0", "--webhook-concurrency", "4", "--webhook-timeout", "60s"],
                    secured=True).start()
    release = threading.Event()
    try:
        def call(who, method, path, body=None):
            r = requests.request(method, server.url + path, json=body, timeout=PATIENCE,
                                 headers={"Authorization": "Bearer " + keys[who]})
            assert r.status_code < 400, r.text
            return r.json()

        stuck, fine = receiver(hold=release), receiver()
        for i in range(6):  # ann's ends pile up on a receiver that never answers
            job = call("ann", "POST", "/v1/jobs", {"model": "m", "prompt": f"ann {i}", "webhook_url": stuck.url})
            call("ann", "POST", f"/v1/jobs/{job['id']}/cancel")
        stuck.wait_for(1)
        bob = call("bob", "POST", "/v1/jobs", {"model": "m", "prompt": "bob", "webhook_url": fine.url})
        call("bob", "POST", f"/v1/jobs/{bob['id']}/cancel")
        [d] = fine.wait_for(1)  # within the test's patience, while ann's first request still hangs
        assert json.loads(d["body"])["data"]["id"] == bob["id"]
        # and ann's own other receiver is not held up by her hanging one either
        other = receiver()
        mine = call("ann", "POST", "/v1/jobs", {"model": "m", "prompt": "ann fast", "webhook_url": other.url})
        call("ann", "POST", f"/v1/jobs/{mine['id']}/cancel")
        assert json.loads(other.wait_for(1)[0]["body"])["data"]["id"] == mine["id"]
        assert len(stuck.got) == 1  # one at a time to the hanging host
    finally:
        release.set()
        assert server.stop() == 0


def test_secrets_rotate(make_server, receiver):
    server = make_server(*FAST)
    rx = receiver()
    old = server.get("/v1/webhook-secret").json()["secret"]
    new = server.post("/v1/webhook-secret/rotate").json()["secret"]
    assert new != old and server.get("/v1/webhook-secret").json()["secret"] == new
    run_job(server, Worker(server), webhook_url=rx.url)
    [d] = rx.wait_for(1)
    verify(new, d)  # signed with the secret as it is now
    with pytest.raises(AssertionError):
        verify(old, d)
    sub = server.post("/v1/webhooks", {"url": rx.url}).json()
    turned = server.post(f"/v1/webhooks/{sub['id']}/rotate")
    assert turned.status_code == 200 and turned.json()["secret"] not in (sub["secret"], new)
    assert server.get(f"/v1/webhooks/{sub['id']}").json()["secret"] == turned.json()["secret"]
    assert_error(server.post("/v1/webhooks/wh_nope/rotate"), 404, "NOT_FOUND")
