"""Plans (public schema). Quotas and usage metering build on these."""

from __future__ import annotations

from django.db import models


class Plan(models.Model):
    """What a tenant may do per month and per second. Changes take effect at once."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    monthly_notification_quota = models.PositiveIntegerField()
    monthly_email_quota = models.PositiveIntegerField()
    api_requests_per_second = models.PositiveIntegerField(help_text="Sustained API rate.")
    api_burst = models.PositiveIntegerField(help_text="Requests allowed above the rate at once.")
    websocket_connection_limit = models.PositiveIntegerField()
    max_recipients_per_send = models.PositiveIntegerField(default=10_000)
    digest_allowed = models.BooleanField(default=True)
    email_send_rate_per_second = models.PositiveIntegerField(
        default=50, help_text="Emails per second across all workers (a shared token bucket)."
    )
    notification_overage_cents_per_1000 = models.PositiveIntegerField(
        default=0, help_text="Price of each 1,000 notifications over the quota (custom deals)."
    )
    email_overage_cents_per_1000 = models.PositiveIntegerField(default=0)
    max_webhook_endpoints = models.PositiveIntegerField(
        default=10, help_text="Outbound webhook endpoints a tenant may register."
    )
    monthly_webhook_quota = models.PositiveIntegerField(
        default=10_000, help_text="Webhook deliveries (one event to one endpoint) per month."
    )
    webhook_overage_cents_per_1000 = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["monthly_price_cents", "code"]

    def __str__(self) -> str:
        return self.name


NOTIFICATIONS = "notifications"
EMAILS = "emails"
WEBHOOKS = "webhooks"
USAGE_KINDS = [(NOTIFICATIONS, "Notifications"), (EMAILS, "Emails"), (WEBHOOKS, "Webhooks")]


class UsageRecord(models.Model):
    """One metered event (an accepted send's notifications, one sent email): append-only, written
    in the same transaction as what it meters, so no row is ever contended. The periodic rollup
    folds them into ``UsageTotal``."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    kind = models.CharField(max_length=16, choices=USAGE_KINDS)
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "period_start", "kind"], name="usage_record")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} +{self.quantity} ({self.period_start})"


class UsageTotal(models.Model):
    """A tenant's metered total for one kind in one billing period (calendar month, UTC), as
    of the last rollup. Usage = this + the records not yet rolled up."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    kind = models.CharField(max_length=16, choices=USAGE_KINDS)
    quantity = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start", "kind"], name="usage_total_one"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} {self.quantity} ({self.period_start})"


class QuotaAlert(models.Model):
    """An alert mailed to a tenant's admins when a quota reached 80% or 100% in a period: at
    most one per (tenant, period, kind, threshold), by constraint."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    kind = models.CharField(max_length=16, choices=USAGE_KINDS)
    threshold = models.PositiveSmallIntegerField()  # percent: 80 or 100
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period_start", "kind", "threshold"], name="quota_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} {self.threshold}% ({self.period_start})"


# What a plan decides, and what a tenant's ``limit_overrides`` may change (see ``limits_for``).
LIMIT_FIELDS = (
    "monthly_notification_quota",
    "monthly_email_quota",
    "api_requests_per_second",
    "api_burst",
    "websocket_connection_limit",
    "max_recipients_per_send",
    "digest_allowed",
    "email_send_rate_per_second",
    "max_webhook_endpoints",
    "monthly_webhook_quota",
)
