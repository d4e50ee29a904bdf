"""GET /metrics: Prometheus text that parses, and counters that move with traffic."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import Worker


def scrape(server):
    r = requests.get(server.url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    values = {}
    for f in families.values():
        for s in f.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, values


def value(values, name, **labels):
    return values.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_parse_and_move(server):
    families, before = scrape(server)
    assert families["api_requests"].type == "counter"  # the parser drops the _total suffix
    assert families["api_request_duration_seconds"].type == "histogram"
    for gauge in ("queued_jobs", "active_jobs", "workers_online", "registered_miners", "sse_subscribers"):
        assert families[gauge].type == "gauge", gauge

    Worker(server, models=["m1", "m2"], name="serves-both")  # models get series once a worker serves them
    a = server.submit("one", model="m1")
    server.submit("two", model="m1")
    server.submit("three", model="m2")
    server.get("/v1/does-not-exist")
    _, v = scrape(server)
    assert value(v, "api_requests_total", route="jobs.submit", method="POST", status="202") == 3
    assert value(v, "api_requests_total", route="unmatched", method="any", status="404") >= 1
    assert value(v, "queued_jobs", model="m1") == 2 and value(v, "queued_jobs", model="m2") == 1
    assert value(v, "jobs_submitted_total") == 3
    assert value(v, "api_request_duration_seconds_count", route="jobs.submit") == 3
    assert value(v, "api_request_duration_seconds_bucket", route="jobs.submit", le="+Inf") == 3

    w = Worker(server, models=["m1"])
    job = w.lease_one()
    _, v = scrape(server)
    assert value(v, "active_jobs") == 1 and value(v, "queued_jobs", model="m1") == 1
    assert value(v, "workers_online") == 2 and value(v, "registered_miners") == 2  # with serves-both
    w.complete(job)
    w.fail(w.lease_one(), retryable=False)
    server.post(f"/v1/jobs/{server.submit('four', model='m2')['id']}/cancel")
    _, v = scrape(server)
    assert value(v, "active_jobs") == 0 and value(v, "queued_jobs", model="m1") == 0
    assert value(v, "jobs_finished_total", status="completed") == 1
    assert value(v, "jobs_finished_total", status="failed") == 1
    assert value(v, "jobs_finished_total", status="cancelled") == 1
    assert value(v, "store_commits_total") >= 1
    assert a["id"]


def test_lease_expiries_and_stream_gauge(make_server):
    server = make_server("--lease-timeout", "200ms", "--reap-interval", "20ms", "--retry-backoff", "10ms")
    ack = server.submit("x")
    w = Worker(server)
    w.lease_one()
    w.lease_one(wait_s=10)  # redelivered after the first lease lapsed
    stream = requests.get(f"{server.url}/v1/jobs/{ack['id']}/events", stream=True, timeout=30)
    _, v = scrape(server)
    assert value(v, "lease_expiries_total") == 1
    assert value(v, "sse_subscribers") == 1
    stream.close()


def test_gauges_survive_a_restart(tmpdir_path):
    from conftest import Server
    server = Server(tmpdir_path).start()
    Worker(server, models=["m9"])  # online still when the server is back, within --worker-timeout
    server.submit("kept", model="m9")
    assert server.stop() == 0
    again = Server(tmpdir_path).start()
    try:
        _, v = scrape(again)
        assert value(v, "queued_jobs", model="m9") == 1  # rebuilt from the store
    finally:
        assert again.stop() == 0


def test_clients_cannot_write_into_metrics(server):
    """A model name is a client's text: it is escaped where it is shown, and a
    model no worker serves gets no series of its own (no minted series, no
    other tenant's model names)."""
    # control characters (a newline to start a line of its own) are refused at the door
    assert server.post("/v1/jobs", {"model": 'x"} 1\nadmin_pwned_total{a="b', "prompt": "x"}).status_code == 400
    forged = 'x"} 1 \\ admin_pwned_total{a="b'
    server.submit("one", model=forged)
    for i in range(50):
        server.submit("spam", model=f"made-up-{i}")
    r = requests.get(server.url + "/metrics", timeout=30)
    assert "admin_pwned_total" not in [f.name for f in text_string_to_metric_families(r.text)]
    assert "made-up-" not in r.text and forged not in r.text
    _, v = scrape(server)
    assert value(v, "queued_jobs", model="(other)") == 51
    # a served model with a hostile name has its series, escaped, and parses back exactly
    Worker(server, models=[forged])
    _, v = scrape(server)
    assert value(v, "queued_jobs", model=forged) == 1
    assert value(v, "queued_jobs", model="(other)") == 50
    assert value(v, "served_models") == 1

