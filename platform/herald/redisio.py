"""Herald's Redis: the process-wide clients and the names of every key and channel.

Naming. Every key and pub/sub channel Herald keeps in Redis outside Django's cache (email turns
and send-rate buckets, quota-alert and dashboard flags, WebSocket connection counts, beat's lease,
the real-time bus) is ``redis_key(...)``: ``<namespace>:<part>:<part>...``. The namespace is
``REDIS_NAMESPACE``, by default ``herald:<database name>``. Tenant ids repeat across databases, so
two deployments (or test runs) that share one Redis but not one PostgreSQL database never meet
each other's keys or bus messages; two that share a database name set ``REDIS_NAMESPACE``. Keys
name tenants by id, never by schema or slug: a tenant deleted and re-created under the same slug
gets a new id, so it can never read what its predecessor left. Django's caches sit under the same
namespace (``<namespace>:cache`` and ``<namespace>:registry``, see ``herald.settings``); keys
written through the cache API are named by the cache's ``KEY_PREFIX``.

Clients. ``shared_redis()`` is the process's one synchronous client, ``async_redis()`` the event
loop's one asynchronous client, both pools for ``REDIS_URL`` with short socket timeouts (a Redis
outage fails a request fast, not hangs it). ``new_redis`` and ``new_async_redis`` make a client of
its own, for what must not share a pool: a health probe, a pub/sub subscription. Nothing else
constructs a raw client (ruff's banned-API rule enforces it).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

# The client types, for annotations: code outside this module holds clients, never makes them.
Client = redis.Redis
AsyncClient = aioredis.Redis


def namespace(*, database: str | None = None) -> str:
    """This deployment's namespace; ``database`` names another deployment's default (benchmarks
    observing a server they started). Read from settings at each call, never from
    ``django.db.connection`` (in async code that would create a database wrapper per context),
    so a test run that switches to its test database names its keys after it."""
    if database is not None:
        return f"herald:{database}"
    return settings.REDIS_NAMESPACE or f"herald:{settings.DATABASES['default']['NAME']}"


def redis_key(*parts: object, database: str | None = None) -> str:
    """``<namespace>:<part>:<part>...``: the name of a Redis key or pub/sub channel."""
    return ":".join((namespace(database=database), *map(str, parts)))


def _timeouts() -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }


def new_redis(**options: Any) -> redis.Redis:
    """A synchronous client of its own for ``REDIS_URL`` (short timeouts unless ``options``
    say otherwise); the caller closes it."""
    return redis.Redis.from_url(settings.REDIS_URL, **{**_timeouts(), **options})


def new_async_redis(**options: Any) -> aioredis.Redis:
    """An asynchronous client of its own for ``REDIS_URL``; ``options`` go to redis-py as they
    are (no timeouts unless given)."""
    return aioredis.Redis.from_url(settings.REDIS_URL, **options)


_sync_client: redis.Redis | None = None


def shared_redis() -> redis.Redis:
    """This process's synchronous Redis client (a connection pool), for ``REDIS_URL``."""
    global _sync_client
    if _sync_client is None:
        _sync_client = new_redis()
    return _sync_client


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def async_redis() -> aioredis.Redis:
    """This event loop's asynchronous Redis client (a connection pool), for ``REDIS_URL``."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = new_async_redis(**_timeouts())
    return client
