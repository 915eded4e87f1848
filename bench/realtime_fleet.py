"""WebSocket clients spread over several processes, for ``bench/realtime.py``.

One asyncio loop reads the frames of a few thousand sockets well, but not of 10,000 while the
server it measures shares the machine: a frame waits for the loop as long as the loop is busy
with the others, and that wait would count as delivery time. ``RemoteFleet`` has the surface of
``realtime_client.Fleet`` (open, expect, wait, ping_all, status, close) and runs the clients in
``--client-processes`` processes of this script, each one ``Fleet`` on its own loop.

Every arrival is timestamped in the client process as its frame is read, with
``time.perf_counter()`` (CLOCK_MONOTONIC on Linux: one clock for every process of the machine), so
the parent compares it with the time of its own API call or PUBLISH. During a broadcast a client
process writes nothing but one short ``done`` line per tag once all of its expected clients have
it; the timestamps themselves travel afterwards, when the parent collects them.

Protocol, one JSON document per line. In (stdin), each with an ``id``: ``open`` (targets,
concurrency), ``expect`` (tag, client indices; no answer until ``{"event": "done", "tag": ...}``),
``collect`` (tags: the arrival times of the clients expected for each, then forgotten),
``status`` (open connections, close codes), ``ping_all``, ``close`` (then the process ends).
Out (stdout): ``{"reply": id, ...}`` per command, and the ``done`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime_client import Client, Fleet, Target, cpu_seconds, raise_nofile_limit

READ_LIMIT = 1 << 26  # one line can carry 10,000 clients' targets or timestamps


# --- The client process ---------------------------------------------------------------------------


class Worker:
    """One client process: a ``Fleet`` driven by commands on stdin."""

    def __init__(self, port: int, compression: str | None, kind: str) -> None:
        self.fleet = Fleet(port, compression=compression, kind=kind)
        self.by_index: dict[int, Client] = {}
        self.expected: dict[str, list[int]] = {}
        self.watchers: set[asyncio.Task[None]] = set()

    def emit(self, document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    async def handle(self, command: dict[str, Any]) -> dict[str, Any] | None:
        op = command["op"]
        fleet = self.fleet
        if op == "open":
            targets = [
                Target(label=label, uri=uri, user_id=user_id, port=port)
                for _index, label, uri, port, user_id in command["targets"]
            ]
            indices = [target[0] for target in command["targets"]]
            failures_before = len(fleet.failures)
            first_frames_before = Counter(fleet.first_frames)
            seconds = await fleet.open(
                targets, command["concurrency"], indices=indices, strict=False
            )
            for client in fleet.clients:
                self.by_index[client.index] = client
            failures = fleet.failures[failures_before:]
            return {
                "seconds": seconds,
                "opened": len(targets) - len(failures),
                "failed": len(failures),
                "error": repr(failures[0]) if failures else None,
                "extensions": sorted(fleet.extensions),
                "first_frames": dict(fleet.first_frames - first_frames_before),
            }
        if op == "expect":
            tag = command["tag"]
            indices = command["indices"]
            self.expected[tag] = indices
            expectation = fleet.expect(tag, [self.by_index[i] for i in indices])
            watcher = asyncio.create_task(self._signal_done(tag, expectation.done))
            self.watchers.add(watcher)
            watcher.add_done_callback(self.watchers.discard)
            return None
        if op == "collect":
            times: dict[str, list[tuple[int, float]]] = {}
            for tag in command["tags"]:
                fleet.expectations.pop(tag, None)
                times[tag] = [
                    (i, self.by_index[i].received[tag])
                    for i in self.expected.pop(tag, [])
                    if tag in self.by_index[i].received
                ]
            return {"times": times}
        if op == "status":
            still, codes = fleet.status()
            return {"open": still, "close_codes": [[code, n] for code, n in codes.items()]}
        if op == "ping_all":
            still, answered = await fleet.ping_all(command["timeout"])
            return {"open": still, "answered": answered}
        if op == "close":
            await fleet.close()
            return {}
        raise ValueError(f"unknown command {op!r}")

    async def _signal_done(self, tag: str, done: asyncio.Event) -> None:
        await done.wait()
        if tag in self.expected:
            self.emit({"event": "done", "tag": tag})

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_LIMIT)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
        )
        running: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            command = json.loads(line)

            async def run(command: dict[str, Any] = command) -> None:
                try:
                    answer = await self.handle(command)
                except Exception as exc:  # reported to the parent, which raises it
                    answer = {"error": repr(exc)}
                if answer is not None:
                    self.emit({"reply": command["id"], **answer})

            if command["op"] == "close":
                await asyncio.gather(*running, return_exceptions=True)
                await run()
                return
            # Commands run side by side: an ``expect`` must not wait behind a ``ping_all``.
            task = asyncio.create_task(run())
            running.add(task)
            task.add_done_callback(running.discard)


def worker_main() -> None:
    parser = argparse.ArgumentParser(description="one client process of bench/realtime.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    parser.add_argument("--client", choices=["lean", "websockets"], default="lean")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    raise_nofile_limit()
    compression = None if args.compression == "none" else "deflate"
    worker = Worker(args.port, compression, args.client)
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(worker.serve())
            return
    asyncio.run(worker.serve())


# --- The parent's side ----------------------------------------------------------------------------


@dataclass
class RemoteClient:
    """The parent's view of one client in a client process."""

    index: int
    label: str
    user_id: int = 0
    port: int = 0
    received: dict[str, float] = field(default_factory=dict)


