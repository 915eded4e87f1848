"""The webhook event outbox: one ``WebhookDelivery`` row per (event, subscribed endpoint),
written in the transaction that causes the event.

This is the transactional outbox pattern. The event's rows commit or roll back with its cause
(the notifications of a send, a notification marked read, a delivery's final status), so a
receiver never hears of a send that rolled back, and no event is lost when a process dies
between the commit and the enqueue: the committed rows wait, ``queued``, for the tenant's next
turn (or the sweep). The delivery work reads them only once committed, builds each ``body`` at
its first attempt and signs it with the event's ``msg_id``.

Every writer is one ``INSERT ... SELECT`` for a whole batch of the event's subjects, joined
with the tenant's enabled endpoints whose ``events`` is empty or names the event and whose
``types`` is empty or names the subject's type key; never a loop over recipients. Where the
cause is written by one statement (a send's notifications, marking all read), the insert is a
data-modifying CTE of that statement over its ``RETURNING`` rows (``folded``), so the subjects
are never read again. The hottest of them (a send's fast path, marking all read) first ask, in
one trivial query, whether any endpoint takes the event at all (``webhooks_subscribed``), and
fold the insert in only then: for a tenant without a subscribed endpoint (the common case) that
round trip costs less than planning the insert and starting it on an indexed table, every time.
The rows are ``queued``, with ``msg_id`` made by PostgreSQL (the form of
``events.webhook_message_id``), ``occurred_at``, ``created_at`` and ``updated_at`` the event's
time, and ``body`` blank.

Call inside the tenant's schema, in the transaction that writes the cause.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from django.db import connection

from notifications.models import (
    Delivery,
    Notification,
    NotificationType,
    Send,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.webhooks.events import (
    DELIVERY_FAILED,
    DELIVERY_SENT,
    NOTIFICATION_CREATED,
    NOTIFICATION_READ,
    WEBHOOK_EVENTS,
    WebhookEventName,
)
from tenants.models import Tenant

# The final statuses of a delivery that are events; others (skipped, suppressed) are not.
DELIVERY_EVENTS: dict[str, Literal["delivery.sent", "delivery.failed"]] = {
    Delivery.Status.SENT: DELIVERY_SENT,
    Delivery.Status.FAILED: DELIVERY_FAILED,
}


def _takes(*, event: str, type_key: str | None) -> str:
    """SQL: endpoint ``e`` is enabled and takes ``event`` (SQL) of type ``type_key`` (SQL; None:
    of some type). The one rule of what an endpoint receives: empty ``events`` or ``types``
    means all of them."""
    types = (
        "" if type_key is None else f"AND (cardinality(e.types) = 0 OR {type_key} = ANY(e.types))"
    )
    return f"e.enabled AND (cardinality(e.events) = 0 OR {event} = ANY(e.events)) {types}"


def _insert_sql(
    event: WebhookEventName,
    *,
    subjects: str,
    subject: Literal["notification_id", "delivery_id"],
    type_key: str,
    now: str,
) -> str:
    """``INSERT ... SELECT`` of ``event`` for every row of ``subjects`` (a FROM item whose ``id``
    is the subject's) and every subscribed endpoint, returning one row per row written.

    ``type_key`` and ``now`` are SQL (a placeholder, or an expression over ``s``, the subject):
    the subject's type key and the event's time. The event name is one of ``WEBHOOK_EVENTS``,
    written into the SQL as a literal."""
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"Not a webhook event: {event!r}.")
    return f"""
        INSERT INTO {WebhookDelivery._meta.db_table}
            (endpoint_id, event, msg_id, {subject}, body, occurred_at, status, attempts,
             last_error, created_at, updated_at)
        SELECT e.id, '{event}', 'msg_' || replace(gen_random_uuid()::text, '-', ''), s.id, '',
               {now}, '{WebhookDelivery.Status.QUEUED.value}', 0, '', {now}, {now}
        FROM {WebhookEndpoint._meta.db_table} AS e
        JOIN {subjects} AS s ON true
        WHERE {_takes(event=f"'{event}'", type_key=type_key)}
        ORDER BY s.id, e.id
        RETURNING 1
    """  # noqa: S608 -- interpolates table names, event names and SQL of the callers; values are bound


def created_events_sql(*, created: str, type_key: str, now: str) -> str:
    """The ``notification.created`` events of a send's fan-out, for a data-modifying CTE of the
    statement that inserts the notifications: one per row of the CTE ``created`` (the inserted
    notifications' ``id``) for each endpoint subscribed to ``type_key`` (SQL: the send's type
    key), at ``now`` (SQL). Select ``count(*)`` of the CTE for ``webhook_events_written``."""
    return _insert_sql(
        NOTIFICATION_CREATED, subjects=created, subject="notification_id", type_key=type_key,
        now=now,
    )  # fmt: skip


def read_events_sql(*, changed: str, now: str) -> str:
    """The ``notification.read`` events of notifications that just became read, for a
    data-modifying CTE of the statement that marks them: one per row of the CTE ``changed``
    (the notifications' ``id`` and ``type_id``), at ``now`` (SQL). Select ``count(*)`` of the
    CTE for ``webhook_events_written``."""
    types = NotificationType._meta.db_table
    type_key = f"(SELECT t.key FROM {types} t WHERE t.id = s.type_id)"  # noqa: S608 -- a table name
    return _insert_sql(
        NOTIFICATION_READ, subjects=changed, subject="notification_id", type_key=type_key, now=now
    )


def webhooks_subscribed(event: WebhookEventName, type_key: str | None = None) -> bool:
    """Whether an enabled endpoint takes ``event`` (of type ``type_key``, if given): one query
    over the tenant's few endpoints, before the statement that writes the event's cause."""
    takes = _takes(event="%(event)s", type_key=None if type_key is None else "%(type_key)s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {WebhookEndpoint._meta.db_table} e WHERE {takes})",  # noqa: S608 -- a table name and SQL of this module; values are bound
            {"event": event, "type_key": type_key},
        )
        return bool(cursor.fetchone()[0])


def folded(insert_sql: str, *, subscribed: bool) -> tuple[str, str]:
    """What a statement that writes an event's cause adds for its events (``insert_sql``, from
    ``created_events_sql`` or ``read_events_sql``): a data-modifying CTE to append to its
    ``WITH`` list (it starts with a comma), and the SQL of the number of rows it wrote, to
    select for ``webhook_events_written``. Nothing, and ``0``, when not ``subscribed``."""
    if not subscribed:
        return "", "0"
    return f", webhooked AS ({insert_sql})", "(SELECT count(*) FROM webhooked)"


def webhook_events_written(*, tenant: Tenant, count: int, now: datetime) -> int:
    """``count`` outbox rows were written in this transaction: ask for their delivery once it
    commits (nothing when none). Returns ``count``."""
    if count:
        _enqueue(tenant=tenant, count=count, now=now)
    return count


def webhook_events_for_read(
    *, tenant: Tenant, notification_ids: Collection[int], now: datetime
) -> int:
    """Write ``notification.read`` for notifications that just became read (their state
    changed in this transaction), in one statement. Returns how many rows it wrote."""
    if not notification_ids:
        return 0
    subjects = f"""(SELECT id, type_id FROM {Notification._meta.db_table}
                    WHERE id = ANY(%(ids)s::bigint[]))"""  # noqa: S608 -- a table name
    return _write(
        tenant,
        read_events_sql(changed=subjects, now="%(now)s"),
        {"ids": list(notification_ids), "now": now},
        now,
    )


def webhook_events_for_deliveries(
    *, tenant: Tenant, delivery_ids: Collection[int], status: str, now: datetime
) -> int:
    """Write ``delivery.sent`` or ``delivery.failed`` for deliveries that just reached that
    final ``status`` in this transaction (a single delivery, or a digest's items), in one
    statement; nothing for another status. Returns how many rows it wrote."""
    event = DELIVERY_EVENTS.get(status)
    if event is None or not delivery_ids:
        return 0
    subjects = f"""(SELECT d.id, t.key AS type_key
                    FROM {Delivery._meta.db_table} d
                    JOIN {Send._meta.db_table} sn ON sn.id = d.send_id
                    JOIN {NotificationType._meta.db_table} t ON t.id = sn.type_id
                    WHERE d.id = ANY(%(ids)s::bigint[]))"""  # noqa: S608 -- table names
    sql = _insert_sql(
        event, subjects=subjects, subject="delivery_id", type_key="s.type_key", now="%(now)s"
    )
    return _write(tenant, sql, {"ids": list(delivery_ids), "now": now}, now)


def _write(tenant: Tenant, sql: str, params: dict[str, Any], now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = int(cursor.rowcount)
    return webhook_events_written(tenant=tenant, count=written, now=now)


def _enqueue(*, tenant: Tenant, count: int, now: datetime) -> None:
    """A webhook turn for the tenant once the transaction commits, and a due hint for the
    sweep (``webhooks.delivery.webhooks_enqueue``)."""
    # Imported here: the engine imports services.deliveries, which writes its delivery events
    # through this module.
    from notifications.webhooks.delivery import webhooks_enqueue

    webhooks_enqueue(tenant=tenant, count=count, now=now)
