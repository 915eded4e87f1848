"""Browser notifications: the service worker a customer serves from their origin (herald-sw.js)
and the widget's "Enable browser notifications" control, in headless Chromium against the real
web process.

What a headless browser cannot test, and so is not tested here:
- Delivery through a real push service. Chromium's ``pushManager.subscribe`` registers with
  Google's push service (FCM), which a closed network cannot reach; one test replaces only
  ``PushManager.prototype.subscribe``/``getSubscription`` so that the subscription names a local
  push service, and everything from the widget's button to the decrypted payload is real. The
  push event itself is then delivered to the service worker through the DevTools protocol
  (``ServiceWorker.deliverPushMessage``), as Chromium would on a message from its push service.
- A click on a notification by the operating system, and the window it focuses or opens: there
  is no notification centre to click. The worker's ``notificationclick`` handler is driven by a
  synthetic event inside the worker, which covers what it records and tells the page; focusing
  and opening windows needs a user gesture a synthetic event does not carry.
- The browser's own permission prompt: permissions are set through Playwright and the DevTools
  protocol.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot
from tests.support.processes import Server, http, running_web, running_worker, wait_until
from tests.support.push_service import Browser, push_service
from tests.widget.conftest import new_user


@pytest.fixture(scope="module")
def browser(browser: Any) -> Iterator[Any]:
    """A Chromium of this module's own, from the session's Playwright. After some pages of
    earlier tests (the right-to-left widget's, in the whole suite's order), the session's
    browser showed a service worker's first push and none after it; a fresh one does not."""
    own = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield own
    finally:
        own.close()


ALLOWED = "127.0.0.2/32"  # the local push service's address, as WEBHOOK_ALLOWED_CIDRS
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE

ENABLE = "Enable browser notifications"


def bell(page: Page):
    return page.get_by_role("button", name=re.compile(r"^Notifications"))


def events(page: Page, kind: str) -> list[dict]:
    return [e["detail"] for e in page.evaluate("window.__events") if e["type"] == kind]


def served_copy(site) -> str:
    """The worker as a customer deploys it: a copy of what Herald serves."""
    response = http("GET", f"{site.server.url}/widget/v1/herald-sw.js", headers={"Host": site.host})
    assert response.status == 200
    return response.body


def shot(page: Page, name: str) -> None:
    """A screenshot once the panel's fade-in has finished."""
    page.locator("herald-widget").evaluate(
        "h => Promise.all(h.shadowRoot.getAnimations().map((a) => a.finished))"
    )
    screenshot(page, name, full_page=False)


def one_line_import(site) -> str:
    return f'importScripts("{site.api_url}/widget/v1/herald-sw.js");\n'


def open_with_worker(page: Page, shop, site, user: str, **params: Any) -> None:
    """Load the shop's page, whose app.js registers /herald-sw.js, and wait until the worker is
    active and the widget live."""
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url, sw=1, **params))
    page.wait_for_function("() => window.__handle || window.__swError")
    assert page.evaluate("window.__swError || null") is None
    page.wait_for_function(
        "() => navigator.serviceWorker.getRegistration().then((r) => !!(r && r.active))",
        polling=100,
    )
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))


def registration_id(page: Page, cdp, scope: str) -> str:
    """The DevTools protocol's id for the registration of ``scope`` (after ServiceWorker.enable)."""
    found: dict[str, str] = {}
    seen_all: list[Any] = []

    def seen(event: dict[str, Any]) -> None:
        seen_all.append(event)
        for registration in event["registrations"]:
            if registration["scopeURL"] == scope and not registration.get("isDeleted"):
                found["id"] = registration["registrationId"]

    cdp.on("ServiceWorker.workerRegistrationUpdated", seen)
    cdp.send("ServiceWorker.enable")
    # Playwright's sync API delivers events while it waits on the browser, not during a sleep.
    wait_until(
        lambda: page.wait_for_timeout(50) or "id" in found,
        timeout=5,
        what=f"the worker's registration id {seen_all}",
    )
    return found["id"]


