"""An end user's changes to their own inbox. Every change keeps the unread count exact."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from herald.realtime import publish_on_commit
from notifications.events import InboxChangedMessage, inbox_changed_message
from notifications.models import EndUser, Notification
from notifications.unread import unread_changed_on_commit, unread_count
from notifications.webhooks.events import NOTIFICATION_READ
from notifications.webhooks.outbox import (
    folded,
    read_events_sql,
    webhook_events_for_read,
    webhook_events_written,
    webhooks_subscribed,
)
from tenants.entry import current_schema, in_schema
from tenants.models import Tenant

_READ_EVENTS = read_events_sql(changed="changed", now="%(now)s")


def _publish_inbox_changed(*, tenant: Tenant, user: EndUser, read_ids: list[int]) -> None:
    """After commit, tell the user's other connections (tabs) the new count and what was read."""
    schema = current_schema()

    def build() -> InboxChangedMessage:
        with in_schema(schema):
            count = unread_count(tenant_id=tenant.pk, user_id=user.pk)
        return inbox_changed_message(
            tenant_id=tenant.pk, user_id=user.pk, read_ids=read_ids, unread_count=count
        )

    publish_on_commit(build)


@transaction.atomic
def inbox_update(
    *,
    tenant: Tenant,
    user: EndUser,
    notification: Notification,
    is_read: bool | None,
    archived: bool | None,
) -> Notification:
    """Mark one of the user's notifications read/unread and/or archived/unarchived.

    ``notification`` must be the user's own (see selectors.inbox_notification_get).
    """
    now = timezone.now()
    fields = []
    if is_read is not None and notification.is_read != is_read:
        notification.read_at = now if is_read else None
        fields.append("read_at")
        if is_read and notification.seen_at is None:
            notification.seen_at = now
            fields.append("seen_at")
    if archived is not None and notification.archived != archived:
        notification.archived_at = now if archived else None
        fields.append("archived_at")
    if fields:
        notification.save(update_fields=fields)
        unread_changed_on_commit(tenant_id=tenant.pk, user_ids=[user.pk])
        read_ids = [notification.pk] if "read_at" in fields and notification.read_at else []
        webhook_events_for_read(tenant=tenant, notification_ids=read_ids, now=now)
        _publish_inbox_changed(tenant=tenant, user=user, read_ids=read_ids)
    return notification


@transaction.atomic
def inbox_mark_read(
    *, tenant: Tenant, user: EndUser, ids: Iterable[int] | None = None
) -> list[int]:
    """Mark the user's unread notifications read: those in ``ids``, or all of them.

    One statement whatever the number. Returns the ids that changed; ids of other users'
    notifications are ignored.
    """
    only = "" if ids is None else "AND id = ANY(%(ids)s)"
    now = timezone.now()
    webhooked, webhook_count = folded(
        _READ_EVENTS, subscribed=webhooks_subscribed(NOTIFICATION_READ)
    )
    # Not rules.UNREAD: archived notifications that were never read are marked read too, so
    # that unarchiving one does not bring back an unread item the user already cleared.
    # The same statement writes their notification.read webhook events, if any endpoint
    # takes them.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH changed AS (
                UPDATE {Notification._meta.db_table}
                SET read_at = %(now)s, seen_at = coalesce(seen_at, %(now)s)
                WHERE recipient_id = %(user)s AND read_at IS NULL {only}
                RETURNING id, type_id){webhooked}
            SELECT array_agg(id), {webhook_count} FROM changed
            """,
            {"now": now, "user": user.pk, "ids": list(ids or [])},
        )
        ids_changed, webhooked = cursor.fetchone()
    changed: list[int] = ids_changed or []
    webhook_events_written(tenant=tenant, count=webhooked, now=now)
    if changed:
        unread_changed_on_commit(tenant_id=tenant.pk, user_ids=[user.pk])
        _publish_inbox_changed(tenant=tenant, user=user, read_ids=changed)
    return changed
