"""Celery adapter for metering (autodiscovered)."""

from __future__ import annotations

from celery import shared_task

from billing_stub.metering import usage_rollup


@shared_task(name="billing.rollup_usage", ignore_result=False)
def rollup_usage() -> int:
    """Fold usage records into totals (beat, every minute). Safe to run concurrently."""
    return usage_rollup()
