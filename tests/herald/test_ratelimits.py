"""API rate limits from the plan: 429 with Retry-After, and RateLimit headers on every response."""

from __future__ import annotations

import time_machine
from django.utils import timezone

from billing_stub.models import Plan
from tenants.models import Tenant
from tests.support.api import Caller, error_code


def frozen() -> time_machine.travel:
    """Stop the clock a quarter second into the current second (tokens stay valid)."""
    return time_machine.travel(timezone.now().replace(microsecond=250_000), tick=False)


def tiny_plan_for(tenant: Tenant, *, burst: int = 3) -> Plan:
    plan = Plan.objects.create(
        code="tiny", name="Tiny", monthly_notification_quota=10, monthly_email_quota=10,
        api_requests_per_second=1, api_burst=burst, websocket_connection_limit=1,
    )  # fmt: skip
    fresh = Tenant.objects.get(pk=tenant.pk)  # not the session's shared object
    fresh.plan = plan
    fresh.save(update_fields=["plan"])
    return plan


def test_burst_then_429_with_retry_after_then_allowed_again(bob_key, alice_key, world):
    with frozen() as clock:
        tiny_plan_for(world.tenant_b)  # takes effect at once, no restart
        remaining = []
        for _ in range(3):
            response = bob_key.get("/api/v1/tenant")
            assert response.status_code == 200
            assert response["RateLimit-Limit"] == "3"
            remaining.append(response["RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]

        limited = bob_key.get("/api/v1/tenant")
        assert limited.status_code == 429
        assert error_code(limited) == "rate_limited"
        assert int(limited["Retry-After"]) >= 1
        assert limited["RateLimit-Remaining"] == "0"

        # another tenant's key is counted on its own
        assert alice_key.get("/api/v1/tenant").status_code == 200

        clock.shift(1)
        assert bob_key.get("/api/v1/tenant").status_code == 200


def test_sustained_window_caps_what_the_burst_allows(bob_key, world):
    with frozen():
        tiny_plan_for(world.tenant_b, burst=100)  # 1/s sustained: 10 per 10 s window
        statuses = [bob_key.get("/api/v1/tenant").status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429] * 2
        limited = bob_key.get("/api/v1/tenant")
        assert limited["RateLimit-Limit"] == "10"
        assert 1 <= int(limited["Retry-After"]) <= 10


def test_end_user_tokens_are_counted_per_user(erin, erins_neighbour, world):
    with frozen():
        tiny_plan_for(world.tenant_a)
        for _ in range(3):
            assert erin.get("/api/v1/me/notifications/unread_count").status_code == 200
        assert erin.get("/api/v1/me/notifications/unread_count").status_code == 429
        assert erins_neighbour.get("/api/v1/me/notifications/unread_count").status_code == 200


def test_headers_on_every_api_response_including_errors(alice_key, world, db):
    responses = [
        alice_key.get("/api/v1/tenant"),
        alice_key.get("/api/v1/no-such-endpoint"),
        alice_key.post("/api/v1/notifications", {"type": "x"}),
        Caller(host=world.alice.host, token="sk_unknown").get("/api/v1/tenant"),
        Caller(host="nobody.localhost").get("/api/v1/tenant"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 400, 401, 404]
    for response in responses:
        for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert response.has_header(header), (response.status_code, header)


def test_guessing_keys_is_limited_per_ip(db, world):
    with frozen():
        statuses = [
            Caller(host=world.alice.host, token=f"sk_guess{n}").get("/api/v1/tenant")[
                "RateLimit-Remaining"
            ]
            for n in range(3)
        ]
    assert statuses == ["19", "18", "17"]


def test_login_is_limited_per_ip_and_tenant(db, world):
    with frozen():
        attempt = Caller(host=world.alice.host)
        statuses = [
            attempt.post(
                "/api/v1/auth/token", {"email": world.alice.email, "password": "bad"}
            ).status_code
            for _ in range(11)
        ]
        # The same address may still sign in to another tenant, within its own window.
        other = Caller(host=world.bob.host).post(
            "/api/v1/auth/token", {"email": world.bob.email, "password": world.bob.password}
        )
    assert statuses == [401] * 10 + [429]
    assert other.status_code == 200
