"""Which tenants have periodic work due: an index in the public schema (``DueWork``).

Writers call ``due_hint`` in the transaction that creates the work (a scheduled send, a digest
window, queued email): it appends a ``DueHint`` row, which commits with the work or not at all,
and takes no lock that another writer could wait for. A periodic task first folds the hints into
the index (``due_fold``, inside ``due_tenants``), which only ever moves a tenant's due time
earlier, then takes the tenants whose time has come, does their work in their schemas, and calls
``due_recompute`` with a function that reads the next due time from the tenant's own data. It
holds the index row while it does, so work committed before that read is seen by it, and work
committed after it leaves a hint for the next fold: no wake-up is lost.

So every periodic cycle costs what the busy tenants cost, whatever the number of tenants
(``bench/tenants.py``, beat section). ``due_rebuild`` recomputes every tenant from its own data:
an operator's tool (``manage.py due_work_rebuild``) for a database restored or edited by hand,
not a periodic task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from tenants.entry import in_schema
from tenants.models import DueHint, DueWork, Tenant

logger = logging.getLogger(__name__)


def due_at(*, tenant_id: int, kind: str, when: datetime) -> None:
    """Set the tenant's due time of ``kind`` to ``when`` at once if that is earlier, outside any
    work's transaction (tools and tests; writers of work use ``due_hint``). Never raises."""
    table = DueWork._meta.db_table
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {get_public_schema_name()}.{table} (tenant_id, kind, due_at)
                VALUES (%s, %s, %s)
                ON CONFLICT (tenant_id, kind)
                DO UPDATE SET due_at = LEAST({table}.due_at, EXCLUDED.due_at)
                """,  # noqa: S608 -- only the schema and the model's table name are interpolated
                [tenant_id, kind, when],
            )
    except DatabaseError:
        logger.exception("Due time of %s for tenant %s not recorded", kind, tenant_id)


def due_hint(*, tenant_id: int, kind: str, when: datetime) -> None:
    """The tenant has work of ``kind`` due at ``when``: recorded in the current transaction (the
    one that creates the work), folded into the index by the next periodic task."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {get_public_schema_name()}.{DueHint._meta.db_table}"  # noqa: S608 -- only the schema and the model's table name are interpolated
            " (tenant_id, kind, due_at) VALUES (%s, %s, %s)",
            [tenant_id, kind, when],
        )


def due_fold() -> int:
    """Move the committed hints into the index, keeping each tenant's earliest time per kind;
    returns how many index rows were written. One fold at a time: a fold that finds another
    running leaves the hints to it and to the next one."""
    public = get_public_schema_name()
    work, hints, tenants = (m._meta.db_table for m in (DueWork, DueHint, Tenant))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(
            f"""
            WITH moved AS (DELETE FROM {public}.{hints} RETURNING tenant_id, kind, due_at)
            INSERT INTO {public}.{work} (tenant_id, kind, due_at)
            SELECT moved.tenant_id, moved.kind, min(moved.due_at)
            FROM moved JOIN {public}.{tenants} AS tenant ON tenant.id = moved.tenant_id
            GROUP BY moved.tenant_id, moved.kind
            ORDER BY moved.tenant_id, moved.kind
            ON CONFLICT (tenant_id, kind)
            DO UPDATE SET due_at = LEAST({work}.due_at, EXCLUDED.due_at)
            """  # noqa: S608 -- only the schema and the models' table names are interpolated
        )
        changed: int = cursor.rowcount
        return changed


# pg_try_advisory_xact_lock's key for due_fold: a constant of Herald's own ("herald" in ASCII)
FOLD_LOCK = 0x68657261_6C64


def due_tenants(*, kind: str, now: datetime | None = None) -> list[Tenant]:
    """Active tenants with work of ``kind`` due by ``now``, most overdue first (after folding
    the hints written since the last call)."""
    now = now or timezone.now()
    due_fold()
    ids = list(
        DueWork.objects.filter(kind=kind, due_at__lte=now)
        .order_by("due_at")
        .values_list("tenant_id", flat=True)[:1000]
    )
    tenants = Tenant.objects.filter(pk__in=ids, is_active=True).select_related("plan")
    order = {tenant_id: n for n, tenant_id in enumerate(ids)}
    return sorted(tenants, key=lambda tenant: order[tenant.pk])


def due_recompute(*, tenant: Tenant, kind: str, next_due: Callable[[], datetime | None]) -> None:
    """Set the tenant's next due time for ``kind`` from ``next_due()`` (read in its schema), or
    drop the row when nothing is pending; the row is held meanwhile."""
    with transaction.atomic():
        locked = list(DueWork.objects.select_for_update().filter(tenant_id=tenant.pk, kind=kind))
        with in_schema(tenant.schema_name):
            when = next_due()
        if when is None:
            DueWork.objects.filter(tenant_id=tenant.pk, kind=kind).delete()
        elif locked:
            DueWork.objects.filter(tenant_id=tenant.pk, kind=kind).update(due_at=when)
        else:
            DueWork.objects.create(tenant_id=tenant.pk, kind=kind, due_at=when)


def due_rebuild(*, kind: str, next_due: Callable[[], datetime | None]) -> int:
    """Recompute ``kind`` for every active tenant; returns how many have work pending."""
    pending = 0
    for tenant in Tenant.objects.filter(is_active=True):
        due_recompute(tenant=tenant, kind=kind, next_due=next_due)
        pending += DueWork.objects.filter(tenant_id=tenant.pk, kind=kind).exists()
    return pending


def due_backlog(*, now: datetime | None = None) -> dict[str, tuple[int, float]]:
    """Per kind: how many tenants have work due by ``now``, and how overdue the oldest is, in
    seconds. One aggregate over the public index, never a tenant schema: it measures tenants
    waiting, not rows (a tenant with a thousand queued emails counts once)."""
    now = now or timezone.now()
    rows = (
        DueWork.objects.filter(due_at__lte=now)
        .values("kind")
        .annotate(tenants=Count("tenant_id"), oldest=Min("due_at"))
    )
    return {
        row["kind"]: (row["tenants"], max(0.0, (now - row["oldest"]).total_seconds()))
        for row in rows
    }
