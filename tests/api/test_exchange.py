"""Document 003's exchange: Bitcoin payment requests with amounts told apart,
confirmed through a scripted Esplora, credited once; late and unasked
amounts recorded, never credited."""
from datetime import datetime, timezone
import subprocess

import pytest
import requests

from conftest import BIN, PATIENCE, ScriptedServer, Server, cli, wait_until

ADDRESS = "tb1qexchangetestaddress0000000000000000"


@pytest.fixture
def esplora(tmpdir_path):
    scripted = ScriptedServer(tmpdir_path, "esplora_fake")
    yield scripted.url
    scripted.stop()


def exchange(tmpdir_path, esplora, ttl_s=3600, max_pending=10):
    for name in ("bob", "carol"):
        cli("user", "add", name, "--data", tmpdir_path, stdin=f"{name}-password\n")
    keys = {n: cli("key", "create", "--user", n, "--data", tmpdir_path) for n in ("bob", "carol")}
    env = {"BITCOIN_ADDRESS": ADDRESS, "BTC_TO_AITBC_RATE": "100000", "ESPLORA_URL": esplora,
           "ESPLORA_POLL_MS": "50", "BTC_CONFIRMATIONS": "2", "BTC_PAYMENT_TTL_S": str(ttl_s),
           "BTC_MAX_PENDING": str(max_pending)}
    # the tests poll the status: the user routes' rate limit is not what they test
    s = Server(tmpdir_path, ["--rate-user", "0", "--rate-client", "0"], secured=True, env=env).start()
    s.h = {n: {"Authorization": f"Bearer {k}"} for n, k in keys.items()}
    return s


def reads(esplora):
    return requests.get(esplora + "/_reads", timeout=PATIENCE).json()["reads"]


def after_two_more_looks(esplora):
    """The watcher has read the address at least twice more since now (it reads tip and txs per look)."""
    start = reads(esplora)
    wait_until(lambda: reads(esplora) >= start + 4, what="the watcher to look again")


def balance(s, who):
    return s.get(f"/v1/credits", headers=s.h[who]).json()["balance"]["micros"]


def test_a_payment_is_credited_once_when_deep_enough(tmpdir_path, esplora):
    s = exchange(tmpdir_path, esplora)
    try:
        r = s.post("/v1/exchange/create-payment", {"amount": 1000}, headers=s.h["bob"])
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["status"] == "pending" and first["address"] == ADDRESS
        assert first["amount_btc"] == "0.01000000" and first["amount_sats"] == 1000000
        assert first["uri"].startswith(f"bitcoin:{ADDRESS}?amount=0.01000000")
        second = s.post("/api/v1/exchange/create-payment", {"amount": "0.01", "currency": "BTC"},
                        headers=s.h["bob"]).json()
        assert second["amount_sats"] == 1000001  # the same amount is pending: a satoshi apart
        assert second["aitbc_amount"] == 1000.0
        post = lambda path, body: requests.post(esplora + path, json=body, timeout=PATIENCE)
        # the second one is paid: seen in the mempool, then mined, then buried
        post("/_tx", {"txid": "aa" * 32, "outputs": [{"address": ADDRESS, "value": 1000001}], "block_height": None})
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{second['id']}", headers=s.h["bob"]).json()["txid"],
                   what="the payment to be seen")
        assert s.get(f"/v1/exchange/payment-status/{second['id']}", headers=s.h["bob"]).json()["status"] == "pending"
        post("/_tx", {"txid": "aa" * 32, "outputs": [{"address": ADDRESS, "value": 1000001}], "block_height": 101})
        post("/_tip", {"height": 101})  # one confirmation: not yet
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{second['id']}",
                                 headers=s.h["bob"]).json()["confirmations"] == 1, what="one confirmation")
        assert balance(s, "bob") == 0
        post("/_tip", {"height": 102})
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{second['id']}",
                                 headers=s.h["bob"]).json()["status"] == "confirmed", what="the confirmation")
        assert balance(s, "bob") == 1000 * 1000000
        after_two_more_looks(esplora)
        assert balance(s, "bob") == 1000 * 1000000  # seen again and again, credited once
        assert s.get(f"/v1/exchange/payment-status/{first['id']}", headers=s.h["bob"]).json()["status"] == "pending"
        # an amount nobody asked for is recorded, not credited
        post("/_tx", {"txid": "bb" * 32, "outputs": [{"address": ADDRESS, "value": 999}], "block_height": 102})
        wait_until(lambda: "unmatched" in s.read_log(), what="the stray amount to be recorded")
        assert balance(s, "bob") == 1000 * 1000000
        # another user's payment does not exist for carol
        r = s.get(f"/v1/exchange/payment-status/{first['id']}", headers=s.h["carol"])
        assert r.status_code == 404 and r.json()["error"]["code"] == "PAYMENT_NOT_FOUND"
        for bad in ({}, {"amount": 0}, {"amount": -5}, {"amount": "abc"}, {"amount": 1, "currency": "EUR"},
                    {"amount": "0.000000001", "currency": "BTC"}):
            r = s.post("/v1/exchange/create-payment", bad, headers=s.h["bob"])
            assert r.status_code == 400, (bad, r.text)
        # Esplora down: the watcher backs off and comes back
        post("/_fail", {"on": True})
        wait_until(lambda: "cannot read" in s.read_log(), what="the outage to be noticed")
        post("/_fail", {"on": False})
        post("/_tx", {"txid": "cc" * 32, "outputs": [{"address": ADDRESS, "value": 1000000}], "block_height": 101})
        wait_until(lambda: balance(s, "bob") == 2000 * 1000000, timeout=PATIENCE * 2, what="the first payment")
    finally:
        assert s.stop() == 0


