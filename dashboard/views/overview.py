"""The overview page: usage against quota, the last seven days' activity, recent failures."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateformat import format as date_format

from billing_stub.limits import limits_for
from dashboard.access import admin_required, dashboard_tenant
from dashboard.charts import Group, Segment, bar_chart, meter_bar
from dashboard.formatting import ago
from dashboard.selectors_account import (
    ACTIVITY_DAYS,
    DayActivity,
    daily_activity,
    has_sent_anything,
    recent_failures,
    usage_meters,
)


def _activity_chart(days: list[DayActivity]) -> str:
    groups = [
        Group(
            label=date_format(day.day, "D j"),
            bars=[
                [Segment(day.notifications, "bar", "notifications")],
                [
                    Segment(day.emails_sent, "bar ok", "emails sent"),
                    Segment(day.emails_failed, "bar fail", "emails failed"),
                    Segment(day.emails_other, "bar alt", "emails queued or skipped"),
                ],
            ],
        )
        for day in days
    ]
    description = "; ".join(
        f"{date_format(d.day, 'D j M')}: {d.notifications} notifications, "
        f"{d.emails_sent} emails sent, {d.emails_failed} failed, {d.emails_other} other"
        for d in days
    )
    return bar_chart(
        groups,
        title=f"Notifications and emails, last {ACTIVITY_DAYS} days",
        description=description,
    )


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    period, meters = usage_meters(tenant=tenant)
    days = daily_activity()
    totals = {
        "sends": sum(d.sends for d in days),
        "notifications": sum(d.notifications for d in days),
        "emails_sent": sum(d.emails_sent for d in days),
        "emails_failed": sum(d.emails_failed for d in days),
    }
    settled = totals["emails_sent"] + totals["emails_failed"]
    context = {
        "section": "overview",
        "period": period,
        "period_last_day": period.end - timedelta(days=1),
        "meters": [(meter, meter_bar(meter)) for meter in meters],
        "limits": limits_for(tenant),
        "days": days,
        "activity_days": ACTIVITY_DAYS,
        "activity_chart": _activity_chart(days),
        "totals": totals,
        "failure_rate": round(100 * totals["emails_failed"] / settled, 1) if settled else None,
        "failures": [{**f, "ago": ago(f["updated_at"])} for f in recent_failures()],
        "first_run": not totals["sends"] and not has_sent_anything(),
        "api_base": request.build_absolute_uri("/api/v1/"),
    }
    return render(request, "dashboard/overview.html", context)
