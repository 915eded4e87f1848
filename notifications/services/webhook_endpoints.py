"""Webhook endpoints: create, change, delete, rotate the signing secret; queue a test event to
one, and queue a failed delivery again.

Call inside the tenant's schema. Every refusal is a domain error (``herald.domain``) whose
``details`` name the fields. The secret is returned only by ``webhook_endpoint_create`` and
``webhook_endpoint_rotate_secret``; nothing else hands it out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing_stub.limits import limits_for
from herald import egress
from herald.domain import Conflict, Invalid, LimitExceeded
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.rules import type_key_valid
from notifications.webhooks.delivery import webhooks_enqueue
from notifications.webhooks.events import (
    WEBHOOK_EVENTS,
    WEBHOOK_TEST,
    webhook_message_id,
    webhook_test_event,
)
from notifications.webhooks.signing import webhook_secret_new, webhook_secret_seal
from tenants.models import Tenant

URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 500
_UNSET: Any = object()


def _url_refusal(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint's, or None: too long, or refused by the outbound
    address guard (``herald.egress``: syntax, https unless inside ``WEBHOOK_ALLOWED_CIDRS``, and
    every address the host resolves to public or allowed). The guard checks again when
    connecting, so a DNS change after the save reaches nothing it refuses."""
    if len(url) > URL_MAX_LENGTH:
        return f"At most {URL_MAX_LENGTH} characters."
    return egress.url_refusal(url)


def _clean(*, url: Any, description: Any, events: Any, types: Any, enabled: Any) -> dict[str, Any]:
    """The given fields, validated (``_UNSET`` ones left out); ``Invalid`` names every bad one."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if url is not _UNSET:
        refusal = _url_refusal(url) if isinstance(url, str) else "A URL."
        if refusal:
            errors["url"] = [refusal]
        values["url"] = url
    if description is not _UNSET:
        if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
            errors["description"] = [f"Text of at most {DESCRIPTION_MAX_LENGTH} characters."]
        values["description"] = description
    if events is not _UNSET:
        if not _strings(events):
            errors["events"] = ["A list of event names."]
        else:
            unknown = [name for name in events if name not in WEBHOOK_EVENTS]
            if unknown:
                errors["events"] = [
                    f"Unknown event {name!r}; one of: {', '.join(WEBHOOK_EVENTS)}."
                    for name in unknown
                ]
            values["events"] = list(dict.fromkeys(events))
    if types is not _UNSET:
        if not _strings(types):
            errors["types"] = ["A list of type keys."]
        else:
            bad = [key for key in types if not type_key_valid(key)]
            if bad:
                errors["types"] = [f"Not a valid type key: {key!r}." for key in bad]
            values["types"] = list(dict.fromkeys(types))
    if enabled is not _UNSET:
        if not isinstance(enabled, bool):
            errors["enabled"] = ["true or false."]
        values["enabled"] = enabled
    if errors:
        raise Invalid("Invalid webhook endpoint.", details=errors)
    return values


def _strings(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


@transaction.atomic
def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    description: str = "",
    events: Sequence[str] = (),
    types: Sequence[str] = (),
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (``whsec_...``): the only time the secret is
    returned, so the caller shows it once. Empty ``events`` or ``types``: all of them.

    ``LimitExceeded`` when the tenant has its plan's ``max_webhook_endpoints`` already."""
    values = _clean(url=url, description=description, events=events, types=types, enabled=enabled)
    # One creation at a time per schema, so two concurrent ones cannot both pass the limit.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.webhook_endpoint'))"
        )
    limit = limits_for(tenant).max_webhook_endpoints
    if WebhookEndpoint.objects.count() >= limit:
        raise LimitExceeded(
            f"Your plan allows {limit} webhook endpoints.",
            details={"url": [f"At most {limit} webhook endpoints; delete one first."]},
        )
    secret = webhook_secret_new()
    endpoint = WebhookEndpoint.objects.create(
        **values, secret_encrypted=webhook_secret_seal(secret)
    )
    return endpoint, secret


