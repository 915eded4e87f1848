"""Metering and quotas: exact at the boundary, under races, across months and Redis restarts."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing_stub.metering import (
    EMAILS,
    NOTIFICATIONS,
    _counter,
    period_of,
    usage_get,
    usage_rollup,
)
from billing_stub.models import Plan, UsageRecord
from herald.redisio import shared_redis
from notifications.models import Delivery, Send
from notifications.services.deliveries import deliveries_deliver
from tenants.models import Tenant
from tests.support.api import Caller
from tests.support.personas import committed_tenant
from tests.support.processes import run_concurrently


def plan_with(tenant: Tenant, *, notifications: int = 10**6, emails: int = 10**6) -> Plan:
    """Give the tenant a plan whose quotas leave exactly this much room this month."""
    plan = Plan.objects.create(
        code=f"q-{uuid.uuid4().hex[:8]}", name="Quota test",
        monthly_notification_quota=usage_get(tenant_id=tenant.pk, kind=NOTIFICATIONS)
        + notifications,
        monthly_email_quota=usage_get(tenant_id=tenant.pk, kind=EMAILS) + emails,
        api_requests_per_second=1000, api_burst=1000, websocket_connection_limit=10,
    )  # fmt: skip
    fresh = Tenant.objects.get(pk=tenant.pk)
    fresh.plan = plan
    fresh.save(update_fields=["plan"])
    return plan


def send(api: Caller, count: int, **headers: str):
    recipients = [f"q-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    return api.post(
        "/api/v1/notifications",
        {"type": "quota", "recipients": recipients, "message": "m"},
        **headers,
    )


def test_the_last_allowed_send_passes_and_the_next_is_refused_whole(alice_key, world):
    plan_with(world.tenant_a, notifications=5)
    with tenant_context(world.tenant_a):
        sends_before = Send.objects.count()
    assert send(alice_key, 3).status_code == 202
    assert send(alice_key, 2).status_code == 202  # exactly at the quota
    refused = send(alice_key, 1)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["remaining"] == 0
    assert error["details"]["requested"] == 1
    assert "Retry-After" not in refused  # waiting does not help; the next month does
    with tenant_context(world.tenant_a):
        assert Send.objects.count() == sends_before + 2  # nothing written for the refusal

    usage = alice_key.get("/api/v1/usage").json()
    assert usage["notifications"]["used"] == usage["notifications"]["limit"]
    assert usage["period_start"] == period_of().start.isoformat()


def test_a_send_larger_than_what_remains_is_refused_whole(alice_key, world):
    plan_with(world.tenant_a, notifications=4)
    response = send(alice_key, 5)
    assert response.status_code == 429
    assert response.json()["error"]["details"]["remaining"] == 4
    assert send(alice_key, 4).status_code == 202  # nothing of the refused send was counted


def test_a_replay_of_an_accepted_send_is_answered_even_at_the_quota(alice_key, world):
    plan_with(world.tenant_a, notifications=1)
    body = {"type": "quota", "recipients": [f"r-{uuid.uuid4().hex[:8]}"], "message": "m"}
    key = f"last-one-{uuid.uuid4().hex[:8]}"
    first = alice_key.post("/api/v1/notifications", body, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 202
    assert send(alice_key, 1).status_code == 429
    again = alice_key.post("/api/v1/notifications", body, HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 202
    assert again.json() == first.json()


def test_usage_survives_redis_losing_its_counters_without_double_counting(alice_key, world):
    plan_with(world.tenant_a, notifications=10)
    for _ in range(3):
        assert send(alice_key, 2).status_code == 202
    used = usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS)
    shared_redis().delete(_counter(world.tenant_a.pk, NOTIFICATIONS, period_of()))  # a restart
    assert send(alice_key, 4).status_code == 202  # the counter is reloaded: 6 + 4 = 10
    assert send(alice_key, 1).status_code == 429
    assert usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS) == used + 4


def test_rollup_folds_records_exactly_once(alice_key, world):
    assert send(alice_key, 7).status_code == 202
    before = usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS)
    assert usage_rollup() >= 1
    assert UsageRecord.objects.count() == 0
    assert usage_rollup() == 0
    assert usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS) == before
    assert send(alice_key, 1).status_code == 202
    assert usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS) == before + 1


def test_a_new_month_starts_from_zero(alice_key, world):
    plan_with(world.tenant_a, notifications=2)
    assert send(alice_key, 2).status_code == 202
    assert send(alice_key, 1).status_code == 429
    now = timezone.now()
    next_month = period_of(now).end
    with time_machine.travel(
        datetime(next_month.year, next_month.month, 1, 0, 0, 5, tzinfo=now.tzinfo)
    ):
        usage = alice_key.get("/api/v1/usage").json()
        assert usage["notifications"]["used"] == 0
        assert usage["period_start"] == next_month.isoformat()
        assert send(alice_key, 1).status_code == 202


def test_emails_over_the_email_quota_are_suppressed_not_sent(alice_key, world):
    plan_with(world.tenant_a, emails=1)
    recipients = [{"id": f"m-{n}-{uuid.uuid4().hex[:6]}", "email": f"m{n}@example.com"}
                  for n in range(2)]  # fmt: skip
    response = alice_key.post(
        "/api/v1/notifications",
        {"type": "quota-mail", "recipients": recipients, "message": "m", "channels": ["email"]},
    )
    send_id = response.json()["id"]
    emails_before = usage_get(tenant_id=world.tenant_a.pk, kind=EMAILS)
    with tenant_context(world.tenant_a):
        tenant = Tenant.objects.select_related("plan").get(pk=world.tenant_a.pk)
        deliveries_deliver(tenant=tenant)
        statuses = sorted(Delivery.objects.filter(send_id=send_id).values_list("status", flat=True))
    assert statuses == ["sent", "suppressed_quota"]
    assert len(mail.outbox) == 1
    assert usage_get(tenant_id=world.tenant_a.pk, kind=EMAILS) == emails_before + 1


def test_usage_is_per_tenant_and_for_servers_only(alice_key, bob_key, erin, world):
    send(alice_key, 2)
    alpha, bravo = alice_key.get("/api/v1/usage").json(), bob_key.get("/api/v1/usage").json()
    assert (alpha["plan"], bravo["plan"]) == ("pro", "free")  # each key sees its own tenant
    assert alpha["notifications"]["used"] == usage_get(
        tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS
    )
    assert bravo["notifications"]["used"] == usage_get(
        tenant_id=world.tenant_b.pk, kind=NOTIFICATIONS
    )
    assert erin.get("/api/v1/usage").status_code == 403


@pytest.mark.timeout(120)
def test_racing_sends_at_the_boundary_never_overshoot(committed):
    tenant, api = committed_tenant(committed, "quota-race", "Race")
    plan_with(tenant, notifications=3)
    outcomes = run_concurrently(lambda: send(api, 1).status_code, times=10)
    assert sorted(outcomes) == [202] * 3 + [429] * 7
    assert usage_get(tenant_id=tenant.pk, kind=NOTIFICATIONS) == 3
