"""The template schema that new tenants' schemas are copied from.

Creating a tenant by replaying every migration takes seconds; replaying the DDL of an up-to-date
template takes a fraction of that (``tenants/template_ddl.py``; ``bench/provisioning.py`` measures
both). The template is only safe while it is current: ``migrate`` migrates it on every run
(``tenants/management/commands/migrate_schemas.py``), and provisioning refuses a template with
unapplied migrations rather than record migrations as applied that its tables do not have.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_exists

from tenants.entry import in_schema


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
    with in_schema(name):
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        # Every migration on disk, not only the leaves: a template missing an earlier migration
        # (inconsistent history) is stale too, though Django's own plan would call it current.
        pending = set(loader.graph.nodes) - set(loader.applied_migrations)
    return sorted(f"{app}.{name}" for app, name in pending)


def ensure_template_schema() -> None:
    """Create the (empty) template schema if it does not exist; ``migrate`` fills it."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{template_schema_name()}"')
