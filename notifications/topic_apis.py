"""Topics API views: topics and their subscribers (API key or admin token), and an end user's
own choice among self-service topics (end-user token). Validate, call one service or selector,
shape the response."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs, topic_docs
from herald.api import page_response, validated
from herald.errors import ApiError
from notifications import topic_selectors as selectors
from notifications.apis import EXTERNAL_ID, MeApi, _checked_external_id
from notifications.models import Topic
from notifications.rules import TYPE_KEY_PATTERN
from notifications.selectors import end_user_get
from notifications.services.topics import (
    my_topics_set,
    topic_delete,
    topic_subscribe,
    topic_unsubscribe,
    topic_upsert,
)
from notifications.services.users import RecipientInput
from notifications.topic_serializers import (
    MyTopicsSerializer,
    SubscribersAddSerializer,
    TopicUpsertSerializer,
    my_topic_payload,
    subscriber_payload,
    topic_payload,
)
from tenants.permissions import IsServer
from tenants.requests import EndUserRequest, TenantRequest

TOPIC_KEY = OpenApiParameter(
    "key", {"type": "string", "pattern": TYPE_KEY_PATTERN}, OpenApiParameter.PATH
)


def _topic_or_404(key: str) -> Topic:
    topic = selectors.topic_get(key=key)
    if topic is None:
        raise ApiError(404, "not_found", "No such topic.")
    return topic


def _counted(key: str) -> Topic:
    topic = selectors.topic_with_count(key=key)
    if topic is None:
        raise ApiError(404, "not_found", "No such topic.")
    return topic


class TopicsApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(topic_docs.TOPIC),
        operation_id="topics_list",
    )
    def get(self, request: TenantRequest) -> Response:
        return page_response(request, selectors.topic_list(), topic_payload)


@extend_schema(parameters=[TOPIC_KEY])
class TopicDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=topic_docs.TOPIC, operation_id="topics_retrieve")
    def get(self, request: TenantRequest, key: str) -> Response:
        return Response(topic_payload(_counted(key)))

    @extend_schema(
        request=TopicUpsertSerializer,
        responses={200: topic_docs.TOPIC, 201: topic_docs.TOPIC},
        operation_id="topics_upsert",
        description="Creates the topic (201), or changes the fields given (200). The body may "
        "include the read-only fields a GET returned (`key`, `subscribers`, `created_at`, "
        "`updated_at`): they are ignored, but a `key` other than the URL's is refused with 400.",
    )
    def put(self, request: TenantRequest, key: str) -> Response:
        fields = validated(TopicUpsertSerializer, request.data)
        if fields.pop("key", key) != key:
            raise ApiError(
                400,
                "invalid",
                "The request is invalid; see details.",
                {"key": ["A topic keeps its key: leave it out, or send the URL's."]},
            )
        _topic, created = topic_upsert(key=key, fields=fields)
        return Response(
            topic_payload(_counted(key)),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        responses={204: None},
        operation_id="topics_delete",
        description="Deletes the topic and its subscriptions. Sends already released keep what "
        "they wrote. A scheduled send naming the topic is released to the recipients it listed "
        "only; one that listed none is cancelled.",
    )
    def delete(self, request: TenantRequest, key: str) -> Response:
        topic_delete(topic=_topic_or_404(key))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[TOPIC_KEY])
class TopicSubscribersApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(topic_docs.SUBSCRIBER),
        operation_id="topics_subscribers_list",
        description="The topic's subscribers, the latest subscribed first.",
    )
    def get(self, request: TenantRequest, key: str) -> Response:
        topic = _topic_or_404(key)
        return page_response(request, selectors.topic_subscribers(topic=topic), subscriber_payload)

    @extend_schema(
        request=SubscribersAddSerializer,
        responses=topic_docs.SUBSCRIBED,
        operation_id="topics_subscribers_add",
        description="Subscribes up to 10,000 users at once, given as a send's recipients (an "
        "external id, or an object with `id` and optional `email`, `name`, `locale`); unknown "
        "users are created, as by a send. Users subscribed already stay so.",
    )
    def post(self, request: TenantRequest, key: str) -> Response:
        topic = _topic_or_404(key)
        users = validated(SubscribersAddSerializer, request.data)["subscribers"]
        unique = list({user.external_id: user for user in reversed(users)}.values())[::-1]
        added = topic_subscribe(topic=topic, users=unique)
        subscribers = getattr(_counted(key), "subscriber_count", 0)  # annotated by topic_list
        return Response({"subscribed": added, "subscribers": subscribers})


@extend_schema(parameters=[TOPIC_KEY, EXTERNAL_ID])
class TopicSubscriberDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        request=None,
        responses={200: topic_docs.SUBSCRIBER, 201: topic_docs.SUBSCRIBER},
        operation_id="topics_subscribers_put",
        description="Subscribes the user (201; 200 if subscribed already). An unknown user is "
        "created, as by a send.",
    )
    def put(self, request: TenantRequest, key: str, external_id: str) -> Response:
        topic = _topic_or_404(key)
        external_id = _checked_external_id(external_id)
        added = topic_subscribe(topic=topic, users=[RecipientInput(external_id=external_id)])
        subscription = selectors.topic_subscribers(topic=topic).get(user__external_id=external_id)
        return Response(
            subscriber_payload(subscription),
            status=status.HTTP_201_CREATED if added else status.HTTP_200_OK,
        )

    @extend_schema(
        responses={204: None},
        operation_id="topics_subscribers_delete",
        description="Unsubscribes the user: 204 whether or not they were subscribed (or exist); "
        "404 only for an unknown topic.",
    )
    def delete(self, request: TenantRequest, key: str, external_id: str) -> Response:
        topic = _topic_or_404(key)
        user = end_user_get(external_id=external_id)
        if user is not None:
            topic_unsubscribe(topic=topic, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeTopicsApi(MeApi):
    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(topic_docs.MY_TOPIC),
        operation_id="me_topics_list",
        description="The self-service topics, each with whether the user is subscribed. Topics "
        "that are not self-service are not shown.",
    )
    def get(self, request: EndUserRequest) -> Response:
        return page_response(
            request, selectors.self_service_topics(user=self.me(request)), my_topic_payload
        )

    @extend_schema(
        request=MyTopicsSerializer,
        responses=topic_docs.MY_TOPICS_SET,
        operation_id="me_topics_update",
        description="Sets which self-service topics the user is subscribed to: exactly those "
        "named (every other self-service topic is unsubscribed). Topics that are not "
        "self-service keep their subscriptions as the tenant set them; naming one, or an "
        "unknown key, is refused with 400 and changes nothing.",
    )
    def put(self, request: EndUserRequest) -> Response:
        keys = validated(MyTopicsSerializer, request.data)["subscribed"]
        return Response({"subscribed": my_topics_set(user=self.me(request), keys=keys)})
