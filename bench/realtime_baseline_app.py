"""Baseline for ``bench/realtime.py``: bare Channels, one group per user, one ``group_send`` each.

Serve (the layer and key prefix come from the environment):

    RTBENCH_LAYER=pubsub|core RTBENCH_PREFIX=rtbench-... REDIS_URL=redis://... \\
        uvicorn realtime_baseline_app:application --app-dir bench --lifespan off

A client connects to ``/ws?user=<n>``, joins group ``u<n>`` and gets ``{"type":"ready"}``; from
then on every group message's ``text`` is forwarded to it verbatim.

Publish (driven by ``bench/realtime.py`` over stdin/stdout):

    python bench/realtime_baseline_app.py publish --groups 1000

reads one line per round (the round's tag), does one ``await group_send("u<n>", ...)`` per group,
one after another, and prints ``{"tag", "start", "end"}`` (``time.perf_counter``; on Linux that is
CLOCK_MONOTONIC, the same clock in every process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import django
from django.conf import settings

CORE_CAPACITY = 2000


def layer_config() -> dict[str, Any]:
    """CHANNEL_LAYERS["default"] for the layer named by ``RTBENCH_LAYER``."""
    hosts = [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]
    prefix = os.environ.get("RTBENCH_PREFIX", "rtbench-baseline")
    if os.environ.get("RTBENCH_LAYER", "pubsub") == "core":
        return {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": hosts, "prefix": prefix, "capacity": CORE_CAPACITY},
        }
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": hosts, "prefix": prefix},
    }


if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("SECRET_KEY", "rtbench-baseline-" + "x" * 32),
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": layer_config()},
        ALLOWED_HOSTS=["*"],
        LOGGING_CONFIG=None,
    )
    django.setup()

# These imports need the settings configured above, hence after them (E402).
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class GroupConsumer(AsyncWebsocketConsumer):
    """Joins the group of its user and forwards every group message."""

    group: str = ""

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.group = f"u{int((query.get('user') or ['0'])[0])}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data='{"type":"ready"}')

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def bench_notify(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


async def health(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Any HTTP request: 200 (the benchmark polls this until the server is up)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter(
    {"http": health, "websocket": URLRouter([path("ws", GroupConsumer.as_asgi())])}
)


def baseline_frame(tag: str) -> str:
    """A frame shaped and sized like Herald's ``notification`` frame."""
    return json.dumps(
        {
            "type": "notification",
            "notification": {
                "id": 0,
                "type": "bench",
                "title": "",
                "message": tag,
                "url": "",
                "data": {},
                "created_at": "2025-01-01T00:00:00.000000Z",
                "is_read": False,
                "read_at": None,
                "archived": False,
            },
        },
        separators=(",", ":"),
    )


async def publish(groups: int) -> None:
    """One line of stdin per round: group_send to every group, one after another."""
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send("warmup", {"type": "bench.notify", "text": "{}"})
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        tag = line.strip()
        if not tag:
            break
        text = baseline_frame(tag)
        start = time.perf_counter()
        for index in range(groups):
            await layer.group_send(f"u{index}", {"type": "bench.notify", "text": text})
        end = time.perf_counter()
        print(json.dumps({"tag": tag, "start": start, "end": end}), flush=True)
    if hasattr(layer, "flush"):
        await layer.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="Baseline publisher (see the module docstring).")
    parser.add_argument("role", choices=["publish"])
    parser.add_argument("--groups", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(publish(args.groups))


if __name__ == "__main__":
    main()
