"""``tenants_report``: size, row estimates and last activity per tenant, for capacity planning.

Figures are PostgreSQL's estimates (live-row counts kept by the statistics collector), not
``count(*)``; sizes include indexes and TOAST. See ``tenants/report.py`` for what each costs.
"""

from __future__ import annotations

import csv
import json
from typing import Any

from django.core.management.base import BaseCommand

from tenants.report import SORTS, tenant_figures

COLUMNS = [
    ("slug", "slug"),
    ("schema", "schema"),
    ("plan", "plan"),
    ("size", "size_bytes"),
    ("rows~", "rows_estimate"),
    ("notifications~", "notifications_estimate"),
    ("users~", "users_estimate"),
    ("last activity", "last_activity_at"),
]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


class Command(BaseCommand):
    help = "Size on disk, estimated rows and last activity of every tenant."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sort", choices=sorted(SORTS), default="size")
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table")
        parser.add_argument("--limit", type=int, default=None, help="the first N tenants only")

    def handle(self, *args: Any, **options: Any) -> None:
        figures = tenant_figures(sort=options["sort"], limit=options["limit"])
        rows = [f.as_dict() for f in figures]
        if options["format"] == "json":
            self.stdout.write(json.dumps(rows, indent=2))
        elif options["format"] == "csv":
            writer = csv.DictWriter(self.stdout, fieldnames=list(rows[0]) if rows else ["slug"])
            writer.writeheader()
            writer.writerows(rows)
        else:
            self._table(rows)

    def _table(self, rows: list[dict[str, Any]]) -> None:
        cells = [[title for title, _ in COLUMNS]]
        for row in rows:
            cells.append(
                [
                    human_size(row[key]) if key == "size_bytes" else
                    (row[key] or "never")[:19] if key == "last_activity_at" else str(row[key])
                    for _, key in COLUMNS
                ]
            )  # fmt: skip
        widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
        for line in cells:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(line, widths, strict=True)
                ).rstrip()
            )
        total = sum(row["size_bytes"] for row in rows)
        self.stdout.write(f"{len(rows)} tenants, {human_size(total)} in their schemas")
