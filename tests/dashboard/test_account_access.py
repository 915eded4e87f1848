"""Who reaches the account pages: only the host tenant's signed-in admins, only their own
objects (another tenant's key id is a 404), always with CSRF, with tenant content escaped."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from tenants.models import ApiKey, Tenant
from tenants.services import tenant_provision
from tests.dashboard.account_helpers import admin_client

PAGES = [
    "/dashboard/",
    "/dashboard/api-keys/",
    "/dashboard/webhooks/",
    "/dashboard/settings/",
    "/dashboard/usage",
]


def alpha_key(world) -> ApiKey:
    return ApiKey.objects.filter(tenant=world.tenant_a, revoked_at__isnull=True).first()


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(db, world, path):
    response = Client(HTTP_HOST="alpha.localhost").get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login?next=")


def test_anonymous_revoke_goes_to_sign_in_and_revokes_nothing(db, world):
    key = alpha_key(world)
    response = Client(HTTP_HOST="alpha.localhost").post(f"/dashboard/api-keys/{key.pk}/revoke")
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login")
    key.refresh_from_db()
    assert key.is_active


def test_another_tenants_key_is_a_404_for_an_admin(db, world):
    key = alpha_key(world)
    bob = admin_client(world.tenant_b, world.bob.email)
    response = bob.post(f"/dashboard/api-keys/{key.pk}/revoke")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert bob.post("/dashboard/api-keys/999999/revoke").status_code == 404  # same as missing
    key.refresh_from_db()
    assert key.is_active
    listed = bob.get("/dashboard/api-keys/").content.decode()
    assert key.prefix not in listed
    bravo_prefixes = ApiKey.objects.filter(tenant=world.tenant_b).values_list("prefix", flat=True)
    assert all(prefix in listed for prefix in bravo_prefixes)


def test_a_session_of_tenant_a_means_nothing_on_tenant_bs_host(db, world):
    alice = admin_client(world.tenant_a, world.alice.email)
    assert alice.get("/dashboard/api-keys/").status_code == 200
    for path in PAGES:
        response = alice.get(path, HTTP_HOST="bravo.localhost")
        assert response.status_code == 302, path
        assert response["Location"].startswith("/dashboard/login")


def test_settings_change_only_the_hosts_tenant(db, world):
    bob = admin_client(world.tenant_b, world.bob.email)
    values = {"sender_name": "Bravo Mail", "sender_email": "", "brand_color": "#111111",
              "logo_url": ""}  # fmt: skip
    assert bob.post("/dashboard/settings/", values).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_b.pk).sender_name == "Bravo Mail"
    assert Tenant.objects.get(pk=world.tenant_a.pk).sender_name != "Bravo Mail"


@pytest.mark.parametrize("path", [*PAGES, "/dashboard/welcome", "/dashboard/password-reset"])
def test_account_pages_are_not_on_the_platform_host(db, world, path):
    assert Client(HTTP_HOST="localhost").get(path).status_code == 404


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/dashboard/api-keys/", {"name": "csrf"}),
        ("/dashboard/settings/", {"sender_name": "csrf", "brand_color": "#000000"}),
    ],
)
def test_changes_need_the_csrf_token(db, world, path, data):
    client = admin_client(world.tenant_a, world.alice.email, enforce_csrf_checks=True)
    response = client.post(path, data)
    assert response.status_code == 403
    assert b"Form expired" in response.content
    assert not ApiKey.objects.filter(name="csrf").exists()
    assert Tenant.objects.get(pk=world.tenant_a.pk).sender_name != "csrf"


def test_a_revoke_needs_the_csrf_token(db, world):
    key = alpha_key(world)
    client = admin_client(world.tenant_a, world.alice.email, enforce_csrf_checks=True)
    assert client.post(f"/dashboard/api-keys/{key.pk}/revoke").status_code == 403
    key.refresh_from_db()
    assert key.is_active


def test_tenant_content_is_escaped_everywhere(db, world):
    evil = '<script>alert("x")</script>'
    result = tenant_provision(
        slug="evil-co", name=evil, admin_email="owner@evil.example.com",
        admin_password="a-long-test-passphrase-42",
    )  # fmt: skip
    client = admin_client(result.tenant, "owner@evil.example.com")
    client.post("/dashboard/api-keys/", {"name": evil})
    values = {"sender_name": evil, "sender_email": "", "brand_color": "#4f46e5", "logo_url": ""}
    assert client.post("/dashboard/settings/", values).status_code == 302
    with schema_context(result.tenant.schema_name):
        assert get_user_model().objects.count() == 1
    for path in PAGES:
        html = client.get(path).content.decode()
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html, path
