"""``manage.py due_work_rebuild``: recompute the due-work index from every tenant's own data."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from notifications.services.due_work import due_work_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every tenant's due times (scheduled sends, digests, email) from its own data. "
        "Visits every tenant; run it after restoring or editing the database by hand."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()

        def report(kind: str, pending: int) -> None:
            self.stdout.write(f"{kind}: {pending} tenants with work pending")

        due_work_rebuild(on_kind=report)
        self.stdout.write(f"done in {time.perf_counter() - started:.1f} s")
