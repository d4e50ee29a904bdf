"""Document 001's payments through a scripted Stripe API: the Checkout
Sessions promptq creates (form fields, key, idempotency) and its errors.
Webhook signatures are tested with the official stripe library
(tests/node/stripe.test.js)."""
import subprocess

import pytest
import requests

from conftest import BIN, PATIENCE, ScriptedServer, Server, cli

SECRET_KEY = "sk_test_not_a_real_key_0123456789"


@pytest.fixture
def stripe_api(tmpdir_path):
    scripted = ScriptedServer(tmpdir_path, "stripe_fake")
    yield scripted.url
    scripted.stop()


@pytest.fixture
def shop(tmpdir_path, stripe_api):
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    key = cli("key", "create", "--user", "bob", "--data", tmpdir_path)
    env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": stripe_api, "STRIPE_PRICE_ID": "price_monthly",
           "STRIPE_SUCCESS_URL": "https://example.com/ok", "STRIPE_CANCEL_URL": "https://example.com/no",
           "STRIPE_MICRO_AMOUNT": "250", "STRIPE_WEBHOOK_SECRET": "whsec_test_secret"}
    s = Server(tmpdir_path, secured=True, env=env).start()
    s.h = {"Authorization": f"Bearer {key}"}
    s.stripe = stripe_api
    s.user_id = requests.get(s.url + "/v1/credits", headers=s.h, timeout=PATIENCE).json()["user_id"]
    yield s
    assert s.stop() == 0
    log = s.read_log()
    assert SECRET_KEY not in log and "whsec_test_secret" not in log  # secrets never reach the log


def seen(shop):
    return requests.get(shop.stripe + "/_requests", timeout=PATIENCE).json()


def test_a_subscription_checkout_as_stripe_expects_it(shop):
    r = shop.post("/api/payment/subscription", {"email": "customer@example.com"}, headers=shop.h)
    assert r.status_code == 200, r.text
    assert r.json() == {"checkout_url": "https://checkout.stripe.com/c/pay/cs_test_0001"}
    [req] = seen(shop)
    assert req["path"] == "/v1/checkout/sessions" and req["auth"] == f"Bearer {SECRET_KEY}"
    assert req["content_type"] == "application/x-www-form-urlencoded" and req["idempotency_key"]
    f = req["form"]
    assert f["mode"] == "subscription" and f["line_items[0][price]"] == "price_monthly"
    assert f["line_items[0][quantity]"] == "1" and f["customer_email"] == "customer@example.com"
    assert f["client_reference_id"] == shop.user_id and f["subscription_data[metadata][user_id]"] == shop.user_id
    assert f["success_url"] == "https://example.com/ok" and f["cancel_url"] == "https://example.com/no"
    # marked as promptq's, so its webhook events are told from other integrations' on the same account
    assert f["metadata[promptq]"] == "1" and f["subscription_data[metadata][promptq]"] == "1"


def test_a_micro_payment_checkout_and_a_retried_create(shop):
    h = dict(shop.h, **{"Idempotency-Key": "order-7"})
    body = {"user_id": 1, "description": "AI Task Processing"}
    first = shop.post("/api/payment/micro", body, headers=h)
    again = shop.post("/api/payment/micro", body, headers=h)
    assert first.status_code == 200 and again.json() == first.json()  # Stripe saw the same key: one session
    a, b = seen(shop)
    assert a["idempotency_key"] == b["idempotency_key"]  # the client's key, hashed
    f = a["form"]
    assert f["mode"] == "payment" and f["line_items[0][price_data][unit_amount]"] == "250"
    assert f["line_items[0][price_data][currency]"] == "usd"
    assert f["line_items[0][price_data][product_data][name]"] == "AI Task Processing"
    assert f["client_reference_id"] == shop.user_id and f["metadata[promptq]"] == "1"
    # any length of client key fits Stripe's 255 characters
    r = shop.post("/api/payment/micro", body, headers=dict(shop.h, **{"Idempotency-Key": "k" * 255}))
    assert r.status_code == 200 and len(seen(shop)[-1]["idempotency_key"]) <= 255


def test_errors_in_the_documents_shape(shop):
    for body in ({}, {"email": ""}, {"email": "not-an-address"}):
        r = shop.post("/api/payment/subscription", body, headers=shop.h)
        assert r.status_code == 400 and r.json() == {"error": "Missing email"}, r.text
    r = shop.post("/api/payment/subscription", {"email": "decline@example.com"}, headers=shop.h)
    assert r.status_code == 500 and "Your card was declined." in r.json()["error"]
    r = shop.post("/api/payment/micro", {"description": "decline me"}, headers=shop.h)
    assert r.status_code == 500 and set(r.json()) == {"error"}
    assert shop.post("/api/payment/micro", {"description": "x"}).status_code == 401
    r = shop.post("/api/webhook/stripe", {"id": "evt_1", "type": "x", "data": {"object": {}}})
    assert r.status_code == 400 and "signature" in r.json()["error"]


def test_stripe_unreachable_is_a_500(tmpdir_path):
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    key = cli("key", "create", "--user", "bob", "--data", tmpdir_path)
    s = Server(tmpdir_path, secured=True, env={"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": "http://127.0.0.1:9",
                                               "STRIPE_PRICE_ID": "p"}).start()
    try:
        r = s.post("/api/payment/subscription", {"email": "a@b.c"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 500 and "could not be reached" in r.json()["error"]
    finally:
        assert s.stop() == 0
