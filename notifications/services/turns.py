"""Fair turns between tenants on one Celery queue.

Each tenant's pending work already waits in its own schema (its outbox of deliveries): that is
its queue. The Celery queue carries only *turns*: a message "tenant T may send one batch". A
tenant holds at most ``EMAIL_TENANT_CONCURRENCY`` turns at a time (a Redis key per slot, taken
with ``SET NX``). A turn sends one batch, then goes to the back of the line if work remains.

So the broker's queue never holds more than tenants x slots messages, whatever the backlog, and a
tenant with one email waits behind at most one batch per busy tenant and slot, never behind
another tenant's 100,000 emails. One queue and any number of workers serve thousands of tenants.

A turn's key expires (``EMAIL_TURN_TTL_SECONDS``, renewed by each batch), so a turn lost with a
dead worker or a broker outage frees its slot, and the periodic sweep gives the tenant a new one.
"""

from __future__ import annotations

import logging

import redis
from celery import current_app
from django.conf import settings

from herald.keys import redis_name
from herald.realtime import shared_redis

logger = logging.getLogger(__name__)

TURN_TASK = "notifications.email_turn"
WAKE_TASK = "notifications.email_wake"


def _key(tenant_id: int, slot: int) -> str:
    return redis_name("email", "turn", tenant_id, slot)


def turns_request(*, tenant_id: int, wanted: int = 1) -> int:
    """Queue up to ``wanted`` more turns for a tenant, within its free slots. Never raises:
    with Redis or the broker unreachable the work waits in the database for the sweep.
    Returns how many turns were queued."""
    queued = 0
    try:
        client = shared_redis()
        for slot in range(settings.EMAIL_TENANT_CONCURRENCY):
            if queued >= wanted:
                break
            if not client.set(_key(tenant_id, slot), "1", nx=True, ex=settings.EMAIL_TURN_TTL):
                continue  # this slot's turn is already queued or running
            try:
                current_app.send_task(TURN_TASK, args=(tenant_id, slot), retry=False)
            except Exception:  # kombu raises several types for an unreachable broker
                client.delete(_key(tenant_id, slot))
                raise
            queued += 1
    except Exception:
        logger.warning("Turn for tenant %s not queued; the sweep will retry", tenant_id)
    return queued


def turn_renew(*, tenant_id: int, slot: int) -> None:
    """A running turn keeps its slot (the key may have expired while the turn was queued)."""
    try:
        shared_redis().set(_key(tenant_id, slot), "1", ex=settings.EMAIL_TURN_TTL)
    except redis.RedisError:
        logger.warning("Could not renew turn %s/%s", tenant_id, slot)


def turn_release(*, tenant_id: int, slot: int) -> None:
    """Free a slot. Release first, then look for remaining work: whatever is committed after
    the release queues its own turn, so nothing is left without one."""
    try:
        shared_redis().delete(_key(tenant_id, slot))
    except redis.RedisError:
        logger.warning("Could not release turn %s/%s; it expires on its own", tenant_id, slot)


def wake_later(*, tenant_id: int, countdown: float) -> None:
    """Ask for a turn after ``countdown`` seconds (work that is not due yet: a retry)."""
    try:
        current_app.send_task(WAKE_TASK, args=(tenant_id,), countdown=countdown, retry=False)
    except Exception:
        logger.warning("Wake-up for tenant %s not queued; the sweep will retry", tenant_id)
