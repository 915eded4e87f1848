"""The per-period usage report (the invoice basis), as JSON and in the Django admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from billing_stub.metering import NOTIFICATIONS, period_of, usage_get, usage_rollup
from tests.billing.test_limits import override
from tests.billing.test_quotas import plan_with, send


def test_report_prices_overage_at_the_plans_rate(alice_key, alice_admin, world):
    plan = plan_with(world.tenant_a, notifications=2500)
    plan.monthly_price_cents = 4900
    plan.notification_overage_cents_per_1000 = 150
    plan.save()
    assert send(alice_key, 2500).status_code == 202
    used = usage_get(tenant_id=world.tenant_a.pk, kind=NOTIFICATIONS)
    override(world.tenant_a, monthly_notification_quota=used - 1001)  # a deal cut mid-month

    report = alice_admin.get("/api/v1/usage/report").json()
    assert report["tenant"] == world.tenant_a.slug
    assert report["period_start"] == period_of().start.isoformat()
    assert report["notifications"] == {
        "used": used, "included": used - 1001, "overage": 1001, "overage_cents": 2 * 150,
    }  # fmt: skip
    assert report["total_cents"] == 4900 + 300 + report["emails"]["overage_cents"]


def test_report_period_is_validated_and_admin_only(alice_key, alice_admin):
    assert alice_admin.get("/api/v1/usage/report", {"period": "2026-13"}).status_code == 400
    assert alice_admin.get("/api/v1/usage/report", {"period": "nov"}).status_code == 400
    last = alice_admin.get("/api/v1/usage/report", {"period": "9999-12"})  # would end in 10000
    assert last.status_code == 400
    assert "9999-11" in last.json()["error"]["details"]["period"][0]
    assert alice_admin.get("/api/v1/usage/report", {"period": "9999-11"}).json()["period_end"] == (
        "9999-12-01"
    )
    past = alice_admin.get("/api/v1/usage/report", {"period": "2020-01"}).json()
    assert past["period_start"] == "2020-01-01"
    assert past["notifications"]["used"] == 0
    assert alice_key.get("/api/v1/usage/report").status_code == 403  # API keys cannot bill


def test_the_django_admin_lists_usage_with_its_price(db, world, alice_key):
    send(alice_key, 3)
    usage_rollup()
    staff = get_user_model().objects.create_superuser("ops@herald.example", "pw-for-ops-1234")
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200  # the index rendered on the platform host
    page = client.get("/admin/billing_stub/usagetotal/")
    assert page.status_code == 200
    assert world.tenant_a.slug in page.content.decode()
