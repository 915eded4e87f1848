"""The widget through a Redis outage on the server: an open socket catches up in place, a page
opened during the outage polls until the socket works, and a socket closed with 4503 comes back
with ``since``. Nothing is missed, nothing is shown twice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from tests.support.processes import Server, free_port, running_web, throwaway_redis
from tests.widget.conftest import new_user
from tests.widget.test_inbox import bell, items

WS_URL = re.compile(r".*/ws/v1/notifications.*")


class OwnRedis:
    """The web process on a throwaway Redis of its own, which the test stops and starts."""

    def __init__(self, stack: ExitStack) -> None:
        self.port = free_port()
        self.redis = ExitStack()
        stack.callback(self.redis.close)
        self.web: Server = stack.enter_context(
            running_web(REDIS_URL=f"redis://127.0.0.1:{self.port}/0")
        )

    def up(self) -> None:
        self.redis.enter_context(throwaway_redis(self.port))

    def down(self) -> None:
        self.redis.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    with ExitStack() as stack:
        yield OwnRedis(stack)


def shown_ids(page) -> list[int]:
    return [int(i) for i in items(page).evaluate_all("els => els.map(e => e.dataset.id)")]


def test_an_open_widget_shows_what_was_sent_during_a_redis_outage(
    page, shop, make_tenant, own_redis
):
    own_redis.up()
    site = make_tenant("wgt-redis", origins=[shop.origin], server=own_redis.web)
    user = new_user()
    token = site.token(user)
    site.send(user, "Before")
    shop.tokens = [token]
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(shop.url(site.api_url))
    foot = page.locator("herald-widget .foot")
    expect(foot).to_have_class(re.compile(r"\blive\b"))
    bell(page).click()
    expect(items(page)).to_have_count(1)

    own_redis.down()
    for n in range(3):
        site.send(user, f"During {n}")
    own_redis.up()

    expect(items(page)).to_have_count(4)
    expect(bell(page)).to_have_accessible_name("Notifications, 4 unread")
    site.send(user, "After")
    expect(items(page)).to_have_count(5)
    assert shown_ids(page) == [n["id"] for n in site.inbox(token)]  # each once, newest first
    assert len(sockets) == 1  # caught up on the same socket: no reconnect
    assert re.search(r"\blive\b", foot.get_attribute("class"))


def test_a_page_opened_during_the_outage_polls_then_goes_live(page, shop, make_tenant, own_redis):
    own_redis.up()
    site = make_tenant("wgt-redis-new", origins=[shop.origin], server=own_redis.web)
    user = new_user()
    token = site.token(user)
    site.send(user, "Before")
    own_redis.down()

    codes = []  # what the server closed the sockets with

    def route(ws):
        server = ws.connect_to_server()

        def closed(code, reason):
            codes.append(code)
            ws.close(code=code, reason=reason)

        server.on_close(closed)

    page.route_web_socket(WS_URL, route)
    shop.tokens = [token]
    page.goto(shop.url(site.api_url, poll=1))
    foot = page.locator("herald-widget .foot")
    # Sockets are refused with 4503 (not held open); the REST API answers, so the widget polls.
    expect(foot).to_have_class(re.compile(r"\bpolling\b"), timeout=20_000)
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    site.send(user, "During")
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread", timeout=5_000)
    assert len(codes) >= 3
    assert set(codes) == {4503}  # refused at once with the documented code, not hung

    own_redis.up()
    expect(foot).to_have_class(re.compile(r"\blive\b"), timeout=15_000)
    site.send(user, "After")
    bell(page).click()
    expect(items(page)).to_have_count(3)
    assert shown_ids(page) == [n["id"] for n in site.inbox(token)]


def test_a_live_socket_closed_with_4503_reconnects_with_since(page, shop, make_tenant):
    site = make_tenant("wgt-4503", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    first = site.send(user, "Before")
    routes, urls = [], []

    def route(ws):
        urls.append(ws.url)
        routes.append(ws)
        ws.connect_to_server()

    page.route_web_socket(WS_URL, route)
    shop.tokens = [token]
    page.goto(shop.url(site.api_url))
    foot = page.locator("herald-widget .foot")
    expect(foot).to_have_class(re.compile(r"\blive\b"))
    bell(page).click()
    expect(items(page)).to_have_count(1)
    assert first

    routes[0].close(code=4503, reason="live delivery unavailable")
    site.send(user, "Missed")
    expect(items(page)).to_have_count(2)
    site.send(user, "Live again")
    expect(items(page)).to_have_count(3)
    assert len(urls) == 2
    assert f"since={shown_ids(page)[-1]}" in urls[1]
    assert shown_ids(page) == [n["id"] for n in site.inbox(token)]
