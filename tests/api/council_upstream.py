"""A scripted OpenAI-compatible model server for the council's tests.

Run as its own process with a script file: `council_upstream.py SCRIPT.json`.
It binds 127.0.0.1 on a free port and prints `listening on PORT`. The script
maps a model name to what it does, read afresh on every request (a test may
rewrite it between steps):
  {"answers": ["round 1 text", "round 2 text"]}  the Nth chat request to the
      model gets answers[N] (the last one once they run out), streamed word by word
  {"status": 400}   every request fails with that HTTP status
  {"hold": true}    the request waits until the script says otherwise (then answers)
Embedding models answer each text with its letter counts (26 numbers), so
similar texts are similar vectors. GET /_requests lists what was asked.
"""
import json
import sys
import threading
import time

import scripted

SCRIPT = sys.argv[1]
REQUESTS = []
COUNTS = {}
LOCK = threading.Lock()


def script():
    with open(SCRIPT) as f:
        return json.load(f)


def letters(text):
    v = [0.0] * 26
    for ch in text.lower():
        if "a" <= ch <= "z":
            v[ord(ch) - 97] += 1
    return v


class Handler(scripted.Handler):
    def do_GET(self):
        with LOCK:
            self.send_json(200, REQUESTS)

    def event(self, obj):
        data = ("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        model = body.get("model", "")
        with LOCK:
            REQUESTS.append({"path": self.path, "body": body})
            n = COUNTS.get(model, 0)
            COUNTS[model] = n + 1
        if self.path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return self.send_json(200, {"object": "list", "model": model,
                                        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
                                        "data": [{"object": "embedding", "index": i, "embedding": letters(t)}
                                                 for i, t in enumerate(texts)]})
        plan = script().get(model, {})
        while plan.get("hold"):
            time.sleep(0.02)  # the scripted model is thinking: the test decides when it is done
            plan = script().get(model, {})
        if "status" in plan:
            return self.send_json(plan["status"], {"error": {"message": f"{model} is scripted to fail", "type": "x"}})
        answers = plan.get("answers") or ["(no answer scripted)"]
        text = answers[min(n, len(answers) - 1)]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        words = text.split(" ")
        for i, w in enumerate(words):
            self.event({"id": "c", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w}, "finish_reason": None}]})
        self.event({"id": "c", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.event({"id": "c", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}})
        self.event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


if __name__ == "__main__":
    scripted.serve(Handler)
