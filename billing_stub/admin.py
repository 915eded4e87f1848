from datetime import UTC, datetime, time

from django.contrib import admin

from billing_stub.metering import period_of
from billing_stub.models import Plan, UsageTotal
from billing_stub.reports import usage_report


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = [
        "code",
        "name",
        "monthly_price_cents",
        "monthly_notification_quota",
        "monthly_email_quota",
        "api_requests_per_second",
        "websocket_connection_limit",
    ]


@admin.register(UsageTotal)
class UsageTotalAdmin(admin.ModelAdmin[UsageTotal]):
    """Usage per tenant and month as of the last rollup, with what an invoice would charge."""

    list_display = ["tenant", "period_start", "kind", "quantity", "included", "overage_cents"]
    list_filter = ["period_start", "kind"]
    search_fields = ["tenant__slug"]
    list_select_related = ["tenant__plan"]
    readonly_fields = ["tenant", "period_start", "kind", "quantity"]

    def _line(self, row: UsageTotal) -> dict[str, int]:
        period = period_of(datetime.combine(row.period_start, time(), tzinfo=UTC))
        line: dict[str, int] = usage_report(tenant=row.tenant, period=period)[row.kind]
        return line

    @admin.display(description="included")
    def included(self, row: UsageTotal) -> int:
        return self._line(row)["included"]

    @admin.display(description="overage (cents)")
    def overage_cents(self, row: UsageTotal) -> int:
        return self._line(row)["overage_cents"]

    def has_add_permission(self, request: object) -> bool:
        return False  # written by metering only
