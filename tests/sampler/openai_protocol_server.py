"""An OpenAI-completions protocol test server (test stand-in, never a backend).

Implements what vLLM serves for the sampler: ``/v1/completions`` (an unknown ``model`` is 404,
as vLLM answers; ``stop_reason`` says which stop ended a sample), ``/v1/load_lora_adapter``
(answered in plain text, as vLLM does) and SGLang's ``/load_lora_adapter`` (JSON). Records every
request with its headers. ``fail_next`` forces the next answers: a status, or a status with
headers (``(429, {"Retry-After": "1"})``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class OpenAIProtocolServer:
    def __init__(self, model: str = "base-model") -> None:
        self.model = model
        self.loaded: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        self.fail_next: list[int | tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, headers = server.handle(self.path, body, dict(self.headers))
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
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
