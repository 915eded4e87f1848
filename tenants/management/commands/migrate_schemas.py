"""``migrate_schemas`` (and ``migrate``, which is the same command): public, template, tenants.

django-tenants migrates the public schema and every tenant's, but never the template schema that
new tenants are cloned from. This command migrates the template too, on every run that migrates
all tenant schemas, so a tenant provisioned later always has every migration's tables.
"""

from __future__ import annotations

from typing import Any

from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)

from tenants.schema import ensure_template_schema, template_schema_name
from tenants.template_ddl import forget_template_script


class Command(MigrateSchemasCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if self.sync_tenant and not options.get("schema_name"):
            ensure_template_schema()
            executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
            executor.run_migrations(tenants=[template_schema_name()])
            forget_template_script()  # other processes see the new migration state by its key
