"""Fair turns between users (issue: one tenant's backlog must not hold up
another's single job), black-box: real users and keys, a real server, a
worker leasing one job at a time. Weights, the running limit and a restart."""
import json
import subprocess

import pytest
import requests

from conftest import BIN, PATIENCE, Server


def cli(*args, stdin=None):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, check=True).stdout.strip()


class Tenants:
    def __init__(self, data, *args):
        self.data = data
        for name in ("ann", "bob", "cy"):
            cli("user", "add", name, "--data", data, stdin=f"{name}-password\n")
        self.keys = {name: cli("key", "create", "--user", name, "--data", data) for name in ("ann", "bob", "cy")}
        self.keys["worker"] = cli("key", "create", "--user", "ann", "--scope", "worker", "--data", data)
        self.args = ["--rate-client", "0", "--rate-worker", "0", *args]
        self.server = Server(data, self.args, secured=True).start()
        self.worker = self.call("worker", "POST", "/v1/workers", {"name": "w", "models": ["m"]}).json()["id"]

    def restart(self):
        assert self.server.stop() == 0
        self.server = Server(self.data, self.args, secured=True).start()

    def call(self, who, method, path, body=None):
        r = requests.request(method, self.server.url + path, json=body, timeout=PATIENCE,
                             headers={"Authorization": "Bearer " + self.keys[who]})
        assert r.status_code < 400, r.text
        return r

    def backlog(self, who, n, priority=0):
        for start in range(0, n, 1000):
            jobs = [{"model": "m", "prompt": f"{who} {i}", "priority": priority} for i in range(start, min(n, start + 1000))]
            self.call(who, "POST", "/v1/jobs/batch", {"jobs": jobs})

    def submit(self, who, priority=0):
        return self.call(who, "POST", "/v1/jobs", {"model": "m", "prompt": who, "priority": priority}).json()["id"]

    def lease(self, n=1):
        return self.call("worker", "POST", f"/v1/workers/{self.worker}/lease", {"max_jobs": n}).json()["jobs"]

    def leases_until(self, job_id, limit):
        """How many leases (one job each) before job_id's: AssertionError past limit."""
        for taken in range(limit + 1):
            jobs = self.lease()
            assert jobs, "nothing to lease"
            if jobs[0]["id"] == job_id:
                return taken
        raise AssertionError(f"{job_id} was not leased within {limit + 1} leases")

    def position(self, who, job_id):
        """The queue position the job's event stream announces first."""
        with requests.get(f"{self.server.url}/v1/jobs/{job_id}/events", stream=True, timeout=PATIENCE,
                          headers={"Authorization": "Bearer " + self.keys[who]}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    return json.loads(line[6:]).get("position")

    def owners(self, jobs):
        return [j["input"]["prompt"].split()[0] for j in jobs]


@pytest.fixture
def tenants(tmpdir_path):
    made = []

    def make(*args):
        made.append(Tenants(tmpdir_path, *args))
        return made[-1]

    yield make
    for t in made:
        assert t.server.stop() == 0


def test_one_job_is_leased_within_k_leases_of_a_ten_thousand_job_backlog_and_after_a_restart(tenants):
    t = tenants()
    t.backlog("ann", 10000)
    t.lease()  # ann's turn
    bobs = t.submit("bob")
    assert t.leases_until(bobs, 2) < 2  # k = 2 users with queued work
    # the turns are rebuilt from the store: a restart keeps the promise
    t.restart()
    cys = t.submit("cy")
    assert t.leases_until(cys, 2) < 2
    # three users with work: each gets a turn in every round of three
    t.backlog("bob", 5)
    t.backlog("cy", 5)
    assert sorted(t.owners(t.lease(3))) == ["ann", "bob", "cy"]
    assert sorted(t.owners(t.lease(6))) == ["ann", "ann", "bob", "bob", "cy", "cy"]


def test_queue_positions_follow_the_turns(tenants):
    t = tenants()
    t.backlog("ann", 1500)
    bobs = t.submit("bob")
    assert t.position("bob", bobs) == 2  # ann's turn, then bob's: not 1,501st
    cys = t.submit("cy")
    assert t.position("cy", cys) == 3
    bobs_second = t.submit("bob")
    assert t.position("bob", bobs_second) == 5  # a turn each for ann and cy before bob's second turn
    anns = t.submit("ann")
    assert t.position("ann", anns) == 1001  # capped at 1,000 ahead (with more_ahead): ann's own 1,500 come first
    # the job itself and the listings say what the events say (now that cy has work too, bob's first
    # is estimated behind a turn of each other user: the estimate does not know where the round stands)
    listed = {j["id"]: j for j in t.call("bob", "GET", "/v1/jobs?status=queued").json()["data"]}
    for job in (bobs, bobs_second):
        now = t.position("bob", job)
        assert t.call("bob", "GET", f"/v1/jobs/{job}").json()["position"] == now == listed[job]["position"]
    assert listed[bobs]["position"] == 3 and listed[bobs_second]["position"] == 5
    mine = t.call("ann", "GET", f"/v1/jobs/{anns}").json()
    assert mine["position"] == 1001 and mine["more_ahead"] is True
    assert [t.lease()[0]["input"]["prompt"].split()[0] for _ in range(3)] == ["ann", "bob", "cy"]
    assert "position" not in t.call("bob", "GET", f"/v1/jobs/{bobs}").json()  # leased: no place in the queue


def test_priority_orders_a_users_own_jobs_and_an_urgent_priority_goes_first(tenants):
    t = tenants("--urgent-priority", "900")
    t.backlog("ann", 3)
    high = t.submit("bob", priority=50)
    low = t.submit("bob", priority=-5)
    urgent = t.submit("cy", priority=900)
    first = t.lease(4)
    assert first[0]["id"] == urgent  # before every turn
    assert t.owners(first[1:]) in (["ann", "bob", "ann"], ["bob", "ann", "bob"])
    bob_jobs = [j["id"] for j in first + t.lease(10) if j["input"]["prompt"] == "bob"]
    assert bob_jobs == [high, low]  # bob's own: by priority


def test_weights_lengthen_a_users_turns(tenants, tmpdir_path):
    t = tenants("--fair-weights", "ann=3")
    t.backlog("ann", 40)
    t.backlog("bob", 40)
    got = t.owners(t.lease(40))
    assert got.count("ann") == 30 and got.count("bob") == 10


def test_a_user_at_the_running_limit_waits_while_others_run(tenants):
    t = tenants("--max-running-per-user", "2")
    t.backlog("ann", 10)
    t.backlog("bob", 1)
    got = t.lease(10)
    assert sorted(t.owners(got)) == ["ann", "ann", "bob"]  # ann's third waits; bob's runs
    assert t.lease(10) == []
    # one of ann's ends: one more of hers may run
    done = t.call("worker", "POST", f"/v1/jobs/{got[0]['id']}/complete",
                  {"lease": got[0]["lease"]["token"], "output": "ok"})
    assert done.json()["status"] == "completed"
    again = t.lease(10)
    assert t.owners(again) == ["ann"]


def test_limits_per_model(tenants):
    t = tenants("--max-running-per-user-model", "1", "--max-queued-per-user-model", "3")
    both = t.call("worker", "POST", "/v1/workers", {"name": "both", "models": ["m", "m2"]}).json()["id"]
    for i in range(3):
        t.call("ann", "POST", "/v1/jobs", {"model": "m", "prompt": f"ann {i}"})
    refused = requests.post(t.server.url + "/v1/jobs", json={"model": "m", "prompt": "ann 3"}, timeout=PATIENCE,
                            headers={"Authorization": "Bearer " + t.keys["ann"]})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "QUEUE_QUOTA_EXCEEDED", refused.text
    t.call("ann", "POST", "/v1/jobs", {"model": "m2", "prompt": "ann other"})  # another model: its own limit
    t.call("bob", "POST", "/v1/jobs", {"model": "m", "prompt": "bob 0"})
    got = t.call("worker", "POST", f"/v1/workers/{both}/lease", {"max_jobs": 10}).json()["jobs"]
    # one of ann's per model at a time; bob's runs beside them
    assert sorted((j["model"], t.owners([j])[0]) for j in got) == [("m", "ann"), ("m", "bob"), ("m2", "ann")]
    assert t.lease(10) == []
    ann_m = next(j for j in got if j["model"] == "m" and t.owners([j]) == ["ann"])
    t.call("worker", "POST", f"/v1/jobs/{ann_m['id']}/complete", {"lease": ann_m["lease"]["token"], "output": "ok"})
    assert [(j["model"], t.owners([j])[0]) for j in t.lease(10)] == [("m", "ann")]  # her next one of m may run


def test_a_waiting_lease_waits_quietly_while_every_ready_job_is_over_its_owners_limit(tenants):
    t = tenants("--max-running-per-user", "1")
    t.backlog("ann", 3)
    assert t.owners(t.lease(5)) == ["ann"]
    commits = lambda: int(next(line.split()[1] for line in requests.get(t.server.url + "/metrics", timeout=PATIENCE)
                               .text.splitlines() if line.startswith("store_commits_total ")))
    before = commits()
    r = t.call("worker", "POST", f"/v1/workers/{t.worker}/lease", {"max_jobs": 1, "wait_s": 1})
    assert r.json()["jobs"] == []  # its wait ran out: ann's jobs are ready, but ann may not run more
    assert commits() - before < 20  # parked, not spinning through the writer


def test_a_weight_for_a_user_who_does_not_exist_stops_the_server(tmpdir_path):
    s = Server(tmpdir_path, ["--fair-weights", "nobody=2"])
    with pytest.raises(AssertionError, match="exited"):
        s.start()
    assert "--fair-weights names nobody, who is no user" in s.read_log()


def test_a_malformed_weight_is_refused_before_the_server_starts(tmpdir_path):
    for bad in ("ann=0", "ann", "=2", "ann=2x", "ann=1001"):
        s = Server(tmpdir_path, ["--fair-weights", bad])
        with pytest.raises(AssertionError, match="exited"):
            s.start()
        assert "--fair-weights wants NAME=W" in s.read_log()
