"""Scaffolding for the protocol test servers: a threaded HTTP server on loopback.

Subclasses implement ``handle(path, body) -> (status, payload)`` for POST and may implement
``handle_get(path) -> (status, payload)`` for GET (``None``: an empty body) and
``headers_for(status)`` for extra response headers. A server that needs the method, the
request's headers or raw body, or answers in plain text overrides ``respond`` instead.
"""

from __future__ import annotations

import json
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Answer = tuple[int, Any, dict[str, str]]  # status, payload (JSON value, str for text/plain, None), headers


class JsonHttpTestServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, headers = server.respond(self.command, self.path, self.headers, raw)
                text = isinstance(payload, str)
                data = b"" if payload is None else payload.encode() if text else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if payload is not None:
                    self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

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

    def respond(self, method: str, path: str, headers: Message, raw: bytes) -> Answer:
        """``headers`` as received (names are case-insensitive)."""
        if method == "POST":
            status, payload = self.handle(path, json.loads(raw))
        elif method == "GET":
            status, payload = self.handle_get(path)
        else:
            status, payload = 405, {"error": "method not allowed"}
        return status, payload, self.headers_for(status)

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def headers_for(self, status: int) -> dict[str, str]:
        """Extra response headers for an answer with ``status``."""
        return {}

    def handle_get(self, path: str) -> tuple[int, Any]:
        return 404, {"error": "not found"}
