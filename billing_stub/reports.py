"""Per-period usage reports: what an invoice would be built from (no payment provider here).

For each metered kind: what was used, what the tenant's limits include, the overage and its
price at the plan's overage rate (per started 1,000), plus the plan's monthly price.
"""

from __future__ import annotations

import math
from typing import Any

from billing_stub.limits import limits_for
from billing_stub.metering import EMAILS, NOTIFICATIONS, WEBHOOKS, Period, usage_get


def usage_report(*, tenant: Any, period: Period) -> dict[str, Any]:
    limits, plan = limits_for(tenant), tenant.plan
    lines = {}
    for kind, included, rate in (
        (NOTIFICATIONS, limits.monthly_notification_quota,
         plan.notification_overage_cents_per_1000),
        (EMAILS, limits.monthly_email_quota, plan.email_overage_cents_per_1000),
        (WEBHOOKS, limits.monthly_webhook_quota, plan.webhook_overage_cents_per_1000),
    ):  # fmt: skip
        used = usage_get(tenant_id=tenant.pk, kind=kind, period=period)
        overage = max(0, used - included)
        lines[kind] = {
            "used": used,
            "included": included,
            "overage": overage,
            "overage_cents": math.ceil(overage / 1000) * rate,
        }
    total = plan.monthly_price_cents + sum(line["overage_cents"] for line in lines.values())
    return {
        "tenant": tenant.slug,
        "plan": limits.plan,
        "period_start": period.start,
        "period_end": period.end,
        "plan_price_cents": plan.monthly_price_cents,
        **lines,
        "total_cents": total,
    }
