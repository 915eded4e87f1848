"""Seconds per tenant: provisioning from the template's DDL vs. by replaying every migration.

    .venv/bin/python bench/provisioning.py [--tenants 5]

Uses a throwaway database ``herald_bench`` on the server of ``DATABASE_URL`` (default: the
PostgreSQL on 127.0.0.1), created and dropped by this script. Each path creates the same things:
tenant row, schema, admin user, domain and API key; only the way the schema is built differs.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchdb import drop_database, recreate_database, setup_django, time_schema_step

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = "herald_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=5, help="tenants per path (default 5)")
    args = parser.parse_args()

    recreate_database(BENCH_DB)
    try:
        setup_django(BENCH_DB)
        _run(args.tenants)
    finally:
        drop_database(BENCH_DB)


BENCH_PASSWORD = secrets.token_urlsafe(16)  # throwaway tenants in a throwaway database


def _run(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.migrations.loader import MigrationLoader
    from django_tenants.utils import schema_context

    from billing_stub.selectors import plan_get
    from tenants.models import Domain, Tenant
    from tenants.services import api_key_create, schema_name_for_slug, tenant_provision
    from tenants.template_ddl import replay_template

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrate_seconds = time.perf_counter() - started

    def by_template(slug: str) -> None:
        tenant_provision(
            slug=slug, name=slug, admin_email=f"admin@{slug}.test", admin_password=BENCH_PASSWORD
        )

    def by_migrate(slug: str) -> None:
        """The same steps, but the schema is built by running every tenant migration."""
        with transaction.atomic():
            tenant = Tenant.objects.create(
                slug=slug,
                name=slug,
                plan=plan_get(code="free"),
                schema_name=schema_name_for_slug(slug),
            )
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{tenant.schema_name}"')
            call_command(
                "migrate_schemas",
                tenant=True,
                schema_name=tenant.schema_name,
                interactive=False,
                verbosity=0,
            )
            connection.set_schema_to_public()
            with schema_context(tenant.schema_name):
                get_user_model().objects.create_user(f"admin@{slug}.test", BENCH_PASSWORD)
            Domain.objects.create(domain=f"{slug}.localhost", tenant=tenant, is_primary=True)
            api_key_create(tenant=tenant, name="Default key")

    def measure(path: Callable[[str], None], prefix: str) -> list[float]:
        timings = []
        for index in range(count):
            started = time.perf_counter()
            path(f"{prefix}{index}")
            timings.append(time.perf_counter() - started)
        return timings

    def schema_by_template(schema: str) -> None:
        replay_template(schema)

    def schema_by_migrate(schema: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        call_command(
            "migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=0
        )
        connection.set_schema_to_public()

    by_migrate("warmup-migrate")  # first use loads the migration graph; don't count it for either
    by_template("warmup-template")
    template = measure(by_template, "template")
    migrate = measure(by_migrate, "migrate")
    template_schema_only = time_schema_step(schema_by_template, count)
    migrate_schema_only = time_schema_step(schema_by_migrate, count)
    migrations = len(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(
            f"PostgreSQL {cursor.fetchone()[0]}; initial migrate (public + template): "
            f"{migrate_seconds:.2f} s"
        )
    print(f"{count} tenants per path, {migrations} migrations on disk, seconds per tenant:")
    print(f"{'path':<40}{'mean':>8}{'median':>8}{'min':>8}{'max':>8}")
    for label, timings in (
        ("provision, template DDL (Herald)", template),
        ("provision, replay all migrations", migrate),
        ("schema step only, template DDL", template_schema_only),
        ("schema step only, replay migrations", migrate_schema_only),
    ):
        print(
            f"{label:<40}{statistics.mean(timings):>8.3f}{statistics.median(timings):>8.3f}"
            f"{min(timings):>8.3f}{max(timings):>8.3f}"
        )
    schema_speedup = statistics.mean(migrate_schema_only) / statistics.mean(template_schema_only)
    print(
        f"speed-up: provisioning {statistics.mean(migrate) / statistics.mean(template):.2f}x, "
        f"schema step {schema_speedup:.2f}x"
        " (the admin's PBKDF2 password hash, about 0.2 s, is common to both paths)"
    )


if __name__ == "__main__":
    main()
