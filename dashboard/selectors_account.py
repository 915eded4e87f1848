"""Reads for the overview and the usage pages. Call inside the tenant's schema.

Usage and limits come from ``billing_stub`` (the figures the quota gate and the invoice use).
Activity is counted from the tenant's own tables, over the last seven days (UTC) only, so the
cost follows a week's volume, not the table's size: ``send`` and ``delivery`` have no index on
``created_at``, but their ids grow with it, so one statement finds the first id of the window by
bisecting the primary key (``first_id_since``, ~20 index probes), and the counts then range-scan
the primary key from there. (Measured with 1M sends and 2M deliveries, 120k and 230k of them in
the window: 0.7 ms for the bound, then 120 and 250 ms, against 330 and 790 ms by sequential
scan; an index on ``created_at`` would save another third.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from django.db import connection
from django.db.models import Count, Model, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateformat import format as date_format

from billing_stub.limits import limits_for
from billing_stub.metering import EMAILS, NOTIFICATIONS, WEBHOOKS, Period, period_of, usage_get
from billing_stub.reports import usage_report
from dashboard.charts import Meter
from notifications.models import Delivery, Send
from tenants.models import Tenant

ACTIVITY_DAYS = 7
RECENT_FAILURES = 10
# Rows are bisected for a moment this much before the window: ids and timestamps of concurrent
# inserts may disagree by a few milliseconds, and the exact ``created_at`` filter does the rest.
BOUND_MARGIN = timedelta(minutes=10)
REPORT_MONTHS = 24


@dataclass(frozen=True)
class DayActivity:
    day: date
    sends: int = 0
    notifications: int = 0  # recipients of the day's sends
    emails_sent: int = 0
    emails_failed: int = 0
    emails_other: int = 0  # queued, batched, skipped by preference, suppressed by the quota

    @property
    def emails(self) -> int:
        return self.emails_sent + self.emails_failed + self.emails_other


@dataclass(frozen=True)
class ReportPeriod:
    key: str  # YYYY-MM
    label: str  # "November 2026"
    period: Period


def usage_meters(*, tenant: Tenant) -> tuple[Period, list[Meter]]:
    """This billing period and the tenant's notifications, emails and webhooks against its
    quotas."""
    period, limits = period_of(), limits_for(tenant)
    return period, [
        Meter(
            "Notifications",
            usage_get(tenant_id=tenant.pk, kind=NOTIFICATIONS, period=period),
            limits.monthly_notification_quota,
        ),
        Meter(
            "Emails",
            usage_get(tenant_id=tenant.pk, kind=EMAILS, period=period),
            limits.monthly_email_quota,
        ),
        Meter(
            "Webhooks",
            usage_get(tenant_id=tenant.pk, kind=WEBHOOKS, period=period),
            limits.monthly_webhook_quota,
        ),
    ]


def first_id_since(model: type[Model], moment: datetime) -> int | None:
    """The smallest id whose row was created at or after ``moment``, found by bisecting the
    primary key, on the premise that ids grow with ``created_at``; None for an empty table.
    Past the last row: its id + 1."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE search(lo, hi) AS (
                SELECT (SELECT min(id) FROM {table}), (SELECT max(id) FROM {table}) + 1
              UNION ALL
                SELECT CASE WHEN probe.created_at >= %(moment)s THEN s.lo ELSE probe.id + 1 END,
                       CASE WHEN probe.created_at >= %(moment)s THEN (s.lo + s.hi) / 2
                            ELSE s.hi END
                FROM search s
                CROSS JOIN LATERAL (
                    SELECT id, created_at FROM {table}
                    WHERE id >= (s.lo + s.hi) / 2 ORDER BY id LIMIT 1
                ) probe
                WHERE s.lo < s.hi
            )
            SELECT min(hi) FROM search
            """,  # noqa: S608 -- only the model's own table name is interpolated
            {"moment": moment},
        )
        row = cursor.fetchone()
    return row[0] if row else None


# A delivery status's ``DayActivity`` field (any other status: ``emails_other``).
_EMAIL_FIELDS: dict[str, str] = {
    Delivery.Status.SENT: "emails_sent",
    Delivery.Status.FAILED: "emails_failed",
}


def _window_start(today: date) -> datetime:
    first = today - timedelta(days=ACTIVITY_DAYS - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def daily_activity(*, now: datetime | None = None) -> list[DayActivity]:
    """Sends, notifications and email deliveries per UTC day, the last ``ACTIVITY_DAYS`` days
    (today last), every day present. Emails count under the day they were queued, by their
    current status. Four queries."""
    today = (now or timezone.now()).astimezone(UTC).date()
    start = _window_start(today)
    days: dict[date, dict[str, int]] = {
        start.date() + timedelta(days=n): {} for n in range(ACTIVITY_DAYS)
    }

    send_bound = first_id_since(Send, start - BOUND_MARGIN)
    if send_bound is not None:
        sends = (
            Send.objects.filter(id__gte=send_bound, created_at__gte=start)
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values("day")
            # Not ``notifications``: that name is the model's reverse relation.
            .annotate(sends=Count("id"), recipients=Sum("recipient_count"))
            .order_by()
        )
        for row in sends:
            if row["day"] in days:
                days[row["day"]].update(sends=row["sends"], notifications=row["recipients"])

    delivery_bound = first_id_since(Delivery, start - BOUND_MARGIN)
    if delivery_bound is not None:
        deliveries = (
            Delivery.objects.filter(id__gte=delivery_bound, created_at__gte=start)
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values("day", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for by_status in deliveries:
            counts = days.get(by_status["day"])
            if counts is None:
                continue
            field = _EMAIL_FIELDS.get(by_status["status"], "emails_other")
            counts[field] = counts.get(field, 0) + by_status["n"]
    return [DayActivity(day=day, **counts) for day, counts in days.items()]


class FailureRow(TypedDict):
    """A failed delivery as the overview lists it."""

    id: int
    send_id: int
    channel: str
    attempts: int
    last_error: str
    updated_at: datetime
    recipient__external_id: str
    recipient__email: str


def recent_failures(*, now: datetime | None = None) -> list[FailureRow]:
    """The last ``RECENT_FAILURES`` failed deliveries of the activity window, newest first."""
    start = _window_start((now or timezone.now()).astimezone(UTC).date())
    bound = first_id_since(Delivery, start - BOUND_MARGIN)
    if bound is None:
        return []
    return list(
        Delivery.objects.filter(
            id__gte=bound, created_at__gte=start, status=Delivery.Status.FAILED
        )
        .order_by("-id")
        .values(
            "id", "send_id", "channel", "attempts", "last_error", "updated_at",
            "recipient__external_id", "recipient__email",
        )[:RECENT_FAILURES]
    )  # fmt: skip


def has_sent_anything() -> bool:
    return Send.objects.exists()


def report_periods(*, tenant: Tenant, now: datetime | None = None) -> list[ReportPeriod]:
    """Billing months with a report, newest first: from the tenant's first month to this one,
    at most ``REPORT_MONTHS``."""
    current = period_of(now)
    first = period_of(tenant.created_at).start if tenant.created_at else current.start
    periods: list[ReportPeriod] = []
    start = current.start
    while len(periods) < REPORT_MONTHS:
        moment = datetime(start.year, start.month, 1, tzinfo=UTC)
        periods.append(
            ReportPeriod(
                key=start.strftime("%Y-%m"),
                label=date_format(moment, "F Y"),
                period=period_of(moment),
            )
        )
        if start <= first:
            break
        start = (start - timedelta(days=1)).replace(day=1)
    return periods


def money(cents: int) -> str:
    """Plan prices are in US cents: ``123456`` -> ``$1,234.56``."""
    return f"${cents / 100:,.2f}"


def usage_report_for(*, tenant: Tenant, period: ReportPeriod) -> dict[str, Any]:
    """``billing_stub.reports.usage_report`` with each line's share of what the plan includes,
    and prices written out."""
    report = usage_report(tenant=tenant, period=period.period)
    lines = []
    for kind, label in (
        (NOTIFICATIONS, "Notifications"),
        (EMAILS, "Emails"),
        (WEBHOOKS, "Webhooks"),
    ):
        line = report[kind]
        meter = Meter(label, line["used"], line["included"])
        lines.append(
            {
                **line,
                "label": label,
                "percent": meter.percent,
                "level": meter.level,
                "overage_price": money(line["overage_cents"]),
            }
        )
    return {
        **report,
        "lines": lines,
        "plan_price": money(report["plan_price_cents"]),
        "total": money(report["total_cents"]),
    }
