"""Self-serve sign-up in the browser: live slug check, field errors, the key shown once, and the
one-time ticket that signs the new admin in on their own host."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.test import Client
from playwright.sync_api import expect

from dashboard.welcome import welcome_ticket
from tenants.models import Tenant
from tests.dashboard.account_helpers import (
    forwarded_for,
)
from tests.support.browser import screenshot
from tests.support.processes import http

PASSWORD = "a sturdy pass phrase 9"


@pytest.fixture
def visitor(page):
    page.context.set_extra_http_headers({"X-Forwarded-For": forwarded_for()})
    return page


def test_sign_up_end_to_end(visitor, web, committed, browser):
    page = visitor
    committed.append("signup-e2e")
    page.goto(f"http://localhost:{web.port}/signup")
    expect(page.get_by_role("heading", name="Create your Herald account")).to_be_visible()

    # The slug follows the organisation's name and is checked as you type.
    page.get_by_label("Organisation name").fill("Signup E2E")
    slug = page.get_by_label("Your address")
    expect(slug).to_have_value("signup-e2e")
    status = page.locator("#slug-status")
    expect(status).to_contain_text("signup-e2e.localhost is available")

    page.get_by_label("Work email").fill("founder@signup-e2e.example.com")
    screenshot(page, "signup")

    slug.fill("alpha")
    expect(status).to_contain_text("'alpha' is already taken.")
    expect(page.get_by_role("button", name="Use alpha-2")).to_be_visible()
    slug.fill("admin")
    expect(status).to_contain_text("'admin' is reserved.")
    slug.fill("9-lives")
    expect(status).to_contain_text("starting with a letter")

    # Every invalid field gets its message; nothing is created.
    slug.fill("signup-e2e")
    expect(status).to_contain_text("is available")
    page.get_by_label("Work email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("12345678")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#email-error")).to_have_text("Enter a valid email address.")
    expect(page.locator("#password-error")).to_contain_text("too common")
    expect(page.locator("#password-error")).to_contain_text("entirely numeric")
    expect(page.get_by_label("Organisation name")).to_have_value("Signup E2E")
    assert not Tenant.objects.filter(slug="signup-e2e").exists()

    page.get_by_label("Work email").fill("Founder@Signup-E2E.example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    expect(status).to_contain_text("is available")
    page.get_by_role("button", name="Create account").click()

    # The key, once.
    expect(page).to_have_url(f"http://localhost:{web.port}/signup/done")
    expect(page.get_by_role("heading", name="Signup E2E is ready")).to_be_visible()
    key = page.locator("#api-key").inner_text().strip()
    assert key.startswith("sk_")
    expect(page.get_by_role("note")).to_contain_text("shown only once")
    screenshot(page, "signup-done")
    continue_url = page.get_by_role("link", name="Continue to your dashboard").get_attribute("href")
    assert continue_url.startswith(f"http://signup-e2e.localhost:{web.port}/dashboard/welcome?")
    page.reload()
    expect(page).to_have_url(f"http://localhost:{web.port}/signup")
    assert key not in page.content()

    tenant = Tenant.objects.get(slug="signup-e2e")
    assert tenant.plan.code == "free"
    host = {"Host": "signup-e2e.localhost", "Authorization": f"Bearer {key}"}
    response = http("GET", f"{web.url}/api/v1/tenant", headers=host)
    assert response.status == 200
    assert response.body["name"] == "Signup E2E"

    # Continue: signed in on the tenant's own host, with no ticket left in the address.
    page.goto(continue_url)
    expect(page).to_have_url(f"http://signup-e2e.localhost:{web.port}/dashboard/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Welcome to Herald, Signup E2E!")
    expect(page.locator(".whoami")).to_have_text("founder@signup-e2e.example.com")

    # The ticket is spent: another browser gets nowhere with it.
    other = browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(continue_url)
        expect(stranger.get_by_role("heading")).to_contain_text("no longer works")
        stranger.goto(f"http://signup-e2e.localhost:{web.port}/dashboard/")
        expect(stranger).to_have_url(re.compile(r"/dashboard/login\?next="))
    finally:
        other.close()


def test_a_taken_slug_on_submit_is_a_field_error(visitor, web, world):
    visitor.goto(f"http://localhost:{web.port}/signup")
    visitor.get_by_label("Organisation name").fill("Alpha Again")
    visitor.get_by_label("Your address").fill("alpha")
    visitor.get_by_label("Work email").fill("x@example.com")
    visitor.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.get_by_role("button", name="Create account").click()
    expect(visitor.locator("#slug-error")).to_have_text("'alpha' is already taken.")
    expect(visitor.get_by_label("Your address")).to_have_attribute("aria-invalid", "true")


def test_welcome_tickets_work_only_on_their_tenants_host(web, world):
    alpha, bravo = world.tenant_a, world.tenant_b
    ticket = welcome_ticket(tenant_id=alpha.pk, user_id=1)
    on_bravo = http(
        "GET", f"{web.url}/dashboard/welcome?ticket={ticket}", headers={"Host": "bravo.localhost"}
    )
    assert on_bravo.status == 400
    assert "no longer works" in on_bravo.body
    assert "set-cookie" not in {name.lower() for name in on_bravo.headers}
    for forged in ("", "garbage", ticket[:-2] + "xx"):
        response = http(
            "GET",
            f"{web.url}/dashboard/welcome?ticket={forged}",
            headers={"Host": "alpha.localhost"},
        )
        assert response.status == 400
    assert bravo.pk != alpha.pk


def test_an_expired_ticket_is_refused(web, world):
    with time_machine.travel(-11 * 60, tick=False):
        ticket = welcome_ticket(tenant_id=world.tenant_a.pk, user_id=1)
    response = http(
        "GET", f"{web.url}/dashboard/welcome?ticket={ticket}", headers={"Host": "alpha.localhost"}
    )
    assert response.status == 400


def test_sign_up_pages_live_on_the_platform_host_only(web, world):
    assert http("GET", f"{web.url}/signup", headers={"Host": "alpha.localhost"}).status == 404
    landing = http("GET", f"{web.url}/", headers={"Host": "localhost"})
    assert landing.status == 200
    assert 'href="/signup"' in landing.body
    page = http("GET", f"{web.url}/signup", headers={"Host": "localhost"})
    assert "script-src 'self'" in page.headers.get("content-security-policy", "")


def test_the_page_is_limited_like_the_api(db, world):
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=forwarded_for())
    for n in range(5):
        response = client.post(
            "/signup",
            {"name": f"Limit {n}", "slug": f"page-rl-{n}", "email": "a@example.com",
             "password": PASSWORD},
        )  # fmt: skip
        assert response.status_code == 302, response.content
        assert client.get(response["Location"]).status_code == 200
    limited = client.post(
        "/signup",
        {"name": "Limit 6", "slug": "page-rl-6", "email": "a@example.com", "password": PASSWORD},
    )
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert b"Too many sign-ups from your network" in limited.content
    assert not Tenant.objects.filter(slug="page-rl-6").exists()


def test_the_result_page_shows_the_key_once(db, world):
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=forwarded_for())
    response = client.post(
        "/signup",
        {"name": "Once", "slug": "once-co", "email": "a@example.com", "password": PASSWORD},
    )
    assert response["Location"] == "/signup/done"
    done = client.get("/signup/done")
    assert done.status_code == 200
    assert done["Cache-Control"] == "no-store"
    assert b"sk_" in done.content
    again = client.get("/signup/done")
    assert again.status_code == 302
    assert again["Location"] == "/signup"


def test_tenant_content_is_escaped_on_the_result_page(db, world):
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=forwarded_for())
    name = '<script>alert("x")</script> & Co'
    client.post(
        "/signup",
        {"name": name, "slug": "escape-co", "email": "a@example.com", "password": PASSWORD},
    )
    done = client.get("/signup/done").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co is ready" in done
    assert "<script>alert" not in done
