"""Reads on a tenant's topics and their subscribers. Call inside the tenant's schema.

Lookups of one topic return None for "missing" and "not yours" alike (another tenant's topics
live in another schema), so callers answer the same 404 for both.
"""

from __future__ import annotations

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from notifications.models import EndUser, Topic, TopicSubscription


def topic_get(*, key: str) -> Topic | None:
    return Topic.objects.filter(key=key).first()


def topic_list() -> QuerySet[Topic]:
    """Every topic with ``subscriber_count``: counted for the rows of a page only (a subquery in
    the select list, over the subscriptions' unique index), not for the whole table."""
    counted = (
        TopicSubscription.objects.filter(topic=OuterRef("pk"))
        .order_by()
        .values("topic")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Topic.objects.annotate(
        subscriber_count=Coalesce(Subquery(counted, output_field=IntegerField()), 0)
    )


def topic_with_count(*, key: str) -> Topic | None:
    return topic_list().filter(key=key).first()


def topic_subscribers(*, topic: Topic) -> QuerySet[TopicSubscription]:
    """The topic's subscriptions with their users; paged by subscription id (newest first)."""
    return TopicSubscription.objects.filter(topic=topic).select_related("user")


def self_service_topics(*, user: EndUser) -> QuerySet[Topic]:
    """The topics an end user may see and choose (self-service ones), each with ``subscribed``
    for ``user``."""
    return Topic.objects.filter(self_service=True).annotate(
        subscribed=Exists(TopicSubscription.objects.filter(topic=OuterRef("pk"), user=user))
    )


def user_topics(*, user: EndUser) -> QuerySet[Topic]:
    """The topics ``user`` is subscribed to."""
    return Topic.objects.filter(subscriptions__user=user).order_by("key")


def topic_keys(*, limit: int = 200) -> list[str]:
    """Topic keys by key, at most ``limit`` (for a picker)."""
    return list(Topic.objects.order_by("key").values_list("key", flat=True)[:limit])
