"""Identity, tenancy and limits against the real binary (no --open)."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, PATIENCE, Server, assert_error, wait_until

UNKNOWN = "01a20000-0000-7000-8000-000000000000"


def cli(*args, stdin=None):
    r = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class Tenants:
    """ann (admin), bob and carol (clients), with keys made by the CLI."""

    def __init__(self, data):
        self.data = data
        cli("user", "add", "ann", "--admin", "--data", data, stdin="ann-password\n")
        cli("user", "add", "bob", "--data", data, stdin="bob-password\n")
        cli("user", "add", "carol", "--data", data, stdin="carol-password\n")
        self.keys = {
            "ann": cli("key", "create", "--user", "ann", "--scope", "admin", "--data", data),
            "bob": cli("key", "create", "--user", "bob", "--scope", "client", "--data", data),
            "carol": cli("key", "create", "--user", "carol", "--data", data),
            "worker": cli("key", "create", "--user", "bob", "--scope", "worker", "--data", data),
        }

    def h(self, who):
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def tenants(tmpdir_path):
    return Tenants(tmpdir_path)


@pytest.fixture
def secured(tenants, make_server):
    def start(*args):
        return make_server(*args, data_dir=tenants.data, secured=True)
    return start


def req(server, method, path, headers=None, body=None):
    return requests.request(method, server.url + path, headers=headers or {}, json=body, timeout=PATIENCE)


# ---- tokens ----

def test_login_gives_a_working_jwt(tenants, secured):
    server = secured()
    r = req(server, "POST", "/v1/auth/token", body={"user": "bob", "password": "bob-password"})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["token_type"] == "Bearer" and t["expires_in"] == 3600 and t["expires_at"]
    assert req(server, "GET", "/v1/jobs", {"Authorization": f"Bearer {t['access_token']}"}).status_code == 200
    assert_error(req(server, "POST", "/v1/auth/token", body={"user": "bob", "password": "nope"}),
                 401, "UNAUTHORIZED")
    assert_error(req(server, "POST", "/v1/auth/token", body={"user": "nobody", "password": "x"}),
                 401, "UNAUTHORIZED")
    assert_error(req(server, "POST", "/v1/auth/token", body={"user": "bob"}), 400, "INVALID_REQUEST")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(secret, header, claims):
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}.get(header["alg"])
    sig = b64(hmac.new(secret, signing.encode(), digest).digest()) if digest else ""
    return f"{signing}.{sig}"


def test_jwt_attacks_are_refused(tenants, secured):
    server = secured()
    secret = open(os.path.join(tenants.data, "jwt.secret"), "rb").read().strip()
    bob = cli("user", "ls", "--data", tenants.data)  # bob exists; his id comes from a real token
    token = req(server, "POST", "/v1/auth/token", body={"user": "bob", "password": "bob-password"}).json()
    payload = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[1] + "=="))
    now = int(time.time())
    good = dict(payload, iat=now, nbf=now, exp=now + 600)
    hs = {"alg": "HS256", "typ": "JWT"}
    assert req(server, "GET", "/v1/jobs", {"Authorization": "Bearer " + forge(secret, hs, good)}).status_code == 200
    attacks = {
        "none": forge(secret, {"alg": "none", "typ": "JWT"}, good),
        "HS512": forge(secret, {"alg": "HS512", "typ": "JWT"}, good),
        "bad signature": forge(b"x" * 64, hs, good),
        "expired": forge(secret, hs, dict(good, exp=now - 120)),
        "future nbf": forge(secret, hs, dict(good, nbf=now + 3600)),
        "wrong iss": forge(secret, hs, dict(good, iss="evil")),
        "wrong aud": forge(secret, hs, dict(good, aud="other-api")),
        "unknown sub": forge(secret, hs, dict(good, sub=UNKNOWN)),
        "garbage": "not.a.token",
    }
    for name, bad in attacks.items():
        r = req(server, "GET", "/v1/jobs", {"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, f"{name}: {r.status_code}"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert bob


def test_short_secret_is_refused_at_start(tmpdir_path):
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", tmpdir_path,
                        "--jwt-secret", "too-short"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "at least 32 bytes" in r.stderr


# ---- keys ----

def test_every_credential_form(tenants, secured):
    server = secured()
    key = tenants.keys["bob"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": f"ApiKey {key}"},
                    {"X-Api-Key": key}):
        assert req(server, "GET", "/v1/jobs", headers).status_code == 200, headers
    r = req(server, "GET", "/v1/jobs")
    assert_error(r, 401, "UNAUTHORIZED")
    mangled = key[:-1] + ("y" if key[-1] == "x" else "x")  # always a different key
    assert_error(req(server, "GET", "/v1/jobs", {"X-Api-Key": mangled}), 401, "UNAUTHORIZED")
    assert_error(req(server, "GET", "/v1/jobs", {"Authorization": "Basic Ym9iOnB3"}), 401, "UNAUTHORIZED")
    # public routes need nothing
    assert req(server, "GET", "/health").status_code == 200
    assert req(server, "GET", "/ready").status_code == 200


def test_keys_are_never_stored_raw(tenants, secured):
    server = secured()
    made = req(server, "POST", "/v1/keys", tenants.h("bob"), {"name": "laptop"})
    assert made.status_code == 201, made.text
    secrets = list(tenants.keys.values()) + [made.json()["key"]]
    listing = req(server, "GET", "/v1/keys", tenants.h("bob")).json()["data"]
    assert {k["prefix"] for k in listing} >= {made.json()["prefix"]}
    assert all("key" not in k for k in listing)
    raw = b"".join(open(os.path.join(tenants.data, f), "rb").read()
                   for f in os.listdir(tenants.data) if f.startswith("promptq.db"))
    for s in secrets:
        assert s.encode() not in raw and s[8:40].encode() not in raw


def test_revocation_and_disabling_take_effect_at_once(tenants, secured):
    server = secured()
    made = req(server, "POST", "/v1/keys", tenants.h("bob"), {"name": "temp"}).json()
    h = {"Authorization": f"Bearer {made['key']}"}
    assert req(server, "GET", "/v1/jobs", h).status_code == 200
    assert_error(req(server, "DELETE", f"/v1/keys/{made['id']}", tenants.h("carol")), 404, "NOT_FOUND")
    assert req(server, "DELETE", f"/v1/keys/{made['id']}", tenants.h("bob")).json()["revoked"] is True
    assert_error(req(server, "GET", "/v1/jobs", h), 401, "UNAUTHORIZED")
    # the CLI, on the data folder of the running server
    cli("key", "revoke", tenants.keys["carol"][:16], "--data", tenants.data)
    assert_error(req(server, "GET", "/v1/jobs", tenants.h("carol")), 401, "UNAUTHORIZED")
    token = req(server, "POST", "/v1/auth/token", body={"user": "bob", "password": "bob-password"}).json()
    cli("user", "disable", "bob", "--data", tenants.data)
    assert_error(req(server, "GET", "/v1/jobs", tenants.h("bob")), 401, "UNAUTHORIZED")
    assert_error(req(server, "GET", "/v1/jobs", {"Authorization": f"Bearer {token['access_token']}"}),
                 401, "UNAUTHORIZED")


def test_who_may_create_which_keys(tenants, secured):
    server = secured()
    assert_error(req(server, "POST", "/v1/keys", tenants.h("bob"), {"scope": "worker"}), 403, "FORBIDDEN")
    assert_error(req(server, "POST", "/v1/keys", tenants.h("bob"), {"scope": "client", "user": "carol"}),
                 403, "FORBIDDEN")
    r = req(server, "POST", "/v1/keys", tenants.h("ann"), {"scope": "worker", "user": "bob",
                                                            "expires_in_s": 3600})
    assert r.status_code == 201 and r.json()["scope"] == "worker" and r.json()["user"] == "bob"
    assert_error(req(server, "POST", "/v1/keys", tenants.h("ann"), {"scope": "admin", "user": "bob"}),
                 403, "FORBIDDEN")
    assert_error(req(server, "POST", "/v1/keys", tenants.h("ann"), {"scope": "root"}), 400, "INVALID_REQUEST")
    assert len(req(server, "GET", "/v1/keys", tenants.h("ann")).json()["data"]) >= 5  # an admin sees all


# ---- roles, from the route table ----

def routes():
    return json.loads(subprocess.run([BIN, "routes", "--json"], capture_output=True, text=True,
                                     check=True).stdout)


def test_roles_on_every_route(tenants, secured):
    server = secured()
    table = routes()
    assert {r["role"] for r in table} >= {"public", "client", "worker"}
    wrong = {"client": tenants.h("worker"), "worker": tenants.h("bob")}
    right = {"client": tenants.h("bob"), "worker": tenants.h("worker"), "admin": tenants.h("ann")}
    def req(server, method, path, headers=None):  # status only: an event stream (the dashboard's) never ends
        with requests.request(method, server.url + path, headers=headers or {}, timeout=PATIENCE, stream=True) as r:
            return r

    for r in table:
        path = (r["pattern"].replace("{id}", UNKNOWN).replace("{model}", "m")
                .replace("{job_id}", "999999").replace("{task_id}", "999999").replace("/**", "/x/y"))
        if r["role"] == "public":
            continue
        r = dict(r, method="GET" if r["method"] == "*" else r["method"])  # a catch-all takes any method
        no = req(server, r["method"], path)
        # seed 000 documents 403 for a missing or bad token; everything else says 401
        expected = 403 if r["name"].startswith("d000.") else 401
        assert no.status_code == expected, f"{r['name']} without credentials: {no.status_code}"
        if r["role"] in wrong:
            w = req(server, r["method"], path, wrong[r["role"]])
            assert w.status_code == 403, f"{r['name']} with the wrong scope: {w.status_code}"
        ok = req(server, r["method"], path, right[r["role"]])
        assert ok.status_code not in (401, 403), f"{r['name']} with the right scope: {ok.status_code}"
        admin = req(server, r["method"], path, tenants.h("ann"))  # an admin key may do everything
        assert admin.status_code not in (401, 403), f"{r['name']} as admin: {admin.status_code}"


# ---- tenancy: nobody sees another's jobs ----

def test_jobs_belong_to_their_owner(tenants, secured):
    server = secured()
    bob, carol, ann = tenants.h("bob"), tenants.h("carol"), tenants.h("ann")
    job = req(server, "POST", "/v1/jobs", bob, {"model": "m", "prompt": "bob's secret"}).json()
    mine = req(server, "POST", "/v1/jobs", carol, {"model": "m", "prompt": "carol's"}).json()
    jid = job["id"]
    for method, path in [("GET", f"/v1/jobs/{jid}"), ("GET", f"/v1/jobs/{jid}?wait=1"),
                         ("POST", f"/v1/jobs/{jid}/cancel"), ("GET", f"/v1/jobs/{jid}/events"),
                         ("GET", f"/v1/jobs/{jid}/receipt")]:
        assert_error(req(server, method, path, carol), 404, "NOT_FOUND")
    listing = req(server, "GET", "/v1/jobs", carol).json()
    assert [j["id"] for j in listing["data"]] == [mine["id"]] and listing["pagination"]["total"] == 1
    assert req(server, "GET", f"/v1/jobs/{jid}", bob).json()["input"]["prompt"] == "bob's secret"
    assert req(server, "GET", f"/v1/jobs/{jid}", ann).status_code == 200  # the admin sees all
    assert req(server, "GET", "/v1/jobs", ann).json()["pagination"]["total"] == 2
    # idempotency keys are per user too
    h = {"Idempotency-Key": "same-key"}
    a = req(server, "POST", "/v1/jobs", {**bob, **h}, {"model": "m", "prompt": "x"}).json()
    b = req(server, "POST", "/v1/jobs", {**carol, **h}, {"model": "m", "prompt": "x"}).json()
    assert a["id"] != b["id"]


# ---- limits ----

def test_rate_limit_headers_and_429(tenants, secured):
    server = secured("--rate-client", "6", "--burst-client", "2")
    first = req(server, "GET", "/v1/jobs", tenants.h("bob"))
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == "6;w=60;burst=2"
    assert re.fullmatch(r"limit=2, remaining=1, reset=\d+", first.headers["RateLimit"])
    assert first.headers["X-RateLimit-Limit"] == "6" and first.headers["X-RateLimit-Remaining"] == "1"
    assert int(first.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert req(server, "GET", "/v1/jobs", tenants.h("bob")).status_code == 200
    third = req(server, "GET", "/v1/jobs", tenants.h("bob"))
    err = assert_error(third, 429, "RATE_LIMIT_EXCEEDED")
    assert err["retryable"] is True
    assert int(third.headers["Retry-After"]) >= 1 and third.headers["X-RateLimit-Remaining"] == "0"
    assert req(server, "GET", "/v1/jobs", tenants.h("carol")).status_code == 200  # per credential


def test_login_is_limited_per_address(tenants, secured):
    server = secured("--rate-login", "6")  # a burst of 3
    codes = [req(server, "POST", "/v1/auth/token", body={"user": "bob", "password": "wrong"}).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_queued_jobs_quota(tenants, secured):
    server = secured("--max-queued-per-user", "2")
    for _ in range(2):
        assert req(server, "POST", "/v1/jobs", tenants.h("bob"), {"model": "m", "prompt": "x"}).status_code == 202
    assert_error(req(server, "POST", "/v1/jobs", tenants.h("bob"), {"model": "m", "prompt": "x"}),
                 429, "QUEUE_QUOTA_EXCEEDED")
    assert req(server, "POST", "/v1/jobs", tenants.h("carol"), {"model": "m", "prompt": "x"}).status_code == 202


def test_streams_quota(tenants, secured):
    server = secured("--max-streams-per-key", "1", "--keepalive", "200ms")  # a gone client is seen at the next write
    job = req(server, "POST", "/v1/jobs", tenants.h("bob"), {"model": "m", "prompt": "x"}).json()
    first = requests.get(f"{server.url}/v1/jobs/{job['id']}/events", headers=tenants.h("bob"),
                         stream=True, timeout=PATIENCE)
    assert first.status_code == 200
    assert_error(req(server, "GET", f"/v1/jobs/{job['id']}/events", tenants.h("bob")), 429,
                 "STREAM_QUOTA_EXCEEDED")
    first.close()
    # once it is gone the slot is free again
    wait_until(lambda: requests.get(f"{server.url}/v1/jobs/{job['id']}/events", headers=tenants.h("bob"),
                                    stream=True, timeout=PATIENCE).status_code == 200,
               what="the stream slot to be given back")


# ---- the real worker and CLI with keys ----

def test_worker_and_submit_with_keys(tenants, secured):
    server = secured()
    log = open(os.path.join(tenants.data, "worker.log"), "w")
    worker = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--model", "echo",
                               "--api-key", tenants.keys["worker"]], stdout=log, stderr=subprocess.STDOUT)
    try:
        r = subprocess.run([BIN, "submit", "--coordinator", server.url, "--wait", "hello with keys"],
                           env=dict(os.environ, PROMPTQ_API_KEY=tenants.keys["bob"]),
                           capture_output=True, text=True, timeout=PATIENCE + 30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "hello with keys"
        r = subprocess.run([BIN, "submit", "--coordinator", server.url, "x"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and "401" in r.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=PATIENCE) == 0
        log.close()


def test_metrics_can_require_an_admin(tenants, secured):
    server = secured("--metrics-private")
    assert_error(req(server, "GET", "/metrics"), 401, "UNAUTHORIZED")
    assert_error(req(server, "GET", "/metrics", tenants.h("bob")), 403, "FORBIDDEN")
    r = req(server, "GET", "/metrics", tenants.h("ann"))
    assert r.status_code == 200 and "jobs_submitted_total" in r.text
    assert req(server, "GET", "/health").status_code == 200


def test_minting_keys_does_not_multiply_a_budget(tenants, secured):
    """The rate limit is per user as well as per key: a client's own new keys share its budget."""
    server = secured("--rate-client", "6", "--burst-client", "2")
    minted = [{"Authorization": "Bearer " + cli("key", "create", "--user", "bob", "--name", name, "--data", tenants.data)}
              for name in ("k1", "k2", "k3")]
    assert req(server, "GET", "/v1/jobs", minted[0]).status_code == 200
    assert req(server, "GET", "/v1/jobs", minted[1]).status_code == 200
    assert_error(req(server, "GET", "/v1/jobs", minted[2]), 429, "RATE_LIMIT_EXCEEDED")  # bob's burst is spent
    assert req(server, "GET", "/v1/jobs", tenants.h("carol")).status_code == 200  # carol's is her own
