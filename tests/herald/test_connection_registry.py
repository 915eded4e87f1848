"""WebSocket connection counting in Redis: limits across processes, kept alive by one heartbeat."""

from __future__ import annotations

import secrets

import redis
from django.conf import settings

from herald.realtime import CONNECTION_TTL, ConnectionRegistry
from tests.support.aio import run_loop


def test_limit_heartbeat_and_release():
    tenant = 10**9 + secrets.randbelow(10**9)  # a tenant id no other test uses
    key = ConnectionRegistry._key(tenant)
    sync = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario() -> None:
        process_a, process_b = ConnectionRegistry(), ConnectionRegistry()
        first = await process_a.acquire(tenant, limit=2)
        second = await process_b.acquire(tenant, limit=2)
        assert first
        assert second
        assert await process_a.acquire(tenant, limit=2) is None  # counted across "processes"

        # Age the entries as if the heartbeat were late; one heartbeat of A renews only A's.
        sync.zadd(key, {first: 1.0, second: 1.0})
        await process_a.refresh_all()
        assert sync.zscore(key, first) > 1.0 + CONNECTION_TTL
        assert sync.zscore(key, second) == 1.0
        assert await process_a.count(tenant) == 1  # B's connection expired with no heartbeat

        await process_a.release(tenant, first)
        assert await process_a.count(tenant) == 0
        assert await process_b.acquire(tenant, limit=2)  # places are free again
        await process_a.refresh_all()  # holds nothing: a no-op

    try:
        run_loop(scenario())
    finally:
        sync.delete(key)


def test_connections_redis_lost_are_counted_again_by_the_next_heartbeat():
    """Redis restarted without its data while the sockets stayed open (they catch up in place):
    the heartbeat puts back what this process still holds, and not what it released."""
    tenant = 10**9 + secrets.randbelow(10**9)
    key = ConnectionRegistry._key(tenant)
    sync = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario() -> None:
        registry = ConnectionRegistry()
        kept = await registry.acquire(tenant, limit=5)
        gone = await registry.acquire(tenant, limit=5)
        sync.delete(key)  # as a restart without persistence would
        registry._held[tenant].discard(gone)  # released meanwhile (its ZREM found nothing)
        await registry.refresh_all()
        assert sync.zrange(key, 0, -1) == [kept.encode()]
        assert await registry.count(tenant) == 1

    try:
        run_loop(scenario())
    finally:
        sync.delete(key)
