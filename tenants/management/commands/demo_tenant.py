"""Development helper: make sure the demo tenant exists and print a working API key for it.

Keys are stored hashed and cannot be shown again, so each run after the first issues a fresh
"dev run" key and revokes the previous one.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.models import Tenant
from tenants.services import api_key_create, api_key_revoke, tenant_provision

DEV_KEY_NAME = "dev run"


class Command(BaseCommand):
    help = "Ensure the demo tenant exists; print its slug, domain, admin login and an API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--admin-email", default="admin@demo.example.com")
        parser.add_argument("--admin-password", default="herald-demo-password")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            result = tenant_provision(
                slug=slug,
                name="Demo Inc.",
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
            )
            tenant, domain, key = result.tenant, result.domain, result.api_key
        else:
            for old in tenant.api_keys.filter(name=DEV_KEY_NAME, revoked_at__isnull=True):
                api_key_revoke(api_key=old)
            key = api_key_create(tenant=tenant, name=DEV_KEY_NAME).plaintext
            domain = tenant.domains.get(is_primary=True).domain
        self.stdout.write(
            json.dumps(
                {
                    "slug": tenant.slug,
                    "domain": domain,
                    "api_key": key,
                    "admin_email": options["admin_email"],
                    "admin_password": options["admin_password"],
                }
            )
        )
