"""The roll-out's durable record, in two public tables of its own.

``tenants_rollout_schema`` has one row per schema: the target it was last brought to (a hash of
every migration on disk), ``done`` or ``failed``, when, by which run, and the error. A ``done``
row is written in the same transaction as the schema's migrations, so a schema is either
migrated and recorded, or neither: a roll-out killed at any moment resumes with exactly the
schemas that did not commit, and never touches one that did. ``tenants_rollout_run`` has a row
per run of the command, with its counts, for the summary and for operators.

The tables are created by the tool itself (``ensure_tables``), not by a Django migration: the
record of a roll-out must exist before, and independently of, the migrations it rolls out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import get_public_schema_name

from tenants.schema import template_schema_name

SCHEMA_TABLE = "tenants_rollout_schema"
RUN_TABLE = "tenants_rollout_run"
DONE, FAILED = "done", "failed"

_DDL = f"""
CREATE TABLE IF NOT EXISTS public.{RUN_TABLE} (
    id bigserial PRIMARY KEY,
    target varchar(64) NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    parallel integer NOT NULL,
    total integer NOT NULL DEFAULT 0,
    already_current integer NOT NULL DEFAULT 0,
    migrated integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS public.{SCHEMA_TABLE} (
    schema_name varchar(63) PRIMARY KEY,
    target varchar(64) NOT NULL,
    status varchar(8) NOT NULL,
    run_id bigint,
    migrations_applied integer NOT NULL DEFAULT 0,
    finished_at timestamptz NOT NULL DEFAULT now(),
    seconds double precision NOT NULL DEFAULT 0,
    error text NOT NULL DEFAULT ''
);
"""


def ensure_tables() -> None:
    with connection.cursor() as cursor:
        # Two roll-outs starting at once on a fresh database would race on CREATE TABLE.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('herald.rollout.ddl'))")
        cursor.execute(_DDL)


def migration_target(loader: MigrationLoader | None = None) -> str:
    """A hash of every migration on disk: equal targets mean equal migrations to have applied."""
    loader = loader or MigrationLoader(None, ignore_no_migrations=True)
    names = "\n".join(sorted(f"{app}.{name}" for app, name in loader.disk_migrations))
    return hashlib.sha256(names.encode()).hexdigest()[:32]


def tenant_schemas() -> list[str]:
    """Every tenant's schema, in the registry's order (by slug)."""
    from tenants.models import Tenant

    return list(
        Tenant.objects.exclude(schema_name=get_public_schema_name())
        .order_by("slug")
        .values_list("schema_name", flat=True)
    )


def schemas_at_target(target: str) -> set[str]:
    """The schemas recorded ``done`` at ``target``: one indexed read for all of them."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT schema_name FROM public.{SCHEMA_TABLE} WHERE target = %s AND status = %s",
            [target, DONE],
        )
        return {row[0] for row in cursor.fetchall()}


def forget_dropped_schemas() -> None:
    """Drop the rows of schemas that no longer exist (deleted tenants)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM public.{SCHEMA_TABLE} s WHERE NOT EXISTS "
            "(SELECT 1 FROM pg_namespace n WHERE n.nspname = s.schema_name)"
        )


def record_schema(
    *,
    schema_name: str,
    target: str,
    status: str,
    run_id: int | None,
    migrations_applied: int = 0,
    seconds: float = 0.0,
    error: str = "",
) -> None:
    """Upsert a schema's row. For ``done``, call inside the transaction that migrated it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO public.{SCHEMA_TABLE} AS s
                    (schema_name, target, status, run_id, migrations_applied, finished_at,
                     seconds, error)
                VALUES (%s, %s, %s, %s, %s, now(), %s, %s)
                ON CONFLICT (schema_name) DO UPDATE SET
                    target = excluded.target, status = excluded.status,
                    run_id = excluded.run_id, migrations_applied = excluded.migrations_applied,
                    finished_at = excluded.finished_at, seconds = excluded.seconds,
                    error = excluded.error""",
            [schema_name, target, status, run_id, migrations_applied, seconds, error],
        )


def schema_is_done(schema_name: str, target: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM public.{SCHEMA_TABLE} "
            "WHERE schema_name = %s AND target = %s AND status = %s",
            [schema_name, target, DONE],
        )
        return cursor.fetchone() is not None


def run_start(*, target: str, parallel: int, total: int, already_current: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO public.{RUN_TABLE} (target, parallel, total, already_current) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            [target, parallel, total, already_current],
        )
        run_id: int = cursor.fetchone()[0]
        return run_id


def run_finish(run_id: int, *, migrated: int, failed: int, already_current: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE public.{RUN_TABLE} SET finished_at = now(), migrated = %s, failed = %s, "
            "already_current = %s WHERE id = %s",
            [migrated, failed, already_current, run_id],
        )


@dataclass(frozen=True)
class SchemaRecord:
    schema_name: str
    target: str
    status: str
    run_id: int | None
    migrations_applied: int
    finished_at: datetime
    error: str


def schema_records() -> dict[str, SchemaRecord]:
    """Every schema's row, by schema name (for operators and tests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schema_name, target, status, run_id, migrations_applied, finished_at, error "
            f"FROM public.{SCHEMA_TABLE}"
        )
        return {row[0]: SchemaRecord(*row) for row in cursor.fetchall()}


def is_template(schema_name: str) -> bool:
    return schema_name == template_schema_name()
