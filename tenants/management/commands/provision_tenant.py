"""``provision_tenant SLUG --name NAME --admin-email E --admin-password P [--plan PLAN]``.

Prints one JSON object, ``{"slug", "domain", "api_key"}``, and nothing else on stdout.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing_stub.selectors import DEFAULT_PLAN_CODE
from tenants.schema import TemplateOutOfDate
from tenants.services import ProvisioningError, tenant_provision


class Command(BaseCommand):
    help = "Create a tenant: schema, domain, admin user and a first secret API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--plan", default=DEFAULT_PLAN_CODE)

    def handle(self, *args: Any, **options: Any) -> None:
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
