"""The served OpenAPI schema is valid, warning-free, and documents every API route served."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from drf_spectacular.validation import validate_schema

from tests.support.api import Caller

# Both URLconfs: the platform host's (sign-up) and the tenant hosts'.
URLCONFS = ("herald.urls_public", "herald.urls")
API_PREFIX = "api/v1/"


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern):
            continue  # the catch-all ``re_path`` that answers unknown API paths with a 404
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        else:
            yield route, entry.callback


def api_routes() -> set[tuple[str, str]]:
    """Every (method, path) the URLconfs serve under ``/api/v1/``, parameters as ``{}``."""
    served = set()
    for urlconf in URLCONFS:
        for route, callback in _routes(get_resolver(urlconf).url_patterns):
            if not route.startswith(API_PREFIX):
                continue
            view = getattr(callback, "cls", None)
            assert view is not None, f"/{route} is not a DRF view: the schema cannot document it"
            path = "/" + re.sub(r"<[^>]+>", "{}", route)
            served |= {
                (method, path)
                for method in view.http_method_names
                if method not in ("options", "head", "trace") and hasattr(view, method)
            }
    return served


def documented_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in schema["paths"].items()
        for method in operations
    }


@pytest.fixture
def schema(db, world):
    response = Caller(host="localhost").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_generation_has_no_warnings(db, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


def test_every_api_route_is_documented_and_nothing_else(schema):
    """Derived from the URLconfs: a new route without docs fails here, as does a documented
    route that nothing serves."""
    served = api_routes()
    assert {("post", "/api/v1/signup"), ("get", "/api/v1/usage/report")} <= served
    assert ("get", "/api/v1/me/widget") in served
    assert sorted(served - documented_routes(schema)) == []
    assert sorted(documented_routes(schema) - served) == []


def test_operational_endpoints_stay_out_of_the_schema(schema):
    # Schemathesis fuzzes every documented path: the scrape endpoint and probes are not API.
    assert not {"/metrics", "/healthz", "/readyz"} & set(schema["paths"])


def test_operations_document_auth_and_errors(schema):
    send = schema["paths"]["/api/v1/notifications"]["post"]
    assert {next(iter(r)) for r in send["security"]} == {"ApiKey", "AdminToken"}
    assert {"202", "400", "401", "403", "409", "429"} <= set(send["responses"])
    assert send["requestBody"]["content"]["application/json"]["examples"]
    inbox = schema["paths"]["/api/v1/me/notifications"]["get"]
    assert [next(iter(r)) for r in inbox["security"]] == ["EndUserToken"]
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "AdminToken", "EndUserToken"}


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_browsable_docs_are_served(db, world, path):
    response = Caller(host="localhost").get(path)
    assert response.status_code == 200
    assert b"/api/schema/" in response.content


def _component(schema, name):
    return schema["components"]["schemas"][name]


def _parameter(schema, path, method, name):
    operation = schema["paths"][path][method]
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]


def test_the_schema_states_what_the_api_enforces(schema):
    """The mismatches schemathesis found, one line each (test_schemathesis.py runs them all)."""
    limit = _parameter(schema, "/api/v1/notifications", "get", "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
    key = _parameter(schema, "/api/v1/notifications", "post", "Idempotency-Key")
    assert (key["minLength"], key["maxLength"]) == (1, 255)
    send = _component(schema, "SendRequest")
    assert send["additionalProperties"] is False
    assert send["properties"]["channels"]["minItems"] == 1
    assert send["properties"]["data"]["type"] == "object"
    tenant = _component(schema, "Tenant")["properties"]
    for field in ("sender_email", "logo_url"):  # "" when unset: offered beside the format
        assert {"type": "string", "maxLength": 0} in tenant[field]["oneOf"]
    assert _component(schema, "PatchedInboxPatchRequest").get("required") is None
    types = _component(schema, "PreferencesRequest")["properties"]["types"]
    assert types["x-propertyNames"] == {"pattern": r"^[a-z0-9][a-z0-9_.-]{0,99}$"}
    echoed = _component(schema, "TypeUpsertRequest")["properties"]
    assert all(echoed[name]["readOnly"] for name in ("key", "created_at", "updated_at"))


def test_every_status_the_api_answers_is_documented(schema):
    responses = {
        (path, method): set(operation["responses"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert "200" in responses[("/api/v1/sends/{send_id}", "delete")]  # cancel answers the send
    assert "401" in responses[("/api/v1/auth/token", "post")]
    assert "401" in responses[("/api/v1/auth/token/refresh", "post")]
    assert "404" in responses[("/api/v1/signup", "post")]  # on a tenant host
    for (path, method), codes in responses.items():
        assert "429" in codes, (method, path)
        error = schema["paths"][path][method]["responses"]["429"]["content"]["application/json"]
        assert error["schema"] == {"$ref": "#/components/schemas/Error"}


def test_webhook_operations_document_credentials_secrets_and_conflicts(schema):
    paths = schema["paths"]
    operations = [
        (path, method, operation)
        for path, methods in paths.items()
        if path.startswith(("/api/v1/webhook-endpoints", "/api/v1/webhook-deliveries"))
        for method, operation in methods.items()
    ]
    assert len(operations) == 10
    for path, method, operation in operations:
        assert {next(iter(r)) for r in operation["security"]} == {"ApiKey", "AdminToken"}, path
        assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
        if "{" in path:
            assert "404" in operation["responses"], (method, path)
    created = paths["/api/v1/webhook-endpoints"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookEndpointCreated"
    }
    assert "secret" in _component(schema, "WebhookEndpointCreated")["properties"]
    assert "secret" not in _component(schema, "WebhookEndpoint")["properties"]
    for path in (
        "/api/v1/webhook-endpoints/{endpoint_id}/test",
        "/api/v1/webhook-deliveries/{delivery_id}/retry",
    ):
        assert {"202", "404", "409"} <= set(paths[path]["post"]["responses"]), path
    status = _parameter(schema, "/api/v1/webhook-deliveries", "get", "status")
    assert status["enum"] == ["failed", "queued", "sent", "suppressed_quota"]
    endpoint = _parameter(schema, "/api/v1/webhook-deliveries", "get", "endpoint")
    assert (endpoint["type"], endpoint["minimum"]) == ("integer", 1)
