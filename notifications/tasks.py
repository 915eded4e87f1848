"""Celery adapters: take ids, set the tenant's schema from the message, call one service.

Every task names its tenant in its arguments and enters that tenant's schema explicitly (and
leaves it), so nothing is inherited from whatever the worker ran before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.conf import settings
from django_tenants.utils import tenant_context

from herald.observability import tenant_scope
from notifications.services.deliveries import email_pending, emails_deliver_batch
from notifications.services.digests import digest_flush, digests_due, digests_heal
from notifications.services.sending import sends_release_due
from notifications.services.turns import turn_release, turn_renew, turns_request, wake_later
from tenants.models import Tenant

logger = logging.getLogger(__name__)


@contextmanager
def in_tenant(tenant: Tenant) -> Iterator[None]:
    """The tenant's schema (reset on the way out), with errors reported under its name."""
    with tenant_scope(tenant.slug), tenant_context(tenant):
        yield


def _active_tenants() -> list[Tenant]:
    return list(Tenant.objects.filter(is_active=True).select_related("plan"))


@shared_task(name="notifications.release_due_sends", ignore_result=False)
def release_due_sends() -> int:
    """Release every tenant's scheduled sends that are due (beat runs this every few seconds).

    Idempotent and safe to run concurrently: each send is claimed with ``SKIP LOCKED``.
    """
    released = 0
    for tenant in _active_tenants():
        with in_tenant(tenant):
            try:
                released += sends_release_due(tenant=tenant)
            except Exception:  # one tenant's failure must not hold up the others
                logger.exception("Releasing due sends failed for tenant %s", tenant.slug)
    return released


@shared_task(name="notifications.email_turn", acks_late=True, reject_on_worker_lost=True)
def email_turn(tenant_id: int, slot: int) -> int:
    """One turn of a tenant: send its next batch of emails, then queue another turn at the back
    of the line if work remains (see ``services.turns``). Returns how many were claimed.

    Safe to run twice: every delivery is claimed before it is sent."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        turn_release(tenant_id=tenant_id, slot=slot)
        return 0
    turn_renew(tenant_id=tenant_id, slot=slot)
    try:
        with in_tenant(tenant):
            claimed = emails_deliver_batch(tenant=tenant)
    finally:
        turn_release(tenant_id=tenant_id, slot=slot)
    with in_tenant(tenant):
        pending = email_pending()
    if pending.ready:
        turns_request(tenant_id=tenant_id)
    elif pending.next_in is not None:
        # a retry (or a dead worker's lease) comes due later: a second late, at most the
        # longest backoff, well inside the broker's visibility timeout
        delay = min(max(pending.next_in, 0) + 1, settings.DELIVERY_RETRY_MAX_SECONDS + 1)
        wake_later(tenant_id=tenant_id, countdown=delay)
    return claimed


@shared_task(name="notifications.email_wake")
def email_wake(tenant_id: int) -> int:
    """Queue a turn for a tenant whose retries have come due."""
    return turns_request(tenant_id=tenant_id)


@shared_task(name="notifications.sweep_deliveries", ignore_result=False)
def sweep_deliveries() -> int:
    """Give a turn to every tenant with email ready to send (beat, every 30 s). Tenants whose
    turns are queued or running keep them; this revives those whose turn was lost."""
    woken = 0
    for tenant in _active_tenants():
        with in_tenant(tenant):
            try:
                ready = email_pending().ready
            except Exception:
                logger.exception("Sweeping deliveries failed for tenant %s", tenant.slug)
                continue
        if ready:
            woken += turns_request(tenant_id=tenant.pk)
    return woken


@shared_task(name="notifications.close_due_digests", ignore_result=False)
def close_due_digests() -> int:
    """Queue a flush for every due digest of every tenant (beat, every 10 s), after opening a
    batch for any item that raced a closing one. A flush queued twice sends once."""
    queued = 0
    for tenant in _active_tenants():
        with in_tenant(tenant):
            try:
                digests_heal()
                due = digests_due()
            except Exception:
                logger.exception("Closing digests failed for tenant %s", tenant.slug)
                continue
        for batch_id in due:
            flush_digest.delay(tenant.pk, batch_id)
        queued += len(due)
    return queued


@shared_task(name="notifications.flush_digest", acks_late=True, reject_on_worker_lost=True)
def flush_digest(tenant_id: int, batch_id: int) -> str | None:
    """Send one due digest (claimed first, so a redelivered task sends nothing twice)."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return None
    with in_tenant(tenant):
        return digest_flush(tenant=tenant, batch_id=batch_id)
