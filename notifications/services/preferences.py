from __future__ import annotations

from django.db import transaction

from notifications.models import EMAIL, EndUser, NotificationType, Preference

Switches = set[tuple[int, int | None]]


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


def email_switches_off(*, user_ids: set[int]) -> Switches:
    """The (user, type or None for all types) email switches these users turned off."""
    return set(
        Preference.objects.filter(user_id__in=user_ids, channel=EMAIL, enabled=False).values_list(
            "user_id", "type_id"
        )
    )


def email_off(switches: Switches, user_id: int, type_id: int, *, critical: bool) -> bool:
    """Whether a user's email of this type is off (globally or for the type); critical types
    ignore opt-outs. The same rule as the set-based fan-out in ``services.sending``."""
    return not critical and ((user_id, None) in switches or (user_id, type_id) in switches)
