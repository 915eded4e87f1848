"""Settings: sender and branding saved through the API's own rules, bad values explained,
plan limits shown; and the usage report as a page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tenants.models import Tenant
from tests.dashboard.account_helpers import (
    admin_client,
)
from tests.dashboard.conftest import log_in
from tests.support.browser import screenshot


def test_save_sender_and_branding_and_see_errors(page, make_site):
    site = make_site("dash-settings", name="Settings Ltd", plan="pro")
    log_in(page, site)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_label("Sender name")).to_have_value("Settings Ltd")
    plan = page.get_by_role("region", name="Plan")
    expect(plan).to_contain_text("Pro")
    expect(plan).to_contain_text("Notifications a month")
    screenshot(page, "dash-settings")

    page.get_by_label("Sender name").fill("Settings <Alerts>")
    page.get_by_label("Sender address").fill("not-an-address")
    page.get_by_label("Logo URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.locator("#sender-email-error")).to_have_text("Enter a valid email address.")
    expect(page.locator("#logo-url-error")).to_contain_text("Use an http:// or https:// address.")
    expect(page.get_by_label("Sender name")).to_have_value("Settings <Alerts>")
    tenant = Tenant.objects.get(pk=site.tenant.pk)
    assert (tenant.sender_name, tenant.sender_email) == ("Settings Ltd", "")

    page.get_by_label("Sender address").fill("alerts@settings.example.com")
    page.get_by_label("Logo URL").fill("https://cdn.example.com/logo.png")
    page.get_by_label("Brand colour, as #rrggbb").fill("#0F766E")
    expect(page.get_by_label("Brand colour", exact=True)).to_have_value("#0f766e")
    expect(page.locator("#brand-preview-rect")).to_have_attribute("fill", "#0F766E")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved.")
    expect(page.get_by_label("Sender name")).to_have_value("Settings <Alerts>")

    tenant = Tenant.objects.get(pk=site.tenant.pk)
    assert tenant.sender_name == "Settings <Alerts>"
    assert tenant.sender_email == "alerts@settings.example.com"
    assert tenant.brand_color == "#0f766e"
    assert tenant.logo_url == "https://cdn.example.com/logo.png"
    body = site.api.get("/api/v1/tenant").json()
    assert (body["sender_name"], body["brand_color"]) == ("Settings <Alerts>", "#0f766e")

    page.get_by_role("link", name="Usage report").click()
    expect(page.get_by_role("heading", name="Usage report")).to_contain_text("Usage report ·")
    expect(page.locator("#usage-report")).to_contain_text("Notifications")
    expect(page.locator("#usage-report tfoot")).to_contain_text("$")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("brand_color", "blue", "Use a colour like #4f46e5."),
        ("brand_color", "", "This field may not be blank."),
        ("logo_url", "ftp://example.com/logo.png", "Use an http:// or https:// address."),
        ("logo_url", "https://" + "a" * 500 + ".com", "no more than 500 characters"),
        ("sender_name", "n" * 101, "no more than 100 characters"),
        ("sender_name", "Alpha\r\nBcc: v@evil.example", "control characters"),
        ("sender_email", "x@", "Enter a valid email address."),
    ],
)
def test_each_bad_value_is_explained_and_nothing_saved(db, world, field, value, message):
    client = admin_client(world.tenant_a, world.alice.email)
    values = {"sender_name": "Alpha", "sender_email": "", "brand_color": "#4f46e5", "logo_url": ""}
    response = client.post("/dashboard/settings/", {**values, field: value})
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert Tenant.objects.get(pk=world.tenant_a.pk).sender_name != "Alpha"


def test_blank_sender_and_logo_are_allowed(db, world):
    client = admin_client(world.tenant_a, world.alice.email)
    values = {"sender_name": "", "sender_email": "", "brand_color": "#123456", "logo_url": ""}
    response = client.post("/dashboard/settings/", values)
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    assert (tenant.sender_name, tenant.brand_color, tenant.logo_url) == ("", "#123456", "")


def test_the_usage_report_by_month(db, world):
    client = admin_client(world.tenant_a, world.alice.email)
    page = client.get("/dashboard/usage")
    assert page.status_code == 200
    periods = page.context["periods"]
    assert page.context["period"] == periods[0]
    assert client.get("/dashboard/usage", {"period": periods[0].key}).status_code == 200
    for bad in ("1999-01", "2026-13", "junk"):
        response = client.get("/dashboard/usage", {"period": bad}, follow=True)
        assert response.redirect_chain == [("/dashboard/usage", 302)]
        assert "Choose one of the listed months." in response.content.decode()
