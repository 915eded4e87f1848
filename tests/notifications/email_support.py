"""Helpers of the email tests: a real Celery worker sends to a real SMTP sink (aiosmtpd)."""

from __future__ import annotations

import uuid

from django.conf import settings

from tests.support.api import Caller

QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
FAST_RETRIES = {"DELIVERY_RETRY_BASE_SECONDS": "1", "DELIVERY_RETRY_MAX_SECONDS": "2"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def email_type(api: Caller, **templates: str) -> str:
    key = unique("mail")
    body = {"name": "Comment replies", "channels": ["in_app", "email"], **templates}
    assert api.put(f"/api/v1/types/{key}", body).status_code in (200, 201)
    return key


def send(api: Caller, key: str, recipients: list, **fields) -> int:
    response = api.post(
        "/api/v1/notifications",
        {"type": key, "recipients": recipients, "message": "Ada replied", **fields},
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def deliveries(api: Caller, send_id: int) -> list[dict]:
    return api.get("/api/v1/deliveries", {"send": send_id}).json()["results"]


def settled(api: Caller, send_id: int, count: int) -> list[dict] | None:
    rows = deliveries(api, send_id)
    done = len(rows) == count and all(row["status"] not in ("queued", "batched") for row in rows)
    return rows if done else None


def redis_client():
    from herald.redisio import shared_redis

    return shared_redis()


def digest_type(api: Caller) -> str:
    key = unique("digest")
    body = {"name": "Activity", "channels": ["email"], "digest_window_seconds": 600}
    assert api.put(f"/api/v1/types/{key}", body).status_code in (200, 201)
    return key


def close_now(tenant) -> None:
    """The window passes: every open batch of the tenant falls due."""
    from django.db.models import F
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from notifications.models import DigestBatch
    from tenants.due import due_at

    with tenant_context(tenant):
        DigestBatch.objects.filter(status="open").update(closes_at=F("opened_at"))
    due_at(tenant_id=tenant.pk, kind="digest", when=timezone.now())


def open_batches(tenant, user: str) -> list:
    from django_tenants.utils import tenant_context

    from notifications.models import DigestBatch

    with tenant_context(tenant):
        return list(DigestBatch.objects.filter(recipient__external_id=user, status="open"))
