"""Web push API views: the server's public key, and an end user's browser subscriptions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from herald.api import page_response, validated
from herald.errors import ApiError
from herald.fields import PatternField, StrictCharField
from notifications import selectors
from notifications.apis import MeApi
from notifications.channels.push.vapid import vapid_public_key
from notifications.models import PushSubscription
from notifications.services.push_subscriptions import (
    ENDPOINT_MAX_LENGTH,
    push_subscription_delete,
    push_subscription_save,
)
from tenants.permissions import IsAnyCaller
from tenants.requests import EndUserRequest, TenantRequest

# base64url of 65 bytes (an uncompressed point: its first byte 0x04 reads "B") and of 16 bytes,
# padded or not. The service checks the rest: the point is on the curve.
P256DH_PATTERN = "^B[A-Za-z0-9_-]{86}=?$"
AUTH_PATTERN = "^[A-Za-z0-9_-]{22}(==)?$"


class PushKeysSerializer(serializers.Serializer[Any]):
    p256dh = PatternField(
        P256DH_PATTERN,
        message="The browser's P-256 public key: base64url of an uncompressed point (65 bytes).",
        help_text="The browser's P-256 public key (base64url of an uncompressed point).",
    )
    auth = PatternField(
        AUTH_PATTERN,
        message="The browser's authentication secret: base64url of 16 bytes.",
        help_text="The browser's authentication secret (base64url of 16 bytes).",
    )


class PushSubscriptionSerializer(serializers.Serializer[Any]):
    """A browser's ``PushSubscription.toJSON()``, as the browser gives it (other fields a
    browser may add are ignored)."""

    endpoint = StrictCharField(
        max_length=ENDPOINT_MAX_LENGTH,
        help_text="The push service's URL for this browser: https, on a host that resolves to "
        "public addresses only.",
    )
    keys = PushKeysSerializer()
    expirationTime = serializers.FloatField(  # the browser's own field name
        required=False, allow_null=True, help_text="Ignored: the push service says when it ends."
    )


PUBLIC_KEY = inline_serializer(
    name="PushPublicKey",
    fields={
        "vapid_public_key": serializers.CharField(
            help_text="The server's VAPID public key: an uncompressed P-256 point, base64url "
            "without padding. Pass it to pushManager.subscribe() as applicationServerKey."
        )
    },
)
SUBSCRIPTION_ID = inline_serializer(
    name="PushSubscriptionId", fields={"id": serializers.IntegerField()}
)
SUBSCRIPTION = inline_serializer(
    name="PushSubscriptionSummary",
    fields={
        "id": serializers.IntegerField(),
        "endpoint": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "last_used_at": serializers.DateTimeField(
            allow_null=True, help_text="When a push service last accepted a message for it."
        ),
    },
)


def subscription_payload(subscription: PushSubscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "endpoint": subscription.endpoint,
        "created_at": subscription.created_at,
        "last_used_at": subscription.last_used_at,
    }


class PushPublicKeyApi(APIView):
    permission_classes = [IsAnyCaller]

    @extend_schema(responses=PUBLIC_KEY, operation_id="push_public_key")
    def get(self, request: TenantRequest) -> Response:
        return Response({"vapid_public_key": vapid_public_key()})


class MePushSubscriptionsApi(MeApi):
    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(SUBSCRIPTION),
        operation_id="me_push_subscriptions_list",
    )
    def get(self, request: EndUserRequest) -> Response:
        queryset = selectors.push_subscription_list(user=self.me(request))
        return page_response(request, queryset, subscription_payload)

    @extend_schema(
        request=PushSubscriptionSerializer,
        responses={201: SUBSCRIPTION_ID, 200: SUBSCRIPTION_ID},
        operation_id="me_push_subscriptions_create",
        description="Saves the browser's subscription for the caller: 201 with its id. An "
        "endpoint saved before (by this user or another of the tenant's) is updated instead: "
        "its keys replaced, moved to the caller, 200 with the same id. The endpoint must be an "
        "https URL whose host resolves to public addresses only. A user keeps at most 20 "
        "subscriptions; a new one replaces the oldest.",
    )
    def post(self, request: EndUserRequest) -> Response:
        data = validated(PushSubscriptionSerializer, request.data)
        subscription, created = push_subscription_save(
            user=self.me(request),
            endpoint=data["endpoint"],
            p256dh=data["keys"]["p256dh"],
            auth=data["keys"]["auth"],
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(
            {"id": subscription.pk},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MePushSubscriptionDetailApi(MeApi):
    @extend_schema(responses={204: None}, operation_id="me_push_subscriptions_delete")
    def delete(self, request: EndUserRequest, subscription_id: int) -> Response:
        subscription = selectors.push_subscription_get(
            user=self.me(request), subscription_id=subscription_id
        )
        if subscription is None:
            raise ApiError(404, "not_found", "No such push subscription.")
        push_subscription_delete(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)
