"""Isolation and safety: tenant content stays text, only http(s) links are clickable, the page's
strict CSP is never violated, host and widget styles do not leak into each other, and everything
works from the keyboard."""

from __future__ import annotations

import re

from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from notifications.models import Notification
from tests.support.processes import wait_until
from tests.widget.conftest import new_user
from tests.widget.test_inbox import bell, items, open_live

PAYLOAD_TITLE = "<img src=x onerror=\"window.__xss = 'title'\">"
PAYLOAD_MESSAGE = "<script>window.__xss = 'message'</script><b>bold?</b>"


def _collect_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_xss_payloads_in_title_message_and_url_stay_inert(page, shop, make_tenant):
    site = make_tenant("wgt-xss", origins=[shop.origin])
    user = new_user()
    site.send(user, PAYLOAD_MESSAGE, title=PAYLOAD_TITLE, url="https://example.com/ok")
    # The API accepts only http(s) URLs; a row written around it must still not become a link.
    with schema_context(site.tenant.schema_name):
        Notification.objects.filter(recipient__external_id=user).update(
            url="javascript:window.__xss='url'"
        )
    open_live(page, shop, site, user)
    bell(page).click()
    # Live over the WebSocket too, through the same rendering.
    site.send(user, PAYLOAD_MESSAGE, title=PAYLOAD_TITLE + " live", url="https://example.com/ok")
    expect(items(page)).to_have_count(2)

    stored = items(page).nth(1)
    expect(stored).to_contain_text(PAYLOAD_TITLE)  # shown literally, as text
    expect(stored).to_contain_text(PAYLOAD_MESSAGE)
    assert stored.evaluate("e => e.tagName") == "BUTTON"  # javascript: is not a link
    assert stored.evaluate("e => e.getAttribute('href')") is None
    stored.click()
    live = items(page).nth(0)
    expect(live).to_contain_text(PAYLOAD_TITLE + " live")
    assert live.evaluate("e => e.tagName") == "A"
    assert live.get_attribute("href") == "https://example.com/ok"

    shadow_markup = page.locator("herald-widget").evaluate("h => h.shadowRoot.innerHTML")
    for markup in ("<img", "<script", "<b>"):
        assert markup not in shadow_markup
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__violations") == []


def test_under_a_strict_csp_with_hostile_css_it_works_and_leaks_nothing(page, shop, make_tenant):
    site = make_tenant("wgt-csp", origins=[shop.origin])
    user = new_user()
    site.send(user, "Styled by the widget, not the page", title="Isolated")
    shop.hostile_css = True
    errors = _collect_errors(page)
    open_live(page, shop, site, user)

    box = bell(page).bounding_box()
    assert (round(box["width"]), round(box["height"])) == (40, 40)  # not the page's 300x12 buttons
    expect(page.locator("herald-widget .badge")).to_be_visible()
    bell(page).click()
    expect(items(page)).to_have_count(1)
    item = items(page).first
    style = item.evaluate(
        "e => { const s = getComputedStyle(e); return [s.fontSize, s.fontFamily, s.letterSpacing] }"
    )
    assert style[0] == "14px"
    assert not style[1].startswith("serif")
    assert style[2] == "normal"
    # The widget added no style to the page: the host's own elements look as the host said.
    assert page.evaluate("document.styleSheets.length") == 1
    assert page.evaluate("document.adoptedStyleSheets.length") == 0
    host_button = page.locator("#host-button").evaluate("e => getComputedStyle(e).width")
    assert host_button == "300px"
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_keyboard_only(page, shop, make_tenant):
    site = make_tenant("wgt-keys", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    site.send(user, "First", title="One")
    site.send(user, "Second", title="Two")
    open_live(page, shop, site, user)

    page.keyboard.press("Tab")  # the page's first link
    page.keyboard.press("Tab")  # its second link
    page.keyboard.press("Tab")  # the bell
    expect(bell(page)).to_be_focused()
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile("Notifications"))
    expect(dialog).to_be_visible()
    expect(dialog).to_be_focused()
    expect(items(page)).to_have_count(2)

    page.keyboard.press("ArrowDown")
    expect(items(page).nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(items(page).nth(1)).to_be_focused()
    page.keyboard.press("Enter")  # marks "One" read (it has no url: the panel stays)
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    expect(items(page).nth(1)).to_have_class(re.compile(r"\bread\b"))

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(bell(page)).to_be_focused()
    expect(bell(page)).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Space")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Close")).to_be_focused()
    for _item in range(3):  # past both notifications, to the footer
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Mark all as read")).to_be_focused()
    page.keyboard.press("Enter")
    expect(bell(page)).to_have_accessible_name("Notifications")
    expect(dialog).to_be_focused()  # not lost with the button that is now disabled
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Close")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(bell(page)).to_be_focused()
    wait_until(lambda: site.unread(token) == 0, timeout=5, what="the API to count all read")
    assert [n["is_read"] for n in site.inbox(token)] == [True, True]


def test_a_click_outside_closes_the_panel_without_stealing_focus(page, shop, make_tenant):
    site = make_tenant("wgt-outside", origins=[shop.origin])
    open_live(page, shop, site, new_user())
    bell(page).click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.locator("#host-text").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(bell(page)).not_to_be_focused()