@dataclass
class _Waiting:
    """A tag expected from some client processes; ``done`` fires when all have signalled."""

    processes: set[int]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _Process:
    """One client process and its stdout reader."""

    def __init__(self, number: int, process: asyncio.subprocess.Process, fleet: RemoteFleet):
        self.number = number
        self.process = process
        self.fleet = fleet
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "reply" in message:
                future = self.replies.pop(message["reply"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.get("event") == "done":
                self.fleet._done(message["tag"], self.number)
        for future in self.replies.values():
            if not future.done():
                future.set_exception(RuntimeError(f"client process {self.number} exited"))

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command, separators=(",", ":")).encode() + b"\n")

    async def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        number = self.fleet._next_id()
        future = asyncio.get_running_loop().create_future()
        self.replies[number] = future
        self.send({**command, "id": number})
        answer = await asyncio.wait_for(future, timeout)
        if "error" in answer and answer["error"] and command["op"] != "open":
            raise RuntimeError(f"client process {self.number}: {answer['error']}")
        return answer


class RemoteFleet:
    """``realtime_client.Fleet``'s surface over ``processes`` client processes (see the module
    docstring). Each ``open`` deals its targets out in contiguous runs, one per process."""

    def __init__(
        self,
        port: int,
        *,
        processes: int,
        compression: str | None,
        kind: str = "lean",
        uvloop: bool = True,
        log_dir: Path,
        name: str = "clients",
    ) -> None:
        self.port = port
        self.size = max(1, processes)
        self.compression = compression
        self.kind = kind
        self.uvloop = uvloop
        self.log_dir = log_dir
        self.name = name
        self.processes: list[_Process] = []
        self.clients: list[RemoteClient] = []
        self.extensions: set[str] = set()
        self.first_frames: Counter[str] = Counter()
        self._owner: dict[int, int] = {}  # client index -> process number
        self._waiting: dict[str, _Waiting] = {}
        self._ids = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def start(self) -> RemoteFleet:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--port",
            str(self.port),
            "--compression",
            "deflate" if self.compression == "deflate" else "none",
            "--client",
            self.kind,
        ]
        if not self.uvloop:
            argv.append("--no-uvloop")
        for number in range(self.size):
            with (self.log_dir / f"{self.name}-{number}.log").open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=Path(__file__).resolve().parent,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    limit=READ_LIMIT,
                    preexec_fn=raise_nofile_limit,  # also done in the child; explicit here
                )
            self.processes.append(_Process(number, process, self))
        return self

    @property
    def pids(self) -> list[int]:
        return [p.process.pid for p in self.processes]

    def cpu_seconds(self) -> float:
        """CPU seconds of the client processes (and of this one, which drives them)."""
        total = time.process_time()
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    async def open(self, targets: Sequence[Target], concurrency: int = 50) -> float:
        """Connect every target (each process ``concurrency / processes`` at a time) and wait for
        each one's first frame; raises when any failed. Returns the seconds taken."""
        targets = list(targets)
        base = len(self.clients)
        chunk = -(-len(targets) // self.size)
        per_process = max(1, concurrency // self.size)
        asks = []
        for number, process in enumerate(self.processes):
            part = targets[number * chunk : (number + 1) * chunk]
            if not part:
                continue
            rows = []
            for offset, target in enumerate(part, number * chunk):
                index = base + offset
                self._owner[index] = number
                rows.append([index, target.label, target.uri, target.port, target.user_id])
            asks.append(
                process.ask(
                    {"op": "open", "targets": rows, "concurrency": per_process}, timeout=3600
                )
            )
        started = time.perf_counter()
        answers = await asyncio.gather(*asks)
        seconds = time.perf_counter() - started
        self.clients.extend(
            RemoteClient(index=base + i, label=t.label, user_id=t.user_id, port=t.port or self.port)
            for i, t in enumerate(targets)
        )
        failed = sum(a["failed"] for a in answers)
        for answer in answers:
            self.extensions.update(answer["extensions"])
            self.first_frames.update(answer["first_frames"])
        if failed:
            errors = [a["error"] for a in answers if a["error"]]
            raise RuntimeError(f"{failed} of {len(targets)} connections failed: {errors[0]}")
        return seconds

    def expect(self, tag: str, clients: Sequence[RemoteClient]) -> None:
        by_process: dict[int, list[int]] = {}
        for client in clients:
            by_process.setdefault(self._owner[client.index], []).append(client.index)
        waiting = self._waiting[tag] = _Waiting(processes=set(by_process))
        for number, indices in by_process.items():
            self.processes[number].send({"op": "expect", "id": 0, "tag": tag, "indices": indices})
        if not by_process:
            waiting.done.set()

    def _done(self, tag: str, number: int) -> None:
        waiting = self._waiting.get(tag)
        if waiting is not None:
            waiting.processes.discard(number)
            if not waiting.processes:
                waiting.done.set()

    async def wait(self, tags: Sequence[str], deadline: float) -> None:
        """Until every client expected for ``tags`` has its notification, or ``deadline``; then
        the arrival times are fetched into each client's ``received``."""
        waits = [self._waiting[tag].done.wait() for tag in tags]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*waits), timeout=max(0.0, deadline - time.perf_counter())
            )
        for tag in tags:
            self._waiting.pop(tag, None)
        answers = await asyncio.gather(
            *(p.ask({"op": "collect", "tags": list(tags)}, timeout=60) for p in self.processes)
        )
        for answer in answers:
            for tag, times in answer["times"].items():
                for index, at in times:
                    self.clients[index].received[tag] = at

    async def status(self) -> tuple[int, Counter[int | None]]:
        """How many connections are open, and the close codes of those that closed."""
        answers = await asyncio.gather(
            *(p.ask({"op": "status"}, timeout=60) for p in self.processes)
        )
        codes: Counter[int | None] = Counter()
        for answer in answers:
            for code, count in answer["close_codes"]:
                codes[code] += count
        return sum(a["open"] for a in answers), codes

    async def ping_all(self, timeout: float) -> tuple[int, int]:
        """``{"type":"ping"}`` on every open connection; returns (open, answered)."""
        answers = await asyncio.gather(
            *(
                p.ask({"op": "ping_all", "timeout": timeout}, timeout=timeout + 60)
                for p in self.processes
            )
        )
        return sum(a["open"] for a in answers), sum(a["answered"] for a in answers)

    async def close(self) -> None:
        """Close every connection, then end the client processes."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*(p.ask({"op": "close"}, timeout=120) for p in self.processes))
        for p in self.processes:
            if p.process.stdin is not None:
                with contextlib.suppress(OSError):
                    p.process.stdin.close()
            try:
                await asyncio.wait_for(p.process.wait(), 15)
            except TimeoutError:
                p.process.kill()
                await p.process.wait()
            p.reader.cancel()
            with contextlib.suppress(BaseException):
                await p.reader
        self.processes.clear()


if __name__ == "__main__":
    worker_main()
