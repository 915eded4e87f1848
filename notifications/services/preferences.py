from __future__ import annotations

from django.db import transaction

from notifications.models import EndUser, NotificationType, Preference


@transaction.atomic
def preferences_set(
    *,
    user: EndUser,
    channels: dict[str, bool] | None = None,
    types: dict[str, dict[str, bool]] | None = None,
) -> None:
    """Set global channel switches and per-type switches. Keys were validated by the caller."""
    for channel, enabled in (channels or {}).items():
        Preference.objects.update_or_create(
            user=user, type=None, channel=channel, defaults={"enabled": enabled}
        )
    if types:
        by_key = {t.key: t for t in NotificationType.objects.filter(key__in=list(types))}
        for key, switches in types.items():
            for channel, enabled in switches.items():
                Preference.objects.update_or_create(
                    user=user, type=by_key[key], channel=channel, defaults={"enabled": enabled}
                )
