"""A scripted OpenAI-compatible model server for the openai backend's tests.

Run as its own process: `fake_upstream.py` binds 127.0.0.1 on a free port and
prints `listening on PORT`. The model name picks the behaviour:
  normal      streams "Hello", " from", " upstream", then usage and [DONE]
  nousage     the same without a usage chunk
  slow        40 tokens, 50 ms apart (for cancellation)
  disconnect  two tokens, then the connection drops mid-stream
  malformed   a chunk that is not JSON
  ratelimit   429      broken  500      reject  400
/embeddings answers two numbers per input. GET /_requests lists what it was sent.
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

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        record = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body,
                  "aborted": False}
        with LOCK:
            REQUESTS.append(record)
        model = body.get("model", "")
        if self.path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return self.send_json(200, {"object": "list", "model": model, "usage": {"prompt_tokens": 7, "total_tokens": 7},
                                        "data": [{"object": "embedding", "index": i, "embedding": [0.5, -0.25]}
                                                 for i, _ in enumerate(texts)]})
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


if __name__ == "__main__":
    scripted.serve(Handler)
