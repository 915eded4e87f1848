"""Fair turns between tenants on one Celery queue.

Each tenant's pending work already waits in its own schema (its outbox of deliveries): that is
its queue. The Celery queue carries only *turns*: a message "tenant T may send one batch". A
tenant holds at most ``EMAIL_TENANT_CONCURRENCY`` turns at a time (a Redis key per slot, taken
with ``SET NX``). A turn sends one batch, then goes to the back of the line if work remains.

So the broker's queue never holds more than tenants x slots messages, whatever the backlog, and a
tenant with one email waits behind at most one batch per busy tenant and slot, never behind
another tenant's 100,000 emails. One queue and any number of workers serve thousands of tenants.

A slot's key holds the token of the turn that owns it. While the turn waits in the broker the
key lives ``EMAIL_TURN_TTL_SECONDS`` (600: a message lost with a broker outage frees its slot
after that). A running turn holds it for one lease (``DELIVERY_LEASE_SECONDS``, 30), renewed by
its heartbeat (``services.leases``): a turn whose worker died frees its slot within one lease,
and the periodic sweep gives the tenant a new turn. Renewing and releasing check the token, so
a turn whose slot was given away meanwhile (the broker redelivers a dead worker's message after
its visibility timeout) neither runs nor frees the slot of the turn that replaced it.
"""

from __future__ import annotations

import logging
import uuid

import redis
from celery import current_app
from django.conf import settings

from herald.metrics import TURNS_QUEUED, TURNS_STARTED
from herald.redisio import redis_key, shared_redis

logger = logging.getLogger(__name__)

TURN_TASK = "notifications.email_turn"
WAKE_TASK = "notifications.email_wake"


def _key(tenant_id: int, slot: int) -> str:
    return redis_key("email", "turn", tenant_id, slot)


# KEYS[1] the slot, ARGV[1] the turn's token, ARGV[2] seconds. Start: take the slot if it is
# this turn's or free. Renew: extend it if it is this turn's. Release: delete it if it is.
_START = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('EXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
LEGACY_TOKEN = "1"  # noqa: S105 -- the value of slots taken before turns carried tokens


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
            token = uuid.uuid4().hex
            key = _key(tenant_id, slot)
            if not client.set(key, token, nx=True, ex=settings.EMAIL_TURN_TTL):
                continue  # this slot's turn is already queued or running
            try:
                current_app.send_task(TURN_TASK, args=(tenant_id, slot, token), retry=False)
            except Exception:  # kombu raises several types for an unreachable broker
                client.delete(key)
                raise
            queued += 1
            TURNS_QUEUED.inc()
    except Exception:
        logger.warning("Turn for tenant %s not queued; the sweep will retry", tenant_id)
    return queued


def _script(source: str, tenant_id: int, slot: int, token: str | None, seconds: int = 0) -> int:
    client = shared_redis()
    key = _key(tenant_id, slot)
    return int(client.eval(source, 1, key, token or LEGACY_TOKEN, seconds))


def turn_start(*, tenant_id: int, slot: int, token: str | None) -> bool:
    """A turn starts: it holds its slot for one lease (renewed by ``turn_renew``). False when
    the slot belongs to another turn now: this one must not run. With Redis unreachable the
    turn runs (its rows are claimed in the database, so nothing is sent twice)."""
    try:
        started = bool(_script(_START, tenant_id, slot, token, settings.DELIVERY_LEASE_SECONDS))
    except redis.RedisError:
        logger.warning("Could not take turn %s/%s; running it anyway", tenant_id, slot)
        started = True
    TURNS_STARTED.labels("run" if started else "superseded").inc()
    return started


def turn_renew(*, tenant_id: int, slot: int, token: str | None) -> None:
    """A running turn keeps its slot for another lease (its heartbeat calls this)."""
    try:
        _script(_RENEW, tenant_id, slot, token, settings.DELIVERY_LEASE_SECONDS)
    except redis.RedisError:
        logger.warning("Could not renew turn %s/%s", tenant_id, slot)


def turn_release(*, tenant_id: int, slot: int, token: str | None) -> None:
    """Free a slot, if this turn still holds it. Release first, then look for remaining work:
    whatever is committed after the release queues its own turn, so nothing is left without
    one."""
    try:
        _script(_RELEASE, tenant_id, slot, token)
    except redis.RedisError:
        logger.warning("Could not release turn %s/%s; it expires on its own", tenant_id, slot)


def wake_later(*, tenant_id: int, countdown: float) -> None:
    """Ask for a turn after ``countdown`` seconds (work that is not due yet: a retry)."""
    try:
        current_app.send_task(WAKE_TASK, args=(tenant_id,), countdown=countdown, retry=False)
    except Exception:
        logger.warning("Wake-up for tenant %s not queued; the sweep will retry", tenant_id)
