"""The in-app texts of a send whose type has per-locale texts: resolved and rendered per group.

Recipients are grouped by what their texts depend on: the locale keys their title and message
resolve to (``localisation.text_for``), plus their locale and time zone when a template formats
dates or numbers (the ``*_local`` filters), plus the user themself when a template reads
``user``. What a template reads is python-liquid's analysis of the parsed template
(``templating.template_names``): ``{{ user.name }}`` reads ``user``; ``{{ username }}`` or the
word "user" in text does not. Each group's texts are rendered once; a plain send to 10,000
users in five locales renders ten templates. A template that fails to render (a limit) gives
its group the send's own text, with a warning: a send never fails for it.

The fan-out writes the rows from the recipients' group numbers and the groups' texts, in its
one statement (``fan_out_in_app_count``), and publishes one ``created`` message per distinct
pair of texts, as that statement aggregated them.

A send to users who all exist skips the groups once this process has sent the type before
(``pre_rendered``): its texts are rendered once per locale key of the type, and the send's own
statement resolves each recipient's from their stored locale in SQL (``resolved_sql``), after
checking that the type still holds the templates they were rendered from. The types seen are
kept in a small map (``herald.bounded.BoundedMap``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from herald.bounded import BoundedMap
from notifications.localisation import text_for
from notifications.models import EndUser, NotificationType, Send
from notifications.services.users import int_array
from notifications.templating import (
    LOCAL_FILTERS,
    RenderTimeout,
    TemplateError,
    plain_context,
    render,
    render_deadline,
    template_names,
)
from tenants.models import Tenant

logger = logging.getLogger(__name__)

IN_APP_FIELDS = ("title", "message")


@dataclass(frozen=True)
class GroupedTexts:
    """Each recipient's group (element ``i`` of the array literal ``groups`` for
    ``user_ids[i]``, numbered from 1, as SQL arrays are) and each group's ``(title, message)``."""

    groups: str
    texts: list[tuple[str, str]]


def user_context(user: EndUser | Mapping[str, Any]) -> dict[str, Any]:
    """The ``user`` a template sees: ``id`` (the external id), ``name``, ``email``, ``locale``."""
    if isinstance(user, EndUser):
        return {"id": user.external_id, "name": user.name, "email": user.email,
                "locale": user.locale}  # fmt: skip
    return {key: user.get(key, "") for key in ("id", "name", "email", "locale")}


def send_context(*, tenant: Tenant, send: Send, type_key: str | None = None) -> dict[str, Any]:
    """What every template of ``send`` sees besides ``user`` (and email's ``unsubscribe_url``):
    the send's ``title``, ``message``, ``url``, ``data``, its ``type`` key (``type_key``, else
    its type's) and the ``tenant``. In-app texts and emails (``channels.email.texts``) alike."""
    return {
        "title": send.title,
        "message": send.message,
        "url": send.url,
        "data": send.data,
        "type": send.type.key if type_key is None else type_key,
        "tenant": {"name": tenant.name},
    }


# The attribute of a ``Send`` (set by ``locales_known``) holding what its send path knows of
# its recipients' locales and time zones.
_KNOWN_LOCALES = "_known_locales"


def locales_known(
    send: Send,
    locales: Mapping[int, tuple[str, str]] | None,
    *,
    pairs: Sequence[tuple[str, str, list[int]]] | None = None,
) -> None:
    """Tell ``localised_texts`` the locale and time zone of some of the recipients of ``send``
    (None for both: forget them), so it reads only the others': ``locales`` by user id, and
    ``pairs`` as ``(locale, time zone, user ids)``. For users this transaction created, or
    found under a lock (FOR KEY SHARE) or the tenant's hold (``recipients_hold``)."""
    setattr(send, _KNOWN_LOCALES, (locales, pairs) if locales or pairs else None)


