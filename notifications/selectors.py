"""Reads on a tenant's notification data. Call inside the tenant's schema.

Lookups for one object return None for "missing" and "not yours" alike, so callers answer the
same 404 for both.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db.models import QuerySet

from notifications.models import (
    CHANNELS,
    Delivery,
    EndUser,
    Notification,
    NotificationType,
    Preference,
    Send,
)
from notifications.services.deliveries import delivery_counts

InboxStatus = Literal["unread", "read", "archived", "all"]
INBOX_STATUSES: tuple[str, ...] = ("unread", "read", "archived", "all")


def end_user_get(*, external_id: str) -> EndUser | None:
    return EndUser.objects.filter(external_id=external_id).first()


def type_get(*, key: str) -> NotificationType | None:
    return NotificationType.objects.filter(key=key).first()


def type_list() -> QuerySet[NotificationType]:
    return NotificationType.objects.all()


def send_get(*, send_id: int) -> Send | None:
    return Send.objects.select_related("type").filter(pk=send_id).first()


def inbox(*, user: EndUser, status: InboxStatus) -> QuerySet[Notification]:
    """The user's notifications in one status; 'all' includes archived ones."""
    queryset = Notification.objects.filter(recipient=user)
    if status == "unread":
        return queryset.filter(read_at__isnull=True, archived_at__isnull=True)
    if status == "read":
        return queryset.filter(read_at__isnull=False, archived_at__isnull=True)
    if status == "archived":
        return queryset.filter(archived_at__isnull=False)
    return queryset


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


def send_channel_summary(*, send: Send) -> dict[str, dict[str, int]]:
    """Per channel, how many recipients reached each delivery status. In-app rows are written
    by the send itself; other channels are counted from their delivery log."""
    summary: dict[str, dict[str, int]] = {}
    if "in_app" in send.channels and send.status != Send.Status.SCHEDULED:
        summary["in_app"] = {"sent": send.in_app_count}
        skipped = send.recipient_count - send.in_app_count
        if skipped:
            summary["in_app"]["skipped_preference"] = skipped
    summary.update(delivery_counts(send=send))
    return summary


def delivery_list(
    *, send_id: int | None, recipient: str | None, status: str | None
) -> QuerySet[Delivery]:
    queryset = Delivery.objects.all()
    if send_id is not None:
        queryset = queryset.filter(send_id=send_id)
    if recipient is not None:
        queryset = queryset.filter(recipient__external_id=recipient)
    if status is not None:
        queryset = queryset.filter(status=status)
    return queryset.values(
        "id", "send_id", "notification_id", "recipient__external_id", "channel", "status",
        "attempts", "last_error", "created_at", "updated_at", "sent_at",
    )  # fmt: skip


def preferences_get(*, user: EndUser) -> dict[str, Any]:
    """The user's switches: global ones, and for every type (missing rows are on)."""
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
    return {"channels": channels, "types": types}
