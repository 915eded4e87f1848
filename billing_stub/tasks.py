"""Celery adapter for metering (autodiscovered)."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from billing_stub.alerts import quota_alert_send
from billing_stub.metering import usage_rollup


@shared_task(name="billing.rollup_usage", ignore_result=False)
def rollup_usage() -> int:
    """Fold usage records into totals (beat, every minute). Safe to run concurrently."""
    return usage_rollup()


@shared_task(
    name="billing.quota_alert",
    autoretry_for=(Exception,),
    retry_backoff=30,
    max_retries=5,
)
def quota_alert(tenant_id: int, kind: str, period_start: str, threshold: int) -> bool:
    """Mail a tenant's admins that a quota reached ``threshold`` percent (once per period)."""
    return quota_alert_send(
        tenant_id=tenant_id,
        kind=kind,
        period=date.fromisoformat(period_start),
        threshold=threshold,
    )
