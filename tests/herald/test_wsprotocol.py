"""The web process's WebSocket transport: a connection's writes of one loop turn go out as one.

Over a real loopback TCP connection; the wrapped transport is the real one, with its writes
recorded on the way through. The upgrade guards at the end pin what the module takes from
uvicorn's and websockets' internals (see the module docstring's "On upgrade, check")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.protocol import State
from websockets.server import ServerProtocol

from herald.wsprotocol import (
    CHECKED_RELEASES,
    SEND_NOWAIT,
    CoalescingTransport,
    WebSocketProtocol,
    text_frame,
)
from tests.support.aio import run_loop
from tests.support.processes import free_port
from tests.support.upstream import assert_release_in, assert_sources_unchanged, parameters

RECHECK = "the 'On upgrade, check' list in herald/wsprotocol.py's docstring"


class Recording:
    """A real transport, recording what is written to it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    run_loop(scenario())


async def serving(app: Any, client: Callable[[int], Awaitable[None]]) -> None:
    """Serve ``app`` with uvicorn and ``WebSocketProtocol`` while ``client(port)`` runs."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        http="httptools",
        ws="herald.wsprotocol:WebSocketProtocol",
        ws_per_message_deflate=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        await client(port)
    finally:
        server.should_exit = True
        await task


async def connected() -> tuple[CoalescingTransport, Recording, bytearray, asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    received = bytearray()
    lost: asyncio.Future[None] = loop.create_future()

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.extend(data)

        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(None)

    server = await loop.create_server(Sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    recording = Recording(transport)
    coalescing = CoalescingTransport(recording, loop)  # type: ignore[arg-type] -- a real one, wrapped
    return coalescing, recording, received, lost


def test_writes_of_one_turn_are_one_write_and_close_writes_what_is_pending():
    async def scenario() -> None:
        coalescing, recording, received, lost = await connected()
        coalescing.write(b"a")
        coalescing.write(b"")
        coalescing.write(b"bc")
        assert recording.writes == []  # held until the end of this turn
        await asyncio.sleep(0)
        assert recording.writes == [b"abc"]

        coalescing.write(b"d")
        coalescing.close()  # pending bytes go out before the connection closes
        await asyncio.wait_for(lost, 5)
        assert bytes(received) == b"abcd"
        assert recording.writes == [b"abc", b"d"]

    run(scenario)


def test_abort_drops_what_is_pending():
    async def scenario() -> None:
        coalescing, recording, received, lost = await connected()
        coalescing.write(b"never sent")
        coalescing.abort()
        await asyncio.wait_for(lost, 5)
        await asyncio.sleep(0)
        assert recording.writes == []
        assert bytes(received) == b""

    run(scenario)


def test_text_frames_have_the_right_length_encoding():
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")


def test_an_accepted_connection_keeps_no_handshake_request_or_response():
    """uvicorn's protocol keeps the handshake's request and response (headers: some 3 KiB a
    connection) for the connection's life; ours lets them go once the response is out. This
    fails loudly if an upgrade of uvicorn renames what it keeps or reads it later."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        protocol = scope["extensions"][SEND_NOWAIT].__self__
        seen["before"] = (protocol.request, protocol.response)
        await send({"type": "websocket.accept", "headers": [(b"x-request-id", b"r1")]})
        seen["after"] = (protocol.request, protocol.response)
        await send({"type": "websocket.send", "text": "hello"})
        await receive()  # websocket.disconnect

    async def client(port: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
            assert await ws.recv() == "hello"
            assert ws.response is not None
            assert ws.response.headers["x-request-id"] == "r1"

    run(lambda: serving(app, client))
    request, response = seen["before"]
    assert request is not None
    assert response is not None
    assert seen["after"] == (None, None)


def test_send_nowait_writes_frames_through_the_coalescing_transport_once_accepted():
    """The extension refuses before the accept and after the close, and in between writes what
    uvicorn's ``send`` would have, through the wrapped transport."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        send_nowait = scope["extensions"][SEND_NOWAIT]
        protocol = send_nowait.__self__
        seen["before_accept"] = send_nowait(["early"])
        await send({"type": "websocket.accept"})
        seen["transport"] = protocol.transport
        seen["accepted"] = send_nowait(["one", "two"])
        await send({"type": "websocket.send", "text": "three"})
        await receive()  # websocket.disconnect
        seen["after_close"] = send_nowait(["late"])

    async def client(port: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
            assert [await ws.recv() for _ in range(3)] == ["one", "two", "three"]

    run(lambda: serving(app, client))
    assert seen["before_accept"] is False
    assert isinstance(seen["transport"], CoalescingTransport)
    assert seen["accepted"] is True
    assert seen["after_close"] is False


def test_uvicorn_and_websockets_are_releases_this_was_checked_against():
    for distribution, supported in CHECKED_RELEASES.items():
        assert_release_in(distribution, supported, RECHECK)


def test_the_upstream_code_overridden_or_relied_on_is_what_this_was_written_for():
    """The methods ``WebSocketProtocol`` overrides, and those whose behaviour it relies on (that
    every write goes through ``self.transport``, that ``writable`` follows the socket)."""
    assert_sources_unchanged(
        WebSocketsSansIOProtocol,
        {
            "__init__": "6ff71216ee4d0076",
            "connection_made": "09b35f5f0826e46c",
            "handle_connect": "e0954ba19c3a24c8",
            "send": "4ea267c383aa471b",
            "connection_lost": "fcaa76f432efa9d1",
            "pause_writing": "9709b4573545358f",
            "resume_writing": "57567a2d754e8fe6",
        },
        RECHECK,
    )
    assert_sources_unchanged(
        HttpToolsProtocol,
        {"handle_websocket_upgrade": "a684df20ed34d9d6", "connection_lost": "c5567cca5922d934"},
        RECHECK,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("connection_made", ["self", "transport"]),
        ("handle_connect", ["self", "event"]),
        ("send", ["self", "message"]),
        ("connection_lost", ["self", "exc"]),
    ],
)
def test_the_overridden_methods_keep_their_signatures(name, expected):
    assert parameters(getattr(WebSocketsSansIOProtocol, name)) == expected, RECHECK
    assert getattr(WebSocketProtocol, name) is not getattr(WebSocketsSansIOProtocol, name)


def test_the_state_send_nowait_reads_is_still_there():
    """What ``send_nowait`` reads, on a protocol as uvicorn builds it."""
    config = uvicorn.Config(app=None, ws_per_message_deflate=False)
    config.loaded_app = None
    state = uvicorn.server.ServerState()

    async def build() -> WebSocketProtocol:
        return WebSocketProtocol(config=config, server_state=state, app_state={})

    protocol = run_loop(build())
    for name in ("handshake_complete", "close_sent", "disconnected"):
        assert getattr(protocol, name) is False, (name, RECHECK)
    assert protocol.initial_response is None
    assert isinstance(protocol.writable, asyncio.Event)
    assert protocol.writable.is_set()
    assert isinstance(protocol.conn, ServerProtocol)
    assert protocol.conn.state is State.CONNECTING
    assert protocol.conn.extensions == []
    assert State.OPEN in State
