"""The served OpenAPI schema is valid, warning-free, and has every route of the contract."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema

from tests.support.api import Caller

# The contract's routes delivered so far. Sign-up arrives with the dashboard issue and joins
# this list then.
CONTRACT_ROUTES = [
    ("get", "/api/v1/tenant"), ("patch", "/api/v1/tenant"),
    ("put", "/api/v1/users/{}"), ("get", "/api/v1/users/{}"), ("delete", "/api/v1/users/{}"),
    ("post", "/api/v1/users/{}/token"),
    ("post", "/api/v1/auth/token"), ("post", "/api/v1/auth/token/refresh"),
    ("post", "/api/v1/notifications"), ("get", "/api/v1/notifications"),
    ("get", "/api/v1/sends/{}"), ("delete", "/api/v1/sends/{}"), ("get", "/api/v1/deliveries"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/types"), ("get", "/api/v1/types/{}"), ("put", "/api/v1/types/{}"),
    ("get", "/api/v1/api-keys"), ("post", "/api/v1/api-keys"), ("delete", "/api/v1/api-keys/{}"),
    ("get", "/api/v1/me/notifications"), ("get", "/api/v1/me/notifications/unread_count"),
    ("patch", "/api/v1/me/notifications/{}"), ("post", "/api/v1/me/notifications/read_all"),
    ("get", "/api/v1/me/preferences"), ("put", "/api/v1/me/preferences"),
]  # fmt: skip


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


def test_every_contract_route_is_documented(schema):
    documented = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    missing = [route for route in CONTRACT_ROUTES if route not in documented]
    assert missing == []


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
