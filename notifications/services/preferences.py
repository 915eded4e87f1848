"""Users' channel switches, and the one rule that reads them: the opt-out.

A user is opted out of a channel for a type when their switch for that channel is off, globally
(type null) or for the type; a missing switch is on, and a critical type ignores both. The rule
is written twice here, side by side, and nowhere else: as SQL for the set-based fan-outs
(``optout_sql``, ``reaches_sql``) and in Python for the worker's check just before a delivery
(``switches_off`` + ``opted_out``). ``tests/notifications/test_optout.py`` holds them to the
same table of cases.
"""

from __future__ import annotations

from django.db import transaction

from notifications.models import EndUser, Preference
from notifications.services.types import type_for_send

Switches = set[tuple[int, int | None]]


@transaction.atomic
def preferences_set(
    *,
    user: EndUser,
    channels: dict[str, bool] | None = None,
    types: dict[str, dict[str, bool]] | None = None,
    locale: str | None = None,
    timezone: str | None = None,
) -> None:
    """Set global channel switches and per-type switches, and the user's own ``locale``
    (normalised) and ``timezone`` when given. Keys and values were validated by the caller.

    A type key that names no type yet creates it with defaults, as a send naming it would: a
    user can turn off what they have not been sent yet, and it stays off when it arrives."""
    changed = [
        name
        for name, value in (("locale", locale), ("timezone", timezone))
        if value is not None and getattr(user, name) != value
    ]
    if changed:
        user.locale = user.locale if locale is None else locale
        user.timezone = user.timezone if timezone is None else timezone
        user.save(update_fields=[*changed, "updated_at"])
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


# --- the rule in SQL: arguments are SQL expressions (columns or placeholders) -------------------


def _switched_off_sql(*, user: str, channel: str, type_id: str) -> str:
    return f"""EXISTS (
            SELECT 1 FROM {Preference._meta.db_table} p
            WHERE p.user_id = {user} AND p.channel = {channel} AND NOT p.enabled
              AND (p.type_id IS NULL OR p.type_id = {type_id}))"""


def optout_sql(*, user: str, channel: str, type_id: str, critical: str) -> str:
    """SQL that is true when ``user`` opted out of ``channel`` for ``type_id``."""
    return f"(NOT {critical} AND {_switched_off_sql(user=user, channel=channel, type_id=type_id)})"


def reaches_sql(*, user: str, channel: str, type_id: str, critical: str) -> str:
    """SQL that is true when ``user`` did not opt out (the negation of ``optout_sql``, written
    as ``critical OR NOT EXISTS`` so that a fan-out's filter reads as one)."""
    return f"({critical} OR NOT {_switched_off_sql(user=user, channel=channel, type_id=type_id)})"


# --- the rule in Python ---------------------------------------------------------------------


def switches_off(*, user_ids: set[int], channel: str) -> Switches:
    """The (user, type or None for all types) switches of ``channel`` these users turned off:
    one query for a whole batch."""
    return set(
        Preference.objects.filter(user_id__in=user_ids, channel=channel, enabled=False).values_list(
            "user_id", "type_id"
        )
    )


def opted_out(switches: Switches, user_id: int, type_id: int, *, critical: bool) -> bool:
    """Whether a user opted out of the channel of ``switches`` (``switches_off``) for a type."""
    return not critical and ((user_id, None) in switches or (user_id, type_id) in switches)
