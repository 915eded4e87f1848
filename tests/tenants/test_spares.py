"""Spare schemas: a sign-up renames one built ahead of it, of the current template only, and a
failed sign-up puts it back; the pool refills after a take, in a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists
from rest_framework.test import APIClient

from herald.metrics import SparesCollector
from tenants.bulk import BulkTenant, tenant_provision_bulk
from tenants.models import Domain, SpareSchema
from tenants.services import ProvisioningError, tenant_provision
from tenants.spares import FILL_TASK, spares_count, spares_fill
from tenants.template_ddl import template_state
from tests.herald.test_metrics import samples
from tests.support.processes import run_concurrently, running_web, running_worker, wait_until
from tests.tenants.test_provisioning import GOOD, _catalog

QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE


@pytest.fixture
def pool(committed: list[str], settings) -> Iterator[list[str]]:
    """Sign-ups take spares; every spare is dropped afterwards, and so are the refills that
    takes queued and no worker ran (a later test's worker would run them). Yields
    ``committed``'s list."""
    settings.TENANT_SPARE_SCHEMAS = 2
    try:
        yield committed
    finally:
        connection.set_schema_to_public()
        spares_fill(target=0)
        assert not SpareSchema.objects.exists()
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for message in broker.lrange(QUEUE, 0, -1):
            if json.loads(message)["headers"]["task"] == FILL_TASK:
                broker.lrem(QUEUE, 0, message)


def spare_names() -> list[str]:
    return list(SpareSchema.objects.order_by("id").values_list("schema_name", flat=True))


def schema_oid(name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)::oid", [name])
        return cursor.fetchone()[0]


def test_a_fill_builds_spares_equal_to_the_template_and_is_idempotent(pool):
    report = spares_fill()
    assert (report.built, report.dropped, report.spares) == (2, 0, 2)
    template = _catalog("tenant_template")
    for name in spare_names():
        assert name.startswith("spare_")
        assert _catalog(name) == template
    assert spares_fill() == spares_fill()  # nothing more to do, twice
    assert spares_fill().built == 0
    assert spares_count() == 2


def test_a_sign_up_takes_a_spare_and_the_tenant_works(pool):
    spares_fill()
    first, second = spare_names()
    oid = schema_oid(first)
    pool.append("sparrow")
    created = tenant_provision(slug="sparrow", **GOOD)

    assert schema_oid("t_sparrow") == oid  # the oldest spare, renamed: no DDL
    assert not schema_exists(first)
    assert spare_names() == [second]
    with schema_context("t_sparrow"):
        admin = get_user_model().objects.get()
        assert admin.check_password(GOOD["admin_password"])
    response = APIClient().get(
        "/api/v1/tenant",
        HTTP_HOST=created.domain,
        HTTP_AUTHORIZATION=f"Bearer {created.api_key}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "sparrow"


def test_a_failed_sign_up_puts_its_spare_back(pool, world):
    spares_fill()
    before = spare_names()
    # A custom domain colliding with the new tenant's host fails the insert after the rename.
    collision = Domain.objects.create(
        domain="epsilon.localhost", tenant=world.tenant_b, is_primary=False
    )
    try:
        with pytest.raises(ProvisioningError, match="already taken"):
            tenant_provision(slug="epsilon", **GOOD)
    finally:
        collision.delete()
    assert not schema_exists("t_epsilon")
    assert spare_names() == before
    assert all(schema_exists(name) for name in before)


def test_spares_of_an_older_template_are_never_taken_and_the_next_fill_replaces_them(pool):
    spares_fill(target=1)
    (old,) = spare_names()
    SpareSchema.objects.update(template_state="0" * 64)  # built before the last migration
    pool.append("stale")
    tenant_provision(slug="stale", **GOOD)
    assert schema_oid("t_stale") != schema_oid(old)
    assert spare_names() == [old]

    report = spares_fill(target=1)
    assert (report.built, report.dropped, report.spares) == (1, 1, 1)
    assert not schema_exists(old)
    assert SpareSchema.objects.get().template_state == template_state()


def test_concurrent_sign_ups_take_different_spares(pool):
    spares_fill()
    oids = {schema_oid(name) for name in spare_names()}
    pool.extend(["racer-a", "racer-b"])
    slugs = iter(["racer-a", "racer-b"])
    outcomes = run_concurrently(lambda: tenant_provision(slug=next(slugs), **GOOD).domain)
    assert sorted(map(str, outcomes)) == ["racer-a.localhost", "racer-b.localhost"]
    assert {schema_oid("t_racer_a"), schema_oid("t_racer_b")} == oids
    assert spare_names() == []


def test_concurrent_fills_never_overshoot(pool):
    reports = run_concurrently(lambda: spares_fill(target=2))
    assert sorted(r.built for r in reports) in ([0, 2], [1, 1])  # one skipped, or both built
    assert spares_count() == 2


def test_a_spare_dropped_by_hand_is_passed_over_then_forgotten(pool):
    spares_fill(target=1)
    (gone,) = spare_names()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{gone}" CASCADE')
    pool.append("orphan")
    tenant_provision(slug="orphan", **GOOD)  # built by replay
    assert schema_exists("t_orphan")
    report = spares_fill(target=1)
    assert (report.built, report.dropped, report.spares) == (1, 1, 1)
    assert spare_names() != [gone]


def test_bulk_provisioning_leaves_the_spares_to_sign_ups(pool):
    spares_fill()
    before = spare_names()
    pool.append("imported")
    (outcome,) = tenant_provision_bulk(
        tenants=[BulkTenant(slug="imported", name="Imported", admin_email="a@imported.example")]
    )
    assert outcome.provisioned is not None
    assert spare_names() == before


def test_the_worker_refills_the_pool_after_a_sign_up_takes_a_spare(pool):
    spares_fill()
    with running_worker(QUEUE, TENANT_SPARE_SCHEMAS="2"):
        pool.append("refill")
        tenant_provision(slug="refill", **GOOD)
        taken = set(spare_names())
        wait_until(lambda: spares_count() == 2, timeout=60, what="the pool to be refilled")
    assert len(set(spare_names()) - taken) == 1


def test_the_command_fills_and_empties_the_pool(pool):
    out = StringIO()
    call_command("tenants_spares", "--target", "1", stdout=out)
    assert json.loads(out.getvalue()) == {"built": 1, "dropped": 0, "spares": 1, "skipped": False}
    out = StringIO()
    call_command("tenants_spares", "--target", "0", stdout=out)
    assert json.loads(out.getvalue()) == {"built": 0, "dropped": 1, "spares": 0, "skipped": False}
    with pytest.raises(CommandError, match="0 or more"):
        call_command("tenants_spares", "--target", "-1")


def gauges(collector: SparesCollector) -> dict[str, float]:
    return {s.name: s.value for family in collector.collect() for s in family.samples}


def test_metrics_show_the_ready_spares_beside_the_target(pool):
    spares_fill()
    with running_web(TENANT_SPARE_SCHEMAS="2") as web:
        scraped = web.get("/metrics", host=settings.PLATFORM_HOST)
        assert scraped.status == 200
        assert samples(scraped.body)[("herald_spare_schemas", ())] == 2
        assert samples(scraped.body)[("herald_spare_schemas_target", ())] == 2
    pool.append("gauged")
    tenant_provision(slug="gauged", **GOOD)  # takes one
    expected = {"herald_spare_schemas": 1, "herald_spare_schemas_target": 2}
    assert gauges(SparesCollector()) == expected
    SpareSchema.objects.update(template_state="an older template")  # none a sign-up would take
    assert gauges(SparesCollector())["herald_spare_schemas"] == 0


def test_without_a_pool_the_gauges_say_so_without_a_query(db, settings, django_assert_num_queries):
    settings.TENANT_SPARE_SCHEMAS = 0
    with django_assert_num_queries(0):
        assert gauges(SparesCollector()) == {
            "herald_spare_schemas": 0,
            "herald_spare_schemas_target": 0,
        }
