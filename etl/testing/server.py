"""A local HTTP server for testing network sources through their real client code.

The handler maps a request to a ``Reply``; faults are queued with ``server.fail_next(...)`` and served
before the handler, in order: an HTTP error with headers (429 + Retry-After), a timeout (``delay``), a
connection reset, or a truncated body. Every request is recorded in ``server.requests``.

    def handler(request):
        return Reply.json([[1704067200000, "1.0", ...]])

    with FakeServer(handler) as server:
        server.fail_next(Reply(429, b"{}", {"Retry-After": "1"}), Reply.reset())
        ... base_url = server.url ...
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: str | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data, separators=(",", ":")).encode(),
                   {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/plain", **(headers or {})})

    @classmethod
    def reset(cls) -> Reply:
        """Close the connection abruptly (TCP RST) without answering."""
        return cls(fault="reset")

    @classmethod
    def truncated(cls, reply: Reply) -> Reply:
        """Announce the full length of ``reply`` but send only half of its body, then close."""
        return cls(reply.status, reply.body, reply.headers, fault="truncate")

    @classmethod
    def timeout(cls, seconds: float, reply: Reply | None = None) -> Reply:
        """Answer only after ``seconds``, longer than the client's timeout."""
        base = reply or cls.json([])
        return cls(base.status, base.body, base.headers, delay=seconds)


Handler = Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) is what a fault test wants; no traceback on stderr."""


class FakeServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1"):
        self.handler = handler
        self.requests: list[Request] = []
        self._faults: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = _QuietServer((host, 0), self._make_handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._faults.extend(replies)

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        return fault if fault is not None else self.handler(request)

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, dict(parse_qsl(parts.query)), dict(self.headers), body)
                try:
                    reply = server._next_reply(request)
                except Exception as exc:
                    reply = Reply.text(f"fake server handler failed: {exc!r}", 500)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.fault == "truncate":
                    self.wfile.write(reply.body[: len(reply.body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return _Handler
