"""Every response the API tests receive is checked against the OpenAPI
document the binary serves (`promptq routes --openapi`): its status must be
documented for its route, and a JSON body must match that status's schema.
A field that drifts from its schema fails the test that received it.

Installed by conftest.py around requests' Session.send, so it sees the
responses of every helper and every test alike. Streams (stream=True) and
non-JSON answers are checked for their status only; requests to routes the
document does not have (404/405 from the router, catch-alls) are skipped."""
import json
import re
import subprocess
import threading
from urllib.parse import urlsplit

import jsonschema
import requests


class Spec:
    def __init__(self, binary):
        self.doc = json.loads(subprocess.check_output([binary, "routes", "--openapi"]))
        self.components = self.doc["components"]
        self.routes = []
        for template, item in self.doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            literal = template.count("{")
            for method, op in item.items():
                self.routes.append((literal, method.upper(), pattern, template, op))
        self.routes.sort(key=lambda r: r[0])  # literal segments first: /v1/jobs/batch before /v1/jobs/{id}
        self.validators = {}
        self.lock = threading.Lock()

    def operation(self, method, path):
        for _, m, pattern, template, op in self.routes:
            if m == method and pattern.match(path):
                return template, op
        return None, None

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        with self.lock:
            v = self.validators.get(key)
            if v is None:
                v = jsonschema.Draft202012Validator(dict(schema, components=self.components))
                self.validators[key] = v
            return v

    def check(self, method, url, response, streamed):
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            return
        template, op = self.operation(method, parts.path)
        if op is None or response.status_code in (404, 405) and not template:
            return
        status = str(response.status_code)
        documented = op["responses"].get(status) or op["responses"].get(status[0] + "XX")
        where = f"{method} {parts.path} ({op['operationId']}) answered {status}"
        if documented is None:
            raise AssertionError(f"{where}, a status its OpenAPI entry does not document")
        content = documented.get("content")
        if streamed or not content or status == "204":
            return
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media not in content:
            raise AssertionError(f"{where} as {media!r}; its OpenAPI entry says {sorted(content)}")
        schema = content[media].get("schema")
        if media != "application/json" or schema is None:
            return
        try:
            body = response.json()
        except ValueError as e:
            raise AssertionError(f"{where} with a body that is not JSON: {e}")
        errors = sorted(self.validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            at = "/".join(str(p) for p in e.absolute_path) or "(the body)"
            raise AssertionError(f"{where} with a body that drifts from its schema at {at}: {e.message}\n"
                                 f"body: {json.dumps(body)[:1500]}")


def install(binary):
    spec = Spec(binary)
    send = requests.Session.send

    def checked_send(self, request, **kwargs):
        response = send(self, request, **kwargs)
        spec.check(request.method, request.url, response, kwargs.get("stream", False))
        return response

    requests.Session.send = checked_send
    return spec
