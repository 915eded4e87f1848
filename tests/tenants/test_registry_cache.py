"""The tenant registry cache never outlives a change made through the ORM."""

from __future__ import annotations

from tenants.models import Domain, Tenant

PLATFORM = "localhost"


def get_tenant(api, host: str, key: str):
    return api.get("/api/v1/tenant", HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")


def warm(api, host: str, key: str) -> None:
    for _ in range(2):  # the first request reads the database; then all is cached
        assert get_tenant(api, host, key).status_code == 200


def test_deactivation_applies_to_cached_hosts_and_keys(api, world):
    warm(api, world.alice.host, world.alice.api_key)
    warm(api, PLATFORM, world.alice.api_key)
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    assert get_tenant(api, world.alice.host, world.alice.api_key).status_code == 403
    assert get_tenant(api, PLATFORM, world.alice.api_key).status_code == 403


def test_a_new_domain_serves_at_once_after_an_unknown_host_answer(api, world):
    host = "notifications.alpha-customer.example"
    assert get_tenant(api, host, world.alice.api_key).status_code == 404  # cached as unknown
    Domain.objects.create(domain=host, tenant_id=world.tenant_a.pk, is_primary=False)
    response = get_tenant(api, host, world.alice.api_key)
    assert response.status_code == 200
    assert response.json()["slug"] == world.tenant_a.slug


def test_a_renamed_domain_stops_serving_its_old_host_at_once(api, world):
    old, new = "old.alpha-customer.example", "new.alpha-customer.example"
    domain = Domain.objects.create(domain=old, tenant_id=world.tenant_a.pk, is_primary=False)
    warm(api, old, world.alice.api_key)
    domain.domain = new
    domain.save()
    assert get_tenant(api, old, world.alice.api_key).status_code == 404
    assert get_tenant(api, new, world.alice.api_key).status_code == 200


def test_a_plan_change_reaches_cached_tenants(api, world):
    warm(api, world.bob.host, world.bob.api_key)
    plan = Tenant.objects.get(pk=world.tenant_b.pk).plan
    plan.api_burst = 2
    plan.api_requests_per_second = 1
    plan.save()
    # Six calls: however a boundary of the 1 s window splits them, one window holds three.
    statuses = [get_tenant(api, world.bob.host, world.bob.api_key).status_code for _ in range(6)]
    assert 429 in statuses


def test_a_migrate_that_applied_anything_clears_every_entry(api, world):
    from django.apps import apps
    from django.core.cache import caches
    from django.db.models.signals import post_migrate

    from tenants import registry_cache

    warm(api, world.alice.host, world.alice.api_key)
    entry = registry_cache.host_entry(world.alice.host)
    tenants_app = apps.get_app_config("tenants")
    post_migrate.send(sender=tenants_app, app_config=tenants_app, plan=[], using="default")
    assert caches["registry"].get(entry) is not None  # nothing applied: entries stay
    post_migrate.send(
        sender=tenants_app, app_config=tenants_app, plan=[("migration", False)], using="default"
    )
    assert caches["registry"].get(entry) is None
