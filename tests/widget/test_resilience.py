"""When things go wrong: WebSockets blocked (polling), tokens expired or refused (getToken again),
and a page on an origin the tenant did not allow (CORS refuses the data, the socket closes 4403)."""

from __future__ import annotations

import re

from django.test import override_settings
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from notifications.models import EndUser
from tenants.tokens import end_user_token_issue
from tests.widget.conftest import new_user
from tests.widget.test_inbox import bell, events, items

WS_URL = re.compile(r".*/ws/v1/notifications.*")


def test_blocked_websockets_fall_back_to_polling_and_return_when_allowed(page, shop, make_tenant):
    site = make_tenant("wgt-poll", origins=[shop.origin])
    user = new_user()
    site.send(user, "Before", title="Already there")
    blocked = {"on": True, "attempts": 0}

    def route(ws):
        blocked["attempts"] += 1
        if blocked["on"]:
            ws.close()  # as a proxy that refuses WebSockets would
        else:
            ws.connect_to_server()

    page.route_web_socket(WS_URL, route)
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url, poll=1))
    foot = page.locator("herald-widget .foot")
    expect(foot).to_have_class(re.compile(r"\bpolling\b"), timeout=15_000)
    expect(foot).to_contain_text("Checking every 1 s")
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")

    site.send(user, "Polled", title="Arrived by polling")
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread", timeout=5_000)
    bell(page).click()
    expect(items(page)).to_have_count(2)
    expect(items(page).first).to_contain_text("Arrived by polling")
    assert blocked["attempts"] >= 3

    # While polling it keeps trying the socket; once it gets through, it is live again.
    blocked["on"] = False
    expect(foot).to_have_class(re.compile(r"\blive\b"), timeout=15_000)
    site.send(user, "Live again", title="Over the socket")
    expect(items(page)).to_have_count(3)
    ids = items(page).evaluate_all("els => els.map(e => e.dataset.id)")
    assert len(ids) == len(set(ids))


def _expired_token(site, user: str) -> str:
    site.token(user)  # creates the user
    with schema_context(site.tenant.schema_name):
        pk = EndUser.objects.get(external_id=user).pk
    with override_settings(END_USER_TOKEN_TTL_SECONDS=-60):
        return end_user_token_issue(tenant=site.tenant, end_user_pk=pk, external_id=user).token


def test_an_expired_token_is_replaced_by_calling_get_token_again(page, shop, make_tenant):
    site = make_tenant("wgt-expired", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hello")
    shop.tokens = [_expired_token(site, user), site.token(user)]
    page.goto(shop.url(site.api_url))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    assert shop.token_requests == 2


def test_a_refused_token_gets_401_then_a_new_token_and_a_retry(page, shop, make_tenant):
    site = make_tenant("wgt-refused", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hello")
    # Unreadable as a JWT, so only the server can say no: REST answers 401, the socket 4401.
    shop.tokens = ["not-a-token", site.token(user)]
    page.goto(shop.url(site.api_url))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    bell(page).click()
    expect(items(page)).to_have_count(1)
    assert shop.token_requests == 2


def test_a_token_about_to_expire_is_renewed_before_use(page, shop, make_tenant):
    site = make_tenant("wgt-renew", origins=[shop.origin])
    user = new_user()
    site.token(user)
    with schema_context(site.tenant.schema_name):
        pk = EndUser.objects.get(external_id=user).pk
    with override_settings(END_USER_TOKEN_TTL_SECONDS=15):  # long enough to connect with
        short = end_user_token_issue(tenant=site.tenant, end_user_pk=pk, external_id=user).token
    shop.tokens = [short, site.token(user)]
    page.clock.install()
    page.goto(shop.url(site.api_url))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
    assert shop.token_requests == 1
    page.clock.fast_forward(8_000)  # the page's clock: the token now expires within 10 s
    bell(page).click()
    expect(page.get_by_text("You're all caught up")).to_be_visible()
    assert shop.token_requests == 2


def test_a_page_on_an_origin_the_tenant_did_not_allow_gets_nothing(page, shop, make_tenant):
    site = make_tenant("wgt-origin", origins=[shop.origin])
    user = new_user()
    site.send(user, "Private")
    token = site.token(user)
    shop.tokens = [token]
    stranger = f"http://127.0.0.1:{shop.port}"  # the same server, an origin not on the list
    page.goto(shop.url(site.api_url, origin=stranger))
    foot = page.locator("herald-widget .foot")
    expect(foot).to_have_class(re.compile(r"\bforbidden\b"))
    expect(bell(page)).to_have_accessible_name("Notifications")  # no count leaked
    assert any(e.get("code") == "forbidden" for e in events(page, "error"))

    outcome = page.evaluate(
        """async ([api, token]) => {
            let rest;
            try {
              const r = await fetch(`${api}/api/v1/me/notifications/unread_count`,
                                    {headers: {Authorization: `Bearer ${token}`}});
              rest = `status ${r.status}`;
            } catch (error) { rest = error.name; }
            const ws = new WebSocket(`${api.replace("http", "ws")}/ws/v1/notifications`,
                                     ["bearer", token]);
            const code = await new Promise((done) => { ws.onclose = (e) => done(e.code); });
            return {rest, code};
        }""",
        [site.api_url, token],
    )
    assert outcome == {"rest": "TypeError", "code": 4403}

    # The same calls from the allowed origin succeed.
    page.goto(shop.url(site.api_url))
    expect(foot).to_have_class(re.compile(r"\blive\b"))
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
