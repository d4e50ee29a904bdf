"""A scripted Esplora (the Blockstream/mempool.space HTTP API) for the
exchange's tests: GET /blocks/tip/height and GET /address/<a>/txs answer from
a script the test changes with POST /_tip {"height"}, POST /_tx {"txid",
"outputs": [{"address", "value"}], "block_height": null or n} (a repeat of a
txid replaces it: it got mined) and POST /_fail {"on"} (every read fails with
500). GET /_reads counts the reads. Run as its own process; prints
`listening on PORT`."""
import json
import threading

import scripted

STATE = {"tip": 100, "txs": {}, "fail": False, "reads": 0}
LOCK = threading.Lock()


class Handler(scripted.Handler):
    send = scripted.Handler.send_json

    def do_GET(self):
        with LOCK:
            if self.path == "/_reads":
                return self.send(200, {"reads": STATE["reads"]})
            STATE["reads"] += 1
            if STATE["fail"]:
                return self.send(500, "upstream is down", "text/plain")
            if self.path == "/blocks/tip/height":
                return self.send(200, str(STATE["tip"]), "text/plain")
            if self.path.startswith("/address/") and self.path.endswith("/txs"):
                address = self.path.split("/")[2]
                out = []
                for tx in reversed(list(STATE["txs"].values())):  # newest first, as Esplora lists them
                    if any(o["address"] == address for o in tx["outputs"]):
                        height = tx.get("block_height")
                        out.append({"txid": tx["txid"],
                                    "status": {"confirmed": height is not None, "block_height": height},
                                    "vout": [{"scriptpubkey_address": o["address"], "value": o["value"]}
                                             for o in tx["outputs"]]})
                return self.send(200, out)
            return self.send(404, "not found", "text/plain")

    def do_POST(self):
        body = json.loads(self.read_body() or b"{}")
        with LOCK:
            if self.path == "/_tip":
                STATE["tip"] = body["height"]
            elif self.path == "/_tx":
                STATE["txs"][body["txid"]] = body
            elif self.path == "/_fail":
                STATE["fail"] = body["on"]
            else:
                return self.send(404, "not found", "text/plain")
        return self.send(200, {"ok": True})


if __name__ == "__main__":
    scripted.serve(Handler)
