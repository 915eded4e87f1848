"""API keys in the dashboard: create (shown once, copyable), list, revoke with confirmation;
the key works at once and stops working at once."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.dashboard.account_helpers import (
    admin_client,
)
from tests.dashboard.conftest import log_in
from tests.support.browser import screenshot
from tests.support.processes import http


def test_create_a_key_use_it_and_revoke_it(page, make_site):
    site = make_site("dash-keys", name="Keys <Inc>")
    log_in(page, site)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    expect(page).to_have_url(site.url("/dashboard/api-keys/"))
    rows = page.locator("#api-keys tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Default key")
    expect(rows.first).to_contain_text("owner@dash-keys.example.com")
    expect(rows.first).to_contain_text("Active")

    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-name-error")).to_have_text("This field may not be blank.")

    page.get_by_label("Name").fill('CI <deploy> "bot"')
    page.get_by_role("button", name="Create key").click()
    expect(page).to_have_url(site.url("/dashboard/api-keys/"))
    expect(page.get_by_role("heading", name='New key “CI <deploy> "bot"”')).to_be_visible()
    key = page.locator("#new-api-key").inner_text().strip()
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]{20,}", key)
    expect(page.get_by_role("note")).to_contain_text("shown only once")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    expect(rows).to_have_count(2)
    new_row = rows.first
    expect(new_row).to_contain_text('CI <deploy> "bot"')
    expect(new_row).to_contain_text(key[:11])
    expect(new_row).to_contain_text("Never")
    screenshot(page, "dash-api-key-created")

    host = {"Host": site.tenant.slug + ".localhost", "Authorization": f"Bearer {key}"}
    assert http("GET", f"{site.server.url}/api/v1/tenant", headers=host).status == 200

    # Shown once: a reload lists it without the secret.
    page.reload()
    expect(page.locator("#new-api-key")).to_have_count(0)
    assert key not in page.content()
    expect(new_row).to_contain_text("just now")  # last used

    # Revoke asks first; cancelling keeps the key.
    new_row.get_by_role("button", name="Revoke").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text('Revoke “CI <deploy> "bot"”')
    dialog.get_by_role("button", name="Cancel").click()
    expect(new_row).to_contain_text("Active")
    new_row.get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_contain_text("It no longer works.")
    expect(new_row).to_contain_text("Revoked")
    expect(new_row.get_by_role("button", name="Revoke")).to_have_count(0)
    screenshot(page, "dash-api-keys")

    revoked = http("GET", f"{site.server.url}/api/v1/tenant", headers=host)
    assert revoked.status == 401
    assert revoked.body["error"]["code"] == "unauthenticated"
    default_key = {**host, "Authorization": f"Bearer {site.api.token}"}
    assert http("GET", f"{site.server.url}/api/v1/tenant", headers=default_key).status == 200


def test_a_name_too_long_is_refused_and_creates_nothing(db, world):
    client = admin_client(world.tenant_a, world.alice.email)
    response = client.post("/dashboard/api-keys/", {"name": "k" * 101})
    assert response.status_code == 400
    assert b"Ensure this field has no more than 100 characters." in response.content
    assert b"New key" not in response.content


def test_revoking_twice_says_so(db, world):
    client = admin_client(world.tenant_a, world.alice.email)
    client.post("/dashboard/api-keys/", {"name": "twice"})
    key_id = client.get("/dashboard/api-keys/").context["keys"][0].pk
    assert client.post(f"/dashboard/api-keys/{key_id}/revoke").status_code == 302
    again = client.post(f"/dashboard/api-keys/{key_id}/revoke", follow=True)
    assert "was already revoked" in again.content.decode()


def test_revoke_is_post_only(db, world):
    client = admin_client(world.tenant_a, world.alice.email)
    key_id = client.get("/dashboard/api-keys/").context["keys"][0].pk
    assert client.get(f"/dashboard/api-keys/{key_id}/revoke").status_code == 405
