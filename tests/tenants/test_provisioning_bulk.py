"""Bulk provisioning: many whole tenants at once, each failure reported and rolled back alone."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models.signals import post_save
from django.test import override_settings
from django_tenants.utils import schema_context, schema_exists
from rest_framework.test import APIClient

from tenants.bulk import BulkTenant, tenant_provision_bulk
from tenants.models import ApiKey, Domain, Tenant
from tests.support.processes import run_concurrently

COUNT = 30


def row(slug: str, **extra: str) -> BulkTenant:
    email = f"admin@{slug}.example.com"
    return BulkTenant(slug=slug, name=slug.title(), admin_email=email, **extra)


def tenant_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")
        return {name for (name,) in cursor.fetchall()}


def test_bulk_creates_working_tenants_and_reports_the_bad_ones(committed, world):
    slugs = [f"bulk-{n}" for n in range(COUNT)]
    committed.extend([*slugs, "bulk-clash"])
    # A custom domain of another tenant that the new tenant's host would collide with: that
    # tenant fails after its schema was built, so its schema must go with it.
    clash = Domain.objects.create(domain="bulk-clash.localhost", tenant=world.tenant_b)
    hashed = make_password("an-imported-passphrase")
    rows = [
        row(slugs[0], admin_password_hash=hashed),
        *[row(slug) for slug in slugs[1:]],
        row(slugs[5]),  # a duplicate within the import
        row("alpha"),  # taken before the import
        row("Bad_Slug"),
        row("bulk-clash"),
        row("bulk-bad-hash", admin_password_hash="not-a-hash"),
    ]
    schemas_before = tenant_schemas()
    try:
        outcomes = tenant_provision_bulk(tenants=rows, batch_size=7, jobs=2)
    finally:
        clash.delete()

    assert [outcome.slug for outcome in outcomes] == [
        *slugs, "bulk-5", "alpha", "bad_slug", "bulk-clash", "bulk-bad-hash"
    ]  # fmt: skip
    created = [outcome for outcome in outcomes if outcome.provisioned]
    assert [outcome.slug for outcome in created] == slugs
    failed = {outcome.slug: outcome.errors for outcome in outcomes if not outcome.provisioned}
    assert failed["bulk-5"] == {"slug": ["'bulk-5' is already taken."]}
    assert "already taken" in failed["alpha"]["slug"][0]
    assert "lowercase letters" in failed["bad_slug"]["slug"][0]
    assert failed["bulk-clash"] == {"slug": ["'bulk-clash' is already taken."]}
    assert "password" in failed["bulk-bad-hash"]

    # Whole tenants and nothing else: no half tenant, no stray schema, domain or key.
    assert tenant_schemas() - schemas_before == {f"t_bulk_{n}" for n in range(COUNT)}
    assert not schema_exists("t_bulk_clash")
    tenants = Tenant.objects.filter(slug__startswith="bulk-")
    assert sorted(tenants.values_list("slug", flat=True)) == sorted(slugs)
    assert Domain.objects.filter(tenant__in=tenants).count() == COUNT
    assert ApiKey.objects.filter(tenant__in=tenants).count() == COUNT

    client = APIClient()
    for outcome in created:
        response = client.get(
            "/api/v1/tenant",
            HTTP_HOST=outcome.provisioned.domain,
            HTTP_AUTHORIZATION=f"Bearer {outcome.provisioned.api_key}",
        )
        assert response.status_code == 200, (outcome.slug, response.content)
        assert response.json()["slug"] == outcome.slug

    with schema_context("t_bulk_0"):
        admin = get_user_model().objects.get()
        assert admin.email == "admin@bulk-0.example.com"
        assert admin.check_password("an-imported-passphrase")
    with schema_context("t_bulk_1"):
        assert not get_user_model().objects.get().has_usable_password()
    connection.set_schema_to_public()


def test_two_imports_at_once_create_each_tenant_once(committed, world):
    slugs = [f"race-{n}" for n in range(6)]
    committed.extend(slugs)
    outcomes = run_concurrently(
        lambda: tenant_provision_bulk(tenants=[row(slug) for slug in slugs], jobs=1)
    )
    assert all(isinstance(outcome, list) for outcome in outcomes), outcomes
    for index, slug in enumerate(slugs):
        results = [outcome[index] for outcome in outcomes]
        assert sorted(bool(result.provisioned) for result in results) == [False, True], slug
    assert Tenant.objects.filter(slug__in=slugs).count() == len(slugs)
    assert {f"t_race_{n}" for n in range(6)} <= tenant_schemas()


def test_the_command_prints_a_line_per_row_and_fails_when_one_failed(db, world, tmp_path: Path):
    csv = tmp_path / "tenants.csv"
    csv.write_text(
        "slug,name,admin_email\n"
        "cmd-one,One,one@example.com\n"
        "www,Reserved,w@example.com\n"
        "cmd-two,Two,two@example.com\n"
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 3 tenants not created"):
        call_command("provision_tenant", "--bulk", str(csv), "--jobs", "1", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["slug"] for line in lines] == ["cmd-one", "www", "cmd-two"]
    assert lines[0]["domain"] == "cmd-one.localhost"
    assert lines[0]["api_key"].startswith("sk_")
    assert "reserved" in lines[1]["errors"]["slug"][0]
    assert set(Tenant.objects.filter(slug__startswith="cmd-").values_list("slug", flat=True)) == {
        "cmd-one",
        "cmd-two",
    }


def test_the_command_refuses_a_csv_without_the_columns_it_needs(db, tmp_path: Path):
    csv = tmp_path / "tenants.csv"
    csv.write_text("slug,email\nx,y\n")
    with pytest.raises(CommandError, match="header must hold slug, name and admin_email"):
        call_command("provision_tenant", "--bulk", str(csv), stdout=StringIO())


def _locks_held() -> int:
    with connection.cursor() as cursor:
        # Lock table entries: one per locked object, whatever its modes.
        cursor.execute(
            "SELECT count(DISTINCT (locktype, database, relation, classid, objid, objsubid,"
            " transactionid::text, virtualxid)) FROM pg_locks WHERE pid = pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_batches_are_capped_to_the_lock_table(db, world):
    # A transaction keeps every lock it takes; a batch must not fill the server's lock table.
    from tenants.bulk import _LOCK_BUDGET_SQL, LOCKS_PER_TEMPLATE_RELATION, batch_limit
    from tenants.schema import template_schema_name
    from tenants.services import _provision_one

    with connection.cursor() as cursor:
        cursor.execute(_LOCK_BUDGET_SQL, {"ns": connection.ops.quote_name(template_schema_name())})
        slots, relations = cursor.fetchone()
    counts = [_locks_held()]
    for n in range(2):  # the first also locks the catalogs and public tables all of them share
        _provision_one(
            slug=f"lock-count-{n}", name="Lock count", plan_code="free",
            admin_email=f"admin@lock-count-{n}.example.com", admin_password=None,
        )  # fmt: skip
        counts.append(_locks_held())
    taken = counts[2] - counts[1]
    # The estimate per relation still holds for this template.
    assert taken <= relations * LOCKS_PER_TEMPLATE_RELATION, (taken, relations)
    for jobs in (1, 2, 4, 8):
        limit = batch_limit(jobs)
        assert limit >= 1
        assert limit == 1 or limit * jobs * taken <= slots / 2, (jobs, limit, taken, slots)


@override_settings(DATABASE_MAX_SCHEMAS_PER_CONNECTION=4)
def test_a_long_import_moves_to_a_fresh_connection_every_so_many_tenants(committed):
    slugs = [f"bulk-fresh-{n}" for n in range(10)]
    committed.extend(slugs)
    backends: list[int] = []

    def note_backend(**_kwargs: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])

    connection.close()  # a connection that has served no schema yet
    post_save.connect(note_backend, sender=Tenant, dispatch_uid="bulk-backends")
    try:
        outcomes = tenant_provision_bulk(tenants=[row(slug) for slug in slugs], batch_size=2)
    finally:
        post_save.disconnect(dispatch_uid="bulk-backends", sender=Tenant)
    assert all(outcome.provisioned for outcome in outcomes)
    # batches of 2, a new backend once a connection has built 4 schemas: 4 + 4 + 2
    assert [len(set(backends[n : n + 4])) for n in (0, 4, 8)] == [1, 1, 1]
    assert len(set(backends)) == 3
