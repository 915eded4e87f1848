"""Registry lookups compiled once per connection give what the ORM gives, for any value."""

from __future__ import annotations

import pytest
from django.db import connection

from tenants.keys import hash_key
from tenants.models import Domain
from tenants.prepared import PreparedLookup
from tenants.resolution import _API_KEY_AND_HOST, _DOMAIN

pytestmark = pytest.mark.django_db

# The registry's own lookups (``tenants.resolution``), run directly.
DOMAIN, KEY_AND_HOST = _DOMAIN, _API_KEY_AND_HOST


def fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_each_lookup_is_one_query_and_the_orms_instances_related_rows_included(
    world, django_assert_num_queries
):
    connection.set_schema_to_public()
    for persona in (world.alice, world.bob):
        expected = Domain.objects.select_related("tenant", "tenant__plan").get(domain=persona.host)
        with django_assert_num_queries(1):  # the tenant and plan come with it
            found = DOMAIN.first(host=persona.host)
            tenant, plan = found.tenant, found.tenant.plan
        assert fields(found) == fields(expected)
        assert fields(tenant) == fields(expected.tenant)
        assert fields(plan) == fields(expected.tenant.plan)
        # JSON columns come decoded, as the ORM gives them
        assert tenant.limit_overrides == expected.tenant.limit_overrides
        assert not found._state.adding
        assert found._state.db == "default"
    assert DOMAIN.first(host="nobody.localhost") is None


def test_annotations_and_constants_of_the_query_keep_their_place(world):
    connection.set_schema_to_public()
    key_hash = hash_key(world.alice.api_key)
    own = KEY_AND_HOST.first(key_hash=key_hash, host=world.alice.host)
    other = KEY_AND_HOST.first(key_hash=key_hash, host=world.bob.host)
    assert own.serves_host is True
    assert other.serves_host is False
    assert own.tenant.pk == world.tenant_a.pk
    assert KEY_AND_HOST.first(key_hash=hash_key("hk_live_unknown"), host=world.alice.host) is None


def test_a_lookup_that_would_change_its_value_is_refused_at_its_first_use(db):
    wrapped = PreparedLookup(lambda host: Domain.objects.filter(domain__contains=host), "host")
    with pytest.raises(ValueError, match="unchanged"):
        wrapped.fetch(host="example")