# How long a pushed notification may take to show. A push may have to start the worker, which
# the browser stops when idle: on a loaded 2-core machine, within a full suite, that took longer
# than 15 s more than once (in the first push of a module, and of a later test). Only a failing
# test waits this long.
SHOWN_WITHIN = 45

SHOWN = """
() => navigator.serviceWorker.ready
  .then((registration) => registration.getNotifications())
  .then((list) => list.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data})))
"""


def deliver(page: Page, cdp, origin: str, worker: str, data: str, shown, what: str) -> None:
    """Hand ``data`` to the worker as a push message, as Chromium does on a message from its push
    service, and wait until ``shown()``. In whole-suite runs (never alone) a message handed over
    through DevTools was now and then not delivered to the worker at all, so it is handed over
    again every ``SHOWN_WITHIN / 4`` seconds, 4 times in all: a worker that never shows it still
    fails. Herald's payloads carry an id, which the worker makes the notification's tag, so a
    message delivered twice still shows once."""
    for _attempt in range(4):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": worker, "data": data},
        )
        with contextlib.suppress(TimeoutError):
            wait_until(shown, timeout=SHOWN_WITHIN / 4, what=what)
            return
    raise AssertionError(f"The worker never showed {what}: {page.evaluate(SHOWN)}")


def test_a_push_shows_a_notification_from_the_worker_served_on_the_page_origin(
    page, shop, make_tenant
):
    site = make_tenant("wgt-swshow", origins=[shop.origin])
    shop.service_worker = one_line_import(site)
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    cdp = page.context.new_cdp_session(page)
    open_with_worker(page, shop, site, new_user())
    worker = registration_id(page, cdp, f"{shop.origin}/")

    url = f"{shop.origin}/next"
    payload = {"title": "Export ready", "message": "3 files", "url": url, "id": 41}
    deliver(page, cdp, shop.origin, worker, json.dumps(payload), lambda: page.evaluate(SHOWN),
            "the notification")  # fmt: skip
    assert page.evaluate(SHOWN) == [
        {
            "title": "Export ready",
            "body": "3 files",
            "tag": "herald-41",
            "data": {"url": f"{shop.origin}/next", "id": 41},
        }
    ]

    # A payload that is not what Herald sends still shows something, and never a bad link.
    # One at a time: each push is shown before the next is delivered. These carry no id, so a
    # message handed over again (``deliver``) may show twice: the worker's rendering of each
    # payload is what is checked.
    bad = {
        "not json": "not json",
        "Only a message": json.dumps({"message": "Only a message", "url": "javascript:x"}),
    }
    for title, data in bad.items():
        deliver(page, cdp, shop.origin, worker, data,
                lambda title=title: title in {n["title"] for n in page.evaluate(SHOWN)},
                f"the notification {title!r}")  # fmt: skip
    shown = sorted(page.evaluate(SHOWN), key=lambda n: n["title"])
    shown = [n for i, n in enumerate(shown) if n not in shown[:i]]  # one of each, if twice
    assert shown[1:] == [
        {"title": "Only a message", "body": "", "tag": "", "data": {"url": None, "id": None}},
        {"title": "not json", "body": "", "tag": "", "data": {"url": None, "id": None}},
    ]


STORED_TITLE = """
(remove) => new Promise((resolve, reject) => {
  const open = indexedDB.open("herald-strings", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("herald-strings");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const tx = open.result.transaction("herald-strings", "readwrite");
    const store = tx.objectStore("herald-strings");
    const request = remove ? store.delete("pushTitle") : store.get("pushTitle");
    tx.oncomplete = () => { open.result.close(); resolve(request.result ?? null); };
  };
})
"""


