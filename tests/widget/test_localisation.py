"""The widget in the user's language: catalogues served by Herald, the choice of locale (the
page's, the user's, the browser's), fallback to English, the tenant's overrides, right-to-left
layout. Real browser, real web process."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tenants.services import tenant_update
from tests.support.browser import screenshot
from tests.support.processes import http
from tests.widget.conftest import new_user
from widget.locales import LOCALES_DIR, catalogue_paths, english

SHIPPED = {"de", "fr", "es", "ar"}


def root(page: Page):
    return page.locator("herald-widget .root")


def catalogue_requests(page: Page) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/locales/" in r.url else None)
    return requests


def open_page(page: Page, shop, site, user: str, **params) -> None:
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url, **params))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))


# --- the catalogues ----------------------------------------------------------------------------


def test_every_catalogue_has_exactly_the_english_keys_and_placeholders():
    keys = english()
    assert {"title", "bellUnread", "pushAsk", "pushFailed"} <= set(keys)
    assert set(catalogue_paths()) >= SHIPPED
    assert {path.stem for path in LOCALES_DIR.iterdir()} == set(catalogue_paths())
    for language, path in catalogue_paths().items():
        strings = json.loads(path.read_text(encoding="utf-8"))
        assert set(strings) == set(keys), language
        for key, text in strings.items():
            assert isinstance(text, str), (language, key)
            assert text.strip(), (language, key)
            placeholders = set(re.findall(r"\{\w\}", text))
            assert placeholders == set(re.findall(r"\{\w\}", keys[key])), (language, key)


@pytest.mark.parametrize("host", ["localhost", "wgt-none.localhost"])
def test_a_catalogue_is_served_public_cacheable_and_revalidated(web, world, host):
    host = world.alice.host if host != "localhost" else host
    url = f"{web.url}/widget/v1/locales/de.json"
    response = http("GET", url, headers={"Host": host})
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 200
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == "*"
    assert "x-herald-widget-version" not in headers
    assert response.body == json.loads((LOCALES_DIR / "de.json").read_text(encoding="utf-8"))
    again = http("GET", url, headers={"Host": host, "If-None-Match": headers["etag"]})
    assert again.status == 304
    gzipped = http("GET", url, headers={"Host": host, "Accept-Encoding": "gzip"})
    assert {k.lower(): v for k, v in gzipped.headers.items()}["content-encoding"] == "gzip"
    # English, the widget's own strings, for translators to start from.
    english_body = http("GET", f"{web.url}/widget/v1/locales/en.json", headers={"Host": host})
    assert english_body.body == english()


def test_unknown_or_malformed_languages_are_404(web):
    host = {"Host": "localhost"}
    missing = http("GET", f"{web.url}/widget/v1/locales/xx.json", headers=host)
    assert missing.status == 404
    assert missing.body["error"]["code"] == "not_found"
    # The widget must see the status: the 404 carries the CORS header too.
    assert {k.lower(): v for k, v in missing.headers.items()}["access-control-allow-origin"] == "*"
    for name in ["DE", "de-AT", "d", "deutsch", "..%2Fherald", "%2e%2e", "de%2Ejson"]:
        assert http("GET", f"{web.url}/widget/v1/locales/{name}.json", headers=host).status == 404
    assert http("POST", f"{web.url}/widget/v1/locales/de.json", headers=host, body={}).status == 405


# --- choosing the locale -------------------------------------------------------------------------


def test_a_de_at_user_gets_german_through_the_language_fallback(page, shop, make_tenant):
    site = make_tenant("wgt-l10n-de", origins=[shop.origin])
    user = new_user()
    site.call("PUT", f"/api/v1/users/{user}", {"locale": "de-AT"})
    site.send(user, "Hallo")
    requests = catalogue_requests(page)
    open_page(page, shop, site, user)
    german_bell = page.get_by_role("button", name="Benachrichtigungen, 1 ungelesen")
    expect(german_bell).to_be_visible()
    expect(root(page)).to_have_attribute("lang", "de-AT")
    expect(root(page)).to_have_attribute("dir", "ltr")
    german_bell.click()
    expect(page.get_by_role("dialog", name=re.compile("Benachrichtigungen"))).to_be_visible()
    expect(page.get_by_role("button", name="Alle als gelesen markieren")).to_be_enabled()
    expect(page.locator("herald-widget .item time")).to_have_text("jetzt")
    expect(page.get_by_role("button", name="Schließen")).to_be_visible()
    assert [url.rsplit("/", 1)[1] for url in requests] == ["de.json"]  # once per page
    assert page.evaluate("window.__violations") == []


def test_spanish_from_the_browser_when_neither_page_nor_user_chooses(browser, shop, make_tenant):
    site = make_tenant("wgt-l10n-es", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hola")
    context = browser.new_context(locale="es-ES", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        open_page(page, shop, site, user)
        spanish_bell = page.get_by_role("button", name="Notificaciones, 1 sin leer")
        expect(spanish_bell).to_be_visible()
        spanish_bell.click()
        expect(page.get_by_role("button", name="Marcar todas como leídas")).to_be_enabled()
        expect(page.locator("herald-widget .item time")).to_have_text("ahora")
        expect(page.locator("herald-widget .foot")).to_contain_text("En directo")
        assert page.evaluate("window.__violations") == []
    finally:
        context.close()


def test_the_page_option_wins_over_the_user_locale(page, shop, make_tenant):
    site = make_tenant("wgt-l10n-opt", origins=[shop.origin])
    user = new_user()
    site.call("PUT", f"/api/v1/users/{user}", {"locale": "de"})
    open_page(page, shop, site, user, locale="fr")
    expect(page.get_by_role("button", name="Notifications")).to_be_visible()
    page.get_by_role("button", name="Notifications").click()
    expect(page.get_by_text("Vous êtes à jour")).to_be_visible()


def test_an_unknown_locale_falls_back_to_english(page, shop, make_tenant):
    site = make_tenant("wgt-l10n-xx", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hello")
    with page.expect_response(re.compile(r"/widget/v1/locales/")) as answer:
        open_page(page, shop, site, user, locale="tlh-XX")
    assert answer.value.status == 404
    expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    page.get_by_role("button", name="Notifications, 1 unread").click()
    expect(page.get_by_role("button", name="Mark all as read")).to_be_enabled()
    expect(root(page)).to_have_attribute("lang", "en")
    expect(root(page)).to_have_attribute("dir", "ltr")
    assert page.evaluate("window.__violations") == []


def test_a_tenant_override_replaces_one_string(page, shop, make_tenant):
    site = make_tenant("wgt-l10n-over", origins=[shop.origin])
    tenant_update(
        tenant=site.tenant,
        fields={"widget_strings": {"de": {"title": "Mitteilungen"}, "fr": {"title": "Avis"}}},
    )
    user = new_user()
    open_page(page, shop, site, user, locale="de-CH")
    bell = page.get_by_role("button", name="Mitteilungen")
    expect(bell).to_be_visible()
    bell.click()
    expect(page.get_by_role("dialog", name="Mitteilungen")).to_be_visible()
    # Every other string still comes from the German catalogue.
    expect(page.get_by_role("button", name="Alle als gelesen markieren")).to_be_disabled()
    expect(page.get_by_text("Alles gelesen")).to_be_visible()


# --- right to left -------------------------------------------------------------------------------


def test_arabic_is_laid_out_right_to_left(page, shop, make_tenant):
    site = make_tenant("wgt-l10n-ar", origins=[shop.origin])
    user = new_user()
    site.call("PUT", f"/api/v1/users/{user}", {"locale": "ar-EG"})
    site.send(user, "مرحبا", title="رسالة")
    open_page(page, shop, site, user)
    bell = page.get_by_role("button", name="الإشعارات، غير المقروءة: 1")
    expect(bell).to_be_visible()
    expect(root(page)).to_have_attribute("dir", "rtl")
    expect(root(page)).to_have_attribute("lang", "ar-EG")

    def box(selector: str) -> dict:
        found = page.locator(f"herald-widget {selector}").first.bounding_box()
        assert found is not None, selector
        return found

    bell_box, badge = box(".bell"), box(".badge")
    assert badge["x"] + badge["width"] / 2 < bell_box["x"] + bell_box["width"] / 2  # badge left
    bell.click()
    expect(page.get_by_role("dialog", name="الإشعارات")).to_be_visible()
    expect(page.locator("herald-widget .item time")).to_have_text("الآن")
    heading, closer, panel = box("h2"), box(".x"), box(".panel")
    assert closer["x"] + closer["width"] <= heading["x"] + 1  # the close button on the left
    dot, text = box(".item .dot"), box(".item .text")
    assert dot["x"] >= text["x"] + text["width"] - 1  # the unread dot on the right
    mark_all, state = box(".foot .all"), box(".state")
    assert mark_all["x"] < state["x"]  # the footer runs right to left
    # The bell is on the right of the page: the panel still opens inward, anchored at its right.
    assert abs(panel["x"] + panel["width"] - (bell_box["x"] + bell_box["width"])) <= 1
    screenshot(page, "widget-arabic-rtl", full_page=False)
    assert page.evaluate("window.__violations") == []
