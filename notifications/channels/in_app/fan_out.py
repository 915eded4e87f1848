"""The in-app channel's fan-out: the send's notification rows, written in one statement.

The recipients' unread counts are invalidated and the ``created`` bus message is published
once the transaction commits.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import connection

from herald.realtime import encode, publish_encoded_on_commit
from notifications.channels.in_app.localised import in_app_sources, localised_texts
from notifications.channels.names import IN_APP
from notifications.events import created_message_text, notification_payload
from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.services.audience import LISTED, audience_ids, audience_sql
from notifications.services.preferences import reaches_sql
from notifications.services.users import int_array
from notifications.unread import unread_changed_on_commit, unread_changed_on_commit_joined
from notifications.webhooks.outbox import created_events_sql, webhook_events_written
from tenants.models import Tenant

# Whether recipient ``r.id`` gets an in-app row, over the parameters of ``_row_params``.
_REACHES = reaches_sql(
    user="r.id", channel="%(channel)s", type_id="%(type)s", critical="%(critical)s"
)
# The ``notification.created`` webhook events of the rows written (``webhooks.outbox``), always
# folded in: a send reaches the fan-out after its fast path's statement found a recipient
# missing, having asked whether any endpoint takes them already, so asking again would be a
# second query; beside a fan-out's other work (the user upsert, preferences) the fold's own cost
# is small.
_CREATED_EVENTS = created_events_sql(created="created", type_key="%(type_key)s", now="%(now)s")


def fan_out_in_app(
    *,
    tenant: Tenant,
    send: Send,
    user_ids: list[int],
    now: datetime,
    fresh: Collection[int] = (),
    users_locked: bool = False,
) -> list[tuple[int, int]]:
    """Insert the in-app rows of ``send`` for ``user_ids`` in one statement; returns
    ``(notification id, user id)`` pairs, and set the send row's ``in_app_count`` to their
    number in the same statement, with their ``notification.created`` webhook events
    (``webhooks.outbox``). Users who turned in-app off (for this type or at all) get no
    row, unless the type is critical; users erased since the send was accepted are skipped.

    This is the only writer of notifications, and it keeps what foreign keys would check per row
    (see ``Notification``): the send id and type come from the send row itself, and rows are
    written only for users found in the same statement; the send row and those users are locked
    FOR KEY SHARE until commit, so none of them can be deleted or re-keyed meanwhile. No row is
    written if the send is gone, none for a user who is. (Each user is looked up and locked by
    its primary key, once per recipient: a plan that stays linear whatever the statistics say.
    Written as a join, a table not yet analyzed got a nested loop of 500 x 500 rows.)
    ``services.sending._send_insert`` writes them too (the fast path of a send to users who
    all exist), in the statement that inserts the send and looks its recipients up and locks
    them.

    ``fresh``: users created by this same transaction. Nobody can have cached an unread count
    for them, so their counts need no invalidation.

    ``users_locked``: the caller has locked every user of ``user_ids`` FOR KEY SHARE in this
    transaction, or created them in it (``recipients_upsert(lock=True)``), or holds all of the
    tenant's users (``recipients_hold``), so they exist until commit and are not looked up again
    (10,000 index probes and locks fewer).
    """
    pairs: list[tuple[int, int]] = []
    fan_out_in_app_count(
        tenant=tenant,
        send=send,
        user_ids=user_ids,
        now=now,
        fresh=fresh,
        users_locked=users_locked,
        pairs=pairs,
    )
    return pairs


def fan_out_in_app_count(
    *,
    tenant: Tenant,
    send: Send,
    user_ids: list[int],
    now: datetime,
    fresh: Collection[int] = (),
    users_locked: bool = False,
    pairs: list[tuple[int, int]] | None = None,
) -> int:
    """``fan_out_in_app``, returning how many rows it wrote (and filling ``pairs``, if given);
    sets ``send.in_app_count`` to it."""
    users = EndUser._meta.db_table
    users_exist = f"EXISTS (SELECT 1 FROM {users} u WHERE u.id = r.id FOR KEY SHARE)"  # noqa: S608 -- a table name
    audience, audience_params = audience_sql(send=send)
    if send.topic_id is not None:
        users_locked = False  # the topic's subscribers are looked up and locked here
        if in_app_sources(send.type):  # texts per locale group: rendered from the ids
            user_ids = audience_ids(send=send, user_ids=user_ids)
            audience, audience_params = LISTED, {}
    localised = localised_texts(tenant=tenant, send=send, user_ids=user_ids)
    params = {
        **_row_params(send, now),
        "users": int_array(user_ids),
        "fresh": bool(fresh),
        "type_key": send.type.key,
        **audience_params,
    }
    returning = groups = ""
    written = WRITTEN
    if localised is None:
        title, message = "%(title)s", "%(message)s"
        recipients = audience
    else:
        # Each row's texts by its group's number: two small arrays, not 20,000 strings. (Group 0,
        # the send's own texts: a recipient erased meanwhile, whose row is not written anyway.)
        title = "coalesce((%(titles)s::text[])[r.g], %(title)s)"
        message = "coalesce((%(messages)s::text[])[r.g], %(message)s)"
        recipients = (
            "unnest(%(users)s::bigint[], %(groups)s::int[]) WITH ORDINALITY AS r(id, g, ord)"
        )
        params.update(
            groups=localised.groups,
            titles=[t for t, _m in localised.texts],
            messages=[m for _t, m in localised.texts],
        )
        # The rows of each distinct pair of texts, for one ``created`` message each; all the
        # rows' pairs of ids only if the caller asks for them (10,000 rows: some 2 ms).
        returning = ", title, message"
        groups = f", {BY_TEXT}"
        if pairs is None:
            written = WRITTEN_BY_TEXT
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH created AS (
                INSERT INTO {Notification._meta.db_table}
                    (send_id, recipient_id, type_id, title, message, url, data, created_at)
                SELECT s.id, r.id, s.type_id, {title}, {message}, %(url)s, %(data)s::jsonb,
                       %(now)s
                FROM (SELECT id, type_id FROM {Send._meta.db_table}
                      WHERE id = %(send)s AND type_id = %(type)s FOR KEY SHARE) AS s,
                     {recipients}
                WHERE ({"true" if users_locked else users_exist})
                  AND {_REACHES}
                ORDER BY r.ord
                RETURNING id, recipient_id{returning}),
            counted AS (
                UPDATE {Send._meta.db_table} SET in_app_count = (SELECT count(*) FROM created)
                WHERE id = %(send)s),
            webhooked AS ({_CREATED_EVENTS})
            SELECT {written}, CASE WHEN %(fresh)s THEN array_agg(recipient_id) END,
                   (SELECT count(*) FROM webhooked){groups}
            FROM created
            """,  # noqa: S608 -- interpolates table names and SQL of this module; values are bound
            params,
        )
        count, joined_ids, deliveries, recipient_ids, webhooked, *texts = cursor.fetchone()
    count = int(count)
    send.in_app_count = count
    webhook_events_written(tenant=tenant, count=webhooked, now=now)
    if fresh:
        unread_changed_on_commit(
            tenant_id=tenant.pk, user_ids=[u for u in recipient_ids or () if u not in fresh]
        )
    else:
        unread_changed_on_commit_joined(tenant_id=tenant.pk, joined_ids=joined_ids, count=count)
    if localised is None:
        _publish_created(tenant=tenant, send=send, now=now, count=count, deliveries=deliveries)
    elif count:
        _publish_localised(tenant=tenant, send=send, now=now, texts=texts[0])
    if pairs is not None and count:
        pairs.extend(
            (notification_id, user_id) for user_id, notification_id in json.loads(deliveries)
        )
    return count


