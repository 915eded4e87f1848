"""A turn's slot belongs to the turn whose token it holds: a turn the broker redelivers late
(after its worker died and the sweep gave the slot away) neither runs nor frees the slot."""

from __future__ import annotations

from django.conf import settings

from herald.redisio import shared_redis
from notifications.services import turns
from notifications.tasks import email_turn


def _value(key: str) -> str | None:
    value = shared_redis().get(key)
    return value.decode() if isinstance(value, bytes) else value


def test_a_running_turn_holds_its_slot_for_one_lease_and_only_it_releases_it(db, world):
    tenant_id = world.tenant_a.pk
    key = turns._key(tenant_id, 0)
    shared_redis().set(key, "mine", ex=settings.EMAIL_TURN_TTL)  # queued: the long hold

    assert turns.turn_start(tenant_id=tenant_id, slot=0, token="mine")
    assert 0 < shared_redis().ttl(key) <= settings.DELIVERY_LEASE_SECONDS
    turns.turn_release(tenant_id=tenant_id, slot=0, token="someone-else")
    assert _value(key) == "mine"
    turns.turn_release(tenant_id=tenant_id, slot=0, token="mine")
    assert _value(key) is None


def test_a_turn_redelivered_after_its_slot_was_given_away_does_nothing(db, world):
    tenant_id = world.tenant_a.pk
    key = turns._key(tenant_id, 1)
    shared_redis().set(key, "new", ex=60)

    assert email_turn.apply(args=(tenant_id, 1, "old")).get() == 0
    assert _value(key) == "new"
    assert 50 < shared_redis().ttl(key) <= 60  # neither renewed nor shortened


def test_a_slot_whose_turn_died_can_be_taken_by_a_late_turn(db, world):
    tenant_id = world.tenant_a.pk
    key = turns._key(tenant_id, 0)
    shared_redis().delete(key)  # the dead turn's lease ran out
    assert turns.turn_start(tenant_id=tenant_id, slot=0, token="late")
    assert _value(key) == "late"