def test_a_push_without_title_or_message_gets_a_title_in_the_widget_language(
    page, shop, make_tenant
):
    site = make_tenant("wgt-swtitle", origins=[shop.origin])
    shop.service_worker = one_line_import(site)
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    cdp = page.context.new_cdp_session(page)
    user = new_user()
    site.call("PUT", f"/api/v1/users/{user}", {"locale": "de"})
    open_with_worker(page, shop, site, user)
    worker = registration_id(page, cdp, f"{shop.origin}/")
    expect(page.get_by_role("button", name="Benachrichtigungen")).to_be_visible()
    # The widget leaves the worker its fallback title in the user's language.
    wait_until(
        lambda: page.evaluate(STORED_TITLE, False) == "Neue Benachrichtigung",
        timeout=15,
        what="the widget to store the German fallback title",
    )

    def push(data: dict[str, Any], count: int) -> None:
        deliver(page, cdp, shop.origin, worker, json.dumps(data),
                lambda: len(page.evaluate(SHOWN)) == count, f"notification {count}")  # fmt: skip

    push({"id": 7}, 1)
    assert [n["title"] for n in page.evaluate(SHOWN)] == ["Neue Benachrichtigung"]
    # Nothing stored (no widget has run on this origin yet): English.
    page.evaluate(STORED_TITLE, True)
    push({"id": 8, "url": "javascript:x"}, 2)
    assert sorted(n["title"] for n in page.evaluate(SHOWN)) == [
        "Neue Benachrichtigung",
        "New notification",
    ]


