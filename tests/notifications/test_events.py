"""Every publisher's messages match the shapes in notifications/events.py (real Redis pub/sub)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from herald.realtime import bus_channel
from notifications.events import ShapeError, validate_bus_message, validate_client_frame
from tests.support.processes import wait_until


class Subscriber:
    def __init__(self) -> None:
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(bus_channel())
        wait_until(self._confirmed, what="Redis to confirm the subscription")
        self.messages: list[dict[str, Any]] = []

    def _confirmed(self) -> bool:
        raw = self.pubsub.get_message(timeout=0.1)
        return bool(raw) and raw["type"] == "subscribe"

    def collect(self, count: int) -> list[dict[str, Any]]:
        def enough() -> bool:
            raw = self.pubsub.get_message(timeout=0.1)
            if raw and raw["type"] == "message":
                self.messages.append(json.loads(raw["data"]))
            return len(self.messages) >= count

        wait_until(enough, timeout=10, what=f"{count} published messages")
        return self.messages


@pytest.fixture
def bus() -> Iterator[Subscriber]:
    subscriber = Subscriber()
    yield subscriber
    subscriber.pubsub.close()
    subscriber.client.close()


def test_send_publishes_one_created_message_for_all_recipients(alice_key, world, bus):
    alice_key.post(
        "/api/v1/notifications",
        {"type": "ev", "recipients": ["user-1", "user-2"], "message": "m", "data": {"k": 1}},
    )
    (message,) = [m for m in bus.collect(1) if m["tenant"] == world.tenant_a.pk]
    validate_bus_message(message)
    assert message["kind"] == "created"
    assert len(message["deliveries"]) == 2
    assert message["notification"]["data"] == {"k": 1}


def test_inbox_changes_publish_inbox_changed(alice_key, erin, world, bus):
    alice_key.post(
        "/api/v1/notifications", {"type": "ev", "recipients": ["user-1"], "message": "m"}
    )
    notification_id = erin.get("/api/v1/me/notifications").json()["results"][0]["id"]
    erin.patch(f"/api/v1/me/notifications/{notification_id}", {"is_read": True})
    erin.patch(f"/api/v1/me/notifications/{notification_id}", {"archived": True})
    erin.post("/api/v1/me/notifications/read_all")  # nothing unread left: publishes nothing
    messages = bus.collect(3)
    for message in messages:
        validate_bus_message(message)
    changed = [m for m in messages if m["kind"] == "inbox_changed"]
    assert [(m["read_ids"], m["unread_count"]) for m in changed] == [
        ([notification_id], 0),
        ([], 0),
    ]


def test_nothing_is_published_for_a_rejected_send(alice_key, bus):
    alice_key.post("/api/v1/notifications", {"type": "ev", "recipients": [], "message": "m"})
    alice_key.post(
        "/api/v1/notifications", {"type": "ev", "recipients": ["user-1"], "message": "ok"}
    )
    messages = bus.collect(1)
    assert [m["notification"]["message"] for m in messages] == ["ok"]


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "created", "tenant": "1", "notification": {}, "deliveries": []},
        {"kind": "created", "tenant": 1, "notification": {"title": "x"}, "deliveries": []},
        {"kind": "inbox_changed", "tenant": 1, "user": 1, "read_ids": [], "unread_count": "1"},
        {"kind": "mystery", "tenant": 1},
    ],
)
def test_the_validator_rejects_wrong_shapes(bad):
    with pytest.raises(ShapeError):
        validate_bus_message(bad)


def test_client_frame_validator():
    validate_client_frame({"type": "unread_count", "count": 3})
    with pytest.raises(ShapeError):
        validate_client_frame({"type": "unread_count", "count": "3"})


@pytest.mark.parametrize(
    "shared",
    [
        {},
        {"type": "comment", "title": 'Ünïcode \u2028 "quoted" </script>', "data": {"a": [1, None]}},
    ],
)
def test_pre_encoded_frames_equal_encoding_the_frame_shapes(shared):
    from herald.realtime import encode
    from notifications.events import (
        notification_frame,
        notification_frame_text,
        unread_count_frame,
        unread_count_frame_text,
    )

    text = notification_frame_text(42, encode(shared))
    assert text == encode(notification_frame({"id": 42, **shared}))
    assert unread_count_frame_text(7) == encode(unread_count_frame(7))


@pytest.mark.parametrize("deliveries", [[(3, 41)], [(3, 41), (12, 42), (7, 1_000_000_000_003)]])
def test_the_pre_encoded_created_message_equals_encoding_its_shape(deliveries):
    from herald.realtime import encode
    from notifications.events import created_message, created_message_text

    shared = {
        "type": "comment",
        "title": 'Ünïcode "quoted" </script>',
        "message": "m",
        "url": "",
        "data": {"a": [1, None]},
        "created_at": "2026-01-01T00:00:00Z",
        "is_read": False,
        "read_at": None,
        "archived": False,
    }
    # As the fan-out statement builds it: [[user id,notification id],...], no spaces.
    deliveries_json = "[" + ",".join(f"[{user},{note}]" for user, note in deliveries) + "]"
    text = created_message_text(
        tenant_id=5, shared_json=encode(shared), deliveries_json=deliveries_json
    )
    assert text == encode(created_message(tenant_id=5, shared=shared, deliveries=deliveries))
    validate_bus_message(json.loads(text))
