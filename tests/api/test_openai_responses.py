"""OpenAI's Responses API: plain, streamed with its typed events, background (then retrieved and
cancelled), chained by previous_response_id (the owner's only), tools, store, delete and input items,
and a background response that outlives a restart of the coordinator. Real `promptq worker`s: the echo
backend and the openai backend in front of the scripted upstream (fake_upstream.py, model `smart`)."""
import json
import os
import signal
import subprocess

import pytest
import requests

from conftest import BIN, PATIENCE, Server, wait_until
from test_identity import Tenants
from test_openai_backend import upstream, upstream_requests  # noqa: F401 (a fixture)

WEATHER = [{"type": "function", "name": "get_weather", "description": "the weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


class Workers:
    def __init__(self, tmpdir):
        self.tmpdir, self.procs = tmpdir, []

    def start(self, server, models, *extra, key=None):
        log = os.path.join(self.tmpdir, f"worker{len(self.procs)}.log")
        args = [BIN, "worker", "--coordinator", server.url, "--model", models, "--lease-wait", "2s", *extra]
        env = dict(os.environ, PROMPTQ_API_KEY=key) if key else None  # not on the command line
        proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        wait_until(lambda: "registered as" in open(log).read(), what="the worker to register")
        return proc

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=PATIENCE) == 0


@pytest.fixture
def workers(tmpdir_path):
    w = Workers(tmpdir_path)
    yield w
    w.stop_all()




def smart(workers, server, upstream, key=None):
    workers.start(server, "smart", "--backend", "openai", "--base-url", upstream + "/v1", key=key)


def post(server, body, headers=None, **kw):
    return requests.post(server.url + "/v1/responses", json=body, headers=headers or {}, timeout=60, **kw)


def get(server, path, headers=None):
    return requests.get(server.url + path, headers=headers or {}, timeout=60)


def openai_error(r, status, code=None, param=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


def text_of(response):
    return "".join(part["text"] for item in response["output"] if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


def test_a_plain_response_then_retrieve_and_input_items(server, workers):
    workers.start(server, "e")
    r = post(server, {"model": "e", "input": "hello from the responses api", "instructions": "be terse",
                      "metadata": {"ticket": "7"}, "max_output_tokens": 50})
    assert r.status_code == 200, r.text
    resp = r.json()
    assert resp["object"] == "response" and resp["id"].startswith("resp_")
    assert resp["status"] == "completed" and resp["model"] == "e"
    assert text_of(resp) == "hello from the responses api"
    assert resp["instructions"] == "be terse" and resp["metadata"] == {"ticket": "7"}
    assert resp["usage"]["output_tokens"] == 5 and resp["usage"]["total_tokens"] == resp["usage"]["input_tokens"] + 5
    assert resp["error"] is None and resp["store"] is True and resp["max_output_tokens"] == 50
    again = get(server, f"/v1/responses/{resp['id']}").json()
    assert again["output"] == resp["output"] and again["status"] == "completed"
    items = get(server, f"/v1/responses/{resp['id']}/input_items").json()
    assert items["object"] == "list" and len(items["data"]) == 1
    assert items["data"][0]["content"][0]["text"] == "hello from the responses api"
    assert items["first_id"] == items["data"][0]["id"] and items["has_more"] is False
    # it ran through the queue: the native door sees the same job
    job = get(server, f"/v1/jobs/{resp['id'][len('resp_'):]}").json()
    assert job["kind"] == "response" and job["status"] == "completed"


def test_a_streamed_response_sends_typed_events(server, workers):
    workers.start(server, "e", "--echo-delay", "5ms")
    r = post(server, {"model": "e", "input": [{"role": "user", "content": [{"type": "input_text", "text": "one two three"}]}],
                      "stream": True}, stream=True)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events, name = [], None
    for line in r.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
            assert data["type"] == name
            events.append(data)
    types = [e["type"] for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "one two three" and len(deltas) >= 1
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "in_progress" or events[0]["response"]["status"] == "queued"
    assert text_of(events[-1]["response"]) == "one two three"


def test_background_responses_are_answered_at_once_and_can_be_cancelled(server, workers):
    r = post(server, {"model": "e", "input": "later please", "background": True})
    openai_error(r, 404, "model_not_found")  # no worker serves it: refused, not queued forever
    workers.start(server, "e", "--echo-delay", "300ms")
    r = post(server, {"model": "e", "input": "slowly one two three four five six", "background": True})
    resp = r.json()
    assert r.status_code == 200 and resp["status"] in ("queued", "in_progress") and resp["background"] is True
    assert resp["output"] == []
    c = requests.post(f"{server.url}/v1/responses/{resp['id']}/cancel", timeout=30)
    assert c.status_code == 200, c.text
    wait_until(lambda: get(server, f"/v1/responses/{resp['id']}").json()["status"] == "cancelled",
               what="the response to be cancelled")
    r = post(server, {"model": "e", "input": "quick", "background": True})
    rid = r.json()["id"]
    wait_until(lambda: get(server, f"/v1/responses/{rid}").json()["status"] == "completed", what="it to complete")
    assert text_of(get(server, f"/v1/responses/{rid}").json()) == "quick"
    # only a background response can be cancelled
    done = post(server, {"model": "e", "input": "x"}).json()
    openai_error(requests.post(f"{server.url}/v1/responses/{done['id']}/cancel", timeout=30), 400)


def test_previous_response_id_carries_the_conversation_but_not_its_instructions(tmpdir_path, make_server, workers,
                                                                                upstream):
    t = Tenants(tmpdir_path)
    server = make_server(data_dir=tmpdir_path, secured=True)
    smart(workers, server, upstream, key=t.keys["worker"])
    first = post(server, {"model": "smart", "input": "My name is Ada.", "instructions": "first rules"}, t.h("bob")).json()
    assert first["status"] == "completed", first
    second = post(server, {"model": "smart", "input": "What is my name?", "instructions": "second rules",
                           "previous_response_id": first["id"]}, t.h("bob")).json()
    assert second["previous_response_id"] == first["id"] and second["status"] == "completed"
    sent = upstream_requests(upstream)[-1]["body"]["messages"]
    assert sent == [{"role": "system", "content": "second rules"}, {"role": "user", "content": "My name is Ada."},
                    {"role": "assistant", "content": "Hello from upstream"},
                    {"role": "user", "content": "What is my name?"}]
    # the conversation is its owner's only
    err = openai_error(post(server, {"model": "smart", "input": "x", "previous_response_id": first["id"]}, t.h("carol")),
                       404, "not_found", "previous_response_id")
    assert first["id"] in err["message"]
    openai_error(get(server, f"/v1/responses/{first['id']}", t.h("carol")), 404, "not_found")
    # a response that is not stored cannot be continued or read back
    unstored = post(server, {"model": "smart", "input": "x", "store": False}, t.h("bob")).json()
    assert unstored["store"] is False
    openai_error(get(server, f"/v1/responses/{unstored['id']}", t.h("bob")), 404)
    openai_error(post(server, {"model": "smart", "input": "x", "background": True, "store": False}, t.h("bob")), 400,
                 param="background")


def test_function_calls_and_their_outputs(server, workers, upstream):
    smart(workers, server, upstream)
    first = post(server, {"model": "smart", "input": "weather in Paris?", "tools": WEATHER, "tool_choice": "auto"}).json()
    assert first["status"] == "completed", first
    calls = [i for i in first["output"] if i["type"] == "function_call"]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather" and calls[0]["call_id"] == "call_1"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert first["tools"] == WEATHER
    sent = upstream_requests(upstream)[-1]["body"]
    assert sent["tools"][0] == {"type": "function", "function": {k: WEATHER[0][k] for k in ("name", "description",
                                                                                             "parameters")}}
    second = post(server, {"model": "smart", "previous_response_id": first["id"], "tools": WEATHER,
                           "input": [{"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]}).json()
    assert text_of(second) == "The tool said: sunny"
    sent = upstream_requests(upstream)[-1]["body"]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_1" and sent[-1] == {"role": "tool", "tool_call_id": "call_1",
                                                                      "content": "sunny"}
    # structured output through text.format
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    r = post(server, {"model": "smart", "input": "json", "text": {"format": {"type": "json_schema", "name": "w",
                                                                            "schema": schema, "strict": True}}}).json()
    assert json.loads(text_of(r)) == {"city": "Paris"}
    # max_output_tokens cut short: incomplete, as OpenAI says it
    r = post(server, {"model": "smart", "input": "x", "max_output_tokens": 2}).json()
    assert r["status"] == "incomplete" and r["incomplete_details"] == {"reason": "max_output_tokens"}
    openai_error(post(server, {"model": "smart", "input": "x", "tools": [{"type": "web_search"}]}), 400,
                 "unsupported_parameter", "tools")


def test_delete_and_errors(server, workers):
    workers.start(server, "e")
    resp = post(server, {"model": "e", "input": "forget me"}).json()
    d = requests.delete(f"{server.url}/v1/responses/{resp['id']}", timeout=30)
    assert d.status_code == 200 and d.json() == {"id": resp["id"], "object": "response.deleted", "deleted": True}
    openai_error(get(server, f"/v1/responses/{resp['id']}"), 404, "not_found")
    assert get(server, f"/v1/jobs/{resp['id'][5:]}").status_code == 404  # gone from the store, not hidden
    openai_error(requests.delete(f"{server.url}/v1/responses/{resp['id']}", timeout=30), 404)
    openai_error(get(server, "/v1/responses/resp_nope"), 404, "not_found")
    openai_error(get(server, "/v1/responses/nope/input_items"), 404, "not_found")
    openai_error(post(server, {"model": "e"}), 400, "invalid_request", "input")
    openai_error(post(server, {"model": "e", "input": [{"role": "robot", "content": "x"}]}), 400, "invalid_request")
    openai_error(post(server, {"model": "e", "input": "x", "reasoning": {"effort": "high"}}), 400, "unknown_parameter",
                 "reasoning")
    openai_error(requests.put(f"{server.url}/v1/responses/x", timeout=30), 405)
    # items the client named itself keep their names; other ids are replaced, and paging by them holds
    named = post(server, {"model": "e", "input": [{"type": "message", "role": "user", "content": "a", "id": "mine"},
                                                  {"type": "message", "role": "user", "content": "b", "id": 5}]}).json()
    listed = get(server, f"/v1/responses/{named['id']}/input_items?order=asc").json()["data"]
    assert listed[0]["id"] == "mine" and isinstance(listed[1]["id"], str)
    after = get(server, f"/v1/responses/{named['id']}/input_items?order=asc&after=mine").json()
    assert [i["content"] for i in after["data"]] == ["b"]
    assert get(server, f"/v1/responses/{named['id']}/input_items?after=nothing-like-it").json()["data"] == []


def test_a_background_response_outlives_a_restart(tmpdir_path, workers):
    # a lease held by a worker that went away returns to the queue within a second
    server = Server(tmpdir_path, ["--lease-timeout", "1s"]).start()
    proc = workers.start(server, "e")
    proc.send_signal(signal.SIGTERM)  # the model stays known while its worker is away
    assert proc.wait(timeout=PATIENCE) == 0
    r = post(server, {"model": "e", "input": "still here after a restart", "background": True})
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    server.kill9()
    restarted = Server(tmpdir_path, ["--lease-timeout", "1s"]).start()
    try:
        assert get(restarted, f"/v1/responses/{rid}").json()["status"] in ("queued", "in_progress")
        workers.start(restarted, "e")
        wait_until(lambda: get(restarted, f"/v1/responses/{rid}").json()["status"] == "completed",
                   what="the response to complete after the restart")
        assert text_of(get(restarted, f"/v1/responses/{rid}").json()) == "still here after a restart"
    finally:
        workers.stop_all()
        assert restarted.stop() == 0