def localised_texts(*, tenant: Tenant, send: Send, user_ids: list[int]) -> GroupedTexts | None:
    """The in-app texts of ``send`` for ``user_ids``, grouped; None when its type has no
    localised title or message (then every recipient gets the send's own). One query reads the
    recipients' distinct locales and time zones (or, for per-user templates, every recipient's
    details): only those of the recipients the send path gave none for (``locales_known``)."""
    locales: dict[str, dict[str, str]] = send.type.locales or {}
    sources = in_app_sources(send.type)
    if not sources or not user_ids:
        return None
    names = [template_names(text) for text in sources]
    per_user = any("user" in n.globals for n in names)
    formats = any(not n.filters.isdisjoint(LOCAL_FILTERS) for n in names)
    base = send_context(tenant=tenant, send=send)
    timed_out: set[str] = set()  # templates that ran out of time: not tried again in this send
    index: dict[Hashable, int] = {}
    texts: list[tuple[str, str]] = []

    def group(
        user_id: int | None, external_id: str, name: str, email: str, locale: str, zone: str
    ) -> int:
        resolved = tuple(text_for(locales, f, locale) for f in IN_APP_FIELDS)
        key: Hashable = (
            tuple(source for _text, source in resolved),
            (locale, zone) if formats else None,
            user_id,
        )
        number = index.get(key)
        if number is None:
            user = {"id": external_id, "name": name, "email": email, "locale": locale}
            texts.append(
                _rendered(send, base, user, resolved, locale=locale, zone=zone, timed_out=timed_out)
            )
            number = index[key] = len(texts)
        return number

    if not per_user:
        # A recipient's group follows from their locale and time zone: one per distinct pair.
        group_of: dict[int, int] = {}
        known, pairs = getattr(send, _KNOWN_LOCALES, None) or (None, None)
        for locale, zone, ids in pairs or ():
            group_of.update(dict.fromkeys(ids, group(None, "", "", "", locale, zone)))
        if known:
            numbers = {pair: group(None, "", "", "", *pair) for pair in set(known.values())}
            group_of.update({user_id: numbers[pair] for user_id, pair in known.items()})
        unknown = [u for u in user_ids if u not in group_of] if group_of else user_ids
        if unknown:
            for locale, zone, ids in _users_by_locale(unknown):
                group_of.update(dict.fromkeys(ids, group(None, "", "", "", locale, zone)))
        groups = [group_of.get(user_id, 0) for user_id in user_ids]
    else:
        users = _users(user_ids)
        groups = [group(user_id, *users.get(user_id, _NOBODY)) for user_id in user_ids]
    return GroupedTexts(groups=int_array(groups), texts=texts)


@dataclass(frozen=True)
class PreRendered:
    """A send's in-app texts per locale key of its type, rendered before the statement that
    writes its rows resolves each recipient's in SQL (``resolved_sql``). ``locales``: the
    type's per-locale texts they were rendered from, as JSON, for the statement to check
    against the type's row."""

    locales: str
    titles: str  # JSON {locale key: title} of the keys with a title
    messages: str  # the same for messages


# The per-locale texts of the types this process sent to lately, by tenant id and type key, so
# that the next send of one can render them before its statement (``pre_rendered``). Nothing
# rests on an entry: the statement checks it against the type's row, and writes nothing if it
# is out of date (then the send takes the two-statement path and refreshes it). Bounded.
_TYPE_LOCALES: BoundedMap[tuple[int, str], dict[str, dict[str, str]]] = BoundedMap(1024)


def type_locales_seen(*, tenant_id: int, notification_type: NotificationType) -> None:
    """Remember (or forget) the per-locale texts of ``notification_type`` for ``pre_rendered``."""
    key = (tenant_id, notification_type.key)
    if notification_type.locales:
        _TYPE_LOCALES.put(key, notification_type.locales)
    else:
        _TYPE_LOCALES.pop(key)


def pre_rendered(*, tenant: Tenant, type_key: str, send: Send) -> PreRendered | None:
    """The texts of ``send`` for each locale key of its type as this process last saw it
    (``type_locales_seen``); None if it saw none, or a template reads ``user`` or formats for
    the recipient's locale or time zone (those render per group: ``localised_texts``).

    With these, a send to users who all exist is one statement, as a send of a type without
    locales is: the recipients' locales come from its lookup and resolve in SQL, where the
    two-statement path returns them to Python, groups them and sends the groups back. A
    template that fails to render gives the send's own text, as in ``localised_texts``."""
    locales = _TYPE_LOCALES.get((tenant.pk, type_key))
    if not locales:
        return None
    names = [template_names(text) for text in in_app_sources_of(locales)]
    if any("user" in n.globals or not n.filters.isdisjoint(LOCAL_FILTERS) for n in names):
        return None
    base = {**send_context(tenant=tenant, send=send, type_key=type_key), "user": _NO_USER}
    context = plain_context(base)
    timed_out: set[str] = set()
    maps: dict[str, dict[str, str]] = {field: {} for field in IN_APP_FIELDS}
    for tag, texts in locales.items():
        deadline = render_deadline()
        for field, own in zip(IN_APP_FIELDS, (send.title, send.message), strict=True):
            source = texts.get(field)
            if source:
                maps[field][tag] = _render_one(
                    send, type_key, source, context, field=field, where=tag, own=own,
                    locale=tag, zone="", deadline=deadline, timed_out=timed_out,
                )  # fmt: skip
    return PreRendered(
        locales=json.dumps(locales),
        titles=json.dumps(maps["title"]),
        messages=json.dumps(maps["message"]),
    )


