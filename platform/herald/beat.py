"""Celery beat that is safe to run twice: only the holder of a lease in Redis sends.

The chart runs one beat (strategy ``Recreate``), but two can still overlap: a node cut off
rather than dead, a rollout that goes wrong, ``bin/run`` started twice against one deployment.
Two plain beats would each send every periodic job. ``LeaderScheduler`` (the
``CELERY_BEAT_SCHEDULER``) keeps Celery's own file-backed schedule and adds a lease:

- **The lease** is one Redis key, ``<namespace>:beat:leader`` (``herald.redisio``), holding
  its holder's token (``host:pid:random``), ``BEAT_LEASE_SECONDS`` (15) long. It is taken with
  ``SET NX PX``, renewed with a compare-and-set script (only while the key still holds our
  token) and released on shutdown with a compare-and-delete: redis-py's ``Lock``
  (``acquire``, ``reacquire``, ``release``), never blocking.
- **The leader** renews at the start of every tick, and a tick sends at most one task, so
  every task it sends follows a renewal of its own. It ticks at least every third of the lease.
  A tick that finds the lease taken over, or Redis not answering, sends nothing: a leader
  stalled longer than the lease (stopped, swapped out) is a follower when it wakes. If the
  stall falls between a renewal and the send it allowed, the send is refused once the lease
  could have lapsed, counted from before the renewal was asked for. What remains is a stall
  inside the few lines that publish one message.
- **A follower** tries to take the lease every tenth of it (at most every second). A leader that
  dies without releasing (killed, its node gone) is replaced at most one lease plus one
  follower tick after its last renewal: 16 s with the defaults. One that stops normally
  releases at once, so a ``Recreate`` rollout loses no time.
- **A new leader runs every job once at once.** Each beat keeps last-run times in its own file,
  so a follower that takes over finds every job overdue. That is harmless because every
  periodic task is idempotent and safe to run concurrently with itself: ``release_due_sends``
  claims sends with ``SKIP LOCKED``; ``sweep_deliveries`` and ``close_due_digests`` only give
  turns, which are Redis slots taken with ``SET NX``, after a fold of the due-work hints that
  one fold at a time does (``tenants.due``); ``rollup_usage`` folds records with one
  ``DELETE ... RETURNING`` (see ``notifications/tasks.py``, ``billing_stub/tasks.py``). The
  same holds for the short overlap the lease cannot rule out (above). A task added to
  ``CELERY_BEAT_SCHEDULE`` must be too.
- **Redis down.** Beat keeps running and sends nothing (the broker is that Redis anyway); it
  says so once, tries again every follower tick, and leads again once it holds the lease.
  Exiting instead would only make a crash loop.

Why not celery-redbeat (2.4.2), the maintained scheduler with a beat lock: it moves the schedule
itself into Redis, which Herald treats as a cache and broker it may lose (a restart without its
data, an evicting ``maxmemory-policy``); its entries are installed only when beat starts, so an
evicted entry's job stops until a restart. And it exits on any Redis error: with Celery 5.7 and
redis-py 8.1 a beat that lost Redis exited, and one started while Redis was down exited at once,
a crash loop. celery-singleton deduplicates queued tasks by their arguments, which is not "once
per interval". The lease itself is redis-py's; what is written here is when to hold it.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from django.conf import settings
from redis.exceptions import LockError, RedisError

from herald.redisio import Client, redis_key

logger = logging.getLogger(__name__)


def lease_name() -> str:
    """The Redis key of beat's lease in this deployment."""
    return redis_key("beat", "leader")


class Lease:
    """A lease on one Redis key: held by the one whose token the key holds, for ``seconds``
    after its last renewal. Redis errors propagate."""

    def __init__(self, client: Client, name: str, seconds: float) -> None:
        self.name = name
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self._client = client
        self._lock = client.lock(name, timeout=seconds, thread_local=False)

    def hold(self) -> bool:
        """Renew the lease if it is ours, else take it if it is free; False while another
        holds it."""
        try:
            return self._lock.reacquire()
        except LockError:  # not ours: never taken, or taken over after it lapsed
            return self._lock.acquire(blocking=False, token=self.token)

    def release(self) -> bool:
        """Give the lease up if it is still ours; another holder's is left alone."""
        try:
            self._lock.release()
        except LockError:
            return False
        return True

    def holder(self) -> str | None:
        """The token of whoever holds the lease now."""
        token = self._client.get(self.name)
        return token.decode() if isinstance(token, bytes) else token


class LeaderScheduler(PersistentScheduler):
    """Celery's file-backed scheduler, sending only while it holds the lease (module docstring).

    Beat may build a scheduler lazily just to print its banner: nothing touches Redis before
    the first tick."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lease_seconds = float(settings.BEAT_LEASE_SECONDS)
        # Celery's __init__ sets max_interval (seconds: any number) from its configuration.
        interval = self.max_interval if self.max_interval is not None else math.inf
        self.max_interval = min(interval, self.lease_seconds / 3)  # type: ignore[assignment]  # celery-types says int
        self.follow_interval = min(1.0, self.lease_seconds / 10)
        self._lease: Lease | None = None
        self._state = "starting"  # then leading, following or unreachable
        self._send_until = 0.0  # monotonic time after which the last renewal proves nothing

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lease():
            return self.follow_interval
        return super().tick(*args, **kwargs)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if time.monotonic() >= self._send_until:
            logger.warning(
                "beat: not sending %s: stalled since the lease was renewed, it may have lapsed",
                entry.name,
            )
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        if self._lease is not None and self._state == "leading":
            try:
                if self._lease.release():
                    logger.info("beat: lease released")
            except RedisError as exc:
                logger.warning("beat: could not release the lease (%s); it lapses by itself", exc)
            self._state = "stopped"
        super().close()

    @property
    def info(self) -> str:
        return f"{super().info}\n    . lease -> {lease_name()} ({self.lease_seconds:g}s)"

    def _hold_lease(self) -> bool:
        asked_at = time.monotonic()
        if self._lease is None:
            from herald.redisio import shared_redis  # the process's one client

            self._lease = Lease(shared_redis(), lease_name(), self.lease_seconds)
        try:
            held = self._lease.hold()
            state = "leading" if held else "following"
            holder = None if held or self._state == "following" else self._lease.holder()
        except RedisError as exc:
            held, state, holder = False, "unreachable", None
            if self._state != state:
                logger.error("beat: Redis does not answer (%s); sending nothing until it does", exc)
        self._send_until = asked_at + self.lease_seconds if held else 0.0
        if state == self._state:
            return held
        if state == "leading":
            logger.info("beat: leading (holding %s as %s)", self._lease.name, self._lease.token)
        elif state == "following":
            level = logging.WARNING if self._state == "leading" else logging.INFO
            logger.log(level, "beat: following: %s holds the lease", holder or "another beat")
        self._state = state
        return held
