"""What a running turn holds, kept while it works and let go of when its worker dies.

A turn holds its slot (a Redis key, ``services.turns``) and a lease on each row it claimed (a
delivery's or a digest batch's ``locked_until``, a webhook endpoint's ``busy_until``), each for
``DELIVERY_LEASE_SECONDS`` (30). A heartbeat thread renews them every
``DELIVERY_HEARTBEAT_SECONDS`` (10) for as long as the turn runs, so a batch may take as long
as its channel's service makes it. When the worker dies the heartbeat dies with it: slot and
rows are free again within one lease, and the sweep (beat) gives the tenant a new turn.

A row is held from its claim until just before its outcome is recorded; the lock makes the
renewal and the letting go follow each other, so a renewal never overwrites a retry's time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications.services.delivery_machine import lease_end
from tenants.entry import in_schema

logger = logging.getLogger(__name__)


class Leased(Protocol):
    """Rows a turn leases: a queue of the state machine (``delivery_machine.Queue``) or any
    other table whose rows a turn holds (webhook endpoints while a turn delivers to them).
    Hashed by identity: one instance per kind of row."""

    @property
    def model(self) -> Any: ...  # the model class (a Django model, whose manager is untyped)
    @property
    def held(self) -> dict[str, Any]: ...  # the rows a lease holds (renewal filters on it)
    @property
    def lease_field(self) -> str: ...  # the lease's column


class Holding:
    """The rows one turn has claimed and not yet recorded, per kind of row (``Leased``).
    Shared by the turn, its threads and its heartbeat thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Leased, set[int]] = {}

    def hold(self, queue: Leased, ids: Iterable[int]) -> None:
        with self._lock:
            self._held.setdefault(queue, set()).update(ids)

    def let_go(self, queue: Leased, row_id: int) -> None:
        """Call before recording the row's outcome (or its retry time)."""
        with self._lock:
            self._held.get(queue, set()).discard(row_id)

    def renew(self) -> None:
        """Extend the lease of every row still held by one lease from now. Call in the
        tenant's schema."""
        with self._lock:
            lease = lease_end(timezone.now())
            for queue, ids in self._held.items():
                if ids:
                    queue.model._default_manager.filter(pk__in=list(ids), **queue.held).update(
                        **{queue.lease_field: lease}
                    )


@contextmanager
def heartbeat(*, schema_name: str, beat: Callable[[], None]) -> Iterator[None]:
    """Call ``beat`` every ``DELIVERY_HEARTBEAT_SECONDS`` in a thread of its own, in the
    tenant's schema, until the block ends. A failed beat is logged and the next one tries
    again; the lease is three beats long."""
    stop = threading.Event()

    def run() -> None:
        try:
            with in_schema(schema_name):
                while not stop.wait(settings.DELIVERY_HEARTBEAT_SECONDS):
                    try:
                        beat()
                    except Exception:
                        logger.warning("Heartbeat failed in %s", schema_name, exc_info=True)
        finally:
            connection.close()  # this thread's own connection, if it opened one

    thread = threading.Thread(target=run, name=f"heartbeat-{schema_name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
