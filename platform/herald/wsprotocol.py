"""uvicorn's WebSocket protocol, with each connection's writes of one event-loop turn sent as one.

A new notification reaches a browser as two frames, ``notification`` then ``unread_count``,
written one after the other in the same turn of the event loop. uvicorn hands each frame to the
socket at once: one ``send`` system call per frame. On loopback and on a real network alike that
call is the dearest part of delivering a frame (it runs the TCP stack), so on a broadcast to
thousands of connections those calls are a third of the server's work.

Here a connection's writes wait in its buffer until the end of the turn, and one flush then
writes each connection's frames with one call. Nothing waits longer than that turn, order is
kept, and closing writes what is pending first. Flow control is unchanged: uvicorn still pauses
a connection's sends once the socket's own buffer is full (see ``CoalescingTransport``).

It also offers the application one ASGI extension, ``herald.websocket.send_nowait`` in the
scope's ``extensions``: a plain function that writes text messages at once when the connection
can take them without waiting, and otherwise writes nothing and says so. The inbox consumer
delivers a broadcast's frames with it straight from the dispatcher's loop, instead of waking one
task per connection to run the same bytes through three layers of ``send`` coroutines. Without
the extension (under another ASGI server) the consumer uses ``send`` alone.

Run uvicorn with ``--ws herald.wsprotocol:WebSocketProtocol`` (the Procfile does).

This leans on uvicorn's private protocol class, so ``CHECKED_RELEASES`` names the releases it was
checked against, and ``tests/herald/test_wsprotocol.py`` fails when the installed ones are
outside them or when the upstream code overridden or read here differs from what it was written
for. On upgrade, check:

- uvicorn's ``WebSocketsSansIOProtocol`` writes and closes only through ``self.transport``, set in
  ``connection_made`` (else frames bypass the coalescing wrapper, or go out of order);
- ``pause_writing``/``resume_writing`` still drive ``self.writable``, and ``send`` waits on it;
- ``handle_connect`` still builds ``self.scope`` with an ``extensions`` dict, and nothing reads
  ``request``/``response`` after the accept has been sent;
- ``send_nowait``'s conditions keep their meaning: ``handshake_complete``, ``close_sent``,
  ``disconnected``, ``initial_response``, ``writable`` and websockets' ``conn.state`` /
  ``conn.extensions``; a frame written here must be one uvicorn could have written;
- uvicorn's httptools protocol still calls the WebSocket protocol's ``connection_made`` before
  ``transport.set_protocol``, and ``connection_lost`` is still what frees its ``parser``.

Then widen ``CHECKED_RELEASES`` and record the new digests in the test.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

SEND_NOWAIT = "herald.websocket.send_nowait"

# (lowest release checked, first release not checked) per distribution; requirements.txt pins one
# inside each range.
CHECKED_RELEASES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "uvicorn": ((0, 54), (0, 55)),
    "websockets": ((17, 0), (18, 0)),
}

logger = logging.getLogger(__name__)


class _Flusher:
    """One per event loop: the transports with bytes pending, flushed together next turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[CoalescingTransport] = []

    def add(self, transport: CoalescingTransport) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(transport)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for transport in pending:
            try:
                transport.flush()
            except Exception:  # one broken connection must not strand the others' bytes
                logger.exception("WebSocket write failed")


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class CoalescingTransport:
    """Wraps a transport: ``write`` collects, the loop's flusher writes once per turn.

    The wrapped transport keeps its own write buffer and flow control: once a slow client's
    socket is full it calls the protocol's ``pause_writing``, and uvicorn's ``send`` waits. What
    one turn collects is bounded by what the application writes without yielding."""

    __slots__ = ("_buffer", "_flusher", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._flusher = _flusher(loop)
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._buffer:
            self._flusher.add(self)
        self._buffer.append(data)

    def flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        if not self._transport.is_closing():
            self._transport.write(buffer[0] if len(buffer) == 1 else b"".join(buffer))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _release_http_protocol(transport: asyncio.BaseTransport) -> None:
    """Break the reference cycle of the HTTP protocol that is handing this connection over.

    uvicorn's httptools protocol and its parser refer to each other (the parser holds the
    protocol's callbacks), and only ``connection_lost`` breaks that; after an upgrade to
    WebSocket, ``connection_lost`` goes to the WebSocket protocol instead. Left alone, each
    connection's HTTP protocol (and the upgrade request it holds) waits for a full collection,
    which in a process holding thousands of connections walks all of them with the loop
    stopped. The parser is done: the upgrade request was parsed, and from here on the
    transport feeds this protocol.
    """
    get_protocol = getattr(transport, "get_protocol", None)
    http = get_protocol() if get_protocol is not None else None
    if getattr(http, "parser", None) is not None and hasattr(http, "handle_websocket_upgrade"):
        http.parser = None  # type: ignore[union-attr]  # not None: checked on the line above


def text_frame(data: bytes) -> bytes:
    """One final, unmasked, uncompressed text frame (RFC 6455 section 5.2), as a server sends."""
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default (websockets sans-I/O) protocol, writing via a ``CoalescingTransport``,
    with the ``herald.websocket.send_nowait`` extension."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _release_http_protocol(transport)
        super().connection_made(transport)
        wrapped = CoalescingTransport(self.transport, self.loop)
        self.transport = wrapped  # type: ignore[assignment]  # has every method uvicorn calls

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        extensions: dict[str, Any] = self.scope["extensions"]  # set by handle_connect
        extensions[SEND_NOWAIT] = self.send_nowait

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # uvicorn keeps the handshake's request and response (their headers: some 3 KiB a
            # connection) and reads neither once the response is out.
            self.request = self.response = None  # type: ignore[assignment]  # unused from here

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The scope holds this protocol's bound method: a reference cycle that would keep the
        # closed connection in memory until a full garbage collection.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.get("extensions", {}).pop(SEND_NOWAIT, None)

    def send_nowait(self, texts: Sequence[str]) -> bool:
        """Write ``texts`` as text messages now, if the connection takes them without waiting:
        accepted, open, not closing, its socket not full, no extension negotiated (frames are
        written here uncompressed). Otherwise write nothing and return False; the caller then
        sends them with ASGI ``send``, which waits, compresses or fails as it should."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or self.transport.is_closing()
        ):
            return False
        if len(texts) == 1:
            self.transport.write(text_frame(texts[0].encode()))
        else:
            self.transport.write(b"".join([text_frame(text.encode()) for text in texts]))
        return True
