"""Drive Herald's ASGI HTTP handler in this process, as an ASGI server would, for tests that must
see what happens between the handler's steps (real database, real Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    handler: Any,
    method: str,
    path: str,
    *,
    host: str,
    token: str | None = None,
    body: Any = None,
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    on_sent: Callable[[], None] | None = None,
) -> Answer:
    """One request through ``handler``, with ``headers`` besides its own; ``on_sent`` runs once the
    whole response was handed over, before the handler returns (where a server's write to the
    socket happens)."""
    payload = b"" if body is None else json.dumps(body).encode()
    sent_headers = [
        (b"host", host.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(headers or []),
    ]
    if token:
        sent_headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": sent_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    requested = False
    answer = Answer()
    complete = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await complete.wait()  # as uvicorn: once the response is complete, the cycle is over
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")
            if not message.get("more_body"):
                complete.set()
                if on_sent is not None:
                    on_sent()

    await handler(scope, receive, send)
    return answer
