"""Notification types: created by the API or the dashboard, or on first use by a send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

from billing_stub.limits import limits_for
from herald.domain import Invalid, NotInPlan
from notifications.localisation import (
    LOCALISED_FIELDS,
    LOCALISED_MAX_LENGTH,
    MAX_TYPE_LOCALES,
    locale_normalise,
)
from notifications.models import NotificationType
from notifications.templating import compile_errors
from tenants.models import Tenant

TYPE_FIELDS = (
    "name",
    "channels",
    "critical",
    "digest_window_seconds",
    "email_subject",
    "email_text",
    "email_html",
    "channel_rules",
)


def type_locales_clean(locales: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``locales`` as a type stores them, the one check of them (API and dashboard): keys
    normalised (``de_at`` -> ``de-AT``), texts as given (a blank one resolves as absent).
    Raises ``Invalid`` with every problem at once, keyed ``locales`` (not an object, too many),
    ``locales.<tag as given>`` (a bad or repeated tag) or ``locales.<tag as given>.<field>``
    (an unknown field, a text that is not a string, too long, or a template that does not
    parse)."""
    if not isinstance(locales, Mapping):
        raise Invalid("Invalid locales.", details={"locales": ["Give an object keyed by tag."]})
    if len(locales) > MAX_TYPE_LOCALES:
        raise Invalid(
            "Too many locales.", details={"locales": [f"At most {MAX_TYPE_LOCALES} locales."]}
        )
    details: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, str]] = {}
    given: dict[str, str] = {}
    for tag, texts in locales.items():
        where = f"locales.{tag}"
        normal = locale_normalise(tag) if isinstance(tag, str) else None
        if not normal:
            details[where] = ["Use a language tag such as 'de' or 'pt-BR'."]
            continue
        if normal in given:
            details[where] = [f"The same locale as {given[normal]!r} ({normal})."]
            continue
        given[normal] = tag
        if not isinstance(texts, Mapping):
            details[where] = ['Give an object of texts, e.g. {"title": "..."}.']
            continue
        entry: dict[str, str] = {}
        for field, text in texts.items():
            at = f"{where}.{field}"
            if field not in LOCALISED_FIELDS:
                details[at] = [f"Not a localised field: use {', '.join(LOCALISED_FIELDS)}."]
            elif not isinstance(text, str):
                details[at] = ["Give a template as a string."]
            elif len(text) > LOCALISED_MAX_LENGTH[field]:
                details[at] = [
                    f"Ensure this field has at most {LOCALISED_MAX_LENGTH[field]} characters."
                ]
            elif "\x00" in text:
                details[at] = ["Null characters are not allowed."]
            elif text and (error := compile_errors(text, html=field == "email_html")):
                details[at] = [error]
            else:
                entry[field] = text
        cleaned[normal] = entry
    if details:
        raise Invalid("Some locale texts are not valid.", details=details)
    return cleaned


def type_upsert(
    *,
    tenant: Tenant,
    key: str,
    fields: dict[str, Any],
    locales: Mapping[str, Any] | None = None,
) -> tuple[NotificationType, bool]:
    """Create or update a notification type; only the given fields change. ``key`` is valid
    (``rules.type_key_valid``) and ``fields`` validated (``TypeUpsertSerializer``).

    ``locales`` (or ``fields["locales"]``), when given, replaces the type's per-locale texts
    after ``type_locales_clean``: ``Invalid`` if it refuses them, and nothing changes.

    Setting a digest window needs a plan with digests: ``NotInPlan`` otherwise, and nothing
    changes."""
    changes = {name: value for name, value in fields.items() if name in TYPE_FIELDS}
    locales = fields.get("locales", locales)
    if locales is not None:
        changes["locales"] = type_locales_clean(locales)
    if changes.get("digest_window_seconds") and not limits_for(tenant).digest_allowed:
        raise NotInPlan(
            "Your plan does not include digests.",
            details={"digest_window_seconds": ["Digests need a plan that includes them."]},
        )
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
    only).

    A known type is read with one plain query: through the ORM's ``get_or_create`` the same
    read cost 0.8 ms more than its round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {type_columns()} FROM {NotificationType._meta.db_table} WHERE key = %s",
            [key],
        )
        row = cursor.fetchone()
    if row is not None:
        return type_from_row(row)
    notification_type, _created = NotificationType.objects.get_or_create(
        key=key, defaults={"name": key}
    )
    return notification_type


def type_columns(alias: str = "") -> str:
    """A type's columns for a plain SELECT, in the order ``type_from_row`` reads them."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{f.column}" for f in NotificationType._meta.concrete_fields)


def type_from_row(row: Sequence[Any]) -> NotificationType:
    """The type whose ``type_columns()`` a plain query returned (leading ``row``)."""
    fields = NotificationType._meta.concrete_fields
    values = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row[: len(fields)], strict=True)
    ]
    return NotificationType.from_db(connection.alias, [f.attname for f in fields], values)