_NO_USER = {"id": "", "name": "", "email": "", "locale": ""}


def resolved_sql(locale: str, texts: str, own: str) -> str:
    """SQL of a recipient's text from ``texts`` (SQL: a JSON object of texts by locale key) for
    their ``locale`` (SQL), as ``localisation.text_for`` resolves it: the tag, then its
    language and script, then its language (a normalised tag has at most those three parts),
    else ``own`` (SQL)."""
    language = f"split_part({locale}, '-', 1)"
    return (
        f"coalesce({texts} ->> {locale}, "
        f"{texts} ->> ({language} || '-' || split_part({locale}, '-', 2)), "
        f"{texts} ->> {language}, {own})"
    )


def in_app_sources(notification_type: NotificationType) -> list[str]:
    """The type's per-locale title and message templates ([] when it has none)."""
    return in_app_sources_of(notification_type.locales or {})


def in_app_sources_of(locales: Mapping[str, Mapping[str, str]]) -> list[str]:
    return [text for texts in locales.values() for f in IN_APP_FIELDS if (text := texts.get(f))]


_NOBODY = ("", "", "", "", "")  # a recipient erased meanwhile: no row is written for them


def _users_by_locale(user_ids: list[int]) -> list[tuple[str, str, list[int]]]:
    """The users of ``user_ids`` by locale and time zone: one row per distinct pair, so 10,000
    users in five locales are five rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT locale, timezone, array_agg(id) FROM {EndUser._meta.db_table} "  # noqa: S608 -- a table name
            "WHERE id = ANY(%s::bigint[]) GROUP BY locale, timezone",
            [int_array(user_ids)],
        )
        rows: list[tuple[str, str, list[int]]] = cursor.fetchall()
        return rows


def _users(user_ids: list[int]) -> dict[int, tuple[str, str, str, str, str]]:
    """Each user's external id, name, email, locale and time zone, by id."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, external_id, name, email, locale, timezone FROM {EndUser._meta.db_table} "  # noqa: S608 -- a table name
            "WHERE id = ANY(%s::bigint[])",
            [int_array(user_ids)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _rendered(
    send: Send,
    base: dict[str, Any],
    user: dict[str, str],
    resolved: tuple[tuple[str | None, str], ...],
    *,
    locale: str,
    zone: str,
    timed_out: set[str],
) -> tuple[str, str]:
    """The group's title and message: each from its resolved template, else the send's own.
    The group's renders share one time limit."""
    context = plain_context({**base, "user": user})
    deadline = render_deadline()
    out = []
    for field, (source, where), own in zip(
        IN_APP_FIELDS, resolved, (send.title, send.message), strict=True
    ):
        if source is None:
            out.append(own)
            continue
        text = _render_one(
            send, send.type.key, source, context, field=field, where=where, own=own,
            locale=locale, zone=zone, deadline=deadline, timed_out=timed_out,
        )  # fmt: skip
        out.append(text)
    return out[0], out[1]


def _render_one(
    send: Send,
    type_key: str,
    source: str,
    context: dict[str, Any],
    *,
    field: str,
    where: str,
    own: str,
    locale: str,
    zone: str,
    deadline: float,
    timed_out: set[str],
) -> str:
    """One in-app field rendered from ``source`` (the type's ``locales.<where>.<field>``), cut
    to the field's length; ``own`` (the send's text) if it fails, with a warning."""
    if source in timed_out:
        return own
    try:
        text = render(source, context, html=False, deadline=deadline, locale=locale,
                      timezone=zone)  # fmt: skip
    except TemplateError as exc:
        if isinstance(exc, RenderTimeout):
            timed_out.add(source)
        logger.warning(
            "locales.%s.%s of type %s failed to render for send %s, which keeps its own "
            "text: %s", where, field, type_key, send.pk or "(being accepted)", exc,
        )  # fmt: skip
        text = own
    return text[: 300 if field == "title" else 10_000]
