"""Who a send reaches, as SQL: the users it listed and, for a send naming a topic, the topic's
subscribers not among them (``Send.topic``), each once.

The fan-outs (``channels.in_app.fan_out``, ``services.deliveries``) read their recipients from
``audience_sql`` as a FROM item: a topic of 100,000 subscribers is read by the statement that
writes the rows, not sent to Python and back. Call inside the tenant's schema.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from notifications.models import Send, TopicSubscription
from notifications.services.users import int_array

# The listed users, over ``%(users)s`` (a ``bigint[]`` literal: ``users.int_array``), rows
# ``r(id, ord)`` in the order given.
LISTED = "unnest(%(users)s::bigint[]) WITH ORDINALITY AS r(id, ord)"

# The listed users, then the topic's subscribers who are not among them (after the listed ones,
# in user id order). The anti-join hashes the listed ids: 10,000 listed against 100,000
# subscribers is one pass over each, not a comparison per pair.
_WITH_TOPIC = f"""(
    SELECT l.id, l.ord FROM unnest(%(users)s::bigint[]) WITH ORDINALITY AS l(id, ord)
    UNION ALL
    SELECT s.user_id, cardinality(%(users)s::bigint[]) + s.user_id
    FROM {TopicSubscription._meta.db_table} AS s
    WHERE s.topic_id = %(audience_topic)s
      AND NOT EXISTS (
          SELECT 1 FROM unnest(%(users)s::bigint[]) AS l(id) WHERE l.id = s.user_id)
) AS r(id, ord)"""


def audience_sql(*, send: Send) -> tuple[str, dict[str, Any]]:
    """The recipients of ``send`` as a FROM item ``r(id, ord)`` and its parameters, besides
    ``%(users)s``, the ids the send listed (which the caller binds). Rows are distinct when the
    listed ids are."""
    if send.topic_id is None:
        return LISTED, {}
    return _WITH_TOPIC, {"audience_topic": send.topic_id}


def audience_count(*, send: Send, user_ids: list[int]) -> int:
    """How many users ``send`` reaches now: ``user_ids`` and its topic's other subscribers."""
    if send.topic_id is None:
        return len(user_ids)
    sql, params = audience_sql(send=send)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {sql}",
            {**params, "users": int_array(user_ids)},
        )
        return int(cursor.fetchone()[0])


def audience_ids(*, send: Send, user_ids: list[int]) -> list[int]:
    """The ids ``send`` reaches now, in order (``audience_sql``): for paths that need them in
    Python (in-app texts rendered per locale group)."""
    if send.topic_id is None:
        return user_ids
    sql, params = audience_sql(send=send)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT array_agg(r.id ORDER BY r.ord) FROM {sql}",
            {**params, "users": int_array(user_ids)},
        )
        ids: list[int] | None = cursor.fetchone()[0]
    return ids or []
