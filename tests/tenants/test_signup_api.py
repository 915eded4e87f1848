"""POST /api/v1/signup and the slug check: the platform host's self-serve sign-up.

All or nothing (a bad field creates nothing, a race for a slug creates one tenant), per-field
errors in the contract's shape, limited per IP, and absent from tenant hosts.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import schema_context, schema_exists
from rest_framework.test import APIClient

from tenants.models import ApiKey, Domain, Tenant
from tests.support.api import Caller, error_code
from tests.support.processes import run_concurrently

GOOD = {
    "slug": "acme",
    "name": "Acme Inc.",
    "email": "Ops@Acme.example.com",
    "password": "correct horse battery staple",
}


def client_ip() -> str:
    """A client address of its own per test: the per-IP sign-up window is not rolled back."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def signup(body: dict, *, host: str = "localhost", ip: str | None = None):
    return APIClient().post(
        "/api/v1/signup", body, format="json", HTTP_HOST=host, REMOTE_ADDR=ip or client_ip()
    )


def registry_counts() -> tuple[int, int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
        schemas = cursor.fetchone()[0]
    return Tenant.objects.count(), Domain.objects.count(), ApiKey.objects.count(), schemas


def test_sign_up_creates_a_free_tenant_its_admin_and_a_working_key(db, world):
    response = signup(GOOD)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"slug", "domain", "api_key"}
    assert body["slug"] == "acme"
    assert body["domain"] == "acme.localhost"
    assert body["api_key"].startswith("sk_")
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(response.headers)

    tenant = Tenant.objects.get(slug="acme")
    assert tenant.plan.code == "free"
    assert tenant.name == "Acme Inc."
    with schema_context(tenant.schema_name):
        admin = get_user_model().objects.get()
        assert admin.email == "ops@acme.example.com"
        assert admin.check_password(GOOD["password"])

    key = Caller(host="acme.localhost", token=body["api_key"]).get("/api/v1/tenant")
    assert key.status_code == 200
    assert key.json()["slug"] == "acme"
    login = Caller(host="acme.localhost").post(
        "/api/v1/auth/token", {"email": "ops@acme.example.com", "password": GOOD["password"]}
    )
    assert login.status_code == 200
    # The new tenant's key is of no use on another tenant's host.
    assert (
        Caller(host="alpha.localhost", token=body["api_key"]).get("/api/v1/tenant").status_code
        == 401
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"slug": "Bad_Slug"}, "slug", "lowercase letters"),
        ({"slug": "x"}, "slug", "2 to 40 characters"),
        ({"slug": "9lives"}, "slug", "starting with a letter"),
        ({"slug": "a" * 41}, "slug", "2 to 40 characters"),
        ({"slug": ""}, "slug", "2 to 40 characters"),
        ({"slug": "www"}, "slug", "reserved"),
        ({"slug": "admin"}, "slug", "reserved"),
        ({"slug": "alpha"}, "slug", "already taken"),
        ({"slug": "ALPHA"}, "slug", "already taken"),
        ({"name": ""}, "name", "name is required"),
        ({"name": "   "}, "name", "name is required"),
        ({"name": "n" * 201}, "name", "at most 200"),
        ({"name": "Acme\r\nBcc: v@evil.example"}, "name", "control characters"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": ""}, "email", "valid email"),
        ({"password": "short1"}, "password", "too short"),
        ({"password": "password123"}, "password", "too common"),
        ({"password": "8209475610238"}, "password", "entirely numeric"),
        ({"password": "ops@acme.example.com"}, "password", "too similar"),
        ({"slug": 42}, "slug", "Must be a string"),
        ({"password": None}, "password", "may not be null"),
        ({"plan": "enterprise"}, "plan", "Unknown field"),
    ],
)
def test_each_invalid_field_is_named_and_nothing_is_created(db, world, overrides, field, message):
    before = registry_counts()
    response = signup({**GOOD, **overrides})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["details"]) == [field]
    assert message in " ".join(error["details"][field])
    assert registry_counts() == before


@pytest.mark.parametrize("missing", ["slug", "name", "email", "password"])
def test_a_missing_field_is_required(db, world, missing):
    body = {name: value for name, value in GOOD.items() if name != missing}
    response = signup(body)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {missing: ["This field is required."]}


def test_every_bad_field_is_reported_at_once(db, world):
    response = signup({"slug": "api", "name": "", "email": "x", "password": "1"})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"slug", "name", "email", "password"}


