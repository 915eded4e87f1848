"""Celery adapters: take ids, set the tenant's schema from the message, call one service.

Every task names its tenant in its arguments and enters that tenant's schema explicitly (and
leaves it), so nothing is inherited from whatever the worker ran before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications.services.deliveries import (
    DUE_DELIVERIES,
    deliveries_deliver,
    deliveries_next_due,
    deliveries_pending,
)
from notifications.services.digests import (
    DUE_DIGESTS,
    digests_flush_due,
    digests_heal,
    digests_next_due,
    digests_ready,
)
from notifications.services.leases import Holding, heartbeat
from notifications.services.sending import DUE_SENDS, sends_next_due, sends_release_due
from notifications.services.turns import (
    turn_release,
    turn_renew,
    turn_start,
    turns_request,
    wake_later,
)
from notifications.webhooks.delivery import webhooks_deliver
from notifications.webhooks.pending import webhooks_due
from tenants.due import due_recompute, due_tenants
from tenants.entry import active_tenant, in_tenant
from tenants.models import Tenant

NextDue = Callable[[], datetime | None]

logger = logging.getLogger(__name__)


def _visit_due(kind: str, work: Callable[[Tenant], int], next_due: NextDue) -> int:
    """Do ``work`` in each tenant whose ``kind`` of work is due (``tenants.due``), then record
    when it is next due. One tenant's failure neither stops the others nor clears its due
    time, so it is tried again on the next run."""
    done = 0
    for tenant in due_tenants(kind=kind):
        try:
            with in_tenant(tenant):
                done += work(tenant)
            due_recompute(tenant=tenant, kind=kind, next_due=next_due)
        except Exception:
            logger.exception("Periodic %s work failed for tenant %s", kind, tenant.slug)
    return done


@shared_task(name="notifications.release_due_sends", ignore_result=False)
def release_due_sends() -> int:
    """Release the scheduled sends that are due (beat runs this every few seconds).

    Idempotent and safe to run concurrently: each send is claimed with ``SKIP LOCKED``.
    """
    return _visit_due(DUE_SENDS, lambda tenant: sends_release_due(tenant=tenant), sends_next_due)


# Turns make every queued channel's deliveries; their task (and function) names say "email"
# because messages under those names wait in production brokers.
@shared_task(name="notifications.email_turn", acks_late=True, reject_on_worker_lost=True)
def email_turn(tenant_id: int, slot: int, token: str | None = None) -> int:
    """One turn of a tenant: make its next batch of deliveries (every queued channel's first),
    then its webhook events, then due digests, and queue another turn at the back of the line
    if work remains (see ``services.turns``). Returns how many deliveries, webhook events and
    digests it claimed.

    The order: deliveries first, within the turn's budget (a plan's send rate may throttle
    them); webhooks next, whatever the email rate, with a bound of their own (at most
    ``WEBHOOK_TURN_ENDPOINTS`` endpoints, in parallel threads, ``WEBHOOK_BATCH_SIZE`` events
    each, one failed request per endpoint) and not counted against the delivery budget, so
    that they never starve digests; then digests with what is left of it.

    While it works, a heartbeat keeps its slot and the leases of the rows and endpoints it
    claimed (``services.leases``). Safe to run twice: every delivery is claimed before it is
    sent, and a turn whose slot was given to another (a message redelivered late) does
    nothing."""
    tenant = active_tenant(tenant_id)
    if tenant is None:
        turn_release(tenant_id=tenant_id, slot=slot, token=token)
        return 0
    if not turn_start(tenant_id=tenant_id, slot=slot, token=token):
        return 0
    holding = Holding()

    def beat() -> None:
        turn_renew(tenant_id=tenant_id, slot=slot, token=token)
        holding.renew()

    budget = settings.DELIVERY_BATCH_SIZE
    try:
        with in_tenant(tenant), heartbeat(schema_name=tenant.schema_name, beat=beat):
            batch = deliveries_deliver(tenant=tenant, holding=holding, limit=budget)
            claimed = batch.claimed
            webhooks = webhooks_deliver(tenant=tenant, holding=holding)
            if claimed < budget and not batch.throttled_for:
                # the rest of the turn goes to digests that are due
                claimed += digests_flush_due(tenant=tenant, limit=budget - claimed, holding=holding)
            claimed += webhooks
    finally:
        turn_release(tenant_id=tenant_id, slot=slot, token=token)
    if batch.throttled_for:  # a plan's send rate: come back when a token is there
        wake_later(tenant_id=tenant_id, countdown=batch.throttled_for)
        with in_tenant(tenant):
            now = timezone.now()
            webhooks_ready = (due := webhooks_due(now=now)) is not None and due <= now
        if webhooks_ready:  # webhooks are not held back by the email rate
            turns_request(tenant_id=tenant_id)
        return claimed
    with in_tenant(tenant):
        pending = deliveries_pending()
        digest_ready = digests_ready()
    if pending.ready or digest_ready:
        turns_request(tenant_id=tenant_id)
    elif pending.next_in is not None:
        # a retry (or a dead worker's lease) comes due later: a second late, at most the
        # longest email backoff (a longer webhook wait is woken for again), well inside the
        # broker's visibility timeout
        delay = min(max(pending.next_in, 0) + 1, settings.DELIVERY_RETRY_MAX_SECONDS + 1)
        wake_later(tenant_id=tenant_id, countdown=delay)
    return claimed


@shared_task(name="notifications.email_wake")
def email_wake(tenant_id: int) -> int:
    """Queue a turn for a tenant whose retries have come due."""
    return turns_request(tenant_id=tenant_id)


@shared_task(name="notifications.sweep_deliveries", ignore_result=False)
def sweep_deliveries() -> int:
    """Give a turn to every tenant with deliveries or webhook events ready (beat, every
    ``EMAIL_SWEEP_SECONDS``). Tenants whose turns are queued or running keep them; this revives
    those whose turn was lost (a running turn's slot is free one lease after its worker died)."""

    def wake(tenant: Tenant) -> int:
        return turns_request(tenant_id=tenant.pk) if deliveries_pending().ready else 0

    return _visit_due(DUE_DELIVERIES, wake, deliveries_next_due)


@shared_task(name="notifications.close_due_digests", ignore_result=False)
def close_due_digests() -> int:
    """Give a turn to every tenant with a digest due (beat, every 10 s), after opening a batch
    for any item that raced a closing one. The turns flush the digests."""

    def close(tenant: Tenant) -> int:
        digests_heal()
        return turns_request(tenant_id=tenant.pk) if digests_ready() else 0

    return _visit_due(DUE_DIGESTS, close, digests_next_due)
