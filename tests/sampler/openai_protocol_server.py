"""An OpenAI-completions protocol test server (test stand-in, never a backend).

Implements what vLLM serves for the sampler: ``/v1/completions`` (an unknown ``model`` is
404, as vLLM answers), and ``/v1/load_lora_adapter`` / SGLang's ``/load_lora_adapter``.
Records every request.
"""

from __future__ import annotations

from typing import Any

from tests.sampler.json_http_server import JsonHttpTestServer


class OpenAIProtocolServer(JsonHttpTestServer):
    def __init__(self, model: str = "base-model") -> None:
        super().__init__()
        self.model = model
        self.loaded: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[int] = []

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((path, body))
            forced = self.fail_next.pop(0) if self.fail_next else None
        if forced is not None:
            return forced, {"error": {"message": "busy", "code": forced}}
        if path in ("/v1/load_lora_adapter", "/load_lora_adapter"):
            self.loaded[body["lora_name"]] = body["lora_path"]
            return 200, {}
        if path != "/v1/completions":
            return 404, {"error": {"message": "not found"}}
        model = body.get("model")
        if model != self.model and model not in self.loaded:
            return 404, {"error": {"message": "The model `%s` does not exist." % model, "code": 404}}
        text = "%s|seed=%s|%s" % (model, body.get("seed"), body["prompt"][-12:])
        return 200, {
            "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5},
        }
