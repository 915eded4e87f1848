"""The widget page: install snippet for this tenant, allowed origins, and a live preview."""

from __future__ import annotations

import re

from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from dashboard.views.widget import PREVIEW_USER
from notifications.models import Notification
from tenants.models import Tenant
from tests.dashboard.conftest import log_in
from tests.support.browser import screenshot


def test_the_snippet_names_this_tenants_host(page, make_site):
    site = make_site("dash-wsnip")
    log_in(page, site)
    page.goto(site.url("/dashboard/widget/"))
    origin = site.url("").rstrip("/")
    expect(page.locator("#snippet-html")).to_contain_text(f"{origin}/widget/v1/herald.js")
    expect(page.locator("#snippet-js")).to_contain_text(f'apiUrl: "{origin}"')


def test_allowed_origins_are_saved_normalised_and_bad_lines_are_named(page, make_site):
    site = make_site("dash-worig")
    log_in(page, site)
    page.goto(site.url("/dashboard/widget/"))
    field = page.get_by_label("Allowed origins")
    field.fill("https://App.Example.com/\nftp://files.example.com\nhttps://x.com/path")
    page.get_by_role("button", name="Save origins").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("ftp://files.example.com")
    expect(alert).to_contain_text("https://x.com/path")
    assert Tenant.objects.get(pk=site.tenant.pk).allowed_origins == []  # nothing half-saved

    field.fill("https://App.Example.com/\n\nhttp://localhost:3000\nhttps://app.example.com")
    page.get_by_role("button", name="Save origins").click()
    expect(page.get_by_role("status").first).to_contain_text("Allowed origins saved")
    assert Tenant.objects.get(pk=site.tenant.pk).allowed_origins == [
        "https://app.example.com",
        "http://localhost:3000",
    ]


def test_widget_strings_are_edited_as_json_and_checked_like_the_api(page, make_site):
    site = make_site("dash-wstr")
    log_in(page, site)
    page.goto(site.url("/dashboard/widget/"))
    field = page.get_by_label("Widget strings")
    save = page.get_by_role("button", name="Save strings")
    field.fill('{"de": {"titel": "Mitteilungen"}}')
    save.click()
    expect(page.get_by_role("alert")).to_contain_text("'titel' is not a widget string")
    field.fill('{"de": {"title": "Mitteilungen"')
    save.click()
    expect(page.get_by_role("alert")).to_contain_text("Not valid JSON")
    field.fill("[" * 5000 + "]" * 5000)  # a RecursionError, so a 500, when parsed unchecked
    save.click()
    expect(page.get_by_role("alert")).to_contain_text("levels deep")
    assert Tenant.objects.get(pk=site.tenant.pk).widget_strings == {}

    field.fill('{"de": {"title": "Mitteilungen"}}')
    save.click()
    expect(page.get_by_role("status").first).to_contain_text("Widget strings saved")
    assert Tenant.objects.get(pk=site.tenant.pk).widget_strings == {"de": {"title": "Mitteilungen"}}
    expect(page.get_by_label("Widget strings")).to_have_value(re.compile("Mitteilungen"))
    field.fill("")
    save.click()
    expect(page.get_by_role("status").first).to_contain_text("Widget strings saved")
    assert Tenant.objects.get(pk=site.tenant.pk).widget_strings == {}


def test_the_live_preview_runs_the_real_widget_and_shows_a_sent_notification(page, make_site):
    site = make_site("dash-wprev")
    log_in(page, site)
    page.goto(site.url("/dashboard/widget/"))
    preview = page.locator("#widget-preview")
    bell = preview.get_by_role("button", name=re.compile("Notifications", re.IGNORECASE))
    expect(bell).to_be_visible()
    page.get_by_role("button", name="Send a preview notification").click()
    expect(page.locator("#preview-status")).to_contain_text("Sent")
    expect(bell).to_have_accessible_name(re.compile("1"))
    bell.click()
    expect(preview.get_by_text("Hello from Herald")).to_be_visible()
    screenshot(page, "dash-widget")
    with tenant_context(site.tenant):
        assert Notification.objects.filter(recipient__external_id=PREVIEW_USER).count() == 1


def test_the_preview_token_needs_a_signed_in_admin_and_a_csrf_token(make_site, client):
    site = make_site("dash-wtok")
    host = f"{site.tenant.slug}.localhost"
    anonymous = client.post("/dashboard/widget/preview-token", HTTP_HOST=host)
    assert anonymous.status_code == 302
    assert "/dashboard/login" in anonymous["Location"]
