"""The events a webhook endpoint can receive, and the body each is POSTed with.

Every body is ``{"type": <event>, "timestamp": <ISO 8601>, "data": {...}}`` (the contract,
"Outbound webhooks"). ``notification.*`` carry the notification as the end-user API shows it
plus ``recipient`` (external id) and ``send``; ``delivery.*`` carry a delivery row as
``GET /api/v1/deliveries`` lists it. Both reuse the API's own payload functions, so the shapes
cannot drift apart.

``webhook_message_id`` names one event for its whole life: it is the ``webhook-id`` header of
every attempt, retries included, so a receiver can deduplicate. The delivery work stores it
with the event's outbox row and never makes a new one for a retry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal, TypedDict

from notifications.events import delivery_payload, notification_payload

NOTIFICATION_CREATED: Final = "notification.created"
NOTIFICATION_READ: Final = "notification.read"
DELIVERY_SENT: Final = "delivery.sent"
DELIVERY_FAILED: Final = "delivery.failed"

WebhookEventName = Literal[
    "notification.created", "notification.read", "delivery.sent", "delivery.failed"
]

# The one list of events; an endpoint's empty ``events`` means all of these.
WEBHOOK_EVENTS: Final[tuple[WebhookEventName, ...]] = (
    NOTIFICATION_CREATED,
    NOTIFICATION_READ,
    DELIVERY_SENT,
    DELIVERY_FAILED,
)
WEBHOOK_EVENT_CHOICES: Final = [(name, name) for name in WEBHOOK_EVENTS]
# Sent only on request (``POST /api/v1/webhook-endpoints/{id}/test``), to that one endpoint,
# whatever its filters: not one of ``WEBHOOK_EVENTS``, so no endpoint subscribes to it.
WEBHOOK_TEST: Final = "webhook.test"


class NotificationEventData(TypedDict):
    """``notification_payload`` with the recipient: the data of ``notification.*``."""

    id: int
    type: str
    title: str
    message: str
    url: str
    data: dict[str, Any]
    created_at: datetime
    is_read: bool
    read_at: datetime | None
    archived: bool
    recipient: str
    send: int


class DeliveryEventData(TypedDict):
    """``delivery_payload``: the data of ``delivery.*``."""

    id: int
    send: int
    notification: int | None
    recipient: str
    channel: str
    status: str
    attempts: int
    last_error: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    deliver_at: datetime | None  # a delayed channel's release (``channel_rules``)


class NotificationEvent(TypedDict):
    type: Literal["notification.created", "notification.read"]
    timestamp: str
    data: NotificationEventData


class DeliveryEvent(TypedDict):
    type: Literal["delivery.sent", "delivery.failed"]
    timestamp: str
    data: DeliveryEventData


class WebhookTestData(TypedDict):
    endpoint: int


class WebhookTestEvent(TypedDict):
    type: Literal["webhook.test"]
    timestamp: str
    data: WebhookTestData


WebhookEvent = NotificationEvent | DeliveryEvent | WebhookTestEvent


def webhook_message_id() -> str:
    """A new event's id (``msg_`` and a random UUID's hex), for its ``webhook-id`` header."""
    return f"msg_{uuid.uuid4().hex}"


def notification_event(
    event: Literal["notification.created", "notification.read"],
    *,
    row: dict[str, Any],
    timestamp: datetime,
) -> NotificationEvent:
    """The body of a ``notification.*`` event, from a row of
    ``notification_rows(..., with_recipient=True)``."""
    if event not in (NOTIFICATION_CREATED, NOTIFICATION_READ):
        raise ValueError(f"Not a notification event: {event!r}.")
    if "recipient_external_id" not in row:
        raise ValueError("The row needs the recipient: notification_rows(with_recipient=True).")
    data: Any = notification_payload(row)
    return {"type": event, "timestamp": timestamp.isoformat(), "data": data}


def delivery_event(
    event: Literal["delivery.sent", "delivery.failed"],
    *,
    row: dict[str, Any],
    timestamp: datetime,
) -> DeliveryEvent:
    """The body of a ``delivery.*`` event, from a row of ``DELIVERY_VALUES``."""
    if event not in (DELIVERY_SENT, DELIVERY_FAILED):
        raise ValueError(f"Not a delivery event: {event!r}.")
    data: Any = delivery_payload(row)
    return {"type": event, "timestamp": timestamp.isoformat(), "data": data}


def webhook_test_event(*, endpoint_id: int, timestamp: datetime) -> WebhookTestEvent:
    """The body of a ``webhook.test`` event to the endpoint ``endpoint_id``."""
    return {
        "type": WEBHOOK_TEST,
        "timestamp": timestamp.isoformat(),
        "data": {"endpoint": endpoint_id},
    }
