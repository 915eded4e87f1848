"""Response shapes and examples of the topics API, for the OpenAPI schema (see ``docs``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, inline_serializer
from rest_framework import serializers


def _topic_fields() -> dict[str, serializers.Field]:
    return {
        "key": serializers.CharField(help_text="The topic's key (the pattern of type keys)."),
        "name": serializers.CharField(),
        "self_service": serializers.BooleanField(
            help_text="End users may subscribe and unsubscribe themselves (/api/v1/me/topics)."
        ),
        "subscribers": serializers.IntegerField(help_text="How many users are subscribed."),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    }


TOPIC = inline_serializer(name="Topic", fields=_topic_fields())
SUBSCRIBER = inline_serializer(
    name="TopicSubscriber",
    fields={
        "id": serializers.CharField(help_text="The user's external id."),
        "email": serializers.CharField(),
        "name": serializers.CharField(),
        "subscribed_at": serializers.DateTimeField(),
    },
)
SUBSCRIBED = inline_serializer(
    name="TopicSubscribed",
    fields={
        "subscribed": serializers.IntegerField(help_text="Users newly subscribed by this call."),
        "subscribers": serializers.IntegerField(help_text="The topic's subscribers now."),
    },
)
MY_TOPIC = inline_serializer(
    name="MyTopic",
    fields={
        "key": serializers.CharField(),
        "name": serializers.CharField(),
        "subscribed": serializers.BooleanField(),
    },
)
MY_TOPICS_SET = inline_serializer(
    name="MyTopicsSet",
    fields={
        "subscribed": serializers.ListField(
            child=serializers.CharField(),
            help_text="The self-service topics the user is subscribed to now, by key.",
        )
    },
)
TOPIC_SEND_EXAMPLE = OpenApiExample(
    "To a topic's subscribers",
    request_only=True,
    value={
        "type": "project.released",
        "topic": "project-42",
        "title": "Version 2.0 is out",
        "message": "Project 42 published a release.",
    },
)
