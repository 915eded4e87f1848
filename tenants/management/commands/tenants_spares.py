"""``tenants_spares``: fill the spare schema pool now, and say what it holds (``tenants.spares``).

Beat does the same every minute; this is for an operator who wants the pool full before a launch,
or emptied (``--target 0``) before dropping spares' disk. Prints one JSON object.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.schema import TemplateOutOfDate
from tenants.spares import spares_fill


class Command(BaseCommand):
    help = "Fill the pool of spare tenant schemas (default: TENANT_SPARE_SCHEMAS) and report it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--target", type=int, default=None, help="spares to keep (default: the setting)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["target"]
        if target is not None and target < 0:
            raise CommandError("--target must be 0 or more.")
        try:
            report = spares_fill(target=target)
        except TemplateOutOfDate as exc:
            raise CommandError(str(exc)) from exc
        if report.skipped:
            raise CommandError("Another fill is running; try again when it has finished.")
        self.stdout.write(json.dumps(asdict(report)))
