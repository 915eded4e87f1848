"""The widget's settings view: the user picks a language and a time zone, saved through
``PUT /api/v1/me/preferences``; the widget switches language at once; a refused value is
reported. The view is its own file, herald-settings.js, loaded on first use and pinned by the
integrity value herald.js holds. Real browser, real web process."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browser import screenshot
from tests.support.processes import http
from tests.widget.conftest import new_user
from widget.bundle import SETTINGS_SOURCE, settings_bundle, widget_bundle
from widget.locales import catalogue_paths


def open_settings(page: Page, shop, site, user: str, **params) -> None:
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url, **params))
    expect(page.locator("herald-widget .foot")).to_have_class(re.compile(r"\blive\b"))
    page.get_by_role("button", name="Notifications").click()
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("Language")).to_be_visible()


def test_the_user_picks_german_and_a_time_zone_and_the_widget_follows_at_once(
    page, shop, make_tenant
):
    site = make_tenant("wgt-settings-de", origins=[shop.origin])
    user = new_user()
    site.send(user, "Hello")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/widget/v1/" in r.url else None)
    open_settings(page, shop, site, user)
    assert sum("herald-settings.js" in url for url in requests) == 1  # loaded on first use only

    language = page.get_by_label("Language")
    expect(language).to_have_value("")  # automatic: the user has chosen none yet
    expect(language.locator("option")).to_have_text(
        ["Automatic (browser)", "العربية", "Deutsch", "English", "Español", "Français"]
    )
    zone = page.get_by_label("Time zone")
    browser_zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    expect(zone).to_have_value(browser_zone)  # the browser's zone is the suggestion
    assert zone.locator("option").count() > 300  # every zone the browser knows

    language.select_option(label="Deutsch")
    zone.select_option("Europe/Berlin")
    page.get_by_role("button", name="Save").click()

    # The widget's own strings switch to German without a reload, the view included.
    expect(page.get_by_role("status").filter(has_text="Gespeichert.")).to_be_visible()
    expect(page.get_by_label("Sprache")).to_have_value("de")
    expect(page.get_by_label("Zeitzone")).to_have_value("Europe/Berlin")
    expect(page.locator("herald-widget .root")).to_have_attribute("lang", "de")
    expect(page.get_by_role("dialog", name=re.compile("Benachrichtigungen"))).to_be_visible()
    expect(page.get_by_role("button", name="Einstellungen")).to_be_visible()
    expect(page.locator("herald-widget .foot")).to_contain_text("Live")
    screenshot(page, "widget-settings-german", full_page=False)
    page.get_by_role("button", name="Zurück").click()
    expect(page.get_by_role("button", name="Alle als gelesen markieren")).to_be_enabled()
    expect(page.locator("herald-widget .item time")).to_have_text("jetzt")

    token = site.token(user)
    saved = site.call("GET", "/api/v1/me/preferences", token=token)
    assert (saved["locale"], saved["timezone"]) == ("de", "Europe/Berlin")
    settings_events = [e for e in page.evaluate("window.__events") if e["type"] == "settings"]
    assert settings_events == [
        {"type": "settings", "detail": {"locale": "de", "timezone": "Europe/Berlin"}}
    ]
    assert [url for url in requests if "/locales/" in url][-1].endswith("/locales/de.json")
    assert page.evaluate("window.__violations") == []

    # The next visit starts in German (the user's locale, as /me/widget reports it).
    page.reload()
    expect(page.get_by_role("button", name=re.compile("Benachrichtigungen"))).to_be_visible()


def test_back_to_automatic_uses_the_browser_language(page, shop, make_tenant):
    site = make_tenant("wgt-settings-auto", origins=[shop.origin])
    user = new_user()
    site.call("PUT", f"/api/v1/users/{user}", {"locale": "fr", "timezone": "Europe/Paris"})
    shop.tokens = [site.token(user)]
    page.goto(shop.url(site.api_url))
    page.get_by_role("button", name="Notifications").click()
    page.get_by_role("button", name="Paramètres").click()
    language = page.get_by_label("Langue")
    expect(language).to_have_value("fr")
    expect(page.get_by_label("Fuseau horaire")).to_have_value("Europe/Paris")
    language.select_option("")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator("herald-widget .root")).to_have_attribute("lang", "en-US")
    saved = site.call("GET", "/api/v1/me/preferences", token=site.token(user))
    assert (saved["locale"], saved["timezone"]) == ("", "Europe/Paris")


def test_a_refused_value_is_reported_and_nothing_changes(page, shop, make_tenant):
    site = make_tenant("wgt-settings-bad", origins=[shop.origin])
    user = new_user()
    open_settings(page, shop, site, user)
    # A browser can know a zone this server's time zone database does not.
    page.locator("herald-widget select[name=timezone]").evaluate(
        "(select) => { const o = document.createElement('option'); o.value = o.textContent ="
        " 'Mars/Olympus_Mons'; select.append(o); select.value = o.value; }"
    )
    page.get_by_label("Language").select_option("de")
    with page.expect_response(re.compile(r"/api/v1/me/preferences$")) as answer:
        page.get_by_role("button", name="Save").click()
    assert answer.value.status == 400
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Time zone was not accepted. Choose another value.")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Language")).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "widget-settings-refused", full_page=False)
    expect(page.locator("herald-widget .root")).to_have_attribute("lang", "en-US")
    saved = site.call("GET", "/api/v1/me/preferences", token=site.token(user))
    assert (saved["locale"], saved["timezone"]) == ("", "")
    assert page.evaluate("window.__violations") == []


# --- the file --------------------------------------------------------------------------------


def test_herald_js_pins_the_settings_file_it_loads():
    source = widget_bundle().body.decode()
    pinned = re.search(r'const SETTINGS = "([^"]+)";', source)
    assert pinned is not None
    assert pinned.group(1) == settings_bundle().integrity_sha256, (
        "herald-settings.js changed: set SETTINGS in herald.js to "
        f"{settings_bundle().integrity_sha256}"
    )


def test_the_settings_view_offers_every_shipped_language():
    listed = re.search(r"const LANGUAGES = \[(.*?)\];", SETTINGS_SOURCE.read_text())
    assert listed is not None
    assert sorted(re.findall(r'"(\w+)"', listed.group(1))) == sorted({"en", *catalogue_paths()})


def test_the_settings_file_is_served_like_the_widget(web, world):
    url, host = f"{web.url}/widget/v1/herald-settings.js", {"Host": world.alice.host}
    response = http("GET", url, headers=host)
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == "*"  # herald.js loads it in CORS mode
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.body.encode() == SETTINGS_SOURCE.read_bytes()
    assert http("GET", url, headers={**host, "If-None-Match": headers["etag"]}).status == 304
    gzipped = http("GET", url, headers={**host, "Accept-Encoding": "gzip"})
    assert {k.lower(): v for k, v in gzipped.headers.items()}["content-encoding"] == "gzip"
    assert http("POST", url, headers=host, body={}).status == 405
    platform = http("GET", url, headers={"Host": "localhost"})
    assert platform.status == 200


def test_the_settings_file_uses_nothing_a_strict_csp_or_escaping_forbids():
    code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", SETTINGS_SOURCE.read_text(), flags=re.S | re.M)
    forbidden = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]
    forbidden += ["new Function", 'setAttribute("style"', 'setTimeout("', "import("]
    for construct in forbidden:
        assert construct not in code, construct


def test_switching_to_arabic_while_open_keeps_the_panel_under_the_bell(page, shop, make_tenant):
    """Right to left swaps the panel's "start" and "end": it is placed again, not left hanging
    off the viewport. English texts keep their own direction inside the Arabic widget (else
    "Your report is ready." shows as ".Your report is ready")."""
    site = make_tenant("wgt-settings-ar", origins=[shop.origin])
    user = new_user()
    site.send(user, "Your report is ready.", title="Hello")
    open_settings(page, shop, site, user)

    def inside() -> None:
        panel = page.locator("herald-widget .panel").bounding_box()
        bell = page.locator("herald-widget .bell").bounding_box()
        assert panel is not None
        assert bell is not None
        width = page.viewport_size["width"]
        assert panel["x"] >= 0, panel
        assert panel["x"] + panel["width"] <= width, (panel, width)
        assert panel["x"] <= bell["x"] + bell["width"] <= panel["x"] + panel["width"] + 1

    inside()
    page.get_by_label("Language").select_option(label="العربية")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("herald-widget .root")).to_have_attribute("dir", "rtl")
    inside()
    page.get_by_role("button", name="رجوع").click()
    for text in ("t", "m"):  # each text takes the direction of its own characters
        own = page.locator(f"herald-widget .item .{text}")
        expect(own).to_have_css("unicode-bidi", "plaintext")
    inside()
