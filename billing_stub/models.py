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

    class Meta:
        ordering = ["monthly_price_cents", "code"]

    def __str__(self) -> str:
        return self.name