def webhook_endpoint_update(
    *,
    tenant: Tenant,
    endpoint: WebhookEndpoint,
    url: str = _UNSET,
    description: str = _UNSET,
    events: Sequence[str] = _UNSET,
    types: Sequence[str] = _UNSET,
    enabled: bool = _UNSET,
) -> WebhookEndpoint:
    """Change the given fields only (a PATCH). Enabling an endpoint clears why it was
    disabled and its run of failures: it starts afresh, and the events that waited for it
    are delivered."""
    changes = _clean(url=url, description=description, events=events, types=types, enabled=enabled)
    enabling = changes.get("enabled") is True and not endpoint.enabled
    if enabling:
        changes.update(disabled_reason="", failing_since=None)
    if changes:
        with transaction.atomic():
            for name, value in changes.items():
                setattr(endpoint, name, value)
            endpoint.save(update_fields=[*changes, "updated_at"])
            if enabling:
                waiting = endpoint.deliveries.filter(status=WebhookDelivery.Status.QUEUED).count()
                webhooks_enqueue(tenant=tenant, count=waiting, now=timezone.now())
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """Replace the endpoint's signing secret and return the new one (shown once). The old one
    stops signing at once: a receiver must switch to the new secret."""
    secret = webhook_secret_new()
    endpoint.secret_encrypted = webhook_secret_seal(secret)
    endpoint.save(update_fields=["secret_encrypted", "updated_at"])
    return secret


# The delivery states a delivery may be retried from: it will not be tried again on its own.
RETRYABLE = (WebhookDelivery.Status.FAILED, WebhookDelivery.Status.SUPPRESSED_QUOTA)


def _disabled() -> Conflict:
    return Conflict(
        "This webhook endpoint is disabled: enable it first.",
        details={"enabled": ["The endpoint is disabled."]},
    )


@transaction.atomic
def webhook_endpoint_test(
    *, tenant: Tenant, endpoint: WebhookEndpoint, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to ``endpoint`` alone, whatever its filters, and ask
    for a turn to deliver it. Its body is fixed now, as every event's is before its first
    attempt. ``Conflict`` when the endpoint is disabled (nothing would deliver it)."""
    if not endpoint.enabled:
        raise _disabled()
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=WEBHOOK_TEST,
        msg_id=webhook_message_id(),
        body=json.dumps(webhook_test_event(endpoint_id=endpoint.pk, timestamp=now)),
        occurred_at=now,
        status=WebhookDelivery.Status.QUEUED,
        created_at=now,
        updated_at=now,
    )
    webhooks_enqueue(tenant=tenant, count=1, now=now)
    return delivery


@transaction.atomic
def webhook_delivery_retry(
    *, tenant: Tenant, delivery: WebhookDelivery, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a failed (or quota-suppressed) delivery again, from its first attempt: the same
    event, ``webhook-id`` and body, so a receiver that did get it can tell. ``Conflict`` for
    one that is queued or sent already, or whose endpoint is disabled."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.only("enabled").get(pk=delivery.endpoint_id)
    if not endpoint.enabled:
        raise _disabled()
    # A conditional update, so a retry racing the worker (or another retry) changes one row once.
    changed = WebhookDelivery.objects.filter(pk=delivery.pk, status__in=RETRYABLE).update(
        status=WebhookDelivery.Status.QUEUED, attempts=0, locked_until=None, updated_at=now
    )
    if changed != 1:
        status = WebhookDelivery.objects.filter(pk=delivery.pk).values_list("status", flat=True)
        raise Conflict(
            f"Only a failed delivery can be retried; this one is {status.first() or 'gone'}.",
            details={"status": [f"One of: {', '.join(RETRYABLE)}."]},
        )
    webhooks_enqueue(tenant=tenant, count=1, now=now)
    delivery.refresh_from_db()
    return delivery