# What a fan-out wrote, over its ``created`` rows: how many; their users' ids joined by commas
# (for ``unread_changed_on_commit_joined``); and ``[[user id,notification id],...]`` as JSON
# (for ``created_message_text``). Aggregated in the same pass, so aligned; built by PostgreSQL,
# since 10,000 pairs cost Python ~10 ms as lists and their encoding.
_DELIVERIES = "'[[' || string_agg(recipient_id::text || ',' || id::text, '],[') || ']]'"
WRITTEN = f"""
    count(*) AS written, string_agg(recipient_id::text, ',') AS user_ids,
    {_DELIVERIES} AS deliveries
"""
# ``WRITTEN`` without the deliveries, for rows published by their texts (``BY_TEXT``).
WRITTEN_BY_TEXT = """
    count(*) AS written, string_agg(recipient_id::text, ',') AS user_ids, NULL AS deliveries
"""


# The rows of each distinct pair of texts, over ``created`` rows returning their ``title`` and
# ``message``: ``[[title, message, count, deliveries], ...]`` for ``_publish_localised``.
BY_TEXT = f"""
    (SELECT json_agg(json_build_array(title, message, n, deliveries) ORDER BY first)
     FROM (SELECT title, message, count(*) AS n, min(id) AS first, {_DELIVERIES} AS deliveries
           FROM created GROUP BY title, message) AS texts)
"""  # noqa: S608 -- SQL of this module; values are bound


