"""Reads on a tenant's notification data. Call inside the tenant's schema.

Lookups for one object return None for "missing" and "not yours" alike, so callers answer the
same 404 for both.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from django.db import connection
from django.db.models import Count, QuerySet

from notifications.events import DELIVERY_VALUES
from notifications.models import (
    CHANNELS,
    IN_APP,
    Delivery,
    EndUser,
    Notification,
    NotificationType,
    Preference,
    PushSubscription,
    Send,
)
from notifications.rules import UNREAD, unread_sql
from notifications.type_keys import type_keys

InboxStatus = Literal["unread", "read", "archived", "all"]
INBOX_STATUSES: tuple[str, ...] = ("unread", "read", "archived", "all")


def end_user_get(*, external_id: str) -> EndUser | None:
    return EndUser.objects.filter(external_id=external_id).first()


def type_get(*, key: str) -> NotificationType | None:
    return NotificationType.objects.filter(key=key).first()


def type_list() -> QuerySet[NotificationType]:
    return NotificationType.objects.all()


def send_get(*, send_id: int) -> Send | None:
    return Send.objects.select_related("type", "topic").filter(pk=send_id).first()


def inbox(*, user: EndUser, status: InboxStatus) -> QuerySet[Notification]:
    """The user's notifications in one status; 'all' includes archived ones."""
    queryset = Notification.objects.filter(recipient=user)
    if status == "unread":
        return queryset.filter(UNREAD)
    if status == "read":
        return queryset.filter(read_at__isnull=False, archived_at__isnull=True)
    if status == "archived":
        return queryset.filter(archived_at__isnull=False)
    return queryset


_INBOX_FILTERS = {  # the predicates of selectors.inbox, for inbox_page's SQL
    "unread": f"AND {unread_sql('n')}",
    "read": "AND n.read_at IS NOT NULL AND n.archived_at IS NULL",
    "archived": "AND n.archived_at IS NOT NULL",
    "all": "",
}
NO_CURSOR = 2**63 - 1


def inbox_page_sql(status: InboxStatus) -> str:
    """The statement of ``inbox_page`` (parameters ``user``, ``before``, ``limit``)."""
    return f"""
        SELECT n.id, n.type_id, n.title, n.message, n.url, n.data, n.created_at, n.read_at,
               n.archived_at
        FROM {Notification._meta.db_table} n
        WHERE n.recipient_id = %(user)s AND n.id < %(before)s {_INBOX_FILTERS[status]}
        ORDER BY n.id DESC
        LIMIT %(limit)s
        """  # noqa: S608 -- only table names and fixed predicates are interpolated


