"""The ASGI HTTP handler: long-lived request threads, and real-time events held until the
response is out. In this process (tests/support/asgi.py), on the real database and Redis. The
upgrade guards at the end pin what it copies from Django and asgiref (see the module docstring's
"On upgrade, check")."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse

from herald.handlers import CHECKED_RELEASES, RequestThreads, SyncASGIHandler
from herald.realtime import bus_channel
from tests.support.aio import run_loop
from tests.support.asgi import call
from tests.support.processes import wait_until
from tests.support.upstream import assert_release_in, assert_sources_unchanged, parameters

RECHECK = "the 'On upgrade, check' list in herald/handlers.py's docstring"


@pytest.fixture
def threads_seen() -> Iterator[dict[str, list[int]]]:
    """The threads that ran each request's ``request_started`` and ``request_finished``."""
    seen: dict[str, list[int]] = {"started": [], "finished": []}

    def started(**_kwargs: Any) -> None:
        seen["started"].append(threading.get_ident())

    def finished(**_kwargs: Any) -> None:
        seen["finished"].append(threading.get_ident())

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def test_one_thread_serves_requests_of_both_tenants_in_turn_without_mixing_them(
    committed, world, settings, threads_seen
):
    """A thread keeps its database connection from request to request, as under WSGI: the
    tenant of each request is its own, whatever the thread served before."""
    settings.WEB_THREADS = 1
    handler = SyncASGIHandler()
    callers = [world.alice, world.bob] * 5

    async def scenario() -> list[str]:
        slugs = []
        for admin in callers:
            answer = await call(
                handler, "GET", "/api/v1/tenant", host=admin.host, token=admin.api_key
            )
            assert answer.status == 200, answer.body
            slugs.append(answer.json()["slug"])
        # Bob's key on Alice's host, right after Alice's own request on the same thread.
        answer = await call(
            handler, "GET", "/api/v1/tenant", host=world.alice.host, token=world.bob.api_key
        )
        assert answer.status == 401
        return slugs

    assert run_loop(scenario()) == [admin.tenant.slug for admin in callers]
    assert len(set(threads_seen["started"])) == 1
    assert threads_seen["finished"] == threads_seen["started"]  # connections closed where used
    assert threads_seen["started"][0] != threading.get_ident()


def test_requests_beyond_the_threads_wait_for_one(committed, world, settings, threads_seen):
    settings.WEB_THREADS = 2
    handler = SyncASGIHandler()

    async def scenario() -> list[int]:
        answers = await asyncio.gather(
            *(
                call(handler, "GET", "/api/v1/tenant", host=world.alice.host, token=key)
                for key in [world.alice.api_key] * 8
            )
        )
        return [answer.status for answer in answers]

    assert run_loop(scenario()) == [200] * 8
    assert len(threads_seen["started"]) == 8
    assert len(set(threads_seen["started"])) <= 2


def test_a_sends_events_are_published_once_its_response_is_out(committed, world):
    """The caller's 202 never waits behind the frames of its own broadcast: the bus message goes
    out after the response. A marker published the moment the response is handed over must
    reach a subscriber before the send's message."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(bus_channel())
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
            on_sent=lambda: client.publish(bus_channel(), json.dumps({"marker": marker})),
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


def test_a_static_file_is_read_on_the_requests_thread(committed, world, threads_seen, recwarn):
    """Not on asgiref's process-wide thread (the WebSocket consumers' database calls run there),
    where Django reads a file's sync iterator, warning as it does."""
    path = settings.BASE_DIR / "dashboard" / "static" / "dashboard" / "dashboard.css"

    async def scenario() -> tuple[int, bytes]:
        answer = await call(
            SyncASGIHandler(), "GET", "/static/dashboard/dashboard.css", host=world.alice.host
        )
        return answer.status, answer.body

    assert run_loop(scenario()) == (200, path.read_bytes())
    assert not [w for w in recwarn if "synchronous iterators" in str(w.message)]


def test_a_requests_context_variables_stay_its_own_on_a_shared_thread():
    """asgiref's ``sync_to_async`` runs each call in a copy of the calling request's context
    (and hands changes back to it): what one request sets on its thread is seen by its own later
    calls, not by the next request that thread serves."""
    bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="unset")

    async def scenario() -> list[list[str]]:
        threads = RequestThreads(1)

        async def request(name: str) -> list[str]:
            async with threads.lease() as run:
                before = await run(bound.get)
                await run(bound.set, name)
                return [before, await run(bound.get)]

        # Each request is a task of its own, as the ASGI server runs them.
        return [await asyncio.create_task(request(name)) for name in ("first", "second")]

    assert run_loop(scenario()) == [["unset", "first"], ["unset", "second"]]


def test_django_and_asgiref_are_releases_this_was_checked_against():
    for distribution, supported in CHECKED_RELEASES.items():
        assert_release_in(distribution, supported, RECHECK)


def test_the_django_methods_copied_or_extended_are_what_this_was_written_for():
    assert_sources_unchanged(
        ASGIHandler,
        {
            "__init__": "cc44cd280172a639",
            "__call__": "f252eb4e47b97588",
            "handle": "2e2dae70240a12a6",
            "create_request": "f8c081a7f5ea4486",
            "send_response": "bdf00afcf4aea0c0",
        },
        RECHECK,
    )


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (ASGIHandler.read_body, ["self", "receive"]),
        (ASGIHandler.create_request, ["self", "scope", "body_file"]),
        (ASGIHandler.send_response, ["self", "response", "send"]),
        (ASGIHandler.listen_for_disconnect, ["self", "receive"]),
        (BaseHandler.load_middleware, ["self", "is_async"]),
        (BaseHandler.get_response, ["self", "request"]),
        (get_script_prefix, ["scope"]),
        (HttpResponse.close, ["self"]),
    ],
)
def test_what_the_handler_calls_keeps_its_signature(func, expected):
    assert parameters(func) == expected, (func.__qualname__, RECHECK)


def test_sync_to_async_still_takes_an_executor_and_chunk_size_is_a_size():
    assert {"thread_sensitive", "executor"} <= set(parameters(sync_to_async)), RECHECK
    assert isinstance(ASGIHandler.chunk_size, int), RECHECK
