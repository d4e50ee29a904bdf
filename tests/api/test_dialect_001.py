"""Seed 001, the task API without money, exactly as its document shows it."""
import os
import signal
import subprocess

import requests

from conftest import BIN, PATIENCE, wait_until


def start_worker(server, models):
    log = open(os.path.join(server.data_dir, "worker.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--model", models],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: "registered as" in open(log.name).read(), what="the worker")
    return proc, log


def test_health_in_its_shape(server):
    body = requests.get(server.url + "/health", timeout=30).json()
    assert body["status"] == "healthy" and body["timestamp"]


def test_the_documented_python_example(server):
    proc, log = start_worker(server, "openai,mistral")
    try:
        # the document's example, as written
        response = requests.post(server.url + '/api/task', json={
            'prompt': 'Explain quantum computing',
            'provider': 'openai',
            'user_id': 'user@example.com'
        }, timeout=PATIENCE)
        assert response.status_code == 200
        result = response.json()
        assert set(result) == {"task_id", "response", "tokens_used", "cost", "provider"}
        assert result["response"] == "Explain quantum computing" and result["provider"] == "openai"
        assert result["tokens_used"] == 6 and isinstance(result["cost"], float)

        task = requests.get(f"{server.url}/api/task/{result['task_id']}", timeout=30).json()
        assert task["id"] == result["task_id"] and task["status"] == "completed"
        assert task["input"] == "Explain quantum computing" and task["output"] == result["response"]
        assert set(task) >= {"provider", "tokens_used", "cost", "created_at", "completed_at"}

        requests.post(server.url + "/api/task", json={"prompt": "second", "provider": "mistral"}, timeout=PATIENCE)
        listing = requests.get(server.url + "/api/tasks?status=completed&limit=10", timeout=30).json()
        assert [t["provider"] for t in listing["tasks"]] == ["mistral", "openai"]
        assert set(listing["tasks"][0]) == {"id", "status", "provider", "created_at"}

        stats = requests.get(server.url + "/api/stats", timeout=30).json()
        assert stats["tasks"]["total"] == 2 and stats["tasks"]["completed"] == 2
        assert stats["tasks"]["total_tokens"] == 6 + 2
        assert set(stats["users"]) == {"total", "subscriptions"}
        assert set(stats["financials"]) == {"total_income", "total_expenses", "profit"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()


def test_documented_errors(server):
    r = requests.post(server.url + "/api/task", json={"provider": "openai"}, timeout=30)
    assert r.status_code == 400 and set(r.json()) == {"error"}
    r = requests.post(server.url + "/api/task", json={"prompt": "x", "provider": "nobody-serves-this"}, timeout=30)
    assert r.status_code == 400 and "provider" in r.json()["error"]
    r = requests.get(server.url + "/api/task/424242", timeout=30)
    assert r.status_code == 404 and r.json() == {"error": "Task not found"}
    r = requests.get(server.url + "/api/tasks?status=weird", timeout=30)
    assert r.status_code == 400 and "error" in r.json()


def test_a_failed_task_is_a_500(server):
    import threading
    from conftest import Worker
    w = Worker(server, models=["flaky"])
    box = {}
    t = threading.Thread(target=lambda: box.update(r=requests.post(
        server.url + "/api/task", json={"prompt": "x", "provider": "flaky"}, timeout=PATIENCE)))
    t.start()
    w.fail(w.lease_one(wait_s=10), code="GPU_ON_FIRE", message="the model crashed", retryable=False)
    t.join(PATIENCE)
    assert box["r"].status_code == 500
    assert set(box["r"].json()) == {"error"} and "the model crashed" in box["r"].json()["error"]
