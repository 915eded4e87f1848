"""The overview: usage against quota, the last seven days by day, recent failures; and the
queries behind it stay on primary-key ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from dashboard.selectors_account import daily_activity, first_id_since, recent_failures
from notifications.models import Delivery, EndUser, NotificationType, Send
from tests.dashboard.conftest import log_in
from tests.support.browser import screenshot
from tests.support.personas import start_empty

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_the_overview_shows_usage_activity_and_failures(page, make_site):
    site = make_site("dash-overview", name="Overview & Sons", plan="free")
    log_in(page, site)
    expect(page.get_by_role("heading", name="Send your first notification")).to_be_visible()
    expect(page.locator("#recent-failures")).to_have_count(0)
    expect(page.get_by_text("No failed deliveries in the last 7 days.")).to_be_visible()

    for recipients, channels in ((["u-1", "u-2", "u-3"], ["in_app"]), (["u-1", "u-4"], None)):
        body = {"type": "order.shipped", "recipients": recipients, "message": "Shipped"}
        if channels:
            body["channels"] = channels
        assert site.api.post("/api/v1/notifications", body).status_code == 202
    email = {
        "type": "digest.weekly",
        "recipients": [{"id": "u-5", "email": "five@example.com"}, {"id": "u-6"}],
        "message": "Your week",
        "channels": ["in_app", "email"],
    }
    response = site.api.post("/api/v1/notifications", email)
    assert response.status_code == 202
    send_id = response.json()["id"]
    with schema_context(site.tenant.schema_name):
        # No worker runs here: settle the two emails as a worker would have.
        deliveries = list(Delivery.objects.filter(send_id=send_id).order_by("id"))
        assert len(deliveries) == 2
        Delivery.objects.filter(pk=deliveries[0].pk).update(status="sent")
        Delivery.objects.filter(pk=deliveries[1].pk).update(
            status="failed", attempts=1, last_error='No email address for "u-6" <b>'
        )

    page.reload()
    expect(page.get_by_role("heading", name="Send your first notification")).to_have_count(0)
    expect(page.locator("#stat-sends")).to_have_text("3")
    expect(page.locator("#stat-notifications")).to_have_text("7")
    expect(page.locator("#stat-emails-sent")).to_have_text("1")
    expect(page.locator("#stat-emails-failed")).to_have_text("1")
    # Free plan: 7 notifications of the monthly quota, and the chart says so in words.
    notifications = page.locator(".usage-line[data-kind='notifications']")
    expect(notifications).to_contain_text("7 of")
    expect(page.get_by_role("img", name="Notifications: 7 of 10,000 (<1%)")).to_be_visible()
    expect(page.get_by_role("img", name="Emails: 0 of 1,000 (0%)")).to_be_visible()
    activity = page.get_by_role("img", name="Notifications and emails, last 7 days")
    expect(activity).to_be_visible()
    today = datetime.now(UTC).strftime("%a %-d %b")
    expect(activity.locator("desc")).to_contain_text(
        f"{today}: 7 notifications, 1 emails sent, 1 failed"
    )

    failures = page.locator("#recent-failures tbody tr")
    expect(failures).to_have_count(1)
    expect(failures.first).to_contain_text("u-6")
    expect(failures.first).to_contain_text('No email address for "u-6" <b>')  # as text
    expect(failures.first.get_by_role("link", name=f"#{send_id}")).to_have_attribute(
        "href", f"/dashboard/notifications/{send_id}"
    )
    expect(page.locator(".brand-name")).to_have_text("Overview & Sons")
    screenshot(page, "dash-overview")
    page.get_by_text("Show as a table").click()
    expect(page.locator(".chart-table tbody tr").last).to_contain_text("3")


def _send(at: datetime, recipients: int = 1) -> Send:
    type_, _ = NotificationType.objects.get_or_create(key="t", defaults={"name": "T"})
    send = Send.objects.create(
        type=type_, message="m", channels=["in_app"], recipient_count=recipients
    )
    Send.objects.filter(pk=send.pk).update(created_at=at)
    return send


def test_first_id_since_bisects_the_primary_key(db, world):
    with schema_context(world.tenant_a.schema_name):
        start_empty(Send)
        assert first_id_since(Send, NOW) is None  # an empty table
        sends = [_send(NOW - timedelta(hours=h)) for h in (300, 200, 100, 50, 10, 1)]
        sends[2].delete()  # a gap in the ids
        ids = [s.pk for s in sends]
        assert first_id_since(Send, NOW - timedelta(hours=400)) == ids[0]
        assert first_id_since(Send, NOW - timedelta(hours=200)) == ids[1]
        assert first_id_since(Send, NOW - timedelta(hours=150)) in range(ids[1] + 1, ids[3] + 1)
        assert first_id_since(Send, NOW - timedelta(hours=11)) == ids[4]
        assert first_id_since(Send, NOW) == ids[5] + 1  # past the last row


def test_daily_activity_counts_each_day_in_four_queries(db, world):
    with schema_context(world.tenant_a.schema_name):
        start_empty(Send, Delivery)
        _send(NOW - timedelta(days=8), recipients=100)  # before the window
        _send(NOW - timedelta(days=6, hours=14), recipients=2)  # the window's first day
        _send(NOW - timedelta(days=1), recipients=3)
        today = _send(NOW - timedelta(hours=1), recipients=4)
        with time_machine.travel(NOW - timedelta(hours=1), tick=False):  # queued with the send
            for n, status in enumerate(("sent", "failed", "queued")):
                recipient = EndUser.objects.create(external_id=f"activity-{n}")
                error = "boom" if status == "failed" else ""
                Delivery.objects.create(
                    send=today,
                    recipient=recipient,
                    channel="email",
                    status=status,
                    last_error=error,
                )
        with CaptureQueriesContext(connection) as queries:
            days = daily_activity(now=NOW)
        assert len(queries) == 4
        assert [d.day for d in days] == [(NOW - timedelta(days=n)).date() for n in range(6, -1, -1)]
        assert [d.notifications for d in days] == [2, 0, 0, 0, 0, 3, 4]
        assert [d.sends for d in days] == [1, 0, 0, 0, 0, 1, 1]
        assert (days[-1].emails_sent, days[-1].emails_failed, days[-1].emails_other) == (1, 1, 1)
        assert [f["last_error"] for f in recent_failures(now=NOW)] == ["boom"]


def test_the_activity_counts_scan_a_primary_key_range(db, world):
    with schema_context(world.tenant_a.schema_name):
        _send(NOW - timedelta(days=1))
        bound = first_id_since(Send, NOW - timedelta(days=7))
        queryset = Send.objects.filter(id__gte=bound, created_at__gte=NOW - timedelta(days=7))
        sql, params = queryset.values("id").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    # A range of the primary key.
    assert "Index Cond: (id >= " in plan, plan
