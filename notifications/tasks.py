"""Celery adapters: take ids, set the tenant's schema explicitly, call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from django_tenants.utils import tenant_context

from notifications.services.sending import sends_release_due
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(name="notifications.release_due_sends", ignore_result=False)
def release_due_sends() -> int:
    """Release every tenant's scheduled sends that are due (beat runs this every few seconds).

    Idempotent and safe to run concurrently: each send is claimed with ``SKIP LOCKED``.
    """
    released = 0
    for tenant in Tenant.objects.filter(is_active=True).select_related("plan"):
        with tenant_context(tenant):
            try:
                released += sends_release_due(tenant=tenant)
            except Exception:  # one tenant's failure must not hold up the others
                logger.exception("Releasing due sends failed for tenant %s", tenant.slug)
    return released
