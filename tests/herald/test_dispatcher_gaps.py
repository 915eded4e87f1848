"""The dispatcher's subscription against a Redis that goes away: every gap is noticed, and the
connections it concerns are told, before anything newer reaches them.

A real throwaway redis-server, reached directly or through a TCP relay that can go silent while
keeping its connections open (a peer that vanished without a FIN, which a blocking read would wait
on forever). The connections are stand-ins: what is tested is the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
import redis

from herald import realtime
from herald.realtime import Dispatcher, RealtimeUnavailable, bus_channel
from tests.support.aio import run_loop
from tests.support.processes import free_port, throwaway_redis
from tests.support.relay import Relay

TENANT, USER = 10**9 + 7, 42


class StandIn:
    """Records what the dispatcher calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def deliver(self, message: dict[str, Any], notification_id: int | None) -> None:
        self.calls.append(("deliver", notification_id))

    def resync(self, lost_at: float) -> None:
        self.calls.append(("resync", lost_at))

    def unavailable(self) -> None:
        self.calls.append(("unavailable", None))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def created(notification_id: int) -> str:
    return json.dumps(
        {
            "kind": "created",
            "tenant": TENANT,
            "notification": {"message": "m"},
            "deliveries": [[USER, notification_id]],
        }
    )


async def until(probe, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def fast_health(monkeypatch):
    monkeypatch.setattr(realtime, "QUIET_PING_AFTER", 0.5)
    monkeypatch.setattr(realtime, "PONG_TIMEOUT", 0.5)
    monkeypatch.setattr(realtime, "WATCH_TICK", 0.1)
    monkeypatch.setattr(realtime, "SUBSCRIBE_WAIT", 1.0)
    monkeypatch.setattr(realtime, "GAP_CLOSE_AFTER", 3.0)
    monkeypatch.setattr(realtime, "GAP_CLOSE_SPREAD", 0.5)


def test_a_lost_subscription_resyncs_its_connections_before_anything_newer(settings, fast_health):
    port = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    publisher = redis.Redis(port=port, socket_timeout=1)
    channel = bus_channel()
    stand_in, newcomer = StandIn(), StandIn()
    outage = contextlib.ExitStack()
    outage.enter_context(throwaway_redis(port))

    async def scenario() -> None:
        dispatcher = Dispatcher()
        await dispatcher.register(TENANT, USER, stand_in)
        publisher.publish(channel, created(1))
        await until(lambda: stand_in.kinds() == ["deliver"], what="the first delivery")

        before_kill = time.time()
        await asyncio.to_thread(outage.close)
        await until(lambda: not dispatcher.subscribed, what="the loss to be noticed")
        # A connection arriving now is not accepted as live: it is refused within SUBSCRIBE_WAIT.
        with pytest.raises(RealtimeUnavailable):
            await dispatcher.register(TENANT, USER + 1, newcomer)

        await asyncio.to_thread(outage.enter_context, throwaway_redis(port))
        await until(lambda: dispatcher.subscribed, what="the subscription to come back")
        publisher.publish(channel, created(2))
        await until(lambda: len(stand_in.calls) == 3, what="the resync and the next delivery")
        assert stand_in.kinds() == ["deliver", "resync", "deliver"]
        assert stand_in.calls[1][1] <= before_kill  # the gap began no later than the kill
        assert newcomer.calls == []  # refused, not routed to

    try:
        run_loop(scenario())
    finally:
        outage.close()


def test_a_subscription_that_goes_silent_is_noticed_and_replaced(settings, fast_health):
    with throwaway_redis() as port:
        relay = Relay(port)
        settings.REDIS_URL = f"redis://127.0.0.1:{relay.port}/0"
        publisher = redis.Redis(port=port, socket_timeout=1)
        stand_in = StandIn()

        async def scenario() -> None:
            dispatcher = Dispatcher()
            await dispatcher.register(TENANT, USER, stand_in)
            relay.silence()  # the connection stays open; nothing comes through any more
            publisher.publish(bus_channel(), created(1))  # lost with the silent connection
            started = time.monotonic()
            await until(lambda: "resync" in stand_in.kinds(), what="a resync")
            noticed = time.monotonic() - started
            assert noticed < 5  # a quiet ping (0.5 s) unanswered for 0.5 s, then resubscribed
            publisher.publish(bus_channel(), created(2))
            await until(lambda: ("deliver", 2) in stand_in.calls, what="live again")
            assert stand_in.kinds() == ["resync", "deliver"]

        try:
            run_loop(scenario())
        finally:
            relay.close()


def test_a_gap_too_long_to_bridge_closes_its_connections(settings, fast_health):
    port = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    stand_in = StandIn()
    outage = contextlib.ExitStack()
    outage.enter_context(throwaway_redis(port))

    async def scenario() -> None:
        dispatcher = Dispatcher()
        await dispatcher.register(TENANT, USER, stand_in)
        await asyncio.to_thread(outage.close)
        await until(lambda: stand_in.kinds() == ["unavailable"], what="the connection closed")
        dispatcher.unregister(TENANT, USER, stand_in)  # as a closed connection does
        await asyncio.to_thread(outage.enter_context, throwaway_redis(port))
        await until(lambda: dispatcher.subscribed, what="the subscription to come back")
        assert stand_in.kinds() == ["unavailable"]  # told once, and no resync after

    try:
        run_loop(scenario())
    finally:
        outage.close()


def test_a_subscriber_that_redis_disconnects_is_a_gap_too(settings, fast_health):
    """Redis itself drops subscribers (``client-output-buffer-limit pubsub`` for one that reads
    too slowly, an operator's ``CLIENT KILL``) while staying up. redis-py would reconnect and
    resubscribe on its own; whatever was published in between would be lost without a word."""
    with throwaway_redis() as port:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        publisher = redis.Redis(port=port, socket_timeout=1)
        stand_in = StandIn()

        async def scenario() -> None:
            dispatcher = Dispatcher()
            await dispatcher.register(TENANT, USER, stand_in)
            assert publisher.client_kill_filter(_type="pubsub") == 1
            await until(lambda: "resync" in stand_in.kinds(), what="a resync")
            await until(lambda: dispatcher.subscribed, what="subscribed again")
            publisher.publish(bus_channel(), created(1))
            await until(lambda: ("deliver", 1) in stand_in.calls, what="live again")
            assert stand_in.kinds() == ["resync", "deliver"]

        run_loop(scenario())
