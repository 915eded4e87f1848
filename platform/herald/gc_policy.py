"""Keep a web process's long-lived objects out of its full garbage collections.

A process holding 1,000 WebSockets tracks some 200,000 objects, about 200 per connection, and
each full collection walks every one of them with the event loop stopped: 110 to 225 ms, several
times a minute under sends. Python's collector cannot tell an open connection, which lives for
hours, from a request's leftovers.

So every ``WEB_GC_FREEZE_SECONDS`` the process collects what it allocated since the last time
and freezes what survives (``gc.freeze``): the open connections move to the permanent generation,
which no collection walks, and each later collection only walks what is new. A frozen object is
still freed by reference counting when it is dropped; a closed connection is (nothing of it is
left in reference cycles: ``tests/notifications/test_realtime.py`` checks that).

What a freeze must not catch is a request in flight: a request's objects form reference cycles
(Django's request and its messages storage, DRF's view, request and response), which become
garbage when it ends, and frozen garbage is never collected. So a freeze waits for a moment with
no HTTP request and no WebSocket database call in flight in this process. It runs on the event
loop, where both start, so none can start during it. Once an hour everything is thawed and
walked in one full collection, which frees whatever frozen garbage there is (one full pause an
hour, not several a minute).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from herald import logs

logger = logging.getLogger(__name__)

THAW_SECONDS = 3600.0
RETRY_SECONDS = 0.05  # wait for a moment without a request in flight

_in_flight = 0  # HTTP requests and WebSocket database calls; touched on the event loop only


def work_started() -> None:
    global _in_flight
    _in_flight += 1


def work_finished() -> None:
    global _in_flight
    _in_flight -= 1


class Freezer:
    """One per process: the periodic collect-and-freeze, started by the first WebSocket."""

    def __init__(self, interval: float, thaw_interval: float = THAW_SECONDS) -> None:
        self.interval = interval
        self.thaw_interval = thaw_interval
        self._task: asyncio.Task[None] | None = None
        self._last_thaw = time.monotonic()

    def ensure_running(self) -> None:
        if self.interval <= 0 or (self._task is not None and not self._task.done()):
            return
        self._task = logs.start_unbound(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            while not self.freeze_if_idle():
                await asyncio.sleep(RETRY_SECONDS)

    def freeze_if_idle(self) -> bool:
        """Collect and freeze unless a request or database call is in flight; True when it did."""
        if _in_flight:
            return False
        started = time.perf_counter()
        thaw = time.monotonic() - self._last_thaw >= self.thaw_interval
        if thaw:
            gc.unfreeze()
            self._last_thaw = time.monotonic()
        gc.collect()
        gc.freeze()
        logger.debug(
            "GC %s in %.1f ms; %d objects frozen",
            "thaw, full collection and freeze" if thaw else "collection and freeze",
            (time.perf_counter() - started) * 1000,
            gc.get_freeze_count(),
        )
        return True


_freezer: Freezer | None = None


def freezer() -> Freezer:
    """This process's freezer (``WEB_GC_FREEZE_SECONDS``; 0 turns it off)."""
    global _freezer
    if _freezer is None:
        from django.conf import settings

        _freezer = Freezer(settings.WEB_GC_FREEZE_SECONDS)
    return _freezer
