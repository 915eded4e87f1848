"""provision_tenant: all or nothing, fast (cloned template), and never from a stale template."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from tenants.models import ApiKey, Domain, Tenant
from tenants.schema import template_pending_migrations
from tenants.services import ProvisioningError, tenant_provision
from tenants.template_ddl import replay_template
from tests.support.processes import ROOT, process_env, run_concurrently

GOOD = {"name": "Gamma", "admin_email": "g@gamma.example.com", "admin_password": "pass-phrase-123!"}


def provision(slug: str, *extra: str, **overrides: str) -> dict[str, str]:
    options = {**GOOD, **overrides}
    out = StringIO()
    call_command(
        "provision_tenant",
        slug,
        "--name", options["name"],
        "--admin-email", options["admin_email"],
        "--admin-password", options["admin_password"],
        *extra,
        stdout=out,
    )  # fmt: skip
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "stdout is exactly one JSON object"
    return json.loads(lines[0])


def registry_counts() -> tuple[int, int, int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
        schemas = cursor.fetchone()[0]
    return Tenant.objects.count(), Domain.objects.count(), ApiKey.objects.count(), schemas


class TestCommand:
    def test_prints_slug_domain_and_a_working_key(self, api, world):
        printed = provision("gamma", "--plan", "enterprise")
        assert set(printed) == {"slug", "domain", "api_key"}
        assert printed["slug"] == "gamma"
        assert printed["domain"] == "gamma.localhost"
        assert printed["api_key"].startswith("sk_")

        tenant = Tenant.objects.get(slug="gamma")
        assert tenant.plan.code == "enterprise"
        assert tenant.schema_name == "t_gamma"
        assert schema_exists("t_gamma")
        with schema_context("t_gamma"):
            admin = get_user_model().objects.get()
            assert admin.email == "g@gamma.example.com"
            assert admin.check_password(GOOD["admin_password"])
        with schema_context(world.tenant_a.schema_name):
            assert not get_user_model().objects.filter(email="g@gamma.example.com").exists()

        response = api.get(
            "/api/v1/tenant",
            HTTP_HOST="gamma.localhost",
            HTTP_AUTHORIZATION=f"Bearer {printed['api_key']}",
        )
        assert response.status_code == 200
        assert response.json()["slug"] == "gamma"

    @pytest.mark.parametrize(
        ("slug", "overrides", "message"),
        [
            ("Bad_Slug", {}, "lowercase letters"),
            ("x", {}, "2 to 40 characters"),
            ("9lives", {}, "starting with a letter"),
            ("a" * 41, {}, "2 to 40 characters"),
            ("www", {}, "reserved"),
            ("api", {}, "reserved"),
            ("alpha", {}, "already taken"),
            ("delta", {"admin_email": "not-an-email"}, "valid email"),
            ("delta", {"admin_password": "123"}, "too short"),
            ("delta", {"name": " "}, "name is required"),
        ],
    )
    def test_bad_input_fails_loudly_and_creates_nothing(self, db, world, slug, overrides, message):
        before = registry_counts()
        with pytest.raises(CommandError, match=message):
            provision(slug, **overrides)
        assert registry_counts() == before

    def test_unknown_plan(self, db, world):
        with pytest.raises(CommandError, match="Unknown plan 'gold'"):
            provision("delta", "--plan", "gold")

    def test_exit_status_is_nonzero_from_the_shell(self, db, world):
        env = process_env(DATABASE_URL=process_env()["DATABASE_URL"])
        result = subprocess.run(
            [sys.executable, "manage.py", "provision_tenant", "www", "--name", "W",
             "--admin-email", "w@example.com", "--admin-password", "pass-phrase-123!"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert result.stdout == ""
        assert "'www' is reserved" in result.stderr


class TestAtomicity:
    def test_failure_after_the_clone_leaves_no_schema(self, db, world):
        # A custom domain that collides with the new tenant's host fails the Domain insert,
        # which runs after the schema was cloned: everything must roll back, schema included.
        Domain.objects.create(domain="epsilon.localhost", tenant=world.tenant_b, is_primary=False)
        before = registry_counts()
        with pytest.raises(ProvisioningError, match="already taken"):
            tenant_provision(slug="epsilon", **GOOD)
        assert registry_counts() == before
        assert not schema_exists("t_epsilon")

    def test_concurrent_provisioning_of_one_slug_creates_one_tenant(self, committed):
        committed.append("racer")
        outcomes = run_concurrently(lambda: tenant_provision(slug="racer", **GOOD) and "created")
        assert sorted(map(str, outcomes)) == ["created", "slug: 'racer' is already taken."]
        assert Tenant.objects.filter(slug="racer").count() == 1
        assert schema_exists("t_racer")


class TestTemplate:
    def test_migrate_leaves_the_template_current(self, db):
        assert template_pending_migrations() == []

    def test_a_stale_template_is_refused_not_cloned(self, db, world):
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM tenant_template.django_migrations WHERE app = 'notifications'"
            )
        pending = template_pending_migrations()
        assert "notifications.0001_initial" in pending
        assert all(name.startswith("notifications.") for name in pending)
        before = registry_counts()
        with pytest.raises(CommandError, match="template schema is not up to date"):
            provision("zeta")
        assert registry_counts() == before

    def test_migrate_recreates_a_missing_template(self, committed):
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA tenant_template CASCADE")
        assert template_pending_migrations() == ["<template schema missing>"]
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert template_pending_migrations() == []


def _catalog(schema: str) -> set[tuple[str, ...]]:
    """Tables, columns, indexes and constraints of a schema, with its name blanked out."""
    queries = [
        """SELECT 'column', table_name, column_name, data_type, is_nullable,
                  coalesce(column_default, '')
           FROM information_schema.columns WHERE table_schema = %(s)s""",
        """SELECT 'index', tablename, indexname, indexdef
           FROM pg_indexes WHERE schemaname = %(s)s""",
        """SELECT 'constraint', cls.relname, con.conname, pg_get_constraintdef(con.oid)
           FROM pg_constraint con JOIN pg_class cls ON cls.oid = con.conrelid
           JOIN pg_namespace ns ON ns.oid = cls.relnamespace WHERE ns.nspname = %(s)s""",
        """SELECT 'sequence-owner', seq.relname, tbl.relname, att.attname
           FROM pg_depend dep JOIN pg_class seq ON seq.oid = dep.objid AND seq.relkind = 'S'
           JOIN pg_class tbl ON tbl.oid = dep.refobjid
           JOIN pg_attribute att ON att.attrelid = tbl.oid AND att.attnum = dep.refobjsubid
           JOIN pg_namespace ns ON ns.oid = seq.relnamespace WHERE ns.nspname = %(s)s""",
    ]
    rows: set[tuple[str, ...]] = set()
    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute(query, {"s": schema})
            for row in cursor.fetchall():
                rows.add(
                    tuple(
                        str(value).replace(f'"{schema}".', "").replace(f"{schema}.", "")
                        for value in row
                    )
                )
    return rows


DROP_COMPARED_SCHEMAS = (
    "DROP SCHEMA IF EXISTS t_cmp_clone CASCADE; DROP SCHEMA IF EXISTS t_cmp_migrated CASCADE"
)


def test_a_cloned_schema_is_identical_to_a_migrated_one(committed):
    """The fast path (clone) and the slow path (replay every migration) build the same schema."""
    with connection.cursor() as cursor:
        cursor.execute(DROP_COMPARED_SCHEMAS)
    try:
        replay_template("t_cmp_clone")
        with connection.cursor() as cursor:
            cursor.execute("CREATE SCHEMA t_cmp_migrated")
        call_command(
            "migrate_schemas",
            schema_name="t_cmp_migrated",
            tenant=True,
            interactive=False,
            verbosity=0,
        )
        connection.set_schema_to_public()
        cloned, migrated = _catalog("t_cmp_clone"), _catalog("t_cmp_migrated")
        assert cloned
        assert cloned == migrated
        applied = {}
        for schema in ("t_cmp_clone", "t_cmp_migrated"):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT app, name FROM {schema}.django_migrations")
                applied[schema] = set(cursor.fetchall())
        assert applied["t_cmp_clone"] == applied["t_cmp_migrated"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_COMPARED_SCHEMAS)


def test_a_gap_in_the_template_history_counts_as_stale(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tenant_template.django_migrations "
            "WHERE app = 'notifications' AND name = '0001_initial'"
        )
    assert template_pending_migrations() == ["notifications.0001_initial"]
