"""The Redis cache backend: Django's, with shared connections and a one-round-trip incr."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from herald.redisio import shared_redis


def test_incr_counts_an_existing_key_and_keeps_its_expiry(db):
    cache.set("counter", 5, 60)
    assert cache.incr("counter") == 6
    assert cache.incr("counter", 10) == 16
    assert cache.decr("counter", 2) == 14
    assert cache.get("counter") == 14
    assert 0 < shared_redis().ttl(cache.make_key("counter")) <= 60


def test_incr_of_a_missing_key_raises_and_creates_nothing(db):
    cache.delete("absent")
    with pytest.raises(ValueError, match="not found"):
        cache.incr("absent")
    assert cache.get("absent") is None
    assert not shared_redis().exists(cache.make_key("absent"))
