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
from django.db.migrations.loader import MigrationLoader
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
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        # Every migration on disk, not only the leaves: a template missing an earlier migration
        # (inconsistent history) is stale too, though Django's own plan would call it current.
        pending = set(loader.graph.nodes) - set(loader.applied_migrations)
    return sorted(f"{app}.{name}" for app, name in pending)


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
    _restore_constraint_names(schema_name)


# The clone recreates multi-column UNIQUE constraints under PostgreSQL's default names
# (``<table>_<cols>_key``) instead of Django's (``<table>_<cols>_<hash>_uniq``); migrations and
# IntegrityError handling refer to constraints by name, so give them back the template's names.
_RENAMED_CONSTRAINTS_SQL = """
SELECT clone_table.relname, clone_con.conname, template_con.conname
FROM pg_constraint template_con
JOIN pg_class template_table ON template_table.oid = template_con.conrelid
JOIN pg_namespace template_ns ON template_ns.oid = template_table.relnamespace
JOIN pg_class clone_table ON clone_table.relname = template_table.relname
JOIN pg_namespace clone_ns ON clone_ns.oid = clone_table.relnamespace
JOIN pg_constraint clone_con ON clone_con.conrelid = clone_table.oid
    AND clone_con.contype = template_con.contype
    AND pg_get_constraintdef(clone_con.oid) = pg_get_constraintdef(template_con.oid)
WHERE template_ns.nspname = %(template)s AND clone_ns.nspname = %(clone)s
    AND template_con.contype <> 'f' AND clone_con.conname <> template_con.conname
"""


def _restore_constraint_names(schema_name: str) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            _RENAMED_CONSTRAINTS_SQL, {"template": template_schema_name(), "clone": schema_name}
        )
        for table, clone_name, template_name in cursor.fetchall():
            cursor.execute(
                f"ALTER TABLE {quote(schema_name)}.{quote(table)} "
                f"RENAME CONSTRAINT {quote(clone_name)} TO {quote(template_name)}"
            )
