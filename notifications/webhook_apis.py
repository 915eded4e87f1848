"""Webhook API views (API key or admin token): endpoints, a test event, the delivery log and
retries. Validate, call one service or selector, shape the response."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from herald.api import id_param, page_response, query_param, validated
from herald.errors import ApiError
from notifications import webhook_selectors as selectors
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.services.webhook_endpoints import (
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from notifications.webhook_serializers import (
    WebhookEndpointSerializer,
    webhook_delivery_detail_payload,
    webhook_delivery_payload,
    webhook_endpoint_payload,
)
from tenants.permissions import IsServer
from tenants.requests import TenantRequest


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = selectors.webhook_endpoint_get(endpoint_id=endpoint_id)
    if endpoint is None:
        raise ApiError(404, "not_found", "No such webhook endpoint.")
    return endpoint


def _delivery_or_404(delivery_id: int) -> WebhookDelivery:
    delivery = selectors.webhook_delivery_get(delivery_id=delivery_id)
    if delivery is None:
        raise ApiError(404, "not_found", "No such webhook delivery.")
    return delivery


class WebhookEndpointsApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(docs.WEBHOOK_ENDPOINT),
        operation_id="webhook_endpoints_list",
    )
    def get(self, request: TenantRequest) -> Response:
        return page_response(request, selectors.webhook_endpoint_list(), webhook_endpoint_payload)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses={201: docs.WEBHOOK_ENDPOINT_WITH_SECRET},
        examples=[docs.WEBHOOK_ENDPOINT_EXAMPLE],
        operation_id="webhook_endpoints_create",
        description="The answer carries the endpoint's signing secret (`whsec_...`): shown "
        "once, never again (rotate it to get a new one). A URL that is not https, or whose "
        "host resolves to a loopback, private, link-local or other reserved address (outside "
        "`WEBHOOK_ALLOWED_CIDRS`), is refused with 400, as is one endpoint more than the "
        "plan allows.",
    )
    def post(self, request: TenantRequest) -> Response:
        fields = validated(WebhookEndpointSerializer, request.data)
        endpoint, secret = webhook_endpoint_create(tenant=request.tenant, **fields)
        return Response(
            {**webhook_endpoint_payload(endpoint), "secret": secret},
            status=status.HTTP_201_CREATED,
        )


ENDPOINT_ID = OpenApiParameter("endpoint_id", OpenApiTypes.INT, OpenApiParameter.PATH)
DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema(parameters=[ENDPOINT_ID])
class WebhookEndpointDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=docs.WEBHOOK_ENDPOINT, operation_id="webhook_endpoints_retrieve")
    def get(self, request: TenantRequest, endpoint_id: int) -> Response:
        return Response(webhook_endpoint_payload(_endpoint_or_404(endpoint_id)))

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses=docs.WEBHOOK_ENDPOINT,
        operation_id="webhook_endpoints_update",
        description="Changes the fields given. Enabling a disabled endpoint clears why it was "
        "disabled and its run of failures.",
    )
    def patch(self, request: TenantRequest, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(endpoint_id)
        serializer = WebhookEndpointSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(
            tenant=request.tenant, endpoint=endpoint, **serializer.validated_data
        )
        return Response(webhook_endpoint_payload(endpoint))

    @extend_schema(responses={204: None}, operation_id="webhook_endpoints_delete")
    def delete(self, request: TenantRequest, endpoint_id: int) -> Response:
        webhook_endpoint_delete(endpoint=_endpoint_or_404(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[ENDPOINT_ID])
class WebhookEndpointRotateSecretApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        request=None,
        responses=docs.WEBHOOK_SECRET,
        operation_id="webhook_endpoints_rotate_secret",
        description="A new signing secret, shown once; the old one stops signing at once.",
    )
    def post(self, request: TenantRequest, endpoint_id: int) -> Response:
        secret = webhook_endpoint_rotate_secret(endpoint=_endpoint_or_404(endpoint_id))
        return Response({"secret": secret})


@extend_schema(parameters=[ENDPOINT_ID])
class WebhookEndpointTestApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        request=None,
        responses={202: docs.WEBHOOK_DELIVERY},
        operation_id="webhook_endpoints_test",
        description='Queues a `webhook.test` event, `{"type": "webhook.test", "timestamp", '
        '"data": {"endpoint": <id>}}`, to this endpoint alone, whatever its `events` and '
        "`types`. Answers its delivery; follow it in `GET /api/v1/webhook-deliveries/{id}`. "
        "409 when the endpoint is disabled.",
    )
    def post(self, request: TenantRequest, endpoint_id: int) -> Response:
        delivery = webhook_endpoint_test(
            tenant=request.tenant, endpoint=_endpoint_or_404(endpoint_id)
        )
        return Response(webhook_delivery_payload(delivery), status=status.HTTP_202_ACCEPTED)


class WebhookDeliveriesApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        parameters=[
            docs.id_parameter("endpoint", "Only this endpoint's deliveries."),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=list(selectors.DELIVERY_STATUSES),
                description="Only deliveries in this status.",
            ),
            *docs.PAGE_PARAMETERS,
        ],
        responses=docs.page_of(docs.WEBHOOK_DELIVERY),
        operation_id="webhook_deliveries_list",
    )
    def get(self, request: TenantRequest) -> Response:
        endpoint_id = id_param(request, "endpoint", what="webhook endpoint")
        status_filter = query_param(request, "status")
        if status_filter is not None and status_filter not in selectors.DELIVERY_STATUSES:
            raise ApiError(
                400,
                "invalid",
                "Invalid filters.",
                {"status": [f"One of: {', '.join(selectors.DELIVERY_STATUSES)}."]},
            )
        queryset = selectors.webhook_delivery_list(endpoint_id=endpoint_id, status=status_filter)
        return page_response(request, queryset, webhook_delivery_payload)


@extend_schema(parameters=[DELIVERY_ID])
class WebhookDeliveryDetailApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        responses=docs.WEBHOOK_DELIVERY_DETAIL, operation_id="webhook_deliveries_retrieve"
    )
    def get(self, request: TenantRequest, delivery_id: int) -> Response:
        delivery = _delivery_or_404(delivery_id)
        attempts = selectors.webhook_attempts_recent(delivery=delivery)
        return Response(webhook_delivery_detail_payload(delivery, attempts))


@extend_schema(parameters=[DELIVERY_ID])
class WebhookDeliveryRetryApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(
        request=None,
        responses={202: docs.WEBHOOK_DELIVERY},
        operation_id="webhook_deliveries_retry",
        description="Queues a `failed` or `suppressed_quota` delivery again, with its attempts "
        "counted from zero and the same `webhook-id` and body. 409 for one that is queued or "
        "sent, or whose endpoint is disabled.",
    )
    def post(self, request: TenantRequest, delivery_id: int) -> Response:
        delivery = webhook_delivery_retry(
            tenant=request.tenant, delivery=_delivery_or_404(delivery_id)
        )
        return Response(webhook_delivery_payload(delivery), status=status.HTTP_202_ACCEPTED)
