"""Every 4xx/5xx is the contract's JSON error body; crashes reach Sentry tagged with the tenant."""

from __future__ import annotations

from typing import Any

import pytest
import sentry_sdk
from rest_framework.test import APIClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from herald.observability import init_sentry, tag_tenant


@pytest.fixture
def boom_urls(settings):
    settings.ROOT_URLCONF = "tests.herald.urls_boom"


def auth(admin) -> dict[str, str]:
    return {"HTTP_HOST": admin.host, "HTTP_AUTHORIZATION": f"Bearer {admin.api_key}"}


def test_unknown_api_path_is_json_404(api, world):
    response = api.get("/api/v1/no/such/thing", **auth(world.alice))
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No such resource: /api/v1/no/such/thing"}
    }


@pytest.mark.parametrize("fmt", ["csv", "api", "json"])
def test_a_format_query_parameter_is_ignored_not_a_404(api, world, fmt):
    response = api.get(f"/api/v1/tenant?format={fmt}", **auth(world.alice))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["slug"] == world.tenant_a.slug


def test_the_schema_still_takes_its_format_from_the_query(api, world):
    response = api.get("/api/schema/?format=json", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert api.get("/api/schema/", HTTP_HOST="localhost")["Content-Type"].startswith(
        "application/vnd.oai.openapi"
    )


def test_wrong_method_is_json_405(api, world):
    response = api.delete("/api/v1/tenant", **auth(world.alice))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_validation_errors_name_the_fields(api, world, boom_urls):
    response = api.post(
        "/api/v1/_echo", {"count": 0, "items": ["a", "b", "c"]}, format="json", **auth(world.alice)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]) == {"count", "items"}
    assert all(isinstance(msg, str) for msgs in error["details"].values() for msg in msgs)


def test_malformed_json_is_400(api, world, boom_urls):
    response = api.generic(
        "POST", "/api/v1/_echo", "{not json", content_type="application/json", **auth(world.alice)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "Malformed request body" in response.json()["error"]["message"]


def test_wrong_content_type_is_415(api, world, boom_urls):
    response = api.generic(
        "POST", "/api/v1/_echo", "count=1", content_type="text/plain", **auth(world.alice)
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


class CapturingTransport(Transport):
    """Sentry's servers are a true external: this transport keeps what the real SDK would send."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events():
    transport = CapturingTransport()
    init_sentry(dsn="http://public@127.0.0.1:9/1", environment="test", transport=transport)
    yield transport.events
    sentry_sdk.init()  # back to a disabled client


def test_crash_is_json_500_and_reaches_sentry_tagged_with_the_tenant(
    db, world, boom_urls, sentry_events
):
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/_boom", **auth(world.bob))
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "server_error",
            "message": "An unexpected error occurred. It has been reported.",
        }
    }
    sentry_sdk.flush()
    crashes = [e for e in sentry_events if e.get("exception")]
    assert len(crashes) == 1
    assert crashes[0]["tags"]["tenant"] == "bravo"
    assert crashes[0]["exception"]["values"][-1]["value"] == "boom: an unexpected bug"


def test_task_errors_are_tagged_with_their_own_tenant_only(db, world, sentry_events):
    from notifications.tasks import in_tenant

    with sentry_sdk.isolation_scope():  # as Celery's integration gives each task
        tag_tenant(None)
        for tenant in (world.tenant_a, world.tenant_b):
            with in_tenant(tenant):
                sentry_sdk.capture_message(f"inside {tenant.slug}")
        sentry_sdk.capture_message("outside")
    sentry_sdk.flush()
    tags = {e["message"]: e.get("tags", {}).get("tenant") for e in sentry_events}
    assert tags == {
        f"inside {world.tenant_a.slug}": world.tenant_a.slug,
        f"inside {world.tenant_b.slug}": world.tenant_b.slug,
        "outside": "public",
    }
