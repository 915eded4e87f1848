"""Input validation and output shapes of the webhook API.

The services validate every field themselves (``services.webhook_endpoints``); these serializers
check JSON types, refuse unknown fields, and describe the bodies for the schema. No output shape
carries an endpoint's secret: only the answers that create or rotate one add it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from herald.fields import PatternField, StrictBooleanField, StrictCharField, StrictSerializer
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.rules import TYPE_KEY_MESSAGE, TYPE_KEY_PATTERN
from notifications.services.webhook_endpoints import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from notifications.webhooks.events import WEBHOOK_EVENTS

MAX_FILTERS = 100


class WebhookEndpointSerializer(StrictSerializer):
    """``POST /api/v1/webhook-endpoints``; a PATCH takes any subset (``partial=True``)."""

    url = StrictCharField(
        max_length=URL_MAX_LENGTH,
        help_text="https, and a host that resolves only to public addresses (or inside "
        "WEBHOOK_ALLOWED_CIDRS, where plain http is allowed too).",
    )
    description = StrictCharField(
        required=False, allow_blank=True, max_length=DESCRIPTION_MAX_LENGTH
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENTS),
        required=False,
        max_length=len(WEBHOOK_EVENTS) * 2,
        help_text="The events to receive; empty or left out: all of them.",
    )
    types = serializers.ListField(
        child=PatternField(TYPE_KEY_PATTERN, message=TYPE_KEY_MESSAGE, max_length=100),
        required=False,
        max_length=MAX_FILTERS,
        help_text="Only notifications (and their deliveries) of these type keys; empty or left "
        "out: all types.",
    )
    enabled = StrictBooleanField(required=False, help_text="Default true.")


def webhook_endpoint_payload(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "types": list(endpoint.types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def webhook_delivery_payload(delivery: WebhookDelivery) -> dict[str, Any]:
    """A row of ``GET /api/v1/webhook-deliveries``. ``next_attempt_at`` is a queued delivery's
    ``locked_until``, the time it waits for (null: as soon as a worker gets to it), and null
    for every other status."""
    queued = delivery.status == WebhookDelivery.Status.QUEUED
    return {
        "id": delivery.pk,
        "endpoint": delivery.endpoint_id,
        "event": delivery.event,
        "msg_id": delivery.msg_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.locked_until if queued else None,
        "created_at": delivery.created_at,
        "sent_at": delivery.sent_at,
    }


def webhook_attempt_payload(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": attempt.attempted_at,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_excerpt": attempt.response_excerpt,
        "error": attempt.error,
    }


def webhook_delivery_detail_payload(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    """``GET /api/v1/webhook-deliveries/{id}``: the row and ``attempts``, newest first."""
    return {
        **webhook_delivery_payload(delivery),
        "attempts_log": [webhook_attempt_payload(attempt) for attempt in attempts],
    }
