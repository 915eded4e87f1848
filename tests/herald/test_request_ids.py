"""``X-Request-ID`` on every answer, whoever gives it, and the lines a request logs; in this
process (the real servers are in test_logging.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from io import StringIO

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from herald import logs
from herald.handlers import SyncASGIHandler
from tests.support.aio import run_loop
from tests.support.api import Caller
from tests.support.asgi import call as call_asgi

HEX_ID = 32


@pytest.fixture
def json_lines() -> Iterator[StringIO]:
    """What the root logger writes meanwhile, through the JSON formatter."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_refusals_and_preflights_echo_the_request_id(db, world):
    alice = Caller(host=world.alice.host, token=world.alice.api_key)
    answered = APIClient().options(
        "/api/v1/tenant",
        HTTP_HOST=world.alice.host,
        HTTP_ORIGIN="https://elsewhere.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_X_REQUEST_ID="pre-1",
    )
    assert answered.status_code == 403  # an origin the tenant did not allow
    assert answered["X-Request-ID"] == "pre-1"

    with time_machine.travel(timezone.now().replace(microsecond=250_000), tick=False):
        attempts = [
            Caller(host=world.alice.host).post(
                "/api/v1/auth/token",
                {"email": world.alice.email, "password": "wrong"},
                HTTP_X_REQUEST_ID=f"login-{n}",
            )
            for n in range(11)
        ]
    assert [a.status_code for a in attempts] == [401] * 10 + [429]
    assert [a["X-Request-ID"] for a in attempts] == [f"login-{n}" for n in range(11)]

    assert alice.get("/api/v1/tenant", HTTP_X_REQUEST_ID="fine")["X-Request-ID"] == "fine"


@pytest.mark.parametrize(
    "given", ["abc\r\nSet-Cookie: session=x", "abc\ndef", "x" * 129, "tab\there", "caf\u00e9"]
)
def test_an_id_a_proxy_passed_on_unchecked_is_replaced(db, world, given):
    answered = Caller(host=world.alice.host, token=world.alice.api_key).get(
        "/api/v1/tenant", HTTP_X_REQUEST_ID=given
    )
    assert answered.status_code == 200
    assert len(answered["X-Request-ID"]) == HEX_ID
    assert "Set-Cookie" not in answered


def test_the_handlers_own_refusal_echoes_the_id_and_logs_its_line(world, json_lines):
    """A query string that is not UTF-8 is refused before the middleware runs."""
    answer = run_loop(
        call_asgi(
            SyncASGIHandler(),
            "GET",
            "/api/v1/notifications",
            host=world.alice.host,
            query_string=b"recipient=\xff",
            headers=[(b"x-request-id", b"bad-query")],
        )
    )
    assert answer.status == 400
    assert answer.headers["x-request-id"] == "bad-query"
    [line] = [line for line in parsed(json_lines) if line["logger"] == "herald.request"]
    assert line["request_id"] == "bad-query"
    assert line["status"] == 400
    assert line["path"] == "/api/v1/notifications"


def test_lines_logged_inside_a_request_name_it_and_its_tenant(db, world, json_lines):
    alice = Caller(host=world.alice.host, token=world.alice.api_key)
    alice.get("/api/v1/tenant", HTTP_X_REQUEST_ID="inner-1")
    alice.get("/api/v1/tenant")  # the next request binds nothing of the first
    first, second = [line for line in parsed(json_lines) if line["logger"] == "herald.request"]
    assert (first["request_id"], first["tenant"]) == ("inner-1", world.tenant_a.slug)
    assert second["request_id"] != "inner-1"
    assert logs.current() == {}  # and nothing is left bound after them


def test_a_line_is_one_json_object_whatever_it_holds(json_lines):
    logger = logging.getLogger("herald.test")

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    looped: dict = {}
    looped["self"] = looped
    with logs.bound(request_id="r-1", tenant="acme"):
        try:
            raise ValueError("multi\nline")
        except ValueError:
            logger.exception(
                "failed:\n%s", "second line", extra={"thing": Opaque(), "n": 3, "looped": looped}
            )
    logger.warning("outside", extra={"pairs": {(1, 2): "tuple key"}})

    text = json_lines.getvalue()
    assert len(text.splitlines()) == 2
    inside, outside = parsed(json_lines)
    assert inside["message"] == "failed:\nsecond line"
    assert inside["level"] == "ERROR"
    assert (inside["request_id"], inside["tenant"]) == ("r-1", "acme")
    assert inside["thing"] == "<opaque>"
    assert inside["n"] == 3
    assert inside["looped"].startswith("{'self'")
    assert "Traceback (most recent call last)" in inside["exception"]
    assert inside["exception"].rstrip().endswith("ValueError: multi\nline")
    assert "request_id" not in outside
    assert outside["pairs"] == "{(1, 2): 'tuple key'}"


def test_work_shared_by_every_connection_names_none_of_them():
    """The real-time dispatcher and the like start from whichever connection comes first, and
    then serve them all: what that one bound is not theirs."""

    async def scenario() -> tuple[dict, dict]:
        async def seen() -> dict:
            return dict(logs.current())

        with logs.bound(request_id="first-connection", tenant="acme"):
            inherited = await asyncio.get_running_loop().create_task(seen())
            shared = await logs.start_unbound(seen())
        return inherited, shared

    inherited, shared = run_loop(scenario())
    assert inherited == {"request_id": "first-connection", "tenant": "acme"}  # a plain task's
    assert shared == {}
