"""GET /api/v1/me/widget: the tenant's branding and the user's locale, for the end user only."""

from __future__ import annotations

from django_tenants.utils import schema_context

from notifications.models import EndUser
from tenants.services import tenant_update
from tests.support.api import error_code


def test_the_end_user_gets_the_branding_of_their_tenant_and_their_locale(erin, world):
    tenant_update(tenant=world.tenant_a, fields={"brand_color": "#0f766e"})
    with schema_context(world.tenant_a.schema_name):
        EndUser.objects.filter(external_id="user-1").update(locale="de-DE")
    response = erin.get("/api/v1/me/widget")
    assert response.status_code == 200
    assert response.json() == {
        "name": "Alpha Corp",
        "brand_color": "#0f766e",
        "logo_url": "",
        "locale": "de-DE",
    }
    assert "RateLimit-Limit" in response


def test_server_credentials_are_refused_and_tokens_stay_in_their_tenant(
    alice_key, erin, bravo_user, world
):
    assert alice_key.get("/api/v1/me/widget").status_code == 403
    # Tenant B's user on tenant A's host: 401; on B's host they see B's branding only.
    response = erin.get("/api/v1/me/widget", HTTP_HOST=world.bob.host)
    assert response.status_code == 401
    assert error_code(response) == "unauthenticated"
    assert bravo_user.get("/api/v1/me/widget").json()["name"] == "Bravo Ltd"


def test_it_is_in_the_openapi_schema(api, world):
    schema = api.get("/api/schema/", {"format": "json"}, HTTP_HOST="localhost").json()
    operation = schema["paths"]["/api/v1/me/widget"]["get"]
    assert [next(iter(r)) for r in operation["security"]] == ["EndUserToken"]
    assert {"200", "401", "403"} <= set(operation["responses"])
