"""The ASGI HTTP handler: real-time events held until the response is out. In this process
(tests/support/asgi.py), on the real database and Redis."""

from __future__ import annotations

import json
import uuid

import redis
from django.conf import settings

from herald.handlers import SyncASGIHandler
from herald.realtime import CHANNEL
from tests.support.asgi import call, run_loop
from tests.support.processes import wait_until


def test_a_sends_events_are_published_once_its_response_is_out(committed, world):
    """The caller's 202 never waits behind the frames of its own broadcast: the bus message goes
    out after the response. A marker published the moment the response is handed over must
    reach a subscriber before the send's message."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    wait_until(
        lambda: (m := pubsub.get_message(timeout=0.1)) is not None and m["type"] == "subscribe",
        what="Redis to confirm the subscription",
    )
    marker = f"response-out-{uuid.uuid4().hex}"
    tag = f"held-{uuid.uuid4().hex}"
    body = {"type": "held", "recipients": [f"held-{uuid.uuid4().hex[:8]}"], "message": tag}

    async def scenario() -> int:
        answer = await call(
            SyncASGIHandler(),
            "POST",
            "/api/v1/notifications",
            host=world.alice.host,
            token=world.alice.api_key,
            body=body,
            on_sent=lambda: client.publish(CHANNEL, json.dumps({"marker": marker})),
        )
        return answer.status

    try:
        assert run_loop(scenario()) == 202
        order: list[str] = []

        def both_seen() -> bool:
            raw = pubsub.get_message(timeout=0.1)
            if raw and raw["type"] == "message":
                message = json.loads(raw["data"])
                if message.get("marker") == marker:
                    order.append("response")
                elif message.get("notification", {}).get("message") == tag:
                    order.append("event")
            return len(order) == 2

        wait_until(both_seen, timeout=10, what="the marker and the send's event")
        assert order == ["response", "event"]
    finally:
        pubsub.close()
        client.close()
