"""A scripted Stripe API for the payment tests: POST /v1/checkout/sessions
answers like Stripe (a session with a url), or a card error when the
customer's email or the product's name contains "decline". It records every
request (form fields, Authorization, Idempotency-Key) for GET /_requests, and
answers a repeated Idempotency-Key with the session it made the first time,
as Stripe does. Run as its own process; prints `listening on PORT`."""
import threading
from urllib.parse import parse_qsl

import scripted

REQUESTS, SESSIONS = [], {}
LOCK = threading.Lock()


class Handler(scripted.Handler):
    def do_GET(self):
        with LOCK:
            self.send_json(200, REQUESTS)

    def do_POST(self):
        raw = self.read_body().decode()
        form = dict(parse_qsl(raw, keep_blank_values=True))
        key = self.headers.get("Idempotency-Key")
        with LOCK:
            REQUESTS.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization"),
                             "idempotency_key": key, "content_type": self.headers.get("Content-Type")})
            if self.path != "/v1/checkout/sessions":
                return self.send_json(404, {"error": {"message": "Unrecognized request URL", "type": "invalid_request_error"}})
            if not (self.headers.get("Authorization") or "").startswith("Bearer sk_"):
                return self.send_json(401, {"error": {"message": "Invalid API Key provided", "type": "invalid_request_error"}})
            if "decline" in form.get("customer_email", "") + form.get("line_items[0][price_data][product_data][name]", ""):
                return self.send_json(402, {"error": {"message": "Your card was declined.", "type": "card_error"}})
            if key in SESSIONS:
                return self.send_json(200, SESSIONS[key])
            sid = f"cs_test_{len(SESSIONS) + 1:04d}"
            session = {"id": sid, "object": "checkout.session", "mode": form.get("mode"),
                       "url": f"https://checkout.stripe.com/c/pay/{sid}"}
            SESSIONS[key] = session
            return self.send_json(200, session)


if __name__ == "__main__":
    scripted.serve(Handler)
