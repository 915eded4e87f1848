"""Beat's lease (``herald.beat``): one holder at a time, renewed only by its holder, and a beat
that outlives Redis. Two beats running at once against real workers are in
``test_topology.py``."""

from __future__ import annotations

import uuid

import redis
from django.conf import settings

from herald.beat import Lease
from herald.redisio import redis_key, shared_redis
from tests.support.processes import free_port, running_beat, throwaway_redis, wait_until


def test_a_lease_has_one_holder_whom_only_a_lapse_replaces():
    client = shared_redis()
    name = redis_key("test-lease", uuid.uuid4().hex)
    first, second = Lease(client, name, seconds=5), Lease(client, name, seconds=5)
    try:
        assert first.hold()
        assert not second.hold()
        assert first.holder() == first.token != second.token

        client.pexpire(name, 500)
        assert first.hold()  # renewed to a whole lease
        assert 4000 < client.pttl(name) <= 5000

        client.pexpire(name, 1)  # the holder stalled past its lease
        wait_until(lambda: not client.exists(name), timeout=5, what="the lease to lapse")
        assert second.hold()
        assert not first.hold()  # it may not renew another's lease, nor take it
        assert not first.release()
        assert first.holder() == second.token

        assert second.release()
        assert not client.exists(name)
        assert first.hold()  # free again: anyone may take it
    finally:
        client.delete(name)


def test_beat_outlives_redis_outages_and_sends_again_once_it_holds_the_lease():
    """Started while Redis is down, beat waits instead of exiting; it leads once Redis answers,
    keeps running while Redis is gone again, and leads again when it comes back empty (no
    persistence: its lease went with the data)."""
    port = free_port()
    client = redis.Redis(port=port, socket_timeout=2)
    queue, lease = settings.CELERY_TASK_DEFAULT_QUEUE, redis_key("beat", "leader")
    fast = {"BEAT_LEASE_SECONDS": "2", "BEAT_INTERVALS": "release-due-sends=1"}
    with running_beat(REDIS_URL=f"redis://127.0.0.1:{port}/0", **fast) as beat:

        def outages(count: int) -> bool:
            assert beat.alive(), beat.log()
            return beat.log().count("Redis does not answer") >= count

        wait_until(lambda: outages(1), timeout=30, what="beat to notice")
        for seen in (2, 3):
            with throwaway_redis(port):
                wait_until(lambda: client.llen(queue) > 0, timeout=20, what="a periodic task")
                assert client.get(lease).decode().split(":")[1] == str(beat.pid)
            wait_until(lambda n=seen: outages(n), timeout=20, what="beat to notice")
        assert beat.alive(), beat.log()
