"""Notification API views: validate, call one service or selector, shape the response."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs, topic_docs
from herald.api import id_param, page_body, page_response, query_param, validated
from herald.errors import ApiError
from herald.pagination import decode_cursor, page_of_rows, parse_limit
from notifications import selectors
from notifications.events import delivery_payload, notification_payload, notification_rows
from notifications.models import Delivery, EndUser
from notifications.rules import TYPE_KEY_MESSAGE, TYPE_KEY_PATTERN, type_key_valid
from notifications.serializers import (
    MAX_EXTERNAL_ID,
    InboxPatchSerializer,
    PreferencesSerializer,
    SendSerializer,
    TypeUpsertSerializer,
    UserUpsertSerializer,
    end_user_payload,
    type_payload,
)
from notifications.services.inbox import inbox_mark_read, inbox_update
from notifications.services.preferences import preferences_set
from notifications.services.sending import (
    SendInput,
    notification_send,
    request_fingerprint,
    send_cancel,
)
from notifications.services.types import type_upsert
from notifications.services.users import user_erase, user_upsert
from notifications.unread import unread_count
from tenants.permissions import IsEndUser, IsServer
from tenants.requests import EndUserRequest, TenantRequest
from tenants.serializers import WidgetStringsField
from tenants.tokens import USER_GONE, end_user_token_issue

MAX_IDEMPOTENCY_KEY = 255
# Path parameters, as the schema documents them (drf-spectacular would say "any string").
EXTERNAL_ID = OpenApiParameter(
    "external_id",
    {"type": "string", "minLength": 1, "maxLength": MAX_EXTERNAL_ID},
    OpenApiParameter.PATH,
    description="Your id for the user (external id).",
)
TYPE_KEY = OpenApiParameter(
    "key", {"type": "string", "pattern": TYPE_KEY_PATTERN}, OpenApiParameter.PATH
)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


def _checked_external_id(external_id: str) -> str:
    if not 1 <= len(external_id) <= MAX_EXTERNAL_ID:
        raise ApiError(
            400, "invalid", "Invalid user id.", {"id": [f"1 to {MAX_EXTERNAL_ID} characters."]}
        )
    return external_id


def _user_or_404(external_id: str) -> EndUser:
    user = selectors.end_user_get(external_id=external_id)
    if user is None:
        raise _not_found("user")
    return user


# --- Server API (secret API key or admin token) ----------------------------------------------


@extend_schema(parameters=[EXTERNAL_ID])
class UserDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=docs.END_USER, operation_id="users_retrieve")
    def get(self, request: TenantRequest, external_id: str) -> Response:
        return Response(end_user_payload(_user_or_404(external_id)))

    @extend_schema(
        request=UserUpsertSerializer,
        responses={200: docs.END_USER, 201: docs.END_USER},
        operation_id="users_upsert",
    )
    def put(self, request: TenantRequest, external_id: str) -> Response:
        fields = validated(UserUpsertSerializer, request.data)
        user, created = user_upsert(external_id=_checked_external_id(external_id), fields=fields)
        return Response(
            end_user_payload(user),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(responses={204: None}, operation_id="users_erase")
    def delete(self, request: TenantRequest, external_id: str) -> Response:
        user_erase(tenant_id=request.tenant.pk, user=_user_or_404(external_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[EXTERNAL_ID])
class UserTokenApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(request=None, responses=docs.END_USER_TOKEN, operation_id="users_token")
    def post(self, request: TenantRequest, external_id: str) -> Response:
        user, _created = user_upsert(external_id=_checked_external_id(external_id), fields={})
        issued = end_user_token_issue(
            tenant=request.tenant, end_user_pk=user.pk, external_id=user.external_id
        )
        return Response({"token": issued.token, "expires_at": issued.expires_at})


class NotificationsApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=[
            OpenApiParameter("recipient", OpenApiTypes.STR, description="A user's external id."),
            OpenApiParameter("type", OpenApiTypes.STR, description="A notification type key."),
            *docs.PAGE_PARAMETERS,
        ],
        responses=docs.page_of(docs.SERVER_NOTIFICATION),
        operation_id="notifications_list",
    )
    def get(self, request: TenantRequest) -> Response:
        queryset = selectors.notification_list(
            recipient=query_param(request, "recipient"), type_key=query_param(request, "type")
        )
        return page_response(
            request, notification_rows(queryset, with_recipient=True), notification_payload
        )

    @extend_schema(
        request=SendSerializer,
        responses={202: docs.SEND_ACCEPTED},
        examples=[docs.SEND_EXAMPLE, docs.ESCALATION_EXAMPLE, topic_docs.TOPIC_SEND_EXAMPLE],
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
                OpenApiParameter.HEADER,
                description="Repeat a request safely for 24 hours: the same key and body return "
                "the first response; the same key with another body gets 409.",
            )
        ],
        operation_id="notifications_send",
        description="Give `recipients`, a `topic`, or both. A topic's subscribers at the "
        "moment the send is released are recipients too, each once; `recipients` in the answer "
        "counts the audience at acceptance, which the plan's recipients per send bounds (400 "
        "naming `topic` for a larger one). An unknown topic is 404 naming `topic`.",
    )
    def post(self, request: TenantRequest) -> Response:
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ApiError(
                400,
                "invalid",
                "Invalid Idempotency-Key header.",
                {"Idempotency-Key": [f"1 to {MAX_IDEMPOTENCY_KEY} characters."]},
            )
        data = validated(SendSerializer, request.data)
        outcome = notification_send(
            tenant=request.tenant,
            request=SendInput(**data),
            fingerprint=request_fingerprint(request.data),
            idempotency_key=idempotency_key,
            actor=getattr(request.user, "actor", None) or f"admin:{request.user.pk}",
        )
        return Response(outcome.response, status=status.HTTP_202_ACCEPTED)


class SendDetailApi(APIView):
    permission_classes = [IsServer]

    def _send(self, send_id: int) -> Any:
        send = selectors.send_get(send_id=send_id)
        if send is None:
            raise _not_found("send")
        return send

    @staticmethod
    def _payload(send: Any) -> dict[str, Any]:
        return {
            "id": send.pk,
            "type": send.type.key,
            "status": send.status,
            "recipients": send.recipient_count,
            "created_at": send.created_at,
            "send_at": send.send_at,
            "topic": send.topic.key if send.topic_id else None,
            "cancel_reason": send.cancel_reason or None,
            "channels": selectors.send_channel_summary(send=send),
        }

    @extend_schema(responses=docs.SEND, operation_id="sends_retrieve")
    def get(self, request: TenantRequest, send_id: int) -> Response:
        return Response(self._payload(self._send(send_id)))

    @extend_schema(responses={200: docs.SEND}, operation_id="sends_cancel")
    def delete(self, request: TenantRequest, send_id: int) -> Response:
        return Response(self._payload(send_cancel(send=self._send(send_id))))


class DeliveriesApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=[
            docs.id_parameter("send", "A send's id."),
            OpenApiParameter("recipient", OpenApiTypes.STR, description="A user's external id."),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=list(Delivery.Status.values),
                description="Only deliveries in this status.",
            ),
            *docs.PAGE_PARAMETERS,
        ],
        responses=docs.page_of(docs.DELIVERY),
        operation_id="deliveries_list",
    )
    def get(self, request: TenantRequest) -> Response:
        send_id = id_param(request, "send", what="send")
        status_filter = query_param(request, "status")
        if status_filter is not None and status_filter not in Delivery.Status.values:
            raise ApiError(
                400,
                "invalid",
                "Invalid filters.",
                {"status": [f"One of: {', '.join(Delivery.Status.values)}."]},
            )
        queryset = selectors.delivery_list(
            send_id=send_id, recipient=query_param(request, "recipient"), status=status_filter
        )
        return page_response(request, queryset, delivery_payload)


class TypesApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(docs.NOTIFICATION_TYPE),
        operation_id="types_list",
    )
    def get(self, request: TenantRequest) -> Response:
        return page_response(request, selectors.type_list(), type_payload)


@extend_schema(parameters=[TYPE_KEY])
class TypeDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=docs.NOTIFICATION_TYPE, operation_id="types_retrieve")
    def get(self, request: TenantRequest, key: str) -> Response:
        notification_type = selectors.type_get(key=key)
        if notification_type is None:
            raise _not_found("notification type")
        return Response(type_payload(notification_type))

    @extend_schema(
        request=TypeUpsertSerializer,
        responses={200: docs.NOTIFICATION_TYPE, 201: docs.NOTIFICATION_TYPE},
        operation_id="types_upsert",
        description="Creates the type, or changes the fields given. The body may include the "
        "read-only fields a GET returned (`key`, `created_at`, `updated_at`): they are ignored, "
        "but a `key` other than the URL's is refused with 400 (a type cannot be renamed).",
    )
    def put(self, request: TenantRequest, key: str) -> Response:
        if not type_key_valid(key):
            raise ApiError(400, "invalid", "Invalid type key.", {"key": [TYPE_KEY_MESSAGE]})
        fields = validated(TypeUpsertSerializer, request.data)
        if fields.pop("key", key) != key:
            raise ApiError(
                400,
                "invalid",
                "The request is invalid; see details.",
                {"key": ["A type keeps its key: leave it out, or send the URL's."]},
            )
        fields.pop("created_at", None)
        fields.pop("updated_at", None)
        notification_type, created = type_upsert(tenant=request.tenant, key=key, fields=fields)
        return Response(
            type_payload(notification_type),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- End-user API (end-user token) ---------------------------------------------------------------


class MeApi(APIView):
    permission_classes = [IsEndUser]

    def me(self, request: EndUserRequest) -> EndUser:
        end_user: EndUser = request.user.end_user
        return end_user


class MeNotificationsApi(MeApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=selectors.INBOX_STATUSES),
            *docs.PAGE_PARAMETERS,
        ],
        responses=docs.page_of(docs.NOTIFICATION),
        operation_id="me_notifications_list",
    )
    def get(self, request: EndUserRequest) -> Response:
        inbox_status = query_param(request, "status")
        inbox_status = "all" if inbox_status is None else inbox_status
        if inbox_status not in selectors.INBOX_STATUSES:
            raise ApiError(
                400,
                "invalid",
                "Invalid status filter.",
                {"status": [f"One of: {', '.join(selectors.INBOX_STATUSES)}."]},
            )
        limit = parse_limit(query_param(request, "limit"))
        cursor = query_param(request, "cursor")
        rows = selectors.inbox_page(
            tenant_id=request.tenant.pk,
            user_id=request.user.end_user_id,
            status=cast("selectors.InboxStatus", inbox_status),  # one of INBOX_STATUSES
            before=decode_cursor(cursor) if cursor is not None else None,
            limit=limit + 1,
        )
        if rows is None:
            raise AuthenticationFailed(USER_GONE)
        return Response(page_body(page_of_rows(rows, limit=limit), notification_payload))


class MeUnreadCountApi(MeApi):
    @extend_schema(responses=docs.COUNT, operation_id="me_notifications_unread_count")
    def get(self, request: EndUserRequest) -> Response:
        return Response(
            {"count": unread_count(tenant_id=request.tenant.pk, user_id=self.me(request).pk)}
        )


class MeNotificationDetailApi(MeApi):
    @extend_schema(
        request=InboxPatchSerializer,
        responses=docs.NOTIFICATION,
        operation_id="me_notifications_update",
    )
    def patch(self, request: EndUserRequest, notification_id: int) -> Response:
        user = self.me(request)
        notification = selectors.inbox_notification_get(user=user, notification_id=notification_id)
        if notification is None:
            raise _not_found("notification")
        changes = validated(InboxPatchSerializer, request.data)
        inbox_update(
            tenant=request.tenant,
            user=user,
            notification=notification,
            is_read=changes.get("is_read"),
            archived=changes.get("archived"),
        )
        row = notification_rows(selectors.inbox(user=user, status="all").filter(pk=notification.pk))
        return Response(notification_payload(row.get()))


class MeReadAllApi(MeApi):
    @extend_schema(request=None, responses=docs.UPDATED, operation_id="me_notifications_read_all")
    def post(self, request: EndUserRequest) -> Response:
        changed = inbox_mark_read(tenant=request.tenant, user=self.me(request))
        return Response({"updated": len(changed)})


WIDGET_SETTINGS = inline_serializer(
    name="WidgetSettings",
    fields={
        "name": serializers.CharField(help_text="The tenant's name."),
        "brand_color": serializers.CharField(help_text="#rrggbb: the widget's default accent."),
        "logo_url": serializers.CharField(help_text="The tenant's logo (http/https), or ''."),
        "locale": serializers.CharField(
            help_text="The user's locale, or '': the widget's language when the page sets none."
        ),
        "strings": WidgetStringsField(
            help_text="The tenant's replacements of the widget's strings, by language or tag."
        ),
    },
)


class MeWidgetApi(MeApi):
    """What the widget needs besides the inbox: the tenant's branding, the user's locale and
    the tenant's replacements of the widget's strings."""

    @extend_schema(responses=WIDGET_SETTINGS, operation_id="me_widget_retrieve")
    def get(self, request: EndUserRequest) -> Response:
        tenant = request.tenant
        return Response(
            {
                "name": tenant.name,
                "brand_color": tenant.brand_color,
                "logo_url": tenant.logo_url,
                "locale": self.me(request).locale,
                "strings": tenant.widget_strings,
            }
        )


class MePreferencesApi(MeApi):
    @extend_schema(responses=docs.PREFERENCES, operation_id="me_preferences_retrieve")
    def get(self, request: EndUserRequest) -> Response:
        return Response(selectors.preferences_get(user=self.me(request)))

    @extend_schema(
        request=PreferencesSerializer,
        responses=docs.PREFERENCES,
        operation_id="me_preferences_update",
    )
    def put(self, request: EndUserRequest) -> Response:
        user = self.me(request)
        changes = validated(PreferencesSerializer, request.data)
        preferences_set(
            user=user,
            channels=changes.get("channels"),
            types=changes.get("types"),
            locale=changes.get("locale"),
            timezone=changes.get("timezone"),
        )
        return Response(selectors.preferences_get(user=user))
