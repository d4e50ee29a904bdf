"""Money over HTTP and the command line: prices, holds at submit, real costs
at the end, grants once, and every door showing the same cost."""
import subprocess

import requests

from conftest import BIN, PATIENCE, cli, wait_until

import pytest


@pytest.fixture
def shop(tmpdir_path, make_server):
    cli("user", "add", "ann", "--admin", "--data", tmpdir_path, stdin="ann-password\n")
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    cli("user", "add", "carol", "--data", tmpdir_path, stdin="carol-password\n")
    keys = {"ann": cli("key", "create", "--user", "ann", "--scope", "admin", "--data", tmpdir_path),
            "bob": cli("key", "create", "--user", "bob", "--data", tmpdir_path),
            "carol": cli("key", "create", "--user", "carol", "--data", tmpdir_path)}
    # 1 USD per million tokens in, 2 out; the operator pays half of that
    out = cli("price", "set", "m", "--input", "1", "--output", "2", "--cost-input", "0.5", "--cost-output", "1",
              "--data", tmpdir_path)
    assert "m: 1.000000 in, 2.000000 out" in out
    server = make_server("--rate-client", "0", data_dir=tmpdir_path, secured=True)  # bursts below are the point
    server.h = lambda who: {"Authorization": f"Bearer {keys[who]}"}
    server.keys = keys
    server.data = tmpdir_path
    return server


