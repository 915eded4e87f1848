"""Notifications' kinds of periodic work in the due-work index (``tenants.due``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from notifications.services.deliveries import DUE_DELIVERIES, deliveries_next_due
from notifications.services.digests import DUE_DIGESTS, digests_next_due
from notifications.services.sending import DUE_SENDS, sends_next_due
from tenants.due import due_rebuild

NEXT_DUE: dict[str, Callable[[], datetime | None]] = {
    DUE_SENDS: sends_next_due,
    DUE_DIGESTS: digests_next_due,
    DUE_DELIVERIES: deliveries_next_due,
}


def due_work_rebuild(*, on_kind: Callable[[str, int], None] | None = None) -> int:
    """Recompute every active tenant's due times of every kind from its own data; returns how
    many (tenant, kind) pairs have work pending. Visits every tenant: for an operator after a
    restore or a hand edit, never on a schedule (the index cannot miss work otherwise)."""
    pending = 0
    for kind, next_due in NEXT_DUE.items():
        found = due_rebuild(kind=kind, next_due=next_due)
        if on_kind:
            on_kind(kind, found)
        pending += found
    return pending