def _row_params(send: Send, now: datetime) -> dict[str, Any]:
    notification_type: NotificationType = send.type
    return {
        "send": send.pk,
        "type": notification_type.pk,
        "title": send.title,
        "message": send.message,
        "url": send.url,
        "data": json.dumps(send.data),
        "now": now,
        "critical": notification_type.critical,
        "channel": IN_APP,
    }


def after_fan_out(
    *,
    tenant: Tenant,
    send: Send,
    now: datetime,
    count: int,
    joined_ids: str,
    deliveries: str,
    by_text: list[list[Any]] | None = None,
) -> None:
    """After a fan-out's commit: invalidate its recipients' unread counts (``joined_ids``) and
    publish its ``created`` message (``deliveries``), as ``WRITTEN`` returned them; one per
    distinct pair of texts instead, if the rows have their own (``by_text``, from ``BY_TEXT``)."""
    unread_changed_on_commit_joined(tenant_id=tenant.pk, joined_ids=joined_ids, count=count)
    if by_text is not None:
        _publish_localised(tenant=tenant, send=send, now=now, texts=by_text)
    else:
        _publish_created(tenant=tenant, send=send, now=now, count=count, deliveries=deliveries)


def _publish_localised(
    *, tenant: Tenant, send: Send, now: datetime, texts: list[list[Any]]
) -> None:
    """Publish one ``created`` bus message per distinct title and message, each carrying its
    rows: ``texts`` is ``[[title, message, count, deliveries], ...]`` as the fan-out's statement
    aggregated them (so 10,000 pairs are neither parsed nor encoded here)."""
    for title, message, count, deliveries in texts:
        _publish_created(
            tenant=tenant, send=send, now=now, count=count, deliveries=deliveries, title=title,
            message=message,
        )  # fmt: skip


def _publish_created(
    *,
    tenant: Tenant,
    send: Send,
    now: datetime,
    count: int,
    deliveries: str,
    title: str | None = None,
    message: str | None = None,
) -> None:
    """Publish the ``created`` bus message of ``count`` rows once the transaction commits
    (their texts: ``title`` and ``message``, by default the send's)."""
    if not count:
        return
    shared = notification_payload(
        {
            "id": None,
            "type_key": send.type.key,
            "title": send.title if title is None else title,
            "message": send.message if message is None else message,
            "url": send.url,
            "data": send.data,
            "created_at": now,
            "read_at": None,
            "archived_at": None,
        }
    )
    del shared["id"]
    publish_encoded_on_commit(
        created_message_text(
            tenant_id=tenant.pk, shared_json=encode(shared), deliveries_json=deliveries
        )
    )
