"""Celery adapter for the tenant registry (autodiscovered)."""

from __future__ import annotations

import logging

from celery import shared_task

from tenants.schema import TemplateOutOfDate
from tenants.spares import spares_fill

logger = logging.getLogger(__name__)


@shared_task(name="tenants.fill_spare_schemas", ignore_result=False)
def fill_spare_schemas() -> int:
    """Top the spare schema pool up (beat, every minute; and after each sign-up that took one).
    Safe to run concurrently and to repeat. Returns how many spares it built."""
    try:
        report = spares_fill()
    except TemplateOutOfDate:
        # A deployment between its code and its `migrate`: sign-ups refuse too, until it runs.
        logger.warning("Spare schemas not filled: the tenant template is not up to date")
        return 0
    return report.built
