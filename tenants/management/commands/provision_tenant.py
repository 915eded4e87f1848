"""Create tenants.

One tenant: ``provision_tenant SLUG --name NAME --admin-email E --admin-password P [--plan PLAN]``
prints one JSON object, ``{"slug", "domain", "api_key"}``, and nothing else on stdout.

Many tenants: ``provision_tenant --bulk FILE.csv [--jobs 2] [--batch-size 10]`` reads a CSV with
the header ``slug,name,admin_email`` and optionally ``admin_password_hash`` and ``plan`` columns
(``-`` reads standard input), and prints one JSON line per row, in order: ``{"slug", "domain",
"api_key"}`` for a created tenant, ``{"slug", "errors"}`` for one that was not. Admins get no
password unless the row carries a hash: they set one through the password reset page of their
tenant's dashboard (see ``tenants/bulk.py``). The exit status is non-zero when any row failed;
the created tenants stay created, and their keys are on stdout.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing_stub.selectors import DEFAULT_PLAN_CODE
from tenants.bulk import BulkTenant, tenant_provision_bulk
from tenants.schema import TemplateOutOfDate
from tenants.services import ProvisioningError, tenant_provision

BULK_COLUMNS = {"slug", "name", "admin_email", "admin_password_hash", "plan"}


class Command(BaseCommand):
    help = "Create a tenant (or many, with --bulk): schema, domain, admin user and a first API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?")
        parser.add_argument("--name")
        parser.add_argument("--admin-email")
        parser.add_argument("--admin-password")
        parser.add_argument("--plan", default=DEFAULT_PLAN_CODE)
        parser.add_argument("--bulk", metavar="FILE", help="CSV of tenants to create ('-': stdin)")
        parser.add_argument("--jobs", type=int, default=2, help="parallel connections (--bulk)")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=10,
            help="most tenants per transaction (fewer if the lock table needs it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["bulk"]:
            if options["slug"]:
                raise CommandError("Give either a SLUG or --bulk FILE, not both.")
            self._bulk(options)
            return
        missing = [f"--{name.replace('_', '-')}" for name in ("name", "admin_email",
                   "admin_password") if not options[name]]  # fmt: skip
        if not options["slug"] or missing:
            raise CommandError(f"Tenant not created. Required: SLUG {' '.join(missing)}".strip())
        try:
            result = tenant_provision(
                slug=options["slug"],
                name=options["name"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
                plan_code=options["plan"],
            )
        except (ProvisioningError, TemplateOutOfDate) as exc:
            raise CommandError(f"Tenant not created. {exc}") from exc
        self.stdout.write(
            json.dumps(
                {"slug": result.tenant.slug, "domain": result.domain, "api_key": result.api_key}
            )
        )

    def _bulk(self, options: dict[str, Any]) -> None:
        rows = self._read_rows(options["bulk"])
        try:
            outcomes = tenant_provision_bulk(
                tenants=rows, batch_size=options["batch_size"], jobs=options["jobs"]
            )
        except TemplateOutOfDate as exc:
            raise CommandError(f"No tenant created. {exc}") from exc
        failed = 0
        for outcome in outcomes:
            if outcome.provisioned is None:
                failed += 1
                line = {"slug": outcome.slug, "errors": outcome.errors}
            else:
                line = {
                    "slug": outcome.slug,
                    "domain": outcome.provisioned.domain,
                    "api_key": outcome.provisioned.api_key,
                }
            self.stdout.write(json.dumps(line))
        if failed:
            raise CommandError(f"{failed} of {len(outcomes)} tenants not created (see stdout).")

    def _read_rows(self, path: str) -> list[BulkTenant]:
        try:
            handle = sys.stdin if path == "-" else open(path, newline="", encoding="utf-8")  # noqa: SIM115 -- the `with handle` below closes it
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        with handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            if not {"slug", "name", "admin_email"} <= columns or columns - BULK_COLUMNS:
                raise CommandError(
                    "The CSV header must hold slug, name and admin_email, and may hold "
                    f"admin_password_hash and plan; it has: {', '.join(sorted(columns))}"
                )
            return [
                BulkTenant(
                    slug=row["slug"] or "",
                    name=row["name"] or "",
                    admin_email=row["admin_email"] or "",
                    admin_password_hash=row.get("admin_password_hash") or "",
                    plan_code=row.get("plan") or DEFAULT_PLAN_CODE,
                )
                for row in reader
            ]
