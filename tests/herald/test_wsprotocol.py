"""The web process's WebSocket transport: a connection's writes of one loop turn go out as one.

Over a real loopback TCP connection; the wrapped transport is the real one, with its writes
recorded on the way through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from websockets.asyncio.client import connect

from herald.wsprotocol import SEND_NOWAIT, CoalescingTransport, text_frame
from tests.support.aio import run_loop
from tests.support.processes import free_port


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

    async def scenario() -> None:
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            ws="herald.wsprotocol:WebSocketProtocol",
            ws_per_message_deflate=False,
            log_level="warning",
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        try:
            async with connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
                assert await ws.recv() == "hello"
                assert ws.response is not None
                assert ws.response.headers["x-request-id"] == "r1"
        finally:
            server.should_exit = True
            await serving

    run(scenario)
    request, response = seen["before"]
    assert request is not None
    assert response is not None
    assert seen["after"] == (None, None)
