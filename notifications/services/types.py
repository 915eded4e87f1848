from __future__ import annotations

from typing import Any

from notifications.models import NotificationType

TYPE_FIELDS = (
    "name",
    "channels",
    "critical",
    "digest_window_seconds",
    "email_subject",
    "email_text",
    "email_html",
)


def type_upsert(*, key: str, fields: dict[str, Any]) -> tuple[NotificationType, bool]:
    """Create or update a notification type; only the given fields change."""
    changes = {name: value for name, value in fields.items() if name in TYPE_FIELDS}
    notification_type, created = NotificationType.objects.get_or_create(
        key=key, defaults={"name": key, **changes}
    )
    if not created and changes:
        for name, value in changes.items():
            setattr(notification_type, name, value)
        notification_type.save(update_fields=[*changes, "updated_at"])
    return notification_type, created


def type_for_send(*, key: str) -> NotificationType:
    """The type a send (or a preference) names; an unknown key creates it with defaults (in-app
    only)."""
    notification_type, _created = NotificationType.objects.get_or_create(
        key=key, defaults={"name": key}
    )
    return notification_type
