"""Client side of ``bench/realtime.py``: a tiny keep-alive HTTP client, a fleet of WebSocket
clients on one event loop, and helpers for the processes under test.

Every timestamp is ``time.perf_counter()``, taken in this process as soon as a frame is read (on
Linux that is CLOCK_MONOTONIC, so the baseline publisher's timestamps, taken in another process,
are on the same clock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import signal
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

NOFILE_WANTED = 65536


def raise_nofile_limit() -> int:
    """Raise this process's open-files soft limit as far as the hard limit allows; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- Processes under test -------------------------------------------------------------------------


@dataclass
class Child:
    """A child process started by the benchmark, with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def send_line(self, text: str) -> None:
        """One line to the child's stdin (started with ``pipes``)."""
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    async def read_json_line(self, timeout: float) -> Any:
        """The child's next stdout line, as JSON, without blocking the event loop."""
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(
            loop.run_in_executor(None, self.process.stdout.readline), timeout
        )
        if not line:
            raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
        return json.loads(line)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this process (we started it)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def start_child(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    pipes: bool = False,
) -> Child:
    """Start ``argv`` with a raised open-files limit; stderr (and stdout unless ``pipes``) to
    ``log``. With ``pipes`` the child's stdin and stdout are pipes to this process."""
    handle = log.open("wb")
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else handle,
            stderr=handle,
            preexec_fn=raise_nofile_limit,  # the limit is inherited too; this makes it explicit
        )
    finally:
        handle.close()
    return Child(name=name, process=process, log=log)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine (every core, every process, the kernel) has worked so far:
    user, nice, system, irq and softirq of ``/proc/stat`` (not idle, iowait or steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields)
    return (user + nice + system + irq + softirq) / _TICK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes, say)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in KiB."""
    return sum(rss_kib(p) for p in process_tree(pid))


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its live descendants so far."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (clock-tick resolution, usually 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


# --- HTTP -----------------------------------------------------------------------------------------


class HttpError(RuntimeError):
    pass


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one local port (JSON in and out).

    A connection idle for longer than ``max_idle`` seconds is dropped rather than reused, so a
    request never meets the server's keep-alive timeout (uvicorn's is 5 s).
    """

    def __init__(self, port: int, size: int = 8, max_idle: float = 3.0) -> None:
        self.port = port
        self.max_idle = max_idle
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(size)

    async def request(
        self,
        method: str,
        path: str,
        *,
        host: str,
        token: str | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON body or text)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if token:
            head.append(f"Authorization: Bearer {token}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        async with self._slots:
            reader, writer = await self._acquire()
            try:
                writer.write(raw)
                status, data, keep = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
        try:
            parsed: Any = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace")
        return status, parsed

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self.max_idle and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        for _reader, writer, _since in self._idle:
            writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        data = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        data = b"".join(parts)
    else:
        raise HttpError(f"response without a length: {head!r}")
    return status, data, headers.get("connection", "").lower() != "close"


# --- WebSocket clients ----------------------------------------------------------------------------
#
# The clients share this machine's cores with the server under test, so what they spend per frame
# is taken from the server: with the ``websockets`` library each frame cost the client process
# about as much CPU as it cost the server to send it. ``LeanWebSocket`` is the client end of RFC
# 6455 and no more (handshake, framing, masking, fragments, ping/pong, close, permessage-deflate
# when the server chooses it), parsing a frame in a few microseconds. ``--client websockets``
# runs the same benchmark with the library instead.

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10
_DEFLATE_TAIL = b"\x00\x00\xff\xff"

OnText = Callable[[bytes, float], None]


class ProtocolViolation(RuntimeError):
    """The server broke RFC 6455 (or refused the handshake)."""


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    size = len(payload)
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked, final frame (clients must mask)."""
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + key + _mask(payload, key)


class LeanWebSocket(asyncio.Protocol):
    """The client end of one WebSocket connection (see the section comment).

    ``on_text(payload, now)`` gets every text message but the first, with the time the read that
    completed it returned; the first one resolves ``first``, as the first ``recv()`` would."""

    def __init__(self, key: bytes, offer_deflate: bool, on_text: OnText) -> None:
        self.key = key
        self.offer_deflate = offer_deflate
        self.on_text = on_text
        self.on_close: Callable[[int | None], None] | None = None
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.first: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.open = False
        self.close_code: int | None = None
        self.extensions = "none"
        self._buffer = bytearray()
        self._fragments: list[bytes] | None = None
        self._compressed = False
        self._inflater: Any = None
        self._bits = 15
        self._reset_inflater = False
        self._close_sent = False

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] -- a TCP connection's is a Transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buffer += data
        if not self.opened.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            try:
                self._handshake(head)
            except ProtocolViolation as exc:
                self.opened.set_exception(exc)
                self._abort()
                return
            self.open = True
            self.opened.set_result(None)
        try:
            self._frames(now)
        except ProtocolViolation:
            self.close_code = 1002  # protocol error
            self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.close_code is None:
            self.close_code = 1006
        for future in (self.opened, self.first):
            if not future.done():
                future.set_exception(ConnectionError(f"closed ({self.close_code})"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_close is not None:
            self.on_close(self.close_code)

    # --- the protocol -----------------------------------------------------------------------------

    def _handshake(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise ProtocolViolation(f"handshake refused: {lines[0]}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        digest = hashlib.sha1(self.key + _WS_GUID, usedforsecurity=False).digest()
        expected = base64.b64encode(digest).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise ProtocolViolation("wrong Sec-WebSocket-Accept")
        extensions = headers.get("sec-websocket-extensions", "")
        if extensions:
            params = [p.strip() for p in extensions.split(";")]
            if params[0] != "permessage-deflate" or not self.offer_deflate:
                raise ProtocolViolation(f"unrequested extension {extensions}")
            bits = 15
            for param in params[1:]:
                name, _, value = param.partition("=")
                if name.strip() == "server_max_window_bits" and value:
                    bits = int(value.strip('"'))
            self._bits = bits
            self._inflater = zlib.decompressobj(-bits)
            self._reset_inflater = "server_no_context_takeover" in params
            self.extensions = extensions

    def _frames(self, now: float) -> None:
        buffer = self._buffer
        size = len(buffer)
        pos = 0
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if second & 0x80:
                raise ProtocolViolation("the server masked a frame")
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = bytes(buffer[pos + head : pos + head + length])
            pos += head + length
            self._frame(first, payload, now)
        del buffer[:pos]

    def _frame(self, first: int, payload: bytes, now: float) -> None:
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in (_OP_TEXT, _OP_BINARY):
            if self._fragments is not None:
                raise ProtocolViolation("a new message inside a fragmented one")
            self._compressed = bool(first & 0x40)
            if not fin:
                self._fragments = [payload]
                return
            self._message(opcode, payload, now)
        elif opcode == _OP_CONT:
            if self._fragments is None:
                raise ProtocolViolation("a continuation frame outside a message")
            self._fragments.append(payload)
            if fin:
                payload, self._fragments = b"".join(self._fragments), None
                self._message(_OP_TEXT, payload, now)
        elif opcode == _OP_PING:
            self._write(_client_frame(_OP_PONG, payload))
        elif opcode == _OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.open = False
            if not self._close_sent:
                self._close_sent = True
                self._write(_client_frame(_OP_CLOSE, payload[:2]))
            if self.transport is not None:
                self.transport.close()
        elif opcode != _OP_PONG:
            raise ProtocolViolation(f"unknown opcode {opcode}")

    def _message(self, opcode: int, payload: bytes, now: float) -> None:
        if self._compressed:
            if self._inflater is None:
                raise ProtocolViolation("a compressed frame without permessage-deflate")
            payload = self._inflater.decompress(payload + _DEFLATE_TAIL)
            if self._reset_inflater:
                self._inflater = zlib.decompressobj(-self._bits)
        if opcode != _OP_TEXT:
            return
        if not self.first.done():
            self.first.set_result(payload)
        else:
            self.on_text(payload, now)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- what the fleet calls ---------------------------------------------------------------------

    async def send(self, text: str) -> None:
        if not self.open:
            raise ConnectionError("not open")
        self._write(_client_frame(_OP_TEXT, text.encode()))

    async def close(self, timeout: float = 10) -> None:
        if self.open and not self._close_sent:
            self._close_sent = True
            self._write(_client_frame(_OP_CLOSE, (1000).to_bytes(2, "big")))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        if not self.closed.done():
            self._abort()


async def lean_connect(
    uri: str, *, port: int, compression: str | None, on_text: OnText, timeout: float
) -> LeanWebSocket:
    """Open ``uri`` (``ws://host[:port]/path?query``) on 127.0.0.1:``port``."""
    parts = urlsplit(uri)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    loop = asyncio.get_running_loop()
    _transport, ws = await asyncio.wait_for(
        loop.create_connection(
            lambda: LeanWebSocket(key, compression == "deflate", on_text), "127.0.0.1", port
        ),
        timeout,
    )
    request = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if compression == "deflate":
        request.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    ws._write(("\r\n".join(request) + "\r\n\r\n").encode())
    await asyncio.wait_for(ws.opened, timeout)
    return ws


class LibraryWebSocket:
    """The same surface as ``LeanWebSocket``, over the ``websockets`` library's client."""

    def __init__(self, ws: Any, on_text: OnText) -> None:
        self.ws = ws
        self.on_text = on_text
        self.on_close: Callable[[int | None], None] | None = None
        self.first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        header = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        self.extensions = header or "none"
        self.reader = asyncio.create_task(self._read())

    @property
    def open(self) -> bool:
        from websockets.protocol import State

        return self.ws.state is State.OPEN and not self.reader.done()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                now = time.perf_counter()
                payload = raw.encode() if isinstance(raw, str) else raw
                if not self.first.done():
                    self.first.set_result(payload)
                else:
                    self.on_text(payload, now)
        except ConnectionClosed:
            pass
        finally:
            if not self.first.done():
                self.first.set_exception(ConnectionError(f"closed ({self.ws.close_code})"))
            if self.on_close is not None:
                self.on_close(self.ws.close_code)

    async def send(self, text: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError("not open") from exc

    async def close(self, timeout: float = 10) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), timeout)
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader


async def library_connect(
    uri: str, *, port: int, compression: str | None, on_text: OnText, timeout: float
) -> LibraryWebSocket:
    from websockets.asyncio.client import connect

    ws = await connect(
        uri,
        host="127.0.0.1",
        port=port,
        proxy=None,
        compression=compression,
        ping_interval=None,  # like a browser: the server pings, the client answers
        open_timeout=timeout,
        max_queue=None,
    )
    return LibraryWebSocket(ws, on_text)


CLIENT_KINDS = {"lean": lean_connect, "websockets": library_connect}


@dataclass
class Client:
    """One WebSocket client; ``received`` maps a notification's ``message`` to its receipt time."""

    index: int
    label: str
    user_id: int = 0
    ws: LeanWebSocket | LibraryWebSocket | None = None
    received: dict[str, float] = field(default_factory=dict)
    pong: asyncio.Future[float] | None = None
    close_code: int | None = None

    @property
    def open(self) -> bool:
        return self.ws is not None and self.ws.open


@dataclass
class Expectation:
    """The clients that must receive notification ``tag``; ``done`` fires when all have."""

    remaining: set[int]
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Target:
    """Where and as whom one client connects."""

    label: str
    uri: str
    user_id: int = 0  # the end user's primary key (the token's ``sub``), when known
    port: int = 0  # the server's port on 127.0.0.1; 0: the fleet's


_SKIPPED = b'{"type":"unread_count"'  # the frames no figure needs are not parsed


class Fleet:
    """Many WebSocket clients on this event loop; each frame is timestamped as it is read."""

    def __init__(self, port: int, *, compression: str | None, kind: str = "lean") -> None:
        self.port = port
        self.compression = compression
        self.connect = CLIENT_KINDS[kind]
        self.clients: list[Client] = []
        self.expectations: dict[str, Expectation] = {}
        self.close_codes: Counter[int | None] = Counter()
        self.first_frames: Counter[str] = Counter()
        self.extensions: set[str] = set()
        self.failures: list[BaseException] = []

    async def open(
        self,
        targets: Iterable[Target],
        concurrency: int = 50,
        *,
        indices: Sequence[int] | None = None,
        strict: bool = True,
    ) -> float:
        """Connect every target and wait for each one's first frame; returns the seconds taken.

        ``indices`` numbers the new clients (default: on from the last one). With ``strict`` a
        failed connection raises once all have been tried; without, the failures are kept in
        ``failures`` and the clients that did connect join the fleet."""
        gate = asyncio.Semaphore(concurrency)
        targets = list(targets)
        base = len(self.clients)
        numbers = list(indices) if indices is not None else range(base, base + len(targets))
        started = time.perf_counter()

        async def one(index: int, target: Target) -> Client:
            client = Client(index=index, label=target.label, user_id=target.user_id)
            async with gate:
                ws = await self.connect(
                    target.uri,
                    port=target.port or self.port,
                    compression=self.compression,
                    on_text=lambda payload, now: self._on_text(client, payload, now),
                    timeout=60,
                )
                client.ws = ws
                ws.on_close = lambda code: self._on_close(client, code)
                first = json.loads(await asyncio.wait_for(ws.first, 60))
            self.first_frames[first.get("type", "?")] += 1
            self.extensions.add(ws.extensions)
            return client

        outcomes = await asyncio.gather(
            *(one(i, t) for i, t in zip(numbers, targets, strict=True)), return_exceptions=True
        )
        self.clients.extend(c for c in outcomes if isinstance(c, Client))
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        self.failures.extend(failures)
        if failures and strict:
            raise RuntimeError(f"{len(failures)} of {len(targets)} connections failed") from (
                failures[0]
            )
        return time.perf_counter() - started

    def _on_text(self, client: Client, payload: bytes, now: float) -> None:
        if payload.startswith(_SKIPPED):
            return
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind == "notification":
            tag = frame["notification"]["message"]
            client.received[tag] = now
            expectation = self.expectations.get(tag)
            if expectation is not None:
                expectation.remaining.discard(client.index)
                if not expectation.remaining:
                    expectation.done.set()
        elif kind == "pong" and client.pong is not None and not client.pong.done():
            client.pong.set_result(now)

    def _on_close(self, client: Client, code: int | None) -> None:
        if client.close_code is None:
            client.close_code = code
            self.close_codes[code] += 1

    def expect(self, tag: str, clients: Iterable[Client]) -> Expectation:
        """From now on, ``tag`` is awaited from ``clients`` (those that have it already count)."""
        expectation = Expectation(remaining={c.index for c in clients if tag not in c.received})
        if not expectation.remaining:
            expectation.done.set()
        self.expectations[tag] = expectation
        return expectation

    async def wait(self, tags: Sequence[str], deadline: float) -> None:
        """Until every client expected for ``tags`` has its notification, or ``deadline``
        (``time.perf_counter()``); the expectations are gone afterwards, ``received`` holds what
        came."""
        waits = [self.expectations[tag].done.wait() for tag in tags]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*waits), timeout=max(0.0, deadline - time.perf_counter())
            )
        for tag in tags:
            self.expectations.pop(tag, None)

    def status(self) -> tuple[int, Counter[int | None]]:
        """How many connections are open, and the close codes of those that closed."""
        return sum(c.open for c in self.clients), Counter(self.close_codes)

    async def ping_all(self, timeout: float) -> tuple[int, int]:
        """Send ``{"type":"ping"}`` on every open connection; returns (open, answered)."""
        loop = asyncio.get_running_loop()
        live = [c for c in self.clients if c.open]

        async def one(client: Client) -> bool:
            assert client.ws is not None
            client.pong = loop.create_future()
            try:
                await client.ws.send('{"type":"ping"}')
                await asyncio.wait_for(client.pong, timeout)
            except (ConnectionError, TimeoutError):
                return False
            return True

        answers = await asyncio.gather(*(one(c) for c in live))
        return len(live), sum(answers)

    async def close(self) -> None:
        async def one(client: Client) -> None:
            if client.ws is not None:
                with contextlib.suppress(Exception):
                    await client.ws.close()

        await asyncio.gather(*(one(c) for c in self.clients))
        self.clients.clear()
