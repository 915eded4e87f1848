"""Which tenants have periodic work due: an index in the public schema (``DueWork``).

Writers call ``due_at`` after the commit that created the work (a scheduled send, a digest
window, queued email): it only ever moves a tenant's due time earlier. A periodic task takes the
tenants whose time has come (``due_tenants``), does their work in their schemas, then calls
``due_recompute`` with a function that reads the next due time from the tenant's own data. It
holds the index row while it does, so a writer racing it either is seen by that read or lowers
the row right after: no wake-up is lost. ``due_rebuild`` recomputes every tenant (the periodic
safety net for a write lost between a commit and its ``due_at``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.models import DueWork, Tenant

logger = logging.getLogger(__name__)


def due_at(*, tenant_id: int, kind: str, when: datetime) -> None:
    """The tenant has work of ``kind`` due at ``when`` (or earlier). Never raises: the periodic
    rebuild catches what a failure here misses."""
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


def due_at_on_commit(*, tenant_id: int, kind: str, when: datetime) -> None:
    transaction.on_commit(lambda: due_at(tenant_id=tenant_id, kind=kind, when=when))


def due_tenants(*, kind: str, now: datetime | None = None) -> list[Tenant]:
    """Active tenants with work of ``kind`` due by ``now``, most overdue first."""
    now = now or timezone.now()
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
        with schema_context(tenant.schema_name):
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