def credits(server, who, **params):
    r = server.get("/v1/credits", headers=server.h(who), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_no_credit_no_job_then_a_hold_then_the_real_cost(shop):
    body = {"model": "m", "prompt": "hello there", "params": {"max_tokens": 100}}
    r = shop.post("/v1/jobs", body, headers=shop.h("bob"))
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "INSUFFICIENT_CREDITS" and err["retryable"] is False
    needed = err["details"]["needed"]["micros"]
    assert needed > 200 and err["details"]["available"] == {"micros": 0, "usd": "0.000000"}
    assert shop.get("/v1/jobs", headers=shop.h("bob")).json()["pagination"]["total"] == 0

    grant = {"user": "bob", "amount": "1.50", "id": "welcome"}
    r = shop.post("/v1/credits/grant", grant, headers=shop.h("ann"))
    assert r.status_code == 201 and r.json()["balance"]["usd"] == "1.500000", r.text
    again = shop.post("/v1/credits/grant", grant, headers=shop.h("ann"))
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert credits(shop, "bob")["balance"]["micros"] == 1500000  # once

    job = shop.post("/v1/jobs", body, headers=shop.h("bob")).json()
    c = credits(shop, "bob")
    assert c["held"]["micros"] == needed and c["available"]["micros"] == 1500000 - needed
    seen = shop.get(f"/v1/jobs/{job['id']}", headers=shop.h("bob")).json()
    assert seen["held"]["micros"] == needed and seen["cost"]["micros"] == 0

    # a worker of ann's (an admin key may act as one)
    worker_id = shop.post("/v1/workers", {"name": "w", "models": ["m"]}, headers=shop.h("ann")).json()["id"]
    leased = shop.post(f"/v1/workers/{worker_id}/lease", {"max_jobs": 1, "wait_s": 5}, headers=shop.h("ann")).json()["jobs"][0]
    r = shop.post(f"/v1/jobs/{leased['id']}/complete", {"lease": leased["lease"]["token"], "output": "hi",
                                                        "usage": {"prompt_tokens": 30, "completion_tokens": 40}},
                  headers=shop.h("ann"))
    assert r.status_code == 200, r.text
    done = shop.get(f"/v1/jobs/{job['id']}", headers=shop.h("bob")).json()
    assert done["cost"] == {"micros": 30 + 80, "usd": "0.000110"} and "held" not in done
    c = credits(shop, "bob")
    assert c["balance"]["micros"] == 1500000 - 110 and c["held"]["micros"] == 0

    ledger = shop.get("/v1/ledger", headers=shop.h("bob")).json()
    assert [(t["kind"], t["state"]) for t in ledger["data"]] == [("hold", "posted"), ("grant", "posted")]
    assert ledger["data"][0]["posted"]["micros"] == 110 and ledger["data"][0]["job_id"] == job["id"]
    revenue = shop.get("/v1/ledger?account=revenue", headers=shop.h("ann")).json()
    assert revenue["pagination"]["total"] == 1
    upstream = shop.get("/v1/ledger?account=upstream", headers=shop.h("ann")).json()
    assert upstream["data"][0]["amount"]["micros"] == 15 + 40  # what the operator paid


def test_tenancy_and_bad_input(shop):
    assert shop.get("/v1/credits?user=bob", headers=shop.h("carol")).status_code == 404
    assert shop.get("/v1/ledger?user=bob", headers=shop.h("carol")).status_code == 404
    assert shop.get("/v1/ledger?account=revenue", headers=shop.h("carol")).status_code == 403
    assert credits(shop, "ann", user="bob")["balance"]["micros"] == 0  # an admin reads anyone's
    assert shop.post("/v1/credits/grant", {"user": "bob", "amount": "1"}, headers=shop.h("bob")).status_code == 403
    for amount in ("-1", "0", "1.0000001", "abc", "", [1], None):
        r = shop.post("/v1/credits/grant", {"user": "bob", "amount": amount}, headers=shop.h("ann"))
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "amount", (amount, r.text)
    r = shop.post("/v1/credits/grant", {"user": "nobody", "amount": "1"}, headers=shop.h("ann"))
    assert r.status_code == 404
    r = requests.put(shop.url + "/v1/prices/x", json={"input": "1"}, headers=shop.h("ann"), timeout=PATIENCE)
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "output"
    r = requests.put(shop.url + "/v1/prices/x", json={"input": "0.25", "output": 3}, headers=shop.h("ann"),
                     timeout=PATIENCE)
    assert r.status_code == 200 and r.json()["output_per_mtok"]["usd"] == "3.000000"
    models = [p["model"] for p in shop.get("/v1/prices", headers=shop.h("bob")).json()["data"]]
    assert models == ["m", "x"]
    r = requests.put(shop.url + "/v1/prices/x", json={"input": "1", "output": "1"}, headers=shop.h("bob"),
                     timeout=PATIENCE)
    assert r.status_code == 403


def test_unpriced_models_cost_nothing_and_hold_nothing(shop):
    job = shop.post("/v1/jobs", {"model": "free", "prompt": "x"}, headers=shop.h("bob"))
    assert job.status_code == 202
    assert credits(shop, "bob")["held"]["micros"] == 0


def test_the_command_line_grants_once(shop):
    out = cli("credit", "grant", "carol", "2.5", "--id", "promo-1", "--data", shop.data)
    assert "balance 2.500000 USD" in out
    out = cli("credit", "grant", "carol", "2.5", "--id", "promo-1", "--data", shop.data)
    assert "nothing changed" in out and "balance 2.500000 USD" in out
    assert credits(shop, "carol")["balance"]["usd"] == "2.500000"
    assert "m " in cli("price", "ls", "--data", shop.data)
    r = cli("credit", "grant", "carol", "-3", "--data", shop.data, check=False)
    assert r.returncode == 2
    r = cli("credit", "show", "nobody", "--data", shop.data, check=False)
    assert r.returncode == 1 and "no user nobody" in r.stderr


def run_job(shop, who, model, prompt_tokens, completion_tokens, worker_id):
    job = shop.post("/v1/jobs", {"model": model, "prompt": "p", "params": {"max_tokens": 1000}}, headers=shop.h(who))
    assert job.status_code == 202, job.text
    leased = shop.post(f"/v1/workers/{worker_id}/lease", {"max_jobs": 1, "wait_s": 5}, headers=shop.h("ann")).json()
    j = leased["jobs"][0]
    r = shop.post(f"/v1/jobs/{j['id']}/complete", {"lease": j["lease"]["token"], "output": "x", "usage": {
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}, headers=shop.h("ann"))
    assert r.status_code == 200, r.text
    return job.json()["id"]


def test_reports_add_up_to_fixtures_computed_by_hand(shop):
    requests.put(shop.url + "/v1/prices/n", json={"input": "10", "output": "20", "cost_input": "4", "cost_output": "8"},
                 headers=shop.h("ann"), timeout=PATIENCE).raise_for_status()
    for who in ("bob", "carol"):
        shop.post("/v1/credits/grant", {"user": who, "amount": "5"}, headers=shop.h("ann")).raise_for_status()
    worker_id = shop.post("/v1/workers", {"name": "w", "models": ["m", "n"]}, headers=shop.h("ann")).json()["id"]
    run_job(shop, "bob", "m", 1000, 500, worker_id)    # 1000*1 + 500*2 = 2000 micros; operator 500 + 500 = 1000
    run_job(shop, "bob", "n", 100, 50, worker_id)      # 100*10 + 50*20 = 2000; operator 400 + 400 = 800
    run_job(shop, "carol", "n", 300, 0, worker_id)     # 3000; operator 1200
    r = shop.get("/v1/reports?by=model", headers=shop.h("ann"))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [(x["key"], x["jobs"], x["cost"]["micros"]) for x in rep["rows"]] == [("m", 1, 2000), ("n", 2, 5000)]
    assert rep["totals"]["cost"]["micros"] == 7000 and rep["totals"]["prompt_tokens"] == 1400
    assert rep["ledger"]["usage"]["micros"] == 7000 and rep["ledger"]["api_cost"]["micros"] == 3000
    assert rep["ledger"]["granted"]["micros"] == 10000000 and rep["ledger"]["income"]["micros"] == 0
    assert rep["ledger"]["profit"]["micros"] == -3000
    by_user = shop.get("/v1/reports?by=user", headers=shop.h("ann")).json()["rows"]
    assert sorted(x["cost"]["micros"] for x in by_user) == [3000, 4000]
    csv = shop.get("/v1/reports?by=day&format=csv", headers=shop.h("ann"))
    assert csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.strip().split("\r\n")
    assert lines[0] == "day,jobs,completed,prompt_tokens,completion_tokens,cost_usd"
    assert lines[1].endswith(",3,3,1400,550,0.007000") and len(lines) == 2
    # the document's report: the operator's books
    daily = shop.get("/api/report/daily", headers=shop.h("ann")).json()
    assert daily == {"date": daily["date"], "income": 0.0, "expenses": 0.003, "profit": -0.003,
                     "breakdown": {"income_breakdown": {"subscription": 0.0, "micro_payment": 0.0},
                                   "expense_breakdown": {"api_cost": 0.003}}}
    assert shop.get("/api/report/monthly", headers=shop.h("ann")).json()["expenses"] == 0.003
    bad = shop.get("/api/report/yearly", headers=shop.h("ann"))
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    stats = shop.get("/api/stats", headers=shop.h("bob")).json()
    assert stats["tasks"]["total_cost"] == 0.004  # bob's own
    assert shop.get("/api/stats", headers=shop.h("ann")).json()["tasks"]["total_cost"] == 0.007
    for q in ("from=yesterday", "by=week", "format=xml", "from=2026-12-02&to=2026-12-01"):
        r = shop.get("/v1/reports?" + q, headers=shop.h("ann"))
        assert r.status_code == 400, q
    assert shop.get("/v1/reports", headers=shop.h("bob")).status_code == 403
    old = shop.get("/v1/reports?from=2020-01-01&to=2020-02-01", headers=shop.h("ann")).json()
    assert old["rows"] == [] and old["totals"]["jobs"] == 0


def test_budgets_stop_a_tenant_before_it_overspends(shop):
    shop.post("/v1/credits/grant", {"user": "bob", "amount": "10"}, headers=shop.h("ann")).raise_for_status()
    body = {"model": "m", "prompt": "hello there", "params": {"max_tokens": 100}}
    first = shop.post("/v1/jobs", body, headers=shop.h("bob")).json()
    worst = shop.get(f"/v1/jobs/{first['id']}", headers=shop.h("bob")).json()["held"]["micros"]
    limit = f"0.{2 * worst:06d}"  # two worst cases a day
    r = requests.put(shop.url + "/v1/budgets", json={"user": "bob", "period": "day", "limit": limit},
                     headers=shop.h("ann"), timeout=PATIENCE)
    assert r.status_code == 200, r.text
    assert r.json()["held"]["micros"] == worst and r.json()["left"]["micros"] == worst
    assert shop.post("/v1/jobs", body, headers=shop.h("bob")).status_code == 202
    r = shop.post("/v1/jobs", body, headers=shop.h("bob"))
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "BUDGET_EXCEEDED" and err["details"]["budget"]["period"] == "day"
    assert err["details"]["available"]["micros"] == 0 and err["details"]["needed"]["micros"] == worst
    mine = shop.get("/v1/budgets", headers=shop.h("bob")).json()["data"]
    assert [(b["period"], b["limit"]["micros"], b["held"]["micros"]) for b in mine] == [("day", 2 * worst, 2 * worst)]
    # a key's own budget: bob's key may spend less than bob
    prefix = shop.keys["bob"][:16]  # the part a key listing shows
    r = requests.put(shop.url + "/v1/budgets", json={"user": "bob", "period": "day", "limit": 0},
                     headers=shop.h("ann"), timeout=PATIENCE)
    assert r.status_code == 200 and r.json()["removed"] is True
    r = requests.put(shop.url + "/v1/budgets", json={"key": prefix, "period": "month", "limit": f"0.{2 * worst:06d}"},
                     headers=shop.h("ann"), timeout=PATIENCE)
    assert r.status_code == 200, r.text
    assert shop.post("/v1/jobs", body, headers=shop.h("bob")).status_code == 402  # its two holds fill it
    token = shop.post("/v1/auth/token", {"user": "bob", "password": "bob-password"}).json()["access_token"]
    assert shop.post("/v1/jobs", body, headers={"Authorization": f"Bearer {token}"}).status_code == 202  # not the key
    for bad in ({"period": "day", "limit": "1"}, {"user": "bob", "key": prefix, "period": "day", "limit": "1"},
                {"user": "bob", "period": "week", "limit": "1"}, {"user": "bob", "period": "day", "limit": "-1"}):
        r = requests.put(shop.url + "/v1/budgets", json=bad, headers=shop.h("ann"), timeout=PATIENCE)
        assert r.status_code == 400, (bad, r.text)
    r = requests.put(shop.url + "/v1/budgets", json={"user": "bob", "period": "day", "limit": "1"},
                     headers=shop.h("bob"), timeout=PATIENCE)
    assert r.status_code == 403
    out = cli("budget", "set", "carol", "3", "--period", "day", "--data", shop.data)
    assert "at most 3.000000 USD a day" in out
    assert "day" in cli("budget", "ls", "--data", shop.data)


def test_a_prices_file_and_workers_earning_their_share(tmpdir_path, make_server):
    prices = f"{tmpdir_path}/prices.txt"
    with open(prices, "w") as f:
        f.write("# model  input  output  cost_in  cost_out (USD per million tokens)\n"
                "m 1 2 0.5 1\n\nfree-ish 0.000001 0\n")
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    cli("user", "add", "miner", "--data", tmpdir_path, stdin="miner-password\n")
    bob = cli("key", "create", "--user", "bob", "--data", tmpdir_path)
    miner = cli("key", "create", "--user", "miner", "--scope", "worker", "--data", tmpdir_path)
    miner_client = cli("key", "create", "--user", "miner", "--data", tmpdir_path)
    cli("credit", "grant", "bob", "1", "--data", tmpdir_path)
    s = make_server("--prices", prices, "--worker-share", "50", data_dir=tmpdir_path, secured=True)
    hb, hm = {"Authorization": f"Bearer {bob}"}, {"Authorization": f"Bearer {miner}"}
    listed = {p["model"]: p for p in s.get("/v1/prices", headers=hb).json()["data"]}
    assert listed["m"]["cost_output_per_mtok"]["usd"] == "1.000000" and listed["free-ish"]["input_per_mtok"]["micros"] == 1
    worker_id = s.post("/v1/workers", {"name": "rig", "models": ["m"]}, headers=hm).json()["id"]
    job = s.post("/v1/jobs", {"model": "m", "prompt": "p", "params": {"max_tokens": 100}}, headers=hb).json()
    j = s.post(f"/v1/workers/{worker_id}/lease", {"max_jobs": 1, "wait_s": 5}, headers=hm).json()["jobs"][0]
    s.post(f"/v1/jobs/{j['id']}/complete", {"lease": j["lease"]["token"], "output": "x",
                                            "usage": {"prompt_tokens": 30, "completion_tokens": 40}}, headers=hm)
    assert s.get(f"/v1/jobs/{job['id']}", headers=hb).json()["cost"]["micros"] == 110
    earned = s.get("/v1/credits", headers={"Authorization": f"Bearer {miner_client}"}).json()
    assert earned["balance"]["micros"] == 55  # half of what the job cost
    # a prices file with a bad line stops the server before it listens
    with open(prices, "a") as f:
        f.write("broken 1\n")
    other = f"{tmpdir_path}/other"  # a data folder of its own: the first server still holds its own
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", other, "--open", "--prices", prices],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "prices.txt:5" in r.stderr


def test_the_openai_door_shows_the_cost_in_its_usage(tmpdir_path, make_server):
    cli("user", "add", "bob", "--data", tmpdir_path, stdin="bob-password\n")
    bob = cli("key", "create", "--user", "bob", "--data", tmpdir_path)
    wkey = cli("key", "create", "--user", "bob", "--scope", "worker", "--data", tmpdir_path)
    cli("price", "set", "m", "--input", "1", "--output", "2", "--data", tmpdir_path)
    cli("credit", "grant", "bob", "1", "--data", tmpdir_path)
    s = make_server(data_dir=tmpdir_path, secured=True)
    log = open(f"{tmpdir_path}/worker.log", "w")
    w = subprocess.Popen([BIN, "worker", "--coordinator", s.url, "--model", "m", "--api-key", wkey],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "registered as" in open(log.name).read(), what="the worker")
        r = s.post("/v1/chat/completions", {"model": "m", "max_tokens": 50,
                                             "messages": [{"role": "user", "content": "one two three"}]},
                   headers={"Authorization": f"Bearer {bob}"})
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
        expected = usage["prompt_tokens"] * 1 + usage["completion_tokens"] * 2  # micros
        assert usage["total_tokens"] > 0 and abs(usage["cost"] - expected / 1e6) < 1e-12
    finally:
        w.terminate()
        w.wait(timeout=PATIENCE)
        log.close()


def test_two_hundred_simultaneous_submits_against_ten_worst_cases(shop):
    import threading
    body = {"model": "m", "prompt": "same size", "params": {"max_tokens": 100}}
    r = shop.post("/v1/jobs", body, headers=shop.h("carol"))
    needed = r.json()["error"]["details"]["needed"]["micros"]
    amount = f"{needed * 10 // 1000000}.{needed * 10 % 1000000:06d}"
    shop.post("/v1/credits/grant", {"user": "carol", "amount": amount}, headers=shop.h("ann")).raise_for_status()
    codes, start = [], threading.Barrier(40)

    def burst():
        s = requests.Session()
        start.wait()
        for _ in range(5):
            codes.append(s.post(shop.url + "/v1/jobs", json=body, headers=shop.h("carol"), timeout=PATIENCE).status_code)

    threads = [threading.Thread(target=burst) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=PATIENCE * 3)
    assert len(codes) == 200 and codes.count(202) == 10 and codes.count(402) == 190, sorted(set(codes))
    c = credits(shop, "carol")
    assert c["held"]["micros"] == needed * 10 and c["available"]["micros"] == 0
