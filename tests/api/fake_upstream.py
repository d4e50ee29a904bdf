"""A scripted OpenAI-compatible model server for the openai backend's tests.

Run as its own process: `fake_upstream.py` binds 127.0.0.1 on a free port and
prints `listening on PORT`. The model name picks the behaviour:
  normal      streams "Hello", " from", " upstream", then usage and [DONE]
  nousage     the same without a usage chunk
  slow        40 tokens, 50 ms apart (for cancellation)
  disconnect  two tokens, then the connection drops mid-stream
  malformed   a chunk that is not JSON
  ratelimit   429      broken  500      reject  400
  smart       what tool-calling and structured-output code expects: with tools (and no tool answer
              yet) it calls the first tool (get_weather: {"city": "Paris"}; others: arguments
              made from their schema) in streamed fragments, finish_reason tool_calls; after a
              tool message it answers with that message's content; with response_format
              json_schema / json_object it answers JSON made from the schema; with max_tokens
              under 3 it stops at "cut" with finish_reason length; logprobs come when asked
              (top_logprobs alternatives); n > 1 gives "answer K" per choice
/completions (the legacy API) streams the same words as text chunks, logprobs in their legacy
shape. /embeddings answers two numbers per input (`dimensions` of them when given).
GET /_requests lists what it was sent.
"""
import json
import threading
import time

import scripted

REQUESTS = []
LOCK = threading.Lock()


class Handler(scripted.Handler):
    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                self.send_json(200, REQUESTS)
        else:
            self.send_json(404, {"error": {"message": "no such path"}})

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj):
        self.chunk("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n")

    def delta(self, model, content=None, finish=None):
        delta = {"content": content} if content is not None else {}
        return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def smart(self, body):
        events, tokens = smart_stream(self, body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        kind = "chat.completion.chunk" if self.path.endswith("/chat/completions") else "text_completion"
        for choice in events:
            self.event({"id": "x", "object": kind, "created": 1, "model": body.get("model"), "choices": [choice]})
        self.event({"id": "x", "object": kind, "choices": [],
                    "usage": {"prompt_tokens": 4, "completion_tokens": tokens, "total_tokens": 4 + tokens}})
        self.event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        record = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body,
                  "aborted": False}
        with LOCK:
            REQUESTS.append(record)
        model = body.get("model", "")
        if self.path.endswith("/embeddings"):
            texts = body["input"]
            if not isinstance(texts, list) or (texts and isinstance(texts[0], int)):
                texts = [texts]
            dims = body.get("dimensions", 2)
            return self.send_json(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 7, "total_tokens": 7},
                                        "data": [{"object": "embedding", "index": i,
                                                  "embedding": ([0.5, -0.25] * dims)[:dims]}
                                                 for i, _ in enumerate(texts)]})
        if model == "smart" or self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
            return self.smart(body)
        errors = {"ratelimit": (429, "slow down"), "broken": (500, "the GPU caught fire"),
                  "reject": (400, "max_tokens is too large"),
                  "toolong": (400, "This model's maximum context length is 8 tokens", "context_length_exceeded")}
        if model in errors:
            status, message, *code = errors[model]
            return self.send_json(status, {"error": {"message": message, "type": "x", **({"code": code[0]} if code else {})}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if model == "malformed":
                self.event(self.delta(model, "ok"))
                self.event("{this is not json")
            elif model == "disconnect":
                self.event(self.delta(model, "half"))
                self.event(self.delta(model, " an"))
                self.wfile.write(b"40\r\ndata: {\"trunc")  # a chunk cut short
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            else:
                words = [f"t{i} " for i in range(40)] if model == "slow" else ["Hello", " from", " upstream"]
                for w in words:
                    self.event(self.delta(model, w))
                    if model == "slow":
                        time.sleep(0.05)
                self.event(self.delta(model, None, "stop"))
                if model != "nousage" and body.get("stream_options", {}).get("include_usage"):
                    self.event({"id": "chatcmpl-x", "object": "chat.completion.chunk", "choices": [],
                                "usage": {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}})
                self.event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            record["aborted"] = True  # the worker hung up: a cancel reached upstream


def sample(schema):
    """A value of a JSON schema's type (objects with every property)."""
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        return {k: sample(v) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        return [sample(schema.get("items", {}))]
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "Paris", "number": 21.5, "integer": 3, "boolean": True}.get(t, None)


def smart_choices(body):
    """[(content pieces, tool calls, finish_reason)] per choice, for `smart`."""
    messages = body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}]
    last = messages[-1]
    n = body.get("n", 1)
    if body.get("tools") and last.get("role") != "tool":
        tool = body["tools"][0]["function"]
        args = {"city": "Paris"} if tool["name"] == "get_weather" else sample(tool.get("parameters", {}))
        text = json.dumps(args)
        return [([], [("call_1", tool["name"], [text[:5], text[5:]])], "tool_calls")] * n
    if last.get("role") == "tool":
        return [(["The tool said: ", last["content"]], [], "stop")] * n
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        text = json.dumps(sample(fmt["json_schema"].get("schema", {})))
        return [([text[:4], text[4:]], [], "stop")] * n
    if fmt.get("type") == "json_object":
        return [(['{"ok": ', 'true}'], [], "stop")] * n
    if body.get("max_tokens", 100) < 3:
        return [(["cut"], [], "length")] * n
    if n > 1:
        return [([f"answer {k}"], [], "stop") for k in range(n)]
    return [(["Hello", " from", " upstream"], [], "stop")]


def logprobs_of(piece, top):
    return {"token": piece, "logprob": -0.5, "bytes": list(piece.encode()),
            "top_logprobs": [{"token": piece, "logprob": -0.5, "bytes": list(piece.encode())}][:top]}


def smart_stream(handler, body):
    legacy = not handler.path.endswith("/chat/completions")
    want_logprobs = bool(body.get("logprobs"))
    top = body.get("logprobs") if legacy else body.get("top_logprobs", 0)
    events, tokens = [], 0
    for index, (pieces, calls, finish) in enumerate(smart_choices(body)):
        for piece in pieces:
            tokens += 1
            if legacy:
                lp = ({"tokens": [piece], "token_logprobs": [-0.5], "top_logprobs": [{piece: -0.5}] if top else [None],
                       "text_offset": [0]} if want_logprobs else None)
                events.append({"index": index, "text": piece, "logprobs": lp, "finish_reason": None})
            else:
                lp = {"content": [logprobs_of(piece, top)]} if want_logprobs else None
                events.append({"index": index, "delta": {"content": piece}, "logprobs": lp, "finish_reason": None})
        for k, (call_id, name, fragments) in enumerate(calls):
            for j, fragment in enumerate(fragments):
                tc = {"index": k, "function": {"arguments": fragment}}
                if j == 0:
                    tc.update({"id": call_id, "type": "function"})
                    tc["function"]["name"] = name
                events.append({"index": index, "delta": {"tool_calls": [tc]}, "finish_reason": None})
        end = {"index": index, "finish_reason": finish}
        end.update({"text": ""} if legacy else {"delta": {}})
        events.append(end)
    return events, tokens


if __name__ == "__main__":
    scripted.serve(Handler)