def test_a_click_in_the_worker_marks_the_notification_read_through_the_widget(
    page, shop, make_tenant
):
    site = make_tenant("wgt-swclick", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    site.send(user, "Click me", title="From the worker")
    site.send(user, "Leave me", title="Other")
    clicked = ids_by_message(site, token)["Click me"]
    shop.service_worker = served_copy(site)
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    open_with_worker(page, shop, site, user)
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread")

    worker = page.context.service_workers[0]
    worker.evaluate(
        """async (id) => {
          await self.registration.showNotification("From the worker", {tag: `herald-${id}`,
            data: {id, url: null}});
          const [shown] = await self.registration.getNotifications({tag: `herald-${id}`});
          try {
            self.dispatchEvent(new NotificationEvent("notificationclick", {notification: shown}));
          } catch (_) {
            // waitUntil() refuses a synthetic event; the handler's work has started by then
          }
        }""",
        clicked,
    )
    wait_until(lambda: site.unread(token) == 1, timeout=5, what="the API to count it read")
    inbox = {n["message"]: n["is_read"] for n in site.inbox(token)}
    assert inbox == {"Click me": True, "Leave me": False}
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    # Done: nothing is left pending for the next page.
    wait_until(lambda: pending(page) == [], timeout=5, what="the pending id to be deleted")


def ids_by_message(site, token: str) -> dict[str, int]:
    return {n["message"]: n["id"] for n in site.inbox(token)}


PENDING = """
() => new Promise((resolve, reject) => {
  const open = indexedDB.open("herald", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("pending-reads");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const store = open.result.transaction("pending-reads").objectStore("pending-reads");
    const request = store.getAllKeys();
    request.onsuccess = () => { open.result.close(); resolve(request.result); };
  };
})
"""


def pending(page: Page) -> list[int]:
    return page.evaluate(PENDING)


def test_ids_left_by_the_worker_are_marked_read_when_the_widget_mounts(page, shop, make_tenant):
    site = make_tenant("wgt-swpending", origins=[shop.origin])
    user = new_user()
    token = site.token(user)
    site.send(user, "Read elsewhere", title="One")
    site.send(user, "Still unread", title="Two")
    first = ids_by_message(site, token)["Read elsewhere"]
    shop.service_worker = served_copy(site)
    open_with_worker(page, shop, site, user)
    expect(bell(page)).to_have_accessible_name("Notifications, 2 unread")

    # As the worker records a click (the page is closed meanwhile), plus an id that is not
    # this user's: it is dropped, not retried forever.
    page.goto(f"{shop.origin}/next")
    page.evaluate(
        """(ids) => new Promise((resolve, reject) => {
          const open = indexedDB.open("herald", 1);
          open.onsuccess = () => {
            const tx = open.result.transaction("pending-reads", "readwrite");
            for (const id of ids) tx.objectStore("pending-reads").put(Date.now(), id);
            tx.oncomplete = () => { open.result.close(); resolve(); };
            tx.onerror = () => reject(tx.error);
          };
        })""",
        [first, 999_999],
    )
    open_with_worker(page, shop, site, user)
    wait_until(lambda: site.unread(token) == 1, timeout=5, what="the API to count it read")
    assert {n["message"]: n["is_read"] for n in site.inbox(token)} == {
        "Read elsewhere": True,
        "Still unread": False,
    }
    expect(bell(page)).to_have_accessible_name("Notifications, 1 unread")
    wait_until(lambda: pending(page) == [], timeout=5, what="the pending ids to be deleted")


def test_no_control_without_the_worker(page, shop, make_tenant):
    site = make_tenant("wgt-swnone", origins=[shop.origin])
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    shop.tokens = [site.token(new_user())]
    page.goto(shop.url(site.api_url))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
    bell(page).click()
    expect(page.get_by_text("You're all caught up")).to_be_visible()
    expect(page.get_by_role("button", name=ENABLE)).to_have_count(0)


def test_no_control_when_notifications_are_denied(page, shop, make_tenant):
    site = make_tenant("wgt-swdenied", origins=[shop.origin])
    shop.service_worker = served_copy(site)
    cdp = page.context.new_cdp_session(page)
    context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    browser = page.context.browser.new_browser_cdp_session()
    browser.send(
        "Browser.setPermission",
        {
            "permission": {"name": "notifications"},
            "setting": "denied",
            "origin": shop.origin,
            "browserContextId": context_id,
        },
    )
    open_with_worker(page, shop, site, new_user())
    assert page.evaluate("Notification.permission") == "denied"
    bell(page).click()
    expect(page.get_by_text("You're all caught up")).to_be_visible()
    expect(page.get_by_role("button", name=ENABLE)).to_have_count(0)


FAILING_SUBSCRIBE = """
PushManager.prototype.getSubscription = () => Promise.resolve(null);
PushManager.prototype.subscribe = () =>
  Promise.reject(new DOMException("Registration failed - push service error", "AbortError"));
"""


def test_a_failed_subscription_says_so_and_can_be_retried(page, shop, make_tenant):
    site = make_tenant("wgt-swfail", origins=[shop.origin])
    shop.service_worker = served_copy(site)
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    page.add_init_script(FAILING_SUBSCRIBE)
    open_with_worker(page, shop, site, new_user(), locale="de")
    page.get_by_role("button", name=re.compile(r"^Benachrichtigungen")).click()
    enable = page.get_by_role("button", name="Browser-Benachrichtigungen aktivieren")
    enable.click()
    expect(page.get_by_role("status").filter(has_text="nicht aktiviert")).to_be_visible()
    expect(enable).to_be_enabled()
    shot(page, "widget-push-failed")
    outcome = events(page, "push")
    assert outcome[-1]["state"] == "failed"
    assert "push service error" in outcome[-1]["error"]
    assert page.evaluate("window.__violations") == []


# Only the browser's link to its push service is replaced: the subscription names the local push
# service and the keys the test's Browser made. The widget, the API, the worker and the
# encryption are real. sessionStorage keeps the subscription across a reload, as the browser would.
FAKE_PUSH_SERVICE = """
(() => {
  const json = %s;
  const made = () => ({ endpoint: json.endpoint, toJSON: () => json });
  window.__subscribeCalls = [];
  PushManager.prototype.getSubscription = () =>
    Promise.resolve(sessionStorage.getItem("subscribed") ? made() : null);
  PushManager.prototype.subscribe = (options) => {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribeCalls.push({
      userVisibleOnly: options.userVisibleOnly,
      key: btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_")
        .replace(/=+$/, ""),
    });
    sessionStorage.setItem("subscribed", "1");
    return Promise.resolve(made());
  };
})();
"""


@pytest.fixture
def push_web(world, django_db_blocker) -> Iterator[Server]:
    """A web process that accepts push endpoints on the local push service's address."""
    with django_db_blocker.unblock(), running_web(WEBHOOK_ALLOWED_CIDRS=ALLOWED) as server:
        yield server


def test_the_button_subscribes_and_a_send_is_pushed_to_the_browser(
    page, shop, make_tenant, push_web
):
    site = make_tenant("wgt-swpush", origins=[shop.origin], server=push_web)
    user = new_user()
    token = site.token(user)
    shop.service_worker = served_copy(site)
    page.context.grant_permissions(["notifications"], origin=shop.origin)
    browser = Browser()
    with push_service() as service:
        page.add_init_script(FAKE_PUSH_SERVICE % json.dumps(service.subscription(browser)))
        open_with_worker(page, shop, site, user)
        bell(page).click()
        page.get_by_role("button", name=ENABLE).click()
        expect(
            page.get_by_role("status").filter(has_text="Browser notifications are on")
        ).to_be_visible()
        expect(page.get_by_role("button", name=ENABLE)).to_have_count(0)
        shot(page, "widget-push-on")
        assert events(page, "push") == [{"state": "on"}]
        public_key = site.call("GET", "/api/v1/push/public-key", token=token)["vapid_public_key"]
        assert page.evaluate("window.__subscribeCalls") == [
            {"userVisibleOnly": True, "key": public_key}
        ]
        [row] = site.call("GET", "/api/v1/me/push-subscriptions", token=token)["results"]
        assert row["endpoint"] == service.endpoint(browser)

        # Already subscribed on the next visit: said at once, and the server still has one row.
        open_with_worker(page, shop, site, user)
        bell(page).click()
        expect(
            page.get_by_role("status").filter(has_text="Browser notifications are on")
        ).to_be_visible()
        assert events(page, "push") == [{"state": "on"}]
        assert len(site.call("GET", "/api/v1/me/push-subscriptions", token=token)["results"]) == 1

        with running_worker(QUEUE, WEBHOOK_ALLOWED_CIDRS=ALLOWED):
            site.send(
                user,
                "Ada replied",
                title="Ada mentioned you",
                url=f"{shop.origin}/next",
                channels=["in_app", "push"],
            )
            wait_until(lambda: service.received(browser), timeout=30, what="the push")
    [push] = service.received(browser)
    assert push.problem is None, push.problem
    [notification] = site.inbox(token)
    assert {k: push.payload[k] for k in ("id", "title", "message", "url")} == {
        "id": notification["id"],
        "title": "Ada mentioned you",
        "message": "Ada replied",
        "url": f"{shop.origin}/next",
    }

    # What the push service would hand the browser, the worker shows.
    cdp = page.context.new_cdp_session(page)
    worker = registration_id(page, cdp, f"{shop.origin}/")
    deliver(page, cdp, shop.origin, worker, json.dumps(push.payload),
            lambda: page.evaluate(SHOWN), "the notification")  # fmt: skip
    [shown] = page.evaluate(SHOWN)
    assert shown["title"] == "Ada mentioned you"
    assert shown["body"] == "Ada replied"
    assert shown["data"] == {"url": f"{shop.origin}/next", "id": notification["id"]}


def test_a_refusal_at_the_prompt_says_where_to_allow_them(page, shop, make_tenant):
    site = make_tenant("wgt-swrefused", origins=[shop.origin])
    shop.service_worker = served_copy(site)
    # The user answers the browser's prompt with "Block" (headless Chromium shows no prompt).
    page.add_init_script('Notification.requestPermission = () => Promise.resolve("denied");')
    open_with_worker(page, shop, site, new_user())
    bell(page).click()
    enable = page.get_by_role("button", name=ENABLE)
    shot(page, "widget-push-offer")
    enable.click()
    expect(page.get_by_role("status").filter(has_text="blocked in this browser")).to_be_visible()
    expect(enable).to_have_count(0)
    assert events(page, "push") == [{"state": "denied"}]