@pytest.mark.parametrize("body", ["not json", ["a", "list"]])
def test_a_body_that_is_not_an_object_is_a_400(db, world, body):
    response = APIClient().post(
        "/api/v1/signup",
        body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
        HTTP_HOST="localhost",
        REMOTE_ADDR=client_ip(),
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid"


def test_two_concurrent_sign_ups_for_one_slug_create_one_tenant(committed):
    committed.append("racer-co")
    body = {**GOOD, "slug": "racer-co"}
    outcomes = run_concurrently(lambda: signup(body))
    statuses = sorted(o.status_code for o in outcomes if not isinstance(o, BaseException))
    assert statuses == [201, 400], outcomes
    loser = next(o for o in outcomes if o.status_code == 400).json()["error"]
    assert loser["details"] == {"slug": ["'racer-co' is already taken."]}
    assert Tenant.objects.filter(slug="racer-co").count() == 1
    assert Domain.objects.filter(domain="racer-co.localhost").count() == 1
    assert schema_exists("t_racer_co")


def test_five_sign_ups_an_hour_per_ip_then_429_with_retry_after(db, world):
    ip = client_ip()
    # Invalid attempts create nothing and do not use up the allowance.
    for _ in range(3):
        assert signup({**GOOD, "password": "1"}, ip=ip).status_code == 400
    for n in range(5):
        response = signup({**GOOD, "slug": f"rl-{n}"}, ip=ip)
        assert response.status_code == 201, response.content
    assert response["RateLimit-Remaining"] == "0"

    before = registry_counts()
    limited = signup({**GOOD, "slug": "rl-6"}, ip=ip)
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert "Too many sign-ups" in limited.json()["error"]["message"]
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert limited["RateLimit-Remaining"] == "0"
    assert registry_counts() == before
    # Still told what is wrong with bad input; and another network may sign up.
    assert signup({**GOOD, "slug": "www"}, ip=ip).status_code == 400
    assert signup({**GOOD, "slug": "rl-7"}).status_code == 201


def test_sign_up_ignores_credentials(db, world):
    response = APIClient().post(
        "/api/v1/signup",
        {**GOOD, "slug": "with-key"},
        format="json",
        HTTP_HOST="localhost",
        HTTP_AUTHORIZATION=f"Bearer {world.alice.api_key}",
        REMOTE_ADDR=client_ip(),
    )
    assert response.status_code == 201
    assert Tenant.objects.get(slug="with-key").plan.code == "free"


@pytest.mark.parametrize("path", ["/api/v1/signup", "/api/v1/signup/slug?slug=fresh"])
def test_not_on_a_tenant_host(db, world, path):
    client = APIClient()
    if path == "/api/v1/signup":
        response = client.post(path, GOOD, format="json", HTTP_HOST="alpha.localhost")
    else:
        response = client.get(path, HTTP_HOST="alpha.localhost")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert not Tenant.objects.filter(slug="acme").exists()


class TestSlugCheck:
    def check(self, slug: str | None):
        params = {} if slug is None else {"slug": slug}
        return APIClient().get(
            "/api/v1/signup/slug", params, HTTP_HOST="localhost", REMOTE_ADDR=client_ip()
        )

    def test_a_free_slug_is_available(self, db, world):
        response = self.check(" Fresh-Co ")
        assert response.status_code == 200
        assert response.json() == {
            "slug": "fresh-co", "available": True, "errors": [], "suggestion": None,
        }  # fmt: skip

    def test_a_taken_slug_comes_with_a_free_suggestion(self, db, world, committed):
        response = self.check("alpha")
        body = response.json()
        assert body["available"] is False
        assert body["errors"] == ["'alpha' is already taken."]
        assert body["suggestion"] == "alpha-2"

    def test_reserved_and_malformed_slugs(self, db, world):
        reserved = self.check("www").json()
        assert reserved["available"] is False
        assert "reserved" in reserved["errors"][0]
        assert reserved["suggestion"] == "www-2"
        malformed = self.check("9_lives").json()
        assert malformed["available"] is False
        assert "lowercase letters" in malformed["errors"][0]
        assert malformed["suggestion"] is None

    def test_the_parameter_is_required_and_bounded(self, db, world):
        missing = self.check(None)
        assert missing.status_code == 400
        assert missing.json()["error"]["details"] == {"slug": ["This parameter is required."]}
        assert self.check("a" * 500).status_code == 400

    def test_checks_are_limited_per_ip(self, db, world):
        ip = client_ip()
        # The clock stands still: 61 calls that straddled the end of the minute's window would
        # start a new one.
        with time_machine.travel(time.time(), tick=False):
            statuses = [
                APIClient()
                .get("/api/v1/signup/slug", {"slug": "x-y"}, HTTP_HOST="localhost", REMOTE_ADDR=ip)
                .status_code
                for _ in range(61)
            ]
        assert statuses == [200] * 60 + [429]


def test_the_schema_documents_sign_up(db, world):
    schema = Caller(host="localhost").get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/signup"]["post"]
    assert {"201", "400", "429"} <= set(operation["responses"])
    assert "security" not in operation or operation["security"] in ([], [{}])
    assert set(schema["paths"]["/api/v1/signup/slug"]) == {"get"}
