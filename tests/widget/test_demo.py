"""The development demo page: the widget live against the host's tenant, with a send button.
Served only with DEBUG on; otherwise every demo URL is a 404."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from notifications.models import Notification
from tests.support.browser import screenshot
from tests.support.personas import committed_tenant
from tests.support.processes import Server, http, running_web
from tests.widget.test_inbox import bell, items, settled
from widget.demo import DEMO_USER


@pytest.fixture(scope="module")
def dev_web(world, django_db_blocker) -> Iterator[Server]:
    """The web process in development mode (DEBUG on), as bin/run starts it."""
    with django_db_blocker.unblock(), running_web(DEBUG="true") as server:
        yield server


def test_the_demo_page_shows_a_sent_notification_live(page, committed, dev_web):
    tenant, _api = committed_tenant(committed, "wgt-demo", "Demo Inc.")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    url = f"http://wgt-demo.localhost:{dev_web.port}/widget/demo"
    response = page.goto(url)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    foot = page.locator("herald-widget .foot")
    expect(foot).to_have_class(re.compile(r"\blive\b"))
    expect(bell(page)).to_have_accessible_name("Notifications")

    page.get_by_role("button", name="Send a notification").click()
    expect(page.locator("#send-status")).to_have_text("Sent. Watch the bell.")
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    bell(page).click()
    expect(items(page)).to_have_count(1)
    with schema_context(tenant.schema_name):
        assert Notification.objects.filter(recipient__external_id=DEMO_USER).count() == 1

    page.get_by_role("button", name=re.compile(r"Send 25")).click()
    expect(bell(page)).to_have_accessible_name("Notifications, 26 unread")
    expect(page.locator("#event-log")).to_contain_text("herald:notification")
    screenshot(page, "widget-demo", full_page=False)

    page.get_by_label("Theme").select_option("dark")  # mounts again, in dark mode
    page.get_by_label("Language").select_option("de")
    expect(foot).to_have_class(re.compile(r"\blive\b"))
    german_bell = page.get_by_role("button", name="Benachrichtigungen, 26 ungelesen")
    german_bell.click()
    expect(items(page)).to_have_count(20)  # the first page
    screenshot(settled(page), "widget-dark", full_page=False)
    page.get_by_label("Language").select_option("ar")  # every shipped language, RTL included
    expect(page.locator("herald-widget .root")).to_have_attribute("dir", "rtl")
    assert errors == []


def test_the_demo_page_refuses_bad_counts_and_forged_posts(committed, dev_web):
    committed_tenant(committed, "wgt-demo-bad", "Demo Inc.")
    send = f"{dev_web.url}/widget/demo/send"
    host = {"Host": f"wgt-demo-bad.localhost:{dev_web.port}", "Accept": "application/json"}
    assert http("POST", send, headers=host, form={"count": "1"}).status == 403  # no CSRF token
    page_response = http("GET", f"{dev_web.url}/widget/demo", headers=host)
    cookie = page_response.headers["set-cookie"].split(";")[0]
    with_csrf = {**host, "Cookie": cookie, "X-CSRFToken": cookie.split("=", 1)[1]}
    for count in ("0", "26", "x", "-1"):
        refused = http("POST", send, headers=with_csrf, form={"count": count})
        assert refused.status == 400, count
        assert "1 to 25" in refused.body["error"]
    sent = http("POST", send, headers=with_csrf, form={"count": "2"})
    assert (sent.status, sent.body) == (202, {"sent": 2})
    assert http("GET", f"{dev_web.url}/widget/demo", headers={"Host": "localhost"}).status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/widget/demo"), ("POST", "/widget/demo/token"), ("POST", "/widget/demo/send")],
)
def test_with_debug_off_every_demo_url_is_404(web, world, method, path):
    host = {"Host": world.alice.host}
    response = http(method, f"{web.url}{path}", headers=host, body={} if method == "POST" else None)
    assert response.status == 404
