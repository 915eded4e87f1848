from __future__ import annotations

from django.db import transaction

from notifications.models import EMAIL, EndUser, Preference
from notifications.services.types import type_for_send

Switches = set[tuple[int, int | None]]


@transaction.atomic
def preferences_set(
    *,
    user: EndUser,
    channels: dict[str, bool] | None = None,
    types: dict[str, dict[str, bool]] | None = None,
) -> None:
    """Set global channel switches and per-type switches. Keys were validated by the caller.

    A type key that names no type yet creates it with defaults, as a send naming it would: a
    user can turn off what they have not been sent yet, and it stays off when it arrives."""
    for channel, enabled in (channels or {}).items():
        Preference.objects.update_or_create(
            user=user, type=None, channel=channel, defaults={"enabled": enabled}
        )
    if types:
        for key, switches in types.items():
            notification_type = type_for_send(key=key)
            for channel, enabled in switches.items():
                Preference.objects.update_or_create(
                    user=user,
                    type=notification_type,
                    channel=channel,
                    defaults={"enabled": enabled},
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
