"""Spare schemas: tenant schemas built from the template ahead of need, so that a sign-up does not
wait for DDL.

Building a tenant's schema replays the template's DDL (``tenants.template_ddl``): about 110
relations, 100 ms or more of CPU-bound catalog work on a small server, and more once the catalogs
outgrow shared buffers. A sign-up instead takes a spare built earlier and renames it: one row
deleted and one ``ALTER SCHEMA ... RENAME``, whatever the template holds and however many tenants
the database has. The rename is transactional, so a provisioning that fails puts the spare back
as it was.

- **Which spare.** Each spare records the template's migration state it was built from
  (``template_ddl.template_state``). Only a spare of the current state is taken: after a migration
  reaches the template, older spares are never used, and the next fill drops them. Concurrent
  sign-ups take different spares (``FOR UPDATE SKIP LOCKED``); with none left, provisioning builds
  the schema as before, so an empty pool is slower, never wrong.
- **Refilling.** ``spares_fill`` tops the pool up to ``TENANT_SPARE_SCHEMAS`` (0: no pool),
  drops spares of an older template state and beyond the target, and forgets rows whose schema
  is gone. Beat runs it every minute (``tenants.fill_spare_schemas``) and each take queues a run
  once it commits. One filler works at a time (a PostgreSQL advisory lock), so concurrent runs
  never overshoot; each spare is built in its own transaction, so a killed run loses at most the
  spare it was building, and a run is safe to repeat.
- **Not for bulk.** ``tenant_provision_bulk`` builds its schemas itself: an import of thousands
  would drain the pool in a moment, and sign-ups arriving meanwhile would wait for DDL.

Spares are not tenants: no ``Tenant`` row names them, so migration roll-outs, reports and
periodic tasks never see them. They are schemas named ``spare_<hex>``; a slug cannot produce such
a name (tenant schemas are ``t_<slug>``).
"""

from __future__ import annotations

import logging
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import connection, transaction

from tenants.models import SpareSchema
from tenants.postgresql_backend.base import note_schema_built
from tenants.template_ddl import replay_template, template_script, template_state

logger = logging.getLogger(__name__)

PREFIX = "spare_"
FILL_TASK = "tenants.fill_spare_schemas"
# Session advisory lock of the one running filler (a constant key of this feature's own).
_FILL_LOCK = zlib.crc32(b"herald.tenants.spares.fill")

# A spare whose schema was dropped by hand is passed over (the next fill forgets its row).
_TAKE_SQL = """
DELETE FROM tenants_spareschema WHERE id = (
    SELECT s.id FROM tenants_spareschema s
    WHERE s.template_state = %s
      AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = s.schema_name)
    ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING schema_name
"""


@dataclass(frozen=True)
class FillReport:
    built: int = 0
    dropped: int = 0  # spares of an older template state, beyond the target, or forgotten rows
    spares: int = 0  # spares of the current state after the run
    skipped: bool = False  # another filler was running


def schema_create(schema_name: str, *, use_spare: bool = True) -> bool:
    """Create tenant schema ``schema_name`` as the current template's copy: by renaming a spare
    when one of the current template state is free (returns True), else by replaying the
    template's DDL (returns False). Call inside the provisioning's ``transaction.atomic``: a
    rollback undoes the rename and returns the spare to the pool. Raises TemplateOutOfDate when
    the template lags behind the code, with or without spares.
    """
    script = template_script()
    if use_spare and settings.TENANT_SPARE_SCHEMAS > 0 and _take(schema_name, script.state):
        transaction.on_commit(request_fill)
        return True
    replay_template(schema_name, script=script)
    return False


def _take(schema_name: str, state: str) -> bool:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL, [state])
        row = cursor.fetchone()
        if row is None:
            return False
        cursor.execute(f"ALTER SCHEMA {quote(row[0])} RENAME TO {quote(schema_name)}")
    return True


def request_fill() -> None:
    """Queue a fill of the pool. Never raises: with the broker unreachable, beat's next run
    refills it."""
    try:
        current_app.send_task(FILL_TASK, retry=False)
    except Exception:  # kombu raises several types for an unreachable broker
        logger.warning("Spare schema refill not queued; beat's next run will do it")


def spares_fill(target: int | None = None) -> FillReport:
    """Bring the pool to ``target`` spares of the current template state (default
    ``TENANT_SPARE_SCHEMAS``). Call in the public schema, outside a transaction. Raises
    TemplateOutOfDate when it would build while ``migrate`` has not brought the template up to
    date (then nothing is built; spares of an older state are dropped all the same)."""
    target = settings.TENANT_SPARE_SCHEMAS if target is None else target
    with _filler() as holding:
        if not holding:
            return FillReport(skipped=True)
        # The state alone decides which spares are stale; the script (generated once per
        # process and state, and refused while migrations are pending) only when building.
        state = template_state()
        dropped = _forget_missing()
        # Older states first, then the newest spares beyond the target (oldest stay: same state).
        doomed = list(
            SpareSchema.objects.exclude(template_state=state).values_list("schema_name", flat=True)
        )
        current = list(
            SpareSchema.objects.filter(template_state=state)
            .order_by("id")
            .values_list("schema_name", flat=True)
        )
        doomed += current[target:]
        for name in doomed:
            dropped += _drop(name)
        built = 0
        if target > len(current):
            template_script()  # TemplateOutOfDate, before building anything
            built = sum(_build(state) for _ in range(target - len(current)))
        spares = SpareSchema.objects.filter(template_state=state).count()
    return FillReport(built=built, dropped=dropped, spares=spares)


def spares_count() -> int:
    """Spares of the current template state (what sign-ups can take now)."""
    return SpareSchema.objects.filter(template_state=template_state()).count()


@contextmanager
def _filler() -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_FILL_LOCK])
        holding = bool(cursor.fetchone()[0])
    try:
        yield holding
    finally:
        if holding:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_FILL_LOCK])


def _build(state: str | None) -> bool:
    """Build one spare of ``state``; False when the template moved on meanwhile."""
    name = f"{PREFIX}{secrets.token_hex(8)}"
    with transaction.atomic():
        script = template_script()
        if script.state != state:  # a migration reached the template meanwhile: next run
            return False
        replay_template(name, script=script)
        SpareSchema.objects.create(schema_name=name, template_state=state)
    # The backend keeps the catalog entries of what it created: count the schema against the
    # connection's limit, as if it had served it, so that a filling worker's backend is retired.
    note_schema_built(connection, name)
    return True


def _drop(name: str) -> int:
    """Drop one spare and its row, unless a sign-up is taking it right now. 1 if dropped."""
    with transaction.atomic():
        rows = SpareSchema.objects.select_for_update(skip_locked=True).filter(schema_name=name)
        if not list(rows.values_list("id", flat=True)):
            return 0
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(name)} CASCADE")
        rows.delete()
    return 1


def _forget_missing() -> int:
    """Delete rows whose schema no longer exists (dropped by hand); their count."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tenants_spareschema s WHERE NOT EXISTS"
            " (SELECT 1 FROM pg_namespace n WHERE n.nspname = s.schema_name)"
        )
        return int(cursor.rowcount)
