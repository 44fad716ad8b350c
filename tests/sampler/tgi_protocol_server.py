"""A TGI-protocol test server (test stand-in, never a backend).

text-generation-inference needs a GPU and a container engine, so the tgi backend is tested
against this small HTTP server that implements TGI's ``/generate`` request and response
schema, its validation errors (422 with ``error``/``error_type``), and scripted 429/5xx
answers, and records every request it receives and how many were in flight at once. ``/health``
answers 200 with an empty body. With ``served`` (the adapters TGI was started with, its
``LORA_ADAPTERS``), an ``adapter_id`` outside it gets the base model, as TGI does.
"""

from __future__ import annotations

import time
from typing import Any

from tests.sampler.json_http_server import JsonHttpTestServer


class TgiProtocolServer(JsonHttpTestServer):
    def __init__(self, delay_s: float = 0.0, max_new_tokens_limit: int = 1024, served: set[str] | None = None) -> None:
        super().__init__()
        self.served = served
        self.delay_s = delay_s
        self.max_new_tokens_limit = max_new_tokens_limit
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []  # status codes to answer the next requests with
        self.retry_after = ""  # sent with a 429 when set, as TGI's router does when overloaded
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def headers_for(self, status: int) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            forced = self.fail_next.pop(0) if self.fail_next else None
        try:
            time.sleep(self.delay_s)
            if path != "/generate":
                return 404, {"error": "not found"}
            if forced is not None:
                kind = "overloaded" if forced == 429 else "generation"
                return forced, {"error": "Model is overloaded" if forced == 429 else "boom", "error_type": kind}
            error = self.validate(body)
            if error:
                return 422, {"error": error, "error_type": "validation"}
            params = body.get("parameters", {})
            adapter = params.get("adapter_id") or "base"  # TGI falls back to the base model silently
            if self.served is not None and adapter not in self.served:
                adapter = "base"
            text = "%s|seed=%s|%s" % (adapter, params.get("seed"), body["inputs"][-12:])
            tokens = min(params.get("max_new_tokens", 20), 7)
            return 200, {
                "generated_text": text,
                "details": {
                    "finish_reason": "length",
                    "generated_tokens": tokens,
                    "seed": params.get("seed"),
                    "prefill": [],
                },
            }
        finally:
            with self.lock:
                self.in_flight -= 1

    def handle_get(self, path: str) -> tuple[int, Any]:
        if path == "/health":
            return 200, None
        return 404, {"error": "not found"}

    def validate(self, body: dict[str, Any]) -> str:
        if not isinstance(body.get("inputs"), str) or not body["inputs"]:
            return "Input validation error: `inputs` cannot be empty"
        params = body.get("parameters", {})
        if "temperature" in params and not params["temperature"] > 0:
            return "Input validation error: `temperature` must be strictly positive"
        if "top_p" in params and not 0 < params["top_p"] < 1:
            return "Input validation error: `top_p` must be > 0.0 and < 1.0"
        best_of = params.get("best_of") or 1
        if best_of > 2:
            return "Input validation error: `best_of` must be <= 2"
        if best_of > 1 and params.get("seed") is not None:
            return "Input validation error: `seed` must not be set when `best_of` > 1"
        if params.get("max_new_tokens", 20) > self.max_new_tokens_limit:
            return "Input validation error: `max_new_tokens` must be <= %d" % self.max_new_tokens_limit
        return ""
