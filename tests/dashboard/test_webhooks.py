"""Webhooks in the dashboard: create (the secret shown once), edit the URL and filters, enable
and disable, rotate the secret (shown once), send a test event, delete, and each endpoint's
recent deliveries with their attempts and a retry for failed ones; refusals as form errors and
messages; nothing of another tenant's reachable."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.services.webhook_endpoints import webhook_endpoint_create
from notifications.webhooks.events import webhook_message_id
from tests.billing.test_limits import override
from tests.dashboard.account_helpers import admin_client
from tests.dashboard.conftest import Site, log_in
from tests.support.browser import screenshot
from tests.support.personas import PASSWORD, committed_tenant
from tests.support.processes import Server, running_web

URL = "http://127.0.0.2:9/herald"  # inside the tests' allowed network; nothing connects
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


@pytest.fixture(autouse=True)
def receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)


@pytest.fixture
def alice(db, world):
    return admin_client(world.tenant_a, world.alice.email)


@pytest.fixture
def bob(db, world):
    return admin_client(world.tenant_b, world.bob.email)


def endpoint_in(tenant, **fields) -> WebhookEndpoint:
    with schema_context(tenant.schema_name):
        return webhook_endpoint_create(tenant=tenant, **{"url": URL, **fields})[0]


def delivery_in(tenant, endpoint, *, status="failed", **fields) -> WebhookDelivery:
    now = timezone.now()
    with schema_context(tenant.schema_name):
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            event="notification.created",
            msg_id=webhook_message_id(),
            body="{}",
            occurred_at=now,
            status=status,
            created_at=now,
            updated_at=now,
            **fields,
        )


def secrets_in(response) -> list[str]:
    return SECRET.findall(response.content.decode())


def test_the_list_is_in_the_navigation_and_shows_the_endpoints(alice, world):
    endpoint_in(world.tenant_a, description="CRM", events=["delivery.failed"])
    response = alice.get("/dashboard/webhooks/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/dashboard/webhooks/" aria-current="page"' in page
    assert "CRM" in page
    assert "delivery.failed" in page
    assert not secrets_in(response)


def test_create_shows_the_secret_once_on_the_next_page(alice, world):
    response = alice.post(
        "/dashboard/webhooks/",
        {
            "url": URL,
            "description": "CRM",
            "events": ["notification.created", "delivery.sent"],
            "types": "billing.invoice, comment.created\nx",
        },
    )
    assert response.status_code == 302
    with schema_context(world.tenant_a.schema_name):
        endpoint = WebhookEndpoint.objects.get()
    assert response["Location"] == f"/dashboard/webhooks/{endpoint.pk}"
    assert (endpoint.description, endpoint.events, endpoint.types) == (
        "CRM",
        ["notification.created", "delivery.sent"],
        ["billing.invoice", "comment.created", "x"],
    )
    shown = alice.get(response["Location"])
    assert len(set(secrets_in(shown))) == 1
    assert "shown only once" in shown.content.decode()
    again = alice.get(response["Location"])
    assert again.status_code == 200
    assert not secrets_in(again)


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"url": "http://127.0.0.1/hook"}, "url", ""),
        ({"url": "https://10.0.0.1/hook"}, "url", ""),
        ({"url": ""}, "url", "This field is required."),
        ({"url": URL, "types": "Not-A-Key!"}, "types", "Not a valid type key"),
        ({"url": URL, "events": ["user.deleted"]}, "events", "Select a valid choice"),
    ],
)
def test_refused_input_is_a_form_error_and_creates_nothing(alice, world, fields, field, text):
    response = alice.post("/dashboard/webhooks/", fields)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors
    assert text in " ".join(errors[field])
    with schema_context(world.tenant_a.schema_name):
        assert not WebhookEndpoint.objects.exists()


def test_the_plan_limit_is_a_form_error(alice, world):
    override(world.tenant_a, max_webhook_endpoints=1)
    endpoint_in(world.tenant_a)
    response = alice.post("/dashboard/webhooks/", {"url": URL})
    assert response.status_code == 400
    assert "At most 1 webhook endpoints" in " ".join(response.context["form"].errors["url"])


def test_edit_the_url_description_and_filters(alice, world):
    endpoint = endpoint_in(world.tenant_a, events=["delivery.sent"], types=["a"])
    path = f"/dashboard/webhooks/{endpoint.pk}"
    form = alice.get(path).context["form"]
    assert form.initial == {
        "url": URL,
        "description": "",
        "events": ["delivery.sent"],
        "types": "a",
    }
    response = alice.post(
        path, {"url": "http://127.0.0.2:10/new", "description": "Billing", "types": ""}
    )
    assert response.status_code == 302
    with schema_context(world.tenant_a.schema_name):
        endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.events, endpoint.types) == (
        "http://127.0.0.2:10/new",
        "Billing",
        [],
        [],
    )
    assert "Endpoint saved." in alice.get(path).content.decode()


def test_an_edit_to_a_refused_address_changes_nothing(alice, world, settings):
    endpoint = endpoint_in(world.tenant_a, description="Kept")
    settings.WEBHOOK_ALLOWED_CIDRS = ()
    response = alice.post(
        f"/dashboard/webhooks/{endpoint.pk}", {"url": "https://192.168.0.1/", "description": "x"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["url"]
    with schema_context(world.tenant_a.schema_name):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).description == "Kept"


def test_disable_and_enable(alice, world):
    endpoint = endpoint_in(world.tenant_a)
    path = f"/dashboard/webhooks/{endpoint.pk}"
    assert alice.post(f"{path}/enabled", {"enabled": "false"}).status_code == 302
    with schema_context(world.tenant_a.schema_name):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_reason="Failing.")
    page = alice.get(path).content.decode()
    assert "Disabled by Herald: Failing." in page
    assert alice.post(f"{path}/enabled", {"enabled": "true"}).status_code == 302
    with schema_context(world.tenant_a.schema_name):
        fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (fresh.enabled, fresh.disabled_reason) == (True, "")


def test_rotate_shows_the_new_secret_once(alice, world):
    response = alice.post("/dashboard/webhooks/", {"url": URL})
    path = response["Location"]
    first = secrets_in(alice.get(path))[0]
    rotated = alice.post(f"{path}/rotate-secret")
    assert rotated["Location"] == path
    shown = alice.get(path)
    assert "New signing secret" in shown.content.decode()
    second = secrets_in(shown)[0]
    assert second != first
    assert not secrets_in(alice.get(path))


def test_send_a_test_event(alice, world):
    endpoint = endpoint_in(world.tenant_a, events=["delivery.failed"])
    path = f"/dashboard/webhooks/{endpoint.pk}"
    assert alice.post(f"{path}/test")["Location"] == path
    with schema_context(world.tenant_a.schema_name):
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.event, delivery.status) == ("webhook.test", "queued")
    page = alice.get(path).content.decode()
    assert "Test event queued" in page
    assert "webhook.test" in page


def test_a_test_event_to_a_disabled_endpoint_is_refused_with_a_message(alice, world):
    endpoint = endpoint_in(world.tenant_a, enabled=False)
    path = f"/dashboard/webhooks/{endpoint.pk}"
    alice.post(f"{path}/test")
    assert "enable it first" in alice.get(path).content.decode()
    with schema_context(world.tenant_a.schema_name):
        assert not WebhookDelivery.objects.exists()


def test_delete(alice, world):
    endpoint = endpoint_in(world.tenant_a)
    path = f"/dashboard/webhooks/{endpoint.pk}"
    page = alice.get(path).content.decode()
    assert 'data-confirm="Delete the endpoint' in page
    response = alice.post(f"{path}/delete")
    assert response["Location"] == "/dashboard/webhooks/"
    assert alice.get(path).status_code == 404
    assert alice.post(f"{path}/delete").status_code == 404


def test_deliveries_show_attempts_and_failed_ones_can_be_retried(alice, world):
    endpoint = endpoint_in(world.tenant_a)
    failed = delivery_in(world.tenant_a, endpoint, attempts=8, last_status_code=502)
    sent = delivery_in(world.tenant_a, endpoint, status="sent", attempts=1, last_status_code=200)
    with schema_context(world.tenant_a.schema_name):
        WebhookAttempt.objects.create(
            delivery=failed,
            attempted_at=timezone.now() - timedelta(minutes=1),
            status_code=502,
            latency_ms=1234,
            response_excerpt="Bad gateway <b>upstream</b>",
        )
        WebhookAttempt.objects.create(
            delivery=failed, attempted_at=timezone.now(), error="Connection refused."
        )
    path = f"/dashboard/webhooks/{endpoint.pk}"
    page = alice.get(path).content.decode()
    assert "1234 ms" in page
    assert "Bad gateway &lt;b&gt;upstream&lt;/b&gt;" in page
    assert "Connection refused." in page
    assert f'action="/dashboard/webhooks/deliveries/{failed.pk}/retry"' in page
    assert f'action="/dashboard/webhooks/deliveries/{sent.pk}/retry"' not in page

    assert alice.post(f"/dashboard/webhooks/deliveries/{failed.pk}/retry")["Location"] == path
    with schema_context(world.tenant_a.schema_name):
        failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.locked_until) == ("queued", 0, None)
    assert f"Delivery #{failed.pk} queued again." in alice.get(path).content.decode()

    alice.post(f"/dashboard/webhooks/deliveries/{sent.pk}/retry")
    assert "Only a failed delivery can be retried" in alice.get(path).content.decode()
    with schema_context(world.tenant_a.schema_name):
        assert WebhookDelivery.objects.get(pk=sent.pk).status == "sent"


def test_another_tenants_admin_reaches_nothing(alice, bob, world):
    endpoint = endpoint_in(world.tenant_a, description="A's CRM")
    delivery = delivery_in(world.tenant_a, endpoint)
    path = f"/dashboard/webhooks/{endpoint.pk}"
    assert bob.get(path).status_code == 404
    for action, data in (
        ("", {"url": URL, "description": "taken"}),
        ("/enabled", {"enabled": "false"}),
        ("/rotate-secret", {}),
        ("/test", {}),
        ("/delete", {}),
    ):
        assert bob.post(path + action, data).status_code == 404, action
    assert bob.post(f"/dashboard/webhooks/deliveries/{delivery.pk}/retry").status_code == 404
    assert "A&#x27;s CRM" not in bob.get("/dashboard/webhooks/").content.decode()
    with schema_context(world.tenant_a.schema_name):
        fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert (fresh.description, fresh.enabled) == ("A's CRM", True)
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
        assert WebhookDelivery.objects.count() == 1
    # Alice's session means nothing on tenant B's host.
    alice.defaults["HTTP_HOST"] = f"{world.tenant_b.slug}.localhost"
    assert alice.get("/dashboard/webhooks/").status_code == 302


def test_signed_out_visitors_go_to_the_login_page_and_actions_are_post_only(db, world, alice):
    from django.test import Client

    anonymous = Client(HTTP_HOST=f"{world.tenant_a.slug}.localhost")
    response = anonymous.get("/dashboard/webhooks/")
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login")
    endpoint = endpoint_in(world.tenant_a)
    assert anonymous.post(f"/dashboard/webhooks/{endpoint.pk}/delete").status_code == 302
    assert alice.get(f"/dashboard/webhooks/{endpoint.pk}/delete").status_code == 405
    with schema_context(world.tenant_a.schema_name):
        assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


# --- In the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receivers_web(world: Any, django_db_blocker: Any) -> Iterator[Server]:
    """A web process that lets endpoints reach the tests' receiver address."""
    with django_db_blocker.unblock(), running_web(WEBHOOK_ALLOWED_CIDRS="127.0.0.2/32") as server:
        yield server


