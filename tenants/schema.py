"""The template schema that new tenants are cloned from.

Creating a tenant by replaying every migration takes seconds; cloning an up-to-date template takes
a fraction of that (``bench/provisioning.py`` measures both). The template is only safe while it is
current: ``migrate`` migrates it on every run (``tenants/management/commands/migrate_schemas.py``),
and ``clone_template`` refuses a template with unapplied migrations rather than record migrations
as applied that its tables do not have.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context, schema_exists


class TemplateOutOfDate(Exception):
    """The template schema is missing, or lags behind the migrations on disk."""


def template_schema_name() -> str:
    return settings.TENANT_TEMPLATE_SCHEMA


def template_pending_migrations() -> list[str]:
    """Migrations ``migrate`` would still apply to the template: ``["app.0002_name", ...]``.

    A missing template counts as every migration pending.
    """
    name = template_schema_name()
    if not schema_exists(name):
        return ["<template schema missing>"]
    with schema_context(name):
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def ensure_template_schema() -> None:
    """Create the (empty) template schema if it does not exist; ``migrate`` fills it."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{template_schema_name()}"')


def clone_template(schema_name: str) -> None:
    """Create ``schema_name`` as a copy of the current template (tables, indexes, rows).

    Transactional: inside ``transaction.atomic`` a failure later on leaves no schema behind.
    Raises TemplateOutOfDate when the template lags behind the code.
    """
    pending = template_pending_migrations()
    if pending:
        raise TemplateOutOfDate(
            f"The tenant template schema is not up to date (pending: {', '.join(pending[:5])}"
            f"{'…' if len(pending) > 5 else ''}). Run `python manage.py migrate`."
        )
    CloneSchema().clone_schema(template_schema_name(), schema_name, set_connection=False)
