"""The real worker agent and the CLI, as a person would use them."""
import json
import os
import re
import signal
import subprocess

from conftest import BIN, PATIENCE, wait_until


def run(*args, timeout=PATIENCE + 30):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def start_worker(server, *extra):
    log = open(os.path.join(server.data_dir, "worker.log"), "w")
    proc = subprocess.Popen([BIN, "worker", "--coordinator", server.url, "--backend", "echo",
                             "--model", "echo", *extra], stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def stop_worker(proc, log):
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=PATIENCE)
    log.close()
    return rc


def test_submit_wait_through_a_real_worker(server):
    proc, log = start_worker(server, "--concurrency", "2")
    try:
        r = run("submit", "--coordinator", server.url, "--model", "echo", "--wait",
                "Hello from the CLI")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "Hello from the CLI"
        r = run("submit", "--coordinator", server.url, "--json", "--wait", "count these words")
        job = json.loads(r.stdout)
        assert job["status"] == "completed"
        assert job["usage"]["prompt_tokens"] == 3 and job["usage"]["completion_tokens"] == 3
    finally:
        assert stop_worker(proc, log) == 0


def test_worker_stops_cleanly_while_long_polling(server):
    proc, log = start_worker(server, "--lease-wait", "50s")
    wait_until(lambda: server.get("/v1/jobs").status_code == 200 and
               "registered as" in open(os.path.join(server.data_dir, "worker.log")).read(),
               what="the worker to register")
    assert stop_worker(proc, log) == 0
    assert "worker: stopped" in open(os.path.join(server.data_dir, "worker.log")).read()


def test_cancel_reaches_a_running_worker(make_server):
    server = make_server("--worker-timeout", "1s")  # heartbeats every ~333 ms
    proc, log = start_worker(server, "--echo-delay", "200ms")
    try:
        words = " ".join(f"w{i}" for i in range(200))  # 40 s at 200 ms a token
        ack = server.submit(words)
        wait_until(lambda: server.job(ack["id"])["status"] == "leased", what="the job to start")
        assert run("jobs", "cancel", "--coordinator", server.url, ack["id"]).returncode == 0
        job = wait_until(lambda: (j := server.job(ack["id"]))["status"] == "cancelled" and j,
                         what="the cancel to reach the worker")
        assert len(job["output"]) < len(words)  # stopped part way, kept what it had
    finally:
        assert stop_worker(proc, log) == 0


def test_jobs_ls_show_and_errors(server):
    ack = server.submit("listed")
    r = run("jobs", "ls", "--coordinator", server.url)
    assert r.returncode == 0 and ack["id"] in r.stdout and "(1 of 1)" in r.stdout
    r = run("jobs", "show", "--coordinator", server.url, ack["id"])
    assert json.loads(r.stdout)["id"] == ack["id"]
    r = run("jobs", "show", "--coordinator", server.url, "01a20000-0000-7000-8000-000000000000")
    assert r.returncode == 1 and "404 NOT_FOUND" in r.stderr
    r = run("submit", "--coordinator", "http://127.0.0.1:1", "x")
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_help_documents_every_flag_and_variable():
    r = run("serve", "--help")
    assert r.returncode == 0
    for flag, env in [("--listen", "PROMPTQ_LISTEN"), ("--data", "PROMPTQ_DATA"),
                      ("--lease-timeout", "PROMPTQ_LEASE_TIMEOUT"),
                      ("--max-attempts", "PROMPTQ_MAX_ATTEMPTS"), ("--config", "PROMPTQ_CONFIG")]:
        assert flag in r.stdout and env in r.stdout
    assert run("serve", "--bogus").returncode == 2


def test_environment_and_config_file(tmpdir_path):
    data = os.path.join(tmpdir_path, "d")
    config = os.path.join(tmpdir_path, "promptq.conf")
    with open(config, "w") as f:
        f.write(f"listen = 127.0.0.1:0\ndata = {data}\nmax-body = 2k\nopen = true\n")
    env = dict(os.environ, PROMPTQ_CONFIG=config, PROMPTQ_LOG_LEVEL="info")
    log_path = os.path.join(tmpdir_path, "serve.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        import re
        port = wait_until(lambda: (m := re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                                                  open(log_path).read())) and m.group(1),
                          what="the server to listen")
        import requests
        r = requests.post(f"http://127.0.0.1:{port}/v1/jobs",
                          json={"model": "echo", "prompt": "x" * 3000}, timeout=30)
        assert r.status_code == 413  # max-body from the config file
        assert os.path.exists(os.path.join(data, "promptq.db"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0


def test_migrate_command(tmpdir_path):
    r = run("migrate", "--data", tmpdir_path)
    assert r.returncode == 0, r.stderr
    applied = re.search(r"schema version (\d+) \((\d+) migrations? applied\)", r.stdout)
    assert applied and applied.group(1) == applied.group(2) and int(applied.group(1)) >= 2
    r = run("migrate", "--data", tmpdir_path)
    assert "(0 migrations applied)" in r.stdout


def test_prefetched_jobs_wait_in_the_worker_claimed(make_server):
    server = make_server("--worker-timeout", "1s")  # heartbeats every ~333 ms: leases not claimed go back
    ids = [server.submit(f"prefetched job number {i}")["id"] for i in range(5)]  # queued before the worker
    proc, log = start_worker(server, "--concurrency", "1", "--prefetch", "3", "--echo-delay", "200ms")
    try:
        # the first lease waits and takes one; the next finds a backlog and takes 1 + 3 without waiting
        wait_until(lambda: server.job(ids[4])["status"] == "leased", what="the jobs leased ahead")
        # stopped while three wait in the worker: it runs what it holds (about a second each),
        # heartbeating meanwhile, and leases no more
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=PATIENCE) == 0
        log.close()
        jobs = [server.job(i) for i in ids]
        assert [j["status"] for j in jobs] == ["completed"] * 5
        assert len({j["leased_at"] for j in jobs[1:]}) == 1, [j["leased_at"] for j in jobs]  # one lease call
        assert [j["attempts"] for j in jobs] == [1] * 5  # claimed while waiting: never given back
        assert [j["output"] for j in jobs] == [f"prefetched job number {i}" for i in range(5)]
    finally:
        if proc.poll() is None:
            stop_worker(proc, log)
