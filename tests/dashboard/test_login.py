"""Signing in and out: scoped to the tenant's host, CSRF-protected, never across tenants."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.dashboard.conftest import log_in
from tests.support.browser import screenshot
from tests.support.processes import http


def test_an_admin_signs_in_lands_on_the_overview_and_signs_out(page, make_site):
    site = make_site("dash-login")
    page.goto(site.url("/dashboard/?tab=1"))
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    screenshot(page, "login")
    log_in(page, site)
    expect(page).to_have_url(site.url("/dashboard/?tab=1"))
    page.goto(site.url())
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("navigation", name="Dashboard")).to_contain_text("API keys")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(site.url("/dashboard/login"))
    page.goto(site.url())
    expect(page).to_have_url(re.compile(r"/dashboard/login"))


def test_a_wrong_password_is_refused_with_a_message(page, make_site):
    site = make_site("dash-wrongpw")
    log_in(page, site, password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("correct email")
    expect(page).to_have_url(site.url("/dashboard/login"))


def test_an_admin_of_another_tenant_cannot_sign_in_here(page, make_site):
    here, there = make_site("dash-here"), make_site("dash-there")
    log_in(page, here, email=there.email, password=there.password)
    expect(page.get_by_role("alert")).to_be_visible()
    # Signed in on their own host, the session cookie means nothing on this one.
    log_in(page, there)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto(here.url())
    expect(page).to_have_url(re.compile(r"dash-here\.localhost:\d+/dashboard/login"))


def test_the_dashboard_is_not_served_on_the_platform_host(web):
    assert http("GET", f"{web.url}/dashboard/login", headers={"Host": "localhost"}).status == 404


def test_pages_carry_a_strict_content_security_policy(make_site):
    site = make_site("dash-csp")
    host = f"{site.tenant.slug}.localhost"
    response = http("GET", f"{site.server.url}/dashboard/login", headers={"Host": host})
    policy = {k.lower(): v for k, v in response.headers.items()}["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_unknown_dashboard_pages_get_an_html_404_and_api_paths_keep_json(make_site):
    site = make_site("dash-404")
    host = {"Host": f"{site.tenant.slug}.localhost"}
    page = http("GET", f"{site.server.url}/dashboard/no-such-page", headers=host)
    assert page.status == 404
    assert "Page not found" in page.body
    api = http("GET", f"{site.server.url}/api/v1/no-such-thing", headers=host)
    assert api.status == 404
    assert api.body["error"]["code"] == "not_found"


def test_a_forged_form_post_gets_the_form_expired_page(make_site):
    site = make_site("dash-csrf")
    host = {"Host": f"{site.tenant.slug}.localhost"}
    response = http("POST", f"{site.server.url}/dashboard/login", headers=host, body={"x": 1})
    assert response.status == 403
    assert "Form expired" in response.body
