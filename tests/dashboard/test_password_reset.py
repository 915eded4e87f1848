"""Password reset by email on the tenant's host: a real SMTP server receives the link; the link
sets a new password once, and means nothing on another tenant's host."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from playwright.sync_api import expect

from tests.dashboard.account_helpers import (
    forwarded_for,
)
from tests.dashboard.conftest import Site, log_in
from tests.support.browser import screenshot
from tests.support.personas import PASSWORD, committed_tenant
from tests.support.processes import running_web, wait_until
from tests.support.smtp import smtp_sink

NEW_PASSWORD = "brand new pass phrase 77"
LINK = re.compile(r"http://[a-z0-9.-]+:\d+/dashboard/reset/[\w-]+/[\w-]+")


def test_reset_by_email_then_sign_in_with_the_new_password(page, committed, browser):
    with smtp_sink() as sink, running_web(EMAIL_URL=sink.url) as server:
        here = Site(*committed_tenant(committed, "pw-here", "Reset & Co"), server,
                    "owner@pw-here.example.com", PASSWORD)  # fmt: skip
        there = Site(*committed_tenant(committed, "pw-there", "Elsewhere"), server,
                     "owner@pw-there.example.com", PASSWORD)  # fmt: skip
        page.context.set_extra_http_headers({"X-Forwarded-For": forwarded_for()})

        page.goto(here.url("/dashboard/login"))
        page.get_by_role("link", name="Forgot your password?").click()
        expect(page).to_have_url(here.url("/dashboard/password-reset"))
        page.get_by_label("Email").fill("OWNER@pw-here.example.com")
        screenshot(page, "password-reset")
        page.get_by_role("button", name="Email me a reset link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        # An unknown address gets the very same answer, and no email.
        page.goto(here.url("/dashboard/password-reset"))
        page.get_by_label("Email").fill("nobody@pw-here.example.com")
        page.get_by_role("button", name="Email me a reset link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        message = wait_until(lambda: sink.to(here.email), timeout=15, what="the reset email")[0]
        assert "Reset & Co" in message["Subject"]
        link = LINK.search(message.get_content()).group(0)
        assert link.startswith(here.url("/dashboard/reset/"))

        # Tenant A's link on tenant B's host: refused, even though both admins are user 1.
        page.goto(link.replace("pw-here.localhost", "pw-there.localhost"))
        expect(page.get_by_role("heading")).to_have_text("This link no longer works")

        page.goto(link)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        assert "/set-password" in page.url  # the token left the address bar
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_label("Repeat it").fill(NEW_PASSWORD + "x")
        page.get_by_role("button", name="Set password").click()
        expect(page.locator("#password2-error")).to_contain_text("two password fields")
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_label("Repeat it").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

        page.get_by_role("link", name="Sign in").click()
        log_in(page, here, password=PASSWORD)
        expect(page.get_by_role("alert")).to_be_visible()  # the old password is gone
        log_in(page, here, password=NEW_PASSWORD)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        # Used once; and the other tenant's admin keeps their own password.
        page.goto(link)
        expect(page.get_by_role("heading")).to_have_text("This link no longer works")
        fresh = browser.new_context()
        try:
            other = fresh.new_page()
            log_in(other, there)
            expect(other.get_by_role("heading", name="Overview")).to_be_visible()
        finally:
            fresh.close()
        # One email to the two tenants' people (the worker may also send what earlier tests left
        # queued for theirs).
        assert [m["To"] for m in sink.received() if "@pw-" in str(m["To"])] == [here.email]


def test_reset_emails_are_limited_per_ip_with_a_message(db, world):
    client = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR=forwarded_for())
    for _ in range(5):
        response = client.post("/dashboard/password-reset", {"email": "x@example.com"})
        assert response.status_code == 302
        assert response["Location"] == "/dashboard/password-reset/sent"
    limited = client.post("/dashboard/password-reset", {"email": "x@example.com"})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert b"Too many requests from your network" in limited.content


def test_one_address_gets_at_most_three_emails_an_hour_without_saying_so(db, world):
    mail.outbox.clear()
    for _ in range(4):
        client = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR=forwarded_for())
        response = client.post("/dashboard/password-reset", {"email": world.alice.email})
        assert response.status_code == 302
        assert response["Location"] == "/dashboard/password-reset/sent"
    wait_until(lambda: len(mail.outbox) >= 3, timeout=10, what="three reset emails")
    with pytest.raises(TimeoutError):
        wait_until(lambda: len(mail.outbox) > 3, timeout=1, what="a fourth email")
    assert all(m.to == [world.alice.email] for m in mail.outbox)
    assert "http://alpha.localhost/dashboard/reset/" in mail.outbox[0].body


def test_an_invalid_address_is_a_field_error(db, world):
    client = Client(HTTP_HOST="alpha.localhost", REMOTE_ADDR=forwarded_for())
    response = client.post("/dashboard/password-reset", {"email": "not an email"})
    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content


def test_password_reset_is_not_on_the_platform_host(db, world):
    client = Client(HTTP_HOST="localhost")
    assert client.get("/dashboard/password-reset").status_code == 404
