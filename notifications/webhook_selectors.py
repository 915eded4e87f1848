"""Reads on a tenant's webhook endpoints and deliveries. Call inside the tenant's schema.

Lookups of one object return None for "missing" and "not yours" alike (another tenant's rows
live in another schema), so callers answer the same 404 for both.
"""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

# How many of a delivery's attempts its detail shows, newest first.
RECENT_ATTEMPTS = 20
DELIVERY_STATUSES: tuple[str, ...] = tuple(WebhookDelivery.Status.values)
DELIVERY_FIELDS = (
    "id", "endpoint_id", "event", "msg_id", "status", "attempts", "last_status_code",
    "last_error", "locked_until", "created_at", "sent_at",
)  # fmt: skip


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.defer("secret_encrypted")


def webhook_endpoint_get(*, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(pk=endpoint_id).first()


def webhook_delivery_list(
    *, endpoint_id: int | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The tenant's webhook deliveries (without their bodies), optionally of one endpoint
    and in one status; the caller orders and pages them."""
    queryset = WebhookDelivery.objects.only(*DELIVERY_FIELDS)
    if endpoint_id is not None:
        queryset = queryset.filter(endpoint_id=endpoint_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    return queryset


def webhook_delivery_get(*, delivery_id: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.only(*DELIVERY_FIELDS).filter(pk=delivery_id).first()


def webhook_attempts_recent(
    *, delivery: WebhookDelivery, limit: int = RECENT_ATTEMPTS
) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery=delivery).order_by("-id")[:limit])


def webhook_attempts_by_delivery(
    *, delivery_ids: list[int], per_delivery: int
) -> dict[int, list[WebhookAttempt]]:
    """The newest ``per_delivery`` attempts of each delivery, in one query (for a page of
    deliveries)."""
    attempts: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    for attempt in WebhookAttempt.objects.filter(delivery_id__in=delivery_ids).order_by("-id"):
        kept = attempts[attempt.delivery_id]
        if len(kept) < per_delivery:
            kept.append(attempt)
    return attempts