def test_a_payment_after_its_expiry_is_recorded_not_credited(tmpdir_path, esplora):
    s = exchange(tmpdir_path, esplora, ttl_s=1)
    try:
        p = s.post("/v1/exchange/create-payment", {"amount": 5}, headers=s.h["bob"]).json()
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{p['id']}", headers=s.h["bob"]).json()["status"]
                   == "expired", what="the request to expire")
        after_two_more_looks(esplora)  # the watcher looked after the expiry and saw nothing: what comes now is late
        requests.post(esplora + "/_tx", json={"txid": "dd" * 32, "block_height": 90,
                                              "outputs": [{"address": ADDRESS, "value": p["amount_sats"]}]},
                      timeout=PATIENCE)
        wait_until(lambda: "late" in s.read_log(), what="the late payment to be recorded")
        assert balance(s, "bob") == 0
        # the expired one's amount stays its own a while: a late payment can never be taken for a newer one
        again = s.post("/v1/exchange/create-payment", {"amount": 5.0}, headers=s.h["carol"]).json()
        assert again["amount_sats"] == p["amount_sats"] + 1
    finally:
        assert s.stop() == 0


def test_a_payment_seen_in_time_keeps_its_request_past_the_expiry(tmpdir_path, esplora):
    s = exchange(tmpdir_path, esplora, ttl_s=1)
    try:
        p = s.post("/v1/exchange/create-payment", {"amount": 7}, headers=s.h["bob"]).json()
        post = lambda path, body: requests.post(esplora + path, json=body, timeout=PATIENCE)
        post("/_tx", {"txid": "ee" * 32, "outputs": [{"address": ADDRESS, "value": p["amount_sats"]}], "block_height": None})
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{p['id']}", headers=s.h["bob"]).json()["txid"],
                   what="the payment to be seen in time")
        expires = datetime.fromisoformat(p["expires_at"].replace("Z", "+00:00"))
        wait_until(lambda: datetime.now(timezone.utc) > expires, what="the request's expiry to pass")
        # past its expiry, carol asks for the same amount: she gets another one
        other = s.post("/v1/exchange/create-payment", {"amount": 7}, headers=s.h["carol"]).json()
        assert other["amount_sats"] != p["amount_sats"]
        post("/_tx", {"txid": "ee" * 32, "outputs": [{"address": ADDRESS, "value": p["amount_sats"]}], "block_height": 90})
        wait_until(lambda: s.get(f"/v1/exchange/payment-status/{p['id']}", headers=s.h["bob"]).json()["status"]
                   == "confirmed", what="bob's payment to be confirmed")
        assert balance(s, "bob") == 7 * 1000000 and balance(s, "carol") == 0
    finally:
        assert s.stop() == 0


def test_nobody_holds_every_amount(tmpdir_path, esplora):
    s = exchange(tmpdir_path, esplora, max_pending=2)
    try:
        for _ in range(2):
            assert s.post("/v1/exchange/create-payment", {"amount": 1}, headers=s.h["bob"]).status_code == 201
        r = s.post("/v1/exchange/create-payment", {"amount": 1}, headers=s.h["bob"])
        assert r.status_code == 429 and r.json()["error"]["code"] == "TOO_MANY_PENDING", r.text
        assert s.post("/v1/exchange/create-payment", {"amount": 1}, headers=s.h["carol"]).status_code == 201
    finally:
        assert s.stop() == 0
