"""Every Redis key and channel is named under the deployment's namespace (``herald.redisio``):
deployments sharing a Redis keep apart, and keys name tenants by id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from herald import redisio
from herald.realtime import Dispatcher, bus_channel, publish_encoded_now
from notifications.models import EndUser
from notifications.unread import _count_key, _generation_key, unread_count
from tests.support.aio import run_loop
from tests.support.processes import ROOT, process_env

TENANT, USER = 7, 42  # ids every deployment has


class StandIn:
    def __init__(self) -> None:
        self.delivered: list[int | None] = []

    def deliver(self, message: dict[str, Any], notification_id: int | None) -> None:
        self.delivered.append(notification_id)

    def resync(self, lost_at: float) -> None:
        pass

    def unavailable(self) -> None:
        pass


def created(notification_id: int) -> str:
    return json.dumps(
        {
            "kind": "created",
            "tenant": TENANT,
            "notification": {"message": "m"},
            "deliveries": [[USER, notification_id]],
        }
    )


def test_keys_and_channels_are_named_under_the_namespace(settings):
    settings.REDIS_NAMESPACE = ""
    name = settings.DATABASES["default"]["NAME"]
    assert redisio.redis_key("email", "turn", 3, 0) == f"herald:{name}:email:turn:3:0"
    assert bus_channel() == f"herald:{name}:rt"
    assert redisio.redis_key("rt", database="other") == "herald:other:rt"
    settings.REDIS_NAMESPACE = "acme-prod"
    assert bus_channel() == "acme-prod:rt"


def cache_prefixes(**env: str | None) -> list[str]:
    base = {**process_env(DATABASE_URL="postgres://postgres@127.0.0.1:5432/acme"), **env}
    script = "import herald.settings as s; print(*(c['KEY_PREFIX'] for c in s.CACHES.values()))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, env={k: v for k, v in base.items() if v is not None},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_the_caches_live_under_the_namespace():
    unset = {"REDIS_NAMESPACE": None, "CACHE_KEY_PREFIX": None}
    assert cache_prefixes(**unset) == ["herald:acme:cache", "herald:acme:registry"]
    named = {**unset, "REDIS_NAMESPACE": "acme-prod"}
    assert cache_prefixes(**named) == ["acme-prod:cache", "acme-prod:registry"]


def test_a_frame_published_in_one_deployment_never_reaches_another(settings):
    """Two deployments on one Redis, with equal tenant and user ids: each dispatcher receives
    only its own deployment's events."""
    run = uuid.uuid4().hex[:8]
    ours, theirs = f"herald-test-{run}-a", f"herald-test-{run}-b"
    settings.REDIS_NAMESPACE = ours
    stand_in = StandIn()

    async def scenario() -> None:
        dispatcher = Dispatcher()
        await dispatcher.register(TENANT, USER, stand_in)  # returns once subscribed to ours
        settings.REDIS_NAMESPACE = theirs
        await asyncio.to_thread(publish_encoded_now, created(1))  # the other deployment's
        settings.REDIS_NAMESPACE = ours
        await asyncio.to_thread(publish_encoded_now, created(2))
        deadline = time.monotonic() + 10
        while not stand_in.delivered and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # time for a stray frame to arrive, were it routed to us
        dispatcher.unregister(TENANT, USER, stand_in)

    run_loop(scenario())
    assert stand_in.delivered == [2]


@pytest.mark.django_db
def test_unread_counts_name_the_tenant_by_id_not_by_schema(world):
    """A tenant re-created under the same slug (same schema, user ids starting over) has a new
    id, so it never reads a count its predecessor cached."""
    tenant = world.tenant_a
    connection.set_tenant(tenant)
    try:
        user = EndUser.objects.create(external_id=f"naming-{uuid.uuid4().hex[:8]}")
        predecessor_id = tenant.pk + 10**6
        assert unread_count(tenant_id=predecessor_id, user_id=user.pk) == 0  # counted, cached
        generation = cache.get(_generation_key(predecessor_id, user.pk))
        cache.set(_count_key(predecessor_id, user.pk, generation), 99)  # its user had 99
        assert unread_count(tenant_id=predecessor_id, user_id=user.pk) == 99
        assert unread_count(tenant_id=tenant.pk, user_id=user.pk) == 0
    finally:
        connection.set_schema_to_public()
