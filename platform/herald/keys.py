"""Names of Herald's Redis keys and pub/sub channels: the one place that namespaces them.

Everything Herald keeps in Redis outside Django's cache (email turns and send-rate buckets,
WebSocket connection counts, the real-time bus) is named ``herald:<database>:...``. Tenant ids
repeat across databases, so two deployments (or test runs) that share one Redis but not one
PostgreSQL database never meet each other's keys or bus messages. Django's cache has its own
``KEY_PREFIX`` (``CACHE_KEY_PREFIX``).
"""

from __future__ import annotations

from django.conf import settings


def redis_name(*parts: object, database: str | None = None) -> str:
    """``herald:<database name>:<part>:<part>...``; ``database`` names another deployment's
    (benchmarks observing a server they started). Read from settings, never from
    ``django.db.connection``: in async code that would create a database wrapper per context."""
    name = database or settings.DATABASES["default"]["NAME"]
    return ":".join(("herald", name, *map(str, parts)))
