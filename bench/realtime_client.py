"""Client side of ``bench/realtime.py``: a tiny keep-alive HTTP client, a fleet of WebSocket
clients on one event loop, and helpers for the processes under test.

Every timestamp is ``time.perf_counter()``, taken in this process as soon as a frame is read (on
Linux that is CLOCK_MONOTONIC, so the baseline publisher's timestamps, taken in another process,
are on the same clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

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


@dataclass
class Client:
    """One WebSocket client; ``received`` maps a notification's ``message`` to its receipt time."""

    index: int
    label: str
    ws: ClientConnection
    user_id: int = 0
    received: dict[str, float] = field(default_factory=dict)
    pong: asyncio.Future[float] | None = None
    reader: asyncio.Task[None] | None = None
    close_code: int | None = None

    @property
    def open(self) -> bool:
        return self.ws.state is State.OPEN and self.reader is not None and not self.reader.done()


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


class Fleet:
    """Many WebSocket clients on this event loop, each with a reader task that timestamps frames."""

    def __init__(self, port: int, *, compression: str | None) -> None:
        self.port = port
        self.compression = compression
        self.clients: list[Client] = []
        self.expectations: dict[str, Expectation] = {}
        self.close_codes: Counter[int | None] = Counter()
        self.first_frames: Counter[str] = Counter()
        self.extensions: set[str] = set()

    async def open(self, targets: Iterable[Target], concurrency: int = 50) -> float:
        """Connect every target and wait for each one's first frame; returns the seconds taken."""
        gate = asyncio.Semaphore(concurrency)
        targets = list(targets)
        started = time.perf_counter()

        async def one(index: int, target: Target) -> Client:
            async with gate:
                ws = await connect(
                    target.uri,
                    host="127.0.0.1",
                    port=self.port,
                    proxy=None,
                    compression=self.compression,
                    ping_interval=None,  # like a browser: the server pings, the client answers
                    open_timeout=60,
                    max_queue=None,
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            self.first_frames[first.get("type", "?")] += 1
            header = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
            self.extensions.add(header or "none")
            client = Client(index=index, label=target.label, ws=ws, user_id=target.user_id)
            client.reader = asyncio.create_task(self._read(client))
            return client

        base = len(self.clients)
        outcomes = await asyncio.gather(
            *(one(base + i, t) for i, t in enumerate(targets)), return_exceptions=True
        )
        self.clients.extend(c for c in outcomes if isinstance(c, Client))
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(targets)} connections failed") from (
                failures[0]
            )
        return time.perf_counter() - started

    async def _read(self, client: Client) -> None:
        try:
            async for raw in client.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
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
        except ConnectionClosed:
            pass
        finally:
            client.close_code = client.ws.close_code
            self.close_codes[client.close_code] += 1

    def expect(self, tag: str, clients: Iterable[Client]) -> Expectation:
        expectation = Expectation(remaining={c.index for c in clients})
        if not expectation.remaining:
            expectation.done.set()
        self.expectations[tag] = expectation
        return expectation

    async def ping_all(self, timeout: float) -> tuple[int, int]:
        """Send ``{"type":"ping"}`` on every open connection; returns (open, answered)."""
        loop = asyncio.get_running_loop()
        live = [c for c in self.clients if c.open]

        async def one(client: Client) -> bool:
            client.pong = loop.create_future()
            try:
                await client.ws.send('{"type":"ping"}')
                await asyncio.wait_for(client.pong, timeout)
            except (ConnectionClosed, TimeoutError):
                return False
            return True

        answers = await asyncio.gather(*(one(c) for c in live))
        return len(live), sum(answers)

    async def close(self) -> None:
        async def one(client: Client) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(), 10)
            if client.reader is not None:
                client.reader.cancel()
                with contextlib.suppress(BaseException):
                    await client.reader

        await asyncio.gather(*(one(c) for c in self.clients))
        self.clients.clear()
