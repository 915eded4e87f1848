"""Catching up after a gap in the real-time bus, batched over the connections of a process.

When the dispatcher's subscription comes back after a gap (see ``herald.realtime``), every
connection that was open meanwhile asks ``catch_up`` what it missed. The requests of one turn of
the event loop are answered together: per tenant and ``USERS_PER_STATEMENT`` connections, one
statement takes each user's unread count and, among the user's newest ``SCAN_LIMIT``
notifications (an index range, however long the inbox), the ids created since the gap began
(less a margin: ids do not commit in id order) and the ids read since then, all from one
snapshot; a second statement fetches the payloads of only the ids that some connection does not
know yet. Ten thousand sockets are thus a few dozen statements, run one after another on
Channels' database thread, not ten thousand at once. A user who missed more than ``MAX_MISSED``
(or whose whole scan falls in the window) is refused with ``TooFarBehind``: that connection
closes and pages through its backlog with ``since``.

What a connection then sends, before any newer live event: the missed notifications, oldest
first; a ``read`` frame with the ids read meanwhile (another tab, the REST API), if any; and a
fresh ``unread_count``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from herald import logs
from notifications.events import notification_payload, notification_rows
from notifications.models import Notification
from notifications.rules import unread_sql
from tenants.entry import run_in_schema

logger = logging.getLogger(__name__)

KNOWN_WINDOW_SECONDS = 60  # a notification may commit (and be published) this long after its id
USERS_PER_STATEMENT = 500
IDS_PER_STATEMENT = 2000
MAX_MISSED = 1000  # more than this for one user: close (4503) and let ``since`` page through it
SCAN_LIMIT = 2000  # newest notifications per user looked at; all in the window: too far behind


class TooFarBehind(Exception):
    """More was missed than a connection replays in place."""


@dataclass
class CatchUp:
    """What one connection missed: sent in this order, then its live queue."""

    window_ids: list[int]  # every id created in the window: known once this is sent
    notifications: list[dict[str, Any]]  # the payloads of the ids it did not know, oldest first
    read_ids: list[int]  # read since the gap began
    unread: int


@dataclass
class _Request:
    schema_name: str
    user_id: int
    known: set[int] = field(repr=False)
    cutoff: dt.datetime
    future: asyncio.Future[CatchUp] = field(repr=False)


_pending: list[_Request] = []
_answering: set[asyncio.Task[None]] = set()  # (the loop keeps only weak references to tasks)


def catch_up(
    *, schema_name: str, user_id: int, known: set[int], lost_at: float
) -> asyncio.Future[CatchUp]:
    """What a connection of ``user_id`` that knows the ids ``known`` missed since ``lost_at``
    (Unix time): a future, answered together with the other requests of this turn of the event
    loop. It fails if the database does, and with ``TooFarBehind`` for more than ``MAX_MISSED``
    unseen notifications. ``known`` is read on the event loop, never on the database thread."""
    loop = asyncio.get_running_loop()
    cutoff = dt.datetime.fromtimestamp(lost_at - KNOWN_WINDOW_SECONDS, tz=dt.UTC)
    request = _Request(schema_name, user_id, known, cutoff, loop.create_future())
    if not _pending:
        task = logs.start_unbound(_answer_pending())
        _answering.add(task)
        task.add_done_callback(_answering.discard)
    _pending.append(request)
    return request.future


async def _answer_pending() -> None:
    requests = _pending[:]
    _pending.clear()
    by_schema: dict[str, list[_Request]] = defaultdict(list)
    for request in requests:
        by_schema[request.schema_name].append(request)
    for schema_name, group in by_schema.items():
        for start in range(0, len(group), USERS_PER_STATEMENT):
            chunk = group[start : start + USERS_PER_STATEMENT]
            try:
                await _answer(schema_name, chunk)
            except Exception as exc:  # the database is down too: those connections close
                logger.warning("Catch-up after a real-time gap failed", exc_info=True)
                for request in chunk:
                    if not request.future.done():
                        request.future.set_exception(exc)


async def _answer(schema_name: str, requests: list[_Request]) -> None:
    cutoff = min(request.cutoff for request in requests)
    users = sorted({request.user_id for request in requests})
    state = await run_in_schema(schema_name, lambda: _inbox_state(users, cutoff))

    unseen: dict[int, list[int]] = {}
    wanted: set[int] = set()
    for request in requests:
        if request.future.done():  # the connection closed meanwhile
            continue
        _count, window, _read = state[request.user_id]
        missing = [i for i in window if i not in request.known]
        if len(missing) > MAX_MISSED or len(window) >= SCAN_LIMIT:
            request.future.set_exception(TooFarBehind(f"{len(missing)} notifications missed"))
            continue
        unseen[id(request)] = missing
        wanted.update(missing)
    payloads = await run_in_schema(schema_name, lambda: _payloads(wanted)) if wanted else {}

    for request in requests:
        if request.future.done():
            continue
        count, window, read = state[request.user_id]
        request.future.set_result(
            CatchUp(
                window_ids=window,
                notifications=[payloads[i] for i in unseen[id(request)] if i in payloads],
                read_ids=read,
                unread=count,
            )
        )


def inbox_state_sql() -> str:
    """The statement of ``_inbox_state`` (parameters ``users``, ``cutoff``, ``scan``)."""
    table = Notification._meta.db_table
    return f"""
        SELECT u.id,
          (SELECT count(*) FROM {table} n
           WHERE n.recipient_id = u.id AND {unread_sql("n")}),
          r.created, r.read
        FROM unnest(%(users)s::bigint[]) AS u(id)
        CROSS JOIN LATERAL (
          SELECT
            coalesce(array_agg(x.id ORDER BY x.id)
                     FILTER (WHERE x.created_at > %(cutoff)s), '{{}}') AS created,
            coalesce(array_agg(x.id ORDER BY x.id)
                     FILTER (WHERE x.read_at > %(cutoff)s), '{{}}') AS read
          FROM (SELECT n.id, n.created_at, n.read_at FROM {table} n
                WHERE n.recipient_id = u.id ORDER BY n.id DESC LIMIT %(scan)s) x
        ) r
    """  # noqa: S608 -- only the model's table name is interpolated


def _inbox_state(
    users: list[int], cutoff: dt.datetime
) -> dict[int, tuple[int, list[int], list[int]]]:
    """Per user, from one snapshot: the unread count, and among the user's newest ``SCAN_LIMIT``
    notifications (an index range, however long the inbox) the ids created after ``cutoff`` and
    the ids read after it, in id order. A window as long as the scan may go on beyond it."""
    with connection.cursor() as cursor:
        cursor.execute(inbox_state_sql(), {"users": users, "cutoff": cutoff, "scan": SCAN_LIMIT})
        return {user: (count, created, read) for user, count, created, read in cursor.fetchall()}


def _payloads(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ordered = sorted(ids)
    payloads: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ordered), IDS_PER_STATEMENT):
        rows = notification_rows(
            Notification.objects.filter(id__in=ordered[start : start + IDS_PER_STATEMENT])
        )
        for row in rows:
            payloads[row["id"]] = notification_payload(row)
    return payloads