def test_create_see_the_secret_once_edit_and_disable(page, committed, receivers_web):
    tenant, api = committed_tenant(committed, "dash-hooks", "Hooks Corp")
    site = Site(tenant, api, receivers_web, "owner@dash-hooks.example.com", PASSWORD)
    log_in(page, site)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(site.url("/dashboard/webhooks/"))
    expect(page.locator("#webhook-endpoints tbody")).to_contain_text("No webhook endpoints yet")

    page.get_by_label("URL").fill("http://127.0.0.1/hook")  # loopback: refused
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".has-error")).to_contain_text("127.0.0.1")

    page.get_by_label("URL").fill(URL)
    page.get_by_label("Description").fill("CRM <prod>")
    page.get_by_label("notification.created").check()
    page.get_by_label("Notification types").fill("billing.invoice")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page).to_have_url(re.compile(r"/dashboard/webhooks/\d+$"))
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert SECRET.fullmatch(secret)
    expect(page.get_by_role("note")).to_contain_text("shown only once")
    screenshot(page, "dash-webhook-created")

    page.reload()  # shown once
    expect(page.locator("#webhook-secret")).to_have_count(0)
    assert secret not in page.content()

    page.get_by_label("Description").fill("CRM")
    page.get_by_label("delivery.failed").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint saved.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("CRM")

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint disabled")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Disabled")
    expect(page.get_by_role("button", name="Send test event")).to_be_disabled()
    screenshot(page, "dash-webhook-disabled")

    listed = api.get("/api/v1/webhook-endpoints").json()["results"]
    assert [
        (row["description"], row["events"], row["types"], row["enabled"]) for row in listed
    ] == [("CRM", ["notification.created", "delivery.failed"], ["billing.invoice"], False)]
