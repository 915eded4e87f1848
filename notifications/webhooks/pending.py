"""When a tenant next has a webhook event to deliver: the part of ``deliveries_pending`` that
is webhooks' (``services.deliveries``), kept apart from the engine (``webhooks.delivery``),
which builds on the outbox services, so that those can ask without importing it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from notifications.models import WebhookDelivery, WebhookEndpoint


def webhooks_due(*, now: datetime) -> datetime | None:
    """The earliest moment a queued event of an enabled endpoint can be delivered: its own
    retry time (``locked_until``) or its endpoint's lease (``busy_until``, another turn is
    delivering to it), whichever is later; None when nothing is queued. A disabled endpoint's
    events wait, unclaimed, until it is enabled again. Call in the tenant's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT min(GREATEST(q.ready_at, coalesce(e.busy_until, %(now)s)))
            FROM {WebhookEndpoint._meta.db_table} e
            JOIN LATERAL (
                SELECT min(coalesce(d.locked_until, %(now)s)) AS ready_at
                FROM {WebhookDelivery._meta.db_table} d
                WHERE d.endpoint_id = e.id AND d.status = %(queued)s
                HAVING count(*) > 0) q ON true
            WHERE e.enabled
            """,  # noqa: S608 -- only the models' table names are interpolated
            {"now": now, "queued": WebhookDelivery.Status.QUEUED},
        )
        row = cursor.fetchone()
    due: datetime | None = row[0] if row else None
    return due
