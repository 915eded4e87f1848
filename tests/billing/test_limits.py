"""Per-tenant overrides on top of the plan, applied at once to every check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from billing_stub.limits import limits_for
from tenants.models import Tenant
from tests.billing.test_quotas import plan_with, send


def override(tenant: Tenant, **values: object) -> Tenant:
    fresh = Tenant.objects.get(pk=tenant.pk)
    fresh.limit_overrides = values
    fresh.full_clean()
    fresh.save(update_fields=["limit_overrides"])
    return fresh


def test_an_override_beats_the_plan_at_once_and_removing_it_restores_the_plan(alice_key, world):
    plan = plan_with(world.tenant_a, notifications=100)
    used = alice_key.get("/api/v1/usage").json()["notifications"]["used"]
    override(world.tenant_a, monthly_notification_quota=used + 1)
    assert alice_key.get("/api/v1/usage").json()["notifications"]["limit"] == used + 1
    assert send(alice_key, 1).status_code == 202
    assert send(alice_key, 1).status_code == 429
    override(world.tenant_a)  # no overrides: the plan's 100 more again
    assert alice_key.get("/api/v1/usage").json()["notifications"]["limit"] == (
        plan.monthly_notification_quota
    )
    assert send(alice_key, 1).status_code == 202


def test_an_api_rate_override_applies_to_the_next_request(alice_key, world):
    override(world.tenant_a, api_requests_per_second=1, api_burst=1)
    statuses = [alice_key.get("/api/v1/tenant").status_code for _ in range(3)]
    assert 429 in statuses


def test_a_plan_without_digests_refuses_a_digest_window_unless_overridden(bob_key, world):
    assert limits_for(Tenant.objects.get(pk=world.tenant_b.pk)).digest_allowed is False  # free
    response = bob_key.put("/api/v1/types/weekly", {"digest_window_seconds": 3600})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["digest_window_seconds"]
    assert bob_key.put("/api/v1/types/weekly", {"name": "Weekly"}).status_code == 201
    override(world.tenant_b, digest_allowed=True)  # a custom deal
    assert bob_key.put("/api/v1/types/weekly", {"digest_window_seconds": 3600}).status_code == 200


@pytest.mark.parametrize(
    "bad",
    [{"monthly_email_quota": -1}, {"no_such_limit": 1}, {"digest_allowed": 1}, ["x"],
     {"api_burst": True}],
)  # fmt: skip
def test_invalid_overrides_are_refused(db, world, bad):
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    tenant.limit_overrides = bad
    with pytest.raises(ValidationError):
        tenant.full_clean()
