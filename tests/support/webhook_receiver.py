"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.2 (the one address the
tests allow through ``WEBHOOK_ALLOWED_CIDRS``) that verifies every request's Standard Webhooks
signature with the ``standardwebhooks`` library, as a tenant's receiver would, records every
request, and answers each path from a script.

Answers: a status code (``200``, ``500``, ``410``...), ``Sleep(seconds)`` (answer 200 that
late; a client that gave up meanwhile finds the connection closed) or ``CLOSE`` (close the
connection without an answer). A path's script is played in order, its last answer repeating;
an unscripted path answers 200. ``closed_port_url`` is an address where nothing listens
(connection refused).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOST = "127.0.0.2"
CIDRS = "127.0.0.2/32"
CLOSE = "close"


@dataclass(frozen=True)
class Sleep:
    seconds: float


Answer = int | Sleep | str


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() when it arrived
    verified: bool  # the signature checked out with the path's secret
    error: str = ""  # why not

    @property
    def msg_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class WebhookReceiver:
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # path -> whsec_...
    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    _received: list[Received] = field(default_factory=list)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _max_in_flight: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def expect(self, path: str, secret: str, *answers: Answer) -> str:
        """Verify ``path``'s requests with ``secret`` and answer them with ``answers``; returns
        the path's URL."""
        with self._lock:
            self.secrets[path] = secret
            self.scripts[path] = list(answers) or [200]
        return self.url(path)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def max_in_flight(self, path: str) -> int:
        """The most requests to ``path`` the receiver ever held at once."""
        with self._lock:
            return self._max_in_flight.get(path, 0)

    # --- the handler's side

    def _arrived(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        secret = self.secrets.get(path)
        verified, error = False, "no secret for this path"
        if secret is not None:
            try:
                Webhook(secret).verify(body, headers)
                verified, error = True, ""
            except WebhookVerificationError as exc:
                error = str(exc)
        with self._lock:
            self._received.append(Received(path, headers, body, time.monotonic(), verified, error))
            in_flight = self._in_flight.get(path, 0) + 1
            self._in_flight[path] = in_flight
            self._max_in_flight[path] = max(self._max_in_flight.get(path, 0), in_flight)
            script = self.scripts.get(path) or [200]
            return script.pop(0) if len(script) > 1 else script[0]

    def _done(self, path: str) -> None:
        with self._lock:
            self._in_flight[path] -= 1


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            path = self.path
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = receiver._arrived(path, headers, body)
            try:
                if answer == CLOSE:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = 200
                if isinstance(answer, Sleep):
                    receiver.stopping.wait(answer.seconds)
                elif isinstance(answer, int):
                    status = answer
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
            finally:
                receiver._done(path)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base's name
            pass

    return Handler


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver listening on 127.0.0.2 on a free port until the block ends."""
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer((HOST, 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port_url(path: str = "/gone") -> str:
    """A URL on 127.0.0.2 where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}{path}"
