"""GET /api/v1/me/widget: the tenant's branding, the user's locale and the tenant's replacements
of the widget's strings, for the end user only. An admin sets the replacements with
PATCH /api/v1/tenant."""

from __future__ import annotations

from django_tenants.utils import schema_context

from notifications.models import EndUser
from tenants.services import tenant_update
from tests.support.api import error_code
from widget.locales import OVERRIDE_MAX_LENGTH


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
        "strings": {},
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


def test_an_admin_sets_string_overrides_that_the_widget_then_gets(alice_admin, erin):
    body = {"widget_strings": {"de-AT": {"title": "Mitteilungen"}, "en": {"empty": "Inbox zero"}}}
    response = alice_admin.patch("/api/v1/tenant", body)
    assert response.status_code == 200, response.content
    stored = {"de-AT": {"title": "Mitteilungen"}, "en": {"empty": "Inbox zero"}}
    assert response.json()["widget_strings"] == stored
    assert alice_admin.get("/api/v1/tenant").json()["widget_strings"] == stored
    assert erin.get("/api/v1/me/widget").json()["strings"] == stored
    # The whole object is replaced: {} removes every override.
    assert alice_admin.patch("/api/v1/tenant", {"widget_strings": {}}).status_code == 200
    assert erin.get("/api/v1/me/widget").json()["strings"] == {}


def test_overrides_name_known_strings_and_locales_in_plain_text(alice_admin, alice_key):
    bad = [
        {"de": {"no_such_key": "x"}},
        {"klingon-XX-1": {"title": "x"}},
        {"de_at": {"title": "x"}},
        {"DE": {"title": "x"}},
        {"de": {"title": ""}},
        {"de": {"title": 5}},
        {"de": {"title": "a" * (OVERRIDE_MAX_LENGTH + 1)}},
        {"de": {"title": "two\nlines"}},
        {"de": "Mitteilungen"},
        ["de"],
        {f"de-{n:03d}": {"title": "x"} for n in range(51)},
    ]
    for strings in bad:
        response = alice_admin.patch("/api/v1/tenant", {"widget_strings": strings})
        assert response.status_code == 400, strings
        assert error_code(response) == "invalid"
        assert "widget_strings" in response.json()["error"]["details"], response.json()
    # A secret API key reads the tenant but may not change it.
    assert alice_key.patch("/api/v1/tenant", {"widget_strings": {}}).status_code == 403
