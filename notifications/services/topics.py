"""Topics: audiences a send can name instead of listing them (``Topic``), and who is subscribed.

A send naming a topic reaches its subscribers at the moment it is released (``services.sending``
and ``services.audience``). While a send reads a topic's subscribers it holds the topic row
FOR SHARE; subscribing and unsubscribing take it FOR NO KEY UPDATE first, so they wait for the
send (and a send for them): every channel of a send sees the same subscribers, and a send due
now reaches exactly the audience it counted. Sends do not wait for each other.

Call inside the tenant's schema.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from django.db import connection, transaction

from herald.domain import Invalid, NotFound
from notifications.models import EndUser, Send, Topic, TopicSubscription
from notifications.rules import TYPE_KEY_MESSAGE, type_key_valid
from notifications.services.users import RecipientInput, int_array, recipients_upsert

TOPIC_FIELDS = ("name", "self_service")
NO_SUCH_TOPIC = "No such topic."
# What an end user may not subscribe to themselves is invisible to them: the same words for a
# topic that does not exist and one that is not self-service.
NOT_SELF_SERVICE = "No such topic: {keys}."


def topic_upsert(*, key: str, fields: dict[str, Any]) -> tuple[Topic, bool]:
    """Create the topic ``key`` or change the given fields (``name``, ``self_service``).
    Returns (topic, created)."""
    if not type_key_valid(key):
        raise Invalid("Invalid topic key.", details={"key": [TYPE_KEY_MESSAGE]})
    changes = {name: value for name, value in fields.items() if name in TOPIC_FIELDS}
    topic, created = Topic.objects.get_or_create(key=key, defaults=changes)
    if not created and changes:
        for name, value in changes.items():
            setattr(topic, name, value)
        topic.save(update_fields=[*changes, "updated_at"])
    return topic, created


@transaction.atomic
def topic_delete(*, topic: Topic) -> int:
    """Delete a topic and its subscriptions. Scheduled sends naming it keep their listed
    recipients and lose the topic; one that listed nobody is cancelled (it would reach nobody).
    Sends already released keep what they wrote (their ``topic`` becomes null). Returns how
    many scheduled sends were cancelled."""
    # Sends first, then the topic: the order in which a release takes them (a send row, then
    # the topic FOR SHARE), so the two cannot deadlock.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Send._meta.db_table}
            SET status = CASE WHEN cardinality(recipient_ids) = 0 THEN %(cancelled)s
                              ELSE status END,
                cancel_reason = CASE WHEN cardinality(recipient_ids) = 0 THEN %(reason)s
                                     ELSE cancel_reason END,
                recipient_count = cardinality(recipient_ids), topic_id = NULL
            WHERE topic_id = %(topic)s AND status = %(scheduled)s
            RETURNING status
            """,
            {
                "topic": topic.pk,
                "cancelled": Send.Status.CANCELLED,
                "scheduled": Send.Status.SCHEDULED,
                "reason": f"Its topic {topic.key!r} was deleted, and it listed no recipients.",
            },
        )
        cancelled = sum(status == Send.Status.CANCELLED for (status,) in cursor.fetchall())
    _lock_for_change(topic)
    topic.delete()
    return int(cancelled)


@transaction.atomic
def topic_subscribe(*, topic: Topic, users: list[RecipientInput]) -> int:
    """Subscribe ``users`` (distinct; unknown ones are created, given details update known ones,
    as a send does) to ``topic``; those subscribed already stay so. Returns how many were not
    subscribed before."""
    if not users:
        return 0
    ids = recipients_upsert(users).ids
    _lock_for_change(topic)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TopicSubscription._meta.db_table} (topic_id, user_id, created_at)
            SELECT %(topic)s, u.id, now() FROM unnest(%(users)s::bigint[]) AS u(id)
            ORDER BY u.id
            ON CONFLICT (topic_id, user_id) DO NOTHING
            """,
            {"topic": topic.pk, "users": int_array(ids)},
        )
        return int(cursor.rowcount)


@transaction.atomic
def topic_unsubscribe(*, topic: Topic, user: EndUser) -> bool:
    """Unsubscribe ``user`` from ``topic``; whether they were subscribed."""
    _lock_for_change(topic)
    deleted, _by_model = TopicSubscription.objects.filter(topic=topic, user=user).delete()
    return bool(deleted)


@transaction.atomic
def my_topics_set(*, user: EndUser, keys: Collection[str]) -> list[str]:
    """What an end user chose: subscribed to exactly the self-service topics ``keys`` (and
    unsubscribed from every other self-service topic). Topics that are not self-service are
    left as the tenant set them; naming one (or an unknown key) raises ``Invalid`` and changes
    nothing. Returns the keys of the self-service topics the user is now subscribed to."""
    wanted = set(keys)
    topics = {t.key: t for t in Topic.objects.filter(key__in=wanted, self_service=True)}
    if missing := sorted(wanted - set(topics)):
        raise Invalid(
            "Only self-service topics can be chosen.",
            details={"subscribed": [NOT_SELF_SERVICE.format(keys=", ".join(missing))]},
        )
    current = {
        s.topic.key: s.topic
        for s in TopicSubscription.objects.filter(
            user=user, topic__self_service=True
        ).select_related("topic")
    }
    for key in sorted(set(current) - wanted):
        topic_unsubscribe(topic=current[key], user=user)
    for key in sorted(wanted - set(current)):
        _lock_for_change(topics[key])
        TopicSubscription.objects.get_or_create(topic=topics[key], user=user)
    return sorted(wanted)


def topic_for_send(*, key: str) -> Topic:
    """The topic a send names; ``NotFound`` (naming the ``topic`` field) if there is none, as
    for any other missing or other tenant's topic. Unlike a type, a topic is never created by a
    send: it would have no subscribers."""
    topic = Topic.objects.filter(key=key).first()
    if topic is None:
        raise NotFound(NO_SUCH_TOPIC, details={"topic": [f"No topic {key!r}; create it first."]})
    return topic


def topic_audience_size(*, topic: Topic, external_ids: list[str]) -> int:
    """How many users a send to ``external_ids`` (distinct) and ``topic`` reaches now: the
    listed ones, known or not, and the topic's subscribers not among them."""
    with connection.cursor() as cursor:
        if not external_ids:
            cursor.execute(
                f"SELECT count(*) FROM {TopicSubscription._meta.db_table} WHERE topic_id = %s",
                [topic.pk],
            )
        else:
            cursor.execute(
                f"""
                SELECT count(*)
                FROM {TopicSubscription._meta.db_table} AS s
                JOIN {EndUser._meta.db_table} AS u ON u.id = s.user_id
                WHERE s.topic_id = %(topic)s
                  AND u.external_id NOT IN (
                      SELECT jsonb_array_elements_text(%(listed)s::jsonb))
                """,
                {"topic": topic.pk, "listed": json.dumps(external_ids)},
            )
        return len(external_ids) + int(cursor.fetchone()[0])


def topic_hold(*, topic_id: int) -> bool:
    """Hold the topic FOR SHARE until commit, while a send reads its subscribers (see the
    module's docstring); False if it is gone."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Topic._meta.db_table} WHERE id = %s FOR SHARE",
            [topic_id],
        )
        return cursor.fetchone() is not None


def _lock_for_change(topic: Topic) -> None:
    list(Topic.objects.select_for_update(no_key=True).filter(pk=topic.pk).values_list("pk"))
