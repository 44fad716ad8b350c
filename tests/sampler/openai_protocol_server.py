"""An OpenAI-completions protocol test server (test stand-in, never a backend).

Implements what vLLM serves for the sampler: ``/v1/completions`` (an unknown ``model`` is 404,
as vLLM answers; ``stop_reason`` says which stop ended a sample), ``/v1/load_lora_adapter``
(answered in plain text, as vLLM does) and SGLang's ``/load_lora_adapter`` (JSON). Records every
request with its headers. ``fail_next`` forces the next answers: a status, or a status with
headers (``(429, {"Retry-After": "1"})``).
"""

from __future__ import annotations

import json
import time
from email.message import Message
from typing import Any

from tests.sampler.json_http_server import Answer, JsonHttpTestServer


class OpenAIProtocolServer(JsonHttpTestServer):
    def __init__(self, model: str = "base-model") -> None:
        super().__init__()
        self.model = model
        self.loaded: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        self.fail_next: list[int | tuple[int, dict[str, str]]] = []

    def respond(self, method: str, path: str, headers: Message, raw: bytes) -> Answer:
        return self.handle(path, json.loads(raw), dict(headers))

    def handle(  # type: ignore[override]  # also takes the request's headers and answers with headers
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> Answer:
        with self.lock:
            self.requests.append((path, body))
            self.headers.append(headers)
            self.times.append(time.monotonic())
            forced = self.fail_next.pop(0) if self.fail_next else None
        if forced is not None:
            status, extra = forced if isinstance(forced, tuple) else (forced, {})
            return status, {"error": {"message": "forced %d" % status, "code": status}}, extra
        if path == "/v1/load_lora_adapter":
            self.loaded[body["lora_name"]] = body["lora_path"]
            return 200, "Success: LoRA adapter '%s' added successfully." % body["lora_name"], {}
        if path == "/load_lora_adapter":
            self.loaded[body["lora_name"]] = body["lora_path"]
            return 200, {"success": True, "error_message": ""}, {}
        if path != "/v1/completions":
            return 404, {"error": {"message": "not found"}}, {}
        model = body.get("model")
        if model != self.model and model not in self.loaded:
            return 404, {"error": {"message": "The model `%s` does not exist." % model, "code": 404}}, {}
        text = "%s|seed=%s|%s" % (model, body.get("seed"), body["prompt"][-12:])
        stops = body.get("stop") or []
        choice = {"index": 0, "text": text, "finish_reason": "length", "stop_reason": None}
        if stops:  # as if the first stop string had ended the sample
            choice.update(text=text[:6], finish_reason="stop", stop_reason=stops[0])
        elif "<eos>" in body["prompt"]:
            choice.update(text=text[:6], finish_reason="stop")
        return 200, {"choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}, {}