def inbox_page(
    *, tenant_id: int, user_id: int, status: InboxStatus, before: int | None, limit: int
) -> list[dict[str, Any]] | None:
    """Up to ``limit`` of the user's notifications in ``status`` with ids below ``before``,
    newest first, as ``notification_rows`` gives them; None when the user does not exist.

    Written out rather than built by the ORM: a page is the widget's most frequent call, and
    compiling the queries it used to take cost more than running them. The statement is the
    same index range scan as ``inbox`` (notif_inbox, or notif_inbox_unread for unread),
    stopping after ``limit`` rows.

    It names the notifications table alone. With thousands of tenants on the server, most
    requests meet a backend that has not served the tenant's schema yet, and each table a
    statement names then costs the catalog entries of the table and its indexes, 0.5 to 1 ms
    each at 10,000 tenants (``bench/tenants.py``). So:

    - the type keys come from ``type_keys`` (keys never change);
    - the users table is read only when the page is empty, to tell an empty inbox from an
      erased user (whose token must find nothing). A notification row proves that its recipient
      exists: ``user_erase`` deletes the user with every notification of theirs in one
      transaction, after any send writing to them has committed
      (``tests/notifications/test_integrity.py``).
    """
    params = {"user": user_id, "before": NO_CURSOR if before is None else before, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(inbox_page_sql(status), params)
        rows = cursor.fetchall()
        if not rows:
            cursor.execute(
                f"SELECT 1 FROM {EndUser._meta.db_table} WHERE id = %s",  # noqa: S608 -- a table name
                [user_id],
            )
            return [] if cursor.fetchone() else None
    keys = type_keys(tenant_id=tenant_id, type_ids={row[1] for row in rows})
    names = ("id", "type_key", "title", "message", "url", "data", "created_at", "read_at",
             "archived_at")  # fmt: skip
    results = []
    for row in rows:  # newest first, as the statement orders them
        result = dict(zip(names, row, strict=True))
        result["type_key"] = keys.get(row[1])
        if isinstance(result["data"], str):  # Django loads jsonb as text (JSONField decodes it)
            result["data"] = json.loads(result["data"])
        results.append(result)
    return results


def inbox_notification_get(*, user: EndUser, notification_id: int) -> Notification | None:
    return Notification.objects.filter(pk=notification_id, recipient=user).first()


def notification_list(
    *, recipient: str | None = None, type_key: str | None = None
) -> QuerySet[Notification]:
    """The tenant's notifications, optionally for one recipient (external id) or one type."""
    queryset = Notification.objects.all()
    if recipient is not None:
        queryset = queryset.filter(recipient__external_id=recipient)
    if type_key is not None:
        queryset = queryset.filter(type__key=type_key)
    return queryset


def send_channel_summaries(*, sends: Sequence[Send]) -> dict[int, dict[str, dict[str, int]]]:
    """Per send (by id), per channel, how many recipients reached each delivery status: the
    ``channels`` of ``GET /api/v1/sends/{id}`` and of the dashboard's send pages.

    Only a released send reports: a scheduled one has reached nobody yet, and a cancelled one
    never will (it is cancelled before its release), so both report ``{}``. In-app rows are
    written by the send itself, which keeps their number (the rest of its recipients turned
    in-app off); other channels are counted from their delivery log, in one query for all
    ``sends``, and none when no send is released."""
    released = [send for send in sends if send.status == Send.Status.ACCEPTED]
    logged: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    if released:
        rows = (
            Delivery.objects.filter(send_id__in=[send.pk for send in released])
            .values_list("send_id", "channel", "status")
            .annotate(count=Count("id"))
            .order_by()
        )
        for send_id, channel, status, count in rows:
            logged[send_id][channel][status] = count
    summaries: dict[int, dict[str, dict[str, int]]] = {send.pk: {} for send in sends}
    for send in released:
        summary = summaries[send.pk]
        if IN_APP in send.channels:
            summary[IN_APP] = {"sent": send.in_app_count}
            skipped = send.recipient_count - send.in_app_count
            if skipped > 0:
                summary[IN_APP][Delivery.Status.SKIPPED_PREFERENCE.value] = skipped
        summary.update((channel, dict(statuses)) for channel, statuses in logged[send.pk].items())
    return summaries


def send_channel_summary(*, send: Send) -> dict[str, dict[str, int]]:
    """``send_channel_summaries`` of one send."""
    return send_channel_summaries(sends=[send])[send.pk]


def delivery_list(
    *, send_id: int | None, recipient: str | None, status: str | None
) -> QuerySet[Delivery, Any]:
    queryset = Delivery.objects.all()
    if send_id is not None:
        queryset = queryset.filter(send_id=send_id)
    if recipient is not None:
        queryset = queryset.filter(recipient__external_id=recipient)
    if status is not None:
        queryset = queryset.filter(status=status)
    rows: QuerySet[Delivery, Any] = queryset.values(*DELIVERY_VALUES)
    return rows


def preferences_get(*, user: EndUser) -> dict[str, Any]:
    """The user's switches: global ones, and for every type (missing rows are on); and their
    own ``locale`` and ``timezone``."""
    channels = dict.fromkeys(CHANNELS, True)
    per_type: dict[int, dict[str, bool]] = {}
    for type_id, channel, enabled in Preference.objects.filter(user=user).values_list(
        "type_id", "channel", "enabled"
    ):
        if type_id is None:
            channels[channel] = enabled
        else:
            per_type.setdefault(type_id, {})[channel] = enabled
    types = {
        key: {**dict.fromkeys(CHANNELS, True), **per_type.get(type_id, {})}
        for type_id, key in NotificationType.objects.order_by("key").values_list("id", "key")
    }
    return {"channels": channels, "types": types, "locale": user.locale, "timezone": user.timezone}


def push_subscription_list(*, user: EndUser) -> QuerySet[PushSubscription]:
    """The user's own web push subscriptions."""
    return PushSubscription.objects.filter(user=user)


def push_subscription_get(*, user: EndUser, subscription_id: int) -> PushSubscription | None:
    """One of the user's subscriptions; None for a missing one and for another user's alike."""
    return PushSubscription.objects.filter(pk=subscription_id, user=user).first()
