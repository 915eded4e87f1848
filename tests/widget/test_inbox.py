"""The widget on a customer's page: the badge, live arrivals, reading, paging, and what the API
then says. Real browser, real web process, real WebSocket."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from notifications.models import Notification
from tests.support.browser import screenshot
from tests.support.processes import wait_until
from tests.widget.conftest import new_user


def bell(page: Page):
    return page.get_by_role("button", name=re.compile(r"^Notifications"))


def items(page: Page):
    return page.locator("herald-widget .item")


def events(page: Page, kind: str) -> list[dict]:
    return [e["detail"] for e in page.evaluate("window.__events") if e["type"] == kind]


def settled(page: Page) -> Page:
    """Wait until the widget's animations (the panel's fade-in) have finished: for screenshots."""
    page.locator("herald-widget").evaluate(
        "h => Promise.all(h.shadowRoot.getAnimations().map((a) => a.finished))"
    )
    return page


def open_live(page: Page, shop, site, user: str, **params) -> None:
    """Load the shop's page for ``user`` and wait until the widget's socket is live."""
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url, **params))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))


def test_the_badge_is_right_on_load_and_the_panel_lists_newest_first(page, shop, make_tenant):
    site = make_tenant("wgt-load", origins=[shop.origin])
    user = new_user()
    for number in range(1, 4):
        site.send(user, f"Message {number}", title=f"Title {number}")
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url))
    expect(bell(page)).to_have_accessible_name("Notifications, 3 unread")
    expect(page.locator("herald-widget .badge")).to_have_text("3")
    screenshot(page, "widget-closed", full_page=False)

    bell(page).click()
    dialog = page.get_by_role("dialog", name=re.compile("Notifications"))
    expect(dialog).to_be_visible()
    expect(items(page)).to_have_count(3)
    expect(items(page).nth(0)).to_contain_text("Title 3")
    expect(items(page).nth(2)).to_contain_text("Title 1")
    expect(items(page).nth(0).locator("time")).to_have_text("now")
    expect(bell(page)).to_have_attribute("aria-expanded", "true")
    assert page.evaluate("window.__violations") == []


def test_a_sent_notification_appears_within_a_second_without_reload(page, shop, make_tenant):
    site = make_tenant("wgt-live", origins=[shop.origin])
    user = new_user()
    open_live(page, shop, site, user)
    bell(page).click()
    expect(page.get_by_text("You're all caught up")).to_be_visible()

    started = time.monotonic()
    site.send(user, "Your export is ready.", title="Export finished")
    expect(items(page)).to_have_count(1, timeout=5000)
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread", timeout=5000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the notification took {elapsed:.2f}s to appear"
    expect(items(page).first).to_contain_text("Export finished")
    expect(items(page).first).to_contain_text("Your export is ready.")
    # Announced politely to screen readers.
    expect(page.locator("herald-widget [aria-live=polite]")).to_have_text(
        "New notification: Export finished"
    )
    assert [n["notification"]["message"] for n in events(page, "notification")] == [
        "Your export is ready."
    ]


def test_marking_one_read_updates_badge_and_api_and_follows_its_url(page, shop, make_tenant):
    site = make_tenant("wgt-one", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    target = f"{shop.origin}/next"
    site.send(user, "Open me", title="Has a link", url=target)
    site.send(user, "Stay unread", title="Other")
    open_live(page, shop, site, user)
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread")
    bell(page).click()
    link = page.get_by_role("link", name=re.compile("Has a link"))
    expect(link).to_have_attribute("href", target)

    link.click()
    expect(page).to_have_url(target)
    expect(page.get_by_role("heading", name="Followed the notification")).to_be_visible()
    # The PATCH went out with keepalive, so it survives the navigation.
    wait_until(lambda: site.unread(token) == 1, timeout=5, what="the API to count it read")
    inbox = {n["message"]: n["is_read"] for n in site.inbox(token)}
    assert inbox == {"Open me": True, "Stay unread": False}

    page.go_back()
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")


def test_marking_one_without_a_url_stays_in_the_panel(page, shop, make_tenant):
    site = make_tenant("wgt-nourl", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    site.send(user, "No link here", title="Plain")
    open_live(page, shop, site, user)
    bell(page).click()
    item = page.get_by_role("button", name=re.compile("Plain"))
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    item.click()
    expect(item).to_have_class(re.compile(r"\bread\b"))
    expect(bell(page)).to_have_accessible_name("Notifications")
    expect(page.get_by_role("dialog")).to_be_visible()
    wait_until(lambda: site.unread(token) == 0, timeout=5, what="the API to count it read")


def test_mark_all_as_read_updates_the_badge_the_api_and_other_tabs(page, shop, make_tenant):
    site = make_tenant("wgt-all", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    for number in range(4):
        site.send(user, f"Item {number}")
    open_live(page, shop, site, user)
    other_tab = page.context.new_page()
    other_tab.goto(shop.url(site.api_url))
    expect(bell(other_tab)).to_have_accessible_name("Notifications, 4 unread")

    expect(bell(page)).to_have_accessible_name("Notifications, 4 unread")
    bell(page).click()
    expect(items(page)).to_have_count(4)
    page.get_by_role("button", name="Mark all as read").click()
    expect(bell(page)).to_have_accessible_name("Notifications")
    expect(page.locator("herald-widget .item.unread")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark all as read")).to_be_disabled()
    wait_until(lambda: site.unread(token) == 0, timeout=5, what="the API to count them read")
    assert all(n["is_read"] for n in site.inbox(token))
    # The other tab hears it from the server (and from the BroadcastChannel).
    expect(bell(other_tab)).to_have_accessible_name("Notifications")


def test_read_elsewhere_updates_the_open_widget(page, shop, make_tenant):
    site = make_tenant("wgt-else", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    site.send(user, "One")
    site.send(user, "Two")
    first = next(n["id"] for n in site.inbox(token) if n["message"] == "One")
    open_live(page, shop, site, user)
    bell(page).click()
    expect(page.locator("herald-widget .item.unread")).to_have_count(2)
    site.call("PATCH", f"/api/v1/me/notifications/{first}", {"is_read": True}, token=token)
    expect(page.locator("herald-widget .item.unread")).to_have_count(1)
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")


def test_infinite_scroll_pages_through_the_whole_inbox_without_duplicates(page, shop, make_tenant):
    site = make_tenant("wgt-scroll", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    for number in range(23):
        site.send(user, f"Number {number:02d}")
    open_live(page, shop, site, user, size=5)
    bell(page).click()
    expect(items(page)).to_have_count(5)
    for expected in (10, 15, 20, 23):
        items(page).last.scroll_into_view_if_needed()
        expect(items(page)).to_have_count(expected)
    shown = [int(i) for i in items(page).evaluate_all("els => els.map(e => e.dataset.id)")]
    assert shown == [n["id"] for n in site.inbox(token)]  # all, newest first, once each


SAMPLES = [
    ("New comment", "Ana replied to your review of “Quarterly plan”.", 2, False),
    ("Order shipped", "Order #10482 is on its way. Expected Thursday.", 35, False),
    ("Build passed", "main is green again: 214 tests in 3 min 12 s.", 3 * 60, False),
    ("", "Your weekly report is ready to download.", 26 * 60, True),
    (
        "You were mentioned",
        "@you could you check the launch checklist before Friday?",
        3 * 1440,
        True,
    ),
    ("Invoice paid", "Globex paid invoice #2024-117 (€1,240.00).", 9 * 1440, True),
]


def test_the_open_panel_with_a_realistic_inbox(page, shop, make_tenant):
    site = make_tenant("wgt-shot", origins=[shop.origin])
    user = new_user()
    for title, message, _minutes, _read in reversed(SAMPLES):
        site.send(user, message, title=title, url="https://example.com/app")
    now = timezone.now()
    with schema_context(site.tenant.schema_name):
        rows = Notification.objects.filter(recipient__external_id=user).order_by("-id")
        for row, (_title, _message, minutes, read) in zip(rows, SAMPLES, strict=True):
            when = now - timedelta(minutes=minutes)
            row.created_at = when
            row.read_at = when if read else None
            row.save(update_fields=["created_at", "read_at"])
    open_live(page, shop, site, user)
    expect(bell(page)).to_have_accessible_name("Notifications, 3 unread")
    bell(page).click()
    expect(items(page)).to_have_count(6)
    expect(page.locator("herald-widget time")).to_have_text(
        ["2 minutes ago", "35 minutes ago", "3 hours ago", "yesterday", "3 days ago", "last week"]
    )
    screenshot(settled(page), "widget-open", full_page=False)


def test_the_empty_state(page, shop, make_tenant):
    site = make_tenant("wgt-empty", origins=[shop.origin])
    open_live(page, shop, site, new_user())
    expect(bell(page)).to_have_accessible_name("Notifications")
    expect(page.locator("herald-widget .badge")).to_be_hidden()
    bell(page).click()
    expect(page.get_by_text("You're all caught up")).to_be_visible()
    expect(page.get_by_role("button", name="Mark all as read")).to_be_disabled()
    screenshot(settled(page), "widget-empty", full_page=False)


def test_german_strings_and_relative_times(page, shop, make_tenant):
    site = make_tenant("wgt-de", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hallo")
    open_live(page, shop, site, user, locale="de")
    german_bell = page.get_by_role("button", name="Benachrichtigungen, 1 ungelesen")
    expect(german_bell).to_be_visible()
    german_bell.click()
    expect(page.get_by_role("dialog", name=re.compile("Benachrichtigungen"))).to_be_visible()
    expect(page.get_by_role("button", name="Alle als gelesen markieren")).to_be_enabled()
    expect(items(page).first.locator("time")).to_have_text("jetzt")
    expect(page.locator("herald-widget .foot")).to_contain_text("Live")


def test_unmount_removes_the_widget_and_closes_its_socket(page, shop, make_tenant):
    site = make_tenant("wgt-unmount", origins=[shop.origin])
    open_live(page, shop, site, new_user())
    assert page.evaluate("Herald.unmount(document.getElementById('bell'))") is True
    expect(page.locator("herald-widget")).to_have_count(0)
    assert page.evaluate("Herald.unmount(document.getElementById('bell'))") is False
    # Mounting again works (a fresh shadow root on a fresh host element).
    page.evaluate(
        """() => Herald.mount('#bell', {apiUrl: new URLSearchParams(location.search).get('api'),
            getToken: () => fetch('/token').then(r => r.json()).then(b => b.token)})"""
    )
    expect(page.locator("herald-widget")).to_have_count(1)
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
