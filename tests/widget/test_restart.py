"""Killing the server under an open page loses nothing: the widget reconnects with ``since`` and
then shows exactly the REST inbox, nothing missing and nothing twice."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.processes import free_port, running_web
from tests.widget.conftest import new_user
from tests.widget.test_inbox import bell, items


def test_a_killed_and_restarted_server_loses_nothing_and_duplicates_nothing(
    page, shop, make_tenant
):
    port = free_port()
    user = new_user()
    foot = page.locator("herald-widget .foot")
    with running_web(port=port) as first:
        site = make_tenant("wgt-restart", origins=[shop.origin], server=first)
        token = site.token(user)
        site.send(user, "Before 1")
        site.send(user, "Before 2")
        shop.tokens = [token]
        page.goto(shop.url(site.api_url))
        expect(foot).to_have_class(re.compile(r"\blive\b"))
        bell(page).click()
        expect(items(page)).to_have_count(2)

        first.process.kill()  # no goodbye: SIGKILL
        first.process.wait()
        expect(foot).not_to_have_class(re.compile(r"\blive\b"))

    # The API is down; the backend's in-process service writes to the database meanwhile.
    for number in range(3):
        response = site.api.post(
            "/api/v1/notifications",
            {"type": "widget.test", "recipients": [user], "message": f"While down {number}"},
        )
        assert response.status_code == 202, response.content

    with running_web(port=port) as second:
        site.server = second
        expect(foot).to_have_class(re.compile(r"\blive\b"), timeout=45_000)
        expect(items(page)).to_have_count(5)
        expect(bell(page)).to_have_accessible_name("Notifications, 5 unread")
        site.send(user, "After")
        expect(items(page)).to_have_count(6)

        shown = [int(i) for i in items(page).evaluate_all("els => els.map(e => e.dataset.id)")]
        inbox = [n["id"] for n in site.inbox(token)]
        assert shown == inbox  # the same set, newest first, each once
        messages = page.locator("herald-widget .item .m").all_inner_texts()
        assert messages == [
            "After",
            "While down 2",
            "While down 1",
            "While down 0",
            "Before 2",
            "Before 1",
        ]
