"""Celery adapters: take ids, set the tenant's schema from the message, call one service.

Every task names its tenant in its arguments and enters that tenant's schema explicitly (and
leaves it), so nothing is inherited from whatever the worker ran before.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django_tenants.utils import tenant_context

from notifications.services.deliveries import deliveries_sweep, emails_deliver, enqueue
from notifications.services.sending import sends_release_due
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def _active_tenants() -> list[Tenant]:
    return list(Tenant.objects.filter(is_active=True).select_related("plan"))


@shared_task(name="notifications.release_due_sends", ignore_result=False)
def release_due_sends() -> int:
    """Release every tenant's scheduled sends that are due (beat runs this every few seconds).

    Idempotent and safe to run concurrently: each send is claimed with ``SKIP LOCKED``.
    """
    released = 0
    for tenant in _active_tenants():
        with tenant_context(tenant):
            try:
                released += sends_release_due(tenant=tenant)
            except Exception:  # one tenant's failure must not hold up the others
                logger.exception("Releasing due sends failed for tenant %s", tenant.slug)
    return released


@shared_task(name="notifications.deliver_email", acks_late=True, reject_on_worker_lost=True)
def deliver_email(tenant_id: int, delivery_ids: list[int]) -> None:
    """Send these email deliveries of one tenant. Safe to run twice: each delivery is claimed
    before it is sent, and a sent one is never claimed again."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.warning("Deliveries of an unknown or inactive tenant %s dropped", tenant_id)
        return
    with tenant_context(tenant):
        retries = emails_deliver(tenant=tenant, delivery_ids=delivery_ids)
    for delay, ids in retries.items():
        # a second late, so the rows' retry time (locked_until) has surely passed
        enqueue(tenant_id=tenant_id, delivery_ids=ids, countdown=delay + 1)


@shared_task(name="notifications.sweep_deliveries", ignore_result=False)
def sweep_deliveries() -> int:
    """Enqueue again every tenant's deliveries stuck in ``queued`` (beat, every 30 s)."""
    swept = 0
    for tenant in _active_tenants():
        with tenant_context(tenant):
            try:
                ids = deliveries_sweep()
            except Exception:
                logger.exception("Sweeping deliveries failed for tenant %s", tenant.slug)
                continue
        if ids:
            enqueue(tenant_id=tenant.pk, delivery_ids=ids)
            swept += len(ids)
    return swept
