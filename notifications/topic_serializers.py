"""Input validation and output shapes of the topics API (server and end-user)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from herald.fields import PatternField, StrictBooleanField, StrictCharField, StrictSerializer
from notifications.models import Topic, TopicSubscription
from notifications.rules import TYPE_KEY_MESSAGE, TYPE_KEY_PATTERN
from notifications.serializers import RecipientsField

# How many topics an end user may choose in one PUT of /me/topics.
MAX_CHOSEN_TOPICS = 1000


def topic_payload(topic: Topic) -> dict[str, Any]:
    payload = {
        "key": topic.key,
        "name": topic.name,
        "self_service": topic.self_service,
        "created_at": topic.created_at,
        "updated_at": topic.updated_at,
    }
    count = getattr(topic, "subscriber_count", None)
    if count is not None:
        payload["subscribers"] = count
    return payload


def subscriber_payload(subscription: TopicSubscription) -> dict[str, Any]:
    user = subscription.user
    return {
        "id": user.external_id,
        "email": user.email,
        "name": user.name,
        "subscribed_at": subscription.created_at,
    }


def my_topic_payload(topic: Topic) -> dict[str, Any]:
    subscribed = getattr(topic, "subscribed", False)  # ``topic_selectors.self_service_topics``
    return {"key": topic.key, "name": topic.name, "subscribed": bool(subscribed)}


class TopicUpsertSerializer(StrictSerializer):
    """A topic's fields. ``key``, ``subscribers``, ``created_at`` and ``updated_at`` are
    read-only: a body may carry them back as a GET returned them; the view ignores them and
    refuses a ``key`` other than the URL's."""

    echoed_read_only = ("key", "subscribers", "created_at", "updated_at")
    key = StrictCharField(required=False)
    subscribers = serializers.IntegerField(required=False)
    created_at = serializers.DateTimeField(required=False)
    updated_at = serializers.DateTimeField(required=False)
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    self_service = StrictBooleanField(required=False)


class SubscribersAddSerializer(StrictSerializer):
    """Bulk subscribe: ``["external-id", {"id", "email"?, "name"?, "locale"?}, ...]`` as a
    send's recipients, 1 to 10,000."""

    subscribers = RecipientsField()


class MyTopicsSerializer(StrictSerializer):
    subscribed = serializers.ListField(
        child=PatternField(TYPE_KEY_PATTERN, message=TYPE_KEY_MESSAGE, max_length=100),
        max_length=MAX_CHOSEN_TOPICS,
    )
