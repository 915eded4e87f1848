from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from notifications.models import EndUser

USER_FIELDS = ("email", "name", "locale", "timezone", "data")


@dataclass(frozen=True)
class RecipientInput:
    external_id: str
    email: str | None = None
    name: str | None = None


def user_upsert(*, external_id: str, fields: dict[str, Any]) -> tuple[EndUser, bool]:
    """Create or update one end user; only the given fields change. Returns (user, created)."""
    changes = {name: value for name, value in fields.items() if name in USER_FIELDS}
    user, created = EndUser.objects.get_or_create(external_id=external_id, defaults=changes)
    if not created and changes:
        for name, value in changes.items():
            setattr(user, name, value)
        user.save(update_fields=[*changes, "updated_at"])
    return user, created


@transaction.atomic
def user_erase(*, user: EndUser) -> None:
    """Erase an end user with every notification, preference and delivery of theirs."""
    user.delete()


def recipients_upsert(recipients: list[RecipientInput]) -> list[int]:
    """Create unknown recipients and update given emails/names, set-based; returns their ids.

    Ids come back in the order of ``recipients`` (already de-duplicated by the caller). Inserts
    are sorted by external id so that concurrent sends to overlapping sets cannot deadlock. The
    insert returns the ids it created; only recipients that already existed are looked up.
    """
    table = EndUser._meta.db_table
    now = timezone.now()
    ordered = sorted(recipients, key=lambda r: r.external_id)
    external_ids = [r.external_id for r in ordered]
    with_details = any(r.email is not None or r.name is not None for r in ordered)
    params: dict[str, Any] = {"ids": external_ids, "now": now}
    if with_details:
        params |= {"emails": [r.email for r in ordered], "names": [r.name for r in ordered]}
        rows = "unnest(%(ids)s::text[], %(emails)s::text[], %(names)s::text[])"
        columns, email, name = "r(external_id, email, name)", "r.email", "r.name"
    else:  # plain ids, the common case: two arrays fewer to send
        rows, columns, email, name = "unnest(%(ids)s::text[])", "r(external_id)", "NULL", "NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (external_id, email, name, locale, timezone, data,
                                 created_at, updated_at)
            SELECT r.external_id, coalesce({email}, ''), coalesce({name}, ''), '', '',
                   '{{}}'::jsonb, %(now)s, %(now)s
            FROM {rows} AS {columns}
            ON CONFLICT (external_id) DO NOTHING
            RETURNING external_id, id
            """,
            params,
        )
        ids = dict(cursor.fetchall())
        existing = [external_id for external_id in external_ids if external_id not in ids]
        if existing:
            cursor.execute(
                f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%s)", [existing]
            )
            ids.update(cursor.fetchall())
        if existing and with_details:
            cursor.execute(
                f"""
                UPDATE {table} AS u
                SET email = coalesce(r.email, u.email), name = coalesce(r.name, u.name),
                    updated_at = %(now)s
                FROM {rows} AS {columns}
                WHERE u.external_id = r.external_id
                  AND (u.email <> coalesce(r.email, u.email) OR u.name <> coalesce(r.name, u.name))
                """,
                params,
            )
    return [ids[r.external_id] for r in recipients]
