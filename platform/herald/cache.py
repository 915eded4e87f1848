"""Django's Redis cache, sharing one connection pool and client per process.

Django keeps one cache object per thread and async context, and its Redis cache builds a fresh
connection pool for each, and a fresh client object for every call. Under ASGI every request runs
in a context of its own, so each request opened (and later dropped) a new Redis connection: about
a quarter of a cheap API call's time (bench/send_and_inbox.py). Here all of them share one pool
per URL and options, and one client per pool. redis-py's pools and clients are thread-safe, and a
pool resets itself in a forked child.

``incr`` is also one atomic round trip instead of two (EXISTS, then INCRBY). django-ratelimit
counts every API call with ``add`` + ``incr`` per window, so that is two round trips fewer per
call; and a key that expired between the two commands can no longer be re-created by INCRBY
without its expiry.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class SharedConnectionPool(redis.ConnectionPool):
    _shared: ClassVar[dict[str, SharedConnectionPool]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SharedConnectionPool:
        key = repr((url, sorted(kwargs.items(), key=lambda item: item[0])))
        with cls._shared_lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
        return pool


# INCRBY only an existing key; nil (None) when there is none.
_INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""


class SharedRedisCacheClient(RedisCacheClient):
    _clients: ClassVar[dict[int, redis.Redis]] = {}

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, pool_class=SharedConnectionPool, **options)

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's, not in its stubs
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))  # type: ignore[attr-defined]  # as above
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        value = client.register_script(_INCR_EXISTING)(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with process-wide pools and clients."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedRedisCacheClient
